//! ECR's errors, in AWS's words. Every error is an [`api::ApiError`]; this
//! module is the one place the codes are spelled.

use api::ApiError;

pub(crate) fn repository_not_found(name: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "RepositoryNotFoundException",
        format!(
            "The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
        ),
    )
}

pub(crate) fn repository_exists(name: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "RepositoryAlreadyExistsException",
        format!(
            "The repository with name '{name}' already exists in the registry with id '{registry_id}'"
        ),
    )
}

pub(crate) fn repository_not_empty(name: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "RepositoryNotEmptyException",
        format!(
            "The repository with name '{name}' in registry with id '{registry_id}' cannot be deleted because it still contains images"
        ),
    )
}

pub(crate) fn tag_immutable(tag: &str, repository: &str) -> ApiError {
    ApiError::client(
        "ImageTagAlreadyExistsException",
        format!(
            "The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten because the tag is immutable."
        ),
    )
}

pub(crate) fn image_already_exists(
    digest: &str,
    tag: Option<&str>,
    repository: &str,
    registry_id: &str,
) -> ApiError {
    let tag = tag
        .map(|tag| format!(" and tag '{tag}'"))
        .unwrap_or_default();
    ApiError::client(
        "ImageAlreadyExistsException",
        format!(
            "Image with digest '{digest}'{tag} already exists in the repository with name '{repository}' in registry with id '{registry_id}'"
        ),
    )
}

pub(crate) fn image_not_found(image: &str, repository: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "ImageNotFoundException",
        format!(
            "The image with imageId {image} does not exist within the repository with name '{repository}' in the registry with id '{registry_id}'"
        ),
    )
}

pub(crate) fn layers_not_found(
    digests: &[String],
    repository: &str,
    registry_id: &str,
) -> ApiError {
    ApiError::client(
        "LayersNotFoundException",
        format!(
            "Layers with digests '[{}]' required for pushing image into repository with name '{repository}' in the registry with id '{registry_id}' do not exist",
            digests.join(", ")
        ),
    )
}

pub(crate) fn referenced_images_not_found(digests: &[String], repository: &str) -> ApiError {
    ApiError::client(
        "ReferencedImagesNotFoundException",
        format!(
            "Manifests with digests '[{}]' referenced by the image index do not exist in the repository with name '{repository}'",
            digests.join(", ")
        ),
    )
}

pub(crate) fn upload_not_found(upload_id: &str, repository: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "UploadNotFoundException",
        format!(
            "Upload with id '{upload_id}' does not exist in the repository with name '{repository}' in the registry with id '{registry_id}'"
        ),
    )
}

pub(crate) fn invalid_layer(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidLayerException", message)
}

pub(crate) fn invalid_layer_part(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidLayerPartException", message)
}

pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_parameter(message)
}

pub(crate) fn from_blob_store(err: blob_store::BlobStoreError) -> ApiError {
    server(err.to_string())
}

/// A fault of Berth's, not the caller's (500).
pub(crate) fn server(message: impl Into<String>) -> ApiError {
    ApiError {
        code: "ServerException",
        message: message.into(),
        http_status: 500,
        members: Default::default(),
        query_code: None,
    }
}

// Constructors of the ECR API operations (`operations/`).

/// `Invalid parameter at '<member>' failed to satisfy constraint: '<constraint>'`,
/// as ECR words its parameter checks.
pub(crate) fn invalid_parameter_at(member: &str, constraint: impl std::fmt::Display) -> ApiError {
    invalid(format!(
        "Invalid parameter at '{member}' failed to satisfy constraint: '{constraint}'"
    ))
}

pub(crate) fn lifecycle_policy_not_found(name: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "LifecyclePolicyNotFoundException",
        format!(
            "Lifecycle policy does not exist for the repository with name '{name}' in the registry with id '{registry_id}'"
        ),
    )
}

pub(crate) fn lifecycle_policy_preview_not_found(name: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "LifecyclePolicyPreviewNotFoundException",
        format!(
            "Lifecycle policy preview does not exist for the repository with name '{name}' in the registry with id '{registry_id}'"
        ),
    )
}

pub(crate) fn repository_policy_not_found(name: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "RepositoryPolicyNotFoundException",
        format!(
            "Repository policy does not exist for the repository with name '{name}' in the registry with id '{registry_id}'"
        ),
    )
}

pub(crate) fn registry_policy_not_found(registry_id: &str) -> ApiError {
    ApiError::client(
        "RegistryPolicyNotFoundException",
        format!("Registry policy does not exist in the registry with id '{registry_id}'"),
    )
}

pub(crate) fn layer_already_exists(digest: &str, repository: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "LayerAlreadyExistsException",
        format!(
            "The layer with digest '{digest}' already exists in the repository with name '{repository}' in registry with id '{registry_id}'"
        ),
    )
}

/// GetDownloadUrlForLayer's LayersNotFoundException.
pub(crate) fn layer_not_found(digest: &str, repository: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "LayersNotFoundException",
        format!(
            "The layer with digest '{digest}' does not exist within the repository with name '{repository}' in the registry with id '{registry_id}'"
        ),
    )
}

/// EmptyUploadException as CompleteLayerUpload words it.
pub(crate) fn upload_has_no_parts(
    upload_id: &str,
    repository: &str,
    registry_id: &str,
) -> ApiError {
    ApiError::client(
        "EmptyUploadException",
        format!(
            "The upload with id '{upload_id}' in the repository with name '{repository}' in registry with id '{registry_id}' cannot be completed because it does not have any parts"
        ),
    )
}

pub(crate) fn image_digest_does_not_match(given: &str, actual: &str) -> ApiError {
    ApiError::client(
        "ImageDigestDoesNotMatchException",
        format!(
            "The provided image digest '{given}' does not match the digest '{actual}' calculated for the image manifest"
        ),
    )
}

pub(crate) fn invalid_tag_parameter(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidTagParameterException", message)
}

pub(crate) fn too_many_tags(message: impl Into<String>) -> ApiError {
    ApiError::client("TooManyTagsException", message)
}
