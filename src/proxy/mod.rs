//! The event loop: one `mio::Poll` and the parts it drives — the listeners, the routes with
//! their servers, the slab of pairs, the timers, the health checks, and the operator's side
//! (commands, access log, metrics).
//!
//! The loop orchestrates and the pair decides: each turn polls (the timeout comes from the
//! nearest deadline), hands every event to its part — a pair's to [`Pair::on_ready`] —
//! fires due timers, then accepts while below `max_conns` (after the batch, so a freed slab
//! key never receives a stale event from the same batch). What a pair asks for comes back
//! as actions, which `Proxy::act` carries out in order. Every socket is registered
//! once for readable|writable. The parts: `listeners.rs`, `routes.rs` (routes, servers,
//! reload), `pairs.rs` (carrying out what pairs ask for), `health.rs` (active checks),
//! `refusals.rs` (refusal bursts in the log), `metrics_http.rs` and `snapshot.rs` (`/metrics`),
//! `control.rs` (commands from other threads, drain, reload), `admin.rs` (the admin API's
//! questions and changes, answered for this loop), `report.rs` (what a loop
//! reports for the process to add up), `setup.rs` (binding a loop).

mod admin;
mod board;
mod control;
mod health;
mod listeners;
mod metrics_http;
mod pairs;
mod refusals;
mod report;
mod routes;
mod saturation;
mod setup;
mod snapshot;
mod socket_file;

pub use control::{Command, Handle, Missing, ServerRef};
pub use report::{Draining, Ended, ReloadReply, Reloaded, Serving, combine};

use crate::access_log::AccessLog;
use crate::conn::Conn;
use crate::engine::Engine;
use crate::error::CloseReason;
use crate::heartbeat::Heartbeats;
use crate::pair::{Actions, Pair, PairTimer, Spares};
use crate::settings::Global;
use crate::stats::{IoStats, Observed, ProcessSnapshot, ReloadCounts, Snapshot};
use crate::timers::Timers;
use crate::token::{self, Target};
use control::Control;
use health::Health;
use listeners::Listeners;
use log::{info, warn};
use metrics_http::MetricsServer;
use mio::event::Event;
use mio::{Events, Poll};
use refusals::Refusals;
use routes::Routes;
use slab::Slab;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long accepting pauses after an accept error such as `EMFILE`.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Events fetched per poll.
const EVENTS_CAPACITY: usize = 1024;
/// How often the access log is flushed and other workers publish their metrics.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// A deadline the loop acts on; stale ones are recognised when they fire (the pair's `id`
/// and the pair itself, the probe's `seq`, the route's retirement). Indexes are `u32` (slab
/// keys stay below `max_conns`, at most 2^24) so an entry of the heap takes 32 bytes: every
/// open connection has one or two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A wake-up pair `id` at `key` asked for.
    Pair { key: u32, timer: PairTimer, id: u64 },
    /// Accepting may resume after an accept error.
    AcceptResume,
    /// Time to check `server` of `route`, if it still carries the check's `tag`.
    Check { route: u32, server: u32, tag: u32 },
    /// Health-check probe `seq` at `probe` must have finished.
    CheckTimeout { probe: u32, seq: u64 },
    /// Passive health's unavailability period of `server` in `route` may be over.
    Recovered { route: u32, server: u32 },
    /// Flush the access log, publish metrics for other workers.
    Housekeeping,
    /// A graceful stop's time is up: cut what is still open.
    DrainDeadline,
    /// Metrics connection `id` at `key` has had long enough.
    MetricsTimeout { key: u32, id: u64 },
}

impl Timer {
    /// A wake-up for pair `id` at slab key `key`.
    fn pair(key: usize, id: u64, timer: PairTimer) -> Timer {
        let key = key as u32;
        Timer::Pair { key, timer, id }
    }

    /// The next check of `server` of `route`, tagged `tag`.
    fn check(route: usize, server: usize, tag: u32) -> Timer {
        let (route, server) = (route as u32, server as u32);
        Timer::Check { route, server, tag }
    }

    /// The end of passive health's unavailability of `server` of `route`.
    fn recovered(route: usize, server: usize) -> Timer {
        let (route, server) = (route as u32, server as u32);
        Timer::Recovered { route, server }
    }
}

/// Where the loop is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Running,
    /// Listeners are closed; open pairs may finish until the deadline.
    Draining,
    Stopped,
}

/// When new clients may be accepted.
#[derive(Debug, Default)]
struct AcceptGate {
    /// Most pairs at once in this loop.
    max_conns: usize,
    /// Most pairs at once in the process (what the operator set).
    process_max_conns: usize,
    /// Accepting is paused until the `AcceptResume` timer fires.
    paused: bool,
    /// Failed accepts since the last successful one: a burst is logged once, when it starts.
    failures: u64,
    /// An upstream socket could not be created for lack of descriptors (logged once).
    short_of_sockets: bool,
    /// Whether accepts wait for `max_conns` (logged when it starts, lasts and ends).
    saturation: saturation::Saturation,
}

/// What the workers of one process share, off the data path: the latest metrics snapshot
/// of each, for worker 0 to serve, the health board worker 0 posts check results to, each
/// loop's heartbeat (for the watchdog), and how the loops that stopped ended.
pub struct Shared {
    snapshots: Mutex<Vec<Option<Snapshot>>>,
    board: Arc<board::HealthBoard>,
    heartbeats: Arc<Heartbeats>,
    ended: Mutex<Ended>,
    reloads: Mutex<ReloadCounts>,
}

impl Shared {
    /// For `workers` workers.
    pub fn new(workers: usize) -> Arc<Shared> {
        Arc::new(Shared {
            snapshots: Mutex::new(vec![None; workers]),
            board: Arc::default(),
            heartbeats: Arc::new(Heartbeats::new(workers, Instant::now())),
            ended: Mutex::default(),
            reloads: Mutex::new(ReloadCounts::new(std::time::SystemTime::now())),
        })
    }

    /// Counts a reload of the configuration file that succeeded (`ok`) or failed.
    pub fn record_reload(&self, ok: bool) {
        if let Ok(mut reloads) = self.reloads.lock() {
            reloads.record(ok, std::time::SystemTime::now());
        }
    }

    /// What `/metrics` reports for the whole process now, with the process's `max_conns`.
    fn process(&self, max_conns: usize) -> ProcessSnapshot {
        let reloads = self.reloads.lock().map_or_else(|e| *e.into_inner(), |r| *r);
        ProcessSnapshot {
            resources: crate::process::read(),
            max_conns: max_conns as u64,
            reloads,
        }
    }

    /// Every loop's heartbeat.
    pub fn heartbeats(&self) -> &Arc<Heartbeats> {
        &self.heartbeats
    }

    /// How the loops that have stopped so far ended, added up.
    pub fn ended(&self) -> Ended {
        self.ended.lock().map_or_else(|e| *e.into_inner(), |e| *e)
    }

    fn record_end(&self, ended: Ended) {
        if let Ok(mut total) = self.ended.lock() {
            total.add(ended);
        }
    }
}

/// A running proxy loop.
pub struct Proxy {
    poll: Poll,
    worker: usize,
    global: Global,
    routes: Routes,
    listeners: Listeners,
    health: Health,
    pairs: Slab<Pair<Conn, Engine>>,
    /// What the pair being handled asked for; drained by `Proxy::act`.
    actions: Actions<Conn>,
    /// Attempt records kept for new pairs.
    spares: Spares,
    timers: Timers<Timer>,
    io: IoStats,
    /// Histograms and check results over the loop's life.
    observed: Observed,
    gate: AcceptGate,
    fd_limit: u64,
    next_id: u64,
    control: Arc<Control>,
    state: RunState,
    /// Pairs (key, id) that yielded with work left; pumped again next turn.
    ready: Vec<(usize, u64)>,
    /// Pairs (key, id, since) waiting for buffer storage, in arrival order.
    starved: VecDeque<(usize, u64, Instant)>,
    access_log: Option<AccessLog>,
    refusals: Refusals,
    metrics: Option<MetricsServer>,
    shared: Arc<Shared>,
    /// The health board version this worker applied last (workers other than 0).
    board_seen: u64,
    /// How this loop's run is ending, for the process to add up.
    ended: Ended,
}

impl Proxy {
    /// The first listen address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs()[0]
    }

    /// Every listen address, in route order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.addrs()
    }

    /// The address `/metrics` is served on, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }

    /// What this loop serves now: routes in force, listen addresses, open connections.
    pub fn serving(&self) -> Serving {
        Serving {
            routes: self.routes.iter().filter(|r| !r.retired).count(),
            listeners: self.listeners.len(),
            open: self.pairs.len(),
        }
    }

    /// What this loop shares with the other workers of its process.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// How many loops share the process (from the configuration it started with).
    fn workers(&self) -> usize {
        self.global.workers.max(1)
    }

    /// A handle that sends commands (stop, drain, reload, reopen the log) from any thread.
    pub fn handle(&self) -> Handle {
        Handle::new(Arc::clone(&self.control))
    }

    /// Runs until stopped or drained; then closes whatever is still open and adds how the
    /// run ended to [`Shared::ended`].
    pub fn run(mut self) -> io::Result<()> {
        let result = self.turn_until_stopped();
        self.shared.heartbeats.retire(self.worker);
        result
    }

    fn turn_until_stopped(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        let heartbeats = Arc::clone(&self.shared.heartbeats);
        while self.state != RunState::Stopped {
            let timeout = if self.ready.is_empty() {
                heartbeats.bounded(self.timers.poll_timeout(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            heartbeats.beat(self.worker, now);
            for (key, id) in std::mem::take(&mut self.ready) {
                if let Some(pair) = self.pairs.get_mut(key).filter(|p| p.id() == id) {
                    let route = &mut self.routes[pair.route()];
                    pair.pump(now, &mut route.buffers, &mut self.io, &mut self.actions);
                    self.act(key, now);
                }
            }
            for event in events.iter() {
                self.dispatch(event, now);
            }
            self.fire_timers(now);
            self.apply_health_board();
            self.feed_starved(now);
            self.accept(now);
            self.compact_timers();
            if self.state == RunState::Draining && self.pairs.is_empty() {
                self.state = RunState::Stopped;
            }
        }
        let now = Instant::now();
        self.ended.closed_at_stop = self.pairs.len();
        self.close_all(CloseReason::Shutdown, now);
        if let Some(log) = self.access_log.as_mut()
            && !log.finish(Duration::from_secs(2))
        {
            warn!("the access log could not be written out within 2 s of stopping");
        }
        self.shared.record_end(self.ended);
        Ok(())
    }

    fn dispatch(&mut self, event: &Event, now: Instant) {
        match token::decode(event.token()) {
            Target::Pair { key, side } => self.pair_event(key, side, event, now),
            Target::Listener(key) => self.listeners.mark_pending(key),
            Target::Probe(key) => self
                .health
                .event(&mut self.routes, key, &mut self.timers, now),
            Target::MetricsListener => {
                if let Some(metrics) = self.metrics.as_mut() {
                    metrics.accept(self.poll.registry(), &mut self.timers, now);
                }
            }
            Target::MetricsConn(key) => self.metrics_event(key, now),
            Target::Control => self.run_commands(now),
        }
    }
    fn fire_timers(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::Pair { key, id, timer } => {
                    let key = key as usize;
                    if let Some(pair) = self.pairs.get_mut(key).filter(|p| p.id() == id) {
                        pair.on_timer(timer, now, &mut self.actions);
                        self.act(key, now);
                    }
                }
                Timer::AcceptResume => self.gate.paused = false,
                Timer::Check { route, server, tag } => {
                    let registry = self.poll.registry();
                    let at = (route as usize, server as usize, tag);
                    self.health
                        .start(&mut self.routes, at, registry, &mut self.timers, now);
                }
                Timer::CheckTimeout { probe, seq } => {
                    let at = (probe as usize, seq);
                    self.health
                        .time_out(&mut self.routes, at, &mut self.timers, now);
                }
                Timer::Recovered { route, server } => {
                    self.routes[route as usize].recovered(server as usize, now)
                }
                Timer::Housekeeping => self.housekeeping(now),
                Timer::DrainDeadline => self.drain_deadline(now),
                Timer::MetricsTimeout { key, id } => {
                    if let Some(metrics) = self.metrics.as_mut() {
                        metrics.time_out(key as usize, id);
                    }
                }
            }
        }
    }

    /// In a worker that does not run the checks: takes the checking worker's results when
    /// they changed (one atomic load a turn otherwise).
    fn apply_health_board(&mut self) {
        let board = &self.shared.board;
        if self.worker != 0 && board.version() != self.board_seen {
            self.board_seen = board.version();
            board.apply(&mut self.routes);
        }
    }

    /// True in the worker that runs the active health checks (one per process).
    fn checks_here(&self) -> bool {
        self.worker == 0
    }

    /// Wakes the pairs waiting for buffer storage, first come first served, while their
    /// route's pool can give it (a waiter that cannot be fed yet keeps the others waiting).
    fn feed_starved(&mut self, now: Instant) {
        while let Some(&(key, id, since)) = self.starved.front() {
            let Some(pair) = self.pairs.get_mut(key).filter(|p| p.id() == id) else {
                self.starved.pop_front();
                continue;
            };
            if !<Engine as crate::buffer::Buffer>::storage_available(
                &self.routes[pair.route()].buffers,
            ) {
                return;
            }
            self.starved.pop_front();
            self.io.budget_waited += now.saturating_duration_since(since);
            pair.fed();
            self.ready.push((key, id));
        }
    }

    /// Drops timer entries of pairs and metrics connections that are gone once they outnumber
    /// the live ones: each pair has at most an idle and a connect entry live, so the heap stays
    /// within a constant factor of the open pairs (amortised O(1) per entry).
    fn compact_timers(&mut self) {
        if self.timers.len() <= 4 * self.pairs.len() + 1024 {
            return;
        }
        let pairs = &self.pairs;
        let metrics = self.metrics.as_ref();
        self.timers.retain(|timer| match *timer {
            Timer::Pair { key, id, .. } => pairs.get(key as usize).is_some_and(|p| p.id() == id),
            Timer::MetricsTimeout { key, id } => {
                metrics.is_some_and(|m| m.has_conn(key as usize, id))
            }
            _ => true,
        });
    }

    /// This loop's snapshot at `now`.
    fn snapshot(&self, now: Instant) -> Snapshot {
        let counters = snapshot::LoopCounters {
            worker: self.worker,
            io: &self.io,
            observed: &self.observed,
            checks: self.health.checks(),
            access_log_dropped: self.access_log.as_ref().map_or(0, AccessLog::dropped),
        };
        snapshot::snapshot(counters, &self.routes, &self.pairs, now)
    }

    /// Answers a metrics connection, rendering this worker's snapshot and the others'.
    fn metrics_event(&mut self, key: usize, now: Instant) {
        // Out of `self` while it runs, so that rendering can read the rest of the loop.
        let Some(mut metrics) = self.metrics.take() else {
            return;
        };
        metrics.event(key, || {
            let mut all = vec![self.snapshot(now)];
            if let Ok(shared) = self.shared.snapshots.lock() {
                let others = shared.iter().enumerate().filter(|(w, _)| *w != self.worker);
                all.extend(others.filter_map(|(_, s)| s.clone()));
            }
            let process = self.shared.process(self.gate.process_max_conns);
            let mut text = crate::metrics::render(&all, &process);
            if let Some(dns) = crate::discovery::published()
                && let Ok(names) = dns.lock()
            {
                crate::metrics::render_dns(&mut text, &names);
            }
            text
        });
        self.metrics = Some(metrics);
    }

    /// Flushes the access log, samples buffer occupancy and, with several workers,
    /// publishes this worker's metrics.
    fn housekeeping(&mut self, now: Instant) {
        self.refusals.tick(now);
        if let Some(log) = self.access_log.as_mut() {
            log.flush();
        }
        snapshot::sample_occupancy(&self.pairs, &mut self.observed.occupancy);
        if self.workers() > 1 {
            let snapshot = self.snapshot(now);
            if let Ok(mut shared) = self.shared.snapshots.lock()
                && let Some(slot) = shared.get_mut(self.worker)
            {
                *slot = Some(snapshot);
            }
        }
        self.timers
            .schedule(now + HOUSEKEEPING, Timer::Housekeeping);
    }

    /// Accepts waiting clients while below `max_conns`, running and not paused.
    fn accept(&mut self, now: Instant) {
        self.note_saturation(now);
        while self.state == RunState::Running
            && !self.gate.paused
            && self.pairs.len() < self.gate.max_conns
        {
            let Some(listener) = self.listeners.next_pending() else {
                return;
            };
            let route = listener.route;
            match listener.socket.accept() {
                Ok((stream, client)) => {
                    if self.gate.failures > 0 {
                        info!(
                            "accepting again on {} after {} failed accept(s)",
                            listener.addr, self.gate.failures
                        );
                        self.gate.failures = 0;
                    }
                    let addr = listener.addr.ip();
                    self.open(route, addr, stream, client, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => listener.pending = false,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    if self.gate.failures == 0 {
                        warn!(
                            "accept on {} failed: {e}; pausing accepts for {} and \
                             retrying until it works ({} connections open)",
                            listener.addr,
                            crate::display::Secs(ACCEPT_PAUSE),
                            self.pairs.len()
                        );
                    }
                    self.routes[route].stats.accept_pauses += 1;
                    self.gate.failures += 1;
                    self.pause_accepts(now);
                }
            }
        }
    }

    /// Logs when clients start, go on and stop waiting for `max_conns`.
    fn note_saturation(&mut self, now: Instant) {
        use saturation::Note;
        let max = self.gate.max_conns;
        let note = if self.pairs.len() < max {
            self.gate.saturation.below(now)
        } else if self.state == RunState::Running && self.listeners.next_pending().is_some() {
            self.gate.saturation.full(now)
        } else {
            None
        };
        match note {
            Some(Note::Started) => warn!(
                "max-conns {max} reached: new clients wait in the listen backlog (per worker)"
            ),
            Some(Note::Lasting(d)) => warn!(
                "still at max-conns {max} after {}: new clients wait",
                crate::display::Secs(d)
            ),
            Some(Note::Ended(d)) => warn!(
                "below max-conns {max} again after {} at it",
                crate::display::Secs(d)
            ),
            None => {}
        }
    }

    /// Stops accepting for [`ACCEPT_PAUSE`] (a pause already running is kept).
    fn pause_accepts(&mut self, now: Instant) {
        if !self.gate.paused {
            self.gate.paused = true;
            self.timers
                .schedule(now + ACCEPT_PAUSE, Timer::AcceptResume);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::Timer;

    #[test]
    fn a_timer_entry_stays_small() {
        // Every open connection has one or two heap entries of (u64 deadline, Timer).
        assert!(
            std::mem::size_of::<Timer>() <= 24,
            "{}",
            std::mem::size_of::<Timer>()
        );
    }
}
