//! RunTask, StartTask, StopTask, DescribeTasks, ListTasks,
//! SubmitTaskStateChange, SubmitContainerStateChange, and what the agent
//! session streams.

use std::collections::BTreeMap;

use ecs_wire::{
    Compatibility, ContainerDefinition, DescribeTasksRequest, DescribeTasksResponse, Failure,
    LaunchType, ListTasksRequest, ListTasksResponse, LogDriver, NetworkMode, PropagateTags,
    RunTaskRequest, RunTaskResponse, StartTaskRequest, StartTaskResponse, StopTaskRequest,
    StopTaskResponse, SubmitContainerStateChangeRequest, SubmitContainerStateChangeResponse,
    SubmitTaskStateChangeRequest, SubmitTaskStateChangeResponse, TaskDefinition,
    TaskDefinitionStatus, TaskField, TaskOverride, TaskStopCode,
};
use model::agent::DesiredTask;
use model::arn::{cluster_name_from_reference, id_from_reference};
use model::cluster::Cluster;
use model::tags::Tag;
use model::task::{
    ContainerStatus, DesiredStatus, NetworkBinding, Reservation, Task, TaskContainer, TaskStatus,
};
use model::task_definition::{TaskDefinitionRecord, TaskDefinitionReference};
use serde::{Deserialize, Serialize};
use store::{Compare, Op, Txn};

use crate::container_instances::InstanceTaskRecord;
use crate::placement;
use crate::records::{self, Versioned, MAX_CAS_ATTEMPTS};
use crate::{keys, pagination, ApiError, Ecs, RequestContext};

pub const MAX_RUN_TASK_COUNT: i32 = 10;
pub const MAX_DESCRIBE_TASKS: usize = 100;
/// ECS's stoppedReason when an essential container exits.
pub const ESSENTIAL_CONTAINER_EXITED: &str = "Essential container in task exited";
/// ECS's stoppedReason for StopTask without a reason.
pub const STOPPED_BY_USER: &str = "Task stopped by user";

/// RunTask `clientToken` → the tasks it started, so a retry starts nothing new.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunTaskToken {
    task_ids: Vec<String>,
    failures: Vec<(Option<String>, String)>,
}

/// The parts of RunTask and StartTask requests (and of a service's
/// launches) that describe the task.
pub(crate) struct LaunchRequest<'a> {
    pub task_definition: Option<&'a str>,
    pub overrides: Option<&'a TaskOverride>,
    pub group: Option<&'a str>,
    pub started_by: Option<&'a str>,
    pub tags: Option<&'a [ecs_wire::Tag]>,
    pub propagate_tags: Option<PropagateTags>,
    pub enable_ecs_managed_tags: Option<bool>,
    pub network_configuration: bool,
    pub enable_execute_command: Option<bool>,
    pub launch_type: Compatibility,
    /// A service's launch: its tags (for `propagateTags: SERVICE`); its task
    /// definition may have been deregistered since (ECS keeps running it).
    pub service_tags: Option<&'a [Tag]>,
    /// A service's launch: the service's name (`aws:ecs:serviceName` when
    /// `enableECSManagedTags`).
    pub service_name: Option<&'a str>,
}

/// Everything new tasks of one RunTask/StartTask are built from.
pub(crate) struct Launch {
    pub(crate) task_definition: TaskDefinition,
    /// The container definitions with the overrides applied.
    pub(crate) containers: Vec<ContainerDefinition>,
    pub(crate) overrides: TaskOverride,
    /// Task-level CPU units and memory MiB, when set.
    pub(crate) task_size: (Option<u32>, Option<u32>),
    pub(crate) reservation: Reservation,
    pub(crate) group: String,
    pub(crate) started_by: Option<String>,
    pub(crate) tags: Vec<Tag>,
}

/// What one placement round committed.
pub(crate) struct Placed {
    pub tasks: Vec<Task>,
    /// `(container instance ARN, ECS reason)`, e.g. `RESOURCE:MEMORY`.
    pub failures: Vec<(Option<String>, String)>,
    /// The cluster has no container instance that could take tasks at all.
    pub no_container_instances: bool,
}

/// `berth_placements_total`: the tasks placed, and the ones not placed
/// under the first failure's reason (as the service scheduler reports it).
fn count_placements(placed: &Placed, count: usize) {
    let instruments = instruments::global();
    instruments.add_placements(instruments::PLACED, placed.tasks.len() as u64);
    let unplaced = count.saturating_sub(placed.tasks.len()) as u64;
    let reason = if placed.no_container_instances {
        instruments::NO_CONTAINER_INSTANCES
    } else {
        placed
            .failures
            .first()
            .map_or(instruments::OTHER, |(_, reason)| reason.as_str())
    };
    instruments.add_placements(reason, unplaced);
}

/// Which of an instance's counters a task status counts in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Pending,
    Running,
    Done,
}

fn bucket(status: TaskStatus) -> Bucket {
    if status.is_pending() {
        Bucket::Pending
    } else if status == TaskStatus::Stopped {
        Bucket::Done
    } else {
        Bucket::Running
    }
}

fn seconds(ms: Option<i64>) -> Option<f64> {
    ms.map(|ms| ms as f64 / 1000.0)
}

fn millis(seconds: Option<f64>) -> Option<i64> {
    seconds.map(|s| (s * 1000.0).round() as i64)
}

/// The tags a new task starts with: propagated from its task definition
/// (`propagateTags: TASK_DEFINITION`) or, for a service's task, from the
/// service (`SERVICE`), then the request's own tags, then ECS's managed tags
/// (`enableECSManagedTags`: the cluster's name, and the service's).
fn tags_for_new_task(
    cluster: &Cluster,
    task_definition_tags: &[Tag],
    request: &LaunchRequest<'_>,
) -> Result<Vec<Tag>, ApiError> {
    let requested = model::tags::from_wire(request.tags.unwrap_or_default());
    let propagated = match (request.propagate_tags, request.service_tags) {
        (None | Some(PropagateTags::None), _) => &[][..],
        (Some(PropagateTags::TaskDefinition), _) => task_definition_tags,
        (Some(PropagateTags::Service), Some(service_tags)) => service_tags,
        (Some(PropagateTags::Service), None) => {
            return Err(ApiError::invalid_parameter(
                "propagateTags SERVICE is only valid for a service's tasks; use TASK_DEFINITION or NONE.",
            ))
        }
    };
    let managed = (request.enable_ecs_managed_tags == Some(true))
        .then_some((cluster.cluster_name.as_str(), request.service_name));
    Ok(model::tags::task_tags(propagated, &requested, managed)?)
}

/// A field of the task definition Berth cannot honour yet: refused at
/// RunTask/StartTask rather than silently ignored.
fn unsupported_feature(
    task_definition: &TaskDefinition,
    containers: &[ContainerDefinition],
) -> Option<String> {
    if task_definition.network_mode == Some(NetworkMode::Awsvpc) {
        return Some(
            "The awsvpc network mode is not supported by Berth yet; use bridge, host or none."
                .into(),
        );
    }
    if task_definition.proxy_configuration.is_some() {
        return Some("proxyConfiguration (App Mesh) is not supported by Berth.".into());
    }
    if task_definition
        .inference_accelerators
        .as_ref()
        .is_some_and(|a| !a.is_empty())
    {
        return Some("inferenceAccelerators are not supported by Berth.".into());
    }
    if task_definition.task_role_arn.is_some() {
        return Some("taskRoleArn is not supported by Berth yet: Berth does not vend IAM role credentials to containers.".into());
    }
    if task_definition.pid_mode == Some(ecs_wire::PidMode::Task)
        || task_definition.ipc_mode == Some(ecs_wire::IpcMode::Task)
    {
        return Some(
            "pidMode/ipcMode 'task' is not supported by Berth yet; use 'host' or omit it.".into(),
        );
    }
    if task_definition.ephemeral_storage.is_some() {
        return Some("ephemeralStorage is a Fargate setting; Berth's container instances do not size task storage.".into());
    }
    if let Some(platform) = &task_definition.runtime_platform {
        if platform
            .operating_system_family
            .is_some_and(|os| os != ecs_wire::OSFamily::Linux)
        {
            return Some("runtimePlatform: Berth runs Linux containers only.".into());
        }
    }
    for volume in task_definition.volumes.as_deref().unwrap_or_default() {
        if volume.s3files_volume_configuration.is_some() {
            return Some(format!(
                "Volume '{}' uses Amazon S3 Files, which Berth cannot mount; use a host path or a Docker volume.",
                volume.name.as_deref().unwrap_or_default()
            ));
        }
        if volume.efs_volume_configuration.is_some()
            || volume
                .fsx_windows_file_server_volume_configuration
                .is_some()
        {
            return Some(format!(
                "Volume '{}' uses Amazon EFS or FSx, which Berth cannot mount; use a host path or a Docker volume.",
                volume.name.as_deref().unwrap_or_default()
            ));
        }
        if volume.configured_at_launch == Some(true) {
            return Some("Volumes configured at launch are not supported by Berth yet.".into());
        }
    }
    for container in containers {
        let name = container.name.as_deref().unwrap_or_default();
        let unsupported = |what: &str| {
            Some(format!(
                "Container '{name}': {what} is not supported by Berth yet."
            ))
        };
        if let Some(log) = &container.log_configuration {
            if !matches!(
                log.log_driver,
                Some(LogDriver::JsonFile | LogDriver::Awslogs)
            ) {
                return unsupported(&format!(
                    "the {} log driver (json-file and awslogs are)",
                    log.log_driver.map(|d| d.as_str()).unwrap_or("unknown")
                ));
            }
        }
        if container.secrets.as_ref().is_some_and(|s| !s.is_empty()) {
            return unsupported(
                "secrets (SSM Parameter Store and Secrets Manager are not reachable)",
            );
        }
        if container
            .environment_files
            .as_ref()
            .is_some_and(|s| !s.is_empty())
        {
            return unsupported("environmentFiles (Amazon S3 is not reachable)");
        }
        if let Some(linux) = &container.linux_parameters {
            if linux.max_swap.is_some() || linux.swappiness.is_some() {
                return unsupported("linuxParameters maxSwap/swappiness");
            }
        }
        if container
            .port_mappings
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|m| m.container_port_range.is_some())
        {
            return unsupported("containerPortRange");
        }
        if container
            .log_configuration
            .as_ref()
            .is_some_and(|l| l.secret_options.as_ref().is_some_and(|s| !s.is_empty()))
        {
            return unsupported("logConfiguration secretOptions");
        }
        if container.firelens_configuration.is_some() {
            return unsupported("firelensConfiguration");
        }
        if container
            .resource_requirements
            .as_ref()
            .is_some_and(|r| !r.is_empty())
        {
            return unsupported("resourceRequirements (GPUs)");
        }
        if container
            .credential_specs
            .as_ref()
            .is_some_and(|c| !c.is_empty())
        {
            return unsupported("credentialSpecs");
        }
    }
    None
}

impl Ecs {
    pub(crate) async fn load_task(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        id: &str,
    ) -> Result<Option<Versioned<Task>>, ApiError> {
        records::get(self.store(), &keys::task(&ctx.region, cluster_name, id)).await
    }

    pub(crate) async fn tasks(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
    ) -> Result<Vec<Versioned<Task>>, ApiError> {
        records::list_versioned(self.store(), &keys::tasks_prefix(&ctx.region, cluster_name)).await
    }

    pub(crate) fn task_to_wire(
        &self,
        ctx: &RequestContext,
        task: &Task,
        include_tags: bool,
    ) -> ecs_wire::Task {
        let task_arn = ctx.arns().task(&task.cluster_name, &task.id);
        ecs_wire::Task {
            attachments: Some(vec![]),
            attributes: Some(vec![ecs_wire::Attribute {
                name: Some("ecs.cpu-architecture".into()),
                value: Some(std::env::consts::ARCH.replace("aarch64", "arm64")),
                ..Default::default()
            }]),
            availability_zone: task.availability_zone.clone(),
            cluster_arn: Some(ctx.arns().cluster(&task.cluster_name)),
            connectivity: task
                .connectivity_at_ms
                .map(|_| ecs_wire::Connectivity::Connected),
            connectivity_at: seconds(task.connectivity_at_ms),
            container_instance_arn: task
                .container_instance_id
                .as_ref()
                .map(|id| ctx.arns().container_instance(&task.cluster_name, id)),
            containers: Some(
                task.containers
                    .iter()
                    .map(|c| ecs_wire::Container {
                        container_arn: Some(format!(
                            "arn:aws:ecs:{}:{}:container/{}/{}/{}",
                            ctx.region, ctx.account_id, task.cluster_name, task.id, c.name
                        )),
                        task_arn: Some(task_arn.clone()),
                        name: Some(c.name.clone()),
                        image: Some(c.image.clone()),
                        image_digest: c.image_digest.clone(),
                        runtime_id: c.runtime_id.clone(),
                        last_status: Some(c.last_status.as_str().to_string()),
                        exit_code: c.exit_code,
                        reason: c.reason.clone(),
                        network_bindings: Some(
                            c.network_bindings
                                .iter()
                                .map(|b| ecs_wire::NetworkBinding {
                                    bind_ip: Some(b.bind_ip.clone()),
                                    container_port: Some(b.container_port.into()),
                                    host_port: Some(b.host_port.into()),
                                    protocol: b.protocol.parse().ok(),
                                    ..Default::default()
                                })
                                .collect(),
                        ),
                        network_interfaces: Some(vec![]),
                        health_status: Some(
                            c.health_status.unwrap_or(ecs_wire::HealthStatus::Unknown),
                        ),
                        cpu: c.cpu.map(|v| v.to_string()),
                        memory: c.memory.map(|v| v.to_string()),
                        memory_reservation: c.memory_reservation.map(|v| v.to_string()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            cpu: task.cpu.clone(),
            created_at: seconds(Some(task.created_at_ms)),
            desired_status: Some(task.desired_status.as_str().to_string()),
            enable_execute_command: Some(false),
            execution_stopped_at: seconds(task.execution_stopped_at_ms),
            group: task.group.clone(),
            health_status: Some(
                task.health_status
                    .unwrap_or(ecs_wire::HealthStatus::Unknown),
            ),
            last_status: Some(task.last_status.as_str().to_string()),
            launch_type: task.launch_type.parse().ok(),
            memory: task.memory.clone(),
            overrides: Some(TaskOverride {
                container_overrides: Some(
                    task.overrides
                        .container_overrides
                        .clone()
                        .unwrap_or_default(),
                ),
                inference_accelerator_overrides: Some(vec![]),
                ..task.overrides.clone()
            }),
            pull_started_at: seconds(task.pull_started_at_ms),
            pull_stopped_at: seconds(task.pull_stopped_at_ms),
            started_at: seconds(task.started_at_ms),
            started_by: task.started_by.clone(),
            stop_code: task.stop_code,
            stopped_at: seconds(task.stopped_at_ms),
            stopped_reason: task.stopped_reason.clone(),
            stopping_at: seconds(task.stopping_at_ms),
            // Without `include: [TAGS]` ECS answers an empty list.
            tags: Some(if include_tags {
                model::tags::to_wire(&task.tags)
            } else {
                vec![]
            }),
            task_arn: Some(task_arn),
            task_definition_arn: Some(task.task_definition_arn.clone()),
            version: Some(task.version),
            ..Default::default()
        }
    }

    /// The task definition a RunTask/StartTask names, which must be ACTIVE.
    async fn runnable_task_definition(
        &self,
        ctx: &RequestContext,
        reference: &str,
    ) -> Result<TaskDefinitionRecord, ApiError> {
        let parsed = TaskDefinitionReference::parse(reference)
            .map_err(|_| ApiError::client_exception("TaskDefinition not found."))?;
        let record = self
            .resolve_task_definition(ctx, &parsed)
            .await?
            .ok_or_else(|| ApiError::client_exception("TaskDefinition not found."))?;
        if record.value.status() != TaskDefinitionStatus::Active {
            return Err(ApiError::invalid_parameter("TaskDefinition is inactive"));
        }
        Ok(record.value)
    }

    /// The task definition a service's deployment names: deregistered
    /// revisions still run (as on ECS), deleted ones do not.
    async fn service_task_definition(
        &self,
        ctx: &RequestContext,
        reference: &str,
    ) -> Result<TaskDefinitionRecord, ApiError> {
        let parsed = TaskDefinitionReference::parse(reference)
            .map_err(|_| ApiError::client_exception("TaskDefinition not found."))?;
        let record = self
            .resolve_task_definition(ctx, &parsed)
            .await?
            .ok_or_else(|| ApiError::client_exception("TaskDefinition not found."))?;
        if record.value.status() == TaskDefinitionStatus::DeleteInProgress {
            return Err(ApiError::client_exception(
                "TaskDefinition is being deleted; update the service to another revision.",
            ));
        }
        Ok(record.value)
    }

    /// A new task from a prepared launch, not yet placed.
    pub(crate) fn new_task(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        launch: &Launch,
    ) -> Task {
        let (task_definition, task_size, reservation) = (
            &launch.task_definition,
            launch.task_size,
            &launch.reservation,
        );
        Task {
            id: uuid::Uuid::new_v4().simple().to_string(),
            cluster_name: cluster_name.to_string(),
            task_definition_arn: task_definition
                .task_definition_arn
                .clone()
                .unwrap_or_default(),
            family: task_definition.family.clone().unwrap_or_default(),
            revision: task_definition.revision.unwrap_or_default().into(),
            container_instance_id: None,
            last_status: TaskStatus::Provisioning,
            desired_status: DesiredStatus::Running,
            launch_type: "EC2".to_string(),
            cpu: Some(
                task_size
                    .0
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| reservation.cpu_units.to_string()),
            ),
            memory: Some(
                task_size
                    .1
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| reservation.memory_mib.to_string()),
            ),
            containers: launch
                .containers
                .iter()
                .map(|c| TaskContainer {
                    name: c.name.clone().unwrap_or_default(),
                    image: c.image.clone().unwrap_or_default(),
                    last_status: ContainerStatus::Pending,
                    runtime_id: None,
                    image_digest: None,
                    exit_code: None,
                    reason: None,
                    network_bindings: vec![],
                    health_status: c
                        .health_check
                        .as_ref()
                        .map(|_| ecs_wire::HealthStatus::Unknown),
                    essential: c.essential.unwrap_or(true),
                    cpu: c.cpu,
                    memory: c.memory,
                    memory_reservation: c.memory_reservation,
                })
                .collect(),
            overrides: launch.overrides.clone(),
            group: Some(launch.group.clone()),
            started_by: launch.started_by.clone(),
            tags: launch.tags.clone(),
            reservation: reservation.clone(),
            availability_zone: None,
            created_at_ms: ctx.now_ms,
            pull_started_at_ms: None,
            pull_stopped_at_ms: None,
            started_at_ms: None,
            stopping_at_ms: None,
            execution_stopped_at_ms: None,
            stopped_at_ms: None,
            connectivity_at_ms: None,
            stop_code: None,
            stopped_reason: None,
            health_status: None,
            load_balancer_targets: Vec::new(),
            targets_deregistered_at_ms: None,
            protection_expires_at_ms: None,
            version: 1,
        }
    }

    /// What RunTask and StartTask share: the task definition and overrides,
    /// checked against what Berth can honour, and everything a new task is
    /// built from.
    pub(crate) async fn prepare_launch(
        &self,
        ctx: &RequestContext,
        cluster: &Cluster,
        request: LaunchRequest<'_>,
    ) -> Result<Launch, ApiError> {
        if request.network_configuration {
            return Err(ApiError::invalid_parameter(
                "Network Configuration is not valid for the given networkMode of this task definition.",
            ));
        }
        if request.enable_execute_command == Some(true) {
            return Err(ApiError::invalid_parameter(
                "enableExecuteCommand is not supported by Berth yet.",
            ));
        }
        let TaskDefinitionRecord {
            task_definition,
            tags: task_definition_tags,
        } = match request.service_tags {
            None => {
                self.runnable_task_definition(ctx, request.task_definition.unwrap_or_default())
                    .await?
            }
            Some(_) => {
                self.service_task_definition(ctx, request.task_definition.unwrap_or_default())
                    .await?
            }
        };
        if let Some(required) = &task_definition.requires_compatibilities {
            if !required.is_empty() && !required.contains(&request.launch_type) {
                return Err(ApiError::invalid_parameter(format!(
                    "Task definition does not support launch_type {}.",
                    request.launch_type.as_str()
                )));
            }
        }
        let overrides = request.overrides.cloned().unwrap_or_default();
        let containers = placement::containers_with_overrides(&task_definition, &overrides)?;
        if let Some(reason) = unsupported_feature(&task_definition, &containers) {
            return Err(ApiError::invalid_parameter(reason));
        }
        let task_size = placement::task_size(&task_definition, &overrides)?;
        let reservation =
            placement::reservation(&task_definition, &containers, task_size.0, task_size.1);
        let group = request.group.map(str::to_string).unwrap_or_else(|| {
            format!(
                "family:{}",
                task_definition.family.as_deref().unwrap_or_default()
            )
        });
        let tags = tags_for_new_task(cluster, &task_definition_tags, &request)?;
        Ok(Launch {
            task_definition,
            containers,
            overrides,
            task_size,
            reservation,
            group,
            started_by: request.started_by.map(str::to_string),
            tags,
        })
    }

    pub(crate) async fn run_task(
        &self,
        ctx: &RequestContext,
        request: RunTaskRequest,
    ) -> Result<RunTaskResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let count = request.count.unwrap_or(1);
        if !(1..=MAX_RUN_TASK_COUNT).contains(&count) {
            return Err(ApiError::invalid_parameter(format!(
                "count must be between 1 and {MAX_RUN_TASK_COUNT}; {count} was given."
            )));
        }
        match request.launch_type {
            None | Some(LaunchType::Ec2) | Some(LaunchType::External) => {}
            Some(other) => {
                return Err(ApiError::invalid_parameter(format!(
                    "Launch type {} is not supported by Berth: tasks run on the cluster's container instances (EC2 or EXTERNAL).",
                    other.as_str()
                )))
            }
        }
        if request
            .capacity_provider_strategy
            .as_ref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ApiError::invalid_parameter(
                "capacityProviderStrategy is not supported by Berth yet; omit it to place tasks on the cluster's container instances.",
            ));
        }
        if request
            .volume_configurations
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(ApiError::invalid_parameter(
                "volumeConfigurations are not supported by Berth yet.",
            ));
        }
        let launch = self
            .prepare_launch(
                ctx,
                &cluster,
                LaunchRequest {
                    task_definition: request.task_definition.as_deref(),
                    overrides: request.overrides.as_ref(),
                    group: request.group.as_deref(),
                    started_by: request.started_by.as_deref(),
                    tags: request.tags.as_deref(),
                    propagate_tags: request.propagate_tags,
                    enable_ecs_managed_tags: request.enable_ecs_managed_tags,
                    network_configuration: request.network_configuration.is_some(),
                    enable_execute_command: request.enable_execute_command,
                    launch_type: match request.launch_type {
                        Some(LaunchType::External) => Compatibility::External,
                        _ => Compatibility::Ec2,
                    },
                    service_tags: None,
                    service_name: None,
                },
            )
            .await?;
        let (constraints, strategies) = placement::placement_from_wire(
            request.placement_constraints.as_deref().unwrap_or_default(),
            request.placement_strategy.as_deref().unwrap_or_default(),
        )?;
        let strategies = scheduler::PlacementStrategy::chain_or_default(
            strategies,
            scheduler::PlacementStrategy::run_task_default,
        );
        let task_request = placement::task_request(
            &launch.task_definition,
            &launch.reservation,
            &launch.group,
            constraints,
        )?;

        let token_key = request
            .client_token
            .as_deref()
            .map(|token| keys::run_task_token(&ctx.region, &cluster.cluster_name, token));
        for attempt in 0..MAX_CAS_ATTEMPTS {
            if let Some(token_key) = &token_key {
                if let Some(token) = records::get::<RunTaskToken>(self.store(), token_key).await? {
                    return self.run_task_replay(ctx, &cluster, token.value).await;
                }
            }
            let prototype = self.new_task(ctx, &cluster.cluster_name, &launch);
            let outcome = self
                .place_and_commit(
                    ctx,
                    &cluster.cluster_name,
                    prototype,
                    &task_request,
                    &strategies,
                    count as usize,
                    token_key.as_deref(),
                    attempt > 0,
                )
                .await?;
            if let Some(placed) = outcome {
                if placed.no_container_instances {
                    return Err(ApiError::invalid_parameter(
                        scheduler::NO_CONTAINER_INSTANCES_MESSAGE,
                    ));
                }
                return Ok(RunTaskResponse {
                    tasks: Some(
                        placed
                            .tasks
                            .iter()
                            .map(|t| self.task_to_wire(ctx, t, true))
                            .collect(),
                    ),
                    failures: Some(
                        placed
                            .failures
                            .into_iter()
                            .map(|(arn, reason)| Failure {
                                arn,
                                reason: Some(reason),
                                detail: None,
                            })
                            .collect(),
                    ),
                });
            }
        }
        Err(records::too_much_contention(
            "the cluster's container instances",
        ))
    }

    /// The answer to a RunTask retried with the same clientToken.
    async fn run_task_replay(
        &self,
        ctx: &RequestContext,
        cluster: &Cluster,
        token: RunTaskToken,
    ) -> Result<RunTaskResponse, ApiError> {
        let mut tasks = Vec::new();
        for id in &token.task_ids {
            if let Some(task) = self.load_task(ctx, &cluster.cluster_name, id).await? {
                tasks.push(self.task_to_wire(ctx, &task.value, true));
            }
        }
        Ok(RunTaskResponse {
            tasks: Some(tasks),
            failures: Some(
                token
                    .failures
                    .into_iter()
                    .map(|(arn, reason)| Failure {
                        arn,
                        reason: Some(reason),
                        detail: None,
                    })
                    .collect(),
            ),
        })
    }

    /// Places `count` copies of `prototype` and commits them with the
    /// instances they use, compare-and-swap on every instance touched.
    /// `Ok(None)`: an instance changed meanwhile; retry.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn place_and_commit(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        prototype: Task,
        task_request: &scheduler::TaskRequest,
        strategies: &[scheduler::PlacementStrategy],
        count: usize,
        token_key: Option<&str>,
        reload: bool,
    ) -> Result<Option<Placed>, ApiError> {
        let request = crate::placement_cache::PlacementRequest {
            ctx: ctx.clone(),
            prototype,
            task_request: task_request.clone(),
            strategies: strategies.to_vec(),
            count,
            token: token_key.map(|key| crate::placement_cache::TokenRecord {
                key: key.to_string(),
                encode: encode_run_task_token,
            }),
            reload,
        };
        let outcome = self.place_batched(cluster_name, request).await;
        if let Ok(Some(placed)) = &outcome {
            count_placements(placed, count);
        }
        outcome
    }

    pub(crate) async fn start_task(
        &self,
        ctx: &RequestContext,
        request: StartTaskRequest,
    ) -> Result<StartTaskResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let references = request.container_instances.clone().unwrap_or_default();
        if references.is_empty() {
            return Err(ApiError::invalid_parameter(
                "Container Instances cannot be empty.",
            ));
        }
        if references.len() > 10 {
            return Err(ApiError::invalid_parameter(
                "containerInstances can have at most 10 items.",
            ));
        }
        let launch = self
            .prepare_launch(
                ctx,
                &cluster,
                LaunchRequest {
                    task_definition: request.task_definition.as_deref(),
                    overrides: request.overrides.as_ref(),
                    group: request.group.as_deref(),
                    started_by: request.started_by.as_deref(),
                    tags: request.tags.as_deref(),
                    propagate_tags: request.propagate_tags,
                    enable_ecs_managed_tags: request.enable_ecs_managed_tags,
                    network_configuration: request.network_configuration.is_some(),
                    enable_execute_command: request.enable_execute_command,
                    launch_type: Compatibility::Ec2,
                    service_tags: None,
                    service_name: None,
                },
            )
            .await?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for reference in &references {
            let id = id_from_reference(reference, "container-instance", &cluster.cluster_name)?;
            let arn = ctx.arns().container_instance(&cluster.cluster_name, &id);
            match self
                .start_on_instance(ctx, &cluster.cluster_name, &launch, &id)
                .await?
            {
                Ok(task) => tasks.push(self.task_to_wire(ctx, &task, true)),
                Err(reason) => failures.push(Failure {
                    arn: Some(arn),
                    reason: Some(reason),
                    detail: None,
                }),
            }
        }
        Ok(StartTaskResponse {
            tasks: Some(tasks),
            failures: Some(failures),
        })
    }

    /// Starts one task of `launch` on the named instance, compare-and-swap on
    /// the instance. `Ok(Err(reason))`: it cannot take the task (`MISSING`,
    /// `INACTIVE`, or a `RESOURCE:…` shortfall).
    pub(crate) async fn start_on_instance(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        launch: &Launch,
        id: &str,
    ) -> Result<Result<Task, String>, ApiError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(current) = self.load_container_instance(ctx, cluster_name, id).await? else {
                return Ok(Err("MISSING".into()));
            };
            let mut instance = current.value;
            if !instance.is_active() {
                return Ok(Err("INACTIVE".into()));
            }
            if let Err(shortfall) = instance.reserve(&launch.reservation) {
                return Ok(Err(shortfall.reason().into()));
            }
            instance.add_to_group(&launch.group);
            instance.version += 1;
            let mut task = self.new_task(ctx, cluster_name, launch);
            task.container_instance_id = Some(instance.id.clone());
            task.availability_zone = instance
                .attributes
                .get("ecs.availability-zone")
                .cloned()
                .flatten();
            let instance_key = keys::container_instance(&ctx.region, cluster_name, id);
            let txn = Txn::new()
                .when(Compare::mod_revision_is(
                    instance_key.clone(),
                    current.mod_revision,
                ))
                .then(Op::put(instance_key, records::encode(&instance)))
                .then(Op::put(
                    keys::instance_task(&ctx.region, cluster_name, id, &task.id),
                    records::encode(&InstanceTaskRecord::Pending),
                ))
                .then(Op::put(
                    keys::task(&ctx.region, cluster_name, &task.id),
                    records::encode(&task),
                ));
            if self.store().txn(txn).await?.succeeded {
                self.placement_cache().invalidate(&ctx.region, cluster_name);
                return Ok(Ok(task));
            }
        }
        Err(records::too_much_contention("the container instance"))
    }

    /// Read-modify-write of a task together with its instance's counters and
    /// resources, which follow the task's status.
    pub(crate) async fn modify_task(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        id: &str,
        change: impl Fn(&mut Task) -> Result<bool, ApiError>,
    ) -> Result<Option<Task>, ApiError> {
        let task_key = keys::task(&ctx.region, cluster_name, id);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(current) = self.load_task(ctx, cluster_name, id).await? else {
                return Ok(None);
            };
            let before = current.value.clone();
            let mut task = current.value;
            if !change(&mut task)? {
                return Ok(Some(task));
            }
            task.version = before.version + 1;
            task.health_status = Some(task.derived_health());
            let mut txn = Txn::new()
                .when(Compare::mod_revision_is(
                    task_key.clone(),
                    current.mod_revision,
                ))
                .then(Op::put(task_key.clone(), records::encode(&task)));
            let (old_bucket, new_bucket) = (bucket(before.last_status), bucket(task.last_status));
            if let Some(instance_id) = &task.container_instance_id {
                let index_key =
                    keys::instance_task(&ctx.region, cluster_name, instance_id, &task.id);
                match new_bucket {
                    // The per-task index entry is rewritten on every change,
                    // so the instance's agent session (which watches only
                    // its index) hears of it. Placement compares the
                    // instance record, which RUNNING reports never touch.
                    Bucket::Pending => {
                        txn = txn.then(Op::put(
                            index_key,
                            records::encode(&InstanceTaskRecord::Pending),
                        ));
                    }
                    Bucket::Running => {
                        txn = txn.then(Op::put(
                            index_key,
                            records::encode(&InstanceTaskRecord::Running),
                        ));
                    }
                    Bucket::Done if old_bucket != Bucket::Done => {
                        txn = txn.then(Op::delete(index_key));
                        if let Some(instance) = self
                            .load_container_instance(ctx, cluster_name, instance_id)
                            .await?
                        {
                            let key =
                                keys::container_instance(&ctx.region, cluster_name, instance_id);
                            let mut updated = instance.value;
                            updated.release(&task.reservation);
                            if let Some(group) = &task.group {
                                updated.remove_from_group(group);
                            }
                            updated.version += 1;
                            txn = txn
                                .when(Compare::mod_revision_is(key.clone(), instance.mod_revision))
                                .then(Op::put(key, records::encode(&updated)));
                        }
                    }
                    Bucket::Done => {}
                }
            }
            if self.store().txn(txn).await?.succeeded {
                if new_bucket == Bucket::Done && old_bucket != Bucket::Done {
                    // Its instance got resources back.
                    self.placement_cache().invalidate(&ctx.region, cluster_name);
                }
                return Ok(Some(task));
            }
        }
        Err(records::too_much_contention("the task"))
    }

    /// Sets a task's desiredStatus to STOPPED (once: a second request keeps
    /// the first reason). `None`: no such task.
    pub(crate) async fn request_task_stop(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        id: &str,
        stop_code: TaskStopCode,
        reason: &str,
    ) -> Result<Option<Task>, ApiError> {
        let now = ctx.now_ms;
        self.modify_task(ctx, cluster_name, id, |task| {
            if task.desired_status == DesiredStatus::Stopped {
                return Ok(false);
            }
            task.desired_status = DesiredStatus::Stopped;
            task.stop_code = Some(stop_code);
            task.stopped_reason = Some(reason.to_string());
            task.stopping_at_ms = Some(now);
            if task.last_status == TaskStatus::Running && !task.load_balancer_targets.is_empty() {
                // Deregistered and drained before its containers stop: the
                // service controller moves it on to STOPPING.
                task.last_status = TaskStatus::Deactivating;
            }
            if task.container_instance_id.is_none() {
                task.last_status = TaskStatus::Stopped;
                task.stopped_at_ms = Some(now);
            }
            Ok(true)
        })
        .await
    }

    pub(crate) async fn stop_task(
        &self,
        ctx: &RequestContext,
        request: StopTaskRequest,
    ) -> Result<StopTaskResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let reference = request.task.clone().unwrap_or_default();
        let id = id_from_reference(&reference, "task", &cluster.cluster_name)?;
        let reason = request
            .reason
            .clone()
            .unwrap_or_else(|| STOPPED_BY_USER.to_string());
        let task = self
            .request_task_stop(
                ctx,
                &cluster.cluster_name,
                &id,
                TaskStopCode::UserInitiated,
                &reason,
            )
            .await?
            .ok_or_else(|| ApiError::invalid_parameter("The referenced task was not found."))?;
        Ok(StopTaskResponse {
            task: Some(self.task_to_wire(ctx, &task, false)),
        })
    }

    pub(crate) async fn describe_tasks(
        &self,
        ctx: &RequestContext,
        request: DescribeTasksRequest,
    ) -> Result<DescribeTasksResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let references = request.tasks.clone().unwrap_or_default();
        if references.is_empty() {
            return Err(ApiError::invalid_parameter("Tasks cannot be empty."));
        }
        if references.len() > MAX_DESCRIBE_TASKS {
            return Err(ApiError::invalid_parameter(format!(
                "tasks can have at most {MAX_DESCRIBE_TASKS} items."
            )));
        }
        let include_tags = request
            .include
            .as_deref()
            .unwrap_or_default()
            .contains(&TaskField::Tags);
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for reference in &references {
            let id = id_from_reference(reference, "task", &cluster.cluster_name)?;
            match self.load_task(ctx, &cluster.cluster_name, &id).await? {
                Some(task) => tasks.push(self.task_to_wire(ctx, &task.value, include_tags)),
                None => failures.push(Failure {
                    arn: Some(ctx.arns().task(&cluster.cluster_name, &id)),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        Ok(DescribeTasksResponse {
            tasks: Some(tasks),
            failures: Some(failures),
        })
    }

    pub(crate) async fn list_tasks(
        &self,
        ctx: &RequestContext,
        request: ListTasksRequest,
    ) -> Result<ListTasksResponse, ApiError> {
        const OP: &str = "ListTasks";
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let page_size = pagination::page_size(request.max_results, 100, 100)?;
        let after = pagination::decode_token(OP, request.next_token.as_deref())?;
        if request.service_name.is_some()
            && (request.family.is_some()
                || request.started_by.is_some()
                || request.container_instance.is_some())
        {
            return Err(ApiError::invalid_parameter(
                "cannot specify serviceName with other arguments",
            ));
        }
        let instance_id = request
            .container_instance
            .as_deref()
            .map(|r| id_from_reference(r, "container-instance", &cluster.cluster_name))
            .transpose()?;
        let desired = match request.desired_status.map(|d| d.as_str()) {
            None | Some("RUNNING") => DesiredStatus::Running,
            Some("STOPPED") => DesiredStatus::Stopped,
            Some(_) => {
                return Ok(ListTasksResponse {
                    task_arns: Some(vec![]),
                    next_token: None,
                })
            }
        };
        let service_group = request.service_name.as_deref().map(|s| {
            format!(
                "service:{}",
                cluster_name_from_reference(s).unwrap_or_else(|_| s.to_string())
            )
        });
        let mut ids: Vec<String> = self
            .tasks(ctx, &cluster.cluster_name)
            .await?
            .into_iter()
            .map(|t| t.value)
            .filter(|t| {
                t.desired_status == desired
                    && instance_id
                        .as_deref()
                        .is_none_or(|i| t.container_instance_id.as_deref() == Some(i))
                    && request.family.as_deref().is_none_or(|f| t.family == f)
                    && request
                        .started_by
                        .as_deref()
                        .is_none_or(|s| t.started_by.as_deref() == Some(s))
                    && service_group
                        .as_deref()
                        .is_none_or(|g| t.group.as_deref() == Some(g))
                    && request
                        .launch_type
                        .is_none_or(|l| t.launch_type == l.as_str())
            })
            .map(|t| t.id)
            .collect();
        ids.sort();
        let (page, next_token) =
            pagination::paginate(OP, ids, String::clone, after.as_deref(), page_size, false);
        Ok(ListTasksResponse {
            task_arns: Some(
                page.iter()
                    .map(|id| ctx.arns().task(&cluster.cluster_name, id))
                    .collect(),
            ),
            next_token,
        })
    }

    /// Applies an agent's report about one task. Idempotent and
    /// monotonic: a report that would move anything backwards is ignored.
    pub(crate) async fn submit_task_state_change(
        &self,
        ctx: &RequestContext,
        request: SubmitTaskStateChangeRequest,
        health: &BTreeMap<String, ecs_wire::HealthStatus>,
    ) -> Result<SubmitTaskStateChangeResponse, ApiError> {
        let cluster_name = cluster_name_from_reference(
            request
                .cluster
                .as_deref()
                .unwrap_or(model::cluster::DEFAULT_CLUSTER_NAME),
        )?;
        let reference = request.task.clone().unwrap_or_default();
        let id = id_from_reference(&reference, "task", &cluster_name)?;
        let status = match request.status.as_deref() {
            None => None,
            Some(text) => Some(TaskStatus::parse(text).ok_or_else(|| {
                ApiError::invalid_parameter(format!("Invalid task status '{text}'."))
            })?),
        };
        let now = ctx.now_ms;
        self.modify_task(ctx, &cluster_name, &id, |task| {
            let before = task.clone();
            for change in request.containers.as_deref().unwrap_or_default() {
                apply_container_change(
                    task,
                    change.container_name.as_deref(),
                    change.runtime_id.as_deref(),
                    change.status.as_deref(),
                    change.exit_code,
                    change.reason.as_deref(),
                    change.network_bindings.as_deref(),
                    change.image_digest.as_deref(),
                );
            }
            for (name, status) in health {
                if let Some(container) = task.containers.iter_mut().find(|c| &c.name == name) {
                    container.health_status = Some(*status);
                }
            }
            if let Some(at) = millis(request.pull_started_at) {
                task.pull_started_at_ms.get_or_insert(at);
            }
            if let Some(at) = millis(request.pull_stopped_at) {
                task.pull_stopped_at_ms.get_or_insert(at);
            }
            if let Some(status) = status {
                advance_task(
                    task,
                    status,
                    request.reason.as_deref(),
                    millis(request.execution_stopped_at),
                    now,
                );
            }
            Ok(*task != before)
        })
        .await?
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!("The referenced task was not found: {reference}"))
        })?;
        Ok(SubmitTaskStateChangeResponse {
            acknowledgment: Some("ACK".into()),
        })
    }

    pub(crate) async fn submit_container_state_change(
        &self,
        ctx: &RequestContext,
        request: SubmitContainerStateChangeRequest,
    ) -> Result<SubmitContainerStateChangeResponse, ApiError> {
        let cluster_name = cluster_name_from_reference(
            request
                .cluster
                .as_deref()
                .unwrap_or(model::cluster::DEFAULT_CLUSTER_NAME),
        )?;
        let reference = request.task.clone().unwrap_or_default();
        let id = id_from_reference(&reference, "task", &cluster_name)?;
        self.modify_task(ctx, &cluster_name, &id, |task| {
            let before = task.clone();
            apply_container_change(
                task,
                request.container_name.as_deref(),
                request.runtime_id.as_deref(),
                request.status.as_deref(),
                request.exit_code,
                request.reason.as_deref(),
                request.network_bindings.as_deref(),
                None,
            );
            Ok(*task != before)
        })
        .await?
        .ok_or_else(|| {
            ApiError::invalid_parameter(format!("The referenced task was not found: {reference}"))
        })?;
        Ok(SubmitContainerStateChangeResponse {
            acknowledgment: Some("ACK".into()),
        })
    }

    /// What the agent of instance `instance_id` should be running: every
    /// task placed there that is not STOPPED, its task definition with the
    /// `defaultLogDriverMode` account setting applied. Returns the store
    /// revision the list was read at.
    pub async fn agent_desired_tasks(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        instance_id: &str,
    ) -> Result<(i64, Vec<DesiredTask>), ApiError> {
        let prefix = keys::instance_tasks_prefix(&ctx.region, cluster_name, instance_id);
        let index = self
            .store()
            .range(store::RangeRequest::prefix(prefix.clone()))
            .await?;
        let mut desired = Vec::new();
        let mut definitions: BTreeMap<String, TaskDefinition> = BTreeMap::new();
        // The `defaultLogDriverMode` account setting, read once per list.
        let mut default_log_driver_mode: Option<String> = None;
        for kv in &index.kvs {
            let task_id = &kv.key[prefix.len()..];
            let Some(task) = self.load_task(ctx, cluster_name, task_id).await? else {
                continue;
            };
            let task = task.value;
            if task.last_status == TaskStatus::Stopped {
                continue;
            }
            if !definitions.contains_key(&task.task_definition_arn) {
                let reference =
                    TaskDefinitionReference::FamilyRevision(task.family.clone(), task.revision);
                let Some(record) = self.resolve_task_definition(ctx, &reference).await? else {
                    continue;
                };
                let mut definition = record.value.task_definition;
                if default_log_driver_mode.is_none() {
                    default_log_driver_mode = Some(
                        self.effective_account_setting(
                            ctx,
                            &ctx.arns().root_principal(),
                            "defaultLogDriverMode",
                        )
                        .await?,
                    );
                }
                model::task_definition::apply_default_log_driver_mode(
                    &mut definition,
                    default_log_driver_mode.as_deref().unwrap_or_default(),
                );
                definitions.insert(task.task_definition_arn.clone(), definition);
            }
            // A DEACTIVATING task is draining from its load balancers: its
            // containers keep running until the controller moves it on.
            let deactivating = task.last_status == TaskStatus::Deactivating;
            desired.push(DesiredTask {
                task_arn: ctx.arns().task(cluster_name, &task.id),
                cluster_arn: ctx.arns().cluster(cluster_name),
                desired_status: if deactivating {
                    DesiredStatus::Running
                } else {
                    task.desired_status
                },
                last_status: if deactivating {
                    TaskStatus::Running
                } else {
                    task.last_status
                },
                task_definition: definitions[&task.task_definition_arn].clone(),
                overrides: task.overrides.clone(),
                containers: task.containers.clone(),
                version: task.version,
            });
        }
        Ok((index.revision, desired))
    }

    /// The store prefix whose changes can change an agent's desired tasks:
    /// its instance's task index, rewritten on every change of its tasks.
    pub fn agent_watch_prefix(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        instance_id: &str,
    ) -> String {
        keys::instance_tasks_prefix(&ctx.region, cluster_name, instance_id)
    }

    /// The cluster name and instance id an agent session is for, checked.
    pub async fn resolve_agent_session(
        &self,
        ctx: &RequestContext,
        session: &model::agent::SessionRequest,
    ) -> Result<(String, String), ApiError> {
        let cluster = self
            .active_cluster(ctx, Some(&session.cluster))
            .await?
            .value;
        let id = id_from_reference(
            &session.container_instance_arn,
            "container-instance",
            &cluster.cluster_name,
        )?;
        match self
            .load_container_instance(ctx, &cluster.cluster_name, &id)
            .await?
        {
            Some(_) => Ok((cluster.cluster_name, id)),
            None => Err(ApiError::invalid_parameter(format!(
                "The container instance {} is not registered in cluster {}; register it first.",
                session.container_instance_arn, cluster.cluster_name
            ))),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_container_change(
    task: &mut Task,
    name: Option<&str>,
    runtime_id: Option<&str>,
    status: Option<&str>,
    exit_code: Option<i32>,
    reason: Option<&str>,
    bindings: Option<&[ecs_wire::NetworkBinding]>,
    image_digest: Option<&str>,
) {
    let Some(container) = task
        .containers
        .iter_mut()
        .find(|c| Some(c.name.as_str()) == name)
    else {
        return;
    };
    if let Some(runtime_id) = runtime_id {
        container.runtime_id = Some(runtime_id.to_string());
    }
    if let Some(digest) = image_digest {
        container.image_digest = Some(digest.to_string());
    }
    if let Some(bindings) = bindings {
        container.network_bindings = bindings
            .iter()
            .map(|b| NetworkBinding {
                bind_ip: b.bind_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                container_port: b.container_port.unwrap_or(0) as u16,
                host_port: b.host_port.unwrap_or(0) as u16,
                protocol: b
                    .protocol
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "tcp".into()),
            })
            .collect();
    }
    if let Some(next) = status.and_then(ContainerStatus::parse) {
        if next > container.last_status {
            container.last_status = next;
        }
    }
    if container.last_status == ContainerStatus::Stopped {
        if exit_code.is_some() {
            container.exit_code = exit_code;
        }
        if let Some(reason) = reason {
            container.reason = Some(reason.to_string());
        }
    }
}

/// Moves a task forward to `status`, stamping the times ECS stamps.
fn advance_task(
    task: &mut Task,
    status: TaskStatus,
    reason: Option<&str>,
    execution_stopped_at_ms: Option<i64>,
    now_ms: i64,
) {
    if !task.last_status.can_transition_to(status) {
        return;
    }
    task.last_status = status;
    if status >= TaskStatus::Running
        && task.started_at_ms.is_none()
        && status != TaskStatus::Stopped
    {
        task.started_at_ms = Some(now_ms);
        task.connectivity_at_ms.get_or_insert(now_ms);
    }
    if status >= TaskStatus::Deactivating {
        task.stopping_at_ms.get_or_insert(now_ms);
    }
    if status == TaskStatus::Stopped {
        task.stopped_at_ms = Some(now_ms);
        task.execution_stopped_at_ms = Some(execution_stopped_at_ms.unwrap_or(now_ms));
        task.connectivity_at_ms.get_or_insert(now_ms);
        for container in &mut task.containers {
            container.last_status = ContainerStatus::Stopped;
        }
        if task.desired_status == DesiredStatus::Running {
            // The task stopped on its own: it failed to start, or an
            // essential container exited.
            task.desired_status = DesiredStatus::Stopped;
            let never_started = task.started_at_ms.is_none();
            task.stop_code = Some(if never_started {
                TaskStopCode::TaskFailedToStart
            } else {
                TaskStopCode::EssentialContainerExited
            });
            task.stopped_reason = Some(match reason {
                Some(reason) if never_started => reason.to_string(),
                _ if never_started => "Task failed to start".to_string(),
                _ => ESSENTIAL_CONTAINER_EXITED.to_string(),
            });
        }
    }
}

impl Ecs {
    /// Deletes tasks that have been STOPPED for longer than the retention
    /// (`EcsConfig::stopped_task_retention_ms`), in every region. Returns how
    /// many were deleted. The shell calls it periodically.
    pub async fn reap_stopped_tasks(&self, now_ms: i64) -> Result<usize, ApiError> {
        let response = self
            .store()
            .range(store::RangeRequest::prefix("/ecs/"))
            .await?;
        let mut reaped = 0;
        for kv in response.kvs {
            let mut segments = kv.key.split('/');
            // "", "ecs", region, kind, …
            if segments.nth(3) != Some("tasks") {
                continue;
            }
            let task: Task = records::decode(&kv.key, &kv.value)?;
            let expired = task.last_status == TaskStatus::Stopped
                && task
                    .stopped_at_ms
                    .is_some_and(|at| now_ms - at > self.config().stopped_task_retention_ms);
            if !expired {
                continue;
            }
            let txn = Txn::new()
                .when(Compare::mod_revision_is(kv.key.clone(), kv.mod_revision))
                .then(Op::delete(kv.key.clone()));
            if self.store().txn(txn).await?.succeeded {
                reaped += 1;
            }
        }
        Ok(reaped)
    }
}

/// The value of a RunTask clientToken record.
fn encode_run_task_token(tasks: &[Task], failures: &[(Option<String>, String)]) -> Vec<u8> {
    records::encode(&RunTaskToken {
        task_ids: tasks.iter().map(|t| t.id.clone()).collect(),
        failures: failures.to_vec(),
    })
}
