//! The per-client table of one route in one worker: open connections and the connection
//! rate of each client key, bounded in size.
//!
//! The table holds at most `capacity` clients. A new client takes a free slot, else the slot
//! of an idle client (no open connection, its rate bucket full again) found by a clock sweep
//! from where the last one stopped, so idle entries leave in turn; when every slot is live,
//! the new client is refused (fail closed) rather than let through. Storage is reserved once,
//! on first use, so admitting or refusing never allocates.

use super::{Rate, TokenBucket};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// What identifies a client for its limits: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 address (also when IPv4-mapped in IPv6).
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => ClientKey::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

/// Why a client was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It has `max_conns_per_ip` connections open.
    TooMany,
    /// It connected faster than `conn_rate_per_ip`.
    TooFast,
    /// The table is full of live clients.
    TableFull,
}

#[derive(Debug, Clone)]
struct Slot {
    key: ClientKey,
    conns: u32,
    bucket: Option<TokenBucket>,
}

impl Slot {
    fn is_idle(&mut self, now: Instant) -> bool {
        self.conns == 0 && self.bucket.as_mut().is_none_or(|b| b.is_full(now))
    }
}

/// Open connections and rate buckets of a route's clients, at most `capacity` of them.
#[derive(Debug)]
pub struct ClientTable {
    capacity: usize,
    index: HashMap<ClientKey, usize>,
    slots: Vec<Slot>,
    /// Where the eviction sweep goes on from.
    hand: usize,
}

impl ClientTable {
    /// An empty table for at most `capacity` clients (storage is reserved on first use).
    pub fn new(capacity: usize) -> ClientTable {
        ClientTable {
            capacity: capacity.max(1),
            index: HashMap::new(),
            slots: Vec::new(),
            hand: 0,
        }
    }

    /// Clients in the table.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no client is in the table.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Admits one more connection of `key` at `now` within `max_conns` and `rate` (either
    /// may be absent), counting it; or says why not, counting nothing.
    pub fn admit(
        &mut self,
        key: ClientKey,
        max_conns: Option<u32>,
        rate: Option<Rate>,
        now: Instant,
    ) -> Result<(), Refusal> {
        let at = match self.index.get(&key) {
            Some(&at) => at,
            None => self.insert(key, rate, now)?,
        };
        let slot = &mut self.slots[at];
        if max_conns.is_some_and(|max| slot.conns >= max) {
            return Err(Refusal::TooMany);
        }
        if let Some(bucket) = slot.bucket.as_mut()
            && !bucket.take(1, now)
        {
            return Err(Refusal::TooFast);
        }
        slot.conns += 1;
        Ok(())
    }

    /// One connection of `key` ended.
    pub fn release(&mut self, key: ClientKey) {
        if let Some(&at) = self.index.get(&key) {
            let slot = &mut self.slots[at];
            slot.conns = slot.conns.saturating_sub(1);
        }
    }

    /// A slot for a new client: a fresh one while there is room, else an idle one.
    fn insert(
        &mut self,
        key: ClientKey,
        rate: Option<Rate>,
        now: Instant,
    ) -> Result<usize, Refusal> {
        if self.slots.capacity() == 0 {
            self.slots.reserve_exact(self.capacity);
            self.index.reserve(self.capacity);
        }
        let slot = Slot {
            key,
            conns: 0,
            bucket: rate.map(|r| r.bucket(now)),
        };
        let at = if self.slots.len() < self.capacity {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            let at = self.idle_slot(now).ok_or(Refusal::TableFull)?;
            self.index.remove(&self.slots[at].key);
            self.slots[at] = slot;
            at
        };
        self.index.insert(key, at);
        Ok(at)
    }

    /// The next idle slot from the hand on, if any (one full turn at most).
    fn idle_slot(&mut self, now: Instant) -> Option<usize> {
        let n = self.slots.len();
        for step in 0..n {
            let at = (self.hand + step) % n;
            if self.slots[at].is_idle(now) {
                self.hand = (at + 1) % n;
                return Some(at);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(i: u32) -> ClientKey {
        ClientKey::V4(i)
    }

    #[test]
    fn keys_are_ipv4_addresses_and_ipv6_slash_64s() {
        let k = |s: &str| ClientKey::from(s.parse::<IpAddr>().unwrap());
        assert_eq!(k("10.0.0.1"), k("::ffff:10.0.0.1"));
        assert_ne!(k("10.0.0.1"), k("10.0.0.2"));
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"), "one /64");
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
    }

    #[test]
    fn connections_per_client_are_counted_and_released() {
        let now = Instant::now();
        let mut t = ClientTable::new(8);
        for _ in 0..20 {
            assert_eq!(t.admit(key(1), Some(20), None, now), Ok(()));
        }
        assert_eq!(t.admit(key(1), Some(20), None, now), Err(Refusal::TooMany));
        assert_eq!(
            t.admit(key(2), Some(20), None, now),
            Ok(()),
            "another client is served"
        );
        t.release(key(1));
        assert_eq!(t.admit(key(1), Some(20), None, now), Ok(()));
    }

    #[test]
    fn the_rate_admits_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut t = ClientTable::new(8);
        let rate = Rate {
            count: 10,
            per: Duration::from_secs(1),
        };
        for _ in 0..10 {
            assert_eq!(t.admit(key(1), None, Some(rate), t0), Ok(()));
        }
        assert_eq!(t.admit(key(1), None, Some(rate), t0), Err(Refusal::TooFast));
        let later = t0 + Duration::from_millis(100);
        assert_eq!(t.admit(key(1), None, Some(rate), later), Ok(()));
    }

    #[test]
    fn a_full_table_evicts_idle_clients_and_refuses_when_all_are_live() {
        let now = Instant::now();
        let mut t = ClientTable::new(4);
        for i in 0..4 {
            t.admit(key(i), None, None, now).unwrap();
        }
        assert_eq!(
            t.admit(key(9), None, None, now),
            Err(Refusal::TableFull),
            "fail closed"
        );
        t.release(key(2));
        assert_eq!(
            t.admit(key(9), None, None, now),
            Ok(()),
            "the idle one is evicted"
        );
        assert_eq!(t.len(), 4, "the table never grows past its bound");
        t.release(key(0));
        t.release(key(9));
        for i in 100..10_000 {
            let _ = t.admit(key(i), None, None, now);
            t.release(key(i));
        }
        assert_eq!(t.len(), 4, "a flood of addresses cannot grow it");
        assert_eq!(t.slots.capacity(), 4, "storage reserved once");
    }

    #[test]
    fn a_client_whose_rate_bucket_refills_becomes_idle() {
        let t0 = Instant::now();
        let mut t = ClientTable::new(1);
        let rate = Rate {
            count: 1,
            per: Duration::from_secs(1),
        };
        t.admit(key(1), None, Some(rate), t0).unwrap();
        t.release(key(1));
        assert_eq!(
            t.admit(key(2), None, Some(rate), t0),
            Err(Refusal::TableFull),
            "still counting"
        );
        let later = t0 + Duration::from_secs(1);
        assert_eq!(t.admit(key(2), None, Some(rate), later), Ok(()));
    }
}
