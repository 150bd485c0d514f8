//! Figures for `berth bench metrics`: durable append throughput with
//! concurrent writers, and reading a week of minutes of many metrics at an
//! hour's period. A shell: it reads the clock (only here in this crate).
//!
//! Measured on the 2 shared cores of the development machine (other builds
//! running), `cargo run --release -p metric-store --example figures`, the
//! defaults: 16 appenders × 60 batches of 1,000 standard-resolution samples
//! (16,000 metrics, one sample a minute each): 137k–157k samples/s durable,
//! batch p50 ~105–115 ms; 100 metrics × 7 days of minutes read at 3600 s
//! (16,800 aggregates, 100 `read` calls): p50 20–23 ms, p99 28–33 ms.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::sqlite::SqliteMetricStore;
use crate::{MetricKey, MetricStore, MetricStoreError, Sample, StatisticSet};

/// What to measure.
#[derive(Clone, Copy, Debug)]
pub struct FigureOptions {
    /// Concurrent appenders, each with its own metrics.
    pub writers: usize,
    /// Batches each appender sends.
    pub batches_per_writer: usize,
    /// Samples per batch (PutMetricData allows 1,000 metrics per request),
    /// one per metric, so each batch touches `samples_per_batch` metrics.
    pub samples_per_batch: usize,
    /// Metrics the read figure reads.
    pub read_metrics: usize,
    /// Days of one sample a minute each read metric holds.
    pub read_days: i64,
    /// The read figure's period.
    pub read_period_s: u32,
    /// Times the whole read is repeated.
    pub read_rounds: usize,
}

impl Default for FigureOptions {
    fn default() -> Self {
        Self {
            writers: 16,
            batches_per_writer: 60,
            samples_per_batch: 1_000,
            read_metrics: 100,
            read_days: 7,
            read_period_s: 3600,
            read_rounds: 20,
        }
    }
}

/// Latency summary of repeated operations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Self {
            p50: at(0.5),
            p99: at(0.99),
            max: *samples.last().expect("samples"),
        }
    }
}

/// What was measured.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub append_samples_per_second: f64,
    pub append_batch: Latency,
    /// Loading the read data set (one writer, batches of 1,000).
    pub load_samples_per_second: f64,
    /// Reading every read metric once (sequentially).
    pub read_all_metrics: Latency,
    pub aggregates_per_read_round: usize,
    pub open: Duration,
    pub disk_bytes: u64,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "append: {:.0} samples/s durable; batch p50 {:?} p99 {:?} max {:?}",
            self.append_samples_per_second,
            self.append_batch.p50,
            self.append_batch.p99,
            self.append_batch.max
        )?;
        writeln!(
            f,
            "load (1 writer): {:.0} samples/s",
            self.load_samples_per_second
        )?;
        writeln!(
            f,
            "read all metrics ({} aggregates): p50 {:?} p99 {:?} max {:?}",
            self.aggregates_per_read_round,
            self.read_all_metrics.p50,
            self.read_all_metrics.p99,
            self.read_all_metrics.max
        )?;
        write!(
            f,
            "reopen: {:?}; disk: {:.1} MiB",
            self.open,
            self.disk_bytes as f64 / (1 << 20) as f64
        )
    }
}

#[allow(clippy::disallowed_methods)] // A benchmark measures wall-clock time.
fn clock() -> Instant {
    Instant::now()
}

const MINUTE_MS: i64 = 60_000;
/// 2025-01-01T00:00:00Z.
const START_MS: i64 = 1_735_689_600_000;

fn metric(namespace: &str, group: usize, index: usize) -> MetricKey {
    MetricKey {
        namespace: namespace.to_string(),
        metric_name: "CPUUtilization".to_string(),
        dimensions: vec![
            ("ClusterName".to_string(), format!("cluster-{group}")),
            ("ServiceName".to_string(), format!("service-{index}")),
        ],
    }
}

fn sample(key: &MetricKey, timestamp_ms: i64, value: f64) -> Sample {
    Sample {
        key: key.clone(),
        unit: "Percent".to_string(),
        timestamp_ms,
        storage_resolution_s: 60,
        stats: StatisticSet {
            sample_count: 1.0,
            sum: value,
            minimum: value,
            maximum: value,
        },
        values: vec![(value, 1.0)],
    }
}

/// Measures a fresh store in `dir`.
pub fn measure(dir: &Path, options: FigureOptions) -> Result<Figures, MetricStoreError> {
    let mut figures = Figures::default();
    let store = SqliteMetricStore::open(dir)?;

    // Appends: each writer its own metrics, one sample a minute each.
    let started = clock();
    let batches: Vec<Vec<Duration>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.writers)
            .map(|writer| {
                let store = &store;
                scope.spawn(move || -> Result<Vec<Duration>, MetricStoreError> {
                    let keys: Vec<MetricKey> = (0..options.samples_per_batch)
                        .map(|index| metric("Bench/Append", writer, index))
                        .collect();
                    let mut latencies = Vec::with_capacity(options.batches_per_writer);
                    for batch in 0..options.batches_per_writer {
                        let timestamp_ms = START_MS + batch as i64 * MINUTE_MS;
                        let samples: Vec<Sample> = keys
                            .iter()
                            .enumerate()
                            .map(|(i, key)| sample(key, timestamp_ms, (i % 100) as f64))
                            .collect();
                        let sent = clock();
                        store.append(&samples)?;
                        latencies.push(sent.elapsed());
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("appender thread"))
            .collect::<Result<_, _>>()
    })?;
    let elapsed = started.elapsed();
    let total = (options.writers * options.batches_per_writer * options.samples_per_batch) as f64;
    figures.append_samples_per_second = total / elapsed.as_secs_f64();
    figures.append_batch = Latency::of(batches.into_iter().flatten().collect());

    // The read data set: a week of minutes, 1,000 samples a batch.
    let keys: Vec<MetricKey> = (0..options.read_metrics)
        .map(|index| metric("Bench/Read", 0, index))
        .collect();
    let minutes = options.read_days * 24 * 60;
    let started = clock();
    let mut batch = Vec::with_capacity(1_000);
    let mut loaded = 0usize;
    for minute in 0..minutes {
        for (i, key) in keys.iter().enumerate() {
            batch.push(sample(
                key,
                START_MS + minute * MINUTE_MS,
                ((minute + i as i64) % 100) as f64,
            ));
        }
        if batch.len() >= 1_000 || minute == minutes - 1 {
            store.append(&batch)?;
            loaded += batch.len();
            batch.clear();
        }
    }
    figures.load_samples_per_second = loaded as f64 / started.elapsed().as_secs_f64();

    let end_ms = START_MS + minutes * MINUTE_MS;
    let now_ms = end_ms;
    let mut rounds = Vec::with_capacity(options.read_rounds);
    for _ in 0..options.read_rounds {
        let started = clock();
        let mut aggregates = 0;
        for key in &keys {
            aggregates += store
                .read(key, None, START_MS, end_ms, options.read_period_s, now_ms)?
                .len();
        }
        rounds.push(started.elapsed());
        figures.aggregates_per_read_round = aggregates;
    }
    figures.read_all_metrics = Latency::of(rounds);
    drop(store);

    let started = clock();
    let store = SqliteMetricStore::open(dir)?;
    figures.open = started.elapsed();
    figures.disk_bytes = store.disk_bytes();
    Ok(figures)
}
