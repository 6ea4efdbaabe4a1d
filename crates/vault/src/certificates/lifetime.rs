//! The certificate lifetime-action scheduler's sweep ([`Certificates::run_lifetime_actions`]),
//! as Azure Key Vault acts on a policy's `lifetime_actions`:
//!
//! * **`AutoRenew`** (issuer `Self` only: Azure refuses the action for `Unknown`, and so does
//!   [`Policy::resolve`]): when a trigger of the latest version is due, the next version is
//!   issued from the policy (a new key unless `key_props.reuse_key`; subject, SANs, usages and
//!   `validity_months` of the policy, valid from the sweep's clock), with its linked key and
//!   secret, exactly as a create. The write is a compare-and-swap on the latest version
//!   ([`VersionedStore::create_linked_versions_after`](crate::VersionedStore::create_linked_versions_after)):
//!   of two schedulers (two processes on one PostgreSQL) racing for the same due renewal, one
//!   writes the version and the other finds the latest changed and writes nothing.
//! * **`EmailContacts`**: there is no mail here; a due trigger is reported once per version
//!   ([`NearExpiry`], with the vault's contact addresses) for the caller to audit and count.
//!   "Once" is the barrier record `certlifetime/<vault>/<name>` (the last version reported),
//!   written by compare-and-swap, so of two schedulers only one reports.
//!
//! Triggers ([`Trigger::due_at`](super::policy::Trigger::due_at)): `lifetime_percentage` of
//! the version's validity (`nbf` to `exp`) elapsed, or `days_before_expiry` days before `exp`.
//! When `AutoRenew` is due, the version is replaced and no `EmailContacts` is reported for it.
//! Disabled latest versions, deleted certificates and certificates with an operation in
//! progress are skipped. The caller skips sweeps while read-only or sealed; a sealed barrier
//! ends the sweep with [`VaultError::Sealed`]. A failing certificate does not stop the sweep.

use serde::{Deserialize, Serialize};

use super::policy::{ActionType, IssuerKind, Policy};
use super::x509::{self, CertKey};
use super::{
    Certificate, Certificates, KIND, PendingRecord, VaultInfo, corrupt, key_name, new_request_id,
};
use crate::barrier::{BarrierTxn, MAX_ATTEMPTS};
use crate::error::{Result, VaultError};

/// A version created by `AutoRenew`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewed {
    /// The certificate's name as first written.
    pub name: String,
    /// The version that was due.
    pub previous: String,
    /// The new version.
    pub version: String,
}

/// An `EmailContacts` action that became due (reported once per version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearExpiry {
    /// The certificate's name as first written.
    pub name: String,
    /// The version near expiry.
    pub version: String,
    /// Its expiry (Unix seconds).
    pub expires: i64,
    /// The vault's certificate contacts' e-mail addresses (empty when none are set).
    pub contacts: Vec<String>,
}

/// What one sweep over a vault did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifetimeReport {
    /// Live certificates looked at.
    pub examined: usize,
    /// Renewals this sweep wrote.
    pub renewed: Vec<Renewed>,
    /// `EmailContacts` actions this sweep reported.
    pub near_expiry: Vec<NearExpiry>,
    /// Certificates whose actions failed: (name, error); retried at the next sweep.
    pub failed: Vec<(String, String)>,
}

/// `certlifetime/<vault>/<name>`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LifetimeState {
    /// The last version an `EmailContacts` action was reported for.
    #[serde(default)]
    notified_version: Option<String>,
}

pub(super) fn lifetime_key(vault: &str, name: &str) -> Result<String> {
    Ok(format!(
        "certlifetime/{}/{}",
        key_name(vault)?,
        key_name(name)?
    ))
}

/// The earliest time a trigger of an action of `action_type` fires for a version valid from
/// `not_before` to `expires`.
fn due_at(policy: &Policy, action_type: ActionType, not_before: i64, expires: i64) -> Option<i64> {
    policy
        .lifetime_actions
        .iter()
        .flatten()
        .filter(|a| a.action.action_type == action_type)
        .filter_map(|a| a.trigger.due_at(not_before, expires))
        .min()
}

impl Certificates {
    /// The scheduler's sweep over the live certificates of `vault` at `now` (Unix seconds;
    /// injected so tests can move the clock): carries out due `AutoRenew` actions and
    /// reports due `EmailContacts` actions (module docs).
    pub async fn run_lifetime_actions(
        &self,
        vault: &VaultInfo,
        now: i64,
    ) -> Result<LifetimeReport> {
        let mut report = LifetimeReport::default();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .list_names(&vault.name, KIND, false, after.as_deref(), 100)
                .await?;
            for name in &page.ids {
                report.examined += 1;
                match self
                    .apply_lifetime_actions(vault, name, now, &mut report)
                    .await
                {
                    Ok(()) => {}
                    Err(VaultError::Sealed) => return Err(VaultError::Sealed),
                    Err(e) => report.failed.push((name.clone(), e.to_string())),
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(report)
    }

    async fn apply_lifetime_actions(
        &self,
        vault: &VaultInfo,
        name: &str,
        now: i64,
        report: &mut LifetimeReport,
    ) -> Result<()> {
        let latest = match self.get(&vault.name, name, None).await {
            Ok(latest) => latest,
            // Deleted (or purged) since it was listed.
            Err(VaultError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !latest.attributes.enabled {
            return Ok(());
        }
        let Some(policy) = latest.policy.clone() else {
            return Ok(());
        };
        let (Some(not_before), Some(expires)) =
            (latest.attributes.not_before, latest.attributes.expires)
        else {
            return Ok(());
        };
        let renew_due = due_at(&policy, ActionType::AutoRenew, not_before, expires)
            .is_some_and(|due| due <= now);
        // AutoRenew needs an issuer that signs without a human: `Self`. (`Unknown` cannot carry
        // the action; an unsupported issuer name is not ours to act on.)
        if renew_due && policy.issuer_kind().ok() == Some(IssuerKind::SelfSigned) {
            if let Some(p) = self.read_pending(&vault.name, name).await?
                && p.status == "inProgress"
            {
                return Ok(()); // a create is being completed by merge: it makes the next version
            }
            if let Some(cert) = self.renew_after(vault, name, &latest, &policy, now).await? {
                report.renewed.push(Renewed {
                    name: cert.name,
                    previous: latest.version,
                    version: cert.version,
                });
            }
            return Ok(());
        }
        let notify_due = due_at(&policy, ActionType::EmailContacts, not_before, expires)
            .is_some_and(|due| due <= now);
        if notify_due
            && self
                .record_notified(&vault.name, name, &latest.version)
                .await?
        {
            let contacts = self
                .contacts(vault)
                .await?
                .into_iter()
                .filter_map(|c| c.email)
                .collect();
            report.near_expiry.push(NearExpiry {
                name: latest.name,
                version: latest.version,
                expires,
                contacts,
            });
        }
        Ok(())
    }

    /// Issues the version after `latest` from `policy` (issuer `Self`), valid from `at`;
    /// `None` when `latest` is no longer the latest version (another writer renewed it).
    async fn renew_after(
        &self,
        vault: &VaultInfo,
        name: &str,
        latest: &Certificate,
        policy: &Policy,
        at: i64,
    ) -> Result<Option<Certificate>> {
        let vault_name = vault.name.as_str();
        let kind = policy.key_kind()?;
        let reused = match policy.key().reuse_key.unwrap_or(false) {
            true => self.existing_key(vault_name, name, kind).await?,
            false => None,
        };
        let key = match reused {
            Some(key) => key,
            None => tokio::task::spawn_blocking(move || CertKey::generate(kind))
                .await
                .map_err(|e| VaultError::Task(e.to_string()))??,
        };
        let x509_props = policy.x509_props.clone().unwrap_or_default();
        let months = x509_props.validity_months.unwrap_or(12);
        let cer = x509::self_signed(x509::params_at(&x509_props, months, at)?, &key)?;
        let enabled = policy
            .attributes
            .as_ref()
            .and_then(|a| a.enabled)
            .unwrap_or(true);
        let tags = latest.attributes.tags.clone();
        let Some(cert) = self
            .write_linked_after(
                vault_name,
                name,
                policy,
                &key,
                &[cer],
                (enabled, tags.clone()),
                Some(&latest.version),
            )
            .await?
        else {
            return Ok(None);
        };
        // The operation resource shows the renewal, as after a create.
        let record = PendingRecord {
            name: cert.name.clone(),
            request_id: new_request_id()?,
            issuer_name: policy
                .issuer
                .as_ref()
                .and_then(|i| i.name.clone())
                .unwrap_or_default(),
            policy: policy.clone(),
            csr: None,
            key: None,
            status: "completed".into(),
            status_details: String::new(),
            cancellation_requested: false,
            target: Some(cert.version.clone()),
            error: None,
            enabled,
            tags,
        };
        self.write_pending(vault_name, &record).await?;
        Ok(Some(cert))
    }

    /// Records that `version`'s `EmailContacts` action was reported; `false` when it already
    /// was (by this or another scheduler).
    async fn record_notified(&self, vault: &str, name: &str, version: &str) -> Result<bool> {
        let key = lifetime_key(vault, name)?;
        let barrier = self.store.barrier();
        for _ in 0..MAX_ATTEMPTS {
            let current = barrier.get_versioned(&key).await?;
            let mut state: LifetimeState = match &current {
                Some(c) => {
                    serde_json::from_slice(&c.value).map_err(|e| corrupt("lifetime state", e))?
                }
                None => LifetimeState::default(),
            };
            if state.notified_version.as_deref() == Some(version) {
                return Ok(false);
            }
            state.notified_version = Some(version.to_owned());
            let bytes = serde_json::to_vec(&state).map_err(|e| corrupt("lifetime state", e))?;
            let txn = BarrierTxn::new()
                .require(&key, current.as_ref().map(|c| &c.token))
                .put(&key, &bytes);
            if barrier.commit(txn).await? {
                return Ok(true);
            }
            tokio::task::yield_now().await;
        }
        Err(VaultError::Contention {
            key,
            attempts: MAX_ATTEMPTS,
        })
    }
}
