//! What one loop reports to `/metrics`: its routes' and servers' counters, with what open
//! pairs have moved so far, and its buffers' fill, read through the buffer interface.

use super::routes::Routes;
use crate::buffer::Buffer;
use crate::histogram::Histogram;
use crate::pair::{Pair, Stream};
use crate::stats::{
    CheckCounts, IoStats, Observed, RingSnapshot, RouteSnapshot, ServerSnapshot, ServerStats,
    Snapshot,
};
use slab::Slab;
use std::time::{Duration, Instant};

/// What one loop reports besides its routes, pairs and the time.
pub(super) struct LoopCounters<'a> {
    /// The worker's number.
    pub worker: usize,
    /// Its data-path costs.
    pub io: &'a IoStats,
    /// Its histograms and check results.
    pub observed: &'a Observed,
    /// Its health check results.
    pub checks: CheckCounts,
    /// Access-log lines dropped so far.
    pub access_log_dropped: u64,
}

/// Records the fill ratio of every buffer holding storage (the loop calls this once a
/// second, so the occupancy histogram is a cumulative sample, not a scrape-time picture).
pub(super) fn sample_occupancy<S: Stream, B: Buffer>(
    pairs: &Slab<Pair<S, B>>,
    occupancy: &mut Histogram,
) {
    for (_, pair) in pairs {
        for buffer in [pair.to_upstream().buffer(), pair.to_client().buffer()] {
            if buffer.has_storage() {
                occupancy.observe(buffer.len() as f64 / buffer.capacity() as f64);
            }
        }
    }
}

/// Counters and gauges of one loop at `now`.
pub(super) fn snapshot<S: Stream, B: Buffer>(
    counters: LoopCounters<'_>,
    routes: &Routes,
    pairs: &Slab<Pair<S, B>>,
    now: Instant,
) -> Snapshot {
    let LoopCounters {
        worker,
        io,
        observed,
        checks,
        access_log_dropped,
    } = counters;
    // Counters include what open pairs have delivered so far, so long-lived connections show
    // their bytes before they close (the data path itself counts nothing here).
    let mut counters: Vec<Vec<ServerStats>> = routes
        .iter()
        .map(|r| r.pool.servers.iter().map(|s| s.stats.clone()).collect())
        .collect();
    let mut stalled: Vec<(Duration, Duration)> = routes
        .iter()
        .map(|r| (r.stats.stalled_to_upstream, r.stats.stalled_to_client))
        .collect();
    let mut rings = RingSnapshot::default();
    for (_, pair) in pairs {
        let route = pair.route();
        if let Some(id) = pair.server() {
            let server = &mut counters[route][id];
            server.bytes_to_upstream += pair.to_upstream().delivered();
            server.bytes_to_client += pair.to_client().delivered();
        }
        stalled[route].0 += pair.to_upstream().stalled_until(now);
        stalled[route].1 += pair.to_client().stalled_until(now);
        for buffer in [pair.to_upstream().buffer(), pair.to_client().buffer()] {
            if !buffer.has_storage() {
                continue;
            }
            if buffer.in_kernel() {
                rings.pipes_in_use += 1;
            } else {
                rings.bytes_in_use += buffer.capacity() as u64;
            }
        }
    }
    let routes_out = routes
        .iter()
        .zip(counters)
        .zip(stalled)
        .filter(|((r, _), _)| !r.retired || r.active > 0)
        .map(|((route, counters), (to_upstream, to_client))| {
            let mut stats = route.stats.clone();
            stats.pipe_fallbacks = route.buffers.fallbacks;
            stats.stalled_to_upstream = to_upstream;
            stats.stalled_to_client = to_client;
            RouteSnapshot {
                name: route.name.clone(),
                active: route.active as u64,
                stats,
                servers: route
                    .pool
                    .servers
                    .iter()
                    .zip(counters)
                    .filter(|(s, _)| !s.removed || s.active > 0)
                    .map(|(server, stats)| ServerSnapshot {
                        addr: server.addr.clone(),
                        active: server.active as u64,
                        up: server.is_healthy(now),
                        admin: server.admin_state(),
                        stats,
                    })
                    .collect(),
            }
        })
        .collect();
    rings.bytes_free = routes.free_buffer_bytes();
    rings.pipes_free = routes
        .iter()
        .map(|r| r.buffers.pipes.free_len() as u64)
        .sum();
    rings.budget_used = routes.shares.budget.used() as u64;
    let limit = routes.shares.budget.limit();
    rings.budget_limit = (limit != usize::MAX).then_some(limit as u64);
    Snapshot {
        worker,
        routes: routes_out,
        io: IoStats {
            access_log_dropped,
            log_dropped: if worker == 0 {
                crate::log_queue::dropped()
            } else {
                0
            },
            ..io.clone()
        },
        rings,
        observed: *observed,
        checks,
    }
}
