//! The reconciler driven step by step: each step reconciles against the
//! fake runtime, applies the plan's updates, runs its actions with the real
//! executor (the fake answers at once, so `block_on` suffices) and delivers
//! its reports to a fake control plane that applies them forward-only.
//! Time is the fake runtime's counter. No sleeps, no tokio.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::executor::block_on;
use model::agent::{DesiredTask, LABEL_CONTAINER_INSTANCE_ARN};
use model::task::{ContainerStatus, DesiredStatus, TaskContainer, TaskStatus};
use runtime::fake::{FakeRuntime, Operation, RuntimeCall};
use runtime::{ContainerRuntime, Health, RuntimeError};
use serde_json::json;

use super::*;
use crate::blueprint::docker_container_name;
use crate::clock::Clock;
use crate::executor::execute;
use crate::report::ReportCall;

const INSTANCE_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/ci1";
const CLUSTER_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:cluster/default";
const START_MS: i64 = 1_700_000_000_000;

fn task_arn(id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:000000000000:task/default/{id}")
}

/// A desired RUNNING task of family `web`, revision 1, with these container
/// definitions (and optionally more task definition members).
fn task(id: &str, containers: serde_json::Value) -> DesiredTask {
    task_with(id, json!({ "containerDefinitions": containers }))
}

fn task_with(id: &str, definition: serde_json::Value) -> DesiredTask {
    let mut definition = definition;
    let object = definition.as_object_mut().unwrap();
    object.insert("family".into(), json!("web"));
    object.insert("revision".into(), json!(1));
    DesiredTask {
        task_arn: task_arn(id),
        cluster_arn: CLUSTER_ARN.to_string(),
        desired_status: DesiredStatus::Running,
        last_status: TaskStatus::Provisioning,
        task_definition: serde_json::from_value(definition).unwrap(),
        overrides: Default::default(),
        containers: Vec::new(),
        version: 1,
    }
}

struct Harness {
    config: ReconcileConfig,
    runtime: FakeRuntime,
    local: LocalState,
    desired: Vec<DesiredTask>,
    /// Reports not yet looked at by the test.
    reports: Vec<ReportCall>,
    /// Every report sent.
    all_reports: Vec<ReportCall>,
    /// Docker id → ECS container name, for readable call lists.
    names: BTreeMap<String, String>,
    last_plan: Plan,
}

impl Harness {
    fn new() -> Harness {
        let runtime = FakeRuntime::new();
        runtime.set_now_ms(START_MS);
        Harness {
            config: ReconcileConfig {
                facts: AgentFacts {
                    container_instance_arn: INSTANCE_ARN.to_string(),
                    cpu_architecture: "X86_64".to_string(),
                    default_stop_timeout_s: 30,
                    registry_credentials: BTreeMap::new(),
                },
                task_cleanup_wait_ms: 60_000,
                image_pull_behavior: ImagePullBehavior::PreferCached,
            },
            runtime,
            local: LocalState::default(),
            desired: Vec::new(),
            reports: Vec::new(),
            all_reports: Vec::new(),
            names: BTreeMap::new(),
            last_plan: Plan::default(),
        }
    }

    /// With these images present.
    fn with_images(images: &[&str]) -> Harness {
        let harness = Harness::new();
        for image in images {
            harness.runtime.add_image(image);
        }
        harness
    }

    fn now(&self) -> i64 {
        self.runtime.now_ms()
    }

    fn advance_s(&self, seconds: i64) {
        self.runtime.advance_ms(seconds * 1000);
    }

    fn docker(&self, task_id: &str, container: &str) -> String {
        docker_container_name("web", 1, container, &task_arn(task_id))
    }

    fn plan(&self) -> Plan {
        reconcile(
            &self.config,
            &self.desired,
            &self.runtime.containers(),
            &self.local,
            self.now(),
        )
    }

    /// One reconcile, carried out.
    fn step(&mut self) -> Plan {
        let plan = self.plan();
        for task_plan in &plan.tasks {
            for update in &task_plan.updates {
                self.local.apply(&task_plan.task_arn, update);
            }
            for report in &task_plan.reports {
                self.deliver(report);
            }
            self.reports.extend(task_plan.reports.iter().cloned());
            self.all_reports.extend(task_plan.reports.iter().cloned());
            if !task_plan.actions.is_empty() {
                let clock_source = self.runtime.clone();
                let done = block_on(execute(
                    Arc::new(self.runtime.clone()),
                    Clock::from_fn(move || clock_source.now_ms()),
                    1_000,
                    task_plan.task_arn.clone(),
                    task_plan.actions.clone(),
                ));
                for update in &done.updates {
                    self.local.apply(&done.task_arn, update);
                }
            }
            for container in self.runtime.containers() {
                if let Some(name) = container.labels.get(LABEL_CONTAINER_NAME) {
                    self.names.insert(container.id.clone(), name.clone());
                }
            }
        }
        self.last_plan = plan.clone();
        plan
    }

    /// Steps until a reconcile has nothing left to do.
    fn settle(&mut self) {
        for _ in 0..20 {
            let plan = self.step();
            if plan
                .tasks
                .iter()
                .all(|t| t.actions.is_empty() && t.reports.is_empty())
            {
                return;
            }
        }
        panic!("the agent does not settle: {:#?}", self.last_plan);
    }

    /// The fake control plane: forward-only task status, container fields as reported.
    fn deliver(&mut self, report: &ReportCall) {
        let Some(task) = self
            .desired
            .iter_mut()
            .find(|t| t.task_arn == report.task_arn)
        else {
            return;
        };
        if task.last_status.can_transition_to(report.report.status) {
            task.last_status = report.report.status;
        }
        let containers = report.report.containers.clone();
        for reported in containers {
            let container = match task.containers.iter_mut().find(|c| c.name == reported.name) {
                Some(container) => container,
                None => {
                    task.containers.push(TaskContainer {
                        name: reported.name.clone(),
                        image: String::new(),
                        last_status: ContainerStatus::Pending,
                        runtime_id: None,
                        image_digest: None,
                        exit_code: None,
                        reason: None,
                        network_bindings: Vec::new(),
                        health_status: None,
                        essential: true,
                        cpu: None,
                        memory: None,
                        memory_reservation: None,
                    });
                    task.containers.last_mut().unwrap()
                }
            };
            container.last_status = reported.status;
            container.runtime_id = reported.runtime_id;
            container.exit_code = reported.exit_code;
            container.reason = reported.reason;
            container.network_bindings = reported.network_bindings;
            container.health_status = reported.health_status;
            // As the control plane does: a report without a digest keeps the known one.
            if reported.image_digest.is_some() {
                container.image_digest = reported.image_digest;
            }
        }
    }

    /// The state-changing runtime calls since the last look, readably.
    fn calls(&mut self) -> Vec<String> {
        let name_of = |names: &BTreeMap<String, String>, id: &str| {
            names.get(id).cloned().unwrap_or_else(|| id.to_string())
        };
        self.runtime
            .take_calls()
            .into_iter()
            .filter(RuntimeCall::is_mutation)
            .map(|call| match call {
                RuntimeCall::PullImage { image, .. } => format!("pull {image}"),
                RuntimeCall::CreateContainer { spec } => {
                    format!(
                        "create {}",
                        spec.labels
                            .get(LABEL_CONTAINER_NAME)
                            .cloned()
                            .unwrap_or_default()
                    )
                }
                RuntimeCall::StartContainer { id } => {
                    let name = self
                        .runtime
                        .container(&id)
                        .and_then(|c| c.labels.get(LABEL_CONTAINER_NAME).cloned())
                        .unwrap_or(id);
                    format!("start {name}")
                }
                RuntimeCall::StopContainer { id, timeout_s } => {
                    format!("stop {} {timeout_s}s", name_of(&self.names, &id))
                }
                RuntimeCall::KillContainer { id } => format!("kill {}", name_of(&self.names, &id)),
                RuntimeCall::RemoveContainer { id } => {
                    format!("remove {}", name_of(&self.names, &id))
                }
                RuntimeCall::CreateVolume { volume } => format!("create volume {}", volume.name),
                RuntimeCall::RemoveVolume { name } => format!("remove volume {name}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    /// The reports since the last look, readably:
    /// `<task status> '<reason>' [name:STATUS(exit)[HEALTH] …]`.
    fn reports(&mut self) -> Vec<String> {
        std::mem::take(&mut self.reports)
            .iter()
            .map(describe)
            .collect()
    }

    fn local_task(&self, id: &str) -> &LocalTask {
        &self.local.tasks[&task_arn(id)]
    }
}

fn describe_container(c: &ContainerReport) -> String {
    let mut text = format!("{}:{}", c.name, c.status.as_str());
    if let Some(code) = c.exit_code {
        text.push_str(&format!("({code})"));
    }
    if let Some(health) = c.health_status {
        text.push_str(&format!("[{}]", health.as_str()));
    }
    text
}

fn describe(call: &ReportCall) -> String {
    let r = &call.report;
    let containers: Vec<String> = r.containers.iter().map(describe_container).collect();
    let reason = r
        .reason
        .as_ref()
        .map(|r| format!(" '{r}'"))
        .unwrap_or_default();
    format!("{}{reason} [{}]", r.status.as_str(), containers.join(" "))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn containers_start_in_dependency_order_then_running_is_reported() {
    let mut h = Harness::with_images(&["init", "db", "app"]);
    h.desired = vec![task(
        "t1",
        json!([
            {"name": "app", "image": "app", "dependsOn": [{"containerName": "db", "condition": "START"}]},
            {"name": "db", "image": "db", "dependsOn": [{"containerName": "init", "condition": "COMPLETE"}]},
            {"name": "init", "image": "init", "essential": false}
        ]),
    )];
    h.settle();
    assert_eq!(h.calls(), strings(&["create init", "start init"]));
    assert_eq!(
        h.reports(),
        strings(&["PENDING [app:PENDING db:PENDING init:RUNNING]"])
    );

    h.runtime.exit(&h.docker("t1", "init"), 0);
    h.settle();
    // START dependencies chain within one batch: db, then app.
    assert_eq!(
        h.calls(),
        strings(&["create db", "start db", "create app", "start app"])
    );
    assert_eq!(
        h.reports(),
        strings(&[
            "PENDING [app:PENDING db:PENDING init:STOPPED(0)]",
            "RUNNING [app:RUNNING db:RUNNING init:STOPPED(0)]"
        ])
    );
    let running = h.desired[0]
        .containers
        .iter()
        .find(|c| c.name == "app")
        .unwrap();
    assert_eq!(
        running.runtime_id,
        h.runtime.container(&h.docker("t1", "app")).map(|c| c.id)
    );
    // Nothing more to do, and asking again changes nothing (level-triggered).
    assert_eq!(h.plan(), Plan::default());
}

#[test]
fn an_essential_exit_stops_the_others_then_the_task() {
    let mut h = Harness::with_images(&["app", "side"]);
    h.desired = vec![task(
        "t1",
        json!([
            {"name": "app", "image": "app"},
            {"name": "side", "image": "side", "essential": false, "stopTimeout": 7}
        ]),
    )];
    h.settle();
    h.calls();
    assert_eq!(
        h.reports(),
        strings(&["RUNNING [app:RUNNING side:RUNNING]"])
    );
    h.advance_s(5);
    h.runtime.exit(&h.docker("t1", "app"), 3);
    h.runtime.set_stop_exit_code(&h.docker("t1", "side"), 143);
    h.settle();
    assert_eq!(h.calls(), strings(&["stop side 7s"]));
    // The exit is reported at once, with the task STOPPING while the
    // others stop; STOPPED once they have.
    assert_eq!(
        h.reports(),
        strings(&[
            "STOPPING [app:STOPPED(3) side:RUNNING]",
            "STOPPED 'Essential container in task exited' [app:STOPPED(3) side:STOPPED(143)]"
        ])
    );
    let local = h.local_task("t1");
    assert_eq!(local.execution_stopped_at_ms, Some(START_MS + 5_000));
    assert_eq!(h.desired[0].last_status, TaskStatus::Stopped);
}

#[test]
fn a_task_whose_essential_container_exits_at_once_still_ran() {
    // ECS reports RUNNING once every container started, so such a task
    // stops with EssentialContainerExited, not TaskFailedToStart.
    let mut h = Harness::with_images(&["main", "side"]);
    h.desired = vec![task(
        "t1",
        json!([{"name": "main", "image": "main"}, {"name": "side", "image": "side", "essential": false}]),
    )];
    h.step();
    h.runtime.exit(&h.docker("t1", "main"), 3);
    h.settle();
    assert_eq!(
        h.reports(),
        strings(&[
            "RUNNING [main:STOPPED(3) side:RUNNING]",
            "STOPPED 'Essential container in task exited' [main:STOPPED(3) side:STOPPED(0)]"
        ])
    );
    // Both containers died before the agent looked: RUNNING, then STOPPED.
    let mut h = Harness::with_images(&["main"]);
    h.desired = vec![task("t1", json!([{"name": "main", "image": "main"}]))];
    h.step();
    h.runtime.exit(&h.docker("t1", "main"), 1);
    h.settle();
    assert_eq!(
        h.reports(),
        strings(&[
            "RUNNING [main:RUNNING]",
            "STOPPED 'Essential container in task exited' [main:STOPPED(1)]"
        ])
    );
    // A task whose container never started did not run.
    let mut h = Harness::with_images(&[]);
    h.runtime.fail_pull("main", "not found");
    h.desired = vec![task("t1", json!([{"name": "main", "image": "main"}]))];
    h.settle();
    assert_eq!(
        h.reports(),
        strings(&["STOPPED 'CannotPullContainerError: not found' [main:STOPPED]"])
    );
}

#[test]
fn a_non_essential_exit_is_a_container_change_only() {
    let mut h = Harness::with_images(&["app", "side"]);
    h.desired = vec![task(
        "t1",
        json!([{"name": "app", "image": "app"}, {"name": "side", "image": "side", "essential": false}]),
    )];
    h.settle();
    h.reports();
    h.calls();
    h.runtime.exit(&h.docker("t1", "side"), 0);
    h.settle();
    assert!(h.calls().is_empty());
    assert_eq!(
        h.reports(),
        strings(&["RUNNING [app:RUNNING side:STOPPED(0)]"])
    );
    assert_eq!(h.desired[0].last_status, TaskStatus::Running);
}

#[test]
fn stop_task_stops_dependents_first_with_their_stop_timeouts() {
    let mut h = Harness::with_images(&["app", "db", "proxy"]);
    h.desired = vec![task(
        "t1",
        json!([
            {"name": "db", "image": "db", "stopTimeout": 20},
            {"name": "app", "image": "app", "dependsOn": [{"containerName": "db", "condition": "START"}]},
            {"name": "proxy", "image": "proxy", "links": ["app"], "stopTimeout": 2}
        ]),
    )];
    h.settle();
    h.calls();
    h.reports();
    h.desired[0].desired_status = DesiredStatus::Stopped;
    h.settle();
    assert_eq!(
        h.calls(),
        strings(&["stop proxy 2s", "stop app 30s", "stop db 20s"])
    );
    assert_eq!(
        h.reports(),
        strings(&[
            "STOPPING [db:RUNNING app:RUNNING proxy:RUNNING]",
            "STOPPED [db:STOPPED(0) app:STOPPED(0) proxy:STOPPED(0)]"
        ])
    );
}

#[test]
fn stopping_a_task_that_never_started_reports_it_stopped() {
    let mut h = Harness::new();
    let mut stopped = task("t1", json!([{"name": "app", "image": "app"}]));
    stopped.desired_status = DesiredStatus::Stopped;
    stopped.last_status = TaskStatus::Pending;
    h.desired = vec![stopped];
    h.settle();
    assert!(h.calls().is_empty());
    assert_eq!(h.reports(), strings(&["STOPPED [app:STOPPED]"]));
}

#[test]
fn a_pull_failure_stops_the_task_with_cannot_pull() {
    let mut h = Harness::with_images(&["side"]);
    h.runtime.fail_pull(
        "private/app:2",
        "pull access denied for private/app, repository does not exist",
    );
    h.desired = vec![task(
        "t1",
        json!([{"name": "app", "image": "private/app:2"}, {"name": "side", "image": "side", "essential": false}]),
    )];
    h.settle();
    // Images are resolved before anything is created; the failure stops the batch.
    assert_eq!(h.calls(), strings(&["pull private/app:2"]));
    let reason =
        "CannotPullContainerError: pull access denied for private/app, repository does not exist";
    assert_eq!(
        h.reports(),
        strings(&[&format!("STOPPED '{reason}' [app:STOPPED side:STOPPED]")])
    );
    let report = h.last_report("t1");
    assert_eq!(report.containers[0].reason.as_deref(), Some(reason));
    assert_eq!(
        (report.pull_started_at_ms, report.pull_stopped_at_ms),
        (Some(START_MS), Some(START_MS))
    );
}

impl Harness {
    /// The last report sent for task `id`.
    fn last_report(&self, id: &str) -> TaskReport {
        self.all_reports
            .iter()
            .rev()
            .find(|call| call.task_arn == task_arn(id))
            .map(|call| call.report.clone())
            .expect("a report was sent")
    }
}

#[test]
fn image_pull_behaviours() {
    // (behaviour, image present, pull fails) → runtime calls, task outcome
    let cases = [
        (
            ImagePullBehavior::PreferCached,
            true,
            false,
            vec![],
            TaskStatus::Running,
        ),
        (
            ImagePullBehavior::PreferCached,
            false,
            false,
            vec!["pull app"],
            TaskStatus::Running,
        ),
        (
            ImagePullBehavior::Always,
            true,
            false,
            vec!["pull app"],
            TaskStatus::Running,
        ),
        (
            ImagePullBehavior::Always,
            true,
            true,
            vec!["pull app"],
            TaskStatus::Stopped,
        ),
        (
            ImagePullBehavior::Default,
            true,
            true,
            vec!["pull app"],
            TaskStatus::Running,
        ),
        (
            ImagePullBehavior::Default,
            false,
            true,
            vec!["pull app"],
            TaskStatus::Stopped,
        ),
    ];
    for (behavior, present, fails, pulls, outcome) in cases {
        let mut h = Harness::new();
        h.config.image_pull_behavior = behavior;
        if present {
            h.runtime.add_image("app");
        }
        if fails {
            h.runtime.fail_pull("app", "registry unreachable");
        }
        h.desired = vec![task("t1", json!([{"name": "app", "image": "app"}]))];
        h.settle();
        let pulls_done: Vec<String> = h
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("pull"))
            .collect();
        assert_eq!(
            pulls_done,
            strings(&pulls),
            "{behavior:?} present={present} fails={fails}"
        );
        assert_eq!(
            h.desired[0].last_status, outcome,
            "{behavior:?} present={present} fails={fails}"
        );
    }
}

const DIGEST: &str = "sha256:5acba83a746c7608ed544dc1533b87c737a0b0fb730301639a0179f9344b1678";
const NEW_DIGEST: &str = "sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c";

/// How the image `app` of a test is on the host and in its registry.
#[derive(Clone, Copy, Debug)]
enum ImageSetup {
    /// Built locally, no registry has it.
    Built,
    /// Pulled earlier; the registry still serves the same manifest.
    Pulled,
    /// Not present; the registry serves it.
    InRegistry,
    /// Pulled earlier; the registry now serves a newer manifest.
    PulledThenUpdated,
    /// Built locally, and every pull fails.
    BuiltAndPullFails,
}

impl Harness {
    fn set_up_image(&self, image: &str, setup: ImageSetup) {
        match setup {
            ImageSetup::Built => self.runtime.add_image(image),
            ImageSetup::Pulled => {
                self.runtime.add_pulled_image(image, DIGEST);
                self.runtime.set_registry_digest(image, DIGEST);
            }
            ImageSetup::InRegistry => self.runtime.set_registry_digest(image, DIGEST),
            ImageSetup::PulledThenUpdated => {
                self.runtime.add_pulled_image(image, DIGEST);
                self.runtime.set_registry_digest(image, NEW_DIGEST);
            }
            ImageSetup::BuiltAndPullFails => {
                self.runtime.add_image(image);
                self.runtime.fail_pull(image, "registry unreachable");
            }
        }
    }

    fn image_digest_calls(&self) -> usize {
        self.runtime
            .calls()
            .iter()
            .filter(|call| call.operation() == Operation::ImageDigest)
            .count()
    }
}

#[test]
fn image_digest_is_the_manifest_the_container_runs() {
    use ImagePullBehavior::{Always, Default as PullDefault, PreferCached};
    let by_digest = format!("app@{DIGEST}");
    // (image reference, how it is set up, pull behaviour) → imageDigest reported
    let cases = [
        ("app", ImageSetup::Built, PreferCached, None),
        ("app", ImageSetup::Pulled, PreferCached, Some(DIGEST)),
        ("app", ImageSetup::InRegistry, PreferCached, Some(DIGEST)),
        (
            "app",
            ImageSetup::PulledThenUpdated,
            PreferCached,
            Some(DIGEST),
        ),
        (
            "app",
            ImageSetup::PulledThenUpdated,
            Always,
            Some(NEW_DIGEST),
        ),
        ("app", ImageSetup::BuiltAndPullFails, PullDefault, None),
        (
            "localhost:5000/team/app:v2",
            ImageSetup::InRegistry,
            Always,
            Some(DIGEST),
        ),
        // A digest reference names its manifest, even for a local image.
        (
            by_digest.as_str(),
            ImageSetup::Built,
            PreferCached,
            Some(DIGEST),
        ),
    ];
    for (image, setup, behavior, expected) in cases {
        let what = format!("{image} {setup:?} {behavior:?}");
        let mut h = Harness::new();
        h.config.image_pull_behavior = behavior;
        h.set_up_image(image, setup);
        h.desired = vec![task(
            "t1",
            json!([{"name": "app", "image": image}, {"name": "side", "image": image}]),
        )];
        h.settle();
        assert_eq!(h.desired[0].last_status, TaskStatus::Running, "{what}");
        for call in &h.all_reports {
            for container in &call.report.containers {
                assert_eq!(
                    container.image_digest.as_deref(),
                    expected,
                    "{what}: {}",
                    describe(call)
                );
            }
        }
        let known: Vec<Option<&str>> = h.desired[0]
            .containers
            .iter()
            .map(|c| c.image_digest.as_deref())
            .collect();
        assert_eq!(
            known,
            vec![expected, expected],
            "{what}: the control plane knows"
        );
        assert_eq!(
            h.image_digest_calls(),
            1,
            "{what}: learnt once for the task's image"
        );
    }
}

#[test]
fn image_digest_is_not_asked_for_again_by_reports_or_after_a_restart() {
    let mut h = Harness::new();
    h.runtime.add_pulled_image("app", DIGEST);
    h.desired = vec![task(
        "t1",
        json!([{"name": "app", "image": "app", "healthCheck": {"command": ["CMD", "true"]}}]),
    )];
    h.settle();
    let docker = h.docker("t1", "app");
    h.runtime.set_health(&docker, Health::Healthy);
    h.settle();
    assert_eq!(
        h.reports(),
        strings(&[
            "RUNNING [app:RUNNING[UNKNOWN]]",
            "RUNNING [app:RUNNING[HEALTHY]]"
        ])
    );
    // The agent restarts: it has forgotten, the control plane has not.
    h.local = LocalState::default();
    h.settle();
    assert!(h.reports().is_empty(), "nothing new to tell");
    h.runtime.exit(&docker, 0);
    h.settle();
    assert_eq!(
        h.last_report("t1").containers[0].image_digest.as_deref(),
        Some(DIGEST),
        "still reported after the restart"
    );
    assert_eq!(
        h.image_digest_calls(),
        1,
        "only when the image became ready"
    );
}

#[test]
fn an_outage_while_reading_the_digest_is_retried() {
    let mut h = Harness::new();
    h.runtime.add_pulled_image("app", DIGEST);
    h.runtime.fail_next(
        Operation::ImageDigest,
        RuntimeError::Unavailable {
            message: "daemon restarting".into(),
        },
    );
    h.desired = vec![task("t1", json!([{"name": "app", "image": "app"}]))];
    h.step();
    assert!(h.runtime.containers().is_empty(), "nothing created yet");
    h.advance_s(2);
    h.settle();
    assert_eq!(h.desired[0].last_status, TaskStatus::Running);
    assert_eq!(
        h.desired[0].containers[0].image_digest.as_deref(),
        Some(DIGEST)
    );
}

#[test]
fn out_of_memory_is_reported_as_ecs_does() {
    let mut h = Harness::with_images(&["app"]);
    h.desired = vec![task(
        "t1",
        json!([{"name": "app", "image": "app", "memory": 64}]),
    )];
    h.settle();
    h.reports();
    h.runtime.oom(&h.docker("t1", "app"));
    h.settle();
    let report = h.last_report("t1");
    let app = &report.containers[0];
    assert_eq!(app.exit_code, Some(137));
    assert_eq!(
        app.reason.as_deref(),
        Some("OutOfMemoryError: Container killed due to memory usage")
    );
    assert_eq!(
        report.reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(
        h.reports(),
        strings(&["STOPPED 'Essential container in task exited' [app:STOPPED(137)]"])
    );
}

#[test]
fn a_vanished_container_is_reported_stopped_with_what_is_known() {
    let mut h = Harness::with_images(&["app", "side"]);
    h.desired = vec![task(
        "t1",
        json!([{"name": "app", "image": "app"}, {"name": "side", "image": "side", "essential": false}]),
    )];
    h.settle();
    h.reports();
    h.calls();
    h.runtime.vanish(&h.docker("t1", "side"));
    h.settle();
    let side = h.last_report("t1").containers[1].clone();
    assert_eq!(side.status, ContainerStatus::Stopped);
    assert!(side.runtime_id.is_some(), "the id Docker had");
    assert_eq!(
        side.reason.as_deref(),
        Some("DockerContainerRemoved: the container was removed from Docker outside the agent (e.g. docker rm -f); its exit code is unknown")
    );
    assert_eq!(
        h.reports(),
        strings(&["RUNNING [app:RUNNING side:STOPPED]"])
    );
    // The essential one vanishing after its exit: the exit code is kept.
    h.runtime.exit(&h.docker("t1", "app"), 4);
    h.step();
    h.reports();
    h.runtime.vanish(&h.docker("t1", "app"));
    h.settle();
    assert!(
        h.reports().is_empty(),
        "already reported STOPPED with exit code 4"
    );
    assert_eq!(h.desired[0].containers[0].exit_code, Some(4));
}

#[test]
fn a_restarted_agent_adopts_running_containers_without_duplicates() {
    let mut h = Harness::with_images(&["app", "db"]);
    h.desired = vec![task(
        "t1",
        json!([{"name": "db", "image": "db"}, {"name": "app", "image": "app", "dependsOn": [{"containerName": "db", "condition": "START"}]}]),
    )];
    h.settle();
    h.calls();
    h.reports();
    // The agent restarts: its memory is gone, Docker and the control plane remain.
    h.local = LocalState::default();
    h.settle();
    assert!(h.calls().is_empty(), "no container is created twice");
    assert!(
        h.reports().is_empty(),
        "the control plane already knows everything"
    );
    // Restarted before RUNNING reached the control plane: reported now.
    h.local = LocalState::default();
    h.desired[0].last_status = TaskStatus::Pending;
    h.settle();
    assert!(h.calls().is_empty());
    assert_eq!(h.reports(), strings(&["RUNNING [db:RUNNING app:RUNNING]"]));
}

#[test]
fn containers_of_stopped_or_unknown_tasks_are_stopped_then_removed_after_the_wait() {
    let mut h = Harness::with_images(&["app"]);
    h.desired = vec![
        task("gone", json!([{"name": "app", "image": "app"}])),
        task_with(
            "done",
            json!({
                "volumes": [{"name": "scratch"}],
                "containerDefinitions": [{"name": "app", "image": "app", "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/s"}]}]
            }),
        ),
    ];
    h.settle();
    assert_eq!(
        h.calls(),
        strings(&[
            "create volume ecs-web-1-scratch-done",
            "create app",
            "start app",
            "create app",
            "start app"
        ])
    );
    h.reports();
    // While the agent was away: the control plane forgot one task and
    // stopped the other.
    h.local = LocalState::default();
    h.desired.retain(|t| t.task_arn == task_arn("done"));
    h.desired[0].last_status = TaskStatus::Stopped;
    h.desired[0].desired_status = DesiredStatus::Stopped;
    h.advance_s(1);
    let plan = h.step();
    assert_eq!(h.calls(), strings(&["stop app 30s", "stop app 30s"]));
    assert!(
        h.reports().is_empty(),
        "nothing to tell about settled tasks"
    );
    assert_eq!(plan.next_wakeup_ms, None);
    let plan = h.step();
    assert!(h.calls().is_empty(), "kept for the cleanup wait");
    assert_eq!(plan.next_wakeup_ms, Some(START_MS + 1_000 + 60_000));
    h.advance_s(60);
    h.settle();
    let mut calls = h.calls();
    calls.sort();
    assert_eq!(
        calls,
        strings(&[
            "remove app",
            "remove app",
            "remove volume ecs-web-1-scratch-done"
        ])
    );
    assert!(h.runtime.containers().is_empty());
    assert!(h.local.tasks.is_empty(), "forgotten");
    assert_eq!(h.plan(), Plan::default());
}

#[test]
fn healthy_dependency_and_start_timeout() {
    let definition = json!([
        {"name": "db", "image": "db", "healthCheck": {"command": ["CMD", "true"]}},
        {"name": "app", "image": "app", "startTimeout": 10, "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]}
    ]);
    // Healthy in time: app starts.
    let mut h = Harness::with_images(&["db", "app"]);
    h.desired = vec![task("t1", definition.clone())];
    h.settle();
    assert_eq!(h.calls(), strings(&["create db", "start db"]));
    assert_eq!(h.last_plan.next_wakeup_ms, Some(START_MS + 10_000));
    assert_eq!(
        h.reports(),
        strings(&["PENDING [db:RUNNING[UNKNOWN] app:PENDING]"])
    );
    h.advance_s(3);
    h.runtime.set_health(&h.docker("t1", "db"), Health::Healthy);
    h.settle();
    assert_eq!(h.calls(), strings(&["create app", "start app"]));
    assert_eq!(
        h.reports(),
        strings(&[
            "PENDING [db:RUNNING[HEALTHY] app:PENDING]",
            "RUNNING [db:RUNNING[HEALTHY] app:RUNNING]"
        ])
    );

    // Never healthy: app gives up after startTimeout, the task stops.
    let mut h = Harness::with_images(&["db", "app"]);
    h.desired = vec![task("t1", definition)];
    h.settle();
    h.calls();
    h.reports();
    h.advance_s(9);
    h.settle();
    assert!(h.calls().is_empty());
    h.advance_s(1);
    h.settle();
    assert_eq!(h.calls(), strings(&["stop db 30s"]));
    let reports = h.reports();
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(
        reports[0] == "PENDING [db:RUNNING[UNKNOWN] app:STOPPED]",
        "{reports:?}"
    );
    assert!(
        reports[1].starts_with("STOPPED 'ContainerDependencyTimeout: the dependencies of container 'app' were not met within its startTimeout of 10 s'"),
        "{reports:?}"
    );
}

#[test]
fn a_success_dependency_that_fails_stops_the_task() {
    let mut h = Harness::with_images(&["migrate", "app"]);
    h.desired = vec![task(
        "t1",
        json!([
            {"name": "migrate", "image": "migrate", "essential": false},
            {"name": "app", "image": "app", "dependsOn": [{"containerName": "migrate", "condition": "SUCCESS"}]}
        ]),
    )];
    h.settle();
    h.calls();
    h.reports();
    h.runtime.exit(&h.docker("t1", "migrate"), 2);
    h.settle();
    assert!(h.calls().is_empty(), "app is never started");
    assert_eq!(
        h.reports(),
        strings(&["STOPPED 'ContainerDependencyError: dependency 'migrate' (condition SUCCESS) cannot be met: it exited with code 2' [migrate:STOPPED(2) app:STOPPED]"])
    );
}

#[test]
fn restart_policy_restarts_in_place_after_the_attempt_period() {
    let mut h = Harness::with_images(&["app"]);
    h.desired = vec![task(
        "t1",
        json!([{"name": "app", "image": "app", "restartPolicy": {"enabled": true, "ignoredExitCodes": [0], "restartAttemptPeriod": 60}}]),
    )];
    h.settle();
    h.calls();
    h.reports();
    // Ran long enough: restarted with `docker start`, nothing reported.
    h.advance_s(61);
    h.runtime.exit(&h.docker("t1", "app"), 1);
    h.settle();
    assert_eq!(h.calls(), strings(&["start app"]));
    assert!(h.reports().is_empty());
    assert_eq!(h.local_task("t1").containers["app"].restart_count, 1);
    // An ignored exit code is a normal exit.
    h.advance_s(61);
    h.runtime.exit(&h.docker("t1", "app"), 0);
    h.settle();
    assert!(h.calls().is_empty());
    assert_eq!(
        h.reports(),
        strings(&["STOPPED 'Essential container in task exited' [app:STOPPED(0)]"])
    );

    // Exited too soon after its start: not restarted.
    let mut h = Harness::with_images(&["app"]);
    h.desired = vec![task(
        "t1",
        json!([{"name": "app", "image": "app", "restartPolicy": {"enabled": true}}]),
    )];
    h.settle();
    h.calls();
    h.advance_s(299);
    h.runtime.exit(&h.docker("t1", "app"), 1);
    h.settle();
    assert!(h.calls().is_empty());
    assert_eq!(h.desired[0].last_status, TaskStatus::Stopped);
}

#[test]
fn network_bindings_come_from_docker_or_the_host_mappings() {
    let mut h = Harness::with_images(&["web"]);
    h.desired = vec![
        task(
            "bridge",
            json!([{"name": "web", "image": "web", "portMappings": [{"containerPort": 80, "hostPort": 0}, {"containerPort": 81, "hostPort": 8081}]}]),
        ),
        task_with(
            "host",
            json!({"networkMode": "host", "containerDefinitions": [{"name": "web", "image": "web", "portMappings": [{"containerPort": 9000}]}]}),
        ),
    ];
    h.settle();
    let bindings = |h: &Harness, id: &str| -> Vec<(u16, u16)> {
        let task = h
            .desired
            .iter()
            .find(|t| t.task_arn == task_arn(id))
            .unwrap();
        task.containers[0]
            .network_bindings
            .iter()
            .map(|b| (b.container_port, b.host_port))
            .collect()
    };
    assert_eq!(
        bindings(&h, "bridge"),
        vec![(80, 32768), (81, 8081)],
        "hostPort 0 → the dynamic port Docker chose"
    );
    assert_eq!(bindings(&h, "host"), vec![(9000, 9000)]);
    // Docker forgets published ports on exit; the report keeps them.
    h.runtime.exit(&h.docker("bridge", "web"), 0);
    h.settle();
    assert_eq!(bindings(&h, "bridge"), vec![(80, 32768), (81, 8081)]);
}

#[test]
fn unsupported_fields_stop_the_task_before_anything_is_created() {
    let mut h = Harness::with_images(&["app"]);
    h.desired = vec![task(
        "t1",
        json!([{"name": "app", "image": "app", "logConfiguration": {"logDriver": "splunk", "options": {"splunk-url": "https://splunk"}}}]),
    )];
    h.settle();
    assert!(h.calls().is_empty());
    let reports = h.reports();
    assert_eq!(reports.len(), 1);
    assert!(
        reports[0].starts_with("STOPPED 'UnsupportedFeature: logConfiguration.logDriver 'splunk' in container 'app' is not supported by Berth yet"),
        "{reports:?}"
    );
}

#[test]
fn volumes_are_created_before_containers_and_shared_ones_outlive_the_task() {
    let mut h = Harness::with_images(&["app"]);
    h.desired = vec![task_with(
        "t1",
        json!({
            "volumes": [
                {"name": "data", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true}},
                {"name": "tmp", "dockerVolumeConfiguration": {"scope": "task"}}
            ],
            "containerDefinitions": [{"name": "app", "image": "app", "mountPoints": [
                {"sourceVolume": "data", "containerPath": "/data"}, {"sourceVolume": "tmp", "containerPath": "/tmp"}
            ]}]
        }),
    )];
    h.settle();
    assert_eq!(
        h.calls(),
        strings(&[
            "create volume data",
            "create volume ecs-web-1-tmp-t1",
            "create app",
            "start app"
        ])
    );
    h.runtime.exit(&h.docker("t1", "app"), 0);
    h.settle();
    h.advance_s(60);
    h.settle();
    assert_eq!(
        h.calls(),
        strings(&["remove app", "remove volume ecs-web-1-tmp-t1"])
    );
    assert_eq!(
        h.runtime
            .volumes()
            .iter()
            .map(|v| v.name.clone())
            .collect::<Vec<_>>(),
        vec!["data".to_string()]
    );
}

#[test]
fn start_and_create_failures_name_the_docker_error() {
    let mut h = Harness::with_images(&["app"]);
    h.runtime.fail_next(
        runtime::fake::Operation::StartContainer,
        RuntimeError::Other {
            message: "exec: \"serve\": executable file not found in $PATH".into(),
        },
    );
    h.desired = vec![task("t1", json!([{"name": "app", "image": "app"}]))];
    h.settle();
    assert_eq!(
        h.reports(),
        strings(&["STOPPED 'CannotStartContainerError: exec: \"serve\": executable file not found in $PATH' [app:STOPPED]"])
    );
    let mut h = Harness::with_images(&["app"]);
    h.runtime.fail_next(
        runtime::fake::Operation::CreateContainer,
        RuntimeError::InvalidSpec {
            message: "Minimum memory limit allowed is 6MB".into(),
        },
    );
    h.desired = vec![task(
        "t1",
        json!([{"name": "app", "image": "app", "memory": 4}]),
    )];
    h.settle();
    assert_eq!(
        h.reports(),
        strings(&["STOPPED 'CannotCreateContainerError: Minimum memory limit allowed is 6MB' [app:STOPPED]"])
    );
}

#[test]
fn a_runtime_outage_is_retried_later_not_fatal() {
    let mut h = Harness::with_images(&["app"]);
    h.runtime.fail_next(
        runtime::fake::Operation::CreateContainer,
        RuntimeError::Unavailable {
            message: "connection refused".into(),
        },
    );
    h.desired = vec![task("t1", json!([{"name": "app", "image": "app"}]))];
    let plan = h.step();
    assert_eq!(
        plan.task(&task_arn("t1")).unwrap().actions.len(),
        3,
        "image, create, start"
    );
    let plan = h.step();
    assert!(
        plan.tasks.iter().all(|t| t.actions.is_empty()),
        "waits before retrying"
    );
    assert_eq!(plan.next_wakeup_ms, Some(START_MS + 1_000));
    h.advance_s(1);
    h.settle();
    assert_eq!(h.desired[0].last_status, TaskStatus::Running);
}

#[test]
fn a_container_created_by_a_crashed_agent_is_adopted_on_create_conflict() {
    let mut h = Harness::with_images(&["app"]);
    h.desired = vec![task("t1", json!([{"name": "app", "image": "app"}]))];
    // The container exists but this agent's view of Docker predates it.
    let blueprint = crate::blueprint::task_blueprint(&h.desired[0], &h.config.facts).unwrap();
    block_on(h.runtime.create_container(&blueprint.containers[0].spec)).unwrap();
    let stale_view: Vec<runtime::ContainerState> = Vec::new();
    let plan = reconcile(&h.config, &h.desired, &stale_view, &h.local, h.now());
    let actions = plan.task(&task_arn("t1")).unwrap().actions.clone();
    let clock_source = h.runtime.clone();
    let done = block_on(execute(
        Arc::new(h.runtime.clone()),
        Clock::from_fn(move || clock_source.now_ms()),
        1_000,
        task_arn("t1"),
        actions,
    ));
    assert!(done
        .updates
        .iter()
        .any(|u| matches!(u, LocalUpdate::ContainerCreated { .. })));
    assert_eq!(h.runtime.containers().len(), 1, "no duplicate");
    assert!(h.runtime.containers()[0].status.is_running());
}

#[test]
fn reconcile_is_level_triggered() {
    // Planning twice from the same inputs gives the same plan, whatever the history.
    let mut h = Harness::with_images(&["app", "db"]);
    h.desired = vec![task(
        "t1",
        json!([{"name": "db", "image": "db"}, {"name": "app", "image": "app", "dependsOn": [{"containerName": "db", "condition": "START"}]}]),
    )];
    for _ in 0..4 {
        assert_eq!(h.plan(), h.plan());
        h.step();
    }
    assert!(h
        .runtime
        .containers()
        .iter()
        .all(|c| c.labels[LABEL_CONTAINER_INSTANCE_ARN] == INSTANCE_ARN));
}
