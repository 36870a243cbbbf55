//! A kernel pipe as one direction's buffer: socket → pipe and pipe → socket with
//! `splice(2)`, so the bytes never enter user space.
//!
//! A [`Pipe`] counts the bytes it holds itself (the kernel does not say), and is full at its
//! byte capacity — the effective pipe size: the route's `pipe_size` (see
//! [`RouteSettings::pipe_bytes`](crate::settings::RouteSettings::pipe_bytes)) as the kernel
//! rounds it (up to whole pages, a power of two of them: 10000 bytes become 16384), or what
//! the kernel left it at when it refused that size; kept with each pipe.
//! The pitfall every splicing proxy meets: a pipe has a fixed number of page slots, so small
//! segments can fill it long before its byte capacity, and a splice into it then fails with
//! `EAGAIN` although the socket still has data. [`Pipe::fill`] therefore reports `EAGAIN`
//! as [`Stop::WouldBlock`] (the socket is empty) only when the pipe is empty; otherwise as
//! [`Stop::Full`], which keeps the source's readiness, so reading resumes as soon as the
//! pipe drains. A short splice into the pipe stops a fill the same way: the call after it
//! would only fail with `EAGAIN` (one splice fewer per short read). `SPLICE_F_NONBLOCK`
//! makes only the pipe non-blocking; the sockets are non-blocking themselves.
//!
//! [`PipePool`] keeps empty pipes for reuse and creates new ones within a per-loop count
//! ([`PipeCount`], two descriptors each); a pipe that still holds data is closed, never
//! reused. Invariants: `len <= capacity`; every open pipe is counted exactly once.

use crate::io::{Progress, Stop, classify};
use crate::stats::IoStats;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const FLAGS: SpliceFlags = SpliceFlags::NONBLOCK.union(SpliceFlags::MOVE);

/// The two ends of one kernel pipe and its effective size.
#[derive(Debug)]
pub struct PipeEnds {
    read: OwnedFd,
    write: OwnedFd,
    size: u32,
}

/// One direction's kernel pipe, or none (then it is empty and full, like a detached ring).
#[derive(Debug, Default)]
pub struct Pipe {
    ends: Option<PipeEnds>,
    len: u32,
}

/// True when a splice stopped because splicing is impossible here (the socket type or the
/// kernel refuses it: `EINVAL`, `ENOSYS`, `EOPNOTSUPP`): the direction should use a ring.
pub fn refused(stop: Stop) -> bool {
    matches!(
        stop,
        Stop::Failed(io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported)
    )
}

impl Pipe {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes it may hold (0 without a pipe).
    pub fn capacity(&self) -> usize {
        self.ends.as_ref().map_or(0, |ends| ends.size as usize)
    }

    /// True when it has a pipe.
    pub fn has_pipe(&self) -> bool {
        self.ends.is_some()
    }

    /// Splices from `src` into the pipe until it is full, `src` would block or ends, at most
    /// `limit` bytes. A socket that cannot be spliced stops it with a stop [`refused`]
    /// recognizes.
    pub fn fill(&mut self, src: BorrowedFd<'_>, stats: &mut IoStats, limit: usize) -> Progress {
        let Some(ends) = &self.ends else {
            return Progress {
                moved: 0,
                stop: Stop::Full,
            };
        };
        let capacity = ends.size;
        let mut moved = 0;
        loop {
            let room = (capacity - self.len) as usize;
            if room == 0 {
                return progress(moved, Stop::Full);
            }
            if moved >= limit {
                return progress(moved, Stop::Limit);
            }
            let want = room.min(limit - moved);
            match rustix::pipe::splice(src, None, &ends.write, None, want, FLAGS) {
                Ok(0) => return progress(moved, Stop::Eof),
                Ok(n) => {
                    self.len += n as u32;
                    moved += n;
                    stats.reads += 1;
                    stats.read_bytes += n as u64;
                    if n < want {
                        // The socket is empty or the pipe's slots are used up. Asking again
                        // now would only fail with EAGAIN: the source keeps its readiness
                        // and the next round, after the pipe drained, tells which.
                        return progress(moved, Stop::Full);
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) if self.len > 0 => {
                    // The socket may still hold data: keep its readiness (see the module).
                    return progress(moved, Stop::Full);
                }
                Err(e) => {
                    let e = io::Error::from(e);
                    let stop = classify(&e);
                    if stop == Stop::WouldBlock {
                        stats.read_would_block += 1;
                    }
                    return progress(moved, stop);
                }
            }
        }
    }

    /// Splices the pipe's bytes into `dst` until it is empty or `dst` would block.
    pub fn drain(&mut self, dst: BorrowedFd<'_>, stats: &mut IoStats) -> Progress {
        let Some(ends) = &self.ends else {
            return progress(0, Stop::Empty);
        };
        let mut moved = 0;
        loop {
            if self.len == 0 {
                return progress(moved, Stop::Empty);
            }
            let want = self.len as usize;
            match rustix::pipe::splice(&ends.read, None, dst, None, want, FLAGS) {
                Ok(0) => return progress(moved, Stop::Failed(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    self.len -= n as u32;
                    moved += n;
                    stats.writes += 1;
                    stats.write_bytes += n as u64;
                    if n < want {
                        stats.partial_writes += 1;
                        return progress(moved, Stop::Drained);
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    let e = io::Error::from(e);
                    let stop = classify(&e);
                    if stop == Stop::WouldBlock {
                        stats.write_would_block += 1;
                    }
                    return progress(moved, stop);
                }
            }
        }
    }

    /// Takes the pipe out if it is empty (for the pool); `None` if it holds data or there
    /// is none.
    fn detach(&mut self) -> Option<PipeEnds> {
        if self.len == 0 {
            self.ends.take()
        } else {
            None
        }
    }
}

fn progress(moved: usize, stop: Stop) -> Progress {
    Progress { moved, stop }
}

/// How many pipes one loop may have open (in use or kept for reuse), shared by the pools of
/// its routes: two descriptors each.
#[derive(Debug)]
pub struct PipeCount {
    limit: AtomicUsize,
    open: AtomicUsize,
}

impl PipeCount {
    /// At most `limit` pipes.
    pub fn new(limit: usize) -> Arc<PipeCount> {
        Arc::new(PipeCount {
            limit: AtomicUsize::new(limit),
            open: AtomicUsize::new(0),
        })
    }

    /// Changes the limit (a reload); pipes already open are kept.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Pipes open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn take(&self) -> bool {
        let open = self.open();
        if open >= self.limit.load(Ordering::Relaxed) {
            return false;
        }
        self.open.store(open + 1, Ordering::Relaxed);
        true
    }

    fn give(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Empty pipes of one size kept for reuse (at most `max_free`), and new ones made within the
/// loop's [`PipeCount`].
#[derive(Debug)]
pub struct PipePool {
    size: usize,
    max_free: usize,
    free: Vec<PipeEnds>,
    count: Arc<PipeCount>,
}

impl PipePool {
    /// A pool of pipes of `size` bytes.
    pub fn new(size: usize, max_free: usize, count: Arc<PipeCount>) -> PipePool {
        PipePool {
            size,
            max_free,
            free: Vec::new(),
            count,
        }
    }

    /// Gives `pipe` one: a free one or a new one. `Err` when none can be had (the count is
    /// used up, no descriptors, pipes unsupported); the direction then uses a ring.
    pub fn fill(&mut self, pipe: &mut Pipe) -> io::Result<()> {
        if pipe.has_pipe() {
            return Ok(());
        }
        let ends = match self.free.pop() {
            Some(ends) => ends,
            None => self.open()?,
        };
        pipe.len = 0;
        pipe.ends = Some(ends);
        Ok(())
    }

    fn open(&mut self) -> io::Result<PipeEnds> {
        if !self.count.take() {
            return Err(io::Error::other("the pipe count is used up"));
        }
        match make(self.size) {
            Ok((ends, _)) => Ok(ends),
            Err(e) => {
                self.count.give();
                Err(e.into())
            }
        }
    }

    /// Takes back the pipe of `pipe` if it is empty.
    pub fn reclaim(&mut self, pipe: &mut Pipe) {
        if let Some(ends) = pipe.detach() {
            if self.free.len() < self.max_free {
                self.free.push(ends);
            } else {
                self.count.give();
            }
        }
    }

    /// Closes the pipe of `pipe` whatever it holds (its pair is gone; bytes in it are never
    /// handed to anyone else).
    pub fn release(&mut self, pipe: &mut Pipe) {
        if pipe.ends.take().is_some() {
            self.count.give();
        }
        pipe.len = 0;
    }

    /// Pipes kept for reuse.
    pub fn free_len(&self) -> usize {
        self.free.len()
    }

    /// The count it creates pipes within.
    pub fn count(&self) -> &Arc<PipeCount> {
        &self.count
    }
}

impl Drop for PipePool {
    fn drop(&mut self) {
        for _ in self.free.drain(..) {
            self.count.give();
        }
    }
}

/// A new non-blocking pipe asked to hold `size` bytes, and why it holds another size (the
/// kernel refused `F_SETPIPE_SZ`: beyond `/proc/sys/fs/pipe-max-size` or the user's pipe
/// pages; it then keeps the size it was made with).
fn make(size: usize) -> rustix::io::Result<(PipeEnds, Option<rustix::io::Errno>)> {
    let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    let (size, refusal) = match fcntl_setpipe_size(&write, size) {
        // The kernel rounds up to whole pages, a power of two of them.
        Ok(size) => (size, None),
        Err(e) => (fcntl_getpipe_size(&write)?, Some(e)),
    };
    let size = size.min(u32::MAX as usize) as u32;
    Ok((PipeEnds { read, write, size }, refusal))
}

/// What a pipe asked to hold `size` bytes holds here (a pipe is made and closed), for the
/// start line and `--check`: `pipes of 16384 bytes`, with the kernel's refusal when it kept
/// another size; `Err` when no pipe can be made.
pub fn probe_size(size: usize) -> io::Result<String> {
    let (ends, refusal) = make(size)?;
    Ok(match refusal {
        None => format!("pipes of {} bytes", ends.size),
        Some(e) => format!(
            "pipes of {} bytes (the kernel refused {size}: {}; see /proc/sys/fs/pipe-max-size)",
            ends.size,
            io::Error::from(e)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::AsFd;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    /// A connected loopback pair, both non-blocking.
    fn sockets() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn pool(size: usize, limit: usize) -> PipePool {
        PipePool::new(size, 2, PipeCount::new(limit))
    }

    #[test]
    fn bytes_go_socket_to_pipe_to_socket_in_order() {
        let (mut client, proxy_in) = sockets();
        let (proxy_out, mut server) = sockets();
        let mut pool = pool(16 * 1024, 4);
        let mut pipe = Pipe::default();
        pool.fill(&mut pipe).unwrap();
        assert_eq!(pipe.capacity(), 16 * 1024);
        client.write_all(b"hello, pipe").unwrap();
        let mut stats = IoStats::default();
        let p = loop {
            let p = pipe.fill(proxy_in.as_fd(), &mut stats, usize::MAX);
            if p.moved > 0 {
                break p;
            }
        };
        assert_eq!((p.moved, pipe.len()), (11, 11));
        let d = pipe.drain(proxy_out.as_fd(), &mut stats);
        assert_eq!((d.moved, d.stop, pipe.len()), (11, Stop::Empty, 0));
        server.set_nonblocking(false).unwrap();
        let mut got = [0; 11];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello, pipe");
        // An empty pipe and an empty socket: the socket would block.
        let p = pipe.fill(proxy_in.as_fd(), &mut stats, usize::MAX);
        assert_eq!(p.stop, Stop::WouldBlock);
        // EOF.
        drop(client);
        let p = pipe.fill(proxy_in.as_fd(), &mut stats, usize::MAX);
        assert_eq!(p.stop, Stop::Eof);
    }

    #[test]
    fn a_full_pipe_keeps_the_source_ready_and_limits_hold() {
        let (mut client, proxy_in) = sockets();
        let mut pool = pool(4096, 4);
        let mut pipe = Pipe::default();
        pool.fill(&mut pipe).unwrap();
        client.write_all(&[7; 10_000]).unwrap();
        let mut stats = IoStats::default();
        let mut total = 0;
        let p = loop {
            let p = pipe.fill(proxy_in.as_fd(), &mut stats, 3000);
            total += p.moved;
            if p.stop != Stop::WouldBlock {
                break p;
            }
        };
        assert!(matches!(p.stop, Stop::Limit | Stop::Full), "{p:?}");
        assert!(total <= 3000);
        let p = pipe.fill(proxy_in.as_fd(), &mut stats, usize::MAX);
        assert_eq!(
            p.stop,
            Stop::Full,
            "full at its byte capacity or slots: {p:?}"
        );
        assert!(pipe.len() <= pipe.capacity());
    }

    #[test]
    fn the_pool_counts_pipes_and_never_reuses_one_holding_data() {
        let mut pool = pool(4096, 1);
        let (mut a, mut b) = (Pipe::default(), Pipe::default());
        pool.fill(&mut a).unwrap();
        assert!(pool.fill(&mut b).is_err(), "a count of 1");
        assert_eq!(pool.count().open(), 1);
        pool.reclaim(&mut a);
        assert_eq!((pool.free_len(), pool.count().open()), (1, 1));
        pool.fill(&mut b).unwrap();
        assert_eq!(pool.free_len(), 0, "the free one was reused");
        b.len = 5;
        pool.reclaim(&mut b);
        assert!(b.has_pipe(), "a pipe holding data is not taken back");
        pool.release(&mut b);
        assert_eq!(pool.count().open(), 0, "closed");
        assert_eq!(probe_size(16 * 1024).unwrap(), "pipes of 16384 bytes");
        assert_eq!(
            probe_size(10_000).unwrap(),
            "pipes of 16384 bytes",
            "rounded"
        );
    }

    #[test]
    fn a_socket_that_cannot_be_spliced_is_refused() {
        let mut pool = pool(4096, 1);
        let mut pipe = Pipe::default();
        pool.fill(&mut pipe).unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_nonblocking(true).unwrap();
        udp.send_to(b"x", udp.local_addr().unwrap()).unwrap();
        let mut stats = IoStats::default();
        let p = pipe.fill(udp.as_fd(), &mut stats, usize::MAX);
        assert!(
            refused(p.stop) || p.stop == Stop::WouldBlock || p.moved > 0,
            "{p:?}"
        );
        assert!(refused(Stop::Failed(io::ErrorKind::InvalidInput)));
        assert!(!refused(Stop::Reset));
    }
}
