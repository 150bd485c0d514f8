//! Tags on repositories: TagResource, UntagResource, ListTagsForResource
//! (by repository ARN), and the tags CreateRepository takes.

use api::{ApiError, RequestContext};
use ecr_wire as wire;

use super::{validate, Empty};
use crate::error;
use crate::records::{require_repository, Tags};
use crate::Ecr;

/// How many tags a repository may carry.
pub(super) const MAX_TAGS: usize = 50;

fn check_tag(key: &str, value: &str) -> Result<(), ApiError> {
    let key_length = key.chars().count();
    if !(1..=128).contains(&key_length) {
        return Err(error::invalid_tag_parameter(format!(
            "The tag key '{key}' must be between 1 and 128 characters long"
        )));
    }
    if value.chars().count() > 256 {
        return Err(error::invalid_tag_parameter(format!(
            "The value of tag '{key}' must be at most 256 characters long"
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(error::invalid_tag_parameter(format!(
            "The tag key '{key}' uses the reserved prefix 'aws:'"
        )));
    }
    let allowed = |c: char| {
        c.is_alphanumeric()
            || c.is_whitespace()
            || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
    };
    if !key.chars().all(allowed) || !value.chars().all(allowed) {
        return Err(error::invalid_tag_parameter(format!(
            "The tag '{key}' may only contain letters, numbers, spaces and _ . : / = + - @"
        )));
    }
    Ok(())
}

/// The wire's tag list as a map, checked as ECR does.
pub(super) fn tags_from_wire(tags: &[wire::Tag]) -> Result<Tags, ApiError> {
    let mut map = Tags::new();
    for tag in tags {
        let key = tag
            .key
            .as_deref()
            .ok_or_else(|| error::invalid_tag_parameter("Each tag needs a Key"))?;
        let value = tag.value.as_deref().ok_or_else(|| {
            error::invalid_tag_parameter(format!("The tag '{key}' needs a Value"))
        })?;
        check_tag(key, value)?;
        map.insert(key.to_string(), value.to_string());
    }
    if map.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    Ok(map)
}

fn too_many_tags() -> ApiError {
    error::too_many_tags(format!(
        "A repository can have at most {MAX_TAGS} tags; remove some with UntagResource first"
    ))
}

/// The repository `arn:aws:ecr:<region>:<account>:repository/<name>` names,
/// in the caller's region and account.
fn repository_of_arn(ctx: &RequestContext, arn: &str) -> Result<String, ApiError> {
    let prefix = format!("arn:aws:ecr:{}:{}:repository/", ctx.region, ctx.account_id);
    match arn.strip_prefix(&prefix) {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(error::invalid_parameter_at(
            "resourceArn",
            format!(
                "'{arn}' is not the ARN of a repository in region {} of account {}",
                ctx.region, ctx.account_id
            ),
        )),
    }
}

impl Ecr {
    pub(crate) async fn tag_resource(
        &self,
        ctx: &RequestContext,
        request: wire::TagResourceRequest,
    ) -> Result<Empty, ApiError> {
        let arn = validate::required("resourceArn", request.resource_arn.as_deref())?;
        let tags = validate::required("tags", request.tags.as_deref())?;
        let name = repository_of_arn(ctx, arn)?;
        let added = tags_from_wire(tags)?;
        self.update_repository(ctx, &name, |record| {
            let mut merged = record.tags.clone();
            merged.extend(added.iter().map(|(k, v)| (k.clone(), v.clone())));
            if merged.len() > MAX_TAGS {
                return Err(too_many_tags());
            }
            record.tags = merged;
            Ok(())
        })
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn untag_resource(
        &self,
        ctx: &RequestContext,
        request: wire::UntagResourceRequest,
    ) -> Result<Empty, ApiError> {
        let arn = validate::required("resourceArn", request.resource_arn.as_deref())?;
        let keys = validate::required("tagKeys", request.tag_keys.as_deref())?;
        let name = repository_of_arn(ctx, arn)?;
        for key in keys {
            if key.chars().count() > 128 || key.is_empty() {
                return Err(error::invalid_tag_parameter(format!(
                    "The tag key '{key}' must be between 1 and 128 characters long"
                )));
            }
        }
        self.update_repository(ctx, &name, |record| {
            for key in keys {
                record.tags.remove(key);
            }
            Ok(())
        })
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        request: wire::ListTagsForResourceRequest,
    ) -> Result<wire::ListTagsForResourceResponse, ApiError> {
        let arn = validate::required("resourceArn", request.resource_arn.as_deref())?;
        let name = repository_of_arn(ctx, arn)?;
        let record = require_repository(&*self.store, &ctx.region, &ctx.account_id, &name).await?;
        Ok(wire::ListTagsForResourceResponse {
            tags: Some(
                record
                    .value
                    .tags
                    .into_iter()
                    .map(|(key, value)| wire::Tag {
                        key: Some(key),
                        value: Some(value),
                    })
                    .collect(),
            ),
        })
    }
}
