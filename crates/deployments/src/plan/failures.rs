//! Failure accounting, the service throttle and the deployment circuit
//! breaker.
//!
//! - A STOPPED task that failed (not stopped on purpose) is counted once
//!   (`Service::counted_failures`).
//! - The circuit breaker counts, per deployment (`failedTasks`), tasks that
//!   failed before reaching RUNNING (AWS's stage 1) and tasks stopped for
//!   failing their health checks (stage 2). A task that ran and then exited
//!   does not count.
//! - The throttle counts only tasks that failed before reaching RUNNING: AWS
//!   "Tasks that are stopped after they reach the RUNNING state don't start
//!   the throttle logic". It resets when a task of the PRIMARY deployment
//!   reaches RUNNING after the last such failure, and on a new deployment.

use crate::plan::{throttle_delay_ms, THROTTLE_FAILURE_THRESHOLD};
use crate::*;

/// What failure accounting found this tick.
pub(super) struct Accounting {
    /// Failures counted for the first time that never reached RUNNING.
    pub new_start_failures: u32,
}

fn is_failure(task: &ObservedTask) -> bool {
    task.phase == TaskPhase::Stopped
        && matches!(
            task.stop_cause,
            Some(StopCause::Failed | StopCause::FailedHealthChecks)
        )
}

fn is_start_failure(task: &ObservedTask) -> bool {
    is_failure(task) && task.stop_cause == Some(StopCause::Failed) && task.started_at_ms.is_none()
}

/// Counts new failures into the deployments' `failed_tasks` and the
/// throttle; prunes `counted_failures` to observed tasks.
pub(super) fn account(service: &mut Service, tasks: &[&ObservedTask]) -> Accounting {
    let mut accounting = Accounting {
        new_start_failures: 0,
    };
    let mut failed: Vec<&ObservedTask> = tasks.iter().copied().filter(|t| is_failure(t)).collect();
    failed.sort_by(|a, b| {
        (a.stopped_at_ms, a.created_at_ms, &a.task_id).cmp(&(
            b.stopped_at_ms,
            b.created_at_ms,
            &b.task_id,
        ))
    });
    for task in failed {
        if service.counted_failures.contains(&task.task_id) {
            continue;
        }
        let Some(deployment) = service
            .deployments
            .iter_mut()
            .find(|d| Some(d.id.as_str()) == task.deployment_id.as_deref())
        else {
            continue;
        };
        service.counted_failures.insert(task.task_id.clone());
        let start_failure = is_start_failure(task);
        if start_failure || task.stop_cause == Some(StopCause::FailedHealthChecks) {
            deployment.failed_tasks += 1;
        }
        if start_failure {
            accounting.new_start_failures += 1;
            service.throttle.consecutive_failures += 1;
        }
    }
    service
        .counted_failures
        .retain(|id| tasks.iter().any(|t| &t.task_id == id));
    accounting
}

/// Resets the throttle once a PRIMARY task reached RUNNING after the last
/// start failure; delays launches once failures reach the threshold.
pub(super) fn update_throttle(
    service: &mut Service,
    tasks: &[&ObservedTask],
    now_ms: i64,
    accounting: &Accounting,
) {
    let last_failure_ms = tasks
        .iter()
        .filter(|t| is_start_failure(t))
        .map(|t| t.stopped_at_ms.unwrap_or(t.created_at_ms))
        .max();
    let primary_id = service.primary().id.clone();
    let started_since = tasks.iter().any(|t| {
        t.deployment_id.as_deref() == Some(primary_id.as_str())
            && t.started_at_ms
                .is_some_and(|s| last_failure_ms.is_none_or(|f| s > f))
    });
    if service.throttle.consecutive_failures > 0 && started_since {
        service.throttle = Throttle::default();
        return;
    }
    if accounting.new_start_failures == 0 {
        return;
    }
    let failures = service.throttle.consecutive_failures;
    let before = failures - accounting.new_start_failures;
    if failures >= THROTTLE_FAILURE_THRESHOLD {
        service.throttle.launch_not_before_ms = now_ms + throttle_delay_ms(failures);
        if before < THROTTLE_FAILURE_THRESHOLD {
            let message = unable_to_start_tasks_message(&service.service_name);
            service.record_event(now_ms, message);
        }
    }
}

/// Fails the PRIMARY deployment once its failed tasks reach the threshold,
/// and rolls back to the newest COMPLETED deployment when asked to.
///
/// A rollback makes that deployment PRIMARY again, IN_PROGRESS, under its
/// own id (as ECS does: its tasks stay); the failed one becomes ACTIVE and
/// drains. Without rollback, without a COMPLETED deployment, or when the
/// failed deployment was itself a rollback, the failed deployment stays
/// PRIMARY and no more tasks are launched ("the deployment is stalled").
pub(super) fn circuit_breaker(service: &mut Service, desired_count: u32, now_ms: i64) {
    let primary = service.primary();
    let breaker = primary.deployment_configuration.circuit_breaker;
    if !breaker.enable
        || primary.rollout_state != RolloutState::InProgress
        || primary.failed_tasks < circuit_breaker_threshold(desired_count)
    {
        return;
    }
    let failed_id = primary.id.clone();
    let may_roll_back = breaker.rollback && primary.rollback_of.is_none();
    let name = service.service_name.clone();
    let primary = service.primary_mut();
    primary.rollout_state = RolloutState::Failed;
    primary.rollout_state_reason = circuit_breaker_failed_reason();
    primary.outcome = Some(DeploymentOutcome::Failed);
    primary.finished_at_ms = Some(now_ms);
    service.record_event(now_ms, deployment_failed_message(&name, &failed_id));
    if !may_roll_back {
        return;
    }
    let Some(target_id) = service
        .all_deployments()
        .find(|d| d.id != failed_id && d.rollout_state == RolloutState::Completed)
        .map(|d| d.id.clone())
    else {
        return;
    };
    let mut target = match service.deployments.iter().position(|d| d.id == target_id) {
        Some(index) => service.deployments.remove(index),
        None => {
            let index = service
                .finished_deployments
                .iter()
                .position(|d| d.id == target_id)
                .expect("the rollback target was found among the deployments");
            service.finished_deployments.remove(index)
        }
    };
    target.status = DeploymentStatus::Primary;
    target.rollout_state = RolloutState::InProgress;
    target.rollout_state_reason = rolling_back_reason(&target_id);
    target.desired_count = desired_count;
    target.failed_tasks = 0;
    target.finished_at_ms = None;
    target.outcome = None;
    target.rollback_of = Some(failed_id);
    service.deployments[0].status = DeploymentStatus::Active;
    service.deployments[0].desired_count = 0;
    service.deployments.insert(0, target);
    service.throttle = Throttle::default();
    service.record_event(now_ms, rolling_back_message(&name, &target_id));
}
