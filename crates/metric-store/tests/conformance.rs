//! The metric store conformance suite against both backends.

mod memory {
    metric_store::conformance_tests!(metric_store::MemoryMetricStore::new());
}

mod sqlite {
    metric_store::conformance_tests!(
        let dir = tempfile::tempdir().expect("temporary directory");
        metric_store::sqlite::SqliteMetricStore::open(dir.path()).expect("open the store")
    );
}
