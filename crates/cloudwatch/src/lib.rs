//! Amazon CloudWatch metrics and alarms (API version 2010-08-01), on the same port as ECS,
//! in all three protocols CloudWatch speaks: Smithy RPC v2 CBOR (the model's first),
//! JSON 1.0 (`X-Amz-Target: GraniteServiceVersion20100801.*`, what botocore 1.44 picks) and
//! the query protocol
//! (SigV4 service `monitoring`). Every operation is written once over the generated
//! `cloudwatch-wire` shapes; `wire` decodes and encodes each protocol.
//!
//! - `metrics.rs`: PutMetricData (AWS's limits), GetMetricStatistics, GetMetricData
//!   (MetricStat queries and metric math through `metric-math`), ListMetrics. Datapoints
//!   never enter the orchestration store: they are in a [`metric_store::MetricStore`].
//! - `alarm_api.rs`: metric alarms (PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric,
//!   DeleteAlarms, SetAlarmState, DescribeAlarmHistory, Enable/DisableAlarmActions) and their
//!   tags; records under `/cloudwatch/<region>/…` (`records.rs`).
//! - `evaluator.rs`: the pass `berth` runs every second: each alarm whose period closed is
//!   evaluated by the pure `alarms` crate on its datapoints, and a state change is written
//!   with its history item in one compare-and-swap.
//! - `ecs_metrics.rs`: [`AgentMetrics`], the Berth-only service agents report task usage
//!   through (`model::agent_metrics`), turned into `AWS/ECS` and `ECS/ContainerInsights`
//!   metrics; and [`Publisher`], what other parts of Berth publish `AWS/*` metrics with.

use std::sync::Arc;

use api::{ApiError, RequestContext};
use async_trait::async_trait;
use metric_store::MetricStore;
use store::Store;

mod alarm_api;
mod ecs_metrics;
mod elb_metrics;
mod error;
mod evaluator;
mod metrics;
mod observe;
mod records;
mod statistics;
mod wire;

pub use ecs_metrics::{publish_cluster_metrics, sample, AgentMetrics, Publisher};
pub use elb_metrics::traffic_samples;
pub use evaluator::{regions_under, AlarmEvaluator};
pub use observe::AlarmObservation;
use wire::{decode, encode, encode_empty, Wire};

/// CloudWatch: metrics in a [`MetricStore`], alarms in the orchestration store.
#[derive(Clone)]
pub struct CloudWatch {
    store: Arc<dyn Store>,
    metrics: Arc<dyn MetricStore>,
    actions: Vec<Arc<dyn AlarmActionTarget>>,
}

/// What alarm actions run against, addressed by ARN: Application Auto Scaling's scaling
/// policies. PutMetricAlarm refuses an action no target accepts, so an alarm never holds an
/// action Berth cannot run.
#[async_trait]
pub trait AlarmActionTarget: Send + Sync {
    /// Whether `arn` names something this target runs.
    fn accepts(&self, arn: &str) -> bool;
    /// Runs the action for alarm `alarm_name` of `region`, which just moved to `state`;
    /// the error is what the alarm's history reports.
    async fn execute(
        &self,
        arn: &str,
        region: &str,
        alarm_name: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<(), String>;
}

/// Operations Berth serves; the model's others answer that Berth does not support them.
pub const SUPPORTED_OPERATIONS: &[&str] = &[
    "PutMetricData",
    "GetMetricData",
    "GetMetricStatistics",
    "ListMetrics",
    "PutMetricAlarm",
    "DescribeAlarms",
    "DescribeAlarmsForMetric",
    "DeleteAlarms",
    "SetAlarmState",
    "DescribeAlarmHistory",
    "EnableAlarmActions",
    "DisableAlarmActions",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

impl CloudWatch {
    pub const TARGET_PREFIX: &'static str = cloudwatch_wire::TARGET_PREFIX;
    pub const SIGNING_NAME: &'static str = cloudwatch_wire::SIGNING_NAME;

    pub fn new(store: Arc<dyn Store>, metrics: Arc<dyn MetricStore>) -> Self {
        CloudWatch {
            store,
            metrics,
            actions: Vec::new(),
        }
    }

    /// The same CloudWatch, running alarm actions on `target` too.
    pub fn with_action_target(mut self, target: Arc<dyn AlarmActionTarget>) -> Self {
        self.actions.push(target);
        self
    }

    pub fn metric_store(&self) -> &Arc<dyn MetricStore> {
        &self.metrics
    }

    async fn handle_wire(
        &self,
        wire: Wire,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        let id = ctx.request_id.as_str();
        match operation {
            "PutMetricData" => {
                self.put_metric_data(ctx, decode(wire, body)?).await?;
                Ok(encode_empty(wire, operation, id))
            }
            "GetMetricData" => encode(
                wire,
                id,
                &self.get_metric_data(ctx, decode(wire, body)?).await?,
            ),
            "GetMetricStatistics" => encode(
                wire,
                id,
                &self.get_metric_statistics(ctx, decode(wire, body)?).await?,
            ),
            "ListMetrics" => encode(
                wire,
                id,
                &self.list_metrics(ctx, decode(wire, body)?).await?,
            ),
            "PutMetricAlarm" => {
                self.put_metric_alarm(ctx, decode(wire, body)?).await?;
                Ok(encode_empty(wire, operation, id))
            }
            "DescribeAlarms" => encode(
                wire,
                id,
                &self.describe_alarms(ctx, decode(wire, body)?).await?,
            ),
            "DescribeAlarmsForMetric" => encode(
                wire,
                id,
                &self
                    .describe_alarms_for_metric(ctx, decode(wire, body)?)
                    .await?,
            ),
            "DeleteAlarms" => {
                self.delete_alarms(ctx, decode(wire, body)?).await?;
                Ok(encode_empty(wire, operation, id))
            }
            "SetAlarmState" => {
                self.set_alarm_state(ctx, decode(wire, body)?).await?;
                Ok(encode_empty(wire, operation, id))
            }
            "DescribeAlarmHistory" => encode(
                wire,
                id,
                &self
                    .describe_alarm_history(ctx, decode(wire, body)?)
                    .await?,
            ),
            "EnableAlarmActions" => {
                let request: cloudwatch_wire::EnableAlarmActionsInput = decode(wire, body)?;
                self.set_actions_enabled(ctx, request.alarm_names, true)
                    .await?;
                Ok(encode_empty(wire, operation, id))
            }
            "DisableAlarmActions" => {
                let request: cloudwatch_wire::DisableAlarmActionsInput = decode(wire, body)?;
                self.set_actions_enabled(ctx, request.alarm_names, false)
                    .await?;
                Ok(encode_empty(wire, operation, id))
            }
            "TagResource" => encode(
                wire,
                id,
                &self.tag_resource(ctx, decode(wire, body)?).await?,
            ),
            "UntagResource" => encode(
                wire,
                id,
                &self.untag_resource(ctx, decode(wire, body)?).await?,
            ),
            "ListTagsForResource" => encode(
                wire,
                id,
                &self
                    .list_tags_for_resource(ctx, decode(wire, body)?)
                    .await?,
            ),
            other if cloudwatch_wire::OPERATIONS.contains(&other) => {
                Err(error::unsupported_operation(other))
            }
            other => Err(ApiError::unknown_operation(other)),
        }
    }

    /// Runs `work` on the metric store from a blocking thread (the backend does file I/O
    /// and waits for its commit).
    async fn with_metrics<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn MetricStore) -> Result<T, metric_store::MetricStoreError>
            + Send
            + 'static,
    ) -> Result<T, ApiError> {
        let metrics = Arc::clone(&self.metrics);
        tokio::task::spawn_blocking(move || work(&*metrics))
            .await
            .map_err(|err| error::internal(format!("metric store task failed: {err}")))?
            .map_err(error::from_metric_store)
    }
}

#[async_trait]
impl control_plane::JsonService for CloudWatch {
    fn target_prefix(&self) -> &str {
        CloudWatch::TARGET_PREFIX
    }
    fn signing_name(&self) -> &str {
        CloudWatch::SIGNING_NAME
    }
    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        self.handle_wire(Wire::Json, ctx, operation, body).await
    }
    async fn handle_cbor(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        self.handle_wire(Wire::Cbor, ctx, operation, body).await
    }
}

#[async_trait]
impl control_plane::QueryService for CloudWatch {
    fn signing_name(&self) -> &str {
        CloudWatch::SIGNING_NAME
    }
    async fn handle(&self, ctx: &RequestContext, params: &[u8]) -> Result<Vec<u8>, ApiError> {
        let form = cloudwatch_wire::Form::parse(params);
        let Some(action) = form.action().map(str::to_string) else {
            return Err(error::missing("Action"));
        };
        self.handle_wire(Wire::Query, ctx, &action, params).await
    }
}

#[cfg(test)]
mod tests;
