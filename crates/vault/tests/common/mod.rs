//! The vault suite every storage backend runs (`vault_suite!`), and helpers shared by the test
//! files: a [`Target`] names a store that can be closed and reopened (a "restart").
//!
//! Each case panics with a message saying what went wrong.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_storage::conformance::{drop_table, postgres_url, unique_table};
use rampart_storage::{Backend, PostgresBackend, PostgresOptions, RedbBackend};
use rampart_vault::shamir::{EncodedShare, Share};
use rampart_vault::store::IdPage;
use rampart_vault::{
    Attributes, Barrier, BarrierTxn, DeletionInfo, InitMethod, ObjectKind, VaultError,
    VersionedStore,
};
use zeroize::Zeroizing;

/// Where a test's store lives.
#[derive(Debug, Clone)]
pub enum Target {
    /// A redb file.
    Redb(PathBuf),
    /// A PostgreSQL table.
    Postgres(String),
}

impl Target {
    /// Opens (or reopens) the store.
    pub async fn open(&self) -> Arc<dyn Backend> {
        match self {
            Self::Redb(path) => Arc::new(RedbBackend::open(path).await.unwrap()),
            Self::Postgres(table) => {
                let options = PostgresOptions {
                    table: table.clone(),
                    pool_size: 4,
                };
                Arc::new(
                    PostgresBackend::connect(&postgres_url(), options)
                        .await
                        .unwrap_or_else(|e| {
                            panic!("PostgreSQL is required (set RAMPART_TEST_POSTGRES_URL): {e}")
                        }),
                )
            }
        }
    }

    /// A fresh redb target in `dir`.
    pub fn redb(dir: &Path) -> Self {
        Self::Redb(dir.join("kv.redb"))
    }

    /// A fresh PostgreSQL table (dropped first, in case a killed run left it).
    pub async fn postgres() -> Self {
        let table = unique_table("vault");
        drop_table(&postgres_url(), &table)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL is required: {e}"));
        Self::Postgres(table)
    }

    /// Removes what the target created (PostgreSQL table).
    pub async fn cleanup(&self) {
        if let Self::Postgres(table) = self {
            drop_table(&postgres_url(), table).await.unwrap();
        }
    }
}

/// A test's context: its store and a private directory (for key files).
#[derive(Debug)]
pub struct Ctx {
    pub target: Target,
    pub dir: tempfile::TempDir,
}

impl Ctx {
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("vault.key")
    }

    /// A new barrier over a newly opened store, initialized with the key file (unsealed).
    pub async fn init_key_file(&self) -> Arc<Barrier> {
        let barrier = Arc::new(Barrier::new(self.target.open().await));
        barrier
            .init(InitMethod::KeyFile(self.key_file()))
            .await
            .unwrap();
        barrier
    }
}

/// Defines one `#[tokio::test]` per case, each calling `$run(|ctx| async { case(&ctx).await })`.
#[macro_export]
macro_rules! vault_suite {
    ($run:path) => {
        $crate::vault_suite!(@cases $run;
            barrier_round_trip,
            swapped_and_moved_records_are_detected,
            tampered_records_are_detected,
            sealed_refuses_every_data_operation,
            key_file_unseal_survives_restart,
            shamir_any_threshold_shares_unseal,
            shamir_refuses_bad_duplicate_and_foreign_shares,
            fewer_shares_are_refused_by_the_verification_tag,
            root_key_rotation_rewraps_and_old_data_stays_readable,
            a_second_process_sees_a_rotation,
            versioned_store_lifecycle,
            versioned_store_paging,
            concurrent_writers_keep_the_latest_pointer_consistent,
            reads_follow_every_change,
        );
    };
    (@cases $run:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $run(|ctx: ::std::sync::Arc<common::Ctx>| async move {
                    common::$case(&ctx).await;
                })
                .await;
            }
        )*
    };
}

fn sealed<T: std::fmt::Debug>(r: Result<T, VaultError>, op: &str) {
    assert!(
        matches!(r, Err(VaultError::Sealed)),
        "{op} must fail with Sealed, got {r:?}"
    );
}

fn integrity<T: std::fmt::Debug>(r: Result<T, VaultError>, what: &str) {
    assert!(
        matches!(r, Err(VaultError::Integrity { .. })),
        "{what}: expected an integrity error, got {r:?}"
    );
}

fn raw_key(key: &str) -> Vec<u8> {
    format!("vault/data/{key}").into_bytes()
}

pub async fn barrier_round_trip(ctx: &Ctx) {
    let b = ctx.init_key_file().await;
    b.put("a/one", b"first").await.unwrap();
    b.put("a/two", b"").await.unwrap();
    b.put("b/three", &[0u8, 255, 1, 254]).await.unwrap();
    assert_eq!(b.get("a/one").await.unwrap().unwrap().as_slice(), b"first");
    assert_eq!(b.get("a/two").await.unwrap().unwrap().as_slice(), b"");
    assert_eq!(
        b.get("b/three").await.unwrap().unwrap().as_slice(),
        &[0u8, 255, 1, 254]
    );
    assert!(b.get("missing").await.unwrap().is_none());
    b.put("a/one", b"second").await.unwrap();
    assert_eq!(b.get("a/one").await.unwrap().unwrap().as_slice(), b"second");

    // Values are not stored in the clear.
    let raw = b.backend().get(&raw_key("a/one")).await.unwrap().unwrap();
    assert!(!raw.windows(6).any(|w| w == b"second"));

    let page = b.list("a/", None, 10).await.unwrap();
    assert_eq!(page.keys, vec!["a/one", "a/two"]);
    assert_eq!(page.next, None);
    let page = b.list("", None, 1).await.unwrap();
    assert_eq!(page.keys, vec!["a/one"]);
    let page = b.list("", page.next.as_deref(), 5).await.unwrap();
    assert_eq!(page.keys, vec!["a/two", "b/three"]);

    // Compare-and-swap through the barrier.
    let v = b.get_versioned("a/one").await.unwrap().unwrap();
    assert!(
        b.commit(
            BarrierTxn::new()
                .require("a/one", Some(&v.token))
                .put("a/one", b"third")
        )
        .await
        .unwrap()
    );
    assert!(
        !b.commit(
            BarrierTxn::new()
                .require("a/one", Some(&v.token))
                .put("a/one", b"lost")
        )
        .await
        .unwrap()
    );
    assert_eq!(b.get("a/one").await.unwrap().unwrap().as_slice(), b"third");
    assert!(
        b.commit(
            BarrierTxn::new()
                .require_absent("c")
                .put("c", b"new")
                .delete("a/two")
        )
        .await
        .unwrap()
    );
    assert!(b.get("a/two").await.unwrap().is_none());
    assert!(b.delete("c").await.unwrap());
    assert!(!b.delete("c").await.unwrap());
    assert!(matches!(
        b.put("", b"x").await,
        Err(VaultError::InvalidKey { .. })
    ));
    assert!(matches!(
        b.put(&"k".repeat(2000), b"x").await,
        Err(VaultError::InvalidKey { .. })
    ));
    ctx.target.cleanup().await;
}

pub async fn swapped_and_moved_records_are_detected(ctx: &Ctx) {
    let b = ctx.init_key_file().await;
    b.put("x", b"value of x").await.unwrap();
    b.put("y", b"value of y").await.unwrap();
    let store = b.backend().clone();
    let rx = store.get(&raw_key("x")).await.unwrap().unwrap();
    let ry = store.get(&raw_key("y")).await.unwrap().unwrap();
    // Swap.
    store.put(&raw_key("x"), &ry).await.unwrap();
    store.put(&raw_key("y"), &rx).await.unwrap();
    integrity(b.get("x").await, "swapped x");
    integrity(b.get("y").await, "swapped y");
    // Move (copy to a new path).
    store.put(&raw_key("z"), &rx).await.unwrap();
    integrity(b.get("z").await, "moved record");
    // The error names the path and says why.
    let err = b.get("z").await.unwrap_err().to_string();
    assert!(
        err.contains("vault/data/z") && err.contains("integrity"),
        "{err}"
    );
    // Put back: readable again.
    store.put(&raw_key("x"), &rx).await.unwrap();
    assert_eq!(b.get("x").await.unwrap().unwrap().as_slice(), b"value of x");
    // The system records are not barrier records and cannot be planted as one.
    let sys = store.get(b"vault/sys/keyring").await.unwrap().unwrap();
    store.put(&raw_key("sys"), &sys).await.unwrap();
    assert!(b.get("sys").await.is_err());
    ctx.target.cleanup().await;
}

pub async fn tampered_records_are_detected(ctx: &Ctx) {
    let b = ctx.init_key_file().await;
    b.put("t", b"tamper with me").await.unwrap();
    let store = b.backend().clone();
    let good = store.get(&raw_key("t")).await.unwrap().unwrap();
    let last = good.len() - 1;
    for (what, pos) in [
        ("ciphertext", last - 20),
        ("tag", last),
        ("wrapped key", 30),
        ("nonce", 70),
    ] {
        let mut bad = good.clone();
        bad[pos] ^= 0x80;
        store.put(&raw_key("t"), &bad).await.unwrap();
        integrity(b.get("t").await, what);
    }
    store.put(&raw_key("t"), &good[..40]).await.unwrap();
    integrity(b.get("t").await, "truncated");
    store.put(&raw_key("t"), b"").await.unwrap();
    integrity(b.get("t").await, "empty");
    let mut bad = good.clone();
    bad[0] = 9;
    store.put(&raw_key("t"), &bad).await.unwrap();
    assert!(matches!(
        b.get("t").await,
        Err(VaultError::UnsupportedFormat { version: 9, .. })
    ));
    let mut bad = good.clone();
    bad[4] = 77; // generation 77
    store.put(&raw_key("t"), &bad).await.unwrap();
    assert!(matches!(
        b.get("t").await,
        Err(VaultError::UnknownKeyGeneration { generation: 77, .. })
    ));
    store.put(&raw_key("t"), &good).await.unwrap();
    assert_eq!(
        b.get("t").await.unwrap().unwrap().as_slice(),
        b"tamper with me"
    );
    ctx.target.cleanup().await;
}

async fn assert_all_sealed(b: &Arc<Barrier>) {
    sealed(b.get("k").await, "get");
    sealed(b.get_versioned("k").await, "get_versioned");
    sealed(b.put("k", b"v").await, "put");
    sealed(b.delete("k").await, "delete");
    sealed(b.list("", None, 10).await, "list");
    sealed(b.commit(BarrierTxn::new().put("k", b"v")).await, "commit");
    sealed(b.rotate_root_key().await, "rotate_root_key");
    sealed(b.rewrap().await, "rewrap");
    sealed(b.retire_unused_root_keys().await, "retire_unused_root_keys");
    let s = VersionedStore::new(b.clone());
    let kind = ObjectKind::Secret;
    sealed(
        s.create_version("v", kind, "n", b"x", Attributes::default())
            .await,
        "create_version",
    );
    sealed(s.get_version("v", kind, "n", None).await, "get_version");
    sealed(s.meta("v", kind, "n").await, "meta");
    sealed(s.list_names("v", kind, false, None, 10).await, "list_names");
    sealed(
        s.list_versions("v", kind, "n", None, 10).await,
        "list_versions",
    );
    sealed(
        s.update_attributes("v", kind, "n", None, |_| {}).await,
        "update_attributes",
    );
    let info = DeletionInfo {
        deleted_on: 1,
        scheduled_purge: 2,
    };
    sealed(s.mark_deleted("v", kind, "n", info).await, "mark_deleted");
    sealed(s.recover("v", kind, "n").await, "recover");
    sealed(s.purge("v", kind, "n").await, "purge");
    sealed(s.get_deleted("v", kind, "n").await, "get_deleted");
}

pub async fn sealed_refuses_every_data_operation(ctx: &Ctx) {
    // Not yet initialized: sealed.
    let fresh = Arc::new(Barrier::new(ctx.target.open().await));
    assert!(fresh.is_sealed());
    let status = fresh.status().await.unwrap();
    assert!(!status.initialized && status.sealed, "{status:?}");
    assert_all_sealed(&fresh).await;
    assert!(matches!(
        fresh.unseal_with_key_file(ctx.key_file()).await,
        Err(VaultError::NotInitialized)
    ));
    drop(fresh);

    let b = ctx.init_key_file().await;
    b.put("k", b"kept").await.unwrap();
    b.seal();
    assert!(b.is_sealed());
    assert_all_sealed(&b).await;
    let status = b.status().await.unwrap();
    assert!(status.initialized && status.sealed, "{status:?}");
    assert_eq!(status.method, Some("key-file"));
    assert_eq!(status.root_key_generation, None);
    // Sealing lost nothing.
    b.unseal_with_key_file(ctx.key_file()).await.unwrap();
    assert_eq!(b.get("k").await.unwrap().unwrap().as_slice(), b"kept");
    // A second init is refused.
    assert!(matches!(
        b.init(InitMethod::Shamir {
            shares: 3,
            threshold: 2
        })
        .await,
        Err(VaultError::AlreadyInitialized)
    ));
    ctx.target.cleanup().await;
}

pub async fn key_file_unseal_survives_restart(ctx: &Ctx) {
    let b = ctx.init_key_file().await;
    let s = VersionedStore::new(b.clone());
    b.put("restart/k", b"durable").await.unwrap();
    let v = s
        .create_version(
            "vault1",
            ObjectKind::Secret,
            "db-password",
            b"hunter2",
            Attributes::default(),
        )
        .await
        .unwrap();
    drop(s);
    drop(b); // "process exit": closes the store
    let b = Arc::new(Barrier::new(ctx.target.open().await));
    assert!(b.is_sealed());
    sealed(b.get("restart/k").await, "get after restart");
    // Another key file does not open it.
    let other = ctx.dir.path().join("other.key");
    rampart_vault::seal::create_key_file(&other).unwrap();
    assert!(matches!(
        b.unseal_with_key_file(&other).await,
        Err(VaultError::WrongUnsealKey)
    ));
    assert!(matches!(
        b.unseal_with_key_file(ctx.dir.path().join("missing.key"))
            .await,
        Err(VaultError::KeyFile { .. })
    ));
    assert!(matches!(
        b.submit_unseal_share("rvs1-AAAA").await,
        Err(VaultError::SealMethodMismatch {
            configured: "key-file",
            given: "shamir"
        })
    ));
    assert!(b.is_sealed());
    b.unseal_with_key_file(ctx.key_file()).await.unwrap();
    assert_eq!(
        b.get("restart/k").await.unwrap().unwrap().as_slice(),
        b"durable"
    );
    let s = VersionedStore::new(b.clone());
    let got = s
        .get_version("vault1", ObjectKind::Secret, "db-password", None)
        .await
        .unwrap();
    assert_eq!(got.version, v.version);
    assert_eq!(got.value.as_slice(), b"hunter2");
    ctx.target.cleanup().await;
}

async fn init_shamir(
    ctx: &Ctx,
    shares: u8,
    threshold: u8,
) -> (Arc<Barrier>, Vec<Zeroizing<String>>) {
    let b = Arc::new(Barrier::new(ctx.target.open().await));
    let out = b
        .init(InitMethod::Shamir { shares, threshold })
        .await
        .unwrap();
    assert_eq!(out.shares.len(), usize::from(shares));
    let debug = format!("{out:?}");
    assert!(!debug.contains("rvs1-"), "{debug}");
    (b, out.shares)
}

pub async fn shamir_any_threshold_shares_unseal(ctx: &Ctx) {
    let (b, shares) = init_shamir(ctx, 5, 3).await;
    b.put("shamir/k", b"behind shares").await.unwrap();
    b.seal();
    for pick in [[0usize, 1, 2], [4, 2, 0], [1, 3, 4], [3, 0, 4]] {
        assert!(b.is_sealed());
        for (n, &i) in pick.iter().enumerate() {
            let progress = b.submit_unseal_share(&shares[i]).await.unwrap();
            assert_eq!(progress.threshold, 3);
            if n < 2 {
                assert!(progress.sealed, "sealed after {} shares", n + 1);
                assert_eq!(usize::from(progress.progress), n + 1);
                assert_eq!(b.status().await.unwrap().progress, progress.progress);
                sealed(b.get("shamir/k").await, "get with too few shares");
            } else {
                assert!(!progress.sealed, "{pick:?} must unseal");
            }
        }
        assert_eq!(
            b.get("shamir/k").await.unwrap().unwrap().as_slice(),
            b"behind shares"
        );
        b.seal();
    }
    // Progress can be reset.
    b.submit_unseal_share(&shares[0]).await.unwrap();
    b.submit_unseal_share(&shares[1]).await.unwrap();
    b.reset_unseal_progress();
    assert_eq!(b.status().await.unwrap().progress, 0);
    let p = b.submit_unseal_share(&shares[2]).await.unwrap();
    assert!(p.sealed && p.progress == 1);
    b.reset_unseal_progress();
    // Restart: a new process unseals with shares.
    drop(b);
    let b = Arc::new(Barrier::new(ctx.target.open().await));
    let status = b.status().await.unwrap();
    assert_eq!(
        (status.method, status.shares, status.threshold),
        (Some("shamir"), Some(5), Some(3))
    );
    for i in [4, 1, 2] {
        b.submit_unseal_share(&shares[i]).await.unwrap();
    }
    assert!(!b.is_sealed());
    assert_eq!(
        b.get("shamir/k").await.unwrap().unwrap().as_slice(),
        b"behind shares"
    );
    ctx.target.cleanup().await;
}

pub async fn shamir_refuses_bad_duplicate_and_foreign_shares(ctx: &Ctx) {
    let (b, shares) = init_shamir(ctx, 3, 2).await;
    b.seal();
    // Duplicate index: refused, progress kept.
    assert_eq!(b.submit_unseal_share(&shares[1]).await.unwrap().progress, 1);
    assert!(matches!(
        b.submit_unseal_share(&shares[1]).await,
        Err(VaultError::DuplicateShare { index: 2 })
    ));
    assert_eq!(b.status().await.unwrap().progress, 1);
    // A typo: refused by the checksum, progress kept.
    let mut typo = shares[0].to_string();
    let pos = typo.len() - 10;
    let c = if typo.as_bytes()[pos] == b'x' {
        "y"
    } else {
        "x"
    };
    typo.replace_range(pos..pos + 1, c);
    assert!(matches!(
        b.submit_unseal_share(&typo).await,
        Err(VaultError::InvalidShare { .. })
    ));
    assert!(matches!(
        b.submit_unseal_share("not a share").await,
        Err(VaultError::InvalidShare { .. })
    ));
    assert_eq!(b.status().await.unwrap().progress, 1);
    // A share of another init: refused.
    let mine = EncodedShare::decode(&shares[0]).unwrap();
    let foreign = EncodedShare {
        key_id: [mine.key_id[0] ^ 1, 0, 0, 0],
        ..mine.clone()
    };
    assert!(matches!(
        b.submit_unseal_share(&foreign.encode()).await,
        Err(VaultError::ForeignShare)
    ));
    // A well-formed share with wrong bytes completes the set but does not open the vault; the
    // attempt is reset.
    let forged = EncodedShare {
        share: Share {
            index: 3,
            bytes: Zeroizing::new(vec![0x5A; 32]),
        },
        ..mine
    };
    assert!(matches!(
        b.submit_unseal_share(&forged.encode()).await,
        Err(VaultError::WrongUnsealKey)
    ));
    assert!(b.is_sealed());
    assert_eq!(b.status().await.unwrap().progress, 0);
    // The right shares still work.
    b.submit_unseal_share(&shares[2]).await.unwrap();
    assert!(!b.submit_unseal_share(&shares[0]).await.unwrap().sealed);
    // A key file does not unseal a Shamir vault.
    b.seal();
    assert!(matches!(
        b.unseal_with_key_file(ctx.key_file()).await,
        Err(VaultError::SealMethodMismatch { .. })
    ));
    ctx.target.cleanup().await;
}

pub async fn fewer_shares_are_refused_by_the_verification_tag(ctx: &Ctx) {
    let (b, shares) = init_shamir(ctx, 5, 3).await;
    b.put("k", b"v").await.unwrap();
    b.seal();
    // Someone with storage access lowers the threshold to 2 in the (plaintext) seal config:
    // two shares are then combined, and the result must not open the vault.
    let store = b.backend().clone();
    let config = store.get(b"vault/sys/seal-config").await.unwrap().unwrap();
    let text = String::from_utf8(config.clone()).unwrap();
    assert!(text.contains(r#""threshold":3"#), "{text}");
    let lowered = text.replace(r#""threshold":3"#, r#""threshold":2"#);
    store
        .put(b"vault/sys/seal-config", lowered.as_bytes())
        .await
        .unwrap();
    b.submit_unseal_share(&shares[0]).await.unwrap();
    assert!(matches!(
        b.submit_unseal_share(&shares[3]).await,
        Err(VaultError::WrongUnsealKey)
    ));
    assert!(b.is_sealed());
    // Any other edit of the config makes even a full set of genuine shares fail: the config
    // is associated data of the sealed keyring key.
    let edited = text.replace(r#""shares":5"#, r#""shares":6"#);
    store
        .put(b"vault/sys/seal-config", edited.as_bytes())
        .await
        .unwrap();
    b.submit_unseal_share(&shares[0]).await.unwrap();
    b.submit_unseal_share(&shares[1]).await.unwrap();
    assert!(matches!(
        b.submit_unseal_share(&shares[2]).await,
        Err(VaultError::WrongUnsealKey)
    ));
    store.put(b"vault/sys/seal-config", &config).await.unwrap();
    for i in [0, 1, 2] {
        b.submit_unseal_share(&shares[i]).await.unwrap();
    }
    assert_eq!(b.get("k").await.unwrap().unwrap().as_slice(), b"v");
    ctx.target.cleanup().await;
}

fn generation_of(raw: &[u8]) -> u32 {
    u32::from_be_bytes(raw[1..5].try_into().unwrap())
}

pub async fn root_key_rotation_rewraps_and_old_data_stays_readable(ctx: &Ctx) {
    let b = ctx.init_key_file().await;
    let store = b.backend().clone();
    for i in 0..30 {
        b.put(&format!("rot/{i:02}"), format!("value {i}").as_bytes())
            .await
            .unwrap();
    }
    let before = store.get(&raw_key("rot/07")).await.unwrap().unwrap();
    assert_eq!(generation_of(&before), 1);
    assert_eq!(b.rotate_root_key().await.unwrap(), 2);
    assert_eq!(b.status().await.unwrap().root_key_generation, Some(2));
    // Old records still readable; new ones use generation 2.
    assert_eq!(
        b.get("rot/07").await.unwrap().unwrap().as_slice(),
        b"value 7"
    );
    b.put("rot/new", b"after rotation").await.unwrap();
    assert_eq!(
        generation_of(&store.get(&raw_key("rot/new")).await.unwrap().unwrap()),
        2
    );
    // Generation 1 is still in use: nothing to retire yet.
    assert!(b.retire_unused_root_keys().await.unwrap().is_empty());
    let report = b.rewrap().await.unwrap();
    assert_eq!((report.rewrapped, report.current), (30, 1));
    let after = store.get(&raw_key("rot/07")).await.unwrap().unwrap();
    assert_eq!(generation_of(&after), 2);
    assert_eq!(
        &after[65..],
        &before[65..],
        "rewrap must not touch the data ciphertext"
    );
    assert_ne!(
        &after[5..65],
        &before[5..65],
        "the data key is wrapped anew"
    );
    assert_eq!(b.retire_unused_root_keys().await.unwrap(), vec![1]);
    // The pre-rotation record can no longer be read (its generation is gone) ...
    store.put(&raw_key("rot/old-copy"), &before).await.unwrap();
    assert!(b.get("rot/old-copy").await.is_err());
    store.delete(&raw_key("rot/old-copy")).await.unwrap();
    // ... and everything else still is, also after a restart.
    drop(b);
    drop(store);
    let b = Arc::new(Barrier::new(ctx.target.open().await));
    b.unseal_with_key_file(ctx.key_file()).await.unwrap();
    assert_eq!(b.status().await.unwrap().root_key_generation, Some(2));
    for i in 0..30 {
        assert_eq!(
            b.get(&format!("rot/{i:02}"))
                .await
                .unwrap()
                .unwrap()
                .as_slice(),
            format!("value {i}").as_bytes()
        );
    }
    assert_eq!(b.rewrap().await.unwrap().rewrapped, 0);
    ctx.target.cleanup().await;
}

pub async fn a_second_process_sees_a_rotation(ctx: &Ctx) {
    // Two barriers over one store stand for two processes sharing PostgreSQL.
    let a = ctx.init_key_file().await;
    let b = Arc::new(Barrier::new(a.backend().clone()));
    b.unseal_with_key_file(ctx.key_file()).await.unwrap();
    a.put("shared/1", b"one").await.unwrap();
    assert_eq!(a.rotate_root_key().await.unwrap(), 2);
    a.put("shared/2", b"two").await.unwrap();
    // b still wraps under the generation it knows until it refreshes.
    let store = a.backend().clone();
    b.put("shared/stale", b"s").await.unwrap();
    assert_eq!(
        generation_of(&store.get(&raw_key("shared/stale")).await.unwrap().unwrap()),
        1
    );
    assert_eq!(b.refresh_keyring().await.unwrap(), 2);
    b.put("shared/fresh", b"f").await.unwrap();
    assert_eq!(
        generation_of(&store.get(&raw_key("shared/fresh")).await.unwrap().unwrap()),
        2
    );
    b.rotate_root_key().await.unwrap();
    b.seal();
    b.unseal_with_key_file(ctx.key_file()).await.unwrap();
    // a holds generation 2 and reloads the keyring on meeting generation 3.
    b.put("shared/3", b"three").await.unwrap();
    assert_eq!(a.status().await.unwrap().root_key_generation, Some(2));
    assert_eq!(
        a.get("shared/3").await.unwrap().unwrap().as_slice(),
        b"three"
    );
    assert_eq!(a.status().await.unwrap().root_key_generation, Some(3));
    assert_eq!(b.get("shared/2").await.unwrap().unwrap().as_slice(), b"two");
    // Concurrent rotations do not lose each other.
    let (ra, rb) = tokio::join!(a.rotate_root_key(), b.rotate_root_key());
    let mut gens = vec![ra.unwrap(), rb.unwrap()];
    gens.sort_unstable();
    assert_eq!(gens, vec![4, 5]);
    assert_eq!(b.get("shared/1").await.unwrap().unwrap().as_slice(), b"one");
    ctx.target.cleanup().await;
}

pub async fn versioned_store_lifecycle(ctx: &Ctx) {
    let b = ctx.init_key_file().await;
    let s = VersionedStore::new(b);
    let k = ObjectKind::Secret;
    let attrs = Attributes {
        content_type: Some("text/plain".into()),
        ..Attributes::default()
    };
    let v1 = s
        .create_version("Stamp-1", k, "Db-Password", b"one", attrs.clone())
        .await
        .unwrap();
    assert_eq!(v1.version.len(), 32);
    assert!(
        v1.version
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert!(v1.attributes.created > 0);
    let v2 = s
        .create_version("stamp-1", k, "db-password", b"two", attrs.clone())
        .await
        .unwrap();
    assert_ne!(v1.version, v2.version);
    // Names are case-insensitive; the first spelling is kept.
    let meta = s.meta("STAMP-1", k, "DB-PASSWORD").await.unwrap();
    assert_eq!(meta.name, "Db-Password");
    assert_eq!(
        (meta.latest.as_str(), meta.version_count),
        (v2.version.as_str(), 2)
    );
    assert_eq!(
        s.get_version("stamp-1", k, "db-password", None)
            .await
            .unwrap()
            .value
            .as_slice(),
        b"two"
    );
    let got = s
        .get_version("stamp-1", k, "db-password", Some(&v1.version))
        .await
        .unwrap();
    assert_eq!(
        (got.value.as_slice(), got.attributes.content_type.as_deref()),
        (&b"one"[..], Some("text/plain"))
    );
    // Other kinds and vaults are separate namespaces.
    assert!(matches!(
        s.get_version("stamp-1", ObjectKind::Key, "db-password", None)
            .await,
        Err(VaultError::NotFound { .. })
    ));
    assert!(matches!(
        s.get_version("stamp-2", k, "db-password", None).await,
        Err(VaultError::NotFound { .. })
    ));
    assert!(matches!(
        s.get_version(
            "stamp-1",
            k,
            "db-password",
            Some("0123456789abcdef0123456789abcdef")
        )
        .await,
        Err(VaultError::NotFound { .. })
    ));
    assert!(matches!(
        s.get_version("stamp-1", k, "db-password", Some("../meta"))
            .await,
        Err(VaultError::InvalidName { .. })
    ));
    assert!(matches!(
        s.create_version("stamp-1", k, "a/b", b"", Attributes::default())
            .await,
        Err(VaultError::InvalidName { .. })
    ));
    // Versions.
    let versions: BTreeSet<_> = s
        .list_versions("stamp-1", k, "db-password", None, 10)
        .await
        .unwrap()
        .ids
        .into_iter()
        .collect();
    assert_eq!(
        versions,
        BTreeSet::from([v1.version.clone(), v2.version.clone()])
    );
    // Attributes update, of one version only.
    let updated = s
        .update_attributes("stamp-1", k, "db-password", Some(&v1.version), |a| {
            a.enabled = false;
            a.tags.insert("env".into(), "prod".into());
            a.created = 0; // ignored
        })
        .await
        .unwrap();
    assert!(!updated.attributes.enabled);
    assert_eq!(updated.attributes.created, v1.attributes.created);
    assert_eq!(updated.value.as_slice(), b"one");
    let again = s
        .get_version("stamp-1", k, "db-password", Some(&v1.version))
        .await
        .unwrap();
    assert_eq!(
        again.attributes.tags.get("env").map(String::as_str),
        Some("prod")
    );
    assert!(
        s.get_version("stamp-1", k, "db-password", None)
            .await
            .unwrap()
            .attributes
            .enabled
    );
    // Soft delete.
    let info = DeletionInfo {
        deleted_on: 1000,
        scheduled_purge: 1000 + 90 * 86400,
    };
    let meta = s
        .mark_deleted("stamp-1", k, "db-password", info)
        .await
        .unwrap();
    assert_eq!(meta.deleted, Some(info));
    assert!(matches!(
        s.get_version("stamp-1", k, "db-password", None).await,
        Err(VaultError::NotFound { .. })
    ));
    assert!(matches!(
        s.create_version("stamp-1", k, "db-password", b"three", Attributes::default())
            .await,
        Err(VaultError::DeletedButRecoverable { .. })
    ));
    assert!(matches!(
        s.mark_deleted("stamp-1", k, "db-password", info).await,
        Err(VaultError::NotFound { .. })
    ));
    assert!(
        s.list_names("stamp-1", k, false, None, 10)
            .await
            .unwrap()
            .ids
            .is_empty()
    );
    assert_eq!(
        s.list_names("stamp-1", k, true, None, 10)
            .await
            .unwrap()
            .ids,
        vec!["db-password"]
    );
    let (dmeta, latest) = s.get_deleted("stamp-1", k, "db-password").await.unwrap();
    assert_eq!(
        (dmeta.deleted, latest.version),
        (Some(info), v2.version.clone())
    );
    // Recover.
    s.recover("stamp-1", k, "db-password").await.unwrap();
    assert!(matches!(
        s.recover("stamp-1", k, "db-password").await,
        Err(VaultError::NotFound { .. })
    ));
    assert!(matches!(
        s.purge("stamp-1", k, "db-password").await,
        Err(VaultError::NotFound { .. })
    ));
    assert_eq!(
        s.list_names("stamp-1", k, false, None, 10)
            .await
            .unwrap()
            .ids,
        vec!["db-password"]
    );
    assert!(
        s.list_names("stamp-1", k, true, None, 10)
            .await
            .unwrap()
            .ids
            .is_empty()
    );
    assert_eq!(
        s.get_version("stamp-1", k, "db-password", None)
            .await
            .unwrap()
            .value
            .as_slice(),
        b"two"
    );
    // Delete and purge: everything is gone, the name is free again.
    s.mark_deleted("stamp-1", k, "db-password", info)
        .await
        .unwrap();
    s.purge("stamp-1", k, "db-password").await.unwrap();
    assert!(matches!(
        s.meta("stamp-1", k, "db-password").await,
        Err(VaultError::NotFound { .. })
    ));
    assert!(
        s.list_names("stamp-1", k, true, None, 10)
            .await
            .unwrap()
            .ids
            .is_empty()
    );
    assert!(
        s.barrier()
            .list("obj/stamp-1/", None, 100)
            .await
            .unwrap()
            .keys
            .is_empty(),
        "purge leaves nothing behind"
    );
    let v3 = s
        .create_version("stamp-1", k, "db-password", b"fresh", Attributes::default())
        .await
        .unwrap();
    assert_eq!(
        s.meta("stamp-1", k, "db-password")
            .await
            .unwrap()
            .version_count,
        1
    );
    assert_eq!(
        s.list_versions("stamp-1", k, "db-password", None, 10)
            .await
            .unwrap()
            .ids,
        vec![v3.version]
    );
    ctx.target.cleanup().await;
}

/// Every id over all pages of names (`name: None`) or versions, and the number of pages.
async fn all_pages(
    s: &VersionedStore,
    vault: &str,
    kind: ObjectKind,
    name: Option<&str>,
    limit: usize,
) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page: IdPage = match name {
            None => {
                s.list_names(vault, kind, false, after.as_deref(), limit)
                    .await
            }
            Some(name) => {
                s.list_versions(vault, kind, name, after.as_deref(), limit)
                    .await
            }
        }
        .unwrap();
        pages += 1;
        ids.extend(page.ids);
        match page.next {
            Some(n) => after = Some(n),
            None => return (ids, pages),
        }
    }
}

pub async fn versioned_store_paging(ctx: &Ctx) {
    let b = ctx.init_key_file().await;
    let s = VersionedStore::new(b);
    let k = ObjectKind::Certificate;
    let mut expected = Vec::new();
    for i in 0..23 {
        let name = format!("cert-{i:03}");
        s.create_version("v", k, &name, b"pem", Attributes::default())
            .await
            .unwrap();
        expected.push(name);
    }
    // A name in another kind does not show up.
    s.create_version(
        "v",
        ObjectKind::Key,
        "cert-999",
        b"k",
        Attributes::default(),
    )
    .await
    .unwrap();
    let (names, pages) = all_pages(&s, "v", k, None, 5).await;
    assert_eq!(names, expected);
    assert_eq!(pages, 5);
    let mut versions = BTreeSet::new();
    for _ in 0..12 {
        versions.insert(
            s.create_version("v", k, "cert-000", b"pem", Attributes::default())
                .await
                .unwrap()
                .version,
        );
    }
    let (ids, pages) = all_pages(&s, "v", k, Some("cert-000"), 4).await;
    assert_eq!(ids.len(), 13);
    assert!(pages >= 4);
    assert!(versions.iter().all(|v| ids.contains(v)));
    ctx.target.cleanup().await;
}

pub async fn concurrent_writers_keep_the_latest_pointer_consistent(ctx: &Ctx) {
    let first = ctx.init_key_file().await;
    let second = Arc::new(Barrier::new(first.backend().clone()));
    second.unseal_with_key_file(ctx.key_file()).await.unwrap();
    let stores = [VersionedStore::new(first), VersionedStore::new(second)];
    const WRITERS: usize = 6;
    const EACH: usize = 8;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let s = stores[w % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            for i in 0..EACH {
                let v = s
                    .create_version(
                        "v",
                        ObjectKind::Secret,
                        "hot",
                        format!("{w}/{i}").as_bytes(),
                        Attributes::default(),
                    )
                    .await
                    .unwrap();
                made.push(v.version);
            }
            made
        }));
    }
    let mut made = BTreeSet::new();
    for t in tasks {
        made.extend(t.await.unwrap());
    }
    assert_eq!(made.len(), WRITERS * EACH);
    let s = &stores[0];
    let meta = s.meta("v", ObjectKind::Secret, "hot").await.unwrap();
    assert_eq!(
        meta.version_count,
        (WRITERS * EACH) as u64,
        "no lost version count update"
    );
    assert!(made.contains(&meta.latest));
    let latest = s
        .get_version("v", ObjectKind::Secret, "hot", None)
        .await
        .unwrap();
    assert_eq!(latest.version, meta.latest);
    let (ids, _) = all_pages(s, "v", ObjectKind::Secret, Some("hot"), 1000).await;
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), made);
    assert_eq!(
        s.list_names("v", ObjectKind::Secret, false, None, 10)
            .await
            .unwrap()
            .ids,
        vec!["hot"]
    );
    ctx.target.cleanup().await;
}

/// The value of the latest version of `v/secrets/hot` as a number, `None` when it is not
/// found (deleted).
async fn latest_number(s: &VersionedStore) -> Option<usize> {
    match s.get_version("v", ObjectKind::Secret, "hot", None).await {
        Ok(v) => Some(std::str::from_utf8(&v.value).unwrap().parse().unwrap()),
        Err(VaultError::NotFound { .. }) => None,
        Err(e) => panic!("read failed: {e}"),
    }
}

/// Reads never lag behind writes (the redb backend caches records; PostgreSQL, shared by
/// processes, must not): while one task makes versions 1, 2, 3, ... of a secret and deletes
/// and recovers it every few versions, readers in this process (and, on PostgreSQL, through a
/// second connection pool and barrier, as another process would) see every version that was
/// made before their read started, never a version going back, and the writer sees each
/// change at once: the new latest, the version list, deleted, recovered, purged.
pub async fn reads_follow_every_change(ctx: &Ctx) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const VERSIONS: usize = 16;
    let writer_store = VersionedStore::new(ctx.init_key_file().await);
    let mut reader_stores = vec![writer_store.clone()];
    if let Target::Postgres(_) = ctx.target {
        let other = Arc::new(Barrier::new(ctx.target.open().await));
        other.unseal_with_key_file(ctx.key_file()).await.unwrap();
        reader_stores.push(VersionedStore::new(other));
    }
    let finished = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let k = ObjectKind::Secret;
    let reader = |s: VersionedStore| {
        let (finished, done) = (finished.clone(), done.clone());
        tokio::spawn(async move {
            let mut last = 0;
            let mut reads = 0usize;
            while !done.load(Ordering::SeqCst) {
                let floor = finished.load(Ordering::SeqCst);
                // Not found while deleted (or before the first version, or purged).
                if let Some(seen) = latest_number(&s).await {
                    assert!(
                        seen >= floor,
                        "a read started after version {floor} was made saw {seen}"
                    );
                    assert!(seen >= last, "a reader saw {last}, then {seen}");
                    last = seen;
                }
                reads += 1;
                if reads.is_multiple_of(8) {
                    tokio::task::yield_now().await;
                }
            }
            reads
        })
    };
    let readers: Vec<_> = (0..4)
        .map(|i| reader(reader_stores[i % reader_stores.len()].clone()))
        .collect();
    let writer = async {
        let s = &writer_store;
        for n in 1..=VERSIONS {
            s.create_version(
                "v",
                k,
                "hot",
                n.to_string().as_bytes(),
                Attributes::default(),
            )
            .await
            .unwrap();
            finished.store(n, Ordering::SeqCst);
            assert_eq!(latest_number(s).await, Some(n), "latest after version {n}");
            let (ids, _) = all_pages(s, "v", k, Some("hot"), 1000).await;
            assert_eq!(ids.len(), n, "version list after version {n}");
            let updated = s
                .update_attributes("v", k, "hot", None, |a| {
                    a.content_type = Some(n.to_string())
                })
                .await
                .unwrap();
            let got = s.get_version("v", k, "hot", None).await.unwrap();
            assert_eq!(
                got.attributes, updated.attributes,
                "attributes after update {n}"
            );
            if n.is_multiple_of(4) {
                let info = DeletionInfo {
                    deleted_on: 1,
                    scheduled_purge: 2,
                };
                s.mark_deleted("v", k, "hot", info).await.unwrap();
                assert_eq!(latest_number(s).await, None, "deleted at {n}");
                let (_, deleted) = s.get_deleted("v", k, "hot").await.unwrap();
                assert_eq!(deleted.value.as_slice(), n.to_string().as_bytes());
                s.recover("v", k, "hot").await.unwrap();
                assert_eq!(latest_number(s).await, Some(n), "recovered at {n}");
            }
        }
        s.mark_deleted(
            "v",
            k,
            "hot",
            DeletionInfo {
                deleted_on: 1,
                scheduled_purge: 2,
            },
        )
        .await
        .unwrap();
        s.purge("v", k, "hot").await.unwrap();
        assert!(matches!(
            s.meta("v", k, "hot").await,
            Err(VaultError::NotFound { .. })
        ));
        assert!(matches!(
            s.get_deleted("v", k, "hot").await,
            Err(VaultError::NotFound { .. })
        ));
        s.create_version("v", k, "hot", b"100", Attributes::default())
            .await
            .unwrap();
        let (ids, _) = all_pages(s, "v", k, Some("hot"), 1000).await;
        assert_eq!(ids.len(), 1, "a purged name starts a new version list");
        assert_eq!(latest_number(s).await, Some(100));
        done.store(true, Ordering::SeqCst);
    };
    writer.await;
    for r in readers {
        assert!(r.await.unwrap() > 0, "a reader never read");
    }
    ctx.target.cleanup().await;
}
