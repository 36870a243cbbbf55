//! Asking resolvers, on the calling thread (the discovery thread, or start and reload — never
//! a loop): one query over UDP to each resolver in turn until one answers within the
//! timeout, again over TCP when the answer is truncated.
//!
//! An answer counts only if it comes from the resolver asked and carries the query's id
//! (a random one per query, from a source port the kernel picks), so stray or spoofed
//! datagrams are dropped while waiting.

use super::message::{self, Answer, Failure, Kind};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Time one resolver gets to answer before the next is tried.
pub const TIMEOUT: Duration = Duration::from_secs(1);
/// The DNS port.
pub const PORT: u16 = 53;

/// The resolvers to ask, in order.
#[derive(Debug, Clone)]
pub struct Client {
    resolvers: Vec<SocketAddr>,
    timeout: Duration,
    seed: u64,
}

/// The `nameserver` lines of a `resolv.conf`, in order (port 53).
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // A link-local IPv6 address may carry a zone (`fe80::1%eth0`): not supported.
            let ip: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, PORT))
        })
        .collect()
}

impl Client {
    /// A client asking `resolvers` in order, each within `timeout`.
    pub fn new(resolvers: Vec<SocketAddr>, timeout: Duration) -> Client {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            | 1;
        Client {
            resolvers,
            timeout,
            seed,
        }
    }

    /// A client asking the nameservers of `/etc/resolv.conf` (127.0.0.1 when it lists none,
    /// as the C library does).
    pub fn system() -> Client {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut resolvers = nameservers(&text);
        if resolvers.is_empty() {
            resolvers.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), PORT));
        }
        Client::new(resolvers, TIMEOUT)
    }

    /// The resolvers asked, in order.
    pub fn resolvers(&self) -> &[SocketAddr] {
        &self.resolvers
    }

    fn next_id(&mut self) -> u16 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed >> 24) as u16
    }

    /// Asks about `name` and `kind`: the first resolver's answer, or the failure of the
    /// last one tried.
    pub fn ask(&mut self, name: &str, kind: Kind) -> Answer {
        let id = self.next_id();
        let Some(query) = message::query(id, name, kind) else {
            return Answer::Failure(Failure::Malformed);
        };
        let mut last = Answer::Failure(Failure::Timeout);
        for &resolver in &self.resolvers {
            let answer = match exchange_udp(resolver, &query, id, self.timeout) {
                Ok(bytes) if message::truncated(&bytes) => {
                    match exchange_tcp(resolver, &query, self.timeout) {
                        Ok(bytes) => message::parse(&bytes, id, name, kind),
                        Err(e) => {
                            log::debug!("DNS over TCP to {resolver}: {e}");
                            Answer::Failure(Failure::Timeout)
                        }
                    }
                }
                Ok(bytes) => message::parse(&bytes, id, name, kind),
                Err(e) => {
                    log::debug!("DNS to {resolver}: {e}");
                    Answer::Failure(Failure::Timeout)
                }
            };
            match answer {
                // The next resolver may know better.
                Answer::Failure(_) => last = answer,
                _ => return answer,
            }
        }
        last
    }
}

/// One query over UDP: the first datagram from `resolver` with the query's id.
fn exchange_udp(
    resolver: SocketAddr,
    query: &[u8],
    id: u16,
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let local: SocketAddr = if resolver.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    socket.send_to(query, resolver)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        socket.set_read_timeout(Some(left))?;
        let (n, from) = socket.recv_from(&mut buf)?;
        if from == resolver && message::id_of(&buf[..n]) == Some(id) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// One query over TCP (two-byte length prefixes).
fn exchange_tcp(resolver: SocketAddr, query: &[u8], timeout: Duration) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&resolver, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let len = u16::try_from(query.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed)?;
    let mut len = [0; 2];
    stream.read_exact(&mut len)?;
    let mut answer = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::{Packet, PacketFlag, RCODE};

    #[test]
    fn resolv_conf_nameservers_in_order() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.53\n\
                    nameserver ::1\nnameserver fe80::1%eth0\nnameserver junk\noptions ndots:1\n";
        let got = nameservers(text);
        assert_eq!(
            got,
            ["10.0.0.53:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
    }

    /// A fake resolver on loopback answering each query with `rcode` (and the TC bit when
    /// `truncate`), after first sending a datagram with the wrong id.
    fn fake_resolver(rcode: RCODE, truncate: bool) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0; 512];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let Ok(query) = Packet::parse(&buf[..n]) else {
                    continue;
                };
                let mut reply = query.into_reply();
                *reply.rcode_mut() = rcode;
                if truncate {
                    reply.set_flags(PacketFlag::TRUNCATION);
                }
                let mut bytes = reply.build_bytes_vec().unwrap();
                let mut stray = bytes.clone();
                stray[0] ^= 0xff;
                let _ = socket.send_to(&stray, from);
                let _ = socket.send_to(&bytes, from);
                bytes.clear();
            }
        });
        addr
    }

    #[test]
    fn the_next_resolver_is_asked_after_a_failure_or_silence() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let refusing = fake_resolver(RCODE::Refused, false);
        let answering = fake_resolver(RCODE::NameError, false);
        let resolvers = vec![silent.local_addr().unwrap(), refusing, answering];
        let mut client = Client::new(resolvers, Duration::from_millis(200));
        let started = Instant::now();
        let got = client.ask("gone.test", Kind::A);
        assert!(matches!(got, Answer::NxDomain { .. }), "{got:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "waited for the silent one"
        );
        let mut only_silent = Client::new(
            vec![silent.local_addr().unwrap()],
            Duration::from_millis(50),
        );
        assert_eq!(
            only_silent.ask("x.test", Kind::A),
            Answer::Failure(Failure::Timeout)
        );
        let mut refused = Client::new(vec![refusing], Duration::from_millis(500));
        assert_eq!(
            refused.ask("x.test", Kind::A),
            Answer::Failure(Failure::Refused)
        );
    }

    #[test]
    fn a_truncated_answer_is_asked_again_over_tcp() {
        // Nothing listens for TCP on the fake's port: the TCP try fails like a timeout.
        let truncating = fake_resolver(RCODE::NoError, true);
        let mut client = Client::new(vec![truncating], Duration::from_millis(300));
        assert_eq!(
            client.ask("big.test", Kind::A),
            Answer::Failure(Failure::Timeout)
        );
    }
}
