//! The conformance suite every [`Store`] backend must pass.
//!
//! Each check is a `pub async fn` taking a fresh, empty store. Backends run
//! them all through [`conformance_tests!`](crate::conformance_tests), which
//! expands to one `#[tokio::test]` per check so failures are named:
//!
//! ```ignore
//! // crates/<backend>/tests/conformance.rs
//! store::conformance_tests!(store::MemoryStore::new());
//! // A fixture that must outlive the store (a temporary directory) goes first:
//! store::conformance_tests!(
//!     let dir = tempfile::tempdir().unwrap();
//!     my_backend::open(dir.path()).await.unwrap()
//! );
//! ```
//!
//! The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a
//! dependency. Nothing here reads the clock: "no further event" is checked by
//! writing a sentinel and seeing that it is the next event; the only timeout
//! turns a hung watch into a failure instead of a hung test.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::{
    prefix_end, Compare, CompareOp, CompareTarget, EventKind, KeyValue, Op, RangeRequest, Revision,
    Store, StoreError, Txn, TxnResponse, WatchEvent, WatchStream,
};

/// Expands to one `#[tokio::test]` per conformance check, each running it
/// against the store built by the given expression (which may `.await`).
/// An optional leading `let pattern = expression;` keeps a fixture alive for
/// the whole test.
#[macro_export]
macro_rules! conformance_tests {
    (@each [$fixture:pat = $setup:expr] $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let $fixture = $setup;
                let store = $make;
                $crate::conformance::$check(store).await;
            }
        )*
    };
    (let $fixture:pat = $setup:expr; $make:expr $(,)?) => {
        $crate::conformance_tests!(@each [$fixture = $setup] $make;
            revision_starts_at_zero_and_each_writing_txn_adds_one,
            put_sets_create_revision_mod_revision_and_version,
            ops_in_one_txn_share_one_revision_and_apply_in_order,
            txn_without_effective_writes_does_not_bump_revision,
            compare_version_with_each_op,
            compare_create_revision_with_each_op,
            compare_mod_revision_with_each_op,
            compare_value_with_each_op,
            every_compare_must_hold,
            failed_compare_runs_the_failure_branch,
            failed_compare_writes_nothing_from_the_success_branch,
            get_returns_none_for_an_absent_key,
            range_orders_keys_byte_wise,
            range_limit_sets_more_only_when_keys_remain,
            range_prefix_and_prefix_after_page_through_a_prefix,
            range_of_a_single_key_and_of_an_empty_interval,
            range_reports_the_store_revision,
            concurrent_compare_and_swap_increments_lose_no_updates,
            concurrent_writers_get_distinct_consecutive_revisions,
            watch_replays_history_from_a_past_revision_then_follows_live,
            watch_from_zero_delivers_only_later_changes,
            watch_from_a_future_revision_waits_for_it,
            watch_filters_by_prefix_and_by_single_key,
            watch_reports_delete_events,
            watch_started_during_writes_has_no_gaps_or_duplicates,
            watch_before_the_compacted_revision_fails,
            compaction_keeps_current_keys,
        );
    };
    ($make:expr $(,)?) => {
        $crate::conformance_tests!(let () = (); $make);
    };
}

/// Long enough for any backend on a loaded machine; only turns a missing
/// event into a failure instead of a hang.
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

async fn put<S: Store>(store: &S, key: &str, value: &str) -> TxnResponse {
    store
        .txn(Txn::new().then(Op::put(key, value)))
        .await
        .expect("put")
}

async fn delete<S: Store>(store: &S, key: &str) -> TxnResponse {
    store
        .txn(Txn::new().then(Op::delete(key)))
        .await
        .expect("delete")
}

async fn get<S: Store>(store: &S, key: &str) -> Option<KeyValue> {
    store.get(key).await.expect("get")
}

async fn revision<S: Store>(store: &S) -> Revision {
    store.current_revision().await.expect("current_revision")
}

async fn keys<S: Store>(store: &S, request: RangeRequest) -> Vec<String> {
    let response = store.range(request).await.expect("range");
    response.kvs.into_iter().map(|kv| kv.key).collect()
}

async fn watch<S: Store>(store: &S, key: &str, range_end: &str, start: Revision) -> WatchStream {
    match store.watch(key, range_end, start).await {
        Ok(stream) => stream,
        Err(error) => panic!("watch({key:?}, {range_end:?}, {start}) failed: {error}"),
    }
}

async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(error))) => panic!("watch failed: {error}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

/// `(kind, key, value, mod_revision)` of the next `count` events.
async fn next_events(
    stream: &mut WatchStream,
    count: usize,
) -> Vec<(EventKind, String, String, Revision)> {
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        let event = next_event(stream).await;
        events.push((
            event.kind,
            event.kv.key,
            String::from_utf8(event.kv.value).expect("utf-8 value"),
            event.kv.mod_revision,
        ));
    }
    events
}

fn put_event(key: &str, value: &str, revision: Revision) -> (EventKind, String, String, Revision) {
    (EventKind::Put, key.to_string(), value.to_string(), revision)
}

fn delete_event(key: &str, revision: Revision) -> (EventKind, String, String, Revision) {
    (EventKind::Delete, key.to_string(), String::new(), revision)
}

/// Runs `txn` and asserts whether its comparisons held.
async fn check_txn<S: Store>(store: &S, txn: Txn, expected_succeeded: bool) -> TxnResponse {
    let description = format!("{:?}", txn.compare);
    let response = store.txn(txn).await.expect("txn");
    assert_eq!(
        response.succeeded,
        expected_succeeded,
        "compare {description} should have {}",
        if expected_succeeded { "held" } else { "failed" }
    );
    response
}

/// Checks one target against the key `k` for each operator:
/// `expected` is `[Equal, NotEqual, Greater, Less]`.
async fn check_compare<S: Store>(store: &S, key: &str, target: CompareTarget, expected: [bool; 4]) {
    let ops = [
        CompareOp::Equal,
        CompareOp::NotEqual,
        CompareOp::Greater,
        CompareOp::Less,
    ];
    for (op, expected_succeeded) in ops.into_iter().zip(expected) {
        let compare = Compare {
            key: key.to_string(),
            op,
            target: target.clone(),
        };
        // Read-only branches: the check itself must not disturb the key.
        check_txn(store, Txn::new().when(compare), expected_succeeded).await;
    }
}

/// Asserts that watching from `start` fails with `Compacted`, either from
/// `watch` itself or as the stream's first item.
async fn expect_compacted<S: Store>(
    store: &S,
    key: &str,
    range_end: &str,
    start: Revision,
) -> Revision {
    let error = match store.watch(key, range_end, start).await {
        Err(error) => error,
        Ok(mut stream) => match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
            Ok(Some(Err(error))) => error,
            Ok(Some(Ok(event))) => {
                panic!("watch from compacted revision {start} delivered {event:?}")
            }
            Ok(None) => panic!("watch from compacted revision {start} ended silently"),
            Err(_) => panic!("watch from compacted revision {start} neither failed nor ended"),
        },
    };
    match error {
        StoreError::Compacted { requested, oldest } => {
            assert_eq!(requested, start);
            oldest
        }
        other => panic!("expected Compacted for watch from {start}, got {other}"),
    }
}

pub async fn revision_starts_at_zero_and_each_writing_txn_adds_one<S: Store>(store: S) {
    assert_eq!(revision(&store).await, 0);
    assert_eq!(put(&store, "a", "1").await.revision, 1);
    assert_eq!(put(&store, "b", "1").await.revision, 2);
    assert_eq!(put(&store, "a", "2").await.revision, 3);
    assert_eq!(delete(&store, "a").await.revision, 4);
    assert_eq!(revision(&store).await, 4);
}

pub async fn put_sets_create_revision_mod_revision_and_version<S: Store>(store: S) {
    put(&store, "other", "x").await;
    put(&store, "k", "v1").await;
    let created = get(&store, "k").await.expect("k after create");
    assert_eq!(
        created,
        KeyValue {
            key: "k".to_string(),
            value: b"v1".to_vec(),
            create_revision: 2,
            mod_revision: 2,
            version: 1,
        }
    );
    put(&store, "k", "v2").await;
    let updated = get(&store, "k").await.expect("k after update");
    assert_eq!(
        (
            updated.value,
            updated.create_revision,
            updated.mod_revision,
            updated.version
        ),
        (b"v2".to_vec(), 2, 3, 2)
    );
    delete(&store, "k").await;
    assert_eq!(get(&store, "k").await, None);
    put(&store, "k", "v3").await;
    let recreated = get(&store, "k").await.expect("k after re-create");
    assert_eq!(
        (
            recreated.create_revision,
            recreated.mod_revision,
            recreated.version
        ),
        (5, 5, 1),
        "a re-created key starts a new life"
    );
}

pub async fn ops_in_one_txn_share_one_revision_and_apply_in_order<S: Store>(store: S) {
    put(&store, "gone", "x").await;
    let response = store
        .txn(
            Txn::new()
                .then(Op::put("a", "1"))
                .then(Op::put("b", "1"))
                .then(Op::delete("gone"))
                .then(Op::put("a", "2")),
        )
        .await
        .expect("txn");
    assert!(response.succeeded);
    assert_eq!(response.revision, 2);
    let a = get(&store, "a").await.expect("a");
    assert_eq!(
        (a.value, a.mod_revision),
        (b"2".to_vec(), 2),
        "later ops win"
    );
    assert_eq!(get(&store, "b").await.expect("b").mod_revision, 2);
    assert_eq!(get(&store, "gone").await, None);
    assert_eq!(revision(&store).await, 2);
}

pub async fn txn_without_effective_writes_does_not_bump_revision<S: Store>(store: S) {
    put(&store, "a", "1").await;
    assert_eq!(delete(&store, "absent").await.revision, 1);
    let empty = store.txn(Txn::new()).await.expect("empty txn");
    assert_eq!(
        empty,
        TxnResponse {
            succeeded: true,
            revision: 1
        }
    );
    let failed = store
        .txn(
            Txn::new()
                .when(Compare::absent("a"))
                .then(Op::put("a", "2")),
        )
        .await
        .expect("failed compare");
    assert_eq!(
        failed,
        TxnResponse {
            succeeded: false,
            revision: 1
        }
    );
    assert_eq!(revision(&store).await, 1);
    assert_eq!(
        put(&store, "b", "1").await.revision,
        2,
        "no revision was skipped"
    );
}

pub async fn compare_version_with_each_op<S: Store>(store: S) {
    put(&store, "k", "a").await;
    put(&store, "k", "b").await;
    // [Equal, NotEqual, Greater, Less]
    check_compare(
        &store,
        "k",
        CompareTarget::Version(2),
        [true, false, false, false],
    )
    .await;
    check_compare(
        &store,
        "k",
        CompareTarget::Version(1),
        [false, true, true, false],
    )
    .await;
    check_compare(
        &store,
        "k",
        CompareTarget::Version(3),
        [false, true, false, true],
    )
    .await;
    check_compare(
        &store,
        "absent",
        CompareTarget::Version(0),
        [true, false, false, false],
    )
    .await;
    check_compare(
        &store,
        "absent",
        CompareTarget::Version(1),
        [false, true, false, true],
    )
    .await;
    check_txn(&store, Txn::new().when(Compare::present("k")), true).await;
    check_txn(&store, Txn::new().when(Compare::absent("k")), false).await;
    check_txn(&store, Txn::new().when(Compare::absent("absent")), true).await;
    check_txn(&store, Txn::new().when(Compare::present("absent")), false).await;
}

pub async fn compare_create_revision_with_each_op<S: Store>(store: S) {
    put(&store, "other", "x").await;
    put(&store, "k", "a").await;
    put(&store, "k", "b").await;
    // [Equal, NotEqual, Greater, Less]
    check_compare(
        &store,
        "k",
        CompareTarget::CreateRevision(2),
        [true, false, false, false],
    )
    .await;
    check_compare(
        &store,
        "k",
        CompareTarget::CreateRevision(1),
        [false, true, true, false],
    )
    .await;
    check_compare(
        &store,
        "k",
        CompareTarget::CreateRevision(3),
        [false, true, false, true],
    )
    .await;
    check_compare(
        &store,
        "absent",
        CompareTarget::CreateRevision(0),
        [true, false, false, false],
    )
    .await;
}

pub async fn compare_mod_revision_with_each_op<S: Store>(store: S) {
    put(&store, "k", "a").await;
    put(&store, "other", "x").await;
    put(&store, "k", "b").await;
    // [Equal, NotEqual, Greater, Less]
    check_compare(
        &store,
        "k",
        CompareTarget::ModRevision(3),
        [true, false, false, false],
    )
    .await;
    check_compare(
        &store,
        "k",
        CompareTarget::ModRevision(2),
        [false, true, true, false],
    )
    .await;
    check_compare(
        &store,
        "k",
        CompareTarget::ModRevision(4),
        [false, true, false, true],
    )
    .await;
    check_compare(
        &store,
        "absent",
        CompareTarget::ModRevision(0),
        [true, false, false, false],
    )
    .await;
    check_txn(
        &store,
        Txn::new().when(Compare::mod_revision_is("k", 3)),
        true,
    )
    .await;
    check_txn(
        &store,
        Txn::new().when(Compare::mod_revision_is("k", 1)),
        false,
    )
    .await;
    check_txn(
        &store,
        Txn::new().when(Compare::mod_revision_is("absent", 0)),
        true,
    )
    .await;
}

pub async fn compare_value_with_each_op<S: Store>(store: S) {
    put(&store, "k", "m").await;
    // [Equal, NotEqual, Greater, Less], byte-wise.
    check_compare(
        &store,
        "k",
        CompareTarget::Value(b"m".to_vec()),
        [true, false, false, false],
    )
    .await;
    check_compare(
        &store,
        "k",
        CompareTarget::Value(b"a".to_vec()),
        [false, true, true, false],
    )
    .await;
    check_compare(
        &store,
        "k",
        CompareTarget::Value(b"mm".to_vec()),
        [false, true, false, true],
    )
    .await;
    check_compare(
        &store,
        "k",
        CompareTarget::Value(b"M".to_vec()),
        [false, true, true, false],
    )
    .await;
    // An absent key has no value: no value comparison holds (as in etcd).
    check_compare(
        &store,
        "absent",
        CompareTarget::Value(Vec::new()),
        [false, false, false, false],
    )
    .await;
    check_compare(
        &store,
        "absent",
        CompareTarget::Value(b"m".to_vec()),
        [false, false, false, false],
    )
    .await;
}

pub async fn every_compare_must_hold<S: Store>(store: S) {
    put(&store, "a", "1").await;
    put(&store, "b", "1").await;
    let both = Txn::new()
        .when(Compare::mod_revision_is("a", 1))
        .when(Compare::mod_revision_is("b", 2))
        .then(Op::put("c", "both"));
    check_txn(&store, both, true).await;
    let one_fails = Txn::new()
        .when(Compare::mod_revision_is("a", 1))
        .when(Compare::mod_revision_is("b", 1))
        .then(Op::put("c", "one"));
    check_txn(&store, one_fails, false).await;
    assert_eq!(get(&store, "c").await.expect("c").value, b"both".to_vec());
}

pub async fn failed_compare_runs_the_failure_branch<S: Store>(store: S) {
    put(&store, "k", "1").await;
    let txn = Txn::new()
        .when(Compare::absent("k"))
        .then(Op::put("created", "yes"))
        .otherwise(Op::put("conflict", "yes"))
        .otherwise(Op::delete("k"));
    let response = check_txn(&store, txn, false).await;
    assert_eq!(
        response.revision, 2,
        "a writing failure branch bumps the revision"
    );
    assert_eq!(
        get(&store, "conflict")
            .await
            .expect("conflict")
            .mod_revision,
        2
    );
    assert_eq!(get(&store, "k").await, None);
    assert_eq!(get(&store, "created").await, None);

    let txn = Txn::new()
        .when(Compare::absent("k"))
        .then(Op::put("created", "yes"))
        .otherwise(Op::put("conflict", "again"));
    let response = check_txn(&store, txn, true).await;
    assert_eq!(response.revision, 3);
    assert_eq!(
        get(&store, "created").await.expect("created").mod_revision,
        3
    );
    assert_eq!(
        get(&store, "conflict").await.expect("conflict").value,
        b"yes".to_vec()
    );
}

pub async fn failed_compare_writes_nothing_from_the_success_branch<S: Store>(store: S) {
    put(&store, "k", "1").await;
    let txn = Txn::new()
        .when(Compare::present("k"))
        .when(Compare {
            key: "k".to_string(),
            op: CompareOp::Equal,
            target: CompareTarget::Value(b"2".to_vec()),
        })
        .then(Op::put("a", "x"))
        .then(Op::delete("k"))
        .then(Op::put("b", "x"));
    let response = check_txn(&store, txn, false).await;
    assert_eq!(response.revision, 1);
    assert_eq!(get(&store, "a").await, None);
    assert_eq!(get(&store, "b").await, None);
    assert_eq!(get(&store, "k").await.expect("k").mod_revision, 1);
    assert_eq!(keys(&store, RangeRequest::prefix("")).await, vec!["k"]);
}

pub async fn get_returns_none_for_an_absent_key<S: Store>(store: S) {
    assert_eq!(get(&store, "absent").await, None);
    put(&store, "present", "").await;
    assert_eq!(get(&store, "absent").await, None);
    let present = get(&store, "present")
        .await
        .expect("an empty value is still a key");
    assert!(present.value.is_empty());
}

pub async fn range_orders_keys_byte_wise<S: Store>(store: S) {
    let unordered = [
        "b", "a/b", "A", "a", "a-b", "a0", "ab", "a\u{e9}", "Z", "_", "~", "a/a/a",
    ];
    for key in unordered {
        put(&store, key, key).await;
    }
    let mut expected: Vec<String> = unordered.iter().map(|key| key.to_string()).collect();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(keys(&store, RangeRequest::prefix("")).await, expected);
    assert_eq!(
        keys(&store, RangeRequest::prefix("a/")).await,
        vec!["a/a/a", "a/b"]
    );
    let between = RangeRequest {
        key: "a".to_string(),
        range_end: "a0".to_string(),
        limit: 0,
    };
    assert_eq!(
        keys(&store, between).await,
        vec!["a", "a-b", "a/a/a", "a/b"]
    );
    let response = store
        .range(RangeRequest::prefix("ab"))
        .await
        .expect("range");
    assert_eq!(response.kvs.len(), 1);
    assert_eq!(response.kvs[0].value, b"ab".to_vec());
    assert_eq!(response.kvs[0].version, 1);
}

pub async fn range_limit_sets_more_only_when_keys_remain<S: Store>(store: S) {
    for key in ["p/1", "p/2", "p/3", "q/1"] {
        put(&store, key, "x").await;
    }
    let cases = [
        (0, 3, false),
        (1, 1, true),
        (2, 2, true),
        (3, 3, false),
        (10, 3, false),
    ];
    for (limit, expected_count, expected_more) in cases {
        let response = store
            .range(RangeRequest::prefix("p/").with_limit(limit))
            .await
            .expect("range");
        assert_eq!(
            (response.kvs.len(), response.more),
            (expected_count, expected_more),
            "limit {limit}"
        );
        assert_eq!(response.kvs.first().map(|kv| kv.key.as_str()), Some("p/1"));
    }
}

pub async fn range_prefix_and_prefix_after_page_through_a_prefix<S: Store>(store: S) {
    let all: Vec<String> = (0..7).map(|index| format!("tasks/{index:02}")).collect();
    for key in &all {
        put(&store, key, "x").await;
    }
    put(&store, "tasks", "not under the prefix").await;
    put(&store, "tasks0", "not under the prefix").await;
    put(&store, "task", "not under the prefix").await;
    assert!(prefix_end("tasks/").as_str() > "tasks/99");
    assert!(prefix_end("tasks/").as_str() < "tasks0");

    let mut seen = Vec::new();
    let mut request = RangeRequest::prefix("tasks/").with_limit(3);
    loop {
        let response = store.range(request).await.expect("range");
        let last = response.kvs.last().map(|kv| kv.key.clone());
        seen.extend(response.kvs.into_iter().map(|kv| kv.key));
        match (response.more, last) {
            (true, Some(last)) => {
                request = RangeRequest::prefix_after("tasks/", &last).with_limit(3);
            }
            (false, _) => break,
            (true, None) => panic!("more without keys"),
        }
    }
    assert_eq!(seen, all);
    assert_eq!(
        keys(&store, RangeRequest::prefix_after("tasks/", "tasks/06")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        keys(&store, RangeRequest::prefix_after("tasks/", "tasks/05")).await,
        vec!["tasks/06"]
    );
}

pub async fn range_of_a_single_key_and_of_an_empty_interval<S: Store>(store: S) {
    put(&store, "a", "x").await;
    put(&store, "ab", "x").await;
    let single = RangeRequest {
        key: "a".to_string(),
        range_end: String::new(),
        limit: 0,
    };
    assert_eq!(keys(&store, single).await, vec!["a"]);
    let absent = RangeRequest {
        key: "aa".to_string(),
        range_end: String::new(),
        limit: 0,
    };
    assert_eq!(keys(&store, absent).await, Vec::<String>::new());
    let backwards = RangeRequest {
        key: "b".to_string(),
        range_end: "a".to_string(),
        limit: 0,
    };
    assert_eq!(keys(&store, backwards).await, Vec::<String>::new());
    let empty = RangeRequest {
        key: "a".to_string(),
        range_end: "a".to_string(),
        limit: 0,
    };
    assert_eq!(keys(&store, empty).await, Vec::<String>::new());
}

pub async fn range_reports_the_store_revision<S: Store>(store: S) {
    let response = store.range(RangeRequest::prefix("")).await.expect("range");
    assert_eq!(
        (response.kvs.len(), response.more, response.revision),
        (0, false, 0)
    );
    put(&store, "a", "x").await;
    put(&store, "b", "x").await;
    let response = store.range(RangeRequest::prefix("a")).await.expect("range");
    assert_eq!(
        response.revision, 2,
        "the store revision, not the keys' revision"
    );
}

pub async fn concurrent_compare_and_swap_increments_lose_no_updates<S: Store>(store: S) {
    const TASKS: usize = 8;
    const INCREMENTS_PER_TASK: usize = 20;
    let total = TASKS * INCREMENTS_PER_TASK;
    let store = Arc::new(store);
    put(store.as_ref(), "counter", "0").await;
    let mut events = watch(store.as_ref(), "counter", "", 1).await;

    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS_PER_TASK {
                loop {
                    let current = get(store.as_ref(), "counter").await.expect("counter");
                    let count: usize = String::from_utf8(current.value)
                        .expect("utf-8")
                        .parse()
                        .expect("a number");
                    let txn = Txn::new()
                        .when(Compare::mod_revision_is("counter", current.mod_revision))
                        .then(Op::put("counter", (count + 1).to_string()));
                    if store.txn(txn).await.expect("txn").succeeded {
                        break;
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("increment task");
    }

    let counter = get(store.as_ref(), "counter").await.expect("counter");
    assert_eq!(counter.value, total.to_string().into_bytes());
    assert_eq!(counter.version, total as i64 + 1);
    assert_eq!(revision(store.as_ref()).await, total as Revision + 1);
    // Every increment is one event, in order, at consecutive revisions.
    for expected in 0..=total {
        let event = next_event(&mut events).await;
        assert_eq!(event.kv.value, expected.to_string().into_bytes());
        assert_eq!(event.kv.mod_revision, expected as Revision + 1);
    }
}

pub async fn concurrent_writers_get_distinct_consecutive_revisions<S: Store>(store: S) {
    const WRITERS: usize = 32;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let key = format!("w/{writer:02}");
            let response = put(store.as_ref(), &key, "x").await;
            let stored = get(store.as_ref(), &key).await.expect("read your write");
            assert_eq!(stored.mod_revision, response.revision);
            response.revision
        }));
    }
    let mut revisions = BTreeSet::new();
    for task in tasks {
        revisions.insert(task.await.expect("writer"));
    }
    let expected: BTreeSet<Revision> = (1..=WRITERS as Revision).collect();
    assert_eq!(revisions, expected);
    assert_eq!(revision(store.as_ref()).await, WRITERS as Revision);
}

pub async fn watch_replays_history_from_a_past_revision_then_follows_live<S: Store>(store: S) {
    put(&store, "k", "1").await;
    put(&store, "k", "2").await;
    delete(&store, "k").await;
    put(&store, "k", "3").await;
    let mut from_two = watch(&store, "k", "", 2).await;
    let mut from_one = watch(&store, "k", "", 1).await;
    put(&store, "k", "4").await;
    let expected = vec![
        put_event("k", "2", 2),
        delete_event("k", 3),
        put_event("k", "3", 4),
        put_event("k", "4", 5),
    ];
    assert_eq!(next_events(&mut from_two, 4).await, expected);
    let mut expected_from_one = vec![put_event("k", "1", 1)];
    expected_from_one.extend(expected);
    assert_eq!(next_events(&mut from_one, 5).await, expected_from_one);

    let mut from_four = watch(&store, "k", "", 4).await;
    let replayed = next_event(&mut from_four).await;
    assert_eq!(
        replayed.kv,
        KeyValue {
            key: "k".to_string(),
            value: b"3".to_vec(),
            create_revision: 4,
            mod_revision: 4,
            version: 1,
        },
        "replayed events carry the full key state"
    );
}

pub async fn watch_from_zero_delivers_only_later_changes<S: Store>(store: S) {
    put(&store, "k", "old").await;
    let mut live = watch(&store, "k", "", 0).await;
    put(&store, "k", "new").await;
    put(&store, "k", "newer").await;
    assert_eq!(
        next_events(&mut live, 2).await,
        vec![put_event("k", "new", 2), put_event("k", "newer", 3)]
    );
}

pub async fn watch_from_a_future_revision_waits_for_it<S: Store>(store: S) {
    put(&store, "k", "1").await;
    let mut future = watch(&store, "k", "", 3).await;
    put(&store, "k", "2").await;
    put(&store, "k", "3").await;
    assert_eq!(
        next_events(&mut future, 1).await,
        vec![put_event("k", "3", 3)]
    );
}

pub async fn watch_filters_by_prefix_and_by_single_key<S: Store>(store: S) {
    let mut prefix = watch(&store, "jobs/", &prefix_end("jobs/"), 0).await;
    let mut single = watch(&store, "jobs/a", "", 0).await;
    put(&store, "jobs", "outside").await;
    put(&store, "jobs/a", "1").await;
    put(&store, "jobs0", "outside").await;
    put(&store, "jobs/ab", "1").await;
    put(&store, "jobs/b", "1").await;
    put(&store, "other", "outside").await;
    put(&store, "jobs/a", "2").await;
    assert_eq!(
        next_events(&mut prefix, 4).await,
        vec![
            put_event("jobs/a", "1", 2),
            put_event("jobs/ab", "1", 4),
            put_event("jobs/b", "1", 5),
            put_event("jobs/a", "2", 7),
        ]
    );
    assert_eq!(
        next_events(&mut single, 2).await,
        vec![put_event("jobs/a", "1", 2), put_event("jobs/a", "2", 7)]
    );
    // The same filters on replay.
    let mut replayed = watch(&store, "jobs/", &prefix_end("jobs/"), 3).await;
    assert_eq!(
        next_events(&mut replayed, 3).await,
        vec![
            put_event("jobs/ab", "1", 4),
            put_event("jobs/b", "1", 5),
            put_event("jobs/a", "2", 7),
        ]
    );
}

pub async fn watch_reports_delete_events<S: Store>(store: S) {
    let mut events = watch(&store, "d/", &prefix_end("d/"), 0).await;
    put(&store, "d/a", "1").await;
    put(&store, "d/b", "1").await;
    store
        .txn(
            Txn::new()
                .then(Op::delete("d/a"))
                .then(Op::delete("d/absent"))
                .then(Op::delete("d/b")),
        )
        .await
        .expect("txn");
    delete(&store, "d/a").await;
    put(&store, "d/sentinel", "1").await;
    assert_eq!(
        next_events(&mut events, 5).await,
        vec![
            put_event("d/a", "1", 1),
            put_event("d/b", "1", 2),
            delete_event("d/a", 3),
            delete_event("d/b", 3),
            put_event("d/sentinel", "1", 4),
        ],
        "deleting absent keys emits nothing"
    );
    let mut replayed = watch(&store, "d/b", "", 1).await;
    let deleted = {
        next_event(&mut replayed).await;
        next_event(&mut replayed).await
    };
    assert_eq!(deleted.kind, EventKind::Delete);
    assert_eq!(
        deleted.kv,
        KeyValue {
            key: "d/b".to_string(),
            value: Vec::new(),
            create_revision: 0,
            mod_revision: 3,
            version: 0,
        }
    );
}

pub async fn watch_started_during_writes_has_no_gaps_or_duplicates<S: Store>(store: S) {
    const WRITES: Revision = 300;
    const PAUSE_AFTER: Revision = 250;
    let store = Arc::new(store);
    let (watches_started, resume) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut resume = Some(resume);
            for index in 1..=WRITES {
                if index == PAUSE_AFTER + 1 {
                    // Keep writing after the last watch starts, so a watch
                    // from 0 has live events to deliver.
                    let _ = resume.take().expect("pauses once").await;
                }
                let key = format!("n/{}", index % 7);
                put(store.as_ref(), &key, &index.to_string()).await;
            }
        })
    };
    let range_end = prefix_end("n/");
    let mut watches = Vec::new();
    for threshold in [10, 100, 200] {
        while revision(store.as_ref()).await < threshold {
            tokio::task::yield_now().await;
        }
        watches.push((1, watch(store.as_ref(), "n/", &range_end, 1).await));
        watches.push((
            threshold,
            watch(store.as_ref(), "n/", &range_end, threshold).await,
        ));
        watches.push((0, watch(store.as_ref(), "n/", &range_end, 0).await));
    }
    watches_started.send(()).expect("writer waits");
    writer.await.expect("writer");
    for (start, mut stream) in watches {
        let first = next_event(&mut stream).await.kv.mod_revision;
        if start > 0 {
            assert_eq!(first, start, "watch from {start}");
        }
        let mut previous = first;
        while previous < WRITES {
            let event = next_event(&mut stream).await;
            assert_eq!(
                event.kv.mod_revision,
                previous + 1,
                "watch from {start}: gap or duplicate after {previous}"
            );
            assert_eq!(
                event.kv.value,
                event.kv.mod_revision.to_string().into_bytes()
            );
            previous = event.kv.mod_revision;
        }
    }
}

pub async fn watch_before_the_compacted_revision_fails<S: Store>(store: S) {
    put(&store, "k", "1").await;
    put(&store, "j", "1").await;
    put(&store, "k", "2").await;
    delete(&store, "j").await;
    store.compact(3).await.expect("compact");
    assert_eq!(expect_compacted(&store, "k", "", 1).await, 3);
    assert_eq!(expect_compacted(&store, "", &prefix_end(""), 2).await, 3);
    let mut from_three = watch(&store, "", &prefix_end(""), 3).await;
    put(&store, "k", "3").await;
    assert_eq!(
        next_events(&mut from_three, 3).await,
        vec![
            put_event("k", "2", 3),
            delete_event("j", 4),
            put_event("k", "3", 5)
        ]
    );
    // Compaction never moves backwards.
    store
        .compact(2)
        .await
        .expect("compact to an older revision");
    assert_eq!(expect_compacted(&store, "k", "", 2).await, 3);
    // Compacting up to the current revision keeps its own events.
    store.compact(5).await.expect("compact");
    let mut from_five = watch(&store, "k", "", 5).await;
    assert_eq!(
        next_events(&mut from_five, 1).await,
        vec![put_event("k", "3", 5)]
    );
    assert_eq!(expect_compacted(&store, "k", "", 4).await, 5);
}

pub async fn compaction_keeps_current_keys<S: Store>(store: S) {
    put(&store, "a", "1").await;
    put(&store, "b", "1").await;
    put(&store, "a", "2").await;
    delete(&store, "b").await;
    put(&store, "c", "1").await;
    let before = store.range(RangeRequest::prefix("")).await.expect("range");
    store.compact(5).await.expect("compact");
    let after = store.range(RangeRequest::prefix("")).await.expect("range");
    assert_eq!(before, after);
    assert_eq!(get(&store, "a").await.expect("a").version, 2);
    assert_eq!(revision(&store).await, 5);
    assert_eq!(put(&store, "d", "1").await.revision, 6);
}
