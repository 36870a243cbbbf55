//! Tests of the exposition: exact samples, one header per family, escaping, histograms.

use super::text::Float;
use super::*;
use crate::process::Resources;
use crate::stats::{
    AdminState, CheckCounts, IoStats, Observed, ReloadCounts, RingSnapshot, RouteSnapshot,
    RouteStats, ServerSnapshot, ServerStats,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Families without a `worker` label: one sample set for the whole process.
const PROCESS_FAMILIES: [&str; 11] = [
    "ringproxy_build_info",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
    "process_cpu_seconds_total",
    "ringproxy_max_conns",
    "ringproxy_reloads_total",
    "ringproxy_last_reload_timestamp_seconds",
    "ringproxy_upstream_connect_seconds",
    "ringproxy_connection_duration_seconds",
    "ringproxy_health_checks_total",
];

/// Every family `render` writes.
const FAMILIES: usize = 29 + PROCESS_FAMILIES.len();

fn process() -> ProcessSnapshot {
    let mut reloads = ReloadCounts::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    reloads.record(false, SystemTime::now());
    reloads.record(true, UNIX_EPOCH + Duration::from_millis(1_700_000_100_500));
    ProcessSnapshot {
        resources: Some(Resources {
            resident_bytes: 4096 * 1000,
            open_fds: 12,
            start_time_seconds: 1_700_000_000.25,
            cpu_seconds: 1.5,
        }),
        max_conns: 1000,
        reloads,
    }
}

fn render(snapshots: &[Snapshot]) -> String {
    super::render(snapshots, &process())
}

fn observed(worker: usize) -> Observed {
    let mut observed = Observed::default();
    for ratio in [0.0, 0.0, 0.0, 0.0, 0.75, 0.875, 0.875, 1.0, 1.0, 1.0] {
        observed.occupancy.observe(ratio);
    }
    observed.connect.observe(0.002);
    observed
        .duration
        .observe(if worker == 0 { 0.5 } else { 7200.0 });
    observed
}

fn route(name: &str, server: &str, worker: u64) -> RouteSnapshot {
    let mut closed = [0; CloseReason::ALL.len()];
    closed[CloseReason::ClientClosed.index()] = 10 + worker;
    closed[CloseReason::Drained.index()] = 1;
    RouteSnapshot {
        name: name.to_owned(),
        active: 3 + worker,
        stats: RouteStats {
            accepted: 100 + worker,
            closed,
            retries: 2,
            accept_pauses: 0,
            client_table_full: 0,
            pipe_fallbacks: 0,
            stalled_to_upstream: Duration::from_millis(1500),
            stalled_to_client: Duration::from_millis(250),
        },
        servers: vec![ServerSnapshot {
            addr: server
                .parse::<std::net::SocketAddr>()
                .expect("test address")
                .into(),
            active: 1,
            up: worker == 0,
            admin: if worker == 0 {
                AdminState::Ready
            } else {
                AdminState::Down
            },
            stats: ServerStats {
                connects: 7,
                connect_failures: 1,
                connect_timeouts: 2,
                bytes_to_upstream: 1234,
                bytes_to_client: 5678,
            },
        }],
    }
}

fn snapshots() -> Vec<Snapshot> {
    (0..2)
        .map(|w| Snapshot {
            worker: w,
            routes: vec![
                route("web", "127.0.0.1:8080", w as u64),
                route("we\"ird\\name\nx", "[::1]:9000", w as u64),
            ],
            io: IoStats {
                reads: 5,
                read_bytes: 500,
                writes: 6,
                write_bytes: 600,
                read_would_block: 7,
                write_would_block: 8,
                partial_writes: 9,
                ..IoStats::default()
            },
            rings: RingSnapshot {
                bytes_in_use: 32768,
                bytes_free: 16384,
                ..RingSnapshot::default()
            },
            observed: observed(w),
            checks: CheckCounts {
                passed: 3,
                failed: 1,
                timed_out: w as u64,
            },
        })
        .collect()
}

#[test]
fn render_exact_samples() {
    let text = render(&snapshots());
    let lines: Vec<&str> = text.lines().collect();
    for want in [
        "ringproxy_connections_accepted_total{worker=\"0\",route=\"web\"} 100",
        "ringproxy_connections_accepted_total{worker=\"1\",route=\"web\"} 101",
        "ringproxy_connections_active{worker=\"1\",route=\"web\"} 4",
        "ringproxy_connections_closed_total{worker=\"1\",route=\"web\",reason=\"client-closed\"} 11",
        "ringproxy_connections_closed_total{worker=\"0\",route=\"web\",reason=\"idle-timeout\"} 0",
        "ringproxy_connections_closed_total{worker=\"0\",route=\"web\",reason=\"drained\"} 1",
        "ringproxy_backpressure_stall_seconds_total{worker=\"0\",route=\"web\",direction=\"to_upstream\"} 1.5",
        "ringproxy_backpressure_stall_seconds_total{worker=\"0\",route=\"web\",direction=\"to_client\"} 0.25",
        "ringproxy_upstream_connects_total{worker=\"0\",route=\"web\",server=\"127.0.0.1:8080\"} 7",
        "ringproxy_upstream_up{worker=\"0\",route=\"web\",server=\"127.0.0.1:8080\"} 1",
        "ringproxy_upstream_up{worker=\"1\",route=\"web\",server=\"127.0.0.1:8080\"} 0",
        "ringproxy_upstream_bytes_total{worker=\"1\",route=\"web\",server=\"127.0.0.1:8080\",direction=\"to_client\"} 5678",
        "ringproxy_io_read_bytes_total{worker=\"0\"} 500",
        "ringproxy_io_would_block_total{worker=\"1\",op=\"write\"} 8",
        "ringproxy_io_partial_writes_total{worker=\"0\"} 9",
        "ringproxy_ring_bytes{worker=\"0\",state=\"in_use\"} 32768",
        "ringproxy_ring_bytes{worker=\"1\",state=\"free\"} 16384",
        "ringproxy_ring_occupancy_ratio_sum{worker=\"1\"} 5.5",
        "ringproxy_upstream_admin_state{worker=\"0\",route=\"web\",server=\"127.0.0.1:8080\",state=\"ready\"} 1",
        "ringproxy_upstream_admin_state{worker=\"0\",route=\"web\",server=\"127.0.0.1:8080\",state=\"down\"} 0",
        "ringproxy_upstream_admin_state{worker=\"1\",route=\"web\",server=\"127.0.0.1:8080\",state=\"down\"} 1",
        "ringproxy_upstream_admin_state{worker=\"1\",route=\"web\",server=\"127.0.0.1:8080\",state=\"drain\"} 0",
        "process_resident_memory_bytes 4096000",
        "process_open_fds 12",
        "process_start_time_seconds 1700000000.25",
        "process_cpu_seconds_total 1.5",
        "ringproxy_max_conns 1000",
        "ringproxy_reloads_total{result=\"success\"} 1",
        "ringproxy_reloads_total{result=\"failure\"} 1",
        "ringproxy_last_reload_timestamp_seconds 1700000100.5",
        "ringproxy_upstream_connect_seconds_bucket{le=\"0.001\"} 0",
        "ringproxy_upstream_connect_seconds_bucket{le=\"0.0025\"} 2",
        "ringproxy_upstream_connect_seconds_bucket{le=\"+Inf\"} 2",
        "ringproxy_upstream_connect_seconds_count 2",
        "ringproxy_upstream_connect_seconds_sum 0.004",
        "ringproxy_connection_duration_seconds_bucket{le=\"1\"} 1",
        "ringproxy_connection_duration_seconds_bucket{le=\"3600\"} 1",
        "ringproxy_connection_duration_seconds_bucket{le=\"+Inf\"} 2",
        "ringproxy_health_checks_total{result=\"pass\"} 6",
        "ringproxy_health_checks_total{result=\"fail\"} 2",
        "ringproxy_health_checks_total{result=\"timeout\"} 1",
    ] {
        assert!(lines.contains(&want), "missing {want}\n{text}");
    }
    assert!(text.ends_with('\n'));
}

#[test]
fn every_reason_is_present() {
    let text = render(&snapshots());
    for reason in CloseReason::ALL {
        let want = format!(
            "ringproxy_connections_closed_total{{worker=\"0\",route=\"web\",reason=\"{}\"}} ",
            reason.as_str()
        );
        assert_eq!(text.matches(&want).count(), 1, "{want}");
    }
}

#[test]
fn each_family_has_one_help_and_type_and_contiguous_samples() {
    let text = render(&snapshots());
    let mut families: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("type line");
            families.push((name.to_owned(), kind.to_owned()));
        }
    }
    assert_eq!(families.len(), FAMILIES);
    for (i, (name, kind)) in families.iter().enumerate() {
        assert!(
            families[..i].iter().all(|(n, _)| n != name),
            "{name} typed twice"
        );
        assert_eq!(text.matches(&format!("# HELP {name} ")).count(), 1);
        assert_eq!(kind == "counter", name.ends_with("_total"), "{name} {kind}");
        assert!(name.starts_with("ringproxy_") || name.starts_with("process_"));
    }
    // Samples follow their own family's TYPE line.
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            current = rest.split(' ').next().unwrap_or_default().to_owned();
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let base = name
                .strip_suffix("_bucket")
                .or_else(|| name.strip_suffix("_sum"))
                .or_else(|| name.strip_suffix("_count"))
                .filter(|b| *b == current)
                .unwrap_or(name);
            assert_eq!(base, current, "{line}");
            let labels = if PROCESS_FAMILIES.contains(&base) {
                name.to_owned()
            } else {
                format!("{name}{{worker=\"")
            };
            assert!(line.starts_with(&labels), "{line}");
        }
    }
}

#[test]
fn label_values_are_escaped() {
    let text = render(&snapshots());
    let want =
        "ringproxy_connections_accepted_total{worker=\"0\",route=\"we\\\"ird\\\\name\\nx\"} 100";
    assert!(text.lines().any(|l| l == want), "{text}");
    assert!(text.contains("server=\"[::1]:9000\""));
    // No raw newline sneaks into a sample line.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.ends_with(|c: char| c.is_ascii_digit() || c == 'f' || c == 'N'));
    }
}

#[test]
fn occupancy_histogram_is_cumulative() {
    let text = render(&snapshots());
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ringproxy_ring_occupancy_ratio_bucket{worker=\"0\""))
        .collect();
    assert_eq!(
        buckets,
        [
            "ringproxy_ring_occupancy_ratio_bucket{worker=\"0\",le=\"0.25\"} 4",
            "ringproxy_ring_occupancy_ratio_bucket{worker=\"0\",le=\"0.5\"} 4",
            "ringproxy_ring_occupancy_ratio_bucket{worker=\"0\",le=\"0.75\"} 5",
            "ringproxy_ring_occupancy_ratio_bucket{worker=\"0\",le=\"0.99\"} 7",
            "ringproxy_ring_occupancy_ratio_bucket{worker=\"0\",le=\"1\"} 10",
            "ringproxy_ring_occupancy_ratio_bucket{worker=\"0\",le=\"+Inf\"} 10",
        ]
    );
    assert!(
        text.lines()
            .any(|l| l == "ringproxy_ring_occupancy_ratio_count{worker=\"0\"} 10")
    );
}

#[test]
fn empty_input_renders_headers_and_process_samples_only() {
    let text = render(&[]);
    for line in text.lines().filter(|l| !l.starts_with("# ")) {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        assert!(
            PROCESS_FAMILIES.iter().any(|f| name.starts_with(f)),
            "{line}"
        );
    }
    assert_eq!(text.matches("# TYPE ").count(), FAMILIES);
}

#[test]
fn build_info_names_version_and_commit() {
    let text = render(&[]);
    let want = format!(
        "ringproxy_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        env!("RINGPROXY_COMMIT")
    );
    assert!(text.lines().any(|l| l == want), "{text}");
}

#[test]
fn odd_floats_are_spelled_for_prometheus() {
    assert_eq!(Float(f64::NAN).to_string(), "NaN");
    assert_eq!(Float(f64::INFINITY).to_string(), "+Inf");
    assert_eq!(Float(f64::NEG_INFINITY).to_string(), "-Inf");
    assert_eq!(Float(1.0).to_string(), "1");
    assert_eq!(Float(1e-7).to_string(), "0.0000001");
}
