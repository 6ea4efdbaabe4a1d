//! Secrets routes (REST spec `Secrets/secrets.json`, 2026-04-01): set, get (latest or a
//! version), update, delete, list, list versions, get/list deleted, recover, purge, backup,
//! restore. Bodies and responses follow the spec's shapes: `SecretBundle`, `SecretItem`,
//! `DeletedSecretBundle`, `DeletedSecretItem`, `SecretListResult`, `BackupSecretResult`.
//!
//! The Azure SDKs ask for the latest version as `/secrets/{name}/` (empty version), so that
//! path is served too; a secret named `restore` stays reachable (the static `/secrets/restore`
//! route hands its other methods to the by-name handlers).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_vault::{
    Attributes, DeletedSecret, NewSecret, ObjectKind, Secret, SecretProperties, SecretUpdate,
    VaultInfo,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::VaultApi;
use crate::auth::actions;
use crate::context::{ApiPath, Body, Ctx, Operation};
use crate::error::{ApiError, Subject};
use crate::throttle::SECRET_CREATE;

const KIND: ObjectKind = ObjectKind::Secret;
/// Body limit of the restore route (a 500-version backup, base64).
const RESTORE_BODY_LIMIT: usize = 48 * 1024 * 1024;
/// Body limit of the other routes.
const BODY_LIMIT: usize = 256 * 1024;

const fn op(audit_action: &'static str, data_action: &'static str, write: bool) -> Operation {
    Operation {
        audit_action,
        data_action,
        throttle_class: None,
        write,
    }
}

static SET: Operation = Operation {
    audit_action: "secret.set",
    data_action: actions::SECRET_SET,
    throttle_class: Some(SECRET_CREATE),
    write: true,
};
static GET: Operation = op("secret.get", actions::SECRET_GET, false);
static UPDATE: Operation = op("secret.update", actions::SECRET_UPDATE, true);
static DELETE: Operation = op("secret.delete", actions::SECRET_DELETE, true);
static LIST: Operation = op("secret.list", actions::SECRET_READ_METADATA, false);
static LIST_VERSIONS: Operation = op("secret.list_versions", actions::SECRET_READ_METADATA, false);
static GET_DELETED: Operation = op("secret.get_deleted", actions::DELETED_SECRET_GET, false);
static LIST_DELETED: Operation = op("secret.list_deleted", actions::DELETED_SECRET_LIST, false);
static RECOVER: Operation = op("secret.recover", actions::DELETED_SECRET_RECOVER, true);
static PURGE: Operation = op("secret.purge", actions::DELETED_SECRET_PURGE, true);
static BACKUP: Operation = op("secret.backup", actions::SECRET_BACKUP, false);
static RESTORE: Operation = Operation {
    audit_action: "secret.restore",
    data_action: actions::SECRET_RESTORE,
    throttle_class: Some(SECRET_CREATE),
    write: true,
};

pub(crate) fn routes() -> Router<VaultApi> {
    Router::new()
        .route("/secrets", get(list))
        .route(
            "/secrets/restore",
            post(restore)
                .layer(DefaultBodyLimit::max(RESTORE_BODY_LIMIT))
                .put(|ctx: Ctx, body: Body| set(ctx, ApiPath("restore".into()), body))
                .get(|ctx: Ctx| get_latest(ctx, ApiPath("restore".into())))
                .patch(|ctx: Ctx, body: Body| update_latest(ctx, ApiPath("restore".into()), body))
                .delete(|ctx: Ctx| delete(ctx, ApiPath("restore".into()))),
        )
        .route(
            "/secrets/{name}",
            get(get_latest).put(set).patch(update_latest).delete(delete),
        )
        .route("/secrets/{name}/", get(get_latest).patch(update_latest))
        .route("/secrets/{name}/versions", get(list_versions))
        .route("/secrets/{name}/backup", post(backup))
        .route(
            "/secrets/{name}/{version}",
            get(get_version).patch(update_version),
        )
        .route("/deletedsecrets", get(list_deleted))
        .route("/deletedsecrets/{name}", get(get_deleted).delete(purge))
        .route("/deletedsecrets/{name}/recover", post(recover))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

// ---- bodies -----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct AttributesIn {
    enabled: Option<bool>,
    nbf: Option<i64>,
    exp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBody {
    value: String,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    attributes: Option<AttributesIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody {
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    attributes: Option<AttributesIn>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct RestoreBody {
    value: String,
}

// ---- responses --------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttributesOut {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    created: i64,
    updated: i64,
    recoverable_days: u32,
    recovery_level: &'static str,
}

impl AttributesOut {
    fn new(a: &Attributes, vault: &VaultInfo) -> Self {
        Self {
            enabled: a.enabled,
            nbf: a.not_before,
            exp: a.expires,
            created: a.created,
            updated: a.updated,
            recoverable_days: vault.retention_days,
            recovery_level: vault.recovery_level(),
        }
    }
}

/// `SecretBundle` / `SecretItem` / `DeletedSecretBundle` / `DeletedSecretItem` in one shape:
/// absent fields are skipped.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    attributes: AttributesOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    managed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_purge_date: Option<i64>,
}

impl<'a> SecretOut<'a> {
    /// `with_version`: the id names the version (bundles, version lists), or only the name
    /// (lists of latest versions).
    fn new(ctx: &Ctx, name: &str, version: &str, a: &'a Attributes, with_version: bool) -> Self {
        Self {
            value: None,
            id: ctx.object_id("secrets", name, with_version.then_some(version)),
            content_type: a.content_type.as_deref(),
            attributes: AttributesOut::new(a, ctx.vault()),
            tags: (!a.tags.is_empty()).then_some(&a.tags),
            kid: a.extra.get("kid").and_then(|v| v.as_str()),
            managed: a.managed.then_some(true),
            recovery_id: None,
            deleted_date: None,
            scheduled_purge_date: None,
        }
    }

    fn props(ctx: &Ctx, p: &'a SecretProperties, with_version: bool) -> Self {
        Self::new(ctx, &p.name, &p.version, &p.attributes, with_version)
    }

    fn secret(ctx: &Ctx, s: &'a Secret) -> Self {
        Self {
            value: Some(s.value.as_str()),
            ..Self::new(ctx, &s.name, &s.version, &s.attributes, true)
        }
    }

    fn deleted(ctx: &Ctx, d: &'a DeletedSecret, with_version: bool) -> Self {
        let name = &d.properties.name;
        Self {
            recovery_id: Some(format!("{}/deletedsecrets/{name}", ctx.base_url())),
            deleted_date: Some(d.deletion.deleted_on),
            scheduled_purge_date: Some(d.deletion.scheduled_purge),
            ..Self::props(ctx, &d.properties, with_version)
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListOut<'a> {
    value: Vec<SecretOut<'a>>,
    /// Absent on the last page (the spec's `nextLink` is a string, never null).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

fn json<T: Serialize>(body: &T) -> Response {
    axum::Json(body).into_response()
}

// ---- handlers ---------------------------------------------------------------------------

fn attributes_in(a: Option<AttributesIn>) -> AttributesIn {
    a.unwrap_or_default()
}

async fn set(
    ctx: Ctx,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let access = ctx.authorize(&SET, ctx.object_scope(KIND, &name)).await?;
    let result = async {
        let req: SetBody = ctx.json(&body)?;
        let attrs = attributes_in(req.attributes);
        let new = NewSecret {
            value: Zeroizing::new(req.value),
            content_type: req.content_type,
            tags: req.tags.unwrap_or_default(),
            enabled: attrs.enabled,
            not_before: attrs.nbf,
            expires: attrs.exp,
        };
        let secret = ctx
            .api()
            .secrets()
            .set(ctx.vault(), &name, new)
            .await
            .map_err(|e| ApiError::vault(e, Subject::live(KIND, &name)))?;
        Ok((
            json(&SecretOut::secret(&ctx, &secret)),
            secret.version.clone(),
        ))
    }
    .await;
    let version = result.as_ref().ok().map(|(_, v)| v.clone());
    access.finish(result.map(|(r, _)| r), version.as_deref())
}

async fn read(ctx: &Ctx, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    let access = ctx.authorize(&GET, ctx.object_scope(KIND, name)).await?;
    let result = ctx
        .api()
        .secrets()
        .get(ctx.vault(), name, version)
        .await
        .map(|s| json(&SecretOut::secret(ctx, &s)))
        .map_err(|e| ApiError::vault(e, Subject::live(KIND, name).with_version(version)));
    access.finish(result, version)
}

async fn get_latest(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    read(&ctx, &name, None).await
}

async fn get_version(
    ctx: Ctx,
    ApiPath((name, version)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    read(&ctx, &name, Some(&version)).await
}

async fn update(
    ctx: &Ctx,
    name: &str,
    version: Option<&str>,
    body: &bytes::Bytes,
) -> Result<Response, ApiError> {
    let access = ctx.authorize(&UPDATE, ctx.object_scope(KIND, name)).await?;
    let result = async {
        let req: UpdateBody = ctx.json(body)?;
        let attrs = attributes_in(req.attributes);
        let update = SecretUpdate {
            enabled: attrs.enabled,
            not_before: attrs.nbf,
            expires: attrs.exp,
            content_type: req.content_type,
            tags: req.tags,
        };
        ctx.api()
            .secrets()
            .update(ctx.vault(), name, version, update)
            .await
            .map(|p| json(&SecretOut::props(ctx, &p, true)))
            .map_err(|e| ApiError::vault(e, Subject::live(KIND, name).with_version(version)))
    }
    .await;
    access.finish(result, version)
}

async fn update_latest(
    ctx: Ctx,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    update(&ctx, &name, None, &body).await
}

async fn update_version(
    ctx: Ctx,
    ApiPath((name, version)): ApiPath<(String, String)>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    update(&ctx, &name, Some(&version), &body).await
}

async fn delete(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&DELETE, ctx.object_scope(KIND, &name))
        .await?;
    let result = ctx
        .api()
        .secrets()
        .delete(ctx.vault(), &name)
        .await
        .map(|d| json(&SecretOut::deleted(&ctx, &d, true)))
        .map_err(|e| ApiError::vault(e, Subject::live(KIND, &name)));
    access.finish(result, None)
}

async fn list(ctx: Ctx) -> Result<Response, ApiError> {
    let access = ctx.authorize(&LIST, ctx.vault_scope()).await?;
    let result = async {
        let paging = ctx.paging("secrets")?;
        let page = ctx
            .api()
            .secrets()
            .list(ctx.vault(), paging.start_after.as_deref(), paging.max)
            .await
            .map_err(|e| ApiError::vault(e, Subject::live(KIND, "")))?;
        Ok(json(&ListOut {
            value: page
                .items
                .iter()
                .map(|p| SecretOut::props(&ctx, p, false))
                .collect(),
            next_link: ctx.next_link("secrets", page.next.as_deref(), paging.max),
        }))
    }
    .await;
    access.finish(result, None)
}

async fn list_versions(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&LIST_VERSIONS, ctx.object_scope(KIND, &name))
        .await?;
    let result = async {
        let list_id = format!("versions/{}", name.to_ascii_lowercase());
        let paging = ctx.paging(&list_id)?;
        let page = ctx
            .api()
            .secrets()
            .list_versions(
                ctx.vault(),
                &name,
                paging.start_after.as_deref(),
                paging.max,
            )
            .await
            .map_err(|e| ApiError::vault(e, Subject::live(KIND, &name)))?;
        Ok(json(&ListOut {
            value: page
                .items
                .iter()
                .map(|p| SecretOut::props(&ctx, p, true))
                .collect(),
            next_link: ctx.next_link(&list_id, page.next.as_deref(), paging.max),
        }))
    }
    .await;
    access.finish(result, None)
}

async fn get_deleted(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&GET_DELETED, ctx.object_scope(KIND, &name))
        .await?;
    let result = ctx
        .api()
        .secrets()
        .get_deleted(ctx.vault(), &name)
        .await
        .map(|d| json(&SecretOut::deleted(&ctx, &d, true)))
        .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, &name)));
    access.finish(result, None)
}

async fn list_deleted(ctx: Ctx) -> Result<Response, ApiError> {
    let access = ctx.authorize(&LIST_DELETED, ctx.vault_scope()).await?;
    let result = async {
        let paging = ctx.paging("deletedsecrets")?;
        let page = ctx
            .api()
            .secrets()
            .list_deleted(ctx.vault(), paging.start_after.as_deref(), paging.max)
            .await
            .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, "")))?;
        Ok(json(&ListOut {
            value: page
                .items
                .iter()
                .map(|d| SecretOut::deleted(&ctx, d, false))
                .collect(),
            next_link: ctx.next_link("deletedsecrets", page.next.as_deref(), paging.max),
        }))
    }
    .await;
    access.finish(result, None)
}

async fn recover(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&RECOVER, ctx.object_scope(KIND, &name))
        .await?;
    let result = ctx
        .api()
        .secrets()
        .recover(ctx.vault(), &name)
        .await
        .map(|p| json(&SecretOut::props(&ctx, &p, true)))
        .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, &name)));
    access.finish(result, None)
}

async fn purge(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx.authorize(&PURGE, ctx.object_scope(KIND, &name)).await?;
    let result = ctx
        .api()
        .secrets()
        .purge(ctx.vault(), &name)
        .await
        .map(|()| StatusCode::NO_CONTENT.into_response())
        .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, &name)));
    access.finish(result, None)
}

#[derive(Serialize)]
struct BackupOut {
    value: String,
}

async fn backup(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&BACKUP, ctx.object_scope(KIND, &name))
        .await?;
    let result = ctx
        .api()
        .secrets()
        .backup(ctx.vault(), &name)
        .await
        .map(|blob| {
            json(&BackupOut {
                value: URL_SAFE_NO_PAD.encode(blob),
            })
        })
        .map_err(|e| ApiError::vault(e, Subject::live(KIND, &name)));
    access.finish(result, None)
}

async fn restore(ctx: Ctx, Body(body): Body) -> Result<Response, ApiError> {
    let access = ctx.authorize(&RESTORE, ctx.vault_scope()).await?;
    let result = async {
        let req: RestoreBody = ctx.json(&body)?;
        let blob = URL_SAFE_NO_PAD
            .decode(req.value.trim_end_matches('='))
            .map_err(|_| ApiError::bad_parameter("The backup blob is not valid base64url."))?;
        let restored = ctx.api().secrets().restore(ctx.vault(), &blob).await;
        match restored {
            Ok(p) => Ok(json(&SecretOut::props(&ctx, &p, true))),
            Err(rampart_vault::VaultError::AlreadyExists { .. }) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "Conflict",
                "A secret with the backup's name already exists in this vault (live or deleted); restore is refused.",
            )
            .with_inner("ObjectAlreadyExists")),
            Err(e) => Err(ApiError::vault(e, Subject::live(KIND, ""))),
        }
    }
    .await;
    access.finish(result, None)
}
