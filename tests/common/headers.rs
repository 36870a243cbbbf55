//! PROXY protocol headers built by hand for the tests, independently of the proxy's own
//! writer (the CRC32C too), so that a mistake shared by both cannot hide.

use std::net::{IpAddr, SocketAddr};

/// The 12 bytes a v2 header starts with.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// `PROXY TCP4|TCP6 src dst sport dport\r\n`.
pub fn v1_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    let (s, d) = (src.ip(), dst.ip());
    format!("PROXY {family} {s} {d} {} {}\r\n", src.port(), dst.port()).into_bytes()
}

/// A v2 PROXY header over TCP/IPv4 for `src` → `dst` with `tlvs` (type, value), then a
/// CRC32C TLV when `crc`.
pub fn v2_header(src: SocketAddr, dst: SocketAddr, tlvs: &[(u8, &[u8])], crc: bool) -> Vec<u8> {
    let octets = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => ip.octets(),
        IpAddr::V6(_) => panic!("v2_header builds IPv4 headers only"),
    };
    let mut body = Vec::new();
    body.extend_from_slice(&octets(src));
    body.extend_from_slice(&octets(dst));
    body.extend_from_slice(&src.port().to_be_bytes());
    body.extend_from_slice(&dst.port().to_be_bytes());
    for (kind, value) in tlvs {
        body.push(*kind);
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend_from_slice(value);
    }
    if crc {
        body.extend_from_slice(&[0x03, 0, 4, 0, 0, 0, 0]);
    }
    let mut header = V2_SIGNATURE.to_vec();
    // Version 2, PROXY; TCP over IPv4.
    header.extend_from_slice(&[0x21, 0x11]);
    header.extend_from_slice(&(body.len() as u16).to_be_bytes());
    header.extend_from_slice(&body);
    if crc {
        // Computed over the whole header with the checksum's own bytes at zero.
        let sum = crc32c(&header);
        let at = header.len() - 4;
        header[at..].copy_from_slice(&sum.to_be_bytes());
    }
    header
}

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
