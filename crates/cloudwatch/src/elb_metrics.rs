//! `AWS/ApplicationELB` metrics from a load balancer's traffic report (pure): what the
//! proxy counted since the previous report, as CloudWatch names it. Dimensions are
//! `LoadBalancer` (`app/<name>/<id>`), and `LoadBalancer` + `TargetGroup`
//! (`targetgroup/<name>/<id>`) or `TargetGroup` alone for the per-target-group figures.
//! Berth runs one load balancer node, in the first zone DescribeLoadBalancers lists
//! (`<region>a`): every figure with a `LoadBalancer` dimension is also published with that
//! `AvailabilityZone`, as AWS publishes per-zone figures.
//! As on AWS, count metrics are reported only when non-zero, while HealthyHostCount and
//! UnHealthyHostCount are reported every time.

use load_balancer::TrafficReport;
use metric_store::Sample;

use crate::ecs_metrics::sample;

const NAMESPACE: &str = "AWS/ApplicationELB";

/// `app/<name>/<id>` of a load balancer ARN, `targetgroup/<name>/<id>` of a target group's:
/// the ARN's resource, without `loadbalancer/` for a load balancer.
fn dimension_value<'a>(arn: &'a str, resource: &str) -> &'a str {
    let part = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    match resource {
        "loadbalancer" => part.strip_prefix("loadbalancer/").unwrap_or(part),
        _ => part,
    }
}

/// The samples of one report of load balancer `load_balancer_arn`, timestamped `now_ms`.
pub fn traffic_samples(
    load_balancer_arn: &str,
    report: &TrafficReport,
    now_ms: i64,
) -> Vec<Sample> {
    let region = load_balancer_arn.split(':').nth(3).unwrap_or_default();
    let namespace = crate::metrics::scoped(region, NAMESPACE);
    let load_balancer = dimension_value(load_balancer_arn, "loadbalancer");
    let lb_dims = [("LoadBalancer", load_balancer)];
    let mut out = Vec::new();
    let count = |out: &mut Vec<Sample>, dims: &[(&str, &str)], name: &str, value: u64| {
        if value > 0 {
            out.push(sample(
                &namespace,
                name,
                dims,
                "Count",
                now_ms,
                value as f64,
                1.0,
            ));
        }
    };
    let lb = &report.load_balancer;
    for (name, value) in [
        ("RequestCount", lb.request_count),
        ("NewConnectionCount", lb.new_connection_count()),
        ("HTTPCode_ELB_3XX_Count", lb.http_code_elb_3xx_count),
        ("HTTPCode_ELB_4XX_Count", lb.http_code_elb_4xx_count),
        ("HTTPCode_ELB_5XX_Count", lb.http_code_elb_5xx_count),
        ("HTTPCode_ELB_500_Count", lb.http_code_elb_500_count),
        ("HTTPCode_ELB_502_Count", lb.http_code_elb_502_count),
        ("HTTPCode_ELB_503_Count", lb.http_code_elb_503_count),
        ("HTTPCode_ELB_504_Count", lb.http_code_elb_504_count),
        ("HTTP_Fixed_Response_Count", lb.http_fixed_response_count),
        ("HTTP_Redirect_Count", lb.http_redirect_count),
        ("RejectedConnectionCount", lb.rejected_connection_count),
        ("ActiveConnectionCount", lb.active_connection_count()),
    ] {
        count(&mut out, &lb_dims, name, value);
    }
    if lb.processed_bytes > 0 {
        out.push(sample(
            &namespace,
            "ProcessedBytes",
            &lb_dims,
            "Bytes",
            now_ms,
            lb.processed_bytes as f64,
            1.0,
        ));
    }
    let mut all_targets = load_balancer::TargetCounts::default();
    let mut all_times = load_balancer::ResponseTimeDistribution::default();
    for (target_group_arn, traffic) in &report.target_groups {
        let target_group = dimension_value(target_group_arn, "targetgroup");
        let both = [
            ("LoadBalancer", load_balancer),
            ("TargetGroup", target_group),
        ];
        let alone = [("TargetGroup", target_group)];
        let totals = traffic.totals();
        all_targets.add(&totals);
        all_times.add(&traffic.response_times);
        for (name, value) in [
            ("RequestCount", totals.request_count),
            (
                "HTTPCode_Target_2XX_Count",
                totals.http_code_target_2xx_count,
            ),
            (
                "HTTPCode_Target_3XX_Count",
                totals.http_code_target_3xx_count,
            ),
            (
                "HTTPCode_Target_4XX_Count",
                totals.http_code_target_4xx_count,
            ),
            (
                "HTTPCode_Target_5XX_Count",
                totals.http_code_target_5xx_count,
            ),
            (
                "TargetConnectionErrorCount",
                totals.target_connection_error_count,
            ),
        ] {
            count(&mut out, &both, name, value);
        }
        if totals.request_count > 0 {
            // AWS: RequestCount divided by the number of healthy targets.
            let per_target =
                totals.request_count as f64 / f64::from(traffic.healthy_host_count.max(1));
            for dims in [&both[..], &alone[..]] {
                out.push(sample(
                    &namespace,
                    "RequestCountPerTarget",
                    dims,
                    "Count",
                    now_ms,
                    per_target,
                    1.0,
                ));
            }
        }
        for dims in [&both[..], &alone[..]] {
            out.push(sample(
                &namespace,
                "HealthyHostCount",
                dims,
                "Count",
                now_ms,
                f64::from(traffic.healthy_host_count),
                1.0,
            ));
            out.push(sample(
                &namespace,
                "UnHealthyHostCount",
                dims,
                "Count",
                now_ms,
                f64::from(traffic.unhealthy_host_count),
                1.0,
            ));
        }
        if let Some(times) =
            response_time_sample(&namespace, &both, &traffic.response_times, now_ms)
        {
            out.push(times);
        }
    }
    for (name, value) in [
        (
            "HTTPCode_Target_2XX_Count",
            all_targets.http_code_target_2xx_count,
        ),
        (
            "HTTPCode_Target_3XX_Count",
            all_targets.http_code_target_3xx_count,
        ),
        (
            "HTTPCode_Target_4XX_Count",
            all_targets.http_code_target_4xx_count,
        ),
        (
            "HTTPCode_Target_5XX_Count",
            all_targets.http_code_target_5xx_count,
        ),
        (
            "TargetConnectionErrorCount",
            all_targets.target_connection_error_count,
        ),
    ] {
        count(&mut out, &lb_dims, name, value);
    }
    if let Some(times) = response_time_sample(&namespace, &lb_dims, &all_times, now_ms) {
        out.push(times);
    }
    let zone = format!("{region}a");
    let zonal: Vec<Sample> = out
        .iter()
        .filter(|sample| {
            sample
                .key
                .dimensions
                .iter()
                .any(|(name, _)| name == "LoadBalancer")
        })
        .map(|sample| {
            let mut zonal = sample.clone();
            zonal
                .key
                .dimensions
                .push(("AvailabilityZone".to_string(), zone.clone()));
            zonal.key.dimensions.sort();
            zonal
        })
        .collect();
    out.extend(zonal);
    out
}

/// TargetResponseTime: one sample carrying the report's response times with their counts,
/// so Average and percentiles come out per period.
fn response_time_sample(
    namespace: &str,
    dims: &[(&str, &str)],
    times: &load_balancer::ResponseTimeDistribution,
    now_ms: i64,
) -> Option<Sample> {
    let values: Vec<(f64, f64)> = times
        .values_s()
        .into_iter()
        .map(|(seconds, count)| (seconds, count as f64))
        .collect();
    if values.is_empty() {
        return None;
    }
    let mut sample = sample(
        namespace,
        "TargetResponseTime",
        dims,
        "Seconds",
        now_ms,
        0.0,
        1.0,
    );
    sample.stats.sample_count = values.iter().map(|(_, c)| c).sum();
    sample.stats.sum = values.iter().map(|(v, c)| v * c).sum();
    sample.stats.minimum = values.iter().map(|(v, _)| *v).fold(f64::INFINITY, f64::min);
    sample.stats.maximum = values
        .iter()
        .map(|(v, _)| *v)
        .fold(f64::NEG_INFINITY, f64::max);
    sample.values = values;
    Some(sample)
}

#[cfg(test)]
mod tests {
    use super::*;
    use load_balancer::{LoadBalancerTraffic, Target, TargetCounts, TargetGroupTraffic};

    const LB: &str =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef";
    const TG: &str =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/blue/fedcba9876543210";

    fn value<'a>(samples: &'a [Sample], name: &str, dims: usize) -> Option<&'a Sample> {
        samples
            .iter()
            .find(|s| s.key.metric_name == name && s.key.dimensions.len() == dims)
    }

    #[test]
    fn reports_become_cloudwatchs_metrics() {
        assert_eq!(
            dimension_value(LB, "loadbalancer"),
            "app/web/0123456789abcdef"
        );
        assert_eq!(
            dimension_value(TG, "targetgroup"),
            "targetgroup/blue/fedcba9876543210"
        );
        let mut response_times = load_balancer::ResponseTimeDistribution::default();
        for micros in [1_000, 2_000, 2_000] {
            response_times.record_us(micros);
        }
        let mut targets = std::collections::BTreeMap::new();
        targets.insert(
            Target {
                id: std::net::Ipv4Addr::LOCALHOST.into(),
                port: 80,
            },
            TargetCounts {
                request_count: 3,
                http_code_target_2xx_count: 3,
                ..Default::default()
            },
        );
        let report = TrafficReport {
            load_balancer: LoadBalancerTraffic {
                request_count: 4,
                processed_bytes: 900,
                http_code_elb_5xx_count: 1,
                http_code_elb_503_count: 1,
                ..Default::default()
            },
            target_groups: [(
                TG.to_string(),
                TargetGroupTraffic {
                    targets,
                    response_times,
                    healthy_host_count: 2,
                    unhealthy_host_count: 0,
                },
            )]
            .into_iter()
            .collect(),
        };
        let samples = traffic_samples(LB, &report, 1_000);
        assert!(samples
            .iter()
            .all(|s| s.key.namespace == "us-east-1/AWS/ApplicationELB"));
        assert_eq!(value(&samples, "RequestCount", 1).unwrap().stats.sum, 4.0);
        assert_eq!(value(&samples, "RequestCount", 2).unwrap().stats.sum, 3.0);
        assert_eq!(
            value(&samples, "RequestCountPerTarget", 1)
                .unwrap()
                .stats
                .sum,
            1.5
        );
        assert_eq!(
            value(&samples, "HTTPCode_ELB_503_Count", 1)
                .unwrap()
                .stats
                .sum,
            1.0
        );
        assert!(value(&samples, "HTTPCode_ELB_4XX_Count", 1).is_none());
        assert_eq!(
            value(&samples, "UnHealthyHostCount", 2).unwrap().stats.sum,
            0.0
        );
        let times = value(&samples, "TargetResponseTime", 2).unwrap();
        assert_eq!(times.stats.sample_count, 3.0);
        assert!(
            (times.stats.sum / 3.0 - 0.001_666).abs() < 0.000_2,
            "{times:?}"
        );
        assert_eq!(value(&samples, "ProcessedBytes", 1).unwrap().unit, "Bytes");
    }
}
