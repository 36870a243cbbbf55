//! Sizes, durations and the other kinds of setting values on arbitrary text (the first byte
//! picks the kind): parsing never panics, a value that parses is in range, and it prints (as a
//! flag with `show`, as TOML with `toml`) to text that parses back to the same value. The text
//! is also read as a TOML literal (`v = TEXT`) and as a TOML string, as the file reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringproxy::limits::RateKind;
use ringproxy::settings::kinds::{
    Addr, Choice, Cidr, Dur, DurBetween, HostPort, List, Optional, Size, Switch, Text, Whole,
    Workers, duration_str, parse_duration, parse_size, quote, size_str,
};
use ringproxy::settings::{BalancePolicy, Kind, LogFormat};
use std::fmt::Debug;
use std::time::Duration;
use toml::de::{DeTable, DeValue};

/// Calls `f` with the TOML value `literal` (as written after `v = `), if it is one.
fn with_toml(literal: &str, f: impl FnOnce(&DeValue<'_>)) {
    let doc = format!("v = {literal}");
    if let Ok(table) = DeTable::parse(&doc)
        && let Some(value) = table.get_ref().get("v")
    {
        f(value.get_ref());
    }
}

/// `v`, just parsed by `kind`, is in range and prints to text that parses back to it.
fn prints_back<K: Kind>(kind: &K, v: &K::Value)
where
    K::Value: PartialEq + Debug,
{
    assert!(kind.check(v), "{v:?} parsed but is out of range");
    let shown = kind.show(v);
    if !(kind.is_list() && shown == "none") {
        assert_eq!(
            kind.parse_flag(&shown).as_ref(),
            Some(v),
            "shown as {shown:?}"
        );
    }
    let literal = kind.toml(v).expect("a parsed value has a TOML literal");
    let mut back = None;
    with_toml(&literal, |value| back = Some(kind.parse_toml(value)));
    assert_eq!(back.flatten().as_ref(), Some(v), "written as {literal}");
}

/// Every way `s` is read by `kind`; `strings_as_flags` when a TOML string reads as the flag.
fn round_trip<K: Kind>(kind: &K, s: &str, strings_as_flags: bool)
where
    K::Value: PartialEq + Debug,
{
    let flag = kind.parse_flag(s);
    if let Some(v) = &flag {
        prints_back(kind, v);
    }
    with_toml(s, |value| {
        if let Some(v) = kind.parse_toml(value) {
            prints_back(kind, &v);
        }
    });
    with_toml(&quote(s), |value| {
        let v = kind.parse_toml(value);
        if strings_as_flags {
            assert_eq!(v, flag, "the TOML string {s:?} reads unlike the flag");
        }
        if let Some(v) = v {
            prints_back(kind, &v);
        }
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let s = String::from_utf8_lossy(rest);
    let s = s.as_ref();
    match which % 20 {
        0 => {
            if let Some(n) = parse_size(s) {
                assert_eq!(parse_size(&size_str(n)), Some(n), "{s:?}");
            }
        }
        1 => {
            if let Some(d) = parse_duration(s) {
                assert!(!d.is_zero() && d <= Duration::from_secs(30 * 86_400));
                assert_eq!(parse_duration(&duration_str(d)), Some(d), "{s:?}");
            }
        }
        2 => round_trip(&Size::new(1, 256 << 20), s, true),
        3 => round_trip(&Size::new(64 << 10, 1 << 40), s, true),
        4 => round_trip(&Dur, s, true),
        5 => {
            let keepalive = DurBetween::new(Duration::from_secs(1), Duration::from_secs(32767));
            round_trip(&keepalive, s, true)
        }
        6 => round_trip(&Whole::<u32>::new(1, 65535), s, false),
        7 => round_trip(&Whole::<u32>::new(0, 1_000_000), s, false),
        8 => round_trip(&Whole::<usize>::new(1, 1 << 24), s, false),
        // TOML integers are `i64`: a wider range would print values no file can hold.
        9 => round_trip(&Whole::<u64>::new(0, i64::MAX as u64), s, false),
        10 => round_trip(&Cidr, s, true),
        11 => round_trip(&List(Cidr), s, false),
        12 => round_trip(&RateKind, s, true),
        13 => round_trip(&Workers, s, true),
        14 => round_trip(&Optional(Size::new(1, 1 << 40), "unlimited"), s, true),
        15 => round_trip(&Addr, s, true),
        16 => round_trip(&HostPort, s, true),
        17 => round_trip(&Text("text"), s, true),
        18 => round_trip(&Switch, s, false),
        19 if which < 128 => round_trip(&Choice::<BalancePolicy>::new(), s, true),
        _ => round_trip(&Choice::<LogFormat>::new(), s, true),
    }
});
