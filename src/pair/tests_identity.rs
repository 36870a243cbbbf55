//! The preread phase and the PROXY header a pair sends, without sockets: scripted streams,
//! a virtual clock, the actions each input pushes.

use super::tests::*;
use super::*;
use crate::proxy_protocol::{self, write_v1, write_v2};

const PROXY_TIMEOUT: Duration = Duration::from_secs(5);

fn proxy_policy() -> ConnectPolicy {
    ConnectPolicy {
        preread: Preread {
            proxy_header: Some(PROXY_TIMEOUT),
            ..Preread::default()
        },
        ..policy(2)
    }
}

/// A pair that must first receive a PROXY header, just started.
fn accept_proxied(h: &mut Harness, client: Fake) -> Pair<Fake> {
    let addr = std::net::SocketAddr::from(([10, 9, 9, 9], 1111));
    let mut pair = Pair::new(
        1,
        0,
        client,
        addr,
        ConnectPolicy {
            idle_timeout: Duration::from_secs(60),
            ..proxy_policy()
        },
        &mut Spares::default(),
        h.now,
    );
    pair.start(h.now, &mut h.out);
    let started = h.actions();
    let deadline = h.now + PROXY_TIMEOUT;
    assert!(
        matches!(started.as_slice(), [Action::Wake(_, PairTimer::Idle), Action::Wake(at, PairTimer::Preread)] if *at == deadline),
        "{started:?}"
    );
    pair
}

#[test]
fn a_header_arriving_one_byte_at_a_time_is_read_then_a_server_is_asked_for() {
    let mut h = Harness::with_buffers(4096);
    let src = "203.0.113.7:40000".parse().unwrap();
    let dst = "198.51.100.1:443".parse().unwrap();
    let mut bytes = write_v2(src, dst);
    bytes.extend_from_slice(b"hello");
    let mut pair = accept_proxied(&mut h, Fake::default());
    for (i, b) in bytes.iter().enumerate() {
        pair.client.stream.incoming.push_back(*b);
        let actions = h.ready(&mut pair, Side::Client, READY);
        if i + 1 < bytes.len() - 5 {
            assert!(actions.is_empty(), "byte {i}: {actions:?}");
        } else if i + 1 == bytes.len() - 5 {
            assert!(
                matches!(actions.as_slice(), [Action::Connect]),
                "{actions:?}"
            );
        }
    }
    assert_eq!(
        pair.client_addr(),
        src.into(),
        "the header's client is the client"
    );
    let peer: std::net::SocketAddr = "10.9.9.9:1111".parse().unwrap();
    assert_eq!(pair.peer_addr(), Some(peer.into()));
    assert_eq!(
        pair.to_upstream().buffer().len(),
        5,
        "only the header was taken out"
    );
    assert!(
        h.timer(&mut pair, PairTimer::Preread).is_empty(),
        "the deadline is moot"
    );
}

#[test]
fn a_bad_header_a_probe_and_a_slow_header_close_without_an_upstream() {
    let mut h = Harness::with_buffers(4096);
    let mut pair = accept_proxied(&mut h, fake(b"GET / HTTP/1.1\r\n", 0));
    let actions = h.ready(&mut pair, Side::Client, READY);
    assert!(closes(&actions, CloseReason::BadProxyHeader), "{actions:?}");

    let probe = Fake {
        eof: true,
        ..Fake::default()
    };
    let mut pair = accept_proxied(&mut h, probe);
    let closed = Readiness {
        read_closed: true,
        ..READY
    };
    assert!(closes(
        &h.ready(&mut pair, Side::Client, closed),
        CloseReason::Probe
    ));

    let reset = Fake {
        then: Some(io::ErrorKind::ConnectionReset),
        ..Fake::default()
    };
    let mut pair = accept_proxied(&mut h, reset);
    assert!(closes(
        &h.ready(&mut pair, Side::Client, READY),
        CloseReason::Probe
    ));

    let mut cut = fake(b"PROXY TCP4 1.2.3.4", 0);
    cut.eof = true;
    let mut pair = accept_proxied(&mut h, cut);
    let actions = h.ready(&mut pair, Side::Client, closed);
    assert!(
        closes(&actions, CloseReason::BadProxyHeader),
        "a cut header is not a probe"
    );

    let mut pair = accept_proxied(&mut h, fake(b"PROXY TCP4 ", 0));
    assert!(h.ready(&mut pair, Side::Client, READY).is_empty());
    h.advance(PROXY_TIMEOUT);
    assert!(closes(
        &h.timer(&mut pair, PairTimer::Preread),
        CloseReason::ProxyTimeout
    ));
}

#[test]
fn a_header_larger_than_the_buffer_is_refused() {
    let mut h = Harness::new();
    let long = b"PROXY TCP4 100.100.100.100 100.100.100.100 1 2\r\n";
    let mut pair = accept_proxied(&mut h, fake(long, 0));
    let actions = h.ready(&mut pair, Side::Client, READY);
    assert!(
        closes(&actions, CloseReason::BadProxyHeader),
        "8-byte rings: {actions:?}"
    );
}

#[test]
fn a_refused_client_is_closed_before_anything_else() {
    let mut h = Harness::with_buffers(4096);
    let addr = std::net::SocketAddr::from(([10, 0, 0, 1], 1));
    let refuse = ConnectPolicy {
        preread: Preread {
            refuse: Some(CloseReason::Untrusted),
            ..Preread::default()
        },
        ..policy(1)
    };
    let mut pair: Pair<Fake> = Pair::new(
        1,
        0,
        fake(b"x", 0),
        addr,
        ConnectPolicy {
            idle_timeout: Duration::from_secs(1),
            ..refuse
        },
        &mut Spares::default(),
        h.now,
    );
    pair.start(h.now, &mut h.out);
    assert!(matches!(
        h.actions().as_slice(),
        [Action::Close(CloseReason::Untrusted)]
    ));
}

#[test]
fn the_header_sent_upstream_comes_before_any_client_byte() {
    let mut h = Harness::with_buffers(4096);
    let mut pair = h.accept(fake(b"early", 0), 1);
    h.ready(&mut pair, Side::Client, READY);
    let upstream = Fake {
        connect: Some(None),
        write_room: 20,
        ..Fake::default()
    };
    pair.connecting(0, upstream, Version::V1, h.now, &mut h.out);
    h.actions();
    h.ready(&mut pair, Side::Upstream, READY);
    let header = write_v1(
        "127.0.0.1:5000".parse().unwrap(),
        "127.0.0.1:8080".parse().unwrap(),
    );
    assert_eq!(
        up(&mut pair).written,
        header[..20],
        "a partial write keeps the rest"
    );
    up(&mut pair).write_room = 100;
    h.ready(&mut pair, Side::Upstream, READY);
    let mut expected = header.clone();
    expected.extend_from_slice(b"early");
    assert_eq!(up(&mut pair).written, expected);
    match proxy_protocol::parse(&up(&mut pair).written) {
        Ok(proxy_protocol::Parsed::Done { header, .. }) => {
            assert_eq!(header.addrs.map(|a| a.0), pair.client_addr().addr());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_accepted_header_is_what_is_sent_on() {
    let mut h = Harness::with_buffers(4096);
    let src = "[2001:db8::5]:6000".parse().unwrap();
    let dst = "[2001:db8::1]:443".parse().unwrap();
    let mut pair = accept_proxied(&mut h, fake(&write_v1(src, dst), 0));
    h.ready(&mut pair, Side::Client, READY);
    h.actions();
    let upstream = Fake {
        connect: Some(None),
        write_room: 1000,
        ..Fake::default()
    };
    pair.connecting(0, upstream, Version::V2, h.now, &mut h.out);
    h.ready(&mut pair, Side::Upstream, READY);
    assert_eq!(
        up(&mut pair).written,
        write_v2(src, dst),
        "a chain keeps the identity"
    );
}

#[test]
fn max_lifetime_passes_fin_both_ways_once_the_buffers_drain() {
    let mut h = Harness::new();
    let addr = std::net::SocketAddr::from(([10, 0, 0, 1], 1));
    let lifetime = ConnectPolicy {
        max_lifetime: Some(Duration::from_secs(3)),
        ..policy(1)
    };
    let mut pair: Pair<Fake> = Pair::new(
        1,
        0,
        fake(b"", 100),
        addr,
        ConnectPolicy {
            idle_timeout: Duration::from_secs(60),
            ..lifetime
        },
        &mut Spares::default(),
        h.now,
    );
    pair.start(h.now, &mut h.out);
    let started = h.actions();
    assert!(
        started.iter().any(|a| matches!(a, Action::Wake(at, PairTimer::Lifetime) if *at == h.now + Duration::from_secs(3))),
        "{started:?}"
    );
    pair.connecting(
        0,
        Fake {
            connect: Some(None),
            write_room: 100,
            ..Fake::default()
        },
        Version::Off,
        h.now,
        &mut h.out,
    );
    h.actions();
    h.ready(&mut pair, Side::Upstream, READY);
    pair.client.mark(READY);
    h.advance(Duration::from_secs(3));
    let actions = h.timer(&mut pair, PairTimer::Lifetime);
    assert!(matches!(actions.as_slice(), [Action::Yield]), "{actions:?}");
    let actions = h.pump(&mut pair);
    assert!(closes(&actions, CloseReason::MaxLifetime), "{actions:?}");
    assert!(
        pair.client.stream.shut && up(&mut pair).shut,
        "FIN both ways"
    );
}

#[test]
fn an_upload_rate_holds_a_direction_to_its_rate_after_a_one_second_burst() {
    let mut h = Harness::with_buffers(4096);
    let addr = std::net::SocketAddr::from(([10, 0, 0, 1], 1));
    let limited = ConnectPolicy {
        upload_rate: Some(10_000),
        ..policy(1)
    };
    let start = h.now;
    let mut pair: Pair<Fake> = Pair::new(
        1,
        0,
        fake(&[5; 200_000], 0),
        addr,
        ConnectPolicy {
            idle_timeout: Duration::from_secs(600),
            ..limited
        },
        &mut Spares::default(),
        h.now,
    );
    pair.start(h.now, &mut h.out);
    h.actions();
    let upstream = Fake {
        connect: Some(None),
        write_room: 1 << 20,
        ..Fake::default()
    };
    pair.connecting(0, upstream, Version::Off, h.now, &mut h.out);
    h.actions();
    pair.client.mark(READY);
    let mut actions = h.ready(&mut pair, Side::Upstream, READY);
    assert_eq!(
        up(&mut pair).written.len(),
        10_000,
        "a one-second burst at once"
    );
    let mut wakes = 0;
    loop {
        let Some(at) = actions.iter().find_map(|a| match a {
            Action::Wake(at, PairTimer::Rate) => Some(*at),
            _ => None,
        }) else {
            panic!("held back without a wake-up: {actions:?}");
        };
        if at > start + Duration::from_secs(5) {
            break;
        }
        h.now = at;
        wakes += 1;
        assert!(matches!(
            h.timer(&mut pair, PairTimer::Rate).as_slice(),
            [Action::Yield]
        ));
        actions = h.pump(&mut pair);
    }
    let sent = up(&mut pair).written.len() as f64;
    let expected = 10_000.0 + 10_000.0 * 5.0;
    assert!(
        (sent - expected).abs() / expected < 0.01,
        "{sent} bytes in 5 s"
    );
    assert!(
        wakes <= 5 * 60,
        "{wakes} wake-ups: about 50 a second at most"
    );
}

#[test]
fn an_event_before_the_first_byte_waits_for_the_header() {
    let mut h = Harness::with_buffers(4096);
    let mut pair = accept_proxied(&mut h, Fake::default());
    let writable = Readiness {
        writable: true,
        ..Readiness::default()
    };
    assert!(
        h.ready(&mut pair, Side::Client, writable).is_empty(),
        "nothing read yet"
    );
    pair.client
        .stream
        .incoming
        .extend(proxy_protocol::write_local(Version::V1));
    let actions = h.ready(&mut pair, Side::Client, READY);
    assert!(
        matches!(actions.as_slice(), [Action::Connect]),
        "{actions:?}"
    );
}

#[test]
fn a_reset_before_the_first_byte_is_a_probe() {
    let mut h = Harness::with_buffers(4096);
    let reset = Fake {
        error: Some(io::ErrorKind::ConnectionReset),
        ..Fake::default()
    };
    let mut pair = accept_proxied(&mut h, reset);
    let error = Readiness {
        error: true,
        ..Readiness::default()
    };
    assert!(closes(
        &h.ready(&mut pair, Side::Client, error),
        CloseReason::Probe
    ));
}

#[test]
fn a_direction_without_storage_waits_once_and_is_fed() {
    let budget = crate::ring::Budget::new(8);
    let mut h = Harness::new();
    h.pool = crate::ring::BufferPool::new(8, 0, budget.clone());
    let mut pair = h.streaming(fake(b"", 100), fake(b"", 100));
    // Hold the only buffer with bytes the upstream does not take.
    let mut hog = h.streaming(fake(b"12345678", 100), fake(b"", 0));
    hog.client.mark(READY);
    h.pump(&mut hog);
    assert_eq!(budget.used(), 8);
    pair.client.stream.incoming.extend(b"wants room");
    let actions = h.ready(&mut pair, Side::Client, READY);
    assert!(
        matches!(actions.as_slice(), [Action::Starved]),
        "{actions:?}"
    );
    assert!(
        h.ready(&mut pair, Side::Client, READY).is_empty(),
        "asked once"
    );
    up(&mut hog).write_room = 100;
    h.ready(&mut hog, Side::Upstream, READY);
    assert!(h.pool.can_fill(), "the hog's buffer came back");
    pair.fed();
    h.pump(&mut pair);
    assert_eq!(up(&mut pair).written, b"wants room");
}

#[test]
fn attempt_records_go_back_to_the_spares_once_streaming() {
    let mut h = Harness::new();
    let mut spares = Spares::default();
    let addr = std::net::SocketAddr::from(([10, 0, 0, 1], 1));
    let mut pair: Pair<Fake> = Pair::new(1, 0, fake(b"", 0), addr, policy(1), &mut spares, h.now);
    pair.start(h.now, &mut h.out);
    let upstream = Fake {
        connect: Some(None),
        ..Fake::default()
    };
    pair.connecting(0, upstream, Version::Off, h.now, &mut h.out);
    h.out.clear();
    pair.on_ready(
        Side::Upstream,
        READY,
        h.now,
        &mut h.pool,
        &mut h.io,
        &mut h.out,
    );
    let spare = h.out.drain(..).find_map(|a| match a {
        Action::Spare(spare) => Some(spare),
        _ => None,
    });
    spares.give(spare.expect("the records are handed back once connected"));
    assert_eq!(spares.free.len(), 1);
    let again: Pair<Fake> = Pair::new(2, 0, fake(b"", 0), addr, policy(1), &mut spares, h.now);
    assert!(
        spares.free.is_empty(),
        "a new pair takes the box back: no allocation"
    );
    assert!(again.tried().is_empty(), "reset for the new pair");
}

#[test]
fn a_client_remembers_its_last_tries_without_allocating() {
    let mut h = Harness::new();
    let mut pair = h.accept(fake(b"", 0), 20);
    for server in 0..12 {
        pair.failed_at_once(server, h.now, &mut h.out);
    }
    assert_eq!(
        pair.tried(),
        &[4, 5, 6, 7, 8, 9, 10, 11],
        "the last RECENT_TRIES"
    );
    for server in 12..20 {
        pair.failed_at_once(server, h.now, &mut h.out);
    }
    assert!(
        closes(&h.actions(), CloseReason::ConnectFailed),
        "all 20 tries counted"
    );
}
