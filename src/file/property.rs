//! Property test of the configuration file parser, the stable-toolchain companion of the
//! `config` fuzz target (`fuzz/fuzz_targets/config.rs`): on a few thousand generated and
//! mutated files from a fixed seed, [`parse`] never panics, an error names the file and a line
//! within it, and a configuration that parses renders (what `--check` prints) to a file that
//! parses back to the same configuration and renders the same again.
//!
//! Files are generated from the schema (random keys of [`Global`], [`RouteSettings`] and
//! [`ServerOptions`] with values mostly of the kind the key takes) and mutated by lines (keys
//! and tables added, removed, repeated, moved, values swapped) and by bytes; the example file
//! is mutated too.

use super::{parse, render};
use crate::settings::{Global, RouteSettings, ServerOptions};
use crate::test_rng::Rng;
use std::path::Path;
use toml::de::DeTable;

const EXAMPLE: &str = include_str!("../../examples/ringproxy.toml");

/// TOML literals of every kind a setting takes, in range and out, and a few odd ones.
const LITERALS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "100",
    "1024",
    "65535",
    "65536",
    "1000000",
    "1000001",
    "16777216",
    "16777217",
    "1099511627776",
    "-1",
    "+7",
    "0x10",
    "0o17",
    "0b101",
    "1_000",
    "99999999999999999999",
    "1.5",
    "inf",
    "true",
    "false",
    "1979-05-27",
    "\"16KiB\"",
    "\"16k\"",
    "\"1m\"",
    "\"256MiB\"",
    "\"257MiB\"",
    "\"64k\"",
    "\"1024GiB\"",
    "\"0\"",
    "\"16 KiB\"",
    "\"500ms\"",
    "\"5s\"",
    "\"2m\"",
    "\"1h\"",
    "\"30d\"",
    "\"31d\"",
    "\"0s\"",
    "\"32767s\"",
    "\"1500ms\"",
    "\"auto\"",
    "\"text\"",
    "\"json\"",
    "\"round-robin\"",
    "\"least-conn\"",
    "\"ip-hash\"",
    "\"random-two\"",
    "\"off\"",
    "\"v1\"",
    "\"v2\"",
    "\"v3\"",
    "\"10/s\"",
    "\"30/m\"",
    "\"0/s\"",
    "\"1000001/s\"",
    "\"127.0.0.1:8080\"",
    "\"[::1]:9000\"",
    "\"0.0.0.0:0\"",
    "\"[fe80::1%2]:80\"",
    "\"localhost:80\"",
    "\"h:0\"",
    "\"10.0.0.0/8\"",
    "\"::1\"",
    "\"2001:db8::1/32\"",
    "\"::ffff:10.0.0.1\"",
    "\"127.0.0.2\"",
    "\"10.0.0.0/33\"",
    "[\"127.0.0.0/8\", \"::1\"]",
    "[]",
    "[1, 2]",
    "{}",
    "{ a = 1 }",
    "\"-\"",
    "\"\"",
    "\"/var/log/a b.log\"",
    "'C:\\logs\\a.log'",
    "\"odd \\\"q\\\" \\\\ \\u00e9\"",
    "\"\"\"\nmulti\nline\"\"\"",
    "'''x'''",
    "\"tab\\there\"",
    "\"nl\\nhere\"",
    "\"\\u0000\"",
    "\"\\u007f\\ud7ff\"",
];

/// Route names, listen addresses and server addresses, mostly good.
const NAMES: &[&str] = &[
    "\"web\"",
    "\"db\"",
    "\"odd \\\"q\\\"\"",
    "\"\\u00e9\\t\"",
    "\"\"",
    "1",
];
const LISTEN: &[&str] = &[
    "\"127.0.0.1:0\"",
    "\"[::1]:0\"",
    "\"127.0.0.1:8080\"",
    "\"[::]:8080\"",
    "\"[fe80::1%3]:9\"",
    "\"localhost:80\"",
    "[]",
];
const SERVERS: &[&str] = &[
    "\"127.0.0.1:80\"",
    "\"127.0.0.1:81\"",
    "\"[::1]:80\"",
    "\"b.internal:1\"",
    "\"a_b-c.d:65535\"",
    "\"h:0\"",
    "\"::1:80\"",
];

/// Which struct of settings a key belongs to.
#[derive(Clone, Copy, PartialEq)]
enum Table {
    Global,
    Route,
    Server,
}

/// For every key of every table, the literals it accepts.
struct Schema {
    takes: Vec<(Table, &'static str, Vec<&'static str>)>,
}

impl Schema {
    fn new() -> Schema {
        let mut takes = Vec::new();
        for (table, keys) in [
            (Table::Global, Global::KEYS),
            (Table::Route, RouteSettings::KEYS),
            (Table::Server, ServerOptions::KEYS),
        ] {
            for &key in keys {
                // Generated servers are mostly IPv4: an IPv6 source would make most files
                // that set one invalid (the wrong family), so those are left to wild values.
                let good = LITERALS
                    .iter()
                    .copied()
                    .filter(|lit| accepts(table, key, lit))
                    .filter(|lit| key != "bind_source" || !lit.contains(':'))
                    .collect();
                takes.push((table, key, good));
            }
        }
        Schema { takes }
    }

    /// A value for `key` of `table`: one it accepts, or once in `wild` times any.
    fn value(&self, rng: &mut Rng, table: Table, key: &str, wild: usize) -> String {
        let good = self.takes.iter().find(|(t, k, _)| *t == table && *k == key);
        let good = good.map(|(_, _, good)| good);
        match good {
            Some(good) if !good.is_empty() && !rng.one_in(wild) => rng.pick(good).to_string(),
            _ => literal(rng),
        }
    }
}

/// True when the setting `key` of `table` takes the TOML `literal`.
fn accepts(table: Table, key: &str, literal: &str) -> bool {
    let doc = format!("v = {literal}");
    let Ok(doc) = DeTable::parse(&doc) else {
        return false;
    };
    let Some(v) = doc.get_ref().get("v").map(|v| v.get_ref()) else {
        return false;
    };
    let set = match table {
        Table::Global => Global::default().set_toml(key, v),
        Table::Route => RouteSettings::default().set_toml(key, v),
        Table::Server => ServerOptions::default().set_toml(key, v),
    };
    matches!(set, Some(Ok(())))
}

/// Any literal: from [`LITERALS`], or a generated number, size or duration.
fn literal(rng: &mut Rng) -> String {
    let n = match rng.below(4) {
        0 => rng.next().to_string(),
        1 => (rng.next() % 100_000).to_string(),
        _ => return rng.pick(LITERALS).to_string(),
    };
    match rng.below(3) {
        0 => n,
        _ => {
            let unit = rng.pick(&["", "ms", "s", "m", "h", "d", "k", "KiB", "MiB", "g", "/s"]);
            format!("\"{n}{unit}\"")
        }
    }
}

/// Once in this many times a generated file has a value of any kind, not the key's.
const WILD: usize = 40;

/// A small file from the schema: a few global keys, maybe `[defaults]`, one to three routes.
fn generated(rng: &mut Rng, schema: &Schema) -> String {
    let mut out = String::new();
    let out = &mut out;
    for key in distinct(rng, Global::KEYS, 0..4) {
        line(out, key, schema.value(rng, Table::Global, key, WILD));
    }
    if rng.one_in(3) {
        out.push_str("[defaults]\n");
        for key in distinct(rng, RouteSettings::KEYS, 1..4) {
            line(out, key, schema.value(rng, Table::Route, key, WILD));
        }
    }
    for r in 0..1 + rng.below(3) {
        out.push_str("[[route]]\n");
        let name = if rng.one_in(20) {
            rng.pick(NAMES).to_string()
        } else {
            format!("\"r{r}\"")
        };
        line(out, "name", name);
        let listen = if rng.one_in(20) {
            rng.pick(LISTEN).to_string()
        } else {
            let host = rng.pick(&["127.0.0.1", "[::1]"]);
            format!("\"{host}:{}\"", 8000 + r)
        };
        line(out, "listen", listen);
        for key in distinct(rng, RouteSettings::KEYS, 0..4) {
            line(out, key, schema.value(rng, Table::Route, key, WILD));
        }
        let servers: Vec<Vec<(&str, String)>> = (0..1 + rng.below(3))
            .map(|s| {
                let addr = if rng.one_in(20) {
                    rng.pick(SERVERS).to_string()
                } else {
                    format!("\"10.0.{r}.{s}:80\"")
                };
                let mut server = vec![("addr", addr)];
                for key in distinct(rng, ServerOptions::KEYS, 0..3) {
                    server.push((key, schema.value(rng, Table::Server, key, WILD)));
                }
                server
            })
            .collect();
        if rng.one_in(3) {
            for server in servers {
                out.push_str("[[route.servers]]\n");
                for (key, value) in server {
                    line(out, key, value);
                }
            }
        } else {
            let tables: Vec<String> = servers
                .into_iter()
                .map(|server| {
                    let pairs: Vec<String> = server
                        .into_iter()
                        .map(|(key, value)| format!("{key} = {value}"))
                        .collect();
                    format!("{{ {} }}", pairs.join(", "))
                })
                .collect();
            line(out, "servers", format!("[\n  {},\n]", tables.join(",\n  ")));
        }
    }
    std::mem::take(out)
}

/// A number in `n` of different keys of `keys`, in random order.
fn distinct(rng: &mut Rng, keys: &[&'static str], n: std::ops::Range<usize>) -> Vec<&'static str> {
    let n = n.start + rng.below(n.len());
    let mut left = keys.to_vec();
    (0..n.min(keys.len()))
        .map(|_| left.swap_remove(rng.below(left.len())))
        .collect()
}

/// Appends `key = value` to `out`.
fn line(out: &mut String, key: &str, value: String) {
    out.push_str(&format!("{key} = {value}\n"));
}

/// `text` edited by lines (keys and tables added, lines removed, repeated, moved, values
/// replaced), then maybe by bytes.
fn mutated(rng: &mut Rng, schema: &Schema, text: &str) -> String {
    const KEYS: &[&str] = &[
        "name",
        "listen",
        "servers",
        "addr",
        "route",
        "defaults",
        "bogus",
        "buffer-size",
        "route.name",
        "\"workers\"",
    ];
    const TABLES: &[&str] = &[
        "[defaults]",
        "[[route]]",
        "[[route.servers]]",
        "[route]",
        "[x]",
    ];
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(2) {
        let i = rng.below(lines.len() + 1);
        let j = rng.below(lines.len() + 1);
        match rng.below(6) {
            0 if i < lines.len() => drop(lines.remove(i)),
            1 if i < lines.len() => lines.insert(j, lines[i].clone()),
            2 if i < lines.len() && j < lines.len() => lines.swap(i, j),
            3 if i < lines.len() && lines[i].contains('=') => {
                let key = lines[i]
                    .split('=')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                let table = rng.pick(&[&Table::Global, &Table::Route, &Table::Server]);
                lines[i] = format!("{key} = {}", schema.value(rng, *table, &key, 3));
            }
            4 => lines.insert(i, rng.pick(TABLES).to_string()),
            _ => {
                let (table, key) = match rng.below(4) {
                    0 => (Table::Route, rng.pick(KEYS)),
                    1 => (Table::Global, rng.pick(Global::KEYS)),
                    2 => (Table::Server, rng.pick(ServerOptions::KEYS)),
                    _ => (Table::Route, rng.pick(RouteSettings::KEYS)),
                };
                lines.insert(i, format!("{key} = {}", schema.value(rng, table, key, 3)));
            }
        }
    }
    let mut bytes = lines.join("\n").into_bytes();
    if rng.one_in(3) {
        let times = 1 + rng.below(3);
        rng.mutate(&mut bytes, b"\n\"'=[]{},.#\\ 0_x", times);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Parses `text` and checks what came out; true when it parsed.
fn check(text: &str) -> bool {
    let path = Path::new("prop.toml");
    let config = match parse(text, path) {
        Ok(config) => config.into_inner(),
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("prop.toml"), "{shown}\n---\n{text}");
            let lines = text.matches('\n').count() + 1;
            assert!(
                e.line.is_none_or(|l| (1..=lines).contains(&l)),
                "{shown}\n---\n{text}"
            );
            return false;
        }
    };
    let rendered = render(&config);
    let again = parse(&rendered, path)
        .unwrap_or_else(|e| panic!("{e}\n--- input\n{text}\n--- rendered\n{rendered}"))
        .into_inner();
    assert_eq!(
        again, config,
        "\n--- input\n{text}\n--- rendered\n{rendered}"
    );
    assert_eq!(
        render(&again),
        rendered,
        "rendering is not stable\n---\n{text}"
    );
    true
}

#[test]
fn property_generated_and_mutated_files() {
    let mut rng = Rng::new(0x5eed_c0f1_9000_0001);
    let schema = Schema::new();
    let (mut generated_ok, mut mutated_ok) = (0, 0);
    const ROUNDS: usize = 1500;
    for _ in 0..ROUNDS {
        let text = generated(&mut rng, &schema);
        generated_ok += usize::from(check(&text));
        mutated_ok += usize::from(check(&mutated(&mut rng, &schema, &text)));
    }
    // Most generated files are valid, so the round trip is exercised, not only the errors
    // (with this seed 917 of them, and 75 of the mutated ones).
    assert!(
        generated_ok > ROUNDS / 2,
        "{generated_ok} of {ROUNDS} parsed"
    );
    assert!(mutated_ok > ROUNDS / 50, "{mutated_ok} of {ROUNDS} parsed");
}

#[test]
fn property_mutated_example_file() {
    let mut rng = Rng::new(0x5eed_c0f1_9000_0002);
    let schema = Schema::new();
    assert!(check(EXAMPLE));
    let mut parsed = 0;
    const ROUNDS: usize = 1000;
    for _ in 0..ROUNDS {
        parsed += usize::from(check(&mutated(&mut rng, &schema, EXAMPLE)));
    }
    // With this seed 234 of them parse.
    assert!(parsed > ROUNDS / 10, "{parsed} of {ROUNDS} parsed");
}
