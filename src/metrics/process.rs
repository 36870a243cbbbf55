//! The process-wide families, one sample each without a `worker` label: build, resource use
//! (Prometheus's standard `process_*` names), `max_conns`, reloads, and the connect-time,
//! lifetime and health-check totals added up over every worker.

use super::text::{Float, Out};
use crate::histogram::Histogram;
use crate::stats::{CheckCounts, ProcessSnapshot, Snapshot};
use std::time::UNIX_EPOCH;

/// The process-wide families.
pub(super) fn process_families(out: &mut Out, snapshots: &[Snapshot], process: &ProcessSnapshot) {
    let name = "ringproxy_build_info";
    out.header(
        name,
        "The version and git commit of the running binary (always 1).",
        "gauge",
    );
    let labels = [
        ("version", env!("CARGO_PKG_VERSION")),
        ("commit", env!("RINGPROXY_COMMIT")),
    ];
    out.process_sample(name, &labels, 1);

    if let Some(r) = &process.resources {
        let families: [(&str, &str, &str, Float); 4] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                "gauge",
                Float(r.resident_bytes as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                "gauge",
                Float(r.open_fds as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                "gauge",
                Float(r.start_time_seconds),
            ),
            (
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                "counter",
                Float(r.cpu_seconds),
            ),
        ];
        for (name, help, kind, value) in families {
            out.header(name, help, kind);
            out.process_sample(name, &[], value);
        }
    }

    let name = "ringproxy_max_conns";
    out.header(
        name,
        "Most client connections the process takes at once.",
        "gauge",
    );
    out.process_sample(name, &[], process.max_conns);

    let name = "ringproxy_reloads_total";
    out.header(
        name,
        "Reloads of the configuration file (SIGHUP), by result.",
        "counter",
    );
    out.process_sample(name, &[("result", "success")], process.reloads.succeeded);
    out.process_sample(name, &[("result", "failure")], process.reloads.failed);
    let name = "ringproxy_last_reload_timestamp_seconds";
    out.header(
        name,
        "When the configuration in use was loaded (start or last successful reload), Unix time.",
        "gauge",
    );
    let loaded = process.reloads.last_success.duration_since(UNIX_EPOCH);
    let loaded = loaded.map_or(0.0, |t| t.as_secs_f64());
    out.process_sample(name, &[], Float(loaded));

    let total = |pick: fn(&Snapshot) -> &Histogram| {
        let mut sum = *snapshots.first().map_or(&Histogram::new(&[]), pick);
        for s in snapshots.iter().skip(1) {
            sum.add(pick(s));
        }
        sum
    };
    let name = "ringproxy_upstream_connect_seconds";
    out.header(
        name,
        "Time from accepting a client to its upstream connect (the access log's connect).",
        "histogram",
    );
    out.histogram(name, None, &total(|s| &s.observed.connect));
    let name = "ringproxy_connection_duration_seconds";
    out.header(
        name,
        "Time from accepting a client to closing it.",
        "histogram",
    );
    out.histogram(name, None, &total(|s| &s.observed.duration));

    let mut checks = CheckCounts::default();
    for s in snapshots {
        checks.passed += s.checks.passed;
        checks.failed += s.checks.failed;
        checks.timed_out += s.checks.timed_out;
    }
    let name = "ringproxy_health_checks_total";
    out.header(name, "Active health check probes, by result.", "counter");
    out.process_sample(name, &[("result", "pass")], checks.passed);
    out.process_sample(name, &[("result", "fail")], checks.failed);
    out.process_sample(name, &[("result", "timeout")], checks.timed_out);
}
