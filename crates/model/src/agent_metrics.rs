//! How agents report what their tasks consume, for CloudWatch's `AWS/ECS`
//! and `ECS/ContainerInsights` metrics.
//!
//! Every [`REPORT_INTERVAL_MS`] an agent samples each running container's
//! counters from its runtime (Docker's stats), turns the difference from the
//! previous sample into the interval's figures, sums them per task, and sends
//! one [`PutTaskMetricsRequest`] through a Berth-only JSON service on the
//! same port, `X-Amz-Target: BerthAgentMetrics_20261207.PutTaskMetrics`,
//! SigV4-signed for service `monitoring`, with AWS's JSON error format. The
//! control plane turns the reports into the clusters' and services'
//! utilization as AWS computes it (used over reserved, summed over the
//! tasks). A report that is lost is a gap in the metrics, as on AWS; the
//! agent does not resend old samples.

use serde::{Deserialize, Serialize};

pub const TARGET_PREFIX: &str = "BerthAgentMetrics_20261207";
pub const SIGNING_NAME: &str = "monitoring";
/// How often agents sample and report (AWS's agent reports once a minute).
pub const REPORT_INTERVAL_MS: i64 = 5_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutTaskMetricsRequest {
    /// The reporting agent's container instance.
    pub container_instance_arn: String,
    /// End of the sampling interval, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Length of the interval the figures cover.
    pub interval_ms: i64,
    pub tasks: Vec<TaskMetrics>,
}

/// One task's consumption over the interval (the sum over its containers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskMetrics {
    pub task_arn: String,
    pub cluster_arn: String,
    /// The task's group (`service:<name>` for a service's tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `family:revision` of the task definition.
    pub task_definition: String,
    /// CPU units used on average over the interval (1,024 per core).
    pub cpu_used_units: f64,
    /// CPU units reserved: the task-level `cpu`, else the sum of the
    /// containers' `cpu`.
    pub cpu_reserved_units: f64,
    /// Memory in use at the end of the interval, in MiB (Docker's usage
    /// less the page cache, as `docker stats` shows it).
    pub memory_used_mib: f64,
    /// Memory reserved: the task-level `memory`, else the sum of the
    /// containers' `memory` (hard limit) or `memoryReservation`.
    pub memory_reserved_mib: f64,
    /// Bytes received and sent during the interval.
    pub network_rx_bytes: u64,
    pub network_tx_bytes: u64,
    /// Bytes read from and written to storage during the interval.
    pub storage_read_bytes: u64,
    pub storage_write_bytes: u64,
    /// Containers of the task that were sampled.
    pub container_count: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutTaskMetricsResponse {}
