//! Berth's own instruments, exposed in the Prometheus text formats at
//! `GET /metrics`: API requests, store commits, placements, agent sessions,
//! service controller passes, and the latest value of every CloudWatch
//! metric Berth publishes (see [`aws`]).
//!
//! One process-wide set lives behind [`global`]; [`Instruments::new`] makes
//! a private one (tests). Recording is cheap: counters and histograms are
//! atomics found through `prometheus-client`'s `Family` (a read-locked hash
//! lookup; the label set is built once per observation).
//!
//! Label values are bounded by the callers: operations are the ones a
//! service answered (unknown ones are recorded as [`OTHER`]), placement
//! results are ECS's failure reasons (anything else is [`OTHER`]).
//!
//! **Architecture Invariant:** no I/O, no tokio. The monotonic clock is read
//! in one place, [`Stopwatch`], and what it measures only ever flows out to
//! the exposition, never back into a decision.

pub mod aws;
mod format;

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

pub use format::Format;

/// The label value for anything outside a bounded set: an operation no
/// service knows, a request that was not routed, a placement result that is
/// not one of ECS's reasons.
pub const OTHER: &str = "other";

/// `berth_placements_total{result="placed"}`.
pub const PLACED: &str = "placed";

/// `berth_placements_total{result="no_container_instances"}`: the cluster
/// had no container instance that could take tasks at all.
pub const NO_CONTAINER_INSTANCES: &str = "no_container_instances";

/// The placement results besides [`PLACED`] and [`NO_CONTAINER_INSTANCES`]:
/// ECS's failure reasons as the scheduler reports them.
const PLACEMENT_FAILURE_REASONS: &[&str] = &[
    "AGENT",
    "ATTRIBUTE",
    "RESOURCE:CPU",
    "RESOURCE:MEMORY",
    "RESOURCE:PORTS",
    "RESOURCE:PORTS_UDP",
    "RESOURCE:GPU",
    "MemberOf placement constraint unsatisfied.",
    "DistinctInstance placement constraint unsatisfied.",
    "MISSING",
];

/// API latency: 0.5 ms to 10 s.
const API_DURATION_BUCKETS_S: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// One store write batch (apply + commit + fsync): 100 µs to 1 s.
const COMMIT_DURATION_BUCKETS_S: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// Requests per store write batch.
const COMMIT_BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// One service controller pass: 1 ms to 30 s.
const PASS_DURATION_BUCKETS_S: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One crate, one error.
#[derive(Debug, thiserror::Error)]
pub enum InstrumentsError {
    #[error("encoding the metrics failed")]
    Encode(#[from] std::fmt::Error),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    service: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

fn api_duration_histogram() -> Histogram {
    Histogram::new(API_DURATION_BUCKETS_S.iter().copied())
}

/// Every instrument, and the registry that encodes them.
#[derive(Debug)]
pub struct Instruments {
    registry: Registry,
    api_requests: Family<(OperationLabels, CodeLabel), Counter>,
    api_request_duration: HistogramFamily<OperationLabels>,
    store_commit_duration: Histogram,
    store_commit_batch: Histogram,
    placements: Family<ResultLabel, Counter>,
    agent_sessions: Gauge,
    agent_sessions_opened: Counter,
    controller_passes: Counter,
    controller_pass_duration: Histogram,
    aws: Arc<aws::AwsMetrics>,
}

impl Default for Instruments {
    fn default() -> Self {
        Self::new()
    }
}

impl Instruments {
    /// A fresh set, every counter at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let api_requests = Family::default();
        registry.register(
            "berth_api_requests",
            "AWS API requests Berth answered, by signing service, operation and HTTP status code",
            api_requests.clone(),
        );
        let api_request_duration: HistogramFamily<OperationLabels> =
            Family::new_with_constructor(api_duration_histogram);
        registry.register_with_unit(
            "berth_api_request_duration",
            "Time from reading an AWS API request to its response head, by signing service and operation",
            Unit::Seconds,
            api_request_duration.clone(),
        );
        let store_commit_duration = Histogram::new(COMMIT_DURATION_BUCKETS_S.iter().copied());
        registry.register_with_unit(
            "berth_store_commit_duration",
            "Time the store's writer took to apply and commit one write batch",
            Unit::Seconds,
            store_commit_duration.clone(),
        );
        let store_commit_batch = Histogram::new(COMMIT_BATCH_BUCKETS.iter().copied());
        registry.register(
            "berth_store_commit_batch_requests",
            "Write requests committed together in one store batch",
            store_commit_batch.clone(),
        );
        let placements = Family::default();
        registry.register(
            "berth_placements",
            "Tasks the placement engine decided on: placed, or the ECS reason the first \
             container instance gave for not placing them",
            placements.clone(),
        );
        let agent_sessions = Gauge::default();
        registry.register(
            "berth_agent_sessions",
            "Agent sessions open now",
            agent_sessions.clone(),
        );
        let agent_sessions_opened = Counter::default();
        registry.register(
            "berth_agent_sessions_opened",
            "Agent sessions opened since the server started",
            agent_sessions_opened.clone(),
        );
        let controller_passes = Counter::default();
        registry.register(
            "berth_service_controller_passes",
            "Service controller passes completed",
            controller_passes.clone(),
        );
        let controller_pass_duration = Histogram::new(PASS_DURATION_BUCKETS_S.iter().copied());
        registry.register_with_unit(
            "berth_service_controller_pass_duration",
            "Time one service controller pass took",
            Unit::Seconds,
            controller_pass_duration.clone(),
        );
        let aws = Arc::new(aws::AwsMetrics::default());
        registry.register_collector(Box::new(Arc::clone(&aws)));
        Instruments {
            registry,
            api_requests,
            api_request_duration,
            store_commit_duration,
            store_commit_batch,
            placements,
            agent_sessions,
            agent_sessions_opened,
            controller_passes,
            controller_pass_duration,
            aws,
        }
    }

    /// One answered API request: `berth_api_requests_total` and
    /// `berth_api_request_duration_seconds`. `service` is the signing name
    /// (`ecs`), `operation` the operation (`RunTask`), both already bounded
    /// by the caller ([`OTHER`] for what no service knows).
    pub fn observe_api_request(
        &self,
        service: &str,
        operation: &str,
        status_code: u16,
        duration_s: f64,
    ) {
        let labels = (
            OperationLabels {
                service: service.to_string(),
                operation: operation.to_string(),
            },
            CodeLabel { code: status_code },
        );
        self.api_requests.get_or_create(&labels).inc();
        self.api_request_duration
            .get_or_create(&labels.0)
            .observe(duration_s);
    }

    /// One committed store write batch of `batch_requests` requests.
    pub fn observe_store_commit(&self, duration_s: f64, batch_requests: usize) {
        self.store_commit_duration.observe(duration_s);
        self.store_commit_batch.observe(batch_requests as f64);
    }

    /// `tasks` placement decisions with one result: [`PLACED`],
    /// [`NO_CONTAINER_INSTANCES`] or an ECS failure reason
    /// (`RESOURCE:MEMORY`); any other result counts as [`OTHER`].
    pub fn add_placements(&self, result: &str, tasks: u64) {
        if tasks == 0 {
            return;
        }
        let result = placement_result(result);
        self.placements
            .get_or_create(&ResultLabel { result })
            .inc_by(tasks);
    }

    /// An agent session opened; it counts as open until the guard drops.
    pub fn open_agent_session(&self) -> AgentSessionGuard {
        self.agent_sessions_opened.inc();
        self.agent_sessions.inc();
        AgentSessionGuard {
            open: self.agent_sessions.clone(),
        }
    }

    /// One completed service controller pass.
    pub fn observe_controller_pass(&self, duration_s: f64) {
        self.controller_passes.inc();
        self.controller_pass_duration.observe(duration_s);
    }

    /// Sets the gauge of one CloudWatch metric series to its latest value.
    /// See [`aws`] for the naming.
    pub fn observe_aws_gauge(
        &self,
        namespace: &str,
        metric_name: &str,
        dimensions: &[(String, String)],
        value: f64,
    ) {
        self.aws
            .record(aws::Kind::Gauge, namespace, metric_name, dimensions, value);
    }

    /// Adds a per-report delta (the ALB's `RequestCount`) to the counter of
    /// one CloudWatch metric series. See [`aws`] for the naming.
    pub fn add_aws_count(
        &self,
        namespace: &str,
        metric_name: &str,
        dimensions: &[(String, String)],
        delta: f64,
    ) {
        self.aws.record(
            aws::Kind::Counter,
            namespace,
            metric_name,
            dimensions,
            delta,
        );
    }

    /// Every instrument in `format`.
    pub fn encode(&self, format: Format) -> Result<String, InstrumentsError> {
        let mut text = String::new();
        match format {
            Format::PrometheusText => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?
            }
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut text, &self.registry)?
            }
        }
        Ok(text)
    }
}

/// Keeps `berth_agent_sessions` one higher while it lives.
#[derive(Debug)]
pub struct AgentSessionGuard {
    open: Gauge,
}

impl Drop for AgentSessionGuard {
    fn drop(&mut self) {
        self.open.dec();
    }
}

fn placement_result(result: &str) -> &'static str {
    [PLACED, NO_CONTAINER_INSTANCES]
        .iter()
        .chain(PLACEMENT_FAILURE_REASONS)
        .find(|known| **known == result)
        .copied()
        .unwrap_or(OTHER)
}

/// Measures a duration for an instrument.
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch {
    started: Instant,
}

impl Stopwatch {
    /// Starts now (the monotonic clock).
    #[allow(clippy::disallowed_methods)] // Instruments time what they measure; see the crate doc.
    pub fn start() -> Self {
        Stopwatch {
            started: Instant::now(),
        }
    }

    /// Time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Seconds since [`Stopwatch::start`], as histograms take them.
    pub fn elapsed_s(&self) -> f64 {
        self.elapsed().as_secs_f64()
    }
}

static GLOBAL: LazyLock<Instruments> = LazyLock::new(Instruments::new);

/// The process-wide instruments `GET /metrics` serves.
pub fn global() -> &'static Instruments {
    &GLOBAL
}

/// [`Instruments::observe_aws_gauge`] on the [`global`] instruments.
pub fn observe_aws_gauge(
    namespace: &str,
    metric_name: &str,
    dimensions: &[(String, String)],
    value: f64,
) {
    global().observe_aws_gauge(namespace, metric_name, dimensions, value);
}

/// [`Instruments::add_aws_count`] on the [`global`] instruments.
pub fn add_aws_count(
    namespace: &str,
    metric_name: &str,
    dimensions: &[(String, String)],
    delta: f64,
) {
    global().add_aws_count(namespace, metric_name, dimensions, delta);
}

#[cfg(test)]
mod tests;
