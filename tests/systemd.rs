//! systemd integration, against the real binary: a datagram socket in a temporary directory
//! (or at an abstract name) stands in for systemd's notify socket. READY once listeners
//! accept, RELOADING with MONOTONIC_USEC then READY on SIGHUP (a failed reload says why in
//! STATUS and is READY all the same), STOPPING on SIGTERM, watchdog pings at half
//! WATCHDOG_USEC and none when WATCHDOG_PID names another process; with several workers,
//! one READY and process-wide log lines printed once. `dist/ringproxy.service` is checked
//! with `systemd-analyze verify`, and run under a real systemd where the machine has one.

mod common;

use common::peers::{Peer, TempDir, have};
use common::systemd::{FakeSystemd, Notification};
use common::*;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// The binary with `NOTIFY_SOCKET` pointing at `sd`, listening on a free port for `backend`.
fn command(sd: &FakeSystemd, backend: SocketAddr, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    sd.environ(&mut cmd)
        .args(["--listen", "127.0.0.1:0", "-u", &backend.to_string()])
        .args(args);
    cmd
}

/// A configuration file with one route from `listen` to `server`.
fn write_config(path: &std::path::Path, listen: SocketAddr, server: SocketAddr) {
    let text = format!(
        "drain_timeout = \"5s\"\n\n[[route]]\nname = \"web\"\nlisten = \"{listen}\"\n\
         servers = [{{ addr = \"{server}\" }}]\n"
    );
    std::fs::write(path, text).unwrap();
}

fn is_ready(n: &Notification) -> bool {
    n.has("READY", "1")
}

#[test]
fn ready_once_listening_then_stopping_on_sigterm() {
    let backend = Backend::echo();
    let sd = FakeSystemd::at_path();
    let mut proxy = BinProxy::spawn(command(&sd, backend.addr, &[]));
    let (ready, before) = sd.wait_for(is_ready, IO_TIMEOUT);
    assert!(before.is_empty(), "READY comes first: {before:?}");
    assert_eq!(
        ready.get("STATUS"),
        Some("1 route(s), 1 listener(s), 0 open connection(s)"),
        "{ready:?}"
    );
    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"ready means accepting");
    drop(client);

    proxy.signal(libc::SIGTERM);
    let (stopping, before) = sd.wait_for(|n| n.has("STOPPING", "1"), IO_TIMEOUT);
    assert!(
        before.is_empty(),
        "nothing between READY and STOPPING: {before:?}"
    );
    assert_eq!(stopping.fields.len(), 1, "{stopping:?}");
    assert_eq!(proxy.wait_exit(IO_TIMEOUT).and_then(|s| s.code()), Some(0));
    assert!(sd.next(Duration::ZERO).is_none(), "nothing after STOPPING");
}

#[test]
fn an_abstract_notify_socket_is_reached_too() {
    let backend = Backend::echo();
    let sd = FakeSystemd::abstract_name();
    let _proxy = BinProxy::spawn(command(&sd, backend.addr, &[]));
    sd.wait_for(is_ready, IO_TIMEOUT);
}

#[test]
fn an_unusable_notify_socket_is_said_once_and_the_proxy_serves() {
    let backend = Backend::echo();
    let mut cmd = Command::new(bin());
    cmd.env("NOTIFY_SOCKET", "vsock:2:9999").args([
        "--listen",
        "127.0.0.1:0",
        "-u",
        &backend.addr.to_string(),
    ]);
    let proxy = BinProxy::spawn(cmd);
    round_trip(&mut connect(proxy.addr), b"still serving");
    let said = proxy.wait_for_line(|l| l.contains("NOTIFY_SOCKET=vsock:2:9999"), IO_TIMEOUT);
    assert!(said.is_some(), "log: {:?}", proxy.log());
}

#[test]
fn sighup_is_reloading_with_the_monotonic_time_then_ready_and_a_failed_reload_says_why() {
    let (a, b) = (Backend::echo(), Backend::echo());
    let dir = TempDir::new("sd-reload");
    let path = dir.join("ringproxy.toml");
    let listen = listen_on(v4_any_port()).local_addr().unwrap();
    write_config(&path, listen, a.addr);
    let sd = FakeSystemd::at_path();
    let mut cmd = Command::new(bin());
    sd.environ(&mut cmd)
        .args(["--config", path.to_str().unwrap()]);
    let proxy = BinProxy::spawn(cmd);
    sd.wait_for(is_ready, IO_TIMEOUT);

    // A good file: RELOADING=1 and MONOTONIC_USEC in one datagram, then STATUS and READY.
    write_config(&path, proxy.addr, b.addr);
    let sent = ringproxy::systemd::monotonic_now();
    proxy.signal(libc::SIGHUP);
    let reloading = sd.next(IO_TIMEOUT).expect("a notification on SIGHUP");
    let received = ringproxy::systemd::monotonic_now();
    assert!(reloading.has("RELOADING", "1"), "{reloading:?}");
    let usec: u128 = reloading
        .get("MONOTONIC_USEC")
        .expect("MONOTONIC_USEC in the same datagram as RELOADING=1")
        .parse()
        .unwrap();
    assert!(
        (sent.as_micros()..=received.as_micros()).contains(&usec),
        "MONOTONIC_USEC={usec} is CLOCK_MONOTONIC between {sent:?} and {received:?}"
    );
    let done = sd.next(IO_TIMEOUT).expect("READY after the reload");
    assert!(is_ready(&done), "{done:?}");
    assert_eq!(
        done.get("STATUS"),
        Some("1 route(s), 1 listener(s), 0 open connection(s)")
    );
    round_trip(&mut connect(proxy.addr), b"to the new server");
    assert!(
        wait_until(IO_TIMEOUT, || b.accepted() == 1),
        "the new file is in force"
    );

    // A file that does not parse: still READY (the old configuration serves), STATUS says why.
    std::fs::write(&path, "[[route]]\nname = \"web\"\nlisten = 5\n").unwrap();
    proxy.signal(libc::SIGHUP);
    assert!(sd.next(IO_TIMEOUT).unwrap().has("RELOADING", "1"));
    let failed = sd.next(IO_TIMEOUT).expect("READY after a failed reload");
    assert!(is_ready(&failed), "{failed:?}");
    let status = failed.get("STATUS").unwrap_or_default();
    assert!(
        status.starts_with("reload failed: ") && status.contains("ringproxy.toml"),
        "{failed:?}"
    );
    round_trip(&mut connect(proxy.addr), b"still serving");

    // A file the loops refuse (its new address is taken): the same, with the loop's reason.
    let taken = listen_on(v4_any_port());
    let taken = taken.local_addr().unwrap();
    write_config(&path, proxy.addr, b.addr);
    let clash = format!(
        "\n[[route]]\nname = \"clash\"\nlisten = \"{taken}\"\nservers = [{{ addr = \"{}\" }}]\n",
        a.addr
    );
    let text = std::fs::read_to_string(&path).unwrap() + &clash;
    std::fs::write(&path, text).unwrap();
    proxy.signal(libc::SIGHUP);
    assert!(sd.next(IO_TIMEOUT).unwrap().has("RELOADING", "1"));
    let refused = sd.next(IO_TIMEOUT).expect("READY after a refused reload");
    assert!(is_ready(&refused), "{refused:?}");
    let status = refused.get("STATUS").unwrap_or_default();
    assert!(
        status.starts_with("reload failed: ") && status.contains(&taken.to_string()),
        "{refused:?}"
    );
    // The log line is written by a thread of its own: it may trail the notification.
    let failures = || {
        proxy
            .log()
            .iter()
            .filter(|l| l.contains("reload failed, keeping the running configuration"))
            .count()
    };
    assert!(
        wait_until(IO_TIMEOUT, || failures() == 2),
        "log: {:?}",
        proxy.log()
    );
}

#[test]
fn watchdog_pings_come_every_half_period() {
    let backend = Backend::echo();
    let sd = FakeSystemd::at_path();
    // WATCHDOG_PID names the process itself: the shell's pid is the one `exec` keeps.
    let mut cmd = Command::new("sh");
    sd.environ(&mut cmd)
        .env("WATCHDOG_USEC", "300000")
        .args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\"", bin()])
        .args(["--listen", "127.0.0.1:0", "-u", &backend.addr.to_string()]);
    let _proxy = BinProxy::spawn(cmd);
    sd.wait_for(is_ready, IO_TIMEOUT);
    let mut pings = Vec::new();
    while pings.len() < 8 {
        let (ping, others) = sd.wait_for(|n| n.has("WATCHDOG", "1"), IO_TIMEOUT);
        assert!(others.is_empty(), "{others:?}");
        assert_eq!(ping.fields.len(), 1, "{ping:?}");
        pings.push(ping.at);
    }
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
    // 150 ms expected; loose bounds for a machine shared with compilers.
    assert!(
        (Duration::from_millis(100)..=Duration::from_millis(260)).contains(&mean),
        "mean gap {mean:?}: {gaps:?}"
    );
    assert!(
        gaps.iter().all(|g| *g < Duration::from_millis(300)),
        "every ping within the period: {gaps:?}"
    );
}

#[test]
fn no_watchdog_pings_when_watchdog_pid_names_another_process() {
    let backend = Backend::echo();
    let sd = FakeSystemd::at_path();
    let mut cmd = command(&sd, backend.addr, &[]);
    cmd.env("WATCHDOG_USEC", "100000").env("WATCHDOG_PID", "1");
    let proxy = BinProxy::spawn(cmd);
    sd.wait_for(is_ready, IO_TIMEOUT);
    // Ten periods: pings would have come every 50 ms.
    let got = sd.all_within(Duration::from_secs(1));
    assert!(got.is_empty(), "{got:?}");
    round_trip(&mut connect(proxy.addr), b"serving");
}

#[test]
fn several_workers_are_ready_once_and_print_process_wide_lines_once() {
    let backend = Backend::echo();
    let dir = TempDir::new("sd-workers");
    let path = dir.join("ringproxy.toml");
    let listen = listen_on(v4_any_port()).local_addr().unwrap();
    write_config(&path, listen, backend.addr);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("workers = 2\nmax_conns = 1000\n{text}")).unwrap();
    let sd = FakeSystemd::at_path();
    let mut cmd = Command::new(bin());
    sd.environ(&mut cmd)
        .env("WATCHDOG_USEC", "400000")
        .args(["--config", path.to_str().unwrap()]);
    let mut proxy = BinProxy::spawn(cmd);
    let mut seen = Vec::new();
    let (ready, before) = sd.wait_for(is_ready, IO_TIMEOUT);
    seen.extend(before);
    seen.push(ready);
    // Idle loops still turn: pings come with two workers and no traffic, each within the
    // period of the one before.
    let mut pings = Vec::new();
    while pings.len() < 4 {
        let (ping, before) = sd.wait_for(|n| n.has("WATCHDOG", "1"), IO_TIMEOUT);
        seen.extend(before);
        pings.push(ping.at);
    }
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|g| *g < Duration::from_millis(400)),
        "{gaps:?}"
    );

    proxy.signal(libc::SIGHUP);
    let (reloaded, before) = sd.wait_for(is_ready, IO_TIMEOUT);
    seen.extend(before);
    assert_eq!(
        reloaded.get("STATUS"),
        Some("1 route(s), 1 listener(s), 0 open connection(s)")
    );
    seen.push(reloaded);

    let mut client = connect(proxy.addr);
    round_trip(&mut client, b"open during the drain");
    proxy.signal(libc::SIGTERM);
    let (stopping, before) = sd.wait_for(|n| n.has("STOPPING", "1"), IO_TIMEOUT);
    seen.extend(before);
    seen.push(stopping);
    proxy
        .wait_for_line(|l| l.contains("listeners closed"), IO_TIMEOUT)
        .expect("the drain starts");
    drop(client);
    assert_eq!(proxy.wait_exit(IO_TIMEOUT).and_then(|s| s.code()), Some(0));
    seen.extend(sd.all_within(Duration::ZERO));

    let count = |key: &str| seen.iter().filter(|n| n.get(key).is_some()).count();
    assert_eq!(
        count("READY"),
        2,
        "at start and after the reload: {seen:#?}"
    );
    assert_eq!(count("RELOADING"), 1, "{seen:#?}");
    assert_eq!(count("STOPPING"), 1, "{seen:#?}");

    let log = proxy.log();
    let once = |needle: &str| {
        let lines: Vec<&String> = log.iter().filter(|l| l.contains(needle)).collect();
        assert_eq!(lines.len(), 1, "{needle:?} once in {log:#?}");
        lines[0].clone()
    };
    assert!(
        once("listening on ").contains("max-conns 1000 "),
        "{log:#?}"
    );
    once("configuration reloaded");
    assert!(once("draining: listeners closed").ends_with("for 1 connection(s)"));
    once("drained: 1 connection(s) finished, none cut");
    once("stopped; closed 0 open connection(s)");
}

/// `dist/ringproxy.service`, with the binary and configuration paths pointed at this
/// checkout.
fn unit_for_checkout(dir: &TempDir) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dist/ringproxy.service"
    ))
    .expect("dist/ringproxy.service");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ringproxy.toml");
    let unit = unit
        .replace("/usr/local/bin/ringproxy", bin())
        .replace("/etc/ringproxy/ringproxy.toml", config);
    let path = dir.join("ringproxy.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn the_unit_file_has_what_the_readme_promises_and_its_check_passes() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dist/ringproxy.service"
    ))
    .unwrap();
    let lines: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    for wanted in [
        "Type=notify-reload",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "WatchdogSec=",
        "LimitNOFILE=",
        "ExecStart=",
        "ExecStartPre=",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(wanted)),
            "{wanted} in {unit}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("ExecReload=")),
        "notify-reload sends SIGHUP itself"
    );
    // ExecStartPre, run as written (on the example configuration), validates it.
    let dir = TempDir::new("sd-unit");
    let text = std::fs::read_to_string(unit_for_checkout(&dir)).unwrap();
    let pre = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStartPre="))
        .unwrap();
    let words: Vec<&str> = pre.split_whitespace().collect();
    assert!(words.contains(&"--check"), "{pre}");
    let out = Command::new(words[0]).args(&words[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{pre}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_analyze_verifies_the_unit_file() {
    if !have(&[Peer::SystemdAnalyze]) {
        return;
    }
    let dir = TempDir::new("sd-verify");
    let unit = unit_for_checkout(&dir);
    let out = Command::new(Peer::SystemdAnalyze.path().unwrap())
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // systemd before 253 does not know notify-reload yet; the README says what to use there.
    let old_type = "Failed to parse service type, ignoring: notify-reload";
    let complaints: Vec<&str> = stderr.lines().filter(|l| !l.contains(old_type)).collect();
    assert!(out.status.success() && complaints.is_empty(), "{stderr}");
    if stderr.contains(old_type) {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"note: this systemd predates Type=notify-reload (253); the rest of the unit verified\n",
        );
    }
}

#[test]
fn under_a_real_systemd_the_service_becomes_ready_with_its_status() {
    // A machine booted with systemd has this directory (sd_booted(3)); containers usually not.
    let booted = std::path::Path::new("/run/systemd/system").is_dir();
    let user_manager = booted
        && Command::new("systemctl")
            .args(["--user", "is-system-running"])
            .output()
            .is_ok_and(|o| !o.stdout.is_empty());
    if !user_manager {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"skipped: no running systemd user manager here; the notifications are tested \
              against a stand-in socket\n",
        );
        return;
    }
    let backend = Backend::echo();
    let unit = format!("ringproxy-test-{}", std::process::id());
    let run = Command::new("systemd-run")
        .args([
            "--user",
            "--collect",
            "--unit",
            &unit,
            "-p",
            "Type=notify",
            "-p",
            "WatchdogSec=2s",
        ])
        .args([
            bin(),
            "--listen",
            "127.0.0.1:0",
            "-u",
            &backend.addr.to_string(),
        ])
        .output()
        .expect("systemd-run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let show = || {
        let out = Command::new("systemctl")
            .args([
                "--user",
                "show",
                "-p",
                "ActiveState",
                "-p",
                "StatusText",
                &unit,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut state = String::new();
    wait_until(IO_TIMEOUT, || {
        state = show();
        state.contains("ActiveState=active") && state.contains("route(s)")
    });
    // Still active past a watchdog period (2 s): the pings arrive.
    std::thread::sleep(Duration::from_secs(3));
    let later = show();
    let _ = Command::new("systemctl")
        .args(["--user", "stop", &unit])
        .status();
    assert!(state.contains("StatusText=1 route(s)"), "{state}");
    assert!(later.contains("ActiveState=active"), "{later}");
}
