//! Turning a [`ValidConfig`] into what the loops run: every upstream name resolved to
//! addresses, once per start or reload, on the calling thread — never on a loop, since the
//! system resolver blocks.
//!
//! A name may yield several addresses; each becomes a server with the spec's options, as in
//! nginx. An address already in the pool is kept once.

use crate::config::{Config, ValidConfig};
use crate::error::StartError;
use crate::settings::ServerOptions;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// One resolved server: an address and the options of the spec it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedServer {
    /// Where to connect.
    pub addr: SocketAddr,
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
    /// `pools[i]` are the servers of route `i`, never empty.
    pools: Vec<Vec<ResolvedServer>>,
}

impl ValidConfig {
    /// Resolves every route's servers (blocking: call it off the loops).
    pub fn resolve(self) -> Result<ResolvedConfig, StartError> {
        let pools = self
            .routes
            .iter()
            .map(|route| resolve_pool(route.upstreams.iter().map(|s| (&s.addr, &s.options))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ResolvedConfig {
            inner: Arc::new(Resolved {
                config: self,
                pools,
            }),
        })
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

/// Resolves the servers of one pool.
fn resolve_pool<'a>(
    specs: impl Iterator<Item = (&'a String, &'a ServerOptions)>,
) -> Result<Vec<ResolvedServer>, StartError> {
    let mut servers: Vec<ResolvedServer> = Vec::new();
    for (host, options) in specs {
        let resolve_error = |source| StartError::Resolve {
            host: host.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = host.to_socket_addrs().map_err(resolve_error)?.collect();
        if addrs.is_empty() {
            let none = io::Error::new(io::ErrorKind::NotFound, "no address found");
            return Err(resolve_error(none));
        }
        for addr in addrs {
            if !servers.iter().any(|s| s.addr == addr) {
                servers.push(ResolvedServer {
                    addr,
                    options: options.clone(),
                });
            }
        }
    }
    Ok(servers)
}
