//! The admin API through the built binary, on loopback: listing servers and connections
//! (with filters), `drain` sending new clients elsewhere while an open connection keeps
//! flowing, `maint` stopping checks, a state surviving a reload, shutdown and close ending
//! connections with `ended=admin`, the `Origin` and `Host` rules, GETs never changing anything, clear
//! errors, the configuration rule for a non-loopback admin, and two workers answering as one.

mod common;

use common::admin::*;
use common::netns::{FRONT_IP, Lab};
use common::peers::TempDir;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[test]
fn servers_and_connections_are_listed_and_filtered() {
    setup();
    let (a, b, c) = (named(b'a'), named(b'b'), named(b'c'));
    let text = file(
        "",
        &(route("web", &[a.addr, b.addr], "") + &route("db", &[c.addr], "")),
    );
    let admin = Admin::start("admin-list", &text, &[]);
    let (web, db) = (listen_of(&admin, "web"), listen_of(&admin, "db"));

    let servers = admin.get("/servers");
    let servers = servers.as_array().unwrap();
    assert_eq!(servers.len(), 3, "{servers:?}");
    for s in servers {
        for key in [
            "route", "server", "state", "health", "why", "active", "total",
        ] {
            assert!(s.get(key).is_some(), "{key} missing in {s}");
        }
        assert!(s.get("last_check").is_some());
        assert_eq!(
            (s["state"].as_str(), s["health"].as_str()),
            (Some("ready"), Some("up"))
        );
    }

    let mut first = client(web);
    let mut second = client(web);
    let mut third = client(db);
    round_trip(&mut first.0, b"one");
    round_trip(&mut third.0, b"three!");
    let web_a = if first.1 == b'a' { a.addr } else { b.addr };
    let entry = admin.server("web", web_a);
    assert_eq!(
        (entry["active"].as_u64(), entry["total"].as_u64()),
        (Some(1), Some(1))
    );

    let all = admin.connections("");
    assert_eq!(all.len(), 3, "{all:?}");
    let ids: std::collections::HashSet<u64> =
        all.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 3, "ids are unique");
    let keys = [
        "id",
        "worker",
        "route",
        "client",
        "upstream",
        "age",
        "phase",
        "up",
        "down",
        "fill_up",
        "fill_down",
        "peak_up",
        "peak_down",
        "stall_up",
        "stall_down",
    ];
    for conn in &all {
        for key in keys {
            assert!(conn.get(key).is_some(), "{key} missing in {conn}");
        }
        assert_eq!(conn["phase"], "streaming");
    }
    let of_db = admin.connections("?route=db");
    assert_eq!(of_db.len(), 1);
    let db_conn = &of_db[0];
    assert_eq!(db_conn["upstream"], c.addr.to_string());
    assert_eq!(db_conn["client"], third.0.local_addr().unwrap().to_string());
    assert_eq!(
        (db_conn["up"].as_u64(), db_conn["down"].as_u64()),
        (Some(6), Some(7)),
        "bytes so far: 6 up, the name and 6 echoed down"
    );
    let on_a = admin.connections(&format!("?server={web_a}"));
    assert_eq!(on_a.len(), 1, "{on_a:?}");
    let encoded = web_a.to_string().replace(':', "%3A");
    let combined = admin.connections(&format!("?route=web&server={encoded}"));
    assert_eq!((combined.len(), &combined[0]["id"]), (1, &on_a[0]["id"]));
    assert_eq!(
        admin.connections("?route=db&server=").len(),
        1,
        "an empty value is no condition"
    );
    assert!(admin.connections("?older=1h").is_empty());
    assert!(
        wait_until(IO_TIMEOUT, || admin
            .connections("?older=300ms&route=web")
            .len()
            == 2),
        "older is inclusive of connections open that long"
    );
    let young = admin.connections("?route=web");
    assert!(young.iter().all(|c| c["age"].as_f64().unwrap() >= 0.3));
    round_trip(&mut second.0, b"still fine");
    drop((first, second, third));
    assert!(wait_until(IO_TIMEOUT, || admin.connections("").is_empty()));
}

#[test]
fn drain_sends_new_clients_elsewhere_while_an_open_one_keeps_flowing() {
    setup();
    let (a, b) = (named(b'a'), named(b'b'));
    let admin = Admin::start(
        "admin-drain",
        &file("", &route("web", &[a.addr, b.addr], "")),
        &[],
    );
    let web = listen_of(&admin, "web");
    let (mut open, name) = client(web);
    let (drained, other) = if name == b'a' {
        (a.addr, b'b')
    } else {
        (b.addr, b'a')
    };
    admin.set("web", drained, "drain");
    assert_eq!(admin.server("web", drained)["state"], "drain");
    for _ in 0..10 {
        assert_eq!(client(web).1, other, "a drained server takes no new client");
    }
    round_trip(&mut open, b"the open connection continues");
    assert_eq!(admin.server("web", drained)["active"], 1);
    admin.set("web", drained, "{\"state\": \"ready\"}");
    let names: Vec<u8> = (0..4).map(|_| client(web).1).collect();
    assert!(names.contains(&name), "ready again: {names:?}");
}

#[test]
fn maint_stops_checks_and_drain_keeps_them() {
    setup();
    let (checked, accepted) = Backend::channel();
    let other = Backend::echo();
    let text = file(
        "",
        &route(
            "web",
            &[checked.addr, other.addr],
            "health_interval = \"100ms\"",
        ),
    );
    let admin = Admin::start("admin-maint", &text, &[]);
    drop(accepted.next(IO_TIMEOUT));
    assert!(
        wait_until(IO_TIMEOUT, || {
            admin.server("web", checked.addr)["last_check"].is_number()
        }),
        "the check is reported"
    );
    admin.set("web", checked.addr, "maint");
    // A probe already in flight may still arrive; then nothing for many intervals.
    drop(accepted.try_next(Duration::from_millis(300)));
    accepted.none_within(Duration::from_millis(800));
    let entry = admin.server("web", checked.addr);
    assert_eq!(
        (entry["state"].as_str(), entry["why"].as_str()),
        (Some("maint"), Some("maint: not checked"))
    );
    admin.set("web", checked.addr, "drain");
    drop(accepted.next(IO_TIMEOUT));
    drop(accepted.next(IO_TIMEOUT));
}

#[test]
fn a_state_lasts_across_reloads_while_the_server_stays_in_the_file() {
    setup();
    let (a, b, c) = (named(b'a'), named(b'b'), named(b'c'));
    let web = free_addr();
    let text = |servers: &[SocketAddr]| file("", &route_on("web", web, servers, ""));
    let admin = Admin::start("admin-reload", &text(&[a.addr, b.addr]), &[]);
    admin.set("web", a.addr, "maint");
    admin.reload(&text(&[a.addr, b.addr, c.addr]));
    assert_eq!(admin.server("web", a.addr)["state"], "maint", "kept");
    assert_eq!(admin.server("web", c.addr)["state"], "ready");
    for _ in 0..6 {
        assert_ne!(client(web).1, b'a');
    }
    admin.reload(&text(&[b.addr, c.addr]));
    admin.reload(&text(&[a.addr, b.addr, c.addr]));
    assert_eq!(
        admin.server("web", a.addr)["state"],
        "ready",
        "it left the file"
    );
}

#[test]
fn shutdown_and_close_end_connections_with_ended_admin() {
    setup();
    let (a, b) = (named(b'a'), named(b'b'));
    let dir = TempDir::new("admin-log");
    let log = dir.join("access.log");
    let globals = format!("access_log = \"{}\"", log.display());
    let admin = Admin::start(
        "admin-shutdown",
        &file(&globals, &route("web", &[a.addr, b.addr], "")),
        &[],
    );
    let web = listen_of(&admin, "web");
    let mut clients: Vec<(TcpStream, u8)> = (0..4).map(|_| client(web)).collect();
    let on_a = clients.iter().filter(|c| c.1 == b'a').count();
    assert_eq!(on_a, 2, "round robin");

    let one = admin.connections(&format!("?server={}", b.addr))[0].clone();
    let id = one["id"].as_u64().unwrap();
    let answer = admin.post(&format!("/connections/{id}/close"), "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let closed_port: u16 = one["client"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let index = clients
        .iter()
        .position(|c| c.0.local_addr().unwrap().port() == closed_port)
        .unwrap();
    let (mut gone, _) = clients.remove(index);
    expect_closed(&mut gone, IO_TIMEOUT);
    assert_eq!(
        admin.post(&format!("/connections/{id}/close"), "").status,
        404,
        "closed already"
    );

    let answer = admin.post(&format!("/servers/web/{}/shutdown", a.addr), "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(body["closed"], 2);
    for (s, name) in &mut clients {
        if *name == b'a' {
            expect_closed(s, IO_TIMEOUT);
        } else {
            round_trip(s, b"b stays");
        }
    }
    assert_eq!(
        admin.server("web", a.addr)["state"],
        "ready",
        "shutdown keeps the state"
    );
    let ended = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().filter(|l| l.contains("ended=admin")).count()
    };
    assert!(
        wait_until(IO_TIMEOUT, || ended() == 3),
        "{:?}",
        std::fs::read_to_string(&log)
    );
}

#[test]
fn an_origin_other_than_the_admin_itself_is_refused() {
    setup();
    let a = named(b'a');
    let admin = Admin::start("admin-origin", &file("", &route("web", &[a.addr], "")), &[]);
    let path = format!("/servers/web/{}/state", a.addr);
    for origin in [
        "Origin: null",
        "Origin: http://evil.example",
        "Origin: http://localhost:1",
    ] {
        let answer = http(admin.addr, "POST", &path, &[origin], "drain");
        assert_eq!(answer.status, 403, "{origin}: {}", answer.body);
        let answer = http(admin.addr, "GET", "/servers", &[origin], "");
        assert_eq!(answer.status, 403, "{origin} reads nothing either");
    }
    assert_eq!(
        admin.server("web", a.addr)["state"],
        "ready",
        "nothing changed"
    );
    let own = format!("Origin: http://{}", admin.addr);
    let answer = http(admin.addr, "POST", &path, &[&own], "drain");
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn connections_come_in_pages_in_id_order_across_workers() {
    setup();
    let a = named(b'a');
    let admin = Admin::start(
        "admin-pages",
        &file("workers = 2", &route("web", &[a.addr], "")),
        &[],
    );
    let web = listen_of(&admin, "web");
    let clients: Vec<_> = (0..7).map(|_| client(web)).collect();
    let all = admin.connections("");
    assert_eq!(all.len(), 7, "{all:?}");
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let query = match after {
            Some(id) => format!("?limit=3&after={id}"),
            None => "?limit=3".to_string(),
        };
        let page = admin.connections(&query);
        assert!(page.len() <= 3, "{page:?}");
        let ids: Vec<u64> = page.iter().map(|c| c["id"].as_u64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending: {ids:?}");
        let Some(&last) = ids.last() else { break };
        paged.extend(ids);
        after = Some(last);
    }
    let mut every: Vec<u64> = all.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    every.sort_unstable();
    assert_eq!(paged, every, "every connection once, in id order");
    let filtered = admin.connections("?limit=1&route=web&older=1ms");
    assert_eq!(filtered.len(), 1);
    let answer = http(admin.addr, "GET", "/connections?limit=0", &[], "");
    assert_eq!(answer.status, 400, "{}", answer.body);
    drop(clients);
}

#[test]
fn a_loopback_admin_answers_only_its_own_host_names() {
    setup();
    let a = named(b'a');
    let admin = Admin::start("admin-host", &file("", &route("web", &[a.addr], "")), &[]);
    let port = admin.addr.port();
    // A page whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own name.
    for host in [
        format!("Host: rebound.example:{port}"),
        "Host: rebound.example".to_string(),
        format!("Host: 127.0.0.1:{}", port + 1),
    ] {
        let answer = http(admin.addr, "GET", "/servers", &[&host], "");
        assert_eq!(answer.status, 403, "{host}: {}", answer.body);
        assert!(answer.body.contains("Host"), "{}", answer.body);
    }
    for host in [
        format!("Host: {}", admin.addr),
        format!("Host: localhost:{port}"),
        format!("Host: LOCALHOST:{port}"),
    ] {
        let answer = http(admin.addr, "GET", "/servers", &[&host], "");
        assert_eq!(answer.status, 200, "{host}: {}", answer.body);
    }
}

#[test]
fn a_get_changes_nothing_and_mistakes_get_clear_errors() {
    setup();
    let a = named(b'a');
    let admin = Admin::start("admin-get", &file("", &route("web", &[a.addr], "")), &[]);
    let web = listen_of(&admin, "web");
    let (mut open, _) = client(web);
    let id = admin.connections("")[0]["id"].as_u64().unwrap();
    for path in [
        format!("/servers/web/{}/state", a.addr),
        format!("/servers/web/{}/shutdown", a.addr),
        format!("/connections/{id}/close"),
    ] {
        let answer = http(admin.addr, "GET", &path, &[], "maint");
        assert_eq!(answer.status, 405, "{path}");
        assert!(answer.head.contains("\r\nAllow: POST"), "{}", answer.head);
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        assert!(body["error"].is_string());
    }
    round_trip(&mut open, b"still open");
    assert_eq!(admin.server("web", a.addr)["state"], "ready");
    assert_eq!(admin.post("/servers", "").status, 405);
    let cases = [
        (format!("/servers/web/{}/state", a.addr), "sleep", 400),
        ("/servers/web/127.0.0.1:1/state".to_string(), "drain", 404),
        (format!("/servers/nope/{}/state", a.addr), "drain", 404),
        (
            "/servers/web/not-an-address/state".to_string(),
            "drain",
            400,
        ),
        ("/connections/999999/close".to_string(), "", 404),
        ("/connections/999999999999999/close".to_string(), "", 404),
        ("/elsewhere".to_string(), "", 404),
    ];
    for (path, body, status) in cases {
        let answer = admin.post(&path, body);
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        let json: Value = serde_json::from_str(&answer.body).unwrap();
        assert!(json["error"].is_string(), "{json}");
    }
    assert_eq!(
        http(admin.addr, "GET", "/connections?older=soon", &[], "").status,
        400
    );
}

/// What a GET of `/servers` at `addr` reads before the admin closes: empty when the client
/// was closed at accept.
fn read_servers(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let request = format!("GET /servers HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let _ = s.write_all(request.as_bytes());
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_reload_replaces_admin_allow() {
    setup();
    // The admin on the front namespace's address, a client from the back namespace's
    // 192.0.2.2: not loopback, so admin_allow alone decides.
    let Some(lab) = Lab::new() else { return };
    let routes = route("web", &["127.0.0.1:1".parse().unwrap()], "");
    let text =
        |allow: &str| format!("admin = \"{FRONT_IP}:0\"\nadmin_allow = [\"{allow}\"]\n{routes}");
    let admin = lab
        .front
        .run(|| Admin::start("admin-allow", &text("198.51.100.0/24"), &[]));
    let addr = admin.addr;
    let ask = || lab.back.run(move || read_servers(addr));
    assert_eq!(ask(), "", "outside admin_allow: closed at accept");
    admin.reload(&text("192.0.2.0/24"));
    let answer = ask();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        admin
            .proxy
            .log()
            .iter()
            .any(|l| l.contains("admin_allow: the new list")),
        "{:?}",
        admin.proxy.log()
    );
    admin.reload(&text("198.51.100.0/24"));
    assert_eq!(ask(), "", "taken out again");
}

#[test]
fn a_non_loopback_admin_needs_admin_allow() {
    setup();
    let dir = TempDir::new("admin-check");
    let path = dir.join("ringproxy.toml");
    let routes = route("web", &["127.0.0.1:1".parse().unwrap()], "");
    std::fs::write(&path, format!("admin = \"0.0.0.0:9101\"\n{routes}")).unwrap();
    let path = path.to_str().unwrap();
    for args in [&["--config", path, "--check"][..], &["--config", path]] {
        let out = run_bin(args, IO_TIMEOUT);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("admin: expected a loopback address"),
            "{}",
            out.stderr
        );
    }
    let flags = [
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:1",
        "--admin",
        "[::]:9101",
    ];
    let out = run_bin(&flags, IO_TIMEOUT);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    let allowed = dir.join("allowed.toml");
    let text = format!("admin = \"0.0.0.0:9101\"\nadmin_allow = [\"10.0.0.0/8\"]\n{routes}");
    std::fs::write(&allowed, text).unwrap();
    let out = run_bin(
        &["--config", allowed.to_str().unwrap(), "--check"],
        IO_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
}

#[test]
fn a_busy_admin_port_is_named_in_the_error() {
    setup();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:1",
        "--admin",
        &addr,
    ];
    let out = run_bin(&args, IO_TIMEOUT);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("cannot serve the admin API on {addr}")),
        "{}",
        out.stderr
    );
}

#[test]
fn two_workers_answer_as_one() {
    setup();
    let (a, b) = (named(b'a'), named(b'b'));
    let admin = Admin::start(
        "admin-workers",
        &file("workers = 2", &route("web", &[a.addr, b.addr], "")),
        &[],
    );
    let web = listen_of(&admin, "web");
    let mut open = Vec::new();
    let mut workers = std::collections::HashSet::new();
    while workers.len() < 2 {
        assert!(
            open.len() < 64,
            "SO_REUSEPORT spread 64 clients over one worker"
        );
        open.push(client(web));
        let conns = admin.connections("");
        assert_eq!(
            conns.len(),
            open.len(),
            "every worker's connections are listed"
        );
        workers = conns
            .iter()
            .map(|c| c["worker"].as_u64().unwrap())
            .collect();
    }
    let servers = admin.get("/servers");
    let active: u64 = servers
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["active"].as_u64().unwrap())
        .sum();
    assert_eq!(
        active as usize,
        open.len(),
        "counts add up over the workers"
    );
    admin.set("web", a.addr, "drain");
    for _ in 0..20 {
        assert_eq!(client(web).1, b'b', "both workers drained a");
    }
    for (s, _) in &mut open {
        round_trip(s, b"still here");
    }
}
