//! Active health checks: non-blocking TCP connect probes driven by the loop's poller and
//! timers like any upstream connect (HAProxy's `check`).
//!
//! `Probes` owns only the sockets of probes in flight, in a slab whose key is the probe's
//! token; each probe names its route and server, whose [`crate::upstream::CheckState`] says
//! it is probing. A probe also has a sequence number, so a timeout that fires after its
//! probe finished (and the slab key was reused) is recognised as stale. A server that
//! expects a PROXY header is sent one without addresses (v2 LOCAL, v1 `PROXY UNKNOWN`) once
//! the probe connects, so it sees no broken header, and the probe then ends with a FIN;
//! other probes end with RST, as HAProxy's do, leaving no TIME_WAIT.

use crate::conn::Conn;
use crate::connect::{self, ConnectCheck};
use crate::endpoint::Endpoint;
use crate::token;
use crate::upstream::UpstreamId;
use mio::Interest;
use mio::Registry;
use slab::Slab;
use std::io;

/// An in-flight probe.
struct Probe {
    stream: Conn,
    route: usize,
    server: UpstreamId,
    seq: u64,
    /// Sent once connected (a PROXY header), then the probe closes with FIN.
    hello: Vec<u8>,
}

/// The probes in flight in one loop.
#[derive(Default)]
pub struct Probes {
    probes: Slab<Probe>,
    next_seq: u64,
}

/// A probe that finished: whose it was and how it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// The route of the server probed.
    pub route: usize,
    /// The server probed.
    pub server: UpstreamId,
    /// The server accepted the connection.
    pub up: bool,
}

impl Probes {
    /// Starts a probe of `server` of `route` at `addr` (from the source the server's
    /// clients use, in `options`) that sends `hello` once connected; returns its key and
    /// sequence number for the timeout.
    pub fn start(
        &mut self,
        (route, server): (usize, UpstreamId),
        (addr, options): (&Endpoint, &connect::SocketOptions),
        hello: Vec<u8>,
        registry: &Registry,
    ) -> io::Result<(usize, u64)> {
        let entry = self.probes.vacant_entry();
        let key = entry.key();
        let mut stream = connect::start(addr, options)?;
        registry.register(&mut stream, token::probe(key), Interest::WRITABLE)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        entry.insert(Probe {
            stream,
            route,
            server,
            seq,
            hello,
        });
        Ok((key, seq))
    }

    /// Checks probe `key` after an event; a finished probe is closed.
    pub fn poll(&mut self, key: usize) -> Option<Finished> {
        let probe = self.probes.get(key)?;
        let up = match connect::check(&probe.stream) {
            ConnectCheck::Pending => return None,
            ConnectCheck::Connected => true,
            ConnectCheck::Failed(_) => false,
        };
        Some(self.close(key, up))
    }

    /// Abandons probe `key` if it is still probe `seq` (a timeout): a failed check.
    pub fn time_out(&mut self, key: usize, seq: u64) -> Option<Finished> {
        let current = self.probes.get(key).is_some_and(|p| p.seq == seq);
        current.then(|| self.close(key, false))
    }

    /// Closes probe `key`: after its hello with FIN, else with RST.
    fn close(&mut self, key: usize, up: bool) -> Finished {
        let mut probe = self.probes.remove(key);
        if up && !probe.hello.is_empty() {
            // A fresh socket's send buffer takes a header of at most 107 or 16 bytes at once.
            let _ = io::Write::write(&mut probe.stream, &probe.hello);
            let _ = crate::pair::Stream::shutdown_write(&mut probe.stream);
        } else {
            connect::set_reset_on_close(&probe.stream);
        }
        Finished {
            route: probe.route,
            server: probe.server,
            up,
        }
    }
}
