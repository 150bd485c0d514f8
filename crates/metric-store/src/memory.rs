//! [`MemoryMetricStore`]: the fake, for fast deterministic tests.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, PoisonError};

use crate::tiers::{align_down, check_read, plan_read, tiers_of, Bucket, Periods, TIERS};
use crate::{
    check_sample, Aggregate, ListFilter, MetricKey, MetricStore, MetricStoreError, Sample,
};

struct Series {
    unit: String,
    storage_resolution_s: u32,
    /// Per tier (indexed like [`TIERS`]): bucket start → bucket.
    tiers: [BTreeMap<i64, Bucket>; 4],
}

#[derive(Default)]
struct Metric {
    last_timestamp_ms: i64,
    series: Vec<Series>,
}

/// Everything in one mutex-guarded map.
#[derive(Default)]
pub struct MemoryMetricStore {
    metrics: Mutex<BTreeMap<MetricKey, Metric>>,
}

impl MemoryMetricStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<MetricKey, Metric>> {
        // Every mutation validates first and cannot panic half-way.
        self.metrics.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// ListMetrics over any key-ordered iterator of (key, last timestamp).
pub(crate) fn list_in_order<'a>(
    metrics: impl Iterator<Item = (&'a MetricKey, i64)>,
    filter: &ListFilter,
    limit: usize,
) -> Vec<(MetricKey, i64)> {
    metrics
        .filter(|(key, last)| filter.matches(key, *last))
        .take(limit)
        .map(|(key, last)| (key.clone(), last))
        .collect()
}

pub(crate) fn after_bound(after: Option<&MetricKey>) -> (Bound<&MetricKey>, Bound<&MetricKey>) {
    match after {
        Some(after) => (Bound::Excluded(after), Bound::Unbounded),
        None => (Bound::Unbounded, Bound::Unbounded),
    }
}

impl MetricStore for MemoryMetricStore {
    fn append(&self, samples: &[Sample]) -> Result<(), MetricStoreError> {
        samples.iter().try_for_each(check_sample)?;
        let mut metrics = self.lock();
        for sample in samples {
            let metric = metrics.entry(sample.key.clone()).or_insert_with(|| Metric {
                last_timestamp_ms: sample.timestamp_ms,
                series: Vec::new(),
            });
            metric.last_timestamp_ms = metric.last_timestamp_ms.max(sample.timestamp_ms);
            let position = metric.series.iter().position(|s| {
                s.unit == sample.unit && s.storage_resolution_s == sample.storage_resolution_s
            });
            let series = match position {
                Some(position) => &mut metric.series[position],
                None => {
                    metric.series.push(Series {
                        unit: sample.unit.clone(),
                        storage_resolution_s: sample.storage_resolution_s,
                        tiers: Default::default(),
                    });
                    metric.series.last_mut().expect("just pushed")
                }
            };
            let contribution = Bucket::of_sample(sample);
            for tier_index in tiers_of(sample.storage_resolution_s) {
                let start_ms = align_down(sample.timestamp_ms, TIERS[tier_index].resolution_ms());
                series.tiers[tier_index]
                    .entry(start_ms)
                    .and_modify(|bucket| bucket.merge(&contribution))
                    .or_insert_with(|| contribution.clone());
            }
        }
        Ok(())
    }

    fn read(
        &self,
        key: &MetricKey,
        unit: Option<&str>,
        start_ms: i64,
        end_ms: i64,
        period_s: u32,
        now_ms: i64,
    ) -> Result<Vec<Aggregate>, MetricStoreError> {
        check_read(start_ms, end_ms, period_s)?;
        let metrics = self.lock();
        let mut periods = Periods::new(period_s);
        let Some(metric) = metrics.get(key) else {
            return Ok(Vec::new());
        };
        for series in &metric.series {
            if unit.is_some_and(|unit| unit != series.unit) {
                continue;
            }
            for segment in plan_read(
                series.storage_resolution_s,
                start_ms,
                end_ms,
                period_s,
                now_ms,
            ) {
                for (bucket_start_ms, bucket) in
                    series.tiers[segment.tier_index].range(segment.start_ms..segment.end_ms)
                {
                    periods.add(&series.unit, *bucket_start_ms, bucket.clone());
                }
            }
        }
        Ok(periods.finish())
    }

    fn list_metrics(
        &self,
        filter: &ListFilter,
        after: Option<&MetricKey>,
        limit: usize,
    ) -> Result<Vec<(MetricKey, i64)>, MetricStoreError> {
        let metrics = self.lock();
        Ok(list_in_order(
            metrics
                .range::<MetricKey, _>(after_bound(after))
                .map(|(key, metric)| (key, metric.last_timestamp_ms)),
            filter,
            limit,
        ))
    }

    fn apply_retention(&self, now_ms: i64) -> Result<u64, MetricStoreError> {
        let mut metrics = self.lock();
        let mut dropped = 0u64;
        for metric in metrics.values_mut() {
            for series in &mut metric.series {
                for (tier, buckets) in TIERS.iter().zip(series.tiers.iter_mut()) {
                    let kept = buckets.split_off(&tier.oldest_retained_start_ms(now_ms));
                    dropped += buckets.len() as u64;
                    *buckets = kept;
                }
            }
        }
        Ok(dropped)
    }
}
