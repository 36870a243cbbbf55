//! Server health as pure state machines, with time passed in.
//!
//! [`Passive`] follows nginx's `max_fails`/`fail_timeout`: `max_fails` failed connects within
//! `fail_timeout` make a server unavailable for `fail_timeout`. [`Active`] follows HAProxy's
//! `check rise fall`: `fall` consecutive failed checks mark an up server down, `rise`
//! consecutive successes bring a down server back. Both report transitions so they can be
//! logged exactly once.

use std::time::{Duration, Instant};

/// Passive health settings (`--max-fails`, `--fail-timeout`); `max_fails == 0` disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassivePolicy {
    /// Failed connects within `fail_timeout` that make a server unavailable.
    pub max_fails: u32,
    /// The counting window and how long the server then stays unavailable.
    pub fail_timeout: Duration,
}

/// What passive health has seen of one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passive {
    fails: u32,
    window_start: Option<Instant>,
    unavailable_until: Option<Instant>,
}

impl Passive {
    /// Records a failed connect; returns `Some(until)` when this failure makes the server
    /// unavailable (a transition), `None` otherwise.
    pub fn record_failure(&mut self, policy: PassivePolicy, now: Instant) -> Option<Instant> {
        if policy.max_fails == 0 || !self.is_available(now) {
            return None;
        }
        let window_open = self
            .window_start
            .is_some_and(|start| now.saturating_duration_since(start) < policy.fail_timeout);
        if !window_open {
            self.window_start = Some(now);
            self.fails = 0;
        }
        self.fails += 1;
        if self.fails >= policy.max_fails {
            let until = now + policy.fail_timeout;
            self.unavailable_until = Some(until);
            self.fails = 0;
            self.window_start = None;
            return Some(until);
        }
        None
    }

    /// Records a successful connect: earlier failures are forgiven.
    pub fn record_success(&mut self) {
        self.fails = 0;
        self.window_start = None;
        self.unavailable_until = None;
    }

    /// True unless a recent run of failures made the server unavailable until after `now`.
    pub fn is_available(&self, now: Instant) -> bool {
        self.unavailable_until.is_none_or(|until| now >= until)
    }
}

/// Active health-check settings (`--health-rise`, `--health-fall`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivePolicy {
    /// Consecutive successful checks that bring a down server up.
    pub rise: u32,
    /// Consecutive failed checks that take an up server down.
    pub fall: u32,
}

/// What active checks have seen of one server. Servers start up, as in HAProxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    up: bool,
    /// Consecutive results that disagree with `up`.
    streak: u32,
}

impl Default for Active {
    fn default() -> Self {
        Active {
            up: true,
            streak: 0,
        }
    }
}

impl Active {
    /// Records one check result; returns `Some(new_state_is_up)` on a transition.
    pub fn record(&mut self, ok: bool, policy: ActivePolicy) -> Option<bool> {
        if ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.up { policy.fall } else { policy.rise };
        if self.streak >= needed {
            self.up = ok;
            self.streak = 0;
            return Some(ok);
        }
        None
    }

    /// Takes the state another worker's checks reached (the shared health board).
    pub fn force(&mut self, up: bool) {
        self.up = up;
        self.streak = 0;
    }

    /// True while checks say the server is up (always, without checks).
    pub fn is_up(&self) -> bool {
        self.up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn passive(max_fails: u32) -> PassivePolicy {
        PassivePolicy {
            max_fails,
            fail_timeout: 10 * SEC,
        }
    }

    #[test]
    fn one_failure_marks_unavailable_for_fail_timeout_by_default() {
        let t0 = Instant::now();
        let mut p = Passive::default();
        assert_eq!(p.record_failure(passive(1), t0), Some(t0 + 10 * SEC));
        assert!(!p.is_available(t0 + 9 * SEC));
        assert!(p.is_available(t0 + 10 * SEC));
    }

    #[test]
    fn failures_must_fall_within_the_window() {
        let t0 = Instant::now();
        let mut p = Passive::default();
        assert_eq!(p.record_failure(passive(3), t0), None);
        assert_eq!(p.record_failure(passive(3), t0 + 5 * SEC), None);
        // The window started at t0 and closed at t0+10s: counting starts again.
        assert_eq!(p.record_failure(passive(3), t0 + 11 * SEC), None);
        assert_eq!(p.record_failure(passive(3), t0 + 12 * SEC), None);
        assert!(p.is_available(t0 + 12 * SEC));
        let until = p.record_failure(passive(3), t0 + 13 * SEC);
        assert_eq!(until, Some(t0 + 23 * SEC));
        assert!(!p.is_available(t0 + 13 * SEC));
    }

    #[test]
    fn success_forgives_and_zero_max_fails_disables() {
        let t0 = Instant::now();
        let mut p = Passive::default();
        p.record_failure(passive(2), t0);
        p.record_success();
        assert_eq!(p.record_failure(passive(2), t0 + SEC), None);
        let mut off = Passive::default();
        for i in 0..10 {
            assert_eq!(off.record_failure(passive(0), t0 + i * SEC), None);
        }
        assert!(off.is_available(t0 + 10 * SEC));
    }

    #[test]
    fn failures_while_unavailable_do_not_extend_it() {
        let t0 = Instant::now();
        let mut p = Passive::default();
        p.record_failure(passive(1), t0);
        assert_eq!(p.record_failure(passive(1), t0 + 5 * SEC), None);
        assert!(p.is_available(t0 + 10 * SEC));
    }

    #[test]
    fn active_checks_fall_and_rise_on_consecutive_results() {
        let policy = ActivePolicy { rise: 2, fall: 3 };
        let mut a = Active::default();
        assert!(a.is_up());
        assert_eq!(a.record(false, policy), None);
        assert_eq!(a.record(false, policy), None);
        assert_eq!(
            a.record(true, policy),
            None,
            "a success breaks the failure streak"
        );
        assert_eq!(a.record(false, policy), None);
        assert_eq!(a.record(false, policy), None);
        assert_eq!(a.record(false, policy), Some(false));
        assert!(!a.is_up());
        assert_eq!(a.record(true, policy), None);
        assert_eq!(a.record(false, policy), None);
        assert_eq!(a.record(true, policy), None);
        assert_eq!(a.record(true, policy), Some(true));
        assert!(a.is_up());
    }
}
