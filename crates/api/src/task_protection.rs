//! Task scale-in protection: UpdateTaskProtection and GetTaskProtection.
//!
//! Protection is stored on the task's record as the instant it expires
//! (`Task::protection_expires_at_ms`); it is on only while `now_ms` is
//! before it, so an expired protection needs no write to end. The service
//! scheduler (`deployments::plan`) never stops a protected task to scale in
//! or to replace it in a deployment.

use std::sync::Mutex;

use ecs_wire::{
    Failure, GetTaskProtectionRequest, GetTaskProtectionResponse, ProtectedTask,
    UpdateTaskProtectionRequest, UpdateTaskProtectionResponse,
};
use model::arn::id_from_reference;
use model::task::{Task, TaskStatus};

use crate::{ApiError, Ecs, RequestContext};

/// UpdateTaskProtection takes at most this many tasks.
pub const MAX_UPDATE_TASK_PROTECTION_TASKS: usize = 10;
/// GetTaskProtection takes at most this many tasks.
pub const MAX_GET_TASK_PROTECTION_TASKS: usize = 100;
/// Protection without `expiresInMinutes` lasts 2 hours, as on ECS.
pub const DEFAULT_EXPIRES_IN_MINUTES: i32 = 120;
pub const MIN_EXPIRES_IN_MINUTES: i32 = 1;
/// 48 hours.
pub const MAX_EXPIRES_IN_MINUTES: i32 = 2880;
/// The failure reason for a task that cannot be protected (not a service's).
pub const TASK_NOT_VALID: &str = "TASK_NOT_VALID";

/// When protection requested now expires: `None` for `protectionEnabled`
/// false (protection removed).
pub fn protection_expires_at_ms(
    protection_enabled: bool,
    expires_in_minutes: Option<i32>,
    now_ms: i64,
) -> Result<Option<i64>, ApiError> {
    let minutes = expires_in_minutes.unwrap_or(DEFAULT_EXPIRES_IN_MINUTES);
    if !(MIN_EXPIRES_IN_MINUTES..=MAX_EXPIRES_IN_MINUTES).contains(&minutes) {
        return Err(ApiError::invalid_parameter(format!(
            "expiresInMinutes must be between {MIN_EXPIRES_IN_MINUTES} and \
             {MAX_EXPIRES_IN_MINUTES} minutes."
        )));
    }
    Ok(protection_enabled.then(|| now_ms + i64::from(minutes) * 60_000))
}

/// Why the task's protection cannot be changed, if it cannot: only tasks of
/// a service that have not stopped can be protected.
pub fn unprotectable_reason(task: &Task) -> Option<&'static str> {
    let service_task = task
        .group
        .as_deref()
        .is_some_and(|g| g.starts_with("service:"))
        && task
            .started_by
            .as_deref()
            .is_some_and(|s| s.starts_with("ecs-svc/"));
    if !service_task || task.last_status == TaskStatus::Stopped {
        return Some(TASK_NOT_VALID);
    }
    None
}

/// The task's protection as ECS reports it at `now_ms`: an expired
/// protection reads as `protectionEnabled` false without a date.
pub fn protected_task(task_arn: String, expires_at_ms: Option<i64>, now_ms: i64) -> ProtectedTask {
    let active = expires_at_ms.filter(|at_ms| now_ms < *at_ms);
    ProtectedTask {
        task_arn: Some(task_arn),
        protection_enabled: Some(active.is_some()),
        expiration_date: active.map(|at_ms| at_ms as f64 / 1000.0),
    }
}

fn failure(arn: String, reason: &str) -> Failure {
    Failure {
        arn: Some(arn),
        reason: Some(reason.to_string()),
        detail: None,
    }
}

fn check_count(references: &[String], max: usize) -> Result<(), ApiError> {
    if references.is_empty() {
        return Err(ApiError::invalid_parameter("Tasks cannot be empty."));
    }
    if references.len() > max {
        return Err(ApiError::invalid_parameter(format!(
            "tasks can have at most {max} items."
        )));
    }
    Ok(())
}

impl Ecs {
    pub(crate) async fn update_task_protection(
        &self,
        ctx: &RequestContext,
        request: UpdateTaskProtectionRequest,
    ) -> Result<UpdateTaskProtectionResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let references = request.tasks.clone().unwrap_or_default();
        check_count(&references, MAX_UPDATE_TASK_PROTECTION_TASKS)?;
        let expires_at_ms = protection_expires_at_ms(
            request.protection_enabled.unwrap_or(false),
            request.expires_in_minutes,
            ctx.now_ms,
        )?;
        let ids = references
            .iter()
            .map(|r| id_from_reference(r, "task", &cluster.cluster_name))
            .collect::<Result<Vec<_>, _>>()?;
        let mut protected_tasks = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            let arn = ctx.arns().task(&cluster.cluster_name, &id);
            let refused = Mutex::new(None);
            let updated = self
                .modify_task(ctx, &cluster.cluster_name, &id, |task| {
                    let reason = unprotectable_reason(task);
                    *refused.lock().expect("never poisoned") = reason;
                    if reason.is_some() || task.protection_expires_at_ms == expires_at_ms {
                        return Ok(false);
                    }
                    task.protection_expires_at_ms = expires_at_ms;
                    Ok(true)
                })
                .await?;
            let refused = *refused.lock().expect("never poisoned");
            match (updated, refused) {
                (None, _) => failures.push(failure(arn, "MISSING")),
                (Some(_), Some(reason)) => failures.push(failure(arn, reason)),
                (Some(task), None) => protected_tasks.push(protected_task(
                    arn,
                    task.protection_expires_at_ms,
                    ctx.now_ms,
                )),
            }
        }
        Ok(UpdateTaskProtectionResponse {
            protected_tasks: Some(protected_tasks),
            failures: Some(failures),
        })
    }

    /// Without `tasks`: every service task of the cluster that has not
    /// stopped.
    pub(crate) async fn get_task_protection(
        &self,
        ctx: &RequestContext,
        request: GetTaskProtectionRequest,
    ) -> Result<GetTaskProtectionResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let mut protected_tasks = Vec::new();
        let mut failures = Vec::new();
        let Some(references) = request.tasks.as_ref() else {
            for task in self.tasks(ctx, &cluster.cluster_name).await? {
                let task = task.value;
                if unprotectable_reason(&task).is_none() {
                    let arn = ctx.arns().task(&cluster.cluster_name, &task.id);
                    protected_tasks.push(protected_task(
                        arn,
                        task.protection_expires_at_ms,
                        ctx.now_ms,
                    ));
                }
            }
            return Ok(GetTaskProtectionResponse {
                protected_tasks: Some(protected_tasks),
                failures: Some(failures),
            });
        };
        check_count(references, MAX_GET_TASK_PROTECTION_TASKS)?;
        for reference in references {
            let id = id_from_reference(reference, "task", &cluster.cluster_name)?;
            let arn = ctx.arns().task(&cluster.cluster_name, &id);
            match self.load_task(ctx, &cluster.cluster_name, &id).await? {
                None => failures.push(failure(arn, "MISSING")),
                Some(task) => match unprotectable_reason(&task.value) {
                    Some(reason) => failures.push(failure(arn, reason)),
                    None => protected_tasks.push(protected_task(
                        arn,
                        task.value.protection_expires_at_ms,
                        ctx.now_ms,
                    )),
                },
            }
        }
        Ok(GetTaskProtectionResponse {
            protected_tasks: Some(protected_tasks),
            failures: Some(failures),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::test_support;

    const NOW_MS: i64 = 1_700_000_000_000;

    #[test]
    fn expiry_defaults_to_2_hours_within_1_to_2880_minutes() {
        for (enabled, minutes, expected) in [
            (true, None, Ok(Some(NOW_MS + 7_200_000))),
            (true, Some(1), Ok(Some(NOW_MS + 60_000))),
            (true, Some(2880), Ok(Some(NOW_MS + 172_800_000))),
            (false, None, Ok(None)),
            (true, Some(0), Err(())),
            (true, Some(2881), Err(())),
            (false, Some(-5), Err(())),
        ] {
            let got = protection_expires_at_ms(enabled, minutes, NOW_MS).map_err(|e| {
                assert_eq!(e.code, "InvalidParameterException");
                assert_eq!(
                    e.message,
                    "expiresInMinutes must be between 1 and 2880 minutes."
                );
            });
            assert_eq!(got, expected, "{enabled} {minutes:?}");
        }
    }

    #[test]
    fn expired_protection_reads_as_disabled() {
        for (expires_at_ms, enabled, date) in [
            (None, false, None),
            (Some(NOW_MS + 1000), true, Some(1_700_000_001.0)),
            (Some(NOW_MS), false, None),
            (Some(NOW_MS - 1), false, None),
        ] {
            let task = protected_task("arn".into(), expires_at_ms, NOW_MS);
            assert_eq!(task.protection_enabled, Some(enabled), "{expires_at_ms:?}");
            assert_eq!(task.expiration_date, date, "{expires_at_ms:?}");
        }
    }

    /// Cluster `default` with one instance, service `web` of 2 tasks
    /// launched by the service controller, and a standalone task; returns
    /// (service task ids, standalone task id).
    async fn cluster() -> (test_support::Harness, Vec<String>, String) {
        let h = test_support::Harness::new();
        h.ok("CreateCluster", json!({})).await;
        h.ok(
            "RegisterContainerInstance",
            json!({
                "totalResources": [
                    {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                    {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}
                ],
                "versionInfo": {"agentVersion": "0.1.0", "dockerVersion": "20.10"}
            }),
        )
        .await;
        h.ok(
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [
                {"name": "web", "image": "busybox", "cpu": 128, "memory": 64}]}),
        )
        .await;
        h.ok(
            "CreateService",
            json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 2}),
        )
        .await;
        h.ecs
            .reconcile_services("000000000000", NOW_MS, 7)
            .await
            .unwrap();
        let listed = h.ok("ListTasks", json!({"serviceName": "web"})).await;
        let service_tasks: Vec<String> = listed["taskArns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(service_tasks.len(), 2);
        let run = h.ok("RunTask", json!({"taskDefinition": "web"})).await;
        let standalone = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
        (h, service_tasks, standalone)
    }

    fn states(response: &Value) -> Vec<(String, bool, Option<f64>)> {
        response["protectedTasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["taskArn"].as_str().unwrap().to_string(),
                    t["protectionEnabled"].as_bool().unwrap(),
                    t["expirationDate"].as_f64(),
                )
            })
            .collect()
    }

    fn failures(response: &Value) -> Vec<(String, String)> {
        response["failures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["arn"].as_str().unwrap().to_string(),
                    f["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn service_tasks_are_protected_and_unprotected_others_fail() {
        let (h, service_tasks, standalone) = cluster().await;
        let missing = standalone.rsplit_once('/').unwrap().0.to_string() + "/nope";
        let r = h
            .ok(
                "UpdateTaskProtection",
                json!({"cluster": "default", "tasks": [&service_tasks[0], &standalone, "nope"],
                    "protectionEnabled": true, "expiresInMinutes": 60}),
            )
            .await;
        let expires_s = (NOW_MS + 3_600_000) as f64 / 1000.0;
        assert_eq!(
            states(&r),
            [(service_tasks[0].clone(), true, Some(expires_s))]
        );
        assert_eq!(
            failures(&r),
            [
                (standalone.clone(), "TASK_NOT_VALID".to_string()),
                (missing, "MISSING".to_string()),
            ]
        );
        let got = h
            .ok(
                "GetTaskProtection",
                json!({"cluster": "default", "tasks": &service_tasks}),
            )
            .await;
        assert_eq!(
            states(&got),
            [
                (service_tasks[0].clone(), true, Some(expires_s)),
                (service_tasks[1].clone(), false, None),
            ]
        );
        // Without tasks: every service task.
        let all = h
            .ok("GetTaskProtection", json!({"cluster": "default"}))
            .await;
        assert_eq!(states(&all).len(), 2);
        // Stored on the task's record, as the planner reads it.
        let id = service_tasks[0].rsplit('/').next().unwrap();
        let task = h
            .ecs
            .load_task(&test_support::ctx("us-east-1"), "default", id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            task.value.protection_expires_at_ms,
            Some(NOW_MS + 3_600_000)
        );
        // Removed.
        let r = h
            .ok(
                "UpdateTaskProtection",
                json!({"cluster": "default", "tasks": [&service_tasks[0]],
                    "protectionEnabled": false}),
            )
            .await;
        assert_eq!(states(&r), [(service_tasks[0].clone(), false, None)]);
        let got = h
            .ok(
                "GetTaskProtection",
                json!({"cluster": "default", "tasks": [&service_tasks[0]]}),
            )
            .await;
        assert_eq!(states(&got), [(service_tasks[0].clone(), false, None)]);
    }

    #[tokio::test]
    async fn requests_are_validated() {
        let (h, service_tasks, _) = cluster().await;
        let eleven: Vec<&String> = std::iter::repeat_n(&service_tasks[0], 11).collect();
        for (op, body, message) in [
            (
                "UpdateTaskProtection",
                json!({"cluster": "default", "tasks": &service_tasks, "protectionEnabled": true,
                    "expiresInMinutes": 0}),
                "expiresInMinutes must be between 1 and 2880 minutes.",
            ),
            (
                "UpdateTaskProtection",
                json!({"cluster": "default", "tasks": &service_tasks, "protectionEnabled": true,
                    "expiresInMinutes": 2881}),
                "expiresInMinutes must be between 1 and 2880 minutes.",
            ),
            (
                "UpdateTaskProtection",
                json!({"cluster": "default", "tasks": eleven, "protectionEnabled": true}),
                "tasks can have at most 10 items.",
            ),
            (
                "UpdateTaskProtection",
                json!({"cluster": "default", "tasks": [], "protectionEnabled": true}),
                "Tasks cannot be empty.",
            ),
            (
                "UpdateTaskProtection",
                json!({"cluster": "default", "tasks": &service_tasks}),
                "protectionEnabled can not be blank.",
            ),
        ] {
            let e = h.err(op, body.clone()).await;
            assert_eq!(e.code, "InvalidParameterException", "{body}");
            assert_eq!(e.message, message, "{body}");
        }
        let e = h
            .err(
                "GetTaskProtection",
                json!({"cluster": "nope", "tasks": &service_tasks}),
            )
            .await;
        assert_eq!(e.code, "ClusterNotFoundException");
    }
}
