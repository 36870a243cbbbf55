//! The soak's figures: the per-second [`Sample`]s (also written as CSV), least-squares
//! growth per hour after the warm-up, CPU per connection and per GiB, and the printed report.

use crate::load::{Error, Load, Totals};
use std::fmt::Write as _;

/// One second of the run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the load started.
    pub t: f64,
    /// Proxy resident memory, KiB.
    pub rss_kib: u64,
    /// Proxy open descriptors.
    pub fds: u64,
    /// Proxy CPU seconds since the load started.
    pub cpu_s: f64,
    /// Connections the clients made so far.
    pub connections: u64,
    /// Bytes through the proxy so far (both directions).
    pub bytes: u64,
    /// Errors so far.
    pub errors: u64,
    /// Reloads so far.
    pub reloads: u64,
    /// 1-minute load average of the machine.
    pub load1: f64,
}

/// The CSV header for [`Sample::csv`].
pub const CSV_HEADER: &str = "t_s,rss_kib,fds,cpu_s,connections,bytes,errors,reloads,load1";

impl Sample {
    /// The sample as one CSV line.
    pub fn csv(&self) -> String {
        format!(
            "{:.1},{},{},{:.2},{},{},{},{},{:.2}",
            self.t,
            self.rss_kib,
            self.fds,
            self.cpu_s,
            self.connections,
            self.bytes,
            self.errors,
            self.reloads,
            self.load1
        )
    }
}

/// A least-squares line: slope per hour, its standard error, and the fitted value at the end.
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    /// Growth per hour.
    pub per_hour: f64,
    /// Standard error of `per_hour`.
    pub stderr: f64,
    /// Samples fitted.
    pub n: usize,
}

/// Fits `y = a + b·t` (t in hours) over `points`.
pub fn fit(points: &[(f64, f64)]) -> Fit {
    let n = points.len() as f64;
    if points.len() < 3 {
        return Fit {
            per_hour: f64::NAN,
            stderr: f64::NAN,
            n: points.len(),
        };
    }
    let mt = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let stt: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    let sty: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum();
    let b = sty / stt;
    let a = my - b * mt;
    let sse: f64 = points.iter().map(|p| (p.1 - a - b * p.0).powi(2)).sum();
    Fit {
        per_hour: b,
        stderr: (sse / (n - 2.0) / stt).sqrt(),
        n: points.len(),
    }
}

/// Everything the report needs.
pub struct Run<'a> {
    /// Every sample.
    pub samples: &'a [Sample],
    /// Seconds excluded from the fits.
    pub warmup: f64,
    /// Per-load connections and bytes.
    pub totals: &'a Totals,
    /// Per-load error counts.
    pub error_counts: Vec<(Load, u64)>,
    /// The first errors, in full.
    pub errors: &'a [Error],
    /// Reloads sent, and how many the proxy's log confirms.
    pub reloads: (u64, u64),
    /// Servers created over the run (each reload adds one and retires one).
    pub servers: u32,
    /// Metrics scrapes done.
    pub scrapes: u64,
    /// Proxy log lines at warn or error, or not log lines at all (first few, and how many).
    pub log: (Vec<String>, usize),
    /// Where the samples were written.
    pub csv: String,
}

/// Growth per hour of one column after the warm-up.
fn growth(run: &Run, value: impl Fn(&Sample) -> f64) -> Fit {
    let points: Vec<(f64, f64)> = run
        .samples
        .iter()
        .filter(|s| s.t >= run.warmup)
        .map(|s| (s.t / 3600.0, value(s)))
        .collect();
    fit(&points)
}

/// The printed report: the summary table (markdown, as in the README), then per load, then
/// every error.
pub fn render(run: &Run) -> String {
    let mut out = String::new();
    let (Some(first), Some(last)) = (run.samples.first(), run.samples.last()) else {
        return "no samples".into();
    };
    let (connections, bytes) = run.totals.sum();
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let cpu = last.cpu_s - first.cpu_s;
    let rss = growth(run, |s| s.rss_kib as f64);
    let fds = growth(run, |s| s.fds as f64);
    let after: Vec<&Sample> = run.samples.iter().filter(|s| s.t >= run.warmup).collect();
    let rss_range = after
        .iter()
        .map(|s| s.rss_kib)
        .fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let fd_range = after
        .iter()
        .map(|s| s.fds)
        .fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let loads: Vec<f64> = run.samples.iter().map(|s| s.load1).collect();
    let load_mean = loads.iter().sum::<f64>() / loads.len() as f64;
    let load_max = loads.iter().copied().fold(0.0, f64::max);
    let errors: u64 = run.error_counts.iter().map(|(_, n)| n).sum();
    let _ = writeln!(out, "| figure | value |\n|---|---|");
    let _ = writeln!(
        out,
        "| duration | {:.1} min (fits after a {:.0} s warm-up, {} samples) |",
        last.t / 60.0,
        run.warmup,
        rss.n
    );
    let _ = writeln!(out, "| connections | {connections} |");
    let _ = writeln!(out, "| bytes through the proxy | {gib:.1} GiB |");
    let _ = writeln!(
        out,
        "| reloads (server churn) | {} sent, {} taken (proxy log); {} servers created |",
        run.reloads.0, run.reloads.1, run.servers
    );
    let _ = writeln!(out, "| metrics scrapes | {} |", run.scrapes);
    let _ = writeln!(
        out,
        "| resident memory | {:+.0} ± {:.0} KiB/h (range after warm-up {}–{} KiB) |",
        rss.per_hour, rss.stderr, rss_range.0, rss_range.1
    );
    let _ = writeln!(
        out,
        "| open descriptors | {:+.1} ± {:.1} per hour (range after warm-up {}–{}) |",
        fds.per_hour, fds.stderr, fd_range.0, fd_range.1
    );
    let _ = writeln!(
        out,
        "| proxy CPU | {cpu:.1} s: {:.1} µs per connection, {:.2} s per GiB |",
        cpu / connections.max(1) as f64 * 1e6,
        cpu / gib.max(1e-9)
    );
    let _ = writeln!(out, "| client errors | {errors} |");
    let _ = writeln!(
        out,
        "| load average (1 min) | mean {load_mean:.2}, max {load_max:.2} |"
    );
    let _ = writeln!(
        out,
        "\n| load | connections | MiB | errors |\n|---|---|---|---|"
    );
    for load in Load::ALL {
        let (c, b) = run.totals.of(load);
        let e = run
            .error_counts
            .iter()
            .find(|(l, _)| *l == load)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(
            out,
            "| {} | {c} | {:.0} | {e} |",
            load.name(),
            b as f64 / (1 << 20) as f64
        );
    }
    let _ = writeln!(out, "\nsamples: {}", run.csv);
    let (lines, count) = &run.log;
    let _ = writeln!(out, "proxy log lines at warn or error: {count}");
    for line in lines {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "errors: {errors}");
    for e in run.errors {
        let _ = writeln!(out, "  {:8.1} s  {}: {}", e.at, e.load.name(), e.what);
    }
    out
}
