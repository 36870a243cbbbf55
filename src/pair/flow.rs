//! The data path of a pair: its two ends, the two directions between them, and one round of
//! forwarding a direction through its [`Buffer`].
//!
//! Invariants: a direction reads from its source only while the source is `Open` and the
//! buffer has room (backpressure); FIN is passed on (`shutdown(Write)`) only after the
//! buffer has drained; a direction's flow only moves forward (`Open` → `Eof` → `Shut`).

use crate::buffer::{Buffer, Choice};
use crate::connect::ConnectCheck;
use crate::error::CloseReason;
use crate::io::Stop;
use crate::stats::IoStats;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Which end of a pair a socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The accepted client connection.
    Client = 0,
    /// The connection the proxy opened to an upstream server.
    Upstream = 1,
}

impl Side {
    /// The other end of the pair.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Upstream,
            Side::Upstream => Side::Client,
        }
    }

    /// The close reason when this side resets or fails.
    pub fn reset(self) -> CloseReason {
        match self {
            Side::Client => CloseReason::ClientReset,
            Side::Upstream => CloseReason::UpstreamReset,
        }
    }
}

/// A byte stream the pair can pump: a socket, or a scripted fake in tests (its descriptor is
/// for splicing; a fake's cannot be spliced).
pub trait Stream: Read + Write + rustix::fd::AsFd {
    /// Sends FIN: no more bytes will be written.
    fn shutdown_write(&mut self) -> io::Result<()>;
    /// Whether a connecting socket has finished, after an event.
    fn connect_check(&self) -> ConnectCheck;
    /// The error pending on the socket, if any (after an error event).
    fn take_error(&self) -> Option<io::Error>;
    /// The socket's own address (for a client: the address it connected to).
    fn local_addr(&self) -> io::Result<std::net::SocketAddr>;
    /// For a Unix domain socket, the raw paths of its peer and of itself (empty when
    /// unnamed), for a PROXY header; `None` for other sockets.
    fn unix_paths(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        None
    }
}

/// What an event said about a socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A read may make progress.
    pub readable: bool,
    /// A write may make progress.
    pub writable: bool,
    /// The peer's FIN was announced.
    pub read_closed: bool,
    /// An error is pending on the socket.
    pub error: bool,
}

/// One socket of a pair and the readiness seen but not yet used up.
///
/// Edge-triggered readiness: an event sets a flag, only `WouldBlock` (or a short read or
/// write) clears it. A flag that stays set while the buffer is full (or empty) is what lets
/// a pair resume without a new event.
#[derive(Debug)]
pub struct End<S> {
    /// The socket.
    pub stream: S,
    /// A read may make progress.
    pub readable: bool,
    /// A write may make progress.
    pub writable: bool,
    /// The peer's FIN (or an error) was announced: read until end of stream even after a
    /// short read. Cleared only by a read that would block.
    pub read_closed: bool,
}

impl<S> End<S> {
    /// A fresh end; nothing is known to be ready until an event says so.
    pub fn new(stream: S) -> End<S> {
        End {
            stream,
            readable: false,
            writable: false,
            read_closed: false,
        }
    }

    /// Takes in what an event said.
    pub fn mark(&mut self, r: Readiness) {
        self.readable |= r.readable;
        self.read_closed |= r.read_closed || r.error;
        self.writable |= r.writable || r.error;
    }
}

/// State of one direction, named after its source side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The source may still send; it is read while the buffer has room.
    Open,
    /// The source sent FIN; the buffer is draining towards the destination.
    Eof,
    /// The buffer drained and FIN was passed on (`shutdown(Write)` on the destination).
    Shut,
}

/// One direction: its buffer, its flow, the bytes it delivered and how backpressure hit it.
#[derive(Debug)]
pub struct Direction<B> {
    buffer: B,
    flow: Flow,
    /// Which kind of storage to take (in what would be padding).
    choice: Choice,
    delivered: u64,
    peak: u32,
    /// The last read wanted storage the budget could not give.
    starved: bool,
    /// Nanoseconds spent stalled before `stalled_since` (584 years fit).
    stalled_ns: u64,
    stalled_since: Option<Instant>,
}

impl<B: Buffer + Default> Default for Direction<B> {
    fn default() -> Self {
        Direction {
            buffer: B::default(),
            flow: Flow::Open,
            choice: Choice::default(),
            delivered: 0,
            peak: 0,
            starved: false,
            stalled_ns: 0,
            stalled_since: None,
        }
    }
}

impl<B: Buffer> Direction<B> {
    /// The buffer between source and destination.
    pub fn buffer(&self) -> &B {
        &self.buffer
    }

    /// The buffer, to take a preread header out of it.
    pub(super) fn buffer_mut(&mut self) -> &mut B {
        &mut self.buffer
    }

    /// Whether what is read must stay readable in user space from the next storage on (a
    /// PROXY header or a ClientHello before the upstream is chosen).
    pub(super) fn need_user_space(&mut self, needed: bool) {
        self.choice.set(Choice::USER_SPACE, needed);
    }

    /// Whether the source is still open.
    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// Bytes written to the destination so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Most bytes the buffer held at once.
    pub fn peak(&self) -> usize {
        self.peak as usize
    }

    /// Time the buffer spent full (reading from the source stopped), counting a stall still
    /// in progress at `now`.
    pub fn stalled_until(&self, now: Instant) -> Duration {
        Duration::from_nanos(self.stalled_ns)
            + self
                .stalled_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// True when the direction could not read for want of storage (the budget).
    pub(super) fn is_starved(&self) -> bool {
        self.starved
    }

    /// Gives the buffer's storage back whatever it holds (the pair is closing).
    pub(super) fn release(&mut self, pool: &mut B::Pool) {
        self.buffer.release_storage(pool);
    }

    /// Stops reading the source as if it had sent FIN: the buffer drains, then FIN is
    /// passed on.
    pub(super) fn end_source(&mut self) {
        if self.flow == Flow::Open {
            self.flow = Flow::Eof;
        }
    }

    /// After a pump at `now`: starts or ends a backpressure stall, and gives the storage of
    /// an empty buffer back.
    pub(super) fn settle(&mut self, now: Instant, pool: &mut B::Pool) {
        if self.buffer.is_full() && self.buffer.has_storage() {
            self.stalled_since.get_or_insert(now);
        } else if let Some(since) = self.stalled_since.take() {
            let stall = now.saturating_duration_since(since).as_nanos();
            self.stalled_ns = self
                .stalled_ns
                .saturating_add(stall.min(u128::from(u64::MAX)) as u64);
        }
        self.buffer.return_storage(pool);
    }

    /// One round: read at most `allowance` bytes of the source into the buffer, write the
    /// buffer to the destination (if there is one yet), pass FIN on once drained. Returns
    /// whether anything changed and how many bytes were read; `Err` is the reason to close.
    /// `first_fin` records which side sent FIN first.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward<S: Stream>(
        &mut self,
        src: &mut End<S>,
        dst: Option<&mut End<S>>,
        src_side: Side,
        first_fin: &mut Option<Side>,
        allowance: usize,
        pool: &mut B::Pool,
        io: &mut IoStats,
    ) -> Result<(bool, usize), CloseReason> {
        let mut progressed = false;
        let mut read = 0;
        let may_read =
            self.flow == Flow::Open && (src.readable || src.read_closed) && allowance > 0;
        if may_read {
            self.starved = !self.buffer.take_storage(pool, &mut self.choice);
        }
        if may_read && !self.buffer.is_full() {
            let choice = &mut self.choice;
            let p = self
                .buffer
                .fill_from(&mut src.stream, io, allowance, pool, choice);
            // Changing kind on the way (a refused splice) may have left it without storage.
            self.starved |= !self.buffer.has_storage();
            progressed |= p.moved > 0;
            read = p.moved;
            self.peak = self.peak.max(self.buffer.len() as u32);
            match p.stop {
                Stop::Drained => src.readable = false,
                Stop::WouldBlock => {
                    src.readable = false;
                    src.read_closed = false;
                }
                Stop::Full | Stop::Empty | Stop::Limit => {}
                Stop::Eof => {
                    self.flow = Flow::Eof;
                    first_fin.get_or_insert(src_side);
                    progressed = true;
                }
                Stop::Reset | Stop::Failed(_) => return Err(src_side.reset()),
            }
        }
        let Some(dst) = dst else {
            return Ok((progressed, read));
        };
        if dst.writable && !self.buffer.is_empty() {
            let p = self.buffer.drain_into(&mut dst.stream, io);
            progressed |= p.moved > 0;
            self.delivered += p.moved as u64;
            match p.stop {
                Stop::WouldBlock | Stop::Drained => dst.writable = false,
                Stop::Empty | Stop::Full | Stop::Eof | Stop::Limit => {}
                Stop::Reset | Stop::Failed(_) => return Err(src_side.peer().reset()),
            }
        }
        if self.flow == Flow::Eof && self.buffer.is_empty() {
            dst.stream
                .shutdown_write()
                .map_err(|_| src_side.peer().reset())?;
            self.flow = Flow::Shut;
            progressed = true;
        }
        Ok((progressed, read))
    }
}
