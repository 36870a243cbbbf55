//! The byte budget through the binary: with `--max-buffered 32MiB` and 1 MiB rings, 200
//! slow readers whose backends flood them cannot grow the proxy past the budget plus a fixed
//! overhead (without the budget they would hold 200 MiB); once the readers read, every
//! connection delivers every byte: none fails or is cut because of the budget.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CONNS: usize = 200;
/// What each backend sends its client: more than the kernel buffers on the way (a 4 MiB
/// send buffer, the 4 KiB window) so that the rest piles up in the proxy's 1 MiB rings.
const FLOOD: u64 = 6 << 20;
const BUDGET_MIB: u64 = 32;
/// The fixed overhead the issue allows above the budget.
const OVERHEAD_MIB: u64 = 16;

/// A connection whose receive buffer is 4 KiB, so that what the client does not read piles
/// up in the proxy rather than in the kernel.
fn small_window(to: std::net::SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect_timeout(&to.into(), IO_TIMEOUT).unwrap();
    socket.into()
}

/// Peak resident memory (`VmHWM`) of `pid` in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn slow_readers_cannot_hold_more_than_the_budget_and_all_finish() {
    setup();
    let backend = Backend::spawn(listen_on(v4_any_port()), |mut s| {
        // Read the client's two bytes first: closing with them unread would send RST.
        let mut go = [0u8; 2];
        if std::io::Read::read_exact(&mut s, &mut go).is_ok() {
            let _ = Pattern::new(3).write_to(&mut s, FLOOD);
        }
    });
    let upstream = backend.addr.to_string();
    let proxy = BinProxy::start(&[
        "--upstream",
        &upstream,
        "--buffer-size",
        "1MiB",
        "--max-buffered",
        "32MiB",
        "--max-conns",
        "1000",
    ]);
    let baseline = proxy.rss_kib();
    // Every client connects with a small receive buffer and reads nothing: the backends
    // flood until the proxy's rings are full and it stops reading them.
    let mut clients: Vec<TcpStream> = (0..CONNS).map(|_| small_window(proxy.addr)).collect();
    for c in &mut clients {
        c.write_all(b"go").unwrap();
    }
    // Wait until the floods have filled what they can (the proxy's memory stops growing).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = 0;
    let settled = loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = proxy.rss_kib();
        if now == last || Instant::now() > deadline {
            break now;
        }
        last = now;
    };
    let peak = peak_rss_kib(proxy.pid());
    let allowed = baseline + (BUDGET_MIB + OVERHEAD_MIB) * 1024;
    assert!(
        peak <= allowed,
        "peak {peak} KiB with {CONNS} flooded slow readers, allowed {allowed} KiB \
         (baseline {baseline} KiB, settled at {settled} KiB)"
    );
    // Now the readers read: every byte arrives on every connection.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                Pattern::new(3).read_from(&mut c, FLOOD, Duration::from_secs(60))
            })
        })
        .collect();
    for (i, reader) in readers.into_iter().enumerate() {
        let (got, end) = reader.join().unwrap();
        assert_eq!((got, end), (FLOOD, Ending::Eof), "connection {i}");
    }
    let peak = peak_rss_kib(proxy.pid());
    assert!(
        peak <= allowed,
        "peak {peak} KiB while draining, allowed {allowed} KiB"
    );
}
