//! The event loop: one `mio::Poll`, the routes (listeners and pools), the slab of pairs, the
//! timers, and the operator's side (commands, access log, metrics).
//!
//! `proxy.rs` orchestrates and `pair.rs` decides. Each turn: poll (the timeout comes from the
//! nearest deadline), dispatch events, fire due timers, then accept while below `max_conns`
//! — accepts run after the batch so a freed slab key never receives a stale event from the
//! same batch. Every socket is registered once for readable|writable. The loop's parts live
//! in `proxy/`: `upstreams.rs` (connects, retries, health), `routes.rs` (routes and reload),
//! `control.rs` (commands from other threads, drain), `serve_metrics.rs` (`/metrics`),
//! `setup.rs` (binding a loop, applying process-wide settings).

mod control;
mod routes;
mod serve_metrics;
mod setup;
mod upstreams;

pub use control::{Command, Handle};

use crate::access_log::{AccessLog, Record};
use crate::config::Global;
use crate::connect::{self, ConnectCheck};
use crate::error::CloseReason;
use crate::pair::{Pair, Phase, Side, Verdict};
use crate::stats::{IoStats, Snapshot};
use crate::timers::Timers;
use crate::token::{self, Target};
use crate::upstream::UpstreamId;
use control::Control;
use log::{debug, error, info, warn};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll};
use routes::RouteState;
use serve_metrics::MetricsServer;
use slab::Slab;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How long accepting pauses after an accept error such as `EMFILE`.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Events fetched per poll.
const EVENTS_CAPACITY: usize = 1024;
/// How often the access log is flushed and other workers publish their metrics.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// A deadline the loop acts on; stale ones are recognised when they fire (the pair's `id`
/// and attempt, the probe's `seq`, the route's retirement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The connect attempt `attempt` of pair `id` at `key` must have finished.
    Connect { key: usize, id: u64, attempt: u32 },
    /// Pair `id` at `key` may have been idle too long.
    Idle { key: usize, id: u64 },
    /// Accepting may resume after an accept error.
    AcceptResume,
    /// Time to start an active health check of `server` in `route`.
    Check { route: usize, server: UpstreamId },
    /// Health-check probe `seq` of `server` in `route` must have finished.
    CheckTimeout {
        route: usize,
        server: UpstreamId,
        seq: u64,
    },
    /// Passive health's unavailability period of `server` in `route` may be over.
    Recovered { route: usize, server: UpstreamId },
    /// Pair `id` at `key` may try to open its upstream socket again.
    ConnectRetry { key: usize, id: u64 },
    /// Flush the access log, publish metrics for other workers.
    Housekeeping,
    /// A graceful stop's time is up: cut what is still open.
    DrainDeadline,
    /// Metrics connection `id` at `key` has had long enough.
    MetricsTimeout { key: usize, id: u64 },
}

/// A listening socket, its route, and whether it may have clients waiting.
struct Listener {
    socket: TcpListener,
    addr: SocketAddr,
    route: usize,
    /// Set by an event, cleared by `WouldBlock`: clients may wait in the backlog.
    pending: bool,
}

/// Where the loop is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Running,
    /// Listeners are closed; open pairs may finish until the deadline.
    Draining {
        open_at_start: usize,
    },
    Stopped,
}

/// The latest snapshot of every worker, for the worker that serves `/metrics`.
pub type SharedSnapshots = Arc<Mutex<Vec<Option<Snapshot>>>>;

/// A running proxy loop.
pub struct Proxy {
    poll: Poll,
    worker: usize,
    global: Global,
    routes: Vec<RouteState>,
    listeners: Slab<Listener>,
    pairs: Slab<Pair<TcpStream>>,
    timers: Timers<Timer>,
    io: IoStats,
    max_conns: usize,
    fd_limit: u64,
    next_id: u64,
    /// Accepting is paused until the `AcceptResume` timer fires.
    accept_paused: bool,
    /// Failed accepts since the last successful one: a burst is logged once, when it starts.
    accept_failures: u64,
    /// An upstream socket could not be created for lack of descriptors (logged once).
    short_of_sockets: bool,
    control: Arc<Control>,
    state: RunState,
    /// Pairs (key, id) that yielded with work left; pumped again next turn.
    ready: Vec<(usize, u64)>,
    access_log: Option<AccessLog>,
    metrics: Option<MetricsServer>,
    shared: SharedSnapshots,
    seed: u64,
}

impl Proxy {
    /// The first listen address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs()[0]
    }

    /// Every listen address, in route order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let mut listeners: Vec<(usize, usize, SocketAddr)> = self
            .listeners
            .iter()
            .map(|(key, l)| (l.route, key, l.addr))
            .collect();
        listeners.sort();
        listeners.into_iter().map(|(_, _, addr)| addr).collect()
    }

    /// The address `/metrics` is served on, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }

    /// How many loops share the process (from the configuration it started with).
    fn workers(&self) -> usize {
        self.global.workers.max(1)
    }

    /// A handle that sends commands (stop, drain, reload, reopen the log) from any thread.
    pub fn handle(&self) -> Handle {
        Handle::new(Arc::clone(&self.control))
    }

    /// Runs until stopped or drained; then closes whatever is still open.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        while self.state != RunState::Stopped {
            let timeout = if self.ready.is_empty() {
                self.timers.poll_timeout(Instant::now())
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            for (key, id) in std::mem::take(&mut self.ready) {
                if self.pairs.get(key).is_some_and(|p| p.id == id) {
                    self.pump(key, now);
                }
            }
            for event in events.iter() {
                self.dispatch(event, now);
            }
            self.fire_timers(now);
            self.accept(now);
            self.compact_timers();
            if let RunState::Draining { open_at_start } = self.state
                && self.pairs.is_empty()
            {
                info!("drained: {open_at_start} connection(s) finished, none cut");
                self.state = RunState::Stopped;
            }
        }
        let now = Instant::now();
        let keys: Vec<usize> = self.pairs.iter().map(|(key, _)| key).collect();
        let open = keys.len();
        for key in keys {
            self.close(key, CloseReason::Shutdown, now);
        }
        if let Some(log) = self.access_log.as_mut() {
            let _ = log.flush();
        }
        info!("stopped; closed {open} open connection(s)");
        Ok(())
    }

    fn dispatch(&mut self, event: &Event, now: Instant) {
        match token::decode(event.token()) {
            Target::Pair { key, side } => self.pair_event(key, side, event, now),
            Target::Listener(key) => {
                if let Some(listener) = self.listeners.get_mut(key) {
                    listener.pending = true;
                }
            }
            Target::Check { route, server } => self.probe_event(route, server, now),
            Target::MetricsListener => self.metrics_accept(now),
            Target::MetricsConn(key) => self.metrics_event(key, now),
            Target::Control => self.run_commands(now),
        }
    }

    fn pair_event(&mut self, key: usize, side: Side, event: &Event, now: Instant) {
        let Some(pair) = self.pairs.get_mut(key) else {
            return;
        };
        let end = match side {
            Side::Client => &mut pair.client,
            Side::Upstream => match pair.upstream.as_mut() {
                Some(end) => end,
                None => return,
            },
        };
        let failed = event.is_error();
        end.readable |= event.is_readable();
        end.read_closed |= event.is_read_closed() || failed;
        end.writable |= event.is_writable() || event.is_write_closed() || failed;
        if side == Side::Upstream
            && let Phase::Connecting { .. } = pair.phase
        {
            match connect::check(&end.stream) {
                ConnectCheck::Pending => return,
                ConnectCheck::Failed(e) => return self.retry(key, &e, false, now),
                ConnectCheck::Connected => {
                    pair.phase = Phase::Streaming;
                    pair.connected = Some(now);
                    end.writable = true;
                    if let Some(id) = pair.upstream_id {
                        self.routes[pair.route].pool.servers[id]
                            .passive
                            .record_success();
                    }
                }
            }
        } else if failed && let Ok(Some(e)) = end.stream.take_error() {
            debug!("{side:?} socket of {} failed: {e}", pair.client_addr);
            let reason = match side {
                Side::Client => CloseReason::ClientReset,
                Side::Upstream => CloseReason::UpstreamReset,
            };
            return self.close(key, reason, now);
        }
        self.pump(key, now);
    }

    fn pump(&mut self, key: usize, now: Instant) {
        let Some(pair) = self.pairs.get_mut(key) else {
            return;
        };
        let route = &mut self.routes[pair.route];
        match pair.pump(now, &mut route.buffers, &mut self.io) {
            Verdict::Continue => {}
            Verdict::Yield => self.ready.push((key, pair.id)),
            Verdict::Close(reason) => self.close(key, reason, now),
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::AcceptResume => self.accept_paused = false,
                Timer::Connect { key, id, attempt } => {
                    let current = self
                        .pairs
                        .get(key)
                        .is_some_and(|p| p.id == id && p.phase == Phase::Connecting { attempt });
                    if current {
                        let err = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
                        self.retry(key, &err, true, now);
                    }
                }
                Timer::Idle { key, id } => {
                    let Some(pair) = self.pairs.get(key).filter(|p| p.id == id) else {
                        continue;
                    };
                    let deadline = pair.last_active + pair.idle_timeout;
                    if deadline <= now {
                        self.close(key, CloseReason::IdleTimeout, now);
                    } else {
                        self.timers.schedule(deadline, Timer::Idle { key, id });
                    }
                }
                Timer::Check { route, server } => self.start_check(route, server, now),
                Timer::CheckTimeout { route, server, seq } => {
                    if self.routes[route].probes.time_out(server, seq) {
                        self.finish_check(route, server, false, "timed out", now);
                    }
                }
                Timer::Recovered { route, server } => self.recovered(route, server, now),
                Timer::ConnectRetry { key, id } => {
                    if self
                        .pairs
                        .get(key)
                        .is_some_and(|p| p.id == id && p.upstream.is_none())
                    {
                        self.connect_next(key, now);
                    }
                }
                Timer::Housekeeping => self.housekeeping(now),
                Timer::DrainDeadline => self.drain_deadline(now),
                Timer::MetricsTimeout { key, id } => self.metrics_timeout(key, id),
            }
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
            Timer::Connect { key, id, .. }
            | Timer::Idle { key, id }
            | Timer::ConnectRetry { key, id } => pairs.get(key).is_some_and(|p| p.id == id),
            Timer::MetricsTimeout { key, id } => metrics.is_some_and(|m| m.has_conn(key, id)),
            _ => true,
        });
    }

    /// Flushes the access log and, with several workers, publishes this worker's metrics.
    fn housekeeping(&mut self, now: Instant) {
        if let Some(log) = self.access_log.as_mut()
            && let Err(e) = log.flush()
        {
            warn!("cannot write the access log: {e}");
        }
        if self.workers() > 1 {
            let snapshot = self.snapshot(now);
            if let Ok(mut shared) = self.shared.lock()
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
        while self.state == RunState::Running
            && !self.accept_paused
            && self.pairs.len() < self.max_conns
        {
            let Some((_, listener)) = self.listeners.iter_mut().find(|(_, l)| l.pending) else {
                return;
            };
            let route = listener.route;
            match listener.socket.accept() {
                Ok((stream, addr)) => {
                    if self.accept_failures > 0 {
                        info!(
                            "accepting again on {} after {} failed accept(s)",
                            listener.addr, self.accept_failures
                        );
                        self.accept_failures = 0;
                    }
                    self.open(route, stream, addr, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => listener.pending = false,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) => {
                    if self.accept_failures == 0 {
                        warn!(
                            "accept on {} failed: {e}; pausing accepts for {ACCEPT_PAUSE:?} \
                             and retrying until it works ({} connections open)",
                            listener.addr,
                            self.pairs.len()
                        );
                    }
                    self.routes[route].stats.accept_pauses += 1;
                    self.accept_failures += 1;
                    self.pause_accepts(now);
                }
            }
        }
    }

    /// Stops accepting for [`ACCEPT_PAUSE`] (a pause already running is kept).
    fn pause_accepts(&mut self, now: Instant) {
        if !self.accept_paused {
            self.accept_paused = true;
            self.timers
                .schedule(now + ACCEPT_PAUSE, Timer::AcceptResume);
        }
    }

    /// Registers an accepted client as a new pair of `route` and starts its upstream connect.
    fn open(&mut self, route: usize, mut stream: TcpStream, addr: SocketAddr, now: Instant) {
        let _ = stream.set_nodelay(true);
        let entry = self.pairs.vacant_entry();
        let key = entry.key();
        if key > token::MAX_PAIR_KEY {
            error!("slab key {key} exceeds the token space; dropping client {addr}");
            return;
        }
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            token::pair(key, Side::Client),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!("cannot register client {addr}: {e}");
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let state = &mut self.routes[route];
        let idle = state.settings.idle_timeout;
        entry.insert(Pair::new(id, route, stream, addr, idle, now));
        state.stats.accepted += 1;
        state.active += 1;
        self.timers.schedule(now + idle, Timer::Idle { key, id });
        self.connect_next(key, now);
    }

    /// Frees pair `key` (exactly once: the slab entry is removed here and only here). After a
    /// reset, the other side is reset too, so a truncated stream never looks complete.
    fn close(&mut self, key: usize, reason: CloseReason, now: Instant) {
        let Some(pair) = self.pairs.try_remove(key) else {
            return;
        };
        let route = &mut self.routes[pair.route];
        route.active -= 1;
        route.stats.closed[reason.index()] += 1;
        route.stats.stalled_to_upstream += pair.to_upstream.stalled_until(now);
        route.stats.stalled_to_client += pair.to_client.stalled_until(now);
        let upstream = pair.upstream_id.map(|id| route.pool.addr(id));
        if let Some(id) = pair.upstream_id {
            route.release(id);
            let server = &mut route.servers[id];
            server.bytes_to_upstream += pair.to_upstream.delivered;
            server.bytes_to_client += pair.to_client.delivered;
        }
        match reason {
            CloseReason::ClientReset => {
                if let Some(upstream) = &pair.upstream {
                    connect::set_reset_on_close(&upstream.stream);
                }
            }
            CloseReason::UpstreamReset => connect::set_reset_on_close(&pair.client.stream),
            _ => {}
        }
        let duration = now.saturating_duration_since(pair.started);
        debug!(
            "closed route={} client={} upstream={} to_upstream={} to_client={} duration={:?} \
             reason={}",
            route.settings.name,
            pair.client_addr,
            upstream.map_or_else(|| "-".to_string(), |a| a.to_string()),
            pair.to_upstream.delivered,
            pair.to_client.delivered,
            duration,
            reason
        );
        if let Some(log) = self.access_log.as_mut() {
            log.write(&Record {
                end: SystemTime::now(),
                route: &route.settings.name,
                client: pair.client_addr,
                upstream,
                bytes_to_upstream: pair.to_upstream.delivered,
                bytes_to_client: pair.to_client.delivered,
                connect_time: pair
                    .connected
                    .map(|at| at.saturating_duration_since(pair.started)),
                duration,
                ended: reason,
                peak_to_upstream: pair.to_upstream.peak,
                peak_to_client: pair.to_client.peak,
                stalled_to_upstream: pair.to_upstream.stalled_until(now),
                stalled_to_client: pair.to_client.stalled_until(now),
            });
        }
    }
}
