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
//! **Group commit**: writes (put, delete, compare-and-swap, transactions) queue up; one writer
//! at a time commits everything queued, in order, in a single redb transaction (each write's
//! preconditions checked against the writes before it, a conflicting write changing nothing),
//! and every writer of the batch returns once that one durable commit did. Concurrent writers
//! thus share the two fsyncs instead of paying them in turn. If the batch's commit fails, none
//! of it is applied and every writer in it gets the error.
//!
//! **Read cache**: the process holding a redb file is its only writer (redb locks the file), so
//! values read are cached in memory (64 MiB, see `read_cache`) and a repeated `get` of a key
//! skips the thread pool and the B-tree. Every write removes its keys from the cache around its
//! commit, and a read is cached only if no write started since it began, so reads stay
//! linearizable. (The PostgreSQL backend, shared by several processes, has no such cache.)
//!
//! A file left open by a crashed process is repaired when it is next opened (redb walks the
//! whole file to rebuild its allocator state; [`RedbBackend::repaired_on_open`] reports it).
//! The file is created with mode `0600` on Unix.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};

use crate::backend::{
    Backend, CasOutcome, Entry, KeyRange, Op, Page, Transaction, TxnOutcome, check_key,
    check_value, clamp_limit, page_from,
};
use crate::error::{Result, StorageError};
use crate::read_cache::{DEFAULT_CAPACITY, ReadCache};

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
    cache: ReadCache,
    writes: GroupCommit,
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
            inner: Arc::new(Inner {
                db,
                path,
                repaired,
                cache: ReadCache::new(DEFAULT_CAPACITY),
                writes: GroupCommit::default(),
            }),
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

/// Most writes committed together in one redb transaction.
const MAX_BATCH: usize = 256;
/// Most key and value bytes committed together (a batch stops growing past this).
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

/// One caller's write, queued for the group commit.
enum WriteOp {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    CompareAndSwap {
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
    },
    Commit(Transaction),
}

/// What one write did.
enum WriteOutcome {
    Put,
    Delete { existed: bool },
    CompareAndSwap(CasOutcome),
    Commit(TxnOutcome),
}

type Table<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;

impl WriteOp {
    /// The keys the write may change.
    fn keys(&self) -> Vec<&[u8]> {
        match self {
            Self::Put { key, .. } | Self::Delete { key } | Self::CompareAndSwap { key, .. } => {
                vec![key.as_slice()]
            }
            Self::Commit(txn) => txn.ops().iter().map(Op::key).collect(),
        }
    }

    /// Bytes of keys and values, for the batch limit.
    fn size(&self) -> usize {
        match self {
            Self::Put { key, value } => key.len() + value.len(),
            Self::Delete { key } => key.len(),
            Self::CompareAndSwap { key, expected, new } => {
                key.len() + expected.as_ref().map_or(0, Vec::len) + new.as_ref().map_or(0, Vec::len)
            }
            Self::Commit(txn) => txn
                .ops()
                .iter()
                .map(|op| match op {
                    Op::Put { key, value } => key.len() + value.len(),
                    Op::Delete { key } => key.len(),
                })
                .sum(),
        }
    }

    /// Applies the write to `table` (inside the batch's transaction, after the writes queued
    /// before it); returns what it did and whether it changed anything. Preconditions are
    /// checked before anything is written, so a write that conflicts changes nothing.
    fn apply(&self, table: &mut Table<'_>) -> Result<(WriteOutcome, bool), RedbError> {
        Ok(match self {
            Self::Put { key, value } => {
                table.insert(key.as_slice(), value.as_slice())?;
                (WriteOutcome::Put, true)
            }
            Self::Delete { key } => {
                let existed = table.remove(key.as_slice())?.is_some();
                (WriteOutcome::Delete { existed }, existed)
            }
            Self::CompareAndSwap { key, expected, new } => {
                let current = table.get(key.as_slice())?.map(|v| v.value().to_vec());
                if current != *expected {
                    let outcome = CasOutcome::Conflict { current };
                    return Ok((WriteOutcome::CompareAndSwap(outcome), false));
                }
                match new {
                    Some(new) => {
                        table.insert(key.as_slice(), new.as_slice())?;
                    }
                    None => {
                        table.remove(key.as_slice())?;
                    }
                }
                // Absent and staying absent writes nothing.
                let wrote = expected.is_some() || new.is_some();
                (WriteOutcome::CompareAndSwap(CasOutcome::Swapped), wrote)
            }
            Self::Commit(txn) => {
                let conflict = txn.first_conflict(|key, expected| {
                    let current = table.get(key)?;
                    Ok::<_, RedbError>(current.as_ref().map(|v| v.value()) == expected)
                })?;
                if let Some(key) = conflict {
                    let outcome = TxnOutcome::Conflict { key: key.to_vec() };
                    return Ok((WriteOutcome::Commit(outcome), false));
                }
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
                (
                    WriteOutcome::Commit(TxnOutcome::Committed),
                    !txn.ops().is_empty(),
                )
            }
        })
    }
}

/// Where a queued write's result is left for its caller.
type Slot = Arc<Mutex<Option<Result<WriteOutcome>>>>;

struct QueuedWrite {
    name: &'static str,
    op: WriteOp,
    slot: Slot,
}

/// Group commit: writers queue their write, then take turns as leader; a leader commits
/// everything queued (up to [`MAX_BATCH`]) in one redb transaction, so one durable commit (two
/// fsyncs) serves every writer that arrived while the previous commit was running.
#[derive(Default)]
struct GroupCommit {
    queue: Mutex<VecDeque<QueuedWrite>>,
    leader: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// Runs `op` through the group commit; blocks until it is durable (or failed).
    fn write_blocking(&self, name: &'static str, op: WriteOp) -> Result<WriteOutcome> {
        let slot: Slot = Arc::default();
        lock(&self.writes.queue).push_back(QueuedWrite {
            name,
            op,
            slot: Arc::clone(&slot),
        });
        let _leader = lock(&self.writes.leader);
        loop {
            if let Some(result) = lock(&slot).take() {
                return result;
            }
            // Our write is still queued (a leader that took it would have filled our slot).
            let batch = self.take_batch();
            if batch.is_empty() {
                return Err(StorageError::Batch {
                    op: name,
                    reason: "the write was lost from the commit queue".into(),
                });
            }
            self.commit_batch(batch);
        }
    }

    fn take_batch(&self) -> Vec<QueuedWrite> {
        let mut queue = lock(&self.writes.queue);
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < MAX_BATCH && (batch.is_empty() || bytes < MAX_BATCH_BYTES) {
            let Some(write) = queue.pop_front() else {
                break;
            };
            bytes += write.op.size();
            batch.push(write);
        }
        batch
    }

    /// Commits `batch` in one transaction and leaves each write's result in its slot. If
    /// anything fails, nothing of the batch is committed and every write gets the error.
    fn commit_batch(&self, batch: Vec<QueuedWrite>) {
        let result = (|| -> Result<Vec<WriteOutcome>, RedbError> {
            let txn = begin_write(&self.db)?;
            let keys: Vec<&[u8]> = batch.iter().flat_map(|w| w.op.keys()).collect();
            // Declared after `txn`, so dropped before an uncommitted `txn` is rolled back:
            // harmless, a rolled-back write is never visible.
            let _writing = self.cache.begin_write(&keys);
            let mut outcomes = Vec::with_capacity(batch.len());
            let mut wrote = false;
            {
                let mut table = txn.open_table(TABLE)?;
                for write in &batch {
                    let (outcome, changed) = write.op.apply(&mut table)?;
                    wrote |= changed;
                    outcomes.push(outcome);
                }
            }
            if wrote {
                txn.commit()?;
            } else {
                txn.abort()?;
            }
            Ok(outcomes)
        })();
        match result {
            Ok(outcomes) => {
                for (write, outcome) in batch.iter().zip(outcomes) {
                    *lock(&write.slot) = Some(Ok(outcome));
                }
            }
            Err(error) => {
                let reason = error.0.to_string();
                for write in &batch {
                    *lock(&write.slot) = Some(Err(StorageError::Batch {
                        op: write.name,
                        reason: reason.clone(),
                    }));
                }
            }
        }
    }
}

impl RedbBackend {
    /// Runs a write through the group commit on the blocking thread pool. The write runs to
    /// completion even if the caller stops waiting.
    async fn write(&self, name: &'static str, op: WriteOp) -> Result<WriteOutcome> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.write_blocking(name, op))
            .await
            .map_err(|source| StorageError::Worker { op: name, source })?
    }
}

/// The outcome of a write of another kind than asked: a bug in this module.
fn mismatch(op: &'static str) -> StorageError {
    StorageError::Batch {
        op,
        reason: "internal error: the write came back as another kind".into(),
    }
}

#[async_trait]
impl Backend for RedbBackend {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(value) = self.inner.cache.get(key) {
            return Ok(Some(value));
        }
        // Taken before the read's snapshot: see `read_cache`.
        let ticket = self.inner.cache.ticket();
        let key = key.to_vec();
        let inner = Arc::clone(&self.inner);
        self.run("get", move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(TABLE)?;
            let value = table.get(key.as_slice())?.map(|v| v.value().to_vec());
            if let (Some(ticket), Some(value)) = (ticket, &value) {
                inner.cache.fill(ticket, &key, value);
            }
            Ok(value)
        })
        .await
    }

    async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        let op = WriteOp::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        };
        match self.write("put", op).await? {
            WriteOutcome::Put => Ok(()),
            _ => Err(mismatch("put")),
        }
    }

    async fn delete(&self, key: &[u8]) -> Result<bool> {
        let op = WriteOp::Delete { key: key.to_vec() };
        match self.write("delete", op).await? {
            WriteOutcome::Delete { existed } => Ok(existed),
            _ => Err(mismatch("delete")),
        }
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
        let op = WriteOp::CompareAndSwap {
            key: key.to_vec(),
            expected: expected.map(<[u8]>::to_vec),
            new: new.map(<[u8]>::to_vec),
        };
        match self.write("compare_and_swap", op).await? {
            WriteOutcome::CompareAndSwap(outcome) => Ok(outcome),
            _ => Err(mismatch("compare_and_swap")),
        }
    }

    async fn commit(&self, txn: Transaction) -> Result<TxnOutcome> {
        txn.check_limits()?;
        if txn.is_empty() {
            return Ok(TxnOutcome::Committed);
        }
        match self.write("commit", WriteOp::Commit(txn)).await? {
            WriteOutcome::Commit(outcome) => Ok(outcome),
            _ => Err(mismatch("commit")),
        }
    }
}
