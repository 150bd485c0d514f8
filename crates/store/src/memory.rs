//! [`MemoryStore`]: the in-memory [`Store`], used by unit tests and the
//! simulator, and the reference for the semantics every backend must match.
//!
//! Also holds the two pieces of pure store logic that backends share:
//! [`compare_holds`] and [`key_in_range`].
//!
//! Watch design: the store keeps every event since its compaction point in
//! `history` and publishes each transaction's events on a broadcast channel.
//! A watch snapshots the matching part of `history` and subscribes to the
//! channel while holding the one state lock, so the replay ends exactly where
//! the live events begin: no gaps, no duplicates.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::{
    Compare, CompareOp, CompareTarget, EventKind, KeyValue, Op, RangeRequest, RangeResponse,
    Result, Revision, Store, StoreError, Txn, TxnResponse, WatchEvent, WatchStream,
};

/// How many transactions a watcher may fall behind before it is dropped
/// with [`StoreError::WatchLagged`].
pub const DEFAULT_WATCH_CAPACITY: usize = 4096;

/// Whether `compare` holds for the key's current state (`None`: absent).
///
/// An absent key has version, create_revision and mod_revision 0. A `Value`
/// comparison against an absent key never holds, whatever the operator (as
/// in etcd: there is no value to compare). Values compare byte-wise.
pub fn compare_holds(compare: &Compare, current: Option<&KeyValue>) -> bool {
    let ordering = match (&compare.target, current) {
        (CompareTarget::Value(_), None) => return false,
        (CompareTarget::Value(expected), Some(kv)) => kv.value.as_slice().cmp(expected.as_slice()),
        (CompareTarget::Version(expected), kv) => kv.map_or(0, |kv| kv.version).cmp(expected),
        (CompareTarget::CreateRevision(expected), kv) => {
            kv.map_or(0, |kv| kv.create_revision).cmp(expected)
        }
        (CompareTarget::ModRevision(expected), kv) => {
            kv.map_or(0, |kv| kv.mod_revision).cmp(expected)
        }
    };
    match compare.op {
        CompareOp::Equal => ordering.is_eq(),
        CompareOp::NotEqual => ordering.is_ne(),
        CompareOp::Greater => ordering.is_gt(),
        CompareOp::Less => ordering.is_lt(),
    }
}

/// Whether `key` lies in `[start, end)`; an empty `end` means exactly `start`.
pub fn key_in_range(key: &str, start: &str, end: &str) -> bool {
    if end.is_empty() {
        key == start
    } else {
        start <= key && key < end
    }
}

/// The in-memory store. Cloning is cheap and shares the same state.
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

struct State {
    keys: BTreeMap<String, KeyValue>,
    revision: Revision,
    /// Watches must start at or after this revision.
    compacted_revision: Revision,
    /// Every event with `mod_revision >= compacted_revision`, in order.
    history: VecDeque<WatchEvent>,
    /// One message per writing transaction.
    live: broadcast::Sender<Arc<[WatchEvent]>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_watch_capacity(DEFAULT_WATCH_CAPACITY)
    }

    /// A store whose watchers are dropped once they fall `capacity`
    /// transactions behind.
    pub fn with_watch_capacity(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(capacity.max(1));
        MemoryStore {
            state: Arc::new(Mutex::new(State {
                keys: BTreeMap::new(),
                revision: 0,
                compacted_revision: 0,
                history: VecDeque::new(),
                live,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is only mutated by code that cannot panic halfway through
        // a transaction, so a poisoned lock still guards consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn range(&self, request: &RangeRequest) -> RangeResponse {
        let mut matching: Box<dyn Iterator<Item = &KeyValue>> = if request.range_end.is_empty() {
            Box::new(self.keys.get(&request.key).into_iter())
        } else if request.key < request.range_end {
            Box::new(
                self.keys
                    .range::<str, _>((
                        Bound::Included(request.key.as_str()),
                        Bound::Excluded(request.range_end.as_str()),
                    ))
                    .map(|(_, kv)| kv),
            )
        } else {
            Box::new(std::iter::empty())
        };
        let mut kvs = Vec::new();
        let mut more = false;
        for kv in matching.by_ref() {
            if request.limit != 0 && kvs.len() == request.limit {
                more = true;
                break;
            }
            kvs.push(kv.clone());
        }
        RangeResponse {
            kvs,
            more,
            revision: self.revision,
        }
    }

    fn apply(&mut self, txn: Txn) -> TxnResponse {
        let succeeded = txn
            .compare
            .iter()
            .all(|compare| compare_holds(compare, self.keys.get(&compare.key)));
        let ops = if succeeded { txn.success } else { txn.failure };
        let revision = self.revision + 1;
        let mut events = Vec::new();
        for op in ops {
            match op {
                Op::Put { key, value } => {
                    let (create_revision, version) = match self.keys.get(&key) {
                        Some(previous) => (previous.create_revision, previous.version + 1),
                        None => (revision, 1),
                    };
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision,
                        mod_revision: revision,
                        version,
                    };
                    self.keys.insert(key, kv.clone());
                    events.push(WatchEvent {
                        kind: EventKind::Put,
                        kv,
                    });
                }
                Op::Delete { key } => {
                    if self.keys.remove(&key).is_some() {
                        events.push(delete_event(key, revision));
                    }
                }
            }
        }
        if !events.is_empty() {
            self.revision = revision;
            self.history.extend(events.iter().cloned());
            // No receivers is fine: nobody is watching.
            let _ = self.live.send(events.into());
        }
        TxnResponse {
            succeeded,
            revision: self.revision,
        }
    }

    fn compact(&mut self, revision: Revision) {
        // Compacting past the next revision would forget events that have
        // not happened yet.
        let revision = revision.min(self.revision + 1);
        if revision <= self.compacted_revision {
            return;
        }
        self.compacted_revision = revision;
        let forgotten = self
            .history
            .partition_point(|event| event.kv.mod_revision < revision);
        self.history.drain(..forgotten);
    }
}

fn delete_event(key: String, revision: Revision) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Delete,
        kv: KeyValue {
            key,
            value: Vec::new(),
            create_revision: 0,
            mod_revision: revision,
            version: 0,
        },
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.lock().keys.get(key).cloned())
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse> {
        Ok(self.lock().range(&request))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        Ok(self.lock().apply(txn))
    }

    async fn watch(
        &self,
        key: &str,
        range_end: &str,
        start_revision: Revision,
    ) -> Result<WatchStream> {
        let state = self.lock();
        let start_revision = if start_revision <= 0 {
            state.revision + 1
        } else {
            start_revision
        };
        if start_revision < state.compacted_revision {
            return Err(StoreError::Compacted {
                requested: start_revision,
                oldest: state.compacted_revision,
            });
        }
        let first = state
            .history
            .partition_point(|event| event.kv.mod_revision < start_revision);
        let replay: Vec<Result<WatchEvent>> = state
            .history
            .range(first..)
            .filter(|event| key_in_range(&event.kv.key, key, range_end))
            .cloned()
            .map(Ok)
            .collect();
        // Subscribing under the lock: every later transaction is on the
        // channel, every earlier one is in `replay`.
        let receiver = state.live.subscribe();
        let live_from_revision = start_revision.max(state.revision + 1);
        drop(state);
        let live = live_events(
            receiver,
            key.to_string(),
            range_end.to_string(),
            live_from_revision,
        );
        Ok(futures::stream::iter(replay).chain(live).boxed())
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.lock().revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.lock().compact(revision);
        Ok(())
    }
}

struct LiveCursor {
    receiver: broadcast::Receiver<Arc<[WatchEvent]>>,
    key: String,
    range_end: String,
    from_revision: Revision,
    pending: VecDeque<WatchEvent>,
}

/// The events on `receiver` for keys in `[key, range_end)` with
/// `mod_revision >= from_revision`; a lagging receiver yields
/// [`StoreError::WatchLagged`] and ends.
fn live_events(
    receiver: broadcast::Receiver<Arc<[WatchEvent]>>,
    key: String,
    range_end: String,
    from_revision: Revision,
) -> impl futures::Stream<Item = Result<WatchEvent>> + Send {
    let cursor = LiveCursor {
        receiver,
        key,
        range_end,
        from_revision,
        pending: VecDeque::new(),
    };
    futures::stream::unfold(Some(cursor), |cursor| async move {
        let mut cursor = cursor?;
        loop {
            if let Some(event) = cursor.pending.pop_front() {
                return Some((Ok(event), Some(cursor)));
            }
            match cursor.receiver.recv().await {
                Ok(events) => {
                    let LiveCursor {
                        key,
                        range_end,
                        from_revision,
                        pending,
                        ..
                    } = &mut cursor;
                    pending.extend(
                        events
                            .iter()
                            .filter(|event| {
                                event.kv.mod_revision >= *from_revision
                                    && key_in_range(&event.kv.key, key, range_end)
                            })
                            .cloned(),
                    );
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some((Err(StoreError::WatchLagged), None));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(
        value: &str,
        create_revision: Revision,
        mod_revision: Revision,
        version: i64,
    ) -> KeyValue {
        KeyValue {
            key: "k".to_string(),
            value: value.as_bytes().to_vec(),
            create_revision,
            mod_revision,
            version,
        }
    }

    fn check(target: CompareTarget, current: Option<&KeyValue>, expected: [bool; 4]) {
        let ops = [
            CompareOp::Equal,
            CompareOp::NotEqual,
            CompareOp::Greater,
            CompareOp::Less,
        ];
        for (op, expected) in ops.into_iter().zip(expected) {
            let compare = Compare {
                key: "k".to_string(),
                op,
                target: target.clone(),
            };
            assert_eq!(
                compare_holds(&compare, current),
                expected,
                "{compare:?} against {current:?}"
            );
        }
    }

    #[test]
    fn compare_holds_follows_the_operator_for_every_target() {
        let present = kv("m", 3, 7, 2);
        //                                               [Equal, NotEqual, Greater, Less]
        check(
            CompareTarget::Version(2),
            Some(&present),
            [true, false, false, false],
        );
        check(
            CompareTarget::Version(1),
            Some(&present),
            [false, true, true, false],
        );
        check(
            CompareTarget::Version(3),
            Some(&present),
            [false, true, false, true],
        );
        check(
            CompareTarget::CreateRevision(3),
            Some(&present),
            [true, false, false, false],
        );
        check(
            CompareTarget::CreateRevision(4),
            Some(&present),
            [false, true, false, true],
        );
        check(
            CompareTarget::ModRevision(7),
            Some(&present),
            [true, false, false, false],
        );
        check(
            CompareTarget::ModRevision(6),
            Some(&present),
            [false, true, true, false],
        );
        check(
            CompareTarget::Value(b"m".to_vec()),
            Some(&present),
            [true, false, false, false],
        );
        check(
            CompareTarget::Value(b"a".to_vec()),
            Some(&present),
            [false, true, true, false],
        );
        check(
            CompareTarget::Value(b"mm".to_vec()),
            Some(&present),
            [false, true, false, true],
        );
        check(CompareTarget::Version(0), None, [true, false, false, false]);
        check(
            CompareTarget::CreateRevision(0),
            None,
            [true, false, false, false],
        );
        check(
            CompareTarget::ModRevision(1),
            None,
            [false, true, false, true],
        );
        check(
            CompareTarget::Value(Vec::new()),
            None,
            [false, false, false, false],
        );
    }

    #[test]
    fn key_in_range_treats_an_empty_end_as_one_key() {
        assert!(key_in_range("a", "a", ""));
        assert!(!key_in_range("ab", "a", ""));
        assert!(key_in_range("ab", "a", "b"));
        assert!(!key_in_range("b", "a", "b"));
        assert!(!key_in_range("a", "b", "a"));
    }

    #[tokio::test]
    async fn a_lagging_watcher_gets_watch_lagged_then_the_stream_ends() {
        let store = MemoryStore::with_watch_capacity(2);
        let mut watch = store.watch("k", "", 0).await.unwrap();
        for value in 0..5 {
            store
                .txn(Txn::new().then(Op::put("k", vec![value])))
                .await
                .unwrap();
        }
        assert!(matches!(
            watch.next().await,
            Some(Err(StoreError::WatchLagged))
        ));
        assert!(watch.next().await.is_none());
    }

    #[tokio::test]
    async fn compaction_past_the_next_revision_is_clamped() {
        let store = MemoryStore::new();
        store.txn(Txn::new().then(Op::put("k", "1"))).await.unwrap();
        store.compact(100).await.unwrap();
        let mut watch = store.watch("k", "", 2).await.unwrap();
        store.txn(Txn::new().then(Op::put("k", "2"))).await.unwrap();
        let event = watch.next().await.unwrap().unwrap();
        assert_eq!(event.kv.mod_revision, 2);
        assert!(matches!(
            store.watch("k", "", 1).await.err(),
            Some(StoreError::Compacted {
                requested: 1,
                oldest: 2
            })
        ));
    }

    #[tokio::test]
    async fn dropping_the_store_ends_live_watches() {
        let store = MemoryStore::new();
        let mut watch = store.watch("k", "", 0).await.unwrap();
        drop(store);
        assert!(watch.next().await.is_none());
    }
}
