//! Choosing the upstream for a new connection or a retry.
//!
//! Pure: no sockets; time is passed in. `pick` never returns a server in `tried` (a client
//! tries each server at most once) nor one that is `down`, at its `max-conns` or failed by
//! active checks. It prefers, in order: healthy primaries, healthy backups, then — as a last
//! resort when passive health has marked everything unavailable — primaries and backups
//! regardless of passive marks (nginx's behaviour when all peers have failed). `None` means
//! nothing is left to try.

use crate::settings::BalancePolicy;
use crate::upstream::{Pool, Upstream, UpstreamId};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Instant;

/// Random draws random-two makes before it ranks the eligible servers instead.
const RANDOM_DRAWS: usize = 8;
/// Points on the hash ring per unit of weight (Ketama uses 160 per server).
const POINTS_PER_WEIGHT: u32 = 160;

/// A balancer for one pool: the policy and the state it carries between picks.
#[derive(Debug, Clone)]
pub struct Balancer {
    policy: BalancePolicy,
    /// Round robin: one period of nginx's smooth weighted sequence over every server
    /// (length = total weight), computed once so that a pick is a step, not a scan.
    sequence: Vec<UpstreamId>,
    /// Round robin: position in `sequence`; least-conn: where the tie-breaking scan starts.
    cursor: usize,
    /// Least-conn: servers ordered by (load per weight, when last re-keyed), as HAProxy's
    /// leastconn tree: the first eligible entry is the least loaded, and among equals the
    /// one picked or changed longest ago, which rotates ties.
    order: BTreeSet<(u64, u64, UpstreamId)>,
    /// Least-conn: each server's current key in `order`.
    keys: Vec<(u64, u64)>,
    /// Least-conn: the last sequence number handed out.
    seq: u64,
    /// Ip-hash: the Ketama-style ring of (point, server), sorted by point.
    ring: Vec<(u64, UpstreamId)>,
    /// Random-two: xorshift64* state (never 0).
    rng: u64,
}

impl Balancer {
    /// A balancer for `pool` (whose servers must not change while it is used). `seed` feeds
    /// the random-two generator.
    pub fn new(policy: BalancePolicy, pool: &Pool, seed: u64) -> Balancer {
        let ring = if policy == BalancePolicy::IpHash {
            build_ring(pool)
        } else {
            Vec::new()
        };
        let sequence = if policy == BalancePolicy::RoundRobin {
            smooth_weighted_sequence(pool)
        } else {
            Vec::new()
        };
        let mut balancer = Balancer {
            policy,
            sequence,
            cursor: 0,
            order: BTreeSet::new(),
            keys: Vec::new(),
            seq: 0,
            ring,
            rng: seed | 1,
        };
        if policy == BalancePolicy::LeastConn {
            balancer.keys = vec![(0, 0); pool.len()];
            for id in 0..pool.len() {
                balancer.order.insert((0, 0, id));
                balancer.rekey(pool, id);
            }
        }
        balancer
    }

    /// Tells the balancer that `id`'s active connections or weight changed. Must be called
    /// after every such change for least-conn to stay exact; a no-op for other policies.
    pub fn update(&mut self, pool: &Pool, id: UpstreamId) {
        if self.policy == BalancePolicy::LeastConn {
            self.rekey(pool, id);
        }
    }

    fn rekey(&mut self, pool: &Pool, id: UpstreamId) {
        let (load, seq) = self.keys[id];
        self.order.remove(&(load, seq, id));
        self.seq += 1;
        let server = &pool.servers[id];
        let load = ((server.active as u64) << 24) / u64::from(server.options.weight.max(1));
        self.keys[id] = (load, self.seq);
        self.order.insert((load, self.seq, id));
    }

    /// The server for a client at `client` that has already tried `tried`, or `None`.
    pub fn pick(
        &mut self,
        pool: &Pool,
        client: IpAddr,
        tried: &[UpstreamId],
        now: Instant,
    ) -> Option<UpstreamId> {
        let healthy_primary = |s: &Upstream| !s.options.backup && s.is_available(now);
        let healthy_backup = |s: &Upstream| s.options.backup && s.is_available(now);
        let any_primary = |s: &Upstream| !s.options.backup && s.can_take();
        let any_backup = |s: &Upstream| s.options.backup && s.can_take();
        let tiers: [&dyn Fn(&Upstream) -> bool; 4] =
            [&healthy_primary, &healthy_backup, &any_primary, &any_backup];
        tiers.into_iter().find_map(|tier| {
            self.pick_among(pool, client, &|id, s| !tried.contains(&id) && tier(s))
        })
    }

    fn pick_among(
        &mut self,
        pool: &Pool,
        client: IpAddr,
        eligible: &dyn Fn(UpstreamId, &Upstream) -> bool,
    ) -> Option<UpstreamId> {
        match self.policy {
            BalancePolicy::RoundRobin => self.smooth_weighted(pool, eligible),
            BalancePolicy::LeastConn => self.least_conn(pool, eligible),
            BalancePolicy::IpHash => self.ip_hash(pool, client, eligible),
            BalancePolicy::RandomTwo => self.random_two(pool, eligible),
        }
    }

    /// The next eligible server in the smooth weighted sequence. With every server
    /// eligible this is exactly nginx's order (weights 5,1,1 give a a b a c a a); an
    /// ineligible server's turns are skipped. Each server appears in every period, so one
    /// period's walk finds an eligible server if there is one.
    fn smooth_weighted(
        &mut self,
        pool: &Pool,
        eligible: &dyn Fn(UpstreamId, &Upstream) -> bool,
    ) -> Option<UpstreamId> {
        let len = self.sequence.len();
        let offset = (0..len).find(|step| {
            let id = self.sequence[(self.cursor + step) % len];
            eligible(id, &pool.servers[id])
        })?;
        let position = (self.cursor + offset) % len;
        self.cursor = (position + 1) % len;
        Some(self.sequence[position])
    }

    /// Fewest active connections per unit of weight; among equals, the one picked longest
    /// ago. A walk of the ordered set: O(log n) plus the ineligible servers skipped.
    fn least_conn(
        &mut self,
        pool: &Pool,
        eligible: &dyn Fn(UpstreamId, &Upstream) -> bool,
    ) -> Option<UpstreamId> {
        let &(_, _, best) = self
            .order
            .iter()
            .find(|&&(_, _, id)| eligible(id, &pool.servers[id]))?;
        self.rekey(pool, best);
        Some(best)
    }

    /// Consistent hashing: the first eligible server clockwise from the client's hash.
    fn ip_hash(
        &mut self,
        pool: &Pool,
        client: IpAddr,
        eligible: &dyn Fn(UpstreamId, &Upstream) -> bool,
    ) -> Option<UpstreamId> {
        if self.ring.is_empty() {
            return None;
        }
        let point = hash_ip(client);
        let start = self.ring.partition_point(|&(p, _)| p < point);
        let len = self.ring.len();
        (0..len)
            .map(|offset| self.ring[(start + offset) % len].1)
            .find(|&id| eligible(id, &pool.servers[id]))
    }

    /// Power of two random choices: two distinct eligible servers at random, the less loaded
    /// (per unit of weight) wins. Draws at random first (O(1) while most servers are
    /// eligible), and falls back to ranking the eligible servers when draws keep missing.
    fn random_two(
        &mut self,
        pool: &Pool,
        eligible: &dyn Fn(UpstreamId, &Upstream) -> bool,
    ) -> Option<UpstreamId> {
        let n = pool.len() as u64;
        if n == 0 {
            return None;
        }
        let mut drawn: Option<UpstreamId> = None;
        for _ in 0..RANDOM_DRAWS {
            let id = (self.next_random() % n) as usize;
            if Some(id) == drawn || !eligible(id, &pool.servers[id]) {
                continue;
            }
            match drawn {
                None => drawn = Some(id),
                Some(a) => {
                    let b = id;
                    return Some(if less_loaded(&pool.servers[b], &pool.servers[a]) {
                        b
                    } else {
                        a
                    });
                }
            }
        }
        let count = pool
            .servers
            .iter()
            .enumerate()
            .filter(|(id, s)| eligible(*id, s))
            .count();
        if count == 0 {
            return None;
        }
        let first = (self.next_random() % count as u64) as usize;
        let second = if count > 1 {
            let r = (self.next_random() % (count as u64 - 1)) as usize;
            if r >= first { r + 1 } else { r }
        } else {
            first
        };
        let nth = |rank: usize| {
            pool.servers
                .iter()
                .enumerate()
                .filter(|(id, s)| eligible(*id, s))
                .nth(rank)
                .map(|(id, _)| id)
        };
        let (a, b) = (nth(first)?, nth(second)?);
        Some(if less_loaded(&pool.servers[b], &pool.servers[a]) {
            b
        } else {
            a
        })
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// One period of nginx's smooth weighted round robin over all servers: each step every
/// server gains its weight, the richest is picked and pays the total.
fn smooth_weighted_sequence(pool: &Pool) -> Vec<UpstreamId> {
    let total: i64 = pool
        .servers
        .iter()
        .map(|s| i64::from(s.options.weight))
        .sum();
    let mut current = vec![0i64; pool.len()];
    (0..total)
        .filter_map(|_| {
            let mut best: Option<UpstreamId> = None;
            for (id, server) in pool.servers.iter().enumerate() {
                current[id] += i64::from(server.options.weight);
                if best.is_none_or(|b| current[id] > current[b]) {
                    best = Some(id);
                }
            }
            let best = best?;
            current[best] -= total;
            Some(best)
        })
        .collect()
}

/// `a.active / a.options.weight < b.active / b.options.weight`, without division.
fn less_loaded(a: &Upstream, b: &Upstream) -> bool {
    (a.active as u128) * u128::from(b.options.weight)
        < (b.active as u128) * u128::from(a.options.weight)
}

/// The ring: `POINTS_PER_WEIGHT × weight` points per server, placed by hashing the server's
/// address and the point number, so every instance of the proxy builds the same ring.
fn build_ring(pool: &Pool) -> Vec<(u64, UpstreamId)> {
    let mut ring = Vec::new();
    for (id, server) in pool.servers.iter().enumerate() {
        let name = server.addr.to_string();
        for i in 0..POINTS_PER_WEIGHT * server.options.weight {
            let mut h = Fnv::default();
            h.write(name.as_bytes());
            h.write(b"#");
            h.write(&i.to_le_bytes());
            ring.push((mix(h.0), id));
        }
    }
    ring.sort_unstable();
    ring
}

fn hash_ip(ip: IpAddr) -> u64 {
    let mut h = Fnv::default();
    match ip {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => h.write(&v6.octets()),
    }
    mix(h.0)
}

/// FNV-1a, 64 bits: stable across processes and Rust versions (unlike `DefaultHasher`).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// splitmix64's finaliser: spreads FNV's output over the whole ring.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::PassivePolicy;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn pool(n: usize) -> Pool {
        Pool::from_addrs((0..n).map(|i| ([10, 0, 0, i as u8 + 1], 80).into()))
    }

    fn client(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    fn picks(b: &mut Balancer, pool: &Pool, n: usize) -> Vec<UpstreamId> {
        let now = Instant::now();
        (0..n)
            .map(|_| b.pick(pool, client(1), &[], now).unwrap())
            .collect()
    }

    #[test]
    fn round_robin_with_equal_weights_cycles() {
        let pool = pool(3);
        let mut b = Balancer::new(BalancePolicy::RoundRobin, &pool, 1);
        assert_eq!(picks(&mut b, &pool, 7), [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn smooth_weighted_round_robin_interleaves_5_1_1() {
        let mut pool = pool(3);
        pool.servers[0].options.weight = 5;
        let mut b = Balancer::new(BalancePolicy::RoundRobin, &pool, 1);
        assert_eq!(
            picks(&mut b, &pool, 14),
            [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]
        );
    }

    #[test]
    fn never_the_same_server_twice_for_one_client() {
        let pool = pool(3);
        for policy in [
            BalancePolicy::RoundRobin,
            BalancePolicy::LeastConn,
            BalancePolicy::IpHash,
            BalancePolicy::RandomTwo,
        ] {
            let mut b = Balancer::new(policy, &pool, 7);
            let now = Instant::now();
            let mut tried = Vec::new();
            while let Some(id) = b.pick(&pool, client(9), &tried, now) {
                assert!(!tried.contains(&id), "{policy:?} repeated {id}");
                tried.push(id);
            }
            tried.sort();
            assert_eq!(tried, [0, 1, 2], "{policy:?} must offer every server once");
        }
    }

    #[test]
    fn least_conn_prefers_fewest_per_weight_and_breaks_ties_in_turn() {
        let mut pool = pool(3);
        pool.servers[0].active = 3;
        pool.servers[1].active = 1;
        pool.servers[2].active = 2;
        let mut b = Balancer::new(BalancePolicy::LeastConn, &pool, 1);
        assert_eq!(picks(&mut b, &pool, 1), [1]);
        pool.servers[2].options.weight = 4; // 2/4 < 1/1
        b.update(&pool, 2);
        assert_eq!(picks(&mut b, &pool, 1), [2]);
        for id in 0..3 {
            pool.servers[id].active = 0;
            pool.servers[id].options.weight = 1;
            b.update(&pool, id);
        }
        assert_eq!(picks(&mut b, &pool, 4), [0, 1, 2, 0]);
        pool.servers[1].active = 1;
        b.update(&pool, 1);
        assert_eq!(picks(&mut b, &pool, 4), [2, 0, 2, 0]);
    }

    #[test]
    fn ip_hash_keeps_a_client_on_its_server() {
        let pool = pool(10);
        let mut b = Balancer::new(BalancePolicy::IpHash, &pool, 1);
        let now = Instant::now();
        for i in 0..100 {
            let first = b.pick(&pool, client(i), &[], now);
            for _ in 0..5 {
                assert_eq!(b.pick(&pool, client(i), &[], now), first);
            }
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(b.pick(&pool, v6, &[], now), b.pick(&pool, v6, &[], now));
    }

    fn assignment(b: &mut Balancer, pool: &Pool, clients: u32) -> Vec<UpstreamId> {
        let now = Instant::now();
        (0..clients)
            .map(|i| b.pick(pool, client(i * 7919), &[], now).unwrap())
            .collect()
    }

    #[test]
    fn ip_hash_moves_about_one_in_n_clients_when_a_server_leaves_or_joins() {
        const CLIENTS: u32 = 10_000;
        let mut pool10 = pool(10);
        let mut b10 = Balancer::new(BalancePolicy::IpHash, &pool10, 1);
        let before = assignment(&mut b10, &pool10, CLIENTS);
        let per_server: Vec<usize> = (0..10)
            .map(|id| before.iter().filter(|&&s| s == id).count())
            .collect();
        assert!(
            per_server.iter().all(|&n| n > 600 && n < 1400),
            "{per_server:?}"
        );

        // Server 3 leaves (down): only its own clients move.
        pool10.servers[3].options.down = true;
        let after = assignment(&mut b10, &pool10, CLIENTS);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert_eq!(moved, per_server[3]);
        let fraction = moved as f64 / f64::from(CLIENTS);
        assert!((0.06..0.14).contains(&fraction), "moved {fraction}");

        // An eleventh server joins: about 1/11 move, all of them to the new server.
        let pool10 = pool(10);
        let pool11 = pool(11);
        let mut b10 = Balancer::new(BalancePolicy::IpHash, &pool10, 1);
        let mut b11 = Balancer::new(BalancePolicy::IpHash, &pool11, 1);
        let before = assignment(&mut b10, &pool10, CLIENTS);
        let after = assignment(&mut b11, &pool11, CLIENTS);
        let moved: Vec<_> = before.iter().zip(&after).filter(|(a, b)| a != b).collect();
        assert!(moved.iter().all(|(_, b)| **b == 10));
        let fraction = moved.len() as f64 / f64::from(CLIENTS);
        assert!((0.05..0.13).contains(&fraction), "moved {fraction}");
    }

    #[test]
    fn random_two_never_picks_a_full_or_down_server_and_prefers_the_less_loaded() {
        let mut pool = pool(6);
        pool.servers[0].options.down = true;
        pool.servers[1].options.max_conns = Some(2);
        pool.servers[1].active = 2;
        pool.servers[2]
            .checks
            .record(false, crate::health::ActivePolicy { rise: 1, fall: 1 });
        pool.servers[3].active = 100;
        let mut b = Balancer::new(BalancePolicy::RandomTwo, &pool, 42);
        let got = picks(&mut b, &pool, 1000);
        assert!(
            got.iter().all(|id| [3, 4, 5].contains(id)),
            "picked a full or down server"
        );
        let heavy = got.iter().filter(|&&id| id == 3).count();
        assert!(
            heavy < 50,
            "server 3 is heavily loaded but was picked {heavy} times"
        );
    }

    #[test]
    fn backups_only_when_every_primary_is_unavailable() {
        let mut pool = pool(3);
        pool.servers[2].options.backup = true;
        let mut b = Balancer::new(BalancePolicy::RoundRobin, &pool, 1);
        assert!(picks(&mut b, &pool, 10).iter().all(|&id| id != 2));
        pool.servers[0].options.down = true;
        pool.servers[1].options.max_conns = Some(0);
        assert_eq!(picks(&mut b, &pool, 3), [2, 2, 2]);
    }

    #[test]
    fn max_conns_is_respected() {
        let mut pool = pool(2);
        pool.servers[0].options.max_conns = Some(1);
        pool.servers[0].active = 1;
        let mut b = Balancer::new(BalancePolicy::LeastConn, &pool, 1);
        assert_eq!(picks(&mut b, &pool, 3), [1, 1, 1]);
        pool.servers[1].options.max_conns = Some(0);
        assert_eq!(b.pick(&pool, client(1), &[], Instant::now()), None);
    }

    #[test]
    fn passive_marks_are_ignored_only_as_a_last_resort() {
        let mut pool = pool(3);
        pool.servers[2].options.backup = true;
        let now = Instant::now();
        let policy = PassivePolicy {
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
        };
        pool.servers[0].passive.record_failure(policy, now);
        let mut b = Balancer::new(BalancePolicy::RoundRobin, &pool, 1);
        assert_eq!(b.pick(&pool, client(1), &[], now), Some(1));
        pool.servers[1].passive.record_failure(policy, now);
        assert_eq!(
            b.pick(&pool, client(1), &[], now),
            Some(2),
            "healthy backup first"
        );
        pool.servers[2].passive.record_failure(policy, now);
        let best_effort = b.pick(&pool, client(1), &[], now);
        assert!(
            matches!(best_effort, Some(0 | 1)),
            "then the primaries, best effort"
        );
    }
}
