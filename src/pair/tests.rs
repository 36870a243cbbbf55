//! The pair tested without sockets or clocks: scripted streams, a virtual clock (durations
//! added to one base instant), and the actions each input pushes.

use super::*;
use crate::ring::BufferPool;
use std::io::{Read, Write};

/// A scripted socket: reads play `incoming` (then `WouldBlock`, or EOF/reset if set);
/// writes accept up to `write_room` bytes, then block; a connect check answers `connect`.
#[derive(Debug, Default)]
pub(super) struct Fake {
    pub(super) incoming: VecDeque<u8>,
    pub(super) then: Option<io::ErrorKind>,
    pub(super) eof: bool,
    pub(super) written: Vec<u8>,
    pub(super) write_room: usize,
    pub(super) write_error: Option<io::ErrorKind>,
    pub(super) shut: bool,
    /// `None`: still connecting; `Some(None)`: connected; `Some(Some(kind))`: failed.
    pub(super) connect: Option<Option<io::ErrorKind>>,
    /// The error an error event reports.
    pub(super) error: Option<io::ErrorKind>,
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
        // Like a socket's `readv`: fills every slice in turn.
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
    fn connect_check(&self) -> ConnectCheck {
        match self.connect {
            None => ConnectCheck::Pending,
            Some(None) => ConnectCheck::Connected,
            Some(Some(kind)) => ConnectCheck::Failed(kind.into()),
        }
    }
    fn take_error(&self) -> Option<io::Error> {
        self.error.map(io::Error::from)
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(([127, 0, 0, 1], 8080).into())
    }
}

impl rustix::fd::AsFd for Fake {
    /// `/dev/null`, opened once: a fake has no socket to splice.
    fn as_fd(&self) -> rustix::fd::BorrowedFd<'_> {
        static NULL: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();
        NULL.get_or_init(|| std::fs::File::open("/dev/null").expect("open /dev/null"))
            .as_fd()
    }
}

pub(super) fn fake(incoming: &[u8], write_room: usize) -> Fake {
    Fake {
        incoming: incoming.iter().copied().collect(),
        write_room,
        ..Fake::default()
    }
}

pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn policy(tries: usize) -> ConnectPolicy {
    ConnectPolicy {
        idle_timeout: Duration::from_secs(600),
        preread: Preread::default(),
        connect_timeout: CONNECT_TIMEOUT,
        tries,
        tries_timeout: None,
        max_lifetime: None,
        upload_rate: None,
        download_rate: None,
    }
}

pub(super) const READY: Readiness = Readiness {
    readable: true,
    writable: true,
    read_closed: false,
    error: false,
};

/// The loop's side, scripted: a virtual clock, the buffer pool, the action queue.
pub(super) struct Harness {
    pub(super) now: Instant,
    pub(super) pool: BufferPool,
    pub(super) io: IoStats,
    pub(super) out: Actions<Fake>,
}

impl Harness {
    pub(super) fn new() -> Harness {
        Harness::with_buffers(8)
    }

    /// A harness whose buffers hold `size` bytes.
    pub(super) fn with_buffers(size: usize) -> Harness {
        Harness {
            now: Instant::now(),
            pool: BufferPool::new(size, 4, crate::ring::Budget::new(usize::MAX)),
            io: IoStats::default(),
            out: VecDeque::new(),
        }
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Takes the actions pushed so far (attempt records handed back are the loop's
    /// bookkeeping: left out).
    pub(super) fn actions(&mut self) -> Vec<Action<Fake>> {
        self.out
            .drain(..)
            .filter(|a| !matches!(a, Action::Spare(_)))
            .collect()
    }

    pub(super) fn ready(
        &mut self,
        pair: &mut Pair<Fake>,
        side: Side,
        r: Readiness,
    ) -> Vec<Action<Fake>> {
        pair.on_ready(
            side,
            r,
            self.now,
            &mut self.pool,
            &mut self.io,
            &mut self.out,
        );
        self.actions()
    }

    pub(super) fn pump(&mut self, pair: &mut Pair<Fake>) -> Vec<Action<Fake>> {
        pair.pump(self.now, &mut self.pool, &mut self.io, &mut self.out);
        self.actions()
    }

    pub(super) fn timer(&mut self, pair: &mut Pair<Fake>, timer: PairTimer) -> Vec<Action<Fake>> {
        pair.on_timer(timer, self.now, &mut self.out);
        self.actions()
    }

    /// A pair just accepted and started: the idle wake-up and a request for a server.
    pub(super) fn accept(&mut self, client: Fake, tries: usize) -> Pair<Fake> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 5000));
        let idle = Duration::from_secs(60);
        let policy = ConnectPolicy {
            idle_timeout: idle,
            ..policy(tries)
        };
        let mut pair = Pair::new(1, 0, client, addr, policy, &mut Spares::default(), self.now);
        pair.start(self.now, &mut self.out);
        let started = self.actions();
        assert!(matches!(
            started.as_slice(),
            [Action::Wake(at, PairTimer::Idle), Action::Connect] if *at == self.now + idle
        ));
        pair
    }

    /// Answers a `Connect` with server `server` on `stream`; returns the timeout wake-up.
    pub(super) fn connect(
        &mut self,
        pair: &mut Pair<Fake>,
        server: UpstreamId,
        stream: Fake,
    ) -> (Instant, u32) {
        pair.connecting(server, stream, Version::Off, self.now, &mut self.out);
        match self.actions().as_slice() {
            [Action::Wake(at, PairTimer::Connect { attempt })] => (*at, *attempt),
            other => panic!("expected a connect wake-up, got {other:?}"),
        }
    }

    /// A streaming pair with both ends ready, 8-byte rings.
    pub(super) fn streaming(&mut self, client: Fake, upstream: Fake) -> Pair<Fake> {
        let mut pair = self.accept(client, 1);
        self.connect(
            &mut pair,
            0,
            Fake {
                connect: Some(None),
                ..upstream
            },
        );
        let actions = self.ready(&mut pair, Side::Upstream, READY);
        assert!(
            matches!(actions.first(), Some(Action::Connected(0))),
            "{actions:?}"
        );
        assert_eq!(pair.phase(), Phase::Streaming);
        pair.client.mark(READY);
        pair
    }
}

pub(super) fn up(pair: &mut Pair<Fake>) -> &mut Fake {
    &mut pair.upstream.as_mut().unwrap().stream
}

pub(super) fn closes(actions: &[Action<Fake>], reason: CloseReason) -> bool {
    matches!(actions.last(), Some(Action::Close(r)) if *r == reason)
}

// ---- the data path ----------------------------------------------------------------------

#[test]
fn forwards_both_ways_through_small_rings() {
    let mut h = Harness::new();
    let mut pair = h.streaming(fake(b"hello upstream!", 100), fake(b"hi client", 100));
    assert!(h.pump(&mut pair).is_empty());
    assert_eq!(up(&mut pair).written, b"hello upstream!");
    assert_eq!(pair.client.stream.written, b"hi client");
    assert_eq!(pair.to_upstream().delivered(), 15);
    assert!(!pair.client.readable && !pair.upstream.as_ref().unwrap().readable);
}

#[test]
fn full_ring_stops_reading_until_destination_drains() {
    let mut h = Harness::new();
    let mut pair = h.streaming(fake(&[7; 20], 0), fake(b"", 3));
    h.pump(&mut pair);
    assert_eq!(up(&mut pair).written.len(), 3);
    assert!(
        pair.to_upstream().buffer().is_full(),
        "ring holds the backlog"
    );
    assert!(pair.client.readable, "the read edge is remembered");
    assert_eq!(pair.client.stream.incoming.len(), 20 - 8 - 3);
    up(&mut pair).write_room = 100;
    h.ready(&mut pair, Side::Upstream, READY);
    assert_eq!(up(&mut pair).written, vec![7; 20]);
}

#[test]
fn peaks_and_stalls_are_measured_per_direction() {
    let mut h = Harness::new();
    let start = h.now;
    let mut pair = h.streaming(fake(&[7; 20], 0), fake(b"", 3));
    h.pump(&mut pair);
    assert_eq!(pair.to_upstream().peak(), 8);
    assert_eq!(pair.to_client().peak(), 0);
    h.advance(Duration::from_millis(250));
    assert_eq!(
        pair.to_upstream().stalled_until(h.now),
        Duration::from_millis(250)
    );
    up(&mut pair).write_room = 100;
    h.ready(&mut pair, Side::Upstream, READY);
    h.advance(Duration::from_secs(1));
    assert_eq!(
        pair.to_upstream().stalled_until(h.now),
        Duration::from_millis(250),
        "the stall ended when the ring drained"
    );
    assert!(start < h.now);
}

#[test]
fn client_fin_is_passed_on_after_drain_and_other_direction_keeps_flowing() {
    let mut h = Harness::new();
    let mut client = fake(b"request", 100);
    client.eof = true;
    let mut pair = h.streaming(client, fake(b"", 100));
    pair.client.read_closed = true;
    assert!(h.pump(&mut pair).is_empty());
    assert!(up(&mut pair).shut);
    assert_eq!(pair.to_upstream().flow(), Flow::Shut);
    up(&mut pair).incoming.extend(b"reply");
    up(&mut pair).eof = true;
    let read_closed = Readiness {
        read_closed: true,
        ..READY
    };
    let actions = h.ready(&mut pair, Side::Upstream, read_closed);
    assert!(closes(&actions, CloseReason::ClientClosed), "{actions:?}");
    assert_eq!(pair.client.stream.written, b"reply");
    assert!(pair.client.stream.shut);
}

#[test]
fn fin_waits_for_the_ring_to_drain() {
    let mut h = Harness::new();
    let mut client = fake(b"abcdef", 100);
    client.eof = true;
    let mut pair = h.streaming(client, fake(b"", 2));
    pair.client.read_closed = true;
    h.pump(&mut pair);
    assert_eq!(pair.to_upstream().flow(), Flow::Eof);
    assert!(!up(&mut pair).shut);
    up(&mut pair).write_room = 10;
    h.ready(&mut pair, Side::Upstream, READY);
    assert!(up(&mut pair).shut);
    assert_eq!(up(&mut pair).written, b"abcdef");
}

#[test]
fn upstream_fin_first_gives_upstream_closed() {
    let mut h = Harness::new();
    let mut upstream = fake(b"bye", 100);
    upstream.eof = true;
    let mut pair = h.streaming(fake(b"", 100), upstream);
    pair.upstream.as_mut().unwrap().read_closed = true;
    assert!(h.pump(&mut pair).is_empty());
    assert!(pair.client.stream.shut);
    pair.client.stream.eof = true;
    pair.client.read_closed = true;
    let actions = h.pump(&mut pair);
    assert!(closes(&actions, CloseReason::UpstreamClosed), "{actions:?}");
}

#[test]
fn resets_name_the_side_that_failed() {
    let mut h = Harness::new();
    let mut client = fake(b"", 100);
    client.then = Some(io::ErrorKind::ConnectionReset);
    let mut pair = h.streaming(client, fake(b"", 100));
    assert!(closes(&h.pump(&mut pair), CloseReason::ClientReset));

    let mut upstream = fake(b"", 0);
    upstream.write_error = Some(io::ErrorKind::BrokenPipe);
    let mut pair = h.streaming(fake(b"data", 100), upstream);
    assert!(closes(&h.pump(&mut pair), CloseReason::UpstreamReset));

    let mut pair = h.streaming(fake(b"", 100), fake(b"", 100));
    up(&mut pair).error = Some(io::ErrorKind::ConnectionReset);
    let error = Readiness {
        error: true,
        ..Readiness::default()
    };
    let actions = h.ready(&mut pair, Side::Upstream, error);
    assert!(closes(&actions, CloseReason::UpstreamReset), "{actions:?}");
}

#[test]
fn short_read_waits_for_the_next_event_unless_fin_was_announced() {
    let mut h = Harness::new();
    let mut client = fake(b"abc", 100);
    client.eof = true;
    let mut pair = h.streaming(client, fake(b"", 100));
    h.pump(&mut pair);
    assert_eq!(up(&mut pair).written, b"abc");
    assert_eq!(
        pair.to_upstream().flow(),
        Flow::Open,
        "no read after a short read"
    );
    assert!(!pair.client.readable);
    pair.client.read_closed = true;
    h.pump(&mut pair);
    assert_eq!(pair.to_upstream().flow(), Flow::Shut);
}

#[test]
fn idle_pair_holds_no_ring_storage() {
    let mut h = Harness::new();
    let mut pair = h.streaming(fake(b"ping", 100), fake(b"pong", 100));
    assert!(
        pair.to_client().buffer().has_storage(),
        "pong waits for the client"
    );
    h.pump(&mut pair);
    assert_eq!(pair.client.stream.written, b"pong");
    assert!(!pair.to_upstream().buffer().has_storage());
    assert!(!pair.to_client().buffer().has_storage());
    assert_eq!(h.pool.free_len(), 2, "both buffers went back to the pool");
}

#[test]
fn endless_source_yields_after_the_round_cap() {
    let mut h = Harness::new();
    let mut pair = h.streaming(fake(&[1; 8 * 100], 0), fake(b"", 8 * 100));
    assert!(matches!(h.pump(&mut pair).as_slice(), [Action::Yield]));
    assert_eq!(up(&mut pair).written.len(), 8 * MAX_PUMP_ROUNDS);
    assert!(h.pump(&mut pair).is_empty());
    assert_eq!(up(&mut pair).written.len(), 8 * 100);
}

#[test]
fn spurious_pump_changes_nothing() {
    let mut h = Harness::new();
    let mut pair = h.streaming(fake(b"", 0), fake(b"", 0));
    let deadline = pair.idle_deadline();
    h.advance(Duration::from_secs(5));
    assert!(h.pump(&mut pair).is_empty());
    assert_eq!(
        pair.idle_deadline(),
        deadline,
        "no byte moved, so not active"
    );
    assert!(h.pump(&mut pair).is_empty());
}

// ---- the lifecycle ----------------------------------------------------------------------

#[test]
fn early_client_bytes_wait_while_connecting_then_go_upstream() {
    let mut h = Harness::new();
    let mut pair = h.accept(fake(b"early", 10), 2);
    assert!(h.ready(&mut pair, Side::Client, READY).is_empty());
    assert_eq!(pair.to_upstream().buffer().len(), 5);
    let (deadline, attempt) = h.connect(&mut pair, 3, fake(b"", 10));
    assert_eq!((deadline, attempt), (h.now + CONNECT_TIMEOUT, 1));
    assert_eq!(pair.phase(), Phase::Connecting { attempt: 1 });
    assert!(
        h.ready(&mut pair, Side::Upstream, READY).is_empty(),
        "not connected yet"
    );
    up(&mut pair).connect = Some(None);
    let actions = h.ready(&mut pair, Side::Upstream, READY);
    assert!(
        matches!(actions.as_slice(), [Action::Connected(3)]),
        "{actions:?}"
    );
    assert_eq!(up(&mut pair).written, b"early");
    assert!(
        pair.tried().is_empty(),
        "attempt records are dropped once streaming"
    );
    assert_eq!(pair.server(), Some(3));
    assert_eq!(pair.connect_time(), Some(Duration::ZERO));
}

#[test]
fn a_refused_connect_moves_on_to_the_next_server_and_gives_up_after_tries() {
    let mut h = Harness::new();
    let mut pair = h.accept(fake(b"", 10), 2);
    let refused = || Fake {
        connect: Some(Some(io::ErrorKind::ConnectionRefused)),
        ..Fake::default()
    };
    h.connect(&mut pair, 0, refused());
    let actions = h.ready(&mut pair, Side::Upstream, READY);
    match actions.as_slice() {
        [
            Action::Abandon {
                server: 0,
                why: Failure::Failed(e),
                ..
            },
            Action::Connect,
        ] => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pair.tried(), &[0]);
    let (_, attempt) = h.connect(&mut pair, 1, refused());
    assert_eq!(attempt, 2);
    let actions = h.ready(&mut pair, Side::Upstream, READY);
    assert!(matches!(
        actions.first(),
        Some(Action::Abandon { server: 1, .. })
    ));
    assert!(closes(&actions, CloseReason::ConnectFailed), "{actions:?}");
}

#[test]
fn a_connect_timeout_abandons_the_attempt_and_stale_timeouts_do_nothing() {
    let mut h = Harness::new();
    let mut pair = h.accept(fake(b"", 10), 3);
    let (deadline, first) = h.connect(&mut pair, 0, fake(b"", 10));
    h.now = deadline;
    let actions = h.timer(&mut pair, PairTimer::Connect { attempt: first });
    assert!(matches!(
        actions.as_slice(),
        [
            Action::Abandon {
                server: 0,
                why: Failure::TimedOut,
                ..
            },
            Action::Connect
        ]
    ));
    let (_, second) = h.connect(&mut pair, 1, fake(b"", 10));
    assert!(
        h.timer(&mut pair, PairTimer::Connect { attempt: first })
            .is_empty()
    );
    up(&mut pair).connect = Some(None);
    h.ready(&mut pair, Side::Upstream, READY);
    assert!(
        h.timer(&mut pair, PairTimer::Connect { attempt: second })
            .is_empty(),
        "a timeout after the connect succeeded is stale"
    );
}

#[test]
fn tries_timeout_stops_new_attempts() {
    let mut h = Harness::new();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 5000));
    let policy = ConnectPolicy {
        tries_timeout: Some(Duration::from_secs(2)),
        ..policy(10)
    };
    let mut pair: Pair<Fake> = Pair::new(
        1,
        0,
        fake(b"", 0),
        addr,
        ConnectPolicy {
            idle_timeout: Duration::from_secs(60),
            ..policy
        },
        &mut Spares::default(),
        h.now,
    );
    pair.start(h.now, &mut h.out);
    h.actions();
    h.connect(&mut pair, 0, fake(b"", 0));
    h.advance(Duration::from_secs(2));
    let actions = h.timer(&mut pair, PairTimer::Connect { attempt: 1 });
    assert!(closes(&actions, CloseReason::ConnectFailed), "{actions:?}");
}

#[test]
fn failed_at_once_and_no_server() {
    let mut h = Harness::new();
    let mut pair = h.accept(fake(b"", 0), 2);
    pair.failed_at_once(0, h.now, &mut h.out);
    assert!(matches!(h.actions().as_slice(), [Action::Connect]));
    assert_eq!(pair.tried(), &[0]);
    pair.no_server(&mut h.out);
    assert!(closes(&h.actions(), CloseReason::ConnectFailed));
}

#[test]
fn a_local_shortage_waits_and_retries_within_the_connect_timeout() {
    let mut h = Harness::new();
    let mut pair = h.accept(fake(b"", 0), 2);
    pair.defer(h.now, &mut h.out);
    let retry_at = h.now + LOCAL_RETRY;
    assert!(matches!(
        h.actions().as_slice(),
        [Action::Wake(at, PairTimer::Retry)] if *at == retry_at
    ));
    h.now = retry_at;
    assert!(matches!(
        h.timer(&mut pair, PairTimer::Retry).as_slice(),
        [Action::Connect]
    ));
    assert!(pair.tried().is_empty(), "a deferral is not a try");
    h.advance(CONNECT_TIMEOUT);
    pair.defer(h.now, &mut h.out);
    assert!(closes(&h.actions(), CloseReason::ConnectFailed));
}

#[test]
fn the_idle_timeout_follows_the_last_byte_moved() {
    let mut h = Harness::new();
    let mut pair = h.streaming(fake(b"", 100), fake(b"", 100));
    let first = pair.idle_deadline();
    h.advance(Duration::from_secs(30));
    pair.client.stream.incoming.extend(b"x");
    h.ready(&mut pair, Side::Client, READY);
    let moved = pair.idle_deadline();
    assert_eq!(moved, h.now + Duration::from_secs(60));
    h.now = first;
    assert!(matches!(
        h.timer(&mut pair, PairTimer::Idle).as_slice(),
        [Action::Wake(at, PairTimer::Idle)] if *at == moved
    ));
    h.now = moved;
    assert!(closes(
        &h.timer(&mut pair, PairTimer::Idle),
        CloseReason::IdleTimeout
    ));
}

#[test]
fn an_event_without_an_upstream_socket_is_ignored() {
    let mut h = Harness::new();
    let mut pair = h.accept(fake(b"", 0), 1);
    assert!(h.ready(&mut pair, Side::Upstream, READY).is_empty());
    assert_eq!(pair.phase(), Phase::Preread);
}

#[test]
fn an_idle_pair_stays_small() {
    // What every open connection costs in the slab, with a socket the size of a descriptor
    // (mio's TcpStream is one in release builds): a third of a KiB is the aim per connection,
    // timer entries and slab slot included.
    let size = std::mem::size_of::<Pair<std::os::fd::OwnedFd>>();
    assert!(size <= 272, "Pair is {size} bytes");
    // The loops' pairs, whose buffers may be rings or pipes.
    let size = std::mem::size_of::<Pair<std::os::fd::OwnedFd, crate::engine::Engine>>();
    assert!(size <= 272, "Pair with engines is {size} bytes");
    // What the loops hold, `Conn`: in release builds a tag and a descriptor, as this is.
    #[allow(dead_code)]
    enum EitherKind {
        Tcp(std::os::fd::OwnedFd),
        Unix(std::os::fd::OwnedFd),
    }
    assert_eq!(std::mem::size_of::<EitherKind>(), 8);
    let size = std::mem::size_of::<Pair<EitherKind, crate::engine::Engine>>();
    // The kind's tag costs 4 bytes per socket (alignment): 8 more than one kind alone.
    assert!(size <= 280, "Pair of TCP or Unix sockets is {size} bytes");
}
