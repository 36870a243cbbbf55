//! Mapping between mio `Token`s and what they stand for.
//!
//! The low three bits say what kind of source a token names, the rest is its index: a pair
//! sits in the slab once and owns two tokens (`key << 3 | side`); a listener, a health-check
//! probe, the metrics listener and its connections and the control waker
//! each have a kind of their own. Decoding is exact for every index up to [`MAX_INDEX`].

use crate::pair::Side;
use mio::Token;

/// What an event's token refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One side of the pair at slab key `key`.
    Pair {
        /// The pair's slab key.
        key: usize,
        /// Which of its sockets.
        side: Side,
    },
    /// The listener at slab key `key`.
    Listener(usize),
    /// The health-check probe at slab key `key`.
    Probe(usize),
    /// The metrics listener.
    MetricsListener,
    /// The metrics connection at slab key `key`.
    MetricsConn(usize),
    /// The waker through which other threads send commands.
    Control,
}

const KIND_BITS: usize = 3;
const LISTENER: usize = 2;
const PROBE: usize = 3;
const METRICS_LISTENER: usize = 4;
const METRICS_CONN: usize = 5;
const CONTROL_KIND: usize = 7;

/// Largest index (slab key, listener, route) a token can carry.
pub const MAX_INDEX: usize = usize::MAX >> KIND_BITS;
/// Largest slab key a pair may have.
pub const MAX_PAIR_KEY: usize = MAX_INDEX;

/// Token of the control waker.
pub const CONTROL: Token = Token(CONTROL_KIND);
/// Token of the metrics listener.
pub const METRICS: Token = Token(METRICS_LISTENER);

/// Token of one side of the pair at `key`.
pub fn pair(key: usize, side: Side) -> Token {
    debug_assert!(key <= MAX_PAIR_KEY);
    Token(key << KIND_BITS | side as usize)
}

/// Token of the listener at slab key `key`.
pub fn listener(key: usize) -> Token {
    Token(key << KIND_BITS | LISTENER)
}

/// Token of the health-check probe at slab key `key`.
pub fn probe(key: usize) -> Token {
    Token(key << KIND_BITS | PROBE)
}

/// Token of the metrics connection at slab key `key`.
pub fn metrics_conn(key: usize) -> Token {
    Token(key << KIND_BITS | METRICS_CONN)
}

/// Decodes a token produced by this module.
pub fn decode(token: Token) -> Target {
    let index = token.0 >> KIND_BITS;
    match token.0 & ((1 << KIND_BITS) - 1) {
        0 => Target::Pair {
            key: index,
            side: Side::Client,
        },
        1 => Target::Pair {
            key: index,
            side: Side::Upstream,
        },
        LISTENER => Target::Listener(index),
        PROBE => Target::Probe(index),
        METRICS_LISTENER => Target::MetricsListener,
        METRICS_CONN => Target::MetricsConn(index),
        _ => Target::Control,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_tokens_round_trip() {
        for key in [0, 1, 2, 77, 1 << 20, MAX_PAIR_KEY] {
            for side in [Side::Client, Side::Upstream] {
                assert_eq!(decode(pair(key, side)), Target::Pair { key, side });
            }
        }
    }

    #[test]
    fn other_tokens_round_trip() {
        assert_eq!(decode(CONTROL), Target::Control);
        assert_eq!(decode(METRICS), Target::MetricsListener);
        for i in [0, 1, 1000, MAX_INDEX] {
            assert_eq!(decode(listener(i)), Target::Listener(i));
            assert_eq!(decode(metrics_conn(i)), Target::MetricsConn(i));
        }
        for key in [0, 5, MAX_INDEX] {
            assert_eq!(decode(probe(key)), Target::Probe(key));
        }
    }

    #[test]
    fn kinds_never_collide() {
        let mut tokens = vec![CONTROL, METRICS, listener(0), probe(0), probe(1)];
        tokens.extend((0..3).flat_map(|k| {
            [
                pair(k, Side::Client),
                pair(k, Side::Upstream),
                metrics_conn(k),
            ]
        }));
        let mut unique = tokens.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), tokens.len());
    }
}
