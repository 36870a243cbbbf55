//! Carrying out what pairs ask for: accepting a client as a pair (or refusing it), feeding
//! it socket events, connecting it to the server the balancer offers, and freeing it.
//!
//! [`Proxy::act`] drains the action queue a pair call filled, in order; a pair's slab slot
//! is freed in exactly one place, [`Proxy::close`].

use super::{Proxy, Timer};
use crate::access_log::Record;
use crate::conn::Conn;
use crate::connect;
use crate::endpoint::{Client, Endpoint};
use crate::error::CloseReason;
use crate::pair::{Action, Admission, Pair, Readiness, Side};
use crate::token;
use log::{debug, info, warn};
use mio::Interest;
use mio::event::Event;
use socket2::SockRef;
use std::io;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

impl Proxy {
    pub(super) fn pair_event(&mut self, key: usize, side: Side, event: &Event, now: Instant) {
        let Some(pair) = self.pairs.get_mut(key) else {
            return;
        };
        let readiness = Readiness {
            readable: event.is_readable(),
            writable: event.is_writable() || event.is_write_closed(),
            read_closed: event.is_read_closed(),
            error: event.is_error(),
        };
        let route = &mut self.routes[pair.route()];
        let (pool, io) = (&mut route.buffers, &mut self.io);
        pair.on_ready(side, readiness, now, pool, io, &mut self.actions);
        self.act(key, now);
    }

    /// Carries out, in order, what pair `key` asked for (the queue is empty afterwards).
    pub(super) fn act(&mut self, key: usize, now: Instant) {
        if !self.pairs.contains(key) {
            self.actions.clear();
            return;
        }
        while let Some(action) = self.actions.pop_front() {
            // Read each time: choosing the route by server name changes it.
            let route = self.pairs.get(key).map_or(0, Pair::route);
            match action {
                Action::Route => self.route_by_name(key, now),
                Action::Connect => self.connect(key, now),
                Action::Connected(server) => {
                    if let Some(took) = self.pairs.get(key).and_then(Pair::connect_time) {
                        self.observed.connect.observe(took.as_secs_f64());
                    }
                    self.routes[route].connected(server);
                }
                Action::Abandon {
                    server,
                    mut stream,
                    why,
                } => {
                    let _ = self.poll.registry().deregister(&mut stream);
                    let client = self.pairs.get(key).map(Pair::client_addr);
                    if let Some(until) = self.routes[route].abandon(server, client, &why, now) {
                        self.timers.schedule(until, Timer::recovered(route, server));
                    }
                }
                Action::Wake(at, timer) => {
                    if let Some(pair) = self.pairs.get(key) {
                        let id = pair.id();
                        self.timers.schedule(at, Timer::pair(key, id, timer));
                    }
                }
                Action::Starved => {
                    if let Some(pair) = self.pairs.get(key) {
                        self.io.budget_waits += 1;
                        self.starved.push_back((key, pair.id(), now));
                    }
                }
                Action::Spare(spare) => self.spares.give(spare),
                Action::Yield => {
                    if let Some(pair) = self.pairs.get(key) {
                        self.ready.push((key, pair.id()));
                    }
                }
                Action::Close(reason) => self.close(key, reason, now),
            }
        }
    }

    /// `Action::Route`: the route of the pair's listen address that takes its server name;
    /// the pair moves there (its count, and from now on its policy).
    fn route_by_name(&mut self, key: usize, now: Instant) {
        let Some(pair) = self.pairs.get_mut(key) else {
            return;
        };
        let chosen = pair
            .listener()
            .and_then(|listener| self.routes.choose(listener, pair.server_name()));
        let Some(route) = chosen else {
            return pair.no_route(&mut self.actions);
        };
        let front = &mut self.routes[pair.route()];
        front.active -= 1;
        if front.retired && front.active == 0 {
            front.release_if_idle();
        }
        let state = &mut self.routes[route];
        state.active += 1;
        state.stats.accepted += 1;
        let policy = state.connect_policy(pair.client_addr().ip());
        pair.routed(route, policy, now, &mut self.actions);
    }

    /// `Action::Connect`: offers pair `key` the next server and opens a socket to it.
    fn connect(&mut self, key: usize, now: Instant) {
        let Some(pair) = self.pairs.get_mut(key) else {
            return;
        };
        let route = &mut self.routes[pair.route()];
        if pair.admission() == Admission::Pending {
            match route.admit(pair.client_addr().ip(), now) {
                Ok(counted) => pair.admit(counted),
                Err(reason) => {
                    self.refusals
                        .note(&route.name, pair.client_addr(), reason, now);
                    return pair.refuse(reason, &mut self.actions);
                }
            }
        }
        let Some(server) = route.pick(pair.client_addr().ip(), pair.tried(), now) else {
            info!(
                "route {}: no server left for client {}; closed",
                route.name,
                pair.client_addr()
            );
            return pair.no_server(&mut self.actions);
        };
        if !pair.tried().is_empty() {
            route.stats.retries += 1;
        }
        let options = route.socket_options(server);
        let started = connect::start(route.pool.addr(server), &options).and_then(|mut stream| {
            let token = token::pair(key, Side::Upstream);
            let interest = Interest::READABLE | Interest::WRITABLE;
            self.poll
                .registry()
                .register(&mut stream, token, interest)?;
            Ok(stream)
        });
        match started {
            Ok(stream) => {
                if let Some(keepalive) = route.keepalive() {
                    connect::set_keepalive(&stream, &keepalive);
                }
                if self.gate.short_of_sockets {
                    info!("upstream sockets available again");
                    self.gate.short_of_sockets = false;
                }
                route.acquire(server);
                let send_proxy = route.send_proxy(server);
                pair.connecting(server, stream, send_proxy, now, &mut self.actions);
            }
            Err(e) if is_local_shortage(&e) => {
                if !self.gate.short_of_sockets {
                    warn!(
                        "cannot open an upstream socket: {e}; clients wait (up to the connect \
                         timeout) and accepts pause until sockets free up"
                    );
                    self.gate.short_of_sockets = true;
                }
                pair.defer(now, &mut self.actions);
                self.pause_accepts(now);
            }
            Err(e) => {
                let route_index = pair.route();
                let client = Some(pair.client_addr());
                if let Some(until) = route.failed_at_once(server, client, &e, now) {
                    let timer = Timer::recovered(route_index, server);
                    self.timers.schedule(until, timer);
                }
                pair.failed_at_once(server, now, &mut self.actions);
            }
        }
    }

    /// Registers a client accepted on `listener` (`None`: a Unix listener) as a new pair of
    /// `route` (the listener's) and starts it.
    pub(super) fn open(
        &mut self,
        route: usize,
        listener: Option<SocketAddr>,
        mut stream: Conn,
        addr: Client,
        now: Instant,
    ) {
        let hello = listener.and_then(|at| self.routes.hello_preread(route, at));
        // Without a PROXY header to wait for, the socket's peer is the client: judge it now,
        // before anything is allocated or registered for it — unless the route is chosen
        // later by server name, and its rules with it.
        let state = &mut self.routes[route];
        let admitted = if state.settings.accept_proxy || hello.is_some() {
            None
        } else {
            match state.admit(addr.ip(), now) {
                Ok(counted) => Some(counted),
                Err(reason) => return self.refuse(route, stream, addr, reason, now),
            }
        };
        if let Conn::Tcp(tcp) = &stream {
            let _ = tcp.set_nodelay(true);
        }
        let entry = self.pairs.vacant_entry();
        let key = entry.key();
        let token = token::pair(key, Side::Client);
        let interest = Interest::READABLE | Interest::WRITABLE;
        let registered = if key > token::MAX_PAIR_KEY {
            Err(io::Error::other("the slab key exceeds the token space"))
        } else {
            self.poll.registry().register(&mut stream, token, interest)
        };
        let state = &mut self.routes[route];
        if let Err(e) = registered {
            warn!("cannot register client {addr}: {e}");
            if admitted == Some(true)
                && let Some(ip) = addr.ip()
            {
                state.release_client(ip);
            }
            return;
        }
        if let Some(keepalive) = state.keepalive() {
            connect::set_keepalive(&stream, &keepalive);
        }
        connect::set_buffers(SockRef::from(&stream), &state.client_socket_options());
        let id = self.next_id;
        self.next_id += 1;
        let mut policy = state.connect_policy(addr.ip());
        policy.preread.client_hello = hello;
        let spares = &mut self.spares;
        let pair = entry.insert(Pair::new(id, route, stream, addr, policy, spares, now));
        if let Some(counted) = admitted {
            pair.admit(counted);
        }
        // A client whose route is chosen by server name is counted accepted there.
        if hello.is_none() {
            state.stats.accepted += 1;
        }
        state.active += 1;
        pair.start(now, &mut self.actions);
        self.act(key, now);
    }

    /// Refuses a client right after accept, before anything is allocated for it: counted,
    /// one access-log line, closed with RST (a flood of refusals leaves no TIME_WAIT).
    fn refuse(
        &mut self,
        route: usize,
        stream: Conn,
        addr: Client,
        reason: CloseReason,
        now: Instant,
    ) {
        let state = &mut self.routes[route];
        state.stats.accepted += 1;
        state.stats.closed[reason.index()] += 1;
        self.refusals.note(&state.name, addr, reason, now);
        if let Some(log) = self.access_log.as_mut() {
            log.write(&Record::refused(&state.name, addr, reason));
        }
        connect::set_reset_on_close(&stream);
    }

    /// Closes every open pair with `reason`.
    pub(super) fn close_all(&mut self, reason: CloseReason, now: Instant) {
        let keys: Vec<usize> = self.pairs.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.close(key, reason, now);
        }
    }

    /// Frees pair `key` (exactly once: the slab entry is removed here and only here). After a
    /// reset, the other side is reset too, so a truncated stream never looks complete.
    pub(super) fn close(&mut self, key: usize, reason: CloseReason, now: Instant) {
        let Some(mut pair) = self.pairs.try_remove(key) else {
            return;
        };
        let route = &mut self.routes[pair.route()];
        pair.release_buffers(&mut route.buffers);
        route.active -= 1;
        let retire = route.retired && route.active == 0;
        if pair.awaiting_route() {
            // Closed before its route was chosen: accepted on the listener's route.
            route.stats.accepted += 1;
        }
        route.stats.closed[reason.index()] += 1;
        let lifetime = now.saturating_duration_since(pair.started());
        self.observed.duration.observe(lifetime.as_secs_f64());
        if pair.admission() == Admission::Counted
            && let Some(ip) = pair.client_addr().ip()
        {
            route.release_client(ip);
        }
        let (up, down) = (pair.to_upstream(), pair.to_client());
        route.stats.stalled_to_upstream += up.stalled_until(now);
        route.stats.stalled_to_client += down.stalled_until(now);
        if let Some(id) = pair.server() {
            route.release(id);
            let stats = &mut route.pool.servers[id].stats;
            stats.bytes_to_upstream += up.delivered();
            stats.bytes_to_client += down.delivered();
        }
        let upstream = pair.server().map(|id| route.pool.addr(id));
        let reset = match reason {
            CloseReason::ClientReset => pair.stream(Side::Upstream),
            CloseReason::UpstreamReset => pair.stream(Side::Client),
            _ => None,
        };
        if let Some(stream) = reset {
            connect::set_reset_on_close(stream);
        }
        let duration = now.saturating_duration_since(pair.started());
        // Only a pair that retried, or whose one server did not connect, lists the servers it
        // tried (one allocation, then).
        let tried: Vec<Endpoint> = pair
            .tried_servers()
            .iter()
            .map(|&id| route.pool.addr(id).clone())
            .collect();
        debug!(
            "closed route={} client={} upstream={} to_upstream={} to_client={} duration={:?} \
             reason={}",
            route.name,
            pair.client_addr(),
            upstream.map_or_else(|| "-".to_string(), |a| a.to_string()),
            up.delivered(),
            down.delivered(),
            duration,
            reason
        );
        if let Some(log) = self.access_log.as_mut().filter(|_| reason.is_logged()) {
            log.write(&Record {
                end: SystemTime::now(),
                route: &route.name,
                client: pair.client_addr(),
                peer: pair.peer_addr(),
                authority: pair.authority(),
                unique_id: pair.unique_id(),
                sni: pair.server_name(),
                alpn: pair.alpn(),
                upstream,
                tried: &tried,
                retries: pair.retries(),
                bytes_to_upstream: up.delivered(),
                bytes_to_client: down.delivered(),
                connect_time: pair.connect_time(),
                duration,
                ended: reason,
                peak_to_upstream: up.peak(),
                peak_to_client: down.peak(),
                stalled_to_upstream: up.stalled_until(now),
                stalled_to_client: down.stalled_until(now),
            });
        }
        if retire {
            route.release_if_idle();
        }
        // The attempt records go back to the spares once the access log has read the tries.
        if let Some(spare) = pair.take_spare() {
            self.spares.give(spare);
        }
    }
}

/// Out of descriptors, buffers or memory here: the server is not at fault, so it is neither
/// a try nor a failure for passive health (nginx does not count it either).
fn is_local_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
