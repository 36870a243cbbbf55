//! Collected figures (one value per repeat), their medians, and the markdown tables.

use crate::args::format_size;
use crate::targets::Kind;
use std::collections::BTreeMap;

/// Whether a larger figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// A reported figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    UpGbit,
    UpCpu,
    DownGbit,
    DownCpu,
    Pp1Rps,
    Pp1P50,
    Pp1P99,
    Pp1P999,
    Pp1ProxyCpu,
    Pp1HarnessCpu,
    Pp64Rps,
    Pp64P50,
    Pp64P99,
    Pp64P999,
    Pp64ProxyCpu,
    Pp64HarnessCpu,
    ConnRate,
    ConnP99,
    ConnProxyCpu,
    ConnHarnessCpu,
    ConnCpu,
    MemPerConn,
    SlowPeak,
    SlowGrowth,
    RefusedRate,
    RefusedP99,
    RefusedCpu,
    TlsRate,
    TlsP99,
    TlsCpu,
    SniRate,
    SniP99,
    SniCpu,
    /// Mean over the connections of long-run rate ÷ setting, at `bandwidth::RATES[i]`.
    BwMean(usize),
    /// The connection farthest from the setting: its rate ÷ setting.
    BwWorst(usize),
}

impl Metric {
    /// The figures of the plain workloads (1–5), in report order.
    pub const MAIN: [Metric; 24] = [
        Metric::UpGbit,
        Metric::UpCpu,
        Metric::DownGbit,
        Metric::DownCpu,
        Metric::Pp1Rps,
        Metric::Pp1P50,
        Metric::Pp1P99,
        Metric::Pp1P999,
        Metric::Pp1ProxyCpu,
        Metric::Pp1HarnessCpu,
        Metric::Pp64Rps,
        Metric::Pp64P50,
        Metric::Pp64P99,
        Metric::Pp64P999,
        Metric::Pp64ProxyCpu,
        Metric::Pp64HarnessCpu,
        Metric::ConnRate,
        Metric::ConnP99,
        Metric::ConnProxyCpu,
        Metric::ConnHarnessCpu,
        Metric::ConnCpu,
        Metric::MemPerConn,
        Metric::SlowPeak,
        Metric::SlowGrowth,
    ];
    /// Refused against accepted-and-proxied connections.
    pub const ACCESS: [Metric; 5] = [
        Metric::RefusedRate,
        Metric::RefusedP99,
        Metric::RefusedCpu,
        Metric::ConnRate,
        Metric::ConnCpu,
    ];
    /// What enabling an allow list must not change.
    pub const ALLOW: [Metric; 7] = [
        Metric::UpGbit,
        Metric::UpCpu,
        Metric::DownGbit,
        Metric::DownCpu,
        Metric::Pp1P99,
        Metric::Pp64Rps,
        Metric::Pp64P99,
    ];
    /// TLS setups through a plain route and a route chosen by server name.
    pub const TLS: [Metric; 6] = [
        Metric::TlsRate,
        Metric::TlsP99,
        Metric::TlsCpu,
        Metric::SniRate,
        Metric::SniP99,
        Metric::SniCpu,
    ];

    /// (label, unit, which way is better).
    pub fn describe(self) -> (&'static str, &'static str, Better) {
        use Better::{Higher, Lower};
        match self {
            Metric::UpGbit => ("1. bulk client→upstream", "Gbit/s", Higher),
            Metric::UpCpu => ("1. proxy CPU, client→upstream", "CPU s/GiB", Lower),
            Metric::DownGbit => ("1. bulk upstream→client", "Gbit/s", Higher),
            Metric::DownCpu => ("1. proxy CPU, upstream→client", "CPU s/GiB", Lower),
            Metric::Pp1Rps => ("2. ping-pong 64 B, 1 conn", "req/s", Higher),
            Metric::Pp1P50 => ("2. ping-pong 1 conn p50", "µs", Lower),
            Metric::Pp1P99 => ("2. ping-pong 1 conn p99", "µs", Lower),
            Metric::Pp1P999 => ("2. ping-pong 1 conn p99.9", "µs", Lower),
            Metric::Pp1ProxyCpu => ("2. ping-pong 1 conn: proxy CPU busy", "% core", Lower),
            Metric::Pp1HarnessCpu => ("2. ping-pong 1 conn: harness CPU busy", "% core", Lower),
            Metric::Pp64Rps => ("2. ping-pong 64 B, 64 conns", "req/s", Higher),
            Metric::Pp64P50 => ("2. ping-pong 64 conns p50", "µs", Lower),
            Metric::Pp64P99 => ("2. ping-pong 64 conns p99", "µs", Lower),
            Metric::Pp64P999 => ("2. ping-pong 64 conns p99.9", "µs", Lower),
            Metric::Pp64ProxyCpu => ("2. ping-pong 64 conns: proxy CPU busy", "% core", Lower),
            Metric::Pp64HarnessCpu => ("2. ping-pong 64 conns: harness CPU busy", "% core", Lower),
            Metric::ConnRate => ("3. connection rate", "conn/s", Higher),
            Metric::ConnP99 => ("3. connect + first byte p99", "µs", Lower),
            Metric::ConnProxyCpu => ("3. connection rate: proxy CPU busy", "% core", Lower),
            Metric::ConnHarnessCpu => ("3. connection rate: harness CPU busy", "% core", Lower),
            Metric::ConnCpu => ("3. proxy CPU per connection", "µs", Lower),
            Metric::MemPerConn => ("4. RSS per idle connection", "KiB", Lower),
            Metric::SlowPeak => ("5. slow reader: peak RSS", "MiB", Lower),
            Metric::SlowGrowth => ("5. slow reader: peak − idle RSS", "KiB", Lower),
            Metric::RefusedRate => ("6. refused connections (deny)", "conn/s", Higher),
            Metric::RefusedP99 => ("6. connect to close, refused, p99", "µs", Lower),
            Metric::RefusedCpu => ("6. proxy CPU per refused connection", "µs", Lower),
            Metric::TlsRate => ("7. TLS setups, plain route", "conn/s", Higher),
            Metric::TlsP99 => ("7. TLS setup p99, plain route", "µs", Lower),
            Metric::TlsCpu => ("7. proxy CPU per TLS connection, plain", "µs", Lower),
            Metric::SniRate => ("7. TLS setups, SNI route", "conn/s", Higher),
            Metric::SniP99 => ("7. TLS setup p99, SNI route", "µs", Lower),
            Metric::SniCpu => ("7. proxy CPU per TLS connection, SNI", "µs", Lower),
            Metric::BwMean(_) => ("8. download rate ÷ setting, mean", "ratio", Higher),
            Metric::BwWorst(_) => ("8. download rate ÷ setting, farthest", "ratio", Higher),
        }
    }
}

/// Every value measured, keyed by metric, target and buffer size.
#[derive(Debug, Default)]
pub struct Results {
    values: BTreeMap<(Metric, Kind, usize), Vec<f64>>,
}

impl Results {
    /// Records one repeat's value.
    pub fn add(&mut self, metric: Metric, kind: Kind, buffer: usize, value: f64) {
        self.values
            .entry((metric, kind, buffer))
            .or_default()
            .push(value);
    }

    /// The values of every repeat; `direct` does not depend on the buffer size, so its
    /// values are found under any buffer.
    fn values(&self, metric: Metric, kind: Kind, buffer: usize) -> Option<&[f64]> {
        let values = if kind == Kind::Direct {
            self.values
                .range((metric, kind, 0)..=(metric, kind, usize::MAX))
                .next()
                .map(|(_, v)| v)?
        } else {
            self.values.get(&(metric, kind, buffer))?
        };
        Some(values)
    }

    /// Median over the repeats.
    pub fn median(&self, metric: Metric, kind: Kind, buffer: usize) -> Option<f64> {
        median(self.values(metric, kind, buffer)?)
    }

    /// Half the range of the repeats relative to the median, in percent (`None` for fewer
    /// than two repeats).
    pub fn spread(&self, metric: Metric, kind: Kind, buffer: usize) -> Option<f64> {
        let values = self.values(metric, kind, buffer)?;
        let mid = median(values)?;
        if values.len() < 2 || mid == 0.0 {
            return None;
        }
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        Some((hi - lo) / 2.0 / mid.abs() * 100.0)
    }

    /// `median ±spread%`, or `—` when nothing was measured.
    fn cell(&self, metric: Metric, kind: Kind, buffer: usize) -> String {
        match (
            self.median(metric, kind, buffer),
            self.spread(metric, kind, buffer),
        ) {
            (Some(m), Some(s)) => format!("{} ±{s:.0}%", format_value(m)),
            (Some(m), None) => format_value(m),
            _ => "—".into(),
        }
    }
}

/// The median (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// About three significant digits, without exponent notation.
pub fn format_value(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `value ÷ reference` as `1.02×`, or `—` when either is missing or the reference is 0.
pub fn format_ratio(value: Option<f64>, reference: Option<f64>) -> String {
    match (value, reference) {
        (Some(v), Some(r)) if r != 0.0 => format!("{:.2}×", v / r),
        _ => "—".into(),
    }
}

/// Renders rows as a markdown table with aligned columns.
pub fn markdown(header: &[String], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count(), 3])
            .max()
            .unwrap_or(3)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule));
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// A table of `metrics` (rows with no figure left out) with a column per target of
/// `kinds` that has any figure, then one column per `(value, reference)` ratio whose two
/// targets both have figures. `None` when no row has a figure.
pub fn table(
    results: &Results,
    metrics: &[Metric],
    kinds: &[Kind],
    ratios: &[(Kind, Kind)],
    buffer: usize,
) -> Option<String> {
    let has = |k: Kind| {
        metrics
            .iter()
            .any(|&m| results.median(m, k, buffer).is_some())
    };
    let kinds: Vec<Kind> = kinds.iter().copied().filter(|&k| has(k)).collect();
    let ratios: Vec<(Kind, Kind)> = ratios
        .iter()
        .copied()
        .filter(|&(v, r)| kinds.contains(&v) && kinds.contains(&r))
        .collect();
    let mut header = vec![
        "workload / figure".to_string(),
        "unit".into(),
        "better".into(),
    ];
    header.extend(kinds.iter().map(|k| k.name().to_string()));
    header.extend(
        ratios
            .iter()
            .map(|(v, r)| format!("{} ÷ {}", v.name(), r.name())),
    );
    let mut rows = Vec::new();
    for &metric in metrics {
        let value = |k: Kind| results.median(metric, k, buffer);
        if kinds.iter().all(|&k| value(k).is_none()) {
            continue;
        }
        let (label, unit, better) = metric.describe();
        let mut row = vec![
            label.to_string(),
            unit.to_string(),
            if better == Better::Higher {
                "higher"
            } else {
                "lower"
            }
            .to_string(),
        ];
        row.extend(kinds.iter().map(|&k| results.cell(metric, k, buffer)));
        row.extend(
            ratios
                .iter()
                .map(|&(v, r)| format_ratio(value(v), value(r))),
        );
        rows.push(row);
    }
    (!rows.is_empty()).then(|| markdown(&header, &rows))
}

/// The main table's ratios: ringproxy to the baseline, each proxy of `kinds` to nginx and
/// to direct.
pub fn main_ratios(kinds: &[Kind]) -> Vec<(Kind, Kind)> {
    let proxies = kinds.iter().copied().filter(|&k| k != Kind::Direct);
    let mut ratios = vec![(Kind::Ringproxy, Kind::Baseline)];
    ratios.extend(
        proxies
            .clone()
            .filter(|&k| k != Kind::Nginx)
            .map(|k| (k, Kind::Nginx)),
    );
    ratios.extend(proxies.map(|k| (k, Kind::Direct)));
    ratios
}

/// The sweep table: one row per (metric, proxy), a column per buffer size, then per size
/// ringproxy's ratio to the baseline and each proxy's ratio to nginx in further rows.
pub fn sweep_table(
    results: &Results,
    kinds: &[Kind],
    buffers: &[usize],
    metrics: &[Metric],
) -> String {
    let proxies: Vec<Kind> = kinds
        .iter()
        .copied()
        .filter(|&k| k != Kind::Direct)
        .collect();
    let mut header = vec!["figure".to_string(), "unit".into(), "target".into()];
    header.extend(buffers.iter().map(|&b| format_size(b)));
    let mut rows = Vec::new();
    for &metric in metrics {
        let (label, unit, _) = metric.describe();
        for &k in &proxies {
            let mut row = vec![label.to_string(), unit.to_string(), k.name().to_string()];
            row.extend(buffers.iter().map(|&b| results.cell(metric, k, b)));
            rows.push(row);
        }
        let vs_nginx: &[Kind] = if proxies.contains(&Kind::Nginx) {
            &proxies
        } else {
            &[]
        };
        let baseline = if kinds.contains(&Kind::Baseline) && kinds.contains(&Kind::Ringproxy) {
            Some((Kind::Ringproxy, Kind::Baseline))
        } else {
            None
        };
        let ratios = baseline.into_iter().chain(
            vs_nginx
                .iter()
                .filter(|&&k| k != Kind::Nginx)
                .map(|&k| (k, Kind::Nginx)),
        );
        for (k, reference) in ratios {
            let mut row = vec![
                label.to_string(),
                "ratio".into(),
                format!("{} ÷ {}", k.name(), reference.name()),
            ];
            row.extend(buffers.iter().map(|&b| {
                format_ratio(
                    results.median(metric, k, b),
                    results.median(metric, reference, b),
                )
            }));
            rows.push(row);
        }
    }
    markdown(&header, &rows)
}
