//! Deadlines for one loop: a min-heap with lazy cancellation.
//!
//! Entries are never removed early; the owner recognises a stale entry when it pops (for
//! example because the pair it names is gone or has moved to another attempt) and ignores
//! it. Time is always passed in as `now`, so the heap is deterministic under test. Deadlines
//! are kept as nanoseconds since the heap's epoch (8 bytes instead of an `Instant`'s 16:
//! every open connection has an entry or two).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A heap of `(deadline, event)` entries, earliest first.
#[derive(Debug)]
pub struct Timers<T: Ord> {
    epoch: Instant,
    heap: BinaryHeap<Reverse<(u64, T)>>,
}

impl<T: Ord> Default for Timers<T> {
    fn default() -> Self {
        Timers::new(Instant::now())
    }
}

impl<T: Ord> Timers<T> {
    /// An empty heap whose deadlines count from `epoch` (deadlines before it fire at once).
    pub fn new(epoch: Instant) -> Timers<T> {
        Timers {
            epoch,
            heap: BinaryHeap::new(),
        }
    }

    /// `at` as nanoseconds since the epoch (saturating: 584 years fit).
    fn ticks(&self, at: Instant) -> u64 {
        let ns = at.saturating_duration_since(self.epoch).as_nanos();
        ns.min(u128::from(u64::MAX)) as u64
    }

    /// Schedules `event` to fire at `at`.
    pub fn schedule(&mut self, at: Instant, event: T) {
        let at = self.ticks(at);
        self.heap.push(Reverse((at, event)));
    }

    /// The earliest deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let Reverse((at, _)) = self.heap.peek()?;
        Some(self.epoch + Duration::from_nanos(*at))
    }

    /// How long a poll may sleep from `now` before the earliest deadline (`None`: forever).
    pub fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        self.next_deadline()
            .map(|at| at.saturating_duration_since(now))
    }

    /// Removes and returns one event whose deadline is at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<T> {
        let now = self.ticks(now);
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, e))| e),
            _ => None,
        }
    }

    /// Keeps only the entries `keep` accepts: drops stale entries in one pass, so that lazy
    /// cancellation cannot let the heap grow with the connection rate.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.heap.retain(|Reverse((_, event))| keep(event));
    }

    /// Number of entries, stale ones included.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no entry is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let base = Instant::now();
        let mut timers = Timers::new(base);
        timers.schedule(base + Duration::from_secs(3), 'c');
        timers.schedule(base + Duration::from_secs(1), 'a');
        timers.schedule(base + Duration::from_secs(2), 'b');
        assert_eq!(timers.poll_timeout(base), Some(Duration::from_secs(1)));
        assert_eq!(timers.pop_expired(base), None);
        let later = base + Duration::from_secs(2);
        assert_eq!(timers.pop_expired(later), Some('a'));
        assert_eq!(timers.pop_expired(later), Some('b'));
        assert_eq!(timers.pop_expired(later), None);
        assert_eq!(timers.poll_timeout(later), Some(Duration::from_secs(1)));
        assert_eq!(timers.len(), 1);
    }

    #[test]
    fn retain_drops_stale_entries() {
        let base = Instant::now();
        let mut timers = Timers::new(base);
        for i in 0..10u32 {
            timers.schedule(base + Duration::from_secs(u64::from(i)), i);
        }
        timers.retain(|i| i % 2 == 1);
        assert_eq!(timers.len(), 5);
        assert_eq!(timers.pop_expired(base + Duration::from_secs(100)), Some(1));
    }

    #[test]
    fn overdue_deadline_gives_zero_timeout() {
        let base = Instant::now();
        let mut timers = Timers::new(base);
        assert_eq!(timers.poll_timeout(base), None);
        timers.schedule(base, 1u8);
        assert_eq!(
            timers.poll_timeout(base + Duration::from_secs(1)),
            Some(Duration::ZERO)
        );
    }
}
