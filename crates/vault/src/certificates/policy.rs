//! Certificate policies in Azure Key Vault's JSON shape (`key_props`, `secret_props`,
//! `x509_props`, `lifetime_actions`, `issuer`, `attributes`), with the defaults Azure applies
//! and the validation it does. [`Policy::resolve`] turns a request's policy into a complete
//! one; [`merge_patch`] applies a PATCH.

use serde::{Deserialize, Serialize};

use super::x509::{Curve, KeyKind};
use crate::error::{Result, VaultError};

/// `application/x-pkcs12`: the secret is a base64 PFX.
pub const CONTENT_TYPE_PKCS12: &str = "application/x-pkcs12";
/// `application/x-pem-file`: the secret is PEM text (key, then chain).
pub const CONTENT_TYPE_PEM: &str = "application/x-pem-file";
/// Longest validity accepted (months).
pub const MAX_VALIDITY_MONTHS: u32 = 1200;

fn invalid(reason: impl Into<String>) -> VaultError {
    VaultError::InvalidPolicy {
        reason: reason.into(),
    }
}

/// A JSON key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    /// RSA.
    #[serde(rename = "RSA")]
    Rsa,
    /// RSA in an HSM (served by the same software keys here).
    #[serde(rename = "RSA-HSM")]
    RsaHsm,
    /// Elliptic curve.
    #[serde(rename = "EC")]
    Ec,
    /// Elliptic curve in an HSM.
    #[serde(rename = "EC-HSM")]
    EcHsm,
}

impl KeyType {
    /// Whether this is an EC type.
    pub fn is_ec(self) -> bool {
        matches!(self, Self::Ec | Self::EcHsm)
    }
}

/// `key_props`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyProperties {
    /// Whether the private key can be exported (through the secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exportable: Option<bool>,
    /// Key type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kty: Option<KeyType>,
    /// RSA modulus size in bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    /// Reuse the key on renewal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reuse_key: Option<bool>,
    /// EC curve (`P-256`, `P-384`, `P-521`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
}

/// `secret_props`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretProperties {
    /// The secret's content type.
    #[serde(rename = "contentType", skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// `x509_props.sans`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectAlternativeNames {
    /// E-mail addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<String>>,
    /// DNS names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_names: Option<Vec<String>>,
    /// User principal names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upns: Option<Vec<String>>,
}

impl SubjectAlternativeNames {
    fn is_empty(&self) -> bool {
        [&self.emails, &self.dns_names, &self.upns]
            .iter()
            .all(|v| v.as_ref().is_none_or(Vec::is_empty))
    }
}

/// `x509_props`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct X509Properties {
    /// Subject (`CN=...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Extended key usage OIDs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ekus: Option<Vec<String>>,
    /// Subject alternative names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sans: Option<SubjectAlternativeNames>,
    /// Key usages (`digitalSignature`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_usage: Option<Vec<String>>,
    /// Validity in months.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_months: Option<u32>,
}

/// A lifetime action's trigger: exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// Percentage of the lifetime (1-99).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_percentage: Option<u32>,
    /// Days before expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_before_expiry: Option<u32>,
}

impl Trigger {
    /// When the trigger fires for a certificate valid from `not_before` to `expires` (Unix
    /// seconds): after `lifetime_percentage` percent of the validity period, or
    /// `days_before_expiry` days before `expires`. `None` without a trigger.
    pub fn due_at(&self, not_before: i64, expires: i64) -> Option<i64> {
        match (self.lifetime_percentage, self.days_before_expiry) {
            (Some(percent), _) => {
                let lifetime = expires.saturating_sub(not_before).max(0);
                Some(
                    not_before
                        .saturating_add(lifetime.saturating_mul(i64::from(percent.min(100))) / 100),
                )
            }
            (None, Some(days)) => Some(expires.saturating_sub(i64::from(days) * 86_400)),
            (None, None) => None,
        }
    }
}

/// What a lifetime action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionType {
    /// Renew the certificate.
    AutoRenew,
    /// E-mail the certificate contacts.
    EmailContacts,
}

/// A lifetime action's action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// The action type.
    pub action_type: ActionType,
}

/// A lifetime action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifetimeAction {
    /// When.
    pub trigger: Trigger,
    /// What.
    pub action: Action,
}

/// `issuer`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerParameters {
    /// `Self`, `Unknown` or a configured issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Certificate type requested of the issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cty: Option<String>,
    /// Whether the issuer should publish to certificate transparency logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_transparency: Option<bool>,
}

/// The policy's own attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyAttributes {
    /// Whether certificates made under the policy are enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Creation (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// Last update (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<i64>,
}

/// A certificate policy. Unknown fields (like `id`) are ignored when reading.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Key properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_props: Option<KeyProperties>,
    /// Secret properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_props: Option<SecretProperties>,
    /// X.509 properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x509_props: Option<X509Properties>,
    /// Lifetime actions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime_actions: Option<Vec<LifetimeAction>>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<IssuerParameters>,
    /// Attributes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<PolicyAttributes>,
}

/// Who issues a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerKind {
    /// Self-signed by the vault now.
    SelfSigned,
    /// An external CA: a CSR, completed by merge.
    Unknown,
}

const KEY_USAGES: [&str; 9] = [
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
];

impl Policy {
    /// The key properties (present after [`Policy::resolve`]).
    pub fn key(&self) -> KeyProperties {
        self.key_props.clone().unwrap_or_default()
    }

    /// The issuer kind, from the issuer name (case-insensitive).
    pub fn issuer_kind(&self) -> Result<IssuerKind> {
        let name = self
            .issuer
            .as_ref()
            .and_then(|i| i.name.as_deref())
            .ok_or_else(|| invalid("the policy names no issuer"))?;
        if name.eq_ignore_ascii_case("Self") {
            Ok(IssuerKind::SelfSigned)
        } else if name.eq_ignore_ascii_case("Unknown") {
            Ok(IssuerKind::Unknown)
        } else {
            Err(invalid(format!(
                "issuer {:?} is not supported (use Self or Unknown)",
                name.chars().take(64).collect::<String>()
            )))
        }
    }

    /// The secret's content type.
    pub fn content_type(&self) -> &str {
        self.secret_props
            .as_ref()
            .and_then(|s| s.content_type.as_deref())
            .unwrap_or(CONTENT_TYPE_PKCS12)
    }

    /// Whether the private key is exportable (default true).
    pub fn exportable(&self) -> bool {
        self.key_props
            .as_ref()
            .and_then(|k| k.exportable)
            .unwrap_or(true)
    }

    /// The key a new certificate needs.
    pub fn key_kind(&self) -> Result<KeyKind> {
        let key = self.key();
        let kty = key.kty.unwrap_or(KeyType::Rsa);
        if kty.is_ec() {
            let curve = match (&key.crv, key.key_size) {
                (Some(crv), _) => Curve::from_jwk_name(crv).ok_or_else(|| {
                    invalid(format!(
                        "curve {:?} is not supported (P-256, P-384, P-521)",
                        crv.chars().take(16).collect::<String>()
                    ))
                })?,
                (None, None | Some(256)) => Curve::P256,
                (None, Some(384)) => Curve::P384,
                (None, Some(521)) => Curve::P521,
                (None, Some(n)) => {
                    return Err(invalid(format!("EC key size {n} is not supported")));
                }
            };
            Ok(KeyKind::Ec(curve))
        } else {
            match key.key_size.unwrap_or(2048) {
                n @ (2048 | 3072 | 4096) => Ok(KeyKind::Rsa(n)),
                n => Err(invalid(format!(
                    "RSA key size {n} is not supported (2048, 3072, 4096)"
                ))),
            }
        }
    }

    /// Fills Azure's defaults and checks the policy: key type and size/curve, content type,
    /// subject or SANs (when `need_subject`), validity, key usages, EKUs, lifetime actions.
    /// `now` stamps the policy's attributes.
    pub fn resolve(mut self, need_subject: bool, now: i64) -> Result<Self> {
        let kind = self.key_kind()?;
        let mut key = self.key();
        match kind {
            KeyKind::Rsa(bits) => {
                key.kty = Some(key.kty.unwrap_or(KeyType::Rsa));
                key.key_size = Some(bits);
                key.crv = None;
            }
            KeyKind::Ec(curve) => {
                key.key_size = Some(curve.bits());
                key.crv = Some(curve.jwk_name().to_owned());
            }
        }
        key.exportable = Some(key.exportable.unwrap_or(true));
        key.reuse_key = Some(key.reuse_key.unwrap_or(false));
        self.key_props = Some(key);

        let content_type = self.content_type().to_owned();
        if content_type != CONTENT_TYPE_PKCS12 && content_type != CONTENT_TYPE_PEM {
            return Err(invalid(format!(
                "content type {:?} is not supported ({CONTENT_TYPE_PKCS12}, {CONTENT_TYPE_PEM})",
                content_type.chars().take(64).collect::<String>()
            )));
        }
        self.secret_props = Some(SecretProperties {
            content_type: Some(content_type),
        });

        let mut x509 = self.x509_props.clone().unwrap_or_default();
        let has_subject = x509
            .subject
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty());
        let has_sans = x509.sans.as_ref().is_some_and(|s| !s.is_empty());
        if need_subject && !has_subject && !has_sans {
            return Err(invalid(
                "the policy needs a subject or subject alternative names",
            ));
        }
        if need_subject && !has_subject {
            // rcgen needs a name; Azure allows SAN-only certificates with an empty subject.
            x509.subject = Some(String::new());
        }
        let months = x509.validity_months.unwrap_or(12);
        if months == 0 || months > MAX_VALIDITY_MONTHS {
            return Err(invalid(format!(
                "validity_months {months} is outside 1-{MAX_VALIDITY_MONTHS}"
            )));
        }
        x509.validity_months = Some(months);
        for usage in x509.key_usage.iter().flatten() {
            if !KEY_USAGES.contains(&usage.as_str()) {
                return Err(invalid(format!(
                    "key usage {:?} is not one of {KEY_USAGES:?}",
                    usage.chars().take(32).collect::<String>()
                )));
            }
        }
        if x509.key_usage.as_ref().is_none_or(Vec::is_empty) {
            x509.key_usage = Some(match kind {
                KeyKind::Rsa(_) => vec!["digitalSignature".into(), "keyEncipherment".into()],
                KeyKind::Ec(_) => vec!["digitalSignature".into(), "keyAgreement".into()],
            });
        }
        for eku in x509.ekus.iter().flatten() {
            let ok =
                eku.split('.').count() >= 2 && eku.split('.').all(|a| a.parse::<u64>().is_ok());
            if !ok {
                return Err(invalid(format!(
                    "extended key usage {:?} is not an OID",
                    eku.chars().take(64).collect::<String>()
                )));
            }
        }
        if x509.ekus.is_none() {
            x509.ekus = Some(vec!["1.3.6.1.5.5.7.3.1".into(), "1.3.6.1.5.5.7.3.2".into()]);
        }
        self.x509_props = Some(x509);

        let issuer_kind = self.issuer_kind().ok();
        if self.lifetime_actions.is_none() {
            self.lifetime_actions = Some(vec![LifetimeAction {
                trigger: Trigger {
                    lifetime_percentage: Some(80),
                    days_before_expiry: None,
                },
                action: Action {
                    action_type: if issuer_kind == Some(IssuerKind::SelfSigned) {
                        ActionType::AutoRenew
                    } else {
                        ActionType::EmailContacts
                    },
                },
            }]);
        }
        for action in self.lifetime_actions.iter().flatten() {
            match (
                action.trigger.lifetime_percentage,
                action.trigger.days_before_expiry,
            ) {
                (Some(p), None) if (1..=99).contains(&p) => {}
                (None, Some(d)) if d >= 1 && d < months.saturating_mul(31) => {}
                _ => {
                    return Err(invalid(
                        "a lifetime action needs exactly one trigger: lifetime_percentage 1-99 or days_before_expiry within the validity",
                    ));
                }
            }
            if action.action.action_type == ActionType::AutoRenew
                && issuer_kind == Some(IssuerKind::Unknown)
            {
                return Err(invalid("AutoRenew is not possible with issuer Unknown"));
            }
        }
        let mut attrs = self.attributes.clone().unwrap_or_default();
        attrs.enabled = Some(attrs.enabled.unwrap_or(true));
        attrs.created = Some(attrs.created.unwrap_or(now));
        attrs.updated = Some(now);
        self.attributes = Some(attrs);
        Ok(self)
    }
}

/// Applies a JSON merge of `patch` onto `current` (objects merged field by field, arrays and
/// values replaced, `null` ignored) and re-reads the result as a policy.
pub fn merge_patch(current: &Policy, patch: &serde_json::Value) -> Result<Policy> {
    fn merge(into: &mut serde_json::Value, patch: &serde_json::Value) {
        match (into, patch) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    if v.is_null() {
                        continue;
                    }
                    match a.get_mut(k) {
                        Some(slot) => merge(slot, v),
                        None => {
                            a.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            (slot, v) => *slot = v.clone(),
        }
    }
    let mut value = serde_json::to_value(current).map_err(|e| invalid(e.to_string()))?;
    merge(&mut value, patch);
    serde_json::from_value(value).map_err(|e| invalid(format!("policy does not parse: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Policy {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_follow_azure() {
        let p = parse(r#"{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=DefaultPolicy"}}"#)
            .resolve(true, 10)
            .unwrap();
        let key = p.key();
        assert_eq!(key.kty, Some(KeyType::Rsa));
        assert_eq!(key.key_size, Some(2048));
        assert_eq!((key.exportable, key.reuse_key), (Some(true), Some(false)));
        assert_eq!(p.content_type(), CONTENT_TYPE_PKCS12);
        assert_eq!(p.x509_props.as_ref().unwrap().validity_months, Some(12));
        assert_eq!(
            p.lifetime_actions.as_ref().unwrap()[0].action.action_type,
            ActionType::AutoRenew
        );
        assert_eq!(p.issuer_kind().unwrap(), IssuerKind::SelfSigned);
        let ec = parse(r#"{"issuer":{"name":"unknown"},"key_props":{"kty":"EC","crv":"P-384"},"x509_props":{"subject":"CN=x"}}"#)
            .resolve(true, 10)
            .unwrap();
        assert_eq!(ec.key_kind().unwrap(), KeyKind::Ec(Curve::P384));
        assert_eq!(ec.issuer_kind().unwrap(), IssuerKind::Unknown);
    }

    #[test]
    fn each_bad_policy_is_refused() {
        for bad in [
            r#"{"issuer":{"name":"Self"}}"#,
            r#"{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=x","validity_months":0}}"#,
            r#"{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=x","validity_months":5000}}"#,
            r#"{"issuer":{"name":"Self"},"key_props":{"kty":"RSA","key_size":1024},"x509_props":{"subject":"CN=x"}}"#,
            r#"{"issuer":{"name":"Self"},"key_props":{"kty":"EC","crv":"P-256K"},"x509_props":{"subject":"CN=x"}}"#,
            r#"{"issuer":{"name":"Self"},"secret_props":{"contentType":"text/plain"},"x509_props":{"subject":"CN=x"}}"#,
            r#"{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=x","key_usage":["everything"]}}"#,
            r#"{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=x","ekus":["serverAuth"]}}"#,
            r#"{"issuer":{"name":"Unknown"},"x509_props":{"subject":"CN=x"},"lifetime_actions":[{"trigger":{"lifetime_percentage":80},"action":{"action_type":"AutoRenew"}}]}"#,
            r#"{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=x"},"lifetime_actions":[{"trigger":{"lifetime_percentage":80,"days_before_expiry":3},"action":{"action_type":"EmailContacts"}}]}"#,
            r#"{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=x"},"lifetime_actions":[{"trigger":{"lifetime_percentage":100},"action":{"action_type":"EmailContacts"}}]}"#,
        ] {
            let policy = parse(bad);
            let out = policy
                .resolve(true, 0)
                .and_then(|p| p.issuer_kind().map(|_| p));
            assert!(
                matches!(out, Err(VaultError::InvalidPolicy { .. })),
                "{bad}"
            );
        }
        let digicert = parse(r#"{"issuer":{"name":"DigiCert"},"x509_props":{"subject":"CN=x"}}"#);
        assert!(digicert.issuer_kind().is_err());
    }

    #[test]
    fn triggers_fire_at_a_share_of_the_lifetime_or_days_before_expiry() {
        let percent = |p| Trigger {
            lifetime_percentage: Some(p),
            days_before_expiry: None,
        };
        // Valid 0..1000: 80% of the lifetime is 800.
        assert_eq!(percent(80).due_at(0, 1000), Some(800));
        assert_eq!(percent(1).due_at(500, 1500), Some(510));
        let day = 86_400;
        let days = Trigger {
            lifetime_percentage: None,
            days_before_expiry: Some(10),
        };
        assert_eq!(days.due_at(0, 30 * day), Some(20 * day));
        assert_eq!(Trigger::default().due_at(0, 30 * day), None);
    }

    #[test]
    fn patch_merges_fields() {
        let p = parse(
            r#"{"issuer":{"name":"Self"},"x509_props":{"subject":"CN=a","validity_months":12}}"#,
        )
        .resolve(true, 1)
        .unwrap();
        let patched = merge_patch(
            &p,
            &serde_json::json!({"x509_props":{"validity_months":24},"key_props":{"exportable":false},"id":"x"}),
        )
        .unwrap()
        .resolve(true, 2)
        .unwrap();
        let x = patched.x509_props.as_ref().unwrap();
        assert_eq!(
            (x.subject.as_deref(), x.validity_months),
            (Some("CN=a"), Some(24))
        );
        assert_eq!(patched.key().exportable, Some(false));
        assert_eq!(patched.attributes.as_ref().unwrap().created, Some(1));
        assert!(merge_patch(&p, &serde_json::json!({"key_props":{"kty":"DSA"}})).is_err());
    }
}
