//! Active health checks in the loop: when each server's next check is due, its probe, and
//! feeding results to the server's health (HAProxy's `check inter`, `rise`, `fall`).
//!
//! A server's [`CheckState`] moves `Idle` → `Scheduled` (a `Check` timer) → `Probing` (a
//! probe with a `CheckTimeout` timer) → `Scheduled` again, so each server has at most one
//! timer or probe. Checks stop for retired routes, removed or `down` servers, and routes
//! whose `health_interval` is unset. Every up/down change is logged at info.

use super::Timer;
use super::routes::Routes;
use crate::checks::{Finished, Probes};
use crate::timers::Timers;
use crate::upstream::{CheckState, UpstreamId};
use log::info;
use mio::Registry;
use std::time::Instant;

/// The checks of one loop.
#[derive(Default)]
pub(super) struct Health {
    probes: Probes,
}

impl Health {
    /// Schedules a check now for every server of `route` that should be checked and has no
    /// check pending.
    pub fn schedule(routes: &mut Routes, route: usize, timers: &mut Timers<Timer>, now: Instant) {
        let state = &mut routes[route];
        if state.settings.health_interval.is_none() || state.retired {
            return;
        }
        for (server, s) in state.pool.servers.iter_mut().enumerate() {
            if !s.options.down && !s.removed && s.check == CheckState::Idle {
                s.check = CheckState::Scheduled;
                timers.schedule(now, Timer::check(route, server));
            }
        }
    }

    /// A `Check` timer fired: starts the probe, or records a failure if it cannot start.
    pub fn start(
        &mut self,
        routes: &mut Routes,
        (route, server): (usize, UpstreamId),
        registry: &Registry,
        timers: &mut Timers<Timer>,
        now: Instant,
    ) {
        let state = &mut routes[route];
        let timeout = state.health_timeout();
        let hello = crate::proxy_protocol::write_local(state.send_proxy(server));
        let checking = state.settings.health_interval.is_some() && !state.retired;
        let s = &mut state.pool.servers[server];
        if !checking || s.removed || s.options.down || s.check != CheckState::Scheduled {
            s.check = CheckState::Idle;
            return;
        }
        match self.probes.start((route, server), s.addr, hello, registry) {
            Ok((probe, seq)) => {
                s.check = CheckState::Probing;
                let probe = probe as u32;
                timers.schedule(now + timeout, Timer::CheckTimeout { probe, seq });
            }
            Err(_) => {
                let failed = Finished {
                    route,
                    server,
                    up: false,
                };
                Health::finish(routes, failed, "could not start", timers, now);
            }
        }
    }

    /// An event on probe `key`.
    pub fn event(
        &mut self,
        routes: &mut Routes,
        key: usize,
        timers: &mut Timers<Timer>,
        now: Instant,
    ) {
        if let Some(done) = self.probes.poll(key) {
            let why = if done.up {
                "connected"
            } else {
                "connect failed"
            };
            Health::finish(routes, done, why, timers, now);
        }
    }

    /// A `CheckTimeout` fired for probe `key`, `seq`.
    pub fn time_out(
        &mut self,
        routes: &mut Routes,
        (key, seq): (usize, u64),
        timers: &mut Timers<Timer>,
        now: Instant,
    ) {
        if let Some(done) = self.probes.time_out(key, seq) {
            Health::finish(routes, done, "timed out", timers, now);
        }
    }

    /// Feeds one result to the server's active health and schedules its next check.
    fn finish(
        routes: &mut Routes,
        done: Finished,
        why: &str,
        timers: &mut Timers<Timer>,
        now: Instant,
    ) {
        let Finished { route, server, up } = done;
        let state = &mut routes[route];
        let policy = state.active_policy();
        let interval = state.settings.health_interval.filter(|_| !state.retired);
        let s = &mut state.pool.servers[server];
        match s.checks.record(up, policy) {
            Some(true) => info!(
                "upstream {} is up: {} consecutive checks succeeded",
                s.addr, policy.rise
            ),
            Some(false) => info!(
                "upstream {} is down: {} consecutive checks failed (last: {why})",
                s.addr, policy.fall
            ),
            None => {}
        }
        s.check = CheckState::Idle;
        if let Some(interval) = interval
            && !s.removed
            && !s.options.down
        {
            s.check = CheckState::Scheduled;
            timers.schedule(now + interval, Timer::check(route, server));
        }
    }
}
