//! The buffer families: ring and pipe storage, dropped log lines, the `max_buffered` budget
//! and ring occupancy.

use super::text::{Float, Out};
use crate::stats::Snapshot;

/// The ring storage and occupancy families.
pub(super) fn ring_families(out: &mut Out, snapshots: &[Snapshot]) {
    let name = "ringproxy_ring_bytes";
    out.header(
        name,
        "Ring buffer storage attached to connections (in_use) or pooled for reuse (free).",
        "gauge",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[("state", "in_use")], s.rings.bytes_in_use);
        out.sample(name, s.worker, &[("state", "free")], s.rings.bytes_free);
    }
    let name = "ringproxy_pipes";
    out.header(
        name,
        "Kernel pipes serving as a direction's buffer (in_use) or kept for reuse (free).",
        "gauge",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[("state", "in_use")], s.rings.pipes_in_use);
        out.sample(name, s.worker, &[("state", "free")], s.rings.pipes_free);
    }

    let name = "ringproxy_access_log_dropped_total";
    out.header(
        name,
        "Access-log lines dropped because the log's file or reader did not keep up.",
        "counter",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[], s.io.access_log_dropped);
    }
    let name = "ringproxy_log_dropped_total";
    out.header(
        name,
        "Process-log lines dropped because stderr did not keep up.",
        "counter",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[], s.io.log_dropped);
    }

    let name = "ringproxy_budget_bytes";
    out.header(
        name,
        "Ring storage held against max_buffered (in_use) and the budget (limit, when set).",
        "gauge",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[("state", "in_use")], s.rings.budget_used);
        if let Some(limit) = s.rings.budget_limit {
            out.sample(name, s.worker, &[("state", "limit")], limit);
        }
    }
    let name = "ringproxy_budget_waits_total";
    out.header(
        name,
        "Times a direction waited for ring storage (max_buffered used up).",
        "counter",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[], s.io.budget_waits);
    }
    let name = "ringproxy_budget_wait_seconds_total";
    out.header(
        name,
        "Time directions waited for ring storage, summed.",
        "counter",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[], Float(s.io.budget_waited.as_secs_f64()));
    }

    let name = "ringproxy_ring_occupancy_ratio";
    out.header(
        name,
        "Fill ratio of every ring or pipe holding storage, sampled once a second.",
        "histogram",
    );
    for s in snapshots {
        out.histogram(name, Some(s.worker), &s.observed.occupancy);
    }
}
