//! The per-direction buffer interface: what one direction of a pair needs from the buffer
//! between its source and its destination.
//!
//! A direction reads its source into the buffer while it has room, writes the buffer to its
//! destination while it holds bytes, and reports its fill level and capacity for metrics and
//! the access log. Storage comes from a per-route pool only while bytes are in flight, so an
//! idle connection holds none. [`Ring`] with [`BufferPool`] implements it in user space;
//! [`crate::engine::Engine`] is a ring or a kernel pipe ([`crate::pipe`]), per direction.
//!
//! Invariants every implementation keeps: `len() <= capacity()`; bytes come out in the order
//! they went in; storage is returned only while empty (or released with its pair);
//! `capacity()` is 0 without storage; storage comes only within the pool's budget.

use crate::io::{self, Progress};
use crate::ring::{BufferPool, Ring};
use crate::stats::IoStats;
use rustix::fd::AsFd;
use std::io::{Read, Write};

/// What a direction remembers about the kind of storage to take, for buffers with more
/// than one kind ([`crate::engine::Engine`]): two bytes, kept in the direction so that an
/// idle connection stays small. A plain ring ignores it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Choice {
    /// Kind-specific flags.
    pub flags: u8,
    /// A running count the buffer keeps (full reads in a row, for `auto`).
    pub streak: u8,
}

impl Choice {
    /// Set while the bytes must be readable in user space ([`Buffer::front`]): while a PROXY
    /// header or a ClientHello is read.
    pub const USER_SPACE: u8 = 1;

    /// Sets or clears `flag`.
    pub fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    /// True when `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// One direction's buffer.
pub trait Buffer {
    /// Where storage comes from and goes back to.
    type Pool;

    /// Bytes held now.
    fn len(&self) -> usize;
    /// Most bytes it can hold with its storage (0 without).
    fn capacity(&self) -> usize;
    /// True when it has storage from the pool.
    fn has_storage(&self) -> bool;
    /// True when its storage is in the kernel (a pipe), not in user space.
    fn in_kernel(&self) -> bool {
        false
    }
    /// True when no byte is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// True when no byte more can be read in (also without storage).
    fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }
    /// The oldest bytes held, as one slice (all of them unless they wrap around; a buffer
    /// that was never drained does not wrap): what the phase before the upstream reads, such
    /// as a PROXY header, without taking it out.
    fn front(&self) -> &[u8];
    /// Drops the `n` oldest bytes (at most `front().len()`) without writing them anywhere,
    /// and keeps the rest at the start of the storage, so that what is read next still
    /// follows it in one slice (a ClientHello after a PROXY header).
    fn discard(&mut self, n: usize);
    /// Takes storage from `pool` unless it has some already: call before reading. False
    /// when it has none and the pool's budget is used up (the direction waits). `choice` is
    /// the direction's memory of which kind to take, for buffers with several.
    fn take_storage(&mut self, pool: &mut Self::Pool, choice: &mut Choice) -> bool;
    /// True when [`Buffer::take_storage`] would succeed now.
    fn storage_available(pool: &Self::Pool) -> bool;
    /// Gives its storage back to `pool` if it is empty: call after a round of I/O.
    fn return_storage(&mut self, pool: &mut Self::Pool);
    /// Gives its storage back to `pool` whatever it holds (the connection is gone).
    fn release_storage(&mut self, pool: &mut Self::Pool);
    /// Reads at most `limit` bytes from `src`, until full, the source would block, ends or
    /// fails (`pool`: where storage comes from if its kind must change on the way; `choice`
    /// learns from what was read).
    fn fill_from<R: Read + AsFd>(
        &mut self,
        src: &mut R,
        io: &mut IoStats,
        limit: usize,
        pool: &mut Self::Pool,
        choice: &mut Choice,
    ) -> Progress;
    /// Writes to `dst` until empty, the destination would block or fails.
    fn drain_into<W: Write + AsFd>(&mut self, dst: &mut W, io: &mut IoStats) -> Progress;
}

impl Buffer for Ring {
    type Pool = BufferPool;

    fn len(&self) -> usize {
        Ring::len(self)
    }
    fn capacity(&self) -> usize {
        Ring::capacity(self)
    }
    fn has_storage(&self) -> bool {
        Ring::has_storage(self)
    }
    fn front(&self) -> &[u8] {
        self.filled().0
    }
    fn discard(&mut self, n: usize) {
        self.consume(n.min(self.filled().0.len()));
        self.compact();
    }
    fn take_storage(&mut self, pool: &mut BufferPool, _choice: &mut Choice) -> bool {
        pool.fill(self)
    }
    fn storage_available(pool: &BufferPool) -> bool {
        pool.can_fill()
    }
    fn return_storage(&mut self, pool: &mut BufferPool) {
        pool.reclaim(self);
    }
    fn release_storage(&mut self, pool: &mut BufferPool) {
        pool.release(self);
    }
    fn fill_from<R: Read + AsFd>(
        &mut self,
        src: &mut R,
        stats: &mut IoStats,
        limit: usize,
        _pool: &mut BufferPool,
        _choice: &mut Choice,
    ) -> Progress {
        io::fill_at_most(self, src, stats, limit)
    }
    fn drain_into<W: Write + AsFd>(&mut self, dst: &mut W, stats: &mut IoStats) -> Progress {
        io::drain_into(self, dst, stats)
    }
}
