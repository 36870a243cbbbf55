//! The upstream servers one loop forwards to, and what it knows about each.
//!
//! A `Pool` is plain data indexed by `UpstreamId`; the balancer reads it and the loop keeps
//! `active` exact: incremented when a pair's connect starts, decremented exactly once when
//! that attempt fails or the pair closes. Health changes never touch established pairs.

use crate::config::UpstreamSpec;
use crate::error::StartError;
use crate::health::{Active, Passive};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

/// Index of a server in its [`Pool`].
pub type UpstreamId = usize;

/// One upstream server: its configuration and its live state.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Relative share of new connections (≥ 1).
    pub weight: u32,
    /// Most pairs at once on this server; `None` is unlimited.
    pub max_conns: Option<usize>,
    /// Used only when no primary server is available.
    pub backup: bool,
    /// Configured but never used.
    pub down: bool,
    /// Dropped from the configuration by a reload; kept only for pairs still using it.
    pub removed: bool,
    /// Pairs currently connecting or connected to this server.
    pub active: usize,
    /// Passive health (failed connects).
    pub passive: Passive,
    /// Active health (periodic checks).
    pub checks: Active,
}

impl Upstream {
    /// A primary server of weight 1 with no limit.
    pub fn new(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            weight: 1,
            max_conns: None,
            backup: false,
            down: false,
            removed: false,
            active: 0,
            passive: Passive::default(),
            checks: Active::default(),
        }
    }

    /// May take one more client: not `down` or removed, not at `max_conns`, not failed by
    /// checks. Passive health is judged separately, since it is ignored as a last resort.
    pub fn can_take(&self) -> bool {
        !self.down
            && !self.removed
            && self.checks.is_up()
            && self.max_conns.is_none_or(|max| self.active < max)
    }

    /// Fully healthy at `now`: [`Upstream::can_take`] and not marked by passive health.
    pub fn is_available(&self, now: Instant) -> bool {
        self.can_take() && self.passive.is_available(now)
    }
}

/// The servers of one loop, in configuration order; never empty.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The servers; `UpstreamId` indexes this.
    pub servers: Vec<Upstream>,
}

impl Pool {
    /// Resolves every spec. A name may yield several addresses; each becomes a server with the
    /// spec's options, as in nginx. An address already in the pool is kept once.
    pub fn resolve(specs: &[UpstreamSpec]) -> Result<Pool, StartError> {
        let mut servers: Vec<Upstream> = Vec::new();
        for spec in specs {
            let addrs: Vec<SocketAddr> = spec
                .addr
                .to_socket_addrs()
                .map_err(|source| StartError::Resolve {
                    host: spec.addr.clone(),
                    source,
                })?
                .collect();
            if addrs.is_empty() {
                return Err(StartError::Resolve {
                    host: spec.addr.clone(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no address found"),
                });
            }
            for addr in addrs {
                if !servers.iter().any(|s| s.addr == addr) {
                    servers.push(Upstream {
                        weight: spec.weight,
                        max_conns: spec.max_conns,
                        backup: spec.backup,
                        down: spec.down,
                        ..Upstream::new(addr)
                    });
                }
            }
        }
        Ok(Pool { servers })
    }

    /// A pool of plain servers (weight 1, primary), for tests and benchmarks.
    pub fn from_addrs(addrs: impl IntoIterator<Item = SocketAddr>) -> Pool {
        Pool {
            servers: addrs.into_iter().map(Upstream::new).collect(),
        }
    }

    /// Number of servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// True when the pool has no server (never, once resolved).
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The server's address.
    pub fn addr(&self, id: UpstreamId) -> SocketAddr {
        self.servers[id].addr
    }
}
