//! Reading a PROXY header from the bytes a connection has sent so far.
//!
//! [`parse`] is a pure function of the prefix received: call it again with the longer prefix
//! as bytes arrive. It decides as early as the bytes allow (a first byte that starts neither
//! version is refused at once; a v2 length over the limit is refused from the 16 fixed
//! bytes) and never looks past the header's end.

use super::{Header, UNIQUE_ID_MAX, V1_MAX, V2_MAX, V2_SIGNATURE, crc32c};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What the bytes so far hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A header may follow: wait for more bytes.
    Incomplete,
    /// A whole header of `len` bytes; the bytes after it are the client's.
    Done {
        /// What it said.
        header: Header,
        /// Its length in bytes.
        len: usize,
    },
}

/// Why the bytes cannot be a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// They start neither `PROXY ` nor the v2 signature.
    NotProxy,
    /// No CRLF within [`V1_MAX`] bytes.
    V1TooLong,
    /// A v1 line that is not `PROXY TCP4|TCP6 src dst sport dport` or `PROXY UNKNOWN …`.
    V1Malformed,
    /// A v2 header of a version other than 2.
    V2Version,
    /// A v2 command other than LOCAL and PROXY.
    V2Command,
    /// A v2 address family or transport this proxy does not take.
    V2Family,
    /// A v2 header longer than [`V2_MAX`] bytes in all.
    V2TooLong,
    /// A v2 length too short for the addresses of its family.
    V2Addresses,
    /// A TLV that runs past the header, or a UNIQUE_ID over 128 bytes.
    V2Tlv,
    /// A CRC32C TLV that does not match the header.
    V2Checksum,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::NotProxy => "not a PROXY protocol header",
            HeaderError::V1TooLong => "v1 header without CRLF within 107 bytes",
            HeaderError::V1Malformed => "malformed v1 header",
            HeaderError::V2Version => "v2 header with an unknown version",
            HeaderError::V2Command => "v2 header with an unknown command",
            HeaderError::V2Family => "v2 header with an unsupported family or transport",
            HeaderError::V2TooLong => "v2 header longer than 4096 bytes",
            HeaderError::V2Addresses => "v2 header too short for its addresses",
            HeaderError::V2Tlv => "v2 header with a malformed TLV",
            HeaderError::V2Checksum => "v2 header whose CRC32C does not match",
        })
    }
}

impl std::error::Error for HeaderError {}

const V1_PREFIX: &[u8] = b"PROXY ";

/// Looks at the bytes received so far (see the module documentation).
pub fn parse(buf: &[u8]) -> Result<Parsed, HeaderError> {
    let starts = |prefix: &[u8]| {
        let n = buf.len().min(prefix.len());
        buf[..n] == prefix[..n]
    };
    if starts(V1_PREFIX) {
        parse_v1(buf)
    } else if starts(&V2_SIGNATURE) {
        parse_v2(buf)
    } else {
        Err(HeaderError::NotProxy)
    }
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, HeaderError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX {
            Err(HeaderError::V1TooLong)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line = window[..lf]
        .strip_suffix(b"\r")
        .ok_or(HeaderError::V1Malformed)?;
    let line = std::str::from_utf8(line).map_err(|_| HeaderError::V1Malformed)?;
    let header = v1_line(line).ok_or(HeaderError::V1Malformed)?;
    Ok(Parsed::Done {
        header,
        len: lf + 1,
    })
}

/// `PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222` (single spaces) or `PROXY UNKNOWN[ anything]`.
fn v1_line(line: &str) -> Option<Header> {
    let rest = line.strip_prefix("PROXY ")?;
    if rest == "UNKNOWN" || rest.starts_with("UNKNOWN ") {
        return Some(Header::default());
    }
    let mut parts = rest.split(' ');
    let proto = parts.next()?;
    let (src, dst, sport, dport) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let ip = |s: &str| -> Option<IpAddr> {
        match proto {
            "TCP4" => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            "TCP6" => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            _ => None,
        }
    };
    let port = |s: &str| -> Option<u16> {
        let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| s.parse().ok()).flatten()
    };
    let src = SocketAddr::new(ip(src)?, port(sport)?);
    let dst = SocketAddr::new(ip(dst)?, port(dport)?);
    Some(Header {
        addrs: Some((src, dst)),
        ..Header::default()
    })
}

/// Bytes of the address block of a v2 family (UNSPEC, INET, INET6, UNIX).
const V2_BLOCK: [usize; 4] = [0, 12, 36, 216];

fn parse_v2(buf: &[u8]) -> Result<Parsed, HeaderError> {
    if buf.len() < 16 {
        return Ok(Parsed::Incomplete);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0F);
    let (family, transport) = (usize::from(buf[13] >> 4), buf[13] & 0x0F);
    if version != 2 {
        return Err(HeaderError::V2Version);
    }
    if command > 1 {
        return Err(HeaderError::V2Command);
    }
    if family >= V2_BLOCK.len() || transport > 2 {
        return Err(HeaderError::V2Family);
    }
    let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > V2_MAX {
        return Err(HeaderError::V2TooLong);
    }
    if buf.len() < len {
        return Ok(Parsed::Incomplete);
    }
    let header = &buf[..len];
    let block = V2_BLOCK[family];
    let proxied = command == 1;
    if len - 16 < block {
        if proxied {
            return Err(HeaderError::V2Addresses);
        }
        // LOCAL: the block is discarded, whatever it holds.
        return Ok(Parsed::Done {
            header: Header::default(),
            len,
        });
    }
    let mut parsed = Header::default();
    if proxied && (family == 1 || family == 2) {
        if transport == 2 {
            return Err(HeaderError::V2Family);
        }
        parsed.addrs = Some(v2_addrs(&header[16..16 + block]));
    }
    tlvs(header, 16 + block, &mut parsed)?;
    Ok(Parsed::Done {
        header: parsed,
        len,
    })
}

/// The source and destination of an INET (12 bytes) or INET6 (36 bytes) block.
fn v2_addrs(block: &[u8]) -> (SocketAddr, SocketAddr) {
    let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
    if block.len() == 12 {
        let ip = |at: usize| IpAddr::from([block[at], block[at + 1], block[at + 2], block[at + 3]]);
        (
            SocketAddr::new(ip(0), port(8)),
            SocketAddr::new(ip(4), port(10)),
        )
    } else {
        let ip = |at: usize| {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&block[at..at + 16]);
            IpAddr::from(octets)
        };
        (
            SocketAddr::new(ip(0), port(32)),
            SocketAddr::new(ip(16), port(34)),
        )
    }
}

/// Reads the TLVs of `header` from `at`: AUTHORITY and UNIQUE_ID are kept, a CRC32C is
/// verified, the others are skipped.
fn tlvs(header: &[u8], mut at: usize, parsed: &mut Header) -> Result<(), HeaderError> {
    while at < header.len() {
        let Some(&[kind, hi, lo]) = header.get(at..at + 3) else {
            return Err(HeaderError::V2Tlv);
        };
        let start = at + 3;
        let end = start + usize::from(u16::from_be_bytes([hi, lo]));
        let value = header.get(start..end).ok_or(HeaderError::V2Tlv)?;
        match kind {
            0x02 => parsed.authority = Some(String::from_utf8_lossy(value).into_owned()),
            0x03 => {
                let sent: [u8; 4] = value.try_into().map_err(|_| HeaderError::V2Tlv)?;
                let computed = crc32c(&[&header[..start], &[0; 4], &header[end..]]);
                if u32::from_be_bytes(sent) != computed {
                    return Err(HeaderError::V2Checksum);
                }
            }
            0x05 if value.len() > UNIQUE_ID_MAX => return Err(HeaderError::V2Tlv),
            0x05 => parsed.unique_id = Some(value.to_vec()),
            _ => {}
        }
        at = end;
    }
    Ok(())
}
