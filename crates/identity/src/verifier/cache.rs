//! The verified-token cache: SHA-256 of the token → the [`Principal`] it proved, until the
//! token's `exp`.
//!
//! Sharded (`RwLock<HashMap>` per shard, picked by the digest's first byte) so a hot token
//! costs one SHA-256, one read lock and one lookup. Bounded: a full shard first drops its
//! expired entries, then an arbitrary eighth of the rest. Capacity 0 disables the cache.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

use crate::Principal;

/// A SHA-256 digest of a token.
pub(crate) type TokenDigest = [u8; 32];

/// The digest is already uniformly distributed: hash it by taking 8 of its bytes.
#[derive(Debug, Default)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        for (slot, byte) in word.iter_mut().zip(bytes.iter().skip(8)) {
            *slot = *byte;
        }
        self.0 = self.0.rotate_left(17) ^ u64::from_le_bytes(word);
    }
}

type Shard = RwLock<HashMap<TokenDigest, Entry, BuildHasherDefault<DigestHasher>>>;

#[derive(Debug, Clone)]
struct Entry {
    principal: Arc<Principal>,
    /// Unix seconds at which the entry stops being served.
    expires_at: u64,
    /// Index of the issuer that vouched, to fail closed when its keys go stale.
    issuer: usize,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct TokenCache {
    shards: Box<[Shard]>,
    per_shard: usize,
}

const SHARDS: usize = 16;

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> Self {
        let shard_count = if capacity == 0 {
            0
        } else {
            SHARDS.min(capacity)
        };
        let per_shard = capacity.checked_div(shard_count).unwrap_or(0).max(1);
        Self {
            shards: (0..shard_count).map(|_| Shard::default()).collect(),
            per_shard,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        !self.shards.is_empty()
    }

    fn shard(&self, key: &TokenDigest) -> Option<&Shard> {
        let index = usize::from(key.first().copied().unwrap_or(0)) % self.shards.len().max(1);
        self.shards.get(index)
    }

    /// The cached principal and its issuer index, when present and `now` is before its expiry.
    pub(crate) fn get(&self, key: &TokenDigest, now: u64) -> Option<(Arc<Principal>, usize)> {
        let shard = self.shard(key)?;
        {
            let map = shard
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = map.get(key)?;
            if now < entry.expires_at {
                return Some((Arc::clone(&entry.principal), entry.issuer));
            }
        }
        // Expired: evict it now.
        let mut map = shard
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.get(key).is_some_and(|entry| now >= entry.expires_at) {
            map.remove(key);
        }
        None
    }

    pub(crate) fn insert(
        &self,
        key: TokenDigest,
        principal: Arc<Principal>,
        issuer: usize,
        now: u64,
    ) {
        let expires_at = principal.expires_at;
        if expires_at <= now {
            return;
        }
        let Some(shard) = self.shard(&key) else {
            return;
        };
        let mut map = shard
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= self.per_shard && !map.contains_key(&key) {
            map.retain(|_, entry| now < entry.expires_at);
            if map.len() >= self.per_shard {
                let drop_count = (self.per_shard / 8).max(1);
                let victims: Vec<TokenDigest> = map.keys().take(drop_count).copied().collect();
                for victim in victims {
                    map.remove(&victim);
                }
            }
        }
        map.insert(
            key,
            Entry {
                principal,
                expires_at,
                issuer,
            },
        );
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn principal(exp: u64) -> Arc<Principal> {
        let mut p = Principal::local("p");
        p.expires_at = exp;
        Arc::new(p)
    }

    fn digest(i: u32) -> TokenDigest {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &i.to_le_bytes());
        d.as_ref().try_into().unwrap()
    }

    #[test]
    fn serves_until_exp_then_evicts() {
        let cache = TokenCache::new(100);
        cache.insert(digest(1), principal(1_000), 3, 900);
        assert_eq!(cache.get(&digest(1), 999).unwrap().1, 3);
        assert!(cache.get(&digest(2), 999).is_none());
        assert!(cache.get(&digest(1), 1_000).is_none());
        assert_eq!(cache.len(), 0, "expired entry evicted on lookup");
    }

    #[test]
    fn never_stores_expired_and_disabled_at_zero() {
        let cache = TokenCache::new(100);
        cache.insert(digest(1), principal(10), 0, 10);
        assert_eq!(cache.len(), 0);
        let off = TokenCache::new(0);
        assert!(!off.enabled());
        off.insert(digest(1), principal(1_000), 0, 1);
        assert!(off.get(&digest(1), 2).is_none());
    }

    #[test]
    fn stays_bounded_and_drops_expired_first() {
        let cache = TokenCache::new(64);
        for i in 0..64 {
            cache.insert(digest(i), principal(100), 0, 1);
        }
        for i in 64..1_000 {
            cache.insert(digest(i), principal(10_000), 0, 200);
        }
        assert!(cache.len() <= 64, "{} entries", cache.len());
        assert!((0..64).all(|i| cache.get(&digest(i), 200).is_none()));
        let live = (64..1_000)
            .filter(|i| cache.get(&digest(*i), 200).is_some())
            .count();
        assert!(live > 0);
    }
}
