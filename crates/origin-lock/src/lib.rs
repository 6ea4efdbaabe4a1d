//! Origin lock: proof, on every upstream request, that it came through the Rampart edge.
//!
//! The gateway adds two headers to each request it forwards (the idea of Azure Front Door's
//! `X-Azure-FDID`, plus a signature so the header cannot simply be copied):
//!
//! ```text
//! x-rampart-edge-id: <edge id>
//! x-rampart-forwarded: v=1;kid=<key id>;ts=<unix seconds>;client=<ip>;rid=<request id>;sig=<sig>
//! ```
//!
//! `sig` is the unpadded base64url HMAC-SHA256, under the key named `kid`, of the lines
//!
//! ```text
//! rampart-origin-lock-v1
//! <edge id>
//! <kid>
//! <ts>
//! <client>
//! <rid>
//! <METHOD>
//! <path and query as the upstream receives it>
//! ```
//!
//! joined with `\n`. A backend accepts the request when the edge id is its own, the key id is
//! one it knows, the signature matches (compared in constant time), and `ts` is within the
//! allowed age of its clock. Keys rotate with overlap: the gateway signs with one key while
//! backends accept the old and the new. [`OriginLock::verify`] does all of this; the same
//! algorithm fits in a few lines of Python (`examples/origin-lock/`).
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderName, HeaderValue};

/// The header naming the edge a request came through.
pub const EDGE_ID_HEADER: HeaderName = HeaderName::from_static("x-rampart-edge-id");
/// The header carrying the signed forwarding record.
pub const FORWARDED_HEADER: HeaderName = HeaderName::from_static("x-rampart-forwarded");
/// Shortest secret a key may have, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

const DOMAIN: &str = "rampart-origin-lock-v1";

/// Why a key or lock could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Key ids are 1-32 characters of `A-Z a-z 0-9 _ -`.
    #[error("key id {0:?} must be 1-32 characters of A-Z, a-z, 0-9, _ or -")]
    BadKeyId(String),
    /// The secret is too short to resist guessing.
    #[error("key {0:?}: the secret must be at least {MIN_SECRET_BYTES} bytes")]
    ShortSecret(String),
    /// Edge ids follow the same rule as key ids, up to 64 characters.
    #[error("edge id {0:?} must be 1-64 characters of A-Z, a-z, 0-9, _ or -")]
    BadEdgeId(String),
    /// Two keys share an id.
    #[error("key id {0:?} appears twice")]
    DuplicateKeyId(String),
}

/// Why a request was not accepted as coming through the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// One of the two headers is absent.
    #[error("origin-lock header {0} is missing")]
    Missing(&'static str),
    /// The forwarding header does not parse.
    #[error("origin-lock header is malformed: {0}")]
    Malformed(&'static str),
    /// The request came through another edge.
    #[error("request came through another edge")]
    WrongEdge,
    /// The key id is not one this verifier accepts (unknown, or rotated out).
    #[error("origin-lock key {0:?} is not accepted")]
    UnknownKey(String),
    /// The signature does not match: forged, or something was changed on the way.
    #[error("origin-lock signature does not match")]
    BadSignature,
    /// The record is older (or further in the future) than the allowed age.
    #[error("origin-lock timestamp is {0} s away from now, more than allowed")]
    Stale(u64),
}

/// An HMAC key with its id.
#[derive(Clone)]
pub struct Key {
    id: String,
    key: hmac::Key,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn is_token(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

impl Key {
    /// A key named `id` with `secret` (at least [`MIN_SECRET_BYTES`] bytes).
    pub fn new(id: &str, secret: &[u8]) -> Result<Self, KeyError> {
        if !is_token(id, 32) {
            return Err(KeyError::BadKeyId(id.to_owned()));
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::ShortSecret(id.to_owned()));
        }
        Ok(Self {
            id: id.to_owned(),
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// What the edge vouches for in one forwarded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarding {
    /// Seconds since the Unix epoch when the edge forwarded the request.
    pub timestamp: u64,
    /// The client address the edge saw.
    pub client: String,
    /// The edge's request id.
    pub request_id: String,
}

/// Signs (at the edge) and verifies (at a backend) origin-lock headers.
#[derive(Debug, Clone)]
pub struct OriginLock {
    edge_id: String,
    signing: Key,
    accepted: Vec<Key>,
    max_age: Duration,
}

impl OriginLock {
    /// A lock for `edge_id` that signs with `signing` and accepts it plus `also_accepted`
    /// (keys being rotated in or out). Records older than `max_age` are refused.
    pub fn new(
        edge_id: &str,
        signing: Key,
        also_accepted: Vec<Key>,
        max_age: Duration,
    ) -> Result<Self, KeyError> {
        if !is_token(edge_id, 64) {
            return Err(KeyError::BadEdgeId(edge_id.to_owned()));
        }
        let mut accepted = vec![signing.clone()];
        for key in also_accepted {
            if accepted.iter().any(|known| known.id == key.id) {
                return Err(KeyError::DuplicateKeyId(key.id));
            }
            accepted.push(key);
        }
        Ok(Self {
            edge_id: edge_id.to_owned(),
            signing,
            accepted,
            max_age,
        })
    }

    /// The edge id.
    pub fn edge_id(&self) -> &str {
        &self.edge_id
    }

    /// Adds both headers to a request the edge forwards, replacing any the client sent.
    /// `path` is the path and query the upstream will receive.
    pub fn sign(&self, headers: &mut HeaderMap, method: &str, path: &str, forwarding: &Forwarding) {
        let fields_ok = is_field(&forwarding.client) && is_field(&forwarding.request_id);
        let signature = self.signature(&self.signing, method, path, forwarding);
        let record = format!(
            "v=1;kid={};ts={};client={};rid={};sig={signature}",
            self.signing.id, forwarding.timestamp, forwarding.client, forwarding.request_id
        );
        headers.remove(&EDGE_ID_HEADER);
        headers.remove(&FORWARDED_HEADER);
        if let (true, Ok(edge), Ok(record)) = (
            fields_ok,
            HeaderValue::from_str(&self.edge_id),
            HeaderValue::from_str(&record),
        ) {
            headers.insert(EDGE_ID_HEADER, edge);
            headers.insert(FORWARDED_HEADER, record);
        }
    }

    /// Checks that a request came through this edge; `now` is Unix seconds.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        now: u64,
    ) -> Result<Forwarding, Rejection> {
        let edge = headers
            .get(&EDGE_ID_HEADER)
            .ok_or(Rejection::Missing("x-rampart-edge-id"))?;
        let record = headers
            .get(&FORWARDED_HEADER)
            .ok_or(Rejection::Missing("x-rampart-forwarded"))?
            .to_str()
            .map_err(|_| Rejection::Malformed("not text"))?;
        if !constant_time_eq(edge.as_bytes(), self.edge_id.as_bytes()) {
            return Err(Rejection::WrongEdge);
        }
        let parsed = Record::parse(record)?;
        let key = self
            .accepted
            .iter()
            .find(|key| key.id == parsed.kid)
            .ok_or_else(|| Rejection::UnknownKey(parsed.kid.to_owned()))?;
        let forwarding = Forwarding {
            timestamp: parsed.timestamp,
            client: parsed.client.to_owned(),
            request_id: parsed.request_id.to_owned(),
        };
        let expected = self.signature(key, method, path, &forwarding);
        if !constant_time_eq(expected.as_bytes(), parsed.signature.as_bytes()) {
            return Err(Rejection::BadSignature);
        }
        let age = now.abs_diff(forwarding.timestamp);
        if age > self.max_age.as_secs() {
            return Err(Rejection::Stale(age));
        }
        Ok(forwarding)
    }

    fn signature(&self, key: &Key, method: &str, path: &str, forwarding: &Forwarding) -> String {
        let message = [
            DOMAIN,
            &self.edge_id,
            &key.id,
            &forwarding.timestamp.to_string(),
            &forwarding.client,
            &forwarding.request_id,
            method,
            path,
        ]
        .join("\n");
        URL_SAFE_NO_PAD.encode(hmac::sign(&key.key, message.as_bytes()).as_ref())
    }
}

/// A field value that cannot break the record's `;`/`=` syntax or the signed lines.
fn is_field(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b';' && byte != b'=')
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(left, right).is_ok()
}

/// The fields of an `x-rampart-forwarded` value.
struct Record<'a> {
    kid: &'a str,
    timestamp: u64,
    client: &'a str,
    request_id: &'a str,
    signature: &'a str,
}

impl<'a> Record<'a> {
    fn parse(text: &'a str) -> Result<Self, Rejection> {
        let mut fields = [None; 6];
        const NAMES: [&str; 6] = ["v", "kid", "ts", "client", "rid", "sig"];
        for part in text.split(';') {
            let (name, value) = part
                .split_once('=')
                .ok_or(Rejection::Malformed("a field without '='"))?;
            let index = NAMES
                .iter()
                .position(|known| *known == name.trim())
                .ok_or(Rejection::Malformed("an unknown field"))?;
            let slot = fields
                .get_mut(index)
                .ok_or(Rejection::Malformed("an unknown field"))?;
            if slot.replace(value.trim()).is_some() {
                return Err(Rejection::Malformed("a repeated field"));
            }
        }
        let [
            Some(version),
            Some(kid),
            Some(ts),
            Some(client),
            Some(rid),
            Some(sig),
        ] = fields
        else {
            return Err(Rejection::Malformed("a missing field"));
        };
        if version != "1" {
            return Err(Rejection::Malformed("an unsupported version"));
        }
        Ok(Self {
            kid,
            timestamp: ts
                .parse()
                .map_err(|_| Rejection::Malformed("ts is not a number"))?,
            client,
            request_id: rid,
            signature: sig,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn key(id: &str, fill: u8) -> Key {
        Key::new(id, &[fill; 32]).unwrap()
    }

    fn lock(signing: Key, also: Vec<Key>) -> OriginLock {
        OriginLock::new("edge-1", signing, also, Duration::from_secs(30)).unwrap()
    }

    fn forwarding() -> Forwarding {
        Forwarding {
            timestamp: NOW,
            client: "203.0.113.7".to_owned(),
            request_id: "0190-abc".to_owned(),
        }
    }

    fn signed(lock: &OriginLock) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            FORWARDED_HEADER,
            HeaderValue::from_static("forged-by-client"),
        );
        lock.sign(&mut headers, "GET", "/a?b=1", &forwarding());
        headers
    }

    #[test]
    fn a_signed_request_verifies_and_yields_what_the_edge_saw() {
        let lock = lock(key("k1", 1), vec![]);
        let headers = signed(&lock);
        assert_eq!(
            lock.verify(&headers, "GET", "/a?b=1", NOW + 5),
            Ok(forwarding())
        );
    }

    #[test]
    fn anything_changed_on_the_way_breaks_the_signature() {
        let lock = lock(key("k1", 1), vec![]);
        let headers = signed(&lock);
        assert_eq!(
            lock.verify(&headers, "POST", "/a?b=1", NOW),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            lock.verify(&headers, "GET", "/a?b=2", NOW),
            Err(Rejection::BadSignature)
        );
        let mut changed = headers.clone();
        let record = changed[&FORWARDED_HEADER]
            .to_str()
            .unwrap()
            .replace("203.0.113.7", "10.0.0.1");
        changed.insert(FORWARDED_HEADER, HeaderValue::from_str(&record).unwrap());
        assert_eq!(
            lock.verify(&changed, "GET", "/a?b=1", NOW),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn another_key_or_edge_is_refused() {
        let edge = lock(key("k1", 1), vec![]);
        let headers = signed(&edge);
        let other_secret = lock(key("k1", 2), vec![]);
        assert_eq!(
            other_secret.verify(&headers, "GET", "/a?b=1", NOW),
            Err(Rejection::BadSignature)
        );
        let other_edge =
            OriginLock::new("edge-2", key("k1", 1), vec![], Duration::from_secs(30)).unwrap();
        assert_eq!(
            other_edge.verify(&headers, "GET", "/a?b=1", NOW),
            Err(Rejection::WrongEdge)
        );
    }

    #[test]
    fn keys_rotate_with_overlap() {
        let old_edge = lock(key("old", 1), vec![]);
        let backend_during_rotation = lock(key("new", 2), vec![key("old", 1)]);
        let backend_after_rotation = lock(key("new", 2), vec![]);
        let headers = signed(&old_edge);
        assert!(
            backend_during_rotation
                .verify(&headers, "GET", "/a?b=1", NOW)
                .is_ok()
        );
        assert_eq!(
            backend_after_rotation.verify(&headers, "GET", "/a?b=1", NOW),
            Err(Rejection::UnknownKey("old".to_owned()))
        );
    }

    #[test]
    fn old_or_future_records_are_stale() {
        let lock = lock(key("k1", 1), vec![]);
        let headers = signed(&lock);
        assert_eq!(
            lock.verify(&headers, "GET", "/a?b=1", NOW + 31),
            Err(Rejection::Stale(31))
        );
        assert_eq!(
            lock.verify(&headers, "GET", "/a?b=1", NOW - 31),
            Err(Rejection::Stale(31))
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        let lock = lock(key("k1", 1), vec![]);
        assert_eq!(
            lock.verify(&HeaderMap::new(), "GET", "/", NOW),
            Err(Rejection::Missing("x-rampart-edge-id"))
        );
        for bad in [
            "",
            "v=1",
            "v=2;kid=k1;ts=1;client=a;rid=b;sig=c",
            "v=1;kid=k1;ts=x;client=a;rid=b;sig=c",
            "v=1;v=1;kid=k1;ts=1;client=a;rid=b;sig=c",
            "v=1;kid=k1;ts=1;client=a;rid=b;sig=c;extra=1",
            "garbage",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(EDGE_ID_HEADER, HeaderValue::from_static("edge-1"));
            headers.insert(FORWARDED_HEADER, HeaderValue::from_str(bad).unwrap());
            assert!(
                matches!(
                    lock.verify(&headers, "GET", "/", NOW),
                    Err(Rejection::Malformed(_))
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn bad_keys_and_edge_ids_are_rejected() {
        assert_eq!(
            Key::new("k1", &[0; 31]).unwrap_err(),
            KeyError::ShortSecret("k1".into())
        );
        assert_eq!(
            Key::new("k;1", &[0; 32]).unwrap_err(),
            KeyError::BadKeyId("k;1".into())
        );
        assert_eq!(
            Key::new("", &[0; 32]).unwrap_err(),
            KeyError::BadKeyId(String::new())
        );
        assert!(OriginLock::new("edge 1", key("k", 1), vec![], Duration::ZERO).is_err());
        assert_eq!(
            OriginLock::new("e", key("k", 1), vec![key("k", 2)], Duration::ZERO).unwrap_err(),
            KeyError::DuplicateKeyId("k".into())
        );
    }
}
