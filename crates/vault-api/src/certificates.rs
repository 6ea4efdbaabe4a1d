//! Certificates routes (REST spec `Certificates/certificates.json`, 2026-04-01): create (202
//! with the pending operation), get (latest or a version), update, delete, list, versions,
//! policy get/update, import, the pending operation (get, cancel, delete, merge), deleted
//! certificates (list, get, recover, purge) and contacts. Bodies and responses follow the
//! spec's `CertificateBundle`, `CertificateItem`, `CertificateOperation`,
//! `CertificatePolicy`, `DeletedCertificateBundle` and `Contacts` shapes.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rampart_vault::certificates::{
    Certificate, CertificateOperation, CertificateUpdate, Certificates, Contact,
    DeletedCertificate, ImportCertificate, NewCertificate, Policy,
};
use rampart_vault::{Attributes, ObjectKind, VaultInfo};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::VaultApi;
use crate::context::{ApiPath, Body, Ctx, Operation};
use crate::error::{ApiError, Subject};
use crate::throttle::SECRET_CREATE;

const KIND: ObjectKind = ObjectKind::Certificate;
const BODY_LIMIT: usize = 256 * 1024;
/// Body limit of the restore route (500 versions of three objects, base64).
const RESTORE_BODY_LIMIT: usize = 96 * 1024 * 1024;

/// Certificate data actions (Azure's names). [`actions::ALL`] lists them for RBAC tests.
pub mod actions {
    /// Every certificate data action the routes use.
    pub const ALL: [&str; 10] = [
        READ,
        CREATE,
        IMPORT,
        UPDATE,
        DELETE,
        RECOVER,
        PURGE,
        BACKUP,
        RESTORE,
        CONTACTS_WRITE,
    ];
    /// Read certificates, versions, policies, pending operations, deleted certificates and
    /// contacts.
    pub const READ: &str = "Microsoft.KeyVault/vaults/certificates/read";
    /// Create a certificate.
    pub const CREATE: &str = "Microsoft.KeyVault/vaults/certificates/create/action";
    /// Import a certificate.
    pub const IMPORT: &str = "Microsoft.KeyVault/vaults/certificates/import/action";
    /// Update attributes, policy or the pending operation (merge, cancel).
    pub const UPDATE: &str = "Microsoft.KeyVault/vaults/certificates/update/action";
    /// Delete a certificate (soft delete) or its pending operation.
    pub const DELETE: &str = "Microsoft.KeyVault/vaults/certificates/delete";
    /// Recover a deleted certificate.
    pub const RECOVER: &str = "Microsoft.KeyVault/vaults/certificates/recover/action";
    /// Purge a deleted certificate.
    pub const PURGE: &str = "Microsoft.KeyVault/vaults/certificates/purge/action";
    /// Back a certificate up.
    pub const BACKUP: &str = "Microsoft.KeyVault/vaults/certificates/backup/action";
    /// Restore a certificate backup.
    pub const RESTORE: &str = "Microsoft.KeyVault/vaults/certificates/restore/action";
    /// Set or delete certificate contacts.
    pub const CONTACTS_WRITE: &str = "Microsoft.KeyVault/vaults/certificatecontacts/write";
}

const fn op(audit_action: &'static str, data_action: &'static str, write: bool) -> Operation {
    Operation {
        audit_action,
        data_action,
        throttle_class: None,
        write,
    }
}

static CREATE: Operation = op("certificate.create", actions::CREATE, true);
static IMPORT: Operation = Operation {
    audit_action: "certificate.import",
    data_action: actions::IMPORT,
    throttle_class: Some(SECRET_CREATE),
    write: true,
};
static GET: Operation = op("certificate.get", actions::READ, false);
static LIST: Operation = op("certificate.list", actions::READ, false);
static UPDATE: Operation = op("certificate.update", actions::UPDATE, true);
static DELETE: Operation = op("certificate.delete", actions::DELETE, true);
static GET_POLICY: Operation = op("certificate.get_policy", actions::READ, false);
static UPDATE_POLICY: Operation = op("certificate.update_policy", actions::UPDATE, true);
static GET_PENDING: Operation = op("certificate.get_pending", actions::READ, false);
static CANCEL_PENDING: Operation = op("certificate.cancel_pending", actions::UPDATE, true);
static DELETE_PENDING: Operation = op("certificate.delete_pending", actions::DELETE, true);
static MERGE: Operation = op("certificate.merge", actions::UPDATE, true);
static GET_DELETED: Operation = op("certificate.get_deleted", actions::READ, false);
static LIST_DELETED: Operation = op("certificate.list_deleted", actions::READ, false);
static RECOVER: Operation = op("certificate.recover", actions::RECOVER, true);
static PURGE: Operation = op("certificate.purge", actions::PURGE, true);
static BACKUP: Operation = op("certificate.backup", actions::BACKUP, false);
static RESTORE: Operation = Operation {
    audit_action: "certificate.restore",
    data_action: actions::RESTORE,
    throttle_class: Some(SECRET_CREATE),
    write: true,
};
static GET_CONTACTS: Operation = op("certificate.get_contacts", actions::READ, false);
static SET_CONTACTS: Operation = op("certificate.set_contacts", actions::CONTACTS_WRITE, true);
static DELETE_CONTACTS: Operation =
    op("certificate.delete_contacts", actions::CONTACTS_WRITE, true);

pub(crate) fn routes() -> Router<VaultApi> {
    Router::new()
        .route("/certificates", get(list))
        .route(
            "/certificates/restore",
            post(restore).layer(DefaultBodyLimit::max(RESTORE_BODY_LIMIT)),
        )
        .route("/certificates/{name}/backup", post(backup))
        .route(
            "/certificates/contacts",
            get(get_contacts).put(set_contacts).delete(delete_contacts),
        )
        .route(
            "/certificates/{name}",
            get(get_latest).patch(update_latest).delete(delete),
        )
        .route(
            "/certificates/{name}/",
            get(get_latest).patch(update_latest),
        )
        .route("/certificates/{name}/create", post(create))
        .route("/certificates/{name}/import", post(import))
        .route("/certificates/{name}/versions", get(list_versions))
        .route(
            "/certificates/{name}/policy",
            get(get_policy).patch(update_policy),
        )
        .route(
            "/certificates/{name}/pending",
            get(get_pending)
                .patch(cancel_pending)
                .delete(delete_pending),
        )
        .route("/certificates/{name}/pending/merge", post(merge))
        .route(
            "/certificates/{name}/{version}",
            get(get_version).patch(update_version),
        )
        .route("/deletedcertificates", get(list_deleted))
        .route(
            "/deletedcertificates/{name}",
            get(get_deleted).delete(purge),
        )
        .route("/deletedcertificates/{name}/recover", post(recover))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

fn service(ctx: &Ctx) -> Certificates {
    Certificates::new(ctx.api().store().clone())
}

fn json<T: Serialize>(body: &T) -> Response {
    axum::Json(body).into_response()
}

// ---- bodies -----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct AttributesIn {
    enabled: Option<bool>,
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    policy: Option<Policy>,
    #[serde(default)]
    attributes: Option<AttributesIn>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct ImportBody {
    value: String,
    #[serde(default)]
    pwd: Option<String>,
    #[serde(default)]
    policy: Option<serde_json::Value>,
    #[serde(default)]
    attributes: Option<AttributesIn>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(default)]
    policy: Option<serde_json::Value>,
    #[serde(default)]
    attributes: Option<AttributesIn>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct MergeBody {
    x5c: Vec<String>,
    #[serde(default)]
    attributes: Option<AttributesIn>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct CancelBody {
    cancellation_requested: bool,
}

#[derive(Deserialize)]
struct ContactsBody {
    #[serde(default)]
    contacts: Vec<ContactIn>,
}

#[derive(Deserialize)]
struct ContactIn {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
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

/// `CertificateBundle` / `CertificateItem` / `DeletedCertificate*` in one shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertOut<'a> {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    x5t: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cer: Option<String>,
    attributes: AttributesOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_purge_date: Option<i64>,
}

fn policy_out(ctx: &Ctx, name: &str, policy: &Policy) -> serde_json::Value {
    let mut value = serde_json::to_value(policy).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "id".into(),
            format!("{}/certificates/{name}/policy", ctx.base_url()).into(),
        );
    }
    value
}

impl<'a> CertOut<'a> {
    /// `full`: a bundle (versioned id, kid/sid, cer, policy); otherwise a list item.
    fn new(ctx: &Ctx, c: &'a Certificate, full: bool, with_version: bool) -> Self {
        let version = with_version.then_some(c.version.as_str());
        Self {
            id: ctx.object_id("certificates", &c.name, version),
            kid: full.then(|| ctx.object_id("keys", &c.name, Some(&c.version))),
            sid: full.then(|| ctx.object_id("secrets", &c.name, Some(&c.version))),
            x5t: &c.x5t,
            cer: full.then(|| STANDARD.encode(&c.cer)),
            attributes: AttributesOut::new(&c.attributes, ctx.vault()),
            tags: (!c.attributes.tags.is_empty()).then_some(&c.attributes.tags),
            policy: if full {
                c.policy.as_ref().map(|p| policy_out(ctx, &c.name, p))
            } else {
                None
            },
            recovery_id: None,
            deleted_date: None,
            scheduled_purge_date: None,
        }
    }

    fn deleted(ctx: &Ctx, d: &'a DeletedCertificate, full: bool) -> Self {
        let name = &d.certificate.name;
        Self {
            recovery_id: Some(format!("{}/deletedcertificates/{name}", ctx.base_url())),
            deleted_date: Some(d.deletion.deleted_on),
            scheduled_purge_date: Some(d.deletion.scheduled_purge),
            ..Self::new(ctx, &d.certificate, full, full)
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListOut<'a> {
    value: Vec<CertOut<'a>>,
    /// Absent on the last page (the spec's `nextLink` is a string, never null).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct OperationOut<'a> {
    id: String,
    issuer: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    csr: Option<String>,
    cancellation_requested: bool,
    status: &'a str,
    status_details: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    request_id: &'a str,
}

impl<'a> OperationOut<'a> {
    fn new(ctx: &Ctx, o: &'a CertificateOperation) -> Self {
        Self {
            id: format!("{}/certificates/{}/pending", ctx.base_url(), o.name),
            issuer: serde_json::json!({ "name": o.issuer_name }),
            csr: o.csr.as_ref().map(|c| STANDARD.encode(c)),
            cancellation_requested: o.cancellation_requested,
            status: &o.status,
            status_details: &o.status_details,
            error: o.error.as_ref().map(|e| ErrorOut {
                code: &e.code,
                message: &e.message,
            }),
            target: o
                .target_version
                .as_ref()
                .map(|_| ctx.object_id("certificates", &o.name, None)),
            request_id: &o.request_id,
        }
    }
}

fn contacts_out(ctx: &Ctx, contacts: &[Contact]) -> Response {
    let list: Vec<serde_json::Value> = contacts
        .iter()
        .map(|c| {
            let mut m = serde_json::Map::new();
            if let Some(e) = &c.email {
                m.insert("email".into(), e.clone().into());
            }
            if let Some(n) = &c.name {
                m.insert("name".into(), n.clone().into());
            }
            if let Some(p) = &c.phone {
                m.insert("phone".into(), p.clone().into());
            }
            serde_json::Value::Object(m)
        })
        .collect();
    json(&serde_json::json!({
        "id": format!("{}/certificates/contacts", ctx.base_url()),
        "contacts": list,
    }))
}

// ---- handlers ---------------------------------------------------------------------------

fn verr(name: &str) -> impl Fn(rampart_vault::VaultError) -> ApiError + '_ {
    move |e| ApiError::vault(e, Subject::live(KIND, name))
}

async fn create(
    ctx: Ctx,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&CREATE, ctx.object_scope(KIND, &name))
        .await?;
    let result = async {
        let req: CreateBody = ctx.json(&body)?;
        let new = NewCertificate {
            policy: req.policy.unwrap_or_default(),
            enabled: req.attributes.and_then(|a| a.enabled),
            tags: req.tags.unwrap_or_default(),
        };
        let mut op = service(&ctx)
            .create(ctx.vault(), &name, new)
            .await
            .map_err(verr(&name))?;
        // Azure's create is asynchronous: its 202 always says inProgress, and the SDKs' pollers
        // rely on that (a completed first answer leaves them without a result); the operation
        // reads `completed` from the first GET of `/pending` on.
        if op.status == "completed" {
            op.status = "inProgress".into();
            op.status_details = "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later.".into();
            op.target_version = None;
        }
        let mut response = json(&OperationOut::new(&ctx, &op));
        *response.status_mut() = StatusCode::ACCEPTED;
        if let Ok(location) = format!(
            "{}/certificates/{}/pending?api-version={}",
            ctx.base_url(),
            op.name,
            ctx.api_version()
        )
        .parse()
        {
            response.headers_mut().insert("location", location);
        }
        Ok(response)
    }
    .await;
    access.finish(result, None)
}

async fn import(
    ctx: Ctx,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&IMPORT, ctx.object_scope(KIND, &name))
        .await?;
    let result = async {
        let req: ImportBody = ctx.json(&body)?;
        let import = ImportCertificate {
            value: Zeroizing::new(req.value),
            password: req.pwd.map(Zeroizing::new),
            policy: req.policy,
            enabled: req.attributes.and_then(|a| a.enabled),
            tags: req.tags.unwrap_or_default(),
        };
        let cert = service(&ctx)
            .import(ctx.vault(), &name, import)
            .await
            .map_err(verr(&name))?;
        Ok((json(&CertOut::new(&ctx, &cert, true, true)), cert.version))
    }
    .await;
    let version = result.as_ref().ok().map(|(_, v)| v.clone());
    access.finish(result.map(|(r, _)| r), version.as_deref())
}

async fn read(ctx: &Ctx, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    let access = ctx.authorize(&GET, ctx.object_scope(KIND, name)).await?;
    let result = service(ctx)
        .get(&ctx.vault().name, name, version)
        .await
        .map(|c| json(&CertOut::new(ctx, &c, true, true)))
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
        let update = CertificateUpdate {
            enabled: req.attributes.and_then(|a| a.enabled),
            tags: req.tags,
            policy: req.policy,
        };
        service(ctx)
            .update(ctx.vault(), name, version, update)
            .await
            .map(|c| json(&CertOut::new(ctx, &c, true, true)))
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
    let result = service(&ctx)
        .delete(ctx.vault(), &name)
        .await
        .map(|d| json(&CertOut::deleted(&ctx, &d, true)))
        .map_err(verr(&name));
    access.finish(result, None)
}

async fn list(ctx: Ctx) -> Result<Response, ApiError> {
    let access = ctx.authorize(&LIST, ctx.vault_scope()).await?;
    let result = async {
        let paging = ctx.paging("certificates")?;
        let page = service(&ctx)
            .list(ctx.vault(), paging.start_after.as_deref(), paging.max)
            .await
            .map_err(verr(""))?;
        Ok(json(&ListOut {
            value: page
                .items
                .iter()
                .map(|c| CertOut::new(&ctx, c, false, false))
                .collect(),
            next_link: ctx.next_link("certificates", page.next.as_deref(), paging.max),
        }))
    }
    .await;
    access.finish(result, None)
}

async fn list_versions(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx.authorize(&LIST, ctx.object_scope(KIND, &name)).await?;
    let result = async {
        let list_id = format!("certversions/{}", name.to_ascii_lowercase());
        let paging = ctx.paging(&list_id)?;
        let page = service(&ctx)
            .list_versions(
                ctx.vault(),
                &name,
                paging.start_after.as_deref(),
                paging.max,
            )
            .await
            .map_err(verr(&name))?;
        Ok(json(&ListOut {
            value: page
                .items
                .iter()
                .map(|c| CertOut::new(&ctx, c, false, true))
                .collect(),
            next_link: ctx.next_link(&list_id, page.next.as_deref(), paging.max),
        }))
    }
    .await;
    access.finish(result, None)
}

async fn get_policy(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&GET_POLICY, ctx.object_scope(KIND, &name))
        .await?;
    let result = service(&ctx)
        .policy(ctx.vault(), &name)
        .await
        .map(|p| json(&policy_out(&ctx, &name, &p)))
        .map_err(verr(&name));
    access.finish(result, None)
}

async fn update_policy(
    ctx: Ctx,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&UPDATE_POLICY, ctx.object_scope(KIND, &name))
        .await?;
    let result = async {
        let patch: serde_json::Value = ctx.json(&body)?;
        service(&ctx)
            .update_policy(ctx.vault(), &name, &patch)
            .await
            .map(|p| json(&policy_out(&ctx, &name, &p)))
            .map_err(verr(&name))
    }
    .await;
    access.finish(result, None)
}

async fn get_pending(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&GET_PENDING, ctx.object_scope(KIND, &name))
        .await?;
    let result = service(&ctx)
        .operation(ctx.vault(), &name)
        .await
        .map(|o| json(&OperationOut::new(&ctx, &o)))
        .map_err(verr(&name));
    access.finish(result, None)
}

async fn cancel_pending(
    ctx: Ctx,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&CANCEL_PENDING, ctx.object_scope(KIND, &name))
        .await?;
    let result = async {
        let req: CancelBody = ctx.json(&body)?;
        let certs = service(&ctx);
        let op = if req.cancellation_requested {
            certs.cancel_operation(ctx.vault(), &name).await
        } else {
            certs.operation(ctx.vault(), &name).await
        }
        .map_err(verr(&name))?;
        Ok(json(&OperationOut::new(&ctx, &op)))
    }
    .await;
    access.finish(result, None)
}

async fn delete_pending(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&DELETE_PENDING, ctx.object_scope(KIND, &name))
        .await?;
    let result = service(&ctx)
        .delete_operation(ctx.vault(), &name)
        .await
        .map(|o| json(&OperationOut::new(&ctx, &o)))
        .map_err(verr(&name));
    access.finish(result, None)
}

async fn merge(
    ctx: Ctx,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let access = ctx.authorize(&MERGE, ctx.object_scope(KIND, &name)).await?;
    let result =
        async {
            let req: MergeBody = ctx.json(&body)?;
            let mut x5c = Vec::with_capacity(req.x5c.len());
            for c in &req.x5c {
                let compact: String = c.chars().filter(|ch| !ch.is_whitespace()).collect();
                x5c.push(STANDARD.decode(compact).map_err(|_| {
                    ApiError::bad_parameter("x5c must hold base64 DER certificates.")
                })?);
            }
            let cert = service(&ctx)
                .merge(
                    ctx.vault(),
                    &name,
                    x5c,
                    req.attributes.and_then(|a| a.enabled),
                    req.tags,
                )
                .await
                .map_err(verr(&name))?;
            let mut response = json(&CertOut::new(&ctx, &cert, true, true));
            *response.status_mut() = StatusCode::CREATED;
            Ok(response)
        }
        .await;
    access.finish(result, None)
}

async fn get_deleted(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&GET_DELETED, ctx.object_scope(KIND, &name))
        .await?;
    let result = service(&ctx)
        .get_deleted(ctx.vault(), &name)
        .await
        .map(|d| json(&CertOut::deleted(&ctx, &d, true)))
        .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, &name)));
    access.finish(result, None)
}

async fn list_deleted(ctx: Ctx) -> Result<Response, ApiError> {
    let access = ctx.authorize(&LIST_DELETED, ctx.vault_scope()).await?;
    let result = async {
        let paging = ctx.paging("deletedcertificates")?;
        let page = service(&ctx)
            .list_deleted(ctx.vault(), paging.start_after.as_deref(), paging.max)
            .await
            .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, "")))?;
        Ok(json(&ListOut {
            value: page
                .items
                .iter()
                .map(|d| CertOut::deleted(&ctx, d, false))
                .collect(),
            next_link: ctx.next_link("deletedcertificates", page.next.as_deref(), paging.max),
        }))
    }
    .await;
    access.finish(result, None)
}

async fn recover(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&RECOVER, ctx.object_scope(KIND, &name))
        .await?;
    let result = service(&ctx)
        .recover(ctx.vault(), &name)
        .await
        .map(|c| json(&CertOut::new(&ctx, &c, true, true)))
        .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, &name)));
    access.finish(result, None)
}

async fn purge(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx.authorize(&PURGE, ctx.object_scope(KIND, &name)).await?;
    let result = service(&ctx)
        .purge(ctx.vault(), &name)
        .await
        .map(|()| StatusCode::NO_CONTENT.into_response())
        .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, &name)));
    access.finish(result, None)
}

async fn get_contacts(ctx: Ctx) -> Result<Response, ApiError> {
    let access = ctx.authorize(&GET_CONTACTS, ctx.vault_scope()).await?;
    let result = async {
        let contacts = service(&ctx)
            .contacts(ctx.vault())
            .await
            .map_err(verr("contacts"))?;
        if contacts.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "ContactsNotFound",
                "Contacts not found",
            ));
        }
        Ok(contacts_out(&ctx, &contacts))
    }
    .await;
    access.finish(result, None)
}

async fn set_contacts(ctx: Ctx, Body(body): Body) -> Result<Response, ApiError> {
    let access = ctx.authorize(&SET_CONTACTS, ctx.vault_scope()).await?;
    let result = async {
        let req: ContactsBody = ctx.json(&body)?;
        let contacts = req
            .contacts
            .into_iter()
            .map(|c| Contact {
                email: c.email,
                name: c.name,
                phone: c.phone,
            })
            .collect();
        let saved = service(&ctx)
            .set_contacts(ctx.vault(), contacts)
            .await
            .map_err(verr("contacts"))?;
        Ok(contacts_out(&ctx, &saved))
    }
    .await;
    access.finish(result, None)
}

async fn delete_contacts(ctx: Ctx) -> Result<Response, ApiError> {
    let access = ctx.authorize(&DELETE_CONTACTS, ctx.vault_scope()).await?;
    let result = async {
        let old = service(&ctx).delete_contacts(ctx.vault()).await;
        match old {
            Ok(c) => Ok(contacts_out(&ctx, &c)),
            Err(rampart_vault::VaultError::NotFound { .. }) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "ContactsNotFound",
                "Contacts not found",
            )),
            Err(e) => Err(verr("contacts")(e)),
        }
    }
    .await;
    access.finish(result, None)
}

#[derive(Serialize)]
struct BackupOut {
    value: String,
}

#[derive(Deserialize)]
struct RestoreBody {
    value: String,
}

async fn backup(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx
        .authorize(&BACKUP, ctx.object_scope(KIND, &name))
        .await?;
    let result = service(&ctx)
        .backup(ctx.vault(), &name)
        .await
        .map(|blob| {
            json(&BackupOut {
                value: URL_SAFE_NO_PAD.encode(blob),
            })
        })
        .map_err(verr(&name));
    access.finish(result, None)
}

async fn restore(ctx: Ctx, Body(body): Body) -> Result<Response, ApiError> {
    let access = ctx.authorize(&RESTORE, ctx.vault_scope()).await?;
    let result = async {
        let req: RestoreBody = ctx.json(&body)?;
        let blob = URL_SAFE_NO_PAD
            .decode(req.value.trim_end_matches('='))
            .map_err(|_| ApiError::bad_parameter("The backup blob is not valid base64url."))?;
        match service(&ctx).restore(ctx.vault(), &blob).await {
            Ok(c) => Ok(json(&CertOut::new(&ctx, &c, true, true))),
            Err(rampart_vault::VaultError::AlreadyExists { .. }) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "Conflict",
                "A certificate, key or secret with the backup's name already exists in this vault (live or deleted); restore is refused.",
            )
            .with_inner("ObjectAlreadyExists")),
            Err(e) => Err(verr("")(e)),
        }
    }
    .await;
    access.finish(result, None)
}
