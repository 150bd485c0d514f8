//! The conformance suite every [`BlobStore`] backend must pass.
//!
//! Each check is a `pub fn` taking a fresh, empty store. Backends run them
//! all through [`conformance_tests!`](crate::conformance_tests), which
//! expands to one `#[test]` per check so failures are named:
//!
//! ```ignore
//! blob_store::conformance_tests!(blob_store::MemoryBlobStore::new());
//! // A fixture that must outlive the store (a temporary directory) goes first:
//! blob_store::conformance_tests!(
//!     let dir = tempfile::tempdir().unwrap();
//!     blob_store::fs::FsBlobStore::open(dir.path()).unwrap()
//! );
//! ```
//!
//! Backends that keep data across restarts also run
//! [`reopen_keeps_completed_blobs_and_uploads`], given a function that opens
//! the same store again.
//!
//! Not checked here, because backends may differ: `last_modified_ms` (only
//! that it is set), and what a crash leaves (backend-specific tests).

use std::collections::BTreeSet;

use crate::{BlobInfo, BlobStore, BlobStoreError, Digest, DigestAlgorithm, UploadId};

/// Expands to one `#[test]` per conformance check, each running it against
/// the store built by the given expression. An optional leading
/// `let pattern = expression;` keeps a fixture alive for the whole test.
#[macro_export]
macro_rules! conformance_tests {
    (@each [$fixture:pat = $setup:expr] $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let $fixture = $setup;
                let store = $make;
                $crate::conformance::$check(&store);
            }
        )*
    };
    (let $fixture:pat = $setup:expr; $make:expr $(,)?) => {
        $crate::conformance_tests!(@each [$fixture = $setup] $make;
            a_new_store_is_empty,
            an_upload_in_pieces_becomes_the_blob,
            an_empty_upload_becomes_the_empty_blob,
            finishing_an_existing_blob_keeps_it_and_discards_the_upload,
            put_of_an_existing_blob_keeps_it,
            a_digest_mismatch_discards_the_upload,
            a_put_with_a_wrong_digest_stores_nothing,
            an_append_at_the_wrong_offset_is_a_range_mismatch,
            reads_honour_offset_and_length,
            reading_an_unknown_blob_is_blob_not_found,
            delete_removes_the_blob_once,
            lists_are_complete_and_sorted,
            cancel_discards_the_upload,
            unknown_uploads_are_not_found,
            sync_keeps_the_upload_as_it_is,
            sha512_digests_work_like_sha256,
            uploads_are_independent,
            concurrent_uploads_of_one_blob_all_succeed,
            concurrent_appends_at_one_offset_let_exactly_one_win,
        );
    };
    ($make:expr $(,)?) => {
        $crate::conformance_tests!(let () = (); $make);
    };
}

/// Deterministic test bytes: `len` bytes that differ with `seed`.
pub fn test_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn upload(store: &dyn BlobStore, pieces: &[&[u8]]) -> UploadId {
    let id = store.start_upload().expect("start upload");
    let mut offset = 0;
    for piece in pieces {
        offset = store
            .append_upload(&id, offset, piece)
            .expect("append to upload");
    }
    id
}

fn assert_upload_not_found<T: std::fmt::Debug>(result: Result<T, BlobStoreError>, id: &UploadId) {
    match result {
        Err(BlobStoreError::UploadNotFound(missing)) => assert_eq!(&missing, id),
        other => panic!("expected UploadNotFound({id}), got {other:?}"),
    }
}

fn upload_ids(store: &dyn BlobStore) -> Vec<UploadId> {
    store
        .list_uploads()
        .expect("list uploads")
        .into_iter()
        .map(|upload| upload.id)
        .collect()
}

fn read_all(store: &dyn BlobStore, digest: &Digest) -> Vec<u8> {
    store.read_blob(digest, 0, usize::MAX).expect("read blob")
}

pub fn a_new_store_is_empty(store: &dyn BlobStore) {
    assert_eq!(store.list_blobs().expect("list blobs"), vec![]);
    assert_eq!(store.list_uploads().expect("list uploads"), vec![]);
    assert_eq!(store.stat_blob(&Digest::sha256(b"x")).expect("stat"), None);
}

pub fn an_upload_in_pieces_becomes_the_blob(store: &dyn BlobStore) {
    let data = test_bytes(1, 10_000);
    let digest = Digest::sha256(&data);
    let id = store.start_upload().expect("start upload");
    assert_eq!(store.upload_size(&id).expect("size"), 0);
    let mut offset = 0;
    for piece in data.chunks(3_333) {
        let size = store.append_upload(&id, offset, piece).expect("append");
        assert_eq!(size, offset + piece.len() as u64);
        assert_eq!(store.upload_size(&id).expect("size"), size);
        offset = size;
    }
    assert_eq!(store.stat_blob(&digest).expect("stat"), None, "not yet");
    let info = store.finish_upload(&id, &digest).expect("finish");
    let expected = BlobInfo {
        digest: digest.clone(),
        size: data.len() as u64,
    };
    assert_eq!(info, expected);
    assert_eq!(store.stat_blob(&digest).expect("stat"), Some(expected));
    assert_eq!(read_all(store, &digest), data);
    assert_upload_not_found(store.upload_size(&id), &id);
    assert_upload_not_found(store.finish_upload(&id, &digest), &id);
    assert_eq!(upload_ids(store), vec![]);
}

pub fn an_empty_upload_becomes_the_empty_blob(store: &dyn BlobStore) {
    let digest = Digest::sha256(b"");
    let id = store.start_upload().expect("start upload");
    let info = store.finish_upload(&id, &digest).expect("finish");
    assert_eq!(info.size, 0);
    assert_eq!(read_all(store, &digest), Vec::<u8>::new());
    assert_eq!(store.read_blob(&digest, 5, 10).expect("read"), vec![]);
}

pub fn finishing_an_existing_blob_keeps_it_and_discards_the_upload(store: &dyn BlobStore) {
    let data = test_bytes(2, 5_000);
    let digest = Digest::sha256(&data);
    let first = upload(store, &[&data]);
    store.finish_upload(&first, &digest).expect("first finish");
    let second = upload(store, &[&data[..100], &data[100..]]);
    let info = store
        .finish_upload(&second, &digest)
        .expect("second finish");
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(store.list_blobs().expect("list").len(), 1);
    assert_eq!(read_all(store, &digest), data);
    assert_upload_not_found(store.upload_size(&second), &second);
    assert_eq!(upload_ids(store), vec![]);
}

pub fn put_of_an_existing_blob_keeps_it(store: &dyn BlobStore) {
    let data = b"{\"schemaVersion\":2}".to_vec();
    let digest = Digest::sha256(&data);
    let info = store.put_blob(&digest, &data).expect("put");
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(store.put_blob(&digest, &data).expect("put again"), info);
    let id = upload(store, &[&data]);
    assert_eq!(store.finish_upload(&id, &digest).expect("finish"), info);
    assert_eq!(store.list_blobs().expect("list"), vec![info]);
    assert_eq!(read_all(store, &digest), data);
    assert_eq!(upload_ids(store), vec![]);
}

pub fn a_digest_mismatch_discards_the_upload(store: &dyn BlobStore) {
    let data = test_bytes(3, 2_000);
    let wrong = Digest::sha256(b"something else");
    let id = upload(store, &[&data]);
    match store.finish_upload(&id, &wrong) {
        Err(BlobStoreError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, Digest::sha256(&data));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(store.stat_blob(&wrong).expect("stat"), None);
    assert_eq!(store.stat_blob(&Digest::sha256(&data)).expect("stat"), None);
    assert_eq!(store.list_blobs().expect("list"), vec![]);
    assert_upload_not_found(store.upload_size(&id), &id);
    assert_upload_not_found(store.append_upload(&id, 2_000, b"x"), &id);
    assert_eq!(upload_ids(store), vec![]);
}

pub fn a_put_with_a_wrong_digest_stores_nothing(store: &dyn BlobStore) {
    let wrong = Digest::sha256(b"other");
    match store.put_blob(&wrong, b"data") {
        Err(BlobStoreError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, Digest::sha256(b"data"));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(store.list_blobs().expect("list"), vec![]);
    assert_eq!(store.list_uploads().expect("list uploads"), vec![]);
}

pub fn an_append_at_the_wrong_offset_is_a_range_mismatch(store: &dyn BlobStore) {
    let id = upload(store, &[b"hello "]);
    for offset in [0, 5, 7, 1_000] {
        match store.append_upload(&id, offset, b"world") {
            Err(BlobStoreError::RangeMismatch { current }) => assert_eq!(current, 6),
            other => panic!("append at {offset}: expected RangeMismatch, got {other:?}"),
        }
    }
    assert_eq!(store.upload_size(&id).expect("size"), 6);
    assert_eq!(store.append_upload(&id, 6, b"world").expect("append"), 11);
    assert_eq!(store.append_upload(&id, 11, b"").expect("empty append"), 11);
    let digest = Digest::sha256(b"hello world");
    store.finish_upload(&id, &digest).expect("finish");
    assert_eq!(read_all(store, &digest), b"hello world");
}

pub fn reads_honour_offset_and_length(store: &dyn BlobStore) {
    let data = test_bytes(4, 1_000);
    let digest = Digest::sha256(&data);
    store.put_blob(&digest, &data).expect("put");
    let read =
        |offset: u64, max_len: usize| store.read_blob(&digest, offset, max_len).expect("read");
    assert_eq!(read(0, 1_000), data);
    assert_eq!(read(0, 10), data[..10]);
    assert_eq!(read(10, 20), data[10..30]);
    assert_eq!(read(990, 100), data[990..]);
    assert_eq!(read(999, 1), data[999..]);
    assert_eq!(read(1_000, 10), Vec::<u8>::new());
    assert_eq!(read(5_000, 10), Vec::<u8>::new());
    assert_eq!(read(u64::MAX, usize::MAX), Vec::<u8>::new());
    assert_eq!(read(500, 0), Vec::<u8>::new());
    // Streaming in chunks reassembles the blob.
    let mut streamed = Vec::new();
    loop {
        let chunk = read(streamed.len() as u64, 77);
        if chunk.is_empty() {
            break;
        }
        streamed.extend(chunk);
    }
    assert_eq!(streamed, data);
}

pub fn reading_an_unknown_blob_is_blob_not_found(store: &dyn BlobStore) {
    let digest = Digest::sha256(b"never stored");
    match store.read_blob(&digest, 0, 10) {
        Err(BlobStoreError::BlobNotFound(missing)) => assert_eq!(missing, digest),
        other => panic!("expected BlobNotFound, got {other:?}"),
    }
}

pub fn delete_removes_the_blob_once(store: &dyn BlobStore) {
    let keep = Digest::sha256(b"keep");
    let gone = Digest::sha256(b"gone");
    store.put_blob(&keep, b"keep").expect("put");
    store.put_blob(&gone, b"gone").expect("put");
    assert!(store.delete_blob(&gone).expect("delete"));
    assert!(!store.delete_blob(&gone).expect("delete again"));
    assert!(!store
        .delete_blob(&Digest::sha256(b"never"))
        .expect("delete unknown"));
    assert_eq!(store.stat_blob(&gone).expect("stat"), None);
    assert!(matches!(
        store.read_blob(&gone, 0, 10),
        Err(BlobStoreError::BlobNotFound(_))
    ));
    let listed: Vec<Digest> = store
        .list_blobs()
        .expect("list")
        .into_iter()
        .map(|blob| blob.digest)
        .collect();
    assert_eq!(listed, vec![keep.clone()]);
    // A deleted blob can be stored again.
    store.put_blob(&gone, b"gone").expect("put again");
    assert_eq!(read_all(store, &gone), b"gone");
}

pub fn lists_are_complete_and_sorted(store: &dyn BlobStore) {
    let mut expected_blobs = Vec::new();
    for seed in 0..20 {
        let data = test_bytes(100 + seed, seed as usize * 10);
        let digest = Digest::sha256(&data);
        expected_blobs.push(store.put_blob(&digest, &data).expect("put"));
    }
    let data = test_bytes(7, 33);
    let digest = Digest::compute(DigestAlgorithm::Sha512, &data);
    expected_blobs.push(store.put_blob(&digest, &data).expect("put sha512"));
    expected_blobs.sort_by_key(|blob| blob.digest.to_string());
    assert_eq!(store.list_blobs().expect("list blobs"), expected_blobs);

    let mut expected_uploads = Vec::new();
    for size in [0usize, 1, 4_096, 10] {
        let id = upload(store, &[&test_bytes(size as u64, size)]);
        expected_uploads.push((id.to_string(), size as u64));
    }
    expected_uploads.sort();
    let listed: Vec<(String, u64)> = store
        .list_uploads()
        .expect("list uploads")
        .into_iter()
        .map(|upload| {
            assert!(upload.last_modified_ms > 0, "{upload:?} has a time");
            (upload.id.to_string(), upload.size)
        })
        .collect();
    assert_eq!(listed, expected_uploads);
}

pub fn cancel_discards_the_upload(store: &dyn BlobStore) {
    let data = test_bytes(5, 300);
    let digest = Digest::sha256(&data);
    let id = upload(store, &[&data]);
    let other = upload(store, &[b"other"]);
    store.cancel_upload(&id).expect("cancel");
    assert_upload_not_found(store.upload_size(&id), &id);
    assert_upload_not_found(store.append_upload(&id, 300, b"x"), &id);
    assert_upload_not_found(store.sync_upload(&id), &id);
    assert_upload_not_found(store.finish_upload(&id, &digest), &id);
    assert_upload_not_found(store.cancel_upload(&id), &id);
    assert_eq!(store.stat_blob(&digest).expect("stat"), None);
    assert_eq!(upload_ids(store), vec![other.clone()]);
    assert_eq!(store.upload_size(&other).expect("other size"), 5);
}

pub fn unknown_uploads_are_not_found(store: &dyn BlobStore) {
    let id = UploadId::generate();
    let digest = Digest::sha256(b"");
    assert_upload_not_found(store.upload_size(&id), &id);
    assert_upload_not_found(store.append_upload(&id, 0, b"x"), &id);
    assert_upload_not_found(store.sync_upload(&id), &id);
    assert_upload_not_found(store.finish_upload(&id, &digest), &id);
    assert_upload_not_found(store.cancel_upload(&id), &id);
    assert_eq!(store.list_uploads().expect("list"), vec![]);
}

pub fn sync_keeps_the_upload_as_it_is(store: &dyn BlobStore) {
    let id = upload(store, &[b"abc"]);
    store.sync_upload(&id).expect("sync");
    store.sync_upload(&id).expect("sync again");
    assert_eq!(store.upload_size(&id).expect("size"), 3);
    assert_eq!(store.append_upload(&id, 3, b"def").expect("append"), 6);
    store.sync_upload(&id).expect("sync");
    let digest = Digest::sha256(b"abcdef");
    store.finish_upload(&id, &digest).expect("finish");
    assert_eq!(read_all(store, &digest), b"abcdef");
}

pub fn sha512_digests_work_like_sha256(store: &dyn BlobStore) {
    let data = test_bytes(6, 4_321);
    let digest = Digest::compute(DigestAlgorithm::Sha512, &data);
    assert_eq!(digest.hex().len(), 128);
    let id = upload(store, &[&data[..1], &data[1..]]);
    let info = store.finish_upload(&id, &digest).expect("finish sha512");
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(read_all(store, &digest), data);
    // The same bytes under sha256 are a different blob.
    let sha256 = Digest::sha256(&data);
    assert_eq!(store.stat_blob(&sha256).expect("stat"), None);
    store.put_blob(&sha256, &data).expect("put sha256");
    assert_eq!(store.list_blobs().expect("list").len(), 2);
    // A mismatch under sha512 reports the sha512 of what was uploaded.
    let id = upload(store, &[b"abc"]);
    match store.finish_upload(&id, &digest) {
        Err(BlobStoreError::DigestMismatch { actual, .. }) => {
            assert_eq!(actual, Digest::compute(DigestAlgorithm::Sha512, b"abc"));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
}

pub fn uploads_are_independent(store: &dyn BlobStore) {
    let a = store.start_upload().expect("start a");
    let b = store.start_upload().expect("start b");
    assert_ne!(a, b);
    store.append_upload(&a, 0, b"aaaa").expect("append a");
    store.append_upload(&b, 0, b"bb").expect("append b");
    store.append_upload(&a, 4, b"aa").expect("append a");
    assert_eq!(store.upload_size(&a).expect("size a"), 6);
    assert_eq!(store.upload_size(&b).expect("size b"), 2);
    store.cancel_upload(&b).expect("cancel b");
    let digest = Digest::sha256(b"aaaaaa");
    store.finish_upload(&a, &digest).expect("finish a");
    assert_eq!(read_all(store, &digest), b"aaaaaa");
}

pub fn concurrent_uploads_of_one_blob_all_succeed(store: &dyn BlobStore) {
    let data = test_bytes(8, 64 * 1024);
    let digest = Digest::sha256(&data);
    std::thread::scope(|scope| {
        for writer in 0..4 {
            let (data, digest) = (&data, &digest);
            scope.spawn(move || {
                if writer % 2 == 0 {
                    let id = upload(store, &[&data[..1_000], &data[1_000..]]);
                    store.finish_upload(&id, digest).expect("finish");
                } else {
                    store.put_blob(digest, data).expect("put");
                }
            });
        }
    });
    assert_eq!(
        store.list_blobs().expect("list"),
        vec![BlobInfo {
            digest: digest.clone(),
            size: data.len() as u64
        }]
    );
    assert_eq!(read_all(store, &digest), data);
    assert_eq!(store.list_uploads().expect("list uploads"), vec![]);
}

pub fn concurrent_appends_at_one_offset_let_exactly_one_win(store: &dyn BlobStore) {
    let id = upload(store, &[b"start"]);
    let winners: BTreeSet<u8> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u8)
            .map(|writer| {
                let id = &id;
                scope.spawn(move || match store.append_upload(id, 5, &[writer; 10]) {
                    Ok(size) => {
                        assert_eq!(size, 15);
                        Some(writer)
                    }
                    Err(BlobStoreError::RangeMismatch { current }) => {
                        assert_eq!(current, 15);
                        None
                    }
                    Err(err) => panic!("append: {err}"),
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| handle.join().expect("writer"))
            .collect()
    });
    assert_eq!(winners.len(), 1, "exactly one append wins");
    let winner = *winners.first().expect("a winner");
    let mut expected = b"start".to_vec();
    expected.extend([winner; 10]);
    let digest = Digest::sha256(&expected);
    store.finish_upload(&id, &digest).expect("finish");
    assert_eq!(read_all(store, &digest), expected);
}

/// For backends that persist: `open` opens the same store (the previous
/// one has been dropped when it is called). Completed blobs survive, and so
/// do synced uploads, with their size, to be resumed and finished (or
/// rejected on a wrong digest).
pub fn reopen_keeps_completed_blobs_and_uploads(open: &dyn Fn() -> Box<dyn BlobStore>) {
    let blob = test_bytes(9, 100_000);
    let blob_digest = Digest::sha256(&blob);
    let resumed = test_bytes(10, 50_000);
    let resumed_digest = Digest::sha256(&resumed);
    let sha512_data = test_bytes(11, 3_000);
    let sha512_digest = Digest::compute(DigestAlgorithm::Sha512, &sha512_data);
    let (resume_id, sha512_id, wrong_id) = {
        let store = open();
        let id = upload(store.as_ref(), &[&blob[..50_000], &blob[50_000..]]);
        store.sync_upload(&id).expect("sync");
        store.finish_upload(&id, &blob_digest).expect("finish");
        store
            .put_blob(&Digest::sha256(b"small"), b"small")
            .expect("put");
        let resume_id = upload(store.as_ref(), &[&resumed[..20_000]]);
        store.sync_upload(&resume_id).expect("sync");
        let sha512_id = upload(store.as_ref(), &[&sha512_data]);
        store.sync_upload(&sha512_id).expect("sync");
        let wrong_id = upload(store.as_ref(), &[b"not what is promised"]);
        store.sync_upload(&wrong_id).expect("sync");
        (resume_id, sha512_id, wrong_id)
    };
    let store = open();
    let mut blobs = store.list_blobs().expect("list");
    blobs.sort_by_key(|blob| blob.size);
    assert_eq!(
        blobs,
        vec![
            BlobInfo {
                digest: Digest::sha256(b"small"),
                size: 5
            },
            BlobInfo {
                digest: blob_digest.clone(),
                size: 100_000
            },
        ]
    );
    assert_eq!(read_all(store.as_ref(), &blob_digest), blob);
    let mut uploads: Vec<(UploadId, u64)> = store
        .list_uploads()
        .expect("list uploads")
        .into_iter()
        .map(|upload| (upload.id, upload.size))
        .collect();
    uploads.sort();
    let mut expected = vec![
        (resume_id.clone(), 20_000),
        (sha512_id.clone(), 3_000),
        (wrong_id.clone(), 20),
    ];
    expected.sort();
    assert_eq!(uploads, expected);

    assert_eq!(store.upload_size(&resume_id).expect("size"), 20_000);
    assert!(matches!(
        store.append_upload(&resume_id, 0, &resumed),
        Err(BlobStoreError::RangeMismatch { current: 20_000 })
    ));
    store
        .append_upload(&resume_id, 20_000, &resumed[20_000..])
        .expect("resume");
    store
        .finish_upload(&resume_id, &resumed_digest)
        .expect("finish resumed");
    assert_eq!(read_all(store.as_ref(), &resumed_digest), resumed);
    store
        .finish_upload(&sha512_id, &sha512_digest)
        .expect("finish sha512");
    assert!(matches!(
        store.finish_upload(&wrong_id, &Digest::sha256(b"promised")),
        Err(BlobStoreError::DigestMismatch { .. })
    ));
    assert_eq!(store.list_uploads().expect("list uploads"), vec![]);
    assert_eq!(store.list_blobs().expect("list").len(), 4);
    drop(store);
    let store = open();
    assert_eq!(store.list_blobs().expect("list").len(), 4);
    assert_eq!(store.list_uploads().expect("list uploads"), vec![]);
}
