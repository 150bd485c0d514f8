//! Application Auto Scaling (JSON 1.1, `X-Amz-Target: AnyScaleFrontendService.*`, SigV4
//! service `application-autoscaling`) for ECS services: scalable targets, target-tracking and
//! step scaling policies, scheduled actions, scaling activities and tags.
//!
//! `ApplicationAutoScaling::handle` decodes bodies into the generated
//! `application-autoscaling-wire` shapes and validates them in AWS's words (`validate`),
//! reads and writes records under `/application-autoscaling/<region>/…` with
//! compare-and-swap (`records`), and answers in wire shapes.
//!
//! - `operations/targets.rs`: RegisterScalableTarget (the ECS service must exist and be
//!   ACTIVE), DescribeScalableTargets, DeregisterScalableTarget (deletes the target's policies,
//!   their alarms and its scheduled actions).
//! - `operations/policies.rs`: PutScalingPolicy, DescribeScalingPolicies, DeleteScalingPolicy.
//!   A target-tracking policy owns CloudWatch alarms (`metrics.rs` builds them from
//!   `scaling::alarm_specs`), created and deleted through CloudWatch's JSON API in-process.
//! - `operations/scheduled.rs`: PutScheduledAction (`scaling::Schedule::parse`),
//!   DescribeScheduledActions, DeleteScheduledAction.
//! - `operations/activities.rs`: DescribeScalingActivities over the activities the
//!   controller records; [`ApplicationAutoScaling::expire_activities`].
//! - `operations/tags.rs`: TagResource, UntagResource, ListTagsForResource.
//! - `controller.rs` ([`ScalingController`]) decides and applies scaling;
//!   `alarm_actions.rs` ([`PolicyActions`]) is the CloudWatch alarm action target for policy
//!   ARNs.
//!
//! **Invariant:** a refused request changes nothing; `now` is the request's `now_ms`.

use std::sync::Arc;

use api::{respond, ApiError, RequestContext};
use async_trait::async_trait;
use store::Store;

mod alarm_actions;
mod controller;
mod error;
mod metrics;
mod operations;
mod records;
mod validate;

pub use alarm_actions::PolicyActions;
pub use controller::ScalingController;
pub use error::AutoScalingError;

#[cfg(test)]
mod tests;

/// Operations dispatched by [`ApplicationAutoScaling::handle`]; the model's others
/// (GetPredictiveScalingForecast) answer that Berth does not support them.
pub const SUPPORTED_OPERATIONS: &[&str] = &[
    "RegisterScalableTarget",
    "DescribeScalableTargets",
    "DeregisterScalableTarget",
    "PutScalingPolicy",
    "DescribeScalingPolicies",
    "DeleteScalingPolicy",
    "PutScheduledAction",
    "DescribeScheduledActions",
    "DeleteScheduledAction",
    "DescribeScalingActivities",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

/// The Application Auto Scaling JSON service.
#[derive(Clone)]
pub struct ApplicationAutoScaling {
    store: Arc<dyn Store>,
    ecs: Arc<api::Ecs>,
    cloudwatch: cloudwatch::CloudWatch,
}

impl ApplicationAutoScaling {
    pub const TARGET_PREFIX: &'static str = application_autoscaling_wire::TARGET_PREFIX;
    pub const SIGNING_NAME: &'static str = application_autoscaling_wire::SIGNING_NAME;

    /// `cloudwatch` must run alarm actions on policy ARNs ([`PolicyActions`]): PutMetricAlarm
    /// refuses actions no target accepts.
    pub fn new(
        store: Arc<dyn Store>,
        ecs: Arc<api::Ecs>,
        cloudwatch: cloudwatch::CloudWatch,
    ) -> Self {
        ApplicationAutoScaling {
            store,
            ecs,
            cloudwatch,
        }
    }

    pub async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        use validate::parse;
        match operation {
            "RegisterScalableTarget" => {
                respond(self.register_scalable_target(ctx, parse(body)?).await?)
            }
            "DescribeScalableTargets" => {
                respond(self.describe_scalable_targets(ctx, parse(body)?).await?)
            }
            "DeregisterScalableTarget" => {
                respond(self.deregister_scalable_target(ctx, parse(body)?).await?)
            }
            "PutScalingPolicy" => respond(self.put_scaling_policy(ctx, parse(body)?).await?),
            "DescribeScalingPolicies" => {
                respond(self.describe_scaling_policies(ctx, parse(body)?).await?)
            }
            "DeleteScalingPolicy" => respond(self.delete_scaling_policy(ctx, parse(body)?).await?),
            "PutScheduledAction" => respond(self.put_scheduled_action(ctx, parse(body)?).await?),
            "DescribeScheduledActions" => {
                respond(self.describe_scheduled_actions(ctx, parse(body)?).await?)
            }
            "DeleteScheduledAction" => {
                respond(self.delete_scheduled_action(ctx, parse(body)?).await?)
            }
            "DescribeScalingActivities" => {
                respond(self.describe_scaling_activities(ctx, parse(body)?).await?)
            }
            "TagResource" => respond(self.tag_resource(ctx, parse(body)?).await?),
            "UntagResource" => respond(self.untag_resource(ctx, parse(body)?).await?),
            "ListTagsForResource" => respond(self.list_tags_for_resource(ctx, parse(body)?).await?),
            other => match application_autoscaling_wire::find_operation(other) {
                Some(_) => Err(error::validation(format!(
                    "The operation {other} is not supported by Berth: it serves {}.",
                    SUPPORTED_OPERATIONS.join(", ")
                ))),
                None => Err(ApiError::unknown_operation(other)),
            },
        }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub(crate) fn ecs(&self) -> &api::Ecs {
        &self.ecs
    }

    pub(crate) fn cloudwatch(&self) -> &cloudwatch::CloudWatch {
        &self.cloudwatch
    }
}

#[async_trait]
impl control_plane::JsonService for ApplicationAutoScaling {
    fn target_prefix(&self) -> &str {
        ApplicationAutoScaling::TARGET_PREFIX
    }
    fn signing_name(&self) -> &str {
        ApplicationAutoScaling::SIGNING_NAME
    }
    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        ApplicationAutoScaling::handle(self, ctx, operation, body).await
    }
}
