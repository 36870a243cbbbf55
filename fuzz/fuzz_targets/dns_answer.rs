//! The DNS answer reader on arbitrary bytes (what a resolver, or anyone spoofing one, may
//! send): it never panics, and an answer it accepts is one to the query asked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringproxy::dns::message::{Answer, Kind, id_of, parse};

fuzz_target!(|data: &[u8]| {
    for kind in [Kind::A, Kind::Aaaa, Kind::Srv] {
        let id = id_of(data).unwrap_or(0);
        match parse(data, id, "web.test", kind) {
            Answer::Addrs { addrs, .. } => assert!(addrs.windows(2).all(|w| w[0] < w[1])),
            Answer::Srv { records, .. } => assert!(records.windows(2).all(|w| w[0] < w[1])),
            Answer::NxDomain { .. } | Answer::Failure(_) => {}
        }
    }
});
