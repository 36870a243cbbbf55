//! The proxy under soak: the release binary started with a configuration file of two routes
//! (ring and auto engines) over a churning pool of [`Server`]s, reloaded with SIGHUP; its
//! metrics scraped; its memory, descriptors and CPU read from `/proc`.

use crate::backend::Server;
use crate::load::{Errors, Load};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Servers in the configuration at once.
const POOL: usize = 4;
/// How long a server removed from the configuration keeps accepting (connections it accepted
/// run on regardless).
const RETIRE_AFTER: Duration = Duration::from_secs(30);

/// The running proxy; killed on drop.
pub struct Proxy {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// The listen address of each route.
    pub routes: Vec<SocketAddr>,
    /// Where `/metrics` is served.
    pub metrics: SocketAddr,
    config: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
}

/// A free loopback port (bound and released; the proxy binds it right after).
fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

impl Proxy {
    /// Starts `binary` with a configuration in `dir` over `servers`, and waits until it
    /// serves metrics.
    pub fn start(binary: &Path, dir: &Path, servers: &[SocketAddr]) -> Result<Proxy, String> {
        let routes = vec![
            free_port().map_err(|e| e.to_string())?,
            free_port().map_err(|e| e.to_string())?,
        ];
        let metrics = free_port().map_err(|e| e.to_string())?;
        let config = dir.join("soak.toml");
        let log = dir.join("proxy.log");
        let mut proxy_config = String::new();
        render(&mut proxy_config, &routes, metrics, servers);
        std::fs::write(&config, &proxy_config).map_err(|e| format!("write config: {e}"))?;
        let stderr = std::fs::File::create(&log).map_err(|e| format!("create log: {e}"))?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("start {}: {e}", binary.display()))?;
        let pid = child.id();
        let mut proxy = Proxy {
            child,
            pid,
            routes,
            metrics,
            config,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while scrape(proxy.metrics).is_err() {
            if let Ok(Some(status)) = proxy.child.try_wait() {
                return Err(format!("the proxy exited at start-up: {status}"));
            }
            if Instant::now() > deadline {
                return Err("the proxy did not serve metrics within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(proxy)
    }

    /// What a reloading thread needs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            pid: self.pid,
            routes: self.routes.clone(),
            metrics: self.metrics,
            config: self.config.clone(),
        }
    }

    /// Whether the proxy still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rewrites the proxy's configuration and signals it, from another thread.
pub struct Reloader {
    pid: u32,
    routes: Vec<SocketAddr>,
    metrics: SocketAddr,
    config: PathBuf,
}

impl Reloader {
    /// Rewrites the configuration with `servers` and sends SIGHUP.
    pub fn reload(&self, servers: &[SocketAddr]) -> Result<(), String> {
        let mut text = String::new();
        render(&mut text, &self.routes, self.metrics, servers);
        let tmp = self.config.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("write config: {e}"))?;
        std::fs::rename(&tmp, &self.config).map_err(|e| format!("replace config: {e}"))?;
        let status = Command::new("kill")
            .args(["-HUP", &self.pid.to_string()])
            .status()
            .map_err(|e| format!("kill -HUP: {e}"))?;
        if !status.success() {
            return Err(format!("kill -HUP {}: {status}", self.pid));
        }
        Ok(())
    }
}

/// The configuration: two routes (ring, auto) over the same `servers`; access log to
/// /dev/null so that its writer runs without filling a disk.
fn render(text: &mut String, routes: &[SocketAddr], metrics: SocketAddr, servers: &[SocketAddr]) {
    let _ = writeln!(text, "workers = 2\nmetrics = \"{metrics}\"");
    let _ = writeln!(text, "access_log = \"/dev/null\"\ndrain_timeout = \"1s\"");
    let _ = writeln!(
        text,
        "[defaults]\nidle_timeout = \"60s\"\nconnect_timeout = \"5s\""
    );
    for (route, (engine, listen)) in ["ring", "auto"].iter().zip(routes).enumerate() {
        let _ = writeln!(
            text,
            "[[route]]\nname = \"{engine}\"\nlisten = \"{listen}\"\nengine = \"{engine}\""
        );
        let balance = ["round-robin", "least-conn"][route % 2];
        let _ = writeln!(text, "balance = \"{balance}\"\nservers = [");
        for (i, server) in servers.iter().enumerate() {
            let _ = writeln!(text, "  {{ addr = \"{server}\", weight = {} }},", 1 + i % 3);
        }
        let _ = writeln!(text, "]");
    }
}

/// The servers: a pool of [`POOL`] in the configuration, each reload replacing the oldest
/// with one on a loopback address never used before; retired ones kept for a while.
pub struct Pool {
    live: VecDeque<Server>,
    retired: VecDeque<(Instant, Server)>,
    made: u32,
    errors: Errors,
}

impl Pool {
    /// [`POOL`] fresh servers.
    pub fn new(errors: Errors) -> io::Result<Pool> {
        let mut pool = Pool {
            live: VecDeque::new(),
            retired: VecDeque::new(),
            made: 0,
            errors,
        };
        for _ in 0..POOL {
            let server = pool.fresh()?;
            pool.live.push_back(server);
        }
        Ok(pool)
    }

    /// 127.0.x.y for the `made`-th server (127.0.1.1 onwards; wraps after 64 000).
    fn fresh(&mut self) -> io::Result<Server> {
        let n = self.made % 64_000;
        self.made += 1;
        let ip = Ipv4Addr::new(127, 0, 1 + (n / 250) as u8, 1 + (n % 250) as u8);
        Server::start(ip, self.errors.clone())
    }

    /// The addresses in the configuration.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.live.iter().map(|s| s.addr).collect()
    }

    /// Replaces the oldest server with a fresh one; stops servers retired long enough.
    pub fn churn(&mut self) -> io::Result<()> {
        let server = self.fresh()?;
        self.live.push_back(server);
        if let Some(old) = self.live.pop_front() {
            self.retired.push_back((Instant::now(), old));
        }
        while self
            .retired
            .front()
            .is_some_and(|(at, _)| at.elapsed() > RETIRE_AFTER)
        {
            self.retired.pop_front();
        }
        Ok(())
    }

    /// Servers made so far.
    pub fn made(&self) -> u32 {
        self.made
    }
}

/// `GET /metrics`: the body of a 200 answer.
pub fn scrape(addr: SocketAddr) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(io::Error::other(format!(
            "answer: {:?}",
            answer.lines().next().unwrap_or("")
        ))),
    }
}

/// Checks a scrape: the families the soak relies on are there.
pub fn check_scrape(body: &str, errors: &Errors) {
    for family in [
        "ringproxy_connections_active",
        "ringproxy_upstream_connects_total",
    ] {
        if !body.contains(family) {
            errors.record(Load::Scrape, format!("metrics without {family}"));
        }
    }
}

/// What `/proc` says about a process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Open descriptors.
    pub fds: u64,
    /// User + system CPU seconds since it started.
    pub cpu_s: f64,
}

/// Reads [`Usage`] of `pid`; `ticks` is the clock tick rate of `/proc/PID/stat`.
pub fn usage(pid: u32, ticks: f64) -> io::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| io::Error::other("no VmRSS"))?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised name: state is field 3, utime 14 and stime 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| io::Error::other("bad stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let (Some(utime), Some(stime)) = (tick(11), tick(12)) else {
        return Err(io::Error::other("bad stat fields"));
    };
    Ok(Usage {
        rss_kib,
        fds,
        cpu_s: (utime + stime) / ticks,
    })
}

/// The clock tick rate (`getconf CLK_TCK`; 100 if that fails).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}
