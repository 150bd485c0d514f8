//! The agent's decisions: desired tasks + observed containers + what the
//! agent remembers + `now` → a [`Plan`] of runtime actions, reports and
//! memory updates.
//!
//! Pure and level-triggered: [`reconcile`] never depends on why it was
//! called, and calling it again before the plan was carried out yields the
//! same plan (the shell does not start a task's actions while that task's
//! previous actions are still running). Everything the agent must remember
//! between calls (pull results, failures, what was reported) lives in
//! [`LocalState`], changed only through [`LocalUpdate`] values, so tests can
//! drive the agent step by step.
//!
//! **Architecture Invariant:** no tokio, no I/O, no clock in this module.

use std::collections::{BTreeMap, BTreeSet};

use ecs_wire::{ContainerCondition, HealthStatus};
use model::agent::{DesiredTask, LABEL_CONTAINER_NAME, LABEL_TASK_ARN};
use model::task::{ContainerStatus, DesiredStatus, NetworkBinding, TaskContainer, TaskStatus};
use runtime::{ContainerSpec, ContainerState, Health, VolumeSpec};

use crate::awslogs::{AwsLogsConfig, LABEL_AWSLOGS_OPTIONS};
use crate::blueprint::{
    self, AgentFacts, ContainerBlueprint, Dependency, RegistryCredentials, TaskBlueprint,
    DEFAULT_STOP_TIMEOUT_S,
};
use crate::report::{
    report_call, ContainerReport, ReportCall, TaskReport, ESSENTIAL_CONTAINER_EXITED,
    OUT_OF_MEMORY, SIGKILL_EXIT_CODE,
};

/// When to pull an image (ECS's `ECS_IMAGE_PULL_BEHAVIOR`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImagePullBehavior {
    /// Pull only when the image is not present (`prefer-cached`). Berth's
    /// default: tests and demos build images locally.
    #[default]
    PreferCached,
    /// Always pull; a failed pull stops the task (`always`).
    Always,
    /// Always pull, but run the present image when the pull fails (ECS's `default`).
    Default,
}

/// What to do about one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PullDecision {
    UseCached,
    Pull { fall_back_to_cached: bool },
}

impl ImagePullBehavior {
    /// Parses ECS's words: `prefer-cached`, `always`, `default`.
    pub fn parse(word: &str) -> Option<ImagePullBehavior> {
        match word {
            "prefer-cached" => Some(ImagePullBehavior::PreferCached),
            "always" => Some(ImagePullBehavior::Always),
            "default" => Some(ImagePullBehavior::Default),
            _ => None,
        }
    }

    pub fn decide(self, present: bool) -> PullDecision {
        match self {
            ImagePullBehavior::PreferCached if present => PullDecision::UseCached,
            ImagePullBehavior::PreferCached | ImagePullBehavior::Always => PullDecision::Pull {
                fall_back_to_cached: false,
            },
            ImagePullBehavior::Default => PullDecision::Pull {
                fall_back_to_cached: present,
            },
        }
    }
}

/// How long past its cleanup time a stopped awslogs container whose output
/// could not be delivered is kept before it is removed anyway (the agent
/// logs a warning then; what was not delivered is lost with it).
pub const LOG_DELIVERY_GRACE_MS: i64 = 60 * 60 * 1000;

/// Settings of the reconciler.
#[derive(Clone, Debug, Default)]
pub struct ReconcileConfig {
    pub facts: AgentFacts,
    /// How long a stopped task's containers are kept (for `docker logs`)
    /// before they are removed (ECS's `ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION`).
    pub task_cleanup_wait_ms: i64,
    pub image_pull_behavior: ImagePullBehavior,
}

/// What became of an image a task needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageOutcome {
    Ready {
        /// ECS `imageDigest` of the image, learnt once when it became ready;
        /// `None` for an image without a manifest digest (built locally).
        image_digest: Option<String>,
        pull_started_at_ms: i64,
        pull_stopped_at_ms: i64,
    },
    Failed {
        message: String,
        pull_started_at_ms: i64,
        pull_stopped_at_ms: i64,
    },
}

impl ImageOutcome {
    fn times(&self) -> (i64, i64) {
        match self {
            ImageOutcome::Ready {
                pull_started_at_ms,
                pull_stopped_at_ms,
                ..
            }
            | ImageOutcome::Failed {
                pull_started_at_ms,
                pull_stopped_at_ms,
                ..
            } => (*pull_started_at_ms, *pull_stopped_at_ms),
        }
    }
}

/// What the agent remembers about one container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalContainer {
    pub runtime_id: Option<String>,
    /// Set when the container failed before running (pull, create, start,
    /// dependencies); it will not be started.
    pub failure_reason: Option<String>,
    /// When it started waiting for its dependencies (for `startTimeout`).
    pub waiting_since_ms: Option<i64>,
    /// The last exit Docker reported (kept in case the container vanishes).
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    /// The last published ports seen (Docker forgets them on exit; ECS
    /// keeps reporting them).
    pub network_bindings: Vec<NetworkBinding>,
    pub restart_count: u32,
    /// Removed by the agent's cleanup.
    pub removed: bool,
}

/// What the agent remembers about one task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalTask {
    /// By image reference.
    pub images: BTreeMap<String, ImageOutcome>,
    /// Docker volumes created for the task → whether they are task-scoped.
    pub volumes_created: BTreeMap<String, bool>,
    /// By ECS container name.
    pub containers: BTreeMap<String, LocalContainer>,
    /// The task is being stopped by the agent (not the user).
    pub stopping: bool,
    /// The task's `stoppedReason` when the agent stops it.
    pub stop_reason: Option<String>,
    pub execution_stopped_at_ms: Option<i64>,
    /// The last report handed to the reporter (delivered with retries).
    pub reported: Option<TaskReport>,
    /// No runtime actions before this time (after a transient runtime failure).
    pub retry_after_ms: Option<i64>,
    /// awslogs containers whose output was delivered up to their stop, by
    /// Docker id → the start (`started_at_ms`) that run began with.
    pub logs_delivered: BTreeMap<String, i64>,
}

/// Everything the agent remembers, by task ARN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalState {
    pub tasks: BTreeMap<String, LocalTask>,
}

/// One change to [`LocalState`] (of the task it is filed under).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalUpdate {
    /// The image is present; `image_digest` is its manifest digest
    /// ([`runtime::ContainerRuntime::image_digest`]), reported as every
    /// container's ECS `imageDigest` that runs it.
    ImageReady {
        image: String,
        image_digest: Option<String>,
        pull_started_at_ms: i64,
        pull_stopped_at_ms: i64,
    },
    ImageFailed {
        image: String,
        message: String,
        pull_started_at_ms: i64,
        pull_stopped_at_ms: i64,
    },
    VolumeCreated {
        name: String,
        task_scoped: bool,
    },
    ContainerCreated {
        container_name: String,
        runtime_id: String,
    },
    /// What Docker said about the container, kept for later reports.
    ContainerSeen {
        container_name: String,
        runtime_id: String,
        exit_code: Option<i64>,
        oom_killed: bool,
        network_bindings: Option<Vec<NetworkBinding>>,
    },
    ContainerFailed {
        container_name: String,
        reason: String,
    },
    ContainerWaiting {
        container_name: String,
        since_ms: i64,
    },
    ContainerRestarted {
        container_name: String,
    },
    ContainerRemoved {
        container_name: String,
    },
    /// The agent stops the task, with this `stoppedReason`.
    TaskStopping {
        reason: Option<String>,
    },
    ExecutionStopped {
        at_ms: i64,
    },
    ReportQueued(TaskReport),
    /// The task-scoped volumes are being removed with the last containers.
    VolumesReleased,
    RetryAfter {
        at_ms: i64,
    },
    /// An awslogs container's output was delivered up to its stop (the
    /// shell's log shipper finished).
    LogsDelivered {
        runtime_id: String,
        started_at_ms: i64,
    },
    /// The task is done with: forget it.
    Forget,
}

impl LocalState {
    /// The container logs with awslogs, has run, and its output since that
    /// start has not been delivered yet: it must not be removed.
    pub fn awaits_log_delivery(&self, container: &ContainerState) -> bool {
        let Some(started_at_ms) = container.started_at_ms else {
            return false;
        };
        if !container.labels.contains_key(LABEL_AWSLOGS_OPTIONS) {
            return false;
        }
        let delivered = container
            .labels
            .get(LABEL_TASK_ARN)
            .and_then(|task_arn| self.tasks.get(task_arn))
            .and_then(|task| task.logs_delivered.get(&container.id));
        delivered != Some(&started_at_ms)
    }

    pub fn apply(&mut self, task_arn: &str, update: &LocalUpdate) {
        if *update == LocalUpdate::Forget {
            self.tasks.remove(task_arn);
            return;
        }
        self.tasks
            .entry(task_arn.to_string())
            .or_default()
            .apply(update);
    }
}

impl LocalTask {
    fn container_mut(&mut self, name: &str) -> &mut LocalContainer {
        self.containers.entry(name.to_string()).or_default()
    }

    pub fn apply(&mut self, update: &LocalUpdate) {
        match update {
            LocalUpdate::ImageReady {
                image,
                image_digest,
                pull_started_at_ms,
                pull_stopped_at_ms,
            } => {
                self.images.insert(
                    image.clone(),
                    ImageOutcome::Ready {
                        image_digest: image_digest.clone(),
                        pull_started_at_ms: *pull_started_at_ms,
                        pull_stopped_at_ms: *pull_stopped_at_ms,
                    },
                );
            }
            LocalUpdate::ImageFailed {
                image,
                message,
                pull_started_at_ms,
                pull_stopped_at_ms,
            } => {
                self.images.insert(
                    image.clone(),
                    ImageOutcome::Failed {
                        message: message.clone(),
                        pull_started_at_ms: *pull_started_at_ms,
                        pull_stopped_at_ms: *pull_stopped_at_ms,
                    },
                );
            }
            LocalUpdate::VolumeCreated { name, task_scoped } => {
                self.volumes_created.insert(name.clone(), *task_scoped);
            }
            LocalUpdate::ContainerCreated {
                container_name,
                runtime_id,
            } => self.container_mut(container_name).runtime_id = Some(runtime_id.clone()),
            LocalUpdate::ContainerSeen {
                container_name,
                runtime_id,
                exit_code,
                oom_killed,
                network_bindings,
            } => {
                let container = self.container_mut(container_name);
                container.runtime_id = Some(runtime_id.clone());
                if exit_code.is_some() {
                    container.exit_code = *exit_code;
                    container.oom_killed = *oom_killed;
                }
                if let Some(bindings) = network_bindings {
                    container.network_bindings = bindings.clone();
                }
            }
            LocalUpdate::ContainerFailed {
                container_name,
                reason,
            } => {
                let container = self.container_mut(container_name);
                if container.failure_reason.is_none() {
                    container.failure_reason = Some(reason.clone());
                }
            }
            LocalUpdate::ContainerWaiting {
                container_name,
                since_ms,
            } => {
                self.container_mut(container_name)
                    .waiting_since_ms
                    .get_or_insert(*since_ms);
            }
            LocalUpdate::ContainerRestarted { container_name } => {
                self.container_mut(container_name).restart_count += 1;
            }
            LocalUpdate::ContainerRemoved { container_name } => {
                self.container_mut(container_name).removed = true;
            }
            LocalUpdate::TaskStopping { reason } => {
                if !self.stopping {
                    self.stopping = true;
                    self.stop_reason = reason.clone();
                }
            }
            LocalUpdate::ExecutionStopped { at_ms } => {
                self.execution_stopped_at_ms.get_or_insert(*at_ms);
            }
            LocalUpdate::ReportQueued(report) => self.reported = Some(report.clone()),
            LocalUpdate::VolumesReleased => {
                self.volumes_created.retain(|_, task_scoped| !*task_scoped)
            }
            LocalUpdate::RetryAfter { at_ms } => self.retry_after_ms = Some(*at_ms),
            LocalUpdate::LogsDelivered {
                runtime_id,
                started_at_ms,
            } => {
                self.logs_delivered
                    .insert(runtime_id.clone(), *started_at_ms);
            }
            LocalUpdate::Forget => {}
        }
    }
}

/// One runtime operation. A task's actions run in order; the first failure
/// ends the batch (the next reconcile plans again from what happened).
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Make the image present, pulling as `behavior` says.
    EnsureImage {
        image: String,
        credentials: RegistryCredentials,
        behavior: ImagePullBehavior,
    },
    CreateVolume {
        spec: VolumeSpec,
        task_scoped: bool,
    },
    CreateContainer {
        container_name: String,
        spec: Box<ContainerSpec>,
    },
    /// Create an awslogs container's log stream (and group, with
    /// `awslogs-create-group`) before it starts; failing as Docker's awslogs
    /// driver fails the start.
    PrepareLogStream {
        container_name: String,
        docker_name: String,
        awslogs: Box<AwsLogsConfig>,
    },
    /// Start (or restart) a container, addressed by its Docker name.
    StartContainer {
        container_name: String,
        docker_name: String,
    },
    /// SIGTERM, then SIGKILL after `timeout_s`.
    StopContainer {
        container_name: String,
        runtime_id: String,
        timeout_s: u32,
    },
    RemoveContainer {
        container_name: String,
        runtime_id: String,
    },
    RemoveVolume {
        name: String,
    },
}

/// What to do for one task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskPlan {
    pub task_arn: String,
    /// Apply before anything else.
    pub updates: Vec<LocalUpdate>,
    /// Runtime actions, in order.
    pub actions: Vec<Action>,
    /// Calls to the control plane, in order.
    pub reports: Vec<ReportCall>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Only tasks with something to do.
    pub tasks: Vec<TaskPlan>,
    /// When to reconcile again even if nothing happens (start timeouts,
    /// cleanup, retries).
    pub next_wakeup_ms: Option<i64>,
}

impl Plan {
    pub fn task(&self, task_arn: &str) -> Option<&TaskPlan> {
        self.tasks.iter().find(|t| t.task_arn == task_arn)
    }
}

/// Decides what to do now. See the module docs.
pub fn reconcile(
    config: &ReconcileConfig,
    desired: &[DesiredTask],
    observed: &[ContainerState],
    local: &LocalState,
    now_ms: i64,
) -> Plan {
    let mut by_task: BTreeMap<&str, Vec<&ContainerState>> = BTreeMap::new();
    for container in observed {
        if let Some(task_arn) = container.labels.get(LABEL_TASK_ARN) {
            by_task.entry(task_arn).or_default().push(container);
        }
    }
    let task_arns: BTreeSet<&str> = desired
        .iter()
        .map(|t| t.task_arn.as_str())
        .chain(by_task.keys().copied())
        .chain(local.tasks.keys().map(String::as_str))
        .collect();
    let mut plan = Plan::default();
    for task_arn in task_arns {
        let mut work = TaskWork {
            config,
            task_arn,
            now_ms,
            observed: by_task.remove(task_arn).unwrap_or_default(),
            had_local: local.tasks.contains_key(task_arn),
            local: local.tasks.get(task_arn).cloned().unwrap_or_default(),
            plan: TaskPlan {
                task_arn: task_arn.to_string(),
                ..TaskPlan::default()
            },
            wakeup_ms: None,
        };
        match desired.iter().find(|t| t.task_arn == task_arn) {
            Some(task) if task.last_status == TaskStatus::Stopped => work.settled(Some(task)),
            Some(task) => work.active(task),
            None => work.settled(None),
        }
        if let Some(at) = work.wakeup_ms {
            plan.next_wakeup_ms = Some(plan.next_wakeup_ms.map_or(at, |t: i64| t.min(at)));
        }
        let task_plan = work.plan;
        if !(task_plan.updates.is_empty()
            && task_plan.actions.is_empty()
            && task_plan.reports.is_empty())
        {
            plan.tasks.push(task_plan);
        }
    }
    plan
}

/// Where one container is in its life, as far as the agent can tell.
#[derive(Clone, Debug)]
enum Phase<'a> {
    NotCreated,
    Created(&'a ContainerState),
    Running(&'a ContainerState),
    Exited(&'a ContainerState),
    /// It existed and is gone, not removed by the agent.
    Vanished {
        runtime_id: Option<String>,
        exit_code: Option<i64>,
    },
    /// It failed before running and will not be started.
    Failed(String),
    /// The agent removed it during cleanup.
    Removed,
}

impl Phase<'_> {
    fn has_started(&self) -> bool {
        match self {
            Phase::Running(_) | Phase::Exited(_) | Phase::Vanished { .. } | Phase::Removed => true,
            Phase::Created(state) => state.started_at_ms.is_some(),
            Phase::NotCreated | Phase::Failed(_) => false,
        }
    }
}

/// Whether a dependency is met.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DependencyState {
    Met,
    Waiting,
    /// Can never be met; the reason says why.
    Unmet(String),
}

fn condition_word(condition: ContainerCondition) -> &'static str {
    condition.as_str()
}

fn dependency_state(
    dependency: &Dependency,
    phase: &Phase<'_>,
    started_this_round: bool,
    restarting: bool,
) -> DependencyState {
    let unmet = |why: String| {
        DependencyState::Unmet(format!(
            "ContainerDependencyError: dependency '{}' (condition {}) cannot be met: {why}",
            dependency.container_name,
            condition_word(dependency.condition)
        ))
    };
    if let Phase::Failed(reason) = phase {
        return unmet(format!("it did not start ({reason})"));
    }
    let exited = !restarting
        && matches!(
            phase,
            Phase::Exited(_) | Phase::Vanished { .. } | Phase::Removed
        );
    match dependency.condition {
        ContainerCondition::Start => {
            if phase.has_started() || started_this_round {
                DependencyState::Met
            } else {
                DependencyState::Waiting
            }
        }
        ContainerCondition::Complete => {
            if exited {
                DependencyState::Met
            } else {
                DependencyState::Waiting
            }
        }
        ContainerCondition::Success => match phase {
            Phase::Exited(state) if !restarting => match state.exit_code {
                Some(0) => DependencyState::Met,
                code => unmet(format!(
                    "it exited with code {}",
                    code.map_or("unknown".to_string(), |c| c.to_string())
                )),
            },
            _ if exited => unmet("it is gone and its exit code is unknown".to_string()),
            _ => DependencyState::Waiting,
        },
        ContainerCondition::Healthy => match phase {
            Phase::Running(state) if state.health == Some(Health::Healthy) => DependencyState::Met,
            _ if exited => unmet("it stopped before it was healthy".to_string()),
            _ => DependencyState::Waiting,
        },
    }
}

fn runtime_binding(binding: &runtime::ActualBinding) -> NetworkBinding {
    NetworkBinding {
        bind_ip: binding.host_ip.clone(),
        container_port: binding.container_port,
        host_port: binding.host_port,
        protocol: binding.protocol.as_str().to_string(),
    }
}

fn health_status(health: Option<Health>) -> Option<HealthStatus> {
    health.map(|h| match h {
        Health::Healthy => HealthStatus::Healthy,
        Health::Unhealthy => HealthStatus::Unhealthy,
        Health::Starting => HealthStatus::Unknown,
    })
}

/// The reconciliation of one task.
struct TaskWork<'a> {
    config: &'a ReconcileConfig,
    task_arn: &'a str,
    now_ms: i64,
    observed: Vec<&'a ContainerState>,
    had_local: bool,
    /// Working copy: updates are applied here as they are decided.
    local: LocalTask,
    plan: TaskPlan,
    wakeup_ms: Option<i64>,
}

impl<'a> TaskWork<'a> {
    fn update(&mut self, update: LocalUpdate) {
        self.local.apply(&update);
        self.plan.updates.push(update);
    }

    /// For containers whose definition is unknown here.
    fn default_stop_timeout_s(&self) -> u32 {
        match self.config.facts.default_stop_timeout_s {
            0 => DEFAULT_STOP_TIMEOUT_S,
            seconds => seconds,
        }
    }

    fn wake_at(&mut self, at_ms: i64) {
        self.wakeup_ms = Some(self.wakeup_ms.map_or(at_ms, |t| t.min(at_ms)));
    }

    /// Runtime actions may run now (no transient failure to wait out).
    fn may_act(&mut self) -> bool {
        match self.local.retry_after_ms {
            Some(at) if at > self.now_ms => {
                self.wake_at(at);
                false
            }
            _ => true,
        }
    }

    /// [`LocalState::awaits_log_delivery`] for a container of this task.
    fn logs_pending(&self, container: &ContainerState) -> bool {
        let Some(started_at_ms) = container.started_at_ms else {
            return false;
        };
        container.labels.contains_key(LABEL_AWSLOGS_OPTIONS)
            && self.local.logs_delivered.get(&container.id) != Some(&started_at_ms)
    }

    /// The container named `name` (the running one if Docker somehow has two).
    fn observed_container(&self, name: &str) -> Option<&'a ContainerState> {
        let mut matching = self
            .observed
            .iter()
            .copied()
            .filter(|c| c.labels.get(LABEL_CONTAINER_NAME).map(String::as_str) == Some(name));
        let first = matching.next()?;
        if first.status.is_running() {
            return Some(first);
        }
        Some(matching.find(|c| c.status.is_running()).unwrap_or(first))
    }

    /// A task the control plane has finished with (STOPPED) or does not
    /// know: stop what still runs, remove containers once the cleanup wait
    /// has passed, then forget the task.
    fn settled(&mut self, task: Option<&DesiredTask>) {
        let blueprint = task.and_then(|t| blueprint::task_blueprint(t, &self.config.facts).ok());
        if self.observed.is_empty() {
            if self.had_local {
                let volumes: Vec<String> = self
                    .local
                    .volumes_created
                    .iter()
                    .filter(|(_, task_scoped)| **task_scoped)
                    .map(|(name, _)| name.clone())
                    .collect();
                if self.may_act() {
                    for name in volumes {
                        self.plan.actions.push(Action::RemoveVolume { name });
                    }
                }
                self.update(LocalUpdate::Forget);
            }
            return;
        }
        if !self.may_act() {
            return;
        }
        let mut all_removable = true;
        let mut removals = Vec::new();
        let mut volumes: BTreeSet<String> = BTreeSet::new();
        for container in self.observed.clone() {
            let name = container
                .labels
                .get(LABEL_CONTAINER_NAME)
                .cloned()
                .unwrap_or_default();
            volumes.extend(blueprint::labelled_task_volumes(&container.labels));
            if container.status.is_running() {
                let timeout_s = blueprint
                    .as_ref()
                    .and_then(|b| b.container(&name))
                    .map_or(self.default_stop_timeout_s(), |c| c.stop_timeout_s);
                self.plan.actions.push(Action::StopContainer {
                    container_name: name,
                    runtime_id: container.id.clone(),
                    timeout_s,
                });
                all_removable = false;
                continue;
            }
            let mut removable_at_ms = container.finished_at_ms.map_or(self.now_ms, |finished| {
                finished + self.config.task_cleanup_wait_ms
            });
            if self.logs_pending(container) {
                // Its output is still being delivered: keep it (Docker's
                // log is the only copy), within reason.
                removable_at_ms += LOG_DELIVERY_GRACE_MS;
            }
            if removable_at_ms <= self.now_ms {
                removals.push(Action::RemoveContainer {
                    container_name: name,
                    runtime_id: container.id.clone(),
                });
            } else {
                all_removable = false;
                self.wake_at(removable_at_ms);
            }
        }
        self.plan.actions.extend(removals);
        if all_removable {
            if let Some(blueprint) = &blueprint {
                volumes.extend(blueprint.task_scoped_volume_names());
            }
            volumes.extend(
                self.local
                    .volumes_created
                    .iter()
                    .filter(|(_, task_scoped)| **task_scoped)
                    .map(|(name, _)| name.clone()),
            );
            if !volumes.is_empty() {
                for name in volumes {
                    self.plan.actions.push(Action::RemoveVolume { name });
                }
                self.update(LocalUpdate::VolumesReleased);
            }
        }
    }

    /// A task the control plane still considers live.
    fn active(&mut self, task: &'a DesiredTask) {
        let blueprint = match blueprint::task_blueprint(task, &self.config.facts) {
            Ok(blueprint) => blueprint,
            Err(unsupported) => {
                self.update(LocalUpdate::TaskStopping {
                    reason: Some(unsupported.reason),
                });
                self.stop_without_blueprint(task);
                return;
            }
        };
        // Remember what Docker says, for reports after the container is gone.
        for container in &blueprint.containers {
            if let Some(state) = self.observed_container(&container.name) {
                self.remember(&container.name, state);
            }
        }
        let mut phases: BTreeMap<String, Phase<'a>> = blueprint
            .containers
            .iter()
            .map(|c| (c.name.clone(), self.phase(c, task)))
            .collect();

        let mut restarting: BTreeSet<String> = BTreeSet::new();
        let stopping_by_user = task.desired_status == DesiredStatus::Stopped;
        if !stopping_by_user && !self.local.stopping {
            for container in &blueprint.containers {
                if let (Phase::Exited(state), Some(policy)) =
                    (&phases[&container.name], &container.restart_policy)
                {
                    let ran_for_ms = state
                        .started_at_ms
                        .map_or(0, |started| self.now_ms - started);
                    if policy.should_restart(state.exit_code.unwrap_or(0), ran_for_ms) {
                        restarting.insert(container.name.clone());
                    }
                }
            }
            self.resolve_dependencies(&blueprint, &mut phases, &restarting);
            if let Some(reason) = essential_failure(&blueprint, &phases, &restarting) {
                self.update(LocalUpdate::TaskStopping {
                    reason: Some(reason),
                });
                restarting.clear();
            }
        }
        let stopping = stopping_by_user || self.local.stopping;
        if stopping {
            self.plan_stop(&blueprint, &phases);
        } else {
            self.plan_start(&blueprint, &phases, &restarting);
        }
        let next = self.task_report(task, &blueprint, &phases, &restarting, stopping);
        if next.status == TaskStatus::Stopped
            && self.told_status(task) < TaskStatus::Running
            && all_started(&blueprint, &phases)
        {
            // Every container started, but the task stops before RUNNING was
            // reported (an essential container exited at once): the task did
            // run, as ECS would have reported; say so first.
            let mut running = next.clone();
            running.status = TaskStatus::Running;
            running.reason = None;
            running.execution_stopped_at_ms = None;
            for container in &mut running.containers {
                if container.runtime_id.is_some() {
                    container.status = ContainerStatus::Running;
                    container.exit_code = None;
                    container.reason = None;
                }
            }
            self.queue_report(task, running);
        }
        self.queue_report(task, next);
    }

    /// The task status the control plane has been told (or knows).
    fn told_status(&self, task: &DesiredTask) -> TaskStatus {
        self.local
            .reported
            .as_ref()
            .map_or(task.last_status, |r| r.status.max(task.last_status))
    }

    fn remember(&mut self, name: &str, state: &ContainerState) {
        let known = self.local.containers.get(name).cloned().unwrap_or_default();
        let exit_code = state.exit_code.filter(|_| state.status.has_stopped());
        let bindings: Vec<NetworkBinding> =
            state.port_bindings.iter().map(runtime_binding).collect();
        let new_bindings =
            (!bindings.is_empty() && bindings != known.network_bindings).then_some(bindings);
        let changed = known.runtime_id.as_deref() != Some(state.id.as_str())
            || (exit_code.is_some()
                && (exit_code != known.exit_code || state.oom_killed != known.oom_killed))
            || new_bindings.is_some();
        if changed {
            self.update(LocalUpdate::ContainerSeen {
                container_name: name.to_string(),
                runtime_id: state.id.clone(),
                exit_code,
                oom_killed: state.oom_killed,
                network_bindings: new_bindings,
            });
        }
    }

    fn phase(&self, container: &ContainerBlueprint, task: &DesiredTask) -> Phase<'a> {
        let memory = self.local.containers.get(&container.name);
        if let Some(memory) = memory {
            if memory.removed {
                return Phase::Removed;
            }
            if let Some(reason) = &memory.failure_reason {
                return Phase::Failed(reason.clone());
            }
        }
        if let Some(state) = self.observed_container(&container.name) {
            return if state.status.is_running() {
                Phase::Running(state)
            } else if state.status.has_stopped() {
                Phase::Exited(state)
            } else {
                Phase::Created(state)
            };
        }
        let control_plane: Option<&TaskContainer> =
            task.containers.iter().find(|c| c.name == container.name);
        let runtime_id = memory
            .and_then(|m| m.runtime_id.clone())
            .or_else(|| control_plane.and_then(|c| c.runtime_id.clone()));
        if runtime_id.is_some() {
            let exit_code = memory
                .and_then(|m| m.exit_code)
                .or_else(|| control_plane.and_then(|c| c.exit_code.map(i64::from)));
            return Phase::Vanished {
                runtime_id,
                exit_code,
            };
        }
        if let Some(ImageOutcome::Failed { message, .. }) = self.local.images.get(&container.image)
        {
            return Phase::Failed(format!("CannotPullContainerError: {message}"));
        }
        Phase::NotCreated
    }

    /// Fails containers whose dependencies can never be met or timed out,
    /// and starts the startTimeout clock of those that wait.
    fn resolve_dependencies(
        &mut self,
        blueprint: &TaskBlueprint,
        phases: &mut BTreeMap<String, Phase<'a>>,
        restarting: &BTreeSet<String>,
    ) {
        for name in blueprint.start_order() {
            let container = blueprint
                .container(name)
                .expect("start order lists the task's containers");
            if !matches!(phases[name], Phase::NotCreated | Phase::Created(_))
                || phases[name].has_started()
            {
                continue;
            }
            let mut waiting = false;
            let mut failure = None;
            for dependency in &container.depends_on {
                let Some(phase) = phases.get(&dependency.container_name) else {
                    continue;
                };
                // START dependencies may be met in this very round; planning decides.
                let started_this_round = dependency.condition == ContainerCondition::Start
                    && matches!(phase, Phase::NotCreated | Phase::Created(_));
                match dependency_state(
                    dependency,
                    phase,
                    started_this_round,
                    restarting.contains(&dependency.container_name),
                ) {
                    DependencyState::Met => {}
                    DependencyState::Waiting => waiting = true,
                    DependencyState::Unmet(reason) => {
                        failure = Some(reason);
                        break;
                    }
                }
            }
            if failure.is_none() && waiting {
                let since_ms = match self
                    .local
                    .containers
                    .get(name)
                    .and_then(|c| c.waiting_since_ms)
                {
                    Some(since) => since,
                    None => {
                        self.update(LocalUpdate::ContainerWaiting {
                            container_name: name.to_string(),
                            since_ms: self.now_ms,
                        });
                        self.now_ms
                    }
                };
                if let Some(timeout_s) = container.start_timeout_s {
                    let deadline_ms = since_ms + i64::from(timeout_s) * 1000;
                    if self.now_ms >= deadline_ms {
                        failure = Some(format!(
                            "ContainerDependencyTimeout: the dependencies of container '{name}' were not met within its startTimeout of {timeout_s} s"
                        ));
                    } else {
                        self.wake_at(deadline_ms);
                    }
                }
            }
            if let Some(reason) = failure {
                self.update(LocalUpdate::ContainerFailed {
                    container_name: name.to_string(),
                    reason: reason.clone(),
                });
                phases.insert(name.to_string(), Phase::Failed(reason));
            }
        }
    }

    /// Stops running containers, dependents before their dependencies;
    /// once nothing runs, the task has stopped.
    fn plan_stop(&mut self, blueprint: &TaskBlueprint, phases: &BTreeMap<String, Phase<'a>>) {
        let mut remaining: Vec<&str> = blueprint
            .containers
            .iter()
            .filter(|c| matches!(phases[&c.name], Phase::Running(_)))
            .map(|c| c.name.as_str())
            .collect();
        if remaining.is_empty() {
            if self.local.execution_stopped_at_ms.is_none() {
                let last_exit_ms = phases
                    .values()
                    .filter_map(|p| match p {
                        Phase::Exited(state) => state.finished_at_ms,
                        _ => None,
                    })
                    .max();
                self.update(LocalUpdate::ExecutionStopped {
                    at_ms: last_exit_ms.unwrap_or(self.now_ms),
                });
            }
            return;
        }
        if !self.may_act() {
            return;
        }
        // Each stop returns once the container has stopped, so in this order
        // a container is stopped only after everything depending on it.
        let mut order: Vec<&str> = Vec::new();
        while !remaining.is_empty() {
            let (ready, blocked): (Vec<&str>, Vec<&str>) = remaining.iter().partition(|name| {
                blueprint
                    .dependents_of(name)
                    .iter()
                    .all(|dependent| !remaining.contains(dependent))
            });
            if ready.is_empty() {
                order.extend(blocked);
                break;
            }
            order.extend(ready);
            remaining = blocked;
        }
        for name in order {
            let container = blueprint.container(name).expect("listed above");
            if let Phase::Running(state) = &phases[name] {
                self.plan.actions.push(Action::StopContainer {
                    container_name: name.to_string(),
                    runtime_id: state.id.clone(),
                    timeout_s: container.stop_timeout_s,
                });
            }
        }
    }

    /// Pulls, creates volumes, creates and starts containers whose
    /// dependencies are met (in dependency order), restarts by policy.
    fn plan_start(
        &mut self,
        blueprint: &TaskBlueprint,
        phases: &BTreeMap<String, Phase<'a>>,
        restarting: &BTreeSet<String>,
    ) {
        if !self.may_act() {
            return;
        }
        let mut images_planned: BTreeSet<&str> = BTreeSet::new();
        for container in &blueprint.containers {
            if matches!(phases[&container.name], Phase::NotCreated)
                && !self.local.images.contains_key(&container.image)
                && images_planned.insert(&container.image)
            {
                self.plan.actions.push(Action::EnsureImage {
                    image: container.image.clone(),
                    credentials: container.registry_credentials.clone(),
                    behavior: self.config.image_pull_behavior,
                });
            }
        }
        let any_to_create = blueprint
            .containers
            .iter()
            .any(|c| matches!(phases[&c.name], Phase::NotCreated));
        if any_to_create {
            for volume in &blueprint.volumes {
                if volume.create && !self.local.volumes_created.contains_key(&volume.spec.name) {
                    self.plan.actions.push(Action::CreateVolume {
                        spec: volume.spec.clone(),
                        task_scoped: volume.task_scoped,
                    });
                }
            }
        }
        let mut started: BTreeSet<&str> = BTreeSet::new();
        for name in blueprint.start_order() {
            let container = blueprint
                .container(name)
                .expect("start order lists the task's containers");
            let phase = &phases[name];
            if restarting.contains(name) {
                self.update(LocalUpdate::ContainerRestarted {
                    container_name: name.to_string(),
                });
                self.prepare_log_stream(container);
                self.plan.actions.push(Action::StartContainer {
                    container_name: name.to_string(),
                    docker_name: container.docker_name.clone(),
                });
                continue;
            }
            let startable = match phase {
                Phase::NotCreated => true,
                Phase::Created(state) => state.started_at_ms.is_none(),
                _ => false,
            };
            if !startable {
                continue;
            }
            let ready = container.depends_on.iter().all(|dependency| {
                let Some(dependency_phase) = phases.get(&dependency.container_name) else {
                    return true;
                };
                dependency_state(
                    dependency,
                    dependency_phase,
                    started.contains(dependency.container_name.as_str()),
                    restarting.contains(&dependency.container_name),
                ) == DependencyState::Met
            });
            if !ready {
                continue;
            }
            if matches!(phase, Phase::NotCreated) {
                self.plan.actions.push(Action::CreateContainer {
                    container_name: name.to_string(),
                    spec: Box::new(container.spec.clone()),
                });
            }
            self.prepare_log_stream(container);
            self.plan.actions.push(Action::StartContainer {
                container_name: name.to_string(),
                docker_name: container.docker_name.clone(),
            });
            started.insert(name);
        }
    }

    /// An awslogs container's stream is made ready before each start.
    fn prepare_log_stream(&mut self, container: &ContainerBlueprint) {
        if let Some(awslogs) = &container.awslogs {
            self.plan.actions.push(Action::PrepareLogStream {
                container_name: container.name.clone(),
                docker_name: container.docker_name.clone(),
                awslogs: Box::new(awslogs.clone()),
            });
        }
    }

    /// The task cannot be built (a field Berth cannot honour): stop whatever
    /// runs and report it STOPPED with the reason.
    fn stop_without_blueprint(&mut self, task: &DesiredTask) {
        let running: Vec<&ContainerState> = self
            .observed
            .iter()
            .copied()
            .filter(|c| c.status.is_running())
            .collect();
        if running.is_empty() {
            if self.local.execution_stopped_at_ms.is_none() {
                self.update(LocalUpdate::ExecutionStopped { at_ms: self.now_ms });
            }
        } else if self.may_act() {
            for container in &running {
                self.plan.actions.push(Action::StopContainer {
                    container_name: container
                        .labels
                        .get(LABEL_CONTAINER_NAME)
                        .cloned()
                        .unwrap_or_default(),
                    runtime_id: container.id.clone(),
                    timeout_s: self.default_stop_timeout_s(),
                });
            }
        }
        let containers = task
            .containers
            .iter()
            .map(|c| ContainerReport {
                name: c.name.clone(),
                runtime_id: c.runtime_id.clone(),
                status: if running
                    .iter()
                    .any(|r| r.labels.get(LABEL_CONTAINER_NAME) == Some(&c.name))
                {
                    ContainerStatus::Running
                } else {
                    ContainerStatus::Stopped
                },
                exit_code: c.exit_code,
                reason: None,
                network_bindings: c.network_bindings.clone(),
                health_status: c.health_status,
                image_digest: c.image_digest.clone(),
            })
            .collect();
        let report = TaskReport {
            status: if running.is_empty() {
                TaskStatus::Stopped
            } else {
                task.last_status
            },
            reason: self.local.stop_reason.clone(),
            containers,
            pull_started_at_ms: None,
            pull_stopped_at_ms: None,
            execution_stopped_at_ms: self.local.execution_stopped_at_ms,
        };
        self.queue_report(task, report);
    }

    /// The container's ECS `imageDigest`: learnt when its image became
    /// ready, or (after an agent restart, when the agent has forgotten) what
    /// the control plane was told before.
    fn image_digest(&self, container: &ContainerBlueprint, task: &DesiredTask) -> Option<String> {
        match self.local.images.get(&container.image) {
            Some(ImageOutcome::Ready { image_digest, .. }) => image_digest.clone(),
            Some(ImageOutcome::Failed { .. }) => None,
            None => task
                .containers
                .iter()
                .find(|c| c.name == container.name)
                .and_then(|c| c.image_digest.clone()),
        }
    }

    fn container_report(
        &self,
        task: &DesiredTask,
        container: &ContainerBlueprint,
        phase: &Phase<'_>,
        restarting: bool,
    ) -> ContainerReport {
        let memory = self
            .local
            .containers
            .get(&container.name)
            .cloned()
            .unwrap_or_default();
        let mut report = ContainerReport {
            name: container.name.clone(),
            runtime_id: memory.runtime_id.clone(),
            status: ContainerStatus::Pending,
            exit_code: None,
            reason: None,
            network_bindings: memory.network_bindings.clone(),
            // ECS: UNKNOWN for a container with a health check until Docker
            // has a verdict; no health status without a health check.
            health_status: container
                .spec
                .healthcheck
                .as_ref()
                .map(|_| HealthStatus::Unknown),
            image_digest: self.image_digest(container, task),
        };
        let unknown_if_checked = report.health_status;
        let observed_health = move |health: Option<Health>| {
            health_status(health)
                .filter(|_| unknown_if_checked.is_some())
                .or(unknown_if_checked)
        };
        match phase {
            Phase::NotCreated => {}
            Phase::Created(state) => report.runtime_id = Some(state.id.clone()),
            Phase::Running(state) => {
                report.runtime_id = Some(state.id.clone());
                report.status = ContainerStatus::Running;
                report.network_bindings = if container.host_mode_bindings.is_empty() {
                    state.port_bindings.iter().map(runtime_binding).collect()
                } else {
                    container.host_mode_bindings.clone()
                };
                report.health_status = observed_health(state.health);
            }
            Phase::Exited(state) if restarting => {
                report.runtime_id = Some(state.id.clone());
                report.status = ContainerStatus::Running;
            }
            Phase::Exited(state) => {
                report.runtime_id = Some(state.id.clone());
                report.status = ContainerStatus::Stopped;
                report.exit_code = state.exit_code.and_then(|c| i32::try_from(c).ok());
                if state.oom_killed {
                    // Docker's exit code is 137 when the main process was
                    // the one killed; a child's OOM kill leaves it as is.
                    report.exit_code = report.exit_code.or(Some(SIGKILL_EXIT_CODE));
                    report.reason = Some(OUT_OF_MEMORY.to_string());
                } else {
                    report.reason = state
                        .error
                        .as_ref()
                        .filter(|e| !e.is_empty())
                        .map(|e| format!("CannotStartContainerError: {e}"));
                }
                report.health_status = observed_health(state.health);
            }
            Phase::Vanished {
                runtime_id,
                exit_code,
            } => {
                report.runtime_id = runtime_id.clone();
                report.status = ContainerStatus::Stopped;
                report.exit_code = exit_code.and_then(|c| i32::try_from(c).ok());
                report.reason = Some(match exit_code {
                    Some(code) => format!(
                        "DockerContainerRemoved: the container was removed from Docker outside the agent (e.g. docker rm -f) after it exited with code {code}"
                    ),
                    None => "DockerContainerRemoved: the container was removed from Docker outside the agent (e.g. docker rm -f); its exit code is unknown".to_string(),
                });
            }
            Phase::Failed(reason) => {
                report.status = ContainerStatus::Stopped;
                report.reason = Some(reason.clone());
            }
            Phase::Removed => {
                report.status = ContainerStatus::Stopped;
                report.exit_code = memory.exit_code.and_then(|c| i32::try_from(c).ok());
                if memory.oom_killed {
                    report.exit_code = report.exit_code.or(Some(SIGKILL_EXIT_CODE));
                    report.reason = Some(OUT_OF_MEMORY.to_string());
                }
            }
        }
        report
    }

    fn task_report(
        &self,
        task: &DesiredTask,
        blueprint: &TaskBlueprint,
        phases: &BTreeMap<String, Phase<'_>>,
        restarting: &BTreeSet<String>,
        stopping: bool,
    ) -> TaskReport {
        let containers: Vec<ContainerReport> = blueprint
            .containers
            .iter()
            .map(|c| self.container_report(task, c, &phases[&c.name], restarting.contains(&c.name)))
            .collect();
        let any_running = containers
            .iter()
            .any(|c| c.status == ContainerStatus::Running);
        let pull_done = blueprint.containers.iter().all(|c| {
            !matches!(phases[&c.name], Phase::NotCreated)
                || self.local.images.contains_key(&c.image)
        });
        let all_up = blueprint
            .containers
            .iter()
            .zip(&containers)
            .all(|(blueprint, report)| {
                report.status == ContainerStatus::Running
                    || (report.status == ContainerStatus::Stopped && !blueprint.essential)
            });
        let status = if stopping {
            if any_running && all_started(blueprint, phases) {
                // It ran and its containers are being stopped: STOPPING once
                // the control plane knows it ran.
                if self.told_status(task) >= TaskStatus::Running {
                    TaskStatus::Stopping
                } else {
                    TaskStatus::Running
                }
            } else if any_running {
                // Still stopping: the task's status does not move yet.
                task.last_status.min(TaskStatus::Running)
            } else {
                TaskStatus::Stopped
            }
        } else if any_running && all_up {
            TaskStatus::Running
        } else if pull_done {
            TaskStatus::Pending
        } else {
            task.last_status.min(TaskStatus::Pending)
        };
        let stopped = status == TaskStatus::Stopped;
        let mut containers = containers;
        if stopped {
            // A stopped task's containers that never ran are stopped too.
            for container in &mut containers {
                container.status = ContainerStatus::Stopped;
            }
        }
        let pull_times: Vec<(i64, i64)> = self
            .local
            .images
            .values()
            .map(ImageOutcome::times)
            .collect();
        TaskReport {
            status,
            reason: if stopped {
                self.local.stop_reason.clone()
            } else {
                None
            },
            containers,
            pull_started_at_ms: pull_times.iter().map(|t| t.0).min(),
            pull_stopped_at_ms: pull_times
                .iter()
                .map(|t| t.1)
                .max()
                .filter(|_| pull_done || stopped),
            execution_stopped_at_ms: if stopped {
                self.local.execution_stopped_at_ms
            } else {
                None
            },
        }
    }

    /// Queues the call that tells the control plane about `next`, if it
    /// has not heard it yet.
    fn queue_report(&mut self, task: &DesiredTask, next: TaskReport) {
        let mut previous = self
            .local
            .reported
            .clone()
            .unwrap_or_else(|| TaskReport::known_by_control_plane(task));
        previous.status = previous.status.max(task.last_status);
        if let Some(call) = report_call(&task.cluster_arn, self.task_arn, &previous, &next) {
            self.update(LocalUpdate::ReportQueued(call.report.clone()));
            self.plan.reports.push(call);
        }
    }
}

/// Every container has started at some point (non-essential ones may have
/// failed instead): the task has run.
fn all_started(blueprint: &TaskBlueprint, phases: &BTreeMap<String, Phase<'_>>) -> bool {
    blueprint.containers.iter().all(|c| {
        phases[&c.name].has_started()
            || (!c.essential && matches!(phases[&c.name], Phase::Failed(_)))
    })
}

/// The reason the task must stop because of an essential container, if any.
fn essential_failure(
    blueprint: &TaskBlueprint,
    phases: &BTreeMap<String, Phase<'_>>,
    restarting: &BTreeSet<String>,
) -> Option<String> {
    for container in blueprint.containers.iter().filter(|c| c.essential) {
        if restarting.contains(&container.name) {
            continue;
        }
        match &phases[&container.name] {
            Phase::Exited(_) | Phase::Vanished { .. } | Phase::Removed => {
                return Some(ESSENTIAL_CONTAINER_EXITED.to_string())
            }
            Phase::Failed(reason) => return Some(reason.clone()),
            Phase::NotCreated | Phase::Created(_) | Phase::Running(_) => {}
        }
    }
    None
}

#[cfg(test)]
mod awslogs_tests;
#[cfg(test)]
mod tests;
