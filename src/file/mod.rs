//! The configuration file (`--config FILE`): TOML in, a validated configuration out, and back.
//!
//! The file holds what the command line holds, and more than one route. Every key is a long
//! flag name with `-` turned into `_`, and means what the flag means:
//!
//! ```toml
//! # process-wide settings, at the top
//! max_conns = 10000
//! workers = 2                  # or "auto"
//! access_log = "/var/log/ringproxy/access.log"   # or "-" for stdout
//!
//! [defaults]                   # any per-route setting, for every route that does not set it
//! connect_timeout = "2s"
//!
//! [[route]]                    # one table per route
//! name = "web"                 # required, unique
//! listen = ["0.0.0.0:8080", "[::]:8080"]   # required; a single string is accepted too
//! balance = "least-conn"       # any per-route setting
//! servers = [                  # required; [[route.servers]] tables work too
//!   { addr = "10.0.0.1:80", weight = 3, max_conns = 200 },
//!   { addr = "backup.internal:80", backup = true },
//! ]
//! ```
//!
//! The keys and their values come from the schema in [`crate::settings`](mod@crate::settings): top-level keys are
//! [`Global`], `[defaults]` and route keys [`RouteSettings`], server keys `addr` and
//! [`ServerOptions`]. The document is read with its spans,
//! each value is checked by its setting's kind as it is read, and the whole by
//! [`Config::validate`]; every error is a [`FileError`] naming the file, the line and the key
//! path (`route[0].servers[1].weight`). [`render`] writes a configuration back as a file that
//! [`parse`] reads to the same configuration.

mod locate;
mod render;

pub use render::render;

use crate::config::{Config, ConfigError, Location, Route, UpstreamSpec, ValidConfig};
use crate::settings::Kind;
use crate::settings::kinds::{
    HOST_PORT, HostPort, LISTEN, ListenEntry, Text, describe, listen_entry,
};
use crate::settings::{Expected, Global, RouteSettings, ServerOptions};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
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
pub fn load(path: &Path) -> Result<ValidConfig, FileError> {
    load_all(path).map_err(first)
}

/// Parses and validates the text of a configuration file; `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<ValidConfig, FileError> {
    parse_all(text, path).map_err(first)
}

/// The first of the problems [`parse_all`] reports (there is always one).
fn first(mut problems: Vec<FileError>) -> FileError {
    problems.swap_remove(0)
}

/// Reads and checks the file at `path` as [`parse_all`] does (for `--check`).
pub fn load_all(path: &Path) -> Result<ValidConfig, Vec<FileError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![FileError {
            path: path.to_path_buf(),
            line: None,
            field: None,
            message: format!("cannot read the configuration file: {e}"),
        }]
    })?;
    parse_all(&text, path)
}

/// Parses and validates the text of a configuration file, reporting every problem found
/// (never an empty list): a syntax error alone, else every key that cannot be read, else
/// every rule the configuration breaks (see [`crate::config::Config::validate_all`]).
pub fn parse_all(text: &str, path: &Path) -> Result<ValidConfig, Vec<FileError>> {
    let file = File { text, path };
    let doc = DeTable::parse(text).map_err(|e| vec![file.syntax_error(&e)])?;
    let doc = doc.get_ref();
    let mut problems = Vec::new();
    let config = file.read(doc, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    config
        .validate_all()
        .map_err(|all| all.iter().map(|e| file.invalid(doc, e)).collect())
}

/// Keys of a route table besides its settings.
const ROUTE_KEYS: [&str; 3] = ["name", "listen", "servers"];
/// What a route name accepts.
const NAME: Text = Text("a non-empty string");
/// What a `servers` value is.
const SERVERS: &str = "an array of servers, such as [{ addr = \"127.0.0.1:80\" }]";
/// What a server is.
const SERVER: &str = "a server table, such as { addr = \"127.0.0.1:80\" }";
const SRV_NAME: &str = "an SRV name such as \"_redis._tcp.service.consul\"";

/// A value as the document holds it, with where it is written.
type Value<'d> = Spanned<DeValue<'d>>;

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
            line: span.map(|s| locate::line_of(self.text, s.start)),
            field,
            message,
        }
    }

    /// "expected `what`, got VALUE" about `value` at `field`.
    fn expected(&self, field: String, value: &Value<'_>, what: &str) -> FileError {
        let message = format!("expected {what}, got {}", describe(value.get_ref()));
        self.error(Some(value.span()), Some(field), message)
    }

    /// A syntax error, naming the key around it when what parsed tells.
    fn syntax_error(&self, e: &toml::de::Error) -> FileError {
        let span = e.span();
        let message = e.message().trim_end().replace('\n', "; ");
        let field = span
            .as_ref()
            .and_then(|span| locate::syntax_field(self.text, span, &message));
        self.error(span, field, message)
    }

    /// An unknown key of `table` (`prefix` is its key path), listing the known ones.
    fn unknown(
        &self,
        prefix: &str,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        known: &[&str],
    ) -> FileError {
        let listed: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        let mut message = format!("unknown key, expected one of {}", listed.join(", "));
        let underscored = key.get_ref().replace('-', "_");
        if underscored != *key.get_ref() && known.contains(&underscored.as_str()) {
            message += &format!(" (keys use '_' where flags use '-': `{underscored}`)");
        } else if prefix.is_empty() && RouteSettings::KEYS.contains(&key.get_ref().as_ref()) {
            message += " (a per-route setting: put it in [defaults] or a [[route]])";
        } else if !prefix.is_empty() && Global::KEYS.contains(&key.get_ref().as_ref()) {
            message += " (a global setting: put it before the first table)";
        }
        self.error(
            Some(key.span()),
            Some(format!("{prefix}{}", key.get_ref())),
            message,
        )
    }

    /// Sets one setting with `set`, or says why the value is not taken.
    fn setting(
        &self,
        field: String,
        value: &Value<'_>,
        set: Option<Result<(), Expected>>,
    ) -> Result<bool, FileError> {
        match set {
            None => Ok(false),
            Some(Ok(())) => Ok(true),
            Some(Err(e)) => Err(self.expected(field, value, &e.0)),
        }
    }

    /// The whole document as a configuration, each value checked as it is read; every
    /// value that cannot be read goes to `problems` (the configuration is then incomplete).
    fn read(&self, doc: &DeTable<'_>, problems: &mut Vec<FileError>) -> Config {
        let mut global = Global::default();
        let mut defaults = RouteSettings::default();
        let mut known: Vec<&str> = Global::KEYS.to_vec();
        known.extend(["defaults", "route"]);
        for (key, value) in in_order(doc) {
            let name = key.get_ref().as_ref();
            match name {
                "route" | "defaults" => {}
                _ => match self.setting(name.into(), value, global.set_toml(name, value.get_ref()))
                {
                    Ok(true) => {}
                    Ok(false) => problems.push(self.unknown("", key, &known)),
                    Err(e) => problems.push(e),
                },
            }
        }
        if let Some(value) = doc.get("defaults") {
            match value.get_ref().as_table() {
                Some(table) => {
                    let keys = RouteSettings::KEYS;
                    problems.extend(self.settings("defaults.", table, &mut defaults, keys));
                }
                None => {
                    problems.push(self.expected("defaults".into(), value, "a [defaults] table"))
                }
            }
        }
        let mut routes = Vec::new();
        match doc.get("route").map(|value| (value, value.get_ref())) {
            None => {}
            Some((_, DeValue::Array(items))) => {
                for (i, item) in items.iter().enumerate() {
                    match self.route(i, item, &defaults) {
                        Ok(route) => routes.push(route),
                        Err(mut e) => problems.append(&mut e),
                    }
                }
            }
            Some((value, _)) => {
                let what = "one or more [[route]] tables";
                problems.push(self.expected("route".into(), value, what));
            }
        }
        Config { global, routes }
    }

    /// Reads route settings from `table` into `settings`; other keys are unknown unless
    /// `also` lists them.
    fn settings(
        &self,
        prefix: &str,
        table: &DeTable<'_>,
        settings: &mut RouteSettings,
        known: &[&str],
    ) -> Vec<FileError> {
        let mut problems = Vec::new();
        for (key, value) in in_order(table) {
            let name = key.get_ref().as_ref();
            let field = format!("{prefix}{name}");
            if known.contains(&name) && !RouteSettings::KEYS.contains(&name) {
                continue;
            }
            match self.setting(field, value, settings.set_toml(name, value.get_ref())) {
                Ok(true) => {}
                Ok(false) => problems.push(self.unknown(prefix, key, known)),
                Err(e) => problems.push(e),
            }
        }
        problems
    }

    /// Route `i`: its settings start from `defaults`. The errors are every setting that
    /// cannot be read and the first problem of its name, listen addresses or servers.
    fn route(
        &self,
        i: usize,
        item: &Value<'_>,
        defaults: &RouteSettings,
    ) -> Result<Route, Vec<FileError>> {
        let prefix = format!("route[{i}].");
        let Some(table) = item.get_ref().as_table() else {
            return Err(vec![self.expected(
                format!("route[{i}]"),
                item,
                "a [[route]] table",
            )]);
        };
        let mut known: Vec<&str> = ROUTE_KEYS.to_vec();
        known.extend(RouteSettings::KEYS);
        let mut settings = defaults.clone();
        let mut problems = self.settings(&prefix, table, &mut settings, &known);
        let required = |key: &str| {
            table.get(key).ok_or_else(|| {
                let field = Some(format!("{prefix}{key}"));
                self.error(Some(item.span()), field, "required key is missing".into())
            })
        };
        let name = required("name").and_then(|name| {
            NAME.parse_toml(name.get_ref())
                .ok_or_else(|| self.expected(format!("{prefix}name"), name, &NAME.expected()))
        });
        let listen = required("listen").and_then(|listen| self.listen(&prefix, listen));
        let upstreams = required("servers").and_then(|servers| self.servers(&prefix, servers));
        match (name, listen, upstreams) {
            (Ok(name), Ok((listen, listen_unix)), Ok(upstreams)) if problems.is_empty() => {
                Ok(Route {
                    name,
                    listen,
                    listen_unix,
                    upstreams,
                    settings,
                })
            }
            (name, listen, upstreams) => {
                problems.extend(name.err());
                problems.extend(listen.err());
                problems.extend(upstreams.err());
                Err(problems)
            }
        }
    }

    /// `listen`: one address, or an array of them.
    fn listen(
        &self,
        prefix: &str,
        value: &Value<'_>,
    ) -> Result<(Vec<std::net::SocketAddr>, Vec<std::path::PathBuf>), FileError> {
        let field = format!("{prefix}listen");
        let (mut addrs, mut paths) = (Vec::new(), Vec::new());
        let mut take = |entry| match entry {
            ListenEntry::Addrs(more) => addrs.extend(more),
            ListenEntry::Unix(path) => paths.push(path),
        };
        match value.get_ref() {
            DeValue::Array(items) => {
                for (j, item) in items.iter().enumerate() {
                    match item.get_ref().as_str().and_then(listen_entry) {
                        Some(entry) => take(entry),
                        None => return Err(self.expected(format!("{field}[{j}]"), item, LISTEN)),
                    }
                }
            }
            v => match v.as_str().and_then(listen_entry) {
                Some(entry) => take(entry),
                None => {
                    return Err(self.expected(
                        field,
                        value,
                        &format!("{LISTEN}, or an array of them"),
                    ));
                }
            },
        }
        Ok((addrs, paths))
    }

    /// `servers`: an array of server tables.
    fn servers(&self, prefix: &str, value: &Value<'_>) -> Result<Vec<UpstreamSpec>, FileError> {
        let field = format!("{prefix}servers");
        let DeValue::Array(items) = value.get_ref() else {
            return Err(self.expected(field, value, SERVERS));
        };
        let mut known = vec!["addr", "srv"];
        known.extend(ServerOptions::KEYS);
        let mut specs = Vec::with_capacity(items.len());
        for (j, item) in items.iter().enumerate() {
            let prefix = format!("{field}[{j}].");
            let Some(table) = item.get_ref().as_table() else {
                return Err(self.expected(format!("{field}[{j}]"), item, SERVER));
            };
            let mut options = ServerOptions::default();
            for (key, v) in in_order(table) {
                let name = key.get_ref().as_ref();
                if name != "addr"
                    && name != "srv"
                    && !self.setting(
                        format!("{prefix}{name}"),
                        v,
                        options.set_toml(name, v.get_ref()),
                    )?
                {
                    return Err(self.unknown(&prefix, key, &known));
                }
            }
            let addr = match (table.get("addr"), table.get("srv")) {
                (Some(addr), None) => HostPort
                    .parse_toml(addr.get_ref())
                    .ok_or_else(|| self.expected(format!("{prefix}addr"), addr, HOST_PORT))?,
                (None, Some(srv)) => srv
                    .get_ref()
                    .as_str()
                    .filter(|name| crate::server_names::is_dns_name(name))
                    .map(|name| format!("{}{name}", crate::config::SRV_PREFIX))
                    .ok_or_else(|| self.expected(format!("{prefix}srv"), srv, SRV_NAME))?,
                (Some(_), Some(srv)) => {
                    let field = Some(format!("{prefix}srv"));
                    let message = "expected either addr or srv, not both".into();
                    return Err(self.error(Some(srv.span()), field, message));
                }
                (None, None) => {
                    let field = Some(format!("{prefix}addr"));
                    let message = "required key is missing (or srv)".into();
                    return Err(self.error(Some(item.span()), field, message));
                }
            };
            specs.push(UpstreamSpec { addr, options });
        }
        Ok(specs)
    }

    /// A validation error, placed where the document wrote what it is about.
    fn invalid(&self, doc: &DeTable<'_>, e: &ConfigError) -> FileError {
        let route = |i: usize| {
            doc.get("route")
                .and_then(|r| r.get_ref().as_array())
                .and_then(|routes| routes.get(i))
        };
        let key = |value: Option<&Value<'_>>, key: &str| {
            value
                .and_then(|v| v.get_ref().as_table())
                .and_then(|t| t.get(key))
                .map(Spanned::span)
        };
        let mut field = e.at.to_string();
        let span = match e.at {
            Location::Global(k) => doc.get(k).map(Spanned::span),
            Location::Routes => doc.get_key_value("route").map(|(k, v)| {
                if v.get_ref().is_array() {
                    v.span()
                } else {
                    k.span()
                }
            }),
            Location::Name(i) => key(route(i), "name"),
            Location::Listen(i) => key(route(i), "listen"),
            Location::ListenAddr(i, j) => {
                let listen = route(i).and_then(|r| r.get_ref().get("listen"));
                match listen.map(|l| l.get_ref()) {
                    Some(DeValue::Array(items)) => items.get(j).map(Spanned::span),
                    _ => {
                        field = format!("route[{i}].listen");
                        listen.map(Spanned::span)
                    }
                }
            }
            Location::Servers(i) => key(route(i), "servers"),
            Location::Server(i, j) | Location::ServerOption(i, j, _) => {
                let servers = route(i).and_then(|r| r.get_ref().get("servers"));
                let server = servers.and_then(|s| s.get_ref().get(j));
                let name = match e.at {
                    Location::ServerOption(_, _, k) => k,
                    _ => "addr",
                };
                key(server, name)
            }
            Location::Setting(i, k) => key(route(i), k).or_else(|| key(doc.get("defaults"), k)),
        };
        self.error(span, Some(field), e.problem.to_string())
    }
}

/// The entries of `table` in the order they are written.
fn in_order<'t, 'd>(
    table: &'t DeTable<'d>,
) -> Vec<(&'t Spanned<std::borrow::Cow<'d, str>>, &'t Value<'d>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

#[cfg(test)]
mod property;
#[cfg(test)]
mod tests;
