//! systemd's watchdog: `WATCHDOG=1` every half period, sent only while every loop has
//! turned within that half period, so that a wedged loop gets the service restarted.
//!
//! The decision ([`Watchdog::decide`]) is pure, with the heartbeats and `now` passed in;
//! [`spawn`] runs it on a thread of its own. Loops wait at most [`Watchdog::loop_wait`] in
//! their poll, so an idle loop still turns in time.

use super::{Message, Notifier};
use crate::heartbeat::Heartbeats;
use log::{info, warn};
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The shortest ping interval, whatever `WATCHDOG_USEC` says.
const MIN_INTERVAL: Duration = Duration::from_millis(2);

/// What to do at a ping's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    /// Every loop turned recently: send `WATCHDOG=1`.
    Send,
    /// The stalest loop last turned this long ago: send nothing.
    Withhold(Duration),
}

/// The watchdog's timing, from systemd's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watchdog {
    period: Duration,
}

impl Watchdog {
    /// For `WATCHDOG_USEC` = `period`.
    pub fn new(period: Duration) -> Watchdog {
        Watchdog { period }
    }

    /// Between two pings: half the period.
    pub fn interval(&self) -> Duration {
        (self.period / 2).max(MIN_INTERVAL)
    }

    /// The longest a loop may wait in its poll: half the interval, so that an idle loop
    /// turns at least twice between pings.
    pub fn loop_wait(&self) -> Duration {
        self.interval() / 2
    }

    /// Whether to ping at `now`: only if every loop turned within the last interval.
    pub fn decide(&self, heartbeats: &Heartbeats, now: Instant) -> Ping {
        let stalest = heartbeats.stalest(now);
        if stalest < self.interval() {
            Ping::Send
        } else {
            Ping::Withhold(stalest)
        }
    }
}

/// The running watchdog thread.
pub struct Running {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Running {
    /// Stops the thread and waits for it.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Starts pinging through `notifier` if systemd asked for a watchdog (`None` otherwise),
/// after bounding every loop's poll wait in `heartbeats`.
pub fn spawn(
    notifier: &Arc<Notifier>,
    heartbeats: &Arc<Heartbeats>,
) -> io::Result<Option<Running>> {
    let Some(period) = notifier.watchdog() else {
        return Ok(None);
    };
    let watchdog = Watchdog::new(period);
    heartbeats.bound_wait(watchdog.loop_wait());
    let (stop, stopped) = mpsc::channel();
    let (notifier, heartbeats) = (Arc::clone(notifier), Arc::clone(heartbeats));
    let thread = thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let mut withheld = false;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(watchdog.interval()) {
                match watchdog.decide(&heartbeats, Instant::now()) {
                    Ping::Send => {
                        if withheld {
                            info!("every loop turns again: watchdog pings resume");
                            withheld = false;
                        }
                        notifier.notify(&Message::new().watchdog());
                    }
                    Ping::Withhold(stalest) if !withheld => {
                        warn!("a loop has not turned for {stalest:?}: watchdog pings withheld");
                        withheld = true;
                    }
                    Ping::Withhold(_) => {}
                }
            }
        })?;
    Ok(Some(Running { stop, thread }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn pings_come_every_half_period_and_loops_turn_twice_as_often() {
        let w = Watchdog::new(Duration::from_secs(10));
        assert_eq!(w.interval(), Duration::from_secs(5));
        assert_eq!(w.loop_wait(), Duration::from_millis(2500));
        let tiny = Watchdog::new(Duration::from_micros(1));
        assert_eq!(tiny.interval(), MIN_INTERVAL, "never a busy thread");
        assert!(tiny.loop_wait() > Duration::ZERO);
    }

    #[test]
    fn a_ping_only_while_every_loop_turned_within_the_interval() {
        let t0 = Instant::now();
        let beats = Heartbeats::new(2, t0);
        let w = Watchdog::new(200 * MS);
        beats.beat(0, t0 + 100 * MS);
        beats.beat(1, t0 + 150 * MS);
        assert_eq!(w.decide(&beats, t0 + 199 * MS), Ping::Send);
        assert_eq!(
            w.decide(&beats, t0 + 200 * MS),
            Ping::Withhold(100 * MS),
            "loop 0 is as old as the interval"
        );
        beats.beat(0, t0 + 210 * MS);
        assert_eq!(w.decide(&beats, t0 + 240 * MS), Ping::Send);
        assert_eq!(w.decide(&beats, t0 + 400 * MS), Ping::Withhold(250 * MS));
        beats.retire(1);
        beats.retire(0);
        assert_eq!(
            w.decide(&beats, t0 + 900 * MS),
            Ping::Send,
            "loops that stopped for good hold nothing back"
        );
    }
}
