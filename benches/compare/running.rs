//! The proxies' processes: every started proxy is owned by a [`Running`] guard. Its `Drop`
//! kills the proxy's whole process group (nginx's master and worker) and removes its private
//! directory, so proxies go away at the end, on an error and on a panic. Ctrl-C and SIGTERM
//! are caught by [`install_signal_cleanup`], which kills every live group before exiting,
//! each proxy gets `PR_SET_PDEATHSIG` so it dies even if the harness is SIGKILLed, and
//! [`clean_stale`] removes what a harness killed outright left behind.

use crate::sys::{self, Context, Pid};
use crate::targets::Kind;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Process groups and directories of proxies that are running now, for the signal handler.
static LIVE: Mutex<Vec<(Pid, PathBuf)>> = Mutex::new(Vec::new());

/// Kills every live proxy group and removes their directories when SIGINT, SIGTERM or
/// SIGHUP arrives, then exits with 130. Call after pinning: it starts a thread.
pub fn install_signal_cleanup() -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context(|| "install signal handlers".into())?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
                for (pgid, dir) in live.iter() {
                    sys::kill_group(*pgid, libc::SIGKILL);
                    let _ = fs::remove_dir_all(dir);
                }
                eprintln!("compare: signal {signal}: stopped {} proxies", live.len());
                std::process::exit(130);
            }
        })
        .context(|| "start the signal thread".into())?;
    Ok(())
}

/// A proxy process (group) started by the harness; killed and cleaned up on drop.
pub struct Running {
    /// Which proxy this is.
    pub kind: Kind,
    child: Child,
    dir: PathBuf,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// The process group leader: the child itself (nginx's master).
    pub pid: Pid,
    /// The processes that move the bytes, to read CPU time and memory from: nginx's
    /// workers, otherwise the child itself.
    pub pids: Vec<Pid>,
}

impl Running {
    /// Spawns `command` in a new process group (pinned to `cpu`, if given), then waits until
    /// it proxies and, for nginx, until its master has forked `workers` workers.
    pub fn spawn(
        kind: Kind,
        mut command: Command,
        dir: PathBuf,
        addr: SocketAddr,
        cpu: Option<usize>,
        workers: usize,
        probe: Probe,
    ) -> Result<Running, String> {
        let log = dir.join("stderr.log");
        let stderr = fs::File::create(&log).context(|| format!("create {}", log.display()))?;
        let stdout = stderr
            .try_clone()
            .context(|| format!("reopen {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        // SAFETY: the closure runs between fork and exec and only makes two system calls
        // (sched_setaffinity, prctl), both async-signal-safe, without allocating.
        unsafe {
            command.pre_exec(move || {
                if let Some(cpu) = cpu {
                    sys::pin_current_thread(cpu)?;
                }
                sys::die_with_parent()
            });
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(format!("start {}: {e}", kind.name()));
            }
        };
        let pgid = child.id() as Pid;
        // Lets a later run find and stop this group if the harness is SIGKILLed.
        let _ = fs::write(dir.join(PGID_FILE), pgid.to_string());
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((pgid, dir.clone()));
        let mut running = Running {
            kind,
            child,
            dir,
            addr,
            pid: pgid,
            pids: vec![pgid],
        };
        running.wait_ready(workers, probe)?;
        Ok(running)
    }

    /// Waits (up to 10 s) until `probe` succeeds, then finds the processes to measure
    /// (nginx: its `workers` workers).
    fn wait_ready(&mut self, workers: usize, probe: Probe) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited during start-up ({status}); its log:\n{}",
                    self.kind.name(),
                    self.logs()
                ));
            }
            if probe.check(self.addr).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not proxy within 10 s; its log:\n{}",
                    self.kind.name(),
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.kind == Kind::Nginx {
            // The master only forks; the workers carry the connections.
            self.pids = self.nginx_workers(workers, deadline)?;
        }
        Ok(())
    }

    /// The master's children once there are `workers` of them (the probe may have gone
    /// through the first worker before the master forked the others).
    fn nginx_workers(&self, workers: usize, deadline: Instant) -> Result<Vec<Pid>, String> {
        loop {
            let children = sys::children_of(self.pid);
            if children.len() == workers {
                return Ok(children);
            }
            if children.len() > workers || Instant::now() > deadline {
                return Err(format!(
                    "nginx master {} has {} children, expected {workers} workers",
                    self.pid,
                    children.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The proxy's own log files, for error messages.
    fn logs(&self) -> String {
        let mut text = String::new();
        for name in ["stderr.log", "error.log"] {
            if let Ok(content) = fs::read_to_string(self.dir.join(name))
                && !content.trim().is_empty()
            {
                text.push_str(&format!("--- {name}\n{}\n", content.trim_end()));
            }
        }
        if text.is_empty() {
            text.push_str("(empty)");
        }
        text
    }

    /// Warnings and errors the proxy logged so far (empty when none).
    pub fn log_lines(&self) -> Vec<String> {
        ["stderr.log", "error.log"]
            .iter()
            .filter_map(|name| fs::read_to_string(self.dir.join(name)).ok())
            .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let pgid = self.child.id() as Pid;
        sys::kill_group(pgid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Anything left in the group (a slow master, an orphaned worker) is killed outright.
        sys::kill_group(pgid, libc::SIGKILL);
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(g, _)| *g != pgid);
    }
}

/// How a starting proxy is seen to be ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A byte goes through to the plain backend and back (forwarding setups).
    Echo,
    /// A connection is accepted (setups that refuse clients or expect TLS).
    Connect,
}

impl Probe {
    /// One attempt.
    fn check(self, addr: SocketAddr) -> std::io::Result<()> {
        match self {
            Probe::Echo => echo(addr),
            Probe::Connect => {
                let s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
                let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                Ok(())
            }
        }
    }
}

/// Connects, asks the backend to echo, and checks one byte comes back.
fn echo(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    s.write_all(b"E!")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    // Close with RST like the workloads do, so the proxy logs nothing about the probe.
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    if &b == b"!" {
        Ok(())
    } else {
        Err(std::io::Error::other("wrong echo"))
    }
}

/// Prefix of the proxies' private directories: `$TMPDIR/ringproxy-compare-PID-N-KIND`.
const DIR_PREFIX: &str = "ringproxy-compare-";
/// File in a private directory holding the proxy's process group id.
const PGID_FILE: &str = "pgid";
/// Command names a leftover proxy process may have.
const PROXY_NAMES: [&str; 3] = ["nginx", "haproxy", "ringproxy"];

/// Removes what a harness killed outright (SIGKILL: no `Drop`, no signal handler) left
/// behind: its directories and any proxy process still in their process groups (an
/// nginx worker survives its master's `PR_SET_PDEATHSIG`). Only directories whose
/// harness pid is gone are touched, and only processes named like a proxy are killed.
pub fn clean_stale(notes: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let (mut dirs, mut killed) = (0, 0);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(harness) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<Pid>().ok())
        else {
            continue;
        };
        if sys::alive(harness) {
            continue;
        }
        let pgid = fs::read_to_string(entry.path().join(PGID_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<Pid>().ok());
        if let Some(pgid) = pgid {
            for pid in sys::all_pids() {
                if let Some((group, comm)) = sys::group_and_name(pid)
                    && group == pgid
                    && PROXY_NAMES.iter().any(|n| comm.starts_with(n))
                {
                    sys::kill_one(pid, libc::SIGKILL);
                    killed += 1;
                }
            }
        }
        if fs::remove_dir_all(entry.path()).is_ok() {
            dirs += 1;
        }
    }
    if dirs + killed > 0 {
        notes.push(format!(
            "cleaned up after an earlier harness that was killed: {dirs} directories, \
             {killed} proxy processes"
        ));
    }
}

/// A fresh empty private directory for one proxy.
pub fn private_dir(kind: Kind) -> Result<PathBuf, String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "{DIR_PREFIX}{}-{n}-{}",
        std::process::id(),
        kind.name()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}
