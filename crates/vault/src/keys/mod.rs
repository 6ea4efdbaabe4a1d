//! The keys service: Azure Key Vault key semantics on the [`VersionedStore`]
//! ([`ObjectKind::Key`]).
//!
//! * create RSA 2048/3072/4096 and EC P-256/P-384/P-521/P-256K keys, or import a private JWK;
//!   `RSA-HSM`/`EC-HSM` are accepted and reported as asked, but are backed by the same software
//!   keys (aws-lc-rs) as `RSA`/`EC` — no HSM key store is wired for object keys yet (the HSM
//!   option protects the barrier's root key; see `docs/vault.md`);
//! * the private key is the version's value (a type byte and PKCS#8 DER), so it is only ever
//!   stored encrypted by the barrier; it is held in zeroized buffers, never returned (get gives
//!   the public JWK) and never printed;
//! * sign/verify over a digest, encrypt/decrypt and wrap/unwrap (RSA), each allowed only when
//!   the version is enabled, inside `nbf`..`exp`, and its `key_ops` include the operation;
//! * soft delete / recover / purge as secrets (the name is blocked while deleted), purge
//!   refused under purge protection ([`VaultError::PurgeProtected`]); backup/restore of every
//!   version in the geography-bound blob of [`crate::backup`];
//! * rotate (a new version with the same type, size, operations and tags), a rotation policy per
//!   key and [`Keys::run_due_rotations`], the scheduler's sweep with an injected clock;
//! * random bytes (1-128);
//! * keys backing a certificate (`managed`) refuse every direct change — create/import over
//!   them, update, delete, recover, purge, rotate, rotation policy — with
//!   [`VaultError::ManagedByCertificate`], as Azure does (`KeyManagedByKeyVault`); they change
//!   only through their certificate.
//!
//! Attributes `extra` of a key version: `kty` (as asked, e.g. `RSA-HSM`), `key_ops`,
//! `key_size` (RSA) or `crv` (EC), and `rotatedAt` (scheduler clock of a rotation).
//! Rotation policies are barrier records `keypolicy/<vault>/<name>` (JSON [`RotationPolicy`]).
//!
//! Parsed keys are cached per (vault, name, version) — a version's key never changes — so the
//! sign path costs one barrier read and the signature.

pub mod algorithms;
pub mod jwk;
pub mod material;
pub mod rotation;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use zeroize::Zeroizing;

pub use algorithms::{Curve, EncryptionAlgorithm, KeyType, SignatureAlgorithm};
pub use jwk::{B64, JsonWebKey, KeyOperation};
pub use material::{KeyMaterial, KeySpec, verify_with_public_jwk};
pub use rotation::{IsoDuration, LifetimeAction, RotationAction, RotationPolicy, Trigger};

use crate::backup;
use crate::barrier::{BarrierTxn, MAX_ATTEMPTS};
use crate::error::{Result, VaultError};
use crate::store::{
    Attributes, DeletionInfo, LinkedVersion, ObjectKind, ObjectMeta, ObjectVersion, VersionedStore,
};
use crate::vaults::VaultInfo;

const KIND: ObjectKind = ObjectKind::Key;
/// Most tags per key (Azure: 15).
pub const MAX_TAGS: usize = 15;
/// Most random bytes per request (Azure: 128).
pub const MAX_RANDOM_BYTES: usize = 128;
/// Parsed keys kept in memory.
const CACHE_CAPACITY: usize = 1024;
const POLICY_PREFIX: &str = "keypolicy/";

fn invalid(reason: impl Into<String>) -> VaultError {
    VaultError::InvalidKeyRequest {
        reason: reason.into(),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A key version as returned by get/create/import/update: the public JWK (no `kid`; the API
/// layer builds it from its host) and the attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyBundle {
    /// The name as first written.
    pub name: String,
    /// The version id.
    pub version: String,
    /// The public key with `kty` and `key_ops`.
    pub key: JsonWebKey,
    /// The attributes (tags included).
    pub attributes: Attributes,
}

/// A key version's properties (lists).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyProperties {
    /// The name as first written.
    pub name: String,
    /// The version id.
    pub version: String,
    /// The attributes.
    pub attributes: Attributes,
}

/// A soft-deleted key.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedKey {
    /// The latest version.
    pub key: KeyBundle,
    /// When it was deleted and will be purged.
    pub deletion: DeletionInfo,
}

/// A page of results; `next` is passed back as `start_after`.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The continuation (`None` on the last page).
    pub next: Option<String>,
}

/// The shared parts of create and import requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyAttributesIn {
    /// Enabled (default true).
    pub enabled: Option<bool>,
    /// Not before (Unix seconds).
    pub not_before: Option<i64>,
    /// Expiry (Unix seconds).
    pub expires: Option<i64>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A create request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewKey {
    /// Key type.
    pub kty: KeyType,
    /// RSA modulus bits (default 2048).
    pub key_size: Option<usize>,
    /// RSA public exponent (only 65537).
    pub public_exponent: Option<u64>,
    /// EC curve (default P-256).
    pub curve: Option<Curve>,
    /// Permitted operations (default: all the type supports).
    pub key_ops: Option<Vec<KeyOperation>>,
    /// Attributes and tags.
    pub attributes: KeyAttributesIn,
}

impl NewKey {
    /// A request for `kty` with defaults.
    pub fn new(kty: KeyType) -> Self {
        Self {
            kty,
            key_size: None,
            public_exponent: None,
            curve: None,
            key_ops: None,
            attributes: KeyAttributesIn::default(),
        }
    }
}

/// An import request.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportKey {
    /// The private JWK (`key_ops` in it are the permitted operations).
    pub key: JsonWebKey,
    /// Mark as an HSM key (`RSA-HSM`/`EC-HSM`).
    pub hsm: bool,
    /// Attributes and tags.
    pub attributes: KeyAttributesIn,
}

/// An attribute update: fields that are `Some` replace the current ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyUpdate {
    /// Enabled.
    pub enabled: Option<bool>,
    /// Not before.
    pub not_before: Option<i64>,
    /// Expiry.
    pub expires: Option<i64>,
    /// Tags (replace all).
    pub tags: Option<BTreeMap<String, String>>,
    /// Permitted operations (replace all).
    pub key_ops: Option<Vec<KeyOperation>>,
}

/// The result of a crypto operation: the version used and the output.
#[derive(Clone, PartialEq)]
pub struct KeyOperationResult {
    /// The key's name as first written (for the `kid`).
    pub name: String,
    /// The version that did the work (the latest when none was named).
    pub version: String,
    /// The output (signature, ciphertext, plaintext or key). Zeroized when dropped.
    pub value: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KeyOperationResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyOperationResult")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .finish()
    }
}

/// What the rotation sweep did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RotationReport {
    /// Keys rotated: (name, new version).
    pub rotated: Vec<(String, String)>,
    /// Notify actions fired: (name, version near expiry). The caller writes the audit records.
    pub notified: Vec<(String, String)>,
    /// Keys whose policy could not be applied: (name, error message).
    pub failed: Vec<(String, String)>,
}

fn default_ops(kty: KeyType) -> Vec<KeyOperation> {
    use KeyOperation::*;
    if kty.is_rsa() {
        vec![Encrypt, Decrypt, Sign, Verify, WrapKey, UnwrapKey]
    } else {
        vec![Sign, Verify]
    }
}

fn check_ops(kty: KeyType, ops: &[KeyOperation]) -> Result<Vec<KeyOperation>> {
    use KeyOperation::*;
    if let Some(op) = ops
        .iter()
        .find(|op| !kty.is_rsa() && matches!(op, Encrypt | Decrypt | WrapKey | UnwrapKey))
    {
        return Err(invalid(format!(
            "key operation {} is not supported by {} keys",
            op.as_str(),
            kty.as_str()
        )));
    }
    let mut out = Vec::new();
    for op in ops {
        if !out.contains(op) {
            out.push(*op);
        }
    }
    Ok(out)
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!(
            "{} tags, at most {MAX_TAGS} allowed",
            tags.len()
        )));
    }
    if tags.iter().any(|(k, v)| k.len() > 512 || v.len() > 512) {
        return Err(invalid("tag names and values are at most 512 bytes"));
    }
    Ok(())
}

fn ops_of(attributes: &Attributes) -> Vec<KeyOperation> {
    attributes
        .extra
        .get("key_ops")
        .and_then(Value::as_array)
        .map(|ops| {
            ops.iter()
                .filter_map(Value::as_str)
                .filter_map(|s| KeyOperation::parse(s).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn kty_of(attributes: &Attributes) -> Result<KeyType> {
    attributes
        .extra
        .get("kty")
        .and_then(Value::as_str)
        .ok_or_else(|| VaultError::Corrupt {
            what: "key attributes".into(),
            reason: "no kty".into(),
        })
        .and_then(KeyType::parse)
}

fn set_ops(attributes: &mut Attributes, ops: &[KeyOperation]) {
    attributes.extra.insert(
        "key_ops".into(),
        Value::from(ops.iter().map(|op| op.as_str()).collect::<Vec<_>>()),
    );
}

fn key_attributes(
    kty: KeyType,
    spec: KeySpec,
    ops: &[KeyOperation],
    input: KeyAttributesIn,
) -> Result<Attributes> {
    check_tags(&input.tags)?;
    let mut attributes = Attributes {
        enabled: input.enabled.unwrap_or(true),
        not_before: input.not_before,
        expires: input.expires,
        tags: input.tags,
        ..Attributes::default()
    };
    attributes.extra.insert("kty".into(), json!(kty.as_str()));
    match spec {
        KeySpec::Rsa { bits } => {
            attributes.extra.insert("key_size".into(), json!(bits));
        }
        KeySpec::Ec(curve) => {
            attributes.extra.insert("crv".into(), json!(curve.as_str()));
        }
    }
    set_ops(&mut attributes, ops);
    Ok(attributes)
}

/// The keys service. Cheap to clone (the parsed-key cache is shared).
#[derive(Debug, Clone)]
pub struct Keys {
    store: VersionedStore,
    cache: Arc<Mutex<HashMap<String, Arc<KeyMaterial>>>>,
    types: Arc<Mutex<HashMap<String, (KeyType, KeySpec)>>>,
}

impl Keys {
    /// Keys on `store`.
    pub fn new(store: VersionedStore) -> Self {
        Self {
            store,
            cache: Arc::new(Mutex::new(HashMap::new())),
            types: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The store underneath.
    pub fn store(&self) -> &VersionedStore {
        &self.store
    }

    fn cache_key(vault: &str, name: &str, version: &str) -> String {
        format!(
            "{}/{}/{version}",
            vault.to_ascii_lowercase(),
            name.to_ascii_lowercase()
        )
    }

    fn material(&self, vault: &str, name: &str, found: &ObjectVersion) -> Result<Arc<KeyMaterial>> {
        let key = Self::cache_key(vault, name, &found.version);
        if let Ok(cache) = self.cache.lock()
            && let Some(hit) = cache.get(&key)
        {
            return Ok(hit.clone());
        }
        let parsed = Arc::new(KeyMaterial::from_stored(&found.value)?);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(key, parsed.clone());
        }
        Ok(parsed)
    }

    fn forget(&self, vault: &str, name: &str) {
        let prefix = Self::cache_key(vault, name, "");
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|k, _| !k.starts_with(&prefix));
        }
        self.forget_type(vault, name);
    }

    fn forget_type(&self, vault: &str, name: &str) {
        let prefix = Self::cache_key(vault, name, "");
        if let Ok(mut types) = self.types.lock() {
            types.retain(|k, _| !k.starts_with(&prefix));
        }
    }

    /// The type (as asked, e.g. `RSA-HSM`) and size or curve of a live key version (`None`:
    /// the latest), for per-type throttling. Cached in memory: a version's type never changes,
    /// and "latest" is forgotten when this process writes a new version (another process's
    /// new version of another type is seen after a restart or when the cache turns over —
    /// acceptable for throttling, which is all this is for).
    pub async fn key_type(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<(KeyType, KeySpec)> {
        let key = Self::cache_key(vault, name, version.unwrap_or(""));
        if let Ok(types) = self.types.lock()
            && let Some(hit) = types.get(&key)
        {
            return Ok(*hit);
        }
        let found = self.store.get_version(vault, KIND, name, version).await?;
        let a = &found.attributes;
        let kty = kty_of(a)?;
        let spec = if kty.is_rsa() {
            let bits = a
                .extra
                .get("key_size")
                .and_then(Value::as_u64)
                .and_then(|b| usize::try_from(b).ok())
                .unwrap_or(0);
            KeySpec::Rsa { bits }
        } else {
            let crv = a.extra.get("crv").and_then(Value::as_str).unwrap_or("");
            KeySpec::Ec(Curve::parse(crv)?)
        };
        if let Ok(mut types) = self.types.lock() {
            if types.len() >= CACHE_CAPACITY {
                types.clear();
            }
            types.insert(key, (kty, spec));
        }
        Ok((kty, spec))
    }

    fn bundle(&self, vault: &str, display: String, found: ObjectVersion) -> Result<KeyBundle> {
        let material = self.material(vault, &display, &found)?;
        let mut key = material.public_jwk();
        key.kty = Some(kty_of(&found.attributes)?.as_str().to_owned());
        key.key_ops = Some(
            ops_of(&found.attributes)
                .iter()
                .map(|op| op.as_str().to_owned())
                .collect(),
        );
        Ok(KeyBundle {
            name: display,
            version: found.version,
            key,
            attributes: found.attributes,
        })
    }

    async fn display_name(&self, vault: &str, name: &str) -> Result<ObjectMeta> {
        self.store.meta(vault, KIND, name).await
    }

    async fn store_new(
        &self,
        vault: &str,
        name: &str,
        material: &KeyMaterial,
        mut attributes: Attributes,
    ) -> Result<KeyBundle> {
        let stored = material.to_stored()?;
        // The display name rides in each version so crypto operations need no metadata read.
        let display = match self.store.meta(vault, KIND, name).await {
            Ok(meta) => meta.name,
            Err(VaultError::NotFound { .. }) => name.to_owned(),
            Err(e) => return Err(e),
        };
        attributes.extra.insert("name".into(), json!(display));
        self.forget_type(vault, name);
        let created = self
            .store
            .create_version(vault, KIND, name, &stored, attributes)
            .await?;
        self.finish_new(vault, name, created).await
    }

    /// [`Self::store_new`] only while `expected_latest` is still the key's latest version
    /// (compare-and-swap in the store's transaction): `Ok(None)`, nothing written, when another
    /// writer (maybe another process on the same PostgreSQL) made a version meanwhile.
    async fn store_new_after(
        &self,
        vault: &str,
        name: &str,
        material: &KeyMaterial,
        mut attributes: Attributes,
        display: &str,
        expected_latest: &str,
    ) -> Result<Option<KeyBundle>> {
        let stored = material.to_stored()?;
        attributes.extra.insert("name".into(), json!(display));
        self.forget_type(vault, name);
        let item = LinkedVersion {
            kind: KIND,
            name,
            value: &stored,
            attributes,
        };
        let Some(version) = self
            .store
            .create_linked_versions_after(vault, &[item], Some(expected_latest))
            .await?
        else {
            return Ok(None);
        };
        let created = self
            .store
            .get_version(vault, KIND, name, Some(&version))
            .await?;
        self.finish_new(vault, name, created).await.map(Some)
    }

    async fn finish_new(
        &self,
        vault: &str,
        name: &str,
        created: ObjectVersion,
    ) -> Result<KeyBundle> {
        let meta = self.display_name(vault, name).await?;
        if meta.version_count == 1 {
            // A new object: drop a policy left by a purged key of the same name.
            self.store
                .barrier()
                .delete(&Self::policy_key(vault, name))
                .await?;
        }
        self.bundle(vault, meta.name, created)
    }

    /// Creates a key (a new version when the name exists).
    pub async fn create(&self, vault: &str, name: &str, req: NewKey) -> Result<KeyBundle> {
        crate::certificates::refuse_managed(&self.store, vault, KIND, name, "create").await?;
        let spec = if req.kty.is_rsa() {
            if req.curve.is_some() {
                return Err(invalid("crv is not used with RSA keys"));
            }
            if let Some(exp) = req.public_exponent
                && exp != 65537
            {
                return Err(invalid(format!(
                    "public exponent {exp} is not supported (only 65537)"
                )));
            }
            KeySpec::Rsa {
                bits: req.key_size.unwrap_or(2048),
            }
        } else {
            if req.key_size.is_some() || req.public_exponent.is_some() {
                return Err(invalid(
                    "key_size and public_exponent are not used with EC keys",
                ));
            }
            KeySpec::Ec(req.curve.unwrap_or(Curve::P256))
        };
        let ops = check_ops(
            req.kty,
            &req.key_ops.unwrap_or_else(|| default_ops(req.kty)),
        )?;
        let attributes = key_attributes(req.kty, spec, &ops, req.attributes)?;
        let (material, _) = tokio::task::spawn_blocking(move || KeyMaterial::generate(spec))
            .await
            .map_err(|e| VaultError::Task(e.to_string()))??;
        self.store_new(vault, name, &material, attributes).await
    }

    /// Imports a private JWK as a new version.
    pub async fn import(&self, vault: &str, name: &str, req: ImportKey) -> Result<KeyBundle> {
        crate::certificates::refuse_managed(&self.store, vault, KIND, name, "import").await?;
        if req.key.k.is_some() || req.key.key_hsm.is_some() {
            return Err(invalid(
                "symmetric and HSM-blob (BYOK) imports are not supported",
            ));
        }
        let (base, material) = KeyMaterial::from_jwk(&req.key)?;
        let asked = KeyType::parse(req.key.kty.as_deref().unwrap_or_default())?;
        let kty = base.with_hsm(req.hsm || matches!(asked, KeyType::RsaHsm | KeyType::EcHsm));
        let ops = match &req.key.key_ops {
            Some(ops) => ops
                .iter()
                .map(|s| KeyOperation::parse(s))
                .collect::<Result<Vec<_>>>()?,
            None => default_ops(kty),
        };
        let ops = check_ops(kty, &ops)?;
        let attributes = key_attributes(kty, material.spec(), &ops, req.attributes)?;
        self.store_new(vault, name, &material, attributes).await
    }

    /// A key version (`None`: latest) as its public JWK and attributes. Disabled versions are
    /// returned too (as Azure does); they cannot be used.
    pub async fn get(&self, vault: &str, name: &str, version: Option<&str>) -> Result<KeyBundle> {
        let found = self.store.get_version(vault, KIND, name, version).await?;
        let meta = self.display_name(vault, name).await?;
        self.bundle(vault, meta.name, found)
    }

    /// Latest versions' properties of live keys, `limit` at a time, by name.
    pub async fn list(
        &self,
        vault: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page<KeyProperties>> {
        let page = self
            .store
            .list_names(vault, KIND, false, start_after, limit)
            .await?;
        let mut items = Vec::with_capacity(page.ids.len());
        for name in &page.ids {
            match self.properties(vault, name, None).await {
                Ok(p) => items.push(p),
                Err(VaultError::NotFound { .. }) => {} // deleted meanwhile
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    async fn properties(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<KeyProperties> {
        let found = self.store.get_version(vault, KIND, name, version).await?;
        let meta = self.display_name(vault, name).await?;
        Ok(KeyProperties {
            name: meta.name,
            version: found.version,
            attributes: found.attributes,
        })
    }

    /// Properties of every version of a live key, `limit` at a time, by version id.
    pub async fn list_versions(
        &self,
        vault: &str,
        name: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page<KeyProperties>> {
        let meta = self.display_name(vault, name).await?;
        if meta.deleted.is_some() || meta.purging {
            return Err(VaultError::NotFound {
                what: format!("key {:?}", meta.name),
            });
        }
        let page = self
            .store
            .list_versions(vault, KIND, name, start_after, limit)
            .await?;
        let mut items = Vec::with_capacity(page.ids.len());
        for id in &page.ids {
            match self.store.get_version(vault, KIND, name, Some(id)).await {
                Ok(v) => items.push(KeyProperties {
                    name: meta.name.clone(),
                    version: v.version,
                    attributes: v.attributes,
                }),
                Err(VaultError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Updates a version's attributes (`None`: latest), tags and permitted operations.
    pub async fn update(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        update: KeyUpdate,
    ) -> Result<KeyBundle> {
        crate::certificates::refuse_managed(&self.store, vault, KIND, name, "update").await?;
        if let Some(tags) = &update.tags {
            check_tags(tags)?;
        }
        if let Some(ops) = &update.key_ops {
            let current = self.store.get_version(vault, KIND, name, version).await?;
            check_ops(kty_of(&current.attributes)?, ops)?;
        }
        let found = self
            .store
            .update_attributes(vault, KIND, name, version, |a| {
                if let Some(enabled) = update.enabled {
                    a.enabled = enabled;
                }
                if let Some(nbf) = update.not_before {
                    a.not_before = Some(nbf);
                }
                if let Some(exp) = update.expires {
                    a.expires = Some(exp);
                }
                if let Some(tags) = &update.tags {
                    a.tags = tags.clone();
                }
                if let Some(ops) = &update.key_ops {
                    set_ops(a, ops);
                }
            })
            .await?;
        let meta = self.display_name(vault, name).await?;
        self.bundle(vault, meta.name, found)
    }

    /// Soft-deletes a key (all versions), to be purged `retention_secs` from now.
    pub async fn delete(&self, vault: &str, name: &str, retention_secs: i64) -> Result<DeletedKey> {
        crate::certificates::refuse_managed(&self.store, vault, KIND, name, "delete").await?;
        let latest = self.get(vault, name, None).await?;
        let now = now();
        let deletion = DeletionInfo {
            deleted_on: now,
            scheduled_purge: now.saturating_add(retention_secs),
        };
        self.store.mark_deleted(vault, KIND, name, deletion).await?;
        Ok(DeletedKey {
            key: latest,
            deletion,
        })
    }

    /// A deleted key.
    pub async fn get_deleted(&self, vault: &str, name: &str) -> Result<DeletedKey> {
        let (meta, latest) = self.store.get_deleted(vault, KIND, name).await?;
        let deletion = meta.deleted.ok_or_else(|| VaultError::NotFound {
            what: format!("deleted key {name:?}"),
        })?;
        Ok(DeletedKey {
            key: self.bundle(vault, meta.name, latest)?,
            deletion,
        })
    }

    /// Deleted keys, `limit` at a time, by name.
    pub async fn list_deleted(
        &self,
        vault: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page<DeletedKey>> {
        let page = self
            .store
            .list_names(vault, KIND, true, start_after, limit)
            .await?;
        let mut items = Vec::with_capacity(page.ids.len());
        for name in &page.ids {
            match self.get_deleted(vault, name).await {
                Ok(d) => items.push(d),
                Err(VaultError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Recovers a deleted key; returns its latest version.
    pub async fn recover(&self, vault: &str, name: &str) -> Result<KeyBundle> {
        crate::certificates::refuse_managed(&self.store, vault, KIND, name, "recover").await?;
        self.store.recover(vault, KIND, name).await?;
        self.get(vault, name, None).await
    }

    /// Permanently removes a deleted key and its rotation policy. With `purge_protection`
    /// (the vault's setting) it is refused with [`VaultError::PurgeProtected`].
    pub async fn purge(&self, vault: &str, name: &str, purge_protection: bool) -> Result<()> {
        let deleted = self.get_deleted(vault, name).await?;
        crate::certificates::refuse_managed(&self.store, vault, KIND, name, "purge").await?;
        if purge_protection {
            return Err(VaultError::PurgeProtected {
                what: format!("key {:?}", deleted.key.name),
                vault: vault.to_owned(),
            });
        }
        self.store.purge(vault, KIND, name).await?;
        self.store
            .barrier()
            .delete(&Self::policy_key(vault, name))
            .await?;
        self.forget(vault, name);
        Ok(())
    }

    /// A backup blob of every version of a live key (geography-bound, see [`crate::backup`]).
    pub async fn backup(&self, vault: &VaultInfo, name: &str) -> Result<Vec<u8>> {
        let meta = self.display_name(&vault.name, name).await?;
        if meta.deleted.is_some() || meta.purging {
            return Err(VaultError::NotFound {
                what: format!("key {:?}", meta.name),
            });
        }
        backup::backup_object(&self.store, vault, KIND, name).await
    }

    /// Restores a key backup blob (all versions); returns the latest version. Refused when
    /// the name exists, or the blob was made in another geography or holds another kind.
    pub async fn restore(&self, vault: &VaultInfo, blob: &[u8]) -> Result<KeyBundle> {
        let (meta, latest) = backup::restore_object(&self.store, vault, KIND, blob).await?;
        self.forget_type(&vault.name, &meta.name);
        // A new object: drop a policy left by a purged key of the same name.
        self.store
            .barrier()
            .delete(&Self::policy_key(&vault.name, &meta.name))
            .await?;
        self.bundle(&vault.name, meta.name, latest)
    }

    /// Loads a version for `op`, checking enabled, validity dates and `key_ops`.
    async fn usable(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        op: KeyOperation,
    ) -> Result<(String, String, Arc<KeyMaterial>)> {
        let found = self.store.get_version(vault, KIND, name, version).await?;
        let what = || format!("key {name:?} version {}", found.version);
        let refuse = |reason| VaultError::KeyNotUsable {
            what: what(),
            operation: op.as_str(),
            reason,
        };
        let a = &found.attributes;
        let now = now();
        if !a.enabled {
            return Err(VaultError::Disabled {
                what: what(),
                operation: op.as_str(),
            });
        }
        if a.not_before.is_some_and(|nbf| now < nbf) {
            return Err(refuse("the key is not yet valid"));
        }
        if a.expires.is_some_and(|exp| now >= exp) {
            return Err(refuse("the key has expired"));
        }
        if !ops_of(a).contains(&op) {
            return Err(VaultError::KeyOperationNotAllowed {
                what: what(),
                operation: op.as_str(),
            });
        }
        let material = self.material(vault, name, &found)?;
        let display = found
            .attributes
            .extra
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(name)
            .to_owned();
        Ok((display, found.version, material))
    }

    /// Signs a digest. This is the hot path the bench measures: one barrier read (the
    /// version record) plus the signature; the parsed key comes from the cache.
    pub async fn sign(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        alg: SignatureAlgorithm,
        digest: &[u8],
    ) -> Result<KeyOperationResult> {
        let (name, version, key) = self
            .usable(vault, name, version, KeyOperation::Sign)
            .await?;
        let sig = key.sign_digest(alg, digest)?;
        Ok(KeyOperationResult {
            name,
            version,
            value: Zeroizing::new(sig),
        })
    }

    /// Verifies a signature over a digest with the key's public half.
    pub async fn verify(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        alg: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<bool> {
        let (_, _, key) = self
            .usable(vault, name, version, KeyOperation::Verify)
            .await?;
        key.verify_digest(alg, digest, signature)
    }

    async fn encrypt_as(
        &self,
        op: KeyOperation,
        vault: &str,
        name: &str,
        version: Option<&str>,
        alg: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<KeyOperationResult> {
        let (name, version, key) = self.usable(vault, name, version, op).await?;
        Ok(KeyOperationResult {
            name,
            version,
            value: Zeroizing::new(key.encrypt(alg, plaintext)?),
        })
    }

    async fn decrypt_as(
        &self,
        op: KeyOperation,
        vault: &str,
        name: &str,
        version: Option<&str>,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<KeyOperationResult> {
        let (name, version, key) = self.usable(vault, name, version, op).await?;
        Ok(KeyOperationResult {
            name,
            version,
            value: key.decrypt(alg, ciphertext)?,
        })
    }

    /// Encrypts with the public key.
    pub async fn encrypt(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        alg: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<KeyOperationResult> {
        self.encrypt_as(KeyOperation::Encrypt, vault, name, version, alg, plaintext)
            .await
    }

    /// Decrypts with the private key.
    pub async fn decrypt(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<KeyOperationResult> {
        self.decrypt_as(KeyOperation::Decrypt, vault, name, version, alg, ciphertext)
            .await
    }

    /// Wraps a key (RSA encryption under the `wrapKey` permission).
    pub async fn wrap_key(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        alg: EncryptionAlgorithm,
        key: &[u8],
    ) -> Result<KeyOperationResult> {
        self.encrypt_as(KeyOperation::WrapKey, vault, name, version, alg, key)
            .await
    }

    /// Unwraps a key (RSA decryption under the `unwrapKey` permission).
    pub async fn unwrap_key(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        alg: EncryptionAlgorithm,
        wrapped: &[u8],
    ) -> Result<KeyOperationResult> {
        self.decrypt_as(KeyOperation::UnwrapKey, vault, name, version, alg, wrapped)
            .await
    }

    /// Rotates a key now: a new version with the latest version's type, size, operations
    /// and tags; its expiry comes from the rotation policy's `expiryTime` when set.
    pub async fn rotate(&self, vault: &str, name: &str) -> Result<KeyBundle> {
        crate::certificates::refuse_managed(&self.store, vault, KIND, name, "rotate").await?;
        self.rotate_at(vault, name, now(), None)
            .await?
            .ok_or_else(|| VaultError::Corrupt {
                what: "key rotation".into(),
                reason: "a rotation without a precondition was refused".into(),
            })
    }

    async fn rotate_at(
        &self,
        vault: &str,
        name: &str,
        at: i64,
        scheduled: Option<(i64, &str)>,
    ) -> Result<Option<KeyBundle>> {
        let latest = self.store.get_version(vault, KIND, name, None).await?;
        if let Some((_, due)) = scheduled
            && !latest.version.eq_ignore_ascii_case(due)
        {
            return Ok(None); // rotated meanwhile (maybe by another process)
        }
        let current = self.material(vault, name, &latest)?;
        let spec = current.spec();
        let kty = kty_of(&latest.attributes)?;
        let ops = ops_of(&latest.attributes);
        let policy = self.rotation_policy(vault, name).await?;
        let input = KeyAttributesIn {
            enabled: Some(true),
            not_before: None,
            expires: policy
                .expiry_time
                .as_ref()
                .map(|d| at.saturating_add(d.secs())),
            tags: latest.attributes.tags.clone(),
        };
        let mut attributes = key_attributes(kty, spec, &ops, input)?;
        if let Some((clock, _)) = scheduled {
            attributes.extra.insert("rotatedAt".into(), json!(clock));
        }
        let (material, _) = tokio::task::spawn_blocking(move || KeyMaterial::generate(spec))
            .await
            .map_err(|e| VaultError::Task(e.to_string()))??;
        if let Some((_, due)) = scheduled {
            // The scheduler rotates only the version it found due: when a scheduler in another
            // process rotated first, there is nothing left to do here.
            let display = latest
                .attributes
                .extra
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_owned();
            return self
                .store_new_after(vault, name, &material, attributes, &display, due)
                .await;
        }
        self.store_new(vault, name, &material, attributes)
            .await
            .map(Some)
    }

    fn policy_key(vault: &str, name: &str) -> String {
        format!(
            "{POLICY_PREFIX}{}/{}",
            vault.to_ascii_lowercase(),
            name.to_ascii_lowercase()
        )
    }

    /// A key's rotation policy (Azure's default — notify 30 days before expiry — when none
    /// was set). The key must exist (live or deleted).
    pub async fn rotation_policy(&self, vault: &str, name: &str) -> Result<RotationPolicy> {
        let meta = self.display_name(vault, name).await?;
        if meta.purging {
            return Err(VaultError::NotFound {
                what: format!("key {:?}", meta.name),
            });
        }
        let stored = self
            .store
            .barrier()
            .get_versioned(&Self::policy_key(vault, name))
            .await?;
        Ok(Self::current_policy(&meta, stored.as_ref())?.unwrap_or_default())
    }

    /// The stored policy if it belongs to this incarnation of the key.
    fn current_policy(
        meta: &ObjectMeta,
        stored: Option<&crate::barrier::Versioned>,
    ) -> Result<Option<RotationPolicy>> {
        let Some(stored) = stored else {
            return Ok(None);
        };
        let policy: RotationPolicy =
            serde_json::from_slice(&stored.value).map_err(|e| VaultError::Corrupt {
                what: "rotation policy".into(),
                reason: e.to_string(),
            })?;
        Ok((policy.object_created == meta.created).then_some(policy))
    }

    /// Sets a key's rotation policy (validated); keeps `created` of an earlier policy.
    pub async fn set_rotation_policy(
        &self,
        vault: &str,
        name: &str,
        mut policy: RotationPolicy,
    ) -> Result<RotationPolicy> {
        policy.validate()?;
        crate::certificates::refuse_managed(&self.store, vault, KIND, name, "setRotationPolicy")
            .await?;
        let meta = self.display_name(vault, name).await?;
        if meta.deleted.is_some() || meta.purging {
            return Err(VaultError::NotFound {
                what: format!("key {:?}", meta.name),
            });
        }
        let key = Self::policy_key(vault, name);
        let barrier = self.store.barrier();
        for _ in 0..MAX_ATTEMPTS {
            let existing = barrier.get_versioned(&key).await?;
            let now = now();
            let previous = Self::current_policy(&meta, existing.as_ref())?;
            policy.created = previous.as_ref().map_or(now, |p| p.created);
            policy.updated = now;
            policy.notified_version = previous.and_then(|p| p.notified_version);
            policy.object_created = meta.created;
            let bytes = serde_json::to_vec(&policy).map_err(|e| VaultError::Corrupt {
                what: "rotation policy".into(),
                reason: e.to_string(),
            })?;
            let txn = match &existing {
                Some(v) => BarrierTxn::new().require(&key, Some(&v.token)),
                None => BarrierTxn::new().require_absent(&key),
            }
            .put(&key, &bytes);
            if barrier.commit(txn).await? {
                return Ok(policy);
            }
            tokio::task::yield_now().await;
        }
        Err(VaultError::Contention {
            key,
            attempts: MAX_ATTEMPTS,
        })
    }

    /// The rotation scheduler's sweep over the keys of `vault` with a stored policy, at time
    /// `now` (Unix seconds; injected so tests can move the clock): rotates keys whose
    /// `Rotate` action is due, and reports `Notify` actions that became due (once per
    /// version). Deleted keys are skipped. A failing key does not stop the sweep.
    pub async fn run_due_rotations(&self, vault: &str, now: i64) -> Result<RotationReport> {
        let prefix = format!("{POLICY_PREFIX}{}/", vault.to_ascii_lowercase());
        let barrier = self.store.barrier().clone();
        let mut report = RotationReport::default();
        let mut after: Option<String> = None;
        loop {
            let page = barrier.list(&prefix, after.as_deref(), 100).await?;
            for key in &page.keys {
                let Some(name) = key.strip_prefix(&prefix) else {
                    continue;
                };
                if let Err(e) = self.apply_policy(vault, name, now, &mut report).await {
                    report.failed.push((name.to_owned(), e.to_string()));
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(report)
    }

    async fn apply_policy(
        &self,
        vault: &str,
        name: &str,
        now: i64,
        report: &mut RotationReport,
    ) -> Result<()> {
        let latest = match self.store.get_version(vault, KIND, name, None).await {
            Ok(v) => v,
            Err(VaultError::NotFound { .. }) => return Ok(()), // deleted: nothing to do
            Err(e) => return Err(e),
        };
        if latest.attributes.managed {
            return Ok(()); // renewed through its certificate, never rotated directly
        }
        let policy = self.rotation_policy(vault, name).await?;
        let created = latest
            .attributes
            .extra
            .get("rotatedAt")
            .and_then(Value::as_i64)
            .unwrap_or(latest.attributes.created);
        let expires = latest.attributes.expires;
        if policy
            .due_at(RotationAction::Rotate, created, expires)
            .is_some_and(|due| due <= now)
        {
            if let Some(rotated) = self
                .rotate_at(vault, name, now, Some((now, &latest.version)))
                .await?
            {
                report.rotated.push((rotated.name, rotated.version));
            }
            return Ok(());
        }
        let notify_due = policy
            .due_at(RotationAction::Notify, created, expires)
            .is_some_and(|due| due <= now);
        if notify_due && policy.notified_version.as_deref() != Some(latest.version.as_str()) {
            let key = Self::policy_key(vault, name);
            let barrier = self.store.barrier();
            if let Some(current) = barrier.get_versioned(&key).await? {
                let mut stored: RotationPolicy =
                    serde_json::from_slice(&current.value).map_err(|e| VaultError::Corrupt {
                        what: "rotation policy".into(),
                        reason: e.to_string(),
                    })?;
                if stored.object_created != policy.object_created {
                    return Ok(()); // a stale policy of a purged key
                }
                stored.notified_version = Some(latest.version.clone());
                let bytes = serde_json::to_vec(&stored).map_err(|e| VaultError::Corrupt {
                    what: "rotation policy".into(),
                    reason: e.to_string(),
                })?;
                let txn = BarrierTxn::new()
                    .require(&key, Some(&current.token))
                    .put(&key, &bytes);
                // Lost race: another scheduler recorded it; it reports the event.
                if barrier.commit(txn).await? {
                    let meta = self.display_name(vault, name).await?;
                    report.notified.push((meta.name, latest.version));
                }
            }
        }
        Ok(())
    }

    /// `count` cryptographically secure random bytes (1-128, as Azure).
    pub fn random_bytes(count: usize) -> Result<Vec<u8>> {
        if !(1..=MAX_RANDOM_BYTES).contains(&count) {
            return Err(invalid(format!(
                "count must be 1 to {MAX_RANDOM_BYTES}, got {count}"
            )));
        }
        let mut out = vec![0u8; count];
        aws_lc_rs::rand::fill(&mut out).map_err(|_| VaultError::Crypto("random"))?;
        Ok(out)
    }
}
