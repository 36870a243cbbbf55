//! The admin's status page: plain HTTP (GET, HEAD, a refused request), and in a real
//! headless browser (Debian's `chromium`): the tables show a known server with its state and
//! a live connection, the busiest first with its full ring drawn; a screenshot is kept in
//! `target/admin-status-page.png` as the test's artifact.

mod common;

use common::admin::*;
use common::peers::{Peer, TempDir, have};
use common::*;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where the browser test keeps its screenshot.
fn screenshot_path() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("admin-status-page.png")
}

/// Runs `chromium` headless with `args` and a fresh profile; its whole process group is
/// killed if it has not finished within 30 s.
fn chromium(args: &[&str]) -> std::process::Output {
    let path = Peer::Chromium.path().expect("chromium");
    let dir = TempDir::new("chromium");
    let profile = format!("--user-data-dir={}", dir.path.display());
    let mut all = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--timeout=10000",
        &profile,
    ];
    all.extend_from_slice(args);
    let child = Command::new(path)
        .args(&all)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chromium");
    let group = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.expect("wait for chromium"),
        Err(_) => {
            // The browser and its helpers, all of them: the group it leads (not reaped yet).
            // SAFETY: kill(2) on our own child's process group has no memory-safety
            // preconditions.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            panic!("chromium {args:?} did not finish within 30 s");
        }
    }
}

#[test]
fn the_status_page_in_a_real_browser() {
    if !have(&[Peer::Chromium]) {
        return;
    }
    setup();
    let (a, b) = (named(b'a'), named(b'b'));
    let (stuck, accepted) = Backend::channel();
    let routes = route("web", &[a.addr, b.addr], "") + &route("slow", &[stuck.addr], "");
    let admin = Admin::start("admin-page", &file("", &routes), &[]);
    let web = listen_of(&admin, "web");
    let (mut open, _) = client(web);
    round_trip(&mut open, b"live");
    admin.set("web", b.addr, "drain");
    // A client whose server reads nothing: its client → upstream ring fills up.
    let busy = connect(listen_of(&admin, "slow"));
    let _held = accepted.next(IO_TIMEOUT);
    let mut writer = busy.try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = writer.set_write_timeout(Some(IO_TIMEOUT));
        let _ = writer.write_all(&vec![7u8; 8 << 20]);
    });
    let full = || {
        let slow = admin.connections("?route=slow");
        slow.first()
            .is_some_and(|c| c["fill_up"] == c["buffer_size"])
    };
    assert!(wait_until(IO_TIMEOUT, full), "the slow route's ring fills");
    let url = format!("http://{}/", admin.addr);
    let out = chromium(&["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<table id=\"servers\">"),
        "{dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client_addr = open.local_addr().unwrap().to_string();
    assert!(dom.contains(&format!("<td>{}</td>", a.addr)), "{dom}");
    assert!(
        dom.contains(&format!(
            "<td>{}</td><td class=\"drain\">drain</td>",
            b.addr
        )),
        "{dom}"
    );
    let connections = dom.split("<table id=\"connections\">").nth(1).unwrap();
    assert!(
        connections.contains(&format!("<td>{client_addr}</td>")),
        "{connections}"
    );
    let busiest = connections.split("</tr>").nth(1).unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    assert!(
        busiest.contains(&format!("<td>{busy_addr}</td>")),
        "busiest first: {busiest}"
    );
    assert!(
        busiest.contains("style=\"width:100.0%\""),
        "its full ring is drawn: {busiest}"
    );

    let shot = screenshot_path();
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    let out = chromium(&["--window-size=1600,900", &arg, &url]);
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 1000,
        "no screenshot at {}: {}",
        shot.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    round_trip(&mut open, b"still live");
    let _ = busy.shutdown(std::net::Shutdown::Both);
}

#[test]
fn the_page_and_head_are_plain_http() {
    setup();
    let a = named(b'a');
    let admin = Admin::start("admin-head", &file("", &route("web", &[a.addr], "")), &[]);
    let page = http(admin.addr, "GET", "/", &[], "");
    assert_eq!(page.status, 200);
    assert!(
        page.head.contains("Content-Type: text/html"),
        "{}",
        page.head
    );
    assert!(page.body.contains(&format!("<td>{}</td>", a.addr)));
    let head = http(admin.addr, "HEAD", "/servers", &[], "");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let mut raw = connect(admin.addr);
    raw.write_all(b"GET /servers HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    raw.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
}
