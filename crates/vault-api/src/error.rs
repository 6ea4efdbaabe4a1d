//! [`ApiError`]: every failure of the API as Azure Key Vault shapes it, a status and a body
//! `{"error":{"code","message","innererror"?}}`, plus headers (`WWW-Authenticate`,
//! `Retry-After`). [`ApiError::vault`] maps a [`VaultError`] for a [`Subject`] (the object the
//! request was about) to Azure's codes and messages.
//!
//! Messages copy Azure's wording where clients or people match on it (`SecretNotFound`,
//! `Forbidden` + `SecretDisabled`, `Conflict` + `ObjectIsDeletedButRecoverable`,
//! `Forbidden` + `KeyManagedByKeyVault` / `SecretManagedByKeyVault` (a certificate's key or
//! secret changed directly),
//! `BadParameter` for an unknown api-version, `Unauthorized` `AKV10000`, `Throttled`). Internal
//! failures (storage, integrity, crypto) answer 500 with a generic message; the detail goes
//! to the log, never to the client.

use std::fmt;

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_vault::{ObjectKind, VaultError};
use serde_json::json;

/// The link Azure puts in not-found messages.
const RECOVERY_HELP: &str = "https://go.microsoft.com/fwlink/?linkid=2125182";

/// An API error: status, Azure error code and message, optional inner code, extra headers.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
    inner: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status.as_u16())
            .field("code", &self.code)
            .field("message", &self.message)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// What a request was about, for error messages: the object kind, its name, and whether the
/// operation addresses the deleted object (`/deletedsecrets/...`).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The kind.
    pub kind: ObjectKind,
    /// The name as requested (empty for collection operations).
    pub name: &'a str,
    /// The version, when the request named one.
    pub version: Option<&'a str>,
    /// The operation addresses the deleted object.
    pub deleted: bool,
}

impl<'a> Subject<'a> {
    /// A live object.
    pub fn live(kind: ObjectKind, name: &'a str) -> Self {
        Self {
            kind,
            name,
            version: None,
            deleted: false,
        }
    }

    /// A deleted object.
    pub fn deleted(kind: ObjectKind, name: &'a str) -> Self {
        Self {
            kind,
            name,
            version: None,
            deleted: true,
        }
    }

    /// With a version.
    #[must_use]
    pub fn with_version(mut self, version: Option<&'a str>) -> Self {
        self.version = version.filter(|v| !v.is_empty());
        self
    }

    fn noun(&self) -> &'static str {
        match self.kind {
            ObjectKind::Secret => "secret",
            ObjectKind::Key => "key",
            ObjectKind::Certificate => "certificate",
        }
    }

    fn title(&self) -> &'static str {
        match self.kind {
            ObjectKind::Secret => "Secret",
            ObjectKind::Key => "Key",
            ObjectKind::Certificate => "Certificate",
        }
    }
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            inner: None,
            headers: Vec::new(),
        }
    }

    /// Adds an inner error code (`innererror.code`).
    #[must_use]
    pub fn with_inner(mut self, code: impl Into<String>) -> Self {
        self.inner = Some(code.into());
        self
    }

    /// Adds a response header (a value that is not a valid header is dropped).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The Azure error code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 400 `BadParameter`.
    pub fn bad_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadParameter", message)
    }

    /// 404 for a path this API does not serve.
    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "The requested operation {method} {} is not supported.",
                path.chars().take(200).collect::<String>()
            ),
        )
    }

    /// 405 for a method the path does not support.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The requested HTTP method is not supported for this resource.",
        )
    }

    /// 404 for a Host naming no vault of this deployment.
    pub fn vault_not_found(vault: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            format!(
                "Vault {} was not found in this deployment.",
                vault.chars().take(64).collect::<String>()
            ),
        )
    }

    /// 401 with the Key Vault challenge.
    pub fn unauthorized(message: impl Into<String>, challenge: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
            .with_header(header::WWW_AUTHENTICATE, challenge)
    }

    /// 403 by RBAC.
    pub fn forbidden_by_rbac(principal: &str, action: &str, scope: &str, reason: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "Caller is not authorized to perform action on resource.\r\nCaller: {principal}\r\nAction: '{action}'\r\nResource: '{scope}'\r\nDecisionReason: '{reason}'"
            ),
        )
        .with_inner("ForbiddenByRbac")
    }

    /// 429 `Throttled` with `Retry-After` (seconds).
    pub fn throttled(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Throttled",
            format!(
                "Request was not processed because too many requests were received. Retry after {retry_after_secs} seconds."
            ),
        )
        .with_header(header::RETRY_AFTER, &retry_after_secs.to_string())
    }

    /// 503: the barrier is sealed.
    pub fn sealed() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The vault is sealed: no data operation is possible until it is unsealed.",
        )
        .with_inner("VaultSealed")
    }

    /// 503 `ServiceUnavailable` / `ReadOnlyMode`: the vault is read-only (as during a regional
    /// failover) and refuses changes; reads and cryptographic operations continue. 503 rather
    /// than 403: the state is temporary and not about the caller's rights, and the Azure SDKs
    /// retry 503 with backoff, which rides over a short failover.
    pub fn read_only() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The vault is in read-only mode (as during a regional failover): reads and cryptographic operations continue, but changes are refused until it leaves read-only mode.",
        )
        .with_inner("ReadOnlyMode")
    }

    /// 503: the audit trail cannot record the operation, so it is refused (fail closed).
    pub fn audit_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The operation was refused because the audit trail cannot record it.",
        )
        .with_inner("AuditUnavailable")
    }

    /// 500 with a generic message.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The server encountered an internal error; the request was not completed.",
        )
    }

    /// Maps a vault error about `subject` to Azure's answer.
    pub fn vault(error: VaultError, subject: Subject<'_>) -> Self {
        let noun = subject.noun();
        let title = subject.title();
        let name = subject.name;
        match error {
            VaultError::Sealed | VaultError::NotInitialized => Self::sealed(),
            VaultError::NotFound { .. } if subject.deleted => Self::new(
                StatusCode::NOT_FOUND,
                format!("{title}NotFound"),
                format!("Deleted {title} not found"),
            ),
            VaultError::NotFound { .. } => {
                let id = match subject.version {
                    Some(v) => format!("{name}/{v}"),
                    None => name.to_owned(),
                };
                Self::new(
                    StatusCode::NOT_FOUND,
                    format!("{title}NotFound"),
                    format!(
                        "A {noun} with (name/id) {id} was not found in this key vault. If you recently deleted this {noun} you may be able to recover it using the correct recovery command. For help resolving this issue, please see {RECOVERY_HELP}"
                    ),
                )
            }
            VaultError::DeletedButRecoverable { .. } => Self::new(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "{title} {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the {noun} can only be recovered or purged."
                ),
            )
            .with_inner("ObjectIsDeletedButRecoverable"),
            VaultError::WrongState { .. } => Self::new(
                StatusCode::CONFLICT,
                "Conflict",
                format!("{title} {name} is currently being deleted; retry later."),
            )
            .with_inner("ObjectIsBeingDeleted"),
            VaultError::Disabled { operation, .. } => Self::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("Operation {operation} is not allowed on a disabled {noun}."),
            )
            .with_inner(format!("{title}Disabled")),
            VaultError::PurgeProtected { .. } => Self::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.",
            ),
            VaultError::AlreadyExists { .. } => Self::new(
                StatusCode::CONFLICT,
                "Conflict",
                format!("{title} {name} already exists in this vault."),
            )
            .with_inner("ObjectAlreadyExists"),
            VaultError::InvalidName { what, name, reason } => Self::bad_parameter(format!(
                "The request URI contains an invalid {what}: {name:?} ({reason})."
            )),
            e @ (VaultError::TooLarge { .. }
            | VaultError::InvalidSetting { .. }
            | VaultError::InvalidBackup { .. }
            | VaultError::WrongGeography { .. }
            | VaultError::TooManyVersions { .. }) => Self::bad_parameter(capitalize(&e.to_string())),
            e @ (VaultError::InvalidCertificate { .. } | VaultError::InvalidPolicy { .. }) => {
                Self::bad_parameter(capitalize(&e.to_string()))
            }
            VaultError::ManagedByCertificate { operation, .. } => Self::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "Operation \"{operation}\" is not allowed as this object's lifetime is managed by Key Vault."
                ),
            )
            .with_inner(format!("{title}ManagedByKeyVault")),
            e @ VaultError::PendingOperation { .. } => {
                Self::new(StatusCode::CONFLICT, "Conflict", capitalize(&e.to_string()))
            }
            VaultError::InvalidKeyRequest { reason } => {
                Self::bad_parameter(capitalize(&reason))
            }
            VaultError::KeyOperationNotAllowed { operation, .. } => Self::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("Operation {operation} is not permitted on this key."),
            )
            .with_inner("KeyOperationForbidden"),
            VaultError::KeyNotUsable {
                operation, reason, ..
            } => Self::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("Operation {operation} is not allowed: {reason}."),
            )
            .with_inner("KeyNotYetValidOrExpired"),
            VaultError::Contention { .. } => Self::new(
                StatusCode::CONFLICT,
                "ConflictError",
                format!(
                    "A conflict occurred that prevented the operation from completing: {title} {name} was changed by parallel operations. Retry the operation."
                ),
            ),
            other => {
                tracing::error!(error = %other, "vault operation failed");
                Self::internal()
            }
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let (Some(inner), Some(obj)) = (&self.inner, error.as_object_mut()) {
            obj.insert("innererror".into(), json!({ "code": inner }));
        }
        json!({ "error": error })
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().append(name, value);
        }
        response
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn deleted_but_recoverable_is_azure_409() {
        let e = ApiError::vault(
            VaultError::DeletedButRecoverable { what: "x".into() },
            Subject::live(ObjectKind::Secret, "MySecret"),
        );
        assert_eq!(e.status(), StatusCode::CONFLICT);
        let body = e.body();
        assert_eq!(body["error"]["code"], "Conflict");
        assert_eq!(
            body["error"]["innererror"]["code"],
            "ObjectIsDeletedButRecoverable"
        );
        assert!(
            e.message()
                .starts_with("Secret MySecret is currently in a deleted but recoverable state")
        );
    }

    #[test]
    fn internal_errors_do_not_leak_detail() {
        let e = ApiError::vault(
            VaultError::Integrity {
                path: "vault/data/obj/v/secrets/x".into(),
                reason: "tag mismatch",
            },
            Subject::live(ObjectKind::Secret, "x"),
        );
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message().contains("vault/data"));
    }

    #[test]
    fn disabled_is_forbidden_with_inner_code() {
        let e = ApiError::vault(
            VaultError::Disabled {
                what: "s".into(),
                operation: "get",
            },
            Subject::live(ObjectKind::Secret, "s"),
        );
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            e.message(),
            "Operation get is not allowed on a disabled secret."
        );
        assert_eq!(e.body()["error"]["innererror"]["code"], "SecretDisabled");
    }
}
