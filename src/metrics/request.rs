//! Classification of a metrics client's HTTP/1.x request head, parsed by [`httparse`]
//! without allocation (the header slots are a fixed array on the stack).

/// Most bytes of request head (request line and headers) read from a metrics client. A head
/// not complete within this many bytes is [`Request::Bad`].
pub const MAX_REQUEST: usize = 4096;

/// What a metrics client asked for, as far as [`parse_request`] can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The head has not ended yet, fewer than [`MAX_REQUEST`] bytes arrived, and nothing
    /// malformed has been seen: read more.
    Incomplete,
    /// `GET /metrics` (or `HEAD` when `head` is true, which gets no body).
    Metrics {
        /// The method was `HEAD`.
        head: bool,
    },
    /// A well-formed `GET`/`HEAD` of any other path.
    NotFound {
        /// The method was `HEAD`.
        head: bool,
    },
    /// Anything else: another method, a malformed request line, a non-UTF-8 target, a version
    /// other than HTTP/1.0 or HTTP/1.1, an empty line before the request line, more than
    /// [`MAX_HEADERS`] header lines, or no end of head within [`MAX_REQUEST`] bytes.
    Bad,
}

/// Most header lines a request head may carry; one more is [`Request::Bad`]. The parser keeps
/// them in a fixed array on the stack, so a request costs no allocation.
pub const MAX_HEADERS: usize = 64;

/// Parses the bytes a metrics client sent so far.
///
/// The head is parsed by [`httparse`] and must end, at its first empty line (`\r\n\r\n`, also
/// bare `\n` line endings), within the first [`MAX_REQUEST`] bytes. The request line must be
/// `GET|HEAD <target> HTTP/1.0|1.1`, its parts split by one or more spaces; the target is
/// origin-form (`/metrics?x=y`, the query ignored) or absolute-form (`http://host/metrics`).
/// An empty line before the request line is bad. Header lines are not used: a malformed one
/// is skipped (though a NUL or a bare CR in one is bad), but there may be at most
/// [`MAX_HEADERS`] of them. No body is ever read.
///
/// A verdict other than [`Request::Incomplete`] holds for every longer buffer that starts
/// with the same bytes, so a caller may re-parse its growing buffer and stop at the first one;
/// [`Request::Bad`] may come before the head ends, once no continuation could make it good.
pub fn parse_request(buf: &[u8]) -> Request {
    let window = &buf[..buf.len().min(MAX_REQUEST)];
    // httparse skips empty lines before the request line; this endpoint never accepted them.
    if let Some(b'\r' | b'\n') = window.first() {
        return Request::Bad;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match head_parser().parse_request(&mut request, window) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => return Request::Incomplete,
        // Out of room, or malformed: the request line, too many headers, a NUL or bare CR.
        Ok(httparse::Status::Partial) | Err(_) => return Request::Bad,
    }
    // A complete parse has all three, and the version is HTTP/1.0 or HTTP/1.1.
    let head = match request.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Request::Bad,
    };
    match request.path.and_then(target_path) {
        Some("/metrics") => Request::Metrics { head },
        Some(_) => Request::NotFound { head },
        None => Request::Bad,
    }
}

/// How the proxy's HTTP endpoints (`/metrics`, the admin API) read a request head: one or
/// more spaces between the parts of the request line, malformed header lines skipped (a NUL
/// or a bare CR in one still fails the parse).
pub fn head_parser() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .ignore_invalid_headers_in_requests(true);
    config
}

/// The path of a request target without query or fragment; `None` when the target is neither
/// origin-form nor absolute-form `http(s)://`.
fn target_path(target: &str) -> Option<&str> {
    let rest = if target.starts_with('/') {
        target
    } else {
        let lower = |p: &str| {
            target
                .get(..p.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(p))
        };
        let after_scheme = if lower("http://") {
            &target[7..]
        } else if lower("https://") {
            &target[8..]
        } else {
            return None;
        };
        match after_scheme.find(['/', '?', '#']) {
            Some(i) if after_scheme[i..].starts_with('/') => &after_scheme[i..],
            _ => "/",
        }
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}
