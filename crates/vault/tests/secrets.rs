//! The vault registry, the secrets service, backups and the purge sweep, against redb and
//! PostgreSQL (`$RAMPART_TEST_POSTGRES_URL`, a fresh table per case, dropped afterwards).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_storage::conformance::{drop_table, postgres_url, unique_table};
use rampart_storage::{Backend, PostgresBackend, PostgresOptions, RedbBackend};
use rampart_vault::{
    Barrier, InitMethod, NewSecret, SecretUpdate, Secrets, VaultError, VaultOptions, VaultRegistry,
    VersionedStore, purge_expired,
};
use zeroize::Zeroizing;

struct Env {
    dir: tempfile::TempDir,
    table: Option<String>,
}

impl Env {
    async fn new(postgres: bool) -> Self {
        let table = if postgres {
            let t = unique_table("vsecrets");
            drop_table(&postgres_url(), &t).await.unwrap();
            Some(t)
        } else {
            None
        };
        Self {
            dir: tempfile::tempdir().unwrap(),
            table,
        }
    }

    /// Opens (or reopens: a restart) the store and unseals it.
    async fn open(&self) -> (Arc<Barrier>, VaultRegistry, Secrets) {
        let backend: Arc<dyn Backend> = match &self.table {
            None => Arc::new(
                RedbBackend::open(self.dir.path().join("kv.redb"))
                    .await
                    .unwrap(),
            ),
            Some(table) => Arc::new(
                PostgresBackend::connect(
                    &postgres_url(),
                    PostgresOptions {
                        table: table.clone(),
                        pool_size: 4,
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL is required: {e}")),
            ),
        };
        let barrier = Arc::new(Barrier::new(backend));
        let key = self.dir.path().join("unseal.key");
        if barrier.status().await.unwrap().initialized {
            barrier.unseal_with_key_file(key).await.unwrap();
        } else {
            barrier.init(InitMethod::KeyFile(key)).await.unwrap();
        }
        let store = VersionedStore::new(barrier.clone());
        (
            barrier.clone(),
            VaultRegistry::new(barrier),
            Secrets::new(store),
        )
    }

    async fn cleanup(self) {
        if let Some(table) = &self.table {
            drop_table(&postgres_url(), table).await.unwrap();
        }
    }
}

fn new_secret(value: &str) -> NewSecret {
    NewSecret {
        value: Zeroizing::new(value.to_owned()),
        ..NewSecret::default()
    }
}

async fn lifecycle(postgres: bool) {
    let env = Env::new(postgres).await;
    {
        let (_, registry, secrets) = env.open().await;
        let vault = registry
            .create(
                "Stamp-1",
                &VaultOptions {
                    retention_days: 7,
                    ..VaultOptions::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(vault.name, "stamp-1");
        assert!(matches!(
            registry.create("stamp-1", &VaultOptions::default()).await,
            Err(VaultError::AlreadyExists { .. })
        ));
        let s = secrets
            .set(
                &vault,
                "Db",
                NewSecret {
                    tags: BTreeMap::from([("a".into(), "b".into())]),
                    content_type: Some("text/plain".into()),
                    ..new_secret("v1")
                },
            )
            .await
            .unwrap();
        assert_eq!((s.name.as_str(), s.value.as_str()), ("Db", "v1"));
        let too_big = "x".repeat(25 * 1024 + 1);
        assert!(matches!(
            secrets.set(&vault, "db", new_secret(&too_big)).await,
            Err(VaultError::TooLarge { .. })
        ));
        secrets
            .update(
                &vault,
                "db",
                Some(&s.version),
                SecretUpdate {
                    enabled: Some(false),
                    ..SecretUpdate::default()
                },
            )
            .await
            .unwrap();
        assert!(matches!(
            secrets.get(&vault, "db", None).await,
            Err(VaultError::Disabled {
                operation: "get",
                ..
            })
        ));
        let v2 = secrets.set(&vault, "db", new_secret("v2")).await.unwrap();
        assert_eq!(
            secrets
                .get(&vault, "DB", None)
                .await
                .unwrap()
                .value
                .as_str(),
            "v2"
        );
        let versions = secrets.list_versions(&vault, "db", None, 25).await.unwrap();
        assert_eq!(versions.items.len(), 2);
        assert!(versions.items.iter().any(|p| p.version == v2.version));
    }
    // Restart: vault settings and secrets persist.
    let (_, registry, secrets) = env.open().await;
    let vault = registry.get("stamp-1").await.unwrap();
    assert_eq!(vault.retention_days, 7);
    assert_eq!(
        secrets
            .get(&vault, "db", None)
            .await
            .unwrap()
            .value
            .as_str(),
        "v2"
    );
    let deleted = secrets.delete(&vault, "db").await.unwrap();
    assert_eq!(
        deleted.deletion.scheduled_purge,
        deleted.deletion.deleted_on + 7 * 86_400
    );
    assert!(matches!(
        secrets.set(&vault, "db", new_secret("v3")).await,
        Err(VaultError::DeletedButRecoverable { .. })
    ));
    assert_eq!(
        secrets
            .list_deleted(&vault, None, 25)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    secrets.recover(&vault, "db").await.unwrap();
    secrets.delete(&vault, "db").await.unwrap();
    // The sweep leaves it until its date, then purges it.
    let store = secrets.store();
    let report = purge_expired(&registry, store, deleted.deletion.deleted_on)
        .await
        .unwrap();
    assert_eq!(report.purged, 0);
    let report = purge_expired(&registry, store, deleted.deletion.deleted_on + 8 * 86_400)
        .await
        .unwrap();
    assert_eq!(report.purged, 1);
    assert!(matches!(
        secrets.get_deleted(&vault, "db").await,
        Err(VaultError::NotFound { .. })
    ));
    // Purge protection: purge refused, irreversible.
    let locked = registry
        .create(
            "locked",
            &VaultOptions {
                purge_protection: true,
                ..VaultOptions::default()
            },
        )
        .await
        .unwrap();
    secrets.set(&locked, "s", new_secret("x")).await.unwrap();
    secrets.delete(&locked, "s").await.unwrap();
    assert!(matches!(
        secrets.purge(&locked, "s").await,
        Err(VaultError::PurgeProtected { .. })
    ));
    assert!(
        registry
            .enable_purge_protection("locked")
            .await
            .unwrap()
            .purge_protection
    );
    let names: Vec<String> = registry
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names, ["locked", "stamp-1"]);
    env.cleanup().await;
}

async fn backups(postgres: bool) {
    let env = Env::new(postgres).await;
    let (barrier, registry, secrets) = env.open().await;
    let eu = |name: &str, geo: &str| {
        let registry = registry.clone();
        let (name, geo) = (name.to_owned(), geo.to_owned());
        async move {
            registry
                .create(
                    &name,
                    &VaultOptions {
                        geography: geo,
                        ..VaultOptions::default()
                    },
                )
                .await
                .unwrap()
        }
    };
    let a = eu("vault-a", "eu").await;
    let b = eu("vault-b", "eu").await;
    let us = eu("vault-us", "us").await;
    let mut ids = Vec::new();
    for v in ["one", "two"] {
        ids.push(secrets.set(&a, "bk", new_secret(v)).await.unwrap().version);
    }
    let blob = secrets.backup(&a, "bk").await.unwrap();
    assert!(!blob.windows(3).any(|w| w == b"two"));
    let restored = secrets.restore(&b, &blob).await.unwrap();
    assert_eq!(restored.version, ids[1]);
    for (id, v) in ids.iter().zip(["one", "two"]) {
        assert_eq!(
            secrets
                .get(&b, "bk", Some(id))
                .await
                .unwrap()
                .value
                .as_str(),
            v
        );
    }
    assert!(matches!(
        secrets.restore(&b, &blob).await,
        Err(VaultError::AlreadyExists { .. })
    ));
    assert!(matches!(
        secrets.restore(&us, &blob).await,
        Err(VaultError::WrongGeography { .. })
    ));
    for cut in [0, 5, blob.len() / 2, blob.len() - 1] {
        assert!(
            matches!(
                secrets
                    .restore(&us, &blob[..cut])
                    .await
                    .or(secrets.restore(&a, &blob[..cut]).await),
                Err(VaultError::InvalidBackup { .. }) | Err(VaultError::WrongGeography { .. })
            ),
            "cut {cut}"
        );
    }
    let mut flipped = blob.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let fresh = eu("vault-c", "eu").await;
    assert!(matches!(
        secrets.restore(&fresh, &flipped).await,
        Err(VaultError::InvalidBackup { .. })
    ));
    // Sealed: every operation says so.
    barrier.seal();
    assert!(matches!(
        secrets.get(&a, "bk", None).await,
        Err(VaultError::Sealed)
    ));
    env.cleanup().await;
}

#[tokio::test]
async fn secrets_lifecycle_redb() {
    lifecycle(false).await;
}

#[tokio::test]
async fn secrets_lifecycle_postgres() {
    lifecycle(true).await;
}

#[tokio::test]
async fn backups_redb() {
    backups(false).await;
}

#[tokio::test]
async fn backups_postgres() {
    backups(true).await;
}
