//! The conformance suite against [`PostgresBackend`] (a fresh table per case, dropped
//! afterwards), plus PostgreSQL-specific behaviour: shared tables across pools, the advisory
//! lock protocol, connection errors.
//!
//! The server is `$RAMPART_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). These tests fail when it is unreachable.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_storage::conformance::{drop_table, postgres_url, unique_table};
use rampart_storage::{
    Backend, CasOutcome, PostgresBackend, PostgresOptions, StorageError, Transaction, TxnOutcome,
};

async fn connect(table: &str, pool_size: usize) -> PostgresBackend {
    let options = PostgresOptions {
        table: table.to_owned(),
        pool_size,
    };
    PostgresBackend::connect(&postgres_url(), options)
        .await
        .unwrap_or_else(|e| unreachable_server(&e))
}

/// Fails the test: PostgreSQL is required, never skipped.
fn unreachable_server(error: &StorageError) -> ! {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    panic!("PostgreSQL is required for these tests (set RAMPART_TEST_POSTGRES_URL): {message}")
}

/// Runs `body` against a fresh table, dropping the table afterwards even if `body` panics.
async fn with_table<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let table = unique_table("test");
    // A leftover from an earlier run killed before cleaning up (same pid): start afresh.
    if let Err(e) = drop_table(&postgres_url(), &table).await {
        unreachable_server(&e);
    }
    let outcome = tokio::spawn(body(table.clone())).await;
    drop_table(&postgres_url(), &table).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn run<F, Fut>(_case: &str, body: F)
where
    F: FnOnce(Arc<dyn Backend>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_table(|table| async move {
        let backend = connect(&table, 8).await;
        body(Arc::new(backend)).await;
    })
    .await;
}

rampart_storage::conformance_tests!(run);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_on_one_table_see_each_other_and_lose_no_updates() {
    with_table(|table| async move {
        let a = Arc::new(connect(&table, 4).await);
        let b = Arc::new(connect(&table, 4).await);
        a.put(b"shared", b"from a").await.unwrap();
        assert_eq!(
            b.get(b"shared").await.unwrap().as_deref(),
            Some(&b"from a"[..])
        );

        let mut tasks = Vec::new();
        for i in 0..8 {
            let backend: Arc<dyn Backend> = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    let mut current = backend.get(b"counter").await.unwrap();
                    loop {
                        let n: u64 = current
                            .as_deref()
                            .map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
                        let next = (n + 1).to_string();
                        match backend
                            .compare_and_swap(b"counter", current.as_deref(), Some(next.as_bytes()))
                            .await
                            .unwrap()
                        {
                            CasOutcome::Swapped => break,
                            CasOutcome::Conflict { current: now } => current = now,
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            a.get(b"counter").await.unwrap().as_deref(),
            Some(&b"160"[..])
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_wait_for_the_key_advisory_lock() {
    // A transaction outside the backend holding a key's advisory lock (as a concurrent
    // `commit` does while it checks its preconditions) must hold back puts, deletes,
    // compare-and-swaps and transactions on that key (even ones that only check it), and only
    // that key.
    with_table(|table| async move {
        let backend = connect(&table, 4).await;
        let (mut client, connection) =
            tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        let lock = backend.advisory_lock_id(b"locked");

        let held = Duration::from_millis(600);
        for name in [
            "put",
            "delete",
            "compare_and_swap",
            "commit",
            "commit precondition",
        ] {
            let tx = client.transaction().await.unwrap();
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
                .await
                .unwrap();

            // Other keys are not held back (were it, this put would wait until the commit
            // below, i.e. forever).
            tokio::time::timeout(Duration::from_secs(10), backend.put(b"unlocked", b"v"))
                .await
                .unwrap_or_else(|_| panic!("{name}: a put of an unrelated key waited"))
                .unwrap();

            let start = Instant::now();
            let task = tokio::spawn(write(backend.clone(), name));
            tokio::time::sleep(held).await;
            assert!(
                !task.is_finished(),
                "{name} did not wait for the key's lock"
            );
            tx.commit().await.unwrap();
            task.await.unwrap();
            assert!(start.elapsed() >= held, "{name} finished early");
        }
    })
    .await;
}

/// One write of kind `name` to the key `locked`.
async fn write(backend: PostgresBackend, name: &'static str) {
    match name {
        "put" => backend.put(b"locked", b"v").await.unwrap(),
        "delete" => {
            backend.delete(b"locked").await.unwrap();
        }
        "compare_and_swap" => {
            let _ = backend
                .compare_and_swap(b"locked", None, Some(&b"w"[..]))
                .await
                .unwrap();
        }
        "commit" => {
            let txn = Transaction::new()
                .require_absent(b"other")
                .put(b"locked", b"x");
            let _ = backend.commit(txn).await.unwrap();
        }
        "commit precondition" => {
            // Only reads `locked`: it must still wait, or a write to `locked` could slip in
            // between its check and its commit.
            let txn = Transaction::new()
                .require(b"locked", None)
                .put(b"elsewhere", b"y");
            let _ = backend.commit(txn).await.unwrap();
        }
        _ => unreachable!("unknown write {name}"),
    }
}

#[tokio::test]
async fn an_existing_table_is_reused() {
    with_table(|table| async move {
        let first = connect(&table, 1).await;
        first.put(b"k", b"v").await.unwrap();
        drop(first);
        let second = connect(&table, 1).await;
        assert_eq!(second.get(b"k").await.unwrap().as_deref(), Some(&b"v"[..]));
        let outcome = second
            .commit(
                Transaction::new()
                    .require(b"k", Some(&b"v"[..]))
                    .delete(b"k"),
            )
            .await
            .unwrap();
        assert_eq!(outcome, TxnOutcome::Committed);
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_is_an_error() {
    let start = Instant::now();
    let result = PostgresBackend::connect(
        "postgres://postgres@127.0.0.1:1/test?connect_timeout=2",
        PostgresOptions::default(),
    )
    .await;
    assert!(
        matches!(result, Err(StorageError::Pool { .. })),
        "{result:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn url_errors_do_not_leak_the_password() {
    for url in [
        "postgres://rampart:s3cret-pw@127.0.0.1:notaport/test",
        "postgres://rampart:s3cret-pw@127.0.0.1:5432/test?sslmode=bogus",
        "host=127.0.0.1 password=s3cret-pw bogus_option=1",
    ] {
        let err = PostgresBackend::connect(url, PostgresOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StorageError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            chain.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        assert!(!chain.contains("s3cret"), "{chain}");
        assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");
    }
}

#[tokio::test]
async fn bad_options_are_rejected_before_connecting() {
    for table in ["", "Kv", "kv;drop", "1kv", &"k".repeat(64)] {
        let result = PostgresBackend::connect(
            &postgres_url(),
            PostgresOptions {
                table: table.to_owned(),
                pool_size: 1,
            },
        )
        .await;
        assert!(
            matches!(result, Err(StorageError::InvalidTableName { .. })),
            "{table:?}: {result:?}"
        );
    }
    let result = PostgresBackend::connect(
        &postgres_url(),
        PostgresOptions {
            table: "kv".to_owned(),
            pool_size: 0,
        },
    )
    .await;
    assert!(
        matches!(result, Err(StorageError::InvalidPoolSize { size: 0 })),
        "{result:?}"
    );
}
