//! The soak's client loads: each runs on its own threads in a loop of short sessions until
//! the run stops, paces itself (the soak proves flatness, not speed, and shares the machine)
//! and records every byte out of place, unexpected reset or EOF, and timeout in [`Errors`].

use crate::backend::{Command, HEADER, PATIENCE, REPLY_SEED, read_pattern, send_pattern};
use crate::load::{Errors, Load, Totals, check, fill};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What every client thread shares.
pub struct Clients {
    /// The proxy's listen addresses, one per route; sessions alternate between them.
    pub routes: Vec<SocketAddr>,
    /// Set when the run is over: loops finish their session and return.
    pub stop: AtomicBool,
    /// Connections and bytes.
    pub totals: Totals,
    /// Every error.
    pub errors: Errors,
    next: AtomicU64,
}

/// Bulk streams: bytes per connection and pace.
const BULK: u64 = 32 << 20;
const BULK_RATE: f64 = 32.0 * 1024.0 * 1024.0;
/// Ping-pong: round trips per connection, message size and pause between round trips.
const ROUNDS: usize = 2000;
const MESSAGE: usize = 64;
const PING_PAUSE: Duration = Duration::from_millis(2);
/// Slow reader: bytes per connection, read size and pause between reads.
const SLOW: u64 = 4 << 20;
const SLOW_READ: usize = 4 << 10;
const SLOW_PAUSE: Duration = Duration::from_millis(5);

/// Threads per load, and the shortest time between the starts of two sessions of a thread.
pub const PLAN: [(Load, usize, Duration); 8] = [
    (Load::BulkUp, 1, Duration::ZERO),
    (Load::BulkDown, 1, Duration::ZERO),
    (Load::PingPong, 4, Duration::ZERO),
    (Load::Churn, 2, Duration::from_millis(13)),
    (Load::HalfCloseClient, 1, Duration::from_millis(100)),
    (Load::HalfCloseServer, 1, Duration::from_millis(100)),
    (Load::Resets, 1, Duration::from_millis(50)),
    (Load::SlowReader, 2, Duration::ZERO),
];

impl Clients {
    /// Clients of the proxy at `routes`.
    pub fn new(routes: Vec<SocketAddr>, errors: Errors) -> Clients {
        Clients {
            routes,
            stop: AtomicBool::new(false),
            totals: Totals::default(),
            errors,
            next: AtomicU64::new(0),
        }
    }

    /// Runs sessions of `load` until the stop flag, at most one per `every`.
    pub fn run(&self, load: Load, every: Duration) {
        while !self.stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let route = self.routes[n as usize % self.routes.len()];
            let seed = load.seed(n);
            if let Err(e) = self.session(load, route, seed, n) {
                self.errors.record(load, format!("client via {route}: {e}"));
            }
            if let Some(rest) = every.checked_sub(started.elapsed()) {
                std::thread::sleep(rest);
            }
        }
    }

    fn session(&self, load: Load, route: SocketAddr, seed: u64, n: u64) -> io::Result<()> {
        let mut s = TcpStream::connect_timeout(&route, Duration::from_secs(5))
            .map_err(|e| context(e, "connect"))?;
        s.set_read_timeout(Some(PATIENCE))?;
        s.set_write_timeout(Some(PATIENCE))?;
        s.set_nodelay(true)?;
        self.totals.connection(load);
        let bytes = match load {
            Load::BulkUp => bulk_up(&mut s, seed),
            Load::BulkDown => download(&mut s, seed, BULK, Pace::Rate(BULK_RATE)),
            Load::PingPong => ping_pong(&mut s, seed),
            Load::Churn => churn(&mut s, seed, n.is_multiple_of(2)),
            Load::HalfCloseClient => half_close_client(&mut s, seed),
            Load::HalfCloseServer => half_close_server(&mut s, seed),
            Load::Resets if n.is_multiple_of(2) => client_reset(s, seed),
            Load::Resets => server_reset(&mut s, seed),
            Load::SlowReader => download(&mut s, seed, SLOW, Pace::Pause(SLOW_READ, SLOW_PAUSE)),
            Load::Scrape | Load::Reload => Ok(0),
        }?;
        self.totals.bytes(load, bytes);
        Ok(())
    }
}

/// Adds what was being done to an I/O error.
fn context(e: io::Error, what: &str) -> io::Error {
    let kind = match e.kind() {
        io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut,
        k => k,
    };
    io::Error::new(kind, format!("{what}: {e}"))
}

/// Reads until EOF and fails if anything arrives.
fn expect_eof(s: &mut TcpStream, what: &str) -> io::Result<()> {
    let mut b = [0u8; 64];
    match s.read(&mut b).map_err(|e| context(e, what))? {
        0 => Ok(()),
        n => Err(io::Error::other(format!("{what}: {n} unexpected bytes"))),
    }
}

/// A paced upload to a checking sink, half-closed, then its `OK`.
fn bulk_up(s: &mut TcpStream, seed: u64) -> io::Result<u64> {
    s.write_all(&Command::Sink.header(BULK, seed))?;
    let pacer = Instant::now();
    let mut buf = vec![0u8; 256 << 10];
    let mut sent = 0u64;
    while sent < BULK {
        let n = (BULK - sent).min(buf.len() as u64) as usize;
        fill(seed, sent, &mut buf[..n]);
        s.write_all(&buf[..n]).map_err(|e| context(e, "upload"))?;
        sent += n as u64;
        pace(pacer, sent, BULK_RATE);
    }
    s.shutdown(Shutdown::Write)?;
    let mut ok = [0u8; 2];
    s.read_exact(&mut ok)
        .map_err(|e| context(e, "read the sink's OK"))?;
    if &ok != b"OK" {
        return Err(io::Error::other(format!("sink answered {ok:?}")));
    }
    expect_eof(s, "EOF after OK")?;
    Ok(HEADER as u64 + BULK + 2)
}

/// How a download reads.
enum Pace {
    /// At most this many bytes per second.
    Rate(f64),
    /// This many bytes, then a pause.
    Pause(usize, Duration),
}

/// Reads and checks `len` bytes from a source, then EOF; half-closes after it.
fn download(s: &mut TcpStream, seed: u64, len: u64, how: Pace) -> io::Result<u64> {
    s.write_all(&Command::Source.header(len, seed))?;
    let pacer = Instant::now();
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0u64;
    while got < len {
        let want = match how {
            Pace::Rate(_) => buf.len(),
            Pace::Pause(n, _) => n,
        };
        let want = (len - got).min(want as u64) as usize;
        let n = s
            .read(&mut buf[..want])
            .map_err(|e| context(e, "download"))?;
        if n == 0 {
            return Err(io::Error::other(format!("EOF after {got} of {len} bytes")));
        }
        check(seed, got, &buf[..n])?;
        got += n as u64;
        match how {
            Pace::Rate(rate) => pace(pacer, got, rate),
            Pace::Pause(_, pause) => std::thread::sleep(pause),
        }
    }
    expect_eof(s, "EOF after the download")?;
    s.shutdown(Shutdown::Write)?;
    Ok(HEADER as u64 + len)
}

/// Sleeps until `done` bytes are due at `rate` bytes/s since `start`.
fn pace(start: Instant, done: u64, rate: f64) {
    let due = Duration::from_secs_f64(done as f64 / rate);
    if let Some(rest) = due.checked_sub(start.elapsed()) {
        std::thread::sleep(rest);
    }
}

/// Round trips of [`MESSAGE`] bytes, then a half-close and EOF.
fn ping_pong(s: &mut TcpStream, seed: u64) -> io::Result<u64> {
    s.write_all(&Command::Echo.header(0, seed))?;
    let mut out = [0u8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    for round in 0..ROUNDS {
        let offset = (round * MESSAGE) as u64;
        fill(seed, offset, &mut out);
        s.write_all(&out)?;
        s.read_exact(&mut back)
            .map_err(|e| context(e, &format!("round trip {round}")))?;
        check(seed, offset, &back)?;
        std::thread::sleep(PING_PAUSE);
    }
    s.shutdown(Shutdown::Write)?;
    expect_eof(s, "EOF after the half-close")?;
    Ok(HEADER as u64 + 2 * (ROUNDS * MESSAGE) as u64)
}

/// 16 bytes each way, then a close: a half-close waiting for EOF, or a plain close.
fn churn(s: &mut TcpStream, seed: u64, wait_for_eof: bool) -> io::Result<u64> {
    s.write_all(&Command::Echo.header(0, seed))?;
    let mut out = [0u8; 16];
    fill(seed, 0, &mut out);
    s.write_all(&out)?;
    let mut back = [0u8; 16];
    s.read_exact(&mut back).map_err(|e| context(e, "echo"))?;
    check(seed, 0, &back)?;
    if wait_for_eof {
        s.shutdown(Shutdown::Write)?;
        expect_eof(s, "EOF after the half-close")?;
    }
    Ok(HEADER as u64 + 32)
}

/// Sends 1 MiB and half-closes (from a second thread), while reading the whole echo and EOF.
fn half_close_client(s: &mut TcpStream, seed: u64) -> io::Result<u64> {
    const LEN: u64 = 1 << 20;
    s.write_all(&Command::Echo.header(0, seed))?;
    let mut writer = s.try_clone()?;
    let echoed = std::thread::scope(|scope| {
        let sender = scope.spawn(move || -> io::Result<()> {
            send_pattern(&mut writer, LEN, seed)?;
            writer.shutdown(Shutdown::Write)
        });
        let echoed = read_pattern(s, None, seed).map_err(|e| context(e, "read the echo"));
        let sent = sender
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("sender panicked")));
        sent.map_err(|e| context(e, "send"))?;
        echoed
    })?;
    if echoed != LEN {
        return Err(io::Error::other(format!(
            "echo of {echoed} bytes before EOF, sent {LEN}"
        )));
    }
    Ok(HEADER as u64 + 2 * LEN)
}

/// Reads 256 KiB and the server's EOF, then sends 64 KiB the server checks, and half-closes.
fn half_close_server(s: &mut TcpStream, seed: u64) -> io::Result<u64> {
    const LEN: u64 = 256 << 10;
    s.write_all(&Command::HalfClose.header(LEN, seed))?;
    let got = read_pattern(s, None, seed).map_err(|e| context(e, "read up to the EOF"))?;
    if got != LEN {
        return Err(io::Error::other(format!("EOF after {got} of {LEN} bytes")));
    }
    send_pattern(s, LEN / 4, seed ^ REPLY_SEED).map_err(|e| context(e, "send after EOF"))?;
    s.shutdown(Shutdown::Write)?;
    Ok(HEADER as u64 + LEN + LEN / 4)
}

/// Sends 32 KiB to an echo, reads 1 KiB of it back, then resets.
fn client_reset(mut s: TcpStream, seed: u64) -> io::Result<u64> {
    s.write_all(&Command::EchoResettable.header(0, seed))?;
    let mut buf = vec![0u8; 32 << 10];
    fill(seed, 0, &mut buf);
    s.write_all(&buf)?;
    s.read_exact(&mut buf[..1024])
        .map_err(|e| context(e, "echo before the reset"))?;
    check(seed, 0, &buf[..1024])?;
    socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO))?;
    drop(s);
    Ok(HEADER as u64 + (33 << 10))
}

/// Asks for 100 KiB and a reset: a correct prefix and then a reset or EOF are fine.
fn server_reset(s: &mut TcpStream, seed: u64) -> io::Result<u64> {
    const LEN: u64 = 100 << 10;
    s.write_all(&Command::Reset.header(LEN, seed))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if got + n as u64 > LEN => {
                return Err(io::Error::other("more bytes than the server sent"));
            }
            Ok(n) => {
                check(seed, got, &buf[..n])?;
                got += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(context(e, "read up to the server's reset")),
        }
    }
    Ok(HEADER as u64 + got)
}
