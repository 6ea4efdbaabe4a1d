//! The per-transaction transformation cache.
//!
//! Pipelines are interned at load as a prefix tree ([`PipeNode`]); a value's result for a node
//! is cached under (node, value address, value length). Only values whose storage does not
//! change during the transaction are cached (request and response data); the cache is cleared
//! whenever the transaction's data is mutated. A pipeline sharing a prefix with one computed
//! before (`t:urlDecodeUni,t:lowercase` after `t:urlDecodeUni`) resumes from the cached prefix.

use std::collections::HashMap;

use crate::ruleset::PipeNode;

/// Cached transformation results.
#[derive(Debug, Default)]
pub(crate) struct TCache {
    map: HashMap<(u32, usize, usize), Option<u32>>,
    arena: Vec<Vec<u8>>,
}

impl TCache {
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.arena.clear();
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
                self.arena.push(out);
                cur = Some(u32::try_from(self.arena.len() - 1).unwrap_or(u32::MAX));
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
