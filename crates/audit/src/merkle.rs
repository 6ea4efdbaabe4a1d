//! Merkle tree hashing, proofs and proof verification as in RFC 9162 section 2.1.
//!
//! Leaves are `SHA-256(0x00 || payload)`, interior nodes `SHA-256(0x01 || left || right)`, and
//! the tree over `n` leaves splits at the largest power of two smaller than `n`. The
//! [`Frontier`] (a "compact range") keeps one hash per set bit of the tree size, so appending a
//! leaf and computing the root of the tree so far cost O(log n) without storing the leaves;
//! the writer and the verifier both stream through it.

use aws_lc_rs::digest;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

fn finish(ctx: digest::Context) -> Hash {
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// `SHA-256(0x00 || payload)`.
#[must_use]
pub fn leaf_hash(payload: &[u8]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&[0x00]);
    ctx.update(payload);
    finish(ctx)
}

/// `SHA-256(0x01 || left || right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    let d = digest::digest(&digest::SHA256, &buf);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The root of the empty tree: `SHA-256()`.
#[must_use]
pub fn empty_root() -> Hash {
    finish(digest::Context::new(&digest::SHA256))
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Roots of the perfect subtrees along the right edge of a growing tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One hash per set bit of `size`, largest subtree first.
    stack: Vec<Hash>,
}

impl Frontier {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut n = self.size;
        while n & 1 == 1 {
            match self.stack.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break,
            }
            n >>= 1;
        }
        self.stack.push(h);
        self.size += 1;
    }

    /// The Merkle tree hash of the leaves so far.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// `MTH(D[n])` over leaf hashes.
#[must_use]
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::new();
    for l in leaves {
        f.push(*l);
    }
    f.root()
}

fn sub(leaves: &[Hash], from: u64, to: u64) -> &[Hash] {
    let from = usize::try_from(from).unwrap_or(usize::MAX);
    let to = usize::try_from(to).unwrap_or(usize::MAX);
    leaves.get(from..to).unwrap_or_default()
}

/// Inclusion proof `PATH(index, D[size])` (RFC 9162 2.1.3.1) over the first `size` leaves.
///
/// # Errors
/// If `index >= size` or `size` exceeds the leaves given.
pub fn inclusion_proof(leaves: &[Hash], index: u64, size: u64) -> Result<Vec<Hash>, String> {
    if index >= size || size > leaves.len() as u64 {
        return Err(format!(
            "leaf {index} is not in a tree of size {size} (log has {})",
            leaves.len()
        ));
    }
    let mut out = Vec::new();
    path(sub(leaves, 0, size), index, &mut out);
    Ok(out)
}

fn path(d: &[Hash], m: u64, out: &mut Vec<Hash>) {
    let n = d.len() as u64;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(sub(d, 0, k), m, out);
        out.push(root_of(sub(d, k, n)));
    } else {
        path(sub(d, k, n), m - k, out);
        out.push(root_of(sub(d, 0, k)));
    }
}

/// Consistency proof `PROOF(old, D[new])` (RFC 9162 2.1.4.1).
///
/// # Errors
/// If `old > new` or `new` exceeds the leaves given.
pub fn consistency_proof(leaves: &[Hash], old: u64, new: u64) -> Result<Vec<Hash>, String> {
    if old > new || new > leaves.len() as u64 {
        return Err(format!(
            "no consistency proof from size {old} to size {new} (log has {})",
            leaves.len()
        ));
    }
    let mut out = Vec::new();
    if old > 0 && old < new {
        subproof(sub(leaves, 0, new), old, true, &mut out);
    }
    Ok(out)
}

fn subproof(d: &[Hash], m: u64, complete: bool, out: &mut Vec<Hash>) {
    let n = d.len() as u64;
    if m == n {
        if !complete {
            out.push(root_of(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(sub(d, 0, k), m, complete, out);
        out.push(root_of(sub(d, k, n)));
    } else {
        subproof(sub(d, k, n), m - k, false, out);
        out.push(root_of(sub(d, 0, k)));
    }
}

/// Verifies an inclusion proof (RFC 9162 2.1.3.2).
#[must_use]
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && &r == root
}

/// Verifies a consistency proof (RFC 9162 2.1.4.2).
#[must_use]
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut it = path.iter();
    let Some(first) = it.next() else {
        return false;
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in it {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    &fr == old_root && &sr == new_root && sn == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    /// Plain recursive MTH, straight from the RFC's definition.
    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    #[test]
    fn empty_and_known_roots() {
        assert_eq!(
            hex::encode(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 6962 / 9162 test vector: leaf hash of the empty string.
        assert_eq!(
            hex::encode(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn frontier_matches_recursive_definition() {
        let l = leaves(70);
        let mut f = Frontier::new();
        for i in 0..=l.len() {
            assert_eq!(f.root(), mth(&l[..i]), "size {i}");
            if let Some(x) = l.get(i) {
                f.push(*x);
            }
        }
    }

    #[test]
    fn proofs_verify_for_all_small_trees() {
        let l = leaves(33);
        for n in 1..=33u64 {
            let root = mth(&l[..n as usize]);
            for i in 0..n {
                let p = inclusion_proof(&l, i, n).unwrap();
                assert!(verify_inclusion(&l[i as usize], i, n, &p, &root), "{i}/{n}");
                assert!(!verify_inclusion(&l[0], i, n, &p, &root) || i == 0);
            }
            for m in 0..=n {
                let old = mth(&l[..m as usize]);
                let p = consistency_proof(&l, m, n).unwrap();
                assert!(verify_consistency(m, n, &old, &root, &p), "{m}->{n}");
                if m > 0 && m < n {
                    assert!(!verify_consistency(m, n, &l[0], &root, &p) || m == 1);
                }
            }
        }
        assert!(inclusion_proof(&l, 5, 5).is_err());
        assert!(consistency_proof(&l, 6, 5).is_err());
    }
}
