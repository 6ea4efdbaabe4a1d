//! The barrier's record format: one data key per record, wrapped by a root key generation, the
//! storage key path bound into both encryptions.
//!
//! ```text
//! version (1) = 0x01 | generation (u32 BE) | wrapped data key (60) | sealed value (12 + n + 16)
//! wrapped data key = AES-256-GCM(root key[generation], data key,
//!                                aad = "rampart-vault:wrap\0" | version | generation | path)
//! sealed value     = AES-256-GCM(data key, value, aad = "rampart-vault:data\0" | version | path)
//! ```
//!
//! Each part is `nonce (12) || ciphertext || tag (16)` with a random nonce. The data key is
//! fresh for every write, so a nonce is never reused under it. Re-wrapping (after a root key
//! rotation) replaces the generation and the wrapped data key and leaves the sealed value
//! byte-for-byte alone; the data AAD therefore leaves out the generation.

use zeroize::Zeroizing;

use crate::crypto::{KEY_LEN, Key256, sealed_len};
use crate::error::{Result, VaultError};
use crate::keyring::Keyring;

/// The only record format version so far.
pub(crate) const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 4;
const WRAPPED_LEN: usize = sealed_len(KEY_LEN);

fn wrap_aad(version: u8, generation: u32, path: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(24 + path.len());
    aad.extend_from_slice(b"rampart-vault:wrap\0");
    aad.push(version);
    aad.extend_from_slice(&generation.to_be_bytes());
    aad.extend_from_slice(path);
    aad
}

fn data_aad(version: u8, path: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(20 + path.len());
    aad.extend_from_slice(b"rampart-vault:data\0");
    aad.push(version);
    aad.extend_from_slice(path);
    aad
}

fn display(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// A record split into its parts.
struct Parts<'a> {
    generation: u32,
    wrapped: &'a [u8],
    sealed: &'a [u8],
}

fn parse<'a>(path: &[u8], record: &'a [u8]) -> Result<Parts<'a>> {
    let integrity = |reason| VaultError::Integrity {
        path: display(path),
        reason,
    };
    let (&version, rest) = record
        .split_first()
        .ok_or_else(|| integrity("empty record"))?;
    if version != FORMAT_V1 {
        return Err(VaultError::UnsupportedFormat {
            path: display(path),
            version,
        });
    }
    let (generation, rest) = rest
        .split_at_checked(4)
        .ok_or_else(|| integrity("truncated header"))?;
    let mut buf = [0u8; 4];
    buf.copy_from_slice(generation);
    let (wrapped, sealed) = rest
        .split_at_checked(WRAPPED_LEN)
        .ok_or_else(|| integrity("truncated wrapped data key"))?;
    if sealed.len() < sealed_len(0) {
        return Err(integrity("truncated ciphertext"));
    }
    Ok(Parts {
        generation: u32::from_be_bytes(buf),
        wrapped,
        sealed,
    })
}

/// The root key generation a record was wrapped under.
pub(crate) fn generation(path: &[u8], record: &[u8]) -> Result<u32> {
    parse(path, record).map(|p| p.generation)
}

fn wrap(keyring: &Keyring, path: &[u8], data_key: &Key256) -> Result<(u32, Vec<u8>)> {
    let (generation, root) = keyring.active()?;
    let wrapped = root.seal(data_key.expose(), &wrap_aad(FORMAT_V1, generation, path))?;
    Ok((generation, wrapped))
}

fn unwrap(keyring: &Keyring, path: &[u8], parts: &Parts<'_>) -> Result<Key256> {
    let root = keyring
        .get(parts.generation)
        .ok_or_else(|| VaultError::UnknownKeyGeneration {
            path: display(path),
            generation: parts.generation,
        })?;
    let raw = root
        .open(parts.wrapped, &wrap_aad(FORMAT_V1, parts.generation, path))?
        .ok_or_else(|| VaultError::Integrity {
            path: display(path),
            reason: "data key does not authenticate (record tampered, swapped or moved)",
        })?;
    Key256::from_slice(&raw).ok_or_else(|| VaultError::Integrity {
        path: display(path),
        reason: "bad data key length",
    })
}

/// Encrypts `value` for storage under `path`.
pub(crate) fn encrypt(keyring: &Keyring, path: &[u8], value: &[u8]) -> Result<Vec<u8>> {
    let data_key = Key256::generate()?;
    let (generation, wrapped) = wrap(keyring, path, &data_key)?;
    let sealed = data_key.seal(value, &data_aad(FORMAT_V1, path))?;
    let mut out = Vec::with_capacity(HEADER_LEN + wrapped.len() + sealed.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&wrapped);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts a record read from `path`.
pub(crate) fn decrypt(keyring: &Keyring, path: &[u8], record: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let parts = parse(path, record)?;
    let data_key = unwrap(keyring, path, &parts)?;
    data_key
        .open(parts.sealed, &data_aad(FORMAT_V1, path))?
        .ok_or_else(|| VaultError::Integrity {
            path: display(path),
            reason: "value does not authenticate (record tampered, swapped or moved)",
        })
}

/// Re-wraps a record's data key under the keyring's active generation, leaving the sealed
/// value untouched; `None` when it already uses the active generation.
pub(crate) fn rewrap(keyring: &Keyring, path: &[u8], record: &[u8]) -> Result<Option<Vec<u8>>> {
    let parts = parse(path, record)?;
    if parts.generation == keyring.active_generation() {
        return Ok(None);
    }
    let data_key = unwrap(keyring, path, &parts)?;
    let (generation, wrapped) = wrap(keyring, path, &data_key)?;
    let mut out = Vec::with_capacity(record.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&wrapped);
    out.extend_from_slice(parts.sealed);
    Ok(Some(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_path_binding() -> Result<()> {
        let ring = Keyring::generate()?;
        let rec = encrypt(&ring, b"a/b", b"secret value")?;
        assert_eq!(rec.len(), 5 + 60 + 12 + 12 + 16);
        assert_eq!(decrypt(&ring, b"a/b", &rec)?.as_slice(), b"secret value");
        assert!(matches!(
            decrypt(&ring, b"a/c", &rec),
            Err(VaultError::Integrity { .. })
        ));
        Ok(())
    }

    #[test]
    fn every_flipped_byte_is_detected() -> Result<()> {
        let ring = Keyring::generate()?;
        let rec = encrypt(&ring, b"k", b"v")?;
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x01;
            let err = decrypt(&ring, b"k", &bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    VaultError::Integrity { .. }
                        | VaultError::UnsupportedFormat { .. }
                        | VaultError::UnknownKeyGeneration { .. }
                ),
                "byte {i}: {err}"
            );
        }
        for len in 0..rec.len() {
            assert!(
                decrypt(&ring, b"k", &rec[..len]).is_err(),
                "truncated to {len}"
            );
        }
        Ok(())
    }

    #[test]
    fn rewrap_keeps_the_sealed_value() -> Result<()> {
        let ring = Keyring::generate()?;
        let rec = encrypt(&ring, b"k", b"value")?;
        assert!(rewrap(&ring, b"k", &rec)?.is_none());
        let ring2 = ring.rotated()?;
        let new = rewrap(&ring2, b"k", &rec)?.ok_or(VaultError::Crypto("no rewrap"))?;
        assert_eq!(generation(b"k", &new)?, 2);
        assert_eq!(&new[65..], &rec[65..]);
        assert_eq!(decrypt(&ring2, b"k", &new)?.as_slice(), b"value");
        // Generation 1 retired: the old record cannot be read, the rewrapped one can.
        let only2 = ring2.without(&[1]);
        assert!(matches!(
            decrypt(&only2, b"k", &rec),
            Err(VaultError::UnknownKeyGeneration { generation: 1, .. })
        ));
        assert_eq!(decrypt(&only2, b"k", &new)?.as_slice(), b"value");
        // Rewrapping cannot move a record to another path.
        assert!(rewrap(&ring2, b"other", &rec).is_err());
        Ok(())
    }
}
