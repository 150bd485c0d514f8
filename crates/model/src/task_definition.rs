//! Task definitions: ECS's validation rules for RegisterTaskDefinition, the
//! normalisation ECS applies (defaults it fills in, task size as integers),
//! and the fields it derives (`compatibilities`, `requiresAttributes`).
//!
//! The document stays in the wire shape so every member round-trips.

use std::collections::{BTreeMap, BTreeSet};

use ecs_wire::{
    Attribute, Compatibility, ContainerDefinition, LogDriver, NetworkMode, PidMode,
    RegisterTaskDefinitionRequest, TaskDefinition, TaskDefinitionStatus,
};
use serde::{Deserialize, Serialize};

use crate::names::is_valid_resource_name;
use crate::tags::Tag;
use crate::task_size::{
    parse_task_cpu_units, parse_task_memory_mib, validate_fargate_size, EC2_TASK_CPU_UNITS_MAX,
    EC2_TASK_CPU_UNITS_MIN,
};
use crate::ModelError;

pub const MAX_CONTAINERS_PER_TASK_DEFINITION: usize = 10;
pub const MAX_PLACEMENT_CONSTRAINTS: usize = 10;
/// Docker's floor for a container's memory limit.
pub const CONTAINER_MEMORY_MIN_MIB: i32 = 6;

/// A registered revision as stored: the full document plus its tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionRecord {
    pub task_definition: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl TaskDefinitionRecord {
    pub fn family(&self) -> &str {
        self.task_definition.family.as_deref().unwrap_or_default()
    }
    pub fn revision(&self) -> i64 {
        i64::from(self.task_definition.revision.unwrap_or_default())
    }
    pub fn status(&self) -> TaskDefinitionStatus {
        self.task_definition
            .status
            .unwrap_or(TaskDefinitionStatus::Active)
    }
}

/// A reference to a task definition in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskDefinitionReference {
    /// The latest ACTIVE revision of the family.
    Family(String),
    FamilyRevision(String, i64),
}

impl TaskDefinitionReference {
    /// Parses `family`, `family:revision` or a task definition ARN
    /// (`arn:aws:ecs:region:account:task-definition/family:revision`).
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let invalid = || {
            ModelError::client(format!(
                "Invalid task definition '{text}'. Specify a family, family:revision, or a full task definition ARN."
            ))
        };
        let body = if text.starts_with("arn:") {
            let arn = crate::arn::EcsArn::parse(text)?;
            if arn.resource_type != "task-definition" {
                return Err(invalid());
            }
            arn.resource_id
        } else {
            text.to_string()
        };
        match body.split_once(':') {
            None => {
                if !is_valid_resource_name(&body) {
                    return Err(invalid());
                }
                Ok(TaskDefinitionReference::Family(body))
            }
            Some((family, revision)) => {
                let revision: i64 = revision.parse().map_err(|_| invalid())?;
                if !is_valid_resource_name(family) || revision < 1 {
                    return Err(invalid());
                }
                Ok(TaskDefinitionReference::FamilyRevision(
                    family.to_string(),
                    revision,
                ))
            }
        }
    }

    pub fn family(&self) -> &str {
        match self {
            TaskDefinitionReference::Family(f) | TaskDefinitionReference::FamilyRevision(f, _) => f,
        }
    }
}

/// Who registers, when, and where: the inputs ECS derives fields from.
#[derive(Clone, Debug)]
pub struct Registration<'a> {
    pub task_definition_arn: &'a str,
    pub revision: i64,
    pub registered_by: &'a str,
    pub now_ms: i64,
}

/// Checks a RegisterTaskDefinition request against ECS's rules.
pub fn validate_registration(request: &RegisterTaskDefinitionRequest) -> Result<(), ModelError> {
    let family = request.family.as_deref().unwrap_or_default();
    if family.is_empty() {
        return Err(ModelError::client("Family can not be blank."));
    }
    if !is_valid_resource_name(family) {
        return Err(ModelError::client(
            "Family contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
        ));
    }
    let containers = request.container_definitions.as_deref().unwrap_or_default();
    if containers.is_empty() {
        return Err(ModelError::client("Container list cannot be empty."));
    }
    if containers.len() > MAX_CONTAINERS_PER_TASK_DEFINITION {
        return Err(ModelError::client(format!(
            "Too many containers. A task definition can have at most {MAX_CONTAINERS_PER_TASK_DEFINITION} containers; {} were given.",
            containers.len()
        )));
    }
    let network_mode = request.network_mode;
    let requires: Vec<Compatibility> = request.requires_compatibilities.clone().unwrap_or_default();
    let requires_fargate = requires.contains(&Compatibility::Fargate);

    let task_cpu_units = request
        .cpu
        .as_deref()
        .map(parse_task_cpu_units)
        .transpose()?;
    let task_memory_mib = request
        .memory
        .as_deref()
        .map(parse_task_memory_mib)
        .transpose()?;
    if let Some(units) = task_cpu_units {
        if !requires_fargate && !(EC2_TASK_CPU_UNITS_MIN..=EC2_TASK_CPU_UNITS_MAX).contains(&units)
        {
            return Err(ModelError::client(format!(
                "Invalid 'cpu' setting for task. For the EC2 launch type the task cpu must be between {EC2_TASK_CPU_UNITS_MIN} and {EC2_TASK_CPU_UNITS_MAX} CPU units; {units} was given."
            )));
        }
    }

    let volume_names = validate_volumes(request)?;
    let container_names = validate_container_names(containers)?;

    if !containers.iter().any(is_essential) {
        return Err(ModelError::client(
            "Task definition doesn't have any essential container.",
        ));
    }

    let mut static_host_ports: BTreeSet<(i32, &str)> = BTreeSet::new();
    for container in containers {
        let name = container.name.as_deref().unwrap_or_default();
        validate_container_memory(container, task_memory_mib)?;
        validate_port_mappings(container, network_mode, &mut static_host_ports)?;
        validate_references(container, &container_names, &volume_names, network_mode)?;
        if let Some(health_check) = &container.health_check {
            validate_health_check(name, health_check)?;
        }
        if network_mode == Some(NetworkMode::Awsvpc) && container.hostname.is_some() {
            return Err(ModelError::client(
                "hostname is not supported on container when networkMode=awsvpc.",
            ));
        }
        validate_log_configuration(container)?;
        if let Some(cpu) = container.cpu {
            if cpu < 0 {
                return Err(ModelError::client(format!(
                    "Invalid 'cpu' setting for container '{name}': it must not be negative."
                )));
            }
        }
    }
    validate_dependency_cycles(containers)?;
    validate_dependency_conditions(containers)?;
    validate_task_totals(containers, task_cpu_units, task_memory_mib)?;

    if let Some(constraints) = &request.placement_constraints {
        if constraints.len() > MAX_PLACEMENT_CONSTRAINTS {
            return Err(ModelError::client(format!(
                "Too many placement constraints: at most {MAX_PLACEMENT_CONSTRAINTS} are allowed in a task definition."
            )));
        }
        for constraint in constraints {
            if constraint
                .expression
                .as_deref()
                .unwrap_or_default()
                .trim()
                .is_empty()
            {
                return Err(ModelError::client(
                    "Invalid placement constraint: a memberOf constraint requires an expression.",
                ));
            }
        }
    }
    if let Some(proxy) = &request.proxy_configuration {
        let target = proxy.container_name.as_deref().unwrap_or_default();
        if !container_names.contains(target) {
            return Err(ModelError::client(format!(
                "Invalid proxyConfiguration: container '{target}' is not defined in this task definition."
            )));
        }
    }
    if let Some(storage) = &request.ephemeral_storage {
        let size = storage.size_in_gi_b.unwrap_or_default();
        if !(21..=200).contains(&size) {
            return Err(ModelError::client(format!(
                "Invalid 'ephemeralStorage' setting: sizeInGiB is {size}; it must be between 21 and 200."
            )));
        }
    }
    if requires_fargate {
        validate_fargate(request, containers, task_cpu_units, task_memory_mib)?;
    }
    if let Some(tags) = &request.tags {
        if tags.is_empty() {
            return Err(ModelError::client("Tags can not be empty."));
        }
        crate::tags::validate_tags(&crate::tags::from_wire(tags))?;
    }
    Ok(())
}

fn is_essential(container: &ContainerDefinition) -> bool {
    container.essential.unwrap_or(true)
}

fn validate_volumes(
    request: &RegisterTaskDefinitionRequest,
) -> Result<BTreeSet<String>, ModelError> {
    let mut names = BTreeSet::new();
    for volume in request.volumes.as_deref().unwrap_or_default() {
        let name = volume.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(ModelError::client(
                "Volume name should not be null or empty.",
            ));
        }
        if !is_valid_resource_name(name) {
            return Err(ModelError::client(format!(
                "Volume name '{name}' contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed."
            )));
        }
        if !names.insert(name.to_string()) {
            return Err(ModelError::client(format!(
                "Volume names must be unique within a Task Definition: '{name}' is used more than once."
            )));
        }
        let kinds = [
            volume.host.is_some(),
            volume.docker_volume_configuration.is_some(),
            volume.efs_volume_configuration.is_some(),
            volume
                .fsx_windows_file_server_volume_configuration
                .is_some(),
        ]
        .iter()
        .filter(|&&set| set)
        .count();
        if kinds > 1 {
            return Err(ModelError::client(format!(
                "Invalid volume '{name}': specify only one of host, dockerVolumeConfiguration, efsVolumeConfiguration, fsxWindowsFileServerVolumeConfiguration."
            )));
        }
        if let Some(docker) = &volume.docker_volume_configuration {
            if docker.autoprovision == Some(true) && docker.scope != Some(ecs_wire::Scope::Shared) {
                return Err(ModelError::client(format!(
                    "Invalid volume '{name}': autoprovision can only be used with a dockerVolumeConfiguration whose scope is shared."
                )));
            }
        }
    }
    Ok(names)
}

fn validate_container_names(
    containers: &[ContainerDefinition],
) -> Result<BTreeSet<String>, ModelError> {
    let mut names = BTreeSet::new();
    for container in containers {
        let name = container.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(ModelError::client(
                "Container.name should not be null or empty.",
            ));
        }
        if !is_valid_resource_name(name) {
            return Err(ModelError::client(
                "Container.name contains invalid characters. Up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
            ));
        }
        if container
            .image
            .as_deref()
            .unwrap_or_default()
            .trim()
            .is_empty()
        {
            return Err(ModelError::client(
                "Container.image should not be null or empty.",
            ));
        }
        if !names.insert(name.to_string()) {
            return Err(ModelError::client(format!(
                "Container names must be unique within a Task Definition. '{name}' is used more than once."
            )));
        }
    }
    Ok(names)
}

fn validate_container_memory(
    container: &ContainerDefinition,
    task_memory_mib: Option<u32>,
) -> Result<(), ModelError> {
    let name = container.name.as_deref().unwrap_or_default();
    if container.memory.is_none()
        && container.memory_reservation.is_none()
        && task_memory_mib.is_none()
    {
        return Err(ModelError::client(format!(
            "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."
        )));
    }
    if let Some(memory) = container.memory {
        if memory < CONTAINER_MEMORY_MIN_MIB {
            return Err(ModelError::client(format!(
                "Invalid 'memory' setting for container '{name}': {memory} MiB. The minimum is {CONTAINER_MEMORY_MIN_MIB} MiB."
            )));
        }
    }
    if let Some(reservation) = container.memory_reservation {
        if reservation < CONTAINER_MEMORY_MIN_MIB {
            return Err(ModelError::client(format!(
                "Invalid 'memoryReservation' setting for container '{name}': {reservation} MiB. The minimum is {CONTAINER_MEMORY_MIN_MIB} MiB."
            )));
        }
        if let Some(memory) = container.memory {
            if reservation > memory {
                return Err(ModelError::client(format!(
                    "Invalid 'memory' setting for container '{name}'. Must be greater than or equal to 'memoryReservation' ({memory} < {reservation})."
                )));
            }
        }
    }
    if let (Some(memory), Some(task_memory)) = (container.memory, task_memory_mib) {
        if memory as i64 > task_memory as i64 {
            return Err(ModelError::client(format!(
                "The 'memory' setting for container '{name}' is greater than for the task."
            )));
        }
    }
    Ok(())
}

fn validate_port_mappings<'a>(
    container: &'a ContainerDefinition,
    network_mode: Option<NetworkMode>,
    static_host_ports: &mut BTreeSet<(i32, &'a str)>,
) -> Result<(), ModelError> {
    let name = container.name.as_deref().unwrap_or_default();
    for mapping in container.port_mappings.as_deref().unwrap_or_default() {
        if let Some(range) = &mapping.container_port_range {
            parse_port_range(range).ok_or_else(|| {
                ModelError::client(format!(
                    "Invalid containerPortRange '{range}' for container '{name}': use 'start-end' with 1 <= start < end <= 65535."
                ))
            })?;
            if mapping.container_port.is_some() || mapping.host_port.is_some() {
                return Err(ModelError::client(format!(
                    "Invalid port mapping for container '{name}': containerPortRange cannot be combined with containerPort or hostPort."
                )));
            }
            continue;
        }
        let Some(container_port) = mapping.container_port else {
            return Err(ModelError::client(format!(
                "Invalid port mapping for container '{name}': containerPort is required unless containerPortRange is given."
            )));
        };
        if !(1..=65535).contains(&container_port) {
            return Err(ModelError::client(format!(
                "Invalid 'containerPort' setting for container '{name}'. Ports are between 1 and 65535; {container_port} was given."
            )));
        }
        if let Some(host_port) = mapping.host_port {
            if !(0..=65535).contains(&host_port) {
                return Err(ModelError::client(format!(
                    "Invalid 'hostPort' setting for container '{name}'. Ports are between 0 and 65535; {host_port} was given."
                )));
            }
            match network_mode {
                Some(NetworkMode::Awsvpc) if host_port != container_port => {
                    return Err(ModelError::client(
                        "When networkMode=awsvpc, the host ports and container ports in port mappings must match.",
                    ));
                }
                Some(NetworkMode::Host) if host_port != container_port => {
                    return Err(ModelError::client(
                        "When networkMode=host, the host ports and container ports in port mappings must match.",
                    ));
                }
                _ => {}
            }
        }
        if network_mode == Some(NetworkMode::None) {
            return Err(ModelError::client(format!(
                "Invalid port mapping for container '{name}': port mappings are not supported when networkMode=none."
            )));
        }
        let effective_host_port = match network_mode {
            Some(NetworkMode::Awsvpc) | Some(NetworkMode::Host) => Some(container_port),
            _ => mapping.host_port.filter(|&p| p != 0),
        };
        if let Some(host_port) = effective_host_port {
            let protocol = mapping.protocol.map(|p| p.as_str()).unwrap_or("tcp");
            if !static_host_ports.insert((host_port, protocol)) {
                return Err(ModelError::client(format!(
                    "{} host port '{host_port}' is mapped multiple times in task.",
                    protocol.to_ascii_uppercase()
                )));
            }
        }
    }
    Ok(())
}

fn parse_port_range(range: &str) -> Option<(u16, u16)> {
    let (start, end) = range.split_once('-')?;
    let start: u16 = start.trim().parse().ok()?;
    let end: u16 = end.trim().parse().ok()?;
    (start >= 1 && start < end).then_some((start, end))
}

fn validate_references(
    container: &ContainerDefinition,
    container_names: &BTreeSet<String>,
    volume_names: &BTreeSet<String>,
    network_mode: Option<NetworkMode>,
) -> Result<(), ModelError> {
    let name = container.name.as_deref().unwrap_or_default();
    for mount in container.mount_points.as_deref().unwrap_or_default() {
        let source = mount.source_volume.as_deref().unwrap_or_default();
        if !volume_names.contains(source) {
            return Err(ModelError::client(format!("Unknown volume '{source}'.")));
        }
        if mount
            .container_path
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            return Err(ModelError::client(format!(
                "Invalid 'mountPoints' setting for container '{name}': containerPath is required."
            )));
        }
    }
    for volumes_from in container.volumes_from.as_deref().unwrap_or_default() {
        let source = volumes_from.source_container.as_deref().unwrap_or_default();
        if source == name || !container_names.contains(source) {
            return Err(ModelError::client(format!(
                "Invalid 'volumesFrom' setting for container '{name}': source container '{source}' is not another container of this task definition."
            )));
        }
    }
    for dependency in container.depends_on.as_deref().unwrap_or_default() {
        let target = dependency.container_name.as_deref().unwrap_or_default();
        if target == name || !container_names.contains(target) {
            return Err(ModelError::client(format!(
                "Cannot depend on container + '{target}' because it does not exist"
            )));
        }
        if dependency.condition.is_none() {
            return Err(ModelError::client(format!(
                "Invalid 'dependsOn' setting for container '{name}': condition is required (START, COMPLETE, SUCCESS or HEALTHY)."
            )));
        }
    }
    let links = container.links.as_deref().unwrap_or_default();
    if !links.is_empty()
        && matches!(
            network_mode,
            Some(NetworkMode::Awsvpc) | Some(NetworkMode::Host) | Some(NetworkMode::None)
        )
    {
        let mode = network_mode.map(|m| m.as_str()).unwrap_or_default();
        return Err(ModelError::client(format!(
            "Links are not supported when networkMode={mode}."
        )));
    }
    for link in links {
        let target = link.split(':').next().unwrap_or_default();
        if target == name || !container_names.contains(target) {
            return Err(ModelError::client(format!(
                "Invalid 'links' setting for container '{name}': container '{target}' is not another container of this task definition."
            )));
        }
    }
    Ok(())
}

fn validate_health_check(
    name: &str,
    health_check: &ecs_wire::HealthCheck,
) -> Result<(), ModelError> {
    if health_check
        .command
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(ModelError::client(format!(
            "Invalid 'healthCheck' setting for container '{name}': command is required."
        )));
    }
    let ranges = [
        ("interval", health_check.interval, 5, 300),
        ("timeout", health_check.timeout, 2, 120),
        ("retries", health_check.retries, 1, 10),
        ("startPeriod", health_check.start_period, 0, 300),
    ];
    for (field, value, min, max) in ranges {
        if let Some(value) = value {
            if !(min..=max).contains(&value) {
                return Err(ModelError::client(format!(
                    "Invalid 'healthCheck' setting for container '{name}': {field} is {value}; it must be between {min} and {max}."
                )));
            }
        }
    }
    Ok(())
}

fn validate_log_configuration(container: &ContainerDefinition) -> Result<(), ModelError> {
    let Some(log) = &container.log_configuration else {
        return Ok(());
    };
    if log.log_driver == Some(LogDriver::Awslogs) {
        let options = log.options.clone().unwrap_or_default();
        let missing: Vec<&str> = ["awslogs-region", "awslogs-group"]
            .into_iter()
            .filter(|k| !options.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::client(format!(
                "Log driver awslogs requires options: {}",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

/// A container others wait on to finish (SUCCESS/COMPLETE) cannot be
/// essential: its exit would stop the task.
fn validate_dependency_conditions(containers: &[ContainerDefinition]) -> Result<(), ModelError> {
    for container in containers {
        for dependency in container.depends_on.as_deref().unwrap_or_default() {
            let waits_for_exit = matches!(
                dependency.condition,
                Some(ecs_wire::ContainerCondition::Success)
                    | Some(ecs_wire::ContainerCondition::Complete)
            );
            let target = containers
                .iter()
                .find(|c| c.name == dependency.container_name);
            if waits_for_exit && target.is_some_and(is_essential) {
                return Err(ModelError::client(
                    "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container",
                ));
            }
        }
    }
    Ok(())
}

fn validate_dependency_cycles(containers: &[ContainerDefinition]) -> Result<(), ModelError> {
    let edges: BTreeMap<&str, Vec<&str>> = containers
        .iter()
        .map(|c| {
            let targets = c
                .depends_on
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter_map(|d| d.container_name.as_deref())
                .collect();
            (c.name.as_deref().unwrap_or_default(), targets)
        })
        .collect();
    // Depth-first search; 1 = on the current path, 2 = done.
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut BTreeMap<&'a str, u8>,
    ) -> Option<&'a str> {
        match marks.get(node) {
            Some(1) => return Some(node),
            Some(_) => return None,
            None => {}
        }
        marks.insert(node, 1);
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle_at) = visit(next, edges, marks) {
                return Some(cycle_at);
            }
        }
        marks.insert(node, 2);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if let Some(cycle_at) = visit(node, &edges, &mut marks) {
            return Err(ModelError::client(format!(
                "Invalid 'dependsOn' settings: container '{cycle_at}' is part of a dependency cycle."
            )));
        }
    }
    Ok(())
}

fn validate_task_totals(
    containers: &[ContainerDefinition],
    task_cpu_units: Option<u32>,
    task_memory_mib: Option<u32>,
) -> Result<(), ModelError> {
    if let Some(task_cpu) = task_cpu_units {
        let total: i64 = containers.iter().map(|c| c.cpu.unwrap_or(0) as i64).sum();
        if total > task_cpu as i64 {
            return Err(ModelError::client(
                "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'.",
            ));
        }
    }
    if let Some(task_memory) = task_memory_mib {
        let reservations: i64 = containers
            .iter()
            .map(|c| c.memory_reservation.unwrap_or(0) as i64)
            .sum();
        if reservations > task_memory as i64 {
            return Err(ModelError::client(
                "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'.",
            ));
        }
        let hard_limits: i64 = containers
            .iter()
            .map(|c| c.memory_reservation.or(c.memory).unwrap_or(0) as i64)
            .sum();
        if hard_limits > task_memory as i64 {
            return Err(ModelError::client(
                "The sum of all container 'memory' values cannot be greater than the value of the task 'memory'.",
            ));
        }
    }
    Ok(())
}

fn validate_fargate(
    request: &RegisterTaskDefinitionRequest,
    containers: &[ContainerDefinition],
    task_cpu_units: Option<u32>,
    task_memory_mib: Option<u32>,
) -> Result<(), ModelError> {
    if let Some(reason) =
        fargate_incompatibility(request, containers, task_cpu_units, task_memory_mib)
    {
        return Err(ModelError::client(reason));
    }
    Ok(())
}

/// Why a task definition cannot run on Fargate, or `None` if it can.
fn fargate_incompatibility(
    request: &RegisterTaskDefinitionRequest,
    containers: &[ContainerDefinition],
    task_cpu_units: Option<u32>,
    task_memory_mib: Option<u32>,
) -> Option<String> {
    let Some(cpu) = task_cpu_units else {
        return Some("Fargate requires that 'cpu' be defined at the task level.".into());
    };
    let Some(memory) = task_memory_mib else {
        return Some("Fargate requires that 'memory' be defined at the task level.".into());
    };
    if request.network_mode != Some(NetworkMode::Awsvpc) {
        return Some("Fargate only supports network mode \u{2018}awsvpc\u{2019}.".into());
    }
    if let Err(err) = validate_fargate_size(cpu, memory) {
        return Some(err.message().to_string());
    }
    for container in containers {
        let name = container.name.as_deref().unwrap_or_default();
        if container.privileged == Some(true) {
            return Some(format!("Invalid 'privileged' setting for container '{name}': privileged containers are not supported on Fargate."));
        }
        let uses_awslogs = container
            .log_configuration
            .as_ref()
            .and_then(|l| l.log_driver)
            == Some(LogDriver::Awslogs);
        if uses_awslogs && request.execution_role_arn.is_none() {
            return Some("Fargate requires task definition to have execution role ARN to support log driver awslogs.".into());
        }
    }
    for volume in request.volumes.as_deref().unwrap_or_default() {
        if volume
            .host
            .as_ref()
            .and_then(|h| h.source_path.as_ref())
            .is_some()
        {
            return Some("Fargate compatible task definitions do not support sourcePath".into());
        }
        if volume.docker_volume_configuration.is_some() {
            return Some(format!(
                "Invalid volume '{}': dockerVolumeConfiguration is not supported on Fargate.",
                volume.name.as_deref().unwrap_or_default()
            ));
        }
    }
    if request.ipc_mode.is_some() {
        return Some("Tasks using the Fargate launch type do not support ipcMode.".into());
    }
    if request.pid_mode == Some(PidMode::Host) {
        return Some("Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.".into());
    }
    None
}

/// Builds the stored document from a validated request: the request's
/// members exactly, the defaults ECS fills in, and the derived fields.
pub fn build_task_definition(
    request: &RegisterTaskDefinitionRequest,
    registration: &Registration<'_>,
) -> TaskDefinition {
    let task_cpu_units = request
        .cpu
        .as_deref()
        .and_then(|c| parse_task_cpu_units(c).ok());
    let task_memory_mib = request
        .memory
        .as_deref()
        .and_then(|m| parse_task_memory_mib(m).ok());
    let containers: Vec<ContainerDefinition> = request
        .container_definitions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|c| normalize_container(c, request.network_mode))
        .collect();
    let mut compatibilities = vec![Compatibility::Ec2];
    if request.network_mode != Some(NetworkMode::Awsvpc) {
        compatibilities.insert(0, Compatibility::External);
    }
    if fargate_incompatibility(request, &containers, task_cpu_units, task_memory_mib).is_none() {
        compatibilities.push(Compatibility::Fargate);
    }
    for required in request
        .requires_compatibilities
        .as_deref()
        .unwrap_or_default()
    {
        if !compatibilities.contains(required) {
            compatibilities.push(*required);
        }
    }
    TaskDefinition {
        task_definition_arn: Some(registration.task_definition_arn.to_string()),
        container_definitions: Some(containers.clone()),
        family: request.family.clone(),
        task_role_arn: request.task_role_arn.clone(),
        execution_role_arn: request.execution_role_arn.clone(),
        network_mode: request.network_mode,
        revision: Some(registration.revision as i32),
        volumes: Some(request.volumes.clone().unwrap_or_default()),
        status: Some(TaskDefinitionStatus::Active),
        requires_attributes: Some(derive_requires_attributes(request, &containers)),
        placement_constraints: Some(request.placement_constraints.clone().unwrap_or_default()),
        compatibilities: Some(compatibilities),
        runtime_platform: request.runtime_platform.clone(),
        requires_compatibilities: request.requires_compatibilities.clone(),
        cpu: task_cpu_units.map(|u| u.to_string()),
        memory: task_memory_mib.map(|m| m.to_string()),
        inference_accelerators: request.inference_accelerators.clone(),
        pid_mode: request.pid_mode,
        ipc_mode: request.ipc_mode,
        proxy_configuration: request.proxy_configuration.clone(),
        registered_at: Some(registration.now_ms as f64 / 1000.0),
        deregistered_at: None,
        delete_requested_at: None,
        registered_by: Some(registration.registered_by.to_string()),
        ephemeral_storage: request.ephemeral_storage.clone(),
        enable_fault_injection: request.enable_fault_injection,
        trusted_execution_configuration: request.trusted_execution_configuration.clone(),
    }
}

/// The defaults ECS writes into a registered container definition.
fn normalize_container(
    container: &ContainerDefinition,
    network_mode: Option<NetworkMode>,
) -> ContainerDefinition {
    let mut c = container.clone();
    c.cpu.get_or_insert(0);
    c.essential.get_or_insert(true);
    c.environment.get_or_insert_with(Vec::new);
    c.mount_points.get_or_insert_with(Vec::new);
    c.volumes_from.get_or_insert_with(Vec::new);
    c.system_controls.get_or_insert_with(Vec::new);
    let mappings = c.port_mappings.get_or_insert_with(Vec::new);
    for mapping in mappings.iter_mut() {
        mapping
            .protocol
            .get_or_insert(ecs_wire::TransportProtocol::Tcp);
        if matches!(
            network_mode,
            Some(NetworkMode::Awsvpc) | Some(NetworkMode::Host)
        ) && mapping.host_port.is_none()
            && mapping.container_port_range.is_none()
        {
            mapping.host_port = mapping.container_port;
        }
    }
    if let Some(health_check) = c.health_check.as_mut() {
        health_check.interval.get_or_insert(30);
        health_check.timeout.get_or_insert(5);
        health_check.retries.get_or_insert(3);
        health_check.start_period.get_or_insert(0);
    }
    c
}

/// The container-instance attributes a task definition needs, as ECS
/// derives them from the features it uses.
pub fn derive_requires_attributes(
    request: &RegisterTaskDefinitionRequest,
    containers: &[ContainerDefinition],
) -> Vec<Attribute> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let docker_api = |names: &mut BTreeSet<String>, version: &str| {
        names.insert(format!(
            "com.amazonaws.ecs.capability.docker-remote-api.{version}"
        ));
    };
    if request.task_role_arn.is_some() {
        names.insert("com.amazonaws.ecs.capability.task-iam-role".into());
        if request.network_mode == Some(NetworkMode::Host) {
            names.insert("com.amazonaws.ecs.capability.task-iam-role-network-host".into());
        }
    }
    match request.network_mode {
        Some(NetworkMode::Awsvpc) => {
            names.insert("ecs.capability.task-eni".into());
        }
        Some(_) => docker_api(&mut names, "1.18"),
        None => {}
    }
    if request.pid_mode.is_some() || request.ipc_mode.is_some() {
        docker_api(&mut names, "1.25");
        names.insert("ecs.capability.pid-ipc-namespace-sharing".into());
    }
    if request
        .placement_constraints
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        docker_api(&mut names, "1.18");
    }
    for volume in request.volumes.as_deref().unwrap_or_default() {
        if volume.docker_volume_configuration.is_some() {
            docker_api(&mut names, "1.25");
            names.insert("ecs.capability.docker-plugin.local".into());
        }
        if volume.efs_volume_configuration.is_some() {
            names.insert("ecs.capability.efs".into());
        }
    }
    if request.proxy_configuration.is_some() {
        names.insert("ecs.capability.task-eni".into());
        names.insert("ecs.capability.container-ordering".into());
    }
    for container in containers {
        if container.memory_reservation.is_some() {
            docker_api(&mut names, "1.21");
        }
        if container
            .image
            .as_deref()
            .is_some_and(|i| i.contains(".dkr.ecr."))
        {
            names.insert("com.amazonaws.ecs.capability.ecr-auth".into());
            if request.execution_role_arn.is_some() {
                names.insert("ecs.capability.execution-role-ecr-pull".into());
            }
        }
        if container.repository_credentials.is_some() {
            names.insert(
                "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager"
                    .into(),
            );
        }
        if container.privileged == Some(true) {
            names.insert("com.amazonaws.ecs.capability.privileged-container".into());
        }
        if let Some(log) = &container.log_configuration {
            if let Some(driver) = log.log_driver {
                docker_api(&mut names, "1.18");
                if driver != LogDriver::Awsfirelens {
                    names.insert(format!(
                        "com.amazonaws.ecs.capability.logging-driver.{}",
                        driver.as_str()
                    ));
                }
                if driver == LogDriver::Awslogs {
                    docker_api(&mut names, "1.19");
                    if request.execution_role_arn.is_some() {
                        names.insert("ecs.capability.execution-role-awslogs".into());
                    }
                }
            }
        }
        if container.health_check.is_some() {
            docker_api(&mut names, "1.24");
            names.insert("ecs.capability.container-health-check".into());
        }
        if container.depends_on.as_ref().is_some_and(|d| !d.is_empty()) {
            names.insert("ecs.capability.container-ordering".into());
        }
        if container.start_timeout.is_some() || container.stop_timeout.is_some() {
            names.insert("ecs.capability.container-ordering".into());
        }
        if container.ulimits.as_ref().is_some_and(|u| !u.is_empty())
            || container.readonly_root_filesystem.is_some()
            || container
                .dns_servers
                .as_ref()
                .is_some_and(|d| !d.is_empty())
            || container
                .dns_search_domains
                .as_ref()
                .is_some_and(|d| !d.is_empty())
            || container
                .extra_hosts
                .as_ref()
                .is_some_and(|d| !d.is_empty())
            || container
                .docker_labels
                .as_ref()
                .is_some_and(|d| !d.is_empty())
            || container
                .docker_security_options
                .as_ref()
                .is_some_and(|d| !d.is_empty())
        {
            docker_api(&mut names, "1.18");
        }
        if let Some(linux) = &container.linux_parameters {
            if linux.init_process_enabled.is_some()
                || linux.capabilities.is_some()
                || linux.devices.is_some()
            {
                docker_api(&mut names, "1.25");
            }
            if linux.shared_memory_size.is_some() || linux.tmpfs.is_some() {
                docker_api(&mut names, "1.22");
            }
        }
        for secret in container.secrets.as_deref().unwrap_or_default() {
            // Secrets come from SSM Parameter Store (a parameter ARN or a bare
            // name) or from Secrets Manager.
            let from_secrets_manager = secret
                .value_from
                .as_deref()
                .is_some_and(|v| v.starts_with("arn:") && v.contains(":secretsmanager:"));
            names.insert(if from_secrets_manager {
                "ecs.capability.secrets.asm.environment-variables".into()
            } else {
                "ecs.capability.secrets.ssm.environment-variables".into()
            });
        }
        if container
            .environment_files
            .as_ref()
            .is_some_and(|e| !e.is_empty())
        {
            names.insert("ecs.capability.env-files.s3".into());
        }
        if container.firelens_configuration.is_some() {
            names.insert("ecs.capability.firelens.fluentbit".into());
        }
        if container.resource_requirements.as_ref().is_some_and(|r| {
            r.iter()
                .any(|r| r.type_ == Some(ecs_wire::ResourceType::Gpu))
        }) {
            names.insert("ecs.capability.gpu".into());
        }
    }
    names
        .into_iter()
        .map(|name| Attribute {
            name: Some(name),
            ..Default::default()
        })
        .collect()
}

/// The `defaultLogDriverMode` account setting at work: every container
/// whose `logConfiguration` names a driver but no `mode` option gets
/// `mode` = `default_mode` (ECS's default is `non-blocking` since June
/// 2025). The agent is given the task definition with this applied.
pub fn apply_default_log_driver_mode(definition: &mut TaskDefinition, default_mode: &str) {
    for container in definition.container_definitions.iter_mut().flatten() {
        let Some(log) = container.log_configuration.as_mut() else {
            continue;
        };
        if log.log_driver.is_none() {
            continue;
        }
        log.options
            .get_or_insert_with(Default::default)
            .entry("mode".to_string())
            .or_insert_with(|| default_mode.to_string());
    }
}

#[cfg(test)]
mod tests;
