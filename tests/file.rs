//! The configuration file through the public API: `load` from disk, `render` back.

use ringproxy::file::{self, FileError};
use std::path::{Path, PathBuf};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ringproxy.toml")
}

/// A file in a directory of its own under the temporary directory, both removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let dir = std::env::temp_dir().join(format!("ringproxy-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = self.0.parent().map(std::fs::remove_dir);
    }
}

#[test]
fn the_example_loads_and_its_rendering_loads_the_same() {
    let config = file::load(&example()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.routes.len(), 4);
    let rendered = TempFile::new("rendered.toml", &file::render(&config));
    assert_eq!(
        file::load(&rendered.0).unwrap_or_else(|e| panic!("{e}")),
        config
    );
}

#[test]
fn errors_name_file_line_and_field() {
    let text = "[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:8080\"\nservers = [\n  \
                { addr = \"127.0.0.1:1\" },\n  { addr = \"127.0.0.1:2\", weight = 0 },\n]\n";
    let bad = TempFile::new("bad.toml", text);
    let e: FileError = file::load(&bad.0).expect_err("weight 0 is refused");
    assert_eq!(e.path, bad.0);
    assert_eq!(e.line, Some(6));
    assert_eq!(e.field.as_deref(), Some("route[0].servers[1].weight"));
    assert_eq!(
        e.to_string(),
        format!(
            "{}:6: route[0].servers[1].weight: expected a whole number from 1 to 1000, got 0",
            bad.0.display()
        )
    );
}

#[test]
fn every_problem_of_a_file_is_reported_not_just_the_first() {
    let text = "workers = 0\n[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:8080\"\n\
                servers = [{ addr = \"127.0.0.1:1\", weight = 0 }]\n[[route]]\nname = \"b\"\n\
                listen = \"127.0.0.1:8081\"\nidle_timeout = \"forever\"\n\
                servers = [{ addr = \"127.0.0.1:2\" }]\n";
    let bad = TempFile::new("many.toml", text);
    let problems = file::load_all(&bad.0).expect_err("three problems");
    let fields: Vec<_> = problems.iter().map(|e| e.field.as_deref()).collect();
    assert_eq!(
        fields,
        [
            Some("workers"),
            Some("route[0].servers[0].weight"),
            Some("route[1].idle_timeout")
        ]
    );
    assert_eq!(
        file::load(&bad.0).expect_err("first").field,
        problems[0].field
    );
}

#[test]
fn check_resolves_names_and_tries_the_access_log_without_creating_it() {
    let dir = TempFile::new("check.toml", "");
    let log = dir.0.with_file_name("absent-dir").join("access.log");
    let text = format!(
        "access_log = {:?}\n[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:8080\"\n\
         servers = [{{ addr = \"no-such-host.invalid:80\" }}]\n",
        log.display().to_string()
    );
    std::fs::write(&dir.0, text).unwrap();
    let bin = env!("CARGO_BIN_EXE_ringproxy");
    let out = std::process::Command::new(bin)
        .args(["--check", "--config"])
        .arg(&dir.0)
        .output()
        .expect("run ringproxy --check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains("no-such-host.invalid"), "{stderr}");
    assert!(
        lines[1].contains(&log.display().to_string()) && lines[1].contains("append"),
        "{stderr}"
    );

    // With a log in a writable directory and a name that resolves, it passes and creates
    // nothing.
    let log = dir.0.with_file_name("access.log");
    let text = format!(
        "access_log = {:?}\n[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:8080\"\n\
         servers = [{{ addr = \"localhost:80\" }}]\n",
        log.display().to_string()
    );
    std::fs::write(&dir.0, text).unwrap();
    let out = std::process::Command::new(bin)
        .args(["--check", "--config"])
        .arg(&dir.0)
        .output()
        .expect("run ringproxy --check");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!log.exists(), "--check created the access log");
}

#[test]
fn every_example_configuration_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut loaded = 0;
    for entry in std::fs::read_dir(dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            file::load(&path).unwrap_or_else(|e| panic!("{e}"));
            loaded += 1;
        }
    }
    assert!(loaded >= 4, "{loaded} examples");
}

#[test]
fn a_global_key_inside_a_route_says_where_it_belongs() {
    let text = "[[route]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\nworkers = 2\n\
                servers = [{ addr = \"127.0.0.1:2\" }]\n";
    let bad = TempFile::new("global.toml", text);
    let e = file::load(&bad.0).expect_err("workers is global");
    assert!(
        e.message
            .ends_with("(a global setting: put it before the first table)"),
        "{e}"
    );
}
