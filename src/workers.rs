//! The process: N independent loops (workers), like nginx workers, and the thread that turns
//! signals into commands for them.
//!
//! Each worker has its own poller, pairs, timers, pool state and `SO_REUSEPORT` listeners;
//! nothing is shared on the data path (worker 0 serves `/metrics` from snapshots the others
//! publish each second; the admin thread asks every worker through its command queue). The calling thread only waits for signals: SIGTERM/SIGINT drain
//! (a second one stops at once), SIGHUP re-reads the configuration file and reloads every
//! worker, SIGUSR1 reopens the access log.
//!
//! Process-wide lines are printed here, once, with process totals: the start lines, the
//! drain's start and end, the reload result (each worker answers, [`crate::proxy::combine`]
//! adds the answers up). systemd hears the same story ([`crate::systemd`]): ready, reloading,
//! reloaded (or not), stopping, and watchdog pings while every loop turns.

use crate::admin::Admin;
use crate::discovery::{self, Discovery};
use crate::error::StartError;
use crate::file;
use crate::proxy::{self, Draining, Handle, Proxy, Reloaded, Shared};
use crate::resolve::ResolvedConfig;
use crate::systemd::{self, Message, Notifier};
use log::{error, info, warn};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// How long the signal thread waits for the workers' answers to a drain or a reload.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Binds every worker's listeners (the first worker fixes ports given as 0), so that any
/// start error is reported before a loop runs; then logs the start lines, once.
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
    for line in proxies[0].start_lines() {
        info!("{line}");
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
/// of its own and hands the workers each change. The `admin`, if any, serves on a thread of
/// its own until the workers stop.
pub fn run(
    proxies: Vec<Proxy>,
    mut signals: Signals,
    file: Option<PathBuf>,
    discovery: Discovery,
    admin: Option<Admin>,
) -> Result<(), RunError> {
    let handles: Vec<Handle> = proxies.iter().map(Proxy::handle).collect();
    let shared = proxies.first().map(|p| Arc::clone(p.shared()));
    let serving = proxies.first().map(Proxy::serving).unwrap_or_default();
    let notifier = Arc::new(Notifier::from_env());
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
    let setup = |what| move |source| RunError::Start(StartError::Setup { what, source });
    let admin = admin
        .map(|admin| admin.spawn(handles.clone()))
        .transpose()
        .map_err(setup("start the admin thread"))?;
    let watchdog = match &shared {
        Some(shared) => systemd::watchdog::spawn(&notifier, shared.heartbeats())
            .map_err(setup("start the watchdog thread"))?,
        None => None,
    };
    notifier.notify(&Message::new().status(&serving.to_string()).ready());
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
            SIGHUP if stopping => info!("SIGHUP while draining: not reloading"),
            SIGHUP => {
                notifier.notify(&Message::new().reloading(systemd::monotonic_now()));
                let result = reload(&handles, file.as_ref(), &discovery, admin.as_ref());
                if let Some(shared) = &shared {
                    shared.record_reload(result.is_ok());
                }
                let done = match result {
                    Ok(reloaded) => {
                        info!("configuration reloaded: {}", reloaded.changes);
                        Message::new().status(&reloaded.serving.to_string())
                    }
                    Err(e) => {
                        error!("reload failed, keeping the running configuration: {e}");
                        Message::new().status(&format!("reload failed: {e}"))
                    }
                };
                notifier.notify(&done.ready());
            }
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
                notifier.notify(&Message::new().stopping());
                info!("{}", drain(&handles).line());
            }
        }
    }
    if let Some(watchdog) = watchdog {
        watchdog.stop();
    }
    if let Some(admin) = admin {
        admin.stop();
    }
    let _ = dns.send(discovery::Message::Stop);
    let _ = dns_thread.join();
    let result = joiner
        .join()
        .unwrap_or_else(|_| Err(RunError::Loop(io::Error::other("the joiner panicked"))));
    for line in shared.map(|s| s.ended()).unwrap_or_default().lines() {
        info!("{line}");
    }
    result
}

/// Starts a drain in every worker; their answers added up.
fn drain(handles: &[Handle]) -> Draining {
    let answers: Vec<mpsc::Receiver<Draining>> = handles
        .iter()
        .filter_map(|h| {
            h.drain_and_report()
                .map_err(|e| warn!("cannot reach a worker: {e}"))
                .ok()
        })
        .collect();
    let deadline = Instant::now() + ANSWER_WITHIN;
    let mut total = Draining::default();
    for answer in answers {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(draining) = answer.recv_timeout(left) {
            total.add(draining);
        }
    }
    total
}

fn send_all(handles: &[Handle], command: impl Fn(&Handle) -> io::Result<()>) {
    for handle in handles {
        if let Err(e) = command(handle) {
            warn!("cannot reach a worker: {e}");
        }
    }
}

/// Re-reads the configuration file, resolves its names (here, off the loops; every name
/// followed in DNS is asked again), sends it to every worker and adds up their answers; a
/// file that does not parse, validate or resolve changes nothing. Once every worker took it,
/// its `admin_allow` replaces the admin's (`admin` itself is read at start).
fn reload(
    handles: &[Handle],
    file: Option<&PathBuf>,
    discovery: &Mutex<Discovery>,
    admin: Option<&crate::admin::Running>,
) -> Result<Reloaded, String> {
    let path = file.ok_or("no configuration file (--config) to reload")?;
    let config = file::load(path).map_err(|e| e.to_string())?;
    for warning in config.warnings() {
        warn!("SIGHUP: {warning}");
    }
    let allow = config.global.admin_allow.clone();
    let config = discovery
        .lock()
        .map_err(|_| "the discovery state is poisoned")?
        .resolve(config, Instant::now())
        .map_err(|e| e.to_string())?;
    info!("SIGHUP: reloading {}", path.display());
    let answers: Vec<_> = handles
        .iter()
        .map(|h| h.reload_and_report(config.clone()).ok())
        .collect();
    let deadline = Instant::now() + ANSWER_WITHIN;
    let answers = answers
        .into_iter()
        .map(|answer| {
            let left = deadline.saturating_duration_since(Instant::now());
            answer.and_then(|rx| rx.recv_timeout(left).ok())
        })
        .collect();
    let reloaded = proxy::combine(answers)?;
    if let Some(admin) = admin
        && admin.set_allow(allow)
    {
        info!("admin_allow: the new list applies to the next admin client");
    }
    Ok(reloaded)
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
