//! Garbage collection of registry storage, run periodically by `berth`:
//!
//! 1. A layer record no image of its repository references any more, and
//!    older than [`LAYER_GRACE_MS`] (a push uploads layers before the
//!    manifest that references them), is unlinked.
//! 2. A blob no layer record names is a candidate; a candidate still
//!    unreferenced on the next pass is deleted. The pass in between is the
//!    grace for a blob that was being linked while the first pass listed
//!    the records.
//! 3. Uploads untouched for [`UPLOAD_TTL_MS`] are abandoned, in the store
//!    and in the blob store.
//!
//! Nothing a pushed image references is ever collected: its layers are
//! referenced, so their records stay, so their blobs stay.

use std::collections::{BTreeMap, BTreeSet};

use api::records;
use api::ApiError;
use store::{Compare, Op, RangeRequest, Txn};

use crate::records::{ImageRecord, LayerRecord, UploadRecord, ROOT_PREFIX};
use crate::Ecr;

/// How long an unreferenced layer stays linked to its repository.
pub const LAYER_GRACE_MS: i64 = 60 * 60 * 1000;
/// How long an upload may sit untouched before it is abandoned.
pub const UPLOAD_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CollectionPass {
    pub layers_unlinked: u64,
    pub blobs_deleted: u64,
    pub bytes_freed: u64,
    pub uploads_abandoned: u64,
}

/// Collects across passes (it remembers the last pass's candidates).
#[derive(Debug, Default)]
pub struct GarbageCollector {
    candidates: BTreeSet<String>,
}

/// A key under `/ecr/<region>/<kind>/<repository>:<id>`.
struct Parsed<'a> {
    region: &'a str,
    kind: &'a str,
    repository: &'a str,
}

fn parse_key(key: &str) -> Option<Parsed<'_>> {
    let rest = key.strip_prefix(ROOT_PREFIX)?;
    let (region, rest) = rest.split_once('/')?;
    let (kind, rest) = rest.split_once('/')?;
    let (repository, _) = rest.split_once(':')?;
    Some(Parsed {
        region,
        kind,
        repository,
    })
}

impl GarbageCollector {
    pub async fn collect(&mut self, ecr: &Ecr, now_ms: i64) -> Result<CollectionPass, ApiError> {
        let mut pass = CollectionPass::default();
        let all = ecr.store.range(RangeRequest::prefix(ROOT_PREFIX)).await?;
        // (region, repository) → digests its images reference.
        let mut referenced: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        let mut layers = Vec::new();
        let mut uploads = Vec::new();
        for kv in &all.kvs {
            let Some(key) = parse_key(&kv.key) else {
                continue;
            };
            let scope = (key.region.to_string(), key.repository.to_string());
            match key.kind {
                "images" => {
                    let image: ImageRecord = records::decode(&kv.key, &kv.value)?;
                    let digests = referenced.entry(scope).or_default();
                    digests.extend(image.blobs);
                    digests.insert(image.digest);
                }
                "layers" => {
                    let layer: LayerRecord = records::decode(&kv.key, &kv.value)?;
                    layers.push((scope, kv.key.clone(), kv.mod_revision, layer));
                }
                "uploads" => {
                    let upload: UploadRecord = records::decode(&kv.key, &kv.value)?;
                    uploads.push((kv.key.clone(), kv.mod_revision, upload));
                }
                _ => {}
            }
        }

        let mut live: BTreeSet<String> = BTreeSet::new();
        for (scope, key, mod_revision, layer) in layers {
            let used = referenced
                .get(&scope)
                .is_some_and(|digests| digests.contains(&layer.digest));
            if used || now_ms - layer.created_ms < LAYER_GRACE_MS {
                live.insert(layer.digest);
                continue;
            }
            let txn = Txn::new()
                .when(Compare::mod_revision_is(&key, mod_revision))
                .then(Op::delete(&key));
            if ecr.store.txn(txn).await?.succeeded {
                pass.layers_unlinked += 1;
            } else {
                // Changed under us (linked again): keep it this time.
                live.insert(layer.digest);
            }
        }

        let blobs = ecr
            .with_blobs(|blobs| blobs.list_blobs())
            .await
            .map_err(|err| err.into_api("-"))?;
        let mut candidates = BTreeSet::new();
        for blob in blobs {
            let digest = blob.digest.to_string();
            if live.contains(&digest) {
                continue;
            }
            if self.candidates.contains(&digest) {
                let to_delete = blob.digest.clone();
                let deleted = ecr
                    .with_blobs(move |blobs| blobs.delete_blob(&to_delete))
                    .await
                    .map_err(|err| err.into_api("-"))?;
                if deleted {
                    pass.blobs_deleted += 1;
                    pass.bytes_freed += blob.size;
                }
            } else {
                candidates.insert(digest);
            }
        }
        self.candidates = candidates;

        let recorded: BTreeSet<String> = uploads
            .iter()
            .map(|(_, _, u)| u.upload_id.clone())
            .collect();
        for (key, mod_revision, upload) in uploads {
            if now_ms - upload.created_ms < UPLOAD_TTL_MS {
                continue;
            }
            let txn = Txn::new()
                .when(Compare::mod_revision_is(&key, mod_revision))
                .then(Op::delete(&key));
            if ecr.store.txn(txn).await?.succeeded {
                pass.uploads_abandoned += 1;
                if let Ok(id) = upload.upload_id.parse::<blob_store::UploadId>() {
                    // Already gone from the blob store is fine.
                    let _ = ecr.with_blobs(move |blobs| blobs.cancel_upload(&id)).await;
                }
            }
        }
        // Uploads the blob store holds without a record (a crash between the
        // two writes) are abandoned once old.
        let staged = ecr
            .with_blobs(|blobs| blobs.list_uploads())
            .await
            .map_err(|err| err.into_api("-"))?;
        for upload in staged {
            if recorded.contains(upload.id.as_str())
                || now_ms - (upload.last_modified_ms as i64) < UPLOAD_TTL_MS
            {
                continue;
            }
            let id = upload.id.clone();
            if ecr
                .with_blobs(move |blobs| blobs.cancel_upload(&id))
                .await
                .is_ok()
            {
                pass.uploads_abandoned += 1;
            }
        }
        Ok(pass)
    }
}
