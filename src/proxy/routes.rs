//! Routes at run time, and applying a new configuration in place (reload).
//!
//! A route's index in `Proxy::routes` never changes: pairs, timers and tokens name routes by
//! index. A route removed by a reload is retired (it stops accepting and checking, its pairs
//! finish normally) but keeps its slot. Within a pool, a server keeps its index, counters
//! and health for as long as it stays in the configuration; a removed server is marked
//! `removed` and never picked again, so pairs still using it stay valid.

use super::setup::bind_listener;
use super::{Proxy, RunState, Timer};
use crate::balance::Balancer;
use crate::checks::Probes;
use crate::config::{Config, Route};
use crate::error::StartError;
use crate::health::{ActivePolicy, PassivePolicy};
use crate::ring::BufferPool;
use crate::stats::{RouteStats, ServerStats};
use crate::token;
use crate::upstream::{Pool, UpstreamId};
use log::{error, info};
use mio::net::TcpListener;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Ring buffers a route keeps for reuse when no connection needs them.
const MAX_FREE_BUFFERS: usize = 256;

/// One route's settings and live state.
pub(super) struct RouteState {
    pub settings: Route,
    pub pool: Pool,
    pub balancer: Balancer,
    pub probes: Probes,
    pub buffers: BufferPool,
    pub stats: RouteStats,
    /// Counters per server, indexed like `pool.servers`.
    pub servers: Vec<ServerStats>,
    /// Health-check timers pending, per server (at most one each).
    pub check_scheduled: Vec<bool>,
    /// Pairs open on this route.
    pub active: usize,
    /// Removed by a reload: accepts nothing, checks nothing, lets its pairs finish.
    pub retired: bool,
}

impl RouteState {
    /// Resolves the pool of `settings` and builds the route's state.
    pub fn new(settings: Route, seed: u64) -> Result<RouteState, StartError> {
        let pool = resolve(&settings)?;
        Ok(RouteState::with_pool(settings, pool, seed))
    }

    fn with_pool(settings: Route, pool: Pool, seed: u64) -> RouteState {
        RouteState {
            balancer: Balancer::new(settings.balance, &pool, seed),
            probes: Probes::new(pool.len()),
            buffers: BufferPool::new(settings.buffer_size, MAX_FREE_BUFFERS),
            stats: RouteStats::default(),
            servers: vec![ServerStats::default(); pool.len()],
            check_scheduled: vec![false; pool.len()],
            active: 0,
            retired: false,
            pool,
            settings,
        }
    }

    /// Takes `settings` and the freshly resolved `fresh` pool: servers that stay keep their
    /// index, connections and health; new ones are appended; missing ones are removed.
    fn reconfigure(&mut self, settings: Route, fresh: Pool, seed: u64) {
        for server in &mut self.pool.servers {
            server.removed = true;
        }
        for new in fresh.servers {
            match self.pool.servers.iter_mut().find(|s| s.addr == new.addr) {
                Some(old) => {
                    old.weight = new.weight;
                    old.max_conns = new.max_conns;
                    old.backup = new.backup;
                    old.down = new.down;
                    old.removed = false;
                }
                None => self.pool.servers.push(new),
            }
        }
        let servers = self.pool.len();
        self.servers.resize(servers, ServerStats::default());
        self.check_scheduled.resize(servers, false);
        self.probes.resize(servers);
        self.balancer = Balancer::new(settings.balance, &self.pool, seed);
        if settings.buffer_size != self.settings.buffer_size {
            self.buffers = BufferPool::new(settings.buffer_size, MAX_FREE_BUFFERS);
        }
        self.settings = settings;
        self.retired = false;
    }

    /// Passive health settings.
    pub fn passive(&self) -> PassivePolicy {
        PassivePolicy {
            max_fails: self.settings.max_fails,
            fail_timeout: self.settings.fail_timeout,
        }
    }

    /// Active health settings.
    pub fn active_policy(&self) -> ActivePolicy {
        ActivePolicy {
            rise: self.settings.health_rise,
            fall: self.settings.health_fall,
        }
    }

    /// Health-check timeout.
    pub fn health_timeout(&self) -> Duration {
        self.settings
            .health_timeout
            .unwrap_or(self.settings.connect_timeout)
    }

    /// Most servers one client may try.
    pub fn tries(&self) -> usize {
        self.settings.tries.unwrap_or(self.pool.len())
    }

    /// A connect to `id` started.
    pub fn acquire(&mut self, id: UpstreamId) {
        self.pool.servers[id].active += 1;
        self.servers[id].connects += 1;
        self.balancer.update(&self.pool, id);
    }

    /// A connection to `id` (or an attempt) ended.
    pub fn release(&mut self, id: UpstreamId) {
        self.pool.servers[id].active -= 1;
        self.balancer.update(&self.pool, id);
    }

    /// The servers for the start line: address and any non-default options.
    pub fn describe_servers(&self) -> String {
        let described: Vec<String> = self
            .pool
            .servers
            .iter()
            .filter(|s| !s.removed)
            .map(|server| {
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
            })
            .collect();
        described.join(", ")
    }
}

/// Resolves a route's pool; more servers than health-check tokens can address is an error.
fn resolve(settings: &Route) -> Result<Pool, StartError> {
    let pool = Pool::resolve(&settings.upstreams)?;
    if pool.len() > token::MAX_SERVERS {
        return Err(StartError::Setup {
            what: "address that many servers",
            source: std::io::Error::other(format!("more than {}", token::MAX_SERVERS)),
        });
    }
    Ok(pool)
}

impl Proxy {
    /// Schedules a health check now for every server of `route` that needs one and has none
    /// pending.
    pub(super) fn schedule_checks(&mut self, route: usize, now: Instant) {
        let state = &mut self.routes[route];
        if state.settings.health_interval.is_none() || state.retired {
            return;
        }
        for server in 0..state.pool.len() {
            let s = &state.pool.servers[server];
            if !s.down && !s.removed && !state.check_scheduled[server] {
                state.check_scheduled[server] = true;
                self.timers.schedule(now, Timer::Check { route, server });
            }
        }
    }

    /// Applies `config` in place: new routes listen, removed routes stop accepting and let
    /// their pairs finish, changed pools and settings apply to new connections, listeners
    /// that stay keep their sockets. If anything fails (a name that does not resolve, an
    /// address that cannot be bound) nothing changes and the error is returned.
    pub(super) fn reload(&mut self, config: Config, now: Instant) -> Result<String, StartError> {
        if self.state != RunState::Running {
            return Err(StartError::Setup {
                what: "reload while stopping",
                source: std::io::Error::other("the proxy is draining"),
            });
        }
        config.validate().map_err(StartError::Invalid)?;
        let pools = config
            .routes
            .iter()
            .map(resolve)
            .collect::<Result<Vec<Pool>, _>>()?;
        let current: Vec<SocketAddr> = self.listeners.iter().map(|(_, l)| l.addr).collect();
        let mut bound: Vec<(TcpListener, usize)> = Vec::new();
        let mut plan: Vec<usize> = Vec::new();
        for (new_index, route) in config.routes.iter().enumerate() {
            let index = self
                .routes
                .iter()
                .position(|r| r.settings.name == route.name)
                .unwrap_or(
                    self.routes.len() + plan.iter().filter(|&&i| i >= self.routes.len()).count(),
                );
            plan.push(index);
            for &addr in route.listen.iter().filter(|a| !current.contains(a)) {
                let socket = bind_listener(addr, route.backlog, self.workers() > 1)
                    .map_err(|source| StartError::Bind { addr, source })?;
                bound.push((socket, new_index));
            }
        }
        if config.global.workers != self.global.workers {
            info!(
                "workers {} -> {}: takes effect at the next start",
                self.global.workers, config.global.workers
            );
        }
        let mut global = config.global.clone();
        global.workers = self.global.workers;
        self.apply_global(&global)?;

        let (mut added, mut changed) = (0, 0);
        for ((route, pool), &index) in config.routes.into_iter().zip(pools).zip(&plan) {
            if index < self.routes.len() {
                if self.routes[index].settings != route {
                    changed += 1;
                }
                self.routes[index].reconfigure(route, pool, self.seed);
            } else {
                added += 1;
                self.routes
                    .push(RouteState::with_pool(route, pool, self.seed));
            }
        }
        let mut removed = 0;
        for (index, route) in self.routes.iter_mut().enumerate() {
            if !plan.contains(&index) && !route.retired {
                route.retired = true;
                removed += 1;
            }
        }
        let routes = &self.routes;
        let mut closed = Vec::new();
        for (key, listener) in self.listeners.iter_mut() {
            let owner = plan
                .iter()
                .copied()
                .find(|&r| routes[r].settings.listen.contains(&listener.addr));
            match owner {
                Some(route) => {
                    listener.route = route;
                    // listen() again on a listening socket just sets its backlog.
                    let backlog = routes[route].settings.backlog.min(i32::MAX as u32) as i32;
                    let _ = socket2::SockRef::from(&listener.socket).listen(backlog);
                }
                None => closed.push(key),
            }
        }
        for key in &closed {
            let mut listener = self.listeners.remove(*key);
            let _ = self.poll.registry().deregister(&mut listener.socket);
        }
        let opened = bound.len();
        for (socket, new_index) in bound {
            if let Err(e) = self.add_listener(socket, plan[new_index]) {
                error!("cannot register a new listener: {e}");
            }
        }
        for &route in &plan {
            self.schedule_checks(route, now);
        }
        Ok(format!(
            "{} route(s): {added} added, {removed} removed, {changed} changed; \
             listeners: {opened} opened, {} closed",
            plan.len(),
            closed.len()
        ))
    }
}
