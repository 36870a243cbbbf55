//! Non-blocking upstream connects and their completion check, as mio's documentation
//! prescribes: start with `connect` (EINPROGRESS expected), wait for a writable event, then
//! `take_error` followed by `peer_addr` decide whether the socket is connected. What a
//! route sets on its sockets before they connect ([`SocketOptions`]) is applied here too.

use crate::conn::Conn;
use crate::endpoint::Endpoint;
use mio::net::{TcpStream, UnixStream};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// What is set on an upstream socket before its connect starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// The local address to connect from (`bind_source`); its port is chosen at connect
    /// time, so that the 4-tuple, not the port alone, has to be unique.
    pub source: Option<IpAddr>,
    /// `SO_RCVBUF`, set before the connect so that the window scale follows it.
    pub rcvbuf: Option<usize>,
    /// `SO_SNDBUF`.
    pub sndbuf: Option<usize>,
}

/// Sets the kernel buffer sizes of `options` on `socket` (failures are ignored: the
/// connection works with the system's sizes).
pub fn set_buffers(socket: SockRef<'_>, options: &SocketOptions) {
    if let Some(size) = options.rcvbuf {
        let _ = socket.set_recv_buffer_size(size);
    }
    if let Some(size) = options.sndbuf {
        let _ = socket.set_send_buffer_size(size);
    }
}

/// Outcome of checking a connecting socket after an event.
#[derive(Debug)]
pub enum ConnectCheck {
    /// Not finished yet (the event was spurious or early).
    Pending,
    /// Connected; the socket can carry data.
    Connected,
    /// The attempt failed (refused, unreachable, ...).
    Failed(io::Error),
}

/// Opens a non-blocking socket with `options` and starts connecting it to `server`. An error
/// here (e.g. `EADDRNOTAVAIL` when local ports run out, `EMFILE`, a source address that is
/// not local or of the other family, a Unix server that is not listening or whose backlog is
/// full) means the attempt failed at once.
pub fn start(server: &Endpoint, options: &SocketOptions) -> io::Result<Conn> {
    match server {
        Endpoint::Ip(addr) => start_tcp(*addr, options).map(Conn::Tcp),
        Endpoint::Unix(path) => start_unix(path, options).map(Conn::Unix),
    }
}

/// A Unix domain stream connect: it completes at once or fails (`EAGAIN` is a full backlog,
/// not a connect in progress, as nginx also takes it); `bind_source` does not apply.
fn start_unix(path: &Path, options: &SocketOptions) -> io::Result<UnixStream> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM.nonblocking(), None)?;
    set_buffers(SockRef::from(&socket), options);
    match socket.connect(&SockAddr::unix(path)?) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(UnixStream::from_std(socket.into()))
}

/// A TCP connect with `TCP_NODELAY`, from `options.source` if set.
fn start_tcp(addr: SocketAddr, options: &SocketOptions) -> io::Result<TcpStream> {
    // Non-blocking from creation (SOCK_NONBLOCK): one syscall fewer per connection.
    let kind = Type::STREAM.nonblocking();
    let socket = Socket::new(Domain::for_address(addr), kind, Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    set_buffers(SockRef::from(&socket), options);
    if let Some(source) = options.source {
        bind_source(&socket, source)?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if in_progress(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Binds `socket` to `source` with port 0, leaving the port to `connect`
/// (`IP_BIND_ADDRESS_NO_PORT`): without it, `bind` would reserve a port of its own for
/// every connection and the ephemeral range would run out after about 28000 connections
/// whatever the servers.
fn bind_source(socket: &Socket, source: IpAddr) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt::IpBindAddressNoPort};
    // Without the option (kernels before 4.2) the bind still works, reserving a port.
    let _ = setsockopt(socket, IpBindAddressNoPort, &true);
    socket.bind(&SocketAddr::new(source, 0).into())
}

/// `EINPROGRESS` (or `EWOULDBLOCK`, which mio documents for a full routing cache): the connect
/// goes on in the background.
fn in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock
}

/// Checks whether a connecting socket has finished (mio steps 4 and 5).
pub fn check(stream: &Conn) -> ConnectCheck {
    let socket = SockRef::from(stream);
    match socket.take_error() {
        Ok(Some(e)) | Err(e) => return ConnectCheck::Failed(e),
        Ok(None) => {}
    }
    match socket.peer_addr() {
        Ok(_) => ConnectCheck::Connected,
        Err(e) if e.kind() == io::ErrorKind::NotConnected || in_progress(&e) => {
            ConnectCheck::Pending
        }
        Err(e) => ConnectCheck::Failed(e),
    }
}

/// Makes the next close of `stream` send RST instead of FIN (SO_LINGER 0), so a peer learns
/// that its stream was cut rather than finished (a Unix socket has no RST: its peer sees
/// the end of the stream, or `ECONNRESET` if it had unread data).
pub fn set_reset_on_close(stream: &Conn) {
    if !stream.is_unix() {
        let _ = SockRef::from(stream).set_linger(Some(std::time::Duration::ZERO));
    }
}

/// Turns TCP keepalive on for `stream` with `keepalive`'s times (failures are ignored: the
/// connection works without it; a Unix socket has none).
pub fn set_keepalive(stream: &Conn, keepalive: &socket2::TcpKeepalive) {
    if !stream.is_unix() {
        let _ = SockRef::from(stream).set_tcp_keepalive(keepalive);
    }
}
