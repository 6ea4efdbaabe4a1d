//! Action patterns: the strings in a role's `actions` / `notActions` / `dataActions` /
//! `notDataActions`, and how they match an action.
//!
//! As in Azure RBAC, matching is ASCII case-insensitive and `*` matches any run of characters
//! (including `/`), anywhere in the pattern: `Microsoft.KeyVault/vaults/*` matches every Key
//! Vault data action, `Microsoft.KeyVault/vaults/*/read` matches `.../secrets/read` and
//! `.../keys/read`, and `*` alone matches everything.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{AccessError, Result};

/// Longest accepted action or pattern, in bytes.
pub const MAX_ACTION_LEN: usize = 256;

/// A validated action pattern.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ActionPattern(String);

impl ActionPattern {
    /// Parses a pattern: 1 to [`MAX_ACTION_LEN`] bytes of ASCII letters, digits, `.`, `/`, `_`,
    /// `-` and `*`.
    ///
    /// # Errors
    /// [`AccessError::InvalidAction`] naming the pattern and the problem.
    pub fn parse(pattern: &str) -> Result<Self> {
        validate(pattern, true)?;
        Ok(Self(pattern.to_owned()))
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `action` matches (ASCII case-insensitive, `*` matches any run).
    #[must_use]
    pub fn matches(&self, action: &str) -> bool {
        glob(self.0.as_bytes(), action.as_bytes())
    }
}

/// Checks an action to be decided: like a pattern, but without `*`.
///
/// # Errors
/// [`AccessError::InvalidAction`].
pub fn validate_action(action: &str) -> Result<()> {
    validate(action, false)
}

fn validate(s: &str, wildcard: bool) -> Result<()> {
    let bad = |reason: &str| {
        Err(AccessError::InvalidAction {
            action: s.chars().take(MAX_ACTION_LEN).collect(),
            reason: reason.to_owned(),
        })
    };
    if s.is_empty() {
        return bad("empty");
    }
    if s.len() > MAX_ACTION_LEN {
        return bad(&format!("longer than {MAX_ACTION_LEN} bytes"));
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-' | '*')))
    {
        return bad(&format!("character {c:?} is not allowed"));
    }
    if !wildcard && s.contains('*') {
        return bad("an action to check cannot contain '*'");
    }
    Ok(())
}

/// Glob match with `*` only, ASCII case-insensitive, iterative (linear backtracking on the
/// last star), no recursion.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = text.get(t) {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&pc) if pc.eq_ignore_ascii_case(&c) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
}

impl TryFrom<String> for ActionPattern {
    type Error = AccessError;
    fn try_from(s: String) -> Result<Self> {
        validate(&s, true)?;
        Ok(Self(s))
    }
}

impl From<ActionPattern> for String {
    fn from(p: ActionPattern) -> Self {
        p.0
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, a: &str) -> bool {
        ActionPattern::parse(p)
            .map(|p| p.matches(a))
            .unwrap_or(false)
    }

    #[test]
    fn wildcards_and_case() {
        let get = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
        assert!(m("*", get));
        assert!(m("Microsoft.KeyVault/vaults/*", get));
        assert!(m("microsoft.keyvault/VAULTS/secrets/getsecret/ACTION", get));
        assert!(m("Microsoft.KeyVault/vaults/*/action", get));
        assert!(m("Microsoft.KeyVault/*/getSecret/*", get));
        assert!(m("Microsoft.KeyVault/vaults/secrets/get*", get));
        assert!(!m("Microsoft.KeyVault/vaults/keys/*", get));
        assert!(!m("Microsoft.KeyVault/vaults/secrets/getSecret", get));
        assert!(m(
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/keys/read"
        ));
        assert!(!m(
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/vaults/keys/readx"
        ));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("**", ""));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        for bad in [
            "",
            "a b",
            "a\nb",
            "é",
            &"a".repeat(MAX_ACTION_LEN + 1),
            "a?b",
        ] {
            assert!(
                matches!(
                    ActionPattern::parse(bad),
                    Err(AccessError::InvalidAction { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(validate_action("a/*").is_err());
        assert!(validate_action("Rampart.Access/roleAssignments/write").is_ok());
    }
}
