//! Tasks: the lifecycle ECS reports, as data, and the stored task.

use std::collections::BTreeSet;

use ecs_wire::{HealthStatus, TaskOverride, TaskStopCode};
use serde::{Deserialize, Serialize};

use crate::tags::Tag;

/// A task's `lastStatus`, in lifecycle order. A task only ever moves
/// forward; `STOPPED` is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Provisioning,
        TaskStatus::Pending,
        TaskStatus::Activating,
        TaskStatus::Running,
        TaskStatus::Deactivating,
        TaskStatus::Stopping,
        TaskStatus::Deprovisioning,
        TaskStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(text: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Forward only: a report that would move a task back is stale.
    pub fn can_transition_to(self, next: TaskStatus) -> bool {
        next > self
    }

    /// Counted as pending by ECS (cluster and instance `pendingTasksCount`).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating
        )
    }
}

/// A task's `desiredStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    Running,
    Stopped,
}

impl DesiredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredStatus::Running => "RUNNING",
            DesiredStatus::Stopped => "STOPPED",
        }
    }
}

/// A container's `lastStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerStatus {
    Pending,
    Running,
    Stopped,
}

impl ContainerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Pending => "PENDING",
            ContainerStatus::Running => "RUNNING",
            ContainerStatus::Stopped => "STOPPED",
        }
    }
    pub fn parse(text: &str) -> Option<ContainerStatus> {
        match text {
            "PENDING" => Some(ContainerStatus::Pending),
            "RUNNING" => Some(ContainerStatus::Running),
            "STOPPED" => Some(ContainerStatus::Stopped),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    pub bind_ip: String,
    pub container_port: u16,
    pub host_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskContainer {
    pub name: String,
    pub image: String,
    pub last_status: ContainerStatus,
    #[serde(default)]
    pub runtime_id: Option<String>,
    #[serde(default)]
    pub image_digest: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
    pub essential: bool,
    /// As the container definition (with overrides) says, for DescribeTasks.
    pub cpu: Option<i32>,
    pub memory: Option<i32>,
    pub memory_reservation: Option<i32>,
}

/// What a task holds on its container instance until it stops.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub cpu_units: i64,
    pub memory_mib: i64,
    pub tcp_ports: BTreeSet<u16>,
    pub udp_ports: BTreeSet<u16>,
}

/// A task as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub cluster_name: String,
    pub task_definition_arn: String,
    pub family: String,
    pub revision: i64,
    pub container_instance_id: Option<String>,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub launch_type: String,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub containers: Vec<TaskContainer>,
    #[serde(default)]
    pub overrides: TaskOverride,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub reservation: Reservation,
    #[serde(default)]
    pub availability_zone: Option<String>,
    pub created_at_ms: i64,
    #[serde(default)]
    pub pull_started_at_ms: Option<i64>,
    #[serde(default)]
    pub pull_stopped_at_ms: Option<i64>,
    #[serde(default)]
    pub started_at_ms: Option<i64>,
    #[serde(default)]
    pub stopping_at_ms: Option<i64>,
    #[serde(default)]
    pub execution_stopped_at_ms: Option<i64>,
    #[serde(default)]
    pub stopped_at_ms: Option<i64>,
    #[serde(default)]
    pub connectivity_at_ms: Option<i64>,
    #[serde(default)]
    pub stop_code: Option<TaskStopCode>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
    /// The load balancer targets the service scheduler registered for this
    /// task (kept so they are deregistered however the task ends).
    #[serde(default)]
    pub load_balancer_targets: Vec<LoadBalancerTarget>,
    /// When those targets were deregistered (the task is draining from then).
    #[serde(default)]
    pub targets_deregistered_at_ms: Option<i64>,
    /// Task scale-in protection (UpdateTaskProtection): when it expires.
    /// None: never protected, or protection removed. Protection is on only
    /// while the current time is before it.
    #[serde(default)]
    pub protection_expires_at_ms: Option<i64>,
    /// Increments on every change, as ECS's task `version`.
    pub version: i64,
}

/// One target of a service task in an ELBv2 target group: the container
/// instance's EC2 instance id (target type `instance`) and the host port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerTarget {
    pub target_group_arn: String,
    pub target_id: String,
    pub port: u16,
}

impl Task {
    /// The task's health, as ECS derives it: UNHEALTHY if any essential
    /// container with a health check is unhealthy, HEALTHY if all essential
    /// containers with health checks are healthy, else UNKNOWN.
    pub fn derived_health(&self) -> HealthStatus {
        let checked: Vec<HealthStatus> = self
            .containers
            .iter()
            .filter(|c| c.essential)
            .filter_map(|c| c.health_status)
            .collect();
        if checked.contains(&HealthStatus::Unhealthy) {
            HealthStatus::Unhealthy
        } else if !checked.is_empty() && checked.iter().all(|h| *h == HealthStatus::Healthy) {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_moves_forward_only() {
        for (i, from) in TaskStatus::ALL.iter().enumerate() {
            for (j, to) in TaskStatus::ALL.iter().enumerate() {
                assert_eq!(from.can_transition_to(*to), j > i, "{from:?} -> {to:?}");
            }
            assert_eq!(TaskStatus::parse(from.as_str()), Some(*from));
        }
        assert!(!TaskStatus::Stopped.can_transition_to(TaskStatus::Running));
        assert!(TaskStatus::Provisioning.is_pending());
        assert!(!TaskStatus::Running.is_pending());
    }
}
