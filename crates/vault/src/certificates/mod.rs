//! The certificates service: Azure Key Vault certificate semantics on the [`VersionedStore`].
//!
//! * **create** with a [`Policy`]: issuer `Self` signs the certificate now (rcgen); issuer
//!   `Unknown` leaves a **pending operation** holding a CSR, completed by **merge** with the
//!   CA-signed chain once the leaf's public key is checked against the pending key;
//! * every certificate version comes with a **linked key and secret** of the same name and
//!   version id, marked `managed` and written in the same transaction
//!   ([`VersionedStore::create_linked_versions`]): the key holds the private key in the keys
//!   service's stored form (type byte 1 RSA, 2-4 P-256/384/521, then PKCS#8), the secret
//!   the PKCS#12 (base64) or PEM export (the private key only when `exportable`);
//! * **import** of PEM (key + chain) or PKCS#12 (with or without password);
//! * the policy lives in the latest version's attributes (`extra.policy`), so backups and
//!   purges carry it with the versions; get/update policy, update attributes, versions, list;
//! * delete/recover/purge act on the certificate and its key and secret together;
//! * contacts per vault;
//! * the **lifetime-action scheduler**'s sweep ([`lifetime`]): `AutoRenew` for issuer `Self`,
//!   `EmailContacts` reported once per version.
//!
//! Barrier keys besides the versioned objects: `certlifetime/<vault>/<name>` (the last version
//! an `EmailContacts` action was reported for), `certops/<vault>/<name>` (the pending
//! operation, with the pending private key until merged) and `certcontacts/<vault>`.

pub mod lifetime;
pub mod policy;
pub mod x509;

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::barrier::{BarrierTxn, MAX_ATTEMPTS};
use crate::crypto::fill_random;
use crate::error::{Result, VaultError};
use crate::store::{
    Attributes, DeletionInfo, LinkedVersion, ObjectKind, ObjectVersion, VersionedStore,
};
pub use lifetime::{LifetimeReport, NearExpiry, Renewed};
pub use policy::{IssuerKind, Policy};
use x509::{CertKey, KeyKind};

const KIND: ObjectKind = ObjectKind::Certificate;
const BACKUP_MAGIC: &[u8; 5] = b"RKCB\x01";

pub use crate::vaults::VaultInfo;

/// A page of results with the continuation for the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass back as `start_after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// A certificate version (no private key).
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    /// The name as first written.
    pub name: String,
    /// The version id; the linked key and secret have the same one.
    pub version: String,
    /// The certificate (DER).
    pub cer: Vec<u8>,
    /// SHA-1 thumbprint, base64url (`x5t`).
    pub x5t: String,
    /// Attributes: enabled, nbf/exp (the certificate's validity), created, updated, tags.
    pub attributes: Attributes,
    /// The certificate's current policy.
    pub policy: Option<Policy>,
}

/// A soft-deleted certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct DeletedCertificate {
    /// The latest version.
    pub certificate: Certificate,
    /// When it was deleted and will be purged.
    pub deletion: DeletionInfo,
}

/// An error of a certificate operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationError {
    /// Code.
    pub code: String,
    /// Message.
    pub message: String,
}

/// The pending-operation resource (`/certificates/{name}/pending`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateOperation {
    /// The certificate name.
    pub name: String,
    /// The issuer name (`Self`, `Unknown`).
    pub issuer_name: String,
    /// The CSR (DER), for issuer `Unknown`.
    pub csr: Option<Vec<u8>>,
    /// Whether cancellation was requested.
    pub cancellation_requested: bool,
    /// `inProgress`, `completed` or `cancelled`.
    pub status: String,
    /// Human-readable status.
    pub status_details: String,
    /// The request id.
    pub request_id: String,
    /// The completed certificate's version.
    pub target_version: Option<String>,
    /// The failure, if any.
    pub error: Option<OperationError>,
}

/// A contact for certificate lifetime e-mails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// E-mail address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// What a create carries.
#[derive(Debug, Clone, Default)]
pub struct NewCertificate {
    /// The policy (issuer required).
    pub policy: Policy,
    /// Enabled (default: the policy's, or true).
    pub enabled: Option<bool>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// What an import carries.
#[derive(Default)]
pub struct ImportCertificate {
    /// PEM text, or base64 of a PKCS#12 file (or of PEM text).
    pub value: Zeroizing<String>,
    /// The PKCS#12 password.
    pub password: Option<Zeroizing<String>>,
    /// A partial policy (JSON) laid over the one derived from the certificate.
    pub policy: Option<serde_json::Value>,
    /// Enabled (default true).
    pub enabled: Option<bool>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

impl fmt::Debug for ImportCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportCertificate")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("policy", &self.policy)
            .field("enabled", &self.enabled)
            .field("tags", &self.tags)
            .finish()
    }
}

/// An update of a certificate version: fields that are `Some` replace the current ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CertificateUpdate {
    /// Enabled (the linked key and secret follow).
    pub enabled: Option<bool>,
    /// Tags (replace all).
    pub tags: Option<BTreeMap<String, String>>,
    /// A policy patch (JSON merge).
    pub policy: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct PendingRecord {
    name: String,
    request_id: String,
    issuer_name: String,
    policy: Policy,
    #[serde(default)]
    csr: Option<String>,
    /// The pending private key, PKCS#8 base64, until merged or cancelled.
    #[serde(default)]
    key: Option<String>,
    status: String,
    status_details: String,
    cancellation_requested: bool,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    error: Option<OperationError>,
    enabled: bool,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl Drop for PendingRecord {
    fn drop(&mut self) {
        if let Some(key) = &mut self.key {
            key.zeroize();
        }
    }
}

impl PendingRecord {
    fn operation(&self) -> CertificateOperation {
        CertificateOperation {
            name: self.name.clone(),
            issuer_name: self.issuer_name.clone(),
            csr: self.csr.as_deref().and_then(|c| STANDARD.decode(c).ok()),
            cancellation_requested: self.cancellation_requested,
            status: self.status.clone(),
            status_details: self.status_details.clone(),
            request_id: self.request_id.clone(),
            target_version: self.target.clone(),
            error: self.error.clone(),
        }
    }
}

fn corrupt(what: &str, reason: impl ToString) -> VaultError {
    VaultError::Corrupt {
        what: what.to_owned(),
        reason: reason.to_string(),
    }
}

fn invalid(reason: impl Into<String>) -> VaultError {
    VaultError::InvalidCertificate {
        reason: reason.into(),
    }
}

/// Lowercased name for barrier keys (same rules as the store's names).
fn key_name(name: &str) -> Result<String> {
    if name.is_empty()
        || name.len() > crate::store::MAX_NAME_LEN
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(VaultError::InvalidName {
            what: "name",
            name: name.chars().take(128).collect(),
            reason: "1-127 letters, digits and '-'",
        });
    }
    Ok(name.to_ascii_lowercase())
}

fn pending_key(vault: &str, name: &str) -> Result<String> {
    Ok(format!("certops/{}/{}", key_name(vault)?, key_name(name)?))
}

fn contacts_key(vault: &str) -> Result<String> {
    Ok(format!("certcontacts/{}", key_name(vault)?))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn new_request_id() -> Result<String> {
    let mut raw = [0u8; 16];
    fill_random(&mut raw)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

fn policy_of(attributes: &Attributes) -> Option<Policy> {
    attributes
        .extra
        .get("policy")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn to_certificate(name: String, version: ObjectVersion, policy: Option<Policy>) -> Certificate {
    let x5t = version
        .attributes
        .extra
        .get("x5t")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    let mut attributes = version.attributes;
    attributes.extra.remove("policy");
    Certificate {
        name,
        version: version.version,
        cer: version.value.to_vec(),
        x5t,
        attributes,
        policy,
    }
}

/// The keys service's type byte for a key kind.
fn key_tag(kind: KeyKind) -> u8 {
    match kind {
        KeyKind::Rsa(_) => 1,
        KeyKind::Ec(x509::Curve::P256) => 2,
        KeyKind::Ec(x509::Curve::P384) => 3,
        KeyKind::Ec(x509::Curve::P521) => 4,
    }
}

/// A key in the keys service's stored form: type byte, then PKCS#8 DER.
fn stored_key(key: &CertKey) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(key.pkcs8().len() + 1));
    out.push(key_tag(key.kind()));
    out.extend_from_slice(key.pkcs8());
    out
}

/// Whether the latest version of a key or secret is managed by a certificate: the keys and
/// secrets services refuse direct changes to such objects with
/// [`VaultError::ManagedByCertificate`] (as Azure does). A deleted object counts by its
/// latest version too, so recover and purge are refused as well (they go through the
/// certificate).
pub async fn is_managed(
    store: &VersionedStore,
    vault: &str,
    kind: ObjectKind,
    name: &str,
) -> Result<bool> {
    let deleted = match store.meta(vault, kind, name).await {
        Ok(meta) if meta.purging => return Ok(false),
        Ok(meta) => meta.deleted.is_some(),
        Err(VaultError::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    let latest = if deleted {
        store.get_deleted(vault, kind, name).await.map(|(_, v)| v)
    } else {
        store.get_version(vault, kind, name, None).await
    };
    match latest {
        Ok(v) => Ok(v.attributes.managed),
        // Changed meanwhile: the operation itself will find the new state.
        Err(VaultError::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Refuses `operation` (Azure's name: `set`, `update`, `delete`, `recover`, `purge`,
/// `create`, `import`, `rotate`, ...) with [`VaultError::ManagedByCertificate`] when the
/// latest version of the key or secret `name` (live or deleted) is managed by a certificate.
pub async fn refuse_managed(
    store: &VersionedStore,
    vault: &str,
    kind: ObjectKind,
    name: &str,
    operation: &'static str,
) -> Result<()> {
    if is_managed(store, vault, kind, name).await? {
        return Err(VaultError::ManagedByCertificate {
            what: format!("{} {name:?}", kind.as_str().trim_end_matches('s')),
            operation,
        });
    }
    Ok(())
}

/// The certificates service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Certificates {
    store: VersionedStore,
}

impl Certificates {
    /// Certificates on `store`.
    pub fn new(store: VersionedStore) -> Self {
        Self { store }
    }

    /// The store underneath.
    pub fn store(&self) -> &VersionedStore {
        &self.store
    }

    async fn read_pending(&self, vault: &str, name: &str) -> Result<Option<PendingRecord>> {
        let Some(bytes) = self.store.barrier().get(&pending_key(vault, name)?).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt("pending certificate operation", e))
    }

    async fn write_pending(&self, vault: &str, record: &PendingRecord) -> Result<()> {
        let bytes = Zeroizing::new(
            serde_json::to_vec(record).map_err(|e| corrupt("pending certificate operation", e))?,
        );
        self.store
            .barrier()
            .put(&pending_key(vault, &record.name)?, &bytes)
            .await
    }

    async fn display_name(&self, vault: &str, name: &str) -> Result<String> {
        Ok(self.store.meta(vault, KIND, name).await?.name)
    }

    /// Refuses a write to a name that is deleted (recoverable) or being purged.
    async fn check_writable(&self, vault: &str, name: &str) -> Result<()> {
        match self.store.meta(vault, KIND, name).await {
            Ok(meta) if meta.deleted.is_some() || meta.purging => {
                Err(VaultError::DeletedButRecoverable {
                    what: format!("certificate {name:?} in vault {vault:?}"),
                })
            }
            Ok(_) | Err(VaultError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The private key of the latest linked key version when it is ours and of `kind`.
    async fn existing_key(
        &self,
        vault: &str,
        name: &str,
        kind: KeyKind,
    ) -> Result<Option<CertKey>> {
        match self
            .store
            .get_version(vault, ObjectKind::Key, name, None)
            .await
        {
            Ok(v) if v.attributes.managed => match v.value.split_first() {
                Some((&tag, der)) if tag == key_tag(kind) => {
                    let key = CertKey::from_private_der(der)?;
                    Ok((key.kind() == kind).then_some(key))
                }
                _ => Ok(None),
            },
            Ok(_) | Err(VaultError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a certificate version with its linked key and secret (same version id).
    async fn write_linked(
        &self,
        vault: &str,
        name: &str,
        policy: &Policy,
        key: &CertKey,
        chain: &[Vec<u8>],
        state: (bool, BTreeMap<String, String>),
    ) -> Result<Certificate> {
        self.write_linked_after(vault, name, policy, key, chain, state, None)
            .await?
            .ok_or_else(|| corrupt("certificate", "a write without a precondition was refused"))
    }

    /// [`Self::write_linked`], only while `expected_latest` (when given) is still the
    /// certificate's latest version: `Ok(None)` when another writer got there first.
    #[allow(clippy::too_many_arguments)]
    async fn write_linked_after(
        &self,
        vault: &str,
        name: &str,
        policy: &Policy,
        key: &CertKey,
        chain: &[Vec<u8>],
        (enabled, tags): (bool, BTreeMap<String, String>),
        expected_latest: Option<&str>,
    ) -> Result<Option<Certificate>> {
        let leaf = chain
            .first()
            .ok_or_else(|| invalid("empty certificate chain"))?;
        let info = x509::parse_cert(leaf)?;
        if info.public_raw != key.public_raw() {
            return Err(invalid(
                "the certificate's public key does not match the private key",
            ));
        }
        let base = Attributes {
            enabled,
            not_before: Some(info.not_before),
            expires: Some(info.not_after),
            ..Attributes::default()
        };
        let mut cert_attrs = base.clone();
        cert_attrs.tags = tags;
        cert_attrs
            .extra
            .insert("x5t".into(), serde_json::Value::String(info.x5t.clone()));
        cert_attrs.extra.insert(
            "policy".into(),
            serde_json::to_value(policy).map_err(|e| corrupt("policy", e))?,
        );

        let mut key_attrs = base.clone();
        key_attrs.managed = true;
        // The keys service's stored form (branch vaultkeys, `keys::material`): the key type
        // byte, then PKCS#8; `extra` has kty, key_size or crv, and key_ops.
        match key.kind() {
            KeyKind::Rsa(bits) => {
                key_attrs.extra.insert("kty".into(), "RSA".into());
                key_attrs.extra.insert("key_size".into(), bits.into());
            }
            KeyKind::Ec(curve) => {
                key_attrs.extra.insert("kty".into(), "EC".into());
                key_attrs
                    .extra
                    .insert("crv".into(), curve.jwk_name().into());
            }
        }
        let ops: &[&str] = match key.kind() {
            KeyKind::Rsa(_) => &[
                "sign",
                "verify",
                "encrypt",
                "decrypt",
                "wrapKey",
                "unwrapKey",
            ],
            KeyKind::Ec(_) => &["sign", "verify"],
        };
        key_attrs
            .extra
            .insert("key_ops".into(), serde_json::json!(ops));
        key_attrs
            .extra
            .insert("exportable".into(), policy.exportable().into());
        let key_value = stored_key(key);

        let mut secret_attrs = base;
        secret_attrs.managed = true;
        secret_attrs.content_type = Some(policy.content_type().to_owned());
        let export_key = policy.exportable().then_some(key);
        let secret_value: Zeroizing<Vec<u8>> = if policy.content_type() == policy::CONTENT_TYPE_PEM
        {
            Zeroizing::new(x509::write_pem(export_key, chain).as_bytes().to_vec())
        } else {
            let pfx = x509::write_pfx(export_key, chain)?;
            Zeroizing::new(STANDARD.encode(pfx.as_slice()).into_bytes())
        };

        let version = self
            .store
            .create_linked_versions_after(
                vault,
                &[
                    LinkedVersion {
                        kind: KIND,
                        name,
                        value: leaf,
                        attributes: cert_attrs,
                    },
                    LinkedVersion {
                        kind: ObjectKind::Key,
                        name,
                        value: &key_value,
                        attributes: key_attrs,
                    },
                    LinkedVersion {
                        kind: ObjectKind::Secret,
                        name,
                        value: &secret_value,
                        attributes: secret_attrs,
                    },
                ],
                expected_latest,
            )
            .await?;
        match version {
            Some(version) => self.get(vault, name, Some(&version)).await.map(Some),
            None => Ok(None),
        }
    }

    /// Creates a certificate version under `new.policy`. Issuer `Self`: signed now, the
    /// returned operation is `completed`. Issuer `Unknown`: the operation is `inProgress` with
    /// a CSR until [`Certificates::merge`]. Refused while another operation is in progress.
    pub async fn create(
        &self,
        vault: &VaultInfo,
        name: &str,
        new: NewCertificate,
    ) -> Result<CertificateOperation> {
        let vault_name = vault.name.as_str();
        key_name(name)?;
        let policy = new.policy.resolve(true, now())?;
        let issuer = policy.issuer_kind()?;
        self.check_writable(vault_name, name).await?;
        if let Some(p) = self.read_pending(vault_name, name).await?
            && p.status == "inProgress"
        {
            return Err(VaultError::PendingOperation {
                what: format!("certificate {name:?}"),
                reason: "a certificate operation is already in progress",
            });
        }
        let kind = policy.key_kind()?;
        let reuse = policy.key().reuse_key.unwrap_or(false);
        let key = match reuse {
            true => self.existing_key(vault_name, name, kind).await?,
            false => None,
        };
        let key = match key {
            Some(k) => k,
            None => tokio::task::spawn_blocking(move || CertKey::generate(kind))
                .await
                .map_err(|e| VaultError::Task(e.to_string()))??,
        };
        let x509_props = policy.x509_props.clone().unwrap_or_default();
        let months = x509_props.validity_months.unwrap_or(12);
        let params = x509::params(&x509_props, months)?;
        let enabled = new
            .enabled
            .or(policy.attributes.as_ref().and_then(|a| a.enabled))
            .unwrap_or(true);
        let display = match self.display_name(vault_name, name).await {
            Ok(n) => n,
            Err(VaultError::NotFound { .. }) => name.to_owned(),
            Err(e) => return Err(e),
        };
        let issuer_name = policy
            .issuer
            .as_ref()
            .and_then(|i| i.name.clone())
            .unwrap_or_default();
        let mut record = PendingRecord {
            name: display,
            request_id: new_request_id()?,
            issuer_name,
            policy: policy.clone(),
            csr: None,
            key: None,
            status: "inProgress".into(),
            status_details: "Pending certificate created. Certificate request is in progress. This may take some time based on the issuer provider. Please check again later.".into(),
            cancellation_requested: false,
            target: None,
            error: None,
            enabled,
            tags: new.tags.clone(),
        };
        match issuer {
            IssuerKind::SelfSigned => {
                let cer = x509::self_signed(params, &key)?;
                let cert = self
                    .write_linked(vault_name, name, &policy, &key, &[cer], (enabled, new.tags))
                    .await?;
                record.status = "completed".into();
                record.status_details = String::new();
                record.target = Some(cert.version);
            }
            IssuerKind::Unknown => {
                let csr = x509::csr(params, &key)?;
                record.csr = Some(STANDARD.encode(&csr));
                record.key = Some(STANDARD.encode(key.pkcs8()));
            }
        }
        self.write_pending(vault_name, &record).await?;
        Ok(record.operation())
    }

    /// The pending (or last) certificate operation.
    pub async fn operation(&self, vault: &VaultInfo, name: &str) -> Result<CertificateOperation> {
        self.read_pending(&vault.name, name)
            .await?
            .map(|r| r.operation())
            .ok_or_else(|| VaultError::NotFound {
                what: format!("pending certificate operation for {name:?}"),
            })
    }

    /// Requests cancellation of an in-progress operation: with issuer `Unknown` nothing is
    /// outstanding elsewhere, so it is cancelled at once and its pending key dropped.
    pub async fn cancel_operation(
        &self,
        vault: &VaultInfo,
        name: &str,
    ) -> Result<CertificateOperation> {
        let mut record =
            self.read_pending(&vault.name, name)
                .await?
                .ok_or_else(|| VaultError::NotFound {
                    what: format!("pending certificate operation for {name:?}"),
                })?;
        record.cancellation_requested = true;
        if record.status == "inProgress" {
            record.status = "cancelled".into();
            record.status_details = "The certificate operation was cancelled.".into();
            if let Some(k) = &mut record.key {
                k.zeroize();
            }
            record.key = None;
        }
        self.write_pending(&vault.name, &record).await?;
        Ok(record.operation())
    }

    /// Deletes the operation record (and a pending key); returns it as it was.
    pub async fn delete_operation(
        &self,
        vault: &VaultInfo,
        name: &str,
    ) -> Result<CertificateOperation> {
        let record =
            self.read_pending(&vault.name, name)
                .await?
                .ok_or_else(|| VaultError::NotFound {
                    what: format!("pending certificate operation for {name:?}"),
                })?;
        self.store
            .barrier()
            .delete(&pending_key(&vault.name, name)?)
            .await?;
        Ok(record.operation())
    }

    /// Completes an in-progress `Unknown`-issuer operation with the signed chain `x5c` (DER,
    /// leaf first); refused when the leaf's public key is not the pending key.
    pub async fn merge(
        &self,
        vault: &VaultInfo,
        name: &str,
        x5c: Vec<Vec<u8>>,
        enabled: Option<bool>,
        tags: Option<BTreeMap<String, String>>,
    ) -> Result<Certificate> {
        let vault_name = vault.name.as_str();
        let mut record = self
            .read_pending(vault_name, name)
            .await?
            .filter(|r| r.status == "inProgress")
            .ok_or_else(|| VaultError::NotFound {
                what: format!("pending certificate operation for {name:?}"),
            })?;
        let key_b64 = record
            .key
            .as_deref()
            .ok_or_else(|| VaultError::PendingOperation {
                what: format!("certificate {name:?}"),
                reason: "the pending operation has no pending key (not issuer Unknown)",
            })?;
        let der = Zeroizing::new(
            STANDARD
                .decode(key_b64)
                .map_err(|e| corrupt("pending key", e))?,
        );
        let key = CertKey::from_private_der(&der)?;
        if x5c.is_empty() {
            return Err(invalid("x5c is empty"));
        }
        let chain = x509::leaf_first(&key, x5c).map_err(|_| {
            invalid("the certificate's public key does not match the pending certificate request")
        })?;
        let policy = record.policy.clone();
        let cert = self
            .write_linked(
                vault_name,
                name,
                &policy,
                &key,
                &chain,
                (
                    enabled.unwrap_or(record.enabled),
                    tags.unwrap_or_else(|| record.tags.clone()),
                ),
            )
            .await?;
        record.status = "completed".into();
        record.status_details = String::new();
        record.target = Some(cert.version.clone());
        if let Some(k) = &mut record.key {
            k.zeroize();
        }
        record.key = None;
        self.write_pending(vault_name, &record).await?;
        Ok(cert)
    }

    /// Imports a certificate with its private key from PEM text or a (password-protected)
    /// PKCS#12 file given as base64.
    pub async fn import(
        &self,
        vault: &VaultInfo,
        name: &str,
        import: ImportCertificate,
    ) -> Result<Certificate> {
        let vault_name = vault.name.as_str();
        key_name(name)?;
        self.check_writable(vault_name, name).await?;
        let text = import.value.trim();
        let (bundle, detected) = if text.contains("-----BEGIN") {
            (x509::read_pem(text)?, policy::CONTENT_TYPE_PEM)
        } else {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let raw = Zeroizing::new(
                STANDARD
                    .decode(compact.as_bytes())
                    .map_err(|_| invalid("the value is neither PEM text nor base64"))?,
            );
            match std::str::from_utf8(&raw) {
                Ok(pem) if pem.contains("-----BEGIN") => {
                    (x509::read_pem(pem)?, policy::CONTENT_TYPE_PEM)
                }
                _ => {
                    let password = import.password.as_deref().map_or("", |p| p.as_str());
                    (x509::read_pfx(&raw, password)?, policy::CONTENT_TYPE_PKCS12)
                }
            }
        };
        let key = bundle
            .key
            .ok_or_else(|| invalid("the certificate has no private key"))?;
        if bundle.certs.is_empty() {
            return Err(invalid("no certificate found"));
        }
        let chain = x509::leaf_first(&key, bundle.certs)?;
        let leaf = chain
            .first()
            .ok_or_else(|| invalid("no certificate found"))?;
        let info = x509::parse_cert(leaf)?;
        let (kty, key_size, crv) = match key.kind() {
            KeyKind::Rsa(bits) => (policy::KeyType::Rsa, Some(bits), None),
            KeyKind::Ec(curve) => (
                policy::KeyType::Ec,
                Some(curve.bits()),
                Some(curve.jwk_name().to_owned()),
            ),
        };
        let derived = Policy {
            key_props: Some(policy::KeyProperties {
                exportable: Some(true),
                kty: Some(kty),
                key_size,
                reuse_key: Some(false),
                crv: crv.clone(),
            }),
            secret_props: Some(policy::SecretProperties {
                content_type: Some(detected.to_owned()),
            }),
            x509_props: Some(policy::X509Properties {
                subject: Some(info.subject.clone()),
                ekus: Some(info.ekus.clone()),
                sans: Some(info.sans.clone()),
                key_usage: Some(info.key_usage.clone()),
                validity_months: Some(info.validity_months()),
            }),
            issuer: Some(policy::IssuerParameters {
                name: Some("Unknown".into()),
                ..Default::default()
            }),
            ..Policy::default()
        };
        let mut merged = match &import.policy {
            Some(patch) => policy::merge_patch(&derived, patch)?,
            None => derived,
        };
        // The key properties and subject describe what was imported, whatever the request said.
        if let Some(k) = merged.key_props.as_mut() {
            k.kty = Some(kty);
            k.key_size = key_size;
            k.crv = crv;
        }
        if let Some(x) = merged.x509_props.as_mut() {
            x.subject = Some(info.subject.clone());
            x.validity_months = Some(info.validity_months().min(policy::MAX_VALIDITY_MONTHS));
        }
        let policy = merged.resolve(false, now())?;
        self.write_linked(
            vault_name,
            name,
            &policy,
            &key,
            &chain,
            (import.enabled.unwrap_or(true), import.tags),
        )
        .await
    }

    /// The current policy: the latest version's, or the pending operation's before any
    /// version exists.
    pub async fn policy(&self, vault: &VaultInfo, name: &str) -> Result<Policy> {
        match self.store.get_version(&vault.name, KIND, name, None).await {
            Ok(v) => policy_of(&v.attributes).ok_or_else(|| corrupt("certificate", "no policy")),
            Err(VaultError::NotFound { .. }) => self
                .read_pending(&vault.name, name)
                .await?
                .map(|r| r.policy.clone())
                .ok_or_else(|| VaultError::NotFound {
                    what: format!("certificate {name:?} in vault {:?}", vault.name),
                }),
            Err(e) => Err(e),
        }
    }

    /// Applies a policy patch (JSON merge) and returns the new policy; it applies to the
    /// next versions (renewals), the current certificate is unchanged.
    pub async fn update_policy(
        &self,
        vault: &VaultInfo,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<Policy> {
        let current = self.policy(vault, name).await?;
        let merged = policy::merge_patch(&current, patch)?.resolve(false, now())?;
        merged.issuer_kind()?;
        let value = serde_json::to_value(&merged).map_err(|e| corrupt("policy", e))?;
        match self
            .store
            .update_attributes(&vault.name, KIND, name, None, |a| {
                a.extra.insert("policy".into(), value.clone());
            })
            .await
        {
            Ok(_) => Ok(merged),
            Err(VaultError::NotFound { .. }) => {
                let mut record = self.read_pending(&vault.name, name).await?.ok_or_else(|| {
                    VaultError::NotFound {
                        what: format!("certificate {name:?}"),
                    }
                })?;
                record.policy = merged.clone();
                self.write_pending(&vault.name, &record).await?;
                Ok(merged)
            }
            Err(e) => Err(e),
        }
    }

    /// A certificate version (`None`: the latest) with the current policy.
    pub async fn get(&self, vault: &str, name: &str, version: Option<&str>) -> Result<Certificate> {
        let found = self.store.get_version(vault, KIND, name, version).await?;
        let display = self.display_name(vault, name).await?;
        let policy = match version {
            None => policy_of(&found.attributes),
            Some(_) => match self.store.get_version(vault, KIND, name, None).await {
                Ok(latest) => policy_of(&latest.attributes),
                Err(_) => policy_of(&found.attributes),
            },
        };
        Ok(to_certificate(display, found, policy))
    }

    /// Latest versions of live certificates, `limit` at a time, by name (policies omitted, as
    /// Azure's list items carry none).
    pub async fn list(
        &self,
        vault: &VaultInfo,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Certificate>> {
        let page = self
            .store
            .list_names(&vault.name, KIND, false, start_after, limit)
            .await?;
        let mut items = Vec::with_capacity(page.ids.len());
        for name in &page.ids {
            match self.get(&vault.name, name, None).await {
                Ok(mut c) => {
                    c.policy = None;
                    items.push(c);
                }
                Err(VaultError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Every version of a live certificate, `limit` at a time, by version id.
    pub async fn list_versions(
        &self,
        vault: &VaultInfo,
        name: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Certificate>> {
        let meta = self.store.meta(&vault.name, KIND, name).await?;
        if meta.deleted.is_some() || meta.purging {
            return Err(VaultError::NotFound {
                what: format!("certificate {:?}", meta.name),
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
                Ok(v) => items.push(to_certificate(meta.name.clone(), v, None)),
                Err(VaultError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Updates a version's attributes (`None`: the latest); `enabled` also applies to the
    /// linked key and secret version; a policy patch updates the policy.
    pub async fn update(
        &self,
        vault: &VaultInfo,
        name: &str,
        version: Option<&str>,
        update: CertificateUpdate,
    ) -> Result<Certificate> {
        let vault_name = vault.name.as_str();
        let updated = self
            .store
            .update_attributes(vault_name, KIND, name, version, |a| {
                if let Some(enabled) = update.enabled {
                    a.enabled = enabled;
                }
                if let Some(tags) = &update.tags {
                    a.tags = tags.clone();
                }
            })
            .await?;
        if let Some(enabled) = update.enabled {
            for kind in [ObjectKind::Key, ObjectKind::Secret] {
                match self
                    .store
                    .update_attributes(vault_name, kind, name, Some(&updated.version), |a| {
                        a.enabled = enabled;
                    })
                    .await
                {
                    Ok(_) | Err(VaultError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if let Some(patch) = &update.policy {
            self.update_policy(vault, name, patch).await?;
        }
        self.get(vault_name, name, Some(&updated.version)).await
    }

    /// Soft-deletes a certificate with its key, secret and pending operation.
    pub async fn delete(&self, vault: &VaultInfo, name: &str) -> Result<DeletedCertificate> {
        let vault_name = vault.name.as_str();
        let certificate = self.get(vault_name, name, None).await?;
        let t = now();
        let deletion = DeletionInfo {
            deleted_on: t,
            scheduled_purge: t.saturating_add(vault.retention_secs()),
        };
        self.store
            .mark_deleted(vault_name, KIND, name, deletion)
            .await?;
        for kind in [ObjectKind::Key, ObjectKind::Secret] {
            if is_managed(&self.store, vault_name, kind, name).await? {
                match self
                    .store
                    .mark_deleted(vault_name, kind, name, deletion)
                    .await
                {
                    Ok(_) | Err(VaultError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.store
            .barrier()
            .delete(&pending_key(vault_name, name)?)
            .await?;
        Ok(DeletedCertificate {
            certificate,
            deletion,
        })
    }

    /// A deleted certificate (latest version).
    pub async fn get_deleted(&self, vault: &VaultInfo, name: &str) -> Result<DeletedCertificate> {
        let (meta, latest) = self.store.get_deleted(&vault.name, KIND, name).await?;
        let deletion = meta.deleted.ok_or_else(|| VaultError::NotFound {
            what: format!("deleted certificate {name:?}"),
        })?;
        let policy = policy_of(&latest.attributes);
        Ok(DeletedCertificate {
            certificate: to_certificate(meta.name, latest, policy),
            deletion,
        })
    }

    /// Deleted certificates, `limit` at a time, by name.
    pub async fn list_deleted(
        &self,
        vault: &VaultInfo,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Page<DeletedCertificate>> {
        let page = self
            .store
            .list_names(&vault.name, KIND, true, start_after, limit)
            .await?;
        let mut items = Vec::with_capacity(page.ids.len());
        for name in &page.ids {
            match self.get_deleted(vault, name).await {
                Ok(mut d) => {
                    d.certificate.policy = None;
                    items.push(d);
                }
                Err(VaultError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Recovers a deleted certificate with its key and secret.
    pub async fn recover(&self, vault: &VaultInfo, name: &str) -> Result<Certificate> {
        let vault_name = vault.name.as_str();
        self.store.recover(vault_name, KIND, name).await?;
        for kind in [ObjectKind::Key, ObjectKind::Secret] {
            match self.store.get_deleted(vault_name, kind, name).await {
                Ok((_, latest)) if latest.attributes.managed => {
                    self.store.recover(vault_name, kind, name).await?;
                }
                Ok(_) | Err(VaultError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.get(vault_name, name, None).await
    }

    /// Permanently removes a deleted certificate with its key and secret; refused when the
    /// vault has purge protection.
    pub async fn purge(&self, vault: &VaultInfo, name: &str) -> Result<()> {
        let vault_name = vault.name.as_str();
        let deleted = self.get_deleted(vault, name).await?;
        if vault.purge_protection {
            return Err(VaultError::PurgeProtected {
                what: format!("certificate {:?}", deleted.certificate.name),
                vault: vault.name.clone(),
            });
        }
        self.store.purge(vault_name, KIND, name).await?;
        self.store
            .barrier()
            .delete(&lifetime::lifetime_key(vault_name, name)?)
            .await?;
        for kind in [ObjectKind::Key, ObjectKind::Secret] {
            match self.store.get_deleted(vault_name, kind, name).await {
                Ok((_, latest)) if latest.attributes.managed => {
                    self.store.purge(vault_name, kind, name).await?;
                }
                Ok(_) | Err(VaultError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A backup blob of a live certificate: every version of the certificate, its key and its
    /// secret, each a geography-bound blob of [`crate::backup`], framed as
    /// `"RKCB" | 0x01 | (length (u32 BE) | blob) x 3` (an empty blob for a missing part).
    pub async fn backup(&self, vault: &VaultInfo, name: &str) -> Result<Vec<u8>> {
        let meta = self.store.meta(&vault.name, KIND, name).await?;
        if meta.deleted.is_some() || meta.purging {
            return Err(VaultError::NotFound {
                what: format!("certificate {:?}", meta.name),
            });
        }
        let mut out = BACKUP_MAGIC.to_vec();
        for kind in [KIND, ObjectKind::Key, ObjectKind::Secret] {
            let part = match crate::backup::backup_object(&self.store, vault, kind, name).await {
                Ok(blob) => blob,
                Err(VaultError::NotFound { .. }) if kind != KIND => Vec::new(),
                Err(e) => return Err(e),
            };
            let len = u32::try_from(part.len()).map_err(|_| VaultError::InvalidBackup {
                reason: "part too large",
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&part);
        }
        Ok(out)
    }

    /// Restores a blob made by [`Certificates::backup`]: the certificate first (refused with
    /// [`VaultError::AlreadyExists`] when the name exists), then its key and secret.
    pub async fn restore(&self, vault: &VaultInfo, blob: &[u8]) -> Result<Certificate> {
        let bad = |reason| VaultError::InvalidBackup { reason };
        let mut rest = blob
            .strip_prefix(BACKUP_MAGIC.as_slice())
            .ok_or_else(|| bad("not a rampart certificate backup"))?;
        let mut parts = Vec::with_capacity(3);
        for _ in 0..3 {
            let (len, tail) = rest.split_at_checked(4).ok_or_else(|| bad("truncated"))?;
            let mut buf = [0u8; 4];
            buf.copy_from_slice(len);
            let len = usize::try_from(u32::from_be_bytes(buf)).map_err(|_| bad("length"))?;
            let (part, tail) = tail.split_at_checked(len).ok_or_else(|| bad("truncated"))?;
            parts.push(part);
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let [cert_part, key_part, secret_part] = parts.as_slice() else {
            return Err(bad("truncated"));
        };
        let (meta, _) = crate::backup::restore_object(&self.store, vault, KIND, cert_part).await?;
        for (kind, part) in [
            (ObjectKind::Key, key_part),
            (ObjectKind::Secret, secret_part),
        ] {
            if part.is_empty() {
                continue;
            }
            let (restored, _) =
                crate::backup::restore_object(&self.store, vault, kind, part).await?;
            if !restored.name.eq_ignore_ascii_case(&meta.name) {
                return Err(bad("the key or secret belongs to another certificate"));
            }
        }
        self.get(&vault.name, &meta.name, None).await
    }

    /// The vault's certificate contacts (empty when none were set).
    pub async fn contacts(&self, vault: &VaultInfo) -> Result<Vec<Contact>> {
        match self
            .store
            .barrier()
            .get(&contacts_key(&vault.name)?)
            .await?
        {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt("contacts", e)),
            None => Ok(Vec::new()),
        }
    }

    /// Replaces the vault's certificate contacts (each needs an e-mail address; at most 64).
    pub async fn set_contacts(
        &self,
        vault: &VaultInfo,
        contacts: Vec<Contact>,
    ) -> Result<Vec<Contact>> {
        if contacts.len() > 64 {
            return Err(invalid("at most 64 contacts"));
        }
        for c in &contacts {
            let ok = c
                .email
                .as_deref()
                .is_some_and(|e| e.len() <= 256 && e.contains('@'));
            if !ok {
                return Err(VaultError::InvalidPolicy {
                    reason: "each contact needs an e-mail address".into(),
                });
            }
        }
        let bytes = serde_json::to_vec(&contacts).map_err(|e| corrupt("contacts", e))?;
        let key = contacts_key(&vault.name)?;
        for _ in 0..MAX_ATTEMPTS {
            let current = self.store.barrier().get_versioned(&key).await?;
            let txn = BarrierTxn::new()
                .require(&key, current.as_ref().map(|c| &c.token))
                .put(&key, &bytes);
            if self.store.barrier().commit(txn).await? {
                return Ok(contacts);
            }
        }
        Err(VaultError::Contention {
            key,
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Deletes the vault's certificate contacts; returns them as they were.
    pub async fn delete_contacts(&self, vault: &VaultInfo) -> Result<Vec<Contact>> {
        let current = self.contacts(vault).await?;
        if current.is_empty() {
            return Err(VaultError::NotFound {
                what: format!("certificate contacts of vault {:?}", vault.name),
            });
        }
        self.store
            .barrier()
            .delete(&contacts_key(&vault.name)?)
            .await?;
        Ok(current)
    }
}
