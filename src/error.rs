//! Errors that end the program, and why a pair ended (which is not an error).
//!
//! `UsageError` maps to exit status 2, `StartError` to exit status 1. Both print as one line.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A bad command line: which flag, and what is wrong with it ("expected ..., got '...'").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// The flag at fault (or the bare argument).
    pub flag: String,
    /// What is wrong, usually "expected ..., got '...'".
    pub message: String,
}

impl UsageError {
    /// `flag` expects `expected` but was given `got` (or nothing).
    pub fn expected(flag: &str, expected: &str, got: Option<&str>) -> UsageError {
        let message = match got {
            Some(got) => format!("expected {expected}, got '{got}'"),
            None => format!("expected {expected}"),
        };
        UsageError {
            flag: flag.to_string(),
            message,
        }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.message)
    }
}

impl std::error::Error for UsageError {}

/// Why the proxy could not start.
#[derive(Debug)]
pub enum StartError {
    /// The listen address could not be bound (in use, not local, no permission).
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What `bind` or `listen` said.
        source: io::Error,
    },
    /// A Unix socket could not listen at its path: another process listens there, the
    /// file is not a socket, or binding, `chmod`, `chown` or `listen` failed.
    BindUnix {
        /// The socket file's path.
        path: std::path::PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// An operator's endpoint (the admin API) could not listen on its address.
    Serve {
        /// What it serves.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// What `bind` or `listen` said.
        source: io::Error,
    },
    /// An upstream name did not resolve to any address.
    Resolve {
        /// The name as configured (`host:port`).
        host: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// Creating the poller, registering a source or installing signal handlers failed.
    Setup {
        /// What was being done, as a verb phrase ("create the poller").
        what: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// The configuration breaks a rule [`crate::config::Config::validate`] checks.
    Invalid(crate::config::ConfigError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            StartError::BindUnix { path, source } => {
                write!(f, "cannot listen on unix:{}: {source}", path.display())
            }
            StartError::Serve { what, addr, source } => {
                write!(f, "cannot serve {what} on {addr}: {source}")
            }
            StartError::Resolve { host, source } => {
                write!(f, "cannot resolve upstream {host}: {source}")
            }
            StartError::Setup { what, source } => write!(f, "cannot {what}: {source}"),
            StartError::Invalid(why) => write!(f, "invalid configuration: {why}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Bind { source, .. }
            | StartError::BindUnix { source, .. }
            | StartError::Serve { source, .. }
            | StartError::Resolve { source, .. }
            | StartError::Setup { source, .. } => Some(source),
            StartError::Invalid(e) => Some(e),
        }
    }
}

/// How a pair ended; logged per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both directions finished; the client sent its FIN first.
    ClientClosed,
    /// Both directions finished; the upstream sent its FIN first.
    UpstreamClosed,
    /// The client reset the connection or a write to it failed.
    ClientReset,
    /// The upstream reset the connection or a write to it failed.
    UpstreamReset,
    /// No byte moved for the idle timeout.
    IdleTimeout,
    /// Every upstream tried refused, failed or timed out.
    ConnectFailed,
    /// The proxy stopped at once (a second signal, or a stop without drain).
    Shutdown,
    /// A graceful stop's drain timeout passed with the pair still open.
    Drained,
    /// The source may not send a PROXY header (`proxy_trusted`): closed before any byte
    /// was read.
    Untrusted,
    /// No valid PROXY header where one was required.
    BadProxyHeader,
    /// The PROXY header did not arrive within `proxy_timeout`.
    ProxyTimeout,
    /// The client closed before sending a byte where a PROXY header was required (a
    /// balancer's TCP probe): counted, but not written to the access log.
    Probe,
    /// Refused by `allow`/`deny`.
    Denied,
    /// Refused by a per-client limit (or a full client table).
    Limited,
    /// Closed gracefully at `max_lifetime`.
    MaxLifetime,
    /// No route of the listen address takes the client's server name (and none has `*`).
    NoRoute,
    /// A TLS handshake that is not a valid ClientHello, or one over `preread_max`.
    BadClientHello,
    /// The ClientHello did not arrive within `preread_timeout`.
    PrereadTimeout,
    /// Closed by the operator through the admin API (one connection, or a server's).
    Admin,
}

impl CloseReason {
    /// Every reason, in [`CloseReason::index`] order.
    pub const ALL: [CloseReason; 19] = [
        CloseReason::ClientClosed,
        CloseReason::UpstreamClosed,
        CloseReason::ClientReset,
        CloseReason::UpstreamReset,
        CloseReason::IdleTimeout,
        CloseReason::ConnectFailed,
        CloseReason::Shutdown,
        CloseReason::Drained,
        CloseReason::Untrusted,
        CloseReason::BadProxyHeader,
        CloseReason::ProxyTimeout,
        CloseReason::Probe,
        CloseReason::Denied,
        CloseReason::Limited,
        CloseReason::MaxLifetime,
        CloseReason::NoRoute,
        CloseReason::BadClientHello,
        CloseReason::PrereadTimeout,
        CloseReason::Admin,
    ];

    /// Position in [`CloseReason::ALL`], for per-reason counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "client-closed",
            CloseReason::UpstreamClosed => "upstream-closed",
            CloseReason::ClientReset => "client-reset",
            CloseReason::UpstreamReset => "upstream-reset",
            CloseReason::IdleTimeout => "idle-timeout",
            CloseReason::ConnectFailed => "connect-failed",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Drained => "drained",
            CloseReason::Untrusted => "untrusted",
            CloseReason::BadProxyHeader => "bad-proxy-header",
            CloseReason::ProxyTimeout => "proxy-timeout",
            CloseReason::Probe => "probe",
            CloseReason::Denied => "denied",
            CloseReason::Limited => "limited",
            CloseReason::MaxLifetime => "max-lifetime",
            CloseReason::NoRoute => "no-route",
            CloseReason::BadClientHello => "bad-client-hello",
            CloseReason::PrereadTimeout => "preread-timeout",
            CloseReason::Admin => "admin",
        }
    }

    /// Whether a pair that ended so gets an access-log line (a probe does not, so balancer
    /// health checks do not flood the log).
    pub fn is_logged(self) -> bool {
        self != CloseReason::Probe
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
