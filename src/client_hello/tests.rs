//! The ClientHello reader: real hellos captured from `openssl s_client` and curl, fed whole,
//! at every split point and re-framed into 1-byte and 3-record variants; generated hellos
//! (several names, GREASE, no SNI, padding to post-quantum sizes); every kind of junk; a
//! seeded property test; and a comparison with the `tls-parser` crate.

use super::*;
use crate::test_rng::Rng;

const OPENSSL: &[u8] = include_bytes!("../../tests/data/client_hello/openssl-a.test-alpn.bin");
const CURL: &[u8] = include_bytes!("../../tests/data/client_hello/curl-b.test.bin");
const NO_NAME: &[u8] = include_bytes!("../../tests/data/client_hello/openssl-noservername.bin");

const MAX: usize = 16 * 1024;

fn scan(bytes: &[u8], max: usize) -> Result<Scanned, HelloError> {
    HelloScan::default().advance(bytes, max)
}

/// Feeds `bytes` one more byte at a time to one scanner: incomplete until the last byte.
fn whole_only_at_the_end(bytes: &[u8]) -> ClientHello {
    let mut scanner = HelloScan::default();
    for k in 0..bytes.len() {
        let got = scanner.advance(&bytes[..k], MAX);
        assert_eq!(
            got,
            Ok(Scanned::Incomplete),
            "after {k} of {} bytes",
            bytes.len()
        );
    }
    match scanner.advance(bytes, MAX) {
        Ok(Scanned::Done(hello)) => hello,
        other => panic!("whole hello: {other:?}"),
    }
}

fn hello(name: Option<&str>, alpn: Option<&str>) -> ClientHello {
    ClientHello {
        server_name: name.map(str::to_string),
        alpn: alpn.map(str::to_string),
    }
}

/// The handshake message carried by `records` (their fragments joined).
fn message_of(mut records: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    while records.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([records[3], records[4]]));
        message.extend_from_slice(&records[5..5 + len]);
        records = &records[5 + len..];
    }
    message
}

/// `message` in handshake records whose fragment sizes `size` chooses (at least 1 each).
fn framed(message: &[u8], mut size: impl FnMut() -> usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks(message, &mut size) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn chunks<'a>(mut rest: &'a [u8], size: &mut impl FnMut() -> usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let n = size().clamp(1, MAX_RECORD).min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

/// What goes into a generated ClientHello.
#[derive(Debug, Clone, Default)]
struct Spec {
    /// Entries of the server_name list: (name type, name).
    names: Vec<(u8, Vec<u8>)>,
    /// ALPN protocols; none: no extension.
    alpn: Vec<Vec<u8>>,
    /// GREASE values (RFC 8701) as an extension type and in the ALPN list.
    grease: bool,
    /// Bytes of a padding extension (post-quantum hellos are over 1.5 KiB).
    padding: usize,
    session_id: usize,
    suites: usize,
}

fn ext(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

fn with_u16_len(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

/// The handshake message (header included) `spec` describes.
fn message(spec: &Spec) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x11; 32]);
    body.push(spec.session_id as u8);
    body.extend(std::iter::repeat_n(0x22, spec.session_id));
    let suites: Vec<u8> = (0..spec.suites.max(1) as u16)
        .flat_map(|s| (0x1301 + s).to_be_bytes())
        .collect();
    body.extend_from_slice(&with_u16_len(&suites));
    body.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    if spec.grease {
        exts.extend_from_slice(&ext(0x0a0a, &[]));
    }
    if !spec.names.is_empty() {
        let mut list = Vec::new();
        for (kind, name) in &spec.names {
            list.push(*kind);
            list.extend_from_slice(&with_u16_len(name));
        }
        exts.extend_from_slice(&ext(0, &with_u16_len(&list)));
    }
    if !spec.alpn.is_empty() {
        let mut list = Vec::new();
        if spec.grease {
            list.extend_from_slice(&[2, 0x3a, 0x3a]);
        }
        for proto in &spec.alpn {
            list.push(proto.len() as u8);
            list.extend_from_slice(proto);
        }
        exts.extend_from_slice(&ext(16, &with_u16_len(&list)));
    }
    if spec.padding > 0 {
        exts.extend_from_slice(&ext(21, &vec![0; spec.padding]));
    }
    body.extend_from_slice(&with_u16_len(&exts));
    let len = body.len() as u32;
    let mut out = vec![1, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    out.extend_from_slice(&body);
    out
}

fn spec(name: &str) -> Spec {
    Spec {
        names: vec![(0, name.as_bytes().to_vec())],
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        session_id: 32,
        suites: 3,
        ..Spec::default()
    }
}

#[test]
fn real_hellos_from_openssl_and_curl() {
    let openssl = hello(Some("a.test"), Some("h2,http/1.1"));
    assert_eq!(scan(OPENSSL, MAX), Ok(Scanned::Done(openssl.clone())));
    assert_eq!(whole_only_at_the_end(OPENSSL), openssl);
    let curl = whole_only_at_the_end(CURL);
    assert_eq!(curl.server_name.as_deref(), Some("b.test"));
    assert_eq!(curl.alpn.as_deref(), Some("h2,http/1.1"));
    assert_eq!(whole_only_at_the_end(NO_NAME), hello(None, None));
}

#[test]
fn real_hellos_reframed_into_one_byte_and_three_records() {
    for capture in [OPENSSL, CURL, NO_NAME] {
        let want = whole_only_at_the_end(capture);
        let message = message_of(capture);
        let one_byte = framed(&message, || 1);
        assert_eq!(whole_only_at_the_end(&one_byte), want);
        let third = message.len() / 3 + 1;
        let three = framed(&message, || third);
        assert_eq!(three.len(), message.len() + 15);
        assert_eq!(whole_only_at_the_end(&three), want);
        // The handshake header itself split across records.
        let mut sizes = [2, 1, 3].into_iter().chain(std::iter::repeat(100));
        let split_header = framed(&message, || sizes.next().unwrap_or(100));
        assert_eq!(whole_only_at_the_end(&split_header), want);
    }
}

#[test]
fn bytes_after_the_hello_are_not_read() {
    let mut bytes = OPENSSL.to_vec();
    bytes.extend_from_slice(&[0x17, 3, 3, 0, 5, 1, 2, 3, 4, 5]);
    bytes.extend_from_slice(b"junk that is not a record");
    assert_eq!(
        scan(&bytes, MAX),
        Ok(Scanned::Done(hello(Some("a.test"), Some("h2,http/1.1"))))
    );
}

#[test]
fn names_are_lowercased_without_the_trailing_dot() {
    let bytes = framed(&message(&spec("App.EXAMPLE.com.")), || 1000);
    let got = whole_only_at_the_end(&bytes);
    assert_eq!(got.server_name.as_deref(), Some("app.example.com"));
}

#[test]
fn several_names_grease_and_other_name_types() {
    let mut s = spec("first.test");
    s.names.insert(0, (7, b"not-a-host-name".to_vec()));
    s.names.push((0, b"second.test".to_vec()));
    s.grease = true;
    let got = whole_only_at_the_end(&framed(&message(&s), || 64));
    assert_eq!(got.server_name.as_deref(), Some("first.test"));
    assert_eq!(got.alpn.as_deref(), Some("::,h2,http/1.1"));
}

#[test]
fn no_extensions_or_no_sni() {
    let mut s = spec("x");
    s.names.clear();
    s.alpn.clear();
    let got = whole_only_at_the_end(&framed(&message(&s), || 1000));
    assert_eq!(got, hello(None, None));
    // An SSLv3-style hello: no extensions block at all.
    let mut bare = message(&s);
    bare.truncate(bare.len() - 2);
    let len = (bare.len() - 4) as u32;
    bare[1..4].copy_from_slice(&len.to_be_bytes()[1..]);
    assert_eq!(
        scan(&framed(&bare, || 1000), MAX),
        Ok(Scanned::Done(hello(None, None)))
    );
}

#[test]
fn a_post_quantum_sized_hello_over_several_records_and_the_limit() {
    let mut s = spec("pq.test");
    s.padding = 1800;
    let message = message(&s);
    let bytes = framed(&message, || 700);
    assert_eq!(
        whole_only_at_the_end(&bytes).server_name.as_deref(),
        Some("pq.test")
    );
    // preread_max counts the records on the wire; the message's own length is checked as
    // soon as its header is whole.
    assert_eq!(scan(&bytes, bytes.len()).map(|_| ()), Ok(()));
    let too_small = bytes.len() - 1;
    assert!(matches!(
        scan(&bytes, too_small),
        Err(HelloError::TooLarge { .. })
    ));
    assert!(matches!(
        scan(&bytes[..9], 1000),
        Err(HelloError::TooLarge { needed, max: 1000 }) if needed > 1000
    ));
}

#[test]
fn not_tls_is_decided_by_the_first_byte() {
    assert_eq!(scan(b"", MAX), Ok(Scanned::Incomplete));
    assert_eq!(scan(b"G", MAX), Ok(Scanned::NotTls));
    assert_eq!(scan(b"GET / HTTP/1.1\r\n\r\n", MAX), Ok(Scanned::NotTls));
    assert_eq!(scan(b"SSH-2.0-OpenSSH\r\n", MAX), Ok(Scanned::NotTls));
    // An SSLv2-compatible hello starts with the length's high bit: not a TLS record.
    assert_eq!(scan(&[0x80, 0x2e, 0x01], MAX), Ok(Scanned::NotTls));
    assert_eq!(scan(&[0x16], MAX), Ok(Scanned::Incomplete));
}

#[test]
fn junk_after_a_handshake_byte_is_an_error_at_once() {
    let cases: &[(&[u8], HelloError)] = &[
        (&[22, 2], HelloError::RecordVersion(2, 0)),
        (&[22, 3, 9], HelloError::RecordVersion(3, 9)),
        (&[22, 3, 1, 0, 0], HelloError::RecordLength(0)),
        (&[22, 3, 1, 0x48, 0x01], HelloError::RecordLength(0x4801)),
        (&[22, 3, 1, 0, 4, 2, 0, 0, 0], HelloError::NotClientHello(2)),
    ];
    for (bytes, want) in cases {
        assert_eq!(scan(bytes, MAX).as_ref(), Err(want), "{bytes:?}");
    }
    // A record of another type inside a hello split over records.
    let message = message(&spec("a.test"));
    let mut bytes = framed(&message[..10], || 10);
    bytes.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
    assert_eq!(scan(&bytes, MAX), Err(HelloError::RecordType(23)));
}

#[test]
fn lengths_that_do_not_add_up() {
    let message = message(&spec("a.test"));
    // Offsets in the generated message: header 4, version 2, random 32, session id 1 + 32,
    // suites 2 + 6, compression 2, extensions length 2, then the SNI extension.
    let exts = 4 + 2 + 32 + 33 + 8 + 2;
    let cases: &[(usize, u8, &str)] = &[
        (4 + 2 + 32, 33, "session id longer than 32 bytes"),
        (4 + 2 + 32 + 33 + 1, 7, "cipher suites length"),
        (4 + 2 + 32 + 33 + 8, 0, "no compression method"),
        (exts + 1, 0xff, "extensions length"),
        (exts + 2 + 3, 0xff, "extension length"),
        (exts + 2 + 5, 0xff, "server name list length"),
        (exts + 2 + 8, 0xff, "server name length"),
        (exts + 2 + 9, b' ', "host name is not printable ASCII"),
    ];
    for &(at, value, what) in cases {
        let mut broken = message.clone();
        broken[at] = value;
        let got = scan(&framed(&broken, || 50), MAX);
        assert_eq!(got, Err(HelloError::Malformed(what)), "byte {at} = {value}");
    }
    // The message ends before its fields do.
    let mut short = message.clone();
    short[3] -= 10;
    assert!(matches!(
        scan(&framed(&short, || 50), MAX),
        Err(HelloError::Malformed(_))
    ));
}

#[test]
fn a_name_entry_running_past_its_list_is_refused() {
    // Found by the fuzzer: one byte left in the list, then the entry header (3 bytes) read
    // past its end.
    let mut s = spec("a.test");
    s.alpn.clear();
    s.names.push((0, Vec::new()));
    let mut message = message(&s);
    let list_at = 4 + 2 + 32 + 33 + 8 + 2 + 2 + 4;
    let list = u16::from_be_bytes([message[list_at], message[list_at + 1]]);
    // Shrink the list (and the extension) so that the second entry starts inside it but its
    // header ends outside.
    message[list_at..list_at + 2].copy_from_slice(&(list - 2).to_be_bytes());
    message[list_at - 2..list_at].copy_from_slice(&list.to_be_bytes());
    let got = scan(&framed(&message, || 1000), MAX);
    assert!(matches!(got, Err(HelloError::Malformed(_))), "{got:?}");
}

#[test]
fn duplicate_extensions_are_refused() {
    let mut s = spec("a.test");
    s.alpn.clear();
    let mut message = message(&s);
    let sni = ext(
        0,
        &with_u16_len(&[&[0u8][..], &with_u16_len(b"b.test")].concat()),
    );
    message.extend_from_slice(&sni);
    let exts_at = 4 + 2 + 32 + 33 + 8 + 2;
    let exts_len = (message.len() - exts_at - 2) as u16;
    message[exts_at..exts_at + 2].copy_from_slice(&exts_len.to_be_bytes());
    let len = (message.len() - 4) as u32;
    message[1..4].copy_from_slice(&len.to_be_bytes()[1..]);
    let got = scan(&framed(&message, || 1000), MAX);
    assert_eq!(
        got,
        Err(HelloError::Malformed("two server_name extensions"))
    );
}

/// A random valid spec: names of random case and length, GREASE, padding.
fn generated(rng: &mut Rng) -> Spec {
    let label = |rng: &mut Rng| -> Vec<u8> {
        let n = 1 + rng.below_u64(20) as usize;
        (0..n)
            .map(|_| b"abcdefghijklmnopqrstuvwxyzABCDEF0123456789-"[rng.below_u64(43) as usize])
            .collect()
    };
    let mut names = Vec::new();
    for _ in 0..rng.below_u64(3) {
        let labels: Vec<Vec<u8>> = (0..1 + rng.below_u64(4)).map(|_| label(rng)).collect();
        names.push((0, labels.join(&b'.')));
    }
    let alpn = (0..rng.below_u64(4))
        .map(|_| label(rng).into_iter().take(8).collect())
        .collect();
    Spec {
        names,
        alpn,
        grease: rng.below_u64(2) == 0,
        padding: rng.below_u64(3000) as usize,
        session_id: rng.below_u64(33) as usize,
        suites: 1 + rng.below_u64(40) as usize,
    }
}

fn expected(spec: &Spec) -> ClientHello {
    let mut alpn: Vec<Vec<u8>> = spec.alpn.clone();
    if spec.grease && !alpn.is_empty() {
        alpn.insert(0, vec![0x3a, 0x3a]);
    }
    ClientHello {
        server_name: spec
            .names
            .first()
            .map(|(_, n)| String::from_utf8_lossy(n).to_lowercase()),
        alpn: (!alpn.is_empty()).then(|| String::from_utf8_lossy(&alpn.join(&[b','][..])).into()),
    }
}

#[test]
fn property_generated_hellos_in_random_records_and_pieces() {
    let mut rng = Rng::new(0x5EED_0011_C1E0_4E11);
    for round in 0..300 {
        let spec = generated(&mut rng);
        let message = message(&spec);
        let cap = 1 + rng.below_u64(message.len() as u64 + 50) as usize;
        let bytes = framed(&message, || 1 + rng.below_u64(cap as u64) as usize);
        // Delivered in random pieces to one scanner: incomplete until the last piece.
        let mut scanner = HelloScan::default();
        let mut have = 0;
        let got = loop {
            have = (have + 1 + rng.below_u64(400) as usize).min(bytes.len());
            match scanner.advance(&bytes[..have], MAX) {
                Ok(Scanned::Incomplete) => assert!(have < bytes.len(), "round {round}"),
                other => break other,
            }
        };
        assert_eq!(have, bytes.len(), "round {round}: done early");
        assert_eq!(got, Ok(Scanned::Done(expected(&spec))), "round {round}");
    }
}

#[test]
fn property_mutated_hellos_never_panic_and_pieces_agree_with_whole() {
    let mut rng = Rng::new(0x0BAD_0011_C1E0_4E11);
    for round in 0..2_000 {
        let spec = generated(&mut rng);
        let mut bytes = framed(&message(&spec), || 1 + rng.below_u64(600) as usize);
        for _ in 0..1 + rng.below_u64(4) {
            let at = rng.below_u64(bytes.len() as u64) as usize;
            bytes[at] = rng.next() as u8;
        }
        if rng.below_u64(4) == 0 {
            bytes.truncate(rng.below_u64(bytes.len() as u64) as usize);
        }
        if rng.below_u64(8) == 0 {
            let n = rng.below_u64(64) as usize;
            bytes = rng.bytes(n);
        }
        let whole = scan(&bytes, MAX);
        let mut scanner = HelloScan::default();
        let mut pieces = Ok(Scanned::Incomplete);
        for k in 1..=bytes.len() {
            pieces = scanner.advance(&bytes[..k], MAX);
            if pieces != Ok(Scanned::Incomplete) {
                break;
            }
        }
        // Byte by byte may stop earlier (an error seen in a prefix), never disagree on a
        // result reached from the whole.
        match (&whole, &pieces) {
            (Ok(Scanned::Done(a)), Ok(Scanned::Done(b))) => assert_eq!(a, b, "round {round}"),
            (Ok(Scanned::Done(_)), other) => panic!("round {round}: pieces gave {other:?}"),
            _ => {}
        }
    }
}

/// What `tls-parser` reads from a one-record hello: the first host name and the ALPN list.
fn tls_parser_view(record: &[u8]) -> ClientHello {
    use tls_parser::{
        TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_extensions, parse_tls_plaintext,
    };
    let (_, plaintext) = parse_tls_plaintext(record).expect("tls-parser reads the record");
    let Some(TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello))) =
        plaintext.msg.first()
    else {
        panic!("tls-parser: not a ClientHello");
    };
    let mut view = ClientHello::default();
    let (_, extensions) = parse_tls_extensions(hello.ext.unwrap_or_default()).expect("exts");
    for extension in extensions {
        match extension {
            TlsExtension::SNI(names) => {
                view.server_name = names
                    .iter()
                    .find(|(kind, _)| kind.0 == 0)
                    .map(|(_, n)| String::from_utf8_lossy(n).to_lowercase());
            }
            TlsExtension::ALPN(protocols) => {
                let joined = protocols.join(&[b','][..]);
                view.alpn = Some(String::from_utf8_lossy(&joined).into_owned());
            }
            _ => {}
        }
    }
    view
}

#[test]
fn agrees_with_tls_parser_on_real_and_generated_hellos() {
    for capture in [OPENSSL, CURL, NO_NAME] {
        assert_eq!(tls_parser_view(capture), whole_only_at_the_end(capture));
    }
    let mut rng = Rng::new(0x7115_9A45_E400_0001);
    for round in 0..500 {
        let message = message(&generated(&mut rng));
        let one_record = framed(&message, || MAX_RECORD);
        let theirs = tls_parser_view(&one_record);
        let split = framed(&message, || 1 + rng.below_u64(300) as usize);
        assert_eq!(
            scan(&split, MAX),
            Ok(Scanned::Done(theirs)),
            "round {round}"
        );
    }
}
