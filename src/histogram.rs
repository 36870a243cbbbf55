//! A cumulative histogram with fixed bucket bounds, as Prometheus reads one: observations
//! only add, so `_count`, `_sum` and every bucket only ever grow between scrapes.
//!
//! Invariants: `bounds` are increasing and at most [`MAX_BUCKETS`] long; `counts[i]` counts
//! observations `≤ bounds[i]` and above the previous bound (not cumulative; rendering adds
//! them up), so `count` is the sum of `counts` plus the observations above the last bound.
//! No allocation: the counts are a fixed array, so a histogram lives in a loop's state and
//! is copied into each snapshot.

/// Most finite buckets a histogram may have.
pub const MAX_BUCKETS: usize = 16;

/// Seconds from 0.5 ms to 10 s, for connect times.
pub const CONNECT_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Seconds from 1 ms to 1 h, for connection lifetimes.
pub const DURATION_BOUNDS: &[f64] = &[
    0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

/// Fill ratios of a ring or pipe holding storage.
pub const OCCUPANCY_BOUNDS: &[f64] = &[0.25, 0.5, 0.75, 0.99, 1.0];

/// Counts of observations by bucket, their sum and their number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: [u64; MAX_BUCKETS],
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (increasing; at most [`MAX_BUCKETS`], extra bounds
    /// are ignored).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds: &bounds[..bounds.len().min(MAX_BUCKETS)],
            counts: [0; MAX_BUCKETS],
            sum: 0.0,
            count: 0,
        }
    }

    /// Records one value (a NaN counts in `+Inf` only and adds nothing to the sum).
    pub fn observe(&mut self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|&bound| value <= bound) {
            self.counts[i] += 1;
        }
        if !value.is_nan() {
            self.sum += value;
        }
        self.count += 1;
    }

    /// Adds `other`'s observations (same bounds; a histogram over other bounds adds only
    /// its count and sum).
    pub fn add(&mut self, other: &Histogram) {
        if self.bounds == other.bounds {
            for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
                *mine += theirs;
            }
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// Each finite bound with the number of observations at or below it (cumulative).
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut total = 0u64;
        self.bounds.iter().zip(self.counts).map(move |(&bound, n)| {
            total += n;
            (bound, total)
        })
    }

    /// The sum of every value observed.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// How many values were observed (the `+Inf` bucket).
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inf_counts_everything() {
        let mut h = Histogram::new(&[1.0, 2.0]);
        for v in [0.5, 1.0, 1.5, 3.0] {
            h.observe(v);
        }
        assert_eq!(h.cumulative().collect::<Vec<_>>(), [(1.0, 2), (2.0, 3)]);
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), 6.0);
    }

    #[test]
    fn adding_keeps_everything_monotonic() {
        let mut a = Histogram::new(CONNECT_BOUNDS);
        let mut b = Histogram::new(CONNECT_BOUNDS);
        a.observe(0.002);
        b.observe(0.2);
        b.observe(20.0);
        let before: Vec<_> = a.cumulative().collect();
        a.add(&b);
        for ((_, old), (_, new)) in before.iter().zip(a.cumulative()) {
            assert!(new >= *old);
        }
        assert_eq!(a.count(), 3);
        assert_eq!(a.cumulative().last(), Some((10.0, 2)));
    }

    #[test]
    fn nan_counts_only_in_inf() {
        let mut h = Histogram::new(OCCUPANCY_BOUNDS);
        h.observe(f64::NAN);
        assert_eq!(h.count(), 1);
        assert_eq!(h.sum(), 0.0);
        assert!(h.cumulative().all(|(_, n)| n == 0));
    }
}
