//! Blobs in a repository (layers and configs): uploads, monolithic puts and
//! cross-repository mounts, shared by the ECR API (InitiateLayerUpload,
//! UploadLayerPart, CompleteLayerUpload) and the registry (`/blobs/uploads/`).
//!
//! Bytes go to the [`blob_store::BlobStore`], which verifies them against
//! their digest and makes a blob visible only whole; the store records
//! which repository an upload belongs to and which blobs each repository
//! holds (`layers/<name>:<digest>`), which is what makes a blob part of a
//! repository.

use api::records::{self, Versioned};
use api::{ApiError, RequestContext};
use blob_store::{BlobInfo, BlobStore, BlobStoreError, Digest, UploadId};
use store::{Compare, Op, Txn};

use crate::error;
use crate::records::{
    get_layer, layer_key, require_repository, upload_key, LayerRecord, UploadRecord,
};
use crate::Ecr;

/// Why an upload step was refused, for the registry's error codes.
#[derive(Debug)]
pub(crate) enum UploadError {
    /// ECR's error (repository or upload not found, …).
    Api(ApiError),
    /// The bytes do not hash to the digest named.
    DigestMismatch { expected: String, actual: String },
    /// A chunk did not start where the upload ends.
    RangeMismatch { current: u64 },
    /// The digest is not one Berth can verify.
    BadDigest(String),
}

impl From<ApiError> for UploadError {
    fn from(err: ApiError) -> Self {
        UploadError::Api(err)
    }
}

impl UploadError {
    /// As the ECR API reports it.
    pub fn into_api(self, upload_id: &str) -> ApiError {
        match self {
            UploadError::Api(err) => err,
            UploadError::DigestMismatch { expected, actual } => error::invalid_layer(format!(
                "The layer digest calculated for the uploaded layer, '{actual}', does not match the layer digest '{expected}' of upload '{upload_id}'"
            )),
            UploadError::RangeMismatch { current } => error::invalid_layer_part(format!(
                "The part does not start where upload '{upload_id}' ends: the next part must start at byte {current}"
            )),
            UploadError::BadDigest(digest) => error::invalid(format!(
                "Invalid parameter at 'layerDigest' failed to satisfy constraint: 'invalid digest {digest}'"
            )),
        }
    }
}

pub(crate) fn parse_digest(digest: &str) -> Result<Digest, UploadError> {
    digest
        .parse()
        .map_err(|_| UploadError::BadDigest(digest.to_string()))
}

fn from_blob_error(err: BlobStoreError) -> UploadError {
    match err {
        BlobStoreError::RangeMismatch { current } => UploadError::RangeMismatch { current },
        BlobStoreError::DigestMismatch { expected, actual } => UploadError::DigestMismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        },
        other => UploadError::Api(error::from_blob_store(other)),
    }
}

impl Ecr {
    /// Runs `work` on the blob store from a blocking thread (file I/O and
    /// `fsync`).
    pub(crate) async fn with_blobs<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn BlobStore) -> Result<T, BlobStoreError> + Send + 'static,
    ) -> Result<T, UploadError> {
        let blobs = std::sync::Arc::clone(&self.blobs);
        tokio::task::spawn_blocking(move || work(&*blobs))
            .await
            .map_err(|err| {
                UploadError::Api(error::server(format!("blob store task failed: {err}")))
            })?
            .map_err(from_blob_error)
    }

    /// Starts an upload into `repository`; returns its id.
    pub(crate) async fn start_upload(
        &self,
        ctx: &RequestContext,
        repository: &str,
    ) -> Result<String, UploadError> {
        require_repository(&*self.store, &ctx.region, &ctx.account_id, repository).await?;
        let id = self.with_blobs(|blobs| blobs.start_upload()).await?;
        let upload_id = id.as_str().to_string();
        let record = UploadRecord {
            upload_id: upload_id.clone(),
            created_ms: ctx.now_ms,
        };
        records::Write::new()
            .expect(&upload_key(&ctx.region, repository, &upload_id), 0)
            .put(&upload_key(&ctx.region, repository, &upload_id), &record)
            .commit(&*self.store)
            .await?;
        Ok(upload_id)
    }

    /// The upload, if it is one of `repository`'s.
    async fn require_upload(
        &self,
        ctx: &RequestContext,
        repository: &str,
        upload_id: &str,
    ) -> Result<(Versioned<UploadRecord>, UploadId), UploadError> {
        require_repository(&*self.store, &ctx.region, &ctx.account_id, repository).await?;
        let not_found = || error::upload_not_found(upload_id, repository, &ctx.account_id);
        let record = records::get(
            &*self.store,
            &upload_key(&ctx.region, repository, upload_id),
        )
        .await?
        .ok_or_else(not_found)?;
        let id: UploadId = upload_id.parse().map_err(|_| not_found())?;
        Ok((record, id))
    }

    /// The blob store's id of one of `repository`'s uploads.
    pub(crate) async fn open_upload(
        &self,
        ctx: &RequestContext,
        repository: &str,
        upload_id: &str,
    ) -> Result<UploadId, UploadError> {
        Ok(self.require_upload(ctx, repository, upload_id).await?.1)
    }

    /// The bytes an upload holds so far.
    pub(crate) async fn upload_size(
        &self,
        ctx: &RequestContext,
        repository: &str,
        upload_id: &str,
    ) -> Result<u64, UploadError> {
        let (_, id) = self.require_upload(ctx, repository, upload_id).await?;
        self.with_blobs(move |blobs| blobs.upload_size(&id)).await
    }

    /// Appends `data` at `offset` (which must be where the upload ends) and
    /// makes it durable; returns the upload's new size.
    pub(crate) async fn append_upload(
        &self,
        ctx: &RequestContext,
        repository: &str,
        upload_id: &str,
        offset: Option<u64>,
        data: Vec<u8>,
    ) -> Result<u64, UploadError> {
        let (_, id) = self.require_upload(ctx, repository, upload_id).await?;
        self.with_blobs(move |blobs| {
            let offset = match offset {
                Some(offset) => offset,
                None => blobs.upload_size(&id)?,
            };
            let size = blobs.append_upload(&id, offset, &data)?;
            blobs.sync_upload(&id)?;
            Ok(size)
        })
        .await
    }

    /// Verifies the upload against `digest`, makes the blob part of
    /// `repository`, and ends the upload.
    pub(crate) async fn finish_upload(
        &self,
        ctx: &RequestContext,
        repository: &str,
        upload_id: &str,
        digest: &str,
    ) -> Result<LayerRecord, UploadError> {
        let expected = parse_digest(digest)?;
        let (record, id) = self.require_upload(ctx, repository, upload_id).await?;
        let finished = self
            .with_blobs(move |blobs| blobs.finish_upload(&id, &expected))
            .await;
        let upload_key = upload_key(&ctx.region, repository, upload_id);
        let info = match finished {
            Ok(info) => info,
            Err(err) => {
                // The blob store discarded a mismatching upload; so does the
                // record.
                if matches!(err, UploadError::DigestMismatch { .. }) {
                    self.forget_upload(&upload_key, record.mod_revision).await?;
                }
                return Err(err);
            }
        };
        let layer = self.link_layer(ctx, repository, &info).await?;
        self.forget_upload(&upload_key, record.mod_revision).await?;
        Ok(layer)
    }

    async fn forget_upload(&self, key: &str, mod_revision: i64) -> Result<(), ApiError> {
        let txn = Txn::new()
            .when(Compare::mod_revision_is(key, mod_revision))
            .then(Op::delete(key));
        self.store.txn(txn).await?;
        Ok(())
    }

    /// Abandons an upload.
    pub(crate) async fn cancel_upload(
        &self,
        ctx: &RequestContext,
        repository: &str,
        upload_id: &str,
    ) -> Result<(), UploadError> {
        let (record, id) = self.require_upload(ctx, repository, upload_id).await?;
        self.with_blobs(move |blobs| blobs.cancel_upload(&id))
            .await?;
        self.forget_upload(
            &upload_key(&ctx.region, repository, upload_id),
            record.mod_revision,
        )
        .await?;
        Ok(())
    }

    /// Stores a whole blob at once (a registry's monolithic upload).
    pub(crate) async fn put_blob(
        &self,
        ctx: &RequestContext,
        repository: &str,
        digest: &str,
        data: Vec<u8>,
    ) -> Result<LayerRecord, UploadError> {
        let expected = parse_digest(digest)?;
        require_repository(&*self.store, &ctx.region, &ctx.account_id, repository).await?;
        let info = self
            .with_blobs(move |blobs| blobs.put_blob(&expected, &data))
            .await?;
        Ok(self.link_layer(ctx, repository, &info).await?)
    }

    /// Makes a blob `from` holds part of `repository` too, without moving
    /// bytes; `None` if `from` does not hold it.
    pub(crate) async fn mount_blob(
        &self,
        ctx: &RequestContext,
        from: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Option<LayerRecord>, UploadError> {
        let expected = parse_digest(digest)?;
        require_repository(&*self.store, &ctx.region, &ctx.account_id, repository).await?;
        if get_layer(&*self.store, &ctx.region, from, digest)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let Some(info) = self
            .with_blobs(move |blobs| blobs.stat_blob(&expected))
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.link_layer(ctx, repository, &info).await?))
    }

    /// The layer record of a blob in `repository`, created if absent.
    pub(crate) async fn link_layer(
        &self,
        ctx: &RequestContext,
        repository: &str,
        info: &BlobInfo,
    ) -> Result<LayerRecord, ApiError> {
        let digest = info.digest.to_string();
        let key = layer_key(&ctx.region, repository, &digest);
        if let Some(existing) = get_layer(&*self.store, &ctx.region, repository, &digest).await? {
            return Ok(existing.value);
        }
        let layer = LayerRecord {
            digest,
            size_bytes: info.size,
            created_ms: ctx.now_ms,
        };
        // Losing the race means another request linked the same blob.
        records::Write::new()
            .expect(&key, 0)
            .put(&key, &layer)
            .commit(&*self.store)
            .await?;
        Ok(layer)
    }
}
