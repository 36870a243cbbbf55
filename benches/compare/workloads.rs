//! The load generators. Each connects to `addr` (a proxy, or the backend for `direct`),
//! speaks the backend protocol of [`crate::backend`] and returns its figures. All run in
//! the harness process; `proxy` holds the processes to read CPU time and memory from
//! (empty for direct), whose figures are summed.

use crate::backend::pattern_byte;
use crate::sys::{self, Context, Pid};
use mio::{Events, Interest, Poll, Token};
use socket2::SockRef;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Longest a blocking call may wait before the run is declared stuck.
const STALL: Duration = Duration::from_secs(10);
/// Bytes per read or write in bulk transfers.
const CHUNK: usize = 256 * 1024;
/// Ping-pong message size.
pub const MESSAGE: usize = 64;
/// Time the slow reader leaves the flood unread.
pub const SLOW_STALL: Duration = Duration::from_secs(2);
/// Bytes the backend sends the slow reader in all.
pub const SLOW_TOTAL: u64 = 256 << 20;

/// The part of a run that is not recorded: a tenth, at most half a second.
pub fn warmup(run: Duration) -> Duration {
    (run / 10).min(Duration::from_millis(500))
}

/// Connects with a timeout and sets the options every workload wants.
fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, STALL).context(|| format!("connect to {addr}"))?;
    s.set_nodelay(true).context(|| "set TCP_NODELAY".into())?;
    s.set_read_timeout(Some(STALL))
        .context(|| "set a read timeout".into())?;
    s.set_write_timeout(Some(STALL))
        .context(|| "set a write timeout".into())?;
    Ok(s)
}

/// Closes with RST (SO_LINGER 0), so the client keeps no TIME_WAIT entry.
pub fn close_with_reset<S: AsFd>(s: S) {
    let _ = SockRef::from(&s).set_linger(Some(Duration::ZERO));
}

/// CPU seconds (user + system) that the processes `pids` used in all.
pub fn cpu_seconds_of(pids: &[Pid]) -> Result<f64, String> {
    pids.iter()
        .map(|&p| sys::cpu_seconds(p).context(|| format!("read CPU time of {p}")))
        .sum()
}

/// CPU seconds the proxy used between two moments, if there is a proxy.
struct CpuMeter {
    /// The proxy's processes; empty for direct.
    pids: Vec<Pid>,
    start: f64,
}

impl CpuMeter {
    fn start(pids: &[Pid]) -> Result<CpuMeter, String> {
        Ok(CpuMeter {
            pids: pids.to_vec(),
            start: cpu_seconds_of(pids)?,
        })
    }

    /// CPU seconds used since `start`; `None` without a proxy.
    fn used(&self) -> Result<Option<f64>, String> {
        if self.pids.is_empty() {
            return Ok(None);
        }
        Ok(Some(cpu_seconds_of(&self.pids)? - self.start))
    }

    /// CPU seconds per GiB for `bytes` moved since `start`; `None` without a proxy.
    fn per_gib(&self, bytes: u64) -> Result<Option<f64>, String> {
        Ok(self
            .used()?
            .map(|used| used / (bytes as f64 / (1u64 << 30) as f64)))
    }
}

/// How busy proxy and harness were during a run, in percent of one core (above 100 when
/// a side ran on several CPUs at once, possible under `--cpus shared`).
#[derive(Debug, Clone, Copy)]
pub struct Busy {
    /// The proxy's processes, all threads; `None` for direct.
    pub proxy: Option<f64>,
    /// The harness process, all threads: backend and load generator.
    pub harness: f64,
}

/// CPU seconds of the proxy and of the harness at the start of a run.
pub struct BusyMeter {
    proxy: CpuMeter,
    harness: f64,
    start: Instant,
}

impl BusyMeter {
    /// Reads the counters now.
    pub fn start(proxy: &[Pid]) -> Result<BusyMeter, String> {
        Ok(BusyMeter {
            proxy: CpuMeter::start(proxy)?,
            harness: own_cpu_seconds()?,
            start: Instant::now(),
        })
    }

    /// Proxy CPU seconds used since `start`; `None` without a proxy.
    pub fn proxy_seconds(&self) -> Result<Option<f64>, String> {
        self.proxy.used()
    }

    /// How busy both sides were since `start`.
    pub fn finish(&self) -> Result<Busy, String> {
        let wall = self.start.elapsed().as_secs_f64();
        Ok(Busy {
            proxy: self.proxy.used()?.map(|used| used / wall * 100.0),
            harness: (own_cpu_seconds()? - self.harness) / wall * 100.0,
        })
    }
}

/// CPU seconds of the harness process (every thread).
pub fn own_cpu_seconds() -> Result<f64, String> {
    sys::cpu_seconds(std::process::id() as Pid).context(|| "read the harness CPU time".into())
}

/// Result of one bulk transfer.
pub struct Bulk {
    /// Payload throughput, 10^9 bits per second.
    pub gbit: f64,
    /// Proxy CPU seconds (user + system) per GiB moved; `None` for direct.
    pub cpu_per_gib: Option<f64>,
}

fn gbit(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e9
}

/// One connection sends for `run`, then half-closes; the rate counts until the backend
/// confirms (with its byte count) that everything arrived.
pub fn bulk_upload(addr: SocketAddr, run: Duration, proxy: &[Pid]) -> Result<Bulk, String> {
    let mut s = connect(addr)?;
    s.write_all(b"S").context(|| "send the mode byte".into())?;
    let chunk = vec![0x5a_u8; CHUNK];
    let cpu = CpuMeter::start(proxy)?;
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < run {
        s.write_all(&chunk)
            .context(|| format!("upload after {sent} bytes"))?;
        sent += CHUNK as u64;
    }
    s.shutdown(Shutdown::Write)
        .context(|| "half-close the upload".into())?;
    let mut count = [0u8; 8];
    s.read_exact(&mut count)
        .context(|| "read the backend's byte count".into())?;
    let elapsed = start.elapsed();
    let received = u64::from_le_bytes(count);
    if received != sent {
        return Err(format!("upload: sent {sent} bytes, backend got {received}"));
    }
    Ok(Bulk {
        gbit: gbit(sent, elapsed),
        cpu_per_gib: cpu.per_gib(sent)?,
    })
}

/// One connection receives the backend's stream for `run`, checking the pattern at the
/// start of every read.
pub fn bulk_download(addr: SocketAddr, run: Duration, proxy: &[Pid]) -> Result<Bulk, String> {
    let mut s = connect(addr)?;
    s.write_all(b"G").context(|| "send the mode byte".into())?;
    let mut buf = vec![0u8; CHUNK];
    let cpu = CpuMeter::start(proxy)?;
    let start = Instant::now();
    let mut received = 0u64;
    while start.elapsed() < run {
        let n = match s.read(&mut buf) {
            Ok(0) => return Err(format!("download: EOF after {received} bytes")),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("download after {received} bytes: {e}")),
        };
        if buf[0] != pattern_byte(received) {
            return Err(format!("download: corrupt byte at offset {received}"));
        }
        received += n as u64;
    }
    let elapsed = start.elapsed();
    let cpu_per_gib = cpu.per_gib(received)?;
    close_with_reset(s);
    Ok(Bulk {
        gbit: gbit(received, elapsed),
        cpu_per_gib,
    })
}

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (nanoseconds), which it sorts.
    pub fn of(samples: &mut [u64]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1] as f64 / 1e3
        };
        Some(Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
        })
    }
}

/// Result of a ping-pong run.
pub struct PingPong {
    /// Completed request/response exchanges per second, over all connections.
    pub rps: f64,
    pub latency: Percentiles,
    pub busy: Busy,
}

/// One ping-pong connection: a request is in flight at all times.
struct Exchange {
    stream: mio::net::TcpStream,
    written: usize,
    read: usize,
    sent_at: Instant,
    buf: [u8; MESSAGE],
}

/// Latencies of exchanges that complete inside the recording window.
struct Recorder {
    latencies: Vec<u64>,
    recording: Instant,
    end: Instant,
    last_progress: Instant,
}

impl Recorder {
    fn done(&mut self, now: Instant, latency: Duration) {
        self.last_progress = now;
        if now >= self.recording && now < self.end {
            self.latencies.push(latency.as_nanos() as u64);
        }
    }
}

impl Exchange {
    /// Writes and reads until blocked; tells `rec` about every completed exchange.
    fn pump(&mut self, rec: &mut Recorder) -> Result<(), String> {
        let request = [0x42u8; MESSAGE];
        loop {
            if self.written < MESSAGE {
                match self.stream.write(&request[self.written..]) {
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("ping-pong write: {e}")),
                }
                continue;
            }
            match self.stream.read(&mut self.buf[self.read..]) {
                Ok(0) => return Err("ping-pong: connection closed".into()),
                Ok(n) => self.read += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("ping-pong read: {e}")),
            }
            if self.read == MESSAGE {
                let now = Instant::now();
                rec.done(now, now - self.sent_at);
                self.read = 0;
                self.written = 0;
                self.sent_at = now;
            }
        }
    }
}

/// `conns` connections each keep one `MESSAGE`-byte request in flight for `run`; one
/// mio thread drives them all (a closed loop: the next request leaves when the echo is in).
pub fn ping_pong(
    addr: SocketAddr,
    conns: usize,
    run: Duration,
    proxy: &[Pid],
) -> Result<PingPong, String> {
    let mut poll = Poll::new().context(|| "create a poller".into())?;
    let mut exchanges = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut s = connect(addr)?;
        s.write_all(b"E").context(|| "send the mode byte".into())?;
        s.set_nonblocking(true)
            .context(|| "make a socket non-blocking".into())?;
        let mut stream = mio::net::TcpStream::from_std(s);
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .context(|| "register a client".into())?;
        exchanges.push(Exchange {
            stream,
            written: 0,
            read: 0,
            sent_at: Instant::now(),
            buf: [0; MESSAGE],
        });
    }
    let meter = BusyMeter::start(proxy)?;
    let start = Instant::now();
    let mut rec = Recorder {
        latencies: Vec::with_capacity(1 << 20),
        recording: start + warmup(run),
        end: start + run,
        last_progress: start,
    };
    for e in &mut exchanges {
        e.sent_at = Instant::now();
        e.pump(&mut rec)?;
    }
    let mut events = Events::with_capacity(1024);
    loop {
        let now = Instant::now();
        if now >= rec.end {
            break;
        }
        let timeout = (rec.end - now).min(Duration::from_millis(100));
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        for event in events.iter() {
            exchanges[event.token().0].pump(&mut rec)?;
        }
        if events.is_empty() && Instant::now() - rec.last_progress > STALL {
            return Err("ping-pong: no progress for 10 s".into());
        }
    }
    let busy = meter.finish()?;
    for e in exchanges {
        close_with_reset(e.stream);
    }
    let rps = rec.latencies.len() as f64 / (rec.end - rec.recording).as_secs_f64();
    let latency = Percentiles::of(&mut rec.latencies).ok_or("ping-pong: no exchange completed")?;
    Ok(PingPong { rps, latency, busy })
}

/// Resident memory of the processes `pids` together, KiB (`VmRSS`).
fn rss_kib_of(pids: &[Pid]) -> Result<u64, String> {
    pids.iter()
        .map(|&p| sys::rss_kib(p).context(|| format!("read VmRSS of {p}")))
        .sum()
}

/// Opens `conns` connections through the proxy, each confirmed by a one-byte echo, lets
/// them sit idle, and returns the proxy's RSS growth per connection in KiB.
pub fn idle_memory(addr: SocketAddr, proxy: &[Pid], conns: usize) -> Result<f64, String> {
    let rss = || rss_kib_of(proxy);
    let before = rss()?;
    let mut open = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut s = connect(addr).map_err(|e| format!("connection {i}: {e}"))?;
        s.write_all(b"E.")
            .context(|| format!("connection {i}: write"))?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)
            .context(|| format!("connection {i}: read the echo"))?;
        open.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss()?;
    for s in open {
        close_with_reset(s);
    }
    Ok((after as f64 - before as f64) / conns as f64)
}

/// Result of the slow-reader workload.
pub struct SlowReader {
    /// The proxy's peak RSS during the run, MiB.
    pub peak_mib: f64,
    /// Peak minus RSS before the run, KiB.
    pub growth_kib: f64,
}

/// The backend floods a client that reads nothing for `SLOW_STALL`, then the client reads
/// all `SLOW_TOTAL` bytes (checked). Peak RSS comes from `VmHWM`, reset before the run
/// (with several processes: the sum of their peaks).
pub fn slow_reader(addr: SocketAddr, proxy: &[Pid]) -> Result<SlowReader, String> {
    for &p in proxy {
        sys::reset_peak_rss(p).context(|| format!("reset VmHWM of {p} (clear_refs)"))?;
    }
    let before = rss_kib_of(proxy)?;
    let mut s = connect(addr)?;
    let mut request = vec![b'F'];
    request.extend_from_slice(&SLOW_TOTAL.to_le_bytes());
    s.write_all(&request)
        .context(|| "send the flood request".into())?;
    std::thread::sleep(SLOW_STALL);
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if buf[0] != pattern_byte(received) {
                    return Err(format!("slow reader: corrupt byte at offset {received}"));
                }
                received += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("slow reader after {received} bytes: {e}")),
        }
    }
    if received != SLOW_TOTAL {
        return Err(format!("slow reader: got {received} of {SLOW_TOTAL} bytes"));
    }
    let peak: u64 = proxy
        .iter()
        .map(|&p| sys::peak_rss_kib(p).context(|| format!("read VmHWM of {p}")))
        .sum::<Result<_, _>>()?;
    Ok(SlowReader {
        peak_mib: peak as f64 / 1024.0,
        growth_kib: peak as f64 - before as f64,
    })
}
