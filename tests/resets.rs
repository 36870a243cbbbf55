//! Resets (RST) from either side, mid-stream and on idle pairs: the other side is reset
//! promptly (not closed with a FIN, so a cut stream never looks complete), the bytes it got
//! before are an uncorrupted prefix, and the proxy goes on serving other connections.

mod common;

use common::*;
use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

/// Bytes pushed before the reset: far more than the rings and socket buffers hold at once.
const MID_STREAM: u64 = 8 << 20;
/// How soon the other side must learn of a reset.
const PROMPTLY: Duration = Duration::from_secs(2);

/// A fresh client is still served end to end through `accepted`'s backend.
fn still_serves(proxy: &TestProxy, accepted: &Accepted) {
    let (mut client, mut upstream) = open_pair(proxy.addr, accepted, b"anyone?");
    upstream.write_all(b"yes").unwrap();
    assert_eq!(read_exact_within(&mut client, 3, IO_TIMEOUT), b"yes");
}

fn client_reset_mid_stream_resets_the_backend() {
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let mut client = connect(proxy.addr);
    let mut upstream = {
        // The first bytes tell the backend connection apart from later ones.
        client
            .write_all(&Pattern::new(11).chunk(0, 1)[..1])
            .unwrap();
        accepted.next(IO_TIMEOUT)
    };
    let backend_reader = thread::spawn(move || {
        let (got, end) = Pattern::new(11).read_from(&mut upstream, 1 + MID_STREAM, IO_TIMEOUT);
        (got, end, Instant::now())
    });
    // Stream the rest while the backend reads, then reset without waiting for delivery.
    let pattern = Pattern::new(11);
    let mut pos = 1;
    while pos < 1 + MID_STREAM {
        let piece = pattern.chunk(pos, (1 + MID_STREAM - pos).min(64 * 1024) as usize);
        client.write_all(piece).unwrap();
        pos += piece.len() as u64;
    }
    set_reset_on_close(&client);
    let reset_at = Instant::now();
    drop(client);

    let (got, end, ended_at) = backend_reader.join().expect("backend reader");
    assert_eq!(end, Ending::Reset, "backend saw {end:?} after {got} bytes");
    let delay = ended_at.saturating_duration_since(reset_at);
    assert!(
        delay < PROMPTLY,
        "backend learnt of the reset after {delay:?}"
    );
    still_serves(&proxy, &accepted);
    proxy.stop();
}

fn backend_reset_mid_stream_resets_the_client() {
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let (mut client, mut upstream) = open_pair(proxy.addr, &accepted, b"go");
    let resetter = thread::spawn(move || {
        Pattern::new(12)
            .write_to(&mut upstream, MID_STREAM)
            .unwrap();
        set_reset_on_close(&upstream);
        drop(upstream);
        Instant::now()
    });
    let (got, end) = Pattern::new(12).read_from(&mut client, MID_STREAM, Duration::from_secs(20));
    let ended_at = Instant::now();
    let reset_at = resetter.join().expect("backend writer");
    assert_eq!(end, Ending::Reset, "client saw {end:?} after {got} bytes");
    let delay = ended_at.saturating_duration_since(reset_at);
    assert!(
        delay < PROMPTLY,
        "client learnt of the reset after {delay:?}"
    );
    still_serves(&proxy, &accepted);
    proxy.stop();
}

fn client_reset_on_an_idle_pair_resets_the_backend() {
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let (client, mut upstream) = open_pair(proxy.addr, &accepted, b"hello");
    set_reset_on_close(&client);
    drop(client);
    assert_eq!(expect_closed(&mut upstream, PROMPTLY), Ending::Reset);
    still_serves(&proxy, &accepted);
    proxy.stop();
}

fn backend_reset_on_an_idle_pair_resets_the_client() {
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let (mut client, upstream) = open_pair(proxy.addr, &accepted, b"hello");
    set_reset_on_close(&upstream);
    drop(upstream);
    assert_eq!(expect_closed(&mut client, PROMPTLY), Ending::Reset);
    still_serves(&proxy, &accepted);
    proxy.stop();
}

fn many_resets_from_both_sides_leave_the_proxy_serving() {
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    for i in 0..50 {
        let mut client = connect(proxy.addr);
        client.write_all(&[i as u8; 1000]).unwrap();
        let mut upstream = accepted.next(IO_TIMEOUT);
        // The bytes arriving prove the pair is streaming. (A backend that resets before the
        // proxy has seen its connect complete counts as a failed connect, and with no other
        // upstream the client is then closed with a FIN.)
        assert_eq!(
            read_exact_within(&mut upstream, 1000, IO_TIMEOUT),
            [i as u8; 1000]
        );
        let (victim, other) = if i % 2 == 0 {
            (client, upstream)
        } else {
            (upstream, client)
        };
        set_reset_on_close(&victim);
        drop(victim);
        let mut other = other;
        let (_, end) = read_until_end(&mut other, PROMPTLY, usize::MAX);
        assert_eq!(end, Ending::Reset, "round {i}");
    }
    still_serves(&proxy, &accepted);
    proxy.stop();
}

fn client_closing_without_reading_the_reply_resets_the_backend() {
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let (client, mut upstream) = open_pair(proxy.addr, &accepted, b"request");
    // An ordinary close (FIN), but the client will never read what comes next.
    drop(client);
    assert!(read_to_eof(&mut upstream, IO_TIMEOUT).is_empty());
    // The backend streams its reply into a client that is gone: the proxy's writes fail, and
    // the backend must be told with a reset instead of writing into the void forever.
    let closed_at = std::time::Instant::now();
    let pattern = Pattern::new(13);
    let mut pos = 0;
    let failure = loop {
        let piece = pattern.chunk(pos, 64 * 1024);
        match upstream.write(piece) {
            Ok(n) => pos += n as u64,
            Err(e) => break e,
        }
        assert!(
            closed_at.elapsed() < PROMPTLY,
            "the backend could still write {pos} bytes after {PROMPTLY:?}"
        );
    };
    assert!(
        matches!(
            failure.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "backend write failed with {failure:?} after {pos} bytes"
    );
    still_serves(&proxy, &accepted);
    proxy.stop();
}

each_engine!(
    client_reset_mid_stream_resets_the_backend,
    backend_reset_mid_stream_resets_the_client,
    client_reset_on_an_idle_pair_resets_the_backend,
    backend_reset_on_an_idle_pair_resets_the_client,
    many_resets_from_both_sides_leave_the_proxy_serving,
    client_closing_without_reading_the_reply_resets_the_backend,
);
