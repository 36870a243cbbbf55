//! The built binary's command line and exit statuses: `--help`/`--version` exit 0; a bad
//! command line exits 2 with one stderr line naming the flag; a listen address in use or an
//! unresolvable upstream exits 1; SIGTERM and SIGINT stop it with status 0, closing open
//! connections; `-v` logs one line per finished connection; the listen line gives the port.

mod common;

use common::*;
use std::io::Write;
use std::net::{Shutdown, TcpListener};
use std::time::Duration;

const EXIT_WITHIN: Duration = Duration::from_secs(10);

#[test]
fn help_prints_usage_and_exits_0() {
    for flag in ["--help", "-h"] {
        let out = run_bin(&[flag], EXIT_WITHIN);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", out.stderr);
        assert!(out.stdout.contains("USAGE"), "{flag}: {}", out.stdout);
        assert!(out.stdout.contains("--listen") && out.stdout.contains("--upstream"));
        assert!(out.stderr.is_empty(), "{flag}: {}", out.stderr);
    }
}

#[test]
fn version_prints_the_version_and_exits_0() {
    for flag in ["--version", "-V"] {
        let out = run_bin(&[flag], EXIT_WITHIN);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", out.stderr);
        let version = format!("ringproxy {}", env!("CARGO_PKG_VERSION"));
        let line = out.stdout.trim();
        // Built from a git checkout, the commit follows.
        let commit = line
            .strip_prefix(&version)
            .unwrap_or_else(|| panic!("{line}"));
        assert!(
            commit.is_empty()
                || commit
                    .strip_prefix(" (commit ")
                    .is_some_and(|c| c.ends_with(')')),
            "{line}"
        );
    }
}

#[test]
fn bad_command_lines_exit_2_with_one_line_naming_the_flag() {
    const L: &str = "127.0.0.1:0";
    const U: &str = "127.0.0.1:9";
    let base = ["-l", L, "-u", U];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "--listen"),
        (vec!["-u", U], "--listen"),
        (vec!["--listen", "example.test:80", "-u", U], "--listen"),
        (vec!["--listen", "127.0.0.1", "-u", U], "--listen"),
        (vec!["--listen"], "--listen"),
        (vec!["-l", L], "--upstream"),
        (vec!["-l", L, "-u", "no-port"], "--upstream"),
        (vec!["-l", L, "-u", "host:0"], "--upstream"),
        (vec!["-l", L, "-u", "host:70000"], "--upstream"),
        (vec!["-l", L, "-u"], "--upstream"),
        (with(&["--buffer-size", "0"]), "--buffer-size"),
        (with(&["--buffer-size", "lots"]), "--buffer-size"),
        (with(&["--buffer-size", "16 KiB"]), "--buffer-size"),
        (with(&["--buffer-size", "1g"]), "--buffer-size"),
        (with(&["--buffer-size", "-5"]), "--buffer-size"),
        (with(&["--buffer-size"]), "--buffer-size"),
        (with(&["--connect-timeout", "0"]), "--connect-timeout"),
        (with(&["--connect-timeout", "0ms"]), "--connect-timeout"),
        (with(&["--connect-timeout", "5x"]), "--connect-timeout"),
        (with(&["--connect-timeout", "1.5s"]), "--connect-timeout"),
        (with(&["--idle-timeout", "forever"]), "--idle-timeout"),
        (with(&["--idle-timeout", "31d"]), "--idle-timeout"),
        (with(&["--idle-timeout", "0s"]), "--idle-timeout"),
        (with(&["--max-conns", "0"]), "--max-conns"),
        (with(&["--max-conns", "many"]), "--max-conns"),
        (with(&["--max-conns", "-1"]), "--max-conns"),
        (with(&["--backlog", "0"]), "--backlog"),
        (with(&["--backlog", "70000"]), "--backlog"),
        (with(&["--frobnicate"]), "--frobnicate"),
        (with(&["--frobnicate", "3"]), "--frobnicate"),
        (with(&["stray"]), "stray"),
    ];
    for (args, flag) in cases {
        let out = run_bin(&args, EXIT_WITHIN);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: stderr {:?}",
            out.stderr
        );
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: stderr {:?}", out.stderr);
        assert!(
            lines[0].contains(flag),
            "{args:?}: {:?} does not name {flag}",
            lines[0]
        );
        assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", out.stdout);
    }
}

#[test]
fn listen_address_in_use_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_bin(&["-l", &addr, "-u", "127.0.0.1:9"], EXIT_WITHIN);
    assert_eq!(out.status.code(), Some(1), "stderr {:?}", out.stderr);
    assert!(
        out.stderr.lines().any(|l| l.contains(&addr)),
        "the error names the address: {:?}",
        out.stderr
    );
}

#[test]
fn unresolvable_upstream_exits_1() {
    let out = run_bin(
        &["-l", "127.0.0.1:0", "-u", "no-such-host.invalid:80"],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "stderr {:?}", out.stderr);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("no-such-host.invalid")),
        "the error names the upstream: {:?}",
        out.stderr
    );
}

#[test]
fn localhost_is_a_listen_address() {
    let backend = Backend::echo();
    let port = free_addr().port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ringproxy"));
    cmd.args(["--listen", &format!("localhost:{port}")])
        .args(["-u", &backend.addr.to_string()]);
    let proxy = BinProxy::spawn(cmd);
    assert_eq!(proxy.addr.port(), port);
    let mut client = connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    round_trip(&mut client, b"through localhost");
}

#[test]
fn sigterm_stops_with_status_0_and_closes_connections() {
    let backend = Backend::echo();
    let mut proxy = BinProxy::start(&["-u", &backend.addr.to_string(), "--drain-timeout", "100ms"]);
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"before the signal");
    proxy.signal(libc::SIGTERM);
    let status = proxy.wait_exit(EXIT_WITHIN).expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "log {:?}", proxy.log());
    expect_closed(&mut client, Duration::from_secs(5));
    assert!(
        proxy
            .wait_for_line(|l| l.contains("stopped"), IO_TIMEOUT)
            .is_some(),
        "log {:?}",
        proxy.log()
    );
}

#[test]
fn sigint_stops_with_status_0() {
    let backend = Backend::echo();
    let mut proxy = BinProxy::start(&["-u", &backend.addr.to_string(), "--drain-timeout", "100ms"]);
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"before the signal");
    proxy.signal(libc::SIGINT);
    let status = proxy.wait_exit(EXIT_WITHIN).expect("exits after SIGINT");
    assert_eq!(status.code(), Some(0), "log {:?}", proxy.log());
}

#[test]
fn listen_line_gives_the_port_and_upstreams() {
    let backend = Backend::echo();
    let proxy = BinProxy::start(&["-u", &backend.addr.to_string()]);
    let line = proxy
        .wait_for_line(|l| l.contains("listening on"), IO_TIMEOUT)
        .unwrap();
    assert_eq!(parse_listen_line(&line), Some(proxy.addr));
    assert_ne!(proxy.addr.port(), 0);
    assert!(line.contains(&backend.addr.to_string()), "{line}");
    assert!(
        proxy.log()[0].contains("listening on"),
        "the first line: {:?}",
        proxy.log()
    );
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"on the logged port");
}

#[test]
fn verbose_logs_one_line_per_finished_connection() {
    let backend = Backend::echo();
    let proxy = BinProxy::start(&["-v", "-u", &backend.addr.to_string()]);
    let mut client = connect(proxy.addr);
    client.write_all(&[7u8; 5000]).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut client, IO_TIMEOUT).len(), 5000);
    let me = format!("client={} ", client.local_addr().unwrap());
    let line = proxy
        .wait_for_line(|l| l.contains(&me), IO_TIMEOUT)
        .unwrap_or_else(|| panic!("no close line for {me} in {:?}", proxy.log()));
    assert!(
        line.contains(&format!("upstream={} ", backend.addr)),
        "{line}"
    );
    assert!(line.contains("to_upstream=5000 to_client=5000"), "{line}");
    assert!(line.contains("reason=client-closed"), "{line}");
    assert!(line.contains("duration="), "{line}");
    let count = proxy.log().iter().filter(|l| l.contains(&me)).count();
    assert_eq!(count, 1, "{:?}", proxy.log());
}

/// True once `pid` holds a listening TCP socket.
fn has_listener(pid: u32) -> bool {
    const TCP_LISTEN: u8 = 0x0A;
    let inodes = socket_inodes(pid);
    tcp_rows()
        .iter()
        .any(|r| r.state == TCP_LISTEN && inodes.contains(&r.inode))
}

/// True while `pid` is blocked in `write(2, ...)`.
fn blocked_writing_stderr(pid: u32) -> Option<bool> {
    let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    Some(syscall.starts_with(&format!("{} 0x2 ", libc::SYS_write)))
}

#[test]
fn sigterm_once_the_port_is_bound_exits_0_even_during_startup() {
    use std::fs::File;
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::process::{Command, Stdio};

    // The proxy's stderr is a one-page pipe with 16 bytes free, so its first log lines block
    // (in the log's writer thread, not in the loop or the main thread) while the listener is
    // bound: exactly the moment a supervisor may see the port open. A SIGTERM then must
    // still give a clean stop with status 0.
    let backend = Backend::echo();
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors, which are then owned exactly once below.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own.
    let size = unsafe { libc::fcntl(write_end.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        size > 16,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    File::from(write_end.try_clone().unwrap())
        .write_all(&vec![b'#'; size as usize - 16])
        .unwrap();
    let mut child = Command::new(bin())
        .args(["--listen", "127.0.0.1:0", "-u", &backend.addr.to_string()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(write_end))
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stuck = false;
    let ready = wait_until(EXIT_WITHIN, || {
        stuck = blocked_writing_stderr(pid).is_some();
        has_listener(pid)
    });
    if !stuck {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("SKIPPED: /proc/PID/syscall is not readable here");
        return;
    }
    assert!(
        ready,
        "the proxy never bound its port while its log was blocked"
    );
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) }, 0);
    // Let the log flow again, and keep reading it until the proxy exits.
    let drain = std::thread::spawn(move || {
        let mut log = Vec::new();
        let _ = File::from(read_end).read_to_end(&mut log);
        String::from_utf8_lossy(&log)
            .trim_start_matches('#')
            .to_string()
    });
    let mut status = None;
    wait_until(EXIT_WITHIN, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the proxy did not stop within {EXIT_WITHIN:?} of SIGTERM");
    };
    let log = drain.join().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM after the listener was bound ended the proxy with {status}; log: {log:?}"
    );
}
