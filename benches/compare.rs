//! Side-by-side benchmark: the same workloads straight to the backend (`direct`), through
//! ringproxy with each engine (ring, splice, auto) and with an allow list, through another
//! ringproxy build (`baseline`, with `--baseline PATH`), through nginx's stream module,
//! through HAProxy in `mode tcp` with and without splicing, and through a minimal Go
//! `io.Copy` proxy.
//!
//! ```text
//! cargo bench --bench compare -- [--seconds N] [--repeat N] [--sweep] [--only LIST]
//!                                 [--workloads LIST] [--workers N] [--cpus pinned|shared]
//!                                 [--baseline PATH]
//! ```
//!
//! By default (`--cpus pinned`) the harness pins itself (backend and load generators, all
//! threads) to CPU 0 and each proxy under test to CPU 1; `--cpus shared` pins nothing, so
//! several proxy workers can use every CPU (which the harness then competes for). It
//! starts every proxy afresh for every run on a free 127.0.0.1 port, prints markdown tables
//! of medians with ratios to references measured in the same run (direct, nginx, HAProxy,
//! the other engines, the baseline), and checks the issues' targets (PASS/FAIL lines).
//! nginx, HAProxy and Go are skipped, with a note, when they are not installed.
//!
//! Layout: [`args`] command line, [`sys`] affinity and `/proc`, [`targets`] the targets and
//! their setups, [`nginx`], [`haproxy`], [`goproxy`] and [`ringproxy`] their command lines,
//! [`running`] their process guards, [`backend`] the upstream server, [`plan`] which
//! workload runs where, [`measure`] one measurement, [`workloads`] the bulk, ping-pong and
//! memory load generators, [`rate`] the connection-rate ones (plain, refused), [`tls`] the
//! TLS setups, [`bandwidth`] the rate-limit accuracy, [`report`] medians and tables,
//! [`print`] the printed report, [`goals`] the targets.

#[path = "compare/args.rs"]
mod args;
#[path = "compare/backend.rs"]
mod backend;
#[path = "compare/bandwidth.rs"]
mod bandwidth;
#[path = "compare/goals.rs"]
mod goals;
#[path = "compare/goproxy.rs"]
mod goproxy;
#[path = "compare/haproxy.rs"]
mod haproxy;
#[path = "compare/measure.rs"]
mod measure;
#[path = "compare/nginx.rs"]
mod nginx;
#[path = "compare/plan.rs"]
mod plan;
#[path = "compare/print.rs"]
mod print;
#[path = "compare/quiet.rs"]
mod quiet;
#[path = "compare/rate.rs"]
mod rate;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/ringproxy.rs"]
mod ringproxy;
#[path = "compare/running.rs"]
mod running;
#[path = "compare/sys.rs"]
mod sys;
#[path = "compare/targets.rs"]
mod targets;
#[path = "compare/tls.rs"]
mod tls;
#[path = "compare/workloads.rs"]
mod workloads;

use args::{Cpus, Options, format_size};
use backend::Backend;
use plan::{Need, Workload};
use quiet::{FOREIGN_NOTE, ForeignMeter};
use report::{Metric, Results};
use running::Running;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use sys::Context;
use targets::{Kind, Setup, Tools};
use tls::TlsBackends;

/// CPU of the harness process under `--cpus pinned`: backend, load generators, everything
/// but the proxy.
const HARNESS_CPU: usize = 0;
/// CPU of the proxy under test under `--cpus pinned`.
const PROXY_CPU: usize = 1;
/// Buffer sizes of `--sweep`.
const SWEEP_BUFFERS: [usize; 4] = [4 << 10, 16 << 10, 64 << 10, 256 << 10];
/// Descriptors the harness keeps aside beyond two per memory-workload connection.
const FD_RESERVE: u64 = 200;

/// What one run measured: each figure once, `None` where it does not apply.
pub(crate) type Figures = Vec<(Metric, Option<f64>)>;

/// Proxy log lines that the harness causes on purpose (it closes with RST).
const EXPECTED_LOG: [&str; 2] = ["Connection reset by peer", "Broken pipe"];
/// What one target logged over all its runs.
#[derive(Debug, Default)]
struct LogSummary {
    /// Lines about connection resets and broken pipes, expected at teardown.
    expected: usize,
    /// Any other lines.
    other: usize,
    /// The first few other lines.
    first: Vec<String>,
}

/// Everything a run needs, and what it has found so far.
struct Bench {
    opts: Options,
    tools: Tools,
    backend: Backend,
    /// The TLS servers, when the TLS workloads run.
    tls: Option<TlsBackends>,
    /// Targets measured, in report order.
    kinds: Vec<Kind>,
    /// Connections of the memory workload (possibly reduced to fit the descriptor limit).
    mem_conns: usize,
    results: Results,
    /// Skips, failures and anomalies, printed under the tables.
    notes: Vec<String>,
    /// What the proxies logged, per target.
    proxy_logs: BTreeMap<Kind, LogSummary>,
    /// Time spent waiting for other processes to calm down.
    waited: Duration,
    /// `Cpus_allowed_list` seen on the harness process.
    harness_cpus: String,
    /// `Cpus_allowed_list` seen on each proxy process.
    observed_cpus: BTreeMap<Kind, String>,
    /// CPU that other processes used during each run, % of one core.
    foreign_load: Vec<f64>,
    /// Runs done and planned, for progress lines.
    done: usize,
    planned: usize,
}

/// Exit status for a bad command line, as for most Unix tools (1 means the run failed).
const USAGE_ERROR: u8 = 2;

/// Parses the options and runs; a bad command line exits with [`USAGE_ERROR`] after one
/// line on stderr, any other failure with 1.
fn main() -> ExitCode {
    let opts = match args::parse() {
        Ok(opts) => opts,
        Err(None) => return ExitCode::SUCCESS,
        Err(Some(e)) => {
            eprintln!("compare: {e}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Measures what `opts` asks for and prints the report.
fn run(opts: Options) -> Result<(), String> {
    let started = Instant::now();
    let nproc = sys::nproc();
    let mut notes = Vec::new();
    // Before any thread exists, so every harness thread inherits the mask.
    let proxy_cpu = pin(opts.cpus, nproc, &mut notes)?;
    let harness_cpus = sys::allowed_cpus(std::process::id() as sys::Pid)
        .context(|| "read the harness's allowed CPUs".into())?;
    running::install_signal_cleanup()?;
    running::clean_stale(&mut notes);
    let fd_limit = sys::raise_fd_limit().context(|| "raise the descriptor limit".into())?;
    let ringproxy = Path::new(env!("CARGO_BIN_EXE_ringproxy"));
    let baseline = opts.baseline.as_deref();
    if baseline.is_some_and(|b| same_file(b, ringproxy)) {
        notes.push(
            "--baseline is the ringproxy binary under test itself: ringproxy ÷ baseline shows \
             run-to-run noise"
                .into(),
        );
    }
    let tools = Tools::detect(
        ringproxy,
        baseline,
        opts.workers,
        fd_limit,
        proxy_cpu,
        opts.only.contains(&Kind::Go),
        &mut notes,
    )?;
    let kinds: Vec<Kind> = opts
        .only
        .iter()
        .copied()
        .filter(|&k| tools.available(k))
        .collect();
    let mem_conns = fit_mem_conns(opts.mem_conns, fd_limit, tools.max_conns, &mut notes);
    let backend = Backend::start()?;
    let tls = if opts.workloads.contains(&"tls") {
        Some(start_tls()?)
    } else {
        None
    };
    let mut bench = Bench {
        planned: planned_runs(&opts, &kinds),
        opts,
        tools,
        backend,
        tls,
        kinds,
        mem_conns,
        results: Results::default(),
        notes,
        proxy_logs: BTreeMap::new(),
        harness_cpus,
        observed_cpus: BTreeMap::new(),
        foreign_load: Vec::new(),
        waited: Duration::ZERO,
        done: 0,
    };
    let main_started = Instant::now();
    bench.run_main();
    let mut phases = vec![("main workloads", main_started.elapsed())];
    if bench.opts.sweep {
        let sweep_started = Instant::now();
        bench.run_sweep();
        phases.push(("sweep", sweep_started.elapsed()));
    }
    bench.print_report(nproc, fd_limit, started.elapsed(), &phases);
    Ok(())
}

/// Applies `--cpus`: under `pinned` (with two CPUs or more) pins the calling thread, and so
/// every harness thread started later, to [`HARNESS_CPU`] and returns the proxy CPU;
/// under `shared` pins nothing. Call before any thread exists.
fn pin(cpus: Cpus, nproc: usize, notes: &mut Vec<String>) -> Result<Option<usize>, String> {
    match cpus {
        Cpus::Shared => Ok(None),
        Cpus::Pinned if nproc < 2 => {
            notes.push("only one CPU: nothing is pinned".into());
            Ok(None)
        }
        Cpus::Pinned => {
            sys::pin_current_thread(HARNESS_CPU)
                .context(|| format!("pin the harness to CPU {HARNESS_CPU}"))?;
            Ok(Some(PROXY_CPU))
        }
    }
}

/// Starts the TLS backends with a certificate made in a private directory, removed again
/// once the certificate is loaded.
fn start_tls() -> Result<TlsBackends, String> {
    let dir = running::private_dir(Kind::Direct)?;
    let tls = TlsBackends::start(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    tls
}

/// Whether `a` and `b` name the same file.
fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// The memory workload's connection count: what was asked, reduced so that both the
/// harness (client + backend side) and the proxy (two per connection) stay under the limit.
fn fit_mem_conns(wanted: usize, fd_limit: u64, max_conns: usize, notes: &mut Vec<String>) -> usize {
    let by_fds = (fd_limit.saturating_sub(FD_RESERVE) / 2) as usize;
    let n = wanted.min(by_fds).min(max_conns.saturating_sub(16)).max(1);
    if n < wanted {
        notes.push(format!(
            "memory workload reduced from {wanted} to {n} connections: descriptor limit \
             {fd_limit} (each connection costs two descriptors in the harness and two in the proxy)"
        ));
    }
    n
}

/// The members of `set` that `--workloads` selects.
fn selected(opts: &Options, set: &[Workload]) -> Vec<Workload> {
    set.iter()
        .copied()
        .filter(|w| opts.workloads.contains(&w.group()))
        .collect()
}

/// Number of workload runs the options ask for (for progress lines).
fn planned_runs(opts: &Options, kinds: &[Kind]) -> usize {
    let runs = |set: &[Workload], kinds: &[Kind]| -> usize {
        selected(opts, set)
            .iter()
            .map(|w| kinds.iter().filter(|&&k| w.runs_on(k)).count())
            .sum()
    };
    let per_repeat = runs(&Workload::ALL, kinds);
    let sweep = if opts.sweep {
        let sizes = SWEEP_BUFFERS
            .iter()
            .filter(|&&b| b != opts.buffer_size)
            .count();
        runs(&Workload::SWEEP, &sweep_kinds(kinds)) * sizes
    } else {
        0
    };
    (per_repeat + sweep) * opts.repeat
}

/// The targets of the sweep: every proxy (each engine included) but the allow-list variant
/// (measured only at the main size, against ringproxy) and the Go proxy (whose pipes have
/// the kernel's default size whatever the buffer size).
fn sweep_kinds(kinds: &[Kind]) -> Vec<Kind> {
    kinds
        .iter()
        .copied()
        .filter(|&k| !matches!(k, Kind::Direct | Kind::RingproxyAllow | Kind::Go))
        .collect()
}

impl Bench {
    /// The members of `set` that `--workloads` selects.
    fn workloads(&self, set: &[Workload]) -> Vec<Workload> {
        selected(&self.opts, set)
    }

    /// Every workload on every target at the main buffer size, `repeat` times, targets
    /// interleaved so slow drift affects them alike.
    fn run_main(&mut self) {
        let buffer = self.opts.buffer_size;
        for repeat in 0..self.opts.repeat {
            for workload in self.workloads(&Workload::ALL) {
                for kind in self.kinds.clone() {
                    if workload.runs_on(kind) {
                        self.measure(kind, workload, buffer, repeat);
                    }
                }
            }
        }
    }

    /// Bulk and ping-pong on every proxy at each sweep size (the main size is reused).
    fn run_sweep(&mut self) {
        let proxies = sweep_kinds(&self.kinds);
        for repeat in 0..self.opts.repeat {
            for workload in self.workloads(&Workload::SWEEP) {
                for buffer in SWEEP_BUFFERS {
                    if buffer == self.opts.buffer_size {
                        continue;
                    }
                    for &kind in proxies.iter().filter(|&&k| workload.runs_on(k)) {
                        self.measure(kind, workload, buffer, repeat);
                    }
                }
            }
        }
    }

    /// Runs one workload on one target, recording its figures or a note on failure.
    fn measure(&mut self, kind: Kind, workload: Workload, buffer: usize, repeat: usize) {
        self.done += 1;
        let label = format!(
            "[{:>3}/{}] repeat {}/{} {:<22} {:<9} {:>7}",
            self.done,
            self.planned,
            repeat + 1,
            self.opts.repeat,
            workload.name(),
            kind.name(),
            format_size(buffer)
        );
        self.wait_for_quiet();
        match self.try_measure(kind, workload, buffer) {
            Ok(figures) => {
                let text: Vec<String> = figures
                    .into_iter()
                    .filter_map(|(m, v)| {
                        let v = v?;
                        self.results.add(m, kind, buffer, v);
                        Some(format!("{} {}", report::format_value(v), m.describe().1))
                    })
                    .collect();
                eprintln!("{label}: {}", text.join(", "));
            }
            Err(e) => {
                eprintln!("{label}: FAILED: {e}");
                self.notes.push(format!(
                    "{} / {} / {} (repeat {}): {e}",
                    workload.name(),
                    kind.name(),
                    format_size(buffer),
                    repeat + 1
                ));
            }
        }
    }

    /// Starts the proxy (unless direct), runs the workload, returns one value per metric.
    fn try_measure(
        &mut self,
        kind: Kind,
        workload: Workload,
        buffer: usize,
    ) -> Result<Figures, String> {
        let setup = self.setup(workload.need())?;
        let proxy = match kind {
            Kind::Direct => None,
            _ => Some(self.tools.start(
                kind,
                (buffer, self.opts.pipe_size),
                setup,
                workload.need().probe(),
            )?),
        };
        if let Some(p) = &proxy
            && let Some(&pid) = p.pids.first()
            && let Ok(cpus) = sys::allowed_cpus(pid)
        {
            self.observed_cpus.insert(kind, cpus);
        }
        let direct = match setup {
            Setup::Forward(b) | Setup::Deny(b) | Setup::DownloadRate(b, _) => b,
            Setup::Sni { a, .. } => a,
        };
        let addr = proxy.as_ref().map_or(direct, |p| p.addr);
        let meter = ForeignMeter::start(proxy.as_ref())?;
        let figures = self.run_workload(workload, addr, proxy.as_ref())?;
        let foreign = meter.finish()?;
        self.foreign_load.push(foreign);
        if foreign > FOREIGN_NOTE {
            self.notes.push(format!(
                "{} / {} / {}: other processes used {foreign:.0}% of a core during the run",
                workload.name(),
                kind.name(),
                format_size(buffer)
            ));
        }
        if let Some(p) = &proxy {
            self.collect_logs(kind, p);
        }
        Ok(figures)
    }

    /// The proxy setup a workload needs, with this run's backends.
    fn setup(&self, need: Need) -> Result<Setup, String> {
        let tls = || self.tls.as_ref().ok_or("the TLS backends are not running");
        Ok(match need {
            Need::Forward => Setup::Forward(self.backend.addr),
            Need::Deny => Setup::Deny(self.backend.addr),
            Need::Rate(i) => Setup::DownloadRate(self.backend.addr, bandwidth::RATES[i].0),
            Need::Tls => Setup::Forward(tls()?.a),
            Need::Sni => {
                let t = tls()?;
                Setup::Sni {
                    a: t.a,
                    fallback: t.fallback,
                }
            }
        })
    }

    /// Remembers what the proxy logged: lines about resets and broken pipes are expected
    /// (clients end connections with RST) and only counted; others are kept for the notes.
    fn collect_logs(&mut self, kind: Kind, proxy: &Running) {
        let lines = proxy.log_lines();
        if lines.is_empty() {
            return;
        }
        let entry = self.proxy_logs.entry(kind).or_default();
        for line in lines {
            if EXPECTED_LOG.iter().any(|e| line.contains(e)) {
                entry.expected += 1;
            } else {
                entry.other += 1;
                if entry.first.len() < 3 {
                    entry.first.push(line);
                }
            }
        }
    }
}
