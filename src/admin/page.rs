//! The status page: one server-rendered HTML document with no external assets (inline CSS,
//! no script), which reloads itself every [`REFRESH_SECS`] seconds. It shows the routes, every
//! server with its state and health, and the busiest open connections (most bytes buffered
//! now) with each direction's buffer fill drawn as a bar and its peak as a mark on it.
//!
//! Every text that comes from the configuration or the network is HTML-escaped.

use crate::stats::{AdminState, ConnView, ServerHealth, ServerView};
use std::fmt::Write as _;
use std::time::Duration;

/// Seconds between the page's reloads.
pub const REFRESH_SECS: u32 = 5;

/// Connections the page shows: the busiest.
pub const PAGE_CONNECTIONS: usize = 20;

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left;white-space:nowrap}\
th{background:#f3f3f3}td.n{text-align:right}\
.ready,.up{color:#176f2c}.drain,.unavailable{color:#9a6700}.maint,.down{color:#b42318}\
.bar{position:relative;display:inline-block;width:9em;height:.8em;background:#eee;\
vertical-align:middle;margin-right:.4em}\
.bar .fill{position:absolute;left:0;top:0;bottom:0;background:#3b82f6}\
.bar .peak{position:absolute;top:-2px;bottom:-2px;width:2px;background:#b42318}";

/// The whole page for `servers` and the `busiest` connections.
pub fn render(servers: &[ServerView], busiest: &[ConnView]) -> String {
    let mut out = String::with_capacity(4096 + 512 * (servers.len() + busiest.len()));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>ringproxy status</title><style>{STYLE}</style></head><body>\
         <h1>ringproxy</h1><p>Reloads every {REFRESH_SECS} s. As JSON: \
         <a href=\"/servers\">/servers</a>, <a href=\"/connections\">/connections</a>.</p>"
    );
    routes(&mut out, servers);
    servers_table(&mut out, servers);
    connections(&mut out, busiest);
    out += "</body></html>\n";
    out
}

fn routes(out: &mut String, servers: &[ServerView]) {
    out.push_str(
        "<h2>Routes</h2><table id=\"routes\"><tr><th>route</th><th>servers</th>\
         <th>ready</th><th>up</th><th>active</th></tr>",
    );
    let mut names: Vec<&str> = Vec::new();
    for s in servers {
        if !names.contains(&s.route.as_str()) {
            names.push(&s.route);
        }
    }
    for name in names {
        let of: Vec<&ServerView> = servers.iter().filter(|s| s.route == name).collect();
        let ready = of.iter().filter(|s| s.state == AdminState::Ready).count();
        let up = of.iter().filter(|s| s.health == ServerHealth::Up).count();
        let active: u64 = of.iter().map(|s| s.active).sum();
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{ready}</td>\
             <td class=\"n\">{up}</td><td class=\"n\">{active}</td></tr>",
            escape(name),
            of.len()
        );
    }
    out.push_str("</table>");
}

fn servers_table(out: &mut String, servers: &[ServerView]) {
    out.push_str(
        "<h2>Servers</h2><table id=\"servers\"><tr><th>route</th><th>server</th><th>state</th>\
         <th>health</th><th>why</th><th>active</th><th>total</th><th>last check</th></tr>",
    );
    for s in servers {
        let last = s
            .last_check
            .map_or("-".to_string(), |d| format!("{} ago", secs(d)));
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"{state}\">{state}</td>\
             <td class=\"{health}\">{health}</td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{last}</td></tr>",
            escape(&s.route),
            s.server,
            escape(s.why.as_deref().unwrap_or("")),
            s.active,
            s.total,
            state = s.state.name(),
            health = s.health.name(),
        );
    }
    out.push_str("</table>");
}

fn connections(out: &mut String, busiest: &[ConnView]) {
    let _ = write!(
        out,
        "<h2>Busiest connections</h2><p>{} open connection(s) with the most bytes buffered \
         now (at most {PAGE_CONNECTIONS}); each bar is a buffer's fill, the mark its peak.</p>\
         <table id=\"connections\"><tr><th>id</th><th>worker</th><th>route</th><th>client</th>\
         <th>upstream</th><th>age</th><th>phase</th><th>up</th><th>down</th>\
         <th>buffer client → upstream</th><th>buffer upstream → client</th><th>stalled</th></tr>",
        busiest.len()
    );
    for c in busiest {
        let upstream = c
            .upstream
            .as_ref()
            .map_or("-".to_string(), |a| a.to_string());
        let _ = write!(
            out,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td>\
             <td>{upstream}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{} / {}</td></tr>",
            c.id,
            c.worker,
            escape(&c.route),
            c.client,
            secs(c.age),
            c.phase,
            bytes(c.up as usize),
            bytes(c.down as usize),
            bar(c.fill_up, c.peak_up, c.buffer_size),
            bar(c.fill_down, c.peak_down, c.buffer_size),
            secs(c.stall_up),
            secs(c.stall_down),
        );
    }
    out.push_str("</table>");
}

/// A buffer's fill as a bar with its peak marked, then the numbers.
fn bar(fill: usize, peak: usize, size: usize) -> String {
    let percent = |n: usize| (n as f64 * 100.0 / size.max(1) as f64).min(100.0);
    format!(
        "<span class=\"bar\"><span class=\"fill\" style=\"width:{:.1}%\"></span>\
         <span class=\"peak\" style=\"left:{:.1}%\"></span></span>{} / {}, peak {}",
        percent(fill),
        percent(peak),
        bytes(fill),
        bytes(size),
        bytes(peak)
    )
}

/// Bytes for people: `512 B`, `16.0 KiB`, `3.2 MiB`, `1.0 GiB`.
fn bytes(n: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Seconds with milliseconds, as the process log writes durations.
fn secs(d: Duration) -> String {
    crate::display::Secs(d).to_string()
}

/// `s` safe inside HTML text and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(fill_up: usize) -> ConnView {
        ConnView {
            id: 7,
            worker: 0,
            route: "<web>".into(),
            client: "127.0.0.1:5000"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
            upstream: None,
            age: Duration::from_millis(1500),
            phase: "connecting",
            up: 0,
            down: 2048,
            fill_up,
            fill_down: 0,
            peak_up: 8192,
            peak_down: 0,
            stall_up: Duration::ZERO,
            stall_down: Duration::ZERO,
            buffer_size: 16384,
        }
    }

    #[test]
    fn the_page_escapes_names_and_draws_fill_and_peak() {
        let server = ServerView {
            route: "<web>".into(),
            server: "[::1]:80".parse::<std::net::SocketAddr>().unwrap().into(),
            state: AdminState::Drain,
            health: ServerHealth::Up,
            why: Some("a \"quoted\" <why>".into()),
            active: 1,
            total: 2,
            last_check: Some(Duration::from_millis(250)),
        };
        let page = render(&[server], &[conn(4096)]);
        assert!(!page.contains("<web>") && page.contains("&lt;web&gt;"));
        assert!(page.contains("a &quot;quoted&quot; &lt;why&gt;"));
        assert!(
            page.contains("<td>[::1]:80</td><td class=\"drain\">drain</td>"),
            "{page}"
        );
        assert!(page.contains("style=\"width:25.0%\""), "{page}");
        assert!(page.contains("style=\"left:50.0%\""), "{page}");
        assert!(page.contains("4.0 KiB / 16.0 KiB, peak 8.0 KiB"), "{page}");
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
        assert!(
            !page.contains("http://") && !page.contains("<script"),
            "no external asset"
        );
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
    }
}
