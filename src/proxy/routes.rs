//! The routes of one loop: each route's settings and its live state (pool, balancer, buffer
//! pool, counters), and applying a new configuration to them in place (reload).
//!
//! A route's index never changes: pairs, timers and tokens name routes by index. A route
//! removed by a reload is retired (it stops accepting and checking, its pairs finish
//! normally) but keeps its slot. Within a pool a server keeps its index, counters, health
//! and administrative state for as long as it stays in the configuration; a removed server
//! is marked `removed` and never picked again, so pairs still using it stay valid.

use crate::balance::Balancer;
use crate::config;
use crate::display::{OrDash, Secs};
use crate::endpoint::{Client, Endpoint};
use crate::engine::Storage;
use crate::error::CloseReason;
use crate::health::{ActivePolicy, PassivePolicy};
use crate::limits::{self, ClientKey, ClientTable, Refusal};
use crate::pair::{ConnectPolicy, Failure, HelloPreread, Preread};
use crate::pipe::{PipeCount, PipePool};
use crate::proxy_protocol::Version;
use crate::resolve::{ResolvedConfig, ResolvedServer};
use crate::ring::{Budget, BufferPool};
use crate::server_names::NameTable;
use crate::settings::RouteSettings;
use crate::settings::kinds::Named;
use crate::stats::RouteStats;
use crate::upstream::{CheckState, Pool, Upstream, UpstreamId};
use log::warn;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Index, IndexMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Ring buffers a route keeps for reuse when no connection needs them.
const MAX_FREE_BUFFERS: usize = 256;
/// Empty pipes a route keeps for reuse (two descriptors each).
const MAX_FREE_PIPES: usize = 64;

/// What every route of a loop draws storage from: the ring byte budget (`max_buffered`)
/// and the pipe count (descriptors).
#[derive(Debug, Clone)]
pub(super) struct Shares {
    pub budget: Arc<Budget>,
    pub pipes: Arc<PipeCount>,
}

impl Shares {
    /// Fresh, empty storage for a route with `settings`.
    fn storage(&self, settings: &RouteSettings) -> Storage {
        Storage {
            rings: BufferPool::new(
                settings.buffer_size,
                MAX_FREE_BUFFERS,
                Arc::clone(&self.budget),
            ),
            pipes: PipePool::new(
                settings.pipe_bytes(),
                MAX_FREE_PIPES,
                Arc::clone(&self.pipes),
            ),
            mode: settings.engine,
            fallbacks: 0,
        }
    }
}
/// Clients a route's per-client table holds in each worker (about 1.5 MiB once full).
pub(super) const CLIENT_TABLE: usize = 16_384;

/// One route's settings and live state.
pub(super) struct RouteState {
    pub name: String,
    /// Where it listens: addresses and Unix socket paths.
    pub listen: Vec<Endpoint>,
    pub settings: RouteSettings,
    pub pool: Pool,
    pub balancer: Balancer,
    pub buffers: Storage,
    /// Open connections and connection rates per client (per worker).
    pub clients: ClientTable,
    pub stats: RouteStats,
    /// Pairs open on this route.
    pub active: usize,
    /// Removed by a reload: accepts nothing, checks nothing, lets its pairs finish.
    pub retired: bool,
}

impl RouteState {
    fn new(config: &ResolvedConfig, index: usize, seed: u64, shares: &Shares) -> RouteState {
        let route = &config.config().routes[index];
        let pool = Pool::new(config.servers(index));
        RouteState {
            name: route.name.clone(),
            listen: route.endpoints(),
            balancer: Balancer::new(route.settings.balance, &pool, seed),
            buffers: shares.storage(&route.settings),
            clients: ClientTable::new(CLIENT_TABLE),
            settings: route.settings.clone(),
            stats: RouteStats::default(),
            active: 0,
            retired: false,
            pool,
        }
    }

    /// Takes route `index` of `config`: servers that stay keep their index, connections,
    /// health and counters; new ones are appended; missing ones are removed. True if
    /// anything changed.
    fn reconfigure(
        &mut self,
        config: &ResolvedConfig,
        index: usize,
        seed: u64,
        shares: &Shares,
    ) -> bool {
        let route = &config.config().routes[index];
        let fresh = config.servers(index);
        let before: Vec<ResolvedServer> = self.configured();
        let changed =
            route.settings != self.settings || route.endpoints() != self.listen || before != fresh;
        for server in &mut self.pool.servers {
            server.removed = true;
        }
        for new in fresh {
            let servers = &mut self.pool.servers;
            if let Some(old) = servers.iter_mut().find(|s| s.addr == new.addr) {
                old.configure(new);
            } else if let Some(free) = servers.iter_mut().find(|s| s.is_free()) {
                // A removed server nothing refers to any more: its slot takes the new one,
                // so churning reloads do not grow the pool.
                *free = Upstream::configured(new);
            } else {
                servers.push(Upstream::configured(new));
            }
        }
        // The operator's state lasts while the server stays in the file: one that left it
        // comes back ready.
        for server in self.pool.servers.iter_mut().filter(|s| s.removed) {
            server.admin = crate::stats::AdminState::Ready;
        }
        self.balancer = Balancer::new(route.settings.balance, &self.pool, seed);
        if route.settings.buffer_size != self.settings.buffer_size
            || route.settings.pipe_bytes() != self.settings.pipe_bytes()
        {
            self.buffers = shares.storage(&route.settings);
        }
        self.buffers.mode = route.settings.engine;
        self.settings = route.settings.clone();
        self.listen = route.endpoints();
        self.retired = false;
        changed
    }

    /// True when the route is retired and nothing refers to its slot any more: no open
    /// pair, no probe in flight. Such a slot holds no state and a new route may take it.
    fn is_free(&self) -> bool {
        self.retired
            && self.active == 0
            && self
                .pool
                .servers
                .iter()
                .all(|s| s.check != CheckState::Probing)
    }

    /// Drops the state of a retired route once nothing refers to it: servers, balancer,
    /// pooled buffers, the client table. Memory after churning reloads returns to the level
    /// of the configuration in force.
    pub fn release_if_idle(&mut self) {
        if !self.is_free() || self.pool.servers.is_empty() {
            return;
        }
        self.pool.servers = Vec::new();
        self.balancer = Balancer::new(self.settings.balance, &self.pool, 0);
        let shares = Shares {
            budget: Arc::clone(self.buffers.rings.budget()),
            pipes: Arc::clone(self.buffers.pipes.count()),
        };
        self.buffers = shares.storage(&self.settings);
        self.clients = ClientTable::new(CLIENT_TABLE);
        self.listen = Vec::new();
    }

    /// The servers in the configuration now, as resolved.
    fn configured(&self) -> Vec<ResolvedServer> {
        let current = self.pool.servers.iter().filter(|s| !s.removed);
        current
            .map(|s| ResolvedServer {
                addr: s.addr.clone(),
                options: s.options.clone(),
            })
            .collect()
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

    /// The keepalive to set on this route's sockets, if it is on: times in whole seconds,
    /// rounded up, as the kernel takes them.
    pub fn keepalive(&self) -> Option<socket2::TcpKeepalive> {
        let whole_secs =
            |d: Duration| Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0));
        let s = &self.settings;
        let mut keepalive = socket2::TcpKeepalive::new().with_time(whole_secs(s.keepalive?));
        if let Some(interval) = s.keepalive_interval {
            keepalive = keepalive.with_interval(whole_secs(interval));
        }
        if let Some(count) = s.keepalive_count {
            keepalive = keepalive.with_retries(count);
        }
        Some(keepalive)
    }

    /// How a new client from `client` starts and tries servers: refused when it may not
    /// send the PROXY header this route requires, else reading that header first. A client
    /// of a Unix listener (`None`) may send one: the socket file's mode and owner decide who
    /// connects there.
    pub fn connect_policy(&self, client: Option<IpAddr>) -> ConnectPolicy {
        let s = &self.settings;
        let preread = if !s.accept_proxy {
            Preread::default()
        } else if client.is_some_and(|ip| !self.trusts(ip)) {
            Preread {
                refuse: Some(CloseReason::Untrusted),
                ..Preread::default()
            }
        } else {
            Preread {
                proxy_header: Some(s.proxy_timeout),
                ..Preread::default()
            }
        };
        ConnectPolicy {
            idle_timeout: s.idle_timeout,
            preread,
            connect_timeout: self.settings.connect_timeout,
            tries: self.settings.tries.unwrap_or(self.pool.len()),
            tries_timeout: self.settings.tries_timeout,
            max_lifetime: self.settings.max_lifetime,
            upload_rate: self.settings.upload_rate,
            download_rate: self.settings.download_rate,
        }
    }

    /// Judges a client at `ip` by `allow`/`deny` and the per-client limits at `now`:
    /// `Ok(true)` when admitted and counted (its close must [`RouteState::release`] it),
    /// `Ok(false)` when admitted without limits, `Err` with the reason to refuse. A client
    /// without an address (of a Unix listener, no PROXY header naming one) has no rule that
    /// can judge it and is admitted uncounted.
    pub fn admit(&mut self, ip: Option<IpAddr>, now: Instant) -> Result<bool, CloseReason> {
        let Some(ip) = ip else {
            return Ok(false);
        };
        let s = &self.settings;
        if !limits::allowed(ip, &s.allow, &s.deny) {
            return Err(CloseReason::Denied);
        }
        if s.max_conns_per_ip.is_none() && s.conn_rate_per_ip.is_none() {
            return Ok(false);
        }
        let key = ClientKey::from(ip);
        match self
            .clients
            .admit(key, s.max_conns_per_ip, s.conn_rate_per_ip, now)
        {
            Ok(()) => Ok(true),
            Err(refusal) => {
                if refusal == Refusal::TableFull {
                    self.stats.client_table_full += 1;
                }
                Err(CloseReason::Limited)
            }
        }
    }

    /// A counted connection of the client at `ip` ended.
    pub fn release_client(&mut self, ip: IpAddr) {
        self.clients.release(ClientKey::from(ip));
    }

    /// True when `ip` may send a PROXY header: `proxy_trusted` is empty or lists it
    /// (IPv4-mapped IPv6 addresses match as IPv4).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let trusted = &self.settings.proxy_trusted;
        let ip = ip.to_canonical();
        trusted.is_empty() || trusted.iter().any(|net| net.contains(&ip))
    }

    /// The PROXY header server `id` is sent: its own `send_proxy`, else the route's.
    pub fn send_proxy(&self, id: UpstreamId) -> Version {
        let server = &self.pool.servers[id];
        server
            .options
            .send_proxy
            .unwrap_or(self.settings.send_proxy)
    }

    /// What is set on an upstream socket to server `id` before it connects: the source
    /// address (the server's `bind_source`, else the route's) and the kernel buffer sizes.
    pub fn socket_options(&self, id: UpstreamId) -> crate::connect::SocketOptions {
        let server = &self.pool.servers[id];
        crate::connect::SocketOptions {
            source: server.options.bind_source.or(self.settings.bind_source),
            ..self.client_socket_options()
        }
    }

    /// What is set on a socket this route accepted: the kernel buffer sizes.
    pub fn client_socket_options(&self) -> crate::connect::SocketOptions {
        crate::connect::SocketOptions {
            source: None,
            rcvbuf: self.settings.rcvbuf,
            sndbuf: self.settings.sndbuf,
        }
    }

    /// The server the balancer offers a client at `ip` that has tried `tried` (with
    /// `ip-hash`, clients without an address hash as one).
    pub fn pick(
        &mut self,
        ip: Option<IpAddr>,
        tried: &[UpstreamId],
        now: Instant,
    ) -> Option<UpstreamId> {
        let ip = ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        self.balancer.pick(&self.pool, ip, tried, now)
    }

    /// A connect to `id` started.
    pub fn acquire(&mut self, id: UpstreamId) {
        let server = &mut self.pool.servers[id];
        server.active += 1;
        server.stats.connects += 1;
        self.balancer.update(&self.pool, id);
    }

    /// A connection to `id` (or an attempt) ended.
    pub fn release(&mut self, id: UpstreamId) {
        self.pool.servers[id].active -= 1;
        self.balancer.update(&self.pool, id);
    }

    /// A connect to `id` succeeded: passive health forgives its earlier failures.
    pub fn connected(&mut self, id: UpstreamId) {
        self.pool.servers[id].passive.record_success();
    }

    /// The attempt on `id` ended with `why`: releases it and counts the failure. Returns
    /// when passive health's unavailability ends, if this failure started it.
    pub fn abandon(
        &mut self,
        id: UpstreamId,
        client: Option<Client>,
        why: &Failure,
        now: Instant,
    ) -> Option<Instant> {
        self.release(id);
        let stats = &mut self.pool.servers[id].stats;
        match why {
            Failure::TimedOut => stats.connect_timeouts += 1,
            Failure::Failed(_) => stats.connect_failures += 1,
        }
        let err = match why {
            Failure::TimedOut => "connect timed out".to_string(),
            Failure::Failed(e) => e.to_string(),
        };
        warn!(
            "route {}: client {}: connect to upstream {} failed: {err}",
            self.name,
            OrDash(client),
            self.pool.addr(id)
        );
        self.count_failure(id, now)
    }

    /// The connect to `id` failed before it started.
    pub fn failed_at_once(
        &mut self,
        id: UpstreamId,
        client: Option<Client>,
        err: &std::io::Error,
        now: Instant,
    ) -> Option<Instant> {
        warn!(
            "route {}: client {}: connect to upstream {} failed at once: {err}",
            self.name,
            OrDash(client),
            self.pool.addr(id)
        );
        self.pool.servers[id].stats.connect_failures += 1;
        self.count_failure(id, now)
    }

    fn count_failure(&mut self, id: UpstreamId, now: Instant) -> Option<Instant> {
        let policy = self.passive();
        let until = self.pool.servers[id].passive.record_failure(policy, now)?;
        warn!(
            "route {}: upstream {} unavailable for {}: {} failed connect(s) within {}",
            self.name,
            self.pool.addr(id),
            Secs(policy.fail_timeout),
            policy.max_fails,
            Secs(policy.fail_timeout)
        );
        Some(until)
    }

    /// Logs that passive health's unavailability of `id` ended, if it did.
    pub fn recovered(&self, id: UpstreamId, now: Instant) {
        let Some(server) = self.pool.servers.get(id) else {
            return;
        };
        if server.passive.is_available(now) && !self.retired {
            warn!(
                "route {}: upstream {} available again: fail-timeout elapsed",
                self.name,
                self.pool.addr(id)
            );
        }
    }

    /// The route's start line: where it listens, its servers and the main settings.
    pub fn describe(&self, listening: &[Endpoint], max_conns: usize, fd_limit: u64) -> String {
        let servers: Vec<String> = self
            .pool
            .servers
            .iter()
            .filter(|s| !s.removed)
            .map(describe_server)
            .collect();
        let listen: Vec<String> = listening.iter().map(Endpoint::to_string).collect();
        let s = &self.settings;
        format!(
            "route {}: listening on {}, upstreams [{}], balance {}, buffer-size {} bytes per \
             direction, max-conns {max_conns} (descriptor limit {fd_limit}), connect-timeout \
             {}, idle-timeout {}, {}",
            self.name,
            listen.join(", "),
            servers.join(", "),
            s.balance.name(),
            s.buffer_size,
            Secs(s.connect_timeout),
            Secs(s.idle_timeout),
            crate::engine::describe(s.engine, s.pipe_bytes()),
        )
    }
}

/// A server for the start line: its address and any non-default options.
fn describe_server(server: &Upstream) -> String {
    let mut text = server.addr.to_string();
    if server.options.weight != 1 {
        text += &format!(",weight={}", server.options.weight);
    }
    if let Some(max) = server.options.max_conns {
        text += &format!(",max-conns={max}");
    }
    if server.options.backup {
        text += ",backup";
    }
    if server.options.down {
        text += ",down";
    }
    text
}

/// Every route of a loop, retired ones included, by index.
pub(super) struct Routes {
    routes: Vec<RouteState>,
    seed: u64,
    /// The ring storage and pipes all routes of the loop may hold.
    pub shares: Shares,
    /// The last health-check tag given out.
    check_tags: u32,
    /// For each listen address whose routes choose by server name, its table (by route
    /// index, routes in force only).
    names: HashMap<SocketAddr, NameTable>,
}

/// What a reload did to the routes.
pub(super) struct Applied {
    /// For each route of the new configuration, its index here.
    pub plan: Vec<usize>,
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

impl Routes {
    /// The routes of `config`; `seed` makes balancers of different workers differ.
    pub fn new(config: &ResolvedConfig, seed: u64, shares: Shares) -> Routes {
        let routes = (0..config.config().routes.len())
            .map(|i| RouteState::new(config, i, seed, &shares))
            .collect();
        let mut routes = Routes {
            routes,
            seed,
            shares,
            check_tags: 0,
            names: HashMap::new(),
        };
        routes.index_names();
        routes
    }

    /// Rebuilds the name tables from the routes in force.
    fn index_names(&mut self) {
        let in_force = self.routes.iter().enumerate().filter(|(_, r)| !r.retired);
        // Server names are chosen on TCP addresses only (`sni` takes no Unix listener).
        let addrs: Vec<(usize, Vec<SocketAddr>, &[_])> = in_force
            .map(|(i, r)| {
                let ip = r.listen.iter().filter_map(Endpoint::ip).collect();
                (i, ip, &r.settings.sni[..])
            })
            .collect();
        let routes = addrs.iter().map(|(i, ip, sni)| (*i, &ip[..], *sni));
        // A valid configuration claims each name once per address.
        self.names = config::name_tables(routes).unwrap_or_default();
    }

    /// How a client on `listener` reads its ClientHello before its route is chosen, when
    /// the routes there choose by server name (`front`: the listener's route).
    pub fn hello_preread(&self, front: usize, listener: SocketAddr) -> Option<HelloPreread> {
        self.names.get(&listener)?;
        let s = &self.routes[front].settings;
        Some(HelloPreread {
            timeout: s.preread_timeout,
            max: s.preread_max,
            listener,
        })
    }

    /// The route of `listener` that takes server name `name` (`None`: no name or not TLS).
    pub fn choose(&self, listener: SocketAddr, name: Option<&str>) -> Option<usize> {
        self.names.get(&listener)?.choose(name)
    }

    /// A fresh tag for a health-check timer (never 0, the tag of a server without one).
    pub fn next_check_tag(&mut self) -> u32 {
        self.check_tags = self.check_tags.wrapping_add(1).max(1);
        self.check_tags
    }

    /// Applies `config`: routes are matched by name; new ones are appended, missing ones
    /// retired.
    pub fn apply(&mut self, config: &ResolvedConfig) -> Applied {
        let mut applied = Applied {
            plan: Vec::new(),
            added: 0,
            removed: 0,
            changed: 0,
        };
        for (i, route) in config.config().routes.iter().enumerate() {
            match self.routes.iter().position(|r| r.name == route.name) {
                Some(index) => {
                    let was_retired = self.routes[index].retired;
                    let shares = &self.shares;
                    if self.routes[index].reconfigure(config, i, self.seed, shares) || was_retired {
                        applied.changed += 1;
                    }
                    applied.plan.push(index);
                }
                None => {
                    applied.added += 1;
                    let route = RouteState::new(config, i, self.seed, &self.shares);
                    let plan = &applied.plan;
                    let free = (0..self.routes.len())
                        .find(|&r| self.routes[r].is_free() && !plan.contains(&r));
                    match free {
                        Some(slot) => {
                            self.routes[slot] = route;
                            applied.plan.push(slot);
                        }
                        None => {
                            applied.plan.push(self.routes.len());
                            self.routes.push(route);
                        }
                    }
                }
            }
        }
        for (index, route) in self.routes.iter_mut().enumerate() {
            if !applied.plan.contains(&index) && !route.retired {
                route.retired = true;
                applied.removed += 1;
            }
            route.release_if_idle();
        }
        self.index_names();
        applied
    }

    /// The route that listens on `addr`, among those in force; of routes sharing it by
    /// server name, the first (connections closed before their route is chosen count there).
    pub fn owner(&self, addr: &Endpoint) -> Option<usize> {
        self.routes
            .iter()
            .position(|r| !r.retired && r.listen.contains(addr))
    }

    /// Every route, retired ones included.
    pub fn iter(&self) -> impl Iterator<Item = &RouteState> {
        self.routes.iter()
    }

    /// Number of route slots.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Total buffer-pool bytes kept for reuse.
    pub fn free_buffer_bytes(&self) -> u64 {
        self.routes
            .iter()
            .map(|r| r.buffers.rings.free_bytes() as u64)
            .sum()
    }
}

impl Index<usize> for Routes {
    type Output = RouteState;
    fn index(&self, i: usize) -> &RouteState {
        &self.routes[i]
    }
}

impl IndexMut<usize> for Routes {
    fn index_mut(&mut self, i: usize) -> &mut RouteState {
        &mut self.routes[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, UpstreamSpec};

    fn test_shares() -> Shares {
        Shares {
            budget: Budget::new(usize::MAX),
            pipes: PipeCount::new(0),
        }
    }

    fn config(route: &str, first_port: u16) -> ResolvedConfig {
        let servers = (0..5)
            .map(|i| UpstreamSpec::new(format!("127.0.0.1:{}", first_port + i)))
            .collect();
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), servers);
        config.route().name = route.into();
        config.prepare().expect("a valid configuration")
    }

    #[test]
    fn a_pool_without_addresses_picks_nothing_under_every_policy() {
        use crate::settings::BalancePolicy;
        use crate::settings::kinds::Named;
        for &policy in BalancePolicy::ALL {
            let resolved = config("a", 1000);
            let mut valid = resolved.config().clone().into_inner();
            valid.routes[0].settings.balance = policy;
            let valid = valid.validate().unwrap();
            let empty = ResolvedConfig::from_pools(valid, vec![Vec::new()]);
            let mut routes = Routes::new(&empty, 1, test_shares());
            let ip = Some("127.0.0.1".parse().unwrap());
            assert_eq!(
                routes[0].pick(ip, &[], Instant::now()),
                None,
                "{}",
                policy.name()
            );
            assert_eq!(routes[0].connect_policy(ip).tries, 0);
            // Addresses arriving later are used.
            routes.apply(&config("a", 1000));
            assert!(routes[0].pick(ip, &[], Instant::now()).is_some());
        }
    }

    #[test]
    fn churning_reloads_reuse_the_slots_of_servers_and_routes_nothing_refers_to() {
        let mut routes = Routes::new(&config("a", 1000), 1, test_shares());
        for i in 1..3000u16 {
            let applied = routes.apply(&config("a", 1000 + 5 * (i % 600)));
            assert_eq!(applied.plan, vec![0]);
        }
        assert_eq!(
            routes[0].pool.servers.len(),
            5,
            "removed servers' slots were reused"
        );
        for i in 0..3000u16 {
            routes.apply(&config(&format!("r{i}"), 2000));
        }
        assert!(
            routes.len() <= 2,
            "{} route slots after renaming 3000 times",
            routes.len()
        );
        let retired = routes.iter().filter(|r| r.retired);
        assert!(
            retired.into_iter().all(|r| r.pool.servers.is_empty()),
            "retired state freed"
        );
    }

    #[test]
    fn a_server_still_in_use_keeps_its_slot() {
        let mut routes = Routes::new(&config("a", 1000), 1, test_shares());
        routes[0].acquire(2);
        let addr = routes[0].pool.addr(2).clone();
        routes.apply(&config("a", 3000));
        assert_eq!(
            *routes[0].pool.addr(2),
            addr,
            "an open connection's server stays"
        );
        assert!(routes[0].pool.servers[2].removed);
        assert_eq!(routes[0].pool.servers.len(), 6, "four reused, one appended");
        routes[0].release(2);
        routes.apply(&config("a", 4000));
        assert_eq!(
            routes[0].pool.servers.len(),
            6,
            "then its slot is reused too"
        );
    }
}
