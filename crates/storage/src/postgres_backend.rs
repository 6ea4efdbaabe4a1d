//! The PostgreSQL backend: one table `(key bytea primary key, value bytea not null)` behind a
//! pool of connections ([deadpool-postgres](https://docs.rs/deadpool-postgres)).
//!
//! # Concurrency
//!
//! Every write holds a per-key *advisory lock* (`pg_advisory_xact_lock`, released at commit)
//! for each key it touches, and everything runs at `READ COMMITTED`:
//!
//! * `put` is one statement that takes its key's lock, then upserts.
//! * `delete`, `compare_and_swap` and `commit` open a transaction, take the locks of all their
//!   keys in ascending lock-id order in one statement, *then* read (each later statement gets a
//!   fresh snapshot, which sees every write committed before the locks were granted), check
//!   their expectations and write.
//!
//! While a transaction holds its keys' locks no other writer can change those keys (present
//! or absent: row locks could not cover absent keys, advisory locks can), so a precondition
//! that held when read still holds at commit, and every write is linearizable. Locks are always
//! taken in ascending order, so writers never deadlock on them; a lock-id collision between two
//! keys only makes their writers wait for each other. Plain reads take no locks.
//!
//! We chose this over `SERIALIZABLE` because contended compare-and-swap loops under SSI abort
//! and retry often, while lock waits queue fairly. Should the server abort a transaction anyway
//! (SQLSTATE 40001 or 40P01, e.g. if a DBA forces `default_transaction_isolation =
//! serializable`), the operation is retried a bounded number of times
//! (`StorageError::Contention` after that).
//!
//! # Listing
//!
//! A prefix is turned into the key range `prefix <= key < successor(prefix)` (trailing `0xFF`
//! bytes dropped, last byte incremented; no upper bound for an empty or all-`0xFF` prefix), so
//! listing is an index range scan and works for any bytes; `bytea` compares bytewise.
//!
//! Connections are made without TLS: point the backend at a local socket or a trusted network.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls};

use crate::backend::{
    Backend, CasOutcome, Entry, KeyRange, Page, Transaction, TxnOutcome, check_key, check_value,
    clamp_limit, page_from,
};
use crate::error::{Result, StorageError};

/// Largest accepted [`PostgresOptions::pool_size`].
pub const MAX_POOL_SIZE: usize = 256;

/// Longest PostgreSQL identifier, in bytes.
const MAX_IDENTIFIER_LEN: usize = 63;

/// How many times an operation aborted by the server is tried before giving up.
const MAX_ATTEMPTS: u32 = 5;

/// Options for [`PostgresBackend::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The table holding the keys, created if absent: a lowercase SQL identifier
    /// (`[a-z_][a-z0-9_]*`, at most 63 bytes). Default `rampart_kv`.
    pub table: String,
    /// The most connections the pool opens (1 to [`MAX_POOL_SIZE`]). Default 16.
    pub pool_size: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            table: "rampart_kv".to_owned(),
            pool_size: 16,
        }
    }
}

/// A [`Backend`] stored in a PostgreSQL table. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PostgresBackend {
    pool: Pool,
    table: Arc<str>,
    sql: Arc<Sql>,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresBackend")
            .field("table", &self.table)
            .field("connections", &status.size)
            .field("max_connections", &status.max_size)
            .finish_non_exhaustive()
    }
}

/// The SQL text of every statement, with the (validated, quoted) table name filled in.
struct Sql {
    create: String,
    get: String,
    put: String,
    delete: String,
    lock: &'static str,
    select_many: String,
    upsert_many: String,
    delete_many: String,
    /// Indexed by `[lower bound inclusive][upper bound present]`.
    list: [[String; 2]; 2],
}

impl Sql {
    fn new(table: &str) -> Self {
        let t = format!("\"{table}\"");
        let list = |lower: &str, upper: bool| {
            let upper = if upper { " AND key < $2" } else { "" };
            let limit = if upper.is_empty() { "$2" } else { "$3" };
            format!(
                "SELECT key, value FROM {t} WHERE key {lower} $1{upper} ORDER BY key LIMIT {limit}"
            )
        };
        Self {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {t} (key bytea PRIMARY KEY, value bytea NOT NULL)"
            ),
            get: format!("SELECT value FROM {t} WHERE key = $1"),
            // The CTE takes the lock before the row exists; ON CONFLICT then works on the
            // latest committed row, not on the statement's snapshot.
            put: format!(
                "WITH lock AS (SELECT pg_advisory_xact_lock($3)) \
                 INSERT INTO {t} (key, value) SELECT $1, $2 FROM lock \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            delete: format!("DELETE FROM {t} WHERE key = $1"),
            // unnest yields the (sorted) ids in order, so locks are taken in ascending order.
            lock: "SELECT pg_advisory_xact_lock(id) FROM unnest($1::int8[]) AS u(id)",
            select_many: format!("SELECT key, value FROM {t} WHERE key = ANY($1)"),
            upsert_many: format!(
                "INSERT INTO {t} (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            delete_many: format!("DELETE FROM {t} WHERE key = ANY($1)"),
            list: [
                [list(">", false), list(">", true)],
                [list(">=", false), list(">=", true)],
            ],
        }
    }
}

impl PostgresBackend {
    /// Connects to the database at `url` (a libpq-style URL or key=value string), creating
    /// the table if it does not exist. Fails if the server cannot be reached.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self> {
        validate_table_name(&options.table)?;
        if !(1..=MAX_POOL_SIZE).contains(&options.pool_size) {
            return Err(StorageError::InvalidPoolSize {
                size: options.pool_size,
            });
        }
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|source| StorageError::InvalidUrl { source })?;
        if config.get_application_name().is_none() {
            config.application_name("rampart");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(15)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|source| StorageError::PoolSetup { source })?;
        let backend = Self {
            pool,
            sql: Arc::new(Sql::new(&options.table)),
            table: options.table.into(),
        };
        backend.create_table().await?;
        Ok(backend)
    }

    /// The table holding the keys.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The id of the advisory lock (`pg_advisory_xact_lock`) every writer of `key` holds while
    /// it writes. Anything else changing the table directly must hold it too.
    pub fn advisory_lock_id(&self, key: &[u8]) -> i64 {
        lock_id(&self.table, key)
    }

    /// Creates the table if absent, and warns if the server does not make commits durable.
    async fn create_table(&self) -> Result<()> {
        const OP: &str = "create table";
        let client = self.pool.get().await.map_err(StorageError::pool(OP))?;
        match client.batch_execute(&self.sql.create).await {
            // Two processes creating the table at once: one of them loses the race, harmlessly.
            Err(e)
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    || e.code() == Some(&SqlState::DUPLICATE_TABLE) => {}
            other => other.map_err(StorageError::postgres(OP))?,
        }
        let row = client
            .query_one(
                "SELECT current_setting('fsync'), current_setting('synchronous_commit')",
                &[],
            )
            .await
            .map_err(StorageError::postgres(OP))?;
        let (fsync, synchronous_commit): (String, String) = (
            row.try_get(0).map_err(StorageError::postgres(OP))?,
            row.try_get(1).map_err(StorageError::postgres(OP))?,
        );
        if fsync == "off" || synchronous_commit == "off" {
            tracing::warn!(
                %fsync,
                %synchronous_commit,
                "postgres server does not flush commits to disk: acknowledged writes may be lost \
                 if it crashes"
            );
        }
        Ok(())
    }

    /// Sorted, deduplicated lock ids for `keys`.
    fn lock_ids<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) -> Vec<i64> {
        let ids: BTreeSet<i64> = keys.into_iter().map(|k| self.advisory_lock_id(k)).collect();
        ids.into_iter().collect()
    }

    async fn get_once(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        const OP: &str = "get";
        let pg = StorageError::postgres;
        let client = self.pool.get().await.map_err(StorageError::pool(OP))?;
        let stmt = client.prepare_cached(&self.sql.get).await.map_err(pg(OP))?;
        let row = client.query_opt(&stmt, &[&key]).await.map_err(pg(OP))?;
        row.map(|row| row.try_get(0)).transpose().map_err(pg(OP))
    }

    async fn put_once(&self, key: &[u8], value: &[u8]) -> Result<()> {
        const OP: &str = "put";
        let pg = StorageError::postgres;
        let client = self.pool.get().await.map_err(StorageError::pool(OP))?;
        let stmt = client.prepare_cached(&self.sql.put).await.map_err(pg(OP))?;
        let lock = self.advisory_lock_id(key);
        client
            .execute(&stmt, &[&key, &value, &lock])
            .await
            .map_err(pg(OP))?;
        Ok(())
    }

    async fn delete_once(&self, key: &[u8]) -> Result<bool> {
        const OP: &str = "delete";
        let pg = StorageError::postgres;
        let mut client = self.pool.get().await.map_err(StorageError::pool(OP))?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await
            .map_err(pg(OP))?;
        let lock = tx.prepare_cached(self.sql.lock).await.map_err(pg(OP))?;
        let delete = tx.prepare_cached(&self.sql.delete).await.map_err(pg(OP))?;
        tx.execute(&lock, &[&self.lock_ids([key])])
            .await
            .map_err(pg(OP))?;
        let deleted = tx.execute(&delete, &[&key]).await.map_err(pg(OP))?;
        tx.commit().await.map_err(pg(OP))?;
        Ok(deleted > 0)
    }

    async fn list_once(&self, range: &KeyRange<'_>, limit: usize) -> Result<Page> {
        const OP: &str = "list";
        let pg = StorageError::postgres;
        let client = self.pool.get().await.map_err(StorageError::pool(OP))?;
        let sql =
            &self.sql.list[usize::from(range.lower_inclusive)][usize::from(range.upper.is_some())];
        let stmt = client.prepare_cached(sql).await.map_err(pg(OP))?;
        // Fetch one extra row to learn whether another page follows.
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let rows = match &range.upper {
            Some(upper) => client.query(&stmt, &[&range.lower, &upper, &fetch]).await,
            None => client.query(&stmt, &[&range.lower, &fetch]).await,
        }
        .map_err(pg(OP))?;
        let entries = rows
            .iter()
            .map(|row| {
                Ok(Entry {
                    key: row.try_get(0)?,
                    value: row.try_get(1)?,
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(pg(OP))?;
        Ok(page_from(entries, limit))
    }

    async fn compare_and_swap_once(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome> {
        const OP: &str = "compare_and_swap";
        let pg = StorageError::postgres;
        let mut client = self.pool.get().await.map_err(StorageError::pool(OP))?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await
            .map_err(pg(OP))?;
        let lock = tx.prepare_cached(self.sql.lock).await.map_err(pg(OP))?;
        let get = tx.prepare_cached(&self.sql.get).await.map_err(pg(OP))?;
        let lock_ids = self.lock_ids([key]);
        tx.execute(&lock, &[&lock_ids]).await.map_err(pg(OP))?;
        let current: Option<Vec<u8>> = tx
            .query_opt(&get, &[&key])
            .await
            .map_err(pg(OP))?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(pg(OP))?;
        if current.as_deref() != expected {
            tx.rollback().await.map_err(pg(OP))?;
            return Ok(CasOutcome::Conflict { current });
        }
        match new {
            Some(new) => {
                // Re-taking the lock we hold is a no-op: advisory locks are reentrant.
                let put = tx.prepare_cached(&self.sql.put).await.map_err(pg(OP))?;
                let lock_id = self.advisory_lock_id(key);
                tx.execute(&put, &[&key, &new, &lock_id])
                    .await
                    .map_err(pg(OP))?;
            }
            None if current.is_some() => {
                let delete = tx.prepare_cached(&self.sql.delete).await.map_err(pg(OP))?;
                tx.execute(&delete, &[&key]).await.map_err(pg(OP))?;
            }
            None => {}
        }
        tx.commit().await.map_err(pg(OP))?;
        Ok(CasOutcome::Swapped)
    }

    async fn commit_once(&self, txn: &Transaction) -> Result<TxnOutcome> {
        const OP: &str = "commit";
        let pg = StorageError::postgres;
        let writes = txn.net_writes();
        let lock_ids = self.lock_ids(
            txn.preconditions()
                .iter()
                .map(|p| p.key.as_slice())
                .chain(writes.keys().copied()),
        );

        let mut client = self.pool.get().await.map_err(StorageError::pool(OP))?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await
            .map_err(pg(OP))?;
        let lock = tx.prepare_cached(self.sql.lock).await.map_err(pg(OP))?;
        tx.execute(&lock, &[&lock_ids]).await.map_err(pg(OP))?;

        if !txn.preconditions().is_empty() {
            let select = tx
                .prepare_cached(&self.sql.select_many)
                .await
                .map_err(pg(OP))?;
            let keys: Vec<&[u8]> = txn
                .preconditions()
                .iter()
                .map(|p| p.key.as_slice())
                .collect();
            let current = tx
                .query(&select, &[&keys])
                .await
                .map_err(pg(OP))?
                .iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<HashMap<Vec<u8>, Vec<u8>>, tokio_postgres::Error>>()
                .map_err(pg(OP))?;
            let Ok(conflict) = txn.first_conflict(|key, expected| {
                Ok::<_, std::convert::Infallible>(current.get(key).map(Vec::as_slice) == expected)
            });
            if let Some(key) = conflict {
                tx.rollback().await.map_err(pg(OP))?;
                return Ok(TxnOutcome::Conflict { key: key.to_vec() });
            }
        }

        let (mut put_keys, mut put_values, mut delete_keys) = (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in writes {
            match value {
                Some(value) => {
                    put_keys.push(key);
                    put_values.push(value);
                }
                None => delete_keys.push(key),
            }
        }
        if !put_keys.is_empty() {
            let upsert = tx
                .prepare_cached(&self.sql.upsert_many)
                .await
                .map_err(pg(OP))?;
            tx.execute(&upsert, &[&put_keys, &put_values])
                .await
                .map_err(pg(OP))?;
        }
        if !delete_keys.is_empty() {
            let delete = tx
                .prepare_cached(&self.sql.delete_many)
                .await
                .map_err(pg(OP))?;
            tx.execute(&delete, &[&delete_keys]).await.map_err(pg(OP))?;
        }
        tx.commit().await.map_err(pg(OP))?;
        Ok(TxnOutcome::Committed)
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        retry("get", || self.get_once(key)).await
    }

    async fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        retry("put", || self.put_once(key, value)).await
    }

    async fn delete(&self, key: &[u8]) -> Result<bool> {
        retry("delete", || self.delete_once(key)).await
    }

    async fn list(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Page> {
        let Some(range) = KeyRange::new(prefix, start_after) else {
            return Ok(Page::default());
        };
        let limit = clamp_limit(limit);
        retry("list", || self.list_once(&range, limit)).await
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
        retry("compare_and_swap", || {
            self.compare_and_swap_once(key, expected, new)
        })
        .await
    }

    async fn commit(&self, txn: Transaction) -> Result<TxnOutcome> {
        txn.check_limits()?;
        if txn.is_empty() {
            return Ok(TxnOutcome::Committed);
        }
        retry("commit", || self.commit_once(&txn)).await
    }
}

/// Runs `attempt` until it succeeds, fails for a reason other than the server aborting it
/// (serialization failure or deadlock), or has been tried [`MAX_ATTEMPTS`] times. Every attempt
/// is a whole transaction, so a retry never repeats part of one.
async fn retry<T, F, Fut>(op: &'static str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut attempts = 1;
    loop {
        match attempt().await {
            Err(StorageError::Postgres { source, .. }) if is_transient(&source) => {
                if attempts >= MAX_ATTEMPTS {
                    return Err(StorageError::Contention {
                        op,
                        attempts,
                        source,
                    });
                }
                tracing::debug!(op, attempts, "postgres aborted the transaction, retrying");
                tokio::time::sleep(Duration::from_millis(2 << attempts)).await;
                attempts += 1;
            }
            other => return other,
        }
    }
}

fn is_transient(error: &tokio_postgres::Error) -> bool {
    let code = error.code();
    code == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        || code == Some(&SqlState::T_R_DEADLOCK_DETECTED)
}

/// Accepts `[a-z_][a-z0-9_]*` of at most 63 bytes: the name is interpolated into SQL (quoted),
/// so nothing else gets near it.
pub(crate) fn validate_table_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_IDENTIFIER_LEN {
        Some("it is longer than 63 bytes")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        Some("it must start with a lowercase ASCII letter or an underscore")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Some("only lowercase ASCII letters, digits and underscores are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StorageError::InvalidTableName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The advisory lock id of `key` in `table`: 64-bit FNV-1a of `table`, a zero byte and `key`.
/// Stable across builds and processes (unlike `std`'s hasher), which is what matters: every
/// process sharing the table must compute the same ids.
fn lock_id(table: &str, key: &[u8]) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = table
        .as_bytes()
        .iter()
        .chain(&[0])
        .chain(key)
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    i64::from_be_bytes(hash.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_accepted() {
        for name in ["rampart_kv", "_t", "kv2", &"a".repeat(63)] {
            validate_table_name(name).unwrap();
        }
    }

    #[test]
    fn table_names_rejected() {
        for (name, reason) in [
            ("", "empty"),
            (&"a".repeat(64), "longer"),
            ("2kv", "must start"),
            ("Kv", "must start"),
            ("kV", "only lowercase"),
            ("kv-store", "only lowercase"),
            ("kv store", "only lowercase"),
            ("kv\"; drop table x; --", "only lowercase"),
            ("public.kv", "only lowercase"),
            ("kvé", "only lowercase"),
            ("kv\0", "only lowercase"),
        ] {
            match validate_table_name(name) {
                Err(StorageError::InvalidTableName {
                    name: got,
                    reason: why,
                }) => {
                    assert_eq!(got, name);
                    assert!(why.contains(reason), "{name:?}: {why}");
                }
                other => panic!("{name:?} was not rejected: {other:?}"),
            }
        }
    }

    #[test]
    fn lock_ids_are_stable_and_table_scoped() {
        // Changing the hash would let old and new processes sharing a table miss each other's
        // locks: these values must never change.
        assert_eq!(lock_id("", b""), 0xaf63_bd4c_8601_b7df_u64 as i64);
        assert_eq!(lock_id("kv", b"a"), lock_id("kv", b"a"));
        assert_ne!(lock_id("kv", b"a"), lock_id("kv", b"b"));
        assert_ne!(lock_id("kv", b"a"), lock_id("kv2", b"a"));
    }

    #[test]
    fn list_sql_matches_bounds() {
        let sql = Sql::new("t");
        assert_eq!(
            sql.list[1][1],
            "SELECT key, value FROM \"t\" WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3"
        );
        assert_eq!(
            sql.list[0][0],
            "SELECT key, value FROM \"t\" WHERE key > $1 ORDER BY key LIMIT $2"
        );
    }
}
