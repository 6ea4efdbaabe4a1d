//! The per-transaction transformation cache.
//!
//! Pipelines are interned at load as a prefix tree ([`PipeNode`]); a value's result for a node
//! is cached under (node, value address, value length). Only values whose storage does not
//! change during the transaction are cached (request and response data); the cache is cleared
//! whenever the transaction's data is mutated. A pipeline sharing a prefix with one computed
//! before (`t:urlDecodeUni,t:lowercase` after `t:urlDecodeUni`) resumes from the cached prefix.
//!
//! Keys are addresses and node numbers, never request bytes, so they go into a flat,
//! open-addressed table with a multiplicative hash (an attacker cannot choose them), cleared
//! by bumping an epoch number. The tables and buffers of finished transactions are kept in a small per-thread pool
//! ([`TCache::take`], [`TCache::recycle`]) so a new transaction starts with warm capacity.

use std::cell::RefCell;

use crate::ruleset::PipeNode;
use crate::transformations::Transformation;

/// The multiplier of the slot hash.
const K: u64 = 0xf135_7aea_2e62_a9c5;

/// One slot of [`TCache`]'s table: a key (pipeline node, value address and length) and the
/// result, valid while `epoch` is the table's.
#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    epoch: u32,
    node: u32,
    ptr: usize,
    len: usize,
    result: Option<u32>,
}

/// Slots probed per key before an entry is evicted.
const PROBES: usize = 4;
/// The table's initial number of slots (a power of two).
const INITIAL_SLOTS: usize = 1 << 10;
/// Tables larger than this do not go back to the pool (4,096 slots: 128 KiB; a clean request
/// under CRS fills the initial 1,024).
const POOL_MAX_SLOTS: usize = 1 << 12;

/// Cached transformation results.
///
/// The table is open-addressed and direct: a key hashes to a slot and the next
/// [`PROBES`] - 1 ones, compared in full; clearing bumps a epoch number instead of
/// touching the slots. When every probed slot is taken, the table doubles once it is more than
/// half full (rehashing the live entries), else the first probed slot is overwritten: a lost
/// entry only means a transformation is computed again, the answer stays exact.
#[derive(Debug, Default)]
pub(crate) struct TCache {
    slots: Vec<Slot>,
    epoch: u32,
    live: usize,
    arena: Vec<Vec<u8>>,
    /// Per value (slot key [`IDENTITY`]): the transformations known to leave it unchanged, one
    /// bit per [`crate::transformations::Transformation`].
    same: Vec<u64>,
    /// Per arena result: the transformations known to leave it unchanged.
    arena_same: Vec<u64>,
}

thread_local! {
    static POOL: RefCell<Vec<TCache>> = const { RefCell::new(Vec::new()) };
}

/// Caches kept per thread for reuse: two per transaction, for as many transactions as
/// [`crate::transaction`] keeps spares for (at most 8 MiB per thread).
const POOL_MAX: usize = 64;

/// The slot key, in place of a pipeline node, under which a value's index into
/// [`TCache::same`] is kept. Pipelines differ mostly in steps that leave a clean value as it
/// is: `t:lowercase` of an already lower-case value is checked once per value, not once per
/// pipeline it appears in.
const IDENTITY: u32 = u32::MAX;

/// The bit that marks a slot key as one step that changed its input (the transformation's
/// number below it), not a pipeline node (numbered from 0, far below).
const STEP: u32 = 1 << 31;

#[inline(always)]
fn slot_hash(node: u32, ptr: usize, len: usize) -> usize {
    let h = (ptr as u64)
        .wrapping_add(u64::from(node).wrapping_mul(K))
        .wrapping_mul(K)
        ^ (len as u64);
    (h.wrapping_mul(K) >> 20) as usize
}

impl TCache {
    /// An empty cache, from this thread's pool when there is one.
    pub(crate) fn take() -> Self {
        POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default()
    }

    /// Returns `self` to this thread's pool.
    pub(crate) fn recycle(mut self) {
        self.clear();
        if self.slots.len() > POOL_MAX_SLOTS {
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
        if self.live > 0 {
            self.epoch = self.epoch.wrapping_add(1);
            if self.epoch == 0 {
                // Wrapped: no slot may look current.
                self.slots.fill(Slot::default());
                self.epoch = 1;
            }
            self.live = 0;
        }
        self.arena.clear();
        self.arena_same.clear();
        self.same.clear();
    }

    #[inline(always)]
    fn lookup(&self, node: u32, ptr: usize, len: usize) -> Option<Option<u32>> {
        let mask = self.slots.len().wrapping_sub(1);
        let h = slot_hash(node, ptr, len);
        for i in 0..PROBES {
            let s = self.slots.get(h.wrapping_add(i) & mask)?;
            if s.epoch != self.epoch {
                return None;
            }
            if s.node == node && s.ptr == ptr && s.len == len {
                return Some(s.result);
            }
        }
        None
    }

    #[inline]
    fn insert(&mut self, node: u32, ptr: usize, len: usize, result: Option<u32>) {
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); INITIAL_SLOTS];
            self.epoch = 1;
        }
        let entry = Slot {
            epoch: self.epoch,
            node,
            ptr,
            len,
            result,
        };
        if !self.place(entry) {
            if self.live * 2 > self.slots.len() {
                self.grow();
                if self.place(entry) {
                    return;
                }
            }
            // Evict the first probed slot.
            let mask = self.slots.len() - 1;
            if let Some(s) = self.slots.get_mut(slot_hash(node, ptr, len) & mask) {
                *s = entry;
            }
        }
    }

    /// Puts `entry` in a free (or its own) probed slot; false when all are taken.
    #[inline(always)]
    fn place(&mut self, entry: Slot) -> bool {
        let mask = self.slots.len() - 1;
        let h = slot_hash(entry.node, entry.ptr, entry.len);
        let epoch = self.epoch;
        for i in 0..PROBES {
            let Some(s) = self.slots.get_mut(h.wrapping_add(i) & mask) else {
                return false;
            };
            if s.epoch != epoch {
                *s = entry;
                self.live += 1;
                return true;
            }
            if s.node == entry.node && s.ptr == entry.ptr && s.len == entry.len {
                *s = entry;
                return true;
            }
        }
        false
    }

    /// Doubles the table, keeping the live entries.
    fn grow(&mut self) {
        let epoch = self.epoch;
        let size = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        self.live = 0;
        for s in old.into_iter().filter(|s| s.epoch == epoch) {
            // An entry that finds no room in the larger table is dropped (recomputed if needed).
            let _ = self.place(s);
        }
    }

    fn push(&mut self, out: Vec<u8>) -> u32 {
        self.arena.push(out);
        self.arena_same.push(0);
        u32::try_from(self.arena.len() - 1).unwrap_or(u32::MAX)
    }

    /// The result of the pipeline `path` on `input`: `None` when it leaves `input` as it is,
    /// else an index for [`TCache::get`]. `memo`: whether to remember results by address.
    ///
    /// Remembered are: the whole pipeline's result (keyed by its last node); per value and per
    /// arena result, the transformations known to leave it as it is (a bit set, see
    /// [`IDENTITY`]); and each step that changed its input, keyed by the transformation and
    /// the input's address and length. Pipelines differ mostly in steps that leave a clean
    /// value as it is, so such a step is checked once per value, not once per pipeline.
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
        let last = path.last().copied();
        if memo
            && let Some(node) = last
            && let Some(r) = self.lookup(node, ptr, len)
        {
            return r;
        }
        // The transformations known to leave the value itself as it is.
        let mut same = 0u64;
        let mut same_slot = None;
        if memo && let Some(Some(i)) = self.lookup(IDENTITY, ptr, len) {
            same = self.same.get(i as usize).copied().unwrap_or(0);
            same_slot = Some(i);
        }
        let mut learned = false;
        let mut cur: Option<u32> = None;
        for node in path {
            let Some(p) = pipes.get(*node as usize) else {
                continue;
            };
            let bit = 1u64.checked_shl(p.t as u32).unwrap_or(0);
            let known = match cur {
                None => same,
                Some(i) => self.arena_same.get(i as usize).copied().unwrap_or(0),
            };
            if known & bit != 0 {
                continue;
            }
            let src: &[u8] = match cur {
                Some(i) => self.arena.get(i as usize).map_or(input, Vec::as_slice),
                None => input,
            };
            let key = STEP | p.t as u32;
            let (sp, sl) = (src.as_ptr() as usize, src.len());
            if memo && let Some(r) = self.lookup(key, sp, sl) {
                cur = r;
                continue;
            }
            match p.t.apply(src) {
                Some(out) => {
                    let r = Some(self.push(out));
                    if memo {
                        self.insert(key, sp, sl, r);
                    }
                    cur = r;
                }
                None => match cur {
                    None => {
                        same |= bit;
                        learned = true;
                    }
                    Some(i) => {
                        if let Some(m) = self.arena_same.get_mut(i as usize) {
                            *m |= bit;
                        }
                    }
                },
            }
        }
        if memo {
            if learned {
                match same_slot.and_then(|i| self.same.get_mut(i as usize)) {
                    Some(m) => *m = same,
                    None => {
                        self.same.push(same);
                        let i = u32::try_from(self.same.len() - 1).ok();
                        self.insert(IDENTITY, ptr, len, i);
                    }
                }
            }
            if let Some(node) = last {
                self.insert(node, ptr, len, cur);
            }
        }
        cur
    }

    /// The transformations known to leave `input` unchanged (for [`TCache::step`]; only
    /// values whose results are remembered, see [`TCache::run`]'s `memo`).
    pub(crate) fn same_of(&self, input: &[u8]) -> u64 {
        if input.is_empty() {
            return 0;
        }
        match self.lookup(IDENTITY, input.as_ptr() as usize, input.len()) {
            Some(Some(i)) => self.same.get(i as usize).copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// The transformations known to leave result `i` (of [`TCache::step`]) unchanged.
    #[inline]
    pub(crate) fn same_of_result(&self, i: u32) -> u64 {
        self.arena_same.get(i as usize).copied().unwrap_or(0)
    }

    /// Records `same` as the transformations known to leave `input` unchanged.
    pub(crate) fn set_same(&mut self, input: &[u8], same: u64) {
        if input.is_empty() {
            return;
        }
        let (ptr, len) = (input.as_ptr() as usize, input.len());
        match self.lookup(IDENTITY, ptr, len) {
            Some(Some(i)) => {
                if let Some(m) = self.same.get_mut(i as usize) {
                    *m = same;
                }
            }
            _ => {
                self.same.push(same);
                let i = u32::try_from(self.same.len() - 1).ok();
                self.insert(IDENTITY, ptr, len, i);
            }
        }
    }

    /// One step of a pipeline walked by the caller: transformation `t` applied to `src` (a
    /// result of this cache, `None` for `input` itself), without keying anything by address.
    /// `same` holds the transformations known to leave `input` unchanged, `changed` the steps
    /// on this input that changed their source (both the caller's, per value).
    pub(crate) fn step(
        &mut self,
        t: Transformation,
        src: Option<u32>,
        input: &[u8],
        same: &mut u64,
        changed: &mut Vec<(Transformation, Option<u32>, Option<u32>)>,
    ) -> Option<u32> {
        let bit = 1u64.checked_shl(t as u32).unwrap_or(0);
        let known = match src {
            None => *same,
            Some(i) => self.arena_same.get(i as usize).copied().unwrap_or(0),
        };
        if known & bit != 0 {
            return src;
        }
        if let Some(&(_, _, out)) = changed.iter().find(|(ct, cs, _)| *ct == t && *cs == src) {
            return out;
        }
        let from: &[u8] = match src {
            Some(i) => self.arena.get(i as usize).map_or(input, Vec::as_slice),
            None => input,
        };
        match t.apply(from) {
            Some(out) => {
                let r = Some(self.push(out));
                changed.push((t, src, r));
                r
            }
            None => {
                match src {
                    None => *same |= bit,
                    Some(i) => {
                        if let Some(m) = self.arena_same.get_mut(i as usize) {
                            *m |= bit;
                        }
                    }
                }
                src
            }
        }
    }

    /// The bytes for a result of [`TCache::run`].
    pub(crate) fn get<'a>(&'a self, r: Option<u32>, input: &'a [u8]) -> &'a [u8] {
        match r {
            Some(i) => self.arena.get(i as usize).map_or(input, Vec::as_slice),
            None => input,
        }
    }
}
