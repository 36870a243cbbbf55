//! The upstream servers one loop forwards to, and what it knows about each.
//!
//! A `Pool` is plain data indexed by `UpstreamId`, one [`Upstream`] per server holding all
//! that is known of it (configuration, health, check state, counters); the balancer reads it
//! and the loop keeps `active` exact: incremented when a pair's connect starts, decremented
//! exactly once when that attempt fails or the pair closes. Health changes never touch
//! established pairs.

use crate::health::{Active, Passive};
use crate::resolve::ResolvedServer;
use crate::settings::ServerOptions;
use crate::stats::{AdminState, ServerStats};
use std::net::SocketAddr;
use std::time::Instant;

/// Index of a server in its [`Pool`].
pub type UpstreamId = usize;

/// One upstream server: its configuration and its live state.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Weight, limits, backup, down, PROXY header, as configured.
    pub options: ServerOptions,
    /// Dropped from the configuration by a reload; kept only for pairs still using it.
    pub removed: bool,
    /// Pairs currently connecting or connected to this server.
    pub active: usize,
    /// Passive health (failed connects).
    pub passive: Passive,
    /// Active health (periodic checks).
    pub checks: Active,
    /// Where its active check is: at most one check timer or probe at a time.
    pub check: CheckState,
    /// The tag of its pending check timer (unique in its loop).
    pub check_tag: u32,
    /// Its counters.
    pub stats: ServerStats,
}

/// Where a server's active health check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckState {
    /// No check pending (checks are off, or the server is down or removed).
    #[default]
    Idle,
    /// A check timer is armed.
    Scheduled,
    /// A probe is in flight.
    Probing,
}

impl Upstream {
    /// A server with every option at its default (a primary of weight 1 without limits).
    pub fn new(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            options: ServerOptions::default(),
            removed: false,
            active: 0,
            passive: Passive::default(),
            checks: Active::default(),
            check: CheckState::Idle,
            check_tag: 0,
            stats: ServerStats::default(),
        }
    }

    /// A server as resolved from the configuration, with fresh live state.
    pub fn configured(server: &ResolvedServer) -> Upstream {
        let mut upstream = Upstream::new(server.addr);
        upstream.configure(server);
        upstream
    }

    /// Takes the options of `server` (same address), keeping live state and counters.
    pub fn configure(&mut self, server: &ResolvedServer) {
        self.options = server.options.clone();
        self.removed = false;
    }

    /// True when the server was removed and nothing refers to it any more (no pair, no
    /// check): its slot may hold another server.
    pub fn is_free(&self) -> bool {
        self.removed && self.active == 0 && self.check == CheckState::Idle
    }

    /// May take one more client: not `down` or removed, not at `max_conns`, not failed by
    /// checks. Passive health is judged separately, since it is ignored as a last resort.
    pub fn can_take(&self) -> bool {
        !self.options.down
            && !self.removed
            && self.checks.is_up()
            && self.options.max_conns.is_none_or(|max| self.active < max)
    }

    /// What the operator set, apart from health.
    pub fn admin_state(&self) -> AdminState {
        if self.options.down {
            AdminState::Down
        } else {
            AdminState::Ready
        }
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
    /// The servers of a resolved route, in configuration order.
    pub fn new(servers: &[ResolvedServer]) -> Pool {
        Pool {
            servers: servers.iter().map(Upstream::configured).collect(),
        }
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
