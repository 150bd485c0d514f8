//! The metric a target-tracking policy's alarms watch, and the alarms themselves as
//! CloudWatch PutMetricAlarm requests (pure: no I/O).
//!
//! - ECSServiceAverageCPUUtilization / ECSServiceAverageMemoryUtilization: `AWS/ECS`
//!   CPUUtilization / MemoryUtilization with ClusterName and ServiceName, Average.
//! - ALBRequestCountPerTarget: `AWS/ApplicationELB` RequestCountPerTarget with TargetGroup
//!   (the `targetgroup/<name>/<id>` part of ResourceLabel), Sum. TargetValue is requests per
//!   target per minute as on AWS, while Berth's alarm periods are shorter, so the alarm is a
//!   metric-math alarm scaling the per-period sum to a per-minute rate.
//! - CustomizedMetricSpecification: the user's metric and statistic, or their metric math
//!   queries, at the alarm's period.

use api::ApiError;
use application_autoscaling_wire as wire;
use cloudwatch_wire::{Dimension, Metric, MetricDataQuery, MetricStat, PutMetricAlarmInput};
use scaling::{AlarmRole, AlarmSpec};

use crate::error;

/// What a target-tracking policy's alarms watch.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AlarmMetric {
    /// One metric and statistic.
    Single {
        namespace: String,
        metric_name: String,
        dimensions: Vec<(String, String)>,
        statistic: String,
        unit: Option<String>,
    },
    /// Metric math queries; each MetricStat gets the alarm's period.
    Math(Vec<MetricDataQuery>),
    /// ALBRequestCountPerTarget: the per-period Sum scaled to a per-minute rate.
    RequestCountPerTargetPerMinute { target_group: String },
}

/// The predefined metric types Berth serves for ECS services.
pub(crate) const SUPPORTED_PREDEFINED_METRICS: &[wire::MetricType] = &[
    wire::MetricType::ECSServiceAverageCPUUtilization,
    wire::MetricType::ECSServiceAverageMemoryUtilization,
    wire::MetricType::ALBRequestCountPerTarget,
];

/// `service/<cluster>/<service>` → (cluster, service).
pub(crate) fn ecs_service_of(resource_id: &str) -> Option<(&str, &str)> {
    let rest = resource_id.strip_prefix("service/")?;
    let (cluster, service) = rest.split_once('/')?;
    if cluster.is_empty() || service.is_empty() || service.contains('/') {
        return None;
    }
    Some((cluster, service))
}

/// `app/<lb-name>/<lb-id>/targetgroup/<tg-name>/<tg-id>` → `targetgroup/<tg-name>/<tg-id>`.
pub(crate) fn target_group_of_label(label: &str) -> Option<String> {
    let parts: Vec<&str> = label.split('/').collect();
    match parts.as_slice() {
        ["app", lb_name, lb_id, "targetgroup", tg_name, tg_id]
            if [lb_name, lb_id, tg_name, tg_id]
                .iter()
                .all(|p| !p.is_empty()) =>
        {
            Some(format!("targetgroup/{tg_name}/{tg_id}"))
        }
        _ => None,
    }
}

/// The metric of a (validated) target-tracking configuration for the ECS service
/// `resource_id`.
pub(crate) fn alarm_metric(
    configuration: &wire::TargetTrackingScalingPolicyConfiguration,
    resource_id: &str,
) -> Result<AlarmMetric, ApiError> {
    if let Some(predefined) = &configuration.predefined_metric_specification {
        let (cluster, service) = ecs_service_of(resource_id).ok_or_else(|| {
            error::validation(format!("Unsupported resource ID for ecs: {resource_id}"))
        })?;
        let ecs = |metric_name: &str| AlarmMetric::Single {
            namespace: "AWS/ECS".into(),
            metric_name: metric_name.into(),
            dimensions: vec![
                ("ClusterName".into(), cluster.into()),
                ("ServiceName".into(), service.into()),
            ],
            statistic: "Average".into(),
            unit: None,
        };
        return match predefined.predefined_metric_type {
            Some(wire::MetricType::ECSServiceAverageCPUUtilization) => Ok(ecs("CPUUtilization")),
            Some(wire::MetricType::ECSServiceAverageMemoryUtilization) => {
                Ok(ecs("MemoryUtilization"))
            }
            Some(wire::MetricType::ALBRequestCountPerTarget) => {
                let label = predefined.resource_label.as_deref().unwrap_or_default();
                let target_group = target_group_of_label(label)
                    .ok_or_else(|| error::validation(format!("Invalid resource label: {label}")))?;
                Ok(AlarmMetric::RequestCountPerTargetPerMinute { target_group })
            }
            other => Err(error::validation(format!(
                "Unsupported predefined metric type: {}",
                other.map(|t| t.as_str()).unwrap_or("null")
            ))),
        };
    }
    let Some(custom) = &configuration.customized_metric_specification else {
        return Err(error::validation(
            "Either PredefinedMetricSpecification or CustomizedMetricSpecification must be specified",
        ));
    };
    if let Some(queries) = &custom.metrics {
        return Ok(AlarmMetric::Math(
            queries.iter().map(cloudwatch_query).collect(),
        ));
    }
    Ok(AlarmMetric::Single {
        namespace: custom.namespace.clone().unwrap_or_default(),
        metric_name: custom.metric_name.clone().unwrap_or_default(),
        dimensions: custom
            .dimensions
            .iter()
            .flatten()
            .map(|d| {
                (
                    d.name.clone().unwrap_or_default(),
                    d.value.clone().unwrap_or_default(),
                )
            })
            .collect(),
        statistic: custom
            .statistic
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "Average".into()),
        unit: custom.unit.clone(),
    })
}

fn cloudwatch_query(query: &wire::TargetTrackingMetricDataQuery) -> MetricDataQuery {
    MetricDataQuery {
        id: query.id.clone(),
        expression: query.expression.clone(),
        label: query.label.clone(),
        return_data: query.return_data,
        metric_stat: query.metric_stat.as_ref().map(|stat| MetricStat {
            metric: stat.metric.as_ref().map(|metric| Metric {
                namespace: metric.namespace.clone(),
                metric_name: metric.metric_name.clone(),
                dimensions: metric.dimensions.as_ref().map(|dims| {
                    dims.iter()
                        .map(|d| Dimension {
                            name: d.name.clone(),
                            value: d.value.clone(),
                        })
                        .collect()
                }),
            }),
            stat: stat.stat.clone(),
            unit: stat.unit.clone(),
            period: None,
        }),
        ..Default::default()
    }
}

/// `TargetTracking-<resource id>-AlarmHigh-<uuid>` / `…-AlarmLow-<uuid>`.
pub(crate) fn alarm_name(resource_id: &str, role: AlarmRole, id: &str) -> String {
    let role = match role {
        AlarmRole::High => "AlarmHigh",
        AlarmRole::Low => "AlarmLow",
        AlarmRole::Step => "Alarm",
    };
    format!("TargetTracking-{resource_id}-{role}-{id}")
}

/// The PutMetricAlarm request of one alarm of a target-tracking policy.
pub(crate) fn alarm_input(
    name: &str,
    policy_arn: &str,
    metric: &AlarmMetric,
    spec: &AlarmSpec,
) -> PutMetricAlarmInput {
    let mut input = PutMetricAlarmInput {
        alarm_name: Some(name.to_string()),
        alarm_description: Some(format!(
            "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}."
        )),
        actions_enabled: Some(true),
        alarm_actions: Some(vec![policy_arn.to_string()]),
        evaluation_periods: Some(spec.evaluation_periods),
        datapoints_to_alarm: Some(spec.datapoints_to_alarm),
        threshold: Some(spec.threshold),
        comparison_operator: Some(spec.comparison_operator.to_string()),
        ..Default::default()
    };
    let with_period = |query: &MetricDataQuery| {
        let mut query = query.clone();
        if let Some(stat) = &mut query.metric_stat {
            stat.period = Some(spec.period_s);
        }
        query
    };
    match metric {
        AlarmMetric::Single {
            namespace,
            metric_name,
            dimensions,
            statistic,
            unit,
        } => {
            input.namespace = Some(namespace.clone());
            input.metric_name = Some(metric_name.clone());
            input.dimensions = Some(
                dimensions
                    .iter()
                    .map(|(name, value)| Dimension {
                        name: Some(name.clone()),
                        value: Some(value.clone()),
                    })
                    .collect(),
            );
            input.statistic = Some(statistic.clone());
            input.unit = unit.clone();
            input.period = Some(spec.period_s);
        }
        AlarmMetric::Math(queries) => {
            input.metrics = Some(queries.iter().map(with_period).collect());
        }
        AlarmMetric::RequestCountPerTargetPerMinute { target_group } => {
            let per_minute = 60.0 / f64::from(spec.period_s.max(1));
            input.metrics = Some(vec![
                MetricDataQuery {
                    id: Some("m1".into()),
                    metric_stat: Some(MetricStat {
                        metric: Some(Metric {
                            namespace: Some("AWS/ApplicationELB".into()),
                            metric_name: Some("RequestCountPerTarget".into()),
                            dimensions: Some(vec![Dimension {
                                name: Some("TargetGroup".into()),
                                value: Some(target_group.clone()),
                            }]),
                        }),
                        period: Some(spec.period_s),
                        stat: Some("Sum".into()),
                        unit: None,
                    }),
                    return_data: Some(false),
                    ..Default::default()
                },
                MetricDataQuery {
                    id: Some("e1".into()),
                    expression: Some(format!("m1*{per_minute}")),
                    label: Some("RequestCountPerTarget per minute".into()),
                    return_data: Some(true),
                    ..Default::default()
                },
            ]);
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(role: AlarmRole) -> AlarmSpec {
        AlarmSpec {
            role,
            period_s: 10,
            evaluation_periods: 3,
            datapoints_to_alarm: 3,
            threshold: 50.0,
            comparison_operator: "GreaterThanThreshold",
        }
    }

    fn predefined(
        metric: wire::MetricType,
        label: Option<&str>,
    ) -> wire::TargetTrackingScalingPolicyConfiguration {
        wire::TargetTrackingScalingPolicyConfiguration {
            target_value: Some(50.0),
            predefined_metric_specification: Some(wire::PredefinedMetricSpecification {
                predefined_metric_type: Some(metric),
                resource_label: label.map(str::to_string),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn predefined_metrics_map_to_aws_metrics() {
        let cpu = alarm_metric(
            &predefined(wire::MetricType::ECSServiceAverageCPUUtilization, None),
            "service/default/web",
        )
        .unwrap();
        let input = alarm_input("n", "arn:p", &cpu, &spec(AlarmRole::High));
        assert_eq!(input.namespace.as_deref(), Some("AWS/ECS"));
        assert_eq!(input.metric_name.as_deref(), Some("CPUUtilization"));
        assert_eq!(input.statistic.as_deref(), Some("Average"));
        assert_eq!(input.period, Some(10));
        let dims: Vec<_> = input
            .dimensions
            .unwrap()
            .into_iter()
            .map(|d| (d.name.unwrap(), d.value.unwrap()))
            .collect();
        assert_eq!(
            dims,
            vec![
                ("ClusterName".to_string(), "default".to_string()),
                ("ServiceName".to_string(), "web".to_string())
            ]
        );
        assert_eq!(input.alarm_actions, Some(vec!["arn:p".to_string()]));
        assert_eq!(
            input.alarm_description.as_deref(),
            Some("DO NOT EDIT OR DELETE. For TargetTrackingScaling policy arn:p.")
        );

        let alb = alarm_metric(
            &predefined(
                wire::MetricType::ALBRequestCountPerTarget,
                Some("app/lb/0123/targetgroup/web/4567"),
            ),
            "service/default/web",
        )
        .unwrap();
        let input = alarm_input("n", "arn:p", &alb, &spec(AlarmRole::Low));
        let metrics = input.metrics.unwrap();
        assert_eq!(metrics[0].metric_stat.as_ref().unwrap().period, Some(10));
        assert_eq!(metrics[1].expression.as_deref(), Some("m1*6"));
        assert_eq!(
            metrics[0]
                .metric_stat
                .as_ref()
                .unwrap()
                .metric
                .as_ref()
                .unwrap()
                .dimensions
                .as_ref()
                .unwrap()[0]
                .value
                .as_deref(),
            Some("targetgroup/web/4567")
        );

        assert!(alarm_metric(
            &predefined(wire::MetricType::DynamoDBReadCapacityUtilization, None),
            "service/default/web"
        )
        .is_err());
        assert!(alarm_metric(
            &predefined(
                wire::MetricType::ALBRequestCountPerTarget,
                Some("targetgroup/web/1")
            ),
            "service/default/web"
        )
        .is_err());
    }

    #[test]
    fn resource_ids_and_labels() {
        assert_eq!(ecs_service_of("service/c/s"), Some(("c", "s")));
        for bad in ["service/c", "service//s", "service/c/s/x", "cluster/c/s"] {
            assert_eq!(ecs_service_of(bad), None, "{bad}");
        }
        assert_eq!(
            alarm_name("service/c/s", AlarmRole::High, "u"),
            "TargetTracking-service/c/s-AlarmHigh-u"
        );
    }
}
