//! The `Date` header for responses the gateway writes itself: formatted once a second per
//! thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    /// The second it was made for, and `date: <IMF-fixdate>\r\n`.
    static CACHED: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Appends `date: <now>\r\n`.
pub(crate) fn push_now(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let line = format!("date: {}\r\n", httpdate::fmt_http_date(now));
            *cached = (second, line.into_bytes());
        }
        out.extend_from_slice(&cached.1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_line_is_an_imf_fixdate() {
        let mut out = Vec::new();
        push_now(&mut out);
        let line = String::from_utf8(out).unwrap();
        let value = line
            .strip_prefix("date: ")
            .and_then(|rest| rest.strip_suffix("\r\n"))
            .unwrap();
        assert!(value.ends_with(" GMT"), "{value}");
        let parsed = httpdate::parse_http_date(value).unwrap();
        let skew = SystemTime::now().duration_since(parsed).unwrap();
        assert!(skew.as_secs() < 5, "{value}");
    }
}
