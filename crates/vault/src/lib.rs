//! Rampart vault, part 1: the encrypting **barrier** every vault object is stored through,
//! **seal/unseal** (key file, Shamir shares, PKCS#11 HSM), and the **versioned object store**
//! that secrets, keys and certificates sit on. No HTTP here (that is `vault-api`).
//!
//! # Key hierarchy
//!
//! ```text
//! unseal key ──(AES-256-GCM or HSM AES-GCM)──▶ keyring key       vault/sys/keyring-key
//!   key file (0600) │ Shamir shares │ PKCS#11      │
//!                                  (AES-256-GCM)──▶ keyring       vault/sys/keyring
//!                                                   root key gen 1, 2, … (one active)
//!                                                    │
//!                               (AES-256-GCM, AAD = path)──▶ data key (fresh per write)
//!                                                                  │
//!                                           (AES-256-GCM, AAD = path)──▶ value
//! ```
//!
//! * Every record (`vault/data/<key>`) has its own random 256-bit data key, wrapped by the
//!   active root key generation. The storage key path is associated data of both the wrapping
//!   and the value encryption, so a record swapped with another, or copied to another path,
//!   fails with [`VaultError::Integrity`]. The format ([`record`] module docs)
//!   starts with a version byte and the root key generation.
//! * Root key rotation ([`Barrier::rotate_root_key`]) adds a generation; [`Barrier::rewrap`]
//!   re-wraps old records' data keys without touching their ciphertext;
//!   [`Barrier::retire_unused_root_keys`] drops generations nothing uses.
//! * The keyring key is sealed by the unseal key: a key file ([`InitMethod::KeyFile`], the
//!   `rampart up` default), Shamir shares over GF(2^8) ([`shamir`]; [`InitMethod::Shamir`],
//!   shares submitted one by one with [`Barrier::submit_unseal_share`]), or an AES key on a
//!   PKCS#11 token that never leaves it ([`InitMethod::Pkcs11`], tested with SoftHSM2). The
//!   AES-GCM tag of the sealed keyring key is the check that the unseal key is right.
//!
//! # Threat model
//!
//! Protects against: anyone who can read or modify the storage (a stolen redb file, a
//! PostgreSQL dump or a hostile DBA) but not the unseal key: values are confidential, and any
//! modification, swap, move or truncation of a record is detected on read. Key names, object
//! names, version ids and sizes are **not** hidden. Rollback of a single record to an older
//! valid value at the same path is not detected (no global version counter); neither is
//! deletion. Not protected: an attacker inside the unsealed process (keys are in memory,
//! zeroized when dropped and never printed), or one holding the unseal key and the storage.
//!
//! # Versioned objects
//!
//! [`VersionedStore`] keeps Key Vault objects (kind, vault, name) with versions (32 hex chars),
//! a latest pointer, attributes and soft-delete state, using storage transactions so concurrent
//! writers (other processes too) cannot corrupt the latest pointer; see [`store`].
//!
//! # Vaults and secrets
//!
//! [`VaultRegistry`] ([`vaults`]) holds the deployment's vaults (retention, purge protection,
//! geography); [`Secrets`] ([`secrets`]) gives Azure Key Vault secret semantics (versions,
//! soft delete, recover, purge, backup/restore through [`backup`]); [`purge_expired`] is the
//! purge scheduler's sweep.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use rampart_storage::RedbBackend;
//! use rampart_vault::{Attributes, Barrier, InitMethod, ObjectKind, VaultError, VersionedStore};
//!
//! let dir = tempfile::tempdir()?;
//! let storage = Arc::new(RedbBackend::open(dir.path().join("kv.redb")).await?);
//! let barrier = Arc::new(Barrier::new(storage));
//! let out = barrier.init(InitMethod::Shamir { shares: 3, threshold: 2 }).await?;
//! barrier.put("app/config", b"plaintext in, ciphertext at rest").await?;
//!
//! barrier.seal();
//! assert!(matches!(barrier.get("app/config").await, Err(VaultError::Sealed)));
//! barrier.submit_unseal_share(&out.shares[2]).await?;
//! let progress = barrier.submit_unseal_share(&out.shares[0]).await?;
//! assert!(!progress.sealed);
//!
//! let store = VersionedStore::new(barrier.clone());
//! let v = store
//!     .create_version("stamp-1", ObjectKind::Secret, "db-password", b"hunter2", Attributes::default())
//!     .await?;
//! let latest = store.get_version("stamp-1", ObjectKind::Secret, "db-password", None).await?;
//! assert_eq!((latest.version, latest.value.as_slice()), (v.version, &b"hunter2"[..]));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod backup;
pub mod barrier;
pub mod certificates;
mod crypto;
pub mod error;
mod keyring;
pub mod keys;
pub mod pkcs11;
pub mod record;
pub mod seal;
pub mod secrets;
pub mod shamir;
pub mod store;
pub mod vaults;

pub use barrier::{Barrier, BarrierTxn, CasToken, KeyPage, RewrapReport, Versioned};
pub use certificates::{Certificates, LifetimeReport};
pub use crypto::Key256;
pub use error::{Result, VaultError};
pub use pkcs11::{PinSource, Pkcs11Config};
pub use seal::{InitMethod, InitOutput, SealConfig, SealStatus, UnsealProgress};
pub use secrets::{DeletedSecret, NewSecret, Secret, SecretProperties, SecretUpdate, Secrets};
pub use store::LinkedVersion;
pub use store::{
    Attributes, DeletionInfo, IdPage, ObjectKind, ObjectMeta, ObjectVersion, VersionedStore,
};
pub use vaults::{VaultInfo, VaultOptions, VaultRegistry, purge_expired};
