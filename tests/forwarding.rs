//! Byte forwarding through an in-process proxy: single and repeated echo round trips, 64 MiB
//! each way at once, 1000 concurrent connections without cross-talk, IPv6 loopback,
//! TCP_NODELAY and keepalive on both of the proxy's sockets, and stopping the loop closing its
//! connections.

mod common;

use common::*;
use socket2::SockRef;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

fn echo_round_trip() {
    let backend = Backend::echo();
    let proxy = TestProxy::to(&[backend.addr]);
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"hello through the proxy");
    client.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_eof(&mut client, IO_TIMEOUT).is_empty());
    proxy.stop();
}

fn many_messages_on_one_connection() {
    let backend = Backend::echo();
    let proxy = TestProxy::to(&[backend.addr]);
    let mut client = connect(proxy.addr);
    let mut rng = XorShift::new(7);
    for i in 0..2000usize {
        // Sizes from 1 byte to a little over the 16 KiB ring, so some messages wrap it.
        let len = 1 + (rng.next() as usize % 20_000);
        let mut msg = format!("message {i}:").into_bytes();
        msg.extend(rng.bytes(len));
        round_trip(&mut client, &msg);
    }
    proxy.stop();
}

fn sixty_four_mib_each_way_at_once() {
    const TOTAL: u64 = 64 << 20;
    let backend = Backend::echo();
    let proxy = TestProxy::to(&[backend.addr]);
    let mut client = connect(proxy.addr);
    let mut writer = client.try_clone().unwrap();
    let sender = thread::spawn(move || {
        Pattern::new(64).write_to(&mut writer, TOTAL)?;
        writer.shutdown(Shutdown::Write)
    });
    let (got, end) = Pattern::new(64).read_from(&mut client, TOTAL, Duration::from_secs(60));
    sender.join().unwrap().expect("the client sends 64 MiB");
    assert_eq!(got, TOTAL, "echoed bytes");
    assert_eq!(end, Ending::Eof, "the echo ends with EOF");
    proxy.stop();
}

fn thousand_concurrent_connections_get_exactly_their_own_bytes() {
    const CONNS: usize = 1000;
    const READERS: usize = 8;
    let backend = Backend::echo();
    let proxy = TestProxy::to(&[backend.addr]);

    let payload = |i: usize| {
        let mut p = format!("<connection {i}>").into_bytes();
        p.extend(XorShift::new(i as u64).bytes(200 + i % 1800));
        p
    };
    // Open every connection and send on each before reading any reply, so all 1000 pairs are
    // open and carrying data at once.
    let mut clients: Vec<(usize, TcpStream)> = (0..CONNS)
        .map(|i| {
            let mut c = connect(proxy.addr);
            c.write_all(&payload(i)).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            (i, c)
        })
        .collect();

    let mut batches: Vec<Vec<(usize, TcpStream)>> = (0..READERS).map(|_| Vec::new()).collect();
    for (n, client) in clients.drain(..).enumerate() {
        batches[n % READERS].push(client);
    }
    let readers: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            thread::spawn(move || {
                for (i, mut c) in batch {
                    let back = read_to_eof(&mut c, Duration::from_secs(30));
                    assert!(back == payload(i), "connection {i} got foreign bytes");
                }
            })
        })
        .collect();
    for r in readers {
        r.join().expect("a reader thread failed");
    }
    assert_eq!(backend.accepted(), CONNS);
    proxy.stop();
}

fn ipv6_loopback() {
    setup();
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: ::1 is not available on this machine");
        return;
    }
    let backend = Backend::echo_on(v6_any_port());
    let proxy = Settings::to(&[backend.addr]).listen(v6_any_port()).start();
    assert!(proxy.addr.is_ipv6());
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"over ::1");
    round_trip(&mut client, &XorShift::new(6).bytes(100_000));
    proxy.stop();
}

fn tcp_nodelay_is_set_on_both_proxy_sockets() {
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let (client_side, upstream_side) =
        proxy_socket_options(&proxy, backend.addr, &accepted, |s| s.tcp_nodelay().ok());
    let (client_side, upstream_side) = (client_side.flatten(), upstream_side.flatten());
    assert_eq!(
        client_side,
        Some(true),
        "TCP_NODELAY on the accepted socket"
    );
    assert_eq!(
        upstream_side,
        Some(true),
        "TCP_NODELAY on the upstream socket"
    );
    proxy.stop();
}

fn keepalive_is_set_on_both_proxy_sockets_when_asked_for() {
    let keepalive = |s: &SockRef| {
        let on = s.keepalive().ok()?;
        let times = (
            s.tcp_keepalive_time().ok()?,
            s.tcp_keepalive_interval().ok()?,
        );
        Some((on, times, s.tcp_keepalive_retries().ok()?))
    };
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let (client_side, upstream_side) =
        proxy_socket_options(&proxy, backend.addr, &accepted, keepalive);
    assert_eq!(
        client_side.flatten().map(|k| k.0),
        Some(false),
        "off by default"
    );
    assert_eq!(
        upstream_side.flatten().map(|k| k.0),
        Some(false),
        "off by default"
    );
    proxy.stop();

    let (backend, accepted) = Backend::channel();
    let proxy = Settings::to(&[backend.addr])
        .route(|s| {
            s.keepalive = Some(Duration::from_secs(60));
            s.keepalive_interval = Some(Duration::from_millis(2500));
            s.keepalive_count = Some(4);
        })
        .start();
    let expected = (true, (Duration::from_secs(60), Duration::from_secs(3)), 4);
    let (client_side, upstream_side) =
        proxy_socket_options(&proxy, backend.addr, &accepted, keepalive);
    assert_eq!(client_side.flatten(), Some(expected), "the accepted socket");
    assert_eq!(
        upstream_side.flatten(),
        Some(expected),
        "the upstream socket"
    );
    proxy.stop();
}

fn stopping_the_proxy_closes_open_connections() {
    let (backend, accepted) = Backend::channel();
    let proxy = TestProxy::to(&[backend.addr]);
    let (mut client, mut upstream) = open_pair(proxy.addr, &accepted, b"ping");
    proxy.stop();
    expect_closed(&mut client, Duration::from_secs(5));
    expect_closed(&mut upstream, Duration::from_secs(5));
}

fn tiny_buffers_forward_every_byte_in_order() {
    // Rings of 1 and 7 bytes wrap on almost every read; an odd size just over a page too.
    for (buffer_size, total) in [(1usize, 20_000u64), (7, 200_000), (4099, 2 << 20)] {
        let backend = Backend::echo();
        let proxy = Settings::to(&[backend.addr])
            .buffer_size(buffer_size)
            .start();
        let mut client = connect(proxy.addr);
        let mut writer = client.try_clone().unwrap();
        let seed = buffer_size as u64;
        let sender = thread::spawn(move || {
            Pattern::new(seed).write_to(&mut writer, total)?;
            writer.shutdown(Shutdown::Write)
        });
        let (got, end) = Pattern::new(seed).read_from(&mut client, total, Duration::from_secs(30));
        sender.join().unwrap().unwrap();
        assert_eq!(
            (got, end),
            (total, Ending::Eof),
            "buffer size {buffer_size}"
        );
        proxy.stop();
    }
}

fn concurrent_bulk_transfers_do_not_mix() {
    // Sixteen connections stream 4 MiB each way at once: rings wrap, fill and empty on many
    // pairs at the same time, so a buffer handed to two rings would show as foreign bytes.
    const CONNS: u64 = 16;
    const TOTAL: u64 = 4 << 20;
    let backend = Backend::echo();
    let proxy = TestProxy::to(&[backend.addr]);
    let workers: Vec<_> = (0..CONNS)
        .map(|seed| {
            let addr = proxy.addr;
            thread::spawn(move || {
                let mut client = connect(addr);
                let mut writer = client.try_clone().unwrap();
                let sender = thread::spawn(move || {
                    Pattern::new(100 + seed).write_to(&mut writer, TOTAL)?;
                    writer.shutdown(Shutdown::Write)
                });
                let (got, end) =
                    Pattern::new(100 + seed).read_from(&mut client, TOTAL, Duration::from_secs(60));
                sender.join().unwrap().unwrap();
                assert_eq!((got, end), (TOTAL, Ending::Eof), "connection {seed}");
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a bulk transfer failed");
    }
    proxy.stop();
}

fn a_saturating_connection_does_not_starve_another() {
    const TOTAL: u64 = 128 << 20;
    let backend = Backend::echo();
    let proxy = TestProxy::to(&[backend.addr]);
    let mut quiet = connect(proxy.addr);
    round_trip(&mut quiet, b"warm up");

    let mut busy = connect(proxy.addr);
    let mut writer = busy.try_clone().unwrap();
    let sender = thread::spawn(move || {
        Pattern::new(77).write_to(&mut writer, TOTAL)?;
        writer.shutdown(Shutdown::Write)
    });
    let reader = thread::spawn(move || {
        Pattern::new(77).read_from(&mut busy, TOTAL, Duration::from_secs(60))
    });

    // While the busy pair streams, small round trips on the quiet one stay quick.
    let mut slowest = Duration::ZERO;
    let mut trips = 0;
    while !reader.is_finished() {
        let started = std::time::Instant::now();
        round_trip(&mut quiet, b"ping");
        slowest = slowest.max(started.elapsed());
        trips += 1;
    }
    let (got, end) = reader.join().unwrap();
    sender.join().unwrap().unwrap();
    assert_eq!((got, end), (TOTAL, Ending::Eof));
    eprintln!("{trips} round trips during the transfer, the slowest {slowest:?}");
    assert!(
        trips >= 3,
        "only {trips} round trips happened during the transfer"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a round trip took {slowest:?} while another connection was busy"
    );
    proxy.stop();
}

each_engine!(
    echo_round_trip,
    many_messages_on_one_connection,
    sixty_four_mib_each_way_at_once,
    thousand_concurrent_connections_get_exactly_their_own_bytes,
    ipv6_loopback,
    tcp_nodelay_is_set_on_both_proxy_sockets,
    keepalive_is_set_on_both_proxy_sockets_when_asked_for,
    stopping_the_proxy_closes_open_connections,
    tiny_buffers_forward_every_byte_in_order,
    concurrent_bulk_transfers_do_not_mix,
    a_saturating_connection_does_not_starve_another,
);
