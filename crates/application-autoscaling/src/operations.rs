//! The operations, one file per resource, and what they share: the scalable target a request
//! names, pagination, and in-process calls to ECS and CloudWatch.

use api::{ApiError, RequestContext};
use application_autoscaling_wire as wire;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::validate::Violations;
use crate::{error, ApplicationAutoScaling};

mod activities;
pub(crate) mod policies;
mod scheduled;
mod tags;
mod targets;

#[allow(unused_imports)]
pub(crate) use policies::{owned_alarm_names, policy_configuration};

/// The one dimension Berth scales.
pub(crate) const ECS_DESIRED_COUNT: &str = "ecs:service:DesiredCount";

/// The scalable target a request names: always an ECS service's DesiredCount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TargetRef {
    pub resource_id: String,
}

impl TargetRef {
    pub fn namespace(&self) -> &'static str {
        "ecs"
    }
    pub fn dimension(&self) -> &'static str {
        ECS_DESIRED_COUNT
    }
}

/// Berth serves ECS services only.
pub(crate) fn require_ecs(namespace: Option<wire::ServiceNamespace>) -> Result<(), ApiError> {
    match namespace {
        None | Some(wire::ServiceNamespace::Ecs) => Ok(()),
        Some(other) => Err(error::validation(format!(
            "Berth supports only the ecs service namespace (ECS services' ecs:service:DesiredCount); service namespace {other} is not supported."
        ))),
    }
}

/// The dimension filter of a Describe* request: absent, or ECS's DesiredCount.
pub(crate) fn require_ecs_dimension(
    dimension: Option<wire::ScalableDimension>,
) -> Result<(), ApiError> {
    match dimension {
        None | Some(wire::ScalableDimension::EcsServiceDesiredCount) => Ok(()),
        Some(_) => Err(unsupported_target()),
    }
}

fn unsupported_target() -> ApiError {
    error::validation("Unsupported service namespace, resource type or scalable dimension")
}

/// The target named by a request's (model-validated) ServiceNamespace, ResourceId and
/// ScalableDimension.
pub(crate) fn target_ref(
    namespace: Option<wire::ServiceNamespace>,
    resource_id: Option<&str>,
    dimension: Option<wire::ScalableDimension>,
) -> Result<TargetRef, ApiError> {
    require_ecs(namespace)?;
    if dimension != Some(wire::ScalableDimension::EcsServiceDesiredCount) {
        return Err(unsupported_target());
    }
    let resource_id = resource_id.unwrap_or_default();
    if crate::metrics::ecs_service_of(resource_id).is_none() {
        return Err(unsupported_target());
    }
    Ok(TargetRef {
        resource_id: resource_id.to_string(),
    })
}

/// MaxResults in `[1, max]` (default `max`), as the front end checks it.
pub(crate) fn page_size(max_results: Option<i32>, max: i64) -> Result<usize, ApiError> {
    let mut violations = Violations::new();
    violations.range("MaxResults", max_results.map(i64::from), 1, max);
    violations.finish()?;
    Ok(max_results.map(|n| n as usize).unwrap_or(max as usize))
}

/// The position a NextToken of `operation` encodes.
pub(crate) fn decode_token(
    operation: &str,
    token: Option<&str>,
) -> Result<Option<String>, ApiError> {
    api::pagination::decode_token(operation, token).map_err(|_| error::invalid_next_token())
}

impl ApplicationAutoScaling {
    /// Runs a CloudWatch operation in-process through its JSON API. CloudWatch's client
    /// errors are the caller's (their metric, their alarm): ValidationException with
    /// CloudWatch's message.
    pub(crate) async fn cloudwatch_call<I: Serialize, O: DeserializeOwned>(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: &I,
    ) -> Result<O, ApiError> {
        let body = serde_json::to_vec(input)
            .map_err(|err| error::internal(format!("encoding {operation}: {err}")))?;
        let response = control_plane::JsonService::handle(self.cloudwatch(), ctx, operation, &body)
            .await
            .map_err(|err| {
                if err.http_status < 500 {
                    error::validation(format!("CloudWatch {operation}: {}", err.message))
                } else {
                    error::internal(format!("CloudWatch {operation}: {}", err.message))
                }
            })?;
        serde_json::from_slice(&response)
            .map_err(|err| error::internal(format!("decoding CloudWatch {operation}: {err}")))
    }

    /// Whether the ECS service `service/<cluster>/<service>` exists and is ACTIVE.
    pub(crate) async fn ecs_service_is_active(
        &self,
        ctx: &RequestContext,
        target: &TargetRef,
    ) -> Result<bool, ApiError> {
        let Some((cluster, service)) = crate::metrics::ecs_service_of(&target.resource_id) else {
            return Ok(false);
        };
        let body = serde_json::json!({"cluster": cluster, "services": [service]});
        let response = match self
            .ecs()
            .handle(ctx, "DescribeServices", body.to_string().as_bytes())
            .await
        {
            Ok(response) => response,
            Err(err) if err.http_status < 500 => return Ok(false),
            Err(err) => return Err(error::internal(format!("ECS DescribeServices: {err}"))),
        };
        let response: serde_json::Value = serde_json::from_slice(&response)
            .map_err(|err| error::internal(format!("decoding ECS DescribeServices: {err}")))?;
        Ok(response["services"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["status"] == "ACTIVE" && s["serviceName"] == service))
    }
}
