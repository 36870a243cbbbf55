//! The man page `dist/ringproxy.1` is the `--help` text in man(7) form, so it cannot drift:
//! this test renders it from the binary's help and compares. After changing the help, run
//! `RINGPROXY_BLESS=1 cargo test --test man` to write the new page.

use std::path::Path;
use std::process::Command;

/// Escapes `line` for roff: backslashes, and a leading `.` or `'` that would be a request.
fn roff(line: &str) -> String {
    let line = line.replace('\\', "\\e").replace('-', "\\-");
    if line.starts_with('.') || line.starts_with('\'') {
        format!("\\&{line}")
    } else {
        line
    }
}

/// The man page for `help` (the `--help` text) of version `version`.
fn man_page(help: &str, version: &str) -> String {
    let mut lines = help.lines();
    let title = lines.next().unwrap_or_default();
    let summary = title.split_once(" - ").map_or(title, |(_, s)| s);
    let mut out = format!(
        ".TH RINGPROXY 1 \"\" \"ringproxy {version}\" \"User Commands\"\n\
         .SH NAME\nringproxy \\- {}\n",
        roff(summary)
    );
    let mut section = String::new();
    for line in lines {
        let heading = line.strip_suffix(':').filter(|h| {
            !h.starts_with(' ')
                && !h.is_empty()
                && h.chars().all(|c| c.is_ascii_uppercase() || c == ' ')
        });
        if let Some(heading) = heading {
            if !section.is_empty() {
                out.push_str(".fi\n");
            }
            section = heading.to_string();
            out.push_str(&format!(".SH {}\n.nf\n", roff(heading)));
        } else if section.is_empty() {
            continue;
        } else if line.is_empty() {
            out.push_str(".sp\n");
        } else {
            out.push_str(&roff(line));
            out.push('\n');
        }
    }
    if !section.is_empty() {
        out.push_str(".fi\n");
    }
    out.push_str(
        ".SH FILES\n.TP\n.I examples/*.toml\ncommented configurations (every key, redis, \
         postgres, TLS passthrough by SNI)\n.TP\n.I dist/ringproxy.service\na systemd unit\n\
         .SH SEE ALSO\n.BR nginx (8),\n.BR haproxy (1);\nthe README of the ringproxy \
         repository for the configuration file, metrics and architecture.\n",
    );
    out
}

#[test]
fn the_man_page_is_the_help_text() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringproxy"))
        .arg("--help")
        .output()
        .expect("run ringproxy --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    let page = man_page(&help, env!("CARGO_PKG_VERSION"));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/ringproxy.1");
    if std::env::var_os("RINGPROXY_BLESS").is_some() {
        std::fs::write(&path, &page).expect("write dist/ringproxy.1");
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == page,
        "dist/ringproxy.1 is not the current --help; run RINGPROXY_BLESS=1 cargo test --test man"
    );
    for flag in help.split_whitespace().filter(|w| w.starts_with("--")) {
        let flag = flag.trim_end_matches([',', '.', ')', ';']);
        assert!(page.contains(&flag.replace('-', "\\-")), "{flag} missing");
    }
}
