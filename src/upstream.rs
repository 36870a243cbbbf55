//! The upstream servers one loop forwards to, and what it knows about each.
//!
//! A `Pool` is plain data indexed by `UpstreamId`, one [`Upstream`] per server holding all
//! that is known of it (configuration, health, check state, counters); the balancer reads it
//! and the loop keeps `active` exact: incremented when a pair's connect starts, decremented
//! exactly once when that attempt fails or the pair closes. Health changes never touch
//! established pairs, and neither does the administrative state the operator sets
//! ([`AdminState`]): it only decides whether new clients may come and checks run.

use crate::endpoint::Endpoint;
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
    pub addr: Endpoint,
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
    /// What the operator set through the admin API: `Ready`, `Drain` or `Maint` (never
    /// `Down`, which is `options.down`); kept across reloads while the server stays.
    pub admin: AdminState,
    /// How its last active check ended, in the checking worker.
    pub last_check: Option<LastCheck>,
}

/// How a server's last active check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCheck {
    /// When.
    pub at: Instant,
    /// The server accepted the connection.
    pub ok: bool,
    /// What happened: `connected`, `connect failed`, `timed out`, `could not start`.
    pub why: &'static str,
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
    pub fn new(addr: impl Into<Endpoint>) -> Upstream {
        Upstream {
            addr: addr.into(),
            options: ServerOptions::default(),
            removed: false,
            active: 0,
            passive: Passive::default(),
            checks: Active::default(),
            check: CheckState::Idle,
            check_tag: 0,
            stats: ServerStats::default(),
            admin: AdminState::Ready,
            last_check: None,
        }
    }

    /// A server as resolved from the configuration, with fresh live state.
    pub fn configured(server: &ResolvedServer) -> Upstream {
        let mut upstream = Upstream::new(server.addr.clone());
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

    /// Its administrative state: `Down` when the configuration says `down = true`, else
    /// what the operator set (`Ready` unless changed).
    pub fn admin_state(&self) -> AdminState {
        if self.options.down {
            AdminState::Down
        } else {
            self.admin
        }
    }

    /// Sets the operator's state (`Down` is the configuration's: ignored).
    pub fn set_admin_state(&mut self, state: AdminState) {
        if state != AdminState::Down {
            self.admin = state;
        }
    }

    /// Whether active checks should run: configured, not `down`, not in `Maint`.
    pub fn is_checked(&self) -> bool {
        !self.removed && !matches!(self.admin_state(), AdminState::Maint | AdminState::Down)
    }

    /// May take one more client: `Ready` (not `down`, drained or in maintenance), not
    /// removed, not at `max_conns`, not failed by checks. Passive health is judged
    /// separately, since it is ignored as a last resort.
    pub fn can_take(&self) -> bool {
        self.admin_state() == AdminState::Ready
            && !self.removed
            && self.checks.is_up()
            && self.options.max_conns.is_none_or(|max| self.active < max)
    }

    /// Its health alone at `now`, whatever its administrative state: not failed by active
    /// checks (the last result, for a server no longer checked) nor marked by passive
    /// health.
    pub fn is_healthy(&self, now: Instant) -> bool {
        self.checks.is_up() && self.passive.is_available(now)
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
    pub fn addr(&self, id: UpstreamId) -> &Endpoint {
        &self.servers[id].addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Upstream {
        Upstream::new("127.0.0.1:1".parse::<std::net::SocketAddr>().unwrap())
    }

    #[test]
    fn only_a_ready_server_takes_clients_and_maint_stops_checks() {
        let mut s = server();
        assert!(s.can_take() && s.is_checked());
        s.set_admin_state(AdminState::Drain);
        assert!(!s.can_take() && s.is_checked(), "drain keeps checks");
        s.set_admin_state(AdminState::Maint);
        assert!(!s.can_take() && !s.is_checked(), "maint stops checks");
        s.set_admin_state(AdminState::Ready);
        assert!(s.can_take() && s.is_checked());
    }

    #[test]
    fn a_configured_down_server_reports_down_whatever_the_operator_set() {
        let mut s = server();
        s.options.down = true;
        s.set_admin_state(AdminState::Drain);
        assert_eq!(s.admin_state(), AdminState::Down);
        assert!(!s.can_take() && !s.is_checked());
        s.options.down = false;
        assert_eq!(
            s.admin_state(),
            AdminState::Drain,
            "the operator's state is kept"
        );
        s.set_admin_state(AdminState::Down);
        assert_eq!(s.admin_state(), AdminState::Drain, "down cannot be set");
    }
}
