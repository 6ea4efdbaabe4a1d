//! Storage errors.
//!
//! Every failure is a [`StorageError`], a `#[non_exhaustive]` enum whose variants carry the
//! rejected input (sizes, table names, paths) or the operation that failed plus the underlying
//! driver error as its [`source`](std::error::Error::source). Messages are lowercase, have no
//! trailing period and never include stored values or connection URLs: values may be secrets and
//! URLs may carry passwords. Keys are not secret and may appear.

use std::path::PathBuf;

/// The result type of every storage operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Why a storage operation failed.
///
/// A conflict (a failed compare-and-swap or transaction precondition) is not an error: it is
/// reported through [`CasOutcome`](crate::CasOutcome) and [`TxnOutcome`](crate::TxnOutcome).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A key longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) was written.
    #[error("key is {len} bytes, more than the maximum of {max}")]
    KeyTooLarge {
        /// The key's length in bytes.
        len: usize,
        /// The maximum length.
        max: usize,
    },

    /// A value longer than [`MAX_VALUE_LEN`](crate::MAX_VALUE_LEN) was written.
    #[error("value is {len} bytes, more than the maximum of {max}")]
    ValueTooLarge {
        /// The value's length in bytes.
        len: usize,
        /// The maximum length.
        max: usize,
    },

    /// A transaction with more than [`MAX_TXN_LEN`](crate::MAX_TXN_LEN) preconditions and
    /// operations was committed.
    #[error("transaction has {len} preconditions and operations, more than the maximum of {max}")]
    TransactionTooLarge {
        /// The number of preconditions plus operations.
        len: usize,
        /// The maximum.
        max: usize,
    },

    /// The PostgreSQL table name is not a plain lowercase SQL identifier.
    #[error("invalid postgres table name {name:?}: {reason}")]
    InvalidTableName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The PostgreSQL connection pool size is out of range.
    #[error(
        "invalid postgres pool size {size} (expected 1 to {})",
        crate::postgres_backend::MAX_POOL_SIZE
    )]
    InvalidPoolSize {
        /// The rejected size.
        size: usize,
    },

    /// The PostgreSQL connection URL does not parse. The URL itself is left out: it may hold a
    /// password.
    #[error("invalid postgres connection url")]
    InvalidUrl {
        /// The parser's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The connection pool could not be set up.
    #[error("cannot set up the postgres connection pool")]
    PoolSetup {
        /// The pool builder's error.
        #[source]
        source: deadpool_postgres::BuildError,
    },

    /// The redb database file could not be opened, created or repaired.
    #[error("cannot open redb database {}", path.display())]
    OpenRedb {
        /// The database file.
        path: PathBuf,
        /// redb's error.
        #[source]
        source: Box<redb::DatabaseError>,
    },

    /// A redb operation failed.
    #[error("redb {op} failed")]
    Redb {
        /// The operation, e.g. `put`.
        op: &'static str,
        /// redb's error.
        #[source]
        source: Box<redb::Error>,
    },

    /// A redb write was committed in a batch with other writes (group commit) and the batch
    /// failed: none of it was applied.
    #[error("redb {op} failed: {reason}")]
    Batch {
        /// The operation, e.g. `put`.
        op: &'static str,
        /// The batch's error.
        reason: String,
    },

    /// The blocking task running a redb operation panicked or was cancelled.
    #[error("redb {op} worker task failed")]
    Worker {
        /// The operation, e.g. `put`.
        op: &'static str,
        /// The task's error.
        #[source]
        source: tokio::task::JoinError,
    },

    /// A PostgreSQL operation failed.
    #[error("postgres {op} failed")]
    Postgres {
        /// The operation, e.g. `put`.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// No PostgreSQL connection could be taken from the pool.
    #[error("postgres {op} failed: cannot get a connection")]
    Pool {
        /// The operation, e.g. `put`.
        op: &'static str,
        /// The pool's error.
        #[source]
        source: deadpool_postgres::PoolError,
    },

    /// A PostgreSQL operation was aborted by the server (deadlock or serialization failure)
    /// on every one of its attempts.
    #[error("postgres {op} kept being aborted by concurrent writers ({attempts} attempts)")]
    Contention {
        /// The operation, e.g. `commit`.
        op: &'static str,
        /// How many times it was tried.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: tokio_postgres::Error,
    },
}

impl StorageError {
    pub(crate) fn postgres(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |source| Self::Postgres { op, source }
    }

    pub(crate) fn pool(op: &'static str) -> impl FnOnce(deadpool_postgres::PoolError) -> Self {
        move |source| Self::Pool { op, source }
    }
}
