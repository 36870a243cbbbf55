//! Building a loop: its routes, listeners, access log and metrics listener from a resolved
//! configuration, and applying process-wide settings (also on reload).

use super::control::Control;
use super::health::Health;
use super::listeners::{Listeners, bind};
use super::metrics_http::MetricsServer;
use super::report::Ended;
use super::routes::{Routes, Shares};
use super::{AcceptGate, HOUSEKEEPING, Proxy, RunState, Shared, Timer};
use crate::access_log::AccessLog;
use crate::config::{RESERVED_FDS, default_max_conns, pipe_limit};
use crate::endpoint::Endpoint;
use crate::error::StartError;
use crate::pipe::PipeCount;
use crate::resolve::ResolvedConfig;
use crate::ring::Budget;
use crate::settings::Global;
use crate::stats::IoStats;
use crate::timers::Timers;
use log::{info, warn};
use mio::Poll;
use slab::Slab;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

impl Proxy {
    /// A single loop serving every route of `config`: binds the listeners and prepares the
    /// poller. Logs one info line per route ([`Proxy::start_lines`]).
    pub fn bind(config: ResolvedConfig) -> Result<Proxy, StartError> {
        let proxy = Proxy::bind_worker(config, 0, Shared::new(1))?;
        for line in proxy.start_lines() {
            info!("{line}");
        }
        Ok(proxy)
    }

    /// Worker `worker` of `config.global.workers`; worker 0 serves `/metrics` for all of
    /// them from `shared`. Logs nothing of the routes: the process prints the start lines
    /// once ([`Proxy::start_lines`]).
    pub fn bind_worker(
        config: ResolvedConfig,
        worker: usize,
        shared: Arc<Shared>,
    ) -> Result<Proxy, StartError> {
        let setup = |what| move |source| StartError::Setup { what, source };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ worker as u64;
        let valid = config.config();
        let poll = Poll::new().map_err(setup("create the poller"))?;
        let control = Control::new(poll.registry()).map_err(setup("create a waker"))?;
        let fd_limit = rlimit::Resource::NOFILE
            .get()
            .map(|(soft, _)| soft)
            .map_err(setup("read the descriptor limit"))?;
        let mut proxy = Proxy {
            poll,
            worker,
            gate: AcceptGate::default(),
            fd_limit,
            global: valid.global.clone(),
            routes: Routes::new(
                &config,
                seed,
                Shares {
                    budget: Budget::new(usize::MAX),
                    pipes: PipeCount::new(0),
                },
            ),
            starved: VecDeque::new(),
            listeners: Listeners::default(),
            health: Health::new(Arc::clone(&shared.board)),
            pairs: Slab::new(),
            actions: VecDeque::new(),
            spares: Default::default(),
            timers: Timers::default(),
            io: IoStats::default(),
            observed: Default::default(),
            next_id: 0,
            control: Arc::new(control),
            state: RunState::Running,
            ready: Vec::new(),
            access_log: None,
            refusals: Default::default(),
            metrics: None,
            shared,
            board_seen: 0,
            ended: Ended::default(),
        };
        for (index, route) in valid.routes.iter().enumerate() {
            for addr in proxy.listened_here(route) {
                // An address routes share by server name has one socket, of its first route.
                if addr.ip().is_none_or(|a| a.port() != 0) && proxy.listeners.has(&addr) {
                    continue;
                }
                let socket = bind(&addr, &route.settings, valid.global.workers > 1)?;
                proxy
                    .listeners
                    .add(socket, index, proxy.poll.registry())
                    .map_err(setup("register a listener"))?;
            }
        }
        proxy.apply_global(&valid.global, valid.uses_pipes())?;
        let now = Instant::now();
        if proxy.checks_here() {
            for route in 0..proxy.routes.len() {
                Health::schedule(&mut proxy.routes, route, &mut proxy.timers, now);
            }
        }
        proxy
            .timers
            .schedule(now + HOUSEKEEPING, Timer::Housekeeping);
        Ok(proxy)
    }

    /// Where this worker listens for `route`: every address, and the Unix paths in the
    /// first worker only (`SO_REUSEPORT` does not spread a Unix socket between several).
    pub(super) fn listened_here(&self, route: &crate::config::Route) -> Vec<Endpoint> {
        let mut here = route.endpoints();
        if self.worker != 0 {
            here.retain(|e| e.ip().is_some());
        }
        here
    }

    /// One line per route: where it listens, its servers and settings, and the process's
    /// connection limit (every worker's share added up).
    pub fn start_lines(&self) -> Vec<String> {
        (0..self.routes.len())
            .map(|route| {
                let listening = self.listeners.of_route(route);
                self.routes[route].describe(&listening, self.gate.process_max_conns, self.fd_limit)
            })
            .collect()
    }

    /// Applies the process-wide settings: connection limit, byte budget and pipe count
    /// (`pipes`: some route may use pipes), access log, metrics listener.
    pub(super) fn apply_global(&mut self, global: &Global, pipes: bool) -> Result<(), StartError> {
        let budget = global
            .max_buffered
            .map_or(usize::MAX, |total| total / self.workers());
        self.routes.shares.budget.set_limit(budget);
        let max_conns = global
            .max_conns
            .unwrap_or(default_max_conns(self.fd_limit, pipes));
        self.gate.max_conns = max_conns.div_ceil(self.workers());
        self.gate.process_max_conns = max_conns;
        let pipe_count = if pipes {
            pipe_limit(self.fd_limit, max_conns) / self.workers()
        } else {
            0
        };
        self.routes.shares.pipes.set_limit(pipe_count);
        let needed = (self.gate.max_conns * self.workers()) as u64 * 2 + RESERVED_FDS;
        // Said once per process, by the first worker.
        if needed > self.fd_limit && self.worker == 0 {
            warn!(
                "max-conns {} needs about {needed} descriptors but the limit is {}; \
                 accepts will pause when descriptors run out",
                self.gate.max_conns * self.workers(),
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
                Some(addr) => {
                    let server = MetricsServer::bind(addr, self.poll.registry())
                        .map_err(|source| StartError::Bind { addr, source })?;
                    info!("metrics on http://{}/metrics", server.addr);
                    Some(server)
                }
                None => None,
            };
        }
        self.global = global.clone();
        Ok(())
    }
}
