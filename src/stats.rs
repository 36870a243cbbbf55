//! Counters the loop keeps for metrics and the access log: plain integers bumped on the data
//! path (no allocation, no locking), read when `/metrics` is scraped.
//!
//! Invariant: counters only grow; gauges (`active`, ring occupancy) are recomputed from the
//! loop's state when a snapshot is taken.

use crate::error::CloseReason;
use std::time::Duration;

/// The cost of moving bytes, per loop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoStats {
    /// `read`/`readv` calls that returned data.
    pub reads: u64,
    /// Bytes those reads returned.
    pub read_bytes: u64,
    /// `write`/`writev` calls that accepted data.
    pub writes: u64,
    /// Bytes those writes accepted.
    pub write_bytes: u64,
    /// Reads that returned `WouldBlock`.
    pub read_would_block: u64,
    /// Writes that returned `WouldBlock`.
    pub write_would_block: u64,
    /// Writes that accepted only part of what was offered.
    pub partial_writes: u64,
    /// Times a direction had to wait for ring storage (`max_buffered` used up).
    pub budget_waits: u64,
    /// Time directions waited for ring storage, summed.
    pub budget_waited: std::time::Duration,
    /// Access-log lines dropped because the log's writer could not keep up.
    pub access_log_dropped: u64,
    /// Process-log lines dropped because stderr did not keep up (process-wide; reported by
    /// worker 0).
    pub log_dropped: u64,
}

/// Counters of one upstream server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connect attempts started.
    pub connects: u64,
    /// Attempts that failed (refused, error).
    pub connect_failures: u64,
    /// Attempts that timed out.
    pub connect_timeouts: u64,
    /// Bytes delivered to this server.
    pub bytes_to_upstream: u64,
    /// Bytes delivered from this server to clients.
    pub bytes_to_client: u64,
}

/// Counters of one route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteStats {
    /// Clients accepted.
    pub accepted: u64,
    /// Pairs ended, by reason.
    pub closed: [u64; CloseReason::ALL.len()],
    /// Connect attempts after the first for a client.
    pub retries: u64,
    /// Times accepting paused after an accept error.
    pub accept_pauses: u64,
    /// Clients refused because the per-client table was full of live clients.
    pub client_table_full: u64,
    /// Directions that wanted a kernel pipe and used a ring for the rest of the connection.
    pub pipe_fallbacks: u64,
    /// Time directions spent stalled by backpressure (ring full), client → upstream.
    pub stalled_to_upstream: Duration,
    /// Same, upstream → client.
    pub stalled_to_client: Duration,
}

/// One server as `/metrics` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSnapshot {
    /// The server's address.
    pub addr: crate::endpoint::Endpoint,
    /// Pairs connecting or connected to it now.
    pub active: u64,
    /// 1 when it may receive new clients (not down, not failed by checks or passive health).
    pub up: bool,
    /// Its counters.
    pub stats: ServerStats,
}

/// One route as `/metrics` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSnapshot {
    /// The route's name.
    pub name: String,
    /// Pairs open now.
    pub active: u64,
    /// Its counters.
    pub stats: RouteStats,
    /// Its servers, in configuration order.
    pub servers: Vec<ServerSnapshot>,
}

/// Upper bounds of the ring-occupancy histogram buckets (fill ratio of each ring holding
/// storage), the last bucket being `+Inf`.
pub const OCCUPANCY_BOUNDS: [f64; 5] = [0.25, 0.5, 0.75, 0.99, 1.0];

/// Ring buffers of one loop at the moment of a scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RingSnapshot {
    /// Bytes of ring storage attached to pairs.
    pub bytes_in_use: u64,
    /// Bytes of ring storage kept in the pool for reuse.
    pub bytes_free: u64,
    /// Kernel pipes serving as a direction's buffer now.
    pub pipes_in_use: u64,
    /// Empty pipes kept for reuse.
    pub pipes_free: u64,
    /// Non-cumulative counts of rings holding storage by fill ratio: bucket `i` counts rings
    /// with ratio ≤ `OCCUPANCY_BOUNDS[i]` and above the previous bound.
    pub occupancy: [u64; OCCUPANCY_BOUNDS.len()],
    /// Sum of all fill ratios (for the histogram's `_sum`).
    pub occupancy_sum: f64,
    /// Bytes of ring storage held against the budget (attached and pooled).
    pub budget_used: u64,
    /// The budget (`max_buffered` divided between workers), if one is set.
    pub budget_limit: Option<u64>,
}

/// Everything one worker loop reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Worker number (0 without `--workers`).
    pub worker: usize,
    /// Its routes.
    pub routes: Vec<RouteSnapshot>,
    /// Its data-path costs.
    pub io: IoStats,
    /// Its rings.
    pub rings: RingSnapshot,
}
