//! Mapping between mio `Token`s and what they stand for.
//!
//! A pair sits in the slab once and owns two tokens: `key << 1 | side`. The top of the token
//! space is reserved for the fixed sources (signals, the stop waker, listeners), so every
//! valid slab key stays below [`MAX_PAIR_KEY`] and decoding never confuses the two ranges.

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
    /// One side of the pair at slab key `key`.
    Pair { key: usize, side: Side },
}

/// Tokens reserved at the top of the space for fixed sources.
const RESERVED: usize = 1024;
/// Most listeners one loop can hold.
pub const MAX_LISTENERS: usize = RESERVED - 2;
/// Largest slab key whose tokens stay clear of the reserved range.
pub const MAX_PAIR_KEY: usize = (usize::MAX - RESERVED) >> 1;

/// Token of the signal source.
pub const SIGNAL: Token = Token(usize::MAX);
/// Token of the stop waker.
pub const WAKER: Token = Token(usize::MAX - 1);

/// Token of listener `i` (`i < MAX_LISTENERS`).
pub fn listener(i: usize) -> Token {
    debug_assert!(i < MAX_LISTENERS);
    Token(usize::MAX - 2 - i)
}

/// Token of one side of the pair at `key` (`key <= MAX_PAIR_KEY`).
pub fn pair(key: usize, side: Side) -> Token {
    debug_assert!(key <= MAX_PAIR_KEY);
    Token(key << 1 | side as usize)
}

/// Decodes a token produced by this module.
pub fn decode(token: Token) -> Target {
    match token.0 {
        t if t == SIGNAL.0 => Target::Signal,
        t if t == WAKER.0 => Target::Waker,
        t if t > usize::MAX - RESERVED => Target::Listener(usize::MAX - 2 - t),
        t => Target::Pair {
            key: t >> 1,
            side: if t & 1 == 0 {
                Side::Client
            } else {
                Side::Upstream
            },
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
    fn fixed_tokens_round_trip() {
        assert_eq!(decode(SIGNAL), Target::Signal);
        assert_eq!(decode(WAKER), Target::Waker);
        for i in [0, 1, MAX_LISTENERS - 1] {
            assert_eq!(decode(listener(i)), Target::Listener(i));
        }
    }

    #[test]
    fn largest_pair_key_stays_below_reserved_range() {
        let top = pair(MAX_PAIR_KEY, Side::Upstream).0;
        assert!(top <= usize::MAX - RESERVED);
        assert!(top < listener(MAX_LISTENERS - 1).0);
    }
}
