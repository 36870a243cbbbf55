//! Helpers shared by the integration tests: an in-process proxy that stops on drop, the built
//! binary with its port read from stderr, backends the tests control (echo, channel, refusing,
//! black hole), reads with deadlines, a verifiable byte pattern and `/proc` probes.
//!
//! Every blocking call made through these helpers has a deadline, so a broken proxy fails a
//! test instead of hanging it. Only 127.0.0.1 and ::1 are ever used.
//!
//! Submodules: [`peers`] (real HAProxy, nginx and curl, skipped when not installed),
//! [`headers`] (PROXY protocol headers built by hand) and [`logs`] (reading the access log
//! and `/metrics`), [`systemd`] (a stand-in for systemd's notify socket), [`admin`] (a
//! binary driven through its admin API) and [`netns`] (network namespaces joined by a veth
//! pair, with nftables faults, for `tests/faults.rs`: the one place where addresses other
//! than loopback are used, TEST-NET-1 inside namespaces the test creates).

#![allow(dead_code)]

pub mod admin;
pub mod dns;
pub mod headers;
pub mod logs;
pub mod netns;
pub mod peers;
pub mod systemd;
pub mod tls;

use ringproxy::config::{Config, UpstreamSpec, raise_fd_limit};
use ringproxy::engine::EngineMode;
use ringproxy::proxy::{Handle, Proxy};
use ringproxy::settings::{Global, LogFormat, RouteSettings, ServerOptions};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Default deadline for one blocking socket operation in a test.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `wait_until` re-checks its condition.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// Raises the descriptor limit once per test binary (several tests open thousands of sockets).
pub fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        raise_fd_limit().expect("raise the descriptor limit");
    });
}

/// `127.0.0.1:0`.
pub fn v4_any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A loopback address whose port was free a moment ago (for routes that share one).
pub fn free_addr() -> SocketAddr {
    peers::free_ports(1)[0]
}

/// `sni` patterns as written.
pub fn server_names(patterns: &[&str]) -> Vec<ringproxy::server_names::NamePattern> {
    patterns
        .iter()
        .map(|p| ringproxy::server_names::NamePattern::parse(p).expect("a server name pattern"))
        .collect()
}

/// `[::1]:0`.
pub fn v6_any_port() -> SocketAddr {
    "[::1]:0".parse().unwrap()
}

/// Polls `cond` every few milliseconds until it holds or `within` passes; returns whether it held.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL_EVERY);
    }
}

// ---------------------------------------------------------------------------------------------
// The in-process proxy
// ---------------------------------------------------------------------------------------------

/// A config listening on `127.0.0.1:0` with the given upstreams and default settings (and
/// the engine of the test, see [`each_engine!`]).
pub fn config(upstreams: &[SocketAddr]) -> Config {
    let mut config = Config::new(
        v4_any_port(),
        upstreams.iter().copied().map(UpstreamSpec::from).collect(),
    );
    config.route().settings.engine = engine();
    config
}

thread_local! {
    /// The engine the running test asked for (each test runs on its own thread).
    static ENGINE: std::cell::Cell<EngineMode> = const { std::cell::Cell::new(EngineMode::Ring) };
}

/// The engine of the running test: `ring` unless it runs under [`each_engine!`].
pub fn engine() -> EngineMode {
    ENGINE.get()
}

/// Runs `test` with `engine` as the engine of every proxy it starts through these helpers.
pub fn with_engine(engine: EngineMode, test: fn()) {
    ENGINE.set(engine);
    test();
}

/// Gives every route of `config` the running test's engine (when it is not `ring`).
pub fn use_engine(config: &mut Config) {
    if engine() != EngineMode::Ring {
        for route in &mut config.routes {
            route.settings.engine = engine();
        }
    }
}

/// Declares, for each named test function of the file, one test per engine: `ring::NAME`,
/// `splice::NAME` and `auto::NAME`, so every scenario runs against rings and pipes alike.
#[macro_export]
macro_rules! each_engine {
    ($($name:ident),* $(,)?) => {
        mod ring {
            $( #[test] fn $name() {
                $crate::common::with_engine(ringproxy::engine::EngineMode::Ring, super::$name)
            } )*
        }
        mod splice {
            $( #[test] fn $name() {
                $crate::common::with_engine(ringproxy::engine::EngineMode::Splice, super::$name)
            } )*
        }
        mod auto {
            $( #[test] fn $name() {
                $crate::common::with_engine(ringproxy::engine::EngineMode::Auto, super::$name)
            } )*
        }
    };
}

/// The settings the tests change, over the proxy's defaults. Every access to `Config`'s
/// fields from this file's users goes through here, so a change in its layout is mended once.
#[derive(Clone)]
pub struct Settings {
    config: Config,
}

impl Settings {
    /// Listening on `127.0.0.1:0`, forwarding to `upstreams`, defaults otherwise.
    pub fn to(upstreams: &[SocketAddr]) -> Settings {
        Settings {
            config: config(upstreams),
        }
    }

    /// Forwarding to upstreams written as `HOST:PORT` (names are resolved at start).
    pub fn to_names(upstreams: &[&str]) -> Settings {
        let mut config = config(&[]);
        config.route().upstreams = upstreams.iter().map(|u| UpstreamSpec::new(*u)).collect();
        Settings { config }
    }

    /// Listen on `addr` instead.
    pub fn listen(mut self, addr: SocketAddr) -> Settings {
        self.config.route().listen = vec![addr];
        self
    }

    /// Bytes per direction per pair.
    pub fn buffer_size(mut self, bytes: usize) -> Settings {
        self.config.route().settings.buffer_size = bytes;
        self
    }

    /// Time allowed for one upstream connect.
    pub fn connect_timeout(mut self, timeout: Duration) -> Settings {
        self.config.route().settings.connect_timeout = timeout;
        self
    }

    /// Time a pair may move no byte before it is closed.
    pub fn idle_timeout(mut self, timeout: Duration) -> Settings {
        self.config.route().settings.idle_timeout = timeout;
        self
    }

    /// Any process-wide setting.
    pub fn global(mut self, set: impl FnOnce(&mut Global)) -> Settings {
        set(&mut self.config.global);
        self
    }

    /// Any other per-route setting.
    pub fn route(mut self, set: impl FnOnce(&mut RouteSettings)) -> Settings {
        set(&mut self.config.route().settings);
        self
    }

    /// Options of the `index`th server (in the order given to [`Settings::to`]).
    pub fn server(mut self, index: usize, set: impl FnOnce(&mut ServerOptions)) -> Settings {
        set(&mut self.config.route().upstreams[index].options);
        self
    }

    /// Writes the access log to `path` in `format`.
    pub fn access_log(mut self, path: &std::path::Path, format: LogFormat) -> Settings {
        self.config.global.access_log = Some(path.to_str().expect("a UTF-8 path").to_string());
        self.config.global.access_log_format = format;
        self
    }

    /// Serves `/metrics` on a free `127.0.0.1` port ([`TestProxy::metrics`]).
    pub fn metrics(mut self) -> Settings {
        self.config.global.metrics = Some(v4_any_port());
        self
    }

    /// The first route takes only TLS clients asking for `patterns` (`sni`).
    pub fn sni(mut self, patterns: &[&str]) -> Settings {
        self.config.route().settings.sni = server_names(patterns);
        self
    }

    /// Adds a route `name` on the first route's listen addresses and with its settings,
    /// taking the server names `patterns` to `upstreams`.
    pub fn sni_route(
        mut self,
        name: &str,
        patterns: &[&str],
        upstreams: &[SocketAddr],
    ) -> Settings {
        let mut route = self.config.routes[0].clone();
        route.name = name.to_string();
        route.settings.sni = server_names(patterns);
        route.upstreams = upstreams.iter().copied().map(UpstreamSpec::from).collect();
        self.config.routes.push(route);
        self
    }

    /// Most pairs at once.
    pub fn max_conns(mut self, max: usize) -> Settings {
        self.config.global.max_conns = Some(max);
        self
    }

    /// The resulting configuration.
    pub fn config(self) -> Config {
        self.config
    }

    /// Starts an in-process proxy with these settings.
    pub fn start(self) -> TestProxy {
        TestProxy::start(self.config)
    }
}

/// A proxy loop running in a thread of the test process; stopped (and checked) on drop.
pub struct TestProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when the configuration asks for it.
    pub metrics: Option<SocketAddr>,
    stopper: Handle,
    handle: Option<JoinHandle<io::Result<()>>>,
}

impl TestProxy {
    /// Binds `config` and runs the loop in a new thread.
    pub fn start(mut config: Config) -> TestProxy {
        setup();
        use_engine(&mut config);
        let proxy =
            Proxy::bind(config.prepare().expect("a valid configuration")).expect("the proxy binds");
        let addr = proxy.local_addr();
        let metrics = proxy.metrics_addr();
        let stopper = proxy.handle();
        let handle = thread::Builder::new()
            .name("proxy".into())
            .spawn(move || proxy.run())
            .expect("spawn the proxy thread");
        TestProxy {
            addr,
            metrics,
            stopper,
            handle: Some(handle),
        }
    }

    /// A proxy with default settings forwarding to `upstreams`.
    pub fn to(upstreams: &[SocketAddr]) -> TestProxy {
        TestProxy::start(config(upstreams))
    }

    /// The loop's handle: reload, drain, listen addresses.
    pub fn handle(&self) -> &Handle {
        &self.stopper
    }

    /// True while the loop thread has neither returned nor panicked.
    pub fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Stops the loop and panics unless it stops cleanly within 5 s.
    pub fn stop(mut self) {
        if let Err(e) = self.finish() {
            panic!("{e}");
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        let Some(handle) = self.handle.take() else {
            return Ok(());
        };
        let woke = self.stopper.stop();
        if !wait_until(Duration::from_secs(5), || handle.is_finished()) {
            return Err(format!(
                "proxy loop did not stop within 5s of stop() (wake: {woke:?})"
            ));
        }
        match handle.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("proxy loop failed: {e}")),
            Err(panic) => Err(format!("proxy thread panicked: {}", panic_message(&panic))),
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            if thread::panicking() {
                eprintln!("(while unwinding) {e}");
            } else {
                panic!("{e}");
            }
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".into())
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

/// A listening socket with a large backlog (std's default of 128 can overflow when a test
/// opens a thousand upstream connections at once, and a dropped SYN costs a 1 s retransmit).
pub fn listen_on(addr: SocketAddr) -> TcpListener {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .expect("create a listening socket");
    socket.set_reuse_address(true).unwrap();
    if addr.is_ipv6() {
        socket.set_only_v6(true).unwrap();
    }
    socket.bind(&addr.into()).expect("bind a backend");
    socket.listen(4096).unwrap();
    socket.into()
}

/// A backend: an accept loop in a thread that hands each connection to `handler` in a thread
/// of its own. Stops accepting on drop.
pub struct Backend {
    /// Where the proxy should connect.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    /// Runs `handler` for every connection accepted on `listener`.
    pub fn spawn<F>(listener: TcpListener, handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (count, stopped) = (Arc::clone(&accepted), Arc::clone(&stop));
        thread::Builder::new()
            .name(format!("backend {addr}"))
            .spawn(move || {
                for conn in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = conn else {
                        // EMFILE and friends: back off instead of spinning.
                        thread::sleep(Duration::from_millis(1));
                        continue;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    // Handlers never outlive a minute, whatever the test does.
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(60)));
                    let handler = Arc::clone(&handler);
                    thread::Builder::new()
                        .stack_size(256 * 1024)
                        .spawn(move || handler(stream))
                        .expect("spawn a backend connection thread");
                }
            })
            .expect("spawn a backend accept thread");
        Backend {
            addr,
            accepted,
            stop,
        }
    }

    /// An echo server on `127.0.0.1`.
    pub fn echo() -> Backend {
        Backend::echo_on(v4_any_port())
    }

    /// An echo server on `addr` (port 0 for any).
    pub fn echo_on(addr: SocketAddr) -> Backend {
        Backend::spawn(listen_on(addr), echo)
    }

    /// A backend that hands each accepted connection to the test, which drives it by hand.
    pub fn channel() -> (Backend, Accepted) {
        Backend::channel_on(v4_any_port())
    }

    /// [`Backend::channel`] listening on `addr` (port 0 for any).
    pub fn channel_on(addr: SocketAddr) -> (Backend, Accepted) {
        let (tx, rx) = mpsc::channel();
        let backend = Backend::spawn(listen_on(addr), move |s| {
            let _ = tx.send(s);
        });
        (backend, Accepted(rx))
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and closes the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// The backend side of connections accepted by [`Backend::channel`].
pub struct Accepted(Receiver<TcpStream>);

impl Accepted {
    /// The next accepted connection; panics if none arrives within `within`.
    pub fn next(&self, within: Duration) -> TcpStream {
        let s = self
            .0
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("backend accepted no connection within {within:?}: {e}"));
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    /// The next accepted connection if one arrives within `within`.
    pub fn try_next(&self, within: Duration) -> Option<TcpStream> {
        self.0.recv_timeout(within).ok()
    }

    /// Asserts that no connection arrives within `within`.
    pub fn none_within(&self, within: Duration) {
        match self.0.recv_timeout(within) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(s) => panic!(
                "backend unexpectedly accepted a connection from {:?}",
                s.peer_addr()
            ),
            Err(e) => panic!("backend accept loop ended: {e}"),
        }
    }
}

/// Echoes everything, then passes the peer's EOF on with `shutdown(Write)`.
pub fn echo(mut s: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                let _ = s.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// An address whose port is held by a bound socket that does not listen: connecting to it is
/// refused, and no other socket can take the port while the `Refusing` lives. `listen` turns
/// it into a working backend on the same port later.
pub struct Refusing {
    /// The refusing address.
    pub addr: SocketAddr,
    socket: Socket,
}

impl Refusing {
    /// A refusing address on `127.0.0.1`.
    pub fn new() -> Refusing {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.bind(&v4_any_port().into()).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        Refusing { addr, socket }
    }

    /// Starts listening on the held port and returns it as a plain listener.
    pub fn listen(self) -> TcpListener {
        self.socket.listen(4096).expect("listen on the held port");
        self.socket.into()
    }
}

/// An address whose listener never completes a handshake: it listens with backlog 0, never
/// accepts, and its accept queue is full, so Linux drops further SYNs.
pub struct BlackHole {
    /// The black-hole address.
    pub addr: SocketAddr,
    _listener: Socket,
    _fillers: Vec<Socket>,
}

impl BlackHole {
    /// Builds a black hole and proves it with a probe connect that must time out. `Err` says
    /// why the kernel does not behave as needed (the caller skips the test).
    pub fn new() -> Result<BlackHole, String> {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        listener.bind(&v4_any_port().into()).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..2 {
            let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
            s.set_nonblocking(true).unwrap();
            match s.connect(&addr.into()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                Err(e) => return Err(format!("filler connect failed: {e}")),
            }
            fillers.push(s);
        }
        let probe = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        match probe.connect_timeout(&addr.into(), Duration::from_millis(300)) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(BlackHole {
                    addr,
                    _listener: listener,
                    _fillers: fillers,
                })
            }
            Ok(()) => Err("a probe connect to a full listen queue completed".into()),
            Err(e) => Err(format!(
                "a probe connect to a full listen queue failed instead of hanging: {e}"
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clients and reads with deadlines
// ---------------------------------------------------------------------------------------------

/// Connects with read and write timeouts of [`IO_TIMEOUT`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Makes the next close of `s` send RST (SO_LINGER 0).
pub fn set_reset_on_close(s: &TcpStream) {
    SockRef::from(s)
        .set_linger(Some(Duration::ZERO))
        .expect("set SO_LINGER 0");
}

/// How a read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `Ok(0)`: the peer sent FIN.
    Eof,
    /// `ECONNRESET` (or another "connection cut" error).
    Reset,
    /// The deadline passed with the connection still open.
    TimedOut,
    /// Any other error.
    Failed(io::ErrorKind),
}

fn classify(e: &io::Error) -> Ending {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Ending::TimedOut,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Ending::Reset,
        kind => Ending::Failed(kind),
    }
}

/// One `read` that waits at most until `deadline`.
fn read_by(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<usize, Ending> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Ending::TimedOut);
        }
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(buf) {
            Ok(0) => return Err(Ending::Eof),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(classify(&e)),
        }
    }
}

/// Reads until EOF, an error, `limit` bytes or `within`; returns the bytes and how it ended
/// (`TimedOut` also when the limit was reached first).
pub fn read_until_end(s: &mut TcpStream, within: Duration, limit: usize) -> (Vec<u8>, Ending) {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while out.len() < limit {
        let want = buf.len().min(limit - out.len());
        match read_by(s, &mut buf[..want], deadline) {
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(end) => {
                restore_timeout(s);
                return (out, end);
            }
        }
    }
    restore_timeout(s);
    (out, Ending::TimedOut)
}

fn restore_timeout(s: &TcpStream) {
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
}

/// Reads exactly `n` bytes within `within`, or panics saying what happened instead.
pub fn read_exact_within(s: &mut TcpStream, n: usize, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut out = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match read_by(s, &mut out[got..], deadline) {
            Ok(k) => got += k,
            Err(end) => panic!("wanted {n} bytes within {within:?}, got {got} then {end:?}"),
        }
    }
    restore_timeout(s);
    out
}

/// Reads to EOF within `within` and returns everything; panics on a reset, an error or the
/// deadline.
pub fn read_to_eof(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let (data, end) = read_until_end(s, within, usize::MAX);
    assert_eq!(
        end,
        Ending::Eof,
        "expected EOF within {within:?} after {} bytes",
        data.len()
    );
    data
}

/// Asserts that the connection is closed (EOF or reset) within `within` with no byte before
/// it; returns which of the two it was.
pub fn expect_closed(s: &mut TcpStream, within: Duration) -> Ending {
    let (data, end) = read_until_end(s, within, 1);
    assert!(
        data.is_empty(),
        "expected the connection to close, got data {data:?}"
    );
    assert!(
        matches!(end, Ending::Eof | Ending::Reset),
        "expected EOF or reset within {within:?}, got {end:?}"
    );
    end
}

/// Asserts that nothing (no byte, no EOF, no reset) arrives for `quiet`.
pub fn expect_silence(s: &mut TcpStream, quiet: Duration) {
    let (data, end) = read_until_end(s, quiet, 1);
    assert!(data.is_empty(), "expected silence, got data {data:?}");
    assert_eq!(end, Ending::TimedOut, "expected silence for {quiet:?}");
}

/// Opens a client through the proxy at `proxy`, sends `greeting`, and returns the client and
/// the backend's side of the pair once the greeting has arrived there.
pub fn open_pair(
    proxy: SocketAddr,
    accepted: &Accepted,
    greeting: &[u8],
) -> (TcpStream, TcpStream) {
    let mut client = connect(proxy);
    client.write_all(greeting).expect("write the greeting");
    let mut upstream = accepted.next(IO_TIMEOUT);
    assert_eq!(
        read_exact_within(&mut upstream, greeting.len(), IO_TIMEOUT),
        greeting
    );
    (client, upstream)
}

/// Writes `msg` and reads the same bytes back within [`IO_TIMEOUT`].
pub fn round_trip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).expect("write a message");
    let back = read_exact_within(s, msg.len(), IO_TIMEOUT);
    assert_eq!(back, msg, "echo differs");
}

// ---------------------------------------------------------------------------------------------
// A verifiable byte stream
// ---------------------------------------------------------------------------------------------

/// A pseudo-random byte stream of prime period, so that a lost, doubled or reordered chunk
/// shows up; compared with `memcmp`, which stays fast in debug builds.
pub struct Pattern {
    data: Vec<u8>,
}

/// Period of a [`Pattern`]: a prime a little under 1 MiB.
const PATTERN_PERIOD: usize = 1_048_573;

impl Pattern {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Pattern {
        let mut rng = XorShift::new(seed);
        let mut data = Vec::with_capacity(PATTERN_PERIOD);
        while data.len() < PATTERN_PERIOD {
            data.extend_from_slice(&rng.next().to_le_bytes());
        }
        data.truncate(PATTERN_PERIOD);
        Pattern { data }
    }

    /// The bytes of the stream starting at `pos`, up to `max` of them (at least one).
    pub fn chunk(&self, pos: u64, max: usize) -> &[u8] {
        let start = (pos % PATTERN_PERIOD as u64) as usize;
        let end = PATTERN_PERIOD.min(start + max);
        &self.data[start..end]
    }

    /// True if `data` is the stream's content at `pos`.
    pub fn matches(&self, mut pos: u64, mut data: &[u8]) -> bool {
        while !data.is_empty() {
            let expected = self.chunk(pos, data.len());
            if data[..expected.len()] != *expected {
                return false;
            }
            pos += expected.len() as u64;
            data = &data[expected.len()..];
        }
        true
    }

    /// Writes the first `total` bytes of the stream to `w`.
    pub fn write_to(&self, w: &mut impl Write, total: u64) -> io::Result<()> {
        let mut pos = 0;
        while pos < total {
            let piece = self.chunk(pos, (total - pos).min(256 * 1024) as usize);
            w.write_all(piece)?;
            pos += piece.len() as u64;
        }
        Ok(())
    }

    /// Reads the stream from `s` until EOF, an error or `within`, checking every byte against
    /// the pattern; returns the count of matching bytes and how the stream ended. Panics at the
    /// first byte that differs or if more than `total` bytes arrive.
    pub fn read_from(&self, s: &mut TcpStream, total: u64, within: Duration) -> (u64, Ending) {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 256 * 1024];
        let mut pos = 0u64;
        loop {
            match read_by(s, &mut buf, deadline) {
                Ok(n) => {
                    assert!(
                        pos + n as u64 <= total,
                        "received more than the {total} bytes sent"
                    );
                    assert!(
                        self.matches(pos, &buf[..n]),
                        "stream corrupted in the {n} bytes at offset {pos}"
                    );
                    pos += n as u64;
                }
                Err(end) => {
                    restore_timeout(s);
                    return (pos, end);
                }
            }
        }
    }
}

/// xorshift64*: a small deterministic generator for payloads.
pub struct XorShift(u64);

impl XorShift {
    /// A generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> XorShift {
        XorShift((seed ^ 0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `len` pseudo-random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The built binary
// ---------------------------------------------------------------------------------------------

/// Path of the built `ringproxy` binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringproxy")
}

/// The stderr lines of a child, collected by a thread, with a way to wait for one.
#[derive(Default)]
struct Lines {
    lines: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

/// A running `ringproxy` process, killed on drop.
pub struct BinProxy {
    child: Child,
    /// The address it listens on, read from its first info line.
    pub addr: SocketAddr,
    log: Arc<Lines>,
}

impl BinProxy {
    /// Runs the binary with `--listen 127.0.0.1:0` and `args`.
    pub fn start(args: &[&str]) -> BinProxy {
        let mut cmd = Command::new(bin());
        cmd.args(["--listen", "127.0.0.1:0"]).args(args);
        if engine() != EngineMode::Ring {
            let name = ringproxy::settings::kinds::Named::name(engine());
            cmd.args(["--engine", name]);
        }
        BinProxy::spawn(cmd)
    }

    /// Runs `cmd` (which must end up exec'ing the binary) and waits for its listen line.
    pub fn spawn(mut cmd: Command) -> BinProxy {
        cmd.env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ringproxy");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Lines::default());
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lines.lock().unwrap().0.push(line);
                sink.changed.notify_all();
            }
            sink.lines.lock().unwrap().1 = true;
            sink.changed.notify_all();
        });
        let mut proxy = BinProxy {
            child,
            addr: v4_any_port(),
            log,
        };
        let line = proxy
            .wait_for_line(|l| l.contains("listening on "), IO_TIMEOUT)
            .unwrap_or_else(|| panic!("no listen line; stderr: {:?}", proxy.log()));
        proxy.addr = parse_listen_line(&line)
            .unwrap_or_else(|| panic!("cannot parse the listen line {line:?}"));
        // The listen line comes before the signal handlers (and their descriptors) exist;
        // wait for those too, so that descriptor baselines and signals see a started proxy.
        let pid = proxy.pid();
        let wanted = signal_bit(libc::SIGINT) | signal_bit(libc::SIGTERM);
        assert!(
            wait_until(IO_TIMEOUT, || caught_signals(pid) & wanted == wanted),
            "ringproxy never installed its SIGINT/SIGTERM handlers"
        );
        proxy
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stderr line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lines.lock().unwrap().0.clone()
    }

    /// Waits for a stderr line matching `pred`; `None` if stderr closed or `within` passed.
    pub fn wait_for_line(
        &self,
        mut pred: impl FnMut(&str) -> bool,
        within: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut guard = self.log.lines.lock().unwrap();
        loop {
            if let Some(line) = guard.0.iter().find(|l| pred(l)) {
                return Some(line.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if guard.1 || left.is_zero() {
                return None;
            }
            guard = self.log.changed.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// Open descriptors of the process.
    pub fn fd_count(&self) -> usize {
        fd_count(self.pid())
    }

    /// Resident memory of the process in KiB.
    pub fn rss_kib(&self) -> u64 {
        vm_rss_kib(self.pid())
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
    }

    /// Waits for the process to exit; `None` if it is still running after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(within, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for BinProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in `... listening on 127.0.0.1:PORT, upstreams [...]`.
pub fn parse_listen_line(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    rest.split(',').next()?.trim().parse().ok()
}

/// The outcome of a run of the binary that was expected to exit by itself.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` and waits at most `within` for it to exit (killing it then).
pub fn run_bin(args: &[&str], within: Duration) -> Finished {
    let child = Command::new(bin())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringproxy");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(out) => {
            let out = out.expect("wait for ringproxy");
            Finished {
                status: out.status,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("ringproxy {args:?} did not exit within {within:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The in-process proxy's socket options
// ---------------------------------------------------------------------------------------------

/// Finds the socket of this process whose local and peer addresses are as given and returns
/// what `get` reads of it. The in-process proxy's sockets live in the test process.
pub fn option_of<T>(local: SocketAddr, peer: SocketAddr, get: impl Fn(&SockRef) -> T) -> Option<T> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: only borrowed for a few getsockopt calls; if another thread closes the fd
        // meanwhile the calls fail (or the addresses differ) and the fd is skipped.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let s = SockRef::from(&fd);
        let addr = |a: std::io::Result<socket2::SockAddr>| a.ok().and_then(|a| a.as_socket());
        if addr(s.local_addr()) == Some(local) && addr(s.peer_addr()) == Some(peer) {
            return Some(get(&s));
        }
    }
    None
}

/// Opens a connection through `proxy` to `accepted`'s backend and reads `get` of the
/// proxy's two sockets: (client side, upstream side).
pub fn proxy_socket_options<T>(
    proxy: &TestProxy,
    backend: SocketAddr,
    accepted: &Accepted,
    get: impl Fn(&SockRef) -> T,
) -> (Option<T>, Option<T>) {
    let mut client = connect(proxy.addr);
    client.write_all(b"x").unwrap();
    let mut upstream = accepted.next(IO_TIMEOUT);
    let mut byte = [0u8; 1];
    upstream.read_exact(&mut byte).unwrap();
    // The proxy's client socket: local = the proxy's address, peer = our client.
    let client_side = option_of(proxy.addr, client.local_addr().unwrap(), &get);
    // The proxy's upstream socket: local = what the backend sees as its peer.
    let upstream_side = option_of(upstream.peer_addr().unwrap(), backend, &get);
    (client_side, upstream_side)
}

// ---------------------------------------------------------------------------------------------
// /proc probes (Linux)
// ---------------------------------------------------------------------------------------------

/// Number of open descriptors of `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

/// The `SigCgt` mask of `pid` (signals with a handler), or 0 if unreadable.
pub fn caught_signals(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .unwrap_or(0)
}

/// The bit of `signal` in a `/proc` signal mask.
pub fn signal_bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

/// `VmRSS` of `pid` in KiB.
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Socket inodes held open by `pid`.
pub fn socket_inodes(pid: u32) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return inodes;
    };
    for entry in dir.flatten() {
        if let Ok(link) = std::fs::read_link(entry.path())
            && let Some(inode) = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
                .and_then(|l| l.parse().ok())
        {
            inodes.insert(inode);
        }
    }
    inodes
}

/// TCP state code of `CLOSE_WAIT` in `/proc/net/tcp`.
pub const TCP_CLOSE_WAIT: u8 = 0x08;

/// One row of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, Copy)]
pub struct TcpRow {
    pub local_port: u16,
    pub remote_port: u16,
    pub state: u8,
    pub inode: u64,
}

/// Every TCP socket of this network namespace, IPv4 and IPv6.
pub fn tcp_rows() -> Vec<TcpRow> {
    let mut rows = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let port = |field: &str| {
                field
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            let (Some(local_port), Some(remote_port)) = (port(f[1]), port(f[2])) else {
                continue;
            };
            let (Ok(state), Ok(inode)) = (u8::from_str_radix(f[3], 16), f[9].parse()) else {
                continue;
            };
            rows.push(TcpRow {
                local_port,
                remote_port,
                state,
                inode,
            });
        }
    }
    rows
}

/// The body (and head) of `GET path` from the HTTP server at `addr`.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = connect(addr);
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let (data, _) = read_until_end(&mut s, IO_TIMEOUT, 1 << 20);
    String::from_utf8_lossy(&data).into_owned()
}

/// A connection to `to` from the local address `from` (any loopback address: 127.0.0.0/8
/// are all this host's), with the deadlines of [`connect`]; panics if it fails.
pub fn connect_from(from: std::net::IpAddr, to: SocketAddr) -> TcpStream {
    try_connect_from(from, to).unwrap_or_else(|e| panic!("connect from {from} to {to}: {e}"))
}

/// [`connect_from`], or its error (a refused client may be reset while connecting).
pub fn try_connect_from(from: std::net::IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(to),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket.connect_timeout(&to.into(), IO_TIMEOUT)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}
