//! `/metrics` of the real binary with two workers, as Prometheus and Grafana read it: the
//! exposition passes `promtool check metrics`; across scrapes taken under traffic, health
//! checks and reloads (one of them failing), no counter or histogram series ever goes
//! down; the process-wide families describe this very process; and every metric that
//! `dist/grafana-dashboard.json` queries exists.

mod common;

use common::peers::{Peer, TempDir, have};
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The configuration: two workers, `max_conns = 100`, metrics on `metrics`, one route with
/// health checks every 100 ms over `servers` (the last one `down = true`).
fn write_config(
    path: &std::path::Path,
    listen: SocketAddr,
    metrics: SocketAddr,
    servers: &[SocketAddr],
) {
    let mut list: Vec<String> = servers
        .iter()
        .map(|s| format!("{{ addr = \"{s}\" }}"))
        .collect();
    if let Some(last) = list.last_mut() {
        *last = last.replace(" }", ", down = true }");
    }
    let text = format!(
        "workers = 2\nmax_conns = 100\nmetrics = \"{metrics}\"\n\n[[route]]\nname = \"web\"\n\
         listen = \"{listen}\"\nhealth_interval = \"100ms\"\nservers = [{}]\n",
        list.join(", ")
    );
    std::fs::write(path, text).unwrap();
}

/// The running binary with its configuration file and metrics address.
struct Running {
    proxy: BinProxy,
    dir: TempDir,
    listen: SocketAddr,
    metrics: SocketAddr,
}

impl Running {
    fn start(servers: &[SocketAddr]) -> Running {
        let dir = TempDir::new("metrics");
        let (listen, metrics) = (free_addr(), free_addr());
        write_config(&dir.join("rp.toml"), listen, metrics, servers);
        let mut cmd = Command::new(bin());
        cmd.arg("--config").arg(dir.join("rp.toml"));
        let proxy = BinProxy::spawn(cmd);
        Running {
            proxy,
            dir,
            listen,
            metrics,
        }
    }

    /// The body of `GET /metrics`.
    fn scrape(&self) -> String {
        let mut s = TcpStream::connect(self.metrics).expect("connect to /metrics");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).expect("read /metrics");
        let (head, body) = response.split_once("\r\n\r\n").expect("a whole response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_owned()
    }

    /// Waits until both workers' samples are in a scrape (worker 1 publishes once a
    /// second) and returns it.
    fn scrape_both_workers(&self) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let body = self.scrape();
            if body.contains("ringproxy_connections_accepted_total{worker=\"1\"") {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "worker 1 never reported:\n{body}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Clients round-tripping through `addr` until `stop`; returns how many succeeded.
fn traffic(addr: SocketAddr, stop: Arc<AtomicBool>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut done = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut client = connect(addr);
            round_trip(&mut client, &[7u8; 20_000]);
            done += 1;
        }
        done
    })
}

/// Families by name with their `# TYPE`, and every sample by its full series name.
struct Exposition {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

fn parse(body: &str) -> Exposition {
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("a TYPE line");
            types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
            };
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "series twice: {line}"
            );
        }
    }
    Exposition { types, samples }
}

impl Exposition {
    /// The family a series belongs to (a histogram's `_bucket`, `_sum`, `_count` included).
    fn family_of(&self, series: &str) -> (&str, &str) {
        let name = series.split('{').next().unwrap_or(series);
        for suffix in ["", "_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix)
                && let Some((family, kind)) = self.types.get_key_value(base)
            {
                return (family, kind);
            }
        }
        panic!("no TYPE for {series}");
    }

    fn value(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in {:?}", self.samples.keys()))
    }
}

#[test]
fn promtool_accepts_the_exposition() {
    if !have(&[Peer::Promtool]) {
        return;
    }
    let backend = Backend::echo();
    let running = Running::start(&[backend.addr, free_addr()]);
    round_trip(&mut connect(running.listen), b"some traffic first");
    let body = running.scrape_both_workers();
    let mut promtool = Command::new(Peer::Promtool.path().unwrap())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(promtool.wait_with_output());
    });
    let out = rx
        .recv_timeout(IO_TIMEOUT)
        .expect("promtool finishes")
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{body}"
    );
}

#[test]
fn counters_and_histograms_never_decrease_across_scrapes() {
    let (a, b) = (Backend::echo(), Backend::echo());
    let c = Backend::echo();
    let parked = free_addr();
    let running = Running::start(&[a.addr, b.addr, parked]);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| traffic(running.listen, Arc::clone(&stop)))
        .collect();

    let mut previous = parse(&running.scrape_both_workers());
    let mut compared = 0;
    for round in 0..12 {
        match round {
            // A reload that swaps a server, then one that fails (a file that does not parse).
            3 => {
                write_config(
                    &running.dir.join("rp.toml"),
                    running.listen,
                    running.metrics,
                    &[a.addr, c.addr, parked],
                );
                running.proxy.signal(libc::SIGHUP);
            }
            7 => {
                std::fs::write(running.dir.join("rp.toml"), "workers = [").unwrap();
                running.proxy.signal(libc::SIGHUP);
            }
            _ => {}
        }
        thread::sleep(Duration::from_millis(300));
        let now = parse(&running.scrape());
        for (series, &value) in &now.samples {
            let (family, kind) = now.family_of(series);
            let grows = kind == "counter" || kind == "histogram";
            // `le` buckets, `_sum` and `_count` of a histogram, and every counter.
            if grows && let Some(&before) = previous.samples.get(series) {
                assert!(
                    value >= before,
                    "{family}: {series} went from {before} to {value}"
                );
                compared += 1;
            }
        }
        previous = now;
    }
    stop.store(true, Ordering::Relaxed);
    let served: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(
        served > 0 && compared > 100,
        "served {served}, compared {compared}"
    );

    let last = parse(&running.scrape());
    assert_eq!(
        last.value("ringproxy_reloads_total{result=\"success\"}"),
        1.0
    );
    assert_eq!(
        last.value("ringproxy_reloads_total{result=\"failure\"}"),
        1.0
    );
    assert!(last.value("ringproxy_health_checks_total{result=\"pass\"}") > 0.0);
    assert!(last.value("ringproxy_upstream_connect_seconds_count") > 0.0);
    assert!(last.value("ringproxy_connection_duration_seconds_count") > 0.0);
}

#[test]
fn process_families_describe_this_process() {
    let backend = Backend::echo();
    let parked = free_addr();
    let running = Running::start(&[backend.addr, parked]);
    round_trip(&mut connect(running.listen), b"a connection to count");
    let body = running.scrape_both_workers();
    let e = parse(&body);

    let version = env!("CARGO_PKG_VERSION");
    let build = e
        .samples
        .keys()
        .find(|s| s.starts_with("ringproxy_build_info{"))
        .expect("build info");
    assert!(
        build.starts_with(&format!(
            "ringproxy_build_info{{version=\"{version}\",commit=\""
        )),
        "{build}"
    );
    assert_eq!(e.value("ringproxy_max_conns"), 100.0);

    let pid = running.proxy.pid();
    let fds = running.proxy.fd_count() as f64;
    assert!(
        (e.value("process_open_fds") - fds).abs() <= 4.0,
        "fds {fds}"
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let rss = e.value("process_resident_memory_bytes");
    assert!(
        rss > rss_kib * 1024.0 * 0.5 && rss < rss_kib * 1024.0 * 2.0,
        "rss {rss} vs {rss_kib} KiB"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = e.value("process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 60.0,
        "started {started}, now {now}"
    );
    let loaded = e.value("ringproxy_last_reload_timestamp_seconds");
    assert!(
        loaded >= started - 1.0 && loaded <= now + 1.0,
        "loaded {loaded}"
    );
    assert!(e.value("process_cpu_seconds_total") >= 0.0);

    // Administrative state apart from health: the `down = true` server is "down", the
    // other "ready".
    let state = |server: SocketAddr, state: &str| {
        e.value(&format!(
            "ringproxy_upstream_admin_state{{worker=\"0\",route=\"web\",server=\"{server}\",state=\"{state}\"}}"
        ))
    };
    assert_eq!(state(backend.addr, "ready"), 1.0);
    assert_eq!(state(backend.addr, "down"), 0.0);
    assert_eq!(state(parked, "down"), 1.0);
    assert_eq!(state(parked, "ready"), 0.0);
    // `_up` is health alone: the `down = true` server has failed nothing.
    let up = |server: SocketAddr| {
        e.value(&format!(
            "ringproxy_upstream_up{{worker=\"0\",route=\"web\",server=\"{server}\"}}"
        ))
    };
    assert_eq!((up(backend.addr), up(parked)), (1.0, 1.0));
}

/// Every metric name in the dashboard's queries.
fn dashboard_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dist/grafana-dashboard.json"
    ))
    .expect("dist/grafana-dashboard.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&json, &mut exprs);
    assert!(exprs.len() >= 10, "queries: {exprs:?}");
    let mut names = BTreeSet::new();
    for expr in exprs {
        let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        for word in words.filter(|w| w.starts_with("ringproxy_") || w.starts_with("process_")) {
            names.insert(word.to_owned());
        }
    }
    names
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn every_metric_the_dashboard_queries_exists() {
    let backend = Backend::echo();
    let running = Running::start(&[backend.addr, free_addr()]);
    let e = parse(&running.scrape());
    let wanted = dashboard_metrics();
    for name in &wanted {
        let family = ["_bucket", "_sum", "_count", ""]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| e.types.contains_key(*base));
        assert!(
            family.is_some(),
            "the dashboard queries {name}, which /metrics does not have"
        );
    }
}
