//! Bandwidth limits of a pair: a token bucket per direction (`upload_rate` for client →
//! upstream, `download_rate` for upstream → client) whose burst is about one second of the
//! rate. A direction out of tokens simply is not read (the ring's backpressure and TCP flow
//! control slow the sender), and one wake-up at a time brings it back when tokens are.

use super::{Action, Actions, ConnectPolicy, Flow, PairTimer, Side, Stream};
use crate::buffer::Buffer;
use crate::limits::TokenBucket;
use std::time::{Duration, Instant};

/// The share of a second's tokens a held-back direction waits for before it reads again, so
/// wake-ups are at most about 50 a second per direction whatever the rate.
const WAKE_SHARE: f64 = 0.02;

/// The buckets of a pair's limited directions.
#[derive(Debug)]
pub(super) struct Rates {
    /// Client → upstream.
    up: Option<TokenBucket>,
    /// Upstream → client.
    down: Option<TokenBucket>,
    /// A `Rate` wake-up is pending.
    armed: bool,
}

impl Rates {
    /// The buckets `policy` asks for, full at `now`; `None` when neither direction is limited.
    pub(super) fn new(policy: &ConnectPolicy, now: Instant) -> Option<Rates> {
        let bucket = |rate: Option<usize>| {
            rate.map(|r| {
                let per_second = r as f64;
                TokenBucket::new(per_second, per_second.max(1.0), now)
            })
        };
        let (up, down) = (bucket(policy.upload_rate), bucket(policy.download_rate));
        (up.is_some() || down.is_some()).then_some(Rates {
            up,
            down,
            armed: false,
        })
    }

    fn bucket(&mut self, source: Side) -> Option<&mut TokenBucket> {
        match source {
            Side::Client => self.up.as_mut(),
            Side::Upstream => self.down.as_mut(),
        }
    }
}

impl<S: Stream, B: Buffer> super::Pair<S, B> {
    fn rates(&mut self) -> Option<&mut Rates> {
        self.extra.as_mut()?.rates.as_mut()
    }

    /// Bytes the direction from `source` may read now (unlimited without a bucket).
    pub(super) fn allowance(&mut self, source: Side, now: Instant) -> usize {
        match self.rates().and_then(|r| r.bucket(source)) {
            Some(bucket) => bucket.available(now).min(usize::MAX as u64) as usize,
            None => usize::MAX,
        }
    }

    /// The direction from `source` read `n` bytes.
    pub(super) fn spend(&mut self, source: Side, n: usize) {
        if n > 0
            && let Some(bucket) = self.rates().and_then(|r| r.bucket(source))
        {
            bucket.spend(n as u64);
        }
    }

    /// After a pump: a direction that would read but has no tokens asks (once) to be woken
    /// when enough are back.
    pub(super) fn rate_wait(&mut self, now: Instant, out: &mut Actions<S>) {
        let waiting = |flow: Flow, readable: bool| flow == Flow::Open && readable;
        let up_waits = waiting(
            self.to_upstream.flow(),
            self.client.readable || self.client.read_closed,
        );
        let down_waits = self
            .upstream
            .as_ref()
            .is_some_and(|u| waiting(self.to_client.flow(), u.readable || u.read_closed));
        let Some(rates) = self.rates().filter(|r| !r.armed) else {
            return;
        };
        let mut at: Option<Instant> = None;
        for (waits, bucket) in [
            (up_waits, rates.up.as_mut()),
            (down_waits, rates.down.as_mut()),
        ] {
            let Some(bucket) = bucket.filter(|_| waits) else {
                continue;
            };
            if bucket.available(now) > 0 {
                continue;
            }
            let want = ((bucket.rate() * WAKE_SHARE) as u64).max(1);
            let ready = bucket.ready_at(want).max(now + Duration::from_millis(1));
            at = Some(at.map_or(ready, |t| t.min(ready)));
        }
        if let Some(at) = at {
            rates.armed = true;
            out.push_back(Action::Wake(at, PairTimer::Rate));
        }
    }

    /// A `Rate` wake-up: pump again (the readiness seen before is still remembered).
    pub(super) fn rate_woken(&mut self, out: &mut Actions<S>) {
        if let Some(rates) = self.rates() {
            rates.armed = false;
        }
        out.push_back(Action::Yield);
    }
}
