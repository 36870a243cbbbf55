//! Building PROXY headers: the client's address and the address it connected to, in v1 or
//! v2, and the header without addresses that health checks send.
//!
//! IPv4-mapped IPv6 addresses are written as IPv4; when one address is IPv4 and the other
//! IPv6, both are written as IPv6 (the IPv4 one mapped), since a header has one family.

use super::{V2_SIGNATURE, Version};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Both addresses in one family: IPv4 when both are (or map to) IPv4, else IPv6.
fn one_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (src, dst) = (canonical(src), canonical(dst));
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => (src, dst),
        _ => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), a.port()),
                IpAddr::V6(_) => a,
            };
            (v6(src), v6(dst))
        }
    }
}

/// `PROXY TCP4|TCP6 src dst sport dport\r\n`.
pub fn write_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = one_family(src, dst);
    let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    let mut out = Vec::with_capacity(super::V1_MAX);
    let _ = write!(
        out,
        "PROXY {proto} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    );
    out
}

/// A v2 PROXY header over TCP with the two addresses and no TLV.
pub fn write_v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (src, dst) = one_family(src, dst);
    let mut out = Vec::with_capacity(16 + 36);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x21);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.extend_from_slice(&[0x11, 0, 12]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let octets = |ip: IpAddr| match ip {
                IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
                IpAddr::V6(ip) => ip.octets(),
            };
            out.extend_from_slice(&[0x21, 0, 36]);
            out.extend_from_slice(&octets(s));
            out.extend_from_slice(&octets(d));
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

/// Length of a Unix address in a v2 header (that of `sun_path`).
pub const UNIX_ADDR_LEN: usize = 108;

/// A v2 PROXY header for a client of a Unix stream socket: AF_UNIX, the two paths (the
/// client's, usually unnamed and so empty, and the listener's), each zero-padded to 108
/// bytes and cut there.
pub fn write_v2_unix(src: &[u8], dst: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 2 * UNIX_ADDR_LEN);
    out.extend_from_slice(&V2_SIGNATURE);
    out.extend_from_slice(&[0x21, 0x31]);
    out.extend_from_slice(&(2 * UNIX_ADDR_LEN as u16).to_be_bytes());
    for path in [src, dst] {
        let path = &path[..path.len().min(UNIX_ADDR_LEN)];
        out.extend_from_slice(path);
        out.resize(out.len() + UNIX_ADDR_LEN - path.len(), 0);
    }
    out
}

/// The header a health check sends to a server that expects `version`: v2 LOCAL (the
/// receiver keeps the connection's own addresses), v1 `PROXY UNKNOWN`; nothing for `Off`.
pub fn write_local(version: Version) -> Vec<u8> {
    match version {
        Version::Off => Vec::new(),
        Version::V1 => b"PROXY UNKNOWN\r\n".to_vec(),
        Version::V2 => {
            let mut out = V2_SIGNATURE.to_vec();
            out.extend_from_slice(&[0x20, 0x00, 0, 0]);
            out
        }
    }
}
