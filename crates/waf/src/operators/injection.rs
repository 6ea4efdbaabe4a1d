//! `@detectSQLi` and `@detectXSS` through `rampart-libinjection`.

/// The libinjection fingerprint when `input` is SQL injection.
pub(crate) fn sqli(input: &[u8]) -> Option<String> {
    rampart_libinjection::detect_sqli(input)
}

/// Whether `input` is XSS.
pub(crate) fn xss(input: &[u8]) -> bool {
    rampart_libinjection::detect_xss(input)
}
