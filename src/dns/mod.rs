//! DNS for upstream discovery: messages ([`message`]), when to ask again ([`schedule`]) and
//! asking resolvers ([`client`]). The discovery thread ([`crate::discovery`]) puts them
//! together; nothing here runs on a loop.

pub mod client;
pub mod message;
pub mod schedule;

use crate::settings::Kind;
use crate::settings::kinds::quote;
use std::net::{IpAddr, SocketAddr};

/// The kind of a `resolvers` entry: `IP` or `IP:PORT` (`[IPv6]:PORT`), port 53 by default.
#[derive(Debug, Clone, Copy)]
pub struct ResolverKind;

impl Kind for ResolverKind {
    type Value = SocketAddr;
    fn expected(&self) -> String {
        "a resolver address such as \"127.0.0.1\", \"127.0.0.1:5353\" or \"[::1]:53\"".into()
    }
    fn parse_flag(&self, s: &str) -> Option<SocketAddr> {
        s.parse::<SocketAddr>()
            .ok()
            .or_else(|| Some(SocketAddr::new(s.parse::<IpAddr>().ok()?, client::PORT)))
    }
    fn check(&self, v: &SocketAddr) -> bool {
        v.port() != 0
    }
    fn show(&self, v: &SocketAddr) -> String {
        v.to_string()
    }
    fn toml(&self, v: &SocketAddr) -> Option<String> {
        Some(quote(&v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolver_addresses_default_to_port_53() {
        let k = ResolverKind;
        assert_eq!(
            k.parse_flag("127.0.0.1"),
            Some("127.0.0.1:53".parse().unwrap())
        );
        assert_eq!(
            k.parse_flag("[::1]:5353"),
            Some("[::1]:5353".parse().unwrap())
        );
        assert_eq!(k.parse_flag("::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(k.parse_flag("ns.example"), None);
        assert!(!k.check(&"127.0.0.1:0".parse().unwrap()));
    }
}
