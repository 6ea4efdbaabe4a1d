//! Rampart storage: an ordered byte-string key-value store behind one trait, [`Backend`],
//! with an embedded default ([`RedbBackend`], one redb file) and [`PostgresBackend`].
//!
//! Both offer the same guarantees, checked by one conformance suite (the `conformance`
//! feature, used by this crate's tests):
//!
//! * get / put / delete / prefix listing with continuation keys, keys in byte order;
//! * compare-and-swap and all-or-nothing multi-key [`Transaction`]s, atomic against concurrent
//!   writers (other processes included);
//! * a write that returned `Ok` is durable: it survives the process being killed.
//!
//! Keys are at most [`MAX_KEY_LEN`] bytes, values at most [`MAX_VALUE_LEN`]; callers namespace
//! keys by prefix (`vault/secrets/...`, `audit/...`). Values are never logged or put in error
//! messages, since they may be secrets.
//!
//! ```no_run
//! # async fn demo() -> rampart_storage::Result<()> {
//! use rampart_storage::{BackendSpec, CasOutcome, open_backend};
//!
//! let store = open_backend(&BackendSpec::Redb { path: "rampart-data/kv.redb".into() }).await?;
//! store.put(b"greeting/en", b"hello").await?;
//! let (old, new) = (b"hello".as_slice(), b"hi".as_slice());
//! match store.compare_and_swap(b"greeting/en", Some(old), Some(new)).await? {
//!     CasOutcome::Swapped => {}
//!     CasOutcome::Conflict { current } => { /* someone else changed it first */ }
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod backend;
pub mod error;
mod postgres_backend;
mod read_cache;
mod redb_backend;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub use backend::{
    Backend, CasOutcome, Entry, MAX_KEY_LEN, MAX_LIST_LIMIT, MAX_TXN_LEN, MAX_VALUE_LEN, Op, Page,
    Precondition, Transaction, TxnOutcome,
};
pub use error::{Result, StorageError};
pub use postgres_backend::{MAX_POOL_SIZE, PostgresBackend, PostgresOptions};
pub use redb_backend::RedbBackend;

/// Which backend to open and where: the validated configuration maps onto this.
#[derive(Clone, PartialEq, Eq)]
pub enum BackendSpec {
    /// A local redb file (created if absent).
    Redb {
        /// The database file; its directory must exist.
        path: PathBuf,
    },
    /// A PostgreSQL table (created if absent).
    Postgres {
        /// Connection URL, e.g. `postgres://rampart@db.internal:5432/rampart`. May hold a
        /// password, so it is redacted from `Debug` output.
        url: String,
        /// Table name, see [`PostgresOptions::table`].
        table: String,
        /// Connection pool size, see [`PostgresOptions::pool_size`].
        pool_size: usize,
    },
}

impl fmt::Debug for BackendSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redb { path } => f.debug_struct("Redb").field("path", path).finish(),
            Self::Postgres {
                url: _,
                table,
                pool_size,
            } => f
                .debug_struct("Postgres")
                .field("url", &"<redacted>")
                .field("table", table)
                .field("pool_size", pool_size)
                .finish(),
        }
    }
}

/// Opens the backend `spec` describes.
pub async fn open_backend(spec: &BackendSpec) -> Result<Arc<dyn Backend>> {
    Ok(match spec {
        BackendSpec::Redb { path } => Arc::new(RedbBackend::open(path).await?),
        BackendSpec::Postgres {
            url,
            table,
            pool_size,
        } => Arc::new(
            PostgresBackend::connect(
                url,
                PostgresOptions {
                    table: table.clone(),
                    pool_size: *pool_size,
                },
            )
            .await?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_spec_debug_hides_the_url() {
        let spec = BackendSpec::Postgres {
            url: "postgres://rampart:s3cret@db/rampart".into(),
            table: "kv".into(),
            pool_size: 4,
        };
        let text = format!("{spec:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("kv"), "{text}");
    }

    #[tokio::test]
    async fn open_backend_rejects_bad_postgres_options_before_connecting() {
        let spec = |table: &str, pool_size| BackendSpec::Postgres {
            url: "postgres://nobody@127.0.0.1:1/none".into(),
            table: table.into(),
            pool_size,
        };
        assert!(matches!(
            open_backend(&spec("bad name", 4)).await,
            Err(StorageError::InvalidTableName { .. })
        ));
        for size in [0, MAX_POOL_SIZE + 1] {
            assert!(matches!(
                open_backend(&spec("kv", size)).await,
                Err(StorageError::InvalidPoolSize { size: s }) if s == size
            ));
        }
    }

    #[tokio::test]
    async fn open_backend_opens_redb() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_backend(&BackendSpec::Redb {
            path: dir.path().join("kv.redb"),
        })
        .await
        .unwrap();
        store.put(b"k", b"v").await.unwrap();
        assert_eq!(store.get(b"k").await.unwrap().as_deref(), Some(&b"v"[..]));
    }
}
