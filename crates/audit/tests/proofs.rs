//! Inclusion and consistency proofs, checked by an independent RFC 9162 verifier written
//! here from the RFC's recursive definitions of PATH and SUBPROOF (not the crate's iterative
//! algorithms), with leaf hashes recomputed from the raw payloads and checkpoint signatures
//! checked directly with Ed25519.

mod common;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rampart_audit::proof::{prove_consistency, prove_inclusion};
use rampart_audit::reader::scan;

type H = [u8; 32];

fn sha(parts: &[&[u8]]) -> H {
    let all: Vec<u8> = parts.concat();
    digest(&SHA256, &all).as_ref().try_into().unwrap()
}

fn node(l: &H, r: &H) -> H {
    sha(&[&[1], l, r])
}

fn k_of(n: u64) -> u64 {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Root implied by an inclusion path, following PATH(m, D[n]) recursively.
fn root_from_path(m: u64, n: u64, leaf: H, path: &[H]) -> Option<H> {
    if n == 1 {
        return (m == 0 && path.is_empty()).then_some(leaf);
    }
    let k = k_of(n);
    let (sib, rest) = path.split_last()?;
    if m < k {
        Some(node(&root_from_path(m, k, leaf, rest)?, sib))
    } else {
        Some(node(sib, &root_from_path(m - k, n - k, leaf, rest)?))
    }
}

/// (old root, new root) implied by SUBPROOF(m, D[n], b), given the old root for b = true.
fn from_subproof(m: u64, n: u64, b: bool, proof: &[H], old_root: &H) -> Option<(H, H)> {
    if m == n {
        return if b {
            proof.is_empty().then_some((*old_root, *old_root))
        } else {
            match proof {
                [x] => Some((*x, *x)),
                _ => None,
            }
        };
    }
    let k = k_of(n);
    let (sib, rest) = proof.split_last()?;
    if m <= k {
        let (o, l) = from_subproof(m, k, b, rest, old_root)?;
        Some((o, node(&l, sib)))
    } else {
        let (o, r) = from_subproof(m - k, n - k, false, rest, old_root)?;
        Some((node(sib, &o), node(sib, &r)))
    }
}

fn consistent(m: u64, n: u64, old: &H, new: &H, proof: &[H]) -> bool {
    if m == n {
        return proof.is_empty() && old == new;
    }
    if m == 0 {
        return true;
    }
    from_subproof(m, n, true, proof, old) == Some((*old, *new))
}

fn hex32(s: &str) -> H {
    let v: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

fn hashes(v: &serde_json::Value) -> Vec<H> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| hex32(x.as_str().unwrap()))
        .collect()
}

/// Parses and checks a checkpoint note with the verifier key string, independently.
fn open_note(note: &str, vkey: &str) -> (u64, H) {
    let parts: Vec<&str> = vkey.splitn(3, '+').collect();
    let raw = B64.decode(parts[2]).unwrap();
    assert_eq!(raw[0], 1);
    let (body, sigs) = note.split_once("\n\n").unwrap();
    let body = format!("{body}\n");
    let sig_line = sigs.lines().next().unwrap();
    let sig = B64.decode(sig_line.rsplit(' ').next().unwrap()).unwrap();
    UnparsedPublicKey::new(&ED25519, &raw[1..])
        .verify(body.as_bytes(), &sig[4..])
        .unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], parts[0]);
    (
        lines[1].parse().unwrap(),
        B64.decode(lines[2]).unwrap().try_into().unwrap(),
    )
}

#[tokio::test]
async fn inclusion_and_consistency_proofs_verify_independently() {
    let d = tempfile::tempdir().unwrap();
    let notes = common::build(d.path(), 1000, 137).await;
    let key = rampart_audit::verifier_key(d.path()).unwrap();
    let vkey = key.to_string();
    let mut leaves = Vec::new();
    scan(d.path(), 0, |e| {
        leaves.push(sha(&[&[0], e.payload]));
        Ok(true)
    })
    .unwrap();
    assert_eq!(leaves.len(), 1000);

    for id in [0u64, 1, 2, 136, 137, 511, 512, 513, 998, 999] {
        let p = prove_inclusion(d.path(), id, &key).unwrap().to_json();
        let (size, root) = open_note(p["checkpoint"].as_str().unwrap(), &vkey);
        assert_eq!(size, 1000);
        assert_eq!(p["tree_size"], 1000);
        assert_eq!(hex32(p["leaf_hash"].as_str().unwrap()), leaves[id as usize]);
        let path = hashes(&p["path"]);
        assert_eq!(
            root_from_path(id, size, leaves[id as usize], &path),
            Some(root),
            "record {id}"
        );
        // A wrong leaf or a damaged path does not verify.
        assert_ne!(
            root_from_path(id, size, leaves[(id as usize + 1) % 1000], &path),
            Some(root)
        );
        let mut bad = path.clone();
        bad[0][0] ^= 1;
        assert_ne!(
            root_from_path(id, size, leaves[id as usize], &bad),
            Some(root)
        );
    }

    // Every saved checkpoint is consistent with the newest.
    assert!(notes.len() >= 7);
    for note in &notes {
        let (old_size, old_root) = open_note(note, &vkey);
        let p = prove_consistency(d.path(), old_size, &key)
            .unwrap()
            .to_json();
        let (new_size, new_root) = open_note(p["checkpoint"].as_str().unwrap(), &vkey);
        assert_eq!(hex32(p["old_root"].as_str().unwrap()), old_root);
        let path = hashes(&p["path"]);
        assert!(
            consistent(old_size, new_size, &old_root, &new_root, &path),
            "{old_size} -> {new_size}"
        );
        if old_size < new_size && !path.is_empty() {
            let mut bad = path.clone();
            let last = bad.len() - 1;
            bad[last][5] ^= 1;
            assert!(!consistent(old_size, new_size, &old_root, &new_root, &bad));
            assert!(!consistent(
                old_size, new_size, &leaves[0], &new_root, &path
            ));
        }
    }
    // Also for sizes that are not checkpoints, against roots computed here.
    for old in [1u64, 2, 3, 7, 8, 9, 100, 512, 999] {
        let p = prove_consistency(d.path(), old, &key).unwrap().to_json();
        let mut stack: Vec<H> = leaves[..old as usize].to_vec();
        // Independent MTH by recursion.
        fn mth(d: &[H]) -> H {
            if d.len() == 1 {
                return d[0];
            }
            let k = k_of(d.len() as u64) as usize;
            node(&mth(&d[..k]), &mth(&d[k..]))
        }
        let old_root = mth(&stack);
        stack.clear();
        let new_root = mth(&leaves);
        assert_eq!(hex32(p["old_root"].as_str().unwrap()), old_root);
        assert!(
            consistent(old, 1000, &old_root, &new_root, &hashes(&p["path"])),
            "{old}"
        );
    }
}

#[tokio::test]
async fn proofs_need_a_covering_checkpoint() {
    let d = tempfile::tempdir().unwrap();
    common::build(d.path(), 10, 100).await;
    let key = rampart_audit::verifier_key(d.path()).unwrap();
    assert!(prove_inclusion(d.path(), 10, &key).is_err());
    assert!(prove_consistency(d.path(), 11, &key).is_err());
    assert!(prove_inclusion(d.path(), 9, &key).unwrap().verify());
}
