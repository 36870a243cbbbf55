//! The PROXY protocol (HAProxy's `doc/proxy-protocol.txt`), versions 1 and 2: reading the
//! header another balancer puts before a client's bytes, and writing one before ours.
//!
//! Pure code without sockets. [`parse`] looks at the bytes a connection has sent so far and
//! says whether they hold a whole header (and how long it is), need more, or cannot be one;
//! the caller feeds it the growing prefix, so a header split over any number of segments,
//! even one byte at a time, is read the same as one that came whole. It never reads past the
//! header: the bytes after it are the client's. [`write_v1`], [`write_v2`] and
//! [`write_local`] build headers. Invariants: a v1 header is at most [`V1_MAX`] bytes, a v2
//! header at most [`V2_MAX`]; a CRC32C TLV, when present, matches.

mod crc;
mod parse;
mod write;

pub use crc::crc32c;
pub use parse::{HeaderError, Parsed, parse};
pub use write::{UNIX_ADDR_LEN, write_local, write_v1, write_v2, write_v2_unix};

use std::net::SocketAddr;

/// Longest v1 header, `PROXY …\r\n` included.
pub const V1_MAX: usize = 107;
/// Longest v2 header accepted, the 16-byte fixed part included (the protocol allows 65551).
pub const V2_MAX: usize = 4096;
/// The 12 bytes a v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest UNIQUE_ID the specification allows.
pub const UNIQUE_ID_MAX: usize = 128;

/// Which version to send (`send_proxy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// No header.
    #[default]
    Off,
    /// The text version.
    V1,
    /// The binary version.
    V2,
}

impl crate::settings::kinds::Named for Version {
    const ALL: &'static [Version] = &[Version::Off, Version::V1, Version::V2];

    fn name(self) -> &'static str {
        match self {
            Version::Off => "off",
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// What a header said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The client and the address it connected to; `None` when the header says to keep the
    /// connection's own (v2 LOCAL, UNSPEC or UNIX, v1 `UNKNOWN`).
    pub addrs: Option<(SocketAddr, SocketAddr)>,
    /// The v2 AUTHORITY TLV (the host name the client asked for), if any.
    pub authority: Option<String>,
    /// The v2 UNIQUE_ID TLV, if any.
    pub unique_id: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests;
