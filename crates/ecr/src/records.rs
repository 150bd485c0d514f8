//! What ECR keeps in the orchestration store, under `/ecr/<region>/…`
//! (the bytes of layers and configs are in the [`blob_store::BlobStore`]).
//!
//! Keys (a repository name never contains `:`, so one repository's keys
//! never share a prefix with another's):
//! - `repositories/<name>`: the repository and its settings and policies;
//! - `images/<name>:<digest>`: one image (manifest bytes, media type, pushed
//!   and pulled times, tags, the blobs and child manifests it references);
//! - `tags/<name>:<tag>`: the digest a tag points at;
//! - `layers/<name>:<digest>`: a blob made available in the repository (by
//!   an upload or a cross-repository mount);
//! - `uploads/<name>:<upload id>`: an upload in progress.
//!
//! An image's tag list and its tag records change in the same transaction.

use std::collections::BTreeMap;

use api::records::{self, Versioned};
use api::ApiError;
use serde::{Deserialize, Serialize};
use store::Store;

/// Every region's records start with this.
pub(crate) const ROOT_PREFIX: &str = "/ecr/";

pub(crate) fn repositories_prefix(region: &str) -> String {
    format!("/ecr/{region}/repositories/")
}
pub(crate) fn repository_key(region: &str, name: &str) -> String {
    format!("{}{name}", repositories_prefix(region))
}
pub(crate) fn images_prefix(region: &str, repository: &str) -> String {
    format!("/ecr/{region}/images/{repository}:")
}
pub(crate) fn image_key(region: &str, repository: &str, digest: &str) -> String {
    format!("{}{digest}", images_prefix(region, repository))
}
pub(crate) fn tags_prefix(region: &str, repository: &str) -> String {
    format!("/ecr/{region}/tags/{repository}:")
}
pub(crate) fn tag_key(region: &str, repository: &str, tag: &str) -> String {
    format!("{}{tag}", tags_prefix(region, repository))
}
pub(crate) fn layers_prefix(region: &str, repository: &str) -> String {
    format!("/ecr/{region}/layers/{repository}:")
}
pub(crate) fn layer_key(region: &str, repository: &str, digest: &str) -> String {
    format!("{}{digest}", layers_prefix(region, repository))
}
pub(crate) fn uploads_prefix(region: &str, repository: &str) -> String {
    format!("/ecr/{region}/uploads/{repository}:")
}
pub(crate) fn upload_key(region: &str, repository: &str, upload_id: &str) -> String {
    format!("{}{upload_id}", uploads_prefix(region, repository))
}

pub(crate) type Tags = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RepositoryRecord {
    pub name: String,
    pub created_ms: i64,
    /// `MUTABLE`, `IMMUTABLE`, `MUTABLE_WITH_EXCLUSION` or
    /// `IMMUTABLE_WITH_EXCLUSION`.
    pub image_tag_mutability: String,
    /// The wire shapes, returned member for member.
    #[serde(default)]
    pub image_tag_mutability_exclusion_filters: Vec<ecr_wire::ImageTagMutabilityExclusionFilter>,
    #[serde(default)]
    pub image_scanning_configuration: Option<ecr_wire::ImageScanningConfiguration>,
    #[serde(default)]
    pub encryption_configuration: Option<ecr_wire::EncryptionConfiguration>,
    #[serde(default)]
    pub tags: Tags,
    /// The lifecycle policy document as the user gave it.
    #[serde(default)]
    pub lifecycle_policy: Option<String>,
    #[serde(default)]
    pub lifecycle_policy_updated_ms: Option<i64>,
    /// The repository policy document as the user gave it.
    #[serde(default)]
    pub repository_policy: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    /// `sha256:<hex>` of `manifest`'s bytes.
    pub digest: String,
    /// The manifest exactly as pushed (its digest is over these bytes).
    pub manifest: String,
    /// `application/vnd.docker.distribution.manifest.v2+json`,
    /// `application/vnd.oci.image.manifest.v1+json`, an index or list, …
    pub media_type: String,
    /// The config's media type (`artifactMediaType`), or `artifactType`.
    #[serde(default)]
    pub artifact_media_type: Option<String>,
    /// The manifest's layers plus its config, in bytes (DescribeImages'
    /// `imageSizeInBytes`); for an index, the sum of its children's sizes.
    pub size_bytes: i64,
    pub pushed_ms: i64,
    #[serde(default)]
    pub last_pull_ms: Option<i64>,
    /// Tags pointing at this image, in the order they were added.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Digests of the blobs (config and layers) this manifest references.
    #[serde(default)]
    pub blobs: Vec<String>,
    /// Digests of the manifests an index references.
    #[serde(default)]
    pub manifests: Vec<String>,
    /// The manifest's `subject` (referrers API).
    #[serde(default)]
    pub subject: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TagRecord {
    pub digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    pub digest: String,
    pub size_bytes: u64,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadRecord {
    pub upload_id: String,
    pub created_ms: i64,
}

pub(crate) async fn get_repository(
    store: &dyn Store,
    region: &str,
    name: &str,
) -> Result<Option<Versioned<RepositoryRecord>>, ApiError> {
    records::get(store, &repository_key(region, name)).await
}

/// The repository, or RepositoryNotFoundException as ECR words it.
pub(crate) async fn require_repository(
    store: &dyn Store,
    region: &str,
    registry_id: &str,
    name: &str,
) -> Result<Versioned<RepositoryRecord>, ApiError> {
    get_repository(store, region, name)
        .await?
        .ok_or_else(|| crate::error::repository_not_found(name, registry_id))
}

pub(crate) async fn get_image(
    store: &dyn Store,
    region: &str,
    repository: &str,
    digest: &str,
) -> Result<Option<Versioned<ImageRecord>>, ApiError> {
    records::get(store, &image_key(region, repository, digest)).await
}

pub(crate) async fn get_tag(
    store: &dyn Store,
    region: &str,
    repository: &str,
    tag: &str,
) -> Result<Option<Versioned<TagRecord>>, ApiError> {
    records::get(store, &tag_key(region, repository, tag)).await
}

pub(crate) async fn get_layer(
    store: &dyn Store,
    region: &str,
    repository: &str,
    digest: &str,
) -> Result<Option<Versioned<LayerRecord>>, ApiError> {
    records::get(store, &layer_key(region, repository, digest)).await
}

pub(crate) async fn list_images(
    store: &dyn Store,
    region: &str,
    repository: &str,
) -> Result<Vec<Versioned<ImageRecord>>, ApiError> {
    records::list_versioned(store, &images_prefix(region, repository)).await
}
