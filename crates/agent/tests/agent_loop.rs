//! The whole agent loop against `runtime::fake` and a TEST DOUBLE of the
//! control plane: a small hyper server on 127.0.0.1:0 that accepts
//! RegisterContainerInstance, streams the agent session (NDJSON desired
//! tasks: every task of the instance that is not STOPPED) and applies
//! SubmitTaskStateChange forward-only, re-sending the desired state after
//! every change as the real control plane does. It checks no signatures
//! beyond their presence.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::{AgentConfig, Clock, Credentials, Timing};
use bytes::Bytes;
use futures::channel::mpsc as stream_channel;
use futures::StreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use model::agent::{AgentMessage, DesiredTask, LABEL_CONTAINER_NAME, LABEL_TASK_ARN, SESSION_PATH};
use model::task::{ContainerStatus, DesiredStatus, TaskContainer, TaskStatus};
use runtime::fake::{FakeRuntime, RuntimeCall};
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

const INSTANCE_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/5a1e";
const CLUSTER_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:cluster/default";

fn task_arn(id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:000000000000:task/default/{id}")
}

/// What the test double knows and has been told.
#[derive(Default)]
struct ControlPlaneState {
    tasks: Vec<DesiredTask>,
    revision: i64,
    registrations: Vec<Value>,
    session_requests: Vec<Value>,
    /// SubmitTaskStateChange bodies.
    reports: Vec<Value>,
    sessions: Vec<stream_channel::UnboundedSender<Bytes>>,
    /// Answer the session with HTTP 503 while set.
    refuse_sessions: bool,
}

#[derive(Clone)]
struct ControlPlane {
    url: String,
    state: Arc<Mutex<ControlPlaneState>>,
    changed: watch::Sender<u64>,
}

impl ControlPlane {
    async fn start() -> ControlPlane {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (changed, _) = watch::channel(0);
        let control_plane = ControlPlane {
            url,
            state: Arc::default(),
            changed,
        };
        let server = control_plane.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let server = server.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(server.handle(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        control_plane
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn message_line(message: &AgentMessage) -> Bytes {
        let mut line = serde_json::to_vec(message).unwrap();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn desired_message(state: &ControlPlaneState) -> Bytes {
        Self::message_line(&AgentMessage::DesiredTasks {
            revision: state.revision,
            tasks: state
                .tasks
                .iter()
                .filter(|t| t.last_status != TaskStatus::Stopped)
                .cloned()
                .collect(),
        })
    }

    fn broadcast(state: &mut ControlPlaneState) {
        state.revision += 1;
        let line = Self::desired_message(state);
        state
            .sessions
            .retain(|session| session.unbounded_send(line.clone()).is_ok());
    }

    fn set_tasks(&self, tasks: Vec<DesiredTask>) {
        let mut state = self.state.lock().unwrap();
        state.tasks = tasks;
        Self::broadcast(&mut state);
    }

    fn modify_task(&self, id: &str, change: impl FnOnce(&mut DesiredTask)) {
        let mut state = self.state.lock().unwrap();
        let task = state
            .tasks
            .iter_mut()
            .find(|t| t.task_arn == task_arn(id))
            .unwrap();
        change(task);
        task.version += 1;
        Self::broadcast(&mut state);
    }

    fn task(&self, id: &str) -> DesiredTask {
        let state = self.state.lock().unwrap();
        state
            .tasks
            .iter()
            .find(|t| t.task_arn == task_arn(id))
            .unwrap()
            .clone()
    }

    fn with_state<T>(&self, read: impl FnOnce(&ControlPlaneState) -> T) -> T {
        read(&self.state.lock().unwrap())
    }

    /// Waits (at most 10 s) until `condition` holds.
    async fn wait_for(&self, what: &str, condition: impl Fn(&ControlPlane) -> bool) {
        let mut changed = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !condition(self) {
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                panic!(
                    "timed out waiting for {what}; reports so far: {:#?}",
                    self.with_state(|s| s.reports.clone())
                );
            }
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<BoxBody<Bytes, Infallible>> {
        let authorized = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.contains("Credential=AKIDAGENTTEST/") && v.contains("/us-east-1/ecs/aws4_request")
            });
        let target = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .map(|t| t.rsplit('.').next().unwrap_or_default().to_string());
        let path = request.uri().path().to_string();
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !authorized {
            return json_response(
                400,
                json!({"__type": "MissingAuthenticationTokenException", "message": "unsigned"}),
            );
        }
        if path == SESSION_PATH {
            return self.open_session(body);
        }
        let answer = match target.as_deref() {
            Some("RegisterContainerInstance") => {
                self.state.lock().unwrap().registrations.push(body);
                json!({"containerInstance": {"containerInstanceArn": INSTANCE_ARN, "status": "ACTIVE"}})
            }
            Some("SubmitTaskStateChange") => {
                self.apply_report(body);
                json!({"acknowledgment": "ACK"})
            }
            other => {
                return json_response(
                    400,
                    json!({"__type": "UnknownOperationException", "message": format!("{other:?}")}),
                )
            }
        };
        self.bump();
        json_response(200, answer)
    }

    fn open_session(&self, body: Value) -> Response<BoxBody<Bytes, Infallible>> {
        let mut state = self.state.lock().unwrap();
        state.session_requests.push(body);
        if state.refuse_sessions {
            drop(state);
            self.bump();
            return json_response(
                503,
                json!({"__type": "ServerException", "message": "restarting"}),
            );
        }
        let (sender, receiver) = stream_channel::unbounded();
        sender
            .unbounded_send(Self::desired_message(&state))
            .unwrap();
        state.sessions.push(sender);
        drop(state);
        self.bump();
        let stream = receiver.map(|line| Ok::<_, Infallible>(Frame::data(line)));
        Response::builder()
            .status(200)
            .header("content-type", "application/x-ndjson")
            .body(http_body_util::BodyExt::boxed(StreamBody::new(stream)))
            .unwrap()
    }

    fn apply_report(&self, body: Value) {
        let mut state = self.state.lock().unwrap();
        state.reports.push(body.clone());
        let arn = body["task"].as_str().unwrap_or_default().to_string();
        let Some(task) = state.tasks.iter_mut().find(|t| t.task_arn == arn) else {
            return;
        };
        let status = TaskStatus::parse(body["status"].as_str().unwrap()).unwrap();
        if task.last_status.can_transition_to(status) {
            task.last_status = status;
        }
        for reported in body["containers"].as_array().cloned().unwrap_or_default() {
            let name = reported["containerName"].as_str().unwrap();
            let container = task.containers.iter_mut().find(|c| c.name == name).unwrap();
            container.last_status =
                ContainerStatus::parse(reported["status"].as_str().unwrap()).unwrap();
            container.runtime_id = reported["runtimeId"].as_str().map(str::to_string);
            container.exit_code = reported["exitCode"].as_i64().map(|c| c as i32);
            container.reason = reported["reason"].as_str().map(str::to_string);
        }
        task.version += 1;
        Self::broadcast(&mut state);
    }
}

fn json_response(status: u16, body: Value) -> Response<BoxBody<Bytes, Infallible>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .unwrap()
}

/// A task as the control plane hands it to the agent right after RunTask.
fn desired(id: &str, containers: Value) -> DesiredTask {
    let definition: ecs_wire::TaskDefinition = serde_json::from_value(json!({
        "family": "web", "revision": 1, "containerDefinitions": containers
    }))
    .unwrap();
    let containers = definition
        .container_definitions
        .iter()
        .flatten()
        .map(|c| TaskContainer {
            name: c.name.clone().unwrap(),
            image: c.image.clone().unwrap(),
            last_status: ContainerStatus::Pending,
            runtime_id: None,
            image_digest: None,
            exit_code: None,
            reason: None,
            network_bindings: Vec::new(),
            health_status: None,
            essential: c.essential.unwrap_or(true),
            cpu: c.cpu,
            memory: c.memory,
            memory_reservation: c.memory_reservation,
        })
        .collect();
    DesiredTask {
        task_arn: task_arn(id),
        cluster_arn: CLUSTER_ARN.to_string(),
        desired_status: DesiredStatus::Running,
        last_status: TaskStatus::Provisioning,
        task_definition: definition,
        overrides: Default::default(),
        containers,
        version: 1,
    }
}

fn config(
    control_plane: &ControlPlane,
    data_dir: &std::path::Path,
    runtime: &FakeRuntime,
) -> AgentConfig {
    let clock_source = runtime.clone();
    let mut config = AgentConfig::new("default", control_plane.url.clone(), data_dir);
    config.credentials = Some(Credentials {
        access_key_id: "AKIDAGENTTEST".into(),
        secret_access_key: "secret".into(),
        session_token: None,
    });
    config.region = Some("us-east-1".into());
    config.attributes = vec![("stack".into(), Some("test".into()))];
    config.timing = Timing {
        reconnect_backoff_initial_ms: 10,
        reconnect_backoff_max_ms: 50,
        resync_interval_ms: 200,
        ..Timing::default()
    };
    config.clock = Clock::from_fn(move || clock_source.now_ms());
    config
}

struct RunningAgent {
    stop: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<Result<(), agent::AgentError>>,
}

impl RunningAgent {
    fn start(config: AgentConfig, runtime: &FakeRuntime) -> RunningAgent {
        let (stop, stopped) = oneshot::channel::<()>();
        let runtime: Arc<dyn runtime::ContainerRuntime> = Arc::new(runtime.clone());
        let handle = tokio::spawn(agent::run_with_runtime(config, runtime, async {
            let _ = stopped.await;
        }));
        RunningAgent { stop, handle }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.handle.await.unwrap().unwrap();
    }
}

fn container_name_of(runtime: &FakeRuntime, id_or_name: &str) -> String {
    runtime
        .container(id_or_name)
        .map(|c| {
            format!(
                "{}/{}",
                short_task(&c.labels[LABEL_TASK_ARN]),
                c.labels[LABEL_CONTAINER_NAME]
            )
        })
        .unwrap_or_else(|| id_or_name.to_string())
}

fn short_task(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

/// Mutating runtime calls since the last look, as `create t1/db` etc.
fn calls(runtime: &FakeRuntime) -> Vec<String> {
    runtime
        .take_calls()
        .into_iter()
        .filter(RuntimeCall::is_mutation)
        .map(|call| match call {
            RuntimeCall::CreateContainer { spec } => format!(
                "create {}/{}",
                short_task(&spec.labels[LABEL_TASK_ARN]),
                spec.labels[LABEL_CONTAINER_NAME]
            ),
            RuntimeCall::StartContainer { id } => {
                format!("start {}", container_name_of(runtime, &id))
            }
            RuntimeCall::StopContainer { id, timeout_s } => {
                format!("stop {} {timeout_s}s", container_name_of(runtime, &id))
            }
            other => format!("{other:?}"),
        })
        .collect()
}

fn docker_name(id: &str, container: &str) -> String {
    agent::blueprint::docker_container_name("web", 1, container, &task_arn(id))
}

#[tokio::test]
async fn the_agent_runs_tasks_in_order_stops_them_and_readopts_after_a_restart() {
    let runtime = FakeRuntime::new();
    runtime.set_now_ms(1_700_000_000_000);
    for image in ["db", "app", "solo"] {
        runtime.add_image(image);
    }
    let control_plane = ControlPlane::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let agent = RunningAgent::start(config(&control_plane, data_dir.path(), &runtime), &runtime);

    // Registration as ECS agents do it, then a session for that instance.
    control_plane
        .wait_for("a session", |cp| {
            cp.with_state(|s| !s.session_requests.is_empty())
        })
        .await;
    let registration = control_plane.with_state(|s| s.registrations[0].clone());
    assert_eq!(registration["cluster"], "default");
    assert!(
        registration.get("containerInstanceArn").is_none(),
        "a new instance"
    );
    let port = control_plane.url.rsplit(':').next().unwrap().to_string();
    let ports: Vec<String> =
        serde_json::from_value(registration["totalResources"][2]["stringSetValue"].clone())
            .unwrap();
    assert!(
        ports.contains(&"22".to_string()) && ports.contains(&port),
        "{ports:?}"
    );
    let attributes = registration["attributes"].as_array().unwrap();
    for name in [
        "ecs.os-type",
        "ecs.availability-zone",
        "stack",
        "ecs.capability.container-ordering",
    ] {
        assert!(
            attributes.iter().any(|a| a["name"] == name),
            "attribute {name}"
        );
    }
    assert_eq!(
        control_plane.with_state(|s| s.session_requests[0].clone()),
        json!({"cluster": "default", "containerInstanceArn": INSTANCE_ARN})
    );

    // Desired RUNNING → containers created and started in dependsOn order → RUNNING.
    control_plane.set_tasks(vec![desired(
        "t1",
        json!([
            {"name": "app", "image": "app", "dependsOn": [{"containerName": "db", "condition": "START"}]},
            {"name": "db", "image": "db", "stopTimeout": 5}
        ]),
    )]);
    control_plane
        .wait_for("t1 RUNNING", |cp| {
            cp.task("t1").last_status == TaskStatus::Running
        })
        .await;
    assert_eq!(
        calls(&runtime),
        [
            "create t1/db",
            "start t1/db",
            "create t1/app",
            "start t1/app"
        ]
    );
    let t1 = control_plane.task("t1");
    assert!(t1
        .containers
        .iter()
        .all(|c| c.runtime_id.is_some() && c.last_status == ContainerStatus::Running));

    // The essential app exits → db is stopped → the task is reported STOPPED.
    runtime.exit(&docker_name("t1", "app"), 2);
    control_plane
        .wait_for("t1 STOPPED", |cp| {
            cp.task("t1").last_status == TaskStatus::Stopped
        })
        .await;
    assert_eq!(calls(&runtime), ["stop t1/db 5s"]);
    let stopped = control_plane.with_state(|s| {
        s.reports
            .iter()
            .rev()
            .find(|body| body["status"] == "STOPPED")
            .unwrap()
            .clone()
    });
    assert_eq!(stopped["reason"], "Essential container in task exited");
    assert_eq!(stopped["containers"][0]["exitCode"], 2);
    assert!(stopped["executionStoppedAt"].is_number());

    // Two more tasks run; then the agent stops (its tasks keep running).
    control_plane.set_tasks(vec![
        control_plane.task("t1"),
        desired("t2", json!([{"name": "solo", "image": "solo"}])),
        desired("t3", json!([{"name": "solo", "image": "solo"}])),
    ]);
    control_plane
        .wait_for("t2 and t3 RUNNING", |cp| {
            cp.task("t2").last_status == TaskStatus::Running
                && cp.task("t3").last_status == TaskStatus::Running
        })
        .await;
    agent.stop().await;
    calls(&runtime);
    let reports_before_restart = control_plane.with_state(|s| s.reports.len());

    // While it is away, t3 is stopped by the control plane.
    control_plane.modify_task("t3", |task| {
        task.desired_status = DesiredStatus::Stopped;
        task.last_status = TaskStatus::Stopped;
    });

    // The restarted agent keeps its identity, adopts t2 without duplicates
    // or reports, and stops t3's container.
    let agent = RunningAgent::start(config(&control_plane, data_dir.path(), &runtime), &runtime);
    control_plane
        .wait_for("a second registration", |cp| {
            cp.with_state(|s| s.registrations.len() == 2)
        })
        .await;
    assert_eq!(
        control_plane.with_state(|s| s.registrations[1]["containerInstanceArn"].clone()),
        INSTANCE_ARN
    );
    // Nothing is reported for t3 (the control plane already has it
    // STOPPED), so watch the runtime.
    for attempt in 0.. {
        if !runtime
            .container(&docker_name("t3", "solo"))
            .unwrap()
            .status
            .is_running()
        {
            break;
        }
        assert!(attempt < 1000, "t3's container was never stopped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(calls(&runtime), ["stop t3/solo 30s"]);
    assert!(runtime
        .container(&docker_name("t2", "solo"))
        .unwrap()
        .status
        .is_running());
    assert_eq!(
        runtime
            .containers()
            .iter()
            .filter(|c| c.labels[LABEL_TASK_ARN] == task_arn("t2"))
            .count(),
        1
    );
    assert_eq!(
        control_plane.with_state(|s| s.reports.len()),
        reports_before_restart
    );
    agent.stop().await;
}

#[tokio::test]
async fn the_agent_reconnects_when_the_session_ends_or_is_refused() {
    let runtime = FakeRuntime::new();
    runtime.add_image("solo");
    let control_plane = ControlPlane::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = config(&control_plane, data_dir.path(), &runtime);
    config.timing.session_silence_ms = 300;
    let agent = RunningAgent::start(config, &runtime);
    control_plane
        .wait_for("a session", |cp| {
            cp.with_state(|s| s.session_requests.len() == 1)
        })
        .await;
    // The control plane goes away for a while: sessions end and are refused.
    control_plane.state.lock().unwrap().refuse_sessions = true;
    control_plane.state.lock().unwrap().sessions.clear();
    control_plane
        .wait_for("refused reconnects", |cp| {
            cp.with_state(|s| s.session_requests.len() >= 3)
        })
        .await;
    // It comes back with a task: the agent gets it without being restarted.
    control_plane.state.lock().unwrap().refuse_sessions = false;
    control_plane.set_tasks(vec![desired(
        "t1",
        json!([{"name": "solo", "image": "solo"}]),
    )]);
    control_plane
        .wait_for("t1 RUNNING", |cp| {
            cp.task("t1").last_status == TaskStatus::Running
        })
        .await;
    // A session that falls silent (no heartbeats) is replaced.
    let sessions = control_plane.with_state(|s| s.session_requests.len());
    control_plane
        .wait_for("a reconnect after silence", |cp| {
            cp.with_state(|s| s.session_requests.len() > sessions)
        })
        .await;
    agent.stop().await;
    let statuses: Vec<Value> =
        control_plane.with_state(|s| s.reports.iter().map(|r| r["status"].clone()).collect());
    assert_eq!(
        statuses,
        vec![json!("RUNNING")],
        "reported once, despite the reconnects"
    );
}
