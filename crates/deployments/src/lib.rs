//! The service scheduler's decisions, as pure functions.
//!
//! A service's scheduling state ([`Service`]: its deployments, counters,
//! events and throttle) plus what is observed now (the service's tasks and
//! the cluster's container instances) goes in; [`plan`] returns the next
//! state and the actions that get there ([`Plan`]: tasks to launch, tasks to
//! stop). The shell in `api` applies the plan with compare-and-swap and calls
//! again whenever anything changes: level-triggered, idempotent, and the
//! same inputs always give the same plan.
//!
//! **Invariant:** no I/O, no clock, no randomness. Time arrives as `now_ms`;
//! new identifiers (deployment ids) arrive as arguments.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

mod events;
mod plan;
mod service;

pub use events::*;
pub use plan::{plan, settle_period_ms, DEFAULT_SETTLE_PERIOD_MS};
pub use service::*;

/// How many events a service keeps (newest first), as ECS does.
pub const MAX_EVENTS: usize = 100;
/// How many finished deployments a service remembers for
/// ListServiceDeployments / DescribeServiceDeployments.
pub const MAX_FINISHED_DEPLOYMENTS: usize = 50;
/// `stopCode` of every task the service scheduler stops.
pub const SERVICE_SCHEDULER_INITIATED: &str = "ServiceSchedulerInitiated";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceStatus {
    Active,
    Draining,
    Inactive,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Active => "ACTIVE",
            ServiceStatus::Draining => "DRAINING",
            ServiceStatus::Inactive => "INACTIVE",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchedulingStrategy {
    Replica,
    Daemon,
}

/// How the circuit breaker's failure threshold is computed from
/// `thresholdConfiguration.value` (ECS's `ThresholdType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThresholdType {
    /// `value` is the threshold itself.
    Count,
    /// `value` percent of the desired count, rounded up, within 3..=200.
    BoundedPercent,
    /// `value` percent of the desired count, rounded up, without bounds
    /// (at least 1: a threshold of 0 would fail a deployment with no
    /// failure).
    UnboundedPercent,
}

impl ThresholdType {
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdType::Count => "COUNT",
            ThresholdType::BoundedPercent => "BOUNDED_PERCENT",
            ThresholdType::UnboundedPercent => "UNBOUNDED_PERCENT",
        }
    }
}

/// `deploymentCircuitBreaker.thresholdConfiguration`; ECS's default is
/// `BOUNDED_PERCENT` 50.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureThreshold {
    pub threshold_type: ThresholdType,
    pub value: u32,
}

impl Default for FailureThreshold {
    fn default() -> FailureThreshold {
        FailureThreshold {
            threshold_type: ThresholdType::BoundedPercent,
            value: 50,
        }
    }
}

fn default_true() -> bool {
    true
}

/// `deploymentCircuitBreaker`. The defaults are ECS's: off, no rollback,
/// `resetOnHealthyTask` true, threshold `BOUNDED_PERCENT` 50.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
    /// A task of the deployment that settles (RUNNING and healthy through
    /// its settle period, see [`settle_period_ms`]) resets the
    /// deployment's `failedTasks` to 0; false: failures add up over the
    /// whole deployment.
    #[serde(default = "default_true")]
    pub reset_on_healthy_task: bool,
    #[serde(default)]
    pub threshold: FailureThreshold,
}

impl Default for CircuitBreaker {
    fn default() -> CircuitBreaker {
        CircuitBreaker {
            enable: false,
            rollback: false,
            reset_on_healthy_task: true,
            threshold: FailureThreshold::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentConfiguration {
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    pub circuit_breaker: CircuitBreaker,
}

impl DeploymentConfiguration {
    /// ECS's defaults: 100/200 for REPLICA, 0/100 for DAEMON; breaker off.
    pub fn default_for(strategy: SchedulingStrategy) -> DeploymentConfiguration {
        match strategy {
            SchedulingStrategy::Replica => DeploymentConfiguration {
                minimum_healthy_percent: 100,
                maximum_percent: 200,
                circuit_breaker: CircuitBreaker::default(),
            },
            SchedulingStrategy::Daemon => DeploymentConfiguration {
                minimum_healthy_percent: 0,
                maximum_percent: 100,
                circuit_breaker: CircuitBreaker::default(),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentStatus {
    /// The newest deployment: the one the service converges to.
    Primary,
    /// An older deployment whose tasks are being replaced.
    Active,
    /// Finished: no tasks left (kept only in `finished_deployments`).
    Inactive,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Primary => "PRIMARY",
            DeploymentStatus::Active => "ACTIVE",
            DeploymentStatus::Inactive => "INACTIVE",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RolloutState {
    InProgress,
    Completed,
    Failed,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::InProgress => "IN_PROGRESS",
            RolloutState::Completed => "COMPLETED",
            RolloutState::Failed => "FAILED",
        }
    }
}

/// How a deployment ended, for the ServiceDeployment API
/// (`SUCCESSFUL`, `STOPPED`, `ROLLBACK_SUCCESSFUL`, ...): set once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentOutcome {
    /// Reached COMPLETED.
    Successful,
    /// Replaced by a newer deployment (UpdateService) before completing.
    Stopped,
    /// Failed by the circuit breaker (with or without rollback).
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// `ecs-svc/` followed by 19 digits; the tasks' `startedBy`.
    pub id: String,
    pub status: DeploymentStatus,
    pub task_definition_arn: String,
    pub desired_count: u32,
    pub pending_count: u32,
    pub running_count: u32,
    pub failed_tasks: u32,
    pub rollout_state: RolloutState,
    pub rollout_state_reason: String,
    /// The configuration this deployment was started with.
    pub deployment_configuration: DeploymentConfiguration,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// When it stopped being PRIMARY-in-progress: completed, failed or
    /// superseded.
    pub finished_at_ms: Option<i64>,
    pub outcome: Option<DeploymentOutcome>,
    /// Set on a deployment the circuit breaker started: the id of the failed
    /// deployment it rolls back.
    pub rollback_of: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEvent {
    /// UUID-shaped, unique within the service.
    pub id: String,
    pub created_at_ms: i64,
    pub message: String,
}

/// ECS's back-off for a service whose tasks keep failing to start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Failed tasks since the last task that reached RUNNING.
    pub consecutive_failures: u32,
    /// No launches before this instant (0: not throttled).
    pub launch_not_before_ms: i64,
}

/// The scheduling state of one service, stored in the service's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub service_name: String,
    pub status: ServiceStatus,
    pub scheduling_strategy: SchedulingStrategy,
    /// REPLICA: what the user asked; DAEMON: kept equal to the number of
    /// instances that should run the daemon (as ECS reports it).
    pub desired_count: u32,
    pub deployment_configuration: DeploymentConfiguration,
    pub health_check_grace_period_ms: i64,
    /// PRIMARY first, then ACTIVE ones, newest first.
    pub deployments: Vec<Deployment>,
    /// Deployments with no tasks left, newest first, at most
    /// [`MAX_FINISHED_DEPLOYMENTS`].
    pub finished_deployments: Vec<Deployment>,
    /// Newest first, at most [`MAX_EVENTS`].
    pub events: Vec<ServiceEvent>,
    pub next_event_number: u64,
    /// Service counts over all deployments: tasks in RUNNING / in a pending
    /// state, with desiredStatus RUNNING.
    pub running_count: u32,
    pub pending_count: u32,
    /// Whether the steady-state event was written since the last change.
    pub steady_state: bool,
    pub throttle: Throttle,
    /// Stopped tasks already counted as failures (pruned to tasks still
    /// observed), so each failure counts once.
    pub counted_failures: BTreeSet<String>,
    /// Tasks seen settled: RUNNING and healthy through their settle period
    /// (pruned to tasks still observed). A settled task's later exit is not
    /// a failure of its deployment.
    #[serde(default)]
    pub settled_tasks: BTreeSet<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A task's phase as the planner needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskPhase {
    /// PROVISIONING, PENDING, ACTIVATING.
    Pending,
    Running,
    /// DEACTIVATING, STOPPING, DEPROVISIONING.
    Stopping,
    Stopped,
}

/// The task's health as ECS derives it from its essential containers'
/// health checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskHealth {
    /// No essential container has a health check.
    NoHealthCheck,
    Unknown,
    Healthy,
    Unhealthy,
}

/// Why a stopped task stopped, as far as failure counting cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// Stopped on purpose: StopTask by a user, or the service scheduler
    /// scaling in / replacing (not for failed health checks).
    Requested,
    /// Stopped by the service scheduler for failing its health checks.
    FailedHealthChecks,
    /// An essential container exited with a non-zero exit code or was
    /// killed for running out of memory.
    EssentialContainerFailed,
    /// Anything else: an essential container exited with 0, the image could
    /// not be pulled, the container could not start, removed behind Berth's
    /// back.
    Failed,
}

/// One of the service's tasks (group `service:<name>`), as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTask {
    pub task_id: String,
    /// The task's `startedBy`: the deployment that launched it.
    pub deployment_id: Option<String>,
    pub container_instance_id: Option<String>,
    pub phase: TaskPhase,
    /// desiredStatus is STOPPED.
    pub desired_stopped: bool,
    pub health: TaskHealth,
    pub created_at_ms: i64,
    /// When it reached RUNNING (None if it never did).
    pub started_at_ms: Option<i64>,
    /// How long it must stay RUNNING and healthy before it counts as
    /// settled ([`settle_period_ms`]).
    pub settle_period_ms: i64,
    pub stopped_at_ms: Option<i64>,
    /// Set once the task is STOPPED.
    pub stop_cause: Option<StopCause>,
    /// Set when the task is unhealthy because a load balancer's health
    /// checks fail its target: what to say when it is replaced.
    pub load_balancer_failure: Option<LoadBalancerFailure>,
    /// Task scale-in protection (UpdateTaskProtection): the instant it
    /// expires, if it was set. Protected while `now_ms` is before it: the
    /// scheduler never stops the task to scale in or to replace it in a
    /// deployment.
    pub scale_in_protected_until_ms: Option<i64>,
}

impl ObservedTask {
    /// Task scale-in protection is on at `now_ms`.
    pub fn is_scale_in_protected(&self, now_ms: i64) -> bool {
        self.scale_in_protected_until_ms
            .is_some_and(|until_ms| now_ms < until_ms)
    }
}

/// How a task whose load balancer target is unhealthy is reported when it is
/// replaced (the shell words it: it knows the target group and the target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadBalancerFailure {
    /// The service event, e.g. `(service web) (instance i-1) (port 32768) is
    /// unhealthy in (target-group …) due to (reason …).`
    pub event_message: String,
    /// The task's stoppedReason, e.g. `Task failed ELB health checks in
    /// (target-group …)`.
    pub stopped_reason: String,
}

/// A container instance of the service's cluster, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedInstance {
    pub container_instance_id: String,
    /// ACTIVE (false: DRAINING, or anything else that takes no tasks).
    pub active: bool,
    pub draining: bool,
    /// Its agent is connected (disconnected past the agent timeout: false).
    pub agent_connected: bool,
    /// DAEMON only: the instance satisfies the service's placement
    /// constraints and the task definition's requirements, so a daemon task
    /// belongs on it (computed by the shell with the scheduler's rules).
    pub daemon_eligible: bool,
}

/// Start `count` tasks of a deployment: REPLICA ones wherever the scheduler
/// places them; DAEMON ones on `container_instance_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub deployment_id: String,
    pub task_definition_arn: String,
    pub count: u32,
    pub container_instance_id: Option<String>,
}

/// Stop one task: desiredStatus STOPPED, stopCode
/// [`SERVICE_SCHEDULER_INITIATED`], `stoppedReason` as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    pub task_id: String,
    pub reason: String,
}

/// What [`plan`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The service's next scheduling state (counts, rollout states, events,
    /// throttle, status). Write it back when it differs from the input.
    pub service: Service,
    pub launches: Vec<Launch>,
    pub stops: Vec<Stop>,
    /// Plan again at this instant even if nothing changes (a grace period
    /// or a throttle ends).
    pub wake_at_ms: Option<i64>,
}
