//! Samples what the agent's tasks consume and reports it to the control
//! plane for CloudWatch (`AWS/ECS` CPUUtilization/MemoryUtilization and
//! Container Insights' task metrics); see [`model::agent_metrics`].
//!
//! Every interval ([`REPORT_INTERVAL_MS`]) the reporter takes the latest
//! [`TaskTarget`]s the agent loop published (each task with running
//! containers, its reservations and its containers' runtime ids), reads
//! every container's counters ([`ContainerRuntime::container_stats`], at
//! most [`MAX_CONCURRENT_SAMPLES`] at once), turns the difference from the
//! previous round's sample into figures ([`container_figures`], pure), sums
//! them per task ([`Sampler::round`], pure) and sends one
//! `PutTaskMetrics` ([`MetricsApi`]).
//!
//! - It runs in its own tokio task: sampling never holds up the agent loop,
//!   which only publishes targets through a `watch` channel.
//! - A container's first sample has nothing to compare with, and a CPU
//!   counter that went backwards means the container started again (Docker
//!   resets its counters): such a container has no CPU figure this round,
//!   and its task is left out of this round's report rather than reported
//!   with part of its CPU missing. Other counters that went backwards count
//!   from zero (what the container did since it started again).
//! - A failed or slow send (bounded by the interval) is logged and
//!   dropped: metrics are samples, and a lost report is a gap, as on AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecs_wire::{TaskDefinition, TaskOverride};
use futures::StreamExt as _;
use model::agent::{DesiredTask, LABEL_TASK_ARN};
use model::agent_metrics::{
    PutTaskMetricsRequest, PutTaskMetricsResponse, TaskMetrics, REPORT_INTERVAL_MS,
};
use runtime::{ContainerRuntime, ContainerState, ContainerStats};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::client::EcsClient;
use crate::clock::Clock;
use crate::AgentError;

/// At most this many `container_stats` calls are in flight at once.
pub const MAX_CONCURRENT_SAMPLES: usize = 8;

/// CPU units in one core, as ECS counts them.
const CPU_UNITS_PER_CORE: f64 = 1024.0;
const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;

/// The metrics call the agent makes: the seam between the reporter and the
/// control plane (a recording fake in tests).
#[async_trait]
pub trait MetricsApi: Send + Sync {
    async fn put_task_metrics(&self, request: &PutTaskMetricsRequest) -> Result<(), AgentError>;
}

#[async_trait]
impl MetricsApi for EcsClient {
    async fn put_task_metrics(&self, request: &PutTaskMetricsRequest) -> Result<(), AgentError> {
        let _: PutTaskMetricsResponse = self.call_agent_metrics("PutTaskMetrics", request).await?;
        Ok(())
    }
}

/// One task to sample: what the report says about it besides the figures,
/// and its running containers.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskTarget {
    pub task_arn: String,
    pub cluster_arn: String,
    /// `family:revision`.
    pub task_definition: String,
    pub cpu_reserved_units: f64,
    pub memory_reserved_mib: f64,
    /// Runtime ids of the task's running containers.
    pub container_ids: Vec<String>,
}

/// The task's reserved CPU units and MiB: the task-level `cpu`/`memory`
/// (overrides first), else the sums over its containers of `cpu`, and of
/// `memoryReservation` where set, else `memory` (container overrides
/// first). ECS's service utilization divides by "the CPU and memory that is
/// specified in the service's task definition"; that a soft limit
/// (`memoryReservation`) is preferred to the hard limit is how AWS's
/// service-utilization documentation has put it.
///
/// Guessed: a task with no CPU specified anywhere reserves 0 units (ECS
/// places it with none). The report carries the 0; what utilization that
/// makes is the control plane's decision (AWS does not document it).
pub fn task_reservations(definition: &TaskDefinition, overrides: &TaskOverride) -> (f64, f64) {
    let containers = definition
        .container_definitions
        .as_deref()
        .unwrap_or_default();
    let container_override = |name: Option<&str>| {
        overrides
            .container_overrides
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|o| o.name.is_some() && o.name.as_deref() == name)
    };
    let positive = |value: Option<i32>| value.filter(|v| *v > 0).map_or(0.0, f64::from);
    let task_cpu = overrides
        .cpu
        .as_deref()
        .or(definition.cpu.as_deref())
        .and_then(|cpu| model::task_size::parse_task_cpu_units(cpu).ok());
    let cpu_reserved_units = match task_cpu {
        Some(units) => f64::from(units),
        None => containers
            .iter()
            .map(|c| {
                let o = container_override(c.name.as_deref());
                positive(o.and_then(|o| o.cpu).or(c.cpu))
            })
            .sum(),
    };
    let task_memory = overrides
        .memory
        .as_deref()
        .or(definition.memory.as_deref())
        .and_then(|memory| model::task_size::parse_task_memory_mib(memory).ok());
    let memory_reserved_mib = match task_memory {
        Some(mib) => f64::from(mib),
        None => containers
            .iter()
            .map(|c| {
                let o = container_override(c.name.as_deref());
                let soft = o
                    .and_then(|o| o.memory_reservation)
                    .or(c.memory_reservation);
                let hard = o.and_then(|o| o.memory).or(c.memory);
                positive(soft.filter(|v| *v > 0).or(hard))
            })
            .sum(),
    };
    (cpu_reserved_units, memory_reserved_mib)
}

/// The tasks to sample: every desired task with running containers among
/// `observed` (matched by the task ARN label), in the desired order.
pub fn targets(desired: &[DesiredTask], observed: &[ContainerState]) -> Vec<TaskTarget> {
    let mut running: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for state in observed {
        if !state.status.is_running() {
            continue;
        }
        if let Some(task_arn) = state.labels.get(LABEL_TASK_ARN) {
            running
                .entry(task_arn.as_str())
                .or_default()
                .push(state.id.clone());
        }
    }
    desired
        .iter()
        .filter_map(|task| {
            let container_ids = running.remove(task.task_arn.as_str())?;
            let definition = &task.task_definition;
            let (cpu_reserved_units, memory_reserved_mib) =
                task_reservations(definition, &task.overrides);
            Some(TaskTarget {
                task_arn: task.task_arn.clone(),
                cluster_arn: task.cluster_arn.clone(),
                task_definition: format!(
                    "{}:{}",
                    definition.family.as_deref().unwrap_or_default(),
                    definition.revision.unwrap_or_default()
                ),
                cpu_reserved_units,
                memory_reserved_mib,
                container_ids,
            })
        })
        .collect()
}

/// One container's consumption between two samples.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerFigures {
    /// Average CPU units used between the samples; `None` when the CPU
    /// counter went backwards (the container started again) or the read
    /// time did not advance.
    pub cpu_used_units: Option<f64>,
    /// At the current sample.
    pub memory_used_mib: f64,
    pub network_rx_bytes: u64,
    pub network_tx_bytes: u64,
    pub storage_read_bytes: u64,
    pub storage_write_bytes: u64,
}

/// What the container consumed from `previous` to `current`.
pub fn container_figures(previous: &ContainerStats, current: &ContainerStats) -> ContainerFigures {
    // A counter below its previous value was reset by a new start: what it
    // shows now is what the container did since.
    let delta = |before: u64, now: u64| now.checked_sub(before).unwrap_or(now);
    let elapsed_ns = current.read_at_ns - previous.read_at_ns;
    let cpu_used_units =
        (current.cpu_used_ns >= previous.cpu_used_ns && elapsed_ns > 0).then(|| {
            (current.cpu_used_ns - previous.cpu_used_ns) as f64 / elapsed_ns as f64
                * CPU_UNITS_PER_CORE
        });
    ContainerFigures {
        cpu_used_units,
        memory_used_mib: current.memory_used_bytes as f64 / BYTES_PER_MIB,
        network_rx_bytes: delta(previous.network_rx_bytes, current.network_rx_bytes),
        network_tx_bytes: delta(previous.network_tx_bytes, current.network_tx_bytes),
        storage_read_bytes: delta(previous.storage_read_bytes, current.storage_read_bytes),
        storage_write_bytes: delta(previous.storage_write_bytes, current.storage_write_bytes),
    }
}

/// The previous round's samples: the pure state between rounds.
#[derive(Clone, Debug, Default)]
pub struct Sampler {
    previous: BTreeMap<String, ContainerStats>,
    previous_round_ms: Option<i64>,
}

impl Sampler {
    /// Turns this round's `samples` (by runtime id; containers that could
    /// not be sampled are absent) into the report for `targets`, and keeps
    /// them for the next round. `None` when no task has figures this round
    /// (the first round, or only new or restarted containers).
    pub fn round(
        &mut self,
        container_instance_arn: &str,
        targets: &[TaskTarget],
        samples: &BTreeMap<String, ContainerStats>,
        now_ms: i64,
    ) -> Option<PutTaskMetricsRequest> {
        let mut tasks = Vec::new();
        for target in targets {
            if let Some(metrics) = self.task_metrics(target, samples) {
                tasks.push(metrics);
            }
        }
        let interval_ms = self
            .previous_round_ms
            .map_or(0, |previous_ms| (now_ms - previous_ms).max(0));
        self.previous = samples.clone();
        self.previous_round_ms = Some(now_ms);
        (!tasks.is_empty()).then(|| PutTaskMetricsRequest {
            container_instance_arn: container_instance_arn.to_string(),
            timestamp: now_ms,
            interval_ms,
            tasks,
        })
    }

    fn task_metrics(
        &self,
        target: &TaskTarget,
        samples: &BTreeMap<String, ContainerStats>,
    ) -> Option<TaskMetrics> {
        let mut metrics = TaskMetrics {
            task_arn: target.task_arn.clone(),
            cluster_arn: target.cluster_arn.clone(),
            // The agent does not know the task's group; the control plane does.
            group: None,
            task_definition: target.task_definition.clone(),
            cpu_used_units: 0.0,
            cpu_reserved_units: target.cpu_reserved_units,
            memory_used_mib: 0.0,
            memory_reserved_mib: target.memory_reserved_mib,
            network_rx_bytes: 0,
            network_tx_bytes: 0,
            storage_read_bytes: 0,
            storage_write_bytes: 0,
            container_count: 0,
        };
        for id in &target.container_ids {
            let Some(current) = samples.get(id) else {
                continue; // stopped or gone since the targets were published
            };
            let figures = container_figures(self.previous.get(id)?, current);
            metrics.cpu_used_units += figures.cpu_used_units?;
            metrics.memory_used_mib += figures.memory_used_mib;
            metrics.network_rx_bytes += figures.network_rx_bytes;
            metrics.network_tx_bytes += figures.network_tx_bytes;
            metrics.storage_read_bytes += figures.storage_read_bytes;
            metrics.storage_write_bytes += figures.storage_write_bytes;
            metrics.container_count += 1;
        }
        (metrics.container_count > 0).then_some(metrics)
    }
}

/// Samples `ids` with `sample`, at most `max_in_flight` at once; the
/// successful samples by id (`None` answers and failures are left out;
/// failures are logged).
pub async fn sample_concurrently<F, Fut>(
    ids: BTreeSet<String>,
    max_in_flight: usize,
    sample: F,
) -> BTreeMap<String, ContainerStats>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<ContainerStats>, runtime::RuntimeError>>,
{
    futures::stream::iter(ids)
        .map(|id| {
            let sampled = sample(id.clone());
            async move { (id, sampled.await) }
        })
        .buffer_unordered(max_in_flight.max(1))
        .filter_map(|(id, sampled)| async move {
            match sampled {
                Ok(stats) => stats.map(|stats| (id, stats)),
                Err(error) => {
                    debug!(%error, container = %id, "cannot sample the container's stats");
                    None
                }
            }
        })
        .collect()
        .await
}

/// The reporter: the shell around [`Sampler`].
pub struct MetricsReporter {
    runtime: Arc<dyn ContainerRuntime>,
    api: Arc<dyn MetricsApi>,
    clock: Clock,
    container_instance_arn: String,
    send_timeout: Duration,
    sampler: Sampler,
}

impl MetricsReporter {
    pub fn new(
        runtime: Arc<dyn ContainerRuntime>,
        api: Arc<dyn MetricsApi>,
        clock: Clock,
        container_instance_arn: String,
    ) -> MetricsReporter {
        MetricsReporter {
            runtime,
            api,
            clock,
            container_instance_arn,
            send_timeout: Duration::from_millis(REPORT_INTERVAL_MS.unsigned_abs()),
            sampler: Sampler::default(),
        }
    }

    /// How long a send may take before it is given up (default: the
    /// report interval).
    pub fn with_send_timeout(mut self, send_timeout: Duration) -> MetricsReporter {
        self.send_timeout = send_timeout;
        self
    }

    /// One round: samples the targets' containers, and sends the report if
    /// there is one. Returns what was sent (whether or not it arrived).
    pub async fn report_once(&mut self, targets: &[TaskTarget]) -> Option<PutTaskMetricsRequest> {
        let ids: BTreeSet<String> = targets
            .iter()
            .flat_map(|target| target.container_ids.iter().cloned())
            .collect();
        let runtime = &self.runtime;
        let samples = sample_concurrently(ids, MAX_CONCURRENT_SAMPLES, |id| async move {
            runtime.container_stats(&id).await
        })
        .await;
        let request = self.sampler.round(
            &self.container_instance_arn,
            targets,
            &samples,
            self.clock.now_ms(),
        )?;
        match tokio::time::timeout(self.send_timeout, self.api.put_task_metrics(&request)).await {
            Ok(Ok(())) => debug!(tasks = request.tasks.len(), "task metrics reported"),
            Ok(Err(error)) => warn!(%error, "cannot report task metrics; dropping this sample"),
            Err(_) => warn!(
                timeout_ms = self.send_timeout.as_millis() as u64,
                "reporting task metrics timed out; dropping this sample"
            ),
        }
        Some(request)
    }

    /// Reports every `interval_ms` on the latest published targets, until
    /// the agent drops the sending side.
    pub async fn run(mut self, mut targets: watch::Receiver<Vec<TaskTarget>>, interval_ms: u64) {
        let mut ticks = tokio::time::interval(Duration::from_millis(interval_ms.max(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if targets.has_changed().is_err() {
                return; // the agent stopped
            }
            let current = targets.borrow_and_update().clone();
            self.report_once(&current).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use runtime::fake::FakeRuntime;
    use runtime::{ContainerSpec, ContainerStatus, RuntimeError};
    use serde_json::{json, Value};

    use super::*;

    const INSTANCE_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/5a1e";
    const CLUSTER_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:cluster/default";
    const MIB: u64 = 1024 * 1024;

    fn task_arn(id: &str) -> String {
        format!("arn:aws:ecs:us-east-1:000000000000:task/default/{id}")
    }

    fn stats(read_at_ms: i64, cpu_used_ms: u64, memory_used_mib: u64) -> ContainerStats {
        ContainerStats {
            read_at_ns: read_at_ms * 1_000_000,
            cpu_used_ns: cpu_used_ms * 1_000_000,
            memory_used_bytes: memory_used_mib * MIB,
            memory_limit_bytes: 512 * MIB,
            ..ContainerStats::default()
        }
    }

    fn with_io(
        mut stats: ContainerStats,
        rx: u64,
        tx: u64,
        read: u64,
        write: u64,
    ) -> ContainerStats {
        stats.network_rx_bytes = rx;
        stats.network_tx_bytes = tx;
        stats.storage_read_bytes = read;
        stats.storage_write_bytes = write;
        stats
    }

    #[test]
    fn figures_are_the_difference_between_samples() {
        fn check(previous: ContainerStats, current: ContainerStats, expected: ContainerFigures) {
            assert_eq!(container_figures(&previous, &current), expected);
        }
        // Half a core for 5 s, then 3 MiB in use and some I/O.
        check(
            with_io(stats(10_000, 1_000, 1), 100, 200, 300, 400),
            with_io(stats(15_000, 3_500, 3), 150, 260, 300, 1_400),
            ContainerFigures {
                cpu_used_units: Some(512.0),
                memory_used_mib: 3.0,
                network_rx_bytes: 50,
                network_tx_bytes: 60,
                storage_read_bytes: 0,
                storage_write_bytes: 1_000,
            },
        );
        // Two cores.
        check(
            stats(0, 0, 0),
            stats(1_000, 2_000, 0),
            ContainerFigures {
                cpu_used_units: Some(2_048.0),
                memory_used_mib: 0.0,
                network_rx_bytes: 0,
                network_tx_bytes: 0,
                storage_read_bytes: 0,
                storage_write_bytes: 0,
            },
        );
        // Started again: the CPU counter went backwards, so no CPU figure;
        // the other counters count from zero.
        check(
            with_io(stats(10_000, 9_000, 8), 1_000, 1_000, 1_000, 1_000),
            with_io(stats(15_000, 200, 2), 10, 20, 30, 40),
            ContainerFigures {
                cpu_used_units: None,
                memory_used_mib: 2.0,
                network_rx_bytes: 10,
                network_tx_bytes: 20,
                storage_read_bytes: 30,
                storage_write_bytes: 40,
            },
        );
        // The runtime read the same sample twice: no rate.
        assert_eq!(
            container_figures(&stats(10_000, 100, 1), &stats(10_000, 100, 1)).cpu_used_units,
            None
        );
    }

    fn definition(value: Value) -> TaskDefinition {
        serde_json::from_value(value).unwrap()
    }

    fn overrides(value: Value) -> TaskOverride {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn reservations_come_from_the_task_or_its_containers() {
        fn check(definition_json: Value, overrides_json: Value, expected: (f64, f64)) {
            assert_eq!(
                task_reservations(
                    &definition(definition_json.clone()),
                    &overrides(overrides_json)
                ),
                expected,
                "{definition_json}"
            );
        }
        let containers = json!([
            {"name": "web", "cpu": 256, "memory": 512, "memoryReservation": 128},
            {"name": "sidecar", "cpu": 128, "memory": 64},
            {"name": "nothing"}
        ]);
        // Task-level sizes win, in either notation.
        check(
            json!({"cpu": "1 vCPU", "memory": "2 GB", "containerDefinitions": containers}),
            json!({}),
            (1024.0, 2048.0),
        );
        // Task-level overrides win over the definition.
        check(
            json!({"cpu": "1024", "memory": "2048", "containerDefinitions": containers}),
            json!({"cpu": "512", "memory": "1024"}),
            (512.0, 1024.0),
        );
        // Otherwise the containers' sums: memoryReservation where set, else memory.
        check(
            json!({"containerDefinitions": containers}),
            json!({}),
            (384.0, 192.0),
        );
        // Container overrides replace the container's own values.
        check(
            json!({"containerDefinitions": containers}),
            json!({"containerOverrides": [
                {"name": "web", "cpu": 512, "memoryReservation": 256},
                {"name": "sidecar", "memory": 100}
            ]}),
            (640.0, 356.0),
        );
        // Nothing reserved anywhere (guessed: 0, see `task_reservations`).
        check(
            json!({"containerDefinitions": [{"name": "a"}]}),
            json!({}),
            (0.0, 0.0),
        );
    }

    fn desired_task(id: &str, definition_json: Value) -> DesiredTask {
        serde_json::from_value(json!({
            "taskArn": task_arn(id),
            "clusterArn": CLUSTER_ARN,
            "desiredStatus": "RUNNING",
            "lastStatus": "RUNNING",
            "taskDefinition": definition_json,
            "containers": [],
            "version": 1
        }))
        .unwrap()
    }

    fn web_definition() -> Value {
        json!({
            "family": "web", "revision": 3, "cpu": "512", "memory": "1024",
            "containerDefinitions": [{"name": "app"}, {"name": "proxy"}]
        })
    }

    fn observed(id: &str, task: &str, status: ContainerStatus) -> ContainerState {
        ContainerState {
            id: id.to_string(),
            name: id.to_string(),
            labels: BTreeMap::from([(LABEL_TASK_ARN.to_string(), task_arn(task))]),
            status,
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

    fn target(task: &str, container_ids: &[&str]) -> TaskTarget {
        TaskTarget {
            task_arn: task_arn(task),
            cluster_arn: CLUSTER_ARN.to_string(),
            task_definition: "web:3".to_string(),
            cpu_reserved_units: 512.0,
            memory_reserved_mib: 1024.0,
            container_ids: container_ids.iter().map(|id| id.to_string()).collect(),
        }
    }

    #[test]
    fn targets_are_desired_tasks_with_running_containers() {
        let desired = vec![
            desired_task("t1", web_definition()),
            desired_task("t2", web_definition()),
            desired_task("t3", web_definition()),
        ];
        let observed = vec![
            observed("c1", "t1", ContainerStatus::Running),
            observed("c2", "t1", ContainerStatus::Exited),
            observed("c3", "t1", ContainerStatus::Running),
            observed("c4", "t2", ContainerStatus::Created),
            observed("c5", "t3", ContainerStatus::Paused),
            // Not one of this agent's desired tasks.
            observed("c6", "other", ContainerStatus::Running),
        ];
        assert_eq!(
            targets(&desired, &observed),
            vec![target("t1", &["c1", "c3"]), target("t3", &["c5"])]
        );
    }

    fn samples(entries: &[(&str, ContainerStats)]) -> BTreeMap<String, ContainerStats> {
        entries
            .iter()
            .map(|(id, stats)| (id.to_string(), stats.clone()))
            .collect()
    }

    #[test]
    fn rounds_sum_containers_per_task_and_skip_tasks_without_a_cpu_figure() {
        let mut sampler = Sampler::default();
        let targets = vec![target("t1", &["a", "b"]), target("t2", &["c"])];
        // The first round has nothing to compare with.
        let first = samples(&[
            ("a", with_io(stats(0, 0, 1), 10, 10, 10, 10)),
            ("b", stats(0, 1_000, 2)),
            ("c", stats(0, 5_000, 4)),
        ]);
        assert_eq!(sampler.round(INSTANCE_ARN, &targets, &first, 1_000), None);

        // t1: a used a quarter core, b half a core; c was restarted.
        let second = samples(&[
            ("a", with_io(stats(4_000, 1_000, 3), 110, 30, 10, 4_106)),
            ("b", stats(4_000, 3_000, 5)),
            ("c", stats(4_000, 100, 1)),
        ]);
        let report = sampler
            .round(INSTANCE_ARN, &targets, &second, 5_000)
            .expect("t1 has figures");
        assert_eq!(
            report,
            PutTaskMetricsRequest {
                container_instance_arn: INSTANCE_ARN.to_string(),
                timestamp: 5_000,
                interval_ms: 4_000,
                tasks: vec![TaskMetrics {
                    task_arn: task_arn("t1"),
                    cluster_arn: CLUSTER_ARN.to_string(),
                    group: None,
                    task_definition: "web:3".to_string(),
                    cpu_used_units: 256.0 + 512.0,
                    cpu_reserved_units: 512.0,
                    memory_used_mib: 8.0,
                    memory_reserved_mib: 1024.0,
                    network_rx_bytes: 100,
                    network_tx_bytes: 20,
                    storage_read_bytes: 0,
                    storage_write_bytes: 4_096,
                    container_count: 2,
                }],
            }
        );

        // b stopped (no sample); c's counters grow again.
        let third = samples(&[("a", stats(8_000, 1_000, 3)), ("c", stats(8_000, 4_100, 1))]);
        let report = sampler
            .round(INSTANCE_ARN, &targets, &third, 9_000)
            .expect("both tasks have figures");
        let figures: Vec<(String, f64, u32)> = report
            .tasks
            .iter()
            .map(|t| (t.task_arn.clone(), t.cpu_used_units, t.container_count))
            .collect();
        assert_eq!(
            figures,
            vec![(task_arn("t1"), 0.0, 1), (task_arn("t2"), 1024.0, 1)]
        );

        // A container new to the task holds the task back for one round.
        let grown = vec![target("t1", &["a", "d"])];
        let fourth = samples(&[("a", stats(12_000, 2_000, 3)), ("d", stats(12_000, 0, 1))]);
        assert_eq!(sampler.round(INSTANCE_ARN, &grown, &fourth, 13_000), None);
        let fifth = samples(&[
            ("a", stats(16_000, 2_000, 3)),
            ("d", stats(16_000, 4_000, 1)),
        ]);
        let report = sampler.round(INSTANCE_ARN, &grown, &fifth, 17_000).unwrap();
        assert_eq!(report.tasks[0].cpu_used_units, 1024.0);
        assert_eq!(report.tasks[0].container_count, 2);
    }

    #[tokio::test]
    async fn sampling_is_concurrent_but_bounded() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most_in_flight = Arc::new(AtomicUsize::new(0));
        let ids: BTreeSet<String> = (0..20).map(|n| format!("c{n:02}")).collect();
        let sampled = sample_concurrently(ids, 3, |id| {
            let in_flight = in_flight.clone();
            let most_in_flight = most_in_flight.clone();
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most_in_flight.fetch_max(now, Ordering::SeqCst);
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
                match id.as_str() {
                    "c03" => Ok(None),
                    "c04" => Err(RuntimeError::Other {
                        message: "boom".into(),
                    }),
                    _ => Ok(Some(stats(0, 0, 0))),
                }
            }
        })
        .await;
        assert_eq!(most_in_flight.load(Ordering::SeqCst), 3);
        assert_eq!(sampled.len(), 18, "None and failures are left out");
        assert!(!sampled.contains_key("c03") && !sampled.contains_key("c04"));
    }

    /// Records what it is sent; fails while `failing` is set.
    #[derive(Default)]
    struct FakeMetrics {
        sent: Mutex<Vec<PutTaskMetricsRequest>>,
        failing: std::sync::atomic::AtomicBool,
        notify: Mutex<Option<tokio::sync::mpsc::UnboundedSender<()>>>,
    }

    #[async_trait]
    impl MetricsApi for FakeMetrics {
        async fn put_task_metrics(
            &self,
            request: &PutTaskMetricsRequest,
        ) -> Result<(), AgentError> {
            self.sent.lock().unwrap().push(request.clone());
            if let Some(notify) = &*self.notify.lock().unwrap() {
                let _ = notify.send(());
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(AgentError::Transport {
                    endpoint: "http://127.0.0.1:1".into(),
                    message: "connection refused".into(),
                });
            }
            Ok(())
        }
    }

    /// A running container of task `task` in the fake runtime; its id.
    async fn run_container(runtime: &FakeRuntime, name: &str, task: &str) -> String {
        let mut spec = ContainerSpec::new(name, "app:1");
        spec.labels.insert(LABEL_TASK_ARN.into(), task_arn(task));
        let id = runtime.create_container(&spec).await.unwrap();
        runtime.start_container(&id).await.unwrap();
        id
    }

    #[tokio::test]
    async fn the_reporter_samples_the_runtime_and_drops_failed_sends() {
        let runtime = FakeRuntime::new();
        runtime.add_image("app:1");
        let app = run_container(&runtime, "app", "t1").await;
        let proxy = run_container(&runtime, "proxy", "t1").await;
        let metrics = Arc::new(FakeMetrics::default());
        let clock_source = runtime.clone();
        let mut reporter = MetricsReporter::new(
            Arc::new(runtime.clone()),
            metrics.clone(),
            Clock::from_fn(move || clock_source.now_ms()),
            INSTANCE_ARN.to_string(),
        );
        let observed = runtime.containers();
        let desired = vec![desired_task("t1", web_definition())];
        let targets = targets(&desired, &observed);

        runtime.set_now_ms(10_000);
        runtime.set_stats(&app, stats(10_000, 1_000, 10));
        runtime.set_stats(&proxy, stats(10_000, 0, 5));
        assert_eq!(reporter.report_once(&targets).await, None);
        assert!(
            metrics.sent.lock().unwrap().is_empty(),
            "nothing to send yet"
        );

        runtime.set_now_ms(15_000);
        runtime.set_stats(&app, with_io(stats(15_000, 6_000, 12), 500, 0, 0, 0));
        runtime.set_stats(&proxy, stats(15_000, 2_500, 6));
        let sent = reporter.report_once(&targets).await.expect("a report");
        assert_eq!(*metrics.sent.lock().unwrap(), vec![sent.clone()]);
        assert_eq!((sent.timestamp, sent.interval_ms), (15_000, 5_000));
        let task = &sent.tasks[0];
        assert_eq!(task.task_definition, "web:3");
        assert_eq!(task.cpu_used_units, 1024.0 + 512.0);
        assert_eq!(task.cpu_reserved_units, 512.0);
        assert_eq!(task.memory_used_mib, 18.0);
        assert_eq!(task.memory_reserved_mib, 1024.0);
        assert_eq!(task.network_rx_bytes, 500);
        assert_eq!(task.container_count, 2);

        // The control plane is down: the report is dropped, the next round goes on.
        metrics.failing.store(true, Ordering::SeqCst);
        runtime.set_now_ms(20_000);
        runtime.set_stats(&app, stats(20_000, 6_000, 12));
        runtime.set_stats(&proxy, stats(20_000, 2_500, 6));
        assert!(reporter.report_once(&targets).await.is_some());
        metrics.failing.store(false, Ordering::SeqCst);

        // The proxy stops: the task is reported with the app alone.
        runtime.exit(&proxy, 0);
        runtime.set_now_ms(25_000);
        runtime.set_stats(&app, stats(25_000, 8_500, 12));
        let sent = reporter.report_once(&targets).await.expect("a report");
        assert_eq!(sent.tasks[0].container_count, 1);
        assert_eq!(sent.tasks[0].cpu_used_units, 512.0);
        assert_eq!(metrics.sent.lock().unwrap().len(), 3);
    }

    /// What the test server saw of one request.
    struct Seen {
        target: String,
        authorization: String,
        body: Value,
    }

    /// Serves one request on 127.0.0.1 with `status` and `answer`.
    async fn one_request_server(
        status: u16,
        answer: &'static str,
    ) -> (String, tokio::sync::oneshot::Receiver<Seen>) {
        use http_body_util::BodyExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let seen_tx = Mutex::new(Some(seen_tx));
            let service =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let seen_tx = seen_tx.lock().unwrap().take();
                    async move {
                        let header = |name: &str| {
                            request
                                .headers()
                                .get(name)
                                .map_or(String::new(), |value| value.to_str().unwrap().to_string())
                        };
                        let target = header("x-amz-target");
                        let authorization = header("authorization");
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        if let Some(seen_tx) = seen_tx {
                            let _ = seen_tx.send(Seen {
                                target,
                                authorization,
                                body: serde_json::from_slice(&body).unwrap(),
                            });
                        }
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .status(status)
                                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                    answer.as_bytes(),
                                )))
                                .unwrap(),
                        )
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                .await;
        });
        (url, seen_rx)
    }

    fn client(url: &str) -> EcsClient {
        EcsClient::new(
            crate::client::Endpoint::parse(url).unwrap(),
            crate::Credentials {
                access_key_id: "AKIDAGENTTEST".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            },
            "eu-west-3".into(),
        )
    }

    fn a_report() -> PutTaskMetricsRequest {
        PutTaskMetricsRequest {
            container_instance_arn: INSTANCE_ARN.to_string(),
            timestamp: 5_000,
            interval_ms: 5_000,
            tasks: vec![TaskMetrics {
                task_arn: task_arn("t1"),
                cluster_arn: CLUSTER_ARN.to_string(),
                group: None,
                task_definition: "web:3".to_string(),
                cpu_used_units: 100.0,
                cpu_reserved_units: 512.0,
                memory_used_mib: 8.0,
                memory_reserved_mib: 1024.0,
                network_rx_bytes: 1,
                network_tx_bytes: 2,
                storage_read_bytes: 3,
                storage_write_bytes: 4,
                container_count: 1,
            }],
        }
    }

    #[tokio::test]
    async fn the_client_sends_put_task_metrics_signed_for_monitoring() {
        let (url, seen) = one_request_server(200, "{}").await;
        client(&url).put_task_metrics(&a_report()).await.unwrap();
        let seen = seen.await.unwrap();
        assert_eq!(seen.target, "BerthAgentMetrics_20261207.PutTaskMetrics");
        assert!(
            seen.authorization
                .contains("/eu-west-3/monitoring/aws4_request"),
            "{}",
            seen.authorization
        );
        assert_eq!(seen.body, serde_json::to_value(a_report()).unwrap());
        assert_eq!(seen.body["tasks"][0]["cpuUsedUnits"], json!(100.0));

        // An empty 200 answer is fine; an error answer is the API's error.
        let (url, _seen) = one_request_server(200, "").await;
        client(&url).put_task_metrics(&a_report()).await.unwrap();
        let (url, _seen) = one_request_server(
            400,
            r#"{"__type":"InvalidParameterValueException","message":"no such instance"}"#,
        )
        .await;
        let error = client(&url)
            .put_task_metrics(&a_report())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, AgentError::Api { code, .. } if code == "InvalidParameterValueException"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn the_loop_reports_every_interval_on_the_latest_targets() {
        let runtime = FakeRuntime::new();
        runtime.add_image("app:1");
        let app = run_container(&runtime, "app", "t1").await;
        let metrics = Arc::new(FakeMetrics::default());
        let (notify, mut notified) = tokio::sync::mpsc::unbounded_channel();
        *metrics.notify.lock().unwrap() = Some(notify);
        let clock_source = runtime.clone();
        let reporter = MetricsReporter::new(
            Arc::new(runtime.clone()),
            metrics.clone(),
            Clock::from_fn(move || clock_source.now_ms()),
            INSTANCE_ARN.to_string(),
        );
        let (targets_tx, targets_rx) = watch::channel(Vec::new());
        let looping = tokio::spawn(reporter.run(targets_rx, 10));
        // The fake's counters grow by a core's worth on every read.
        let desired = vec![desired_task("t1", web_definition())];
        targets_tx.send_replace(targets(&desired, &runtime.containers()));
        let feeder = {
            let runtime = runtime.clone();
            let app = app.clone();
            tokio::spawn(async move {
                for step in 1..i64::MAX {
                    runtime.set_now_ms(step * 1_000);
                    runtime.set_stats(&app, stats(step * 1_000, (step * 1_000) as u64, 1));
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            })
        };
        tokio::time::timeout(Duration::from_secs(10), notified.recv())
            .await
            .expect("a report within 10 s")
            .unwrap();
        feeder.abort();
        let sent = metrics.sent.lock().unwrap()[0].clone();
        assert_eq!(sent.tasks.len(), 1);
        assert_eq!(sent.tasks[0].cpu_used_units, 1024.0);
        // The agent stops: the loop ends.
        drop(targets_tx);
        tokio::time::timeout(Duration::from_secs(10), looping)
            .await
            .expect("the loop ends once the agent is gone")
            .unwrap();
    }
}
