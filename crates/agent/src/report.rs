//! What the agent tells the control plane: a task's state as the agent sees
//! it ([`TaskReport`]), and the `SubmitTaskStateChange` that moves the
//! control plane from what it knows to that state ([`report_call`]).
//!
//! Pure. Reports are idempotent and forward-only: the same report sent
//! twice changes nothing, and the control plane ignores a task status that
//! would move backwards.

use ecs_wire::{
    ContainerStateChange, HealthStatus, SubmitTaskStateChangeRequest, TransportProtocol,
};
use model::agent::DesiredTask;
use model::task::{ContainerStatus, NetworkBinding, TaskStatus};
use serde_json::Value;

/// ECS's task `stoppedReason` when an essential container exits.
pub const ESSENTIAL_CONTAINER_EXITED: &str = "Essential container in task exited";
/// ECS's container `reason` for an OOM kill.
pub const OUT_OF_MEMORY: &str = "OutOfMemoryError: Container killed due to memory usage";
/// Exit code of a container killed by SIGKILL, as after an OOM kill.
pub const SIGKILL_EXIT_CODE: i32 = 137;

/// One container as the agent reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerReport {
    pub name: String,
    pub runtime_id: Option<String>,
    pub status: ContainerStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub network_bindings: Vec<NetworkBinding>,
    /// `None` for a container without a health check.
    pub health_status: Option<HealthStatus>,
    /// ECS `imageDigest`: the manifest digest (`sha256:...`) of the image
    /// the container runs, once known; `None` for an image without one
    /// (built locally).
    pub image_digest: Option<String>,
}

/// A task as the agent reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskReport {
    /// PENDING, RUNNING or STOPPED.
    pub status: TaskStatus,
    pub reason: Option<String>,
    pub containers: Vec<ContainerReport>,
    pub pull_started_at_ms: Option<i64>,
    pub pull_stopped_at_ms: Option<i64>,
    pub execution_stopped_at_ms: Option<i64>,
}

impl TaskReport {
    /// What the control plane knows about `task`, as the baseline a newly
    /// started agent compares against.
    pub fn known_by_control_plane(task: &DesiredTask) -> TaskReport {
        TaskReport {
            status: task.last_status,
            reason: None,
            containers: task
                .containers
                .iter()
                .map(|c| ContainerReport {
                    name: c.name.clone(),
                    runtime_id: c.runtime_id.clone(),
                    status: c.last_status,
                    exit_code: c.exit_code,
                    reason: c.reason.clone(),
                    network_bindings: c.network_bindings.clone(),
                    health_status: c.health_status,
                    image_digest: c.image_digest.clone(),
                })
                .collect(),
            pull_started_at_ms: None,
            pull_stopped_at_ms: None,
            execution_stopped_at_ms: None,
        }
    }

    pub fn container(&self, name: &str) -> Option<&ContainerReport> {
        self.containers.iter().find(|c| c.name == name)
    }
}

/// One `SubmitTaskStateChange`: the task's status and every container.
/// Container-only changes (a non-essential exit, health) go the same way
/// with the task's status unchanged, so the control plane gets container
/// health (a Berth extension it reads from this call) and one idempotent
/// shape for everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportCall {
    pub cluster_arn: String,
    pub task_arn: String,
    pub report: TaskReport,
}

impl ReportCall {
    /// The ECS operation name.
    pub fn operation(&self) -> &'static str {
        "SubmitTaskStateChange"
    }

    /// The JSON request body: the ECS wire shape, plus `healthStatus` on each
    /// container (a Berth extension: ECS's public shapes have no field for
    /// container health, which its agent reports over a private channel).
    pub fn body(&self) -> Value {
        let report = &self.report;
        let request = SubmitTaskStateChangeRequest {
            cluster: Some(self.cluster_arn.clone()),
            task: Some(self.task_arn.clone()),
            status: Some(report.status.as_str().to_string()),
            reason: report.reason.clone(),
            containers: Some(report.containers.iter().map(wire_container).collect()),
            pull_started_at: report.pull_started_at_ms.map(epoch_s),
            pull_stopped_at: report.pull_stopped_at_ms.map(epoch_s),
            execution_stopped_at: report.execution_stopped_at_ms.map(epoch_s),
            ..Default::default()
        };
        let mut body = serde_json::to_value(request).unwrap_or(Value::Null);
        if let Some(containers) = body.get_mut("containers").and_then(Value::as_array_mut) {
            for (json, container) in containers.iter_mut().zip(&report.containers) {
                add_health(json, container.health_status);
            }
        }
        body
    }
}

fn add_health(json: &mut Value, health: Option<HealthStatus>) {
    if let (Some(object), Some(health)) = (json.as_object_mut(), health) {
        object.insert(
            "healthStatus".to_string(),
            Value::String(health.as_str().to_string()),
        );
    }
}

fn epoch_s(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn wire_binding(binding: &NetworkBinding) -> ecs_wire::NetworkBinding {
    ecs_wire::NetworkBinding {
        bind_ip: Some(binding.bind_ip.clone()),
        container_port: Some(i32::from(binding.container_port)),
        host_port: Some(i32::from(binding.host_port)),
        protocol: Some(if binding.protocol == "udp" {
            TransportProtocol::Udp
        } else {
            TransportProtocol::Tcp
        }),
        ..Default::default()
    }
}

fn wire_container(container: &ContainerReport) -> ContainerStateChange {
    ContainerStateChange {
        container_name: Some(container.name.clone()),
        image_digest: container.image_digest.clone(),
        runtime_id: container.runtime_id.clone(),
        exit_code: container.exit_code,
        network_bindings: Some(
            container
                .network_bindings
                .iter()
                .map(wire_binding)
                .collect(),
        ),
        reason: container.reason.clone(),
        status: Some(container.status.as_str().to_string()),
    }
}

/// The call that brings the control plane from `previous` (what it was last
/// told, or what it says it knows) to `next`, if anything changed: the
/// task's status moved forward, or a container changed without moving
/// backwards. The status sent never goes below `previous`.
pub fn report_call(
    cluster_arn: &str,
    task_arn: &str,
    previous: &TaskReport,
    next: &TaskReport,
) -> Option<ReportCall> {
    let status_moved = next.status > previous.status;
    let container_changed =
        next.containers
            .iter()
            .any(|container| match previous.container(&container.name) {
                None => container.status > ContainerStatus::Pending,
                Some(before) => container.status >= before.status && container != before,
            });
    if !status_moved && !container_changed {
        return None;
    }
    let mut report = next.clone();
    report.status = report.status.max(previous.status);
    if report.status != TaskStatus::Stopped {
        report.reason = None;
        report.execution_stopped_at_ms = None;
    }
    Some(ReportCall {
        cluster_arn: cluster_arn.to_string(),
        task_arn: task_arn.to_string(),
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, status: ContainerStatus) -> ContainerReport {
        ContainerReport {
            name: name.to_string(),
            runtime_id: None,
            status,
            exit_code: None,
            reason: None,
            network_bindings: Vec::new(),
            health_status: None,
            image_digest: None,
        }
    }

    fn report(status: TaskStatus, containers: Vec<ContainerReport>) -> TaskReport {
        TaskReport {
            status,
            reason: None,
            containers,
            pull_started_at_ms: None,
            pull_stopped_at_ms: None,
            execution_stopped_at_ms: None,
        }
    }

    /// The status sent, if a call is needed.
    fn check(previous: &TaskReport, next: &TaskReport, expected: Option<TaskStatus>) {
        let call = report_call("cluster", "task", previous, next);
        assert_eq!(call.map(|c| c.report.status), expected);
    }

    #[test]
    fn a_call_when_something_moved_forward() {
        let pending = report(
            TaskStatus::Pending,
            vec![
                container("app", ContainerStatus::Pending),
                container("side", ContainerStatus::Pending),
            ],
        );
        let running = report(
            TaskStatus::Running,
            vec![
                container("app", ContainerStatus::Running),
                container("side", ContainerStatus::Running),
            ],
        );
        check(&pending, &running, Some(TaskStatus::Running));
        // Nothing changed: nothing sent.
        check(&running, &running, None);
        // Only a container moved: sent with the task's status unchanged.
        let mut side_stopped = running.clone();
        side_stopped.containers[1].status = ContainerStatus::Stopped;
        side_stopped.containers[1].exit_code = Some(0);
        check(&running, &side_stopped, Some(TaskStatus::Running));
        // Health changes are changes.
        let mut healthy = running.clone();
        healthy.containers[0].health_status = Some(HealthStatus::Healthy);
        check(&running, &healthy, Some(TaskStatus::Running));
        // So is a newly learnt image digest.
        let mut digested = running.clone();
        digested.containers[0].image_digest = Some("sha256:feed".into());
        check(&running, &digested, Some(TaskStatus::Running));
        // Backward moves are never sent; a status never goes below what was told.
        check(&running, &pending, None);
        let mut pending_but_healthy = pending.clone();
        pending_but_healthy.containers = healthy.containers.clone();
        check(&running, &pending_but_healthy, Some(TaskStatus::Running));
    }

    #[test]
    fn task_call_body_is_the_ecs_shape_plus_health() {
        let mut app = container("app", ContainerStatus::Stopped);
        app.runtime_id = Some("abc".into());
        app.exit_code = Some(137);
        app.reason = Some(OUT_OF_MEMORY.into());
        app.health_status = Some(HealthStatus::Unhealthy);
        app.image_digest = Some("sha256:feed".into());
        app.network_bindings = vec![NetworkBinding {
            bind_ip: "0.0.0.0".into(),
            container_port: 80,
            host_port: 32768,
            protocol: "tcp".into(),
        }];
        let mut stopped = report(TaskStatus::Stopped, vec![app]);
        stopped.reason = Some(ESSENTIAL_CONTAINER_EXITED.into());
        stopped.pull_started_at_ms = Some(1_500);
        stopped.execution_stopped_at_ms = Some(9_000);
        let call = report_call(
            "arn:cluster",
            "arn:task",
            &report(TaskStatus::Running, vec![]),
            &stopped,
        )
        .unwrap();
        assert_eq!(
            call.body(),
            serde_json::json!({
                "cluster": "arn:cluster",
                "task": "arn:task",
                "status": "STOPPED",
                "reason": "Essential container in task exited",
                "containers": [{
                    "containerName": "app",
                    "imageDigest": "sha256:feed",
                    "runtimeId": "abc",
                    "exitCode": 137,
                    "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 32768, "protocol": "tcp"}],
                    "reason": "OutOfMemoryError: Container killed due to memory usage",
                    "status": "STOPPED",
                    "healthStatus": "UNHEALTHY"
                }],
                "pullStartedAt": 1.5,
                "executionStoppedAt": 9.0
            })
        );
    }
}
