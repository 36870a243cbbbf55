//! The configuration as the user wrote it ([`Config`]), and its validation into the only
//! form the rest of the proxy accepts ([`ValidConfig`]).
//!
//! A `Config` comes from the command line ([`crate::cli`]), a file ([`crate::file`]) or
//! code; its fields are public and may hold anything. [`Config::validate`] is the one place
//! every rule is checked — each setting's range (from the schema in [`crate::settings`](mod@crate::settings)) and
//! what spans settings: routes, names, listen addresses, pools. A [`ConfigError`] says where
//! (a [`Location`] such as `route[1].listen[0]`) and what ([`Problem`]); the command line
//! turns the location into a flag, the file into a line. Names are resolved afterwards, off
//! the loops, by [`ValidConfig::resolve`](crate::resolve).

mod shared;

pub use shared::{Clash, PREROUTE_KEYS, name_tables};

use crate::endpoint::Endpoint;
use crate::settings::kinds::{quote, size_str};
use crate::settings::{Global, RouteSettings, ServerOptions};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Descriptors kept aside from `max_conns` for listeners, the poller, logs and retries.
pub const RESERVED_FDS: u64 = 32;

/// One upstream server as the user wrote it: `HOST:PORT` and its options, resolved when the
/// proxy starts or reloads.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSpec {
    /// `host:port`, `a.b.c.d:port` or `[v6]:port`.
    pub addr: String,
    /// Weight, limits, backup, down.
    pub options: ServerOptions,
}

/// How a server given by SRV records is written: `srv:_redis._tcp.service.consul` (the file
/// also takes `{ srv = "_redis._tcp.service.consul" }`).
pub const SRV_PREFIX: &str = "srv:";

/// What a server address may be: `HOST:PORT`, `srv:NAME` or `unix:PATH`.
pub const SERVER_ADDR: &str = "HOST:PORT, e.g. \"127.0.0.1:8078\", \"[::1]:8078\" or \
     \"backend.local:80\", srv:NAME for the SRV records of NAME, or unix:PATH";

impl UpstreamSpec {
    /// A server with every option at its default (a primary of weight 1 without limits).
    pub fn new(addr: impl Into<String>) -> UpstreamSpec {
        UpstreamSpec {
            addr: addr.into(),
            options: ServerOptions::default(),
        }
    }

    /// The SRV name, for a server given by SRV records.
    pub fn srv(&self) -> Option<&str> {
        self.addr.strip_prefix(SRV_PREFIX)
    }

    /// True when its name is followed at run time: `resolve`, or an SRV name.
    pub fn follows_dns(&self) -> bool {
        self.options.resolve || self.srv().is_some()
    }

    /// The host name of a `HOST:PORT` server whose host is a name (not an address).
    pub fn host_name(&self) -> Option<(&str, u16)> {
        if self.srv().is_some() {
            return None;
        }
        let (host, port) = self.addr.rsplit_once(':')?;
        let port = port.parse().ok()?;
        (host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('['))
            .then_some((host, port))
    }
}

/// True for a server address: `HOST:PORT`, `srv:` and a DNS name, or `unix:` and an
/// absolute path.
pub fn is_server_addr(s: &str) -> bool {
    if s.starts_with(crate::endpoint::UNIX_PREFIX) {
        return crate::endpoint::unix_path(s).is_some();
    }
    match s.strip_prefix(SRV_PREFIX) {
        Some(name) => crate::server_names::is_dns_name(name),
        None => crate::settings::kinds::is_host_port(s),
    }
}

impl From<SocketAddr> for UpstreamSpec {
    fn from(addr: SocketAddr) -> Self {
        UpstreamSpec::new(addr.to_string())
    }
}

/// One route: where to listen, where to forward, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Unique name, used in logs and metrics.
    pub name: String,
    /// Addresses to accept clients on.
    pub listen: Vec<SocketAddr>,
    /// Unix domain socket paths to accept clients on (written `unix:PATH` among the
    /// listen addresses).
    pub listen_unix: Vec<PathBuf>,
    /// Upstream servers.
    pub upstreams: Vec<UpstreamSpec>,
    /// Buffers, timeouts, balancing, health.
    pub settings: RouteSettings,
}

impl Route {
    /// A route with every setting at its default.
    pub fn new(
        name: impl Into<String>,
        listen: Vec<SocketAddr>,
        upstreams: Vec<UpstreamSpec>,
    ) -> Route {
        Route {
            name: name.into(),
            listen,
            listen_unix: Vec::new(),
            upstreams,
            settings: RouteSettings::default(),
        }
    }
}

impl Route {
    /// Every listen address and socket path, addresses first.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let ip = self.listen.iter().map(|&addr| Endpoint::Ip(addr));
        let unix = self
            .listen_unix
            .iter()
            .map(|p| Endpoint::Unix(p.as_path().into()));
        ip.chain(unix).collect()
    }
}

/// The whole configuration: process-wide settings and the routes, not yet validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Settings that apply to the whole process.
    pub global: Global,
    /// The routes: listeners and the pool they forward to.
    pub routes: Vec<Route>,
}

impl Config {
    /// One route named `default` with every setting at its default: what a command line
    /// without `--config` describes.
    pub fn new(listen: SocketAddr, upstreams: Vec<UpstreamSpec>) -> Config {
        Config {
            global: Global::default(),
            routes: vec![Route::new("default", vec![listen], upstreams)],
        }
    }

    /// The first route (the only one without a configuration file).
    pub fn route(&mut self) -> &mut Route {
        &mut self.routes[0]
    }

    /// Checks every rule; the first broken one is the error. Rules: each setting in its
    /// range; at least one route; names non-empty and unique; each route with a listen
    /// address, each address in one route only (port 0 excepted: the kernel picks a fresh
    /// port); each pool with at least one server, none listed twice, at least one neither
    /// `down` nor `backup`, every address `HOST:PORT`.
    pub fn validate(self) -> Result<ValidConfig, ConfigError> {
        self.validate_all()
            .map_err(|mut problems| problems.swap_remove(0))
    }

    /// Checks every rule as [`Config::validate`] does, but reports every broken one (never
    /// an empty list): the global settings, the first problem of each route, then — when
    /// every route passed — the first rule between routes sharing an address.
    pub fn validate_all(self) -> Result<ValidConfig, Vec<ConfigError>> {
        let mut problems = Vec::new();
        if let Err((key, e, got)) = self.global.check() {
            problems.push(out_of_range(Location::Global(key), e.0, got));
        }
        if let Some(addr) = self.global.admin
            && !addr.ip().to_canonical().is_loopback()
            && self.global.admin_allow.is_empty()
        {
            let problem = Problem::AdminNotLoopback { addr };
            problems.push(ConfigError::new(Location::Global("admin"), problem));
        }
        if self.routes.is_empty() {
            problems.push(ConfigError::new(Location::Routes, Problem::NoRoutes));
        }
        let before = problems.len();
        for (i, route) in self.routes.iter().enumerate() {
            problems.extend(self.validate_route(i, route).err());
        }
        if problems.len() == before {
            problems.extend(self.validate_shared().err());
        }
        if problems.is_empty() {
            Ok(ValidConfig(self))
        } else {
            Err(problems)
        }
    }

    fn validate_route(&self, i: usize, route: &Route) -> Result<(), ConfigError> {
        let at = |location| move |problem| ConfigError::new(location, problem);
        if route.name.is_empty() {
            return Err(at(Location::Name(i))(Problem::EmptyName));
        }
        if let Some(first) = self.routes[..i].iter().position(|r| r.name == route.name) {
            return Err(at(Location::Name(i))(Problem::NameTwice {
                first,
                name: route.name.clone(),
            }));
        }
        if route.listen.is_empty() && route.listen_unix.is_empty() {
            return Err(at(Location::Listen(i))(Problem::NoListen));
        }
        for (j, path) in route.listen_unix.iter().enumerate() {
            let earlier = self.routes[..i]
                .iter()
                .position(|r| r.listen_unix.contains(path));
            if earlier.is_some() || route.listen_unix[..j].contains(path) {
                let other = earlier.map(|other| self.named(other));
                let problem = Problem::PathTwice {
                    path: path.clone(),
                    other,
                };
                return Err(at(Location::Listen(i))(problem));
            }
        }
        check_unix_route(i, route)?;
        for (j, addr) in route.listen.iter().enumerate() {
            if let Some(other) = self.listened_before(i, j)
                && (other == i || !shared::may_share(route, &self.routes[other]))
            {
                let other = (other != i).then(|| self.named(other));
                let problem = Problem::ListenTwice { addr: *addr, other };
                return Err(at(Location::ListenAddr(i, j))(problem));
            }
        }
        validate_pool(i, route)?;
        route
            .settings
            .check()
            .map_err(|(key, e, got)| out_of_range(Location::Setting(i, key), e.0, got))
    }
}

impl Config {
    /// The route that listens on listen address `j` of route `i` before it does (itself, at
    /// an earlier index, or an earlier route); port 0 never clashes.
    fn listened_before(&self, i: usize, j: usize) -> Option<usize> {
        let addr = self.routes[i].listen[j];
        if addr.port() == 0 {
            return None;
        }
        (0..=i).find(|&r| {
            let earlier = if r == i {
                &self.routes[r].listen[..j]
            } else {
                &self.routes[r].listen[..]
            };
            earlier.contains(&addr)
        })
    }
}

/// Checks the pool of route `i` (see [`Config::validate`]).
fn validate_pool(i: usize, route: &Route) -> Result<(), ConfigError> {
    let servers = &route.upstreams[..];
    if servers.is_empty() {
        return Err(ConfigError::new(Location::Servers(i), Problem::NoServers));
    }
    for (j, server) in servers.iter().enumerate() {
        if !is_server_addr(&server.addr) {
            let problem = Problem::OutOfRange {
                expected: SERVER_ADDR.into(),
                got: quote(&server.addr),
            };
            return Err(ConfigError::new(Location::Server(i, j), problem));
        }
        if servers[..j].iter().any(|other| other.addr == server.addr) {
            let problem = Problem::ServerTwice {
                addr: server.addr.clone(),
            };
            return Err(ConfigError::new(Location::Server(i, j), problem));
        }
        server
            .options
            .check()
            .map_err(|(key, e, got)| out_of_range(Location::ServerOption(i, j, key), e.0, got))?;
        check_source(i, j, route)?;
        if server.options.resolve && server.addr.starts_with(crate::endpoint::UNIX_PREFIX) {
            let problem = Problem::ResolveOnUnix {
                server: server.addr.clone(),
            };
            return Err(ConfigError::new(
                Location::ServerOption(i, j, "resolve"),
                problem,
            ));
        }
    }
    if servers.iter().all(|s| s.options.down || s.options.backup) {
        return Err(ConfigError::new(Location::Servers(i), Problem::NoPrimary));
    }
    Ok(())
}

/// Settings that need a client address, on a route whose clients can have none (it
/// listens only on Unix sockets and takes no PROXY header): a configuration error rather
/// than a rule that silently never applies. `sni` is chosen on TCP addresses only.
fn check_unix_route(i: usize, route: &Route) -> Result<(), ConfigError> {
    if route.listen_unix.is_empty() {
        return Ok(());
    }
    let s = &route.settings;
    let needs_address = [
        ("allow", !s.allow.is_empty()),
        ("deny", !s.deny.is_empty()),
        ("max_conns_per_ip", s.max_conns_per_ip.is_some()),
        ("conn_rate_per_ip", s.conn_rate_per_ip.is_some()),
        (
            "balance",
            s.balance == crate::settings::BalancePolicy::IpHash,
        ),
    ];
    let unix_only = route.listen.is_empty() && !s.accept_proxy;
    if unix_only && let Some((key, _)) = needs_address.iter().find(|(_, set)| *set) {
        return Err(ConfigError::new(
            Location::Setting(i, key),
            Problem::NeedsClientAddress,
        ));
    }
    if !s.sni.is_empty() {
        return Err(ConfigError::new(
            Location::Setting(i, "sni"),
            Problem::SniOnUnix,
        ));
    }
    Ok(())
}

/// A server's source address (its own `bind_source`, else the route's) must be of the
/// family of the server's address, when that is an address (a name's addresses are checked
/// when connecting: an attempt from the other family fails).
fn check_source(i: usize, j: usize, route: &Route) -> Result<(), ConfigError> {
    let server = &route.upstreams[j];
    let (source, at) = match (server.options.bind_source, route.settings.bind_source) {
        (Some(source), _) => (source, Location::ServerOption(i, j, "bind_source")),
        (None, Some(source)) => (source, Location::Server(i, j)),
        (None, None) => return Ok(()),
    };
    if server.addr.starts_with(crate::endpoint::UNIX_PREFIX) {
        let problem = Problem::SourceOnUnix {
            server: server.addr.clone(),
        };
        return Err(ConfigError::new(at, problem));
    }
    match server.addr.parse::<SocketAddr>() {
        Ok(addr) if addr.is_ipv4() != source.is_ipv4() => {
            let problem = Problem::SourceFamily {
                source,
                server: server.addr.clone(),
            };
            Err(ConfigError::new(at, problem))
        }
        _ => Ok(()),
    }
}

fn out_of_range(at: Location, expected: String, got: String) -> ConfigError {
    ConfigError::new(at, Problem::OutOfRange { expected, got })
}

/// A configuration that passed [`Config::validate`]: the only kind the proxy resolves and
/// runs. Read it through `Deref`; it cannot be changed without validating again.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidConfig(Config);

impl std::ops::Deref for ValidConfig {
    type Target = Config;
    fn deref(&self) -> &Config {
        &self.0
    }
}

impl ValidConfig {
    /// The configuration, to change and validate again.
    pub fn into_inner(self) -> Config {
        self.0
    }

    /// What is valid but risky, one sentence each: a route that takes PROXY headers from
    /// any source lets any client claim any address.
    pub fn warnings(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter(|r| r.settings.accept_proxy && r.settings.proxy_trusted.is_empty())
            .map(|r| {
                format!(
                    "route {}: accept_proxy without proxy_trusted: any client may send a PROXY \
                     header and claim any address",
                    quote(&r.name)
                )
            })
            .collect()
    }

    /// The same configuration with each listen address of port 0 replaced by the address
    /// actually bound for it (`bound`, in route order, an address routes share once). Stays
    /// valid: a bound port is unique.
    pub fn with_bound(&self, bound: &[SocketAddr]) -> ValidConfig {
        let mut config = self.0.clone();
        let mut seen = Vec::new();
        let listen = config.routes.iter_mut().flat_map(|r| r.listen.iter_mut());
        let unique = listen.filter(|addr| {
            let repeated = addr.port() != 0 && seen.contains(&**addr);
            seen.push(**addr);
            !repeated
        });
        for (addr, actual) in unique.zip(bound) {
            if addr.port() == 0 && addr.ip() == actual.ip() {
                *addr = *actual;
            }
        }
        ValidConfig(config)
    }
}

/// Where in a configuration a rule is broken, as a key path (`route[1].listen[0]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A process-wide setting.
    Global(&'static str),
    /// The list of routes.
    Routes,
    /// The name of route `.0`.
    Name(usize),
    /// The listen addresses of route `.0`.
    Listen(usize),
    /// Listen address `.1` of route `.0`.
    ListenAddr(usize, usize),
    /// The servers of route `.0`.
    Servers(usize),
    /// The address of server `.1` of route `.0`.
    Server(usize, usize),
    /// Option `.2` of server `.1` of route `.0`.
    ServerOption(usize, usize, &'static str),
    /// Setting `.1` of route `.0`.
    Setting(usize, &'static str),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Location::Global(key) => f.write_str(key),
            Location::Routes => f.write_str("route"),
            Location::Name(i) => write!(f, "route[{i}].name"),
            Location::Listen(i) => write!(f, "route[{i}].listen"),
            Location::ListenAddr(i, j) => write!(f, "route[{i}].listen[{j}]"),
            Location::Servers(i) => write!(f, "route[{i}].servers"),
            Location::Server(i, j) => write!(f, "route[{i}].servers[{j}].addr"),
            Location::ServerOption(i, j, key) => write!(f, "route[{i}].servers[{j}].{key}"),
            Location::Setting(i, key) => write!(f, "route[{i}].{key}"),
        }
    }
}

/// What rule is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No route at all.
    NoRoutes,
    /// A route without a name.
    EmptyName,
    /// Route `first` has the same name.
    NameTwice {
        /// The earlier route of that name.
        first: usize,
        /// The name.
        name: String,
    },
    /// A route without a listen address.
    NoListen,
    /// An address listened on twice: by route `other` (index, name) without `sni` on both,
    /// or (`None`) by this route.
    ListenTwice {
        /// The address.
        addr: SocketAddr,
        /// The other route, if it is not this one.
        other: Option<RouteRef>,
    },
    /// A server name claimed twice on one address: by route `other`, or (`None`) by this
    /// route.
    NameClaimedTwice {
        /// The name as written.
        pattern: String,
        /// The address.
        addr: SocketAddr,
        /// The route that claimed it first, if it is not this one.
        other: Option<RouteRef>,
    },
    /// A setting read before the route is chosen differs between routes of one address.
    PrerouteDiffers {
        /// The address.
        addr: SocketAddr,
        /// The first route of the address.
        other: RouteRef,
        /// This route's value and the first route's, as TOML literals.
        values: Box<(String, String)>,
    },
    /// `preread_max` over `buffer_size`.
    PrereadOverBuffer {
        /// The route's buffer size.
        buffer_size: usize,
        /// Its `preread_max`.
        preread_max: usize,
    },
    /// A pool without servers.
    NoServers,
    /// A server listed twice in one pool.
    ServerTwice {
        /// Its address as written.
        addr: String,
    },
    /// Every server is `down` or `backup`.
    NoPrimary,
    /// A Unix socket path listened on twice: by route `other`, or (`None`) by this route.
    PathTwice {
        /// The path.
        path: PathBuf,
        /// The other route, if it is not this one.
        other: Option<RouteRef>,
    },
    /// A setting that needs a client address on a route whose clients have none.
    NeedsClientAddress,
    /// `sni` on a route with Unix listeners.
    SniOnUnix,
    /// A source address (`bind_source`) for a Unix socket server.
    SourceOnUnix {
        /// The server, as written.
        server: String,
    },
    /// `resolve` on a Unix socket server.
    ResolveOnUnix {
        /// The server, as written.
        server: String,
    },
    /// A source address (`bind_source`) of the other family than its server's address.
    SourceFamily {
        /// The source address.
        source: std::net::IpAddr,
        /// The server, as written.
        server: String,
    },
    /// The admin listens beyond loopback but `admin_allow` names no client network.
    AdminNotLoopback {
        /// The admin address.
        addr: SocketAddr,
    },
    /// A value outside what the setting accepts.
    OutOfRange {
        /// What it accepts.
        expected: String,
        /// The value, as it would be written.
        got: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoRoutes => f.write_str("expected at least one [[route]] table"),
            Problem::EmptyName => f.write_str("expected a non-empty string"),
            Problem::NameTwice { first, name } => write!(
                f,
                "expected a unique route name, but route[{first}] is also named {}",
                quote(name)
            ),
            Problem::NoListen => f.write_str(
                "no listen address: expected at least one address, such as \"127.0.0.1:8080\"",
            ),
            Problem::ListenTwice { addr, other: None } => write!(
                f,
                "expected each listen address in one place, but {addr} is also listened on by \
                 this route"
            ),
            Problem::ListenTwice {
                addr,
                other: Some(other),
            } => write!(
                f,
                "expected each listen address in one place unless every route on it sets \
                 `sni`, but {addr} is also listened on by {}",
                route_named(other)
            ),
            Problem::NameClaimedTwice {
                pattern,
                addr,
                other,
            } => write!(
                f,
                "expected each server name once per listen address, but {} on {addr} is also \
                 taken by {}",
                quote(pattern),
                other
                    .as_ref()
                    .map_or_else(|| "this route".into(), route_named)
            ),
            Problem::PrerouteDiffers {
                addr,
                other,
                values,
            } => write!(
                f,
                "expected the same value on every route listening on {addr} (it applies before \
                 a route is chosen), but {} has {} and this route {}",
                route_named(other),
                values.1,
                values.0
            ),
            Problem::PrereadOverBuffer {
                buffer_size,
                preread_max,
            } => write!(
                f,
                "expected at most buffer_size ({}), as the ClientHello waits in the client to \
                 upstream buffer, got {}",
                size_str(*buffer_size),
                size_str(*preread_max)
            ),
            Problem::NoServers => f.write_str("expected at least one server"),
            Problem::ServerTwice { addr } => write!(
                f,
                "expected each server listed once, but {addr} is listed twice"
            ),
            Problem::NoPrimary => {
                f.write_str("expected at least one server that is neither down nor backup")
            }
            Problem::PathTwice { path, other } => write!(
                f,
                "expected each Unix socket path in one place, but unix:{} is also listened on \
                 by {}",
                path.display(),
                other
                    .as_ref()
                    .map_or_else(|| "this route".into(), route_named)
            ),
            Problem::NeedsClientAddress => f.write_str(
                "expected a client address to apply this to, but the route listens only on Unix \
                 sockets, whose clients have none (set accept_proxy to take it from a PROXY \
                 header, or listen on a TCP address too)",
            ),
            Problem::SniOnUnix => f.write_str(
                "expected TCP listen addresses only with sni (server names are chosen per TCP \
                 address; give the Unix sockets a route of their own)",
            ),
            Problem::SourceOnUnix { server } => write!(
                f,
                "expected no bind_source for a Unix socket server, but {server} has one"
            ),
            Problem::ResolveOnUnix { server } => write!(
                f,
                "expected resolve only on a server with a DNS name, but {server} is a Unix socket"
            ),
            Problem::SourceFamily { source, server } => {
                let family = |v4: bool| if v4 { "IPv4" } else { "IPv6" };
                write!(
                    f,
                    "expected a bind_source of the server's address family, but {server} is {} \
                     and {source} {}",
                    family(!source.is_ipv4()),
                    family(source.is_ipv4())
                )
            }
            Problem::AdminNotLoopback { addr } => write!(
                f,
                "expected a loopback address, or admin_allow listing the networks that may \
                 use the admin API, got {addr} without admin_allow"
            ),
            Problem::OutOfRange { expected, got } => write!(f, "expected {expected}, got {got}"),
        }
    }
}

/// Another route a problem names: its index and name (boxed, to keep errors small).
pub type RouteRef = Box<(usize, String)>;

/// A route as messages name it: `route[1] "b"`.
fn route_named(route: &RouteRef) -> String {
    format!("route[{}] {}", route.0, quote(&route.1))
}

/// A broken rule and where: `route[1].listen[0]: expected each listen address in one place, …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where.
    pub at: Location,
    /// What.
    pub problem: Problem,
}

impl ConfigError {
    /// `problem` at `at`.
    pub fn new(at: Location, problem: Problem) -> ConfigError {
        ConfigError { at, problem }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// The default `max_conns` for a descriptor limit: each pair costs two descriptors, after a
/// small reserve (HAProxy derives `maxconn` from `ulimit -n` the same way); with pipes
/// (`engine = "splice"` or `"auto"` on some route) four, leaving one pipe per connection.
pub fn default_max_conns(fd_limit: u64, pipes: bool) -> usize {
    let per_conn = if pipes { 4 } else { 2 };
    (fd_limit.saturating_sub(RESERVED_FDS) / per_conn).max(1) as usize
}

/// How many pipes a process with `max_conns` connections may open within `fd_limit`
/// descriptors: what the connections and the reserve leave, two descriptors a pipe.
pub fn pipe_limit(fd_limit: u64, max_conns: usize) -> usize {
    let used = RESERVED_FDS + 2 * max_conns as u64;
    (fd_limit.saturating_sub(used) / 2) as usize
}

impl Config {
    /// True when some route's directions may use kernel pipes.
    pub fn uses_pipes(&self) -> bool {
        use crate::engine::EngineMode;
        self.routes
            .iter()
            .any(|r| r.settings.engine != EngineMode::Ring)
    }
}

/// Raises the soft descriptor limit to the hard limit and returns the resulting soft limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get()?;
    if soft < hard && rlimit::Resource::NOFILE.set(hard, hard).is_ok() {
        return Ok(hard);
    }
    Ok(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(
            "127.0.0.1:8080".parse().unwrap(),
            vec![UpstreamSpec::new("h:1")],
        )
    }

    #[track_caller]
    fn broken(config: Config) -> String {
        config.validate().expect_err("a broken rule").to_string()
    }

    #[test]
    fn default_max_conns_leaves_a_reserve_and_halves() {
        assert_eq!(default_max_conns(20_000, false), (20_000 - 32) / 2);
        assert_eq!(default_max_conns(1024, false), 496);
        assert_eq!(default_max_conns(10, false), 1);
        let with_pipes = default_max_conns(20_000, true);
        assert_eq!(with_pipes, (20_000 - 32) / 4);
        assert_eq!(
            pipe_limit(20_000, with_pipes),
            with_pipes,
            "one pipe per connection"
        );
        assert_eq!(pipe_limit(1024, 496), 0);
    }

    #[test]
    fn settings_set_in_code_are_range_checked() {
        let mut c = config();
        c.route().settings.buffer_size = 0;
        assert_eq!(
            broken(c),
            "route[0].buffer_size: expected a size such as 16384, \"16k\", \"16KiB\" or \
             \"1MiB\", from 1 to 256MiB, got 0"
        );
        let mut c = config();
        c.global.workers = 0;
        assert!(broken(c).starts_with("workers: expected a whole number"));
        let mut c = config();
        c.route().upstreams[0].options.weight = 0;
        assert!(broken(c).starts_with("route[0].servers[0].weight:"));
        let mut c = config();
        c.route().upstreams[0].addr = "nope".into();
        assert!(broken(c).starts_with("route[0].servers[0].addr: expected HOST:PORT"));
    }

    #[test]
    fn rules_across_routes_name_the_place() {
        let mut c = config();
        c.routes.push(c.routes[0].clone());
        assert_eq!(
            broken(c.clone()),
            "route[1].name: expected a unique route name, but route[0] is also named \"default\""
        );
        c.routes[1].name = "b".into();
        assert!(broken(c.clone()).starts_with(
            "route[1].listen[0]: expected each listen address in one place unless every route \
             on it sets `sni`, but 127.0.0.1:8080 is also listened on by route[0] \"default\""
        ));
        c.routes[1].listen = vec!["127.0.0.1:1".parse().unwrap(); 2];
        assert!(broken(c.clone()).ends_with("also listened on by this route"));
        c.routes[1].listen = vec!["127.0.0.1:0".parse().unwrap(); 2];
        assert!(c.clone().validate().is_ok(), "port 0 never clashes");
        c.routes[1].listen.clear();
        assert!(broken(c).contains("no listen address"));
    }

    #[test]
    fn a_source_must_be_of_the_servers_family() {
        let mut c = config();
        c.route().upstreams = vec![UpstreamSpec::new("127.0.0.1:1"), UpstreamSpec::new("h:1")];
        c.route().settings.bind_source = Some("::1".parse().unwrap());
        assert_eq!(
            broken(c.clone()),
            "route[0].servers[0].addr: expected a bind_source of the server's address family, \
             but 127.0.0.1:1 is IPv4 and ::1 IPv6"
        );
        c.route().upstreams[0].options.bind_source = Some("127.0.0.2".parse().unwrap());
        assert!(
            c.clone().validate().is_ok(),
            "the server's wins; a name is not judged"
        );
        c.route().upstreams[0].addr = "[::1]:1".into();
        assert!(broken(c).starts_with("route[0].servers[0].bind_source: expected"));
    }

    #[test]
    fn unix_routes_refuse_what_needs_a_client_address_or_cannot_apply() {
        let unix = |c: &mut Config| {
            c.route().listen.clear();
            c.route().listen_unix = vec!["/run/a.sock".into()];
        };
        let mut c = config();
        unix(&mut c);
        assert!(c.clone().validate().is_ok());
        c.route().settings.max_conns_per_ip = Some(3);
        assert!(broken(c.clone()).starts_with("route[0].max_conns_per_ip: expected a client"));
        c.route().settings.accept_proxy = true;
        assert!(
            c.clone().validate().is_ok(),
            "a PROXY header names the client"
        );
        let mut c = config();
        c.route().listen_unix = vec!["/run/a.sock".into(), "/run/a.sock".into()];
        assert!(broken(c.clone()).contains("unix:/run/a.sock is also listened on by this route"));
        c.route().listen_unix.pop();
        c.routes.push(c.routes[0].clone());
        c.routes[1].name = "b".into();
        c.routes[1].listen = vec!["127.0.0.1:9".parse().unwrap()];
        assert!(broken(c).starts_with("route[1].listen: expected each Unix socket path"));
        let mut c = config();
        c.route().upstreams[0].addr = "unix:/run/app.sock".into();
        assert!(c.clone().validate().is_ok());
        c.route().upstreams[0].options.resolve = true;
        assert!(broken(c.clone()).starts_with("route[0].servers[0].resolve:"));
        c.route().upstreams[0].options.resolve = false;
        c.route().settings.bind_source = Some("127.0.0.2".parse().unwrap());
        assert!(broken(c.clone()).contains("no bind_source for a Unix socket server"));
        c.route().upstreams[0].addr = "unix:relative.sock".into();
        assert!(broken(c).starts_with("route[0].servers[0].addr: expected HOST:PORT"));
    }

    #[test]
    fn an_admin_beyond_loopback_needs_admin_allow() {
        for addr in ["127.0.0.1:9101", "[::1]:9101", "[::ffff:127.0.0.1]:9101"] {
            let mut c = config();
            c.global.admin = Some(addr.parse().unwrap());
            assert!(c.validate().is_ok(), "{addr} is loopback");
        }
        let mut c = config();
        c.global.admin = Some("0.0.0.0:9101".parse().unwrap());
        assert_eq!(
            broken(c.clone()),
            "admin: expected a loopback address, or admin_allow listing the networks that may \
             use the admin API, got 0.0.0.0:9101 without admin_allow"
        );
        c.global.admin_allow = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(c.validate().is_ok());
    }

    #[test]
    fn pools_need_a_primary_and_no_repeats() {
        let mut c = config();
        c.route().upstreams.push(UpstreamSpec::new("h:1"));
        assert!(broken(c).contains("each server listed once, but h:1 is listed twice"));
        let mut c = config();
        c.route().upstreams[0].options.backup = true;
        assert!(broken(c).starts_with("route[0].servers: expected at least one server that"));
        let mut c = config();
        c.route().upstreams.clear();
        assert_eq!(broken(c), "route[0].servers: expected at least one server");
        let mut c = config();
        c.routes.clear();
        assert_eq!(broken(c), "route: expected at least one [[route]] table");
    }
}
