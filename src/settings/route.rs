//! The per-route settings and the per-server options: every one is declared here once.
//!
//! Adding a per-route setting is one entry in [`RouteSettings`] plus its documentation (the
//! README's flag table and `examples/ringproxy.toml`): the flag, the file key (also in
//! `[defaults]`), `--check`, the range check and `--help` follow from the entry. Defaults
//! follow nginx's `stream` module and HAProxy where they have an equivalent.

use super::kinds::{
    Choice, Cidr, Dur, DurBetween, Ip, List, Mode, Named, Optional, Owner, Size, Switch, Whole,
};
use crate::engine::EngineMode;
use crate::limits::{Rate, RateKind};
use crate::proxy_protocol::Version;
use crate::server_names::{NameKind, NamePattern};
use std::net::IpAddr;
use std::time::Duration;

/// Largest accepted buffer size.
pub const MAX_BUFFER_SIZE: usize = 256 * 1024 * 1024;
/// The smallest pipe an unset `pipe_size` gives: the kernel's default pipe, which Go and
/// HAProxy splice through. A smaller one holds no user-space memory and only costs more
/// `splice` calls per byte (4× at 16 KiB).
pub const MIN_DEFAULT_PIPE: usize = 64 * 1024;

/// What a bandwidth setting takes: 1 byte to 1 TiB per second.
const RATE: Size = Size::new(1, 1 << 40);

/// What `rcvbuf` and `sndbuf` take: 1 KiB to 1 GiB (the kernel raises smaller values to its
/// minimum and caps larger ones at `rmem_max`/`wmem_max`).
const SOCKET_BUFFER: Size = Size::new(1 << 10, 1 << 30);

/// What the kernel takes for keepalive times: 1 to 32767 seconds.
const KEEPALIVE: DurBetween = DurBetween::new(Duration::from_secs(1), Duration::from_secs(32767));

/// How the balancer picks a server (`--balance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BalancePolicy {
    /// Smooth weighted round robin, as nginx.
    #[default]
    RoundRobin,
    /// Fewest active connections relative to weight; ties in turn.
    LeastConn,
    /// Consistent hashing of the client address (Ketama-style ring).
    IpHash,
    /// Power of two random choices, by active connections.
    RandomTwo,
}

impl Named for BalancePolicy {
    const ALL: &'static [BalancePolicy] = &[
        BalancePolicy::RoundRobin,
        BalancePolicy::LeastConn,
        BalancePolicy::IpHash,
        BalancePolicy::RandomTwo,
    ];

    fn name(self) -> &'static str {
        match self {
            BalancePolicy::RoundRobin => "round-robin",
            BalancePolicy::LeastConn => "least-conn",
            BalancePolicy::IpHash => "ip-hash",
            BalancePolicy::RandomTwo => "random-two",
        }
    }
}

crate::settings! {
    /// What a route does with each connection: buffers, timeouts, balancing and health.
    /// The file's `[defaults]` table and each `[[route]]` hold any of these keys.
    pub struct RouteSettings {
        /// Capacity of each of a pair's two buffers, in bytes (nginx `proxy_buffer_size`,
        /// HAProxy `tune.bufsize`).
        buffer_size: usize = 16 * 1024, Size::new(1, MAX_BUFFER_SIZE), "SIZE", Options,
            "bytes per direction per connection\n(16384, 16k, 16KiB, 1m, 1MiB)";
        /// Each direction's buffer: a user-space ring, a kernel pipe moved with `splice(2)`,
        /// or a ring that becomes a pipe while the direction moves bulk.
        engine: EngineMode = EngineMode::Ring, Choice::new(), "ENGINE", Options,
            "ring (user space), splice (kernel pipes), auto (ring,\npipes for bulk directions)";
        /// Capacity of each pipe of the `splice` and `auto` engines, in bytes, as the kernel
        /// rounds it (HAProxy `tune.pipesize`); when unset the route's `buffer_size`, but at
        /// least [`MIN_DEFAULT_PIPE`].
        pipe_size: Option<usize> = None,
            Optional(Size::new(1, MAX_BUFFER_SIZE), "buffer-size, at least 64KiB"), "SIZE",
            Options, "bytes per pipe of the splice and auto engines";
        /// How long one upstream connect attempt may take (HAProxy `timeout connect`).
        connect_timeout: Duration = Duration::from_secs(5), Dur, "DUR", Options,
            "upstream connect timeout";
        /// How long a pair may move no byte in either direction before it is closed (nginx
        /// `proxy_timeout`).
        idle_timeout: Duration = Duration::from_secs(600), Dur, "DUR", Options,
            "close a connection idle this long\n(500ms, 5s, 2m, 1h, 1d; a bare number is seconds)";
        /// Listen backlog.
        backlog: u32 = 1024, Whole::new(1, 65535), "N", Options, "listen backlog";
        /// TCP keepalive on the client and upstream sockets: idle time before the first
        /// probe, in whole seconds (rounded up), as the kernel counts it (nginx
        /// `so_keepalive`, HAProxy `clitcpka`/`srvtcpka`).
        keepalive: Option<Duration> = None, Optional(KEEPALIVE, "off"), "DUR", Options,
            "TCP keepalive on both sockets after this idle time";
        /// Time between keepalive probes (with `keepalive`; the system's when unset).
        keepalive_interval: Option<Duration> = None, Optional(KEEPALIVE, "the system's"),
            "DUR", Options, "time between keepalive probes";
        /// Unanswered probes before the connection is dropped (with `keepalive`; the
        /// system's when unset).
        keepalive_count: Option<u32> = None, Optional(Whole::new(1, 127), "the system's"), "N",
            Options, "unanswered keepalive probes before the connection drops";
        /// The local address of every upstream connection (nginx `proxy_bind`); the port is
        /// chosen at connect time (`IP_BIND_ADDRESS_NO_PORT`), so one source serves many
        /// servers before its ports run out. A server's own `bind_source` wins; it must be
        /// of the server's address family.
        bind_source: Option<IpAddr> = None, Optional(Ip, "the system's choice"), "IP", Options,
            "source address of upstream connections";
        /// `SO_RCVBUF` of the client and the upstream socket (nginx `listen … rcvbuf=`); the
        /// kernel doubles it for its bookkeeping and caps it at `net.core.rmem_max`.
        rcvbuf: Option<usize> = None, Optional(SOCKET_BUFFER, "the system's"), "SIZE",
            Options, "kernel receive buffer of both sockets (SO_RCVBUF)";
        /// `SO_SNDBUF` of the client and the upstream socket (nginx `listen … sndbuf=`); the
        /// kernel doubles it and caps it at `net.core.wmem_max`.
        sndbuf: Option<usize> = None, Optional(SOCKET_BUFFER, "the system's"), "SIZE",
            Options, "kernel send buffer of both sockets (SO_SNDBUF)";
        /// Permission bits of the route's Unix socket files (`listen = ["unix:PATH"]`), set
        /// before the socket listens, so no client connects under other permissions.
        unix_mode: Option<u32> = None, Optional(Mode, "the umask's"), "MODE", Options,
            "permissions of unix: listen sockets (0660)";
        /// Owner of the route's Unix socket files, `user:group`, `user` or `:group` (the
        /// proxy needs the right to give them away: root, or a group it is in).
        unix_owner: Option<String> = None, Optional(Owner, "the proxy's"), "USER:GROUP",
            Options, "owner of unix: listen sockets";
        /// Balancing policy.
        balance: BalancePolicy = BalancePolicy::RoundRobin, Choice::new(), "POLICY", Balancing,
            "round-robin (smooth weighted), least-conn, ip-hash\n(consistent hashing), random-two";
        /// Most servers tried per client (`None`: every server once), nginx
        /// `proxy_next_upstream_tries`.
        tries: Option<usize> = None, Optional(Whole::new(1, 1024), "every server once"), "N",
            Balancing, "most servers tried per client";
        /// No new attempt after this long since the client arrived, nginx
        /// `proxy_next_upstream_timeout`.
        tries_timeout: Option<Duration> = None, Optional(Dur, "off"), "DUR", Balancing,
            "no new attempt after this long";
        /// Passive health: failed connects within `fail_timeout` that mark a server
        /// unavailable (0: never).
        max_fails: u32 = 1, Whole::new(0, 1_000_000), "N", Balancing,
            "failed connects within --fail-timeout that make a server\n\
             unavailable for --fail-timeout; 0 disables";
        /// Passive health window and unavailability period.
        fail_timeout: Duration = Duration::from_secs(10), Dur, "DUR", Balancing,
            "the passive health window and unavailability period";
        /// Active health checks: period (`None`: no checks).
        health_interval: Option<Duration> = None, Optional(Dur, "off"), "DUR", Balancing,
            "active TCP connect checks every DUR";
        /// Active health checks: connect timeout (`None`: `connect_timeout`).
        health_timeout: Option<Duration> = None, Optional(Dur, "the connect timeout"), "DUR",
            Balancing, "check connect timeout";
        /// Consecutive successful checks to bring a server up.
        health_rise: u32 = 2, Whole::new(1, 1000), "N", Balancing,
            "consecutive good checks to bring a server up";
        /// Consecutive failed checks to take a server down.
        health_fall: u32 = 3, Whole::new(1, 1000), "N", Balancing,
            "consecutive bad checks to take a server down";
        /// Every connection must begin with a PROXY protocol v1 or v2 header, whose client
        /// address then replaces the socket's (HAProxy `accept-proxy`, nginx `listen …
        /// proxy_protocol`); configuration decides, the proxy never guesses.
        accept_proxy: bool = false, Switch, "", Identity,
            "every client must begin with a PROXY v1 or v2 header";
        /// Sources allowed to connect when `accept_proxy` is on; others are closed before a
        /// byte is read. Empty: every source (and any client may claim any address).
        proxy_trusted: Vec<ipnet::IpNet> = Vec::new(), List(Cidr), "CIDR", Identity,
            "only these sources may send a PROXY header (repeatable)";
        /// Time from accept within which the whole PROXY header must arrive.
        proxy_timeout: Duration = Duration::from_secs(5), Dur, "DUR", Identity,
            "time allowed for the PROXY header, from accept";
        /// PROXY header sent to every server before the client's bytes.
        send_proxy: Version = Version::Off, Choice::new(), "off|v1|v2", Identity,
            "send a PROXY header carrying the client to the upstream";
        /// Server names this route takes on a listen address it may share with other
        /// routes: `a.example.com`, `*.a.example.com` (any depth below), `*` (anything
        /// else, no name, not TLS). Set, the route reads each client's TLS ClientHello
        /// before choosing (nginx `ssl_preread`, HAProxy `req.ssl_sni`); TLS is not
        /// terminated and the hello is forwarded unchanged.
        sni: Vec<NamePattern> = Vec::new(), List(NameKind), "NAME", Routing,
            "take TLS clients asking for these server names\n(a.test, *.a.test, *; repeatable)";
        /// Time from accept within which the whole ClientHello must arrive (with `sni`).
        preread_timeout: Duration = Duration::from_secs(5), Dur, "DUR", Routing,
            "time allowed for the ClientHello, from accept";
        /// Most bytes of TLS records the ClientHello may take (with `sni`; at most
        /// `buffer_size`, as the hello waits in the client → upstream buffer).
        preread_max: usize = 16 * 1024, Size::new(256, 1 << 20), "SIZE", Routing,
            "largest ClientHello read (at most --buffer-size)";
        /// When set, only clients in these networks are served.
        allow: Vec<ipnet::IpNet> = Vec::new(), List(Cidr), "CIDR", Limits,
            "serve only clients in these networks (repeatable)";
        /// Clients in these networks are refused (deny wins over allow).
        deny: Vec<ipnet::IpNet> = Vec::new(), List(Cidr), "CIDR", Limits,
            "refuse clients in these networks (repeatable)";
        /// Most connections open at once per client (IPv4 address or IPv6 /64), per worker.
        max_conns_per_ip: Option<u32> = None, Optional(Whole::new(1, 1 << 24), "unlimited"),
            "N", Limits, "most connections at once per client address, per worker";
        /// New connections per client, a token bucket whose burst is one period's worth.
        conn_rate_per_ip: Option<Rate> = None, Optional(RateKind, "unlimited"), "N/s|N/m",
            Limits, "new connections per client address, per worker";
        /// Client → upstream bytes per second per connection (burst: about one second).
        upload_rate: Option<usize> = None, Optional(RATE, "unlimited"), "SIZE", Limits,
            "client to upstream bytes per second, per connection";
        /// Upstream → client bytes per second per connection (burst: about one second).
        download_rate: Option<usize> = None, Optional(RATE, "unlimited"), "SIZE", Limits,
            "upstream to client bytes per second, per connection";
        /// Connections this old are closed gracefully (FIN both ways once the rings drain).
        max_lifetime: Option<Duration> = None, Optional(Dur, "unlimited"), "DUR", Limits,
            "close connections this old, gracefully";
    }
}

crate::settings! {
    /// Options of one upstream server, in the spirit of nginx's `server` line: keys of a
    /// server table in the file, `,key=value` (or a bare `,key` for on/off) after
    /// `--upstream HOST:PORT`.
    pub struct ServerOptions {
        /// Relative share of new connections.
        weight: u32 = 1, Whole::new(1, 1000), "N", Options, "share of new connections";
        /// Most pairs at once on this server; `None` is unlimited.
        max_conns: Option<usize> = None, Optional(Whole::new(1, 1 << 24), "unlimited"), "N",
            Options, "most connections at once on this server";
        /// Used only when no primary server is available.
        backup: bool = false, Switch, "", Options,
            "used only when no primary server is available";
        /// Configured but never used.
        down: bool = false, Switch, "", Options, "configured but never used";
        /// Ask DNS for the name again as its answer's TTL expires, and follow the address
        /// set at run time (nginx `resolve`); a name that does not resolve at start starts
        /// empty instead of stopping the start. SRV names always do.
        resolve: bool = false, Switch, "", Options,
            "follow the name's DNS answers at run time (TTLs)";
        /// The local address of connections to this server (the route's `bind_source`
        /// when unset).
        bind_source: Option<IpAddr> = None, Optional(Ip, "the route's"), "IP", Options,
            "source address of connections to this server";
        /// PROXY header sent to this server (the route's `send_proxy` when unset).
        send_proxy: Option<Version> = None, Optional(Choice::new(), "the route's"), "V",
            Options, "PROXY header to this server";
    }
}

impl RouteSettings {
    /// Bytes each pipe of the route holds (before the kernel rounds it): `pipe_size`, or
    /// when unset `buffer_size` but at least [`MIN_DEFAULT_PIPE`].
    pub fn pipe_bytes(&self) -> usize {
        self.pipe_size
            .unwrap_or(self.buffer_size.max(MIN_DEFAULT_PIPE))
    }

    /// Bytes one direction may hold at most: its ring's size, or for an engine that splices
    /// the larger of ring and pipe (a direction holds one at a time).
    pub fn most_held(&self) -> usize {
        match self.engine {
            EngineMode::Ring => self.buffer_size,
            EngineMode::Splice | EngineMode::Auto => self.buffer_size.max(self.pipe_bytes()),
        }
    }
}
