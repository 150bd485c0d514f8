//! The scaling controller: the shell around [`scaling::plan`]. One pass reads every scalable
//! target, its ECS service (desired and running counts, deployments), its policies with the
//! state and recent datapoints of the alarms that trigger them, its scheduled actions and what
//! the controller remembers (`scaling-state/…`), plans, and applies the plan:
//!
//! 1. the decision is written first — the new state (cooldowns, scheduled occurrences run),
//!    the activities, new bounds, and the desired count still to apply (`pending`) — in one
//!    compare-and-swap, so a decision is never made twice;
//! 2. the desired count is set through ECS's UpdateService, as a user's would be;
//! 3. `pending` is cleared and the activity marked Successful, in one compare-and-swap.
//!
//! A crash between 1 and 3 leaves `pending`: the next pass (after a restart) applies it before
//! planning, and setting a desired count twice is setting it once. Level-triggered: a pass
//! never depends on why it was woken (a tick, or an alarm action naming a policy).

use std::sync::Arc;

use api::records::{self, Versioned, Write};
use api::{ApiError, RequestContext};
use application_autoscaling_wire as wire;
use cloudwatch::AlarmObservation;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::alarm_actions::PolicyActions;
use crate::records::{
    activity_key, policies_prefix, scheduled_actions_prefix, target_key, targets_prefix,
    ActivityRecord, PolicyRecord, ScalableTargetRecord, ScheduledActionRecord, ROOT_PREFIX,
};
use crate::ApplicationAutoScaling;

/// The only service namespace Berth scales.
const ECS_NAMESPACE: &str = "ecs";

/// Alarm actions naming scaling policies start with this.
const POLICY_ARN_PREFIX: &str = "arn:aws:autoscaling:";

/// The role Application Auto Scaling acts as on ECS services (the service-linked role AWS
/// uses), as the caller of UpdateService.
const SERVICE_LINKED_ROLE: &str = "role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService";

/// Runs scaling passes (`berth` calls [`ScalingController::pass`] every second, and at once
/// when an alarm action wakes it).
pub struct ScalingController {
    service: ApplicationAutoScaling,
    account_id: String,
    wake: Arc<Notify>,
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub targets: usize,
    /// Desired counts set.
    pub scaled: usize,
    pub activities: usize,
    /// The earliest time a pass could decide something new without any input changing.
    pub wake_at_ms: Option<i64>,
}

/// What the controller remembers about one scalable target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct StateRecord {
    pub state: scaling::ScalingState,
    /// A desired count decided but not yet known to be applied.
    pub pending: Option<PendingChange>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PendingChange {
    pub desired_count: i32,
    pub activity_key: String,
}

pub(crate) fn state_key(
    region: &str,
    namespace: &str,
    dimension: &str,
    resource_id: &str,
) -> String {
    format!("/application-autoscaling/{region}/scaling-state/{namespace}/{dimension}/{resource_id}")
}

/// An ECS service as a pass sees it.
struct ObservedService {
    desired_count: i32,
    running_count: i32,
    deployment_in_progress: bool,
}

impl ScalingController {
    pub fn new(
        service: ApplicationAutoScaling,
        account_id: String,
        actions: &PolicyActions,
    ) -> Self {
        ScalingController {
            service,
            account_id,
            wake: actions.wake(),
        }
    }

    /// Notified when an alarm action names a policy: a pass is due now.
    pub fn wake_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// One pass over every scalable target of every region.
    pub async fn pass(&self, now_ms: i64) -> Result<PassReport, ApiError> {
        let store = self.service.store();
        let mut report = PassReport::default();
        for region in cloudwatch::regions_under(store, ROOT_PREFIX).await? {
            let targets: Vec<Versioned<ScalableTargetRecord>> =
                records::list_versioned(store, &targets_prefix(&region, ECS_NAMESPACE)).await?;
            if targets.is_empty() {
                continue;
            }
            let alarms = self
                .service
                .cloudwatch()
                .alarms_acting_on(&region, POLICY_ARN_PREFIX, now_ms)
                .await?;
            for target in targets {
                report.targets += 1;
                let resource_id = target.value.target.resource_id.clone().unwrap_or_default();
                let outcome = self.target_pass(&region, target, &alarms, now_ms).await;
                match outcome {
                    Ok(step) => {
                        report.scaled += step.scaled;
                        report.activities += step.activities;
                        report.wake_at_ms = earliest(report.wake_at_ms, step.wake_at_ms);
                    }
                    Err(err) => {
                        tracing::warn!(region, resource_id, %err, "scaling pass failed")
                    }
                }
            }
        }
        Ok(report)
    }

    async fn target_pass(
        &self,
        region: &str,
        target: Versioned<ScalableTargetRecord>,
        alarms: &[AlarmObservation],
        now_ms: i64,
    ) -> Result<PassReport, ApiError> {
        let mut report = PassReport::default();
        let wire_target = &target.value.target;
        let namespace = wire_target
            .service_namespace
            .map(|n| n.as_str())
            .unwrap_or("ecs");
        let dimension = wire_target
            .scalable_dimension
            .map(|d| d.as_str())
            .unwrap_or("ecs:service:DesiredCount");
        let resource_id = wire_target.resource_id.clone().unwrap_or_default();
        let Some((cluster, service_name)) = ecs_service_of(&resource_id) else {
            return Ok(report);
        };
        let ctx = self.context(region, now_ms);
        let Some(mut service) = self.observe_service(&ctx, cluster, service_name).await? else {
            // The service is gone or inactive: nothing to scale (AWS leaves the target).
            return Ok(report);
        };
        let skey = state_key(region, namespace, dimension, &resource_id);

        // A decision a crash interrupted is applied before anything new is decided.
        let mut stored = records::get::<StateRecord>(self.service.store(), &skey).await?;
        if let Some(pending) = stored.as_ref().and_then(|s| s.value.pending.clone()) {
            self.apply(&ctx, cluster, service_name, &skey, &pending, now_ms)
                .await?;
            report.scaled += 1;
            service.desired_count = pending.desired_count;
            stored = records::get::<StateRecord>(self.service.store(), &skey).await?;
        }
        let (state, state_revision) = match stored {
            Some(found) => (found.value, found.mod_revision),
            None => (StateRecord::default(), 0),
        };

        let mut bounds = target_of(wire_target);
        if service.deployment_in_progress {
            // As on AWS: scale-in waits while a deployment is in progress; scale-out goes on.
            bounds.dynamic_scaling_in_suspended = true;
        }
        let store = self.service.store();
        let policies: Vec<(String, PolicyRecord)> = records::list(
            store,
            &policies_prefix(region, namespace, &resource_id, dimension),
        )
        .await?;
        let target_policies: Vec<scaling::Policy> = policies
            .iter()
            .filter_map(|(_, record)| policy_of(&record.policy, alarms))
            .collect();
        let scheduled: Vec<(String, ScheduledActionRecord)> = records::list(
            store,
            &scheduled_actions_prefix(region, namespace, &resource_id, dimension),
        )
        .await?;
        let target_actions: Vec<scaling::ScheduledAction> = scheduled
            .iter()
            .filter_map(|(_, record)| scheduled_action_of(record))
            .collect();
        let plan = scaling::plan(
            &scaling::Input {
                target: &bounds,
                desired_count: service.desired_count,
                running_count: service.running_count,
                policies: &target_policies,
                scheduled_actions: &target_actions,
                state: &state.state,
            },
            now_ms,
        );
        report.wake_at_ms = plan.wake_at_ms;
        let bounds_change = plan.min_capacity.is_some() || plan.max_capacity.is_some();
        if plan.desired_count.is_none()
            && !bounds_change
            && plan.activities.is_empty()
            && plan.state == state.state
        {
            return Ok(report);
        }

        // 1. The decision, durable before it is acted on.
        let mut write = Write::new().expect(&skey, state_revision);
        let mut pending = None;
        for activity in &plan.activities {
            let id = uuid::Uuid::new_v4().to_string();
            let key = activity_key(region, namespace, &resource_id, dimension, now_ms, &id);
            let applies = activity.not_scaled.is_none()
                && activity.desired_count.is_some()
                && activity.desired_count == plan.desired_count
                && pending.is_none();
            let record = ActivityRecord {
                activity: activity_to_wire(
                    wire_target,
                    activity,
                    &id,
                    now_ms,
                    if applies { plan.desired_count } else { None },
                ),
            };
            if applies {
                pending = plan.desired_count.map(|desired_count| PendingChange {
                    desired_count,
                    activity_key: key.clone(),
                });
            }
            write = write.put(&key, &record);
            report.activities += 1;
        }
        // A desired count no activity carries (none should exist) is still applied.
        if pending.is_none() {
            if let Some(desired_count) = plan.desired_count {
                let id = uuid::Uuid::new_v4().to_string();
                let key = activity_key(region, namespace, &resource_id, dimension, now_ms, &id);
                let activity = scaling::Activity {
                    description: format!("Setting desired count to {desired_count}."),
                    cause: "scalable target bounds changed".to_string(),
                    not_scaled: None,
                    desired_count: Some(desired_count),
                };
                write = write.put(
                    &key,
                    &ActivityRecord {
                        activity: activity_to_wire(
                            wire_target,
                            &activity,
                            &id,
                            now_ms,
                            Some(desired_count),
                        ),
                    },
                );
                report.activities += 1;
                pending = Some(PendingChange {
                    desired_count,
                    activity_key: key,
                });
            }
        }
        if bounds_change {
            let mut updated = target.value.clone();
            if let Some(min) = plan.min_capacity {
                updated.target.min_capacity = Some(min);
            }
            if let Some(max) = plan.max_capacity {
                updated.target.max_capacity = Some(max);
            }
            let key = target_key(region, namespace, dimension, &resource_id);
            write = write.expect(&key, target.mod_revision).put(&key, &updated);
        }
        let decided = StateRecord {
            state: plan.state.clone(),
            pending: pending.clone(),
        };
        write = write.put(&skey, &decided);
        if !write.commit(self.service.store()).await? {
            // The target or the state changed under us: the next pass plans again.
            return Ok(PassReport {
                activities: 0,
                ..report
            });
        }

        // 2 and 3.
        if let Some(pending) = pending {
            self.apply(&ctx, cluster, service_name, &skey, &pending, now_ms)
                .await?;
            report.scaled += 1;
        }
        Ok(report)
    }

    /// Sets the service's desired count, then clears `pending` and completes its activity.
    async fn apply(
        &self,
        ctx: &RequestContext,
        cluster: &str,
        service_name: &str,
        state_key: &str,
        pending: &PendingChange,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let body = serde_json::json!({
            "cluster": cluster,
            "service": service_name,
            "desiredCount": pending.desired_count,
        });
        let outcome = self
            .service
            .ecs()
            .handle(ctx, "UpdateService", body.to_string().as_bytes())
            .await;
        let (status, message) = match &outcome {
            Ok(_) => (
                wire::ScalingActivityStatusCode::Successful,
                format!(
                    "Successfully set desired count to {}. Change successfully fulfilled by ecs.",
                    pending.desired_count
                ),
            ),
            // A service that cannot take the change (deleted, draining) fails the activity;
            // anything else (the store) is retried by the next pass.
            Err(err) if err.http_status < 500 => (
                wire::ScalingActivityStatusCode::Failed,
                format!(
                    "Failed to set desired count to {}. Reason: {}",
                    pending.desired_count, err.message
                ),
            ),
            Err(err) => return Err(err.clone()),
        };
        let store = self.service.store();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let state = records::get::<StateRecord>(store, state_key).await?;
            let activity = records::get::<ActivityRecord>(store, &pending.activity_key).await?;
            let mut write = Write::new();
            match state {
                Some(found) if found.value.pending.as_ref() == Some(pending) => {
                    let mut value = found.value.clone();
                    value.pending = None;
                    write = write
                        .expect(state_key, found.mod_revision)
                        .put(state_key, &value);
                }
                // Someone else completed it.
                _ => return Ok(()),
            }
            if let Some(found) = activity {
                let mut value = found.value.clone();
                value.activity.status_code = Some(status);
                value.activity.status_message = Some(message.clone());
                value.activity.end_time = Some(now_ms as f64 / 1000.0);
                write = write
                    .expect(&pending.activity_key, found.mod_revision)
                    .put(&pending.activity_key, &value);
            }
            if write.commit(store).await? {
                return Ok(());
            }
        }
        Err(records::too_much_contention("the scalable target"))
    }

    async fn observe_service(
        &self,
        ctx: &RequestContext,
        cluster: &str,
        service_name: &str,
    ) -> Result<Option<ObservedService>, ApiError> {
        let body = serde_json::json!({"cluster": cluster, "services": [service_name]});
        let answer = match self
            .service
            .ecs()
            .handle(ctx, "DescribeServices", body.to_string().as_bytes())
            .await
        {
            Ok(answer) => answer,
            // A cluster that is gone.
            Err(err) if err.http_status < 500 => return Ok(None),
            Err(err) => return Err(err),
        };
        let described: ecs_wire::DescribeServicesResponse = serde_json::from_slice(&answer)
            .map_err(|err| ApiError::server(format!("DescribeServices answer: {err}")))?;
        let Some(service) = described
            .services
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.status.as_deref() == Some("ACTIVE"))
        else {
            return Ok(None);
        };
        let deployments = service.deployments.unwrap_or_default();
        let deployment_in_progress = deployments.len() > 1
            || deployments.iter().any(|d| {
                d.status.as_deref() == Some("PRIMARY")
                    && d.rollout_state.map(|s| s.as_str()) == Some("IN_PROGRESS")
            });
        Ok(Some(ObservedService {
            desired_count: service.desired_count.unwrap_or(0),
            running_count: service.running_count.unwrap_or(0),
            deployment_in_progress,
        }))
    }

    fn context(&self, region: &str, now_ms: i64) -> RequestContext {
        RequestContext {
            region: region.to_string(),
            account_id: self.account_id.clone(),
            principal_arn: format!("arn:aws:iam::{}:{SERVICE_LINKED_ROLE}", self.account_id),
            access_key_id: String::new(),
            request_id: uuid::Uuid::new_v4().to_string(),
            now_ms,
        }
    }
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `service/<cluster>/<service>` → (cluster, service).
fn ecs_service_of(resource_id: &str) -> Option<(&str, &str)> {
    let rest = resource_id.strip_prefix("service/")?;
    let (cluster, service) = rest.split_once('/')?;
    (!cluster.is_empty() && !service.is_empty() && !service.contains('/'))
        .then_some((cluster, service))
}

fn target_of(target: &wire::ScalableTarget) -> scaling::Target {
    let suspended = target.suspended_state.clone().unwrap_or_default();
    scaling::Target {
        min_capacity: target.min_capacity.unwrap_or(0),
        max_capacity: target.max_capacity.unwrap_or(0),
        dynamic_scaling_in_suspended: suspended.dynamic_scaling_in_suspended.unwrap_or(false),
        dynamic_scaling_out_suspended: suspended.dynamic_scaling_out_suspended.unwrap_or(false),
        scheduled_scaling_suspended: suspended.scheduled_scaling_suspended.unwrap_or(false),
    }
}

fn policy_of(policy: &wire::ScalingPolicy, alarms: &[AlarmObservation]) -> Option<scaling::Policy> {
    let arn = policy.policy_arn.clone()?;
    let configuration = crate::operations::policies::policy_configuration(policy)?;
    let target_tracking = matches!(
        configuration,
        scaling::PolicyConfiguration::TargetTracking { .. }
    );
    let triggering = alarms
        .iter()
        .filter(|alarm| alarm.alarm_actions.contains(&arn))
        .map(|alarm| scaling::TriggeringAlarm {
            name: alarm.name.clone(),
            role: match (target_tracking, alarm_role(&alarm.name)) {
                (true, Some(role)) => role,
                _ => scaling::AlarmRole::Step,
            },
            state: match alarm.state_value.as_str() {
                "ALARM" => scaling::AlarmState::Alarm,
                "OK" => scaling::AlarmState::Ok,
                _ => scaling::AlarmState::InsufficientData,
            },
            actions_enabled: alarm.actions_enabled,
            threshold: alarm.threshold,
            comparison_operator: alarm.comparison_operator.clone(),
            datapoints: alarm.datapoints.clone(),
        })
        .collect();
    Some(scaling::Policy {
        name: policy.policy_name.clone().unwrap_or_default(),
        arn,
        configuration,
        alarms: triggering,
    })
}

/// A target-tracking alarm's role, from the name the policy gave it.
fn alarm_role(name: &str) -> Option<scaling::AlarmRole> {
    if name.contains("-AlarmHigh-") {
        Some(scaling::AlarmRole::High)
    } else if name.contains("-AlarmLow-") {
        Some(scaling::AlarmRole::Low)
    } else {
        None
    }
}

fn scheduled_action_of(record: &ScheduledActionRecord) -> Option<scaling::ScheduledAction> {
    let action = &record.action;
    let name = action.scheduled_action_name.clone()?;
    let schedule =
        match scaling::Schedule::parse(action.schedule.as_deref()?, action.timezone.as_deref()) {
            Ok(schedule) => schedule,
            Err(err) => {
                tracing::warn!(action = name, %err, "stored schedule does not parse");
                return None;
            }
        };
    let bounds = action.scalable_target_action.clone().unwrap_or_default();
    Some(scaling::ScheduledAction {
        name,
        arn: action.scheduled_action_arn.clone().unwrap_or_default(),
        schedule,
        created_ms: record.updated_ms,
        start_ms: action.start_time.map(seconds_to_ms),
        end_ms: action.end_time.map(seconds_to_ms),
        min_capacity: bounds.min_capacity,
        max_capacity: bounds.max_capacity,
    })
}

fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

fn activity_to_wire(
    target: &wire::ScalableTarget,
    activity: &scaling::Activity,
    id: &str,
    now_ms: i64,
    final_desired_count: Option<i32>,
) -> wire::ScalingActivity {
    let now_s = now_ms as f64 / 1000.0;
    let (status_code, status_message, end_time) =
        match (&activity.not_scaled, activity.desired_count) {
            (Some(_), _) => (wire::ScalingActivityStatusCode::Failed, None, Some(now_s)),
            // Applied after this write (the controller completes it).
            (None, Some(count)) if Some(count) == final_desired_count => {
                (wire::ScalingActivityStatusCode::InProgress, None, None)
            }
            // A later activity of the same pass set another desired count.
            (None, Some(count)) => (
                wire::ScalingActivityStatusCode::Overridden,
                Some(format!(
                    "Desired count {count} was overridden by a later scaling activity."
                )),
                Some(now_s),
            ),
            // Bounds set by a scheduled action: done with this write.
            (None, None) => (
                wire::ScalingActivityStatusCode::Successful,
                Some(format!(
                    "{}.",
                    activity.description.trim_end_matches('.').replacen(
                        "Setting",
                        "Successfully set",
                        1
                    )
                )),
                Some(now_s),
            ),
        };
    wire::ScalingActivity {
        activity_id: Some(id.to_string()),
        service_namespace: target.service_namespace,
        resource_id: target.resource_id.clone(),
        scalable_dimension: target.scalable_dimension,
        description: Some(activity.description.clone()),
        cause: Some(activity.cause.clone()),
        start_time: Some(now_s),
        end_time,
        status_code: Some(status_code),
        status_message,
        details: None,
        not_scaled_reasons: activity.not_scaled.as_ref().map(|reason| {
            vec![wire::NotScaledReason {
                code: Some(reason.code.clone()),
                max_capacity: reason.max_capacity,
                min_capacity: reason.min_capacity,
                current_capacity: reason.current_capacity,
            }]
        }),
    }
}
