//! Reading one admin request from the bytes a client sent so far: the head as `/metrics`
//! reads it ([`crate::metrics::head_parser`], at most [`MAX_REQUEST`] bytes and
//! [`MAX_HEADERS`] header lines), then a small body of `Content-Length` bytes.
//!
//! Pure and bounded: no I/O, no panic on any input, at most [`MAX_REQUEST`] +
//! [`MAX_BODY`] bytes are ever looked at. A verdict other than [`Parse::Incomplete`] holds for
//! every longer buffer that starts with the same bytes, so the caller re-parses its growing
//! buffer and stops at the first one.

use crate::metrics::{MAX_HEADERS, MAX_REQUEST, head_parser};

/// Most body bytes an admin request may carry (a state is a word or a small JSON object).
pub const MAX_BODY: usize = 1024;

/// The request method, as far as the admin cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: reads, never changes anything.
    Get,
    /// `HEAD`: as `GET`, without the body.
    Head,
    /// `POST`: the only method that changes state.
    Post,
    /// Any other method (refused with 405).
    Other,
}

/// A complete admin request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its method.
    pub method: Method,
    /// The request target as sent (origin-form: path and query).
    pub target: String,
    /// The value of every `Origin` header it carried (none for most non-browser clients).
    pub origins: Vec<String>,
    /// The value of every `Host` header it carried.
    pub hosts: Vec<String>,
    /// The body (`Content-Length` bytes; empty without one).
    pub body: Vec<u8>,
}

/// What the bytes so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse {
    /// Not complete yet and nothing wrong so far: read more.
    Incomplete,
    /// Not a request the admin reads, and why (answered 400).
    Bad(&'static str),
    /// A whole request.
    Done(Request),
}

/// Parses the bytes an admin client sent so far (see the module documentation).
///
/// The head must end within [`MAX_REQUEST`] bytes with a request line `METHOD <target>
/// HTTP/1.0|1.1` whose target starts with `/`; an empty line before it is bad. A body is read
/// only with `Content-Length` (at most [`MAX_BODY`]; several different values are bad);
/// `Transfer-Encoding` is refused.
pub fn parse(buf: &[u8]) -> Parse {
    let window = &buf[..buf.len().min(MAX_REQUEST)];
    if let Some(b'\r' | b'\n') = window.first() {
        return Parse::Bad("an empty line before the request line");
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let head_len = match head_parser().parse_request(&mut head, window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => return Parse::Incomplete,
        Ok(httparse::Status::Partial) => return Parse::Bad("a request head over 4096 bytes"),
        Err(_) => return Parse::Bad("a malformed request head"),
    };
    let method = match head.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("POST") => Method::Post,
        _ => Method::Other,
    };
    let Some(target) = head.path.filter(|t| t.starts_with('/')) else {
        return Parse::Bad("a request target that is not a path");
    };
    let mut origins = Vec::new();
    let mut hosts = Vec::new();
    let mut length: Option<usize> = None;
    for header in head.headers.iter() {
        let value = String::from_utf8_lossy(header.value).trim().to_string();
        if header.name.eq_ignore_ascii_case("origin") {
            origins.push(value);
        } else if header.name.eq_ignore_ascii_case("host") {
            hosts.push(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parse::Bad("a Transfer-Encoding (send Content-Length)");
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = value.parse::<usize>().ok().filter(|_| is_digits(&value)) else {
                return Parse::Bad("a Content-Length that is not a number");
            };
            if length.is_some_and(|before| before != n) {
                return Parse::Bad("two different Content-Length values");
            }
            length = Some(n);
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY {
        return Parse::Bad("a body over 1024 bytes");
    }
    let Some(body) = buf.get(head_len..head_len + length) else {
        return Parse::Incomplete;
    };
    Parse::Done(Request {
        method,
        target: target.to_string(),
        origins,
        hosts,
        body: body.to_vec(),
    })
}

/// True for a non-empty run of ASCII digits (no sign, no space).
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> Request {
        match parse(buf) {
            Parse::Done(r) => r,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn a_get_and_a_post_with_a_body() {
        let get = done(b"GET /servers HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!((get.method, get.target.as_str()), (Method::Get, "/servers"));
        assert!(get.origins.is_empty() && get.body.is_empty());
        let post = b"POST /servers/a/127.0.0.1:1/state HTTP/1.1\r\nContent-Length: 5\r\n\
                     Origin: null\r\n\r\ndrain";
        let r = done(post);
        assert_eq!((r.method, r.body.as_slice()), (Method::Post, &b"drain"[..]));
        assert_eq!(r.origins, vec!["null".to_string()]);
        for cut in 0..post.len() {
            assert_eq!(parse(&post[..cut]), Parse::Incomplete, "cut at {cut}");
        }
        let mut longer = post.to_vec();
        longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(done(&longer), r, "bytes after the body are not read");
    }

    #[test]
    fn what_is_refused() {
        let bad = |buf: &[u8]| matches!(parse(buf), Parse::Bad(_));
        assert!(bad(b"\r\nGET / HTTP/1.1\r\n\r\n"));
        assert!(bad(b"GET http://x/ HTTP/1.1\r\n\r\n"));
        assert!(bad(b"GET / HTTP/2.0\r\n\r\n"));
        assert!(bad(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(bad(b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"));
        assert!(bad(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        ));
        assert!(bad(b"POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n"));
        assert!(bad(&[b'a'; MAX_REQUEST + 1]));
        let other = done(b"DELETE /servers HTTP/1.1\r\n\r\n");
        assert_eq!(other.method, Method::Other);
    }

    #[test]
    fn property_a_prefix_keeps_its_verdict_and_only_a_post_changes() {
        let mut rng = crate::test_rng::Rng::new(13);
        let pieces: [&[u8]; 10] = [
            b"GET ",
            b"POST ",
            b"/servers",
            b"?route=a",
            b" HTTP/1.1\r\n",
            b"Content-Length: 3\r\n",
            b"Origin: http://x\r\n",
            b"\r\n",
            b"abc",
            b"\n",
        ];
        for _ in 0..2000 {
            let mut buf = Vec::new();
            for _ in 0..rng.below(12) {
                buf.extend_from_slice(rng.pick(&pieces));
            }
            let len = rng.below(4);
            rng.mutate(&mut buf, b"\r\n :/%?{}", len);
            let whole = parse(&buf);
            if let Parse::Done(r) = &whole {
                // As the fuzz target `admin_request` checks: a change only for POST.
                match crate::admin::endpoint::endpoint(r.method, &r.target, &r.body) {
                    Ok(e) => assert_eq!(e.mutates(), r.method == Method::Post),
                    Err(refusal) => assert!((400..500).contains(&refusal.status)),
                }
            }
            for cut in 0..=buf.len() {
                let part = parse(&buf[..cut]);
                if part != Parse::Incomplete {
                    assert_eq!(
                        part,
                        whole,
                        "{:?} cut at {cut}",
                        String::from_utf8_lossy(&buf)
                    );
                    break;
                }
            }
        }
    }
}
