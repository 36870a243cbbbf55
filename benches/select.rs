//! Micro-benchmark: cost of one balancer pick per policy for pools of 2, 16 and 256
//! servers. Run with `cargo bench --bench select`. Prints nanoseconds per pick (median of
//! several runs) and the ratio to the 2-server pool, which should stay near 1 for ip-hash
//! and grow only mildly for round-robin and least-conn.

use ringproxy::balance::Balancer;
use ringproxy::settings::BalancePolicy;
use ringproxy::settings::kinds::Named;
use ringproxy::upstream::Pool;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

const PICKS: u32 = 200_000;
const RUNS: usize = 7;

fn ns_per_pick(policy: BalancePolicy, servers: usize) -> f64 {
    let mut pool = Pool::from_addrs((0..servers).map(|i| {
        let i = i as u32;
        (Ipv4Addr::from(0x0a00_0000 + i), 80).into()
    }));
    for (i, server) in pool.servers.iter_mut().enumerate() {
        server.options.weight = 1 + (i % 3) as u32;
        server.active = i % 7;
    }
    let mut balancer = Balancer::new(policy, &pool, 42);
    let now = Instant::now();
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for i in 0..PICKS {
                let client = IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)));
                black_box(balancer.pick(black_box(&pool), client, &[], now));
            }
            start.elapsed().as_nanos() as f64 / f64::from(PICKS)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[RUNS / 2]
}

fn main() {
    println!("| policy | 2 servers | 16 servers | 256 servers | 256 vs 2 |");
    println!("|---|---|---|---|---|");
    for policy in [
        BalancePolicy::RoundRobin,
        BalancePolicy::LeastConn,
        BalancePolicy::IpHash,
        BalancePolicy::RandomTwo,
    ] {
        let t: Vec<f64> = [2, 16, 256].map(|n| ns_per_pick(policy, n)).to_vec();
        println!(
            "| {} | {:.0} ns | {:.0} ns | {:.0} ns | {:.1}× |",
            policy.name(),
            t[0],
            t[1],
            t[2],
            t[2] / t[0]
        );
    }
}
