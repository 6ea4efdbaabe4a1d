//! The barrier: plaintext in, authenticated ciphertext out, over any
//! [`rampart_storage::Backend`]; and the seal state that gates it.
//!
//! Storage layout (all keys are plain, only values are secret):
//!
//! | key | value |
//! |---|---|
//! | `vault/sys/seal-config` | [`SealConfig`] as JSON (plaintext, not secret) |
//! | `vault/sys/keyring-key` | the keyring key sealed under the unseal key: `0x01 \|\| AES-GCM(unseal key)` for key file and Shamir, `0x02 \|\| HSM AES-GCM` for PKCS#11; AAD `"vault/sys/keyring-key\0" \|\| seal-config bytes` |
//! | `vault/sys/keyring` | the keyring (root keys by generation) under the keyring key, AAD `"vault/sys/keyring"` |
//! | `vault/data/<key>` | a barrier record ([`crate::record`]) for logical key `<key>` |
//!
//! Sealed, the barrier holds no key and every data operation fails with
//! [`VaultError::Sealed`]. Unsealing decrypts the keyring key with the unseal key (the GCM tag
//! is the verification: a wrong key file, a wrong or short set of shares, the wrong HSM key
//! all fail it) and then the keyring.
//!
//! Root key rotation adds a generation to the keyring (compare-and-swap on
//! `vault/sys/keyring`, so two processes cannot lose each other's rotation); new writes use it
//! at once, old records stay readable, and [`Barrier::rewrap`] moves old records' data keys to
//! it without touching their ciphertext. A process that meets a generation it does not know
//! (another process rotated) reloads the keyring once.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};

use rampart_storage::{Backend, CasOutcome, MAX_KEY_LEN, Transaction, TxnOutcome};
use zeroize::Zeroizing;

use crate::crypto::{Key256, fill_random};
use crate::error::{Result, VaultError};
use crate::keyring::Keyring;
use crate::pkcs11::{Pkcs11Config, hsm_open, hsm_seal};
use crate::record;
use crate::seal::{
    InitMethod, InitOutput, SealConfig, SealStatus, UnsealProgress, read_key_file,
    read_or_create_key_file,
};
use crate::shamir::{self, EncodedShare};

/// Storage prefix of barrier records.
pub const DATA_PREFIX: &str = "vault/data/";
/// Storage key of the seal configuration.
pub const SEAL_CONFIG_PATH: &str = "vault/sys/seal-config";
/// Storage key of the sealed keyring key.
pub const KEYRING_KEY_PATH: &str = "vault/sys/keyring-key";
/// Storage key of the encrypted keyring.
pub const KEYRING_PATH: &str = "vault/sys/keyring";

const SEALED_BY_KEY: u8 = 1;
const SEALED_BY_HSM: u8 = 2;
/// Compare-and-swap retries before giving up with [`VaultError::Contention`].
pub(crate) const MAX_ATTEMPTS: usize = 64;

struct Unsealed {
    keyring_key: Key256,
    keyring: Keyring,
}

/// An opaque token naming the exact stored version of a record, for compare-and-swap through
/// [`BarrierTxn::require`]. It holds the stored (encrypted) record; `Debug` shows its length.
#[derive(Clone, PartialEq, Eq)]
pub struct CasToken(Vec<u8>);

impl fmt::Debug for CasToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CasToken(<{} bytes>)", self.0.len())
    }
}

/// A decrypted value and the token of the record it came from.
pub struct Versioned {
    /// The plaintext.
    pub value: Zeroizing<Vec<u8>>,
    /// The record's token.
    pub token: CasToken,
}

impl fmt::Debug for Versioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Versioned")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("token", &self.token)
            .finish()
    }
}

/// One page of [`Barrier::list`]: logical keys (not secret), no values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// The keys, in byte order.
    pub keys: Vec<String>,
    /// Pass as `start_after` to get the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Preconditions and writes applied all-or-nothing by [`Barrier::commit`].
#[derive(Default)]
pub struct BarrierTxn {
    preconditions: Vec<(String, Option<CasToken>)>,
    ops: Vec<(String, Option<Zeroizing<Vec<u8>>>)>,
}

impl fmt::Debug for BarrierTxn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierTxn")
            .field(
                "preconditions",
                &self
                    .preconditions
                    .iter()
                    .map(|(k, _)| k)
                    .collect::<Vec<_>>(),
            )
            .field(
                "ops",
                &self
                    .ops
                    .iter()
                    .map(|(k, v)| (k, if v.is_some() { "put" } else { "delete" }))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl BarrierTxn {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `key` to still be the record `token` names (`None`: to be absent).
    pub fn require(mut self, key: &str, token: Option<&CasToken>) -> Self {
        self.preconditions.push((key.to_owned(), token.cloned()));
        self
    }

    /// Requires `key` to be absent.
    pub fn require_absent(self, key: &str) -> Self {
        self.require(key, None)
    }

    /// Stores `value` under `key`.
    pub fn put(mut self, key: &str, value: &[u8]) -> Self {
        self.ops
            .push((key.to_owned(), Some(Zeroizing::new(value.to_vec()))));
        self
    }

    /// Removes `key`.
    pub fn delete(mut self, key: &str) -> Self {
        self.ops.push((key.to_owned(), None));
        self
    }
}

/// What [`Barrier::rewrap`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Records whose data key was re-wrapped under the active generation.
    pub rewrapped: usize,
    /// Records already under the active generation.
    pub current: usize,
}

/// The encrypting barrier over a storage backend, with its seal state.
pub struct Barrier {
    backend: Arc<dyn Backend>,
    state: RwLock<Option<Arc<Unsealed>>>,
    shares: Mutex<Vec<EncodedShare>>,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("backend", &self.backend)
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

fn storage_key(key: &str) -> Result<Vec<u8>> {
    if key.is_empty() {
        return Err(VaultError::InvalidKey {
            key: key.to_owned(),
            reason: "empty",
        });
    }
    if DATA_PREFIX.len() + key.len() > MAX_KEY_LEN {
        return Err(VaultError::InvalidKey {
            key: key.chars().take(64).collect(),
            reason: "too long",
        });
    }
    let mut path = Vec::with_capacity(DATA_PREFIX.len() + key.len());
    path.extend_from_slice(DATA_PREFIX.as_bytes());
    path.extend_from_slice(key.as_bytes());
    Ok(path)
}

fn logical_key(path: &[u8]) -> Result<String> {
    let rest = path
        .strip_prefix(DATA_PREFIX.as_bytes())
        .ok_or_else(|| VaultError::Corrupt {
            what: "barrier key".into(),
            reason: "outside the data prefix".into(),
        })?;
    String::from_utf8(rest.to_vec()).map_err(|_| VaultError::Corrupt {
        what: "barrier key".into(),
        reason: "not utf-8".into(),
    })
}

fn keyring_key_aad(config_bytes: &[u8]) -> Vec<u8> {
    let mut aad = b"vault/sys/keyring-key\0".to_vec();
    aad.extend_from_slice(config_bytes);
    aad
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> Result<R> + Send + 'static) -> Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| VaultError::Task(e.to_string()))?
}

impl Barrier {
    /// A sealed barrier over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            state: RwLock::new(None),
            shares: Mutex::new(Vec::new()),
        }
    }

    /// The storage backend underneath.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Whether the barrier is sealed.
    pub fn is_sealed(&self) -> bool {
        self.state.read().map(|s| s.is_none()).unwrap_or(true)
    }

    fn unsealed(&self) -> Result<Arc<Unsealed>> {
        self.state
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or(VaultError::Sealed)
    }

    fn set_state(&self, state: Option<Arc<Unsealed>>) {
        match self.state.write() {
            Ok(mut guard) => *guard = state,
            Err(poisoned) => *poisoned.into_inner() = state,
        }
    }

    fn shares(&self) -> std::sync::MutexGuard<'_, Vec<EncodedShare>> {
        self.shares.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seals: forgets every key (zeroized once in-flight operations finish) and any unseal
    /// progress.
    pub fn seal(&self) {
        self.set_state(None);
        self.shares().clear();
    }

    async fn seal_config(&self) -> Result<Option<(Vec<u8>, SealConfig)>> {
        let Some(bytes) = self.backend.get(SEAL_CONFIG_PATH.as_bytes()).await? else {
            return Ok(None);
        };
        let config = serde_json::from_slice(&bytes).map_err(|e| VaultError::Corrupt {
            what: "seal config".into(),
            reason: e.to_string(),
        })?;
        Ok(Some((bytes, config)))
    }

    /// The seal status.
    pub async fn status(&self) -> Result<SealStatus> {
        let config = self.seal_config().await?.map(|(_, c)| c);
        let (shares, threshold) = match &config {
            Some(SealConfig::Shamir {
                shares, threshold, ..
            }) => (Some(*shares), Some(*threshold)),
            _ => (None, None),
        };
        let state = self.state.read().ok().and_then(|s| s.clone());
        Ok(SealStatus {
            initialized: config.is_some(),
            sealed: state.is_none(),
            method: config.as_ref().map(SealConfig::method),
            shares,
            threshold,
            progress: u8::try_from(self.shares().len()).unwrap_or(u8::MAX),
            root_key_generation: state.map(|s| s.keyring.active_generation()),
        })
    }

    /// Initializes a fresh vault: a new keyring key and keyring, sealed by `method`. Leaves the
    /// barrier unsealed. Fails with [`VaultError::AlreadyInitialized`] if the storage already
    /// holds a vault (also when another process initializes it concurrently).
    pub async fn init(&self, method: InitMethod) -> Result<InitOutput> {
        if self.seal_config().await?.is_some() {
            return Err(VaultError::AlreadyInitialized);
        }
        let keyring_key = Key256::generate()?;
        let keyring = Keyring::generate()?;
        let mut output = InitOutput::default();
        let (config, unseal_key, hsm) = match method {
            InitMethod::KeyFile(path) => {
                let key = blocking(move || read_or_create_key_file(&path)).await?;
                (SealConfig::KeyFile, Some(key), None)
            }
            InitMethod::Shamir { shares, threshold } => {
                shamir::check_parameters(shares, threshold)?;
                let key = Key256::generate()?;
                let mut key_id = [0u8; 4];
                fill_random(&mut key_id)?;
                for share in shamir::split(key.expose(), shares, threshold)? {
                    let encoded = EncodedShare {
                        key_id,
                        threshold,
                        share,
                    };
                    output.shares.push(encoded.encode());
                }
                let config = SealConfig::Shamir {
                    shares,
                    threshold,
                    key_id: hex(&key_id),
                };
                (config, Some(key), None)
            }
            InitMethod::Pkcs11(hsm) => {
                let config = SealConfig::Pkcs11 {
                    token_label: hsm.token_label.clone(),
                    key_label: hsm.key_label.clone(),
                };
                (config, None, Some(hsm))
            }
        };
        let config_bytes = serde_json::to_vec(&config).map_err(|e| VaultError::Corrupt {
            what: "seal config".into(),
            reason: e.to_string(),
        })?;
        let aad = keyring_key_aad(&config_bytes);
        let mut sealed_kk = Vec::new();
        match (unseal_key, hsm) {
            (Some(key), _) => {
                sealed_kk.push(SEALED_BY_KEY);
                sealed_kk.extend(key.seal(keyring_key.expose(), &aad)?);
            }
            (None, Some(hsm)) => {
                let plain = Zeroizing::new(keyring_key.expose().to_vec());
                let sealed = blocking(move || hsm_seal(&hsm, &plain, &aad, true)).await?;
                sealed_kk.push(SEALED_BY_HSM);
                sealed_kk.extend(sealed);
            }
            (None, None) => return Err(VaultError::Crypto("no unseal key")),
        }
        let sealed_ring = keyring_key.seal(&keyring.encode(), KEYRING_PATH.as_bytes())?;
        let txn = Transaction::new()
            .require_absent(SEAL_CONFIG_PATH)
            .require_absent(KEYRING_KEY_PATH)
            .require_absent(KEYRING_PATH)
            .put(SEAL_CONFIG_PATH, config_bytes)
            .put(KEYRING_KEY_PATH, sealed_kk)
            .put(KEYRING_PATH, sealed_ring);
        match self.backend.commit(txn).await? {
            TxnOutcome::Committed => {}
            TxnOutcome::Conflict { .. } => return Err(VaultError::AlreadyInitialized),
        }
        self.shares().clear();
        self.set_state(Some(Arc::new(Unsealed {
            keyring_key,
            keyring,
        })));
        tracing::info!(method = config.method(), "vault initialized");
        Ok(output)
    }

    async fn sys_records(&self, given: &'static str) -> Result<(Vec<u8>, SealConfig, Vec<u8>)> {
        let (bytes, config) = self
            .seal_config()
            .await?
            .ok_or(VaultError::NotInitialized)?;
        if config.method() != given {
            return Err(VaultError::SealMethodMismatch {
                configured: config.method(),
                given,
            });
        }
        let sealed =
            self.backend
                .get(KEYRING_KEY_PATH.as_bytes())
                .await?
                .ok_or(VaultError::Integrity {
                    path: KEYRING_KEY_PATH.into(),
                    reason: "missing",
                })?;
        Ok((bytes, config, sealed))
    }

    async fn load_keyring(&self, keyring_key: &Key256) -> Result<(Keyring, Vec<u8>)> {
        let raw =
            self.backend
                .get(KEYRING_PATH.as_bytes())
                .await?
                .ok_or(VaultError::Integrity {
                    path: KEYRING_PATH.into(),
                    reason: "missing",
                })?;
        let plain =
            keyring_key
                .open(&raw, KEYRING_PATH.as_bytes())?
                .ok_or(VaultError::Integrity {
                    path: KEYRING_PATH.into(),
                    reason: "keyring does not authenticate",
                })?;
        Ok((Keyring::decode(&plain)?, raw))
    }

    async fn finish_unseal(&self, keyring_key: Key256) -> Result<()> {
        let (keyring, _) = self.load_keyring(&keyring_key).await?;
        self.shares().clear();
        self.set_state(Some(Arc::new(Unsealed {
            keyring_key,
            keyring,
        })));
        tracing::info!("vault unsealed");
        Ok(())
    }

    fn open_keyring_key(unseal_key: &Key256, config_bytes: &[u8], sealed: &[u8]) -> Result<Key256> {
        let body = match sealed.split_first() {
            Some((&SEALED_BY_KEY, body)) => body,
            _ => return Err(VaultError::WrongUnsealKey),
        };
        let plain = unseal_key
            .open(body, &keyring_key_aad(config_bytes))?
            .ok_or(VaultError::WrongUnsealKey)?;
        Key256::from_slice(&plain).ok_or(VaultError::WrongUnsealKey)
    }

    /// Unseals with the key file at `path`.
    pub async fn unseal_with_key_file(&self, path: impl Into<std::path::PathBuf>) -> Result<()> {
        if !self.is_sealed() {
            return Ok(());
        }
        let (config_bytes, _, sealed) = self.sys_records("key-file").await?;
        let path = path.into();
        let key = blocking(move || read_key_file(&path)).await?;
        let keyring_key = Self::open_keyring_key(&key, &config_bytes, &sealed)?;
        self.finish_unseal(keyring_key).await
    }

    /// Unseals with the HSM key `config` names.
    pub async fn unseal_with_pkcs11(&self, config: &Pkcs11Config) -> Result<()> {
        if !self.is_sealed() {
            return Ok(());
        }
        let (config_bytes, _, sealed) = self.sys_records("pkcs11").await?;
        let body = match sealed.split_first() {
            Some((&SEALED_BY_HSM, body)) => body.to_vec(),
            _ => return Err(VaultError::WrongUnsealKey),
        };
        let aad = keyring_key_aad(&config_bytes);
        let hsm = config.clone();
        let plain = blocking(move || hsm_open(&hsm, &body, &aad))
            .await?
            .ok_or(VaultError::WrongUnsealKey)?;
        let keyring_key = Key256::from_slice(&plain).ok_or(VaultError::WrongUnsealKey)?;
        self.finish_unseal(keyring_key).await
    }

    /// Submits one Shamir share. Shares accumulate across calls until the threshold is
    /// reached, then the unseal key is reconstructed and checked. A share that does not parse,
    /// belongs to another init, or repeats an index is refused without touching the progress;
    /// a full set that does not open the vault ([`VaultError::WrongUnsealKey`]) resets it.
    pub async fn submit_unseal_share(&self, share: &str) -> Result<UnsealProgress> {
        let (config_bytes, config, sealed) = self.sys_records("shamir").await?;
        let SealConfig::Shamir {
            threshold, key_id, ..
        } = config
        else {
            return Err(VaultError::NotInitialized);
        };
        if !self.is_sealed() {
            return Ok(UnsealProgress {
                sealed: false,
                progress: 0,
                threshold,
            });
        }
        let share = EncodedShare::decode(share)?;
        if hex(&share.key_id) != key_id {
            return Err(VaultError::ForeignShare);
        }
        let collected = {
            let mut shares = self.shares();
            if shares.iter().any(|s| s.share.index == share.share.index) {
                return Err(VaultError::DuplicateShare {
                    index: share.share.index,
                });
            }
            shares.push(share);
            if shares.len() < usize::from(threshold) {
                return Ok(UnsealProgress {
                    sealed: true,
                    progress: u8::try_from(shares.len()).unwrap_or(u8::MAX),
                    threshold,
                });
            }
            std::mem::take(&mut *shares)
        };
        let parts: Vec<_> = collected.into_iter().map(|s| s.share).collect();
        let secret = shamir::combine(&parts)?;
        let unseal_key = Key256::from_slice(&secret).ok_or(VaultError::WrongUnsealKey)?;
        let keyring_key = Self::open_keyring_key(&unseal_key, &config_bytes, &sealed)?;
        self.finish_unseal(keyring_key).await?;
        Ok(UnsealProgress {
            sealed: false,
            progress: 0,
            threshold,
        })
    }

    /// Forgets the shares submitted so far.
    pub fn reset_unseal_progress(&self) {
        self.shares().clear();
    }

    async fn decrypt(
        &self,
        state: &Arc<Unsealed>,
        path: &[u8],
        raw: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        match record::decrypt(&state.keyring, path, raw) {
            Err(VaultError::UnknownKeyGeneration { generation, .. }) => {
                // Another process may have rotated: reload the keyring once.
                let state = self.reload_keyring(state).await?;
                if state.keyring.get(generation).is_none() {
                    return Err(VaultError::UnknownKeyGeneration {
                        path: String::from_utf8_lossy(path).into_owned(),
                        generation,
                    });
                }
                record::decrypt(&state.keyring, path, raw)
            }
            other => other,
        }
    }

    async fn reload_keyring(&self, state: &Arc<Unsealed>) -> Result<Arc<Unsealed>> {
        let (keyring, _) = self.load_keyring(&state.keyring_key).await?;
        let fresh = Arc::new(Unsealed {
            keyring_key: state.keyring_key.clone(),
            keyring,
        });
        if !self.is_sealed() {
            self.set_state(Some(fresh.clone()));
        }
        Ok(fresh)
    }

    /// Re-reads the keyring from storage. Processes sharing a store learn of another's root
    /// key rotation when they first read a record under the new generation; until then they
    /// keep wrapping new data keys under the generation they know. Call this periodically in
    /// multi-process deployments, and in every process before
    /// [`retire_unused_root_keys`](Self::retire_unused_root_keys).
    pub async fn refresh_keyring(&self) -> Result<u32> {
        let state = self.reload_keyring(&self.unsealed()?).await?;
        Ok(state.keyring.active_generation())
    }

    /// The value under `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        Ok(self.get_versioned(key).await?.map(|v| v.value))
    }

    /// The value under `key` and a token for compare-and-swap.
    pub async fn get_versioned(&self, key: &str) -> Result<Option<Versioned>> {
        let state = self.unsealed()?;
        let path = storage_key(key)?;
        let Some(raw) = self.backend.get(&path).await? else {
            return Ok(None);
        };
        let value = self.decrypt(&state, &path, &raw).await?;
        Ok(Some(Versioned {
            value,
            token: CasToken(raw),
        }))
    }

    /// Stores `value` under `key`.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        let state = self.unsealed()?;
        let path = storage_key(key)?;
        let record = record::encrypt(&state.keyring, &path, value)?;
        self.backend.put(&path, &record).await?;
        Ok(())
    }

    /// Removes `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.unsealed()?;
        let path = storage_key(key)?;
        Ok(self.backend.delete(&path).await?)
    }

    /// Keys starting with `prefix` (an empty prefix lists everything), after `start_after`,
    /// at most `limit` (clamped to the backend's page limit).
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<KeyPage> {
        self.unsealed()?;
        let mut storage_prefix = DATA_PREFIX.as_bytes().to_vec();
        storage_prefix.extend_from_slice(prefix.as_bytes());
        let after = start_after.map(storage_key).transpose()?;
        let page = self
            .backend
            .list(&storage_prefix, after.as_deref(), limit)
            .await?;
        let keys = page
            .entries
            .iter()
            .map(|e| logical_key(&e.key))
            .collect::<Result<Vec<_>>>()?;
        let next = page.next.as_deref().map(logical_key).transpose()?;
        Ok(KeyPage { keys, next })
    }

    /// Applies `txn` if every precondition holds; returns whether it was applied.
    pub async fn commit(&self, txn: BarrierTxn) -> Result<bool> {
        let state = self.unsealed()?;
        let mut out = Transaction::new();
        for (key, token) in &txn.preconditions {
            out = out.require(storage_key(key)?, token.as_ref().map(|t| t.0.as_slice()));
        }
        for (key, value) in &txn.ops {
            let path = storage_key(key)?;
            out = match value {
                Some(value) => {
                    let record = record::encrypt(&state.keyring, &path, value)?;
                    out.put(path, record)
                }
                None => out.delete(path),
            };
        }
        Ok(self.backend.commit(out).await?.is_committed())
    }

    /// Adds a fresh root key generation to the keyring and makes it the one new writes use.
    /// Returns the new generation.
    pub async fn rotate_root_key(&self) -> Result<u32> {
        let state = self.unsealed()?;
        for _ in 0..MAX_ATTEMPTS {
            let (current, raw) = self.load_keyring(&state.keyring_key).await?;
            let rotated = current.rotated()?;
            let sealed = state
                .keyring_key
                .seal(&rotated.encode(), KEYRING_PATH.as_bytes())?;
            let outcome = self
                .backend
                .compare_and_swap(KEYRING_PATH.as_bytes(), Some(&raw), Some(&sealed))
                .await?;
            if let CasOutcome::Swapped = outcome {
                let generation = rotated.active_generation();
                self.set_state(Some(Arc::new(Unsealed {
                    keyring_key: state.keyring_key.clone(),
                    keyring: rotated,
                })));
                tracing::info!(generation, "vault root key rotated");
                return Ok(generation);
            }
        }
        Err(VaultError::Contention {
            key: KEYRING_PATH.into(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Re-wraps every record's data key under the active root key generation (the values'
    /// ciphertext is left as is). Safe to run while others write: each record is swapped only
    /// if unchanged, and a record rewritten meanwhile already uses the active generation.
    pub async fn rewrap(&self) -> Result<RewrapReport> {
        let mut state = self.reload_keyring(&self.unsealed()?).await?;
        let mut report = RewrapReport::default();
        let mut start_after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .backend
                .list(DATA_PREFIX.as_bytes(), start_after.as_deref(), 256)
                .await?;
            for entry in &page.entries {
                let mut raw = entry.value.clone();
                let mut attempts = 0;
                loop {
                    if record::generation(&entry.key, &raw)? > state.keyring.active_generation() {
                        state = self.reload_keyring(&state).await?;
                    }
                    let Some(new) = record::rewrap(&state.keyring, &entry.key, &raw)? else {
                        report.current += 1;
                        break;
                    };
                    match self
                        .backend
                        .compare_and_swap(&entry.key, Some(&raw), Some(&new))
                        .await?
                    {
                        CasOutcome::Swapped => {
                            report.rewrapped += 1;
                            break;
                        }
                        CasOutcome::Conflict { current: None } => break, // deleted meanwhile
                        CasOutcome::Conflict {
                            current: Some(current),
                        } => raw = current,
                    }
                    attempts += 1;
                    if attempts >= MAX_ATTEMPTS {
                        return Err(VaultError::Contention {
                            key: String::from_utf8_lossy(&entry.key).into_owned(),
                            attempts,
                        });
                    }
                }
            }
            match page.next {
                Some(next) => start_after = Some(next),
                None => break,
            }
        }
        Ok(report)
    }

    /// Removes root key generations no record uses any more (checked by a full scan) from
    /// the keyring; returns the generations removed. Run after [`rewrap`](Self::rewrap).
    pub async fn retire_unused_root_keys(&self) -> Result<Vec<u32>> {
        let state = self.reload_keyring(&self.unsealed()?).await?;
        let mut used = std::collections::BTreeSet::new();
        let mut start_after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .backend
                .list(DATA_PREFIX.as_bytes(), start_after.as_deref(), 1000)
                .await?;
            for entry in &page.entries {
                used.insert(record::generation(&entry.key, &entry.value)?);
            }
            match page.next {
                Some(next) => start_after = Some(next),
                None => break,
            }
        }
        let active = state.keyring.active_generation();
        let retire: Vec<u32> = state
            .keyring
            .generations()
            .into_iter()
            .filter(|g| *g != active && !used.contains(g))
            .collect();
        if retire.is_empty() {
            return Ok(retire);
        }
        let (current, raw) = self.load_keyring(&state.keyring_key).await?;
        if current.active_generation() != active {
            return Err(VaultError::Contention {
                key: KEYRING_PATH.into(),
                attempts: 1,
            });
        }
        let trimmed = current.without(&retire);
        let sealed = state
            .keyring_key
            .seal(&trimmed.encode(), KEYRING_PATH.as_bytes())?;
        match self
            .backend
            .compare_and_swap(KEYRING_PATH.as_bytes(), Some(&raw), Some(&sealed))
            .await?
        {
            CasOutcome::Swapped => {
                self.set_state(Some(Arc::new(Unsealed {
                    keyring_key: state.keyring_key.clone(),
                    keyring: trimmed,
                })));
                Ok(retire)
            }
            CasOutcome::Conflict { .. } => Err(VaultError::Contention {
                key: KEYRING_PATH.into(),
                attempts: 1,
            }),
        }
    }
}
