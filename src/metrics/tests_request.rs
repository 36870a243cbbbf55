//! Tests of request parsing and responses, with bounded property tests of the parser.

use super::*;

#[test]
fn complete_get_and_head_of_metrics() {
    let get = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    assert_eq!(parse_request(get), Request::Metrics { head: false });
    let head = b"HEAD /metrics HTTP/1.0\r\n\r\n";
    assert_eq!(parse_request(head), Request::Metrics { head: true });
}

#[test]
fn incomplete_until_the_empty_line() {
    let full = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    for n in 0..full.len() {
        assert_eq!(parse_request(&full[..n]), Request::Incomplete, "prefix {n}");
    }
    assert_eq!(parse_request(full), Request::Metrics { head: false });
}

#[test]
fn oversized_head_is_bad() {
    let mut buf = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    buf.resize(MAX_REQUEST - 1, b'a');
    assert_eq!(parse_request(&buf), Request::Incomplete);
    buf.push(b'a');
    assert_eq!(parse_request(&buf), Request::Bad);
    // The end of head beyond the limit does not count.
    buf.extend_from_slice(b"\r\n\r\n");
    assert_eq!(parse_request(&buf), Request::Bad);
    // Exactly at the limit does.
    let mut exact = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    exact.resize(MAX_REQUEST - 4, b'a');
    exact.extend_from_slice(b"\r\n\r\n");
    assert_eq!(exact.len(), MAX_REQUEST);
    assert_eq!(parse_request(&exact), Request::Metrics { head: false });
}

#[test]
fn other_methods_lines_and_versions_are_bad() {
    for req in [
        &b"POST /metrics HTTP/1.1\r\n\r\n"[..],
        b"get /metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/2.0\r\n\r\n",
        b"GET /metrics HTTP/1\r\n\r\n",
        b"GET /metrics HTTP/1.1x\r\n\r\n",
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/1.1 extra\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"\r\n\r\n",
        b"\n\n",
        b"GET /metr\xffics HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
    ] {
        assert_eq!(
            parse_request(req),
            Request::Bad,
            "{:?}",
            String::from_utf8_lossy(req)
        );
    }
}

#[test]
fn other_paths_are_not_found() {
    for req in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET /metrics/ HTTP/1.1\r\n\r\n",
        b"GET /metricsx HTTP/1.1\r\n\r\n",
        b"GET /favicon.ico HTTP/1.0\r\n\r\n",
    ] {
        assert_eq!(parse_request(req), Request::NotFound { head: false });
    }
    assert_eq!(
        parse_request(b"HEAD /x HTTP/1.1\r\n\r\n"),
        Request::NotFound { head: true }
    );
}

#[test]
fn query_string_and_absolute_form_are_accepted() {
    let m = Request::Metrics { head: false };
    assert_eq!(parse_request(b"GET /metrics?name[]=x HTTP/1.1\r\n\r\n"), m);
    assert_eq!(parse_request(b"GET /metrics? HTTP/1.1\r\n\r\n"), m);
    assert_eq!(parse_request(b"GET http://h:9/metrics HTTP/1.1\r\n\r\n"), m);
    assert_eq!(
        parse_request(b"GET http://h:9 HTTP/1.1\r\n\r\n"),
        Request::NotFound { head: false }
    );
}

#[test]
fn bare_lf_ends_the_head() {
    let m = Request::Metrics { head: false };
    assert_eq!(parse_request(b"GET /metrics HTTP/1.1\nHost: x\n\n"), m);
    assert_eq!(parse_request(b"GET /metrics HTTP/1.1\n\n"), m);
    assert_eq!(parse_request(b"GET /metrics HTTP/1.1\r\n\n"), m);
    assert_eq!(
        parse_request(b"GET /metrics HTTP/1.1\nHost: x\n"),
        Request::Incomplete
    );
}

#[test]
fn bytes_after_the_head_are_ignored() {
    let buf = b"GET /metrics HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    assert_eq!(parse_request(buf), Request::Metrics { head: false });
}

#[test]
fn header_lines_up_to_the_limit() {
    let with = |n: usize| {
        let mut buf = b"GET /metrics HTTP/1.1\r\n".to_vec();
        for i in 0..n {
            buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        buf
    };
    let full = with(MAX_HEADERS);
    assert!(full.len() < MAX_REQUEST);
    assert_eq!(parse_request(&full), Request::Metrics { head: false });
    assert_eq!(parse_request(&with(MAX_HEADERS + 1)), Request::Bad);
}

#[test]
fn empty_line_before_the_request_line_is_bad() {
    for req in [
        &b"\r\nGET /metrics HTTP/1.1\r\n\r\n"[..],
        b"\nGET /metrics HTTP/1.1\n\n",
        b"\r",
        b"\n",
    ] {
        assert_eq!(parse_request(req), Request::Bad, "{req:?}");
    }
    assert_eq!(parse_request(b""), Request::Incomplete);
}

#[test]
fn malformed_header_lines_are_skipped_but_nul_and_bare_cr_are_bad() {
    let m = Request::Metrics { head: false };
    for header in [
        &b"Host x"[..],
        b" folded",
        b"X : y",
        b"\xff: v",
        b"X: \x80\xff",
    ] {
        let mut req = b"GET /metrics HTTP/1.1\r\n".to_vec();
        req.extend_from_slice(header);
        req.extend_from_slice(b"\r\nAccept: */*\r\n\r\n");
        assert_eq!(
            parse_request(&req),
            m,
            "{:?}",
            String::from_utf8_lossy(&req)
        );
    }
    for req in [
        &b"GET /metrics HTTP/1.1\r\nX: a\0b\r\n\r\n"[..],
        b"GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n\rX: y\r\n\r\n",
    ] {
        assert_eq!(parse_request(req), Request::Bad, "{req:?}");
    }
}

#[test]
fn request_line_parts_are_split_by_spaces_only() {
    let m = Request::Metrics { head: false };
    assert_eq!(parse_request(b"GET   /metrics  HTTP/1.1\r\n\r\n"), m);
    for req in [
        &b"GET\t/metrics HTTP/1.1\r\n\r\n"[..],
        b" GET /metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1 \r\n\r\n",
        b"GET /metrics HTTP/1.2\r\n\r\n",
        b"GET /met\x7frics HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(parse_request(req), Request::Bad, "{req:?}");
    }
}

#[test]
fn a_bad_request_line_is_bad_before_the_head_ends() {
    assert_eq!(parse_request(b"GET /metrics HTTP/2"), Request::Bad);
    assert_eq!(parse_request(b"GET /metrics HTTP/1.1 x"), Request::Bad);
    assert_eq!(parse_request(b"\x16\x03\x01"), Request::Bad);
    // The method is judged once the head is whole.
    assert_eq!(
        parse_request(b"POST /metrics HTTP/1.1\r\n"),
        Request::Incomplete
    );
}

/// Xorshift64: a seeded, dependency-free generator for the property test below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A well-formed request head and what [`parse_request`] must make of it.
fn valid_head(rng: &mut Rng) -> (Vec<u8>, Request) {
    const TARGETS: [(&str, bool); 14] = [
        ("/metrics", true),
        ("/metrics?x=y", true),
        ("/metrics?", true),
        ("/metrics#top", true),
        ("/metrics?name[]=a%20b", true),
        ("http://h:9/metrics", true),
        ("HTTPS://h/metrics?q", true),
        ("/", false),
        ("/metricsx", false),
        ("/metrics/", false),
        ("/m\u{e9}trics", false),
        ("http://h:9", false),
        ("http://h?x=/metrics", false),
        ("/favicon.ico", false),
    ];
    const TOKEN: &[u8] = b"abcxyzABCXYZ0189!#$%&'*+-.^_`|~";
    let eol = |rng: &mut Rng| if rng.below(3) == 0 { "\n" } else { "\r\n" };
    let head = rng.below(2) == 0;
    let (target, metrics) = rng.pick(&TARGETS);
    let mut buf = Vec::new();
    buf.extend_from_slice(if head { b"HEAD" } else { b"GET" });
    buf.resize(buf.len() + 1 + rng.below(2), b' ');
    buf.extend_from_slice(target.as_bytes());
    buf.resize(buf.len() + 1 + rng.below(2), b' ');
    buf.extend_from_slice(rng.pick(&[&b"HTTP/1.1"[..], b"HTTP/1.0"]));
    buf.extend_from_slice(eol(rng).as_bytes());
    let headers = if rng.below(50) == 0 {
        MAX_HEADERS
    } else {
        rng.below(6)
    };
    for _ in 0..headers {
        for _ in 0..1 + rng.below(12) {
            buf.push(rng.pick(TOKEN));
        }
        buf.extend_from_slice(rng.pick(&[&b": "[..], b":", b":\t "]));
        for _ in 0..rng.below(20) {
            buf.push(match rng.below(10) {
                0 => b' ',
                1 => b'\t',
                2 => 0x80 + rng.below(0x80) as u8,
                _ => 0x21 + rng.below(0x5e) as u8,
            });
        }
        buf.extend_from_slice(eol(rng).as_bytes());
    }
    buf.extend_from_slice(eol(rng).as_bytes());
    let want = if metrics {
        Request::Metrics { head }
    } else {
        Request::NotFound { head }
    };
    (buf, want)
}

/// What the event loop ends with when `chunks` arrive one by one: it re-parses the
/// accumulated bytes after each and stops at the first verdict.
fn feed(chunks: &[&[u8]]) -> Request {
    let mut buf = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        match parse_request(&buf) {
            Request::Incomplete => {}
            verdict => return verdict,
        }
    }
    parse_request(&buf)
}

/// Every prefix of `buf` parses, and once a prefix has a verdict every longer one has the
/// same; nothing of [`MAX_REQUEST`] bytes or more is incomplete.
fn assert_verdicts_are_stable(buf: &[u8]) -> Request {
    let mut first = None;
    for n in 0..=buf.len() {
        let got = parse_request(&buf[..n]);
        if n >= MAX_REQUEST {
            assert_ne!(got, Request::Incomplete, "{n} bytes of {buf:?}");
        }
        match first {
            None if got != Request::Incomplete => first = Some((n, got)),
            Some((at, verdict)) => {
                assert_eq!(got, verdict, "prefix {n} vs {at} of {buf:?}")
            }
            None => {}
        }
    }
    parse_request(buf)
}

#[test]
fn property_random_and_mutated_heads() {
    const INTERESTING: &[u8] = b"\r\n \t:\0\x7f\x80\xff\x0b/?#Gah1.";
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..3000 {
        let (valid, want) = valid_head(&mut rng);
        let ctx = |buf: &[u8]| format!("round {round}: {:?}", String::from_utf8_lossy(buf));

        // Whole, with trailing bytes, and every proper prefix.
        assert_eq!(parse_request(&valid), want, "{}", ctx(&valid));
        let mut trailing = valid.clone();
        for _ in 0..rng.below(8) {
            trailing.push(rng.next() as u8);
        }
        assert_eq!(parse_request(&trailing), want, "{}", ctx(&trailing));
        for n in 0..valid.len() {
            assert_eq!(
                parse_request(&valid[..n]),
                Request::Incomplete,
                "prefix {n}, {}",
                ctx(&valid)
            );
        }

        // In one piece or split at one or two points, the loop ends the same.
        let a = rng.below(trailing.len() + 1);
        let b = a + rng.below(trailing.len() - a + 1);
        let split = [&trailing[..a], &trailing[a..b], &trailing[b..]];
        assert_eq!(feed(&split), want, "split {a} {b}, {}", ctx(&trailing));
        assert_eq!(feed(&[&trailing]), want, "{}", ctx(&trailing));

        // Mutated: bytes replaced, flipped, inserted, removed; or random bytes outright.
        let mut mutated = if round % 4 == 3 {
            (0..rng.below(160))
                .map(|_| match rng.below(2) {
                    0 => rng.pick(INTERESTING),
                    _ => rng.next() as u8,
                })
                .collect()
        } else {
            valid.clone()
        };
        for _ in 0..rng.below(4) {
            let i = rng.below(mutated.len() + 1);
            let byte = match rng.below(2) {
                0 => rng.pick(INTERESTING),
                _ => rng.next() as u8,
            };
            match rng.below(4) {
                0 if i < mutated.len() => mutated[i] = byte,
                1 if i < mutated.len() => mutated[i] ^= 1 << rng.below(8),
                2 if i < mutated.len() => drop(mutated.remove(i)),
                _ => mutated.insert(i, byte),
            }
        }
        let whole = assert_verdicts_are_stable(&mutated);
        let a = rng.below(mutated.len() + 1);
        assert_eq!(
            feed(&[&mutated[..a], &mutated[a..]]),
            whole,
            "split {a}, {}",
            ctx(&mutated)
        );
    }
}

#[test]
fn property_heads_around_the_size_limit() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut len = MAX_REQUEST - 3;
    while len <= MAX_REQUEST + 3 {
        let (valid, _) = valid_head(&mut rng);
        if valid.iter().filter(|&&b| b == b'\n').count() > MAX_HEADERS {
            continue; // No room for the padding header.
        }
        // Pad one header so that the head is `len` bytes long.
        let line_end = valid
            .iter()
            .position(|&b| b == b'\n')
            .expect("request line");
        let mut buf = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
        let rest = &valid[line_end + 1..];
        buf.resize(len - rest.len() - 2, b'p');
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(rest);
        assert_eq!(buf.len(), len);
        let want = if len <= MAX_REQUEST {
            Request::Metrics { head: false }
        } else {
            Request::Bad
        };
        assert_eq!(assert_verdicts_are_stable(&buf), want, "{len} bytes");
        len += 1;
    }
}

/// Splits a response into status line, headers and body, checking `Content-Length`.
fn split(resp: &[u8]) -> (String, Vec<String>, String) {
    let text = String::from_utf8(resp.to_vec()).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("end of head");
    let mut lines = head.split("\r\n").map(str::to_owned);
    let status = lines.next().expect("status line");
    (status, lines.collect(), body.to_owned())
}

fn header<'a>(headers: &'a [String], name: &str) -> &'a str {
    headers
        .iter()
        .find_map(|h| h.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

#[test]
fn metrics_response_is_200_with_exact_length() {
    let body = "# HELP a b\n# TYPE a gauge\na{worker=\"0\"} 1\nÜ\n";
    let (status, headers, got) = split(&response(&Request::Metrics { head: false }, body));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(header(&headers, "Content-Type"), CONTENT_TYPE);
    assert_eq!(header(&headers, "Content-Length"), body.len().to_string());
    assert_eq!(header(&headers, "Connection"), "close");
    assert_eq!(got, body);
}

#[test]
fn head_response_has_length_but_no_body() {
    let body = "x 1\n";
    let (status, headers, got) = split(&response(&Request::Metrics { head: true }, body));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(header(&headers, "Content-Length"), "4");
    assert_eq!(got, "");
}

#[test]
fn not_found_and_bad_responses() {
    for (req, want) in [
        (Request::NotFound { head: false }, "HTTP/1.1 404 Not Found"),
        (Request::Bad, "HTTP/1.1 400 Bad Request"),
        (Request::Incomplete, "HTTP/1.1 400 Bad Request"),
    ] {
        let (status, headers, body) = split(&response(&req, "ignored"));
        assert_eq!(status, want);
        assert_eq!(header(&headers, "Connection"), "close");
        assert_eq!(header(&headers, "Content-Length"), body.len().to_string());
        assert!(!body.is_empty() && !body.contains("ignored"));
    }
    let (status, headers, body) = split(&response(&Request::NotFound { head: true }, ""));
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert_ne!(header(&headers, "Content-Length"), "0");
    assert_eq!(body, "");
}
