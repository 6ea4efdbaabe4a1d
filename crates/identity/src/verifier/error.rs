//! Errors of the verifier: why a token was refused ([`VerifyError`]), why a configuration was
//! refused ([`ConfigError`]), why a JWKS fetch failed ([`FetchError`]).

use crate::jwt::JwtError;

/// Why a token was refused. Values echoed from the token are truncated; the token itself is
/// never part of an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a well-formed compact JWS, or the claims are not a JSON object of the expected
    /// shape.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `none` or an HMAC algorithm.
    #[error("forbidden token algorithm {0:?}")]
    ForbiddenAlgorithm(String),
    /// An algorithm this verifier does not implement.
    #[error("unsupported token algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The token's algorithm is not one the selected key is pinned to.
    #[error("token algorithm {alg} does not fit key {kid:?}")]
    AlgorithmMismatch {
        /// The token's `alg`.
        alg: &'static str,
        /// The key's id.
        kid: Option<String>,
    },
    /// The header's `typ` is not accepted (or missing while required).
    #[error("token type {0:?} not accepted")]
    WrongType(Option<String>),
    /// `iss` names no configured issuer.
    #[error("unknown issuer {0:?}")]
    UnknownIssuer(String),
    /// A required claim is missing.
    #[error("token has no {0} claim")]
    MissingClaim(&'static str),
    /// No key of the issuer's JWKS has this id (after a rate-limited refetch).
    #[error("no key {kid:?} for issuer {issuer}")]
    UnknownKid {
        /// The issuer.
        issuer: String,
        /// The token's `kid`.
        kid: Option<String>,
    },
    /// The signature does not verify.
    #[error("bad token signature")]
    BadSignature,
    /// `exp` is past (beyond the clock skew).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The verifier's clock, Unix seconds.
        now: u64,
    },
    /// `nbf` is ahead (beyond the clock skew).
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `iat` is ahead (beyond the clock skew).
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// No `aud` value is an accepted audience.
    #[error("token audience {0:?} not accepted")]
    WrongAudience(Vec<String>),
    /// `tid` differs from the tenant the issuer is configured for.
    #[error("token tenant {0:?} not accepted")]
    WrongTenant(String),
    /// The issuer's keys could not be fetched and none were ever fetched.
    #[error("keys of issuer {issuer} unavailable: {reason}")]
    JwksUnavailable {
        /// The issuer.
        issuer: String,
        /// The last fetch error.
        reason: String,
    },
    /// The last good keys are older than the stale-if-error limit and refreshing fails:
    /// verification fails closed.
    #[error(
        "keys of issuer {issuer} are stale: last fetched {age_secs} s ago, beyond the {max_secs} s stale-if-error limit ({reason})"
    )]
    JwksStale {
        /// The issuer.
        issuer: String,
        /// Seconds since the last successful fetch.
        age_secs: u64,
        /// The configured limit.
        max_secs: u64,
        /// The last fetch error.
        reason: String,
    },
}

impl VerifyError {
    /// A short stable name for metrics labels (`expired`, `bad_signature`...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::ForbiddenAlgorithm(_) => "forbidden_algorithm",
            Self::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            Self::AlgorithmMismatch { .. } => "algorithm_mismatch",
            Self::WrongType(_) => "wrong_type",
            Self::UnknownIssuer(_) => "unknown_issuer",
            Self::MissingClaim(_) => "missing_claim",
            Self::UnknownKid { .. } => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::IssuedInFuture { .. } => "issued_in_future",
            Self::WrongAudience(_) => "wrong_audience",
            Self::WrongTenant(_) => "wrong_tenant",
            Self::JwksUnavailable { .. } => "jwks_unavailable",
            Self::JwksStale { .. } => "jwks_stale",
        }
    }
}

impl From<JwtError> for VerifyError {
    fn from(error: JwtError) -> Self {
        match error {
            JwtError::ForbiddenAlgorithm(alg) => Self::ForbiddenAlgorithm(alg),
            JwtError::UnsupportedAlgorithm(alg) => Self::UnsupportedAlgorithm(alg),
            JwtError::BadSignature => Self::BadSignature,
            JwtError::AlgorithmMismatch { alg, .. } => Self::AlgorithmMismatch { alg, kid: None },
            other => Self::Malformed(other.to_string()),
        }
    }
}

/// Why a verifier configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No issuer configured.
    #[error("no issuer configured")]
    NoIssuers,
    /// The same issuer twice.
    #[error("issuer {0:?} configured twice")]
    DuplicateIssuer(String),
    /// An issuer without accepted audiences.
    #[error("issuer {0:?} has no accepted audience")]
    NoAudiences(String),
    /// An issuer that accepts no token type.
    #[error("issuer {0:?} accepts no token type")]
    NoTokenTypes(String),
    /// A URL that does not parse as an absolute http(s) URL.
    #[error("invalid url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A plain-http URL to a host other than loopback.
    #[error("url {0:?} must use https (plain http only for 127.0.0.1, ::1 or localhost)")]
    InsecureUrl(String),
    /// A clock skew beyond the bound.
    #[error("clock skew {secs} s is more than the {max_secs} s allowed")]
    ClockSkewTooLarge {
        /// The configured skew.
        secs: u64,
        /// The bound.
        max_secs: u64,
    },
    /// A duration that must be positive is zero.
    #[error("{0} must be more than zero")]
    ZeroDuration(&'static str),
    /// The extra CA file cannot be read or holds no certificate.
    #[error("ca file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The TLS client cannot be built.
    #[error("tls client: {0}")]
    Tls(String),
}

/// Why fetching a discovery document or a JWKS failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Connection or protocol failure.
    #[error("request to {url} failed: {reason}")]
    Request {
        /// The URL.
        url: String,
        /// The failure.
        reason: String,
    },
    /// No answer within the fetch timeout.
    #[error("request to {url} timed out after {secs} s")]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout.
        secs: u64,
    },
    /// An answer other than 200.
    #[error("{url} answered status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A body larger than the limit.
    #[error("{url} answered more than {max} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        max: usize,
    },
    /// A body that is not the JSON document expected.
    #[error("{url} answered an invalid document: {reason}")]
    Invalid {
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A discovery document naming another issuer, or a jwks_uri that is not allowed.
    #[error("discovery at {url}: {reason}")]
    Discovery {
        /// The discovery URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A JWKS without a single usable signature key.
    #[error("{url} has no usable signature key ({skipped} skipped)")]
    NoUsableKeys {
        /// The JWKS URL.
        url: String,
        /// Keys skipped as unusable.
        skipped: usize,
    },
}
