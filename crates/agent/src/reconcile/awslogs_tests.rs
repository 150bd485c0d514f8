//! awslogs containers through the reconciler and the executor: the log
//! stream is made ready before the start (a missing group fails the start
//! as on ECS), and a stopped container is removed only once its output was
//! delivered by its shipper (or after [`LOG_DELIVERY_GRACE_MS`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use model::agent::DesiredTask;
use model::task::{DesiredStatus, TaskStatus};
use runtime::fake::FakeRuntime;
use runtime::LogSource;
use serde_json::json;

use super::*;
use crate::clock::Clock;
use crate::executor::execute_with_logs;
use crate::log_shipper::tests::FakeLogs;
use crate::log_shipper::{ship, ContainerLogs, ShipperTiming};

const INSTANCE_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/ci1";
const TASK_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task/default/t1";
const START_MS: i64 = 1_700_000_000_000;

fn config() -> ReconcileConfig {
    ReconcileConfig {
        facts: AgentFacts {
            container_instance_arn: INSTANCE_ARN.to_string(),
            cpu_architecture: "X86_64".to_string(),
            default_stop_timeout_s: 30,
            registry_credentials: BTreeMap::new(),
        },
        task_cleanup_wait_ms: 0,
        image_pull_behavior: ImagePullBehavior::PreferCached,
    }
}

fn task(options: serde_json::Value) -> DesiredTask {
    DesiredTask {
        task_arn: TASK_ARN.to_string(),
        cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/default".to_string(),
        desired_status: DesiredStatus::Running,
        last_status: TaskStatus::Provisioning,
        task_definition: serde_json::from_value(json!({
            "family": "web",
            "revision": 1,
            "containerDefinitions": [{
                "name": "app",
                "image": "app",
                "logConfiguration": {"logDriver": "awslogs", "options": options},
            }],
        }))
        .unwrap(),
        overrides: Default::default(),
        containers: Vec::new(),
        version: 1,
    }
}

struct Agent {
    runtime: FakeRuntime,
    logs: FakeLogs,
    local: LocalState,
}

impl Agent {
    fn new(logs: FakeLogs) -> Agent {
        let runtime = FakeRuntime::new();
        runtime.set_now_ms(START_MS);
        runtime.add_image("app");
        Agent {
            runtime,
            logs,
            local: LocalState::default(),
        }
    }

    /// One reconcile, carried out; returns the actions.
    async fn step(&mut self, desired: &[DesiredTask]) -> Vec<Action> {
        let plan = reconcile(
            &config(),
            desired,
            &self.runtime.containers(),
            &self.local,
            self.runtime.now_ms(),
        );
        let mut actions = Vec::new();
        for task_plan in plan.tasks {
            for update in &task_plan.updates {
                self.local.apply(&task_plan.task_arn, update);
            }
            let clock_source = self.runtime.clone();
            let done = execute_with_logs(
                Arc::new(self.runtime.clone()),
                Some(Arc::new(self.logs.clone())),
                None,
                Clock::from_fn(move || clock_source.now_ms()),
                1_000,
                task_plan.task_arn.clone(),
                task_plan.actions.clone(),
            )
            .await;
            for update in &done.updates {
                self.local.apply(&done.task_arn, update);
            }
            actions.extend(task_plan.actions);
        }
        actions
    }
}

fn names(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .map(|a| match a {
            Action::EnsureImage { .. } => "EnsureImage",
            Action::CreateVolume { .. } => "CreateVolume",
            Action::CreateContainer { .. } => "CreateContainer",
            Action::PrepareLogStream { .. } => "PrepareLogStream",
            Action::StartContainer { .. } => "StartContainer",
            Action::StopContainer { .. } => "StopContainer",
            Action::RemoveContainer { .. } => "RemoveContainer",
            Action::RemoveVolume { .. } => "RemoveVolume",
        })
        .collect()
}

fn options(create_group: bool) -> serde_json::Value {
    json!({
        "awslogs-group": "/ecs/web",
        "awslogs-region": "us-east-1",
        "awslogs-stream-prefix": "ecs",
        "awslogs-create-group": create_group.to_string(),
    })
}

#[tokio::test]
async fn the_stream_is_created_before_the_container_starts() {
    let mut agent = Agent::new(FakeLogs::default());
    let desired = vec![task(options(true))];
    let actions = agent.step(&desired).await;
    assert_eq!(
        names(&actions),
        vec![
            "EnsureImage",
            "CreateContainer",
            "PrepareLogStream",
            "StartContainer"
        ]
    );
    assert!(agent.logs.has_group("/ecs/web"));
    assert_eq!(agent.logs.stream_names(), vec!["ecs/app/t1".to_string()]);
    let container = &agent.runtime.containers()[0];
    assert!(container.status.is_running());
    let spec = agent.runtime.spec(&container.id).unwrap();
    assert_eq!(
        spec.log_driver,
        Some(runtime::LogDriver {
            name: "json-file".into(),
            options: BTreeMap::new()
        }),
        "Docker keeps the output; the agent delivers it"
    );
}

#[tokio::test]
async fn a_missing_log_group_fails_the_start_as_on_ecs() {
    let mut agent = Agent::new(FakeLogs::default());
    let desired = vec![task(options(false))];
    agent.step(&desired).await;
    let reason = "CannotStartContainerError: Error response from daemon: failed to initialize \
                  logging driver: failed to create Cloudwatch log stream: \
                  ResourceNotFoundException: The specified log group does not exist.";
    assert_eq!(
        agent.local.tasks[TASK_ARN].containers["app"]
            .failure_reason
            .as_deref(),
        Some(reason)
    );
    assert!(
        !agent.runtime.containers()[0].status.is_running(),
        "never started"
    );
    // The next reconcile stops the task with that reason.
    let plan = reconcile(
        &config(),
        &desired,
        &agent.runtime.containers(),
        &agent.local,
        agent.runtime.now_ms(),
    );
    let report = &plan.task(TASK_ARN).unwrap().reports.last().unwrap().report;
    assert_eq!(report.status, TaskStatus::Stopped);
    assert_eq!(report.reason.as_deref(), Some(reason));
    assert_eq!(report.containers[0].reason.as_deref(), Some(reason));
}

#[tokio::test]
async fn a_stopped_container_is_removed_only_after_its_output_was_delivered() {
    let logs = FakeLogs::with_group("/ecs/web");
    let mut agent = Agent::new(logs.clone());
    let mut desired = vec![task(options(false))];
    agent.step(&desired).await;
    let id = agent.runtime.containers()[0].id.clone();
    agent
        .runtime
        .write_log(&id, LogSource::Stdout, START_MS * 1_000_000, "last words");
    agent.runtime.exit(&id, 0);
    desired[0].last_status = TaskStatus::Stopped;
    desired[0].desired_status = DesiredStatus::Stopped;
    let state = agent.runtime.container(&id).unwrap();
    assert!(agent.local.awaits_log_delivery(&state));

    // Cleanup is due (wait 0), but the output is not delivered yet.
    let actions = agent.step(&desired).await;
    assert!(!names(&actions).contains(&"RemoveContainer"), "{actions:?}");
    assert!(agent.runtime.container(&id).is_some());

    // The shipper delivers it and the shell records that.
    let shipped = ship(
        Arc::new(agent.runtime.clone()),
        Arc::new(logs.clone()),
        Clock::system(),
        ShipperTiming {
            flush_interval_ms: 10,
            ..ShipperTiming::default()
        },
        ContainerLogs::from_container(&state).unwrap(),
    )
    .await;
    assert_eq!(logs.messages("ecs/app/t1"), vec!["last words".to_string()]);
    agent.local.apply(
        TASK_ARN,
        &LocalUpdate::LogsDelivered {
            runtime_id: id.clone(),
            started_at_ms: shipped.started_at_ms.unwrap(),
        },
    );
    assert!(!agent.local.awaits_log_delivery(&state));
    let actions = agent.step(&desired).await;
    assert_eq!(names(&actions), vec!["RemoveContainer"]);
    assert!(agent.runtime.container(&id).is_none());
}

#[tokio::test]
async fn undeliverable_output_holds_the_container_for_the_grace_period_only() {
    let mut agent = Agent::new(FakeLogs::with_group("/ecs/web"));
    let mut desired = vec![task(options(false))];
    agent.step(&desired).await;
    let id = agent.runtime.containers()[0].id.clone();
    agent.runtime.exit(&id, 0);
    desired[0].last_status = TaskStatus::Stopped;
    desired[0].desired_status = DesiredStatus::Stopped;
    let finished_ms = agent
        .runtime
        .container(&id)
        .unwrap()
        .finished_at_ms
        .unwrap();
    let plan = reconcile(
        &config(),
        &desired,
        &agent.runtime.containers(),
        &agent.local,
        agent.runtime.now_ms(),
    );
    assert_eq!(
        plan.next_wakeup_ms,
        Some(finished_ms + LOG_DELIVERY_GRACE_MS)
    );
    agent
        .runtime
        .set_now_ms(finished_ms + LOG_DELIVERY_GRACE_MS - 1);
    assert!(!names(&agent.step(&desired).await).contains(&"RemoveContainer"));
    agent
        .runtime
        .set_now_ms(finished_ms + LOG_DELIVERY_GRACE_MS);
    assert_eq!(names(&agent.step(&desired).await), vec!["RemoveContainer"]);
}

#[tokio::test]
async fn a_container_that_never_ran_has_no_output_to_wait_for() {
    let mut agent = Agent::new(FakeLogs::default());
    let mut desired = vec![task(options(false))];
    agent.step(&desired).await; // the start fails: no group
    desired[0].last_status = TaskStatus::Stopped;
    desired[0].desired_status = DesiredStatus::Stopped;
    assert_eq!(names(&agent.step(&desired).await), vec!["RemoveContainer"]);
}
