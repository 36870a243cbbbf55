//! The harness's command line: `cargo bench --bench compare -- [OPTIONS]`.

use crate::targets::Kind;
use std::ffi::OsString;
use std::path::PathBuf;

/// Text printed by `--help`.
pub const HELP: &str = "\
compare: side-by-side benchmark of ringproxy (each engine), nginx (stream), HAProxy (mode tcp,
with and without splice), a Go io.Copy proxy and direct, optionally against another ringproxy
build (--baseline)

USAGE:
    cargo bench --bench compare -- [OPTIONS]

OPTIONS:
    --seconds N         length of each timed run, fractional allowed [default: 3]
    --repeat N          runs of each workload; figures are medians [default: 3]
    --sweep             also run bulk and ping-pong with 4KiB, 16KiB, 64KiB, 256KiB buffers
                        on every proxy and engine (not go: its pipes have a fixed size)
    --only LIST         comma-separated targets: direct, ringproxy (engine ring),
                        ringproxy-splice, ringproxy-auto, ringproxy-allow (ring with an
                        allow list every client matches), baseline (only with --baseline),
                        nginx, haproxy, haproxy-splice, go (when Go is installed)
                        [default: all]
    --baseline PATH     another ringproxy release binary, e.g. built from an earlier commit,
                        measured as target baseline exactly like ringproxy (same flags,
                        pinning, workloads and repeats, interleaved); adds a
                        `ringproxy ÷ baseline` column. To build one:
                          git worktree add /tmp/base COMMIT
                          cargo build --release --manifest-path /tmp/base/Cargo.toml \\
                              --target-dir /tmp/base/target
                        then --baseline /tmp/base/target/release/ringproxy
    --workloads LIST    comma-separated: bulk,pingpong,connrate,refused,memory,slowreader,
                        tls,bandwidth [default: all]
    --buffer-size SIZE  buffer per direction for every proxy [default: 16KiB]
    --pipe-size SIZE    pipe per direction of the splicing proxies: ringproxy --pipe-size
                        (splice, auto), HAProxy tune.pipesize [default: 64KiB, the kernel's
                        default and the Go proxy's fixed size]; --sweep keeps pipes at this
                        size
    --workers N         ringproxy --workers N (when its --help lists the flag) and nginx
                        worker_processes N [default: 1]
    --cpus MODE         pinned: proxy on CPU 1, backend and load generator on CPU 0;
                        shared: nothing pinned, everything may run on every CPU
                        [default: pinned]
    --mem-conns N       idle connections for the memory workload [default: 5000]
    --max-wait N        before each run, wait up to N seconds for other processes to
                        leave the CPUs idle (0: never wait) [default: 30]
    -h, --help          print this help
";

/// Names accepted by `--workloads`, in run order.
pub const WORKLOAD_GROUPS: [&str; 8] = [
    "bulk",
    "pingpong",
    "connrate",
    "refused",
    "memory",
    "slowreader",
    "tls",
    "bandwidth",
];

/// Where the processes of a run may execute (`--cpus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpus {
    /// The proxy on one CPU, the harness (backend and load generator) on another.
    Pinned,
    /// Nothing pinned: the kernel schedules proxy and harness on every CPU.
    Shared,
}

impl Cpus {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Cpus::Pinned => "pinned",
            Cpus::Shared => "shared",
        }
    }
}

/// Validated harness options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Length of each timed run, in seconds.
    pub seconds: f64,
    /// Runs of each workload per target.
    pub repeat: usize,
    /// Whether to run the buffer-size sweep.
    pub sweep: bool,
    /// Targets to measure, in report order.
    pub only: Vec<Kind>,
    /// Another ringproxy binary to measure as [`Kind::Baseline`].
    pub baseline: Option<PathBuf>,
    /// Workload groups to run (names from [`WORKLOAD_GROUPS`]).
    pub workloads: Vec<&'static str>,
    /// Buffer bytes per direction for the main run.
    pub buffer_size: usize,
    /// Pipe size of the splicing proxies in the main run (`--pipe-size`).
    pub pipe_size: usize,
    /// `--workers` for ringproxy (used only when supported) and nginx's `worker_processes`.
    pub workers: usize,
    /// Pinning of proxy and harness.
    pub cpus: Cpus,
    /// Idle connections opened by the memory workload.
    pub mem_conns: usize,
    /// Longest wait for a quiet machine before each run, seconds.
    pub max_wait: f64,
    /// The arguments as given (without cargo's `--bench`), for the report header.
    pub given: Vec<String>,
}

/// Parses the process arguments; `Err(None)` means `--help` was printed.
pub fn parse() -> Result<Options, Option<String>> {
    let raw: Vec<OsString> = std::env::args_os().skip(1).collect();
    let given: Vec<String> = raw
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .filter(|a| a != "--bench")
        .collect();
    let mut args = pico_args::Arguments::from_vec(raw);
    if args.contains(["-h", "--help"]) {
        print!("{HELP}");
        return Err(None);
    }
    // cargo passes --bench to harness = false targets; it means nothing here.
    while args.contains("--bench") {}
    let err = |flag: &str, e: pico_args::Error| Some(format!("{flag}: {e} (see --help)"));
    let seconds: f64 = args
        .opt_value_from_str("--seconds")
        .map_err(|e| err("--seconds", e))?
        .unwrap_or(3.0);
    if !(seconds.is_finite() && seconds >= 0.2) {
        return Err(Some("--seconds must be at least 0.2".into()));
    }
    let repeat: usize = args
        .opt_value_from_str("--repeat")
        .map_err(|e| err("--repeat", e))?
        .unwrap_or(3);
    if repeat == 0 {
        return Err(Some("--repeat must be at least 1".into()));
    }
    let sweep = args.contains("--sweep");
    let baseline = args
        .opt_value_from_os_str("--baseline", |s| Ok::<_, String>(PathBuf::from(s)))
        .map_err(|e| err("--baseline", e))?;
    if let Some(path) = &baseline
        && !path.is_file()
    {
        return Err(Some(format!(
            "--baseline: {} is not a file (expected a ringproxy binary)",
            path.display()
        )));
    }
    let only = match args
        .opt_value_from_str::<_, String>("--only")
        .map_err(|e| err("--only", e))?
    {
        Some(list) => parse_targets(&list, baseline.is_some())?,
        None => Kind::ALL
            .into_iter()
            .filter(|&k| k != Kind::Baseline || baseline.is_some())
            .collect(),
    };
    let workloads = match args
        .opt_value_from_str::<_, String>("--workloads")
        .map_err(|e| err("--workloads", e))?
    {
        Some(list) => parse_workloads(&list)?,
        None => WORKLOAD_GROUPS.to_vec(),
    };
    let buffer_size = size_option(&mut args, "--buffer-size", "16k", 1024)?.unwrap_or(16 * 1024);
    let pipe_size = size_option(&mut args, "--pipe-size", "64k", 4096)?.unwrap_or(64 * 1024);
    let workers: usize = args
        .opt_value_from_str("--workers")
        .map_err(|e| err("--workers", e))?
        .unwrap_or(1);
    let cpus = match args
        .opt_value_from_str::<_, String>("--cpus")
        .map_err(|e| err("--cpus", e))?
    {
        Some(mode) => parse_cpus(&mode)?,
        None => Cpus::Pinned,
    };
    let mem_conns: usize = args
        .opt_value_from_str("--mem-conns")
        .map_err(|e| err("--mem-conns", e))?
        .unwrap_or(5000);
    let max_wait: f64 = args
        .opt_value_from_str("--max-wait")
        .map_err(|e| err("--max-wait", e))?
        .unwrap_or(30.0);
    if !(max_wait.is_finite() && max_wait >= 0.0) {
        return Err(Some(
            "--max-wait must be a number of seconds, 0 or more".into(),
        ));
    }
    if workers == 0 || mem_conns == 0 {
        return Err(Some("--workers and --mem-conns must be at least 1".into()));
    }
    let rest = args.finish();
    if let Some(first) = rest.first() {
        return Err(Some(format!(
            "unexpected argument {:?} (see --help)",
            first.to_string_lossy()
        )));
    }
    Ok(Options {
        seconds,
        repeat,
        sweep,
        only,
        baseline,
        workloads,
        buffer_size,
        pipe_size,
        workers,
        cpus,
        mem_conns,
        max_wait,
        given,
    })
}

/// Parses `direct,ringproxy,...` into targets in the canonical report order; `baseline`
/// is a target only when `has_baseline` (`--baseline` was given).
fn parse_targets(list: &str, has_baseline: bool) -> Result<Vec<Kind>, Option<String>> {
    let mut wanted = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                Some(format!(
                    "--only: unknown target {name:?} (expected {})",
                    names.join(", ")
                ))
            })?;
        if kind == Kind::Baseline && !has_baseline {
            return Err(Some(
                "--only: target baseline needs --baseline PATH (see --help)".into(),
            ));
        }
        wanted.push(kind);
    }
    if wanted.is_empty() {
        return Err(Some("--only: name at least one target".into()));
    }
    Ok(Kind::ALL
        .into_iter()
        .filter(|k| wanted.contains(k))
        .collect())
}

/// Parses `pinned` or `shared`.
fn parse_cpus(mode: &str) -> Result<Cpus, Option<String>> {
    [Cpus::Pinned, Cpus::Shared]
        .into_iter()
        .find(|c| c.name() == mode.trim())
        .ok_or_else(|| {
            Some(format!(
                "--cpus: unknown mode {mode:?} (expected pinned or shared)"
            ))
        })
}

/// Parses `bulk,pingpong,...` into known group names.
fn parse_workloads(list: &str) -> Result<Vec<&'static str>, Option<String>> {
    let mut wanted = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let group = WORKLOAD_GROUPS
            .into_iter()
            .find(|g| *g == name)
            .ok_or_else(|| {
                Some(format!(
                    "--workloads: unknown workload {name:?} (expected {})",
                    WORKLOAD_GROUPS.join(", ")
                ))
            })?;
        wanted.push(group);
    }
    if wanted.is_empty() {
        return Err(Some("--workloads: name at least one workload".into()));
    }
    Ok(wanted)
}

/// Parses a byte size such as `16384`, `16k`, `16KiB` or `1m` (multiples of 1024).
/// The size given to option `name`, at least `min` bytes (`example` shows one in the error).
fn size_option(
    args: &mut pico_args::Arguments,
    name: &'static str,
    example: &str,
    min: usize,
) -> Result<Option<usize>, Option<String>> {
    let value: Option<String> = args
        .opt_value_from_str(name)
        .map_err(|e| Some(format!("{name}: {e} (see --help)")))?;
    let Some(s) = value else {
        return Ok(None);
    };
    let size = parse_size(&s).filter(|&n| n >= min).ok_or_else(|| {
        Some(format!(
            "{name}: expected e.g. {example} or 65536 (at least {}k), got {s:?}",
            min / 1024
        ))
    })?;
    Ok(Some(size))
}

pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(split);
    let number: usize = digits.parse().ok()?;
    let unit = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        _ => return None,
    };
    number.checked_mul(unit)
}

/// `16384` → `16 KiB`, `262144` → `256 KiB`, `1000` → `1000 B`.
pub fn format_size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}
