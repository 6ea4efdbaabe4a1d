//! Signing keys: generated with aws-lc-rs (ES256 by default, RS256 on request), sealed at rest
//! with AES-256-GCM under a key-encryption key (the AAD binds the key id and algorithm),
//! rotated on a schedule, and published in the JWKS until every token they signed expired.
//!
//! Storage layout: `identity/issuer/keys/<kid>` holds a JSON [`StoredKey`]: the public JWK,
//! the creation time, and, while the key still signs, its sealed PKCS#8. Retiring a key drops
//! the sealed private part at once and sets `publish_until` = retire time + token lifetime;
//! after that instant the record is deleted.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use rampart_storage::{Backend, Transaction};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::IssuerError;
use super::jose::{Jwk, b64, unb64};

/// Storage prefix of the signing keys.
pub(crate) const KEY_PREFIX: &str = "identity/issuer/keys/";

/// The JWS algorithm the issuer signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256 (the default: small keys and signatures, fast).
    #[default]
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys (for relying parties without EC).
    #[serde(rename = "RS256")]
    Rs256,
}

impl SigningAlg {
    /// The JWS `alg` name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }
}

impl FromStr for SigningAlg {
    type Err = IssuerError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ES256" => Ok(Self::Es256),
            "RS256" => Ok(Self::Rs256),
            other => Err(IssuerError::InvalidConfig(format!(
                "unsupported signing algorithm {other:?} (use ES256 or RS256)"
            ))),
        }
    }
}

/// The key-encryption key (32 bytes) that seals signing keys at rest. Zeroized on drop; its
/// `Debug` shows nothing.
pub struct Kek(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// A key-encryption key from raw bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// [`IssuerError::Crypto`] without system randomness.
    pub fn generate() -> Result<Self, IssuerError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| IssuerError::Crypto("no system randomness"))?;
        Ok(Self(bytes))
    }

    /// Reads the key from `path` (32 raw bytes, the file must be private: mode 0600), or
    /// generates it and writes it with mode 0600 when the file does not exist.
    ///
    /// # Errors
    /// [`IssuerError::Kek`] when the file is readable by others, has the wrong size, or cannot
    /// be read or written.
    pub fn load_or_create(path: &Path) -> Result<Self, IssuerError> {
        let fail = |reason: String| IssuerError::Kek {
            path: path.to_owned(),
            reason,
        };
        match fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(fail(format!(
                        "readable by other users (mode {:o}); run chmod 600 on it",
                        mode & 0o777
                    )));
                }
                let bytes = Zeroizing::new(fs::read(path).map_err(|e| fail(e.to_string()))?);
                let key: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| fail(format!("expected 32 bytes, found {}", bytes.len())))?;
                Ok(Self(Zeroizing::new(key)))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let kek = Self::generate()?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| fail(e.to_string()))?;
                file.write_all(kek.0.as_ref())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| fail(e.to_string()))?;
                Ok(kek)
            }
            Err(error) => Err(fail(error.to_string())),
        }
    }

    fn aead(&self) -> Result<LessSafeKey, IssuerError> {
        UnboundKey::new(&AES_256_GCM, self.0.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| IssuerError::Crypto("cannot build the AES-256-GCM key"))
    }

    /// Seals `plaintext`: base64url(nonce || ciphertext || tag).
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<String, IssuerError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| IssuerError::Crypto("no system randomness"))?;
        let mut buffer = Zeroizing::new(plaintext.to_vec());
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut *buffer,
            )
            .map_err(|_| IssuerError::Crypto("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        Ok(b64(&out))
    }

    /// Opens what [`Kek::seal`] produced; `None` if it was altered, moved to another key id,
    /// or sealed under another key.
    fn open(&self, aad: &[u8], sealed: &str) -> Option<Zeroizing<Vec<u8>>> {
        let bytes = unb64(sealed)?;
        let (nonce, ciphertext) = bytes.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plain_len = self
            .aead()
            .ok()?
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .ok()?
            .len();
        buffer.truncate(plain_len);
        Some(buffer)
    }
}

/// The AAD of a sealed signing key: binds the ciphertext to its key id and algorithm, so a
/// sealed key copied onto another record does not open.
fn aad(kid: &str, alg: SigningAlg) -> Vec<u8> {
    format!("rampart identity signing key\0{kid}\0{}", alg.as_str()).into_bytes()
}

/// A signing key as stored.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub created_at: u64,
    #[serde(default)]
    pub retired_at: Option<u64>,
    #[serde(default)]
    pub publish_until: Option<u64>,
    pub public: Jwk,
    /// base64url(nonce || AES-256-GCM(PKCS#8) || tag); dropped at retirement.
    #[serde(default)]
    pub sealed_private: Option<String>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

/// A key pair that signs tokens.
enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// The key that signs now, and the public keys to publish.
pub(crate) struct KeyRing {
    pub kid: String,
    pub alg: SigningAlg,
    pub created_at: u64,
    signer: Signer,
    /// (publish_until, jwk): `None` for keys that still sign.
    pub published: Vec<(Option<u64>, Jwk)>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("published", &self.published.len())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Signs `message` (a JWS signing input).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Ec(pair) => pair
                .sign(&rng, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| IssuerError::Crypto("ECDSA signing failed")),
            Signer::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| IssuerError::Crypto("RSA signing failed"))?;
                Ok(signature)
            }
        }
    }

    /// The JWKS document: every key still published at `now`.
    pub fn jwks(&self, now: u64) -> serde_json::Value {
        let keys: Vec<&Jwk> = self
            .published
            .iter()
            .filter(|(until, _)| until.is_none_or(|until| now < until))
            .map(|(_, jwk)| jwk)
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// A new key: its stored record (private part sealed) and the PKCS#8 (zeroized on drop).
fn generate(
    kek: &Kek,
    alg: SigningAlg,
    now: u64,
) -> Result<(StoredKey, Zeroizing<Vec<u8>>), IssuerError> {
    let kid = uuid::Uuid::new_v4().simple().to_string();
    let (pkcs8, public) = match alg {
        SigningAlg::Es256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|_| IssuerError::Crypto("P-256 key generation failed"))?;
            let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                .map_err(|_| IssuerError::Crypto("generated P-256 key rejected"))?;
            let public = Jwk::p256(pair.public_key().as_ref(), &kid)?;
            (pkcs8, public)
        }
        SigningAlg::Rs256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| IssuerError::Crypto("RSA key generation failed"))?;
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'static>>::as_der(&pair)
                .map_err(|_| IssuerError::Crypto("RSA key encoding failed"))?;
            let pkcs8 = Zeroizing::new(der.as_ref().to_vec());
            let public = pair.public_key();
            let jwk = Jwk::rsa(
                public.modulus().big_endian_without_leading_zero(),
                public.exponent().big_endian_without_leading_zero(),
                &kid,
            );
            (pkcs8, jwk)
        }
    };
    let sealed = kek.seal(&aad(&kid, alg), &pkcs8)?;
    Ok((
        StoredKey {
            kid,
            alg,
            created_at: now,
            retired_at: None,
            publish_until: None,
            public,
            sealed_private: Some(sealed),
        },
        pkcs8,
    ))
}

fn signer(alg: SigningAlg, pkcs8: &[u8]) -> Option<Signer> {
    match alg {
        SigningAlg::Es256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .ok()
            .map(Signer::Ec),
        SigningAlg::Rs256 => RsaKeyPair::from_pkcs8(pkcs8).ok().map(Signer::Rsa),
    }
}

/// What [`load_or_rotate`] needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RotationPolicy {
    pub alg: SigningAlg,
    pub rotation_period: u64,
    pub token_lifetime: u64,
}

async fn list_keys(store: &dyn Backend) -> Result<Vec<(Vec<u8>, Vec<u8>)>, IssuerError> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store
            .list(KEY_PREFIX.as_bytes(), after.as_deref(), 256)
            .await?;
        out.extend(
            page.entries
                .into_iter()
                .map(|entry| (entry.key, entry.value)),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

fn decode(key: &[u8], value: &[u8]) -> Result<StoredKey, IssuerError> {
    serde_json::from_slice(value).map_err(|error| IssuerError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: error.to_string(),
    })
}

/// Loads the key ring; deletes keys no longer published; retires the signing key and makes a
/// new one when it is older than the rotation period (or the algorithm changed, or there is
/// none). Concurrent planes on one store agree through a transaction: the loser re-reads.
pub(crate) async fn load_or_rotate(
    store: &dyn Backend,
    kek: &Kek,
    policy: RotationPolicy,
    now: u64,
) -> Result<Arc<KeyRing>, IssuerError> {
    for _attempt in 0..8 {
        let mut keys = Vec::new();
        for (key, value) in list_keys(store).await? {
            let stored = decode(&key, &value)?;
            if stored.publish_until.is_some_and(|until| until <= now) {
                store.delete(&key).await?;
                continue;
            }
            keys.push((key, value, stored));
        }
        keys.sort_by(|a, b| (b.2.created_at, &b.2.kid).cmp(&(a.2.created_at, &a.2.kid)));
        let active = keys.iter().find(|(_, _, k)| k.retired_at.is_none());
        let due = active.is_none_or(|(_, _, k)| {
            k.alg != policy.alg || now >= k.created_at.saturating_add(policy.rotation_period)
        });
        if !due {
            let Some((_, _, active)) = active else {
                continue;
            };
            let sealed = active
                .sealed_private
                .as_deref()
                .ok_or_else(|| IssuerError::Corrupt {
                    key: format!("{KEY_PREFIX}{}", active.kid),
                    reason: "the signing key has no private part".into(),
                })?;
            let pkcs8 = kek
                .open(&aad(&active.kid, active.alg), sealed)
                .ok_or_else(|| IssuerError::Corrupt {
                    key: format!("{KEY_PREFIX}{}", active.kid),
                    reason: "does not decrypt under the key-encryption key".into(),
                })?;
            let signer = signer(active.alg, &pkcs8).ok_or_else(|| IssuerError::Corrupt {
                key: format!("{KEY_PREFIX}{}", active.kid),
                reason: "the decrypted key is not a valid PKCS#8 key".into(),
            })?;
            return Ok(Arc::new(KeyRing {
                kid: active.kid.clone(),
                alg: active.alg,
                created_at: active.created_at,
                signer,
                published: keys
                    .iter()
                    .map(|(_, _, k)| (k.publish_until, k.public.clone()))
                    .collect(),
            }));
        }
        // Rotate: a new key, and every still-signing key retired in the same transaction.
        let (fresh, pkcs8) = generate(kek, policy.alg, now)?;
        let fresh_key = format!("{KEY_PREFIX}{}", fresh.kid).into_bytes();
        let fresh_value = serde_json::to_vec(&fresh)
            .map_err(|_| IssuerError::Crypto("cannot encode the new key"))?;
        let mut txn = Transaction::new()
            .require_absent(fresh_key.clone())
            .put(fresh_key, fresh_value);
        let mut published = vec![(None, fresh.public.clone())];
        for (key, value, stored) in &keys {
            let mut stored = stored.clone();
            if stored.retired_at.is_none() {
                stored.retired_at = Some(now);
                stored.publish_until = Some(now.saturating_add(policy.token_lifetime));
                stored.sealed_private = None;
                let encoded = serde_json::to_vec(&stored)
                    .map_err(|_| IssuerError::Crypto("cannot encode a retired key"))?;
                txn = txn
                    .require(key.clone(), Some(value))
                    .put(key.clone(), encoded);
            }
            published.push((stored.publish_until, stored.public));
        }
        if !store.commit(txn).await?.is_committed() {
            continue;
        }
        tracing::info!(kid = %fresh.kid, alg = fresh.alg.as_str(), "generated a new token-signing key");
        let signer =
            signer(fresh.alg, &pkcs8).ok_or(IssuerError::Crypto("generated key rejected"))?;
        return Ok(Arc::new(KeyRing {
            kid: fresh.kid,
            alg: fresh.alg,
            created_at: fresh.created_at,
            signer,
            published,
        }));
    }
    Err(IssuerError::Crypto(
        "signing-key rotation kept conflicting with another writer",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_key_id_and_kek() {
        let kek = Kek::generate().unwrap();
        let sealed = kek.seal(&aad("k1", SigningAlg::Es256), b"secret").unwrap();
        assert_eq!(
            kek.open(&aad("k1", SigningAlg::Es256), &sealed)
                .unwrap()
                .as_slice(),
            b"secret"
        );
        assert!(kek.open(&aad("k2", SigningAlg::Es256), &sealed).is_none());
        assert!(kek.open(&aad("k1", SigningAlg::Rs256), &sealed).is_none());
        assert!(
            Kek::generate()
                .unwrap()
                .open(&aad("k1", SigningAlg::Es256), &sealed)
                .is_none()
        );
        assert!(kek.open(&aad("k1", SigningAlg::Es256), "AAAA").is_none());
        assert_eq!(format!("{kek:?}"), "Kek(<redacted>)");
    }

    #[test]
    fn kek_file_is_private_and_refused_when_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let first = Kek::load_or_create(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let again = Kek::load_or_create(&path).unwrap();
        assert_eq!(first.0.as_ref(), again.0.as_ref());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Kek::load_or_create(&path),
            Err(IssuerError::Kek { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            Kek::load_or_create(&path),
            Err(IssuerError::Kek { .. })
        ));
    }
}
