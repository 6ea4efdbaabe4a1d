//! Redaction of sensitive values with HMAC-SHA256 under a per-log salt key.
//!
//! Tokens, secret values and passwords never reach the log in clear. They are replaced by
//! `hmac-sha256:<hex>` computed under the key in `redaction.key` (32 random bytes, mode 0600),
//! as OpenBao's audit devices do: an operator who holds the key can answer "was this token X?"
//! by computing the same HMAC (`rampart audit hmac`), while the log itself reveals nothing.

use std::fmt;

use aws_lc_rs::hmac;

use crate::hex;

/// Prefix of every redacted value.
pub const REDACTED_PREFIX: &str = "hmac-sha256:";

/// Computes redacted forms of sensitive values. Cheap to clone.
#[derive(Clone)]
pub struct Redactor {
    key: hmac::Key,
}

impl Redactor {
    /// A redactor for this salt key.
    #[must_use]
    pub fn new(salt: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, salt),
        }
    }

    /// `hmac-sha256:<64 hex digits>` of `value`.
    #[must_use]
    pub fn redact(&self, value: &str) -> String {
        let tag = hmac::sign(&self.key, value.as_bytes());
        let mut out = String::with_capacity(REDACTED_PREFIX.len() + 64);
        out.push_str(REDACTED_PREFIX);
        hex::encode_into(tag.as_ref(), &mut out);
        out
    }

    /// Whether `redacted` is the redacted form of `value` (constant-time comparison).
    #[must_use]
    pub fn matches(&self, redacted: &str, value: &str) -> bool {
        let Some(h) = redacted.strip_prefix(REDACTED_PREFIX) else {
            return false;
        };
        let Some(tag) = hex::decode32(h) else {
            return false;
        };
        hmac::verify(&self.key, value.as_bytes(), &tag).is_ok()
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor { key: <redacted> }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_deterministically_per_key() {
        let a = Redactor::new(b"salt-a");
        let b = Redactor::new(b"salt-b");
        let ra = a.redact("s3cr3t-token");
        assert!(ra.starts_with(REDACTED_PREFIX));
        assert_eq!(ra.len(), REDACTED_PREFIX.len() + 64);
        assert!(!ra.contains("s3cr3t"));
        assert_eq!(ra, a.redact("s3cr3t-token"));
        assert_ne!(ra, b.redact("s3cr3t-token"));
        assert!(a.matches(&ra, "s3cr3t-token"));
        assert!(!a.matches(&ra, "other"));
        assert!(!b.matches(&ra, "s3cr3t-token"));
        assert!(!a.matches("plain", "plain"));
        assert!(!format!("{a:?}").contains("salt"));
    }

    #[test]
    fn matches_rfc4231_vector() {
        // RFC 4231 test case 2.
        let r = Redactor::new(b"Jefe");
        assert_eq!(
            r.redact("what do ya want for nothing?"),
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
