//! Arbitrary bytes to the SecLang parser, from a string, includes disabled (no file access).
//!
//! `cargo +nightly fuzz run seclang_parse` from the repository root (seeds in
//! `fuzz/corpus/seclang_parse`).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rampart_seclang::Parser;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parser = Parser::new().without_includes();
    if let Err(e) = parser.parse_str(text, Path::new("fuzz.conf")) {
        // Errors must render and always name the origin.
        assert!(e.to_string().starts_with("fuzz.conf"));
    }
});
