//! The ECR JSON API (`AmazonEC2ContainerRegistry_V20150921.*`) on top of the
//! core the registry shares (`images.rs`, `layers.rs`, `auth.rs`).
//!
//! Each operation parses its body into `ecr-wire` shapes, checks it in ECR's
//! words (`validate`: "Invalid parameter at '…' failed to satisfy
//! constraint: '…'"), and reads and writes the records of `records.rs` with
//! compare-and-swap.
//!
//! - `repositories.rs`: Create/Describe/DeleteRepository, the repository
//!   settings (tag mutability, scanning), DescribeRegistry.
//! - `images_api.rs`: ListImages, DescribeImages, BatchGetImage,
//!   BatchDeleteImage, PutImage.
//! - `layers_api.rs`: the layer upload operations, GetDownloadUrlForLayer,
//!   GetAuthorizationToken.
//! - `lifecycle_policy.rs`: lifecycle policy documents and the images
//!   their rules expire (pure); `lifecycle.rs`: the policy operations, the
//!   previews and [`LifecyclePass`], which applies every policy.
//! - `policies.rs`: repository and registry policies, and
//!   [`allows_anonymous`], which the registry asks before an anonymous pull.
//! - `tags.rs`: TagResource, UntagResource, ListTagsForResource.

use api::{parse_unchecked as parse, respond, ApiError, RequestContext};
use serde::Serialize;

use crate::Ecr;

mod images_api;
mod layers_api;
mod lifecycle;
mod lifecycle_policy;
mod policies;
mod repositories;
mod tags;
mod validate;

#[cfg(test)]
mod tests;

// `lib.rs` re-exports these for `berth` (the lifecycle loop) and the registry.
#[allow(unused_imports)]
pub use lifecycle::LifecyclePass;
#[allow(unused_imports)]
pub use policies::allows_anonymous;
pub(crate) use policies::allows_anonymous_pull;

/// Operations [`dispatch`] serves; the model's other operations answer
/// that Berth does not support them yet.
pub const SUPPORTED_OPERATIONS: &[&str] = &[
    "CreateRepository",
    "DescribeRepositories",
    "DeleteRepository",
    "PutImageTagMutability",
    "PutImageScanningConfiguration",
    "DescribeRegistry",
    "ListImages",
    "DescribeImages",
    "BatchGetImage",
    "BatchDeleteImage",
    "PutImage",
    "BatchCheckLayerAvailability",
    "InitiateLayerUpload",
    "UploadLayerPart",
    "CompleteLayerUpload",
    "GetDownloadUrlForLayer",
    "GetAuthorizationToken",
    "PutLifecyclePolicy",
    "GetLifecyclePolicy",
    "DeleteLifecyclePolicy",
    "StartLifecyclePolicyPreview",
    "GetLifecyclePolicyPreview",
    "SetRepositoryPolicy",
    "GetRepositoryPolicy",
    "DeleteRepositoryPolicy",
    "PutRegistryPolicy",
    "GetRegistryPolicy",
    "DeleteRegistryPolicy",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

pub(crate) async fn dispatch(
    ecr: &Ecr,
    ctx: &RequestContext,
    operation: &str,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    match operation {
        "CreateRepository" => respond(ecr.create_repository(ctx, parse(body)?).await?),
        "DescribeRepositories" => respond(ecr.describe_repositories(ctx, parse(body)?).await?),
        "DeleteRepository" => respond(ecr.delete_repository(ctx, parse(body)?).await?),
        "PutImageTagMutability" => respond(ecr.put_image_tag_mutability(ctx, parse(body)?).await?),
        "PutImageScanningConfiguration" => respond(
            ecr.put_image_scanning_configuration(ctx, parse(body)?)
                .await?,
        ),
        "DescribeRegistry" => respond(ecr.describe_registry(ctx, parse(body)?)?),
        "ListImages" => respond(ecr.list_images_api(ctx, parse(body)?).await?),
        "DescribeImages" => respond(ecr.describe_images(ctx, parse(body)?).await?),
        "BatchGetImage" => respond(ecr.batch_get_image(ctx, parse(body)?).await?),
        "BatchDeleteImage" => respond(ecr.batch_delete_image(ctx, parse(body)?).await?),
        "PutImage" => respond(ecr.put_image(ctx, parse(body)?).await?),
        "BatchCheckLayerAvailability" => respond(
            ecr.batch_check_layer_availability(ctx, parse(body)?)
                .await?,
        ),
        "InitiateLayerUpload" => respond(ecr.initiate_layer_upload(ctx, parse(body)?).await?),
        "UploadLayerPart" => respond(ecr.upload_layer_part(ctx, parse(body)?).await?),
        "CompleteLayerUpload" => respond(ecr.complete_layer_upload(ctx, parse(body)?).await?),
        "GetDownloadUrlForLayer" => {
            respond(ecr.get_download_url_for_layer(ctx, parse(body)?).await?)
        }
        "GetAuthorizationToken" => respond(ecr.get_authorization_token(ctx, parse(body)?)?),
        "PutLifecyclePolicy" => respond(ecr.put_lifecycle_policy(ctx, parse(body)?).await?),
        "GetLifecyclePolicy" => respond(ecr.get_lifecycle_policy(ctx, parse(body)?).await?),
        "DeleteLifecyclePolicy" => respond(ecr.delete_lifecycle_policy(ctx, parse(body)?).await?),
        "StartLifecyclePolicyPreview" => respond(
            ecr.start_lifecycle_policy_preview(ctx, parse(body)?)
                .await?,
        ),
        "GetLifecyclePolicyPreview" => {
            respond(ecr.get_lifecycle_policy_preview(ctx, parse(body)?).await?)
        }
        "SetRepositoryPolicy" => respond(ecr.set_repository_policy(ctx, parse(body)?).await?),
        "GetRepositoryPolicy" => respond(ecr.get_repository_policy(ctx, parse(body)?).await?),
        "DeleteRepositoryPolicy" => respond(ecr.delete_repository_policy(ctx, parse(body)?).await?),
        "PutRegistryPolicy" => respond(ecr.put_registry_policy(ctx, parse(body)?).await?),
        "GetRegistryPolicy" => respond(ecr.get_registry_policy(ctx, parse(body)?).await?),
        "DeleteRegistryPolicy" => respond(ecr.delete_registry_policy(ctx, parse(body)?).await?),
        "TagResource" => respond(ecr.tag_resource(ctx, parse(body)?).await?),
        "UntagResource" => respond(ecr.untag_resource(ctx, parse(body)?).await?),
        "ListTagsForResource" => respond(ecr.list_tags_for_resource(ctx, parse(body)?).await?),
        other => match ecr_wire::find_operation(other) {
            Some(_) if !SUPPORTED_OPERATIONS.contains(&other) => Err(ApiError::client(
                "InvalidOperationException",
                format!("The operation {other} is not supported by Berth yet."),
            )),
            _ => Err(ApiError::unknown_operation(other)),
        },
    }
}

/// The response of an operation without output members: `{}`.
#[derive(Serialize)]
pub(crate) struct Empty {}

/// A record's milliseconds as the wire's epoch seconds.
pub(crate) fn epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}
