//! What is measured: no proxy (`direct`), ringproxy with each engine (and with an allow
//! list), another ringproxy build (`baseline`, with `--baseline`), nginx, HAProxy with and
//! without splicing, and a Go `io.Copy` proxy. Finds the programs and starts them (pinned
//! to the proxy CPU under `--cpus pinned`) on a free loopback port, configured for a
//! [`Setup`], each owned by a [`Running`] guard.

use crate::goproxy::GoProxy;
use crate::haproxy::{self, Haproxy};
use crate::nginx::{self, Nginx};
use crate::ringproxy::{Flavour, Ringproxy};
use crate::running::{Probe, Running, private_dir};
use crate::sys::{self, Context};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One column of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The client talks to the backend itself.
    Direct,
    /// The release binary of this crate, `engine = "ring"` (the default).
    Ringproxy,
    /// The same binary with `--engine splice`.
    RingproxySplice,
    /// The same binary with `--engine auto`.
    RingproxyAuto,
    /// The same binary, ring engine, with `--allow 127.0.0.0/8` (a list every client
    /// matches), to show what enabling allow/deny costs.
    RingproxyAllow,
    /// Another ringproxy binary (`--baseline PATH`), started exactly like `Ringproxy`.
    Baseline,
    /// nginx with the stream module.
    Nginx,
    /// HAProxy in `mode tcp`.
    Haproxy,
    /// HAProxy in `mode tcp` with `option splice-request` and `option splice-response`.
    HaproxySplice,
    /// A minimal Go `io.Copy` proxy (which splices).
    Go,
}

impl Kind {
    /// Every target, in report order.
    pub const ALL: [Kind; 10] = [
        Kind::Direct,
        Kind::Ringproxy,
        Kind::RingproxySplice,
        Kind::RingproxyAuto,
        Kind::RingproxyAllow,
        Kind::Baseline,
        Kind::Nginx,
        Kind::Haproxy,
        Kind::HaproxySplice,
        Kind::Go,
    ];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::Ringproxy => "ringproxy",
            Kind::RingproxySplice => "ringproxy-splice",
            Kind::RingproxyAuto => "ringproxy-auto",
            Kind::RingproxyAllow => "ringproxy-allow",
            Kind::Baseline => "baseline",
            Kind::Nginx => "nginx",
            Kind::Haproxy => "haproxy",
            Kind::HaproxySplice => "haproxy-splice",
            Kind::Go => "go",
        }
    }

    /// How this crate's binary is started for this target, if it is one of its flavours.
    fn flavour(self) -> Option<Flavour> {
        let (engine, allow) = match self {
            Kind::Ringproxy => (None, false),
            Kind::RingproxySplice => (Some("splice"), false),
            Kind::RingproxyAuto => (Some("auto"), false),
            Kind::RingproxyAllow => (None, true),
            _ => return None,
        };
        Some(Flavour {
            engine,
            allow,
            pipe: None,
        })
    }
}

/// How a proxy is configured for a workload. Every variant names the backend(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Forward every client to the backend.
    Forward(SocketAddr),
    /// Refuse every client (they all come from 127.0.0.1) by the proxy's own access rule:
    /// ringproxy `--deny 127.0.0.0/8`, nginx `deny all`, HAProxy `tcp-request connection
    /// reject`.
    Deny(SocketAddr),
    /// Forward with a per-connection upstream → client rate, bytes per second (ringproxy
    /// `--download-rate`; not measured on other proxies).
    DownloadRate(SocketAddr, u64),
    /// Two routes on one address chosen by the ClientHello's server name:
    /// [`crate::tls::SNI_NAME`] to `a`, anything else to `fallback` (ringproxy `sni`
    /// routes, nginx `ssl_preread` + `map`, HAProxy `req.ssl_sni` + `use_backend`).
    Sni { a: SocketAddr, fallback: SocketAddr },
}

/// What a proxy's configuration needs besides the setup.
pub struct Limits {
    /// nginx's `worker_processes`.
    pub workers: usize,
    /// nginx's `worker_rlimit_nofile`; what HAProxy may open.
    pub fd_limit: u64,
    /// Connections the proxy should hold (HAProxy `maxconn`; nginx's
    /// `worker_connections` is twice that, plus 64).
    pub max_conns: usize,
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
    /// The Go proxy, when Go is installed.
    pub go: Option<GoProxy>,
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
    /// `ringproxy` and `baseline` must run; the others are optional. The Go proxy is built
    /// only when `want_go`.
    pub fn detect(
        ringproxy: &Path,
        baseline: Option<&Path>,
        workers: usize,
        fd_limit: u64,
        proxy_cpu: Option<usize>,
        want_go: bool,
        notes: &mut Vec<String>,
    ) -> Result<Tools, String> {
        Ok(Tools {
            ringproxy: Ringproxy::detect(Kind::Ringproxy, ringproxy, workers, notes)?,
            baseline: baseline
                .map(|path| Ringproxy::detect(Kind::Baseline, path, workers, notes))
                .transpose()?,
            nginx_workers: workers,
            nginx: nginx::detect(notes),
            haproxy: haproxy::detect(notes),
            go: if want_go {
                GoProxy::build(ringproxy, notes)
            } else {
                None
            },
            // What is left (at least 2000) serves the splice engine's pipes.
            max_conns: (fd_limit.saturating_sub(2000) / 2).clamp(64, 9000) as usize,
            fd_limit,
            proxy_cpu,
        })
    }

    /// Whether `kind` can be measured here.
    pub fn available(&self, kind: Kind) -> bool {
        match kind {
            Kind::Direct
            | Kind::Ringproxy
            | Kind::RingproxySplice
            | Kind::RingproxyAuto
            | Kind::RingproxyAllow => true,
            Kind::Baseline => self.baseline.is_some(),
            Kind::Nginx => self.nginx.is_some(),
            Kind::Haproxy | Kind::HaproxySplice => self.haproxy.is_some(),
            Kind::Go => self.go.is_some(),
        }
    }

    /// Starts proxy `kind` configured for `setup`, with `buffer` bytes per direction (and
    /// `pipe` bytes per pipe where it splices), and waits until `probe` goes through.
    pub fn start(
        &self,
        kind: Kind,
        (buffer, pipe): (usize, usize),
        setup: Setup,
        probe: Probe,
    ) -> Result<Running, String> {
        let dir = private_dir(kind)?;
        let port = sys::free_port().context(|| "find a free port".into())?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let not_here = || format!("{} is not available", kind.name());
        let limits = Limits {
            workers: self.nginx_workers,
            fd_limit: self.fd_limit,
            max_conns: self.max_conns,
        };
        let command = match kind {
            Kind::Direct => return Err("direct has no proxy to start".into()),
            Kind::Baseline => self.baseline.as_ref().ok_or_else(not_here)?.command(
                &dir,
                listen,
                setup,
                buffer,
                self.max_conns,
                Flavour::default(),
            )?,
            Kind::Nginx => self
                .nginx
                .as_ref()
                .ok_or_else(not_here)?
                .command(&dir, listen, setup, buffer, &limits)?,
            Kind::Haproxy | Kind::HaproxySplice => {
                self.haproxy.as_ref().ok_or_else(not_here)?.command(
                    &dir,
                    listen,
                    setup,
                    buffer,
                    &limits,
                    (kind == Kind::HaproxySplice).then_some(pipe),
                )?
            }
            Kind::Go => match setup {
                Setup::Forward(backend) => self
                    .go
                    .as_ref()
                    .ok_or_else(not_here)?
                    .command(listen, backend),
                _ => return Err("go: only forwarding is measured".into()),
            },
            _ => {
                let mut flavour = kind.flavour().ok_or_else(not_here)?;
                flavour.pipe = flavour.engine.map(|_| pipe);
                self.ringproxy
                    .command(&dir, listen, setup, buffer, self.max_conns, flavour)?
            }
        };
        let workers = match kind {
            Kind::Nginx => self.nginx_workers,
            _ => 1,
        };
        Running::spawn(kind, command, dir, listen, self.proxy_cpu, workers, probe)
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
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
