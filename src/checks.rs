//! Active health checks: one non-blocking TCP connect probe per server at a time, driven by
//! the loop's poller and timers like any upstream connect (HAProxy's `check`).
//!
//! `Probes` only owns the probe sockets; the loop schedules the timers and feeds results to
//! each server's [`crate::health::Active`] state. A probe is identified by a sequence number,
//! so a timeout that fires after its probe finished is recognised as stale.

use crate::connect::{self, ConnectCheck};
use crate::token;
use crate::upstream::UpstreamId;
use mio::Interest;
use mio::Registry;
use mio::net::TcpStream;
use std::net::SocketAddr;

/// An in-flight probe.
struct Probe {
    stream: TcpStream,
    seq: u64,
}

/// The probes of one loop, indexed by server.
pub struct Probes {
    probes: Vec<Option<Probe>>,
    next_seq: u64,
}

/// Whether a probe started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// In flight; its timeout should name `seq`.
    Started {
        /// The probe's sequence number.
        seq: u64,
    },
    /// A probe of this server is still in flight; nothing started.
    Busy,
    /// The connect failed at once: count it as a failed check.
    Failed,
}

/// What became of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// Still connecting.
    Pending,
    /// The server accepted the connection.
    Up,
    /// Refused, failed or could not start.
    Down,
}

impl Probes {
    /// Room for one probe per server.
    pub fn new(servers: usize) -> Probes {
        Probes {
            probes: (0..servers).map(|_| None).collect(),
            next_seq: 0,
        }
    }

    /// Makes room for `servers` servers (a pool only grows).
    pub fn resize(&mut self, servers: usize) {
        self.probes
            .resize_with(servers.max(self.probes.len()), || None);
    }

    /// Starts a probe of server `server` of route `route` at `addr` unless one is in flight.
    pub fn start(
        &mut self,
        route: usize,
        server: UpstreamId,
        addr: SocketAddr,
        registry: &Registry,
    ) -> Start {
        if self.probes[server].is_some() {
            return Start::Busy;
        }
        let started = connect::start(addr).and_then(|mut stream| {
            registry
                .register(&mut stream, token::check(route, server), Interest::WRITABLE)
                .map(|()| stream)
        });
        match started {
            Ok(stream) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.probes[server] = Some(Probe { stream, seq });
                Start::Started { seq }
            }
            Err(_) => Start::Failed,
        }
    }

    /// Checks the probe of `server` after an event; a finished probe is closed.
    pub fn poll(&mut self, server: UpstreamId) -> ProbeResult {
        let Some(probe) = self.probes.get(server).and_then(Option::as_ref) else {
            return ProbeResult::Pending;
        };
        let result = match connect::check(&probe.stream) {
            ConnectCheck::Pending => return ProbeResult::Pending,
            ConnectCheck::Connected => ProbeResult::Up,
            ConnectCheck::Failed(_) => ProbeResult::Down,
        };
        self.close(server);
        result
    }

    /// Abandons the probe of `server` if it is still probe `seq`; true if it was.
    pub fn time_out(&mut self, server: UpstreamId, seq: u64) -> bool {
        let current = self.probes[server].as_ref().is_some_and(|p| p.seq == seq);
        if current {
            self.close(server);
        }
        current
    }

    /// Closes with RST, as HAProxy does, so probes leave no TIME_WAIT behind.
    fn close(&mut self, server: UpstreamId) {
        if let Some(probe) = self.probes[server].take() {
            connect::set_reset_on_close(&probe.stream);
        }
    }
}
