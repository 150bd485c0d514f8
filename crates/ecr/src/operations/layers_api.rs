//! Layers through the ECR API: BatchCheckLayerAvailability,
//! InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload and
//! GetDownloadUrlForLayer, on the uploads of `layers.rs`; and
//! GetAuthorizationToken, whose passwords `docker login` and the download
//! URLs carry.

use api::{ApiError, RequestContext};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ecr_wire as wire;

use super::{epoch_seconds, validate};
use crate::auth::{self, Grant};
use crate::error;
use crate::layers::{parse_digest, UploadError};
use crate::records::{get_layer, require_repository};
use crate::Ecr;

/// The part size InitiateLayerUpload advises (ECR: 10 MiB).
pub(super) const PART_SIZE_BYTES: i64 = 10 * 1024 * 1024;
/// How long a download URL's token is valid.
pub(super) const DOWNLOAD_URL_LIFETIME_MS: i64 = 60 * 60 * 1000;

impl Ecr {
    /// A password for the caller's access key, valid for `lifetime_ms`.
    fn password_for_caller(
        &self,
        ctx: &RequestContext,
        lifetime_ms: i64,
    ) -> Result<(String, i64), ApiError> {
        let secret = self
            .access_keys
            .secret_for(&ctx.access_key_id)
            .ok_or_else(|| {
                error::server(format!(
                    "the access key '{}' the request was signed with is not an active key of this server",
                    ctx.access_key_id
                ))
            })?;
        let expires_ms = ctx.now_ms + lifetime_ms;
        let grant = Grant {
            access_key_id: ctx.access_key_id.clone(),
            region: ctx.region.clone(),
            account_id: ctx.account_id.clone(),
            expires_ms,
        };
        Ok((auth::issue_password(&grant, &secret), expires_ms))
    }

    pub(crate) async fn batch_check_layer_availability(
        &self,
        ctx: &RequestContext,
        request: wire::BatchCheckLayerAvailabilityRequest,
    ) -> Result<wire::BatchCheckLayerAvailabilityResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let digests = validate::required("layerDigests", request.layer_digests.as_deref())?;
        validate::count("layerDigests", digests.len(), 1, 100)?;
        require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
        let mut layers = Vec::new();
        let mut failures = Vec::new();
        for digest in digests {
            let failure = |code, reason: &str| wire::LayerFailure {
                layer_digest: Some(digest.clone()),
                failure_code: Some(code),
                failure_reason: Some(reason.to_string()),
            };
            let Ok(parsed) = parse_digest(digest) else {
                failures.push(failure(
                    wire::LayerFailureCode::InvalidLayerDigest,
                    "Invalid layer digest",
                ));
                continue;
            };
            let Some(layer) = get_layer(&*self.store, &ctx.region, name, digest).await? else {
                failures.push(failure(
                    wire::LayerFailureCode::MissingLayerDigest,
                    "Could not find layer",
                ));
                continue;
            };
            // A record whose bytes are gone (collected, or lost) is not
            // available for pulls.
            let stored = self
                .with_blobs(move |blobs| blobs.stat_blob(&parsed))
                .await
                .map_err(|err| err.into_api("-"))?;
            layers.push(wire::Layer {
                layer_digest: Some(layer.value.digest),
                layer_availability: Some(if stored.is_some() {
                    wire::LayerAvailability::Available
                } else {
                    wire::LayerAvailability::Unavailable
                }),
                layer_size: Some(layer.value.size_bytes as i64),
                media_type: None,
            });
        }
        Ok(wire::BatchCheckLayerAvailabilityResponse {
            layers: Some(layers),
            failures: Some(failures),
        })
    }

    pub(crate) async fn initiate_layer_upload(
        &self,
        ctx: &RequestContext,
        request: wire::InitiateLayerUploadRequest,
    ) -> Result<wire::InitiateLayerUploadResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let upload_id = self
            .start_upload(ctx, name)
            .await
            .map_err(|err| err.into_api("-"))?;
        Ok(wire::InitiateLayerUploadResponse {
            upload_id: Some(upload_id),
            part_size: Some(PART_SIZE_BYTES),
        })
    }

    pub(crate) async fn upload_layer_part(
        &self,
        ctx: &RequestContext,
        request: wire::UploadLayerPartRequest,
    ) -> Result<wire::UploadLayerPartResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let upload_id = validate::upload_id(request.upload_id.as_deref())?;
        let first = validate::required("partFirstByte", request.part_first_byte)?;
        let last = validate::required("partLastByte", request.part_last_byte)?;
        let blob = validate::required("layerPartBlob", request.layer_part_blob.as_deref())?;
        for (member, value) in [("partFirstByte", first), ("partLastByte", last)] {
            if value < 0 {
                return Err(error::invalid_parameter_at(
                    member,
                    "must have value greater than or equal to 0",
                ));
            }
        }
        let data = STANDARD.decode(blob).map_err(|err| {
            ApiError::serialization(format!("layerPartBlob is not valid base64: {err}"))
        })?;
        if data.len() > 20 * 1024 * 1024 {
            return Err(error::invalid_parameter_at(
                "layerPartBlob",
                "must have length less than or equal to 20971520",
            ));
        }
        let part_length = last - first + 1;
        if last < first || part_length != data.len() as i64 {
            return Err(error::invalid_layer_part(format!(
                "The part from byte {first} to byte {last} of upload '{upload_id}' is {part_length} bytes long, but layerPartBlob holds {} bytes",
                data.len()
            )));
        }
        let size = self
            .append_upload(ctx, name, upload_id, Some(first as u64), data)
            .await
            .map_err(|err| err.into_api(upload_id))?;
        Ok(wire::UploadLayerPartResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            upload_id: Some(upload_id.to_string()),
            last_byte_received: Some(size as i64 - 1),
        })
    }

    pub(crate) async fn complete_layer_upload(
        &self,
        ctx: &RequestContext,
        request: wire::CompleteLayerUploadRequest,
    ) -> Result<wire::CompleteLayerUploadResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let upload_id = validate::upload_id(request.upload_id.as_deref())?;
        let digests = validate::required("layerDigests", request.layer_digests.as_deref())?;
        validate::count("layerDigests", digests.len(), 1, 100)?;
        for digest in digests {
            if !validate::is_layer_digest(digest) {
                return Err(error::invalid_parameter_at(
                    "layerDigests",
                    "must satisfy regular expression '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
                ));
            }
        }
        if digests.len() > 1 {
            return Err(error::invalid_parameter_at(
                "layerDigests",
                "Berth verifies one digest per upload; pass the layer's digest alone",
            ));
        }
        let digest = &digests[0];
        let size = self
            .upload_size(ctx, name, upload_id)
            .await
            .map_err(|err| err.into_api(upload_id))?;
        if size == 0 {
            return Err(error::upload_has_no_parts(upload_id, name, &ctx.account_id));
        }
        if get_layer(&*self.store, &ctx.region, name, digest)
            .await?
            .is_some()
        {
            // The upload is of no use: its bytes are already there.
            self.cancel_upload(ctx, name, upload_id)
                .await
                .map_err(|err| err.into_api(upload_id))?;
            return Err(error::layer_already_exists(digest, name, &ctx.account_id));
        }
        let layer = self
            .finish_upload(ctx, name, upload_id, digest)
            .await
            .map_err(|err| match err {
                UploadError::BadDigest(_) => error::invalid_layer(format!(
                    "Berth cannot verify the digest '{digest}'; use a sha256 or sha512 digest"
                )),
                other => other.into_api(upload_id),
            })?;
        Ok(wire::CompleteLayerUploadResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            upload_id: Some(upload_id.to_string()),
            layer_digest: Some(layer.digest),
        })
    }

    pub(crate) async fn get_download_url_for_layer(
        &self,
        ctx: &RequestContext,
        request: wire::GetDownloadUrlForLayerRequest,
    ) -> Result<wire::GetDownloadUrlForLayerResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let digest = validate::required("layerDigest", request.layer_digest.as_deref())?;
        if !validate::is_layer_digest(digest) {
            return Err(error::invalid_parameter_at(
                "layerDigest",
                "must satisfy regular expression '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
            ));
        }
        require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
        if get_layer(&*self.store, &ctx.region, name, digest)
            .await?
            .is_none()
        {
            return Err(error::layer_not_found(digest, name, &ctx.account_id));
        }
        let (password, _) = self.password_for_caller(ctx, DOWNLOAD_URL_LIFETIME_MS)?;
        Ok(wire::GetDownloadUrlForLayerResponse {
            download_url: Some(format!(
                "http://{}/v2/{name}/blobs/{digest}?token={password}",
                self.registry_address()
            )),
            layer_digest: Some(digest.to_string()),
        })
    }

    pub(crate) fn get_authorization_token(
        &self,
        ctx: &RequestContext,
        request: wire::GetAuthorizationTokenRequest,
    ) -> Result<wire::GetAuthorizationTokenResponse, ApiError> {
        if let Some(ids) = &request.registry_ids {
            validate::count("registryIds", ids.len(), 1, 10)?;
            for id in ids {
                if *id != ctx.account_id {
                    return Err(error::invalid_parameter_at(
                        "registryIds",
                        format!(
                            "Berth serves only the registry of account '{}', not '{id}'",
                            ctx.account_id
                        ),
                    ));
                }
            }
        }
        let (password, expires_ms) = self.password_for_caller(ctx, auth::TOKEN_LIFETIME_MS)?;
        Ok(wire::GetAuthorizationTokenResponse {
            authorization_data: Some(vec![wire::AuthorizationData {
                authorization_token: Some(auth::authorization_token(&password)),
                expires_at: Some(epoch_seconds(expires_ms)),
                proxy_endpoint: Some(format!("http://{}", self.registry_address())),
            }]),
        })
    }
}
