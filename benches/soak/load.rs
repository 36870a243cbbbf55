//! What the soak's clients share: the kinds of [`Load`], the error log every client and
//! server writes to ([`Errors`]), the counters of connections and bytes ([`Totals`]) and
//! the byte pattern every stream carries, so that any byte out of place is caught.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The kinds of load the soak runs at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Load {
    /// Large paced uploads to a checking sink, half-closed by the client.
    BulkUp,
    /// Large paced downloads from a pattern source.
    BulkDown,
    /// Long-lived connections with 64-byte request/response round trips.
    PingPong,
    /// Short connections: connect, 16 bytes each way, close.
    Churn,
    /// The client half-closes first and reads the rest of the echo.
    HalfCloseClient,
    /// The server half-closes first and reads what the client sends afterwards.
    HalfCloseServer,
    /// Resets from the client and from the server in the middle of a stream.
    Resets,
    /// Downloads read slowly, so the proxy's buffers stay full.
    SlowReader,
    /// `GET /metrics`.
    Scrape,
    /// Rewriting the configuration and sending SIGHUP.
    Reload,
}

impl Load {
    /// Every load, in report order.
    pub const ALL: [Load; 10] = [
        Load::BulkUp,
        Load::BulkDown,
        Load::PingPong,
        Load::Churn,
        Load::HalfCloseClient,
        Load::HalfCloseServer,
        Load::Resets,
        Load::SlowReader,
        Load::Scrape,
        Load::Reload,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Load::BulkUp => "bulk up",
            Load::BulkDown => "bulk down",
            Load::PingPong => "ping-pong",
            Load::Churn => "churn",
            Load::HalfCloseClient => "half-close (client first)",
            Load::HalfCloseServer => "half-close (server first)",
            Load::Resets => "resets",
            Load::SlowReader => "slow reader",
            Load::Scrape => "metrics scrape",
            Load::Reload => "reload",
        }
    }

    fn index(self) -> usize {
        Load::ALL.iter().position(|l| *l == self).unwrap_or(0)
    }

    /// A stream seed that names this load in its top byte, so that a server can say
    /// which load an error it sees belongs to.
    pub fn seed(self, n: u64) -> u64 {
        (self.index() as u64) << 56 | (n & ((1 << 56) - 1))
    }

    /// The load a seed made by [`Load::seed`] belongs to.
    pub fn of_seed(seed: u64) -> Load {
        Load::ALL
            .get((seed >> 56) as usize)
            .copied()
            .unwrap_or(Load::Churn)
    }
}

/// One error seen by a client or a server.
#[derive(Debug, Clone)]
pub struct Error {
    /// Seconds since the soak started.
    pub at: f64,
    /// The load it happened in.
    pub load: Load,
    /// What went wrong.
    pub what: String,
}

/// Errors kept in full; beyond them only counted, per load.
const KEPT: usize = 1000;

/// Every error of the run, shared by all threads: the first [`KEPT`] in full, all counted.
#[derive(Clone)]
pub struct Errors {
    start: Instant,
    list: Arc<Mutex<Vec<Error>>>,
    counts: Arc<[AtomicU64; Load::ALL.len()]>,
}

impl Errors {
    /// An empty log; times count from `start`.
    pub fn new(start: Instant) -> Errors {
        Errors {
            start,
            list: Arc::new(Mutex::new(Vec::new())),
            counts: Arc::default(),
        }
    }

    /// Records an error of `load`.
    pub fn record(&self, load: Load, what: String) {
        let at = self.start.elapsed().as_secs_f64();
        self.counts[load.index()].fetch_add(1, Ordering::Relaxed);
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() < KEPT {
            list.push(Error { at, load, what });
        }
    }

    /// The first errors of the run, in full.
    pub fn snapshot(&self) -> Vec<Error> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many errors of `load` so far.
    pub fn count_of(&self, load: Load) -> u64 {
        self.counts[load.index()].load(Ordering::Relaxed)
    }

    /// How many errors so far.
    pub fn count(&self) -> u64 {
        Load::ALL.iter().map(|l| self.count_of(*l)).sum()
    }
}

/// Connections and bytes per load, counted by the clients (bytes both ways).
#[derive(Default)]
pub struct Totals {
    connections: [AtomicU64; Load::ALL.len()],
    bytes: [AtomicU64; Load::ALL.len()],
}

impl Totals {
    /// Counts one connection of `load` through the proxy.
    pub fn connection(&self, load: Load) {
        self.connections[load.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `n` bytes of `load` through the proxy.
    pub fn bytes(&self, load: Load, n: u64) {
        self.bytes[load.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// Connections and bytes of `load` so far.
    pub fn of(&self, load: Load) -> (u64, u64) {
        let i = load.index();
        (
            self.connections[i].load(Ordering::Relaxed),
            self.bytes[i].load(Ordering::Relaxed),
        )
    }

    /// Connections and bytes of all loads so far.
    pub fn sum(&self) -> (u64, u64) {
        Load::ALL.iter().fold((0, 0), |(c, b), l| {
            let (lc, lb) = self.of(*l);
            (c + lc, b + lb)
        })
    }
}

/// The pattern byte at `offset` of the stream with `seed`: position-dependent, so a lost,
/// duplicated or reordered chunk shows.
fn pattern(seed: u64, offset: u64) -> u8 {
    let x = offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.rotate_left(offset as u32 & 63);
    (x >> 32) as u8 ^ (offset >> 9) as u8
}

/// Fills `buf` with the pattern of `seed` starting at stream offset `offset`.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern(seed, offset + i as u64);
    }
}

/// Checks that `buf` is the pattern of `seed` at stream offset `offset`.
pub fn check(seed: u64, offset: u64, buf: &[u8]) -> io::Result<()> {
    match buf
        .iter()
        .enumerate()
        .find(|(i, b)| **b != pattern(seed, offset + *i as u64))
    {
        None => Ok(()),
        Some((i, b)) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "byte mismatch at offset {}: got {b:#04x}, expected {:#04x}",
                offset + i as u64,
                pattern(seed, offset + i as u64)
            ),
        )),
    }
}
