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

/// Settings of a proxy loop: where to listen, where to forward, and the limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to accept clients on.
    pub listen: SocketAddr,
    /// Upstream servers; never empty, no duplicates, at least one neither `down` nor `backup`.
    pub upstreams: Vec<UpstreamSpec>,
    /// Capacity of each of a pair's two rings, in bytes (1..=`MAX_BUFFER_SIZE`).
    pub buffer_size: usize,
    /// How long one upstream connect attempt may take.
    pub connect_timeout: Duration,
    /// How long a pair may move no byte in either direction before it is closed.
    pub idle_timeout: Duration,
    /// Most pairs open at once in the process (split evenly between workers); `None` derives
    /// it from the descriptor limit at start.
    pub max_conns: Option<usize>,
    /// Independent event loops, each with its own `SO_REUSEPORT` listener (1..=1024).
    pub workers: usize,
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

impl Config {
    /// A configuration with every optional setting at its default.
    pub fn new(listen: SocketAddr, upstreams: Vec<UpstreamSpec>) -> Config {
        Config {
            listen,
            upstreams,
            buffer_size: DEFAULT_BUFFER_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_conns: None,
            workers: 1,
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
