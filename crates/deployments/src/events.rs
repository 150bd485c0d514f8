//! Event messages, `rolloutStateReason`s and task `stoppedReason`s, worded as
//! ECS words them. Sources are in /work/notes/service-messages.md; where ECS's
//! wording is unknown the doc comment says the wording is Berth's own.

/// `(service web) has reached a steady state.`
pub fn steady_state_message(service_name: &str) -> String {
    format!("(service {service_name}) has reached a steady state.")
}

fn task_list(task_ids: &[String]) -> String {
    let tasks: Vec<String> = task_ids.iter().map(|id| format!("(task {id})")).collect();
    tasks.join(" ")
}

/// `(service web) has started 2 tasks: (task a) (task b).`
pub fn started_tasks_message(service_name: &str, task_ids: &[String]) -> String {
    format!(
        "(service {service_name}) has started {} tasks: {}.",
        task_ids.len(),
        task_list(task_ids)
    )
}

/// The started event when some of the tasks replace ones that failed their
/// health checks: `(service web) has started 1 tasks: (task a). Amazon ECS
/// replaced 1 tasks due to an unhealthy status.`
pub fn started_replacing_unhealthy_message(
    service_name: &str,
    task_ids: &[String],
    replaced_count: usize,
) -> String {
    format!(
        "{} Amazon ECS replaced {replaced_count} tasks due to an unhealthy status.",
        started_tasks_message(service_name, task_ids)
    )
}

/// `(service web) has stopped 2 running tasks: (task a) (task b).`
pub fn stopped_tasks_message(service_name: &str, task_ids: &[String]) -> String {
    format!(
        "(service {service_name}) has stopped {} running tasks: {}.",
        task_ids.len(),
        task_list(task_ids)
    )
}

/// `(service web) was unable to place a task because no container instance
/// met all of its requirements. Reason: …`
pub fn unable_to_place_message(service_name: &str, reason: &str) -> String {
    format!(
        "(service {service_name}) was unable to place a task because no container instance met all of its requirements. {reason}"
    )
}

/// `(service web) (task a) failed container health checks.`
pub fn failed_health_checks_message(service_name: &str, task_id: &str) -> String {
    format!("(service {service_name}) (task {task_id}) failed container health checks.")
}

/// `(service web) is unable to consistently start tasks successfully.`
/// (the service throttle logic; AWS's documentation shows no suffix).
pub fn unable_to_start_tasks_message(service_name: &str) -> String {
    format!("(service {service_name}) is unable to consistently start tasks successfully.")
}

/// `(service web) (deployment ecs-svc/1) deployment failed: tasks failed to
/// start.`
pub fn deployment_failed_message(service_name: &str, deployment_id: &str) -> String {
    format!(
        "(service {service_name}) (deployment {deployment_id}) deployment failed: tasks failed to start."
    )
}

/// `(service web) rolling back to deployment ecs-svc/1.`
pub fn rolling_back_message(service_name: &str, deployment_id: &str) -> String {
    format!("(service {service_name}) rolling back to deployment {deployment_id}.")
}

/// `(service web) (deployment ecs-svc/1) deployment completed.`
pub fn deployment_completed_message(service_name: &str, deployment_id: &str) -> String {
    format!("(service {service_name}) (deployment {deployment_id}) deployment completed.")
}

/// `(service web) was unable to stop or start tasks during a deployment
/// because of the service deployment configuration. Update the
/// minimumHealthyPercent or maximumPercent value and try again.`
pub fn deployment_configuration_blocks_message(service_name: &str) -> String {
    format!(
        "(service {service_name}) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again."
    )
}

/// rolloutStateReason of a COMPLETED deployment: `ECS deployment ecs-svc/1
/// completed.`
pub fn completed_reason(deployment_id: &str) -> String {
    format!("ECS deployment {deployment_id} completed.")
}

/// rolloutStateReason of a deployment the circuit breaker FAILED.
pub fn circuit_breaker_failed_reason() -> String {
    "ECS deployment circuit breaker: tasks failed to start.".to_string()
}

/// rolloutStateReason of the deployment a rollback makes PRIMARY again:
/// `ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1.`
pub fn rolling_back_reason(deployment_id: &str) -> String {
    format!("ECS deployment circuit breaker: rolling back to deploymentId {deployment_id}.")
}

/// stoppedReason of a task stopped to scale its deployment in or to replace
/// it: `Scaling activity initiated by (deployment ecs-svc/1)`, naming the
/// deployment that started the task (as in ECS's task state change events).
pub fn scaling_activity_reason(deployment_id: &str) -> String {
    format!("Scaling activity initiated by (deployment {deployment_id})")
}

/// stoppedReason of a task stopped for failing its container health checks.
pub fn failed_health_checks_reason() -> String {
    "Task failed container health checks".to_string()
}

/// stoppedReason of a service task on a DRAINING container instance. ECS's
/// reason contains `container instance is in DRAINING state` (seen in
/// EventBridge filters); the beginning is Berth's own.
pub fn instance_draining_reason() -> String {
    "Task stopped because container instance is in DRAINING state".to_string()
}

/// stoppedReason of a task whose container instance's agent disconnected
/// (Berth's own wording).
pub fn agent_disconnected_reason() -> String {
    "Task stopped because its container instance's agent was disconnected".to_string()
}

/// stoppedReason of a task whose container instance is no longer registered
/// (Berth's own wording).
pub fn instance_deregistered_reason() -> String {
    "Task stopped because its container instance was deregistered".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_event_names_replaced_unhealthy_tasks() {
        assert_eq!(
            started_replacing_unhealthy_message("web", &["a".to_string()], 1),
            "(service web) has started 1 tasks: (task a). Amazon ECS replaced 1 tasks due to an unhealthy status."
        );
    }

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn messages_are_worded_as_ecs_words_them() {
        let cases: Vec<(String, &str)> = vec![
            (
                steady_state_message("web"),
                "(service web) has reached a steady state.",
            ),
            (
                started_tasks_message("web", &ids(&["a", "b"])),
                "(service web) has started 2 tasks: (task a) (task b).",
            ),
            (
                stopped_tasks_message("web", &ids(&["a"])),
                "(service web) has stopped 1 running tasks: (task a).",
            ),
            (
                unable_to_place_message("web", "Reason: No Container Instances were found in your cluster."),
                "(service web) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster.",
            ),
            (
                failed_health_checks_message("web", "a"),
                "(service web) (task a) failed container health checks.",
            ),
            (
                unable_to_start_tasks_message("web"),
                "(service web) is unable to consistently start tasks successfully.",
            ),
            (
                deployment_failed_message("web", "ecs-svc/1"),
                "(service web) (deployment ecs-svc/1) deployment failed: tasks failed to start.",
            ),
            (
                rolling_back_message("web", "ecs-svc/1"),
                "(service web) rolling back to deployment ecs-svc/1.",
            ),
            (
                deployment_completed_message("web", "ecs-svc/1"),
                "(service web) (deployment ecs-svc/1) deployment completed.",
            ),
            (
                deployment_configuration_blocks_message("web"),
                "(service web) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.",
            ),
            (completed_reason("ecs-svc/1"), "ECS deployment ecs-svc/1 completed."),
            (
                circuit_breaker_failed_reason(),
                "ECS deployment circuit breaker: tasks failed to start.",
            ),
            (
                rolling_back_reason("ecs-svc/1"),
                "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1.",
            ),
            (
                scaling_activity_reason("ecs-svc/1"),
                "Scaling activity initiated by (deployment ecs-svc/1)",
            ),
            (
                failed_health_checks_reason(),
                "Task failed container health checks",
            ),
            (
                instance_draining_reason(),
                "Task stopped because container instance is in DRAINING state",
            ),
            (
                agent_disconnected_reason(),
                "Task stopped because its container instance's agent was disconnected",
            ),
            (
                instance_deregistered_reason(),
                "Task stopped because its container instance was deregistered",
            ),
        ];
        for (actual, expected) in cases {
            assert_eq!(actual, expected);
        }
    }
}
