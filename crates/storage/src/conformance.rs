//! The conformance suite every [`Backend`] must pass (feature `conformance`, test-only).
//!
//! Each case is an `async fn(&dyn Backend)` that panics with a message saying what went wrong.
//! Cases use their own key prefixes, so they may share a store, but each expects the keys it
//! uses to start out absent. A backend's test file runs every case with
//! [`conformance_tests!`](crate::conformance_tests):
//!
//! ```ignore
//! async fn run<F, Fut>(case: &str, body: F)
//! where
//!     F: FnOnce(Arc<dyn Backend>) -> Fut,
//!     Fut: Future<Output = ()> + Send + 'static,
//! {
//!     let backend = /* a fresh, empty store */;
//!     body(backend).await; // or spawn it, to clean up even when it panics
//! }
//!
//! rampart_storage::conformance_tests!(run);
//! ```
//!
//! The module also holds the helpers the PostgreSQL tests share ([`postgres_url`],
//! [`unique_table`], [`drop_table`]).

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use crate::{
    Backend, CasOutcome, MAX_KEY_LEN, MAX_LIST_LIMIT, MAX_TXN_LEN, MAX_VALUE_LEN, Page, Result,
    StorageError, Transaction, TxnOutcome,
};

/// Defines one `#[tokio::test]` per conformance case, each calling
/// `$run(case_name, |backend: Arc<dyn Backend>| async move { case(&*backend).await })`.
#[macro_export]
macro_rules! conformance_tests {
    ($run:path) => {
        $crate::conformance_tests!(@cases $run;
            get_put_overwrite_delete,
            binary_keys,
            prefix_isolation,
            paging,
            list_limit_is_capped,
            prefix_ending_in_ff,
            compare_and_swap,
            transactions,
            limits,
            concurrent_cas_increments,
            concurrent_transactions,
            concurrent_claims,
            concurrent_write_skew,
            concurrent_mixed_increments,
            concurrent_reads_follow_writes,
        );
    };
    (@cases $run:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $run(
                    ::std::stringify!($case),
                    |backend: ::std::sync::Arc<dyn $crate::Backend>| async move {
                        $crate::conformance::$case(&*backend).await;
                    },
                )
                .await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------------
// Basic operations

/// get / put / overwrite / delete, the empty value and the empty key.
pub async fn get_put_overwrite_delete(b: &dyn Backend) {
    let key = b"basic/key";
    assert_eq!(
        get(b, key).await,
        None,
        "a key never written must read as None"
    );
    ok(b.put(key, b"one").await, "put");
    assert_eq!(
        get(b, key).await.as_deref(),
        Some(&b"one"[..]),
        "get after put"
    );
    ok(b.put(key, b"two").await, "overwrite");
    assert_eq!(
        get(b, key).await.as_deref(),
        Some(&b"two"[..]),
        "get after overwrite"
    );
    assert!(
        ok(b.delete(key).await, "delete"),
        "deleting an existing key must return true"
    );
    assert_eq!(get(b, key).await, None, "a deleted key must read as None");
    assert!(
        !ok(b.delete(key).await, "delete again"),
        "deleting a missing key must return false"
    );

    ok(b.put(b"basic/empty", b"").await, "put empty value");
    assert_eq!(
        get(b, b"basic/empty").await,
        Some(Vec::new()),
        "an empty value must read as Some(empty), not as absent"
    );

    ok(b.put(b"", b"root").await, "put the empty key");
    assert_eq!(
        get(b, b"").await.as_deref(),
        Some(&b"root"[..]),
        "get the empty key"
    );
    assert!(
        ok(b.delete(b"").await, "delete the empty key"),
        "the empty key existed"
    );
}

/// Keys and values with 0x00, 0xFF and invalid UTF-8 bytes round-trip and list in byte order.
pub async fn binary_keys(b: &dyn Backend) {
    let suffixes: [&[u8]; 11] = [
        &[0x00],
        &[0x00, 0x00],
        &[0x00, 0xFF],
        &[0x01],
        &[0x7F],
        &[0x80],
        &[0xC3, 0x28],
        &[0xFF],
        &[0xFF, 0x00],
        &[0xFF, 0xFF],
        b"a\x00b",
    ];
    let mut expected = BTreeMap::new();
    for (i, suffix) in suffixes.iter().enumerate() {
        let key = [b"bin/", *suffix].concat();
        let value = vec![0x00, 0xFF, u8::try_from(i).unwrap_or(0), 0x00];
        ok(
            b.put(&key, &value).await,
            format_args!("put {}", show(&key)),
        );
        expected.insert(key, value);
    }
    for (key, value) in &expected {
        assert_eq!(
            get(b, key).await.as_ref(),
            Some(value),
            "binary key {} must read back its value",
            show(key)
        );
    }
    let page = ok(b.list(b"bin/", None, 100).await, "list bin/");
    assert_eq!(page.next, None, "all binary keys fit in one page");
    assert_entries(&page, &expected, "binary keys must list in byte order");
}

/// Listing a prefix returns exactly the keys starting with it.
pub async fn prefix_isolation(b: &dyn Backend) {
    let keys: [&[u8]; 10] = [
        b"iso",
        b"iso/",
        b"iso/a",
        b"iso/a/1",
        b"iso/a/2",
        b"iso/a0",
        b"iso/ab/1",
        b"iso/b/1",
        b"isp",
        b"is",
    ];
    for key in keys {
        ok(b.put(key, key).await, format_args!("put {}", show(key)));
    }
    let cases: [(&[u8], &[&[u8]]); 6] = [
        (b"iso/a/", &[b"iso/a/1", b"iso/a/2"]),
        (
            b"iso/a",
            &[b"iso/a", b"iso/a/1", b"iso/a/2", b"iso/a0", b"iso/ab/1"],
        ),
        (
            b"iso/",
            &[
                b"iso/",
                b"iso/a",
                b"iso/a/1",
                b"iso/a/2",
                b"iso/a0",
                b"iso/ab/1",
                b"iso/b/1",
            ],
        ),
        (b"iso/a/1", &[b"iso/a/1"]),
        (b"iso/c", &[]),
        (b"iso/a/1/", &[]),
    ];
    for (prefix, want) in cases {
        let page = ok(
            b.list(prefix, None, 100).await,
            format_args!("list {}", show(prefix)),
        );
        assert_eq!(
            page.next,
            None,
            "list {}: everything fits in one page",
            show(prefix)
        );
        let got: Vec<&[u8]> = page.entries.iter().map(|e| e.key.as_slice()).collect();
        assert_eq!(
            got.iter().map(|k| show(k)).collect::<Vec<_>>(),
            want.iter().map(|k| show(k)).collect::<Vec<_>>(),
            "list {} must return exactly the keys with that prefix",
            show(prefix)
        );
        for entry in &page.entries {
            assert_eq!(entry.value, entry.key, "list must return each key's value");
        }
    }
}

/// Paging through more entries than `limit` visits every entry once, in order, whatever the
/// page size; `start_after` before, inside and after the prefix behaves.
pub async fn paging(b: &dyn Backend) {
    const N: usize = 257;
    let expected: BTreeMap<Vec<u8>, Vec<u8>> = (0..N)
        .map(|i| {
            (
                format!("page/{i:04}").into_bytes(),
                format!("v{i}").into_bytes(),
            )
        })
        .collect();
    seed(b, &expected).await;
    for outside in [&b"page"[..], b"pagd", b"pagf", b"page0", b"page.", b"pag"] {
        ok(b.put(outside, b"outside").await, "put outside the prefix");
    }

    for limit in [0, 1, 7, 100, 256, 257, 258, 1000] {
        let page_size = limit.max(1);
        let mut seen = BTreeMap::new();
        let mut start_after: Option<Vec<u8>> = None;
        let mut pages = 0;
        loop {
            let page = ok(
                b.list(b"page/", start_after.as_deref(), limit).await,
                format_args!("list page/ limit {limit} page {pages}"),
            );
            pages += 1;
            assert!(pages <= N + 1, "limit {limit}: paging does not terminate");
            assert!(
                page.entries.len() <= page_size,
                "limit {limit}: page of {} entries",
                page.entries.len()
            );
            for entry in &page.entries {
                let previous = seen.insert(entry.key.clone(), entry.value.clone());
                assert!(
                    previous.is_none(),
                    "limit {limit}: {} listed twice",
                    show(&entry.key)
                );
                if let Some(after) = &start_after {
                    assert!(
                        entry.key > *after,
                        "limit {limit}: entry not after start_after"
                    );
                }
            }
            match page.next {
                Some(next) => {
                    assert_eq!(
                        page.entries.len(),
                        page_size,
                        "limit {limit}: only the last page may be short"
                    );
                    assert_eq!(
                        page.entries.last().map(|e| &e.key),
                        Some(&next),
                        "limit {limit}: next must be the last key of the page"
                    );
                    start_after = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(pages, N.div_ceil(page_size), "limit {limit}: page count");
        assert!(
            seen == expected,
            "limit {limit}: paging missed or invented entries"
        );
        let keys: Vec<_> = seen.keys().collect();
        assert!(keys.is_sorted(), "limit {limit}: keys out of order");
    }

    let first_key = |page: Page| page.entries.into_iter().next().map(|e| e.key);
    let after = |start: &'static [u8]| async move {
        first_key(ok(
            b.list(b"page/", Some(start), 1).await,
            "list with start_after",
        ))
    };
    assert_eq!(
        after(b"page/0100").await,
        Some(b"page/0101".to_vec()),
        "start_after a key"
    );
    assert_eq!(
        after(b"page/0100x").await,
        Some(b"page/0101".to_vec()),
        "start_after a gap"
    );
    assert_eq!(
        after(b"a").await,
        Some(b"page/0000".to_vec()),
        "start_after before prefix"
    );
    assert_eq!(
        after(b"page/").await,
        Some(b"page/0000".to_vec()),
        "start_after = prefix"
    );
    assert_eq!(after(b"page/0256").await, None, "start_after the last key");
    assert_eq!(after(b"pagf").await, None, "start_after past the prefix");
    let last = ok(b.list(b"page/", Some(b"page/0255"), 10).await, "list tail");
    assert_eq!(last.entries.len(), 1, "one entry after page/0255");
    assert_eq!(last.next, None, "the tail is the last page");
}

/// `limit` above [`MAX_LIST_LIMIT`] is lowered to it, and paging continues correctly.
pub async fn list_limit_is_capped(b: &dyn Backend) {
    let n = MAX_LIST_LIMIT + 1;
    let expected: BTreeMap<Vec<u8>, Vec<u8>> = (0..n)
        .map(|i| (format!("cap/{i:05}").into_bytes(), Vec::new()))
        .collect();
    seed(b, &expected).await;
    let page = ok(b.list(b"cap/", None, usize::MAX).await, "list usize::MAX");
    assert_eq!(
        page.entries.len(),
        MAX_LIST_LIMIT,
        "a huge limit must be capped at MAX_LIST_LIMIT"
    );
    let next = page
        .next
        .unwrap_or_else(|| panic!("a capped page must have a next key"));
    let rest = ok(b.list(b"cap/", Some(&next), usize::MAX).await, "list rest");
    assert_eq!(rest.entries.len(), 1, "one entry after the capped page");
    assert_eq!(rest.next, None, "the second page is the last");
}

/// Prefixes ending in (or made only of) 0xFF bytes list exactly their keys.
pub async fn prefix_ending_in_ff(b: &dyn Backend) {
    let keys: [&[u8]; 13] = [
        &[0x01, 0xFE],
        &[0x01, 0xFE, 0xFF],
        &[0x01, 0xFF],
        &[0x01, 0xFF, 0x00],
        &[0x01, 0xFF, 0xFF],
        &[0x01, 0xFF, 0xFF, 0x05],
        &[0x02],
        &[0x02, 0x00],
        &[0xFE, 0xFF],
        &[0xFF],
        &[0xFF, 0x00],
        &[0xFF, 0xFF],
        &[0xFF, 0xFF, 0xFF, 0x01],
    ];
    for key in keys {
        ok(b.put(key, key).await, format_args!("put {}", show(key)));
    }
    let cases: [(&[u8], &[&[u8]]); 5] = [
        (
            &[0x01, 0xFF],
            &[
                &[0x01, 0xFF],
                &[0x01, 0xFF, 0x00],
                &[0x01, 0xFF, 0xFF],
                &[0x01, 0xFF, 0xFF, 0x05],
            ],
        ),
        (
            &[0x01, 0xFF, 0xFF],
            &[&[0x01, 0xFF, 0xFF], &[0x01, 0xFF, 0xFF, 0x05]],
        ),
        (&[0x01, 0xFE], &[&[0x01, 0xFE], &[0x01, 0xFE, 0xFF]]),
        (
            &[0xFF],
            &[
                &[0xFF],
                &[0xFF, 0x00],
                &[0xFF, 0xFF],
                &[0xFF, 0xFF, 0xFF, 0x01],
            ],
        ),
        (&[0xFF, 0xFF], &[&[0xFF, 0xFF], &[0xFF, 0xFF, 0xFF, 0x01]]),
    ];
    for (prefix, want) in cases {
        let want: Vec<String> = want.iter().map(|k| show(k)).collect();
        let page = ok(
            b.list(prefix, None, 100).await,
            format_args!("list {}", show(prefix)),
        );
        let got: Vec<String> = page.entries.iter().map(|e| show(&e.key)).collect();
        assert_eq!(got, want, "list {} (one page)", show(prefix));

        // Page by one through the same range.
        let mut got = Vec::new();
        let mut start_after: Option<Vec<u8>> = None;
        loop {
            let page = ok(
                b.list(prefix, start_after.as_deref(), 1).await,
                format_args!("list {} by one", show(prefix)),
            );
            got.extend(page.entries.iter().map(|e| show(&e.key)));
            assert!(
                got.len() <= want.len(),
                "list {} by one: too many",
                show(prefix)
            );
            match page.next {
                Some(next) => start_after = Some(next),
                None => break,
            }
        }
        assert_eq!(got, want, "list {} (pages of one)", show(prefix));
    }
    let beyond = ok(
        b.list(&[0xFF], Some(&[0xFF, 0xFF, 0xFF, 0xFF]), 10).await,
        "list",
    );
    assert!(
        beyond.entries.is_empty(),
        "nothing sorts after the last 0xFF key"
    );
    assert_eq!(beyond.next, None, "an empty page is the last");
}

// ---------------------------------------------------------------------------------------------
// Compare-and-swap and transactions

/// Compare-and-swap: create when absent, conflict reporting the current value, swap, delete.
pub async fn compare_and_swap(b: &dyn Backend) {
    let key = b"cas/key";
    let cas = |expected: Option<&'static str>, new: Option<&'static str>| async move {
        let (expected, new) = (expected.map(str::as_bytes), new.map(str::as_bytes));
        ok(
            b.compare_and_swap(key, expected, new).await,
            "compare_and_swap",
        )
    };
    assert_eq!(
        cas(None, None).await,
        CasOutcome::Swapped,
        "absent -> absent"
    );
    assert_eq!(get(b, key).await, None, "absent -> absent writes nothing");
    assert_eq!(
        cas(Some("x"), Some("y")).await,
        CasOutcome::Conflict { current: None },
        "expecting a value on an absent key must conflict with current None"
    );
    assert_eq!(get(b, key).await, None, "a conflicting swap writes nothing");
    assert_eq!(cas(None, Some("v1")).await, CasOutcome::Swapped, "create");
    assert_eq!(
        get(b, key).await.as_deref(),
        Some(&b"v1"[..]),
        "created value"
    );
    assert_eq!(
        cas(None, Some("v2")).await,
        CasOutcome::Conflict {
            current: Some(b"v1".to_vec())
        },
        "expecting absence on a present key must conflict with its value"
    );
    assert_eq!(
        cas(Some("wrong"), Some("v2")).await,
        CasOutcome::Conflict {
            current: Some(b"v1".to_vec())
        },
        "a wrong expectation must conflict with the current value"
    );
    assert_eq!(
        cas(None, None).await,
        CasOutcome::Conflict {
            current: Some(b"v1".to_vec())
        },
        "absent -> absent on a present key must conflict"
    );
    assert_eq!(
        get(b, key).await.as_deref(),
        Some(&b"v1"[..]),
        "conflicts write nothing"
    );
    assert_eq!(
        cas(Some("v1"), Some("v2")).await,
        CasOutcome::Swapped,
        "swap"
    );
    assert_eq!(
        get(b, key).await.as_deref(),
        Some(&b"v2"[..]),
        "swapped value"
    );
    assert_eq!(
        cas(Some("v2"), Some("v2")).await,
        CasOutcome::Swapped,
        "same value"
    );
    assert_eq!(
        cas(Some("v2"), Some("")).await,
        CasOutcome::Swapped,
        "swap to empty value"
    );
    assert_eq!(
        cas(None, Some("x")).await,
        CasOutcome::Conflict {
            current: Some(Vec::new())
        },
        "an empty value is present, not absent"
    );
    assert_eq!(cas(Some(""), None).await, CasOutcome::Swapped, "delete");
    assert_eq!(get(b, key).await, None, "deleted by compare_and_swap");
}

/// Transactions: preconditions (value and absence), ops in order, all-or-nothing on conflict,
/// and the first failing precondition named.
pub async fn transactions(b: &dyn Backend) {
    let v = |s: &'static str| Some(s.as_bytes());
    ok(b.put(b"t/a", b"1").await, "put t/a");
    ok(b.put(b"t/gone", b"x").await, "put t/gone");

    let outcome = commit(
        b,
        Transaction::new()
            .require(b"t/a", v("1"))
            .require_absent(b"t/b")
            .put(b"t/b", b"2")
            .put(b"t/c", b"3")
            .delete(b"t/gone")
            .delete(b"t/never"),
    )
    .await;
    assert_eq!(outcome, TxnOutcome::Committed, "all preconditions hold");
    assert_eq!(get(b, b"t/a").await.as_deref(), v("1"), "t/a untouched");
    assert_eq!(get(b, b"t/b").await.as_deref(), v("2"), "t/b written");
    assert_eq!(get(b, b"t/c").await.as_deref(), v("3"), "t/c written");
    assert_eq!(get(b, b"t/gone").await, None, "t/gone deleted");

    let outcome = commit(
        b,
        Transaction::new()
            .require(b"t/a", v("1"))
            .require(b"t/b", v("wrong"))
            .require_absent(b"t/c")
            .put(b"t/d", b"4")
            .put(b"t/b", b"5")
            .delete(b"t/a"),
    )
    .await;
    assert_eq!(
        outcome,
        TxnOutcome::Conflict {
            key: b"t/b".to_vec()
        },
        "the first failing precondition must be named"
    );
    assert_eq!(
        get(b, b"t/d").await,
        None,
        "no put of a conflicting transaction may apply"
    );
    assert_eq!(
        get(b, b"t/b").await.as_deref(),
        v("2"),
        "no overwrite may apply"
    );
    assert_eq!(
        get(b, b"t/a").await.as_deref(),
        v("1"),
        "no delete may apply"
    );

    let outcome = commit(
        b,
        Transaction::new().require_absent(b"t/a").put(b"t/e", b"5"),
    )
    .await;
    assert_eq!(
        outcome,
        TxnOutcome::Conflict {
            key: b"t/a".to_vec()
        },
        "require_absent on a present key must conflict"
    );
    let outcome = commit(
        b,
        Transaction::new()
            .require(b"t/zz", v("1"))
            .put(b"t/e", b"5"),
    )
    .await;
    assert_eq!(
        outcome,
        TxnOutcome::Conflict {
            key: b"t/zz".to_vec()
        },
        "requiring a value of an absent key must conflict"
    );
    let outcome = commit(
        b,
        Transaction::new()
            .require(b"t/a", v("1"))
            .require_absent(b"t/a")
            .put(b"t/e", b"5"),
    )
    .await;
    assert_eq!(
        outcome,
        TxnOutcome::Conflict {
            key: b"t/a".to_vec()
        },
        "contradictory preconditions must conflict"
    );
    assert_eq!(
        get(b, b"t/e").await,
        None,
        "conflicting transactions write nothing"
    );

    assert_eq!(
        commit(b, Transaction::new()).await,
        TxnOutcome::Committed,
        "empty"
    );
    let outcome = commit(b, Transaction::new().require(b"t/a", v("1"))).await;
    assert_eq!(outcome, TxnOutcome::Committed, "preconditions only");

    let outcome = commit(
        b,
        Transaction::new()
            .put(b"t/x", b"1")
            .delete(b"t/x")
            .delete(b"t/y")
            .put(b"t/y", b"2")
            .put(b"t/z", b"1")
            .put(b"t/z", b"2"),
    )
    .await;
    assert_eq!(outcome, TxnOutcome::Committed, "ops only");
    assert_eq!(
        get(b, b"t/x").await,
        None,
        "put then delete leaves the key absent"
    );
    assert_eq!(
        get(b, b"t/y").await.as_deref(),
        v("2"),
        "delete then put leaves it present"
    );
    assert_eq!(get(b, b"t/z").await.as_deref(), v("2"), "the last put wins");
}

/// Size limits are enforced on every write path, and the largest allowed sizes work.
pub async fn limits(b: &dyn Backend) {
    let max_key = [&b"lim/"[..], &vec![0xAB; MAX_KEY_LEN - 4]].concat();
    ok(
        b.put(&max_key, b"v").await,
        "put a key of MAX_KEY_LEN bytes",
    );
    assert_eq!(
        get(b, &max_key).await.as_deref(),
        Some(&b"v"[..]),
        "max-size key"
    );
    let outcome = ok(
        b.compare_and_swap(&max_key, Some(&b"v"[..]), Some(&b"w"[..]))
            .await,
        "cas on a max-size key",
    );
    assert_eq!(outcome, CasOutcome::Swapped, "cas on a max-size key");
    let outcome = commit(
        b,
        Transaction::new()
            .require_absent(b"lim/x")
            .delete(max_key.clone()),
    );
    assert_eq!(
        outcome.await,
        TxnOutcome::Committed,
        "transaction on a max-size key"
    );

    let big_value = vec![0x5A; 1024 * 1024];
    ok(b.put(b"lim/big", &big_value).await, "put a 1 MiB value");
    assert!(
        get(b, b"lim/big").await == Some(big_value),
        "1 MiB value must round-trip"
    );

    let long_key = [&b"lim/"[..], &vec![0xAB; MAX_KEY_LEN]].concat();
    let too_large_key = |r: Result<_>| matches!(r, Err(StorageError::KeyTooLarge { .. }));
    assert!(
        too_large_key(b.put(&long_key, b"v").await.map(drop)),
        "put long key"
    );
    assert!(
        too_large_key(
            b.compare_and_swap(&long_key, None, Some(&b"v"[..]))
                .await
                .map(drop)
        ),
        "cas long key"
    );
    assert!(
        too_large_key(
            b.commit(Transaction::new().put(long_key.clone(), b"v"))
                .await
                .map(drop)
        ),
        "transaction with a long key"
    );
    assert_eq!(
        get(b, &long_key).await,
        None,
        "rejected writes must not be stored"
    );

    let huge = vec![0u8; MAX_VALUE_LEN + 1];
    let too_large_value = |r: Result<_>| matches!(r, Err(StorageError::ValueTooLarge { .. }));
    assert!(
        too_large_value(b.put(b"lim/huge", &huge).await.map(drop)),
        "put huge"
    );
    assert!(
        too_large_value(
            b.compare_and_swap(b"lim/huge", None, Some(&huge))
                .await
                .map(drop)
        ),
        "cas huge"
    );
    assert!(
        too_large_value(
            b.commit(Transaction::new().put(b"lim/huge", huge))
                .await
                .map(drop)
        ),
        "transaction with a huge value"
    );
    assert_eq!(
        get(b, b"lim/huge").await,
        None,
        "rejected values must not be stored"
    );

    let mut txn = Transaction::new();
    for i in 0..=MAX_TXN_LEN {
        txn = txn.put(format!("lim/t{i}"), b"v");
    }
    assert!(
        matches!(
            b.commit(txn).await,
            Err(StorageError::TransactionTooLarge { .. })
        ),
        "a transaction over MAX_TXN_LEN must be rejected"
    );
    assert_eq!(
        get(b, b"lim/t0").await,
        None,
        "a rejected transaction writes nothing"
    );
}

// ---------------------------------------------------------------------------------------------
// Concurrency

const TASKS: usize = 8;

/// Many tasks incrementing one counter with compare-and-swap lose no update.
pub async fn concurrent_cas_increments(b: &dyn Backend) {
    const PER_TASK: usize = 25;
    let key = b"conc/cas";
    let tasks = (0..TASKS).map(|_| async move {
        for _ in 0..PER_TASK {
            increment_with_cas(b, key).await;
        }
    });
    join_all(tasks.collect()).await;
    assert_eq!(
        read_counter(b, key).await,
        TASKS * PER_TASK,
        "concurrent compare-and-swap increments were lost"
    );
}

/// Concurrent transfers between accounts, each a transaction with preconditions, conserve the
/// total, apply exactly once, and leave each account at its exact expected balance.
pub async fn concurrent_transactions(b: &dyn Backend) {
    const ACCOUNTS: usize = 4;
    const PER_TASK: usize = 10;
    const START: i64 = 100;
    let account = |i: usize| format!("bank/acct/{i}").into_bytes();
    let plan = |task: usize, n: usize| {
        let from = (task + n) % ACCOUNTS;
        let to = (from + 1 + task % (ACCOUNTS - 1)) % ACCOUNTS;
        let amount = i64::try_from(1 + (task * 7 + n) % 5).unwrap_or(1);
        (from, to, amount)
    };

    let mut setup = Transaction::new().put(b"bank/count", b"0");
    for i in 0..ACCOUNTS {
        setup = setup.put(account(i), START.to_string());
    }
    assert_eq!(commit(b, setup).await, TxnOutcome::Committed, "bank setup");

    let tasks = (0..TASKS).map(|task| async move {
        for n in 0..PER_TASK {
            let (from, to, amount) = plan(task, n);
            let (from, to) = (account(from), account(to));
            loop {
                let from_balance = get(b, &from).await;
                let to_balance = get(b, &to).await;
                let count = get(b, b"bank/count").await;
                let (Some(fb), Some(tb), Some(c)) = (&from_balance, &to_balance, &count) else {
                    panic!("bank keys vanished during concurrent transfers");
                };
                let txn = Transaction::new()
                    .require(from.clone(), Some(fb.as_slice()))
                    .require(to.clone(), Some(tb.as_slice()))
                    .require(b"bank/count", Some(c.as_slice()))
                    .put(from.clone(), (parse::<i64>(fb) - amount).to_string())
                    .put(to.clone(), (parse::<i64>(tb) + amount).to_string())
                    .put(b"bank/count", (parse::<u64>(c) + 1).to_string());
                match commit(b, txn).await {
                    TxnOutcome::Committed => break,
                    TxnOutcome::Conflict { .. } => tokio::task::yield_now().await,
                }
            }
        }
    });
    join_all(tasks.collect()).await;

    let mut expected = [START; ACCOUNTS];
    for task in 0..TASKS {
        for n in 0..PER_TASK {
            let (from, to, amount) = plan(task, n);
            if let Some(balance) = expected.get_mut(from) {
                *balance -= amount;
            }
            if let Some(balance) = expected.get_mut(to) {
                *balance += amount;
            }
        }
    }
    let count = read_counter(b, b"bank/count").await;
    assert_eq!(
        count,
        TASKS * PER_TASK,
        "every transfer must commit exactly once"
    );
    let mut total = 0;
    for (i, want) in expected.iter().enumerate() {
        let balance = parse::<i64>(&get(b, &account(i)).await.unwrap_or_default());
        assert_eq!(
            balance, *want,
            "account {i} balance after concurrent transfers"
        );
        total += balance;
    }
    assert_eq!(total, START * 4, "transfers must conserve the total");
}

/// Tasks racing to claim absent keys with transactions: exactly one wins each key, and the
/// losers' other writes are not applied.
pub async fn concurrent_claims(b: &dyn Backend) {
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let claim = format!("claim/{round}").into_bytes();
        let by = |task: usize| format!("claim/{round}/by/{task}").into_bytes();
        let tasks = (0..TASKS).map(|task| {
            let claim = claim.clone();
            async move {
                let txn = Transaction::new()
                    .require_absent(claim.clone())
                    .put(claim, task.to_string())
                    .put(by(task), b"won");
                commit(b, txn).await
            }
        });
        let outcomes = join_all(tasks.collect()).await;
        let winners: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_committed())
            .map(|(task, _)| task)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one claim must win"
        );
        for outcome in &outcomes {
            if let TxnOutcome::Conflict { key } = outcome {
                assert_eq!(
                    key, &claim,
                    "round {round}: losers must conflict on the claim"
                );
            }
        }
        let winner = winners.first().copied().unwrap_or_default();
        assert_eq!(
            get(b, &claim).await,
            Some(winner.to_string().into_bytes()),
            "round {round}: the claim must hold the winner"
        );
        for task in 0..TASKS {
            let marker = get(b, &by(task)).await;
            assert_eq!(
                marker.is_some(),
                task == winner,
                "round {round}: task {task}'s marker must exist only if it won"
            );
        }
    }
}

/// Two transactions each requiring the other's key to be absent and creating its own (write
/// skew) cannot both commit: preconditions on keys a transaction only reads are protected too.
pub async fn concurrent_write_skew(b: &dyn Backend) {
    const ROUNDS: usize = 40;
    for round in 0..ROUNDS {
        let x = format!("skew/{round}/x").into_bytes();
        let y = format!("skew/{round}/y").into_bytes();
        let a = Transaction::new()
            .require_absent(x.clone())
            .put(y.clone(), b"a");
        let c = Transaction::new()
            .require_absent(y.clone())
            .put(x.clone(), b"c");
        let outcomes = join_all(vec![commit(b, a), commit(b, c)]).await;
        let committed = outcomes.iter().filter(|o| o.is_committed()).count();
        assert_eq!(
            committed, 1,
            "round {round}: exactly one of two write-skewed transactions may commit"
        );
        let stored =
            usize::from(get(b, &x).await.is_some()) + usize::from(get(b, &y).await.is_some());
        assert_eq!(stored, 1, "round {round}: only the winner's key may exist");
    }
}

/// Compare-and-swap and transaction increments of the same counter, interleaved, lose nothing.
pub async fn concurrent_mixed_increments(b: &dyn Backend) {
    const PER_TASK: usize = 15;
    let key = b"conc/mixed";
    let tasks = (0..TASKS).map(|task| async move {
        for _ in 0..PER_TASK {
            if task % 2 == 0 {
                increment_with_cas(b, key).await;
            } else {
                increment_with_transaction(b, key).await;
            }
        }
    });
    join_all(tasks.collect()).await;
    assert_eq!(
        read_counter(b, key).await,
        TASKS * PER_TASK,
        "mixed compare-and-swap and transaction increments were lost"
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The URL of the PostgreSQL server tests use: `$RAMPART_TEST_POSTGRES_URL`, or
/// `postgres://postgres@127.0.0.1:5432/test`.
pub fn postgres_url() -> String {
    std::env::var("RAMPART_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A table name unique to this process and call: `rampart_kv_<tag>_<pid>_<n>`.
pub fn unique_table(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("rampart_kv_{tag}_{}_{n}", std::process::id())
}

/// Drops `table` (if it exists) from the database at `url`.
pub async fn drop_table(url: &str, table: &str) -> Result<()> {
    const OP: &str = "drop table";
    crate::postgres_backend::validate_table_name(table)?;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(StorageError::postgres(OP))?;
    let connection = tokio::spawn(connection);
    let result = client
        .batch_execute(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .await
        .map_err(StorageError::postgres(OP));
    drop(client);
    // The connection ends once the client is gone; its own error adds nothing.
    let _ = connection.await;
    result
}

/// Unwraps `result`, panicking with `what` and the whole error chain.
#[track_caller]
fn ok<T>(result: Result<T>, what: impl Display) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            let mut message = format!("{what}: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            panic!("{message}")
        }
    }
}

async fn get(b: &dyn Backend, key: &[u8]) -> Option<Vec<u8>> {
    ok(b.get(key).await, format_args!("get {}", show(key)))
}

async fn commit(b: &dyn Backend, txn: Transaction) -> TxnOutcome {
    ok(b.commit(txn).await, "commit")
}

/// Writes `entries` in transactions of at most [`MAX_TXN_LEN`] puts.
async fn seed(b: &dyn Backend, entries: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let mut txn = Transaction::new();
    for (key, value) in entries {
        txn = txn.put(key.clone(), value.clone());
        if txn.len() == MAX_TXN_LEN {
            let full = std::mem::take(&mut txn);
            assert_eq!(commit(b, full).await, TxnOutcome::Committed, "seed");
        }
    }
    assert_eq!(commit(b, txn).await, TxnOutcome::Committed, "seed");
}

fn assert_entries(page: &Page, expected: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str) {
    let got: Vec<(String, &[u8])> = page
        .entries
        .iter()
        .map(|e| (show(&e.key), e.value.as_slice()))
        .collect();
    let want: Vec<(String, &[u8])> = expected
        .iter()
        .map(|(k, v)| (show(k), v.as_slice()))
        .collect();
    assert_eq!(got, want, "{what}");
}

/// Reads never go back in time, whatever caching a backend does: while one task writes
/// 1, 2, 3, ... to a key (by put, compare-and-swap and transaction in turn, then deletes it),
/// every read that starts after write `n` returned sees at least `n`, readers never see a
/// value go down, the writer reads its own writes, and a deleted key reads as absent.
pub async fn concurrent_reads_follow_writes(b: &dyn Backend) {
    const WRITES: usize = 60;
    let key = b"conc/follow";
    let other = b"conc/follow-other";
    let finished = AtomicUsize::new(0); // the last write that returned
    let done = std::sync::atomic::AtomicBool::new(false);
    let writer = async {
        for n in 1..=WRITES {
            let value = n.to_string();
            match n % 3 {
                0 => ok(b.put(key, value.as_bytes()).await, "put"),
                1 => {
                    let previous = (n - 1).to_string();
                    let expected = (n > 1).then_some(previous.as_bytes());
                    let outcome = ok(
                        b.compare_and_swap(key, expected, Some(value.as_bytes()))
                            .await,
                        "compare_and_swap",
                    );
                    assert!(outcome.is_swapped(), "write {n}: {outcome:?}");
                }
                _ => {
                    let txn = Transaction::new()
                        .put(key, value.as_bytes())
                        .put(other, value.as_bytes());
                    assert!(commit(b, txn).await.is_committed(), "write {n}");
                }
            }
            finished.store(n, Ordering::SeqCst);
            assert_eq!(
                read_counter(b, key).await,
                n,
                "the writer did not read its own write {n}"
            );
        }
        done.store(true, Ordering::SeqCst);
    };
    let reader = || async {
        let mut last = 0;
        let mut reads = 0usize;
        while !done.load(Ordering::SeqCst) {
            let floor = finished.load(Ordering::SeqCst);
            let seen = read_counter(b, key).await;
            assert!(
                seen >= floor,
                "a read started after write {floor} returned saw {seen}"
            );
            assert!(seen >= last, "a reader saw {last}, then {seen}");
            last = seen;
            reads += 1;
            if reads.is_multiple_of(16) {
                tokio::task::yield_now().await;
            }
        }
    };
    let readers: Vec<_> = (0..TASKS).map(|_| reader()).collect();
    let readers = join_all(readers);
    let (_, _) = tokio::join!(writer, readers);
    assert_eq!(
        read_counter(b, other).await % 3,
        2,
        "the transaction's second key"
    );
    assert!(ok(b.delete(key).await, "delete"), "the key existed");
    assert_eq!(get(b, key).await, None, "a deleted key still reads");
    let cas = ok(
        b.compare_and_swap(other, Some(b"59"), None).await,
        "compare_and_swap delete",
    );
    assert!(cas.is_swapped(), "{cas:?}");
    assert_eq!(
        get(b, other).await,
        None,
        "a key deleted by compare-and-swap still reads"
    );
    ok(b.put(key, b"again").await, "put after delete");
    assert_eq!(get(b, key).await.as_deref(), Some(&b"again"[..]));
}

async fn increment_with_cas(b: &dyn Backend, key: &[u8]) {
    let mut current = get(b, key).await;
    loop {
        let next = current.as_deref().map_or(0, parse::<u64>) + 1;
        let next = next.to_string();
        match ok(
            b.compare_and_swap(key, current.as_deref(), Some(next.as_bytes()))
                .await,
            "increment with compare_and_swap",
        ) {
            CasOutcome::Swapped => return,
            CasOutcome::Conflict { current: now } => current = now,
        }
    }
}

async fn increment_with_transaction(b: &dyn Backend, key: &[u8]) {
    loop {
        let current = get(b, key).await;
        let next = current.as_deref().map_or(0, parse::<u64>) + 1;
        let txn = Transaction::new()
            .require(key, current.as_deref())
            .put(key, next.to_string());
        match commit(b, txn).await {
            TxnOutcome::Committed => return,
            TxnOutcome::Conflict { key: conflict } => {
                assert_eq!(
                    conflict, key,
                    "an increment can only conflict on its counter"
                );
            }
        }
    }
}

async fn read_counter(b: &dyn Backend, key: &[u8]) -> usize {
    get(b, key).await.as_deref().map_or(0, parse::<usize>)
}

#[track_caller]
fn parse<T: std::str::FromStr>(bytes: &[u8]) -> T {
    match std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()) {
        Some(n) => n,
        None => panic!("stored number {} does not parse", show(bytes)),
    }
}

fn show(bytes: &[u8]) -> String {
    format!("b\"{}\"", bytes.escape_ascii())
}

/// Polls `futures` concurrently on the current task until all are done (like
/// `futures::future::join_all`; the backends do the actual work on other threads or servers).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
