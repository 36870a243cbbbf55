//! The admin API's questions and changes, as one loop answers them: its view of the servers
//! and of its open connections, a server's administrative state, and closing connections
//! (`ended=admin`). The admin thread asks every worker and merges the answers
//! ([`crate::admin`]); here only this loop's state is read or changed, on its own thread.
//!
//! Only routes in force and servers still configured are named; a server is found by its
//! route's name and its address, as each worker numbers its servers itself.

use super::Proxy;
use super::control::{Missing, ServerRef};
use super::health::Health;
use super::routes::RouteState;
use crate::buffer::Buffer;
use crate::conn::Conn;
use crate::display::Secs;
use crate::engine::Engine;
use crate::error::CloseReason;
use crate::pair::{Pair, Phase};
use crate::stats::{
    AdminState, ConnFilter, ConnView, ServerHealth, ServerView, conn_id, split_conn_id,
};
use crate::upstream::{Upstream, UpstreamId};
use std::time::Instant;

impl Proxy {
    /// This loop's view of every configured server of every route in force.
    pub(super) fn admin_servers(&self, now: Instant) -> Vec<ServerView> {
        let routes = self.routes.iter().filter(|r| !r.retired);
        routes
            .flat_map(|route| {
                let servers = route.pool.servers.iter().filter(|s| !s.removed);
                servers.map(move |s| {
                    let (health, why) = health(route, s, now);
                    ServerView {
                        route: route.name.clone(),
                        server: s.addr.clone(),
                        state: s.admin_state(),
                        health,
                        why,
                        active: s.active as u64,
                        total: s.stats.connects,
                        last_check: s.last_check.map(|c| now.saturating_duration_since(c.at)),
                    }
                })
            })
            .collect()
    }

    /// Sets the operator's state of a server; answers the state it had. Leaving `maint`
    /// restarts its checks in the checking worker.
    pub(super) fn admin_set_state(
        &mut self,
        at: &ServerRef,
        state: AdminState,
        now: Instant,
    ) -> Result<AdminState, Missing> {
        let (route, id) = self.find_server(at)?;
        let server = &mut self.routes[route].pool.servers[id];
        let before = server.admin_state();
        server.set_admin_state(state);
        if self.checks_here() {
            Health::schedule(&mut self.routes, route, &mut self.timers, now);
        }
        Ok(before)
    }

    /// Closes every open connection of a server (connecting ones too); answers how many.
    pub(super) fn admin_shutdown(
        &mut self,
        at: &ServerRef,
        now: Instant,
    ) -> Result<usize, Missing> {
        let (route, id) = self.find_server(at)?;
        let keys: Vec<usize> = (self.pairs.iter())
            .filter(|(_, p)| p.route() == route && p.server() == Some(id))
            .map(|(key, _)| key)
            .collect();
        for &key in &keys {
            self.close(key, CloseReason::Admin, now);
        }
        Ok(keys.len())
    }

    /// The open connections of this loop that pass `filter`; with `busiest`, only that many,
    /// most bytes buffered first; with `limit`, only that many, lowest ids first (the views
    /// of the others are never built).
    pub(super) fn admin_connections(&self, filter: &ConnFilter, now: Instant) -> Vec<ConnView> {
        let wanted = |pair: &Pair<Conn, Engine>| {
            let route = &self.routes[pair.route()];
            filter.route.as_ref().is_none_or(|name| *name == route.name)
                && (filter.server.as_ref())
                    .is_none_or(|addr| pair.server().map(|id| route.pool.addr(id)) == Some(addr))
                && (filter.older)
                    .is_none_or(|older| now.saturating_duration_since(pair.started()) >= older)
        };
        let mut keys: Vec<(u64, usize)> = (self.pairs.iter())
            .map(|(key, pair)| (conn_id(self.worker, pair.id()), key, pair))
            .filter(|&(id, _, pair)| filter.after.is_none_or(|after| id > after) && wanted(pair))
            .map(|(id, key, _)| (id, key))
            .collect();
        if let Some(n) = filter.limit.filter(|&n| n < keys.len()) {
            keys.select_nth_unstable(n);
            keys.truncate(n);
        }
        keys.sort_unstable();
        let mut out: Vec<ConnView> = (keys.into_iter())
            .map(|(id, key)| self.conn_view(id, &self.pairs[key], now))
            .collect();
        if let Some(n) = filter.busiest {
            out.sort_by_key(|c| std::cmp::Reverse(c.buffered()));
            out.truncate(n);
        }
        out
    }

    /// The admin's view of one open pair with process-wide id `id`.
    fn conn_view(&self, id: u64, pair: &Pair<Conn, Engine>, now: Instant) -> ConnView {
        let route = &self.routes[pair.route()];
        let (up, down) = (pair.to_upstream(), pair.to_client());
        ConnView {
            id,
            worker: self.worker,
            route: route.name.clone(),
            client: pair.client_addr(),
            upstream: pair.server().map(|id| route.pool.addr(id).clone()),
            age: now.saturating_duration_since(pair.started()),
            phase: match pair.phase() {
                Phase::Preread => "preread",
                Phase::Connecting { .. } => "connecting",
                Phase::Streaming => "streaming",
            },
            up: up.delivered(),
            down: down.delivered(),
            fill_up: up.buffer().len(),
            fill_down: down.buffer().len(),
            peak_up: up.peak(),
            peak_down: down.peak(),
            stall_up: up.stalled_until(now),
            stall_down: down.stalled_until(now),
            buffer_size: route.settings.most_held(),
        }
    }

    /// Closes the connection with process-wide id `id` if this loop carries it.
    pub(super) fn admin_close(&mut self, id: u64, now: Instant) -> bool {
        let (worker, pair_id) = split_conn_id(id);
        if worker != self.worker {
            return false;
        }
        let key = self.pairs.iter().find(|(_, p)| p.id() == pair_id);
        match key.map(|(key, _)| key) {
            Some(key) => {
                self.close(key, CloseReason::Admin, now);
                true
            }
            None => false,
        }
    }

    /// The route index and server index of `at`, among routes in force and servers
    /// configured.
    fn find_server(&self, at: &ServerRef) -> Result<(usize, UpstreamId), Missing> {
        let route = (0..self.routes.len())
            .find(|&r| !self.routes[r].retired && self.routes[r].name == at.route)
            .ok_or(Missing::Route)?;
        let servers = &self.routes[route].pool.servers;
        let id = (servers.iter())
            .position(|s| !s.removed && s.addr == at.server)
            .ok_or(Missing::Server)?;
        Ok((route, id))
    }
}

/// A server's health as this loop knows it, and why.
fn health(route: &RouteState, s: &Upstream, now: Instant) -> (ServerHealth, Option<String>) {
    let checked = route.settings.health_interval.is_some();
    let last = s.last_check.map(|c| c.why);
    if s.options.down {
        let why = "down = true in the configuration: not used, not checked";
        return (ServerHealth::Unavailable, Some(why.into()));
    }
    if !s.checks.is_up() {
        let fall = route.settings.health_fall;
        let why = match last {
            Some(last) => format!("{fall} consecutive checks failed (last: {last})"),
            None => format!("{fall} consecutive checks failed"),
        };
        return (ServerHealth::Down, Some(why));
    }
    if !s.passive.is_available(now) {
        let policy = route.passive();
        let why = format!(
            "{} failed connect(s) within {}: not used until fail_timeout passes",
            policy.max_fails,
            Secs(policy.fail_timeout)
        );
        return (ServerHealth::Unavailable, Some(why));
    }
    let why = match (checked, s.admin_state(), last) {
        (true, AdminState::Maint, _) => Some("maint: not checked".to_string()),
        (true, _, Some(last)) => Some(format!("last check: {last}")),
        _ => None,
    };
    (ServerHealth::Up, why)
}
