//! The keyring: the numbered root key generations that wrap data keys.
//!
//! Serialized (only ever inside an AES-GCM envelope) as
//! `"RKR1" || active generation (u32 BE) || count (u32 BE) || (generation (u32 BE) || key (32))*`.
//! A binary format rather than JSON so the key bytes never pass through non-zeroized strings.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroizing;

use crate::crypto::{KEY_LEN, Key256};
use crate::error::{Result, VaultError};

const MAGIC: &[u8; 4] = b"RKR1";

/// Root keys by generation, and which one wraps new data keys.
#[derive(Clone)]
pub(crate) struct Keyring {
    active: u32,
    keys: BTreeMap<u32, Key256>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("generations", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring with one fresh root key, generation 1.
    pub(crate) fn generate() -> Result<Self> {
        Ok(Self {
            active: 1,
            keys: BTreeMap::from([(1, Key256::generate()?)]),
        })
    }

    /// The active generation and its key.
    pub(crate) fn active(&self) -> Result<(u32, &Key256)> {
        self.keys
            .get(&self.active)
            .map(|k| (self.active, k))
            .ok_or(VaultError::Corrupt {
                what: "keyring".into(),
                reason: "active generation missing".into(),
            })
    }

    /// The key of `generation`, if held.
    pub(crate) fn get(&self, generation: u32) -> Option<&Key256> {
        self.keys.get(&generation)
    }

    /// The active generation.
    pub(crate) fn active_generation(&self) -> u32 {
        self.active
    }

    /// The generations held, ascending.
    pub(crate) fn generations(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// A copy with a fresh root key as the new active generation.
    pub(crate) fn rotated(&self) -> Result<Self> {
        let next = self
            .keys
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or(VaultError::Crypto("root key generations exhausted"))?;
        let mut keys = self.keys.clone();
        keys.insert(next, Key256::generate()?);
        Ok(Self { active: next, keys })
    }

    /// A copy without the generations in `retire` (never the active one).
    pub(crate) fn without(&self, retire: &[u32]) -> Self {
        let mut keys = self.keys.clone();
        for generation in retire {
            if *generation != self.active {
                keys.remove(generation);
            }
        }
        Self {
            active: self.active,
            keys,
        }
    }

    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(12 + self.keys.len() * (4 + KEY_LEN)));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.active.to_be_bytes());
        let count = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for (generation, key) in &self.keys {
            out.extend_from_slice(&generation.to_be_bytes());
            out.extend_from_slice(key.expose());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |reason: &str| VaultError::Corrupt {
            what: "keyring".into(),
            reason: reason.into(),
        };
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| corrupt("bad magic"))?;
        let (active, rest) = take_u32(rest).ok_or_else(|| corrupt("truncated"))?;
        let (count, mut rest) = take_u32(rest).ok_or_else(|| corrupt("truncated"))?;
        let mut keys = BTreeMap::new();
        for _ in 0..count {
            let (generation, after) = take_u32(rest).ok_or_else(|| corrupt("truncated"))?;
            let (key, after) = after
                .split_at_checked(KEY_LEN)
                .ok_or_else(|| corrupt("truncated"))?;
            keys.insert(
                generation,
                Key256::from_slice(key).ok_or_else(|| corrupt("bad key"))?,
            );
            rest = after;
        }
        if !rest.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        if !keys.contains_key(&active) {
            return Err(corrupt("active generation missing"));
        }
        Ok(Self { active, keys })
    }
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_at_checked(4)?;
    let mut buf = [0u8; 4];
    buf.copy_from_slice(head);
    Some((u32::from_be_bytes(buf), rest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip_and_rotation() -> Result<()> {
        let ring = Keyring::generate()?.rotated()?.rotated()?;
        assert_eq!(ring.generations(), vec![1, 2, 3]);
        assert_eq!(ring.active_generation(), 3);
        let back = Keyring::decode(&ring.encode())?;
        assert_eq!(back.generations(), vec![1, 2, 3]);
        assert_eq!(back.active()?.0, 3);
        for g in 1..=3 {
            assert_eq!(
                back.get(g).map(Key256::expose),
                ring.get(g).map(Key256::expose)
            );
        }
        let trimmed = ring.without(&[1, 3]);
        assert_eq!(trimmed.generations(), vec![2, 3]);
        Ok(())
    }

    #[test]
    fn decode_rejects_malformed_input() -> Result<()> {
        let good = Keyring::generate()?.encode();
        assert!(Keyring::decode(b"").is_err());
        assert!(Keyring::decode(b"XXXX").is_err());
        assert!(Keyring::decode(&good[..good.len() - 1]).is_err());
        let mut long = good.to_vec();
        long.push(0);
        assert!(Keyring::decode(&long).is_err());
        let mut bad_active = good.to_vec();
        bad_active[7] = 9;
        assert!(Keyring::decode(&bad_active).is_err());
        Ok(())
    }

    #[test]
    fn debug_shows_generations_only() -> Result<()> {
        let text = format!("{:?}", Keyring::generate()?);
        assert_eq!(text, "Keyring { active: 1, generations: [1] }");
        Ok(())
    }
}
