//! Any text as a rule file: the parser never panics and every error points inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use swarmpilot::rules::load::parse_rule_file;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (_, errors) = parse_rule_file(Path::new("fuzz.yml"), text);
    let lines = text.lines().count() + 1;
    for error in errors {
        assert!(error.line >= 1 && error.line <= lines && error.column >= 1, "{error}");
    }
});
