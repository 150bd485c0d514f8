//! What the scheduler is given and what it answers: container instances as
//! the control plane saw them, the tasks to place with their strategies and
//! constraints, and placements or ECS failure reasons.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::query::{Expr, QueryTarget};
use crate::SchedulerError;

/// CPU, memory and GPUs, as ECS accounts them: CPU in units (1,024 per
/// vCPU), memory in MiB, GPUs as a count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub cpu_units: u32,
    pub memory_mib: u32,
    pub gpus: u32,
}

impl Resources {
    /// Whether `request` fits in `self` in every dimension.
    pub fn covers(&self, request: &Resources) -> bool {
        self.cpu_units >= request.cpu_units
            && self.memory_mib >= request.memory_mib
            && self.gpus >= request.gpus
    }
}

/// `ContainerInstance.status`. Only `ACTIVE` instances receive tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    Active,
    Draining,
    Registering,
    Deregistering,
    RegistrationFailed,
    Inactive,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Active => "ACTIVE",
            InstanceStatus::Draining => "DRAINING",
            InstanceStatus::Registering => "REGISTERING",
            InstanceStatus::Deregistering => "DEREGISTERING",
            InstanceStatus::RegistrationFailed => "REGISTRATION_FAILED",
            InstanceStatus::Inactive => "INACTIVE",
        }
    }

    pub fn parse(text: &str) -> Option<InstanceStatus> {
        Some(match text {
            "ACTIVE" => InstanceStatus::Active,
            "DRAINING" => InstanceStatus::Draining,
            "REGISTERING" => InstanceStatus::Registering,
            "DEREGISTERING" => InstanceStatus::Deregistering,
            "REGISTRATION_FAILED" => InstanceStatus::RegistrationFailed,
            "INACTIVE" => InstanceStatus::Inactive,
            _ => return None,
        })
    }
}

/// One container instance as the control plane read it from the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSnapshot {
    pub container_instance_arn: String,
    pub ec2_instance_id: Option<String>,
    pub status: InstanceStatus,
    pub agent_connected: bool,
    pub agent_version: Option<String>,
    /// When the instance registered, in milliseconds since the Unix epoch.
    pub registered_at_ms: i64,
    /// What is left after the tasks already on the instance.
    pub remaining: Resources,
    /// Host TCP ports already taken (static host ports of its tasks and the
    /// ports the instance reserved).
    pub used_tcp_ports: Vec<u16>,
    pub used_udp_ports: Vec<u16>,
    /// Attribute name → optional value (`ecs.availability-zone` →
    /// `us-east-1a`; a capability such as `ecs.capability.ecr-auth` has none).
    pub attributes: BTreeMap<String, Option<String>>,
    /// `runningTasksCount` in the cluster query language.
    pub running_tasks_count: u32,
    /// Tasks on the instance (pending or running) by task group
    /// (`service:web`, `family:batch`, or a group named in RunTask).
    pub task_groups: BTreeMap<String, u32>,
}

impl QueryTarget for InstanceSnapshot {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.get(name).map(|value| value.as_deref())
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.ec2_instance_id.as_deref()
    }
    fn agent_connected(&self) -> bool {
        self.agent_connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.agent_version.as_deref()
    }
    fn registered_at_ms(&self) -> i64 {
        self.registered_at_ms
    }
    fn running_tasks_count(&self) -> u32 {
        self.running_tasks_count
    }
    fn any_task_group(&self, predicate: &mut dyn FnMut(&str) -> bool) -> bool {
        self.task_groups
            .iter()
            .any(|(group, count)| *count > 0 && predicate(group))
    }
}

/// `PlacementStrategy.field` of a binpack strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BinpackField {
    Cpu,
    Memory,
}

/// `PlacementStrategy.field` of a spread strategy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SpreadField {
    /// `instanceId` or `host`: one value per container instance.
    InstanceId,
    /// `attribute:<name>`, e.g. `attribute:ecs.availability-zone`.
    Attribute(String),
}

/// One rule of a placement strategy chain. Rules apply in order, each one
/// breaking the ties the previous ones left.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PlacementStrategy {
    /// The instance with the least of the field left that still fits.
    Binpack(BinpackField),
    /// The instance whose field value holds the fewest tasks of the task's
    /// group.
    Spread(SpreadField),
    /// Any instance, uniformly, from the seeded source.
    Random,
}

/// The most rules a chain may have (RunTask and CreateService).
pub const MAX_STRATEGY_RULES: usize = 5;
/// The most constraints a task may have, task definition and request
/// together.
pub const MAX_PLACEMENT_CONSTRAINTS: usize = 10;
const AVAILABILITY_ZONE_ATTRIBUTE: &str = "ecs.availability-zone";

impl PlacementStrategy {
    /// Reads an ECS `PlacementStrategy` (`type`, `field`).
    pub fn from_ecs(strategy_type: &str, field: Option<&str>) -> Result<Self, SchedulerError> {
        let field = field.map(str::trim).filter(|field| !field.is_empty());
        match strategy_type {
            "random" => Ok(PlacementStrategy::Random),
            "binpack" => match field {
                Some(f) if f.eq_ignore_ascii_case("memory") => {
                    Ok(PlacementStrategy::Binpack(BinpackField::Memory))
                }
                Some(f) if f.eq_ignore_ascii_case("cpu") => {
                    Ok(PlacementStrategy::Binpack(BinpackField::Cpu))
                }
                Some(other) => Err(SchedulerError::InvalidStrategy(format!(
                    "Invalid field '{other}' for placement strategy binpack. Use cpu or memory."
                ))),
                None => Err(SchedulerError::InvalidStrategy(
                    "The binpack placement strategy requires a field: cpu or memory.".into(),
                )),
            },
            "spread" => match field {
                Some(f)
                    if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") =>
                {
                    Ok(PlacementStrategy::Spread(SpreadField::InstanceId))
                }
                Some(f) => match f.strip_prefix("attribute:") {
                    Some(name) if !name.is_empty() => Ok(PlacementStrategy::Spread(
                        SpreadField::Attribute(name.to_string()),
                    )),
                    _ => Err(SchedulerError::InvalidStrategy(format!(
                        "Invalid field '{f}' for placement strategy spread. Use instanceId, host \
                         or attribute:<name>, for example attribute:ecs.availability-zone."
                    ))),
                },
                None => Err(SchedulerError::InvalidStrategy(
                    "The spread placement strategy requires a field: instanceId, host or \
                     attribute:<name>."
                        .into(),
                )),
            },
            other => Err(SchedulerError::InvalidStrategy(format!(
                "Invalid placement strategy type '{other}'. Use random, spread or binpack."
            ))),
        }
    }

    /// The ECS `type` and `field` of this rule.
    pub fn to_ecs(&self) -> (&'static str, Option<String>) {
        match self {
            PlacementStrategy::Binpack(BinpackField::Cpu) => ("binpack", Some("cpu".into())),
            PlacementStrategy::Binpack(BinpackField::Memory) => ("binpack", Some("memory".into())),
            PlacementStrategy::Spread(SpreadField::InstanceId) => {
                ("spread", Some("instanceId".into()))
            }
            PlacementStrategy::Spread(SpreadField::Attribute(name)) => {
                ("spread", Some(format!("attribute:{name}")))
            }
            PlacementStrategy::Random => ("random", None),
        }
    }

    /// What RunTask and StartTask-less placement use when the request names
    /// no strategy: tasks go to a random instance that fits.
    pub fn run_task_default() -> Vec<PlacementStrategy> {
        vec![PlacementStrategy::Random]
    }

    /// What a service uses when it names no strategy: balance across
    /// Availability Zones, then across the instances of a zone.
    pub fn service_default() -> Vec<PlacementStrategy> {
        vec![
            PlacementStrategy::Spread(SpreadField::Attribute(
                AVAILABILITY_ZONE_ATTRIBUTE.to_string(),
            )),
            PlacementStrategy::Spread(SpreadField::InstanceId),
        ]
    }

    /// The chain to use: the requested one, or the default when it is empty.
    pub fn chain_or_default(
        requested: Vec<PlacementStrategy>,
        default: fn() -> Vec<PlacementStrategy>,
    ) -> Vec<PlacementStrategy> {
        if requested.is_empty() {
            default()
        } else {
            requested
        }
    }
}

/// Rejects chains longer than ECS allows.
pub fn validate_strategy_chain(chain: &[PlacementStrategy]) -> Result<(), SchedulerError> {
    if chain.len() > MAX_STRATEGY_RULES {
        return Err(SchedulerError::InvalidStrategy(format!(
            "A task can have at most {MAX_STRATEGY_RULES} placement strategy rules; {} were given.",
            chain.len()
        )));
    }
    Ok(())
}

/// A binding rule: an instance that breaks it never receives the task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PlacementConstraint {
    /// No two tasks of the same group on one instance.
    DistinctInstance,
    /// Only instances the cluster query expression selects.
    MemberOf(Expr),
}

impl PlacementConstraint {
    /// Reads an ECS `PlacementConstraint` (`type`, `expression`); a malformed
    /// expression is an error that points at the offending position.
    pub fn from_ecs(
        constraint_type: &str,
        expression: Option<&str>,
    ) -> Result<Self, SchedulerError> {
        let expression = expression.filter(|e| !e.trim().is_empty());
        match (constraint_type, expression) {
            ("distinctInstance", None) => Ok(PlacementConstraint::DistinctInstance),
            ("distinctInstance", Some(_)) => Err(SchedulerError::InvalidConstraint(
                "A distinctInstance placement constraint can't have an expression.".into(),
            )),
            ("memberOf", Some(expression)) => {
                Ok(PlacementConstraint::MemberOf(Expr::parse(expression)?))
            }
            ("memberOf", None) => Err(SchedulerError::InvalidConstraint(
                "A memberOf placement constraint requires an expression.".into(),
            )),
            (other, _) => Err(SchedulerError::InvalidConstraint(format!(
                "Invalid placement constraint type '{other}'. Use distinctInstance or memberOf."
            ))),
        }
    }

    /// The ECS `type` and `expression` of this constraint.
    pub fn to_ecs(&self) -> (&'static str, Option<&str>) {
        match self {
            PlacementConstraint::DistinctInstance => ("distinctInstance", None),
            PlacementConstraint::MemberOf(expr) => ("memberOf", Some(expr.source())),
        }
    }
}

/// Rejects more constraints than ECS allows for one task.
pub fn validate_constraints(constraints: &[PlacementConstraint]) -> Result<(), SchedulerError> {
    if constraints.len() > MAX_PLACEMENT_CONSTRAINTS {
        return Err(SchedulerError::InvalidConstraint(format!(
            "A task can have at most {MAX_PLACEMENT_CONSTRAINTS} placement constraints, counting \
             the task definition's and the request's; {} were given.",
            constraints.len()
        )));
    }
    Ok(())
}

/// An attribute the task definition requires of its instance (for example
/// `com.amazonaws.ecs.capability.docker-remote-api.1.19`), with the value it
/// must have when one is given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredAttribute {
    pub name: String,
    pub value: Option<String>,
}

/// One task to place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRequest {
    /// What the task reserves: the task-level CPU and memory when set, else
    /// the sum over its containers; GPUs summed over containers.
    pub resources: Resources,
    /// Static host ports (`hostPort` other than 0) the task binds.
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    /// The task group: `service:<name>` for a service's tasks, else
    /// RunTask's `group`, by default `family:<family>`.
    pub group: String,
    /// The task definition's constraints followed by the request's.
    pub constraints: Vec<PlacementConstraint>,
    pub required_attributes: Vec<RequiredAttribute>,
}

/// Position of a container instance in the snapshot given to
/// [`ClusterState::new`](crate::ClusterState::new).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceIndex(pub u32);

impl InstanceIndex {
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// Where a task goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub instance: InstanceIndex,
}

/// Why one container instance could not take a task: the value of
/// `failures[].reason` ECS returns with the instance's ARN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureReason {
    /// The instance's agent is disconnected.
    Agent,
    /// The instance lacks an attribute the task definition requires.
    Attribute,
    Cpu,
    Memory,
    /// A static TCP host port is taken.
    Ports,
    PortsUdp,
    Gpu,
    MemberOf,
    DistinctInstance,
}

impl FailureReason {
    /// The exact `failures[].reason` string.
    pub fn as_ecs_reason(self) -> &'static str {
        match self {
            FailureReason::Agent => "AGENT",
            FailureReason::Attribute => "ATTRIBUTE",
            FailureReason::Cpu => "RESOURCE:CPU",
            FailureReason::Memory => "RESOURCE:MEMORY",
            FailureReason::Ports => "RESOURCE:PORTS",
            FailureReason::PortsUdp => "RESOURCE:PORTS_UDP",
            FailureReason::Gpu => "RESOURCE:GPU",
            FailureReason::MemberOf => "MemberOf placement constraint unsatisfied.",
            FailureReason::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
        }
    }
}

/// One instance that was considered and why it was turned down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRejection {
    pub instance: InstanceIndex,
    pub reason: FailureReason,
}

/// A task that could not be placed. A value, not an error: RunTask answers
/// 200 with `failures`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlacementFailure {
    /// The cluster has no ACTIVE container instance. RunTask answers
    /// `InvalidParameterException` with [`NO_CONTAINER_INSTANCES_MESSAGE`].
    NoContainerInstances,
    /// Every ACTIVE instance turned the task down; one entry per instance,
    /// in snapshot order, with the first rule it broke (agent, attributes,
    /// CPU, memory, ports, UDP ports, GPUs, then the constraints in order).
    /// ECS returns one `failures` entry per instance: `arn` = the
    /// instance's ARN, `reason` = [`FailureReason::as_ecs_reason`].
    NoInstanceFits { rejections: Vec<InstanceRejection> },
}

/// RunTask's message when the cluster has no container instance.
pub const NO_CONTAINER_INSTANCES_MESSAGE: &str =
    "No Container Instances were found in your cluster.";
