//! The targets the issues set, checked against one run's medians and printed as PASS/FAIL
//! lines with the figures behind them (SKIP when a figure is missing). Limits are the
//! issues' own; where an issue says "unchanged" the tolerance is stated in the line.

use crate::bandwidth;
use crate::report::{Metric, Results, format_value};
use crate::targets::Kind;

/// A ratio bound: `value ÷ reference` must be at least (`Min`) or at most (`Max`) this.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Min(f64),
    Max(f64),
}

/// One line: `value`'s `metric` against `reference`'s, scaled by the bound.
fn ratio_line(
    results: &Results,
    buffer: usize,
    what: &str,
    metric: Metric,
    value: Kind,
    reference: Kind,
    bound: Bound,
) -> String {
    let (v, r) = (
        results.median(metric, value, buffer),
        results.median(metric, reference, buffer),
    );
    let (op, limit) = match bound {
        Bound::Min(x) => ("≥", x),
        Bound::Max(x) => ("≤", x),
    };
    let head = format!(
        "{what}: {} {op} {limit:.2}× {}",
        value.name(),
        reference.name()
    );
    let (Some(v), Some(r)) = (v, r) else {
        return format!("SKIP {head} (not measured)");
    };
    if r == 0.0 {
        return format!("SKIP {head} (reference is 0)");
    }
    let ratio = v / r;
    let pass = match bound {
        Bound::Min(x) => ratio >= x,
        Bound::Max(x) => ratio <= x,
    };
    let unit = metric.describe().1;
    format!(
        "{} {head}: {ratio:.2}× ({} vs {} {unit})",
        if pass { "PASS" } else { "FAIL" },
        format_value(v),
        format_value(r)
    )
}

/// Every check, in the order of the issues (12: engines; 10: allow list, bandwidth).
pub fn check(results: &Results, buffer: usize) -> Vec<String> {
    use Kind::*;
    use Metric::*;
    let line = |what, m, v, r, b| ratio_line(results, buffer, what, m, v, r, b);
    let mut lines = Vec::new();
    for (m, what) in [
        (UpGbit, "bulk client→upstream"),
        (DownGbit, "bulk upstream→client"),
    ] {
        lines.push(line(what, m, RingproxySplice, Nginx, Bound::Min(1.3)));
        lines.push(line(what, m, RingproxySplice, Go, Bound::Min(1.0)));
        lines.push(line(
            what,
            m,
            RingproxySplice,
            HaproxySplice,
            Bound::Min(1.0),
        ));
    }
    for (m, what) in [
        (UpCpu, "CPU per GiB client→upstream"),
        (DownCpu, "CPU per GiB upstream→client"),
    ] {
        lines.push(line(what, m, RingproxySplice, Nginx, Bound::Max(0.5)));
    }
    for (m, what) in [
        (Pp1P99, "ping-pong 1 conn p99"),
        (Pp64P99, "ping-pong 64 conns p99"),
    ] {
        lines.push(line(what, m, RingproxyAuto, Ringproxy, Bound::Max(1.1)));
    }
    for (m, what) in [
        (UpGbit, "bulk client→upstream"),
        (DownGbit, "bulk upstream→client"),
    ] {
        lines.push(line(
            what,
            m,
            RingproxyAuto,
            RingproxySplice,
            Bound::Min(0.9),
        ));
    }
    for kind in [RingproxySplice, RingproxyAuto] {
        lines.push(line(
            "idle memory per connection unchanged (within 10%)",
            MemPerConn,
            kind,
            Ringproxy,
            Bound::Max(1.1),
        ));
    }
    for (m, what) in [
        (UpCpu, "allow list on: CPU per GiB client→upstream"),
        (DownCpu, "allow list on: CPU per GiB upstream→client"),
        (Pp1P99, "allow list on: ping-pong 1 conn p99"),
        (Pp64P99, "allow list on: ping-pong 64 conns p99"),
    ] {
        lines.push(unchanged(results, buffer, what, m));
    }
    for (i, (_, conns, label)) in bandwidth::RATES.iter().enumerate() {
        let head = format!(
            "download rate {label}, {conns} connection(s): every connection within ±10% of the setting"
        );
        lines.push(
            match (
                results.median(BwWorst(i), Ringproxy, buffer),
                results.median(BwMean(i), Ringproxy, buffer),
            ) {
                (Some(worst), Some(mean)) => format!(
                    "{} {head}: farthest {worst:.3}×, mean {mean:.3}×",
                    if (worst - 1.0).abs() <= 0.10 {
                        "PASS"
                    } else {
                        "FAIL"
                    }
                ),
                _ => format!("SKIP {head} (not measured)"),
            },
        );
    }
    lines
}

/// "Does not change measurably": ringproxy-allow ÷ ringproxy within the larger of 5% and
/// the two targets' ± spreads (half the range of their repeats).
fn unchanged(results: &Results, buffer: usize, what: &str, metric: Metric) -> String {
    let get = |k| {
        (
            results.median(metric, k, buffer),
            results.spread(metric, k, buffer),
        )
    };
    let ((v, vs), (r, rs)) = (get(Kind::RingproxyAllow), get(Kind::Ringproxy));
    let (Some(v), Some(r)) = (v, r) else {
        return format!("SKIP {what} (not measured)");
    };
    let tolerance = 5f64.max(vs.unwrap_or(0.0)).max(rs.unwrap_or(0.0));
    let ratio = v / r;
    let pass = ((ratio - 1.0) * 100.0).abs() <= tolerance;
    format!(
        "{} {what}: ringproxy-allow ÷ ringproxy {ratio:.2}× ({} vs {} {}; tolerance ±{tolerance:.0}%, \
         the larger of 5% and the repeats' spread)",
        if pass { "PASS" } else { "FAIL" },
        format_value(v),
        format_value(r),
        metric.describe().1
    )
}
