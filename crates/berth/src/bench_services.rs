//! `berth bench services`: how fast the service controller replaces a
//! killed task, rolls out a new revision and scales a service up.
//!
//! Every scenario runs an in-process control plane on a fresh SQLite store
//! (real HTTP on loopback, real SigV4, the agent session stream) with the
//! service controller beside it, as `berth up` runs them. Requests follow
//! the ECS API (botocore's model).
//!
//! - `replace` (real Docker): an in-process agent joins cluster
//!   `bench-services` on the local Docker Engine. A service of one task
//!   (one `sh` container of [`TEST_IMAGE`]) reaches a steady state; then
//!   `--kills` times, `docker kill` the task's container and time from the
//!   moment `docker kill` is started (an upper bound) to the first
//!   DescribeTasks answer (polled every [`POLL_INTERVAL`]) that shows
//!   another task of the service RUNNING. ECS itself takes tens of seconds;
//!   the aim is at most 2 s.
//! - `rolling` (real Docker): a service of `--rolling-tasks` tasks with the
//!   default deployment configuration (minimumHealthyPercent 100,
//!   maximumPercent 200) reaches a steady state; a new revision is
//!   registered and UpdateService starts a rolling update. Timed until
//!   DescribeServices shows one deployment, COMPLETED, with runningCount
//!   tasks all of the new revision and no task of the old one left. Every
//!   sample also counts the service's tasks that are not STOPPED (must stay
//!   at most twice the count) and those RUNNING and meant to keep running
//!   (must stay at least the count).
//! - `scale` (SIMULATED agents, no Docker): `--instances` container
//!   instances are registered with RegisterContainerInstance and each holds
//!   an agent session open (which records its heartbeats, so it is
//!   `agentConnected`); a stand-in agent per instance acknowledges every
//!   task pushed to it RUNNING at once with SubmitTaskStateChange.
//!   CreateService with `--tasks` tasks is timed until runningCount reaches
//!   it, and until the service reports a steady state.
//!
//! The containers the real agent ran (label `com.amazonaws.ecs.cluster` =
//! `bench-services`) are removed at the start and at the end.
//!
//! Prints human-readable figures, then one JSON line:
//! `{"bench":"services","replace_median_s":…,"rolling_s":…,"scale_tasks_per_s":…,…}`
//! (the keys of the scenarios that ran).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use runtime_docker::test_support::{ensure_test_image, TEST_IMAGE};
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::bench_support::{
    blocking, create_cluster_and_register, docker, micros, percentile, remove_containers, round3,
    start_in_process, stderr_excerpt, Client, InProcessOptions, InProcessServer, Target,
};
use crate::clock;

/// The cluster of the real-Docker scenarios.
const DOCKER_CLUSTER: &str = "bench-services";
const DOCKER_FAMILY: &str = "bench-services";
const REPLACE_SERVICE: &str = "bench-replace";
const ROLLING_SERVICE: &str = "bench-rolling";
const SCALE_CLUSTER: &str = "bench-scale";
const SCALE_FAMILY: &str = "bench-scale";
const SCALE_SERVICE: &str = "bench-scale";
const CONTAINER_NAME: &str = "app";
const CONTAINER_MEMORY_MIB: u64 = 32;
/// Exits at once on SIGTERM (`sleep` as PID 1 would ignore it), so rolling
/// updates do not wait for SIGKILL.
const CONTAINER_SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";
/// The containers' `stopTimeout`, should SIGTERM not end them.
const CONTAINER_STOP_TIMEOUT_S: u32 = 2;
/// The label the agent puts the cluster name in (as the ECS agent does).
const CLUSTER_LABEL: &str = "com.amazonaws.ecs.cluster";
/// The real agent removes a stopped task's containers after this long
/// (instead of 3 h), so the kills do not pile up containers.
const AGENT_TASK_CLEANUP_WAIT_MS: i64 = 10_000;
const STEADY_STATE_SUFFIX: &str = "has reached a steady state.";

/// Simulated instances' resources and the scale task's reservation: 64
/// tasks fit on an instance.
const SIMULATED_INSTANCE_CPU_UNITS: u64 = 4096;
const SIMULATED_INSTANCE_MEMORY_MIB: u64 = 4096;
const SCALE_TASK_CPU_UNITS: u64 = 64;
const SCALE_TASK_MEMORY_MIB: u64 = 64;
const ZONE_SUFFIXES: [&str; 3] = ["a", "b", "c"];
const SIMULATED_NOTICE: &str = "simulated agents: instances are registered through the API and hold agent sessions open; an in-process stand-in acknowledges every task pushed to it RUNNING at once; no containers run";

/// How often the service and its tasks are read while something is timed.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How often while waiting for something untimed.
const WAIT_POLL_INTERVAL: Duration = Duration::from_millis(100);
const AGENT_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(30);
const STEADY_STATE_TIMEOUT: Duration = Duration::from_secs(120);
const REPLACEMENT_TIMEOUT: Duration = Duration::from_secs(30);
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(120);
const SCALE_TIMEOUT: Duration = Duration::from_secs(150);
const SESSIONS_OPEN_TIMEOUT: Duration = Duration::from_secs(30);
const AGENT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the stand-in agents have to close their sessions at the end.
const FLEET_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// A simulated agent whose session failed waits this long to reopen it.
const SESSION_RETRY_PAUSE: Duration = Duration::from_millis(200);
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// ListTasks and DescribeTasks take at most this many tasks.
const PAGE_SIZE: usize = 100;
/// Connections simulated instances are registered over.
const REGISTRATION_CLIENTS: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Kill a service task's container; time until its replacement runs.
    Replace,
    /// Roll a service out to a new revision.
    Rolling,
    /// Scale a service up on simulated instances.
    Scale,
    /// All three.
    All,
}

impl Scenario {
    fn includes(self, scenario: Scenario) -> bool {
        self == Scenario::All || self == scenario
    }
}

#[derive(clap::Args)]
pub struct ServicesBenchArgs {
    /// Which measurement to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,
    /// `replace`: containers killed, one after the other.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// `rolling`: the service's desiredCount.
    #[arg(long, default_value_t = 10)]
    rolling_tasks: u32,
    /// `scale`: simulated container instances (4096 CPU units, 4096 MiB
    /// each; a task reserves 64 and 64).
    #[arg(long, default_value_t = 100)]
    instances: usize,
    /// `scale`: the service's desiredCount.
    #[arg(long, default_value_t = 1000)]
    tasks: u32,
    /// The region requests are signed for.
    #[arg(long, default_value = crate::DEFAULT_REGION)]
    region: String,
}

pub async fn run(args: ServicesBenchArgs) -> Result<()> {
    let scenario = args.scenario;
    if scenario.includes(Scenario::Replace) && args.kills == 0 {
        bail!("--kills must be at least 1");
    }
    if scenario.includes(Scenario::Rolling) && args.rolling_tasks == 0 {
        bail!("--rolling-tasks must be at least 1");
    }
    if scenario.includes(Scenario::Scale) {
        if args.instances == 0 || args.tasks == 0 {
            bail!("--instances and --tasks must be at least 1");
        }
        let capacity = scale_capacity_tasks(args.instances);
        if u64::from(args.tasks) > capacity {
            bail!(
                "--tasks {} exceeds what {} simulated instances hold ({capacity} tasks); lower --tasks or raise --instances",
                args.tasks,
                args.instances
            );
        }
    }

    let mut line = serde_json::Map::new();
    line.insert("bench".into(), json!("services"));
    line.insert("scenario".into(), json!(scenario_name(scenario)));
    if scenario.includes(Scenario::Replace) || scenario.includes(Scenario::Rolling) {
        let figures = run_docker_scenarios(&args).await?;
        if let Some(replace) = &figures.replace {
            replace.print();
            replace.add_to(&mut line);
        }
        if let Some(rolling) = &figures.rolling {
            rolling.print();
            rolling.add_to(&mut line);
        }
    }
    if scenario.includes(Scenario::Scale) {
        let scale = run_scale(&args).await?;
        scale.print();
        scale.add_to(&mut line);
    }
    println!("{}", Value::Object(line));
    Ok(())
}

fn scenario_name(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::Replace => "replace",
        Scenario::Rolling => "rolling",
        Scenario::Scale => "scale",
        Scenario::All => "all",
    }
}

// ---------------------------------------------------------------------------
// The control plane with its service controller

/// An in-process server (with agent sessions) and the service controller
/// running beside it, as `berth up` runs them.
struct ControlPlane {
    target: Arc<Target>,
    server: InProcessServer,
    stop_controller: oneshot::Sender<()>,
    controller: JoinHandle<()>,
}

impl ControlPlane {
    async fn start(region: &str) -> Result<ControlPlane> {
        let (target, server) = start_in_process(
            region,
            InProcessOptions {
                agent_sessions: true,
                ..Default::default()
            },
        )
        .await?;
        let (stop_controller, stopped) = oneshot::channel::<()>();
        let controller = tokio::spawn(crate::node::run_service_controller(
            Arc::clone(&server.ecs),
            crate::DEFAULT_ACCOUNT_ID.to_string(),
            async {
                let _ = stopped.await;
            },
        ));
        Ok(ControlPlane {
            target: Arc::new(target),
            server,
            stop_controller,
            controller,
        })
    }

    fn client(&self) -> Client {
        Client::new(Arc::clone(&self.target))
    }

    async fn stop(self) {
        let _ = self.stop_controller.send(());
        if let Err(err) = self.controller.await {
            tracing::warn!(%err, "the service controller ended abnormally");
        }
        self.server.stop().await;
    }
}

// ---------------------------------------------------------------------------
// Real Docker: replace and rolling

/// A real agent running in this process against the local Docker Engine.
struct InProcessAgent {
    task: JoinHandle<Result<(), agent::AgentError>>,
    stop: oneshot::Sender<()>,
    // Holds the agent's state file; removed when the bench ends.
    _data_dir: tempfile::TempDir,
}

impl InProcessAgent {
    fn start(plane: &ControlPlane, region: &str) -> Result<InProcessAgent> {
        let data_dir = tempfile::Builder::new()
            .prefix("berth-bench-agent-")
            .tempdir()
            .context("cannot create a temporary directory for the agent")?;
        let mut config = agent::AgentConfig::new(
            DOCKER_CLUSTER,
            plane.server.endpoint_url.clone(),
            data_dir.path().join("state"),
        );
        config.credentials = Some(agent::Credentials {
            access_key_id: plane.target.access_key_id.clone(),
            secret_access_key: plane.target.secret_access_key.clone(),
            session_token: None,
        });
        config.region = Some(region.to_string());
        config.reserved_tcp_ports = vec![plane.target.connect_addr.port()];
        config.timing.task_cleanup_wait_ms = AGENT_TASK_CLEANUP_WAIT_MS;
        config.timing.default_stop_timeout_s = CONTAINER_STOP_TIMEOUT_S;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(agent::run_with(config, async {
            let _ = stopped.await;
        }));
        Ok(InProcessAgent {
            task,
            stop,
            _data_dir: data_dir,
        })
    }

    /// An error if the agent has stopped.
    async fn check_running(&mut self) -> Result<()> {
        if !self.task.is_finished() {
            return Ok(());
        }
        match (&mut self.task).await {
            Ok(Ok(())) => bail!("the agent stopped unexpectedly"),
            Ok(Err(err)) => bail!("the agent stopped: {err}"),
            Err(err) => bail!("the agent failed: {err}"),
        }
    }

    /// Asks the agent to stop (its containers keep running) and waits.
    async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(AGENT_STOP_TIMEOUT, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => println!("note: the agent ended with an error: {err}"),
            Ok(Err(err)) => println!("note: the agent failed: {err}"),
            Err(_) => println!(
                "note: the agent did not stop within {} s",
                AGENT_STOP_TIMEOUT.as_secs()
            ),
        }
    }
}

struct DockerFigures {
    replace: Option<ReplaceFigures>,
    rolling: Option<RollingFigures>,
}

async fn run_docker_scenarios(args: &ServicesBenchArgs) -> Result<DockerFigures> {
    tokio::task::spawn_blocking(ensure_test_image)
        .await
        .context("building the test image panicked")?
        .map_err(|message| anyhow::anyhow!("cannot provide the image {TEST_IMAGE}: {message}"))?;
    remove_bench_containers()
        .await
        .context("removing containers a previous run left")?;

    let plane = ControlPlane::start(&args.region).await?;
    let mut client = plane.client();
    let (_, first_revision) =
        create_cluster_and_register(&mut client, DOCKER_CLUSTER, &docker_task_definition(1))
            .await?;
    let mut agent = InProcessAgent::start(&plane, &args.region)?;
    println!(
        "berth bench services (real Docker): image {TEST_IMAGE}, control plane {} with the service controller, an in-process agent",
        plane.server.endpoint_url
    );

    let measured = async {
        wait_for_agent(&mut client, &mut agent).await?;
        let replace = if args.scenario.includes(Scenario::Replace) {
            let figures = measure_replace(&mut client, &mut agent, &first_revision, args).await?;
            Some(figures)
        } else {
            None
        };
        let rolling = if args.scenario.includes(Scenario::Rolling) {
            Some(measure_rolling(&mut client, &mut agent, &first_revision, args).await?)
        } else {
            None
        };
        Ok::<_, anyhow::Error>(DockerFigures { replace, rolling })
    }
    .await;

    agent.stop().await;
    let removed = remove_bench_containers().await;
    plane.stop().await;
    if let Err(err) = removed {
        println!("note: removing the bench's containers: {err:#}");
    }
    measured
}

/// Waits until the agent's container instance is registered and connected.
async fn wait_for_agent(client: &mut Client, agent: &mut InProcessAgent) -> Result<()> {
    let started = clock::monotonic_now();
    loop {
        let listed = client
            .call_ok(
                "ListContainerInstances",
                &json!({ "cluster": DOCKER_CLUSTER }),
            )
            .await?;
        if let Some(arn) = listed["containerInstanceArns"][0].as_str() {
            let described = client
                .call_ok(
                    "DescribeContainerInstances",
                    &json!({ "cluster": DOCKER_CLUSTER, "containerInstances": [arn] }),
                )
                .await?;
            if described["containerInstances"][0]["agentConnected"] == json!(true) {
                println!(
                    "agent registered and connected in {:.2} s",
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
        }
        agent.check_running().await?;
        if started.elapsed() > AGENT_REGISTRATION_TIMEOUT {
            bail!(
                "the agent did not register within {} s (is the Docker Engine reachable?)",
                AGENT_REGISTRATION_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(WAIT_POLL_INTERVAL).await;
    }
}

fn docker_task_definition(revision: u32) -> Value {
    json!({
        "family": DOCKER_FAMILY,
        "containerDefinitions": [{
            "name": CONTAINER_NAME,
            "image": TEST_IMAGE,
            "memory": CONTAINER_MEMORY_MIB,
            "essential": true,
            "command": ["sh", "-c", CONTAINER_SCRIPT],
            "stopTimeout": CONTAINER_STOP_TIMEOUT_S,
            "environment": [{"name": "BENCH_REVISION", "value": revision.to_string()}]
        }]
    })
}

fn create_service_body(
    cluster: &str,
    service: &str,
    task_definition_arn: &str,
    desired_count: u32,
) -> Value {
    json!({
        "cluster": cluster,
        "serviceName": service,
        "taskDefinition": task_definition_arn,
        "desiredCount": desired_count,
        "launchType": "EC2",
    })
}

/// What one replacement measured.
struct Replacement {
    /// `docker kill` started → another task of the service RUNNING.
    to_running_us: u64,
    /// `docker kill` started → the killed task shown STOPPED.
    to_stopped_us: Option<u64>,
}

async fn measure_replace(
    client: &mut Client,
    agent: &mut InProcessAgent,
    task_definition_arn: &str,
    args: &ServicesBenchArgs,
) -> Result<ReplaceFigures> {
    client
        .call_ok(
            "CreateService",
            &create_service_body(DOCKER_CLUSTER, REPLACE_SERVICE, task_definition_arn, 1),
        )
        .await?;
    let steady_s = wait_for_steady_state(client, agent, REPLACE_SERVICE, 1).await?;
    println!(
        "replace: service {REPLACE_SERVICE} (1 task) steady in {steady_s:.2} s; killing its container {} times",
        args.kills
    );
    let mut replacements = Vec::with_capacity(args.kills);
    for index in 0..args.kills {
        let replacement = replace_once(client, agent).await?;
        println!(
            "  kill {:>3}: replacement RUNNING after {:.3} s (killed task STOPPED after {})",
            index + 1,
            replacement.to_running_us as f64 / 1e6,
            replacement
                .to_stopped_us
                .map_or("-".to_string(), |us| format!("{:.3} s", us as f64 / 1e6))
        );
        replacements.push(replacement);
        // The next kill starts from a steady service.
        wait_for_steady_state(client, agent, REPLACE_SERVICE, 1).await?;
    }
    // Free the instance for the next scenario; not timed.
    client
        .call_ok(
            "DeleteService",
            &json!({ "cluster": DOCKER_CLUSTER, "service": REPLACE_SERVICE, "force": true }),
        )
        .await?;
    Ok(ReplaceFigures::new(&replacements))
}

/// Kills the running task's container and times its replacement.
async fn replace_once(client: &mut Client, agent: &mut InProcessAgent) -> Result<Replacement> {
    let tasks = service_tasks(client, DOCKER_CLUSTER, REPLACE_SERVICE).await?;
    let victim = tasks
        .iter()
        .find(|task| task.last_status == "RUNNING" && task.desired_status == "RUNNING")
        .context("the service has no RUNNING task to kill")?;
    let container_id = victim
        .runtime_id
        .clone()
        .with_context(|| format!("task {} shows no container runtimeId", victim.arn))?;
    let victim_arn = victim.arn.clone();
    // Timed from before the CLI runs: an upper bound, as the container dies
    // somewhere within the `docker kill` call.
    let killed_at = clock::monotonic_now();
    blocking({
        let container_id = container_id.clone();
        move || {
            let killed = docker(&["kill", &container_id])?;
            if !killed.status.success() {
                bail!(
                    "docker kill {container_id} failed: {}",
                    stderr_excerpt(&killed)
                );
            }
            Ok(())
        }
    })
    .await?;
    let mut to_stopped_us = None;
    loop {
        let mut arns = list_task_arns(client, DOCKER_CLUSTER, REPLACE_SERVICE, "RUNNING").await?;
        if !arns.contains(&victim_arn) {
            arns.push(victim_arn.clone());
        }
        let tasks = describe_tasks(client, DOCKER_CLUSTER, &arns).await?;
        let observed_at = clock::monotonic_now();
        let elapsed_us = micros(observed_at.duration_since(killed_at));
        if to_stopped_us.is_none()
            && tasks
                .iter()
                .any(|task| task.arn == victim_arn && task.last_status == "STOPPED")
        {
            to_stopped_us = Some(elapsed_us);
        }
        if tasks.iter().any(|task| {
            task.arn != victim_arn
                && task.last_status == "RUNNING"
                && task.desired_status == "RUNNING"
        }) {
            return Ok(Replacement {
                to_running_us: elapsed_us,
                to_stopped_us,
            });
        }
        if killed_at.elapsed() > REPLACEMENT_TIMEOUT {
            agent.check_running().await?;
            bail!(
                "no replacement of task {victim_arn} was RUNNING within {} s of docker kill; the service's tasks: {}",
                REPLACEMENT_TIMEOUT.as_secs(),
                render_tasks(&tasks)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

async fn measure_rolling(
    client: &mut Client,
    agent: &mut InProcessAgent,
    first_revision: &str,
    args: &ServicesBenchArgs,
) -> Result<RollingFigures> {
    let count = args.rolling_tasks;
    client
        .call_ok(
            "CreateService",
            &create_service_body(DOCKER_CLUSTER, ROLLING_SERVICE, first_revision, count),
        )
        .await?;
    let steady_s = wait_for_steady_state(client, agent, ROLLING_SERVICE, count).await?;
    println!(
        "rolling: service {ROLLING_SERVICE} ({count} tasks, minimumHealthyPercent 100, maximumPercent 200) steady in {steady_s:.2} s"
    );
    let registered = client
        .call_ok("RegisterTaskDefinition", &docker_task_definition(2))
        .await?;
    let new_revision = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .context("RegisterTaskDefinition answered without a taskDefinitionArn")?
        .to_string();

    let started = clock::monotonic_now();
    client
        .call_ok(
            "UpdateService",
            &json!({
                "cluster": DOCKER_CLUSTER,
                "service": ROLLING_SERVICE,
                "taskDefinition": new_revision,
            }),
        )
        .await?;
    let mut bounds = RolloutBounds::default();
    loop {
        let service = describe_service(client, DOCKER_CLUSTER, ROLLING_SERVICE).await?;
        let tasks = service_tasks(client, DOCKER_CLUSTER, ROLLING_SERVICE).await?;
        bounds.observe(&SampleCounts::of(&tasks));
        if rollout_complete(&service, &tasks, &new_revision, count) {
            let elapsed = started.elapsed();
            println!(
                "rolling: {first_revision} → {new_revision} complete in {:.2} s",
                elapsed.as_secs_f64()
            );
            return Ok(RollingFigures {
                tasks: count,
                seconds: elapsed.as_secs_f64(),
                max_tasks: bounds.max_tasks,
                min_running: bounds.min_running.unwrap_or(0),
                samples: bounds.samples,
            });
        }
        if started.elapsed() > ROLLOUT_TIMEOUT {
            agent.check_running().await?;
            bail!(
                "the rolling update was not complete within {} s: {}; tasks: {}",
                ROLLOUT_TIMEOUT.as_secs(),
                service.render(),
                render_tasks(&tasks)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Waits until the service is steady with `desired_count` tasks; the
/// seconds it took.
async fn wait_for_steady_state(
    client: &mut Client,
    agent: &mut InProcessAgent,
    service_name: &str,
    desired_count: u32,
) -> Result<f64> {
    let started = clock::monotonic_now();
    loop {
        let service = describe_service(client, DOCKER_CLUSTER, service_name).await?;
        if service.is_steady(desired_count) {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > STEADY_STATE_TIMEOUT {
            agent.check_running().await?;
            bail!(
                "service {service_name} did not reach a steady state within {} s: {}",
                STEADY_STATE_TIMEOUT.as_secs(),
                service.render()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Removes every container the agent ran for cluster `bench-services`.
async fn remove_bench_containers() -> Result<()> {
    blocking(|| remove_containers(&format!("label={CLUSTER_LABEL}={DOCKER_CLUSTER}"))).await
}

// ---------------------------------------------------------------------------
// Reading services and tasks

/// What the bench reads of a DescribeServices answer.
#[derive(Clone, Debug, Default, PartialEq)]
struct ServiceView {
    status: String,
    desired_count: u64,
    running_count: u64,
    pending_count: u64,
    deployments: Vec<DeploymentView>,
    /// The newest event's message.
    latest_event: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
struct DeploymentView {
    status: String,
    rollout_state: Option<String>,
    task_definition_arn: String,
    running_count: u64,
}

impl ServiceView {
    /// The first service of a DescribeServices answer.
    fn parse(response: &Value) -> Option<ServiceView> {
        let service = response["services"].as_array()?.first()?;
        let count = |value: &Value| value.as_u64().unwrap_or(0);
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        Some(ServiceView {
            status: text(&service["status"]),
            desired_count: count(&service["desiredCount"]),
            running_count: count(&service["runningCount"]),
            pending_count: count(&service["pendingCount"]),
            deployments: service["deployments"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|deployment| DeploymentView {
                    status: text(&deployment["status"]),
                    rollout_state: deployment["rolloutState"].as_str().map(str::to_string),
                    task_definition_arn: text(&deployment["taskDefinition"]),
                    running_count: count(&deployment["runningCount"]),
                })
                .collect(),
            latest_event: service["events"][0]["message"].as_str().map(str::to_string),
        })
    }

    /// `desired_count` tasks running, one COMPLETED deployment, and the
    /// steady-state event the newest.
    fn is_steady(&self, desired_count: u32) -> bool {
        self.running_count == u64::from(desired_count)
            && self.pending_count == 0
            && self.deployments.len() == 1
            && self.deployments[0].rollout_state.as_deref() == Some("COMPLETED")
            && self
                .latest_event
                .as_deref()
                .is_some_and(|message| message.ends_with(STEADY_STATE_SUFFIX))
    }

    fn render(&self) -> String {
        let deployments: Vec<String> = self
            .deployments
            .iter()
            .map(|d| {
                format!(
                    "{} {} {} running {}",
                    d.status,
                    d.rollout_state.as_deref().unwrap_or("-"),
                    d.task_definition_arn.rsplit('/').next().unwrap_or_default(),
                    d.running_count
                )
            })
            .collect();
        format!(
            "status {}, desired {}, running {}, pending {}, deployments [{}], latest event {:?}",
            self.status,
            self.desired_count,
            self.running_count,
            self.pending_count,
            deployments.join("; "),
            self.latest_event.as_deref().unwrap_or("-")
        )
    }
}

async fn describe_service(
    client: &mut Client,
    cluster: &str,
    service: &str,
) -> Result<ServiceView> {
    let response = client
        .call_ok(
            "DescribeServices",
            &json!({ "cluster": cluster, "services": [service] }),
        )
        .await?;
    ServiceView::parse(&response)
        .with_context(|| format!("DescribeServices did not return service {service}: {response}"))
}

/// What the bench reads of a task in a DescribeTasks answer.
#[derive(Clone, Debug, PartialEq)]
struct TaskView {
    arn: String,
    last_status: String,
    desired_status: String,
    task_definition_arn: String,
    /// The first container's Docker id.
    runtime_id: Option<String>,
}

impl TaskView {
    fn parse_all(response: &Value) -> Vec<TaskView> {
        response["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|task| {
                Some(TaskView {
                    arn: task["taskArn"].as_str()?.to_string(),
                    last_status: task["lastStatus"].as_str()?.to_string(),
                    desired_status: task["desiredStatus"].as_str()?.to_string(),
                    task_definition_arn: task["taskDefinitionArn"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    runtime_id: task["containers"][0]["runtimeId"]
                        .as_str()
                        .map(str::to_string),
                })
            })
            .collect()
    }
}

fn render_tasks(tasks: &[TaskView]) -> String {
    if tasks.is_empty() {
        return "none".to_string();
    }
    tasks
        .iter()
        .map(|task| {
            format!(
                "{} {}→{} ({})",
                task.arn.rsplit('/').next().unwrap_or_default(),
                task.last_status,
                task.desired_status,
                task.task_definition_arn
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every task ARN of the service with `desired_status`, all pages.
async fn list_task_arns(
    client: &mut Client,
    cluster: &str,
    service: &str,
    desired_status: &str,
) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let mut body = json!({
            "cluster": cluster,
            "serviceName": service,
            "desiredStatus": desired_status,
            "maxResults": PAGE_SIZE,
        });
        if let Some(token) = &next_token {
            body["nextToken"] = json!(token);
        }
        let page = client.call_ok("ListTasks", &body).await?;
        arns.extend(
            page["taskArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|arn| arn.as_str().map(str::to_string)),
        );
        match page["nextToken"].as_str() {
            Some(token) => next_token = Some(token.to_string()),
            None => return Ok(arns),
        }
    }
}

async fn describe_tasks(
    client: &mut Client,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<TaskView>> {
    let mut tasks = Vec::with_capacity(arns.len());
    for chunk in arns.chunks(PAGE_SIZE) {
        let response = client
            .call_ok(
                "DescribeTasks",
                &json!({ "cluster": cluster, "tasks": chunk }),
            )
            .await?;
        tasks.extend(TaskView::parse_all(&response));
    }
    Ok(tasks)
}

/// Every task of the service, meant to run or stopped. Tasks meant to run
/// are listed first, so one that is being stopped meanwhile shows in both
/// lists rather than in neither.
async fn service_tasks(client: &mut Client, cluster: &str, service: &str) -> Result<Vec<TaskView>> {
    let mut arns = list_task_arns(client, cluster, service, "RUNNING").await?;
    for arn in list_task_arns(client, cluster, service, "STOPPED").await? {
        if !arns.contains(&arn) {
            arns.push(arn);
        }
    }
    describe_tasks(client, cluster, &arns).await
}

/// One sample's counts during a rolling update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SampleCounts {
    /// Tasks not yet STOPPED, whatever they are meant to do: what
    /// maximumPercent bounds.
    not_stopped: u64,
    /// Tasks RUNNING and meant to keep running: what minimumHealthyPercent
    /// protects.
    running: u64,
}

impl SampleCounts {
    fn of(tasks: &[TaskView]) -> SampleCounts {
        SampleCounts {
            not_stopped: tasks
                .iter()
                .filter(|task| task.last_status != "STOPPED")
                .count() as u64,
            running: tasks
                .iter()
                .filter(|task| task.last_status == "RUNNING" && task.desired_status == "RUNNING")
                .count() as u64,
        }
    }
}

/// The extremes of the samples of a rolling update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RolloutBounds {
    max_tasks: u64,
    min_running: Option<u64>,
    samples: u64,
}

impl RolloutBounds {
    fn observe(&mut self, counts: &SampleCounts) {
        self.samples += 1;
        self.max_tasks = self.max_tasks.max(counts.not_stopped);
        self.min_running = Some(
            self.min_running
                .map_or(counts.running, |min| min.min(counts.running)),
        );
    }
}

/// One deployment, COMPLETED, of `new_revision`, with `count` tasks
/// RUNNING; every task meant to run is of `new_revision` and RUNNING, and no
/// task of another revision is left unstopped.
fn rollout_complete(
    service: &ServiceView,
    tasks: &[TaskView],
    new_revision: &str,
    count: u32,
) -> bool {
    let count = u64::from(count);
    let deployment_done = service.deployments.len() == 1
        && service.deployments[0].rollout_state.as_deref() == Some("COMPLETED")
        && service.deployments[0].task_definition_arn == new_revision
        && service.running_count == count;
    let meant_to_run: Vec<&TaskView> = tasks
        .iter()
        .filter(|task| task.desired_status == "RUNNING")
        .collect();
    deployment_done
        && meant_to_run.len() as u64 == count
        && meant_to_run
            .iter()
            .all(|task| task.task_definition_arn == new_revision && task.last_status == "RUNNING")
        && tasks
            .iter()
            .all(|task| task.task_definition_arn == new_revision || task.last_status == "STOPPED")
}

// ---------------------------------------------------------------------------
// Simulated agents: scale

/// How many scale tasks `instances` simulated instances hold.
fn scale_capacity_tasks(instances: usize) -> u64 {
    instances as u64
        * (SIMULATED_INSTANCE_CPU_UNITS / SCALE_TASK_CPU_UNITS)
            .min(SIMULATED_INSTANCE_MEMORY_MIB / SCALE_TASK_MEMORY_MIB)
}

fn scale_task_definition() -> Value {
    json!({
        "family": SCALE_FAMILY,
        "networkMode": "bridge",
        "requiresCompatibilities": ["EC2"],
        "containerDefinitions": [{
            "name": CONTAINER_NAME,
            "image": "busybox:1.36",
            "cpu": SCALE_TASK_CPU_UNITS,
            "memory": SCALE_TASK_MEMORY_MIB,
            "essential": true,
            "command": ["sleep", "3600"]
        }]
    })
}

/// `requiresAttributes` of a RegisterTaskDefinition answer, as JSON
/// attributes an instance must have.
fn required_attributes(response: &Value) -> Vec<Value> {
    response["taskDefinition"]["requiresAttributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|attribute| {
            let name = attribute["name"].as_str()?;
            Some(match attribute["value"].as_str() {
                Some(value) => json!({ "name": name, "value": value }),
                None => json!({ "name": name }),
            })
        })
        .collect()
}

/// RegisterContainerInstance for simulated instance `index`: its zone
/// (round robin over three), the OS type, everything the task definition
/// requires.
fn register_instance_body(region: &str, index: usize, required: &[Value]) -> Value {
    let zone = format!("{region}{}", ZONE_SUFFIXES[index % ZONE_SUFFIXES.len()]);
    let mut attributes = vec![
        json!({ "name": "ecs.availability-zone", "value": zone }),
        json!({ "name": "ecs.os-type", "value": "linux" }),
    ];
    for attribute in required {
        if !attributes
            .iter()
            .any(|existing| existing["name"] == attribute["name"])
        {
            attributes.push(attribute.clone());
        }
    }
    json!({
        "cluster": SCALE_CLUSTER,
        "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": SIMULATED_INSTANCE_CPU_UNITS},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": SIMULATED_INSTANCE_MEMORY_MIB},
        ],
        "attributes": attributes,
        "versionInfo": {"agentVersion": "simulated", "dockerVersion": "simulated"},
    })
}

/// The report a stand-in agent sends once it "started" or "stopped" a task.
fn task_state_change_body(task_arn: &str, status: &str) -> Value {
    let mut container = json!({ "containerName": CONTAINER_NAME, "status": status });
    if status == "STOPPED" {
        container["exitCode"] = json!(0);
    }
    json!({
        "cluster": SCALE_CLUSTER,
        "task": task_arn,
        "status": status,
        "containers": [container],
    })
}

/// What a stand-in agent must report for the tasks of a `desiredTasks`
/// session message: (task ARN, status) for each task that is meant to run
/// but not yet RUNNING, or meant to stop but not yet STOPPED.
fn reports_due(message: &Value) -> Vec<(String, &'static str)> {
    if message["type"] != "desiredTasks" {
        return Vec::new();
    }
    message["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|task| {
            let arn = task["taskArn"].as_str()?.to_string();
            let last = task["lastStatus"].as_str()?;
            match task["desiredStatus"].as_str()? {
                "RUNNING" if last != "RUNNING" && last != "STOPPED" => Some((arn, "RUNNING")),
                "STOPPED" if last != "STOPPED" => Some((arn, "STOPPED")),
                _ => None,
            }
        })
        .collect()
}

/// Counters the stand-in agents share.
#[derive(Default)]
struct FleetTally {
    sessions_open: AtomicUsize,
    session_errors: AtomicU64,
    acknowledged_running: AtomicU64,
    acknowledged_stopped: AtomicU64,
    ack_errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl FleetTally {
    fn error(&self, description: impl FnOnce() -> String) {
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none() {
            *first = Some(description());
        }
    }
}

/// One simulated instance's agent: holds its session open (reopening it
/// when it ends) and acknowledges what each desired-state message asks for,
/// until `stopped`.
async fn simulated_agent(
    client: agent::client::EcsClient,
    container_instance_arn: String,
    tally: Arc<FleetTally>,
    mut stopped: watch::Receiver<bool>,
) {
    // Reports already sent, so a repeated desired state is not answered
    // twice.
    let mut reported: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut counted_open = false;
    while !*stopped.borrow() {
        // The session request's wire shape; its type is inferred from
        // `open_session`.
        let request = serde_json::from_value(json!({
            "cluster": SCALE_CLUSTER,
            "containerInstanceArn": container_instance_arn,
        }))
        .expect("the session request is well-formed");
        let mut session = match client.open_session(&request).await {
            Ok(session) => session,
            Err(err) => {
                tally.session_errors.fetch_add(1, Ordering::Relaxed);
                tally.error(|| format!("opening a session: {err}"));
                tokio::time::sleep(SESSION_RETRY_PAUSE).await;
                continue;
            }
        };
        loop {
            let message = tokio::select! {
                message = session.next_message() => message,
                _ = stopped.wait_for(|stop| *stop) => return,
            };
            let message = match message {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(err) => {
                    tally.session_errors.fetch_add(1, Ordering::Relaxed);
                    tally.error(|| format!("reading the session: {err}"));
                    break;
                }
            };
            if !counted_open {
                counted_open = true;
                tally.sessions_open.fetch_add(1, Ordering::Relaxed);
            }
            let message = serde_json::to_value(&message).unwrap_or(Value::Null);
            for (task_arn, status) in reports_due(&message) {
                if reported.get(&task_arn) == Some(&status) {
                    continue;
                }
                let body = task_state_change_body(&task_arn, status);
                let sent = client
                    .call_json(
                        "SubmitTaskStateChange",
                        serde_json::to_vec(&body).expect("a JSON value serializes"),
                    )
                    .await;
                match sent {
                    Ok(_) => {
                        let counter = if status == "RUNNING" {
                            &tally.acknowledged_running
                        } else {
                            &tally.acknowledged_stopped
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        reported.insert(task_arn, status);
                    }
                    Err(err) => {
                        tally.ack_errors.fetch_add(1, Ordering::Relaxed);
                        tally.error(|| format!("SubmitTaskStateChange: {err}"));
                    }
                }
            }
        }
        tokio::time::sleep(SESSION_RETRY_PAUSE).await;
    }
}

/// Registers `count` simulated instances over a few connections; their ARNs.
async fn register_instances(
    target: &Arc<Target>,
    count: usize,
    region: &str,
    required: &[Value],
) -> Result<Vec<String>> {
    let next = Arc::new(AtomicUsize::new(0));
    let required = Arc::new(required.to_vec());
    let mut workers = JoinSet::new();
    for _ in 0..REGISTRATION_CLIENTS.min(count) {
        let mut client = Client::new(Arc::clone(target));
        let next = Arc::clone(&next);
        let required = Arc::clone(&required);
        let region = region.to_string();
        workers.spawn(async move {
            let mut registered = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return Ok::<_, anyhow::Error>(registered);
                }
                let body = register_instance_body(&region, index, &required);
                let response = client.call_ok("RegisterContainerInstance", &body).await?;
                let arn = response["containerInstance"]["containerInstanceArn"]
                    .as_str()
                    .context("RegisterContainerInstance answered without a containerInstanceArn")?
                    .to_string();
                registered.push(arn);
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(joined) = workers.join_next().await {
        all.extend(joined.context("a registration worker failed")??);
    }
    Ok(all)
}

async fn run_scale(args: &ServicesBenchArgs) -> Result<ScaleFigures> {
    let plane = ControlPlane::start(&args.region).await?;
    println!(
        "berth bench services (scale): {} simulated instances, a service of {} tasks, control plane {} with the service controller",
        args.instances, args.tasks, plane.server.endpoint_url
    );
    println!("{SIMULATED_NOTICE}");
    let (stop_fleet, fleet_stopped) = watch::channel(false);
    let tally = Arc::new(FleetTally::default());
    let mut fleet = JoinSet::new();
    let measured = measure_scale(&plane, args, &tally, &fleet_stopped, &mut fleet).await;
    let _ = stop_fleet.send(true);
    let drained = tokio::time::timeout(FLEET_STOP_TIMEOUT, async {
        while fleet.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        // A stand-in stuck in a request: end it rather than wait.
        fleet.shutdown().await;
    }
    plane.stop().await;
    let mut figures = measured?;
    figures.ack_errors = tally.ack_errors.load(Ordering::Relaxed);
    figures.session_errors = tally.session_errors.load(Ordering::Relaxed);
    figures.first_error = tally
        .first_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(figures)
}

async fn measure_scale(
    plane: &ControlPlane,
    args: &ServicesBenchArgs,
    tally: &Arc<FleetTally>,
    fleet_stopped: &watch::Receiver<bool>,
    fleet: &mut JoinSet<()>,
) -> Result<ScaleFigures> {
    let mut client = plane.client();
    let (registered, task_definition_arn) =
        create_cluster_and_register(&mut client, SCALE_CLUSTER, &scale_task_definition()).await?;
    let required = required_attributes(&registered);
    let started = clock::monotonic_now();
    let instances =
        register_instances(&plane.target, args.instances, &args.region, &required).await?;
    println!(
        "registered {} container instances in {:.2} s",
        instances.len(),
        started.elapsed().as_secs_f64()
    );

    let endpoint = agent::client::Endpoint::parse(&plane.server.endpoint_url)?;
    let credentials = agent::Credentials {
        access_key_id: plane.target.access_key_id.clone(),
        secret_access_key: plane.target.secret_access_key.clone(),
        session_token: None,
    };
    for arn in instances {
        let client = agent::client::EcsClient::new(
            endpoint.clone(),
            credentials.clone(),
            args.region.clone(),
        );
        fleet.spawn(simulated_agent(
            client,
            arn,
            Arc::clone(tally),
            fleet_stopped.clone(),
        ));
    }
    let opening = clock::monotonic_now();
    while tally.sessions_open.load(Ordering::Relaxed) < args.instances {
        if opening.elapsed() > SESSIONS_OPEN_TIMEOUT {
            bail!(
                "only {} of {} agent sessions opened within {} s; first error: {}",
                tally.sessions_open.load(Ordering::Relaxed),
                args.instances,
                SESSIONS_OPEN_TIMEOUT.as_secs(),
                tally
                    .first_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_deref()
                    .unwrap_or("none")
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    println!(
        "{} agent sessions open in {:.2} s",
        args.instances,
        opening.elapsed().as_secs_f64()
    );

    let writes_before = plane.server.store.write_stats();
    let started = clock::monotonic_now();
    client
        .call_ok(
            "CreateService",
            &create_service_body(
                SCALE_CLUSTER,
                SCALE_SERVICE,
                &task_definition_arn,
                args.tasks,
            ),
        )
        .await?;
    let target = u64::from(args.tasks);
    let mut all_running: Option<Duration> = None;
    let mut next_progress = started + PROGRESS_INTERVAL;
    loop {
        let service = describe_service(&mut client, SCALE_CLUSTER, SCALE_SERVICE).await?;
        let now = clock::monotonic_now();
        if all_running.is_none() && service.running_count >= target {
            all_running = Some(now.duration_since(started));
        }
        if let (Some(to_running), true) = (all_running, service.is_steady(args.tasks)) {
            let writes = plane.server.store.write_stats();
            return Ok(ScaleFigures {
                instances: args.instances,
                tasks: args.tasks,
                to_running_s: to_running.as_secs_f64(),
                to_steady_s: now.duration_since(started).as_secs_f64(),
                acknowledged: tally.acknowledged_running.load(Ordering::Relaxed),
                store_write_txns: writes.requests - writes_before.requests,
                store_commits: writes.commits - writes_before.commits,
                ack_errors: 0,
                session_errors: 0,
                first_error: None,
            });
        }
        if now >= next_progress {
            println!(
                "  {:>5.1} s: runningCount {}, pendingCount {}, {} acknowledged RUNNING",
                now.duration_since(started).as_secs_f64(),
                service.running_count,
                service.pending_count,
                tally.acknowledged_running.load(Ordering::Relaxed)
            );
            next_progress = now + PROGRESS_INTERVAL;
        }
        if now.duration_since(started) > SCALE_TIMEOUT {
            bail!(
                "service {SCALE_SERVICE} did not reach {} running tasks and a steady state within {} s: {}",
                args.tasks,
                SCALE_TIMEOUT.as_secs(),
                service.render()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

// ---------------------------------------------------------------------------
// Figures

#[derive(Clone, Copy, Debug, PartialEq)]
struct SecondsFigures {
    median_s: f64,
    p90_s: f64,
    max_s: f64,
}

impl SecondsFigures {
    fn new(latencies_us: &[u64]) -> SecondsFigures {
        let mut sorted = latencies_us.to_vec();
        sorted.sort_unstable();
        let to_s = |us: u64| us as f64 / 1e6;
        let median_us = match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2] as f64,
            n => (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0,
        };
        SecondsFigures {
            median_s: median_us / 1e6,
            p90_s: to_s(percentile(&sorted, 0.90)),
            max_s: to_s(sorted.last().copied().unwrap_or(0)),
        }
    }
}

#[derive(Debug, PartialEq)]
struct ReplaceFigures {
    kills: usize,
    to_running: SecondsFigures,
    /// Over the kills whose STOPPED state was seen before the replacement
    /// ran.
    to_stopped: Option<SecondsFigures>,
}

impl ReplaceFigures {
    fn new(replacements: &[Replacement]) -> ReplaceFigures {
        let to_running: Vec<u64> = replacements.iter().map(|r| r.to_running_us).collect();
        let to_stopped: Vec<u64> = replacements
            .iter()
            .filter_map(|r| r.to_stopped_us)
            .collect();
        ReplaceFigures {
            kills: replacements.len(),
            to_running: SecondsFigures::new(&to_running),
            to_stopped: (!to_stopped.is_empty()).then(|| SecondsFigures::new(&to_stopped)),
        }
    }

    fn print(&self) {
        println!(
            "replace (real Docker, {} kills): docker kill → replacement RUNNING: median {:.3} s, p90 {:.3} s, max {:.3} s (aim: ≤ 2 s)",
            self.kills, self.to_running.median_s, self.to_running.p90_s, self.to_running.max_s
        );
        if let Some(stopped) = &self.to_stopped {
            println!(
                "  docker kill → killed task STOPPED: median {:.3} s, p90 {:.3} s, max {:.3} s",
                stopped.median_s, stopped.p90_s, stopped.max_s
            );
        }
    }

    fn add_to(&self, line: &mut serde_json::Map<String, Value>) {
        line.insert("replace_kills".into(), json!(self.kills));
        line.insert(
            "replace_median_s".into(),
            json!(round3(self.to_running.median_s)),
        );
        line.insert("replace_p90_s".into(), json!(round3(self.to_running.p90_s)));
        line.insert("replace_max_s".into(), json!(round3(self.to_running.max_s)));
        line.insert(
            "replace_stopped_median_s".into(),
            json!(self.to_stopped.map(|s| round3(s.median_s))),
        );
    }
}

#[derive(Debug, PartialEq)]
struct RollingFigures {
    tasks: u32,
    seconds: f64,
    /// The most tasks not STOPPED in any sample.
    max_tasks: u64,
    /// The fewest tasks RUNNING and meant to keep running in any sample.
    min_running: u64,
    samples: u64,
}

impl RollingFigures {
    /// maximumPercent 200 and minimumHealthyPercent 100 were kept.
    fn within_bounds(&self) -> bool {
        self.max_tasks <= 2 * u64::from(self.tasks) && self.min_running >= u64::from(self.tasks)
    }

    fn print(&self) {
        println!(
            "rolling (real Docker, {} tasks): UpdateService → one COMPLETED deployment, all tasks on the new revision: {:.2} s",
            self.tasks, self.seconds
        );
        println!(
            "  over {} samples: at most {} tasks not STOPPED (limit {}), at least {} RUNNING (limit {}): {}",
            self.samples,
            self.max_tasks,
            2 * self.tasks,
            self.min_running,
            self.tasks,
            if self.within_bounds() {
                "within the deployment configuration"
            } else {
                "OUTSIDE the deployment configuration"
            }
        );
    }

    fn add_to(&self, line: &mut serde_json::Map<String, Value>) {
        line.insert("rolling_tasks".into(), json!(self.tasks));
        line.insert("rolling_s".into(), json!(round3(self.seconds)));
        line.insert("rolling_max_tasks".into(), json!(self.max_tasks));
        line.insert("rolling_min_running".into(), json!(self.min_running));
        line.insert("rolling_within_bounds".into(), json!(self.within_bounds()));
    }
}

#[derive(Debug, PartialEq)]
struct ScaleFigures {
    instances: usize,
    tasks: u32,
    /// CreateService → runningCount reached the desired count.
    to_running_s: f64,
    /// CreateService → the steady-state event.
    to_steady_s: f64,
    acknowledged: u64,
    store_write_txns: u64,
    store_commits: u64,
    ack_errors: u64,
    session_errors: u64,
    first_error: Option<String>,
}

impl ScaleFigures {
    fn tasks_per_s(&self) -> f64 {
        if self.to_running_s > 0.0 {
            f64::from(self.tasks) / self.to_running_s
        } else {
            0.0
        }
    }

    fn print(&self) {
        println!(
            "scale (simulated agents, {} instances): CreateService → runningCount {}: {:.2} s, {:.0} tasks/s; steady state after {:.2} s",
            self.instances,
            self.tasks,
            self.to_running_s,
            self.tasks_per_s(),
            self.to_steady_s
        );
        println!(
            "  {} tasks acknowledged RUNNING, {} acknowledgment errors, {} session errors; store: {} write transactions in {} commits",
            self.acknowledged, self.ack_errors, self.session_errors, self.store_write_txns, self.store_commits
        );
        if let Some(error) = &self.first_error {
            println!("  first error: {error}");
        }
        println!("  {SIMULATED_NOTICE}");
    }

    fn add_to(&self, line: &mut serde_json::Map<String, Value>) {
        line.insert("scale_simulated_agents".into(), json!(true));
        line.insert("scale_instances".into(), json!(self.instances));
        line.insert("scale_tasks".into(), json!(self.tasks));
        line.insert(
            "scale_to_running_s".into(),
            json!(round3(self.to_running_s)),
        );
        line.insert(
            "scale_tasks_per_s".into(),
            json!(self.tasks_per_s().round()),
        );
        line.insert("scale_to_steady_s".into(), json!(round3(self.to_steady_s)));
        line.insert(
            "scale_errors".into(),
            json!(self.ack_errors + self.session_errors),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(arn: &str, last: &str, desired: &str, revision: &str) -> TaskView {
        TaskView {
            arn: arn.to_string(),
            last_status: last.to_string(),
            desired_status: desired.to_string(),
            task_definition_arn: revision.to_string(),
            runtime_id: None,
        }
    }

    fn service(deployments: &[(&str, &str)], running: u64, event: &str) -> ServiceView {
        ServiceView {
            status: "ACTIVE".to_string(),
            desired_count: running,
            running_count: running,
            pending_count: 0,
            deployments: deployments
                .iter()
                .map(|(rollout_state, revision)| DeploymentView {
                    status: "PRIMARY".to_string(),
                    rollout_state: Some(rollout_state.to_string()),
                    task_definition_arn: revision.to_string(),
                    running_count: running,
                })
                .collect(),
            latest_event: Some(event.to_string()),
        }
    }

    #[test]
    fn services_are_read_from_describe_services() {
        let response = json!({"services": [{
            "status": "ACTIVE", "desiredCount": 2, "runningCount": 1, "pendingCount": 1,
            "deployments": [{"status": "PRIMARY", "rolloutState": "IN_PROGRESS",
                             "taskDefinition": "arn:td/web:2", "runningCount": 1}],
            "events": [{"message": "(service web) has started 1 tasks: (task a)."},
                       {"message": "(service web) has reached a steady state."}]
        }], "failures": []});
        let view = ServiceView::parse(&response).unwrap();
        assert_eq!(view.desired_count, 2);
        assert_eq!(view.running_count, 1);
        assert_eq!(view.pending_count, 1);
        assert_eq!(view.deployments[0].task_definition_arn, "arn:td/web:2");
        assert_eq!(
            view.deployments[0].rollout_state.as_deref(),
            Some("IN_PROGRESS")
        );
        assert_eq!(
            view.latest_event.as_deref(),
            Some("(service web) has started 1 tasks: (task a).")
        );
        assert!(!view.is_steady(2));
        assert_eq!(ServiceView::parse(&json!({"services": []})), None);
    }

    #[test]
    fn steady_means_counts_one_completed_deployment_and_the_newest_event() {
        let steady = "(service web) has reached a steady state.";
        assert!(service(&[("COMPLETED", "td:1")], 3, steady).is_steady(3));
        assert!(!service(&[("COMPLETED", "td:1")], 2, steady).is_steady(3));
        assert!(!service(&[("IN_PROGRESS", "td:1")], 3, steady).is_steady(3));
        assert!(!service(&[("COMPLETED", "td:2"), ("COMPLETED", "td:1")], 3, steady).is_steady(3));
        assert!(!service(
            &[("COMPLETED", "td:1")],
            3,
            "(service web) has started 1 tasks"
        )
        .is_steady(3));
        let mut pending = service(&[("COMPLETED", "td:1")], 3, steady);
        pending.pending_count = 1;
        assert!(!pending.is_steady(3));
    }

    #[test]
    fn tasks_are_read_from_describe_tasks() {
        let response = json!({"tasks": [
            {"taskArn": "arn:t1", "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
             "taskDefinitionArn": "arn:td:1", "containers": [{"runtimeId": "abc"}]},
            {"taskArn": "arn:t2", "lastStatus": "PENDING", "desiredStatus": "RUNNING",
             "taskDefinitionArn": "arn:td:1", "containers": [{}]},
            {"lastStatus": "RUNNING"}
        ], "failures": []});
        let tasks = TaskView::parse_all(&response);
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].runtime_id.as_deref(), Some("abc"));
        assert_eq!(tasks[1].runtime_id, None);
        assert_eq!(tasks[1].last_status, "PENDING");
    }

    #[test]
    fn samples_count_unstopped_tasks_and_tasks_running_on() {
        let tasks = [
            task("a", "RUNNING", "RUNNING", "td:1"),
            task("b", "RUNNING", "STOPPED", "td:1"),
            task("c", "PENDING", "RUNNING", "td:2"),
            task("d", "STOPPED", "STOPPED", "td:1"),
        ];
        let counts = SampleCounts::of(&tasks);
        assert_eq!(
            counts,
            SampleCounts {
                not_stopped: 3,
                running: 1
            }
        );
        let mut bounds = RolloutBounds::default();
        bounds.observe(&counts);
        bounds.observe(&SampleCounts {
            not_stopped: 2,
            running: 2,
        });
        assert_eq!(
            bounds,
            RolloutBounds {
                max_tasks: 3,
                min_running: Some(1),
                samples: 2
            }
        );
    }

    #[test]
    fn a_rollout_is_complete_when_only_the_new_revision_is_left() {
        let done = service(&[("COMPLETED", "td:2")], 2, "x");
        let new_tasks = vec![
            task("a", "RUNNING", "RUNNING", "td:2"),
            task("b", "RUNNING", "RUNNING", "td:2"),
            task("c", "STOPPED", "STOPPED", "td:1"),
        ];
        assert!(rollout_complete(&done, &new_tasks, "td:2", 2));

        let mut old_still_stopping = new_tasks.clone();
        old_still_stopping[2].last_status = "RUNNING".to_string();
        assert!(!rollout_complete(&done, &old_still_stopping, "td:2", 2));

        let mut new_pending = new_tasks.clone();
        new_pending[1].last_status = "PENDING".to_string();
        assert!(!rollout_complete(&done, &new_pending, "td:2", 2));

        let two_deployments = service(&[("IN_PROGRESS", "td:2"), ("COMPLETED", "td:1")], 2, "x");
        assert!(!rollout_complete(&two_deployments, &new_tasks, "td:2", 2));
        let old_deployment = service(&[("COMPLETED", "td:1")], 2, "x");
        assert!(!rollout_complete(&old_deployment, &new_tasks, "td:2", 2));
    }

    #[test]
    fn stand_in_agents_report_what_the_desired_state_asks_for() {
        let message = json!({"type": "desiredTasks", "revision": 7, "tasks": [
            {"taskArn": "arn:t1", "desiredStatus": "RUNNING", "lastStatus": "PROVISIONING"},
            {"taskArn": "arn:t2", "desiredStatus": "RUNNING", "lastStatus": "RUNNING"},
            {"taskArn": "arn:t3", "desiredStatus": "STOPPED", "lastStatus": "RUNNING"},
            {"taskArn": "arn:t4", "desiredStatus": "STOPPED", "lastStatus": "STOPPED"},
            {"taskArn": "arn:t5", "desiredStatus": "RUNNING", "lastStatus": "PENDING"}
        ]});
        assert_eq!(
            reports_due(&message),
            vec![
                ("arn:t1".to_string(), "RUNNING"),
                ("arn:t3".to_string(), "STOPPED"),
                ("arn:t5".to_string(), "RUNNING"),
            ]
        );
        assert!(reports_due(&json!({"type": "heartbeat", "atMs": 1})).is_empty());
    }

    #[test]
    fn reports_name_the_task_and_its_container() {
        let running = task_state_change_body("arn:t1", "RUNNING");
        assert_eq!(running["cluster"], SCALE_CLUSTER);
        assert_eq!(running["task"], "arn:t1");
        assert_eq!(running["status"], "RUNNING");
        assert_eq!(running["containers"][0]["containerName"], CONTAINER_NAME);
        assert!(running["containers"][0].get("exitCode").is_none());
        let stopped = task_state_change_body("arn:t1", "STOPPED");
        assert_eq!(stopped["containers"][0]["exitCode"], 0);
    }

    #[test]
    fn simulated_instances_hold_the_scale_service() {
        assert_eq!(scale_capacity_tasks(100), 6400);
        let required = vec![
            json!({"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}),
            json!({"name": "ecs.os-type", "value": "linux"}),
        ];
        let body = register_instance_body("us-east-1", 4, &required);
        let attributes = body["attributes"].as_array().unwrap();
        assert_eq!(
            attributes[0],
            json!({"name": "ecs.availability-zone", "value": "us-east-1b"})
        );
        assert_eq!(attributes.len(), 3, "{attributes:?}");
        assert_eq!(body["totalResources"][0]["integerValue"], 4096);
    }

    #[test]
    fn seconds_figures_take_the_median_of_an_even_count() {
        let figures = SecondsFigures::new(&[4_000_000, 1_000_000, 2_000_000, 3_000_000]);
        assert_eq!(figures.median_s, 2.5);
        assert_eq!(figures.p90_s, 4.0);
        assert_eq!(figures.max_s, 4.0);
        let replace = ReplaceFigures::new(&[
            Replacement {
                to_running_us: 500_000,
                to_stopped_us: Some(200_000),
            },
            Replacement {
                to_running_us: 700_000,
                to_stopped_us: None,
            },
        ]);
        assert_eq!(replace.kills, 2);
        assert_eq!(replace.to_running.median_s, 0.6);
        assert_eq!(replace.to_stopped.unwrap().max_s, 0.2);
        let mut line = serde_json::Map::new();
        replace.add_to(&mut line);
        assert_eq!(line["replace_median_s"], 0.6);
    }

    #[test]
    fn rolling_bounds_follow_the_deployment_configuration() {
        let figures = |max_tasks, min_running| RollingFigures {
            tasks: 10,
            seconds: 1.0,
            max_tasks,
            min_running,
            samples: 5,
        };
        assert!(figures(20, 10).within_bounds());
        assert!(!figures(21, 10).within_bounds());
        assert!(!figures(20, 9).within_bounds());
    }

    #[test]
    fn scale_figures_count_tasks_per_second_to_running() {
        let figures = ScaleFigures {
            instances: 100,
            tasks: 1000,
            to_running_s: 4.0,
            to_steady_s: 5.0,
            acknowledged: 1000,
            store_write_txns: 0,
            store_commits: 0,
            ack_errors: 0,
            session_errors: 0,
            first_error: None,
        };
        assert_eq!(figures.tasks_per_s(), 250.0);
        let mut line = serde_json::Map::new();
        figures.add_to(&mut line);
        assert_eq!(line["scale_tasks_per_s"], 250.0);
        assert_eq!(line["scale_simulated_agents"], true);
    }

    #[test]
    fn scenarios_include_themselves_and_all_includes_every_one() {
        assert!(Scenario::All.includes(Scenario::Scale));
        assert!(Scenario::Replace.includes(Scenario::Replace));
        assert!(!Scenario::Replace.includes(Scenario::Rolling));
    }
}
