//! The process log's way to stderr: a bounded queue to a writer thread, so that a log line
//! from an event loop never blocks it when stderr is a pipe (journald, `logger`) whose
//! reader stopped.
//!
//! [`start`] gives the `Write` that `env_logger` writes each formatted record to; the record
//! is queued (at most [`QUEUE_LINES`] wait) or, when the queue is full, dropped and counted
//! ([`dropped`]). The thread writes lines in order and, when it can write again after drops,
//! a line saying how many were lost. [`drain`] waits for the queue at exit.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::Duration;

/// Records that may wait for stderr.
pub const QUEUE_LINES: usize = 4096;

enum Msg {
    Line(Vec<u8>),
    Sync(mpsc::Sender<()>),
}

static QUEUE: OnceLock<SyncSender<Msg>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Log lines dropped because stderr did not keep up.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Queues everything written to it for the stderr writer thread.
#[derive(Debug, Clone)]
pub struct QueueWriter {
    tx: SyncSender<Msg>,
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.tx.try_send(Msg::Line(buf.to_vec())).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Starts the writer thread (once per process) and returns a writer that feeds it; `None`
/// if the thread cannot be started (then log straight to stderr).
pub fn start() -> Option<QueueWriter> {
    if let Some(tx) = QUEUE.get() {
        return Some(QueueWriter { tx: tx.clone() });
    }
    let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
    thread::Builder::new()
        .name("log".into())
        .spawn(move || run(rx))
        .ok()?;
    let tx = QUEUE.get_or_init(|| tx).clone();
    Some(QueueWriter { tx })
}

/// Waits up to `within` for the lines queued so far to be written (call before exiting).
pub fn drain(within: Duration) -> bool {
    let Some(tx) = QUEUE.get() else {
        return true;
    };
    let (done, wait) = mpsc::channel();
    tx.send(Msg::Sync(done)).is_ok() && wait.recv_timeout(within).is_ok()
}

fn run(rx: Receiver<Msg>) {
    let mut reported = 0;
    for msg in rx {
        match msg {
            Msg::Line(line) => {
                let mut err = io::stderr().lock();
                let lost = dropped();
                if lost > reported {
                    let _ = writeln!(
                        err,
                        "ringproxy: {} log line(s) dropped while stderr was blocked",
                        lost - reported
                    );
                    reported = lost;
                }
                let _ = err.write_all(&line);
            }
            Msg::Sync(done) => {
                let _ = done.send(());
            }
        }
    }
}
