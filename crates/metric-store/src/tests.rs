//! Tests of the crate's shared rules (the backends are in `conformance`).

use crate::{check_sample, ListFilter, MetricKey, Sample, StatisticSet};

fn key(dimensions: &[(&str, &str)]) -> MetricKey {
    MetricKey {
        namespace: "AWS/ECS".to_string(),
        metric_name: "CPUUtilization".to_string(),
        dimensions: dimensions
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn list_filters_match_names_values_and_activity() {
    let metric = key(&[("ClusterName", "a"), ("ServiceName", "web")]);
    let check = |filter: ListFilter, last_ms: i64, expected: bool| {
        assert_eq!(filter.matches(&metric, last_ms), expected, "{filter:?}");
    };
    check(ListFilter::default(), 0, true);
    let dimension = |name: &str, value: Option<&str>| ListFilter {
        dimensions: vec![(name.to_string(), value.map(str::to_string))],
        ..ListFilter::default()
    };
    check(dimension("ClusterName", None), 0, true);
    check(dimension("ClusterName", Some("a")), 0, true);
    check(dimension("ClusterName", Some("b")), 0, false);
    check(dimension("TaskId", None), 0, false);
    let active = ListFilter {
        active_since_ms: Some(10),
        ..ListFilter::default()
    };
    check(active.clone(), 10, true);
    check(active, 9, false);
    let named = ListFilter {
        namespace: Some("AWS/ECS".to_string()),
        metric_name: Some("MemoryUtilization".to_string()),
        ..ListFilter::default()
    };
    check(named, 0, false);
    let scoped = |prefix: &str| ListFilter {
        namespace_prefix: Some(prefix.to_string()),
        ..ListFilter::default()
    };
    check(scoped("AWS/"), 0, true);
    check(scoped("App"), 0, false);
}

#[test]
fn samples_are_checked() {
    let good = Sample {
        key: key(&[("A", "1"), ("B", "2")]),
        unit: "None".to_string(),
        timestamp_ms: 0,
        storage_resolution_s: 1,
        stats: StatisticSet {
            sample_count: 2.0,
            sum: 3.0,
            minimum: 1.0,
            maximum: 2.0,
        },
        values: vec![(1.0, 1.0), (2.0, 1.0)],
    };
    assert!(check_sample(&good).is_ok());
    let check = |change: fn(&mut Sample)| {
        let mut bad = good.clone();
        change(&mut bad);
        assert!(check_sample(&bad).is_err(), "{bad:?}");
    };
    check(|s| s.key.dimensions.reverse());
    check(|s| s.key.dimensions[1].0 = "A".to_string());
    check(|s| s.storage_resolution_s = 10);
    check(|s| s.stats.minimum = 5.0);
    check(|s| s.stats.sample_count = 0.0);
    check(|s| s.stats.maximum = f64::INFINITY);
    check(|s| s.values.push((f64::NAN, 1.0)));
    check(|s| s.values.push((1.0, -1.0)));
}
