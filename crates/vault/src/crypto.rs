//! AES-256-GCM with random nonces, random bytes, and the 256-bit key type, all through
//! aws-lc-rs. Key material lives in [`Key256`], zeroized on drop and redacted from `Debug`.
//! Each key carries its expanded AES-GCM key (made once, when the key is), so a seal or open
//! does not redo the key schedule.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};

/// Length of an AES-256 key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce in bytes.
pub const GCM_NONCE_LEN: usize = NONCE_LEN;
/// Length of an AES-GCM tag in bytes.
pub const GCM_TAG_LEN: usize = 16;

/// A 256-bit secret key, zeroized on drop, never printed. Cheap to clone (shared).
#[derive(Clone)]
pub struct Key256(Arc<KeyInner>);

struct KeyInner {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    aead: LessSafeKey,
}

impl Key256 {
    fn new(bytes: Zeroizing<[u8; KEY_LEN]>) -> Result<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes.as_slice())
            .map_err(|_| VaultError::Crypto("aes-256-gcm key setup"))?;
        Ok(Self(Arc::new(KeyInner {
            bytes,
            aead: LessSafeKey::new(unbound),
        })))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(key.as_mut_slice())?;
        Self::new(key)
    }

    /// A key from exactly 32 bytes (`None` for any other length).
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return None;
        }
        key.copy_from_slice(bytes);
        Self::new(key).ok()
    }

    /// The raw key bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0.bytes
    }

    fn aead(&self) -> Result<&LessSafeKey> {
        Ok(&self.0.aead)
    }

    /// Encrypts `plaintext` with a fresh random nonce; returns `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; GCM_NONCE_LEN];
        fill_random(&mut nonce)?;
        // Encrypted in a zeroized buffer with room for the tag, so no plaintext copy is left.
        let mut body = Zeroizing::new(Vec::with_capacity(plaintext.len() + GCM_TAG_LEN));
        body.extend_from_slice(plaintext);
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut *body,
            )
            .map_err(|_| VaultError::Crypto("aes-256-gcm seal"))?;
        let mut out = Vec::with_capacity(GCM_NONCE_LEN + body.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts `nonce || ciphertext || tag` made by [`seal`](Self::seal) with the same `aad`;
    /// `None` when it does not authenticate.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Some((nonce, body)) = sealed.split_at_checked(GCM_NONCE_LEN) else {
            return Ok(None);
        };
        if body.len() < GCM_TAG_LEN {
            return Ok(None);
        }
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| VaultError::Crypto("aes-256-gcm nonce"))?;
        let mut buf = Zeroizing::new(body.to_vec());
        let key = self.aead()?;
        let len = match key.open_in_place(nonce, Aad::from(aad), buf.as_mut_slice()) {
            Ok(plain) => plain.len(),
            Err(_) => return Ok(None),
        };
        buf.truncate(len);
        Ok(Some(buf))
    }
}

impl fmt::Debug for Key256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key256(<redacted>)")
    }
}

/// Fills `buf` from the system CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| VaultError::Crypto("random generator"))
}

/// The length of `seal`'s output for a plaintext of `len` bytes.
pub const fn sealed_len(len: usize) -> usize {
    GCM_NONCE_LEN + len + GCM_TAG_LEN
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_aad_binding() -> Result<()> {
        let key = Key256::generate()?;
        let sealed = key.seal(b"attack at dawn", b"path/a")?;
        assert_eq!(sealed.len(), sealed_len(14));
        let opened = key.open(&sealed, b"path/a")?;
        assert_eq!(
            opened.as_deref().map(Vec::as_slice),
            Some(&b"attack at dawn"[..])
        );
        assert!(key.open(&sealed, b"path/b")?.is_none());
        assert!(Key256::generate()?.open(&sealed, b"path/a")?.is_none());
        assert!(key.open(&sealed[..20], b"path/a")?.is_none());
        assert!(key.open(&[], b"path/a")?.is_none());
        Ok(())
    }

    #[test]
    fn keys_are_redacted() -> Result<()> {
        let key = Key256::generate()?;
        assert_eq!(format!("{key:?}"), "Key256(<redacted>)");
        Ok(())
    }
}
