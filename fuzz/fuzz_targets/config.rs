//! The configuration file on arbitrary text: `file::parse` gives a validated configuration or
//! an error, never a panic; an error displays; and a configuration it accepts is rendered
//! (what `--check` prints) to a file that parses back to the same configuration, and renders
//! the same again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringproxy::file::{parse, render};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // `file::load` reads the file as UTF-8 and refuses anything else before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let config = match parse(text, path) {
        Ok(config) => config,
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("fuzz.toml"), "{shown}");
            if let Some(line) = e.line {
                assert!(line >= 1 && line <= text.lines().count() + 1, "{shown}");
            }
            return;
        }
    };
    let _ = config.warnings();
    let config = config.into_inner();
    let rendered = render(&config);
    let again = match parse(&rendered, path) {
        Ok(again) => again.into_inner(),
        Err(e) => panic!(
            "the rendered file does not parse: {e}\n--- input\n{text}\n--- rendered\n{rendered}"
        ),
    };
    assert_eq!(
        again, config,
        "\n--- input\n{text}\n--- rendered\n{rendered}"
    );
    assert_eq!(render(&again), rendered, "rendering is not stable");
});
