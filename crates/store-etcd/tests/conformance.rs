//! The store conformance suite against [`store_etcd::EtcdStore`] on a real
//! etcd: a fresh one-member etcd per check, because the suite counts
//! revisions from 0 and etcd's revision is shared by its whole key space.
//! The store lives under a key prefix, so the prefix handling is exercised
//! by every check.

store::conformance_tests!(
    let etcd = store_etcd::test_support::EtcdServer::start().await;
    etcd.store("/berth-conformance/").await
);
