//! Property test of the command line parser, the stable-toolchain companion of the `cli` fuzz
//! target (`fuzz/fuzz_targets/cli.rs`): on a few thousand generated and mutated argument
//! vectors from a fixed seed (some arguments not UTF-8), [`parse`] never panics, and a
//! configuration it accepts is rendered (what `--check` prints) to a file that parses back to
//! the same configuration.
//!
//! Vectors are generated from the schema: `--listen`, `--upstream` with server options, and
//! random setting flags of [`RouteSettings`] and [`Global`] with values mostly of the kind the
//! flag takes; then arguments are removed, repeated, moved, replaced, joined with `=` or
//! mutated byte by byte.

use super::*;
use crate::file;
use crate::test_rng::Rng;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

/// Flag values of every kind, in range and out, and a few odd ones.
const VALUES: &[&str] = &[
    "0",
    "1",
    "3",
    "1024",
    "65535",
    "70000",
    "1000000",
    "16777216",
    "16777217",
    "+5",
    "-1",
    "1_000",
    "99999999999999999999",
    "16KiB",
    "16k",
    "1m",
    "256MiB",
    "257MiB",
    "64k",
    "16 KiB",
    "500ms",
    "5s",
    " 5s",
    "2m",
    "1h",
    "30d",
    "31d",
    "0s",
    "32767s",
    "auto",
    "many",
    "true",
    "false",
    "text",
    "json",
    "round-robin",
    "least-conn",
    "ip-hash",
    "random-two",
    "off",
    "v1",
    "v2",
    "v3",
    "10/s",
    "30/m",
    "0/s",
    "127.0.0.1:9100",
    "[::1]:0",
    "[fe80::1%2]:80",
    "localhost:80",
    "10.0.0.0/8",
    "::1,192.0.2.7",
    "10.0.0.0/33",
    "10.0.0.1/8, ::1",
    "-",
    "",
    "/tmp/a b.log",
    "odd \"q\" \\ \u{e9}",
    "line\nbreak",
];

/// Upstream addresses, mostly good, and server options, good and bad.
const ADDRS: &[&str] = &[
    "127.0.0.1:80",
    "[::1]:80",
    "b.internal:1",
    "a_b-c.d:65535",
    "h:0",
    "::1:80",
    "",
];
const OPTIONS: &[&str] = &[
    ",weight=3",
    ",weight=1000",
    ",max-conns=10",
    ",max_conns=16777216",
    ",backup",
    ",down",
    ",send-proxy=v2",
    ",send_proxy=off",
];
const BAD_OPTIONS: &[&str] = &[
    ",weight=0",
    ",weight",
    ",max-conns=0",
    ",backup=true",
    ",send-proxy",
    ",bogus=1",
    ",",
];
const OTHERS: &[&str] = &[
    "-v",
    "-vv",
    "-q",
    "-vq",
    "--check",
    "-h",
    "--help",
    "-V",
    "--version",
    "-c",
    "--config",
    "-l",
    "-u",
    "--",
    "-x",
    "--bogus",
];

/// For every setting flag, the values it accepts.
fn accepted() -> Vec<(&'static Field, Vec<&'static str>)> {
    let route = RouteSettings::fields().iter().map(|f| (f, true));
    let global = Global::fields().iter().map(|f| (f, false));
    route
        .chain(global)
        .map(|(field, is_route)| {
            let takes = |s: &&str| {
                let set = if is_route {
                    RouteSettings::default().set_flag(field.key, s)
                } else {
                    Global::default().set_flag(field.key, s)
                };
                matches!(set, Some(Ok(())))
            };
            (field, VALUES.iter().copied().filter(takes).collect())
        })
        .collect()
}

/// `--upstream`'s value: an address, mostly good, and a few options.
fn upstream(rng: &mut Rng, i: usize) -> String {
    let mut s = if rng.one_in(15) {
        rng.pick(ADDRS).to_string()
    } else {
        format!("10.0.0.{i}:80")
    };
    for _ in 0..rng.below(3) {
        let options = if rng.one_in(15) { BAD_OPTIONS } else { OPTIONS };
        s.push_str(rng.pick(options));
    }
    s
}

/// A command line from the schema: `--listen`, one to three `--upstream`, a few settings.
fn generated(rng: &mut Rng, flags: &[(&'static Field, Vec<&'static str>)]) -> Vec<Vec<u8>> {
    // Each flag with its value, in any order: pico-args finds them wherever they are.
    let mut groups: Vec<Vec<String>> = Vec::new();
    let listen = rng.pick(&["-l", "--listen"]);
    let addr = if rng.one_in(15) {
        rng.pick(VALUES)
    } else {
        rng.pick(&["127.0.0.1:8080", "[::1]:0"])
    };
    groups.push(vec![listen.to_string(), addr.to_string()]);
    for i in 0..1 + rng.below(3) {
        let flag = rng.pick(&["-u", "--upstream"]);
        groups.push(vec![flag.to_string(), upstream(rng, i)]);
    }
    for _ in 0..rng.below(5) {
        let (field, good) = &flags[rng.below(flags.len())];
        if field.switch {
            groups.push(vec![field.flag.to_string()]);
            continue;
        }
        let value = if good.is_empty() || rng.one_in(15) {
            rng.pick(VALUES)
        } else {
            rng.pick(good)
        };
        groups.push(vec![field.flag.to_string(), value.to_string()]);
    }
    if rng.one_in(4) {
        groups.push(vec![rng.pick(&["-v", "-vv", "-q", "--check"]).to_string()]);
    }
    for _ in 0..rng.below(3) {
        let (i, j) = (rng.below(groups.len()), rng.below(groups.len()));
        groups.swap(i, j);
    }
    groups
        .into_iter()
        .flatten()
        .map(String::into_bytes)
        .collect()
}

/// `args` with a few arguments removed, repeated, replaced or mutated.
fn mutated(rng: &mut Rng, mut args: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(args.len() + 1);
        match rng.below(6) {
            0 if i < args.len() => drop(args.remove(i)),
            1 if i < args.len() => args.insert(rng.below(args.len()), args[i].clone()),
            // `--flag=value`, the same as `--flag value` for a flag that takes one.
            2 if i + 1 < args.len() => {
                let next = args.remove(i + 1);
                args[i].push(b'=');
                args[i].extend(next);
            }
            3 if i < args.len() => {
                let times = 1 + rng.below(3);
                rng.mutate(&mut args[i], b"-=,:/[]. \xff\xc3", times);
            }
            4 => args.insert(i, rng.pick(OTHERS).as_bytes().to_vec()),
            _ => args.insert(i, rng.pick(VALUES).as_bytes().to_vec()),
        }
    }
    args
}

/// Parses `args` and checks what came out; true when it gave a configuration.
fn check(args: Vec<Vec<u8>>) -> bool {
    let shown = format!(
        "{:?}",
        args.iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
    );
    let command = parse(args.into_iter().map(OsString::from_vec).collect());
    let config = match command {
        Ok(Command::Run {
            source: Source::Flags(config),
            ..
        }) => config.into_inner(),
        Ok(_) => return false,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "{shown}");
            return false;
        }
    };
    assert_eq!(config.routes.len(), 1, "{shown}");
    let rendered = file::render(&config);
    let again = file::parse(&rendered, Path::new("check.toml"))
        .unwrap_or_else(|e| panic!("--check output does not parse: {e}\n{shown}\n{rendered}"));
    assert_eq!(again.into_inner(), config, "{shown}\n{rendered}");
    true
}

#[test]
fn property_generated_and_mutated_command_lines() {
    let mut rng = Rng::new(0x5eed_c11a_0000_0001);
    let flags = accepted();
    let (mut generated_ok, mut mutated_ok) = (0, 0);
    const ROUNDS: usize = 2000;
    for _ in 0..ROUNDS {
        let args = generated(&mut rng, &flags);
        generated_ok += usize::from(check(args.clone()));
        mutated_ok += usize::from(check(mutated(&mut rng, args)));
    }
    // Most generated command lines are valid, so the round trip is exercised, not only the
    // errors (with this seed 1191 of them; most mutations break them: 38 still parse).
    assert!(
        generated_ok > ROUNDS / 2,
        "{generated_ok} of {ROUNDS} parsed"
    );
    assert!(mutated_ok > ROUNDS / 100, "{mutated_ok} of {ROUNDS} parsed");
}

#[test]
fn property_random_arguments() {
    let mut rng = Rng::new(0x5eed_c11a_0000_0002);
    let pieces: Vec<&str> = [VALUES, OTHERS, OPTIONS, BAD_OPTIONS].concat();
    for _ in 0..2000 {
        let args = (0..rng.below(8))
            .map(|_| match rng.below(3) {
                0 => (0..rng.below(12)).map(|_| rng.next() as u8).collect(),
                _ => rng.pick(&pieces).as_bytes().to_vec(),
            })
            .collect();
        check(args);
    }
}
