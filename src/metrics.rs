//! The `/metrics` endpoint: HTTP/1.x request classification (the head parsed by
//! [`httparse`]) and responses, and the Prometheus text exposition (format 0.0.4) of the
//! loops' [`Snapshot`]s.
//!
//! Pure functions only: the event loop owns the sockets, reads at most [`MAX_REQUEST`] bytes,
//! asks [`parse_request`] whether it has a whole request, writes [`response`] and closes. No
//! function here does I/O, blocks, or panics on any input; request parsing allocates nothing
//! (its header slots are a fixed array on the stack).
//!
//! Invariants of [`render`]'s output: each metric family has exactly one `# HELP` and one
//! `# TYPE` line followed by all of its samples (from every snapshot), every sample carries a
//! `worker="N"` label first, label values are escaped (`\\`, `\"`, `\n`), counters end in
//! `_total`, and the occupancy histogram's buckets are cumulative with `+Inf` equal to
//! `_count`.
//!
//! Families, in output order:
//!
//! | family | type | labels |
//! |---|---|---|
//! | `ringproxy_connections_accepted_total` | counter | `route` |
//! | `ringproxy_connections_active` | gauge | `route` |
//! | `ringproxy_connections_closed_total` | counter | `route`, `reason` (every [`CloseReason`]) |
//! | `ringproxy_retries_total` | counter | `route` |
//! | `ringproxy_accept_pauses_total` | counter | `route` |
//! | `ringproxy_client_table_full_total` | counter | `route` |
//! | `ringproxy_pipe_fallbacks_total` | counter | `route` |
//! | `ringproxy_backpressure_stall_seconds_total` | counter | `route`, `direction` |
//! | `ringproxy_upstream_connects_total` | counter | `route`, `server` |
//! | `ringproxy_upstream_connections_active` | gauge | `route`, `server` |
//! | `ringproxy_upstream_connect_failures_total` | counter | `route`, `server` |
//! | `ringproxy_upstream_connect_timeouts_total` | counter | `route`, `server` |
//! | `ringproxy_upstream_up` | gauge (1/0) | `route`, `server` |
//! | `ringproxy_upstream_bytes_total` | counter | `route`, `server`, `direction` |
//! | `ringproxy_io_reads_total` | counter | |
//! | `ringproxy_io_read_bytes_total` | counter | |
//! | `ringproxy_io_writes_total` | counter | |
//! | `ringproxy_io_write_bytes_total` | counter | |
//! | `ringproxy_io_would_block_total` | counter | `op` (`read`, `write`) |
//! | `ringproxy_io_partial_writes_total` | counter | |
//! | `ringproxy_ring_bytes` | gauge | `state` (`in_use`, `free`) |
//! | `ringproxy_pipes` | gauge | `state` (`in_use`, `free`) |
//! | `ringproxy_access_log_dropped_total` | counter | |
//! | `ringproxy_log_dropped_total` | counter | |
//! | `ringproxy_budget_bytes` | gauge | `state` (`in_use`, `limit`) |
//! | `ringproxy_budget_waits_total` | counter | |
//! | `ringproxy_budget_wait_seconds_total` | counter | |
//! | `ringproxy_ring_occupancy_ratio` | histogram | `le` on `_bucket` |
//!
//! `direction` is `to_upstream` (client → server) or `to_client` (server → client). Every
//! sample also has `worker`.

use std::fmt::{self, Write as _};

use crate::discovery::NameStats;
use crate::error::CloseReason;
use crate::stats::{OCCUPANCY_BOUNDS, RouteSnapshot, ServerSnapshot, Snapshot};
use std::collections::BTreeMap;

/// Most bytes of request head (request line and headers) read from a metrics client. A head
/// not complete within this many bytes is [`Request::Bad`].
pub const MAX_REQUEST: usize = 4096;

/// What a metrics client asked for, as far as [`parse_request`] can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The head has not ended yet, fewer than [`MAX_REQUEST`] bytes arrived, and nothing
    /// malformed has been seen: read more.
    Incomplete,
    /// `GET /metrics` (or `HEAD` when `head` is true, which gets no body).
    Metrics {
        /// The method was `HEAD`.
        head: bool,
    },
    /// A well-formed `GET`/`HEAD` of any other path.
    NotFound {
        /// The method was `HEAD`.
        head: bool,
    },
    /// Anything else: another method, a malformed request line, a non-UTF-8 target, a version
    /// other than HTTP/1.0 or HTTP/1.1, an empty line before the request line, more than
    /// [`MAX_HEADERS`] header lines, or no end of head within [`MAX_REQUEST`] bytes.
    Bad,
}

/// Most header lines a request head may carry; one more is [`Request::Bad`]. The parser keeps
/// them in a fixed array on the stack, so a request costs no allocation.
pub const MAX_HEADERS: usize = 64;

/// Parses the bytes a metrics client sent so far.
///
/// The head is parsed by [`httparse`] and must end, at its first empty line (`\r\n\r\n`, also
/// bare `\n` line endings), within the first [`MAX_REQUEST`] bytes. The request line must be
/// `GET|HEAD <target> HTTP/1.0|1.1`, its parts split by one or more spaces; the target is
/// origin-form (`/metrics?x=y`, the query ignored) or absolute-form (`http://host/metrics`).
/// An empty line before the request line is bad. Header lines are not used: a malformed one
/// is skipped (though a NUL or a bare CR in one is bad), but there may be at most
/// [`MAX_HEADERS`] of them. No body is ever read.
///
/// A verdict other than [`Request::Incomplete`] holds for every longer buffer that starts
/// with the same bytes, so a caller may re-parse its growing buffer and stop at the first one;
/// [`Request::Bad`] may come before the head ends, once no continuation could make it good.
pub fn parse_request(buf: &[u8]) -> Request {
    let window = &buf[..buf.len().min(MAX_REQUEST)];
    // httparse skips empty lines before the request line; this endpoint never accepted them.
    if let Some(b'\r' | b'\n') = window.first() {
        return Request::Bad;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .ignore_invalid_headers_in_requests(true);
    match config.parse_request(&mut request, window) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => return Request::Incomplete,
        // Out of room, or malformed: the request line, too many headers, a NUL or bare CR.
        Ok(httparse::Status::Partial) | Err(_) => return Request::Bad,
    }
    // A complete parse has all three, and the version is HTTP/1.0 or HTTP/1.1.
    let head = match request.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Request::Bad,
    };
    match request.path.and_then(target_path) {
        Some("/metrics") => Request::Metrics { head },
        Some(_) => Request::NotFound { head },
        None => Request::Bad,
    }
}

/// The path of a request target without query or fragment; `None` when the target is neither
/// origin-form nor absolute-form `http(s)://`.
fn target_path(target: &str) -> Option<&str> {
    let rest = if target.starts_with('/') {
        target
    } else {
        let lower = |p: &str| {
            target
                .get(..p.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(p))
        };
        let after_scheme = if lower("http://") {
            &target[7..]
        } else if lower("https://") {
            &target[8..]
        } else {
            return None;
        };
        match after_scheme.find(['/', '?', '#']) {
            Some(i) if after_scheme[i..].starts_with('/') => &after_scheme[i..],
            _ => "/",
        }
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Content type of the exposition format this module renders.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The complete HTTP response for `request`: status line, headers, and body.
///
/// [`Request::Metrics`] gets `200 OK` with `body` (the output of [`render`]); for `HEAD` the
/// headers are the same, `Content-Length` included, but no body follows.
/// [`Request::NotFound`] gets `404`, [`Request::Bad`] (and [`Request::Incomplete`], which a
/// caller should not answer) gets `400`, each with a one-line text body. Every response
/// carries `Connection: close`: the loop closes the connection once it is written.
pub fn response(request: &Request, body: &str) -> Vec<u8> {
    let (status, content_type, body, head) = match *request {
        Request::Metrics { head } => ("200 OK", CONTENT_TYPE, body, head),
        Request::NotFound { head } => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found; try /metrics\n",
            head,
        ),
        Request::Bad | Request::Incomplete => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n",
            false,
        ),
    };
    let mut out = String::with_capacity(128 + if head { 0 } else { body.len() });
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    if !head {
        out.push_str(body);
    }
    out.into_bytes()
}

/// Renders every snapshot as Prometheus text exposition format 0.0.4.
///
/// Each family (listed in the [module documentation](self)) appears once with its `# HELP` and
/// `# TYPE`, followed by its samples for every snapshot in order, each labelled with the
/// snapshot's `worker`. Families are present even with no samples.
pub fn render(snapshots: &[Snapshot]) -> String {
    let servers: usize = snapshots
        .iter()
        .flat_map(|s| &s.routes)
        .map(|r| r.servers.len())
        .sum();
    let routes: usize = snapshots.iter().map(|s| s.routes.len()).sum();
    let mut out = Out {
        s: String::with_capacity(
            4096 + routes * (CloseReason::ALL.len() + 8) * 96 + servers * 8 * 112,
        ),
    };

    route_families(&mut out, snapshots);
    server_families(&mut out, snapshots);
    io_families(&mut out, snapshots);
    ring_families(&mut out, snapshots);
    out.s
}

/// Appends the DNS discovery families, for the names the process follows (samples carry
/// `worker="0"`: discovery runs once per process):
///
/// | family | type | labels |
/// |---|---|---|
/// | `ringproxy_dns_answers_total` | counter | `name` |
/// | `ringproxy_dns_failures_total` | counter | `name`, `reason` |
/// | `ringproxy_dns_addresses` | gauge | `name` |
pub fn render_dns(text: &mut String, names: &BTreeMap<String, NameStats>) {
    let mut out = Out {
        s: std::mem::take(text),
    };
    let name = "ringproxy_dns_answers_total";
    out.header(
        name,
        "DNS answers received for an upstream name.",
        "counter",
    );
    for (dns, stats) in names {
        out.sample(name, 0, &[("name", dns)], stats.answers);
    }
    let name = "ringproxy_dns_failures_total";
    out.header(
        name,
        "DNS queries for an upstream name that failed (servfail, refused, timeout, nxdomain).",
        "counter",
    );
    for (dns, stats) in names {
        for (reason, n) in &stats.failures {
            out.sample(name, 0, &[("name", dns), ("reason", reason)], n);
        }
    }
    let name = "ringproxy_dns_addresses";
    out.header(
        name,
        "Addresses (or SRV records) an upstream name has now.",
        "gauge",
    );
    for (dns, stats) in names {
        out.sample(name, 0, &[("name", dns)], stats.addresses);
    }
    *text = out.s;
}

/// The per-route families.
fn route_families(out: &mut Out, snapshots: &[Snapshot]) {
    route_family(
        out,
        snapshots,
        "ringproxy_connections_accepted_total",
        "Clients accepted.",
        "counter",
        |out, w, r| out.route_sample(w, r, &[], r.stats.accepted),
    );
    route_family(
        out,
        snapshots,
        "ringproxy_connections_active",
        "Client connections open now.",
        "gauge",
        |out, w, r| out.route_sample(w, r, &[], r.active),
    );
    route_family(
        out,
        snapshots,
        "ringproxy_connections_closed_total",
        "Connections ended, by reason.",
        "counter",
        |out, w, r| {
            for reason in CloseReason::ALL {
                let n = r.stats.closed.get(reason.index()).copied().unwrap_or(0);
                out.route_sample(w, r, &[("reason", reason.as_str())], n);
            }
        },
    );
    route_family(
        out,
        snapshots,
        "ringproxy_retries_total",
        "Upstream connect attempts after the first for a client.",
        "counter",
        |out, w, r| out.route_sample(w, r, &[], r.stats.retries),
    );
    route_family(
        out,
        snapshots,
        "ringproxy_accept_pauses_total",
        "Times accepting paused after an accept error.",
        "counter",
        |out, w, r| out.route_sample(w, r, &[], r.stats.accept_pauses),
    );
    route_family(
        out,
        snapshots,
        "ringproxy_client_table_full_total",
        "Clients refused because the per-client table was full of live clients.",
        "counter",
        |out, w, r| out.route_sample(w, r, &[], r.stats.client_table_full),
    );
    route_family(
        out,
        snapshots,
        "ringproxy_pipe_fallbacks_total",
        "Directions that wanted a kernel pipe and used a ring for the rest of the connection.",
        "counter",
        |out, w, r| out.route_sample(w, r, &[], r.stats.pipe_fallbacks),
    );
    route_family(
        out,
        snapshots,
        "ringproxy_backpressure_stall_seconds_total",
        "Time a direction's ring was full, stopping reads from its source.",
        "counter",
        |out, w, r| {
            let up = Float(r.stats.stalled_to_upstream.as_secs_f64());
            let down = Float(r.stats.stalled_to_client.as_secs_f64());
            out.route_sample(w, r, &[("direction", "to_upstream")], up);
            out.route_sample(w, r, &[("direction", "to_client")], down);
        },
    );
}

/// The per-server families.
fn server_families(out: &mut Out, snapshots: &[Snapshot]) {
    server_family(
        out,
        snapshots,
        "ringproxy_upstream_connects_total",
        "Upstream connect attempts started.",
        "counter",
        |out, w, r, s| out.server_sample(w, r, s, &[], s.stats.connects),
    );
    server_family(
        out,
        snapshots,
        "ringproxy_upstream_connections_active",
        "Connections to the server, connecting or connected, now.",
        "gauge",
        |out, w, r, s| out.server_sample(w, r, s, &[], s.active),
    );
    server_family(
        out,
        snapshots,
        "ringproxy_upstream_connect_failures_total",
        "Upstream connect attempts refused or failed.",
        "counter",
        |out, w, r, s| out.server_sample(w, r, s, &[], s.stats.connect_failures),
    );
    server_family(
        out,
        snapshots,
        "ringproxy_upstream_connect_timeouts_total",
        "Upstream connect attempts that timed out.",
        "counter",
        |out, w, r, s| out.server_sample(w, r, s, &[], s.stats.connect_timeouts),
    );
    server_family(
        out,
        snapshots,
        "ringproxy_upstream_up",
        "1 when the server may receive new clients, else 0.",
        "gauge",
        |out, w, r, s| out.server_sample(w, r, s, &[], u64::from(s.up)),
    );
    server_family(
        out,
        snapshots,
        "ringproxy_upstream_bytes_total",
        "Bytes delivered to the server (to_upstream) and from it to clients (to_client).",
        "counter",
        |out, w, r, s| {
            let up = s.stats.bytes_to_upstream;
            let down = s.stats.bytes_to_client;
            out.server_sample(w, r, s, &[("direction", "to_upstream")], up);
            out.server_sample(w, r, s, &[("direction", "to_client")], down);
        },
    );
}

/// The data-path cost families.
fn io_families(out: &mut Out, snapshots: &[Snapshot]) {
    type IoFamily = (&'static str, &'static str, fn(&Snapshot) -> u64);
    let io: [IoFamily; 4] = [
        (
            "ringproxy_io_reads_total",
            "Socket reads that returned data.",
            |s| s.io.reads,
        ),
        (
            "ringproxy_io_read_bytes_total",
            "Bytes socket reads returned.",
            |s| s.io.read_bytes,
        ),
        (
            "ringproxy_io_writes_total",
            "Socket writes that accepted data.",
            |s| s.io.writes,
        ),
        (
            "ringproxy_io_write_bytes_total",
            "Bytes socket writes accepted.",
            |s| s.io.write_bytes,
        ),
    ];
    for (name, help, value) in io {
        out.header(name, help, "counter");
        for s in snapshots {
            out.sample(name, s.worker, &[], value(s));
        }
    }
    let name = "ringproxy_io_would_block_total";
    out.header(name, "Socket reads and writes that would block.", "counter");
    for s in snapshots {
        out.sample(name, s.worker, &[("op", "read")], s.io.read_would_block);
        out.sample(name, s.worker, &[("op", "write")], s.io.write_would_block);
    }
    let name = "ringproxy_io_partial_writes_total";
    out.header(
        name,
        "Socket writes that accepted only part of what was offered.",
        "counter",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[], s.io.partial_writes);
    }
}

/// The ring storage and occupancy families.
fn ring_families(out: &mut Out, snapshots: &[Snapshot]) {
    let name = "ringproxy_ring_bytes";
    out.header(
        name,
        "Ring buffer storage attached to connections (in_use) or pooled for reuse (free).",
        "gauge",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[("state", "in_use")], s.rings.bytes_in_use);
        out.sample(name, s.worker, &[("state", "free")], s.rings.bytes_free);
    }
    let name = "ringproxy_pipes";
    out.header(
        name,
        "Kernel pipes serving as a direction's buffer (in_use) or kept for reuse (free).",
        "gauge",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[("state", "in_use")], s.rings.pipes_in_use);
        out.sample(name, s.worker, &[("state", "free")], s.rings.pipes_free);
    }

    let name = "ringproxy_access_log_dropped_total";
    out.header(
        name,
        "Access-log lines dropped because the log's file or reader did not keep up.",
        "counter",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[], s.io.access_log_dropped);
    }
    let name = "ringproxy_log_dropped_total";
    out.header(
        name,
        "Process-log lines dropped because stderr did not keep up.",
        "counter",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[], s.io.log_dropped);
    }

    let name = "ringproxy_budget_bytes";
    out.header(
        name,
        "Ring storage held against max_buffered (in_use) and the budget (limit, when set).",
        "gauge",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[("state", "in_use")], s.rings.budget_used);
        if let Some(limit) = s.rings.budget_limit {
            out.sample(name, s.worker, &[("state", "limit")], limit);
        }
    }
    let name = "ringproxy_budget_waits_total";
    out.header(
        name,
        "Times a direction waited for ring storage (max_buffered used up).",
        "counter",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[], s.io.budget_waits);
    }
    let name = "ringproxy_budget_wait_seconds_total";
    out.header(
        name,
        "Time directions waited for ring storage, summed.",
        "counter",
    );
    for s in snapshots {
        out.sample(name, s.worker, &[], Float(s.io.budget_waited.as_secs_f64()));
    }

    let name = "ringproxy_ring_occupancy_ratio";
    out.header(
        name,
        "Fill ratio of the ring buffers holding storage, at scrape time.",
        "histogram",
    );
    for s in snapshots {
        let mut cumulative = 0u64;
        for (bound, n) in OCCUPANCY_BOUNDS.iter().zip(s.rings.occupancy) {
            cumulative = cumulative.saturating_add(n);
            let le = Float(*bound).to_string();
            out.sample(
                "ringproxy_ring_occupancy_ratio_bucket",
                s.worker,
                &[("le", &le)],
                cumulative,
            );
        }
        out.sample(
            "ringproxy_ring_occupancy_ratio_bucket",
            s.worker,
            &[("le", "+Inf")],
            cumulative,
        );
        out.sample(
            "ringproxy_ring_occupancy_ratio_sum",
            s.worker,
            &[],
            Float(s.rings.occupancy_sum),
        );
        out.sample(
            "ringproxy_ring_occupancy_ratio_count",
            s.worker,
            &[],
            cumulative,
        );
    }
}

/// Writes one per-route family: header, then `each` for every route of every snapshot.
fn route_family(
    out: &mut Out,
    snapshots: &[Snapshot],
    name: &'static str,
    help: &str,
    kind: &str,
    each: impl Fn(&mut Sampler<'_>, usize, &RouteSnapshot),
) {
    out.header(name, help, kind);
    let mut sampler = Sampler { out, name };
    for s in snapshots {
        for r in &s.routes {
            each(&mut sampler, s.worker, r);
        }
    }
}

/// Writes one per-server family: header, then `each` for every server of every route.
fn server_family(
    out: &mut Out,
    snapshots: &[Snapshot],
    name: &'static str,
    help: &str,
    kind: &str,
    each: impl Fn(&mut Sampler<'_>, usize, &RouteSnapshot, &ServerSnapshot),
) {
    out.header(name, help, kind);
    let mut sampler = Sampler { out, name };
    for s in snapshots {
        for r in &s.routes {
            for server in &r.servers {
                each(&mut sampler, s.worker, r, server);
            }
        }
    }
}

/// Output buffer with the exposition-format primitives.
struct Out {
    s: String,
}

impl Out {
    /// `# HELP` and `# TYPE` of a family.
    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = write!(self.s, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    /// One sample line: `name{worker="N",k="v",...} value`.
    fn sample(
        &mut self,
        name: &str,
        worker: usize,
        labels: &[(&str, &str)],
        value: impl fmt::Display,
    ) {
        let _ = write!(self.s, "{name}{{worker=\"{worker}\"");
        for (key, val) in labels {
            self.s.push(',');
            self.s.push_str(key);
            self.s.push_str("=\"");
            escape_label(&mut self.s, val);
            self.s.push('"');
        }
        let _ = writeln!(self.s, "}} {value}");
    }
}

/// Writes samples of one named family.
struct Sampler<'a> {
    out: &'a mut Out,
    name: &'static str,
}

impl Sampler<'_> {
    /// A sample labelled `worker`, `route` and `extra`.
    fn route_sample(
        &mut self,
        worker: usize,
        route: &RouteSnapshot,
        extra: &[(&str, &str)],
        value: impl fmt::Display,
    ) {
        let mut labels: [(&str, &str); 2] = [("route", &route.name), ("", "")];
        let n = match extra {
            [] => 1,
            [one, ..] => {
                labels[1] = *one;
                2
            }
        };
        self.out.sample(self.name, worker, &labels[..n], value);
    }

    /// A sample labelled `worker`, `route`, `server` and `extra`.
    fn server_sample(
        &mut self,
        worker: usize,
        route: &RouteSnapshot,
        server: &ServerSnapshot,
        extra: &[(&str, &str)],
        value: impl fmt::Display,
    ) {
        let addr = server.addr.to_string();
        let mut labels: [(&str, &str); 3] = [("route", &route.name), ("server", &addr), ("", "")];
        let n = match extra {
            [] => 2,
            [one, ..] => {
                labels[2] = *one;
                3
            }
        };
        self.out.sample(self.name, worker, &labels[..n], value);
    }
}

/// Appends `value` escaped for a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as the exposition format spells it (`+Inf`, `-Inf`, `NaN`, else Rust's shortest
/// round-trip decimal, which never uses an exponent).
struct Float(f64);

impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v == f64::INFINITY {
            f.write_str("+Inf")
        } else if v == f64::NEG_INFINITY {
            f.write_str("-Inf")
        } else {
            write!(f, "{v}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{IoStats, RingSnapshot, RouteStats, ServerStats};
    use std::time::Duration;

    #[test]
    fn complete_get_and_head_of_metrics() {
        let get = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        assert_eq!(parse_request(get), Request::Metrics { head: false });
        let head = b"HEAD /metrics HTTP/1.0\r\n\r\n";
        assert_eq!(parse_request(head), Request::Metrics { head: true });
    }

    #[test]
    fn incomplete_until_the_empty_line() {
        let full = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        for n in 0..full.len() {
            assert_eq!(parse_request(&full[..n]), Request::Incomplete, "prefix {n}");
        }
        assert_eq!(parse_request(full), Request::Metrics { head: false });
    }

    #[test]
    fn oversized_head_is_bad() {
        let mut buf = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
        buf.resize(MAX_REQUEST - 1, b'a');
        assert_eq!(parse_request(&buf), Request::Incomplete);
        buf.push(b'a');
        assert_eq!(parse_request(&buf), Request::Bad);
        // The end of head beyond the limit does not count.
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request(&buf), Request::Bad);
        // Exactly at the limit does.
        let mut exact = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
        exact.resize(MAX_REQUEST - 4, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exact.len(), MAX_REQUEST);
        assert_eq!(parse_request(&exact), Request::Metrics { head: false });
    }

    #[test]
    fn other_methods_lines_and_versions_are_bad() {
        for req in [
            &b"POST /metrics HTTP/1.1\r\n\r\n"[..],
            b"get /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"GET /metrics HTTP/1\r\n\r\n",
            b"GET /metrics HTTP/1.1x\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
            b"\n\n",
            b"GET /metr\xffics HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
        ] {
            assert_eq!(
                parse_request(req),
                Request::Bad,
                "{:?}",
                String::from_utf8_lossy(req)
            );
        }
    }

    #[test]
    fn other_paths_are_not_found() {
        for req in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"GET /metrics/ HTTP/1.1\r\n\r\n",
            b"GET /metricsx HTTP/1.1\r\n\r\n",
            b"GET /favicon.ico HTTP/1.0\r\n\r\n",
        ] {
            assert_eq!(parse_request(req), Request::NotFound { head: false });
        }
        assert_eq!(
            parse_request(b"HEAD /x HTTP/1.1\r\n\r\n"),
            Request::NotFound { head: true }
        );
    }

    #[test]
    fn query_string_and_absolute_form_are_accepted() {
        let m = Request::Metrics { head: false };
        assert_eq!(parse_request(b"GET /metrics?name[]=x HTTP/1.1\r\n\r\n"), m);
        assert_eq!(parse_request(b"GET /metrics? HTTP/1.1\r\n\r\n"), m);
        assert_eq!(parse_request(b"GET http://h:9/metrics HTTP/1.1\r\n\r\n"), m);
        assert_eq!(
            parse_request(b"GET http://h:9 HTTP/1.1\r\n\r\n"),
            Request::NotFound { head: false }
        );
    }

    #[test]
    fn bare_lf_ends_the_head() {
        let m = Request::Metrics { head: false };
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1\nHost: x\n\n"), m);
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1\n\n"), m);
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1\r\n\n"), m);
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\nHost: x\n"),
            Request::Incomplete
        );
    }

    #[test]
    fn bytes_after_the_head_are_ignored() {
        let buf = b"GET /metrics HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(parse_request(buf), Request::Metrics { head: false });
    }

    #[test]
    fn header_lines_up_to_the_limit() {
        let with = |n: usize| {
            let mut buf = b"GET /metrics HTTP/1.1\r\n".to_vec();
            for i in 0..n {
                buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
            }
            buf.extend_from_slice(b"\r\n");
            buf
        };
        let full = with(MAX_HEADERS);
        assert!(full.len() < MAX_REQUEST);
        assert_eq!(parse_request(&full), Request::Metrics { head: false });
        assert_eq!(parse_request(&with(MAX_HEADERS + 1)), Request::Bad);
    }

    #[test]
    fn empty_line_before_the_request_line_is_bad() {
        for req in [
            &b"\r\nGET /metrics HTTP/1.1\r\n\r\n"[..],
            b"\nGET /metrics HTTP/1.1\n\n",
            b"\r",
            b"\n",
        ] {
            assert_eq!(parse_request(req), Request::Bad, "{req:?}");
        }
        assert_eq!(parse_request(b""), Request::Incomplete);
    }

    #[test]
    fn malformed_header_lines_are_skipped_but_nul_and_bare_cr_are_bad() {
        let m = Request::Metrics { head: false };
        for header in [
            &b"Host x"[..],
            b" folded",
            b"X : y",
            b"\xff: v",
            b"X: \x80\xff",
        ] {
            let mut req = b"GET /metrics HTTP/1.1\r\n".to_vec();
            req.extend_from_slice(header);
            req.extend_from_slice(b"\r\nAccept: */*\r\n\r\n");
            assert_eq!(
                parse_request(&req),
                m,
                "{:?}",
                String::from_utf8_lossy(&req)
            );
        }
        for req in [
            &b"GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n"[..],
            b"GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\n\rX: y\r\n\r\n",
        ] {
            assert_eq!(parse_request(req), Request::Bad, "{req:?}");
        }
    }

    #[test]
    fn request_line_parts_are_split_by_spaces_only() {
        let m = Request::Metrics { head: false };
        assert_eq!(parse_request(b"GET   /metrics  HTTP/1.1\r\n\r\n"), m);
        for req in [
            &b"GET\t/metrics HTTP/1.1\r\n\r\n"[..],
            b" GET /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 \r\n\r\n",
            b"GET /metrics HTTP/1.2\r\n\r\n",
            b"GET /met\x7frics HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_request(req), Request::Bad, "{req:?}");
        }
    }

    #[test]
    fn a_bad_request_line_is_bad_before_the_head_ends() {
        assert_eq!(parse_request(b"GET /metrics HTTP/2"), Request::Bad);
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1 x"), Request::Bad);
        assert_eq!(parse_request(b"\x16\x03\x01"), Request::Bad);
        // The method is judged once the head is whole.
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\n"),
            Request::Incomplete
        );
    }

    /// Xorshift64: a seeded, dependency-free generator for the property test below.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len())]
        }
    }

    /// A well-formed request head and what [`parse_request`] must make of it.
    fn valid_head(rng: &mut Rng) -> (Vec<u8>, Request) {
        const TARGETS: [(&str, bool); 14] = [
            ("/metrics", true),
            ("/metrics?x=y", true),
            ("/metrics?", true),
            ("/metrics#top", true),
            ("/metrics?name[]=a%20b", true),
            ("http://h:9/metrics", true),
            ("HTTPS://h/metrics?q", true),
            ("/", false),
            ("/metricsx", false),
            ("/metrics/", false),
            ("/m\u{e9}trics", false),
            ("http://h:9", false),
            ("http://h?x=/metrics", false),
            ("/favicon.ico", false),
        ];
        const TOKEN: &[u8] = b"abcxyzABCXYZ0189!#$%&'*+-.^_`|~";
        let eol = |rng: &mut Rng| if rng.below(3) == 0 { "\n" } else { "\r\n" };
        let head = rng.below(2) == 0;
        let (target, metrics) = rng.pick(&TARGETS);
        let mut buf = Vec::new();
        buf.extend_from_slice(if head { b"HEAD" } else { b"GET" });
        buf.resize(buf.len() + 1 + rng.below(2), b' ');
        buf.extend_from_slice(target.as_bytes());
        buf.resize(buf.len() + 1 + rng.below(2), b' ');
        buf.extend_from_slice(rng.pick(&[&b"HTTP/1.1"[..], b"HTTP/1.0"]));
        buf.extend_from_slice(eol(rng).as_bytes());
        let headers = if rng.below(50) == 0 {
            MAX_HEADERS
        } else {
            rng.below(6)
        };
        for _ in 0..headers {
            for _ in 0..1 + rng.below(12) {
                buf.push(rng.pick(TOKEN));
            }
            buf.extend_from_slice(rng.pick(&[&b": "[..], b":", b":\t "]));
            for _ in 0..rng.below(20) {
                buf.push(match rng.below(10) {
                    0 => b' ',
                    1 => b'\t',
                    2 => 0x80 + rng.below(0x80) as u8,
                    _ => 0x21 + rng.below(0x5e) as u8,
                });
            }
            buf.extend_from_slice(eol(rng).as_bytes());
        }
        buf.extend_from_slice(eol(rng).as_bytes());
        let want = if metrics {
            Request::Metrics { head }
        } else {
            Request::NotFound { head }
        };
        (buf, want)
    }

    /// What the event loop ends with when `chunks` arrive one by one: it re-parses the
    /// accumulated bytes after each and stops at the first verdict.
    fn feed(chunks: &[&[u8]]) -> Request {
        let mut buf = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            match parse_request(&buf) {
                Request::Incomplete => {}
                verdict => return verdict,
            }
        }
        parse_request(&buf)
    }

    /// Every prefix of `buf` parses, and once a prefix has a verdict every longer one has the
    /// same; nothing of [`MAX_REQUEST`] bytes or more is incomplete.
    fn assert_verdicts_are_stable(buf: &[u8]) -> Request {
        let mut first = None;
        for n in 0..=buf.len() {
            let got = parse_request(&buf[..n]);
            if n >= MAX_REQUEST {
                assert_ne!(got, Request::Incomplete, "{n} bytes of {buf:?}");
            }
            match first {
                None if got != Request::Incomplete => first = Some((n, got)),
                Some((at, verdict)) => {
                    assert_eq!(got, verdict, "prefix {n} vs {at} of {buf:?}")
                }
                None => {}
            }
        }
        parse_request(buf)
    }

    #[test]
    fn property_random_and_mutated_heads() {
        const INTERESTING: &[u8] = b"\r\n \t:\0\x7f\x80\xff\x0b/?#Gah1.";
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..3000 {
            let (valid, want) = valid_head(&mut rng);
            let ctx = |buf: &[u8]| format!("round {round}: {:?}", String::from_utf8_lossy(buf));

            // Whole, with trailing bytes, and every proper prefix.
            assert_eq!(parse_request(&valid), want, "{}", ctx(&valid));
            let mut trailing = valid.clone();
            for _ in 0..rng.below(8) {
                trailing.push(rng.next() as u8);
            }
            assert_eq!(parse_request(&trailing), want, "{}", ctx(&trailing));
            for n in 0..valid.len() {
                assert_eq!(
                    parse_request(&valid[..n]),
                    Request::Incomplete,
                    "prefix {n}, {}",
                    ctx(&valid)
                );
            }

            // In one piece or split at one or two points, the loop ends the same.
            let a = rng.below(trailing.len() + 1);
            let b = a + rng.below(trailing.len() - a + 1);
            let split = [&trailing[..a], &trailing[a..b], &trailing[b..]];
            assert_eq!(feed(&split), want, "split {a} {b}, {}", ctx(&trailing));
            assert_eq!(feed(&[&trailing]), want, "{}", ctx(&trailing));

            // Mutated: bytes replaced, flipped, inserted, removed; or random bytes outright.
            let mut mutated = if round % 4 == 3 {
                (0..rng.below(160))
                    .map(|_| match rng.below(2) {
                        0 => rng.pick(INTERESTING),
                        _ => rng.next() as u8,
                    })
                    .collect()
            } else {
                valid.clone()
            };
            for _ in 0..rng.below(4) {
                let i = rng.below(mutated.len() + 1);
                let byte = match rng.below(2) {
                    0 => rng.pick(INTERESTING),
                    _ => rng.next() as u8,
                };
                match rng.below(4) {
                    0 if i < mutated.len() => mutated[i] = byte,
                    1 if i < mutated.len() => mutated[i] ^= 1 << rng.below(8),
                    2 if i < mutated.len() => drop(mutated.remove(i)),
                    _ => mutated.insert(i, byte),
                }
            }
            let whole = assert_verdicts_are_stable(&mutated);
            let a = rng.below(mutated.len() + 1);
            assert_eq!(
                feed(&[&mutated[..a], &mutated[a..]]),
                whole,
                "split {a}, {}",
                ctx(&mutated)
            );
        }
    }

    #[test]
    fn property_heads_around_the_size_limit() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut len = MAX_REQUEST - 3;
        while len <= MAX_REQUEST + 3 {
            let (valid, _) = valid_head(&mut rng);
            if valid.iter().filter(|&&b| b == b'\n').count() > MAX_HEADERS {
                continue; // No room for the padding header.
            }
            // Pad one header so that the head is `len` bytes long.
            let line_end = valid
                .iter()
                .position(|&b| b == b'\n')
                .expect("request line");
            let mut buf = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
            let rest = &valid[line_end + 1..];
            buf.resize(len - rest.len() - 2, b'p');
            buf.extend_from_slice(b"\r\n");
            buf.extend_from_slice(rest);
            assert_eq!(buf.len(), len);
            let want = if len <= MAX_REQUEST {
                Request::Metrics { head: false }
            } else {
                Request::Bad
            };
            assert_eq!(assert_verdicts_are_stable(&buf), want, "{len} bytes");
            len += 1;
        }
    }

    /// Splits a response into status line, headers and body, checking `Content-Length`.
    fn split(resp: &[u8]) -> (String, Vec<String>, String) {
        let text = String::from_utf8(resp.to_vec()).expect("utf-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("end of head");
        let mut lines = head.split("\r\n").map(str::to_owned);
        let status = lines.next().expect("status line");
        (status, lines.collect(), body.to_owned())
    }

    fn header<'a>(headers: &'a [String], name: &str) -> &'a str {
        headers
            .iter()
            .find_map(|h| h.strip_prefix(name)?.strip_prefix(": "))
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    }

    #[test]
    fn metrics_response_is_200_with_exact_length() {
        let body = "# HELP a b\n# TYPE a gauge\na{worker=\"0\"} 1\nÜ\n";
        let (status, headers, got) = split(&response(&Request::Metrics { head: false }, body));
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(header(&headers, "Content-Type"), CONTENT_TYPE);
        assert_eq!(header(&headers, "Content-Length"), body.len().to_string());
        assert_eq!(header(&headers, "Connection"), "close");
        assert_eq!(got, body);
    }

    #[test]
    fn head_response_has_length_but_no_body() {
        let body = "x 1\n";
        let (status, headers, got) = split(&response(&Request::Metrics { head: true }, body));
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(header(&headers, "Content-Length"), "4");
        assert_eq!(got, "");
    }

    #[test]
    fn not_found_and_bad_responses() {
        for (req, want) in [
            (Request::NotFound { head: false }, "HTTP/1.1 404 Not Found"),
            (Request::Bad, "HTTP/1.1 400 Bad Request"),
            (Request::Incomplete, "HTTP/1.1 400 Bad Request"),
        ] {
            let (status, headers, body) = split(&response(&req, "ignored"));
            assert_eq!(status, want);
            assert_eq!(header(&headers, "Connection"), "close");
            assert_eq!(header(&headers, "Content-Length"), body.len().to_string());
            assert!(!body.is_empty() && !body.contains("ignored"));
        }
        let (status, headers, body) = split(&response(&Request::NotFound { head: true }, ""));
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        assert_ne!(header(&headers, "Content-Length"), "0");
        assert_eq!(body, "");
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
                addr: server.parse().expect("test address"),
                active: 1,
                up: worker == 0,
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
                    occupancy: [4, 0, 1, 2, 3],
                    occupancy_sum: 5.5,
                    ..RingSnapshot::default()
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
        assert_eq!(families.len(), 28);
        for (i, (name, kind)) in families.iter().enumerate() {
            assert!(
                families[..i].iter().all(|(n, _)| n != name),
                "{name} typed twice"
            );
            assert_eq!(text.matches(&format!("# HELP {name} ")).count(), 1);
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name} {kind}");
            assert!(name.starts_with("ringproxy_"));
        }
        // Samples follow their own family's TYPE line.
        let mut current = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap_or_default().to_owned();
            } else if !line.starts_with('#') {
                let name = line.split('{').next().unwrap_or_default();
                let base = name
                    .strip_suffix("_bucket")
                    .or_else(|| name.strip_suffix("_sum"))
                    .or_else(|| name.strip_suffix("_count"))
                    .filter(|b| *b == current)
                    .unwrap_or(name);
                assert_eq!(base, current, "{line}");
                assert!(line.starts_with(&format!("{name}{{worker=\"")), "{line}");
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let text = render(&snapshots());
        let want = "ringproxy_connections_accepted_total{worker=\"0\",route=\"we\\\"ird\\\\name\\nx\"} 100";
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
    fn empty_input_renders_only_headers() {
        let text = render(&[]);
        assert!(text.lines().all(|l| l.starts_with("# ")));
        assert_eq!(text.matches("# TYPE ").count(), 28);
    }

    #[test]
    fn odd_floats_are_spelled_for_prometheus() {
        assert_eq!(Float(f64::NAN).to_string(), "NaN");
        assert_eq!(Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Float(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Float(1.0).to_string(), "1");
        assert_eq!(Float(1e-7).to_string(), "0.0000001");
    }
}
