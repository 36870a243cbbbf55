//! The PROXY protocol parser on arbitrary bytes: it never panics, a verdict never changes
//! once given as more bytes arrive, and a header it accepts is never longer than allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringproxy::proxy_protocol::{Parsed, V1_MAX, V2_MAX, parse};

fuzz_target!(|data: &[u8]| {
    let mut verdict = None;
    for n in 0..=data.len().min(V2_MAX + 64) {
        let result = parse(&data[..n]);
        if let Ok(Parsed::Done { len, .. }) = &result {
            assert!(*len <= n && *len <= V2_MAX.max(V1_MAX));
        }
        match (&verdict, &result) {
            (None, Ok(Parsed::Incomplete)) => {}
            (None, _) => verdict = Some(result),
            (Some(first), now) => assert_eq!(first, now),
        }
    }
});
