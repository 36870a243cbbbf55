//! The admin API's request reading and routing on arbitrary bytes: `admin::request::parse`
//! never panics and its verdict for a prefix is the verdict for the whole (the admin thread
//! re-parses its growing buffer and stops at the first); a complete request always names an
//! endpoint or a refusal with a 4xx status, a changing endpoint only for POST; the path,
//! query and state-body parsers never panic on the request's parts either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringproxy::admin::endpoint::{endpoint, filter, state_body};
use ringproxy::admin::request::{MAX_BODY, Method, Parse, parse};
use ringproxy::metrics::MAX_REQUEST;

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if data.len() >= MAX_REQUEST + MAX_BODY {
        assert_ne!(whole, Parse::Incomplete);
    }
    let len = data.len();
    let step = if len <= 512 { 1 } else { 16 };
    for n in (0..len).step_by(step).chain(len.saturating_sub(8)..len) {
        let verdict = parse(&data[..n]);
        if verdict != Parse::Incomplete {
            assert_eq!(verdict, whole, "prefix of {n} bytes");
        }
    }
    if let Parse::Done(request) = whole {
        match endpoint(request.method, &request.target, &request.body) {
            Ok(e) => assert_eq!(e.mutates(), request.method == Method::Post),
            Err(refusal) => assert!((400..500).contains(&refusal.status)),
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = filter(&text);
    let _ = state_body(data);
});
