//! Turning a [`ValidConfig`] into what the loops run: every upstream name resolved to
//! addresses, on the calling thread — never on a loop, since resolving blocks.
//!
//! A name may yield several addresses; each becomes a server with the spec's options, as in
//! nginx. An address already in the pool is kept once. Names are resolved by the system
//! resolver once per start or reload; with DNS discovery (`resolvers`, a server's `resolve`,
//! SRV names) by [`crate::discovery`], which also follows them at run time and hands the
//! loops a new `ResolvedConfig` when an address set changes.

use crate::config::{Config, ValidConfig};
use crate::endpoint::Endpoint;
use crate::error::StartError;
use crate::settings::ServerOptions;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// One resolved server: an address and the options of the spec it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedServer {
    /// Where to connect.
    pub addr: Endpoint,
    /// The spec's options.
    pub options: ServerOptions,
}

/// A validated configuration with every route's servers resolved: what
/// [`crate::proxy::Proxy`] binds and reloads. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct ResolvedConfig {
    inner: Arc<Resolved>,
}

#[derive(Debug)]
struct Resolved {
    config: ValidConfig,
    /// `pools[i]` are the servers of route `i` (empty only while every name of the route
    /// that is followed in DNS has no address).
    pools: Vec<Vec<ResolvedServer>>,
}

impl ValidConfig {
    /// Resolves every route's servers (blocking: call it off the loops). With DNS
    /// discovery in the configuration the names are asked once here and not followed; the
    /// binary follows them with a [`crate::discovery::Discovery`].
    pub fn resolve(self) -> Result<ResolvedConfig, StartError> {
        if self.uses_discovery() {
            let mut discovery = crate::discovery::Discovery::new(&self.global);
            return discovery.resolve(self, std::time::Instant::now());
        }
        let pools = self
            .routes
            .iter()
            .map(|route| resolve_pool(route.upstreams.iter().map(|s| (&s.addr, &s.options))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ResolvedConfig::from_pools(self, pools))
    }

    /// True when names go through DNS discovery: `resolvers` is set, or a server follows
    /// its name (`resolve`, an SRV name).
    pub fn uses_discovery(&self) -> bool {
        !self.global.resolvers.is_empty()
            || self
                .routes
                .iter()
                .any(|r| r.upstreams.iter().any(|s| s.follows_dns()))
    }
}

impl Config {
    /// Validates and resolves: what a test or an embedding program calls before
    /// [`crate::proxy::Proxy::bind`].
    pub fn prepare(self) -> Result<ResolvedConfig, StartError> {
        self.validate().map_err(StartError::Invalid)?.resolve()
    }
}

impl ResolvedConfig {
    /// `config` with these pools (`pools[i]` for route `i`).
    pub(crate) fn from_pools(config: ValidConfig, pools: Vec<Vec<ResolvedServer>>) -> Self {
        ResolvedConfig {
            inner: Arc::new(Resolved { config, pools }),
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> &ValidConfig {
        &self.inner.config
    }

    /// The resolved servers of route `route`, in configuration order.
    pub fn servers(&self, route: usize) -> &[ResolvedServer] {
        &self.inner.pools[route]
    }

    /// The same configuration listening on `bound` instead, in route order (the addresses a
    /// first worker bound, so that ports given as 0 are the same for every worker).
    pub fn with_listen(&self, bound: &[SocketAddr]) -> ResolvedConfig {
        let config = self.inner.config.with_bound(bound);
        ResolvedConfig {
            inner: Arc::new(Resolved {
                config,
                pools: self.inner.pools.clone(),
            }),
        }
    }
}

/// Adds `server` to `servers` unless its address is there already.
pub(crate) fn push_unique(servers: &mut Vec<ResolvedServer>, server: ResolvedServer) {
    if !servers.iter().any(|s| s.addr == server.addr) {
        servers.push(server);
    }
}

/// Where a server written `addr` is without following DNS: a Unix socket path as it is, a
/// `HOST:PORT` through the system resolver.
pub(crate) fn fixed_endpoints(addr: &str) -> Result<Vec<Endpoint>, StartError> {
    if let Some(path) = crate::endpoint::unix_path(addr) {
        return Ok(vec![Endpoint::Unix(path.into())]);
    }
    Ok(system_addrs(addr)?.into_iter().map(Endpoint::Ip).collect())
}

/// The addresses of `host` (`HOST:PORT`) from the system resolver.
fn system_addrs(host: &str) -> Result<Vec<SocketAddr>, StartError> {
    let resolve_error = |source| StartError::Resolve {
        host: host.to_string(),
        source,
    };
    let addrs: Vec<SocketAddr> = host.to_socket_addrs().map_err(resolve_error)?.collect();
    if addrs.is_empty() {
        let none = io::Error::new(io::ErrorKind::NotFound, "no address found");
        return Err(resolve_error(none));
    }
    Ok(addrs)
}

/// Resolves the servers of one pool.
fn resolve_pool<'a>(
    specs: impl Iterator<Item = (&'a String, &'a ServerOptions)>,
) -> Result<Vec<ResolvedServer>, StartError> {
    let mut servers: Vec<ResolvedServer> = Vec::new();
    for (host, options) in specs {
        for addr in fixed_endpoints(host)? {
            let options = options.clone();
            push_unique(&mut servers, ResolvedServer { addr, options });
        }
    }
    Ok(servers)
}
