//! TagResource, UntagResource, ListTagsForResource on scalable target ARNs.

use api::records::{self, MAX_CAS_ATTEMPTS};
use api::{ApiError, RequestContext};
use application_autoscaling_wire as wire;

use super::targets::MAX_TAGS;
use crate::records::{list_targets, target_key, ScalableTargetRecord};
use crate::validate::{Violations, RESOURCE_ARN_PATTERN};
use crate::{error, ApplicationAutoScaling};

/// Tag keys starting with `aws:` are AWS's own.
pub(crate) fn check_tag_keys<'a>(
    keys: impl IntoIterator<Item = &'a String>,
) -> Result<(), ApiError> {
    match keys
        .into_iter()
        .find(|k| k.to_ascii_lowercase().starts_with("aws:"))
    {
        Some(key) => Err(error::validation(format!(
            "Tag keys starting with 'aws:' are reserved for AWS use: {key}"
        ))),
        None => Ok(()),
    }
}

fn check_arn(violations: &mut Violations, arn: Option<&str>) {
    violations.string("ResourceARN", arn, 1, 1011, Some(RESOURCE_ARN_PATTERN));
}

impl ApplicationAutoScaling {
    /// The scalable target with `arn`, with its revision, or ResourceNotFoundException.
    async fn target_by_arn(
        &self,
        ctx: &RequestContext,
        arn: &str,
    ) -> Result<records::Versioned<ScalableTargetRecord>, ApiError> {
        list_targets(self.store(), &ctx.region, "ecs")
            .await?
            .into_iter()
            .find(|t| t.value.arn() == arn)
            .ok_or_else(|| {
                error::resource_not_found(format!("No scalable target found for ARN: {arn}"))
            })
    }

    /// Applies `change` to the tags of the target with `arn` (compare-and-swap).
    async fn update_tags(
        &self,
        ctx: &RequestContext,
        arn: &str,
        change: impl Fn(&mut records_tags::Tags) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let found = self.target_by_arn(ctx, arn).await?;
            let mut record = found.value;
            change(&mut record.tags)?;
            let key = target_key(
                &ctx.region,
                record.namespace(),
                record.dimension(),
                record.resource_id(),
            );
            let written = records::Write::new()
                .expect(&key, found.mod_revision)
                .put(&key, &record)
                .commit(self.store())
                .await?;
            if written {
                return Ok(());
            }
        }
        Err(error::concurrent_update())
    }

    pub(crate) async fn tag_resource(
        &self,
        ctx: &RequestContext,
        request: wire::TagResourceRequest,
    ) -> Result<wire::TagResourceResponse, ApiError> {
        let mut violations = Violations::new();
        check_arn(&mut violations, request.resource_arn.as_deref());
        violations.tags("Tags", request.tags.as_ref());
        violations.finish()?;
        let tags = request.tags.unwrap_or_default();
        check_tag_keys(tags.keys())?;
        let arn = request.resource_arn.unwrap_or_default();
        self.update_tags(ctx, &arn, |existing| {
            existing.extend(tags.clone());
            if existing.len() > MAX_TAGS {
                return Err(error::too_many_tags(format!(
                    "A scalable target can have at most {MAX_TAGS} tags; this request would leave {}.",
                    existing.len()
                )));
            }
            Ok(())
        })
        .await?;
        Ok(wire::TagResourceResponse {})
    }

    pub(crate) async fn untag_resource(
        &self,
        ctx: &RequestContext,
        request: wire::UntagResourceRequest,
    ) -> Result<wire::UntagResourceResponse, ApiError> {
        let mut violations = Violations::new();
        check_arn(&mut violations, request.resource_arn.as_deref());
        violations.count("TagKeys", request.tag_keys.as_ref().map(Vec::len), 0, 200);
        for (index, key) in request.tag_keys.iter().flatten().enumerate() {
            violations.string(
                &format!("TagKeys.{}.member", index + 1),
                Some(key),
                1,
                128,
                None,
            );
        }
        violations.finish()?;
        let keys = request.tag_keys.unwrap_or_default();
        let arn = request.resource_arn.unwrap_or_default();
        self.update_tags(ctx, &arn, |existing| {
            for key in &keys {
                existing.remove(key);
            }
            Ok(())
        })
        .await?;
        Ok(wire::UntagResourceResponse {})
    }

    pub(crate) async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        request: wire::ListTagsForResourceRequest,
    ) -> Result<wire::ListTagsForResourceResponse, ApiError> {
        let mut violations = Violations::new();
        check_arn(&mut violations, request.resource_arn.as_deref());
        violations.finish()?;
        let arn = request.resource_arn.unwrap_or_default();
        let found = self.target_by_arn(ctx, &arn).await?;
        Ok(wire::ListTagsForResourceResponse {
            tags: Some(found.value.tags),
        })
    }
}

mod records_tags {
    pub(crate) use crate::records::Tags;
}
