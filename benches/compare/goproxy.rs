//! A minimal Go `io.Copy` proxy of our own (`goproxy/main.go`) as a target, when Go is
//! installed: built into the target directory at bench time. Between two TCP connections
//! Go's `io.Copy` splices (through a pipe of the kernel's default 64 KiB; Go sets no size),
//! so it shows what a splicing proxy with no buffering logic of its own does.

use crate::sys::Context;
use crate::targets::{find_program, output_of};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The built Go proxy.
#[derive(Debug, Clone)]
pub struct GoProxy {
    path: PathBuf,
    /// `go version`.
    pub version: String,
}

impl GoProxy {
    /// Builds `goproxy/main.go` next to `ringproxy` (the release binary's directory);
    /// `None`, with a note, when Go is missing or the build fails.
    pub fn build(ringproxy: &Path, notes: &mut Vec<String>) -> Option<GoProxy> {
        let Some(go) = find_program("go") else {
            notes.push("go skipped: Go is not installed (apt-get install -y golang-go)".into());
            return None;
        };
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/compare/goproxy/main.go");
        let path = ringproxy.with_file_name("compare-goproxy");
        let built = Command::new(&go)
            .arg("build")
            .arg("-o")
            .arg(&path)
            .arg(&source)
            .output()
            .context(|| "run go build".into());
        match built {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                notes.push(format!(
                    "go skipped: go build {} failed: {}",
                    source.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
                return None;
            }
            Err(e) => {
                notes.push(format!("go skipped: {e}"));
                return None;
            }
        }
        let version = output_of(&go, &["version"])
            .map(|(out, _)| out.trim().to_string())
            .unwrap_or_else(|_| "go".into());
        Some(GoProxy { path, version })
    }

    /// The command that proxies `listen` to `backend`, on one OS thread for Go code
    /// (`GOMAXPROCS=1`), as the other proxies run one worker.
    pub fn command(&self, listen: SocketAddr, backend: SocketAddr) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg(listen.to_string())
            .arg(backend.to_string())
            .env("GOMAXPROCS", "1");
        cmd
    }
}
