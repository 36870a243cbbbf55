//! Counters the loop keeps for metrics and the access log: plain integers bumped on the data
//! path (no allocation, no locking), read when `/metrics` is scraped.
//!
//! Invariant: counters and histograms only grow; gauges (`active`, buffer storage) are
//! recomputed from the loop's state when a snapshot is taken.

use crate::error::CloseReason;
use crate::histogram::{CONNECT_BOUNDS, DURATION_BOUNDS, Histogram, OCCUPANCY_BOUNDS};
use std::time::{Duration, SystemTime};

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
    pub addr: std::net::SocketAddr,
    /// Pairs connecting or connected to it now.
    pub active: u64,
    /// 1 when it may receive new clients (not down, not failed by checks or passive health).
    pub up: bool,
    /// What the operator set: ready, draining, in maintenance, or `down` in the file.
    pub admin: AdminState,
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
    /// Its histograms and check results so far.
    pub observed: Observed,
}

/// A server's administrative state, apart from its health: `Down` is `down = true` in the
/// configuration; `Drain` (no new clients, checks go on) and `Maint` (no new clients, no
/// checks) are set at run time; `Ready` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminState {
    /// Takes new clients (when healthy).
    #[default]
    Ready,
    /// No new clients; open connections and checks go on.
    Drain,
    /// No new clients and no checks; open connections go on.
    Maint,
    /// `down = true` in the configuration.
    Down,
}

impl AdminState {
    /// Every state, in the order `/metrics` lists them.
    pub const ALL: [AdminState; 4] = [
        AdminState::Ready,
        AdminState::Drain,
        AdminState::Maint,
        AdminState::Down,
    ];

    /// Its name in metrics and the admin API.
    pub fn name(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
            AdminState::Down => "down",
        }
    }
}

/// Results of active health checks, counted by the loop that runs them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    /// Probes that connected.
    pub passed: u64,
    /// Probes whose connect failed or could not start.
    pub failed: u64,
    /// Probes that did not connect within `health_timeout`.
    pub timed_out: u64,
}

/// What a loop has observed over its life: cumulative histograms (buffer fill sampled once
/// a second, connect times, connection lifetimes) and check results. Never reset, so every
/// series only grows; reloads keep it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    /// Fill ratio of every ring or pipe holding storage, sampled once a second.
    pub occupancy: Histogram,
    /// Seconds from accepting a client to its upstream connect (as the access log's
    /// `connect`), per pair that connected.
    pub connect: Histogram,
    /// Seconds from accept to close, per pair.
    pub duration: Histogram,
    /// Active health check results.
    pub checks: CheckCounts,
}

impl Default for Observed {
    fn default() -> Observed {
        Observed {
            occupancy: Histogram::new(OCCUPANCY_BOUNDS),
            connect: Histogram::new(CONNECT_BOUNDS),
            duration: Histogram::new(DURATION_BOUNDS),
            checks: CheckCounts::default(),
        }
    }
}

/// Successful and failed reloads of the configuration file (SIGHUP), for the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadCounts {
    /// Reloads applied.
    pub succeeded: u64,
    /// Reloads refused (the running configuration kept).
    pub failed: u64,
    /// When the configuration in use was loaded: the start, or the last successful reload.
    pub last_success: SystemTime,
}

impl ReloadCounts {
    /// No reload yet; the configuration loaded at `start`.
    pub fn new(start: SystemTime) -> ReloadCounts {
        ReloadCounts {
            succeeded: 0,
            failed: 0,
            last_success: start,
        }
    }

    /// Counts one reload that succeeded (`ok`) or failed, at `now`.
    pub fn record(&mut self, ok: bool, now: SystemTime) {
        if ok {
            self.succeeded += 1;
            self.last_success = now;
        } else {
            self.failed += 1;
        }
    }
}

/// What `/metrics` reports once for the whole process, beside the loops' snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSnapshot {
    /// Resource use from `/proc` (none where it cannot be read).
    pub resources: Option<crate::process::Resources>,
    /// The process-wide `max_conns` (set, or derived from the descriptor limit).
    pub max_conns: u64,
    /// Reloads so far.
    pub reloads: ReloadCounts,
}
