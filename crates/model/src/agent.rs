//! The protocol between the control plane and node agents.
//!
//! The agent opens `POST /_berth/agent/v1/session` (SigV4-signed for service
//! `ecs`, JSON body [`SessionRequest`]) and keeps the response open: the
//! control plane streams newline-delimited JSON [`AgentMessage`]s — the full
//! desired state of the instance whenever it changes (level-triggered, so a
//! message can be applied any number of times), and heartbeats. The agent
//! reports what happened with the ECS operations `SubmitTaskStateChange` and
//! `SubmitContainerStateChange`, which are idempotent: a report that would
//! move a task backwards is ignored.

use ecs_wire::{TaskDefinition, TaskOverride};
use serde::{Deserialize, Serialize};

use crate::task::{DesiredStatus, TaskContainer, TaskStatus};

pub const SESSION_PATH: &str = "/_berth/agent/v1/session";

/// Labels the agent puts on every container it creates.
pub const LABEL_CONTAINER_INSTANCE_ARN: &str = "com.amazonaws.ecs.container-instance-arn";
pub const LABEL_CLUSTER: &str = "com.amazonaws.ecs.cluster";
pub const LABEL_TASK_ARN: &str = "com.amazonaws.ecs.task-arn";
pub const LABEL_CONTAINER_NAME: &str = "com.amazonaws.ecs.container-name";
pub const LABEL_TASK_DEFINITION_FAMILY: &str = "com.amazonaws.ecs.task-definition-family";
pub const LABEL_TASK_DEFINITION_VERSION: &str = "com.amazonaws.ecs.task-definition-version";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRequest {
    /// Cluster name or ARN.
    pub cluster: String,
    pub container_instance_arn: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AgentMessage {
    /// Every task placed on this instance that is not yet STOPPED, plus
    /// tasks stopped recently enough that the agent may still hold their
    /// containers. `revision` is the store revision the list was read at.
    #[serde(rename_all = "camelCase")]
    DesiredTasks {
        revision: i64,
        tasks: Vec<DesiredTask>,
    },
    /// Sent every heartbeat interval; an agent that hears nothing for a few
    /// intervals reconnects.
    #[serde(rename_all = "camelCase")]
    Heartbeat { at_ms: i64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredTask {
    pub task_arn: String,
    pub cluster_arn: String,
    pub desired_status: DesiredStatus,
    /// What the control plane last heard.
    pub last_status: TaskStatus,
    pub task_definition: TaskDefinition,
    #[serde(default)]
    pub overrides: TaskOverride,
    /// The control plane's view of each container (names, runtime ids).
    pub containers: Vec<TaskContainer>,
    pub version: i64,
}
