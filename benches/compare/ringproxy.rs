//! The ringproxy binary under test: what it is (version, flags it understands, the source it
//! was built from) and the command line every run starts it with.

use crate::sys::Context;
use crate::targets::output_of;
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
}

impl Ringproxy {
    /// Asks the binary at `path` for its version and flags; a `--workers` other than 1 that
    /// it cannot take adds a line to `notes`.
    pub fn detect(
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
                    "--workers {workers} ignored: this ringproxy has no --workers flag"
                ));
            }
            None
        };
        Ok(Ringproxy {
            path: path.to_path_buf(),
            version: version.trim().to_string(),
            workers,
        })
    }

    /// The command that proxies `listen` to `backend` with `buffer` bytes per direction and
    /// at most `max_conns` connections.
    pub fn command(
        &self,
        listen: SocketAddr,
        backend: SocketAddr,
        buffer: usize,
        max_conns: usize,
    ) -> Command {
        let mut cmd = Command::new(&self.path);
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
        cmd
    }
}

/// Where a ringproxy in checkout `dir` was built from: the git commit (with
/// `+changes in src/` when `src/` differs from it), or the directory when it is no git
/// checkout.
pub fn source_revision(dir: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--", "src"]).is_some_and(|s| !s.is_empty());
            format!(
                "git {commit}{}",
                if dirty { "+changes in src/" } else { "" }
            )
        }
        None => format!("built from {}, not a git checkout", dir.display()),
    }
}
