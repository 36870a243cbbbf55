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
