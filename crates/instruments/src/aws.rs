//! CloudWatch metrics as Prometheus series: the latest value of every metric
//! Berth's publisher puts, so one scrape sees the same service, task and
//! load balancer figures as `GetMetricData`.
//!
//! Naming (Berth's choice; CloudWatch has no Prometheus naming of its own):
//! - the metric is `<namespace>_<MetricName>`, lower-cased, every character
//!   outside `[a-z0-9]` becoming `_`: `AWS/ECS` `CPUUtilization` is
//!   `aws_ecs_cpuutilization`, `AWS/ApplicationELB` `RequestCount` is
//!   `aws_applicationelb_requestcount`;
//! - gauges ([`crate::Instruments::observe_aws_gauge`]) carry the latest
//!   value; counters ([`crate::Instruments::add_aws_count`], for per-report
//!   deltas such as the ALB's counts) add them up and are exposed with the
//!   `_total` suffix: `aws_applicationelb_requestcount_total`;
//! - each dimension is a label named as the dimension, characters outside
//!   `[A-Za-z0-9_]` becoming `_` (a leading digit or `__` gets a `d`
//!   prefix): `{ClusterName="default",ServiceName="web"}`; when two names
//!   sanitize alike the first one wins.
//!
//! A name first seen as a gauge stays a gauge (and the other way round); the
//! other kind's values for it are dropped. At most [`MAX_SERIES`] series are
//! kept; new ones beyond that are dropped and counted in
//! `berth_aws_metric_series_dropped_total`.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// Bounds memory and scrape size whatever the publisher puts.
pub const MAX_SERIES: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    Counter,
}

/// Labels in name order, sanitized.
type Labels = Vec<(String, String)>;

#[derive(Debug)]
struct AwsFamily {
    kind: Kind,
    help: String,
    series: BTreeMap<Labels, f64>,
}

#[derive(Debug, Default)]
struct State {
    families: BTreeMap<String, AwsFamily>,
    series: usize,
    dropped: u64,
}

/// The collector behind every `aws_*` family.
#[derive(Debug, Default)]
pub struct AwsMetrics {
    state: Mutex<State>,
}

impl AwsMetrics {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves whole values behind.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn record(
        &self,
        kind: Kind,
        namespace: &str,
        metric_name: &str,
        dimensions: &[(String, String)],
        value: f64,
    ) {
        if !value.is_finite() || (kind == Kind::Counter && value < 0.0) {
            // A counter only goes up; CloudWatch values are finite.
            return;
        }
        let name = metric_name_for(namespace, metric_name);
        let labels = labels_for(dimensions);
        let mut state = self.state();
        let State {
            families,
            series,
            dropped,
        } = &mut *state;
        let full = *series >= MAX_SERIES;
        let family = match families.get_mut(&name) {
            Some(family) => family,
            None if full => {
                *dropped += 1;
                return;
            }
            None => families.entry(name).or_insert_with(|| AwsFamily {
                kind,
                help: help_for(kind, namespace, metric_name),
                series: BTreeMap::new(),
            }),
        };
        if family.kind != kind {
            *dropped += 1;
            return;
        }
        match family.series.get_mut(&labels) {
            Some(current) => match kind {
                Kind::Gauge => *current = value,
                Kind::Counter => *current += value,
            },
            None if full => *dropped += 1,
            None => {
                family.series.insert(labels, value);
                *series += 1;
            }
        }
    }
}

impl Collector for AwsMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let state = self.state();
        for (name, family) in &state.families {
            match family.kind {
                Kind::Gauge => {
                    let mut metric =
                        encoder.encode_descriptor(name, &family.help, None, MetricType::Gauge)?;
                    for (labels, value) in &family.series {
                        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
                    }
                }
                Kind::Counter => {
                    let mut metric =
                        encoder.encode_descriptor(name, &family.help, None, MetricType::Counter)?;
                    for (labels, value) in &family.series {
                        ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
                    }
                }
            }
        }
        let dropped = ConstCounter::new(state.dropped);
        dropped.encode(encoder.encode_descriptor(
            "berth_aws_metric_series_dropped",
            "CloudWatch metric values not exposed: past the series limit, or of the other kind \
             than the name was first seen as",
            None,
            MetricType::Counter,
        )?)?;
        Ok(())
    }
}

/// `AWS/ECS`, `CPUUtilization` → `aws_ecs_cpuutilization` (a counter adds
/// `_total` when encoded).
pub fn metric_name_for(namespace: &str, metric_name: &str) -> String {
    let mut name = String::with_capacity(namespace.len() + metric_name.len() + 1);
    for c in namespace
        .chars()
        .chain(std::iter::once('/'))
        .chain(metric_name.chars())
    {
        name.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// A dimension name as a Prometheus label name (`[A-Za-z_][A-Za-z0-9_]*`,
/// not starting with the reserved `__`).
pub fn label_name_for(dimension_name: &str) -> String {
    let mut name: String = dimension_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || name.starts_with("__") {
        name.insert(0, 'd');
    }
    name
}

fn labels_for(dimensions: &[(String, String)]) -> Labels {
    let mut labels: Labels = Vec::with_capacity(dimensions.len());
    for (name, value) in dimensions {
        let name = label_name_for(name);
        if !labels.iter().any(|(existing, _)| *existing == name) {
            labels.push((name, value.clone()));
        }
    }
    labels.sort();
    labels
}

fn help_for(kind: Kind, namespace: &str, metric_name: &str) -> String {
    let what = match kind {
        Kind::Gauge => "the latest value Berth published",
        Kind::Counter => "the sum of the values Berth published",
    };
    // Help text is a single line.
    format!("CloudWatch {namespace} {metric_name}: {what}").replace(['\n', '\\'], " ")
}
