//! libinjection's SQL-injection and XSS detection, in safe Rust.
//!
//! The WAF operators `@detectSQLi` and `@detectXSS` of ModSecurity (and so of the OWASP Core
//! Rule Set, rules 942100, 941100, 941101, ...) are defined by libinjection. This crate
//! reimplements its semantics without C: [`detect_sqli`] tokenizes the input as SQL in the
//! contexts libinjection tries (as is, after a `'`, after a `"`; ANSI and MySQL comments),
//! folds the tokens into a fingerprint of up to five token types and looks it up in
//! libinjection's fingerprint table, then applies its false-positive heuristics;
//! [`detect_xss`] tokenizes the input as HTML5 (in data state and in each attribute-value
//! state) and flags dangerous tags, attributes (`on*` event handlers, `style`, ...) and URL
//! schemes (`javascript:`, `vbscript:`, `data:`, `view-source:`).
//!
//! ```
//! use rampart_libinjection::{detect_sqli, detect_xss};
//!
//! assert_eq!(detect_sqli(b"1' OR '1'='1").as_deref(), Some("s&sos"));
//! assert_eq!(detect_sqli(b"O'Reilly"), None);
//! assert!(detect_xss(b"<script>alert(1)</script>"));
//! assert!(!detect_xss(b"a < b and c > d"));
//! ```
//!
//! Fidelity: the algorithm and the keyword/fingerprint table are libinjection 3.9.2's (as in
//! the ModSecurity releases CRS is tested with), with the code fixes of libinjection 4.0.0:
//! `1.e`-style numbers make no token (a MySQL evasion), `[` opens a bracketed word only in
//! MySQL mode, PostgreSQL `$tag$` strings end at the right tag, and the `on*` event-handler
//! list is WebKit's full list. Both detectors were compared byte for byte with the C library
//! (so patched) on the CRS payloads and on random inputs. C's signed `char` is reproduced
//! where it shows (bytes from 0x80 count as "<= 32"; byte 0xFF ends an HTML tag).
//!
//! Both run in time linear in the input, allocate only the returned fingerprint, and never
//! panic on any byte input. Modules: `sqli` (tokenizer, folding, tables, heuristics) and
//! `xss` (HTML5 tokenizer and blacklists), both private.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::indexing_slicing))]

mod sqli;
mod xss;

/// SQLi: `Some(fingerprint)` like `"s&sos"` when the input is SQL injection (ModSecurity puts
/// the fingerprint in `TX:0` / logdata), `None` otherwise.
#[must_use]
pub fn detect_sqli(input: &[u8]) -> Option<String> {
    sqli::detect(input)
}

/// XSS: `true` when the input is XSS per libinjection_xss.
#[must_use]
pub fn detect_xss(input: &[u8]) -> bool {
    xss::detect(input)
}
