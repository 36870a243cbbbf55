//! The thread that writes access-log lines to their file or to standard output, so that a
//! slow disk or a reader that stops reading a pipe never blocks an event loop.
//!
//! Loops hand over whole lines in chunks through a bounded queue ([`QUEUE_CHUNKS`] chunks of
//! at most about [`super::FLUSH_AT`] bytes each); when it is full the chunk is dropped and the
//! loop counts it. One writer serves every loop that logs to the same place, so lines are
//! never interleaved mid-line and keep their order per loop. An `ENOSPC` or `EIO` on a file
//! is counted and the chunk retried every second (meanwhile the queue fills and later lines
//! are dropped); any other error drops the chunk. Nothing here panics.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::Duration;

/// Chunks the queue holds: with 64 KiB chunks, at most about 1 MiB waits.
pub const QUEUE_CHUNKS: usize = 16;

/// How long a full disk is left alone before the chunk is tried again.
const RETRY: Duration = Duration::from_secs(1);

enum Msg {
    /// Whole lines to append.
    Lines(Vec<u8>),
    /// Open the path again (log rotation).
    Reopen,
    /// Answer once everything queued before is written.
    Sync(mpsc::Sender<()>),
}

/// Where lines go.
enum Target {
    Stdout,
    File { path: PathBuf, file: File },
}

impl Target {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Target::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Target::File { file, .. } => file.write_all(bytes),
        }
    }
}

/// A writer thread and its queue, shared by the loops logging to one place.
pub(super) struct Sink {
    key: String,
    queue: SyncSender<Msg>,
    /// Write errors seen by the thread (a full disk, an I/O error, a closed pipe).
    errors: Arc<AtomicU64>,
}

/// The sinks alive, by target, so that loops logging to the same place share one.
static SINKS: Mutex<Vec<Weak<Sink>>> = Mutex::new(Vec::new());

impl Sink {
    /// The sink for `target` (`-` is standard output), started if none is running. A file
    /// that cannot be opened is an error here, before anything is queued.
    pub(super) fn for_target(target: &str) -> io::Result<Arc<Sink>> {
        let mut sinks = SINKS.lock().unwrap_or_else(|e| e.into_inner());
        sinks.retain(|s| s.strong_count() > 0);
        if let Some(sink) = sinks
            .iter()
            .filter_map(Weak::upgrade)
            .find(|s| s.key == target)
        {
            return Ok(sink);
        }
        let target_kind = if target == "-" {
            Target::Stdout
        } else {
            let path = PathBuf::from(target);
            let file = open_append(&path)?;
            Target::File { path, file }
        };
        let (queue, rx) = mpsc::sync_channel(QUEUE_CHUNKS);
        let errors = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&errors);
        thread::Builder::new()
            .name("access-log".into())
            .spawn(move || run(rx, target_kind, &counted))?;
        let sink = Arc::new(Sink {
            key: target.to_string(),
            queue,
            errors,
        });
        sinks.push(Arc::downgrade(&sink));
        Ok(sink)
    }

    /// Queues whole lines; false (and the lines dropped) when the queue is full.
    pub(super) fn send(&self, lines: Vec<u8>) -> bool {
        match self.queue.try_send(Msg::Lines(lines)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Asks the writer to open the file again (after the lines already queued).
    pub(super) fn reopen(&self) -> bool {
        self.queue.try_send(Msg::Reopen).is_ok()
    }

    /// Waits up to `within` until everything queued so far is written.
    pub(super) fn sync(&self, within: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.queue.send(Msg::Sync(tx)).is_ok() && rx.recv_timeout(within).is_ok()
    }

    /// Write errors the thread has seen.
    pub(super) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// The writer thread: writes what comes, in order, until every sender is gone.
fn run(rx: Receiver<Msg>, mut target: Target, errors: &AtomicU64) {
    for msg in rx {
        match msg {
            Msg::Lines(bytes) => write_retrying(&mut target, &bytes, errors),
            Msg::Reopen => {
                if let Target::File { path, file } = &mut target {
                    match open_append(path) {
                        Ok(reopened) => *file = reopened,
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            log::warn!("cannot reopen the access log {}: {e}", path.display());
                        }
                    }
                }
            }
            Msg::Sync(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Writes `bytes`; a full disk or an I/O error is retried every [`RETRY`], anything else
/// drops them.
fn write_retrying(target: &mut Target, bytes: &[u8], errors: &AtomicU64) {
    let mut reported = false;
    loop {
        match target.write_all(bytes) {
            Ok(()) => return,
            Err(e) => {
                errors.fetch_add(1, Ordering::Relaxed);
                let retry = matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EIO));
                if !reported {
                    let what = if retry {
                        "retrying every second"
                    } else {
                        "lines dropped"
                    };
                    log::warn!("cannot write the access log: {e}; {what}");
                    reported = true;
                }
                if !retry {
                    return;
                }
                thread::sleep(RETRY);
            }
        }
    }
}

/// Opens `path` for appending, creating it if missing.
fn open_append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}
