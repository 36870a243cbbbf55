//! What is measured: no proxy (`direct`), ringproxy, another ringproxy build (`baseline`,
//! with `--baseline`), nginx and HAProxy. Finds the programs, writes their configurations
//! into a private temporary directory and starts them (pinned to the proxy CPU under
//! `--cpus pinned`) on a free loopback port, each owned by a [`Running`] guard.

use crate::ringproxy::Ringproxy;
use crate::running::{Running, private_dir};
use crate::sys::{self, Context};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One column of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The client talks to the backend itself.
    Direct,
    /// The release binary of this crate.
    Ringproxy,
    /// Another ringproxy binary (`--baseline PATH`), started exactly like `Ringproxy`.
    Baseline,
    /// nginx with the stream module.
    Nginx,
    /// HAProxy in `mode tcp`.
    Haproxy,
}

impl Kind {
    /// Every target, in report order.
    pub const ALL: [Kind; 5] = [
        Kind::Direct,
        Kind::Ringproxy,
        Kind::Baseline,
        Kind::Nginx,
        Kind::Haproxy,
    ];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Ringproxy => "ringproxy",
            Kind::Baseline => "baseline",
            Kind::Nginx => "nginx",
            Kind::Haproxy => "haproxy",
        }
    }
}

/// nginx as found on this machine.
#[derive(Debug, Clone)]
pub struct Nginx {
    path: PathBuf,
    /// `load_module` path when the stream module is dynamic; `None` when built in.
    stream_module: Option<PathBuf>,
    /// Whether `-e` (error log path on the command line, 1.19.5+) is understood.
    has_e_flag: bool,
    /// Whether `proxy_half_close` (1.21.4+) exists; without it nginx ends the session at
    /// the first FIN, and the upload workload cannot get its byte count back.
    has_half_close: bool,
    /// `nginx -v`.
    pub version: String,
}

/// HAProxy as found on this machine.
#[derive(Debug, Clone)]
pub struct Haproxy {
    path: PathBuf,
    /// First line of `haproxy -v`.
    pub version: String,
}

/// The programs available and the limits every proxy is configured with.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The ringproxy release binary of this crate.
    pub ringproxy: Ringproxy,
    /// The `--baseline` binary, when given.
    pub baseline: Option<Ringproxy>,
    /// nginx's `worker_processes` (`--workers`).
    pub nginx_workers: usize,
    /// nginx, when installed with a stream module.
    pub nginx: Option<Nginx>,
    /// HAProxy, when installed.
    pub haproxy: Option<Haproxy>,
    /// Connection limit given to every proxy (`--max-conns`, `maxconn`, half of nginx's
    /// `worker_connections`).
    pub max_conns: usize,
    /// Descriptor limit given to nginx's worker (`worker_rlimit_nofile`).
    pub fd_limit: u64,
    /// CPU the proxies are pinned to: `None` under `--cpus shared` or on one CPU.
    pub proxy_cpu: Option<usize>,
}

impl Tools {
    /// Finds the programs; every one that is missing or unusable adds a line to `notes`.
    /// `ringproxy` and `baseline` must run; nginx and HAProxy are optional.
    pub fn detect(
        ringproxy: &Path,
        baseline: Option<&Path>,
        workers: usize,
        fd_limit: u64,
        proxy_cpu: Option<usize>,
        notes: &mut Vec<String>,
    ) -> Result<Tools, String> {
        Ok(Tools {
            ringproxy: Ringproxy::detect(Kind::Ringproxy, ringproxy, workers, notes)?,
            baseline: baseline
                .map(|path| Ringproxy::detect(Kind::Baseline, path, workers, notes))
                .transpose()?,
            nginx_workers: workers,
            nginx: detect_nginx(notes),
            haproxy: detect_haproxy(notes),
            max_conns: (fd_limit.saturating_sub(2000) / 2).clamp(64, 9000) as usize,
            fd_limit,
            proxy_cpu,
        })
    }

    /// Whether `kind` can be measured here.
    pub fn available(&self, kind: Kind) -> bool {
        match kind {
            Kind::Direct | Kind::Ringproxy => true,
            Kind::Baseline => self.baseline.is_some(),
            Kind::Nginx => self.nginx.is_some(),
            Kind::Haproxy => self.haproxy.is_some(),
        }
    }

    /// Starts proxy `kind` in front of `backend`, with `buffer` bytes per direction, and
    /// waits until a byte makes the round trip through it.
    pub fn start(&self, kind: Kind, buffer: usize, backend: SocketAddr) -> Result<Running, String> {
        let dir = private_dir(kind)?;
        let port = sys::free_port().context(|| "find a free port".into())?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let command = match kind {
            Kind::Direct => return Err("direct has no proxy to start".into()),
            Kind::Ringproxy => self
                .ringproxy
                .command(listen, backend, buffer, self.max_conns),
            Kind::Baseline => self
                .baseline
                .as_ref()
                .ok_or("baseline needs --baseline PATH")?
                .command(listen, backend, buffer, self.max_conns),
            Kind::Nginx => self.nginx_command(&dir, listen, backend, buffer)?,
            Kind::Haproxy => self.haproxy_command(&dir, listen, backend, buffer)?,
        };
        let workers = match kind {
            Kind::Nginx => self.nginx_workers,
            _ => 1,
        };
        Running::spawn(kind, command, dir, listen, self.proxy_cpu, workers)
    }

    /// nginx's command line, after writing its configuration into `dir`.
    fn nginx_command(
        &self,
        dir: &Path,
        listen: SocketAddr,
        backend: SocketAddr,
        buffer: usize,
    ) -> Result<Command, String> {
        let nginx = self.nginx.as_ref().ok_or("nginx is not available")?;
        let load = nginx
            .stream_module
            .as_ref()
            .map(|m| format!("load_module {};\n", m.display()))
            .unwrap_or_default();
        let half_close = if nginx.has_half_close {
            "proxy_half_close on;"
        } else {
            "# proxy_half_close needs nginx 1.21.4"
        };
        // Several workers each get their own listening socket, as ringproxy's workers do.
        let reuseport = if self.nginx_workers > 1 {
            " reuseport"
        } else {
            ""
        };
        let d = dir.display();
        let config = format!(
            "# generated by benches/compare.rs\n\
             {load}daemon off;\n\
             master_process on;\n\
             worker_processes {workers};\n\
             worker_rlimit_nofile {fd};\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{\n    worker_connections {wc};\n}}\n\
             stream {{\n\
             \x20   access_log off;\n\
             \x20   server {{\n\
             \x20       listen {listen} backlog=1024{reuseport};\n\
             \x20       proxy_pass {backend};\n\
             \x20       proxy_buffer_size {buffer};\n\
             \x20       proxy_connect_timeout 5s;\n\
             \x20       proxy_timeout 10m;\n\
             \x20       {half_close}\n\
             \x20   }}\n\
             }}\n",
            workers = self.nginx_workers,
            fd = self.fd_limit,
            wc = self.max_conns * 2 + 64,
        );
        let conf = dir.join("nginx.conf");
        fs::write(&conf, config).context(|| format!("write {}", conf.display()))?;
        let mut cmd = Command::new(&nginx.path);
        cmd.arg("-p").arg(dir).arg("-c").arg(&conf);
        if nginx.has_e_flag {
            cmd.arg("-e").arg(dir.join("error.log"));
        }
        Ok(cmd)
    }

    /// HAProxy's command line, after writing its configuration into `dir`.
    fn haproxy_command(
        &self,
        dir: &Path,
        listen: SocketAddr,
        backend: SocketAddr,
        buffer: usize,
    ) -> Result<Command, String> {
        let haproxy = self.haproxy.as_ref().ok_or("HAProxy is not available")?;
        let config = format!(
            "# generated by benches/compare.rs\n\
             global\n\
             \x20   nbthread 1\n\
             \x20   maxconn {maxconn}\n\
             \x20   tune.bufsize {buffer}\n\
             \x20   pidfile {pid}\n\
             defaults\n\
             \x20   mode tcp\n\
             \x20   timeout connect 5s\n\
             \x20   timeout client 10m\n\
             \x20   timeout server 10m\n\
             frontend bench\n\
             \x20   bind {listen}\n\
             \x20   backlog 1024\n\
             \x20   default_backend upstream\n\
             backend upstream\n\
             \x20   server backend {backend}\n",
            maxconn = self.max_conns,
            pid = dir.join("haproxy.pid").display(),
        );
        let conf = dir.join("haproxy.cfg");
        fs::write(&conf, config).context(|| format!("write {}", conf.display()))?;
        let mut cmd = Command::new(&haproxy.path);
        cmd.arg("-f").arg(&conf).arg("-db");
        Ok(cmd)
    }
}

/// Runs `program args`, returning (stdout, stderr).
pub fn output_of(program: &Path, args: &[&str]) -> std::io::Result<(String, String)> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Looks for `name` in `PATH`, then in the sbin directories root's tools live in.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Finds nginx and its stream module; `None` (with a note) when either is missing.
fn detect_nginx(notes: &mut Vec<String>) -> Option<Nginx> {
    let Some(path) = find_program("nginx") else {
        notes.push("nginx skipped: not installed (apt-get install -y nginx)".into());
        return None;
    };
    let Ok((_, configure)) = output_of(&path, &["-V"]) else {
        notes.push(format!("nginx skipped: {} -V failed", path.display()));
        return None;
    };
    let version = configure
        .lines()
        .next()
        .unwrap_or("nginx")
        .trim()
        .to_string();
    let stream_module = if configure.contains("--with-stream=dynamic") {
        let candidates = [
            "/usr/lib/nginx/modules/ngx_stream_module.so",
            "/usr/share/nginx/modules/ngx_stream_module.so",
            "/usr/lib64/nginx/modules/ngx_stream_module.so",
        ];
        match candidates.iter().map(PathBuf::from).find(|p| p.is_file()) {
            Some(module) => Some(module),
            None => {
                notes.push(
                    "nginx skipped: its stream module is not installed \
                     (apt-get install -y libnginx-mod-stream)"
                        .into(),
                );
                return None;
            }
        }
    } else if configure.contains("--with-stream") {
        None
    } else {
        notes.push("nginx skipped: built without the stream module".into());
        return None;
    };
    Some(Nginx {
        has_e_flag: nginx_at_least(&version, (1, 19, 5)),
        has_half_close: nginx_at_least(&version, (1, 21, 4)),
        path,
        stream_module,
        version,
    })
}

/// Whether `nginx version: nginx/X.Y.Z` is at least `min`.
fn nginx_at_least(version: &str, min: (u32, u32, u32)) -> bool {
    let Some(number) = version.rsplit('/').next() else {
        return false;
    };
    let parts: Vec<u32> = number
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok())
        .collect();
    match parts.as_slice() {
        [a, b, c, ..] => (*a, *b, *c) >= min,
        _ => false,
    }
}

/// Finds HAProxy; `None` (with a note) when missing.
fn detect_haproxy(notes: &mut Vec<String>) -> Option<Haproxy> {
    let Some(path) = find_program("haproxy") else {
        notes.push("haproxy skipped: not installed (apt-get install -y haproxy)".into());
        return None;
    };
    match output_of(&path, &["-v"]) {
        Ok((out, _)) => Some(Haproxy {
            version: out.lines().next().unwrap_or("HAProxy").trim().to_string(),
            path,
        }),
        Err(e) => {
            notes.push(format!(
                "haproxy skipped: {} -v failed: {e}",
                path.display()
            ));
            None
        }
    }
}
