//! What only the disk backend has: its layout, its lock, and what a crash
//! leaves behind.

use std::fs;
use std::path::Path;

use blob_store::conformance::test_bytes;
use blob_store::fs::FsBlobStore;
use blob_store::{BlobStore, BlobStoreError, Digest, UploadId};

fn open(dir: &Path) -> FsBlobStore {
    FsBlobStore::open(dir).expect("open the store")
}

#[test]
fn blobs_live_at_algorithm_prefix_hex() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open(dir.path());
    let digest = Digest::sha256(b"layer");
    store.put_blob(&digest, b"layer").expect("put");
    let path = dir
        .path()
        .join("blobs/sha256")
        .join(&digest.hex()[..2])
        .join(digest.hex());
    assert_eq!(fs::read(path).expect("blob file"), b"layer");
    let id = store.start_upload().expect("start");
    assert!(dir.path().join("uploads").join(id.as_str()).is_file());
}

#[test]
fn a_second_store_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = open(dir.path());
    match FsBlobStore::open(dir.path()) {
        Err(BlobStoreError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::WouldBlock);
            assert!(source.to_string().contains("another process"), "{source}");
        }
        Err(err) => panic!("expected a lock error, got {err}"),
        Ok(_) => panic!("expected a lock error, the store opened twice"),
    }
    drop(store);
    open(dir.path());
}

/// A crash mid-upload, mid-put, mid-finish: what is on disk afterwards is
/// uploads (listed, resumable, cancellable) and whole blobs, never a blob
/// whose bytes do not match.
#[test]
fn a_crash_leaves_nothing_visible_but_listed_uploads() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let uploads = dir.path().join("uploads");
    let data = test_bytes(1, 30_000);
    let digest = Digest::sha256(&data);
    drop(open(dir.path()));

    // A put_blob that died after writing half its staging file.
    let half_put = UploadId::generate();
    fs::write(uploads.join(half_put.as_str()), &data[..15_000]).expect("half-written staging");
    // An upload whose last appends never reached the disk.
    let torn = UploadId::generate();
    fs::write(uploads.join(torn.as_str()), &data[..20_000]).expect("torn upload");
    // Debris that is no upload at all.
    fs::write(uploads.join("tmp.1234"), b"junk").expect("debris");
    // A stray file in the blob tree under a name that is not a digest.
    let prefix = dir.path().join("blobs/sha256").join(&digest.hex()[..2]);
    fs::create_dir_all(&prefix).expect("prefix directory");
    fs::write(prefix.join(format!("{}.tmp", digest.hex())), &data[..100]).expect("stray");

    let store = open(dir.path());
    assert_eq!(store.list_blobs().expect("list"), vec![]);
    assert_eq!(store.stat_blob(&digest).expect("stat"), None);
    assert!(matches!(
        store.read_blob(&digest, 0, 10),
        Err(BlobStoreError::BlobNotFound(_))
    ));
    assert!(!uploads.join("tmp.1234").exists(), "debris removed on open");
    let mut listed: Vec<(UploadId, u64)> = store
        .list_uploads()
        .expect("list uploads")
        .into_iter()
        .map(|upload| (upload.id, upload.size))
        .collect();
    listed.sort();
    let mut expected = vec![(half_put.clone(), 15_000), (torn.clone(), 20_000)];
    expected.sort();
    assert_eq!(listed, expected);

    // Finishing what a crash cut short is a mismatch: nothing visible.
    assert!(matches!(
        store.finish_upload(&half_put, &digest),
        Err(BlobStoreError::DigestMismatch { .. })
    ));
    assert_eq!(store.stat_blob(&digest).expect("stat"), None);
    // A client resumes from the size the store reports.
    let size = store.upload_size(&torn).expect("size");
    store
        .append_upload(&torn, size, &data[size as usize..])
        .expect("resume");
    store.finish_upload(&torn, &digest).expect("finish");
    assert_eq!(store.read_blob(&digest, 0, usize::MAX).expect("read"), data);
    assert_eq!(store.list_uploads().expect("list uploads"), vec![]);
    assert_eq!(store.list_blobs().expect("list").len(), 1);
}

#[test]
fn garbage_collection_cancels_stale_uploads_a_crash_left() {
    let dir = tempfile::tempdir().expect("temporary directory");
    drop(open(dir.path()));
    let stray = UploadId::generate();
    fs::write(dir.path().join("uploads").join(stray.as_str()), b"partial").expect("stray");
    let store = open(dir.path());
    let listed = store.list_uploads().expect("list uploads");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, stray);
    assert!(listed[0].last_modified_ms > 0);
    store.cancel_upload(&stray).expect("cancel");
    assert_eq!(store.list_uploads().expect("list uploads"), vec![]);
    assert!(fs::read_dir(dir.path().join("uploads"))
        .expect("uploads directory")
        .next()
        .is_none());
}

#[test]
fn bytes_changed_behind_the_stores_back_after_a_restart_are_caught() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = test_bytes(2, 10_000);
    let digest = Digest::sha256(&data);
    let id = {
        let store = open(dir.path());
        let id = store.start_upload().expect("start");
        store.append_upload(&id, 0, &data).expect("append");
        store.sync_upload(&id).expect("sync");
        id
    };
    // The restart lost the hasher; a flipped byte must still be found.
    let path = dir.path().join("uploads").join(id.as_str());
    let mut bytes = fs::read(&path).expect("upload file");
    bytes[5_000] ^= 1;
    fs::write(&path, bytes).expect("corrupt");
    let store = open(dir.path());
    assert!(matches!(
        store.finish_upload(&id, &digest),
        Err(BlobStoreError::DigestMismatch { .. })
    ));
    assert_eq!(store.list_blobs().expect("list"), vec![]);
    assert!(!path.exists());
}
