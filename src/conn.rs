//! The sockets a pair carries: a TCP or a Unix domain stream socket, as one type.
//!
//! [`Conn`] is an enum, not a trait object: a read or a write is one `match` on a tag the
//! branch predictor learns per pair, then the same syscall as the bare mio stream (vectored
//! calls stay vectored). Both kinds have a descriptor, so splicing works on either.

use crate::connect::ConnectCheck;
use crate::pair::Stream;
use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};

/// A connected (or connecting) stream socket of either kind.
#[derive(Debug)]
pub enum Conn {
    /// TCP over IPv4 or IPv6.
    Tcp(TcpStream),
    /// A Unix domain stream socket.
    Unix(UnixStream),
}

impl Conn {
    /// True for a Unix domain socket.
    pub fn is_unix(&self) -> bool {
        matches!(self, Conn::Unix(_))
    }
}

/// The raw path bytes of a Unix socket address (empty for an unnamed or abstract one).
pub fn unix_path_bytes(addr: &std::os::unix::net::SocketAddr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    addr.as_pathname()
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_default()
}

macro_rules! each {
    ($conn:expr, $s:ident => $body:expr) => {
        match $conn {
            Conn::Tcp($s) => $body,
            Conn::Unix($s) => $body,
        }
    };
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.read(buf))
    }
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        each!(self, s => s.read_vectored(bufs))
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, s => s.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        each!(self, s => s.flush())
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        each!(self, s => s.as_fd())
    }
}

impl Source for Conn {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        each!(self, s => s.register(registry, token, interests))
    }
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        each!(self, s => s.reregister(registry, token, interests))
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        each!(self, s => s.deregister(registry))
    }
}

impl Stream for Conn {
    fn shutdown_write(&mut self) -> io::Result<()> {
        each!(self, s => s.shutdown(Shutdown::Write))
    }
    fn connect_check(&self) -> ConnectCheck {
        crate::connect::check(self)
    }
    fn take_error(&self) -> Option<io::Error> {
        each!(self, s => s.take_error().ok().flatten())
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Conn::Tcp(s) => s.local_addr(),
            Conn::Unix(_) => Err(io::Error::from(io::ErrorKind::Unsupported)),
        }
    }
    fn unix_paths(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        match self {
            Conn::Tcp(_) => None,
            Conn::Unix(s) => {
                let peer = s
                    .peer_addr()
                    .map(|a| unix_path_bytes(&a))
                    .unwrap_or_default();
                let local = s
                    .local_addr()
                    .map(|a| unix_path_bytes(&a))
                    .unwrap_or_default();
                Some((peer, local))
            }
        }
    }
}
