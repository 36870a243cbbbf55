//! The access log: one line per finished connection, in text (nginx stream style) or JSON.
//!
//! The loop calls [`AccessLog::write`] when a pair ends; the line is formatted into an
//! in-memory buffer, and whole chunks of lines are handed to a writer thread ([`writer`])
//! through a bounded queue by [`AccessLog::flush`] (the loop calls it every second and at
//! exit) or as soon as the buffer passes [`FLUSH_AT`] bytes. So the loop never waits on the
//! disk or on a pipe whose reader stopped: when the queue is full the lines are dropped,
//! counted ([`AccessLog::dropped`]) and reported once per burst. [`AccessLog::reopen`]
//! supports log rotation (`SIGUSR1`).
//!
//! Invariants: nothing here panics or blocks, whatever the record or the state of the file;
//! lines are whole and in order; memory stays bounded (the buffer, plus the queue's chunks).

mod format;
mod writer;

pub use format::{format_json, format_text};

use crate::endpoint::{Client, Endpoint};
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use writer::Sink;

use crate::error::CloseReason;
use crate::settings::LogFormat;

/// Buffered bytes past which [`AccessLog::write`] writes the buffer out at once.
pub const FLUSH_AT: usize = 64 * 1024;

/// What is known about a connection when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the connection ended.
    pub end: SystemTime,
    /// The route's name.
    pub route: &'a str,
    /// The client's address (from the PROXY header when one was accepted).
    pub client: Client,
    /// The immediate peer, when a PROXY header named another client.
    pub peer: Option<Client>,
    /// The PROXY header's AUTHORITY TLV.
    pub authority: Option<&'a str>,
    /// The PROXY header's UNIQUE_ID TLV.
    pub unique_id: Option<&'a [u8]>,
    /// The server name of the client's TLS ClientHello (routes with `sni`).
    pub sni: Option<&'a str>,
    /// The ALPN protocols of the ClientHello, joined with `,`.
    pub alpn: Option<&'a str>,
    /// The server the client was connected to, if any.
    pub upstream: Option<&'a Endpoint>,
    /// With retries, every server tried, oldest first (the last is `upstream`); without,
    /// the one server tried when it did not connect (`upstream` is then `None`), else empty.
    pub tried: &'a [Endpoint],
    /// Servers tried after the first.
    pub retries: u32,
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
    pub fn refused(route: &'a str, client: Client, ended: CloseReason) -> Record<'a> {
        Record {
            end: SystemTime::now(),
            route,
            client,
            peer: None,
            authority: None,
            unique_id: None,
            sni: None,
            alpn: None,
            upstream: None,
            tried: &[],
            retries: 0,
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

/// The access log of one loop: a line buffer in front of the shared writer thread.
pub struct AccessLog {
    sink: Arc<Sink>,
    format: LogFormat,
    /// Formatted lines not handed over yet.
    buf: String,
    /// Lines dropped because the writer could not keep up, since the log was opened.
    dropped: u64,
    /// Dropped lines not reported yet (a burst in progress).
    burst: u64,
}

impl AccessLog {
    /// Opens the log: `-` is standard output, anything else a file path, created if missing
    /// and appended to. Loops logging to the same target share its writer.
    pub fn open(target: &str, format: LogFormat) -> io::Result<AccessLog> {
        Ok(AccessLog {
            sink: Sink::for_target(target)?,
            format,
            buf: String::with_capacity(FLUSH_AT + 1024),
            dropped: 0,
            burst: 0,
        })
    }

    /// Checks, without creating or changing anything, that [`AccessLog::open`] could open
    /// `target`: an existing file must open for appending, a missing one needs a directory
    /// this process may write to (for `--check`).
    pub fn check(target: &str) -> io::Result<()> {
        if target == "-" {
            return Ok(());
        }
        let path = std::path::Path::new(target);
        match std::fs::OpenOptions::new().append(true).open(path) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = match path.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir,
                    _ => std::path::Path::new("."),
                };
                rustix::fs::access(
                    dir,
                    rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
                )
                .map_err(io::Error::from)
            }
            Err(e) => Err(e),
        }
    }

    /// The line format.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Formats `record` into the buffer; hands the buffer over once it passes [`FLUSH_AT`]
    /// bytes.
    pub fn write(&mut self, record: &Record) {
        match self.format {
            LogFormat::Text => format_text(record, &mut self.buf),
            LogFormat::Json => format_json(record, &mut self.buf),
        }
        if self.buf.len() > FLUSH_AT {
            self.flush();
        }
    }

    /// Hands everything buffered to the writer, without waiting; when its queue is full the
    /// lines are dropped and counted. The first drop of a burst is logged, and the end of
    /// the burst with its count.
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let lines = std::mem::replace(&mut self.buf, String::with_capacity(FLUSH_AT + 1024));
        let count = lines.bytes().filter(|&b| b == b'\n').count() as u64;
        if self.sink.send(lines.into_bytes()) {
            if self.burst > 0 {
                log::info!(
                    "access log writing again; {} line(s) were dropped while it was blocked",
                    self.burst
                );
                self.burst = 0;
            }
        } else {
            if self.burst == 0 {
                log::warn!(
                    "access log blocked (its file or reader does not keep up): dropping lines"
                );
            }
            self.burst += count;
            self.dropped += count;
        }
    }

    /// For log rotation: hands over what is buffered (it belongs to the old file, if it was
    /// renamed), then has the writer open the same path again.
    pub fn reopen(&mut self) {
        self.flush();
        let _ = self.sink.reopen();
    }

    /// Lines dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Write errors the writer has seen (shared by the loops logging to the same place).
    pub fn errors(&self) -> u64 {
        self.sink.errors()
    }

    /// Hands everything over and waits up to `within` until it is written (at exit).
    pub fn finish(&mut self, within: Duration) -> bool {
        self.flush();
        self.sink.sync(within)
    }
}

impl Drop for AccessLog {
    /// Hands over what is buffered (the writer finishes it after the loop is gone).
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::format::tests::{json, record, text};
    use super::*;
    use std::path::PathBuf;

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

    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn buffers_until_flush_and_appends() {
        let tmp = TempPath::new("append");
        std::fs::write(&tmp.0, "earlier\n").expect("seed file");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        log.write(&record());
        assert!(log.sink.sync(WAIT));
        assert_eq!(tmp.read(), "earlier\n", "buffered until flushed");
        assert!(log.finish(WAIT));
        assert_eq!(tmp.read(), format!("earlier\n{}", text(&record())));
        assert!(log.finish(WAIT), "an empty flush");
    }

    #[test]
    fn json_format_writes_json() {
        let tmp = TempPath::new("json");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Json).expect("open");
        assert_eq!(log.format(), LogFormat::Json);
        log.write(&record());
        log.write(&record());
        assert!(log.finish(WAIT));
        assert_eq!(tmp.read(), json(&record()).repeat(2));
    }

    #[test]
    fn hands_over_by_itself_past_the_threshold() {
        let tmp = TempPath::new("threshold");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        let line = text(&record());
        let n = FLUSH_AT / line.len() + 2;
        for _ in 0..n {
            log.write(&record());
        }
        assert!(log.sink.sync(WAIT));
        let on_disk = tmp.read();
        assert!(on_disk.len() > FLUSH_AT, "{} bytes on disk", on_disk.len());
        assert!(on_disk.ends_with('\n'));
        assert!(log.finish(WAIT));
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
        assert!(log.finish(WAIT));
        std::fs::rename(&tmp.0, &rotated.0).expect("rename");
        log.write(&second); // buffered: belongs to the old file
        log.reopen();
        log.write(&third);
        assert!(log.finish(WAIT));
        assert_eq!(rotated.read(), text(&first) + &text(&second));
        assert_eq!(tmp.read(), text(&third));
    }

    #[test]
    fn loops_logging_to_one_file_share_its_writer_and_keep_lines_whole() {
        let tmp = TempPath::new("shared");
        let mut a = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        let mut b = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        assert!(Arc::ptr_eq(&a.sink, &b.sink));
        for _ in 0..1000 {
            a.write(&record());
            b.write(&record());
        }
        assert!(a.finish(WAIT) && b.finish(WAIT));
        let written = tmp.read();
        assert_eq!(written.lines().count(), 2000);
        assert!(written.lines().all(|l| l == text(&record()).trim_end()));
    }

    #[test]
    fn drop_hands_over() {
        let tmp = TempPath::new("drop");
        let mut log = AccessLog::open(tmp.str(), LogFormat::Text).expect("open");
        let sink = Arc::clone(&log.sink);
        log.write(&record());
        drop(log);
        assert!(sink.sync(WAIT));
        assert_eq!(tmp.read(), text(&record()));
    }

    #[test]
    fn check_opens_nothing_and_tells_what_open_would() {
        let tmp = TempPath::new("check");
        assert!(!std::path::Path::new(tmp.str()).exists());
        AccessLog::check(tmp.str()).expect("a missing file in a writable directory");
        assert!(
            !std::path::Path::new(tmp.str()).exists(),
            "check created it"
        );
        assert!(AccessLog::check("-").is_ok());
        assert!(AccessLog::check("/nonexistent-dir/access.log").is_err());
        assert!(AccessLog::check("/tmp").is_err(), "a directory");
    }

    #[test]
    fn open_fails_for_a_bad_path() {
        let tmp = TempPath::new("no-such-dir");
        let path = tmp.0.join("x.log");
        let path = path.to_str().expect("utf-8 temp path");
        assert!(AccessLog::open(path, LogFormat::Text).is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_counted_and_never_blocks_the_loop() {
        if !std::path::Path::new("/dev/full").exists() {
            return;
        }
        let mut log = AccessLog::open("/dev/full", LogFormat::Text).expect("open /dev/full");
        let started = std::time::Instant::now();
        // The writer retries its first chunk every second; the queue fills, then lines drop.
        for _ in 0..(writer::QUEUE_CHUNKS + 4) * (FLUSH_AT / 100) {
            log.write(&record());
        }
        log.flush();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "writing never waited"
        );
        assert!(
            log.dropped() > 0,
            "lines beyond the queue are dropped and counted"
        );
        let counted = wait(|| log.errors() > 0);
        assert!(counted, "the write error is counted");
    }

    fn wait(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}
