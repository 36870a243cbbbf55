//! Side-by-side benchmark: the same workloads straight to the backend (`direct`), through
//! ringproxy, through another ringproxy build (`baseline`, with `--baseline PATH`), through
//! nginx's stream module and through HAProxy in `mode tcp`.
//!
//! ```text
//! cargo bench --bench compare -- [--seconds N] [--repeat N] [--sweep] [--only LIST]
//!                                 [--workers N] [--cpus pinned|shared] [--baseline PATH]
//! ```
//!
//! By default (`--cpus pinned`) the harness pins itself (backend and load generators, all
//! threads) to CPU 0 and each proxy under test to CPU 1; `--cpus shared` pins nothing, so
//! several proxy workers can use every CPU (which the harness then competes for). It
//! starts every proxy afresh for every run on a free
//! 127.0.0.1 port, and prints markdown tables of medians with ratios to nginx and direct
//! (and of ringproxy to the baseline).
//! nginx and HAProxy are skipped, with a note, when they are not installed.
//!
//! Layout: [`args`] command line, [`sys`] affinity and `/proc`, [`targets`] the proxies,
//! [`running`] their process guards, [`ringproxy`] the ringproxy binaries and their command
//! line, [`backend`] the upstream server, [`workloads`] the load generators, [`report`]
//! medians and tables, [`print`] the printed report.

#[path = "compare/args.rs"]
mod args;
#[path = "compare/backend.rs"]
mod backend;
#[path = "compare/print.rs"]
mod print;
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
#[path = "compare/workloads.rs"]
mod workloads;

use args::{Cpus, Options, format_size};
use backend::Backend;
use report::{Metric, Results};
use running::Running;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use sys::Context;
use targets::{Kind, Tools};

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
type Figures = Vec<(Metric, Option<f64>)>;

/// TIME_WAIT sockets at the start of a connection-rate run above which it gets a note
/// (many of them make every `connect()` search longer for a free port).
const TIME_WAIT_NOTE: u64 = 1000;
/// Foreign CPU load (% of one core) above which a run gets a note.
const FOREIGN_NOTE: f64 = 10.0;

/// Measures the CPU that processes other than the harness and the proxy under test used
/// during a run: machine busy time minus ours. Kernel work done outside our processes'
/// context (e.g. in ksoftirqd) also counts as foreign.
struct ForeignMeter {
    machine: f64,
    harness: f64,
    /// The proxy's processes (none for direct) and their CPU seconds at the start.
    proxy: (Vec<sys::Pid>, f64),
    start: Instant,
}

impl ForeignMeter {
    fn start(proxy: Option<&Running>) -> Result<ForeignMeter, String> {
        let pids = proxy.map_or_else(Vec::new, |p| p.pids.clone());
        let proxy_seconds = workloads::cpu_seconds_of(&pids)?;
        Ok(ForeignMeter {
            machine: sys::machine_busy_seconds().context(|| "read /proc/stat".into())?,
            harness: workloads::own_cpu_seconds()?,
            proxy: (pids, proxy_seconds),
            start: Instant::now(),
        })
    }

    /// Foreign CPU since `start`, in % of one core (clamped at 0: the counters tick at
    /// different moments).
    fn finish(&self) -> Result<f64, String> {
        let machine = sys::machine_busy_seconds().context(|| "read /proc/stat".into())?;
        let harness = workloads::own_cpu_seconds()?;
        let (pids, start) = &self.proxy;
        let proxy = workloads::cpu_seconds_of(pids)? - start;
        let foreign = (machine - self.machine) - (harness - self.harness) - proxy;
        Ok((foreign / self.start.elapsed().as_secs_f64() * 100.0).max(0.0))
    }
}

/// Proxy log lines that the harness causes on purpose (it closes with RST).
const EXPECTED_LOG: [&str; 2] = ["Connection reset by peer", "Broken pipe"];
/// Foreign CPU load (% of one core) under which the machine counts as quiet.
const QUIET: f64 = 25.0;

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

/// CPU used by processes other than the harness over `window`, % of one core (no proxy
/// runs while this is called).
fn foreign_load_now(window: Duration) -> Result<f64, String> {
    let machine = sys::machine_busy_seconds().context(|| "read /proc/stat".into())?;
    let own = workloads::own_cpu_seconds()?;
    std::thread::sleep(window);
    let machine = sys::machine_busy_seconds().context(|| "read /proc/stat".into())? - machine;
    let own = workloads::own_cpu_seconds()? - own;
    Ok(((machine - own) / window.as_secs_f64() * 100.0).max(0.0))
}

/// One workload run: a fresh proxy, one measurement, figures recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    BulkUp,
    BulkDown,
    PingPong1,
    PingPong64,
    ConnRate,
    IdleMemory,
    SlowReader,
}

impl Workload {
    const ALL: [Workload; 7] = [
        Workload::BulkUp,
        Workload::BulkDown,
        Workload::PingPong1,
        Workload::PingPong64,
        Workload::ConnRate,
        Workload::IdleMemory,
        Workload::SlowReader,
    ];
    /// Workloads repeated by `--sweep`.
    const SWEEP: [Workload; 4] = [
        Workload::BulkUp,
        Workload::BulkDown,
        Workload::PingPong1,
        Workload::PingPong64,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::BulkUp => "bulk client→upstream",
            Workload::BulkDown => "bulk upstream→client",
            Workload::PingPong1 => "ping-pong 1 conn",
            Workload::PingPong64 => "ping-pong 64 conns",
            Workload::ConnRate => "connection rate",
            Workload::IdleMemory => "idle memory",
            Workload::SlowReader => "slow reader",
        }
    }

    /// The `--workloads` name this workload belongs to.
    fn group(self) -> &'static str {
        match self {
            Workload::BulkUp | Workload::BulkDown => "bulk",
            Workload::PingPong1 | Workload::PingPong64 => "pingpong",
            Workload::ConnRate => "connrate",
            Workload::IdleMemory => "memory",
            Workload::SlowReader => "slowreader",
        }
    }

    /// Memory workloads measure the proxy process and mean nothing for `direct`.
    fn needs_proxy(self) -> bool {
        matches!(self, Workload::IdleMemory | Workload::SlowReader)
    }

    /// The figures of the sweep table this workload fills.
    fn sweep_metrics(self) -> &'static [Metric] {
        use Metric::*;
        match self {
            Workload::BulkUp => &[UpGbit, UpCpu],
            Workload::BulkDown => &[DownGbit, DownCpu],
            Workload::PingPong1 => &[Pp1Rps, Pp1P50, Pp1P99, Pp1P999],
            Workload::PingPong64 => &[Pp64Rps, Pp64P50, Pp64P99, Pp64P999],
            _ => &[],
        }
    }
}

/// Everything a run needs, and what it has found so far.
struct Bench {
    opts: Options,
    tools: Tools,
    backend: Backend,
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
    let mut bench = Bench {
        planned: planned_runs(&opts, &kinds),
        opts,
        tools,
        backend,
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
    let proxies = kinds.iter().filter(|&&k| k != Kind::Direct).count();
    let per_repeat: usize = selected(opts, &Workload::ALL)
        .iter()
        .map(|w| {
            if w.needs_proxy() {
                proxies
            } else {
                kinds.len()
            }
        })
        .sum();
    let sweep = if opts.sweep {
        let sizes = SWEEP_BUFFERS
            .iter()
            .filter(|&&b| b != opts.buffer_size)
            .count();
        selected(opts, &Workload::SWEEP).len() * sizes * proxies
    } else {
        0
    };
    (per_repeat + sweep) * opts.repeat
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
                    if kind == Kind::Direct && workload.needs_proxy() {
                        continue;
                    }
                    self.measure(kind, workload, buffer, repeat);
                }
            }
        }
    }

    /// Bulk and ping-pong on every proxy at each sweep size (the main size is reused).
    fn run_sweep(&mut self) {
        let proxies: Vec<Kind> = self
            .kinds
            .iter()
            .copied()
            .filter(|&k| k != Kind::Direct)
            .collect();
        for repeat in 0..self.opts.repeat {
            for workload in self.workloads(&Workload::SWEEP) {
                for buffer in SWEEP_BUFFERS {
                    if buffer == self.opts.buffer_size {
                        continue;
                    }
                    for &kind in &proxies {
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
        let proxy = match kind {
            Kind::Direct => None,
            _ => Some(self.tools.start(kind, buffer, self.backend.addr)?),
        };
        if let Some(p) = &proxy
            && let Some(&pid) = p.pids.first()
            && let Ok(cpus) = sys::allowed_cpus(pid)
        {
            self.observed_cpus.insert(kind, cpus);
        }
        let addr = proxy.as_ref().map_or(self.backend.addr, |p| p.addr);
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

    /// Runs `workload` against `addr` and returns its figures; `None` values (such as proxy
    /// CPU for direct) are left out of the report.
    fn run_workload(
        &mut self,
        workload: Workload,
        addr: SocketAddr,
        proxy: Option<&Running>,
    ) -> Result<Figures, String> {
        use Metric::*;
        let run = Duration::from_secs_f64(self.opts.seconds);
        let pids: &[sys::Pid] = proxy.map_or(&[], |p| &p.pids);
        let need_pids = || {
            proxy
                .map(|p| p.pids.as_slice())
                .ok_or_else(|| "this workload needs a proxy".to_string())
        };
        Ok(match workload {
            Workload::BulkUp => {
                let b = workloads::bulk_upload(addr, run, pids)?;
                vec![(UpGbit, Some(b.gbit)), (UpCpu, b.cpu_per_gib)]
            }
            Workload::BulkDown => {
                let b = workloads::bulk_download(addr, run, pids)?;
                vec![(DownGbit, Some(b.gbit)), (DownCpu, b.cpu_per_gib)]
            }
            Workload::PingPong1 => {
                let p = workloads::ping_pong(addr, 1, run, pids)?;
                vec![
                    (Pp1Rps, Some(p.rps)),
                    (Pp1P50, Some(p.latency.p50)),
                    (Pp1P99, Some(p.latency.p99)),
                    (Pp1P999, Some(p.latency.p999)),
                    (Pp1ProxyCpu, p.busy.proxy),
                    (Pp1HarnessCpu, Some(p.busy.harness)),
                ]
            }
            Workload::PingPong64 => {
                let p = workloads::ping_pong(addr, 64, run, pids)?;
                vec![
                    (Pp64Rps, Some(p.rps)),
                    (Pp64P50, Some(p.latency.p50)),
                    (Pp64P99, Some(p.latency.p99)),
                    (Pp64P999, Some(p.latency.p999)),
                    (Pp64ProxyCpu, p.busy.proxy),
                    (Pp64HarnessCpu, Some(p.busy.harness)),
                ]
            }
            Workload::ConnRate => {
                let tw = sys::time_wait_sockets().unwrap_or(0);
                if tw > TIME_WAIT_NOTE {
                    self.notes.push(format!(
                        "connection rate via {}: {tw} sockets in TIME_WAIT at the start",
                        proxy.map_or("direct", |p| p.kind.name()),
                    ));
                }
                let c = workloads::connection_rate(addr, run, pids)?;
                if c.errors > 0 {
                    self.notes.push(format!(
                        "connection rate via {}: {} failed connections (first: {})",
                        proxy.map_or("direct", |p| p.kind.name()),
                        c.errors,
                        c.first_error.unwrap_or_default()
                    ));
                }
                vec![
                    (ConnRate, Some(c.per_sec)),
                    (ConnP99, Some(c.latency.p99)),
                    (ConnProxyCpu, c.busy.proxy),
                    (ConnHarnessCpu, Some(c.busy.harness)),
                ]
            }
            Workload::IdleMemory => {
                let kib = workloads::idle_memory(addr, need_pids()?, self.mem_conns)?;
                vec![(MemPerConn, Some(kib))]
            }
            Workload::SlowReader => {
                let s = workloads::slow_reader(addr, need_pids()?)?;
                vec![
                    (SlowPeak, Some(s.peak_mib)),
                    (SlowGrowth, Some(s.growth_kib)),
                ]
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

    /// Waits (up to `--max-wait` seconds) until other processes leave the CPUs mostly
    /// idle, so a compile or a test suite running next to the benchmark does not land in
    /// the figures; the time waited is reported.
    fn wait_for_quiet(&mut self) {
        let start = Instant::now();
        let deadline = start + Duration::from_secs_f64(self.opts.max_wait);
        loop {
            let busy = foreign_load_now(Duration::from_millis(200)).unwrap_or(0.0);
            if busy <= QUIET || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        if start.elapsed() > Duration::from_millis(500) {
            self.waited += start.elapsed();
        }
    }
}
