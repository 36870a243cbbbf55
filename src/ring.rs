//! A fixed-capacity byte ring: the buffer for one direction of a proxied pair.
//!
//! Pure data structure (no sockets, no allocation after construction). Invariant:
//! `len <= capacity`, and bytes come out in exactly the order they went in. Readers fill
//! [`Ring::unfilled`] and call [`Ring::commit`]; writers send [`Ring::filled`] and call
//! [`Ring::consume`]. Both hand out at most two slices, so a socket can read or write the
//! whole free or filled space with one vectored call.
//!
//! Storage can be detached while the ring is empty and attached again before the next read,
//! so an idle connection holds no buffer: see [`BufferPool`].

/// A byte ring buffer of fixed capacity.
///
/// The filled region starts at `head` and is `len` bytes long, wrapping at the end of the
/// storage. When the ring becomes empty, `head` returns to 0 so that the next read gets the
/// whole storage as one contiguous slice. A detached ring has capacity 0: it is both empty
/// and full until storage is attached. Positions are `u32` (capacities stay below 4 GiB;
/// buffer sizes are at most 256 MiB), which keeps an idle connection's two rings small.
#[derive(Debug)]
pub struct Ring {
    buf: Box<[u8]>,
    head: u32,
    len: u32,
}

impl Ring {
    /// A ring that holds at most `capacity` bytes. `capacity` must be at least 1.
    pub fn with_capacity(capacity: usize) -> Ring {
        debug_assert!(capacity > 0, "a ring needs room for at least one byte");
        debug_assert!(
            u32::try_from(capacity).is_ok(),
            "a ring holds less than 4 GiB"
        );
        Ring {
            buf: vec![0; capacity].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    /// A ring without storage; call [`Ring::attach`] before filling it.
    pub fn detached() -> Ring {
        Ring {
            buf: Box::default(),
            head: 0,
            len: 0,
        }
    }

    /// True when the ring has storage attached.
    pub fn has_storage(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Gives a detached ring its storage (the old contents of `buf` are irrelevant).
    pub fn attach(&mut self, buf: Box<[u8]>) {
        debug_assert!(!self.has_storage(), "attach to a ring that has storage");
        debug_assert!(
            u32::try_from(buf.len()).is_ok(),
            "a ring holds less than 4 GiB"
        );
        self.buf = buf;
        self.head = 0;
        self.len = 0;
    }

    /// Takes the storage of an empty ring, leaving it detached; `None` if the ring holds data
    /// or has no storage.
    pub fn detach(&mut self) -> Option<Box<[u8]>> {
        if self.len == 0 && self.has_storage() {
            Some(std::mem::take(&mut self.buf))
        } else {
            None
        }
    }

    /// Maximum number of bytes the ring holds (0 when detached).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Number of bytes waiting to be written out.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no byte is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no byte more can be read in.
    pub fn is_full(&self) -> bool {
        self.len() == self.buf.len()
    }

    /// The waiting bytes, oldest first, as up to two slices (the second is empty unless the
    /// filled region wraps).
    pub fn filled(&self) -> (&[u8], &[u8]) {
        let (cap, head) = (self.buf.len(), self.head as usize);
        let end = head + self.len();
        if end <= cap {
            (&self.buf[head..end], &[])
        } else {
            let (wrapped, tail) = self.buf.split_at(head);
            (tail, &wrapped[..end - cap])
        }
    }

    /// The free space, in the order it will be filled, as up to two slices.
    pub fn unfilled(&mut self) -> (&mut [u8], &mut [u8]) {
        let (cap, head) = (self.buf.len(), self.head as usize);
        let tail = head + self.len();
        if tail >= cap {
            // The filled region wraps (or ends exactly at the end): free space is one run.
            let start = tail - cap;
            (&mut self.buf[start..head], &mut [])
        } else {
            let (front, back) = self.buf.split_at_mut(tail);
            (back, &mut front[..head])
        }
    }

    /// Marks `n` bytes of [`Ring::unfilled`] as filled. `n` must not exceed the free space.
    pub fn commit(&mut self, n: usize) {
        debug_assert!(n <= self.buf.len() - self.len(), "commit past free space");
        self.len = (self.len() + n).min(self.buf.len()) as u32;
    }

    /// Drops the `n` oldest bytes after they were written out. `n` must not exceed `len`.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len(), "consume past filled data");
        let n = n.min(self.len());
        self.len -= n as u32;
        self.head = if self.len == 0 {
            0
        } else {
            ((self.head as usize + n) % self.buf.len()) as u32
        };
    }

    /// Moves the waiting bytes to the start of the storage (they are then one slice, and
    /// the free space after them is too). Costs a copy of the waiting bytes.
    pub fn compact(&mut self) {
        let (len, head) = (self.len(), self.head as usize);
        if head == 0 || len == 0 {
            self.head = 0;
            return;
        }
        if head + len <= self.buf.len() {
            self.buf.copy_within(head..head + len, 0);
        } else {
            self.buf.rotate_left(head);
        }
        self.head = 0;
    }

    /// Copies as much of `data` as fits into the ring; returns how many bytes were taken.
    pub fn push_slice(&mut self, data: &[u8]) -> usize {
        let (a, b) = self.unfilled();
        let first = data.len().min(a.len());
        a[..first].copy_from_slice(&data[..first]);
        let second = (data.len() - first).min(b.len());
        b[..second].copy_from_slice(&data[first..first + second]);
        self.commit(first + second);
        first + second
    }

    /// Copies up to `out.len()` of the oldest bytes into `out` and consumes them; returns the
    /// count.
    pub fn pop_slice(&mut self, out: &mut [u8]) -> usize {
        let (a, b) = self.filled();
        let first = out.len().min(a.len());
        out[..first].copy_from_slice(&a[..first]);
        let second = (out.len() - first).min(b.len());
        out[first..first + second].copy_from_slice(&b[..second]);
        self.consume(first + second);
        first + second
    }
}

impl Default for Ring {
    /// A detached ring.
    fn default() -> Ring {
        Ring::detached()
    }
}

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Free ring storage of one size, reused across connections so that idle connections hold
/// no buffer and busy ones do not allocate per read. Holds at most `max_free` buffers.
#[derive(Debug)]
pub struct BufferPool {
    size: usize,
    max_free: usize,
    free: Vec<Box<[u8]>>,
    budget: Arc<Budget>,
}

impl BufferPool {
    /// A pool of `size`-byte buffers that keeps at most `max_free` of them when unused and
    /// allocates only within `budget` (shared with the other pools of the loop).
    pub fn new(size: usize, max_free: usize, budget: Arc<Budget>) -> BufferPool {
        debug_assert!(size > 0);
        BufferPool {
            size,
            max_free,
            free: Vec::new(),
            budget,
        }
    }

    /// Attaches storage to `ring` if it has none: a free buffer, or a new one within the
    /// budget. False when the ring has none and the budget is used up.
    pub fn fill(&mut self, ring: &mut Ring) -> bool {
        if ring.has_storage() {
            return true;
        }
        let buf = match self.free.pop() {
            Some(buf) => buf,
            None if self.budget.take(self.size) => vec![0; self.size].into_boxed_slice(),
            None => return false,
        };
        ring.attach(buf);
        true
    }

    /// The budget it allocates within.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// True when [`BufferPool::fill`] would give a ring storage now.
    pub fn can_fill(&self) -> bool {
        !self.free.is_empty() || self.budget.has_room(self.size)
    }

    /// Takes back the storage of `ring` if it is empty (storage of another size, left from
    /// before a reload changed the size, is freed instead).
    pub fn reclaim(&mut self, ring: &mut Ring) {
        if let Some(buf) = ring.detach() {
            self.keep_or_free(buf);
        }
    }

    /// Takes back the storage of `ring` whatever it holds (its pair is gone).
    pub fn release(&mut self, ring: &mut Ring) {
        ring.len = 0;
        ring.head = 0;
        self.reclaim(ring);
    }

    fn keep_or_free(&mut self, buf: Box<[u8]>) {
        if self.free.len() < self.max_free && buf.len() == self.size {
            self.free.push(buf);
        } else {
            self.budget.give(buf.len());
        }
    }

    /// Buffers waiting for reuse.
    pub fn free_len(&self) -> usize {
        self.free.len()
    }

    /// Bytes held by buffers waiting for reuse.
    pub fn free_bytes(&self) -> usize {
        self.free.len() * self.size
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        self.budget.give(self.free_bytes());
    }
}

/// The bytes of ring storage one loop may hold at once (`max_buffered`, split between the
/// workers), shared by the pools of its routes: buffers attached to rings and buffers kept
/// for reuse both count. Loop-local in practice; atomics only make it `Send` with the loop.
#[derive(Debug)]
pub struct Budget {
    limit: AtomicUsize,
    used: AtomicUsize,
}

impl Budget {
    /// At most `limit` bytes (`usize::MAX`: no limit).
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
        })
    }

    /// Changes the limit (a reload); storage already held is kept.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// True when `n` more bytes fit.
    pub fn has_room(&self, n: usize) -> bool {
        self.used().saturating_add(n) <= self.limit()
    }

    fn take(&self, n: usize) -> bool {
        let room = self.has_room(n);
        if room {
            self.used.fetch_add(n, Ordering::Relaxed);
        }
        room
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n.min(self.used()), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn contents(ring: &Ring) -> Vec<u8> {
        let (a, b) = ring.filled();
        [a, b].concat()
    }

    #[test]
    fn new_ring_is_empty_with_one_free_run() {
        let mut ring = Ring::with_capacity(8);
        assert!(ring.is_empty());
        assert!(!ring.is_full());
        let (a, b) = ring.unfilled();
        assert_eq!((a.len(), b.len()), (8, 0));
        assert_eq!(ring.filled(), (&[][..], &[][..]));
    }

    #[test]
    fn fill_to_full_then_drain_to_empty() {
        let mut ring = Ring::with_capacity(4);
        assert_eq!(ring.push_slice(b"abcdef"), 4);
        assert!(ring.is_full());
        let (a, b) = ring.unfilled();
        assert_eq!((a.len(), b.len()), (0, 0));
        let mut out = [0; 8];
        assert_eq!(ring.pop_slice(&mut out), 4);
        assert_eq!(&out[..4], b"abcd");
        assert!(ring.is_empty());
    }

    #[test]
    fn compact_moves_waiting_bytes_to_the_front_in_order() {
        let mut ring = Ring::with_capacity(8);
        ring.push_slice(b"PROXYab");
        ring.consume(5);
        ring.compact();
        assert_eq!(ring.filled(), (&b"ab"[..], &[][..]));
        assert_eq!(ring.unfilled().0.len(), 6, "free space is one run");
        // Wrapped: the two runs become one.
        ring.push_slice(b"cdefgh");
        ring.consume(3);
        ring.push_slice(b"ijk");
        assert_ne!(ring.filled().1, b"");
        ring.compact();
        assert_eq!(ring.filled(), (&b"defghijk"[..], &[][..]));
    }

    #[test]
    fn wrap_around_gives_two_slices_in_order() {
        let mut ring = Ring::with_capacity(8);
        ring.push_slice(b"abcdef");
        ring.consume(4);
        assert_eq!(contents(&ring), b"ef");
        {
            let (a, b) = ring.unfilled();
            assert_eq!((a.len(), b.len()), (2, 4));
        }
        assert_eq!(ring.push_slice(b"ghijk"), 5);
        let (a, b) = ring.filled();
        assert_eq!((a, b), (&b"efgh"[..], &b"ijk"[..]));
        assert_eq!(ring.push_slice(b"lmn"), 1);
        assert!(ring.is_full());
        assert_eq!(contents(&ring), b"efghijkl");
    }

    #[test]
    fn full_ring_that_wraps_has_no_free_space() {
        let mut ring = Ring::with_capacity(4);
        ring.push_slice(b"ab");
        ring.consume(1);
        ring.push_slice(b"cde");
        assert!(ring.is_full());
        let (a, b) = ring.unfilled();
        assert_eq!((a.len(), b.len()), (0, 0));
        assert_eq!(contents(&ring), b"bcde");
    }

    #[test]
    fn partial_commit_and_consume() {
        let mut ring = Ring::with_capacity(8);
        {
            let (a, _) = ring.unfilled();
            a[..3].copy_from_slice(b"xyz");
        }
        ring.commit(3);
        assert_eq!(contents(&ring), b"xyz");
        ring.consume(1);
        assert_eq!(contents(&ring), b"yz");
        ring.consume(2);
        assert!(ring.is_empty());
    }

    #[test]
    fn draining_to_empty_resets_to_one_contiguous_run() {
        let mut ring = Ring::with_capacity(8);
        ring.push_slice(b"abcde");
        ring.consume(5);
        let (a, b) = ring.unfilled();
        assert_eq!((a.len(), b.len()), (8, 0));
    }

    #[test]
    fn one_byte_ring_works() {
        let mut ring = Ring::with_capacity(1);
        for byte in 0..10u8 {
            assert_eq!(ring.push_slice(&[byte, byte]), 1);
            let mut out = [0; 2];
            assert_eq!(ring.pop_slice(&mut out), 1);
            assert_eq!(out[0], byte);
        }
    }

    #[test]
    fn the_budget_bounds_storage_and_every_buffer_is_given_back() {
        let budget = Budget::new(8);
        let mut pool = BufferPool::new(4, 1, Arc::clone(&budget));
        let (mut a, mut b, mut c) = (Ring::detached(), Ring::detached(), Ring::detached());
        assert!(pool.fill(&mut a) && pool.fill(&mut b));
        assert_eq!(budget.used(), 8);
        assert!(
            !pool.can_fill() && !pool.fill(&mut c),
            "the budget is used up"
        );
        a.push_slice(b"full");
        pool.release(&mut a);
        assert!(pool.can_fill(), "a released buffer waits in the pool");
        assert!(pool.fill(&mut c));
        pool.reclaim(&mut b);
        pool.reclaim(&mut c);
        assert_eq!(budget.used(), 4, "one kept for reuse, the other freed");
        drop(pool);
        assert_eq!(budget.used(), 0, "a dropped pool gives its buffers back");
    }

    #[test]
    fn detached_ring_reattaches_through_the_pool() {
        let mut pool = BufferPool::new(4, 1, Budget::new(usize::MAX));
        let mut ring = Ring::detached();
        assert!(!ring.has_storage() && ring.is_empty() && ring.is_full());
        pool.fill(&mut ring);
        assert_eq!(ring.push_slice(b"abcdef"), 4);
        pool.reclaim(&mut ring);
        assert!(ring.has_storage(), "a ring holding data keeps its storage");
        let mut out = [0; 4];
        ring.pop_slice(&mut out);
        pool.reclaim(&mut ring);
        assert!(!ring.has_storage());
        assert_eq!(pool.free_len(), 1);
        let mut other = Ring::detached();
        pool.fill(&mut other);
        assert_eq!(pool.free_len(), 0);
        assert_eq!(other.capacity(), 4);
        pool.reclaim(&mut other);
        pool.reclaim(&mut ring);
        assert_eq!(pool.free_len(), 1, "reclaiming a detached ring is a no-op");
    }

    /// xorshift64*: a fixed-seed generator, so the model test is deterministic.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn matches_vecdeque_model_over_random_operations() {
        for capacity in [1, 2, 3, 7, 16, 100] {
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ capacity as u64);
            let mut ring = Ring::with_capacity(capacity);
            let mut model: VecDeque<u8> = VecDeque::new();
            let mut next_byte = 0u8;
            for _ in 0..20_000 {
                let amount = (rng.next() % (capacity as u64 + 2)) as usize;
                if rng.next().is_multiple_of(2) {
                    let data: Vec<u8> = (0..amount)
                        .map(|_| {
                            next_byte = next_byte.wrapping_add(1);
                            next_byte
                        })
                        .collect();
                    let taken = ring.push_slice(&data);
                    assert_eq!(taken, amount.min(capacity - model.len()));
                    model.extend(&data[..taken]);
                } else {
                    let mut out = vec![0; amount];
                    let got = ring.pop_slice(&mut out);
                    let expected: Vec<u8> = model.drain(..amount.min(model.len())).collect();
                    assert_eq!(&out[..got], &expected[..]);
                }
                assert_eq!(ring.len(), model.len());
                assert_eq!(ring.is_full(), model.len() == capacity);
                assert_eq!(contents(&ring), model.iter().copied().collect::<Vec<u8>>());
                let free = {
                    let (a, b) = ring.unfilled();
                    a.len() + b.len()
                };
                assert_eq!(free, capacity - model.len());
            }
        }
    }
}
