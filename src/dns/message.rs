//! DNS messages for discovery: a query for one name and record type, and what the answer to
//! it says — the addresses or SRV records, how long they may be used, or why there are none.
//!
//! Pure code over [`simple_dns`]; it never panics on a malformed or hostile answer (which is
//! an [`Answer::Failure`]). An answer is checked against its query: the same id, a response,
//! the same question. Records are taken for the queried name and the names a CNAME chain in
//! the answer section leads to; the TTL of an answer is the smallest TTL of the records used,
//! and that of a negative answer the SOA's negative TTL (RFC 2308).

use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, TYPE};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The negative TTL used when a negative answer carries no SOA.
pub const DEFAULT_NEGATIVE_TTL: u32 = 5;

/// What is asked about a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Service records.
    Srv,
}

impl Kind {
    fn qtype(self) -> TYPE {
        match self {
            Kind::A => TYPE::A,
            Kind::Aaaa => TYPE::AAAA,
            Kind::Srv => TYPE::SRV,
        }
    }
}

/// One SRV record: where a service instance is, and how it ranks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SrvRecord {
    /// Lower is preferred: the lowest priority's records are the primaries.
    pub priority: u16,
    /// Share among records of the same priority.
    pub weight: u16,
    /// The service's port.
    pub port: u16,
    /// The target host (lowercase, no trailing dot).
    pub target: String,
    /// The target's addresses the answer carried in its additional section, if any.
    pub addrs: Vec<IpAddr>,
}

/// Why a query gave no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// SERVFAIL (or another server-side error code).
    ServFail,
    /// REFUSED.
    Refused,
    /// No answer within the timeout from any resolver.
    Timeout,
    /// An answer that is not one to this query, or does not parse.
    Malformed,
}

impl Failure {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::ServFail => "servfail",
            Failure::Refused => "refused",
            Failure::Timeout => "timeout",
            Failure::Malformed => "malformed",
        }
    }
}

/// What an answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Addresses (possibly none: the name exists without records of this type).
    Addrs {
        /// The addresses, sorted, without repeats.
        addrs: Vec<IpAddr>,
        /// Seconds they may be used.
        ttl: u32,
    },
    /// SRV records (possibly none).
    Srv {
        /// The records, sorted, without repeats.
        records: Vec<SrvRecord>,
        /// Seconds they may be used.
        ttl: u32,
    },
    /// The name does not exist.
    NxDomain {
        /// Seconds that may be believed.
        ttl: u32,
    },
    /// No usable answer.
    Failure(Failure),
}

/// A recursive query with id `id` for `name` and `kind`; `None` if `name` is not a valid
/// DNS name.
pub fn query(id: u16, name: &str, kind: Kind) -> Option<Vec<u8>> {
    let mut packet = Packet::new_query(id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED);
    let qname = Name::new(name).ok()?;
    let question = Question::new(
        qname,
        QTYPE::TYPE(kind.qtype()),
        QCLASS::CLASS(CLASS::IN),
        false,
    );
    packet.questions.push(question);
    packet.build_bytes_vec().ok()
}

/// True when the answer was truncated (ask again over TCP).
pub fn truncated(bytes: &[u8]) -> bool {
    // The TC bit of the header's flags (byte 2, bit 1).
    bytes.len() >= 12 && bytes[2] & 0x02 != 0
}

/// The id of a message, if it has a header.
pub fn id_of(bytes: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
}

/// A name as compared here: lowercase, without the trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Reads the answer `bytes` to the query `id` for `name` and `kind`.
pub fn parse(bytes: &[u8], id: u16, name: &str, kind: Kind) -> Answer {
    let Ok(packet) = Packet::parse(bytes) else {
        return Answer::Failure(Failure::Malformed);
    };
    let asked = normalize(name);
    let same_question = packet.questions.len() == 1
        && normalize(&packet.questions[0].qname.to_string()) == asked
        && packet.questions[0].qtype == QTYPE::TYPE(kind.qtype());
    if packet.id() != id || !packet.has_flags(PacketFlag::RESPONSE) || !same_question {
        return Answer::Failure(Failure::Malformed);
    }
    match packet.rcode() {
        RCODE::NoError => {}
        RCODE::NameError => {
            return Answer::NxDomain {
                ttl: negative_ttl(&packet),
            };
        }
        RCODE::Refused => return Answer::Failure(Failure::Refused),
        _ => return Answer::Failure(Failure::ServFail),
    }
    let (owners, chain_ttl) = chain(&packet, asked);
    let mut ttl = chain_ttl;
    let mut found = false;
    let mut addrs = Vec::new();
    let mut records = Vec::new();
    for rr in &packet.answers {
        if !owners.contains(&normalize(&rr.name.to_string())) {
            continue;
        }
        let used = match (&rr.rdata, kind) {
            (RData::A(a), Kind::A) => {
                addrs.push(IpAddr::V4(Ipv4Addr::from(a.address)));
                true
            }
            (RData::AAAA(a), Kind::Aaaa) => {
                addrs.push(IpAddr::V6(Ipv6Addr::from(a.address)));
                true
            }
            (RData::SRV(srv), Kind::Srv) => {
                let target = normalize(&srv.target.to_string());
                records.push(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    addrs: additional_addrs(&packet, &target),
                    target,
                });
                true
            }
            _ => false,
        };
        if used {
            found = true;
            ttl = ttl.min(rr.ttl);
        }
    }
    if !found {
        ttl = negative_ttl(&packet);
    }
    if kind == Kind::Srv {
        records.sort();
        records.dedup();
        Answer::Srv { records, ttl }
    } else {
        addrs.sort();
        addrs.dedup();
        Answer::Addrs { addrs, ttl }
    }
}

/// The names the answer's CNAME chain leads to from `asked` (itself included), and the
/// smallest TTL along it.
fn chain(packet: &Packet<'_>, asked: String) -> (Vec<String>, u32) {
    let mut owners = vec![asked];
    let mut ttl = u32::MAX;
    // Each pass follows one more link; a chain is at most as long as the answer section.
    for _ in 0..packet.answers.len() {
        let mut grew = false;
        for rr in &packet.answers {
            if let RData::CNAME(cname) = &rr.rdata
                && owners.contains(&normalize(&rr.name.to_string()))
            {
                let target = normalize(&cname.0.to_string());
                if !owners.contains(&target) {
                    owners.push(target);
                    ttl = ttl.min(rr.ttl);
                    grew = true;
                }
            }
        }
        if !grew {
            break;
        }
    }
    (owners, ttl)
}

/// The addresses of `target` in the additional section.
fn additional_addrs(packet: &Packet<'_>, target: &str) -> Vec<IpAddr> {
    let mut addrs: Vec<IpAddr> = packet
        .additional_records
        .iter()
        .filter(|rr| normalize(&rr.name.to_string()) == target)
        .filter_map(|rr| match &rr.rdata {
            RData::A(a) => Some(IpAddr::V4(Ipv4Addr::from(a.address))),
            RData::AAAA(a) => Some(IpAddr::V6(Ipv6Addr::from(a.address))),
            _ => None,
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    addrs
}

/// The negative TTL of an answer: the smaller of the SOA record's TTL and its minimum
/// (RFC 2308 §5), or [`DEFAULT_NEGATIVE_TTL`].
fn negative_ttl(packet: &Packet<'_>) -> u32 {
    packet
        .name_servers
        .iter()
        .find_map(|rr| match &rr.rdata {
            RData::SOA(soa) => Some(rr.ttl.min(soa.minimum)),
            _ => None,
        })
        .unwrap_or(DEFAULT_NEGATIVE_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::ResourceRecord;
    use simple_dns::rdata::{A, AAAA, CNAME, SOA, SRV};

    /// A response to the query `id` for `name`/`kind` with these records.
    fn reply(
        id: u16,
        name: &str,
        kind: Kind,
        rcode: RCODE,
        answers: Vec<ResourceRecord<'static>>,
        extra: Vec<ResourceRecord<'static>>,
    ) -> Vec<u8> {
        let bytes = query(id, name, kind).unwrap();
        let mut packet = Packet::parse(&bytes).unwrap().into_reply();
        *packet.rcode_mut() = rcode;
        packet.answers = answers;
        packet.additional_records = extra;
        packet.build_bytes_vec().unwrap()
    }

    fn rr(name: &'static str, ttl: u32, rdata: RData<'static>) -> ResourceRecord<'static> {
        ResourceRecord::new(Name::new_unchecked(name), CLASS::IN, ttl, rdata)
    }

    fn a(ip: [u8; 4]) -> RData<'static> {
        RData::A(A {
            address: u32::from_be_bytes(ip),
        })
    }

    #[test]
    fn addresses_with_the_smallest_ttl_sorted_and_checked_against_the_query() {
        let answers = vec![
            rr("web.test", 30, a([10, 0, 0, 2])),
            rr("web.test", 10, a([10, 0, 0, 1])),
            rr("web.test", 30, a([10, 0, 0, 2])),
            rr("other.test", 1, a([10, 9, 9, 9])),
        ];
        let bytes = reply(7, "web.test", Kind::A, RCODE::NoError, answers, vec![]);
        let got = parse(&bytes, 7, "Web.Test.", Kind::A);
        let want: Vec<IpAddr> = vec![[10, 0, 0, 1].into(), [10, 0, 0, 2].into()];
        assert_eq!(
            got,
            Answer::Addrs {
                addrs: want,
                ttl: 10
            }
        );
        assert_eq!(
            parse(&bytes, 8, "web.test", Kind::A),
            Answer::Failure(Failure::Malformed)
        );
        assert_eq!(
            parse(&bytes, 7, "nope.test", Kind::A),
            Answer::Failure(Failure::Malformed)
        );
        assert_eq!(
            parse(&bytes, 7, "web.test", Kind::Aaaa),
            Answer::Failure(Failure::Malformed)
        );
        assert_eq!(
            parse(&bytes[..5], 7, "web.test", Kind::A),
            Answer::Failure(Failure::Malformed)
        );
        assert!(!truncated(&bytes));
    }

    #[test]
    fn a_cname_chain_is_followed_within_the_answer() {
        let answers = vec![
            rr(
                "web.test",
                50,
                RData::CNAME(CNAME(Name::new_unchecked("lb.test"))),
            ),
            rr(
                "lb.test",
                40,
                RData::CNAME(CNAME(Name::new_unchecked("host.test"))),
            ),
            rr("host.test", 60, RData::AAAA(AAAA { address: 1 })),
        ];
        let bytes = reply(1, "web.test", Kind::Aaaa, RCODE::NoError, answers, vec![]);
        let want = vec![IpAddr::V6(Ipv6Addr::from(1u128))];
        assert_eq!(
            parse(&bytes, 1, "web.test", Kind::Aaaa),
            Answer::Addrs {
                addrs: want,
                ttl: 40
            }
        );
    }

    #[test]
    fn negative_answers_use_the_soa_ttl() {
        let bytes = query(3, "gone.test", Kind::A).unwrap();
        let mut packet = Packet::parse(&bytes).unwrap().into_reply();
        *packet.rcode_mut() = RCODE::NameError;
        packet.name_servers.push(rr(
            "test",
            900,
            RData::SOA(SOA {
                mname: Name::new_unchecked("ns.test"),
                rname: Name::new_unchecked("admin.test"),
                serial: 1,
                refresh: 1,
                retry: 1,
                expire: 1,
                minimum: 60,
            }),
        ));
        let bytes = packet.build_bytes_vec().unwrap();
        assert_eq!(
            parse(&bytes, 3, "gone.test", Kind::A),
            Answer::NxDomain { ttl: 60 }
        );
        // No records of the type: an empty set with the negative TTL.
        let empty = reply(4, "v4only.test", Kind::Aaaa, RCODE::NoError, vec![], vec![]);
        assert_eq!(
            parse(&empty, 4, "v4only.test", Kind::Aaaa),
            Answer::Addrs {
                addrs: vec![],
                ttl: DEFAULT_NEGATIVE_TTL
            }
        );
        for (rcode, failure) in [
            (RCODE::ServerFailure, Failure::ServFail),
            (RCODE::Refused, Failure::Refused),
            (RCODE::NotImplemented, Failure::ServFail),
        ] {
            let bytes = reply(5, "x.test", Kind::A, rcode, vec![], vec![]);
            assert_eq!(
                parse(&bytes, 5, "x.test", Kind::A),
                Answer::Failure(failure)
            );
        }
    }

    #[test]
    fn srv_records_carry_their_targets_addresses() {
        let srv = |priority, weight, port, target: &'static str| {
            RData::SRV(SRV {
                priority,
                weight,
                port,
                target: Name::new_unchecked(target),
            })
        };
        let answers = vec![
            rr("_r._tcp.test", 20, srv(10, 5, 6379, "b.test")),
            rr("_r._tcp.test", 30, srv(0, 0, 6380, "a.test")),
        ];
        let extra = vec![rr("a.test", 30, a([127, 0, 0, 5]))];
        let bytes = reply(9, "_r._tcp.test", Kind::Srv, RCODE::NoError, answers, extra);
        let Answer::Srv { records, ttl } = parse(&bytes, 9, "_r._tcp.test", Kind::Srv) else {
            panic!("an SRV answer");
        };
        assert_eq!(ttl, 20);
        assert_eq!(records.len(), 2);
        assert_eq!(
            (
                records[0].priority,
                records[0].port,
                records[0].target.as_str()
            ),
            (0, 6380, "a.test")
        );
        assert_eq!(records[0].addrs, vec![IpAddr::from([127, 0, 0, 5])]);
        assert!(records[1].addrs.is_empty(), "b.test needs its own query");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = crate::test_rng::Rng::new(0xD15C_0000_0000_0001);
        let good = reply(
            2,
            "web.test",
            Kind::A,
            RCODE::NoError,
            vec![rr("web.test", 5, a([1, 2, 3, 4]))],
            vec![],
        );
        for _ in 0..5_000 {
            let mut bytes = good.clone();
            for _ in 0..1 + rng.below_u64(6) {
                let at = rng.below_u64(bytes.len() as u64) as usize;
                bytes[at] = rng.next() as u8;
            }
            bytes.truncate(rng.below_u64(bytes.len() as u64 + 1) as usize);
            let _ = parse(&bytes, 2, "web.test", Kind::A);
            let n = rng.below_u64(64) as usize;
            let _ = parse(&rng.bytes(n), 2, "web.test", Kind::Srv);
        }
    }
}
