//! The metrics endpoint's HTTP request parser on arbitrary bytes: it never panics, a buffer of
//! `MAX_REQUEST` bytes or more always has a verdict, and a verdict given for a prefix is the
//! verdict for the whole (the event loop re-parses its growing buffer and stops at the first).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringproxy::metrics::{MAX_REQUEST, Request, parse_request, response};

fuzz_target!(|data: &[u8]| {
    let whole = parse_request(data);
    if data.len() >= MAX_REQUEST {
        assert_ne!(whole, Request::Incomplete);
    }
    if whole != Request::Incomplete {
        let _ = response(&whole, "x 1\n");
    }
    // Every prefix of a short input; of a long one, every 16th byte's and the last few.
    let len = data.len();
    let step = if len <= 512 { 1 } else { 16 };
    let prefixes = (0..len).step_by(step).chain(len.saturating_sub(8)..len);
    for n in prefixes {
        let verdict = parse_request(&data[..n]);
        if verdict != Request::Incomplete {
            assert_eq!(verdict, whole, "prefix of {n} bytes");
        }
    }
});
