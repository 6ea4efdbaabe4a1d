//! The embedded default backend: one [redb](https://docs.rs/redb) file, one table.
//!
//! Every write transaction commits with [`Durability::Immediate`] (fsync before the commit
//! returns) and two-phase commit, which costs a second fsync but keeps a crash from ever
//! activating a half-written commit even when an attacker controls the bytes being written (see
//! `WriteTransaction::set_two_phase_commit`). redb serializes write transactions, so
//! compare-and-swap and [`Transaction`]s are atomic by construction; reads use MVCC snapshots
//! and never wait for writers. redb's calls block, so each runs on
//! [`tokio::task::spawn_blocking`].
//!
//! A file left open by a crashed process is repaired when it is next opened (redb walks the
//! whole file to rebuild its allocator state; [`RedbBackend::repaired_on_open`] reports it).
//! The file is created with mode `0600` on Unix.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};

use crate::backend::{
    Backend, CasOutcome, Entry, KeyRange, Page, Transaction, TxnOutcome, check_key, check_value,
    clamp_limit, page_from,
};
use crate::error::{Result, StorageError};

/// The one table holding every key.
const TABLE: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("rampart_kv");

/// A [`Backend`] stored in a local redb file. Cheap to clone; clones share the database.
#[derive(Clone)]
pub struct RedbBackend {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    repaired: bool,
}

impl fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbBackend")
            .field("path", &self.inner.path)
            .field("repaired_on_open", &self.inner.repaired)
            .finish_non_exhaustive()
    }
}

impl RedbBackend {
    /// Opens the database file at `path`, creating it if it does not exist and repairing it if
    /// the last process using it did not close it cleanly. The parent directory must exist.
    ///
    /// A file is opened by one process at a time: a second open fails while the first is live.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(|source| StorageError::Worker { op: "open", source })?
    }

    fn open_blocking(path: PathBuf) -> Result<Self> {
        let open_error = |source| StorageError::OpenRedb {
            path: path.clone(),
            source: Box::new(source),
        };
        let file = create_private_file(&path)
            .map_err(|e| open_error(redb::DatabaseError::Storage(redb::StorageError::Io(e))))?;

        let repairing = Arc::new(AtomicBool::new(false));
        let mut builder = Database::builder();
        builder.set_repair_callback({
            let repairing = Arc::clone(&repairing);
            let path = path.clone();
            move |session| {
                if !repairing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        path = %path.display(),
                        "redb database was not closed cleanly, repairing it"
                    );
                }
                tracing::debug!(progress = session.progress(), "redb repair in progress");
            }
        });
        let db = builder.create_file(file).map_err(open_error)?;
        let repaired = repairing.load(Ordering::Relaxed);
        if repaired {
            tracing::info!(path = %path.display(), "redb database repaired");
        }

        // Create the table up front so readers never meet a missing table.
        let create = || -> Result<(), RedbError> {
            let txn = begin_write(&db)?;
            txn.open_table(TABLE)?;
            txn.commit()?;
            Ok(())
        };
        create().map_err(|e| e.into_storage_error("open"))?;

        Ok(Self {
            inner: Arc::new(Inner { db, path, repaired }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether opening found the file not cleanly closed (e.g. after a crash) and repaired it.
    pub fn repaired_on_open(&self) -> bool {
        self.inner.repaired
    }

    /// Runs `f` on the blocking thread pool.
    async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Database) -> Result<T, RedbError> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner.db))
            .await
            .map_err(|source| StorageError::Worker { op, source })?
            .map_err(|e| e.into_storage_error(op))
    }
}

/// Any of redb's errors, boxed (redb's own `Error` is 160 bytes), so `?` works on all of them.
struct RedbError(Box<redb::Error>);

impl<E: Into<redb::Error>> From<E> for RedbError {
    fn from(error: E) -> Self {
        Self(Box::new(error.into()))
    }
}

impl RedbError {
    fn into_storage_error(self, op: &'static str) -> StorageError {
        StorageError::Redb { op, source: self.0 }
    }
}

/// Opens or creates `path` read-write without truncating it, readable by its owner only.
fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Starts a write transaction that is durable when its commit returns.
fn begin_write(db: &Database) -> Result<WriteTransaction, RedbError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate);
    txn.set_two_phase_commit(true);
    Ok(txn)
}

#[async_trait]
impl Backend for RedbBackend {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = key.to_vec();
        self.run("get", move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(TABLE)?;
            Ok(table.get(key.as_slice())?.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        let (key, value) = (key.to_vec(), value.to_vec());
        self.run("put", move |db| {
            let txn = begin_write(db)?;
            txn.open_table(TABLE)?
                .insert(key.as_slice(), value.as_slice())?;
            txn.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, key: &[u8]) -> Result<bool> {
        let key = key.to_vec();
        self.run("delete", move |db| {
            let txn = begin_write(db)?;
            let existed = txn.open_table(TABLE)?.remove(key.as_slice())?.is_some();
            if existed {
                txn.commit()?;
            } else {
                txn.abort()?;
            }
            Ok(existed)
        })
        .await
    }

    async fn list(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Page> {
        let Some(range) = KeyRange::new(prefix, start_after) else {
            return Ok(Page::default());
        };
        let limit = clamp_limit(limit);
        let lower = range.lower.to_vec();
        let lower_inclusive = range.lower_inclusive;
        let upper = range.upper;
        self.run("list", move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(TABLE)?;
            let lower = if lower_inclusive {
                Bound::Included(lower.as_slice())
            } else {
                Bound::Excluded(lower.as_slice())
            };
            let upper = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let mut entries = Vec::new();
            for item in table.range::<&[u8]>((lower, upper))?.take(limit + 1) {
                let (key, value) = item?;
                entries.push(Entry {
                    key: key.value().to_vec(),
                    value: value.value().to_vec(),
                });
            }
            Ok(page_from(entries, limit))
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome> {
        check_key(key)?;
        if let Some(new) = new {
            check_value(new)?;
        }
        let key = key.to_vec();
        let expected = expected.map(<[u8]>::to_vec);
        let new = new.map(<[u8]>::to_vec);
        self.run("compare_and_swap", move |db| {
            let txn = begin_write(db)?;
            let swapped = {
                let mut table = txn.open_table(TABLE)?;
                let current = table.get(key.as_slice())?.map(|v| v.value().to_vec());
                if current != expected {
                    Err(current)
                } else {
                    match &new {
                        Some(new) => {
                            table.insert(key.as_slice(), new.as_slice())?;
                        }
                        None => {
                            table.remove(key.as_slice())?;
                        }
                    }
                    Ok(expected.is_some() || new.is_some())
                }
            };
            match swapped {
                Ok(true) => {
                    txn.commit()?;
                    Ok(CasOutcome::Swapped)
                }
                // Absent and staying absent: nothing to write.
                Ok(false) => {
                    txn.abort()?;
                    Ok(CasOutcome::Swapped)
                }
                Err(current) => {
                    txn.abort()?;
                    Ok(CasOutcome::Conflict { current })
                }
            }
        })
        .await
    }

    async fn commit(&self, txn: Transaction) -> Result<TxnOutcome> {
        txn.check_limits()?;
        if txn.is_empty() {
            return Ok(TxnOutcome::Committed);
        }
        self.run("commit", move |db| {
            let wtxn = begin_write(db)?;
            let conflict = {
                let mut table = wtxn.open_table(TABLE)?;
                let conflict = txn.first_conflict(|key, expected| {
                    let current = table.get(key)?;
                    Ok::<_, RedbError>(current.as_ref().map(|v| v.value()) == expected)
                })?;
                if conflict.is_none() {
                    for (key, value) in txn.net_writes() {
                        match value {
                            Some(value) => {
                                table.insert(key, value)?;
                            }
                            None => {
                                table.remove(key)?;
                            }
                        }
                    }
                }
                conflict.map(<[u8]>::to_vec)
            };
            match conflict {
                Some(key) => {
                    wtxn.abort()?;
                    Ok(TxnOutcome::Conflict { key })
                }
                None if txn.ops().is_empty() => {
                    wtxn.abort()?;
                    Ok(TxnOutcome::Committed)
                }
                None => {
                    wtxn.commit()?;
                    Ok(TxnOutcome::Committed)
                }
            }
        })
        .await
    }
}
