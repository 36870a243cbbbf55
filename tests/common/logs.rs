//! Reading what the proxy reports: its access log (flushed every second, so read by polling
//! with a deadline) and its `/metrics` page.

use super::{IO_TIMEOUT, connect, read_until_end, wait_until};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

/// The lines of the access log at `path` once `pred` holds for them; panics, showing them,
/// if it does not within [`IO_TIMEOUT`].
pub fn log_lines(path: &Path, mut pred: impl FnMut(&[String]) -> bool) -> Vec<String> {
    let mut lines = Vec::new();
    let held = wait_until(IO_TIMEOUT, || {
        lines = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        pred(&lines)
    });
    assert!(
        held,
        "the access log never showed what was expected:\n{lines:#?}"
    );
    lines
}

/// The text-log line of the connection whose client is `client`, once it is written.
pub fn line_of(path: &Path, client: SocketAddr) -> String {
    let start = format!("{client} [");
    let lines = log_lines(path, |ls| ls.iter().any(|l| l.starts_with(&start)));
    lines.into_iter().find(|l| l.starts_with(&start)).unwrap()
}

/// The value of the text-log field `key=` in `line`, if present.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let key = format!("{key}=");
    line.split(' ').find_map(|f| f.strip_prefix(key.as_str()))
}

/// The whole response to `GET /metrics` on `metrics`.
pub fn scrape(metrics: SocketAddr) -> String {
    let mut s = connect(metrics);
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send the scrape");
    let (data, _) = read_until_end(&mut s, IO_TIMEOUT, 1 << 20);
    String::from_utf8_lossy(&data).into_owned()
}

/// Scrapes `metrics` until every line of `want` is on the page; panics after
/// [`IO_TIMEOUT`] with the last page.
pub fn wait_for_metrics(metrics: SocketAddr, want: &[String]) {
    let mut body = String::new();
    let all = wait_until(IO_TIMEOUT, || {
        body = scrape(metrics);
        want.iter().all(|w| body.lines().any(|l| l == w))
    });
    assert!(all, "wanted {want:#?} in:\n{body}");
}
