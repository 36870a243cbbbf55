//! TLS passthrough: routes sharing one listen address choose by the server name of the
//! client's ClientHello, without terminating TLS. Real `openssl s_client` and curl clients
//! complete a handshake with the `openssl s_server` backend holding the certificate for the
//! name they asked; no name goes to `*`; plain bytes, broken and oversized hellos, silence
//! and unknown names get the documented endings without an upstream being contacted; a
//! hello written a byte at a time and one after a PROXY header arrive unchanged; a reload
//! changes the names of a shared address without closing its socket.

mod common;

use common::logs::{field, line_of, log_lines};
use common::peers::{Peer, have};
use common::tls::{TlsServer, curl_certificate, peer_certificate};
use common::*;
use ringproxy::settings::LogFormat;
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

const OPENSSL_HELLO: &[u8] = include_bytes!("data/client_hello/openssl-a.test-alpn.bin");
const CURL_HELLO: &[u8] = include_bytes!("data/client_hello/curl-b.test.bin");

/// A temporary access log, removed on drop.
fn access_log(label: &str) -> (peers::TempDir, std::path::PathBuf) {
    let dir = peers::TempDir::new(label);
    let path = dir.join("access.log");
    (dir, path)
}

#[test]
fn each_name_reaches_the_backend_holding_its_certificate() {
    if !have(&[Peer::Openssl, Peer::Curl]) {
        return;
    }
    let (a, b, other) = (
        TlsServer::for_name("a.test"),
        TlsServer::for_name("b.test"),
        TlsServer::for_name("fallback.test"),
    );
    let (_dir, log) = access_log("sni-names");
    let proxy = Settings::to(&[a.addr()])
        .listen(free_addr())
        .sni(&["a.test"])
        .access_log(&log, LogFormat::Text)
        .sni_route("b", &["b.test", "*.b.test"], &[b.addr()])
        .sni_route("fallback", &["*"], &[other.addr()])
        .start();
    let asked = [
        (Some("a.test"), "a.test"),
        (Some("A.Test"), "a.test"),
        (Some("b.test"), "b.test"),
        (Some("x.y.b.test"), "b.test"),
        (Some("c.test"), "fallback.test"),
        (None, "fallback.test"),
    ];
    for (name, want) in asked {
        let got = peer_certificate(proxy.addr, name);
        assert_eq!(got.as_deref(), Some(want), "s_client -servername {name:?}");
    }
    for (name, want) in [("a.test", "a.test"), ("www.b.test", "b.test")] {
        let (subject, page) = curl_certificate(proxy.addr, name);
        assert_eq!(subject.as_deref(), Some(want), "curl https://{name}");
        assert!(page, "curl fetched the backend's page through {name}");
    }
    let lines = log_lines(&log, |ls| ls.len() >= asked.len() + 2);
    let routed = |sni: &str| {
        let line = lines
            .iter()
            .find(|l| field(l, "sni") == Some(sni))
            .unwrap_or_else(|| panic!("no line with sni={sni}: {lines:#?}"));
        line.split(' ').nth(4).unwrap().to_string()
    };
    assert_eq!(routed("a.test"), "default");
    assert_eq!(routed("x.y.b.test"), "b");
    assert_eq!(routed("c.test"), "fallback");
    let without_name: Vec<&String> = lines.iter().filter(|l| field(l, "sni").is_none()).collect();
    assert_eq!(without_name.len(), 1, "{lines:#?}");
    assert!(without_name[0].contains(" TCP fallback "), "{lines:#?}");
    let curl_line = lines.iter().find(|l| field(l, "sni") == Some("www.b.test"));
    assert_eq!(
        curl_line.and_then(|l| field(l, "alpn")),
        Some("h2,http/1.1"),
        "curl offers h2 and http/1.1"
    );
}

#[test]
fn plain_bytes_go_to_the_fallback_or_are_closed_with_no_route() {
    let (tls, plain) = (Backend::echo(), Backend::echo());
    let (_dir, log) = access_log("sni-plain");
    let proxy = Settings::to(&[tls.addr])
        .listen(free_addr())
        .sni(&["a.test"])
        .access_log(&log, LogFormat::Text)
        .sni_route("fallback", &["*"], &[plain.addr])
        .start();
    let mut s = connect(proxy.addr);
    round_trip(&mut s, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!((tls.accepted(), plain.accepted()), (0, 1));
    drop(s);

    let strict = Settings::to(&[tls.addr])
        .listen(free_addr())
        .sni(&["a.test"])
        .access_log(&log, LogFormat::Text)
        .start();
    let mut s = connect(strict.addr);
    s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap();
    expect_closed(&mut s, IO_TIMEOUT);
    let line = line_of(&log, s.local_addr().unwrap());
    assert_eq!(field(&line, "ended"), Some("no-route"), "{line}");
    assert_eq!(tls.accepted(), 0, "no upstream is contacted");
    // A name no route takes is closed the same way.
    let mut s = connect(strict.addr);
    s.write_all(CURL_HELLO).unwrap();
    expect_closed(&mut s, IO_TIMEOUT);
    let line = line_of(&log, s.local_addr().unwrap());
    assert_eq!(field(&line, "ended"), Some("no-route"), "{line}");
    assert_eq!(field(&line, "sni"), Some("b.test"), "{line}");
    assert_eq!(tls.accepted(), 0);
}

#[test]
fn broken_oversized_cut_and_silent_hellos_close_without_an_upstream() {
    let backend = Backend::echo();
    let (_dir, log) = access_log("sni-bad");
    let proxy = Settings::to(&[backend.addr])
        .listen(free_addr())
        .sni(&["*"])
        .route(|s| {
            s.preread_max = 512;
            s.preread_timeout = Duration::from_millis(300);
        })
        .access_log(&log, LogFormat::Text)
        .start();
    let ended = |bytes: &[u8], shut: bool| {
        let mut s = connect(proxy.addr);
        s.write_all(bytes).unwrap();
        if shut {
            s.shutdown(Shutdown::Write).unwrap();
        }
        let started = Instant::now();
        expect_closed(&mut s, IO_TIMEOUT);
        let line = line_of(&log, s.local_addr().unwrap());
        (
            field(&line, "ended").unwrap().to_string(),
            started.elapsed(),
        )
    };
    let (reason, _) = ended(&[0x16, 3, 1, 0, 0], false);
    assert_eq!(reason, "bad-client-hello", "a zero-length record");
    let (reason, _) = ended(CURL_HELLO, false);
    assert_eq!(reason, "bad-client-hello", "517 bytes over preread_max 512");
    let (reason, _) = ended(&OPENSSL_HELLO[..100], true);
    assert_eq!(reason, "bad-client-hello", "cut short by a FIN");
    let (reason, waited) = ended(&OPENSSL_HELLO[..100], false);
    assert_eq!(reason, "preread-timeout", "half a hello, then silence");
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}"
    );
    let (reason, _) = ended(b"", false);
    assert_eq!(reason, "preread-timeout", "nothing at all");
    assert_eq!(backend.accepted(), 0, "no upstream was contacted");
    // A whole hello within the limits still goes through.
    let mut s = connect(proxy.addr);
    s.write_all(OPENSSL_HELLO).unwrap();
    assert_eq!(
        read_exact_within(&mut s, OPENSSL_HELLO.len(), IO_TIMEOUT),
        OPENSSL_HELLO
    );
}

#[test]
fn a_hello_written_a_byte_at_a_time_is_routed_and_forwarded_unchanged() {
    let (a, a_streams) = Backend::channel();
    let other = Backend::echo();
    let proxy = Settings::to(&[a.addr])
        .listen(free_addr())
        .sni(&["a.test"])
        .sni_route("fallback", &["*"], &[other.addr])
        .start();
    let mut s = connect(proxy.addr);
    s.set_nodelay(true).unwrap();
    for byte in OPENSSL_HELLO {
        s.write_all(std::slice::from_ref(byte)).unwrap();
    }
    s.write_all(b"after").unwrap();
    let mut upstream = a_streams.next(IO_TIMEOUT);
    let got = read_exact_within(&mut upstream, OPENSSL_HELLO.len() + 5, IO_TIMEOUT);
    assert_eq!(&got[..OPENSSL_HELLO.len()], OPENSSL_HELLO);
    assert_eq!(&got[OPENSSL_HELLO.len()..], b"after");
    assert_eq!(other.accepted(), 0);
}

#[test]
fn with_accept_proxy_the_header_comes_first_and_names_the_client() {
    let (a, a_streams) = Backend::channel();
    let other = Backend::echo();
    let (_dir, log) = access_log("sni-proxy");
    let proxy = Settings::to(&[a.addr])
        .listen(free_addr())
        .route(|s| s.accept_proxy = true)
        .sni(&["a.test"])
        .access_log(&log, LogFormat::Text)
        .sni_route("fallback", &["*"], &[other.addr])
        .start();
    let client: std::net::SocketAddr = "192.0.2.77:4444".parse().unwrap();
    let mut bytes = headers::v1_header(client, proxy.addr);
    bytes.extend_from_slice(OPENSSL_HELLO);
    let mut s = connect(proxy.addr);
    s.write_all(&bytes).unwrap();
    let mut upstream = a_streams.next(IO_TIMEOUT);
    let got = read_exact_within(&mut upstream, OPENSSL_HELLO.len(), IO_TIMEOUT);
    assert_eq!(got, OPENSSL_HELLO, "only the header was taken out");
    drop((s, upstream));
    let line = line_of(&log, client);
    assert_eq!(field(&line, "sni"), Some("a.test"), "{line}");
    assert!(line.contains(" TCP default "), "{line}");
}

/// The inode of the socket listening on `port` in this process.
fn listening_inode(port: u16) -> Option<u64> {
    let own = socket_inodes(std::process::id());
    tcp_rows()
        .into_iter()
        .find(|r| r.state == 0x0A && r.local_port == port && own.contains(&r.inode))
        .map(|r| r.inode)
}

#[test]
fn reload_changes_the_names_of_a_shared_address_without_closing_its_socket() {
    let (a, a_streams) = Backend::channel();
    let (b, b_streams) = Backend::channel();
    let other = Backend::echo();
    let settings = Settings::to(&[a.addr])
        .listen(free_addr())
        .sni(&["a.test"])
        .sni_route("fallback", &["*"], &[other.addr]);
    let proxy = settings.clone().start();
    let socket = listening_inode(proxy.addr.port()).expect("the proxy listens");

    // A client half-way through its hello when the reload lands is routed by the new names.
    let mut early = connect(proxy.addr);
    early.write_all(&CURL_HELLO[..50]).unwrap();
    let mut config = settings.sni_route("b", &["b.test"], &[b.addr]).config();
    config.routes[0].settings.sni = server_names(&["x.test"]);
    proxy.handle().reload(config.prepare().unwrap()).unwrap();
    assert!(
        wait_until(IO_TIMEOUT, || {
            let mut s = connect(proxy.addr);
            s.write_all(OPENSSL_HELLO).unwrap();
            read_exact_within(&mut s, OPENSSL_HELLO.len(), IO_TIMEOUT) == OPENSSL_HELLO
                && other.accepted() > 0
        }),
        "a.test now goes to the fallback (the echo)"
    );
    early.write_all(&CURL_HELLO[50..]).unwrap();
    let mut upstream = b_streams.next(IO_TIMEOUT);
    let got = read_exact_within(&mut upstream, CURL_HELLO.len(), IO_TIMEOUT);
    assert_eq!(got, CURL_HELLO, "the new route b took b.test");
    assert_eq!(
        listening_inode(proxy.addr.port()),
        Some(socket),
        "the shared address kept its socket"
    );
    a_streams.none_within(Duration::from_millis(100));
    let _ = TcpStream::connect(proxy.addr);
}
