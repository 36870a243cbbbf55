//! Driving a ringproxy binary's admin API from a test: the process started on a
//! configuration file with `admin = "127.0.0.1:0"` (the address read from its log), one
//! HTTP request per connection, and named backends that say which server a client reached.

use super::peers::TempDir;
use super::*;
use serde_json::Value;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

/// A backend that sends its name (one byte) to each client, then echoes.
pub fn named(name: u8) -> Backend {
    Backend::spawn(listen_on(v4_any_port()), move |mut s| {
        if s.write_all(&[name]).is_ok() {
            echo(s);
        }
    })
}

/// A client through `proxy` and the name of the backend it reached.
pub fn client(proxy: SocketAddr) -> (TcpStream, u8) {
    let mut s = connect(proxy);
    let name = read_exact_within(&mut s, 1, IO_TIMEOUT)[0];
    (s, name)
}

/// A proxy running the configuration file `text` (which should set `admin`), and its admin
/// address.
pub struct Admin {
    pub proxy: BinProxy,
    pub addr: SocketAddr,
    pub dir: TempDir,
}

impl Admin {
    pub fn start(label: &str, text: &str, args: &[&str]) -> Admin {
        let dir = TempDir::new(label);
        let path = dir.join("ringproxy.toml");
        std::fs::write(&path, text).unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(["--config", path.to_str().unwrap()]).args(args);
        let proxy = BinProxy::spawn(cmd);
        let line = proxy
            .wait_for_line(|l| l.contains("admin on http://"), IO_TIMEOUT)
            .unwrap_or_else(|| panic!("no admin line: {:?}", proxy.log()));
        let addr = line.split("admin on http://").nth(1).unwrap();
        let addr = addr.trim_end_matches('/').parse().unwrap();
        Admin { proxy, addr, dir }
    }

    /// Rewrites the file and reloads; waits for the reload line.
    pub fn reload(&self, text: &str) {
        std::fs::write(self.dir.join("ringproxy.toml"), text).unwrap();
        let before = self.reloads();
        self.proxy.signal(libc::SIGHUP);
        assert!(
            wait_until(IO_TIMEOUT, || self.reloads() > before),
            "no reload line: {:?}",
            self.proxy.log()
        );
    }

    pub fn reloads(&self) -> usize {
        let log = self.proxy.log();
        log.iter()
            .filter(|l| l.contains("configuration reloaded"))
            .count()
    }

    pub fn get(&self, path: &str) -> Value {
        let answer = http(self.addr, "GET", path, &[], "");
        assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        serde_json::from_str(&answer.body).unwrap()
    }

    pub fn post(&self, path: &str, body: &str) -> Answer {
        http(self.addr, "POST", path, &[], body)
    }

    /// Sets `server` of `route` to `state`, expecting success.
    pub fn set(&self, route: &str, server: SocketAddr, state: &str) {
        let answer = self.post(&format!("/servers/{route}/{server}/state"), state);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }

    /// The `/servers` entry of `server` in `route`.
    pub fn server(&self, route: &str, server: SocketAddr) -> Value {
        let all = self.get("/servers");
        let found = all
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["route"] == route && s["server"] == server.to_string());
        found
            .unwrap_or_else(|| panic!("{route} {server} not in {all}"))
            .clone()
    }

    pub fn connections(&self, query: &str) -> Vec<Value> {
        let list = self.get(&format!("/connections{query}"));
        list.as_array().unwrap().clone()
    }
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// One request to the admin at `addr`, answered and closed.
/// One request to the admin at `addr` (with `Host: ADDR` unless `headers` name a host).
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut s = connect(addr);
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        request += &format!("Host: {addr}\r\n");
    }
    for header in headers {
        request += &format!("{header}\r\n");
    }
    request += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(request.as_bytes()).unwrap();
    let (data, end) = read_until_end(&mut s, IO_TIMEOUT, 1 << 22);
    assert_eq!(end, Ending::Eof, "the admin closes after answering");
    let text = String::from_utf8(data).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// A file with `admin` on a free port, `globals`, and the routes in `routes`.
pub fn file(globals: &str, routes: &str) -> String {
    format!("admin = \"127.0.0.1:0\"\n{globals}\n{routes}")
}

/// A route named `name` on a free port to `servers`, with `extra` route keys.
pub fn route(name: &str, servers: &[SocketAddr], extra: &str) -> String {
    route_on(name, "127.0.0.1:0".parse().unwrap(), servers, extra)
}

/// A route named `name` on `listen` to `servers`, with `extra` route keys.
pub fn route_on(name: &str, listen: SocketAddr, servers: &[SocketAddr], extra: &str) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|s| format!("{{ addr = \"{s}\" }}"))
        .collect();
    format!(
        "[[route]]\nname = \"{name}\"\nlisten = \"{listen}\"\nservers = [{}]\n{extra}\n",
        list.join(", ")
    )
}

/// The listen address of route `name`, from its start line.
pub fn listen_of(admin: &Admin, name: &str) -> SocketAddr {
    let line = admin
        .proxy
        .wait_for_line(
            |l| l.contains(&format!("route {name}: listening on ")),
            IO_TIMEOUT,
        )
        .unwrap();
    parse_listen_line(&line).unwrap()
}
