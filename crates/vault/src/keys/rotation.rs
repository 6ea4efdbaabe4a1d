//! Key rotation policies (Azure's `lifetimeActions` with `timeAfterCreate` /
//! `timeBeforeExpiry` triggers, `Rotate` / `Notify` actions, and the `expiryTime` given to new
//! versions) and ISO 8601 durations (`P90D`, `P1Y2M`, `PT12H`).
//!
//! Validation follows Azure's rules: each trigger has exactly one of the two times; at most one
//! `Rotate` and one `Notify` action; `Notify` only before expiry; `timeAfterCreate` and
//! `timeBeforeExpiry` at least 7 days, `expiryTime` at least 28 days, and a time before expiry
//! shorter than `expiryTime`. Years count 365 days and months 30 days, as Azure does.
//!
//! The scheduler's sweep lives in the service ([`crate::keys::Keys::run_due_rotations`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Result, VaultError};

const DAY: i64 = 86_400;
/// Shortest `timeAfterCreate` / `timeBeforeExpiry`.
pub const MIN_TRIGGER_SECS: i64 = 7 * DAY;
/// Shortest `expiryTime`.
pub const MIN_EXPIRY_SECS: i64 = 28 * DAY;

fn invalid(reason: impl Into<String>) -> VaultError {
    VaultError::InvalidKeyRequest {
        reason: reason.into(),
    }
}

/// An ISO 8601 duration, kept as written and as seconds.
#[derive(Clone, PartialEq, Eq)]
pub struct IsoDuration {
    text: String,
    secs: i64,
}

impl fmt::Debug for IsoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} s)", self.text, self.secs)
    }
}

impl IsoDuration {
    /// Parses `P[nY][nM][nW][nD][T[nH][nM][nS]]` (integers only; at least one part).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            invalid(format!(
                "invalid ISO 8601 duration {:?}",
                text.chars().take(32).collect::<String>()
            ))
        };
        let upper = text.trim().to_ascii_uppercase();
        let rest = upper.strip_prefix('P').ok_or_else(bad)?;
        let (mut secs, mut parts, mut time_parts) = (0i64, 0u32, 0u32);
        let (mut in_time, mut number) = (false, String::new());
        for c in rest.chars() {
            if c.is_ascii_digit() {
                if number.len() >= 9 {
                    return Err(bad());
                }
                number.push(c);
                continue;
            }
            if c == 'T' {
                if in_time || !number.is_empty() {
                    return Err(bad());
                }
                in_time = true;
                continue;
            }
            let n: i64 = number.parse().map_err(|_| bad())?;
            number.clear();
            let unit = match (in_time, c) {
                (false, 'Y') => 365 * DAY,
                (false, 'M') => 30 * DAY,
                (false, 'W') => 7 * DAY,
                (false, 'D') => DAY,
                (true, 'H') => 3600,
                (true, 'M') => 60,
                (true, 'S') => 1,
                _ => return Err(bad()),
            };
            secs = secs
                .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
                .ok_or_else(bad)?;
            parts += 1;
            time_parts += u32::from(in_time);
        }
        if !number.is_empty() || parts == 0 || (in_time && time_parts == 0) {
            return Err(bad());
        }
        Ok(Self { text: upper, secs })
    }

    /// The duration in seconds.
    pub fn secs(&self) -> i64 {
        self.secs
    }

    /// The text as given (uppercased).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Serialize for IsoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for IsoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// When a lifetime action fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// This long after the latest version was created.
    TimeAfterCreate(IsoDuration),
    /// This long before the latest version expires (only versions with an expiry).
    TimeBeforeExpiry(IsoDuration),
}

/// What a lifetime action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RotationAction {
    /// Create a new version of the same type and size.
    Rotate,
    /// Emit a "near expiry" event (an audit record), once per version.
    Notify,
}

impl RotationAction {
    /// Azure's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotate => "Rotate",
            Self::Notify => "Notify",
        }
    }

    /// Parses Azure's name (case-insensitive).
    pub fn parse(name: &str) -> Result<Self> {
        [Self::Rotate, Self::Notify]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                invalid(format!(
                    "unknown lifetime action {:?}",
                    name.chars().take(32).collect::<String>()
                ))
            })
    }
}

/// One lifetime action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifetimeAction {
    /// When.
    pub trigger: Trigger,
    /// What.
    pub action: RotationAction,
}

/// A key's rotation policy as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationPolicy {
    /// The actions.
    pub lifetime_actions: Vec<LifetimeAction>,
    /// Expiry given to versions created by rotation (from their creation).
    pub expiry_time: Option<IsoDuration>,
    /// When the policy was first set (Unix seconds; 0 for the default policy).
    pub created: i64,
    /// When it was last set.
    pub updated: i64,
    /// The last version a `Notify` fired for (so it fires once per version).
    #[serde(default)]
    pub notified_version: Option<String>,
    /// Creation time of the key object the policy was set for: a policy left behind by a key
    /// purged elsewhere (the purge scheduler) does not apply to a new key of the same name.
    #[serde(default)]
    pub object_created: i64,
}

impl Default for RotationPolicy {
    /// Azure's default for a key without a policy: notify 30 days before expiry.
    fn default() -> Self {
        Self {
            lifetime_actions: vec![LifetimeAction {
                trigger: Trigger::TimeBeforeExpiry(IsoDuration {
                    text: "P30D".into(),
                    secs: 30 * DAY,
                }),
                action: RotationAction::Notify,
            }],
            expiry_time: None,
            created: 0,
            updated: 0,
            notified_version: None,
            object_created: 0,
        }
    }
}

impl RotationPolicy {
    /// Checks Azure's rules (module docs).
    pub fn validate(&self) -> Result<()> {
        if let Some(exp) = &self.expiry_time
            && exp.secs < MIN_EXPIRY_SECS
        {
            return Err(invalid(format!(
                "expiryTime {} is shorter than 28 days",
                exp.as_str()
            )));
        }
        for action in [RotationAction::Rotate, RotationAction::Notify] {
            let count = self
                .lifetime_actions
                .iter()
                .filter(|a| a.action == action)
                .count();
            if count > 1 {
                return Err(invalid(format!(
                    "at most one {} lifetime action is allowed",
                    action.as_str()
                )));
            }
        }
        for la in &self.lifetime_actions {
            let dur = match &la.trigger {
                Trigger::TimeAfterCreate(d) => {
                    if la.action == RotationAction::Notify {
                        return Err(invalid(
                            "a Notify action only supports the timeBeforeExpiry trigger",
                        ));
                    }
                    d
                }
                Trigger::TimeBeforeExpiry(d) => {
                    if let Some(exp) = &self.expiry_time
                        && d.secs >= exp.secs
                    {
                        return Err(invalid(format!(
                            "timeBeforeExpiry {} must be shorter than expiryTime {}",
                            d.as_str(),
                            exp.as_str()
                        )));
                    }
                    d
                }
            };
            if dur.secs < MIN_TRIGGER_SECS {
                return Err(invalid(format!(
                    "trigger time {} is shorter than 7 days",
                    dur.as_str()
                )));
            }
        }
        Ok(())
    }

    /// When `action` is due for a version created at `created` (Unix seconds) expiring at
    /// `expires`: `None` when the policy has no such action or it cannot fire for this
    /// version (before-expiry trigger on a version without expiry).
    pub fn due_at(
        &self,
        action: RotationAction,
        created: i64,
        expires: Option<i64>,
    ) -> Option<i64> {
        let la = self.lifetime_actions.iter().find(|a| a.action == action)?;
        match &la.trigger {
            Trigger::TimeAfterCreate(d) => Some(created.saturating_add(d.secs)),
            Trigger::TimeBeforeExpiry(d) => expires.map(|e| e.saturating_sub(d.secs)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        for (text, secs) in [
            ("P90D", 90 * DAY),
            ("P1Y", 365 * DAY),
            ("P1Y2M", 425 * DAY),
            ("P2W", 14 * DAY),
            ("PT12H", 12 * 3600),
            ("P1DT1H1M1S", DAY + 3661),
            ("p30d", 30 * DAY),
        ] {
            assert_eq!(IsoDuration::parse(text).unwrap().secs(), secs, "{text}");
        }
        for bad in [
            "",
            "P",
            "90D",
            "PT",
            "P1H",
            "PT1D",
            "P1.5D",
            "P1DT",
            "P9999999999D",
            "PD",
        ] {
            assert!(IsoDuration::parse(bad).is_err(), "{bad}");
        }
    }

    fn policy(actions: Vec<(Trigger, RotationAction)>, expiry: Option<&str>) -> RotationPolicy {
        RotationPolicy {
            lifetime_actions: actions
                .into_iter()
                .map(|(trigger, action)| LifetimeAction { trigger, action })
                .collect(),
            expiry_time: expiry.map(|e| IsoDuration::parse(e).unwrap()),
            ..RotationPolicy::default()
        }
    }

    fn after(d: &str) -> Trigger {
        Trigger::TimeAfterCreate(IsoDuration::parse(d).unwrap())
    }
    fn before(d: &str) -> Trigger {
        Trigger::TimeBeforeExpiry(IsoDuration::parse(d).unwrap())
    }

    #[test]
    fn azure_rules_are_enforced() {
        use RotationAction::{Notify, Rotate};
        assert!(RotationPolicy::default().validate().is_ok());
        assert!(
            policy(
                vec![(after("P90D"), Rotate), (before("P30D"), Notify)],
                Some("P1Y")
            )
            .validate()
            .is_ok()
        );
        for bad in [
            policy(vec![(after("P1D"), Rotate)], None),
            policy(vec![(after("P90D"), Notify)], None),
            policy(vec![(after("P90D"), Rotate), (after("P60D"), Rotate)], None),
            policy(vec![(before("P30D"), Rotate)], Some("P30D")),
            policy(vec![], Some("P7D")),
        ] {
            assert!(
                matches!(bad.validate(), Err(VaultError::InvalidKeyRequest { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn due_times() {
        use RotationAction::{Notify, Rotate};
        let p = policy(
            vec![(after("P90D"), Rotate), (before("P30D"), Notify)],
            None,
        );
        assert_eq!(p.due_at(Rotate, 1000, None), Some(1000 + 90 * DAY));
        assert_eq!(p.due_at(Notify, 1000, None), None);
        assert_eq!(p.due_at(Notify, 0, Some(100 * DAY)), Some(70 * DAY));
        let json = serde_json::to_string(&p).unwrap();
        let back: RotationPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
}
