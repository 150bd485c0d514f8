//! PutScalingPolicy, DescribeScalingPolicies, DeleteScalingPolicy.
//!
//! A target-tracking policy owns its CloudWatch alarms (AlarmHigh, and AlarmLow unless
//! scale-in is disabled): PutScalingPolicy creates or updates them in place (same names) and
//! deletes the ones the new configuration no longer needs; DeleteScalingPolicy and
//! DeregisterScalableTarget delete them. A step policy's alarms are the user's: those whose
//! AlarmActions name the policy ARN, looked up when the policy is described.

use api::records::{self, MAX_CAS_ATTEMPTS};
use api::{ApiError, RequestContext};
use application_autoscaling_wire as wire;
use scaling::AlarmRole;
use serde_json::Value;

use super::{decode_token, page_size, require_ecs, require_ecs_dimension, target_ref};
use crate::metrics::{self, SUPPORTED_PREDEFINED_METRICS};
use crate::records::{
    epoch_s, get_target, namespace_records_prefix, new_policy_arn, policies_prefix, policy_key,
    PolicyRecord, POLICIES,
};
use crate::validate::Violations;
use crate::{error, ApplicationAutoScaling};

/// AWS's quota: scaling policies (of all types) per scalable target.
pub(crate) const MAX_POLICIES_PER_TARGET: usize = 50;
/// AWS's quota: step adjustments per step scaling policy.
pub(crate) const MAX_STEP_ADJUSTMENTS: usize = 20;
/// ScaleOutCooldown, ScaleInCooldown and Cooldown when not given (ECS services).
pub(crate) const DEFAULT_COOLDOWN_S: i64 = 300;
/// TargetValue's range in the model's documentation: ±2^360.
const MAX_METRIC_SCALE: f64 = 2.348_542_582_773_833_2e108;

/// The alarms a target-tracking policy owns (none for a step policy).
pub(crate) fn owned_alarm_names(policy: &wire::ScalingPolicy) -> Vec<String> {
    if policy.policy_type != Some(wire::PolicyType::TargetTrackingScaling) {
        return Vec::new();
    }
    policy
        .alarms
        .iter()
        .flatten()
        .filter_map(|alarm| alarm.alarm_name.clone())
        .collect()
}

/// A stored policy as the pure `scaling` crate sees it, with AWS's defaults applied; `None`
/// for a policy type Berth does not run. The alarms are the controller's to observe.
pub(crate) fn policy_configuration(
    policy: &wire::ScalingPolicy,
) -> Option<scaling::PolicyConfiguration> {
    match policy.policy_type? {
        wire::PolicyType::TargetTrackingScaling => {
            let c = policy
                .target_tracking_scaling_policy_configuration
                .as_ref()?;
            Some(scaling::PolicyConfiguration::TargetTracking {
                target_value: c.target_value?,
                scale_out_cooldown_s: c.scale_out_cooldown.map_or(DEFAULT_COOLDOWN_S, i64::from),
                scale_in_cooldown_s: c.scale_in_cooldown.map_or(DEFAULT_COOLDOWN_S, i64::from),
                disable_scale_in: c.disable_scale_in.unwrap_or(false),
            })
        }
        wire::PolicyType::StepScaling => {
            let c = policy.step_scaling_policy_configuration.as_ref()?;
            Some(scaling::PolicyConfiguration::Step {
                adjustment_type: match c.adjustment_type? {
                    wire::AdjustmentType::ChangeInCapacity => {
                        scaling::AdjustmentType::ChangeInCapacity
                    }
                    wire::AdjustmentType::PercentChangeInCapacity => {
                        scaling::AdjustmentType::PercentChangeInCapacity
                    }
                    wire::AdjustmentType::ExactCapacity => scaling::AdjustmentType::ExactCapacity,
                },
                step_adjustments: c
                    .step_adjustments
                    .iter()
                    .flatten()
                    .map(|s| scaling::StepAdjustment {
                        metric_interval_lower_bound: s.metric_interval_lower_bound,
                        metric_interval_upper_bound: s.metric_interval_upper_bound,
                        scaling_adjustment: s.scaling_adjustment.unwrap_or(0),
                    })
                    .collect(),
                min_adjustment_magnitude: c.min_adjustment_magnitude,
                cooldown_s: c.cooldown.map_or(DEFAULT_COOLDOWN_S, i64::from),
                metric_aggregation: match c.metric_aggregation_type {
                    None | Some(wire::MetricAggregationType::Average) => {
                        scaling::MetricAggregation::Average
                    }
                    Some(wire::MetricAggregationType::Minimum) => {
                        scaling::MetricAggregation::Minimum
                    }
                    Some(wire::MetricAggregationType::Maximum) => {
                        scaling::MetricAggregation::Maximum
                    }
                },
            })
        }
        wire::PolicyType::PredictiveScaling => None,
    }
}

fn alarm_arn(ctx: &RequestContext, name: &str) -> String {
    format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{name}",
        ctx.region, ctx.account_id
    )
}

fn role_of(name: &str) -> Option<AlarmRole> {
    if name.contains("-AlarmHigh-") {
        Some(AlarmRole::High)
    } else if name.contains("-AlarmLow-") {
        Some(AlarmRole::Low)
    } else {
        None
    }
}

/// The model's constraints on a StepScalingPolicyConfiguration, then AWS's step rules.
pub(crate) fn check_step_configuration(
    configuration: &wire::StepScalingPolicyConfiguration,
) -> Result<(), ApiError> {
    let member = "StepScalingPolicyConfiguration";
    let mut violations = Violations::new();
    for (index, step) in configuration.step_adjustments.iter().flatten().enumerate() {
        violations.required(
            &format!(
                "{member}.StepAdjustments.{}.member.ScalingAdjustment",
                index + 1
            ),
            step.scaling_adjustment.as_ref(),
        );
    }
    violations.finish()?;
    let Some(adjustment_type) = configuration.adjustment_type else {
        return Err(error::validation(
            "AdjustmentType is required for a step scaling policy configuration.",
        ));
    };
    let steps = configuration
        .step_adjustments
        .as_deref()
        .unwrap_or_default();
    if steps.is_empty() {
        return Err(error::validation(
            "At least one step adjustment is required for a step scaling policy configuration.",
        ));
    }
    if steps.len() > MAX_STEP_ADJUSTMENTS {
        return Err(error::limit_exceeded(format!(
            "A step scaling policy can have at most {MAX_STEP_ADJUSTMENTS} step adjustments; {} were given.",
            steps.len()
        )));
    }
    if configuration.min_adjustment_magnitude.is_some()
        && adjustment_type != wire::AdjustmentType::PercentChangeInCapacity
    {
        return Err(error::validation(
            "MinAdjustmentMagnitude may only be specified when AdjustmentType is PercentChangeInCapacity.",
        ));
    }
    if configuration
        .min_adjustment_magnitude
        .is_some_and(|m| m < 1)
    {
        return Err(error::validation(
            "MinAdjustmentMagnitude must be greater than or equal to 1.",
        ));
    }
    if configuration.cooldown.is_some_and(|c| c < 0) {
        return Err(error::validation(
            "Cooldown must be greater than or equal to 0.",
        ));
    }
    if adjustment_type == wire::AdjustmentType::ExactCapacity
        && steps.iter().any(|s| s.scaling_adjustment.unwrap_or(0) < 0)
    {
        return Err(error::validation(
            "The scaling adjustment of an ExactCapacity step adjustment cannot be negative.",
        ));
    }
    check_step_bounds(steps)
}

/// AWS's rules: ranges neither overlap nor leave a gap; at most one null lower and one null
/// upper bound, never both in one step; a negative lower bound needs a step with a null lower
/// bound, a positive upper bound one with a null upper bound.
fn check_step_bounds(steps: &[wire::StepAdjustment]) -> Result<(), ApiError> {
    let invalid = |message: &str| Err(error::validation(message.to_string()));
    let mut intervals: Vec<(f64, f64)> = Vec::with_capacity(steps.len());
    for step in steps {
        let lower = step.metric_interval_lower_bound;
        let upper = step.metric_interval_upper_bound;
        if lower.is_none() && upper.is_none() {
            return invalid("The upper and lower bound of a step adjustment cannot both be null.");
        }
        let lower = lower.unwrap_or(f64::NEG_INFINITY);
        let upper = upper.unwrap_or(f64::INFINITY);
        if lower >= upper {
            return invalid(
                "The lower bound of a step adjustment must be less than its upper bound.",
            );
        }
        intervals.push((lower, upper));
    }
    let null_lower = intervals.iter().filter(|(l, _)| l.is_infinite()).count();
    let null_upper = intervals.iter().filter(|(_, u)| u.is_infinite()).count();
    if null_lower > 1 {
        return invalid("At most one step adjustment can have a null lower bound.");
    }
    if null_upper > 1 {
        return invalid("At most one step adjustment can have a null upper bound.");
    }
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in intervals.windows(2) {
        if pair[0].1 > pair[1].0 {
            return invalid("The ranges of your step adjustments can't overlap.");
        }
        if pair[0].1 < pair[1].0 {
            return invalid("The ranges of your step adjustments can't have a gap.");
        }
    }
    let lowest = intervals.first().map(|i| i.0).unwrap_or(0.0);
    let highest = intervals.last().map(|i| i.1).unwrap_or(0.0);
    if lowest.is_finite() && lowest < 0.0 {
        return invalid("A step adjustment has a negative lower bound, so there must be a step adjustment with a null lower bound.");
    }
    if highest.is_finite() && highest > 0.0 {
        return invalid("A step adjustment has a positive upper bound, so there must be a step adjustment with a null upper bound.");
    }
    Ok(())
}

/// The model's constraints on a TargetTrackingScalingPolicyConfiguration, then AWS's rules
/// and what Berth serves.
pub(crate) fn check_target_tracking_configuration(
    configuration: &wire::TargetTrackingScalingPolicyConfiguration,
) -> Result<(), ApiError> {
    let member = "TargetTrackingScalingPolicyConfiguration";
    let mut violations = Violations::new();
    violations.required(
        &format!("{member}.TargetValue"),
        configuration.target_value.as_ref(),
    );
    if let Some(predefined) = &configuration.predefined_metric_specification {
        let member = format!("{member}.PredefinedMetricSpecification");
        violations.required(
            &format!("{member}.PredefinedMetricType"),
            predefined.predefined_metric_type.as_ref(),
        );
        violations.string(
            &format!("{member}.ResourceLabel"),
            predefined.resource_label.as_deref(),
            1,
            1023,
            None,
        );
    }
    if let Some(custom) = &configuration.customized_metric_specification {
        for (index, query) in custom.metrics.iter().flatten().enumerate() {
            let member = format!(
                "{member}.CustomizedMetricSpecification.Metrics.{}.member",
                index + 1
            );
            violations.required(&format!("{member}.Id"), query.id.as_ref());
            violations.string(&format!("{member}.Id"), query.id.as_deref(), 1, 255, None);
            violations.string(
                &format!("{member}.Expression"),
                query.expression.as_deref(),
                1,
                2048,
                None,
            );
            if let Some(stat) = &query.metric_stat {
                violations.required(&format!("{member}.MetricStat.Metric"), stat.metric.as_ref());
                violations.required(&format!("{member}.MetricStat.Stat"), stat.stat.as_ref());
            }
        }
    }
    violations.finish()?;
    let target_value = configuration.target_value.unwrap_or_default();
    if !target_value.is_finite() || target_value.abs() > MAX_METRIC_SCALE {
        return Err(error::validation(
            "TargetValue must be in the range of -2^360 to 2^360.",
        ));
    }
    for (name, value) in [
        ("ScaleOutCooldown", configuration.scale_out_cooldown),
        ("ScaleInCooldown", configuration.scale_in_cooldown),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(error::validation(format!(
                "{name} must be greater than or equal to 0."
            )));
        }
    }
    match (
        &configuration.predefined_metric_specification,
        &configuration.customized_metric_specification,
    ) {
        (Some(_), Some(_)) => Err(error::validation(
            "Only one of PredefinedMetricSpecification or CustomizedMetricSpecification may be specified.",
        )),
        (None, None) => Err(error::validation(
            "Either PredefinedMetricSpecification or CustomizedMetricSpecification must be specified.",
        )),
        (Some(predefined), None) => {
            let metric_type = predefined
                .predefined_metric_type
                .expect("checked as required above");
            if !SUPPORTED_PREDEFINED_METRICS.contains(&metric_type) {
                let supported: Vec<&str> =
                    SUPPORTED_PREDEFINED_METRICS.iter().map(|m| m.as_str()).collect();
                return Err(error::validation(format!(
                    "Unsupported predefined metric type {metric_type} for ECS services; Berth supports {}.",
                    supported.join(", ")
                )));
            }
            match (metric_type, predefined.resource_label.as_deref()) {
                (wire::MetricType::ALBRequestCountPerTarget, None) => Err(error::validation(
                    "ResourceLabel is required for the ALBRequestCountPerTarget predefined metric type: app/<load-balancer-name>/<load-balancer-id>/targetgroup/<target-group-name>/<target-group-id>.",
                )),
                (wire::MetricType::ALBRequestCountPerTarget, Some(label)) => {
                    match metrics::target_group_of_label(label) {
                        Some(_) => Ok(()),
                        None => Err(error::validation(format!(
                            "Invalid ResourceLabel '{label}': expected app/<load-balancer-name>/<load-balancer-id>/targetgroup/<target-group-name>/<target-group-id>."
                        ))),
                    }
                }
                (_, Some(_)) => Err(error::validation(format!(
                    "ResourceLabel may only be specified for the ALBRequestCountPerTarget predefined metric type, not {metric_type}."
                ))),
                (_, None) => Ok(()),
            }
        }
        (None, Some(custom)) => check_customized_metric(custom),
    }
}

fn check_customized_metric(custom: &wire::CustomizedMetricSpecification) -> Result<(), ApiError> {
    let single = custom.metric_name.is_some()
        || custom.namespace.is_some()
        || custom.dimensions.is_some()
        || custom.statistic.is_some()
        || custom.unit.is_some();
    match &custom.metrics {
        Some(_) if single => Err(error::validation(
            "A CustomizedMetricSpecification specifies either Metrics or MetricName, Namespace, Dimensions, Statistic and Unit, not both.",
        )),
        Some(queries) => {
            if queries.is_empty() {
                return Err(error::validation(
                    "CustomizedMetricSpecification.Metrics must contain at least one query.",
                ));
            }
            for query in queries {
                let id = query.id.as_deref().unwrap_or_default();
                if query.expression.is_some() == query.metric_stat.is_some() {
                    return Err(error::validation(format!(
                        "Metric query {id} must specify exactly one of Expression or MetricStat."
                    )));
                }
            }
            let returned = queries
                .iter()
                .filter(|q| q.return_data.unwrap_or(true))
                .count();
            if returned != 1 {
                return Err(error::validation(format!(
                    "Exactly one metric query of CustomizedMetricSpecification.Metrics must return data (ReturnData true); {returned} do."
                )));
            }
            Ok(())
        }
        None => {
            if custom.metric_name.is_none() || custom.namespace.is_none() || custom.statistic.is_none() {
                return Err(error::validation(
                    "A CustomizedMetricSpecification without Metrics requires MetricName, Namespace and Statistic.",
                ));
            }
            Ok(())
        }
    }
}

impl ApplicationAutoScaling {
    pub(crate) async fn put_scaling_policy(
        &self,
        ctx: &RequestContext,
        request: wire::PutScalingPolicyRequest,
    ) -> Result<wire::PutScalingPolicyResponse, ApiError> {
        let mut violations = Violations::new();
        violations.string(
            "PolicyName",
            request.policy_name.as_deref(),
            1,
            256,
            Some(crate::validate::PRINTABLE_PATTERN),
        );
        super::targets::check_target_members(&mut violations, request.resource_id.as_deref());
        violations.finish()?;
        let target = target_ref(
            request.service_namespace,
            request.resource_id.as_deref(),
            request.scalable_dimension,
        )?;
        let policy_name = request.policy_name.clone().unwrap_or_default();
        let policy_type = request.policy_type.unwrap_or(wire::PolicyType::StepScaling);
        match policy_type {
            wire::PolicyType::PredictiveScaling => {
                return Err(error::validation(
                    "Berth does not support predictive scaling policies (PolicyType PredictiveScaling); use TargetTrackingScaling or StepScaling.",
                ))
            }
            wire::PolicyType::StepScaling => {
                if request.target_tracking_scaling_policy_configuration.is_some()
                    || request.predictive_scaling_policy_configuration.is_some()
                {
                    return Err(error::validation(
                        "A StepScaling policy takes only a StepScalingPolicyConfiguration.",
                    ));
                }
            }
            wire::PolicyType::TargetTrackingScaling => {
                if request.step_scaling_policy_configuration.is_some()
                    || request.predictive_scaling_policy_configuration.is_some()
                {
                    return Err(error::validation(
                        "A TargetTrackingScaling policy takes only a TargetTrackingScalingPolicyConfiguration.",
                    ));
                }
                let Some(configuration) = &request.target_tracking_scaling_policy_configuration
                else {
                    return Err(error::validation(
                        "TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling policy.",
                    ));
                };
                check_target_tracking_configuration(configuration)?;
            }
        }
        let region = &ctx.region;
        let key = policy_key(
            region,
            target.namespace(),
            &target.resource_id,
            target.dimension(),
            &policy_name,
        );
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(found_target) = get_target(
                self.store(),
                region,
                target.namespace(),
                target.dimension(),
                &target.resource_id,
            )
            .await?
            else {
                return Err(error::target_not_found(
                    target.namespace(),
                    &target.resource_id,
                    target.dimension(),
                ));
            };
            let existing: Option<records::Versioned<PolicyRecord>> =
                records::get(self.store(), &key).await?;
            if existing.is_none() {
                let count = records::list::<PolicyRecord>(
                    self.store(),
                    &policies_prefix(
                        region,
                        target.namespace(),
                        &target.resource_id,
                        target.dimension(),
                    ),
                )
                .await?
                .len();
                if count >= MAX_POLICIES_PER_TARGET {
                    return Err(error::limit_exceeded(format!(
                        "A scalable target can have at most {MAX_POLICIES_PER_TARGET} scaling policies."
                    )));
                }
            }
            let old = existing.as_ref().map(|v| &v.value.policy);
            let step = match policy_type {
                wire::PolicyType::StepScaling => {
                    let configuration = merged_step_configuration(
                        request.step_scaling_policy_configuration.as_ref(),
                        old,
                    );
                    check_step_configuration(&configuration)?;
                    Some(configuration)
                }
                _ => None,
            };
            let policy_arn = old.and_then(|p| p.policy_arn.clone()).unwrap_or_else(|| {
                new_policy_arn(ctx, target.namespace(), &target.resource_id, &policy_name)
            });
            let old_alarms = old.map(owned_alarm_names).unwrap_or_default();
            // Target tracking: create (or update in place) the alarms the policy owns.
            let (alarms, created) = match &request.target_tracking_scaling_policy_configuration {
                Some(configuration) if step.is_none() => {
                    self.put_owned_alarms(
                        ctx,
                        &target.resource_id,
                        &policy_arn,
                        configuration,
                        &old_alarms,
                    )
                    .await?
                }
                _ => (Vec::new(), Vec::new()),
            };
            let is_target_tracking = policy_type == wire::PolicyType::TargetTrackingScaling;
            let record = PolicyRecord {
                policy: wire::ScalingPolicy {
                    policy_arn: Some(policy_arn.clone()),
                    policy_name: Some(policy_name.clone()),
                    service_namespace: Some(wire::ServiceNamespace::Ecs),
                    resource_id: Some(target.resource_id.clone()),
                    scalable_dimension: Some(wire::ScalableDimension::EcsServiceDesiredCount),
                    policy_type: Some(policy_type),
                    step_scaling_policy_configuration: step,
                    target_tracking_scaling_policy_configuration: request
                        .target_tracking_scaling_policy_configuration
                        .clone(),
                    predictive_scaling_policy_configuration: None,
                    alarms: is_target_tracking.then(|| alarms.clone()),
                    creation_time: old
                        .and_then(|p| p.creation_time)
                        .or(Some(epoch_s(ctx.now_ms))),
                },
                updated_ms: ctx.now_ms,
            };
            let target_key = crate::records::target_key(
                region,
                target.namespace(),
                target.dimension(),
                &target.resource_id,
            );
            let written = records::Write::new()
                .expect(&target_key, found_target.mod_revision)
                .expect(&key, existing.as_ref().map_or(0, |v| v.mod_revision))
                .put(&key, &record)
                .commit(self.store())
                .await?;
            if !written {
                // Lost a race: the alarms this attempt created belong to no policy.
                self.delete_alarms(ctx, created).await;
                continue;
            }
            let kept: Vec<&str> = alarms
                .iter()
                .filter_map(|a| a.alarm_name.as_deref())
                .collect();
            let stale: Vec<String> = old_alarms
                .into_iter()
                .filter(|name| !kept.contains(&name.as_str()))
                .collect();
            self.delete_alarms(ctx, stale).await;
            return Ok(wire::PutScalingPolicyResponse {
                policy_arn: Some(policy_arn),
                alarms: is_target_tracking.then_some(alarms),
            });
        }
        Err(error::concurrent_update())
    }

    /// Puts the alarms of a target-tracking policy; an alarm of a role the policy already
    /// has keeps its name. Returns the policy's alarms and the names created by this call.
    async fn put_owned_alarms(
        &self,
        ctx: &RequestContext,
        resource_id: &str,
        policy_arn: &str,
        configuration: &wire::TargetTrackingScalingPolicyConfiguration,
        old_alarms: &[String],
    ) -> Result<(Vec<wire::Alarm>, Vec<String>), ApiError> {
        let metric = metrics::alarm_metric(configuration, resource_id)?;
        let specs = scaling::alarm_specs(
            configuration.target_value.unwrap_or_default(),
            configuration.disable_scale_in.unwrap_or(false),
        );
        let mut alarms = Vec::new();
        let mut created = Vec::new();
        for spec in &specs {
            let name = match old_alarms.iter().find(|n| role_of(n) == Some(spec.role)) {
                Some(name) => name.clone(),
                None => {
                    let name = metrics::alarm_name(
                        resource_id,
                        spec.role,
                        &uuid::Uuid::new_v4().to_string(),
                    );
                    created.push(name.clone());
                    name
                }
            };
            let input = metrics::alarm_input(&name, policy_arn, &metric, spec);
            if let Err(err) = self
                .cloudwatch_call::<_, Value>(ctx, "PutMetricAlarm", &input)
                .await
            {
                self.delete_alarms(ctx, created).await;
                return Err(err);
            }
            alarms.push(wire::Alarm {
                alarm_arn: Some(alarm_arn(ctx, &name)),
                alarm_name: Some(name),
            });
        }
        Ok((alarms, created))
    }

    /// Deletes CloudWatch alarms (those of a deleted or replaced policy). A failure is logged:
    /// the records are already gone, and an orphaned alarm's action finds no policy.
    pub(crate) async fn delete_alarms(&self, ctx: &RequestContext, names: Vec<String>) {
        for chunk in names.chunks(100) {
            let input = cloudwatch_wire::DeleteAlarmsInput {
                alarm_names: Some(chunk.to_vec()),
            };
            if let Err(err) = self
                .cloudwatch_call::<_, Value>(ctx, "DeleteAlarms", &input)
                .await
            {
                tracing::warn!(alarms = ?chunk, error = %err, "deleting scaling policy alarms failed");
            }
        }
    }

    pub(crate) async fn describe_scaling_policies(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeScalingPoliciesRequest,
    ) -> Result<wire::DescribeScalingPoliciesResponse, ApiError> {
        const OPERATION: &str = "DescribeScalingPolicies";
        let mut violations = Violations::new();
        violations.count(
            "PolicyNames",
            request.policy_names.as_ref().map(Vec::len),
            0,
            50,
        );
        for (index, name) in request.policy_names.iter().flatten().enumerate() {
            violations.resource_id(&format!("PolicyNames.{}.member", index + 1), Some(name));
        }
        violations.resource_id("ResourceId", request.resource_id.as_deref());
        violations.finish()?;
        let size = page_size(request.max_results, 10)?;
        let after = decode_token(OPERATION, request.next_token.as_deref())?;
        require_ecs(request.service_namespace)?;
        require_ecs_dimension(request.scalable_dimension)?;
        let names = request.policy_names.as_deref().unwrap_or_default();
        let prefix = match &request.resource_id {
            Some(resource_id) => {
                policies_prefix(&ctx.region, "ecs", resource_id, super::ECS_DESIRED_COUNT)
            }
            None => namespace_records_prefix(&ctx.region, POLICIES, "ecs"),
        };
        let policies: Vec<(String, PolicyRecord)> = records::list(self.store(), &prefix)
            .await?
            .into_iter()
            .filter(|(_, record): &(String, PolicyRecord)| {
                let name = record.policy.policy_name.as_deref().unwrap_or_default();
                names.is_empty() || names.iter().any(|n| n == name)
            })
            .collect();
        let (page, next_token) = api::pagination::paginate(
            OPERATION,
            policies,
            |(key, _)| key.clone(),
            after.as_deref(),
            size,
            false,
        );
        let mut policies: Vec<wire::ScalingPolicy> =
            page.into_iter().map(|(_, r)| r.policy).collect();
        if policies
            .iter()
            .any(|p| p.policy_type == Some(wire::PolicyType::StepScaling))
        {
            let alarms = self.alarm_actions(ctx).await.map_err(|err| {
                error::failed_resource_access(format!(
                    "Failed to describe the CloudWatch alarms of the step scaling policies: {}",
                    err.message
                ))
            })?;
            for policy in &mut policies {
                if policy.policy_type != Some(wire::PolicyType::StepScaling) {
                    continue;
                }
                let arn = policy.policy_arn.as_deref().unwrap_or_default();
                policy.alarms = Some(
                    alarms
                        .iter()
                        .filter(|(_, _, actions)| actions.iter().any(|a| a == arn))
                        .map(|(name, alarm_arn, _)| wire::Alarm {
                            alarm_name: Some(name.clone()),
                            alarm_arn: Some(alarm_arn.clone()),
                        })
                        .collect(),
                );
            }
        }
        Ok(wire::DescribeScalingPoliciesResponse {
            scaling_policies: Some(policies),
            next_token,
        })
    }

    /// Every metric alarm of the region: (name, ARN, AlarmActions).
    async fn alarm_actions(
        &self,
        ctx: &RequestContext,
    ) -> Result<Vec<(String, String, Vec<String>)>, ApiError> {
        let mut alarms = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let input = cloudwatch_wire::DescribeAlarmsInput {
                alarm_types: Some(vec!["MetricAlarm".into()]),
                max_records: Some(100),
                next_token: next_token.clone(),
                ..Default::default()
            };
            let output: Value = self.cloudwatch_call(ctx, "DescribeAlarms", &input).await?;
            for alarm in output["MetricAlarms"].as_array().into_iter().flatten() {
                let actions = alarm["AlarmActions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect();
                alarms.push((
                    alarm["AlarmName"].as_str().unwrap_or_default().to_string(),
                    alarm["AlarmArn"].as_str().unwrap_or_default().to_string(),
                    actions,
                ));
            }
            match output["NextToken"].as_str() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => return Ok(alarms),
            }
        }
    }

    pub(crate) async fn delete_scaling_policy(
        &self,
        ctx: &RequestContext,
        request: wire::DeleteScalingPolicyRequest,
    ) -> Result<wire::DeleteScalingPolicyResponse, ApiError> {
        let mut violations = Violations::new();
        violations.resource_id("PolicyName", request.policy_name.as_deref());
        super::targets::check_target_members(&mut violations, request.resource_id.as_deref());
        violations.finish()?;
        let target = target_ref(
            request.service_namespace,
            request.resource_id.as_deref(),
            request.scalable_dimension,
        )?;
        let policy_name = request.policy_name.unwrap_or_default();
        let key = policy_key(
            &ctx.region,
            target.namespace(),
            &target.resource_id,
            target.dimension(),
            &policy_name,
        );
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(found): Option<records::Versioned<PolicyRecord>> =
                records::get(self.store(), &key).await?
            else {
                return Err(error::policy_not_found(
                    target.namespace(),
                    &target.resource_id,
                    target.dimension(),
                    &policy_name,
                ));
            };
            let txn = store::Txn::new()
                .when(store::Compare::mod_revision_is(&key, found.mod_revision))
                .then(store::Op::delete(&key));
            if self.store().txn(txn).await?.succeeded {
                self.delete_alarms(ctx, owned_alarm_names(&found.value.policy))
                    .await;
                return Ok(wire::DeleteScalingPolicyResponse {});
            }
        }
        Err(error::concurrent_update())
    }
}

/// An update's step configuration: members not given keep the existing step policy's values.
fn merged_step_configuration(
    given: Option<&wire::StepScalingPolicyConfiguration>,
    old: Option<&wire::ScalingPolicy>,
) -> wire::StepScalingPolicyConfiguration {
    let old = old
        .filter(|p| p.policy_type == Some(wire::PolicyType::StepScaling))
        .and_then(|p| p.step_scaling_policy_configuration.clone());
    let Some(given) = given.cloned() else {
        return old.unwrap_or_default();
    };
    let Some(old) = old else { return given };
    wire::StepScalingPolicyConfiguration {
        adjustment_type: given.adjustment_type.or(old.adjustment_type),
        step_adjustments: given.step_adjustments.or(old.step_adjustments),
        min_adjustment_magnitude: given.min_adjustment_magnitude,
        cooldown: given.cooldown.or(old.cooldown),
        metric_aggregation_type: given
            .metric_aggregation_type
            .or(old.metric_aggregation_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(lower: Option<f64>, upper: Option<f64>) -> wire::StepAdjustment {
        wire::StepAdjustment {
            metric_interval_lower_bound: lower,
            metric_interval_upper_bound: upper,
            scaling_adjustment: Some(1),
        }
    }

    #[test]
    fn step_bounds_follow_aws_rules() {
        let cases: Vec<(Vec<wire::StepAdjustment>, Option<&str>)> = vec![
            (vec![step(Some(0.0), None)], None),
            (vec![step(None, Some(0.0))], None),
            (
                vec![step(Some(0.0), Some(10.0)), step(Some(10.0), None)],
                None,
            ),
            (
                vec![step(None, Some(-5.0)), step(Some(-5.0), Some(0.0))],
                None,
            ),
            (vec![step(None, None)], Some("cannot both be null")),
            (
                vec![step(Some(0.0), Some(10.0)), step(Some(5.0), None)],
                Some("can't overlap"),
            ),
            (
                vec![step(Some(0.0), Some(10.0)), step(Some(20.0), None)],
                Some("can't have a gap"),
            ),
            (
                vec![step(Some(0.0), None), step(Some(10.0), None)],
                Some("null upper bound"),
            ),
            (vec![step(Some(-10.0), None)], Some("null lower bound")),
            (vec![step(None, Some(10.0))], Some("null upper bound")),
            (
                vec![step(Some(5.0), Some(1.0))],
                Some("less than its upper"),
            ),
        ];
        for (steps, expected) in cases {
            let got = check_step_bounds(&steps).err().map(|e| e.message);
            match expected {
                None => assert_eq!(got, None, "{steps:?}"),
                Some(part) => assert!(
                    got.as_deref().is_some_and(|m| m.contains(part)),
                    "{steps:?}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn min_adjustment_magnitude_only_with_percent_change() {
        let configuration = wire::StepScalingPolicyConfiguration {
            adjustment_type: Some(wire::AdjustmentType::ChangeInCapacity),
            step_adjustments: Some(vec![step(Some(0.0), None)]),
            min_adjustment_magnitude: Some(2),
            ..Default::default()
        };
        let err = check_step_configuration(&configuration).unwrap_err();
        assert!(
            err.message.contains("PercentChangeInCapacity"),
            "{}",
            err.message
        );
        let configuration = wire::StepScalingPolicyConfiguration {
            adjustment_type: Some(wire::AdjustmentType::PercentChangeInCapacity),
            ..configuration
        };
        check_step_configuration(&configuration).unwrap();
    }

    #[test]
    fn configurations_convert_with_aws_defaults() {
        let policy = wire::ScalingPolicy {
            policy_type: Some(wire::PolicyType::TargetTrackingScaling),
            target_tracking_scaling_policy_configuration: Some(
                wire::TargetTrackingScalingPolicyConfiguration {
                    target_value: Some(50.0),
                    ..Default::default()
                },
            ),
            ..Default::default()
        };
        assert_eq!(
            policy_configuration(&policy),
            Some(scaling::PolicyConfiguration::TargetTracking {
                target_value: 50.0,
                scale_out_cooldown_s: 300,
                scale_in_cooldown_s: 300,
                disable_scale_in: false,
            })
        );
    }
}
