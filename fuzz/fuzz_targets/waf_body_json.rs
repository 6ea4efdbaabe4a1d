//! Arbitrary bytes as a JSON request body through a WAF transaction (phases 1-5) with a
//! minimal CRS-like rule set inspecting what the body processor fills.
//!
//! `cargo +nightly fuzz run waf_body_json` (seeds in `fuzz/corpus/waf_body_json`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "waf_common.rs"]
mod waf_common;

fuzz_target!(|data: &[u8]| {
    waf_common::post(b"application/json", data);
});
