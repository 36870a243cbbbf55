//! The ClientHello reader on arbitrary bytes: it never panics; fed the input a prefix at a
//! time, its first verdict (not TLS, a hello, an error) never changes as more bytes arrive,
//! and a hello found incrementally is the one a fresh reader finds in the same prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringproxy::client_hello::{HelloScan, Scanned};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the limit, so small limits are explored too.
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let max = 64 + usize::from(pick) * 128;
    let mut scanner = HelloScan::default();
    let mut verdict = None;
    for n in 0..=data.len() {
        let got = match &verdict {
            None => scanner.advance(&data[..n], max),
            Some(_) => HelloScan::default().advance(&data[..n], max),
        };
        match (&verdict, got) {
            (None, Ok(Scanned::Incomplete)) => {}
            (None, got) => {
                let fresh = HelloScan::default().advance(&data[..n], max);
                assert_eq!(fresh, got, "incremental and whole agree at {n}");
                verdict = Some(got);
            }
            // Later bytes never change a hello or "not TLS" found in a prefix.
            (Some(Ok(first @ (Scanned::Done(_) | Scanned::NotTls))), now) => {
                assert_eq!(Ok(first.clone()), now, "verdict changed at {n}")
            }
            (Some(_), _) => {}
        }
    }
});
