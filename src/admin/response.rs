//! An admin answer as HTTP/1.1 bytes: JSON for the API (errors as `{"error": "…"}`), HTML
//! for the status page, always with a length, `Connection: close` and `Cache-Control:
//! no-store`; the page also forbids every external resource and framing (its CSS is inline).

use super::endpoint::Refusal;
use serde_json::{Value, json};

/// The status page's content security policy: nothing loads from anywhere, inline style
/// only, no framing (a page of another origin cannot overlay it).
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

/// One answer, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    content_type: &'static str,
    allow: Option<&'static str>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// `value` as JSON with `status`.
    pub fn json(status: u16, value: &Value) -> Response {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            allow: None,
            body,
        }
    }

    /// The status page.
    pub fn html(page: String) -> Response {
        Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            allow: None,
            body: page.into_bytes(),
        }
    }

    /// A refusal as `{"error": message}` with its status (and `Allow` with 405).
    pub fn refusal(refusal: &Refusal) -> Response {
        let mut response = Response::json(refusal.status, &json!({ "error": refusal.message }));
        response.allow = refusal.allow;
        response
    }

    /// The bytes to write; `head_only` (a HEAD request) leaves the body out.
    pub fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: \
             no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            head += &format!("Allow: {allow}\r\n");
        }
        if self.content_type.starts_with("text/html") {
            head += &format!("Content-Security-Policy: {PAGE_POLICY}\r\n");
        }
        head += "\r\n";
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// The reason phrase of the statuses the admin answers with.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_json_with_allow() {
        let refusal = Refusal {
            status: 405,
            message: "\"/x\" takes POST".into(),
            allow: Some("POST"),
        };
        let text = String::from_utf8(Response::refusal(&refusal).to_bytes(false)).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: POST\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n{\"error\":\"\\\"/x\\\" takes POST\"}\n"),
            "{text}"
        );
        let head = Response::html("<p>".into()).to_bytes(true);
        let head = String::from_utf8(head).unwrap();
        assert!(head.contains("Content-Length: 3\r\n") && head.ends_with("\r\n\r\n"));
        assert!(head.contains("Content-Security-Policy: default-src 'none'"));
    }
}
