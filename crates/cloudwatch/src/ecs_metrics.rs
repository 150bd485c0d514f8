//! The metrics Berth publishes itself: `AWS/ECS` (CPUUtilization, MemoryUtilization per
//! cluster and service; CPUReservation, MemoryReservation per cluster) and, for clusters
//! with `containerInsights` enabled, `ECS/ContainerInsights` (CpuUtilized, CpuReserved,
//! MemoryUtilized, MemoryReserved, NetworkRxBytes, NetworkTxBytes, StorageReadBytes,
//! StorageWriteBytes per cluster, service and task definition family; RunningTaskCount,
//! PendingTaskCount, DesiredTaskCount, DeploymentCount per service; ServiceCount,
//! ContainerInstanceCount, TaskCount per cluster).
//!
//! Utilization is computed as AWS computes it: CPU units (or MiB) used by the tasks over
//! what they reserve, times 100, for a service; over what the container instances
//! registered for a cluster. Each agent report (every 5 s) gives one sample per service
//! weighted by the number of its tasks on that instance, so a period's `Average` is the
//! service's utilization over all its tasks, whichever instances they run on.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use api::{ApiError, RequestContext};
use async_trait::async_trait;
use metric_store::{MetricKey, MetricStore, Sample, StatisticSet};
use model::agent_metrics::{PutTaskMetricsRequest, TaskMetrics};
use store::Store;

use crate::error;
use crate::metrics::scoped;

/// What parts of Berth publish their `AWS/*` metrics through (the agents' reports, the
/// load balancers' traffic, the cluster pass, CloudWatch Logs' metric filters).
#[derive(Clone)]
pub struct Publisher {
    metrics: Arc<dyn MetricStore>,
}

impl Publisher {
    pub fn new(metrics: Arc<dyn MetricStore>) -> Self {
        Publisher { metrics }
    }

    /// Stores `samples` (durable on return), and shows Berth's own (`AWS/…`, `ECS/…`) at
    /// `GET /metrics` too.
    pub async fn publish(&self, samples: Vec<Sample>) -> Result<(), ApiError> {
        if samples.is_empty() {
            return Ok(());
        }
        expose(&samples);
        let metrics = Arc::clone(&self.metrics);
        tokio::task::spawn_blocking(move || metrics.append(&samples))
            .await
            .map_err(|err| error::internal(format!("metric store task failed: {err}")))?
            .map_err(error::from_metric_store)
    }
}

/// Prometheus' view of Berth's own metrics: the load balancer's counts as counters (each
/// sample is the count since the previous report), everything else as gauges holding the
/// latest period's average. The region becomes a `Region` label.
fn expose(samples: &[Sample]) {
    for sample in samples {
        let Some((region, namespace)) = sample.key.namespace.split_once('/') else {
            continue;
        };
        if !(namespace.starts_with("AWS/") || namespace.starts_with("ECS/")) {
            continue;
        }
        let mut labels = sample.key.dimensions.clone();
        labels.push(("Region".to_string(), region.to_string()));
        let name = sample.key.metric_name.as_str();
        let gauge = !namespace.starts_with("AWS/ApplicationELB")
            || sample.unit != "Count"
            || matches!(
                name,
                "HealthyHostCount" | "UnHealthyHostCount" | "ActiveConnectionCount"
            );
        if gauge {
            instruments::observe_aws_gauge(
                namespace,
                name,
                &labels,
                sample.stats.sum / sample.stats.sample_count,
            );
        } else {
            instruments::add_aws_count(namespace, name, &labels, sample.stats.sum);
        }
    }
}

/// CloudWatch Logs' metric filters publish through the same publisher.
#[async_trait]
impl logs::MetricFilterSink for Publisher {
    async fn publish(
        &self,
        region: &str,
        datapoints: Vec<logs::MetricFilterDatapoint>,
    ) -> Result<(), String> {
        let samples = datapoints
            .into_iter()
            .map(|point| {
                let values = point.values;
                let stats = StatisticSet {
                    sample_count: values.iter().map(|(_, count)| count).sum(),
                    sum: values.iter().map(|(value, count)| value * count).sum(),
                    minimum: values
                        .iter()
                        .map(|(value, _)| *value)
                        .fold(f64::INFINITY, f64::min),
                    maximum: values
                        .iter()
                        .map(|(value, _)| *value)
                        .fold(f64::NEG_INFINITY, f64::max),
                };
                Sample {
                    key: MetricKey {
                        namespace: scoped(region, &point.namespace),
                        metric_name: point.metric_name,
                        dimensions: point.dimensions,
                    },
                    unit: point.unit,
                    timestamp_ms: point.timestamp_ms,
                    storage_resolution_s: 60,
                    stats,
                    values,
                }
            })
            .collect();
        Publisher::publish(self, samples)
            .await
            .map_err(|err| err.to_string())
    }
}

/// One sample of `value` counted `count` times, standard resolution unless `high_resolution`.
pub fn sample(
    namespace: &str,
    metric_name: &str,
    dimensions: &[(&str, &str)],
    unit: &str,
    timestamp_ms: i64,
    value: f64,
    count: f64,
) -> Sample {
    let mut dimensions: Vec<(String, String)> = dimensions
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    dimensions.sort();
    Sample {
        key: MetricKey {
            namespace: namespace.to_string(),
            metric_name: metric_name.to_string(),
            dimensions,
        },
        unit: unit.to_string(),
        timestamp_ms,
        storage_resolution_s: 1,
        stats: StatisticSet {
            sample_count: count,
            sum: value * count,
            minimum: value,
            maximum: value,
        },
        values: vec![(value, count)],
    }
}

const ECS: &str = "AWS/ECS";
const INSIGHTS: &str = "ECS/ContainerInsights";

/// The Berth-only JSON service agents report task usage through (see
/// `model::agent_metrics`).
pub struct AgentMetrics {
    store: Arc<dyn Store>,
    publisher: Publisher,
    /// Task ARN → its group; a task's group never changes. Bounded: cleared when full.
    groups: Mutex<HashMap<String, Option<String>>>,
}

const MAX_CACHED_GROUPS: usize = 100_000;

impl AgentMetrics {
    pub fn new(store: Arc<dyn Store>, publisher: Publisher) -> Self {
        AgentMetrics {
            store,
            publisher,
            groups: Mutex::new(HashMap::new()),
        }
    }

    async fn put_task_metrics(
        &self,
        ctx: &RequestContext,
        mut report: PutTaskMetricsRequest,
    ) -> Result<(), ApiError> {
        let Some((cluster_name, instance_id)) = instance_of_arn(&report.container_instance_arn)
        else {
            return Err(error::invalid_value_for(
                &report.container_instance_arn,
                "containerInstanceArn",
            ));
        };
        let instance = api::metrics_view::container_instance(
            &*self.store,
            &ctx.region,
            &cluster_name,
            &instance_id,
        )
        .await?
        .ok_or_else(|| {
            error::not_found(format!(
                "Container instance {} is not registered.",
                report.container_instance_arn
            ))
        })?;
        for task in &mut report.tasks {
            if task.group.is_none() {
                task.group = self.group_of(ctx, &cluster_name, &task.task_arn).await?;
            }
        }
        let insights = self.container_insights(ctx, &cluster_name).await?;
        let samples = report_samples(
            &ctx.region,
            &report,
            &cluster_name,
            instance.registered.cpu_units as f64,
            instance.registered.memory_mib as f64,
            insights,
        );
        self.publisher.publish(samples).await
    }

    async fn group_of(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        task_arn: &str,
    ) -> Result<Option<String>, ApiError> {
        if let Some(group) = self.groups.lock().expect("groups").get(task_arn) {
            return Ok(group.clone());
        }
        let task_id = task_arn.rsplit('/').next().unwrap_or_default();
        let group = api::metrics_view::task(&*self.store, &ctx.region, cluster_name, task_id)
            .await?
            .and_then(|task| task.group);
        let mut groups = self.groups.lock().expect("groups");
        if groups.len() >= MAX_CACHED_GROUPS {
            groups.clear();
        }
        groups.insert(task_arn.to_string(), group.clone());
        Ok(group)
    }

    async fn container_insights(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
    ) -> Result<bool, ApiError> {
        let cluster: Option<model::cluster::Cluster> =
            api::records::get(&*self.store, &api::keys::cluster(&ctx.region, cluster_name))
                .await?
                .map(|found| found.value);
        Ok(cluster.is_some_and(|cluster| {
            cluster.settings.iter().any(|setting| {
                setting.name == "containerInsights"
                    && matches!(setting.value.as_str(), "enabled" | "enhanced")
            })
        }))
    }
}

/// `(cluster name, id)` of `arn:aws:ecs:<region>:<account>:container-instance/<cluster>/<id>`.
fn instance_of_arn(arn: &str) -> Option<(String, String)> {
    let resource = arn.split(':').nth(5)?;
    let (cluster, id) = resource
        .strip_prefix("container-instance/")?
        .split_once('/')?;
    (!cluster.is_empty() && !id.is_empty()).then(|| (cluster.to_string(), id.to_string()))
}

#[derive(Default)]
struct Totals {
    tasks: f64,
    cpu_used: f64,
    cpu_reserved: f64,
    memory_used: f64,
    memory_reserved: f64,
    rx: f64,
    tx: f64,
    read: f64,
    write: f64,
}

impl Totals {
    fn add(&mut self, task: &TaskMetrics) {
        self.tasks += 1.0;
        self.cpu_used += task.cpu_used_units;
        self.cpu_reserved += task.cpu_reserved_units;
        self.memory_used += task.memory_used_mib;
        self.memory_reserved += task.memory_reserved_mib;
        self.rx += task.network_rx_bytes as f64;
        self.tx += task.network_tx_bytes as f64;
        self.read += task.storage_read_bytes as f64;
        self.write += task.storage_write_bytes as f64;
    }
}

/// The samples of one agent report (pure). Only the tasks of `cluster_name` (the
/// instance's cluster) count.
pub(crate) fn report_samples(
    region: &str,
    report: &PutTaskMetricsRequest,
    cluster_name: &str,
    registered_cpu_units: f64,
    registered_memory_mib: f64,
    container_insights: bool,
) -> Vec<Sample> {
    let ecs = scoped(region, ECS);
    let insights_namespace = scoped(region, INSIGHTS);
    let t = report.timestamp;
    let interval_s = (report.interval_ms.max(1) as f64) / 1000.0;
    let mut cluster = Totals::default();
    let mut services: BTreeMap<&str, Totals> = BTreeMap::new();
    // A service's utilization is one value per task (AWS: Average over the tasks,
    // Minimum and Maximum the least and most loaded task): CPU and memory, in percent.
    let mut utilization: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut families: BTreeMap<&str, Totals> = BTreeMap::new();
    let cluster_suffix = format!("cluster/{cluster_name}");
    for task in &report.tasks {
        if !task.cluster_arn.ends_with(&cluster_suffix) {
            continue;
        }
        cluster.add(task);
        if let Some(service) = task
            .group
            .as_deref()
            .and_then(|g| g.strip_prefix("service:"))
        {
            services.entry(service).or_default().add(task);
            let (cpu, memory) = utilization.entry(service).or_default();
            if task.cpu_reserved_units > 0.0 {
                cpu.push(100.0 * task.cpu_used_units / task.cpu_reserved_units);
            }
            if task.memory_reserved_mib > 0.0 {
                memory.push(100.0 * task.memory_used_mib / task.memory_reserved_mib);
            }
        }
        let family = task.task_definition.split(':').next().unwrap_or_default();
        families.entry(family).or_default().add(task);
    }
    let mut out = Vec::new();
    let cluster_dims = [("ClusterName", cluster_name)];
    if registered_cpu_units > 0.0 {
        out.push(sample(
            &ecs,
            "CPUUtilization",
            &cluster_dims,
            "Percent",
            t,
            100.0 * cluster.cpu_used / registered_cpu_units,
            1.0,
        ));
    }
    if registered_memory_mib > 0.0 {
        out.push(sample(
            &ecs,
            "MemoryUtilization",
            &cluster_dims,
            "Percent",
            t,
            100.0 * cluster.memory_used / registered_memory_mib,
            1.0,
        ));
    }
    for (service, (cpu, memory)) in &utilization {
        let dims = [("ClusterName", cluster_name), ("ServiceName", *service)];
        out.extend(per_task_sample(&ecs, "CPUUtilization", &dims, t, cpu));
        out.extend(per_task_sample(&ecs, "MemoryUtilization", &dims, t, memory));
    }
    if container_insights {
        let mut insights = |dims: &[(&str, &str)], totals: &Totals| {
            out.push(sample(
                &insights_namespace,
                "CpuUtilized",
                dims,
                "None",
                t,
                totals.cpu_used,
                1.0,
            ));
            out.push(sample(
                &insights_namespace,
                "CpuReserved",
                dims,
                "None",
                t,
                totals.cpu_reserved,
                1.0,
            ));
            out.push(sample(
                &insights_namespace,
                "MemoryUtilized",
                dims,
                "Megabytes",
                t,
                totals.memory_used,
                1.0,
            ));
            out.push(sample(
                &insights_namespace,
                "MemoryReserved",
                dims,
                "Megabytes",
                t,
                totals.memory_reserved,
                1.0,
            ));
            out.push(sample(
                &insights_namespace,
                "NetworkRxBytes",
                dims,
                "Bytes/Second",
                t,
                totals.rx / interval_s,
                1.0,
            ));
            out.push(sample(
                &insights_namespace,
                "NetworkTxBytes",
                dims,
                "Bytes/Second",
                t,
                totals.tx / interval_s,
                1.0,
            ));
            out.push(sample(
                &insights_namespace,
                "StorageReadBytes",
                dims,
                "Bytes",
                t,
                totals.read,
                1.0,
            ));
            out.push(sample(
                &insights_namespace,
                "StorageWriteBytes",
                dims,
                "Bytes",
                t,
                totals.write,
                1.0,
            ));
        };
        insights(&cluster_dims, &cluster);
        for (service, totals) in &services {
            insights(
                &[("ClusterName", cluster_name), ("ServiceName", *service)],
                totals,
            );
        }
        for (family, totals) in &families {
            insights(
                &[
                    ("ClusterName", cluster_name),
                    ("TaskDefinitionFamily", *family),
                ],
                totals,
            );
        }
    }
    out
}

/// One sample holding each task's value (count 1 each), or none without tasks.
fn per_task_sample(
    namespace: &str,
    metric_name: &str,
    dimensions: &[(&str, &str)],
    timestamp_ms: i64,
    values: &[f64],
) -> Option<Sample> {
    let first = *values.first()?;
    let mut out = sample(
        namespace,
        metric_name,
        dimensions,
        "Percent",
        timestamp_ms,
        first,
        1.0,
    );
    out.stats = StatisticSet {
        sample_count: values.len() as f64,
        sum: values.iter().sum(),
        minimum: values.iter().copied().fold(f64::INFINITY, f64::min),
        maximum: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    };
    out.values = values.iter().map(|value| (*value, 1.0)).collect();
    Some(out)
}

/// The cluster pass's samples (pure): reservations from the container instances, and the
/// Container Insights counts from services and instances.
pub(crate) fn cluster_samples(
    region: &str,
    view: &api::metrics_view::ClusterView,
    now_ms: i64,
) -> Vec<Sample> {
    let ecs = scoped(region, ECS);
    let insights_namespace = scoped(region, INSIGHTS);
    let name = view.cluster_name.as_str();
    let dims = [("ClusterName", name)];
    let mut out = Vec::new();
    let active: Vec<_> = view
        .instances
        .iter()
        .filter(|i| i.status == model::container_instance::ContainerInstanceStatus::Active)
        .collect();
    let registered_cpu: i64 = active.iter().map(|i| i.registered.cpu_units).sum();
    let remaining_cpu: i64 = active.iter().map(|i| i.remaining.cpu_units).sum();
    let registered_memory: i64 = active.iter().map(|i| i.registered.memory_mib).sum();
    let remaining_memory: i64 = active.iter().map(|i| i.remaining.memory_mib).sum();
    if registered_cpu > 0 {
        out.push(sample(
            &ecs,
            "CPUReservation",
            &dims,
            "Percent",
            now_ms,
            100.0 * (registered_cpu - remaining_cpu) as f64 / registered_cpu as f64,
            1.0,
        ));
    }
    if registered_memory > 0 {
        out.push(sample(
            &ecs,
            "MemoryReservation",
            &dims,
            "Percent",
            now_ms,
            100.0 * (registered_memory - remaining_memory) as f64 / registered_memory as f64,
            1.0,
        ));
    }
    if view.container_insights_on() {
        let tasks: u32 = view
            .instances
            .iter()
            .flat_map(|i| i.task_groups.values())
            .sum();
        out.push(sample(
            &insights_namespace,
            "ContainerInstanceCount",
            &dims,
            "Count",
            now_ms,
            active.len() as f64,
            1.0,
        ));
        out.push(sample(
            &insights_namespace,
            "ServiceCount",
            &dims,
            "Count",
            now_ms,
            view.services.len() as f64,
            1.0,
        ));
        out.push(sample(
            &insights_namespace,
            "TaskCount",
            &dims,
            "Count",
            now_ms,
            f64::from(tasks),
            1.0,
        ));
        for service in &view.services {
            let dims = [
                ("ClusterName", name),
                ("ServiceName", service.service_name.as_str()),
            ];
            out.push(sample(
                &insights_namespace,
                "DesiredTaskCount",
                &dims,
                "Count",
                now_ms,
                f64::from(service.desired_count),
                1.0,
            ));
            out.push(sample(
                &insights_namespace,
                "RunningTaskCount",
                &dims,
                "Count",
                now_ms,
                f64::from(service.running_count),
                1.0,
            ));
            out.push(sample(
                &insights_namespace,
                "PendingTaskCount",
                &dims,
                "Count",
                now_ms,
                f64::from(service.pending_count),
                1.0,
            ));
            out.push(sample(
                &insights_namespace,
                "DeploymentCount",
                &dims,
                "Count",
                now_ms,
                f64::from(service.deployment_count),
                1.0,
            ));
        }
    }
    out
}

/// Publishes every region's cluster samples (`berth` runs it every few seconds).
pub async fn publish_cluster_metrics(
    store: &dyn Store,
    publisher: &Publisher,
    now_ms: i64,
) -> Result<usize, ApiError> {
    let mut samples = Vec::new();
    for region in crate::evaluator::regions_under(store, "/ecs/").await? {
        for view in api::metrics_view::clusters(store, &region).await? {
            samples.extend(cluster_samples(&region, &view, now_ms));
        }
    }
    let count = samples.len();
    publisher.publish(samples).await?;
    Ok(count)
}

#[async_trait]
impl control_plane::JsonService for AgentMetrics {
    fn target_prefix(&self) -> &str {
        model::agent_metrics::TARGET_PREFIX
    }
    fn signing_name(&self) -> &str {
        model::agent_metrics::SIGNING_NAME
    }
    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        match operation {
            "PutTaskMetrics" => {
                self.put_task_metrics(ctx, api::parse_unchecked(body)?)
                    .await?;
                api::respond(model::agent_metrics::PutTaskMetricsResponse {})
            }
            other => Err(ApiError::unknown_operation(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(arn: &str, group: Option<&str>, used: f64, reserved: f64) -> TaskMetrics {
        TaskMetrics {
            task_arn: arn.into(),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/prod".into(),
            group: group.map(str::to_string),
            task_definition: "web:3".into(),
            cpu_used_units: used,
            cpu_reserved_units: reserved,
            memory_used_mib: used / 2.0,
            memory_reserved_mib: reserved / 2.0,
            network_rx_bytes: 5000,
            network_tx_bytes: 1000,
            storage_read_bytes: 0,
            storage_write_bytes: 0,
            container_count: 1,
        }
    }

    fn find<'a>(samples: &'a [Sample], name: &str, dims: &[(&str, &str)]) -> Option<&'a Sample> {
        samples.iter().find(|s| {
            s.key.metric_name == name
                && s.key.dimensions.len() == dims.len()
                && dims
                    .iter()
                    .all(|(n, v)| s.key.dimensions.iter().any(|(a, b)| a == n && b == v))
        })
    }

    #[test]
    fn utilization_is_used_over_reserved_weighted_by_tasks() {
        let report = PutTaskMetricsRequest {
            container_instance_arn:
                "arn:aws:ecs:us-east-1:000000000000:container-instance/prod/abc".into(),
            timestamp: 1_000_000,
            interval_ms: 5_000,
            tasks: vec![
                task("t1", Some("service:web"), 512.0, 256.0),
                task("t2", Some("service:web"), 0.0, 256.0),
                task("t3", None, 256.0, 1024.0),
            ],
        };
        let samples = report_samples("us-east-1", &report, "prod", 2048.0, 4096.0, false);
        let web = find(
            &samples,
            "CPUUtilization",
            &[("ClusterName", "prod"), ("ServiceName", "web")],
        )
        .unwrap();
        // One value per task: 512 of 256 units and 0 of 256.
        assert_eq!(web.values, vec![(200.0, 1.0), (0.0, 1.0)]);
        assert_eq!(
            (
                web.stats.sum / web.stats.sample_count,
                web.stats.minimum,
                web.stats.maximum
            ),
            (100.0, 0.0, 200.0)
        );
        let cluster = find(&samples, "CPUUtilization", &[("ClusterName", "prod")]).unwrap();
        assert_eq!(cluster.values, vec![(37.5, 1.0)]);
        let memory = find(
            &samples,
            "MemoryUtilization",
            &[("ClusterName", "prod"), ("ServiceName", "web")],
        )
        .unwrap();
        assert_eq!(memory.values, vec![(200.0, 1.0), (0.0, 1.0)]);
        assert!(find(&samples, "CpuUtilized", &[("ClusterName", "prod")]).is_none());

        let samples = report_samples("us-east-1", &report, "prod", 2048.0, 4096.0, true);
        let rx = find(
            &samples,
            "NetworkRxBytes",
            &[("ClusterName", "prod"), ("ServiceName", "web")],
        )
        .unwrap();
        assert_eq!(rx.values, vec![(2000.0, 1.0)]);
        let family = find(
            &samples,
            "CpuUtilized",
            &[("ClusterName", "prod"), ("TaskDefinitionFamily", "web")],
        )
        .unwrap();
        assert_eq!(family.values, vec![(768.0, 1.0)]);
    }

    #[test]
    fn instance_arns_name_cluster_and_id() {
        assert_eq!(
            instance_of_arn("arn:aws:ecs:us-east-1:000000000000:container-instance/prod/abc"),
            Some(("prod".into(), "abc".into()))
        );
        assert_eq!(
            instance_of_arn("arn:aws:ecs:us-east-1:0:task/prod/abc"),
            None
        );
    }
}
