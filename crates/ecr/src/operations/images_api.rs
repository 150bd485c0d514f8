//! Images through the ECR API: ListImages, DescribeImages, BatchGetImage,
//! BatchDeleteImage and PutImage, on the core the registry shares
//! (`resolve_image`, `put_manifest`, `delete_reference`).

use api::pagination;
use api::records::Versioned;
use api::{ApiError, RequestContext};
use ecr_wire as wire;

use super::{epoch_seconds, validate};
use crate::error;
use crate::images::{valid_tag, ImageReference, PutChange};
use crate::manifest;
use crate::records::{list_images, require_repository, ImageRecord};
use crate::Ecr;

/// How ECR names an image id in ImageNotFoundException:
/// `{imageDigest:'null', imageTag:'latest'}`.
pub(super) fn image_id_text(digest: Option<&str>, tag: Option<&str>) -> String {
    format!(
        "{{imageDigest:'{}', imageTag:'{}'}}",
        digest.unwrap_or("null"),
        tag.unwrap_or("null")
    )
}

/// Why one image id of a batch failed.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct IdFailure {
    pub code: wire::ImageFailureCode,
    pub reason: &'static str,
}

const NOT_FOUND: IdFailure = IdFailure {
    code: wire::ImageFailureCode::ImageNotFound,
    reason: "Requested image not found",
};

impl IdFailure {
    fn into_wire(self, id: &wire::ImageIdentifier) -> wire::ImageFailure {
        wire::ImageFailure {
            image_id: Some(id.clone()),
            failure_code: Some(self.code),
            failure_reason: Some(self.reason.to_string()),
        }
    }
}

/// Whether an image passes a `tagStatus` filter.
fn passes(filter: Option<wire::TagStatus>, tagged: bool) -> bool {
    match filter {
        Some(wire::TagStatus::Tagged) => tagged,
        Some(wire::TagStatus::Untagged) => !tagged,
        Some(wire::TagStatus::Any) | None => true,
    }
}

impl Ecr {
    /// The image an `imageId` names, or why it names none.
    pub(super) async fn resolve_id(
        &self,
        ctx: &RequestContext,
        repository: &str,
        id: &wire::ImageIdentifier,
    ) -> Result<Result<Versioned<ImageRecord>, IdFailure>, ApiError> {
        let digest = id.image_digest.as_deref();
        let tag = id.image_tag.as_deref();
        if digest.is_none() && tag.is_none() {
            return Ok(Err(IdFailure {
                code: wire::ImageFailureCode::MissingDigestAndTag,
                reason: "Invalid request parameters: both tag and digest cannot be null",
            }));
        }
        if digest.is_some_and(|digest| !manifest::valid_digest(digest)) {
            return Ok(Err(IdFailure {
                code: wire::ImageFailureCode::InvalidImageDigest,
                reason: "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
            }));
        }
        if tag.is_some_and(|tag| !valid_tag(tag)) {
            return Ok(Err(IdFailure {
                code: wire::ImageFailureCode::InvalidImageTag,
                reason: "Invalid request parameters: image tag should satisfy the regex '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'",
            }));
        }
        let reference = match tag {
            Some(tag) => ImageReference::Tag(tag.to_string()),
            None => ImageReference::Digest(digest.unwrap_or_default().to_string()),
        };
        let Some(found) = self.resolve_image(ctx, repository, &reference).await? else {
            return Ok(Err(NOT_FOUND));
        };
        if digest.is_some_and(|digest| digest != found.value.digest) {
            return Ok(Err(IdFailure {
                code: wire::ImageFailureCode::ImageTagDoesNotMatchDigest,
                reason: "Invalid request parameters: the tag does not point to the image with the given digest",
            }));
        }
        Ok(Ok(found))
    }

    fn image_detail(
        &self,
        ctx: &RequestContext,
        repository: &str,
        image: &ImageRecord,
    ) -> wire::ImageDetail {
        wire::ImageDetail {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(repository.to_string()),
            image_digest: Some(image.digest.clone()),
            image_tags: (!image.tags.is_empty()).then(|| image.tags.clone()),
            image_size_in_bytes: Some(image.size_bytes),
            image_pushed_at: Some(epoch_seconds(image.pushed_ms)),
            image_manifest_media_type: Some(image.media_type.clone()),
            artifact_media_type: image.artifact_media_type.clone(),
            last_recorded_pull_time: image.last_pull_ms.map(epoch_seconds),
            subject_manifest_digest: image.subject.clone(),
            ..Default::default()
        }
    }

    pub(crate) async fn list_images_api(
        &self,
        ctx: &RequestContext,
        request: wire::ListImagesRequest,
    ) -> Result<wire::ListImagesResponse, ApiError> {
        const OPERATION: &str = "ListImages";
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let page_size = validate::max_results(request.max_results, 1000)?;
        let after = pagination::decode_token(OPERATION, request.next_token.as_deref())?;
        let filter = request.filter.and_then(|filter| filter.tag_status);
        require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
        // One entry per tag; an untagged image is its digest alone.
        let mut entries: Vec<(String, wire::ImageIdentifier)> = Vec::new();
        for image in list_images(&*self.store, &ctx.region, name).await? {
            let image = image.value;
            if !passes(filter, !image.tags.is_empty()) {
                continue;
            }
            if image.tags.is_empty() {
                entries.push((
                    format!("{}:", image.digest),
                    wire::ImageIdentifier {
                        image_digest: Some(image.digest.clone()),
                        image_tag: None,
                    },
                ));
            }
            for tag in &image.tags {
                entries.push((
                    format!("{}:{tag}", image.digest),
                    wire::ImageIdentifier {
                        image_digest: Some(image.digest.clone()),
                        image_tag: Some(tag.clone()),
                    },
                ));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let (page, next_token) = pagination::paginate(
            OPERATION,
            entries,
            |(key, _)| key.clone(),
            after.as_deref(),
            page_size,
            false,
        );
        Ok(wire::ListImagesResponse {
            image_ids: Some(page.into_iter().map(|(_, id)| id).collect()),
            next_token,
        })
    }

    pub(crate) async fn describe_images(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeImagesRequest,
    ) -> Result<wire::DescribeImagesResponse, ApiError> {
        const OPERATION: &str = "DescribeImages";
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let page_size = validate::max_results(request.max_results, 1000)?;
        let filter = request.filter.and_then(|filter| filter.tag_status);
        require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
        if let Some(ids) = &request.image_ids {
            validate::count("imageIds", ids.len(), 1, 100)?;
            if request.max_results.is_some() || request.next_token.is_some() {
                return Err(error::invalid_parameter_at(
                    "maxResults",
                    "cannot be used together with imageIds",
                ));
            }
            let mut details: Vec<wire::ImageDetail> = Vec::new();
            for id in ids {
                let image = match self.resolve_id(ctx, name, id).await? {
                    Ok(found) => found.value,
                    Err(failure)
                        if matches!(
                            failure.code,
                            wire::ImageFailureCode::InvalidImageDigest
                                | wire::ImageFailureCode::InvalidImageTag
                                | wire::ImageFailureCode::MissingDigestAndTag
                        ) =>
                    {
                        return Err(error::invalid(failure.reason));
                    }
                    Err(_) => {
                        return Err(error::image_not_found(
                            &image_id_text(id.image_digest.as_deref(), id.image_tag.as_deref()),
                            name,
                            &ctx.account_id,
                        ))
                    }
                };
                let duplicate = details
                    .iter()
                    .any(|d| d.image_digest.as_deref() == Some(image.digest.as_str()));
                if !duplicate && passes(filter, !image.tags.is_empty()) {
                    details.push(self.image_detail(ctx, name, &image));
                }
            }
            return Ok(wire::DescribeImagesResponse {
                image_details: Some(details),
                next_token: None,
            });
        }
        let after = pagination::decode_token(OPERATION, request.next_token.as_deref())?;
        let images: Vec<ImageRecord> = list_images(&*self.store, &ctx.region, name)
            .await?
            .into_iter()
            .map(|found| found.value)
            .filter(|image| passes(filter, !image.tags.is_empty()))
            .collect();
        let (page, next_token) = pagination::paginate(
            OPERATION,
            images,
            |image| image.digest.clone(),
            after.as_deref(),
            page_size,
            false,
        );
        Ok(wire::DescribeImagesResponse {
            image_details: Some(
                page.iter()
                    .map(|image| self.image_detail(ctx, name, image))
                    .collect(),
            ),
            next_token,
        })
    }

    pub(crate) async fn batch_get_image(
        &self,
        ctx: &RequestContext,
        request: wire::BatchGetImageRequest,
    ) -> Result<wire::BatchGetImageResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let ids = validate::required("imageIds", request.image_ids.as_deref())?;
        validate::count("imageIds", ids.len(), 1, 100)?;
        if let Some(accepted) = &request.accepted_media_types {
            validate::count("acceptedMediaTypes", accepted.len(), 1, 100)?;
        }
        require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
        let mut images = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            let found = match self.resolve_id(ctx, name, id).await? {
                Ok(found) => found,
                Err(failure) => {
                    failures.push(failure.into_wire(id));
                    continue;
                }
            };
            if let Some(accepted) = &request.accepted_media_types {
                if !accepted.contains(&found.value.media_type) {
                    failures.push(wire::ImageFailure {
                        image_id: Some(id.clone()),
                        failure_code: Some(wire::ImageFailureCode::ImageNotFound),
                        failure_reason: Some(format!(
                            "The image's manifest media type '{}' is not one of acceptedMediaTypes",
                            found.value.media_type
                        )),
                    });
                    continue;
                }
            }
            self.record_pull(ctx, name, &found).await?;
            let image = found.value;
            images.push(wire::Image {
                registry_id: Some(ctx.account_id.clone()),
                repository_name: Some(name.to_string()),
                image_id: Some(wire::ImageIdentifier {
                    image_digest: Some(image.digest.clone()),
                    image_tag: id.image_tag.clone(),
                }),
                image_manifest: Some(image.manifest),
                image_manifest_media_type: Some(image.media_type),
            });
        }
        Ok(wire::BatchGetImageResponse {
            images: Some(images),
            failures: Some(failures),
        })
    }

    pub(crate) async fn batch_delete_image(
        &self,
        ctx: &RequestContext,
        request: wire::BatchDeleteImageRequest,
    ) -> Result<wire::BatchDeleteImageResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let ids = validate::required("imageIds", request.image_ids.as_deref())?;
        validate::count("imageIds", ids.len(), 1, 100)?;
        require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        // The repository's images, listed when an id first needs them and
        // again after each deletion (an index deleted earlier in the request
        // no longer holds its children).
        let mut listed = None;
        for id in ids {
            let image = match self.resolve_id(ctx, name, id).await? {
                Ok(found) => found.value,
                Err(failure) => {
                    failures.push(failure.into_wire(id));
                    continue;
                }
            };
            let reference = match &id.image_tag {
                Some(tag) => ImageReference::Tag(tag.clone()),
                None => ImageReference::Digest(image.digest.clone()),
            };
            let removes_image = match &reference {
                ImageReference::Digest(_) => true,
                ImageReference::Tag(tag) => image.tags.iter().all(|t| t == tag),
            };
            if removes_image {
                if listed.is_none() {
                    listed = Some(list_images(&*self.store, &ctx.region, name).await?);
                }
                let indexes: Vec<String> = listed
                    .iter()
                    .flatten()
                    .filter(|other| other.value.manifests.contains(&image.digest))
                    .map(|other| other.value.digest.clone())
                    .collect();
                if !indexes.is_empty() {
                    failures.push(wire::ImageFailure {
                        image_id: Some(id.clone()),
                        failure_code: Some(wire::ImageFailureCode::ImageReferencedByManifestList),
                        failure_reason: Some(format!(
                            "Requested image referenced by manifest list: [{}]",
                            indexes.join(", ")
                        )),
                    });
                    continue;
                }
            }
            let Some(removed) = self.delete_reference(ctx, name, &reference).await? else {
                failures.push(NOT_FOUND.into_wire(id));
                continue;
            };
            listed = None;
            let identifier = |tag: Option<&String>| wire::ImageIdentifier {
                image_digest: Some(removed.digest.clone()),
                image_tag: tag.cloned(),
            };
            match &reference {
                ImageReference::Tag(tag) => deleted.push(identifier(Some(tag))),
                ImageReference::Digest(_) if removed.tags.is_empty() => {
                    deleted.push(identifier(None))
                }
                ImageReference::Digest(_) => {
                    deleted.extend(removed.tags.iter().map(|tag| identifier(Some(tag))))
                }
            }
        }
        Ok(wire::BatchDeleteImageResponse {
            image_ids: Some(deleted),
            failures: Some(failures),
        })
    }

    pub(crate) async fn put_image(
        &self,
        ctx: &RequestContext,
        request: wire::PutImageRequest,
    ) -> Result<wire::PutImageResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let manifest_text = validate::required("imageManifest", request.image_manifest.as_deref())?;
        validate::length("imageManifest", manifest_text, 1, 4_194_304)?;
        if let Some(tag) = request.image_tag.as_deref() {
            validate::length("imageTag", tag, 1, 300)?;
        }
        let bytes = manifest_text.as_bytes();
        let tag = request.image_tag.as_deref();
        let (image, change) = self
            .put_manifest(
                ctx,
                name,
                bytes,
                request.image_manifest_media_type.as_deref(),
                tag,
                request.image_digest.as_deref(),
            )
            .await?;
        if change == PutChange::Unchanged {
            return Err(error::image_already_exists(
                &image.digest,
                tag,
                name,
                &ctx.account_id,
            ));
        }
        Ok(wire::PutImageResponse {
            image: Some(wire::Image {
                registry_id: Some(ctx.account_id.clone()),
                repository_name: Some(name.to_string()),
                image_id: Some(wire::ImageIdentifier {
                    image_digest: Some(image.digest),
                    image_tag: tag.map(str::to_string),
                }),
                image_manifest: Some(image.manifest),
                image_manifest_media_type: Some(image.media_type),
            }),
        })
    }
}
