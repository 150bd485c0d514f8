//! The conformance suite every [`MetricStore`] backend must pass.
//!
//! Each check is a `pub fn` taking a fresh, empty store. Backends run them
//! all through [`conformance_tests!`](crate::conformance_tests), which
//! expands to one `#[test]` per check so failures are named:
//!
//! ```ignore
//! metric_store::conformance_tests!(metric_store::MemoryMetricStore::new());
//! // A fixture that must outlive the store (a temporary directory) goes first:
//! metric_store::conformance_tests!(
//!     let dir = tempfile::tempdir().unwrap();
//!     metric_store::sqlite::SqliteMetricStore::open(dir.path()).unwrap()
//! );
//! ```
//!
//! Not checked here, because backends may differ: the floating-point order
//! of summation (sums are compared with a tolerance).

use crate::{
    Aggregate, ListFilter, MetricKey, MetricStore, MetricStoreError, Sample, StatisticSet,
};

/// Expands to one `#[test]` per conformance check, each running it against
/// the store built by the given expression. An optional leading
/// `let pattern = expression;` keeps a fixture alive for the whole test.
#[macro_export]
macro_rules! conformance_tests {
    (@each [$fixture:pat = $setup:expr] $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let $fixture = $setup;
                let store = $make;
                $crate::conformance::$check(store);
            }
        )*
    };
    (let $fixture:pat = $setup:expr; $make:expr $(,)?) => {
        $crate::conformance_tests!(@each [$fixture = $setup] $make;
            a_new_store_is_empty,
            samples_aggregate_into_aligned_periods,
            high_resolution_samples_read_at_sub_minute_periods,
            standard_resolution_at_sub_minute_periods_reads_minute_buckets,
            old_periods_fall_back_to_the_finest_retained_tier,
            reads_hide_expired_buckets_before_retention_runs,
            apply_retention_drops_and_counts_expired_buckets,
            units_are_kept_apart_and_filtered,
            resolutions_of_one_unit_merge,
            percentiles_come_from_values_and_single_valued_statistic_sets,
            only_whole_periods_starting_in_range_are_read,
            list_metrics_pages_in_key_order_and_filters,
            list_metrics_reports_the_latest_timestamp_over_units,
            an_invalid_sample_fails_the_whole_append,
            invalid_reads_are_rejected,
            concurrent_appends_all_land,
        );
    };
    ($make:expr $(,)?) => {
        $crate::conformance_tests!(let () = (); $make);
    };
}

const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// A "now" aligned to the hour (2025-01-01T00:00:00Z).
const NOW_MS: i64 = 1_735_689_600_000;

fn key(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> MetricKey {
    MetricKey {
        namespace: namespace.to_string(),
        metric_name: name.to_string(),
        dimensions: dimensions
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn cpu() -> MetricKey {
    key("AWS/ECS", "CPUUtilization", &[("ClusterName", "default")])
}

/// A sample of one value (PutMetricData's `Value`).
fn value(key: &MetricKey, timestamp_ms: i64, value: f64, storage_resolution_s: u32) -> Sample {
    Sample {
        key: key.clone(),
        unit: "Percent".to_string(),
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

fn with_unit(mut sample: Sample, unit: &str) -> Sample {
    sample.unit = unit.to_string();
    sample
}

fn statistic_set(key: &MetricKey, timestamp_ms: i64, stats: StatisticSet) -> Sample {
    Sample {
        key: key.clone(),
        unit: "Percent".to_string(),
        timestamp_ms,
        storage_resolution_s: 60,
        stats,
        values: Vec::new(),
    }
}

fn append(store: &impl MetricStore, samples: &[Sample]) {
    store.append(samples).expect("append");
}

fn read(store: &impl MetricStore, start_ms: i64, end_ms: i64, period_s: u32) -> Vec<Aggregate> {
    store
        .read(&cpu(), None, start_ms, end_ms, period_s, NOW_MS)
        .expect("read")
}

/// (start relative to NOW_MS, sample count, sum, minimum, maximum).
type Expected = (i64, f64, f64, f64, f64);

fn check(got: &[Aggregate], expected: &[Expected]) {
    let got_rows: Vec<Expected> = got
        .iter()
        .map(|a| {
            (
                a.start_ms - NOW_MS,
                a.stats.sample_count,
                a.stats.sum,
                a.stats.minimum,
                a.stats.maximum,
            )
        })
        .collect();
    let close = |a: &Expected, b: &Expected| {
        a.0 == b.0
            && a.1 == b.1
            && (a.2 - b.2).abs() <= 1e-9 * a.2.abs().max(1.0)
            && a.3 == b.3
            && a.4 == b.4
    };
    assert!(
        got_rows.len() == expected.len() && got_rows.iter().zip(expected).all(|(a, b)| close(a, b)),
        "got {got_rows:?}\nexpected {expected:?}"
    );
}

pub fn a_new_store_is_empty(store: impl MetricStore) {
    assert!(read(&store, 0, NOW_MS, 60).is_empty());
    assert!(store
        .list_metrics(&ListFilter::default(), None, 100)
        .unwrap()
        .is_empty());
    assert_eq!(store.apply_retention(NOW_MS).unwrap(), 0);
    store.append(&[]).expect("an empty append");
}

pub fn samples_aggregate_into_aligned_periods(store: impl MetricStore) {
    let m = cpu();
    let t = NOW_MS - HOUR_MS;
    append(
        &store,
        &[
            value(&m, t + 5 * SECOND_MS, 10.0, 60),
            value(&m, t + 50 * SECOND_MS, 30.0, 60),
            value(&m, t + MINUTE_MS, 5.0, 60),
        ],
    );
    append(&store, &[value(&m, t + 7 * MINUTE_MS, 1.0, 60)]);
    let base = -HOUR_MS;
    check(
        &read(&store, t, NOW_MS, 60),
        &[
            (base, 2.0, 40.0, 10.0, 30.0),
            (base + MINUTE_MS, 1.0, 5.0, 5.0, 5.0),
            (base + 7 * MINUTE_MS, 1.0, 1.0, 1.0, 1.0),
        ],
    );
    check(
        &read(&store, t, NOW_MS, 300),
        &[
            (base, 3.0, 45.0, 5.0, 30.0),
            (base + 5 * MINUTE_MS, 1.0, 1.0, 1.0, 1.0),
        ],
    );
    check(
        &read(&store, t, NOW_MS, 3600),
        &[(base, 4.0, 46.0, 1.0, 30.0)],
    );
    // A period that no tier matches exactly but 60 divides: 120 s.
    check(
        &read(&store, t, NOW_MS, 120),
        &[
            (base, 3.0, 45.0, 5.0, 30.0),
            (base + 6 * MINUTE_MS, 1.0, 1.0, 1.0, 1.0),
        ],
    );
    // A day-long period from the hour tier, aligned to the epoch.
    let day = store
        .read(&m, None, NOW_MS - DAY_MS, NOW_MS, 86_400, NOW_MS)
        .unwrap();
    assert_eq!(day.len(), 1);
    assert_eq!(day[0].start_ms, NOW_MS - DAY_MS);
    assert_eq!(day[0].stats.sample_count, 4.0);
    assert_eq!(day[0].unit, "Percent");
}

pub fn high_resolution_samples_read_at_sub_minute_periods(store: impl MetricStore) {
    let m = cpu();
    let t = NOW_MS - HOUR_MS;
    append(
        &store,
        &[
            value(&m, t + 1_500, 1.0, 1),
            value(&m, t + 1_700, 2.0, 1),
            value(&m, t + 12 * SECOND_MS, 4.0, 1),
            value(&m, t + 59 * SECOND_MS, 8.0, 1),
        ],
    );
    let base = -HOUR_MS;
    check(
        &read(&store, t, NOW_MS, 1),
        &[
            (base + SECOND_MS, 2.0, 3.0, 1.0, 2.0),
            (base + 12 * SECOND_MS, 1.0, 4.0, 4.0, 4.0),
            (base + 59 * SECOND_MS, 1.0, 8.0, 8.0, 8.0),
        ],
    );
    check(
        &read(&store, t, NOW_MS, 10),
        &[
            (base, 2.0, 3.0, 1.0, 2.0),
            (base + 10 * SECOND_MS, 1.0, 4.0, 4.0, 4.0),
            (base + 50 * SECOND_MS, 1.0, 8.0, 8.0, 8.0),
        ],
    );
    check(&read(&store, t, NOW_MS, 60), &[(base, 4.0, 15.0, 1.0, 8.0)]);
}

pub fn standard_resolution_at_sub_minute_periods_reads_minute_buckets(store: impl MetricStore) {
    let m = cpu();
    let t = NOW_MS - HOUR_MS;
    append(
        &store,
        &[
            value(&m, t + 15 * SECOND_MS, 1.0, 60),
            value(&m, t + 45 * SECOND_MS, 2.0, 60),
        ],
    );
    // No 1 s tier for standard resolution: the minute's bucket lands in the
    // 10 s period holding the minute's start.
    check(
        &read(&store, t, NOW_MS, 10),
        &[(-HOUR_MS, 2.0, 3.0, 1.0, 2.0)],
    );
}

pub fn old_periods_fall_back_to_the_finest_retained_tier(store: impl MetricStore) {
    let m = cpu();
    let old = NOW_MS - 20 * DAY_MS;
    let recent = NOW_MS - 2 * DAY_MS;
    append(
        &store,
        &[
            value(&m, old, 1.0, 60),
            value(&m, old + MINUTE_MS, 2.0, 60),
            value(&m, recent, 4.0, 60),
            value(&m, recent + MINUTE_MS, 8.0, 60),
        ],
    );
    // 20 days ago only 300 s buckets are left; 2 days ago minutes are.
    check(
        &read(&store, NOW_MS - 30 * DAY_MS, NOW_MS, 60),
        &[
            (-20 * DAY_MS, 2.0, 3.0, 1.0, 2.0),
            (-2 * DAY_MS, 1.0, 4.0, 4.0, 4.0),
            (-2 * DAY_MS + MINUTE_MS, 1.0, 8.0, 8.0, 8.0),
        ],
    );
    // 100 days ago only hours are left.
    let older = NOW_MS - 100 * DAY_MS;
    append(
        &store,
        &[
            value(&m, older + 10 * MINUTE_MS, 1.0, 60),
            value(&m, older + 50 * MINUTE_MS, 3.0, 60),
        ],
    );
    check(
        &read(&store, older, older + HOUR_MS, 300),
        &[(-100 * DAY_MS, 2.0, 4.0, 1.0, 3.0)],
    );
}

pub fn reads_hide_expired_buckets_before_retention_runs(store: impl MetricStore) {
    let m = cpu();
    let four_hours_ago = NOW_MS - 4 * HOUR_MS;
    append(
        &store,
        &[
            value(&m, four_hours_ago + 1_000, 1.0, 1),
            value(&m, four_hours_ago + 2_000, 2.0, 1),
            value(&m, NOW_MS - 500 * DAY_MS, 100.0, 60),
        ],
    );
    // The 1 s buckets are past 3 h: 1 s periods see the minute bucket.
    check(
        &read(&store, four_hours_ago, NOW_MS, 1),
        &[(-4 * HOUR_MS, 2.0, 3.0, 1.0, 2.0)],
    );
    // Past 455 days nothing is left.
    assert!(read(&store, NOW_MS - 501 * DAY_MS, NOW_MS - 499 * DAY_MS, 3600).is_empty());
}

pub fn apply_retention_drops_and_counts_expired_buckets(store: impl MetricStore) {
    let m = cpu();
    let t = NOW_MS - HOUR_MS;
    // Two seconds, one minute, one 5 minutes, one hour: 5 buckets.
    append(
        &store,
        &[value(&m, t, 1.0, 1), value(&m, t + SECOND_MS, 2.0, 1)],
    );
    assert_eq!(store.apply_retention(NOW_MS).unwrap(), 0);
    let hours = |h: i64| t + h * HOUR_MS;
    let before = store.read(&m, None, t, NOW_MS, 60, hours(3)).unwrap();
    // Just past 3 h after the first second, only that one goes.
    assert_eq!(store.apply_retention(hours(3) + 1).unwrap(), 1);
    assert_eq!(store.apply_retention(hours(3) + SECOND_MS + 1).unwrap(), 1);
    assert_eq!(
        store.read(&m, None, t, NOW_MS, 60, hours(3)).unwrap(),
        before
    );
    assert_eq!(store.apply_retention(t + 15 * DAY_MS + 1).unwrap(), 1);
    assert_eq!(store.apply_retention(t + 63 * DAY_MS + 1).unwrap(), 1);
    let late = t + 455 * DAY_MS + 1;
    assert_eq!(store.apply_retention(late).unwrap(), 1);
    assert!(store.read(&m, None, 0, late, 3600, t).unwrap().is_empty());
    // The metric is still listed (the API decides what ListMetrics shows).
    assert_eq!(
        store
            .list_metrics(&ListFilter::default(), None, 10)
            .unwrap(),
        vec![(m, t + SECOND_MS)]
    );
}

pub fn units_are_kept_apart_and_filtered(store: impl MetricStore) {
    let m = cpu();
    let t = NOW_MS - HOUR_MS;
    append(
        &store,
        &[
            with_unit(value(&m, t, 1.0, 60), "Percent"),
            with_unit(value(&m, t, 2.0, 60), "Count"),
            with_unit(value(&m, t + MINUTE_MS, 3.0, 60), "Count"),
        ],
    );
    let all = read(&store, t, NOW_MS, 60);
    let units: Vec<(i64, &str, f64)> = all
        .iter()
        .map(|a| (a.start_ms - t, a.unit.as_str(), a.stats.sum))
        .collect();
    assert_eq!(
        units,
        vec![
            (0, "Count", 2.0),
            (0, "Percent", 1.0),
            (MINUTE_MS, "Count", 3.0)
        ]
    );
    let percent = store
        .read(&m, Some("Percent"), t, NOW_MS, 60, NOW_MS)
        .unwrap();
    assert_eq!(percent.len(), 1);
    assert_eq!(percent[0].unit, "Percent");
    assert!(store
        .read(&m, Some("Bytes"), t, NOW_MS, 60, NOW_MS)
        .unwrap()
        .is_empty());
    assert!(store
        .read(&key("AWS/ECS", "Other", &[]), None, t, NOW_MS, 60, NOW_MS)
        .unwrap()
        .is_empty());
}

pub fn resolutions_of_one_unit_merge(store: impl MetricStore) {
    let m = cpu();
    let t = NOW_MS - HOUR_MS;
    append(
        &store,
        &[
            value(&m, t + 10 * SECOND_MS, 1.0, 1),
            value(&m, t + 20 * SECOND_MS, 2.0, 60),
        ],
    );
    check(
        &read(&store, t, NOW_MS, 60),
        &[(-HOUR_MS, 2.0, 3.0, 1.0, 2.0)],
    );
    // At 10 s: the high-resolution second in its period, the standard
    // minute at the minute's start.
    check(
        &read(&store, t, NOW_MS, 10),
        &[
            (-HOUR_MS, 1.0, 2.0, 2.0, 2.0),
            (-HOUR_MS + 10 * SECOND_MS, 1.0, 1.0, 1.0, 1.0),
        ],
    );
}

pub fn percentiles_come_from_values_and_single_valued_statistic_sets(store: impl MetricStore) {
    let m = cpu();
    let t = NOW_MS - HOUR_MS;
    let mut many = value(&m, t, 0.0, 60);
    many.values = (1..=100).map(|v| (f64::from(v), 1.0)).collect();
    many.values.push((-50.0, 2.0));
    many.stats = StatisticSet {
        sample_count: 102.0,
        sum: 5050.0 - 100.0,
        minimum: -50.0,
        maximum: 100.0,
    };
    let single = statistic_set(
        &m,
        t + MINUTE_MS,
        StatisticSet {
            sample_count: 1.0,
            sum: 7.0,
            minimum: 7.0,
            maximum: 7.0,
        },
    );
    let constant = statistic_set(
        &m,
        t + 2 * MINUTE_MS,
        StatisticSet {
            sample_count: 4.0,
            sum: 12.0,
            minimum: 3.0,
            maximum: 3.0,
        },
    );
    let spread = statistic_set(
        &m,
        t + 3 * MINUTE_MS,
        StatisticSet {
            sample_count: 3.0,
            sum: 6.0,
            minimum: 1.0,
            maximum: 3.0,
        },
    );
    append(&store, &[many, single, constant, spread]);
    let minutes = read(&store, t, NOW_MS, 60);
    assert_eq!(minutes.len(), 4);
    let first = minutes[0]
        .distribution
        .as_ref()
        .expect("values give percentiles");
    assert!((first.percentile(50.0).unwrap() - 49.0).abs() <= 0.5);
    assert!((first.percentile(0.0).unwrap() + 50.0).abs() <= 0.5);
    assert!((first.total_count() - 102.0).abs() < 1e-9);
    let p = |i: usize| {
        minutes[i]
            .distribution
            .as_ref()
            .map(|d| d.percentile(50.0).unwrap())
    };
    assert!((p(1).unwrap() - 7.0).abs() <= 0.07);
    assert!((p(2).unwrap() - 3.0).abs() <= 0.03);
    assert_eq!(minutes[2].distribution.as_ref().unwrap().total_count(), 4.0);
    assert_eq!(p(3), None, "a spread statistic set gives no percentiles");
    // Its period at 5 minutes has none either; the hour neither.
    let five = read(&store, t, NOW_MS, 300);
    assert_eq!(five.len(), 1);
    assert!(five[0].distribution.is_none());
    // Without the spread set, the merged distribution has everything.
    let two = read(&store, t, t + 3 * MINUTE_MS, 180);
    assert_eq!(two.len(), 1);
    assert!((two[0].distribution.as_ref().unwrap().total_count() - 107.0).abs() < 1e-9);
}

pub fn only_whole_periods_starting_in_range_are_read(store: impl MetricStore) {
    let m = cpu();
    let t = NOW_MS - HOUR_MS;
    append(
        &store,
        &[
            value(&m, t, 1.0, 60),
            value(&m, t + MINUTE_MS, 2.0, 60),
            value(&m, t + 2 * MINUTE_MS, 4.0, 60),
        ],
    );
    check(
        &read(&store, t, t + 2 * MINUTE_MS, 60),
        &[
            (-HOUR_MS, 1.0, 1.0, 1.0, 1.0),
            (-HOUR_MS + MINUTE_MS, 1.0, 2.0, 2.0, 2.0),
        ],
    );
    check(
        &read(&store, t + MINUTE_MS, t + 3 * MINUTE_MS, 60),
        &[
            (-HOUR_MS + MINUTE_MS, 1.0, 2.0, 2.0, 2.0),
            (-HOUR_MS + 2 * MINUTE_MS, 1.0, 4.0, 4.0, 4.0),
        ],
    );
    // Whole periods starting in range: an unaligned start skips to the next
    // period, an unaligned end takes the period it falls in whole.
    check(
        &read(&store, t + 1, t + 3 * MINUTE_MS, 60),
        &[
            (-HOUR_MS + MINUTE_MS, 1.0, 2.0, 2.0, 2.0),
            (-HOUR_MS + 2 * MINUTE_MS, 1.0, 4.0, 4.0, 4.0),
        ],
    );
    check(
        &read(&store, t, t + 1, 300),
        &[(-HOUR_MS, 3.0, 7.0, 1.0, 4.0)],
    );
    assert!(read(&store, t + 1, t + 3 * MINUTE_MS, 300).is_empty());
    assert!(read(&store, t, t, 60).is_empty());
}

pub fn list_metrics_pages_in_key_order_and_filters(store: impl MetricStore) {
    let keys = [
        key("AWS/ECS", "CPUUtilization", &[("ClusterName", "a")]),
        key(
            "AWS/ECS",
            "CPUUtilization",
            &[("ClusterName", "a"), ("ServiceName", "web")],
        ),
        key("AWS/ECS", "CPUUtilization", &[("ClusterName", "b")]),
        key("AWS/ECS", "MemoryUtilization", &[("ClusterName", "a")]),
        key("AWS/ECS", "MemoryUtilization", &[]),
        key("Custom", "Requests", &[("ServiceName", "web")]),
    ];
    // Appended out of order, each at its own time.
    for (i, k) in keys.iter().enumerate().rev() {
        append(&store, &[value(k, NOW_MS - (i as i64) * HOUR_MS, 1.0, 60)]);
    }
    let list = |filter: &ListFilter, after: Option<&MetricKey>, limit: usize| -> Vec<usize> {
        store
            .list_metrics(filter, after, limit)
            .unwrap()
            .into_iter()
            .map(|(k, last)| {
                let i = keys.iter().position(|x| *x == k).expect("a known key");
                assert_eq!(last, NOW_MS - (i as i64) * HOUR_MS);
                i
            })
            .collect()
    };
    let all = ListFilter::default();
    let mut expected_order: Vec<usize> = (0..keys.len()).collect();
    expected_order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    assert_eq!(list(&all, None, 100), expected_order);
    // Pages meet exactly.
    let first = list(&all, None, 4);
    let second = list(&all, Some(&keys[first[3]]), 4);
    assert_eq!([first, second].concat(), expected_order);
    assert!(list(&all, Some(&keys[*expected_order.last().unwrap()]), 4).is_empty());
    let filter =
        |namespace: Option<&str>, name: Option<&str>, dimensions: &[(&str, Option<&str>)]| {
            ListFilter {
                namespace: namespace.map(str::to_string),
                metric_name: name.map(str::to_string),
                dimensions: dimensions
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                    .collect(),
                active_since_ms: None,
                ..ListFilter::default()
            }
        };
    assert_eq!(list(&filter(Some("Custom"), None, &[]), None, 100), vec![5]);
    assert_eq!(
        list(
            &filter(Some("AWS/ECS"), Some("MemoryUtilization"), &[]),
            None,
            100
        ),
        vec![4, 3]
    );
    assert_eq!(
        list(
            &filter(None, None, &[("ClusterName", Some("a"))]),
            None,
            100
        ),
        vec![0, 1, 3]
    );
    assert_eq!(
        list(&filter(None, None, &[("ServiceName", None)]), None, 100),
        vec![1, 5]
    );
    assert_eq!(
        list(
            &filter(
                None,
                Some("CPUUtilization"),
                &[("ClusterName", None), ("ServiceName", Some("web"))]
            ),
            None,
            100
        ),
        vec![1]
    );
    assert!(list(&filter(Some("Nope"), None, &[]), None, 100).is_empty());
    let recent = ListFilter {
        active_since_ms: Some(NOW_MS - 2 * HOUR_MS),
        ..ListFilter::default()
    };
    assert_eq!(list(&recent, None, 100), vec![0, 1, 2]);
    // Filters and `after` combine; the limit counts matches.
    assert_eq!(list(&recent, Some(&keys[0]), 1), vec![1]);
}

pub fn list_metrics_reports_the_latest_timestamp_over_units(store: impl MetricStore) {
    let m = cpu();
    append(
        &store,
        &[
            with_unit(value(&m, NOW_MS - HOUR_MS, 1.0, 60), "Count"),
            value(&m, NOW_MS - 2 * HOUR_MS, 1.0, 1),
        ],
    );
    append(&store, &[value(&m, NOW_MS - 3 * HOUR_MS, 1.0, 60)]);
    assert_eq!(
        store
            .list_metrics(&ListFilter::default(), None, 10)
            .unwrap(),
        vec![(m.clone(), NOW_MS - HOUR_MS)]
    );
    append(&store, &[value(&m, NOW_MS - MINUTE_MS, 1.0, 1)]);
    assert_eq!(
        store
            .list_metrics(&ListFilter::default(), None, 10)
            .unwrap(),
        vec![(m, NOW_MS - MINUTE_MS)]
    );
}

pub fn an_invalid_sample_fails_the_whole_append(store: impl MetricStore) {
    let m = cpu();
    let good = value(&m, NOW_MS - HOUR_MS, 1.0, 60);
    let mut unsorted = value(&key("A", "B", &[("z", "1"), ("a", "2")]), NOW_MS, 1.0, 60);
    let mut bad_resolution = value(&m, NOW_MS, 1.0, 60);
    bad_resolution.storage_resolution_s = 5;
    let mut not_finite = value(&m, NOW_MS, 1.0, 60);
    not_finite.stats.sum = f64::NAN;
    let too_many: Vec<(String, String)> = (0..31)
        .map(|i| (format!("d{i:02}"), "v".to_string()))
        .collect();
    let mut many_dimensions = value(&m, NOW_MS, 1.0, 60);
    many_dimensions.key.dimensions = too_many;
    for bad in [
        &mut unsorted,
        &mut bad_resolution,
        &mut not_finite,
        &mut many_dimensions,
    ] {
        let result = store.append(&[good.clone(), bad.clone()]);
        assert!(
            matches!(result, Err(MetricStoreError::InvalidSample { .. })),
            "{result:?}"
        );
    }
    assert!(read(&store, 0, NOW_MS + HOUR_MS, 60).is_empty());
    assert!(store
        .list_metrics(&ListFilter::default(), None, 10)
        .unwrap()
        .is_empty());
}

pub fn invalid_reads_are_rejected(store: impl MetricStore) {
    assert!(matches!(
        store.read(&cpu(), None, 0, NOW_MS, 0, NOW_MS),
        Err(MetricStoreError::InvalidRead(_))
    ));
    assert!(matches!(
        store.read(&cpu(), None, NOW_MS, 0, 60, NOW_MS),
        Err(MetricStoreError::InvalidRead(_))
    ));
}

pub fn concurrent_appends_all_land(store: impl MetricStore) {
    let shared = cpu();
    let t = NOW_MS - HOUR_MS;
    std::thread::scope(|scope| {
        for thread in 0..8i64 {
            let (store, shared) = (&store, &shared);
            scope.spawn(move || {
                let own = key("Custom", "PerThread", &[("Thread", &thread.to_string())]);
                for round in 0..25i64 {
                    let samples = [
                        value(shared, t + round * SECOND_MS, thread as f64, 1),
                        value(&own, t + round * MINUTE_MS, 1.0, 60),
                    ];
                    store.append(&samples).expect("concurrent append");
                }
            });
        }
    });
    let hour = read(&store, t, NOW_MS, 3600);
    assert_eq!(hour.len(), 1);
    assert_eq!(hour[0].stats.sample_count, 200.0);
    assert_eq!(hour[0].stats.sum, 25.0 * (0..8).sum::<i64>() as f64);
    let seconds = read(&store, t, NOW_MS, 1);
    assert_eq!(seconds.len(), 25);
    assert!(seconds.iter().all(|a| a.stats.sample_count == 8.0));
    let listed = store
        .list_metrics(&ListFilter::default(), None, 100)
        .unwrap();
    assert_eq!(listed.len(), 9);
    for (k, _) in listed.iter().filter(|(k, _)| k.namespace == "Custom") {
        let minutes = store.read(k, None, t, NOW_MS, 60, NOW_MS).unwrap();
        assert_eq!(minutes.len(), 25);
    }
}
