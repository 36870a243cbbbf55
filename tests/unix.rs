//! Unix domain stream sockets on both sides: a Unix client to a TCP backend, a TCP client to
//! a Unix backend, Unix on both sides with each engine (splice included), balancing across
//! Unix servers, the PROXY v2 header of a Unix client (AF_UNIX); the socket file's life: a
//! stale file replaced at start, a live listener or a regular file at the path stopping the
//! start (exit 1, naming the path), the file removed on SIGTERM (while the drain lets open
//! connections finish), kept with its inode by a reload that keeps the listener, removed by
//! one that drops it, `unix_mode` applied; and the configuration errors of Unix routes.
//!
//! Every path lives in a directory the test creates under the system's temp directory.

mod common;

use common::*;
use ringproxy::config::{Config, Route, UpstreamSpec};
use ringproxy::engine::EngineMode;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// A directory of its own for one test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rp-{}-{n}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An echo server on a Unix socket at `path`, answering each connection with `tag` first
/// when one is given; counts its connections.
fn unix_echo(path: &Path, tag: Option<u8>) -> Arc<AtomicUsize> {
    let listener = UnixListener::bind(path).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            seen.fetch_add(1, Ordering::SeqCst);
            thread::spawn(move || {
                if let Some(tag) = tag {
                    let _ = stream.write_all(&[tag]);
                }
                let mut buf = [0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
    count
}

use std::sync::Arc;

fn unix_connect(path: &Path) -> UnixStream {
    let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {path:?}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

fn unix_round_trip(s: &mut UnixStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
}

/// A route listening on 127.0.0.1:0 and on `unix` (when given), forwarding to `servers`.
fn route(unix: Option<&Path>, servers: &[&str], engine: EngineMode) -> Config {
    let servers = servers.iter().map(|s| UpstreamSpec::new(*s)).collect();
    let mut route = Route::new("web", vec![v4_any_port()], servers);
    route.listen_unix = unix.map(Path::to_path_buf).into_iter().collect();
    route.settings.engine = engine;
    let mut config = Config::new(v4_any_port(), Vec::new());
    config.routes = vec![route];
    config
}

const ENGINES: [EngineMode; 3] = [EngineMode::Ring, EngineMode::Splice, EngineMode::Auto];

#[test]
fn a_unix_client_reaches_a_tcp_backend() {
    let dir = TempDir::new("client");
    let sock = dir.path("web.sock");
    let backend = Backend::echo();
    let proxy = TestProxy::start(route(
        Some(&sock),
        &[&backend.addr.to_string()],
        EngineMode::Ring,
    ));
    let mut client = unix_connect(&sock);
    unix_round_trip(&mut client, b"over a unix socket to tcp");
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "FIN passed on: {rest:?}");
    proxy.stop();
}

#[test]
fn a_tcp_client_reaches_a_unix_backend() {
    let dir = TempDir::new("server");
    let app = dir.path("app.sock");
    unix_echo(&app, None);
    let server = format!("unix:{}", app.display());
    let proxy = TestProxy::start(route(None, &[&server], EngineMode::Ring));
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"over tcp to a unix socket");
    proxy.stop();
}

#[test]
fn unix_on_both_sides_moves_bulk_with_every_engine() {
    for engine in ENGINES {
        let dir = TempDir::new("both");
        let (sock, app) = (dir.path("web.sock"), dir.path("app.sock"));
        unix_echo(&app, None);
        let server = format!("unix:{}", app.display());
        let proxy = TestProxy::start(route(Some(&sock), &[&server], engine));
        let client = unix_connect(&sock);
        // 8 MiB out and back at once: bulk, so `auto` moves to pipes and `splice` splices
        // between two Unix sockets.
        let total = 8u64 << 20;
        let pattern = Pattern::new(9);
        let mut writer = client.try_clone().unwrap();
        let sender = thread::spawn(move || {
            Pattern::new(9).write_to(&mut writer, total).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut reader = client;
        let mut pos = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(
                pattern.matches(pos, &buf[..n]),
                "{engine:?}: bytes out of order at {pos}"
            );
            pos += n as u64;
        }
        sender.join().unwrap();
        assert_eq!(pos, total, "{engine:?}: every byte came back");
        proxy.stop();
    }
}

#[test]
fn round_robin_spreads_clients_over_unix_servers() {
    let dir = TempDir::new("balance");
    let (a, b) = (dir.path("a.sock"), dir.path("b.sock"));
    let (seen_a, seen_b) = (unix_echo(&a, Some(b'a')), unix_echo(&b, Some(b'b')));
    let servers = [
        format!("unix:{}", a.display()),
        format!("unix:{}", b.display()),
    ];
    let servers: Vec<&str> = servers.iter().map(String::as_str).collect();
    let mut config = route(None, &servers, EngineMode::Ring);
    config.routes[0].settings.health_interval = Some(Duration::from_millis(50));
    let proxy = TestProxy::start(config);
    let mut tags = Vec::new();
    for _ in 0..4 {
        let mut client = connect(proxy.addr);
        tags.push(read_exact_within(&mut client, 1, IO_TIMEOUT)[0]);
    }
    tags.sort();
    assert_eq!(tags, b"aabb");
    assert!(seen_a.load(Ordering::SeqCst) >= 2 && seen_b.load(Ordering::SeqCst) >= 2);
    proxy.stop();
}

#[test]
fn a_unix_client_is_sent_as_af_unix_in_proxy_v2() {
    let dir = TempDir::new("pp2");
    let sock = dir.path("web.sock");
    let (backend, accepted) = Backend::channel();
    let mut config = route(Some(&sock), &[&backend.addr.to_string()], EngineMode::Ring);
    config.routes[0].settings.send_proxy = ringproxy::proxy_protocol::Version::V2;
    let proxy = TestProxy::start(config);
    let mut client = unix_connect(&sock);
    client.write_all(b"x").unwrap();
    let mut upstream = accepted.next(IO_TIMEOUT);
    let header = read_exact_within(&mut upstream, 16 + 216 + 1, IO_TIMEOUT);
    assert_eq!(&header[..12], b"\r\n\r\n\0\r\nQUIT\n");
    assert_eq!(header[12], 0x21, "v2, PROXY");
    assert_eq!(header[13], 0x31, "AF_UNIX, STREAM");
    assert_eq!(u16::from_be_bytes([header[14], header[15]]), 216);
    let dst = &header[16 + 108..16 + 216];
    let path = sock.to_str().unwrap().as_bytes();
    assert_eq!(&dst[..path.len()], path, "the listener's path");
    assert!(dst[path.len()..].iter().all(|&b| b == 0));
    assert_eq!(header[16 + 216], b'x', "the client's bytes follow");
    proxy.stop();
}

// ---- the socket file's life, with the binary ------------------------------------------

/// A configuration file with one route on 127.0.0.1:0 and `unix`, to `server`.
fn write_config(path: &Path, unix: Option<&Path>, server: &str, extra: &str) {
    let mut listen = vec!["\"127.0.0.1:0\"".to_string()];
    listen.extend(unix.map(|p| format!("\"unix:{}\"", p.display())));
    let text = format!(
        "drain_timeout = \"5s\"\n\n[[route]]\nname = \"web\"\nlisten = [{}]\n{extra}\n\
         servers = [{{ addr = \"{server}\" }}]\n",
        listen.join(", ")
    );
    std::fs::write(path, text).unwrap();
}

fn start_bin(config: &Path) -> BinProxy {
    let mut cmd = Command::new(bin());
    cmd.args(["--config", config.to_str().unwrap()]);
    BinProxy::spawn(cmd)
}

fn inode(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).unwrap().ino()
}

/// Sends SIGHUP and waits for one more "configuration reloaded" line.
fn reload(proxy: &BinProxy) {
    let reloads = || {
        let log = proxy.log();
        log.iter()
            .filter(|l| l.contains("configuration reloaded"))
            .count()
    };
    let before = reloads();
    proxy.signal(libc::SIGHUP);
    assert!(
        wait_until(IO_TIMEOUT, || reloads() > before),
        "log: {:?}",
        proxy.log()
    );
}

#[test]
fn a_stale_socket_file_is_replaced_at_start() {
    let dir = TempDir::new("stale");
    let (sock, config) = (dir.path("web.sock"), dir.path("c.toml"));
    drop(UnixListener::bind(&sock).unwrap());
    let refused = UnixStream::connect(&sock).expect_err("nothing accepts on a stale file");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let backend = Backend::echo();
    write_config(&config, Some(&sock), &backend.addr.to_string(), "");
    let proxy = start_bin(&config);
    unix_round_trip(&mut unix_connect(&sock), b"through the new socket");
    drop(proxy);
}

#[test]
fn a_live_listener_or_a_file_at_the_path_stops_the_start() {
    let dir = TempDir::new("taken");
    let (sock, config) = (dir.path("web.sock"), dir.path("c.toml"));
    let _live = UnixListener::bind(&sock).unwrap();
    write_config(&config, Some(&sock), "127.0.0.1:1", "");
    let run = run_bin(&["--config", config.to_str().unwrap()], IO_TIMEOUT);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let named = format!("unix:{}", sock.display());
    assert!(
        run.stderr.contains(&named) && run.stderr.contains("another process"),
        "{}",
        run.stderr
    );
    assert!(sock.exists(), "the other process's socket is left alone");

    let file = dir.path("file.sock");
    std::fs::write(&file, "not a socket").unwrap();
    write_config(&config, Some(&file), "127.0.0.1:1", "");
    let run = run_bin(&["--config", config.to_str().unwrap()], IO_TIMEOUT);
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("unix:{}", file.display()))
            && run.stderr.contains("not a socket"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a socket");
}

#[test]
fn sigterm_removes_the_socket_file_and_the_drain_finishes_open_connections() {
    let dir = TempDir::new("term");
    let (sock, config) = (dir.path("web.sock"), dir.path("c.toml"));
    let backend = Backend::echo();
    write_config(&config, Some(&sock), &backend.addr.to_string(), "");
    let mut proxy = start_bin(&config);
    let mut client = unix_connect(&sock);
    unix_round_trip(&mut client, b"before");
    proxy.signal(libc::SIGTERM);
    assert!(
        proxy
            .wait_for_line(|l| l.contains("listeners closed"), IO_TIMEOUT)
            .is_some(),
        "log: {:?}",
        proxy.log()
    );
    assert!(!sock.exists(), "removed when the drain starts");
    unix_round_trip(&mut client, b"during the drain");
    client.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    let status = proxy.wait_exit(IO_TIMEOUT).expect("the drain ends");
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists());
}

#[test]
fn sigint_and_a_second_signal_remove_the_socket_file_too() {
    let dir = TempDir::new("int");
    let (sock, config) = (dir.path("web.sock"), dir.path("c.toml"));
    let backend = Backend::echo();
    write_config(&config, Some(&sock), &backend.addr.to_string(), "");
    let mut proxy = start_bin(&config);
    let _open = unix_connect(&sock);
    proxy.signal(libc::SIGINT);
    proxy.wait_for_line(|l| l.contains("listeners closed"), IO_TIMEOUT);
    proxy.signal(libc::SIGINT);
    let status = proxy.wait_exit(IO_TIMEOUT).expect("stops at once");
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists());
}

#[test]
fn a_reload_keeps_the_socket_and_applies_its_mode_or_removes_it() {
    let dir = TempDir::new("reload");
    let (sock, config) = (dir.path("web.sock"), dir.path("c.toml"));
    let backend = Backend::echo();
    let server = backend.addr.to_string();
    write_config(&config, Some(&sock), &server, "unix_mode = \"0600\"");
    let proxy = start_bin(&config);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600, "unix_mode applied");
    let first = inode(&sock);
    let mut open = unix_connect(&sock);

    write_config(
        &config,
        Some(&sock),
        &server,
        "unix_mode = \"0660\"\nidle_timeout = \"1m\"",
    );
    reload(&proxy);
    assert_eq!(inode(&sock), first, "the same socket");
    assert_eq!(mode(&sock), 0o660, "the new mode on the kept socket");
    unix_round_trip(&mut open, b"an open client is not cut");
    unix_round_trip(&mut unix_connect(&sock), b"a new client");

    write_config(&config, None, &server, "");
    reload(&proxy);
    assert!(!sock.exists(), "a listener the reload drops takes its file");
    unix_round_trip(&mut open, b"still served");
}

#[test]
fn the_command_line_takes_unix_listen_and_upstream() {
    let run = run_bin(
        &[
            "--listen",
            "unix:/run/rp/web.sock",
            "-u",
            "unix:/run/app.sock",
            "--check",
        ],
        IO_TIMEOUT,
    );
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("listen = [\"unix:/run/rp/web.sock\"]"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("{ addr = \"unix:/run/app.sock\""),
        "{}",
        run.stdout
    );
    for (args, says) in [
        (
            &["--allow", "10.0.0.0/8"][..],
            "--allow: expected a client address",
        ),
        (
            &["--balance", "ip-hash"][..],
            "--balance: expected a client address",
        ),
        (
            &["--sni", "a.test"][..],
            "--sni: expected TCP listen addresses only",
        ),
    ] {
        let mut all = vec![
            "--listen",
            "unix:/run/rp/web.sock",
            "-u",
            "127.0.0.1:1",
            "--check",
        ];
        all.extend(args);
        let run = run_bin(&all, IO_TIMEOUT);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    let run = run_bin(
        &[
            "-l",
            "127.0.0.1:0",
            "-u",
            "unix:/run/app.sock",
            "--bind-source",
            "127.0.0.2",
        ],
        IO_TIMEOUT,
    );
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no bind_source for a Unix socket server"),
        "{}",
        run.stderr
    );
}
