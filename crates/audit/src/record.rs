//! Audit records, their builder, and the canonical stored form that is hashed as a Merkle leaf.
//!
//! A [`Record`] is what a component reports: time, component, actor, action, resource,
//! decision, reason, request id, source address and a free map of string details. The log
//! stores it as an [`Entry`]: the record plus its sequence number (= Merkle leaf index, the id
//! used by `show` and `prove`) and the leaf hash of the previous entry (a hash chain that lets
//! the verifier name the exact record that was edited).
//!
//! # Canonical form
//!
//! The stored payload is compact JSON with a fixed field order:
//!
//! ```text
//! {"seq":7,"prev":"<64 hex>","time":"2026-01-01T00:00:00.000000001Z","component":"vault",
//!  "actor":{"id":"alice","auth":"jwt"},"action":"secret.delete","resource":"secrets/db",
//!  "decision":"allow","reason":"","request_id":"r1","source":"10.0.0.1:5555",
//!  "details":{"a":"1"}}
//! ```
//!
//! (on one line). `details` is a `BTreeMap`, so keys are sorted; `request_id` and `source` are
//! omitted when absent. Serializing a decoded entry gives back the same bytes, so the jsonl
//! export is byte-identical to the log and each exported line can be checked against a signed
//! checkpoint with an inclusion proof.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hex;
use crate::merkle::Hash;
use crate::time::Timestamp;

/// The outcome recorded for an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The action was allowed (and, for completed operations, carried out).
    Allow,
    /// The action was refused by policy. Never sampled away.
    Deny,
    /// The action failed. Never sampled away.
    Error,
}

impl Decision {
    /// `allow`, `deny` or `error`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Error => "error",
        }
    }

    /// Parses `allow`, `deny` or `error`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who acted: a principal id and how it authenticated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Principal id (user, workload or service), `""` if anonymous.
    pub id: String,
    /// Authentication method (`jwt`, `mtls`, `client-credentials`, `admin-token`, `none`, ...).
    pub auth: String,
}

/// A value given to [`Record::sensitive_detail`]; held only until the [`crate::Auditor`]
/// redacts it, and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
struct SensitiveValue(String);

impl fmt::Debug for SensitiveValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One audit event, as a component reports it.
///
/// Build it with [`Record::new`] and the chained setters, then hand it to
/// [`crate::Auditor::record`] (durable, fail closed) or [`crate::Auditor::record_routine`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// When it happened (UTC, nanoseconds).
    pub time: Timestamp,
    /// Reporting component (`gateway`, `identity`, `vault`, `audit`, ...).
    pub component: String,
    /// Who acted.
    pub actor: Actor,
    /// What was attempted (`secret.delete`, `request`, `token.issue`, ...).
    pub action: String,
    /// On what (a path, object name or URL).
    pub resource: String,
    /// Outcome.
    pub decision: Decision,
    /// Why (rule id, policy name, error message); may be empty.
    pub reason: String,
    /// Correlation id of the request, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Source address of the client, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Free details; sorted by key.
    pub details: BTreeMap<String, String>,
    /// Sensitive details waiting to be redacted by the auditor.
    #[serde(skip)]
    sensitive: Vec<(String, SensitiveValue)>,
}

impl Record {
    /// A record stamped with the current time, an anonymous actor and empty resource/reason.
    #[must_use]
    pub fn new(
        component: impl Into<String>,
        action: impl Into<String>,
        decision: Decision,
    ) -> Self {
        Self {
            time: Timestamp::now(),
            component: component.into(),
            actor: Actor::default(),
            action: action.into(),
            resource: String::new(),
            decision,
            reason: String::new(),
            request_id: None,
            source: None,
            details: BTreeMap::new(),
            sensitive: Vec::new(),
        }
    }

    /// Sets the time.
    #[must_use]
    pub fn at(mut self, time: Timestamp) -> Self {
        self.time = time;
        self
    }

    /// Sets the actor: principal id and authentication method.
    #[must_use]
    pub fn actor(mut self, id: impl Into<String>, auth: impl Into<String>) -> Self {
        self.actor = Actor {
            id: id.into(),
            auth: auth.into(),
        };
        self
    }

    /// Sets the resource.
    #[must_use]
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = resource.into();
        self
    }

    /// Sets the reason.
    #[must_use]
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Sets the request id.
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// Sets the source address.
    #[must_use]
    pub fn source(mut self, addr: impl fmt::Display) -> Self {
        self.source = Some(addr.to_string());
        self
    }

    /// Adds a detail in clear. Never use this for tokens, secret values or passwords: use
    /// [`Record::sensitive_detail`].
    #[must_use]
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Adds a sensitive detail: the auditor replaces the value with
    /// `hmac-sha256:<hex>` under the log's salt key before the record is encoded. The clear
    /// value is never serialized, printed or logged.
    #[must_use]
    pub fn sensitive_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.sensitive
            .push((key.into(), SensitiveValue(value.into())));
        self
    }

    /// Whether sensitive details still wait for redaction.
    #[must_use]
    pub fn has_pending_sensitive(&self) -> bool {
        !self.sensitive.is_empty()
    }

    /// Replaces the pending sensitive details with their redacted forms.
    pub(crate) fn redact_pending(&mut self, redactor: &crate::Redactor) {
        for (k, SensitiveValue(v)) in self.sensitive.drain(..) {
            self.details.insert(k, redactor.redact(&v));
        }
    }

    /// The canonical JSON of the record alone (an object starting with `{"time":`).
    ///
    /// # Errors
    /// Fails only if serialization fails, which it does not for these types.
    pub(crate) fn to_canonical_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut v = Vec::with_capacity(256);
        serde_json::to_writer(&mut v, self)?;
        Ok(v)
    }
}

/// A stored record: its sequence number (= leaf index) and the previous entry's leaf hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number = Merkle leaf index = the record's id.
    pub seq: u64,
    /// Leaf hash of entry `seq - 1` (all zero for entry 0).
    pub prev: Hash,
    /// The record.
    pub record: Record,
}

const SEQ_PREFIX: &[u8] = b"{\"seq\":";
const PREV_PREFIX: &[u8] = b",\"prev\":\"";

/// Writes the canonical payload of an entry into `out`: the prefix with `seq` and `prev`,
/// followed by `record_json` (the record's canonical JSON) without its opening brace.
pub(crate) fn write_payload(out: &mut Vec<u8>, seq: u64, prev: &Hash, record_json: &[u8]) {
    out.extend_from_slice(SEQ_PREFIX);
    let mut digits = [0u8; 20];
    let mut n = seq;
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + u8::try_from(n % 10).unwrap_or(0);
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
    out.extend_from_slice(PREV_PREFIX);
    hex::encode_bytes_into(prev, out);
    out.extend_from_slice(b"\",");
    out.extend_from_slice(record_json.get(1..).unwrap_or_default());
}

/// The `seq` and `prev` of a payload, and where the rest of the record starts, without
/// parsing the record. `None` if the prefix is not canonical.
#[must_use]
pub(crate) fn parse_prefix(payload: &[u8]) -> Option<(u64, Hash, usize)> {
    let rest = payload.strip_prefix(SEQ_PREFIX)?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 20 || (digits > 1 && rest.first() == Some(&b'0')) {
        return None;
    }
    let mut seq: u64 = 0;
    for &c in rest.get(..digits)? {
        seq = seq.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    let rest = rest.get(digits..)?.strip_prefix(PREV_PREFIX)?;
    let prev = hex::decode32_bytes(rest.get(..64)?)?;
    let rest = rest.get(64..)?.strip_prefix(b"\",")?;
    Some((seq, prev, payload.len() - rest.len()))
}

impl Entry {
    /// Decodes a stored payload.
    ///
    /// # Errors
    /// Returns a description if the payload is not a canonical entry.
    pub fn decode(payload: &[u8]) -> Result<Self, String> {
        let (seq, prev, at) = parse_prefix(payload)
            .ok_or("payload does not start with {\"seq\":N,\"prev\":\"…\",")?;
        let rest = payload.get(at..).unwrap_or_default();
        let mut json = Vec::with_capacity(rest.len() + 1);
        json.push(b'{');
        json.extend_from_slice(rest);
        let record: Record = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        Ok(Self { seq, prev, record })
    }

    /// The canonical payload of this entry (what is hashed as its Merkle leaf).
    ///
    /// # Errors
    /// Fails only if JSON serialization fails.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let body = self.record.to_canonical_json()?;
        let mut out = Vec::with_capacity(body.len() + 100);
        write_payload(&mut out, self.seq, &self.prev, &body);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record::new("vault", "secret.delete", Decision::Allow)
            .at(Timestamp::from_unix_nanos(1_767_225_600_000_000_001))
            .actor("alice", "jwt")
            .resource("secrets/db")
            .request_id("r1")
            .source("10.0.0.1:5555")
            .detail("b", "2")
            .detail("a", "1 \"quoted\" \u{e9}")
    }

    #[test]
    fn canonical_payload_is_stable_and_round_trips() {
        let e = Entry {
            seq: 7,
            prev: [0xab; 32],
            record: sample(),
        };
        let p = e.encode().unwrap();
        let s = std::str::from_utf8(&p).unwrap();
        assert!(s.starts_with("{\"seq\":7,\"prev\":\"abab"), "{s}");
        assert!(s.contains("\"time\":\"2026-01-01T00:00:00.000000001Z\",\"component\":\"vault\""));
        assert!(s.contains("\"details\":{\"a\":"), "sorted details: {s}");
        let back = Entry::decode(&p).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.encode().unwrap(), p);
        assert_eq!(parse_prefix(&p).map(|x| x.0), Some(7));
    }

    #[test]
    fn prefix_parsing_is_strict() {
        let e = Entry {
            seq: 0,
            prev: [0; 32],
            record: sample(),
        };
        let p = e.encode().unwrap();
        assert_eq!(parse_prefix(&p).map(|x| x.0), Some(0));
        let big = Entry {
            seq: u64::MAX,
            ..e.clone()
        };
        assert_eq!(
            parse_prefix(&big.encode().unwrap()).map(|x| x.0),
            Some(u64::MAX)
        );
        for bad in [
            &b""[..],
            b"{\"seq\":",
            b"{\"seq\":01,\"prev\":\"",
            b"{\"seq\":1,\"prev\":\"00\",",
            b"{\"seq\":99999999999999999999,\"prev\":\"",
        ] {
            assert!(parse_prefix(bad).is_none());
        }
        assert!(Entry::decode(b"{\"seq\":1}").is_err());
    }

    #[test]
    fn sensitive_values_are_never_printed_or_serialized() {
        let r = sample().sensitive_detail("token", "tok-SECRET");
        assert!(!format!("{r:?}").contains("tok-SECRET"));
        let json = String::from_utf8(r.to_canonical_json().unwrap()).unwrap();
        assert!(!json.contains("tok-SECRET"));
        let mut r = r;
        let red = crate::Redactor::new(b"k");
        r.redact_pending(&red);
        assert!(!r.has_pending_sensitive());
        let v = r.details.get("token").unwrap();
        assert!(red.matches(v, "tok-SECRET"));
    }
}
