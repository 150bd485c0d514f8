//! Metric filters publish their metrics: every batch `store_batch` makes durable is run
//! through its group's metric filters, and what they extract goes to a
//! [`MetricFilterSink`] (CloudWatch's metric store in `berth`).
//!
//! Per filter and batch (pure, [`datapoints`]): each matching event contributes its
//! `metricValue` (a number, or a `$.field` / `$name` the pattern extracted; an event whose
//! value is not a number contributes nothing) with the dimensions its fields give,
//! timestamped with the event's time; values of the same minute and dimensions are
//! published together as values with counts. When no event of the batch matches and the
//! transformation has a `defaultValue`, that value is published once, at the batch's first
//! event time (Berth's reading of "the value to emit when a filter pattern does not
//! match": once per delivery, not once per event).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use log_store::NewEvent;

use crate::filter_pattern::FilterPattern;
use crate::records::MetricFilterRecord;

/// One metric datapoint a metric filter produced.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFilterDatapoint {
    pub namespace: String,
    pub metric_name: String,
    /// Sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// CloudWatch unit name (`None` when the transformation names none).
    pub unit: String,
    /// The start of the minute the values fall in.
    pub timestamp_ms: i64,
    /// Values with their counts.
    pub values: Vec<(f64, f64)>,
}

/// Where metric filters' datapoints go.
#[async_trait]
pub trait MetricFilterSink: Send + Sync {
    /// Publishes `datapoints` of `region`; the log events are already stored, so a
    /// failure here is reported, never undoes them.
    async fn publish(
        &self,
        region: &str,
        datapoints: Vec<MetricFilterDatapoint>,
    ) -> Result<(), String>;
}

/// A metric filter ready to run: its record and its parsed pattern.
pub(crate) struct CompiledFilter {
    pub record: MetricFilterRecord,
    pub pattern: FilterPattern,
}

type Dimensions = Vec<(String, String)>;
/// By the value's bits: the value and how many events gave it.
type ValueCounts = BTreeMap<u64, (f64, f64)>;
/// By (region, group): when the filters were read, and the filters.
type CachedFilters = BTreeMap<(String, String), (i64, Arc<Vec<CompiledFilter>>)>;

/// The datapoints `filters` produce from `events` (pure).
pub(crate) fn datapoints(
    filters: &[CompiledFilter],
    events: &[NewEvent],
) -> Vec<MetricFilterDatapoint> {
    let mut out = Vec::new();
    for filter in filters {
        for transformation in &filter.record.metric_transformations {
            let (Some(namespace), Some(metric_name), Some(metric_value)) = (
                transformation.metric_namespace.as_deref(),
                transformation.metric_name.as_deref(),
                transformation.metric_value.as_deref(),
            ) else {
                continue;
            };
            let unit = transformation
                .unit
                .map(|unit| unit.as_str().to_string())
                .unwrap_or_else(|| "None".to_string());
            let mut grouped: BTreeMap<(Dimensions, i64), ValueCounts> = BTreeMap::new();
            let mut matched = false;
            for event in events {
                let Some(found) = filter.pattern.extract(&event.message) else {
                    continue;
                };
                matched = true;
                let value = if metric_value.starts_with('$') {
                    found
                        .value(metric_value)
                        .and_then(|text| text.trim().parse::<f64>().ok())
                } else {
                    metric_value.trim().parse::<f64>().ok()
                };
                let Some(value) = value.filter(|value| value.is_finite()) else {
                    continue;
                };
                let mut dimensions = Vec::new();
                let mut complete = true;
                for (name, reference) in transformation.dimensions.iter().flatten() {
                    match found.value(reference) {
                        Some(dimension_value) if !dimension_value.is_empty() => {
                            dimensions.push((name.clone(), dimension_value))
                        }
                        _ => complete = false,
                    }
                }
                if !complete {
                    continue;
                }
                dimensions.sort();
                let minute_ms = event.timestamp_ms - event.timestamp_ms.rem_euclid(60_000);
                let entry = grouped
                    .entry((dimensions, minute_ms))
                    .or_default()
                    .entry(value.to_bits())
                    .or_insert((value, 0.0));
                entry.1 += 1.0;
            }
            for ((dimensions, timestamp_ms), values) in grouped {
                out.push(MetricFilterDatapoint {
                    namespace: namespace.to_string(),
                    metric_name: metric_name.to_string(),
                    dimensions,
                    unit: unit.clone(),
                    timestamp_ms,
                    values: values.into_values().collect(),
                });
            }
            if !matched {
                if let (Some(default), Some(first)) = (transformation.default_value, events.first())
                {
                    out.push(MetricFilterDatapoint {
                        namespace: namespace.to_string(),
                        metric_name: metric_name.to_string(),
                        dimensions: Vec::new(),
                        unit: unit.clone(),
                        timestamp_ms: first.timestamp_ms - first.timestamp_ms.rem_euclid(60_000),
                        values: vec![(default, 1.0)],
                    });
                }
            }
        }
    }
    out
}

/// Each group's compiled metric filters, read from the store at most once per
/// [`CACHE_MS`] (so a new or deleted filter applies within a second), shared by every
/// batch in between.
#[derive(Default)]
pub(crate) struct FilterCache {
    entries: Mutex<CachedFilters>,
}

pub(crate) const CACHE_MS: i64 = 1_000;
const MAX_CACHED_GROUPS: usize = 10_000;

impl FilterCache {
    pub fn get(&self, region: &str, group: &str, now_ms: i64) -> Option<Arc<Vec<CompiledFilter>>> {
        let entries = self.entries.lock().expect("filter cache");
        let (read_at_ms, filters) = entries.get(&(region.to_string(), group.to_string()))?;
        (now_ms - read_at_ms < CACHE_MS && *read_at_ms <= now_ms).then(|| Arc::clone(filters))
    }

    pub fn put(&self, region: &str, group: &str, now_ms: i64, filters: Arc<Vec<CompiledFilter>>) {
        let mut entries = self.entries.lock().expect("filter cache");
        if entries.len() >= MAX_CACHED_GROUPS {
            entries.clear();
        }
        entries.insert((region.to_string(), group.to_string()), (now_ms, filters));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(
        pattern: &str,
        value: &str,
        dimensions: &[(&str, &str)],
        default: Option<f64>,
    ) -> CompiledFilter {
        CompiledFilter {
            record: MetricFilterRecord {
                group: "app".into(),
                name: "f".into(),
                filter_pattern: pattern.into(),
                metric_transformations: vec![logs_wire::MetricTransformation {
                    metric_name: Some("Latency".into()),
                    metric_namespace: Some("App".into()),
                    metric_value: Some(value.into()),
                    default_value: default,
                    dimensions: (!dimensions.is_empty()).then(|| {
                        dimensions
                            .iter()
                            .map(|(n, r)| (n.to_string(), r.to_string()))
                            .collect()
                    }),
                    unit: None,
                }],
                creation_time_ms: 0,
                apply_on_transformed_logs: false,
            },
            pattern: FilterPattern::parse(pattern).unwrap(),
        }
    }

    fn events(messages: &[(i64, &str)]) -> Vec<NewEvent> {
        messages
            .iter()
            .map(|(timestamp_ms, message)| NewEvent {
                timestamp_ms: *timestamp_ms,
                message: message.to_string(),
            })
            .collect()
    }

    #[test]
    fn matching_events_become_values_per_minute_and_dimensions() {
        let filters = [filter(
            "{ $.latency > 0 }",
            "$.latency",
            &[("Route", "$.route")],
            None,
        )];
        let batch = events(&[
            (60_000, r#"{"latency": 5, "route": "/a"}"#),
            (61_000, r#"{"latency": 5, "route": "/a"}"#),
            (62_000, r#"{"latency": 7, "route": "/b"}"#),
            (125_000, r#"{"latency": 9, "route": "/a"}"#),
            (126_000, r#"{"latency": 0, "route": "/a"}"#),
            (127_000, r#"{"latency": 3}"#),
        ]);
        let points = datapoints(&filters, &batch);
        type Summary = (Dimensions, i64, Vec<(f64, f64)>);
        let summary: Vec<Summary> = points
            .into_iter()
            .map(|p| (p.dimensions, p.timestamp_ms, p.values))
            .collect();
        let route = |r: &str| vec![("Route".to_string(), r.to_string())];
        assert_eq!(
            summary,
            vec![
                (route("/a"), 60_000, vec![(5.0, 2.0)]),
                (route("/a"), 120_000, vec![(9.0, 1.0)]),
                (route("/b"), 60_000, vec![(7.0, 1.0)]),
            ]
        );
    }

    #[test]
    fn constant_values_defaults_and_non_numbers() {
        let errors = [filter("ERROR", "1", &[], Some(0.0))];
        let points = datapoints(
            &errors,
            &events(&[(1_000, "ERROR boom"), (2_000, "ERROR again")]),
        );
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].values, vec![(1.0, 2.0)]);
        let points = datapoints(&errors, &events(&[(61_000, "all fine")]));
        assert_eq!(points[0].values, vec![(0.0, 1.0)]);
        assert_eq!(points[0].timestamp_ms, 60_000);
        let fields = [filter("[ip, user, latency]", "$latency", &[], None)];
        let points = datapoints(
            &fields,
            &events(&[(0, "1.2.3.4 bob fast"), (0, "1.2.3.4 bob 12")]),
        );
        assert_eq!(points[0].values, vec![(12.0, 1.0)]);
    }
}
