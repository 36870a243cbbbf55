//! Refused clients in the process log: one line when a burst of refusals starts and one
//! summary when it is over (a housekeeping tick without a new refusal), never a line per
//! refusal, so a flood of denied clients cannot flood stderr. Counting per route and reason
//! (metrics) and the access-log line per refusal are done by the loop.

use crate::endpoint::Client;
use crate::error::CloseReason;
use log::info;
use std::time::Instant;

/// A run of refusals with no quiet housekeeping tick between them.
#[derive(Debug)]
struct Burst {
    started: Instant,
    denied: u64,
    limited: u64,
    /// A refusal came since the last tick.
    recent: bool,
}

/// The refusal bursts of one loop.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    burst: Option<Burst>,
}

impl Refusals {
    /// A client from `client` was refused on `route` for `reason` at `now`.
    pub fn note(&mut self, route: &str, client: Client, reason: CloseReason, now: Instant) {
        let burst = self.burst.get_or_insert_with(|| {
            info!(
                "refusing clients on route {route}: first {client} ({reason}); \
                 a summary follows when refusals stop"
            );
            Burst {
                started: now,
                denied: 0,
                limited: 0,
                recent: false,
            }
        });
        burst.recent = true;
        match reason {
            CloseReason::Denied => burst.denied += 1,
            _ => burst.limited += 1,
        }
    }

    /// A housekeeping tick: a burst with no refusal since the last tick is over.
    pub fn tick(&mut self, now: Instant) {
        let Some(burst) = self.burst.as_mut() else {
            return;
        };
        if burst.recent {
            burst.recent = false;
            return;
        }
        let lasted = now.saturating_duration_since(burst.started);
        info!(
            "refusals stopped: {} denied and {} limited in {}",
            burst.denied,
            burst.limited,
            crate::display::Secs(lasted)
        );
        self.burst = None;
    }
}
