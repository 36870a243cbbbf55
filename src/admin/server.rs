//! The admin thread's loop: its own `mio::Poll` with the admin listener, a waker to stop
//! it, and a few short-lived connections bounded as `/metrics` bounds its own (at most
//! [`MAX_CONNS`] at once, [`CONN_TIMEOUT`] each from accept to close, at most
//! [`MAX_REQUEST`] + [`MAX_BODY`] bytes read), each answered once and closed.
//!
//! A client that is neither loopback nor in `admin_allow` is closed at accept. A request
//! with an `Origin` header that is not this admin address (`http://` and the address the
//! client connected to) is answered 403 before its endpoint is looked at, so a page of
//! another origin (or a sandboxed one, `Origin: null`) can change nothing; on a loopback
//! address so is one whose `Host` names neither it nor `localhost` ([`host_allowed`]).

use super::answer::Workers;
use super::endpoint::{self, Refusal};
use super::request::{self, MAX_BODY, Method, Parse};
use super::response::Response;
use crate::metrics::MAX_REQUEST;
use ipnet::IpNet;
use log::debug;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most admin connections at once; more are closed at accept.
pub const MAX_CONNS: usize = 16;
/// How long one admin connection may take from accept to close.
pub const CONN_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection `key` has token `FIRST_CONN + key`.
const FIRST_CONN: usize = 2;

/// One admin request in progress.
struct Conn {
    stream: TcpStream,
    /// The address the client connected to: the only `Origin` accepted names it.
    local: SocketAddr,
    deadline: Instant,
    request: Vec<u8>,
    response: Vec<u8>,
    sent: usize,
}

/// The admin loop's state.
pub(super) struct Server {
    pub poll: Poll,
    pub listener: TcpListener,
    /// `admin_allow`, replaced by a reload ([`super::Running::set_allow`]).
    pub allow: Arc<Mutex<Vec<IpNet>>>,
    pub waker: Arc<Waker>,
    pub stop: Arc<AtomicBool>,
    conns: Slab<Conn>,
}

/// True when `ip` may use the admin: loopback, or in `allow` (IPv4-mapped addresses count
/// as IPv4).
pub fn allowed(ip: IpAddr, allow: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || allow.iter().any(|net| net.contains(&ip))
}

/// True when a `Host` header `host` may name the admin at `local`. On a loopback address
/// only the address itself (`127.0.0.1:9101`, `[::1]:9101`, the port left out when it is
/// 80) and `localhost` with the port: a web page whose own name was rebound to 127.0.0.1
/// (DNS rebinding) sends that name and reads nothing. On any other address every name (the
/// operator's DNS names; `admin_allow` bounds who may connect).
pub fn host_allowed(host: &str, local: SocketAddr) -> bool {
    if !local.ip().to_canonical().is_loopback() {
        return true;
    }
    let host = host.to_ascii_lowercase();
    let port = local.port();
    [local.to_string(), format!("localhost:{port}")]
        .iter()
        .any(|name| {
            *name == host || (port == 80 && Some(host.as_str()) == name.strip_suffix(":80"))
        })
}

/// True when `origin` names the admin at `local` as a browser writes it (`http://IP:PORT`,
/// IPv6 in brackets, the port left out when it is 80).
pub fn same_origin(origin: &str, local: SocketAddr) -> bool {
    let full = format!("http://{local}");
    origin == full || (local.port() == 80 && Some(origin) == full.strip_suffix(":80"))
}

impl Server {
    /// The loop over `poll`, serving from `listener`.
    pub fn new(poll: Poll, listener: TcpListener, allow: Vec<IpNet>) -> io::Result<Server> {
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Server {
            poll,
            listener,
            allow: Arc::new(Mutex::new(allow)),
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            conns: Slab::new(),
        })
    }

    /// Serves until stopped through the waker.
    pub fn run(mut self, workers: &Workers) {
        let mut events = Events::with_capacity(64);
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            let next = self.conns.iter().map(|(_, c)| c.deadline).min();
            let timeout = next.map(|at| at.saturating_duration_since(now));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("admin: poll failed, the admin stops serving: {e}");
                    return;
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => self.step(t - FIRST_CONN, workers),
                }
            }
            let now = Instant::now();
            self.conns.retain(|_, c| c.deadline > now);
        }
    }

    /// Accepts until `WouldBlock`; closes clients not allowed and those over [`MAX_CONNS`].
    fn accept(&mut self) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let allow = self
                .allow
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !allowed(peer.ip(), &allow) {
                debug!("admin: {peer} is not loopback nor in admin_allow: closed");
                continue;
            }
            if self.conns.len() >= MAX_CONNS {
                continue;
            }
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            let entry = self.conns.vacant_entry();
            let token = Token(FIRST_CONN + entry.key());
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut stream, token, interest)
                .is_err()
            {
                continue;
            }
            entry.insert(Conn {
                stream,
                local,
                deadline: Instant::now() + CONN_TIMEOUT,
                request: Vec::new(),
                response: Vec::new(),
                sent: 0,
            });
        }
    }

    /// Reads, answers and writes connection `key`; closes it when done or on error.
    fn step(&mut self, key: usize, workers: &Workers) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match conn.step(workers) {
            Ok(false) => {}
            Ok(true) => {
                self.conns.remove(key);
            }
            Err(e) => {
                debug!("admin connection failed: {e}");
                self.conns.remove(key);
            }
        }
    }
}

impl Conn {
    /// One step; `Ok(true)` when the connection should be closed.
    fn step(&mut self, workers: &Workers) -> io::Result<bool> {
        if self.response.is_empty() {
            let mut buf = [0u8; 1024];
            let parsed = loop {
                match self.stream.read(&mut buf) {
                    Ok(0) => return Ok(true),
                    Ok(n) => {
                        self.request.extend_from_slice(&buf[..n]);
                        match request::parse(&self.request) {
                            Parse::Incomplete if self.request.len() < MAX_REQUEST + MAX_BODY => {}
                            Parse::Incomplete => break Parse::Bad("a request over the limit"),
                            done => break done,
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            self.response = match parsed {
                Parse::Done(request) => {
                    let head = request.method == Method::Head;
                    respond(&request, self.local, workers).to_bytes(head)
                }
                Parse::Bad(why) => Response::refusal(&Refusal::new(400, why)).to_bytes(false),
                Parse::Incomplete => return Ok(false),
            };
        }
        while self.sent < self.response.len() {
            match self.stream.write(&self.response[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// The answer to one complete request on a connection to `local`.
fn respond(request: &request::Request, local: SocketAddr, workers: &Workers) -> Response {
    if let Some(host) = request.hosts.iter().find(|h| !host_allowed(h, local)) {
        let message = format!(
            "Host {} does not name this admin (http://{local}, or localhost with its port): \
             refused",
            serde_json::Value::from(host.as_str())
        );
        return Response::refusal(&Refusal::new(403, message));
    }
    if let Some(origin) = request.origins.iter().find(|o| !same_origin(o, local)) {
        let message = format!(
            "Origin {} is not this admin (http://{local}): refused",
            serde_json::Value::from(origin.as_str())
        );
        return Response::refusal(&Refusal::new(403, message));
    }
    match endpoint::endpoint(request.method, &request.target, &request.body) {
        Ok(endpoint) => workers.answer(endpoint),
        Err(refusal) => Response::refusal(&refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_admin_allow_are_served() {
        let allow: Vec<IpNet> = vec!["10.1.0.0/16".parse().unwrap()];
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "::ffff:127.0.0.1",
            "10.1.2.3",
        ] {
            assert!(allowed(ip.parse().unwrap(), &allow), "{ip}");
        }
        for ip in ["10.2.0.1", "192.168.1.1", "::ffff:10.2.0.1", "2001:db8::1"] {
            assert!(!allowed(ip.parse().unwrap(), &allow), "{ip}");
        }
        assert!(!allowed("10.1.2.3".parse().unwrap(), &[]));
    }

    #[test]
    fn only_the_admin_address_itself_is_its_origin() {
        let local: SocketAddr = "127.0.0.1:9101".parse().unwrap();
        assert!(same_origin("http://127.0.0.1:9101", local));
        for other in [
            "null",
            "http://localhost:9101",
            "http://127.0.0.1:9102",
            "https://127.0.0.1:9101",
            "http://127.0.0.1:9101/",
            "http://evil.example",
            "",
        ] {
            assert!(!same_origin(other, local), "{other}");
        }
        let v6: SocketAddr = "[::1]:9101".parse().unwrap();
        assert!(same_origin("http://[::1]:9101", v6));
        let port80: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert!(same_origin("http://127.0.0.1", port80));
        assert!(same_origin("http://127.0.0.1:80", port80));
    }

    #[test]
    fn a_loopback_admin_takes_only_its_own_host_names() {
        let local: SocketAddr = "127.0.0.1:9101".parse().unwrap();
        for host in ["127.0.0.1:9101", "localhost:9101", "LocalHost:9101"] {
            assert!(host_allowed(host, local), "{host}");
        }
        for host in [
            "evil.example:9101",
            "127.0.0.1:9102",
            "127.0.0.1",
            "localhost",
            "",
        ] {
            assert!(!host_allowed(host, local), "{host}");
        }
        let v6: SocketAddr = "[::1]:9101".parse().unwrap();
        assert!(host_allowed("[::1]:9101", v6) && !host_allowed("::1", v6));
        let port80: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert!(host_allowed("127.0.0.1", port80) && host_allowed("localhost", port80));
        let public: SocketAddr = "192.0.2.7:9101".parse().unwrap();
        assert!(
            host_allowed("proxy.example:9101", public),
            "operators' names"
        );
    }
}
