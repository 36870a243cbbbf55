use super::*;
use crate::settings::{BalancePolicy, LogFormat};
use std::time::Duration;

/// The example from the module documentation.
const BRIEF: &str = r#"# global settings: the long flag names with '-' turned into '_'
max_conns = 10000
workers = 2            # or "auto"
access_log = "/var/log/ringproxy/access.log"   # or "-"
access_log_format = "text"    # or "json"
metrics = "127.0.0.1:9100"
drain_timeout = "30s"

[[route]]
name = "web"
listen = ["0.0.0.0:8080", "[::]:8080"]    # a single string is accepted too
balance = "least-conn"
connect_timeout = "2s"          # any per-route flag, same name with '_'
buffer_size = "16KiB"           # or an integer number of bytes
servers = [
  { addr = "10.0.0.1:80", weight = 3, max_conns = 200 },
  { addr = "10.0.0.2:80" },
  { addr = "backup.internal:80", backup = true },
]
"#;

/// A small valid file; tests append to or edit it. Line numbers matter: `[[route]]` is
/// line 2, `servers` line 5.
const MINIMAL: &str = "workers = 1\n[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:8080\"\n\
                       servers = [{ addr = \"127.0.0.1:80\" }]\n";

fn ok(text: &str) -> Config {
    parse(text, Path::new("test.toml"))
        .unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
        .into_inner()
}

fn err(text: &str) -> FileError {
    match parse(text, Path::new("test.toml")) {
        Ok(c) => panic!("expected an error, got {c:?}\n---\n{text}"),
        Err(e) => e,
    }
}

/// Asserts the error is at `line` and `field` and its message contains `words`.
#[track_caller]
fn check(e: &FileError, line: Option<usize>, field: Option<&str>, words: &str) {
    assert_eq!(e.path, Path::new("test.toml"), "{e}");
    assert_eq!(e.line, line, "{e}");
    assert_eq!(e.field.as_deref(), field, "{e}");
    assert!(e.message.contains(words), "'{words}' not in: {e}");
}

#[test]
fn the_documented_example_parses() {
    let c = ok(BRIEF);
    let global = Global {
        max_buffered: None,
        max_conns: Some(10000),
        workers: 2,
        access_log: Some("/var/log/ringproxy/access.log".into()),
        access_log_format: LogFormat::Text,
        metrics: Some("127.0.0.1:9100".parse().unwrap()),
        drain_timeout: Duration::from_secs(30),
        ..Global::default()
    };
    let mut route = Route::new(
        "web",
        vec![
            "0.0.0.0:8080".parse().unwrap(),
            "[::]:8080".parse().unwrap(),
        ],
        vec![
            UpstreamSpec::new("10.0.0.1:80"),
            UpstreamSpec::new("10.0.0.2:80"),
            UpstreamSpec::new("backup.internal:80"),
        ],
    );
    route.upstreams[0].options.weight = 3;
    route.upstreams[0].options.max_conns = Some(200);
    route.upstreams[2].options.backup = true;
    route.settings.balance = BalancePolicy::LeastConn;
    route.settings.connect_timeout = Duration::from_secs(2);
    route.settings.buffer_size = 16 * 1024;
    let expected = Config {
        global,
        routes: vec![route],
    };
    assert_eq!(c, expected);
}

#[test]
fn defaults_are_applied() {
    let c = ok(&MINIMAL.replace("workers = 1\n", ""));
    let expected = Config::new(
        "127.0.0.1:8080".parse().unwrap(),
        vec![UpstreamSpec::new("127.0.0.1:80")],
    );
    let expected = Config {
        routes: vec![Route {
            name: "a".into(),
            ..expected.routes[0].clone()
        }],
        ..expected
    };
    assert_eq!(c, expected);
    assert_eq!(c.global, Global::default());
}

#[test]
fn listen_may_be_one_string_or_an_array() {
    let one = ok(MINIMAL);
    assert_eq!(
        one.routes[0].listen,
        vec!["127.0.0.1:8080".parse().unwrap()]
    );
    let many = ok(&MINIMAL.replace(
        "listen = \"127.0.0.1:8080\"",
        "listen = [\"127.0.0.1:8080\", \"[::1]:8080\"]",
    ));
    assert_eq!(many.routes[0].listen.len(), 2);
}

#[test]
fn every_setting_is_read() {
    let c = ok(&format!(
        "{MINIMAL}buffer_size = 1000\nconnect_timeout = 3\nidle_timeout = \"1h\"\n\
         backlog = 16\nbalance = \"random-two\"\ntries = 2\ntries_timeout = \"500ms\"\n\
         max_fails = 0\nfail_timeout = \"1m\"\nhealth_interval = \"2s\"\n\
         health_timeout = \"1s\"\nhealth_rise = 1\nhealth_fall = 5\n"
    )
    .replace(
        "workers = 1",
        "workers = \"auto\"\naccess_log_format = \"json\"",
    ));
    assert!(c.global.workers >= 1);
    assert_eq!(c.global.access_log_format, LogFormat::Json);
    let r = &c.routes[0];
    assert_eq!(r.settings.buffer_size, 1000);
    assert_eq!(r.settings.connect_timeout, Duration::from_secs(3));
    assert_eq!(r.settings.idle_timeout, Duration::from_secs(3600));
    assert_eq!(r.settings.backlog, 16);
    assert_eq!(r.settings.balance, BalancePolicy::RandomTwo);
    assert_eq!(r.settings.tries, Some(2));
    assert_eq!(r.settings.tries_timeout, Some(Duration::from_millis(500)));
    assert_eq!(
        (r.settings.max_fails, r.settings.fail_timeout),
        (0, Duration::from_secs(60))
    );
    assert_eq!(r.settings.health_interval, Some(Duration::from_secs(2)));
    assert_eq!(r.settings.health_timeout, Some(Duration::from_secs(1)));
    assert_eq!((r.settings.health_rise, r.settings.health_fall), (1, 5));
}

#[test]
fn servers_may_be_tables_of_their_route() {
    let c = ok("[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\n\
                [[route.servers]]\naddr = \"h:1\"\n[[route.servers]]\naddr = \"h:2\"\ndown = true\n");
    assert_eq!(c.routes[0].upstreams.len(), 2);
    assert!(c.routes[0].upstreams[1].options.down);
}

#[test]
fn the_example_file_parses() {
    let c = ok(include_str!("../../examples/ringproxy.toml"));
    assert_eq!(c.routes.len(), 4);
    assert_eq!(c.global.workers, 2);
    let web = &c.routes[0];
    assert_eq!((web.name.as_str(), web.listen.len()), ("web", 2));
    assert_eq!(web.upstreams.len(), 4);
    assert!(web.upstreams[2].options.backup && web.upstreams[3].options.down);
    assert_eq!(web.settings.health_interval, Some(Duration::from_secs(2)));
    let db = &c.routes[1];
    assert_eq!(db.name, "db");
    assert_eq!(db.settings.balance, BalancePolicy::IpHash);
    assert_eq!(db.settings.idle_timeout, Duration::from_secs(3600));
    assert_eq!(db.settings.buffer_size, 65536);
    assert_eq!(db.upstreams[1].options.weight, 2);
    let tls = &c.routes[2];
    assert_eq!(
        tls.listen, c.routes[3].listen,
        "two routes share by server name"
    );
    let sni: Vec<String> = tls.settings.sni.iter().map(|p| p.to_string()).collect();
    assert_eq!(sni, ["app.example.com", "*.app.example.com"]);
    // `load` reads the same file from disk.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ringproxy.toml");
    assert_eq!(load(&path).expect("loads").into_inner(), c);
}

#[test]
fn render_round_trips() {
    let mut all_set = ok(BRIEF);
    let r = &mut all_set.routes[0];
    r.settings.tries = Some(4);
    r.settings.tries_timeout = Some(Duration::from_millis(1500));
    r.settings.health_interval = Some(Duration::from_secs(90));
    r.settings.health_timeout = Some(Duration::from_secs(86_400));
    r.settings.buffer_size = 1000;
    r.upstreams[1].options.down = true;
    r.name = "odd \"name\" \\ here".into();
    all_set.global.access_log = Some("C:\\logs\\a \"b\".log".into());
    for config in [
        ok(BRIEF),
        ok(MINIMAL),
        ok(include_str!("../../examples/ringproxy.toml")),
        all_set,
    ] {
        let text = render(&config);
        assert_eq!(ok(&text), config, "{text}");
        assert_eq!(render(&ok(&text)), text, "rendering is stable");
    }
}

#[test]
fn render_shows_every_setting() {
    let text = render(&ok(MINIMAL));
    for key in [
        "max_conns",
        "workers",
        "access_log",
        "access_log_format",
        "metrics",
        "drain_timeout",
        "name",
        "listen",
        "balance",
        "buffer_size",
        "connect_timeout",
        "idle_timeout",
        "backlog",
        "tries",
        "tries_timeout",
        "max_fails",
        "fail_timeout",
        "health_interval",
        "health_timeout",
        "health_rise",
        "health_fall",
        "servers",
        "weight",
        "backup",
        "down",
    ] {
        assert!(text.contains(key), "{key} missing from\n{text}");
    }
    assert!(text.contains("buffer_size = \"16KiB\""), "{text}");
    assert!(text.contains("idle_timeout = \"10m\""), "{text}");
    assert!(
        text.contains(
            "{ addr = \"127.0.0.1:80\", weight = 1, backup = false, down = false, resolve = false }"
        ),
        "{text}"
    );
}

#[test]
fn display_leaves_out_what_is_unknown() {
    let mut e = FileError {
        path: "ringproxy.toml".into(),
        line: Some(14),
        field: Some("route[0].servers[1].weight".into()),
        message: "expected a whole number from 1 to 1000, got 0".into(),
    };
    assert_eq!(
        e.to_string(),
        "ringproxy.toml:14: route[0].servers[1].weight: expected a whole number from 1 to 1000, got 0"
    );
    e.line = None;
    assert_eq!(
        e.to_string(),
        "ringproxy.toml: route[0].servers[1].weight: expected a whole number from 1 to 1000, got 0"
    );
    e.field = None;
    assert_eq!(
        e.to_string(),
        "ringproxy.toml: expected a whole number from 1 to 1000, got 0"
    );
}

#[test]
fn an_unreadable_file_names_the_file() {
    let e = load(Path::new("/nonexistent/ringproxy.toml")).expect_err("no such file");
    assert_eq!(e.path, Path::new("/nonexistent/ringproxy.toml"));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/ringproxy.toml: cannot read"),
        "{e}"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let e = err(&format!("{MINIMAL}backlog = = 3\n"));
    check(&e, Some(6), Some("route[0].backlog"), "extra `=`");
    assert!(!e.message.contains('\n'), "one line: {e}");
    let e = err("workers = 2\n\nmetrics = \"127.0.0.1:1\n");
    check(&e, Some(3), Some("metrics"), "invalid basic string");
    let e = err(&MINIMAL.replace("}]", "}, { addr = \"h:1\", addr = \"h:2\" }]"));
    check(
        &e,
        Some(5),
        Some("route[0].servers[1].addr"),
        "duplicate key",
    );
    // Where nothing around the error parsed, only the line is known.
    check(&err("garbage\n"), Some(1), None, "expected `=`");
    check(
        &err(&format!("{MINIMAL}name = \"b\"\n")),
        Some(6),
        Some("route[0].name"),
        "duplicate key",
    );
}

#[test]
fn unknown_keys_are_errors() {
    let e = err(&format!("colour = \"blue\"\n{MINIMAL}"));
    check(&e, Some(1), Some("colour"), "unknown key");
    assert!(e.message.contains("`max_conns`"), "lists the keys: {e}");
    let e = err(&format!("max-conns = 5\n{MINIMAL}"));
    check(&e, Some(1), Some("max-conns"), "`max_conns`");
    check(
        &err(&format!("{MINIMAL}colour = 1\n")),
        Some(6),
        Some("route[0].colour"),
        "unknown key",
    );
    let e = err(&MINIMAL.replace("{ addr", "{ colour = 1, addr"));
    check(
        &e,
        Some(5),
        Some("route[0].servers[0].colour"),
        "unknown key",
    );
    // A per-route key at the top level is unknown there.
    check(
        &err(&format!("balance = \"ip-hash\"\n{MINIMAL}")),
        Some(1),
        Some("balance"),
        "unknown key",
    );
}

#[test]
fn wrong_types_are_errors() {
    check(
        &err(&MINIMAL.replace("workers = 1", "workers = true")),
        Some(1),
        Some("workers"),
        "expected a whole number from 1 to 1024, or \"auto\", got true",
    );
    check(
        &err(&MINIMAL.replace("\"a\"", "7")),
        Some(3),
        Some("route[0].name"),
        "got 7",
    );
    check(
        &err(&MINIMAL.replace("127.0.0.1:80\" }", "127.0.0.1:80\", backup = \"yes\" }")),
        Some(5),
        Some("route[0].servers[0].backup"),
        "expected true or false, got \"yes\"",
    );
    check(
        &err("route = 5\n"),
        Some(1),
        Some("route"),
        "expected one or more [[route]] tables, got 5",
    );
    check(
        &err("[route]\nname = \"a\"\n"),
        Some(1),
        Some("route"),
        "[[route]]",
    );
    check(
        &err(&MINIMAL.replace("[{ addr = \"127.0.0.1:80\" }]", "\"127.0.0.1:80\"")),
        Some(5),
        Some("route[0].servers"),
        "expected an array of servers",
    );
    check(
        &err(&MINIMAL.replace("[{ addr = \"127.0.0.1:80\" }]", "[\"127.0.0.1:80\"]")),
        Some(5),
        Some("route[0].servers[0]"),
        "expected a server table",
    );
    check(
        &err(&MINIMAL.replace("\"127.0.0.1:8080\"", "8080")),
        Some(4),
        Some("route[0].listen"),
        "got 8080",
    );
    check(
        &err(&format!("max_conns = 1.5\n{MINIMAL}")),
        Some(1),
        Some("max_conns"),
        "from 1 to 16777216, got 1.5",
    );
    check(
        &err(&format!("max_conns = 99999999999999999999\n{MINIMAL}")),
        Some(1),
        Some("max_conns"),
        "got 99999999999999999999",
    );
}

#[test]
fn bad_values_are_errors() {
    let with = |extra: &str| err(&format!("{MINIMAL}{extra}\n"));
    check(
        &with("connect_timeout = \"5x\""),
        Some(6),
        Some("route[0].connect_timeout"),
        "expected a duration",
    );
    check(
        &with("idle_timeout = \"0s\""),
        Some(6),
        Some("route[0].idle_timeout"),
        "got \"0s\"",
    );
    check(
        &with("idle_timeout = 0"),
        Some(6),
        Some("route[0].idle_timeout"),
        "got 0",
    );
    check(
        &with("fail_timeout = \"31d\""),
        Some(6),
        Some("route[0].fail_timeout"),
        "at most 30d",
    );
    check(
        &with("buffer_size = \"16 KiB\""),
        Some(6),
        Some("route[0].buffer_size"),
        "expected a size",
    );
    check(
        &with("buffer_size = 0"),
        Some(6),
        Some("route[0].buffer_size"),
        "got 0",
    );
    check(
        &with("buffer_size = \"1g\""),
        Some(6),
        Some("route[0].buffer_size"),
        "256MiB",
    );
    check(
        &with("backlog = 70000"),
        Some(6),
        Some("route[0].backlog"),
        "from 1 to 65535, got 70000",
    );
    check(
        &with("balance = \"fastest\""),
        Some(6),
        Some("route[0].balance"),
        "least-conn",
    );
    check(
        &with("tries = 0"),
        Some(6),
        Some("route[0].tries"),
        "from 1 to 1024",
    );
    check(
        &with("max_fails = -1"),
        Some(6),
        Some("route[0].max_fails"),
        "from 0 to 1000000, got -1",
    );
    check(
        &with("health_rise = 0"),
        Some(6),
        Some("route[0].health_rise"),
        "from 1 to 1000",
    );
    check(
        &with("health_fall = 1001"),
        Some(6),
        Some("route[0].health_fall"),
        "from 1 to 1000",
    );
    let global = |line: &str| err(&MINIMAL.replace("workers = 1", line));
    check(&global("workers = 0"), Some(1), Some("workers"), "got 0");
    check(
        &global("workers = \"many\""),
        Some(1),
        Some("workers"),
        "got \"many\"",
    );
    check(
        &global("max_conns = 0"),
        Some(1),
        Some("max_conns"),
        "got 0",
    );
    check(
        &global("metrics = \"localhost:9100\""),
        Some(1),
        Some("metrics"),
        "expected an address",
    );
    check(
        &global("access_log = \"\""),
        Some(1),
        Some("access_log"),
        "a file path",
    );
    check(
        &global("access_log_format = \"xml\""),
        Some(1),
        Some("access_log_format"),
        "\"text\" or \"json\"",
    );
    check(
        &global("drain_timeout = \"forever\""),
        Some(1),
        Some("drain_timeout"),
        "expected a duration",
    );
}

#[test]
fn bad_servers_are_errors() {
    let servers = |list: &str| err(&MINIMAL.replace("[{ addr = \"127.0.0.1:80\" }]", list));
    check(
        &servers("[\n  { addr = \"h:1\" },\n  { addr = \"h:2\", weight = 0 },\n]"),
        Some(7),
        Some("route[0].servers[1].weight"),
        "expected a whole number from 1 to 1000, got 0",
    );
    check(
        &servers("[{ addr = \"h:1\", weight = 1001 }]"),
        Some(5),
        Some("route[0].servers[0].weight"),
        "got 1001",
    );
    check(
        &servers("[{ addr = \"h:1\", max_conns = 0 }]"),
        Some(5),
        Some("route[0].servers[0].max_conns"),
        "from 1 to 16777216",
    );
    for bad in [
        "nope",
        "h:0",
        "h:70000",
        "::1:80",
        "a b:80",
        "h:1,backup",
        "",
    ] {
        let e = servers(&format!("[{{ addr = \"{bad}\" }}]"));
        check(
            &e,
            Some(5),
            Some("route[0].servers[0].addr"),
            "expected HOST:PORT",
        );
    }
    check(
        &servers(
            "[\n  { addr = \"h:1\" },\n  { addr = \"h:2\" },\n  { addr = \"h:1\", weight = 2 },\n]",
        ),
        Some(8),
        Some("route[0].servers[2].addr"),
        "h:1 is listed twice",
    );
    check(
        &servers("[{ addr = \"h:1\", backup = true }, { addr = \"h:2\", down = true }]"),
        Some(5),
        Some("route[0].servers"),
        "neither down nor backup",
    );
    check(
        &servers("[]"),
        Some(5),
        Some("route[0].servers"),
        "at least one server",
    );
    check(
        &servers("[{ weight = 2 }]"),
        Some(5),
        Some("route[0].servers[0].addr"),
        "required key is missing",
    );
}

#[test]
fn bad_listen_addresses_are_errors() {
    let listen = |value: &str| err(&MINIMAL.replace("\"127.0.0.1:8080\"", value));
    check(
        &listen("\"example.test:8080\""),
        Some(4),
        Some("route[0].listen"),
        "got \"example.test:8080\"",
    );
    check(
        &listen("[\"127.0.0.1:1\", \"nope\"]"),
        Some(4),
        Some("route[0].listen[1]"),
        "got \"nope\"",
    );
    check(
        &listen("[]"),
        Some(4),
        Some("route[0].listen"),
        "at least one address",
    );
    check(
        &listen("[\"127.0.0.1:1\", \"127.0.0.1:1\"]"),
        Some(4),
        Some("route[0].listen[1]"),
        "also listened on by this route",
    );
}

#[test]
fn routes_are_checked_together() {
    let second = |name: &str, listen: &str| {
        format!(
            "{MINIMAL}\n[[route]]\nname = \"{name}\"\nlisten = [\"127.0.0.1:9\", \"{listen}\"]\n\
             servers = [{{ addr = \"h:1\" }}]\n"
        )
    };
    ok(&second("b", "127.0.0.1:8081"));
    check(
        &err(&second("a", "127.0.0.1:8081")),
        Some(8),
        Some("route[1].name"),
        "route[0] is also named \"a\"",
    );
    check(
        &err(&second("b", "127.0.0.1:8080")),
        Some(9),
        Some("route[1].listen[1]"),
        "127.0.0.1:8080 is also listened on by route[0]",
    );
    check(
        &err("workers = 2\n"),
        None,
        Some("route"),
        "at least one [[route]]",
    );
    check(
        &err("workers = 2\nroute = []\n"),
        Some(2),
        Some("route"),
        "at least one [[route]]",
    );
}

#[test]
fn missing_required_keys_are_errors() {
    let without = |line: &str| err(&MINIMAL.replace(line, ""));
    check(
        &without("name = \"a\"\n"),
        Some(2),
        Some("route[0].name"),
        "required key is missing",
    );
    check(
        &without("listen = \"127.0.0.1:8080\"\n"),
        Some(2),
        Some("route[0].listen"),
        "required key is missing",
    );
    check(
        &without("servers = [{ addr = \"127.0.0.1:80\" }]\n"),
        Some(2),
        Some("route[0].servers"),
        "required key is missing",
    );
    // In a later route, the line is that route's header.
    let e = err(&format!(
        "{MINIMAL}[[route]]\nlisten = \"127.0.0.1:2\"\nservers = [{{ addr = \"h:1\" }}]\n"
    ));
    check(
        &e,
        Some(6),
        Some("route[1].name"),
        "required key is missing",
    );
}

#[test]
fn defaults_apply_to_every_route_that_does_not_set_them() {
    let text = format!(
        "[defaults]\nconnect_timeout = \"2s\"\nbalance = \"ip-hash\"\n\n{}\
         [[route]]\nname = \"b\"\nlisten = \"127.0.0.1:9\"\nbalance = \"least-conn\"\n\
         servers = [{{ addr = \"h:1\" }}]\n",
        MINIMAL.replace("workers = 1\n", "")
    );
    let c = ok(&text);
    let (a, b) = (&c.routes[0].settings, &c.routes[1].settings);
    assert_eq!(a.connect_timeout, Duration::from_secs(2));
    assert_eq!(b.connect_timeout, Duration::from_secs(2));
    assert_eq!(a.balance, BalancePolicy::IpHash);
    assert_eq!(
        b.balance,
        BalancePolicy::LeastConn,
        "a route's own value wins"
    );
    assert_eq!(
        a.idle_timeout,
        Duration::from_secs(600),
        "the rest stay default"
    );
    let rendered = render(&c);
    assert!(
        !rendered.contains("[defaults]"),
        "--check shows effective values"
    );
    assert_eq!(
        rendered.matches("connect_timeout = \"2s\"").count(),
        2,
        "{rendered}"
    );
    assert_eq!(ok(&rendered), c);
}

#[test]
fn defaults_hold_route_settings_only() {
    let with = |defaults: &str| {
        err(&format!(
            "{defaults}\n{}",
            MINIMAL.replace("workers = 1\n", "")
        ))
    };
    let e = with("[defaults]\ncolour = 1\n");
    check(&e, Some(2), Some("defaults.colour"), "unknown key");
    assert!(
        e.message.contains("`buffer_size`"),
        "lists the route settings: {e}"
    );
    check(
        &with("[defaults]\nworkers = 2\n"),
        Some(2),
        Some("defaults.workers"),
        "unknown key",
    );
    check(
        &with("[defaults]\nname = \"x\"\n"),
        Some(2),
        Some("defaults.name"),
        "unknown key",
    );
    check(
        &with("[defaults]\nidle_timeout = \"0s\"\n"),
        Some(2),
        Some("defaults.idle_timeout"),
        "expected a duration",
    );
    check(
        &with("defaults = 5\n"),
        Some(1),
        Some("defaults"),
        "expected a [defaults] table, got 5",
    );
    let e = err(&format!("balance = \"ip-hash\"\n{MINIMAL}"));
    assert!(
        e.message.contains("put it in [defaults] or a [[route]]"),
        "{e}"
    );
}

#[test]
fn proxy_protocol_keys() {
    let c = ok(&format!(
        "[defaults]\nproxy_timeout = \"1s\"\n{}accept_proxy = true\n\
         proxy_trusted = \"10.0.0.0/8\"\nsend_proxy = \"v2\"\n",
        MINIMAL.replace("workers = 1\n", "").replace(
            "{ addr = \"127.0.0.1:80\" }",
            "{ addr = \"127.0.0.1:80\", send_proxy = \"v1\" }"
        )
    ));
    let s = &c.routes[0].settings;
    assert!(s.accept_proxy);
    assert_eq!(s.proxy_trusted.len(), 1, "a single string is a list of one");
    assert_eq!(s.proxy_timeout, Duration::from_secs(1));
    assert_eq!(ok(&render(&c)), c);
    let e = err(&format!(
        "{MINIMAL}proxy_trusted = [\"10.0.0.0/8\", \"nope\"]\n"
    ));
    check(
        &e,
        Some(6),
        Some("route[0].proxy_trusted"),
        "a network such as",
    );
    let e = err(&format!("{MINIMAL}accept_proxy = \"yes\"\n"));
    check(&e, Some(6), Some("route[0].accept_proxy"), "true or false");
}

#[test]
fn routes_share_an_address_by_server_name() {
    let two = |b: &str| {
        format!(
            "[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:8443\"\nsni = [\"a.test\"]\n\
             servers = [{{ addr = \"h:1\" }}]\n[[route]]\nname = \"b\"\n\
             listen = \"127.0.0.1:8443\"\n{b}servers = [{{ addr = \"h:2\" }}]\n"
        )
    };
    let c = ok(&two("sni = [\"*\", \"*.B.test.\"]\n"));
    let sni: Vec<String> = c.routes[1]
        .settings
        .sni
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(sni, ["*", "*.b.test"]);
    check(
        &err(&two("")),
        Some(8),
        Some("route[1].listen"),
        "unless every route on it sets `sni`, but 127.0.0.1:8443 is also listened on by \
         route[0] \"a\"",
    );
    check(
        &err(&two("sni = [\"A.test\"]\n")),
        Some(9),
        Some("route[1].sni"),
        "\"a.test\" on 127.0.0.1:8443 is also taken by route[0] \"a\"",
    );
    check(
        &err(&two("sni = [\"*\"]\npreread_timeout = \"1s\"\n")),
        Some(10),
        Some("route[1].preread_timeout"),
        "but route[0] \"a\" has \"5s\" and this route \"1s\"",
    );
    check(
        &err(&two("sni = [\"a..b\"]\n")),
        Some(9),
        Some("route[1].sni"),
        "expected a server name such as \"a.example.com\"",
    );
}
