//! Edge-triggered pumps between a socket and a [`Ring`].
//!
//! [`fill_from`] reads until the ring is full or the reader would block; [`drain_into`]
//! writes until the ring is empty or the writer would block. Both retry `Interrupted`, never
//! read into an empty slice (so `Ok(0)` always means end of stream) and report how they
//! stopped as a [`Stop`], never as an error, so callers decide with one `match`.

use crate::ring::Ring;
use crate::stats::IoStats;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};

/// Why a pump stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The socket has no more to give or take now; wait for its next readiness event.
    WouldBlock,
    /// A short read or write: the socket's receive queue was emptied (or its send buffer
    /// filled) by this call. Edge-triggered epoll reports any later change as a new event, so
    /// the caller may wait as for `WouldBlock` and save the syscall that would return it —
    /// except that a FIN already queued is only announced by the event's read-closed hint.
    Drained,
    /// The reader reached end of stream (the peer sent FIN).
    Eof,
    /// The ring has no free space (reading) — backpressure.
    Full,
    /// The read allowance is spent (a bandwidth limit); the source may have more.
    Limit,
    /// The ring has no data left (writing).
    Empty,
    /// The peer reset the connection or the pipe broke.
    Reset,
    /// Any other I/O error.
    Failed(io::ErrorKind),
}

/// How many bytes a pump moved and why it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes moved by this call.
    pub moved: usize,
    /// Why the pump stopped.
    pub stop: Stop,
}

/// Classifies an I/O error that is not `WouldBlock` or `Interrupted`.
pub fn classify(err: &io::Error) -> Stop {
    match err.kind() {
        io::ErrorKind::WouldBlock => Stop::WouldBlock,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::NotConnected => Stop::Reset,
        kind => Stop::Failed(kind),
    }
}

/// Reads from `reader` into the ring's free space until the ring is full, the reader would
/// block, reaches end of stream or fails. Every call is counted in `stats`.
pub fn fill_from<R: Read>(ring: &mut Ring, reader: R, stats: &mut IoStats) -> Progress {
    fill_at_most(ring, reader, stats, usize::MAX)
}

/// [`fill_from`], reading at most `limit` bytes (then [`Stop::Limit`]).
pub fn fill_at_most<R: Read>(
    ring: &mut Ring,
    mut reader: R,
    stats: &mut IoStats,
    limit: usize,
) -> Progress {
    let mut moved = 0;
    loop {
        if ring.is_full() {
            return Progress {
                moved,
                stop: Stop::Full,
            };
        }
        if moved >= limit {
            return Progress {
                moved,
                stop: Stop::Limit,
            };
        }
        let (result, requested) = {
            let (a, b) = ring.unfilled();
            let left = limit - moved;
            let a_len = a.len().min(left);
            let b_len = b.len().min(left - a_len);
            let (a, b) = (&mut a[..a_len], &mut b[..b_len]);
            let requested = a.len() + b.len();
            let result = if b.is_empty() {
                reader.read(a)
            } else {
                reader.read_vectored(&mut [IoSliceMut::new(a), IoSliceMut::new(b)])
            };
            (result, requested)
        };
        match result {
            Ok(0) => {
                return Progress {
                    moved,
                    stop: Stop::Eof,
                };
            }
            Ok(n) => {
                ring.commit(n);
                moved += n;
                stats.reads += 1;
                stats.read_bytes += n as u64;
                if n < requested {
                    return Progress {
                        moved,
                        stop: Stop::Drained,
                    };
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let stop = classify(&e);
                if stop == Stop::WouldBlock {
                    stats.read_would_block += 1;
                }
                return Progress { moved, stop };
            }
        }
    }
}

/// Writes the ring's filled bytes into `writer` until the ring is empty, the writer would
/// block or fails. Every call is counted in `stats`.
pub fn drain_into<W: Write>(ring: &mut Ring, mut writer: W, stats: &mut IoStats) -> Progress {
    let mut moved = 0;
    loop {
        if ring.is_empty() {
            return Progress {
                moved,
                stop: Stop::Empty,
            };
        }
        let (result, requested) = {
            let (a, b) = ring.filled();
            let result = if b.is_empty() {
                writer.write(a)
            } else {
                writer.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
            };
            (result, a.len() + b.len())
        };
        match result {
            Ok(0) => {
                return Progress {
                    moved,
                    stop: Stop::Failed(io::ErrorKind::WriteZero),
                };
            }
            Ok(n) => {
                ring.consume(n);
                moved += n;
                stats.writes += 1;
                stats.write_bytes += n as u64;
                if n < requested {
                    stats.partial_writes += 1;
                    return Progress {
                        moved,
                        stop: Stop::Drained,
                    };
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let stop = classify(&e);
                if stop == Stop::WouldBlock {
                    stats.write_would_block += 1;
                }
                return Progress { moved, stop };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// One scripted outcome of a read or write call.
    enum Step {
        Data(&'static [u8]),
        Accept(usize),
        Fail(io::ErrorKind),
        Eof,
    }

    /// A fake socket that plays a script; an exhausted script means `WouldBlock`.
    struct Scripted {
        steps: VecDeque<Step>,
        written: Vec<u8>,
    }

    impl Scripted {
        fn new(steps: Vec<Step>) -> Scripted {
            Scripted {
                steps: steps.into(),
                written: Vec::new(),
            }
        }
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            assert!(!buf.is_empty(), "pumps must never read into an empty slice");
            match self.steps.pop_front() {
                Some(Step::Data(d)) => {
                    let n = d.len().min(buf.len());
                    buf[..n].copy_from_slice(&d[..n]);
                    Ok(n)
                }
                Some(Step::Eof) => Ok(0),
                Some(Step::Fail(kind)) => Err(kind.into()),
                Some(Step::Accept(_)) => unreachable!("write step in a read script"),
                None => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match self.steps.pop_front() {
                Some(Step::Accept(n)) => {
                    let n = n.min(buf.len());
                    self.written.extend_from_slice(&buf[..n]);
                    Ok(n)
                }
                Some(Step::Fail(kind)) => Err(kind.into()),
                Some(_) => unreachable!("read step in a write script"),
                None => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn calls_are_counted() {
        let mut ring = Ring::with_capacity(8);
        let mut stats = IoStats::default();
        let mut src = Scripted::new(vec![Step::Data(b"abc")]);
        fill_from(&mut ring, &mut src, &mut stats);
        fill_from(&mut ring, &mut src, &mut stats);
        let mut dst = Scripted::new(vec![Step::Accept(2)]);
        drain_into(&mut ring, &mut dst, &mut stats);
        drain_into(&mut ring, &mut dst, &mut stats);
        let expected = IoStats {
            reads: 1,
            read_bytes: 3,
            writes: 1,
            write_bytes: 2,
            read_would_block: 1,
            write_would_block: 1,
            partial_writes: 1,
            ..IoStats::default()
        };
        assert_eq!(stats, expected);
    }

    fn progress(moved: usize, stop: Stop) -> Progress {
        Progress { moved, stop }
    }

    #[test]
    fn short_reads_end_the_pump_and_interrupted_is_retried() {
        let mut ring = Ring::with_capacity(16);
        let mut src = Scripted::new(vec![
            Step::Data(b"abc"),
            Step::Fail(io::ErrorKind::Interrupted),
            Step::Data(b"de"),
        ]);
        assert_eq!(
            fill_from(&mut ring, &mut src, &mut IoStats::default()),
            progress(3, Stop::Drained)
        );
        assert_eq!(
            fill_from(&mut ring, &mut src, &mut IoStats::default()),
            progress(2, Stop::Drained)
        );
        assert_eq!(
            fill_from(&mut ring, &mut src, &mut IoStats::default()),
            progress(0, Stop::WouldBlock)
        );
        assert_eq!(ring.filled().0, b"abcde");
    }

    #[test]
    fn fill_stops_at_full_without_reading_into_nothing() {
        let mut ring = Ring::with_capacity(4);
        let mut src = Scripted::new(vec![Step::Data(b"abcdef"), Step::Eof]);
        assert_eq!(
            fill_from(&mut ring, &mut src, &mut IoStats::default()),
            progress(4, Stop::Full)
        );
        assert_eq!(src.steps.len(), 1, "EOF must still be pending");
    }

    #[test]
    fn fill_reports_eof_and_reset() {
        let mut ring = Ring::with_capacity(4);
        let eof = Scripted::new(vec![Step::Eof]);
        assert_eq!(
            fill_from(&mut ring, eof, &mut IoStats::default()),
            progress(0, Stop::Eof)
        );
        let reset = Scripted::new(vec![Step::Fail(io::ErrorKind::ConnectionReset)]);
        assert_eq!(
            fill_from(&mut ring, reset, &mut IoStats::default()).stop,
            Stop::Reset
        );
        let failed = Scripted::new(vec![Step::Fail(io::ErrorKind::TimedOut)]);
        assert_eq!(
            fill_from(&mut ring, failed, &mut IoStats::default()).stop,
            Stop::Failed(io::ErrorKind::TimedOut)
        );
    }

    #[test]
    fn drain_handles_partial_writes_then_would_block() {
        let mut ring = Ring::with_capacity(8);
        ring.push_slice(b"abcdefgh");
        let mut dst = Scripted::new(vec![Step::Accept(3), Step::Accept(2)]);
        assert_eq!(
            drain_into(&mut ring, &mut dst, &mut IoStats::default()),
            progress(3, Stop::Drained)
        );
        assert_eq!(
            drain_into(&mut ring, &mut dst, &mut IoStats::default()),
            progress(2, Stop::Drained)
        );
        assert_eq!(
            drain_into(&mut ring, &mut dst, &mut IoStats::default()),
            progress(0, Stop::WouldBlock)
        );
        assert_eq!(dst.written, b"abcde");
        assert_eq!(ring.len(), 3);
        let mut dst = Scripted::new(vec![Step::Accept(8)]);
        assert_eq!(
            drain_into(&mut ring, &mut dst, &mut IoStats::default()),
            progress(3, Stop::Empty)
        );
        assert_eq!(dst.written, b"fgh");
    }

    #[test]
    fn drain_reports_broken_pipe_as_reset() {
        let mut ring = Ring::with_capacity(8);
        ring.push_slice(b"ab");
        let p = drain_into(
            &mut ring,
            Scripted::new(vec![Step::Fail(io::ErrorKind::BrokenPipe)]),
            &mut IoStats::default(),
        );
        assert_eq!(
            p,
            Progress {
                moved: 0,
                stop: Stop::Reset
            }
        );
        assert_eq!(ring.len(), 2);
    }
}
