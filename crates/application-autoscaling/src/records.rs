//! What Application Auto Scaling keeps in the orchestration store, under
//! `/application-autoscaling/<region>/…`. Records hold the wire shapes themselves, so the
//! Describe* operations return what was stored.
//!
//! Keys:
//! - `targets/<ServiceNamespace>/<ScalableDimension>/<ResourceId>` → [`ScalableTargetRecord`]
//! - `policies/<ServiceNamespace>/<ResourceId>/<ScalableDimension>/<PolicyName>` →
//!   [`PolicyRecord`]
//! - `scheduled-actions/<ServiceNamespace>/<ResourceId>/<ScalableDimension>/<Name>` →
//!   [`ScheduledActionRecord`]
//! - `activities/<ServiceNamespace>/<ResourceId>/<ScalableDimension>/<StartTime ms, 20
//!   digits>-<ActivityId>` → [`ActivityRecord`] (written by the controller; key order is
//!   time order)
//!
//! The dimension (which contains no `/`) follows the resource id in the policy, action and
//! activity keys, so the records of `service/a/b` never share a prefix with `service/a/bc`'s
//! or `service/a/b/c`'s.

use std::collections::BTreeMap;

use api::records::{self, Versioned};
use api::{ApiError, RequestContext};
use application_autoscaling_wire as wire;
use serde::{Deserialize, Serialize};
use store::Store;

/// Every region's records start with this.
pub(crate) const ROOT_PREFIX: &str = "/application-autoscaling/";

pub(crate) fn region_prefix(region: &str) -> String {
    format!("{ROOT_PREFIX}{region}/")
}

pub(crate) fn targets_prefix(region: &str, namespace: &str) -> String {
    format!("{}targets/{namespace}/", region_prefix(region))
}
pub(crate) fn target_key(
    region: &str,
    namespace: &str,
    dimension: &str,
    resource_id: &str,
) -> String {
    format!(
        "{}{dimension}/{resource_id}",
        targets_prefix(region, namespace)
    )
}

/// The records of one scalable target of kind `kind` (`policies`, `scheduled-actions`,
/// `activities`): `<kind>/<ns>/<resource id>/<dimension>/`.
pub(crate) fn target_records_prefix(
    region: &str,
    kind: &str,
    namespace: &str,
    resource_id: &str,
    dimension: &str,
) -> String {
    format!(
        "{}{kind}/{namespace}/{resource_id}/{dimension}/",
        region_prefix(region)
    )
}
/// Every record of kind `kind` in `namespace`.
pub(crate) fn namespace_records_prefix(region: &str, kind: &str, namespace: &str) -> String {
    format!("{}{kind}/{namespace}/", region_prefix(region))
}

pub(crate) const POLICIES: &str = "policies";
pub(crate) const SCHEDULED_ACTIONS: &str = "scheduled-actions";
pub(crate) const ACTIVITIES: &str = "activities";

pub(crate) fn policies_prefix(
    region: &str,
    namespace: &str,
    resource_id: &str,
    dimension: &str,
) -> String {
    target_records_prefix(region, POLICIES, namespace, resource_id, dimension)
}
pub(crate) fn policy_key(
    region: &str,
    namespace: &str,
    resource_id: &str,
    dimension: &str,
    policy_name: &str,
) -> String {
    format!(
        "{}{policy_name}",
        policies_prefix(region, namespace, resource_id, dimension)
    )
}
pub(crate) fn scheduled_actions_prefix(
    region: &str,
    namespace: &str,
    resource_id: &str,
    dimension: &str,
) -> String {
    target_records_prefix(region, SCHEDULED_ACTIONS, namespace, resource_id, dimension)
}
pub(crate) fn scheduled_action_key(
    region: &str,
    namespace: &str,
    resource_id: &str,
    dimension: &str,
    name: &str,
) -> String {
    format!(
        "{}{name}",
        scheduled_actions_prefix(region, namespace, resource_id, dimension)
    )
}
pub(crate) fn activities_prefix(
    region: &str,
    namespace: &str,
    resource_id: &str,
    dimension: &str,
) -> String {
    target_records_prefix(region, ACTIVITIES, namespace, resource_id, dimension)
}
/// An activity's key: its start time zero-padded to 20 digits, so key order is time order.
pub(crate) fn activity_key(
    region: &str,
    namespace: &str,
    resource_id: &str,
    dimension: &str,
    start_ms: i64,
    activity_id: &str,
) -> String {
    format!(
        "{}{start_ms:020}-{activity_id}",
        activities_prefix(region, namespace, resource_id, dimension)
    )
}
/// The start time encoded in an activity key (see [`activity_key`]).
pub(crate) fn activity_start_ms(key: &str) -> Option<i64> {
    let last = key.rsplit('/').next()?;
    last.get(..20)?.parse().ok()
}

pub(crate) type Tags = BTreeMap<String, String>;

/// A registered scalable target: the wire shape DescribeScalableTargets returns, and its tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScalableTargetRecord {
    pub target: wire::ScalableTarget,
    #[serde(default)]
    pub tags: Tags,
}

/// A scaling policy as DescribeScalingPolicies returns it. `Alarms` holds the alarms a
/// target-tracking policy owns; a step policy's are looked up in CloudWatch when described.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PolicyRecord {
    pub policy: wire::ScalingPolicy,
    pub updated_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScheduledActionRecord {
    pub action: wire::ScheduledAction,
    /// When the action was created or last changed (a `rate()` counts from here).
    pub updated_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ActivityRecord {
    pub activity: wire::ScalingActivity,
}

impl ScalableTargetRecord {
    pub fn namespace(&self) -> &'static str {
        self.target
            .service_namespace
            .map(|n| n.as_str())
            .unwrap_or("ecs")
    }
    pub fn dimension(&self) -> &'static str {
        self.target
            .scalable_dimension
            .map(|d| d.as_str())
            .unwrap_or("ecs:service:DesiredCount")
    }
    pub fn resource_id(&self) -> &str {
        self.target.resource_id.as_deref().unwrap_or_default()
    }
    pub fn arn(&self) -> &str {
        self.target
            .scalable_target_arn
            .as_deref()
            .unwrap_or_default()
    }
}

pub(crate) async fn get_target(
    store: &dyn Store,
    region: &str,
    namespace: &str,
    dimension: &str,
    resource_id: &str,
) -> Result<Option<Versioned<ScalableTargetRecord>>, ApiError> {
    records::get(
        store,
        &target_key(region, namespace, dimension, resource_id),
    )
    .await
}

/// Every scalable target of `namespace` in `region`, in key order, with revisions.
pub(crate) async fn list_targets(
    store: &dyn Store,
    region: &str,
    namespace: &str,
) -> Result<Vec<Versioned<ScalableTargetRecord>>, ApiError> {
    records::list_versioned(store, &targets_prefix(region, namespace)).await
}

/// `arn:aws:application-autoscaling:<region>:<account>:scalable-target/<id>`, the id a `0`
/// and 35 random hexadecimal digits as AWS shows them.
pub(crate) fn new_scalable_target_arn(ctx: &RequestContext) -> String {
    let first = uuid::Uuid::new_v4().simple().to_string();
    let second = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "arn:aws:application-autoscaling:{}:{}:scalable-target/0{first}{}",
        ctx.region,
        ctx.account_id,
        &second[..3]
    )
}

/// `arn:aws:autoscaling:<region>:<account>:scalingPolicy:<uuid>:resource/<ns>/<resource
/// id>:policyName/<name>`.
pub(crate) fn new_policy_arn(
    ctx: &RequestContext,
    namespace: &str,
    resource_id: &str,
    policy_name: &str,
) -> String {
    format!(
        "arn:aws:autoscaling:{}:{}:scalingPolicy:{}:resource/{namespace}/{resource_id}:policyName/{policy_name}",
        ctx.region,
        ctx.account_id,
        uuid::Uuid::new_v4()
    )
}

/// `arn:aws:autoscaling:<region>:<account>:scheduledAction:<uuid>:resource/<ns>/<resource
/// id>:scheduledActionName/<name>`.
pub(crate) fn new_scheduled_action_arn(
    ctx: &RequestContext,
    namespace: &str,
    resource_id: &str,
    name: &str,
) -> String {
    format!(
        "arn:aws:autoscaling:{}:{}:scheduledAction:{}:resource/{namespace}/{resource_id}:scheduledActionName/{name}",
        ctx.region,
        ctx.account_id,
        uuid::Uuid::new_v4()
    )
}

/// The service-linked role Application Auto Scaling uses for ECS services (RoleARN when the
/// caller gives none).
pub(crate) fn ecs_service_linked_role_arn(ctx: &RequestContext) -> String {
    format!(
        "arn:aws:iam::{}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
        ctx.account_id
    )
}

/// Epoch seconds (the wire's timestamps) of `ms`.
pub(crate) fn epoch_s(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Milliseconds of a wire timestamp.
pub(crate) fn epoch_ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_targets_apart_and_activities_in_time_order() {
        let a = policies_prefix("r", "ecs", "service/a/b", "ecs:service:DesiredCount");
        let b = policy_key("r", "ecs", "service/a/bc", "ecs:service:DesiredCount", "p");
        let c = policy_key("r", "ecs", "service/a/b/c", "ecs:service:DesiredCount", "p");
        assert!(!b.starts_with(&a));
        assert!(!c.starts_with(&a));
        let early = activity_key(
            "r",
            "ecs",
            "service/a/b",
            "ecs:service:DesiredCount",
            999,
            "x",
        );
        let late = activity_key(
            "r",
            "ecs",
            "service/a/b",
            "ecs:service:DesiredCount",
            1000,
            "a",
        );
        assert!(early < late);
        assert_eq!(activity_start_ms(&late), Some(1000));
    }
}
