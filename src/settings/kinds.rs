//! The kinds of values settings take: sizes, durations, bounded whole numbers, choices of
//! names, addresses, text, on/off, and optional versions of each.
//!
//! Each kind reads a flag's text and a TOML value the same way (a TOML string is read as the
//! flag would read it; a TOML integer is a number of bytes, seconds or units), checks its
//! range, and prints the value so that it reads back the same.

use super::Kind;
use std::marker::PhantomData;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;
use toml::de::DeValue;

/// A TOML integer as `i64`, if the value is one that fits.
fn integer(v: &DeValue<'_>) -> Option<i64> {
    let n = v.as_integer()?;
    i64::from_str_radix(n.as_str(), n.radix()).ok()
}

/// `s` as a TOML basic string, quoted and escaped.
pub fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML value as the user wrote it, short: strings quoted, arrays and tables by kind.
pub fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => quote(s),
        DeValue::Integer(n) => n.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// A byte size: `16384`, `16k`, `16KiB`, `1m`, `1MiB` (binary multiples, as nginx reads
/// them); in TOML also an integer number of bytes.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    min: usize,
    max: usize,
}

impl Size {
    /// Sizes from `min` to `max` bytes.
    pub const fn new(min: usize, max: usize) -> Size {
        Size { min, max }
    }
}

impl Kind for Size {
    type Value = usize;
    fn expected(&self) -> String {
        format!(
            "a size such as 16384, \"16k\", \"16KiB\" or \"1MiB\", from {} to {}",
            size_str(self.min),
            size_str(self.max)
        )
    }
    fn parse_flag(&self, s: &str) -> Option<usize> {
        parse_size(s).filter(|n| self.check(n))
    }
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<usize> {
        match v {
            DeValue::String(s) => self.parse_flag(s),
            _ => usize::try_from(integer(v)?).ok().filter(|n| self.check(n)),
        }
    }
    fn check(&self, v: &usize) -> bool {
        (self.min..=self.max).contains(v)
    }
    fn show(&self, v: &usize) -> String {
        size_str(*v)
    }
    fn toml(&self, v: &usize) -> Option<String> {
        let s = size_str(*v);
        Some(if s.bytes().all(|b| b.is_ascii_digit()) {
            s
        } else {
            quote(&s)
        })
    }
}

/// A size as `16KiB`/`1MiB`/`1GiB` when exact, else the plain number of bytes.
pub fn size_str(n: usize) -> String {
    for (unit, per) in [("GiB", 1usize << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= per && n.is_multiple_of(per) {
            return format!("{}{unit}", n / per);
        }
    }
    n.to_string()
}

/// Parses a byte size: a whole number with an optional binary suffix (`k`, `KiB`, `KB`, `m`,
/// `MiB`, `MB`, `g`, `GiB`, `GB`; all multiples of 1024, as nginx reads them). `None` on
/// malformed input or overflow.
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(split);
    let number: usize = digits.parse().ok()?;
    let multiplier: usize = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// Longest duration any setting takes.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// A duration above 0 and at most 30 days: `500ms`, `5s`, `2m`, `1h`, `1d`, a bare number of
/// seconds; in TOML also an integer number of seconds.
#[derive(Debug, Clone, Copy)]
pub struct Dur;

impl Kind for Dur {
    type Value = Duration;
    fn expected(&self) -> String {
        "a duration such as \"500ms\", \"5s\", \"2m\" or \"1h\" (a bare number is seconds), \
         above 0 and at most 30d"
            .into()
    }
    fn parse_flag(&self, s: &str) -> Option<Duration> {
        parse_duration(s)
    }
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<Duration> {
        match v {
            DeValue::String(s) => parse_duration(s),
            _ => parse_duration(&integer(v)?.to_string()),
        }
    }
    fn check(&self, v: &Duration) -> bool {
        !v.is_zero() && *v <= MAX_DURATION
    }
    fn show(&self, v: &Duration) -> String {
        duration_str(*v)
    }
    fn toml(&self, v: &Duration) -> Option<String> {
        Some(quote(&duration_str(*v)))
    }
}

/// A duration within `min..=max`, read and printed as [`Dur`] reads and prints it.
#[derive(Debug, Clone, Copy)]
pub struct DurBetween {
    min: Duration,
    max: Duration,
}

impl DurBetween {
    /// Durations from `min` to `max` (both within what [`Dur`] accepts).
    pub const fn new(min: Duration, max: Duration) -> DurBetween {
        DurBetween { min, max }
    }
}

impl Kind for DurBetween {
    type Value = Duration;
    fn expected(&self) -> String {
        format!(
            "a duration such as \"500ms\", \"5s\", \"2m\" or \"1h\" (a bare number is seconds), \
             from {} to {}",
            duration_str(self.min),
            duration_str(self.max)
        )
    }
    fn parse_flag(&self, s: &str) -> Option<Duration> {
        Dur.parse_flag(s).filter(|d| self.check(d))
    }
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<Duration> {
        Dur.parse_toml(v).filter(|d| self.check(d))
    }
    fn check(&self, v: &Duration) -> bool {
        (self.min..=self.max).contains(v)
    }
    fn show(&self, v: &Duration) -> String {
        duration_str(*v)
    }
    fn toml(&self, v: &Duration) -> Option<String> {
        Dur.toml(v)
    }
}

/// Parses a duration: a whole number with a unit `ms`, `s`, `m`, `h` or `d` (a bare number is
/// seconds, as in nginx). Zero and anything above 30 days are rejected (`None`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let number: u64 = digits.parse().ok()?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    let d = Duration::from_millis(number.checked_mul(millis_per_unit)?);
    Dur.check(&d).then_some(d)
}

/// The shortest exact spelling [`parse_duration`] reads back (`90s`, `2m`, `1500ms`).
pub fn duration_str(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= per && ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// An unsigned integer type a [`Whole`] setting may have.
pub trait WholeNumber: Copy {
    /// `n` as this type, if it fits.
    fn from_u64(n: u64) -> Option<Self>;
    /// This number as `u64`.
    fn to_u64(self) -> u64;
}

macro_rules! whole_number {
    ($($t:ty),*) => {$(
        impl WholeNumber for $t {
            fn from_u64(n: u64) -> Option<Self> {
                <$t>::try_from(n).ok()
            }
            fn to_u64(self) -> u64 {
                self as u64
            }
        }
    )*};
}
whole_number!(u16, u32, u64, usize);

/// A whole number from `min` to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Whole<T> {
    min: u64,
    max: u64,
    number: PhantomData<T>,
}

impl<T> Whole<T> {
    /// Whole numbers from `min` to `max`.
    pub const fn new(min: u64, max: u64) -> Whole<T> {
        Whole {
            min,
            max,
            number: PhantomData,
        }
    }
}

impl<T: WholeNumber> Kind for Whole<T> {
    type Value = T;
    fn expected(&self) -> String {
        format!("a whole number from {} to {}", self.min, self.max)
    }
    fn parse_flag(&self, s: &str) -> Option<T> {
        s.parse::<u64>()
            .ok()
            .and_then(T::from_u64)
            .filter(|n| self.check(n))
    }
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<T> {
        let n = u64::try_from(integer(v)?).ok()?;
        T::from_u64(n).filter(|n| self.check(n))
    }
    fn check(&self, v: &T) -> bool {
        (self.min..=self.max).contains(&v.to_u64())
    }
    fn show(&self, v: &T) -> String {
        v.to_u64().to_string()
    }
    fn toml(&self, v: &T) -> Option<String> {
        Some(self.show(v))
    }
}

/// Most worker loops.
pub const MAX_WORKERS: usize = 1024;

/// A number of workers, 1 to [`MAX_WORKERS`], or `auto`: one per CPU.
#[derive(Debug, Clone, Copy)]
pub struct Workers;

impl Kind for Workers {
    type Value = usize;
    fn expected(&self) -> String {
        format!("a whole number from 1 to {MAX_WORKERS}, or \"auto\"")
    }
    fn parse_flag(&self, s: &str) -> Option<usize> {
        if s == "auto" {
            return Some(
                std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS)),
            );
        }
        s.parse().ok().filter(|n| self.check(n))
    }
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<usize> {
        match v {
            DeValue::String(s) => self.parse_flag(s),
            _ => usize::try_from(integer(v)?).ok().filter(|n| self.check(n)),
        }
    }
    fn check(&self, v: &usize) -> bool {
        (1..=MAX_WORKERS).contains(v)
    }
    fn show(&self, v: &usize) -> String {
        v.to_string()
    }
    fn toml(&self, v: &usize) -> Option<String> {
        Some(v.to_string())
    }
}

/// A type whose values are spelled as names (`round-robin`, `json`).
pub trait Named: Copy + PartialEq + 'static {
    /// Every value.
    const ALL: &'static [Self];
    /// The value's name.
    fn name(self) -> &'static str;
    /// The value named `s`.
    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == s)
    }
}

/// One of the names of a [`Named`] type.
#[derive(Debug, Clone, Copy)]
pub struct Choice<T>(PhantomData<T>);

impl<T> Choice<T> {
    /// The names of `T`.
    pub const fn new() -> Choice<T> {
        Choice(PhantomData)
    }
}

impl<T> Default for Choice<T> {
    fn default() -> Self {
        Choice::new()
    }
}

impl<T: Named> Kind for Choice<T> {
    type Value = T;
    fn expected(&self) -> String {
        let names: Vec<String> = T::ALL.iter().map(|v| quote(v.name())).collect();
        match names.as_slice() {
            [a, b] => format!("{a} or {b}"),
            _ => format!("one of {}", names.join(", ")),
        }
    }
    fn parse_flag(&self, s: &str) -> Option<T> {
        T::from_name(s)
    }
    fn check(&self, _v: &T) -> bool {
        true
    }
    fn show(&self, v: &T) -> String {
        v.name().to_string()
    }
    fn toml(&self, v: &T) -> Option<String> {
        Some(quote(v.name()))
    }
}

/// What a listen address accepts.
pub const ADDRESS: &str =
    "an address such as \"127.0.0.1:8080\", \"[::]:8080\" or \"localhost:8080\"";

/// A socket address: `127.0.0.1:8080`, `[::]:8080`.
#[derive(Debug, Clone, Copy)]
pub struct Addr;

impl Kind for Addr {
    type Value = SocketAddr;
    fn expected(&self) -> String {
        ADDRESS.into()
    }
    fn parse_flag(&self, s: &str) -> Option<SocketAddr> {
        s.parse().ok()
    }
    fn check(&self, _v: &SocketAddr) -> bool {
        true
    }
    fn show(&self, v: &SocketAddr) -> String {
        v.to_string()
    }
    fn toml(&self, v: &SocketAddr) -> Option<String> {
        Some(quote(&v.to_string()))
    }
}

/// The addresses a listen address stands for: an address itself, or `localhost:PORT` as
/// every loopback address `localhost` resolves to (at least 127.0.0.1), each once, IPv4
/// first. `None` when it is neither.
pub fn listen_addrs(s: &str) -> Option<Vec<SocketAddr>> {
    if let Some(addr) = Addr.parse_flag(s) {
        return Some(vec![addr]);
    }
    let port: u16 = s.strip_prefix("localhost:")?.parse().ok()?;
    let mut addrs = vec![SocketAddr::from(([127, 0, 0, 1], port))];
    let resolved = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", port));
    for addr in resolved.into_iter().flatten() {
        if addr.ip().is_loopback() && !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    addrs.sort_by_key(SocketAddr::is_ipv6);
    Some(addrs)
}

/// What a listen entry accepts.
pub const LISTEN: &str = "an address such as \"127.0.0.1:8080\", \"[::]:8080\" or \
     \"localhost:8080\", or a Unix socket such as \"unix:/run/ringproxy/web.sock\"";

/// What one listen entry stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenEntry {
    /// Addresses ([`listen_addrs`]).
    Addrs(Vec<SocketAddr>),
    /// A Unix domain socket at this absolute path (`unix:PATH`).
    Unix(std::path::PathBuf),
}

/// A listen entry: `unix:PATH` with an absolute path, or what [`listen_addrs`] takes.
pub fn listen_entry(s: &str) -> Option<ListenEntry> {
    if s.starts_with(crate::endpoint::UNIX_PREFIX) {
        return crate::endpoint::unix_path(s).map(ListenEntry::Unix);
    }
    listen_addrs(s).map(ListenEntry::Addrs)
}

/// What an upstream address accepts.
pub const HOST_PORT: &str =
    "HOST:PORT, e.g. \"127.0.0.1:8078\", \"[::1]:8078\" or \"backend.local:80\"";

/// `host:port` where host is a name, an IPv4 address or a bracketed IPv6 address, and port
/// is 1..=65535; resolved later.
#[derive(Debug, Clone, Copy)]
pub struct HostPort;

impl Kind for HostPort {
    type Value = String;
    fn expected(&self) -> String {
        HOST_PORT.into()
    }
    fn parse_flag(&self, s: &str) -> Option<String> {
        Some(s.to_string()).filter(|s| self.check(s))
    }
    fn check(&self, s: &String) -> bool {
        is_host_port(s)
    }
    fn show(&self, v: &String) -> String {
        v.clone()
    }
    fn toml(&self, v: &String) -> Option<String> {
        Some(quote(v))
    }
}

/// True for `host:port` where host is a name, an IPv4 address or a bracketed IPv6 address,
/// and port is 1..=65535.
pub fn is_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    };
    port_ok && host_ok
}

/// A non-empty string; `what` completes "expected ...".
#[derive(Debug, Clone, Copy)]
pub struct Text(pub &'static str);

impl Kind for Text {
    type Value = String;
    fn expected(&self) -> String {
        self.0.into()
    }
    fn parse_flag(&self, s: &str) -> Option<String> {
        Some(s.to_string()).filter(|s| self.check(s))
    }
    fn check(&self, s: &String) -> bool {
        !s.is_empty()
    }
    fn show(&self, v: &String) -> String {
        v.clone()
    }
    fn toml(&self, v: &String) -> Option<String> {
        Some(quote(v))
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address means
/// that one address (/32 or /128). Host bits are cleared.
#[derive(Debug, Clone, Copy)]
pub struct Cidr;

impl Kind for Cidr {
    type Value = ipnet::IpNet;
    fn expected(&self) -> String {
        "a network such as \"10.0.0.0/8\", \"::1/128\" or an address".into()
    }
    fn parse_flag(&self, s: &str) -> Option<ipnet::IpNet> {
        let net = match s.parse::<ipnet::IpNet>() {
            Ok(net) => net,
            Err(_) => ipnet::IpNet::from(s.parse::<std::net::IpAddr>().ok()?),
        };
        Some(net.trunc())
    }
    fn check(&self, _v: &ipnet::IpNet) -> bool {
        true
    }
    fn show(&self, v: &ipnet::IpNet) -> String {
        v.to_string()
    }
    fn toml(&self, v: &ipnet::IpNet) -> Option<String> {
        Some(quote(&v.to_string()))
    }
}

/// An IP address without a port: `192.0.2.10`, `::1`.
#[derive(Debug, Clone, Copy)]
pub struct Ip;

impl Kind for Ip {
    type Value = std::net::IpAddr;
    fn expected(&self) -> String {
        "an IP address such as \"192.0.2.10\" or \"2001:db8::10\"".into()
    }
    fn parse_flag(&self, s: &str) -> Option<std::net::IpAddr> {
        s.parse().ok()
    }
    fn check(&self, _v: &std::net::IpAddr) -> bool {
        true
    }
    fn show(&self, v: &std::net::IpAddr) -> String {
        v.to_string()
    }
    fn toml(&self, v: &std::net::IpAddr) -> Option<String> {
        Some(quote(&v.to_string()))
    }
}

/// A list of values of one kind: a TOML array (or one value), a repeated flag (or one flag
/// with values separated by commas).
#[derive(Debug, Clone, Copy)]
pub struct List<K>(pub K);

impl<K: Kind> Kind for List<K> {
    type Value = Vec<K::Value>;
    fn expected(&self) -> String {
        format!("{}, or an array of them", self.0.expected())
    }
    fn parse_flag(&self, s: &str) -> Option<Self::Value> {
        s.split(',')
            .map(|item| self.0.parse_flag(item.trim()))
            .collect()
    }
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<Self::Value> {
        match v {
            DeValue::Array(items) => items
                .iter()
                .map(|i| self.0.parse_toml(i.get_ref()))
                .collect(),
            one => self.0.parse_toml(one).map(|v| vec![v]),
        }
    }
    fn check(&self, v: &Self::Value) -> bool {
        v.iter().all(|item| self.0.check(item))
    }
    fn show(&self, v: &Self::Value) -> String {
        if v.is_empty() {
            return "none".into();
        }
        let items: Vec<String> = v.iter().map(|item| self.0.show(item)).collect();
        items.join(",")
    }
    fn toml(&self, v: &Self::Value) -> Option<String> {
        let items: Option<Vec<String>> = v.iter().map(|item| self.0.toml(item)).collect();
        Some(format!("[{}]", items?.join(", ")))
    }
    fn is_list(&self) -> bool {
        true
    }
}

/// On or off: `true`/`false` in TOML, a bare flag on the command line.
#[derive(Debug, Clone, Copy)]
pub struct Switch;

impl Kind for Switch {
    type Value = bool;
    fn expected(&self) -> String {
        "true or false".into()
    }
    fn parse_flag(&self, s: &str) -> Option<bool> {
        match s {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<bool> {
        v.as_bool()
    }
    fn check(&self, _v: &bool) -> bool {
        true
    }
    fn show(&self, v: &bool) -> String {
        v.to_string()
    }
    fn toml(&self, v: &bool) -> Option<String> {
        Some(v.to_string())
    }
    fn is_switch(&self) -> bool {
        true
    }
}

/// A setting that may be left unset; `.1` says what unset means (`off`, `every server once`).
#[derive(Debug, Clone, Copy)]
pub struct Optional<K>(pub K, pub &'static str);

impl<K: Kind> Kind for Optional<K> {
    type Value = Option<K::Value>;
    fn expected(&self) -> String {
        self.0.expected()
    }
    fn parse_flag(&self, s: &str) -> Option<Self::Value> {
        self.0.parse_flag(s).map(Some)
    }
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<Self::Value> {
        self.0.parse_toml(v).map(Some)
    }
    fn check(&self, v: &Self::Value) -> bool {
        v.as_ref().is_none_or(|v| self.0.check(v))
    }
    fn show(&self, v: &Self::Value) -> String {
        v.as_ref()
            .map_or_else(|| self.1.to_string(), |v| self.0.show(v))
    }
    fn toml(&self, v: &Self::Value) -> Option<String> {
        v.as_ref().and_then(|v| self.0.toml(v))
    }
    fn unset(&self, v: &Self::Value) -> Option<&'static str> {
        v.is_none().then_some(self.1)
    }
    fn is_switch(&self) -> bool {
        self.0.is_switch()
    }
}

#[cfg(test)]
mod property;
mod unix;

pub use unix::{Mode, Owner};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_listens_on_every_loopback_address_it_names() {
        let addrs = listen_addrs("localhost:8080").expect("localhost");
        assert_eq!(addrs[0], "127.0.0.1:8080".parse().unwrap());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080)
        );
        assert_eq!(
            listen_addrs("[::1]:80"),
            Some(vec!["[::1]:80".parse().unwrap()])
        );
        for bad in [
            "localhost",
            "localhost:x",
            "localhost:70000",
            "example.com:80",
            "",
        ] {
            assert_eq!(listen_addrs(bad), None, "{bad}");
        }
    }

    fn toml_value(text: &str) -> DeValue<'static> {
        let doc = toml::de::DeTable::parse(Box::leak(format!("v = {text}").into_boxed_str()))
            .expect("valid TOML");
        doc.into_inner()
            .into_iter()
            .next()
            .map(|(_, v)| v.into_inner())
            .expect("one value")
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16384"), Some(16384));
        assert_eq!(parse_size("16k"), Some(16384));
        assert_eq!(parse_size("16KiB"), Some(16384));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("k"), None);
        assert_eq!(parse_size("1.5k"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("16 KiB"), None);
        assert_eq!(parse_size("99999999999999999999"), None);
        assert_eq!(parse_size("18446744073709551615k"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("31d"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
    }

    #[test]
    fn host_ports() {
        for ok in [
            "127.0.0.1:80",
            "[::1]:8078",
            "localhost:80",
            "backend-1.internal:65535",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            ":80",
            "::1:80",
            "[::1:80",
            "host:0",
            "host:70000",
            "a b:80",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn flag_and_toml_read_the_same_and_print_back() {
        let size = Size::new(1, 256 << 20);
        for (flag, toml) in [("16KiB", "\"16KiB\""), ("1000", "1000"), ("1m", "1048576")] {
            let v = size.parse_flag(flag).unwrap();
            assert_eq!(size.parse_toml(&toml_value(toml)), Some(v), "{toml}");
            let printed = size.toml(&v).unwrap();
            assert_eq!(size.parse_toml(&toml_value(&printed)), Some(v), "{printed}");
        }
        for (flag, toml) in [("90s", "90"), ("1500ms", "\"1500ms\""), ("2m", "\"120s\"")] {
            let v = Dur.parse_flag(flag).unwrap();
            assert_eq!(Dur.parse_toml(&toml_value(toml)), Some(v), "{toml}");
            assert_eq!(Dur.parse_toml(&toml_value(&Dur.toml(&v).unwrap())), Some(v));
        }
        let w: Whole<u32> = Whole::new(0, 10);
        assert_eq!(w.parse_toml(&toml_value("0x0a")), Some(10));
        assert_eq!(w.parse_toml(&toml_value("-1")), None);
        assert_eq!(w.parse_toml(&toml_value("1.5")), None);
        assert_eq!(w.parse_flag("11"), None);
    }

    #[test]
    fn optional_settings_say_what_unset_means() {
        let tries: Optional<Whole<usize>> = Optional(Whole::new(1, 1024), "every server once");
        assert_eq!(tries.toml(&None), None);
        assert_eq!(tries.unset(&None), Some("every server once"));
        assert_eq!(tries.show(&Some(3)), "3");
        assert!(!tries.check(&Some(0)));
        assert!(tries.check(&None));
    }

    #[test]
    fn described_values_are_short() {
        assert_eq!(describe(&toml_value("\"x\"")), "\"x\"");
        assert_eq!(describe(&toml_value("[1]")), "an array");
        assert_eq!(describe(&toml_value("{ a = 1 }")), "a table");
        assert_eq!(
            describe(&toml_value("99999999999999999999")),
            "99999999999999999999"
        );
    }
}
