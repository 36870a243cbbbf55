//! The admin API and status page (`admin = "127.0.0.1:9101"`): JSON listings of servers and
//! open connections, a server's administrative state (`ready`, `drain`, `maint`), closing a
//! server's connections or one connection, and an HTML page — HAProxy's runtime API and
//! stats page, for one process with N workers.
//!
//! It runs on a thread of its own with its own `mio::Poll` (`server.rs`), never on a data
//! path loop: an answer waits for every worker's reply, and a loop must not wait for other
//! loops. The parts are pure where they can be: reading a request ([`request`]), naming the
//! endpoint ([`endpoint`]), merging the workers' views and writing JSON ([`views`]), the
//! page ([`page`]), the HTTP answer ([`response`]); [`answer`] asks the workers through
//! their command queues ([`crate::proxy::Command`]) and waits for them.
//!
//! Security: only loopback clients are served unless `admin_allow` lists others (a
//! non-loopback `admin` without it is a configuration error); a GET never changes anything;
//! a request whose `Origin` is not the admin address itself is refused (403), so a web page
//! elsewhere cannot drive the API through the operator's browser; on loopback a `Host` that
//! is neither the address nor `localhost` is refused too (DNS rebinding).

pub mod answer;
pub mod endpoint;
pub mod page;
pub mod request;
pub mod response;
mod server;
pub mod views;

pub use server::{CONN_TIMEOUT, MAX_CONNS, allowed, same_origin};

use crate::error::StartError;
use crate::proxy::Handle;
use answer::Workers;
use ipnet::IpNet;
use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// The admin, bound and not yet serving.
pub struct Admin {
    server: server::Server,
    addr: SocketAddr,
}

impl Admin {
    /// Binds `addr` (its error names the address) for clients on loopback or in `allow`.
    pub fn bind(addr: SocketAddr, allow: Vec<IpNet>) -> Result<Admin, StartError> {
        let setup = |what| move |source| StartError::Setup { what, source };
        let bind = |source| StartError::Serve {
            what: "the admin API",
            addr,
            source,
        };
        let poll = Poll::new().map_err(setup("create the admin poller"))?;
        let mut listener = TcpListener::bind(addr).map_err(bind)?;
        let bound = listener.local_addr().map_err(bind)?;
        poll.registry()
            .register(&mut listener, server::LISTENER, Interest::READABLE)
            .map_err(setup("register the admin listener"))?;
        let server = server::Server::new(poll, listener, allow).map_err(setup("create a waker"))?;
        Ok(Admin {
            server,
            addr: bound,
        })
    }

    /// The address it listens on (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on a thread named `admin`, asking the workers behind `handles` (in worker
    /// order).
    pub fn spawn(self, handles: Vec<Handle>) -> io::Result<Running> {
        let waker = Arc::clone(&self.server.waker);
        let stop = Arc::clone(&self.server.stop);
        let allow = Arc::clone(&self.server.allow);
        let server = self.server;
        let thread = thread::Builder::new()
            .name("admin".into())
            .spawn(move || server.run(&Workers::new(handles)))?;
        Ok(Running {
            waker,
            stop,
            allow,
            thread,
        })
    }
}

/// The admin thread, serving.
pub struct Running {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    allow: Arc<Mutex<Vec<IpNet>>>,
    thread: JoinHandle<()>,
}

impl Running {
    /// Takes `allow` as `admin_allow` from the next accepted client on (a reload); true when
    /// it differs from the list before.
    pub fn set_allow(&self, allow: Vec<IpNet>) -> bool {
        let mut now = self
            .allow
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = *now != allow;
        *now = allow;
        changed
    }

    /// Stops serving (connections in progress are closed) and waits for the thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        if self.waker.wake().is_ok() {
            let _ = self.thread.join();
        }
    }
}
