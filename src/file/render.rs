//! `--check`: the effective configuration written as a configuration file, every setting of
//! every route included, from the schema's entries.

use crate::config::Config;
use crate::settings::Entry;
use crate::settings::kinds::quote;
use std::fmt::Write as _;

/// The effective configuration as a configuration file: every setting, defaults (and
/// `[defaults]`) applied to each route, settings that are unset shown as comments saying what
/// unset means, a server's unset options left out. [`super::parse`] reads it back to an equal
/// configuration. This is what `--check` prints.
pub fn render(config: &Config) -> String {
    let mut out = String::from(
        "# ringproxy: effective configuration, defaults included. Settings shown as comments\n\
         # are not set; a server without max_conns is unlimited.\n\n",
    );
    entries(&mut out, &config.global.entries());
    for r in &config.routes {
        out.push_str("\n[[route]]\n");
        let _ = writeln!(out, "name = {}", quote(&r.name));
        let listen: Vec<String> = r
            .endpoints()
            .iter()
            .map(|a| quote(&a.to_string()))
            .collect();
        let _ = writeln!(out, "listen = [{}]", listen.join(", "));
        entries(&mut out, &r.settings.entries());
        out.push_str("servers = [\n");
        for s in &r.upstreams {
            match s.srv() {
                Some(name) => {
                    let _ = write!(out, "  {{ srv = {}", quote(name));
                }
                None => {
                    let _ = write!(out, "  {{ addr = {}", quote(&s.addr));
                }
            }
            for entry in s.options.entries() {
                if let Some(value) = entry.value {
                    let _ = write!(out, ", {} = {value}", entry.key);
                }
            }
            out.push_str(" },\n");
        }
        out.push_str("]\n");
    }
    out
}

fn entries(out: &mut String, entries: &[Entry]) {
    for entry in entries {
        match (&entry.value, entry.unset) {
            (Some(value), _) => {
                let _ = writeln!(out, "{} = {value}", entry.key);
            }
            (None, unset) => {
                let default = unset.unwrap_or("off");
                let _ = writeln!(out, "# {}: not set (default: {default})", entry.key);
            }
        }
    }
}
