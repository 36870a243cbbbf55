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
use crate::pair::{End, Phase};
use crate::token::{self, Side};
use crate::upstream::UpstreamId;
use log::{info, warn};
use mio::Interest;
use std::io;
use std::time::Instant;

impl Proxy {
    /// Starts connecting pair `key` to the next server the balancer offers; closes the client
    /// when none is left, `--tries` servers were tried or `--tries-timeout` has passed.
    pub(super) fn connect_next(&mut self, key: usize, now: Instant) {
        loop {
            let Some(pair) = self.pairs.get_mut(key) else {
                return;
            };
            let out_of_time = !pair.tried.is_empty()
                && self
                    .tries_timeout
                    .is_some_and(|limit| now.saturating_duration_since(pair.started) >= limit);
            let next = if pair.tried.len() >= self.tries || out_of_time {
                None
            } else {
                self.balancer
                    .pick(&self.pool, pair.client_addr.ip(), &pair.tried, now)
            };
            let Some(id) = next else {
                return self.close(key, CloseReason::ConnectFailed, now);
            };
            pair.tried.push(id);
            let addr = self.pool.addr(id);
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
            match started {
                Ok(stream) => {
                    let attempt = pair.tried.len() as u32;
                    pair.upstream = Some(End::new(stream));
                    pair.upstream_id = Some(id);
                    pair.phase = Phase::Connecting { attempt };
                    self.pool.servers[id].active += 1;
                    self.balancer.update(&self.pool, id);
                    let timer = Timer::Connect {
                        key,
                        id: pair.id,
                        attempt,
                    };
                    self.timers.schedule(now + self.connect_timeout, timer);
                    return;
                }
                Err(e) => {
                    warn!("connect to upstream {addr} failed at once: {e}");
                    self.connect_failed(id, now);
                }
            }
        }
    }

    /// Drops the failed upstream attempt of pair `key` and moves on to the next server.
    pub(super) fn retry(&mut self, key: usize, err: &io::Error, now: Instant) {
        let Some(pair) = self.pairs.get_mut(key) else {
            return;
        };
        if let Some(mut old) = pair.upstream.take() {
            let _ = self.poll.registry().deregister(&mut old.stream);
        }
        if let Some(id) = pair.upstream_id.take() {
            self.pool.servers[id].active -= 1;
            self.balancer.update(&self.pool, id);
            warn!("connect to upstream {} failed: {err}", self.pool.addr(id));
            self.connect_failed(id, now);
        }
        self.connect_next(key, now);
    }

    /// Counts a failed connect against `server`'s passive health.
    fn connect_failed(&mut self, server: UpstreamId, now: Instant) {
        let failed = self.pool.servers[server]
            .passive
            .record_failure(self.passive, now);
        if let Some(until) = failed {
            info!(
                "upstream {} unavailable for {:?}: {} failed connect(s) within {:?}",
                self.pool.addr(server),
                self.passive.fail_timeout,
                self.passive.max_fails,
                self.passive.fail_timeout
            );
            self.timers.schedule(until, Timer::Recovered { server });
        }
    }

    /// Logs that passive health's unavailability of `server` ended, if it did.
    pub(super) fn recovered(&mut self, server: UpstreamId, now: Instant) {
        if self.pool.servers[server].passive.is_available(now) {
            info!(
                "upstream {} available again: fail-timeout elapsed",
                self.pool.addr(server)
            );
        }
    }

    /// Starts an active check of `server`, or records a failure if it cannot start.
    pub(super) fn start_check(&mut self, server: UpstreamId, now: Instant) {
        let addr = self.pool.addr(server);
        match self.probes.start(server, addr, self.poll.registry()) {
            Start::Started { seq } => {
                let timer = Timer::CheckTimeout { server, seq };
                self.timers.schedule(now + self.health_timeout, timer);
            }
            Start::Busy => {}
            Start::Failed => self.finish_check(server, false, "could not start", now),
        }
    }

    /// Handles an event on `server`'s probe.
    pub(super) fn probe_event(&mut self, server: UpstreamId, now: Instant) {
        match self.probes.poll(server) {
            ProbeResult::Pending => {}
            ProbeResult::Up => self.finish_check(server, true, "connected", now),
            ProbeResult::Down => self.finish_check(server, false, "connect failed", now),
        }
    }

    /// Feeds one check result to `server`'s active health and schedules the next check.
    pub(super) fn finish_check(&mut self, server: UpstreamId, ok: bool, why: &str, now: Instant) {
        let addr = self.pool.addr(server);
        match self.pool.servers[server].checks.record(ok, self.active) {
            Some(true) => info!(
                "upstream {addr} is up: {} consecutive checks succeeded",
                self.active.rise
            ),
            Some(false) => info!(
                "upstream {addr} is down: {} consecutive checks failed (last: {why})",
                self.active.fall
            ),
            None => {}
        }
        if let Some(interval) = self.health_interval {
            self.timers
                .schedule(now + interval, Timer::Check { server });
        }
    }
}
