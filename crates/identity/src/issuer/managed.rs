//! The managed-identity endpoint, speaking Azure App Service's protocol (api-version
//! 2019-08-01) as azure-identity's `ManagedIdentityCredential` (through MSAL) uses it when
//! `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set:
//!
//! ```text
//! GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<uri>[&client_id=|&object_id=|&principal_id=|&mi_res_id=]
//! X-IDENTITY-HEADER: <the workload's identity header>
//! → 200 {"access_token","expires_on":"<unix seconds as a string>","resource","token_type":"Bearer","client_id"}
//! ```
//!
//! The identity header is both the proof and the identity: it is looked up among the
//! registered workloads by its SHA-256, compared in constant time with every one. Only
//! loopback peers are served (403 otherwise); a missing header is 400, a wrong one 401.
//! Error bodies carry App Service's `statusCode` and `message` (what MSAL reports) and the
//! OAuth `error` and `error_description`.

use std::net::IpAddr;

use rampart_audit::{Decision, Record};
use serde::Serialize;

use super::error::{OAuthError, OAuthErrorCode};
use super::registry::{self, Workload};
use super::token::{AccessToken, parse_form};
use super::{Claims, Issuer};

/// The App Service managed-identity protocol version served.
pub const MANAGED_IDENTITY_API_VERSION: &str = "2019-08-01";
/// The request header carrying the identity header secret.
pub const IDENTITY_HEADER_NAME: &str = "X-IDENTITY-HEADER";

/// A managed-identity request as it arrived.
#[derive(Clone)]
pub struct ManagedIdentityRequest {
    /// The peer's address (only loopback peers are served).
    pub peer: IpAddr,
    /// The raw query string (without `?`).
    pub query: String,
    /// The `X-IDENTITY-HEADER` value, if present.
    pub identity_header: Option<String>,
}

impl std::fmt::Debug for ManagedIdentityRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentityRequest")
            .field("peer", &self.peer)
            .field("query", &self.query)
            .field(
                "identity_header",
                &self.identity_header.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The 200 answer, App Service style.
#[derive(Debug, Clone, Serialize)]
pub struct ManagedIdentityResponse {
    /// The JWT.
    pub access_token: AccessToken,
    /// Expiry in Unix seconds, as a string (App Service sends a string).
    pub expires_on: String,
    /// The resource (the token's `aud`).
    pub resource: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// The identity's client id.
    pub client_id: String,
}

/// Whether a peer may use the managed-identity endpoint: loopback addresses only (IPv4
/// 127/8, `::1`, and IPv4-mapped loopback).
#[must_use]
pub fn peer_allowed(peer: IpAddr) -> bool {
    match peer {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The JSON body of a managed-identity error: App Service's fields and OAuth's.
#[must_use]
pub fn error_body(error: &OAuthError) -> serde_json::Value {
    serde_json::json!({
        "statusCode": error.status,
        "message": error.description,
        "error": error.code.as_str(),
        "error_description": error.description,
    })
}

impl Issuer {
    /// Answers a managed-identity token request. Every issuance and refusal is an audit
    /// record (never with the header or the token).
    ///
    /// # Errors
    /// The error to answer with: 403 `access_denied` for a non-loopback peer, 400
    /// `invalid_request` (missing header, wrong api-version, missing or bad resource, an
    /// identity selector that does not match), 401 `invalid_client` (unknown header), 400
    /// `invalid_target` (a resource the workload may not have), 500 `server_error`.
    pub async fn managed_identity_token(
        &self,
        request: &ManagedIdentityRequest,
    ) -> Result<ManagedIdentityResponse, OAuthError> {
        let result = self.managed_inner(request).await;
        let record = match &result {
            Ok((response, workload)) => {
                Record::new("identity", "managed_identity.token", Decision::Allow)
                    .actor(workload.name.as_str(), "identity_header")
                    .resource(response.resource.as_str())
                    .detail("oid", workload.oid.as_str())
            }
            Err((workload, error)) => {
                let mut record = Record::new("identity", "managed_identity.token", Decision::Deny)
                    .reason(format!("{}: {}", error.code.as_str(), error.description));
                if let Some(name) = workload {
                    record = record.actor(name.as_str(), "identity_header");
                }
                record
            }
        };
        self.auditor().record_routine(record.source(request.peer));
        result
            .map(|(response, _)| response)
            .map_err(|(_, error)| error)
    }

    async fn managed_inner(
        &self,
        request: &ManagedIdentityRequest,
    ) -> Result<(ManagedIdentityResponse, Workload), (Option<String>, OAuthError)> {
        let anonymous = |error: OAuthError| (None, error);
        if !peer_allowed(request.peer) {
            return Err(anonymous(OAuthError::new(
                OAuthErrorCode::AccessDenied,
                "the managed-identity endpoint serves loopback callers only",
            )));
        }
        let params = parse_form(&request.query).map_err(anonymous)?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
                .filter(|value| !value.is_empty())
        };
        let Some(header) = request.identity_header.as_deref().filter(|h| !h.is_empty()) else {
            return Err(anonymous(OAuthError::request(format!(
                "the {IDENTITY_HEADER_NAME} header is required"
            ))));
        };
        match param("api-version") {
            Some(MANAGED_IDENTITY_API_VERSION) => {}
            Some(other) => {
                return Err(anonymous(OAuthError::request(format!(
                    "api-version {other:?} is not supported; use {MANAGED_IDENTITY_API_VERSION}"
                ))));
            }
            None => {
                return Err(anonymous(OAuthError::request(
                    "the api-version parameter is required",
                )));
            }
        }
        let workload = self.workload_by_header(header).await.map_err(anonymous)?;
        let named = |error: OAuthError| (Some(workload.name.clone()), error);
        let resource = param("resource")
            .ok_or_else(|| named(OAuthError::request("the resource parameter is required")))?;
        let resource = registry::default_scope_resource(resource).unwrap_or(resource);
        if !registry::valid_resource(resource) {
            return Err(named(OAuthError::request(format!(
                "resource {resource:?} is not an absolute URI"
            ))));
        }
        let resource = registry::normalize_resource(resource).to_owned();
        // An identity selector, when given, must name this workload's identity.
        let selectors = [
            ("client_id", workload.client_id.as_str()),
            ("principal_id", workload.oid.as_str()),
            ("object_id", workload.oid.as_str()),
            ("mi_res_id", workload.name.as_str()),
        ];
        for (name, expected) in selectors {
            if param(name).is_some_and(|given| given != expected) {
                return Err(named(OAuthError::request(format!(
                    "no identity with that {name} is assigned to this workload"
                ))));
            }
        }
        if !workload.resources.is_empty() && !workload.resources.contains(&resource) {
            return Err(named(OAuthError::new(
                OAuthErrorCode::InvalidTarget,
                format!(
                    "workload {:?} may not get tokens for {resource:?}",
                    workload.name
                ),
            )));
        }
        let claims = Claims {
            subject: &workload.name,
            audience: &resource,
            client_id: &workload.client_id,
            oid: &workload.oid,
            scope: None,
        };
        let (token, exp, _jti) = self
            .mint_token(&claims)
            .await
            .map_err(|error| named(OAuthError::server(&error)))?;
        let response = ManagedIdentityResponse {
            access_token: token,
            expires_on: exp.to_string(),
            resource,
            token_type: "Bearer",
            client_id: workload.client_id.clone(),
        };
        Ok((response, workload))
    }

    /// The workload whose identity header this is. Compares the header's SHA-256 with every
    /// registered workload's in constant time (no early exit).
    async fn workload_by_header(&self, header: &str) -> Result<Workload, OAuthError> {
        let presented = registry::header_digest(header);
        let workloads = self
            .list_workloads()
            .await
            .map_err(|error| OAuthError::server(&error))?;
        let mut found = None;
        for workload in workloads {
            let equal = aws_lc_rs::constant_time::verify_slices_are_equal(
                presented.as_bytes(),
                workload.header_sha256.as_bytes(),
            )
            .is_ok();
            if equal && found.is_none() {
                found = Some(workload);
            }
        }
        found.ok_or_else(|| OAuthError::client("unknown identity header"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_are_allowed() {
        for ok in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(peer_allowed(ok.parse().unwrap()), "{ok}");
        }
        for bad in [
            "192.0.2.2",
            "10.0.0.1",
            "0.0.0.0",
            "::ffff:10.0.0.1",
            "fd00::2",
        ] {
            assert!(!peer_allowed(bad.parse().unwrap()), "{bad}");
        }
    }
}
