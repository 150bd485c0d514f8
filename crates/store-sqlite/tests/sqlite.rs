//! Behaviour specific to the SQLite backend: persistence across reopen,
//! paged replay, lagging watchers, refusing newer schemas.

use futures::StreamExt;
use store::{Op, RangeRequest, Store, StoreError, Txn, WatchStream};
use store_sqlite::{SqliteStore, SqliteStoreError, SqliteStoreOptions};

async fn put(store: &SqliteStore, key: &str, value: &str) -> store::TxnResponse {
    store
        .txn(Txn::new().then(Op::put(key, value)))
        .await
        .expect("put")
}

async fn revisions(stream: &mut WatchStream, count: usize) -> Vec<i64> {
    let mut seen = Vec::with_capacity(count);
    for _ in 0..count {
        let event = stream.next().await.expect("an event").expect("no error");
        seen.push(event.kv.mod_revision);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/store.db");
    let store = SqliteStore::open(&path).await.unwrap();
    put(&store, "k", "v").await;
    assert!(path.exists());
    assert_eq!(store.path(), path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_revisions_and_history_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = store_sqlite::open(&path).await.unwrap();
        put(&store, "a", "1").await;
        put(&store, "b", "1").await;
        put(&store, "a", "2").await;
        store.txn(Txn::new().then(Op::delete("b"))).await.unwrap();
        store.compact(2).await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 4);
    let a = store.get("a").await.unwrap().expect("a");
    assert_eq!(
        (a.value, a.create_revision, a.mod_revision, a.version),
        (b"2".to_vec(), 1, 3, 2)
    );
    assert_eq!(store.get("b").await.unwrap(), None);
    let mut replay = store.watch("", &store::prefix_end(""), 2).await.unwrap();
    assert_eq!(revisions(&mut replay, 3).await, vec![2, 3, 4]);
    assert!(matches!(
        store.watch("a", "", 1).await.err(),
        Some(StoreError::Compacted {
            requested: 1,
            oldest: 2
        })
    ));
    assert_eq!(put(&store, "c", "1").await.revision, 5);
    assert_eq!(revisions(&mut replay, 1).await, vec![5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_spans_many_pages_and_fails_if_compacted_underneath() {
    const WRITES: i64 = 1300;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db"))
        .await
        .unwrap();
    for index in 1..=WRITES {
        put(&store, &format!("k/{}", index % 10), &index.to_string()).await;
    }
    let mut complete = store
        .watch("k/", &store::prefix_end("k/"), 1)
        .await
        .unwrap();
    let mut only_k3 = store.watch("k/3", "", 1).await.unwrap();
    assert_eq!(
        revisions(&mut complete, WRITES as usize).await,
        (1..=WRITES).collect::<Vec<_>>()
    );
    assert_eq!(
        revisions(&mut only_k3, (WRITES / 10) as usize).await,
        (1..=WRITES)
            .filter(|index| index % 10 == 3)
            .collect::<Vec<_>>()
    );

    // The first page is read when the watch starts; compacting before the
    // watcher reaches the second page loses events it still needs.
    let mut interrupted = store
        .watch("k/", &store::prefix_end("k/"), 1)
        .await
        .unwrap();
    store.compact(1000).await.unwrap();
    let mut delivered = 0;
    let error = loop {
        match interrupted
            .next()
            .await
            .expect("the stream reports the loss")
        {
            Ok(_) => delivered += 1,
            Err(error) => break error,
        }
    };
    assert!(delivered > 0 && delivered < 1000, "delivered {delivered}");
    assert!(matches!(
        error,
        StoreError::Compacted {
            requested: 1,
            oldest: 1000
        }
    ));
    assert!(interrupted.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_watcher_gets_watch_lagged_then_the_stream_ends() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteStoreOptions {
        watch_capacity: 2,
        ..SqliteStoreOptions::default()
    };
    let store = SqliteStore::open_with_options(&dir.path().join("store.db"), options)
        .await
        .unwrap();
    let mut watch = store.watch("k", "", 0).await.unwrap();
    // Sequential writes: one batch each.
    for index in 0..5 {
        put(&store, "k", &index.to_string()).await;
    }
    assert!(matches!(
        watch.next().await,
        Some(Err(StoreError::WatchLagged))
    ));
    assert!(watch.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let connection = rusqlite::Connection::open(&path).unwrap();
    connection.pragma_update(None, "user_version", 999).unwrap();
    drop(connection);
    let error = match SqliteStore::open(&path).await {
        Err(error) => error,
        Ok(_) => panic!("opened a database with schema version 999"),
    };
    assert!(matches!(
        error,
        SqliteStoreError::SchemaTooNew { found: 999, .. }
    ));
    assert!(error.to_string().contains("run a newer Berth"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_commits_and_see_their_writes() {
    const WRITERS: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..5 {
                let key = format!("w/{writer:02}");
                let response = put(&store, &key, &round.to_string()).await;
                let read = store.get(&key).await.unwrap().expect("read your write");
                assert_eq!(read.mod_revision, response.revision);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = store.write_stats();
    assert_eq!(stats.requests, (WRITERS * 5) as u64);
    assert!(stats.commits >= 1 && stats.commits <= stats.requests);
    let response = store.range(RangeRequest::prefix("w/")).await.unwrap();
    assert_eq!(response.kvs.len(), WRITERS);
    assert!(response.kvs.iter().all(|kv| kv.version == 5));
    assert_eq!(response.revision, (WRITERS * 5) as i64);
}
