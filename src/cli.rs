//! The command line: pico-args in, a validated configuration (or help/version) out.
//!
//! Every setting flag comes from the schema in [`crate::settings`](mod@crate::settings): its name is the file key
//! with `_` turned into `-`, its value is read by the setting's kind, and `--help` lists it
//! with its default. Parsing is pure: nothing is resolved, bound or logged here, and every
//! failure is a [`UsageError`] naming the flag, so `main` can print one line and exit 2.

use crate::config::SERVER_ADDR;
use crate::config::{Config, Location, Route, UpstreamSpec, ValidConfig};
use crate::error::UsageError;
use crate::settings::kinds::{HOST_PORT, LISTEN, ListenEntry, listen_entry};
use crate::settings::{Field, Global, RouteSettings, Section, ServerOptions, flag_of};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Where the configuration comes from.
#[derive(Debug)]
pub enum Source {
    /// The single-route flags, already validated.
    Flags(Box<ValidConfig>),
    /// A TOML file, read (and re-read on SIGHUP) by `file::load`.
    File(PathBuf),
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the proxy (or, with `check`, validate and print the configuration).
    Run {
        /// Flags or a file.
        source: Source,
        /// `-v` count minus `-q` count.
        verbosity: i32,
        /// `--check`: print the effective configuration instead of running.
        check: bool,
    },
    /// Print [`help`] and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// Reads the value of `flag` as a string, mapping pico-args errors to a [`UsageError`].
fn opt_string(
    args: &mut pico_args::Arguments,
    keys: impl Into<pico_args::Keys>,
    flag: &str,
    expected: &str,
) -> Result<Option<String>, UsageError> {
    args.opt_value_from_os_str(keys, |s: &std::ffi::OsStr| {
        s.to_str().map(str::to_string).ok_or("not valid UTF-8")
    })
    .map_err(|_| UsageError::expected(flag, expected, None))
}

/// The flags that take a value and are not settings (with [`OTHER_SWITCHES`], every flag
/// that is not a setting's).
const OTHER_VALUE_FLAGS: [&str; 6] = ["--listen", "--upstream", "--config", "-l", "-u", "-c"];

/// `args` with every `FLAG=VALUE` of a flag that takes a value split into `FLAG` `VALUE`, so
/// `--listen=127.0.0.1:8080` means `--listen 127.0.0.1:8080` (as in GNU tools). Anything
/// else is left as it is: a switch given a value stays one unknown argument, named whole.
fn split_equals(args: Vec<OsString>) -> Vec<OsString> {
    let takes_value = |name: &str| {
        OTHER_VALUE_FLAGS.contains(&name)
            || RouteSettings::fields()
                .iter()
                .chain(Global::fields())
                .any(|f| !f.switch && f.flag == name)
    };
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        match arg.to_str().and_then(|s| s.split_once('=')) {
            Some((name, value)) if name.starts_with('-') && takes_value(name) => {
                out.push(OsString::from(name));
                out.push(OsString::from(value));
            }
            _ => out.push(arg),
        }
    }
    out
}

/// Parses `args` (without the program name).
pub fn parse(args: Vec<OsString>) -> Result<Command, UsageError> {
    let mut args = pico_args::Arguments::from_vec(split_equals(args));
    if args.contains(["-h", "--help"]) {
        return Ok(Command::Help);
    }
    if args.contains(["-V", "--version"]) {
        return Ok(Command::Version);
    }
    let mut verbosity = 0;
    while args.contains(["-v", "--verbose"]) {
        verbosity += 1;
    }
    while args.contains(["-q", "--quiet"]) {
        verbosity -= 1;
    }
    let check = args.contains("--check");
    const FILE: &str = "the path of a TOML configuration file";
    if let Some(path) = opt_string(&mut args, ["-c", "--config"], "--config", FILE)? {
        if let Some(first) = args.finish().first() {
            return Err(UsageError::expected(
                &first.to_string_lossy(),
                "no other configuration flag with --config (put settings in the file)",
                None,
            ));
        }
        return Ok(Command::Run {
            source: Source::File(PathBuf::from(path)),
            verbosity,
            check,
        });
    }
    let config = parse_flags(args)?;
    let config = config.validate().map_err(|e| UsageError {
        flag: match e.at {
            Location::Global(key) | Location::Setting(_, key) => flag_of(key),
            Location::Routes | Location::Name(_) | Location::Listen(_) => "--listen".into(),
            Location::ListenAddr(..) => "--listen".into(),
            Location::Servers(_) | Location::Server(..) | Location::ServerOption(..) => {
                "--upstream".into()
            }
        },
        message: e.problem.to_string(),
    })?;
    Ok(Command::Run {
        source: Source::Flags(Box::new(config)),
        verbosity,
        check,
    })
}

/// The switches that are not settings.
const OTHER_SWITCHES: [&str; 5] = ["--check", "--verbose", "--quiet", "--help", "--version"];

/// The single-route configuration: `--listen`, `--upstream` and every setting's flag. An
/// unknown flag is named (with the closest known one), before a missing required flag.
fn parse_flags(mut args: pico_args::Arguments) -> Result<Config, UsageError> {
    let listen = opt_string(&mut args, ["-l", "--listen"], "--listen", LISTEN)?;
    once(&mut args, ["-l", "--listen"], "--listen")?;
    let mut upstreams: Vec<UpstreamSpec> = Vec::new();
    while let Some(u) = opt_string(&mut args, ["-u", "--upstream"], "--upstream", HOST_PORT)? {
        upstreams.push(parse_upstream(&u)?);
    }
    let mut route = RouteSettings::default();
    for field in RouteSettings::fields() {
        read_setting(&mut args, field, |key, s| route.set_flag(key, s))?;
    }
    let mut global = Global::default();
    for field in Global::fields() {
        read_setting(&mut args, field, |key, s| global.set_flag(key, s))?;
    }
    if let Some(first) = args.finish().first() {
        return Err(unknown(&first.to_string_lossy()));
    }
    let listen = listen.ok_or_else(|| required("--listen", LISTEN))?;
    let listen = listen_entry(&listen)
        .ok_or_else(|| UsageError::expected("--listen", LISTEN, Some(&listen)))?;
    if upstreams.is_empty() {
        return Err(required("--upstream", SERVER_ADDR));
    }
    let mut config = Config {
        global: Global::default(),
        routes: vec![Route::new("default", Vec::new(), upstreams)],
    };
    match listen {
        ListenEntry::Addrs(addrs) => config.route().listen = addrs,
        ListenEntry::Unix(path) => config.route().listen_unix = vec![path],
    }
    config.route().settings = route;
    config.global = global;
    Ok(config)
}

/// A required flag that is missing.
fn required(flag: &str, expected: &str) -> UsageError {
    UsageError {
        flag: flag.to_string(),
        message: format!("required, expected {expected}"),
    }
}

/// An argument that is no flag the command line knows: named, with the closest known flag
/// when one is close (a typo, or a prefix).
fn unknown(arg: &str) -> UsageError {
    let name = arg.split('=').next().unwrap_or(arg);
    let known = (OTHER_VALUE_FLAGS.iter().chain(&OTHER_SWITCHES))
        .copied()
        .chain(RouteSettings::fields().iter().map(|f| f.flag))
        .chain(Global::fields().iter().map(|f| f.flag));
    let closest = known
        .filter(|k| k.starts_with("--"))
        .map(|k| (edit_distance(name, k), k))
        .filter(|&(d, k)| d <= 2 || (name.len() > 4 && k.starts_with(name)))
        .min();
    let message = match (name.starts_with('-'), closest) {
        (true, Some((_, flag))) => format!("unknown flag; did you mean {flag}?"),
        (true, None) => "unknown flag".to_string(),
        (false, _) => "unexpected argument (every value follows its flag)".to_string(),
    };
    UsageError {
        flag: arg.to_string(),
        message,
    }
}

/// Levenshtein distance between `a` and `b` (flags are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Fails when a flag that takes one value was given again.
fn once(
    args: &mut pico_args::Arguments,
    keys: impl Into<pico_args::Keys>,
    flag: &str,
) -> Result<(), UsageError> {
    match opt_string(args, keys, flag, "a value")? {
        Some(again) => Err(UsageError {
            flag: flag.to_string(),
            message: format!("given more than once (again as '{again}'); it takes one value"),
        }),
        None => Ok(()),
    }
}

/// Reads `field`'s flag, if given, into the settings through `set`.
fn read_setting(
    args: &mut pico_args::Arguments,
    field: &Field,
    set: impl FnOnce(&str, &str) -> Option<Result<(), crate::settings::Expected>>,
) -> Result<(), UsageError> {
    let flag = field.flag;
    let value = if field.switch {
        args.contains(flag).then(|| "true".to_string())
    } else if field.list {
        let mut values = Vec::new();
        while let Some(value) = opt_string(args, flag, flag, "a value")? {
            values.push(value);
        }
        (!values.is_empty()).then(|| values.join(","))
    } else {
        let value = opt_string(args, flag, flag, "a value")?;
        once(args, flag, flag)?;
        value
    };
    let Some(value) = value else {
        return Ok(());
    };
    match set(field.key, &value) {
        Some(Err(e)) => Err(UsageError::expected(flag, &e.0, Some(&value))),
        Some(Ok(())) | None => Ok(()),
    }
}

/// Parses `HOST:PORT[,OPTION...]`: options are server option keys, written `key=value` (with
/// `-` or `_`) or, for on/off options, a bare `key`.
pub fn parse_upstream(s: &str) -> Result<UpstreamSpec, UsageError> {
    let mut parts = s.split(',');
    let addr = parts.next().unwrap_or_default();
    if !crate::config::is_server_addr(addr) {
        return Err(UsageError::expected("--upstream", SERVER_ADDR, Some(s)));
    }
    let mut spec = UpstreamSpec::new(addr);
    let fields = ServerOptions::fields();
    for option in parts {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        let key = key.replace('-', "_");
        let field = fields
            .iter()
            .find(|f| f.key == key && f.switch == value.is_empty());
        let Some(field) = field else {
            let expected = format!("a server option: {}", server_options_help(fields));
            return Err(UsageError::expected("--upstream", &expected, Some(option)));
        };
        let value = if field.switch { "true" } else { value };
        if let Some(Err(e)) = spec.options.set_flag(field.key, value) {
            let expected = format!("{}={}", flag_of(field.key).trim_start_matches('-'), e.0);
            return Err(UsageError::expected("--upstream", &expected, Some(option)));
        }
    }
    Ok(spec)
}

/// `weight=N (default 1), max-conns=N (default unlimited), backup, down`.
fn server_options_help(fields: &[Field]) -> String {
    let described: Vec<String> = fields
        .iter()
        .map(|f| {
            let name = flag_of(f.key).trim_start_matches('-').to_string();
            if f.switch {
                name
            } else {
                format!("{name}={} (default {})", f.meta, f.default)
            }
        })
        .collect();
    described.join(", ")
}

/// Column at which help texts start.
const HELP_COLUMN: usize = 31;

/// One option's help: the flag, then its text and default, wrapped at `HELP_COLUMN`.
fn help_entry(out: &mut String, flag: &str, text: &str, default: Option<&str>) {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if let (Some(default), Some(last)) = (default, lines.last_mut()) {
        let tag = format!(" [default: {default}]");
        if HELP_COLUMN + last.len() + tag.len() <= 92 {
            last.push_str(&tag);
        } else {
            lines.push(tag.trim_start().to_string());
        }
    }
    let _ = write!(out, "{flag}");
    let mut first = true;
    if flag.len() + 1 >= HELP_COLUMN {
        out.push('\n');
        first = false;
    }
    for line in lines {
        let pad = if first {
            HELP_COLUMN - flag.len()
        } else {
            HELP_COLUMN
        };
        let _ = writeln!(out, "{:pad$}{line}", "");
        first = false;
    }
}

fn help_fields(out: &mut String, section: Section) {
    let fields = RouteSettings::fields().iter().chain(Global::fields());
    for field in fields.filter(|f| f.section == section) {
        let flag = format!("        {} {}", field.flag, field.meta);
        help_entry(out, flag.trim_end(), field.help, Some(&field.default));
    }
}

/// The text `--help` prints: usage, then every flag with its default, from the schema.
pub fn help() -> String {
    let mut out = String::from(
        "ringproxy - a TCP (layer 4) reverse proxy and load balancer with bounded buffers\n\n\
         USAGE:\n    \
         ringproxy --listen ADDR --upstream HOST:PORT [--upstream HOST:PORT ...] [OPTIONS]\n    \
         ringproxy --config FILE [--check]\n\nREQUIRED:\n",
    );
    let upstream_help = format!(
        "upstream server, repeatable: IPv4, [IPv6], unix:PATH or a\n\
         hostname resolved at start. Options: {}",
        server_options_help(ServerOptions::fields())
    );
    help_entry(
        &mut out,
        "    -l, --listen ADDR",
        "accept clients on: 127.0.0.1:8080, [::]:8080, localhost:8080,\n\
         unix:/run/ringproxy/web.sock",
        None,
    );
    let _ = writeln!(out, "    -u, --upstream HOST:PORT[,OPTION...]");
    help_entry(&mut out, "", &wrap(&upstream_help, 92 - HELP_COLUMN), None);
    out.push_str("\nOPTIONS:\n");
    help_fields(&mut out, Section::Options);
    out.push_str("\nBALANCING AND HEALTH:\n");
    help_fields(&mut out, Section::Balancing);
    out.push_str("\nCLIENT IDENTITY (PROXY PROTOCOL):\n");
    help_fields(&mut out, Section::Identity);
    out.push_str("\nTLS PASSTHROUGH (ROUTING BY SERVER NAME):\n");
    help_fields(&mut out, Section::Routing);
    out.push_str("\nACCESS AND LIMITS:\n");
    help_fields(&mut out, Section::Limits);
    out.push_str("\nOPERATING:\n");
    help_entry(
        &mut out,
        "    -c, --config FILE",
        "read routes and settings from a TOML file (re-read on\n\
         SIGHUP); no other configuration flag may be given with it",
        None,
    );
    help_entry(
        &mut out,
        "        --check",
        "validate the configuration, print it and exit (0 or 2)",
        None,
    );
    help_fields(&mut out, Section::Operating);
    for (flag, text) in [
        (
            "    -v, --verbose",
            "more logs (-v debug: one line per connection; -vv trace)",
        ),
        (
            "    -q, --quiet",
            "fewer logs (-q warnings only; -qq errors only)",
        ),
        ("    -h, --help", "print this help"),
        ("    -V, --version", "print the version"),
    ] {
        help_entry(&mut out, flag, text, None);
    }
    out.push_str(
        "\nLogs go to stderr; RUST_LOG overrides -v/-q (e.g. RUST_LOG=ringproxy=debug).\n\
         Signals: SIGTERM/SIGINT drain (twice: stop now), SIGHUP reloads --config, SIGUSR1 \
         reopens\nthe access log.\n\
         Exit status: 0 stopped by a signal, 1 could not start, 2 bad command line or \
         configuration.\n",
    );
    out
}

/// `text` with its lines rewrapped at `width` columns (words are never split).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.len() > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

#[cfg(test)]
mod property;
#[cfg(test)]
mod tests;
