//! Exposition-format primitives: family headers, sample lines with the `worker` label first
//! and escaped label values, and floats spelled as Prometheus reads them.

use crate::histogram::Histogram;
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
        self.labels_and_value(labels, value);
    }

    /// One sample of a process-wide family, without `worker`: `name{k="v",...} value`, or
    /// `name value` without labels.
    pub(super) fn process_sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl fmt::Display,
    ) {
        if let [(key, val), rest @ ..] = labels {
            let _ = write!(self.s, "{name}{{");
            self.label(key, val);
            self.labels_and_value(rest, value);
        } else {
            let _ = writeln!(self.s, "{name} {value}");
        }
    }

    /// The samples of a histogram: cumulative `_bucket`s with `le` up to `+Inf`, `_sum`
    /// and `_count`, labelled `worker` when one is given.
    pub(super) fn histogram(&mut self, name: &str, worker: Option<usize>, h: &Histogram) {
        let sample = |out: &mut Out, suffix: &str, le: Option<&str>, value: &dyn fmt::Display| {
            let name = format!("{name}{suffix}");
            let le: &[(&str, &str)] = match &le {
                Some(le) => &[("le", le)],
                None => &[],
            };
            match worker {
                Some(worker) => out.sample(&name, worker, le, value),
                None => out.process_sample(&name, le, value),
            }
        };
        for (bound, n) in h.cumulative() {
            sample(self, "_bucket", Some(&Float(bound).to_string()), &n);
        }
        sample(self, "_bucket", Some("+Inf"), &h.count());
        sample(self, "_sum", None, &Float(h.sum()));
        sample(self, "_count", None, &h.count());
    }

    /// `,k="v"` for each label, then `} value` and the newline.
    fn labels_and_value(&mut self, labels: &[(&str, &str)], value: impl fmt::Display) {
        for (key, val) in labels {
            self.s.push(',');
            self.label(key, val);
        }
        let _ = writeln!(self.s, "}} {value}");
    }

    /// `k="v"`, the value escaped.
    fn label(&mut self, key: &str, value: &str) {
        self.s.push_str(key);
        self.s.push_str("=\"");
        escape_label(&mut self.s, value);
        self.s.push('"');
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
