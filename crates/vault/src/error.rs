//! Vault errors.
//!
//! Every failure is a [`VaultError`], a `#[non_exhaustive]` enum. Messages are lowercase, have no
//! trailing period and never include key material, plaintext values, PINs or shares. Storage
//! key paths are not secret and may appear.

use std::path::PathBuf;

use rampart_storage::StorageError;

/// The result type of every vault operation.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The vault is sealed: no data operation is possible until it is unsealed. The HTTP API
    /// maps this to 503.
    #[error("vault is sealed")]
    Sealed,

    /// The vault has not been initialized (no seal configuration in storage).
    #[error("vault is not initialized")]
    NotInitialized,

    /// `init` was called on a vault that is already initialized.
    #[error("vault is already initialized")]
    AlreadyInitialized,

    /// A stored record failed authentication: it was tampered with, swapped with another
    /// record, moved to another key path, or is not a barrier record at all.
    #[error("integrity check failed for {path:?}: {reason}")]
    Integrity {
        /// The storage key path of the record.
        path: String,
        /// What did not check.
        reason: &'static str,
    },

    /// A record names a root key generation the keyring does not hold.
    #[error(
        "record {path:?} was written under root key generation {generation}, which the keyring does not hold"
    )]
    UnknownKeyGeneration {
        /// The storage key path of the record.
        path: String,
        /// The generation named in the record header.
        generation: u32,
    },

    /// A record's format version is not one this build reads.
    #[error("record {path:?} has unsupported format version {version}")]
    UnsupportedFormat {
        /// The storage key path of the record.
        path: String,
        /// The version byte found.
        version: u8,
    },

    /// The unseal key (key file, reconstructed shares or HSM key) does not open the sealed
    /// keyring.
    #[error("unseal key does not match this vault")]
    WrongUnsealKey,

    /// The unseal method given does not match the one the vault was initialized with.
    #[error("vault is sealed with {configured}, not {given}")]
    SealMethodMismatch {
        /// The method in the stored seal configuration.
        configured: &'static str,
        /// The method that was tried.
        given: &'static str,
    },

    /// A Shamir share does not parse or its checksum does not match (a typo).
    #[error("invalid unseal share: {reason}")]
    InvalidShare {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A share with an index already submitted in this unseal attempt.
    #[error("unseal share {index} was already submitted")]
    DuplicateShare {
        /// The share index.
        index: u8,
    },

    /// Shares from different `init` runs (their key ids differ).
    #[error("unseal share belongs to another vault initialization")]
    ForeignShare,

    /// Bad Shamir parameters (`shares`/`threshold`).
    #[error(
        "invalid shamir parameters: {shares} shares with threshold {threshold} (need 1 <= threshold <= shares <= 255, and threshold >= 2 when shares >= 2)"
    )]
    InvalidShamirParameters {
        /// Number of shares.
        shares: u8,
        /// Threshold.
        threshold: u8,
    },

    /// The key file cannot be read or written.
    #[error("key file {path:?}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The PKCS#11 module or token failed.
    #[error("pkcs#11: {context}")]
    Pkcs11 {
        /// What was being done.
        context: String,
        /// The module's error.
        #[source]
        source: Option<cryptoki::error::Error>,
    },

    /// The HSM PIN could not be obtained.
    #[error("pkcs#11 pin: {reason}")]
    Pin {
        /// What went wrong (never the PIN).
        reason: String,
    },

    /// A logical key is not acceptable to the barrier.
    #[error("invalid barrier key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A vault, kind or object name is not acceptable.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// Which name (vault name, object name, version).
        what: &'static str,
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The object, version or deleted object does not exist.
    #[error("{what} not found")]
    NotFound {
        /// A description of what was looked for (kind, vault, name, version).
        what: String,
    },

    /// The object exists in the deleted (recoverable) state: a write to its name is refused
    /// (Azure answers 409 Conflict) until it is recovered or purged.
    #[error("{what} is deleted but recoverable")]
    DeletedButRecoverable {
        /// The object.
        what: String,
    },

    /// The operation needs the object to be deleted, and it is not (or the other way round).
    #[error("{what}: {reason}")]
    WrongState {
        /// The object.
        what: String,
        /// What state it is in.
        reason: &'static str,
    },

    /// Concurrent writers kept changing the same record; the operation gave up after retrying.
    #[error("too much contention on {key:?}, gave up after {attempts} attempts")]
    Contention {
        /// The contended logical key.
        key: String,
        /// How many attempts were made.
        attempts: usize,
    },

    /// A stored metadata record does not parse (after it authenticated, so a bug or a format
    /// this build does not know).
    #[error("corrupt {what} record: {reason}")]
    Corrupt {
        /// Which record.
        what: String,
        /// The parser's message.
        reason: String,
    },

    /// The operation is not allowed on a disabled object (Azure: 403 `Forbidden`, inner code
    /// `SecretDisabled`/`KeyDisabled`).
    #[error("operation {operation} is not allowed on disabled {what}")]
    Disabled {
        /// The object.
        what: String,
        /// The operation (`get`, `sign`, ...).
        operation: &'static str,
    },

    /// Purge refused: the vault has purge protection on (deleted objects are purged only by
    /// the scheduler once their retention has passed).
    #[error("purge of {what} is not allowed: purge protection is enabled for vault {vault:?}")]
    PurgeProtected {
        /// The object.
        what: String,
        /// The vault.
        vault: String,
    },

    /// A value or request is larger than allowed.
    #[error("{what} is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// An object or vault with that name already exists (restore, vault creation).
    #[error("{what} already exists")]
    AlreadyExists {
        /// The object or vault.
        what: String,
    },

    /// A backup blob does not parse or does not authenticate.
    #[error("invalid backup blob: {reason}")]
    InvalidBackup {
        /// What is wrong with it (never its content).
        reason: &'static str,
    },

    /// A backup blob made for another geography.
    #[error("backup blob belongs to geography {blob:?}, vault {vault:?} is in {target:?}")]
    WrongGeography {
        /// The blob's geography.
        blob: String,
        /// The target vault.
        vault: String,
        /// The target vault's geography.
        target: String,
    },

    /// An object has more versions than a backup may hold.
    #[error("{what} has {versions} versions, more than the {max} a backup may hold")]
    TooManyVersions {
        /// The object.
        what: String,
        /// Its version count.
        versions: usize,
        /// The limit.
        max: usize,
    },

    /// A vault setting (retention days, geography, ...) is not acceptable.
    #[error("invalid {what}: {reason}")]
    InvalidSetting {
        /// Which setting.
        what: &'static str,
        /// Why.
        reason: String,
    },

    /// A cryptographic primitive failed unexpectedly (random generator, key setup).
    #[error("crypto failure: {0}")]
    Crypto(&'static str),

    /// The storage backend failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),

    /// A blocking task (HSM or file I/O) panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),

    /// A certificate, private key, CSR, PEM or PKCS#12 input is not acceptable (Azure: 400
    /// `BadParameter`).
    #[error("invalid certificate: {reason}")]
    InvalidCertificate {
        /// What is wrong.
        reason: String,
    },

    /// A key request is not acceptable: unknown key type, size, curve or algorithm, a JWK that
    /// does not describe a usable private key, a digest or plaintext of the wrong length (Azure
    /// answers 400 `BadParameter`).
    #[error("invalid key request: {reason}")]
    InvalidKeyRequest {
        /// What is wrong (never key material).
        reason: String,
    },

    /// A certificate policy is not acceptable (Azure: 400 `BadParameter`).
    #[error("invalid certificate policy: {reason}")]
    InvalidPolicy {
        /// What is wrong.
        reason: String,
    },

    /// The key or secret is managed by a certificate: it changes only through the certificate
    /// (Azure: 403 `Forbidden`, `KeyManagedByKeyVault` / `SecretManagedByKeyVault`).
    #[error("{what} is managed by its certificate: operation {operation} is not allowed directly")]
    ManagedByCertificate {
        /// The key or secret.
        what: String,
        /// The refused operation (Azure's name: `set`, `update`, `delete`, `create`, ...).
        operation: &'static str,
    },

    /// A certificate operation conflicts with the pending one (Azure: 409 `Conflict`).
    #[error("{what}: {reason}")]
    PendingOperation {
        /// The certificate.
        what: String,
        /// What conflicts.
        reason: &'static str,
    },

    /// The key's `key_ops` do not include the operation (Azure answers 403).
    #[error("operation {operation} is not permitted on {what}")]
    KeyOperationNotAllowed {
        /// The key.
        what: String,
        /// The operation (`sign`, `wrapKey`, ...).
        operation: &'static str,
    },

    /// The key version cannot be used now: not yet valid or expired (Azure answers 403
    /// `Forbidden`; a disabled version gets [`VaultError::Disabled`]).
    #[error("operation {operation} is not allowed on {what}: {reason}")]
    KeyNotUsable {
        /// The key.
        what: String,
        /// The operation.
        operation: &'static str,
        /// Why (`disabled`, `not yet valid`, `expired`).
        reason: &'static str,
    },
}
