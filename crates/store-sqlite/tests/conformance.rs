//! The store conformance suite against [`store_sqlite::SqliteStore`].

store::conformance_tests!(
    let dir = tempfile::tempdir().expect("temporary directory");
    store_sqlite::SqliteStore::open(&dir.path().join("store.db"))
        .await
        .expect("open the store")
);
