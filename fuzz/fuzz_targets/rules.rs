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
    // YAML breaks lines at CR as well as LF (CRLF is one break); positions count the same way.
    let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
    for error in errors {
        assert!(error.line >= 1 && error.line <= lines && error.column >= 1, "{error}");
    }
});
