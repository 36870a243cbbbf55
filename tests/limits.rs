//! Connection and descriptor limits: `max_conns` holds further clients in the backlog until a
//! pair closes; 2000 idle connections through the binary cost two descriptors each and every
//! one is returned however the clients leave (FIN, RST, half-close), with no CLOSE_WAIT left;
//! failed connects leak nothing; running out of descriptors under `ulimit -n 64` neither
//! crashes the proxy nor stops it from serving once descriptors are free again.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn max_conns_holds_further_clients_until_a_pair_closes() {
    let backend = Backend::echo();
    let proxy = Settings::to(&[backend.addr]).max_conns(2).start();

    let mut first = connect(proxy.addr);
    round_trip(&mut first, b"first");
    let mut second = connect(proxy.addr);
    round_trip(&mut second, b"second");

    // The kernel completes the third handshake, but the proxy must not take the client on.
    let mut third = connect(proxy.addr);
    third.write_all(b"third").unwrap();
    expect_silence(&mut third, Duration::from_millis(500));
    assert_eq!(
        backend.accepted(),
        2,
        "no upstream connection for the third"
    );

    // The first client finishes cleanly; its slot goes to the third.
    first.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_eof(&mut first, IO_TIMEOUT).is_empty());
    assert_eq!(read_exact_within(&mut third, 5, IO_TIMEOUT), b"third");
    round_trip(&mut third, b"served now");

    // Still two at a time: a fourth waits until the second is dropped outright.
    let mut fourth = connect(proxy.addr);
    fourth.write_all(b"fourth").unwrap();
    expect_silence(&mut fourth, Duration::from_millis(300));
    drop(second);
    assert_eq!(read_exact_within(&mut fourth, 6, IO_TIMEOUT), b"fourth");
    assert_eq!(backend.accepted(), 4);
    proxy.stop();
}

#[test]
fn reaching_max_conns_is_logged_once_when_it_starts_and_once_when_it_ends() {
    let backend = Backend::echo();
    let proxy = BinProxy::start(&["-u", &backend.addr.to_string(), "--max-conns", "1"]);
    let mut first = connect(proxy.addr);
    round_trip(&mut first, b"first");
    let mut waiting: Vec<TcpStream> = (0..5).map(|_| connect(proxy.addr)).collect();
    for client in &mut waiting {
        client.write_all(b"x").unwrap();
    }
    let started = proxy.wait_for_line(|l| l.contains("max-conns 1 reached"), IO_TIMEOUT);
    assert!(started.is_some(), "{:#?}", proxy.log());
    drop(first);
    let ended = proxy.wait_for_line(|l| l.contains("below max-conns 1 again"), IO_TIMEOUT);
    assert!(ended.is_some(), "{:#?}", proxy.log());
    assert_eq!(read_exact_within(&mut waiting[0], 1, IO_TIMEOUT), b"x");
    let log = proxy.log();
    let below = log.iter().position(|l| l.contains("below")).unwrap();
    let reached = log[..below]
        .iter()
        .filter(|l| l.contains("reached"))
        .count();
    assert_eq!(
        reached, 1,
        "one line for one stretch at the limit: {log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains("ringproxy::")),
        "no module paths in the log: {log:#?}"
    );
}

/// Waits for the proxy's descriptor count to return to `baseline`; panics with the count.
fn expect_fds_back_to(proxy: &BinProxy, baseline: usize, within: Duration) {
    let mut now = 0;
    let ok = wait_until(within, || {
        now = proxy.fd_count();
        now == baseline
    });
    assert!(
        ok,
        "descriptors did not return to the baseline {baseline} within {within:?}: {now} open"
    );
}

/// Sockets of the proxy's listening port, or held by the proxy, stuck in CLOSE_WAIT.
fn close_wait_rows(proxy: &BinProxy) -> Vec<TcpRow> {
    let inodes = socket_inodes(proxy.pid());
    let port = proxy.addr.port();
    tcp_rows()
        .into_iter()
        .filter(|r| r.state == TCP_CLOSE_WAIT)
        .filter(|r| r.local_port == port || inodes.contains(&r.inode))
        .collect()
}

#[test]
fn two_thousand_idle_connections_cost_two_descriptors_each_and_leak_none() {
    const CONNS: usize = 2000;
    setup();
    let backend = Backend::echo();
    let proxy = BinProxy::start(&["-u", &backend.addr.to_string(), "--backlog", "4096"]);
    let baseline = proxy.fd_count();

    let mut clients: Vec<TcpStream> = (0..CONNS).map(|_| connect(proxy.addr)).collect();
    // One round trip each proves every pair is accepted and connected upstream.
    for (i, c) in clients.iter_mut().enumerate() {
        round_trip(c, format!("client {i}").as_bytes());
    }
    let during = proxy.fd_count();
    assert!(
        (baseline + 2 * CONNS..=baseline + 2 * CONNS + 4).contains(&during),
        "{during} descriptors open for {CONNS} pairs over a baseline of {baseline}"
    );
    assert!(close_wait_rows(&proxy).is_empty());

    // Leave in every way a client can: FIN, RST, and half-close waiting for the EOF.
    let mut half_closed = Vec::new();
    for (i, c) in clients.into_iter().enumerate() {
        match i % 3 {
            0 => drop(c),
            1 => {
                set_reset_on_close(&c);
                drop(c);
            }
            _ => {
                c.shutdown(Shutdown::Write).unwrap();
                half_closed.push(c);
            }
        }
    }
    for mut c in half_closed {
        assert!(read_to_eof(&mut c, IO_TIMEOUT).is_empty());
    }
    expect_fds_back_to(&proxy, baseline, Duration::from_secs(10));
    let stuck = close_wait_rows(&proxy);
    assert!(stuck.is_empty(), "sockets left in CLOSE_WAIT: {stuck:?}");
}

#[test]
fn failed_connects_leak_no_descriptors() {
    setup();
    let refusing = [Refusing::new(), Refusing::new()];
    let proxy = BinProxy::start(&[
        "-u",
        &refusing[0].addr.to_string(),
        "-u",
        &refusing[1].addr.to_string(),
    ]);
    let baseline = proxy.fd_count();
    let mut clients: Vec<TcpStream> = (0..200).map(|_| connect(proxy.addr)).collect();
    for c in &mut clients {
        expect_closed(c, Duration::from_secs(5));
    }
    drop(clients);
    expect_fds_back_to(&proxy, baseline, Duration::from_secs(10));
    assert!(close_wait_rows(&proxy).is_empty());
}

/// What became of a client of a proxy that ran out of descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Served,
    Closed,
    Waiting,
}

#[test]
fn running_out_of_descriptors_does_not_crash_and_recovers() {
    const CLIENTS: usize = 60;
    setup();
    let backend = Backend::echo();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(bin())
        .args(["--listen", "127.0.0.1:0", "-u", &backend.addr.to_string()])
        .args(["--max-conns", "1000", "--connect-timeout", "30s"]);
    let mut proxy = BinProxy::spawn(cmd);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proxy.pid())).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert!(
        nofile.split_whitespace().nth(3) == Some("64"),
        "the limit did not apply: {nofile}"
    );
    let baseline = proxy.fd_count();
    // Descriptors inherited from whatever runs the tests may sit above 64; only those below
    // take room under the limit.
    let below_limit = std::fs::read_dir(format!("/proc/{}/fd", proxy.pid()))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .parse::<u32>()
                .is_ok_and(|fd| fd < 64)
        })
        .count();
    let capacity = (64 - below_limit) / 2;

    // Each client sends its name; each pair needs two descriptors, so only `capacity` of them
    // can be served at once. The others wait in the backlog (accept fails with EMFILE) or,
    // when one descriptor is left, are accepted and wait for an upstream socket (within the
    // connect timeout, 30 s here); none is closed, none is served the wrong bytes.
    let mut clients: Vec<(Vec<u8>, TcpStream)> = (0..CLIENTS)
        .map(|i| {
            let mut c = connect(proxy.addr);
            let msg = format!("client {i:02}").into_bytes();
            c.write_all(&msg).unwrap();
            (msg, c)
        })
        .collect();

    // Sort the clients out by sweeping them with short reads until nothing changes for 1s.
    let mut fates = [Fate::Waiting; CLIENTS];
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); CLIENTS];
    let mut last_change = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while last_change.elapsed() < Duration::from_secs(1) && Instant::now() < deadline {
        for (i, (msg, c)) in clients.iter_mut().enumerate() {
            if fates[i] != Fate::Waiting {
                continue;
            }
            c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            let mut buf = [0u8; 64];
            match c.read(&mut buf) {
                Ok(0) => fates[i] = Fate::Closed,
                Ok(n) => {
                    got[i].extend_from_slice(&buf[..n]);
                    if got[i].len() >= msg.len() {
                        assert_eq!(&got[i], msg, "client {i} got foreign bytes");
                        fates[i] = Fate::Served;
                    } else {
                        continue;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(_) => fates[i] = Fate::Closed,
            }
            last_change = Instant::now();
        }
    }
    let count = |f: Fate| fates.iter().filter(|&&x| x == f).count();
    let (served, closed, waiting) = (
        count(Fate::Served),
        count(Fate::Closed),
        count(Fate::Waiting),
    );
    eprintln!(
        "{below_limit} descriptors in use below the limit, room for {capacity} pairs: \
         {served} served, {closed} closed, {waiting} waiting"
    );
    assert!(proxy.is_running(), "the proxy exited: {:?}", proxy.log());
    let fds = proxy.fd_count();
    assert!(fds <= 64 + baseline - below_limit, "{fds} descriptors open");
    assert!(
        served + 1 >= capacity,
        "only {served} of {CLIENTS} clients served with room for {capacity} pairs"
    );
    assert!(served < CLIENTS, "every client served: the limit never bit");
    assert_eq!(closed, 0, "clients were dropped instead of waiting");
    let ran_out = proxy
        .wait_for_line(|l| l.contains("Too many open files"), IO_TIMEOUT)
        .is_some();
    assert!(ran_out, "no descriptor error logged: {:?}", proxy.log());

    // Once the clients leave, the descriptors come back and a new client is served.
    drop(clients);
    expect_fds_back_to(&proxy, baseline, Duration::from_secs(10));
    let mut late = connect(proxy.addr);
    round_trip(&mut late, b"after the storm");
    assert!(proxy.is_running());
    assert!(
        !proxy.log().iter().any(|l| l.contains("panicked")),
        "{:?}",
        proxy.log()
    );
}
