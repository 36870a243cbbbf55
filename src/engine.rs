//! The per-direction buffer the loops use: a user-space [`Ring`] or a kernel [`Pipe`],
//! chosen per direction by the route's `engine` and changed only while the direction holds
//! nothing.
//!
//! - `ring`: always a ring.
//! - `splice`: a pipe whenever one can be had; the ring while the bytes must be read in user
//!   space (a PROXY header or a ClientHello before the route is chosen), and for the rest of
//!   the connection once pipes fail it (none left within the count, no descriptors, a socket
//!   splice refuses) — never a failed connection; each such fallback is counted.
//! - `auto`: a ring, until the direction fills its buffer [`BULK_AFTER`] reads in a row
//!   (bulk): from then on it takes a pipe each time it needs storage, until small reads
//!   (under an eighth of the buffer) bring the streak back to zero. Small request/response
//!   traffic never fills a buffer and so keeps the ring's latency.
//!
//! Storage of either kind is held only while the direction has bytes in flight and goes
//! back to its pool when empty, so an idle connection holds neither.

use crate::buffer::{Buffer, Choice};
use crate::io::{self, Progress, Stop};
use crate::pipe::{self, Pipe, PipePool};
use crate::ring::{BufferPool, Ring};
use crate::settings::kinds::Named;
use crate::stats::IoStats;
use rustix::fd::AsFd;
use std::io::{Read, Write};

/// Full reads in a row that make an `auto` direction bulk.
pub const BULK_AFTER: u8 = 4;
/// The streak is counted up to this, so that a bulk direction stays bulk through a few
/// small reads.
const STREAK_MAX: u8 = 8;

/// Which buffer a route's directions use (`engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineMode {
    /// User-space rings.
    #[default]
    Ring,
    /// Kernel pipes with `splice(2)`.
    Splice,
    /// Rings, and pipes for directions that move bulk.
    Auto,
}

impl Named for EngineMode {
    const ALL: &'static [EngineMode] = &[EngineMode::Ring, EngineMode::Splice, EngineMode::Auto];

    fn name(self) -> &'static str {
        match self {
            EngineMode::Ring => "ring",
            EngineMode::Splice => "splice",
            EngineMode::Auto => "auto",
        }
    }
}

/// A route's storage for both kinds of buffer, and its engine.
#[derive(Debug)]
pub struct Storage {
    /// Ring storage, within the loop's byte budget.
    pub rings: BufferPool,
    /// Pipes, within the loop's pipe count.
    pub pipes: PipePool,
    /// The route's engine.
    pub mode: EngineMode,
    /// Directions that wanted a pipe and fell back to a ring for good.
    pub fallbacks: u64,
}

/// [`Choice`] flag: pipes failed this direction; a ring for the rest of the connection.
const FALLBACK: u8 = 2;
/// [`Choice`] flag: `auto` found the direction bulk.
const BULK: u8 = 4;

#[derive(Debug)]
enum Held {
    Ring(Ring),
    Pipe(Pipe),
}

/// One direction's buffer: a ring or a pipe (what decides between them is the direction's
/// [`Choice`]).
#[derive(Debug)]
pub struct Engine {
    held: Held,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine {
            held: Held::Ring(Ring::detached()),
        }
    }
}

impl Engine {
    /// True when it holds a pipe now.
    pub fn is_pipe(&self) -> bool {
        matches!(self.held, Held::Pipe(_))
    }

    /// Pipes failed this direction: a ring from now on.
    fn fall_back(&mut self, storage: &mut Storage, choice: &mut Choice) {
        choice.set(FALLBACK, true);
        storage.fallbacks += 1;
        if let Held::Pipe(pipe) = &mut self.held {
            storage.pipes.release(pipe);
        }
        self.held = Held::Ring(Ring::detached());
    }
}

/// True when a direction that remembers `choice` takes a pipe under `mode`.
fn wants_pipe(choice: &Choice, mode: EngineMode) -> bool {
    if choice.has(FALLBACK) || choice.has(Choice::USER_SPACE) {
        return false;
    }
    match mode {
        EngineMode::Ring => false,
        EngineMode::Splice => true,
        EngineMode::Auto => choice.has(BULK),
    }
}

/// True when the direction gave up on pipes for the rest of the connection.
pub fn fell_back(choice: &Choice) -> bool {
    choice.has(FALLBACK)
}

/// `auto`: a read that left the buffer full lengthens the streak, a small one shortens it.
/// (A pipe's `Stop::Full` may only mean its slots are taken, so the fill level decides.)
fn learn(choice: &mut Choice, mode: EngineMode, p: &Progress, len: usize, capacity: usize) {
    if mode != EngineMode::Auto {
        return;
    }
    if capacity > 0 && len >= capacity {
        choice.streak = (choice.streak + 1).min(STREAK_MAX);
    } else if p.moved < capacity / 8 {
        choice.streak = choice.streak.saturating_sub(1);
    }
    if choice.streak >= BULK_AFTER {
        choice.set(BULK, true);
    } else if choice.streak == 0 {
        choice.set(BULK, false);
    }
}

impl Buffer for Engine {
    type Pool = Storage;

    fn len(&self) -> usize {
        match &self.held {
            Held::Ring(ring) => ring.len(),
            Held::Pipe(pipe) => pipe.len(),
        }
    }
    fn capacity(&self) -> usize {
        match &self.held {
            Held::Ring(ring) => ring.capacity(),
            Held::Pipe(pipe) => pipe.capacity(),
        }
    }
    fn has_storage(&self) -> bool {
        match &self.held {
            Held::Ring(ring) => ring.has_storage(),
            Held::Pipe(pipe) => pipe.has_pipe(),
        }
    }
    fn in_kernel(&self) -> bool {
        self.is_pipe()
    }
    fn front(&self) -> &[u8] {
        match &self.held {
            Held::Ring(ring) => ring.front(),
            Held::Pipe(_) => &[],
        }
    }
    fn discard(&mut self, n: usize) {
        if let Held::Ring(ring) = &mut self.held {
            ring.discard(n);
        }
    }
    fn take_storage(&mut self, storage: &mut Storage, choice: &mut Choice) -> bool {
        if self.has_storage() {
            return true;
        }
        if wants_pipe(choice, storage.mode) {
            let mut pipe = Pipe::default();
            match storage.pipes.fill(&mut pipe) {
                Ok(()) => {
                    self.held = Held::Pipe(pipe);
                    return true;
                }
                Err(e) => {
                    log::debug!("no pipe for a direction ({e}): a ring instead");
                    self.fall_back(storage, choice);
                }
            }
        }
        if let Held::Pipe(_) = self.held {
            self.held = Held::Ring(Ring::detached());
        }
        match &mut self.held {
            Held::Ring(ring) => storage.rings.fill(ring),
            Held::Pipe(_) => false,
        }
    }
    fn storage_available(storage: &Storage) -> bool {
        storage.rings.can_fill()
    }
    fn return_storage(&mut self, storage: &mut Storage) {
        match &mut self.held {
            Held::Ring(ring) => storage.rings.reclaim(ring),
            Held::Pipe(pipe) => storage.pipes.reclaim(pipe),
        }
    }
    fn release_storage(&mut self, storage: &mut Storage) {
        match &mut self.held {
            Held::Ring(ring) => storage.rings.release(ring),
            Held::Pipe(pipe) => storage.pipes.release(pipe),
        }
    }
    fn fill_from<R: Read + AsFd>(
        &mut self,
        src: &mut R,
        stats: &mut IoStats,
        limit: usize,
        storage: &mut Storage,
        choice: &mut Choice,
    ) -> Progress {
        let mut p = match &mut self.held {
            Held::Ring(ring) => io::fill_at_most(ring, &mut *src, stats, limit),
            Held::Pipe(pipe) => pipe.fill(src.as_fd(), stats, limit),
        };
        if self.is_pipe() && pipe::refused(p.stop) && p.moved == 0 && self.is_empty() {
            // Splicing this socket is impossible: a ring for the rest of the connection.
            self.fall_back(storage, choice);
            if let Held::Ring(ring) = &mut self.held {
                p = if storage.rings.fill(ring) {
                    io::fill_at_most(ring, &mut *src, stats, limit)
                } else {
                    // The budget is used up: the direction waits for storage.
                    Progress {
                        moved: 0,
                        stop: Stop::Full,
                    }
                };
            }
        }
        learn(choice, storage.mode, &p, self.len(), self.capacity());
        p
    }
    fn drain_into<W: Write + AsFd>(&mut self, dst: &mut W, stats: &mut IoStats) -> Progress {
        match &mut self.held {
            Held::Ring(ring) => io::drain_into(ring, &mut *dst, stats),
            Held::Pipe(pipe) => pipe.drain(dst.as_fd(), stats),
        }
    }
}

/// What the `engine` of a route with pipes of `pipe_size` means on this machine, for the
/// start line and `--check`: `engine splice, pipes of 16384 bytes` (the kernel rounds pipe
/// sizes up to whole pages, a power of two of them), or why pipes cannot be had here.
pub fn describe(mode: EngineMode, pipe_size: usize) -> String {
    if mode == EngineMode::Ring {
        return "engine ring".into();
    }
    match pipe::probe_size(pipe_size) {
        Ok(pipes) => format!("engine {}, {pipes}", mode.name()),
        Err(e) => format!(
            "engine {}, but no pipe can be made here ({e}): rings",
            mode.name()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::PipeCount;
    use crate::ring::Budget;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn storage(mode: EngineMode, pipes: usize) -> Storage {
        Storage {
            rings: BufferPool::new(4096, 4, Budget::new(usize::MAX)),
            pipes: PipePool::new(4096, 4, PipeCount::new(pipes)),
            mode,
            fallbacks: 0,
        }
    }

    /// A connected loopback pair: the first blocking (the test's end), the second not.
    fn sockets() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    #[test]
    fn each_mode_takes_its_kind_and_user_space_forces_a_ring() {
        let mut ring = storage(EngineMode::Ring, 4);
        let (mut e, mut choice) = (Engine::default(), Choice::default());
        assert!(e.take_storage(&mut ring, &mut choice) && !e.is_pipe());
        let mut splice = storage(EngineMode::Splice, 4);
        let mut e = Engine::default();
        choice.set(Choice::USER_SPACE, true);
        assert!(
            e.take_storage(&mut splice, &mut choice) && !e.is_pipe(),
            "preread: a ring"
        );
        e.return_storage(&mut splice);
        choice.set(Choice::USER_SPACE, false);
        assert!(e.take_storage(&mut splice, &mut choice) && e.is_pipe());
        assert!(e.in_kernel() && e.front().is_empty());
        e.return_storage(&mut splice);
        assert!(!e.has_storage(), "an empty pipe goes back");
        assert_eq!(splice.pipes.free_len(), 1);
    }

    #[test]
    fn no_pipe_left_means_a_ring_for_good() {
        let mut s = storage(EngineMode::Splice, 0);
        let (mut e, mut choice) = (Engine::default(), Choice::default());
        assert!(e.take_storage(&mut s, &mut choice) && !e.is_pipe());
        assert!(fell_back(&choice));
        assert_eq!(s.fallbacks, 1);
        e.return_storage(&mut s);
        assert!(
            e.take_storage(&mut s, &mut choice) && !e.is_pipe(),
            "not retried"
        );
        assert_eq!(s.fallbacks, 1, "counted once");
    }

    /// Moves `bytes` from `writer` through `e` into `dst`, reading them back at `reader`;
    /// returns, for each storage taken, whether it was a pipe.
    fn pass(
        bytes: &[u8],
        (writer, src): (&mut TcpStream, &mut TcpStream),
        (dst, reader): (&mut TcpStream, &mut TcpStream),
        e: &mut Engine,
        s: &mut Storage,
        choice: &mut Choice,
    ) -> Vec<bool> {
        writer.write_all(bytes).unwrap();
        let mut stats = IoStats::default();
        let mut piped = Vec::new();
        let (mut read, mut back) = (0, vec![0; bytes.len()]);
        while read < bytes.len() {
            assert!(e.take_storage(s, choice));
            piped.push(e.is_pipe());
            e.fill_from(src, &mut stats, usize::MAX, s, choice);
            while !e.is_empty() {
                e.drain_into(dst, &mut stats);
                let n = reader.read(&mut back[read..]).unwrap();
                read += n;
            }
            e.return_storage(s);
        }
        assert_eq!(back, bytes);
        piped
    }

    #[test]
    fn auto_moves_a_bulk_direction_to_a_pipe_and_back_when_it_goes_quiet() {
        let mut s = storage(EngineMode::Auto, 4);
        let (mut writer, mut src) = sockets();
        let (mut reader, mut dst) = sockets();
        let (mut e, mut choice) = (Engine::default(), Choice::default());
        let bulk = vec![7; 256 * 1024];
        let ends = ((&mut writer, &mut src), (&mut dst, &mut reader));
        let kinds = pass(&bulk, ends.0, ends.1, &mut e, &mut s, &mut choice);
        let first_pipe = kinds.iter().position(|&p| p).expect("a pipe at some point");
        assert!(first_pipe >= 2, "rings first: {kinds:?}");
        assert!(
            kinds[first_pipe..].iter().all(|&p| p),
            "then pipes: {kinds:?}"
        );
        for _ in 0..STREAK_MAX {
            let ends = ((&mut writer, &mut src), (&mut dst, &mut reader));
            pass(b"ping", ends.0, ends.1, &mut e, &mut s, &mut choice);
        }
        assert!(
            e.take_storage(&mut s, &mut choice) && !e.is_pipe(),
            "quiet: a ring again"
        );
    }
}
