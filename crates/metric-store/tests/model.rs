//! Seeded random workloads: the SQLite backend answers every read and list
//! exactly as the memory fake does, both agree with aggregates computed from
//! the raw samples where the tiers are all retained, and SQLite keeps
//! everything across a reopen.

use metric_store::sqlite::SqliteMetricStore;
use metric_store::{
    Aggregate, ListFilter, MemoryMetricStore, MetricKey, MetricStore, MetricStoreError, Sample,
    StatisticSet,
};

/// 2025-01-01T00:00:00Z.
const BASE_MS: i64 = 1_735_689_600_000;
const DAY_MS: i64 = 86_400_000;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn keys() -> Vec<MetricKey> {
    let mut keys = Vec::new();
    for namespace in ["AWS/ECS", "Custom"] {
        for name in ["CPUUtilization", "Requests"] {
            for cluster in ["a", "b"] {
                keys.push(MetricKey {
                    namespace: namespace.to_string(),
                    metric_name: name.to_string(),
                    dimensions: vec![("ClusterName".to_string(), cluster.to_string())],
                });
            }
        }
    }
    keys
}

fn random_sample(rng: &mut Rng, keys: &[MetricKey], span_ms: i64) -> Sample {
    let key = keys[rng.below(keys.len() as u64) as usize].clone();
    let unit = ["Percent", "Count"][rng.below(2) as usize].to_string();
    let storage_resolution_s = [1, 60][rng.below(2) as usize];
    let timestamp_ms = BASE_MS + rng.below(span_ms as u64) as i64;
    // Integers keep sums exact whatever the order of addition.
    let value = rng.below(1_000) as f64 - 100.0;
    if rng.below(4) == 0 {
        let spread = rng.below(5) as f64;
        let count = 1.0 + rng.below(3) as f64;
        Sample {
            key,
            unit,
            timestamp_ms,
            storage_resolution_s,
            stats: StatisticSet {
                sample_count: count,
                sum: value * count + spread,
                minimum: value,
                maximum: value + spread,
            },
            values: Vec::new(),
        }
    } else {
        Sample {
            key,
            unit,
            timestamp_ms,
            storage_resolution_s,
            stats: StatisticSet {
                sample_count: 1.0,
                sum: value,
                minimum: value,
                maximum: value,
            },
            values: vec![(value, 1.0)],
        }
    }
}

fn read_all(
    store: &dyn MetricStore,
    key: &MetricKey,
    unit: Option<&str>,
    start_ms: i64,
    end_ms: i64,
    period_s: u32,
    now_ms: i64,
) -> Result<Vec<Aggregate>, MetricStoreError> {
    store.read(key, unit, start_ms, end_ms, period_s, now_ms)
}

#[test]
fn sqlite_agrees_with_memory_and_the_raw_samples() {
    let keys = keys();
    for seed in 1..=3u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let dir = tempfile::tempdir().expect("temporary directory");
        let memory = MemoryMetricStore::new();
        let mut samples = Vec::new();
        {
            let sqlite = SqliteMetricStore::open(dir.path()).expect("open");
            // Two hours of data, appended in random batches.
            let span_ms = 2 * 3_600_000;
            for _ in 0..40 {
                let batch: Vec<Sample> = (0..1 + rng.below(50))
                    .map(|_| random_sample(&mut rng, &keys, span_ms))
                    .collect();
                memory.append(&batch).unwrap();
                sqlite.append(&batch).unwrap();
                samples.extend(batch);
            }
        }
        // Everything survives a reopen.
        let sqlite = SqliteMetricStore::open(dir.path()).expect("reopen");
        let mut checked_against_raw = 0;
        for _ in 0..200 {
            let key = &keys[rng.below(keys.len() as u64) as usize];
            let unit = [None, Some("Percent"), Some("Count")][rng.below(3) as usize];
            let period_s = [1, 10, 30, 60, 120, 300, 900, 3600, 86_400][rng.below(9) as usize];
            let start_ms = BASE_MS - 3_600_000 + rng.below(3 * 3_600_000) as i64;
            let end_ms = start_ms + rng.below(4 * 3_600_000) as i64;
            // Sometimes "now" is weeks later: other tiers answer.
            let now_ms = BASE_MS
                + [
                    3 * 3_600_000,
                    5 * 3_600_000,
                    20 * DAY_MS,
                    100 * DAY_MS,
                    500 * DAY_MS,
                ][rng.below(5) as usize];
            let from_memory =
                read_all(&memory, key, unit, start_ms, end_ms, period_s, now_ms).unwrap();
            let from_sqlite =
                read_all(&sqlite, key, unit, start_ms, end_ms, period_s, now_ms).unwrap();
            assert_eq!(
                from_memory, from_sqlite,
                "seed {seed}: {key:?} {unit:?} [{start_ms}, {end_ms}) period {period_s} now {now_ms}"
            );
            // All tiers retained and 60 dividing the period: each period is
            // exactly its raw samples.
            if now_ms == BASE_MS + 3 * 3_600_000 && period_s % 60 == 0 {
                let period_ms = i64::from(period_s) * 1000;
                let mut expected: std::collections::BTreeMap<(i64, String), StatisticSet> =
                    Default::default();
                for sample in samples
                    .iter()
                    .filter(|s| s.key == *key && unit.is_none_or(|u| u == s.unit))
                {
                    let period = sample.timestamp_ms.div_euclid(period_ms) * period_ms;
                    if period < start_ms || period >= end_ms {
                        continue;
                    }
                    expected
                        .entry((period, sample.unit.clone()))
                        .and_modify(|stats| stats.merge(&sample.stats))
                        .or_insert(sample.stats);
                }
                let got: Vec<((i64, String), StatisticSet)> = from_sqlite
                    .iter()
                    .map(|a| ((a.start_ms, a.unit.clone()), a.stats))
                    .collect();
                checked_against_raw += usize::from(!got.is_empty());
                assert_eq!(got, expected.into_iter().collect::<Vec<_>>(), "seed {seed}");
            }
        }
        assert!(
            checked_against_raw >= 5,
            "only {checked_against_raw} raw checks"
        );
        let all = ListFilter::default();
        assert_eq!(
            memory.list_metrics(&all, None, 1_000).unwrap(),
            sqlite.list_metrics(&all, None, 1_000).unwrap()
        );
        for now_ms in [
            BASE_MS + 4 * 3_600_000,
            BASE_MS + 16 * DAY_MS,
            BASE_MS + 456 * DAY_MS,
        ] {
            assert_eq!(
                memory.apply_retention(now_ms).unwrap(),
                sqlite.apply_retention(now_ms).unwrap()
            );
        }
    }
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    drop(SqliteMetricStore::open(dir.path()).expect("create"));
    let connection =
        rusqlite_free_bump_user_version(&dir.path().join(metric_store::sqlite::FILE_NAME));
    assert!(connection, "bumped the schema version");
    assert!(matches!(
        SqliteMetricStore::open(dir.path()),
        Err(MetricStoreError::Corrupt(_))
    ));
}

/// Sets SQLite's `user_version` (bytes 60..64 of the database header, big
/// endian) without a SQLite dependency in the test; the WAL was
/// checkpointed when the store closed.
fn rusqlite_free_bump_user_version(path: &std::path::Path) -> bool {
    let mut bytes = std::fs::read(path).expect("read the database");
    if bytes.len() < 100 {
        return false;
    }
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(path, bytes).expect("write the database");
    true
}
