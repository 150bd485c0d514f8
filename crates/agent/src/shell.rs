//! The agent process: registration, the session with the control plane,
//! Docker events, the executor and the reporter around the pure
//! [`reconcile`](crate::reconcile::reconcile).
//!
//! One loop owns all state (desired tasks, observed containers, local
//! memory) and reconciles after every input. Everything slow runs in its own
//! tokio task and reports back through a channel: the session reader, the
//! Docker event reader, container listings, one executor per task with
//! actions in flight (a task's actions run in order; tasks run in parallel),
//! and the reporter (which retries each report until the control plane
//! acknowledges it, in order). The metrics reporter samples containers in
//! its own task from the targets the loop publishes (a `watch` channel).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use model::agent::{AgentMessage, DesiredTask, SessionRequest, LABEL_CONTAINER_INSTANCE_ARN};
use runtime::{ContainerEventAction, ContainerRuntime, ContainerState, RegistryAuth, RuntimeError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::blueprint::{AgentFacts, DEFAULT_STOP_TIMEOUT_S};
use crate::client::{EcsClient, Endpoint};
use crate::clock::Clock;
use crate::credentials::{resolve_credentials, resolve_region, ProcessEnvironment};
use crate::executor::{execute_with_logs, Done, Observation};
use crate::log_shipper::{ship, ContainerLogs, LogsApi, ShipperTiming};
use crate::metrics_reporter::{MetricsApi, MetricsReporter, TaskTarget};
use crate::reconcile::{reconcile, ImagePullBehavior, LocalState, LocalUpdate, ReconcileConfig};
use crate::registration::{self, RegistrationInput};
use crate::registry_login::{EcrLogin, RegistryLogin};
use crate::report::ReportCall;
use crate::{state_file, AgentError, Credentials};

/// Intervals and timeouts.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Reconnect when the session is silent this long (3 heartbeats).
    pub session_silence_ms: u64,
    pub reconnect_backoff_initial_ms: u64,
    pub reconnect_backoff_max_ms: u64,
    /// List containers again this often, in case an event was missed.
    pub resync_interval_ms: u64,
    /// Keep a stopped task's containers this long before removing them.
    pub task_cleanup_wait_ms: i64,
    /// `stopTimeout` for containers whose definition has none.
    pub default_stop_timeout_s: u32,
    /// Wait this long after a runtime failure before a task's next action.
    pub runtime_retry_ms: i64,
    /// The awslogs shippers' intervals.
    pub log_shipper: ShipperTiming,
    /// Sample containers and report task metrics this often; 0: never.
    pub metrics_report_interval_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            session_silence_ms: 15_000,
            reconnect_backoff_initial_ms: 100,
            reconnect_backoff_max_ms: 5_000,
            resync_interval_ms: 10_000,
            task_cleanup_wait_ms: 3 * 60 * 60 * 1000,
            default_stop_timeout_s: DEFAULT_STOP_TIMEOUT_S,
            runtime_retry_ms: 1_000,
            log_shipper: ShipperTiming::default(),
            metrics_report_interval_ms: model::agent_metrics::REPORT_INTERVAL_MS.unsigned_abs(),
        }
    }
}

/// Everything the agent is started with.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Cluster name or ARN to join.
    pub cluster: String,
    /// The control plane, e.g. `http://127.0.0.1:4566`.
    pub endpoint: String,
    /// Where `agent-state.json` lives.
    pub data_dir: PathBuf,
    pub availability_zone: String,
    pub instance_type: Option<String>,
    /// Where this machine's host ports are reached (the `berth.host-address`
    /// attribute); `None`: the local address that routes to the control plane.
    pub host_address: Option<std::net::IpAddr>,
    /// Custom attributes: name, optional value.
    pub attributes: Vec<(String, Option<String>)>,
    /// `None`: the AWS environment / profile chain.
    pub credentials: Option<Credentials>,
    /// `None`: `AWS_REGION`, `AWS_DEFAULT_REGION`, the config file.
    pub region: Option<String>,
    /// Memory not offered to tasks.
    pub reserved_memory_mib: u64,
    /// Host ports not offered to tasks besides ECS's reserved ones (the
    /// control plane's port is added when it runs on this machine).
    pub reserved_tcp_ports: Vec<u16>,
    pub image_pull_behavior: ImagePullBehavior,
    /// `repositoryCredentials.credentialsParameter` → credentials.
    pub registry_credentials: BTreeMap<String, RegistryAuth>,
    /// For [`run_with`]: the Docker daemon (`DOCKER_HOST` syntax); `None`
    /// uses `DOCKER_HOST` or the default socket.
    pub docker_host: Option<String>,
    pub timing: Timing,
    pub clock: Clock,
}

impl AgentConfig {
    /// A configuration with the defaults `berth agent` uses.
    pub fn new(
        cluster: impl Into<String>,
        endpoint: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> AgentConfig {
        AgentConfig {
            cluster: cluster.into(),
            endpoint: endpoint.into(),
            data_dir: data_dir.into(),
            availability_zone: "local-1a".to_string(),
            instance_type: None,
            host_address: None,
            attributes: Vec::new(),
            credentials: None,
            region: None,
            reserved_memory_mib: 256,
            reserved_tcp_ports: Vec::new(),
            image_pull_behavior: ImagePullBehavior::default(),
            registry_credentials: BTreeMap::new(),
            docker_host: None,
            timing: Timing::default(),
            clock: Clock::system(),
        }
    }
}

/// Runs the agent on the Docker Engine until `shutdown` completes. Tasks
/// keep running when the agent stops; a restarted agent adopts them.
pub async fn run_with(
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let docker = match &config.docker_host {
        Some(host) => runtime_docker::DockerRuntime::connect_to(Some(host)).await?,
        None => runtime_docker::DockerRuntime::connect().await?,
    };
    info!(docker = %docker.endpoint(), api_version = docker.api_version(), "connected to Docker");
    run_with_runtime(config, Arc::new(docker), shutdown).await
}

/// Runs the agent on `runtime` until `shutdown` completes.
pub async fn run_with_runtime(
    config: AgentConfig,
    runtime: Arc<dyn ContainerRuntime>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    tokio::pin!(shutdown);
    let credentials = match config.credentials.clone() {
        Some(credentials) => credentials,
        None => resolve_credentials(&ProcessEnvironment)?,
    };
    let region = match config.region.clone() {
        Some(region) => region,
        None => resolve_region(&ProcessEnvironment)?,
    };
    let endpoint = Endpoint::parse(&config.endpoint)?;
    let client = EcsClient::new(endpoint, credentials, region);

    let saved = state_file::load(&config.data_dir)?;
    if let Some(saved) = &saved {
        if saved.cluster != config.cluster {
            return Err(AgentError::Config {
                message: format!(
                    "this data directory belongs to a container instance of cluster '{}', not '{}': \
                     use another --data-dir, or delete {} to join '{}' as a new instance",
                    saved.cluster,
                    config.cluster,
                    state_file::path(&config.data_dir).display(),
                    config.cluster
                ),
            });
        }
    }
    let info = tokio::select! {
        info = runtime.info() => info?,
        () = &mut shutdown => return Ok(()),
    };
    let mut reserved_tcp_ports = config.reserved_tcp_ports.clone();
    if client.endpoint().is_loopback() {
        reserved_tcp_ports.push(client.endpoint().port);
    }
    let registration = registration::registration_request(&RegistrationInput {
        cluster: &config.cluster,
        container_instance_arn: saved.as_ref().map(|s| s.container_instance_arn.as_str()),
        runtime: &info,
        availability_zone: &config.availability_zone,
        instance_type: config.instance_type.as_deref(),
        host_address: config
            .host_address
            .or_else(|| local_address_towards(client.endpoint())),
        user_attributes: &config.attributes,
        reserved_memory_mib: config.reserved_memory_mib,
        reserved_tcp_ports: &reserved_tcp_ports,
        registry_credentials_available: !config.registry_credentials.is_empty(),
        agent_version: env!("CARGO_PKG_VERSION"),
        agent_hash: option_env!("BERTH_GIT_HASH").unwrap_or("unknown"),
    });
    let container_instance_arn = tokio::select! {
        arn = register(&client, &config, &registration) => arn?,
        () = &mut shutdown => return Ok(()),
    };
    state_file::save(
        &config.data_dir,
        &state_file::AgentState {
            cluster: config.cluster.clone(),
            container_instance_arn: container_instance_arn.clone(),
        },
    )?;
    info!(cluster = %config.cluster, container_instance = %container_instance_arn, "registered");

    let reconcile_config = ReconcileConfig {
        facts: AgentFacts {
            container_instance_arn: container_instance_arn.clone(),
            cpu_architecture: registration::runtime_platform_architecture(&info.arch).to_string(),
            default_stop_timeout_s: config.timing.default_stop_timeout_s,
            registry_credentials: config.registry_credentials.clone(),
        },
        task_cleanup_wait_ms: config.timing.task_cleanup_wait_ms,
        image_pull_behavior: config.image_pull_behavior,
    };
    let mut registration = registration;
    registration.container_instance_arn = Some(container_instance_arn.clone());
    let agent = Agent::new(runtime, client, reconcile_config, &config, registration);
    agent.run(shutdown).await
}

/// Exponential backoff, doubling from `initial_ms` up to `max_ms`.
struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    next_ms: u64,
}

impl Backoff {
    fn new(timing: &Timing) -> Backoff {
        Backoff {
            initial_ms: timing.reconnect_backoff_initial_ms.max(1),
            max_ms: timing.reconnect_backoff_max_ms.max(1),
            next_ms: timing.reconnect_backoff_initial_ms.max(1),
        }
    }

    fn reset(&mut self) {
        self.next_ms = self.initial_ms;
    }

    async fn wait(&mut self) {
        let delay_ms = self.next_ms.min(self.max_ms);
        self.next_ms = (delay_ms * 2).min(self.max_ms);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
}

/// Registers (or re-registers) the container instance; returns its ARN.
/// Creates the `default` cluster when it is missing, as the ECS agent does.
async fn register(
    client: &EcsClient,
    config: &AgentConfig,
    request: &ecs_wire::RegisterContainerInstanceRequest,
) -> Result<String, AgentError> {
    let mut backoff = Backoff::new(&config.timing);
    let mut created_cluster = false;
    loop {
        let answer: Result<ecs_wire::RegisterContainerInstanceResponse, AgentError> =
            client.call("RegisterContainerInstance", request).await;
        match answer {
            Ok(response) => {
                return response
                    .container_instance
                    .and_then(|i| i.container_instance_arn)
                    .ok_or_else(|| AgentError::Protocol {
                        operation: "RegisterContainerInstance".to_string(),
                        message: "the answer has no containerInstanceArn".to_string(),
                    })
            }
            Err(AgentError::Api { code, .. })
                if code == "ClusterNotFoundException"
                    && config.cluster == "default"
                    && !created_cluster =>
            {
                info!("cluster 'default' does not exist; creating it");
                let create = ecs_wire::CreateClusterRequest {
                    cluster_name: Some("default".to_string()),
                    ..Default::default()
                };
                let _: ecs_wire::CreateClusterResponse =
                    client.call("CreateCluster", &create).await?;
                created_cluster = true;
            }
            Err(error) if error.is_retryable() => {
                warn!(%error, "cannot register yet; retrying");
                backoff.wait().await;
            }
            Err(error) => return Err(error),
        }
    }
}

enum Input {
    Desired(Vec<DesiredTask>),
    Observed(Observation),
    /// The event stream was (re)subscribed: list containers again.
    Relist,
    Relisted {
        started_seq: u64,
        result: Result<Vec<ContainerState>, RuntimeError>,
    },
    /// An awslogs container's shipper finished.
    LogsShipped {
        task_arn: String,
        container_id: String,
        started_at_ms: Option<i64>,
    },
    Fatal(AgentError),
}

/// The containers as last seen. Every observation gets a sequence number;
/// a listing that started before an observation does not undo it.
#[derive(Default)]
struct ObservedContainers {
    seq: u64,
    entries: BTreeMap<String, (ContainerState, u64)>,
    /// Containers seen gone since the listing in flight started.
    gone: BTreeMap<String, u64>,
}

impl ObservedContainers {
    fn observe(&mut self, observation: Observation) {
        self.seq += 1;
        match observation.state {
            Some(state) => {
                self.gone.remove(&observation.id);
                self.entries.insert(observation.id, (state, self.seq));
            }
            None => {
                self.entries.remove(&observation.id);
                self.gone.insert(observation.id, self.seq);
            }
        }
    }

    fn apply_listing(&mut self, started_seq: u64, listed: Vec<ContainerState>) {
        let listed_ids: BTreeSet<String> = listed.iter().map(|c| c.id.clone()).collect();
        for state in listed {
            let newer = self
                .entries
                .get(&state.id)
                .is_some_and(|(_, seq)| *seq > started_seq)
                || self
                    .gone
                    .get(&state.id)
                    .is_some_and(|seq| *seq > started_seq);
            if !newer {
                self.entries.insert(state.id.clone(), (state, started_seq));
            }
        }
        self.entries
            .retain(|id, (_, seq)| listed_ids.contains(id) || *seq > started_seq);
        self.gone.clear();
    }

    fn states(&self) -> Vec<ContainerState> {
        self.entries
            .values()
            .map(|(state, _)| state.clone())
            .collect()
    }
}

/// The running log shippers, by Docker id; aborted when the agent stops
/// (a restarted agent resumes them from the control plane's cursors).
#[derive(Default)]
struct Shippers(BTreeMap<String, tokio::task::JoinHandle<()>>);

impl Drop for Shippers {
    fn drop(&mut self) {
        for handle in self.0.values() {
            handle.abort();
        }
    }
}

/// Aborts the spawned background tasks when the agent stops.
struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

struct Agent {
    runtime: Arc<dyn ContainerRuntime>,
    client: EcsClient,
    config: ReconcileConfig,
    timing: Timing,
    clock: Clock,
    cluster: String,
    registration: ecs_wire::RegisterContainerInstanceRequest,
    desired: Option<Vec<DesiredTask>>,
    observed: ObservedContainers,
    listed_once: bool,
    listing_in_flight: bool,
    listing_wanted: bool,
    local: LocalState,
    busy: BTreeSet<String>,
    executions: JoinSet<Done>,
    execution_tasks: BTreeMap<tokio::task::Id, String>,
    wakeup_ms: Option<i64>,
    inputs_tx: mpsc::UnboundedSender<Input>,
    inputs_rx: mpsc::UnboundedReceiver<Input>,
    reports_tx: mpsc::UnboundedSender<ReportCall>,
    reports_rx: Option<mpsc::UnboundedReceiver<ReportCall>>,
    logs: Arc<dyn LogsApi>,
    registry: Arc<dyn RegistryLogin>,
    shippers: Shippers,
    metrics: Arc<dyn MetricsApi>,
    metric_targets: watch::Sender<Vec<TaskTarget>>,
}

impl Agent {
    fn new(
        runtime: Arc<dyn ContainerRuntime>,
        client: EcsClient,
        config: ReconcileConfig,
        agent_config: &AgentConfig,
        registration: ecs_wire::RegisterContainerInstanceRequest,
    ) -> Agent {
        let (inputs_tx, inputs_rx) = mpsc::unbounded_channel();
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        Agent {
            runtime,
            logs: Arc::new(client.clone()),
            registry: Arc::new(EcrLogin::new(client.clone(), agent_config.clock.clone())),
            shippers: Shippers::default(),
            metrics: Arc::new(client.clone()),
            metric_targets: watch::Sender::new(Vec::new()),
            client,
            config,
            timing: agent_config.timing.clone(),
            clock: agent_config.clock.clone(),
            cluster: agent_config.cluster.clone(),
            registration,
            desired: None,
            observed: ObservedContainers::default(),
            listed_once: false,
            listing_in_flight: false,
            listing_wanted: false,
            local: LocalState::default(),
            busy: BTreeSet::new(),
            executions: JoinSet::new(),
            execution_tasks: BTreeMap::new(),
            wakeup_ms: None,
            inputs_tx,
            inputs_rx,
            reports_tx,
            reports_rx: Some(reports_rx),
        }
    }

    fn instance_arn(&self) -> &str {
        &self.config.facts.container_instance_arn
    }

    async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        tokio::pin!(shutdown);
        let reports_rx = self.reports_rx.take().expect("run once");
        let mut background = Background(vec![
            tokio::spawn(session_loop(
                self.client.clone(),
                SessionRequest {
                    cluster: self.cluster.clone(),
                    container_instance_arn: self.instance_arn().to_string(),
                },
                self.registration.clone(),
                self.timing.clone(),
                self.inputs_tx.clone(),
            )),
            tokio::spawn(events_loop(
                self.runtime.clone(),
                self.instance_arn().to_string(),
                self.timing.clone(),
                self.inputs_tx.clone(),
            )),
            tokio::spawn(report_loop(
                self.client.clone(),
                reports_rx,
                self.timing.clone(),
            )),
        ]);
        if self.timing.metrics_report_interval_ms > 0 {
            let reporter = MetricsReporter::new(
                self.runtime.clone(),
                self.metrics.clone(),
                self.clock.clone(),
                self.instance_arn().to_string(),
            )
            .with_send_timeout(Duration::from_millis(
                self.timing.metrics_report_interval_ms,
            ));
            background.0.push(tokio::spawn(reporter.run(
                self.metric_targets.subscribe(),
                self.timing.metrics_report_interval_ms,
            )));
        }
        let mut resync =
            tokio::time::interval(Duration::from_millis(self.timing.resync_interval_ms.max(1)));
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wakeup = self.wakeup_ms.map(|at_ms| {
                let delay_ms = u64::try_from(at_ms - self.clock.now_ms()).unwrap_or(0);
                tokio::time::Instant::now() + Duration::from_millis(delay_ms)
            });
            tokio::select! {
                () = &mut shutdown => {
                    info!("agent stopping; its tasks keep running");
                    return Ok(());
                }
                input = self.inputs_rx.recv() => {
                    if let Some(input) = input {
                        self.handle(input)?;
                    }
                    while let Ok(input) = self.inputs_rx.try_recv() {
                        self.handle(input)?;
                    }
                }
                Some(joined) = self.executions.join_next_with_id(), if !self.executions.is_empty() => {
                    self.finished(joined);
                }
                _ = resync.tick() => self.start_listing(),
                () = sleep_until(wakeup), if wakeup.is_some() => {}
            }
            self.reconcile_and_dispatch();
        }
    }

    fn handle(&mut self, input: Input) -> Result<(), AgentError> {
        match input {
            Input::Desired(tasks) => {
                debug!(tasks = tasks.len(), "desired tasks");
                self.desired = Some(tasks);
            }
            Input::Observed(observation) => self.observed.observe(observation),
            Input::Relist => self.start_listing(),
            Input::Relisted {
                started_seq,
                result,
            } => {
                self.listing_in_flight = false;
                match result {
                    Ok(listed) => {
                        self.observed.apply_listing(started_seq, listed);
                        self.listed_once = true;
                    }
                    Err(error) => warn!(%error, "cannot list containers"),
                }
                if std::mem::take(&mut self.listing_wanted) {
                    self.start_listing();
                }
            }
            Input::LogsShipped {
                task_arn,
                container_id,
                started_at_ms,
            } => {
                self.shippers.0.remove(&container_id);
                if let Some(started_at_ms) = started_at_ms {
                    self.local.apply(
                        &task_arn,
                        &LocalUpdate::LogsDelivered {
                            runtime_id: container_id,
                            started_at_ms,
                        },
                    );
                }
            }
            Input::Fatal(error) => return Err(error),
        }
        Ok(())
    }

    fn start_listing(&mut self) {
        if self.listing_in_flight {
            self.listing_wanted = true;
            return;
        }
        self.listing_in_flight = true;
        let started_seq = self.observed.seq;
        let runtime = self.runtime.clone();
        let arn = self.instance_arn().to_string();
        let inputs = self.inputs_tx.clone();
        tokio::spawn(async move {
            let result = runtime
                .list_containers(LABEL_CONTAINER_INSTANCE_ARN, &arn)
                .await;
            let _ = inputs.send(Input::Relisted {
                started_seq,
                result,
            });
        });
    }

    fn finished(&mut self, joined: Result<(tokio::task::Id, Done), tokio::task::JoinError>) {
        match joined {
            Ok((id, done)) => {
                self.execution_tasks.remove(&id);
                self.busy.remove(&done.task_arn);
                for update in &done.updates {
                    self.local.apply(&done.task_arn, update);
                }
                for observation in done.observations {
                    self.observed.observe(observation);
                }
            }
            Err(error) => {
                if let Some(task_arn) = self.execution_tasks.remove(&error.id()) {
                    warn!(task = %task_arn, %error, "a task's actions failed unexpectedly");
                    self.busy.remove(&task_arn);
                    let at_ms = self.clock.now_ms() + self.timing.runtime_retry_ms;
                    self.local
                        .apply(&task_arn, &LocalUpdate::RetryAfter { at_ms });
                }
            }
        }
    }

    fn reconcile_and_dispatch(&mut self) {
        if self.listed_once {
            let observed = self.observed.states();
            self.start_shippers(&observed);
            self.publish_metric_targets(&observed);
        }
        let Some(desired) = &self.desired else {
            return;
        };
        if !self.listed_once {
            return;
        }
        let observed = self.observed.states();
        let plan = reconcile(
            &self.config,
            desired,
            &observed,
            &self.local,
            self.clock.now_ms(),
        );
        self.wakeup_ms = plan.next_wakeup_ms;
        for task_plan in plan.tasks {
            if self.busy.contains(&task_plan.task_arn) {
                continue;
            }
            for update in &task_plan.updates {
                self.local.apply(&task_plan.task_arn, update);
            }
            for report in task_plan.reports {
                debug!(task = %task_plan.task_arn, operation = report.operation(), "report");
                let _ = self.reports_tx.send(report);
            }
            for action in &task_plan.actions {
                if let crate::reconcile::Action::RemoveContainer { runtime_id, .. } = action {
                    if self.shippers.0.contains_key(runtime_id) {
                        warn!(
                            task = %task_plan.task_arn,
                            container = %runtime_id,
                            grace_ms = crate::reconcile::LOG_DELIVERY_GRACE_MS,
                            "removing a container whose output could not be delivered within the grace period; what was not delivered is lost"
                        );
                    }
                }
            }
            if !task_plan.actions.is_empty() {
                self.busy.insert(task_plan.task_arn.clone());
                let handle = self.executions.spawn(execute_with_logs(
                    self.runtime.clone(),
                    Some(self.logs.clone()),
                    Some(self.registry.clone()),
                    self.clock.clone(),
                    self.timing.runtime_retry_ms,
                    task_plan.task_arn.clone(),
                    task_plan.actions,
                ));
                self.execution_tasks.insert(handle.id(), task_plan.task_arn);
            }
        }
    }
}

impl Agent {
    /// Tells the metrics reporter which containers to sample (only when
    /// that changed).
    fn publish_metric_targets(&self, observed: &[ContainerState]) {
        let Some(desired) = &self.desired else {
            return;
        };
        let targets = crate::metrics_reporter::targets(desired, observed);
        self.metric_targets.send_if_modified(|current| {
            if *current == targets {
                return false;
            }
            *current = targets;
            true
        });
    }

    /// Starts a shipper for every awslogs container that has run and whose
    /// output since that start is not delivered yet.
    fn start_shippers(&mut self, observed: &[ContainerState]) {
        self.shippers.0.retain(|_, handle| !handle.is_finished());
        for state in observed {
            if self.shippers.0.contains_key(&state.id) || !self.local.awaits_log_delivery(state) {
                continue;
            }
            let Some(container) = ContainerLogs::from_container(state) else {
                continue;
            };
            let inputs = self.inputs_tx.clone();
            let task_arn = container.task_arn.clone();
            let container_id = container.container_id.clone();
            let shipment = ship(
                self.runtime.clone(),
                self.logs.clone(),
                self.clock.clone(),
                self.timing.log_shipper.clone(),
                container,
            );
            let handle = tokio::spawn(async move {
                let shipped = shipment.await;
                let _ = inputs.send(Input::LogsShipped {
                    task_arn,
                    container_id,
                    started_at_ms: shipped.started_at_ms,
                });
            });
            self.shippers.0.insert(state.id.clone(), handle);
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Keeps the session open: reconnects with backoff when it ends, fails, or
/// falls silent; re-registers when the control plane refuses it.
async fn session_loop(
    client: EcsClient,
    request: SessionRequest,
    registration: ecs_wire::RegisterContainerInstanceRequest,
    timing: Timing,
    inputs: mpsc::UnboundedSender<Input>,
) {
    let mut backoff = Backoff::new(&timing);
    let silence = Duration::from_millis(timing.session_silence_ms.max(1));
    loop {
        match client.open_session(&request).await {
            Ok(mut stream) => {
                info!("session with the control plane open");
                loop {
                    match tokio::time::timeout(silence, stream.next_message()).await {
                        Err(_) => {
                            warn!(
                                silent_ms = timing.session_silence_ms,
                                "the session fell silent; reconnecting"
                            );
                            break;
                        }
                        Ok(Ok(Some(AgentMessage::DesiredTasks { tasks, .. }))) => {
                            backoff.reset();
                            if inputs.send(Input::Desired(tasks)).is_err() {
                                return;
                            }
                        }
                        Ok(Ok(Some(AgentMessage::Heartbeat { .. }))) => backoff.reset(),
                        Ok(Ok(None)) => {
                            info!("the control plane closed the session; reconnecting");
                            break;
                        }
                        Ok(Err(error)) => {
                            warn!(%error, "the session broke; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(error) if error.is_retryable() => {
                warn!(%error, "cannot open the session; retrying")
            }
            Err(error) => {
                warn!(%error, "the control plane refused the session; registering again");
                let answer: Result<ecs_wire::RegisterContainerInstanceResponse, AgentError> =
                    client
                        .call("RegisterContainerInstance", &registration)
                        .await;
                match answer {
                    Ok(response) => {
                        let arn = response
                            .container_instance
                            .and_then(|i| i.container_instance_arn);
                        if arn.as_deref() != Some(request.container_instance_arn.as_str()) {
                            let _ = inputs.send(Input::Fatal(AgentError::Config {
                                message: format!(
                                    "container instance {} no longer exists on the control plane (it registered this \
                                     agent as {}); restart the agent to join as the new instance",
                                    request.container_instance_arn,
                                    arn.unwrap_or_default()
                                ),
                            }));
                            return;
                        }
                    }
                    Err(error) => warn!(%error, "cannot register again; retrying"),
                }
            }
        }
        backoff.wait().await;
    }
}

/// Forwards Docker events of this agent's containers as fresh observations;
/// asks for a full listing after every (re)subscription.
async fn events_loop(
    runtime: Arc<dyn ContainerRuntime>,
    instance_arn: String,
    timing: Timing,
    inputs: mpsc::UnboundedSender<Input>,
) {
    let mut backoff = Backoff::new(&timing);
    loop {
        match runtime
            .events(LABEL_CONTAINER_INSTANCE_ARN, &instance_arn)
            .await
        {
            Ok(mut events) => {
                backoff.reset();
                if inputs.send(Input::Relist).is_err() {
                    return;
                }
                while let Some(event) = events.next().await {
                    let event = match event {
                        Ok(event) => event,
                        Err(error) => {
                            warn!(%error, "the container event stream ended");
                            break;
                        }
                    };
                    let state = if event.action == ContainerEventAction::Destroy {
                        None
                    } else {
                        match runtime.inspect_container(&event.id).await {
                            Ok(state) => state,
                            Err(error) => {
                                debug!(%error, container = %event.id, "cannot inspect after an event");
                                continue;
                            }
                        }
                    };
                    let observation = Observation {
                        id: event.id,
                        state,
                    };
                    if inputs.send(Input::Observed(observation)).is_err() {
                        return;
                    }
                }
            }
            Err(error) => warn!(%error, "cannot subscribe to container events; retrying"),
        }
        backoff.wait().await;
    }
}

/// Sends reports in order, each retried until the control plane
/// acknowledges it (a refusal other than throttling is logged and dropped:
/// repeating it would not change the answer).
async fn report_loop(
    client: EcsClient,
    mut reports: mpsc::UnboundedReceiver<ReportCall>,
    timing: Timing,
) {
    while let Some(call) = reports.recv().await {
        let body = serde_json::to_vec(&call.body()).unwrap_or_default();
        let mut backoff = Backoff::new(&timing);
        loop {
            match client.call_json(call.operation(), body.clone()).await {
                Ok(_) => {
                    debug!(
                        task = call.task_arn.as_str(),
                        operation = call.operation(),
                        "reported"
                    );
                    break;
                }
                Err(error) if error.is_retryable() => {
                    debug!(%error, task = call.task_arn.as_str(), "report not delivered; retrying");
                    backoff.wait().await;
                }
                Err(error) => {
                    warn!(%error, task = call.task_arn.as_str(), "the control plane refused a report; dropping it");
                    break;
                }
            }
        }
    }
}

/// The local address this machine uses to reach the control plane (a
/// connected UDP socket sends nothing; the kernel picks the route).
fn local_address_towards(endpoint: &crate::client::Endpoint) -> Option<std::net::IpAddr> {
    use std::net::ToSocketAddrs as _;
    let remote = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .ok()?
        .next()?;
    let unspecified: std::net::SocketAddr = if remote.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(unspecified).ok()?;
    socket.connect(remote).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str) -> ContainerState {
        ContainerState {
            id: id.to_string(),
            name: id.to_string(),
            labels: BTreeMap::new(),
            status: runtime::ContainerStatus::Running,
            exit_code: None,
            oom_killed: false,
            started_at_ms: None,
            finished_at_ms: None,
            health: None,
            port_bindings: Vec::new(),
            image: String::new(),
            image_id: String::new(),
            error: None,
        }
    }

    fn ids(observed: &ObservedContainers) -> Vec<String> {
        observed.states().into_iter().map(|s| s.id).collect()
    }

    #[test]
    fn a_stale_listing_does_not_undo_newer_observations() {
        let mut observed = ObservedContainers::default();
        observed.observe(Observation {
            id: "old".into(),
            state: Some(state("old")),
        });
        let started_seq = observed.seq;
        // While the listing runs: a container is created, another removed.
        observed.observe(Observation {
            id: "new".into(),
            state: Some(state("new")),
        });
        observed.observe(Observation {
            id: "old".into(),
            state: None,
        });
        observed.apply_listing(started_seq, vec![state("old")]);
        assert_eq!(ids(&observed), vec!["new".to_string()]);
        // A later listing is the truth.
        observed.apply_listing(observed.seq, vec![state("other")]);
        assert_eq!(ids(&observed), vec!["other".to_string()]);
    }
}
