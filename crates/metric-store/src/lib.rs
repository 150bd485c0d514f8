//! The metric seam: where CloudWatch keeps its datapoints.
//!
//! Every sample updates one bucket (an [`Aggregate`] of a fixed period) in
//! each tier it belongs to, so downsampling is exact and needs no background
//! job. The tiers are CloudWatch's
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Metric>):
//! "Data points with a period of less than 60 seconds are available for 3
//! hours. Data points with a period of 60 seconds (1 minute) are available
//! for 15 days. Data points with a period of 300 seconds (5 minutes) are
//! available for 63 days. Data points with a period of 3600 seconds (1 hour)
//! are available for 455 days (15 months)." See [`TIERS`].
//!
//! Internally a metric is kept as one *series* per (unit, storage
//! resolution): high-resolution samples update the 1 s, 60 s, 300 s and
//! 3600 s tiers of their series, standard-resolution samples the 60 s, 300 s
//! and 3600 s tiers of theirs. Reads merge the series of a unit.
//!
//! Backends: [`MemoryMetricStore`] (the fake) and
//! [`sqlite::SqliteMetricStore`] (SQLite, group commit). Both pass
//! [`conformance`]. [`figures`] measures the SQLite backend for `berth bench`.
//!
//! The trait is synchronous: backends block on I/O; callers on an async
//! runtime call it from a blocking thread.
//!
//! **Architecture Invariant:** [`MetricStore::append`] returns only once the
//! samples are durable (for SQLite, after the batch's COMMIT with
//! `synchronous=FULL`), and an append is stored whole or not at all. Reads
//! depend only on what was appended and `now_ms`, never on when
//! [`MetricStore::apply_retention`] last ran: a bucket past its tier's
//! retention is invisible whether or not it was dropped yet.

pub mod conformance;
mod distribution;
pub mod figures;
mod memory;
pub mod sqlite;
mod tiers;

pub use distribution::{Distribution, Trimmed, RELATIVE_ACCURACY};
pub use memory::MemoryMetricStore;
pub use tiers::{Tier, TIERS};

/// A metric's identity: namespace, name and dimensions (sorted by name, at
/// most 30). Ordered by namespace, then name, then dimensions (the order
/// [`MetricStore::list_metrics`] pages in).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricKey {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
}

/// CloudWatch's limit on dimensions per metric.
pub const MAX_DIMENSIONS: usize = 30;

/// The four statistics CloudWatch keeps exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatisticSet {
    pub sample_count: f64,
    pub sum: f64,
    pub minimum: f64,
    pub maximum: f64,
}

impl StatisticSet {
    /// Both sets' values together.
    pub fn merge(&mut self, other: &StatisticSet) {
        self.sample_count += other.sample_count;
        self.sum += other.sum;
        self.minimum = self.minimum.min(other.minimum);
        self.maximum = self.maximum.max(other.maximum);
    }
}

/// One datapoint of PutMetricData.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub key: MetricKey,
    /// CloudWatch unit name, "None" when unspecified.
    pub unit: String,
    pub timestamp_ms: i64,
    /// 1 (high resolution) or 60 (standard).
    pub storage_resolution_s: u32,
    pub stats: StatisticSet,
    /// Values with their counts (PutMetricData's Values/Counts or Value),
    /// for percentiles; empty when the sample was published as a statistic
    /// set. Then, as on AWS, percentiles are available for its buckets only
    /// when its SampleCount is 1 or its Minimum equals its Maximum (the
    /// store then counts `sample_count` values of `minimum`); otherwise the
    /// buckets it lands in have no [`Distribution`].
    pub values: Vec<(f64, f64)>,
}

/// One period's aggregate.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub start_ms: i64,
    pub unit: String,
    pub stats: StatisticSet,
    /// `None` when any sample in the period was a statistic set that cannot
    /// give percentiles (see [`Sample::values`]).
    pub distribution: Option<Distribution>,
}

/// Which metrics [`MetricStore::list_metrics`] returns (ListMetrics'
/// filters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub namespace: Option<String>,
    /// Only namespaces that start with this (CloudWatch keeps each region's metrics
    /// under namespaces prefixed with the region).
    pub namespace_prefix: Option<String>,
    pub metric_name: Option<String>,
    /// Each must match one of the metric's dimensions: by name, and by value
    /// when one is given. The metric may have other dimensions too.
    pub dimensions: Vec<(String, Option<String>)>,
    /// Only metrics with a sample timestamped at or after this.
    pub active_since_ms: Option<i64>,
}

impl ListFilter {
    /// Whether `key` (last sample at `last_timestamp_ms`) passes.
    pub fn matches(&self, key: &MetricKey, last_timestamp_ms: i64) -> bool {
        self.namespace.as_ref().is_none_or(|n| *n == key.namespace)
            && self
                .namespace_prefix
                .as_ref()
                .is_none_or(|prefix| key.namespace.starts_with(prefix.as_str()))
            && self
                .metric_name
                .as_ref()
                .is_none_or(|n| *n == key.metric_name)
            && self.active_since_ms.is_none_or(|t| last_timestamp_ms >= t)
            && self.dimensions.iter().all(|(name, value)| {
                key.dimensions
                    .iter()
                    .any(|(n, v)| n == name && value.as_ref().is_none_or(|value| value == v))
            })
    }
}

/// A backend fault or a sample the store cannot keep. The API crate
/// validates requests first, so `InvalidSample` means a caller bug.
#[derive(Debug, thiserror::Error)]
pub enum MetricStoreError {
    #[error("invalid sample for {metric}: {why}")]
    InvalidSample { metric: String, why: String },
    #[error("invalid read: {0}")]
    InvalidRead(String),
    #[error("metric store SQLite database {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("metric store commit to {path} failed, nothing of the append was stored: {message}")]
    CommitFailed { path: String, message: String },
    #[error("the metric store {path} needs SQLite's WAL journal, but the file system gave journal_mode={journal_mode}; put it on a local file system")]
    NoWal { path: String, journal_mode: String },
    #[error("cannot create the metric store directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("metric store data is corrupt: {0}; restore the database from a backup")]
    Corrupt(String),
    #[error("the metric store's writer thread has stopped (an earlier fault); reopen the store")]
    WriterStopped,
}

/// The seam.
pub trait MetricStore: Send + Sync {
    /// Stores `samples`; durable when it returns, all or nothing.
    fn append(&self, samples: &[Sample]) -> Result<(), MetricStoreError>;

    /// Aggregates of `key` (only `unit` when given, else every unit, one
    /// aggregate per unit and period) of the periods of `period_s` that
    /// start in `[start_ms, end_ms)`, each period whole, aligned to
    /// multiples of `period_s` since the epoch, ascending by start then
    /// unit, only periods with data. (The store does not round further: an
    /// unaligned `start_ms` skips to the next period start; callers round
    /// StartTime as CloudWatch does.)
    ///
    /// The rule (see [`Tier`]): a period is computed from the tiers still
    /// retained at its start (`now_ms` − retention ≤ period start). Of those
    /// whose resolution divides `period_s`, the coarsest is read (each of
    /// its buckets lies inside one period, and every sample is in every
    /// tier of its series, so the result equals merging the finest:
    /// downsampling is exact). When none divides `period_s` (a 60 s period
    /// 20 days ago, where only 300 s and 3600 s buckets are left; or a 10 s
    /// period over standard-resolution data, which has no 1 s tier), the
    /// finest retained tier is read and each of its buckets counts in the
    /// period that holds the bucket's start.
    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        key: &MetricKey,
        unit: Option<&str>,
        start_ms: i64,
        end_ms: i64,
        period_s: u32,
        now_ms: i64,
    ) -> Result<Vec<Aggregate>, MetricStoreError>;

    /// Metrics in key order after `after` (exclusive), at most `limit`, that
    /// pass `filter`, each with its latest sample timestamp (over all its
    /// units).
    fn list_metrics(
        &self,
        filter: &ListFilter,
        after: Option<&MetricKey>,
        limit: usize,
    ) -> Result<Vec<(MetricKey, i64)>, MetricStoreError>;

    /// Drops what each tier no longer retains at `now_ms`; returns how many
    /// buckets went.
    fn apply_retention(&self, now_ms: i64) -> Result<u64, MetricStoreError>;
}

/// Checks what a backend relies on: dimensions sorted by name and unique,
/// at most [`MAX_DIMENSIONS`], resolution 1 or 60, finite statistics, a
/// positive sample count, counts and values finite.
pub fn check_sample(sample: &Sample) -> Result<(), MetricStoreError> {
    let invalid = |why: &str| MetricStoreError::InvalidSample {
        metric: format!("{}/{}", sample.key.namespace, sample.key.metric_name),
        why: why.to_string(),
    };
    let dimensions = &sample.key.dimensions;
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(invalid("more than 30 dimensions"));
    }
    if dimensions.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
        return Err(invalid("dimensions must be sorted by name, each name once"));
    }
    if sample.storage_resolution_s != 1 && sample.storage_resolution_s != 60 {
        return Err(invalid("storage resolution must be 1 or 60 seconds"));
    }
    let stats = &sample.stats;
    if ![stats.sample_count, stats.sum, stats.minimum, stats.maximum]
        .iter()
        .all(|x| x.is_finite())
    {
        return Err(invalid("statistics must be finite"));
    }
    if stats.sample_count <= 0.0 || stats.minimum > stats.maximum {
        return Err(invalid(
            "sample count must be positive and minimum at most maximum",
        ));
    }
    if !sample
        .values
        .iter()
        .all(|(value, count)| value.is_finite() && count.is_finite() && *count >= 0.0)
    {
        return Err(invalid(
            "values and counts must be finite, counts not negative",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
