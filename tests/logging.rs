//! Logging never stalls the data path: the binary with its access log on stdout and a debug
//! line per connection on stderr, both pipes left unread, keeps serving thousands of
//! connections at full speed; the lines it could not write are dropped and counted, and once
//! the pipes are read again the logs flow.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Enough connections that their log lines overflow both pipes (64 KiB each) and the
/// access log's queue (about 1 MiB).
const CONNECTIONS: usize = 12_000;

#[test]
fn unread_stdout_and_stderr_pipes_never_stall_connections() {
    setup();
    let backend = Backend::echo();
    let metrics_port = v4_any_port();
    let mut child = Command::new(bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &backend.addr.to_string(),
        ])
        .args([
            "--access-log",
            "-",
            "--metrics",
            &metrics_port.to_string(),
            "-v",
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringproxy");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let (mut addr, mut metrics) = (None, None);
    while addr.is_none() || metrics.is_none() {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "ringproxy exited early"
        );
        addr = addr.or_else(|| parse_listen_line(&line));
        metrics = metrics.or_else(|| {
            let rest = line.split("metrics on http://").nth(1)?;
            rest.split('/').next()?.parse().ok()
        });
    }
    let (addr, metrics) = (addr.unwrap(), metrics.unwrap());
    // From here on nobody reads stdout or stderr.
    let started = Instant::now();
    for i in 0..CONNECTIONS {
        let mut c = connect(addr);
        round_trip(&mut c, b"x");
        // RST, so that thousands of closes leave no TIME_WAIT behind for later tests.
        set_reset_on_close(&c);
        drop(c);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "connection {i}: the proxy stalled"
        );
    }
    let body = http_get(metrics, "/metrics");
    let dropped = |name: &str| {
        body.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from\n{body}"))
    };
    assert!(dropped("ringproxy_access_log_dropped_total") > 0, "{body}");
    assert!(dropped("ringproxy_log_dropped_total") > 0, "{body}");
    // Reading again: the lines flow, and the proxy is still serving.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let drained = std::thread::spawn(move || {
        let mut lines = 0;
        let mut line = String::new();
        while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
            lines += 1;
            line.clear();
        }
        lines
    });
    let mut c = connect(addr);
    round_trip(&mut c, b"still serving");
    drop(c);
    unsafe_kill_term(child.id());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(reader.join().unwrap() > 0, "access-log lines flowed again");
    assert!(
        drained.join().unwrap() > 0,
        "process-log lines flowed again"
    );
}

fn unsafe_kill_term(pid: u32) {
    // SAFETY: kill(2) on our own child's pid; no memory is touched.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
}
