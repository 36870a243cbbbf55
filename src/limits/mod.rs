//! Access control and limits, as pure data structures with time passed in: allow/deny
//! lists, token buckets, and the bounded table of per-client connection counts and rates.
//!
//! A client is keyed by its address: IPv4 whole (/32), IPv6 by its /64 (a host owns one),
//! IPv4-mapped IPv6 as IPv4. Tables are per worker and per route.

mod bucket;
mod clients;

pub use bucket::{Rate, RateKind, TokenBucket};
pub use clients::{ClientKey, ClientTable, Refusal};

use ipnet::IpNet;
use std::net::IpAddr;

/// True when `ip` may connect: it matches no `deny` network, and `allow` is empty or it
/// matches one of it. IPv4-mapped IPv6 addresses match IPv4 networks.
pub fn allowed(ip: IpAddr, allow: &[IpNet], deny: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    let matches = |nets: &[IpNet]| nets.iter().any(|net| net.contains(&ip));
    !matches(deny) && (allow.is_empty() || matches(allow))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn deny_wins_and_allow_is_a_whitelist_when_set() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (allow, deny) = (
            nets(&["10.0.0.0/8", "2001:db8::/32"]),
            nets(&["10.6.6.0/24"]),
        );
        assert!(allowed(ip("10.1.2.3"), &allow, &deny));
        assert!(!allowed(ip("10.6.6.1"), &allow, &deny), "deny wins");
        assert!(!allowed(ip("192.0.2.1"), &allow, &deny), "not in allow");
        assert!(allowed(ip("2001:db8::1"), &allow, &deny));
        assert!(
            allowed(ip("::ffff:10.1.2.3"), &allow, &deny),
            "mapped matches IPv4"
        );
        assert!(!allowed(ip("::ffff:10.6.6.9"), &allow, &deny));
        assert!(
            allowed(ip("192.0.2.1"), &[], &deny),
            "no allow list: all but denied"
        );
        assert!(allowed(ip("::1"), &[], &[]));
    }
}
