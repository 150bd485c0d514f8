//! [`MemoryBlobStore`]: the fake.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::{BlobInfo, BlobStore, BlobStoreError, Digest, Hasher, UploadId, UploadInfo};

/// The clock the fake stamps uploads with (milliseconds since the epoch).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Blobs and uploads in memory, behind one mutex. Behaves like the disk
/// backend in everything [`crate::conformance`] checks.
pub struct MemoryBlobStore {
    clock: Clock,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    blobs: BTreeMap<Digest, Arc<Vec<u8>>>,
    uploads: BTreeMap<UploadId, Upload>,
}

struct Upload {
    data: Vec<u8>,
    last_modified_ms: u64,
}

impl Default for MemoryBlobStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBlobStore {
    /// A store stamping uploads with the system clock.
    pub fn new() -> Self {
        #[allow(clippy::disallowed_methods)] // the fake's default clock is the real one
        let clock: Clock = Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_millis() as u64)
                .unwrap_or(0)
        });
        Self::with_clock(clock)
    }

    /// A store stamping uploads with `clock` (for tests of upload expiry).
    pub fn with_clock(clock: Clock) -> Self {
        Self {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("memory blob store lock")
    }
}

fn verify(expected: &Digest, data: &[u8]) -> Result<(), BlobStoreError> {
    let mut hasher = Hasher::new(expected.algorithm());
    hasher.update(data);
    let actual = hasher.finish();
    if &actual == expected {
        Ok(())
    } else {
        Err(BlobStoreError::DigestMismatch {
            expected: expected.clone(),
            actual,
        })
    }
}

impl BlobStore for MemoryBlobStore {
    fn start_upload(&self) -> Result<UploadId, BlobStoreError> {
        let id = UploadId::generate();
        let last_modified_ms = (self.clock)();
        self.state().uploads.insert(
            id.clone(),
            Upload {
                data: Vec::new(),
                last_modified_ms,
            },
        );
        Ok(id)
    }

    fn append_upload(
        &self,
        id: &UploadId,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, BlobStoreError> {
        let now_ms = (self.clock)();
        let mut state = self.state();
        let upload = state
            .uploads
            .get_mut(id)
            .ok_or_else(|| BlobStoreError::UploadNotFound(id.clone()))?;
        let current = upload.data.len() as u64;
        if offset != current {
            return Err(BlobStoreError::RangeMismatch { current });
        }
        upload.data.extend_from_slice(data);
        upload.last_modified_ms = now_ms;
        Ok(upload.data.len() as u64)
    }

    fn sync_upload(&self, id: &UploadId) -> Result<(), BlobStoreError> {
        self.upload_size(id).map(|_| ())
    }

    fn upload_size(&self, id: &UploadId) -> Result<u64, BlobStoreError> {
        self.state()
            .uploads
            .get(id)
            .map(|upload| upload.data.len() as u64)
            .ok_or_else(|| BlobStoreError::UploadNotFound(id.clone()))
    }

    fn finish_upload(&self, id: &UploadId, expected: &Digest) -> Result<BlobInfo, BlobStoreError> {
        let mut state = self.state();
        let upload = state
            .uploads
            .remove(id)
            .ok_or_else(|| BlobStoreError::UploadNotFound(id.clone()))?;
        verify(expected, &upload.data)?;
        let size = upload.data.len() as u64;
        state
            .blobs
            .entry(expected.clone())
            .or_insert_with(|| Arc::new(upload.data));
        Ok(BlobInfo {
            digest: expected.clone(),
            size,
        })
    }

    fn cancel_upload(&self, id: &UploadId) -> Result<(), BlobStoreError> {
        self.state()
            .uploads
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| BlobStoreError::UploadNotFound(id.clone()))
    }

    fn put_blob(&self, expected: &Digest, data: &[u8]) -> Result<BlobInfo, BlobStoreError> {
        verify(expected, data)?;
        self.state()
            .blobs
            .entry(expected.clone())
            .or_insert_with(|| Arc::new(data.to_vec()));
        Ok(BlobInfo {
            digest: expected.clone(),
            size: data.len() as u64,
        })
    }

    fn stat_blob(&self, digest: &Digest) -> Result<Option<BlobInfo>, BlobStoreError> {
        Ok(self.state().blobs.get(digest).map(|data| BlobInfo {
            digest: digest.clone(),
            size: data.len() as u64,
        }))
    }

    fn read_blob(
        &self,
        digest: &Digest,
        offset: u64,
        max_len: usize,
    ) -> Result<Vec<u8>, BlobStoreError> {
        let data = self
            .state()
            .blobs
            .get(digest)
            .cloned()
            .ok_or_else(|| BlobStoreError::BlobNotFound(digest.clone()))?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(max_len).min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn delete_blob(&self, digest: &Digest) -> Result<bool, BlobStoreError> {
        Ok(self.state().blobs.remove(digest).is_some())
    }

    fn list_blobs(&self) -> Result<Vec<BlobInfo>, BlobStoreError> {
        Ok(self
            .state()
            .blobs
            .iter()
            .map(|(digest, data)| BlobInfo {
                digest: digest.clone(),
                size: data.len() as u64,
            })
            .collect())
    }

    fn list_uploads(&self) -> Result<Vec<UploadInfo>, BlobStoreError> {
        Ok(self
            .state()
            .uploads
            .iter()
            .map(|(id, upload)| UploadInfo {
                id: id.clone(),
                size: upload.data.len() as u64,
                last_modified_ms: upload.last_modified_ms,
            })
            .collect())
    }
}
