//! Connection-rate workloads: a few blocking client threads repeat one short connection
//! as fast as they can for the length of a run. The cycle is a parameter: connect + a 16 B
//! echo + close ([`echo_cycle`]), connect + being refused ([`refused_cycle`]), or a TLS
//! handshake ([`crate::tls`]). The proxy's CPU per completed cycle comes from its
//! `/proc/PID/stat` utime + stime over the run.

use crate::sys::{Context, Pid};
use crate::workloads::{Busy, BusyMeter, Percentiles, close_with_reset, warmup};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Client threads of the connection-rate workloads.
pub const RATE_THREADS: usize = 4;
/// Bytes each echo client sends and gets back (after the mode byte).
const HELLO: usize = 16;
/// Longest a connect or read of one cycle may take.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Result of a connection-rate run.
pub struct ConnRate {
    /// Completed cycles per second.
    pub per_sec: f64,
    /// Connect start to the cycle's answer (first response byte, refusal, handshake).
    pub latency: Percentiles,
    /// Cycles that failed (refused when they should not be, reset, timed out).
    pub errors: u64,
    /// The first failure, for the notes.
    pub first_error: Option<String>,
    pub busy: Busy,
    /// Proxy CPU per completed cycle over the whole run, µs; `None` for direct.
    pub cpu_us: Option<f64>,
}

/// One cycle against an address; returns the latency it measures.
pub type Cycle = Arc<dyn Fn(SocketAddr) -> std::io::Result<Duration> + Send + Sync>;

/// Connects with the cycle timeout and `TCP_NODELAY`.
pub fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, CYCLE_TIMEOUT)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(CYCLE_TIMEOUT))?;
    s.set_write_timeout(Some(CYCLE_TIMEOUT))?;
    Ok(s)
}

/// Connect, send `HELLO` bytes, read them back; the backend closes first (FIN, so
/// TIME_WAIT stays on its listening side), the client closes with RST. Returns the time
/// from the start of the connect to the first response byte.
pub fn echo_cycle(addr: SocketAddr) -> std::io::Result<Duration> {
    let start = Instant::now();
    let mut s = connect(addr)?;
    let mut hello = [b'h'; HELLO + 2];
    hello[0] = b'C';
    hello[1] = HELLO as u8;
    s.write_all(&hello)?;
    let mut buf = [0u8; HELLO];
    let mut got = 0;
    let mut first = None;
    while got < HELLO {
        match s.read(&mut buf[got..])? {
            0 => {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "closed early",
                ));
            }
            n => got += n,
        }
        first.get_or_insert_with(|| start.elapsed());
    }
    close_with_reset(s);
    Ok(first.unwrap_or_default())
}

/// Connect and wait to be refused: the proxy closes (FIN or RST) without a byte. Sends
/// nothing, so the refusal is the proxy's own decision at accept. Returns the time from
/// the start of the connect to the close.
pub fn refused_cycle(addr: SocketAddr) -> std::io::Result<Duration> {
    let start = Instant::now();
    let mut s = match connect(addr) {
        Ok(s) => s,
        // The reset can come before the connect has been confirmed (SO_ERROR).
        Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(start.elapsed()),
        Err(e) => return Err(e),
    };
    let mut b = [0u8; 1];
    let refused = match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
        ),
    };
    let took = start.elapsed();
    close_with_reset(s);
    if refused {
        Ok(took)
    } else {
        Err(std::io::Error::other(
            "the proxy answered instead of refusing",
        ))
    }
}

/// [`RATE_THREADS`] blocking clients repeat `cycle` against `addr` for `run`; cycles that
/// start in the first tenth (at most 0.5 s) are not recorded.
pub fn run(
    addr: SocketAddr,
    run: Duration,
    proxy: &[Pid],
    cycle: Cycle,
) -> Result<ConnRate, String> {
    let meter = BusyMeter::start(proxy)?;
    let start = Instant::now();
    let (recording, end) = (start + warmup(run), start + run);
    let workers: Vec<_> = (0..RATE_THREADS)
        .map(|i| {
            let cycle = Arc::clone(&cycle);
            std::thread::Builder::new()
                .name(format!("rate-{i}"))
                .spawn(move || {
                    let (mut lat, mut done, mut errors, mut first_error) =
                        (Vec::new(), 0u64, 0u64, None);
                    loop {
                        let t = Instant::now();
                        if t >= end {
                            break;
                        }
                        match cycle(addr) {
                            Ok(d) => {
                                done += 1;
                                if t >= recording && Instant::now() <= end {
                                    lat.push(d.as_nanos() as u64)
                                }
                            }
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                    (lat, done, errors, first_error)
                })
                .context(|| "start a client thread".into())
        })
        .collect::<Result<_, _>>()?;
    let mut all = Vec::new();
    let (mut done, mut errors, mut first_error) = (0, 0, None);
    for w in workers {
        let (lat, d, e, first) = w.join().map_err(|_| "a client thread panicked")?;
        all.extend(lat);
        done += d;
        errors += e;
        first_error = first_error.or(first);
    }
    let cpu_us = meter
        .proxy_seconds()?
        .filter(|_| done > 0)
        .map(|s| s / done as f64 * 1e6);
    let busy = meter.finish()?;
    let per_sec = all.len() as f64 / (end - recording).as_secs_f64();
    let latency = Percentiles::of(&mut all)
        .ok_or_else(|| format!("no connection completed: {first_error:?}"))?;
    Ok(ConnRate {
        per_sec,
        latency,
        errors,
        first_error,
        busy,
        cpu_us,
    })
}
