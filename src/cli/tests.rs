use super::*;
use crate::settings::{BalancePolicy, LogFormat};
use std::time::Duration;

fn run(args: &[&str]) -> Result<Command, UsageError> {
    parse(args.iter().map(OsString::from).collect())
}

fn full_config(args: &[&str]) -> Config {
    match run(args) {
        Ok(Command::Run {
            source: Source::Flags(config),
            ..
        }) => config.into_inner(),
        other => panic!("expected a run command, got {other:?}"),
    }
}

/// The single route of a flag configuration.
fn config(args: &[&str]) -> crate::config::Route {
    full_config(args).routes.remove(0)
}

fn error_flag(args: &[&str]) -> String {
    run(args).expect_err("expected a usage error").flag
}

#[test]
fn minimal_command_line_uses_defaults() {
    let c = config(&["-l", "127.0.0.1:8080", "-u", "127.0.0.1:8078"]);
    assert_eq!(c.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
    assert_eq!(c.upstreams, vec![UpstreamSpec::new("127.0.0.1:8078")]);
    assert_eq!(c.settings, RouteSettings::default());
    assert_eq!(c.settings.buffer_size, 16384);
    assert_eq!(c.settings.connect_timeout, Duration::from_secs(5));
    assert_eq!(c.settings.idle_timeout, Duration::from_secs(600));
    assert_eq!(c.settings.backlog, 1024);
    let global = full_config(&["-l", "127.0.0.1:8080", "-u", "127.0.0.1:8078"]).global;
    assert_eq!(global, Global::default());
}

#[test]
fn flag_equals_value_is_the_same_as_flag_space_value() {
    let spaced = full_config(&[
        "-l",
        "127.0.0.1:8080",
        "--upstream",
        "127.0.0.1:8078,weight=2",
        "--admin",
        "127.0.0.1:9000",
        "--buffer-size",
        "32k",
        "-v",
    ]);
    let joined = full_config(&[
        "-l=127.0.0.1:8080",
        "--upstream=127.0.0.1:8078,weight=2",
        "--admin=127.0.0.1:9000",
        "--buffer-size=32k",
        "-v",
    ]);
    assert_eq!(joined, spaced);
    // `-u=…,weight=…` holds an `h`: it is a value, not combined short flags with `-h`.
    let c = config(&["-l=127.0.0.1:1", "-u=127.0.0.1:2,weight=3"]);
    assert_eq!(c.upstreams.len(), 1);
    assert_eq!(error_flag(&["-l=", "-u", "127.0.0.1:1"]), "--listen");
    assert_eq!(
        error_flag(&["-l", "127.0.0.1:1", "-u", "127.0.0.1:2", "--check=yes"]),
        "--check=yes"
    );
}

#[test]
fn every_flag_is_read() {
    let c = config(&[
        "--listen",
        "[::1]:9000",
        "--upstream",
        "a:1",
        "-u",
        "[::1]:2",
        "--buffer-size",
        "1MiB",
        "--connect-timeout",
        "250ms",
        "--idle-timeout",
        "1h",
        "--backlog",
        "16",
    ]);
    assert_eq!(c.listen, vec!["[::1]:9000".parse().unwrap()]);
    assert_eq!(c.upstreams.len(), 2);
    assert_eq!(c.settings.buffer_size, 1 << 20);
    assert_eq!(c.settings.connect_timeout, Duration::from_millis(250));
    assert_eq!(c.settings.idle_timeout, Duration::from_secs(3600));
    assert_eq!(c.settings.backlog, 16);
    let g = full_config(&[
        "-l",
        "127.0.0.1:1",
        "-u",
        "h:1",
        "--max-conns",
        "10",
        "--workers",
        "4",
        "--access-log",
        "-",
        "--access-log-format",
        "json",
        "--metrics",
        "127.0.0.1:9100",
        "--drain-timeout",
        "2s",
    ])
    .global;
    assert_eq!(g.max_conns, Some(10));
    assert_eq!(g.workers, 4);
    assert_eq!(g.access_log.as_deref(), Some("-"));
    assert_eq!(g.access_log_format, LogFormat::Json);
    assert_eq!(g.metrics, Some("127.0.0.1:9100".parse().unwrap()));
    assert_eq!(g.drain_timeout, Duration::from_secs(2));
    let g = full_config(&["-l", "127.0.0.1:1", "-u", "h:1", "--workers", "auto"]).global;
    assert!(g.workers >= 1);
}

#[test]
fn config_file_excludes_other_configuration_flags() {
    match run(&["--config", "x.toml", "--check"]) {
        Ok(Command::Run {
            source: Source::File(path),
            check: true,
            ..
        }) => assert_eq!(path, PathBuf::from("x.toml")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error_flag(&["--config", "x.toml", "-l", "127.0.0.1:1"]),
        "-l"
    );
}

#[test]
fn server_options_and_pool_flags() {
    let c = config(&[
        "-l",
        "127.0.0.1:1",
        "-u",
        "10.0.0.1:80,weight=3,max-conns=200",
        "-u",
        "10.0.0.2:80,max_conns=5",
        "-u",
        "10.0.0.3:80,backup",
        "-u",
        "10.0.0.4:80,down",
        "--balance",
        "least-conn",
        "--tries",
        "2",
        "--tries-timeout",
        "3s",
        "--max-fails",
        "0",
        "--fail-timeout",
        "30s",
        "--health-interval",
        "2s",
        "--health-timeout",
        "1s",
        "--health-rise",
        "1",
        "--health-fall",
        "5",
    ]);
    let mut expected = UpstreamSpec::new("10.0.0.1:80");
    expected.options.weight = 3;
    expected.options.max_conns = Some(200);
    assert_eq!(c.upstreams[0], expected);
    assert_eq!(c.upstreams[1].options.max_conns, Some(5));
    assert!(c.upstreams[2].options.backup && !c.upstreams[2].options.down);
    assert!(c.upstreams[3].options.down);
    let s = &c.settings;
    assert_eq!(s.balance, BalancePolicy::LeastConn);
    assert_eq!(s.tries, Some(2));
    assert_eq!(s.tries_timeout, Some(Duration::from_secs(3)));
    assert_eq!((s.max_fails, s.fail_timeout), (0, Duration::from_secs(30)));
    assert_eq!(s.health_interval, Some(Duration::from_secs(2)));
    assert_eq!(s.health_timeout, Some(Duration::from_secs(1)));
    assert_eq!((s.health_rise, s.health_fall), (1, 5));
    for policy in ["round-robin", "ip-hash", "random-two"] {
        let c = config(&["-l", "127.0.0.1:1", "-u", "h:1", "--balance", policy]);
        assert_eq!(
            crate::settings::kinds::Named::name(c.settings.balance),
            policy
        );
    }
}

#[test]
fn bad_pools_are_usage_errors() {
    let l = ["-l", "127.0.0.1:1"];
    let with = |extra: &[&str]| {
        let mut v = l.to_vec();
        v.extend_from_slice(extra);
        run(&v).expect_err("expected a usage error")
    };
    for bad in [
        "h:1,weight=0",
        "h:1,weight=x",
        "h:1,colour=blue",
        "h:1,max-conns=0",
        "h:1,",
        "h:1,backup=yes",
        "h:1,weight",
    ] {
        let e = with(&["-u", bad]);
        assert_eq!(e.flag, "--upstream", "{bad}");
    }
    let e = with(&["-u", "h:1,weight=0"]);
    assert_eq!(
        e.to_string(),
        "--upstream: expected weight=a whole number from 1 to 1000, got 'weight=0'"
    );
    let e = with(&["-u", "h:1,colour=blue"]);
    assert!(
        e.to_string().contains("max-conns=N (default unlimited)"),
        "{e}"
    );
    let e = with(&["-u", "h:1,weight=2", "-u", "h:1"]);
    assert!(e.to_string().contains("each server listed once"), "{e}");
    let e = with(&["-u", "h:1,backup", "-u", "h:2,down"]);
    assert!(e.to_string().contains("neither down nor backup"), "{e}");
    assert_eq!(
        with(&["-u", "h:1", "--balance", "fastest"]).flag,
        "--balance"
    );
    assert_eq!(with(&["-u", "h:1", "--tries", "0"]).flag, "--tries");
    assert_eq!(
        with(&["-u", "h:1", "--health-rise", "0"]).flag,
        "--health-rise"
    );
    assert_eq!(
        with(&["-u", "h:1", "--health-interval", "0s"]).flag,
        "--health-interval"
    );
}

#[test]
fn verbosity_counts() {
    match run(&["-vv", "-l", "127.0.0.1:1", "-u", "h:1"]) {
        Ok(Command::Run { verbosity, .. }) => assert_eq!(verbosity, 2),
        other => panic!("{other:?}"),
    }
    match run(&["-q", "-l", "127.0.0.1:1", "-u", "h:1"]) {
        Ok(Command::Run { verbosity, .. }) => assert_eq!(verbosity, -1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn help_and_version() {
    assert!(matches!(run(&["--help"]), Ok(Command::Help)));
    assert!(matches!(run(&["-V"]), Ok(Command::Version)));
}

#[test]
fn help_lists_every_setting_with_its_default() {
    let text = help();
    for field in RouteSettings::fields().iter().chain(Global::fields()) {
        let line = text
            .lines()
            .position(|l| l.trim_start().split(' ').next() == Some(field.flag))
            .unwrap_or_else(|| panic!("{} missing from\n{text}", field.flag));
        let entry: String = text.lines().skip(line).take(3).collect();
        assert!(
            entry.contains(&format!("[default: {}]", field.default)),
            "{}: {entry}",
            field.flag
        );
    }
    assert!(text.contains("[default: 16KiB]"), "{text}");
    assert!(
        text.contains("[default: (descriptor limit - 32) / 2]"),
        "{text}"
    );
    assert!(text.contains("weight=N (default 1)"), "{text}");
    for line in text.lines() {
        assert!(line.len() <= 92, "too long: {line}");
    }
}

#[test]
fn bad_values_name_their_flag() {
    let base = ["-l", "127.0.0.1:1", "-u", "h:1"];
    let with = |extra: &[&str]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        error_flag(&v)
    };
    assert_eq!(error_flag(&["-u", "h:1"]), "--listen");
    assert_eq!(error_flag(&["-l", "127.0.0.1:1"]), "--upstream");
    assert_eq!(
        error_flag(&["-l", "example.test:80", "-u", "h:1"]),
        "--listen"
    );
    assert_eq!(
        error_flag(&["-l", "127.0.0.1:1", "-u", "nope"]),
        "--upstream"
    );
    assert_eq!(with(&["--buffer-size", "0"]), "--buffer-size");
    assert_eq!(with(&["--buffer-size", "1g"]), "--buffer-size");
    assert_eq!(with(&["--connect-timeout", "0"]), "--connect-timeout");
    assert_eq!(with(&["--idle-timeout", "forever"]), "--idle-timeout");
    assert_eq!(with(&["--max-conns", "0"]), "--max-conns");
    assert_eq!(with(&["--backlog", "70000"]), "--backlog");
    assert_eq!(with(&["--workers", "0"]), "--workers");
    assert_eq!(with(&["--workers", "1025"]), "--workers");
    assert_eq!(with(&["--workers", "many"]), "--workers");
    assert_eq!(with(&["--buffer-size"]), "--buffer-size");
    assert_eq!(with(&["--frobnicate"]), "--frobnicate");
    let e = run(&["-l", "127.0.0.1:1", "-u", "h:1", "--buffer-size", "0"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--buffer-size: expected a size such as 16384, \"16k\", \"16KiB\" or \"1MiB\", from \
         1 to 256MiB, got '0'"
    );
}

#[test]
fn proxy_protocol_flags() {
    let c = config(&[
        "-l",
        "127.0.0.1:1",
        "-u",
        "h:1,send-proxy=v2",
        "--accept-proxy",
        "--proxy-trusted",
        "10.0.0.0/8",
        "--proxy-trusted",
        "::1,192.0.2.7",
        "--proxy-timeout",
        "2s",
        "--send-proxy",
        "v1",
    ]);
    let s = &c.settings;
    assert!(s.accept_proxy);
    let trusted: Vec<String> = s.proxy_trusted.iter().map(|n| n.to_string()).collect();
    assert_eq!(trusted, ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]);
    assert_eq!(s.proxy_timeout, Duration::from_secs(2));
    assert_eq!(s.send_proxy, crate::proxy_protocol::Version::V1);
    assert_eq!(
        c.upstreams[0].options.send_proxy,
        Some(crate::proxy_protocol::Version::V2)
    );
    let base = ["-l", "127.0.0.1:1", "-u", "h:1"];
    let with = |extra: &[&str]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        run(&v).expect_err("a usage error")
    };
    let e = with(&["--proxy-trusted", "10.0.0.0/33"]);
    assert_eq!(e.flag, "--proxy-trusted");
    assert!(e.message.contains("a network such as"), "{e}");
    assert_eq!(with(&["--send-proxy", "v3"]).flag, "--send-proxy");
    assert!(
        with(&["--send-proxy", "v3"])
            .message
            .contains("one of \"off\", \"v1\", \"v2\"")
    );
    let defaults = config(&base);
    assert!(!defaults.settings.accept_proxy && defaults.settings.proxy_trusted.is_empty());
}

#[test]
fn server_name_flags() {
    let c = config(&[
        "-l",
        "127.0.0.1:1",
        "-u",
        "h:1",
        "--sni",
        "A.test",
        "--sni",
        "*.b.test,*",
        "--preread-timeout",
        "2s",
        "--preread-max",
        "8KiB",
    ]);
    let s = &c.settings;
    let sni: Vec<String> = s.sni.iter().map(|p| p.to_string()).collect();
    assert_eq!(sni, ["a.test", "*.b.test", "*"]);
    assert_eq!(s.preread_timeout, Duration::from_secs(2));
    assert_eq!(s.preread_max, 8 * 1024);
    let bad = |extra: &[&str]| {
        let mut v = vec!["-l", "127.0.0.1:1", "-u", "h:1"];
        v.extend_from_slice(extra);
        run(&v).expect_err("a usage error")
    };
    let e = bad(&["--sni", "a.*.test"]);
    assert_eq!(e.flag, "--sni");
    assert!(e.message.contains("a server name such as"), "{e}");
    let e = bad(&["--sni", "a.test", "--buffer-size", "4KiB"]);
    assert_eq!(e.flag, "--preread-max", "{e}");
    assert!(e.message.contains("at most buffer_size (4KiB)"), "{e}");
}

#[test]
fn messages_name_the_problem_and_suggest_the_flag() {
    let message = |args: &[&str]| run(args).expect_err("a usage error").to_string();
    assert_eq!(
        message(&["--lisen", "127.0.0.1:1", "-u", "h:1"]),
        "--lisen: unknown flag; did you mean --listen?"
    );
    assert_eq!(
        message(&["-l", "127.0.0.1:1", "-u", "h:1", "--conect-timeout", "1s"]),
        "--conect-timeout: unknown flag; did you mean --connect-timeout?"
    );
    assert_eq!(
        message(&["-l", "127.0.0.1:1", "-u", "h:1", "--frobnicate"]),
        "--frobnicate: unknown flag"
    );
    assert!(message(&["-u", "h:1"]).starts_with("--listen: required, expected an address"));
    assert!(message(&["-l", "127.0.0.1:1"]).starts_with("--upstream: required, expected"));
    assert_eq!(
        message(&[
            "-l",
            "127.0.0.1:1",
            "-u",
            "h:1",
            "--backlog",
            "5",
            "--backlog",
            "6"
        ]),
        "--backlog: given more than once (again as '6'); it takes one value"
    );
    assert!(
        message(&["-l", "127.0.0.1:1", "-l", "127.0.0.1:2", "-u", "h:1"])
            .starts_with("--listen: given more than once")
    );
    assert!(message(&["-l", "127.0.0.1:1", "-u", "h:1", "stray"]).starts_with("stray: unexpected"));
    // Repeatable flags may repeat.
    assert!(
        run(&[
            "-l",
            "127.0.0.1:1",
            "-u",
            "h:1",
            "-u",
            "h:2",
            "--allow",
            "10.0.0.0/8",
            "--allow",
            "::1"
        ])
        .is_ok()
    );
    assert!(
        !message(&["--lisen", "x"]).contains("see --help"),
        "main adds it once"
    );
}
