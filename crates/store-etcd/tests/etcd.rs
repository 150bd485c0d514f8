//! What the conformance suite does not cover: key prefixes sharing one etcd,
//! store URLs, and connection errors.

use std::time::Duration;

use futures::StreamExt;
use store::{prefix_end, Op, RangeRequest, Store, Txn};
use store_etcd::test_support::EtcdServer;
use store_etcd::{EtcdConfig, EtcdStore, EtcdStoreError};

async fn put(store: &EtcdStore, key: &str, value: &str) -> i64 {
    store
        .txn(Txn::new().then(Op::put(key, value)))
        .await
        .expect("put")
        .revision
}

async fn keys(store: &EtcdStore) -> Vec<String> {
    let response = store.range(RangeRequest::prefix("")).await.expect("range");
    response.kvs.into_iter().map(|kv| kv.key).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_prefixes_keep_stores_apart() {
    let etcd = EtcdServer::start().await;
    let blue = etcd.store("/blue/").await;
    let green = etcd.store("/green/").await;
    let whole = etcd.store("").await;
    let mut green_events = green
        .watch("", &prefix_end(""), 0)
        .await
        .expect("watch green");

    put(&blue, "k", "blue").await;
    put(&blue, "only-blue", "x").await;
    put(&green, "k", "green").await;

    assert_eq!(keys(&blue).await, vec!["k", "only-blue"]);
    assert_eq!(keys(&green).await, vec!["k"]);
    assert_eq!(
        green.get("k").await.expect("get").expect("k").value,
        b"green".to_vec()
    );
    assert_eq!(green.get("only-blue").await.expect("get"), None);
    assert_eq!(
        keys(&whole).await,
        vec!["/blue/k", "/blue/only-blue", "/green/k"]
    );
    // Green's watch saw only green's write (the first event is it).
    let event = tokio::time::timeout(Duration::from_secs(30), green_events.next())
        .await
        .expect("an event")
        .expect("not ended")
        .expect("not failed");
    assert_eq!(
        (event.kv.key.as_str(), event.kv.value.as_slice()),
        ("k", &b"green"[..])
    );
    // The revision is etcd's, shared: green's first write is at 3.
    assert_eq!(event.kv.mod_revision, 3);
    assert_eq!(green.current_revision().await.expect("revision"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connects_with_a_store_url() {
    let etcd = EtcdServer::start().await;
    let url = format!("etcd://{}/berth/url", etcd.endpoint());
    let store = EtcdStore::connect_url(&url).await.expect("connect");
    put(&store, "k", "v").await;
    let whole = etcd.store("").await;
    assert_eq!(keys(&whole).await, vec!["/berth/urlk"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_cluster_fails_connect_with_the_endpoints() {
    // A port that nothing listens on once the listener is gone.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let mut config = EtcdConfig::new([format!("127.0.0.1:{port}")]);
    config.retry_attempts = 1;
    let error = match EtcdStore::connect(config).await {
        Ok(_) => panic!("connected to nothing"),
        Err(error) => error,
    };
    assert!(
        matches!(error, EtcdStoreError::Unreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(
        message.contains("check that the cluster is up"),
        "{message}"
    );
}

/// etcd with `auth enable`: a user who may touch only its prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authenticates_as_a_user_confined_to_its_prefix() {
    let etcd = EtcdServer::start().await;
    let mut admin = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .expect("admin client");
    admin
        .user_add("root", "root-password", None)
        .await
        .expect("root");
    admin
        .user_grant_role("root", "root")
        .await
        .expect("root role");
    admin.role_add("berth").await.expect("role");
    admin
        .role_grant_permission(
            "berth",
            etcd_client::Permission::read_write("/berth/").with_prefix(),
        )
        .await
        .expect("grant");
    admin.user_add("berth", "p@ss", None).await.expect("user");
    admin
        .user_grant_role("berth", "berth")
        .await
        .expect("grant role");
    admin.auth_enable().await.expect("auth enable");

    let url = format!("etcd://berth:p%40ss@{}/berth/", etcd.endpoint());
    let store = EtcdStore::connect_url(&url)
        .await
        .expect("connect as berth");
    let mut events = store
        .watch("", &prefix_end(""), 0)
        .await
        .expect("watch inside the prefix");
    put(&store, "k", "v").await;
    assert_eq!(keys(&store).await, vec!["k"]);
    let event = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("an event")
        .expect("not ended")
        .expect("not failed");
    assert_eq!(event.kv.key, "k");

    let wrong = format!("etcd://berth:wrong@{}/berth/", etcd.endpoint());
    let error = match EtcdStore::connect_url(&wrong).await {
        Ok(_) => panic!("connected with a wrong password"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("authentication failed"), "{error}");
}
