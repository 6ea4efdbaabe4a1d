//! The secrets service: Azure Key Vault secret semantics on the [`VersionedStore`].
//!
//! * set creates a new version (value up to 25 KiB of UTF-8, as Azure);
//! * get of a disabled version is refused ([`VaultError::Disabled`], Azure's 403);
//! * lists give properties of latest versions, never values;
//! * delete is always a soft delete: the object moves to the deleted state with a scheduled
//!   purge date `now + retention days` of its vault; its name cannot be reused
//!   ([`VaultError::DeletedButRecoverable`], Azure's 409) until it is recovered or purged;
//! * purge is refused when the vault has purge protection ([`VaultError::PurgeProtected`]);
//! * backup/restore move every version in a geography-bound blob ([`crate::backup`]).
//!
//! Values are held in [`Zeroizing`] buffers and never printed by `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroizing;

use crate::backup;
use crate::error::{Result, VaultError};
use crate::store::{
    Attributes, DeletionInfo, ObjectKind, ObjectMeta, ObjectVersion, VersionedStore, unix_now,
};
use crate::vaults::VaultInfo;

/// Largest secret value in bytes (Azure: 25 KiB).
pub const MAX_VALUE_BYTES: usize = 25 * 1024;
/// Largest content type in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;
/// Most tags per secret (Azure: 15).
pub const MAX_TAGS: usize = 15;

const KIND: ObjectKind = ObjectKind::Secret;

/// A secret version with its value.
#[derive(Clone)]
pub struct Secret {
    /// The name as first written.
    pub name: String,
    /// The version id.
    pub version: String,
    /// The value.
    pub value: Zeroizing<String>,
    /// The attributes.
    pub attributes: Attributes,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// A secret version's properties (no value).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretProperties {
    /// The name as first written.
    pub name: String,
    /// The version id.
    pub version: String,
    /// The attributes.
    pub attributes: Attributes,
}

/// A soft-deleted secret: its latest version's properties and the deletion dates.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedSecret {
    /// The latest version's properties.
    pub properties: SecretProperties,
    /// When it was deleted and when it will be purged.
    pub deletion: DeletionInfo,
}

/// What a set (new version) carries.
#[derive(Default)]
pub struct NewSecret {
    /// The value.
    pub value: Zeroizing<String>,
    /// The content type.
    pub content_type: Option<String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Enabled (default true).
    pub enabled: Option<bool>,
    /// Not before (Unix seconds).
    pub not_before: Option<i64>,
    /// Expiry (Unix seconds).
    pub expires: Option<i64>,
}

impl fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSecret")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("content_type", &self.content_type)
            .field("tags", &self.tags)
            .field("enabled", &self.enabled)
            .field("not_before", &self.not_before)
            .field("expires", &self.expires)
            .finish()
    }
}

/// An attribute update: fields that are `Some` replace the current ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretUpdate {
    /// Enabled.
    pub enabled: Option<bool>,
    /// Not before (Unix seconds).
    pub not_before: Option<i64>,
    /// Expiry (Unix seconds).
    pub expires: Option<i64>,
    /// Content type.
    pub content_type: Option<String>,
    /// Tags (replace all tags).
    pub tags: Option<BTreeMap<String, String>>,
}

/// A page of results with the continuation (a lowercased name or version id) for the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass back as `start_after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

fn check_metadata(
    content_type: Option<&String>,
    tags: Option<&BTreeMap<String, String>>,
) -> Result<()> {
    if let Some(ct) = content_type
        && ct.len() > MAX_CONTENT_TYPE_BYTES
    {
        return Err(VaultError::TooLarge {
            what: "content type",
            size: ct.len(),
            max: MAX_CONTENT_TYPE_BYTES,
        });
    }
    if let Some(tags) = tags {
        if tags.len() > MAX_TAGS {
            return Err(VaultError::InvalidSetting {
                what: "tags",
                reason: format!("{} tags, at most {MAX_TAGS} allowed", tags.len()),
            });
        }
        if let Some((k, v)) = tags.iter().find(|(k, v)| k.len() > 512 || v.len() > 512) {
            return Err(VaultError::InvalidSetting {
                what: "tags",
                reason: format!(
                    "tag {:?} is longer than 512 bytes (name or value: {} / {})",
                    k.chars().take(32).collect::<String>(),
                    k.len(),
                    v.len()
                ),
            });
        }
    }
    Ok(())
}

fn to_secret(name: String, version: ObjectVersion) -> Result<Secret> {
    let value = String::from_utf8(version.value.to_vec()).map_err(|_| VaultError::Corrupt {
        what: "secret value".into(),
        reason: "not utf-8".into(),
    })?;
    Ok(Secret {
        name,
        version: version.version,
        value: Zeroizing::new(value),
        attributes: version.attributes,
    })
}

fn props(name: String, version: ObjectVersion) -> SecretProperties {
    SecretProperties {
        name,
        version: version.version,
        attributes: version.attributes,
    }
}

/// The secrets service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Secrets {
    store: VersionedStore,
}

impl Secrets {
    /// Secrets on `store`.
    pub fn new(store: VersionedStore) -> Self {
        Self { store }
    }

    /// The store underneath.
    pub fn store(&self) -> &VersionedStore {
        &self.store
    }

    async fn display_name(&self, vault: &VaultInfo, name: &str) -> Result<ObjectMeta> {
        self.store.meta(&vault.name, KIND, name).await
    }

    /// Sets a secret: a new version that becomes the latest.
    pub async fn set(&self, vault: &VaultInfo, name: &str, new: NewSecret) -> Result<Secret> {
        crate::certificates::refuse_managed(&self.store, &vault.name, KIND, name, "set").await?;
        if new.value.len() > MAX_VALUE_BYTES {
            return Err(VaultError::TooLarge {
                what: "secret value",
                size: new.value.len(),
                max: MAX_VALUE_BYTES,
            });
        }
        check_metadata(new.content_type.as_ref(), Some(&new.tags))?;
        let attributes = Attributes {
            enabled: new.enabled.unwrap_or(true),
            not_before: new.not_before,
            expires: new.expires,
            content_type: new.content_type,
            tags: new.tags,
            ..Attributes::default()
        };
        let version = self
            .store
            .create_version(&vault.name, KIND, name, new.value.as_bytes(), attributes)
            .await?;
        let meta = self.display_name(vault, name).await?;
        to_secret(meta.name, version)
    }

    /// A secret version (`None`: the latest) with its value; a disabled version is refused
    /// with [`VaultError::Disabled`].
    pub async fn get(
        &self,
        vault: &VaultInfo,
        name: &str,
        version: Option<&str>,
    ) -> Result<Secret> {
        let (meta, found) = self
            .store
            .get_version_with_meta(&vault.name, KIND, name, version)
            .await?;
        if !found.attributes.enabled {
            return Err(VaultError::Disabled {
                what: format!("secret {:?}", meta.name),
                operation: "get",
            });
        }
        to_secret(meta.name, found)
    }

    /// Properties of a secret version (`None`: the latest), disabled or not.
    pub async fn properties(
        &self,
        vault: &VaultInfo,
        name: &str,
        version: Option<&str>,
    ) -> Result<SecretProperties> {
        let (meta, found) = self
            .store
            .get_version_with_meta(&vault.name, KIND, name, version)
            .await?;
        Ok(props(meta.name, found))
    }

    /// Latest versions' properties of live secrets, `limit` at a time, by name.
    pub async fn list(
        &self,
        vault: &VaultInfo,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page<SecretProperties>> {
        let page = self
            .store
            .list_names(&vault.name, KIND, false, start_after, limit)
            .await?;
        let mut items = Vec::with_capacity(page.ids.len());
        for name in &page.ids {
            match self.properties(vault, name, None).await {
                Ok(p) => items.push(p),
                // Deleted or purged between the index read and this one.
                Err(VaultError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Properties of every version of a secret, `limit` at a time, by version id.
    pub async fn list_versions(
        &self,
        vault: &VaultInfo,
        name: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page<SecretProperties>> {
        let meta = self.display_name(vault, name).await?;
        if meta.deleted.is_some() || meta.purging {
            return Err(VaultError::NotFound {
                what: format!("secret {:?}", meta.name),
            });
        }
        let page = self
            .store
            .list_versions(&vault.name, KIND, name, start_after, limit)
            .await?;
        let mut items = Vec::with_capacity(page.ids.len());
        for id in &page.ids {
            match self
                .store
                .get_version(&vault.name, KIND, name, Some(id))
                .await
            {
                Ok(v) => items.push(props(meta.name.clone(), v)),
                Err(VaultError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Updates attributes of a version (`None`: the latest). Allowed on disabled versions.
    pub async fn update(
        &self,
        vault: &VaultInfo,
        name: &str,
        version: Option<&str>,
        update: SecretUpdate,
    ) -> Result<SecretProperties> {
        check_metadata(update.content_type.as_ref(), update.tags.as_ref())?;
        crate::certificates::refuse_managed(&self.store, &vault.name, KIND, name, "update").await?;
        let found = self
            .store
            .update_attributes(&vault.name, KIND, name, version, |a| {
                if let Some(enabled) = update.enabled {
                    a.enabled = enabled;
                }
                if let Some(nbf) = update.not_before {
                    a.not_before = Some(nbf);
                }
                if let Some(exp) = update.expires {
                    a.expires = Some(exp);
                }
                if let Some(ct) = &update.content_type {
                    a.content_type = Some(ct.clone());
                }
                if let Some(tags) = &update.tags {
                    a.tags = tags.clone();
                }
            })
            .await?;
        let meta = self.display_name(vault, name).await?;
        Ok(props(meta.name, found))
    }

    /// Soft-deletes a secret (all versions): scheduled for purge after the vault's retention.
    pub async fn delete(&self, vault: &VaultInfo, name: &str) -> Result<DeletedSecret> {
        crate::certificates::refuse_managed(&self.store, &vault.name, KIND, name, "delete").await?;
        let latest = self.properties(vault, name, None).await?;
        let now = unix_now();
        let deletion = DeletionInfo {
            deleted_on: now,
            scheduled_purge: now.saturating_add(vault.retention_secs()),
        };
        self.store
            .mark_deleted(&vault.name, KIND, name, deletion)
            .await?;
        Ok(DeletedSecret {
            properties: latest,
            deletion,
        })
    }

    /// A deleted secret.
    pub async fn get_deleted(&self, vault: &VaultInfo, name: &str) -> Result<DeletedSecret> {
        let (meta, latest) = self.store.get_deleted(&vault.name, KIND, name).await?;
        let deletion = meta.deleted.ok_or_else(|| VaultError::NotFound {
            what: format!("deleted secret {name:?}"),
        })?;
        Ok(DeletedSecret {
            properties: props(meta.name, latest),
            deletion,
        })
    }

    /// Deleted secrets, `limit` at a time, by name.
    pub async fn list_deleted(
        &self,
        vault: &VaultInfo,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page<DeletedSecret>> {
        let page = self
            .store
            .list_names(&vault.name, KIND, true, start_after, limit)
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

    /// Recovers a deleted secret; returns its latest version's properties.
    pub async fn recover(&self, vault: &VaultInfo, name: &str) -> Result<SecretProperties> {
        crate::certificates::refuse_managed(&self.store, &vault.name, KIND, name, "recover")
            .await?;
        self.store.recover(&vault.name, KIND, name).await?;
        self.properties(vault, name, None).await
    }

    /// Permanently removes a deleted secret; refused when the vault has purge protection.
    pub async fn purge(&self, vault: &VaultInfo, name: &str) -> Result<()> {
        // Not found first, as Azure answers 404 for a name that is not deleted.
        let deleted = self.get_deleted(vault, name).await?;
        crate::certificates::refuse_managed(&self.store, &vault.name, KIND, name, "purge").await?;
        if vault.purge_protection {
            return Err(VaultError::PurgeProtected {
                what: format!("secret {:?}", deleted.properties.name),
                vault: vault.name.clone(),
            });
        }
        self.store.purge(&vault.name, KIND, name).await
    }

    /// A backup blob of every version of a live secret.
    pub async fn backup(&self, vault: &VaultInfo, name: &str) -> Result<Vec<u8>> {
        let meta = self.display_name(vault, name).await?;
        if meta.deleted.is_some() || meta.purging {
            return Err(VaultError::NotFound {
                what: format!("secret {:?}", meta.name),
            });
        }
        backup::backup_object(&self.store, vault, KIND, name).await
    }

    /// Restores a backup blob; returns the latest version's properties.
    pub async fn restore(&self, vault: &VaultInfo, blob: &[u8]) -> Result<SecretProperties> {
        let (meta, latest) = backup::restore_object(&self.store, vault, KIND, blob).await?;
        Ok(props(meta.name, latest))
    }
}
