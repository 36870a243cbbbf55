//! Choosing a route by the server name a TLS client asked for: the `sni` patterns routes
//! declare, and the table one listen address matches names against.
//!
//! Pure code. A [`NamePattern`] is an exact name (`a.example.com`), a wildcard
//! (`*.a.example.com`, which matches names ending in `.a.example.com` at any depth but not
//! `a.example.com` itself, as nginx's `server_name` wildcards do) or `*` (anything else,
//! including no name and not TLS at all). Names compare case-insensitively and without a
//! trailing dot. A [`NameTable`] picks, for a name: the exact match, else the longest
//! matching wildcard, else `*`. Invariant: a table holds each pattern once (configuration
//! validation refuses two routes claiming the same name on one address).

use crate::settings::Kind;
use crate::settings::kinds::quote;
use std::collections::HashMap;
use std::fmt;

/// Longest name (RFC 1035: 253 characters without the trailing dot).
const MAX_NAME: usize = 253;

/// One entry of a route's `sni` list, normalized: lowercase, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NamePattern {
    /// This name only.
    Exact(String),
    /// Names ending in this suffix, which starts with `.` (`*.a.test` holds `.a.test`).
    Wildcard(String),
    /// Any other name, no name, and clients that do not speak TLS.
    Any,
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamePattern::Exact(name) => f.write_str(name),
            NamePattern::Wildcard(suffix) => write!(f, "*{suffix}"),
            NamePattern::Any => f.write_str("*"),
        }
    }
}

impl NamePattern {
    /// Reads a pattern as written in `sni` (`None` if it is not one).
    pub fn parse(s: &str) -> Option<NamePattern> {
        let lower = s.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        if name == "*" {
            return Some(NamePattern::Any);
        }
        match name.strip_prefix("*.") {
            Some(rest) => is_host_name(rest).then(|| NamePattern::Wildcard(format!(".{rest}"))),
            None => is_host_name(name).then(|| NamePattern::Exact(name.to_string())),
        }
    }
}

/// True for a DNS name as written in a configuration: labels of 1 to 63 letters, digits,
/// `-` or `_`, at most 253 characters in all, an optional trailing dot.
pub fn is_dns_name(name: &str) -> bool {
    is_host_name(name.strip_suffix('.').unwrap_or(name))
}

/// True for a DNS host name: labels of 1 to 63 letters, digits, `-` or `_`, at most 253
/// characters in all.
fn is_host_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The kind of an `sni` entry.
#[derive(Debug, Clone, Copy)]
pub struct NameKind;

impl Kind for NameKind {
    type Value = NamePattern;
    fn expected(&self) -> String {
        "a server name such as \"a.example.com\", a wildcard such as \"*.example.com\", or \
         \"*\" for any other"
            .into()
    }
    fn parse_flag(&self, s: &str) -> Option<NamePattern> {
        NamePattern::parse(s)
    }
    fn check(&self, v: &NamePattern) -> bool {
        NamePattern::parse(&v.to_string()).as_ref() == Some(v)
    }
    fn show(&self, v: &NamePattern) -> String {
        v.to_string()
    }
    fn toml(&self, v: &NamePattern) -> Option<String> {
        Some(quote(&v.to_string()))
    }
}

/// The patterns of the routes sharing one listen address, and the route each chooses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameTable {
    exact: HashMap<String, usize>,
    /// Keyed by the suffix with its leading dot.
    wildcards: HashMap<String, usize>,
    any: Option<usize>,
}

impl NameTable {
    /// Adds `pattern` for `route`; returns the route that already had it, if any (the table
    /// keeps the first).
    pub fn insert(&mut self, pattern: &NamePattern, route: usize) -> Option<usize> {
        let slot = match pattern {
            NamePattern::Exact(name) => self.exact.entry(name.clone()),
            NamePattern::Wildcard(suffix) => self.wildcards.entry(suffix.clone()),
            NamePattern::Any => {
                return match self.any {
                    Some(first) => Some(first),
                    None => {
                        self.any = Some(route);
                        None
                    }
                };
            }
        };
        match slot {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(route);
                None
            }
        }
    }

    /// The route for `name` (already lowercase, without a trailing dot, as
    /// [`crate::client_hello`] gives it; `None`: no name or not TLS): the exact match, else
    /// the longest wildcard, else `*`.
    pub fn choose(&self, name: Option<&str>) -> Option<usize> {
        let Some(name) = name else {
            return self.any;
        };
        if let Some(&route) = self.exact.get(name) {
            return Some(route);
        }
        // Suffixes from the longest: ".x.a.test", then ".a.test", then ".test".
        let longest = name
            .match_indices('.')
            .find_map(|(at, _)| self.wildcards.get(&name[at..]));
        longest.copied().or(self.any)
    }

    /// The route `*` sends to, if any.
    pub fn any(&self) -> Option<usize> {
        self.any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(patterns: &[(&str, usize)]) -> NameTable {
        let mut table = NameTable::default();
        for (pattern, route) in patterns {
            let pattern = NamePattern::parse(pattern).expect(pattern);
            assert_eq!(table.insert(&pattern, *route), None, "{pattern}");
        }
        table
    }

    #[test]
    fn patterns_are_normalized_and_checked() {
        let exact = |s: &str| Some(NamePattern::Exact(s.into()));
        assert_eq!(NamePattern::parse("A.Test."), exact("a.test"));
        assert_eq!(NamePattern::parse("localhost"), exact("localhost"));
        assert_eq!(
            NamePattern::parse("_acme.x-1.test"),
            exact("_acme.x-1.test")
        );
        assert_eq!(
            NamePattern::parse("*.A.test"),
            Some(NamePattern::Wildcard(".a.test".into()))
        );
        assert_eq!(NamePattern::parse("*"), Some(NamePattern::Any));
        for bad in [
            "", ".", "a..b", "*..", "*.*.a", "a.*.b", "a*.b", "**", "a b", "a/b", "é.test",
        ] {
            assert_eq!(NamePattern::parse(bad), None, "{bad:?}");
        }
        assert_eq!(NamePattern::parse(&"a".repeat(64)), None);
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(NamePattern::parse(&long), None, "255 characters");
        let kind = NameKind;
        for p in ["a.test", "*.a.test", "*"] {
            let v = kind.parse_flag(p).unwrap();
            assert!(kind.check(&v));
            assert_eq!(kind.show(&v), p);
        }
    }

    #[test]
    fn exact_beats_the_longest_wildcard_which_beats_any() {
        let t = table(&[
            ("a.example.com", 1),
            ("*.a.example.com", 2),
            ("*.x.a.example.com", 3),
            ("*.example.com", 4),
            ("*", 9),
        ]);
        assert_eq!(t.choose(Some("a.example.com")), Some(1));
        assert_eq!(t.choose(Some("b.a.example.com")), Some(2));
        assert_eq!(t.choose(Some("y.b.a.example.com")), Some(2), "any depth");
        assert_eq!(t.choose(Some("y.x.a.example.com")), Some(3), "longest");
        assert_eq!(t.choose(Some("x.a.example.com")), Some(2), "not itself");
        assert_eq!(t.choose(Some("example.com")), Some(9));
        assert_eq!(t.choose(Some("b.example.com")), Some(4));
        assert_eq!(t.choose(Some("other.test")), Some(9));
        assert_eq!(t.choose(None), Some(9));
        assert_eq!(t.any(), Some(9));
    }

    #[test]
    fn without_any_an_unmatched_name_has_no_route() {
        let t = table(&[("a.test", 0), ("*.b.test", 1)]);
        assert_eq!(t.choose(Some("c.test")), None);
        assert_eq!(t.choose(Some("b.test")), None);
        assert_eq!(t.choose(None), None);
        assert_eq!(t.choose(Some("")), None);
        assert_eq!(t.choose(Some(".")), None);
    }

    #[test]
    fn a_pattern_claimed_twice_names_the_first_route() {
        let mut t = table(&[("a.test", 0), ("*.a.test", 0), ("*", 0)]);
        for p in ["A.test.", "*.a.test", "*"] {
            assert_eq!(t.insert(&NamePattern::parse(p).unwrap(), 1), Some(0), "{p}");
        }
        assert_eq!(t.choose(Some("a.test")), Some(0));
    }
}
