//! What a route sets on the proxy's sockets: the source address of upstream connections
//! (`bind_source` with `IP_BIND_ADDRESS_NO_PORT`, the server's winning over the route's, the
//! wrong family refused at start), and the kernel buffer sizes of both sockets (`rcvbuf`,
//! `sndbuf`).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::IpAddr;

/// The address the backend sees for a connection through `proxy`.
fn source_seen(proxy: &TestProxy, accepted: &Accepted) -> IpAddr {
    let mut client = connect(proxy.addr);
    client.write_all(b"x").unwrap();
    let mut upstream = accepted.next(IO_TIMEOUT);
    let mut byte = [0u8; 1];
    upstream.read_exact(&mut byte).unwrap();
    upstream.peer_addr().unwrap().ip()
}

#[test]
fn bind_source_is_the_address_the_backend_sees() {
    let (backend, accepted) = Backend::channel();
    let proxy = Settings::to(&[backend.addr])
        .route(|s| s.bind_source = Some("127.0.0.2".parse().unwrap()))
        .start();
    for _ in 0..3 {
        assert_eq!(
            source_seen(&proxy, &accepted),
            "127.0.0.2".parse::<IpAddr>().unwrap()
        );
    }
    // The port was left to connect(), not reserved by bind().
    let no_port = |s: &socket2::SockRef| {
        use nix::sys::socket::{getsockopt, sockopt::IpBindAddressNoPort};
        getsockopt(&**s, IpBindAddressNoPort).ok()
    };
    let (_, upstream_side) = proxy_socket_options(&proxy, backend.addr, &accepted, no_port);
    assert_eq!(upstream_side.flatten(), Some(true));
    proxy.stop();
}

#[test]
fn a_servers_bind_source_wins_over_the_routes() {
    let (backend, accepted) = Backend::channel();
    let proxy = Settings::to(&[backend.addr])
        .route(|s| s.bind_source = Some("127.0.0.3".parse().unwrap()))
        .server(0, |o| o.bind_source = Some("127.0.0.2".parse().unwrap()))
        .start();
    assert_eq!(
        source_seen(&proxy, &accepted),
        "127.0.0.2".parse::<IpAddr>().unwrap()
    );
    proxy.stop();
}

#[test]
fn a_source_of_the_other_family_is_a_configuration_error() {
    let route = run_bin(
        &[
            "-l",
            "127.0.0.1:0",
            "-u",
            "127.0.0.1:1",
            "--bind-source",
            "::1",
        ],
        IO_TIMEOUT,
    );
    assert_eq!(route.status.code(), Some(2), "{}", route.stderr);
    assert!(
        route.stderr.contains("bind_source") && route.stderr.contains("127.0.0.1:1 is IPv4"),
        "{}",
        route.stderr
    );
    let server = run_bin(
        &["-l", "127.0.0.1:0", "-u", "[::1]:1,bind-source=127.0.0.2"],
        IO_TIMEOUT,
    );
    assert_eq!(server.status.code(), Some(2), "{}", server.stderr);
    assert!(
        server.stderr.contains("[::1]:1 is IPv6"),
        "{}",
        server.stderr
    );
}

#[test]
fn rcvbuf_and_sndbuf_are_set_on_both_proxy_sockets() {
    let sizes = |s: &socket2::SockRef| (s.recv_buffer_size().ok(), s.send_buffer_size().ok());
    let (backend, accepted) = Backend::channel();
    let proxy = Settings::to(&[backend.addr])
        .route(|s| {
            s.rcvbuf = Some(40 << 10);
            s.sndbuf = Some(24 << 10);
        })
        .start();
    let (client_side, upstream_side) = proxy_socket_options(&proxy, backend.addr, &accepted, sizes);
    // The kernel doubles what it is asked for (half is for its own bookkeeping).
    let expected = (Some(80 << 10), Some(48 << 10));
    assert_eq!(client_side, Some(expected), "the accepted socket");
    assert_eq!(upstream_side, Some(expected), "the upstream socket");
    proxy.stop();
}
