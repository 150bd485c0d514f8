//! Failure accounting, the service throttle and the deployment circuit
//! breaker.
//!
//! - A RUNNING, healthy task that has been RUNNING for its settle period
//!   settles ([`crate::settle_period_ms`]; `Service::settled_tasks`).
//! - A STOPPED task that failed is counted once (`Service::counted_failures`)
//!   as a *launch failure* when it never reached RUNNING, or when an
//!   essential container exited non-zero (or was killed for memory) before
//!   the task settled: a crash loop is caught even though its tasks reach
//!   RUNNING (AWS's breaker misses those; Berth's rule is stricter). A task
//!   stopped for failing its health checks is a *health-check failure*.
//! - The circuit breaker counts both, per deployment (`failedTasks`); with
//!   `resetOnHealthyTask` (the default) a task of the deployment that
//!   settles resets the count to 0.
//! - The throttle counts launch failures in a row; a task of the PRIMARY
//!   deployment that settles resets it, and so does a new deployment.
//!   Health-check failures do not start it (as on AWS).
//!
//! Failures and settlements seen in one tick are applied in the order they
//! happened (stoppedAt; startedAt plus the settle period).

use crate::plan::{is_running_healthy, throttle_delay_ms, THROTTLE_FAILURE_THRESHOLD};
use crate::*;

/// What failure accounting found this tick.
pub(super) struct Accounting {
    /// Launch failures counted for the first time.
    pub new_launch_failures: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// Never reached RUNNING, or crashed before it settled.
    Launch,
    /// Stopped by the scheduler for failing its health checks.
    HealthChecks,
}

/// Whether a task that reached RUNNING had settled before it stopped: seen
/// settled, or (when no pass saw it, e.g. the control plane was down) it ran
/// without health checks for its whole settle period.
fn had_settled(service: &Service, task: &ObservedTask) -> bool {
    if service.settled_tasks.contains(&task.task_id) {
        return true;
    }
    match (task.started_at_ms, task.stopped_at_ms) {
        (Some(started), Some(stopped)) => {
            task.health == TaskHealth::NoHealthCheck && stopped - started >= task.settle_period_ms
        }
        _ => false,
    }
}

fn failure(service: &Service, task: &ObservedTask) -> Option<Failure> {
    if task.phase != TaskPhase::Stopped {
        return None;
    }
    match task.stop_cause? {
        StopCause::FailedHealthChecks => Some(Failure::HealthChecks),
        StopCause::Failed | StopCause::EssentialContainerFailed if task.started_at_ms.is_none() => {
            Some(Failure::Launch)
        }
        StopCause::EssentialContainerFailed if !had_settled(service, task) => Some(Failure::Launch),
        _ => None,
    }
}

/// Settles tasks, counts new failures into the deployments' `failed_tasks`
/// and the throttle, resets them on settled tasks; prunes
/// `counted_failures` and `settled_tasks` to observed tasks.
pub(super) fn account(service: &mut Service, tasks: &[&ObservedTask], now_ms: i64) -> Accounting {
    enum Event<'t> {
        Failed(&'t ObservedTask, Failure),
        Settled(&'t ObservedTask),
    }
    let mut events: Vec<(i64, &str, Event)> = Vec::new();
    for task in tasks.iter().copied() {
        if service.counted_failures.contains(&task.task_id) {
            continue;
        }
        if let Some(kind) = failure(service, task) {
            let at_ms = task.stopped_at_ms.unwrap_or(task.created_at_ms);
            events.push((at_ms, &task.task_id, Event::Failed(task, kind)));
        }
    }
    for task in tasks.iter().copied() {
        if service.settled_tasks.contains(&task.task_id) || !is_running_healthy(task) {
            continue;
        }
        if let Some(at_ms) = task
            .started_at_ms
            .map(|s| s + task.settle_period_ms)
            .filter(|at| *at <= now_ms)
        {
            events.push((at_ms, &task.task_id, Event::Settled(task)));
        }
    }
    events.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

    let mut accounting = Accounting {
        new_launch_failures: 0,
    };
    for (_, _, event) in events {
        match event {
            Event::Failed(task, kind) => {
                let Some(deployment) = service
                    .deployments
                    .iter_mut()
                    .find(|d| Some(d.id.as_str()) == task.deployment_id.as_deref())
                else {
                    continue;
                };
                service.counted_failures.insert(task.task_id.clone());
                deployment.failed_tasks += 1;
                if kind == Failure::Launch {
                    accounting.new_launch_failures += 1;
                    service.throttle.consecutive_failures += 1;
                }
            }
            Event::Settled(task) => {
                service.settled_tasks.insert(task.task_id.clone());
                let primary_id = service.primary().id.clone();
                if let Some(deployment) = service
                    .deployments
                    .iter_mut()
                    .find(|d| Some(d.id.as_str()) == task.deployment_id.as_deref())
                {
                    if deployment
                        .deployment_configuration
                        .circuit_breaker
                        .reset_on_healthy_task
                        && deployment.rollout_state != RolloutState::Failed
                    {
                        deployment.failed_tasks = 0;
                    }
                }
                if task.deployment_id.as_deref() == Some(primary_id.as_str()) {
                    service.throttle = Throttle::default();
                    accounting.new_launch_failures = 0;
                }
            }
        }
    }
    let observed = |id: &String| tasks.iter().any(|t| &t.task_id == id);
    service.counted_failures.retain(observed);
    service.settled_tasks.retain(observed);
    accounting
}

/// Delays launches once launch failures in a row reach the threshold.
pub(super) fn update_throttle(service: &mut Service, now_ms: i64, accounting: &Accounting) {
    if accounting.new_launch_failures == 0 {
        return;
    }
    let failures = service.throttle.consecutive_failures;
    let before = failures - accounting.new_launch_failures;
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
        || primary.failed_tasks < circuit_breaker_threshold(&breaker, desired_count)
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
