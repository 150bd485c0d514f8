//! The adapter between stored state and the scheduler: container instances
//! become `scheduler::InstanceSnapshot`s, task definitions become
//! `scheduler::TaskRequest`s, and the scheduler's errors become AWS errors.

use ecs_wire::{ContainerDefinition, NetworkMode, TaskDefinition, TaskOverride};
use model::container_instance::{ContainerInstance, ContainerInstanceStatus};
use model::task::Reservation;
use model::task_size::{parse_task_cpu_units, parse_task_memory_mib};
use scheduler::{
    InstanceSnapshot, InstanceStatus, PlacementConstraint, RequiredAttribute, TaskRequest,
};

use crate::ApiError;

impl From<scheduler::SchedulerError> for ApiError {
    fn from(err: scheduler::SchedulerError) -> Self {
        ApiError::invalid_parameter(err.to_string())
    }
}

/// Parses a cluster query language expression (ListContainerInstances
/// `filter`, memberOf constraints).
pub fn parse_expression(text: &str) -> Result<scheduler::Expr, ApiError> {
    Ok(scheduler::Expr::parse(text)?)
}

/// Whether a container instance matches a filter expression.
pub fn instance_matches(expression: &scheduler::Expr, instance: &ContainerInstance) -> bool {
    expression.matches(&snapshot(instance, true, ""))
}

/// One instance as the scheduler sees it.
pub fn snapshot(
    instance: &ContainerInstance,
    agent_connected: bool,
    arn: &str,
) -> InstanceSnapshot {
    InstanceSnapshot {
        container_instance_arn: arn.to_string(),
        ec2_instance_id: Some(instance.ec2_instance_id.clone()),
        status: match instance.status {
            ContainerInstanceStatus::Active => InstanceStatus::Active,
            ContainerInstanceStatus::Draining => InstanceStatus::Draining,
            ContainerInstanceStatus::Inactive => InstanceStatus::Inactive,
            ContainerInstanceStatus::Registering => InstanceStatus::Registering,
            ContainerInstanceStatus::Deregistering => InstanceStatus::Deregistering,
            ContainerInstanceStatus::RegistrationFailed => InstanceStatus::RegistrationFailed,
        },
        agent_connected,
        agent_version: instance.version_info.agent_version.clone(),
        registered_at_ms: instance.registered_at_ms,
        remaining: scheduler::Resources {
            cpu_units: instance.remaining.cpu_units.max(0) as u32,
            memory_mib: instance.remaining.memory_mib.max(0) as u32,
            gpus: 0,
        },
        used_tcp_ports: instance.remaining.tcp_ports.iter().copied().collect(),
        used_udp_ports: instance.remaining.udp_ports.iter().copied().collect(),
        attributes: instance.attributes.clone(),
        // Pending tasks count too: both hold the instance's resources.
        running_tasks_count: instance.active_tasks_count(),
        task_groups: instance.task_groups.clone(),
    }
}

/// The container definitions with a RunTask/StartTask override applied.
pub fn containers_with_overrides(
    task_definition: &TaskDefinition,
    overrides: &TaskOverride,
) -> Result<Vec<ContainerDefinition>, ApiError> {
    if overrides.task_role_arn.is_some() {
        return Err(ApiError::invalid_parameter(
            "A taskRoleArn override is not supported by Berth yet: Berth does not vend IAM role credentials to containers.",
        ));
    }
    if overrides.ephemeral_storage.is_some() {
        return Err(ApiError::invalid_parameter(
            "An ephemeralStorage override is a Fargate setting; Berth's container instances do not size task storage.",
        ));
    }
    if overrides
        .inference_accelerator_overrides
        .as_ref()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(ApiError::invalid_parameter(
            "inferenceAcceleratorOverrides are not supported by Berth.",
        ));
    }
    let mut containers: Vec<ContainerDefinition> = task_definition
        .container_definitions
        .clone()
        .unwrap_or_default();
    for container_override in overrides.container_overrides.as_deref().unwrap_or_default() {
        let name = container_override.name.as_deref().unwrap_or_default();
        let container = containers
            .iter_mut()
            .find(|c| c.name.as_deref() == Some(name))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "Override for container named {name} is not a container in the TaskDefinition."
                ))
            })?;
        if let Some(command) = &container_override.command {
            container.command = Some(command.clone());
        }
        if let Some(environment) = &container_override.environment {
            let mut merged = container.environment.clone().unwrap_or_default();
            for variable in environment {
                merged.retain(|v| v.name != variable.name);
                merged.push(variable.clone());
            }
            container.environment = Some(merged);
        }
        if container_override.cpu.is_some() {
            container.cpu = container_override.cpu;
        }
        if container_override.memory.is_some() {
            container.memory = container_override.memory;
        }
        if container_override.memory_reservation.is_some() {
            container.memory_reservation = container_override.memory_reservation;
        }
        if container_override
            .environment_files
            .as_ref()
            .is_some_and(|f| !f.is_empty())
        {
            return Err(ApiError::invalid_parameter(
                "environmentFiles overrides are not supported by Berth yet: environment files live in Amazon S3, which Berth does not reach.",
            ));
        }
        if container_override
            .resource_requirements
            .as_ref()
            .is_some_and(|r| !r.is_empty())
        {
            return Err(ApiError::invalid_parameter(
                "resourceRequirements overrides are not supported by Berth yet: Berth does not schedule GPUs.",
            ));
        }
    }
    Ok(containers)
}

/// Task-level cpu/memory after overrides, as the strings ECS reports.
pub fn task_size(
    task_definition: &TaskDefinition,
    overrides: &TaskOverride,
) -> Result<(Option<u32>, Option<u32>), ApiError> {
    let cpu = overrides.cpu.as_deref().or(task_definition.cpu.as_deref());
    let memory = overrides
        .memory
        .as_deref()
        .or(task_definition.memory.as_deref());
    Ok((
        cpu.map(parse_task_cpu_units).transpose()?,
        memory.map(parse_task_memory_mib).transpose()?,
    ))
}

/// What the task holds on its instance: task-level CPU and memory when set,
/// else the containers' sums (memoryReservation where given, else memory),
/// and its static host ports.
pub fn reservation(
    task_definition: &TaskDefinition,
    containers: &[ContainerDefinition],
    task_cpu: Option<u32>,
    task_memory: Option<u32>,
) -> Reservation {
    let cpu_units = task_cpu.map(i64::from).unwrap_or_else(|| {
        containers
            .iter()
            .map(|c| c.cpu.unwrap_or(0).max(0) as i64)
            .sum()
    });
    let memory_mib = task_memory.map(i64::from).unwrap_or_else(|| {
        containers
            .iter()
            .map(|c| c.memory_reservation.or(c.memory).unwrap_or(0).max(0) as i64)
            .sum()
    });
    let mut reservation = Reservation {
        cpu_units,
        memory_mib,
        ..Reservation::default()
    };
    let host_network = matches!(
        task_definition.network_mode,
        Some(NetworkMode::Host) | Some(NetworkMode::Awsvpc)
    );
    for container in containers {
        for mapping in container.port_mappings.as_deref().unwrap_or_default() {
            let host_port = if host_network {
                mapping.container_port
            } else {
                mapping.host_port.filter(|p| *p > 0)
            };
            let Some(port) = host_port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            match mapping.protocol {
                Some(ecs_wire::TransportProtocol::Udp) => reservation.udp_ports.insert(port),
                _ => reservation.tcp_ports.insert(port),
            };
        }
    }
    reservation
}

/// Placement constraints and a strategy chain as a request gives them
/// (RunTask's, a service's), in the scheduler's terms; the chain is checked.
pub fn placement_from_wire(
    constraints: &[ecs_wire::PlacementConstraint],
    strategies: &[ecs_wire::PlacementStrategy],
) -> Result<(Vec<PlacementConstraint>, Vec<scheduler::PlacementStrategy>), ApiError> {
    let constraints = constraints
        .iter()
        .map(|c| {
            PlacementConstraint::from_ecs(
                c.type_.map(|t| t.as_str()).unwrap_or_default(),
                c.expression.as_deref(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let strategies = strategies
        .iter()
        .map(|s| {
            scheduler::PlacementStrategy::from_ecs(
                s.type_.map(|t| t.as_str()).unwrap_or_default(),
                s.field.as_deref(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    scheduler::validate_strategy_chain(&strategies)?;
    Ok((constraints, strategies))
}

/// The scheduler's view of one task to place.
pub fn task_request(
    task_definition: &TaskDefinition,
    reservation: &Reservation,
    group: &str,
    request_constraints: Vec<PlacementConstraint>,
) -> Result<TaskRequest, ApiError> {
    let mut constraints = Vec::new();
    for constraint in task_definition
        .placement_constraints
        .as_deref()
        .unwrap_or_default()
    {
        constraints.push(PlacementConstraint::from_ecs(
            constraint.type_.map(|t| t.as_str()).unwrap_or("memberOf"),
            constraint.expression.as_deref(),
        )?);
    }
    constraints.extend(request_constraints);
    scheduler::validate_constraints(&constraints)?;
    Ok(TaskRequest {
        resources: scheduler::Resources {
            cpu_units: reservation.cpu_units.max(0) as u32,
            memory_mib: reservation.memory_mib.max(0) as u32,
            gpus: 0,
        },
        tcp_ports: reservation.tcp_ports.iter().copied().collect(),
        udp_ports: reservation.udp_ports.iter().copied().collect(),
        group: group.to_string(),
        constraints,
        required_attributes: task_definition
            .requires_attributes
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| {
                Some(RequiredAttribute {
                    name: a.name.clone()?,
                    value: a.value.clone(),
                })
            })
            .collect(),
    })
}
