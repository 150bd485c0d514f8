//! From a desired task to what Docker must create: the container definitions,
//! task-level settings and container overrides resolved into
//! [`runtime::ContainerSpec`]s, with names, labels, volumes, links and the
//! ordering the reconciler needs.
//!
//! Pure: no I/O, no clock. Every field of the task definition is either
//! honoured or turned into a [`Unsupported`] reason that stops the task,
//! never silently dropped.

use std::collections::{BTreeMap, BTreeSet};

use crate::awslogs::{self, AwsLogsConfig, OptionsError, LABEL_AWSLOGS_OPTIONS};
use ecs_wire::{
    ContainerCondition, ContainerDefinition, ContainerOverride, IpcMode, LogDriver, NetworkMode,
    PidMode, Scope, TaskDefinition, TaskOverride, TransportProtocol, Volume,
};
use model::agent::{
    DesiredTask, LABEL_CLUSTER, LABEL_CONTAINER_INSTANCE_ARN, LABEL_CONTAINER_NAME, LABEL_TASK_ARN,
    LABEL_TASK_DEFINITION_FAMILY, LABEL_TASK_DEFINITION_VERSION,
};
use model::task::NetworkBinding;
use runtime::{
    ContainerSpec, Device, DevicePermission, ExtraHost, HealthCheck, Link, LogDriver as Logging,
    Mount, PortBinding, Protocol, RegistryAuth, Tmpfs, Ulimit, VolumeFrom, VolumeSpec,
};

/// Label listing the task-scoped Docker volumes of a container's task
/// (comma-separated), so that a restarted agent can remove them with the
/// task's containers even when the control plane has forgotten the task.
pub const LABEL_TASK_VOLUMES: &str = "berth.task-volumes";

/// ECS's default `stopTimeout` on EC2 (`ECS_CONTAINER_STOP_TIMEOUT`).
pub const DEFAULT_STOP_TIMEOUT_S: u32 = 30;
/// ECS's default `restartAttemptPeriod`.
pub const DEFAULT_RESTART_ATTEMPT_PERIOD_S: u32 = 300;
/// Docker's smallest CPU share; ECS passes it for `cpu` 0, 1 or unset.
pub const MIN_CPU_SHARES: u64 = 2;
/// The Linux kernel's largest CPU share (256 vCPUs).
pub const MAX_CPU_SHARES: u64 = 262_144;

/// Why a task cannot run on this agent; `reason` becomes the task's
/// `stoppedReason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    pub reason: String,
}

fn unsupported(reason: impl Into<String>) -> Unsupported {
    Unsupported {
        reason: reason.into(),
    }
}

/// What the blueprint needs to know about this agent.
#[derive(Clone, Debug, Default)]
pub struct AgentFacts {
    /// Put on every container as [`LABEL_CONTAINER_INSTANCE_ARN`].
    pub container_instance_arn: String,
    /// ECS `cpuArchitecture` of this machine: `X86_64` or `ARM64`.
    pub cpu_architecture: String,
    /// Used when a container definition has no `stopTimeout`.
    pub default_stop_timeout_s: u32,
    /// `repositoryCredentials.credentialsParameter` → registry credentials.
    /// Berth has no Secrets Manager; the agent's operator supplies these.
    pub registry_credentials: BTreeMap<String, RegistryAuth>,
}

/// How a container's image may be pulled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryCredentials {
    /// Anonymous pull.
    None,
    Auth(RegistryAuth),
    /// `repositoryCredentials` names credentials this agent does not hold:
    /// pulling fails with this reason (an image already present still runs).
    Unresolved(String),
}

/// One `dependsOn` entry, or an implicit START dependency from `links` or
/// `volumesFrom`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub container_name: String,
    pub condition: ContainerCondition,
}

/// ECS `restartPolicy`, enabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    pub ignored_exit_codes: Vec<i32>,
    pub attempt_period_s: u32,
}

impl RestartPolicy {
    /// Whether a container that exited with `exit_code` after running for
    /// `ran_for_ms` is restarted (ECS: not for ignored codes, and only once
    /// it has run for the attempt period).
    pub fn should_restart(&self, exit_code: i64, ran_for_ms: i64) -> bool {
        let ignored = self
            .ignored_exit_codes
            .iter()
            .any(|code| i64::from(*code) == exit_code);
        !ignored && ran_for_ms >= i64::from(self.attempt_period_s) * 1000
    }
}

/// One container of the task, ready to create.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerBlueprint {
    /// ECS container name (within the task).
    pub name: String,
    /// Docker container name, also in `spec.name`.
    pub docker_name: String,
    pub image: String,
    pub registry_credentials: RegistryCredentials,
    pub essential: bool,
    pub depends_on: Vec<Dependency>,
    /// ECS `startTimeout`: how long to wait for dependencies.
    pub start_timeout_s: Option<u32>,
    /// ECS `stopTimeout` or the agent's default.
    pub stop_timeout_s: u32,
    pub restart_policy: Option<RestartPolicy>,
    /// Network bindings ECS reports for `host` network mode, where Docker
    /// publishes nothing: each container port on the same host port.
    pub host_mode_bindings: Vec<NetworkBinding>,
    /// `logDriver: awslogs`: the agent delivers the container's output
    /// (Docker logs it with `json-file`, see [`crate::awslogs`]).
    pub awslogs: Option<AwsLogsConfig>,
    pub spec: ContainerSpec,
}

/// A Docker volume the task needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeBlueprint {
    pub spec: VolumeSpec,
    /// Task-scoped volumes are created for the task and removed with it;
    /// shared ones outlive it.
    pub task_scoped: bool,
    /// Shared volumes: create when missing (`autoprovision`). Task-scoped
    /// volumes are always created.
    pub create: bool,
}

/// Everything needed to run one task on Docker.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskBlueprint {
    pub task_arn: String,
    /// In definition order.
    pub containers: Vec<ContainerBlueprint>,
    pub volumes: Vec<VolumeBlueprint>,
}

impl TaskBlueprint {
    pub fn container(&self, name: &str) -> Option<&ContainerBlueprint> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// Names of the task-scoped volumes, removed with the task.
    pub fn task_scoped_volume_names(&self) -> Vec<String> {
        self.volumes
            .iter()
            .filter(|v| v.task_scoped)
            .map(|v| v.spec.name.clone())
            .collect()
    }

    /// Container names in an order where every container comes after the
    /// containers it depends on (definition order among equals).
    pub fn start_order(&self) -> Vec<&str> {
        let mut placed: Vec<&str> = Vec::with_capacity(self.containers.len());
        while placed.len() < self.containers.len() {
            let before = placed.len();
            for container in &self.containers {
                if placed.contains(&container.name.as_str()) {
                    continue;
                }
                let ready = container.depends_on.iter().all(|dependency| {
                    placed.contains(&dependency.container_name.as_str())
                        || self.container(&dependency.container_name).is_none()
                });
                if ready {
                    placed.push(&container.name);
                }
            }
            if placed.len() == before {
                // A cycle (the control plane validates against these): keep
                // definition order for the rest.
                for container in &self.containers {
                    if !placed.contains(&container.name.as_str()) {
                        placed.push(&container.name);
                    }
                }
                break;
            }
        }
        placed
    }

    /// Names of the containers that depend on `name` (explicitly or through
    /// links and volumesFrom).
    pub fn dependents_of(&self, name: &str) -> Vec<&str> {
        self.containers
            .iter()
            .filter(|c| c.depends_on.iter().any(|d| d.container_name == name))
            .map(|c| c.name.as_str())
            .collect()
    }
}

/// The task id: the last part of the task ARN.
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// The cluster name from a cluster ARN (or a bare name).
pub fn cluster_name(cluster_arn: &str) -> &str {
    cluster_arn
        .split_once(":cluster/")
        .map_or(cluster_arn, |(_, name)| name)
}

/// Keeps only the characters Docker allows in names (`[a-zA-Z0-9_.-]`).
fn docker_safe(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect()
}

/// The Docker name of a container, as ECS names them:
/// `ecs-<family>-<revision>-<container>-<task id>`. The task id is random hex,
/// so the name is unique on the host and the same on every attempt, which
/// makes a repeated create an adoption instead of a duplicate.
pub fn docker_container_name(
    family: &str,
    revision: i32,
    container: &str,
    task_arn: &str,
) -> String {
    format!(
        "ecs-{}-{revision}-{}-{}",
        docker_safe(family),
        docker_safe(container),
        docker_safe(task_id(task_arn))
    )
}

/// The Docker name of a task-scoped volume: `ecs-<family>-<revision>-<volume>-<task id>`.
pub fn task_volume_name(family: &str, revision: i32, volume: &str, task_arn: &str) -> String {
    format!(
        "ecs-{}-{revision}-{}-{}",
        docker_safe(family),
        docker_safe(volume),
        docker_safe(task_id(task_arn))
    )
}

/// The first field of the task definition (or overrides) this agent cannot
/// honour, as a reason for the user. The control plane can call this at
/// RunTask to reject such tasks before placing them.
pub fn unsupported_feature(
    definition: &TaskDefinition,
    overrides: &TaskOverride,
) -> Option<String> {
    let feature = |what: &str, hint: &str| {
        Some(format!(
            "UnsupportedFeature: {what} is not supported by Berth yet; {hint}."
        ))
    };
    match definition.network_mode {
        Some(NetworkMode::Awsvpc) => {
            return feature("networkMode 'awsvpc'", "use 'bridge', 'host' or 'none'")
        }
        Some(NetworkMode::Bridge | NetworkMode::Host | NetworkMode::None) | None => {}
    }
    if definition.task_role_arn.is_some() || overrides.task_role_arn.is_some() {
        return feature(
            "taskRoleArn (task IAM role credentials)",
            "remove it and give the containers credentials another way",
        );
    }
    if definition.pid_mode == Some(PidMode::Task) {
        return feature("pidMode 'task'", "use 'host' or leave it unset");
    }
    if definition.ipc_mode == Some(IpcMode::Task) {
        return feature("ipcMode 'task'", "use 'host', 'none' or leave it unset");
    }
    if definition.proxy_configuration.is_some() {
        return feature("proxyConfiguration (App Mesh)", "remove it");
    }
    if definition
        .inference_accelerators
        .as_ref()
        .is_some_and(|a| !a.is_empty())
        || overrides
            .inference_accelerator_overrides
            .as_ref()
            .is_some_and(|a| !a.is_empty())
    {
        return feature("inferenceAccelerators", "remove them");
    }
    if definition.ephemeral_storage.is_some() || overrides.ephemeral_storage.is_some() {
        return feature(
            "ephemeralStorage (a Fargate setting)",
            "remove it; containers use the host's disk",
        );
    }
    if let Some(platform) = &definition.runtime_platform {
        if let Some(family) = &platform.operating_system_family {
            if family.as_str() != "LINUX" {
                return feature(
                    &format!("runtimePlatform.operatingSystemFamily '{family}'"),
                    "Berth runs Linux containers only",
                );
            }
        }
    }
    for volume in definition.volumes.as_deref().unwrap_or_default() {
        let name = volume.name.as_deref().unwrap_or_default();
        if volume.efs_volume_configuration.is_some() {
            return feature(
                &format!("the EFS volume '{name}'"),
                "use a host path or a Docker volume",
            );
        }
        if volume
            .fsx_windows_file_server_volume_configuration
            .is_some()
        {
            return feature(
                &format!("the FSx volume '{name}'"),
                "use a host path or a Docker volume",
            );
        }
        if volume.s3files_volume_configuration.is_some() {
            return feature(
                &format!("the S3 files volume '{name}'"),
                "use a host path or a Docker volume",
            );
        }
        if volume.configured_at_launch == Some(true) {
            return feature(
                &format!("configuredAtLaunch for volume '{name}'"),
                "define the volume in the task definition",
            );
        }
    }
    for container in definition
        .container_definitions
        .as_deref()
        .unwrap_or_default()
    {
        if let Some(reason) = unsupported_container_feature(container) {
            return Some(reason);
        }
    }
    for container_override in overrides.container_overrides.as_deref().unwrap_or_default() {
        let name = container_override.name.as_deref().unwrap_or_default();
        if container_override
            .environment_files
            .as_ref()
            .is_some_and(|f| !f.is_empty())
        {
            return feature(
                &format!("environmentFiles (from S3) in the override of container '{name}'"),
                "use environment",
            );
        }
        if container_override
            .resource_requirements
            .as_ref()
            .is_some_and(|r| !r.is_empty())
        {
            return feature(
                &format!("resourceRequirements (GPUs) in the override of container '{name}'"),
                "remove them",
            );
        }
    }
    None
}

fn unsupported_container_feature(container: &ContainerDefinition) -> Option<String> {
    let name = container.name.as_deref().unwrap_or_default();
    let feature = |what: &str, hint: &str| {
        Some(format!(
            "UnsupportedFeature: {what} in container '{name}' is not supported by Berth yet; {hint}."
        ))
    };
    if container.secrets.as_ref().is_some_and(|s| !s.is_empty()) {
        return feature(
            "secrets (SSM Parameter Store / Secrets Manager)",
            "pass the values with environment",
        );
    }
    if container
        .environment_files
        .as_ref()
        .is_some_and(|f| !f.is_empty())
    {
        return feature("environmentFiles (from S3)", "use environment");
    }
    if container
        .resource_requirements
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        return feature("resourceRequirements (GPUs, accelerators)", "remove them");
    }
    if container.firelens_configuration.is_some() {
        return feature("firelensConfiguration", "use the json-file log driver");
    }
    if container
        .credential_specs
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        return feature("credentialSpecs (Active Directory)", "remove them");
    }
    if let Some(log) = &container.log_configuration {
        match log.log_driver {
            Some(LogDriver::JsonFile | LogDriver::Awslogs) | None => {}
            Some(other) => {
                return feature(
                    &format!("logConfiguration.logDriver '{other}'"),
                    "use 'awslogs' or 'json-file'",
                )
            }
        }
        if log.secret_options.as_ref().is_some_and(|s| !s.is_empty()) {
            return feature(
                "logConfiguration.secretOptions",
                "pass the options in options",
            );
        }
    }
    if let Some(linux) = &container.linux_parameters {
        if linux.max_swap.is_some() {
            return feature("linuxParameters.maxSwap", "remove it");
        }
        if linux.swappiness.is_some() {
            return feature("linuxParameters.swappiness", "remove it");
        }
    }
    for mapping in container.port_mappings.as_deref().unwrap_or_default() {
        if mapping.container_port_range.is_some() {
            return feature(
                "portMappings.containerPortRange",
                "map each port with containerPort",
            );
        }
    }
    None
}

/// Builds the blueprint of `task`, or says why this agent cannot run it.
pub fn task_blueprint(
    task: &DesiredTask,
    facts: &AgentFacts,
) -> Result<TaskBlueprint, Unsupported> {
    let definition = &task.task_definition;
    if let Some(reason) = unsupported_feature(definition, &task.overrides) {
        return Err(unsupported(reason));
    }
    if let Some(architecture) = definition
        .runtime_platform
        .as_ref()
        .and_then(|p| p.cpu_architecture.as_ref())
    {
        if architecture.as_str() != facts.cpu_architecture {
            return Err(unsupported(format!(
                "UnsupportedFeature: runtimePlatform.cpuArchitecture '{architecture}' does not match \
                 this container instance ({}); place the task on a matching instance.",
                facts.cpu_architecture
            )));
        }
    }
    let family = definition.family.as_deref().unwrap_or("task");
    let revision = definition.revision.unwrap_or(0);
    let definitions = definition
        .container_definitions
        .as_deref()
        .unwrap_or_default();
    // The control plane validates task definitions, but the agent must not
    // trust its session stream to: an unnamed container has no Docker name.
    if definitions.iter().any(|c| c.name.is_none()) {
        return Err(unsupported(
            "Invalid task definition: a container definition has no name; register the task \
             definition again with a name for every container.",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(name) = definitions
        .iter()
        .filter_map(|c| c.name.as_deref())
        .find(|name| !seen.insert(*name))
    {
        return Err(unsupported(format!(
            "Invalid task definition: more than one container definition is named '{name}'; \
             register the task definition again with a unique name for every container."
        )));
    }
    let docker_names: BTreeMap<&str, String> = definitions
        .iter()
        .filter_map(|c| c.name.as_deref())
        .map(|name| {
            (
                name,
                docker_container_name(family, revision, name, &task.task_arn),
            )
        })
        .collect();
    let volumes = task_volumes(definition, &task.task_arn)?;
    let task_volume_names: Vec<String> = volumes
        .iter()
        .filter(|v| v.task_scoped)
        .map(|v| v.spec.name.clone())
        .collect();
    let volume_mounts: BTreeMap<&str, VolumeSource> = definition
        .volumes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|volume| {
            Some((
                volume.name.as_deref()?,
                volume_source(volume, family, revision, &task.task_arn),
            ))
        })
        .collect();
    let task_settings = TaskSettings::new(definition, &task.overrides)?;
    let network_mode = definition.network_mode.unwrap_or(NetworkMode::Bridge);

    let mut containers = Vec::with_capacity(definitions.len());
    for container in definitions {
        let name = container.name.clone().unwrap_or_default();
        let container_override = task
            .overrides
            .container_overrides
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|o| o.name.as_deref() == Some(name.as_str()));
        let mut labels: BTreeMap<String, String> =
            container.docker_labels.clone().unwrap_or_default();
        for (key, value) in [
            (
                LABEL_CONTAINER_INSTANCE_ARN,
                facts.container_instance_arn.clone(),
            ),
            (LABEL_CLUSTER, cluster_name(&task.cluster_arn).to_string()),
            (LABEL_TASK_ARN, task.task_arn.clone()),
            (LABEL_CONTAINER_NAME, name.clone()),
            (LABEL_TASK_DEFINITION_FAMILY, family.to_string()),
            (LABEL_TASK_DEFINITION_VERSION, revision.to_string()),
        ] {
            labels.insert(key.to_string(), value);
        }
        if !task_volume_names.is_empty() {
            labels.insert(LABEL_TASK_VOLUMES.to_string(), task_volume_names.join(","));
        }
        let awslogs = awslogs_config(container)?;
        if awslogs.is_some() {
            let options = container
                .log_configuration
                .as_ref()
                .and_then(|log| log.options.clone())
                .unwrap_or_default();
            labels.insert(
                LABEL_AWSLOGS_OPTIONS.to_string(),
                serde_json::to_string(&options).expect("a string map serializes"),
            );
        }
        let docker_name = docker_names[name.as_str()].clone();
        let spec = container_spec(ContainerInput {
            container,
            container_override,
            docker_name: &docker_name,
            docker_names: &docker_names,
            volume_mounts: &volume_mounts,
            task: &task_settings,
            network_mode,
            labels,
            stop_timeout_s: stop_timeout_s(container, facts),
        })?;
        containers.push(ContainerBlueprint {
            name: name.clone(),
            docker_name,
            image: container.image.clone().unwrap_or_default(),
            registry_credentials: registry_credentials(container, facts),
            essential: container.essential.unwrap_or(true),
            depends_on: dependencies(container),
            start_timeout_s: container.start_timeout.map(|s| s.max(0) as u32),
            stop_timeout_s: stop_timeout_s(container, facts),
            restart_policy: restart_policy(container),
            host_mode_bindings: host_mode_bindings(container, network_mode),
            awslogs,
            spec,
        });
    }
    Ok(TaskBlueprint {
        task_arn: task.task_arn.clone(),
        containers,
        volumes,
    })
}

/// The awslogs settings of a container with `logDriver: awslogs`, or why its
/// options cannot be used (refused before the container is created, in
/// Docker's words where Docker would refuse them).
fn awslogs_config(container: &ContainerDefinition) -> Result<Option<AwsLogsConfig>, Unsupported> {
    let Some(log) = container
        .log_configuration
        .as_ref()
        .filter(|log| log.log_driver == Some(LogDriver::Awslogs))
    else {
        return Ok(None);
    };
    let name = container.name.as_deref().unwrap_or_default();
    awslogs::parse_options(&log.options.clone().unwrap_or_default())
        .map(Some)
        .map_err(|error| match error {
            OptionsError::Invalid(message) => unsupported(format!(
                "CannotCreateContainerError: Error response from daemon: {message} \
                 (logConfiguration of container '{name}')"
            )),
            OptionsError::Unsupported(what) => unsupported(format!(
                "UnsupportedFeature: {what} (logConfiguration of container '{name}')."
            )),
        })
}

/// What Docker is told to log with: `json-file` (without options) for an
/// awslogs container, whose output the agent delivers itself.
fn docker_log_driver(container: &ContainerDefinition) -> Option<Logging> {
    container
        .log_configuration
        .as_ref()
        .map(|log| match log.log_driver {
            Some(LogDriver::Awslogs) => Logging {
                name: LogDriver::JsonFile.as_str().to_string(),
                options: BTreeMap::new(),
            },
            driver => Logging {
                name: driver.unwrap_or(LogDriver::JsonFile).as_str().to_string(),
                options: log.options.clone().unwrap_or_default(),
            },
        })
}

fn stop_timeout_s(container: &ContainerDefinition, facts: &AgentFacts) -> u32 {
    match container.stop_timeout {
        Some(seconds) => seconds.max(0) as u32,
        None if facts.default_stop_timeout_s > 0 => facts.default_stop_timeout_s,
        None => DEFAULT_STOP_TIMEOUT_S,
    }
}

fn registry_credentials(
    container: &ContainerDefinition,
    facts: &AgentFacts,
) -> RegistryCredentials {
    let Some(parameter) = container
        .repository_credentials
        .as_ref()
        .and_then(|c| c.credentials_parameter.as_deref())
    else {
        return RegistryCredentials::None;
    };
    match facts.registry_credentials.get(parameter) {
        Some(auth) => RegistryCredentials::Auth(auth.clone()),
        None => RegistryCredentials::Unresolved(format!(
            "repositoryCredentials.credentialsParameter '{parameter}' is not known to this agent: \
             Berth has no Secrets Manager, so give the agent these credentials with \
             --registry-credentials"
        )),
    }
}

fn dependencies(container: &ContainerDefinition) -> Vec<Dependency> {
    let mut dependencies: Vec<Dependency> = container
        .depends_on
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|d| {
            Some(Dependency {
                container_name: d.container_name.clone()?,
                condition: d.condition.unwrap_or(ContainerCondition::Start),
            })
        })
        .collect();
    // A link or volumesFrom needs the other container to exist and (for a
    // link) to run: an implicit START dependency, as in ECS.
    let implicit = container
        .links
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|link| {
            link.split_once(':')
                .map_or(link.as_str(), |(name, _)| name)
                .to_string()
        })
        .chain(
            container
                .volumes_from
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.source_container.clone()),
        );
    for name in implicit {
        if !dependencies.iter().any(|d| d.container_name == name) {
            dependencies.push(Dependency {
                container_name: name,
                condition: ContainerCondition::Start,
            });
        }
    }
    dependencies
}

fn restart_policy(container: &ContainerDefinition) -> Option<RestartPolicy> {
    let policy = container.restart_policy.as_ref()?;
    if policy.enabled != Some(true) {
        return None;
    }
    Some(RestartPolicy {
        ignored_exit_codes: policy.ignored_exit_codes.clone().unwrap_or_default(),
        attempt_period_s: policy
            .restart_attempt_period
            .map_or(DEFAULT_RESTART_ATTEMPT_PERIOD_S, |s| s.max(0) as u32),
    })
}

fn transport(protocol: Option<TransportProtocol>) -> Protocol {
    match protocol {
        Some(TransportProtocol::Udp) => Protocol::Udp,
        Some(TransportProtocol::Tcp) | None => Protocol::Tcp,
    }
}

fn host_mode_bindings(
    container: &ContainerDefinition,
    network_mode: NetworkMode,
) -> Vec<NetworkBinding> {
    if network_mode != NetworkMode::Host {
        return Vec::new();
    }
    container
        .port_mappings
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|mapping| {
            let container_port = u16::try_from(mapping.container_port?).ok()?;
            let host_port = mapping
                .host_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .unwrap_or(container_port);
            Some(NetworkBinding {
                bind_ip: "0.0.0.0".to_string(),
                container_port,
                host_port,
                protocol: transport(mapping.protocol).as_str().to_string(),
            })
        })
        .collect()
}

/// Where a mount point's `sourceVolume` comes from.
#[derive(Clone, Debug)]
enum VolumeSource {
    HostPath(String),
    DockerVolume(String),
}

fn volume_source(volume: &Volume, family: &str, revision: i32, task_arn: &str) -> VolumeSource {
    let name = volume.name.as_deref().unwrap_or_default();
    if let Some(path) = volume.host.as_ref().and_then(|h| h.source_path.clone()) {
        if !path.is_empty() {
            return VolumeSource::HostPath(path);
        }
    }
    match &volume.docker_volume_configuration {
        Some(config) if config.scope == Some(Scope::Shared) => {
            VolumeSource::DockerVolume(name.to_string())
        }
        _ => VolumeSource::DockerVolume(task_volume_name(family, revision, name, task_arn)),
    }
}

fn task_volumes(
    definition: &TaskDefinition,
    task_arn: &str,
) -> Result<Vec<VolumeBlueprint>, Unsupported> {
    let family = definition.family.as_deref().unwrap_or("task");
    let revision = definition.revision.unwrap_or(0);
    let mut volumes = Vec::new();
    for volume in definition.volumes.as_deref().unwrap_or_default() {
        let name = volume.name.as_deref().unwrap_or_default();
        let source = volume_source(volume, family, revision, task_arn);
        let VolumeSource::DockerVolume(docker_name) = source else {
            continue;
        };
        let config = volume
            .docker_volume_configuration
            .clone()
            .unwrap_or_default();
        let shared = config.scope == Some(Scope::Shared);
        if config.autoprovision == Some(true) && !shared {
            return Err(unsupported(format!(
                "Invalid volume '{name}': autoprovision applies to shared-scope volumes only; set scope 'shared' or remove autoprovision."
            )));
        }
        volumes.push(VolumeBlueprint {
            spec: VolumeSpec {
                name: docker_name,
                driver: config.driver.clone(),
                driver_opts: config.driver_opts.clone().unwrap_or_default(),
                labels: config.labels.clone().unwrap_or_default(),
            },
            task_scoped: !shared,
            create: !shared || config.autoprovision == Some(true),
        });
    }
    Ok(volumes)
}

/// Task-level settings every container of the task gets.
struct TaskSettings {
    cpu_units: Option<u32>,
    memory_mib: Option<u32>,
    pid_mode: Option<String>,
    ipc_mode: Option<String>,
}

impl TaskSettings {
    fn new(
        definition: &TaskDefinition,
        overrides: &TaskOverride,
    ) -> Result<TaskSettings, Unsupported> {
        let cpu = overrides.cpu.as_deref().or(definition.cpu.as_deref());
        let memory = overrides.memory.as_deref().or(definition.memory.as_deref());
        let cpu_units = cpu
            .map(model::task_size::parse_task_cpu_units)
            .transpose()
            .map_err(|e| unsupported(e.to_string()))?;
        let memory_mib = memory
            .map(model::task_size::parse_task_memory_mib)
            .transpose()
            .map_err(|e| unsupported(e.to_string()))?;
        Ok(TaskSettings {
            cpu_units,
            memory_mib,
            pid_mode: match definition.pid_mode {
                Some(PidMode::Host) => Some("host".to_string()),
                Some(PidMode::Task) | None => None,
            },
            ipc_mode: match definition.ipc_mode {
                Some(IpcMode::Host) => Some("host".to_string()),
                Some(IpcMode::None) => Some("none".to_string()),
                Some(IpcMode::Task) | None => None,
            },
        })
    }
}

struct ContainerInput<'a> {
    container: &'a ContainerDefinition,
    container_override: Option<&'a ContainerOverride>,
    docker_name: &'a str,
    docker_names: &'a BTreeMap<&'a str, String>,
    volume_mounts: &'a BTreeMap<&'a str, VolumeSource>,
    task: &'a TaskSettings,
    network_mode: NetworkMode,
    labels: BTreeMap<String, String>,
    stop_timeout_s: u32,
}

fn positive_u64(value: Option<i32>) -> Option<u64> {
    value.filter(|v| *v > 0).map(|v| v as u64)
}

fn container_spec(input: ContainerInput<'_>) -> Result<ContainerSpec, Unsupported> {
    let ContainerInput {
        container: c,
        container_override: o,
        ..
    } = input;
    let name = c.name.as_deref().unwrap_or_default();
    let cpu = o.and_then(|o| o.cpu).or(c.cpu);
    let memory = o.and_then(|o| o.memory).or(c.memory);
    let memory_reservation = o
        .and_then(|o| o.memory_reservation)
        .or(c.memory_reservation);
    let command = o
        .and_then(|o| o.command.clone())
        .or_else(|| c.command.clone());

    let mut env: Vec<(String, String)> = Vec::new();
    for pair in c
        .environment
        .iter()
        .flatten()
        .chain(o.and_then(|o| o.environment.as_ref()).into_iter().flatten())
    {
        if let Some(key) = &pair.name {
            env.push((key.clone(), pair.value.clone().unwrap_or_default()));
        }
    }

    let network_mode = if c.disable_networking == Some(true) {
        runtime::NetworkMode::None
    } else {
        match input.network_mode {
            NetworkMode::Host => runtime::NetworkMode::Host,
            NetworkMode::None => runtime::NetworkMode::None,
            NetworkMode::Bridge | NetworkMode::Awsvpc => runtime::NetworkMode::Bridge,
        }
    };
    let port_bindings = if network_mode == runtime::NetworkMode::Bridge {
        let mut bindings = Vec::new();
        for mapping in c.port_mappings.as_deref().unwrap_or_default() {
            let container_port = mapping
                .container_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    unsupported(format!(
                        "Invalid 'containerPort' setting for container '{name}'."
                    ))
                })?;
            let host_port = match mapping.host_port {
                None | Some(0) => None,
                Some(port) => Some(u16::try_from(port).map_err(|_| {
                    unsupported(format!(
                        "Invalid 'hostPort' setting for container '{name}'."
                    ))
                })?),
            };
            bindings.push(PortBinding {
                container_port,
                host_port,
                protocol: transport(mapping.protocol),
                host_ip: None,
            });
        }
        bindings
    } else {
        Vec::new()
    };

    let mut mounts = Vec::new();
    for mount_point in c.mount_points.as_deref().unwrap_or_default() {
        let source = mount_point.source_volume.as_deref().unwrap_or_default();
        let target = mount_point.container_path.clone().unwrap_or_default();
        let read_only = mount_point.read_only.unwrap_or(false);
        let mount = match input.volume_mounts.get(source) {
            Some(VolumeSource::HostPath(path)) => Mount::Bind {
                source: path.clone(),
                target,
                read_only,
            },
            Some(VolumeSource::DockerVolume(volume)) => Mount::Volume {
                name: volume.clone(),
                target,
                read_only,
            },
            None => return Err(unsupported(format!("Unknown volume '{source}'."))),
        };
        mounts.push(mount);
    }

    let resolve = |other: &str, field: &str| {
        input.docker_names.get(other).cloned().ok_or_else(|| {
            unsupported(format!(
                "Invalid '{field}' setting for container '{name}': there is no container '{other}' in the task."
            ))
        })
    };
    let mut volumes_from = Vec::new();
    for from in c.volumes_from.as_deref().unwrap_or_default() {
        let source = from.source_container.as_deref().unwrap_or_default();
        volumes_from.push(VolumeFrom {
            container: resolve(source, "volumesFrom")?,
            read_only: from.read_only.unwrap_or(false),
        });
    }
    let mut links = Vec::new();
    for link in c.links.as_deref().unwrap_or_default() {
        let (other, alias) = link
            .split_once(':')
            .unwrap_or((link.as_str(), link.as_str()));
        links.push(Link {
            container_name: resolve(other, "links")?,
            alias: alias.to_string(),
        });
    }

    let linux = c.linux_parameters.clone().unwrap_or_default();
    let capabilities = linux.capabilities.clone().unwrap_or_default();
    let healthcheck = c.health_check.as_ref().map(|h| HealthCheck {
        test: h.command.clone().unwrap_or_default(),
        interval_s: h.interval.map_or(30, |v| v.max(0) as u32),
        timeout_s: h.timeout.map_or(5, |v| v.max(0) as u32),
        start_period_s: h.start_period.map_or(0, |v| v.max(0) as u32),
        retries: h.retries.map_or(3, |v| v.max(0) as u32),
    });
    let ulimits = c
        .ulimits
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|u| {
            Some(Ulimit {
                name: u.name?.as_str().to_string(),
                soft_limit: i64::from(u.soft_limit.unwrap_or(0)),
                hard_limit: i64::from(u.hard_limit.unwrap_or(0)),
            })
        })
        .collect();
    let devices = linux
        .devices
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|d| Device {
            host_path: d.host_path.clone().unwrap_or_default(),
            container_path: d.container_path.clone(),
            permissions: d
                .permissions
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|p| match p {
                    ecs_wire::DeviceCgroupPermission::Read => DevicePermission::Read,
                    ecs_wire::DeviceCgroupPermission::Write => DevicePermission::Write,
                    ecs_wire::DeviceCgroupPermission::Mknod => DevicePermission::Mknod,
                })
                .collect(),
        })
        .collect();
    let tmpfs = linux
        .tmpfs
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|t| Tmpfs {
            container_path: t.container_path.clone().unwrap_or_default(),
            size_mib: t.size.map_or(0, |s| s.max(0) as u64),
            mount_options: t.mount_options.clone().unwrap_or_default(),
        })
        .collect();
    let log_driver = docker_log_driver(c);
    // ECS on Linux: cpu 0, 1 or unset → 2 shares; above 256 vCPUs → the kernel's maximum.
    let cpu_shares = Some((cpu.unwrap_or(0).max(0) as u64).clamp(MIN_CPU_SHARES, MAX_CPU_SHARES));
    // Docker has no task-level cgroup here: each container is held to the
    // task's limits (exact for one container; see the crate docs).
    let memory_limit_mib = positive_u64(memory).or(input.task.memory_mib.map(u64::from));
    let nano_cpus = input
        .task
        .cpu_units
        .map(|units| u64::from(units) * 1_000_000_000 / 1024);

    Ok(ContainerSpec {
        name: input.docker_name.to_string(),
        image: c.image.clone().unwrap_or_default(),
        labels: input.labels,
        entrypoint: c.entry_point.clone(),
        command,
        env,
        working_dir: c.working_directory.clone(),
        user: c.user.clone(),
        hostname: c.hostname.clone(),
        extra_hosts: c
            .extra_hosts
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|h| ExtraHost {
                hostname: h.hostname.clone().unwrap_or_default(),
                ip_address: h.ip_address.clone().unwrap_or_default(),
            })
            .collect(),
        dns_servers: c.dns_servers.clone().unwrap_or_default(),
        dns_search_domains: c.dns_search_domains.clone().unwrap_or_default(),
        ulimits,
        privileged: c.privileged.unwrap_or(false),
        readonly_rootfs: c.readonly_root_filesystem.unwrap_or(false),
        init: linux.init_process_enabled.unwrap_or(false),
        open_stdin: c.interactive.unwrap_or(false),
        tty: c.pseudo_terminal.unwrap_or(false),
        cap_add: capabilities.add.clone().unwrap_or_default(),
        cap_drop: capabilities.drop.clone().unwrap_or_default(),
        tmpfs,
        shm_size_mib: positive_u64(linux.shared_memory_size),
        devices,
        sysctls: c
            .system_controls
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| Some((s.namespace.clone()?, s.value.clone().unwrap_or_default())))
            .collect(),
        security_opt: c.docker_security_options.clone().unwrap_or_default(),
        network_mode,
        port_bindings,
        cpu_shares,
        memory_limit_mib,
        memory_reservation_mib: positive_u64(memory_reservation),
        nano_cpus,
        mounts,
        volumes_from,
        links,
        healthcheck,
        stop_timeout_s: Some(input.stop_timeout_s),
        log_driver,
        pid_mode: input.task.pid_mode.clone(),
        ipc_mode: input.task.ipc_mode.clone(),
    })
}

/// The task-scoped volumes a container's labels name ([`LABEL_TASK_VOLUMES`]).
pub fn labelled_task_volumes(labels: &BTreeMap<String, String>) -> BTreeSet<String> {
    labels
        .get(LABEL_TASK_VOLUMES)
        .map(|names| {
            names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
