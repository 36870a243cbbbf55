//! The process: N independent loops (workers), like nginx workers, and the thread that turns
//! signals into commands for them.
//!
//! Each worker has its own poller, pairs, timers, pool state and `SO_REUSEPORT` listeners;
//! nothing is shared on the data path (worker 0 serves `/metrics` from snapshots the others
//! publish each second). The calling thread only waits for signals: SIGTERM/SIGINT drain
//! (a second one stops at once), SIGHUP re-reads the configuration file and reloads every
//! worker, SIGUSR1 reopens the access log.

use crate::discovery::{self, Discovery};
use crate::error::StartError;
use crate::file;
use crate::proxy::{Handle, Proxy, Shared};
use crate::resolve::ResolvedConfig;
use log::{error, info, warn};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;

/// Binds every worker's listeners (the first worker fixes ports given as 0), so that any
/// start error is reported before a loop runs.
pub fn bind(config: &ResolvedConfig) -> Result<Vec<Proxy>, StartError> {
    let workers = config.config().global.workers.max(1);
    let shared = Shared::new(workers);
    let first = Proxy::bind_worker(config.clone(), 0, Arc::clone(&shared))?;
    let rest = config.with_listen(&first.local_addrs());
    let mut proxies = vec![first];
    for worker in 1..workers {
        proxies.push(Proxy::bind_worker(
            rest.clone(),
            worker,
            Arc::clone(&shared),
        )?);
    }
    Ok(proxies)
}

/// Installs the handlers for the signals [`run`] acts on. Call it before [`bind`]: a signal
/// that arrives from then on is queued for `run` rather than killing the process.
pub fn signals() -> Result<Signals, StartError> {
    Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1]).map_err(|source| StartError::Setup {
        what: "install signal handlers",
        source,
    })
}

/// Runs the workers until they stop, turning `signals` into commands. `file` is re-read on
/// SIGHUP, its names resolved by `discovery`, which also follows names in DNS on a thread
/// of its own and hands the workers each change.
pub fn run(
    proxies: Vec<Proxy>,
    mut signals: Signals,
    file: Option<PathBuf>,
    discovery: Discovery,
) -> Result<(), RunError> {
    let handles: Vec<Handle> = proxies.iter().map(Proxy::handle).collect();
    let discovery = Arc::new(Mutex::new(discovery));
    let to_workers = handles.clone();
    let (dns, dns_thread) = discovery::spawn(Arc::clone(&discovery), move |config| {
        send_all(&to_workers, |h| h.update_servers(config.clone()));
    })
    .map_err(|source| {
        RunError::Start(StartError::Setup {
            what: "start the discovery thread",
            source,
        })
    })?;
    let threads = proxies
        .into_iter()
        .enumerate()
        .map(|(i, proxy)| {
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || proxy.run())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| {
            RunError::Start(StartError::Setup {
                what: "start a worker thread",
                source,
            })
        })?;
    let signal_handle = signals.handle();
    let joiner = thread::spawn(move || {
        let mut result = Ok(());
        for thread in threads {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(RunError::Loop(e)),
                Err(_) => result = Err(RunError::Loop(io::Error::other("a worker panicked"))),
            }
        }
        signal_handle.close();
        result
    });
    let mut stopping = false;
    for signal in signals.forever() {
        match signal {
            SIGHUP => reload(&handles, file.as_ref(), &discovery),
            SIGUSR1 => {
                info!("SIGUSR1: reopening the access log");
                send_all(&handles, Handle::reopen_log);
            }
            _ if stopping => {
                info!("signal {signal} again: stopping now");
                send_all(&handles, Handle::stop);
            }
            _ => {
                info!("signal {signal}: draining (send it again to stop at once)");
                stopping = true;
                send_all(&handles, Handle::drain);
            }
        }
    }
    let _ = dns.send(discovery::Message::Stop);
    let _ = dns_thread.join();
    joiner
        .join()
        .unwrap_or_else(|_| Err(RunError::Loop(io::Error::other("the joiner panicked"))))
}

fn send_all(handles: &[Handle], command: impl Fn(&Handle) -> io::Result<()>) {
    for handle in handles {
        if let Err(e) = command(handle) {
            warn!("cannot reach a worker: {e}");
        }
    }
}

/// Re-reads the configuration file, resolves its names (here, off the loops; every name
/// followed in DNS is asked again) and sends it to every worker; a file that does not
/// parse, validate or resolve changes nothing.
fn reload(handles: &[Handle], file: Option<&PathBuf>, discovery: &Mutex<Discovery>) {
    let Some(path) = file else {
        warn!("SIGHUP: no configuration file (--config) to reload; ignored");
        return;
    };
    let config = match file::load(path) {
        Ok(config) => config,
        Err(e) => return error!("SIGHUP: {e}; keeping the running configuration"),
    };
    for warning in config.warnings() {
        warn!("SIGHUP: {warning}");
    }
    let Ok(mut discovery) = discovery.lock() else {
        return error!(
            "SIGHUP: the discovery state is poisoned; keeping the running configuration"
        );
    };
    let config = match discovery.resolve(config, std::time::Instant::now()) {
        Ok(config) => config,
        Err(e) => return error!("SIGHUP: {e}; keeping the running configuration"),
    };
    info!("SIGHUP: reloading {}", path.display());
    for handle in handles {
        if let Err(e) = handle.reload(config.clone()) {
            warn!("cannot reach a worker: {e}");
        }
    }
}

/// Why running the workers failed.
#[derive(Debug)]
pub enum RunError {
    /// Setting up signals or threads failed (exit status 1).
    Start(StartError),
    /// A loop failed while running.
    Loop(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Start(e) => e.fmt(f),
            RunError::Loop(e) => write!(f, "event loop failed: {e}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Start(e) => Some(e),
            RunError::Loop(e) => Some(e),
        }
    }
}
