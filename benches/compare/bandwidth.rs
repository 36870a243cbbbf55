//! Bandwidth accuracy: ringproxy with `--download-rate R`, several connections each
//! receiving the backend's endless stream at once. The first second holds the bucket's
//! burst (one second's worth); each connection's long-run rate is what it received over
//! the next [`WINDOW`], compared with the setting.

use crate::backend::pattern_byte;
use crate::sys::Context;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// (rate in bytes per second, connections at once, label). 1 GiB/s is one connection:
/// a pinned proxy core moves about 1.7 GB/s in all here, so two connections at 1 GiB/s
/// each would measure the core, not the limiter.
pub const RATES: [(u64, usize, &str); 4] = [
    (64 << 10, 4, "64 KiB/s"),
    (1 << 20, 4, "1 MiB/s"),
    (100 << 20, 4, "100 MiB/s"),
    (1 << 30, 1, "1 GiB/s"),
];
/// Time left to the burst before the rate is measured.
const BURST: Duration = Duration::from_secs(1);
/// Time the long-run rate is measured over.
pub const WINDOW: Duration = Duration::from_secs(4);
/// Bytes per read.
const CHUNK: usize = 256 * 1024;

/// What one run at one rate found: each connection's long-run rate ÷ the setting.
pub struct Accuracy {
    /// Mean over the connections.
    pub mean: f64,
    /// The connection farthest from the setting (its ratio, not the distance).
    pub worst: f64,
}

/// `conns` connections through `addr` (a proxy limiting downloads to `rate`) read the
/// backend's stream for [`BURST`] + [`WINDOW`]; returns their rates ÷ `rate`.
pub fn accuracy(addr: SocketAddr, rate: u64, conns: usize) -> Result<Accuracy, String> {
    let start = Arc::new(Barrier::new(conns));
    let threads: Vec<_> = (0..conns)
        .map(|i| {
            let start = Arc::clone(&start);
            std::thread::Builder::new()
                .name(format!("bw-{i}"))
                .spawn(move || receive(addr, &start))
                .context(|| "start a bandwidth client".into())
        })
        .collect::<Result<_, _>>()?;
    let mut ratios = Vec::with_capacity(conns);
    for t in threads {
        let bytes_per_sec = t.join().map_err(|_| "a bandwidth client panicked")??;
        ratios.push(bytes_per_sec / rate as f64);
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let worst = ratios
        .iter()
        .copied()
        .max_by(|a, b| (a - 1.0).abs().total_cmp(&(b - 1.0).abs()))
        .unwrap_or(mean);
    Ok(Accuracy { mean, worst })
}

/// One connection: asks for the stream, waits for the others, then reads (checking the
/// pattern) and returns bytes per second between the first read after [`BURST`] and the
/// last read before [`BURST`] + [`WINDOW`].
fn receive(addr: SocketAddr, start: &Barrier) -> Result<f64, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .context(|| format!("connect to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .context(|| "set a read timeout".into())?;
    s.write_all(b"G").context(|| "send the mode byte".into())?;
    start.wait();
    let t0 = Instant::now();
    let (from, to) = (t0 + BURST, t0 + BURST + WINDOW);
    let mut buf = vec![0u8; CHUNK];
    let (mut received, mut first, mut last) = (0u64, None, None);
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => return Err(format!("bandwidth: EOF after {received} bytes")),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("bandwidth read after {received} bytes: {e}")),
        };
        if buf[0] != pattern_byte(received) {
            return Err(format!("bandwidth: corrupt byte at offset {received}"));
        }
        received += n as u64;
        let now = Instant::now();
        if now >= to {
            break;
        }
        if now >= from {
            first.get_or_insert((now, received));
            last = Some((now, received));
        }
    }
    crate::workloads::close_with_reset(s);
    match (first, last) {
        (Some((t1, b1)), Some((t2, b2))) if t2 > t1 => {
            Ok((b2 - b1) as f64 / (t2 - t1).as_secs_f64())
        }
        _ => Err("bandwidth: too few reads in the window to measure a rate".into()),
    }
}
