//! Commands from other threads (the signal thread, the admin thread, tests): stop, drain,
//! reload, reopen the access log, and the admin API's questions and changes. A command is queued and the loop woken through a `mio::Waker`; the loop runs
//! the queue in order on its next turn, so no loop state is ever shared. A reload arrives
//! validated and resolved: the loop only binds new listeners and applies it.
//!
//! A drain or reload sent with a reply channel is answered on it and not logged here: the
//! process adds up the answers of its workers and logs once. Without one (a lone loop, in
//! tests) the loop logs the outcome itself.

use super::health::Health;
use super::report::{Draining, ReloadReply, Reloaded};
use super::{Proxy, RunState, Timer};
use crate::error::{CloseReason, StartError};
use crate::resolve::ResolvedConfig;
use crate::stats::{AdminState, ConnFilter, ConnView, ServerView};
use crate::token;
use log::{debug, error, info};
use mio::{Registry, Waker};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Something another thread asks a loop to do.
#[derive(Debug)]
pub enum Command {
    /// Close everything and stop now.
    Stop,
    /// Stop accepting, let open connections finish for up to the drain timeout, then stop;
    /// say so on the channel, if any (nothing is sent if the loop was no longer running).
    Drain(Option<mpsc::Sender<Draining>>),
    /// Apply this configuration in place; answer on the channel, if any.
    Reload(ResolvedConfig, Option<mpsc::Sender<ReloadReply>>),
    /// Apply this configuration, which differs from the running one only in the addresses
    /// DNS gave its names (discovery): applied as a reload, logged at debug.
    Servers(ResolvedConfig),
    /// Reopen the access log (log rotation).
    ReopenLog,
    /// Report the listen addresses (in route order) on this channel.
    Addrs(mpsc::Sender<Vec<SocketAddr>>),
    /// Report the servers of every route in force, as this loop sees them.
    ListServers(mpsc::Sender<Vec<ServerView>>),
    /// Set the administrative state of a server; answers, once applied, the state it had.
    SetState(
        ServerRef,
        AdminState,
        mpsc::Sender<Result<AdminState, Missing>>,
    ),
    /// Close the open connections of a server (`ended=admin`); answers how many.
    ShutdownServer(ServerRef, mpsc::Sender<Result<usize, Missing>>),
    /// Report the open connections that pass the filter.
    Connections(ConnFilter, mpsc::Sender<Vec<ConnView>>),
    /// Close the connection with this process-wide id (`ended=admin`), if it is this loop's
    /// and open; answers whether it was.
    CloseConnection(u64, mpsc::Sender<bool>),
}

/// A server of a route, by names the operator uses: the route's name and the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRef {
    /// The route's name.
    pub route: String,
    /// The server's address, as `/servers` lists it.
    pub server: crate::endpoint::Endpoint,
}

/// What a [`ServerRef`] names that a loop does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No route in force has that name.
    Route,
    /// The route has no such server.
    Server,
}

/// The loop's end of the command queue.
pub(super) struct Control {
    waker: Waker,
    queue: Mutex<Vec<Command>>,
}

impl Control {
    pub(super) fn new(registry: &Registry) -> io::Result<Control> {
        Ok(Control {
            waker: Waker::new(registry, token::CONTROL)?,
            queue: Mutex::new(Vec::new()),
        })
    }
}

/// Sends commands to a running [`Proxy`] from any thread.
#[derive(Clone)]
pub struct Handle {
    control: Arc<Control>,
}

impl Handle {
    pub(super) fn new(control: Arc<Control>) -> Handle {
        Handle { control }
    }

    /// Queues `command` and wakes the loop.
    pub fn send(&self, command: Command) -> io::Result<()> {
        self.control
            .queue
            .lock()
            .map_err(|_| io::Error::other("command queue poisoned"))?
            .push(command);
        self.control.waker.wake()
    }

    /// Closes everything and stops now.
    pub fn stop(&self) -> io::Result<()> {
        self.send(Command::Stop)
    }

    /// Graceful stop: see [`Command::Drain`].
    pub fn drain(&self) -> io::Result<()> {
        self.send(Command::Drain(None))
    }

    /// Graceful stop, answered on the returned channel once the listeners are closed (the
    /// channel closes without an answer if the loop was already stopping).
    pub fn drain_and_report(&self) -> io::Result<mpsc::Receiver<Draining>> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Drain(Some(tx)))?;
        Ok(rx)
    }

    /// Applies `config` in place.
    pub fn reload(&self, config: ResolvedConfig) -> io::Result<()> {
        self.send(Command::Reload(config, None))
    }

    /// Applies `config` in place and answers on the returned channel once it is applied or
    /// refused.
    pub fn reload_and_report(
        &self,
        config: ResolvedConfig,
    ) -> io::Result<mpsc::Receiver<ReloadReply>> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Reload(config, Some(tx)))?;
        Ok(rx)
    }

    /// Applies new addresses from DNS: see [`Command::Servers`].
    pub fn update_servers(&self, config: ResolvedConfig) -> io::Result<()> {
        self.send(Command::Servers(config))
    }

    /// Reopens the access log.
    pub fn reopen_log(&self) -> io::Result<()> {
        self.send(Command::ReopenLog)
    }

    /// The loop's listen addresses now, in route order (they change with reloads).
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Addrs(tx))?;
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e))
    }
}

impl Proxy {
    /// Runs every queued command, in order.
    pub(super) fn run_commands(&mut self, now: Instant) {
        let commands = match self.control.queue.lock() {
            Ok(mut queue) => std::mem::take(&mut *queue),
            Err(_) => vec![Command::Stop],
        };
        for command in commands {
            match command {
                Command::Stop => self.state = RunState::Stopped,
                Command::Drain(reply) => match (self.drain(now), reply) {
                    (Some(draining), Some(reply)) => {
                        let _ = reply.send(draining);
                    }
                    (Some(draining), None) => info!("{}", draining.line()),
                    (None, _) => {}
                },
                Command::Reload(config, reply) => {
                    let outcome = self.reload(&config, now);
                    match (outcome, reply) {
                        (outcome, Some(reply)) => {
                            let _ = reply.send(outcome);
                        }
                        (Ok(r), None) => info!("configuration reloaded: {}", r.changes),
                        (Err(e), None) => {
                            error!("reload failed, keeping the running configuration: {e}")
                        }
                    }
                }
                Command::Servers(config) => match self.reload(&config, now) {
                    Ok(r) => debug!("new addresses from DNS applied: {}", r.changes),
                    Err(e) => error!("cannot apply new addresses from DNS: {e}"),
                },
                Command::Addrs(reply) => {
                    let _ = reply.send(self.local_addrs());
                }
                Command::ListServers(reply) => {
                    let _ = reply.send(self.admin_servers(now));
                }
                Command::SetState(at, state, reply) => {
                    let _ = reply.send(self.admin_set_state(&at, state, now));
                }
                Command::ShutdownServer(at, reply) => {
                    let _ = reply.send(self.admin_shutdown(&at, now));
                }
                Command::Connections(filter, reply) => {
                    let _ = reply.send(self.admin_connections(&filter, now));
                }
                Command::CloseConnection(id, reply) => {
                    let _ = reply.send(self.admin_close(id, now));
                }
                Command::ReopenLog => {
                    if let Some(log) = self.access_log.as_mut() {
                        log.reopen();
                    }
                }
            }
        }
    }

    /// Closes the listeners and lets open pairs finish until the drain timeout; `None` if
    /// the loop was no longer running.
    fn drain(&mut self, now: Instant) -> Option<Draining> {
        if self.state != RunState::Running {
            return None;
        }
        self.listeners.close_all(self.poll.registry());
        let open = self.pairs.len();
        self.ended.drained = 1;
        self.ended.open_at_drain = open;
        self.state = RunState::Draining;
        self.timers
            .schedule(now + self.global.drain_timeout, Timer::DrainDeadline);
        Some(Draining {
            open,
            timeout: self.global.drain_timeout,
        })
    }

    /// The drain timeout passed: cuts what is still open and stops.
    pub(super) fn drain_deadline(&mut self, now: Instant) {
        if self.state != RunState::Draining {
            return;
        }
        self.ended.timed_out = 1;
        self.ended.cut_at_timeout = self.pairs.len();
        self.close_all(CloseReason::Drained, now);
        self.state = RunState::Stopped;
    }
}

impl Proxy {
    /// Applies `config` in place: new routes listen, removed routes stop accepting and let
    /// their pairs finish, changed pools and settings apply to new connections, listeners
    /// that stay keep their sockets. If a new address cannot be bound (or the access log
    /// opened) nothing changes and the error is returned.
    fn reload(&mut self, config: &ResolvedConfig, now: Instant) -> ReloadReply {
        if self.state != RunState::Running {
            return Err(StartError::Setup {
                what: "reload while stopping",
                source: io::Error::other("the proxy is draining"),
            });
        }
        let valid = config.config();
        let wanted: Vec<_> = valid
            .routes
            .iter()
            .enumerate()
            .flat_map(|(i, route)| {
                let here = self.listened_here(route);
                here.into_iter().map(move |addr| (addr, &route.settings, i))
            })
            .collect();
        let wanted = wanted.into_iter();
        let bound = self.listeners.bind_missing(wanted, self.workers() > 1)?;
        if valid.global.workers != self.global.workers && self.worker == 0 {
            info!(
                "workers {} -> {}: takes effect at the next start",
                self.global.workers, valid.global.workers
            );
        }
        if valid.global.admin != self.global.admin && self.worker == 0 {
            info!("admin: a new address takes effect at the next start");
        }
        let mut global = valid.global.clone();
        global.workers = self.global.workers;
        global.admin = self.global.admin;
        global.admin_allow = self.global.admin_allow.clone();
        self.apply_global(&global, valid.uses_pipes())?;
        let applied = self.routes.apply(config);
        let registry = self.poll.registry();
        let (opened, closed) =
            self.listeners
                .reconcile(&self.routes, &applied.plan, bound, registry);
        if self.checks_here() {
            for &route in &applied.plan {
                Health::schedule(&mut self.routes, route, &mut self.timers, now);
            }
            let routes = &self.routes;
            self.health.board().retain(|name, addr| {
                routes.iter().any(|r| {
                    !r.retired
                        && r.name == name
                        && r.pool.servers.iter().any(|s| s.addr == *addr && !s.removed)
                })
            });
        }
        let changes = format!(
            "{} route(s): {} added, {} removed, {} changed; listeners: {opened} opened, {closed} \
             closed",
            applied.plan.len(),
            applied.added,
            applied.removed,
            applied.changed,
        );
        Ok(Reloaded {
            changes,
            serving: self.serving(),
        })
    }
}
