//! The vault registry: which vaults exist in this deployment and their fixed lifecycle
//! settings (soft-delete retention, purge protection, geography), persisted through the
//! [`Barrier`], and the purge scheduler's sweep over every vault.
//!
//! Rules follow Azure Key Vault:
//! * names are 3-24 characters, ASCII letters, digits and hyphens, starting with a letter,
//!   not ending with a hyphen, no two consecutive hyphens; case-insensitive (kept lowercase);
//! * soft delete is always on; retention is 7-90 days (default 90) and fixed at creation;
//! * purge protection is opt-in and irreversible once on;
//! * the geography id decides where backups may be restored (see [`crate::secrets`]).
//!
//! Barrier keys: `sys/vaults/<name>` (JSON [`VaultInfo`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::barrier::{Barrier, BarrierTxn, MAX_ATTEMPTS};
use crate::error::{Result, VaultError};
use crate::store::{ObjectKind, VersionedStore};

/// Shortest soft-delete retention (days).
pub const MIN_RETENTION_DAYS: u32 = 7;
/// Longest (and default) soft-delete retention (days).
pub const MAX_RETENTION_DAYS: u32 = 90;
/// The geography id used when none is configured.
pub const DEFAULT_GEOGRAPHY: &str = "local";

const PREFIX: &str = "sys/vaults/";

/// Settings chosen when a vault is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultOptions {
    /// Soft-delete retention in days (7-90).
    pub retention_days: u32,
    /// Whether purge protection is on.
    pub purge_protection: bool,
    /// The geography id (letters, digits, `-`, 1-64 chars).
    pub geography: String,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            retention_days: MAX_RETENTION_DAYS,
            purge_protection: false,
            geography: DEFAULT_GEOGRAPHY.to_owned(),
        }
    }
}

/// A vault of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultInfo {
    /// The name (lowercase).
    pub name: String,
    /// Soft-delete retention in days.
    pub retention_days: u32,
    /// Whether purge protection is on (irreversible).
    pub purge_protection: bool,
    /// The geography id.
    pub geography: String,
    /// Creation time (Unix seconds).
    pub created: i64,
}

impl VaultInfo {
    /// Azure's `recoveryLevel` for objects of this vault.
    pub fn recovery_level(&self) -> &'static str {
        if self.purge_protection {
            "Recoverable"
        } else {
            "Recoverable+Purgeable"
        }
    }

    /// The retention in seconds.
    pub fn retention_secs(&self) -> i64 {
        i64::from(self.retention_days) * 86_400
    }
}

/// Checks a vault name (Azure's rules) and returns it lowercased.
pub fn check_vault_name(name: &str) -> Result<String> {
    let bad = |reason: &str| VaultError::InvalidSetting {
        what: "vault name",
        reason: format!("{:?} {reason}", name.chars().take(32).collect::<String>()),
    };
    if !(3..=24).contains(&name.len()) {
        return Err(bad("must be 3-24 characters long"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(bad("may hold only letters, digits and '-'"));
    }
    if !name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()) {
        return Err(bad("must start with a letter"));
    }
    if name.ends_with('-') || name.contains("--") {
        return Err(bad("must not end with '-' or hold '--'"));
    }
    Ok(name.to_ascii_lowercase())
}

fn check_options(options: &VaultOptions) -> Result<()> {
    if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&options.retention_days) {
        return Err(VaultError::InvalidSetting {
            what: "retention days",
            reason: format!(
                "{} is outside {MIN_RETENTION_DAYS}-{MAX_RETENTION_DAYS}",
                options.retention_days
            ),
        });
    }
    let geo = &options.geography;
    if geo.is_empty()
        || geo.len() > 64
        || !geo.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(VaultError::InvalidSetting {
            what: "geography",
            reason: format!(
                "{:?} must be 1-64 letters, digits or '-'",
                geo.chars().take(64).collect::<String>()
            ),
        });
    }
    Ok(())
}

fn corrupt(reason: impl ToString) -> VaultError {
    VaultError::Corrupt {
        what: "vault registry".into(),
        reason: reason.to_string(),
    }
}

/// The registry of vaults. Cheap to clone.
#[derive(Debug, Clone)]
pub struct VaultRegistry {
    barrier: Arc<Barrier>,
}

impl VaultRegistry {
    /// The registry stored in `barrier`.
    pub fn new(barrier: Arc<Barrier>) -> Self {
        Self { barrier }
    }

    /// Creates a vault; [`VaultError::AlreadyExists`] if the name is taken.
    pub async fn create(&self, name: &str, options: &VaultOptions) -> Result<VaultInfo> {
        let name = check_vault_name(name)?;
        check_options(options)?;
        let info = VaultInfo {
            name: name.clone(),
            retention_days: options.retention_days,
            purge_protection: options.purge_protection,
            geography: options.geography.clone(),
            created: crate::store::unix_now(),
        };
        let key = format!("{PREFIX}{name}");
        let bytes = serde_json::to_vec(&info).map_err(corrupt)?;
        let txn = BarrierTxn::new().require_absent(&key).put(&key, &bytes);
        if self.barrier.commit(txn).await? {
            Ok(info)
        } else {
            Err(VaultError::AlreadyExists {
                what: format!("vault {name:?}"),
            })
        }
    }

    /// The vault `name`, created with `options` if it does not exist yet.
    pub async fn ensure(&self, name: &str, options: &VaultOptions) -> Result<VaultInfo> {
        match self.create(name, options).await {
            Err(VaultError::AlreadyExists { .. }) => self.get(name).await,
            other => other,
        }
    }

    /// The vault `name`; [`VaultError::NotFound`] if there is none.
    pub async fn get(&self, name: &str) -> Result<VaultInfo> {
        let name = check_vault_name(name).map_err(|_| VaultError::NotFound {
            what: format!("vault {:?}", name.chars().take(32).collect::<String>()),
        })?;
        let bytes = self
            .barrier
            .get(&format!("{PREFIX}{name}"))
            .await?
            .ok_or_else(|| VaultError::NotFound {
                what: format!("vault {name:?}"),
            })?;
        serde_json::from_slice(&bytes).map_err(corrupt)
    }

    /// Every vault, by name.
    pub async fn list(&self) -> Result<Vec<VaultInfo>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.barrier.list(PREFIX, after.as_deref(), 100).await?;
            for key in &page.keys {
                if let Some(bytes) = self.barrier.get(key).await? {
                    out.push(serde_json::from_slice(&bytes).map_err(corrupt)?);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Turns purge protection on (it cannot be turned off).
    pub async fn enable_purge_protection(&self, name: &str) -> Result<VaultInfo> {
        let name = check_vault_name(name)?;
        let key = format!("{PREFIX}{name}");
        for _ in 0..MAX_ATTEMPTS {
            let read =
                self.barrier
                    .get_versioned(&key)
                    .await?
                    .ok_or_else(|| VaultError::NotFound {
                        what: format!("vault {name:?}"),
                    })?;
            let mut info: VaultInfo = serde_json::from_slice(&read.value).map_err(corrupt)?;
            if info.purge_protection {
                return Ok(info);
            }
            info.purge_protection = true;
            let bytes = serde_json::to_vec(&info).map_err(corrupt)?;
            let txn = BarrierTxn::new()
                .require(&key, Some(&read.token))
                .put(&key, &bytes);
            if self.barrier.commit(txn).await? {
                return Ok(info);
            }
        }
        Err(VaultError::Contention {
            key,
            attempts: MAX_ATTEMPTS,
        })
    }
}

/// What one purge sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Deleted objects examined.
    pub examined: usize,
    /// Objects purged (their scheduled purge date had passed).
    pub purged: usize,
}

/// The purge scheduler's sweep: permanently removes every soft-deleted object (secrets, keys,
/// certificates) of every vault whose scheduled purge date is at or before `now` (Unix
/// seconds). Purge protection does not stop it: that is how protected objects go. The binary
/// calls it periodically; an interrupted sweep is finished by the next one.
pub async fn purge_expired(
    registry: &VaultRegistry,
    store: &VersionedStore,
    now: i64,
) -> Result<PurgeReport> {
    let mut report = PurgeReport::default();
    for vault in registry.list().await? {
        for kind in [ObjectKind::Secret, ObjectKind::Key, ObjectKind::Certificate] {
            let mut after: Option<String> = None;
            loop {
                let page = store
                    .list_names(&vault.name, kind, true, after.as_deref(), 100)
                    .await?;
                for name in &page.ids {
                    report.examined += 1;
                    let meta = match store.meta(&vault.name, kind, name).await {
                        Ok(meta) => meta,
                        Err(VaultError::NotFound { .. }) => continue,
                        Err(e) => return Err(e),
                    };
                    let due =
                        meta.purging || meta.deleted.is_some_and(|d| d.scheduled_purge <= now);
                    if due {
                        match store.purge(&vault.name, kind, name).await {
                            Ok(()) => report.purged += 1,
                            Err(VaultError::NotFound { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn vault_names_follow_azure() {
        for good in ["abc", "My-Vault-1", &format!("a{}", "b".repeat(23))] {
            assert!(check_vault_name(good).is_ok(), "{good}");
        }
        assert_eq!(check_vault_name("My-Vault").unwrap(), "my-vault");
        for bad in [
            "ab",
            "1abc",
            "-abc",
            "abc-",
            "ab--c",
            "a_bc",
            "ab.c",
            "ünïcode",
            &"a".repeat(25),
        ] {
            assert!(
                matches!(
                    check_vault_name(bad),
                    Err(VaultError::InvalidSetting { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn options_are_checked() {
        assert!(check_options(&VaultOptions::default()).is_ok());
        for days in [0, 6, 91, 365] {
            let o = VaultOptions {
                retention_days: days,
                ..VaultOptions::default()
            };
            assert!(check_options(&o).is_err(), "{days}");
        }
        for geo in ["", "eu west", "a/b", &"g".repeat(65)] {
            let o = VaultOptions {
                geography: geo.into(),
                ..VaultOptions::default()
            };
            assert!(check_options(&o).is_err(), "{geo:?}");
        }
    }
}
