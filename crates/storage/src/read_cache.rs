//! The redb backend's read cache: stored values by key, in memory, bounded in bytes, so a read
//! of a hot key costs a hash lookup and a copy instead of a trip to the blocking thread pool
//! and a B-tree walk.
//!
//! It is only correct because the cache's owner is the **only writer** of the data: redb locks
//! its file for one process, and every write of that process goes through
//! [`ReadCache::begin_write`] / [`WriteGuard`] around its commit. Values are cached as stored
//! (the vault's barrier records are ciphertext), and the same bytes already sit in redb's own
//! page cache, so the cache holds nothing the process did not hold already.
//!
//! Consistency (linearizable reads, as without the cache) rests on two rules:
//!
//! * a write removes its keys and bumps the **epoch** when it starts (before its commit) and
//!   again when it ends (after its commit or abort), and no value is cached while a write is
//!   in progress, so a key being written is never served from the cache;
//! * a reader that missed takes a [`Ticket`] (the epoch, and only if no write is in progress)
//!   **before** it opens its snapshot, and caches what it read only if the epoch is unchanged
//!   when it comes back: then no write started after its snapshot was taken, so the value it
//!   read is still the current one.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Default capacity: 64 MiB of keys and values.
pub(crate) const DEFAULT_CAPACITY: usize = 64 * 1024 * 1024;
/// Bookkeeping bytes counted per entry on top of its key and value.
const ENTRY_OVERHEAD: usize = 64;

/// Values by key, bounded in bytes.
#[derive(Debug)]
pub(crate) struct ReadCache {
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Box<[u8]>, Box<[u8]>>,
    bytes: usize,
    epoch: u64,
    writes_in_progress: usize,
}

/// Permission to cache what a read returns, if nothing was written meanwhile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

fn entry_size(key: &[u8], value: &[u8]) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

impl State {
    fn remove(&mut self, key: &[u8]) {
        if let Some((key, value)) = self.entries.remove_entry(key) {
            self.bytes -= entry_size(&key, &value);
        }
    }
}

impl ReadCache {
    /// An empty cache holding at most `capacity` bytes (keys, values and bookkeeping).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value of `key`, if any.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lock().entries.get(key).map(|v| v.to_vec())
    }

    /// Call before reading from the database; `None` while a write is in progress (the read
    /// may then not be cached).
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        let state = self.lock();
        (state.writes_in_progress == 0).then_some(Ticket(state.epoch))
    }

    /// Caches `value` (read from the database after `ticket` was taken) under `key`, unless a
    /// write started since.
    pub(crate) fn fill(&self, ticket: Ticket, key: &[u8], value: &[u8]) {
        let size = entry_size(key, value);
        if size > self.capacity / 8 {
            return; // one huge value would evict everything else
        }
        let mut state = self.lock();
        if state.epoch != ticket.0 || state.writes_in_progress != 0 {
            return;
        }
        state.remove(key);
        if state.bytes + size > self.capacity {
            // Evict arbitrary entries (hash order) down to three quarters of the capacity.
            let target = self.capacity / 4 * 3;
            let victims: Vec<Box<[u8]>> = {
                let mut freed = 0;
                let excess = (state.bytes + size).saturating_sub(target);
                state
                    .entries
                    .iter()
                    .take_while(|(k, v)| {
                        let more = freed < excess;
                        freed += entry_size(k, v);
                        more
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            };
            for victim in victims {
                state.remove(&victim);
            }
        }
        state.bytes += size;
        state.entries.insert(key.into(), value.into());
    }

    /// Marks a write of `keys` as in progress: they leave the cache and nothing is cached
    /// until the returned guard is dropped, which must happen after the write committed or
    /// was abandoned.
    pub(crate) fn begin_write<'a>(&'a self, keys: &[&[u8]]) -> WriteGuard<'a> {
        let mut state = self.lock();
        for key in keys {
            state.remove(key);
        }
        state.writes_in_progress += 1;
        state.epoch += 1;
        WriteGuard { cache: self }
    }

    /// Entries and bytes held (for tests).
    #[cfg(test)]
    fn usage(&self) -> (usize, usize) {
        let state = self.lock();
        (state.entries.len(), state.bytes)
    }
}

/// A write in progress; dropping it (after the commit) lets reads be cached again.
#[derive(Debug)]
pub(crate) struct WriteGuard<'a> {
    cache: &'a ReadCache,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.cache.lock();
        state.writes_in_progress -= 1;
        state.epoch += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_cached_only_if_no_write_started_after_its_ticket() {
        let cache = ReadCache::new(DEFAULT_CAPACITY);
        let ticket = cache.ticket().unwrap();
        cache.fill(ticket, b"k", b"v1");
        assert_eq!(cache.get(b"k").as_deref(), Some(&b"v1"[..]));

        // A reader took its ticket, then a write of another key started and ended: its
        // value may predate that write, so it is not cached.
        let stale = cache.ticket().unwrap();
        drop(cache.begin_write(&[b"other"]));
        cache.fill(stale, b"j", b"old");
        assert_eq!(cache.get(b"j"), None);
    }

    #[test]
    fn a_write_removes_its_keys_and_blocks_caching_until_it_ends() {
        let cache = ReadCache::new(DEFAULT_CAPACITY);
        cache.fill(cache.ticket().unwrap(), b"k", b"v1");
        let guard = cache.begin_write(&[b"k"]);
        assert_eq!(cache.get(b"k"), None);
        assert!(cache.ticket().is_none());
        drop(guard);
        let ticket = cache.ticket().unwrap();
        cache.fill(ticket, b"k", b"v2");
        assert_eq!(cache.get(b"k").as_deref(), Some(&b"v2"[..]));
    }

    #[test]
    fn capacity_is_respected_by_eviction() {
        let cache = ReadCache::new(64 * 1024);
        for i in 0..10_000u32 {
            let ticket = cache.ticket().unwrap();
            cache.fill(ticket, &i.to_be_bytes(), &[7u8; 100]);
            assert!(cache.usage().1 <= 64 * 1024, "{:?}", cache.usage());
        }
        let (entries, bytes) = cache.usage();
        assert!(entries > 100, "{entries}");
        assert_eq!(bytes, entries * (4 + 100 + ENTRY_OVERHEAD));
        // The last value filled is there.
        assert_eq!(cache.get(&9_999u32.to_be_bytes()).unwrap(), vec![7u8; 100]);
        // Values larger than an eighth of the capacity are never cached.
        cache.fill(cache.ticket().unwrap(), b"big", &vec![0u8; 9 * 1024]);
        assert_eq!(cache.get(b"big"), None);
    }
}
