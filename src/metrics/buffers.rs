//! The buffer families: ring and pipe storage, dropped log lines, the `max_buffered` budget
//! and ring occupancy.

use super::text::{Float, Out};
use crate::stats::{OCCUPANCY_BOUNDS, Snapshot};

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
        "Fill ratio of the ring buffers holding storage, at scrape time.",
        "histogram",
    );
    for s in snapshots {
        let mut cumulative = 0u64;
        for (bound, n) in OCCUPANCY_BOUNDS.iter().zip(s.rings.occupancy) {
            cumulative = cumulative.saturating_add(n);
            let le = Float(*bound).to_string();
            out.sample(
                "ringproxy_ring_occupancy_ratio_bucket",
                s.worker,
                &[("le", &le)],
                cumulative,
            );
        }
        out.sample(
            "ringproxy_ring_occupancy_ratio_bucket",
            s.worker,
            &[("le", "+Inf")],
            cumulative,
        );
        out.sample(
            "ringproxy_ring_occupancy_ratio_sum",
            s.worker,
            &[],
            Float(s.rings.occupancy_sum),
        );
        out.sample(
            "ringproxy_ring_occupancy_ratio_count",
            s.worker,
            &[],
            cumulative,
        );
    }
}
