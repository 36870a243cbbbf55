//! The PROXY protocol end to end, with real peers where the point is interoperability.
//!
//! - HAProxy (`send-proxy`, and `send-proxy-v2` with `proxy-v2-options crc32c,unique-id`)
//!   → ringproxy (`accept_proxy`, trusting 127.0.0.1) → nginx (`listen … proxy_protocol`,
//!   answering with the client address it received), sending v1 and v2: the test client's
//!   own address comes back from nginx, and the access log (text and JSON) names the client,
//!   HAProxy as `peer` and the unique id.
//! - `curl --haproxy-protocol` → ringproxy → an HTTP backend: the header is taken off, and
//!   curl, its own peer, is logged without `peer=`.
//! - ringproxy → ringproxy (the built binary, configured by flags) → nginx, over IPv4 and
//!   IPv6 clients: the address survives two hops.
//! - Refusals, with an in-process proxy and a backend that counts: an untrusted source, a
//!   header that comes too slowly, malformed headers (never a byte back, never a backend
//!   connection, the access log's reason); probes that close or reset before a byte are
//!   counted in `/metrics` and left out of the access log.
//! - A v2 header with TLVs and a CRC32C sent one byte per TCP segment.
//! - Health checks to servers that require the header (v1 and v2): nginx never logs a
//!   broken header and the servers stay up.
//!
//! Tests that need HAProxy, nginx or curl are skipped with a note when those are missing
//! (see `common::peers::have`); `.ci/run` installs them and sets `RINGPROXY_REQUIRE_PEERS=1`.

mod common;

use common::headers::{V2_SIGNATURE, crc32c, v1_header, v2_header};
use common::logs::{field, line_of, log_lines, wait_for_metrics};
use common::peers::{Haproxy, Nginx, Peer, TempDir, curl, have};
use common::*;
use ringproxy::proxy_protocol::Version;
use ringproxy::settings::LogFormat;
use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn net(cidr: &str) -> ipnet::IpNet {
    cidr.parse().unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A route that requires the header and trusts 127.0.0.1 only, forwarding to `servers`.
fn accepting(servers: &[SocketAddr]) -> Settings {
    Settings::to(servers).route(|s| {
        s.accept_proxy = true;
        s.proxy_trusted = vec![net("127.0.0.1/32")];
    })
}

/// What nginx's `return` answers for a client at `a`.
fn as_nginx_says(a: SocketAddr) -> String {
    format!("{}:{}\n", a.ip(), a.port())
}

/// Connects to `to` and reads until the far end closes; returns the client's own address
/// and what it read.
fn ask(to: SocketAddr) -> (SocketAddr, String) {
    let mut client = connect(to);
    let me = client.local_addr().unwrap();
    let answer = read_to_eof(&mut client, IO_TIMEOUT);
    (me, String::from_utf8_lossy(&answer).into_owned())
}

// ---------------------------------------------------------------------------------------------
// Real peers
// ---------------------------------------------------------------------------------------------

/// HAProxy with `server_options` → ringproxy sending `send` → nginx; the access log in
/// `format`. Returns the client's address and ringproxy's log line for it.
fn through_haproxy(
    server_options: &str,
    frontend: &[&str],
    send: Version,
    format: LogFormat,
) -> (SocketAddr, String) {
    let nginx = Nginx::returning_client_address(1);
    let logs = TempDir::new("pp-log");
    let log = logs.join("access.log");
    let proxy = accepting(&[nginx.addr(0)])
        .route(|s| s.send_proxy = send)
        .access_log(&log, format)
        .start();
    let haproxy = Haproxy::to(proxy.addr, server_options, frontend);
    let (me, answer) = ask(haproxy.addr());
    assert_eq!(answer, as_nginx_says(me), "nginx saw another client");
    let needle = match format {
        LogFormat::Text => format!("{me} "),
        LogFormat::Json => format!("\"client\":\"{me}\""),
    };
    let lines = log_lines(&log, |ls| ls.iter().any(|l| l.contains(&needle)));
    assert_eq!(lines.len(), 1, "one connection, one line: {lines:#?}");
    assert!(
        lines[0].contains(&nginx.addr(0).to_string()),
        "upstream is nginx: {}",
        lines[0]
    );
    (me, lines.into_iter().next().unwrap())
}

#[test]
fn haproxy_v1_to_ringproxy_v1_to_nginx_keeps_the_client_address() {
    if !have(&[Peer::Haproxy, Peer::Nginx]) {
        return;
    }
    let (me, line) = through_haproxy("send-proxy", &[], Version::V1, LogFormat::Text);
    assert!(line.starts_with(&format!("{me} [")), "{line}");
    let peer: SocketAddr = field(&line, "peer")
        .unwrap_or_else(|| panic!("no peer= in {line}"))
        .parse()
        .unwrap();
    assert_eq!(peer.ip(), me.ip(), "HAProxy connects from loopback too");
    assert_ne!(
        peer, me,
        "the peer is HAProxy's socket, not the client: {line}"
    );
    assert_eq!(
        field(&line, "down"),
        Some(as_nginx_says(me).len().to_string().as_str())
    );
}

#[test]
fn haproxy_v2_crc32c_to_ringproxy_v2_to_nginx_keeps_the_client_address() {
    if !have(&[Peer::Haproxy, Peer::Nginx]) {
        return;
    }
    let (me, line) = through_haproxy(
        "send-proxy-v2 proxy-v2-options crc32c,unique-id",
        &["unique-id-format rp-%[src_port]"],
        Version::V2,
        LogFormat::Json,
    );
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert!(line.contains("\"peer\":\"127.0.0.1:"), "no peer in {line}");
    assert!(!line.contains(&format!("\"peer\":\"{me}\"")), "{line}");
    let id = format!("\"unique_id\":\"rp-{}\"", me.port());
    assert!(
        line.contains(&id),
        "HAProxy's UNIQUE_ID TLV ({id}) missing in {line}"
    );
}

#[test]
fn curl_haproxy_protocol_is_accepted_and_curl_is_its_own_peer() {
    if !have(&[Peer::Curl]) {
        return;
    }
    let (requests, received) = std::sync::mpsc::channel();
    let requests = std::sync::Mutex::new(requests);
    let backend = Backend::spawn(listen_on(v4_any_port()), move |mut s| {
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.ends_with(b"\r\n\r\n") {
            match std::io::Read::read(&mut s, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let _ = requests.lock().unwrap().send(request);
        let body = "served by the backend";
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let logs = TempDir::new("pp-log");
    let log = logs.join("access.log");
    let proxy = accepting(&[backend.addr])
        .access_log(&log, LogFormat::Text)
        .start();
    let url = format!("http://{}/ringproxy", proxy.addr);
    let out = curl(
        &[
            "--haproxy-protocol",
            "-w",
            "\n%{local_ip} %{local_port}",
            &url,
        ],
        IO_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl: {out:?}");
    let (body, local) = stdout.rsplit_once('\n').expect("body, then curl's address");
    assert_eq!(body, "served by the backend");
    let (ip, port) = local.split_once(' ').unwrap();
    let me = SocketAddr::new(ip.parse().unwrap(), port.parse().unwrap());
    let request = received.recv_timeout(IO_TIMEOUT).unwrap();
    assert!(
        request.starts_with(b"GET /ringproxy HTTP/1.1\r\n"),
        "the backend gets the request without the header: {:?}",
        String::from_utf8_lossy(&request)
    );
    let line = line_of(&log, me);
    assert_eq!(field(&line, "peer"), None, "curl is its own peer: {line}");
}

#[test]
fn ringproxy_chain_keeps_the_client_address_over_two_hops() {
    if !have(&[Peer::Nginx]) {
        return;
    }
    let nginx = Nginx::returning_client_address(1);
    let logs = TempDir::new("pp-log");
    let log = logs.join("access.log");
    let second = BinProxy::start(&[
        "--accept-proxy",
        "--proxy-trusted",
        "10.0.0.0/8",
        "--proxy-trusted",
        "127.0.0.1/32",
        "--upstream",
        &format!("{},send-proxy=v1", nginx.addr(0)),
        "--access-log",
        log.to_str().unwrap(),
    ]);
    for listen in [v4_any_port(), v6_any_port()] {
        let first = Settings::to(&[second.addr])
            .listen(listen)
            .route(|s| s.send_proxy = Version::V2)
            .start();
        let (me, answer) = ask(first.addr);
        assert_eq!(answer, as_nginx_says(me), "over {listen}");
        let line = line_of(&log, me);
        let peer = field(&line, "peer").expect("the first hop is the peer");
        assert!(peer.starts_with("127.0.0.1:"), "{line}");
    }
}

#[test]
fn health_checks_send_servers_a_header_they_accept() {
    if !have(&[Peer::Nginx]) {
        return;
    }
    let nginx = Nginx::returning_client_address(2);
    let (v2, v1) = (nginx.addr(0), nginx.addr(1));
    let proxy = Settings::to(&[v2, v1])
        .route(|s| {
            s.send_proxy = Version::V2;
            s.health_interval = Some(Duration::from_millis(100));
            s.health_fall = 1;
        })
        .server(1, |o| o.send_proxy = Some(Version::V1))
        .metrics()
        .start();
    let sessions = |port: u16| {
        let log = nginx.access_log();
        let start = format!("{port} ");
        log.lines().filter(|l| l.starts_with(&start)).count()
    };
    assert!(
        wait_until(IO_TIMEOUT, || sessions(v2.port()) >= 3
            && sessions(v1.port()) >= 3),
        "three checks reach each server; nginx access log:\n{}",
        nginx.access_log()
    );
    let errors = nginx.error_log();
    assert!(
        !errors.contains("broken header"),
        "nginx error log:\n{errors}"
    );
    let access = nginx.access_log();
    assert!(
        !access.lines().any(|l| l.ends_with(" 400")),
        "nginx access log:\n{access}"
    );
    let up = |s: SocketAddr| {
        format!("ringproxy_upstream_up{{worker=\"0\",route=\"default\",server=\"{s}\"}} 1")
    };
    wait_for_metrics(proxy.metrics.unwrap(), &[up(v2), up(v1)]);
    // Real clients, one per server in turn (round robin), get through with either version.
    let mut served = Vec::new();
    for _ in 0..2 {
        let (me, answer) = ask(proxy.addr);
        assert_eq!(answer, as_nginx_says(me));
        let said = format!(" {}:{} 200", me.ip(), me.port());
        assert!(
            wait_until(IO_TIMEOUT, || nginx.access_log().contains(&said)),
            "nginx logged no session for {me}"
        );
        let log = nginx.access_log();
        let line = log.lines().find(|l| l.ends_with(&said)).unwrap();
        served.push(line.split(' ').next().unwrap().to_string());
    }
    served.sort();
    let mut ports = vec![v2.port().to_string(), v1.port().to_string()];
    ports.sort();
    assert_eq!(served, ports, "each server took one client");
}

// ---------------------------------------------------------------------------------------------
// Refusals and probes
// ---------------------------------------------------------------------------------------------

#[test]
fn an_untrusted_source_is_closed_before_a_byte_and_reaches_no_backend() {
    let (backend, accepted) = Backend::channel();
    let logs = TempDir::new("pp-log");
    let log = logs.join("access.log");
    let proxy = Settings::to(&[backend.addr])
        .route(|s| {
            s.accept_proxy = true;
            s.proxy_trusted = vec![net("10.0.0.0/8")];
            s.proxy_timeout = Duration::from_secs(60);
        })
        .access_log(&log, LogFormat::Text)
        .start();
    // Silent: closed at once, not after the header timeout.
    let mut silent = connect(proxy.addr);
    let mut clients = vec![silent.local_addr().unwrap()];
    expect_closed(&mut silent, IO_TIMEOUT);
    // With a header claiming a trusted address, and data after it.
    for _ in 0..10 {
        let mut c = connect(proxy.addr);
        clients.push(c.local_addr().unwrap());
        let mut bytes = v1_header(addr("10.1.2.3:4444"), proxy.addr);
        bytes.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
        let _ = c.write_all(&bytes); // it may be closed already
        expect_closed(&mut c, IO_TIMEOUT);
    }
    accepted.none_within(Duration::from_millis(300));
    proxy.stop();
    assert_eq!(
        backend.accepted(),
        0,
        "no untrusted connection reaches a backend"
    );
    let lines = log_lines(&log, |ls| ls.len() == clients.len());
    for client in &clients {
        let start = format!("{client} [");
        let line = lines.iter().find(|l| l.starts_with(&start));
        let line = line.unwrap_or_else(|| panic!("no line for {client}: {lines:#?}"));
        assert!(line.contains(" default - up=0 down=0 "), "{line}");
        assert_eq!(field(line, "ended"), Some("untrusted"), "{line}");
        assert_eq!(field(line, "peer"), None, "{line}");
    }
}

#[test]
fn a_slow_header_is_cut_at_the_proxy_timeout() {
    let (backend, accepted) = Backend::channel();
    let logs = TempDir::new("pp-log");
    let log = logs.join("access.log");
    let timeout = Duration::from_millis(300);
    let proxy = accepting(&[backend.addr])
        .route(|s| s.proxy_timeout = timeout)
        .access_log(&log, LogFormat::Text)
        .start();
    let v2 = v2_header(addr("127.3.2.1:4242"), proxy.addr, &[], false);
    let halves: [&[u8]; 2] = [b"PROXY TCP4 127.3.2.1 ", &v2[..v2.len() / 2]];
    for half in halves {
        let began = Instant::now();
        let mut c = connect(proxy.addr);
        c.write_all(half).unwrap();
        expect_closed(&mut c, IO_TIMEOUT);
        let waited = began.elapsed();
        assert!(
            waited >= timeout,
            "closed after {waited:?}, before the timeout"
        );
    }
    accepted.none_within(Duration::from_millis(100));
    proxy.stop();
    assert_eq!(backend.accepted(), 0);
    let lines = log_lines(&log, |ls| ls.len() == 2);
    for line in &lines {
        assert_eq!(field(line, "ended"), Some("proxy-timeout"), "{line}");
        let secs: f64 = field(line, "duration").unwrap().parse().unwrap();
        assert!(secs >= 0.3, "{line}");
    }
}

#[test]
fn malformed_headers_are_refused_at_once() {
    let (backend, accepted) = Backend::channel();
    let logs = TempDir::new("pp-log");
    let log = logs.join("access.log");
    let proxy = accepting(&[backend.addr])
        .route(|s| s.proxy_timeout = Duration::from_secs(60))
        .access_log(&log, LogFormat::Text)
        .start();
    let mut bad_crc = v2_header(addr("127.3.2.1:4242"), proxy.addr, &[], true);
    *bad_crc.last_mut().unwrap() ^= 1;
    let mut too_long = b"PROXY TCP4 127.3.2.1 127.0.0.1 4242 80".to_vec();
    too_long.resize(120, b' ');
    let cases: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PROXY TCP4 999.0.0.1 127.0.0.1 4242 80\r\n",
        &too_long,
        &bad_crc,
    ];
    for case in cases {
        let mut c = connect(proxy.addr);
        c.write_all(case).unwrap();
        // Within IO_TIMEOUT, far below the 60 s header timeout: the bytes decided.
        expect_closed(&mut c, IO_TIMEOUT);
    }
    accepted.none_within(Duration::from_millis(100));
    proxy.stop();
    assert_eq!(backend.accepted(), 0);
    let lines = log_lines(&log, |ls| ls.len() == cases.len());
    for line in &lines {
        assert_eq!(field(line, "ended"), Some("bad-proxy-header"), "{line}");
    }
}

/// A client that closes (FIN, or RST when `reset`) before sending a byte to an accept_proxy
/// route: counted in `/metrics` as a probe, and the access log's only line is the real
/// client's that came after it.
fn probe_is_counted_but_not_logged(reset: bool) {
    let backend = Backend::echo();
    let logs = TempDir::new("pp-log");
    let log = logs.join("access.log");
    let proxy = accepting(&[backend.addr])
        .access_log(&log, LogFormat::Text)
        .metrics()
        .start();
    let metrics = proxy.metrics.unwrap();
    let probe = connect(proxy.addr);
    if reset {
        set_reset_on_close(&probe);
    }
    drop(probe);
    let closed = |reason: &str| {
        format!(
            "ringproxy_connections_closed_total{{worker=\"0\",route=\"default\",reason=\"{reason}\"}} 1"
        )
    };
    wait_for_metrics(metrics, &[closed("probe")]);
    let mut c = connect(proxy.addr);
    let me = c.local_addr().unwrap();
    c.write_all(&v1_header(me, proxy.addr)).unwrap();
    round_trip(&mut c, b"after the probe");
    c.shutdown(Shutdown::Write).unwrap();
    read_to_eof(&mut c, IO_TIMEOUT);
    wait_for_metrics(metrics, &[closed("client-closed"), closed("probe")]);
    proxy.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "a probe gets no line:\n{text}");
    assert!(lines[0].starts_with(&format!("{me} [")), "{text}");
    assert_eq!(field(lines[0], "ended"), Some("client-closed"), "{text}");
}

#[test]
fn a_probe_that_closes_at_once_is_counted_but_not_logged() {
    probe_is_counted_but_not_logged(false);
}

#[test]
fn a_probe_that_resets_at_once_is_counted_but_not_logged() {
    probe_is_counted_but_not_logged(true);
}

/// The plainest client of all, one whose header comes a little after its connect: the proxy
/// must wait for it (the 5 s `proxy_timeout` allows it), not refuse the empty buffer.
#[test]
fn a_header_sent_a_moment_after_connecting_is_accepted() {
    let (backend, accepted) = Backend::channel();
    let proxy = accepting(&[backend.addr]).start();
    let mut c = connect(proxy.addr);
    // Not synchronisation: the scenario is a client that writes after the proxy has first
    // looked at its socket, which happens within microseconds of the accept.
    thread::sleep(Duration::from_millis(100));
    let mut bytes = v1_header(addr("127.3.2.1:4242"), proxy.addr);
    bytes.extend_from_slice(b"hello");
    c.write_all(&bytes)
        .expect("the proxy still waits for the header");
    let mut upstream = accepted.next(IO_TIMEOUT);
    assert_eq!(read_exact_within(&mut upstream, 5, IO_TIMEOUT), b"hello");
}

#[test]
fn the_tests_crc32c_is_the_standard_one() {
    // The check value of CRC-32C for "123456789" (RFC 3720, B.4).
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(
        &v2_header(addr("127.0.0.1:1"), addr("127.0.0.1:2"), &[], false)[..12],
        V2_SIGNATURE
    );
}

// ---------------------------------------------------------------------------------------------
// Segmenting
// ---------------------------------------------------------------------------------------------

#[test]
fn a_v2_header_one_byte_per_segment_is_read_whole() {
    let (backend, accepted) = Backend::channel();
    let logs = TempDir::new("pp-log");
    let log = logs.join("access.log");
    let proxy = accepting(&[backend.addr])
        .access_log(&log, LogFormat::Text)
        .start();
    let claimed = addr("127.3.2.1:4242");
    let tlvs: [(u8, &[u8]); 2] = [(0x02, b"example.test"), (0x05, b"req-42")];
    let header = v2_header(claimed, addr("127.0.0.9:443"), &tlvs, true);
    let mut c = connect(proxy.addr);
    c.set_nodelay(true).unwrap();
    let me = c.local_addr().unwrap();
    let (last, most) = header.split_last().unwrap();
    // At most 70 bytes × 2 ms: the pause lets each byte leave as a segment of its own.
    for byte in most {
        c.write_all(std::slice::from_ref(byte)).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    accepted.none_within(Duration::from_millis(50));
    c.write_all(std::slice::from_ref(last)).unwrap();
    c.write_all(b"payload").unwrap();
    let mut upstream = accepted.next(IO_TIMEOUT);
    assert_eq!(read_exact_within(&mut upstream, 7, IO_TIMEOUT), b"payload");
    upstream.write_all(b"pong").unwrap();
    assert_eq!(read_exact_within(&mut c, 4, IO_TIMEOUT), b"pong");
    drop(upstream);
    read_to_eof(&mut c, IO_TIMEOUT);
    drop(c);
    let line = line_of(&log, claimed);
    assert_eq!(
        field(&line, "peer"),
        Some(me.to_string().as_str()),
        "{line}"
    );
    assert_eq!(field(&line, "authority"), Some("example.test"), "{line}");
    assert_eq!(field(&line, "unique_id"), Some("req-42"), "{line}");
    assert_eq!(
        field(&line, "up"),
        Some("7"),
        "the header is not the client's data: {line}"
    );
}
