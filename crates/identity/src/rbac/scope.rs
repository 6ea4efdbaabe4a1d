//! [`Scope`]: where an assignment applies and where an action is attempted.
//!
//! Forms (literal segments case-insensitive, Key Vault names too, as in Azure; all stored
//! lowercase except gateway route names, which are kept as written):
//!
//! | scope | kind |
//! |---|---|
//! | `/` | everything |
//! | `/vaults/{vault}` | a vault and every object in it |
//! | `/vaults/{vault}/secrets/{name}` | one secret |
//! | `/vaults/{vault}/keys/{name}` | one key |
//! | `/vaults/{vault}/certificates/{name}` | one certificate |
//! | `/gateway/routes/{route}` | one gateway route |
//!
//! Inheritance is downward by whole segments: `/vaults/a` covers `/vaults/a/secrets/x`, never
//! `/vaults/ab`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{AccessError, Result};

/// Longest vault, object or route name.
pub const MAX_NAME_LEN: usize = 127;

/// What a [`Scope`] designates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    /// `/`.
    Root,
    /// `/vaults/{vault}`.
    Vault,
    /// `/vaults/{vault}/secrets/{name}`.
    Secret,
    /// `/vaults/{vault}/keys/{name}`.
    Key,
    /// `/vaults/{vault}/certificates/{name}`.
    Certificate,
    /// `/gateway/routes/{route}`.
    GatewayRoute,
}

/// A validated scope.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope {
    segments: Vec<String>,
}

impl Scope {
    /// `/`.
    #[must_use]
    pub fn root() -> Self {
        Self {
            segments: Vec::new(),
        }
    }

    /// Parses one of the scope forms.
    ///
    /// # Errors
    /// [`AccessError::InvalidScope`] naming the scope and the problem.
    pub fn parse(scope: &str) -> Result<Self> {
        let bad = |reason: String| AccessError::InvalidScope {
            scope: scope.chars().take(300).collect(),
            reason,
        };
        if scope == "/" {
            return Ok(Self::root());
        }
        let Some(rest) = scope.strip_prefix('/') else {
            return Err(bad("must start with '/'".into()));
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty segment (double or trailing '/')".into()));
        }
        let lit = |i: usize, want: &str| parts.get(i).is_some_and(|p| p.eq_ignore_ascii_case(want));
        let name = |i: usize, kv: bool| -> Result<String> {
            let n = parts.get(i).copied().unwrap_or_default();
            check_name(n, kv).map_err(bad)?;
            Ok(if kv {
                n.to_ascii_lowercase()
            } else {
                n.to_owned()
            })
        };
        match parts.len() {
            2 if lit(0, "vaults") => Ok(Self {
                segments: vec!["vaults".into(), name(1, true)?],
            }),
            4 if lit(0, "vaults") => {
                let kind = ["secrets", "keys", "certificates"]
                    .into_iter()
                    .find(|k| lit(2, k))
                    .ok_or_else(|| bad("expected secrets, keys or certificates after the vault".into()))?;
                Ok(Self {
                    segments: vec!["vaults".into(), name(1, true)?, kind.into(), name(3, true)?],
                })
            }
            3 if lit(0, "gateway") && lit(1, "routes") => Ok(Self {
                segments: vec!["gateway".into(), "routes".into(), name(2, false)?],
            }),
            _ => Err(bad(
                "expected /, /vaults/{v}, /vaults/{v}/secrets|keys|certificates/{name} or /gateway/routes/{route}"
                    .into(),
            )),
        }
    }

    /// `/vaults/{vault}`.
    ///
    /// # Errors
    /// [`AccessError::InvalidScope`] for a bad name.
    pub fn vault(vault: &str) -> Result<Self> {
        Self::parse(&format!("/vaults/{vault}"))
    }

    /// `/vaults/{vault}/secrets/{name}`.
    ///
    /// # Errors
    /// [`AccessError::InvalidScope`] for a bad name.
    pub fn secret(vault: &str, name: &str) -> Result<Self> {
        Self::parse(&format!("/vaults/{vault}/secrets/{name}"))
    }

    /// `/vaults/{vault}/keys/{name}`.
    ///
    /// # Errors
    /// [`AccessError::InvalidScope`] for a bad name.
    pub fn key(vault: &str, name: &str) -> Result<Self> {
        Self::parse(&format!("/vaults/{vault}/keys/{name}"))
    }

    /// `/vaults/{vault}/certificates/{name}`.
    ///
    /// # Errors
    /// [`AccessError::InvalidScope`] for a bad name.
    pub fn certificate(vault: &str, name: &str) -> Result<Self> {
        Self::parse(&format!("/vaults/{vault}/certificates/{name}"))
    }

    /// `/gateway/routes/{route}`.
    ///
    /// # Errors
    /// [`AccessError::InvalidScope`] for a bad name.
    pub fn gateway_route(route: &str) -> Result<Self> {
        Self::parse(&format!("/gateway/routes/{route}"))
    }

    /// What the scope designates.
    #[must_use]
    pub fn kind(&self) -> ScopeKind {
        match self.segments.len() {
            0 => ScopeKind::Root,
            2 => ScopeKind::Vault,
            3 => ScopeKind::GatewayRoute,
            _ => match self.segments.get(2).map(String::as_str) {
                Some("secrets") => ScopeKind::Secret,
                Some("keys") => ScopeKind::Key,
                _ => ScopeKind::Certificate,
            },
        }
    }

    /// Whether an assignment at `self` applies at `other`: `self` is `other` or one of its
    /// ancestors, by whole segments.
    #[must_use]
    pub fn covers(&self, other: &Scope) -> bool {
        other.segments.starts_with(&self.segments)
    }

    /// Whether this is `/`.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }
}

/// Key Vault names: ASCII letters, digits and `-`; route names may also hold `.` and `_`.
fn check_name(name: &str, kv: bool) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("names are 1 to {MAX_NAME_LEN} characters"));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || (!kv && matches!(c, '.' | '_'));
    if let Some(c) = name.chars().find(|&c| !ok(c)) {
        return Err(format!("character {c:?} is not allowed in a name"));
    }
    Ok(())
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self})")
    }
}

impl std::str::FromStr for Scope {
    type Err = AccessError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Scope {
    type Error = AccessError;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_and_print() {
        for (input, printed, kind) in [
            ("/", "/", ScopeKind::Root),
            ("/vaults/Prod", "/vaults/prod", ScopeKind::Vault),
            (
                "/VAULTS/prod/Secrets/db-pass",
                "/vaults/prod/secrets/db-pass",
                ScopeKind::Secret,
            ),
            (
                "/vaults/prod/keys/k1",
                "/vaults/prod/keys/k1",
                ScopeKind::Key,
            ),
            (
                "/vaults/prod/certificates/tls",
                "/vaults/prod/certificates/tls",
                ScopeKind::Certificate,
            ),
            (
                "/gateway/routes/Api_v1.x",
                "/gateway/routes/Api_v1.x",
                ScopeKind::GatewayRoute,
            ),
        ] {
            let s = Scope::parse(input).unwrap();
            assert_eq!(s.to_string(), printed);
            assert_eq!(s.kind(), kind);
            assert_eq!(Scope::parse(printed).unwrap(), s);
        }
    }

    #[test]
    fn bad_scopes_are_rejected() {
        for bad in [
            "",
            "vaults/a",
            "/vaults",
            "/vaults/",
            "/vaults/a/",
            "//",
            "/vaults//secrets/x",
            "/vaults/a/blobs/x",
            "/vaults/a/secrets",
            "/vaults/a/secrets/x/y",
            "/gateway",
            "/gateway/routes",
            "/gateway/other/x",
            "/vaults/a_b",
            "/vaults/a b",
            "/other/x",
            &format!("/vaults/{}", "a".repeat(MAX_NAME_LEN + 1)),
        ] {
            assert!(
                matches!(Scope::parse(bad), Err(AccessError::InvalidScope { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn inheritance_is_by_whole_segments() {
        let p = |s: &str| Scope::parse(s).unwrap();
        assert!(Scope::root().covers(&p("/vaults/a/secrets/x")));
        assert!(p("/vaults/a").covers(&p("/vaults/a/secrets/x")));
        assert!(p("/vaults/a").covers(&p("/vaults/a")));
        assert!(!p("/vaults/a").covers(&p("/vaults/ab")));
        assert!(!p("/vaults/a").covers(&p("/vaults/ab/keys/k")));
        assert!(!p("/vaults/a/secrets/x").covers(&p("/vaults/a")));
        assert!(!p("/vaults/a/secrets/x").covers(&p("/vaults/a/keys/x")));
        assert!(!p("/vaults/a").covers(&p("/gateway/routes/a")));
    }
}
