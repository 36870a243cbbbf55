//! The `ringproxy` binary: parse the command line, start logging, run the loop.
//! Exit status: 0 after a clean stop, 1 when the proxy cannot start, 2 on a bad command line.

use ringproxy::cli::{self, Command, HELP};
use ringproxy::config::raise_fd_limit;
use ringproxy::workers;
use std::process::ExitCode;

fn main() -> ExitCode {
    let (config, verbosity) = match cli::parse(std::env::args_os().skip(1).collect()) {
        Ok(Command::Run { config, verbosity }) => (config, verbosity),
        Ok(Command::Help) => {
            print!("{HELP}");
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
    let level = match verbosity {
        i32::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    if let Err(e) = raise_fd_limit() {
        log::warn!("cannot raise the descriptor limit: {e}");
    }
    let proxies = match workers::bind(&config) {
        Ok(proxies) => proxies,
        Err(e) => {
            eprintln!("ringproxy: {e}");
            return ExitCode::from(1);
        }
    };
    match workers::run(proxies) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringproxy: {e}");
            ExitCode::from(1)
        }
    }
}
