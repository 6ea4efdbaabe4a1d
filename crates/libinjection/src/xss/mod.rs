//! XSS detection, libinjection's `libinjection_xss` (being written).

pub(crate) fn detect(input: &[u8]) -> bool {
    let _ = input;
    false
}
