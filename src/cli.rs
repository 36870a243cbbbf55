//! The command line: pico-args in, a validated [`Config`] (or help/version) out.
//!
//! Parsing is pure: nothing is resolved, bound or logged here, and every failure is a
//! [`UsageError`] naming the flag, so `main` can print one line and exit with status 2.

use crate::config::{
    BalancePolicy, Config, LogFormat, MAX_BUFFER_SIZE, UpstreamSpec, validate_pool,
};
use crate::error::UsageError;
use std::ffi::OsString;
use std::net::{Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Text printed by `--help`.
pub const HELP: &str = "\
ringproxy - a single-threaded TCP (layer 4) reverse proxy with bounded ring buffers

USAGE:
    ringproxy --listen ADDR --upstream HOST:PORT [--upstream HOST:PORT ...] [OPTIONS]
    ringproxy --config FILE [--check]

REQUIRED:
    -l, --listen ADDR          address to accept clients on: 127.0.0.1:8080, [::]:8080
    -u, --upstream HOST:PORT[,OPTION...]
                               upstream server; repeat for several. IPv4, [IPv6] or a
                               hostname resolved at start. Options: weight=N (default 1),
                               max-conns=N (default unlimited), backup, down

OPTIONS:
        --buffer-size SIZE     bytes per direction per connection [default: 16KiB]
                               (16384, 16k, 16KiB, 1m, 1MiB)
        --connect-timeout DUR  upstream connect timeout [default: 5s]
        --idle-timeout DUR     close a connection idle this long [default: 10m]
                               (500ms, 5s, 2m, 1h, 1d; a bare number is seconds)
        --max-conns N          most connections at once; at the limit new clients wait
                               in the listen backlog [default: (descriptor limit - 32) / 2]
        --backlog N            listen backlog [default: 1024]
        --workers N|auto       independent event loops sharing the port with SO_REUSEPORT,
                               like nginx workers; auto = one per CPU [default: 1]

BALANCING AND HEALTH:
        --balance POLICY       round-robin (smooth weighted), least-conn, ip-hash
                               (consistent hashing), random-two [default: round-robin]
        --tries N              most servers tried per client [default: all servers]
        --tries-timeout DUR    no new attempt after this long [default: off]
        --max-fails N          failed connects within --fail-timeout that make a server
                               unavailable for --fail-timeout; 0 disables [default: 1]
        --fail-timeout DUR     [default: 10s]
        --health-interval DUR  active TCP connect checks every DUR [default: off]
        --health-timeout DUR   check connect timeout [default: --connect-timeout]
        --health-rise N        consecutive good checks to bring a server up [default: 2]
        --health-fall N        consecutive bad checks to take a server down [default: 3]

OPERATING:
    -c, --config FILE          read routes and settings from a TOML file (re-read on SIGHUP);
                               no other configuration flag may be given with it
        --check                validate the configuration, print it and exit (0 or 2)
        --access-log PATH      one line per finished connection; - for stdout [default: off]
        --access-log-format F  text (nginx-like) or json [default: text]
        --metrics ADDR         serve Prometheus metrics on http://ADDR/metrics [default: off]
        --drain-timeout DUR    on SIGTERM/SIGINT, let connections finish this long [default: 30s]
    -v, --verbose              more logs (-v debug: one line per connection; -vv trace)
    -q, --quiet                fewer logs (-q warnings only; -qq errors only)
    -h, --help                 print this help
    -V, --version              print the version

Logs go to stderr; RUST_LOG overrides -v/-q (e.g. RUST_LOG=ringproxy=debug).
Signals: SIGTERM/SIGINT drain (twice: stop now), SIGHUP reloads --config, SIGUSR1 reopens
the access log.
Exit status: 0 stopped by a signal, 1 could not start, 2 bad command line or configuration.
";

/// Where the configuration comes from.
#[derive(Debug)]
pub enum Source {
    /// The single-route flags, already validated.
    Flags(Box<Config>),
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
    /// Print help and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

fn usage(flag: &str, expected: &str, got: Option<&str>) -> UsageError {
    UsageError {
        flag: flag.to_string(),
        expected: expected.to_string(),
        got: got.map(str::to_string),
    }
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
    .map_err(|_| usage(flag, expected, None))
}

/// Parses `args` (without the program name).
pub fn parse(args: Vec<OsString>) -> Result<Command, UsageError> {
    let mut args = pico_args::Arguments::from_vec(args);
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
            return Err(usage(
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
    let config = parse_flags(&mut args)?;
    if let Some(first) = args.finish().first() {
        return Err(usage(
            &first.to_string_lossy(),
            "a known option (see --help)",
            None,
        ));
    }
    Ok(Command::Run {
        source: Source::Flags(Box::new(config)),
        verbosity,
        check,
    })
}

/// The single-route configuration flags; their meaning is the file's (see `file.rs`).
fn parse_flags(args: &mut pico_args::Arguments) -> Result<Config, UsageError> {
    const LISTEN: &str = "an address such as 127.0.0.1:8080 or [::]:8080";
    const SIZE: &str = "a size such as 16384, 16k, 16KiB, 1m or 1MiB, from 1 byte to 256MiB";
    const BALANCE: &str = "one of round-robin, least-conn, ip-hash, random-two";
    const WORKERS: &str = "a whole number from 1 to 1024, or auto";
    const FORMAT: &str = "text or json";

    let listen = opt_string(args, ["-l", "--listen"], "--listen", LISTEN)?
        .ok_or_else(|| usage("--listen", LISTEN, None))?;
    let listen: SocketAddr = listen
        .parse()
        .map_err(|_| usage("--listen", LISTEN, Some(&listen)))?;

    let mut upstreams: Vec<UpstreamSpec> = Vec::new();
    while let Some(u) = opt_string(args, ["-u", "--upstream"], "--upstream", UPSTREAM)? {
        upstreams.push(parse_upstream(&u)?);
    }
    if upstreams.is_empty() {
        return Err(usage("--upstream", UPSTREAM, None));
    }
    validate_pool(&upstreams).map_err(|e| usage("--upstream", &e, None))?;

    let mut config = Config::new(listen, upstreams);
    let route = config.route();
    if let Some(s) = opt_string(args, "--buffer-size", "--buffer-size", SIZE)? {
        route.buffer_size = parse_size(&s)
            .filter(|n| (1..=MAX_BUFFER_SIZE).contains(n))
            .ok_or_else(|| usage("--buffer-size", SIZE, Some(&s)))?;
    }
    if let Some(d) = opt_duration(args, "--connect-timeout")? {
        route.connect_timeout = d;
    }
    if let Some(d) = opt_duration(args, "--idle-timeout")? {
        route.idle_timeout = d;
    }
    if let Some(n) = opt_number(args, "--backlog", 1, 65535)? {
        route.backlog = n as u32;
    }
    if let Some(s) = opt_string(args, "--balance", "--balance", BALANCE)? {
        route.balance =
            BalancePolicy::parse(&s).ok_or_else(|| usage("--balance", BALANCE, Some(&s)))?;
    }
    route.tries = opt_number(args, "--tries", 1, 1024)?.map(|n| n as usize);
    route.tries_timeout = opt_duration(args, "--tries-timeout")?;
    if let Some(n) = opt_number(args, "--max-fails", 0, 1_000_000)? {
        route.max_fails = n as u32;
    }
    if let Some(d) = opt_duration(args, "--fail-timeout")? {
        route.fail_timeout = d;
    }
    route.health_interval = opt_duration(args, "--health-interval")?;
    route.health_timeout = opt_duration(args, "--health-timeout")?;
    if let Some(n) = opt_number(args, "--health-rise", 1, 1000)? {
        route.health_rise = n as u32;
    }
    if let Some(n) = opt_number(args, "--health-fall", 1, 1000)? {
        route.health_fall = n as u32;
    }

    let global = &mut config.global;
    global.max_conns = opt_number(args, "--max-conns", 1, 1 << 24)?.map(|n| n as usize);
    if let Some(s) = opt_string(args, "--workers", "--workers", WORKERS)? {
        global.workers = parse_workers(&s).ok_or_else(|| usage("--workers", WORKERS, Some(&s)))?;
    }
    global.access_log = opt_string(args, "--access-log", "--access-log", "a file path or -")?;
    if let Some(s) = opt_string(args, "--access-log-format", "--access-log-format", FORMAT)? {
        global.access_log_format =
            LogFormat::parse(&s).ok_or_else(|| usage("--access-log-format", FORMAT, Some(&s)))?;
    }
    if let Some(s) = opt_string(args, "--metrics", "--metrics", LISTEN)? {
        global.metrics = Some(
            s.parse()
                .map_err(|_| usage("--metrics", LISTEN, Some(&s)))?,
        );
    }
    if let Some(d) = opt_duration(args, "--drain-timeout")? {
        global.drain_timeout = d;
    }
    Ok(config)
}

/// `N` in 1..=1024, or `auto` for one per CPU.
pub fn parse_workers(s: &str) -> Option<usize> {
    if s == "auto" {
        return Some(std::thread::available_parallelism().map_or(1, |n| n.get().min(1024)));
    }
    s.parse().ok().filter(|n| (1..=1024).contains(n))
}

/// Reads an optional whole number in `min..=max`.
fn opt_number(
    args: &mut pico_args::Arguments,
    flag: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, UsageError> {
    let expected = format!("a whole number from {min} to {max}");
    let Some(s) = opt_string(args, flag, flag, &expected)? else {
        return Ok(None);
    };
    s.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .map(Some)
        .ok_or_else(|| usage(flag, &expected, Some(&s)))
}

/// Reads an optional duration.
fn opt_duration(
    args: &mut pico_args::Arguments,
    flag: &'static str,
) -> Result<Option<Duration>, UsageError> {
    const DURATION: &str = "a duration such as 500ms, 5s, 2m or 1h, above 0 and at most 30d";
    let Some(s) = opt_string(args, flag, flag, DURATION)? else {
        return Ok(None);
    };
    parse_duration(&s)
        .map(Some)
        .ok_or_else(|| usage(flag, DURATION, Some(&s)))
}

/// What `--upstream` expects.
const UPSTREAM: &str = "HOST:PORT, e.g. 127.0.0.1:8078, [::1]:8078 or backend.local:80";

/// Parses `HOST:PORT[,weight=N][,max-conns=N][,backup][,down]`.
pub fn parse_upstream(s: &str) -> Result<UpstreamSpec, UsageError> {
    const OPTIONS: &str = "a server option: weight=N (1 to 1000), max-conns=N (1 to 16777216), \
                           backup or down";
    let mut parts = s.split(',');
    let addr = parts.next().unwrap_or_default();
    if !is_host_port(addr) {
        return Err(usage("--upstream", UPSTREAM, Some(s)));
    }
    let mut spec = UpstreamSpec::new(addr);
    for option in parts {
        let bad = || usage("--upstream", OPTIONS, Some(option));
        match option.split_once('=') {
            None if option == "backup" => spec.backup = true,
            None if option == "down" => spec.down = true,
            Some(("weight", n)) => {
                spec.weight = n
                    .parse()
                    .ok()
                    .filter(|w| (1..=1000).contains(w))
                    .ok_or_else(bad)?;
            }
            Some(("max-conns" | "max_conns", n)) => {
                spec.max_conns = Some(
                    n.parse()
                        .ok()
                        .filter(|m| (1..=1 << 24).contains(m))
                        .ok_or_else(bad)?,
                );
            }
            _ => return Err(bad()),
        }
    }
    Ok(spec)
}

/// True for `host:port` where host is a name, an IPv4 address or a bracketed IPv6 address,
/// and port is 1..=65535.
fn is_host_port(s: &str) -> bool {
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
    let millis = number.checked_mul(millis_per_unit)?;
    (1..=30 * 86_400_000)
        .contains(&millis)
        .then(|| Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from).collect())
    }

    fn full_config(args: &[&str]) -> Config {
        match run(args) {
            Ok(Command::Run {
                source: Source::Flags(config),
                ..
            }) => *config,
            other => panic!("expected a run command, got {other:?}"),
        }
    }

    /// The single route of a flag configuration.
    fn config(args: &[&str]) -> crate::config::Route {
        full_config(args).routes.remove(0)
    }

    fn error_flag(args: &[&str]) -> String {
        run(args).expect_err("expected a usage error").flag
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
    fn minimal_command_line_uses_defaults() {
        let c = config(&["-l", "127.0.0.1:8080", "-u", "127.0.0.1:8078"]);
        assert_eq!(c.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(c.upstreams, vec![UpstreamSpec::new("127.0.0.1:8078")]);
        assert_eq!(c.buffer_size, 16384);
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.idle_timeout, Duration::from_secs(600));
        assert_eq!(c.backlog, 1024);
        let global = full_config(&["-l", "127.0.0.1:8080", "-u", "127.0.0.1:8078"]).global;
        assert_eq!(global, crate::config::Global::default());
    }

    #[test]
    fn every_flag_is_read() {
        let c = config(&[
            "--listen",
            "[::1]:9000",
            "--upstream",
            "a:1",
            "-u",
            "[::1]:2",
            "--buffer-size",
            "1MiB",
            "--connect-timeout",
            "250ms",
            "--idle-timeout",
            "1h",
            "--backlog",
            "16",
        ]);
        assert_eq!(c.listen, vec!["[::1]:9000".parse().unwrap()]);
        assert_eq!(c.upstreams.len(), 2);
        assert_eq!(c.buffer_size, 1 << 20);
        assert_eq!(c.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.idle_timeout, Duration::from_secs(3600));
        assert_eq!(c.backlog, 16);
        let g = full_config(&[
            "-l",
            "127.0.0.1:1",
            "-u",
            "h:1",
            "--max-conns",
            "10",
            "--workers",
            "4",
            "--access-log",
            "-",
            "--access-log-format",
            "json",
            "--metrics",
            "127.0.0.1:9100",
            "--drain-timeout",
            "2s",
        ])
        .global;
        assert_eq!(g.max_conns, Some(10));
        assert_eq!(g.workers, 4);
        assert_eq!(g.access_log.as_deref(), Some("-"));
        assert_eq!(g.access_log_format, LogFormat::Json);
        assert_eq!(g.metrics, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(g.drain_timeout, Duration::from_secs(2));
        let g = full_config(&["-l", "127.0.0.1:1", "-u", "h:1", "--workers", "auto"]).global;
        assert!(g.workers >= 1);
    }

    #[test]
    fn config_file_excludes_other_configuration_flags() {
        match run(&["--config", "x.toml", "--check"]) {
            Ok(Command::Run {
                source: Source::File(path),
                check: true,
                ..
            }) => assert_eq!(path, PathBuf::from("x.toml")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            error_flag(&["--config", "x.toml", "-l", "127.0.0.1:1"]),
            "-l"
        );
    }

    #[test]
    fn server_options_and_pool_flags() {
        let c = config(&[
            "-l",
            "127.0.0.1:1",
            "-u",
            "10.0.0.1:80,weight=3,max-conns=200",
            "-u",
            "10.0.0.2:80",
            "-u",
            "10.0.0.3:80,backup",
            "-u",
            "10.0.0.4:80,down",
            "--balance",
            "least-conn",
            "--tries",
            "2",
            "--tries-timeout",
            "3s",
            "--max-fails",
            "0",
            "--fail-timeout",
            "30s",
            "--health-interval",
            "2s",
            "--health-timeout",
            "1s",
            "--health-rise",
            "1",
            "--health-fall",
            "5",
        ]);
        let expected = UpstreamSpec {
            weight: 3,
            max_conns: Some(200),
            ..UpstreamSpec::new("10.0.0.1:80")
        };
        assert_eq!(c.upstreams[0], expected);
        assert!(c.upstreams[2].backup && !c.upstreams[2].down);
        assert!(c.upstreams[3].down);
        assert_eq!(c.balance, BalancePolicy::LeastConn);
        assert_eq!(c.tries, Some(2));
        assert_eq!(c.tries_timeout, Some(Duration::from_secs(3)));
        assert_eq!((c.max_fails, c.fail_timeout), (0, Duration::from_secs(30)));
        assert_eq!(c.health_interval, Some(Duration::from_secs(2)));
        assert_eq!(c.health_timeout, Some(Duration::from_secs(1)));
        assert_eq!((c.health_rise, c.health_fall), (1, 5));
        for policy in ["round-robin", "ip-hash", "random-two"] {
            let c = config(&["-l", "127.0.0.1:1", "-u", "h:1", "--balance", policy]);
            assert_eq!(c.balance.as_str(), policy);
        }
    }

    #[test]
    fn bad_pools_are_usage_errors() {
        let l = ["-l", "127.0.0.1:1"];
        let with = |extra: &[&str]| {
            let mut v = l.to_vec();
            v.extend_from_slice(extra);
            run(&v).expect_err("expected a usage error")
        };
        for bad in [
            "h:1,weight=0",
            "h:1,weight=x",
            "h:1,colour=blue",
            "h:1,max-conns=0",
            "h:1,",
        ] {
            let e = with(&["-u", bad]);
            assert_eq!(e.flag, "--upstream", "{bad}");
        }
        let e = with(&["-u", "h:1,weight=2", "-u", "h:1"]);
        assert!(e.to_string().contains("each server listed once"), "{e}");
        let e = with(&["-u", "h:1,backup", "-u", "h:2,down"]);
        assert!(e.to_string().contains("neither down nor backup"), "{e}");
        assert_eq!(
            with(&["-u", "h:1", "--balance", "fastest"]).flag,
            "--balance"
        );
        assert_eq!(with(&["-u", "h:1", "--tries", "0"]).flag, "--tries");
        assert_eq!(
            with(&["-u", "h:1", "--health-rise", "0"]).flag,
            "--health-rise"
        );
        assert_eq!(
            with(&["-u", "h:1", "--health-interval", "0s"]).flag,
            "--health-interval"
        );
    }

    #[test]
    fn verbosity_counts() {
        match run(&["-vv", "-l", "127.0.0.1:1", "-u", "h:1"]) {
            Ok(Command::Run { verbosity, .. }) => assert_eq!(verbosity, 2),
            other => panic!("{other:?}"),
        }
        match run(&["-q", "-l", "127.0.0.1:1", "-u", "h:1"]) {
            Ok(Command::Run { verbosity, .. }) => assert_eq!(verbosity, -1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(run(&["--help"]), Ok(Command::Help)));
        assert!(matches!(run(&["-V"]), Ok(Command::Version)));
    }

    #[test]
    fn bad_values_name_their_flag() {
        let base = ["-l", "127.0.0.1:1", "-u", "h:1"];
        let with = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            error_flag(&v)
        };
        assert_eq!(error_flag(&["-u", "h:1"]), "--listen");
        assert_eq!(error_flag(&["-l", "127.0.0.1:1"]), "--upstream");
        assert_eq!(error_flag(&["-l", "localhost:80", "-u", "h:1"]), "--listen");
        assert_eq!(
            error_flag(&["-l", "127.0.0.1:1", "-u", "nope"]),
            "--upstream"
        );
        assert_eq!(with(&["--buffer-size", "0"]), "--buffer-size");
        assert_eq!(with(&["--buffer-size", "1g"]), "--buffer-size");
        assert_eq!(with(&["--connect-timeout", "0"]), "--connect-timeout");
        assert_eq!(with(&["--idle-timeout", "forever"]), "--idle-timeout");
        assert_eq!(with(&["--max-conns", "0"]), "--max-conns");
        assert_eq!(with(&["--backlog", "70000"]), "--backlog");
        assert_eq!(with(&["--workers", "0"]), "--workers");
        assert_eq!(with(&["--workers", "1025"]), "--workers");
        assert_eq!(with(&["--workers", "many"]), "--workers");
        assert_eq!(with(&["--buffer-size"]), "--buffer-size");
        assert_eq!(with(&["--frobnicate"]), "--frobnicate");
    }
}
