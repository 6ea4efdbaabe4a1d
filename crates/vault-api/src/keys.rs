//! Keys routes (REST spec `Keys/keys.json`, 2026-04-01): create, import, get (latest or a
//! version), update, delete, list, list versions, get/list deleted, recover, purge, backup,
//! restore, sign, verify, encrypt, decrypt, wrapKey, unwrapKey, rotate, get/set rotation
//! policy, and `POST /rng`. Shapes: `KeyBundle`, `KeyItem`, `DeletedKeyBundle`,
//! `DeletedKeyItem`, `KeyListResult`, `KeyOperationResult`, `KeyVerifyResult`,
//! `KeyRotationPolicy`, `BackupKeyResult`, `RandomBytes`. Binary values are base64url without
//! padding, as Azure writes them (padded or standard base64 is accepted on input).
//!
//! Key material never leaves the vault: bundles carry the public JWK only. Data actions are
//! Azure's (`Microsoft.KeyVault/vaults/keys/...` — deleted keys are read with `keys/read`,
//! recovered and purged with `keys/recover/action` and `keys/purge/action`, so the built-in
//! Crypto Officer role covers them — `keyrotationpolicies/read|write`, and
//! `vaults/rng/action` for random bytes).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rampart_vault::keys::{
    B64, Curve, DeletedKey, EncryptionAlgorithm, ImportKey, IsoDuration, JsonWebKey,
    KeyAttributesIn, KeyBundle, KeyOperation, KeyProperties, KeySpec, KeyType, KeyUpdate, Keys,
    LifetimeAction, NewKey, RotationAction, RotationPolicy, SignatureAlgorithm, Trigger,
};
use rampart_vault::{Attributes, ObjectKind, VaultInfo};
use serde::{Deserialize, Serialize};

use crate::VaultApi;
use crate::context::{Access, ApiPath, Body, Ctx, Operation};
use crate::error::{ApiError, Subject};
use crate::throttle;

const KIND: ObjectKind = ObjectKind::Key;
/// Body limit of the restore route (a 500-version backup, base64).
const RESTORE_BODY_LIMIT: usize = 48 * 1024 * 1024;
/// Body limit of the other routes.
const BODY_LIMIT: usize = 256 * 1024;
/// Throttle class of key creation (configurable in `ThrottleLimits::classes`).
pub const KEY_CREATE: &str = "key-create";
/// Throttle class of key import and restore.
pub const KEY_IMPORT: &str = "key-import";

/// Key Vault data actions for keys (Azure's names).
pub mod actions {
    /// Read key metadata and the public key (get, list, versions).
    pub const KEY_READ: &str = "Microsoft.KeyVault/vaults/keys/read";
    /// Create a key.
    pub const KEY_CREATE: &str = "Microsoft.KeyVault/vaults/keys/create/action";
    /// Import a key.
    pub const KEY_IMPORT: &str = "Microsoft.KeyVault/vaults/keys/import/action";
    /// Update a key's attributes.
    pub const KEY_UPDATE: &str = "Microsoft.KeyVault/vaults/keys/update/action";
    /// Delete a key (soft delete).
    pub const KEY_DELETE: &str = "Microsoft.KeyVault/vaults/keys/delete";
    /// Back a key up.
    pub const KEY_BACKUP: &str = "Microsoft.KeyVault/vaults/keys/backup/action";
    /// Restore a key backup.
    pub const KEY_RESTORE: &str = "Microsoft.KeyVault/vaults/keys/restore/action";
    /// Rotate a key.
    pub const KEY_ROTATE: &str = "Microsoft.KeyVault/vaults/keys/rotate/action";
    /// Encrypt.
    pub const KEY_ENCRYPT: &str = "Microsoft.KeyVault/vaults/keys/encrypt/action";
    /// Decrypt.
    pub const KEY_DECRYPT: &str = "Microsoft.KeyVault/vaults/keys/decrypt/action";
    /// Wrap a key.
    pub const KEY_WRAP: &str = "Microsoft.KeyVault/vaults/keys/wrap/action";
    /// Unwrap a key.
    pub const KEY_UNWRAP: &str = "Microsoft.KeyVault/vaults/keys/unwrap/action";
    /// Sign.
    pub const KEY_SIGN: &str = "Microsoft.KeyVault/vaults/keys/sign/action";
    /// Verify.
    pub const KEY_VERIFY: &str = "Microsoft.KeyVault/vaults/keys/verify/action";
    /// Read deleted keys (Azure checks key reading for them).
    pub const DELETED_KEY_READ: &str = "Microsoft.KeyVault/vaults/keys/read";
    /// Recover a deleted key.
    pub const DELETED_KEY_RECOVER: &str = "Microsoft.KeyVault/vaults/keys/recover/action";
    /// Purge a deleted key.
    pub const DELETED_KEY_PURGE: &str = "Microsoft.KeyVault/vaults/keys/purge/action";
    /// Read a key's rotation policy.
    pub const ROTATION_POLICY_READ: &str = "Microsoft.KeyVault/vaults/keyrotationpolicies/read";
    /// Set a key's rotation policy.
    pub const ROTATION_POLICY_WRITE: &str = "Microsoft.KeyVault/vaults/keyrotationpolicies/write";
    /// Get random bytes.
    pub const RNG: &str = "Microsoft.KeyVault/vaults/rng/action";
}

const fn op(audit_action: &'static str, data_action: &'static str, write: bool) -> Operation {
    Operation {
        audit_action,
        data_action,
        throttle_class: None,
        write,
    }
}

static CREATE: Operation = Operation {
    audit_action: "key.create",
    data_action: actions::KEY_CREATE,
    throttle_class: Some(KEY_CREATE),
    write: true,
};
static IMPORT: Operation = Operation {
    audit_action: "key.import",
    data_action: actions::KEY_IMPORT,
    throttle_class: Some(KEY_IMPORT),
    write: true,
};
static RESTORE: Operation = Operation {
    audit_action: "key.restore",
    data_action: actions::KEY_RESTORE,
    throttle_class: Some(KEY_IMPORT),
    write: true,
};
static GET: Operation = op("key.get", actions::KEY_READ, false);
static LIST: Operation = op("key.list", actions::KEY_READ, false);
static LIST_VERSIONS: Operation = op("key.list_versions", actions::KEY_READ, false);
static UPDATE: Operation = op("key.update", actions::KEY_UPDATE, true);
static DELETE: Operation = op("key.delete", actions::KEY_DELETE, true);
static GET_DELETED: Operation = op("key.get_deleted", actions::DELETED_KEY_READ, false);
static LIST_DELETED: Operation = op("key.list_deleted", actions::DELETED_KEY_READ, false);
static RECOVER: Operation = op("key.recover", actions::DELETED_KEY_RECOVER, true);
static PURGE: Operation = op("key.purge", actions::DELETED_KEY_PURGE, true);
static BACKUP: Operation = op("key.backup", actions::KEY_BACKUP, false);
static ROTATE: Operation = op("key.rotate", actions::KEY_ROTATE, true);
static GET_POLICY: Operation = op(
    "key.get_rotation_policy",
    actions::ROTATION_POLICY_READ,
    false,
);
static SET_POLICY: Operation = op(
    "key.set_rotation_policy",
    actions::ROTATION_POLICY_WRITE,
    true,
);
static SIGN: Operation = op("key.sign", actions::KEY_SIGN, false);
static VERIFY: Operation = op("key.verify", actions::KEY_VERIFY, false);
static ENCRYPT: Operation = op("key.encrypt", actions::KEY_ENCRYPT, false);
static DECRYPT: Operation = op("key.decrypt", actions::KEY_DECRYPT, false);
static WRAP: Operation = op("key.wrap", actions::KEY_WRAP, false);
static UNWRAP: Operation = op("key.unwrap", actions::KEY_UNWRAP, false);
static RNG: Operation = op("vault.rng", actions::RNG, false);

pub(crate) fn routes() -> Router<VaultApi> {
    Router::new()
        .route("/keys", get(list))
        .route(
            "/keys/restore",
            post(restore)
                .layer(DefaultBodyLimit::max(RESTORE_BODY_LIMIT))
                .put(|ctx: Ctx, body: Body| import(ctx, ApiPath("restore".into()), body))
                .get(|ctx: Ctx| get_latest(ctx, ApiPath("restore".into())))
                .patch(|ctx: Ctx, body: Body| update_latest(ctx, ApiPath("restore".into()), body))
                .delete(|ctx: Ctx| delete(ctx, ApiPath("restore".into()))),
        )
        .route(
            "/keys/{name}",
            get(get_latest)
                .put(import)
                .patch(update_latest)
                .delete(delete),
        )
        .route("/keys/{name}/", get(get_latest).patch(update_latest))
        .route("/keys/{name}/create", post(create))
        .route("/keys/{name}/versions", get(list_versions))
        .route("/keys/{name}/backup", post(backup))
        .route("/keys/{name}/rotate", post(rotate))
        .route(
            "/keys/{name}/rotationpolicy",
            get(get_policy).put(set_policy),
        )
        .route(
            "/keys/{name}/{version}",
            get(get_version).patch(update_version),
        )
        .route("/keys/{name}/{version}/{operation}", post(crypto))
        .route("/keys/{name}//{operation}", post(crypto_latest))
        .route("/deletedkeys", get(list_deleted))
        .route("/deletedkeys/{name}", get(get_deleted).delete(purge))
        .route("/deletedkeys/{name}/recover", post(recover))
        .route("/rng", post(rng))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

// ---- bodies -----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct AttributesIn {
    enabled: Option<bool>,
    nbf: Option<i64>,
    exp: Option<i64>,
    exportable: Option<bool>,
}

#[derive(Deserialize)]
struct CreateBody {
    kty: String,
    #[serde(default)]
    key_size: Option<usize>,
    #[serde(default)]
    public_exponent: Option<u64>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    attributes: Option<AttributesIn>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    release_policy: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ImportBody {
    #[serde(default, rename = "Hsm")]
    hsm: Option<bool>,
    key: JsonWebKey,
    #[serde(default)]
    attributes: Option<AttributesIn>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    release_policy: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    attributes: Option<AttributesIn>,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    release_policy: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OperationBody {
    alg: String,
    value: String,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    iv: Option<String>,
    #[serde(default)]
    aad: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Deserialize)]
struct RestoreBody {
    value: String,
}

#[derive(Deserialize)]
struct RngBody {
    count: i64,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct TriggerJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_after_create: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_before_expiry: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct ActionJson {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize, Serialize)]
struct LifetimeActionJson {
    trigger: TriggerJson,
    action: ActionJson,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct PolicyAttributesJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiry_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated: Option<i64>,
}

#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default)]
    lifetime_actions: Option<Vec<LifetimeActionJson>>,
    #[serde(default)]
    attributes: Option<PolicyAttributesJson>,
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
    exportable: bool,
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
            exportable: false,
        }
    }
}

/// `KeyBundle` / `KeyItem` / `DeletedKeyBundle` / `DeletedKeyItem` in one shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<JsonWebKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    attributes: AttributesOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    managed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovery_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_date: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_purge_date: Option<i64>,
}

impl<'a> KeyOut<'a> {
    fn base(ctx: &Ctx, a: &'a Attributes) -> Self {
        Self {
            key: None,
            kid: None,
            attributes: AttributesOut::new(a, ctx.vault()),
            tags: (!a.tags.is_empty()).then_some(&a.tags),
            managed: a.managed.then_some(true),
            recovery_id: None,
            deleted_date: None,
            scheduled_purge_date: None,
        }
    }

    fn bundle(ctx: &Ctx, b: &'a KeyBundle) -> Self {
        let mut key = b.key.clone();
        key.kid = Some(ctx.object_id("keys", &b.name, Some(&b.version)));
        Self {
            key: Some(key),
            ..Self::base(ctx, &b.attributes)
        }
    }

    /// `with_version`: the kid names the version (version lists) or only the name (lists).
    fn item(ctx: &Ctx, p: &'a KeyProperties, with_version: bool) -> Self {
        Self {
            kid: Some(ctx.object_id("keys", &p.name, with_version.then_some(p.version.as_str()))),
            ..Self::base(ctx, &p.attributes)
        }
    }

    fn deleted(ctx: &Ctx, d: &'a DeletedKey, bundle: bool) -> Self {
        let name = &d.key.name;
        let out = if bundle {
            Self::bundle(ctx, &d.key)
        } else {
            Self {
                kid: Some(ctx.object_id("keys", name, None)),
                ..Self::base(ctx, &d.key.attributes)
            }
        };
        Self {
            recovery_id: Some(format!("{}/deletedkeys/{name}", ctx.base_url())),
            deleted_date: Some(d.deletion.deleted_on),
            scheduled_purge_date: Some(d.deletion.scheduled_purge),
            ..out
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListOut<'a> {
    value: Vec<KeyOut<'a>>,
    /// Absent on the last page (the spec's `nextLink` is a string, never null).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

#[derive(Serialize)]
struct ValueOut {
    value: String,
}

#[derive(Serialize)]
struct OperationOut {
    kid: String,
    value: String,
}

#[derive(Serialize)]
struct VerifyOut {
    value: bool,
}

fn json<T: Serialize>(body: &T) -> Response {
    axum::Json(body).into_response()
}

fn b64_in(what: &str, text: &str) -> Result<B64, ApiError> {
    B64::decode(text)
        .ok_or_else(|| ApiError::bad_parameter(format!("The {what} is not valid base64url.")))
}

fn b64_out(bytes: &[u8]) -> String {
    B64::new(bytes.to_vec()).encode()
}

fn attributes_in(
    a: Option<AttributesIn>,
    tags: Option<BTreeMap<String, String>>,
) -> Result<KeyAttributesIn, ApiError> {
    let a = a.unwrap_or_default();
    if a.exportable == Some(true) {
        return Err(ApiError::bad_parameter(
            "Exportable keys are not supported by this vault.",
        ));
    }
    Ok(KeyAttributesIn {
        enabled: a.enabled,
        not_before: a.nbf,
        expires: a.exp,
        tags: tags.unwrap_or_default(),
    })
}

fn no_release_policy(policy: Option<&serde_json::Value>) -> Result<(), ApiError> {
    match policy {
        Some(p) if !p.is_null() => Err(ApiError::bad_parameter(
            "Key release policies are not supported by this vault.",
        )),
        _ => Ok(()),
    }
}

fn key_ops(ops: Option<Vec<String>>) -> Result<Option<Vec<KeyOperation>>, ApiError> {
    ops.map(|ops| {
        ops.iter()
            .map(|o| KeyOperation::parse(o))
            .collect::<Result<Vec<_>, _>>()
    })
    .transpose()
    .map_err(|e| ApiError::vault(e, Subject::live(KIND, "")))
}

fn vault_err<'a>(
    name: &'a str,
    version: Option<&'a str>,
) -> impl Fn(rampart_vault::VaultError) -> ApiError + 'a {
    move |e| ApiError::vault(e, Subject::live(KIND, name).with_version(version))
}

// ---- authorization with key-type throttle classes ----------------------------------------

/// The class name of a key type, for [`throttle::key_class`] (`None` for sizes outside
/// Azure's table).
fn type_name(spec: KeySpec) -> Option<&'static str> {
    Some(match spec {
        KeySpec::Rsa { bits: 2048 } => "rsa-2048",
        KeySpec::Rsa { bits: 3072 } => "rsa-3072",
        KeySpec::Rsa { bits: 4096 } => "rsa-4096",
        KeySpec::Rsa { .. } => return None,
        KeySpec::Ec(Curve::P256) => "ec-p-256",
        KeySpec::Ec(Curve::P384) => "ec-p-384",
        KeySpec::Ec(Curve::P521) => "ec-p-521",
        KeySpec::Ec(Curve::P256K) => "ec-p-256k",
    })
}

fn class_of(kty: KeyType, spec: KeySpec, create: bool) -> Option<String> {
    let hsm = matches!(kty, KeyType::RsaHsm | KeyType::EcHsm);
    type_name(spec).map(|t| throttle::key_class(hsm, t, create))
}

/// Authorizes `op` on the existing key `name` with the throttle class of its type
/// (`create`: rotate, which makes new key material). The type is looked up after RBAC; when
/// the key cannot be read there is no type class (the operation then reports why).
async fn authorize_key(
    ctx: &Ctx,
    op: &'static Operation,
    name: &str,
    version: Option<&str>,
    create: bool,
) -> Result<Access, ApiError> {
    let checked = ctx.check(op, ctx.object_scope(KIND, name)).await?;
    let class = match ctx
        .api()
        .keys()
        .key_type(&ctx.vault().name, name, version)
        .await
    {
        Ok((kty, spec)) => class_of(kty, spec, create),
        Err(_) => None,
    };
    ctx.admit(checked, class.as_deref()).await
}

/// The key type a create or import body asks for, read leniently (a body that does not parse
/// gets no type class; the handler reports the error): create `kty`, `key_size` (default
/// 2048), `crv` (default P-256); import `key.kty`, the size of `key.n`, `key.crv`, `Hsm`.
fn requested_type(body: &[u8]) -> Option<(KeyType, KeySpec)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let (jwk, hsm) = match v.get("key") {
        Some(key) => (
            key,
            v.get("Hsm").and_then(serde_json::Value::as_bool) == Some(true),
        ),
        None => (&v, false),
    };
    let kty = KeyType::parse(jwk.get("kty")?.as_str()?)
        .ok()?
        .with_hsm(hsm);
    let spec = if kty.is_rsa() {
        let bits = match (v.get("key_size"), jwk.get("n")) {
            (Some(size), _) => usize::try_from(size.as_u64()?).ok()?,
            (None, Some(n)) => {
                let n = b64_in("n", n.as_str()?).ok()?;
                let bytes = n.bytes();
                let leading = bytes.iter().take_while(|b| **b == 0).count();
                bytes.len().saturating_sub(leading).saturating_mul(8)
            }
            (None, None) => 2048,
        };
        KeySpec::Rsa { bits }
    } else {
        let crv = jwk.get("crv").and_then(serde_json::Value::as_str);
        KeySpec::Ec(crv.map_or(Ok(Curve::P256), Curve::parse).ok()?)
    };
    Some((kty, spec))
}

/// Authorizes a create or import of `name` with the `-create` class of the requested type.
async fn authorize_new_key(
    ctx: &Ctx,
    op: &'static Operation,
    name: &str,
    body: &[u8],
) -> Result<Access, ApiError> {
    let checked = ctx.check(op, ctx.object_scope(KIND, name)).await?;
    let class = requested_type(body).and_then(|(kty, spec)| class_of(kty, spec, true));
    ctx.admit(checked, class.as_deref()).await
}

// ---- handlers: objects ------------------------------------------------------------------

async fn create(
    ctx: Ctx,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let access = authorize_new_key(&ctx, &CREATE, &name, &body).await?;
    let result = async {
        let req: CreateBody = ctx.json(&body)?;
        no_release_policy(req.release_policy.as_ref())?;
        let err = vault_err(&name, None);
        let new = NewKey {
            kty: KeyType::parse(&req.kty).map_err(&err)?,
            key_size: req.key_size,
            public_exponent: req.public_exponent,
            curve: req
                .crv
                .as_deref()
                .map(Curve::parse)
                .transpose()
                .map_err(&err)?,
            key_ops: key_ops(req.key_ops)?,
            attributes: attributes_in(req.attributes, req.tags)?,
        };
        let bundle = ctx
            .api()
            .keys()
            .create(&ctx.vault().name, &name, new)
            .await
            .map_err(&err)?;
        Ok((json(&KeyOut::bundle(&ctx, &bundle)), bundle.version))
    }
    .await;
    let version = result.as_ref().ok().map(|(_, v)| v.clone());
    access.finish(result.map(|(r, _)| r), version.as_deref())
}

async fn import(
    ctx: Ctx,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let access = authorize_new_key(&ctx, &IMPORT, &name, &body).await?;
    let result = async {
        let req: ImportBody = ctx.json(&body)?;
        no_release_policy(req.release_policy.as_ref())?;
        let mut key = req.key;
        let ops = key_ops(key.key_ops.take())?;
        key.key_ops = ops.map(|ops| ops.iter().map(|o| o.as_str().to_owned()).collect());
        let import = ImportKey {
            key,
            hsm: req.hsm.unwrap_or(false),
            attributes: attributes_in(req.attributes, req.tags)?,
        };
        let bundle = ctx
            .api()
            .keys()
            .import(&ctx.vault().name, &name, import)
            .await
            .map_err(vault_err(&name, None))?;
        Ok((json(&KeyOut::bundle(&ctx, &bundle)), bundle.version))
    }
    .await;
    let version = result.as_ref().ok().map(|(_, v)| v.clone());
    access.finish(result.map(|(r, _)| r), version.as_deref())
}

async fn read(ctx: &Ctx, name: &str, version: Option<&str>) -> Result<Response, ApiError> {
    let access = authorize_key(ctx, &GET, name, version, false).await?;
    let result = ctx
        .api()
        .keys()
        .get(&ctx.vault().name, name, version)
        .await
        .map(|b| json(&KeyOut::bundle(ctx, &b)))
        .map_err(vault_err(name, version));
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
    let access = authorize_key(ctx, &UPDATE, name, version, false).await?;
    let result = async {
        let req: UpdateBody = ctx.json(body)?;
        no_release_policy(req.release_policy.as_ref())?;
        let attrs = attributes_in(req.attributes, None)?;
        let update = KeyUpdate {
            enabled: attrs.enabled,
            not_before: attrs.not_before,
            expires: attrs.expires,
            tags: req.tags,
            key_ops: key_ops(req.key_ops)?,
        };
        ctx.api()
            .keys()
            .update(&ctx.vault().name, name, version, update)
            .await
            .map(|b| json(&KeyOut::bundle(ctx, &b)))
            .map_err(vault_err(name, version))
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
    let access = authorize_key(&ctx, &DELETE, &name, None, false).await?;
    let vault = ctx.vault();
    let result = ctx
        .api()
        .keys()
        .delete(&vault.name, &name, vault.retention_secs())
        .await
        .map(|d| json(&KeyOut::deleted(&ctx, &d, true)))
        .map_err(vault_err(&name, None));
    access.finish(result, None)
}

async fn list(ctx: Ctx) -> Result<Response, ApiError> {
    let access = ctx.authorize(&LIST, ctx.vault_scope()).await?;
    let result = async {
        let paging = ctx.paging("keys")?;
        let page = ctx
            .api()
            .keys()
            .list(&ctx.vault().name, paging.start_after.as_deref(), paging.max)
            .await
            .map_err(vault_err("", None))?;
        Ok(json(&ListOut {
            value: page
                .items
                .iter()
                .map(|p| KeyOut::item(&ctx, p, false))
                .collect(),
            next_link: ctx.next_link("keys", page.next.as_deref(), paging.max),
        }))
    }
    .await;
    access.finish(result, None)
}

async fn list_versions(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = authorize_key(&ctx, &LIST_VERSIONS, &name, None, false).await?;
    let result = async {
        let list_id = format!("keyversions/{}", name.to_ascii_lowercase());
        let paging = ctx.paging(&list_id)?;
        let page = ctx
            .api()
            .keys()
            .list_versions(
                &ctx.vault().name,
                &name,
                paging.start_after.as_deref(),
                paging.max,
            )
            .await
            .map_err(vault_err(&name, None))?;
        Ok(json(&ListOut {
            value: page
                .items
                .iter()
                .map(|p| KeyOut::item(&ctx, p, true))
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
        .keys()
        .get_deleted(&ctx.vault().name, &name)
        .await
        .map(|d| json(&KeyOut::deleted(&ctx, &d, true)))
        .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, &name)));
    access.finish(result, None)
}

async fn list_deleted(ctx: Ctx) -> Result<Response, ApiError> {
    let access = ctx.authorize(&LIST_DELETED, ctx.vault_scope()).await?;
    let result = async {
        let paging = ctx.paging("deletedkeys")?;
        let page = ctx
            .api()
            .keys()
            .list_deleted(&ctx.vault().name, paging.start_after.as_deref(), paging.max)
            .await
            .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, "")))?;
        Ok(json(&ListOut {
            value: page
                .items
                .iter()
                .map(|d| KeyOut::deleted(&ctx, d, false))
                .collect(),
            next_link: ctx.next_link("deletedkeys", page.next.as_deref(), paging.max),
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
        .keys()
        .recover(&ctx.vault().name, &name)
        .await
        .map(|b| json(&KeyOut::bundle(&ctx, &b)))
        .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, &name)));
    access.finish(result, None)
}

async fn purge(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = ctx.authorize(&PURGE, ctx.object_scope(KIND, &name)).await?;
    let vault = ctx.vault();
    let result = ctx
        .api()
        .keys()
        .purge(&vault.name, &name, vault.purge_protection)
        .await
        .map(|()| StatusCode::NO_CONTENT.into_response())
        .map_err(|e| ApiError::vault(e, Subject::deleted(KIND, &name)));
    access.finish(result, None)
}

async fn backup(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = authorize_key(&ctx, &BACKUP, &name, None, false).await?;
    let result = ctx
        .api()
        .keys()
        .backup(ctx.vault(), &name)
        .await
        .map(|blob| {
            json(&ValueOut {
                value: b64_out(&blob),
            })
        })
        .map_err(vault_err(&name, None));
    access.finish(result, None)
}

async fn restore(ctx: Ctx, Body(body): Body) -> Result<Response, ApiError> {
    let access = ctx.authorize(&RESTORE, ctx.vault_scope()).await?;
    let result = async {
        let req: RestoreBody = ctx.json(&body)?;
        let blob = b64_in("backup value", &req.value)?;
        let bundle = ctx
            .api()
            .keys()
            .restore(ctx.vault(), blob.bytes())
            .await
            .map_err(vault_err("", None))?;
        Ok((json(&KeyOut::bundle(&ctx, &bundle)), bundle.version))
    }
    .await;
    let version = result.as_ref().ok().map(|(_, v)| v.clone());
    access.finish(result.map(|(r, _)| r), version.as_deref())
}

async fn rotate(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = authorize_key(&ctx, &ROTATE, &name, None, true).await?;
    let result = ctx
        .api()
        .keys()
        .rotate(&ctx.vault().name, &name)
        .await
        .map(|b| (json(&KeyOut::bundle(&ctx, &b)), b.version))
        .map_err(vault_err(&name, None));
    let version = result.as_ref().ok().map(|(_, v)| v.clone());
    access.finish(result.map(|(r, _)| r), version.as_deref())
}

// ---- rotation policy --------------------------------------------------------------------

fn policy_out(ctx: &Ctx, name: &str, p: &RotationPolicy) -> PolicyJson {
    PolicyJson {
        id: Some(format!(
            "{}/rotationpolicy",
            ctx.object_id("keys", name, None)
        )),
        lifetime_actions: Some(
            p.lifetime_actions
                .iter()
                .map(|la| LifetimeActionJson {
                    trigger: match &la.trigger {
                        Trigger::TimeAfterCreate(d) => TriggerJson {
                            time_after_create: Some(d.as_str().to_owned()),
                            ..TriggerJson::default()
                        },
                        Trigger::TimeBeforeExpiry(d) => TriggerJson {
                            time_before_expiry: Some(d.as_str().to_owned()),
                            ..TriggerJson::default()
                        },
                    },
                    action: ActionJson {
                        kind: la.action.as_str().to_owned(),
                    },
                })
                .collect(),
        ),
        attributes: Some(PolicyAttributesJson {
            expiry_time: p.expiry_time.as_ref().map(|d| d.as_str().to_owned()),
            created: (p.created != 0).then_some(p.created),
            updated: (p.updated != 0).then_some(p.updated),
        }),
    }
}

fn policy_in(body: PolicyJson) -> Result<RotationPolicy, rampart_vault::VaultError> {
    let mut lifetime_actions = Vec::new();
    for la in body.lifetime_actions.unwrap_or_default() {
        let trigger = match (la.trigger.time_after_create, la.trigger.time_before_expiry) {
            (Some(d), None) => Trigger::TimeAfterCreate(IsoDuration::parse(&d)?),
            (None, Some(d)) => Trigger::TimeBeforeExpiry(IsoDuration::parse(&d)?),
            _ => {
                return Err(rampart_vault::VaultError::InvalidKeyRequest {
                    reason:
                        "each trigger needs exactly one of timeAfterCreate and timeBeforeExpiry"
                            .into(),
                });
            }
        };
        lifetime_actions.push(LifetimeAction {
            trigger,
            action: RotationAction::parse(&la.action.kind)?,
        });
    }
    let expiry_time = body
        .attributes
        .and_then(|a| a.expiry_time)
        .map(|d| IsoDuration::parse(&d))
        .transpose()?;
    Ok(RotationPolicy {
        lifetime_actions,
        expiry_time,
        ..RotationPolicy::default()
    })
}

async fn get_policy(ctx: Ctx, ApiPath(name): ApiPath<String>) -> Result<Response, ApiError> {
    let access = authorize_key(&ctx, &GET_POLICY, &name, None, false).await?;
    let result = ctx
        .api()
        .keys()
        .rotation_policy(&ctx.vault().name, &name)
        .await
        .map(|p| json(&policy_out(&ctx, &name, &p)))
        .map_err(vault_err(&name, None));
    access.finish(result, None)
}

async fn set_policy(
    ctx: Ctx,
    ApiPath(name): ApiPath<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let access = authorize_key(&ctx, &SET_POLICY, &name, None, false).await?;
    let result = async {
        let req: PolicyJson = ctx.json(&body)?;
        let err = vault_err(&name, None);
        let policy = policy_in(req).map_err(&err)?;
        ctx.api()
            .keys()
            .set_rotation_policy(&ctx.vault().name, &name, policy)
            .await
            .map(|p| json(&policy_out(&ctx, &name, &p)))
            .map_err(&err)
    }
    .await;
    access.finish(result, None)
}

// ---- crypto operations ------------------------------------------------------------------

async fn crypto(
    ctx: Ctx,
    ApiPath((name, version, operation)): ApiPath<(String, String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    run_crypto(ctx, name, Some(version), operation, body).await
}

async fn crypto_latest(
    ctx: Ctx,
    ApiPath((name, operation)): ApiPath<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    run_crypto(ctx, name, None, operation, body).await
}

async fn run_crypto(
    ctx: Ctx,
    name: String,
    version: Option<String>,
    operation: String,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let op: &'static Operation = match operation.to_ascii_lowercase().as_str() {
        "sign" => &SIGN,
        "verify" => &VERIFY,
        "encrypt" => &ENCRYPT,
        "decrypt" => &DECRYPT,
        "wrapkey" => &WRAP,
        "unwrapkey" => &UNWRAP,
        _ => {
            return Err(ApiError::no_route(
                "POST",
                &format!(
                    "/keys/{name}/{}/{operation}",
                    version.as_deref().unwrap_or("")
                ),
            ));
        }
    };
    let version = version.as_deref();
    let access = authorize_key(&ctx, op, &name, version, false).await?;
    let result = async {
        let req: OperationBody = ctx.json(&body)?;
        if req.iv.is_some() || req.aad.is_some() || req.tag.is_some() {
            return Err(ApiError::bad_parameter(
                "iv, aad and tag are only used by AES algorithms, which RSA and EC keys do not support.",
            ));
        }
        let err = vault_err(&name, version);
        let keys: &Keys = ctx.api().keys();
        let vault = &ctx.vault().name;
        let value = b64_in("value", &req.value)?;
        if std::ptr::eq(op, &VERIFY) {
            let alg = SignatureAlgorithm::parse(&req.alg).map_err(&err)?;
            let digest = b64_in(
                "digest",
                req.digest
                    .as_deref()
                    .ok_or_else(|| ApiError::bad_parameter("The digest is required."))?,
            )?;
            let ok = keys
                .verify(vault, &name, version, alg, digest.bytes(), value.bytes())
                .await
                .map_err(&err)?;
            return Ok(json(&VerifyOut { value: ok }));
        }
        let out = if std::ptr::eq(op, &SIGN) {
            let alg = SignatureAlgorithm::parse(&req.alg).map_err(&err)?;
            keys.sign(vault, &name, version, alg, value.bytes()).await
        } else {
            let alg = EncryptionAlgorithm::parse(&req.alg).map_err(&err)?;
            let input = value.bytes();
            if std::ptr::eq(op, &ENCRYPT) {
                keys.encrypt(vault, &name, version, alg, input).await
            } else if std::ptr::eq(op, &DECRYPT) {
                keys.decrypt(vault, &name, version, alg, input).await
            } else if std::ptr::eq(op, &WRAP) {
                keys.wrap_key(vault, &name, version, alg, input).await
            } else {
                keys.unwrap_key(vault, &name, version, alg, input).await
            }
        }
        .map_err(&err)?;
        Ok(json(&OperationOut {
            kid: ctx.object_id("keys", &out.name, Some(&out.version)),
            value: b64_out(&out.value),
        }))
    }
    .await;
    access.finish(result, version)
}

async fn rng(ctx: Ctx, Body(body): Body) -> Result<Response, ApiError> {
    let access = ctx.authorize(&RNG, ctx.vault_scope()).await?;
    let result = async {
        let req: RngBody = ctx.json(&body)?;
        let count = usize::try_from(req.count).unwrap_or(0);
        let bytes = Keys::random_bytes(count).map_err(vault_err("", None))?;
        Ok(json(&ValueOut {
            value: b64_out(&bytes),
        }))
    }
    .await;
    access.finish(result, None)
}
