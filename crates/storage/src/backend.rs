//! The [`Backend`] trait and the types it speaks: pages of entries, compare-and-swap and
//! transaction outcomes, the [`Transaction`] builder, and the limits every backend enforces.
//!
//! Keys and values are byte strings. Keys sort in byte order (shorter first on a common
//! prefix), callers namespace them by prefix. `Debug` output of every type here shows keys but
//! only the length of values, so values (which may be secrets) never reach logs.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use crate::error::{Result, StorageError};

/// Longest key accepted by writes, in bytes. Keys must fit a PostgreSQL B-tree index entry
/// (about 2.7 KB); the same limit applies to every backend so data can move between them.
pub const MAX_KEY_LEN: usize = 1024;

/// Longest value accepted by writes, in bytes (16 MiB). Larger blobs do not belong in a
/// key-value store that fsyncs every write.
pub const MAX_VALUE_LEN: usize = 16 * 1024 * 1024;

/// Most entries one [`Backend::list`] call returns; larger limits are lowered to this.
pub const MAX_LIST_LIMIT: usize = 1000;

/// Most preconditions plus operations in one [`Transaction`]. PostgreSQL takes one lock per key
/// and shares a bounded lock table between all sessions, so transactions stay small.
pub const MAX_TXN_LEN: usize = 128;

/// A key-value store with ordered keys, compare-and-swap and multi-key transactions.
///
/// Every write that returns `Ok` is durable: it survives the process being killed (and, as far
/// as the disk honours `fsync`, power loss). Every operation is atomic and linearizable against
/// every other operation on the same store, including from other processes sharing it.
///
/// A write that returns `Err` (other than a size limit) or is cancelled may or may not have
/// been applied, as with any database: read back, or use compare-and-swap, to find out.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// The value stored under `key`, if any.
    async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Stores `value` under `key`, replacing any previous value.
    async fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;

    /// Removes `key`; returns whether it existed.
    async fn delete(&self, key: &[u8]) -> Result<bool>;

    /// Entries whose key starts with `prefix`, in key order, starting after `start_after` (when
    /// given), at most `limit` of them.
    ///
    /// `limit` is clamped to `1..=`[`MAX_LIST_LIMIT`]. [`Page::next`] is `Some` exactly when
    /// more entries follow: pass it back as `start_after` to read the next page. Each page is
    /// a consistent snapshot; pages taken while others write may reflect different moments.
    async fn list(&self, prefix: &[u8], start_after: Option<&[u8]>, limit: usize) -> Result<Page>;

    /// Atomically replaces the value of `key` with `new` if its current value is `expected`.
    ///
    /// `expected: None` means the key must be absent; `new: None` deletes it. On a mismatch
    /// nothing is written and the current value is returned in [`CasOutcome::Conflict`].
    async fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<CasOutcome>;

    /// Applies all of `txn`'s operations if all its preconditions hold, atomically; otherwise
    /// applies none and names the first precondition (in the order added) that failed.
    async fn commit(&self, txn: Transaction) -> Result<TxnOutcome>;
}

/// A stored key and its value.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &DebugKey(&self.key))
            .field("value", &Redacted(Some(&self.value)))
            .finish()
    }
}

/// One page of a [`Backend::list`] result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The entries, in key order.
    pub entries: Vec<Entry>,
    /// Where the next page starts (`start_after` for the next call), or `None` on the last page.
    pub next: Option<Vec<u8>>,
}

/// What [`Backend::compare_and_swap`] did.
#[derive(Clone, PartialEq, Eq)]
#[must_use = "a conflict means nothing was written"]
pub enum CasOutcome {
    /// The key held the expected value (or was absent, as expected) and now holds the new one.
    Swapped,
    /// The key did not hold the expected value; nothing was written.
    Conflict {
        /// The value the key held when the swap was attempted (`None`: absent).
        current: Option<Vec<u8>>,
    },
}

impl CasOutcome {
    /// Whether the swap happened.
    pub fn is_swapped(&self) -> bool {
        matches!(self, Self::Swapped)
    }
}

impl fmt::Debug for CasOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Swapped => f.write_str("Swapped"),
            Self::Conflict { current } => f
                .debug_struct("Conflict")
                .field("current", &Redacted(current.as_deref()))
                .finish(),
        }
    }
}

/// What [`Backend::commit`] did.
#[derive(Clone, PartialEq, Eq)]
#[must_use = "a conflict means nothing was written"]
pub enum TxnOutcome {
    /// Every precondition held and every operation was applied.
    Committed,
    /// A precondition failed; nothing was written.
    Conflict {
        /// The key of the first failing precondition, in the order they were added.
        key: Vec<u8>,
    },
}

impl TxnOutcome {
    /// Whether the transaction was applied.
    pub fn is_committed(&self) -> bool {
        matches!(self, Self::Committed)
    }
}

impl fmt::Debug for TxnOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Committed => f.write_str("Committed"),
            Self::Conflict { key } => f
                .debug_struct("Conflict")
                .field("key", &DebugKey(key))
                .finish(),
        }
    }
}

/// A condition a [`Transaction`] checks before writing anything.
#[derive(Clone, PartialEq, Eq)]
pub struct Precondition {
    /// The key checked.
    pub key: Vec<u8>,
    /// The value it must hold, or `None` if it must be absent.
    pub expected: Option<Vec<u8>>,
}

impl fmt::Debug for Precondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Precondition")
            .field("key", &DebugKey(&self.key))
            .field("expected", &Redacted(self.expected.as_deref()))
            .finish()
    }
}

/// A write in a [`Transaction`].
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// Store `value` under `key`.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key` (absent keys are fine).
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

impl Op {
    /// The key written.
    pub fn key(&self) -> &[u8] {
        match self {
            Self::Put { key, .. } | Self::Delete { key } => key,
        }
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put { key, value } => f
                .debug_struct("Put")
                .field("key", &DebugKey(key))
                .field("value", &Redacted(Some(value)))
                .finish(),
            Self::Delete { key } => f
                .debug_struct("Delete")
                .field("key", &DebugKey(key))
                .finish(),
        }
    }
}

/// Preconditions and writes applied all-or-nothing by [`Backend::commit`].
///
/// ```
/// use rampart_storage::Transaction;
///
/// let txn = Transaction::new()
///     .require(b"accounts/alice", Some(b"10".as_slice()))
///     .require_absent(b"locks/alice")
///     .put(b"accounts/alice", b"7")
///     .delete(b"pending/alice");
/// assert_eq!(txn.len(), 4);
/// ```
///
/// Operations apply in the order added, so a later operation on the same key wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    preconditions: Vec<Precondition>,
    ops: Vec<Op>,
}

impl Transaction {
    /// An empty transaction (committing it succeeds and changes nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `key` to hold `expected` (`None`: to be absent) when the transaction commits.
    pub fn require(mut self, key: impl Into<Vec<u8>>, expected: Option<&[u8]>) -> Self {
        self.preconditions.push(Precondition {
            key: key.into(),
            expected: expected.map(<[u8]>::to_vec),
        });
        self
    }

    /// Requires `key` to be absent when the transaction commits.
    pub fn require_absent(self, key: impl Into<Vec<u8>>) -> Self {
        self.require(key, None)
    }

    /// Stores `value` under `key`.
    pub fn put(mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Removes `key`.
    pub fn delete(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }

    /// The preconditions, in the order added.
    pub fn preconditions(&self) -> &[Precondition] {
        &self.preconditions
    }

    /// The operations, in the order added.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The number of preconditions plus operations.
    pub fn len(&self) -> usize {
        self.preconditions.len() + self.ops.len()
    }

    /// Whether the transaction has neither preconditions nor operations.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the transaction against [`MAX_TXN_LEN`], [`MAX_KEY_LEN`] and [`MAX_VALUE_LEN`].
    pub(crate) fn check_limits(&self) -> Result<()> {
        if self.len() > MAX_TXN_LEN {
            return Err(StorageError::TransactionTooLarge {
                len: self.len(),
                max: MAX_TXN_LEN,
            });
        }
        for op in &self.ops {
            check_key(op.key())?;
            if let Op::Put { value, .. } = op {
                check_value(value)?;
            }
        }
        Ok(())
    }

    /// The net effect of the operations: for each key written, its final value (`None`:
    /// deleted), in key order.
    pub(crate) fn net_writes(&self) -> BTreeMap<&[u8], Option<&[u8]>> {
        let mut writes = BTreeMap::new();
        for op in &self.ops {
            match op {
                Op::Put { key, value } => writes.insert(key.as_slice(), Some(value.as_slice())),
                Op::Delete { key } => writes.insert(key.as_slice(), None),
            };
        }
        writes
    }

    /// The key of the first precondition that does not hold; `holds(key, expected)` says
    /// whether `key` currently holds `expected` (`None`: is absent).
    pub(crate) fn first_conflict<E>(
        &self,
        mut holds: impl FnMut(&[u8], Option<&[u8]>) -> Result<bool, E>,
    ) -> Result<Option<&[u8]>, E> {
        for pre in &self.preconditions {
            if !holds(&pre.key, pre.expected.as_deref())? {
                return Ok(Some(&pre.key));
            }
        }
        Ok(None)
    }
}

/// Rejects keys longer than [`MAX_KEY_LEN`].
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(StorageError::KeyTooLarge {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

/// Rejects values longer than [`MAX_VALUE_LEN`].
pub(crate) fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(StorageError::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

/// The key range a [`Backend::list`] call covers: `lower` (inclusive or exclusive) up to
/// `upper` (exclusive, `None`: unbounded).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KeyRange<'a> {
    pub lower: &'a [u8],
    pub lower_inclusive: bool,
    pub upper: Option<Vec<u8>>,
}

impl<'a> KeyRange<'a> {
    /// The range of keys starting with `prefix` and greater than `start_after`, or `None` if
    /// it is empty.
    pub(crate) fn new(prefix: &'a [u8], start_after: Option<&'a [u8]>) -> Option<Self> {
        let upper = prefix_successor(prefix);
        let (lower, lower_inclusive) = match start_after {
            Some(after) if after >= prefix => (after, false),
            _ => (prefix, true),
        };
        match &upper {
            Some(upper) if lower >= upper.as_slice() => None,
            _ => Some(Self {
                lower,
                lower_inclusive,
                upper,
            }),
        }
    }
}

/// The smallest key greater than every key starting with `prefix`, or `None` if there is none
/// (the prefix is empty or all `0xFF`): drop trailing `0xFF` bytes, then increment the last one.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut upper = prefix.get(..=keep)?.to_vec();
    let last = upper.last_mut()?;
    *last += 1;
    Some(upper)
}

/// The effective page size for a requested `limit`.
pub(crate) fn clamp_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_LIST_LIMIT)
}

/// Builds a [`Page`] from up to `limit + 1` entries read in key order: the extra entry only
/// tells whether another page follows.
pub(crate) fn page_from(mut entries: Vec<Entry>, limit: usize) -> Page {
    let next = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|e| e.key.clone())
    } else {
        None
    };
    Page { entries, next }
}

/// Formats a key as an escaped byte string, e.g. `b"users/\x00\xff"`.
pub(crate) struct DebugKey<'a>(pub &'a [u8]);

impl fmt::Debug for DebugKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// Formats a value as its length only.
struct Redacted<'a>(Option<&'a [u8]>);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "<{} bytes>", value.len()),
            None => f.write_str("None"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_increments_the_last_byte_below_ff() {
        assert_eq!(prefix_successor(b"abc"), Some(b"abd".to_vec()));
        assert_eq!(prefix_successor(&[0x00]), Some(vec![0x01]));
        assert_eq!(prefix_successor(&[0x01, 0xFF]), Some(vec![0x02]));
        assert_eq!(
            prefix_successor(&[0x01, 0xFE, 0xFF, 0xFF]),
            Some(vec![0x01, 0xFF])
        );
    }

    #[test]
    fn prefix_successor_is_unbounded_for_empty_and_all_ff() {
        assert_eq!(prefix_successor(b""), None);
        assert_eq!(prefix_successor(&[0xFF]), None);
        assert_eq!(prefix_successor(&[0xFF, 0xFF, 0xFF]), None);
    }

    #[test]
    fn key_range_starts_after_start_after_only_inside_the_prefix() {
        let r = KeyRange::new(b"a/", None).unwrap();
        assert_eq!((r.lower, r.lower_inclusive), (&b"a/"[..], true));
        assert_eq!(r.upper.as_deref(), Some(&b"a0"[..]));

        let r = KeyRange::new(b"a/", Some(b"a")).unwrap();
        assert_eq!((r.lower, r.lower_inclusive), (&b"a/"[..], true));

        let r = KeyRange::new(b"a/", Some(b"a/")).unwrap();
        assert_eq!((r.lower, r.lower_inclusive), (&b"a/"[..], false));

        let r = KeyRange::new(b"a/", Some(b"a/x")).unwrap();
        assert_eq!((r.lower, r.lower_inclusive), (&b"a/x"[..], false));

        assert_eq!(KeyRange::new(b"a/", Some(b"a0")), None);
        assert_eq!(KeyRange::new(b"a/", Some(b"b")), None);

        let r = KeyRange::new(&[0xFF], Some(&[0xFF, 0xFF, 0xFF])).unwrap();
        assert_eq!(r.upper, None);
    }

    #[test]
    fn limit_is_clamped() {
        assert_eq!(clamp_limit(0), 1);
        assert_eq!(clamp_limit(10), 10);
        assert_eq!(clamp_limit(usize::MAX), MAX_LIST_LIMIT);
    }

    #[test]
    fn net_writes_keep_the_last_operation_per_key() {
        let txn = Transaction::new()
            .put(b"x", b"1")
            .delete(b"x")
            .delete(b"y")
            .put(b"y", b"2")
            .put(b"z", b"3")
            .put(b"z", b"4");
        let writes: Vec<_> = txn.net_writes().into_iter().collect();
        assert_eq!(
            writes,
            vec![
                (&b"x"[..], None),
                (&b"y"[..], Some(&b"2"[..])),
                (&b"z"[..], Some(&b"4"[..]))
            ]
        );
    }

    #[test]
    fn limits_are_checked() {
        let big_key = vec![0u8; MAX_KEY_LEN + 1];
        let err = Transaction::new()
            .delete(big_key)
            .check_limits()
            .unwrap_err();
        assert!(
            matches!(err, StorageError::KeyTooLarge { len, max } if len == max + 1),
            "{err:?}"
        );
        let big_value = vec![0u8; MAX_VALUE_LEN + 1];
        assert!(matches!(
            Transaction::new().put(b"k", big_value).check_limits(),
            Err(StorageError::ValueTooLarge { .. })
        ));
        let mut txn = Transaction::new();
        for i in 0..=MAX_TXN_LEN {
            txn = txn.require_absent(i.to_string());
        }
        let err = txn.check_limits().unwrap_err();
        assert!(
            matches!(err, StorageError::TransactionTooLarge { len, max } if len == max + 1),
            "{err:?}"
        );
        assert!(check_key(&[0u8; MAX_KEY_LEN]).is_ok());
    }

    #[test]
    fn debug_output_never_shows_values() {
        let secret = b"hunter2-secret";
        let txn = Transaction::new()
            .require(b"k", Some(secret.as_slice()))
            .put(b"k", secret.as_slice());
        let entry = Entry {
            key: b"k\x00".to_vec(),
            value: secret.to_vec(),
        };
        let page = Page {
            entries: vec![entry.clone()],
            next: None,
        };
        let cas = CasOutcome::Conflict {
            current: Some(secret.to_vec()),
        };
        for text in [
            format!("{txn:?}"),
            format!("{entry:?}"),
            format!("{page:?}"),
            format!("{cas:?}"),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!text.contains("104, 117"), "{text}");
        }
        assert_eq!(
            format!("{entry:?}"),
            r#"Entry { key: b"k\x00", value: <14 bytes> }"#
        );
    }
}
