//! The registry blob seam: where Berth's image registry (ECR) keeps the
//! content-addressed bytes of layers, image configs and manifests.
//!
//! The shape is an object store's, so an S3-compatible backend can replace
//! the filesystem later: a blob is a whole object under its [`Digest`]
//! (written once, visible all at once, read by byte range), and an upload is
//! a staging object that grows by appends at its current end and becomes a
//! blob only when its bytes hash to the digest the client promised.
//!
//! Backends: [`MemoryBlobStore`] (the fake, for fast tests of the registry
//! above) and [`fs::FsBlobStore`] (files on disk). Both pass [`conformance`].
//! [`figures`] measures the disk backend (`examples/figures.rs`).
//!
//! The trait is synchronous: backends do blocking I/O, and callers on an
//! async runtime call it from a blocking thread (`spawn_blocking`).
//!
//! **Architecture Invariant:** a blob is visible only once every one of its
//! bytes has been checked against its digest; no crash, cancelled upload or
//! failed verification ever leaves a visible blob whose bytes do not hash to
//! its name.
//!
//! **Architecture Invariant:** no path is built from unvalidated input: a
//! [`Digest`] can only hold a supported algorithm and lowercase hex of the
//! right length, and an [`UploadId`] only a canonical UUID v4.

pub mod conformance;
pub mod figures;
pub mod fs;
mod memory;

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

pub use memory::MemoryBlobStore;

/// A hash algorithm the registry supports (OCI image spec: sha256, and
/// sha512 as an option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    pub const ALL: [DigestAlgorithm; 2] = [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512];

    /// The name in a digest string (`sha256`), which is also the directory
    /// name in a disk layout.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    /// Length of the encoded (lowercase hex) hash.
    pub fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        DigestAlgorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// A content digest: `sha256:<64 lowercase hex>` or `sha512:<128 lowercase
/// hex>`. Only [`FromStr`] and [`Digest::compute`] make one, so every value
/// is valid (and safe to use in a path).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Digest {
    /// The digest of `data` under `algorithm`.
    pub fn compute(algorithm: DigestAlgorithm, data: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(data);
        hasher.finish()
    }

    /// The sha256 digest of `data` (what Docker and OCI clients use).
    pub fn sha256(data: &[u8]) -> Digest {
        Digest::compute(DigestAlgorithm::Sha256, data)
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The encoded hash: lowercase hex of [`DigestAlgorithm::hex_len`].
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = BlobStoreError;

    /// Parses the OCI grammar (`algorithm ":" encoded`, algorithm
    /// `[a-z0-9]+([+._-][a-z0-9]+)*`), then accepts only sha256 and sha512
    /// with lowercase hex of their length.
    fn from_str(value: &str) -> Result<Digest, BlobStoreError> {
        let invalid = |reason: String| BlobStoreError::InvalidDigest {
            value: value.to_string(),
            reason,
        };
        let Some((algorithm, encoded)) = value.split_once(':') else {
            return Err(invalid(
                "expected <algorithm>:<hex>, e.g. sha256:<64 hex characters>; there is no ':'"
                    .to_string(),
            ));
        };
        if !valid_algorithm_grammar(algorithm) {
            return Err(invalid(format!(
                "algorithm {algorithm:?} is not valid: it must be lowercase letters and digits, \
                 optionally joined by one of + . _ -"
            )));
        }
        let Some(algorithm) = DigestAlgorithm::from_name(algorithm) else {
            return Err(invalid(format!(
                "algorithm {algorithm:?} is not supported; use sha256 (or sha512)"
            )));
        };
        if encoded.len() != algorithm.hex_len() {
            return Err(invalid(format!(
                "a {} digest has {} hex characters, this one has {}",
                algorithm.name(),
                algorithm.hex_len(),
                encoded.len()
            )));
        }
        if let Some(bad) = encoded
            .chars()
            .find(|c| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(invalid(format!(
                "the hash must be lowercase hex (0-9, a-f); found {bad:?}"
            )));
        }
        Ok(Digest {
            algorithm,
            hex: encoded.to_string(),
        })
    }
}

/// `[a-z0-9]+([+._-][a-z0-9]+)*`
fn valid_algorithm_grammar(algorithm: &str) -> bool {
    algorithm.split(['+', '.', '_', '-']).all(|component| {
        !component.is_empty()
            && component
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// An incremental hash under one [`DigestAlgorithm`].
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: DigestAlgorithm) -> Hasher {
        match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(hasher) => hasher.update(data),
            Hasher::Sha512(hasher) => hasher.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(hasher) => (DigestAlgorithm::Sha256, hex::encode(hasher.finalize())),
            Hasher::Sha512(hasher) => (DigestAlgorithm::Sha512, hex::encode(hasher.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// A stored blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// An upload's key: a canonical (lowercase, hyphenated) UUID v4, so it is
/// URL-safe, unguessable and safe as a file name. Backends issue them;
/// [`FromStr`] accepts only that format (the registry parses the id in a
/// client's URL with it).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh random id.
    pub fn generate() -> UploadId {
        UploadId(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UploadId {
    type Err = BlobStoreError;

    fn from_str(value: &str) -> Result<UploadId, BlobStoreError> {
        let canonical = uuid::Uuid::try_parse(value)
            .ok()
            .filter(|id| id.get_version_num() == 4 && id.hyphenated().to_string() == value);
        match canonical {
            Some(_) => Ok(UploadId(value.to_string())),
            None => Err(BlobStoreError::InvalidUploadId(value.to_string())),
        }
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UploadId({})", self.0)
    }
}

/// An upload in progress (for garbage collection of abandoned ones).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    pub id: UploadId,
    pub size: u64,
    /// When it last grew (milliseconds since the Unix epoch).
    pub last_modified_ms: u64,
}

/// What can go wrong. The registry maps these to OCI distribution error
/// codes: `InvalidDigest` → DIGEST_INVALID, `InvalidUploadId` and
/// `UploadNotFound` → BLOB_UPLOAD_UNKNOWN, `RangeMismatch` → 416 with the
/// upload's current range, `DigestMismatch` → DIGEST_INVALID,
/// `BlobNotFound` → BLOB_UNKNOWN, `Io` → 500.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest { value: String, reason: String },
    #[error("invalid upload id {0:?}: not an id this registry issued; start a new upload")]
    InvalidUploadId(String),
    #[error(
        "upload {0} not found: it was finished, cancelled or never started; start a new upload"
    )]
    UploadNotFound(UploadId),
    #[error("the upload holds {current} bytes; append at offset {current}")]
    RangeMismatch { current: u64 },
    #[error("the uploaded bytes hash to {actual}, not the expected {expected}; the upload was discarded, upload the blob again")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    #[error("blob store I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The seam. Listing order is by digest (blobs) and id (uploads), the same
/// in every backend.
pub trait BlobStore: Send + Sync {
    /// Starts an empty upload.
    fn start_upload(&self) -> Result<UploadId, BlobStoreError>;

    /// Appends `data` at `offset`, which must equal the upload's current
    /// size (else [`BlobStoreError::RangeMismatch`] and nothing is written);
    /// returns the new size. Not durable until [`BlobStore::sync_upload`].
    fn append_upload(&self, id: &UploadId, offset: u64, data: &[u8])
        -> Result<u64, BlobStoreError>;

    /// Makes every acknowledged byte of the upload durable.
    fn sync_upload(&self, id: &UploadId) -> Result<(), BlobStoreError>;

    /// The upload's size ([`BlobStoreError::UploadNotFound`] if unknown).
    fn upload_size(&self, id: &UploadId) -> Result<u64, BlobStoreError>;

    /// Verifies every byte against `expected`. On success the blob is
    /// visible, whole and durably, and the upload is gone; if the blob
    /// already existed it is kept (dedup) and the upload discarded. On
    /// mismatch: [`BlobStoreError::DigestMismatch`], and the upload is
    /// discarded.
    fn finish_upload(&self, id: &UploadId, expected: &Digest) -> Result<BlobInfo, BlobStoreError>;

    /// Discards the upload.
    fn cancel_upload(&self, id: &UploadId) -> Result<(), BlobStoreError>;

    /// Monolithic put (small blobs, manifests): verified like
    /// [`BlobStore::finish_upload`] (nothing is written on mismatch),
    /// durable on return.
    fn put_blob(&self, expected: &Digest, data: &[u8]) -> Result<BlobInfo, BlobStoreError>;

    /// The blob's size, or `None`.
    fn stat_blob(&self, digest: &Digest) -> Result<Option<BlobInfo>, BlobStoreError>;

    /// Up to `max_len` bytes from `offset` (empty at or after the end);
    /// [`BlobStoreError::BlobNotFound`] if there is no such blob.
    fn read_blob(
        &self,
        digest: &Digest,
        offset: u64,
        max_len: usize,
    ) -> Result<Vec<u8>, BlobStoreError>;

    /// Removes the blob; false if there was none.
    fn delete_blob(&self, digest: &Digest) -> Result<bool, BlobStoreError>;

    /// Every blob, by digest.
    fn list_blobs(&self) -> Result<Vec<BlobInfo>, BlobStoreError>;

    /// Every upload in progress, by id (including those a crash left).
    fn list_uploads(&self) -> Result<Vec<UploadInfo>, BlobStoreError>;
}

#[cfg(test)]
mod tests;
