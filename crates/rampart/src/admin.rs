//! The admin listener (loopback by default): `/healthz`, `/readyz`, Prometheus `/metrics`, and
//! the management APIs (`/identity/...`, `/access/...`, `/vault/...`); `/metrics` requires the
//! admin token (`Authorization: Bearer ...`), compared in constant time.
//! Every refused request goes to the audit trail.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use rampart_audit::Auditor;
use tokio::net::TcpListener;

/// What the admin endpoints need.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Renders the metrics.
    pub metrics: PrometheusHandle,
    /// The bearer token `/metrics` requires.
    pub admin_token: Arc<str>,
    /// Where refused requests are recorded.
    pub auditor: Auditor,
    /// The identity registries, when this plane runs the token issuer.
    pub identity: Option<crate::identity_http::IdentityAdmin>,
    /// The access model, when this plane runs it.
    pub access: Option<crate::access_http::AccessAdmin>,
    /// The vault's seal and registry, when this plane runs the vault.
    pub vault: Option<crate::vault_http::VaultAdmin>,
}

/// Builds the admin routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/metrics", get(metrics))
        .merge(crate::identity_http::admin_routes())
        .merge(crate::access_http::routes())
        .merge(crate::vault_http::routes())
        .with_state(state)
}

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let service = router(state).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "admin listener stopped");
    }
}

async fn metrics(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !bearer_matches(&headers, &state.admin_token) {
        metrics::counter!("rampart_admin_denied_total").increment(1);
        tracing::warn!(%client, "admin request denied: missing or wrong bearer token");
        crate::auditing::admin_denied(&state.auditor, client, "/metrics");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"rampart-admin\"")],
            "unauthorized\n",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

pub(crate) fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
    else {
        return false;
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(
        presented.trim().as_bytes(),
        expected.as_bytes(),
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let mut headers = HeaderMap::new();
        assert!(!bearer_matches(&headers, "tok"));
        headers.insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        assert!(bearer_matches(&headers, "tok"));
        headers.insert(header::AUTHORIZATION, "Bearer to".parse().unwrap());
        assert!(!bearer_matches(&headers, "tok"));
        headers.insert(header::AUTHORIZATION, "Basic tok".parse().unwrap());
        assert!(!bearer_matches(&headers, "tok"));
    }
}
