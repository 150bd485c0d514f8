//! The service scheduler's decision: [`plan`].
//!
//! One call looks at the service's scheduling state and what is observed now
//! and decides, in this order:
//! 1. failure accounting, the throttle and the circuit breaker
//!    ([`failures`]);
//! 2. stops every strategy shares: tasks on lost container instances,
//!    orphans, tasks that failed their health checks after the grace period;
//! 3. the strategy's own launches and stops ([`replica`], [`daemon`]);
//! 4. counts, rollout states, retired deployments, events ([`Tick::finish`]).
//!
//! Vocabulary used below, per tick:
//! - *live*: PENDING or RUNNING, desiredStatus RUNNING, on a usable (or not
//!   yet chosen) container instance, and not stopped by this tick;
//! - *healthy*: live, RUNNING, and passing (or without) container health
//!   checks;
//! - *settled*: RUNNING and healthy through its settle period
//!   ([`settle_period_ms`]); the PRIMARY deployment's tasks count toward
//!   minimumHealthyPercent and its completion only once settled (older
//!   deployments' tasks count while healthy);
//! - *counted*: counted toward maximumPercent: not STOPPED and not on a lost
//!   container instance, whatever its desiredStatus (ECS counts RUNNING,
//!   PENDING and STOPPING tasks).

use std::collections::{BTreeMap, BTreeSet};

use crate::*;

mod daemon;
mod failures;
mod replica;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

/// Consecutive tasks that fail to reach RUNNING before the service throttle
/// delays launches.
pub const THROTTLE_FAILURE_THRESHOLD: u32 = 3;
/// The first throttle delay; each further failure doubles it.
pub const THROTTLE_BASE_DELAY_MS: i64 = 10_000;
/// The longest throttle delay: AWS documents "up to a maximum of 27 minutes".
pub const THROTTLE_MAX_DELAY_MS: i64 = 27 * 60 * 1000;

/// How many failed tasks make the deployment circuit breaker fail a
/// deployment, from its `thresholdConfiguration` and the desired count:
/// `COUNT` is the value itself; the percentages are `value` percent of the
/// desired count rounded up, `BOUNDED_PERCENT` within 3..=200 (AWS's
/// documented bounds; the default, 50, gives `0.5 * desired count`),
/// `UNBOUNDED_PERCENT` at least 1.
pub fn circuit_breaker_threshold(breaker: &CircuitBreaker, desired_count: u32) -> u32 {
    let value = breaker.threshold.value;
    let percent = || {
        let product = u64::from(value) * u64::from(desired_count);
        u32::try_from(product.div_ceil(100)).unwrap_or(u32::MAX)
    };
    match breaker.threshold.threshold_type {
        ThresholdType::Count => value.max(1),
        ThresholdType::BoundedPercent => percent().clamp(3, 200),
        ThresholdType::UnboundedPercent => percent().max(1),
    }
}

/// Berth's settle period when no essential container's health check asks
/// for a longer `startPeriod`.
pub const DEFAULT_SETTLE_PERIOD_MS: i64 = 10_000;

/// Berth's rule: a task *settles* once it has been RUNNING for its settle
/// period and is healthy at its end (its essential containers' health
/// checks pass, or it has none). The settle period is the longest
/// `startPeriod` (seconds) of its essential containers' health checks, and
/// never less than [`DEFAULT_SETTLE_PERIOD_MS`].
///
/// Until it settles a task of the PRIMARY deployment does not count toward
/// minimumHealthyPercent nor toward the deployment's completion, and if an
/// essential container exits with a non-zero code (or is killed for memory)
/// before then, the task is a failed task of its deployment (`failedTasks`,
/// the circuit breaker) and a failure for the service throttle, as a task
/// that never reached RUNNING is.
pub fn settle_period_ms(health_check_start_periods_s: impl IntoIterator<Item = i32>) -> i64 {
    health_check_start_periods_s
        .into_iter()
        .map(|s| i64::from(s.max(0)) * 1000)
        .fold(DEFAULT_SETTLE_PERIOD_MS, i64::max)
}

/// How long the service throttle delays launches after
/// `consecutive_failures` tasks in a row failed to reach RUNNING: nothing
/// below [`THROTTLE_FAILURE_THRESHOLD`], then 10 s doubling per failure up
/// to 27 minutes.
pub fn throttle_delay_ms(consecutive_failures: u32) -> i64 {
    if consecutive_failures < THROTTLE_FAILURE_THRESHOLD {
        return 0;
    }
    let doublings = (consecutive_failures - THROTTLE_FAILURE_THRESHOLD).min(20);
    (THROTTLE_BASE_DELAY_MS << doublings).min(THROTTLE_MAX_DELAY_MS)
}

/// Decides the service's next scheduling state and the tasks to launch and
/// stop. Pure and deterministic; calling it again on the observation that
/// results from applying its plan launches and stops nothing more.
///
/// A circuit-breaker rollback makes the last COMPLETED deployment PRIMARY
/// again under its own id, as ECS does (its rollback event and later
/// `deployment completed.` event name the rolled-back-to deployment, and its
/// tasks are kept), so planning never invents an id.
pub fn plan(
    service: &Service,
    tasks: &[ObservedTask],
    instances: &[ObservedInstance],
    now_ms: i64,
) -> Plan {
    let mut tick = Tick::new(service, tasks, instances, now_ms);
    let accounting = failures::account(&mut tick.service, &tick.tasks, now_ms);
    failures::update_throttle(&mut tick.service, now_ms, &accounting);
    tick.wake_when_tasks_settle();
    let desired_count = match service.scheduling_strategy {
        SchedulingStrategy::Replica => tick.replica_desired_count(),
        SchedulingStrategy::Daemon => daemon::desired_count(&tick),
    };
    failures::circuit_breaker(&mut tick.service, desired_count, now_ms);
    tick.stop_unwanted();
    match service.scheduling_strategy {
        SchedulingStrategy::Replica => replica::decide(&mut tick, desired_count),
        SchedulingStrategy::Daemon => daemon::decide(&mut tick, desired_count),
    }
    tick.finish(service, desired_count)
}

/// Where a task runs, as far as the planner cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Host {
    /// No container instance chosen yet.
    Unplaced,
    /// An ACTIVE instance with a connected agent.
    Usable,
    /// A connected instance that takes no new tasks (DRAINING or not ACTIVE).
    Draining,
    /// Its agent is disconnected: the task counts as gone.
    Disconnected,
    /// The instance is no longer registered: the task counts as gone.
    Deregistered,
}

impl Host {
    fn is_lost(self) -> bool {
        matches!(self, Host::Disconnected | Host::Deregistered)
    }
}

/// The working state of one [`plan`] call.
struct Tick<'a> {
    now_ms: i64,
    service: Service,
    /// The observed tasks, oldest first.
    tasks: Vec<&'a ObservedTask>,
    instances: BTreeMap<&'a str, &'a ObservedInstance>,
    stops: Vec<Stop>,
    stopped: BTreeSet<&'a str>,
    launches: Vec<Launch>,
    wake_at_ms: Option<i64>,
    /// The deployment configuration allows neither a stop nor a launch.
    blocked_by_configuration: bool,
}

impl<'a> Tick<'a> {
    fn new(
        service: &Service,
        tasks: &'a [ObservedTask],
        instances: &'a [ObservedInstance],
        now_ms: i64,
    ) -> Tick<'a> {
        let mut tasks: Vec<&ObservedTask> = tasks.iter().collect();
        tasks.sort_by(|a, b| {
            a.created_at_ms
                .cmp(&b.created_at_ms)
                .then_with(|| a.task_id.cmp(&b.task_id))
        });
        Tick {
            now_ms,
            service: service.clone(),
            tasks,
            instances: instances
                .iter()
                .map(|i| (i.container_instance_id.as_str(), i))
                .collect(),
            stops: Vec::new(),
            stopped: BTreeSet::new(),
            launches: Vec::new(),
            wake_at_ms: None,
            blocked_by_configuration: false,
        }
    }

    fn replica_desired_count(&self) -> u32 {
        if self.service.status == ServiceStatus::Active {
            self.service.desired_count
        } else {
            0
        }
    }

    fn host(&self, task: &ObservedTask) -> Host {
        let Some(id) = task.container_instance_id.as_deref() else {
            return Host::Unplaced;
        };
        match self.instances.get(id) {
            None => Host::Deregistered,
            Some(instance) if !instance.agent_connected => Host::Disconnected,
            Some(instance) if instance.draining || !instance.active => Host::Draining,
            Some(_) => Host::Usable,
        }
    }

    fn is_live(&self, task: &ObservedTask) -> bool {
        matches!(task.phase, TaskPhase::Pending | TaskPhase::Running)
            && !task.desired_stopped
            && !self.stopped.contains(task.task_id.as_str())
            && !self.host(task).is_lost()
    }

    fn is_healthy(&self, task: &ObservedTask) -> bool {
        self.is_live(task) && is_running_healthy(task)
    }

    /// RUNNING and healthy, and it has been through its settle period: what
    /// counts toward minimumHealthyPercent and a deployment's completion.
    fn is_settled(&self, task: &ObservedTask) -> bool {
        is_running_healthy(task) && self.service.settled_tasks.contains(&task.task_id)
    }

    /// Plans again when a RUNNING, healthy task's settle period ends.
    fn wake_when_tasks_settle(&mut self) {
        let settle_at: Vec<i64> = self
            .tasks
            .iter()
            .filter(|t| is_running_healthy(t) && !self.is_settled(t))
            .filter_map(|t| t.started_at_ms.map(|s| s + t.settle_period_ms))
            .collect();
        for at_ms in settle_at {
            self.wake_at(at_ms);
        }
    }

    fn is_counted(&self, task: &ObservedTask) -> bool {
        task.phase != TaskPhase::Stopped && !self.host(task).is_lost()
    }

    fn counted_total(&self) -> u32 {
        self.tasks.iter().filter(|t| self.is_counted(t)).count() as u32
    }

    fn live_tasks(&self) -> Vec<&'a ObservedTask> {
        self.tasks
            .iter()
            .copied()
            .filter(|t| self.is_live(t))
            .collect()
    }

    fn in_deployment(task: &ObservedTask, deployment_id: &str) -> bool {
        task.deployment_id.as_deref() == Some(deployment_id)
    }

    /// Index of the task's deployment in `service.deployments`.
    fn deployment_index(&self, task: &ObservedTask) -> Option<usize> {
        let id = task.deployment_id.as_deref()?;
        self.service.deployments.iter().position(|d| d.id == id)
    }

    fn launch_allowed(&self) -> bool {
        self.service.status == ServiceStatus::Active
            && self.now_ms >= self.service.throttle.launch_not_before_ms
            && self.service.primary().rollout_state != RolloutState::Failed
    }

    fn wake_at(&mut self, at_ms: i64) {
        if at_ms > self.now_ms {
            self.wake_at_ms = Some(self.wake_at_ms.map_or(at_ms, |w| w.min(at_ms)));
        }
    }

    fn stop(&mut self, task: &'a ObservedTask, reason: String) {
        if self.stopped.insert(task.task_id.as_str()) {
            self.stops.push(Stop {
                task_id: task.task_id.clone(),
                reason,
            });
        }
    }

    /// The stoppedReason for a task the scheduler scales in or replaces.
    fn scaling_reason(&self, task: &ObservedTask) -> String {
        match (self.host(task), task.deployment_id.as_deref()) {
            (Host::Draining, _) => instance_draining_reason(),
            (_, Some(id)) if self.deployment_index(task).is_some() => scaling_activity_reason(id),
            _ => scaling_activity_reason(&self.service.primary().id),
        }
    }

    /// Stops every strategy shares: tasks on lost instances, tasks of no
    /// known deployment, tasks that failed their container health checks
    /// after the grace period.
    fn stop_unwanted(&mut self) {
        let service_name = self.service.service_name.clone();
        for task in self.tasks.clone() {
            if !matches!(task.phase, TaskPhase::Pending | TaskPhase::Running)
                || task.desired_stopped
            {
                continue;
            }
            match self.host(task) {
                Host::Disconnected => {
                    self.stop(task, agent_disconnected_reason());
                    continue;
                }
                Host::Deregistered => {
                    self.stop(task, instance_deregistered_reason());
                    continue;
                }
                _ => {}
            }
            if self.deployment_index(task).is_none() {
                let reason = self.scaling_reason(task);
                self.stop(task, reason);
                continue;
            }
            if task.phase == TaskPhase::Running && task.health == TaskHealth::Unhealthy {
                let started_at_ms = task.started_at_ms.unwrap_or(task.created_at_ms);
                let grace_ends_ms = started_at_ms + self.service.health_check_grace_period_ms;
                if self.now_ms >= grace_ends_ms {
                    let (message, reason) = match &task.load_balancer_failure {
                        Some(failure) => (
                            failure.event_message.clone(),
                            failure.stopped_reason.clone(),
                        ),
                        None => (
                            failed_health_checks_message(&service_name, &task.task_id),
                            failed_health_checks_reason(),
                        ),
                    };
                    self.service.record_event(self.now_ms, message);
                    self.stop(task, reason);
                } else {
                    self.wake_at(grace_ends_ms);
                }
            }
        }
    }

    fn launch(&mut self, count: u32, container_instance_id: Option<String>) {
        if count == 0 {
            return;
        }
        let primary = self.service.primary();
        self.launches.push(Launch {
            deployment_id: primary.id.clone(),
            task_definition_arn: primary.task_definition_arn.clone(),
            count,
            container_instance_id,
        });
    }

    fn launched_count(&self) -> u32 {
        self.launches.iter().map(|l| l.count).sum()
    }

    /// Counts, retirements, rollout completion, steady state, events.
    fn finish(mut self, original: &Service, desired_count: u32) -> Plan {
        let now_ms = self.now_ms;
        let name = self.service.service_name.clone();
        if !self.stops.is_empty() {
            let ids: Vec<String> = self.stops.iter().map(|s| s.task_id.clone()).collect();
            self.service
                .record_event(now_ms, stopped_tasks_message(&name, &ids));
        }
        self.update_counts(desired_count);
        self.retire_finished_deployments();
        let launched = self.launched_count();
        // COMPLETED once the desired count of PRIMARY tasks has settled:
        // RUNNING and healthy through the settle period.
        let primary_settled = self
            .live_tasks()
            .iter()
            .filter(|t| Self::in_deployment(t, &self.service.primary().id))
            .filter(|t| self.is_settled(t))
            .count() as u32;
        let active = self.service.status == ServiceStatus::Active;
        let only_primary = self.service.deployments.len() == 1;
        let primary = self.service.primary();
        if active
            && only_primary
            && primary.rollout_state == RolloutState::InProgress
            && launched == 0
            && primary.pending_count == 0
            && primary.running_count == desired_count
            && primary_settled == desired_count
        {
            let primary = self.service.primary_mut();
            primary.rollout_state = RolloutState::Completed;
            primary.rollout_state_reason = completed_reason(&primary.id);
            primary.outcome = Some(DeploymentOutcome::Successful);
            primary.finished_at_ms = Some(now_ms);
            let message = deployment_completed_message(&name, &primary.id);
            self.service.record_event(now_ms, message);
        }
        // Steady state is judged on the state this plan leads to, so planning
        // again after applying it agrees.
        let nothing_stopping = self
            .tasks
            .iter()
            .all(|t| !self.is_counted(t) || self.is_live(t));
        let nothing_draining = self
            .live_tasks()
            .iter()
            .all(|t| self.host(t) != Host::Draining);
        let steady = active
            && only_primary
            && launched == 0
            && nothing_stopping
            && nothing_draining
            && self.service.primary().rollout_state == RolloutState::Completed
            && self.service.running_count == desired_count
            && self.service.pending_count == 0;
        if !steady {
            self.service.steady_state = false;
        } else if !self.service.steady_state {
            self.service.steady_state = true;
            self.service
                .record_event(now_ms, steady_state_message(&name));
        }
        // Last, so that the same message is the newest next time too (events
        // repeat only after another one).
        if self.blocked_by_configuration {
            let message = deployment_configuration_blocks_message(&name);
            self.service.record_event(now_ms, message);
        }
        if self.service.status == ServiceStatus::Draining
            && launched == 0
            && self.tasks.iter().all(|t| !self.is_counted(t))
        {
            self.service.status = ServiceStatus::Inactive;
            self.service.updated_at_ms = now_ms;
        }
        if self.now_ms < self.service.throttle.launch_not_before_ms {
            let at_ms = self.service.throttle.launch_not_before_ms;
            self.wake_at(at_ms);
        }
        stamp_changed_deployments(original, &mut self.service, now_ms);
        Plan {
            service: self.service,
            launches: self.launches,
            stops: self.stops,
            wake_at_ms: self.wake_at_ms,
        }
    }

    fn update_counts(&mut self, desired_count: u32) {
        let live = self.live_tasks();
        self.service.desired_count = match self.service.scheduling_strategy {
            SchedulingStrategy::Replica => self.service.desired_count,
            SchedulingStrategy::Daemon => desired_count,
        };
        for (index, deployment) in self.service.deployments.iter_mut().enumerate() {
            let mine = live
                .iter()
                .filter(|t| Self::in_deployment(t, &deployment.id));
            deployment.pending_count = mine
                .clone()
                .filter(|t| t.phase == TaskPhase::Pending)
                .count() as u32;
            deployment.running_count =
                mine.filter(|t| t.phase == TaskPhase::Running).count() as u32;
            // Planned launches are not counted: the shell counts the tasks
            // it starts (`Service::record_started`), so the counts are
            // always what the stored tasks say.
            if index == 0 {
                deployment.desired_count = desired_count;
            } else {
                deployment.desired_count = 0;
            }
        }
        self.service.pending_count = self
            .service
            .deployments
            .iter()
            .map(|d| d.pending_count)
            .sum();
        self.service.running_count = self
            .service
            .deployments
            .iter()
            .map(|d| d.running_count)
            .sum();
    }

    /// ACTIVE deployments with no task left (live or still stopping) move to
    /// `finished_deployments`.
    fn retire_finished_deployments(&mut self) {
        for index in (1..self.service.deployments.len()).rev() {
            let id = self.service.deployments[index].id.clone();
            let has_tasks = self
                .tasks
                .iter()
                .any(|t| Self::in_deployment(t, &id) && self.is_counted(t));
            if !has_tasks {
                self.service.retire_deployment(index, self.now_ms);
            }
        }
    }
}

/// RUNNING and passing (or without) container health checks.
fn is_running_healthy(task: &ObservedTask) -> bool {
    task.phase == TaskPhase::Running
        && matches!(task.health, TaskHealth::NoHealthCheck | TaskHealth::Healthy)
}

/// Sets `updated_at_ms` on every deployment that differs from its original
/// in anything else.
fn stamp_changed_deployments(original: &Service, service: &mut Service, now_ms: i64) {
    let before: BTreeMap<&str, &Deployment> = original
        .deployments
        .iter()
        .chain(original.finished_deployments.iter())
        .map(|d| (d.id.as_str(), d))
        .collect();
    for deployment in service
        .deployments
        .iter_mut()
        .chain(service.finished_deployments.iter_mut())
    {
        let changed = match before.get(deployment.id.as_str()) {
            None => true,
            Some(old) => {
                let mut comparable = (*old).clone();
                comparable.updated_at_ms = deployment.updated_at_ms;
                comparable != *deployment
            }
        };
        if changed {
            deployment.updated_at_ms = now_ms;
        }
    }
}
