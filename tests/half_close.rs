//! Half-close through an in-process proxy: a client FIN is passed on only after its data, and
//! the reply still flows back; an upstream FIN reaches the client after its data while the
//! client can keep sending; bytes written before a FIN are never cut off.

mod common;

use common::*;
use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::Duration;

fn client_half_close_gets_the_whole_reply_then_eof() {
    // 1 MiB: many times the 16 KiB ring, so the FIN must wait for the ring to drain.
    const TOTAL: u64 = 1 << 20;
    let backend = Backend::echo();
    let proxy = TestProxy::to(&[backend.addr]);
    let mut client = connect(proxy.addr);
    let mut writer = client.try_clone().unwrap();
    let sender = thread::spawn(move || {
        Pattern::new(3).write_to(&mut writer, TOTAL)?;
        writer.shutdown(Shutdown::Write)
    });
    let (got, end) = Pattern::new(3).read_from(&mut client, TOTAL, Duration::from_secs(20));
    sender.join().unwrap().unwrap();
    assert_eq!(got, TOTAL, "the whole reply arrives");
    assert_eq!(end, Ending::Eof, "then EOF");
    proxy.stop();
}

fn client_fin_reaches_the_backend_after_the_data_and_reply_still_flows() {
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let mut client = connect(proxy.addr);
    client.write_all(b"request").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut upstream = accepted.next(IO_TIMEOUT);
    assert_eq!(read_to_eof(&mut upstream, IO_TIMEOUT), b"request");
    // The backend answers after the client's FIN, in several writes.
    for part in [&b"reply, "[..], b"in ", b"parts"] {
        upstream.write_all(part).unwrap();
    }
    upstream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut client, IO_TIMEOUT), b"reply, in parts");
    proxy.stop();
}

fn upstream_half_close_client_gets_data_and_eof_and_can_still_send() {
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let (mut client, mut upstream) = open_pair(proxy.addr, &accepted, b"hello");

    // The backend says its piece and closes its write side, but keeps reading.
    let big = XorShift::new(4).bytes(200_000);
    upstream.write_all(b"server data:").unwrap();
    upstream.write_all(&big).unwrap();
    upstream.shutdown(Shutdown::Write).unwrap();
    let got = read_to_eof(&mut client, IO_TIMEOUT);
    assert_eq!(&got[..12], b"server data:");
    assert!(
        got[12..] == big[..],
        "the client gets all the data before EOF"
    );

    // The other direction still flows, several times.
    for msg in [&b"still "[..], b"talking ", b"after your FIN"] {
        client.write_all(msg).unwrap();
        assert_eq!(read_exact_within(&mut upstream, msg.len(), IO_TIMEOUT), msg);
    }
    // Then the client closes too: the backend sees EOF, and the pair is gone.
    client.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_eof(&mut upstream, IO_TIMEOUT).is_empty());
    drop(client);
    proxy.stop();
}

fn upstream_close_behind_megabytes_of_data_delivers_everything() {
    // The backend writes far more than the ring holds and then closes its socket outright:
    // the FIN arrives while megabytes are still queued, and must not overtake them.
    const TOTAL: u64 = 8 << 20;
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let (mut client, mut upstream) = open_pair(proxy.addr, &accepted, b"go");
    let sender = thread::spawn(move || {
        Pattern::new(5).write_to(&mut upstream, TOTAL)?;
        // A full close, not just shutdown: the proxy must still deliver everything.
        drop(upstream);
        Ok::<(), std::io::Error>(())
    });
    let (got, end) = Pattern::new(5).read_from(&mut client, TOTAL, Duration::from_secs(30));
    sender.join().unwrap().unwrap();
    assert_eq!((got, end), (TOTAL, Ending::Eof));
    proxy.stop();
}

each_engine!(
    client_half_close_gets_the_whole_reply_then_eof,
    client_fin_reaches_the_backend_after_the_data_and_reply_still_flows,
    upstream_half_close_client_gets_data_and_eof_and_can_still_send,
    upstream_close_behind_megabytes_of_data_delivers_everything,
);
