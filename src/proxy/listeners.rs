//! The listening sockets of one loop, TCP and Unix: binding them, which route each serves,
//! which may have clients waiting, and keeping them across a reload (an address or path
//! that stays keeps its socket, so no client is refused and a socket file keeps its inode).

use super::routes::Routes;
use super::socket_file::{Access, SocketFile};
use crate::conn::Conn;
use crate::endpoint::{Client, Endpoint};
use crate::error::StartError;
use crate::settings::RouteSettings;
use crate::token;
use mio::net::TcpListener;
use mio::{Interest, Registry};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// A listening socket: TCP, or Unix with the file it created.
pub(super) enum Listening {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix listener; dropping it removes its file.
    Unix(SocketFile),
}

impl Listening {
    /// Accepts one waiting client.
    pub fn accept(&self) -> io::Result<(Conn, Client)> {
        match self {
            Listening::Tcp(l) => l.accept().map(|(s, addr)| (Conn::Tcp(s), Client::Ip(addr))),
            Listening::Unix(f) => f
                .socket
                .accept()
                .map(|(s, _)| (Conn::Unix(s), Client::Unix)),
        }
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Listening::Tcp(l) => l,
            Listening::Unix(f) => &mut f.socket,
        }
    }

    fn raw(&self) -> socket2::SockRef<'_> {
        match self {
            Listening::Tcp(l) => socket2::SockRef::from(l),
            Listening::Unix(f) => socket2::SockRef::from(&f.socket),
        }
    }
}

/// A listening socket, its route, and whether it may have clients waiting.
pub(super) struct Listener {
    pub socket: Listening,
    pub addr: Endpoint,
    pub route: usize,
    /// Set by an event, cleared by `WouldBlock`: clients may wait in the backlog.
    pub pending: bool,
}

/// The listeners, keyed by their token's index.
#[derive(Default)]
pub(super) struct Listeners {
    slab: Slab<Listener>,
}

/// Where a route asks to listen: `(address or path, the route's settings, route index)`.
pub(super) type Wanted<'a> = (Endpoint, &'a RouteSettings, usize);

impl Listeners {
    /// Registers `socket` as a listener of `route`.
    pub fn add(
        &mut self,
        mut socket: Listening,
        route: usize,
        registry: &Registry,
    ) -> io::Result<()> {
        let addr = match &socket {
            Listening::Tcp(l) => Endpoint::Ip(l.local_addr()?),
            Listening::Unix(f) => Endpoint::Unix(f.path().into()),
        };
        let entry = self.slab.vacant_entry();
        registry.register(
            socket.source(),
            token::listener(entry.key()),
            Interest::READABLE,
        )?;
        entry.insert(Listener {
            socket,
            addr,
            route,
            pending: true,
        });
        Ok(())
    }

    /// Every TCP listen address, in route order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        let mut listeners: Vec<(usize, usize, SocketAddr)> = self
            .slab
            .iter()
            .filter_map(|(key, l)| Some((l.route, key, l.addr.ip()?)))
            .collect();
        listeners.sort();
        listeners.into_iter().map(|(_, _, addr)| addr).collect()
    }

    /// Number of listening sockets, TCP and Unix.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// True when an address or path is listened on already.
    pub fn has(&self, addr: &Endpoint) -> bool {
        self.slab.iter().any(|(_, l)| l.addr == *addr)
    }

    /// The listen addresses and paths of `route`.
    pub fn of_route(&self, route: usize) -> Vec<Endpoint> {
        self.slab
            .iter()
            .filter(|(_, l)| l.route == route)
            .map(|(_, l)| l.addr.clone())
            .collect()
    }

    /// An event on listener `key`: clients may be waiting.
    pub fn mark_pending(&mut self, key: usize) {
        if let Some(listener) = self.slab.get_mut(key) {
            listener.pending = true;
        }
    }

    /// A listener that may have clients waiting.
    pub fn next_pending(&mut self) -> Option<&mut Listener> {
        self.slab.iter_mut().map(|(_, l)| l).find(|l| l.pending)
    }

    /// Binds every address and path of `wanted` not listened on yet (an address several
    /// routes share is bound once); nothing is kept if one fails (a Unix socket bound
    /// before the failure is closed and its file removed).
    pub fn bind_missing<'a>(
        &self,
        wanted: impl Iterator<Item = Wanted<'a>>,
        reuse_port: bool,
    ) -> Result<Vec<(Listening, usize)>, StartError> {
        let mut current: Vec<Endpoint> = self.slab.iter().map(|(_, l)| l.addr.clone()).collect();
        wanted
            .filter(|(addr, _, _)| {
                let new = addr.ip().is_some_and(|a| a.port() == 0) || !current.contains(addr);
                current.push(addr.clone());
                new
            })
            .map(|(addr, settings, route)| bind(&addr, settings, reuse_port).map(|l| (l, route)))
            .collect()
    }

    /// After `routes` took a new configuration: listeners that stay follow their route (and
    /// its backlog, a socket file its mode and owner), the others close (a socket file is
    /// removed); `bound` (by new route index, mapped through `plan`) start listening.
    /// Returns how many opened and closed.
    pub fn reconcile(
        &mut self,
        routes: &Routes,
        plan: &[usize],
        bound: Vec<(Listening, usize)>,
        registry: &Registry,
    ) -> (usize, usize) {
        let mut closed = Vec::new();
        for (key, listener) in self.slab.iter_mut() {
            match routes.owner(&listener.addr) {
                Some(route) => {
                    listener.route = route;
                    let settings = &routes[route].settings;
                    // listen() again on a listening socket just sets its backlog.
                    let backlog = settings.backlog.min(i32::MAX as u32) as i32;
                    let _ = listener.socket.raw().listen(backlog);
                    if let Listening::Unix(file) = &listener.socket
                        && let Err(e) = file.set_access(access(settings))
                    {
                        log::warn!("{}: cannot set the mode or owner: {e}", listener.addr);
                    }
                }
                None => closed.push(key),
            }
        }
        for &key in &closed {
            let mut listener = self.slab.remove(key);
            let _ = registry.deregister(listener.socket.source());
        }
        let opened = bound.len();
        for (socket, new_index) in bound {
            if let Err(e) = self.add(socket, plan[new_index], registry) {
                log::error!("cannot register a new listener: {e}");
            }
        }
        (opened, closed.len())
    }

    /// Closes every listener (a drain); socket files are removed.
    pub fn close_all(&mut self, registry: &Registry) {
        for mut listener in self.slab.drain() {
            let _ = registry.deregister(listener.socket.source());
        }
    }
}

/// The mode and owner a route gives its socket files.
fn access(settings: &RouteSettings) -> Access<'_> {
    Access {
        mode: settings.unix_mode,
        owner: settings.unix_owner.as_deref(),
    }
}

/// Binds one listener for a route with `settings`.
pub(super) fn bind(
    addr: &Endpoint,
    settings: &RouteSettings,
    reuse_port: bool,
) -> Result<Listening, StartError> {
    match addr {
        Endpoint::Ip(addr) => bind_listener(*addr, settings.backlog, reuse_port)
            .map(Listening::Tcp)
            .map_err(|source| StartError::Bind {
                addr: *addr,
                source,
            }),
        Endpoint::Unix(path) => {
            SocketFile::bind(path, settings.backlog, access(settings)).map(Listening::Unix)
        }
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
