//! libinjection's SQL-injection and XSS detection, in safe Rust.
//!
//! Work in progress: the API is stable, the detection is being filled in.

#![forbid(unsafe_code)]

/// SQLi: `Some(fingerprint)` like `"s&sos"` when the input is SQL injection (ModSecurity puts
/// the fingerprint in `TX:0` / logdata), `None` otherwise.
#[must_use]
pub fn detect_sqli(input: &[u8]) -> Option<String> {
    let _ = input;
    None
}

/// XSS: `true` when the input is XSS per libinjection_xss.
#[must_use]
pub fn detect_xss(input: &[u8]) -> bool {
    let _ = input;
    false
}
