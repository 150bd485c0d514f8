//! Figures for the disk backend: a large blob uploaded in appends (with and
//! without incremental hashing), read back in chunks, and many small blobs.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::conformance::test_bytes;
use crate::fs::{FsBlobStore, FsOptions};
use crate::{BlobStore, BlobStoreError, Digest, Hasher};

#[derive(Clone, Copy, Debug)]
pub struct FigureOptions {
    pub large_blob_mib: usize,
    pub append_bytes: usize,
    pub small_blobs: usize,
    pub small_blob_bytes: usize,
}

impl Default for FigureOptions {
    fn default() -> Self {
        Self {
            large_blob_mib: 200,
            append_bytes: 1 << 20,
            small_blobs: 1_000,
            small_blob_bytes: 4_096,
        }
    }
}

/// One large upload under one hashing mode.
#[derive(Clone, Debug, Default)]
pub struct LargeBlob {
    pub incremental_hash: bool,
    /// The appends.
    pub write: Duration,
    /// One `sync_upload` after them.
    pub sync: Duration,
    /// `finish_upload` (verification, fsync, rename).
    pub finish: Duration,
    /// `read_blob` in `append_bytes` chunks (from the page cache).
    pub read: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub options: Option<FigureOptions>,
    pub large: Vec<LargeBlob>,
    /// `put_blob` of `small_blobs` distinct blobs, one after another.
    pub small_puts: Duration,
    /// The same through start/append/finish.
    pub small_uploads: Duration,
    /// sha256 alone over the large blob's bytes in memory, for reference.
    pub hash_only: Duration,
}

fn mb_per_s(bytes: u64, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64().max(1e-9)
}

fn per_s(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64().max(1e-9)
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = self.options.unwrap_or_default();
        let bytes = (options.large_blob_mib as u64) << 20;
        writeln!(
            f,
            "sha256 alone: {:.0} MB/s",
            mb_per_s(bytes, self.hash_only)
        )?;
        for large in &self.large {
            writeln!(
                f,
                "{} MiB blob in {} KiB appends, {}: appends {:.0} MB/s ({:.3} s), \
                 sync {:.3} s, finish {:.0} MB/s ({:.3} s), whole upload {:.0} MB/s, \
                 read {:.0} MB/s",
                options.large_blob_mib,
                options.append_bytes >> 10,
                if large.incremental_hash {
                    "hash per append  "
                } else {
                    "hash at finish   "
                },
                mb_per_s(bytes, large.write),
                large.write.as_secs_f64(),
                large.sync.as_secs_f64(),
                mb_per_s(bytes, large.finish),
                large.finish.as_secs_f64(),
                mb_per_s(bytes, large.write + large.sync + large.finish),
                mb_per_s(bytes, large.read),
            )?;
        }
        writeln!(
            f,
            "{} small blobs of {} bytes: put_blob {:.0} blobs/s, start+append+finish {:.0} blobs/s",
            options.small_blobs,
            options.small_blob_bytes,
            per_s(options.small_blobs, self.small_puts),
            per_s(options.small_blobs, self.small_uploads),
        )
    }
}

/// Runs the figures in `dir` (which should be empty; it is filled and
/// emptied again).
#[allow(clippy::disallowed_methods)] // a benchmark reads the clock
pub fn measure(dir: &Path, options: FigureOptions) -> Result<Figures, BlobStoreError> {
    let mut figures = Figures {
        options: Some(options),
        ..Figures::default()
    };
    let chunks: Vec<Vec<u8>> = (0..16)
        .map(|seed| test_bytes(seed, options.append_bytes))
        .collect();
    let total_bytes = options.large_blob_mib << 20;
    let chunk_count = total_bytes.div_ceil(options.append_bytes);
    let chunk = |k: usize| {
        let len = options
            .append_bytes
            .min(total_bytes - k * options.append_bytes);
        &chunks[k % chunks.len()][..len]
    };

    let started = Instant::now();
    let mut hasher = Hasher::new(crate::DigestAlgorithm::Sha256);
    for k in 0..chunk_count {
        hasher.update(chunk(k));
    }
    let digest = hasher.finish();
    figures.hash_only = started.elapsed();

    // Twice each, alternating, so neither mode profits from going second.
    for incremental_hash in [false, true, false, true] {
        let store = FsBlobStore::open_with_options(dir, FsOptions { incremental_hash })?;
        let mut large = LargeBlob {
            incremental_hash,
            ..LargeBlob::default()
        };
        let started = Instant::now();
        let id = store.start_upload()?;
        let mut offset = 0;
        for k in 0..chunk_count {
            offset = store.append_upload(&id, offset, chunk(k))?;
        }
        large.write = started.elapsed();
        let started = Instant::now();
        store.sync_upload(&id)?;
        large.sync = started.elapsed();
        let started = Instant::now();
        store.finish_upload(&id, &digest)?;
        large.finish = started.elapsed();
        let started = Instant::now();
        let mut offset = 0;
        loop {
            let data = store.read_blob(&digest, offset, options.append_bytes)?;
            if data.is_empty() {
                break;
            }
            offset += data.len() as u64;
        }
        large.read = started.elapsed();
        assert_eq!(offset as usize, total_bytes, "read the whole blob back");
        store.delete_blob(&digest)?;
        figures.large.push(large);
    }

    let store = FsBlobStore::open(dir)?;
    let small: Vec<(Digest, Vec<u8>)> = (0..options.small_blobs * 2)
        .map(|seed| {
            let data = test_bytes(1_000 + seed as u64, options.small_blob_bytes);
            (Digest::sha256(&data), data)
        })
        .collect();
    let (puts, uploads) = small.split_at(options.small_blobs);
    let started = Instant::now();
    for (digest, data) in puts {
        store.put_blob(digest, data)?;
    }
    figures.small_puts = started.elapsed();
    let started = Instant::now();
    for (digest, data) in uploads {
        let id = store.start_upload()?;
        store.append_upload(&id, 0, data)?;
        store.finish_upload(&id, digest)?;
    }
    figures.small_uploads = started.elapsed();
    for (digest, _) in &small {
        store.delete_blob(digest)?;
    }
    Ok(figures)
}
