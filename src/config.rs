//! Validated settings for one proxy loop, as plain data.
//!
//! Every field has already passed validation when a `Config` exists; defaults follow nginx's
//! `stream` module and HAProxy where they have an equivalent (see `Config::new`).

use std::net::SocketAddr;
use std::time::Duration;

/// Default bytes per direction per connection: nginx `proxy_buffer_size`, HAProxy `tune.bufsize`.
pub const DEFAULT_BUFFER_SIZE: usize = 16 * 1024;
/// Largest accepted `--buffer-size`.
pub const MAX_BUFFER_SIZE: usize = 256 * 1024 * 1024;
/// Default upstream connect timeout (HAProxy `timeout connect` is commonly 5s).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default idle timeout: nginx `proxy_timeout` is 10 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default listen backlog.
pub const DEFAULT_BACKLOG: u32 = 1024;
/// Descriptors kept aside from `--max-conns` for listeners, the poller, logs and retries.
pub const RESERVED_FDS: u64 = 32;

/// One `--upstream` as the user wrote it: `HOST:PORT` and its server options, resolved when
/// the proxy starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// `host:port`, `a.b.c.d:port` or `[v6]:port`, syntactically checked.
    pub addr: String,
    /// `weight=N`, at least 1 (default 1).
    pub weight: u32,
    /// `max-conns=N`; `None` is unlimited.
    pub max_conns: Option<usize>,
    /// `backup`: used only when every primary is unavailable.
    pub backup: bool,
    /// `down`: configured but never used.
    pub down: bool,
}

impl UpstreamSpec {
    /// A primary server of weight 1 without limits.
    pub fn new(addr: impl Into<String>) -> UpstreamSpec {
        UpstreamSpec {
            addr: addr.into(),
            weight: 1,
            max_conns: None,
            backup: false,
            down: false,
        }
    }
}

impl From<SocketAddr> for UpstreamSpec {
    fn from(addr: SocketAddr) -> Self {
        UpstreamSpec::new(addr.to_string())
    }
}

/// How the balancer picks a server (`--balance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BalancePolicy {
    /// Smooth weighted round robin, as nginx.
    #[default]
    RoundRobin,
    /// Fewest active connections relative to weight; ties in turn.
    LeastConn,
    /// Consistent hashing of the client address (Ketama-style ring).
    IpHash,
    /// Power of two random choices, by active connections.
    RandomTwo,
}

impl BalancePolicy {
    /// Every policy.
    pub const ALL: [BalancePolicy; 4] = [
        BalancePolicy::RoundRobin,
        BalancePolicy::LeastConn,
        BalancePolicy::IpHash,
        BalancePolicy::RandomTwo,
    ];

    /// The policy spelled `s` (as [`BalancePolicy::as_str`] spells it).
    pub fn parse(s: &str) -> Option<BalancePolicy> {
        BalancePolicy::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The `--balance` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BalancePolicy::RoundRobin => "round-robin",
            BalancePolicy::LeastConn => "least-conn",
            BalancePolicy::IpHash => "ip-hash",
            BalancePolicy::RandomTwo => "random-two",
        }
    }
}

/// Default time a graceful stop waits for open connections (`--drain-timeout`).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole configuration: process-wide settings and one or more routes.
///
/// Invariants once validated ([`Config::validate`]): at least one route, route names unique,
/// each listen address used by one route only, and every route's pool valid
/// ([`validate_pool`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Settings that apply to the whole process.
    pub global: Global,
    /// The routes: listeners and the pool they forward to.
    pub routes: Vec<Route>,
}

/// Process-wide settings (the file's top-level keys).
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Most pairs open at once in the process (split evenly between workers); `None` derives
    /// it from the descriptor limit at start.
    pub max_conns: Option<usize>,
    /// Independent event loops, each with its own `SO_REUSEPORT` listeners (1..=1024).
    pub workers: usize,
    /// Where to write one line per finished connection: a path, or `-` for stdout.
    pub access_log: Option<String>,
    /// Access log line format.
    pub access_log_format: LogFormat,
    /// Address serving Prometheus metrics on `/metrics`.
    pub metrics: Option<SocketAddr>,
    /// How long a graceful stop lets open connections finish.
    pub drain_timeout: Duration,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            max_conns: None,
            workers: 1,
            access_log: None,
            access_log_format: LogFormat::Text,
            metrics: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// Access log line format (`--access-log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Space-separated fields in the spirit of nginx's stream log.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    /// The spelling [`LogFormat::parse`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// One route: where to listen, where to forward, and the per-connection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Unique name, used in logs and metrics.
    pub name: String,
    /// Addresses to accept clients on; never empty.
    pub listen: Vec<SocketAddr>,
    /// Upstream servers; valid by [`validate_pool`].
    pub upstreams: Vec<UpstreamSpec>,
    /// Capacity of each of a pair's two rings, in bytes (1..=`MAX_BUFFER_SIZE`).
    pub buffer_size: usize,
    /// How long one upstream connect attempt may take.
    pub connect_timeout: Duration,
    /// How long a pair may move no byte in either direction before it is closed.
    pub idle_timeout: Duration,
    /// Listen backlog.
    pub backlog: u32,
    /// Balancing policy.
    pub balance: BalancePolicy,
    /// Most servers tried per client (`None`: every server once), nginx `proxy_next_upstream_tries`.
    pub tries: Option<usize>,
    /// No new attempt after this long since the client arrived, nginx `proxy_next_upstream_timeout`.
    pub tries_timeout: Option<Duration>,
    /// Passive health: failed connects within `fail_timeout` that mark a server unavailable.
    pub max_fails: u32,
    /// Passive health window and unavailability period.
    pub fail_timeout: Duration,
    /// Active health checks: period (`None`: no checks).
    pub health_interval: Option<Duration>,
    /// Active health checks: connect timeout (`None`: `connect_timeout`).
    pub health_timeout: Option<Duration>,
    /// Consecutive successful checks to bring a server up.
    pub health_rise: u32,
    /// Consecutive failed checks to take a server down.
    pub health_fall: u32,
}

impl Route {
    /// A route with every optional setting at its default.
    pub fn new(
        name: impl Into<String>,
        listen: Vec<SocketAddr>,
        upstreams: Vec<UpstreamSpec>,
    ) -> Route {
        Route {
            name: name.into(),
            listen,
            upstreams,
            buffer_size: DEFAULT_BUFFER_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            backlog: DEFAULT_BACKLOG,
            balance: BalancePolicy::RoundRobin,
            tries: None,
            tries_timeout: None,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            health_interval: None,
            health_timeout: None,
            health_rise: 2,
            health_fall: 3,
        }
    }
}

impl Config {
    /// One route named `default` with every optional setting at its default: what a command
    /// line without `--config` describes.
    pub fn new(listen: SocketAddr, upstreams: Vec<UpstreamSpec>) -> Config {
        Config {
            global: Global::default(),
            routes: vec![Route::new("default", vec![listen], upstreams)],
        }
    }

    /// The first route (the only one without a configuration file).
    pub fn route(&mut self) -> &mut Route {
        &mut self.routes[0]
    }

    /// Checks what spans routes: at least one route, unique names, each listen address in one
    /// route only (port 0 excepted), every pool valid. The error says what is wrong, naming the route.
    pub fn validate(&self) -> Result<(), String> {
        if self.routes.is_empty() {
            return Err("at least one route is needed".into());
        }
        let mut seen = std::collections::HashSet::new();
        for route in &self.routes {
            if !seen.insert(route.name.as_str()) {
                return Err(format!("route name '{}' is used twice", route.name));
            }
            if route.listen.is_empty() {
                return Err(format!("route '{}' has no listen address", route.name));
            }
            validate_pool(&route.upstreams).map_err(|e| format!("route '{}': {e}", route.name))?;
        }
        let mut addrs = std::collections::HashSet::new();
        for (route, addr) in self
            .routes
            .iter()
            .flat_map(|r| r.listen.iter().map(move |a| (r, a)))
        {
            // Port 0 asks the kernel for a fresh port each time, so it never clashes.
            if addr.port() != 0 && !addrs.insert(*addr) {
                return Err(format!(
                    "listen address {addr} is used twice (route '{}')",
                    route.name
                ));
            }
        }
        Ok(())
    }
}

/// Checks a pool: at least one server, none listed twice, at least one neither `down` nor
/// `backup`. The error completes "expected ...".
pub fn validate_pool(servers: &[UpstreamSpec]) -> Result<(), String> {
    if servers.is_empty() {
        return Err("at least one server".into());
    }
    for (i, server) in servers.iter().enumerate() {
        if servers[..i].iter().any(|other| other.addr == server.addr) {
            return Err(format!(
                "each server listed once, but {} is listed twice",
                server.addr
            ));
        }
    }
    if servers.iter().all(|s| s.down || s.backup) {
        return Err("at least one server that is neither down nor backup".into());
    }
    Ok(())
}

/// The default `--max-conns` for a descriptor limit: each pair costs two descriptors, after
/// a small reserve (HAProxy derives `maxconn` from `ulimit -n` the same way).
pub fn default_max_conns(fd_limit: u64) -> usize {
    (fd_limit.saturating_sub(RESERVED_FDS) / 2).max(1) as usize
}

/// Raises the soft descriptor limit to the hard limit and returns the resulting soft limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    if soft < hard && rlimit::Resource::NOFILE.set(hard, hard).is_ok() {
        return Ok(hard);
    }
    Ok(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_max_conns_leaves_a_reserve_and_halves() {
        assert_eq!(default_max_conns(20_000), (20_000 - 32) / 2);
        assert_eq!(default_max_conns(1024), 496);
        assert_eq!(default_max_conns(10), 1);
    }
}
