//! The PROXY protocol parser and writer: every case of the specification the proxy relies
//! on, delivery in pieces down to one byte at a time, a seeded property test over generated
//! and mutated headers, and a comparison with the `ppp` crate.

use super::*;
use crate::test_rng::Rng;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[track_caller]
fn done(buf: &[u8]) -> (Header, usize) {
    match parse(buf) {
        Ok(Parsed::Done { header, len }) => (header, len),
        other => panic!("expected a header in {buf:?}, got {other:?}"),
    }
}

/// Asserts that every proper prefix of `buf` is incomplete and `buf` itself is whole.
#[track_caller]
fn whole_only_at_the_end(buf: &[u8]) -> Header {
    for n in 0..buf.len() {
        assert_eq!(
            parse(&buf[..n]),
            Ok(Parsed::Incomplete),
            "prefix of {n} bytes"
        );
    }
    let (header, len) = done(buf);
    assert_eq!(len, buf.len());
    header
}

/// A v2 header: command byte, family byte, body.
fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.extend_from_slice(&[ver_cmd, fam]);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn inet_body() -> Vec<u8> {
    let mut body = vec![10, 1, 2, 3, 192, 168, 0, 1];
    body.extend_from_slice(&4000u16.to_be_bytes());
    body.extend_from_slice(&443u16.to_be_bytes());
    body
}

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// `header` with a CRC32C TLV appended and filled in.
fn with_crc(mut header: Vec<u8>) -> Vec<u8> {
    header.extend_from_slice(&tlv(0x03, &[0; 4]));
    let len = (header.len() - 16) as u16;
    header[14..16].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c(&[&header]);
    let at = header.len() - 4;
    header[at..].copy_from_slice(&crc.to_be_bytes());
    header
}

#[test]
fn v1_tcp4_tcp6_and_unknown() {
    let h = whole_only_at_the_end(b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
    assert_eq!(
        h.addrs,
        Some((addr("192.0.2.1:56324"), addr("198.51.100.2:443")))
    );
    let h = whole_only_at_the_end(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
    assert_eq!(
        h.addrs,
        Some((addr("[2001:db8::1]:1"), addr("[::1]:65535")))
    );
    assert_eq!(
        whole_only_at_the_end(b"PROXY UNKNOWN\r\n"),
        Header::default()
    );
    let anything = b"PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n";
    assert_eq!(
        whole_only_at_the_end(anything).addrs,
        None,
        "UNKNOWN keeps the socket's"
    );
}

#[test]
fn v1_client_data_after_the_header_is_not_part_of_it() {
    let buf = b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n\r\n";
    let (_, len) = done(buf);
    assert_eq!(&buf[len..], b"GET / HTTP/1.1\r\n\r\n");
}

#[test]
fn v1_limits_and_malformed_lines() {
    // The longest line the specification allows is an UNKNOWN one with IPv6 addresses.
    let longest = format!(
        "PROXY UNKNOWN {0} {0} 65535 65535\r\n",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    );
    assert_eq!(longest.len(), V1_MAX);
    whole_only_at_the_end(longest.as_bytes());
    let mut no_crlf = b"PROXY UNKNOWN".to_vec();
    no_crlf.resize(108, b'x');
    assert_eq!(
        parse(&no_crlf),
        Err(HeaderError::V1TooLong),
        "108 bytes without CRLF"
    );
    assert_eq!(parse(&no_crlf[..107]), Err(HeaderError::V1TooLong));
    assert_eq!(parse(&no_crlf[..106]), Ok(Parsed::Incomplete));
    for bad in [
        &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"[..],
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY \r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\xff\r\n",
    ] {
        assert_eq!(
            parse(bad),
            Err(HeaderError::V1Malformed),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn neither_version_is_refused_at_the_first_differing_byte() {
    assert_eq!(parse(b""), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"PRO"), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"\r\n\r\n\0"), Ok(Parsed::Incomplete));
    assert_eq!(parse(b"G"), Err(HeaderError::NotProxy));
    assert_eq!(parse(b"PROXX"), Err(HeaderError::NotProxy));
    assert_eq!(
        parse(b"\r\n\r\n\0\r\nQUIX"),
        Err(HeaderError::NotProxy),
        "bad signature"
    );
    assert_eq!(parse(b"proxy TCP4"), Err(HeaderError::NotProxy));
}

#[test]
fn v2_inet_inet6_local_unix_unspec() {
    let h = whole_only_at_the_end(&v2(0x21, 0x11, &inet_body()));
    assert_eq!(
        h.addrs,
        Some((addr("10.1.2.3:4000"), addr("192.168.0.1:443")))
    );

    let mut body = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)
        .octets()
        .to_vec();
    body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    body.extend_from_slice(&[0x13, 0x88, 0x01, 0xbb]);
    let h = whole_only_at_the_end(&v2(0x21, 0x21, &body));
    assert_eq!(
        h.addrs,
        Some((addr("[2001:db8::7]:5000"), addr("[::1]:443")))
    );

    assert_eq!(
        whole_only_at_the_end(&v2(0x20, 0x00, &[])),
        Header::default(),
        "LOCAL"
    );
    let local_with_block = v2(0x20, 0x11, &inet_body());
    assert_eq!(
        whole_only_at_the_end(&local_with_block).addrs,
        None,
        "LOCAL keeps the socket's"
    );
    let unix = v2(0x21, 0x31, &[b'/'; 216]);
    assert_eq!(
        whole_only_at_the_end(&unix).addrs,
        None,
        "UNIX keeps the socket's"
    );
    assert_eq!(
        whole_only_at_the_end(&v2(0x21, 0x00, &[])).addrs,
        None,
        "UNSPEC"
    );
}

#[test]
fn v2_length_is_always_skipped_and_bounded() {
    // Extra bytes after the addresses that are no TLV would be malformed; NOOP TLVs pad.
    let mut body = inet_body();
    body.extend_from_slice(&tlv(0x04, &[0; 100]));
    body.extend_from_slice(&tlv(0xE0, b"custom"));
    let buf = v2(0x21, 0x11, &body);
    let mut with_data = buf.clone();
    with_data.extend_from_slice(b"client bytes");
    let (_, len) = done(&with_data);
    assert_eq!(&with_data[len..], b"client bytes");

    let mut huge = V2_SIGNATURE.to_vec();
    huge.extend_from_slice(&[0x21, 0x11, 0xFF, 0xFF]);
    assert_eq!(
        parse(&huge),
        Err(HeaderError::V2TooLong),
        "len = 65535, known from 16 bytes"
    );
    let at_limit = v2(
        0x21,
        0x11,
        &[&inet_body()[..], &tlv(0x04, &vec![0; V2_MAX - 16 - 12 - 3])].concat(),
    );
    assert_eq!(at_limit.len(), V2_MAX);
    done(&at_limit);
    let over = v2(
        0x21,
        0x11,
        &[&inet_body()[..], &tlv(0x04, &vec![0; V2_MAX - 16 - 12 - 2])].concat(),
    );
    assert_eq!(parse(&over[..16]), Err(HeaderError::V2TooLong));
}

#[test]
fn v2_bad_fixed_parts() {
    assert_eq!(
        parse(&v2(0x11, 0x11, &inet_body())),
        Err(HeaderError::V2Version)
    );
    assert_eq!(
        parse(&v2(0x22, 0x11, &inet_body())),
        Err(HeaderError::V2Command)
    );
    assert_eq!(
        parse(&v2(0x21, 0x41, &inet_body())),
        Err(HeaderError::V2Family)
    );
    assert_eq!(
        parse(&v2(0x21, 0x13, &inet_body())),
        Err(HeaderError::V2Family)
    );
    assert_eq!(
        parse(&v2(0x21, 0x12, &inet_body())),
        Err(HeaderError::V2Family),
        "UDP"
    );
    assert_eq!(
        parse(&v2(0x21, 0x11, &inet_body()[..11])),
        Err(HeaderError::V2Addresses)
    );
    assert_eq!(
        parse(&v2(0x21, 0x21, &inet_body())),
        Err(HeaderError::V2Addresses)
    );
}

#[test]
fn v2_tlvs_authority_unique_id_and_crc() {
    let mut body = inet_body();
    body.extend_from_slice(&tlv(0x02, b"app.example.com"));
    body.extend_from_slice(&tlv(0x05, b"req-42"));
    body.extend_from_slice(&tlv(0x20, &[1, 0, 0, 0, 0]));
    let buf = with_crc(v2(0x21, 0x11, &body));
    let h = whole_only_at_the_end(&buf);
    assert_eq!(h.authority.as_deref(), Some("app.example.com"));
    assert_eq!(h.unique_id.as_deref(), Some(&b"req-42"[..]));

    let mut bad = buf.clone();
    bad[20] ^= 1;
    assert_eq!(
        parse(&bad),
        Err(HeaderError::V2Checksum),
        "a flipped address bit"
    );
    let mut bad = buf.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        parse(&bad),
        Err(HeaderError::V2Checksum),
        "a flipped checksum bit"
    );

    let long_id = v2(
        0x21,
        0x11,
        &[&inet_body()[..], &tlv(0x05, &[7; 129])].concat(),
    );
    assert_eq!(
        parse(&long_id),
        Err(HeaderError::V2Tlv),
        "UNIQUE_ID over 128 bytes"
    );
    let ok_id = v2(
        0x21,
        0x11,
        &[&inet_body()[..], &tlv(0x05, &[7; 128])].concat(),
    );
    done(&ok_id);
    let overrun = v2(
        0x21,
        0x11,
        &[&inet_body()[..], &[0x02, 0, 9, b'a']].concat(),
    );
    assert_eq!(parse(&overrun), Err(HeaderError::V2Tlv));
    let stub = v2(0x21, 0x11, &[&inet_body()[..], &[0x02, 0]].concat());
    assert_eq!(parse(&stub), Err(HeaderError::V2Tlv));
    let short_crc = v2(
        0x21,
        0x11,
        &[&inet_body()[..], &tlv(0x03, &[0; 3])].concat(),
    );
    assert_eq!(parse(&short_crc), Err(HeaderError::V2Tlv));
}

#[test]
fn written_headers_read_back() {
    let cases = [
        (addr("192.0.2.1:5000"), addr("198.51.100.7:443")),
        (addr("[2001:db8::1]:1"), addr("[::1]:80")),
        (addr("[::ffff:10.0.0.1]:7"), addr("10.0.0.2:8")),
        (addr("10.0.0.1:7"), addr("[2001:db8::2]:8")),
    ];
    for (src, dst) in cases {
        for buf in [write_v1(src, dst), write_v2(src, dst)] {
            let (header, len) = done(&buf);
            assert_eq!(len, buf.len());
            let (s, d) = header.addrs.unwrap();
            assert_eq!(s.ip().to_canonical(), src.ip().to_canonical());
            assert_eq!(d.ip().to_canonical(), dst.ip().to_canonical());
            assert_eq!((s.port(), d.port()), (src.port(), dst.port()));
        }
    }
    assert_eq!(
        write_v1(addr("[::ffff:10.0.0.1]:7"), addr("10.0.0.2:8")),
        b"PROXY TCP4 10.0.0.1 10.0.0.2 7 8\r\n"
    );
    assert_eq!(done(&write_local(Version::V2)).0, Header::default());
    assert_eq!(done(&write_local(Version::V1)).0, Header::default());
    assert!(write_local(Version::Off).is_empty());
}

/// Random addresses for generated headers.
trait RandomAddr {
    fn addr(&mut self) -> SocketAddr;
}

impl RandomAddr for Rng {
    fn addr(&mut self) -> SocketAddr {
        let ip = if self.below_u64(2) == 0 {
            IpAddr::V4(Ipv4Addr::from(self.next() as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(
                (u128::from(self.next()) << 64) | u128::from(self.next()),
            ))
        };
        SocketAddr::new(ip, self.next() as u16)
    }
}

/// A random valid header and the addresses it carries.
fn generated(rng: &mut Rng) -> (Vec<u8>, Option<(SocketAddr, SocketAddr)>) {
    let (src, dst) = (rng.addr(), rng.addr());
    match rng.below_u64(4) {
        0 => (write_v1(src, dst), Some((src, dst))),
        1 => (write_local(Version::V2), None),
        _ => {
            let mut buf = write_v2(src, dst);
            for _ in 0..rng.below_u64(4) {
                let len = rng.below_u64(40) as usize;
                let value: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let kind = [0x01, 0x02, 0x04, 0x05, 0x20, 0xE3][rng.below_u64(6) as usize];
                buf.extend_from_slice(&tlv(kind, &value));
            }
            let len = (buf.len() - 16) as u16;
            buf[14..16].copy_from_slice(&len.to_be_bytes());
            if rng.below_u64(2) == 0 {
                buf = with_crc(buf);
            }
            (buf, Some((src, dst)))
        }
    }
}

#[test]
fn property_generated_headers_in_pieces_and_mutated() {
    let mut rng = Rng::new(0x5EED_1234_ABCD_0001);
    for round in 0..2_000 {
        let (buf, addrs) = generated(&mut rng);
        let header = whole_only_at_the_end(&buf);
        let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
        let got = header.addrs.map(|(s, d)| (canonical(s), canonical(d)));
        assert_eq!(
            got,
            addrs.map(|(s, d)| (canonical(s), canonical(d))),
            "round {round}"
        );
        // Mutations never panic, and the verdict never changes once given.
        let mut mutated = buf.clone();
        for _ in 0..1 + rng.below_u64(3) {
            let at = rng.below_u64(mutated.len() as u64) as usize;
            match rng.below_u64(3) {
                0 => mutated[at] = rng.next() as u8,
                1 => mutated.insert(at, rng.next() as u8),
                _ => {
                    mutated.remove(at);
                }
            }
        }
        mutated.extend((0..rng.below_u64(16)).map(|_| rng.next() as u8));
        let mut verdict = None;
        for n in 0..=mutated.len() {
            let result = parse(&mutated[..n]);
            match (&verdict, &result) {
                (None, Ok(Parsed::Incomplete)) => {}
                (None, _) => verdict = Some(result),
                (Some(first), now) => assert_eq!(first, now, "round {round}: changed at {n}"),
            }
        }
    }
}

#[test]
fn agrees_with_the_ppp_crate_on_generated_headers() {
    let mut rng = Rng::new(0x0BAD_CAFE_0000_0042);
    for round in 0..1_000 {
        let (buf, _) = generated(&mut rng);
        let ours = done(&buf);
        let theirs = ppp::HeaderResult::parse(&buf);
        let theirs_addrs = match theirs {
            ppp::HeaderResult::V1(Ok(h)) => match h.addresses {
                ppp::v1::Addresses::Tcp4(a) => Some((
                    SocketAddr::new(a.source_address.into(), a.source_port),
                    SocketAddr::new(a.destination_address.into(), a.destination_port),
                )),
                ppp::v1::Addresses::Tcp6(a) => Some((
                    SocketAddr::new(a.source_address.into(), a.source_port),
                    SocketAddr::new(a.destination_address.into(), a.destination_port),
                )),
                ppp::v1::Addresses::Unknown => None,
            },
            ppp::HeaderResult::V2(Ok(h)) => {
                assert_eq!(h.len(), ours.1, "round {round}: length");
                match (h.command, h.addresses) {
                    (ppp::v2::Command::Local, _) => None,
                    (_, ppp::v2::Addresses::IPv4(a)) => Some((
                        SocketAddr::new(a.source_address.into(), a.source_port),
                        SocketAddr::new(a.destination_address.into(), a.destination_port),
                    )),
                    (_, ppp::v2::Addresses::IPv6(a)) => Some((
                        SocketAddr::new(a.source_address.into(), a.source_port),
                        SocketAddr::new(a.destination_address.into(), a.destination_port),
                    )),
                    _ => None,
                }
            }
            other => panic!("round {round}: ppp refused {buf:?}: {other:?}"),
        };
        assert_eq!(ours.0.addrs, theirs_addrs, "round {round}");
    }
}

#[test]
fn a_unix_client_header_is_af_unix_with_both_paths() {
    let header = write_v2_unix(b"", b"/run/ringproxy/web.sock");
    assert_eq!(header.len(), 16 + 2 * UNIX_ADDR_LEN);
    match parse(&header) {
        Ok(Parsed::Done { header: h, len }) => {
            assert_eq!(len, header.len());
            assert_eq!(h.addrs, None, "no IP address: the receiver keeps its own");
        }
        other => panic!("{other:?}"),
    }
    match ppp::HeaderResult::parse(&header) {
        ppp::HeaderResult::V2(Ok(h)) => match h.addresses {
            ppp::v2::Addresses::Unix(a) => {
                assert!(a.source.iter().all(|&b| b == 0), "an unnamed client");
                assert!(a.destination.starts_with(b"/run/ringproxy/web.sock\0"));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let long = vec![b'x'; 200];
    assert_eq!(
        write_v2_unix(&long, &long).len(),
        16 + 2 * UNIX_ADDR_LEN,
        "cut at 108"
    );
}
