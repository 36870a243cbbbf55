//! Exposition-format primitives: family headers, sample lines with the `worker` label first
//! and escaped label values, and floats spelled as Prometheus reads them.

use crate::stats::{RouteSnapshot, ServerSnapshot};
use std::fmt::{self, Write as _};

/// Output buffer with the exposition-format primitives.
pub(super) struct Out {
    /// The text so far.
    pub(super) s: String,
}

impl Out {
    /// `# HELP` and `# TYPE` of a family.
    pub(super) fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = write!(self.s, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
    }

    /// One sample line: `name{worker="N",k="v",...} value`.
    pub(super) fn sample(
        &mut self,
        name: &str,
        worker: usize,
        labels: &[(&str, &str)],
        value: impl fmt::Display,
    ) {
        let _ = write!(self.s, "{name}{{worker=\"{worker}\"");
        for (key, val) in labels {
            self.s.push(',');
            self.s.push_str(key);
            self.s.push_str("=\"");
            escape_label(&mut self.s, val);
            self.s.push('"');
        }
        let _ = writeln!(self.s, "}} {value}");
    }
}

/// Writes samples of one named family.
pub(super) struct Sampler<'a> {
    /// Where samples go.
    pub(super) out: &'a mut Out,
    /// The family's name.
    pub(super) name: &'static str,
}

impl Sampler<'_> {
    /// A sample labelled `worker`, `route` and `extra`.
    pub(super) fn route_sample(
        &mut self,
        worker: usize,
        route: &RouteSnapshot,
        extra: &[(&str, &str)],
        value: impl fmt::Display,
    ) {
        let mut labels: [(&str, &str); 2] = [("route", &route.name), ("", "")];
        let n = match extra {
            [] => 1,
            [one, ..] => {
                labels[1] = *one;
                2
            }
        };
        self.out.sample(self.name, worker, &labels[..n], value);
    }

    /// A sample labelled `worker`, `route`, `server` and `extra`.
    pub(super) fn server_sample(
        &mut self,
        worker: usize,
        route: &RouteSnapshot,
        server: &ServerSnapshot,
        extra: &[(&str, &str)],
        value: impl fmt::Display,
    ) {
        let addr = server.addr.to_string();
        let mut labels: [(&str, &str); 3] = [("route", &route.name), ("server", &addr), ("", "")];
        let n = match extra {
            [] => 2,
            [one, ..] => {
                labels[2] = *one;
                3
            }
        };
        self.out.sample(self.name, worker, &labels[..n], value);
    }
}

/// Appends `value` escaped for a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as the exposition format spells it (`+Inf`, `-Inf`, `NaN`, else Rust's shortest
/// round-trip decimal, which never uses an exponent).
pub(super) struct Float(pub(super) f64);

impl fmt::Display for Float {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v == f64::INFINITY {
            f.write_str("+Inf")
        } else if v == f64::NEG_INFINITY {
            f.write_str("-Inf")
        } else {
            write!(f, "{v}")
        }
    }
}
