//! Versioned Key Vault objects on top of the [`Barrier`]: kinds (secret, key, certificate),
//! vaults, names, versions with attributes, a latest pointer and soft-delete state.
//!
//! Schema (logical barrier keys; names and vault names are lowercased in keys, as Azure names
//! are case-insensitive, and the name as first written is kept in the metadata):
//!
//! | key | value |
//! |---|---|
//! | `obj/<vault>/<kind>/<name>/meta` | [`ObjectMeta`] JSON: display name, latest version, count, deletion state |
//! | `obj/<vault>/<kind>/<name>/v/<version>` | `attributes length (u32 BE) \|\| attributes JSON \|\| value` |
//! | `idx/<vault>/<kind>/live/<name>` | marker: the object is live (list) |
//! | `idx/<vault>/<kind>/deleted/<name>` | marker: the object is soft-deleted (list deleted) |
//!
//! Every state change is one barrier transaction conditioned on the metadata record being
//! unchanged since it was read (compare-and-swap), retried on conflict; so concurrent writers,
//! in this process or another one sharing the storage, never lose a version or leave the
//! latest pointer on a version that does not exist. Purge first marks the object `purging`,
//! then deletes versions in batches, then the metadata: interrupted, it is resumed by calling
//! purge again, and the name cannot be reused until it finishes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::barrier::{Barrier, BarrierTxn, CasToken, MAX_ATTEMPTS};
use crate::crypto::fill_random;
use crate::error::{Result, VaultError};

/// Longest vault or object name.
pub const MAX_NAME_LEN: usize = 127;
/// Versions deleted per transaction while purging.
const PURGE_BATCH: usize = 100;

/// What an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A secret.
    Secret,
    /// A key.
    Key,
    /// A certificate.
    Certificate,
}

impl ObjectKind {
    /// The kind's path segment, as in Azure URLs (`secrets`, `keys`, `certificates`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secrets",
            Self::Key => "keys",
            Self::Certificate => "certificates",
        }
    }
}

/// A version's attributes. `created`/`updated` are set by the store (Unix seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attributes {
    /// Whether the version may be used.
    pub enabled: bool,
    /// Not valid before (Unix seconds).
    pub not_before: Option<i64>,
    /// Expiry (Unix seconds).
    pub expires: Option<i64>,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Last update time (Unix seconds).
    pub updated: i64,
    /// The content type (secrets).
    pub content_type: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Whether the version is managed by a certificate.
    pub managed: bool,
    /// Kind-specific attributes (key operations, certificate policy, ...).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for Attributes {
    fn default() -> Self {
        Self {
            enabled: true,
            not_before: None,
            expires: None,
            created: 0,
            updated: 0,
            content_type: None,
            tags: BTreeMap::new(),
            managed: false,
            extra: serde_json::Map::new(),
        }
    }
}

/// When an object was deleted and when it may be purged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionInfo {
    /// Deletion time (Unix seconds).
    pub deleted_on: i64,
    /// Scheduled purge time (Unix seconds).
    pub scheduled_purge: i64,
}

/// An object's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// The name as first written.
    pub name: String,
    /// The latest version id.
    pub latest: String,
    /// How many versions were ever created.
    pub version_count: u64,
    /// Creation time of the object (Unix seconds).
    pub created: i64,
    /// Time of the last new version (Unix seconds).
    pub updated: i64,
    /// Soft-delete state: `Some` while deleted and recoverable.
    pub deleted: Option<DeletionInfo>,
    /// A purge started and has not finished.
    #[serde(default)]
    pub purging: bool,
}

/// One version of an object.
#[derive(Clone)]
pub struct ObjectVersion {
    /// The version id (32 lowercase hex chars).
    pub version: String,
    /// The value (secret material).
    pub value: Zeroizing<Vec<u8>>,
    /// The attributes.
    pub attributes: Attributes,
}

impl fmt::Debug for ObjectVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectVersion")
            .field("version", &self.version)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// A page of names or version ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdPage {
    /// Lowercased names, or version ids, in byte order.
    pub ids: Vec<String>,
    /// Pass as `start_after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// One object's part of [`VersionedStore::create_linked_versions`].
pub struct LinkedVersion<'a> {
    /// The object's kind.
    pub kind: ObjectKind,
    /// The object's name.
    pub name: &'a str,
    /// The new version's value.
    pub value: &'a [u8],
    /// The new version's attributes (`created`/`updated` are set by the store).
    pub attributes: Attributes,
}

impl fmt::Debug for LinkedVersion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedVersion")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// Identifies an object.
#[derive(Debug, Clone, Copy)]
struct Obj<'a> {
    vault: &'a str,
    kind: ObjectKind,
    name: &'a str,
}

fn check_name(what: &'static str, name: &str) -> Result<String> {
    let bad = |reason| VaultError::InvalidName {
        what,
        name: name.chars().take(MAX_NAME_LEN + 1).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(bad("longer than 127 characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(bad("only letters, digits and '-' are allowed"));
    }
    Ok(name.to_ascii_lowercase())
}

fn check_version(version: &str) -> Result<String> {
    if version.len() != 32 || !version.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(VaultError::InvalidName {
            what: "version",
            name: version.chars().take(64).collect(),
            reason: "must be 32 hex characters",
        });
    }
    Ok(version.to_ascii_lowercase())
}

/// The current time in Unix seconds (0 before 1970, saturating far in the future).
pub fn unix_now() -> i64 {
    now()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn new_version_id() -> Result<String> {
    let mut raw = [0u8; 16];
    fill_random(&mut raw)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

fn corrupt(what: &str, reason: impl ToString) -> VaultError {
    VaultError::Corrupt {
        what: what.to_owned(),
        reason: reason.to_string(),
    }
}

fn encode_version(attributes: &Attributes, value: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let attrs = serde_json::to_vec(attributes).map_err(|e| corrupt("attributes", e))?;
    let len = u32::try_from(attrs.len()).map_err(|e| corrupt("attributes", e))?;
    let mut out = Zeroizing::new(Vec::with_capacity(4 + attrs.len() + value.len()));
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&attrs);
    out.extend_from_slice(value);
    Ok(out)
}

fn decode_version(version: String, bytes: &[u8]) -> Result<ObjectVersion> {
    let (len, rest) = bytes
        .split_at_checked(4)
        .ok_or_else(|| corrupt("version", "truncated"))?;
    let mut buf = [0u8; 4];
    buf.copy_from_slice(len);
    let len = usize::try_from(u32::from_be_bytes(buf)).map_err(|e| corrupt("version", e))?;
    let (attrs, value) = rest
        .split_at_checked(len)
        .ok_or_else(|| corrupt("version", "truncated"))?;
    let attributes = serde_json::from_slice(attrs).map_err(|e| corrupt("attributes", e))?;
    Ok(ObjectVersion {
        version,
        value: Zeroizing::new(value.to_vec()),
        attributes,
    })
}

impl Obj<'_> {
    fn base(&self) -> String {
        format!("obj/{}/{}/{}", self.vault, self.kind.as_str(), self.name)
    }
    fn meta_key(&self) -> String {
        format!("{}/meta", self.base())
    }
    fn versions_prefix(&self) -> String {
        format!("{}/v/", self.base())
    }
    fn version_key(&self, version: &str) -> String {
        format!("{}/v/{version}", self.base())
    }
    fn index_key(&self, deleted: bool) -> String {
        index_prefix(self.vault, self.kind, deleted) + self.name
    }
    fn describe(&self) -> String {
        format!(
            "{} {:?} in vault {:?}",
            self.kind.as_str().trim_end_matches('s'),
            self.name,
            self.vault
        )
    }
}

fn index_prefix(vault: &str, kind: ObjectKind, deleted: bool) -> String {
    let state = if deleted { "deleted" } else { "live" };
    format!("idx/{vault}/{}/{state}/", kind.as_str())
}

/// Versioned objects over a barrier. Cheap to clone.
#[derive(Debug, Clone)]
pub struct VersionedStore {
    barrier: Arc<Barrier>,
}

impl VersionedStore {
    /// A store over `barrier`.
    pub fn new(barrier: Arc<Barrier>) -> Self {
        Self { barrier }
    }

    /// The barrier underneath.
    pub fn barrier(&self) -> &Arc<Barrier> {
        &self.barrier
    }

    async fn read_meta(&self, obj: Obj<'_>) -> Result<Option<(ObjectMeta, CasToken)>> {
        let Some(read) = self.barrier.get_versioned(&obj.meta_key()).await? else {
            return Ok(None);
        };
        let meta = serde_json::from_slice(&read.value).map_err(|e| corrupt("metadata", e))?;
        Ok(Some((meta, read.token)))
    }

    /// Metadata of an object, live or deleted.
    pub async fn meta(&self, vault: &str, kind: ObjectKind, name: &str) -> Result<ObjectMeta> {
        let (vault, name) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault,
            kind,
            name: &name,
        };
        self.read_meta(obj)
            .await?
            .map(|(m, _)| m)
            .ok_or_else(|| VaultError::NotFound {
                what: obj.describe(),
            })
    }

    /// Creates a new version of an object (creating the object when new) and makes it the
    /// latest. Refused with [`VaultError::DeletedButRecoverable`] while the object is deleted.
    pub async fn create_version(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
        value: &[u8],
        mut attributes: Attributes,
    ) -> Result<ObjectVersion> {
        let (vault_key, name_key) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault_key,
            kind,
            name: &name_key,
        };
        for _ in 0..MAX_ATTEMPTS {
            let current = self.read_meta(obj).await?;
            let version = new_version_id()?;
            let now = now();
            attributes.created = now;
            attributes.updated = now;
            let (meta, token) = match current {
                Some((meta, _)) if meta.purging => {
                    return Err(VaultError::WrongState {
                        what: obj.describe(),
                        reason: "is being purged",
                    });
                }
                Some((meta, _)) if meta.deleted.is_some() => {
                    return Err(VaultError::DeletedButRecoverable {
                        what: obj.describe(),
                    });
                }
                Some((mut meta, token)) => {
                    meta.latest = version.clone();
                    meta.version_count += 1;
                    meta.updated = now;
                    (meta, Some(token))
                }
                None => (
                    ObjectMeta {
                        name: name.to_owned(),
                        latest: version.clone(),
                        version_count: 1,
                        created: now,
                        updated: now,
                        deleted: None,
                        purging: false,
                    },
                    None,
                ),
            };
            let meta_bytes = serde_json::to_vec(&meta).map_err(|e| corrupt("metadata", e))?;
            let record = encode_version(&attributes, value)?;
            let version_key = obj.version_key(&version);
            let mut txn = BarrierTxn::new()
                .require(&obj.meta_key(), token.as_ref())
                .require_absent(&version_key)
                .put(&version_key, &record)
                .put(&obj.meta_key(), &meta_bytes);
            if token.is_none() {
                txn = txn.put(&obj.index_key(false), b"");
            }
            if self.barrier.commit(txn).await? {
                return Ok(ObjectVersion {
                    version,
                    value: Zeroizing::new(value.to_vec()),
                    attributes,
                });
            }
            tokio::task::yield_now().await;
        }
        Err(VaultError::Contention {
            key: obj.meta_key(),
            attempts: MAX_ATTEMPTS,
        })
    }

    async fn read_version(
        &self,
        obj: Obj<'_>,
        version: &str,
    ) -> Result<Option<(ObjectVersion, CasToken)>> {
        let Some(read) = self
            .barrier
            .get_versioned(&obj.version_key(version))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((
            decode_version(version.to_owned(), &read.value)?,
            read.token,
        )))
    }

    async fn resolve(
        &self,
        obj: Obj<'_>,
        version: Option<&str>,
        want_deleted: bool,
    ) -> Result<(ObjectMeta, String)> {
        let not_found = || VaultError::NotFound {
            what: obj.describe(),
        };
        let (meta, _) = self.read_meta(obj).await?.ok_or_else(not_found)?;
        if meta.purging || meta.deleted.is_some() != want_deleted {
            return Err(not_found());
        }
        let version = match version {
            Some(v) => check_version(v)?,
            None => meta.latest.clone(),
        };
        Ok((meta, version))
    }

    /// A version of a live object (`None`: the latest). Deleted objects are not found.
    pub async fn get_version(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
        version: Option<&str>,
    ) -> Result<ObjectVersion> {
        Ok(self
            .get_version_with_meta(vault, kind, name, version)
            .await?
            .1)
    }

    /// A version of a live object (`None`: the latest) and the object's metadata (display
    /// name, latest version), from one read of each. Deleted objects are not found.
    pub async fn get_version_with_meta(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
        version: Option<&str>,
    ) -> Result<(ObjectMeta, ObjectVersion)> {
        let (vault, name) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault,
            kind,
            name: &name,
        };
        let (meta, version) = self.resolve(obj, version, false).await?;
        let found = self
            .read_version(obj, &version)
            .await?
            .map(|(v, _)| v)
            .ok_or_else(|| VaultError::NotFound {
                what: format!("version {version} of {}", obj.describe()),
            })?;
        Ok((meta, found))
    }

    /// The metadata and latest version of a deleted (recoverable) object.
    pub async fn get_deleted(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
    ) -> Result<(ObjectMeta, ObjectVersion)> {
        let (vault, name) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault,
            kind,
            name: &name,
        };
        let (meta, version) = self.resolve(obj, None, true).await?;
        let latest = self
            .read_version(obj, &version)
            .await?
            .map(|(v, _)| v)
            .ok_or_else(|| VaultError::NotFound {
                what: obj.describe(),
            })?;
        Ok((meta, latest))
    }

    /// Changes the attributes of a version of a live object (`None`: the latest) with
    /// `update`, atomically; sets `updated`. Returns the new version state.
    pub async fn update_attributes(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
        version: Option<&str>,
        update: impl Fn(&mut Attributes),
    ) -> Result<ObjectVersion> {
        let (vault, name) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault,
            kind,
            name: &name,
        };
        for _ in 0..MAX_ATTEMPTS {
            let (_, version) = self.resolve(obj, version, false).await?;
            let (mut current, token) =
                self.read_version(obj, &version)
                    .await?
                    .ok_or_else(|| VaultError::NotFound {
                        what: format!("version {version} of {}", obj.describe()),
                    })?;
            let created = current.attributes.created;
            update(&mut current.attributes);
            current.attributes.created = created;
            current.attributes.updated = now();
            let record = encode_version(&current.attributes, &current.value)?;
            let key = obj.version_key(&version);
            let txn = BarrierTxn::new()
                .require(&key, Some(&token))
                .put(&key, &record);
            if self.barrier.commit(txn).await? {
                return Ok(current);
            }
            tokio::task::yield_now().await;
        }
        Err(VaultError::Contention {
            key: obj.meta_key(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Creates an object from exported versions (their ids and attributes kept) with `latest`
    /// as the latest version, in one transaction: the restore of a backup. Refused with
    /// [`VaultError::AlreadyExists`] when the name exists in any state (live, deleted, purging).
    pub async fn import_object(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
        versions: &[ObjectVersion],
        latest: &str,
    ) -> Result<ObjectMeta> {
        let (vault_key, name_key) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault_key,
            kind,
            name: &name_key,
        };
        let latest = check_version(latest)?;
        let mut txn = BarrierTxn::new().require_absent(&obj.meta_key());
        let (mut created, mut updated) = (i64::MAX, i64::MIN);
        let mut has_latest = false;
        for version in versions {
            let id = check_version(&version.version)?;
            has_latest |= id == latest;
            created = created.min(version.attributes.created);
            updated = updated.max(version.attributes.created);
            let key = obj.version_key(&id);
            txn = txn
                .require_absent(&key)
                .put(&key, &encode_version(&version.attributes, &version.value)?);
        }
        if !has_latest {
            return Err(VaultError::InvalidBackup {
                reason: "the latest version is not among the versions",
            });
        }
        let meta = ObjectMeta {
            name: name.to_owned(),
            latest,
            version_count: u64::try_from(versions.len()).unwrap_or(u64::MAX),
            created,
            updated,
            deleted: None,
            purging: false,
        };
        let bytes = serde_json::to_vec(&meta).map_err(|e| corrupt("metadata", e))?;
        let txn = txn
            .put(&obj.meta_key(), &bytes)
            .put(&obj.index_key(false), b"");
        if self.barrier.commit(txn).await? {
            Ok(meta)
        } else {
            Err(VaultError::AlreadyExists {
                what: obj.describe(),
            })
        }
    }

    /// Every version of an object (live or deleted), values included, in id order; refused
    /// with [`VaultError::TooManyVersions`] past `max` versions (backup).
    pub async fn export_object(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
        max: usize,
    ) -> Result<(ObjectMeta, Vec<ObjectVersion>)> {
        let (vault_key, name_key) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault_key,
            kind,
            name: &name_key,
        };
        let (meta, _) = self
            .read_meta(obj)
            .await?
            .filter(|(m, _)| !m.purging)
            .ok_or_else(|| VaultError::NotFound {
                what: obj.describe(),
            })?;
        let prefix = obj.versions_prefix();
        let mut versions = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.barrier.list(&prefix, after.as_deref(), 100).await?;
            for key in &page.keys {
                let Some(id) = key.strip_prefix(&prefix) else {
                    continue;
                };
                if versions.len() >= max {
                    return Err(VaultError::TooManyVersions {
                        what: obj.describe(),
                        versions: usize::try_from(meta.version_count).unwrap_or(usize::MAX),
                        max,
                    });
                }
                if let Some((version, _)) = self.read_version(obj, id).await? {
                    versions.push(version);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok((meta, versions))
    }

    /// Names (lowercased) of live objects (or, with `deleted`, of deleted ones) of a kind in
    /// a vault, a page at a time.
    pub async fn list_names(
        &self,
        vault: &str,
        kind: ObjectKind,
        deleted: bool,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<IdPage> {
        let vault = check_name("vault name", vault)?;
        let prefix = index_prefix(&vault, kind, deleted);
        let after = start_after.map(|s| format!("{prefix}{}", s.to_ascii_lowercase()));
        let page = self.barrier.list(&prefix, after.as_deref(), limit).await?;
        let strip = |k: &str| k.strip_prefix(&prefix).map(str::to_owned);
        Ok(IdPage {
            ids: page.keys.iter().filter_map(|k| strip(k)).collect(),
            next: page.next.as_deref().and_then(strip),
        })
    }

    /// Version ids of an object (live or deleted), a page at a time, in id order.
    pub async fn list_versions(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<IdPage> {
        let (vault, name) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault,
            kind,
            name: &name,
        };
        if self.read_meta(obj).await?.is_none() {
            return Err(VaultError::NotFound {
                what: obj.describe(),
            });
        }
        let prefix = obj.versions_prefix();
        let after = start_after.map(|s| format!("{prefix}{s}"));
        let page = self.barrier.list(&prefix, after.as_deref(), limit).await?;
        let strip = |k: &str| k.strip_prefix(&prefix).map(str::to_owned);
        Ok(IdPage {
            ids: page.keys.iter().filter_map(|k| strip(k)).collect(),
            next: page.next.as_deref().and_then(strip),
        })
    }

    /// Applies `change` to the metadata of an object in one transaction with the index moves
    /// `index` asks for (`Some(true)`: live → deleted, `Some(false)`: deleted → live).
    async fn transition(
        &self,
        obj: Obj<'_>,
        change: impl Fn(&mut ObjectMeta) -> Result<Option<bool>>,
    ) -> Result<ObjectMeta> {
        for _ in 0..MAX_ATTEMPTS {
            let (mut meta, token) =
                self.read_meta(obj)
                    .await?
                    .ok_or_else(|| VaultError::NotFound {
                        what: obj.describe(),
                    })?;
            let index = change(&mut meta)?;
            let bytes = serde_json::to_vec(&meta).map_err(|e| corrupt("metadata", e))?;
            let mut txn = BarrierTxn::new()
                .require(&obj.meta_key(), Some(&token))
                .put(&obj.meta_key(), &bytes);
            if let Some(to_deleted) = index {
                txn = txn
                    .delete(&obj.index_key(!to_deleted))
                    .put(&obj.index_key(to_deleted), b"");
            }
            if self.barrier.commit(txn).await? {
                return Ok(meta);
            }
            tokio::task::yield_now().await;
        }
        Err(VaultError::Contention {
            key: obj.meta_key(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Soft-deletes a live object (all its versions).
    pub async fn mark_deleted(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
        info: DeletionInfo,
    ) -> Result<ObjectMeta> {
        let (vault, name) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault,
            kind,
            name: &name,
        };
        self.transition(obj, |meta| {
            if meta.deleted.is_some() || meta.purging {
                return Err(VaultError::NotFound {
                    what: obj.describe(),
                });
            }
            meta.deleted = Some(info);
            Ok(Some(true))
        })
        .await
    }

    /// Recovers a soft-deleted object.
    pub async fn recover(&self, vault: &str, kind: ObjectKind, name: &str) -> Result<ObjectMeta> {
        let (vault, name) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault,
            kind,
            name: &name,
        };
        self.transition(obj, |meta| {
            if meta.deleted.is_none() || meta.purging {
                return Err(VaultError::NotFound {
                    what: format!("deleted {}", obj.describe()),
                });
            }
            meta.deleted = None;
            Ok(Some(false))
        })
        .await
    }

    /// Permanently removes a soft-deleted object and all its versions. Resumable: an
    /// interrupted purge is finished by calling it again.
    pub async fn purge(&self, vault: &str, kind: ObjectKind, name: &str) -> Result<()> {
        let (vault, name) = (check_name("vault name", vault)?, check_name("name", name)?);
        let obj = Obj {
            vault: &vault,
            kind,
            name: &name,
        };
        self.transition(obj, |meta| {
            if meta.deleted.is_none() {
                return Err(VaultError::NotFound {
                    what: format!("deleted {}", obj.describe()),
                });
            }
            meta.purging = true;
            Ok(None)
        })
        .await?;
        let prefix = obj.versions_prefix();
        loop {
            let page = self.barrier.list(&prefix, None, PURGE_BATCH).await?;
            if page.keys.is_empty() {
                break;
            }
            let txn = page
                .keys
                .iter()
                .fold(BarrierTxn::new(), |txn, key| txn.delete(key));
            self.barrier.commit(txn).await?;
        }
        for _ in 0..MAX_ATTEMPTS {
            let Some((_, token)) = self.read_meta(obj).await? else {
                return Ok(()); // purged concurrently
            };
            let txn = BarrierTxn::new()
                .require(&obj.meta_key(), Some(&token))
                .delete(&obj.meta_key())
                .delete(&obj.index_key(true))
                .delete(&obj.index_key(false));
            if self.barrier.commit(txn).await? {
                return Ok(());
            }
            tokio::task::yield_now().await;
        }
        Err(VaultError::Contention {
            key: obj.meta_key(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Creates one new version with the **same version id** in each of several objects of a
    /// vault (a certificate with its linked key and secret), in one transaction: all or none.
    /// Each object is created when new; refused with [`VaultError::DeletedButRecoverable`]
    /// when any of them is deleted. Returns the version id.
    pub async fn create_linked_versions(
        &self,
        vault: &str,
        items: &[LinkedVersion<'_>],
    ) -> Result<String> {
        self.create_linked_versions_after(vault, items, None)
            .await?
            .ok_or_else(|| corrupt("metadata", "a write without a precondition was refused"))
    }

    /// [`VersionedStore::create_linked_versions`] with a compare-and-swap on the first item:
    /// with `expected_latest`, the new versions are written only while that version is still
    /// the first object's latest (checked in the same transaction as the write). `Ok(None)`
    /// when it is not (another writer, maybe another process, made a version meanwhile, or
    /// the object is gone): nothing was written.
    pub async fn create_linked_versions_after(
        &self,
        vault: &str,
        items: &[LinkedVersion<'_>],
        expected_latest: Option<&str>,
    ) -> Result<Option<String>> {
        let vault_key = check_name("vault name", vault)?;
        let mut names = Vec::with_capacity(items.len());
        for item in items {
            names.push(check_name("name", item.name)?);
        }
        for _ in 0..MAX_ATTEMPTS {
            let version = new_version_id()?;
            let now = now();
            let mut txn = BarrierTxn::new();
            for (index, (item, name_key)) in items.iter().zip(&names).enumerate() {
                let obj = Obj {
                    vault: &vault_key,
                    kind: item.kind,
                    name: name_key,
                };
                let current = self.read_meta(obj).await?;
                if index == 0
                    && let Some(expected) = expected_latest
                {
                    match &current {
                        Some((meta, _))
                            if !meta.purging
                                && meta.deleted.is_none()
                                && meta.latest.eq_ignore_ascii_case(expected) => {}
                        _ => return Ok(None),
                    }
                }
                let (meta, token) = match current {
                    Some((meta, _)) if meta.purging => {
                        return Err(VaultError::WrongState {
                            what: obj.describe(),
                            reason: "is being purged",
                        });
                    }
                    Some((meta, _)) if meta.deleted.is_some() => {
                        return Err(VaultError::DeletedButRecoverable {
                            what: obj.describe(),
                        });
                    }
                    Some((mut meta, token)) => {
                        meta.latest = version.clone();
                        meta.version_count += 1;
                        meta.updated = now;
                        (meta, Some(token))
                    }
                    None => (
                        ObjectMeta {
                            name: item.name.to_owned(),
                            latest: version.clone(),
                            version_count: 1,
                            created: now,
                            updated: now,
                            deleted: None,
                            purging: false,
                        },
                        None,
                    ),
                };
                let mut attributes = item.attributes.clone();
                attributes.created = now;
                attributes.updated = now;
                let meta_bytes = serde_json::to_vec(&meta).map_err(|e| corrupt("metadata", e))?;
                let record = encode_version(&attributes, item.value)?;
                let version_key = obj.version_key(&version);
                txn = txn
                    .require(&obj.meta_key(), token.as_ref())
                    .require_absent(&version_key)
                    .put(&version_key, &record)
                    .put(&obj.meta_key(), &meta_bytes);
                if token.is_none() {
                    txn = txn.put(&obj.index_key(false), b"");
                }
            }
            if self.barrier.commit(txn).await? {
                return Ok(Some(version));
            }
            tokio::task::yield_now().await;
        }
        Err(VaultError::Contention {
            key: format!("obj/{vault_key}/linked"),
            attempts: MAX_ATTEMPTS,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_lowercased() {
        assert_eq!(check_name("name", "My-Secret-01").unwrap(), "my-secret-01");
        for bad in ["", "a/b", "a b", "ünï", "x.y", &"a".repeat(128)] {
            assert!(
                matches!(check_name("name", bad), Err(VaultError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(check_name("name", &"a".repeat(127)).is_ok());
    }

    #[test]
    fn versions_are_32_hex() {
        let v = new_version_id().unwrap();
        assert_eq!(v.len(), 32);
        assert_eq!(check_version(&v).unwrap(), v);
        assert_eq!(check_version(&v.to_ascii_uppercase()).unwrap(), v);
        for bad in [
            "",
            "abc",
            &"g".repeat(32),
            &"a".repeat(33),
            "../../../../../../../../../../..",
        ] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn version_records_round_trip() {
        let attrs = Attributes {
            content_type: Some("text/plain".into()),
            tags: BTreeMap::from([("env".into(), "prod".into())]),
            ..Attributes::default()
        };
        let bytes = encode_version(&attrs, b"\x00\xffvalue").unwrap();
        let back = decode_version("v".into(), &bytes).unwrap();
        assert_eq!(back.attributes, attrs);
        assert_eq!(back.value.as_slice(), b"\x00\xffvalue");
        assert!(decode_version("v".into(), &bytes[..3]).is_err());
        assert!(decode_version("v".into(), &[0, 0, 1, 0, b'{']).is_err());
        let text = format!("{back:?}");
        assert!(!text.contains("value\""), "{text}");
    }
}
