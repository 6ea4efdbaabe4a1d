//! Role assignments: a principal (or `group:<name>`) holds a role at a scope, permanently,
//! until an expiry (an approved elevation), or only as eligible for elevation.

use serde::{Deserialize, Serialize};

use super::error::{AccessError, Result};
use super::scope::Scope;

/// How an assignment holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Condition {
    /// In force until removed.
    Permanent,
    /// In force until `expires_at` (Unix seconds): created by approving an elevation request.
    #[serde(rename_all = "camelCase")]
    ActiveUntil {
        /// When it stops granting anything, Unix seconds (checked at every decision).
        expires_at: u64,
        /// The elevation request it came from.
        request_id: String,
    },
    /// Grants nothing until activated through an approved elevation request.
    Eligible,
}

impl Condition {
    /// `permanent`, `active` or `eligible`.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Permanent => "permanent",
            Self::ActiveUntil { .. } => "active",
            Self::Eligible => "eligible",
        }
    }
}

/// One role assignment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assignment {
    /// Unique id (UUID).
    pub id: String,
    /// A principal id, or `group:<name>`.
    pub principal: String,
    /// The role's id.
    pub role_id: String,
    /// Where it applies (and below).
    pub scope: Scope,
    /// Who created it (principal id).
    pub created_by: String,
    /// When, Unix seconds.
    pub created_at: u64,
    /// Permanent, active until an expiry, or eligible.
    pub condition: Condition,
}

impl Assignment {
    /// Whether it grants its role at `now`: permanent, or active and not expired.
    #[must_use]
    pub fn is_active(&self, now: u64) -> bool {
        match self.condition {
            Condition::Permanent => true,
            Condition::ActiveUntil { expires_at, .. } => now < expires_at,
            Condition::Eligible => false,
        }
    }

    /// Whether it is an elevation whose expiry has passed at `now`.
    #[must_use]
    pub fn is_expired(&self, now: u64) -> bool {
        matches!(self.condition, Condition::ActiveUntil { expires_at, .. } if now >= expires_at)
    }
}

/// Longest principal name accepted in an assignment.
pub const MAX_PRINCIPAL_LEN: usize = 256;

/// Validates a principal name: a principal id or `group:<name>`, 1..=256 characters, no
/// whitespace or control characters.
///
/// # Errors
/// [`AccessError::InvalidPrincipal`].
pub fn validate_principal(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(AccessError::InvalidPrincipal {
            name: name.chars().take(MAX_PRINCIPAL_LEN).collect(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() || name.len() > MAX_PRINCIPAL_LEN {
        return bad("must be 1 to 256 bytes");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain whitespace or control characters");
    }
    if name.strip_prefix("group:").is_some_and(str::is_empty) {
        return bad("a group assignment needs a group name after 'group:'");
    }
    Ok(())
}
