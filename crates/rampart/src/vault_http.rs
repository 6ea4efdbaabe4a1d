//! The vault's management API on the admin listener (`/vault/...`, admin token only, compared
//! in constant time): seal status, Shamir init and unseal, the vault registry (create, list)
//! and the API's read-only switch. `rampart vault status|init|unseal|create|list|read-only`
//! call it on the running plane.
//!
//! Shares travel only in request and response bodies: never logged, never audited (the audit
//! records say who asked, the outcome and the progress). With the Shamir seal, `init` makes the
//! shares, hands them back once and leaves the vault sealed, so the operators prove they hold a
//! quorum before anything is stored; the shares submitted so far live only in the process
//! (a restart starts sealed, with no progress).
//!
//! Read-only mode (`GET`/`PUT /vault/read-only`) switches the running API, as during a regional
//! failover: the state is in memory only, and a restart starts from `[vault] read_only` again.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use rampart_audit::{Decision, Record};
use rampart_config::{VaultConfig, VaultSeal};
use rampart_vault::{
    Barrier, InitMethod, SealStatus, VaultError, VaultInfo, VaultOptions, VaultRegistry,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admin::AdminState;
use crate::admin_reply::{Refusal, Reply, error, json_body, unauthorized};
use crate::identity_gate::LOCAL_ADMIN;

/// What the `/vault/...` routes act on.
#[derive(Debug, Clone)]
pub struct VaultAdmin {
    /// The plane's barrier (sealed or not).
    pub barrier: Arc<Barrier>,
    /// `[vault]` (seal method, default vault, geography).
    pub config: Arc<VaultConfig>,
    /// The Azure Key Vault API (its read-only switch).
    pub api: rampart_vault_api::VaultApi,
}

/// The `/vault/...` routes.
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/vault/status", get(status))
        .route("/vault/init", post(init))
        .route("/vault/unseal", post(unseal))
        .route("/vault/vaults", get(list).post(create))
        .route("/vault/read-only", get(read_only).put(set_read_only))
}

/// The admin token's holder, or a 401 (audited).
fn authorize(
    state: &AdminState,
    client: SocketAddr,
    headers: &HeaderMap,
    path: &str,
) -> Result<VaultAdmin, Refusal> {
    if !crate::admin::bearer_matches(headers, &state.admin_token) {
        return Err(unauthorized(
            state,
            client,
            path,
            "the admin token is required",
        ));
    }
    state
        .vault
        .clone()
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "this plane does not run the vault"))
}

fn record(action: &str, decision: Decision, client: SocketAddr) -> Record {
    Record::new("vault", action, decision)
        .actor(LOCAL_ADMIN, "admin-token")
        .source(client)
}

/// Records `record` durably; a trail that cannot take it refuses the operation (503).
async fn audit(state: &AdminState, record: Record) -> Result<(), Refusal> {
    state.auditor.record(record).await.map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, "the audit trail cannot record a vault admin operation: refused");
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit trail cannot record the operation",
        )
    })
}

/// How a vault error answers: refusals are the caller's (4xx), the rest 500.
fn refused(err: &VaultError) -> Refusal {
    let status = match err {
        VaultError::Sealed => StatusCode::SERVICE_UNAVAILABLE,
        VaultError::NotInitialized
        | VaultError::AlreadyInitialized
        | VaultError::SealMethodMismatch { .. }
        | VaultError::AlreadyExists { .. } => StatusCode::CONFLICT,
        VaultError::InvalidShare { .. }
        | VaultError::DuplicateShare { .. }
        | VaultError::ForeignShare
        | VaultError::WrongUnsealKey
        | VaultError::InvalidShamirParameters { .. }
        | VaultError::InvalidSetting { .. } => StatusCode::BAD_REQUEST,
        other => {
            tracing::error!(error = %other, "vault admin operation failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the vault operation failed",
            );
        }
    };
    error(status, err)
}

fn status_json(status: &SealStatus) -> Value {
    json!({
        "initialized": status.initialized,
        "sealed": status.sealed,
        "seal_type": status.method,
        "shares": status.shares,
        "threshold": status.threshold,
        "progress": status.progress,
        "root_key_generation": status.root_key_generation,
    })
}

async fn status(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Reply {
    let vault = authorize(&state, client, &headers, "/vault/status")?;
    let status = vault.barrier.status().await.map_err(|e| refused(&e))?;
    state
        .auditor
        .record_routine(record("vault.status", Decision::Allow, client));
    let mut body = status_json(&status);
    body["configured_seal"] = json!(vault.config.seal.method());
    Ok(axum::Json(body).into_response())
}

#[derive(Deserialize)]
struct InitBody {
    shares: u8,
    threshold: u8,
}

async fn init(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let vault = authorize(&state, client, &headers, "/vault/init")?;
    let body: InitBody = json_body(&body)?;
    if vault.config.seal != VaultSeal::Shamir {
        return Err(error(
            StatusCode::CONFLICT,
            format!(
                "this plane's vault uses the {} seal: it is initialized and unsealed at start",
                vault.config.seal.method()
            ),
        ));
    }
    let attempt = record("vault.init", Decision::Allow, client)
        .detail("shares", body.shares.to_string())
        .detail("threshold", body.threshold.to_string());
    audit(&state, attempt.clone().detail("stage", "requested")).await?;
    let output = match vault
        .barrier
        .init(InitMethod::Shamir {
            shares: body.shares,
            threshold: body.threshold,
        })
        .await
    {
        Ok(output) => output,
        Err(err) => {
            state.auditor.record_routine(
                record("vault.init", Decision::Deny, client).reason(err.to_string()),
            );
            return Err(refused(&err));
        }
    };
    // Sealed again at once: the vault opens only when a quorum of the shares handed out here
    // comes back, proving the operators hold them. The default vault is created on unseal.
    vault.barrier.seal();
    let shares: Vec<&str> = output.shares.iter().map(|share| share.as_str()).collect();
    state
        .auditor
        .record_routine(attempt.detail("stage", "done"));
    tracing::info!(
        shares = body.shares,
        threshold = body.threshold,
        "vault initialized (shamir seal), sealed until unsealed"
    );
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "shares": shares,
            "threshold": body.threshold,
            "sealed": true,
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct UnsealBody {
    share: String,
}

async fn unseal(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let vault = authorize(&state, client, &headers, "/vault/unseal")?;
    let body: UnsealBody = json_body(&body)?;
    let progress = match vault.barrier.submit_unseal_share(body.share.trim()).await {
        Ok(progress) => progress,
        Err(err) => {
            audit(
                &state,
                record("vault.unseal", Decision::Deny, client).reason(err.to_string()),
            )
            .await?;
            return Err(refused(&err));
        }
    };
    let mut outcome = record("vault.unseal", Decision::Allow, client)
        .detail("threshold", progress.threshold.to_string());
    if progress.sealed {
        outcome = outcome.detail("progress", progress.progress.to_string());
    } else {
        outcome = outcome.detail("unsealed", "true");
        if let Err(err) = crate::vault::ensure_default_vault(&vault.config, &vault.barrier).await {
            tracing::error!(error = %err, "cannot create the default vault after unsealing");
        }
    }
    audit(&state, outcome).await?;
    Ok(axum::Json(json!({
        "sealed": progress.sealed,
        "progress": progress.progress,
        "threshold": progress.threshold,
    }))
    .into_response())
}

fn info_json(info: &VaultInfo) -> Value {
    json!({
        "name": info.name,
        "retention_days": info.retention_days,
        "purge_protection": info.purge_protection,
        "geography": info.geography,
        "recovery_level": info.recovery_level(),
    })
}

async fn list(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Reply {
    let vault = authorize(&state, client, &headers, "/vault/vaults")?;
    let vaults = VaultRegistry::new(Arc::clone(&vault.barrier))
        .list()
        .await
        .map_err(|e| refused(&e))?;
    state
        .auditor
        .record_routine(record("vault.list", Decision::Allow, client));
    Ok(axum::Json(vaults.iter().map(info_json).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    retention_days: u32,
    #[serde(default)]
    purge_protection: bool,
}

async fn create(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let vault = authorize(&state, client, &headers, "/vault/vaults")?;
    let body: CreateBody = json_body(&body)?;
    let options = VaultOptions {
        retention_days: body.retention_days,
        purge_protection: body.purge_protection,
        geography: vault.config.geography.clone(),
    };
    let info = match VaultRegistry::new(Arc::clone(&vault.barrier))
        .create(&body.name, &options)
        .await
    {
        Ok(info) => info,
        Err(err) => {
            state.auditor.record_routine(
                record("vault.create", Decision::Deny, client)
                    .resource(format!("/vaults/{}", body.name.to_ascii_lowercase()))
                    .reason(err.to_string()),
            );
            return Err(refused(&err));
        }
    };
    audit(
        &state,
        record("vault.create", Decision::Allow, client)
            .resource(format!("/vaults/{}", info.name))
            .detail("retention_days", info.retention_days.to_string())
            .detail("purge_protection", info.purge_protection.to_string()),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(info_json(&info))).into_response())
}

fn read_only_json(vault: &VaultAdmin) -> Value {
    json!({
        "read_only": vault.api.is_read_only(),
        "configured": vault.config.read_only,
        "persists": false,
    })
}

async fn read_only(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Reply {
    let vault = authorize(&state, client, &headers, "/vault/read-only")?;
    state
        .auditor
        .record_routine(record("vault.read_only_status", Decision::Allow, client));
    Ok(axum::Json(read_only_json(&vault)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadOnlyBody {
    read_only: bool,
}

/// Switches read-only mode; the change is audited durably before it takes effect (a trail
/// that cannot take it refuses the switch).
async fn set_read_only(
    State(state): State<AdminState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Reply {
    let vault = authorize(&state, client, &headers, "/vault/read-only")?;
    let body: ReadOnlyBody = json_body(&body)?;
    let was = vault.api.is_read_only();
    audit(
        &state,
        record("vault.read_only", Decision::Allow, client)
            .detail("read_only", body.read_only.to_string())
            .detail("was", was.to_string()),
    )
    .await?;
    vault.api.set_read_only(body.read_only);
    Ok(axum::Json(read_only_json(&vault)).into_response())
}
