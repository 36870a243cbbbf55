//! The access log: one line per finished connection, in text (nginx stream style) or JSON.
//!
//! The loop calls [`AccessLog::write`] when a pair ends; the line is formatted into an
//! in-memory buffer, so the data path never waits on the disk. The buffer is written out by
//! [`AccessLog::flush`] (the loop calls it every second and at exit) or as soon as it passes
//! [`FLUSH_AT`] bytes. [`AccessLog::reopen`] supports log rotation (`SIGUSR1`).
//!
//! Invariants:
//! - Nothing here panics, whatever the record or the state of the file. Write errors are
//!   remembered and reported by the next [`AccessLog::flush`]; the lines that could not be
//!   written are dropped, so memory stays bounded (at most [`MAX_PENDING`] bytes wait when the
//!   target would block).
//! - Every line ends in `\n`, and a line is never split by a later one: if only part of a line
//!   could be written before an error, a newline is written first when writing resumes.
//! - Formatting writes into a caller's `String`: after the buffer has grown to its working
//!   size, a line costs no allocation.
//! - Times are UTC, computed by hand from the UNIX timestamp (no time-zone database).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::CloseReason;
use crate::settings::LogFormat;

/// Buffered bytes past which [`AccessLog::write`] writes the buffer out at once.
pub const FLUSH_AT: usize = 64 * 1024;

/// Most bytes kept waiting when the target would block; past this, waiting lines are dropped
/// and an error is reported.
pub const MAX_PENDING: usize = 16 * FLUSH_AT;

/// What is known about a connection when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the connection ended.
    pub end: SystemTime,
    /// The route's name.
    pub route: &'a str,
    /// The client's address (from the PROXY header when one was accepted).
    pub client: SocketAddr,
    /// The immediate peer, when a PROXY header named another client.
    pub peer: Option<SocketAddr>,
    /// The PROXY header's AUTHORITY TLV.
    pub authority: Option<&'a str>,
    /// The PROXY header's UNIQUE_ID TLV.
    pub unique_id: Option<&'a [u8]>,
    /// The server the client was connected to, if any.
    pub upstream: Option<SocketAddr>,
    /// Bytes delivered from the client to the upstream.
    pub bytes_to_upstream: u64,
    /// Bytes delivered from the upstream to the client.
    pub bytes_to_client: u64,
    /// From accept to upstream connected; `None` if it never connected.
    pub connect_time: Option<Duration>,
    /// From accept to close.
    pub duration: Duration,
    /// Why the connection ended.
    pub ended: CloseReason,
    /// Highest fill of the client → upstream ring seen, in bytes.
    pub peak_to_upstream: usize,
    /// Highest fill of the upstream → client ring seen, in bytes.
    pub peak_to_client: usize,
    /// Time the client → upstream ring was full (backpressure on the client).
    pub stalled_to_upstream: Duration,
    /// Time the upstream → client ring was full (backpressure on the upstream).
    pub stalled_to_client: Duration,
}

impl<'a> Record<'a> {
    /// A client refused right after accept (nothing moved, no upstream), ending now.
    pub fn refused(route: &'a str, client: SocketAddr, ended: CloseReason) -> Record<'a> {
        Record {
            end: SystemTime::now(),
            route,
            client,
            peer: None,
            authority: None,
            unique_id: None,
            upstream: None,
            bytes_to_upstream: 0,
            bytes_to_client: 0,
            connect_time: None,
            duration: Duration::ZERO,
            ended,
            peak_to_upstream: 0,
            peak_to_client: 0,
            stalled_to_upstream: Duration::ZERO,
            stalled_to_client: Duration::ZERO,
        }
    }
}

/// Where lines go.
#[derive(Debug)]
enum Target {
    /// The process's standard output (`-`).
    Stdout,
    /// A file opened for appending, and the path to reopen.
    File { path: PathBuf, file: File },
}

/// A buffered access log writing to stdout or appending to a file.
#[derive(Debug)]
pub struct AccessLog {
    target: Target,
    format: LogFormat,
    /// Formatted lines; `buf[sent..]` is still to be written.
    buf: String,
    /// Bytes at the start of `buf` already written.
    sent: usize,
    /// The first write error since the last [`AccessLog::flush`] reported one.
    error: Option<io::Error>,
}

impl AccessLog {
    /// Opens the log: `-` is standard output, anything else a file path, created if missing
    /// and appended to.
    pub fn open(target: &str, format: LogFormat) -> io::Result<AccessLog> {
        let target = if target == "-" {
            Target::Stdout
        } else {
            let path = PathBuf::from(target);
            let file = open_append(&path)?;
            Target::File { path, file }
        };
        Ok(AccessLog {
            target,
            format,
            buf: String::with_capacity(FLUSH_AT + 1024),
            sent: 0,
            error: None,
        })
    }

    /// The line format.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Formats `record` into the buffer; writes the buffer out once it passes [`FLUSH_AT`]
    /// bytes. A write error is remembered for the next [`AccessLog::flush`].
    pub fn write(&mut self, record: &Record) {
        match self.format {
            LogFormat::Text => format_text(record, &mut self.buf),
            LogFormat::Json => format_json(record, &mut self.buf),
        }
        if self.buf.len() - self.sent > FLUSH_AT
            && let Err(e) = self.write_out()
        {
            self.remember(e);
        }
    }

    /// Writes out everything buffered. Returns the error remembered since the last call, if
    /// any, else this write's error. Lines that failed to be written are dropped; a target
    /// that would block keeps them (up to [`MAX_PENDING`] bytes) for the next call.
    pub fn flush(&mut self) -> io::Result<()> {
        let now = self.write_out();
        match self.error.take() {
            Some(e) => Err(e),
            None => now,
        }
    }

    /// For log rotation: flushes (to the old file, if it was renamed), then opens the same
    /// path again, creating it. On stdout only flushes. If the path cannot be opened the old
    /// file stays in use and the error is returned; otherwise the flush's result is.
    pub fn reopen(&mut self) -> io::Result<()> {
        let flushed = self.flush();
        if let Target::File { path, file } = &mut self.target {
            *file = open_append(path)?;
        }
        flushed
    }

    /// Keeps the first error until [`AccessLog::flush`] reports it.
    fn remember(&mut self, e: io::Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Writes `buf[sent..]` to the target.
    fn write_out(&mut self) -> io::Result<()> {
        let result = loop {
            let pending = &self.buf.as_bytes()[self.sent..];
            if pending.is_empty() {
                break Ok(());
            }
            let (written, flushed) = match &mut self.target {
                Target::Stdout => {
                    // Lines end in `\n`, so std's line buffer passes them straight through
                    // and the flush is a formality; bytes it accepted count as written.
                    let mut out = io::stdout().lock();
                    let written = out.write(pending);
                    let flushed = if written.is_ok() { out.flush() } else { Ok(()) };
                    (written, flushed)
                }
                Target::File { file, .. } => (file.write(pending), Ok(())),
            };
            match written {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => self.sent += n.min(pending.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
            match flushed {
                Err(e) if e.kind() != io::ErrorKind::Interrupted => break Err(e),
                _ => {}
            }
        };
        match result {
            Ok(()) => {
                self.buf.clear();
                self.sent = 0;
                Ok(())
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    && self.buf.len() - self.sent <= MAX_PENDING =>
            {
                // Keep the rest for the next flush; drop what was written.
                if self.sent > 0 {
                    self.compact();
                }
                Ok(())
            }
            Err(e) => {
                self.drop_pending();
                if e.kind() == io::ErrorKind::WouldBlock {
                    Err(io::Error::other(format!(
                        "access log blocked with over {MAX_PENDING} bytes waiting; lines dropped"
                    )))
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Drops written bytes from the front of the buffer. When the written part ends inside a
    /// multi-byte character the buffer is left as is (`sent` keeps the place), since a
    /// `String` cannot be cut there; the next complete write clears it anyway.
    fn compact(&mut self) {
        if self.buf.is_char_boundary(self.sent) {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Drops everything not yet written, keeping lines whole in the output.
    fn drop_pending(&mut self) {
        let mid_line = self.sent > 0 && self.buf.as_bytes().get(self.sent - 1) != Some(&b'\n');
        self.buf.clear();
        self.sent = 0;
        if mid_line {
            self.buf.push('\n');
        }
    }
}

impl Drop for AccessLog {
    /// Writes out what is buffered; errors are ignored (there is no one left to tell).
    fn drop(&mut self) {
        let _ = self.write_out();
    }
}

/// Opens `path` for appending, creating it if missing.
fn open_append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

/// Appends one text line (with its `\n`) for `record` to `out`:
///
/// `CLIENT [DD/Mon/YYYY:HH:MM:SS +0000] TCP ROUTE UPSTREAM up=N down=N connect=S duration=S
/// ended=REASON peak_up=N peak_down=N stall_up=S stall_down=S[ peer=ADDR][ authority=S][
/// unique_id=S]`
///
/// Seconds have three decimals (truncated to the millisecond); an absent upstream or connect
/// time is `-`; the last three fields appear only when a PROXY header gave them. In the route
/// name, the authority and the unique id, spaces, control characters, `"` and `\` (and in the
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
        Some(addr) => {
            let _ = write!(out, "{addr}");
        }
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
    out.push('\n');
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

/// Appends one JSON object (with its `\n`) for `record` to `out`, keys in this order:
/// `time` (RFC 3339 UTC with milliseconds), `route`, `client`, `upstream` (null if none),
/// `bytes_to_upstream`, `bytes_to_client`, `connect_time` (seconds, null if none),
/// `duration`, `ended`, `peak_to_upstream`, `peak_to_client`, `stalled_to_upstream`,
/// `stalled_to_client` (seconds), then `peer`, `authority`, `unique_id` only when a PROXY
/// header gave them (the unique id as a string, bytes that are not UTF-8 replaced). Seconds
/// are numbers with three decimals.
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
        Some(addr) => {
            let _ = write!(out, "\"{addr}\"");
        }
        None => out.push_str("null"),
    }
    let _ = write!(
        out,
        ",\"bytes_to_upstream\":{},\"bytes_to_client\":{},\"connect_time\":",
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
        ",\"ended\":\"{}\",\"peak_to_upstream\":{},\"peak_to_client\":{},\"stalled_to_upstream\":",
        record.ended.as_str(),
        record.peak_to_upstream,
        record.peak_to_client
    );
    push_secs(out, record.stalled_to_upstream);
    out.push_str(",\"stalled_to_client\":");
    push_secs(out, record.stalled_to_client);
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
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    /// 2026-11-26T08:30:00Z
    const NOV_26_2026: u64 = 1_795_681_800;

    fn record() -> Record<'static> {
        Record {
            end: at(NOV_26_2026, 789),
            route: "web",
            client: "127.0.0.1:51234".parse().expect("test address"),
            peer: None,
            authority: None,
            unique_id: None,
            upstream: Some("127.0.0.1:8078".parse().expect("test address")),
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

    fn text(r: &Record) -> String {
        let mut s = String::new();
        format_text(r, &mut s);
        s
    }

    fn json(r: &Record) -> String {
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
            peer: Some("10.0.0.9:4000".parse().expect("test address")),
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
    fn text_line_without_upstream_and_odd_route() {
        let r = Record {
            upstream: None,
            connect_time: None,
            ended: CloseReason::ConnectFailed,
            route: "a b\"c\\d\né",
            client: "[::1]:7".parse().expect("test address"),
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
             \"bytes_to_upstream\":1234,\"bytes_to_client\":5678,\"connect_time\":0.001,\
             \"duration\":1.234,\"ended\":\"client-closed\",\"peak_to_upstream\":16384,\
             \"peak_to_client\":512,\"stalled_to_upstream\":0.000,\"stalled_to_client\":0.250}\n"
        );
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
        assert!(line.contains(r#""connect_time":null,"#));
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

    /// A fresh path in the temp directory, removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> TempPath {
            let path = std::env::temp_dir().join(format!(
                "ringproxy-access-log-{}-{name}.log",
                std::process::id()
            ));
            let _ = std::fs::remove_file(&path);
            TempPath(path)
        }

        fn str(&self) -> &str {
            self.0.to_str().expect("utf-8 temp path")
        }

        fn read(&self) -> String {
            std::fs::read_to_string(&self.0).unwrap_or_default()
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn buffers_until_flush_and_appends() {
        let tmp = TempPath::new("append");
        std::fs::write(&tmp.0, "earlier\n").expect("seed file");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        log.write(&record());
        assert_eq!(tmp.read(), "earlier\n", "written before flush");
        log.flush().expect("flush");
        assert_eq!(tmp.read(), format!("earlier\n{}", text(&record())));
        log.flush().expect("empty flush");
    }

    #[test]
    fn json_format_writes_json() {
        let tmp = TempPath::new("json");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Json).expect("open");
        assert_eq!(log.format(), LogFormat::Json);
        log.write(&record());
        log.write(&record());
        log.flush().expect("flush");
        assert_eq!(tmp.read(), json(&record()).repeat(2));
    }

    #[test]
    fn flushes_by_itself_past_the_threshold() {
        let tmp = TempPath::new("threshold");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        let line = text(&record());
        let n = FLUSH_AT / line.len() + 2;
        for _ in 0..n {
            log.write(&record());
        }
        let on_disk = tmp.read();
        assert!(on_disk.len() > FLUSH_AT, "{} bytes on disk", on_disk.len());
        assert!(on_disk.ends_with('\n'));
        log.flush().expect("flush");
        assert_eq!(tmp.read(), line.repeat(n));
    }

    #[test]
    fn reopen_after_rename_writes_a_new_file() {
        let tmp = TempPath::new("rotate");
        let rotated = TempPath::new("rotate.1");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        let first = record();
        let second = Record {
            route: "second",
            ..record()
        };
        let third = Record {
            route: "third",
            ..record()
        };
        log.write(&first);
        log.flush().expect("flush");
        std::fs::rename(&tmp.0, &rotated.0).expect("rename");
        log.write(&second); // buffered: belongs to the old file
        log.reopen().expect("reopen");
        log.write(&third);
        log.flush().expect("flush");
        assert_eq!(rotated.read(), text(&first) + &text(&second));
        assert_eq!(tmp.read(), text(&third));
    }

    #[test]
    fn drop_flushes() {
        let tmp = TempPath::new("drop");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        log.write(&record());
        drop(log);
        assert_eq!(tmp.read(), text(&record()));
    }

    #[test]
    fn open_fails_for_a_bad_path() {
        let tmp = TempPath::new("no-such-dir");
        let path = tmp.0.join("x.log");
        let path = path.to_str().expect("utf-8 temp path");
        assert!(AccessLog::open(path, LogFormat::Text).is_err());
    }

    #[test]
    fn stdout_target_reopens_as_a_no_op() {
        let mut log = AccessLog::open("-", LogFormat::Text).expect("stdout");
        log.flush().expect("nothing to write");
        log.reopen().expect("no-op");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn write_errors_are_remembered_not_panicked_on() {
        if !std::path::Path::new("/dev/full").exists() {
            return;
        }
        let mut log = AccessLog::open("/dev/full", LogFormat::Text).expect("open /dev/full");
        // Past the threshold, write() flushes, fails, and remembers.
        for _ in 0..FLUSH_AT / 100 + 10 {
            log.write(&record());
        }
        assert!(log.buf.len() < FLUSH_AT, "failed lines are dropped");
        assert!(log.flush().is_err(), "the remembered error is reported");
        // Reported once; nothing new is waiting.
        log.flush().expect("nothing to write");
        log.write(&record());
        assert!(log.flush().is_err());
        assert!(log.reopen().is_ok());
    }

    #[test]
    fn a_partly_written_line_is_ended_before_the_next() {
        let tmp = TempPath::new("partial");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        log.buf.push_str("abc\ndef");
        log.sent = 5; // "abc\nd" went out, then the write failed
        log.drop_pending();
        log.write(&record());
        log.flush().expect("flush");
        assert_eq!(tmp.read(), format!("\n{}", text(&record())));
    }

    #[test]
    fn compacting_keeps_the_unsent_rest() {
        let tmp = TempPath::new("compact");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        log.buf.push_str("abc\ndef\n");
        log.sent = 4;
        log.compact();
        assert_eq!(log.buf, "def\n");
        log.buf = "aé\nxy\n".to_owned();
        log.sent = 2; // inside 'é': left for the next write
        log.compact();
        assert_eq!((log.buf.as_str(), log.sent), ("aé\nxy\n", 2));
        log.flush().expect("flush");
        assert_eq!(
            std::fs::read(&tmp.0).expect("read"),
            &"aé\nxy\n".as_bytes()[2..]
        );
        assert_eq!((log.buf.as_str(), log.sent), ("", 0));
    }
}
