//! The demo upstream app that `rampart up` puts behind the gateway when no `--upstream` is
//! given: a page, a small JSON API, and `/echo`, which shows exactly what reached the backend.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json};
use axum::routing::{any, get};
use rampart_origin_lock::OriginLock;
use tokio::net::TcpListener;

/// The origin lock the demo app checks requests against, like a real backend would.
type Lock = Option<Arc<OriginLock>>;

/// Builds the demo app's routes.
pub fn router(lock: Lock) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/echo", any(echo))
        .route("/echo/{*rest}", any(echo))
        .route("/api/items", get(items))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(lock)
}

/// Serves the demo app on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    lock: Lock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(error) = axum::serve(listener, router(lock))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(%error, "demo app stopped");
    }
}

async fn index() -> impl IntoResponse {
    "Rampart demo app: this is the upstream behind the gateway.\n\
     Try /echo to see what reached the backend, or /api/items.\n"
}

async fn items() -> impl IntoResponse {
    Json(serde_json::json!({
        "items": [
            {"id": 1, "name": "alpha"},
            {"id": 2, "name": "bravo"},
        ]
    }))
}

async fn echo(State(lock): State<Lock>, request: Request) -> impl IntoResponse {
    let (parts, body) = request.into_parts();
    let origin_lock = lock.map(|lock| {
        let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        match lock.verify(&parts.headers, parts.method.as_str(), path, now) {
            Ok(forwarding) => format!(
                "verified: came through edge {} for client {}",
                lock.edge_id(),
                forwarding.client
            ),
            Err(rejection) => format!("rejected: {rejection}"),
        }
    });
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    Json(serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": header_map(&parts.headers),
        "body": String::from_utf8_lossy(&body),
        "origin_lock": origin_lock,
        "note": "this is what the backend received: the gateway added the x-forwarded-* and x-request-id headers",
    }))
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_owned())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}
