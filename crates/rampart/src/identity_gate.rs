//! The plane's token verifier and the gateway's identity check: routes with `auth = "bearer"`
//! get their tokens verified by the identity verifier (JWKS cache, outage continuity) and,
//! with `authorize = true`, the caller's right to the route checked by RBAC at
//! `/gateway/routes/<name>`.
//!
//! `rampart up` builds one [`PlaneVerifier`] and hands it to the gateway, the access API and
//! the vault: the own issuer's accepted audiences are the routes' audiences plus the vault
//! resource. Each user then checks the audience meant for it: the vault wants its resource,
//! and the gateway and access API refuse own-issuer tokens that carry only the vault's.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rampart_audit::Auditor;
use rampart_config::{Config, IssuerKeys};
use rampart_gateway::{AuthDecision, AuthFuture, Authenticator, RouteAuth};
use rampart_identity::rbac::{AccessControl, AccessOptions, Scope, SystemClock, actions};
use rampart_identity::verifier::{IssuerConfig, JwksSource, VerifierConfig};
use rampart_identity::{Principal, Verifier};
use rampart_storage::Backend;

/// The principal the local admin credential acts as.
pub const LOCAL_ADMIN: &str = "admin";

/// Opens the access model on the plane's storage; the local admin becomes the first Access
/// Administrator when there is none yet.
pub async fn open_access(
    store: Arc<dyn Backend>,
    auditor: Auditor,
) -> anyhow::Result<Arc<AccessControl>> {
    let access = AccessControl::open(
        store,
        auditor,
        Arc::new(SystemClock),
        AccessOptions::default(),
    )
    .await
    .context("cannot open the access model")?;
    match access
        .bootstrap(&Principal::local(LOCAL_ADMIN), LOCAL_ADMIN)
        .await
    {
        Ok(assignment) => {
            tracing::info!(scope = %assignment.scope, "the local admin is the first access administrator");
        }
        Err(error) if error.is_refusal() => {}
        Err(error) => return Err(error).context("cannot bootstrap the access model"),
    }
    Ok(Arc::new(access))
}

/// The gateway's authenticator for `config`: rampart's own issuer (`own`: its URL and the CA
/// that signed its certificate, when it runs) and every `[[trusted_issuer]]`. `None` when no
/// issuer is trusted at all (bearer routes then refuse everyone).
pub fn gate(
    config: &Config,
    own: Option<(&str, Option<&Path>)>,
    access: Option<Arc<AccessControl>>,
) -> anyhow::Result<Option<Arc<dyn Authenticator>>> {
    Ok(verifier(config, own)?
        .map(|verifier| Arc::new(IdentityGate::new(verifier, access)) as Arc<dyn Authenticator>))
}

/// The plane's one verifier, and which of the own issuer's audiences are the gateway's.
#[derive(Debug, Clone)]
pub struct PlaneVerifier {
    verifier: Verifier,
    /// The own issuer's URL and the audiences its tokens need outside the vault.
    own: Option<(String, Vec<String>)>,
}

impl PlaneVerifier {
    /// The verifier (signature, issuer, expiry, an audience of the issuer's list).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Whether `principal`'s token is meant for the gateway or the admin API: a token of the
    /// own issuer must carry one of the gateway's audiences (a token for the vault resource
    /// alone is not); trusted issuers' audiences are checked by the verifier.
    pub fn meant_for_gateway(&self, principal: &Principal) -> bool {
        match &self.own {
            Some((issuer, audiences)) if principal.issuer == *issuer => audiences
                .iter()
                .any(|audience| principal.has_audience(audience)),
            _ => true,
        }
    }
}

/// The verifier of every issuer the plane trusts (see [`gate`]); `None` when there is none.
/// The own issuer's tokens are accepted for the routes' audiences (the issuer URL when no
/// route names any) and for `[vault] resource`.
pub fn verifier(
    config: &Config,
    own: Option<(&str, Option<&Path>)>,
) -> anyhow::Result<Option<PlaneVerifier>> {
    let mut verifier_config = VerifierConfig::default();
    let mut own_audiences = None;
    if let Some((issuer_url, ca)) = own {
        // Our own tokens carry the resource they were requested for: accept the audiences
        // the routes name, or the issuer URL itself when no route names any.
        let mut audiences: Vec<String> = config
            .routes
            .iter()
            .filter_map(|route| route.auth.as_ref())
            .flat_map(|auth| auth.audiences.iter().cloned())
            .collect();
        audiences.sort();
        audiences.dedup();
        if audiences.is_empty() {
            audiences.push(issuer_url.to_owned());
        }
        let mut accepted = audiences.clone();
        if !accepted.contains(&config.vault.resource) {
            accepted.push(config.vault.resource.clone());
        }
        let mut issuer = IssuerConfig::new(issuer_url, accepted);
        issuer.jwks = JwksSource::JwksUri(format!("{issuer_url}/jwks"));
        verifier_config.issuers.push(issuer);
        verifier_config.extra_ca_file = ca.map(Path::to_path_buf);
        own_audiences = Some((issuer_url.to_owned(), audiences));
    }
    for trusted in &config.trusted_issuers {
        let mut issuer = IssuerConfig::new(&trusted.issuer, trusted.audiences.iter().cloned());
        issuer.jwks = match &trusted.keys {
            IssuerKeys::Discovery => JwksSource::Discovery,
            IssuerKeys::DiscoveryUrl(url) => JwksSource::DiscoveryUrl(url.clone()),
            IssuerKeys::JwksUri(url) => JwksSource::JwksUri(url.clone()),
        };
        issuer.tenant.clone_from(&trusted.tenant);
        verifier_config.issuers.push(issuer);
    }
    if verifier_config.issuers.is_empty() {
        return Ok(None);
    }
    let verifier = Verifier::new(&verifier_config).context("cannot set up the token verifier")?;
    Ok(Some(PlaneVerifier {
        verifier,
        own: own_audiences,
    }))
}

/// Verifies route callers with the identity verifier and, where asked, RBAC.
#[derive(Debug, Clone)]
pub struct IdentityGate {
    verifier: PlaneVerifier,
    access: Option<Arc<AccessControl>>,
}

impl IdentityGate {
    /// A gate over `verifier`; `access` answers routes with `authorize = true` (without it,
    /// such routes refuse every caller).
    pub fn new(verifier: PlaneVerifier, access: Option<Arc<AccessControl>>) -> Self {
        Self { verifier, access }
    }

    async fn decide(&self, policy: &RouteAuth, token: Option<&str>) -> AuthDecision {
        let Some(token) = token else {
            return AuthDecision::Unauthenticated {
                reason: "no bearer token".to_owned(),
                token_presented: false,
            };
        };
        let principal = match self.verifier.verifier().verify(token).await {
            Ok(principal) => principal,
            Err(error) => {
                metrics::counter!("rampart_identity_rejected_total", "reason" => error.kind())
                    .increment(1);
                return AuthDecision::Unauthenticated {
                    reason: format!("token refused: {error}"),
                    token_presented: true,
                };
            }
        };
        if policy.audiences.is_empty() && !self.verifier.meant_for_gateway(&principal) {
            metrics::counter!("rampart_identity_rejected_total", "reason" => "audience")
                .increment(1);
            return AuthDecision::Unauthenticated {
                reason: format!("token of {} not issued for the gateway", principal.id),
                token_presented: true,
            };
        }
        if !policy.audiences.is_empty()
            && !policy
                .audiences
                .iter()
                .any(|audience| principal.has_audience(audience))
        {
            return AuthDecision::Unauthenticated {
                reason: format!(
                    "token of {} not issued for this route's audiences",
                    principal.id
                ),
                token_presented: true,
            };
        }
        if let Some(missing) = policy
            .required_scopes
            .iter()
            .find(|scope| !principal.has_scope(scope))
        {
            return AuthDecision::Forbidden {
                principal: principal.id.clone(),
                reason: format!("the token does not grant scope {missing}"),
            };
        }
        if policy.authorize {
            let Some(access) = &self.access else {
                return AuthDecision::Forbidden {
                    principal: principal.id.clone(),
                    reason: "no access model to authorize the route".to_owned(),
                };
            };
            let scope = match Scope::gateway_route(&policy.route) {
                Ok(scope) => scope,
                Err(error) => {
                    return AuthDecision::Forbidden {
                        principal: principal.id.clone(),
                        reason: format!("route scope: {error}"),
                    };
                }
            };
            match access
                .check_data_action(&principal, actions::GATEWAY_ROUTE_INVOKE, &scope)
                .await
            {
                Ok(decision) if decision.allowed => {}
                Ok(decision) => {
                    return AuthDecision::Forbidden {
                        principal: principal.id.clone(),
                        reason: decision.reason.to_string(),
                    };
                }
                Err(error) => {
                    tracing::error!(%error, "access check failed: refusing");
                    return AuthDecision::Forbidden {
                        principal: principal.id.clone(),
                        reason: format!("access check failed: {error}"),
                    };
                }
            }
        }
        AuthDecision::Allow {
            principal: principal.id.clone(),
        }
    }
}

impl Authenticator for IdentityGate {
    fn authenticate<'a>(
        &'a self,
        policy: &'a RouteAuth,
        token: Option<&'a str>,
        _client: IpAddr,
    ) -> AuthFuture<'a> {
        Box::pin(self.decide(policy, token))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! Routes demanding identity, end to end: tokens from the real test OIDC provider,
    //! the real verifier, RBAC over redb with a real audit log, the real gateway.

    use super::*;
    use bytes::Bytes;
    use http::StatusCode;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use rampart_gateway::{Gateway, GatewayOptions, RouteOptions};
    use rampart_identity::Principal;
    use rampart_identity::rbac::{AccessOptions, AssignmentKind, SystemClock};
    use rampart_identity::verifier::{IssuerConfig, VerifierConfig};
    use rampart_test_support::idp::{DEFAULT_AUDIENCE, IdpOptions, TestIdp};
    use rampart_test_support::origin::ReflectingOrigin;

    async fn get(gateway: std::net::SocketAddr, path: &str, token: Option<&str>) -> StatusCode {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let mut request = http::Request::get(format!("http://{gateway}{path}"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = client
            .request(request.body(Empty::new()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let _ = response.into_body().collect().await;
        status
    }

    fn route(origin: &ReflectingOrigin, prefix: &str, auth: RouteAuth) -> RouteOptions {
        RouteOptions {
            path_prefix: prefix.to_owned(),
            auth: Some(auth),
            ..RouteOptions::catch_all(vec![origin.url()])
        }
    }

    #[tokio::test]
    async fn routes_verify_tokens_of_a_real_idp_and_authorize_by_role() {
        let Some(idp) = TestIdp::start(&IdpOptions::new("ES256")) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let audit =
            rampart_audit::AuditLog::open(dir.path().join("audit"), Default::default()).unwrap();
        let store = Arc::new(
            rampart_storage::RedbBackend::open(dir.path().join("kv.redb"))
                .await
                .unwrap(),
        );
        let access = Arc::new(
            AccessControl::open(
                store,
                audit.auditor(),
                Arc::new(SystemClock),
                AccessOptions::default(),
            )
            .await
            .unwrap(),
        );
        let root = Principal::local("root");
        access.bootstrap(&root, "root").await.unwrap();
        access
            .assign(
                &root,
                "gateway-test",
                "Rampart Gateway Route User",
                &Scope::gateway_route("orders").unwrap(),
                AssignmentKind::Permanent,
            )
            .await
            .unwrap();
        let verifier = Verifier::new(&VerifierConfig {
            issuers: vec![IssuerConfig::new(
                idp.issuer(),
                [DEFAULT_AUDIENCE, "https://reports.test"],
            )],
            ..VerifierConfig::default()
        })
        .unwrap();

        let origin = ReflectingOrigin::start().await.unwrap();
        let mut options = GatewayOptions::new("127.0.0.1:0".parse().unwrap(), origin.url());
        options.routes = vec![
            route(
                &origin,
                "/orders",
                RouteAuth {
                    route: "orders".into(),
                    audiences: vec![],
                    required_scopes: vec!["api:read".into()],
                    authorize: true,
                },
            ),
            route(
                &origin,
                "/reports",
                RouteAuth {
                    route: "reports".into(),
                    audiences: vec!["https://reports.test".into()],
                    required_scopes: vec![],
                    authorize: false,
                },
            ),
            RouteOptions::catch_all(vec![origin.url()]),
        ];
        let verifier = PlaneVerifier {
            verifier,
            own: None,
        };
        options.authenticator = Some(Arc::new(IdentityGate::new(verifier, Some(access))));
        let gateway = Gateway::bind(options).await.unwrap();
        let addr = gateway.local_addr().unwrap();
        tokio::spawn(gateway.serve(std::future::pending(), std::time::Duration::from_secs(1)));

        let reader = idp.gateway_token(Some("api:read"));
        let writer_only = idp.gateway_token(Some("api:write"));
        let other = idp.token("other-client", "other-secret", Some("api:read"), None);
        let mut forged = reader.clone();
        forged.pop();
        forged.push(if reader.ends_with('A') { 'B' } else { 'A' });

        assert_eq!(get(addr, "/orders/1", None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            get(addr, "/orders/1", Some(&forged)).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get(addr, "/orders/1", Some(&writer_only)).await,
            StatusCode::FORBIDDEN,
            "a token without the route's scope"
        );
        assert_eq!(
            get(addr, "/orders/1", Some(&other)).await,
            StatusCode::FORBIDDEN,
            "a verified caller without a role on the route"
        );
        assert_eq!(origin.requests(), 0);
        assert_eq!(get(addr, "/orders/1", Some(&reader)).await, StatusCode::OK);
        assert_eq!(origin.requests(), 1);
        // The reports route wants tokens for its own audience: the IdP's default one is not.
        assert_eq!(
            get(addr, "/reports", Some(&reader)).await,
            StatusCode::UNAUTHORIZED
        );
        let for_reports = idp.token(
            "gateway-test",
            "gateway-test-secret",
            Some("api:read"),
            Some("https://reports.test"),
        );
        assert_eq!(
            get(addr, "/reports", Some(&for_reports)).await,
            StatusCode::OK
        );
        assert_eq!(origin.requests(), 2);
        assert_eq!(get(addr, "/open", None).await, StatusCode::OK);
        drop(audit);
    }
}
