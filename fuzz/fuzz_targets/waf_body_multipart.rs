//! Arbitrary bytes as a multipart/form-data request through a WAF transaction (phases 1-5):
//! the first line is the rest of the `Content-Type` after `multipart/form-data; ` (so the
//! fuzzer varies the boundary parameter too), the remainder is the body.
//!
//! `cargo +nightly fuzz run waf_body_multipart` (seeds in `fuzz/corpus/waf_body_multipart`).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "waf_common.rs"]
mod waf_common;

fuzz_target!(|data: &[u8]| {
    let (params, body) = match data.iter().position(|b| *b == b'\n') {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (&b"boundary=XyZ"[..], data),
    };
    let mut ct = b"multipart/form-data; ".to_vec();
    ct.extend_from_slice(params);
    waf_common::post(&ct, body);
});
