//! Where a server is: an IP socket address or the path of a Unix domain socket
//! (`unix:/run/app.sock` as written), and who a client is: an address, or a client of a Unix
//! listener (which has none).
//!
//! Invariant: a Unix path is absolute. `unix:PATH` is how both are written in the
//! configuration, in logs and in metrics labels.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a Unix socket path is written: `unix:/run/app.sock`.
pub const UNIX_PREFIX: &str = "unix:";

/// The path of `unix:PATH`, when `s` is one with an absolute path.
pub fn unix_path(s: &str) -> Option<PathBuf> {
    let path = Path::new(s.strip_prefix(UNIX_PREFIX)?);
    path.is_absolute().then(|| path.to_path_buf())
}

/// A server's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// A TCP server.
    Ip(SocketAddr),
    /// A Unix domain stream socket (shared: cheap to clone).
    Unix(Arc<Path>),
}

impl Endpoint {
    /// The IP address, for a TCP server.
    pub fn ip(&self) -> Option<SocketAddr> {
        match self {
            Endpoint::Ip(addr) => Some(*addr),
            Endpoint::Unix(_) => None,
        }
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Endpoint {
        Endpoint::Ip(addr)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Ip(addr) => addr.fmt(f),
            Endpoint::Unix(path) => write!(f, "{UNIX_PREFIX}{}", path.display()),
        }
    }
}

/// Who a client is: its address (the PROXY header's when one named it), or a client of a
/// Unix listener without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A client with an address.
    Ip(SocketAddr),
    /// A client of a Unix listener (no address to judge, hash or log).
    Unix,
}

impl Client {
    /// The address, when the client has one.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Client::Ip(addr) => Some(addr),
            Client::Unix => None,
        }
    }

    /// The IP address, when the client has one.
    pub fn ip(self) -> Option<IpAddr> {
        self.addr().map(|a| a.ip())
    }
}

impl From<SocketAddr> for Client {
    fn from(addr: SocketAddr) -> Client {
        Client::Ip(addr)
    }
}

impl fmt::Display for Client {
    /// The address, or `unix:` (as nginx shows a Unix client).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Ip(addr) => addr.fmt(f),
            Client::Unix => f.write_str(UNIX_PREFIX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_paths_are_absolute_and_shown_as_written() {
        assert_eq!(
            unix_path("unix:/run/a.sock"),
            Some(PathBuf::from("/run/a.sock"))
        );
        assert_eq!(unix_path("unix:run/a.sock"), None);
        assert_eq!(unix_path("unix:"), None);
        assert_eq!(unix_path("/run/a.sock"), None);
        let server = Endpoint::Unix(Arc::from(Path::new("/run/a.sock")));
        assert_eq!(server.to_string(), "unix:/run/a.sock");
        assert_eq!(Client::Unix.to_string(), "unix:");
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(Client::from(addr).ip(), Some(addr.ip()));
        assert_eq!(Client::Unix.ip(), None);
    }
}
