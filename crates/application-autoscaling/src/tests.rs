//! The operations end to end over the in-memory stores: a real `api::Ecs` (cluster `default`,
//! services created through its JSON API) and a real `cloudwatch::CloudWatch` running alarm
//! actions on policy ARNs, driven through [`ApplicationAutoScaling::handle`].

use std::sync::Arc;

use api::{ApiError, RequestContext};
use metric_store::MemoryMetricStore;
use serde_json::{json, Value};
use store::MemoryStore;

use super::*;
use crate::records::{activity_key, ActivityRecord};

/// 2026-12-07T14:00:00Z.
const NOW_MS: i64 = 1_796_652_000_000;
const WEB: &str = "service/default/web";

struct Fixture {
    service: ApplicationAutoScaling,
    ecs: Arc<api::Ecs>,
    cloudwatch: cloudwatch::CloudWatch,
    store: Arc<dyn Store>,
}

fn ctx() -> RequestContext {
    RequestContext {
        region: "us-east-1".into(),
        account_id: "000000000000".into(),
        principal_arn: "arn:aws:iam::000000000000:root".into(),
        access_key_id: "test".into(),
        request_id: "req".into(),
        now_ms: NOW_MS,
    }
}

fn target(resource_id: &str) -> Value {
    json!({"ServiceNamespace": "ecs", "ResourceId": resource_id,
           "ScalableDimension": "ecs:service:DesiredCount"})
}

fn with(base: Value, extra: Value) -> Value {
    let mut base = base;
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn cpu_policy(name: &str, target_value: f64) -> Value {
    with(
        target(WEB),
        json!({"PolicyName": name, "PolicyType": "TargetTrackingScaling",
               "TargetTrackingScalingPolicyConfiguration": {
                   "TargetValue": target_value,
                   "PredefinedMetricSpecification": {
                       "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}}),
    )
}

fn step_policy(name: &str) -> Value {
    with(
        target(WEB),
        json!({"PolicyName": name, "PolicyType": "StepScaling",
               "StepScalingPolicyConfiguration": {
                   "AdjustmentType": "ChangeInCapacity",
                   "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]}}),
    )
}

impl Fixture {
    async fn new() -> Self {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let ecs = Arc::new(api::Ecs::new(Arc::clone(&store)));
        let cloudwatch =
            cloudwatch::CloudWatch::new(Arc::clone(&store), Arc::new(MemoryMetricStore::new()))
                .with_action_target(Arc::new(PolicyActions::new()));
        let service =
            ApplicationAutoScaling::new(Arc::clone(&store), Arc::clone(&ecs), cloudwatch.clone());
        let f = Fixture {
            service,
            ecs,
            cloudwatch,
            store,
        };
        f.ecs_call("CreateCluster", json!({})).await;
        f.ecs_call(
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [
                {"name": "web", "image": "busybox", "memory": 128}]}),
        )
        .await;
        f.create_service("web").await;
        f
    }

    async fn create_service(&self, name: &str) {
        self.ecs_call(
            "CreateService",
            json!({"serviceName": name, "taskDefinition": "web", "desiredCount": 0}),
        )
        .await;
    }

    async fn ecs_call(&self, operation: &str, body: Value) -> Value {
        let bytes = self
            .ecs
            .handle(&ctx(), operation, body.to_string().as_bytes())
            .await
            .unwrap_or_else(|e| panic!("ECS {operation}: {e}"));
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn cloudwatch_call(&self, operation: &str, body: Value) -> Value {
        let bytes = control_plane::JsonService::handle(
            &self.cloudwatch,
            &ctx(),
            operation,
            body.to_string().as_bytes(),
        )
        .await
        .unwrap_or_else(|e| panic!("CloudWatch {operation}: {e}"));
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn call(&self, operation: &str, body: Value) -> Result<Value, ApiError> {
        let bytes = self
            .service
            .handle(&ctx(), operation, body.to_string().as_bytes())
            .await?;
        Ok(serde_json::from_slice(&bytes).unwrap())
    }

    async fn ok(&self, operation: &str, body: Value) -> Value {
        self.call(operation, body.clone())
            .await
            .unwrap_or_else(|e| panic!("{operation} {body}: {e}"))
    }

    async fn err(&self, operation: &str, body: Value) -> ApiError {
        match self.call(operation, body.clone()).await {
            Ok(v) => panic!("{operation} {body} succeeded: {v}"),
            Err(e) => e,
        }
    }

    async fn register(&self, resource_id: &str, min: i32, max: i32) -> String {
        self.ok(
            "RegisterScalableTarget",
            with(
                target(resource_id),
                json!({"MinCapacity": min, "MaxCapacity": max}),
            ),
        )
        .await["ScalableTargetARN"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn alarm_names(&self) -> Vec<String> {
        let alarms = self.cloudwatch_call("DescribeAlarms", json!({})).await;
        alarms["MetricAlarms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["AlarmName"].as_str().unwrap().to_string())
            .collect()
    }

    /// Every record key under the service's root, to prove a refused request wrote nothing.
    async fn keys(&self) -> Vec<String> {
        self.store
            .range(store::RangeRequest::prefix(records::ROOT_PREFIX))
            .await
            .unwrap()
            .kvs
            .into_iter()
            .map(|kv| kv.key)
            .collect()
    }
}

/// Runs each `(operation, body, code, message part)` and checks the error and that the
/// store's records and CloudWatch's alarms did not change.
async fn check_errors(f: &Fixture, cases: &[(&str, Value, &str, &str)]) {
    let keys = f.keys().await;
    let alarms = f.alarm_names().await;
    for (operation, body, code, message) in cases {
        let err = f.err(operation, body.clone()).await;
        assert_eq!(err.code, *code, "{operation} {body}: {}", err.message);
        assert!(
            err.message.contains(message),
            "{operation} {body}: {:?} does not contain {message:?}",
            err.message
        );
        assert_eq!(f.keys().await, keys, "{operation} {body} wrote records");
        assert_eq!(
            f.alarm_names().await,
            alarms,
            "{operation} {body} changed alarms"
        );
    }
}

#[tokio::test]
async fn register_describe_update_and_deregister_a_target() {
    let f = Fixture::new().await;
    let arn = f.register(WEB, 1, 4).await;
    assert!(
        arn.starts_with("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/0"),
        "{arn}"
    );
    assert_eq!(arn.rsplit('/').next().unwrap().len(), 36);
    let described = f
        .ok(
            "DescribeScalableTargets",
            json!({"ServiceNamespace": "ecs"}),
        )
        .await;
    let t = &described["ScalableTargets"][0];
    assert_eq!(t["ResourceId"], WEB);
    assert_eq!(t["MinCapacity"], 1);
    assert_eq!(t["MaxCapacity"], 4);
    assert_eq!(t["ScalableTargetARN"], arn.as_str());
    assert_eq!(t["CreationTime"], json!(NOW_MS as f64 / 1000.0));
    assert_eq!(t["SuspendedState"]["DynamicScalingInSuspended"], false);
    assert!(t["RoleARN"]
        .as_str()
        .unwrap()
        .ends_with("AWSServiceRoleForApplicationAutoScaling_ECSService"));

    // An update changes only what it names and keeps the ARN.
    let again = f
        .ok(
            "RegisterScalableTarget",
            with(
                target(WEB),
                json!({"MaxCapacity": 8, "SuspendedState": {"DynamicScalingInSuspended": true}}),
            ),
        )
        .await;
    assert_eq!(again["ScalableTargetARN"], arn.as_str());
    let t = f
        .ok(
            "DescribeScalableTargets",
            json!({"ServiceNamespace": "ecs", "ResourceIds": [WEB],
                   "ScalableDimension": "ecs:service:DesiredCount"}),
        )
        .await["ScalableTargets"][0]
        .clone();
    assert_eq!(
        (t["MinCapacity"].clone(), t["MaxCapacity"].clone()),
        (json!(1), json!(8))
    );
    assert_eq!(t["SuspendedState"]["DynamicScalingInSuspended"], true);
    assert_eq!(t["SuspendedState"]["ScheduledScalingSuspended"], false);

    f.ok("DeregisterScalableTarget", target(WEB)).await;
    let described = f
        .ok(
            "DescribeScalableTargets",
            json!({"ServiceNamespace": "ecs"}),
        )
        .await;
    assert_eq!(described["ScalableTargets"], json!([]));
    let err = f.err("DeregisterScalableTarget", target(WEB)).await;
    assert_eq!(err.code, "ObjectNotFoundException");
    assert_eq!(err.message, "No scalable target registered for service namespace: ecs, resource ID: service/default/web, scalable dimension: ecs:service:DesiredCount");
}

#[tokio::test]
async fn registration_errors_are_aws_ones_and_write_nothing() {
    let f = Fixture::new().await;
    let full = |resource_id: &str| {
        with(
            target(resource_id),
            json!({"MinCapacity": 1, "MaxCapacity": 2}),
        )
    };
    let cases = [
        ("RegisterScalableTarget", full("service/default/nope"), "ValidationException",
         "ECS service doesn't exist: service/default/nope"),
        ("RegisterScalableTarget", full("service/other/web"), "ValidationException",
         "ECS service doesn't exist: service/other/web"),
        ("RegisterScalableTarget", with(full(WEB), json!({"ServiceNamespace": "dynamodb"})),
         "ValidationException", "Berth supports only the ecs service namespace"),
        ("RegisterScalableTarget", with(full(WEB), json!({"ScalableDimension": "dynamodb:table:ReadCapacityUnits"})),
         "ValidationException", "Unsupported service namespace, resource type or scalable dimension"),
        ("RegisterScalableTarget", full("cluster/default"), "ValidationException",
         "Unsupported service namespace, resource type or scalable dimension"),
        ("RegisterScalableTarget", with(full(WEB), json!({"ServiceNamespace": "nope"})),
         "ValidationException", "Value 'nope' at 'serviceNamespace' failed to satisfy constraint: Member must satisfy enum value set: [ecs,"),
        ("RegisterScalableTarget", json!({}), "ValidationException",
         "3 validation errors detected: Value null at 'serviceNamespace' failed to satisfy constraint: Member must not be null"),
        ("RegisterScalableTarget", target(WEB), "ValidationException",
         "MinCapacity and MaxCapacity are required"),
        ("RegisterScalableTarget", with(full(WEB), json!({"MinCapacity": 3})), "ValidationException",
         "Minimum capacity (3) cannot be greater than maximum capacity (2)."),
        ("RegisterScalableTarget", with(full(WEB), json!({"MinCapacity": -1})), "ValidationException",
         "Minimum capacity cannot be less than 0"),
        ("RegisterScalableTarget", with(full(WEB), json!({"Tags": {"aws:x": "y"}})), "ValidationException",
         "reserved"),
        ("DescribeScalableTargets", json!({"ServiceNamespace": "ecs", "MaxResults": 51}), "ValidationException",
         "Value '51' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50"),
        ("DescribeScalableTargets", json!({"ServiceNamespace": "ecs", "NextToken": "garbage"}),
         "InvalidNextTokenException", "Invalid token"),
        ("GetPredictiveScalingForecast", json!({}), "ValidationException", "not supported by Berth"),
    ];
    check_errors(&f, &cases).await;
    assert_eq!(
        f.err("Nope", json!({})).await.code,
        "UnknownOperationException"
    );
}

#[tokio::test]
async fn describe_scalable_targets_paginates() {
    let f = Fixture::new().await;
    let mut expected = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        f.create_service(name).await;
        let id = format!("service/default/{name}");
        f.register(&id, 0, 3).await;
        expected.push(id);
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"ServiceNamespace": "ecs", "MaxResults": 2});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = f.ok("DescribeScalableTargets", body).await;
        let targets = page["ScalableTargets"].as_array().unwrap();
        assert!(targets.len() <= 2);
        seen.extend(
            targets
                .iter()
                .map(|t| t["ResourceId"].as_str().unwrap().to_string()),
        );
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn target_tracking_policies_own_their_alarms() {
    let f = Fixture::new().await;
    f.register(WEB, 1, 10).await;
    let put = f.ok("PutScalingPolicy", cpu_policy("cpu", 50.0)).await;
    let arn = put["PolicyARN"].as_str().unwrap().to_string();
    assert!(
        arn.starts_with("arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:")
            && arn.ends_with(":resource/ecs/service/default/web:policyName/cpu"),
        "{arn}"
    );
    let alarms = put["Alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 2);
    let names: Vec<String> = alarms
        .iter()
        .map(|a| a["AlarmName"].as_str().unwrap().to_string())
        .collect();
    assert!(names[0].starts_with("TargetTracking-service/default/web-AlarmHigh-"));
    assert!(names[1].starts_with("TargetTracking-service/default/web-AlarmLow-"));
    assert_eq!(
        alarms[0]["AlarmARN"],
        format!(
            "arn:aws:cloudwatch:us-east-1:000000000000:alarm:{}",
            names[0]
        )
    );
    let described = f
        .cloudwatch_call("DescribeAlarms", json!({"AlarmNames": names}))
        .await;
    for alarm in described["MetricAlarms"].as_array().unwrap() {
        assert_eq!(alarm["AlarmActions"], json!([arn]));
        assert_eq!(alarm["Namespace"], "AWS/ECS");
        assert_eq!(alarm["MetricName"], "CPUUtilization");
        assert_eq!(alarm["Statistic"], "Average");
        assert_eq!(
            alarm["AlarmDescription"],
            format!("DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {arn}.")
        );
    }

    // DescribeScalingPolicies returns the policy with its alarms.
    let policies = f
        .ok(
            "DescribeScalingPolicies",
            json!({"ServiceNamespace": "ecs", "ResourceId": WEB}),
        )
        .await;
    let policy = &policies["ScalingPolicies"][0];
    assert_eq!(policy["PolicyARN"], arn.as_str());
    assert_eq!(policy["PolicyType"], "TargetTrackingScaling");
    assert_eq!(policy["Alarms"].as_array().unwrap().len(), 2);
    assert_eq!(
        policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"],
        50.0
    );

    // Updating keeps the ARN and the alarms' names; disabling scale-in drops AlarmLow.
    let mut update = cpu_policy("cpu", 70.0);
    update["TargetTrackingScalingPolicyConfiguration"]["DisableScaleIn"] = json!(true);
    let put = f.ok("PutScalingPolicy", update).await;
    assert_eq!(put["PolicyARN"], arn.as_str());
    assert_eq!(put["Alarms"].as_array().unwrap().len(), 1);
    assert_eq!(put["Alarms"][0]["AlarmName"], names[0].as_str());
    assert_eq!(f.alarm_names().await, vec![names[0].clone()]);

    // Deleting the policy deletes its alarms.
    f.ok(
        "DeleteScalingPolicy",
        with(target(WEB), json!({"PolicyName": "cpu"})),
    )
    .await;
    assert!(f.alarm_names().await.is_empty());
    let err = f
        .err(
            "DeleteScalingPolicy",
            with(target(WEB), json!({"PolicyName": "cpu"})),
        )
        .await;
    assert_eq!(err.code, "ObjectNotFoundException");
    assert_eq!(err.message, "No scaling policy found for service namespace: ecs, resource ID: service/default/web, scalable dimension: ecs:service:DesiredCount, policy name: cpu");
}

#[tokio::test]
async fn alb_request_count_alarms_are_per_minute_metric_math() {
    let f = Fixture::new().await;
    f.register(WEB, 1, 10).await;
    let body = with(
        target(WEB),
        json!({"PolicyName": "alb", "PolicyType": "TargetTrackingScaling",
               "TargetTrackingScalingPolicyConfiguration": {
                   "TargetValue": 600,
                   "PredefinedMetricSpecification": {
                       "PredefinedMetricType": "ALBRequestCountPerTarget",
                       "ResourceLabel": "app/lb/0123456789abcdef/targetgroup/web/fedcba9876543210"}}}),
    );
    let put = f.ok("PutScalingPolicy", body).await;
    let name = put["Alarms"][0]["AlarmName"].as_str().unwrap();
    let described = f
        .cloudwatch_call("DescribeAlarms", json!({"AlarmNames": [name]}))
        .await;
    let metrics = &described["MetricAlarms"][0]["Metrics"];
    assert_eq!(
        metrics[0]["MetricStat"]["Metric"]["Namespace"],
        "AWS/ApplicationELB"
    );
    assert_eq!(
        metrics[0]["MetricStat"]["Metric"]["Dimensions"][0],
        json!({"Name": "TargetGroup", "Value": "targetgroup/web/fedcba9876543210"})
    );
    assert_eq!(metrics[0]["MetricStat"]["Stat"], "Sum");
    assert_eq!(metrics[1]["Label"], "RequestCountPerTarget per minute");
    assert!(metrics[1]["Expression"]
        .as_str()
        .unwrap()
        .starts_with("m1*"));
}

#[tokio::test]
async fn step_policies_show_the_alarms_naming_them() {
    let f = Fixture::new().await;
    f.register(WEB, 1, 10).await;
    let put = f.ok("PutScalingPolicy", step_policy("out")).await;
    let arn = put["PolicyARN"].as_str().unwrap().to_string();
    assert!(put.get("Alarms").is_none());
    f.cloudwatch_call(
        "PutMetricAlarm",
        json!({"AlarmName": "high-cpu", "Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
               "Statistic": "Average", "Period": 60, "EvaluationPeriods": 1, "Threshold": 80,
               "ComparisonOperator": "GreaterThanThreshold", "AlarmActions": [arn]}),
    )
    .await;
    let policies = f
        .ok(
            "DescribeScalingPolicies",
            json!({"ServiceNamespace": "ecs", "PolicyNames": ["out"]}),
        )
        .await;
    let policy = &policies["ScalingPolicies"][0];
    assert_eq!(policy["PolicyType"], "StepScaling");
    assert_eq!(policy["Alarms"][0]["AlarmName"], "high-cpu");
    assert_eq!(
        policy["StepScalingPolicyConfiguration"]["AdjustmentType"],
        "ChangeInCapacity"
    );
    // PolicyType defaults to StepScaling, and an update keeps the ARN.
    let mut again = step_policy("out");
    again.as_object_mut().unwrap().remove("PolicyType");
    again["StepScalingPolicyConfiguration"]["Cooldown"] = json!(60);
    assert_eq!(
        f.ok("PutScalingPolicy", again).await["PolicyARN"],
        arn.as_str()
    );
    // Deleting a step policy leaves the user's alarm.
    f.ok(
        "DeleteScalingPolicy",
        with(target(WEB), json!({"PolicyName": "out"})),
    )
    .await;
    assert_eq!(f.alarm_names().await, vec!["high-cpu".to_string()]);
}

#[tokio::test]
async fn policy_errors_are_refused_and_write_nothing() {
    let f = Fixture::new().await;
    f.create_service("api").await;
    f.register(WEB, 1, 10).await;
    let tt = |configuration: Value| {
        with(
            target(WEB),
            json!({"PolicyName": "p", "PolicyType": "TargetTrackingScaling",
                   "TargetTrackingScalingPolicyConfiguration": configuration}),
        )
    };
    let step = |configuration: Value| {
        with(
            target(WEB),
            json!({"PolicyName": "p", "PolicyType": "StepScaling",
                   "StepScalingPolicyConfiguration": configuration}),
        )
    };
    let cpu = json!({"PredefinedMetricType": "ECSServiceAverageCPUUtilization"});
    let cases = [
        ("PutScalingPolicy", with(cpu_policy("p", 50.0), json!({"ResourceId": "service/default/api"})),
         "ObjectNotFoundException",
         "No scalable target registered for service namespace: ecs, resource ID: service/default/api, scalable dimension: ecs:service:DesiredCount"),
        ("PutScalingPolicy", tt(json!({"PredefinedMetricSpecification": cpu})), "ValidationException",
         "Value null at 'targetTrackingScalingPolicyConfiguration.targetValue' failed to satisfy constraint: Member must not be null"),
        ("PutScalingPolicy", tt(json!({"TargetValue": 50})), "ValidationException",
         "Either PredefinedMetricSpecification or CustomizedMetricSpecification must be specified."),
        ("PutScalingPolicy", tt(json!({"TargetValue": 50, "PredefinedMetricSpecification": {"PredefinedMetricType": "DynamoDBReadCapacityUtilization"}})),
         "ValidationException", "Unsupported predefined metric type DynamoDBReadCapacityUtilization"),
        ("PutScalingPolicy", tt(json!({"TargetValue": 50, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget"}})),
         "ValidationException", "ResourceLabel is required"),
        ("PutScalingPolicy", tt(json!({"TargetValue": 50, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": "targetgroup/web/1"}})),
         "ValidationException", "Invalid ResourceLabel"),
        ("PutScalingPolicy", tt(json!({"TargetValue": 50, "CustomizedMetricSpecification": {"MetricName": "m"}})),
         "ValidationException", "requires MetricName, Namespace and Statistic"),
        ("PutScalingPolicy", tt(json!({"TargetValue": 50, "PredefinedMetricSpecification": cpu, "ScaleInCooldown": -1})),
         "ValidationException", "ScaleInCooldown must be greater than or equal to 0."),
        ("PutScalingPolicy", with(cpu_policy("p", 50.0), json!({"PolicyType": "PredictiveScaling"})),
         "ValidationException", "Berth does not support predictive scaling"),
        ("PutScalingPolicy", with(step_policy("p"), json!({"PolicyType": "TargetTrackingScaling"})),
         "ValidationException", "takes only a TargetTrackingScalingPolicyConfiguration"),
        ("PutScalingPolicy", step(json!({"StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})),
         "ValidationException", "AdjustmentType is required"),
        ("PutScalingPolicy", step(json!({"AdjustmentType": "ChangeInCapacity"})),
         "ValidationException", "At least one step adjustment is required"),
        ("PutScalingPolicy", step(json!({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [{"MetricIntervalLowerBound": 0}]})),
         "ValidationException", "Value null at 'stepScalingPolicyConfiguration.stepAdjustments.1.member.scalingAdjustment'"),
        ("PutScalingPolicy", step(json!({"AdjustmentType": "ChangeInCapacity", "MinAdjustmentMagnitude": 1,
                                         "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})),
         "ValidationException", "MinAdjustmentMagnitude may only be specified when AdjustmentType is PercentChangeInCapacity."),
        ("PutScalingPolicy", step(json!({"AdjustmentType": "ChangeInCapacity",
                                         "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
                                                             {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 2}]})),
         "ValidationException", "can't have a gap"),
        ("PutScalingPolicy", with(step_policy("p"), json!({"PolicyName": ""})), "ValidationException",
         "Value '' at 'policyName' failed to satisfy constraint: Member must have length greater than or equal to 1"),
        ("DescribeScalingPolicies", json!({"ServiceNamespace": "ecs", "MaxResults": 11}), "ValidationException",
         "Member must have value less than or equal to 10"),
        ("DeleteScalingPolicy", with(target(WEB), json!({"PolicyName": "none"})), "ObjectNotFoundException",
         "No scaling policy found"),
    ];
    check_errors(&f, &cases).await;
}

#[tokio::test]
async fn a_target_has_at_most_fifty_policies() {
    let f = Fixture::new().await;
    f.register(WEB, 1, 10).await;
    for i in 0..50 {
        f.ok("PutScalingPolicy", step_policy(&format!("p{i:02}")))
            .await;
    }
    let err = f.err("PutScalingPolicy", step_policy("one-more")).await;
    assert_eq!(err.code, "LimitExceededException");
    // Updating an existing one is not a new policy.
    f.ok("PutScalingPolicy", step_policy("p00")).await;
    // DescribeScalingPolicies pages by 10 by default.
    let page = f
        .ok(
            "DescribeScalingPolicies",
            json!({"ServiceNamespace": "ecs"}),
        )
        .await;
    assert_eq!(page["ScalingPolicies"].as_array().unwrap().len(), 10);
    assert!(page["NextToken"].is_string());
}

#[tokio::test]
async fn deregistering_a_target_deletes_its_policies_alarms_and_scheduled_actions() {
    let f = Fixture::new().await;
    f.register(WEB, 1, 10).await;
    f.ok("PutScalingPolicy", cpu_policy("cpu", 50.0)).await;
    f.ok("PutScalingPolicy", step_policy("step")).await;
    f.ok(
        "PutScheduledAction",
        with(
            target(WEB),
            json!({"ScheduledActionName": "night", "Schedule": "cron(0 22 * * ? *)",
                   "ScalableTargetAction": {"MinCapacity": 0, "MaxCapacity": 1}}),
        ),
    )
    .await;
    assert_eq!(f.alarm_names().await.len(), 2);
    f.ok("DeregisterScalableTarget", target(WEB)).await;
    assert!(f.alarm_names().await.is_empty());
    let policies = f
        .ok(
            "DescribeScalingPolicies",
            json!({"ServiceNamespace": "ecs"}),
        )
        .await;
    assert_eq!(policies["ScalingPolicies"], json!([]));
    let actions = f
        .ok(
            "DescribeScheduledActions",
            json!({"ServiceNamespace": "ecs"}),
        )
        .await;
    assert_eq!(actions["ScheduledActions"], json!([]));
}

#[tokio::test]
async fn scheduled_actions_are_put_described_updated_and_deleted() {
    let f = Fixture::new().await;
    f.register(WEB, 1, 10).await;
    let body = with(
        target(WEB),
        json!({"ScheduledActionName": "morning", "Schedule": "cron(0 8 * * ? *)",
               "Timezone": "Europe/Paris", "StartTime": 1_800_000_000.0,
               "ScalableTargetAction": {"MinCapacity": 3}}),
    );
    f.ok("PutScheduledAction", body).await;
    let described = f
        .ok(
            "DescribeScheduledActions",
            json!({"ServiceNamespace": "ecs", "ResourceId": WEB, "ScheduledActionNames": ["morning"]}),
        )
        .await;
    let action = described["ScheduledActions"][0].clone();
    assert_eq!(action["Schedule"], "cron(0 8 * * ? *)");
    assert_eq!(action["Timezone"], "Europe/Paris");
    assert_eq!(action["StartTime"], 1_800_000_000.0);
    assert_eq!(action["ScalableTargetAction"], json!({"MinCapacity": 3}));
    let arn = action["ScheduledActionARN"].as_str().unwrap().to_string();
    assert!(
        arn.starts_with("arn:aws:autoscaling:us-east-1:000000000000:scheduledAction:")
            && arn.ends_with(":resource/ecs/service/default/web:scheduledActionName/morning"),
        "{arn}"
    );
    // An update without StartTime drops it and keeps the schedule and the ARN.
    f.ok(
        "PutScheduledAction",
        with(
            target(WEB),
            json!({"ScheduledActionName": "morning", "ScalableTargetAction": {"MaxCapacity": 5}}),
        ),
    )
    .await;
    let action = f
        .ok(
            "DescribeScheduledActions",
            json!({"ServiceNamespace": "ecs"}),
        )
        .await["ScheduledActions"][0]
        .clone();
    assert_eq!(action["ScheduledActionARN"], arn.as_str());
    assert_eq!(action["Schedule"], "cron(0 8 * * ? *)");
    assert!(action.get("StartTime").is_none());
    assert_eq!(action["ScalableTargetAction"], json!({"MaxCapacity": 5}));
    // Timezone defaults to UTC.
    f.ok(
        "PutScheduledAction",
        with(
            target(WEB),
            json!({"ScheduledActionName": "once", "Schedule": "at(2027-01-01T00:00:00)",
                   "ScalableTargetAction": {"MinCapacity": 1, "MaxCapacity": 1}}),
        ),
    )
    .await;
    let actions = f
        .ok(
            "DescribeScheduledActions",
            json!({"ServiceNamespace": "ecs", "ScheduledActionNames": ["once"]}),
        )
        .await;
    assert_eq!(actions["ScheduledActions"][0]["Timezone"], "UTC");

    f.ok(
        "DeleteScheduledAction",
        with(target(WEB), json!({"ScheduledActionName": "morning"})),
    )
    .await;
    let err = f
        .err(
            "DeleteScheduledAction",
            with(target(WEB), json!({"ScheduledActionName": "morning"})),
        )
        .await;
    assert_eq!(err.code, "ObjectNotFoundException");
    assert_eq!(err.message, "No scheduled action found for service namespace: ecs, resource ID: service/default/web, scalable dimension: ecs:service:DesiredCount, scheduled action name: morning");
}

#[tokio::test]
async fn scheduled_action_errors_write_nothing() {
    let f = Fixture::new().await;
    f.create_service("api").await;
    f.register(WEB, 1, 10).await;
    let put = |extra: Value| {
        with(
            with(
                target(WEB),
                json!({"ScheduledActionName": "a", "Schedule": "rate(5 minutes)",
                       "ScalableTargetAction": {"MinCapacity": 1}}),
            ),
            extra,
        )
    };
    let cases = [
        ("PutScheduledAction", put(json!({"ResourceId": "service/default/api"})), "ObjectNotFoundException",
         "No scalable target registered"),
        ("PutScheduledAction", put(json!({"ScalableTargetAction": {}})), "ValidationException",
         "At least one of minimum capacity and maximum capacity should be provided"),
        ("PutScheduledAction", put(json!({"ScalableTargetAction": {"MinCapacity": 4, "MaxCapacity": 2}})),
         "ValidationException", "Minimum capacity (4) cannot be greater than maximum capacity (2)."),
        ("PutScheduledAction", put(json!({"Schedule": "every day"})), "ValidationException", ""),
        ("PutScheduledAction", put(json!({"ScheduledActionName": "a:b"})), "ValidationException",
         "Value 'a:b' at 'scheduledActionName' failed to satisfy constraint: Member must satisfy regular expression pattern"),
        ("PutScheduledAction", {
            let mut b = put(json!({}));
            b.as_object_mut().unwrap().remove("Schedule");
            b
        }, "ValidationException", "Schedule is required"),
        ("PutScheduledAction", put(json!({"StartTime": 2_000_000_000.0, "EndTime": 1_900_000_000.0})),
         "ValidationException", "must be before its end time"),
        ("DeleteScheduledAction", with(target(WEB), json!({"ScheduledActionName": "none"})),
         "ObjectNotFoundException", "No scheduled action found"),
    ];
    check_errors(&f, &cases).await;
}

#[tokio::test]
async fn scaling_activities_newest_first_with_not_scaled_ones_on_request() {
    let f = Fixture::new().await;
    f.register(WEB, 1, 10).await;
    let put = |start_ms: i64, id: &str, not_scaled: bool| {
        let store = Arc::clone(&f.store);
        let id = id.to_string();
        async move {
            let activity = application_autoscaling_wire::ScalingActivity {
                activity_id: Some(id.clone()),
                service_namespace: Some(application_autoscaling_wire::ServiceNamespace::Ecs),
                resource_id: Some(WEB.into()),
                scalable_dimension: Some(
                    application_autoscaling_wire::ScalableDimension::EcsServiceDesiredCount,
                ),
                description: Some("Setting desired count to 2.".into()),
                cause: Some("monitor alarm x in state ALARM triggered policy cpu".into()),
                start_time: Some(start_ms as f64 / 1000.0),
                status_code: Some(
                    application_autoscaling_wire::ScalingActivityStatusCode::Successful,
                ),
                not_scaled_reasons: not_scaled.then(|| {
                    vec![application_autoscaling_wire::NotScaledReason {
                        code: Some("AlreadyAtMaxCapacity".into()),
                        max_capacity: Some(10),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            };
            let key = activity_key(
                "us-east-1",
                "ecs",
                WEB,
                "ecs:service:DesiredCount",
                start_ms,
                &id,
            );
            assert!(api::records::Write::new()
                .put(&key, &ActivityRecord { activity })
                .commit(store.as_ref())
                .await
                .unwrap());
        }
    };
    put(NOW_MS - 3000, "a1", false).await;
    put(NOW_MS - 2000, "a2", true).await;
    put(NOW_MS - 1000, "a3", false).await;
    put(NOW_MS - 50 * 24 * 3600 * 1000, "old", false).await;
    let ids = |v: &Value| -> Vec<String> {
        v["ScalingActivities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["ActivityId"].as_str().unwrap().to_string())
            .collect()
    };
    let scaled = f
        .ok(
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs", "ResourceId": WEB}),
        )
        .await;
    assert_eq!(ids(&scaled), ["a3", "a1", "old"]);
    let all = f
        .ok(
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs", "IncludeNotScaledActivities": true}),
        )
        .await;
    assert_eq!(ids(&all), ["a3", "a2", "a1", "old"]);
    assert_eq!(
        all["ScalingActivities"][1]["NotScaledReasons"][0]["Code"],
        "AlreadyAtMaxCapacity"
    );
    // Pages of one, newest first.
    let first = f
        .ok(
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs", "MaxResults": 1}),
        )
        .await;
    assert_eq!(ids(&first), ["a3"]);
    let second = f
        .ok(
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs", "MaxResults": 1, "NextToken": first["NextToken"]}),
        )
        .await;
    assert_eq!(ids(&second), ["a1"]);
    // Activities older than six weeks expire; the others stay, even after deregistering.
    assert_eq!(f.service.expire_activities(NOW_MS).await.unwrap(), 1);
    f.ok("DeregisterScalableTarget", target(WEB)).await;
    let after = f
        .ok(
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs", "IncludeNotScaledActivities": true}),
        )
        .await;
    assert_eq!(ids(&after), ["a3", "a2", "a1"]);
}

#[tokio::test]
async fn tags_on_scalable_targets() {
    let f = Fixture::new().await;
    let arn = f.register_with_tags().await;
    let listed = f
        .ok("ListTagsForResource", json!({"ResourceARN": arn}))
        .await;
    assert_eq!(listed["Tags"], json!({"team": "web"}));
    f.ok(
        "TagResource",
        json!({"ResourceARN": arn, "Tags": {"env": "prod", "team": "platform"}}),
    )
    .await;
    f.ok(
        "UntagResource",
        json!({"ResourceARN": arn, "TagKeys": ["env"]}),
    )
    .await;
    let listed = f
        .ok("ListTagsForResource", json!({"ResourceARN": arn}))
        .await;
    assert_eq!(listed["Tags"], json!({"team": "platform"}));
    let unknown = "arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/0abc";
    let many: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        ("ListTagsForResource", json!({"ResourceARN": unknown}), "ResourceNotFoundException", "0abc"),
        ("ListTagsForResource", json!({"ResourceARN": "arn:aws:ecs:x"}), "ValidationException",
         "at 'resourceARN' failed to satisfy constraint: Member must satisfy regular expression pattern"),
        ("TagResource", json!({"ResourceARN": arn}), "ValidationException",
         "Value null at 'tags' failed to satisfy constraint: Member must not be null"),
        ("TagResource", json!({"ResourceARN": arn, "Tags": {"aws:owner": "x"}}), "ValidationException", "reserved"),
        ("TagResource", json!({"ResourceARN": arn, "Tags": many}), "TooManyTagsException", "at most 50 tags"),
        ("UntagResource", json!({"ResourceARN": unknown, "TagKeys": ["a"]}), "ResourceNotFoundException", ""),
    ];
    check_errors(&f, &cases).await;
}

impl Fixture {
    async fn register_with_tags(&self) -> String {
        self.ok(
            "RegisterScalableTarget",
            with(
                target(WEB),
                json!({"MinCapacity": 1, "MaxCapacity": 2, "Tags": {"team": "web"}}),
            ),
        )
        .await["ScalableTargetARN"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[path = "controller_tests.rs"]
mod controller_tests;
