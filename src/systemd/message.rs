//! The text of one `sd_notify` datagram: `KEY=VALUE` lines, in the order they were added.
//! Pure: the clock reading for `MONOTONIC_USEC` is passed in.

use std::time::Duration;

/// One notification, sent as one datagram.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Message {
    text: String,
}

impl Message {
    /// An empty notification.
    pub fn new() -> Message {
        Message::default()
    }

    /// `READY=1`: startup finished, or a reload did (whether or not it succeeded).
    pub fn ready(self) -> Message {
        self.field("READY", "1")
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (`monotonic`: `CLOCK_MONOTONIC` now), which
    /// `Type=notify-reload` requires in the same datagram.
    pub fn reloading(self, monotonic: Duration) -> Message {
        self.field("RELOADING", "1")
            .field("MONOTONIC_USEC", &monotonic.as_micros().to_string())
    }

    /// `STOPPING=1`: a drain started.
    pub fn stopping(self) -> Message {
        self.field("STOPPING", "1")
    }

    /// `WATCHDOG=1`: every loop is turning.
    pub fn watchdog(self) -> Message {
        self.field("WATCHDOG", "1")
    }

    /// `STATUS=` with `text` on one line (line breaks become spaces).
    pub fn status(self, text: &str) -> Message {
        let line: String = text
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        self.field("STATUS", &line)
    }

    /// The datagram's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    fn field(mut self, key: &str, value: &str) -> Message {
        self.text.push_str(key);
        self.text.push('=');
        self.text.push_str(value);
        self.text.push('\n');
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Message) -> &str {
        std::str::from_utf8(m.as_bytes()).unwrap()
    }

    #[test]
    fn fields_are_lines_in_order() {
        let m = Message::new().status("1 route(s)").ready();
        assert_eq!(text(&m), "STATUS=1 route(s)\nREADY=1\n");
        assert_eq!(text(&Message::new().stopping()), "STOPPING=1\n");
        assert_eq!(text(&Message::new().watchdog()), "WATCHDOG=1\n");
        assert!(Message::new().is_empty());
    }

    #[test]
    fn reloading_carries_the_monotonic_time_in_microseconds() {
        let m = Message::new().reloading(Duration::new(12, 345_678_901));
        assert_eq!(text(&m), "RELOADING=1\nMONOTONIC_USEC=12345678\n");
    }

    #[test]
    fn a_status_stays_on_one_line() {
        let m = Message::new().status("reload failed: line 1\r\nline 2");
        assert_eq!(text(&m), "STATUS=reload failed: line 1  line 2\n");
    }
}
