//! What loops report to the process, so that process-wide lines are printed once with
//! process totals: how many connections a drain waits for, how a reload went, how a run
//! ended. Each loop answers for itself; the process adds the answers up ([`Draining::add`],
//! [`combine`], [`Ended::add`]) and prints the lines these types format.

use crate::error::StartError;
use std::fmt;
use std::time::Duration;

/// A drain has started: listeners are closed and `open` connections may finish for up to
/// `timeout`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Draining {
    /// Connections open when the listeners closed.
    pub open: usize,
    /// How long they get.
    pub timeout: Duration,
}

impl Draining {
    /// Adds another loop's drain (the timeouts agree; the longest is kept).
    pub fn add(&mut self, other: Draining) {
        self.open += other.open;
        self.timeout = self.timeout.max(other.timeout);
    }

    /// The line that says a drain started.
    pub fn line(&self) -> String {
        format!(
            "draining: listeners closed, waiting up to {} for {} connection(s)",
            crate::display::Secs(self.timeout),
            self.open
        )
    }
}

/// What the process serves, in one line (systemd's `STATUS=`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Serving {
    /// Routes in force.
    pub routes: usize,
    /// Distinct listen addresses.
    pub listeners: usize,
    /// Open connections.
    pub open: usize,
}

impl fmt::Display for Serving {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} route(s), {} listener(s), {} open connection(s)",
            self.routes, self.listeners, self.open
        )
    }
}

/// A loop applied a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// What changed: routes added, removed, changed; listeners opened, closed.
    pub changes: String,
    /// What the loop serves now.
    pub serving: Serving,
}

/// A loop's answer to a reload.
pub type ReloadReply = Result<Reloaded, StartError>;

/// The process's reload result from each worker's answer (`None`: it did not answer):
/// the first worker's changes with every worker's open connections, or one message naming
/// what failed where.
pub fn combine(answers: Vec<Option<ReloadReply>>) -> Result<Reloaded, String> {
    let total = answers.len();
    let mut reloaded: Option<Reloaded> = None;
    let mut failures = Vec::new();
    for (worker, answer) in answers.into_iter().enumerate() {
        match answer {
            Some(Ok(r)) => match reloaded.as_mut() {
                Some(first) => first.serving.open += r.serving.open,
                None => reloaded = Some(r),
            },
            Some(Err(e)) => failures.push((worker, e.to_string())),
            None => failures.push((worker, "did not answer".to_string())),
        }
    }
    match reloaded {
        Some(r) if failures.is_empty() => Ok(r),
        _ if total == 0 => Err("no worker to reload".to_string()),
        _ if failures.len() == total && failures.iter().all(|(_, e)| *e == failures[0].1) => {
            Err(failures.swap_remove(0).1)
        }
        reloaded => {
            let each: Vec<String> = failures
                .iter()
                .map(|(worker, e)| format!("worker {worker}: {e}"))
                .collect();
            let rest = if reloaded.is_some() {
                "; the other workers reloaded"
            } else {
                ""
            };
            Err(format!("{}{rest}", each.join("; ")))
        }
    }
}

/// How a loop's run ended, added up over the loops of the process.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// Loops that drained.
    pub drained: usize,
    /// Connections open when their drain started.
    pub open_at_drain: usize,
    /// Loops whose drain timeout passed.
    pub timed_out: usize,
    /// Connections cut at the drain timeout.
    pub cut_at_timeout: usize,
    /// Connections still open when the loop stopped (cut too, during a drain).
    pub closed_at_stop: usize,
}

impl Ended {
    /// Adds another loop's ending.
    pub fn add(&mut self, other: Ended) {
        self.drained += other.drained;
        self.open_at_drain += other.open_at_drain;
        self.timed_out += other.timed_out;
        self.cut_at_timeout += other.cut_at_timeout;
        self.closed_at_stop += other.closed_at_stop;
    }

    /// The closing lines: how the drain went, if there was one, then how many connections
    /// were open at the stop.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.drained > 0 {
            let cut = self.cut_at_timeout + self.closed_at_stop;
            let finished = self.open_at_drain.saturating_sub(cut);
            lines.push(if cut == 0 {
                format!("drained: {finished} connection(s) finished, none cut")
            } else if self.timed_out > 0 {
                format!("drain timeout: {finished} connection(s) finished, {cut} cut")
            } else {
                format!("drain stopped early: {finished} connection(s) finished, {cut} cut")
            });
        }
        lines.push(format!(
            "stopped; closed {} open connection(s)",
            self.closed_at_stop
        ));
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn reloaded(open: usize) -> Option<ReloadReply> {
        Some(Ok(Reloaded {
            changes: "1 route(s): 0 added".into(),
            serving: Serving {
                routes: 1,
                listeners: 2,
                open,
            },
        }))
    }

    fn failed(why: &str) -> Option<ReloadReply> {
        Some(Err(StartError::Setup {
            what: "open the access log",
            source: io::Error::other(why.to_string()),
        }))
    }

    #[test]
    fn drains_add_up_to_one_line() {
        let mut total = Draining::default();
        total.add(Draining {
            open: 1,
            timeout: Duration::from_secs(30),
        });
        total.add(Draining {
            open: 2,
            timeout: Duration::from_secs(30),
        });
        assert_eq!(
            total.line(),
            "draining: listeners closed, waiting up to 30.000s for 3 connection(s)"
        );
    }

    #[test]
    fn a_reload_that_every_worker_applied_counts_every_workers_connections() {
        let r = combine(vec![reloaded(2), reloaded(3)]).unwrap();
        assert_eq!(r.changes, "1 route(s): 0 added");
        assert_eq!(
            r.serving.to_string(),
            "1 route(s), 2 listener(s), 5 open connection(s)"
        );
    }

    #[test]
    fn the_same_failure_everywhere_is_said_once() {
        let e = combine(vec![failed("disk full"), failed("disk full")]).unwrap_err();
        assert_eq!(e, "cannot open the access log: disk full");
        assert_eq!(
            combine(vec![failed("x")]).unwrap_err(),
            "cannot open the access log: x"
        );
    }

    #[test]
    fn a_partial_reload_names_the_workers_that_failed() {
        let e = combine(vec![reloaded(0), None]).unwrap_err();
        assert_eq!(e, "worker 1: did not answer; the other workers reloaded");
        let e = combine(vec![failed("a"), failed("b")]).unwrap_err();
        assert_eq!(
            e,
            "worker 0: cannot open the access log: a; worker 1: cannot open the access log: b"
        );
        assert!(combine(vec![]).is_err());
    }

    #[test]
    fn a_clean_drain_cuts_none() {
        let mut ended = Ended::default();
        for open in [0, 1] {
            ended.add(Ended {
                drained: 1,
                open_at_drain: open,
                ..Ended::default()
            });
        }
        assert_eq!(
            ended.lines(),
            [
                "drained: 1 connection(s) finished, none cut",
                "stopped; closed 0 open connection(s)"
            ]
        );
    }

    #[test]
    fn a_drain_timeout_or_a_second_signal_counts_what_was_cut() {
        let mut ended = Ended {
            drained: 1,
            open_at_drain: 3,
            ..Ended::default()
        };
        ended.add(Ended {
            drained: 1,
            open_at_drain: 2,
            timed_out: 1,
            cut_at_timeout: 2,
            closed_at_stop: 0,
        });
        assert_eq!(
            ended.lines()[0],
            "drain timeout: 3 connection(s) finished, 2 cut"
        );
        let stopped = Ended {
            drained: 1,
            open_at_drain: 4,
            closed_at_stop: 1,
            ..Ended::default()
        };
        assert_eq!(
            stopped.lines(),
            [
                "drain stopped early: 3 connection(s) finished, 1 cut",
                "stopped; closed 1 open connection(s)"
            ]
        );
        let plain = Ended {
            closed_at_stop: 2,
            ..Ended::default()
        };
        assert_eq!(plain.lines(), ["stopped; closed 2 open connection(s)"]);
    }
}
