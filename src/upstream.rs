//! The upstream servers one loop forwards to, and what it knows about each.
//!
//! A `Pool` is plain data indexed by `UpstreamId`; the balancer reads it and the loop keeps
//! `active` exact: incremented when a pair's connect starts, decremented exactly once when
//! that attempt fails or the pair closes.

use crate::config::UpstreamSpec;
use crate::error::StartError;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Index of a server in its [`Pool`].
pub type UpstreamId = usize;

/// One upstream server address.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Pairs currently connecting or connected to this server.
    pub active: usize,
}

/// The servers of one loop, in configuration order; never empty.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The servers; `UpstreamId` indexes this.
    pub servers: Vec<Upstream>,
}

impl Pool {
    /// Resolves every spec (a name may yield several addresses, each becomes a server, as in
    /// nginx); duplicates are dropped, keeping the first.
    pub fn resolve(specs: &[UpstreamSpec]) -> Result<Pool, StartError> {
        let mut servers: Vec<Upstream> = Vec::new();
        for spec in specs {
            let addrs = spec
                .addr
                .to_socket_addrs()
                .map_err(|source| StartError::Resolve {
                    host: spec.addr.clone(),
                    source,
                })?;
            let mut found = false;
            for addr in addrs {
                found = true;
                if !servers.iter().any(|s| s.addr == addr) {
                    servers.push(Upstream { addr, active: 0 });
                }
            }
            if !found {
                return Err(StartError::Resolve {
                    host: spec.addr.clone(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no address found"),
                });
            }
        }
        Ok(Pool { servers })
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
