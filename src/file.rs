//! The configuration file (`--config FILE`): TOML in, a validated [`Config`] out, and back.
//!
//! The file holds what the command line holds, and more than one route. Every key is a long
//! flag name with `-` turned into `_`, and means what the flag means:
//!
//! ```toml
//! # process-wide settings, at the top
//! max_conns = 10000
//! workers = 2                  # or "auto"
//! access_log = "/var/log/ringproxy/access.log"   # or "-" for stdout
//! access_log_format = "text"   # or "json"
//! metrics = "127.0.0.1:9100"
//! drain_timeout = "30s"
//!
//! [[route]]                    # one table per route
//! name = "web"                 # required, unique
//! listen = ["0.0.0.0:8080", "[::]:8080"]   # required; a single string is accepted too
//! balance = "least-conn"
//! connect_timeout = "2s"
//! buffer_size = "16KiB"
//! servers = [                  # required; [[route.servers]] tables work too
//!   { addr = "10.0.0.1:80", weight = 3, max_conns = 200 },
//!   { addr = "10.0.0.2:80" },
//!   { addr = "backup.internal:80", backup = true },
//! ]
//! ```
//!
//! Route keys: `name`, `listen`, `servers`, `buffer_size`, `connect_timeout`, `idle_timeout`,
//! `backlog`, `balance`, `tries`, `tries_timeout`, `max_fails`, `fail_timeout`,
//! `health_interval`, `health_timeout`, `health_rise`, `health_fall`. Server keys: `addr`,
//! `weight`, `max_conns`, `backup`, `down`. Durations are strings (`"500ms"`, `"5s"`, `"2m"`;
//! a bare number is seconds) or integers (seconds); sizes are strings (`"16KiB"`) or integers
//! (bytes). Values are checked with the command line's own parsers ([`crate::cli`]) and
//! ranges, and the whole with [`Config::validate`]'s rules.
//!
//! Reading is two-layered: serde (with `deny_unknown_fields`) checks the shape — known keys,
//! required keys, tables and arrays — keeping every value as a [`toml::Spanned`]
//! [`toml::Value`]; the conversion to [`Config`] then checks each value itself. Every error is
//! a [`FileError`] naming the file, the line and the key path (`route[0].servers[1].weight`).
//! [`render`] writes a [`Config`] back as a file that [`parse`] reads to the same `Config`.

use crate::cli::{parse_duration, parse_size, parse_upstream, parse_workers};
use crate::config::{
    BalancePolicy, Config, Global, LogFormat, MAX_BUFFER_SIZE, Route, UpstreamSpec, validate_pool,
};
use serde::Deserialize;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A configuration file that could not be read, parsed or validated.
///
/// Displays as `FILE:LINE: FIELD: MESSAGE`, leaving out the parts that are unknown, e.g.
/// `ringproxy.toml:14: route[0].servers[1].weight: expected a whole number from 1 to 1000, got 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file, as given.
    pub path: PathBuf,
    /// The 1-based line the error is on, when it is known.
    pub line: Option<usize>,
    /// The key path at fault, such as `workers` or `route[0].servers[1].weight`.
    pub field: Option<String>,
    /// What is wrong, usually "expected ..., got ...".
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FileError {}

/// Reads, parses and validates the configuration file at `path`.
pub fn load(path: &Path) -> Result<Config, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        path: path.to_path_buf(),
        line: None,
        field: None,
        message: format!("cannot read the configuration file: {e}"),
    })?;
    parse(&text, path)
}

/// Parses and validates the text of a configuration file; `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<Config, FileError> {
    let file = File { text, path };
    let raw: RawFile = toml::from_str(text).map_err(|e| file.toml_error(&e))?;
    let config = file.convert(raw)?;
    // Every rule of `validate` was checked above with a location; this is a safety net.
    config
        .validate()
        .map_err(|message| file.error(None, None, message))?;
    Ok(config)
}

/// The effective configuration as a configuration file: every setting, defaults included
/// (settings that are off or derived at start appear as comments, and a server's `max_conns`
/// only when set), in a form [`parse`] reads back to an equal [`Config`]. This is what
/// `--check` prints.
pub fn render(config: &Config) -> String {
    let mut out = String::from(
        "# ringproxy: effective configuration, defaults included. Settings shown as comments\n\
         # are not set; a server without max_conns is unlimited.\n\n",
    );
    let g = &config.global;
    match g.max_conns {
        Some(n) => line(&mut out, "max_conns", n),
        None => comment(
            &mut out,
            "max_conns",
            "(descriptor limit - 32) / 2 at start",
        ),
    }
    line(&mut out, "workers", g.workers);
    match &g.access_log {
        Some(path) => line(&mut out, "access_log", quote(path)),
        None => comment(&mut out, "access_log", "off"),
    }
    line(
        &mut out,
        "access_log_format",
        quote(g.access_log_format.as_str()),
    );
    match g.metrics {
        Some(addr) => line(&mut out, "metrics", quote(&addr.to_string())),
        None => comment(&mut out, "metrics", "off"),
    }
    line(
        &mut out,
        "drain_timeout",
        quote(&duration_str(g.drain_timeout)),
    );

    for r in &config.routes {
        out.push_str("\n[[route]]\n");
        line(&mut out, "name", quote(&r.name));
        let listen: Vec<String> = r.listen.iter().map(|a| quote(&a.to_string())).collect();
        line(&mut out, "listen", format!("[{}]", listen.join(", ")));
        line(&mut out, "balance", quote(r.balance.as_str()));
        line(&mut out, "buffer_size", size_str(r.buffer_size));
        line(
            &mut out,
            "connect_timeout",
            quote(&duration_str(r.connect_timeout)),
        );
        line(
            &mut out,
            "idle_timeout",
            quote(&duration_str(r.idle_timeout)),
        );
        line(&mut out, "backlog", r.backlog);
        match r.tries {
            Some(n) => line(&mut out, "tries", n),
            None => comment(&mut out, "tries", "every server once"),
        }
        match r.tries_timeout {
            Some(d) => line(&mut out, "tries_timeout", quote(&duration_str(d))),
            None => comment(&mut out, "tries_timeout", "off"),
        }
        line(&mut out, "max_fails", r.max_fails);
        line(
            &mut out,
            "fail_timeout",
            quote(&duration_str(r.fail_timeout)),
        );
        match r.health_interval {
            Some(d) => line(&mut out, "health_interval", quote(&duration_str(d))),
            None => comment(&mut out, "health_interval", "off, no active checks"),
        }
        match r.health_timeout {
            Some(d) => line(&mut out, "health_timeout", quote(&duration_str(d))),
            None => comment(&mut out, "health_timeout", "connect_timeout"),
        }
        line(&mut out, "health_rise", r.health_rise);
        line(&mut out, "health_fall", r.health_fall);
        out.push_str("servers = [\n");
        for s in &r.upstreams {
            let _ = write!(out, "  {{ addr = {}, weight = {}", quote(&s.addr), s.weight);
            if let Some(n) = s.max_conns {
                let _ = write!(out, ", max_conns = {n}");
            }
            let _ = writeln!(out, ", backup = {}, down = {} }},", s.backup, s.down);
        }
        out.push_str("]\n");
    }
    out
}

fn line(out: &mut String, key: &str, value: impl fmt::Display) {
    let _ = writeln!(out, "{key} = {value}");
}

fn comment(out: &mut String, key: &str, default: &str) {
    let _ = writeln!(out, "# {key}: not set (default: {default})");
}

/// `s` as a TOML basic string, quoted and escaped.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The shortest exact spelling `parse_duration` reads back (`90s`, `2m`, `1500ms`).
fn duration_str(d: Duration) -> String {
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

/// A size as `"16KiB"`/`"1MiB"` when exact, else the plain number of bytes.
fn size_str(n: usize) -> String {
    for (unit, per) in [("GiB", 1usize << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= per && n.is_multiple_of(per) {
            return quote(&format!("{}{unit}", n / per));
        }
    }
    n.to_string()
}

// ---------------------------------------------------------------------------------------------
// The shape of the file, as serde reads it. Values stay raw (`toml::Value`) with their spans so
// the conversion below can check them with the command line's parsers and precise messages.

/// A value as written, with where it was written.
type Raw = Spanned<toml::Value>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    max_conns: Option<Raw>,
    workers: Option<Raw>,
    access_log: Option<Raw>,
    access_log_format: Option<Raw>,
    metrics: Option<Raw>,
    drain_timeout: Option<Raw>,
    route: Option<Spanned<Vec<RawRoute>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Raw,
    listen: Spanned<Listen>,
    servers: Spanned<Vec<RawServer>>,
    buffer_size: Option<Raw>,
    connect_timeout: Option<Raw>,
    idle_timeout: Option<Raw>,
    backlog: Option<Raw>,
    balance: Option<Raw>,
    tries: Option<Raw>,
    tries_timeout: Option<Raw>,
    max_fails: Option<Raw>,
    fail_timeout: Option<Raw>,
    health_interval: Option<Raw>,
    health_timeout: Option<Raw>,
    health_rise: Option<Raw>,
    health_fall: Option<Raw>,
}

/// `listen`: one address, or an array of them.
enum Listen {
    One(String),
    Many(Vec<Raw>),
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Listen;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{LISTEN}, or an array of them")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Listen, E> {
                Ok(Listen::One(s.to_string()))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Listen, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Raw>()? {
                    items.push(item);
                }
                Ok(Listen::Many(items))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    addr: Raw,
    weight: Option<Raw>,
    max_conns: Option<Raw>,
    backup: Option<Raw>,
    down: Option<Raw>,
}

// What values accept, completing "expected ...".
const LISTEN: &str = "an address such as \"127.0.0.1:8080\" or \"[::]:8080\"";
const SIZE: &str = "a size such as 16384, \"16k\", \"16KiB\" or \"1MiB\", from 1 byte to 256MiB";
const DURATION: &str = "a duration such as \"500ms\", \"5s\", \"2m\" or \"1h\" (an integer is \
                        seconds), above 0 and at most 30d";
const BALANCE: &str = "one of \"round-robin\", \"least-conn\", \"ip-hash\", \"random-two\"";
const WORKERS: &str = "a whole number from 1 to 1024, or \"auto\"";
const FORMAT: &str = "\"text\" or \"json\"";
const ACCESS_LOG: &str = "a file path, or \"-\" for stdout";
const NAME: &str = "a non-empty string";
const BOOL: &str = "true or false";

/// A value check: the converted value, or the "expected ..., got ..." message.
type Check<T> = Result<T, String>;

/// "expected `what`, got `value`".
fn expected<T>(what: &str, value: &toml::Value) -> Check<T> {
    Err(format!("expected {what}, got {}", describe(value)))
}

/// A value as the user wrote it, short: strings quoted, arrays and tables by kind.
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
        other => other.to_string(),
    }
}

fn whole(min: i64, max: i64) -> impl Fn(&toml::Value) -> Check<i64> {
    move |v| match v {
        toml::Value::Integer(n) if (min..=max).contains(n) => Ok(*n),
        _ => expected(&format!("a whole number from {min} to {max}"), v),
    }
}

fn duration(v: &toml::Value) -> Check<Duration> {
    let parsed = match v {
        toml::Value::String(s) => parse_duration(s),
        toml::Value::Integer(n) if *n > 0 => parse_duration(&n.to_string()),
        _ => None,
    };
    parsed.map_or_else(|| expected(DURATION, v), Ok)
}

fn buffer_size(v: &toml::Value) -> Check<usize> {
    let parsed = match v {
        toml::Value::String(s) => parse_size(s),
        toml::Value::Integer(n) => usize::try_from(*n).ok(),
        _ => None,
    };
    match parsed {
        Some(n) if (1..=MAX_BUFFER_SIZE).contains(&n) => Ok(n),
        _ => expected(SIZE, v),
    }
}

fn string(what: &str, v: &toml::Value) -> Check<String> {
    match v {
        toml::Value::String(s) if !s.is_empty() => Ok(s.clone()),
        _ => expected(what, v),
    }
}

fn boolean(v: &toml::Value) -> Check<bool> {
    v.as_bool().map_or_else(|| expected(BOOL, v), Ok)
}

fn socket_addr(v: &toml::Value) -> Check<SocketAddr> {
    let s = string(LISTEN, v)?;
    s.parse().or_else(|_| expected(LISTEN, v))
}

/// The file being read: turns spans into lines and builds errors.
struct File<'a> {
    text: &'a str,
    path: &'a Path,
}

impl File<'_> {
    fn error(
        &self,
        span: Option<Range<usize>>,
        field: Option<String>,
        message: String,
    ) -> FileError {
        FileError {
            path: self.path.to_path_buf(),
            line: span.map(|s| line_of(self.text, s.start)),
            field,
            message,
        }
    }

    /// An error about the value `raw` at `field`.
    fn at(&self, raw_span: Range<usize>, field: String, message: String) -> FileError {
        self.error(Some(raw_span), Some(field), message)
    }

    /// Checks the optional value of `key` (under `prefix`) with `check`.
    fn opt<T>(
        &self,
        prefix: &str,
        key: &str,
        raw: &Option<Raw>,
        check: impl FnOnce(&toml::Value) -> Check<T>,
    ) -> Result<Option<T>, FileError> {
        raw.as_ref()
            .map(|raw| self.req(&format!("{prefix}{key}"), raw, check))
            .transpose()
    }

    /// Checks the value `raw` of `field` with `check`.
    fn req<T>(
        &self,
        field: &str,
        raw: &Raw,
        check: impl FnOnce(&toml::Value) -> Check<T>,
    ) -> Result<T, FileError> {
        check(raw.get_ref()).map_err(|m| self.at(raw.span(), field.to_string(), m))
    }

    /// Turns a TOML syntax or shape error into a [`FileError`] naming the key at fault.
    fn toml_error(&self, e: &toml::de::Error) -> FileError {
        let span = e.span();
        let message = e.message().to_string();
        // Name the key at the error's position, from the document as far as it parses.
        let (doc, syntax_errors) = DeTable::parse_recoverable(self.text);
        let mut entries = Vec::new();
        collect_entries(doc.get_ref(), "", &mut entries);
        let mut field = span.as_ref().and_then(|span| {
            if syntax_errors.is_empty() {
                field_at(&entries, span)
            } else {
                syntax_field_at(&entries, self.text, span, &message)
            }
        });

        let message = if let Some(rest) = message.strip_prefix("missing field `") {
            // The span is the table missing the key: name the key itself.
            let key = rest.trim_end_matches('`');
            field = Some(match field {
                Some(table) if !table.is_empty() => format!("{table}.{key}"),
                _ => key.to_string(),
            });
            "required key is missing".to_string()
        } else if let Some(rest) = message.strip_prefix("unknown field `") {
            let (key, allowed) = rest.split_once("`, ").unwrap_or((rest, ""));
            let mut m = format!("unknown key, {allowed}");
            let underscored = key.replace('-', "_");
            if underscored != key && allowed.contains(&format!("`{underscored}`")) {
                let _ = write!(m, " (keys use '_' where flags use '-': `{underscored}`)");
            }
            m
        } else if let Some(rest) = message.strip_prefix("invalid type: ") {
            let (got, want) = rest.split_once(", expected ").unwrap_or((rest, ""));
            let huge = got
                .strip_suffix(" as i128")
                .or(got.strip_suffix(" as u128"));
            if let Some(number) = huge {
                // An integer beyond 64 bits, which `toml::Value` cannot hold.
                format!("expected a number from -2^63 to 2^63 - 1, got {number}")
            } else {
                let got = match got {
                    "map" => "a table",
                    "sequence" => "an array",
                    other => other,
                };
                let want = expected_shape(field.as_deref().unwrap_or(""), want);
                format!("expected {want}, got {got}")
            }
        } else {
            message
        };
        self.error(span, field, message)
    }

    fn convert(&self, raw: RawFile) -> Result<Config, FileError> {
        let mut global = Global::default();
        let max_conns = self.opt("", "max_conns", &raw.max_conns, whole(1, 1 << 24))?;
        global.max_conns = max_conns.map(|n| n as usize);
        let workers = self.opt("", "workers", &raw.workers, |v| match v {
            toml::Value::Integer(n) if (1..=1024).contains(n) => Ok(*n as usize),
            toml::Value::String(s) => parse_workers(s).map_or_else(|| expected(WORKERS, v), Ok),
            _ => expected(WORKERS, v),
        })?;
        if let Some(n) = workers {
            global.workers = n;
        }
        let access_log = self.opt("", "access_log", &raw.access_log, |v| string(ACCESS_LOG, v))?;
        global.access_log = access_log;
        let format = self.opt("", "access_log_format", &raw.access_log_format, |v| {
            v.as_str()
                .and_then(LogFormat::parse)
                .map_or_else(|| expected(FORMAT, v), Ok)
        })?;
        if let Some(f) = format {
            global.access_log_format = f;
        }
        global.metrics = self.opt("", "metrics", &raw.metrics, socket_addr)?;
        if let Some(d) = self.opt("", "drain_timeout", &raw.drain_timeout, duration)? {
            global.drain_timeout = d;
        }

        let raw_routes = match &raw.route {
            Some(routes) if !routes.get_ref().is_empty() => routes.get_ref(),
            _ => {
                return Err(self.error(
                    raw.route.as_ref().map(Spanned::span),
                    Some("route".into()),
                    "expected at least one [[route]] table".into(),
                ));
            }
        };
        let mut routes: Vec<Route> = Vec::with_capacity(raw_routes.len());
        let mut listen_seen: Vec<(SocketAddr, usize)> = Vec::new();
        for (i, r) in raw_routes.iter().enumerate() {
            let prefix = format!("route[{i}].");
            let name = self.req(&format!("{prefix}name"), &r.name, |v| string(NAME, v))?;
            if let Some(first) = routes.iter().position(|other| other.name == name) {
                return Err(self.at(
                    r.name.span(),
                    format!("{prefix}name"),
                    format!(
                        "expected a unique route name, but route[{first}] is also named {}",
                        quote(&name)
                    ),
                ));
            }
            let listen = self.listen(&prefix, &r.listen)?;
            for (j, (addr, span)) in listen.iter().enumerate() {
                let field = match r.listen.get_ref() {
                    Listen::Many(_) => format!("{prefix}listen[{j}]"),
                    Listen::One(_) => format!("{prefix}listen"),
                };
                if let Some((_, other)) = listen_seen.iter().find(|(a, _)| a == addr) {
                    let whose = if *other == i {
                        "this route".to_string()
                    } else {
                        format!("route[{other}]")
                    };
                    return Err(self.at(
                        span.clone(),
                        field,
                        format!("expected each listen address in one place, but {addr} is also listened on by {whose}"),
                    ));
                }
                listen_seen.push((*addr, i));
            }
            let listen = listen.into_iter().map(|(a, _)| a).collect();
            let upstreams = self.servers(&prefix, &r.servers)?;
            let mut route = Route::new(name, listen, upstreams);
            self.route_settings(&prefix, r, &mut route)?;
            routes.push(route);
        }
        Ok(Config { global, routes })
    }

    /// The listen addresses of a route, with where each was written.
    fn listen(
        &self,
        prefix: &str,
        raw: &Spanned<Listen>,
    ) -> Result<Vec<(SocketAddr, Range<usize>)>, FileError> {
        let field = format!("{prefix}listen");
        match raw.get_ref() {
            Listen::One(s) => {
                let addr = s.parse().map_err(|_| {
                    let m = format!("expected {LISTEN}, or an array of them, got {}", quote(s));
                    self.at(raw.span(), field, m)
                })?;
                Ok(vec![(addr, raw.span())])
            }
            Listen::Many(items) if items.is_empty() => Err(self.at(
                raw.span(),
                field,
                format!("expected at least one address, such as {LISTEN}"),
            )),
            Listen::Many(items) => items
                .iter()
                .enumerate()
                .map(|(j, item)| {
                    let addr = self.req(&format!("{field}[{j}]"), item, socket_addr)?;
                    Ok((addr, item.span()))
                })
                .collect(),
        }
    }

    /// The servers of a route, checked one by one and then as a pool.
    fn servers(
        &self,
        prefix: &str,
        raw: &Spanned<Vec<RawServer>>,
    ) -> Result<Vec<UpstreamSpec>, FileError> {
        let mut specs = Vec::with_capacity(raw.get_ref().len());
        for (j, s) in raw.get_ref().iter().enumerate() {
            let p = format!("{prefix}servers[{j}].");
            let addr = self.req(&format!("{p}addr"), &s.addr, |v| {
                let what =
                    "HOST:PORT, e.g. \"127.0.0.1:8078\", \"[::1]:8078\" or \"backend.local:80\"";
                let addr = string(what, v)?;
                match parse_upstream(&addr) {
                    // Options belong in their own keys, so the address is the whole string.
                    Ok(spec) if spec.addr == addr => Ok(addr.clone()),
                    _ => expected(what, v),
                }
            })?;
            let mut spec = UpstreamSpec::new(addr);
            if let Some(w) = self.opt(&p, "weight", &s.weight, whole(1, 1000))? {
                spec.weight = w as u32;
            }
            spec.max_conns = self
                .opt(&p, "max_conns", &s.max_conns, whole(1, 1 << 24))?
                .map(|n| n as usize);
            spec.backup = self.opt(&p, "backup", &s.backup, boolean)?.unwrap_or(false);
            spec.down = self.opt(&p, "down", &s.down, boolean)?.unwrap_or(false);
            specs.push(spec);
        }
        if let Err(e) = validate_pool(&specs) {
            // Point at the second mention of a server listed twice, else at the whole list.
            let twice =
                (0..specs.len()).find(|&j| specs[..j].iter().any(|s| s.addr == specs[j].addr));
            let (span, field) = match twice {
                Some(j) => (
                    raw.get_ref()[j].addr.span(),
                    format!("{prefix}servers[{j}].addr"),
                ),
                None => (raw.span(), format!("{prefix}servers")),
            };
            return Err(self.at(span, field, format!("expected {e}")));
        }
        Ok(specs)
    }

    /// The optional per-route settings.
    fn route_settings(&self, p: &str, r: &RawRoute, route: &mut Route) -> Result<(), FileError> {
        if let Some(n) = self.opt(p, "buffer_size", &r.buffer_size, buffer_size)? {
            route.buffer_size = n;
        }
        if let Some(d) = self.opt(p, "connect_timeout", &r.connect_timeout, duration)? {
            route.connect_timeout = d;
        }
        if let Some(d) = self.opt(p, "idle_timeout", &r.idle_timeout, duration)? {
            route.idle_timeout = d;
        }
        if let Some(n) = self.opt(p, "backlog", &r.backlog, whole(1, 65535))? {
            route.backlog = n as u32;
        }
        let balance = self.opt(p, "balance", &r.balance, |v| {
            v.as_str()
                .and_then(BalancePolicy::parse)
                .map_or_else(|| expected(BALANCE, v), Ok)
        })?;
        if let Some(b) = balance {
            route.balance = b;
        }
        route.tries = self
            .opt(p, "tries", &r.tries, whole(1, 1024))?
            .map(|n| n as usize);
        route.tries_timeout = self.opt(p, "tries_timeout", &r.tries_timeout, duration)?;
        if let Some(n) = self.opt(p, "max_fails", &r.max_fails, whole(0, 1_000_000))? {
            route.max_fails = n as u32;
        }
        if let Some(d) = self.opt(p, "fail_timeout", &r.fail_timeout, duration)? {
            route.fail_timeout = d;
        }
        route.health_interval = self.opt(p, "health_interval", &r.health_interval, duration)?;
        route.health_timeout = self.opt(p, "health_timeout", &r.health_timeout, duration)?;
        if let Some(n) = self.opt(p, "health_rise", &r.health_rise, whole(1, 1000))? {
            route.health_rise = n as u32;
        }
        if let Some(n) = self.opt(p, "health_fall", &r.health_fall, whole(1, 1000))? {
            route.health_fall = n as u32;
        }
        Ok(())
    }
}

/// What a structural key holds, for "expected ..." (serde's own words name internal types).
fn expected_shape<'a>(field: &str, serde_expected: &'a str) -> &'a str {
    let last = field.rsplit('.').next().unwrap_or(field);
    if field == "route" {
        "one or more [[route]] tables"
    } else if last.starts_with("route[") {
        "a [[route]] table"
    } else if last == "servers" {
        "an array of servers, such as [{ addr = \"127.0.0.1:80\" }]"
    } else if last.starts_with("servers[") {
        "a server table, such as { addr = \"127.0.0.1:80\" }"
    } else {
        serde_expected
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A key or an array element of the document, with its key path.
struct Entry {
    path: String,
    /// Where the key is written (`None` for an array element).
    key: Option<Range<usize>>,
    /// Where the value is written (for a `[[table]]`, its header).
    value: Range<usize>,
}

/// Lists every key and array element under `table`, parents before their children.
fn collect_entries(table: &DeTable<'_>, prefix: &str, out: &mut Vec<Entry>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.push(Entry {
            path: path.clone(),
            key: Some(key.span()),
            value: value.span(),
        });
        collect_value_entries(value, &path, out);
    }
}

fn collect_value_entries(value: &Spanned<DeValue<'_>>, path: &str, out: &mut Vec<Entry>) {
    match value.get_ref() {
        DeValue::Table(table) => collect_entries(table, path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{path}[{i}]");
                out.push(Entry {
                    path: path.clone(),
                    key: None,
                    value: item.span(),
                });
                collect_value_entries(item, &path, out);
            }
        }
        _ => {}
    }
}

/// The path of the innermost key or value covering `span`: the smallest cover, and of equal
/// ones the deepest.
fn field_at(entries: &[Entry], span: &Range<usize>) -> Option<String> {
    let covers = |outer: &Range<usize>| outer.start <= span.start && span.end <= outer.end;
    entries
        .iter()
        .filter_map(|e| {
            let best = [e.key.clone(), Some(e.value.clone())]
                .into_iter()
                .flatten()
                .filter(|r| covers(r))
                .map(|r| r.len())
                .min()?;
            Some((best, e))
        })
        .min_by_key(|(len, e)| (*len, std::cmp::Reverse(e.path.len())))
        .map(|(_, e)| e.path.clone())
}

/// The key a syntax error is about, from what parsed around it: for a duplicate key, its
/// first definition; else what covers the error; else the last key before it on its line.
fn syntax_field_at(
    entries: &[Entry],
    text: &str,
    span: &Range<usize>,
    message: &str,
) -> Option<String> {
    let before = |e: &&Entry| e.key.as_ref().is_some_and(|k| k.start < span.start);
    if message == "duplicate key" {
        let name = text.get(span.clone())?.trim_matches(['"', '\'']);
        let first = entries
            .iter()
            .filter(before)
            .filter(|e| e.path.rsplit('.').next() == Some(name))
            .max_by_key(|e| e.key.as_ref().map(|k| k.start));
        if let Some(first) = first {
            return Some(first.path.clone());
        }
    }
    if let Some(field) = field_at(entries, span) {
        return Some(field);
    }
    let line = line_of(text, span.start);
    entries
        .iter()
        .filter(before)
        .filter(|e| {
            e.key
                .as_ref()
                .is_some_and(|k| line_of(text, k.start) == line)
        })
        .max_by_key(|e| e.key.as_ref().map(|k| k.start))
        .map(|e| e.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the module documentation.
    const BRIEF: &str = r#"# global settings: the long flag names with '-' turned into '_'
max_conns = 10000
workers = 2            # or "auto"
access_log = "/var/log/ringproxy/access.log"   # or "-"
access_log_format = "text"    # or "json"
metrics = "127.0.0.1:9100"
drain_timeout = "30s"

[[route]]
name = "web"
listen = ["0.0.0.0:8080", "[::]:8080"]    # a single string is accepted too
balance = "least-conn"
connect_timeout = "2s"          # any per-route flag, same name with '_'
buffer_size = "16KiB"           # or an integer number of bytes
servers = [
  { addr = "10.0.0.1:80", weight = 3, max_conns = 200 },
  { addr = "10.0.0.2:80" },
  { addr = "backup.internal:80", backup = true },
]
"#;

    /// A small valid file; tests append to or edit it. Line numbers matter: `[[route]]` is
    /// line 2, `servers` line 5.
    const MINIMAL: &str = "workers = 1\n[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:8080\"\n\
                           servers = [{ addr = \"127.0.0.1:80\" }]\n";

    fn ok(text: &str) -> Config {
        parse(text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
    }

    fn err(text: &str) -> FileError {
        match parse(text, Path::new("test.toml")) {
            Ok(c) => panic!("expected an error, got {c:?}\n---\n{text}"),
            Err(e) => e,
        }
    }

    /// Asserts the error is at `line` and `field` and its message contains `words`.
    #[track_caller]
    fn check(e: &FileError, line: Option<usize>, field: Option<&str>, words: &str) {
        assert_eq!(e.path, Path::new("test.toml"), "{e}");
        assert_eq!(e.line, line, "{e}");
        assert_eq!(e.field.as_deref(), field, "{e}");
        assert!(e.message.contains(words), "'{words}' not in: {e}");
    }

    #[test]
    fn the_documented_example_parses() {
        let c = ok(BRIEF);
        let global = Global {
            max_conns: Some(10000),
            workers: 2,
            access_log: Some("/var/log/ringproxy/access.log".into()),
            access_log_format: LogFormat::Text,
            metrics: Some("127.0.0.1:9100".parse().unwrap()),
            drain_timeout: Duration::from_secs(30),
        };
        let mut route = Route::new(
            "web",
            vec![
                "0.0.0.0:8080".parse().unwrap(),
                "[::]:8080".parse().unwrap(),
            ],
            vec![
                UpstreamSpec {
                    weight: 3,
                    max_conns: Some(200),
                    ..UpstreamSpec::new("10.0.0.1:80")
                },
                UpstreamSpec::new("10.0.0.2:80"),
                UpstreamSpec {
                    backup: true,
                    ..UpstreamSpec::new("backup.internal:80")
                },
            ],
        );
        route.balance = BalancePolicy::LeastConn;
        route.connect_timeout = Duration::from_secs(2);
        route.buffer_size = 16 * 1024;
        let expected = Config {
            global,
            routes: vec![route],
        };
        assert_eq!(c, expected);
    }

    #[test]
    fn defaults_are_applied() {
        let c = ok(&MINIMAL.replace("workers = 1\n", ""));
        let expected = Config::new(
            "127.0.0.1:8080".parse().unwrap(),
            vec![UpstreamSpec::new("127.0.0.1:80")],
        );
        let expected = Config {
            routes: vec![Route {
                name: "a".into(),
                ..expected.routes[0].clone()
            }],
            ..expected
        };
        assert_eq!(c, expected);
        assert_eq!(c.global, Global::default());
    }

    #[test]
    fn listen_may_be_one_string_or_an_array() {
        let one = ok(MINIMAL);
        assert_eq!(
            one.routes[0].listen,
            vec!["127.0.0.1:8080".parse().unwrap()]
        );
        let many = ok(&MINIMAL.replace(
            "listen = \"127.0.0.1:8080\"",
            "listen = [\"127.0.0.1:8080\", \"[::1]:8080\"]",
        ));
        assert_eq!(many.routes[0].listen.len(), 2);
    }

    #[test]
    fn every_setting_is_read() {
        let c = ok(&format!(
            "{MINIMAL}buffer_size = 1000\nconnect_timeout = 3\nidle_timeout = \"1h\"\n\
             backlog = 16\nbalance = \"random-two\"\ntries = 2\ntries_timeout = \"500ms\"\n\
             max_fails = 0\nfail_timeout = \"1m\"\nhealth_interval = \"2s\"\n\
             health_timeout = \"1s\"\nhealth_rise = 1\nhealth_fall = 5\n"
        )
        .replace(
            "workers = 1",
            "workers = \"auto\"\naccess_log_format = \"json\"",
        ));
        assert!(c.global.workers >= 1);
        assert_eq!(c.global.access_log_format, LogFormat::Json);
        let r = &c.routes[0];
        assert_eq!(r.buffer_size, 1000);
        assert_eq!(r.connect_timeout, Duration::from_secs(3));
        assert_eq!(r.idle_timeout, Duration::from_secs(3600));
        assert_eq!(r.backlog, 16);
        assert_eq!(r.balance, BalancePolicy::RandomTwo);
        assert_eq!(r.tries, Some(2));
        assert_eq!(r.tries_timeout, Some(Duration::from_millis(500)));
        assert_eq!((r.max_fails, r.fail_timeout), (0, Duration::from_secs(60)));
        assert_eq!(r.health_interval, Some(Duration::from_secs(2)));
        assert_eq!(r.health_timeout, Some(Duration::from_secs(1)));
        assert_eq!((r.health_rise, r.health_fall), (1, 5));
    }

    #[test]
    fn servers_may_be_tables_of_their_route() {
        let c = ok("[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\n\
                    [[route.servers]]\naddr = \"h:1\"\n[[route.servers]]\naddr = \"h:2\"\ndown = true\n");
        assert_eq!(c.routes[0].upstreams.len(), 2);
        assert!(c.routes[0].upstreams[1].down);
    }

    #[test]
    fn the_example_file_parses() {
        let c = ok(include_str!("../examples/ringproxy.toml"));
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.global.workers, 2);
        let web = &c.routes[0];
        assert_eq!((web.name.as_str(), web.listen.len()), ("web", 2));
        assert_eq!(web.upstreams.len(), 4);
        assert!(web.upstreams[2].backup && web.upstreams[3].down);
        assert_eq!(web.health_interval, Some(Duration::from_secs(2)));
        let db = &c.routes[1];
        assert_eq!(db.name, "db");
        assert_eq!(db.balance, BalancePolicy::IpHash);
        assert_eq!(db.idle_timeout, Duration::from_secs(3600));
        assert_eq!(db.buffer_size, 65536);
        assert_eq!(db.upstreams[1].weight, 2);
        // `load` reads the same file from disk.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ringproxy.toml");
        assert_eq!(load(&path).expect("loads"), c);
    }

    #[test]
    fn render_round_trips() {
        let mut all_set = ok(BRIEF);
        let r = &mut all_set.routes[0];
        r.tries = Some(4);
        r.tries_timeout = Some(Duration::from_millis(1500));
        r.health_interval = Some(Duration::from_secs(90));
        r.health_timeout = Some(Duration::from_secs(86_400));
        r.buffer_size = 1000;
        r.upstreams[1].down = true;
        r.name = "odd \"name\" \\ here".into();
        all_set.global.access_log = Some("C:\\logs\\a \"b\".log".into());
        for config in [
            ok(BRIEF),
            ok(MINIMAL),
            ok(include_str!("../examples/ringproxy.toml")),
            all_set,
        ] {
            let text = render(&config);
            assert_eq!(ok(&text), config, "{text}");
        }
    }

    #[test]
    fn render_shows_every_setting() {
        let text = render(&ok(MINIMAL));
        for key in [
            "max_conns",
            "workers",
            "access_log",
            "access_log_format",
            "metrics",
            "drain_timeout",
            "name",
            "listen",
            "balance",
            "buffer_size",
            "connect_timeout",
            "idle_timeout",
            "backlog",
            "tries",
            "tries_timeout",
            "max_fails",
            "fail_timeout",
            "health_interval",
            "health_timeout",
            "health_rise",
            "health_fall",
            "servers",
            "weight",
            "backup",
            "down",
        ] {
            assert!(text.contains(key), "{key} missing from\n{text}");
        }
        assert!(text.contains("buffer_size = \"16KiB\""), "{text}");
        assert!(text.contains("idle_timeout = \"10m\""), "{text}");
        assert!(
            text.contains("{ addr = \"127.0.0.1:80\", weight = 1, backup = false, down = false }"),
            "{text}"
        );
    }

    #[test]
    fn display_leaves_out_what_is_unknown() {
        let mut e = FileError {
            path: "ringproxy.toml".into(),
            line: Some(14),
            field: Some("route[0].servers[1].weight".into()),
            message: "expected a whole number from 1 to 1000, got 0".into(),
        };
        assert_eq!(
            e.to_string(),
            "ringproxy.toml:14: route[0].servers[1].weight: expected a whole number from 1 to 1000, got 0"
        );
        e.line = None;
        assert_eq!(
            e.to_string(),
            "ringproxy.toml: route[0].servers[1].weight: expected a whole number from 1 to 1000, got 0"
        );
        e.field = None;
        assert_eq!(
            e.to_string(),
            "ringproxy.toml: expected a whole number from 1 to 1000, got 0"
        );
    }

    #[test]
    fn an_unreadable_file_names_the_file() {
        let e = load(Path::new("/nonexistent/ringproxy.toml")).expect_err("no such file");
        assert_eq!(e.path, Path::new("/nonexistent/ringproxy.toml"));
        assert!(
            e.to_string()
                .starts_with("/nonexistent/ringproxy.toml: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = err(&format!("{MINIMAL}backlog = = 3\n"));
        check(&e, Some(6), Some("route[0].backlog"), "extra `=`");
        assert!(!e.message.contains('\n'), "one line: {e}");
        let e = err("workers = 2\n\nmetrics = \"127.0.0.1:1\n");
        check(&e, Some(3), Some("metrics"), "invalid basic string");
        let e = err(&MINIMAL.replace("}]", "}, { addr = \"h:1\", addr = \"h:2\" }]"));
        check(
            &e,
            Some(5),
            Some("route[0].servers[1].addr"),
            "duplicate key",
        );
        // Where nothing around the error parsed, only the line is known.
        check(&err("garbage\n"), Some(1), None, "expected `=`");
        check(
            &err(&format!("{MINIMAL}name = \"b\"\n")),
            Some(6),
            Some("route[0].name"),
            "duplicate key",
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = err(&format!("colour = \"blue\"\n{MINIMAL}"));
        check(&e, Some(1), Some("colour"), "unknown key");
        assert!(e.message.contains("`max_conns`"), "lists the keys: {e}");
        let e = err(&format!("max-conns = 5\n{MINIMAL}"));
        check(&e, Some(1), Some("max-conns"), "`max_conns`");
        check(
            &err(&format!("{MINIMAL}colour = 1\n")),
            Some(6),
            Some("route[0].colour"),
            "unknown key",
        );
        let e = err(&MINIMAL.replace("{ addr", "{ colour = 1, addr"));
        check(
            &e,
            Some(5),
            Some("route[0].servers[0].colour"),
            "unknown key",
        );
        // A per-route key at the top level is unknown there.
        check(
            &err(&format!("balance = \"ip-hash\"\n{MINIMAL}")),
            Some(1),
            Some("balance"),
            "unknown key",
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        check(
            &err(&MINIMAL.replace("workers = 1", "workers = true")),
            Some(1),
            Some("workers"),
            "expected a whole number from 1 to 1024, or \"auto\", got true",
        );
        check(
            &err(&MINIMAL.replace("\"a\"", "7")),
            Some(3),
            Some("route[0].name"),
            "got 7",
        );
        check(
            &err(&MINIMAL.replace("127.0.0.1:80\" }", "127.0.0.1:80\", backup = \"yes\" }")),
            Some(5),
            Some("route[0].servers[0].backup"),
            "expected true or false, got \"yes\"",
        );
        check(
            &err("route = 5\n"),
            Some(1),
            Some("route"),
            "expected one or more [[route]] tables, got integer",
        );
        check(
            &err("[route]\nname = \"a\"\n"),
            Some(1),
            Some("route"),
            "[[route]]",
        );
        check(
            &err(&MINIMAL.replace("[{ addr = \"127.0.0.1:80\" }]", "\"127.0.0.1:80\"")),
            Some(5),
            Some("route[0].servers"),
            "expected an array of servers",
        );
        check(
            &err(&MINIMAL.replace("[{ addr = \"127.0.0.1:80\" }]", "[\"127.0.0.1:80\"]")),
            Some(5),
            Some("route[0].servers[0]"),
            "expected a server table",
        );
        check(
            &err(&MINIMAL.replace("\"127.0.0.1:8080\"", "8080")),
            Some(4),
            Some("route[0].listen"),
            "got integer `8080`",
        );
        check(
            &err(&format!("max_conns = 1.5\n{MINIMAL}")),
            Some(1),
            Some("max_conns"),
            "from 1 to 16777216, got 1.5",
        );
        check(
            &err(&format!("max_conns = 99999999999999999999\n{MINIMAL}")),
            Some(1),
            Some("max_conns"),
            "got integer `99999999999999999999`",
        );
    }

    #[test]
    fn bad_values_are_errors() {
        let with = |extra: &str| err(&format!("{MINIMAL}{extra}\n"));
        check(
            &with("connect_timeout = \"5x\""),
            Some(6),
            Some("route[0].connect_timeout"),
            "expected a duration",
        );
        check(
            &with("idle_timeout = \"0s\""),
            Some(6),
            Some("route[0].idle_timeout"),
            "got \"0s\"",
        );
        check(
            &with("idle_timeout = 0"),
            Some(6),
            Some("route[0].idle_timeout"),
            "got 0",
        );
        check(
            &with("fail_timeout = \"31d\""),
            Some(6),
            Some("route[0].fail_timeout"),
            "at most 30d",
        );
        check(
            &with("buffer_size = \"16 KiB\""),
            Some(6),
            Some("route[0].buffer_size"),
            "expected a size",
        );
        check(
            &with("buffer_size = 0"),
            Some(6),
            Some("route[0].buffer_size"),
            "got 0",
        );
        check(
            &with("buffer_size = \"1g\""),
            Some(6),
            Some("route[0].buffer_size"),
            "256MiB",
        );
        check(
            &with("backlog = 70000"),
            Some(6),
            Some("route[0].backlog"),
            "from 1 to 65535, got 70000",
        );
        check(
            &with("balance = \"fastest\""),
            Some(6),
            Some("route[0].balance"),
            "least-conn",
        );
        check(
            &with("tries = 0"),
            Some(6),
            Some("route[0].tries"),
            "from 1 to 1024",
        );
        check(
            &with("max_fails = -1"),
            Some(6),
            Some("route[0].max_fails"),
            "from 0 to 1000000, got -1",
        );
        check(
            &with("health_rise = 0"),
            Some(6),
            Some("route[0].health_rise"),
            "from 1 to 1000",
        );
        check(
            &with("health_fall = 1001"),
            Some(6),
            Some("route[0].health_fall"),
            "from 1 to 1000",
        );
        let global = |line: &str| err(&MINIMAL.replace("workers = 1", line));
        check(&global("workers = 0"), Some(1), Some("workers"), "got 0");
        check(
            &global("workers = \"many\""),
            Some(1),
            Some("workers"),
            "got \"many\"",
        );
        check(
            &global("max_conns = 0"),
            Some(1),
            Some("max_conns"),
            "got 0",
        );
        check(
            &global("metrics = \"localhost:9100\""),
            Some(1),
            Some("metrics"),
            "expected an address",
        );
        check(
            &global("access_log = \"\""),
            Some(1),
            Some("access_log"),
            "a file path",
        );
        check(
            &global("access_log_format = \"xml\""),
            Some(1),
            Some("access_log_format"),
            "\"text\" or \"json\"",
        );
        check(
            &global("drain_timeout = \"forever\""),
            Some(1),
            Some("drain_timeout"),
            "expected a duration",
        );
    }

    #[test]
    fn bad_servers_are_errors() {
        let servers = |list: &str| err(&MINIMAL.replace("[{ addr = \"127.0.0.1:80\" }]", list));
        check(
            &servers("[\n  { addr = \"h:1\" },\n  { addr = \"h:2\", weight = 0 },\n]"),
            Some(7),
            Some("route[0].servers[1].weight"),
            "expected a whole number from 1 to 1000, got 0",
        );
        check(
            &servers("[{ addr = \"h:1\", weight = 1001 }]"),
            Some(5),
            Some("route[0].servers[0].weight"),
            "got 1001",
        );
        check(
            &servers("[{ addr = \"h:1\", max_conns = 0 }]"),
            Some(5),
            Some("route[0].servers[0].max_conns"),
            "from 1 to 16777216",
        );
        for bad in [
            "nope",
            "h:0",
            "h:70000",
            "::1:80",
            "a b:80",
            "h:1,backup",
            "",
        ] {
            let e = servers(&format!("[{{ addr = \"{bad}\" }}]"));
            check(
                &e,
                Some(5),
                Some("route[0].servers[0].addr"),
                "expected HOST:PORT",
            );
        }
        check(
            &servers(
                "[\n  { addr = \"h:1\" },\n  { addr = \"h:2\" },\n  { addr = \"h:1\", weight = 2 },\n]",
            ),
            Some(8),
            Some("route[0].servers[2].addr"),
            "h:1 is listed twice",
        );
        check(
            &servers("[{ addr = \"h:1\", backup = true }, { addr = \"h:2\", down = true }]"),
            Some(5),
            Some("route[0].servers"),
            "neither down nor backup",
        );
        check(
            &servers("[]"),
            Some(5),
            Some("route[0].servers"),
            "at least one server",
        );
        check(
            &servers("[{ weight = 2 }]"),
            Some(5),
            Some("route[0].servers[0].addr"),
            "required key is missing",
        );
    }

    #[test]
    fn bad_listen_addresses_are_errors() {
        let listen = |value: &str| err(&MINIMAL.replace("\"127.0.0.1:8080\"", value));
        check(
            &listen("\"localhost:8080\""),
            Some(4),
            Some("route[0].listen"),
            "got \"localhost:8080\"",
        );
        check(
            &listen("[\"127.0.0.1:1\", \"nope\"]"),
            Some(4),
            Some("route[0].listen[1]"),
            "got \"nope\"",
        );
        check(
            &listen("[]"),
            Some(4),
            Some("route[0].listen"),
            "at least one address",
        );
        check(
            &listen("[\"127.0.0.1:1\", \"127.0.0.1:1\"]"),
            Some(4),
            Some("route[0].listen[1]"),
            "also listened on by this route",
        );
    }

    #[test]
    fn routes_are_checked_together() {
        let second = |name: &str, listen: &str| {
            format!(
                "{MINIMAL}\n[[route]]\nname = \"{name}\"\nlisten = [\"127.0.0.1:9\", \"{listen}\"]\n\
                 servers = [{{ addr = \"h:1\" }}]\n"
            )
        };
        ok(&second("b", "127.0.0.1:8081"));
        check(
            &err(&second("a", "127.0.0.1:8081")),
            Some(8),
            Some("route[1].name"),
            "route[0] is also named \"a\"",
        );
        check(
            &err(&second("b", "127.0.0.1:8080")),
            Some(9),
            Some("route[1].listen[1]"),
            "127.0.0.1:8080 is also listened on by route[0]",
        );
        check(
            &err("workers = 2\n"),
            None,
            Some("route"),
            "at least one [[route]]",
        );
        check(
            &err("workers = 2\nroute = []\n"),
            Some(2),
            Some("route"),
            "at least one [[route]]",
        );
    }

    #[test]
    fn missing_required_keys_are_errors() {
        let without = |line: &str| err(&MINIMAL.replace(line, ""));
        check(
            &without("name = \"a\"\n"),
            Some(2),
            Some("route[0].name"),
            "required key is missing",
        );
        check(
            &without("listen = \"127.0.0.1:8080\"\n"),
            Some(2),
            Some("route[0].listen"),
            "required key is missing",
        );
        check(
            &without("servers = [{ addr = \"127.0.0.1:80\" }]\n"),
            Some(2),
            Some("route[0].servers"),
            "required key is missing",
        );
        // In a later route, the line is that route's header.
        let e = err(&format!(
            "{MINIMAL}[[route]]\nlisten = \"127.0.0.1:2\"\nservers = [{{ addr = \"h:1\" }}]\n"
        ));
        check(
            &e,
            Some(6),
            Some("route[1].name"),
            "required key is missing",
        );
    }
}
