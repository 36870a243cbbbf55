//! A real DNS server for the discovery tests: dnsmasq on a loopback port, answering only
//! from the records a test gives it (`--host-record` with TTLs, `--srv-host`), NXDOMAIN for
//! any other name under `test.` and nothing from upstream servers. Records change by
//! restarting it on the same port ([`Dnsmasq::restart`]); it is ready once it answers.

use super::peers::{Peer, TempDir};
use super::{IO_TIMEOUT, wait_until};
use ringproxy::dns::client::Client;
use ringproxy::dns::message::{Answer, Kind};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One record dnsmasq serves.
#[derive(Debug, Clone)]
pub enum Record {
    /// `name` → `ip`, with a TTL in seconds.
    Host(&'static str, &'static str, u32),
    /// SRV `name` → `target:port` with priority and weight.
    Srv(&'static str, &'static str, u16, u16, u16),
}

/// dnsmasq, killed on drop.
pub struct Dnsmasq {
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    dir: TempDir,
    child: Option<Child>,
}

impl Dnsmasq {
    /// Starts serving `records` on a free loopback port.
    pub fn start(records: &[Record]) -> Dnsmasq {
        let port = outside_ephemeral_range();
        let mut dns = Dnsmasq {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir: TempDir::new("dnsmasq"),
            child: None,
        };
        dns.run(records);
        dns
    }

    /// Serves `records` instead, on the same port.
    pub fn restart(&mut self, records: &[Record]) {
        self.stop();
        self.run(records);
    }

    /// Stops answering (the port stays closed until a restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn run(&mut self, records: &[Record]) {
        let program = Peer::Dnsmasq.path().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(program);
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--local=/test/",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--local-ttl=1",
            "--neg-ttl=1",
            "--cache-size=0",
            "--log-facility=-",
        ])
        .arg(format!("--port={}", self.addr.port()))
        .arg(format!("--pid-file={}", self.dir.join("pid").display()));
        for record in records {
            match record {
                Record::Host(name, ip, ttl) => cmd.arg(format!("--host-record={name},{ip},{ttl}")),
                Record::Srv(name, target, port, priority, weight) => cmd.arg(format!(
                    "--srv-host={name},{target},{port},{priority},{weight}"
                )),
            };
        }
        let log = std::fs::File::create(self.dir.join("dnsmasq.log")).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn dnsmasq");
        self.child = Some(child);
        let mut client = Client::new(vec![self.addr], Duration::from_millis(200));
        let ready = wait_until(IO_TIMEOUT, || {
            !matches!(client.ask("ready.test", Kind::A), Answer::Failure(_))
        });
        assert!(
            ready,
            "dnsmasq did not answer:\n{}",
            self.dir.read("dnsmasq.log")
        );
    }
}

/// A port free for UDP and TCP below the kernel's ephemeral range: a restart must find it
/// free again, and an ephemeral port could meanwhile be taken by any client socket.
fn outside_ephemeral_range() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64);
    (0..1000)
        .map(|i| {
            20_000 + ((seed.wrapping_mul(2_654_435_761).wrapping_add(i * 7_919)) % 10_000) as u16
        })
        .find(|&port| {
            UdpSocket::bind(("127.0.0.1", port)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        })
        .expect("a free port between 20000 and 30000")
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}
