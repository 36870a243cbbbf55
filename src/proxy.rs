//! The event loop: one `mio::Poll`, the listeners, the slab of pairs, the timers and the pool.
//!
//! `proxy.rs` orchestrates and `pair.rs` decides. Each turn: poll (the timeout comes from the
//! nearest deadline), dispatch events to pairs, fire due timers, then accept while below
//! `max_conns` — accepts run after the batch so a freed slab key never receives a stale
//! event from the same batch. Every socket is registered once for readable|writable.

mod upstreams;

use crate::balance::Balancer;
use crate::checks::Probes;
use crate::config::{Config, default_max_conns};
use crate::connect::{self, ConnectCheck};
use crate::error::{CloseReason, StartError};
use crate::health::{ActivePolicy, PassivePolicy};
use crate::pair::{Pair, Phase, Verdict};
use crate::ring::BufferPool;
use crate::timers::Timers;
use crate::token::{self, Side, Target};
use crate::upstream::{Pool, UpstreamId};
use log::{debug, error, info, warn};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long accepting pauses after an accept error such as `EMFILE`.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Ring buffers kept for reuse when no connection needs them.
const MAX_FREE_BUFFERS: usize = 256;
/// Events fetched per poll.
const EVENTS_CAPACITY: usize = 1024;

/// A deadline the loop acts on; stale ones are recognised by the pair's `id` and attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The connect attempt `attempt` of pair `id` at `key` must have finished.
    Connect { key: usize, id: u64, attempt: u32 },
    /// Pair `id` at `key` may have been idle too long.
    Idle { key: usize, id: u64 },
    /// Accepting may resume after an accept error.
    AcceptResume,
    /// Time to start an active health check of `server`.
    Check { server: UpstreamId },
    /// Health-check probe `seq` of `server` must have finished.
    CheckTimeout { server: UpstreamId, seq: u64 },
    /// Passive health's unavailability period of `server` may be over.
    Recovered { server: UpstreamId },
}

/// A listening socket and whether it may have clients waiting.
struct Listener {
    socket: TcpListener,
    addr: SocketAddr,
    /// Set by an event, cleared by `WouldBlock`: clients may wait in the backlog.
    pending: bool,
}

/// Asks a running [`Proxy`] to stop, from any thread.
#[derive(Clone)]
pub struct Stopper {
    waker: Arc<Waker>,
}

impl Stopper {
    /// Wakes the loop, which then stops; open connections are closed.
    pub fn stop(&self) -> io::Result<()> {
        self.waker.wake()
    }
}

/// A running proxy loop.
pub struct Proxy {
    poll: Poll,
    listeners: Vec<Listener>,
    pairs: Slab<Pair<TcpStream>>,
    timers: Timers<Timer>,
    pool: Pool,
    balancer: Balancer,
    probes: Probes,
    buffers: BufferPool,
    connect_timeout: Duration,
    /// Most servers tried per client.
    tries: usize,
    tries_timeout: Option<Duration>,
    passive: PassivePolicy,
    active: ActivePolicy,
    health_interval: Option<Duration>,
    health_timeout: Duration,
    idle_timeout: Duration,
    max_conns: usize,
    next_id: u64,
    /// Accepting is paused until this `AcceptResume` timer fires.
    accept_paused: bool,
    /// Failed accepts since the last successful one: a burst is logged once, when it starts.
    accept_failures: u64,
    waker: Arc<Waker>,
    signals: Option<Signals>,
    stop: bool,
    /// Pairs (key, id) that yielded with work left; pumped again next turn.
    ready: Vec<(usize, u64)>,
}

impl Proxy {
    /// Resolves the upstreams, binds the listener and prepares the poller. Logs one info line.
    pub fn bind(config: Config) -> Result<Proxy, StartError> {
        let setup = |what| move |source| StartError::Setup { what, source };
        let pool = Pool::resolve(&config.upstreams)?;
        let poll = Poll::new().map_err(setup("create the poller"))?;
        let mut socket =
            bind_listener(config.listen, config.backlog, config.workers > 1).map_err(|source| {
                StartError::Bind {
                    addr: config.listen,
                    source,
                }
            })?;
        let addr = socket
            .local_addr()
            .map_err(setup("read the listen address"))?;
        poll.registry()
            .register(&mut socket, token::listener(0), Interest::READABLE)
            .map_err(setup("register the listener"))?;
        let waker = Waker::new(poll.registry(), token::WAKER).map_err(setup("create a waker"))?;
        let fd_limit = rlimit::Resource::NOFILE
            .get()
            .map(|(soft, _)| soft)
            .map_err(setup("read the descriptor limit"))?;
        // Workers share the process's descriptors, so each takes its share of the limit.
        let workers = config.workers.max(1);
        let max_conns = config
            .max_conns
            .unwrap_or(default_max_conns(fd_limit))
            .div_ceil(workers);
        if (max_conns * workers) as u64 * 2 + crate::config::RESERVED_FDS > fd_limit {
            warn!(
                "--max-conns {max_conns} needs about {} descriptors but the limit is {fd_limit}; \
                 accepts will pause when descriptors run out",
                max_conns * 2 + crate::config::RESERVED_FDS as usize
            );
        }
        let upstreams: Vec<String> = pool.servers.iter().map(describe_server).collect();
        info!(
            "listening on {addr}, upstreams [{}], balance {}, buffer-size {} bytes per direction, \
             max-conns {max_conns} (descriptor limit {fd_limit}), connect-timeout {:?}, \
             idle-timeout {:?}",
            upstreams.join(", "),
            config.balance.as_str(),
            config.buffer_size,
            config.connect_timeout,
            config.idle_timeout,
        );
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let mut timers = Timers::default();
        if config.health_interval.is_some() {
            let now = Instant::now();
            for (server, _) in pool.servers.iter().enumerate().filter(|(_, s)| !s.down) {
                timers.schedule(now, Timer::Check { server });
            }
        }
        Ok(Proxy {
            poll,
            listeners: vec![Listener {
                socket,
                addr,
                pending: false,
            }],
            pairs: Slab::new(),
            timers,
            balancer: Balancer::new(config.balance, &pool, seed),
            probes: Probes::new(pool.len()),
            tries: config.tries.unwrap_or(pool.len()),
            tries_timeout: config.tries_timeout,
            passive: PassivePolicy {
                max_fails: config.max_fails,
                fail_timeout: config.fail_timeout,
            },
            active: ActivePolicy {
                rise: config.health_rise,
                fall: config.health_fall,
            },
            health_interval: config.health_interval,
            health_timeout: config.health_timeout.unwrap_or(config.connect_timeout),
            pool,
            buffers: BufferPool::new(config.buffer_size, MAX_FREE_BUFFERS),
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            max_conns,
            next_id: 0,
            accept_paused: false,
            accept_failures: 0,
            waker: Arc::new(waker),
            signals: None,
            stop: false,
            ready: Vec::new(),
        })
    }

    /// The bound listen address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].addr
    }

    /// The effective connection limit.
    pub fn max_conns(&self) -> usize {
        self.max_conns
    }

    /// A handle that stops the loop from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            waker: Arc::clone(&self.waker),
        }
    }

    /// Stops the loop on SIGINT or SIGTERM, delivered through the poller.
    pub fn handle_signals(&mut self) -> Result<(), StartError> {
        let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|source| StartError::Setup {
            what: "install signal handlers",
            source,
        })?;
        self.poll
            .registry()
            .register(&mut signals, token::SIGNAL, Interest::READABLE)
            .map_err(|source| StartError::Setup {
                what: "register signals",
                source,
            })?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Runs until stopped by a signal or a [`Stopper`]; then closes every connection.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        while !self.stop {
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
        }
        let open = self.pairs.len();
        let now = Instant::now();
        let keys: Vec<usize> = self.pairs.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.close(key, CloseReason::Shutdown, now);
        }
        info!("stopped; closed {open} open connections");
        Ok(())
    }

    fn dispatch(&mut self, event: &Event, now: Instant) {
        match token::decode(event.token()) {
            Target::Signal => {
                if let Some(signals) = self.signals.as_mut() {
                    for signal in signals.pending() {
                        info!("signal {signal} received, stopping");
                        self.stop = true;
                    }
                }
            }
            Target::Waker => self.stop = true,
            Target::Listener(i) => {
                if let Some(listener) = self.listeners.get_mut(i) {
                    listener.pending = true;
                }
            }
            Target::Check(server) => self.probe_event(server, now),
            Target::Pair { key, side } => self.pair_event(key, side, event, now),
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
                ConnectCheck::Failed(e) => return self.retry(key, &e, now),
                ConnectCheck::Connected => {
                    pair.phase = Phase::Streaming;
                    end.writable = true;
                    if let Some(id) = pair.upstream_id {
                        self.pool.servers[id].passive.record_success();
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
        match pair.pump(now, &mut self.buffers) {
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
                        self.retry(key, &err, now);
                    }
                }
                Timer::Check { server } => self.start_check(server, now),
                Timer::CheckTimeout { server, seq } => {
                    if self.probes.time_out(server, seq) {
                        self.finish_check(server, false, "timed out", now);
                    }
                }
                Timer::Recovered { server } => self.recovered(server, now),
                Timer::Idle { key, id } => {
                    let Some(pair) = self.pairs.get(key).filter(|p| p.id == id) else {
                        continue;
                    };
                    let deadline = pair.last_active + self.idle_timeout;
                    if deadline <= now {
                        self.close(key, CloseReason::IdleTimeout, now);
                    } else {
                        self.timers.schedule(deadline, Timer::Idle { key, id });
                    }
                }
            }
        }
    }

    /// Accepts waiting clients while below `max_conns` and not paused.
    fn accept(&mut self, now: Instant) {
        for i in 0..self.listeners.len() {
            while self.listeners[i].pending
                && !self.accept_paused
                && self.pairs.len() < self.max_conns
            {
                match self.listeners[i].socket.accept() {
                    Ok((stream, addr)) => {
                        if self.accept_failures > 0 {
                            info!(
                                "accepting again on {} after {} failed accept(s)",
                                self.listeners[i].addr, self.accept_failures
                            );
                            self.accept_failures = 0;
                        }
                        self.open(stream, addr, now);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.listeners[i].pending = false;
                    }
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
                                self.listeners[i].addr,
                                self.pairs.len()
                            );
                        }
                        self.accept_failures += 1;
                        self.accept_paused = true;
                        self.timers
                            .schedule(now + ACCEPT_PAUSE, Timer::AcceptResume);
                    }
                }
            }
        }
    }

    /// Registers an accepted client as a new pair and starts its upstream connect.
    fn open(&mut self, mut stream: TcpStream, addr: SocketAddr, now: Instant) {
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
        entry.insert(Pair::new(id, stream, addr, now));
        self.timers
            .schedule(now + self.idle_timeout, Timer::Idle { key, id });
        self.connect_next(key, now);
    }

    /// Frees pair `key` (exactly once: the slab entry is removed here and only here). After a
    /// reset, the other side is reset too, so a truncated stream never looks complete.
    fn close(&mut self, key: usize, reason: CloseReason, now: Instant) {
        let Some(pair) = self.pairs.try_remove(key) else {
            return;
        };
        if let Some(id) = pair.upstream_id {
            self.pool.servers[id].active -= 1;
            self.balancer.update(&self.pool, id);
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
        let upstream = pair
            .upstream_id
            .map_or_else(|| "-".to_string(), |id| self.pool.addr(id).to_string());
        debug!(
            "closed client={} upstream={} to_upstream={} to_client={} duration={:?} reason={}",
            pair.client_addr,
            upstream,
            pair.to_upstream.delivered,
            pair.to_client.delivered,
            now.saturating_duration_since(pair.started),
            reason
        );
    }
}

/// A server for the start line: address and any non-default options.
fn describe_server(server: &crate::upstream::Upstream) -> String {
    let mut text = server.addr.to_string();
    if server.weight != 1 {
        text += &format!(",weight={}", server.weight);
    }
    if let Some(max) = server.max_conns {
        text += &format!(",max-conns={max}");
    }
    if server.backup {
        text += ",backup";
    }
    if server.down {
        text += ",down";
    }
    text
}

/// Binds a non-blocking listener with `SO_REUSEADDR` (and `IPV6_V6ONLY` for IPv6, as nginx
/// does, so `0.0.0.0:P` and `[::]:P` can coexist). With several workers each binds its own
/// listener with `SO_REUSEPORT` and the kernel spreads connections between them.
fn bind_listener(addr: SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}
