//! Inclusion and consistency proofs against the log's signed checkpoints.
//!
//! Proofs are built from the leaf hashes on disk (one pass over the log) and checked against
//! the newest checkpoint that `key` signed, before they are handed out. Their JSON form
//! carries everything an independent RFC 9162 verifier needs: the leaf hash or the old root,
//! the tree size, the audit path in hex, and the signed checkpoint note.

use std::path::Path;

use serde_json::{Value, json};

use crate::checkpoint::{self, Checkpoint};
use crate::error::{ErrorKind, Result};
use crate::hex;
use crate::keys::VerifierKey;
use crate::merkle::{self, Hash};
use crate::reader;

/// A proof that record `index` is in the tree of `checkpoint.size` records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// Leaf index (= record id).
    pub index: u64,
    /// Leaf hash of the record.
    pub leaf_hash: Hash,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: Checkpoint,
    /// Its note text.
    pub note: String,
    /// The audit path, bottom up.
    pub path: Vec<Hash>,
}

/// A proof that the tree of `old_size` records is a prefix of the checkpoint's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub old_size: u64,
    /// Root of the older tree (recomputed from the log).
    pub old_root: Hash,
    /// The newer, signed checkpoint.
    pub checkpoint: Checkpoint,
    /// Its note text.
    pub note: String,
    /// The consistency path.
    pub path: Vec<Hash>,
}

fn hexes(v: &[Hash]) -> Vec<String> {
    v.iter().map(|h| hex::encode(h)).collect()
}

impl InclusionProof {
    /// JSON form (hashes in hex).
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "type": "inclusion",
            "index": self.index,
            "leaf_hash": hex::encode(&self.leaf_hash),
            "tree_size": self.checkpoint.size,
            "root_hash": hex::encode(&self.checkpoint.root),
            "path": hexes(&self.path),
            "checkpoint": self.note,
        })
    }

    /// Checks the proof with the RFC 9162 algorithm.
    #[must_use]
    pub fn verify(&self) -> bool {
        merkle::verify_inclusion(
            &self.leaf_hash,
            self.index,
            self.checkpoint.size,
            &self.path,
            &self.checkpoint.root,
        )
    }
}

impl ConsistencyProof {
    /// JSON form (hashes in hex).
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "type": "consistency",
            "old_size": self.old_size,
            "old_root": hex::encode(&self.old_root),
            "new_size": self.checkpoint.size,
            "new_root": hex::encode(&self.checkpoint.root),
            "path": hexes(&self.path),
            "checkpoint": self.note,
        })
    }

    /// Checks the proof with the RFC 9162 algorithm.
    #[must_use]
    pub fn verify(&self) -> bool {
        merkle::verify_consistency(
            self.old_size,
            self.checkpoint.size,
            &self.old_root,
            &self.checkpoint.root,
            &self.path,
        )
    }
}

fn newest(dir: &Path, key: &VerifierKey) -> Result<(Checkpoint, String)> {
    checkpoint::newest_valid(dir, key)?.ok_or_else(|| {
        ErrorKind::NotCovered {
            what: "the log".into(),
            covered: 0,
        }
        .into()
    })
}

fn check_root(leaves: &[Hash], cp: &Checkpoint) -> Result<()> {
    let n = usize::try_from(cp.size).unwrap_or(usize::MAX);
    let root = merkle::root_of(leaves.get(..n).unwrap_or(leaves));
    if leaves.len() < n || root != cp.root {
        return Err(ErrorKind::Proof {
            reason: format!(
                "the log does not match its checkpoint of size {} (run rampart audit verify)",
                cp.size
            ),
        }
        .into());
    }
    Ok(())
}

/// Inclusion proof of record `id` against the newest checkpoint signed by `key`.
///
/// # Errors
/// [`ErrorKind::NotCovered`] if no checkpoint covers `id` yet; [`ErrorKind::Proof`] if the
/// log does not match the checkpoint.
pub fn prove_inclusion(dir: &Path, id: u64, key: &VerifierKey) -> Result<InclusionProof> {
    let (cp, note) = newest(dir, key)?;
    if id >= cp.size {
        return Err(ErrorKind::NotCovered {
            what: format!("record {id}"),
            covered: cp.size,
        }
        .into());
    }
    let leaves = reader::leaf_hashes(dir)?;
    check_root(&leaves, &cp)?;
    let path = merkle::inclusion_proof(&leaves, id, cp.size)
        .map_err(|reason| ErrorKind::Proof { reason })?;
    let leaf_hash = leaves
        .get(usize::try_from(id).unwrap_or(usize::MAX))
        .copied()
        .unwrap_or_default();
    let proof = InclusionProof {
        index: id,
        leaf_hash,
        checkpoint: cp,
        note,
        path,
    };
    if !proof.verify() {
        return Err(ErrorKind::Proof {
            reason: "the computed proof does not verify".into(),
        }
        .into());
    }
    Ok(proof)
}

/// Consistency proof from the tree of `old_size` records to the newest checkpoint signed by
/// `key`.
///
/// # Errors
/// [`ErrorKind::NotCovered`] if `old_size` exceeds the newest checkpoint.
pub fn prove_consistency(dir: &Path, old_size: u64, key: &VerifierKey) -> Result<ConsistencyProof> {
    let (cp, note) = newest(dir, key)?;
    if old_size > cp.size {
        return Err(ErrorKind::NotCovered {
            what: format!("size {old_size}"),
            covered: cp.size,
        }
        .into());
    }
    let leaves = reader::leaf_hashes(dir)?;
    check_root(&leaves, &cp)?;
    let path = merkle::consistency_proof(&leaves, old_size, cp.size)
        .map_err(|reason| ErrorKind::Proof { reason })?;
    let old_root = merkle::root_of(
        leaves
            .get(..usize::try_from(old_size).unwrap_or(0))
            .unwrap_or_default(),
    );
    let proof = ConsistencyProof {
        old_size,
        old_root,
        checkpoint: cp,
        note,
        path,
    };
    if !proof.verify() {
        return Err(ErrorKind::Proof {
            reason: "the computed proof does not verify".into(),
        }
        .into());
    }
    Ok(proof)
}
