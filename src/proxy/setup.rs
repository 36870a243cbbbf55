//! Building a loop: resolving routes, binding listeners, the access log and the metrics
//! listener, and applying process-wide settings (also on reload).

use super::control::Control;
use super::routes::RouteState;
use super::serve_metrics::MetricsServer;
use super::{HOUSEKEEPING, Listener, Proxy, RunState, SharedSnapshots, Timer};
use crate::access_log::AccessLog;
use crate::config::{Config, Global, default_max_conns};
use crate::error::StartError;
use crate::stats::IoStats;
use crate::timers::Timers;
use crate::token;
use log::{info, warn};
use mio::net::TcpListener;
use mio::{Interest, Poll};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

impl Proxy {
    /// A single loop serving every route of `config`: resolves the pools, binds the listeners
    /// and prepares the poller. Logs one info line per route.
    pub fn bind(config: Config) -> Result<Proxy, StartError> {
        Proxy::bind_worker(config, 0, Arc::new(Mutex::new(vec![None])))
    }

    /// Worker `worker` of `config.global.workers`; worker 0 serves `/metrics` for all of
    /// them from `shared`.
    pub fn bind_worker(
        config: Config,
        worker: usize,
        shared: SharedSnapshots,
    ) -> Result<Proxy, StartError> {
        let setup = |what| move |source| StartError::Setup { what, source };
        config.validate().map_err(StartError::Invalid)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ worker as u64;
        let routes = config
            .routes
            .iter()
            .map(|route| RouteState::new(route.clone(), seed))
            .collect::<Result<Vec<_>, _>>()?;
        let poll = Poll::new().map_err(setup("create the poller"))?;
        let control = Control::new(poll.registry()).map_err(setup("create a waker"))?;
        let fd_limit = rlimit::Resource::NOFILE
            .get()
            .map(|(soft, _)| soft)
            .map_err(setup("read the descriptor limit"))?;
        let mut proxy = Proxy {
            poll,
            worker,
            max_conns: 0,
            fd_limit,
            global: config.global.clone(),
            routes,
            listeners: Slab::new(),
            pairs: Slab::new(),
            timers: Timers::default(),
            io: IoStats::default(),
            next_id: 0,
            accept_paused: false,
            accept_failures: 0,
            short_of_sockets: false,
            control: Arc::new(control),
            state: RunState::Running,
            ready: Vec::new(),
            access_log: None,
            metrics: None,
            shared,
            seed,
        };
        for (index, route) in config.routes.iter().enumerate() {
            for &addr in &route.listen {
                let socket = bind_listener(addr, route.backlog, config.global.workers > 1)
                    .map_err(|source| StartError::Bind { addr, source })?;
                proxy
                    .add_listener(socket, index)
                    .map_err(setup("register a listener"))?;
            }
        }
        proxy.apply_global(&config.global)?;
        let now = Instant::now();
        for route in 0..proxy.routes.len() {
            proxy.schedule_checks(route, now);
            proxy.log_route(route);
        }
        proxy
            .timers
            .schedule(now + HOUSEKEEPING, Timer::Housekeeping);
        Ok(proxy)
    }

    /// Applies the process-wide settings: connection limit, access log, metrics listener.
    pub(super) fn apply_global(&mut self, global: &Global) -> Result<(), StartError> {
        self.max_conns = global
            .max_conns
            .unwrap_or(default_max_conns(self.fd_limit))
            .div_ceil(self.workers());
        let needed = (self.max_conns * self.workers()) as u64 * 2 + crate::config::RESERVED_FDS;
        if needed > self.fd_limit {
            warn!(
                "max-conns {} needs about {needed} descriptors but the limit is {}; \
                 accepts will pause when descriptors run out",
                self.max_conns * self.workers(),
                self.fd_limit
            );
        }
        if global.access_log != self.global.access_log
            || global.access_log_format != self.global.access_log_format
            || (self.access_log.is_none() && global.access_log.is_some())
        {
            self.access_log = match &global.access_log {
                Some(target) => Some(AccessLog::open(target, global.access_log_format).map_err(
                    |source| StartError::Setup {
                        what: "open the access log",
                        source,
                    },
                )?),
                None => None,
            };
        }
        let metrics_changed = self.metrics.as_ref().map(|m| m.addr) != global.metrics;
        if self.worker == 0 && metrics_changed {
            self.metrics = match global.metrics {
                Some(addr) => Some(
                    MetricsServer::bind(addr, self.poll.registry())
                        .map_err(|source| StartError::Bind { addr, source })?,
                ),
                None => None,
            };
        }
        self.global = global.clone();
        Ok(())
    }

    pub(super) fn add_listener(
        &mut self,
        mut socket: TcpListener,
        route: usize,
    ) -> io::Result<SocketAddr> {
        let addr = socket.local_addr()?;
        let entry = self.listeners.vacant_entry();
        self.poll.registry().register(
            &mut socket,
            token::listener(entry.key()),
            Interest::READABLE,
        )?;
        entry.insert(Listener {
            socket,
            addr,
            route,
            pending: true,
        });
        Ok(addr)
    }

    fn log_route(&self, route: usize) {
        let state = &self.routes[route];
        let listen: Vec<String> = self
            .listeners
            .iter()
            .filter(|(_, l)| l.route == route)
            .map(|(_, l)| l.addr.to_string())
            .collect();
        let settings = &state.settings;
        info!(
            "route {}: listening on {}, upstreams [{}], balance {}, buffer-size {} bytes per \
             direction, max-conns {} (descriptor limit {}), connect-timeout {:?}, idle-timeout {:?}",
            settings.name,
            listen.join(", "),
            state.describe_servers(),
            settings.balance.as_str(),
            settings.buffer_size,
            self.max_conns,
            self.fd_limit,
            settings.connect_timeout,
            settings.idle_timeout,
        );
    }
}

/// Binds a non-blocking listener with `SO_REUSEADDR` (and `IPV6_V6ONLY` for IPv6, as nginx
/// does, so `0.0.0.0:P` and `[::]:P` can coexist). With several workers each binds its own
/// listener with `SO_REUSEPORT` and the kernel spreads connections between them.
pub(super) fn bind_listener(
    addr: SocketAddr,
    backlog: u32,
    reuse_port: bool,
) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}
