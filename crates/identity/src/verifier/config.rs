//! Verifier configuration ([`VerifierConfig`], [`IssuerConfig`]) and its validation into the
//! policy the verifier runs with. Defaults and bounds are explained on each field.

use std::path::PathBuf;
use std::time::Duration;

use http::Uri;

use super::error::ConfigError;

/// Largest accepted clock skew.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// How the verifier finds an issuer's keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JwksSource {
    /// OpenID discovery at `{issuer}/.well-known/openid-configuration`, then its `jwks_uri`.
    #[default]
    Discovery,
    /// OpenID discovery at this URL, then its `jwks_uri`.
    DiscoveryUrl(String),
    /// The JWKS at this URL, no discovery.
    JwksUri(String),
}

/// One trusted token issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The `iss` value, matched exactly (no trailing-slash tolerance).
    pub issuer: String,
    /// Where its keys come from.
    pub jwks: JwksSource,
    /// Accepted `aud` values: a token must carry at least one.
    pub audiences: Vec<String>,
    /// Accepted header `typ` values, compared case-insensitively with an optional
    /// `application/` prefix. Default `at+jwt` (RFC 9068) and `JWT`.
    pub token_types: Vec<String>,
    /// Whether a token without `typ` is accepted. Default false.
    pub allow_missing_typ: bool,
    /// The tenant this issuer speaks for: a token's `tid`, when present, must equal it, and
    /// tokens without `tid` are given it.
    pub tenant: Option<String>,
}

impl IssuerConfig {
    /// An issuer found by discovery, accepting `audiences`, with default token types.
    #[must_use]
    pub fn new(
        issuer: impl Into<String>,
        audiences: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            jwks: JwksSource::Discovery,
            audiences: audiences.into_iter().map(Into::into).collect(),
            token_types: vec!["at+jwt".to_owned(), "JWT".to_owned()],
            allow_missing_typ: false,
            tenant: None,
        }
    }
}

/// The verifier's configuration. [`Default`] has no issuer; every other field has the
/// default documented on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Trusted issuers.
    pub issuers: Vec<IssuerConfig>,
    /// Leeway for `exp`, `nbf` and `iat`. Default 60 s, at most [`MAX_CLOCK_SKEW`].
    pub clock_skew: Duration,
    /// How long fetched keys are fresh. Default 10 min; a background refresh starts at 80 %.
    pub jwks_ttl: Duration,
    /// After a failed fetch, no new attempt (background or on stale keys) before this long.
    /// Default 30 s.
    pub refresh_retry_interval: Duration,
    /// Stale-if-error: when refreshing fails, the last good keys keep verifying until this
    /// long after their fetch, then verification fails closed. Default 24 h.
    pub stale_if_error: Duration,
    /// A token with an unknown `kid` refetches the JWKS at most once per this interval per
    /// issuer (single-flight). Default 30 s.
    pub unknown_kid_refetch_interval: Duration,
    /// Verified-token cache capacity; 0 disables the cache (every call checks the
    /// signature). Default 100 000.
    pub cache_capacity: usize,
    /// Timeout of one discovery or JWKS request. Default 10 s.
    pub fetch_timeout: Duration,
    /// Largest discovery or JWKS response body. Default 1 MiB.
    pub max_response_bytes: usize,
    /// A PEM file of extra CA certificates trusted for HTTPS fetches, in addition to the
    /// system roots.
    pub extra_ca_file: Option<PathBuf>,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            clock_skew: Duration::from_secs(60),
            jwks_ttl: Duration::from_secs(600),
            refresh_retry_interval: Duration::from_secs(30),
            stale_if_error: Duration::from_secs(24 * 3600),
            unknown_kid_refetch_interval: Duration::from_secs(30),
            cache_capacity: 100_000,
            fetch_timeout: Duration::from_secs(10),
            max_response_bytes: 1024 * 1024,
            extra_ca_file: None,
        }
    }
}

/// Where the keys of a validated issuer come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Discovery(Uri),
    Jwks(Uri),
}

/// A validated issuer.
#[derive(Debug, Clone)]
pub(crate) struct IssuerPolicy {
    pub(crate) issuer: String,
    pub(crate) source: Source,
    pub(crate) audiences: Vec<String>,
    /// Normalized (lowercase, no `application/`).
    pub(crate) token_types: Vec<String>,
    pub(crate) allow_missing_typ: bool,
    pub(crate) tenant: Option<String>,
}

/// Lowercase, without an `application/` prefix (RFC 7515 section 4.1.9).
pub(crate) fn normalize_typ(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

/// Parses `url` and refuses plain http except to loopback.
pub(crate) fn checked_url(url: &str) -> Result<Uri, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidUrl {
        url: url.chars().take(200).collect(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| invalid("not a url"))?;
    let host = uri.host().ok_or_else(|| invalid("no host"))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") => Ok(uri),
        Some("http") => Err(ConfigError::InsecureUrl(url.chars().take(200).collect())),
        _ => Err(invalid("scheme must be https")),
    }
}

impl IssuerConfig {
    pub(crate) fn validate(&self) -> Result<IssuerPolicy, ConfigError> {
        if self.audiences.is_empty() {
            return Err(ConfigError::NoAudiences(self.issuer.clone()));
        }
        if self.token_types.is_empty() && !self.allow_missing_typ {
            return Err(ConfigError::NoTokenTypes(self.issuer.clone()));
        }
        let source = match &self.jwks {
            JwksSource::Discovery => Source::Discovery(checked_url(&format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            ))?),
            JwksSource::DiscoveryUrl(url) => Source::Discovery(checked_url(url)?),
            JwksSource::JwksUri(url) => Source::Jwks(checked_url(url)?),
        };
        Ok(IssuerPolicy {
            issuer: self.issuer.clone(),
            source,
            audiences: self.audiences.clone(),
            token_types: self.token_types.iter().map(|t| normalize_typ(t)).collect(),
            allow_missing_typ: self.allow_missing_typ,
            tenant: self.tenant.clone(),
        })
    }
}

impl VerifierConfig {
    pub(crate) fn validate(&self) -> Result<Vec<IssuerPolicy>, ConfigError> {
        if self.issuers.is_empty() {
            return Err(ConfigError::NoIssuers);
        }
        if self.clock_skew > MAX_CLOCK_SKEW {
            return Err(ConfigError::ClockSkewTooLarge {
                secs: self.clock_skew.as_secs(),
                max_secs: MAX_CLOCK_SKEW.as_secs(),
            });
        }
        for (name, value) in [
            ("jwks_ttl", self.jwks_ttl),
            ("refresh_retry_interval", self.refresh_retry_interval),
            ("stale_if_error", self.stale_if_error),
            ("fetch_timeout", self.fetch_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if self.max_response_bytes == 0 {
            return Err(ConfigError::ZeroDuration("max_response_bytes"));
        }
        let mut policies: Vec<IssuerPolicy> = Vec::with_capacity(self.issuers.len());
        for issuer in &self.issuers {
            if policies.iter().any(|p| p.issuer == issuer.issuer) {
                return Err(ConfigError::DuplicateIssuer(issuer.issuer.clone()));
            }
            policies.push(issuer.validate()?);
        }
        Ok(policies)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn config(issuer: IssuerConfig) -> VerifierConfig {
        VerifierConfig {
            issuers: vec![issuer],
            ..VerifierConfig::default()
        }
    }

    #[test]
    fn urls_need_https_except_loopback() {
        for ok in [
            "https://idp.example/jwks",
            "http://127.0.0.1:9400/jwks",
            "http://localhost/jwks",
            "http://[::1]:80/x",
        ] {
            assert!(checked_url(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://idp.example/jwks",
            "http://127.0.0.2/jwks",
            "http://10.0.0.1/",
        ] {
            assert!(
                matches!(checked_url(insecure), Err(ConfigError::InsecureUrl(_))),
                "{insecure}"
            );
        }
        for invalid in [
            "",
            "idp.example",
            "ftp://idp.example/x",
            "/jwks",
            "https://",
        ] {
            assert!(
                matches!(checked_url(invalid), Err(ConfigError::InvalidUrl { .. })),
                "{invalid}"
            );
        }
    }

    #[test]
    fn discovery_url_is_derived_from_the_issuer() {
        let policy = IssuerConfig::new("https://login.example/tenant/", ["api"])
            .validate()
            .unwrap();
        let Source::Discovery(url) = policy.source else {
            panic!("discovery expected");
        };
        assert_eq!(
            url.to_string(),
            "https://login.example/tenant/.well-known/openid-configuration"
        );
        assert_eq!(policy.token_types, ["at+jwt", "jwt"]);
    }

    #[test]
    fn rejected_configurations() {
        assert_eq!(
            VerifierConfig::default().validate().unwrap_err(),
            ConfigError::NoIssuers
        );
        let issuer = IssuerConfig::new("https://idp.example", ["api"]);
        let mut skew = config(issuer.clone());
        skew.clock_skew = Duration::from_secs(301);
        assert!(matches!(
            skew.validate(),
            Err(ConfigError::ClockSkewTooLarge { secs: 301, .. })
        ));
        let mut twice = config(issuer.clone());
        twice.issuers.push(issuer.clone());
        assert!(matches!(
            twice.validate(),
            Err(ConfigError::DuplicateIssuer(_))
        ));
        let no_aud = IssuerConfig::new("https://idp.example", Vec::<String>::new());
        assert!(matches!(
            config(no_aud).validate(),
            Err(ConfigError::NoAudiences(_))
        ));
        let mut no_typ = issuer.clone();
        no_typ.token_types.clear();
        assert!(matches!(
            config(no_typ).validate(),
            Err(ConfigError::NoTokenTypes(_))
        ));
        let mut zero_ttl = config(issuer.clone());
        zero_ttl.jwks_ttl = Duration::ZERO;
        assert_eq!(
            zero_ttl.validate().unwrap_err(),
            ConfigError::ZeroDuration("jwks_ttl")
        );
        let http = IssuerConfig::new("http://idp.example", ["api"]);
        assert!(matches!(
            config(http).validate(),
            Err(ConfigError::InsecureUrl(_))
        ));
    }

    #[test]
    fn typ_normalization() {
        assert_eq!(normalize_typ("application/AT+JWT"), "at+jwt");
        assert_eq!(normalize_typ("JWT"), "jwt");
    }
}
