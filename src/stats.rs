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
    pub addr: crate::endpoint::Endpoint,
    /// Pairs connecting or connected to it now.
    pub active: u64,
    /// Healthy: not failed by active checks or marked by passive health, whatever its
    /// administrative state (which is `admin`).
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
    /// Its active health check results so far (kept by its checks).
    pub checks: CheckCounts,
}

/// A server's administrative state, apart from its health: `Down` is `down = true` in the
/// configuration (the admin API cannot change it); `Drain` (no new clients, checks go on) and
/// `Maint` (no new clients, no checks) are set at run time through the admin API (HAProxy's
/// `set server … state`); `Ready` otherwise. Open connections continue in every state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
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

    /// A state the operator may set (`ready`, `drain`, `maint`, exactly); `down` is the
    /// configuration's and is not one.
    pub fn settable(word: &str) -> Option<AdminState> {
        match word {
            "ready" => Some(AdminState::Ready),
            "drain" => Some(AdminState::Drain),
            "maint" => Some(AdminState::Maint),
            _ => None,
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
/// a second, connect times, connection lifetimes). Never reset, so every
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
}

impl Default for Observed {
    fn default() -> Observed {
        Observed {
            occupancy: Histogram::new(OCCUPANCY_BOUNDS),
            connect: Histogram::new(CONNECT_BOUNDS),
            duration: Histogram::new(DURATION_BOUNDS),
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

/// A server's health as the admin API reports it, ordered from best to worst so that the
/// worst of several workers' views wins when they are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerHealth {
    /// Usable as far as health goes (checks pass or are off; no passive mark).
    Up,
    /// Not usable for now for a reason other than failed checks: passive health marked it
    /// after failed connects, or it is `down = true` and never checked.
    Unavailable,
    /// Failed its active checks (`health_fall` in a row).
    Down,
}

impl ServerHealth {
    /// `up`, `unavailable` or `down`.
    pub fn name(self) -> &'static str {
        match self {
            ServerHealth::Up => "up",
            ServerHealth::Unavailable => "unavailable",
            ServerHealth::Down => "down",
        }
    }
}

/// One server of a route in force, as one worker sees it (the admin's `/servers`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerView {
    /// The route's name.
    pub route: String,
    /// The server's address (or Unix socket).
    pub server: crate::endpoint::Endpoint,
    /// Its administrative state.
    pub state: AdminState,
    /// Its health.
    pub health: ServerHealth,
    /// Why it has that health (the last check, the passive mark), if anything is known.
    pub why: Option<String>,
    /// Pairs connecting or connected to it now.
    pub active: u64,
    /// Connect attempts sent to it so far.
    pub total: u64,
    /// How long ago its last active check ended (only the checking worker knows).
    pub last_check: Option<Duration>,
}

/// Bits of a connection id below the worker number: ids are `worker << CONN_ID_BITS | n`,
/// `n` counting each worker's pairs from 0, so an id is unique in the process and stays
/// below 2^53 (exact in a JSON reader's double) for up to 8192 workers.
pub const CONN_ID_BITS: u32 = 40;

/// The process-wide id of the pair numbered `pair` in `worker`.
pub fn conn_id(worker: usize, pair: u64) -> u64 {
    (worker as u64) << CONN_ID_BITS | (pair & ((1 << CONN_ID_BITS) - 1))
}

/// The worker and its pair number of a process-wide connection id.
pub fn split_conn_id(id: u64) -> (usize, u64) {
    (
        (id >> CONN_ID_BITS) as usize,
        id & ((1 << CONN_ID_BITS) - 1),
    )
}

/// One open connection, live (the admin's `/connections`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnView {
    /// Unique in the process ([`conn_id`]).
    pub id: u64,
    /// The worker whose loop carries it.
    pub worker: usize,
    /// Its route's name.
    pub route: String,
    /// The client's address (from the PROXY header when one was read).
    pub client: crate::endpoint::Client,
    /// The server it is connected or connecting to, once chosen.
    pub upstream: Option<crate::endpoint::Endpoint>,
    /// Time since accept.
    pub age: Duration,
    /// `preread`, `connecting` or `streaming`.
    pub phase: &'static str,
    /// Bytes delivered to the upstream so far.
    pub up: u64,
    /// Bytes delivered to the client so far.
    pub down: u64,
    /// Bytes in the client → upstream buffer now.
    pub fill_up: usize,
    /// Bytes in the upstream → client buffer now.
    pub fill_down: usize,
    /// Most bytes the client → upstream buffer held at once.
    pub peak_up: usize,
    /// Most bytes the upstream → client buffer held at once.
    pub peak_down: usize,
    /// Time the client → upstream direction spent stalled (buffer full), so far.
    pub stall_up: Duration,
    /// Same, upstream → client.
    pub stall_down: Duration,
    /// Bytes each direction's buffer holds at most (the route's `buffer_size`, or its pipe
    /// size when that is larger and the engine splices).
    pub buffer_size: usize,
}

impl ConnView {
    /// Bytes buffered now in both directions: what "busiest" ranks by.
    pub fn buffered(&self) -> usize {
        self.fill_up + self.fill_down
    }
}

/// Which open connections the admin asks for; every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnFilter {
    /// Only this route's.
    pub route: Option<String>,
    /// Only those whose upstream is this server.
    pub server: Option<crate::endpoint::Endpoint>,
    /// Only those open at least this long (inclusive).
    pub older: Option<Duration>,
    /// Only the this many with the most bytes buffered now (the status page).
    pub busiest: Option<usize>,
    /// Only those whose id is greater (a page after the last id of the one before).
    pub after: Option<u64>,
    /// At most this many, lowest ids first (a page).
    pub limit: Option<usize>,
}
