//! Soak: a mixed load through one release-built proxy for a long time, to show that its
//! memory and descriptors stay flat and that no client ever sees an error.
//!
//! ```text
//! cargo bench --bench soak -- [--minutes N] [--warmup SECONDS]
//! ```
//!
//! The proxy (two routes, ring and auto engines, two workers) is started with a
//! configuration file over a pool of servers that every reload (SIGHUP every few seconds)
//! churns. Clients run bulk streams, ping-pong, connection churn, half-closes from either
//! side, resets from either side and slow readers; a scraper reads `/metrics` every second.
//! Every second the proxy's resident memory, open descriptors and CPU are sampled (CSV in
//! `target/soak/samples.csv`). The report gives the growth per hour (a least-squares fit
//! after the warm-up), CPU per connection and per GiB, and every error; the exit status is
//! 1 when there was any.
//!
//! Layout: [`load`] what the loads share, [`backend`] the servers, [`clients`] the client
//! loads, [`proxy`] the proxy, its pool, scrapes and `/proc`, [`report`] the figures.

#[path = "soak/backend.rs"]
mod backend;
#[path = "soak/clients.rs"]
mod clients;
#[path = "soak/load.rs"]
mod load;
#[path = "soak/proxy.rs"]
mod proxy;
#[path = "soak/report.rs"]
mod report;

use clients::{Clients, PLAN};
use load::{Errors, Load};
use proxy::{Pool, Proxy};
use report::Sample;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time between reloads.
const RELOAD_EVERY: Duration = Duration::from_secs(3);
/// Time between metrics scrapes and between samples.
const TICK: Duration = Duration::from_secs(1);

/// Whether a proxy log line is worth reporting: anything at warn or error, and anything
/// that is not a log line at all (a panic message). Info lines are the start-up summary and
/// the reloads the soak causes on purpose; lower levels are not printed.
fn is_unexpected(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let _time = words.next();
    match words.next() {
        Some("INFO" | "DEBUG" | "TRACE") => false,
        Some(_) | None => !line.trim().is_empty(),
    }
}

/// The command line.
struct Options {
    minutes: f64,
    warmup: Option<f64>,
}

/// Parses the options after `--`; `Err` is one line for the user.
fn options() -> Result<Options, String> {
    let mut args = pico_args::Arguments::from_env();
    // cargo bench passes --bench to every harness = false target.
    let _ = args.contains("--bench");
    let minutes = args
        .opt_value_from_str("--minutes")
        .map_err(|e| format!("--minutes: {e}"))?
        .unwrap_or(10.0);
    let warmup = args
        .opt_value_from_str("--warmup")
        .map_err(|e| format!("--warmup: {e}"))?;
    let rest = args.finish();
    if let Some(extra) = rest.first() {
        return Err(format!(
            "unknown argument {extra:?}; usage: soak [--minutes N] [--warmup SECONDS]"
        ));
    }
    if !(minutes > 0.0 && minutes <= 24.0 * 60.0) {
        return Err(format!("--minutes: expected 0 < N <= 1440, got {minutes}"));
    }
    Ok(Options { minutes, warmup })
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    match soak(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs the soak and prints the report; `Ok(false)` when a client saw an error.
fn soak(options: &Options) -> Result<bool, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    let dir = target.join("soak");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone())
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    let start = Instant::now();
    let errors = Errors::new(start);
    let pool = Pool::new(errors.clone()).map_err(|e| format!("start servers: {e}"))?;
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_ringproxy"));
    let mut proxy = Proxy::start(&binary, &dir, &pool.addrs())?;
    let duration = Duration::from_secs_f64(options.minutes * 60.0);
    let warmup = options
        .warmup
        .unwrap_or_else(|| (duration.as_secs_f64() / 6.0).clamp(10.0, 300.0));
    println!(
        "soak: {:.0} min through {} (pid {}), routes {:?}, metrics {}; warm-up {warmup:.0} s",
        options.minutes,
        binary.display(),
        proxy.pid,
        proxy.routes,
        proxy.metrics
    );
    let clients = Arc::new(Clients::new(proxy.routes.clone(), errors.clone()));
    let mut threads = Vec::new();
    for (load, count, every) in PLAN {
        for _ in 0..count {
            let clients = clients.clone();
            threads.push(std::thread::spawn(move || clients.run(load, every)));
        }
    }
    let proxy_pid = proxy.pid;
    let metrics = proxy.metrics;
    let reloads = Arc::new(AtomicU64::new(0));
    let scrapes = Arc::new(AtomicU64::new(0));
    let pool = Arc::new(Mutex::new(pool));
    let reloader = {
        let (clients, reloads, pool) = (clients.clone(), reloads.clone(), pool.clone());
        let reload_proxy = proxy.reloader();
        std::thread::spawn(move || {
            while !sleep_unless_stopped(&clients.stop, RELOAD_EVERY) {
                let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
                let outcome = pool
                    .churn()
                    .map_err(|e| format!("start a server: {e}"))
                    .and_then(|()| reload_proxy.reload(&pool.addrs()));
                match outcome {
                    Ok(()) => drop(reloads.fetch_add(1, Ordering::Relaxed)),
                    Err(e) => clients.errors.record(Load::Reload, e),
                }
            }
        })
    };
    let scraper = {
        let (clients, scrapes) = (clients.clone(), scrapes.clone());
        std::thread::spawn(move || {
            while !sleep_unless_stopped(&clients.stop, TICK) {
                match proxy::scrape(metrics) {
                    Ok(body) => {
                        proxy::check_scrape(&body, &clients.errors);
                        clients.totals.connection(Load::Scrape);
                        clients.totals.bytes(Load::Scrape, body.len() as u64);
                    }
                    Err(e) => clients.errors.record(Load::Scrape, format!("scrape: {e}")),
                }
                scrapes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let csv_path = dir.join("samples.csv");
    let mut csv = std::fs::File::create(&csv_path)
        .map_err(|e| format!("create {}: {e}", csv_path.display()))?;
    let _ = writeln!(csv, "{}", report::CSV_HEADER);
    let ticks = proxy::clock_ticks();
    let base = proxy::usage(proxy_pid, ticks).map_err(|e| format!("read /proc: {e}"))?;
    let mut samples = Vec::new();
    let mut next = start;
    while start.elapsed() < duration && !interrupted.load(Ordering::Relaxed) {
        next += TICK;
        if let Some(rest) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(rest);
        }
        if !proxy.alive() {
            errors.record(Load::Churn, "the proxy exited".into());
            break;
        }
        let Ok(usage) = proxy::usage(proxy_pid, ticks) else {
            continue;
        };
        let (connections, bytes) = clients.totals.sum();
        let sample = Sample {
            t: start.elapsed().as_secs_f64(),
            rss_kib: usage.rss_kib,
            fds: usage.fds,
            cpu_s: usage.cpu_s - base.cpu_s,
            connections,
            bytes,
            errors: errors.count(),
            reloads: reloads.load(Ordering::Relaxed),
            load1: proxy::load_average(),
        };
        let _ = writeln!(csv, "{}", sample.csv());
        if samples.len() % 60 == 59 {
            println!(
                "soak: {:5.1} min  rss {} KiB  fds {}  cpu {:.1} s  conns {}  {:.1} GiB  errors {}",
                sample.t / 60.0,
                sample.rss_kib,
                sample.fds,
                sample.cpu_s,
                sample.connections,
                sample.bytes as f64 / (1u64 << 30) as f64,
                sample.errors
            );
        }
        samples.push(sample);
    }
    clients.stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    let _ = reloader.join();
    let _ = scraper.join();
    let sent = reloads.load(Ordering::Relaxed);
    let log = std::fs::read_to_string(&proxy.log).unwrap_or_default();
    let confirmed = log
        .lines()
        .filter(|l| l.contains("SIGHUP: reloading"))
        .count();
    let others: Vec<&str> = log.lines().filter(|l| is_unexpected(l)).collect();
    let servers = pool.lock().unwrap_or_else(|p| p.into_inner()).made();
    let kept = errors.snapshot();
    let run = report::Run {
        samples: &samples,
        warmup,
        totals: &clients.totals,
        error_counts: Load::ALL
            .iter()
            .map(|l| (*l, errors.count_of(*l)))
            .collect(),
        errors: &kept,
        reloads: (sent, confirmed as u64),
        servers,
        scrapes: scrapes.load(Ordering::Relaxed),
        log: (
            others.iter().take(20).map(|l| l.to_string()).collect(),
            others.len(),
        ),
        csv: csv_path.display().to_string(),
    };
    println!("{}", report::render(&run));
    drop(proxy);
    Ok(errors.count() == 0 && sent == confirmed as u64)
}

/// Sleeps `time` in short steps; true as soon as `stop` is set.
fn sleep_unless_stopped(stop: &AtomicBool, time: Duration) -> bool {
    let until = Instant::now() + time;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    stop.load(Ordering::Relaxed)
}
