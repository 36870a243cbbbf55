//! The loop's upstream side: choosing a server, connecting, retrying, and health.
//!
//! Every failed or timed-out connect counts against the server's passive health and moves
//! the client on to the next server the balancer offers, within `--tries` and
//! `--tries-timeout`. Active probes run on their own timers. Every server state change is
//! logged at info; established pairs are never touched by a health change.

use super::{Proxy, Timer};
use crate::checks::{ProbeResult, Start};
use crate::connect;
use crate::error::CloseReason;
use crate::pair::{End, Phase, Side};
use crate::token;
use crate::upstream::UpstreamId;
use log::{info, warn};
use mio::Interest;
use std::io;
use std::time::{Duration, Instant};

/// How long a client whose upstream socket could not be created waits before trying again.
const LOCAL_RETRY: Duration = Duration::from_millis(50);

/// Out of descriptors, buffers or memory here: the server is not at fault, so it is neither
/// a try nor a failure for passive health (nginx does not count it either).
fn is_local_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl Proxy {
    /// Starts connecting pair `key` to the next server the balancer offers; closes the client
    /// when none is left, `--tries` servers were tried or `--tries-timeout` has passed.
    pub(super) fn connect_next(&mut self, key: usize, now: Instant) {
        loop {
            let Some(pair) = self.pairs.get_mut(key) else {
                return;
            };
            let route = &mut self.routes[pair.route];
            let out_of_time = !pair.tried.is_empty()
                && route
                    .settings
                    .tries_timeout
                    .is_some_and(|limit| now.saturating_duration_since(pair.started) >= limit);
            let next = if pair.tried.len() >= route.tries() || out_of_time {
                None
            } else {
                route
                    .balancer
                    .pick(&route.pool, pair.client_addr.ip(), &pair.tried, now)
            };
            let Some(id) = next else {
                return self.close(key, CloseReason::ConnectFailed, now);
            };
            if !pair.tried.is_empty() {
                route.stats.retries += 1;
            }
            pair.tried.push(id);
            let addr = route.pool.addr(id);
            let started = connect::start(addr).and_then(|mut stream| {
                self.poll
                    .registry()
                    .register(
                        &mut stream,
                        token::pair(key, Side::Upstream),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .map(|()| stream)
            });
            let route_index = pair.route;
            match started {
                Err(e) if is_local_shortage(&e) => {
                    // Not the server's fault and not a try: wait for descriptors to free up,
                    // within the connect timeout, and take no new clients meanwhile.
                    pair.tried.pop();
                    let give_up = now.saturating_duration_since(pair.started)
                        >= route.settings.connect_timeout;
                    let pair_id = pair.id;
                    if !self.short_of_sockets {
                        warn!(
                            "cannot open an upstream socket: {e}; clients wait (up to the \
                             connect timeout) and accepts pause until sockets free up"
                        );
                        self.short_of_sockets = true;
                    }
                    if give_up {
                        return self.close(key, CloseReason::ConnectFailed, now);
                    }
                    self.pause_accepts(now);
                    let timer = Timer::ConnectRetry { key, id: pair_id };
                    self.timers.schedule(now + LOCAL_RETRY, timer);
                    return;
                }
                Ok(stream) => {
                    if self.short_of_sockets {
                        info!("upstream sockets available again");
                        self.short_of_sockets = false;
                    }
                    let attempt = pair.tried.len() as u32;
                    pair.upstream = Some(End::new(stream));
                    pair.upstream_id = Some(id);
                    pair.phase = Phase::Connecting { attempt };
                    route.acquire(id);
                    let timer = Timer::Connect {
                        key,
                        id: pair.id,
                        attempt,
                    };
                    self.timers
                        .schedule(now + route.settings.connect_timeout, timer);
                    return;
                }
                Err(e) => {
                    warn!("connect to upstream {addr} failed at once: {e}");
                    route.servers[id].connect_failures += 1;
                    self.connect_failed(route_index, id, now);
                }
            }
        }
    }

    /// Drops the failed upstream attempt of pair `key` and moves on to the next server.
    pub(super) fn retry(&mut self, key: usize, err: &io::Error, timed_out: bool, now: Instant) {
        let Some(pair) = self.pairs.get_mut(key) else {
            return;
        };
        if let Some(mut old) = pair.upstream.take() {
            let _ = self.poll.registry().deregister(&mut old.stream);
        }
        let route_index = pair.route;
        if let Some(id) = pair.upstream_id.take() {
            let route = &mut self.routes[route_index];
            route.release(id);
            if timed_out {
                route.servers[id].connect_timeouts += 1;
            } else {
                route.servers[id].connect_failures += 1;
            }
            warn!("connect to upstream {} failed: {err}", route.pool.addr(id));
            self.connect_failed(route_index, id, now);
        }
        self.connect_next(key, now);
    }

    /// Counts a failed connect against `server`'s passive health.
    fn connect_failed(&mut self, route: usize, server: UpstreamId, now: Instant) {
        let state = &mut self.routes[route];
        let policy = state.passive();
        if let Some(until) = state.pool.servers[server]
            .passive
            .record_failure(policy, now)
        {
            info!(
                "upstream {} unavailable for {:?}: {} failed connect(s) within {:?}",
                state.pool.addr(server),
                policy.fail_timeout,
                policy.max_fails,
                policy.fail_timeout
            );
            self.timers
                .schedule(until, Timer::Recovered { route, server });
        }
    }

    /// Logs that passive health's unavailability of `server` ended, if it did.
    pub(super) fn recovered(&mut self, route: usize, server: UpstreamId, now: Instant) {
        let state = &self.routes[route];
        if state.pool.servers[server].passive.is_available(now) && !state.retired {
            info!(
                "upstream {} available again: fail-timeout elapsed",
                state.pool.addr(server)
            );
        }
    }

    /// Starts an active check of `server`, or records a failure if it cannot start.
    pub(super) fn start_check(&mut self, route: usize, server: UpstreamId, now: Instant) {
        let state = &mut self.routes[route];
        state.check_scheduled[server] = false;
        let s = &state.pool.servers[server];
        if state.retired || s.removed || s.down || state.settings.health_interval.is_none() {
            return;
        }
        let addr = s.addr;
        match state
            .probes
            .start(route, server, addr, self.poll.registry())
        {
            Start::Started { seq } => {
                let timer = Timer::CheckTimeout { route, server, seq };
                self.timers.schedule(now + state.health_timeout(), timer);
            }
            Start::Busy => {}
            Start::Failed => self.finish_check(route, server, false, "could not start", now),
        }
    }

    /// Handles an event on `server`'s probe.
    pub(super) fn probe_event(&mut self, route: usize, server: UpstreamId, now: Instant) {
        let Some(state) = self.routes.get_mut(route) else {
            return;
        };
        match state.probes.poll(server) {
            ProbeResult::Pending => {}
            ProbeResult::Up => self.finish_check(route, server, true, "connected", now),
            ProbeResult::Down => self.finish_check(route, server, false, "connect failed", now),
        }
    }

    /// Feeds one check result to `server`'s active health and schedules the next check.
    pub(super) fn finish_check(
        &mut self,
        route: usize,
        server: UpstreamId,
        ok: bool,
        why: &str,
        now: Instant,
    ) {
        let state = &mut self.routes[route];
        let policy = state.active_policy();
        let addr = state.pool.addr(server);
        match state.pool.servers[server].checks.record(ok, policy) {
            Some(true) => info!(
                "upstream {addr} is up: {} consecutive checks succeeded",
                policy.rise
            ),
            Some(false) => info!(
                "upstream {addr} is down: {} consecutive checks failed (last: {why})",
                policy.fall
            ),
            None => {}
        }
        if let Some(interval) = state.settings.health_interval
            && !state.retired
            && !state.check_scheduled[server]
        {
            state.check_scheduled[server] = true;
            self.timers
                .schedule(now + interval, Timer::Check { route, server });
        }
    }
}
