//! Property test of the value kinds, the stable-toolchain companion of the `values` fuzz
//! target (`fuzz/fuzz_targets/values.rs`): on a few thousand generated and mutated texts from
//! a fixed seed, every kind the schema uses parses without panicking, a value it accepts is in
//! range, and it prints (as a flag with [`Kind::show`], as TOML with [`Kind::toml`]) to text
//! that parses back to the same value. Each text is read as a flag, as a TOML literal
//! (`v = TEXT`) and as a TOML string; [`parse_size`] and [`parse_duration`] are also checked
//! against a model, and their printers on random values.

use super::*;
use crate::limits::RateKind;
use crate::settings::BalancePolicy;
use crate::test_rng::Rng;
use std::fmt::Debug;
use toml::de::DeTable;

/// Calls `f` with the TOML value `literal` (as written after `v = `), if it is one.
fn with_toml(literal: &str, f: impl FnOnce(&DeValue<'_>)) {
    let doc = format!("v = {literal}");
    if let Ok(table) = DeTable::parse(&doc)
        && let Some(value) = table.get_ref().get("v")
    {
        f(value.get_ref());
    }
}

/// `v`, just parsed by `kind`, is in range and prints to text that parses back to it.
fn prints_back<K: Kind>(kind: &K, v: &K::Value, from: &str)
where
    K::Value: PartialEq + Debug,
{
    assert!(kind.check(v), "{from:?} parsed to {v:?}, out of range");
    let shown = kind.show(v);
    // An empty list (only TOML's `[]`) shows as "none": no flag gives it.
    if !(kind.is_list() && shown == "none") {
        let back = kind.parse_flag(&shown);
        assert_eq!(back.as_ref(), Some(v), "{from:?} shown as {shown:?}");
    }
    let literal = kind.toml(v).expect("a parsed value has a TOML literal");
    let mut back = None;
    with_toml(&literal, |value| back = kind.parse_toml(value));
    assert_eq!(back.as_ref(), Some(v), "{from:?} written as {literal}");
}

/// The ways one text is read: as a flag, and (when they are TOML) as a literal and a string.
struct Readings<'a, 'd> {
    text: &'a str,
    literal: Option<&'a DeValue<'d>>,
    string: Option<&'a DeValue<'d>>,
}

impl Readings<'_, '_> {
    /// Every reading of the text by `kind`; `strings_as_flags` when a TOML string is read as
    /// the flag would read it.
    fn check<K: Kind>(&self, kind: &K, strings_as_flags: bool)
    where
        K::Value: PartialEq + Debug,
    {
        let flag = kind.parse_flag(self.text);
        if let Some(v) = &flag {
            prints_back(kind, v, self.text);
        }
        if let Some(v) = self.literal.and_then(|l| kind.parse_toml(l)) {
            prints_back(kind, &v, self.text);
        }
        if let Some(string) = self.string {
            let v = kind.parse_toml(string);
            if strings_as_flags {
                assert_eq!(
                    v, flag,
                    "the TOML string {:?} reads unlike the flag",
                    self.text
                );
            }
            if let Some(v) = v {
                prints_back(kind, &v, self.text);
            }
        }
    }
}

/// Every kind the schema uses, with the ranges it uses them with.
fn check_every_kind(r: &Readings<'_, '_>) {
    r.check(&Size::new(1, 256 << 20), true);
    r.check(&Size::new(64 << 10, 1 << 40), true);
    r.check(&Dur, true);
    let keepalive = DurBetween::new(Duration::from_secs(1), Duration::from_secs(32767));
    r.check(&keepalive, true);
    r.check(&Whole::<u32>::new(1, 65535), false);
    r.check(&Whole::<u32>::new(0, 1_000_000), false);
    r.check(&Whole::<usize>::new(1, 1 << 24), false);
    // TOML integers are `i64`: a wider range would print values no file can hold.
    r.check(&Whole::<u64>::new(0, i64::MAX as u64), false);
    r.check(&Cidr, true);
    r.check(&List(Cidr), false);
    r.check(&RateKind, true);
    r.check(&Workers, true);
    r.check(&Optional(Size::new(1, 1 << 40), "unlimited"), true);
    r.check(&Addr, true);
    r.check(&HostPort, true);
    r.check(&Text("text"), true);
    r.check(&Switch, false);
    r.check(&Choice::<BalancePolicy>::new(), true);
}

/// What [`parse_size`] should read, computed another way: ASCII digits then a unit, in `u128`.
fn size_model(s: &str) -> Option<usize> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u128 = s[..digits].parse().ok()?;
    let unit: u128 = match s[digits..].to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    usize::try_from(n.checked_mul(unit)?).ok()
}

/// What [`parse_duration`] should read, computed another way, in `u128` milliseconds.
fn duration_model(s: &str) -> Option<Duration> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u128 = s[..digits].parse().ok()?;
    let unit: u128 = match &s[digits..] {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    let ms = n.checked_mul(unit)?;
    let max = MAX_DURATION.as_millis();
    (1..=max)
        .contains(&ms)
        .then(|| Duration::from_millis(ms as u64))
}

/// A text in the shape of a value: a number and a unit, an address or network, a list, or a
/// word; sometimes with bytes mutated.
fn text(rng: &mut Rng) -> String {
    const NUMBERS: &[&str] = &[
        "0",
        "1",
        "7",
        "10",
        "60",
        "64",
        "256",
        "1000",
        "1023",
        "1024",
        "32767",
        "32768",
        "65535",
        "65536",
        "1000000",
        "1000001",
        "16777216",
        "16777217",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999",
        "007",
        "",
    ];
    const UNITS: &[&str] = &[
        "", "", "b", "B", "k", "K", "kb", "KiB", "KIB", "m", "M", "MiB", "mb", "g", "GiB", "gb",
        "t", "TiB", "ms", "s", "h", "d", "us", "x", "/s", "/m", "/h", "/", " k", "k ", "\u{e9}",
    ];
    const AFFIXES: &[&str] = &["", "", "", "", " ", "\t", "+", "-", "0x", "\n", ".5", ",1"];
    const HOSTS: &[&str] = &[
        "10.0.0.1",
        "127.0.0.1",
        "255.255.255.255",
        "256.0.0.1",
        "1.2.3",
        "::1",
        "::",
        "2001:db8::1",
        "::ffff:10.0.0.1",
        "fe80::1%2",
        "[::1]",
        "localhost",
        "a_b-c.d",
        "a b",
        "",
    ];
    const WORDS: &[&str] = &[
        "auto",
        "true",
        "false",
        "round-robin",
        "least-conn",
        "ip-hash",
        "random-two",
        "text",
        "json",
        "off",
        "v1",
        "v2",
        "none",
        "",
        " ",
        "-",
        "\"",
        "[]",
        "[1, 2]",
        "{}",
        "'x'",
        "1.5",
        "1e3",
        "inf",
        "nan",
        "1_000",
        "0x10",
        "0o7",
        "0b1",
        "1979-05-27",
    ];
    let mut s = match rng.below(5) {
        0 => {
            let number = match rng.below(3) {
                0 => (rng.next() % 100_000).to_string(),
                1 => rng.next().to_string(),
                _ => rng.pick(NUMBERS).to_string(),
            };
            let (pre, unit, post) = (rng.pick(AFFIXES), rng.pick(UNITS), rng.pick(AFFIXES));
            format!("{pre}{number}{unit}{post}")
        }
        1 => {
            let mut s = rng.pick(HOSTS).to_string();
            if rng.one_in(2) {
                s += &format!("/{}", rng.below(140));
            }
            if rng.one_in(2) {
                s += &format!(":{}", rng.pick(&["0", "80", "65535", "65536", ""]));
            }
            s
        }
        2 => {
            let n = 1 + rng.below(3);
            let items: Vec<String> = (0..n).map(|_| rng.pick(HOSTS).to_string()).collect();
            items.join(rng.pick(&[",", ", ", ",,"]))
        }
        3 => format!(
            "{}/{}",
            rng.pick(NUMBERS),
            rng.pick(&["s", "m", "h", "", "s "])
        ),
        _ => rng.pick(WORDS).to_string(),
    };
    if rng.one_in(3) {
        let mut bytes = s.into_bytes();
        let times = 1 + rng.below(2);
        rng.mutate(&mut bytes, b"0159kKmMsdh/.:,[] \"\\", times);
        s = String::from_utf8_lossy(&bytes).into_owned();
    }
    s
}

#[test]
fn property_every_kind_reads_prints_and_reads_back() {
    let mut rng = Rng::new(0x5eed_0000_7a1e_0001);
    for _ in 0..5000 {
        let text = text(&mut rng);
        assert_eq!(parse_size(&text), size_model(&text), "{text:?}");
        assert_eq!(parse_duration(&text), duration_model(&text), "{text:?}");
        let (literal_doc, string_doc) = (format!("v = {text}"), format!("v = {}", quote(&text)));
        let literal = DeTable::parse(&literal_doc).ok();
        let string = DeTable::parse(&string_doc).expect("a quoted string is TOML");
        check_every_kind(&Readings {
            text: &text,
            literal: literal
                .as_ref()
                .and_then(|doc| doc.get_ref().get("v"))
                .map(|v| v.get_ref()),
            string: string.get_ref().get("v").map(|v| v.get_ref()),
        });
    }
}

#[test]
fn property_printed_sizes_and_durations_read_back() {
    let mut rng = Rng::new(0x5eed_0000_7a1e_0002);
    for _ in 0..20_000 {
        let n = match rng.below(3) {
            0 => rng.next() as usize,
            1 => (rng.next() % 4096) as usize,
            _ => ((rng.next() % 4096) as usize) << rng.pick(&[&10, &20, &30, &40]),
        };
        assert_eq!(parse_size(&size_str(n)), Some(n), "{n}");
        let ms = 1 + rng.next() % MAX_DURATION.as_millis() as u64;
        let ms = if rng.one_in(2) { ms - ms % 1000 } else { ms }.max(1);
        let d = Duration::from_millis(ms);
        assert_eq!(parse_duration(&duration_str(d)), Some(d), "{ms} ms");
    }
}
