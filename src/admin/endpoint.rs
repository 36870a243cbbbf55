//! Which endpoint a request names, from its method, target and body: the path split into
//! segments and each percent-decoded (so a route name may hold `/` as `%2F`), the query of
//! `/connections`, and the body of a state change. Pure; every refusal carries the status
//! and a message for the JSON error.
//!
//! | method | path | endpoint |
//! |---|---|---|
//! | GET, HEAD | `/` | the status page |
//! | GET, HEAD | `/servers` | every server |
//! | POST | `/servers/{route}/{server}/state` | set the state to the body's |
//! | POST | `/servers/{route}/{server}/shutdown` | close the server's connections |
//! | GET, HEAD | `/connections?route=&server=&older=&after=&limit=` | open connections |
//! | POST | `/connections/{id}/close` | close one connection |
//!
//! A GET never changes anything: a mutation path answers 405 to it (and a read-only path
//! 405 to a POST), with `Allow`.

use super::request::Method;
use crate::endpoint::{Endpoint as Server, unix_path};
use crate::proxy::ServerRef;
use crate::settings::kinds::parse_duration;
use crate::stats::{AdminState, ConnFilter};
use std::net::SocketAddr;
use std::sync::Arc;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /`: the HTML status page.
    Page,
    /// `GET /servers`.
    Servers,
    /// `POST /servers/{route}/{server}/state`.
    SetState(ServerRef, AdminState),
    /// `POST /servers/{route}/{server}/shutdown`.
    Shutdown(ServerRef),
    /// `GET /connections`, with its filter.
    Connections(ConnFilter),
    /// `POST /connections/{id}/close`.
    Close(u64),
}

impl Endpoint {
    /// True for the endpoints that change something (POST only).
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            Endpoint::SetState(..) | Endpoint::Shutdown(_) | Endpoint::Close(_)
        )
    }
}

/// Why a request is not answered as asked: the HTTP status and a one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 403, 404, 405, 503.
    pub status: u16,
    /// What is wrong, for the JSON `error` field.
    pub message: String,
    /// With 405: the methods the path takes.
    pub allow: Option<&'static str>,
}

impl Refusal {
    /// `status` with `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            allow: None,
        }
    }
}

/// What the body of a state change must be.
const STATE_BODY: &str = "expected the body ready, drain or maint, as a word or as JSON \
                          {\"state\": \"drain\"}";

/// The endpoint `method` and `target` name, with `body` for a state change.
pub fn endpoint(method: Method, target: &str, body: &[u8]) -> Result<Endpoint, Refusal> {
    let target = target.split('#').next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let shape = match segments[..] {
        [""] => Shape::Read,
        ["servers"] | ["connections"] => Shape::Read,
        ["servers", _, _, "state" | "shutdown"] | ["connections", _, "close"] => Shape::Change,
        _ => return Err(Refusal::new(404, format!("no endpoint {}", quoted(path)))),
    };
    let allowed = match shape {
        Shape::Read => matches!(method, Method::Get | Method::Head),
        Shape::Change => method == Method::Post,
    };
    if !allowed {
        let (allow, what) = match shape {
            Shape::Read => ("GET, HEAD", "GET (or HEAD)"),
            Shape::Change => ("POST", "POST: a GET never changes anything"),
        };
        return Err(Refusal {
            status: 405,
            message: format!("{} takes {what}", quoted(path)),
            allow: Some(allow),
        });
    }
    match segments[..] {
        [""] => Ok(Endpoint::Page),
        ["servers"] => Ok(Endpoint::Servers),
        ["connections"] => filter(query).map(Endpoint::Connections),
        ["servers", route, server, action] => {
            let at = ServerRef {
                route: decode(route, false).ok_or_else(|| bad_encoding(route))?,
                server: server_addr(server)?,
            };
            match action {
                "state" => Ok(Endpoint::SetState(at, state_body(body)?)),
                _ => Ok(Endpoint::Shutdown(at)),
            }
        }
        ["connections", id, _] => {
            let id = decode(id, false).and_then(|id| id.parse().ok());
            id.map(Endpoint::Close).ok_or_else(|| {
                Refusal::new(400, "expected a connection id as /connections lists it")
            })
        }
        _ => Err(Refusal::new(404, "no such endpoint")),
    }
}

/// Whether a path reads or changes.
enum Shape {
    Read,
    Change,
}

/// Most connections one `/connections` page may ask for (`limit`).
pub const MAX_PAGE: usize = 100_000;

/// True for a non-empty run of ASCII digits.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The `/connections` filter from its query: `route`, `server`, `older`, and the paging
/// `after` (an id) and `limit` (1 to [`MAX_PAGE`]), each at most once (an empty value is no
/// condition); other keys are refused.
pub fn filter(query: &str) -> Result<ConnFilter, Refusal> {
    let mut filter = ConnFilter::default();
    let mut seen: Vec<String> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key, true).ok_or_else(|| bad_encoding(key))?;
        let value = decode(value, true).ok_or_else(|| bad_encoding(value))?;
        if seen.contains(&key) {
            return Err(Refusal::new(400, format!("{} given twice", quoted(&key))));
        }
        seen.push(key.clone());
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "route" => filter.route = Some(value),
            "server" => filter.server = Some(server_addr(&value)?),
            "older" => {
                let older = parse_duration(&value).ok_or_else(|| {
                    Refusal::new(
                        400,
                        format!(
                            "older: expected a duration such as \"500ms\", \"5s\" or \"2m\", \
                             got {}",
                            quoted(&value)
                        ),
                    )
                })?;
                filter.older = Some(older);
            }
            "after" => {
                let after = value.parse().ok().filter(|_| is_digits(&value));
                let after = after.ok_or_else(|| {
                    Refusal::new(
                        400,
                        format!("after: expected a connection id, got {}", quoted(&value)),
                    )
                })?;
                filter.after = Some(after);
            }
            "limit" => {
                let limit = value.parse().ok().filter(|n| (1..=MAX_PAGE).contains(n));
                let limit = limit.ok_or_else(|| {
                    Refusal::new(
                        400,
                        format!(
                            "limit: expected a number from 1 to {MAX_PAGE}, got {}",
                            quoted(&value)
                        ),
                    )
                })?;
                filter.limit = Some(limit);
            }
            _ => {
                return Err(Refusal::new(
                    400,
                    format!(
                        "unknown parameter {}: expected route, server, older, after or limit",
                        quoted(&key)
                    ),
                ));
            }
        }
    }
    Ok(filter)
}

/// The state a state change's body names: `ready`, `drain` or `maint`, as a word (spaces
/// and a final newline allowed) or as a JSON object with a string `state`.
pub fn state_body(body: &[u8]) -> Result<AdminState, Refusal> {
    let bad = || Refusal::new(400, STATE_BODY);
    let text = std::str::from_utf8(body).map_err(|_| bad())?.trim();
    let word = if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|_| bad())?;
        value
            .get("state")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(bad)?
    } else {
        text.to_string()
    };
    AdminState::settable(&word).ok_or_else(bad)
}

/// A server address from a path segment or query value (percent-decoded): `IP:PORT`, or
/// `unix:PATH` for a Unix socket server.
fn server_addr(raw: &str) -> Result<Server, Refusal> {
    let text = decode(raw, false).ok_or_else(|| bad_encoding(raw))?;
    if let Some(path) = unix_path(&text) {
        return Ok(Server::Unix(Arc::from(path.as_path())));
    }
    text.parse::<SocketAddr>().map(Server::Ip).map_err(|_| {
        Refusal::new(
            400,
            format!(
                "expected a server as IP:PORT (IPv6 in brackets) or unix:PATH, got {}",
                quoted(&text)
            ),
        )
    })
}

/// Percent-decodes `s` (`+` as a space too when `plus` is set, as in a query); `None` when
/// an escape is broken or the result is not UTF-8.
pub fn decode(s: &str, plus: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
                continue;
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn bad_encoding(raw: &str) -> Refusal {
    Refusal::new(400, format!("broken percent-encoding in {}", quoted(raw)))
}

/// `s` in double quotes, as JSON writes it (so a message stays one line).
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn get(target: &str) -> Result<Endpoint, Refusal> {
        endpoint(Method::Get, target, b"")
    }

    fn post(target: &str, body: &str) -> Result<Endpoint, Refusal> {
        endpoint(Method::Post, target, body.as_bytes())
    }

    fn status(r: Result<Endpoint, Refusal>) -> u16 {
        r.map_or_else(|e| e.status, |_| 200)
    }

    #[test]
    fn paths_and_methods() {
        assert_eq!(get("/"), Ok(Endpoint::Page));
        assert_eq!(
            endpoint(Method::Head, "/servers", b""),
            Ok(Endpoint::Servers)
        );
        let at = ServerRef {
            route: "web/1".into(),
            server: std::net::SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 80)).into(),
        };
        let encoded = "/servers/web%2F1/%5B%3A%3A1%5D%3A80";
        assert_eq!(
            post(&format!("{encoded}/state"), "drain\n"),
            Ok(Endpoint::SetState(at.clone(), AdminState::Drain))
        );
        assert_eq!(
            post("/servers/web%2F1/[::1]:80/shutdown", ""),
            Ok(Endpoint::Shutdown(at))
        );
        let unix = ServerRef {
            route: "app".into(),
            server: Server::Unix(Arc::from(std::path::Path::new("/run/app.sock"))),
        };
        assert_eq!(
            post("/servers/app/unix%3A%2Frun%2Fapp.sock/shutdown", ""),
            Ok(Endpoint::Shutdown(unix))
        );
        assert_eq!(post("/connections/42/close", ""), Ok(Endpoint::Close(42)));
        assert_eq!(status(get("/nothing")), 404);
        assert_eq!(status(get("/servers/")), 404);
        assert_eq!(status(post("/connections/x/close", "")), 400);
        assert_eq!(status(post("/servers/a/localhost:1/state", "ready")), 400);
    }

    #[test]
    fn a_get_never_reaches_a_mutation_nor_a_post_a_read() {
        for path in ["/servers/a/127.0.0.1:1/state", "/connections/1/close"] {
            let refused = get(path).unwrap_err();
            assert_eq!((refused.status, refused.allow), (405, Some("POST")));
            let head = endpoint(Method::Head, path, b"").unwrap_err();
            assert_eq!(head.status, 405);
        }
        let refused = post("/servers", "").unwrap_err();
        assert_eq!((refused.status, refused.allow), (405, Some("GET, HEAD")));
        assert_eq!(endpoint(Method::Other, "/", b"").unwrap_err().status, 405);
    }

    #[test]
    fn state_bodies() {
        assert_eq!(state_body(b"maint"), Ok(AdminState::Maint));
        assert_eq!(state_body(b" ready \r\n"), Ok(AdminState::Ready));
        assert_eq!(state_body(br#"{"state": "drain"}"#), Ok(AdminState::Drain));
        for bad in [
            &b""[..],
            b"down",
            b"DRAIN",
            b"{\"state\": 1}",
            b"{\"mode\": \"drain\"}",
            b"{",
            b"\xff",
        ] {
            assert_eq!(state_body(bad).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn connection_filters_alone_or_combined() {
        assert_eq!(filter(""), Ok(ConnFilter::default()));
        let all = filter("route=web+a&server=127.0.0.1%3A80&older=2s").unwrap();
        assert_eq!(all.route.as_deref(), Some("web a"));
        assert_eq!(
            all.server,
            Some("127.0.0.1:80".parse::<SocketAddr>().unwrap().into())
        );
        assert_eq!(all.older, Some(Duration::from_secs(2)));
        assert_eq!(filter("older=").unwrap(), ConnFilter::default());
        for bad in [
            "older=soon",
            "server=x",
            "route=a&route=b",
            "limit=0",
            "limit=100001",
            "limit=-1",
            "after=+5",
            "after=x",
            "page=2",
            "route=%zz",
        ] {
            assert_eq!(filter(bad).unwrap_err().status, 400, "{bad}");
        }
        let Ok(Endpoint::Connections(f)) = get("/connections?older=500ms") else {
            panic!()
        };
        assert_eq!(f.older, Some(Duration::from_millis(500)));
        let page = filter("after=1099511627776&limit=50").unwrap();
        assert_eq!((page.after, page.limit), (Some(1 << 40), Some(50)));
    }

    #[test]
    fn decoding() {
        assert_eq!(decode("a%2Fb+c", false).as_deref(), Some("a/b+c"));
        assert_eq!(decode("a%2fb+c", true).as_deref(), Some("a/b c"));
        for broken in ["%", "%2", "%g0", "%ff"] {
            assert_eq!(decode(broken, false), None, "{broken}");
        }
    }

    #[test]
    fn arbitrary_targets_and_bodies_never_panic() {
        let mut rng = crate::test_rng::Rng::new(7);
        let pieces: [&str; 14] = [
            "/",
            "servers",
            "connections",
            "state",
            "shutdown",
            "close",
            "%",
            "%2F",
            "?",
            "&",
            "=",
            "older",
            "127.0.0.1:1",
            "[::1]:2",
        ];
        let methods = [Method::Get, Method::Head, Method::Post, Method::Other];
        for _ in 0..5000 {
            let mut target = String::new();
            for _ in 0..rng.below(10) {
                target += rng.pick(&pieces);
            }
            let len = rng.below(8);
            let body = rng.bytes(len);
            let method = methods[rng.below(4)];
            if let Ok(e) = endpoint(method, &target, &body) {
                assert_eq!(e.mutates(), method == Method::Post, "{target}");
            }
        }
    }
}
