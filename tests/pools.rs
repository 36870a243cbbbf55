//! Upstream pools through real backends: weighted distribution, least-conn, ip-hash
//! stickiness, per-server max-conns, failover under passive health, a server going down
//! and coming back under active checks, backup takeover, and bad pool command lines.

mod common;

use common::*;
use ringproxy::config::UpstreamSpec;
use ringproxy::settings::BalancePolicy;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

/// A backend that first sends its one-byte name, then echoes.
fn named(name: u8) -> Backend {
    Backend::spawn(listen_on(v4_any_port()), move |mut s| {
        if s.write_all(&[name]).is_ok() {
            echo(s);
        }
    })
}

/// Like [`named`], on a port held by a [`Refusing`] until now.
fn named_on(refusing: Refusing, name: u8) -> Backend {
    Backend::spawn(refusing.listen(), move |mut s| {
        if s.write_all(&[name]).is_ok() {
            echo(s);
        }
    })
}

/// Connects through the proxy and returns the serving backend's name, or `None` if the
/// proxy closed the client without service.
fn served_by(proxy: SocketAddr) -> Option<u8> {
    let mut s = connect(proxy);
    let mut name = [0u8; 1];
    match s.read(&mut name) {
        Ok(1) => Some(name[0]),
        _ => None,
    }
}

/// Opens a client and waits for the backend's name, keeping the connection open.
fn hold(proxy: SocketAddr) -> (TcpStream, u8) {
    let mut s = connect(proxy);
    let name = read_exact_within(&mut s, 1, IO_TIMEOUT)[0];
    (s, name)
}

fn spec(addr: SocketAddr, weight: u32) -> UpstreamSpec {
    let mut spec = UpstreamSpec::from(addr);
    spec.options.weight = weight;
    spec
}

#[test]
fn weighted_round_robin_distributes_exactly_by_weight() {
    let (a, b, c) = (named(b'a'), named(b'b'), named(b'c'));
    let mut cfg = config(&[]);
    cfg.route().upstreams = vec![spec(a.addr, 5), spec(b.addr, 1), spec(c.addr, 1)];
    let proxy = TestProxy::start(cfg);
    let order: Vec<u8> = (0..14).map(|_| served_by(proxy.addr).unwrap()).collect();
    assert_eq!(order, b"aabacaaaabacaa", "smooth weighted order, as nginx");
}

#[test]
fn least_conn_sends_new_clients_to_the_idle_server() {
    let (a, b) = (named(b'a'), named(b'b'));
    let mut cfg = config(&[a.addr, b.addr]);
    cfg.route().settings.balance = BalancePolicy::LeastConn;
    let proxy = TestProxy::start(cfg);
    let (_first, first) = hold(proxy.addr);
    let (_second, second) = hold(proxy.addr);
    assert_ne!(first, second, "the second client goes to the idle server");
    // One held client each: equal load, so the next two split between the servers.
    let (_c, x) = hold(proxy.addr);
    let (_d, y) = hold(proxy.addr);
    assert_ne!(x, y, "with equal load, new clients alternate");
}

#[test]
fn ip_hash_keeps_a_client_address_on_one_server() {
    let backends: Vec<Backend> = (b'a'..=b'e').map(named).collect();
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let mut cfg = config(&addrs);
    cfg.route().settings.balance = BalancePolicy::IpHash;
    let proxy = TestProxy::start(cfg);
    let first = served_by(proxy.addr).unwrap();
    for _ in 0..20 {
        assert_eq!(served_by(proxy.addr), Some(first));
    }
}

#[test]
fn per_server_max_conns_overflows_to_other_servers() {
    let (a, b) = (named(b'a'), named(b'b'));
    let mut cfg = config(&[]);
    cfg.route().upstreams = vec![
        {
            let mut a = spec(a.addr, 100);
            a.options.max_conns = Some(2);
            a
        },
        UpstreamSpec::from(b.addr),
    ];
    let proxy = TestProxy::start(cfg);
    let held: Vec<(TcpStream, u8)> = (0..6).map(|_| hold(proxy.addr)).collect();
    let names: Vec<u8> = held.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        names, b"aabbbb",
        "weight 100 fills a up to its max-conns, then b"
    );
}

#[test]
fn passive_health_fails_over_and_skips_the_dead_server() {
    let dead = Refusing::new();
    let live = named(b'l');
    let mut cfg = config(&[dead.addr, live.addr]);
    cfg.route().settings.fail_timeout = Duration::from_secs(60);
    let proxy = TestProxy::start(cfg);
    for _ in 0..10 {
        assert_eq!(served_by(proxy.addr), Some(b'l'), "every client is served");
    }
    // Once marked unavailable the dead server is not tried again: with one try per client
    // every client must still be served.
    drop(proxy);
    let mut cfg = config(&[dead.addr, live.addr]);
    cfg.route().settings.fail_timeout = Duration::from_secs(60);
    cfg.route().settings.tries = Some(1);
    let proxy = TestProxy::start(cfg);
    let first = served_by(proxy.addr);
    assert!(matches!(first, None | Some(b'l')));
    for _ in 0..10 {
        assert_eq!(served_by(proxy.addr), Some(b'l'), "dead server skipped");
    }
}

#[test]
fn backup_takes_over_when_primaries_fail_and_hands_back_after_fail_timeout() {
    let primary = Refusing::new();
    let primary_addr = primary.addr;
    let backup = named(b'k');
    let mut cfg = config(&[]);
    cfg.route().upstreams = vec![UpstreamSpec::from(primary_addr), {
        let mut backup = UpstreamSpec::from(backup.addr);
        backup.options.backup = true;
        backup
    }];
    cfg.route().settings.fail_timeout = Duration::from_millis(300);
    let proxy = TestProxy::start(cfg);
    for _ in 0..5 {
        assert_eq!(served_by(proxy.addr), Some(b'k'), "backup serves");
    }
    let _primary = named_on(primary, b'p');
    assert!(
        wait_until(Duration::from_secs(5), || served_by(proxy.addr)
            == Some(b'p')),
        "the primary takes clients back once fail-timeout has passed"
    );
    for _ in 0..5 {
        assert_eq!(served_by(proxy.addr), Some(b'p'), "backup idle again");
    }
}

#[test]
fn active_checks_take_a_server_down_and_bring_it_back() {
    let flaky = Refusing::new();
    let flaky_addr = flaky.addr.to_string();
    let steady = named(b's');
    let steady_addr = steady.addr.to_string();
    let proxy = BinProxy::start(&[
        "-u",
        &flaky_addr,
        "-u",
        &steady_addr,
        "--health-interval",
        "50ms",
        "--health-timeout",
        "1s",
        "--health-fall",
        "2",
        "--health-rise",
        "2",
        "--max-fails",
        "0",
        "--tries",
        "1",
    ]);
    let down = format!("upstream {flaky_addr} is down");
    assert!(
        proxy
            .wait_for_line(|l| l.contains(&down), IO_TIMEOUT)
            .is_some(),
        "no down line; log: {:?}",
        proxy.log()
    );
    assert!(
        proxy
            .log()
            .iter()
            .all(|l| !l.contains(&format!("upstream {steady_addr} is down")))
    );
    // Passive health is off and each client gets one try, so only the active checks keep
    // clients away from the dead server: every one must be served.
    for _ in 0..10 {
        assert_eq!(served_by(proxy.addr), Some(b's'));
    }
    let _flaky = named_on(flaky, b'f');
    let up = format!("upstream {flaky_addr} is up");
    assert!(
        proxy
            .wait_for_line(|l| l.contains(&up), IO_TIMEOUT)
            .is_some(),
        "no up line; log: {:?}",
        proxy.log()
    );
    let names: Vec<Option<u8>> = (0..4).map(|_| served_by(proxy.addr)).collect();
    assert!(
        names.contains(&Some(b'f')),
        "the server is used again: {names:?}"
    );
}

#[test]
fn with_two_workers_each_server_is_checked_once_per_interval_and_both_steer_by_it() {
    let probed = Backend::echo();
    let probed_addr = probed.addr.to_string();
    let flaky = Refusing::new();
    let flaky_addr = flaky.addr.to_string();
    let proxy = BinProxy::start(&[
        "-u",
        &probed_addr,
        "-u",
        &flaky_addr,
        "--workers",
        "2",
        "--health-interval",
        "100ms",
        "--health-fall",
        "1",
        "--max-fails",
        "0",
        "--tries",
        "1",
    ]);
    let down = format!("upstream {flaky_addr} is down");
    assert!(
        proxy
            .wait_for_line(|l| l.contains(&down), IO_TIMEOUT)
            .is_some(),
        "no down line; log: {:?}",
        proxy.log()
    );
    // Checks from two workers would reach the server about 20 times a second.
    let before = probed.accepted();
    std::thread::sleep(Duration::from_millis(1000));
    let probes = probed.accepted() - before;
    assert!(
        (5..=14).contains(&probes),
        "{probes} probes in 1 s at a 100 ms interval"
    );
    // Both workers took the down state: with one try each, every client is served (the
    // kernel spreads the connections between the two listeners).
    for i in 0..40 {
        let mut c = connect(proxy.addr);
        round_trip(&mut c, b"x");
        assert!(c.peer_addr().is_ok(), "client {i}");
    }
    assert_eq!(
        proxy.log().iter().filter(|l| l.contains(&down)).count(),
        1,
        "one checker logs the change, once"
    );
}

#[test]
fn bad_pools_exit_2_with_one_line_naming_the_flag() {
    for args in [
        &["-u", "127.0.0.1:1,weight=0"][..],
        &["-u", "127.0.0.1:1,colour=blue"],
        &["-u", "127.0.0.1:1", "-u", "127.0.0.1:1"],
        &["-u", "127.0.0.1:1,backup", "-u", "127.0.0.1:2,down"],
        &["-u", "127.0.0.1:1", "--balance", "fastest"],
        &["-u", "127.0.0.1:1", "--health-fall", "0"],
    ] {
        let out = Command::new(bin())
            .args(["-l", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("run ringproxy");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("--upstream")
                || stderr.contains("--balance")
                || stderr.contains("--health-fall"),
            "{args:?}: {stderr}"
        );
    }
}
