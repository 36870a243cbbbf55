//! A proxied connection: the client end, the upstream end and one ring per direction.
//!
//! `Pair` decides; the loop (`proxy.rs`) performs registration, connects and timers. The
//! pumps are generic over [`Stream`], so every decision here is unit-tested with scripted
//! fake sockets. Invariants: a direction's ring is only read into while its source is `Open`
//! and the ring is not full (backpressure); `shutdown(Write)` is sent towards a side only
//! after its ring has drained; a pair is finished exactly when both directions are `Shut`.

use crate::error::CloseReason;
use crate::io::{Stop, drain_into, fill_from};
use crate::ring::{BufferPool, Ring};
use crate::stats::IoStats;
use crate::upstream::UpstreamId;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
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
}

/// A byte stream the pair can pump: a socket, or a scripted fake in tests.
pub trait Stream: Read + Write {
    /// Sends FIN: no more bytes will be written.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Stream for mio::net::TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// One socket of a pair and the readiness the loop has seen but not yet used up.
///
/// Edge-triggered readiness: an event sets a flag, only `WouldBlock` clears it. A flag that
/// stays set while the ring is full (or empty) is what lets a pair resume without a new event.
#[derive(Debug)]
pub struct End<S> {
    /// The socket.
    pub stream: S,
    /// A read may make progress.
    pub readable: bool,
    /// A write may make progress.
    pub writable: bool,
    /// The peer's FIN (or an error) was announced; read until end of stream even after a
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
}

/// State of one direction, named after its source side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The source may still send; it is read while the ring has room.
    Open,
    /// The source sent FIN; the ring is draining towards the destination.
    Eof,
    /// The ring drained and FIN was passed on (`shutdown(Write)` on the destination).
    Shut,
}

/// Where the pair is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The upstream socket is connecting; attempt numbers tell stale timers apart.
    Connecting {
        /// How many servers this client has tried, this one included (0 before the first).
        attempt: u32,
    },
    /// Both sockets carry data.
    Streaming,
}

/// What the loop should do with a pair after pumping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it; wait for more events.
    Continue,
    /// Keep it, and pump it again next turn without waiting for an event: it hit
    /// [`MAX_PUMP_ROUNDS`] with work left.
    Yield,
    /// Tear it down for this reason.
    Close(CloseReason),
}

/// One direction: its ring, its flow, the bytes it delivered and how backpressure hit it.
#[derive(Debug)]
pub struct Direction {
    /// Bytes read from the source and not yet written to the destination.
    pub ring: Ring,
    /// Whether the source is still open.
    pub flow: Flow,
    /// Bytes written to the destination so far.
    pub delivered: u64,
    /// Highest number of bytes the ring held at once.
    pub peak: usize,
    /// Time the ring spent full (reading from the source stopped), up to `stalled_since`.
    pub stalled: Duration,
    /// When the ring last became full, while it still is.
    pub stalled_since: Option<Instant>,
}

impl Direction {
    fn new() -> Direction {
        Direction {
            ring: Ring::detached(),
            flow: Flow::Open,
            delivered: 0,
            peak: 0,
            stalled: Duration::ZERO,
            stalled_since: None,
        }
    }

    /// Starts or ends a backpressure stall after a pump at `now`.
    fn account_stall(&mut self, now: Instant) {
        if self.ring.is_full() && self.ring.has_storage() {
            self.stalled_since.get_or_insert(now);
        } else if let Some(since) = self.stalled_since.take() {
            self.stalled += now.saturating_duration_since(since);
        }
    }

    /// Total stall time, counting a stall still in progress at `now`.
    pub fn stalled_until(&self, now: Instant) -> Duration {
        self.stalled
            + self
                .stalled_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }
}

/// A client connection and its upstream connection, with a ring per direction.
///
/// Inputs: the loop sets readiness flags on `client`/`upstream` from events, then calls
/// [`Pair::pump`]. Outputs: a [`Verdict`]. Getters: the public fields. Time is passed in.
#[derive(Debug)]
pub struct Pair<S> {
    /// Unique over the loop's life: tells a reused slab key from the pair a timer names.
    pub id: u64,
    /// Index of the route that accepted the client.
    pub route: usize,
    /// The accepted client socket.
    pub client: End<S>,
    /// The client's address.
    pub client_addr: SocketAddr,
    /// The upstream socket: `None` only between a failed attempt and the next one.
    pub upstream: Option<End<S>>,
    /// The server `upstream` belongs to.
    pub upstream_id: Option<UpstreamId>,
    /// Servers this client has tried, in order.
    pub tried: Vec<UpstreamId>,
    /// Connecting or streaming.
    pub phase: Phase,
    /// Client → upstream.
    pub to_upstream: Direction,
    /// Upstream → client.
    pub to_client: Direction,
    /// Which side sent FIN first, for the close reason.
    pub first_fin: Option<Side>,
    /// When the client was accepted.
    pub started: Instant,
    /// When the upstream connection was established.
    pub connected: Option<Instant>,
    /// When a byte last moved (or the pair started).
    pub last_active: Instant,
    /// The idle timeout in force when the client arrived (a reload does not change it).
    pub idle_timeout: Duration,
}

/// Pump rounds per call before a busy pair yields to the others (fairness): each round moves
/// up to a ring's worth each way, so 64 rounds is 1 MiB per direction with 16 KiB rings.
pub const MAX_PUMP_ROUNDS: usize = 64;

impl<S: Stream> Pair<S> {
    /// A new pair for an accepted client whose upstream is not chosen yet.
    pub fn new(
        id: u64,
        route: usize,
        client: S,
        client_addr: SocketAddr,
        idle_timeout: Duration,
        now: Instant,
    ) -> Self {
        Pair {
            id,
            route,
            client: End::new(client),
            client_addr,
            upstream: None,
            upstream_id: None,
            tried: Vec::new(),
            phase: Phase::Connecting { attempt: 0 },
            to_upstream: Direction::new(),
            to_client: Direction::new(),
            first_fin: None,
            started: now,
            connected: None,
            last_active: now,
            idle_timeout,
        }
    }

    /// Moves every byte that can move now, passes FINs on, and says whether the pair is done.
    ///
    /// While connecting, only the client is read (early bytes wait in `to_upstream`). Safe to
    /// call spuriously: with nothing ready it changes nothing and returns `Continue`. A pair
    /// that still has work after [`MAX_PUMP_ROUNDS`] returns `Yield`. Ring
    /// storage comes from `pool` before a read and goes back once a ring is empty.
    pub fn pump(&mut self, now: Instant, pool: &mut BufferPool, io: &mut IoStats) -> Verdict {
        let verdict = self.pump_rounds(now, pool, io);
        self.to_upstream.account_stall(now);
        self.to_client.account_stall(now);
        pool.reclaim(&mut self.to_upstream.ring);
        pool.reclaim(&mut self.to_client.ring);
        verdict
    }

    fn pump_rounds(&mut self, now: Instant, pool: &mut BufferPool, io: &mut IoStats) -> Verdict {
        let streaming = self.phase == Phase::Streaming;
        for _ in 0..MAX_PUMP_ROUNDS {
            let upstream = if streaming {
                self.upstream.as_mut()
            } else {
                None
            };
            let forward_up = forward(
                &mut self.client,
                upstream,
                &mut self.to_upstream,
                Side::Client,
                &mut self.first_fin,
                pool,
                io,
            );
            let progressed_up = match forward_up {
                Ok(p) => p,
                Err(reason) => return Verdict::Close(reason),
            };
            let progressed_down = match (streaming, self.upstream.as_mut()) {
                (true, Some(upstream)) => match forward(
                    upstream,
                    Some(&mut self.client),
                    &mut self.to_client,
                    Side::Upstream,
                    &mut self.first_fin,
                    pool,
                    io,
                ) {
                    Ok(p) => p,
                    Err(reason) => return Verdict::Close(reason),
                },
                _ => false,
            };
            if progressed_up || progressed_down {
                self.last_active = now;
                continue;
            }
            return self.verdict();
        }
        Verdict::Yield
    }

    /// The "done" rule: finished when both directions passed their FIN on.
    fn verdict(&self) -> Verdict {
        match (self.to_upstream.flow, self.to_client.flow, self.first_fin) {
            (Flow::Shut, Flow::Shut, Some(Side::Upstream)) => {
                Verdict::Close(CloseReason::UpstreamClosed)
            }
            (Flow::Shut, Flow::Shut, _) => Verdict::Close(CloseReason::ClientClosed),
            (Flow::Open | Flow::Eof | Flow::Shut, Flow::Open | Flow::Eof | Flow::Shut, _) => {
                Verdict::Continue
            }
        }
    }
}

fn reset_of(side: Side) -> CloseReason {
    match side {
        Side::Client => CloseReason::ClientReset,
        Side::Upstream => CloseReason::UpstreamReset,
    }
}

/// One round of one direction: read the source into the ring, write the ring to the
/// destination (if connected), pass FIN on once drained. `Ok(true)` if anything changed.
fn forward<S: Stream>(
    src: &mut End<S>,
    dst: Option<&mut End<S>>,
    dir: &mut Direction,
    src_side: Side,
    first_fin: &mut Option<Side>,
    pool: &mut BufferPool,
    io: &mut IoStats,
) -> Result<bool, CloseReason> {
    let mut progressed = false;
    if dir.flow == Flow::Open && (src.readable || src.read_closed) {
        pool.fill(&mut dir.ring);
    }
    if dir.flow == Flow::Open && (src.readable || src.read_closed) && !dir.ring.is_full() {
        let p = fill_from(&mut dir.ring, &mut src.stream, io);
        progressed |= p.moved > 0;
        dir.peak = dir.peak.max(dir.ring.len());
        match p.stop {
            Stop::Drained => src.readable = false,
            Stop::WouldBlock => {
                src.readable = false;
                src.read_closed = false;
            }
            Stop::Full | Stop::Empty => {}
            Stop::Eof => {
                dir.flow = Flow::Eof;
                first_fin.get_or_insert(src_side);
                progressed = true;
            }
            Stop::Reset | Stop::Failed(_) => return Err(reset_of(src_side)),
        }
    }
    let Some(dst) = dst else {
        return Ok(progressed);
    };
    if dst.writable && !dir.ring.is_empty() {
        let p = drain_into(&mut dir.ring, &mut dst.stream, io);
        progressed |= p.moved > 0;
        dir.delivered += p.moved as u64;
        match p.stop {
            Stop::WouldBlock | Stop::Drained => dst.writable = false,
            Stop::Empty | Stop::Full | Stop::Eof => {}
            Stop::Reset | Stop::Failed(_) => return Err(reset_of(src_side.peer())),
        }
    }
    if dir.flow == Flow::Eof && dir.ring.is_empty() {
        dst.stream
            .shutdown_write()
            .map_err(|_| reset_of(src_side.peer()))?;
        dir.flow = Flow::Shut;
        progressed = true;
    }
    Ok(progressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::time::Duration;

    /// A scripted socket: reads play `incoming` (then `WouldBlock`, or EOF/reset if set);
    /// writes accept up to `write_room` bytes, then block.
    #[derive(Debug, Default)]
    struct Fake {
        incoming: VecDeque<u8>,
        then: Option<io::ErrorKind>,
        eof: bool,
        written: Vec<u8>,
        write_room: usize,
        write_error: Option<io::ErrorKind>,
        shut: bool,
    }

    impl Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(!buf.is_empty());
            if !self.incoming.is_empty() {
                let n = buf.len().min(self.incoming.len());
                for (slot, byte) in buf.iter_mut().zip(self.incoming.drain(..n)) {
                    *slot = byte;
                }
                return Ok(n);
            }
            match (self.then, self.eof) {
                (Some(kind), _) => Err(kind.into()),
                (None, true) => Ok(0),
                (None, false) => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
        fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
            self.read_all_slices(bufs)
        }
    }

    impl Fake {
        /// Like a socket's `readv`: fills every slice in turn.
        fn read_all_slices(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
            let mut total = 0;
            for buf in bufs.iter_mut().filter(|b| !b.is_empty()) {
                match self.read(buf) {
                    Ok(n) => {
                        total += n;
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if total == 0 => return Err(e),
                    Err(_) => break,
                }
            }
            Ok(total)
        }
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            assert!(!self.shut, "write after shutdown");
            if let Some(kind) = self.write_error {
                return Err(kind.into());
            }
            let n = buf.len().min(self.write_room);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.write_room -= n;
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        /// Like a socket's `writev`: takes from every slice, not just the first.
        fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
            let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            self.write(&joined)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Stream for Fake {
        fn shutdown_write(&mut self) -> io::Result<()> {
            self.shut = true;
            Ok(())
        }
    }

    fn fake(incoming: &[u8], write_room: usize) -> Fake {
        Fake {
            incoming: incoming.iter().copied().collect(),
            write_room,
            ..Fake::default()
        }
    }

    /// A streaming pair with both ends ready, 8-byte rings.
    fn pair_streaming(client: Fake, upstream: Fake) -> Pair<Fake> {
        let now = Instant::now();
        let mut pair = Pair::new(
            1,
            0,
            client,
            ([127, 0, 0, 1], 5000).into(),
            Duration::MAX,
            now,
        );
        pair.upstream = Some(End::new(upstream));
        pair.phase = Phase::Streaming;
        ready(&mut pair.client);
        ready(pair.upstream.as_mut().unwrap());
        pair
    }

    /// Pumps with a fresh pool of 8-byte buffers.
    fn pump(pair: &mut Pair<Fake>, now: Instant) -> Verdict {
        pair.pump(now, &mut BufferPool::new(8, 4), &mut IoStats::default())
    }

    fn ready(end: &mut End<Fake>) {
        end.readable = true;
        end.writable = true;
    }

    fn up(pair: &mut Pair<Fake>) -> &mut Fake {
        &mut pair.upstream.as_mut().unwrap().stream
    }

    #[test]
    fn forwards_both_ways_through_small_rings() {
        let mut pair = pair_streaming(fake(b"hello upstream!", 100), fake(b"hi client", 100));
        assert_eq!(pump(&mut pair, Instant::now()), Verdict::Continue);
        assert_eq!(up(&mut pair).written, b"hello upstream!");
        assert_eq!(pair.client.stream.written, b"hi client");
        assert_eq!(pair.to_upstream.delivered, 15);
        assert!(!pair.client.readable && !pair.upstream.as_ref().unwrap().readable);
    }

    #[test]
    fn full_ring_stops_reading_until_destination_drains() {
        let mut pair = pair_streaming(fake(&[7; 20], 0), fake(b"", 3));
        pump(&mut pair, Instant::now());
        assert_eq!(up(&mut pair).written.len(), 3);
        assert!(pair.to_upstream.ring.is_full(), "ring holds the backlog");
        assert!(pair.client.readable, "the read edge is remembered");
        assert_eq!(pair.client.stream.incoming.len(), 20 - 8 - 3);
        up(&mut pair).write_room = 100;
        pair.upstream.as_mut().unwrap().writable = true;
        pump(&mut pair, Instant::now());
        assert_eq!(up(&mut pair).written, vec![7; 20]);
    }

    #[test]
    fn peaks_and_stalls_are_measured_per_direction() {
        let start = Instant::now();
        let mut pair = pair_streaming(fake(&[7; 20], 0), fake(b"", 3));
        pump(&mut pair, start);
        assert_eq!(pair.to_upstream.peak, 8);
        assert_eq!(pair.to_upstream.stalled_since, Some(start));
        assert_eq!(pair.to_client.peak, 0);
        let later = start + Duration::from_millis(250);
        assert_eq!(
            pair.to_upstream.stalled_until(later),
            Duration::from_millis(250)
        );
        up(&mut pair).write_room = 100;
        pair.upstream.as_mut().unwrap().writable = true;
        pump(&mut pair, later);
        assert_eq!(pair.to_upstream.stalled, Duration::from_millis(250));
        assert_eq!(pair.to_upstream.stalled_since, None);
    }

    #[test]
    fn early_client_bytes_wait_while_connecting() {
        let now = Instant::now();
        let mut pair = Pair::new(
            1,
            0,
            fake(b"early", 10),
            ([127, 0, 0, 1], 1).into(),
            Duration::MAX,
            now,
        );
        pair.client.readable = true;
        assert_eq!(pump(&mut pair, now), Verdict::Continue);
        assert_eq!(pair.to_upstream.ring.len(), 5);
        pair.upstream = Some(End::new(fake(b"", 10)));
        ready(pair.upstream.as_mut().unwrap());
        pair.phase = Phase::Streaming;
        pump(&mut pair, now);
        assert_eq!(up(&mut pair).written, b"early");
    }

    #[test]
    fn client_fin_is_passed_on_after_drain_and_other_direction_keeps_flowing() {
        let mut client = fake(b"request", 100);
        client.eof = true;
        let mut pair = pair_streaming(client, fake(b"", 100));
        pair.client.read_closed = true;
        assert_eq!(pump(&mut pair, Instant::now()), Verdict::Continue);
        assert!(up(&mut pair).shut);
        assert_eq!(pair.to_upstream.flow, Flow::Shut);
        up(&mut pair).incoming.extend(b"reply");
        up(&mut pair).eof = true;
        pair.upstream.as_mut().unwrap().read_closed = true;
        assert_eq!(
            pump(&mut pair, Instant::now()),
            Verdict::Close(CloseReason::ClientClosed)
        );
        assert_eq!(pair.client.stream.written, b"reply");
        assert!(pair.client.stream.shut);
    }

    #[test]
    fn fin_waits_for_the_ring_to_drain() {
        let mut client = fake(b"abcdef", 100);
        client.eof = true;
        let mut pair = pair_streaming(client, fake(b"", 2));
        pair.client.read_closed = true;
        pump(&mut pair, Instant::now());
        assert_eq!(pair.to_upstream.flow, Flow::Eof);
        assert!(!up(&mut pair).shut);
        up(&mut pair).write_room = 10;
        pair.upstream.as_mut().unwrap().writable = true;
        pump(&mut pair, Instant::now());
        assert!(up(&mut pair).shut);
        assert_eq!(up(&mut pair).written, b"abcdef");
    }

    #[test]
    fn upstream_fin_first_gives_upstream_closed() {
        let mut upstream = fake(b"bye", 100);
        upstream.eof = true;
        let mut pair = pair_streaming(fake(b"", 100), upstream);
        pair.upstream.as_mut().unwrap().read_closed = true;
        assert_eq!(pump(&mut pair, Instant::now()), Verdict::Continue);
        assert!(pair.client.stream.shut);
        pair.client.stream.eof = true;
        pair.client.read_closed = true;
        assert_eq!(
            pump(&mut pair, Instant::now()),
            Verdict::Close(CloseReason::UpstreamClosed)
        );
    }

    #[test]
    fn resets_name_the_side_that_failed() {
        let mut client = fake(b"", 100);
        client.then = Some(io::ErrorKind::ConnectionReset);
        let mut pair = pair_streaming(client, fake(b"", 100));
        assert_eq!(
            pump(&mut pair, Instant::now()),
            Verdict::Close(CloseReason::ClientReset)
        );

        let mut upstream = fake(b"", 0);
        upstream.write_error = Some(io::ErrorKind::BrokenPipe);
        let mut pair = pair_streaming(fake(b"data", 100), upstream);
        assert_eq!(
            pump(&mut pair, Instant::now()),
            Verdict::Close(CloseReason::UpstreamReset)
        );
    }

    #[test]
    fn short_read_waits_for_the_next_event_unless_fin_was_announced() {
        let mut client = fake(b"abc", 100);
        client.eof = true;
        let mut pair = pair_streaming(client, fake(b"", 100));
        pump(&mut pair, Instant::now());
        assert_eq!(up(&mut pair).written, b"abc");
        assert_eq!(
            pair.to_upstream.flow,
            Flow::Open,
            "no read after a short read"
        );
        assert!(!pair.client.readable);
        pair.client.read_closed = true;
        pump(&mut pair, Instant::now());
        assert_eq!(pair.to_upstream.flow, Flow::Shut);
    }

    #[test]
    fn idle_pair_holds_no_ring_storage() {
        let mut pool = BufferPool::new(8, 4);
        let mut pair = pair_streaming(fake(b"ping", 100), fake(b"", 100));
        pair.pump(Instant::now(), &mut pool, &mut IoStats::default());
        assert!(!pair.to_upstream.ring.has_storage());
        assert!(!pair.to_client.ring.has_storage());
        assert_eq!(pool.free_len(), 2, "both buffers went back to the pool");
    }

    #[test]
    fn endless_source_yields_after_the_round_cap() {
        let mut pair = pair_streaming(fake(&[1; 8 * 100], 0), fake(b"", 8 * 100));
        assert_eq!(pump(&mut pair, Instant::now()), Verdict::Yield);
        assert_eq!(up(&mut pair).written.len(), 8 * MAX_PUMP_ROUNDS);
        assert_eq!(pump(&mut pair, Instant::now()), Verdict::Continue);
        assert_eq!(up(&mut pair).written.len(), 8 * 100);
    }

    #[test]
    fn spurious_pump_changes_nothing() {
        let start = Instant::now();
        let mut pair = pair_streaming(fake(b"", 0), fake(b"", 0));
        let later = start + Duration::from_secs(5);
        assert_eq!(pump(&mut pair, later), Verdict::Continue);
        assert!(pair.last_active < later, "no byte moved, so not active");
        assert_eq!(pump(&mut pair, later), Verdict::Continue);
    }
}
