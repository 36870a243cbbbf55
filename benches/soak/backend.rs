//! The upstream servers of the soak: plain blocking listeners on fresh loopback addresses
//! (127.0.x.y), one thread per connection, speaking a tiny protocol chosen by the client's
//! first [`HEADER`] bytes. A server can be retired: it stops accepting, and connections it
//! already accepted run to their end. Whatever a server sees wrong is recorded in [`Errors`].

use crate::load::{Errors, Load, check, fill};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes of the request header: command, length (u64 LE), seed (u64 LE).
pub const HEADER: usize = 17;
/// How long a server waits for its peer before it counts a timeout.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// What the client asks a server to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Echo everything until EOF, then close; a reset from the peer is an error.
    Echo,
    /// Echo until EOF or a reset, both expected (the client resets on purpose).
    EchoResettable,
    /// Send `len` pattern bytes, shut down the write side, then expect EOF.
    Source,
    /// Send `len` pattern bytes, shut down the write side, then read and check exactly
    /// `len / 4` bytes of the pattern of `seed ^ REPLY_SEED` and EOF.
    HalfClose,
    /// Read and check `len` pattern bytes, then answer `OK` and close.
    Sink,
    /// Send `len` pattern bytes, then close with RST.
    Reset,
}

/// Seed offset of what a client sends back after the server half-closed.
pub const REPLY_SEED: u64 = 0x5eed;

impl Command {
    fn byte(self) -> u8 {
        match self {
            Command::Echo => b'E',
            Command::EchoResettable => b'e',
            Command::Source => b'S',
            Command::HalfClose => b'H',
            Command::Sink => b'K',
            Command::Reset => b'X',
        }
    }

    fn from_byte(b: u8) -> Option<Command> {
        Some(match b {
            b'E' => Command::Echo,
            b'e' => Command::EchoResettable,
            b'S' => Command::Source,
            b'H' => Command::HalfClose,
            b'K' => Command::Sink,
            b'X' => Command::Reset,
            _ => return None,
        })
    }

    /// The request header for this command.
    pub fn header(self, len: u64, seed: u64) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0] = self.byte();
        h[1..9].copy_from_slice(&len.to_le_bytes());
        h[9..17].copy_from_slice(&seed.to_le_bytes());
        h
    }
}

/// One upstream server: its address and the thread accepting for it.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `ip`:0 and serves every connection on its own thread.
    pub fn start(ip: std::net::Ipv4Addr, errors: Errors) -> io::Result<Server> {
        let listener = TcpListener::bind((ip, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let accept = std::thread::Builder::new()
            .name(format!("server {addr}"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    match conn {
                        Ok(stream) => {
                            let mine = errors.clone();
                            let spawned = std::thread::Builder::new()
                                .name("serve".into())
                                .spawn(move || serve(stream, &mine));
                            if let Err(e) = spawned {
                                errors.record(Load::Churn, format!("server {addr}: spawn: {e}"));
                            }
                        }
                        Err(e) => errors.record(Load::Churn, format!("server {addr}: accept: {e}")),
                    }
                }
            })?;
        Ok(Server {
            addr,
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Server {
    /// Stops accepting (a connection to itself wakes the blocked `accept`); connections
    /// already accepted go on.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept.take() {
            let _ = handle.join();
        }
    }
}

/// Serves one connection; records anything unexpected.
fn serve(mut stream: TcpStream, errors: &Errors) {
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let _ = stream.set_write_timeout(Some(PATIENCE));
    let _ = stream.set_nodelay(true);
    let mut header = [0u8; HEADER];
    if stream.read_exact(&mut header).is_err() {
        // The wake-up connection of a retiring server, or a client that reset on purpose
        // before its header went through: nothing to check.
        return;
    }
    let Some(command) = Command::from_byte(header[0]) else {
        errors.record(
            Load::Churn,
            format!("server: unknown command {:#x}", header[0]),
        );
        return;
    };
    let len = u64::from_le_bytes(header[1..9].try_into().unwrap_or_default());
    let seed = u64::from_le_bytes(header[9..17].try_into().unwrap_or_default());
    let outcome = match command {
        Command::Echo => echo(&mut stream).map(|_| ()),
        Command::EchoResettable => {
            let _ = echo(&mut stream);
            Ok(())
        }
        Command::Source => source(&mut stream, len, seed, 0),
        Command::HalfClose => source(&mut stream, len, seed, len / 4),
        Command::Sink => sink(&mut stream, len, seed),
        Command::Reset => reset(stream, len, seed),
    };
    if let Err(e) = outcome {
        errors.record(
            Load::of_seed(seed),
            format!("server ({command:?}, {len} B): {e}"),
        );
    }
}

/// Echoes until EOF, then shuts down the write side; returns the bytes echoed.
fn echo(stream: &mut TcpStream) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            stream.shutdown(Shutdown::Write)?;
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Sends `len` pattern bytes, half-closes, then checks that the client sends back exactly
/// `reply` bytes before EOF.
fn source(stream: &mut TcpStream, len: u64, seed: u64, reply: u64) -> io::Result<()> {
    send_pattern(stream, len, seed)?;
    stream.shutdown(Shutdown::Write)?;
    let got = read_pattern(stream, None, seed ^ REPLY_SEED)?;
    if got != reply {
        return Err(io::Error::other(format!(
            "after the half-close: {got} bytes from the client, expected {reply}"
        )));
    }
    Ok(())
}

/// Checks `len` pattern bytes, then answers `OK`.
fn sink(stream: &mut TcpStream, len: u64, seed: u64) -> io::Result<()> {
    read_pattern(stream, Some(len), seed)?;
    stream.write_all(b"OK")?;
    stream.shutdown(Shutdown::Write)
}

/// Sends `len` pattern bytes, then closes with RST (SO_LINGER 0).
fn reset(stream: TcpStream, len: u64, seed: u64) -> io::Result<()> {
    let mut stream = stream;
    send_pattern(&mut stream, len, seed)?;
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    drop(stream);
    Ok(())
}

/// Writes `len` bytes of the pattern of `seed`.
pub fn send_pattern(stream: &mut TcpStream, len: u64, seed: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    let mut sent = 0u64;
    while sent < len {
        let n = (len - sent).min(buf.len() as u64) as usize;
        fill(seed, sent, &mut buf[..n]);
        stream.write_all(&buf[..n])?;
        sent += n as u64;
    }
    Ok(())
}

/// Reads and checks pattern bytes of `seed`: exactly `len` when given (then stops without
/// waiting for EOF), else until EOF. Returns the bytes read.
pub fn read_pattern(stream: &mut TcpStream, len: Option<u64>, seed: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0u64;
    loop {
        let want = len.map_or(buf.len() as u64, |l| (l - got).min(buf.len() as u64)) as usize;
        if want == 0 {
            return Ok(got);
        }
        let n = stream.read(&mut buf[..want])?;
        if n == 0 {
            return match len {
                Some(l) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF after {got} of {l} bytes"),
                )),
                None => Ok(got),
            };
        }
        check(seed, got, &buf[..n])?;
        got += n as u64;
    }
}
