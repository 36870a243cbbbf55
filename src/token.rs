//! Mapping between mio `Token`s and what they stand for.
//!
//! The low two bits say what kind of source a token names, the rest is its index: a pair sits
//! in the slab once and owns two tokens (`key << 2 | side`); a health-check probe is
//! `server << 2 | 2`; fixed sources (signals, the stop waker, listeners) are `i << 2 | 3`.
//! Decoding is exact for every index up to [`MAX_INDEX`].

use mio::Token;

/// Which end of a pair a socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The accepted client connection.
    Client = 0,
    /// The connection the proxy opened to an upstream server.
    Upstream = 1,
}

impl Side {
    /// The other end of the pair.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Upstream,
            Side::Upstream => Side::Client,
        }
    }
}

/// What an event's token refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The signal source (SIGINT/SIGTERM).
    Signal,
    /// The waker that asks the loop to stop.
    Waker,
    /// Listener number `i`.
    Listener(usize),
    /// The active health-check probe of server `i`.
    Check(usize),
    /// One side of the pair at slab key `key`.
    Pair { key: usize, side: Side },
}

const KIND_BITS: usize = 2;
const CHECK: usize = 2;
const FIXED: usize = 3;

/// Largest index (slab key, server or listener number) a token can carry.
pub const MAX_INDEX: usize = usize::MAX >> KIND_BITS;
/// Largest slab key a pair may have.
pub const MAX_PAIR_KEY: usize = MAX_INDEX;

/// Token of the signal source.
pub const SIGNAL: Token = Token(FIXED);
/// Token of the stop waker.
pub const WAKER: Token = Token(1 << KIND_BITS | FIXED);

/// Token of listener `i`.
pub fn listener(i: usize) -> Token {
    debug_assert!(i <= MAX_INDEX - 2);
    Token((i + 2) << KIND_BITS | FIXED)
}

/// Token of the health-check probe of server `i`.
pub fn check(i: usize) -> Token {
    debug_assert!(i <= MAX_INDEX);
    Token(i << KIND_BITS | CHECK)
}

/// Token of one side of the pair at `key` (`key <= MAX_PAIR_KEY`).
pub fn pair(key: usize, side: Side) -> Token {
    debug_assert!(key <= MAX_PAIR_KEY);
    Token(key << KIND_BITS | side as usize)
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
        CHECK => Target::Check(index),
        _ => match index {
            0 => Target::Signal,
            1 => Target::Waker,
            i => Target::Listener(i - 2),
        },
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
    fn fixed_and_check_tokens_round_trip() {
        assert_eq!(decode(SIGNAL), Target::Signal);
        assert_eq!(decode(WAKER), Target::Waker);
        for i in [0, 1, 1000, MAX_INDEX - 2] {
            assert_eq!(decode(listener(i)), Target::Listener(i));
        }
        for i in [0, 5, MAX_INDEX] {
            assert_eq!(decode(check(i)), Target::Check(i));
        }
    }

    #[test]
    fn kinds_never_collide() {
        let mut tokens = vec![SIGNAL, WAKER, listener(0), check(0), check(1)];
        tokens.extend(
            [0, 1, 2]
                .iter()
                .flat_map(|&k| [pair(k, Side::Client), pair(k, Side::Upstream)]),
        );
        let mut unique = tokens.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), tokens.len());
    }
}
