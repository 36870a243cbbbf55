//! Who the client is: reading the PROXY header a client must send first (the preread
//! phase), and the header a pair sends its upstream before any client byte.
//!
//! The header is parsed from the bytes already read into the client → upstream buffer: it
//! sits at the front of a buffer that was never drained, so it is one contiguous slice, and
//! only the header's bytes are taken out; what follows is the client's data. An accepted
//! header's client address is the pair's client address from then on; the socket's peer is
//! kept beside it.

use super::{Actions, Pair, Phase, Stream};
use crate::buffer::Buffer;
use crate::endpoint::Client;
use crate::error::CloseReason;
use crate::io::Stop;
use crate::proxy_protocol::{self, Parsed, Version};
use crate::stats::IoStats;
use log::debug;
use std::io;
use std::net::SocketAddr;

/// What a PROXY header said about the client, kept only for pairs that received one.
#[derive(Debug)]
pub(super) struct Identity {
    /// The socket's peer (the balancer in front of us).
    peer: Client,
    /// The address the client connected to, per the header.
    local: Option<SocketAddr>,
    authority: Option<String>,
    unique_id: Option<Vec<u8>>,
}

impl<S: Stream, B: Buffer> Pair<S, B> {
    /// The immediate peer, when a PROXY header named another client.
    pub fn peer_addr(&self) -> Option<Client> {
        self.identity()
            .map(|i| i.peer)
            .filter(|peer| *peer != self.client_addr)
    }

    /// The AUTHORITY the PROXY header carried.
    pub fn authority(&self) -> Option<&str> {
        self.identity()?.authority.as_deref()
    }

    /// The UNIQUE_ID the PROXY header carried.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.identity()?.unique_id.as_deref()
    }

    /// The extras of this pair, made when first needed.
    pub(super) fn extra_mut(&mut self) -> &mut super::Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// What the PROXY header said, if one was accepted.
    fn identity(&self) -> Option<&Identity> {
        self.extra.as_ref()?.identity.as_ref()
    }

    /// True while the client's PROXY header has not arrived.
    pub(super) fn awaiting_header(&self) -> bool {
        self.phase == Phase::Preread && self.attempts.as_ref().is_some_and(|a| a.awaiting_header)
    }

    /// Looks for the PROXY header in what the client sent so far: a whole one is taken out
    /// of the buffer (`Ok(true)`); a broken one, or none where the client ended or the
    /// buffer filled, is the reason to close.
    pub(super) fn read_proxy_header(&mut self) -> Result<bool, CloseReason> {
        let bytes = self.to_upstream.buffer().front();
        let ended = self.to_upstream.flow() != super::Flow::Open;
        let (header, len) = match proxy_protocol::parse(bytes) {
            Ok(Parsed::Done { header, len }) => (header, len),
            Ok(Parsed::Incomplete) if ended && bytes.is_empty() => {
                debug!(
                    "{} closed before sending a byte (a probe)",
                    self.client_addr
                );
                return Err(CloseReason::Probe);
            }
            Ok(Parsed::Incomplete) if ended || self.preread_cannot_fit() => {
                debug!("{}: incomplete PROXY header", self.client_addr);
                return Err(CloseReason::BadProxyHeader);
            }
            Ok(Parsed::Incomplete) => return Ok(false),
            Err(e) => {
                debug!("{}: {e}", self.client_addr);
                return Err(CloseReason::BadProxyHeader);
            }
        };
        self.to_upstream.buffer_mut().discard(len);
        if let Some(attempts) = self.attempts.as_mut() {
            attempts.awaiting_header = false;
        }
        let (client, local) = match header.addrs {
            Some((src, dst)) => (Client::Ip(src), Some(dst)),
            None => (self.client_addr, None),
        };
        self.extra_mut().identity = Some(Identity {
            peer: self.client_addr,
            local,
            authority: header.authority,
            unique_id: header.unique_id,
        });
        self.client_addr = client;
        Ok(true)
    }

    /// True when the buffer is full of an incomplete header or hello (a buffer without
    /// storage yet is not full: nothing was read).
    pub(super) fn preread_cannot_fit(&self) -> bool {
        let buffer = self.to_upstream.buffer();
        buffer.has_storage() && buffer.is_full()
    }

    /// The upstream connected: streaming from now, with the PROXY header to send first if
    /// the attempt asked for one; otherwise the attempt records go.
    pub(super) fn connected(&mut self, now: std::time::Instant, out: &mut Actions<S>) {
        self.phase = Phase::Streaming;
        let us = now.saturating_duration_since(self.started).as_micros();
        self.connect_us = Some(us.min(u128::from(u32::MAX)) as u32);
        let version = self
            .attempts
            .as_ref()
            .map_or(Version::Off, |a| a.send_proxy);
        let prefix = match (version, self.client_addr) {
            (Version::Off, _) => Vec::new(),
            (Version::V1, Client::Ip(src)) => proxy_protocol::write_v1(src, self.local_addr()),
            (Version::V2, Client::Ip(src)) => proxy_protocol::write_v2(src, self.local_addr()),
            // A Unix client has no address: v1 can only say UNKNOWN, v2 has AF_UNIX.
            (Version::V1, Client::Unix) => proxy_protocol::write_local(Version::V1),
            (Version::V2, Client::Unix) => {
                let (src, dst) = self.client.stream.unix_paths().unwrap_or_default();
                proxy_protocol::write_v2_unix(&src, &dst)
            }
        };
        self.keep_tried();
        match self.attempts.as_mut() {
            Some(attempts) if !prefix.is_empty() => {
                attempts.tried = Default::default();
                attempts.prefix = prefix;
            }
            _ => self.retire_attempts(out),
        }
    }

    /// The address the client connected to: the header's, else the client socket's.
    fn local_addr(&self) -> SocketAddr {
        let header = self.identity().and_then(|i| i.local);
        header
            .or_else(|| self.client.stream.local_addr().ok())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Writes what is left of the PROXY header to the upstream. Returns whether bytes moved
    /// and whether the header is still pending (client bytes wait behind it).
    pub(super) fn send_prefix(&mut self, io: &mut IoStats) -> Result<(bool, bool), CloseReason> {
        let Some(attempts) = self.attempts.as_mut().filter(|a| !a.prefix.is_empty()) else {
            return Ok((false, false));
        };
        let Some(upstream) = self.upstream.as_mut().filter(|u| u.writable) else {
            return Ok((false, true));
        };
        let mut moved = false;
        while !attempts.prefix.is_empty() {
            match io::Write::write(&mut upstream.stream, &attempts.prefix) {
                Ok(0) => return Err(CloseReason::UpstreamReset),
                Ok(n) => {
                    io.writes += 1;
                    io.write_bytes += n as u64;
                    attempts.prefix.drain(..n);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => match crate::io::classify(&e) {
                    Stop::WouldBlock => {
                        upstream.writable = false;
                        return Ok((moved, true));
                    }
                    _ => return Err(CloseReason::UpstreamReset),
                },
            }
        }
        // The box goes back to the loop's spares after this pump (see `Pair::pump`).
        attempts.done = true;
        Ok((moved, false))
    }
}
