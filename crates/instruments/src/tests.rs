use super::*;

/// The sample lines of `text` (no comments), for exact assertions.
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|line| !line.starts_with('#')).collect()
}

fn has_sample(text: &str, sample: &str) -> bool {
    samples(text).contains(&sample)
}

/// A sample as `(name, labels in name order, value)`: the formats differ in
/// label order and number spelling (`le="1"` / `le="1.0"`), not in meaning.
fn parse_sample(line: &str) -> (String, Vec<(String, String)>, f64) {
    let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}').expect("labels close")),
        None => (series, ""),
    };
    let mut parsed = Vec::new();
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((index, c)) = chars.next() {
            match c {
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                '"' => {
                    end = index + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        if key == "le" {
            value = value.parse::<f64>().map(|v| v.to_string()).unwrap_or(value);
        }
        parsed.push((key.to_string(), value));
        rest = after[end..].trim_start_matches(',');
    }
    parsed.sort();
    (
        name.to_string(),
        parsed,
        value.parse().expect("a numeric value"),
    )
}

fn check(instruments: &Instruments, format: Format, expected: &[&str]) {
    let text = instruments.encode(format).unwrap();
    let seen: Vec<_> = samples(&text).into_iter().map(parse_sample).collect();
    for sample in expected {
        assert!(
            seen.contains(&parse_sample(sample)),
            "no `{sample}` in ({format:?}):\n{text}"
        );
    }
}

#[test]
fn api_requests_count_by_service_operation_and_code() {
    let instruments = Instruments::new();
    instruments.observe_api_request("ecs", "RunTask", 200, 0.002);
    instruments.observe_api_request("ecs", "RunTask", 200, 0.004);
    instruments.observe_api_request("ecs", "RunTask", 400, 0.001);
    instruments.observe_api_request("elasticloadbalancing", "DescribeLoadBalancers", 200, 0.3);
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        check(
            &instruments,
            format,
            &[
                r#"berth_api_requests_total{service="ecs",operation="RunTask",code="200"} 2"#,
                r#"berth_api_requests_total{service="ecs",operation="RunTask",code="400"} 1"#,
                r#"berth_api_requests_total{service="elasticloadbalancing",operation="DescribeLoadBalancers",code="200"} 1"#,
                r#"berth_api_request_duration_seconds_count{service="ecs",operation="RunTask"} 3"#,
                r#"berth_api_request_duration_seconds_bucket{le="0.0025",service="ecs",operation="RunTask"} 2"#,
                r#"berth_api_request_duration_seconds_bucket{le="0.005",service="ecs",operation="RunTask"} 3"#,
                r#"berth_api_request_duration_seconds_bucket{le="0.25",service="elasticloadbalancing",operation="DescribeLoadBalancers"} 0"#,
                r#"berth_api_request_duration_seconds_bucket{le="0.5",service="elasticloadbalancing",operation="DescribeLoadBalancers"} 1"#,
            ],
        );
    }
}

#[test]
fn the_formats_differ_as_their_specifications_say() {
    let instruments = Instruments::new();
    instruments.observe_controller_pass(0.02);
    let text = instruments.encode(Format::PrometheusText).unwrap();
    assert!(
        text.contains("# TYPE berth_service_controller_passes_total counter"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    let open = instruments.encode(Format::OpenMetrics).unwrap();
    assert!(
        open.contains("# TYPE berth_service_controller_passes counter"),
        "{open}"
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    for text in [&text, &open] {
        assert!(
            has_sample(text, "berth_service_controller_passes_total 1"),
            "{text}"
        );
        assert!(
            has_sample(
                text,
                "berth_service_controller_pass_duration_seconds_bucket{le=\"0.025\"} 1"
            ),
            "{text}"
        );
    }
}

#[test]
fn store_commits_record_latency_and_batch_size() {
    let instruments = Instruments::new();
    instruments.observe_store_commit(0.0004, 1);
    instruments.observe_store_commit(0.003, 12);
    check(
        &instruments,
        Format::PrometheusText,
        &[
            "berth_store_commit_duration_seconds_count 2",
            "berth_store_commit_duration_seconds_bucket{le=\"0.0005\"} 1",
            "berth_store_commit_duration_seconds_bucket{le=\"0.005\"} 2",
            "berth_store_commit_batch_requests_count 2",
            "berth_store_commit_batch_requests_sum 13.0",
            "berth_store_commit_batch_requests_bucket{le=\"1.0\"} 1",
            "berth_store_commit_batch_requests_bucket{le=\"16.0\"} 2",
        ],
    );
}

#[test]
fn placement_results_are_bounded_to_ecs_reasons() {
    let instruments = Instruments::new();
    instruments.add_placements(PLACED, 3);
    instruments.add_placements("RESOURCE:MEMORY", 2);
    instruments.add_placements(NO_CONTAINER_INSTANCES, 1);
    instruments.add_placements("something the scheduler never says", 4);
    instruments.add_placements("RESOURCE:CPU", 0);
    let text = instruments.encode(Format::PrometheusText).unwrap();
    check(
        &instruments,
        Format::PrometheusText,
        &[
            r#"berth_placements_total{result="placed"} 3"#,
            r#"berth_placements_total{result="RESOURCE:MEMORY"} 2"#,
            r#"berth_placements_total{result="no_container_instances"} 1"#,
            r#"berth_placements_total{result="other"} 4"#,
        ],
    );
    assert!(
        !text.contains("RESOURCE:CPU"),
        "zero adds create no series:\n{text}"
    );
}

#[test]
fn agent_sessions_count_while_their_guard_lives() {
    let instruments = Instruments::new();
    let first = instruments.open_agent_session();
    let second = instruments.open_agent_session();
    check(
        &instruments,
        Format::PrometheusText,
        &[
            "berth_agent_sessions 2",
            "berth_agent_sessions_opened_total 2",
        ],
    );
    drop(first);
    check(
        &instruments,
        Format::PrometheusText,
        &["berth_agent_sessions 1"],
    );
    drop(second);
    check(
        &instruments,
        Format::PrometheusText,
        &[
            "berth_agent_sessions 0",
            "berth_agent_sessions_opened_total 2",
        ],
    );
}

fn dims(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn aws_gauges_keep_the_latest_value_and_counters_add_deltas() {
    let instruments = Instruments::new();
    let service = dims(&[("ServiceName", "web"), ("ClusterName", "default")]);
    instruments.observe_aws_gauge("AWS/ECS", "CPUUtilization", &service, 12.5);
    instruments.observe_aws_gauge("AWS/ECS", "CPUUtilization", &service, 40.0);
    let lb = dims(&[("LoadBalancer", "app/web/0123456789abcdef")]);
    instruments.add_aws_count("AWS/ApplicationELB", "RequestCount", &lb, 3.0);
    instruments.add_aws_count("AWS/ApplicationELB", "RequestCount", &lb, 4.0);
    // A negative or non-finite delta is not a count.
    instruments.add_aws_count("AWS/ApplicationELB", "RequestCount", &lb, -1.0);
    instruments.add_aws_count("AWS/ApplicationELB", "RequestCount", &lb, f64::NAN);
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        check(
            &instruments,
            format,
            &[
                r#"aws_ecs_cpuutilization{ClusterName="default",ServiceName="web"} 40.0"#,
                r#"aws_applicationelb_requestcount_total{LoadBalancer="app/web/0123456789abcdef"} 7.0"#,
                "berth_aws_metric_series_dropped_total 0",
            ],
        );
    }
    let text = instruments.encode(Format::PrometheusText).unwrap();
    assert!(
        text.contains("# TYPE aws_ecs_cpuutilization gauge"),
        "{text}"
    );
    assert!(
        text.contains("# HELP aws_ecs_cpuutilization CloudWatch AWS/ECS CPUUtilization: the latest value Berth published"),
        "{text}"
    );
}

#[test]
fn a_name_keeps_its_first_kind() {
    let instruments = Instruments::new();
    instruments.observe_aws_gauge("AWS/ECS", "CPUUtilization", &[], 1.0);
    instruments.add_aws_count("AWS/ECS", "CPUUtilization", &[], 5.0);
    check(
        &instruments,
        Format::PrometheusText,
        &[
            "aws_ecs_cpuutilization 1.0",
            "berth_aws_metric_series_dropped_total 1",
        ],
    );
}

#[test]
fn aws_series_are_bounded() {
    let instruments = Instruments::new();
    for index in 0..aws::MAX_SERIES + 5 {
        let dimensions = dims(&[("TaskId", &index.to_string())]);
        instruments.observe_aws_gauge("AWS/ECS", "MemoryUtilization", &dimensions, 1.0);
    }
    // A series already kept still updates when full.
    instruments.observe_aws_gauge(
        "AWS/ECS",
        "MemoryUtilization",
        &dims(&[("TaskId", "0")]),
        9.0,
    );
    let text = instruments.encode(Format::PrometheusText).unwrap();
    let kept = samples(&text)
        .iter()
        .filter(|line| line.starts_with("aws_ecs_memoryutilization{"))
        .count();
    assert_eq!(kept, aws::MAX_SERIES);
    assert!(has_sample(
        &text,
        r#"aws_ecs_memoryutilization{TaskId="0"} 9.0"#
    ));
    assert!(
        has_sample(&text, "berth_aws_metric_series_dropped_total 5"),
        "dropped count"
    );
}

#[test]
fn aws_names_follow_the_documented_rule() {
    let names = [
        ("AWS/ECS", "CPUUtilization", "aws_ecs_cpuutilization"),
        (
            "AWS/ApplicationELB",
            "RequestCount",
            "aws_applicationelb_requestcount",
        ),
        (
            "AWS/ApplicationELB",
            "HTTPCode_Target_2XX_Count",
            "aws_applicationelb_httpcode_target_2xx_count",
        ),
        (
            "ECS/ContainerInsights",
            "CpuUtilized",
            "ecs_containerinsights_cpuutilized",
        ),
        ("9lives", "x.y-z", "_9lives_x_y_z"),
    ];
    for (namespace, metric, expected) in names {
        assert_eq!(aws::metric_name_for(namespace, metric), expected);
    }
    let labels = [
        ("ClusterName", "ClusterName"),
        ("Availability Zone", "Availability_Zone"),
        ("1st", "d1st"),
        ("__name__", "d__name__"),
        ("", "d"),
    ];
    for (dimension, expected) in labels {
        assert_eq!(aws::label_name_for(dimension), expected);
    }
}

#[test]
fn colliding_dimension_names_keep_the_first() {
    let instruments = Instruments::new();
    let dimensions = dims(&[("a.b", "first"), ("a_b", "second")]);
    instruments.observe_aws_gauge("AWS/ECS", "X", &dimensions, 1.0);
    check(
        &instruments,
        Format::PrometheusText,
        &[r#"aws_ecs_x{a_b="first"} 1.0"#],
    );
}

#[test]
fn label_values_are_escaped() {
    let instruments = Instruments::new();
    let dimensions = dims(&[("ServiceName", "we\"b\\\n")]);
    instruments.observe_aws_gauge("AWS/ECS", "X", &dimensions, 1.0);
    let text = instruments.encode(Format::PrometheusText).unwrap();
    assert!(
        has_sample(&text, r#"aws_ecs_x{ServiceName="we\"b\\\n"} 1.0"#),
        "{text}"
    );
}

#[test]
fn negotiation_follows_the_accept_header() {
    let cases: &[(Option<&str>, Format)] = &[
        (None, Format::PrometheusText),
        (Some(""), Format::PrometheusText),
        (Some("*/*"), Format::PrometheusText),
        (Some("text/plain; version=0.0.4"), Format::PrometheusText),
        (Some("application/openmetrics-text"), Format::OpenMetrics),
        // What Prometheus 2.x sends.
        (
            Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::OpenMetrics,
        ),
        (
            Some("application/openmetrics-text;q=0.2, text/plain;q=0.9"),
            Format::PrometheusText,
        ),
        (Some("application/openmetrics-text;q=0"), Format::PrometheusText),
        (Some("application/json"), Format::PrometheusText),
    ];
    for (accept, expected) in cases {
        assert_eq!(Format::negotiate(*accept), *expected, "{accept:?}");
    }
    assert_eq!(
        Format::PrometheusText.content_type(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(Format::OpenMetrics
        .content_type()
        .starts_with("application/openmetrics-text; version=1.0.0"));
}

#[test]
fn the_global_instruments_are_one_set() {
    add_aws_count("Test/Global", "Count", &[], 2.0);
    add_aws_count("Test/Global", "Count", &[], 3.0);
    observe_aws_gauge("Test/Global", "Level", &[], 4.0);
    let text = global().encode(Format::PrometheusText).unwrap();
    assert!(has_sample(&text, "test_global_count_total 5.0"), "{text}");
    assert!(has_sample(&text, "test_global_level 4.0"), "{text}");
}

#[test]
fn a_stopwatch_measures_forward() {
    let stopwatch = Stopwatch::start();
    assert!(stopwatch.elapsed_s() >= 0.0);
    assert!(stopwatch.elapsed() <= stopwatch.elapsed());
}
