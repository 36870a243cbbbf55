//! Listen addresses shared by several routes: each route names the TLS server names it
//! takes (`sni`), and the table of one address chooses among them.
//!
//! Rules: routes may share an address only when every one of them sets `sni`; a name is
//! claimed by one route per address; the settings that act before a route is chosen
//! ([`PREROUTE_KEYS`]) are equal on every route of an address; a route with `sni` has a
//! `preread_max` within its `buffer_size` (the hello waits in the client → upstream buffer).
//! [`name_tables`] builds the tables both for validation (which reports the first clash) and
//! for the loops (which only see valid configurations).

use super::{Config, ConfigError, Location, Problem, Route};
use crate::server_names::{NamePattern, NameTable};
use crate::settings::RouteSettings;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Settings read before the route is chosen, so the same on every route of an address.
pub const PREROUTE_KEYS: [&str; 5] = [
    "accept_proxy",
    "proxy_trusted",
    "proxy_timeout",
    "preread_timeout",
    "preread_max",
];

/// A name claimed twice on one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    /// The route claiming it second.
    pub route: usize,
    /// The route that claimed it first.
    pub first: usize,
    /// The address.
    pub addr: SocketAddr,
    /// The name.
    pub pattern: NamePattern,
}

/// The name table of every address a route with `sni` listens on, from `(route index,
/// listen addresses, sni)` in order; the first clash is an error.
pub fn name_tables<'a>(
    routes: impl Iterator<Item = (usize, &'a [SocketAddr], &'a [NamePattern])>,
) -> Result<HashMap<SocketAddr, NameTable>, Clash> {
    let mut tables: HashMap<SocketAddr, NameTable> = HashMap::new();
    for (route, listen, sni) in routes {
        if sni.is_empty() {
            continue;
        }
        for &addr in listen {
            let table = tables.entry(addr).or_default();
            for pattern in sni {
                if let Some(first) = table.insert(pattern, route) {
                    let pattern = pattern.clone();
                    return Err(Clash {
                        route,
                        first,
                        addr,
                        pattern,
                    });
                }
            }
        }
    }
    Ok(tables)
}

impl Config {
    /// Checks the rules of shared addresses (see the module documentation); the rule that
    /// every route of a shared address sets `sni` is checked with the listen addresses.
    pub(super) fn validate_shared(&self) -> Result<(), ConfigError> {
        for (i, route) in self.routes.iter().enumerate() {
            if !route.settings.sni.is_empty()
                && route.settings.preread_max > route.settings.buffer_size
            {
                let problem = Problem::PrereadOverBuffer {
                    buffer_size: route.settings.buffer_size,
                    preread_max: route.settings.preread_max,
                };
                return Err(ConfigError::new(
                    Location::Setting(i, "preread_max"),
                    problem,
                ));
            }
            for (j, &addr) in route.listen.iter().enumerate() {
                let Some(first) = self.listened_before(i, j).filter(|&r| r != i) else {
                    continue;
                };
                if let Some((key, mine, theirs)) =
                    preroute_difference(&route.settings, &self.routes[first].settings)
                {
                    let problem = Problem::PrerouteDiffers {
                        addr,
                        other: self.named(first),
                        values: Box::new((mine, theirs)),
                    };
                    return Err(ConfigError::new(Location::Setting(i, key), problem));
                }
            }
        }
        let routes = self.routes.iter().enumerate();
        name_tables(routes.map(|(i, r)| (i, &r.listen[..], &r.settings.sni[..])))
            .map(|_| ())
            .map_err(|clash| {
                let problem = Problem::NameClaimedTwice {
                    pattern: clash.pattern.to_string(),
                    addr: clash.addr,
                    other: (clash.first != clash.route).then(|| self.named(clash.first)),
                };
                ConfigError::new(Location::Setting(clash.route, "sni"), problem)
            })
    }

    /// Route `i` as messages name it: its index and name.
    pub(super) fn named(&self, i: usize) -> super::RouteRef {
        Box::new((i, self.routes[i].name.clone()))
    }
}

/// True when routes `a` and `b` may share an address: both choose by server name.
pub(super) fn may_share(a: &Route, b: &Route) -> bool {
    !a.settings.sni.is_empty() && !b.settings.sni.is_empty()
}

/// The first pre-route setting on which `mine` and `theirs` differ: its key and both values.
fn preroute_difference(
    mine: &RouteSettings,
    theirs: &RouteSettings,
) -> Option<(&'static str, String, String)> {
    let (mine, theirs) = (mine.entries(), theirs.entries());
    PREROUTE_KEYS.iter().find_map(|&key| {
        let value = |entries: &[crate::settings::Entry]| {
            let entry = entries.iter().find(|e| e.key == key)?;
            entry.value.clone().or(entry.unset.map(str::to_string))
        };
        let (a, b) = (value(&mine)?, value(&theirs)?);
        (a != b).then_some((key, a, b))
    })
}

#[cfg(test)]
mod tests {
    use super::super::UpstreamSpec;
    use super::*;

    fn sni(patterns: &[&str]) -> Vec<NamePattern> {
        patterns
            .iter()
            .map(|p| NamePattern::parse(p).unwrap())
            .collect()
    }

    /// Routes `a` (a.test, *.a.test) and `b` (*) on one address.
    fn shared() -> Config {
        let addr = "127.0.0.1:8443".parse().unwrap();
        let mut c = Config::new(addr, vec![UpstreamSpec::new("h:1")]);
        c.routes[0].name = "a".into();
        c.routes[0].settings.sni = sni(&["a.test", "*.a.test"]);
        let mut b = c.routes[0].clone();
        b.name = "b".into();
        b.settings.sni = sni(&["*"]);
        c.routes.push(b);
        c
    }

    #[track_caller]
    fn broken(config: Config) -> String {
        config.validate().expect_err("a broken rule").to_string()
    }

    #[test]
    fn routes_with_sni_may_share_an_address() {
        let c = shared().validate().expect("valid");
        let listen = c.routes.iter().map(|r| &r.listen[..]);
        let sni = c.routes.iter().map(|r| &r.settings.sni[..]);
        let tables = name_tables(listen.zip(sni).enumerate().map(|(i, (l, s))| (i, l, s)));
        let table = &tables.unwrap()[&"127.0.0.1:8443".parse().unwrap()];
        assert_eq!(table.choose(Some("x.a.test")), Some(0));
        assert_eq!(table.choose(None), Some(1));
    }

    #[test]
    fn every_route_of_a_shared_address_needs_sni() {
        let mut c = shared();
        c.routes[1].settings.sni.clear();
        assert_eq!(
            broken(c),
            "route[1].listen[0]: expected each listen address in one place unless every route \
             on it sets `sni`, but 127.0.0.1:8443 is also listened on by route[0] \"a\""
        );
        let mut c = shared();
        c.routes[0].settings.sni.clear();
        assert!(broken(c).contains("also listened on by route[0] \"a\""));
    }

    #[test]
    fn a_name_is_claimed_once_per_address() {
        let mut c = shared();
        c.routes[1].settings.sni = sni(&["b.test", "A.test."]);
        assert_eq!(
            broken(c),
            "route[1].sni: expected each server name once per listen address, but \"a.test\" \
             on 127.0.0.1:8443 is also taken by route[0] \"a\""
        );
        let mut c = shared();
        c.routes[0].settings.sni = sni(&["*", "x.test", "*"]);
        assert!(broken(c).ends_with("also taken by this route"));
        // The same name on different addresses is fine.
        let mut c = shared();
        c.routes[1].settings.sni = sni(&["a.test"]);
        c.routes[1].listen = vec!["127.0.0.1:9443".parse().unwrap()];
        assert!(c.validate().is_ok());
    }

    #[test]
    fn preroute_settings_must_match_on_a_shared_address() {
        let mut c = shared();
        c.routes[1].settings.preread_timeout = std::time::Duration::from_secs(3);
        assert_eq!(
            broken(c),
            "route[1].preread_timeout: expected the same value on every route listening on \
             127.0.0.1:8443 (it applies before a route is chosen), but route[0] \"a\" has \
             \"5s\" and this route \"3s\""
        );
        let mut c = shared();
        c.routes[0].settings.accept_proxy = true;
        assert!(broken(c).starts_with("route[1].accept_proxy: expected the same value"));
        // Other settings may differ: they belong to the chosen route.
        let mut c = shared();
        c.routes[1].settings.idle_timeout = std::time::Duration::from_secs(1);
        c.routes[1].settings.buffer_size = 32 * 1024;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn the_hello_must_fit_the_buffer() {
        let mut c = shared();
        c.routes[0].settings.buffer_size = 4096;
        assert_eq!(
            broken(c),
            "route[0].preread_max: expected at most buffer_size (4KiB), as the ClientHello \
             waits in the client to upstream buffer, got 16KiB"
        );
        let mut c = shared();
        c.routes[0].settings.buffer_size = 4096;
        c.routes[0].settings.sni.clear();
        c.routes.truncate(1);
        assert!(c.validate().is_ok(), "without sni preread_max is unused");
    }
}
