//! The command line on arbitrary argument vectors (the input split on NUL bytes, each argument
//! any bytes, so not always UTF-8): `cli::parse` gives a command or a usage error, never a
//! panic; and a configuration it accepts is rendered (what `--check` prints) to a file that
//! parses back to the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringproxy::cli::{Command, Source, parse};
use ringproxy::file;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(|&b| b == 0)
            .map(|arg| OsString::from_vec(arg.to_vec()))
            .collect()
    };
    let shown = format!("{args:?}");
    match parse(args) {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(Command::Help | Command::Version) => {}
        Ok(Command::Run {
            source: Source::File(_),
            ..
        }) => {}
        Ok(Command::Run {
            source: Source::Flags(config),
            ..
        }) => {
            let _ = config.warnings();
            let config = config.into_inner();
            assert_eq!(config.routes.len(), 1, "{shown}");
            let rendered = file::render(&config);
            match file::parse(&rendered, Path::new("check.toml")) {
                Ok(again) => assert_eq!(again.into_inner(), config, "{shown}\n{rendered}"),
                Err(e) => panic!("--check output does not parse: {e}\n{shown}\n{rendered}"),
            }
        }
    }
});
