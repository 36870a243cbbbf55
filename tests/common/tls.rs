//! Real TLS on both sides of the proxy for the routing-by-server-name tests: `openssl
//! s_server` backends, each with a fresh self-signed certificate for its own name, and
//! `openssl s_client` as a client that reports whose certificate it received.

use super::peers::{Peer, Server, run};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// An `openssl s_server` on a free loopback port with a self-signed ECDSA certificate for
/// `name` (also its subject alternative name), answering each connection with its HTML
/// status page (`-www`); killed on drop.
pub struct TlsServer {
    /// The name its certificate is for.
    pub name: String,
    server: Server,
}

impl TlsServer {
    /// Generates the certificate and starts the server.
    pub fn for_name(name: &str) -> TlsServer {
        let server = Server::start(Peer::Openssl, 1, |dir, addrs| {
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            let made = Command::new(Peer::Openssl.path().unwrap())
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args([
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                ])
                .arg(format!("/CN={name}"))
                .arg("-addext")
                .arg(format!("subjectAltName=DNS:{name}"))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .expect("run openssl req");
            assert!(made.status.success(), "openssl req: {made:?}");
            let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
            [
                "s_server",
                "-accept",
                &addrs[0].to_string(),
                "-www",
                "-naccept",
                "1000",
            ]
            .iter()
            .map(|a| a.to_string())
            .chain(["-cert".into(), path(&cert), "-key".into(), path(&key)])
            .collect()
        });
        TlsServer {
            name: name.to_string(),
            server,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

/// What `openssl s_client` saw connecting to `addr`, asking for `server_name` (`None`:
/// `-noservername`): the subject's common name of the certificate it received, if the
/// handshake completed.
pub fn peer_certificate(addr: SocketAddr, server_name: Option<&str>) -> Option<String> {
    let connect = addr.to_string();
    let mut args = vec!["s_client", "-connect", &connect, "-brief"];
    match server_name {
        Some(name) => args.extend(["-servername", name]),
        None => args.push("-noservername"),
    }
    let out = run(Peer::Openssl, &args, Duration::from_secs(10));
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // `-brief` prints "Peer certificate: CN = a.test".
    text.lines()
        .find_map(|l| l.strip_prefix("Peer certificate: CN = "))
        .map(|cn| cn.trim().to_string())
}

/// The common name of the certificate curl received fetching `https://NAME:PORT/` through
/// `addr` (`--resolve`), and whether it got the page.
pub fn curl_certificate(addr: SocketAddr, name: &str) -> (Option<String>, bool) {
    let resolve = format!("{name}:{}:{}", addr.port(), addr.ip());
    let url = format!("https://{name}:{}/", addr.port());
    let out = super::peers::curl(
        &["--insecure", "--verbose", "--resolve", &resolve, &url],
        Duration::from_secs(10),
    );
    let verbose = String::from_utf8_lossy(&out.stderr).into_owned();
    let subject = verbose.lines().find_map(|l| {
        l.split_once("subject: CN=")
            .map(|(_, cn)| cn.trim().to_string())
    });
    let page = String::from_utf8_lossy(&out.stdout).contains("s_server");
    (subject, out.status.success() && page)
}
