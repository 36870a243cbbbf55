//! A datagram socket standing in for systemd's notify socket (`NOTIFY_SOCKET`), bound at a
//! path in a private temporary directory or at an abstract name; what the proxy sends is
//! read back as notifications, each a list of `KEY=VALUE` fields with its arrival time.

use super::peers::TempDir;
use std::ffi::OsString;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};
use std::process::Command;
use std::time::{Duration, Instant};

/// One datagram: its fields in order, and when it arrived.
#[derive(Debug, Clone)]
pub struct Notification {
    pub fields: Vec<(String, String)>,
    pub at: Instant,
}

impl Notification {
    /// The value of `key`, if the datagram has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True when `key=value` is one of the fields.
    pub fn has(&self, key: &str, value: &str) -> bool {
        self.get(key) == Some(value)
    }
}

/// The stand-in for systemd.
pub struct FakeSystemd {
    socket: UnixDatagram,
    notify_socket: OsString,
    _dir: Option<TempDir>,
}

impl FakeSystemd {
    /// Bound at a path (`NOTIFY_SOCKET=/tmp/…/notify`).
    pub fn at_path() -> FakeSystemd {
        let dir = TempDir::new("notify");
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        FakeSystemd::with(socket, path.into_os_string(), Some(dir))
    }

    /// Bound at an abstract name (`NOTIFY_SOCKET=@…`).
    pub fn abstract_name() -> FakeSystemd {
        let name = format!(
            "ringproxy-test-notify-{}-{:?}",
            std::process::id(),
            Instant::now()
        );
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).expect("bind the abstract notify socket");
        FakeSystemd::with(socket, format!("@{name}").into(), None)
    }

    fn with(socket: UnixDatagram, notify_socket: OsString, dir: Option<TempDir>) -> FakeSystemd {
        FakeSystemd {
            socket,
            notify_socket,
            _dir: dir,
        }
    }

    /// Sets `NOTIFY_SOCKET` for `cmd` and clears the watchdog variables (the test's own
    /// environment may have them); a test sets those it wants after this.
    pub fn environ<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("NOTIFY_SOCKET", &self.notify_socket)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
    }

    /// The next notification, if one arrives within `within`.
    pub fn next(&self, within: Duration) -> Option<Notification> {
        let timeout = within.max(Duration::from_millis(1));
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0; 65536];
        let n = self.socket.recv(&mut buf).ok()?;
        let at = Instant::now();
        let text = String::from_utf8(buf[..n].to_vec()).expect("notifications are UTF-8");
        let fields = text
            .lines()
            .map(|line| {
                let (k, v) = line
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not KEY=VALUE: {line:?} in {text:?}"));
                (k.to_string(), v.to_string())
            })
            .collect();
        Some(Notification { fields, at })
    }

    /// Reads notifications until one matches `pred`; returns it and those read before it.
    /// Panics, showing them, if none matches within `within`.
    pub fn wait_for(
        &self,
        mut pred: impl FnMut(&Notification) -> bool,
        within: Duration,
    ) -> (Notification, Vec<Notification>) {
        let deadline = Instant::now() + within;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(n) if pred(&n) => return (n, before),
                Some(n) => before.push(n),
                None => panic!("no matching notification within {within:?}; got {before:#?}"),
            }
        }
    }

    /// Every notification that arrives within `within` (it waits that long).
    pub fn all_within(&self, within: Duration) -> Vec<Notification> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while let Some(n) = self.next(deadline.saturating_duration_since(Instant::now())) {
            got.push(n);
            if Instant::now() >= deadline {
                break;
            }
        }
        got
    }
}
