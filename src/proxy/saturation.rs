//! When a loop sits at `max_conns` with clients waiting in the listen backlog: a warning
//! when it starts, a reminder at most every [`REMIND_EVERY`] while it lasts, and a line when
//! it ends — never a line per waiting client. Pure: time is passed in.

use std::time::{Duration, Instant};

/// Least time between two lines about one stretch at `max_conns`.
pub const REMIND_EVERY: Duration = Duration::from_secs(10);

/// Whether the loop is at its limit: the current stretch at it, `None` while below it.
#[derive(Debug, Default)]
pub struct Saturation(Option<Stretch>);

/// One stretch at the limit.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    /// When it began.
    since: Instant,
    /// When the last line about it was logged.
    said: Instant,
}

/// A line to log about being at the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// The limit was just reached with clients waiting.
    Started,
    /// Still at the limit, for this long.
    Lasting(Duration),
    /// Below the limit again after this long at it.
    Ended(Duration),
}

impl Saturation {
    /// The loop is at the limit with clients waiting at `now`.
    pub fn full(&mut self, now: Instant) -> Option<Note> {
        let Some(stretch) = self.0.as_mut() else {
            self.0 = Some(Stretch {
                since: now,
                said: now,
            });
            return Some(Note::Started);
        };
        if now.saturating_duration_since(stretch.said) < REMIND_EVERY {
            return None;
        }
        stretch.said = now;
        Some(Note::Lasting(now.saturating_duration_since(stretch.since)))
    }

    /// The loop is below the limit at `now`.
    pub fn below(&mut self, now: Instant) -> Option<Note> {
        let stretch = self.0.take()?;
        Some(Note::Ended(now.saturating_duration_since(stretch.since)))
    }
}

#[cfg(test)]
mod tests {
    use super::{Note, REMIND_EVERY, Saturation};
    use std::time::{Duration, Instant};

    #[test]
    fn one_line_at_the_start_then_at_most_one_per_period_then_one_at_the_end() {
        let t0 = Instant::now();
        let mut s = Saturation::default();
        assert_eq!(s.below(t0), None);
        assert_eq!(s.full(t0), Some(Note::Started));
        let mut said = 0;
        for ms in (1..25_000).step_by(7) {
            if s.full(t0 + Duration::from_millis(ms)).is_some() {
                said += 1;
            }
        }
        assert_eq!(said, 2, "reminders at about 10 s and 20 s");
        let end = t0 + Duration::from_secs(30);
        assert_eq!(s.below(end), Some(Note::Ended(Duration::from_secs(30))));
        assert_eq!(s.below(end), None);
        assert_eq!(s.full(end + REMIND_EVERY), Some(Note::Started));
    }

    #[test]
    fn a_reminder_tells_how_long_it_lasted() {
        let t0 = Instant::now();
        let mut s = Saturation::default();
        s.full(t0);
        assert_eq!(s.full(t0 + Duration::from_secs(9)), None);
        assert_eq!(
            s.full(t0 + Duration::from_secs(12)),
            Some(Note::Lasting(Duration::from_secs(12)))
        );
    }
}
