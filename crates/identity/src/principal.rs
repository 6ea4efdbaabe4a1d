//! The verified caller: what a token's claims say about who sent a request.

use serde::{Deserialize, Serialize};

/// A caller whose token was verified.
///
/// [`Principal::id`] is what role assignments name: the token's `oid` claim when present (as
/// Azure AD tokens carry it), otherwise its `sub`. Group memberships (`groups` claim) let an
/// assignment to `group:<name>` cover every member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Stable identifier that role assignments name (`oid`, else `sub`).
    pub id: String,
    /// The issuer (`iss`) that vouched for this principal.
    pub issuer: String,
    /// The token's `sub` claim.
    pub subject: String,
    /// The tenant (`tid`), when the issuer has tenants.
    pub tenant: Option<String>,
    /// The OAuth client the token was issued to (`client_id`, `azp` or `appid`).
    pub client_id: Option<String>,
    /// App roles (`roles` claim).
    pub roles: Vec<String>,
    /// Granted scopes (`scope`, space separated, or `scp`).
    pub scopes: Vec<String>,
    /// Group memberships (`groups` claim).
    pub groups: Vec<String>,
    /// The audiences the token was issued for (`aud`), at least one of which the verifier
    /// accepted.
    pub audiences: Vec<String>,
    /// When the token stops being valid, in Unix seconds (`exp`).
    pub expires_at: u64,
}

impl Principal {
    /// A principal known only by its id, for callers that were authenticated some other way
    /// (the local admin credential, a CLI acting on the data dir). Issuer `rampart`.
    #[must_use]
    pub fn local(id: impl Into<String>) -> Self {
        let id = id.into();
        Self {
            subject: id.clone(),
            id,
            issuer: "rampart".to_owned(),
            tenant: None,
            client_id: None,
            roles: Vec::new(),
            scopes: Vec::new(),
            groups: Vec::new(),
            audiences: Vec::new(),
            expires_at: u64::MAX,
        }
    }

    /// The names role assignments can use for this principal: its id, then `group:<g>` for
    /// each group it belongs to.
    pub fn assignment_names(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.id.clone()).chain(self.groups.iter().map(|g| format!("group:{g}")))
    }

    /// Whether the token was issued for `audience`.
    #[must_use]
    pub fn has_audience(&self, audience: &str) -> bool {
        self.audiences.iter().any(|a| a == audience)
    }

    /// Whether the token granted `scope`.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_names_cover_id_and_groups() {
        let mut p = Principal::local("alice");
        p.groups = vec!["ops".into(), "sre".into()];
        let names: Vec<String> = p.assignment_names().collect();
        assert_eq!(names, ["alice", "group:ops", "group:sre"]);
        assert!(!p.has_scope("api:read"));
        p.scopes.push("api:read".into());
        assert!(p.has_scope("api:read"));
    }
}
