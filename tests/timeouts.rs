//! Idle timeout (300 ms here): an idle pair is closed neither early nor late, a client that
//! keeps trickling bytes is not closed, half-closed pairs that go quiet are closed too, and the
//! binary logs the reason.

mod common;

use common::*;
use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

const IDLE: Duration = Duration::from_millis(300);

fn idle_proxy(upstream: std::net::SocketAddr) -> TestProxy {
    Settings::to(&[upstream]).idle_timeout(IDLE).start()
}

fn idle_client_is_closed_after_the_idle_timeout() {
    let backend = Backend::echo();
    let proxy = idle_proxy(backend.addr);
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"then silence");
    let quiet_since = Instant::now();
    let end = expect_closed(&mut client, Duration::from_secs(3));
    let after = quiet_since.elapsed();
    assert_eq!(end, Ending::Eof, "an idle close is a FIN, not a reset");
    assert!(
        after >= IDLE - Duration::from_millis(50),
        "closed after {after:?} of silence, before the {IDLE:?} idle timeout"
    );
    proxy.stop();
}

fn client_trickling_bytes_is_not_closed() {
    let backend = Backend::echo();
    let proxy = idle_proxy(backend.addr);
    let mut client = connect(proxy.addr);
    let started = Instant::now();
    let mut sent = 0u32;
    // One byte every 100 ms for a second: the pair is never idle for 300 ms. The sleep paces
    // the traffic; it synchronises nothing.
    while started.elapsed() < Duration::from_secs(1) {
        round_trip(&mut client, &[b'a' + (sent % 26) as u8]);
        sent += 1;
        thread::sleep(Duration::from_millis(100));
    }
    assert!(sent >= 5, "only {sent} bytes trickled");
    round_trip(&mut client, b"still open after a second");
    proxy.stop();
}

fn quiet_pair_half_closed_by_the_client_is_closed() {
    // The backend keeps its side open and says nothing after the client's FIN.
    let (backend, accepted) = Backend::channel();
    let proxy = idle_proxy(backend.addr);
    let mut client = connect(proxy.addr);
    client.write_all(b"bye").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut upstream = accepted.next(IO_TIMEOUT);
    assert_eq!(read_to_eof(&mut upstream, IO_TIMEOUT), b"bye");
    let quiet_since = Instant::now();
    expect_closed(&mut client, Duration::from_secs(3));
    assert!(quiet_since.elapsed() >= IDLE - Duration::from_millis(50));
    // The upstream socket is closed as well: the backend's next write fails or its read ends.
    let (_, end) = read_until_end(&mut upstream, Duration::from_secs(3), 1);
    assert!(
        matches!(end, Ending::Eof | Ending::Reset),
        "upstream not closed: {end:?}"
    );
    drop(upstream);
    proxy.stop();
}

fn quiet_pair_half_closed_by_the_upstream_is_closed() {
    // The client keeps its side open and says nothing after the backend's FIN.
    let (backend, accepted) = Backend::channel();
    let proxy = idle_proxy(backend.addr);
    let (mut client, mut upstream) = open_pair(proxy.addr, &accepted, b"hi");
    upstream.write_all(b"done").unwrap();
    upstream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut client, IO_TIMEOUT), b"done");
    let quiet_since = Instant::now();
    let end = expect_closed(&mut upstream, Duration::from_secs(3));
    assert_eq!(end, Ending::Eof, "an idle close is a FIN, not a reset");
    assert!(quiet_since.elapsed() >= IDLE - Duration::from_millis(50));
    proxy.stop();
}

fn idle_close_is_logged_with_its_reason() {
    let backend = Backend::echo();
    let proxy = BinProxy::start(&[
        "-v",
        "--idle-timeout",
        "300ms",
        "-u",
        &backend.addr.to_string(),
    ]);
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"12345");
    expect_closed(&mut client, Duration::from_secs(3));
    let me = format!("client={} ", client.local_addr().unwrap());
    let line = proxy
        .wait_for_line(|l| l.contains(&me), IO_TIMEOUT)
        .unwrap_or_else(|| panic!("no close line for {me} in {:?}", proxy.log()));
    assert!(line.contains("reason=idle-timeout"), "{line}");
    assert!(line.contains("to_upstream=5 to_client=5"), "{line}");
}

each_engine!(
    idle_client_is_closed_after_the_idle_timeout,
    client_trickling_bytes_is_not_closed,
    quiet_pair_half_closed_by_the_client_is_closed,
    quiet_pair_half_closed_by_the_upstream_is_closed,
    idle_close_is_logged_with_its_reason,
);
