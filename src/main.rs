//! The `ringproxy` binary: parse the command line (and the configuration file), start
//! logging, run the workers. Exit status: 0 after a clean stop, 1 when the proxy cannot
//! start, 2 on a bad command line or configuration file.

use ringproxy::cli::{self, Command, Source};
use ringproxy::config::raise_fd_limit;
use ringproxy::engine::EngineMode;
use ringproxy::{file, workers};
use std::process::ExitCode;

fn main() -> ExitCode {
    let (source, verbosity, check) = match cli::parse(std::env::args_os().skip(1).collect()) {
        Ok(Command::Run {
            source,
            verbosity,
            check,
        }) => (source, verbosity, check),
        Ok(Command::Help) => {
            print!("{}", cli::help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            match env!("RINGPROXY_COMMIT") {
                "" => println!("ringproxy {}", env!("CARGO_PKG_VERSION")),
                commit => println!("ringproxy {} (commit {commit})", env!("CARGO_PKG_VERSION")),
            }
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ringproxy: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    let (config, path) = match source {
        Source::Flags(config) => (*config, None),
        Source::File(path) => match file::load_all(&path) {
            Ok(config) => (config, Some(path)),
            Err(problems) => {
                for e in problems {
                    eprintln!("ringproxy: {e}");
                }
                return ExitCode::from(2);
            }
        },
    };
    if check {
        return check_config(&config);
    }
    let level = match verbosity {
        i32::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let mut logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level));
    // Log lines go through a queue to a writer thread: a blocked stderr never stalls a loop.
    if let Some(queue) = ringproxy::log_queue::start() {
        logger.target(env_logger::Target::Pipe(Box::new(queue)));
    }
    logger.format(log_line);
    logger.init();
    let outcome = serve(config, path);
    // The queued log lines first, so that an error is the last line printed.
    ringproxy::log_queue::drain(std::time::Duration::from_secs(2));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringproxy: {e}");
            ExitCode::from(1)
        }
    }
}

/// `--check` once the configuration is valid: what a start would find wrong besides the
/// file — names that do not resolve, an access log that cannot be opened — each on its own
/// line (exit 2); else the warnings, the engines and the configuration in full (exit 0).
fn check_config(config: &ringproxy::config::ValidConfig) -> ExitCode {
    let mut problems = Vec::new();
    let mut discovery = ringproxy::discovery::Discovery::new(&config.global);
    if let Err(e) = discovery.resolve(config.clone(), std::time::Instant::now()) {
        problems.push(e.to_string());
    }
    if let Some(target) = &config.global.access_log
        && let Err(e) = ringproxy::access_log::AccessLog::check(target)
    {
        problems.push(format!(
            "access log {target}: cannot be opened for appending: {e}"
        ));
    }
    if !problems.is_empty() {
        for problem in problems {
            eprintln!("ringproxy: {problem}");
        }
        return ExitCode::from(2);
    }
    for warning in config.warnings() {
        eprintln!("ringproxy: warning: {warning}");
    }
    for route in config
        .routes
        .iter()
        .filter(|r| r.settings.engine != EngineMode::Ring)
    {
        let engine =
            ringproxy::engine::describe(route.settings.engine, route.settings.pipe_bytes());
        eprintln!("ringproxy: route {}: {engine}", route.name);
    }
    print!("{}", file::render(config));
    ExitCode::SUCCESS
}

/// Formats one process-log line: time, level, `worker N: ` for a line from a worker's loop,
/// the message; no module path.
fn log_line(out: &mut env_logger::fmt::Formatter, record: &log::Record) -> std::io::Result<()> {
    use std::io::Write;
    let thread = std::thread::current();
    let worker = thread.name().and_then(|name| name.strip_prefix("worker-"));
    let time = out.timestamp_millis();
    match worker {
        Some(n) => writeln!(
            out,
            "{time} {:<5} worker {n}: {}",
            record.level(),
            record.args()
        ),
        None => writeln!(out, "{time} {:<5} {}", record.level(), record.args()),
    }
}

/// Runs the proxy once logging is set up: resolves, binds, runs the workers. Every error
/// here means the proxy could not start or its loop failed (exit status 1).
fn serve(
    config: ringproxy::config::ValidConfig,
    path: Option<std::path::PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    for warning in config.warnings() {
        log::warn!("{warning}");
    }
    if let Err(e) = raise_fd_limit() {
        log::warn!("cannot raise the descriptor limit: {e}");
    }
    let signals = workers::signals()?;
    let mut discovery = ringproxy::discovery::Discovery::new(&config.global);
    let config = discovery.resolve(config, std::time::Instant::now())?;
    let proxies = workers::bind(&config)?;
    let global = &config.config().global;
    let admin = match global.admin {
        Some(addr) => {
            let admin = ringproxy::admin::Admin::bind(addr, global.admin_allow.clone())?;
            log::info!("admin on http://{}/", admin.addr());
            Some(admin)
        }
        None => None,
    };
    discovery.listening_on(&proxies[0].local_addrs());
    workers::run(proxies, signals, path, discovery, admin)?;
    Ok(())
}
