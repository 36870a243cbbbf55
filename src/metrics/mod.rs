//! The `/metrics` endpoint: HTTP/1.x request classification (the head parsed by
//! [`httparse`], in `request`) and responses (`response`), and the Prometheus text
//! exposition (format 0.0.4) of the loops' [`Snapshot`]s: the primitives in `text`, the
//! families in `routes`, `io`, `buffers` and `dns`.
//!
//! Pure functions only: the event loop owns the sockets, reads at most [`MAX_REQUEST`] bytes,
//! asks [`parse_request`] whether it has a whole request, writes [`response`] and closes. No
//! function here does I/O, blocks, or panics on any input; request parsing allocates nothing
//! (its header slots are a fixed array on the stack).
//!
//! Invariants of [`render`]'s output: each metric family has exactly one `# HELP` and one
//! `# TYPE` line followed by all of its samples (from every snapshot), every sample of a
//! loop's family carries a `worker="N"` label first (the process-wide families, last, carry
//! none), label values are escaped (`\\`, `\"`, `\n`), counters end in `_total`, and
//! histograms are cumulative (buckets, `_sum` and `_count` only grow; `+Inf` equals
//! `_count`), so every counter and histogram series only grows from scrape to scrape.
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
//! | `ringproxy_upstream_admin_state` | gauge (1/0) | `route`, `server`, `state` ([`AdminState`](crate::stats::AdminState)) |
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
//! | `ringproxy_ring_occupancy_ratio` | histogram, sampled once a second | `le` on `_bucket` |
//!
//! Process-wide, without `worker`:
//!
//! | family | type | labels |
//! |---|---|---|
//! | `ringproxy_build_info` | gauge (1) | `version`, `commit` |
//! | `process_resident_memory_bytes`, `process_open_fds`, `process_start_time_seconds` | gauge | |
//! | `process_cpu_seconds_total` | counter | |
//! | `ringproxy_max_conns` | gauge | |
//! | `ringproxy_reloads_total` | counter | `result` (`success`, `failure`) |
//! | `ringproxy_last_reload_timestamp_seconds` | gauge | |
//! | `ringproxy_upstream_connect_seconds` | histogram, all workers | `le` on `_bucket` |
//! | `ringproxy_connection_duration_seconds` | histogram, all workers | `le` on `_bucket` |
//! | `ringproxy_health_checks_total` | counter | `result` (`pass`, `fail`, `timeout`) |
//!
//! `direction` is `to_upstream` (client → server) or `to_client` (server → client). Every
//! sample also has `worker`.

mod buffers;
mod dns;
mod io;
mod process;
mod request;
mod response;
mod routes;
#[cfg(test)]
mod tests_render;
#[cfg(test)]
mod tests_request;
mod text;

pub use dns::render_dns;
pub use request::{MAX_HEADERS, MAX_REQUEST, Request, head_parser, parse_request};
pub use response::{CONTENT_TYPE, response};

use crate::error::CloseReason;
use crate::stats::{ProcessSnapshot, Snapshot};
use text::Out;

/// Renders every snapshot as Prometheus text exposition format 0.0.4.
///
/// Each family (listed in the [module documentation](self)) appears once with its `# HELP` and
/// `# TYPE`, followed by its samples for every snapshot in order, each labelled with the
/// snapshot's `worker`. Families are present even with no samples.
pub fn render(snapshots: &[Snapshot], process: &ProcessSnapshot) -> String {
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

    routes::route_families(&mut out, snapshots);
    routes::server_families(&mut out, snapshots);
    io::io_families(&mut out, snapshots);
    buffers::ring_families(&mut out, snapshots);
    process::process_families(&mut out, snapshots, process);
    out.s
}
