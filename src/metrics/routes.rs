//! The per-route and per-server families: one sample per route (or server) of every
//! worker's snapshot, labelled `route` (and `server`).

use super::text::{Float, Out, Sampler};
use crate::error::CloseReason;
use crate::stats::{AdminState, RouteSnapshot, ServerSnapshot, Snapshot};

/// The per-route families.
pub(super) fn route_families(out: &mut Out, snapshots: &[Snapshot]) {
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
pub(super) fn server_families(out: &mut Out, snapshots: &[Snapshot]) {
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
        "1 when the server is healthy (checks, passive health), whatever its admin state.",
        "gauge",
        |out, w, r, s| out.server_sample(w, r, s, &[], u64::from(s.up)),
    );
    server_family(
        out,
        snapshots,
        "ringproxy_upstream_admin_state",
        "1 for the server's administrative state, 0 for the others (health is _up).",
        "gauge",
        |out, w, r, s| {
            for state in AdminState::ALL {
                let on = u64::from(s.admin == state);
                out.server_sample(w, r, s, &[("state", state.name())], on);
            }
        },
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
