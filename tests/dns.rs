//! Upstream discovery in DNS against a real server (dnsmasq on a loopback port): a followed
//! name whose address set changes while clients connect; short and long TTLs; SRV weights
//! and priorities; the DNS server stopped (the pool is kept); NXDOMAIN after the hold; a
//! name absent at start; names not followed going through `resolvers` too; the metrics.
//!
//! Backends are told apart by the loopback address they listen on (127.0.0.2, 127.0.0.3,
//! same port), since DNS gives addresses and the port comes from the configuration.

mod common;

use common::dns::{Dnsmasq, Record};
use common::logs::scrape;
use common::peers::{Peer, TempDir, have};
use common::*;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;

/// A backend on `ip:port` that sends its one-byte name, then echoes.
fn named_on(ip: &str, port: u16, name: u8) -> Backend {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    Backend::spawn(listen_on(addr), move |mut s| {
        if s.write_all(&[name]).is_ok() {
            echo(s);
        }
    })
}

/// A port free on both 127.0.0.2 and 127.0.0.3.
fn shared_port() -> u16 {
    loop {
        let a = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.3", port)).is_ok() {
            return port;
        }
    }
}

/// The name of the backend a new client through `proxy` reaches, or `None` if the proxy
/// closes it without one.
fn reached(proxy: SocketAddr) -> Option<u8> {
    let mut s = connect(proxy);
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut name = [0];
    match s.read(&mut name) {
        Ok(1) => Some(name[0]),
        _ => None,
    }
}

/// Runs the binary on a configuration file whose text `config` builds from its directory.
fn proxy_with(dir: &TempDir, config: &str) -> BinProxy {
    let path = dir.join("ringproxy.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["--config", path.to_str().unwrap()]);
    BinProxy::spawn(cmd)
}

/// A file with one route on a free port to `servers` (TOML server tables), following DNS
/// through `dns`, with `extra` global keys.
fn config(dns: &Dnsmasq, servers: &str, extra: &str) -> String {
    format!(
        "resolvers = [\"{}\"]\nresolve_interval = \"100ms\"\n{extra}\n[[route]]\nname = \"app\"\n\
         listen = \"127.0.0.1:0\"\nservers = [{servers}]\n",
        dns.addr
    )
}

#[test]
fn a_followed_name_changes_while_clients_connect() {
    if !have(&[Peer::Dnsmasq]) {
        return;
    }
    let port = shared_port();
    let (a, b) = (
        named_on("127.0.0.2", port, b'a'),
        named_on("127.0.0.3", port, b'b'),
    );
    let mut dns = Dnsmasq::start(&[Record::Host("web.test", "127.0.0.2", 1)]);
    let dir = TempDir::new("dns-change");
    let servers = format!("{{ addr = \"web.test:{port}\", resolve = true }}");
    let metrics = free_addr();
    let extra = format!("metrics = \"{metrics}\"");
    let proxy = proxy_with(&dir, &config(&dns, &servers, &extra));
    assert_eq!(reached(proxy.addr), Some(b'a'));
    // A client on the old address keeps its connection through the change.
    let mut early = connect(proxy.addr);
    assert_eq!(read_exact_within(&mut early, 1, IO_TIMEOUT), b"a");

    dns.restart(&[Record::Host("web.test", "127.0.0.3", 1)]);
    assert!(
        wait_until(IO_TIMEOUT, || reached(proxy.addr) == Some(b'b')),
        "the new address serves within the TTL: {:?}",
        proxy.log()
    );
    round_trip(&mut early, b"still here");
    let line = proxy
        .wait_for_line(
            |l| l.contains("upstream name web.test: added 127.0.0.3"),
            IO_TIMEOUT,
        )
        .expect("the change is logged");
    assert!(line.contains("removed 127.0.0.2"), "{line}");
    let page = scrape(metrics);
    assert!(
        page.contains("ringproxy_dns_addresses{worker=\"0\",name=\"web.test\"} 1"),
        "{page}"
    );
    assert!(page.contains("ringproxy_dns_answers_total{worker=\"0\",name=\"web.test\"}"));
    drop((a, b));
}

#[test]
fn a_short_ttl_changes_quickly_and_a_long_one_does_not() {
    if !have(&[Peer::Dnsmasq]) {
        return;
    }
    let port = shared_port();
    let (_a, _b) = (
        named_on("127.0.0.2", port, b'a'),
        named_on("127.0.0.3", port, b'b'),
    );
    let records = |ip: &'static str| {
        [
            Record::Host("short.test", ip, 1),
            Record::Host("long.test", ip, 3600),
        ]
    };
    let mut dns = Dnsmasq::start(&records("127.0.0.2"));
    let dir = TempDir::new("dns-ttl");
    let (short, long) = (free_addr(), free_addr());
    let text = format!(
        "resolvers = [\"{}\"]\nresolve_interval = \"100ms\"\n\
         [[route]]\nname = \"short\"\nlisten = \"{short}\"\n\
         servers = [{{ addr = \"short.test:{port}\", resolve = true }}]\n\
         [[route]]\nname = \"long\"\nlisten = \"{long}\"\n\
         servers = [{{ addr = \"long.test:{port}\", resolve = true }}]\n",
        dns.addr
    );
    let _proxy = proxy_with(&dir, &text);
    assert_eq!((reached(short), reached(long)), (Some(b'a'), Some(b'a')));
    dns.restart(&records("127.0.0.3"));
    assert!(wait_until(IO_TIMEOUT, || reached(short) == Some(b'b')));
    assert_eq!(reached(long), Some(b'a'), "a long TTL is still in force");
}

#[test]
fn srv_priorities_make_backups_and_weights_shares() {
    if !have(&[Peer::Dnsmasq]) {
        return;
    }
    let (a, b, c) = (named(b'a'), named(b'b'), named(b'c'));
    let srv = "_app._tcp.test";
    let dns = Dnsmasq::start(&[
        Record::Host("a.test", "127.0.0.1", 60),
        Record::Host("b.test", "127.0.0.1", 60),
        Record::Host("c.test", "127.0.0.1", 60),
        Record::Srv(srv, "a.test", a.addr.port(), 0, 3),
        Record::Srv(srv, "b.test", b.addr.port(), 0, 1),
        Record::Srv(srv, "c.test", c.addr.port(), 10, 5),
    ]);
    let dir = TempDir::new("dns-srv");
    let proxy = proxy_with(&dir, &config(&dns, &format!("{{ srv = \"{srv}\" }}"), ""));
    let mut counts = [0; 3];
    for _ in 0..40 {
        let name = reached(proxy.addr).expect("a backend");
        counts[usize::from(name - b'a')] += 1;
    }
    assert_eq!(
        counts,
        [30, 10, 0],
        "weights 3:1, the priority-10 record is a backup"
    );
    drop((a, b));
    assert!(
        wait_until(IO_TIMEOUT, || reached(proxy.addr) == Some(b'c')),
        "with the primaries gone the backup serves"
    );
}

#[test]
fn the_dns_server_stopped_keeps_the_pool_and_nxdomain_empties_it_after_the_hold() {
    if !have(&[Peer::Dnsmasq]) {
        return;
    }
    let a = named(b'a');
    let mut dns = Dnsmasq::start(&[Record::Host("web.test", "127.0.0.1", 1)]);
    let dir = TempDir::new("dns-outage");
    let metrics = free_addr();
    let servers = format!(
        "{{ addr = \"web.test:{}\", resolve = true }}",
        a.addr.port()
    );
    let extra = format!("metrics = \"{metrics}\"\nresolve_hold = \"1s\"");
    let proxy = proxy_with(&dir, &config(&dns, &servers, &extra));
    assert_eq!(reached(proxy.addr), Some(b'a'));

    dns.stop();
    let timeouts =
        "ringproxy_dns_failures_total{worker=\"0\",name=\"web.test\",reason=\"timeout\"}";
    assert!(
        wait_until(IO_TIMEOUT, || scrape(metrics).contains(timeouts)),
        "the failures are counted"
    );
    assert_eq!(
        reached(proxy.addr),
        Some(b'a'),
        "a DNS outage keeps the pool"
    );

    dns.restart(&[]);
    assert!(
        wait_until(IO_TIMEOUT, || reached(proxy.addr).is_none()),
        "after the hold the name's addresses go and clients are closed at once"
    );
    let page = scrape(metrics);
    assert!(
        page.contains("ringproxy_dns_addresses{worker=\"0\",name=\"web.test\"} 0"),
        "{page}"
    );
    assert!(page.contains("reason=\"nxdomain\""), "{page}");
}

#[test]
fn a_name_absent_at_start_is_followed_until_it_appears() {
    if !have(&[Peer::Dnsmasq]) {
        return;
    }
    let a = named(b'a');
    let mut dns = Dnsmasq::start(&[]);
    let dir = TempDir::new("dns-absent");
    let servers = format!(
        "{{ addr = \"late.test:{}\", resolve = true }}",
        a.addr.port()
    );
    let proxy = proxy_with(&dir, &config(&dns, &servers, ""));
    assert!(
        proxy
            .wait_for_line(|l| l.contains("late.test has no address yet"), IO_TIMEOUT)
            .is_some()
    );
    assert_eq!(
        reached(proxy.addr),
        None,
        "closed at once, nothing to connect to"
    );
    dns.restart(&[Record::Host("late.test", "127.0.0.1", 1)]);
    assert!(wait_until(IO_TIMEOUT, || reached(proxy.addr) == Some(b'a')));
}

#[test]
fn names_not_followed_go_through_the_resolvers_too() {
    if !have(&[Peer::Dnsmasq]) {
        return;
    }
    let a = named(b'a');
    let dns = Dnsmasq::start(&[Record::Host("static.test", "127.0.0.1", 60)]);
    let dir = TempDir::new("dns-static");
    let servers = format!("{{ addr = \"static.test:{}\" }}", a.addr.port());
    let proxy = proxy_with(&dir, &config(&dns, &servers, ""));
    assert_eq!(reached(proxy.addr), Some(b'a'));
    drop(proxy);
    // A name that is not followed and does not resolve stops the start.
    let path = dir.join("missing.toml");
    let servers = format!("{{ addr = \"missing.test:{}\" }}", a.addr.port());
    std::fs::write(&path, config(&dns, &servers, "")).unwrap();
    let out = Command::new(bin())
        .args(["--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot resolve upstream missing.test"),
        "{stderr}"
    );
    assert!(stderr.contains("NXDOMAIN"), "{stderr}");
}

/// A backend on a free loopback port that sends its one-byte name, then echoes.
fn named(name: u8) -> Backend {
    named_on("127.0.0.1", 0, name)
}
