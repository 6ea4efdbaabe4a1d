//! Arbitrary bytes to libinjection's SQLi and XSS detectors: no panic, and a SQLi verdict
//! always comes with a fingerprint of one to five token types.
//!
//! `cargo +nightly fuzz run libinjection` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_libinjection::{detect_sqli, detect_xss};

fuzz_target!(|data: &[u8]| {
    if let Some(fp) = detect_sqli(data) {
        assert!((1..=5).contains(&fp.len()), "fingerprint {fp:?}");
        assert!(fp.is_ascii());
    }
    let _ = detect_xss(data);
});
