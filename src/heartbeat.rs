//! Whether every loop of the process is still turning: each loop stamps its slot once a
//! turn (one relaxed atomic store), and the watchdog asks how long ago the stalest loop
//! turned. A loop that has stopped for good is retired and no longer counts.
//!
//! Times are microseconds since the board's epoch (one `AtomicU64` per loop); `now` is
//! always passed in, so the arithmetic is tested with a virtual clock. Loops wait at most
//! [`Heartbeats::max_wait`] in their poll, so an idle loop still turns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A retired loop's stamp: it no longer counts.
const RETIRED: u64 = u64::MAX;

/// One heartbeat slot per loop, and the longest a loop may wait in its poll.
#[derive(Debug)]
pub struct Heartbeats {
    epoch: Instant,
    beats: Box<[AtomicU64]>,
    /// The longest poll wait in microseconds; 0 means unbounded.
    max_wait: AtomicU64,
}

impl Heartbeats {
    /// `loops` slots, each stamped at `epoch` (a loop counts as alive from the start).
    pub fn new(loops: usize, epoch: Instant) -> Heartbeats {
        Heartbeats {
            epoch,
            beats: (0..loops).map(|_| AtomicU64::new(0)).collect(),
            max_wait: AtomicU64::new(0),
        }
    }

    /// Loop `index` turned at `now`.
    pub fn beat(&self, index: usize, now: Instant) {
        if let Some(slot) = self.beats.get(index) {
            slot.store(self.micros(now), Ordering::Relaxed);
        }
    }

    /// Loop `index` has stopped for good: it no longer holds the others back.
    pub fn retire(&self, index: usize) {
        if let Some(slot) = self.beats.get(index) {
            slot.store(RETIRED, Ordering::Relaxed);
        }
    }

    /// How long ago, at `now`, the loop that turned least recently turned; zero when every
    /// loop is retired (or there are none).
    pub fn stalest(&self, now: Instant) -> Duration {
        let now = self.micros(now);
        let oldest = self
            .beats
            .iter()
            .map(|slot| slot.load(Ordering::Relaxed))
            .filter(|&at| at != RETIRED)
            .min()
            .unwrap_or(now);
        Duration::from_micros(now.saturating_sub(oldest))
    }

    /// True when every loop that still runs has turned within `window` before `now`.
    pub fn all_within(&self, now: Instant, window: Duration) -> bool {
        self.stalest(now) < window
    }

    /// Bounds every loop's poll wait to `wait` (at least a millisecond, so that a tiny
    /// bound never becomes a busy loop).
    pub fn bound_wait(&self, wait: Duration) {
        let micros = wait.max(Duration::from_millis(1)).as_micros();
        self.max_wait
            .store(u64::try_from(micros).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The longest a loop may wait in its poll, if bounded.
    pub fn max_wait(&self) -> Option<Duration> {
        match self.max_wait.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    /// `timeout` (a loop's own poll timeout, `None` = forever) shortened to the bound.
    pub fn bounded(&self, timeout: Option<Duration>) -> Option<Duration> {
        match (timeout, self.max_wait()) {
            (Some(t), Some(max)) => Some(t.min(max)),
            (t, max) => t.or(max),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        let micros = at.saturating_duration_since(self.epoch).as_micros();
        // Clear of the retired mark even after half a million years.
        u64::try_from(micros)
            .unwrap_or(RETIRED - 1)
            .min(RETIRED - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_stalest_loop_decides() {
        let t0 = Instant::now();
        let beats = Heartbeats::new(2, t0);
        assert_eq!(
            beats.stalest(t0 + 30 * MS),
            30 * MS,
            "both count from the start"
        );
        beats.beat(0, t0 + 25 * MS);
        assert_eq!(beats.stalest(t0 + 30 * MS), 30 * MS, "loop 1 never turned");
        beats.beat(1, t0 + 28 * MS);
        assert_eq!(beats.stalest(t0 + 30 * MS), 5 * MS);
        assert!(beats.all_within(t0 + 30 * MS, 6 * MS));
        assert!(
            !beats.all_within(t0 + 30 * MS, 5 * MS),
            "the window is exclusive"
        );
    }

    #[test]
    fn a_retired_loop_no_longer_counts() {
        let t0 = Instant::now();
        let beats = Heartbeats::new(2, t0);
        beats.beat(0, t0 + 100 * MS);
        beats.retire(1);
        assert_eq!(beats.stalest(t0 + 110 * MS), 10 * MS);
        beats.retire(0);
        assert_eq!(beats.stalest(t0 + 500 * MS), Duration::ZERO);
        assert!(beats.all_within(t0 + 500 * MS, MS));
    }

    #[test]
    fn a_time_before_the_epoch_or_a_slot_out_of_range_is_harmless() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let beats = Heartbeats::new(1, t0);
        beats.beat(0, t0 - MS);
        beats.beat(7, t0);
        beats.retire(7);
        assert_eq!(beats.stalest(t0 - 5 * MS), Duration::ZERO);
    }

    #[test]
    fn the_poll_wait_is_bounded_only_once_asked() {
        let beats = Heartbeats::new(1, Instant::now());
        assert_eq!(beats.bounded(None), None);
        assert_eq!(beats.bounded(Some(5 * MS)), Some(5 * MS));
        beats.bound_wait(20 * MS);
        assert_eq!(beats.bounded(None), Some(20 * MS));
        assert_eq!(beats.bounded(Some(5 * MS)), Some(5 * MS));
        assert_eq!(beats.bounded(Some(50 * MS)), Some(20 * MS));
        beats.bound_wait(Duration::from_micros(3));
        assert_eq!(beats.max_wait(), Some(MS), "never a busy loop");
    }
}
