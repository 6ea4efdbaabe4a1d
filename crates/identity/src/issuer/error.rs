//! The issuer's errors: [`IssuerError`] for operators and storage, [`OAuthError`] for what a
//! token request is answered with (RFC 6749 §5.2).

use std::path::PathBuf;

use serde_json::json;

/// Why an issuer operation failed (storage, crypto, a bad registration).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The storage backend failed.
    #[error("issuer storage: {0}")]
    Storage(#[from] rampart_storage::StorageError),
    /// The audit log refused a record, so the operation was refused (fail closed).
    #[error("the audit log cannot record the operation: {0}")]
    Audit(#[from] rampart_audit::AuditError),
    /// A cryptographic primitive failed (no randomness, a key aws-lc-rs rejected).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// A stored record does not decode, or does not decrypt under the key-encryption key.
    #[error("stored issuer record {key} is unusable: {reason}")]
    Corrupt {
        /// The storage key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key-encryption key file cannot be read or written.
    #[error("key-encryption key {path}: {reason}")]
    Kek {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A client or workload name outside `[A-Za-z0-9._-]{1,64}`.
    #[error("invalid name {0:?}: use 1 to 64 letters, digits, '.', '_' or '-'")]
    InvalidName(String),
    /// A client or workload with that name exists already.
    #[error("{kind} {name:?} already exists")]
    Exists {
        /// `client` or `workload`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// No client or workload with that name.
    #[error("no {kind} named {name:?}")]
    NotFound {
        /// `client` or `workload`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A public key that cannot verify anything (unsupported type, bad coordinates, private
    /// parts present).
    #[error("invalid jwk: {0}")]
    InvalidJwk(String),
    /// A scope or resource that is not usable in a registration.
    #[error("invalid scope or resource {0:?}")]
    InvalidScope(String),
    /// The issuer settings are unusable.
    #[error("invalid issuer settings: {0}")]
    InvalidConfig(String),
}

/// The `error` code of an OAuth error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// A parameter is missing, repeated or malformed.
    InvalidRequest,
    /// Client authentication failed (HTTP 401).
    InvalidClient,
    /// The assertion or grant is invalid.
    InvalidGrant,
    /// The client may not use this grant.
    UnauthorizedClient,
    /// Only `client_credentials` is supported.
    UnsupportedGrantType,
    /// A scope the client may not have.
    InvalidScope,
    /// A resource (audience) the client may not have (RFC 8707).
    InvalidTarget,
    /// The caller may not use this endpoint at all (HTTP 403).
    AccessDenied,
    /// The issuer failed (HTTP 500); details are in the log, not the response.
    ServerError,
}

impl OAuthErrorCode {
    /// The code as it appears on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
        }
    }
}

/// An OAuth error answer: status code and JSON body (`error`, `error_description`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    /// The error code.
    pub code: OAuthErrorCode,
    /// A human-readable description (never holds a secret).
    pub description: String,
    /// The HTTP status to answer with.
    pub status: u16,
    /// Whether to add `WWW-Authenticate: Basic realm=...` (the client used HTTP Basic and
    /// failed, RFC 6749 §5.2).
    pub basic_challenge: bool,
}

impl OAuthError {
    /// An error with the status RFC 6749 gives its code (400, 401 for `invalid_client`, 403
    /// for `access_denied`, 500 for `server_error`).
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        let status = match code {
            OAuthErrorCode::InvalidClient => 401,
            OAuthErrorCode::AccessDenied => 403,
            OAuthErrorCode::ServerError => 500,
            _ => 400,
        };
        Self {
            code,
            description: description.into(),
            status,
            basic_challenge: false,
        }
    }

    pub(crate) fn request(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, description)
    }

    pub(crate) fn client(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, description)
    }

    pub(crate) fn server(error: &IssuerError) -> Self {
        tracing::error!(%error, "token issuance failed");
        Self::new(
            OAuthErrorCode::ServerError,
            "the issuer failed; see its log",
        )
    }

    /// The JSON body.
    #[must_use]
    pub fn body(&self) -> serde_json::Value {
        json!({ "error": self.code.as_str(), "error_description": self.description })
    }
}
