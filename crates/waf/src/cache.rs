//! The per-transaction transformation cache.
//!
//! Pipelines are interned at load as a prefix tree ([`PipeNode`]); a value's result for a node
//! is cached under (node, value address, value length). Only values whose storage does not
//! change during the transaction are cached (request and response data); the cache is cleared
//! whenever the transaction's data is mutated. A pipeline sharing a prefix with one computed
//! before (`t:urlDecodeUni,t:lowercase` after `t:urlDecodeUni`) resumes from the cached prefix.
//!
//! Keys are addresses and node numbers, never request bytes, so the map uses a cheap
//! multiplicative hash ([`FastHasher`]) instead of SipHash: an attacker cannot choose them.
//! The maps and buffers of finished transactions are kept in a small per-thread pool
//! ([`TCache::take`], [`TCache::recycle`]) so a new transaction starts with warm capacity.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::ruleset::PipeNode;

/// A multiplicative hasher for keys that are integers (addresses, indexes), not input bytes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = self.0.wrapping_add(i).wrapping_mul(K);
    }
}

/// A `HashMap` keyed by integers with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Cached transformation results.
#[derive(Debug, Default)]
pub(crate) struct TCache {
    map: FastMap<(u32, usize, usize), Option<u32>>,
    arena: Vec<Vec<u8>>,
}

thread_local! {
    static POOL: RefCell<Vec<TCache>> = const { RefCell::new(Vec::new()) };
}

/// Caches kept per thread for reuse (two per transaction).
const POOL_MAX: usize = 8;

impl TCache {
    /// An empty cache, from this thread's pool when there is one.
    pub(crate) fn take() -> Self {
        POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default()
    }

    /// Returns `self` to this thread's pool.
    pub(crate) fn recycle(mut self) {
        self.clear();
        if self.map.capacity() > 1 << 16 {
            return;
        }
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_MAX {
                p.push(self);
            }
        });
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.arena.clear();
    }

    fn push(&mut self, out: Vec<u8>) -> u32 {
        self.arena.push(out);
        u32::try_from(self.arena.len() - 1).unwrap_or(u32::MAX)
    }

    /// The result of the pipeline `path` on `input`: `None` when it leaves `input` as it is,
    /// else an index for [`TCache::get`]. `memo`: whether to remember results by address.
    pub(crate) fn run(
        &mut self,
        pipes: &[PipeNode],
        path: &[u32],
        input: &[u8],
        memo: bool,
    ) -> Option<u32> {
        let memo = memo && !input.is_empty();
        let ptr = input.as_ptr() as usize;
        let len = input.len();
        let mut cur: Option<u32> = None;
        let mut start = 0;
        if memo {
            for (k, node) in path.iter().enumerate().rev() {
                if let Some(r) = self.map.get(&(*node, ptr, len)) {
                    if k + 1 == path.len() {
                        return *r;
                    }
                    cur = *r;
                    start = k + 1;
                    break;
                }
            }
        }
        for node in path.iter().skip(start) {
            let Some(p) = pipes.get(*node as usize) else {
                continue;
            };
            let src: &[u8] = match cur {
                Some(i) => self.arena.get(i as usize).map_or(input, Vec::as_slice),
                None => input,
            };
            if let Some(out) = p.t.apply(src) {
                cur = Some(self.push(out));
            }
            if memo {
                self.map.insert((*node, ptr, len), cur);
            }
        }
        cur
    }

    /// The bytes for a result of [`TCache::run`].
    pub(crate) fn get<'a>(&'a self, r: Option<u32>, input: &'a [u8]) -> &'a [u8] {
        match r {
            Some(i) => self.arena.get(i as usize).map_or(input, Vec::as_slice),
            None => input,
        }
    }
}
