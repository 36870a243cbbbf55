//! The workers' answers merged into the process's, and written as the JSON the API promises
//! (field names fixed: scripts rely on them).
//!
//! Servers are merged by route and address, in the first worker's order: `active` and
//! `total` add up, the state is the first worker's (every worker applied the same changes),
//! the health is the worst any worker reports (checks run in one worker and are shared;
//! passive health is each worker's own) with that worker's `why`, and `last_check` is the
//! freshest. Connections are each worker's own and only concatenated (by worker, then in
//! the worker's order), or, for the busiest, ranked by bytes buffered now.

use crate::stats::{ConnFilter, ConnView, ServerView};
use serde_json::{Value, json};
use std::time::Duration;

/// Every worker's servers as one list (see the module documentation).
pub fn merge_servers(workers: Vec<Vec<ServerView>>) -> Vec<ServerView> {
    let mut merged: Vec<ServerView> = Vec::new();
    for view in workers.into_iter().flatten() {
        let same = |m: &&mut ServerView| m.route == view.route && m.server == view.server;
        let Some(m) = merged.iter_mut().find(same) else {
            merged.push(view);
            continue;
        };
        m.active += view.active;
        m.total += view.total;
        if view.health > m.health || (view.health == m.health && m.why.is_none()) {
            m.health = view.health;
            m.why = view.why;
        }
        m.last_check = match (m.last_check, view.last_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    merged
}

/// Every worker's connections as one list; with `busiest`, only that many, the most bytes
/// buffered first (ties by id).
pub fn merge_connections(workers: Vec<Vec<ConnView>>, filter: &ConnFilter) -> Vec<ConnView> {
    let mut all: Vec<ConnView> = workers.into_iter().flatten().collect();
    if let Some(n) = filter.busiest {
        all.sort_by_key(|c| (std::cmp::Reverse(c.buffered()), c.id));
        all.truncate(n);
    }
    if let Some(n) = filter.limit {
        all.sort_by_key(|c| c.id);
        all.truncate(n);
    }
    all
}

/// Seconds as a JSON number with millisecond precision.
fn secs(d: Duration) -> Value {
    json!((d.as_millis() as f64) / 1000.0)
}

/// One server as `/servers` lists it.
pub fn server_json(s: &ServerView) -> Value {
    json!({
        "route": s.route,
        "server": s.server.to_string(),
        "state": s.state.name(),
        "health": s.health.name(),
        "why": s.why,
        "active": s.active,
        "total": s.total,
        "last_check": s.last_check.map(secs),
    })
}

/// One connection as `/connections` lists it.
pub fn conn_json(c: &ConnView) -> Value {
    json!({
        "id": c.id,
        "worker": c.worker,
        "route": c.route,
        "client": c.client.to_string(),
        "upstream": c.upstream.as_ref().map(|a| a.to_string()),
        "age": secs(c.age),
        "phase": c.phase,
        "up": c.up,
        "down": c.down,
        "fill_up": c.fill_up,
        "fill_down": c.fill_down,
        "peak_up": c.peak_up,
        "peak_down": c.peak_down,
        "stall_up": secs(c.stall_up),
        "stall_down": secs(c.stall_down),
        "buffer_size": c.buffer_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{AdminState, ServerHealth};

    fn server(route: &str, port: u16, health: ServerHealth, active: u64) -> ServerView {
        ServerView {
            route: route.into(),
            server: format!("127.0.0.1:{port}")
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
            state: AdminState::Drain,
            health,
            why: (health != ServerHealth::Up).then(|| format!("{health:?} in {active}")),
            active,
            total: active * 10,
            last_check: None,
        }
    }

    #[test]
    fn servers_add_up_and_the_worst_health_wins() {
        let mut checked = server("a", 1, ServerHealth::Up, 1);
        checked.last_check = Some(Duration::from_secs(2));
        let workers = vec![
            vec![checked, server("a", 2, ServerHealth::Up, 0)],
            vec![
                server("a", 1, ServerHealth::Unavailable, 2),
                server("a", 2, ServerHealth::Up, 3),
                server("b", 1, ServerHealth::Up, 0),
            ],
        ];
        let merged = merge_servers(workers);
        assert_eq!(merged.len(), 3, "route and address name a server");
        assert_eq!((merged[0].active, merged[0].total), (3, 30));
        assert_eq!(merged[0].health, ServerHealth::Unavailable);
        assert_eq!(merged[0].why.as_deref(), Some("Unavailable in 2"));
        assert_eq!(merged[0].last_check, Some(Duration::from_secs(2)));
        assert_eq!((merged[1].active, merged[1].health), (3, ServerHealth::Up));
        assert_eq!(merged[2].route, "b");
    }

    #[test]
    fn json_field_names_are_the_documented_ones() {
        let s = server_json(&server("a", 1, ServerHealth::Down, 1));
        let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        let want = [
            "active",
            "health",
            "last_check",
            "route",
            "server",
            "state",
            "total",
            "why",
        ];
        assert_eq!(keys, want);
        assert_eq!(s["state"], "drain");
        assert_eq!(s["health"], "down");
        assert_eq!(s["last_check"], Value::Null);
    }
}
