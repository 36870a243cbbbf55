//! The ringproxy binaries under test, this crate's (`ringproxy`) and the `--baseline` one:
//! what they are (version, flags they understand, the source they were built from) and the
//! one command line every run starts either with.

use crate::sys::Context;
use crate::targets::{Kind, Setup, output_of};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A ringproxy release binary and what the harness learned about it.
#[derive(Debug, Clone)]
pub struct Ringproxy {
    /// Path of the binary.
    pub path: PathBuf,
    /// `ringproxy --version`.
    pub version: String,
    /// `--workers N` to pass, when its `--help` lists the flag.
    pub workers: Option<usize>,
    /// Where it was built from, for the report header (see [`source_of`]).
    pub source: String,
}

impl Ringproxy {
    /// Asks the binary at `path`, measured as target `kind`, for its version and flags; a
    /// `--workers` other than 1 that it cannot take adds a line to `notes`.
    pub fn detect(
        kind: Kind,
        path: &Path,
        workers: usize,
        notes: &mut Vec<String>,
    ) -> Result<Ringproxy, String> {
        let (version, _) = output_of(path, &["--version"])
            .context(|| format!("run {} --version", path.display()))?;
        let (help, _) =
            output_of(path, &["--help"]).context(|| format!("run {} --help", path.display()))?;
        let workers = if help.contains("--workers") {
            Some(workers)
        } else {
            if workers != 1 {
                notes.push(format!(
                    "--workers {workers} ignored for {}: {} has no --workers flag",
                    kind.name(),
                    path.display()
                ));
            }
            None
        };
        Ok(Ringproxy {
            path: path.to_path_buf(),
            version: version.trim().to_string(),
            workers,
            source: source_of(kind, path),
        })
    }

    /// The command that runs `setup` on `listen` with `buffer` bytes per direction, at
    /// most `max_conns` connections and the engine and allow list of `flavour`. Every setup
    /// but [`Setup::Sni`] is one route on the command line; `Sni` is two routes sharing the
    /// address, written as a configuration file into `dir`.
    pub fn command(
        &self,
        dir: &Path,
        listen: SocketAddr,
        setup: Setup,
        buffer: usize,
        max_conns: usize,
        flavour: Flavour,
    ) -> Result<Command, String> {
        let mut cmd = Command::new(&self.path);
        if let Setup::Sni { a, fallback } = setup {
            let config = sni_config(listen, a, fallback, buffer, max_conns, self.workers);
            let path = dir.join("ringproxy.toml");
            std::fs::write(&path, config).context(|| format!("write {}", path.display()))?;
            cmd.arg("--config").arg(path).arg("-q");
            return Ok(cmd);
        }
        let backend = match setup {
            Setup::Forward(b) | Setup::Deny(b) | Setup::DownloadRate(b, _) => b,
            Setup::Sni { a, .. } => a,
        };
        cmd.arg("--listen")
            .arg(listen.to_string())
            .arg("--upstream")
            .arg(backend.to_string())
            .arg("--buffer-size")
            .arg(buffer.to_string())
            .args(["--connect-timeout", "5s", "--idle-timeout", "10m"])
            .arg("--max-conns")
            .arg(max_conns.to_string())
            .args(["--backlog", "1024", "-q"]);
        if let Some(n) = self.workers {
            cmd.arg("--workers").arg(n.to_string());
        }
        if let Some(engine) = flavour.engine {
            cmd.arg("--engine").arg(engine);
        }
        if let Some(pipe) = flavour.pipe {
            cmd.arg("--pipe-size").arg(pipe.to_string());
        }
        if flavour.allow {
            cmd.args(["--allow", "127.0.0.0/8"]);
        }
        match setup {
            Setup::Deny(_) => {
                cmd.args(["--deny", "127.0.0.0/8"]);
            }
            Setup::DownloadRate(_, rate) => {
                cmd.arg("--download-rate").arg(rate.to_string());
            }
            _ => {}
        }
        Ok(cmd)
    }
}

/// How this crate's binary is started beyond the setup: its engine and pipe size (`None`:
/// the defaults, so a baseline without `--engine` starts too) and whether it gets an allow
/// list that every loopback client matches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flavour {
    /// `--engine` value.
    pub engine: Option<&'static str>,
    /// `--allow 127.0.0.0/8`.
    pub allow: bool,
    /// `--pipe-size` value (with an engine that splices).
    pub pipe: Option<usize>,
}

/// Two routes on `listen`: [`crate::tls::SNI_NAME`] to `a`, `*` to `fallback`.
fn sni_config(
    listen: SocketAddr,
    a: SocketAddr,
    fallback: SocketAddr,
    buffer: usize,
    max_conns: usize,
    workers: Option<usize>,
) -> String {
    let workers = workers.map_or_else(String::new, |n| format!("workers = {n}\n"));
    let route = |name: &str, sni: &str, server: SocketAddr| {
        format!(
            "[[route]]\nname = \"{name}\"\nlisten = [\"{listen}\"]\nsni = [\"{sni}\"]\n\
             servers = [{{ addr = \"{server}\" }}]\n\n"
        )
    };
    format!(
        "# generated by benches/compare.rs\nmax_conns = {max_conns}\n{workers}\n\
         [defaults]\nbuffer_size = {buffer}\nconnect_timeout = \"5s\"\n\
         idle_timeout = \"10m\"\nbacklog = 1024\n\n{}{}",
        route("a", crate::tls::SNI_NAME, a),
        route("fallback", "*", fallback)
    )
}

/// Where the binary of target `kind` was built from. This crate's binary: its checkout's
/// [`source_revision`]. The baseline: its path, plus the revision of the ringproxy checkout
/// it lies in (such as `/tmp/base/target/release/ringproxy`), if any; just the path otherwise.
fn source_of(kind: Kind, path: &Path) -> String {
    if kind == Kind::Ringproxy {
        return source_revision(Path::new(env!("CARGO_MANIFEST_DIR")));
    }
    match checkout_of(path) {
        Some(dir) => {
            let mut text = format!(
                "{}; {}, the checkout it lies in",
                path.display(),
                source_revision(&dir)
            );
            if older_than_sources(path, &dir) {
                text.push_str(
                    ", but the binary is older than the last commit there that changed the \
                     sources: maybe a stale build",
                );
            }
            text
        }
        None => format!("{}; no ringproxy checkout around it", path.display()),
    }
}

/// The nearest directory above `binary` whose `Cargo.toml` is ringproxy's.
fn checkout_of(binary: &Path) -> Option<PathBuf> {
    let binary = binary.canonicalize().ok()?;
    binary
        .ancestors()
        .skip(1)
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|toml| toml.contains("name = \"ringproxy\""))
        })
        .map(Path::to_path_buf)
}

/// Whether `binary` was last written before the newest commit of checkout `dir` that changed
/// `src/` or the manifests was made: then it was likely built from an older commit (the
/// checkout moved on without a rebuild).
fn older_than_sources(binary: &Path, dir: &Path) -> bool {
    let built = std::fs::metadata(binary)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let sources = [
        "log",
        "-1",
        "--format=%ct",
        "--",
        "src",
        "Cargo.toml",
        "Cargo.lock",
    ];
    let committed = git(dir, &sources).and_then(|t| t.parse::<u64>().ok());
    matches!((built, committed), (Some(b), Some(c)) if b.as_secs() < c)
}

/// Runs `git -C dir args`; its trimmed stdout on success.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Where a ringproxy in checkout `dir` was built from: `git describe --always` of its
/// commit (with `+changes in src/` when `src/` differs from it), or the directory when it
/// is no git checkout.
fn source_revision(dir: &Path) -> String {
    match git(dir, &["describe", "--always"]) {
        Some(commit) => {
            let dirty =
                git(dir, &["status", "--porcelain", "--", "src"]).is_some_and(|s| !s.is_empty());
            format!(
                "git {commit}{}",
                if dirty { "+changes in src/" } else { "" }
            )
        }
        None => format!("built from {}, not a git checkout", dir.display()),
    }
}
