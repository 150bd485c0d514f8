//! Random sequences of operations agree with a model (a map of blobs and a
//! list of uploads), on both backends; the disk backend is also reopened at
//! random points.

use std::collections::BTreeMap;

use blob_store::fs::FsBlobStore;
use blob_store::{BlobInfo, BlobStore, BlobStoreError, Digest, MemoryBlobStore, UploadId};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Start,
    /// Append to upload `upload % live`, at the right offset or off by
    /// `skew`.
    Append {
        upload: usize,
        skew: i8,
        data: Vec<u8>,
    },
    Sync {
        upload: usize,
    },
    /// Finish against the right digest, or a wrong one.
    Finish {
        upload: usize,
        right: bool,
    },
    Cancel {
        upload: usize,
    },
    Put {
        data: Vec<u8>,
        right: bool,
    },
    Read {
        blob: usize,
        offset: u16,
        max_len: u16,
    },
    Delete {
        blob: usize,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let data = prop::collection::vec(prop::sample::select(vec![0u8, 1, 2]), 0..40);
    prop_oneof![
        2 => Just(Op::Start),
        6 => (any::<usize>(), prop_oneof![4 => Just(0i8), 1 => -3i8..3], data.clone())
            .prop_map(|(upload, skew, data)| Op::Append { upload, skew, data }),
        1 => any::<usize>().prop_map(|upload| Op::Sync { upload }),
        3 => (any::<usize>(), prop::bool::weighted(0.8))
            .prop_map(|(upload, right)| Op::Finish { upload, right }),
        1 => any::<usize>().prop_map(|upload| Op::Cancel { upload }),
        2 => (data, prop::bool::weighted(0.8)).prop_map(|(data, right)| Op::Put { data, right }),
        2 => (any::<usize>(), 0u16..60, 0u16..60)
            .prop_map(|(blob, offset, max_len)| Op::Read { blob, offset, max_len }),
        1 => any::<usize>().prop_map(|blob| Op::Delete { blob }),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Default)]
struct Model {
    blobs: BTreeMap<Digest, Vec<u8>>,
    uploads: Vec<(UploadId, Vec<u8>)>,
}

/// Runs `ops` against the store from `open` (called again on `Reopen`
/// when `reopens`), checking every answer against the model.
fn run(ops: &[Op], reopens: bool, open: &dyn Fn() -> Box<dyn BlobStore>) {
    let mut store = open();
    let mut model = Model::default();
    let wrong = Digest::sha256(b"never uploaded");
    for op in ops {
        match op {
            Op::Start => {
                let id = store.start_upload().expect("start");
                model.uploads.push((id, Vec::new()));
            }
            Op::Append { upload, skew, data } => {
                if model.uploads.is_empty() {
                    continue;
                }
                let live = model.uploads.len();
                let (id, bytes) = &mut model.uploads[upload % live];
                let current = bytes.len() as u64;
                let offset = current.saturating_add_signed(i64::from(*skew));
                match store.append_upload(id, offset, data) {
                    Ok(size) => {
                        assert_eq!(offset, current);
                        bytes.extend_from_slice(data);
                        assert_eq!(size, bytes.len() as u64);
                    }
                    Err(BlobStoreError::RangeMismatch { current: reported }) => {
                        assert_ne!(offset, current);
                        assert_eq!(reported, current);
                    }
                    Err(err) => panic!("append: {err}"),
                }
            }
            Op::Sync { upload } => {
                if model.uploads.is_empty() {
                    continue;
                }
                let (id, _) = &model.uploads[upload % model.uploads.len()];
                store.sync_upload(id).expect("sync");
            }
            Op::Finish { upload, right } => {
                if model.uploads.is_empty() {
                    continue;
                }
                let (id, bytes) = model.uploads.remove(upload % model.uploads.len());
                let digest = Digest::sha256(&bytes);
                if *right {
                    let info = store.finish_upload(&id, &digest).expect("finish");
                    assert_eq!(info.size, bytes.len() as u64);
                    model.blobs.insert(digest, bytes);
                } else {
                    assert!(matches!(
                        store.finish_upload(&id, &wrong),
                        Err(BlobStoreError::DigestMismatch { actual, .. }) if actual == digest
                    ));
                }
            }
            Op::Cancel { upload } => {
                if model.uploads.is_empty() {
                    continue;
                }
                let (id, _) = model.uploads.remove(upload % model.uploads.len());
                store.cancel_upload(&id).expect("cancel");
                assert!(matches!(
                    store.upload_size(&id),
                    Err(BlobStoreError::UploadNotFound(_))
                ));
            }
            Op::Put { data, right } => {
                let digest = Digest::sha256(data);
                if *right {
                    store.put_blob(&digest, data).expect("put");
                    model.blobs.insert(digest, data.clone());
                } else {
                    assert!(matches!(
                        store.put_blob(&wrong, data),
                        Err(BlobStoreError::DigestMismatch { .. })
                    ));
                }
            }
            Op::Read {
                blob,
                offset,
                max_len,
            } => {
                let Some((digest, bytes)) = model.blobs.iter().nth(blob % model.blobs.len().max(1))
                else {
                    continue;
                };
                let start = (*offset as usize).min(bytes.len());
                let end = (start + *max_len as usize).min(bytes.len());
                let read = store
                    .read_blob(digest, u64::from(*offset), usize::from(*max_len))
                    .expect("read");
                assert_eq!(read, bytes[start..end]);
            }
            Op::Delete { blob } => {
                let Some(digest) = model
                    .blobs
                    .keys()
                    .nth(blob % model.blobs.len().max(1))
                    .cloned()
                else {
                    continue;
                };
                assert!(store.delete_blob(&digest).expect("delete"));
                model.blobs.remove(&digest);
                assert!(!store.delete_blob(&digest).expect("delete again"));
            }
            Op::Reopen => {
                if reopens {
                    drop(store);
                    store = open();
                }
            }
        }
        // Every step: the lists are the model's.
        let blobs: Vec<BlobInfo> = model
            .blobs
            .iter()
            .map(|(digest, bytes)| BlobInfo {
                digest: digest.clone(),
                size: bytes.len() as u64,
            })
            .collect();
        assert_eq!(store.list_blobs().expect("list blobs"), blobs);
        let mut uploads: Vec<(UploadId, u64)> = model
            .uploads
            .iter()
            .map(|(id, bytes)| (id.clone(), bytes.len() as u64))
            .collect();
        uploads.sort();
        let listed: Vec<(UploadId, u64)> = store
            .list_uploads()
            .expect("list uploads")
            .into_iter()
            .map(|upload| (upload.id, upload.size))
            .collect();
        assert_eq!(listed, uploads);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn memory_agrees_with_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let store = std::sync::Arc::new(MemoryBlobStore::new());
        // "Reopening" the fake hands back the same store.
        run(&ops, false, &|| Box::new(Shared(store.clone())));
    }
}

proptest! {
    // Every finish and put fsyncs: fewer, shorter cases.
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn fs_agrees_with_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().expect("temporary directory");
        run(&ops, true, &|| Box::new(FsBlobStore::open(dir.path()).expect("open the store")));
    }
}

/// A shared fake behind the trait.
struct Shared(std::sync::Arc<MemoryBlobStore>);

impl BlobStore for Shared {
    fn start_upload(&self) -> Result<UploadId, BlobStoreError> {
        self.0.start_upload()
    }
    fn append_upload(
        &self,
        id: &UploadId,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, BlobStoreError> {
        self.0.append_upload(id, offset, data)
    }
    fn sync_upload(&self, id: &UploadId) -> Result<(), BlobStoreError> {
        self.0.sync_upload(id)
    }
    fn upload_size(&self, id: &UploadId) -> Result<u64, BlobStoreError> {
        self.0.upload_size(id)
    }
    fn finish_upload(&self, id: &UploadId, expected: &Digest) -> Result<BlobInfo, BlobStoreError> {
        self.0.finish_upload(id, expected)
    }
    fn cancel_upload(&self, id: &UploadId) -> Result<(), BlobStoreError> {
        self.0.cancel_upload(id)
    }
    fn put_blob(&self, expected: &Digest, data: &[u8]) -> Result<BlobInfo, BlobStoreError> {
        self.0.put_blob(expected, data)
    }
    fn stat_blob(&self, digest: &Digest) -> Result<Option<BlobInfo>, BlobStoreError> {
        self.0.stat_blob(digest)
    }
    fn read_blob(
        &self,
        digest: &Digest,
        offset: u64,
        max_len: usize,
    ) -> Result<Vec<u8>, BlobStoreError> {
        self.0.read_blob(digest, offset, max_len)
    }
    fn delete_blob(&self, digest: &Digest) -> Result<bool, BlobStoreError> {
        self.0.delete_blob(digest)
    }
    fn list_blobs(&self) -> Result<Vec<BlobInfo>, BlobStoreError> {
        self.0.list_blobs()
    }
    fn list_uploads(&self) -> Result<Vec<blob_store::UploadInfo>, BlobStoreError> {
        self.0.list_uploads()
    }
}
