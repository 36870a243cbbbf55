//! When to ask again about a name, and which answer stands meanwhile: one [`Lookup`] per
//! name and record type, a pure state machine with time passed in.
//!
//! Rules (nginx `resolve` and HAProxy `resolvers` behave alike): an answer stands for its
//! TTL clamped to `[interval, max_ttl]`; on SERVFAIL, REFUSED, a timeout or a malformed
//! answer the last good answer is kept and the name is asked again after 1 s, doubling, at
//! most every 4 s, until an answer comes (a DNS outage must not empty a pool); on NXDOMAIN
//! the last good answer is kept for `hold` from the first NXDOMAIN of a run, then the name's
//! records are dropped. Invariant: `current` changes only on an answer or at the end of a
//! hold, and [`Lookup::next`] is always in the future of the last event.

use super::message::{Answer, Failure};
use std::time::{Duration, Instant};

/// The first retry after a failure; each further one doubles, up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between retries after failures.
pub const RETRY_MAX: Duration = Duration::from_secs(4);

/// The bounds of the schedule (`resolve_interval`, `resolve_max_ttl`, `resolve_hold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The shortest time an answer stands.
    pub interval: Duration,
    /// The longest time an answer stands.
    pub max_ttl: Duration,
    /// How long the last good answer outlives an NXDOMAIN.
    pub hold: Duration,
}

/// What a lookup's records are: addresses or SRV records, as the answer gave them.
pub trait Records: Clone + PartialEq + Default {
    /// The records of a good answer, if it is one of this kind.
    fn from_answer(answer: &Answer) -> Option<(Self, u32)>;
}

impl Records for Vec<std::net::IpAddr> {
    fn from_answer(answer: &Answer) -> Option<(Self, u32)> {
        match answer {
            Answer::Addrs { addrs, ttl } => Some((addrs.clone(), *ttl)),
            _ => None,
        }
    }
}

impl Records for Vec<super::message::SrvRecord> {
    fn from_answer(answer: &Answer) -> Option<(Self, u32)> {
        match answer {
            Answer::Srv { records, ttl } => Some((records.clone(), *ttl)),
            _ => None,
        }
    }
}

/// What happened to a lookup's records on an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// New records (the first answer, or different ones).
    Changed,
    /// The same records as before.
    Same,
    /// No answer; the last good one is kept. The reason, for the counters.
    Failed(&'static str),
}

/// One name and record type: the records that stand and when to ask again.
#[derive(Debug, Clone)]
pub struct Lookup<R> {
    /// The records in force (`None` before any good answer).
    current: Option<R>,
    next: Instant,
    failures: u32,
    nx_since: Option<Instant>,
}

impl<R: Records> Lookup<R> {
    /// A lookup to make at once.
    pub fn new(now: Instant) -> Lookup<R> {
        Lookup {
            current: None,
            next: now,
            failures: 0,
            nx_since: None,
        }
    }

    /// The records in force; empty before any answer.
    pub fn records(&self) -> R {
        self.current.clone().unwrap_or_default()
    }

    /// True once an answer (or the end of an NXDOMAIN hold) gave records, empty or not.
    pub fn answered(&self) -> bool {
        self.current.is_some()
    }

    /// When to ask again.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// Ask again at once (SIGHUP).
    pub fn refresh(&mut self, now: Instant) {
        self.next = now;
    }

    /// What the answer at `now` does to the records.
    pub fn on_answer(&mut self, answer: &Answer, now: Instant, bounds: &Bounds) -> Outcome {
        if let Some((records, ttl)) = R::from_answer(answer) {
            self.failures = 0;
            self.nx_since = None;
            self.next = now + clamp(ttl, bounds);
            return self.replace(records);
        }
        match answer {
            Answer::NxDomain { ttl } => {
                self.failures = 0;
                let since = *self.nx_since.get_or_insert(now);
                let end = since + bounds.hold;
                if now >= end {
                    self.next = now + clamp(*ttl, bounds);
                    // The hold is over: the name's records go.
                    return match self.replace(R::default()) {
                        Outcome::Same => Outcome::Failed("nxdomain"),
                        changed => changed,
                    };
                }
                self.next = (now + clamp(*ttl, bounds)).min(end);
                Outcome::Failed("nxdomain")
            }
            Answer::Failure(failure) => self.failed(*failure, now),
            // A good answer of the other kind cannot be the answer to this query.
            _ => self.failed(Failure::Malformed, now),
        }
    }

    fn failed(&mut self, failure: Failure, now: Instant) -> Outcome {
        let wait = RETRY_FIRST.saturating_mul(1 << self.failures.min(8));
        self.failures += 1;
        self.next = now + wait.min(RETRY_MAX);
        Outcome::Failed(failure.as_str())
    }

    fn replace(&mut self, records: R) -> Outcome {
        if self.current.as_ref() == Some(&records) {
            Outcome::Same
        } else {
            self.current = Some(records);
            Outcome::Changed
        }
    }
}

/// An answer's TTL within the bounds.
fn clamp(ttl: u32, bounds: &Bounds) -> Duration {
    Duration::from_secs(u64::from(ttl)).clamp(bounds.interval, bounds.max_ttl.max(bounds.interval))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    const BOUNDS: Bounds = Bounds {
        interval: Duration::from_secs(1),
        max_ttl: Duration::from_secs(300),
        hold: Duration::from_secs(30),
    };

    fn addrs(last: &[u8], ttl: u32) -> Answer {
        Answer::Addrs {
            addrs: last.iter().map(|&l| IpAddr::from([10, 0, 0, l])).collect(),
            ttl,
        }
    }

    #[test]
    fn an_answer_stands_for_its_clamped_ttl() {
        let t0 = Instant::now();
        let mut l: Lookup<Vec<IpAddr>> = Lookup::new(t0);
        assert_eq!(l.next(), t0, "asked at once");
        assert_eq!(
            l.on_answer(&addrs(&[1, 2], 60), t0, &BOUNDS),
            Outcome::Changed
        );
        assert_eq!(l.next(), t0 + Duration::from_secs(60));
        assert_eq!(l.records().len(), 2);
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(l.on_answer(&addrs(&[1, 2], 0), t1, &BOUNDS), Outcome::Same);
        assert_eq!(
            l.next(),
            t1 + Duration::from_secs(1),
            "at least the interval"
        );
        assert_eq!(
            l.on_answer(&addrs(&[3], 86_400), t1, &BOUNDS),
            Outcome::Changed
        );
        assert_eq!(l.next(), t1 + Duration::from_secs(300), "at most max_ttl");
        l.refresh(t1);
        assert_eq!(l.next(), t1);
    }

    #[test]
    fn failures_keep_the_last_answer_and_back_off_to_four_seconds() {
        let t0 = Instant::now();
        let mut l: Lookup<Vec<IpAddr>> = Lookup::new(t0);
        l.on_answer(&addrs(&[1], 5), t0, &BOUNDS);
        let mut now = t0;
        let mut waits = Vec::new();
        for failure in [
            Failure::Timeout,
            Failure::ServFail,
            Failure::Refused,
            Failure::Timeout,
        ] {
            let outcome = l.on_answer(&Answer::Failure(failure), now, &BOUNDS);
            assert_eq!(outcome, Outcome::Failed(failure.as_str()));
            waits.push((l.next() - now).as_secs());
            now = l.next();
        }
        assert_eq!(waits, [1, 2, 4, 4]);
        assert_eq!(l.records().len(), 1, "a DNS outage does not empty the pool");
        l.on_answer(&addrs(&[1], 5), now, &BOUNDS);
        l.on_answer(&Answer::Failure(Failure::Timeout), now, &BOUNDS);
        assert_eq!(
            l.next() - now,
            Duration::from_secs(1),
            "an answer resets the backoff"
        );
    }

    #[test]
    fn nxdomain_keeps_the_answer_for_the_hold_then_drops_it() {
        let t0 = Instant::now();
        let mut l: Lookup<Vec<IpAddr>> = Lookup::new(t0);
        l.on_answer(&addrs(&[1], 5), t0, &BOUNDS);
        let nx = Answer::NxDomain { ttl: 10 };
        let mut now = t0 + Duration::from_secs(5);
        assert_eq!(l.on_answer(&nx, now, &BOUNDS), Outcome::Failed("nxdomain"));
        assert_eq!(l.next(), now + Duration::from_secs(10));
        let mut asked = 0;
        while l.records().len() == 1 {
            now = l.next();
            let outcome = l.on_answer(&nx, now, &BOUNDS);
            asked += 1;
            assert!(asked < 10, "the hold ends");
            if outcome == Outcome::Changed {
                break;
            }
        }
        assert!(l.records().is_empty());
        assert_eq!(
            now,
            t0 + Duration::from_secs(35),
            "30 s after the first NXDOMAIN"
        );
        // An answer after that starts over.
        assert_eq!(l.on_answer(&addrs(&[2], 5), now, &BOUNDS), Outcome::Changed);
    }

    #[test]
    fn a_name_unknown_from_the_start_is_answered_empty_after_the_hold() {
        let t0 = Instant::now();
        let mut l: Lookup<Vec<IpAddr>> = Lookup::new(t0);
        let nx = Answer::NxDomain { ttl: 60 };
        assert_eq!(l.on_answer(&nx, t0, &BOUNDS), Outcome::Failed("nxdomain"));
        assert!(!l.answered());
        let end = t0 + Duration::from_secs(30);
        assert_eq!(l.next(), end);
        assert_eq!(l.on_answer(&nx, end, &BOUNDS), Outcome::Changed);
        assert!(l.answered() && l.records().is_empty());
    }
}
