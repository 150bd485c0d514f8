//! The blob store conformance suite against both backends.

mod memory {
    blob_store::conformance_tests!(blob_store::MemoryBlobStore::new());
}

mod fs {
    blob_store::conformance_tests!(
        let dir = tempfile::tempdir().expect("temporary directory");
        blob_store::fs::FsBlobStore::open(dir.path()).expect("open the store")
    );

    #[test]
    fn reopen_keeps_completed_blobs_and_uploads() {
        let dir = tempfile::tempdir().expect("temporary directory");
        blob_store::conformance::reopen_keeps_completed_blobs_and_uploads(&|| {
            Box::new(blob_store::fs::FsBlobStore::open(dir.path()).expect("open the store"))
        });
    }
}

/// The disk backend hashing only at finish: the path every upload found on
/// disk after a restart takes.
mod fs_hashing_at_finish {
    fn open(dir: &std::path::Path) -> blob_store::fs::FsBlobStore {
        blob_store::fs::FsBlobStore::open_with_options(
            dir,
            blob_store::fs::FsOptions {
                incremental_hash: false,
            },
        )
        .expect("open the store")
    }

    blob_store::conformance_tests!(
        let dir = tempfile::tempdir().expect("temporary directory");
        open(dir.path())
    );
}
