//! Operating the proxy: several routes in one loop, reload in place (in-process and by
//! SIGHUP with a file), a broken file on reload, graceful drain on SIGTERM, the access log's
//! ending reasons, and `/metrics` after known traffic, including bad requests to it.

mod common;

use common::peers::TempDir;
use common::*;
use ringproxy::config::{Config, Route, UpstreamSpec};
use ringproxy::proxy::{Handle, Proxy};
use ringproxy::settings::LogFormat;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A proxy loop on a thread, with its handle; stopped on drop.
struct Running {
    handle: Handle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    metrics: Option<SocketAddr>,
}

impl Running {
    fn start(mut config: Config) -> Running {
        setup();
        use_engine(&mut config);
        let proxy =
            Proxy::bind(config.prepare().expect("a valid configuration")).expect("the proxy binds");
        let handle = proxy.handle();
        let metrics = proxy.metrics_addr();
        let thread = thread::spawn(move || proxy.run());
        Running {
            handle,
            thread: Some(thread),
            metrics,
        }
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.handle.local_addrs().expect("the loop answers")
    }

    /// Stops the loop and waits for it (the access log is flushed on the way out).
    fn stop(mut self) {
        self.handle.stop().unwrap();
        let thread = self.thread.take().unwrap();
        assert!(wait_until(Duration::from_secs(5), || thread.is_finished()));
        thread.join().unwrap().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.handle.stop();
    }
}

/// A backend that first sends its one-byte name, then echoes.
fn named(name: u8) -> Backend {
    Backend::spawn(listen_on(v4_any_port()), move |mut s| {
        if s.write_all(&[name]).is_ok() {
            echo(s);
        }
    })
}

fn route(name: &str, listen: SocketAddr, servers: &[SocketAddr]) -> Route {
    Route::new(
        name,
        vec![listen],
        servers.iter().copied().map(UpstreamSpec::from).collect(),
    )
}

fn two_routes(a: &Backend, b: &Backend) -> Config {
    let mut config = Config::new(v4_any_port(), vec![]);
    config.routes = vec![
        route("alpha", v4_any_port(), &[a.addr]),
        route("beta", v4_any_port(), &[b.addr]),
    ];
    config
}

/// Opens a client through `proxy` and reads the backend's name.
fn open(proxy: SocketAddr) -> (TcpStream, u8) {
    let mut s = connect(proxy);
    let name = read_exact_within(&mut s, 1, IO_TIMEOUT)[0];
    (s, name)
}

/// A client that streams through an echo backend in steps, checking every byte.
struct Stream {
    socket: TcpStream,
    pattern: Pattern,
    sent: u64,
}

impl Stream {
    fn open(proxy: SocketAddr, seed: u64) -> Stream {
        let (socket, _) = open(proxy);
        Stream {
            socket,
            pattern: Pattern::new(seed),
            sent: 0,
        }
    }

    /// Sends `n` more bytes and checks they come back.
    fn step(&mut self, n: usize) {
        let chunk = self.pattern.chunk(self.sent, n).to_vec();
        self.socket.write_all(&chunk).expect("stream write");
        let back = read_exact_within(&mut self.socket, chunk.len(), IO_TIMEOUT);
        assert!(self.pattern.matches(self.sent, &back), "stream corrupted");
        self.sent += chunk.len() as u64;
    }

    fn finish(mut self) {
        self.step(4096);
        self.socket.shutdown(Shutdown::Write).unwrap();
        assert!(read_to_eof(&mut self.socket, IO_TIMEOUT).is_empty());
    }
}

fn two_routes_on_one_proxy_reach_their_own_pools() {
    let (a, b) = (named(b'a'), named(b'b'));
    let proxy = Running::start(two_routes(&a, &b));
    let addrs = proxy.addrs();
    assert_eq!(addrs.len(), 2);
    assert_eq!(open(addrs[0]).1, b'a');
    assert_eq!(open(addrs[1]).1, b'b');
}

fn reload_adds_removes_and_changes_routes_without_disturbing_streams() {
    let (a, b, c) = (named(b'a'), named(b'b'), named(b'c'));
    let mut config = two_routes(&a, &b);
    let proxy = Running::start(config.clone());
    let [alpha, beta] = proxy.addrs()[..] else {
        panic!("two listeners expected");
    };
    let mut on_alpha = Stream::open(alpha, 1);
    let mut on_beta = Stream::open(beta, 2);
    on_alpha.step(100_000);
    on_beta.step(100_000);

    // alpha keeps its listener but now forwards to c; beta goes; gamma arrives.
    config.routes[0].listen = vec![alpha];
    config.routes[0].upstreams = vec![UpstreamSpec::from(c.addr)];
    config.routes[0].settings.idle_timeout = Duration::from_secs(60);
    config.routes[1] = route("gamma", v4_any_port(), &[b.addr]);
    proxy.handle.reload(config.prepare().unwrap()).unwrap();
    let addrs = proxy.addrs();
    assert_eq!(addrs.len(), 2, "alpha and gamma listen: {addrs:?}");
    assert_eq!(addrs[0], alpha, "a listener that stays keeps its socket");
    let gamma = addrs[1];

    for _ in 0..5 {
        on_alpha.step(50_000);
        on_beta.step(50_000);
    }
    assert_eq!(
        open(alpha).1,
        b'c',
        "changed pool applies to new connections"
    );
    assert_eq!(open(gamma).1, b'b', "the new route serves");
    let refused = TcpStream::connect_timeout(&beta, IO_TIMEOUT);
    assert!(refused.is_err(), "the removed route's listener is closed");
    on_alpha.finish();
    on_beta.finish();
}

fn reload_that_cannot_bind_changes_nothing() {
    let (a, b) = (named(b'a'), named(b'b'));
    let config = two_routes(&a, &b);
    let proxy = Running::start(config.clone());
    let addrs = proxy.addrs();
    let taken = listen_on(v4_any_port());
    let mut broken = config;
    broken.routes[0].listen = vec![addrs[0]];
    broken.routes[1].listen = vec![addrs[1]];
    broken
        .routes
        .push(route("clash", taken.local_addr().unwrap(), &[b.addr]));
    proxy.handle.reload(broken.prepare().unwrap()).unwrap();
    assert_eq!(proxy.addrs(), addrs, "nothing changed");
    assert_eq!(open(addrs[0]).1, b'a');
}

fn write_config(path: &std::path::Path, listen: SocketAddr, server: SocketAddr) {
    let text = format!(
        "drain_timeout = \"5s\"\n\n[[route]]\nname = \"web\"\nlisten = \"{listen}\"\n\
         servers = [{{ addr = \"{server}\" }}]\n"
    );
    std::fs::write(path, text).unwrap();
}

fn sighup_rereads_the_file_and_a_broken_file_keeps_the_old_config() {
    let (a, b) = (named(b'a'), named(b'b'));
    let tmp = TempDir::new("hup");
    let dir = tmp.path.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ringproxy.toml");
    let port = listen_on(v4_any_port()).local_addr().unwrap();
    write_config(&path, port, a.addr);
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["--config", path.to_str().unwrap()]);
    let proxy = BinProxy::spawn(cmd);
    assert_eq!(open(proxy.addr).1, b'a');

    std::fs::write(&path, "[[route]]\nname = \"web\"\nlisten = 5\n").unwrap();
    proxy.signal(libc::SIGHUP);
    assert!(
        proxy
            .wait_for_line(
                |l| l.contains("keeping the running configuration"),
                IO_TIMEOUT
            )
            .is_some(),
        "log: {:?}",
        proxy.log()
    );
    assert_eq!(
        open(proxy.addr).1,
        b'a',
        "still serving with the old configuration"
    );

    write_config(&path, proxy.addr, b.addr);
    proxy.signal(libc::SIGHUP);
    assert!(
        proxy
            .wait_for_line(|l| l.contains("configuration reloaded"), IO_TIMEOUT)
            .is_some(),
        "log: {:?}",
        proxy.log()
    );
    assert_eq!(open(proxy.addr).1, b'b');
    let _ = std::fs::remove_dir_all(&dir);
}

fn sigterm_drains_open_connections_and_refuses_new_ones() {
    let backend = Backend::echo();
    let mut proxy = BinProxy::start(&["-u", &backend.addr.to_string(), "--drain-timeout", "10s"]);
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"before");
    proxy.signal(libc::SIGTERM);
    assert!(
        proxy
            .wait_for_line(|l| l.contains("listeners closed"), IO_TIMEOUT)
            .is_some(),
        "log: {:?}",
        proxy.log()
    );
    assert!(
        TcpStream::connect_timeout(&proxy.addr, IO_TIMEOUT).is_err(),
        "new connections are refused while draining"
    );
    round_trip(&mut client, b"during the drain");
    client.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_eof(&mut client, IO_TIMEOUT).is_empty());
    let status = proxy
        .wait_exit(IO_TIMEOUT)
        .expect("the proxy exits after draining");
    assert_eq!(status.code(), Some(0));
    assert!(
        proxy
            .log()
            .iter()
            .any(|l| l.contains("drained: 1 connection(s) finished"))
    );
}

fn a_second_signal_stops_at_once_and_the_drain_timeout_cuts() {
    let backend = Backend::echo();
    let mut proxy = BinProxy::start(&["-u", &backend.addr.to_string(), "--drain-timeout", "200ms"]);
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"x");
    proxy.signal(libc::SIGTERM);
    let status = proxy
        .wait_exit(IO_TIMEOUT)
        .expect("the drain timeout ends the proxy");
    assert_eq!(status.code(), Some(0));
    assert!(
        proxy.log().iter().any(|l| l.contains("1 cut")),
        "log: {:?}",
        proxy.log()
    );
    expect_closed(&mut client, IO_TIMEOUT);

    let mut proxy = BinProxy::start(&["-u", &backend.addr.to_string(), "--drain-timeout", "1h"]);
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"y");
    proxy.signal(libc::SIGTERM);
    proxy.wait_for_line(|l| l.contains("listeners closed"), IO_TIMEOUT);
    proxy.signal(libc::SIGTERM);
    let status = proxy
        .wait_exit(IO_TIMEOUT)
        .expect("a second signal stops at once");
    assert_eq!(status.code(), Some(0));
    expect_closed(&mut client, IO_TIMEOUT);
}

fn access_log_names_every_ending() {
    let tmp = TempDir::new("log");
    let dir = tmp.path.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let _ = std::fs::remove_file(&path);
    let (echo_backend, accepted) = Backend::channel();
    let refusing = Refusing::new();
    let mut config = Config::new(v4_any_port(), vec![UpstreamSpec::from(echo_backend.addr)]);
    config.route().settings.idle_timeout = Duration::from_millis(300);
    config.global.access_log = Some(path.to_str().unwrap().to_string());
    let mut failing = route("failing", v4_any_port(), &[refusing.addr]);
    failing.name = "failing".into();
    config.routes.push(failing);
    let proxy = Running::start(config);
    let [main, failing] = proxy.addrs()[..] else {
        panic!("two listeners expected");
    };

    // client-closed: the client finishes first.
    let mut c = connect(main);
    let mut s = accepted.next(IO_TIMEOUT);
    c.write_all(b"hello").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut s, IO_TIMEOUT), b"hello");
    drop(s);
    read_to_eof(&mut c, IO_TIMEOUT);
    // upstream-closed: the backend finishes first.
    let mut c = connect(main);
    let s = accepted.next(IO_TIMEOUT);
    drop(s);
    read_to_eof(&mut c, IO_TIMEOUT);
    drop(c);
    // client-reset.
    let c = connect(main);
    let mut s = accepted.next(IO_TIMEOUT);
    set_reset_on_close(&c);
    drop(c);
    let _ = read_until_end(&mut s, IO_TIMEOUT, 1);
    // upstream-reset: once the pair streams (the byte arrived), the backend resets.
    let mut c = connect(main);
    let mut s = accepted.next(IO_TIMEOUT);
    c.write_all(b"!").unwrap();
    read_exact_within(&mut s, 1, IO_TIMEOUT);
    set_reset_on_close(&s);
    drop(s);
    let _ = read_until_end(&mut c, IO_TIMEOUT, 1);
    // idle-timeout.
    let mut c = connect(main);
    let _s = accepted.next(IO_TIMEOUT);
    expect_closed(&mut c, IO_TIMEOUT);
    // connect-failed.
    let mut c = connect(failing);
    expect_closed(&mut c, IO_TIMEOUT);

    proxy.stop();
    let log = std::fs::read_to_string(&path).unwrap();
    for reason in [
        "client-closed",
        "upstream-closed",
        "client-reset",
        "upstream-reset",
        "idle-timeout",
        "connect-failed",
    ] {
        assert!(
            log.lines().any(|l| l.contains(&format!("ended={reason}"))),
            "no {reason} line in:\n{log}"
        );
    }
    let first = log.lines().next().unwrap();
    assert!(
        first.contains(" default ") && first.contains("up=5"),
        "{first}"
    );
    // The one server it tried did not connect: the line names it (as nginx's $upstream_addr).
    let failed = log
        .lines()
        .find(|l| l.contains(" failing "))
        .expect("a failing line");
    assert!(
        failed.contains(&format!(" tried={} retries=0", refusing.addr)),
        "{failed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn json_access_log_lines_are_objects() {
    let tmp = TempDir::new("json");
    let dir = tmp.path.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.json");
    let backend = Backend::echo();
    let mut config = Config::new(v4_any_port(), vec![UpstreamSpec::from(backend.addr)]);
    config.global.access_log = Some(path.to_str().unwrap().to_string());
    config.global.access_log_format = LogFormat::Json;
    let proxy = Running::start(config);
    let mut c = connect(proxy.addrs()[0]);
    round_trip(&mut c, b"0123456789");
    c.shutdown(Shutdown::Write).unwrap();
    read_to_eof(&mut c, IO_TIMEOUT);
    proxy.stop();
    let log = std::fs::read_to_string(&path).unwrap();
    let line = log.lines().next().expect("one line");
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    for key in [
        "\"route\":\"default\"",
        "\"up\":10",
        "\"ended\":\"client-closed\"",
    ] {
        assert!(line.contains(key), "{key} missing in {line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `request` to the metrics address and returns the whole response.
fn http(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = connect(addr);
    s.write_all(request).unwrap();
    let (data, _) = read_until_end(&mut s, IO_TIMEOUT, 1 << 20);
    String::from_utf8_lossy(&data).into_owned()
}

fn metrics_report_known_traffic_and_reject_bad_requests() {
    let backend = Backend::echo();
    let refusing = Refusing::new();
    let mut config = Config::new(
        v4_any_port(),
        vec![
            UpstreamSpec::from(refusing.addr),
            UpstreamSpec::from(backend.addr),
        ],
    );
    config.global.metrics = Some(v4_any_port());
    let proxy = Running::start(config);
    let addr = proxy.addrs()[0];
    for _ in 0..3 {
        let mut c = connect(addr);
        round_trip(&mut c, &[7u8; 1000]);
        c.shutdown(Shutdown::Write).unwrap();
        read_to_eof(&mut c, IO_TIMEOUT);
    }
    // A connection still open counts its bytes already.
    let mut open = connect(addr);
    round_trip(&mut open, &[8u8; 500]);
    let metrics = proxy.metrics.expect("metrics address");
    let server = backend.addr.to_string();
    let dead = refusing.addr.to_string();
    let expected = [
        "ringproxy_connections_accepted_total{worker=\"0\",route=\"default\"} 4".to_string(),
        "ringproxy_connections_active{worker=\"0\",route=\"default\"} 1".to_string(),
        "ringproxy_connections_closed_total{worker=\"0\",route=\"default\",reason=\"client-closed\"} 3"
            .to_string(),
        format!("ringproxy_upstream_connects_total{{worker=\"0\",route=\"default\",server=\"{server}\"}} 4"),
        format!(
            "ringproxy_upstream_bytes_total{{worker=\"0\",route=\"default\",server=\"{server}\",direction=\"to_upstream\"}} 3500"
        ),
        format!("ringproxy_upstream_connect_failures_total{{worker=\"0\",route=\"default\",server=\"{dead}\"}} 1"),
        format!("ringproxy_upstream_up{{worker=\"0\",route=\"default\",server=\"{dead}\"}} 0"),
        "ringproxy_retries_total{worker=\"0\",route=\"default\"} 1".to_string(),
    ];
    // The proxy sees the last close just after the client does; poll the scrape briefly.
    let mut body = String::new();
    let complete = wait_until(IO_TIMEOUT, || {
        body = http(metrics, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        expected.iter().all(|line| body.contains(line.as_str()))
    });
    assert!(
        complete,
        "missing lines {:?} in:\n{body}",
        expected
            .iter()
            .filter(|l| !body.contains(l.as_str()))
            .collect::<Vec<_>>()
    );
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("ringproxy_io_read_bytes_total{worker=\"0\"}"));
    assert!(body.contains("ringproxy_ring_occupancy_ratio_bucket"));

    assert!(http(metrics, b"GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(http(metrics, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(http(metrics, b"GET /metrics SPDY/3\r\n\r\n").starts_with("HTTP/1.1 400"));
    let oversized = vec![b'a'; 8192];
    assert!(http(metrics, &oversized).starts_with("HTTP/1.1 400"));
    // A client that says nothing is closed by the metrics timeout, and the proxy still serves.
    let mut silent = connect(metrics);
    let mut byte = [0u8; 1];
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(matches!(silent.read(&mut byte), Ok(0) | Err(_)));
    let mut c = connect(addr);
    round_trip(&mut c, b"still serving");
}

fn reload_applies_a_new_idle_timeout_to_new_connections_only() {
    let backend = Backend::echo();
    let mut config = Config::new(v4_any_port(), vec![UpstreamSpec::from(backend.addr)]);
    config.route().settings.idle_timeout = Duration::from_millis(400);
    let proxy = Running::start(config.clone());
    let addr = proxy.addrs()[0];
    let mut old = connect(addr);
    round_trip(&mut old, b"old");
    config.route().listen = vec![addr];
    config.route().settings.idle_timeout = Duration::from_secs(60);
    proxy.handle.reload(config.prepare().unwrap()).unwrap();
    assert_eq!(proxy.addrs(), vec![addr], "the reload is applied");
    let mut new = connect(addr);
    round_trip(&mut new, b"new");
    // The old connection keeps the timeout it started with, the new one gets the new one.
    expect_closed(&mut old, IO_TIMEOUT);
    expect_silence(&mut new, Duration::from_millis(600));
    round_trip(&mut new, b"still open");
}

fn sigusr1_reopens_the_access_log_for_rotation() {
    let tmp = TempDir::new("rotate");
    let dir = tmp.path.clone();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let rotated = dir.join("access.log.1");
    let _ = std::fs::remove_file(&path);
    let backend = Backend::echo();
    let proxy = BinProxy::start(&[
        "-u",
        &backend.addr.to_string(),
        "--access-log",
        path.to_str().unwrap(),
    ]);
    let exchange = || {
        let mut c = connect(proxy.addr);
        round_trip(&mut c, b"x");
        c.shutdown(Shutdown::Write).unwrap();
        read_to_eof(&mut c, IO_TIMEOUT);
    };
    let lines = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    exchange();
    assert!(
        wait_until(IO_TIMEOUT, || lines(&path) == 1),
        "first line flushed"
    );
    std::fs::rename(&path, &rotated).unwrap();
    proxy.signal(libc::SIGUSR1);
    assert!(
        proxy
            .wait_for_line(|l| l.contains("reopening the access log"), IO_TIMEOUT)
            .is_some()
    );
    // The command reaches the loop right after the log line; a connection made after the
    // new file appears is certainly written there.
    assert!(
        wait_until(IO_TIMEOUT, || path.exists()),
        "the log is reopened at its path"
    );
    exchange();
    assert!(
        wait_until(IO_TIMEOUT, || lines(&path) == 1),
        "new lines go to the new file"
    );
    assert_eq!(lines(&rotated), 1, "the rotated file keeps what it had");
    let _ = std::fs::remove_dir_all(&dir);
}

fn invalid_configurations_are_refused_at_start_and_on_reload() {
    let backend = Backend::echo();
    let mut no_listen = Config::new(v4_any_port(), vec![UpstreamSpec::from(backend.addr)]);
    no_listen.route().listen.clear();
    let err = no_listen
        .prepare()
        .expect_err("no listen address is refused");
    assert!(err.to_string().contains("no listen address"), "{err}");

    let config = Config::new(v4_any_port(), vec![UpstreamSpec::from(backend.addr)]);
    let proxy = Running::start(config.clone());
    let addrs = proxy.addrs();
    let mut twice = config;
    twice.route().listen = addrs.clone();
    twice.routes.push(twice.routes[0].clone());
    let err = twice.prepare().expect_err("a name used twice is refused");
    assert!(err.to_string().contains("unique route name"), "{err}");
    assert_eq!(
        proxy.addrs(),
        addrs,
        "an invalid reload never reaches the loop"
    );
    let mut c = connect(addrs[0]);
    round_trip(&mut c, b"still serving");
}

each_engine!(
    two_routes_on_one_proxy_reach_their_own_pools,
    reload_adds_removes_and_changes_routes_without_disturbing_streams,
    reload_that_cannot_bind_changes_nothing,
    sighup_rereads_the_file_and_a_broken_file_keeps_the_old_config,
    sigterm_drains_open_connections_and_refuses_new_ones,
    a_second_signal_stops_at_once_and_the_drain_timeout_cuts,
    access_log_names_every_ending,
    json_access_log_lines_are_objects,
    metrics_report_known_traffic_and_reject_bad_requests,
    reload_applies_a_new_idle_timeout_to_new_connections_only,
    sigusr1_reopens_the_access_log_for_rotation,
    invalid_configurations_are_refused_at_start_and_on_reload,
);
