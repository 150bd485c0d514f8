//! The store on a 3-member etcd cluster, through the loss of members
//! (SIGKILL, no clean shutdown): reads and writes go on, and watches go on
//! with neither gaps nor duplicates.

use std::time::Duration;

use futures::StreamExt;
use store::{prefix_end, EventKind, Op, RangeRequest, Revision, Store, Txn, WatchStream};
use store_etcd::test_support::EtcdCluster;
use store_etcd::EtcdStore;

/// Only turns a missing event into a failure instead of a hang.
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

fn key(index: usize) -> String {
    format!("w/{index:03}")
}

/// Writes keys `range`, one transaction each, each at the next revision.
async fn write(store: &EtcdStore, range: std::ops::Range<usize>) {
    for index in range {
        let response = store
            .txn(Txn::new().then(Op::put(key(index), index.to_string())))
            .await
            .unwrap_or_else(|error| panic!("write {index}: {error}"));
        assert_eq!(response.revision, index as Revision + 1, "write {index}");
    }
}

async fn watches(store: &EtcdStore, count: usize) -> Vec<WatchStream> {
    let mut streams = Vec::new();
    for _ in 0..count {
        streams.push(
            store
                .watch("w/", &prefix_end("w/"), 0)
                .await
                .expect("open a watch"),
        );
    }
    streams
}

/// The stream delivers exactly the writes of keys `0..count`, in order.
async fn expect_every_write(stream: &mut WatchStream, count: usize) {
    for index in 0..count {
        let event = match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
            Ok(Some(Ok(event))) => event,
            Ok(Some(Err(error))) => panic!("watch failed before write {index}: {error}"),
            Ok(None) => panic!("watch ended before write {index}"),
            Err(_) => panic!("no event for write {index} within {EVENT_TIMEOUT:?}"),
        };
        assert_eq!(
            (
                event.kind,
                event.kv.key.as_str(),
                event.kv.value.as_slice(),
                event.kv.mod_revision
            ),
            (
                EventKind::Put,
                key(index).as_str(),
                index.to_string().as_bytes(),
                index as Revision + 1
            ),
            "a gap or a duplicate before write {index}"
        );
    }
}

async fn expect_every_key(store: &EtcdStore, count: usize) {
    let response = store
        .range(RangeRequest::prefix("w/"))
        .await
        .expect("range");
    let keys: Vec<String> = response.kvs.into_iter().map(|kv| kv.key).collect();
    assert_eq!(keys, (0..count).map(key).collect::<Vec<_>>());
    assert_eq!(response.revision, count as Revision);
    let last = store
        .get(&key(count - 1))
        .await
        .expect("get")
        .expect("last key");
    assert_eq!(last.value, (count - 1).to_string().into_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keeps_working_after_the_leader_is_killed() {
    let mut cluster = EtcdCluster::start(3).await;
    let store = cluster.store("/berth-ha/").await;
    let mut streams = watches(&store, 4).await;
    write(&store, 0..20).await;

    let leader = cluster.leader().await;
    cluster.kill(leader);
    // A write in flight while the leader dies can fail with etcd's
    // "request timed out" (it may or may not have been applied), so the
    // writes resume once the other two have elected a new leader.
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);

    write(&store, 20..40).await;
    expect_every_key(&store, 40).await;
    for stream in &mut streams {
        expect_every_write(stream, 40).await;
    }
    let mut replay = store
        .watch("w/", &prefix_end("w/"), 1)
        .await
        .expect("watch from the start");
    expect_every_write(&mut replay, 40).await;
}

/// Every watch's connection is to some member, and every member is killed
/// once, so every watch loses its connection at least once and re-opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watches_resume_when_each_member_in_turn_is_killed() {
    const WRITES_PER_STEP: usize = 10;
    let mut cluster = EtcdCluster::start(3).await;
    let store = cluster.store("/berth-ha/").await;
    let mut streams = watches(&store, 3).await;
    let mut written = 0;
    for victim in 0..cluster.len() {
        write(&store, written..written + WRITES_PER_STEP).await;
        written += WRITES_PER_STEP;
        cluster.kill(victim);
        cluster.leader().await;
        write(&store, written..written + WRITES_PER_STEP).await;
        written += WRITES_PER_STEP;
        cluster.restart(victim).await;
    }
    write(&store, written..written + WRITES_PER_STEP).await;
    written += WRITES_PER_STEP;

    expect_every_key(&store, written).await;
    for stream in &mut streams {
        expect_every_write(stream, written).await;
    }
}
