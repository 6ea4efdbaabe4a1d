//! Access-token claims: time and audience checks, and the mapping to a [`Principal`].
//!
//! `id` = `oid` else `sub`; `tenant` = `tid` (else the issuer's configured tenant);
//! `client_id` = `client_id`, else `azp`, else `appid`; `scopes` from `scope` (space
//! separated) or `scp` (string or array); `roles`, `groups`; `expires_at` = `exp`.

use serde::{Deserialize, Deserializer};

use super::config::IssuerPolicy;
use super::error::VerifyError;
use crate::Principal;

/// A JSON string or array of strings (`aud`, `scp`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> &[String] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }
}

/// A NumericDate (RFC 7519): non-negative seconds, fractions dropped.
fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let number = Option::<serde_json::Number>::deserialize(deserializer)?;
    number
        .map(|n| {
            n.as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.is_finite() && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .ok_or_else(|| serde::de::Error::custom("not a non-negative NumericDate"))
        })
        .transpose()
}

/// The claims the verifier reads; others are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Claims {
    pub(crate) iss: Option<String>,
    sub: Option<String>,
    aud: Option<OneOrMany>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<u64>,
    oid: Option<String>,
    tid: Option<String>,
    client_id: Option<String>,
    azp: Option<String>,
    appid: Option<String>,
    roles: Option<Vec<String>>,
    scope: Option<String>,
    scp: Option<OneOrMany>,
    groups: Option<Vec<String>>,
}

fn shown(value: &str) -> String {
    value.chars().take(128).collect()
}

impl Claims {
    pub(crate) fn parse(payload: &[u8]) -> Result<Self, VerifyError> {
        serde_json::from_slice(payload)
            .map_err(|error| VerifyError::Malformed(format!("claims: {error}")))
    }

    /// Checks times (with `skew` seconds of leeway), audience and tenant against `policy`,
    /// and builds the principal. `iss` was matched when `policy` was chosen.
    pub(crate) fn into_principal(
        self,
        policy: &IssuerPolicy,
        now: u64,
        skew: u64,
    ) -> Result<Principal, VerifyError> {
        let exp = self.exp.ok_or(VerifyError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(skew) {
            return Err(VerifyError::Expired { exp, now });
        }
        if let Some(nbf) = self.nbf
            && nbf > now.saturating_add(skew)
        {
            return Err(VerifyError::NotYetValid { nbf, now });
        }
        if let Some(iat) = self.iat
            && iat > now.saturating_add(skew)
        {
            return Err(VerifyError::IssuedInFuture { iat, now });
        }
        let aud = self.aud.ok_or(VerifyError::MissingClaim("aud"))?;
        if !aud.values().iter().any(|a| policy.audiences.contains(a)) {
            return Err(VerifyError::WrongAudience(
                aud.values().iter().take(8).map(|a| shown(a)).collect(),
            ));
        }
        let subject = self.sub.ok_or(VerifyError::MissingClaim("sub"))?;
        let tenant = match (self.tid, &policy.tenant) {
            (Some(tid), Some(expected)) if &tid != expected => {
                return Err(VerifyError::WrongTenant(shown(&tid)));
            }
            (Some(tid), _) => Some(tid),
            (None, configured) => configured.clone(),
        };
        let scopes = match (self.scope, self.scp) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_owned).collect(),
            (None, Some(OneOrMany::One(scp))) => {
                scp.split_whitespace().map(str::to_owned).collect()
            }
            (None, Some(OneOrMany::Many(scp))) => scp,
            (None, None) => Vec::new(),
        };
        Ok(Principal {
            id: self.oid.unwrap_or_else(|| subject.clone()),
            issuer: policy.issuer.clone(),
            subject,
            tenant,
            client_id: self.client_id.or(self.azp).or(self.appid),
            roles: self.roles.unwrap_or_default(),
            scopes,
            groups: self.groups.unwrap_or_default(),
            audiences: aud.values().to_vec(),
            expires_at: exp,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::verifier::config::IssuerConfig;

    const NOW: u64 = 1_800_000_000;

    fn policy() -> IssuerPolicy {
        IssuerConfig::new("https://idp.example", ["api://a", "api://b"])
            .validate()
            .unwrap()
    }

    fn check(json: serde_json::Value, skew: u64) -> Result<Principal, VerifyError> {
        Claims::parse(json.to_string().as_bytes())?.into_principal(&policy(), NOW, skew)
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "iss": "https://idp.example", "sub": "svc", "aud": "api://a",
            "iat": NOW - 10, "exp": NOW + 300,
        })
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut claims = base();
        claims[key] = value;
        claims
    }

    #[test]
    fn maps_claims_to_principal() {
        let p = check(
            serde_json::json!({
                "iss": "https://idp.example", "sub": "svc", "aud": ["x", "api://b"],
                "exp": NOW + 1, "oid": "obj-1", "tid": "t1", "azp": "app",
                "roles": ["Reader"], "scope": "api:read  api:write", "groups": ["ops"],
            }),
            0,
        )
        .unwrap();
        assert_eq!(p.id, "obj-1");
        assert_eq!(p.subject, "svc");
        assert_eq!(p.issuer, "https://idp.example");
        assert_eq!(p.tenant.as_deref(), Some("t1"));
        assert_eq!(p.client_id.as_deref(), Some("app"));
        assert_eq!(p.roles, ["Reader"]);
        assert_eq!(p.scopes, ["api:read", "api:write"]);
        assert_eq!(p.groups, ["ops"]);
        assert_eq!(p.expires_at, NOW + 1);
    }

    #[test]
    fn id_falls_back_to_sub_and_client_id_to_appid() {
        let p = check(with("appid", "legacy".into()), 0).unwrap();
        assert_eq!(p.id, "svc");
        assert_eq!(p.client_id.as_deref(), Some("legacy"));
        let mut claims = with("client_id", "cid".into());
        claims["azp"] = "azp".into();
        assert_eq!(check(claims, 0).unwrap().client_id.as_deref(), Some("cid"));
    }

    #[test]
    fn scp_string_or_array() {
        assert_eq!(
            check(with("scp", "a b".into()), 0).unwrap().scopes,
            ["a", "b"]
        );
        assert_eq!(
            check(with("scp", serde_json::json!(["c", "d"])), 0)
                .unwrap()
                .scopes,
            ["c", "d"]
        );
    }

    #[test]
    fn expiry_with_and_without_skew() {
        assert_eq!(
            check(with("exp", NOW.into()), 0).unwrap_err(),
            VerifyError::Expired { exp: NOW, now: NOW }
        );
        assert!(check(with("exp", NOW.into()), 60).is_ok());
        assert!(matches!(
            check(with("exp", (NOW - 60).into()), 60),
            Err(VerifyError::Expired { .. })
        ));
        assert!(check(with("exp", (NOW as f64 + 0.5).into()), 1).is_ok());
    }

    #[test]
    fn nbf_and_iat_in_the_future() {
        assert!(matches!(
            check(with("nbf", (NOW + 61).into()), 60),
            Err(VerifyError::NotYetValid { nbf, .. }) if nbf == NOW + 61
        ));
        assert!(check(with("nbf", (NOW + 60).into()), 60).is_ok());
        assert!(matches!(
            check(with("iat", (NOW + 1).into()), 0),
            Err(VerifyError::IssuedInFuture { .. })
        ));
        assert!(check(with("iat", (NOW + 1).into()), 1).is_ok());
    }

    #[test]
    fn audience_must_match_one_accepted() {
        assert_eq!(
            check(with("aud", "api://c".into()), 0).unwrap_err(),
            VerifyError::WrongAudience(vec!["api://c".into()])
        );
        assert!(matches!(
            check(with("aud", serde_json::json!([])), 0),
            Err(VerifyError::WrongAudience(_))
        ));
        assert!(check(with("aud", serde_json::json!(["api://c", "api://a"])), 0).is_ok());
        // Audience comparison is exact.
        assert!(check(with("aud", "api://a/".into()), 0).is_err());
    }

    #[test]
    fn missing_required_claims() {
        for claim in ["exp", "aud", "sub"] {
            let mut claims = base();
            claims.as_object_mut().unwrap().remove(claim);
            assert_eq!(
                check(claims, 0).unwrap_err(),
                VerifyError::MissingClaim(claim)
            );
        }
    }

    #[test]
    fn malformed_claims() {
        for bad in [
            with("exp", "soon".into()),
            with("exp", (-5).into()),
            with("aud", 5.into()),
            with("roles", "Reader".into()),
        ] {
            assert!(matches!(check(bad, 0), Err(VerifyError::Malformed(_))));
        }
        assert!(Claims::parse(b"[1]").is_err());
        assert!(Claims::parse(b"not json").is_err());
    }

    #[test]
    fn tenant_is_checked_when_configured() {
        let mut policy = policy();
        policy.tenant = Some("t1".into());
        let claims = |tid: Option<&str>| {
            let mut c = base();
            if let Some(tid) = tid {
                c["tid"] = tid.into();
            }
            Claims::parse(c.to_string().as_bytes()).unwrap()
        };
        assert_eq!(
            claims(Some("t2"))
                .into_principal(&policy, NOW, 0)
                .unwrap_err(),
            VerifyError::WrongTenant("t2".into())
        );
        let p = claims(None).into_principal(&policy, NOW, 0).unwrap();
        assert_eq!(p.tenant.as_deref(), Some("t1"));
        assert!(claims(Some("t1")).into_principal(&policy, NOW, 0).is_ok());
    }
}
