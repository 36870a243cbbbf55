//! The process-wide settings: the file's top-level keys, and flags for the whole process.

use super::kinds::{Addr, Choice, Cidr, Dur, List, Named, Optional, Size, Text, Whole, Workers};
use crate::dns::ResolverKind;
use std::net::SocketAddr;
use std::time::Duration;

/// Access log line format (`--access-log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Space-separated fields in the spirit of nginx's stream log.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Named for LogFormat {
    const ALL: &'static [LogFormat] = &[LogFormat::Text, LogFormat::Json];

    fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

crate::settings! {
    /// Settings that apply to the whole process (the file's top-level keys).
    pub struct Global {
        /// Most pairs open at once in the process (split evenly between workers); `None`
        /// derives it from the descriptor limit at start, as HAProxy derives `maxconn`.
        max_conns: Option<usize> = None,
            Optional(Whole::new(1, 1 << 24), "(descriptor limit - 32) / 2"), "N", Options,
            "most connections at once; at the limit new clients wait\nin the listen backlog";
        /// Ring storage the whole process may hold at once (split evenly between workers);
        /// a direction that needs more waits until storage returns.
        max_buffered: Option<usize> = None, Optional(Size::new(64 << 10, 1 << 40), "unlimited"),
            "SIZE", Options, "ring storage the process may hold at once; more waits";
        /// Independent event loops, each with its own `SO_REUSEPORT` listeners.
        workers: usize = 1, Workers, "N|auto", Options,
            "independent event loops sharing the port with SO_REUSEPORT,\n\
             like nginx workers; auto = one per CPU";
        /// Where to write one line per finished connection: a path, or `-` for stdout.
        access_log: Option<String> = None,
            Optional(Text("a file path, or \"-\" for stdout"), "off"), "PATH", Operating,
            "one line per finished connection; - for stdout";
        /// Access log line format.
        access_log_format: LogFormat = LogFormat::Text, Choice::new(), "F", Operating,
            "text (nginx-like) or json";
        /// Address serving Prometheus metrics on `/metrics`.
        metrics: Option<SocketAddr> = None, Optional(Addr, "off"), "ADDR", Operating,
            "serve Prometheus metrics on http://ADDR/metrics";
        /// Address serving the admin API and status page (off by default); only loopback
        /// clients and those in `admin_allow` are served. Read at start only.
        admin: Option<SocketAddr> = None, Optional(Addr, "off"), "ADDR", Operating,
            "serve the admin API and status page on http://ADDR/";
        /// Networks besides loopback whose clients the admin serves; required when `admin`
        /// is not a loopback address. A reload replaces it (for clients accepted after).
        admin_allow: Vec<ipnet::IpNet> = Vec::new(), List(Cidr), "CIDR", Operating,
            "also serve the admin to clients in CIDR (repeatable)";
        /// DNS resolvers for upstream names, tried in order (the next after 1 s without an
        /// answer). Set, every name goes through them, at start and reload too; unset, names
        /// with `resolve` (and SRV names) use the nameservers of `/etc/resolv.conf`, others
        /// the system resolver.
        resolvers: Vec<SocketAddr> = Vec::new(), List(ResolverKind), "ADDR", Balancing,
            "DNS resolvers for upstream names, IP[:PORT] (repeatable)";
        /// The shortest time a DNS answer is used before the name is asked again.
        resolve_interval: Duration = Duration::from_secs(1), Dur, "DUR", Balancing,
            "shortest time a DNS answer stands";
        /// The longest time a DNS answer is used, whatever its TTL.
        resolve_max_ttl: Duration = Duration::from_secs(300), Dur, "DUR", Balancing,
            "longest time a DNS answer stands";
        /// How long a name's last addresses outlive an NXDOMAIN.
        resolve_hold: Duration = Duration::from_secs(30), Dur, "DUR", Balancing,
            "keep a name's last addresses this long after NXDOMAIN";
        /// How long a graceful stop lets open connections finish.
        drain_timeout: Duration = Duration::from_secs(30), Dur, "DUR", Operating,
            "on SIGTERM/SIGINT, let connections finish this long";
    }
}
