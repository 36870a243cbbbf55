//! The listening sockets of one loop: binding them, which route each serves, which may have
//! clients waiting, and keeping them across a reload (an address that stays keeps its
//! socket, so no client is refused).

use super::routes::Routes;
use crate::error::StartError;
use crate::token;
use mio::net::TcpListener;
use mio::{Interest, Registry};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// A listening socket, its route, and whether it may have clients waiting.
pub(super) struct Listener {
    pub socket: TcpListener,
    pub addr: SocketAddr,
    pub route: usize,
    /// Set by an event, cleared by `WouldBlock`: clients may wait in the backlog.
    pub pending: bool,
}

/// The listeners, keyed by their token's index.
#[derive(Default)]
pub(super) struct Listeners {
    slab: Slab<Listener>,
}

impl Listeners {
    /// Registers `socket` as a listener of `route`.
    pub fn add(
        &mut self,
        mut socket: TcpListener,
        route: usize,
        registry: &Registry,
    ) -> io::Result<()> {
        let addr = socket.local_addr()?;
        let entry = self.slab.vacant_entry();
        registry.register(
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
        Ok(())
    }

    /// Every listen address, in route order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        let mut listeners: Vec<(usize, usize, SocketAddr)> = self
            .slab
            .iter()
            .map(|(key, l)| (l.route, key, l.addr))
            .collect();
        listeners.sort();
        listeners.into_iter().map(|(_, _, addr)| addr).collect()
    }

    /// True when an address is listened on already.
    pub fn has(&self, addr: SocketAddr) -> bool {
        self.slab.iter().any(|(_, l)| l.addr == addr)
    }

    /// The listen addresses of `route`.
    pub fn of_route(&self, route: usize) -> Vec<SocketAddr> {
        self.slab
            .iter()
            .filter(|(_, l)| l.route == route)
            .map(|(_, l)| l.addr)
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

    /// Binds every address of `addrs` not listened on yet (`(address, backlog, new route
    /// index)`; an address several routes share is bound once); nothing is kept if one
    /// fails.
    pub fn bind_missing(
        &self,
        addrs: impl Iterator<Item = (SocketAddr, u32, usize)>,
        reuse_port: bool,
    ) -> Result<Vec<(TcpListener, usize)>, StartError> {
        let mut current: Vec<SocketAddr> = self.slab.iter().map(|(_, l)| l.addr).collect();
        addrs
            .filter(|(addr, _, _)| {
                let new = addr.port() == 0 || !current.contains(addr);
                current.push(*addr);
                new
            })
            .map(|(addr, backlog, route)| {
                bind_listener(addr, backlog, reuse_port)
                    .map(|socket| (socket, route))
                    .map_err(|source| StartError::Bind { addr, source })
            })
            .collect()
    }

    /// After `routes` took a new configuration: listeners that stay follow their route (and
    /// its backlog), the others close; `bound` (by new route index, mapped through `plan`)
    /// start listening. Returns how many opened and closed.
    pub fn reconcile(
        &mut self,
        routes: &Routes,
        plan: &[usize],
        bound: Vec<(TcpListener, usize)>,
        registry: &Registry,
    ) -> (usize, usize) {
        let mut closed = Vec::new();
        for (key, listener) in self.slab.iter_mut() {
            match routes.owner(listener.addr) {
                Some(route) => {
                    listener.route = route;
                    // listen() again on a listening socket just sets its backlog.
                    let backlog = routes[route].settings.backlog.min(i32::MAX as u32) as i32;
                    let _ = socket2::SockRef::from(&listener.socket).listen(backlog);
                }
                None => closed.push(key),
            }
        }
        for &key in &closed {
            let mut listener = self.slab.remove(key);
            let _ = registry.deregister(&mut listener.socket);
        }
        let opened = bound.len();
        for (socket, new_index) in bound {
            if let Err(e) = self.add(socket, plan[new_index], registry) {
                log::error!("cannot register a new listener: {e}");
            }
        }
        (opened, closed.len())
    }

    /// Closes every listener (a drain).
    pub fn close_all(&mut self, registry: &Registry) {
        for mut listener in self.slab.drain() {
            let _ = registry.deregister(&mut listener.socket);
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
