//! The conformance suite against [`RedbBackend`] (a fresh file in a temporary directory per
//! case), plus redb-specific behaviour: reopening, repair reporting, locking, bad files.

use std::future::Future;
use std::sync::Arc;

use rampart_storage::{Backend, RedbBackend, StorageError};

async fn run<F, Fut>(_case: &str, body: F)
where
    F: FnOnce(Arc<dyn Backend>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let backend = RedbBackend::open(dir.path().join("kv.redb")).await.unwrap();
    body(Arc::new(backend)).await;
}

rampart_storage::conformance_tests!(run);

#[tokio::test]
async fn data_survives_a_clean_reopen_without_repair() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    let backend = RedbBackend::open(&path).await.unwrap();
    assert!(!backend.repaired_on_open(), "a new file needs no repair");
    backend.put(b"k", b"v").await.unwrap();
    drop(backend);

    let backend = RedbBackend::open(&path).await.unwrap();
    assert!(
        !backend.repaired_on_open(),
        "a cleanly closed file needs no repair"
    );
    assert_eq!(backend.get(b"k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn a_second_open_of_the_same_file_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    let _first = RedbBackend::open(&path).await.unwrap();
    let err = RedbBackend::open(&path).await.unwrap_err();
    assert!(
        matches!(err, StorageError::OpenRedb { ref path, .. } if path.ends_with("kv.redb")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in [
        (
            "text.redb",
            b"this is not a redb file, just some text\n".repeat(200),
        ),
        ("zeros.redb", vec![0u8; 64 * 1024]),
        ("ff.redb", vec![0xFF; 9000]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &contents).unwrap();
        let result = RedbBackend::open(&path).await;
        assert!(
            matches!(result, Err(StorageError::OpenRedb { .. })),
            "{name}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let result = RedbBackend::open(dir.path().join("missing/kv.redb")).await;
    assert!(
        matches!(result, Err(StorageError::OpenRedb { .. })),
        "{result:?}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    let _backend = RedbBackend::open(&path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
}
