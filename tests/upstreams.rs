//! Choosing and connecting upstreams: a refusing server before a healthy one, round robin,
//! every upstream down and then one coming back, connect timeouts against a listener that
//! never completes the handshake (with early client bytes kept), and hostname upstreams.

mod common;

use common::*;
use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn refusing_upstream_listed_first_still_serves_every_client() {
    let refusing = Refusing::new();
    let healthy = Backend::echo();
    let proxy = TestProxy::to(&[refusing.addr, healthy.addr]);
    for i in 0..20 {
        let mut client = connect(proxy.addr);
        round_trip(&mut client, format!("sequential client {i}").as_bytes());
    }
    let clients: Vec<_> = (0..50)
        .map(|i| {
            let addr = proxy.addr;
            thread::spawn(move || {
                let mut client = connect(addr);
                round_trip(&mut client, format!("concurrent client {i}").as_bytes());
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a concurrent client was not served");
    }
    assert_eq!(healthy.accepted(), 70);
    proxy.stop();
}

#[test]
fn round_robin_alternates_between_healthy_upstreams() {
    let (a, b) = (Backend::echo(), Backend::echo());
    let proxy = TestProxy::to(&[a.addr, b.addr]);
    let mut open = Vec::new();
    for i in 0..10usize {
        let mut client = connect(proxy.addr);
        round_trip(&mut client, b"which one?");
        assert_eq!(
            (a.accepted(), b.accepted()),
            (i / 2 + 1, i.div_ceil(2)),
            "after client {i}"
        );
        open.push(client);
    }
    proxy.stop();
}

#[test]
fn all_upstreams_down_closes_the_client_then_a_revived_upstream_serves() {
    let down = [Refusing::new(), Refusing::new()];
    let proxy = TestProxy::to(&[down[0].addr, down[1].addr]);

    let started = Instant::now();
    let mut client = connect(proxy.addr);
    let _ = client.write_all(b"anyone there?");
    let end = expect_closed(&mut client, Duration::from_secs(3));
    eprintln!("client closed with {end:?} after {:?}", started.elapsed());

    // Bring the second upstream up on the same port; the same proxy now serves.
    let [first, second] = down;
    let revived = Backend::spawn(second.listen(), echo);
    for i in 0..4 {
        let mut client = connect(proxy.addr);
        round_trip(&mut client, format!("back again {i}").as_bytes());
    }
    assert_eq!(revived.accepted(), 4);
    drop(first);
    proxy.stop();
}

/// A black hole, or `None` (and a message) when this kernel cannot make one.
fn black_hole() -> Option<BlackHole> {
    match BlackHole::new() {
        Ok(hole) => Some(hole),
        Err(why) => {
            eprintln!("SKIPPED: cannot make a never-completing upstream here: {why}");
            None
        }
    }
}

#[test]
fn connect_timeout_falls_over_to_the_next_upstream_keeping_early_bytes() {
    setup();
    let Some(hole) = black_hole() else { return };
    let healthy = Backend::echo();
    let proxy = Settings::to(&[hole.addr, healthy.addr])
        .connect_timeout(Duration::from_millis(300))
        .start();

    for i in 0..3 {
        // Round robin starts the first client at the black hole; the early bytes are written
        // before the proxy can have an upstream and must survive the failover. (Later clients
        // may skip the black hole once passive health has marked it.)
        let started = Instant::now();
        let mut client = connect(proxy.addr);
        let msg = format!("early bytes from client {i}");
        client.write_all(msg.as_bytes()).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            read_to_eof(&mut client, Duration::from_secs(5)),
            msg.as_bytes()
        );
        let took = started.elapsed();
        if i == 0 {
            assert!(
                took >= Duration::from_millis(250),
                "client {i} was served in {took:?}, before the 300ms connect timeout"
            );
        }
        assert!(took < Duration::from_secs(3), "client {i} took {took:?}");
    }
    assert_eq!(healthy.accepted(), 3);
    proxy.stop();
}

#[test]
fn connect_timeout_with_no_other_upstream_closes_the_client() {
    setup();
    let Some(hole) = black_hole() else { return };
    let proxy = Settings::to(&[hole.addr])
        .connect_timeout(Duration::from_millis(300))
        .start();

    let started = Instant::now();
    let mut client = connect(proxy.addr);
    client.write_all(b"hello?").unwrap();
    expect_closed(&mut client, Duration::from_secs(3));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "closed after {took:?}, before the 300ms timeout"
    );
    // The loop is still healthy: a second client is handled the same way.
    let mut again = connect(proxy.addr);
    expect_closed(&mut again, Duration::from_secs(3));
    proxy.stop();
}

#[test]
fn hostname_upstream_is_resolved() {
    let backend = Backend::echo();
    let name = format!("localhost:{}", backend.addr.port());
    let proxy = Settings::to_names(&[&name]).start();
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"by name");
    proxy.stop();
}

#[test]
fn connect_failures_are_logged_with_their_reason() {
    let refusing = Refusing::new();
    let proxy = BinProxy::start(&["-v", "-u", &refusing.addr.to_string()]);
    let mut client = connect(proxy.addr);
    let me = format!("client={} ", client.local_addr().unwrap());
    expect_closed(&mut client, Duration::from_secs(3));
    let line = proxy
        .wait_for_line(|l| l.contains(&me), IO_TIMEOUT)
        .unwrap_or_else(|| panic!("no close line for {me} in {:?}", proxy.log()));
    assert!(line.contains("reason=connect-failed"), "{line}");
    assert!(line.contains("to_upstream=0 to_client=0"), "{line}");
}

#[test]
fn the_access_log_lists_every_server_tried() {
    let refusing = Refusing::new();
    let healthy = Backend::echo();
    let dir = common::peers::TempDir::new("tried");
    let log = dir.join("access.log");
    let proxy = Settings::to(&[refusing.addr, healthy.addr])
        .route(|s| s.max_fails = 0)
        .access_log(&log, ringproxy::settings::LogFormat::Text)
        .start();
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"through the second server");
    let local = client.local_addr().unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    read_to_eof(&mut client, IO_TIMEOUT);
    let line = common::logs::line_of(&log, local);
    let tried = format!("tried={},{}", refusing.addr, healthy.addr);
    assert!(line.contains(&format!(" {tried} retries=1")), "{line}");
    // One try: no list (the upstream field names the server).
    let single = Settings::to(&[healthy.addr])
        .access_log(&log, ringproxy::settings::LogFormat::Text)
        .start();
    let mut next = connect(single.addr);
    round_trip(&mut next, b"first try");
    let local = next.local_addr().unwrap();
    drop(next);
    let line = common::logs::line_of(&log, local);
    assert!(!line.contains("tried="), "{line}");
}
