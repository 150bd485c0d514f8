//! The log store conformance suite against both backends.

mod memory {
    log_store::conformance_tests!(log_store::MemoryLogStore::new());
}

mod segments {
    log_store::conformance_tests!(
        let dir = tempfile::tempdir().expect("temporary directory");
        log_store::segments::SegmentLogStore::open(dir.path()).expect("open the store")
    );
}

/// Tiny segments, so every check also crosses segment boundaries, merges
/// overlapping segments and expires whole ones.
mod small_segments {
    log_store::conformance_tests!(
        let dir = tempfile::tempdir().expect("temporary directory");
        log_store::segments::SegmentLogStore::open_with_limits(
            dir.path(),
            log_store::segments::SegmentLimits {
                max_segment_bytes: 200,
                max_segment_span_ms: 10,
            },
        )
        .expect("open the store")
    );
}
