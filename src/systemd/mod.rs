//! Telling systemd how the service is doing (`sd_notify`), by hand over a Unix datagram
//! socket: no libsystemd. Without `NOTIFY_SOCKET` every call is a no-op.
//!
//! The process sends `READY=1` once every listener is up and signals are handled;
//! `RELOADING=1` with `MONOTONIC_USEC=` on SIGHUP, then `STATUS=` and `READY=1` once the
//! reload is applied or refused; `STOPPING=1` when a drain starts; and, with
//! `WATCHDOG_USEC`, `WATCHDOG=1` every half period while every loop turns ([`watchdog`]).
//! [`Environment::from_vars`] reads the variables (pure); [`Message`] formats a datagram.

pub mod message;
pub mod watchdog;

pub use message::Message;

use log::{debug, warn};
use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long sending one notification may block.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// What the environment asks for: where to send notifications, and the watchdog period.
#[derive(Debug)]
pub struct Environment {
    /// `NOTIFY_SOCKET`: a path, or an abstract name (`@name`).
    pub socket: Option<UnixAddr>,
    /// `WATCHDOG_USEC`, when `WATCHDOG_PID` is unset or names this process.
    pub watchdog: Option<Duration>,
    /// Variables that were set but could not be used, each said in one line.
    pub problems: Vec<String>,
}

impl Environment {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (`pid`: this process).
    pub fn from_vars(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&OsStr>,
        watchdog_pid: Option<&OsStr>,
        pid: u32,
    ) -> Environment {
        let mut problems = Vec::new();
        let socket =
            notify_socket.and_then(|value| parse_socket(value).map_err(|e| problems.push(e)).ok());
        let ours = match watchdog_pid.map(|v| v.to_str().and_then(|v| v.parse::<u32>().ok())) {
            None => true,
            Some(Some(p)) => p == pid,
            Some(None) => {
                problems.push(format!(
                    "WATCHDOG_PID={}: not a process id; no watchdog pings",
                    watchdog_pid.unwrap_or_default().to_string_lossy()
                ));
                false
            }
        };
        let period = watchdog_usec.and_then(|value| {
            match value.to_str().and_then(|v| v.parse::<u64>().ok()) {
                Some(usec) if usec > 0 => Some(Duration::from_micros(usec)),
                _ => {
                    problems.push(format!(
                        "WATCHDOG_USEC={}: not a positive number of microseconds; no watchdog \
                         pings",
                        value.to_string_lossy()
                    ));
                    None
                }
            }
        });
        Environment {
            watchdog: period.filter(|_| ours && socket.is_some()),
            socket,
            problems,
        }
    }
}

/// `NOTIFY_SOCKET`'s address: an absolute path, or `@` and an abstract name.
pub fn parse_socket(value: &OsStr) -> Result<UnixAddr, String> {
    let bytes = value.as_bytes();
    let parsed = match bytes.first() {
        Some(b'/') => UnixAddr::from_pathname(value),
        Some(b'@') => UnixAddr::from_abstract_name(&bytes[1..]),
        _ => {
            return Err(format!(
                "NOTIFY_SOCKET={}: only a path or an abstract name (@NAME) is supported; no \
                 notifications",
                value.to_string_lossy()
            ));
        }
    };
    parsed.map_err(|e| {
        format!(
            "NOTIFY_SOCKET={}: {e}; no notifications",
            value.to_string_lossy()
        )
    })
}

/// Sends notifications to systemd, from any thread.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, UnixAddr)>,
    watchdog: Option<Duration>,
    /// A send failed and the failure was logged: the next ones are logged at debug.
    failing: AtomicBool,
}

impl Notifier {
    /// From the process environment; problems with it are logged, once.
    pub fn from_env() -> Notifier {
        let var = |name| std::env::var_os(name);
        let env = Environment::from_vars(
            var("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        );
        for problem in &env.problems {
            warn!("{problem}");
        }
        Notifier::new(env)
    }

    /// For `env`; a socket that cannot be created is logged and means no notifications.
    pub fn new(env: Environment) -> Notifier {
        let target = env.socket.and_then(|addr| {
            let socket = UnixDatagram::unbound()
                .and_then(|s| s.set_write_timeout(Some(SEND_TIMEOUT)).map(|()| s));
            match socket {
                Ok(socket) => Some((socket, addr)),
                Err(e) => {
                    warn!("cannot create a socket to notify systemd: {e}; no notifications");
                    None
                }
            }
        });
        Notifier {
            watchdog: env.watchdog.filter(|_| target.is_some()),
            target,
            failing: AtomicBool::new(false),
        }
    }

    /// The watchdog period systemd asked for, if pings are ours to send.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// True when notifications go somewhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `message` as one datagram; a failure is logged (at warn the first time after
    /// a success) and otherwise ignored: systemd's view is not worth stopping for.
    pub fn notify(&self, message: &Message) {
        let Some((socket, addr)) = &self.target else {
            return;
        };
        match socket.send_to_addr(message.as_bytes(), addr) {
            Ok(_) => self.failing.store(false, Ordering::Relaxed),
            Err(e) if self.failing.swap(true, Ordering::Relaxed) => {
                debug!("cannot notify systemd: {e}")
            }
            Err(e) => warn!("cannot notify systemd: {e}"),
        }
    }
}

/// `CLOCK_MONOTONIC` now, the clock systemd compares `MONOTONIC_USEC` with.
pub fn monotonic_now() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn a_path_or_an_abstract_name() {
        let path = parse_socket(os("/run/systemd/notify")).unwrap();
        assert_eq!(path.as_pathname(), Some(Path::new("/run/systemd/notify")));
        let name = parse_socket(os("@sd-notify/1")).unwrap();
        assert_eq!(name.as_abstract_name(), Some(&b"sd-notify/1"[..]));
        for bad in ["", "relative/path", "vsock:2:1234"] {
            let e = parse_socket(os(bad)).unwrap_err();
            assert!(e.starts_with(&format!("NOTIFY_SOCKET={bad}:")), "{e}");
        }
        let long = format!("/{}", "x".repeat(200));
        assert!(parse_socket(os(&long)).is_err(), "longer than sun_path");
    }

    #[test]
    fn no_socket_means_nothing_at_all() {
        let env = Environment::from_vars(None, Some(os("1000000")), None, 7);
        assert!(env.socket.is_none());
        assert_eq!(
            env.watchdog, None,
            "no pings without somewhere to send them"
        );
        assert!(env.problems.is_empty());
    }

    #[test]
    fn the_watchdog_is_ours_unless_another_pid_is_named() {
        let sock = Some(os("/run/notify"));
        let mine = Environment::from_vars(sock, Some(os("4000000")), None, 7);
        assert_eq!(mine.watchdog, Some(Duration::from_secs(4)));
        let named = Environment::from_vars(sock, Some(os("4000000")), Some(os("7")), 7);
        assert_eq!(named.watchdog, Some(Duration::from_secs(4)));
        let other = Environment::from_vars(sock, Some(os("4000000")), Some(os("8")), 7);
        assert_eq!(other.watchdog, None);
        assert!(other.problems.is_empty(), "another pid is no problem");
        assert!(other.socket.is_some(), "notifications still go");
    }

    #[test]
    fn unusable_values_are_said_and_ignored() {
        let sock = Some(os("/run/notify"));
        for usec in ["0", "-1", "soon", ""] {
            let env = Environment::from_vars(sock, Some(os(usec)), None, 7);
            assert_eq!(env.watchdog, None, "{usec}");
            assert!(
                env.problems[0].starts_with("WATCHDOG_USEC="),
                "{:?}",
                env.problems
            );
        }
        let env = Environment::from_vars(sock, Some(os("100")), Some(os("me")), 7);
        assert_eq!(env.watchdog, None);
        assert!(env.problems[0].starts_with("WATCHDOG_PID=me"));
    }

    #[test]
    fn a_notifier_without_a_socket_sends_nothing() {
        let notifier = Notifier::new(Environment::from_vars(None, None, None, 1));
        assert!(!notifier.is_enabled());
        notifier.notify(&Message::new().ready());
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_now();
        let b = monotonic_now();
        assert!(a > Duration::ZERO && b >= a);
    }
}
