//! Display helpers for process-log lines, so that every line says a thing the same way.

use std::fmt;
use std::time::Duration;

/// A duration as seconds with milliseconds (`5.000s`, `0.250s`), the access log's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0.as_secs(), self.0.subsec_millis())
    }
}

/// A value that may be missing (a client whose pair is gone): the value, or `-`, as the
/// access log writes a missing field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrDash<T>(pub Option<T>);

impl<T: fmt::Display> fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Secs;
    use std::time::Duration;

    #[test]
    fn seconds_with_milliseconds() {
        assert_eq!(Secs(Duration::from_secs(30)).to_string(), "30.000s");
        assert_eq!(Secs(Duration::from_millis(250)).to_string(), "0.250s");
        assert_eq!(Secs(Duration::from_micros(1_999_999)).to_string(), "1.999s");
    }
}
