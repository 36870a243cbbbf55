//! The DNS discovery families, rendered once per process after the workers' families.

use super::text::Out;
use crate::discovery::NameStats;
use std::collections::BTreeMap;

/// Appends the DNS discovery families, for the names the process follows (samples carry
/// `worker="0"`: discovery runs once per process):
///
/// | family | type | labels |
/// |---|---|---|
/// | `ringproxy_dns_answers_total` | counter | `name` |
/// | `ringproxy_dns_failures_total` | counter | `name`, `reason` |
/// | `ringproxy_dns_addresses` | gauge | `name` |
pub fn render_dns(text: &mut String, names: &BTreeMap<String, NameStats>) {
    let mut out = Out {
        s: std::mem::take(text),
    };
    let name = "ringproxy_dns_answers_total";
    out.header(
        name,
        "DNS answers received for an upstream name.",
        "counter",
    );
    for (dns, stats) in names {
        out.sample(name, 0, &[("name", dns)], stats.answers);
    }
    let name = "ringproxy_dns_failures_total";
    out.header(
        name,
        "DNS queries for an upstream name that failed (servfail, refused, timeout, nxdomain).",
        "counter",
    );
    for (dns, stats) in names {
        for (reason, n) in &stats.failures {
            out.sample(name, 0, &[("name", dns), ("reason", reason)], n);
        }
    }
    let name = "ringproxy_dns_addresses";
    out.header(
        name,
        "Addresses (or SRV records) an upstream name has now.",
        "gauge",
    );
    for (dns, stats) in names {
        out.sample(name, 0, &[("name", dns)], stats.addresses);
    }
    *text = out.s;
}
