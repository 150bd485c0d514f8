//! `berth bench tasks`: tasks per second from RunTask to RUNNING through the
//! real control plane, with SIMULATED agents.
//!
//! An in-process server on a fresh SQLite store serves real HTTP on
//! loopback and verifies real SigV4 signatures, exactly as for
//! `berth bench api`. The bench creates cluster `bench`, registers one small
//! task definition, and registers `--instances` simulated container
//! instances through RegisterContainerInstance. Then each of `--clients`
//! workers loops on RunTask (`--count` tasks), handing the tasks returned
//! to its stand-in agent, which acknowledges each one RUNNING at once with
//! SubmitTaskStateChange through the same HTTP API (so the RUNNING state is
//! durable in the store), the tasks of one RunTask concurrently, while the
//! worker goes on with its next RunTask (at most
//! [`AGENT_BACKLOG_RUN_TASKS`] responses ahead of its agent). The latency
//! from sending RunTask to each acknowledgment is recorded. No containers
//! run.
//!
//! Instances stay `agentConnected`: registration records a heartbeat, and a
//! keeper re-registers every instance (RegisterContainerInstance with its
//! `containerInstanceArn`) every [`HEARTBEAT_REFRESH`], well inside the
//! control plane's 30 s agent timeout.
//!
//! Prints human-readable figures, then one JSON line:
//! `{"bench":"tasks",…,"tasks_per_s":…,"run_task_p99_ms":…,"to_running_p99_ms":…}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::bench_support::{
    create_cluster_and_register, excerpt, micros, percentile, round3, start_in_process, Client,
    InProcessOptions, Target,
};
use crate::clock;

const CLUSTER_NAME: &str = "bench";
const FAMILY: &str = "bench-tasks";
const CONTAINER_NAME: &str = "app";
const TASK_CPU_UNITS: u64 = 64;
const TASK_MEMORY_MIB: u64 = 64;
const INSTANCE_CPU_UNITS: u64 = 4096;
const INSTANCE_MEMORY_MIB: u64 = 16384;
/// Availability Zones the simulated instances are spread over, as suffixes
/// of the region.
const ZONE_SUFFIXES: [&str; 3] = ["a", "b", "c"];
/// How often each simulated instance is re-registered, which records its
/// heartbeat; the control plane's agent timeout is 30 s.
const HEARTBEAT_REFRESH: Duration = Duration::from_secs(20);
/// Connections the heartbeat keeper re-registers instances over.
const KEEPER_CONNECTIONS: usize = 4;
/// RunTask responses a client's stand-in agent may fall behind by before
/// the client waits for it.
const AGENT_BACKLOG_RUN_TASKS: usize = 2;
/// How often progress is printed during the load.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// At most this many instances per DescribeContainerInstances.
const DESCRIBE_BATCH: usize = 100;
const SIMULATED_NOTICE: &str = "simulated agents: instances are registered through the API and tasks are acknowledged RUNNING by an in-process stand-in; no containers run";

#[derive(clap::Args)]
pub struct TasksBenchArgs {
    /// Simulated container instances (4096 CPU units, 16384 MiB each).
    #[arg(long, default_value_t = 1000)]
    instances: usize,
    /// Concurrent workers, each looping RunTask → acknowledge RUNNING.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Tasks per RunTask (1 to 10).
    #[arg(long, default_value_t = 10)]
    count: u32,
    /// Stop once this many tasks were asked for. Each task reserves 64 CPU
    /// units, so 1000 instances hold 64,000.
    #[arg(long, default_value_t = 50_000)]
    tasks: u64,
    /// Stop after this long even if fewer tasks were asked for.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// The region requests are signed for.
    #[arg(long, default_value = crate::DEFAULT_REGION)]
    region: String,
}

pub async fn run(args: TasksBenchArgs) -> Result<()> {
    if args.instances == 0 || args.clients == 0 || args.tasks == 0 || args.seconds == 0 {
        bail!("--instances, --clients, --tasks and --seconds must be at least 1");
    }
    if !(1..=10).contains(&args.count) {
        bail!("--count must be between 1 and 10, as for RunTask");
    }
    let capacity = capacity_tasks(args.instances);
    if args.tasks > capacity {
        bail!(
            "--tasks {} exceeds what {} instances hold ({capacity} tasks of {TASK_CPU_UNITS} CPU units and {TASK_MEMORY_MIB} MiB); lower --tasks or raise --instances",
            args.tasks,
            args.instances
        );
    }

    let (target, server) = start_in_process(&args.region, InProcessOptions::default()).await?;
    let target = Arc::new(target);
    println!(
        "berth bench tasks: {} instances, {} clients, RunTask count {}, up to {} tasks or {} s, against {}",
        args.instances,
        args.clients,
        args.count,
        args.tasks,
        args.seconds,
        target.host.to_str().unwrap_or("?")
    );
    println!("{SIMULATED_NOTICE}");

    let mut setup = Client::new(Arc::clone(&target));
    let (registered, task_definition_arn) =
        create_cluster_and_register(&mut setup, CLUSTER_NAME, &task_definition_body()).await?;
    let required = required_attributes(&registered);
    println!(
        "task definition {task_definition_arn}: requires {}",
        if required.is_empty() {
            "no attributes".to_string()
        } else {
            required
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );

    let started = clock::monotonic_now();
    let instances = register_instances(
        &target,
        args.instances,
        args.clients,
        &args.region,
        &required,
    )
    .await?;
    let elapsed = started.elapsed();
    println!(
        "registered {} container instances in {:.2} s ({:.0} registrations/s)",
        instances.len(),
        elapsed.as_secs_f64(),
        instances.len() as f64 / elapsed.as_secs_f64()
    );

    let (stop_keeper, keeper_stopped) = watch::channel(false);
    let keeper = tokio::spawn(keep_connected(
        Arc::clone(&target),
        instances.clone(),
        args.region.clone(),
        required.clone(),
        keeper_stopped,
    ));

    let connections = open_connections(&target, args.clients, args.count as usize).await?;
    let writes_before = server.store.write_stats();
    let load = run_load(&target, &args, &task_definition_arn, connections).await;
    let writes = server.store.write_stats();
    let (load_commits, load_txns) = (
        writes.commits - writes_before.commits,
        writes.requests - writes_before.requests,
    );

    let _ = stop_keeper.send(true);
    let keeper = keeper.await.unwrap_or_else(|err| KeeperTally {
        refreshes: 0,
        errors: 1,
        first_error: Some(format!("the heartbeat keeper failed: {err}")),
    });

    let check = check_state(&mut Client::new(Arc::clone(&target)), &instances).await;
    server.stop().await;

    let report = Report::new(&load);
    println!(
        "RUNNING: {} tasks in {:.2} s: {:.0} tasks/s (RunTask to durable RUNNING acknowledgment)",
        report.running,
        load.elapsed.as_secs_f64(),
        report.tasks_per_s
    );
    println!(
        "RunTask: {} requests, {:.1} requests/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        load.run_task_latencies_us.len(),
        report.run_task_per_s,
        report.run_task.p50_ms,
        report.run_task.p99_ms,
        report.run_task.max_ms
    );
    println!(
        "RunTask → RUNNING per task: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        report.to_running.p50_ms, report.to_running.p99_ms, report.to_running.max_ms
    );
    println!(
        "SubmitTaskStateChange (RUNNING): latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        report.ack.p50_ms, report.ack.p99_ms, report.ack.max_ms
    );
    println!(
        "store during the load: {load_txns} write transactions in {load_commits} commits (one fsync each), {:.1} per commit",
        if load_commits > 0 { load_txns as f64 / load_commits as f64 } else { 0.0 }
    );
    println!(
        "failures: {} RunTask failure entries ({} tasks not placed), {} RunTask HTTP errors, {} acknowledgment HTTP errors",
        load.failure_entries, load.unplaced_tasks, load.run_task_errors, load.ack_errors
    );
    if let Some(failure) = &load.first_failure_entry {
        println!("  first RunTask failure entry: {failure}");
    }
    if let Some(error) = &load.first_error {
        println!("  first HTTP error: {error}");
    }
    println!(
        "heartbeats: {} re-registrations, {} errors",
        keeper.refreshes, keeper.errors
    );
    if let Some(error) = &keeper.first_error {
        println!("  first re-registration error: {error}");
    }
    match &check {
        Ok(state) => println!(
            "store after the run: cluster runningTasksCount {}, pendingTasksCount {}, {} of {} instances agentConnected",
            state.running_tasks, state.pending_tasks, state.connected_instances, instances.len()
        ),
        Err(err) => println!("store after the run: cannot read it back: {err:#}"),
    }
    println!("{SIMULATED_NOTICE}");

    let line = json!({
        "bench": "tasks",
        "simulated_agents": true,
        "instances": instances.len(),
        "clients": args.clients,
        "count": args.count,
        "tasks": report.running,
        "seconds": round3(load.elapsed.as_secs_f64()),
        "tasks_per_s": report.tasks_per_s.round(),
        "run_task_per_s": round3(report.run_task_per_s),
        "run_task_p50_ms": round3(report.run_task.p50_ms),
        "run_task_p99_ms": round3(report.run_task.p99_ms),
        "to_running_p50_ms": round3(report.to_running.p50_ms),
        "to_running_p99_ms": round3(report.to_running.p99_ms),
        "failures": load.failure_entries + load.run_task_errors + load.ack_errors,
        "unplaced_tasks": load.unplaced_tasks,
        "running_tasks_in_store": check.as_ref().ok().map(|s| s.running_tasks),
        "store_write_txns": load_txns,
        "store_commits": load_commits,
    });
    println!("{line}");
    Ok(())
}

/// How many bench tasks `instances` simulated instances hold.
fn capacity_tasks(instances: usize) -> u64 {
    instances as u64
        * (INSTANCE_CPU_UNITS / TASK_CPU_UNITS).min(INSTANCE_MEMORY_MIB / TASK_MEMORY_MIB)
}

/// How many tasks the next RunTask asks for, given how many were already
/// claimed: `count`, fewer at the end, none once `total` is reached.
fn next_batch(claimed_before: u64, count: u32, total: u64) -> Option<u32> {
    let left = total.checked_sub(claimed_before).filter(|left| *left > 0)?;
    Some(u32::try_from(left.min(u64::from(count))).unwrap_or(count))
}

fn task_definition_body() -> Value {
    json!({
        "family": FAMILY,
        "networkMode": "bridge",
        "requiresCompatibilities": ["EC2"],
        "containerDefinitions": [{
            "name": CONTAINER_NAME,
            "image": "busybox:1.36",
            "cpu": TASK_CPU_UNITS,
            "memory": TASK_MEMORY_MIB,
            "essential": true,
            "command": ["sleep", "3600"]
        }]
    })
}

/// `requiresAttributes` of a RegisterTaskDefinition response, as
/// (name, value).
fn required_attributes(response: &Value) -> Vec<(String, Option<String>)> {
    response["taskDefinition"]["requiresAttributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|attribute| {
            let name = attribute["name"].as_str()?.to_string();
            let value = attribute["value"].as_str().map(str::to_string);
            Some((name, value))
        })
        .collect()
}

/// Simulated instance `index`'s attributes: its zone (round robin over
/// three), the OS type, and everything the task definition requires.
fn instance_attributes(
    region: &str,
    index: usize,
    required: &[(String, Option<String>)],
) -> Vec<(String, Option<String>)> {
    let zone = format!("{region}{}", ZONE_SUFFIXES[index % ZONE_SUFFIXES.len()]);
    let mut attributes = vec![
        ("ecs.availability-zone".to_string(), Some(zone)),
        ("ecs.os-type".to_string(), Some("linux".to_string())),
    ];
    for (name, value) in required {
        if !attributes.iter().any(|(existing, _)| existing == name) {
            attributes.push((name.clone(), value.clone()));
        }
    }
    attributes
}

/// RegisterContainerInstance for simulated instance `index`; with
/// `container_instance_arn`, a re-registration of that instance.
fn register_instance_body(
    region: &str,
    index: usize,
    required: &[(String, Option<String>)],
    container_instance_arn: Option<&str>,
) -> Value {
    let attributes: Vec<Value> = instance_attributes(region, index, required)
        .into_iter()
        .map(|(name, value)| match value {
            Some(value) => json!({ "name": name, "value": value }),
            None => json!({ "name": name }),
        })
        .collect();
    let mut body = json!({
        "cluster": CLUSTER_NAME,
        "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": INSTANCE_CPU_UNITS},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": INSTANCE_MEMORY_MIB},
        ],
        "attributes": attributes,
        "versionInfo": {"agentVersion": "simulated", "dockerVersion": "simulated"},
    });
    if let Some(arn) = container_instance_arn {
        body["containerInstanceArn"] = json!(arn);
    }
    body
}

fn run_task_body(task_definition_arn: &str, count: u32) -> Value {
    json!({
        "cluster": CLUSTER_NAME,
        "taskDefinition": task_definition_arn,
        "count": count,
        "startedBy": "berth-bench",
    })
}

/// What the stand-in agent reports once it "started" a task.
fn running_ack_body(task_arn: &str) -> Value {
    json!({
        "cluster": CLUSTER_NAME,
        "task": task_arn,
        "status": "RUNNING",
        "containers": [{"containerName": CONTAINER_NAME, "status": "RUNNING"}],
    })
}

/// The task ARNs, the failure entries (rendered) of a RunTask response.
fn run_task_outcome(response: &[u8]) -> (Vec<String>, Vec<String>) {
    let response: Value = serde_json::from_slice(response).unwrap_or(Value::Null);
    let arns = response["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|task| task["taskArn"].as_str().map(str::to_string))
        .collect();
    let failures = response["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|failure| {
            format!(
                "{}: {}",
                failure["arn"].as_str().unwrap_or("-"),
                failure["reason"].as_str().unwrap_or("no reason")
            )
        })
        .collect();
    (arns, failures)
}

/// A simulated container instance and when its heartbeat was last recorded.
#[derive(Clone)]
struct SimulatedInstance {
    index: usize,
    arn: String,
    heartbeat_at: Instant,
}

/// Registers `count` instances over `clients` connections; ordered by the
/// time each was registered.
async fn register_instances(
    target: &Arc<Target>,
    count: usize,
    clients: usize,
    region: &str,
    required: &[(String, Option<String>)],
) -> Result<Vec<SimulatedInstance>> {
    let next = Arc::new(AtomicU64::new(0));
    let required = Arc::new(required.to_vec());
    let mut workers = JoinSet::new();
    for _ in 0..clients.min(count) {
        let mut client = Client::new(Arc::clone(target));
        let next = Arc::clone(&next);
        let required = Arc::clone(&required);
        let region = region.to_string();
        workers.spawn(async move {
            let mut registered = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed) as usize;
                if index >= count {
                    return Ok::<_, anyhow::Error>(registered);
                }
                let body = register_instance_body(&region, index, &required, None);
                let response = client.call_ok("RegisterContainerInstance", &body).await?;
                let arn = response["containerInstance"]["containerInstanceArn"]
                    .as_str()
                    .context("RegisterContainerInstance answered without a containerInstanceArn")?
                    .to_string();
                registered.push(SimulatedInstance {
                    index,
                    arn,
                    heartbeat_at: clock::monotonic_now(),
                });
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(joined) = workers.join_next().await {
        all.extend(joined.context("a registration worker failed")??);
    }
    all.sort_by_key(|instance| instance.heartbeat_at);
    Ok(all)
}

struct KeeperTally {
    refreshes: u64,
    errors: u64,
    first_error: Option<String>,
}

/// Re-registers every instance [`HEARTBEAT_REFRESH`] after its last
/// heartbeat, over [`KEEPER_CONNECTIONS`] connections, until `stopped`.
async fn keep_connected(
    target: Arc<Target>,
    instances: Vec<SimulatedInstance>,
    region: String,
    required: Vec<(String, Option<String>)>,
    stopped: watch::Receiver<bool>,
) -> KeeperTally {
    let mut shards: Vec<Vec<SimulatedInstance>> = vec![Vec::new(); KEEPER_CONNECTIONS];
    for (position, instance) in instances.into_iter().enumerate() {
        shards[position % KEEPER_CONNECTIONS].push(instance);
    }
    let region = Arc::new(region);
    let required = Arc::new(required);
    let mut keepers = JoinSet::new();
    for shard in shards.into_iter().filter(|shard| !shard.is_empty()) {
        keepers.spawn(keep_shard_connected(
            Client::new(Arc::clone(&target)),
            shard,
            Arc::clone(&region),
            Arc::clone(&required),
            stopped.clone(),
        ));
    }
    let mut tally = KeeperTally {
        refreshes: 0,
        errors: 0,
        first_error: None,
    };
    while let Some(joined) = keepers.join_next().await {
        match joined {
            Ok(shard) => {
                tally.refreshes += shard.refreshes;
                tally.errors += shard.errors;
                tally.first_error = tally.first_error.take().or(shard.first_error);
            }
            Err(err) => {
                tally.errors += 1;
                tally
                    .first_error
                    .get_or_insert_with(|| format!("a heartbeat keeper failed: {err}"));
            }
        }
    }
    tally
}

/// One keeper connection: `instances`, ordered by heartbeat, re-registered
/// oldest first. Refreshing one moves it to the back, so walking round
/// keeps the order.
async fn keep_shard_connected(
    mut client: Client,
    mut instances: Vec<SimulatedInstance>,
    region: Arc<String>,
    required: Arc<Vec<(String, Option<String>)>>,
    mut stopped: watch::Receiver<bool>,
) -> KeeperTally {
    let mut tally = KeeperTally {
        refreshes: 0,
        errors: 0,
        first_error: None,
    };
    for position in (0..instances.len()).cycle() {
        let due = instances[position].heartbeat_at + HEARTBEAT_REFRESH;
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(due)) => {}
            _ = stopped.wait_for(|stop| *stop) => break,
        }
        let instance = &mut instances[position];
        let body = register_instance_body(&region, instance.index, &required, Some(&instance.arn));
        match client.call_ok("RegisterContainerInstance", &body).await {
            Ok(_) => tally.refreshes += 1,
            Err(err) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| format!("{err:#}"));
            }
        }
        instance.heartbeat_at = clock::monotonic_now();
    }
    tally
}

/// What the load phase measured, over all workers.
#[derive(Default)]
struct LoadTally {
    run_task_latencies_us: Vec<u64>,
    to_running_latencies_us: Vec<u64>,
    /// SubmitTaskStateChange alone.
    ack_latencies_us: Vec<u64>,
    /// RunTask `failures` entries.
    failure_entries: u64,
    /// Tasks asked for that RunTask did not return.
    unplaced_tasks: u64,
    run_task_errors: u64,
    ack_errors: u64,
    first_failure_entry: Option<String>,
    first_error: Option<String>,
    elapsed: Duration,
}

impl LoadTally {
    fn merge(&mut self, other: LoadTally) {
        self.run_task_latencies_us
            .extend(other.run_task_latencies_us);
        self.to_running_latencies_us
            .extend(other.to_running_latencies_us);
        self.ack_latencies_us.extend(other.ack_latencies_us);
        self.failure_entries += other.failure_entries;
        self.unplaced_tasks += other.unplaced_tasks;
        self.run_task_errors += other.run_task_errors;
        self.ack_errors += other.ack_errors;
        self.first_failure_entry = self
            .first_failure_entry
            .take()
            .or(other.first_failure_entry);
        self.first_error = self.first_error.take().or(other.first_error);
    }

    fn error(&mut self, description: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(description());
        }
    }
}

/// One worker's connections, open before the load: its RunTask connection
/// and its stand-in agent's, one per acknowledgment in flight.
struct WorkerConnections {
    run_task: Client,
    acknowledgments: Vec<Client>,
}

/// Opens (with a DescribeClusters each) the connections of `clients`
/// workers, each with `acknowledgments_in_flight` for its agent. Opening
/// them during the load would time the connects, and a burst of them can
/// overflow the listener's accept queue (a dropped SYN is retried after a
/// second).
async fn open_connections(
    target: &Arc<Target>,
    clients: usize,
    acknowledgments_in_flight: usize,
) -> Result<Vec<WorkerConnections>> {
    let mut openers = JoinSet::new();
    for _ in 0..clients {
        let target = Arc::clone(target);
        openers.spawn(async move {
            let mut opened = Vec::with_capacity(acknowledgments_in_flight + 1);
            for _ in 0..=acknowledgments_in_flight {
                let mut client = Client::new(Arc::clone(&target));
                client
                    .call_ok("DescribeClusters", &json!({ "clusters": [CLUSTER_NAME] }))
                    .await?;
                opened.push(client);
            }
            let run_task = opened.pop().context("no connection opened")?;
            Ok::<_, anyhow::Error>(WorkerConnections {
                run_task,
                acknowledgments: opened,
            })
        });
    }
    let mut all = Vec::with_capacity(clients);
    while let Some(joined) = openers.join_next().await {
        all.push(joined.context("a connection opener failed")??);
    }
    Ok(all)
}

async fn run_load(
    target: &Arc<Target>,
    args: &TasksBenchArgs,
    task_definition_arn: &str,
    connections: Vec<WorkerConnections>,
) -> LoadTally {
    let claimed = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicU64::new(0));
    let started = clock::monotonic_now();
    let deadline = started + Duration::from_secs(args.seconds);
    let (count, total) = (args.count, args.tasks);

    let progress = tokio::spawn({
        let running = Arc::clone(&running);
        async move {
            let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
            ticker.tick().await;
            let mut previous = 0;
            loop {
                ticker.tick().await;
                let now = running.load(Ordering::Relaxed);
                println!(
                    "  {:>5.1} s: {now} RUNNING, {:.0} tasks/s over the last {} s",
                    started.elapsed().as_secs_f64(),
                    (now - previous) as f64 / PROGRESS_INTERVAL.as_secs_f64(),
                    PROGRESS_INTERVAL.as_secs()
                );
                previous = now;
            }
        }
    });

    let mut workers = JoinSet::new();
    for connections in connections {
        let target = Arc::clone(target);
        let claimed = Arc::clone(&claimed);
        let running = Arc::clone(&running);
        let task_definition_arn = task_definition_arn.to_string();
        workers.spawn(async move {
            // The stand-in agent of this client's tasks: it acknowledges
            // each RunTask's tasks as it learns of them, while the client
            // goes on with its next RunTask, as a real agent would.
            let (placed, learned) = mpsc::channel(AGENT_BACKLOG_RUN_TASKS);
            let agent = tokio::spawn(stand_in_agent(
                target,
                connections.acknowledgments,
                learned,
                running,
            ));
            let mut tally = LoadTally::default();
            let mut run_client = connections.run_task;
            while clock::monotonic_now() < deadline {
                let Some(batch) = next_batch(
                    claimed.fetch_add(u64::from(count), Ordering::Relaxed),
                    count,
                    total,
                ) else {
                    break;
                };
                let sent_at = clock::monotonic_now();
                let response = match run_client
                    .call("RunTask", &run_task_body(&task_definition_arn, batch))
                    .await
                {
                    Ok((status, body)) if status.is_success() => body,
                    Ok((status, body)) => {
                        tally.run_task_errors += 1;
                        tally.error(|| format!("RunTask: HTTP {status}: {}", excerpt(&body)));
                        continue;
                    }
                    Err(err) => {
                        tally.run_task_errors += 1;
                        tally.error(|| format!("RunTask: {err:#}"));
                        continue;
                    }
                };
                tally.run_task_latencies_us.push(micros(sent_at.elapsed()));
                let (task_arns, failures) = run_task_outcome(&response);
                tally.failure_entries += failures.len() as u64;
                tally.unplaced_tasks += u64::from(batch).saturating_sub(task_arns.len() as u64);
                if tally.first_failure_entry.is_none() {
                    tally.first_failure_entry = failures.into_iter().next();
                }
                if placed.send((sent_at, task_arns)).await.is_err() {
                    tally.ack_errors += 1;
                    tally.error(|| "the stand-in agent stopped".to_string());
                    break;
                }
            }
            drop(placed);
            match agent.await {
                Ok(agent_tally) => tally.merge(agent_tally),
                Err(err) => {
                    tally.ack_errors += 1;
                    tally.error(|| format!("the stand-in agent failed: {err}"));
                }
            }
            tally
        });
    }

    let mut total_tally = LoadTally::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(tally) => total_tally.merge(tally),
            Err(err) => {
                total_tally.run_task_errors += 1;
                total_tally.error(|| format!("a load worker failed: {err}"));
            }
        }
    }
    total_tally.elapsed = started.elapsed();
    progress.abort();
    total_tally
}

/// Acknowledges RUNNING, through SubmitTaskStateChange, every task of each
/// RunTask it learns of (with when that RunTask was sent), the tasks of one
/// RunTask concurrently (they run on different instances, whose agents
/// report independently), one connection per acknowledgment in flight.
async fn stand_in_agent(
    target: Arc<Target>,
    mut ack_clients: Vec<Client>,
    mut learned: mpsc::Receiver<(Instant, Vec<String>)>,
    running: Arc<AtomicU64>,
) -> LoadTally {
    let mut tally = LoadTally::default();
    while let Some((sent_at, task_arns)) = learned.recv().await {
        let mut acks = JoinSet::new();
        for task_arn in task_arns {
            let mut client = ack_clients
                .pop()
                .unwrap_or_else(|| Client::new(Arc::clone(&target)));
            acks.spawn(async move {
                let ack_sent_at = clock::monotonic_now();
                let outcome = client
                    .call("SubmitTaskStateChange", &running_ack_body(&task_arn))
                    .await;
                (client, outcome, ack_sent_at, clock::monotonic_now())
            });
        }
        while let Some(joined) = acks.join_next().await {
            let Ok((client, outcome, ack_sent_at, acknowledged_at)) = joined else {
                tally.ack_errors += 1;
                tally.error(|| "an acknowledgment task failed".to_string());
                continue;
            };
            ack_clients.push(client);
            match outcome {
                Ok((status, _)) if status.is_success() => {
                    tally
                        .to_running_latencies_us
                        .push(micros(acknowledged_at.duration_since(sent_at)));
                    tally
                        .ack_latencies_us
                        .push(micros(acknowledged_at.duration_since(ack_sent_at)));
                    running.fetch_add(1, Ordering::Relaxed);
                }
                Ok((status, body)) => {
                    tally.ack_errors += 1;
                    tally.error(|| {
                        format!("SubmitTaskStateChange: HTTP {status}: {}", excerpt(&body))
                    });
                }
                Err(err) => {
                    tally.ack_errors += 1;
                    tally.error(|| format!("SubmitTaskStateChange: {err:#}"));
                }
            }
        }
    }
    tally
}

/// The state the run left in the store, read back through the API.
struct StoreCheck {
    running_tasks: i64,
    pending_tasks: i64,
    connected_instances: usize,
}

async fn check_state(client: &mut Client, instances: &[SimulatedInstance]) -> Result<StoreCheck> {
    let clusters = client
        .call_ok("DescribeClusters", &json!({ "clusters": [CLUSTER_NAME] }))
        .await?;
    let cluster = &clusters["clusters"][0];
    let mut connected_instances = 0;
    for batch in instances.chunks(DESCRIBE_BATCH) {
        let arns: Vec<&str> = batch.iter().map(|instance| instance.arn.as_str()).collect();
        let described = client
            .call_ok(
                "DescribeContainerInstances",
                &json!({ "cluster": CLUSTER_NAME, "containerInstances": arns }),
            )
            .await?;
        connected_instances += described["containerInstances"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|instance| instance["agentConnected"] == json!(true))
            .count();
    }
    Ok(StoreCheck {
        running_tasks: cluster["runningTasksCount"].as_i64().unwrap_or(-1),
        pending_tasks: cluster["pendingTasksCount"].as_i64().unwrap_or(-1),
        connected_instances,
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct LatencySummary {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl LatencySummary {
    fn new(latencies_us: &[u64]) -> LatencySummary {
        let mut sorted = latencies_us.to_vec();
        sorted.sort_unstable();
        let to_ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            p50_ms: to_ms(percentile(&sorted, 0.50)),
            p99_ms: to_ms(percentile(&sorted, 0.99)),
            max_ms: to_ms(sorted.last().copied().unwrap_or(0)),
        }
    }
}

/// The figures of a load phase.
#[derive(Debug, PartialEq)]
struct Report {
    /// Tasks acknowledged RUNNING.
    running: u64,
    tasks_per_s: f64,
    /// Successful RunTask requests per second.
    run_task_per_s: f64,
    run_task: LatencySummary,
    to_running: LatencySummary,
    ack: LatencySummary,
}

impl Report {
    fn new(load: &LoadTally) -> Report {
        let elapsed_s = load.elapsed.as_secs_f64();
        let per_s = |n: usize| {
            if elapsed_s > 0.0 {
                n as f64 / elapsed_s
            } else {
                0.0
            }
        };
        Report {
            running: load.to_running_latencies_us.len() as u64,
            tasks_per_s: per_s(load.to_running_latencies_us.len()),
            run_task_per_s: per_s(load.run_task_latencies_us.len()),
            run_task: LatencySummary::new(&load.run_task_latencies_us),
            to_running: LatencySummary::new(&load.to_running_latencies_us),
            ack: LatencySummary::new(&load.ack_latencies_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_instances_hold_sixty_four_thousand_tasks() {
        assert_eq!(capacity_tasks(1000), 64_000);
        assert_eq!(capacity_tasks(1), 64);
    }

    #[test]
    fn batches_stop_at_the_total() {
        let check = |claimed_before: u64, expected: Option<u32>| {
            assert_eq!(
                next_batch(claimed_before, 10, 25),
                expected,
                "{claimed_before}"
            );
        };
        check(0, Some(10));
        check(10, Some(10));
        check(20, Some(5));
        check(25, None);
        check(30, None);
    }

    #[test]
    fn instances_get_their_zone_and_every_required_attribute_once() {
        let required = vec![
            (
                "com.amazonaws.ecs.capability.docker-remote-api.1.18".to_string(),
                None,
            ),
            ("ecs.os-type".to_string(), Some("linux".to_string())),
        ];
        let attributes = instance_attributes("us-east-1", 4, &required);
        assert_eq!(
            attributes,
            vec![
                (
                    "ecs.availability-zone".to_string(),
                    Some("us-east-1b".to_string())
                ),
                ("ecs.os-type".to_string(), Some("linux".to_string())),
                (
                    "com.amazonaws.ecs.capability.docker-remote-api.1.18".to_string(),
                    None
                ),
            ]
        );
        let zones: Vec<String> = (0..3)
            .map(|index| {
                instance_attributes("eu-west-1", index, &[])[0]
                    .1
                    .clone()
                    .unwrap()
            })
            .collect();
        assert_eq!(zones, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]);
    }

    #[test]
    fn required_attributes_are_read_from_the_registration() {
        let response = json!({"taskDefinition": {"requiresAttributes": [
            {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"},
            {"name": "ecs.cpu-architecture", "value": "x86_64"}
        ]}});
        assert_eq!(
            required_attributes(&response),
            vec![
                (
                    "com.amazonaws.ecs.capability.docker-remote-api.1.18".to_string(),
                    None
                ),
                (
                    "ecs.cpu-architecture".to_string(),
                    Some("x86_64".to_string())
                ),
            ]
        );
        assert!(required_attributes(&json!({})).is_empty());
    }

    #[test]
    fn re_registration_names_the_instance() {
        let first = register_instance_body("us-east-1", 0, &[], None);
        assert!(first.get("containerInstanceArn").is_none());
        assert_eq!(first["totalResources"][0]["integerValue"], 4096);
        assert_eq!(first["totalResources"][1]["integerValue"], 16384);
        let again = register_instance_body("us-east-1", 0, &[], Some("arn:x"));
        assert_eq!(again["containerInstanceArn"], "arn:x");
        assert_eq!(again["attributes"], first["attributes"]);
    }

    #[test]
    fn run_task_outcomes_list_tasks_and_failures() {
        let response = json!({
            "tasks": [{"taskArn": "arn:t1"}, {"taskArn": "arn:t2"}],
            "failures": [{"arn": "arn:ci", "reason": "RESOURCE:CPU"}]
        });
        let (arns, failures) = run_task_outcome(response.to_string().as_bytes());
        assert_eq!(arns, ["arn:t1", "arn:t2"]);
        assert_eq!(failures, ["arn:ci: RESOURCE:CPU"]);
        assert_eq!(run_task_outcome(b"null"), (vec![], vec![]));
    }

    #[test]
    fn the_acknowledgment_reports_task_and_container_running() {
        let body = running_ack_body("arn:t1");
        assert_eq!(body["status"], "RUNNING");
        assert_eq!(body["containers"][0]["containerName"], CONTAINER_NAME);
        assert_eq!(body["containers"][0]["status"], "RUNNING");
    }

    #[test]
    fn reports_count_acknowledged_tasks_per_second() {
        let load = LoadTally {
            run_task_latencies_us: vec![2_000, 4_000],
            to_running_latencies_us: (1..=100).map(|ms| ms * 1000).collect(),
            elapsed: Duration::from_secs(2),
            ..LoadTally::default()
        };
        let report = Report::new(&load);
        assert_eq!(report.running, 100);
        assert_eq!(report.tasks_per_s, 50.0);
        assert_eq!(report.run_task_per_s, 1.0);
        assert_eq!(report.run_task.p50_ms, 2.0);
        assert_eq!(report.to_running.p50_ms, 50.0);
        assert_eq!(report.to_running.p99_ms, 99.0);
        assert_eq!(report.to_running.max_ms, 100.0);
    }
}
