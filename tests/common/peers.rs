//! Real peers for the tests: HAProxy, nginx (with its `stream` module), curl and the other
//! programs a test talks to or drives (`ip`, `tc` and `nft` for the fault tests, a headless
//! chromium for the status page), as installed on the machine.
//!
//! [`have`] decides whether a test can run: a missing program skips it with one line naming
//! the Debian package, unless `RINGPROXY_REQUIRE_PEERS=1` (set by `.ci/run`) turns that into
//! a failure. [`Haproxy`] and [`Nginx`] run in the foreground as children of the test, with a
//! generated configuration in a private temporary directory, on free loopback ports; a
//! server is ready once the kernel shows its listening sockets (no probe connection is made,
//! so nginx never logs a "broken header" for one). Dropping a server kills it and removes its
//! directory; the directory stays, and its path is printed, when the test is failing.

use super::{IO_TIMEOUT, socket_inodes, tcp_rows, wait_until};
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Set to `1` to fail, instead of skip, a test whose peer is missing.
pub const REQUIRE_PEERS: &str = "RINGPROXY_REQUIRE_PEERS";

/// Where Debian's `libnginx-mod-stream` puts the module.
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// A program a test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Haproxy,
    Nginx,
    Curl,
    Openssl,
    Dnsmasq,
    SystemdAnalyze,
    Promtool,
    Ip,
    Tc,
    Nft,
    Chromium,
}

impl Peer {
    fn program(self) -> &'static str {
        match self {
            Peer::Haproxy => "haproxy",
            Peer::Nginx => "nginx",
            Peer::Curl => "curl",
            Peer::Openssl => "openssl",
            Peer::Dnsmasq => "dnsmasq",
            Peer::SystemdAnalyze => "systemd-analyze",
            Peer::Promtool => "promtool",
            Peer::Ip => "ip",
            Peer::Tc => "tc",
            Peer::Nft => "nft",
            Peer::Chromium => "chromium",
        }
    }

    /// The Debian packages that provide it.
    fn packages(self) -> &'static str {
        match self {
            Peer::Haproxy => "haproxy",
            Peer::Nginx => "nginx libnginx-mod-stream",
            Peer::Curl => "curl",
            Peer::Openssl => "openssl",
            Peer::Dnsmasq => "dnsmasq-base",
            Peer::SystemdAnalyze => "systemd",
            Peer::Promtool => "prometheus",
            Peer::Ip | Peer::Tc => "iproute2",
            Peer::Nft => "nftables",
            Peer::Chromium => "chromium",
        }
    }

    /// The program's path, or why it cannot be used.
    pub fn path(self) -> Result<PathBuf, String> {
        let name = self.program();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::env::split_paths(&path)
            .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
        let found = dirs
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{name} is not installed"))?;
        if self == Peer::Nginx && nginx_stream_module(&found).is_none() {
            return Err("nginx has no stream module".into());
        }
        Ok(found)
    }
}

/// The `load_module` line nginx needs for `stream` (empty when it is built in), or `None`.
fn nginx_stream_module(nginx: &Path) -> Option<String> {
    if Path::new(STREAM_MODULE).is_file() {
        return Some(format!("load_module {STREAM_MODULE};"));
    }
    let out = Command::new(nginx).arg("-V").output().ok()?;
    let built = String::from_utf8_lossy(&out.stderr).into_owned();
    let static_stream = built
        .split_whitespace()
        .any(|option| option == "--with-stream");
    static_stream.then(String::new)
}

/// True when every one of `peers` can be used. Otherwise prints one line saying what is
/// missing and which Debian packages provide it, and returns false so that the test returns
/// early; with `RINGPROXY_REQUIRE_PEERS=1` it panics with that line instead.
pub fn have(peers: &[Peer]) -> bool {
    let missing: Vec<(Peer, String)> = peers
        .iter()
        .filter_map(|&p| p.path().err().map(|why| (p, why)))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why: Vec<&str> = missing.iter().map(|(_, why)| why.as_str()).collect();
    let packages: Vec<&str> = missing.iter().map(|(p, _)| p.packages()).collect();
    // The test harness names each test's thread after the test.
    let current = thread::current();
    let test = current.name().unwrap_or("a test");
    let line = format!(
        "{test}: {}; to run it: apt-get install {}",
        why.join(", "),
        packages.join(" ")
    );
    if std::env::var(REQUIRE_PEERS).is_ok_and(|v| v == "1") {
        panic!("{line} ({REQUIRE_PEERS}=1)");
    }
    // Straight to the descriptor: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "skipped {line}");
    false
}

/// A directory of its own under the system's temporary directory; removed on drop unless the
/// thread is panicking (then its path is printed, to look at what the peer wrote).
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    /// A new empty directory whose name includes `label`.
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("ringproxy-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir { path }
    }

    /// `name` inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The content of `name`, empty if it does not exist.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.join(name)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("(kept for inspection: {})", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `n` distinct loopback addresses that were free a moment ago.
pub fn free_ports(n: usize) -> Vec<SocketAddr> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    held.iter().map(|l| l.local_addr().unwrap()).collect()
}

/// True when `pid` holds a listening socket on each of `addrs`' ports.
fn listens(pid: u32, addrs: &[SocketAddr]) -> bool {
    const TCP_LISTEN: u8 = 0x0A;
    let own = socket_inodes(pid);
    let rows = tcp_rows();
    addrs.iter().all(|a| {
        rows.iter()
            .any(|r| r.state == TCP_LISTEN && r.local_port == a.port() && own.contains(&r.inode))
    })
}

/// A peer server running as a child of the test; killed on drop.
pub struct Server {
    /// The addresses it listens on, in the order its configuration was given them.
    pub addrs: Vec<SocketAddr>,
    /// Its directory: configuration, logs, stdout and stderr.
    pub dir: TempDir,
    child: Child,
}

impl Server {
    /// Starts `peer` listening on `ports` fresh loopback addresses: `config` writes its
    /// configuration into the directory for those addresses and returns the arguments to
    /// run it with. A port taken between the choice and the bind is retried with new ones.
    pub fn start(
        peer: Peer,
        ports: usize,
        config: impl Fn(&TempDir, &[SocketAddr]) -> Vec<String>,
    ) -> Server {
        let program = peer.path().unwrap_or_else(|e| panic!("{e}"));
        let mut last = String::new();
        for _ in 0..5 {
            let dir = TempDir::new(peer.program());
            let addrs = free_ports(ports);
            let args = config(&dir, &addrs);
            let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
            let mut child = Command::new(&program)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(log("stdout.log"))
                .stderr(log("stderr.log"))
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
            let pid = child.id();
            let mut exited = None;
            let ready = wait_until(IO_TIMEOUT, || {
                exited = child.try_wait().expect("try_wait");
                exited.is_some() || listens(pid, &addrs)
            });
            if ready && exited.is_none() {
                return Server { addrs, dir, child };
            }
            let _ = child.kill();
            let _ = child.wait();
            last = format!(
                "{} {args:?} did not start listening on {addrs:?} (exit: {exited:?})\n\
                 stderr: {}\nerror.log: {}",
                peer.program(),
                dir.read("stderr.log"),
                dir.read("error.log")
            );
            if !last.contains("in use") {
                break;
            }
        }
        panic!("{last}");
    }

    /// The first address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HAProxy in `mode tcp`: one frontend, one server.
pub struct Haproxy(pub Server);

impl Haproxy {
    /// Listens on a free port and forwards every connection to `server`, with `options` on
    /// its `server` line (for example `send-proxy-v2 proxy-v2-options crc32c`) and
    /// `frontend` lines added to the frontend (for example a `unique-id-format`).
    pub fn to(server: SocketAddr, options: &str, frontend: &[&str]) -> Haproxy {
        Haproxy(Server::start(Peer::Haproxy, 1, |dir, addrs| {
            let text = format!(
                "global\n  nbthread 1\n\
                 defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  \
                 timeout server 30s\n\
                 frontend front\n  bind {}\n{}  default_backend back\n\
                 backend back\n  server s1 {server} {options}\n",
                addrs[0],
                frontend
                    .iter()
                    .map(|l| format!("  {l}\n"))
                    .collect::<String>()
            );
            let file = dir.join("haproxy.cfg");
            std::fs::write(&file, text).unwrap();
            // -db: stay in the foreground; -f: this file only.
            vec!["-db".into(), "-f".into(), file.to_str().unwrap().into()]
        }))
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.0.addr()
    }
}

/// nginx with only a `stream` block, as one foreground process (`master_process off`).
pub struct Nginx(pub Server);

/// The format of [`Nginx::access_log`] lines: the listener's port, the client address the
/// PROXY header gave (`-:-` for none) and nginx's session status (400: a broken header).
pub const NGINX_LOG_FORMAT: &str = "$server_port $proxy_protocol_addr:$proxy_protocol_port $status";

impl Nginx {
    /// `listeners` servers that require a PROXY header (`listen … proxy_protocol`) and answer
    /// each connection with the client address it gave, `ADDR:PORT\n`, then close.
    pub fn returning_client_address(listeners: usize) -> Nginx {
        Nginx::stream(listeners, |addrs| {
            addrs
                .iter()
                .map(|a| {
                    format!(
                        "  server {{\n    listen {a} proxy_protocol;\n    \
                         return \"$proxy_protocol_addr:$proxy_protocol_port\\n\";\n  }}\n"
                    )
                })
                .collect()
        })
    }

    /// nginx whose `stream` block holds what `servers` returns for `ports` fresh addresses,
    /// with an access log in [`NGINX_LOG_FORMAT`].
    pub fn stream(ports: usize, servers: impl Fn(&[SocketAddr]) -> String) -> Nginx {
        Nginx(Server::start(Peer::Nginx, ports, |dir, addrs| {
            let module = nginx_stream_module(&Peer::Nginx.path().unwrap()).unwrap_or_default();
            let d = dir.path.to_str().unwrap();
            let text = format!(
                "{module}\nmaster_process off;\ndaemon off;\npid {d}/nginx.pid;\n\
                 error_log {d}/error.log info;\nevents {{ worker_connections 256; }}\n\
                 stream {{\n  log_format peers '{NGINX_LOG_FORMAT}';\n  \
                 access_log {d}/access.log peers;\n{}}}\n",
                servers(addrs)
            );
            let file = dir.join("nginx.conf");
            std::fs::write(&file, text).unwrap();
            // -e: the early error log before the configuration is read, also kept here.
            [
                "-e",
                &format!("{d}/error.log"),
                "-p",
                d,
                "-c",
                file.to_str().unwrap(),
            ]
            .map(String::from)
            .to_vec()
        }))
    }

    /// The `index`th listener's address.
    pub fn addr(&self, index: usize) -> SocketAddr {
        self.0.addrs[index]
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        self.0.dir.read("error.log")
    }

    /// The access log so far, in [`NGINX_LOG_FORMAT`].
    pub fn access_log(&self) -> String {
        self.0.dir.read("access.log")
    }
}

/// Runs `curl` with `args` (after `--silent --show-error --noproxy '*'`, so that no proxy
/// from the environment is used); it is killed if it has not finished `within`.
pub fn curl(args: &[&str], within: Duration) -> Output {
    let secs = within.as_secs().max(1).to_string();
    let quiet = [
        "--silent",
        "--show-error",
        "--noproxy",
        "*",
        "--max-time",
        &secs,
    ];
    let args: Vec<&str> = quiet.iter().chain(args).copied().collect();
    run(Peer::Curl, &args, within)
}

/// Runs `peer` with `args` and stdin closed, collecting its output; it is killed (and the
/// test fails) if it has not finished `within` (plus 5 s of grace).
pub fn run(peer: Peer, args: &[&str], within: Duration) -> Output {
    let program = peer.path().unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", peer.program()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within + Duration::from_secs(5)) {
        Ok(out) => out.expect("wait for curl"),
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!(
                "{} {args:?} did not finish within {within:?}",
                peer.program()
            );
        }
    }
}
