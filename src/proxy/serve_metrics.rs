//! `/metrics` served from the loop: a listener and a few short-lived HTTP/1.x connections,
//! each bounded in request size ([`crate::metrics::MAX_REQUEST`]), count and time, then
//! closed. Worker 0 serves every worker's latest snapshot (others publish theirs each second).

use super::{Proxy, Timer};
use crate::metrics::{self, MAX_REQUEST, Request};
use crate::stats::{
    OCCUPANCY_BOUNDS, RingSnapshot, RouteSnapshot, ServerSnapshot, ServerStats, Snapshot,
};
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
        let mut listener = super::setup::bind_listener(addr, 64, false)?;
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
}

impl Proxy {
    /// Accepts metrics connections until `WouldBlock`.
    pub(super) fn metrics_accept(&mut self, now: Instant) {
        let Some(server) = self.metrics.as_mut() else {
            return;
        };
        loop {
            let (mut stream, _) = match server.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            if server.conns.len() >= MAX_METRICS_CONNS {
                continue;
            }
            let entry = server.conns.vacant_entry();
            let key = entry.key();
            let registered = self.poll.registry().register(
                &mut stream,
                token::metrics_conn(key),
                Interest::READABLE | Interest::WRITABLE,
            );
            if registered.is_err() {
                continue;
            }
            let id = server.next_id;
            server.next_id += 1;
            entry.insert(MetricsConn {
                stream,
                id,
                request: Vec::new(),
                response: Vec::new(),
                sent: 0,
            });
            self.timers
                .schedule(now + METRICS_TIMEOUT, Timer::MetricsTimeout { key, id });
        }
    }

    /// Reads the request, answers it, writes the answer; closes when done or on error.
    pub(super) fn metrics_event(&mut self, key: usize, now: Instant) {
        let done = match self.metrics_step(key, now) {
            Ok(done) => done,
            Err(e) => {
                debug!("metrics connection failed: {e}");
                true
            }
        };
        if done && let Some(server) = self.metrics.as_mut() {
            server.conns.try_remove(key);
        }
    }

    /// One step of a metrics connection; `Ok(true)` when it should be closed.
    fn metrics_step(&mut self, key: usize, now: Instant) -> io::Result<bool> {
        let Some(conn) = self.metrics.as_mut().and_then(|s| s.conns.get_mut(key)) else {
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
                Request::Metrics { .. } => self.render_metrics(now),
                _ => String::new(),
            };
            let Some(conn) = self.metrics.as_mut().and_then(|s| s.conns.get_mut(key)) else {
                return Ok(true);
            };
            conn.response = metrics::response(&request, &body);
        }
        let Some(conn) = self.metrics.as_mut().and_then(|s| s.conns.get_mut(key)) else {
            return Ok(true);
        };
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
    pub(super) fn metrics_timeout(&mut self, key: usize, id: u64) {
        if let Some(server) = self.metrics.as_mut()
            && server.has_conn(key, id)
        {
            server.conns.remove(key);
        }
    }

    /// This worker's snapshot now, with the other workers' latest published ones.
    fn render_metrics(&mut self, now: Instant) -> String {
        let own = self.snapshot(now);
        let mut all: Vec<Snapshot> = match self.shared.lock() {
            Ok(shared) => shared
                .iter()
                .enumerate()
                .filter(|(worker, _)| *worker != self.worker)
                .filter_map(|(_, s)| s.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        all.insert(0, own);
        metrics::render(&all)
    }

    /// Counters and gauges of this loop at `now`.
    pub(super) fn snapshot(&self, now: Instant) -> Snapshot {
        // Counters include what open pairs have delivered so far, so long-lived connections
        // show their bytes before they close (the data path itself counts nothing here).
        let mut counters: Vec<Vec<ServerStats>> =
            self.routes.iter().map(|r| r.servers.clone()).collect();
        let mut stalled: Vec<(Duration, Duration)> = self
            .routes
            .iter()
            .map(|r| (r.stats.stalled_to_upstream, r.stats.stalled_to_client))
            .collect();
        let mut rings = RingSnapshot::default();
        for (_, pair) in &self.pairs {
            if let Some(id) = pair.upstream_id {
                let server = &mut counters[pair.route][id];
                server.bytes_to_upstream += pair.to_upstream.delivered;
                server.bytes_to_client += pair.to_client.delivered;
            }
            stalled[pair.route].0 += pair.to_upstream.stalled_until(now);
            stalled[pair.route].1 += pair.to_client.stalled_until(now);
            for ring in [&pair.to_upstream.ring, &pair.to_client.ring] {
                if !ring.has_storage() {
                    continue;
                }
                rings.bytes_in_use += ring.capacity() as u64;
                let ratio = ring.len() as f64 / ring.capacity() as f64;
                rings.occupancy_sum += ratio;
                let bucket = OCCUPANCY_BOUNDS
                    .iter()
                    .position(|&bound| ratio <= bound)
                    .unwrap_or(OCCUPANCY_BOUNDS.len() - 1);
                rings.occupancy[bucket] += 1;
            }
        }
        let routes = self
            .routes
            .iter()
            .zip(counters)
            .zip(stalled)
            .filter(|((r, _), _)| !r.retired || r.active > 0)
            .map(|((route, counters), (to_upstream, to_client))| {
                let mut stats = route.stats.clone();
                stats.stalled_to_upstream = to_upstream;
                stats.stalled_to_client = to_client;
                RouteSnapshot {
                    name: route.settings.name.clone(),
                    active: route.active as u64,
                    stats,
                    servers: route
                        .pool
                        .servers
                        .iter()
                        .zip(counters)
                        .filter(|(s, _)| !s.removed || s.active > 0)
                        .map(|(server, stats)| ServerSnapshot {
                            addr: server.addr,
                            active: server.active as u64,
                            up: server.is_available(now),
                            stats,
                        })
                        .collect(),
                }
            })
            .collect();
        rings.bytes_free = self
            .routes
            .iter()
            .map(|r| r.buffers.free_bytes() as u64)
            .sum();
        Snapshot {
            worker: self.worker,
            routes,
            io: self.io.clone(),
            rings,
        }
    }
}
