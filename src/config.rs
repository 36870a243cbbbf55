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

/// One `--upstream` as the user wrote it: `HOST:PORT`, resolved when the proxy starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// `host:port`, `a.b.c.d:port` or `[v6]:port`, syntactically checked.
    pub addr: String,
}

impl From<SocketAddr> for UpstreamSpec {
    fn from(addr: SocketAddr) -> Self {
        UpstreamSpec {
            addr: addr.to_string(),
        }
    }
}

/// Settings of a proxy loop: where to listen, where to forward, and the limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to accept clients on.
    pub listen: SocketAddr,
    /// Upstream servers, tried in round-robin order; never empty.
    pub upstreams: Vec<UpstreamSpec>,
    /// Capacity of each of a pair's two rings, in bytes (1..=`MAX_BUFFER_SIZE`).
    pub buffer_size: usize,
    /// How long one upstream connect attempt may take.
    pub connect_timeout: Duration,
    /// How long a pair may move no byte in either direction before it is closed.
    pub idle_timeout: Duration,
    /// Most pairs open at once; `None` derives it from the descriptor limit at start.
    pub max_conns: Option<usize>,
    /// Listen backlog.
    pub backlog: u32,
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
            backlog: DEFAULT_BACKLOG,
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
