//! DescribeScalingActivities over the activities the controller records, and their expiry.

use api::{ApiError, RequestContext};
use application_autoscaling_wire as wire;
use store::{Compare, Op, RangeRequest, Txn};

use super::{decode_token, page_size, require_ecs, require_ecs_dimension};
use crate::records::{
    activities_prefix, activity_start_ms, namespace_records_prefix, ActivityRecord, ACTIVITIES,
    ROOT_PREFIX,
};
use crate::validate::Violations;
use crate::ApplicationAutoScaling;

/// How long activities stay describable: six weeks, as on AWS.
pub(crate) const ACTIVITY_RETENTION_MS: i64 = 6 * 7 * 24 * 3600 * 1000;

impl ApplicationAutoScaling {
    pub(crate) async fn describe_scaling_activities(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeScalingActivitiesRequest,
    ) -> Result<wire::DescribeScalingActivitiesResponse, ApiError> {
        const OPERATION: &str = "DescribeScalingActivities";
        let mut violations = Violations::new();
        violations.resource_id("ResourceId", request.resource_id.as_deref());
        violations.finish()?;
        let size = page_size(request.max_results, 50)?;
        let after = decode_token(OPERATION, request.next_token.as_deref())?;
        require_ecs(request.service_namespace)?;
        require_ecs_dimension(request.scalable_dimension)?;
        let include_not_scaled = request.include_not_scaled_activities.unwrap_or(false);
        let prefix = match &request.resource_id {
            Some(resource_id) => {
                activities_prefix(&ctx.region, "ecs", resource_id, super::ECS_DESIRED_COUNT)
            }
            None => namespace_records_prefix(&ctx.region, ACTIVITIES, "ecs"),
        };
        let mut activities: Vec<(String, wire::ScalingActivity)> =
            api::records::list::<ActivityRecord>(self.store(), &prefix)
                .await?
                .into_iter()
                .filter(|(_, record)| {
                    include_not_scaled
                        || record
                            .activity
                            .not_scaled_reasons
                            .as_ref()
                            .is_none_or(Vec::is_empty)
                })
                .map(|(key, record)| (sort_key(&key), record.activity))
                .collect();
        // Newest first, across targets.
        activities.sort_by(|a, b| b.0.cmp(&a.0));
        let (page, next_token) = api::pagination::paginate(
            OPERATION,
            activities,
            |(key, _)| key.clone(),
            after.as_deref(),
            size,
            true,
        );
        Ok(wire::DescribeScalingActivitiesResponse {
            scaling_activities: Some(page.into_iter().map(|(_, a)| a).collect()),
            next_token,
        })
    }

    /// Deletes the activities (of every region) that started more than six weeks before
    /// `now_ms`; returns how many. An activity rewritten meanwhile is left for the next pass.
    pub async fn expire_activities(&self, now_ms: i64) -> Result<usize, ApiError> {
        let cutoff_ms = now_ms - ACTIVITY_RETENTION_MS;
        let response = self
            .store()
            .range(RangeRequest::prefix(ROOT_PREFIX))
            .await?;
        let mut expired = 0;
        for kv in response.kvs {
            let is_activity = kv
                .key
                .strip_prefix(ROOT_PREFIX)
                .and_then(|rest| rest.split_once('/'))
                .is_some_and(|(_, rest)| rest.starts_with("activities/"));
            if !is_activity || activity_start_ms(&kv.key).is_none_or(|start| start >= cutoff_ms) {
                continue;
            }
            let txn = Txn::new()
                .when(Compare::mod_revision_is(&kv.key, kv.mod_revision))
                .then(Op::delete(&kv.key));
            if self.store().txn(txn).await?.succeeded {
                expired += 1;
            }
        }
        Ok(expired)
    }
}

/// `<start ms, 20 digits>|<key>`: orders activities of all targets by time.
fn sort_key(key: &str) -> String {
    format!("{:020}|{key}", activity_start_ms(key).unwrap_or(0))
}
