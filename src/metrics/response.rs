//! The HTTP responses of the metrics endpoint: status line, headers and body, always
//! `Connection: close`.

use super::Request;
use std::fmt::Write as _;

/// Content type of the exposition format this module renders.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The complete HTTP response for `request`: status line, headers, and body.
///
/// [`Request::Metrics`] gets `200 OK` with `body` (the output of [`render`](super::render)); for `HEAD` the
/// headers are the same, `Content-Length` included, but no body follows.
/// [`Request::NotFound`] gets `404`, [`Request::Bad`] (and [`Request::Incomplete`], which a
/// caller should not answer) gets `400`, each with a one-line text body. Every response
/// carries `Connection: close`: the loop closes the connection once it is written.
pub fn response(request: &Request, body: &str) -> Vec<u8> {
    let (status, content_type, body, head) = match *request {
        Request::Metrics { head } => ("200 OK", CONTENT_TYPE, body, head),
        Request::NotFound { head } => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found; try /metrics\n",
            head,
        ),
        Request::Bad | Request::Incomplete => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n",
            false,
        ),
    };
    let mut out = String::with_capacity(128 + if head { 0 } else { body.len() });
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    if !head {
        out.push_str(body);
    }
    out.into_bytes()
}
