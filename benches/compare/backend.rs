//! The upstream server every target forwards to: one thread running a small mio loop, so
//! it holds thousands of idle connections as easily as one bulk stream.
//!
//! The first byte a client sends picks what the connection does:
//! - `S` sink: read to EOF, then answer the byte count as a little-endian `u64` and close;
//! - `G` generate: write a pattern as fast as possible until the peer goes away;
//! - `F` + little-endian `u64` n: write exactly n pattern bytes, then FIN; close at EOF;
//! - `E` echo: write back whatever arrives, until EOF; then close with RST (SO_LINGER 0);
//! - `C` + one byte n: echo n bytes, then close first, with a FIN (a short-lived exchange
//!   in which the server ends the connection, as in HTTP/1.0).

use crate::sys::Context;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
/// Bytes read or written per system call.
const CHUNK: usize = 256 * 1024;

/// The byte at `offset` of the generated stream, so receivers can check what they got.
pub fn pattern_byte(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// A running backend; stopped and joined on drop.
pub struct Backend {
    /// Where targets forward to.
    pub addr: SocketAddr,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    /// Binds 127.0.0.1 on a free port and starts serving in a new thread.
    pub fn start() -> Result<Backend, String> {
        let mut listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .context(|| "bind the backend".into())?;
        let addr = listener
            .local_addr()
            .context(|| "read the backend address".into())?;
        let poll = Poll::new().context(|| "create the backend poller".into())?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .context(|| "register the backend listener".into())?;
        let waker =
            Arc::new(Waker::new(poll.registry(), WAKER).context(|| "create a waker".into())?);
        let stop = Arc::new(AtomicBool::new(false));
        let server = Server {
            poll,
            listener,
            conns: slab::Slab::new(),
            scratch: vec![0; CHUNK],
            pattern: (0..CHUNK as u64 + 251).map(pattern_byte).collect(),
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name("backend".into())
            .spawn(move || {
                if let Err(e) = server.run() {
                    eprintln!("compare: backend failed: {e}");
                }
            })
            .context(|| "start the backend thread".into())?;
        Ok(Backend {
            addr,
            waker,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a connection is doing.
enum State {
    /// Waiting for the mode byte.
    Mode,
    /// Counting bytes until EOF.
    Sink { received: u64 },
    /// Sending the byte count.
    Reply { bytes: [u8; 8], sent: usize },
    /// Writing the pattern forever; `offset` bytes written so far.
    Generate { offset: u64 },
    /// Reading the 8-byte length that follows `F`.
    FixedHeader { bytes: [u8; 8], got: usize },
    /// Writing the pattern until `offset == total`.
    Fixed { offset: u64, total: u64 },
    /// All sent and FIN given; waiting for the peer's EOF.
    Drain,
    /// Reading the length byte that follows `C`.
    OnceHeader,
    /// Echoing; `pending[sent..]` is still to be written back; with `left`, close (FIN)
    /// once that many more bytes have been echoed.
    Echo {
        pending: Vec<u8>,
        sent: usize,
        left: Option<u64>,
    },
}

/// What driving a connection led to.
enum Step {
    /// The state changed or made progress: drive again.
    Again,
    /// Nothing more until the next readiness event.
    Blocked,
    /// The connection is finished (or failed): drop it.
    Close,
}

struct Conn {
    stream: TcpStream,
    state: State,
}

struct Server {
    poll: Poll,
    listener: TcpListener,
    conns: slab::Slab<Conn>,
    scratch: Vec<u8>,
    /// The generated stream repeats every 251 bytes; slicing at `offset % 251` continues it.
    pattern: Vec<u8>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        while !self.stop.load(Ordering::SeqCst) {
            match self.poll.poll(&mut events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept()?,
                    WAKER => {}
                    Token(key) => self.drive(key),
                }
            }
        }
        Ok(())
    }

    /// Accepts every waiting client. Running out of descriptors is reported, not fatal.
    fn accept(&mut self) -> io::Result<()> {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nodelay(true)?;
                    let entry = self.conns.vacant_entry();
                    self.poll.registry().register(
                        &mut stream,
                        Token(entry.key()),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    entry.insert(Conn {
                        stream,
                        state: State::Mode,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("compare: backend accept failed: {e}");
                    return Ok(());
                }
            }
        }
    }

    /// Drives connection `key` until it blocks; removes it when it is done.
    fn drive(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        loop {
            match conn.step(&mut self.scratch, &self.pattern) {
                Step::Again => {}
                Step::Blocked => return,
                Step::Close => break,
            }
        }
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        if matches!(conn.state, State::Echo { left: None, .. }) {
            // Open-ended echo connections end after the client's EOF or reset: closing
            // with RST leaves no TIME_WAIT on the proxy's upstream side, whichever way the
            // proxy closes, so runs do not slow down the connection-rate runs after them.
            let _ = socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
        }
    }
}

/// Maps an I/O result to a step: `WouldBlock` blocks, `Interrupted` retries, errors close.
fn on_error(e: io::Error) -> Step {
    match e.kind() {
        ErrorKind::WouldBlock => Step::Blocked,
        ErrorKind::Interrupted => Step::Again,
        _ => Step::Close,
    }
}

impl Conn {
    /// One read or write according to the state.
    fn step(&mut self, scratch: &mut [u8], pattern: &[u8]) -> Step {
        let stream = &mut self.stream;
        match &mut self.state {
            State::Mode => {
                let mut mode = [0u8; 1];
                match stream.read(&mut mode) {
                    Ok(0) => Step::Close,
                    Ok(_) => {
                        self.state = match mode[0] {
                            b'S' => State::Sink { received: 0 },
                            b'G' => State::Generate { offset: 0 },
                            b'F' => State::FixedHeader {
                                bytes: [0; 8],
                                got: 0,
                            },
                            b'E' => State::Echo {
                                pending: Vec::new(),
                                sent: 0,
                                left: None,
                            },
                            b'C' => State::OnceHeader,
                            _ => return Step::Close,
                        };
                        Step::Again
                    }
                    Err(e) => on_error(e),
                }
            }
            State::Sink { received } => match stream.read(scratch) {
                Ok(0) => {
                    self.state = State::Reply {
                        bytes: received.to_le_bytes(),
                        sent: 0,
                    };
                    Step::Again
                }
                Ok(n) => {
                    *received += n as u64;
                    Step::Again
                }
                Err(e) => on_error(e),
            },
            State::Reply { bytes, sent } => match stream.write(&bytes[*sent..]) {
                Ok(n) => {
                    *sent += n;
                    if *sent == bytes.len() {
                        Step::Close
                    } else {
                        Step::Again
                    }
                }
                Err(e) => on_error(e),
            },
            State::Generate { offset } => {
                let start = (*offset % 251) as usize;
                match stream.write(&pattern[start..start + CHUNK]) {
                    Ok(n) => {
                        *offset += n as u64;
                        Step::Again
                    }
                    Err(e) => on_error(e),
                }
            }
            State::FixedHeader { bytes, got } => match stream.read(&mut bytes[*got..]) {
                Ok(0) => Step::Close,
                Ok(n) => {
                    *got += n;
                    if *got == bytes.len() {
                        self.state = State::Fixed {
                            offset: 0,
                            total: u64::from_le_bytes(*bytes),
                        };
                    }
                    Step::Again
                }
                Err(e) => on_error(e),
            },
            State::Fixed { offset, total } => {
                if offset == total {
                    let _ = stream.shutdown(Shutdown::Write);
                    self.state = State::Drain;
                    return Step::Again;
                }
                let start = (*offset % 251) as usize;
                let len = (*total - *offset).min(CHUNK as u64) as usize;
                match stream.write(&pattern[start..start + len]) {
                    Ok(n) => {
                        *offset += n as u64;
                        Step::Again
                    }
                    Err(e) => on_error(e),
                }
            }
            State::Drain => match stream.read(scratch) {
                Ok(0) => Step::Close,
                Ok(_) => Step::Again,
                Err(e) => on_error(e),
            },
            State::OnceHeader => {
                let mut len = [0u8; 1];
                match stream.read(&mut len) {
                    Ok(0) => Step::Close,
                    Ok(_) => {
                        self.state = State::Echo {
                            pending: Vec::new(),
                            sent: 0,
                            left: Some(u64::from(len[0])),
                        };
                        Step::Again
                    }
                    Err(e) => on_error(e),
                }
            }
            State::Echo { left: Some(0), .. } => Step::Close,
            State::Echo {
                pending,
                sent,
                left,
            } => {
                if *sent < pending.len() {
                    return match stream.write(&pending[*sent..]) {
                        Ok(n) => {
                            *sent += n;
                            if let Some(left) = left {
                                *left = left.saturating_sub(n as u64);
                            }
                            if *sent == pending.len() {
                                pending.clear();
                                *sent = 0;
                            }
                            Step::Again
                        }
                        Err(e) => on_error(e),
                    };
                }
                match stream.read(scratch) {
                    Ok(0) => Step::Close,
                    Ok(n) => {
                        pending.extend_from_slice(&scratch[..n]);
                        Step::Again
                    }
                    Err(e) => on_error(e),
                }
            }
        }
    }
}
