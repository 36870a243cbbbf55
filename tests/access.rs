//! Access control and per-client limits through an in-process proxy, with clients bound to
//! different loopback source addresses (127.0.0.x, ::1): allow/deny, the connection limit
//! per client (the 21st from one address refused while another address is served), the
//! connection rate, max_lifetime ending connections with FIN both ways, and refusals in
//! the metrics and the access log without any upstream contacted.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

/// An access-log path in a directory of its own, removed on drop.
struct LogFile(PathBuf);

impl LogFile {
    fn new(name: &str) -> LogFile {
        let dir = std::env::temp_dir().join(format!("ringproxy-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let _ = std::fs::remove_file(&path);
        LogFile(path)
    }

    fn path(&self) -> String {
        self.0.to_str().unwrap().to_string()
    }

    /// The lines written so far (the proxy flushes at exit).
    fn lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.0).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        let _ = self.0.parent().map(std::fs::remove_dir_all);
    }
}

/// A connection from `from`; a refused client may already be reset while connecting.
fn from(addr: &str, to: std::net::SocketAddr) -> Option<TcpStream> {
    try_connect_from(ip(addr), to).ok()
}

/// True when a connection from `addr` to `to` is served: one echoed round trip.
fn served_from(addr: &str, to: std::net::SocketAddr) -> bool {
    from(addr, to).is_some_and(|mut c| served(&mut c))
}

/// True when the proxy served `c`: one echoed round trip.
fn served(c: &mut TcpStream) -> bool {
    if c.write_all(b"ping").is_err() {
        return false;
    }
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).is_ok() && &buf == b"ping"
}

#[test]
fn allow_and_deny_by_source_address() {
    let (backend, accepted) = Backend::channel();
    let log = LogFile::new("allow");
    let proxy = Settings::to(&[backend.addr])
        .route(|s| {
            s.allow = nets(&["127.0.0.0/8"]);
            s.deny = nets(&["127.0.0.3/32"]);
        })
        .global(|g| g.access_log = Some(log.path()))
        .start();
    let mut allowed = connect_from(ip("127.0.0.2"), proxy.addr);
    let mut upstream = accepted.next(IO_TIMEOUT);
    allowed.write_all(b"hi").unwrap();
    assert_eq!(read_exact_within(&mut upstream, 2, IO_TIMEOUT), b"hi");

    if let Some(mut denied) = from("127.0.0.3", proxy.addr) {
        assert_ne!(expect_closed(&mut denied, IO_TIMEOUT), Ending::TimedOut);
    }
    accepted.none_within(Duration::from_millis(200));
    proxy.stop();
    let lines = log.lines();
    let refused: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("ended=denied"))
        .collect();
    assert_eq!(refused.len(), 1, "{lines:?}");
    assert!(refused[0].starts_with("127.0.0.3:"), "{}", refused[0]);
    assert!(
        refused[0].contains(" - up=0 down=0"),
        "no upstream: {}",
        refused[0]
    );
}

#[test]
fn an_address_outside_allow_is_refused_ipv6_too() {
    let backend = Backend::echo();
    let proxy = Settings::to(&[backend.addr])
        .listen(v6_any_port())
        .route(|s| s.allow = nets(&["2001:db8::/32"]))
        .start();
    assert!(!served_from("::1", proxy.addr), "::1 is not allowed");
    proxy.stop();
}

#[test]
fn the_twenty_first_connection_from_one_address_is_refused_while_another_is_served() {
    let backend = Backend::echo();
    let proxy = Settings::to(&[backend.addr])
        .route(|s| s.max_conns_per_ip = Some(20))
        .global(|g| g.metrics = Some(v4_any_port()))
        .start();
    let mut held: Vec<TcpStream> = (0..20)
        .map(|_| connect_from(ip("127.0.0.2"), proxy.addr))
        .collect();
    for c in &mut held {
        assert!(served(c), "one of the first 20");
    }
    assert!(!served_from("127.0.0.2", proxy.addr), "the 21st is refused");
    assert!(
        served_from("127.0.0.4", proxy.addr),
        "another address is served"
    );

    // Once one of the 20 ends, its client may connect again.
    let mut first = held.remove(0);
    first.shutdown(Shutdown::Write).unwrap();
    read_to_eof(&mut first, IO_TIMEOUT);
    let again = wait_until(IO_TIMEOUT, || served_from("127.0.0.2", proxy.addr));
    assert!(again, "a released slot is free again");
    let metrics = http_get(proxy.metrics.unwrap(), "/metrics");
    assert!(
        metrics.contains("ringproxy_connections_closed_total{worker=\"0\",route=\"default\",reason=\"limited\"} 1"),
        "{metrics}"
    );
    proxy.stop();
}

#[test]
fn the_connection_rate_admits_a_burst_then_the_rate() {
    let backend = Backend::echo();
    let proxy = Settings::to(&[backend.addr])
        .route(|s| {
            s.conn_rate_per_ip = Some(ringproxy::limits::Rate {
                count: 5,
                per: Duration::from_secs(1),
            })
        })
        .start();
    for i in 0..5 {
        assert!(
            served_from("127.0.0.5", proxy.addr),
            "connection {i} of the burst"
        );
    }
    assert!(!served_from("127.0.0.5", proxy.addr), "the burst is spent");
    assert!(
        served_from("127.0.0.6", proxy.addr),
        "another client has its own bucket"
    );
    // A token comes back every 200 ms.
    let refilled = wait_until(Duration::from_secs(2), || {
        served_from("127.0.0.5", proxy.addr)
    });
    assert!(refilled);
    proxy.stop();
}

#[test]
fn max_lifetime_ends_a_connection_with_fin_both_ways() {
    let (backend, accepted) = Backend::channel();
    let log = LogFile::new("lifetime");
    let proxy = Settings::to(&[backend.addr])
        .route(|s| s.max_lifetime = Some(Duration::from_millis(300)))
        .global(|g| g.access_log = Some(log.path()))
        .start();
    let mut c = connect(proxy.addr);
    let mut s = accepted.next(IO_TIMEOUT);
    c.write_all(b"before").unwrap();
    assert_eq!(read_exact_within(&mut s, 6, IO_TIMEOUT), b"before");
    s.write_all(b"reply").unwrap();
    assert_eq!(read_exact_within(&mut c, 5, IO_TIMEOUT), b"reply");
    assert_eq!(
        read_until_end(&mut c, IO_TIMEOUT, 1).1,
        Ending::Eof,
        "FIN to the client"
    );
    assert_eq!(
        read_until_end(&mut s, IO_TIMEOUT, 1).1,
        Ending::Eof,
        "FIN to the upstream"
    );
    drop((c, s));
    proxy.stop();
    let lines = log.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ended=max-lifetime") && l.contains("up=6 down=5")),
        "{lines:?}"
    );
}

/// Bytes each limited transfer moves: 12 MiB at 4 MiB/s is a 4 MiB burst, then 2 s.
const TRANSFER: u64 = 12 << 20;
const RATE: usize = 4 << 20;

#[test]
fn upload_and_download_rates_hold_after_a_one_second_burst() {
    // Upstream: a byte 'u' starts an upload (the backend reads TRANSFER bytes and answers
    // with one byte), 'd' a download (the backend sends TRANSFER bytes).
    let backend = Backend::spawn(listen_on(v4_any_port()), |mut s| {
        let mut kind = [0u8; 1];
        if s.read_exact(&mut kind).is_err() {
            return;
        }
        let pattern = Pattern::new(9);
        if kind[0] == b'u' {
            let (got, _) = pattern.read_from(&mut s, TRANSFER, Duration::from_secs(20));
            if got == TRANSFER {
                let _ = s.write_all(b"!");
            }
        } else {
            let _ = pattern.write_to(&mut s, TRANSFER);
        }
    });
    let proxy = Settings::to(&[backend.addr])
        .route(|s| {
            s.upload_rate = Some(RATE);
            s.download_rate = Some(RATE);
        })
        .start();
    let addr = proxy.addr;
    let timed = |kind: u8| {
        std::thread::spawn(move || {
            let mut c = connect(addr);
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            c.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
            let start = std::time::Instant::now();
            c.write_all(&[kind]).unwrap();
            let pattern = Pattern::new(9);
            if kind == b'u' {
                pattern.write_to(&mut c, TRANSFER).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
                read_exact_within(&mut c, 1, Duration::from_secs(20));
            } else {
                let (got, _) = pattern.read_from(&mut c, TRANSFER, Duration::from_secs(20));
                assert_eq!(got, TRANSFER, "every byte, in order");
            }
            start.elapsed()
        })
    };
    let transfers: Vec<_> = [b'u', b'u', b'd', b'd'].map(timed).into_iter().collect();
    let expected = (TRANSFER - RATE as u64) as f64 / RATE as f64;
    // Never faster than the rate allows (10% for timing); slower only within reason, as a
    // loaded machine may not keep four debug-built transfers at 4 MiB/s each. The accuracy
    // itself is measured by `cargo bench --bench compare -- --workloads bandwidth`.
    for (i, t) in transfers.into_iter().enumerate() {
        let secs = t.join().unwrap().as_secs_f64();
        assert!(
            (0.9 * expected..=1.5 * expected).contains(&secs),
            "transfer {i}: {secs:.2} s, expected {expected:.2} s (-10%, +50%)"
        );
    }
    proxy.stop();
}
