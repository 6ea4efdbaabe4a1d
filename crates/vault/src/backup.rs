//! Backup blobs for any object kind (secrets now, keys and certificates later): every version
//! of an object, encrypted and authenticated with AES-256-GCM under a backup key bound to the
//! deployment's **geography**, so a blob restores only into a vault of the same geography.
//!
//! # Keys
//!
//! A 256-bit backup master key is created on first use and kept in the barrier
//! (`sys/backup-master`); the key for geography `g` is
//! `HKDF-SHA256(salt = "rampart-vault-backup-v1", ikm = master, info = g)`.
//!
//! # Blob format (version 1)
//!
//! ```text
//! "RKVB" | 0x01 | geography length (u8) | geography | nonce (12) | ciphertext | tag (16)
//! ```
//!
//! The header (everything before the nonce) is the AES-GCM associated data. The plaintext is
//! `kind (u8) | name length (u8) | name | latest version (32) | count (u32 BE)` followed by
//! `count` times `version (32) | attributes length (u32 BE) | attributes JSON | value length
//! (u32 BE) | value`. It is built and parsed in zeroized buffers.

use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

use crate::barrier::BarrierTxn;
use crate::crypto::Key256;
use crate::error::{Result, VaultError};
use crate::store::{Attributes, ObjectKind, ObjectMeta, ObjectVersion, VersionedStore};
use crate::vaults::VaultInfo;

/// Most versions an object may have to be backed up (Azure's limit).
pub const MAX_BACKUP_VERSIONS: usize = 500;
/// Largest blob accepted by restore.
pub const MAX_BLOB_BYTES: usize = 32 * 1024 * 1024;

const MAGIC: &[u8; 4] = b"RKVB";
const FORMAT: u8 = 1;
const MASTER_KEY: &str = "sys/backup-master";
const SALT: &[u8] = b"rampart-vault-backup-v1";

fn kind_byte(kind: ObjectKind) -> u8 {
    match kind {
        ObjectKind::Secret => 1,
        ObjectKind::Key => 2,
        ObjectKind::Certificate => 3,
    }
}

fn bad(reason: &'static str) -> VaultError {
    VaultError::InvalidBackup { reason }
}

async fn master_key(store: &VersionedStore) -> Result<Key256> {
    let barrier = store.barrier();
    for _ in 0..4 {
        if let Some(bytes) = barrier.get(MASTER_KEY).await? {
            return Key256::from_slice(&bytes).ok_or_else(|| VaultError::Corrupt {
                what: "backup master key".into(),
                reason: "not 32 bytes".into(),
            });
        }
        let key = Key256::generate()?;
        let txn = BarrierTxn::new()
            .require_absent(MASTER_KEY)
            .put(MASTER_KEY, key.expose());
        if barrier.commit(txn).await? {
            return Ok(key);
        }
    }
    Err(VaultError::Contention {
        key: MASTER_KEY.into(),
        attempts: 4,
    })
}

async fn geography_key(store: &VersionedStore, geography: &str) -> Result<Key256> {
    let master = master_key(store).await?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(master.expose());
    let info = [geography.as_bytes()];
    let okm = prk
        .expand(&info, hkdf::HKDF_SHA256)
        .map_err(|_| VaultError::Crypto("hkdf expand"))?;
    let mut raw = Zeroizing::new([0u8; 32]);
    okm.fill(raw.as_mut_slice())
        .map_err(|_| VaultError::Crypto("hkdf fill"))?;
    Key256::from_slice(raw.as_slice()).ok_or(VaultError::Crypto("hkdf length"))
}

fn header(geography: &str) -> Result<Vec<u8>> {
    let len = u8::try_from(geography.len()).map_err(|_| bad("geography too long"))?;
    let mut out = Vec::with_capacity(6 + geography.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.push(len);
    out.extend_from_slice(geography.as_bytes());
    Ok(out)
}

fn push_len(out: &mut Vec<u8>, len: usize) -> Result<()> {
    let len = u32::try_from(len).map_err(|_| bad("field too long"))?;
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

/// A backup blob of object `name` of `kind` in `vault`: all its versions.
pub async fn backup_object(
    store: &VersionedStore,
    vault: &VaultInfo,
    kind: ObjectKind,
    name: &str,
) -> Result<Vec<u8>> {
    let (meta, versions) = store
        .export_object(&vault.name, kind, name, MAX_BACKUP_VERSIONS)
        .await?;
    let name_len = u8::try_from(meta.name.len()).map_err(|_| bad("name too long"))?;
    let mut plain = Zeroizing::new(Vec::new());
    plain.push(kind_byte(kind));
    plain.push(name_len);
    plain.extend_from_slice(meta.name.as_bytes());
    plain.extend_from_slice(meta.latest.as_bytes());
    push_len(&mut plain, versions.len())?;
    for version in &versions {
        plain.extend_from_slice(version.version.as_bytes());
        let attrs = serde_json::to_vec(&version.attributes).map_err(|e| VaultError::Corrupt {
            what: "attributes".into(),
            reason: e.to_string(),
        })?;
        push_len(&mut plain, attrs.len())?;
        plain.extend_from_slice(&attrs);
        push_len(&mut plain, version.value.len())?;
        plain.extend_from_slice(&version.value);
    }
    let key = geography_key(store, &vault.geography).await?;
    let mut blob = header(&vault.geography)?;
    let sealed = key.seal(&plain, &blob)?;
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n).ok_or_else(|| bad("truncated"))?;
        self.0 = rest;
        Ok(head)
    }
    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn len(&mut self) -> Result<usize> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        usize::try_from(u32::from_be_bytes(buf)).map_err(|_| bad("length"))
    }
    fn text(&mut self, n: usize) -> Result<&'a str> {
        std::str::from_utf8(self.take(n)?).map_err(|_| bad("not utf-8"))
    }
}

/// Restores a blob made by [`backup_object`] into `vault` as an object of `kind`, keeping its
/// versions and their ids. Refused with [`VaultError::WrongGeography`] when the blob was made
/// in another geography, [`VaultError::InvalidBackup`] when it does not parse or authenticate
/// or holds another kind, and [`VaultError::AlreadyExists`] when the name exists in the vault.
/// Returns the restored object's metadata and its latest version.
pub async fn restore_object(
    store: &VersionedStore,
    vault: &VaultInfo,
    kind: ObjectKind,
    blob: &[u8],
) -> Result<(ObjectMeta, ObjectVersion)> {
    if blob.len() > MAX_BLOB_BYTES {
        return Err(VaultError::TooLarge {
            what: "backup blob",
            size: blob.len(),
            max: MAX_BLOB_BYTES,
        });
    }
    let mut r = Reader(blob);
    if r.take(4)? != MAGIC {
        return Err(bad("not a rampart backup"));
    }
    if r.byte()? != FORMAT {
        return Err(bad("unsupported format version"));
    }
    let geo_len = usize::from(r.byte()?);
    let geography = r.text(geo_len)?;
    if geography != vault.geography {
        return Err(VaultError::WrongGeography {
            blob: geography.to_owned(),
            vault: vault.name.clone(),
            target: vault.geography.clone(),
        });
    }
    let aad = blob.get(..6 + geo_len).ok_or_else(|| bad("truncated"))?;
    let key = geography_key(store, &vault.geography).await?;
    let plain = key
        .open(r.0, aad)?
        .ok_or_else(|| bad("does not authenticate (damaged, or made by another deployment)"))?;
    let mut r = Reader(&plain);
    if r.byte()? != kind_byte(kind) {
        return Err(bad("holds another kind of object"));
    }
    let name_len = usize::from(r.byte()?);
    let name = r.text(name_len)?.to_owned();
    let latest = r.text(32)?.to_owned();
    let count = r.len()?;
    if count == 0 || count > MAX_BACKUP_VERSIONS {
        return Err(bad("version count out of range"));
    }
    let mut versions = Vec::with_capacity(count);
    for _ in 0..count {
        let version = r.text(32)?.to_owned();
        let attrs_len = r.len()?;
        let attributes: Attributes =
            serde_json::from_slice(r.take(attrs_len)?).map_err(|_| bad("attributes"))?;
        let value_len = r.len()?;
        let value = Zeroizing::new(r.take(value_len)?.to_vec());
        versions.push(ObjectVersion {
            version,
            value,
            attributes,
        });
    }
    if !r.0.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let meta = store
        .import_object(&vault.name, kind, &name, &versions, &latest)
        .await?;
    let latest_version = versions
        .into_iter()
        .find(|v| v.version.eq_ignore_ascii_case(&meta.latest))
        .ok_or_else(|| bad("the latest version is not among the versions"))?;
    Ok((meta, latest_version))
}
