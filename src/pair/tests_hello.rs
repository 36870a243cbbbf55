//! Routing by server name without sockets: the ClientHello read in pieces, after a PROXY
//! header or alone, the route's policy taking over, and every way the preread ends early.

use super::tests::*;
use super::*;
use crate::proxy_protocol::write_v1;

const HELLO: &[u8] = include_bytes!("../../tests/data/client_hello/openssl-a.test-alpn.bin");
const PREREAD_TIMEOUT: Duration = Duration::from_secs(3);

fn listener() -> SocketAddr {
    ([127, 0, 0, 1], 8443).into()
}

fn hello_policy(max: usize) -> ConnectPolicy {
    ConnectPolicy {
        idle_timeout: Duration::from_secs(60),
        max_lifetime: Some(Duration::from_secs(1)),
        preread: Preread {
            client_hello: Some(HelloPreread {
                timeout: PREREAD_TIMEOUT,
                max,
                listener: listener(),
            }),
            ..Preread::default()
        },
        ..policy(2)
    }
}

/// A pair that reads a ClientHello before its route is chosen, just started: an idle and a
/// hello wake-up, no lifetime yet (it is the route's), no request for a server.
fn accept_tls(h: &mut Harness, client: Fake, policy: ConnectPolicy) -> Pair<Fake> {
    let addr = std::net::SocketAddr::from(([10, 1, 1, 1], 2222));
    let mut pair = Pair::new(1, 0, client, addr, policy, &mut Spares::default(), h.now);
    pair.start(h.now, &mut h.out);
    let started = h.actions();
    let deadline = h.now + PREREAD_TIMEOUT;
    assert!(
        matches!(
            started.as_slice(),
            [Action::Wake(_, PairTimer::Idle), Action::Wake(at, PairTimer::Hello)] if *at == deadline
        ),
        "{started:?}"
    );
    assert!(pair.awaiting_route());
    pair
}

/// The route's own policy: another idle timeout, a lifetime, a bandwidth limit.
fn route_policy() -> ConnectPolicy {
    ConnectPolicy {
        idle_timeout: Duration::from_secs(7),
        max_lifetime: Some(Duration::from_secs(30)),
        upload_rate: Some(1 << 20),
        ..policy(1)
    }
}

#[test]
fn a_hello_in_pieces_asks_for_a_route_then_is_forwarded_unchanged() {
    let mut h = Harness::with_buffers(4096);
    let mut pair = accept_tls(&mut h, Fake::default(), hello_policy(4096));
    for (i, &b) in HELLO.iter().enumerate() {
        pair.client.stream.incoming.push_back(b);
        let actions = h.ready(&mut pair, Side::Client, READY);
        if i + 1 < HELLO.len() {
            assert!(actions.is_empty(), "byte {i}: {actions:?}");
        } else {
            assert!(matches!(actions.as_slice(), [Action::Route]), "{actions:?}");
        }
    }
    assert_eq!(pair.server_name(), Some("a.test"));
    assert_eq!(pair.alpn(), Some("h2,http/1.1"));
    assert_eq!(pair.listener(), Some(listener()));

    pair.routed(3, route_policy(), h.now, &mut h.out);
    let actions = h.actions();
    assert!(
        matches!(
            actions.as_slice(),
            [
                Action::Wake(idle, PairTimer::Idle),
                Action::Wake(lifetime, PairTimer::Lifetime),
                Action::Connect
            ] if *idle == h.now + Duration::from_secs(7)
                && *lifetime == h.now + Duration::from_secs(30)
        ),
        "{actions:?}"
    );
    assert_eq!(pair.route(), 3);
    assert!(!pair.awaiting_route());
    assert!(h.timer(&mut pair, PairTimer::Hello).is_empty(), "moot now");

    let upstream = Fake {
        connect: Some(None),
        write_room: 1 << 20,
        ..Fake::default()
    };
    h.connect(&mut pair, 0, upstream);
    h.ready(&mut pair, Side::Upstream, READY);
    assert_eq!(
        up(&mut pair).written,
        HELLO,
        "the hello reaches the upstream as sent"
    );
}

#[test]
fn a_proxy_header_comes_first_and_only_it_is_taken_out() {
    let mut h = Harness::with_buffers(4096);
    let src = "203.0.113.9:5555".parse().unwrap();
    let mut bytes = write_v1(src, listener());
    bytes.extend_from_slice(HELLO);
    let policy = ConnectPolicy {
        preread: Preread {
            proxy_header: Some(Duration::from_secs(5)),
            ..hello_policy(4096).preread
        },
        ..hello_policy(4096)
    };
    let addr = std::net::SocketAddr::from(([10, 1, 1, 1], 2222));
    let mut pair = Pair::new(
        1,
        0,
        fake(&bytes, 0),
        addr,
        policy,
        &mut Spares::default(),
        h.now,
    );
    pair.start(h.now, &mut h.out);
    let started = h.actions();
    assert!(
        matches!(
            started.as_slice(),
            [
                Action::Wake(_, PairTimer::Idle),
                Action::Wake(_, PairTimer::Preread),
                Action::Wake(_, PairTimer::Hello)
            ]
        ),
        "{started:?}"
    );
    let actions = h.ready(&mut pair, Side::Client, READY);
    assert!(matches!(actions.as_slice(), [Action::Route]), "{actions:?}");
    assert_eq!(pair.client_addr(), src.into());
    assert_eq!(pair.server_name(), Some("a.test"));
    assert_eq!(pair.to_upstream().buffer().front(), HELLO);
}

#[test]
fn not_tls_is_routed_without_a_name() {
    let mut h = Harness::with_buffers(4096);
    let mut pair = accept_tls(
        &mut h,
        fake(b"GET / HTTP/1.0\r\n\r\n", 0),
        hello_policy(4096),
    );
    let actions = h.ready(&mut pair, Side::Client, READY);
    assert!(matches!(actions.as_slice(), [Action::Route]), "{actions:?}");
    assert_eq!(pair.server_name(), None);
    pair.no_route(&mut h.out);
    assert!(closes(&h.actions(), CloseReason::NoRoute));
}

#[test]
fn a_broken_a_large_a_cut_and_a_slow_hello_close_without_an_upstream() {
    let mut h = Harness::with_buffers(4096);
    let mut broken = HELLO.to_vec();
    broken[1] = 2;
    let mut pair = accept_tls(&mut h, fake(&broken, 0), hello_policy(4096));
    let actions = h.ready(&mut pair, Side::Client, READY);
    assert!(closes(&actions, CloseReason::BadClientHello), "{actions:?}");

    let mut pair = accept_tls(&mut h, fake(HELLO, 0), hello_policy(256));
    let actions = h.ready(&mut pair, Side::Client, READY);
    assert!(
        closes(&actions, CloseReason::BadClientHello),
        "over preread_max"
    );

    let closed = Readiness {
        read_closed: true,
        ..READY
    };
    let mut cut = fake(&HELLO[..100], 0);
    cut.eof = true;
    let mut pair = accept_tls(&mut h, cut, hello_policy(4096));
    let actions = h.ready(&mut pair, Side::Client, closed);
    assert!(closes(&actions, CloseReason::BadClientHello), "{actions:?}");

    let probe = Fake {
        eof: true,
        ..Fake::default()
    };
    let mut pair = accept_tls(&mut h, probe, hello_policy(4096));
    let actions = h.ready(&mut pair, Side::Client, closed);
    assert!(closes(&actions, CloseReason::Probe), "{actions:?}");

    let mut pair = accept_tls(&mut h, fake(&HELLO[..10], 0), hello_policy(4096));
    assert!(h.ready(&mut pair, Side::Client, READY).is_empty());
    h.advance(PREREAD_TIMEOUT);
    let actions = h.timer(&mut pair, PairTimer::Hello);
    assert!(closes(&actions, CloseReason::PrereadTimeout), "{actions:?}");
}

#[test]
fn a_hello_that_cannot_fit_the_buffer_is_refused() {
    // 256-byte rings, the hello is 330 bytes: the buffer fills before it is whole.
    let mut h = Harness::with_buffers(256);
    let mut pair = accept_tls(&mut h, fake(HELLO, 0), hello_policy(16 * 1024));
    let actions = h.ready(&mut pair, Side::Client, READY);
    assert!(closes(&actions, CloseReason::BadClientHello), "{actions:?}");
}
