//! The per-request context every route handler starts from: [`Ctx`], an axum extractor that
//! resolves the **vault** from the `Host` header, checks the **api-version**, and carries the
//! bearer token, request id and client address. From it a handler:
//!
//! 1. calls [`Ctx::authorize`] with its [`Operation`] and the object's RBAC scope
//!    ([`Ctx::vault_scope`] / [`Ctx::object_scope`]): 401 challenge without a token, the
//!    [`Authorizer`](crate::Authorizer)'s decision otherwise, read-only mode (writes refused),
//!    throttling, and audit (denials always; writes are recorded durably **before** they run,
//!    fail closed) — or [`Ctx::check`] then [`Ctx::admit`] with a throttle class that depends
//!    on the object (keys);
//! 2. parses its body with [`Ctx::json`] (400 `BadParameter`, never axum's plain text);
//! 3. builds ids with [`Ctx::object_id`] and pages with [`Ctx::paging`] / [`Ctx::next_link`];
//! 4. returns through [`Access::finish`], which records the outcome of reads and failures.
//!
//! The vault is chosen by host: `{vault}.{domain}` selects `vault`; an IP literal,
//! `localhost` or the bare domain selects the configured default vault; anything else (or a
//! vault that does not exist) is a 404.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use rampart_audit::{Decision, Record};
use rampart_vault::{ObjectKind, VaultError, VaultInfo};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::VaultApi;
use crate::auth::{AuthDecision, AuthRequest};
use crate::error::ApiError;

/// api-versions this API accepts (the newest first).
pub const API_VERSIONS: &[&str] = &[
    "2026-04-01",
    "2025-07-01",
    "7.6",
    "7.5",
    "7.4",
    "7.3",
    "7.2",
    "7.1",
    "7.0",
];
/// The newest api-version.
pub const LATEST_API_VERSION: &str = "2026-04-01";
/// Default and largest page size (Azure: 25).
pub const MAX_RESULTS: usize = 25;

/// What an operation is, for authorization, throttling and audit. Declare one `static` per
/// operation in the route module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The audit action, e.g. `secret.get`.
    pub audit_action: &'static str,
    /// The Key Vault data action checked by RBAC.
    pub data_action: &'static str,
    /// A throttle class with its own limit (see [`crate::throttle`]), if any.
    pub throttle_class: Option<&'static str>,
    /// The operation changes state: audited durably before it runs (fail closed).
    pub write: bool,
}

/// The request context (an axum extractor; rejections are [`ApiError`]s, audited).
#[derive(Debug)]
pub struct Ctx {
    api: VaultApi,
    vault: VaultInfo,
    host: String,
    api_version: &'static str,
    query: Vec<(String, String)>,
    token: Option<Zeroizing<String>>,
    request_id: String,
    source: Option<SocketAddr>,
    method: String,
    path: String,
}

/// A successful authorization: who, for which operation on which resource. Finish the
/// request through [`Access::finish`].
#[derive(Debug)]
pub struct Access {
    api: VaultApi,
    principal: String,
    op: &'static Operation,
    resource: String,
    request_id: String,
    source: Option<SocketAddr>,
}

/// A caller that passed authentication and RBAC for an operation ([`Ctx::check`]); admit it
/// with [`Ctx::admit`]. Only [`Ctx::check`] makes one.
#[derive(Debug)]
pub struct Checked {
    principal: String,
    op: &'static Operation,
    scope: String,
}

impl Checked {
    /// The principal id.
    pub fn principal(&self) -> &str {
        &self.principal
    }
}

/// A page request: how many items, and after which marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    /// Page size (1-25).
    pub max: usize,
    /// Continue after this marker (a lowercased name or version id).
    pub start_after: Option<String>,
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn parse_query(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(query) = query else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (percent_decode(k), percent_decode(v)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(ApiError::bad_parameter(
                    "The query string is not valid percent-encoded UTF-8.",
                )),
            }
        })
        .collect()
}

/// The vault a host name selects: `Some(name)` for `{name}.{domain}`, the default vault for an
/// IP literal, `localhost` or the bare domain, `None` otherwise.
pub fn vault_for_host(host: &str, domain: &str, default_vault: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let hostname = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest
            .split_once(']')
            .filter(|(ip, _)| ip.parse::<IpAddr>().is_ok())
            .map(|_| default_vault.to_owned());
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
            _ => host.clone(),
        }
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if hostname.parse::<IpAddr>().is_ok() || hostname == "localhost" || hostname == domain {
        return Some(default_vault.to_owned());
    }
    let label = hostname.strip_suffix(&domain)?.strip_suffix('.')?;
    (!label.is_empty() && !label.contains('.')).then(|| label.to_owned())
}

fn host_of(parts: &Parts) -> Option<String> {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    ok.then_some(host)
}

fn bearer(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
        .then(|| Zeroizing::new(token.to_owned()))
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-ms-client-request-id")
        .and_then(|h| h.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map_or_else(new_request_id, str::to_owned)
}

/// A fresh request id, shaped like a random (v4) UUID: two splitmix64 outputs of a counter
/// under a per-process random seed. Unique within the process, unpredictable without the seed,
/// and without a `getrandom` system call per request.
fn new_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<(u64, u64)> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    fn splitmix64(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let (a, b) = *SEED.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let bits = (u128::from(splitmix64(a ^ n)) << 64) | u128::from(splitmix64(b.wrapping_add(n)));
    uuid::Builder::from_random_bytes(bits.to_be_bytes())
        .into_uuid()
        .hyphenated()
        .to_string()
}

impl FromRequestParts<VaultApi> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &VaultApi) -> Result<Self, ApiError> {
        let request_id = request_id(&parts.headers);
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let method = parts.method.to_string();
        let path = parts.uri.path().to_owned();
        let result = Self::resolve(parts, api).await;
        match result {
            Ok((vault, host, api_version, query)) => Ok(Self {
                api: api.clone(),
                vault,
                host,
                api_version,
                query,
                token: bearer(&parts.headers),
                request_id,
                source,
                method,
                path,
            }),
            Err(error) => {
                let mut record = Record::new("vault", "request", Decision::Deny)
                    .resource(format!(
                        "{method} {}",
                        path.chars().take(256).collect::<String>()
                    ))
                    .reason(format!("{}: {}", error.code(), error.message()))
                    .request_id(request_id);
                if let Some(source) = source {
                    record = record.source(source);
                }
                api.auditor().record_routine(record);
                Err(error)
            }
        }
    }
}

type Resolved = (VaultInfo, String, &'static str, Vec<(String, String)>);

impl Ctx {
    async fn resolve(parts: &Parts, api: &VaultApi) -> Result<Resolved, ApiError> {
        let query = parse_query(parts.uri.query())?;
        let version = query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("api-version"))
            .map(|(_, v)| v.as_str());
        let api_version = match version {
            None => {
                return Err(ApiError::bad_parameter(format!(
                    "The api-version query parameter is missing. Consider using the latest supported version ({LATEST_API_VERSION})."
                )));
            }
            Some(v) => API_VERSIONS
                .iter()
                .find(|known| **known == v)
                .copied()
                .ok_or_else(|| {
                    ApiError::bad_parameter(format!(
                        "The specified version ({}) is not recognized. Consider using the latest supported version ({LATEST_API_VERSION}).",
                        v.chars().take(32).collect::<String>()
                    ))
                })?,
        };
        let host = host_of(parts)
            .ok_or_else(|| ApiError::bad_parameter("The request has no valid Host header."))?;
        let config = api.config();
        let name = vault_for_host(&host, &config.domain, &config.default_vault)
            .ok_or_else(|| ApiError::vault_not_found(&host))?;
        let vault = api.vault(&name).await.map_err(|e| match e {
            VaultError::Sealed | VaultError::NotInitialized => ApiError::sealed(),
            VaultError::NotFound { .. } => ApiError::vault_not_found(&name),
            other => {
                tracing::error!(error = %other, "vault lookup failed");
                ApiError::internal()
            }
        })?;
        Ok((vault, host, api_version, query))
    }

    /// The vault.
    pub fn vault(&self) -> &VaultInfo {
        &self.vault
    }

    /// The API state.
    pub fn api(&self) -> &VaultApi {
        &self.api
    }

    /// The api-version the client asked for.
    pub fn api_version(&self) -> &'static str {
        self.api_version
    }

    /// The request's Host (with port), as the base of ids.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A query parameter (case-insensitive name).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `https://{host}`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.host)
    }

    /// `https://{host}/{collection}/{name}[/{version}]`, e.g. `collection` = `secrets`.
    pub fn object_id(&self, collection: &str, name: &str, version: Option<&str>) -> String {
        match version {
            Some(v) => format!("{}/{collection}/{name}/{v}", self.base_url()),
            None => format!("{}/{collection}/{name}", self.base_url()),
        }
    }

    /// The RBAC scope of the vault: `/vaults/{vault}`.
    pub fn vault_scope(&self) -> String {
        format!("/vaults/{}", self.vault.name)
    }

    /// The RBAC scope of an object: `/vaults/{vault}/{kind}/{name}` (name lowercased).
    pub fn object_scope(&self, kind: ObjectKind, name: &str) -> String {
        format!(
            "/vaults/{}/{}/{}",
            self.vault.name,
            kind.as_str(),
            name.to_ascii_lowercase()
        )
    }

    fn record(
        &self,
        op: &Operation,
        decision: Decision,
        principal: &str,
        resource: &str,
    ) -> Record {
        let mut record = Record::new("vault", op.audit_action, decision)
            .actor(principal, "bearer")
            .resource(resource.to_owned())
            .request_id(self.request_id.clone())
            .detail("vault", self.vault.name.clone())
            .detail("data_action", op.data_action);
        if let Some(source) = self.source {
            record = record.source(source);
        }
        record
    }

    /// Authorizes `op` at `scope`: [`Ctx::check`] then [`Ctx::admit`] with no extra throttle
    /// class. 401 with the challenge without a token or with a token the authorizer rejects,
    /// 403 when the principal lacks the data action, 503 `ReadOnlyMode` for a write while the
    /// API is read-only, 429 when throttled. Denials are audited; a write is recorded durably
    /// before this returns (503 when the audit trail cannot record it).
    pub async fn authorize(
        &self,
        op: &'static Operation,
        scope: String,
    ) -> Result<Access, ApiError> {
        let checked = self.check(op, scope).await?;
        self.admit(checked, None).await
    }

    /// The first half of [`Ctx::authorize`]: authentication and RBAC (401 / 403, audited).
    /// Handlers whose throttle class depends on the object (a key's type) look it up after
    /// this, then call [`Ctx::admit`] — so nothing is read for a caller without the role.
    pub async fn check(&self, op: &'static Operation, scope: String) -> Result<Checked, ApiError> {
        let config = self.api.config();
        let auditor = self.api.auditor();
        let Some(token) = &self.token else {
            // The Azure SDK's first request: no token, no body; it retries with one.
            auditor.record_routine(
                self.record(op, Decision::Deny, "", &scope)
                    .reason("unauthenticated: no bearer token"),
            );
            return Err(ApiError::unauthorized(
                "AKV10000: Request is missing a Bearer or PoP token.",
                &config.challenge(),
            ));
        };
        let decision = self
            .api
            .authorizer()
            .authorize(AuthRequest {
                token,
                data_action: op.data_action,
                scope: &scope,
                vault: &self.vault.name,
            })
            .await;
        match decision {
            AuthDecision::Allow { principal } => Ok(Checked {
                principal,
                op,
                scope,
            }),
            AuthDecision::Unauthenticated { reason } => {
                auditor.record_routine(
                    self.record(op, Decision::Deny, "", &scope)
                        .reason(format!("unauthenticated: {reason}")),
                );
                Err(ApiError::unauthorized(
                    format!("AKV10032: {reason}"),
                    &config.challenge(),
                ))
            }
            AuthDecision::Forbidden { principal, reason } => {
                auditor.record_routine(
                    self.record(op, Decision::Deny, &principal, &scope)
                        .reason(format!("forbidden: {reason}")),
                );
                Err(ApiError::forbidden_by_rbac(
                    &principal,
                    op.data_action,
                    &scope,
                    &reason,
                ))
            }
        }
    }

    /// The second half of [`Ctx::authorize`]: read-only mode (writes refused with 503
    /// `ReadOnlyMode`), throttling (the `all` bucket, the operation's class and `class`, e.g.
    /// a key-type class from [`crate::throttle::key_class`]), and the durable audit record of a
    /// write. Refusals are audited.
    pub async fn admit(&self, checked: Checked, class: Option<&str>) -> Result<Access, ApiError> {
        let Checked {
            principal,
            op,
            scope,
        } = checked;
        let auditor = self.api.auditor();
        if op.write && self.api.is_read_only() {
            auditor.record_routine(
                self.record(op, Decision::Deny, &principal, &scope)
                    .reason("read-only mode: writes are refused"),
            );
            return Err(ApiError::read_only());
        }
        let classes: Vec<&str> = op.throttle_class.into_iter().chain(class).collect();
        if let Err(retry_after) = self.api.throttle().acquire(&self.vault.name, &classes) {
            let mut record = self
                .record(op, Decision::Deny, &principal, &scope)
                .reason("throttled");
            if let Some(class) = class {
                record = record.detail("throttle_class", class.to_owned());
            }
            auditor.record_routine(record);
            return Err(ApiError::throttled(retry_after));
        }
        if op.write {
            let record = self.record(op, Decision::Allow, &principal, &scope);
            if let Err(error) = auditor.record(record).await {
                tracing::error!(%error, action = op.audit_action, "audit trail unavailable; write refused");
                return Err(ApiError::audit_unavailable());
            }
        }
        Ok(Access {
            api: self.api.clone(),
            principal,
            op,
            resource: scope,
            request_id: self.request_id.clone(),
            source: self.source,
        })
    }

    /// Parses a JSON body; 400 `BadParameter` when it is empty or not the expected shape. The
    /// message never echoes body content (it may hold secret values).
    pub fn json<T: DeserializeOwned>(&self, body: &Bytes) -> Result<T, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_parameter("The request body is empty."));
        }
        serde_json::from_slice(body).map_err(|e| {
            let text = e.to_string();
            let detail = if text.starts_with("missing field") || text.starts_with("unknown field") {
                text.split(" at line").next().unwrap_or_default().to_owned()
            } else {
                format!("invalid value at line {} column {}", e.line(), e.column())
            };
            ApiError::bad_parameter(format!("The request body is not valid: {detail}."))
        })
    }

    /// The page requested by `maxresults` (1-25, default 25) and `$skiptoken` (made by
    /// [`Ctx::next_link`] for the same `list_id`).
    pub fn paging(&self, list_id: &str) -> Result<Paging, ApiError> {
        let max = match self.query("maxresults") {
            None | Some("") => MAX_RESULTS,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_RESULTS).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_parameter(format!(
                        "Invalid maxresults {:?}: it must be an integer between 1 and {MAX_RESULTS}.",
                        v.chars().take(16).collect::<String>()
                    ))
                })?,
        };
        let start_after = match self.query("$skiptoken") {
            None | Some("") => None,
            Some(token) => Some(decode_skiptoken(list_id, token).ok_or_else(|| {
                ApiError::bad_parameter("The $skiptoken is not valid for this list.")
            })?),
        };
        Ok(Paging { max, start_after })
    }

    /// The absolute `nextLink` for the page after `next` (None: last page).
    pub fn next_link(&self, list_id: &str, next: Option<&str>, max: usize) -> Option<String> {
        let next = next?;
        let token = URL_SAFE_NO_PAD.encode(format!("{list_id}\n{next}"));
        Some(format!(
            "{}{}?api-version={}&$skiptoken={token}&maxresults={max}",
            self.base_url(),
            self.path,
            self.api_version
        ))
    }

    /// The request method and path (for logs).
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

fn decode_skiptoken(list_id: &str, token: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let marker = text.strip_prefix(list_id)?.strip_prefix('\n')?;
    let ok = !marker.is_empty()
        && marker.len() <= 127
        && marker
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then(|| marker.to_owned())
}

impl Access {
    /// The principal id.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// Records the outcome and passes `result` through: reads are recorded (allow or error,
    /// routine), writes only when they failed (their allow record was written before they
    /// ran). `version` names the version the operation touched, if any.
    pub fn finish<T>(
        &self,
        result: Result<T, ApiError>,
        version: Option<&str>,
    ) -> Result<T, ApiError> {
        let decision = match &result {
            Ok(_) if self.op.write => return result,
            Ok(_) => Decision::Allow,
            Err(_) => Decision::Error,
        };
        let mut record = Record::new("vault", self.op.audit_action, decision)
            .actor(self.principal.clone(), "bearer")
            .resource(self.resource.clone())
            .request_id(self.request_id.clone())
            .detail("data_action", self.op.data_action);
        if let Some(version) = version {
            record = record.detail("version", version);
        }
        if let Some(source) = self.source {
            record = record.source(source);
        }
        if let Err(error) = &result {
            record = record
                .reason(format!("{}: {}", error.code(), error.message()))
                .detail("status", error.status().as_u16().to_string());
        }
        self.api.auditor().record_routine(record);
        result
    }
}

/// The raw body, with axum's rejections (size limit, read errors) turned into [`ApiError`]s.
#[derive(Debug)]
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e| {
                ApiError::new(
                    e.status(),
                    "BadParameter",
                    "The request body could not be read (too large or incomplete).",
                )
            })
    }
}

/// Longest object name Azure accepts.
pub const MAX_OBJECT_NAME_LEN: usize = 127;

/// Checks a secret, key or certificate name as Azure does (1-127 characters, `0-9`, `a-z`,
/// `A-Z` and `-`): otherwise 400 `BadParameter` "The request URI contains an invalid name: ...".
pub fn check_object_name(name: &str) -> Result<(), ApiError> {
    let valid = (1..=MAX_OBJECT_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if valid {
        return Ok(());
    }
    // Echoed as Azure does, cut short so a huge URI does not become a huge answer.
    let shown: String = name.chars().take(2 * MAX_OBJECT_NAME_LEN).collect();
    Err(ApiError::bad_parameter(format!(
        "The request URI contains an invalid name: {shown}"
    )))
}

/// Path parameters, with axum's rejection turned into a 400 [`ApiError`]; a `{name}`
/// parameter that is not a valid object name is refused first ([`check_object_name`]).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // The object name is checked before anything else (authorization included), as Azure
        // does: 400 `BadParameter` rather than a scope the access check cannot parse.
        if let Ok(params) = RawPathParams::from_request_parts(parts, state).await
            && let Some((_, name)) = params.iter().find(|(key, _)| *key == "name")
        {
            check_object_name(name)?;
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| {
                ApiError::bad_parameter("The request URI contains an invalid path segment.")
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn hosts_select_vaults() {
        let v = |h: &str| vault_for_host(h, "vault.localhost", "default");
        assert_eq!(v("prod.vault.localhost").as_deref(), Some("prod"));
        assert_eq!(v("PROD.vault.localhost:8446").as_deref(), Some("prod"));
        assert_eq!(v("127.0.0.1:8446").as_deref(), Some("default"));
        assert_eq!(v("[::1]:8446").as_deref(), Some("default"));
        assert_eq!(v("localhost:8446").as_deref(), Some("default"));
        assert_eq!(v("vault.localhost").as_deref(), Some("default"));
        assert_eq!(v("a.b.vault.localhost"), None);
        assert_eq!(v("example.com"), None);
        assert_eq!(v("xvault.localhost"), None);
        assert_eq!(v("[not-ip]:1"), None);
    }

    #[test]
    fn skiptokens_are_bound_to_their_list() {
        let token = URL_SAFE_NO_PAD.encode("secrets\nabc-1");
        assert_eq!(
            decode_skiptoken("secrets", &token).as_deref(),
            Some("abc-1")
        );
        assert_eq!(decode_skiptoken("deletedsecrets", &token), None);
        assert_eq!(decode_skiptoken("secrets", "!!!"), None);
        let evil = URL_SAFE_NO_PAD.encode("secrets\n../x");
        assert_eq!(decode_skiptoken("secrets", &evil), None);
    }

    #[test]
    fn queries_decode() {
        let q = parse_query(Some("api-version=7.6&%24skiptoken=a%2Bb&x")).unwrap();
        assert_eq!(q[0], ("api-version".into(), "7.6".into()));
        assert_eq!(q[1], ("$skiptoken".into(), "a+b".into()));
        assert_eq!(q[2], ("x".into(), String::new()));
        assert!(parse_query(Some("a=%zz")).is_err());
        assert!(parse_query(Some("a=%ff")).is_err());
        assert!(parse_query(Some("a=%4")).is_err());
    }
}
