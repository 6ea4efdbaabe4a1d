//! The identity plane over HTTP: the issuer's listener (OIDC discovery, JWKS, token endpoint;
//! HTTPS with the gateway's TLS settings), the managed-identity listener (plain HTTP, App
//! Service protocol at `/msi/token`, loopback callers only), and the admin API routes the
//! `rampart identity` commands use while a plane runs (JSON replies and the audited JSON 401 of
//! every admin API, from `admin_reply`). The logic lives in
//! `rampart_identity::issuer`; this module only maps HTTP onto it.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use rampart_audit::Auditor;
use rampart_config::{Config, SigningAlgorithm, TlsMode};
use rampart_identity::issuer::{
    ClientSpec, Issuer, IssuerConfig, IssuerError, Jwk, Kek, ManagedIdentityRequest, OAuthError,
    SigningAlg, SystemClock, TokenRequest, managed,
};
use rampart_storage::Backend;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::admin::AdminState;
use crate::admin_reply::{self, Refusal, Reply, error, json_body, unauthorized};
use crate::datadir::DataDir;
use crate::plane::{self, Shutdown};

/// Path of the managed-identity endpoint (what `IDENTITY_ENDPOINT` points at).
pub const MANAGED_IDENTITY_PATH: &str = "/msi/token";
/// The actor named in audit records of admin-API identity actions.
const ADMIN_ACTOR: &str = "admin-token";
/// Token requests are small forms; anything larger is refused before parsing.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// How often keys are reloaded (rotation, pruning) and the replay cache swept.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// The running identity plane.
#[derive(Debug, Clone)]
pub struct IdentityPlane {
    /// The issuer.
    pub issuer: Arc<Issuer>,
    /// The issuer URL (`iss`).
    pub issuer_url: String,
    /// The `IDENTITY_ENDPOINT` workloads use.
    pub managed_identity_url: String,
}

/// The managed-identity URL for a listener address (loopback when it listens everywhere).
pub fn managed_identity_url(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    format!(
        "http://{}{MANAGED_IDENTITY_PATH}",
        SocketAddr::new(ip, addr.port())
    )
}

/// Opens the issuer on `store` (the key-encryption key in `credentials/identity-kek`, 0600,
/// generated on first start). `issuer_url` is the `iss` to use.
pub async fn open_issuer(
    config: &Config,
    data: &DataDir,
    store: Arc<dyn Backend>,
    auditor: Auditor,
    issuer_url: String,
) -> anyhow::Result<Arc<Issuer>> {
    let kek_path = data.subdir("credentials")?.join("identity-kek");
    let kek = Kek::load_or_create(&kek_path)?;
    let identity = &config.identity;
    let settings = IssuerConfig {
        issuer_url,
        token_lifetime: identity.token_lifetime,
        rotation_period: identity.key_rotation,
        algorithm: match identity.signing_algorithm {
            SigningAlgorithm::Es256 => SigningAlg::Es256,
            SigningAlgorithm::Rs256 => SigningAlg::Rs256,
        },
    };
    let issuer = Issuer::open(store, kek, settings, Arc::new(SystemClock), auditor)
        .await
        .context("cannot open the token issuer")?;
    Ok(Arc::new(issuer))
}

/// The issuer URL `[identity]` gives, or one derived from the bound listener.
pub fn issuer_url_for(config: &Config, bound: SocketAddr, tls: bool) -> String {
    if let Some(url) = &config.identity.issuer_url {
        return url.clone();
    }
    let scheme = if tls { "https" } else { "http" };
    if bound.ip().is_loopback() || bound.ip().is_unspecified() {
        format!("{scheme}://localhost:{}", bound.port())
    } else {
        format!("{scheme}://{bound}")
    }
}

/// Binds both listeners, opens the issuer, and spawns the servers and the maintenance loop
/// on `tasks`; they stop when `shutdown` is triggered.
pub async fn start(
    config: &Config,
    data: &DataDir,
    store: Arc<dyn Backend>,
    auditor: Auditor,
    shutdown: &Shutdown,
    tasks: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<IdentityPlane> {
    let issuer_listener = plane::bind(config.identity.listen, "token issuer").await?;
    let managed_listener = plane::bind(
        config.identity.managed_identity_listen,
        "managed-identity endpoint",
    )
    .await?;
    let issuer_addr = issuer_listener.local_addr()?;
    let managed_addr = managed_listener.local_addr()?;
    let tls = match &config.gateway.tls {
        TlsMode::DangerousPlaintext => None,
        mode => plane::gateway_tls(&plane::plane_tls_mode(mode), data)?
            .0
            .map(|tls| TlsAcceptor::from(Arc::clone(&tls.config))),
    };
    let issuer_url = issuer_url_for(config, issuer_addr, tls.is_some());
    let issuer = open_issuer(config, data, store, auditor, issuer_url.clone()).await?;
    tasks.spawn(serve(
        issuer_listener,
        tls,
        issuer_router(Arc::clone(&issuer)),
        shutdown.signalled(),
    ));
    tasks.spawn(serve(
        managed_listener,
        None,
        managed_identity_router(Arc::clone(&issuer)),
        shutdown.signalled(),
    ));
    let maintained = Arc::clone(&issuer);
    let stop = shutdown.signalled();
    tasks.spawn(async move {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(MAINTENANCE_INTERVAL) => {
                    if let Err(error) = maintained.maintain().await {
                        tracing::error!(%error, "identity key maintenance failed");
                    }
                }
            }
        }
    });
    tracing::info!(issuer = %issuer_url, managed_identity = %managed_addr, "identity endpoints listening");
    Ok(IdentityPlane {
        issuer,
        issuer_url,
        managed_identity_url: managed_identity_url(managed_addr),
    })
}

/// Serves `router` on `listener` (TLS when `tls` is set, HTTP/1.1 and HTTP/2) until
/// `shutdown` resolves; handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(hyper_util::server::conn::auto::Builder::new(
        TokioExecutor::new(),
    ));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(%error, "accept failed");
                        continue;
                    }
                };
                let router = router.clone();
                let service = hyper::service::service_fn(
                    move |mut request: hyper::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        let mut router = router.clone();
                        async move { tower::Service::call(&mut router, request).await }
                    },
                );
                let watcher = graceful.watcher();
                let builder = Arc::clone(&builder);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let result = match tls {
                        Some(acceptor) => {
                            let handshake = tokio::time::timeout(
                                Duration::from_secs(10),
                                acceptor.accept(stream),
                            );
                            let Ok(Ok(stream)) = handshake.await else {
                                tracing::debug!(%peer, "tls handshake failed or timed out");
                                return;
                            };
                            let connection = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .into_owned();
                            watcher.watch(connection).await
                        }
                        None => {
                            let connection = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .into_owned();
                            watcher.watch(connection).await
                        }
                    };
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("identity connections did not finish in time");
    }
}

/// Discovery, JWKS and the token endpoint.
pub fn issuer_router(issuer: Arc<Issuer>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(issuer)
}

/// The managed-identity endpoint.
pub fn managed_identity_router(issuer: Arc<Issuer>) -> Router {
    Router::new()
        .route(MANAGED_IDENTITY_PATH, get(managed_identity_token))
        .layer(DefaultBodyLimit::max(1024))
        .with_state(issuer)
}

async fn discovery(State(issuer): State<Arc<Issuer>>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        axum::Json(issuer.discovery()),
    )
        .into_response()
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> Response {
    // Short caching: a rotated key must reach relying parties well before it signs much.
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(issuer.jwks()),
    )
        .into_response()
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn oauth_error(error: &OAuthError, body: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, axum::Json(body)).into_response();
    if error.basic_challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"rampart\""),
        );
    }
    no_store(response)
}

async fn token(
    State(issuer): State<Arc<Issuer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let result = if form {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        match TokenRequest::parse(&body, authorization, Some(peer.to_string())) {
            Ok(request) => issuer.token(&request).await,
            Err(error) => Err(error),
        }
    } else {
        Err(OAuthError::new(
            rampart_identity::issuer::OAuthErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        ))
    };
    match result {
        Ok(response) => no_store(axum::Json(response).into_response()),
        Err(error) => oauth_error(&error, error.body()),
    }
}

async fn managed_identity_token(
    State(issuer): State<Arc<Issuer>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let request = ManagedIdentityRequest {
        peer: peer.ip(),
        query: query.unwrap_or_default(),
        identity_header: headers
            .get(managed::IDENTITY_HEADER_NAME)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    };
    match issuer.managed_identity_token(&request).await {
        Ok(response) => no_store(axum::Json(response).into_response()),
        Err(error) => oauth_error(&error, managed::error_body(&error)),
    }
}

// ---- admin API: /identity/... on the admin listener, bearer admin token ----

/// What the admin identity routes need (present when the plane runs the issuer).
#[derive(Debug, Clone)]
pub struct IdentityAdmin {
    /// The issuer.
    pub issuer: Arc<Issuer>,
    /// The `IDENTITY_ENDPOINT` to hand to new workloads.
    pub managed_identity_url: String,
}

/// The admin API routes for the client and workload registries.
pub fn admin_routes() -> Router<AdminState> {
    Router::new()
        .route("/identity/clients", get(list_clients).post(add_client))
        .route("/identity/clients/{id}", delete(remove_client))
        .route("/identity/clients/{id}/secret", post(new_client_secret))
        .route(
            "/identity/workloads",
            get(list_workloads).post(add_workload),
        )
        .route("/identity/workloads/{name}", delete(remove_workload))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// Checks the admin token and that the plane runs the issuer.
/// The admin token's holder, or the admin API's JSON 401 (audited).
fn admin_gate(
    state: &AdminState,
    client: SocketAddr,
    headers: &HeaderMap,
    path: &str,
) -> Result<IdentityAdmin, Refusal> {
    if !crate::admin::bearer_matches(headers, &state.admin_token) {
        tracing::warn!(%client, "admin request denied: missing or wrong bearer token");
        return Err(unauthorized(
            state,
            client,
            path,
            "the admin token is required",
        ));
    }
    state.identity.clone().ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "this plane does not run the token issuer",
        )
    })
}

fn registry_error(error: &IssuerError) -> Refusal {
    let status = match error {
        IssuerError::InvalidName(_) | IssuerError::InvalidJwk(_) | IssuerError::InvalidScope(_) => {
            StatusCode::BAD_REQUEST
        }
        IssuerError::Exists { .. } => StatusCode::CONFLICT,
        IssuerError::NotFound { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    admin_reply::error(status, error)
}

/// `POST /identity/clients` body.
#[derive(Debug, Deserialize)]
pub struct NewClient {
    /// Client id.
    pub id: String,
    /// Allowed scopes (`<resource>/.default` allows the resource).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Allowed resources.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Public key for `private_key_jwt`.
    #[serde(default)]
    pub jwk: Option<Jwk>,
}

/// `POST /identity/workloads` body.
#[derive(Debug, Deserialize)]
pub struct NewWorkload {
    /// Workload name.
    pub name: String,
    /// Allowed resources (empty: any).
    #[serde(default)]
    pub resources: Vec<String>,
}

/// The JSON listing of a client (no secret, no hash).
pub fn client_json(client: &rampart_identity::issuer::Client) -> serde_json::Value {
    json!({
        "id": client.id,
        "oid": client.oid,
        "auth": client.auth_method(),
        "scopes": client.scopes,
        "resources": client.resources,
        "created_at": client.created_at,
    })
}

/// The JSON listing of a workload (no header, no digest).
pub fn workload_json(workload: &rampart_identity::issuer::Workload) -> serde_json::Value {
    json!({
        "name": workload.name,
        "oid": workload.oid,
        "client_id": workload.client_id,
        "resources": workload.resources,
        "created_at": workload.created_at,
    })
}

async fn list_clients(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Reply {
    let identity = admin_gate(&state, client, &headers, "/identity/clients")?;
    match identity.issuer.list_clients().await {
        Ok(clients) => {
            Ok(axum::Json(clients.iter().map(client_json).collect::<Vec<_>>()).into_response())
        }
        Err(error) => Err(registry_error(&error)),
    }
}

async fn add_client(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let identity = admin_gate(&state, client, &headers, "/identity/clients")?;
    let new: NewClient = json_body(&body)?;
    let spec = ClientSpec {
        id: new.id,
        scopes: new.scopes,
        resources: new.resources,
        jwk: new.jwk,
    };
    match identity.issuer.add_client(spec, ADMIN_ACTOR).await {
        Ok((client, secret)) => {
            let mut body = client_json(&client);
            if let (Some(secret), Some(map)) = (&secret, body.as_object_mut()) {
                map.insert("client_secret".into(), json!(secret.expose()));
            }
            Ok(no_store(
                (StatusCode::CREATED, axum::Json(body)).into_response(),
            ))
        }
        Err(error) => Err(registry_error(&error)),
    }
}

async fn new_client_secret(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let identity = admin_gate(&state, client, &headers, "/identity/clients/{id}/secret")?;
    match identity
        .issuer
        .generate_client_secret(&id, ADMIN_ACTOR)
        .await
    {
        Ok(secret) => Ok(no_store(
            axum::Json(json!({ "id": id, "client_secret": secret.expose() })).into_response(),
        )),
        Err(error) => Err(registry_error(&error)),
    }
}

async fn remove_client(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let identity = admin_gate(&state, client, &headers, "/identity/clients/{id}")?;
    match identity.issuer.remove_client(&id, ADMIN_ACTOR).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(error(StatusCode::NOT_FOUND, "no such client")),
        Err(error) => Err(registry_error(&error)),
    }
}

async fn list_workloads(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Reply {
    let identity = admin_gate(&state, client, &headers, "/identity/workloads")?;
    match identity.issuer.list_workloads().await {
        Ok(workloads) => {
            Ok(axum::Json(workloads.iter().map(workload_json).collect::<Vec<_>>()).into_response())
        }
        Err(error) => Err(registry_error(&error)),
    }
}

async fn add_workload(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let identity = admin_gate(&state, client, &headers, "/identity/workloads")?;
    let new: NewWorkload = json_body(&body)?;
    match identity
        .issuer
        .add_workload(&new.name, new.resources, ADMIN_ACTOR)
        .await
    {
        Ok((workload, header)) => {
            let mut body = workload_json(&workload);
            if let Some(map) = body.as_object_mut() {
                map.insert(
                    "identity_endpoint".into(),
                    json!(identity.managed_identity_url),
                );
                map.insert("identity_header".into(), json!(header.expose()));
            }
            Ok(no_store(
                (StatusCode::CREATED, axum::Json(body)).into_response(),
            ))
        }
        Err(error) => Err(registry_error(&error)),
    }
}

async fn remove_workload(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Reply {
    let identity = admin_gate(&state, client, &headers, "/identity/workloads/{name}")?;
    match identity.issuer.remove_workload(&name, ADMIN_ACTOR).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(error(StatusCode::NOT_FOUND, "no such workload")),
        Err(error) => Err(registry_error(&error)),
    }
}
