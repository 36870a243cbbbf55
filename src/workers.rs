//! Several independent loops in one process, like nginx workers: each has its own poller,
//! pairs, timers, pool state and `SO_REUSEPORT` listener; nothing is shared on the data path.
//!
//! With one worker the loop runs on the calling thread and handles signals itself. With more,
//! each loop runs on its own thread and the calling thread waits for SIGINT/SIGTERM, then
//! stops them all.

use crate::config::Config;
use crate::error::StartError;
use crate::proxy::Proxy;
use log::info;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io;
use std::thread;

/// Binds every worker's listener (the first one fixes the port when the address has port 0),
/// so that any start error is reported before a loop runs.
pub fn bind(config: &Config) -> Result<Vec<Proxy>, StartError> {
    let first = Proxy::bind(config.clone())?;
    let mut rest = config.clone();
    rest.listen = first.local_addr();
    let mut proxies = vec![first];
    for _ in 1..config.workers {
        proxies.push(Proxy::bind(rest.clone())?);
    }
    Ok(proxies)
}

/// Runs the loops until SIGINT or SIGTERM; returns the first loop error, if any.
pub fn run(mut proxies: Vec<Proxy>) -> Result<(), RunError> {
    if proxies.len() == 1 {
        let mut proxy = proxies.remove(0);
        proxy.handle_signals().map_err(RunError::Start)?;
        return proxy.run().map_err(RunError::Loop);
    }
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|source| {
        RunError::Start(StartError::Setup {
            what: "install signal handlers",
            source,
        })
    })?;
    let stoppers: Vec<_> = proxies.iter().map(Proxy::stopper).collect();
    let handles: Vec<_> = proxies
        .into_iter()
        .enumerate()
        .map(|(i, proxy)| {
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || proxy.run())
        })
        .collect::<Result<_, _>>()
        .map_err(|source| {
            RunError::Start(StartError::Setup {
                what: "start a worker thread",
                source,
            })
        })?;
    info!("{} workers running", handles.len());
    if let Some(signal) = signals.forever().next() {
        info!(
            "signal {signal} received, stopping {} workers",
            handles.len()
        );
    }
    for stopper in &stoppers {
        let _ = stopper.stop();
    }
    let mut result = Ok(());
    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(RunError::Loop(e)),
            Err(_) => result = Err(RunError::Loop(io::Error::other("a worker panicked"))),
        }
    }
    result
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
