//! The `ringproxy` binary: parse the command line (and the configuration file), start
//! logging, run the workers. Exit status: 0 after a clean stop, 1 when the proxy cannot
//! start, 2 on a bad command line or configuration file.

use ringproxy::cli::{self, Command, Source};
use ringproxy::config::raise_fd_limit;
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
            println!("ringproxy {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ringproxy: {e} (see --help)");
            return ExitCode::from(2);
        }
    };
    let (config, path) = match source {
        Source::Flags(config) => (*config, None),
        Source::File(path) => match file::load(&path) {
            Ok(config) => (config, Some(path)),
            Err(e) => {
                eprintln!("ringproxy: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if check {
        for warning in config.warnings() {
            eprintln!("ringproxy: warning: {warning}");
        }
        print!("{}", file::render(&config));
        return ExitCode::SUCCESS;
    }
    let level = match verbosity {
        i32::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    for warning in config.warnings() {
        log::warn!("{warning}");
    }
    if let Err(e) = raise_fd_limit() {
        log::warn!("cannot raise the descriptor limit: {e}");
    }
    let signals = match workers::signals() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("ringproxy: {e}");
            return ExitCode::from(1);
        }
    };
    let config = match config.resolve() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ringproxy: {e}");
            return ExitCode::from(1);
        }
    };
    let proxies = match workers::bind(&config) {
        Ok(proxies) => proxies,
        Err(e) => {
            eprintln!("ringproxy: {e}");
            return ExitCode::from(1);
        }
    };
    match workers::run(proxies, signals, path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringproxy: {e}");
            ExitCode::from(1)
        }
    }
}
