//! Faults beyond loopback: the backend sits behind a veth pair in a network namespace of its
//! own, and the link between it and the proxy loses packets, drops SYNs, falls silent, queues
//! (tbf), or delays and reorders (netem). Through each: bytes arrive intact and in order,
//! half-closes pass, a connect that cannot complete times out and moves on, and a silent peer
//! is closed by the idle timeout, each ending named in the access log.
//!
//! The proxy is the built binary, run in the front namespace with the clients; the
//! backends are threads of the test in the back namespace (`common::netns`). A test is
//! skipped with one `skipped …` line where the machine cannot create namespaces, veth pairs or
//! nftables rules (not root); the netem tests also where the kernel has no `sch_netem`.

mod common;

use common::logs::{field, line_of};
use common::netns::{Lab, skip};
use common::peers::TempDir;
use common::{
    BinProxy, Ending, IO_TIMEOUT, Pattern, expect_closed, expect_silence, read_exact_within,
    round_trip, setup,
};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

/// Bytes each way in the bulk tests: enough for many losses and recoveries at 1%.
const BULK: u64 = 16 << 20;
/// Bytes each way in the half-close tests.
const HALF: u64 = 8 << 20;
/// Deadline of one bulk transfer over a faulty link.
const BULK_WITHIN: Duration = Duration::from_secs(60);
/// The backend's port in its namespace (the namespace is the test's alone).
const PORT: u16 = 7000;
/// A second backend port.
const OTHER_PORT: u16 = 7001;
/// The link's loss in the loss tests, per mille each way.
const LOSS_PER_MILLE: u32 = 10;

/// The network of the test, or `None` to skip it.
fn lab() -> Option<Lab> {
    setup();
    Lab::new()
}

/// The proxy started in `lab` with `args` and an access log in a temporary directory of its
/// own: the proxy, the directory (removed on drop) and the log's path.
fn logged(lab: &Lab, args: &[&str]) -> (BinProxy, TempDir, PathBuf) {
    let dir = TempDir::new("faults");
    let path = dir.join("access.log");
    let log = path.to_str().expect("a UTF-8 temporary path");
    let args: Vec<&str> = args.iter().copied().chain(["--access-log", log]).collect();
    (lab.proxy(&args), dir, path)
}

/// Writes `total` bytes of `seed`'s pattern from a thread, then shuts `s` down for writing.
fn send_then_shut(s: &TcpStream, seed: u64, total: u64) -> thread::JoinHandle<()> {
    let mut w = s.try_clone().expect("clone the socket");
    thread::spawn(move || {
        Pattern::new(seed)
            .write_to(&mut w, total)
            .expect("write the pattern");
        w.shutdown(Shutdown::Write).expect("shut down for writing");
    })
}

/// Reads `seed`'s pattern to EOF, checking every byte; panics unless exactly `total` arrive.
fn receive_all(s: &mut TcpStream, seed: u64, total: u64) {
    let (got, end) = Pattern::new(seed).read_from(s, total, BULK_WITHIN);
    assert_eq!(
        (got, end),
        (total, Ending::Eof),
        "wanted {total} bytes then EOF"
    );
}

/// The access-log line of `client` and its `ended=` reason.
fn ended(log: &std::path::Path, client: &TcpStream) -> (String, String) {
    let line = line_of(log, client.local_addr().unwrap());
    let reason = field(&line, "ended").expect("an ended= field").to_string();
    (line, reason)
}

/// 16 MiB each way through an echo backend while the link drops 1% of packets each way.
fn integrity_under_loss() {
    let Some(lab) = lab() else { return };
    let _backend = lab.echo(PORT);
    let (proxy, _dir, log) = logged(&lab, &["--upstream", &Lab::upstream(PORT)]);
    lab.lose(LOSS_PER_MILLE);
    let mut client = lab.connect(proxy.addr);
    let started = Instant::now();
    let writer = send_then_shut(&client, 1, BULK);
    receive_all(&mut client, 1, BULK);
    writer.join().unwrap();
    let elapsed = started.elapsed();
    let dropped = lab.dropped();
    // About 1% of some 35 000 segments and ACKs; fewer than 50 would mean no real loss.
    let least = if lab.per_segment { 50 } else { 1 };
    assert!(dropped >= least, "the link dropped only {dropped} packets");
    let (line, reason) = ended(&log, &client);
    assert_eq!(reason, "client-closed", "{line}");
    assert_eq!(
        field(&line, "up"),
        Some(BULK.to_string().as_str()),
        "{line}"
    );
    assert_eq!(
        field(&line, "down"),
        Some(BULK.to_string().as_str()),
        "{line}"
    );
    eprintln!("{BULK} bytes each way in {elapsed:?}, {dropped} packets dropped");
}

each_engine!(integrity_under_loss);

/// A server whose SYNs are all lost: the connect times out after `--connect-timeout`, the
/// client (with nothing else to try) is closed at once with `ended=connect-failed`, and a
/// connection established before the loss keeps flowing, before and after.
#[test]
fn connect_timeout_under_syn_loss() {
    let Some(lab) = lab() else { return };
    let _backend = lab.echo(PORT);
    let timeout = Duration::from_millis(300);
    let (proxy, _dir, log) = logged(
        &lab,
        &[
            "--upstream",
            &Lab::upstream(PORT),
            "--connect-timeout",
            "300ms",
        ],
    );
    let mut established = lab.connect(proxy.addr);
    round_trip(&mut established, b"before the loss");

    lab.drop_syns_to(PORT);
    let mut client = lab.connect(proxy.addr);
    let started = Instant::now();
    client.write_all(b"waiting for an upstream").unwrap();
    round_trip(&mut established, b"while a connect hangs");
    expect_closed(&mut client, IO_TIMEOUT);
    let waited = started.elapsed();
    assert!(
        waited >= timeout - Duration::from_millis(50) && waited < timeout * 5,
        "closed after {waited:?} with a connect timeout of {timeout:?}"
    );
    round_trip(&mut established, b"after the timeout");
    assert!(lab.dropped() > 0, "no SYN was dropped");

    let (line, reason) = ended(&log, &client);
    assert_eq!(reason, "connect-failed", "{line}");
    let duration: f64 = field(&line, "duration").unwrap().parse().unwrap();
    assert!(duration >= 0.25, "duration={duration} in {line}");
}

/// Of two servers, the first loses every SYN: a client the balancer sends there moves to the
/// second after the connect timeout, keeps the bytes it sent meanwhile, and the access log
/// names both tries.
#[test]
fn retry_past_a_server_losing_syns() {
    let Some(lab) = lab() else { return };
    let _lossy = lab.echo(PORT);
    let _good = lab.echo(OTHER_PORT);
    let (lossy, good) = (Lab::upstream(PORT), Lab::upstream(OTHER_PORT));
    let (proxy, _dir, log) = logged(
        &lab,
        &[
            "--upstream",
            &lossy,
            "--upstream",
            &good,
            "--connect-timeout",
            "300ms",
        ],
    );
    lab.drop_syns_to(PORT);
    // Round robin starts with either; two clients meet the lossy server at least once.
    let clients: Vec<TcpStream> = (0..2)
        .map(|i| {
            let mut c = lab.connect(proxy.addr);
            round_trip(&mut c, format!("client {i}").as_bytes());
            c
        })
        .collect();
    let lines: Vec<String> = clients
        .iter()
        .map(|c| {
            c.shutdown(Shutdown::Write).unwrap();
            let mut c = c.try_clone().unwrap();
            expect_closed(&mut c, IO_TIMEOUT);
            ended(&log, &c).0
        })
        .collect();
    let tried = format!("{lossy},{good}");
    assert!(
        lines
            .iter()
            .any(|l| field(l, "tried") == Some(tried.as_str()) && field(l, "retries") == Some("1")),
        "no line shows tried={tried} retries=1:\n{lines:#?}"
    );
    assert!(lab.dropped() > 0, "no SYN was dropped");
}

/// The first SYN of each connect is lost: with a connect timeout longer than the kernel's
/// first retransmission (1 s), the connect succeeds on it, and nothing is retried.
#[test]
fn syn_retransmit_within_connect_timeout() {
    let Some(lab) = lab() else { return };
    let _backend = lab.echo(PORT);
    let (proxy, _dir, log) = logged(
        &lab,
        &[
            "--upstream",
            &Lab::upstream(PORT),
            "--connect-timeout",
            "3s",
        ],
    );
    lab.drop_first_syns_to(PORT);
    let mut client = lab.connect(proxy.addr);
    round_trip(&mut client, b"after a lost SYN");
    client.shutdown(Shutdown::Write).unwrap();
    expect_closed(&mut client, IO_TIMEOUT);
    assert_eq!(lab.dropped(), 1, "exactly one SYN dropped");
    let (line, reason) = ended(&log, &client);
    assert_eq!(reason, "client-closed", "{line}");
    let connect: f64 = field(&line, "connect").unwrap().parse().unwrap();
    assert!((0.9..3.0).contains(&connect), "connect={connect} in {line}");
    assert_eq!(field(&line, "retries"), None, "{line}");
}

/// A backend that falls silent mid-connection (every packet either way lost, so no FIN or
/// RST ever arrives): the idle timeout closes the client and releases the upstream socket.
#[test]
fn idle_timeout_with_a_silent_peer() {
    let Some(lab) = lab() else { return };
    let (_backend, accepted) = lab.channel(PORT);
    let idle = Duration::from_secs(1);
    let (proxy, _dir, log) = logged(
        &lab,
        &["--upstream", &Lab::upstream(PORT), "--idle-timeout", "1s"],
    );
    let baseline = proxy.fd_count();
    let mut client = lab.connect(proxy.addr);
    client.write_all(b"hello").unwrap();
    let mut upstream = accepted.next(IO_TIMEOUT);
    assert_eq!(read_exact_within(&mut upstream, 5, IO_TIMEOUT), b"hello");
    upstream.write_all(b"world").unwrap();
    assert_eq!(read_exact_within(&mut client, 5, IO_TIMEOUT), b"world");

    lab.silence();
    // Accepted by the proxy and its kernel, never by the backend.
    client.write_all(&[7u8; 4096]).unwrap();
    let started = Instant::now();
    expect_closed(&mut client, IO_TIMEOUT);
    let waited = started.elapsed();
    assert!(
        waited >= idle - Duration::from_millis(100),
        "closed after {waited:?}, before the idle timeout of {idle:?}"
    );
    expect_silence(&mut upstream, Duration::from_millis(200));
    assert!(lab.dropped() > 0, "the silent link dropped nothing");
    let (line, reason) = ended(&log, &client);
    assert_eq!(reason, "idle-timeout", "{line}");
    assert!(
        common::wait_until(IO_TIMEOUT, || proxy.fd_count() == baseline),
        "the proxy holds {} descriptors, {baseline} before the connection",
        proxy.fd_count()
    );
}

/// With TCP keepalive and a long idle timeout, a silent backend (nothing in flight) is found
/// by the kernel's unanswered probes: the proxy sees the upstream fail and closes the client.
#[test]
fn keepalive_finds_a_silent_peer() {
    let Some(lab) = lab() else { return };
    let (_backend, accepted) = lab.channel(PORT);
    let (proxy, _dir, log) = logged(
        &lab,
        &[
            "--upstream",
            &Lab::upstream(PORT),
            "--idle-timeout",
            "60s",
            "--keepalive",
            "1s",
            "--keepalive-interval",
            "1s",
            "--keepalive-count",
            "1",
        ],
    );
    let mut client = lab.connect(proxy.addr);
    client.write_all(b"ping").unwrap();
    let mut upstream = accepted.next(IO_TIMEOUT);
    assert_eq!(read_exact_within(&mut upstream, 4, IO_TIMEOUT), b"ping");
    upstream.write_all(b"pong").unwrap();
    assert_eq!(read_exact_within(&mut client, 4, IO_TIMEOUT), b"pong");

    lab.silence();
    let started = Instant::now();
    expect_closed(&mut client, IO_TIMEOUT);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "closed after {waited:?}, before a probe could go unanswered"
    );
    let (line, reason) = ended(&log, &client);
    assert_eq!(reason, "upstream-reset", "{line}");
}

/// Across a link losing 1% each way, the client sends 8 MiB and its FIN; the backend reads
/// it all to EOF, then answers 8 MiB and closes: every byte arrives, each FIN is passed on.
#[test]
fn half_close_client_first_across_loss() {
    let Some(lab) = lab() else { return };
    let (_backend, accepted) = lab.channel(PORT);
    let (proxy, _dir, log) = logged(&lab, &["--upstream", &Lab::upstream(PORT)]);
    lab.lose(LOSS_PER_MILLE);
    let mut client = lab.connect(proxy.addr);
    let writer = send_then_shut(&client, 1, HALF);
    let mut upstream = accepted.next(IO_TIMEOUT);
    receive_all(&mut upstream, 1, HALF);
    writer.join().unwrap();
    let answer = send_then_shut(&upstream, 2, HALF);
    receive_all(&mut client, 2, HALF);
    answer.join().unwrap();
    assert!(lab.dropped() > 0, "the link dropped nothing");
    let (line, reason) = ended(&log, &client);
    assert_eq!(reason, "client-closed", "{line}");
}

/// The other way round: the backend sends 8 MiB and its FIN first while the client is still
/// sending its own 8 MiB, which the backend reads to EOF after its half-close.
#[test]
fn half_close_upstream_first_across_loss() {
    let Some(lab) = lab() else { return };
    let (_backend, accepted) = lab.channel(PORT);
    let (proxy, _dir, log) = logged(&lab, &["--upstream", &Lab::upstream(PORT)]);
    lab.lose(LOSS_PER_MILLE);
    let mut client = lab.connect(proxy.addr);
    client.write_all(b"x").unwrap();
    let mut upstream = accepted.next(IO_TIMEOUT);
    assert_eq!(read_exact_within(&mut upstream, 1, IO_TIMEOUT), b"x");
    let answer = send_then_shut(&upstream, 2, HALF);
    receive_all(&mut client, 2, HALF);
    answer.join().unwrap();
    // The backend has shut down its side; the client's direction is still open.
    let writer = send_then_shut(&client, 1, HALF);
    receive_all(&mut upstream, 1, HALF);
    writer.join().unwrap();
    assert!(lab.dropped() > 0, "the link dropped nothing");
    let (line, reason) = ended(&log, &client);
    assert_eq!(reason, "upstream-closed", "{line}");
}

/// A link shaped to 200 Mbit/s each way by `tbf` (queueing delay, no loss): 16 MiB each way
/// arrive intact, and no faster than the link allows.
#[test]
fn integrity_through_a_rate_limited_link() {
    let Some(lab) = lab() else { return };
    if let Err(why) = lab.qdisc("tbf rate 200mbit burst 64kb latency 200ms") {
        skip(&format!("the kernel refused a tbf qdisc: {why}"));
        return;
    }
    let _backend = lab.echo(PORT);
    let proxy = lab.proxy(&["--upstream", &Lab::upstream(PORT)]);
    let mut client = lab.connect(proxy.addr);
    let started = Instant::now();
    let writer = send_then_shut(&client, 3, BULK);
    receive_all(&mut client, 3, BULK);
    writer.join().unwrap();
    let elapsed = started.elapsed();
    let fastest = Duration::from_secs_f64(BULK as f64 * 8.0 / 200e6);
    assert!(
        elapsed >= fastest.mul_f64(0.8),
        "{BULK} bytes in {elapsed:?}: faster than the shaped link ({fastest:?})"
    );
}

/// Puts `netem` with `args` on both ends of the link, or skips the test (with a line saying
/// so) when the kernel has no netem.
fn netem(lab: &Lab, args: &str) -> bool {
    match lab.qdisc(&format!("netem {args}")) {
        Ok(()) => true,
        Err(why) => {
            skip(&format!(
                "tc netem is not available (the kernel has no sch_netem): {why}"
            ));
            false
        }
    }
}

/// 16 MiB each way through a link that delays by 10 ms ± 5 ms and reorders a quarter of the
/// packets (netem).
#[test]
fn integrity_under_delay_and_reordering() {
    let Some(lab) = lab() else { return };
    if !netem(&lab, "delay 10ms 5ms reorder 25% 50%") {
        return;
    }
    let _backend = lab.echo(PORT);
    let proxy = lab.proxy(&["--upstream", &Lab::upstream(PORT)]);
    let mut client = lab.connect(proxy.addr);
    let writer = send_then_shut(&client, 4, BULK);
    receive_all(&mut client, 4, BULK);
    writer.join().unwrap();
}

/// A half-close across a link with 20 ms of delay, reordering (netem) and 1% loss
/// (nftables): every byte both ways, each FIN passed on.
#[test]
fn half_close_under_delay_reordering_and_loss() {
    let Some(lab) = lab() else { return };
    if !netem(&lab, "delay 20ms reorder 10% 50%") {
        return;
    }
    let (_backend, accepted) = lab.channel(PORT);
    let proxy = lab.proxy(&["--upstream", &Lab::upstream(PORT)]);
    lab.lose(LOSS_PER_MILLE);
    let mut client = lab.connect(proxy.addr);
    let writer = send_then_shut(&client, 5, HALF);
    let mut upstream = accepted.next(IO_TIMEOUT);
    receive_all(&mut upstream, 5, HALF);
    writer.join().unwrap();
    let answer = send_then_shut(&upstream, 6, HALF);
    receive_all(&mut client, 6, HALF);
    answer.join().unwrap();
}
