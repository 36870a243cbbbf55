//! Token buckets and the rates that fill them, with time passed in.
//!
//! A bucket holds at most `burst` tokens and gains `rate` per second continuously; it
//! starts full. Taking tokens never drives it below zero.

use crate::settings::Kind;
use std::time::{Duration, Instant};
use toml::de::DeValue;

/// A bucket of tokens refilled at a constant rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens gaining `per_second` tokens a second, from `now`.
    pub fn new(per_second: f64, burst: f64, now: Instant) -> TokenBucket {
        debug_assert!(per_second > 0.0 && burst >= 1.0);
        TokenBucket {
            tokens: burst,
            rate: per_second,
            burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Whole tokens available at `now`.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens as u64
    }

    /// Takes `n` tokens if all are there; false (and nothing taken) otherwise.
    pub fn take(&mut self, n: u64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= n as f64 {
            self.tokens -= n as f64;
            true
        } else {
            false
        }
    }

    /// Spends `n` tokens that were used (at most what is available).
    pub fn spend(&mut self, n: u64) {
        self.tokens = (self.tokens - n as f64).max(0.0);
    }

    /// True when it is full at `now` (an idle client's bucket).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    /// Tokens gained per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When at least `n` whole tokens (at most the burst) will be there.
    pub fn ready_at(&self, n: u64) -> Instant {
        let want = (n as f64).min(self.burst);
        let missing = (want - self.tokens).max(0.0);
        self.last + Duration::from_secs_f64(missing / self.rate)
    }
}

/// `count` events per `per` (`10/s`, `30/m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events per period, at least 1.
    pub count: u32,
    /// The period: one second or one minute.
    pub per: Duration,
}

impl Rate {
    /// A bucket for this rate whose burst is one period's worth, full at `now`.
    pub fn bucket(self, now: Instant) -> TokenBucket {
        let per_second = f64::from(self.count) / self.per.as_secs_f64();
        TokenBucket::new(per_second, f64::from(self.count), now)
    }
}

/// Most events per period a rate may name.
const MAX_RATE_COUNT: u32 = 1_000_000;

/// The kind of a [`Rate`] setting: `N/s` or `N/m`, N from 1 to 1 000 000.
#[derive(Debug, Clone, Copy)]
pub struct RateKind;

impl Kind for RateKind {
    type Value = Rate;
    fn expected(&self) -> String {
        format!("a rate such as \"10/s\" or \"30/m\", from 1 to {MAX_RATE_COUNT} per period")
    }
    fn parse_flag(&self, s: &str) -> Option<Rate> {
        let (count, unit) = s.trim().split_once('/')?;
        let per = match unit {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            _ => return None,
        };
        let digits = !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit());
        let count = count.parse().ok().filter(|_| digits)?;
        Some(Rate { count, per }).filter(|r| self.check(r))
    }
    fn parse_toml(&self, v: &DeValue<'_>) -> Option<Rate> {
        v.as_str().and_then(|s| self.parse_flag(s))
    }
    fn check(&self, v: &Rate) -> bool {
        (1..=MAX_RATE_COUNT).contains(&v.count)
            && (v.per == Duration::from_secs(1) || v.per == Duration::from_secs(60))
    }
    fn show(&self, v: &Rate) -> String {
        let unit = if v.per == Duration::from_secs(60) {
            "m"
        } else {
            "s"
        };
        format!("{}/{unit}", v.count)
    }
    fn toml(&self, v: &Rate) -> Option<String> {
        Some(crate::settings::kinds::quote(&self.show(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_starts_full_refills_at_its_rate_and_caps_at_its_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 10.0, t0);
        for _ in 0..10 {
            assert!(b.take(1, t0));
        }
        assert!(!b.take(1, t0), "the burst is spent");
        assert_eq!(b.ready_at(1), t0 + Duration::from_millis(100));
        assert!(!b.take(1, t0 + Duration::from_millis(99)));
        assert!(b.take(1, t0 + Duration::from_millis(200)));
        assert_eq!(
            b.available(t0 + Duration::from_secs(60)),
            10,
            "capped at the burst"
        );
        assert!(b.is_full(t0 + Duration::from_secs(60)));
        b.spend(25);
        assert_eq!(
            b.available(t0 + Duration::from_secs(60)),
            0,
            "never below zero"
        );
    }

    #[test]
    fn rates_parse_and_make_one_period_bursts() {
        let k = RateKind;
        let ten = k.parse_flag("10/s").unwrap();
        assert_eq!(
            ten,
            Rate {
                count: 10,
                per: Duration::from_secs(1)
            }
        );
        let thirty = k.parse_flag("30/m").unwrap();
        let t0 = Instant::now();
        let mut b = thirty.bucket(t0);
        for _ in 0..30 {
            assert!(b.take(1, t0));
        }
        assert!(
            !b.take(1, t0 + Duration::from_millis(1999)),
            "one every 2 s after the burst"
        );
        assert!(b.take(1, t0 + Duration::from_millis(2000)));
        for bad in [
            "0/s",
            "10/h",
            "10",
            "/s",
            "-1/s",
            "1.5/s",
            "1000001/s",
            "10 /s",
        ] {
            assert_eq!(k.parse_flag(bad), None, "{bad}");
        }
        assert_eq!(k.show(&thirty), "30/m");
    }
}
