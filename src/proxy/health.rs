//! Active health checks in the loop: when each server's next check is due, its probe, and
//! feeding results to the server's health (HAProxy's `check inter`, `rise`, `fall`).
//!
//! A server's [`CheckState`] moves `Idle` → `Scheduled` (a `Check` timer) → `Probing` (a
//! probe with a `CheckTimeout` timer) → `Scheduled` again, so each server has at most one
//! timer or probe. Checks stop for retired routes, removed or `down` servers, servers the
//! operator put in `maint`, and routes whose `health_interval` is unset (a result arriving
//! after `maint` was set is dropped). Every up/down change is logged at warn.

use super::Timer;
use super::board::HealthBoard;
use super::routes::Routes;
use crate::checks::{Finished, Probes};
use crate::stats::CheckCounts;
use crate::timers::Timers;
use crate::upstream::{CheckState, LastCheck, UpstreamId};
use log::warn;
use mio::Registry;
use std::sync::Arc;
use std::time::Instant;

/// Why a probe failed when its timeout fired.
const TIMED_OUT: &str = "timed out";

/// The checks of one loop (in the checking worker) and the board it posts changes to.
pub(super) struct Health {
    probes: Probes,
    board: Arc<HealthBoard>,
    checks: CheckCounts,
}

/// Arms `server`'s next check at `at`, tagged with a fresh number so that a timer left
/// from before its slot held another server (or from a retired route) is ignored.
fn arm(
    routes: &mut Routes,
    (route, server): (usize, UpstreamId),
    at: Instant,
    timers: &mut Timers<Timer>,
) {
    if routes[route].pool.servers.get(server).is_none() {
        return;
    }
    let tag = routes.next_check_tag();
    let s = &mut routes[route].pool.servers[server];
    s.check = CheckState::Scheduled;
    s.check_tag = tag;
    timers.schedule(at, Timer::check(route, server, tag));
}

impl Health {
    /// The checks of a loop posting to `board`.
    pub fn new(board: Arc<HealthBoard>) -> Health {
        Health {
            probes: Probes::default(),
            board,
            checks: CheckCounts::default(),
        }
    }

    /// Check results so far.
    pub fn checks(&self) -> CheckCounts {
        self.checks
    }

    /// The board shared with the other workers.
    pub fn board(&self) -> &HealthBoard {
        &self.board
    }

    /// Schedules a check now for every server of `route` that should be checked and has no
    /// check pending.
    pub fn schedule(routes: &mut Routes, route: usize, timers: &mut Timers<Timer>, now: Instant) {
        let state = &routes[route];
        if state.settings.health_interval.is_none() || state.retired {
            return;
        }
        let due: Vec<UpstreamId> = (state.pool.servers.iter().enumerate())
            .filter(|(_, s)| s.is_checked() && s.check == CheckState::Idle)
            .map(|(server, _)| server)
            .collect();
        for server in due {
            arm(routes, (route, server), now, timers);
        }
    }

    /// A `Check` timer fired: starts the probe, or records a failure if it cannot start.
    pub fn start(
        &mut self,
        routes: &mut Routes,
        (route, server, tag): (usize, UpstreamId, u32),
        registry: &Registry,
        timers: &mut Timers<Timer>,
        now: Instant,
    ) {
        let state = &mut routes[route];
        let Some(s) = state
            .pool
            .servers
            .get(server)
            .filter(|s| s.check_tag == tag)
        else {
            return;
        };
        let hello = crate::proxy_protocol::write_local(
            s.options.send_proxy.unwrap_or(state.settings.send_proxy),
        );
        let timeout = state.health_timeout();
        let options = state.socket_options(server);
        let checking = state.settings.health_interval.is_some() && !state.retired;
        let s = &mut state.pool.servers[server];
        if !checking || !s.is_checked() || s.check != CheckState::Scheduled {
            s.check = CheckState::Idle;
            return;
        }
        match self
            .probes
            .start((route, server), (&s.addr, &options), hello, registry)
        {
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
                self.finish(routes, failed, "could not start", timers, now);
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
            self.finish(routes, done, why, timers, now);
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
            self.finish(routes, done, TIMED_OUT, timers, now);
        }
    }

    /// Feeds one result to the server's active health and schedules its next check.
    fn finish(
        &mut self,
        routes: &mut Routes,
        done: Finished,
        why: &'static str,
        timers: &mut Timers<Timer>,
        now: Instant,
    ) {
        let Finished { route, server, up } = done;
        match (up, why) {
            (true, _) => self.checks.passed += 1,
            (false, TIMED_OUT) => self.checks.timed_out += 1,
            (false, _) => self.checks.failed += 1,
        }
        let state = &mut routes[route];
        let policy = state.active_policy();
        let interval = state.settings.health_interval.filter(|_| !state.retired);
        let Some(s) = state.pool.servers.get_mut(server) else {
            return;
        };
        s.check = CheckState::Idle;
        if !s.is_checked() {
            return;
        }
        s.last_check = Some(LastCheck {
            at: now,
            ok: up,
            why,
        });
        let changed = s.checks.record(up, policy);
        if let Some(now_up) = changed {
            self.board.post(&state.name, s.addr.clone(), now_up);
        }
        match changed {
            Some(true) => warn!(
                "route {}: upstream {} is up: {} consecutive checks succeeded",
                state.name, s.addr, policy.rise
            ),
            Some(false) => warn!(
                "route {}: upstream {} is down: {} consecutive checks failed (last: {why})",
                state.name, s.addr, policy.fall
            ),
            None => {}
        }
        if let Some(interval) = interval {
            arm(routes, (route, server), now + interval, timers);
        }
    }
}
