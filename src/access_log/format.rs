//! Formatting access-log lines: text in nginx's stream log order, or one JSON object per
//! line. Pure functions writing into a caller's `String` (no allocation once it has grown);
//! times are UTC, computed by hand from the UNIX timestamp (no time-zone database).

use super::Record;
use crate::endpoint::Endpoint;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Appends one text line (with its `\n`) for `record` to `out`:
///
/// `CLIENT [DD/Mon/YYYY:HH:MM:SS +0000] TCP ROUTE UPSTREAM up=N down=N connect=S duration=S
/// ended=REASON peak_up=N peak_down=N stall_up=S stall_down=S[ tried=ADDR,ADDR retries=N][
/// peer=ADDR][ authority=S][ unique_id=S][ sni=NAME][ alpn=LIST]`
///
/// Seconds have three decimals (truncated to the millisecond); an absent upstream or connect
/// time is `-`; `tried` (every server tried, oldest first) and `retries` appear when more
/// than one server was tried, or when the only one tried did not connect (nginx's
/// `$upstream_addr` names it too), `peer`, `authority` and `unique_id` only when a PROXY
/// header gave them, `sni` and `alpn` only when a ClientHello did. The time is the end of
/// the connection. In the route name, the authority, the
/// ALPN list and the unique id, spaces, control characters, `"` and `\` (and in the
/// unique id any byte outside printable ASCII) are written as `\xHH`, so that the line always
/// splits on spaces into the same fields.
pub fn format_text(record: &Record, out: &mut String) {
    let (secs, _) = unix_time(record.end);
    let t = Civil::from_unix(secs);
    let _ = write!(
        out,
        "{} [{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000] TCP ",
        record.client,
        t.day,
        MONTHS[usize::from(t.month - 1) % 12],
        t.year,
        t.hour,
        t.minute,
        t.second
    );
    push_text_field(out, record.route);
    out.push(' ');
    match record.upstream {
        Some(addr) => push_text_server(out, addr),
        None => out.push('-'),
    }
    let _ = write!(
        out,
        " up={} down={} connect=",
        record.bytes_to_upstream, record.bytes_to_client
    );
    match record.connect_time {
        Some(d) => push_secs(out, d),
        None => out.push('-'),
    }
    out.push_str(" duration=");
    push_secs(out, record.duration);
    let _ = write!(
        out,
        " ended={} peak_up={} peak_down={} stall_up=",
        record.ended.as_str(),
        record.peak_to_upstream,
        record.peak_to_client
    );
    push_secs(out, record.stalled_to_upstream);
    out.push_str(" stall_down=");
    push_secs(out, record.stalled_to_client);
    if record.retries > 0 || (record.upstream.is_none() && !record.tried.is_empty()) {
        out.push_str(" tried=");
        for (i, addr) in record.tried.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_text_server(out, addr);
        }
        let _ = write!(out, " retries={}", record.retries);
    }
    if let Some(peer) = record.peer {
        let _ = write!(out, " peer={peer}");
    }
    if let Some(authority) = record.authority {
        out.push_str(" authority=");
        push_text_field(out, authority);
    }
    if let Some(id) = record.unique_id {
        out.push_str(" unique_id=");
        if id.is_empty() {
            out.push('-');
        }
        for &b in id {
            if b.is_ascii_graphic() && b != b'"' && b != b'\\' {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "\\x{b:02X}");
            }
        }
    }
    if let Some(sni) = record.sni {
        out.push_str(" sni=");
        push_text_field(out, sni);
    }
    if let Some(alpn) = record.alpn {
        out.push_str(" alpn=");
        push_text_field(out, alpn);
    }
    out.push('\n');
}

/// Appends a server's address: an IP address as it is, a Unix path escaped as a field.
fn push_text_server(out: &mut String, server: &Endpoint) {
    match server {
        Endpoint::Ip(addr) => {
            let _ = write!(out, "{addr}");
        }
        Endpoint::Unix(_) => push_text_field(out, &server.to_string()),
    }
}

/// Appends a server's address as a JSON string.
fn push_json_server(out: &mut String, server: &Endpoint) {
    match server {
        Endpoint::Ip(addr) => {
            let _ = write!(out, "\"{addr}\"");
        }
        Endpoint::Unix(_) => push_json_str(out, &server.to_string()),
    }
}

/// Appends `s` as one space-free field: `-` when empty, spaces, control characters, `"` and
/// `\` as `\xHH` (per UTF-8 byte).
fn push_text_field(out: &mut String, s: &str) {
    if s.is_empty() {
        out.push('-');
    }
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() || c == '"' || c == '\\' {
            let mut bytes = [0; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                let _ = write!(out, "\\x{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

/// Appends one JSON object (with its `\n`) for `record` to `out`, with the text line's keys
/// and in its order: `time` (the end of the connection, RFC 3339 UTC with milliseconds),
/// `route`, `client`, `upstream` (null if none), `up`, `down` (bytes), `connect` (seconds,
/// null if none), `duration`, `ended`, `peak_up`, `peak_down` (bytes), `stall_up`,
/// `stall_down` (seconds), `tried` (every server tried, oldest first), `retries`, then
/// `peer`, `authority`, `unique_id` only when a PROXY header gave them (the unique id as a
/// string, bytes that are not UTF-8 replaced), and `sni`, `alpn` only when a ClientHello
/// gave them. Seconds are numbers with three decimals.
pub fn format_json(record: &Record, out: &mut String) {
    let (secs, millis) = unix_time(record.end);
    let t = Civil::from_unix(secs);
    let _ = write!(
        out,
        "{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"route\":",
        t.year, t.month, t.day, t.hour, t.minute, t.second, millis
    );
    push_json_str(out, record.route);
    let _ = write!(out, ",\"client\":\"{}\",\"upstream\":", record.client);
    match record.upstream {
        Some(addr) => push_json_server(out, addr),
        None => out.push_str("null"),
    }
    let _ = write!(
        out,
        ",\"up\":{},\"down\":{},\"connect\":",
        record.bytes_to_upstream, record.bytes_to_client
    );
    match record.connect_time {
        Some(d) => push_secs(out, d),
        None => out.push_str("null"),
    }
    out.push_str(",\"duration\":");
    push_secs(out, record.duration);
    let _ = write!(
        out,
        ",\"ended\":\"{}\",\"peak_up\":{},\"peak_down\":{},\"stall_up\":",
        record.ended.as_str(),
        record.peak_to_upstream,
        record.peak_to_client
    );
    push_secs(out, record.stalled_to_upstream);
    out.push_str(",\"stall_down\":");
    push_secs(out, record.stalled_to_client);
    out.push_str(",\"tried\":[");
    let single = record.upstream.filter(|_| record.retries == 0);
    let tried = record.tried.iter().chain(single);
    for (i, addr) in tried.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_server(out, addr);
    }
    let _ = write!(out, "],\"retries\":{}", record.retries);
    if let Some(peer) = record.peer {
        let _ = write!(out, ",\"peer\":\"{peer}\"");
    }
    if let Some(authority) = record.authority {
        out.push_str(",\"authority\":");
        push_json_str(out, authority);
    }
    if let Some(id) = record.unique_id {
        out.push_str(",\"unique_id\":");
        push_json_str(out, &String::from_utf8_lossy(id));
    }
    for (key, value) in [("sni", record.sni), ("alpn", record.alpn)] {
        if let Some(value) = value {
            let _ = write!(out, ",\"{key}\":");
            push_json_str(out, value);
        }
    }
    out.push_str("}\n");
}

/// Appends `d` as seconds with three decimals, truncated to the millisecond.
fn push_secs(out: &mut String, d: Duration) {
    let _ = write!(out, "{}.{:03}", d.as_secs(), d.subsec_millis());
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Control characters, and the two separators JavaScript does not allow raw.
            c if u32::from(c) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Month abbreviations as nginx's `$time_local` spells them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Whole seconds since the epoch (negative before it, floored) and milliseconds within.
fn unix_time(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_millis(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            let nanos = d.subsec_nanos();
            if nanos == 0 {
                (-secs, 0)
            } else {
                // -(s + f) = -(s + 1) + (1 - f)
                let millis = (1_000_000_000 - nanos) / 1_000_000;
                (-secs - 1, millis.min(999))
            }
        }
    }
}

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    /// 1..=12
    month: u8,
    /// 1..=31
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl Civil {
    /// The UTC date and time `secs` seconds after 1970-01-01T00:00:00Z (proleptic Gregorian
    /// calendar), by Howard Hinnant's `civil_from_days`.
    fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Shift the epoch to 0000-03-01, so that leap days end each 400-year era's years.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097); // [0, 146096]
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
        let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
        let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
        let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::error::CloseReason;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    /// 2026-11-26T08:30:00Z
    const NOV_26_2026: u64 = 1_795_681_800;

    fn addr(s: &str) -> std::net::SocketAddr {
        s.parse().expect("test address")
    }

    pub(crate) fn record() -> Record<'static> {
        Record {
            end: at(NOV_26_2026, 789),
            route: "web",
            client: addr("127.0.0.1:51234").into(),
            peer: None,
            authority: None,
            unique_id: None,
            sni: None,
            alpn: None,
            upstream: Some(Box::leak(Box::new(addr("127.0.0.1:8078").into()))),
            tried: &[],
            retries: 0,
            bytes_to_upstream: 1234,
            bytes_to_client: 5678,
            connect_time: Some(Duration::from_micros(1_900)),
            duration: Duration::from_millis(1234),
            ended: CloseReason::ClientClosed,
            peak_to_upstream: 16384,
            peak_to_client: 512,
            stalled_to_upstream: Duration::ZERO,
            stalled_to_client: Duration::from_millis(250),
        }
    }

    pub(crate) fn text(r: &Record) -> String {
        let mut s = String::new();
        format_text(r, &mut s);
        s
    }

    pub(crate) fn json(r: &Record) -> String {
        let mut s = String::new();
        format_json(r, &mut s);
        s
    }

    #[test]
    fn text_line() {
        assert_eq!(
            text(&record()),
            "127.0.0.1:51234 [26/Nov/2026:08:30:00 +0000] TCP web 127.0.0.1:8078 up=1234 \
             down=5678 connect=0.001 duration=1.234 ended=client-closed peak_up=16384 \
             peak_down=512 stall_up=0.000 stall_down=0.250\n"
        );
    }

    #[test]
    fn proxy_header_fields_end_the_line_escaped() {
        let r = Record {
            peer: Some(addr("10.0.0.9:4000").into()),
            authority: Some("app example"),
            unique_id: Some(b"id\x00\xff-1"),
            ..record()
        };
        assert!(
            text(&r).ends_with(
                " stall_down=0.250 peer=10.0.0.9:4000 authority=app\\x20example \
                 unique_id=id\\x00\\xFF-1\n"
            ),
            "{}",
            text(&r)
        );
        assert_eq!(
            text(&r).split(' ').count(),
            text(&record()).split(' ').count() + 3
        );
        assert!(
            json(&r).ends_with(
                ",\"peer\":\"10.0.0.9:4000\",\"authority\":\"app example\",\
                 \"unique_id\":\"id\\u0000\u{fffd}-1\"}\n"
            ),
            "{}",
            json(&r)
        );
    }

    #[test]
    fn client_hello_fields_come_last() {
        let r = Record {
            authority: Some("x"),
            sni: Some("a.example.com"),
            alpn: Some("h2,http/1.1"),
            ..record()
        };
        assert!(
            text(&r).ends_with(" authority=x sni=a.example.com alpn=h2,http/1.1\n"),
            "{}",
            text(&r)
        );
        assert!(
            json(&r).ends_with(
                ",\"authority\":\"x\",\"sni\":\"a.example.com\",\"alpn\":\"h2,http/1.1\"}\n"
            ),
            "{}",
            json(&r)
        );
        let odd = Record {
            alpn: Some("a b\u{1}"),
            ..record()
        };
        assert!(
            text(&odd).ends_with(" alpn=a\\x20b\\x01\n"),
            "{}",
            text(&odd)
        );
    }

    #[test]
    fn text_line_without_upstream_and_odd_route() {
        let r = Record {
            upstream: None,
            connect_time: None,
            ended: CloseReason::ConnectFailed,
            route: "a b\"c\\d\né",
            client: addr("[::1]:7").into(),
            ..record()
        };
        assert_eq!(
            text(&r),
            "[::1]:7 [26/Nov/2026:08:30:00 +0000] TCP a\\x20b\\x22c\\x5Cd\\x0Aé - up=1234 \
             down=5678 connect=- duration=1.234 ended=connect-failed peak_up=16384 \
             peak_down=512 stall_up=0.000 stall_down=0.250\n"
        );
        // Same number of space-separated fields as an ordinary line.
        assert_eq!(
            text(&r).split(' ').count(),
            text(&record()).split(' ').count()
        );
    }

    #[test]
    fn json_line() {
        assert_eq!(
            json(&record()),
            "{\"time\":\"2026-11-26T08:30:00.789Z\",\"route\":\"web\",\
             \"client\":\"127.0.0.1:51234\",\"upstream\":\"127.0.0.1:8078\",\
             \"up\":1234,\"down\":5678,\"connect\":0.001,\"duration\":1.234,\
             \"ended\":\"client-closed\",\"peak_up\":16384,\"peak_down\":512,\
             \"stall_up\":0.000,\"stall_down\":0.250,\"tried\":[\"127.0.0.1:8078\"],\
             \"retries\":0}\n"
        );
    }

    #[test]
    fn every_server_tried_is_listed_with_the_retries() {
        let tried: Vec<Endpoint> = ["127.0.0.1:1", "127.0.0.1:8078"]
            .iter()
            .map(|a| addr(a).into())
            .collect();
        let r = Record {
            tried: &tried,
            retries: 1,
            ..record()
        };
        assert!(
            text(&r).ends_with(" stall_down=0.250 tried=127.0.0.1:1,127.0.0.1:8078 retries=1\n"),
            "{}",
            text(&r)
        );
        assert!(
            json(&r).ends_with(",\"tried\":[\"127.0.0.1:1\",\"127.0.0.1:8078\"],\"retries\":1}\n"),
            "{}",
            json(&r)
        );
        let none = Record {
            upstream: None,
            ..record()
        };
        assert!(json(&none).contains(",\"tried\":[],\"retries\":0"));
        assert!(!text(&none).contains("tried="));
        // The only server tried did not connect: named all the same.
        let failed = Record {
            upstream: None,
            tried: &tried[..1],
            ..record()
        };
        assert!(
            text(&failed).ends_with(" tried=127.0.0.1:1 retries=0\n"),
            "{}",
            text(&failed)
        );
        assert!(json(&failed).contains(",\"tried\":[\"127.0.0.1:1\"],\"retries\":0"));
    }

    #[test]
    fn json_nulls_and_escapes() {
        let r = Record {
            upstream: None,
            connect_time: None,
            route: "q\"b\\n\n\t\u{1}\u{2028}é",
            ..record()
        };
        let line = json(&r);
        assert!(
            line.contains(r#""route":"q\"b\\n\n\t\u0001\u2028é","#),
            "{line}"
        );
        assert!(line.contains(r#""upstream":null,"#));
        assert!(line.contains(r#""connect":null,"#));
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with("}\n"));
    }

    fn civil(secs: i64) -> String {
        let t = Civil::from_unix(secs);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        )
    }

    #[test]
    fn known_dates() {
        assert_eq!(civil(0), "1970-01-01T00:00:00");
        assert_eq!(civil(86_399), "1970-01-01T23:59:59");
        assert_eq!(civil(951_782_400), "2000-02-29T00:00:00"); // leap day, century leap year
        assert_eq!(civil(1_709_164_799), "2024-02-28T23:59:59");
        assert_eq!(civil(1_709_164_800), "2024-02-29T00:00:00"); // leap day
        assert_eq!(civil(1_709_251_200), "2024-03-01T00:00:00");
        assert_eq!(civil(4_107_456_000), "2100-02-28T00:00:00");
        assert_eq!(civil(4_107_542_400), "2100-03-01T00:00:00"); // 2100 is not a leap year
        assert_eq!(civil(NOV_26_2026 as i64), "2026-11-26T08:30:00");
        assert_eq!(civil(1_798_761_599), "2026-12-31T23:59:59");
        assert_eq!(civil(-1), "1969-12-31T23:59:59");
        assert_eq!(civil(253_402_300_799), "9999-12-31T23:59:59");
    }

    #[test]
    fn extreme_times_do_not_panic() {
        for secs in [i64::MIN, i64::MIN + 1, -86_401, i64::MAX - 1, i64::MAX] {
            let t = Civil::from_unix(secs);
            assert!((1..=12).contains(&t.month) && (1..=31).contains(&t.day));
        }
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(unix_time(before), (-2, 500));
        let r = Record {
            end: before,
            ..record()
        };
        assert!(json(&r).starts_with("{\"time\":\"1969-12-31T23:59:58.500Z\""));
        let far = Record {
            duration: Duration::MAX,
            connect_time: Some(Duration::MAX),
            ..record()
        };
        assert!(text(&far).contains("duration=18446744073709551615.999"));
    }
}
