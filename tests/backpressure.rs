//! Backpressure through the binary with `--buffer-size 64KiB`: a reader that stops reading
//! stalls the writer at the far end instead of growing the proxy, whose VmRSS stays within a
//! bound while 300 MiB wait to be sent; once the reader reads, every byte arrives intact.
//! Both directions: backend → slow client, and client → slow backend.

mod common;

use common::*;
use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const TOTAL: u64 = 300 << 20;
/// How much the proxy's resident memory may grow over its idle baseline.
const RSS_ALLOWANCE_KIB: u64 = 16 * 1024;
/// Bytes the writer may get rid of while the reader reads nothing: socket buffers on three
/// sockets plus the 64 KiB ring, with room to spare, and far below `TOTAL`.
const IN_FLIGHT_LIMIT: u64 = 64 << 20;
/// A write that makes no progress for this long counts as blocked.
const STALL: Duration = Duration::from_millis(200);

/// A writer thread pushing `TOTAL` pattern bytes into `s`; each time a write stalls for
/// [`STALL`] it reports the bytes written so far on the returned channel. It closes `s` at
/// the end.
fn push(
    mut s: TcpStream,
    seed: u64,
) -> (Arc<AtomicU64>, Receiver<u64>, JoinHandle<io::Result<()>>) {
    let written = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel();
    let count = Arc::clone(&written);
    let writer = thread::spawn(move || {
        let pattern = Pattern::new(seed);
        s.set_write_timeout(Some(STALL))?;
        let give_up = Instant::now() + Duration::from_secs(90);
        let mut pos = 0u64;
        while pos < TOTAL {
            if Instant::now() > give_up {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "writer gave up"));
            }
            let piece = pattern.chunk(pos, (TOTAL - pos).min(256 * 1024) as usize);
            match s.write(piece) {
                Ok(n) => {
                    pos += n as u64;
                    count.store(pos, Ordering::SeqCst);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    let _ = tx.send(pos);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    (written, rx, writer)
}

/// While the reader reads nothing: waits until the writer has stalled three times in a row
/// (0.6 s without progress) and checks the proxy's memory and the bytes in flight each time.
fn check_bounded_while_stalled(proxy: &BinProxy, baseline_kib: u64, stalls: &Receiver<u64>) -> u64 {
    let mut previous = None;
    let mut in_a_row = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_a_row < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let at = stalls
            .recv_timeout(left)
            .expect("the writer never stalled: is anything holding the data back?");
        let rss = proxy.rss_kib();
        assert!(
            rss <= baseline_kib + RSS_ALLOWANCE_KIB,
            "proxy VmRSS {rss} KiB with {at} bytes in flight, baseline {baseline_kib} KiB"
        );
        assert!(
            at <= IN_FLIGHT_LIMIT,
            "{at} bytes left the writer while the reader read nothing"
        );
        in_a_row = if previous == Some(at) {
            in_a_row + 1
        } else {
            1
        };
        previous = Some(at);
    }
    previous.unwrap()
}

fn slow_client_stalls_the_backend_and_bounds_proxy_memory() {
    let (backend, accepted) = Backend::channel();
    let proxy = BinProxy::start(&["-u", &backend.addr.to_string(), "--buffer-size", "64KiB"]);
    let baseline = proxy.rss_kib();
    let (mut client, upstream) = open_pair(proxy.addr, &accepted, b"send");

    let (written, stalls, writer) = push(upstream, 21);
    let stalled_at = check_bounded_while_stalled(&proxy, baseline, &stalls);
    eprintln!(
        "backend stalled after {stalled_at} bytes; proxy VmRSS {} KiB (baseline {baseline} KiB)",
        proxy.rss_kib()
    );

    let (got, end) = Pattern::new(21).read_from(&mut client, TOTAL, Duration::from_secs(90));
    writer
        .join()
        .unwrap()
        .expect("the backend writes everything");
    assert_eq!(written.load(Ordering::SeqCst), TOTAL);
    assert_eq!((got, end), (TOTAL, Ending::Eof));
    let rss = proxy.rss_kib();
    assert!(
        rss <= baseline + RSS_ALLOWANCE_KIB,
        "VmRSS {rss} KiB afterwards"
    );
}

fn slow_backend_stalls_the_client_and_bounds_proxy_memory() {
    let (backend, accepted) = Backend::channel();
    let proxy = BinProxy::start(&["-u", &backend.addr.to_string(), "--buffer-size", "64KiB"]);
    let baseline = proxy.rss_kib();
    let client = connect(proxy.addr);
    let (written, stalls, writer) = push(client, 22);
    let mut upstream = accepted.next(IO_TIMEOUT);
    let stalled_at = check_bounded_while_stalled(&proxy, baseline, &stalls);
    eprintln!(
        "client stalled after {stalled_at} bytes; proxy VmRSS {} KiB (baseline {baseline} KiB)",
        proxy.rss_kib()
    );

    let (got, end) = Pattern::new(22).read_from(&mut upstream, TOTAL, Duration::from_secs(90));
    writer
        .join()
        .unwrap()
        .expect("the client writes everything");
    assert_eq!(written.load(Ordering::SeqCst), TOTAL);
    assert_eq!((got, end), (TOTAL, Ending::Eof));
}

each_engine!(
    slow_client_stalls_the_backend_and_bounds_proxy_memory,
    slow_backend_stalls_the_client_and_bounds_proxy_memory,
);
