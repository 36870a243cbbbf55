//! `/metrics` served from the loop: a listener and a few short-lived HTTP/1.x connections,
//! each bounded in request size ([`crate::metrics::MAX_REQUEST`]), count and time, then
//! closed. Worker 0 serves every worker's latest snapshot (others publish theirs each second).

use super::Timer;
use crate::metrics::{self, MAX_REQUEST, Request};
use crate::timers::Timers;
use crate::token;
use log::debug;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most metrics connections at once; more are closed at accept.
const MAX_METRICS_CONNS: usize = 16;
/// How long one metrics connection may take from accept to close.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// The metrics listener and its connections.
pub(super) struct MetricsServer {
    listener: TcpListener,
    pub addr: SocketAddr,
    conns: Slab<MetricsConn>,
    next_id: u64,
}

/// One metrics request in progress: bytes read so far, then the response being written.
struct MetricsConn {
    stream: TcpStream,
    id: u64,
    request: Vec<u8>,
    response: Vec<u8>,
    sent: usize,
}

impl MetricsServer {
    /// Binds `addr` and registers it.
    pub(super) fn bind(addr: SocketAddr, registry: &Registry) -> io::Result<MetricsServer> {
        let mut listener = super::listeners::bind_listener(addr, 64, false)?;
        registry.register(&mut listener, token::METRICS, Interest::READABLE)?;
        Ok(MetricsServer {
            addr: listener.local_addr()?,
            listener,
            conns: Slab::new(),
            next_id: 0,
        })
    }
}

impl MetricsServer {
    /// True while connection `id` is at `key`.
    pub(super) fn has_conn(&self, key: usize, id: u64) -> bool {
        self.conns.get(key).is_some_and(|c| c.id == id)
    }

    /// Accepts metrics connections until `WouldBlock`; each gets [`METRICS_TIMEOUT`].
    pub(super) fn accept(&mut self, registry: &Registry, timers: &mut Timers<Timer>, now: Instant) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            if self.conns.len() >= MAX_METRICS_CONNS {
                continue;
            }
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let registered = registry.register(
                &mut stream,
                token::metrics_conn(key),
                Interest::READABLE | Interest::WRITABLE,
            );
            if registered.is_err() {
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            entry.insert(MetricsConn {
                stream,
                id,
                request: Vec::new(),
                response: Vec::new(),
                sent: 0,
            });
            let key = key as u32;
            timers.schedule(now + METRICS_TIMEOUT, Timer::MetricsTimeout { key, id });
        }
    }

    /// Reads the request, answers it (`render` gives the body of `/metrics`), writes the
    /// answer; closes when done or on error.
    pub(super) fn event(&mut self, key: usize, render: impl FnOnce() -> String) {
        let done = match self.step(key, render) {
            Ok(done) => done,
            Err(e) => {
                debug!("metrics connection failed: {e}");
                true
            }
        };
        if done {
            self.conns.try_remove(key);
        }
    }

    /// One step of a metrics connection; `Ok(true)` when it should be closed.
    fn step(&mut self, key: usize, render: impl FnOnce() -> String) -> io::Result<bool> {
        let Some(conn) = self.conns.get_mut(key) else {
            return Ok(false);
        };
        if conn.response.is_empty() {
            let mut buf = [0u8; 1024];
            let request = loop {
                match conn.stream.read(&mut buf) {
                    Ok(0) => return Ok(true),
                    Ok(n) => {
                        conn.request.extend_from_slice(&buf[..n]);
                        match metrics::parse_request(&conn.request) {
                            Request::Incomplete if conn.request.len() < MAX_REQUEST => {}
                            Request::Incomplete => break Request::Bad,
                            complete => break complete,
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            let body = match request {
                Request::Metrics { .. } => render(),
                _ => String::new(),
            };
            conn.response = metrics::response(&request, &body);
        }
        while conn.sent < conn.response.len() {
            match conn.stream.write(&conn.response[conn.sent..]) {
                Ok(n) => conn.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Closes metrics connection `key` if it is still connection `id`.
    pub(super) fn time_out(&mut self, key: usize, id: u64) {
        if self.has_conn(key, id) {
            self.conns.remove(key);
        }
    }
}
