//! A proxied connection as a state machine: the client, its upstream, one buffer per
//! direction, and the lifecycle from accept to close.
//!
//! The pair owns its lifecycle but no clock and no poller (quinn-proto's shape): the loop
//! tells it what happened — [`Pair::start`] after accept, [`Pair::on_ready`] on a socket
//! event, [`Pair::connecting`] and friends with the outcome of a [`Action::Connect`] it asked
//! for, [`Pair::on_timer`] when a wake-up it asked for is due — always with `now`, and carries
//! out the [`Action`]s each call pushes, in order: connect to a server, give up an attempt,
//! wake me at an instant, pump me again, close with a reason. Sockets are anything
//! [`Stream`], so the whole lifecycle is unit-tested with scripted fakes and a virtual clock.
//!
//! Phases: [`Phase::Preread`] (accepted; nothing needs to be read before choosing an upstream
//! yet — the place for a PROXY header or a TLS ClientHello), [`Phase::Connecting`] (client
//! bytes wait in the buffer towards the upstream while attempts run, within `tries`,
//! `tries_timeout` and `connect_timeout`), [`Phase::Streaming`]. Invariants: at most one
//! attempt is in flight, and it has an upstream socket and a server; a server is never tried
//! twice for one client; every attempt that ends unsuccessfully is handed back exactly once
//! (`Abandon`); `Close` is the last action a pair ever pushes.

mod attempts;
mod flow;
mod hello;
mod identity;
mod rates;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hello;
#[cfg(test)]
mod tests_identity;

pub use attempts::{RECENT_TRIES, Spare, Spares};
pub use flow::{Direction, End, Flow, Readiness, Side, Stream};

use attempts::Attempts;

use crate::buffer::Buffer;
use crate::connect::ConnectCheck;
use crate::endpoint::Client;
use crate::error::CloseReason;
use crate::proxy_protocol::Version;
use crate::ring::Ring;
use crate::stats::IoStats;
use crate::upstream::UpstreamId;
use log::debug;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Pump rounds per call before a busy pair yields to the others (fairness): each round moves
/// up to a buffer's worth each way, so 64 rounds is 1 MiB per direction with 16 KiB rings.
pub const MAX_PUMP_ROUNDS: usize = 64;

/// How long a client whose upstream socket could not be created (no descriptors, no memory)
/// waits before its next try.
pub const LOCAL_RETRY: Duration = Duration::from_millis(50);

/// Where the pair is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted; the upstream is not chosen yet.
    Preread,
    /// Attempt `attempt` (1-based) is in flight, or, with no upstream socket, the next one
    /// waits to start.
    Connecting {
        /// How many servers this client has tried, the current one included.
        attempt: u32,
    },
    /// Both sockets carry data.
    Streaming,
}

/// A wake-up a pair asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PairTimer {
    /// The idle timeout may have passed.
    Idle,
    /// Connect attempt `attempt` may have timed out.
    Connect {
        /// The attempt it is about.
        attempt: u32,
    },
    /// A deferred attempt may start.
    Retry,
    /// The PROXY header should have arrived.
    Preread,
    /// The TLS ClientHello should have arrived.
    Hello,
    /// `max_lifetime` has passed.
    Lifetime,
    /// A direction held back by its bandwidth limit may read again.
    Rate,
}

/// Whether the pair passed its route's access rules, and whether it counts against its
/// client's per-client limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Not judged yet (waiting for the client's PROXY header, which names the client).
    Pending,
    /// Admitted, not counted in the per-client table.
    Admitted,
    /// Admitted and counted: its close releases one connection of its client.
    Counted,
}

/// Why an attempt was given up.
#[derive(Debug)]
pub enum Failure {
    /// The connect failed (refused, unreachable, reset).
    Failed(io::Error),
    /// The connect timeout passed.
    TimedOut,
}

/// What the loop must do for a pair, in the order the pair pushed them.
#[derive(Debug)]
pub enum Action<S> {
    /// Choose the route for [`Pair::server_name`] among those of [`Pair::listener`] and
    /// call [`Pair::routed`], or [`Pair::no_route`] when none takes it.
    Route,
    /// Choose a server not in [`Pair::tried`], open a socket to it and call
    /// [`Pair::connecting`]; or say why not with [`Pair::no_server`], [`Pair::defer`] or
    /// [`Pair::failed_at_once`].
    Connect,
    /// The connect to this server succeeded (passive health forgives its failures).
    Connected(UpstreamId),
    /// The attempt on `server` is over: drop `stream` and count `why` against the server.
    Abandon {
        /// The server tried.
        server: UpstreamId,
        /// Its socket, to deregister and drop.
        stream: S,
        /// What went wrong.
        why: Failure,
    },
    /// Call [`Pair::on_timer`] with the timer at the instant.
    Wake(Instant, PairTimer),
    /// Pump again next turn without waiting for an event (fairness).
    Yield,
    /// Attempt records the pair is done with: give them to the loop's [`Spares`].
    Spare(Spare),
    /// A direction waits for buffer storage (the budget is used up): pump this pair again,
    /// in turn with the others waiting, once storage returns.
    Starved,
    /// Tear the pair down for this reason; nothing follows.
    Close(CloseReason),
}

/// The queue a pair pushes actions into; the loop owns one and drains it after each call.
pub type Actions<S> = VecDeque<Action<S>>;

/// What must happen before an upstream is chosen, in this order (the default: nothing,
/// choose an upstream at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Preread {
    /// The client may not be served: close at once, before reading a byte.
    pub refuse: Option<CloseReason>,
    /// The client must first send a PROXY header, whole within this time of accept.
    pub proxy_header: Option<Duration>,
    /// Then its TLS ClientHello is read, to choose the route by the server name.
    pub client_hello: Option<HelloPreread>,
}

/// Reading the ClientHello before the route is chosen (`sni`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloPreread {
    /// Time allowed from accept for the whole hello.
    pub timeout: Duration,
    /// Most bytes of TLS records it may take (`preread_max`).
    pub max: usize,
    /// The listen address the client came to, whose routes choose among themselves.
    pub listener: SocketAddr,
}

/// How a client may start and try servers (from its route when it arrived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectPolicy {
    /// Close when no byte moved either way this long (a reload does not change it).
    pub idle_timeout: Duration,
    /// What happens before an upstream is chosen.
    pub preread: Preread,
    /// Time allowed for one attempt.
    pub connect_timeout: Duration,
    /// Most servers tried.
    pub tries: usize,
    /// No new attempt once the client has waited this long.
    pub tries_timeout: Option<Duration>,
    /// Close gracefully when this old.
    pub max_lifetime: Option<Duration>,
    /// Client → upstream bytes per second.
    pub upload_rate: Option<usize>,
    /// Upstream → client bytes per second.
    pub download_rate: Option<usize>,
}

/// What only some pairs need, kept out of the pair itself so that the others stay small.
#[derive(Debug, Default)]
struct Extra {
    identity: Option<identity::Identity>,
    rates: Option<rates::Rates>,
    hello: Option<crate::client_hello::ClientHello>,
    /// The servers tried (the last ones, see [`RECENT_TRIES`]) and how many in all, kept
    /// for the access log once the attempt records go, when there was more than one.
    tried: Option<(Vec<UpstreamId>, u32)>,
}

/// A client connection and its upstream connection, with a buffer per direction.
///
/// Getters: [`Pair::id`], [`Pair::route`], [`Pair::phase`], [`Pair::client_addr`],
/// [`Pair::server`], [`Pair::tried`], [`Pair::to_upstream`], [`Pair::to_client`], times.
/// Inputs: [`Pair::start`], [`Pair::on_ready`], [`Pair::pump`], [`Pair::on_timer`], and the
/// answers to `Connect`. Every input takes `now` (monotonic) and an [`Actions`] queue.
#[derive(Debug)]
pub struct Pair<S, B = Ring> {
    id: u64,
    route: u32,
    /// Whole milliseconds (at most 30 days, so they fit).
    idle_timeout_ms: u32,
    phase: Phase,
    first_fin: Option<Side>,
    admission: Admission,
    /// `max_lifetime` passed: both directions end once their buffers drain.
    expired: bool,
    /// It asked for storage and has not been fed yet.
    starving: bool,
    client: End<S>,
    upstream: Option<End<S>>,
    /// The server of `upstream` (pools hold fewer than 2^32 servers).
    server: Option<u32>,
    attempts: Option<Box<Attempts>>,
    /// What only some pairs need: the PROXY header's identity, bandwidth buckets.
    extra: Option<Box<Extra>>,
    client_addr: Client,
    started: Instant,
    /// Microseconds from `started` to the upstream connect (saturating at about 71 minutes).
    connect_us: Option<u32>,
    last_active: Instant,
    to_upstream: Direction<B>,
    to_client: Direction<B>,
}

impl<S: Stream, B: Buffer + Default> Pair<S, B> {
    /// A pair for a client accepted at `now` on route `route`; call [`Pair::start`] next.
    /// `id` is unique over the loop's life (it tells a reused slab key from this pair); its
    /// attempt records come from `spares`.
    pub fn new(
        id: u64,
        route: usize,
        client: S,
        client_addr: impl Into<Client>,
        policy: ConnectPolicy,
        spares: &mut Spares,
        now: Instant,
    ) -> Self {
        let idle_timeout = policy.idle_timeout;
        Pair {
            id,
            route: route as u32,
            idle_timeout_ms: idle_timeout.as_millis().min(u128::from(u32::MAX)) as u32,
            phase: Phase::Preread,
            first_fin: None,
            admission: Admission::Pending,
            expired: false,
            starving: false,
            client: End::new(client),
            upstream: None,
            server: None,
            attempts: Some(spares.take(policy)),
            // Bandwidth limits belong to the route, chosen later when a hello is read first.
            extra: rates::Rates::new(&policy, now)
                .filter(|_| policy.preread.client_hello.is_none())
                .map(|rates| {
                    Box::new(Extra {
                        rates: Some(rates),
                        ..Extra::default()
                    })
                }),
            client_addr: client_addr.into(),
            started: now,
            connect_us: None,
            last_active: now,
            to_upstream: Direction::default(),
            to_client: Direction::default(),
        }
    }
}

impl<S: Stream, B: Buffer> Pair<S, B> {
    // ---- getters ----------------------------------------------------------------------

    /// Unique over the loop's life.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Index of the route that accepted the client.
    pub fn route(&self) -> usize {
        self.route as usize
    }

    /// Where the pair is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether it passed its route's access rules, and counts against its client.
    pub fn admission(&self) -> Admission {
        self.admission
    }

    /// The loop judged it: admitted, counted or not against its client's limits.
    pub fn admit(&mut self, counted: bool) {
        self.admission = if counted {
            Admission::Counted
        } else {
            Admission::Admitted
        };
    }

    /// Who the client is: its address (the PROXY header's when one named it), or a client
    /// of a Unix listener.
    pub fn client_addr(&self) -> Client {
        self.client_addr
    }

    /// The server of the attempt in flight or of the established upstream.
    pub fn server(&self) -> Option<UpstreamId> {
        self.server.map(|id| id as UpstreamId)
    }

    /// Servers tried so far (empty once streaming: no longer needed).
    pub fn tried(&self) -> &[UpstreamId] {
        self.attempts.as_ref().map_or(&[], |a| a.tried.recent())
    }

    /// Client → upstream.
    pub fn to_upstream(&self) -> &Direction<B> {
        &self.to_upstream
    }

    /// Upstream → client.
    pub fn to_client(&self) -> &Direction<B> {
        &self.to_client
    }

    /// The socket of `side`, if it has one.
    pub fn stream(&self, side: Side) -> Option<&S> {
        match side {
            Side::Client => Some(&self.client.stream),
            Side::Upstream => self.upstream.as_ref().map(|end| &end.stream),
        }
    }

    /// When the client was accepted.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// How long the upstream connect took, once established.
    pub fn connect_time(&self) -> Option<Duration> {
        self.connect_us
            .map(|us| Duration::from_micros(u64::from(us)))
    }

    /// The idle timeout in force for this pair (a reload does not change it).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.idle_timeout_ms))
    }

    /// When the idle timeout passes if no byte moves before.
    pub fn idle_deadline(&self) -> Instant {
        self.last_active + self.idle_timeout()
    }

    // ---- inputs -----------------------------------------------------------------------

    /// Right after accept: refuses the client, or asks for the idle wake-up and then for a
    /// server, or — when a PROXY header or a ClientHello must come first — for their
    /// deadlines.
    pub fn start(&mut self, _now: Instant, out: &mut Actions<S>) {
        let preread = self
            .attempts
            .as_ref()
            .map_or(Preread::default(), |a| a.policy.preread);
        if let Some(reason) = preread.refuse {
            out.push_back(Action::Close(reason));
            return;
        }
        out.push_back(Action::Wake(self.idle_deadline(), PairTimer::Idle));
        if let Some(lifetime) = self.attempts.as_ref().and_then(|a| a.policy.max_lifetime)
            && preread.client_hello.is_none()
        {
            out.push_back(Action::Wake(self.started + lifetime, PairTimer::Lifetime));
        }
        if let Some(timeout) = preread.proxy_header {
            out.push_back(Action::Wake(self.started + timeout, PairTimer::Preread));
        }
        if let Some(hello) = preread.client_hello {
            out.push_back(Action::Wake(self.started + hello.timeout, PairTimer::Hello));
        }
        if preread.proxy_header.is_none() && preread.client_hello.is_none() {
            out.push_back(Action::Connect);
        }
    }

    /// An event on `side`: records the readiness, finishes a connect, or moves bytes.
    pub fn on_ready(
        &mut self,
        side: Side,
        readiness: Readiness,
        now: Instant,
        pool: &mut B::Pool,
        io: &mut IoStats,
        out: &mut Actions<S>,
    ) {
        let end = match side {
            Side::Client => &mut self.client,
            Side::Upstream => match self.upstream.as_mut() {
                Some(end) => end,
                None => return,
            },
        };
        end.mark(readiness);
        if side == Side::Upstream && matches!(self.phase, Phase::Connecting { .. }) {
            match end.stream.connect_check() {
                ConnectCheck::Pending => return,
                ConnectCheck::Failed(e) => return self.abandon(Failure::Failed(e), now, out),
                ConnectCheck::Connected => {
                    end.writable = true;
                    if let Some(server) = self.server() {
                        out.push_back(Action::Connected(server));
                    }
                    self.connected(now, out);
                }
            }
        } else if readiness.error
            && let Some(e) = end.stream.take_error()
        {
            debug!("{side:?} socket of {} failed: {e}", self.client_addr);
            // A reset before the first byte of an awaited header or hello is a probe.
            let probe = side == Side::Client
                && self.awaiting_preread()
                && self.to_upstream.buffer().is_empty();
            let reason = if probe {
                CloseReason::Probe
            } else {
                side.reset()
            };
            out.push_back(Action::Close(reason));
            return;
        }
        self.pump(now, pool, io, out);
    }

    /// Moves every byte that can move now and passes FINs on; pushes `Close` when done,
    /// `Yield` when it still has work after [`MAX_PUMP_ROUNDS`], nothing otherwise.
    ///
    /// Before streaming only the client is read (early bytes wait for the upstream). Safe
    /// to call spuriously. Buffer storage comes from `pool` before a read and goes back once
    /// a buffer is empty.
    pub fn pump(
        &mut self,
        now: Instant,
        pool: &mut B::Pool,
        io: &mut IoStats,
        out: &mut Actions<S>,
    ) {
        // What is read before the upstream is chosen must stay readable here.
        let preread = self.awaiting_preread();
        self.to_upstream.need_user_space(preread);
        let mut outcome = self.pump_rounds(now, pool, io);
        if self.awaiting_preread() {
            outcome = match outcome {
                // A reset before the first byte is a balancer's probe too.
                Err(CloseReason::ClientReset) if self.to_upstream.buffer().is_empty() => {
                    Err(CloseReason::Probe)
                }
                Err(reason) => Err(reason),
                Ok(_) => self.preread(out).map(|()| false),
            };
        }
        self.to_upstream.settle(now, pool);
        self.to_client.settle(now, pool);
        if self.attempts.as_ref().is_some_and(|a| a.done) {
            self.retire_attempts(out);
        }
        if outcome.is_ok() {
            self.rate_wait(now, out);
            let starved = self.to_upstream.is_starved() || self.to_client.is_starved();
            if starved && !self.starving {
                self.starving = true;
                out.push_back(Action::Starved);
            }
        }
        match outcome {
            Ok(true) => out.push_back(Action::Yield),
            Ok(false) => {
                if let Some(reason) = self.finished() {
                    out.push_back(Action::Close(reason));
                }
            }
            Err(reason) => out.push_back(Action::Close(reason)),
        }
    }

    /// A wake-up it asked for is due (or stale: then nothing happens).
    pub fn on_timer(&mut self, timer: PairTimer, now: Instant, out: &mut Actions<S>) {
        match timer {
            PairTimer::Idle => {
                let deadline = self.idle_deadline();
                if deadline <= now {
                    out.push_back(Action::Close(CloseReason::IdleTimeout));
                } else {
                    out.push_back(Action::Wake(deadline, PairTimer::Idle));
                }
            }
            PairTimer::Connect { attempt } => {
                if self.phase == (Phase::Connecting { attempt }) && self.upstream.is_some() {
                    self.abandon(Failure::TimedOut, now, out);
                }
            }
            PairTimer::Lifetime => self.expire(out),
            PairTimer::Rate => self.rate_woken(out),
            PairTimer::Preread => {
                if self.awaiting_header() {
                    out.push_back(Action::Close(CloseReason::ProxyTimeout));
                }
            }
            PairTimer::Hello => {
                if self.awaiting_hello() {
                    out.push_back(Action::Close(CloseReason::PrereadTimeout));
                }
            }
            PairTimer::Retry => {
                if matches!(self.phase, Phase::Preread | Phase::Connecting { .. })
                    && self.upstream.is_none()
                {
                    self.next_attempt(now, out);
                }
            }
        }
    }

    // ---- answers to `Connect` ---------------------------------------------------------

    /// A connect to `server` started on `stream`; once connected it is sent the PROXY header
    /// `send_proxy`. Asks to be woken at the attempt's timeout.
    pub fn connecting(
        &mut self,
        server: UpstreamId,
        stream: S,
        send_proxy: Version,
        now: Instant,
        out: &mut Actions<S>,
    ) {
        debug_assert!(self.upstream.is_none(), "one attempt at a time");
        let Some(attempts) = self.attempts.as_mut() else {
            return;
        };
        attempts.send_proxy = send_proxy;
        attempts.tried.push(server);
        let attempt = attempts.tried.total();
        self.upstream = Some(End::new(stream));
        self.server = Some(server as u32);
        self.phase = Phase::Connecting { attempt };
        let deadline = now + attempts.policy.connect_timeout;
        out.push_back(Action::Wake(deadline, PairTimer::Connect { attempt }));
    }

    /// The connect to `server` failed before it started (the loop counted it against the
    /// server): the next server, if any is left.
    pub fn failed_at_once(&mut self, server: UpstreamId, now: Instant, out: &mut Actions<S>) {
        if let Some(attempts) = self.attempts.as_mut() {
            attempts.tried.push(server);
        }
        self.next_attempt(now, out);
    }

    /// Hands the attempt records back to the loop (they are not needed any more).
    fn retire_attempts(&mut self, out: &mut Actions<S>) {
        self.keep_tried();
        if let Some(attempts) = self.attempts.take() {
            out.push_back(Action::Spare(Spare(attempts)));
        }
    }

    /// Copies the servers tried out of the attempt records when there was a retry (they go
    /// back to the spares; the access log still names every server tried).
    pub(super) fn keep_tried(&mut self) {
        let Some(attempts) = self.attempts.as_ref() else {
            return;
        };
        if attempts.tried.total() > 1 {
            let kept = (attempts.tried.recent().to_vec(), attempts.tried.total());
            self.extra_mut().tried = Some(kept);
        }
    }

    /// Servers tried after the first: a retry each.
    pub fn retries(&self) -> u32 {
        self.attempts_made().1.saturating_sub(1)
    }

    /// With retries, the servers tried, oldest first (at most the last [`RECENT_TRIES`]);
    /// without, the one tried when it did not connect, else empty (then [`Pair::server`] is
    /// the only one): what the access log lists.
    pub fn tried_servers(&self) -> &[UpstreamId] {
        let (tried, total) = self.attempts_made();
        if total > 1 || self.server().is_none() {
            tried
        } else {
            &[]
        }
    }

    fn attempts_made(&self) -> (&[UpstreamId], u32) {
        if let Some(attempts) = self.attempts.as_ref()
            && attempts.tried.total() > 0
        {
            return (attempts.tried.recent(), attempts.tried.total());
        }
        match self.extra.as_ref().and_then(|e| e.tried.as_ref()) {
            Some((tried, total)) => (tried, *total),
            None => (&[], u32::from(self.server.is_some())),
        }
    }

    /// The attempt records, for the loop's spares, when the pair closes.
    pub fn take_spare(&mut self) -> Option<Spare> {
        self.attempts.take().map(Spare)
    }

    /// Storage may be had again: the loop pumps it next (its turn among the starved came).
    pub fn fed(&mut self) {
        self.starving = false;
    }

    /// Gives both buffers' storage back to `pool`, whatever they hold: call when closing.
    pub fn release_buffers(&mut self, pool: &mut B::Pool) {
        self.to_upstream.release(pool);
        self.to_client.release(pool);
    }

    /// The route's access rules refuse this client (`allow`/`deny`, a per-client limit).
    pub fn refuse(&mut self, reason: CloseReason, out: &mut Actions<S>) {
        out.push_back(Action::Close(reason));
    }

    /// No server can take this client.
    pub fn no_server(&mut self, out: &mut Actions<S>) {
        out.push_back(Action::Close(CloseReason::ConnectFailed));
    }

    /// No upstream socket could be created here (descriptors, memory): not the server's
    /// fault and not a try. Waits [`LOCAL_RETRY`] and tries again, within the connect timeout.
    pub fn defer(&mut self, now: Instant, out: &mut Actions<S>) {
        let timeout = self
            .attempts
            .as_ref()
            .map_or(Duration::ZERO, |a| a.policy.connect_timeout);
        if now.saturating_duration_since(self.started) >= timeout {
            out.push_back(Action::Close(CloseReason::ConnectFailed));
        } else {
            out.push_back(Action::Wake(now + LOCAL_RETRY, PairTimer::Retry));
        }
    }

    // ---- the lifecycle ----------------------------------------------------------------

    /// `max_lifetime` passed: a streaming pair stops reading and ends both directions once
    /// their buffers drain (FIN both ways); one not streaming yet closes at once.
    fn expire(&mut self, out: &mut Actions<S>) {
        if self.phase != Phase::Streaming {
            out.push_back(Action::Close(CloseReason::MaxLifetime));
            return;
        }
        self.expired = true;
        self.to_upstream.end_source();
        self.to_client.end_source();
        // No event may come: a pump passes the FINs on where the buffers are already empty.
        out.push_back(Action::Yield);
    }

    /// Hands the attempt in flight back (`Abandon`) and moves on to the next server.
    fn abandon(&mut self, why: Failure, now: Instant, out: &mut Actions<S>) {
        if let (Some(end), Some(server)) = (self.upstream.take(), self.server.take()) {
            let server = server as UpstreamId;
            out.push_back(Action::Abandon {
                server,
                stream: end.stream,
                why,
            });
        }
        self.next_attempt(now, out);
    }

    /// Asks for another server, unless `tries` servers were tried or `tries_timeout` passed.
    fn next_attempt(&mut self, now: Instant, out: &mut Actions<S>) {
        let Some(attempts) = self.attempts.as_ref() else {
            return;
        };
        let waited = now.saturating_duration_since(self.started);
        let out_of_time = attempts.tried.total() > 0
            && attempts
                .policy
                .tries_timeout
                .is_some_and(|limit| waited >= limit);
        if attempts.tried.total() as usize >= attempts.policy.tries || out_of_time {
            out.push_back(Action::Close(CloseReason::ConnectFailed));
        } else {
            out.push_back(Action::Connect);
        }
    }

    /// Pump rounds until nothing moves: `Ok(true)` if the round cap was hit with work left.
    fn pump_rounds(
        &mut self,
        now: Instant,
        pool: &mut B::Pool,
        io: &mut IoStats,
    ) -> Result<bool, CloseReason> {
        let streaming = self.phase == Phase::Streaming;
        for _ in 0..MAX_PUMP_ROUNDS {
            // Client bytes go upstream only after the PROXY header sent before them.
            let (prefixed, holding) = if streaming {
                self.send_prefix(io)?
            } else {
                (false, false)
            };
            let allowance = self.allowance(Side::Client, now);
            let upstream = if streaming && !holding {
                self.upstream.as_mut()
            } else {
                None
            };
            let (up, read) = self.to_upstream.forward(
                &mut self.client,
                upstream,
                Side::Client,
                &mut self.first_fin,
                allowance,
                pool,
                io,
            )?;
            self.spend(Side::Client, read);
            let allowance = self.allowance(Side::Upstream, now);
            let (down, read) = match (streaming, self.upstream.as_mut()) {
                (true, Some(upstream)) => self.to_client.forward(
                    upstream,
                    Some(&mut self.client),
                    Side::Upstream,
                    &mut self.first_fin,
                    allowance,
                    pool,
                    io,
                )?,
                _ => (false, 0),
            };
            self.spend(Side::Upstream, read);
            if !(up || down || prefixed) {
                return Ok(false);
            }
            self.last_active = now;
        }
        Ok(true)
    }

    /// The "done" rule: finished when both directions passed their FIN on.
    fn finished(&self) -> Option<CloseReason> {
        match (
            self.to_upstream.flow(),
            self.to_client.flow(),
            self.first_fin,
        ) {
            (Flow::Shut, Flow::Shut, _) if self.expired => Some(CloseReason::MaxLifetime),
            (Flow::Shut, Flow::Shut, Some(Side::Upstream)) => Some(CloseReason::UpstreamClosed),
            (Flow::Shut, Flow::Shut, _) => Some(CloseReason::ClientClosed),
            (Flow::Open | Flow::Eof | Flow::Shut, Flow::Open | Flow::Eof | Flow::Shut, _) => None,
        }
    }
}
