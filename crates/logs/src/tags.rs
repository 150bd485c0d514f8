//! Tags on log groups: TagResource, UntagResource, ListTagsForResource
//! (by ARN) and the older TagLogGroup, UntagLogGroup, ListTagsLogGroup (by
//! name). Log groups are the only taggable CloudWatch Logs resource Berth
//! has.

use api::{ApiError, RequestContext};
use logs_wire as wire;

use crate::error;
use crate::records::{require_group, Tags};
use crate::validate::Violations;
use crate::{Empty, Logs};

const MAX_TAGS: usize = 50;

/// The log group an ARN names: `arn:aws:logs:<region>:<account>:log-group:<name>`
/// (a trailing `:*` is allowed), in the caller's region and account.
fn group_of_arn(ctx: &RequestContext, arn: &str) -> Result<String, ApiError> {
    let prefix = format!("arn:aws:logs:{}:{}:log-group:", ctx.region, ctx.account_id);
    match arn.strip_prefix(&prefix) {
        Some(rest) if !rest.is_empty() => Ok(rest.strip_suffix(":*").unwrap_or(rest).to_string()),
        _ if arn.starts_with("arn:aws:logs:") => Err(ApiError::client(
            "ResourceNotFoundException",
            "The specified resource does not exist.",
        )),
        _ => Err(error::invalid(format!("Invalid ARN: {arn}"))),
    }
}

fn merge(existing: &mut Tags, added: &Tags) -> Result<(), ApiError> {
    let mut merged = existing.clone();
    merged.extend(added.iter().map(|(k, v)| (k.clone(), v.clone())));
    if merged.len() > MAX_TAGS {
        return Err(error::too_many_tags(format!(
            "A resource can have no more than {MAX_TAGS} tags."
        )));
    }
    *existing = merged;
    Ok(())
}

impl Logs {
    async fn add_tags(
        &self,
        ctx: &RequestContext,
        group: &str,
        tags: Tags,
    ) -> Result<(), ApiError> {
        self.update_group(ctx, group, |record| merge(&mut record.tags, &tags))
            .await?;
        Ok(())
    }

    async fn remove_tags(
        &self,
        ctx: &RequestContext,
        group: &str,
        keys: &[String],
    ) -> Result<(), ApiError> {
        self.update_group(ctx, group, |record| {
            for key in keys {
                record.tags.remove(key);
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    pub(crate) async fn tag_resource(
        &self,
        ctx: &RequestContext,
        request: wire::TagResourceRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.resource_arn(request.resource_arn.as_deref());
        violations.required("tags", request.tags.as_ref());
        violations.tags("tags", request.tags.as_ref());
        violations.finish()?;
        let group = group_of_arn(ctx, request.resource_arn.as_deref().unwrap_or(""))?;
        self.add_tags(ctx, &group, request.tags.unwrap_or_default())
            .await?;
        Ok(Empty {})
    }

    pub(crate) async fn untag_resource(
        &self,
        ctx: &RequestContext,
        request: wire::UntagResourceRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.resource_arn(request.resource_arn.as_deref());
        violations.required("tagKeys", request.tag_keys.as_ref());
        violations.count("tagKeys", request.tag_keys.as_ref().map(Vec::len), 0, 50);
        violations.finish()?;
        let group = group_of_arn(ctx, request.resource_arn.as_deref().unwrap_or(""))?;
        self.remove_tags(ctx, &group, &request.tag_keys.unwrap_or_default())
            .await?;
        Ok(Empty {})
    }

    pub(crate) async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        request: wire::ListTagsForResourceRequest,
    ) -> Result<wire::ListTagsForResourceResponse, ApiError> {
        let mut violations = Violations::new();
        violations.resource_arn(request.resource_arn.as_deref());
        violations.finish()?;
        let group = group_of_arn(ctx, request.resource_arn.as_deref().unwrap_or(""))?;
        let record = require_group(&*self.store, &ctx.region, &group).await?;
        Ok(wire::ListTagsForResourceResponse {
            tags: Some(record.value.tags),
        })
    }

    pub(crate) async fn tag_log_group(
        &self,
        ctx: &RequestContext,
        request: wire::TagLogGroupRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.required("tags", request.tags.as_ref());
        violations.tags("tags", request.tags.as_ref());
        violations.finish()?;
        self.add_tags(
            ctx,
            request.log_group_name.as_deref().unwrap_or(""),
            request.tags.unwrap_or_default(),
        )
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn untag_log_group(
        &self,
        ctx: &RequestContext,
        request: wire::UntagLogGroupRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.required("tags", request.tags.as_ref());
        violations.count("tags", request.tags.as_ref().map(Vec::len), 1, 50);
        violations.finish()?;
        self.remove_tags(
            ctx,
            request.log_group_name.as_deref().unwrap_or(""),
            &request.tags.unwrap_or_default(),
        )
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn list_tags_log_group(
        &self,
        ctx: &RequestContext,
        request: wire::ListTagsLogGroupRequest,
    ) -> Result<wire::ListTagsLogGroupResponse, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.finish()?;
        let record = require_group(
            &*self.store,
            &ctx.region,
            request.log_group_name.as_deref().unwrap_or(""),
        )
        .await?;
        Ok(wire::ListTagsLogGroupResponse {
            tags: Some(record.value.tags),
        })
    }
}
