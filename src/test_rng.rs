//! A seeded xorshift64* generator and byte mutations for the parsers' property tests: no
//! dependency, and the same inputs on every run, so a failure reproduces with `cargo test`.

/// Xorshift64*: small, fast, and repeatable from its seed.
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (any value; 0 is moved off the fixed point).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` above 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number in `0..n` (`n` above 0), for callers counting in `u64`.
    pub fn below_u64(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One of `items`.
    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    /// Applies `times` random edits to `bytes`: a byte replaced (by one of `interesting` or
    /// any), a bit flipped, a byte removed or inserted, a span repeated, or the end cut off.
    pub fn mutate(&mut self, bytes: &mut Vec<u8>, interesting: &[u8], times: usize) {
        for _ in 0..times {
            let i = self.below(bytes.len() + 1);
            let byte = if self.one_in(2) {
                interesting[self.below(interesting.len())]
            } else {
                self.next() as u8
            };
            match self.below(7) {
                0 if i < bytes.len() => bytes[i] = byte,
                1 if i < bytes.len() => bytes[i] ^= 1 << self.below(8),
                2 if i < bytes.len() => drop(bytes.remove(i)),
                3 => {
                    let end = (i + 1 + self.below(16)).min(bytes.len());
                    let span = bytes[i..end].to_vec();
                    bytes.splice(i..i, span);
                }
                4 if self.one_in(4) => bytes.truncate(i),
                _ => bytes.insert(i, byte),
            }
        }
    }
}
