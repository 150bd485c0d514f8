"""Application Auto Scaling's API through the real clients (boto3 `application-autoscaling`
and the AWS CLI) against `berth server`: every operation, AWS's error codes and messages,
pagination with botocore's paginators, the CloudWatch alarms a target-tracking policy owns
(visible through the CloudWatch client) and the deletion cascades.

API only, no Docker: the ECS services have desiredCount 0, so no agent is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from berth_harness import ACCOUNT_ID, DEFAULT_REGION, BerthServer, api_error, container, unique_name

DIMENSION = "ecs:service:DesiredCount"
TARGET_NOT_FOUND = (
    "No scalable target registered for service namespace: ecs, resource ID: {}, "
    "scalable dimension: ecs:service:DesiredCount"
)


@pytest.fixture(scope="module")
def autoscaling(server: BerthServer) -> Any:
    return server.client(service="application-autoscaling")


@pytest.fixture(scope="module")
def cloudwatch(server: BerthServer) -> Any:
    return server.client(service="cloudwatch")


@pytest.fixture(scope="module")
def cluster(ecs: Any) -> str:
    name = unique_name("aas")
    ecs.create_cluster(clusterName=name)
    ecs.register_task_definition(family=name, containerDefinitions=[container("web")])
    return name


@pytest.fixture
def service(ecs: Any, cluster: str) -> str:
    """A new ECS service (desiredCount 0); its ResourceId."""
    name = unique_name("web")
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=cluster, desiredCount=0)
    return f"service/{cluster}/{name}"


def target(resource_id: str) -> dict[str, str]:
    return {"ServiceNamespace": "ecs", "ResourceId": resource_id, "ScalableDimension": DIMENSION}


def register(autoscaling: Any, resource_id: str, low: int = 1, high: int = 4, **extra: Any) -> str:
    return autoscaling.register_scalable_target(
        **target(resource_id), MinCapacity=low, MaxCapacity=high, **extra
    )["ScalableTargetARN"]


def cpu_policy(autoscaling: Any, resource_id: str, name: str, value: float = 50.0, **config: Any) -> dict:
    return autoscaling.put_scaling_policy(
        **target(resource_id),
        PolicyName=name,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": value,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            **config,
        },
    )


def step_policy(autoscaling: Any, resource_id: str, name: str) -> dict:
    return autoscaling.put_scaling_policy(
        **target(resource_id),
        PolicyName=name,
        PolicyType="StepScaling",
        StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity",
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
            "Cooldown": 60,
        },
    )


def alarm_names(cloudwatch: Any, prefix: str) -> list[str]:
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    return sorted(alarm["AlarmName"] for alarm in alarms)


def test_register_describe_update_deregister(autoscaling: Any, service: str) -> None:
    arn = register(autoscaling, service, 1, 4, Tags={"team": "web"})
    assert arn.startswith(
        f"arn:aws:application-autoscaling:{DEFAULT_REGION}:{ACCOUNT_ID}:scalable-target/0"
    )
    described = autoscaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[service])
    [found] = described["ScalableTargets"]
    assert found["ResourceId"] == service
    assert found["ScalableDimension"] == DIMENSION
    assert (found["MinCapacity"], found["MaxCapacity"]) == (1, 4)
    assert found["ScalableTargetARN"] == arn
    assert found["RoleARN"].endswith("AWSServiceRoleForApplicationAutoScaling_ECSService")
    assert found["SuspendedState"] == {
        "DynamicScalingInSuspended": False,
        "DynamicScalingOutSuspended": False,
        "ScheduledScalingSuspended": False,
    }
    # An update changes what it names and keeps the ARN.
    again = autoscaling.register_scalable_target(
        **target(service), MaxCapacity=6, SuspendedState={"ScheduledScalingSuspended": True}
    )
    assert again["ScalableTargetARN"] == arn
    [found] = autoscaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[service])[
        "ScalableTargets"
    ]
    assert (found["MinCapacity"], found["MaxCapacity"]) == (1, 6)
    assert found["SuspendedState"]["ScheduledScalingSuspended"] is True
    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "web"}

    autoscaling.deregister_scalable_target(**target(service))
    assert autoscaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[service])[
        "ScalableTargets"
    ] == []
    error = api_error("ObjectNotFoundException", autoscaling.deregister_scalable_target, **target(service))
    assert error.message == TARGET_NOT_FOUND.format(service)


@pytest.mark.parametrize(
    "change, code, message",
    [
        ({"ResourceId": "service/{cluster}/missing"}, "ValidationException",
         "ECS service doesn't exist: service/{cluster}/missing"),
        ({"ServiceNamespace": "dynamodb"}, "ValidationException", "Berth supports only the ecs service namespace"),
        ({"ScalableDimension": "dynamodb:table:ReadCapacityUnits"}, "ValidationException",
         "Unsupported service namespace, resource type or scalable dimension"),
        ({"ResourceId": "cluster/{cluster}"}, "ValidationException",
         "Unsupported service namespace, resource type or scalable dimension"),
        ({"MinCapacity": 5}, "ValidationException", "Minimum capacity (5) cannot be greater than maximum capacity (4)."),
        ({"MinCapacity": None}, "ValidationException", "MinCapacity and MaxCapacity are required"),
        ({"Tags": {"aws:owner": "me"}}, "ValidationException", "reserved"),
    ],
)
def test_register_validation(autoscaling: Any, cluster: str, service: str, change: dict, code: str,
                             message: str) -> None:
    params: dict[str, Any] = {**target(service), "MinCapacity": 1, "MaxCapacity": 4}
    for key, value in change.items():
        if value is None:
            params.pop(key)
        else:
            params[key] = value.format(cluster=cluster) if isinstance(value, str) else value
    error = api_error(code, autoscaling.register_scalable_target, **params)
    assert message.format(cluster=cluster) in error.message
    # Nothing was registered.
    assert autoscaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[service])[
        "ScalableTargets"
    ] == []


def test_front_end_validation_messages(autoscaling: Any, service: str) -> None:
    error = api_error("ValidationException", autoscaling.describe_scalable_targets,
                      ServiceNamespace="ecs", MaxResults=51)
    assert error.message == (
        "1 validation error detected: Value '51' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 50"
    )
    error = api_error("InvalidNextTokenException", autoscaling.describe_scalable_targets,
                      ServiceNamespace="ecs", NextToken="not-a-token")
    assert error.message == "Invalid token"
    error = api_error("ValidationException", autoscaling.get_predictive_scaling_forecast,
                      **target(service), PolicyName="p", StartTime=0, EndTime=3600)
    assert "not supported by Berth" in error.message


def test_describe_scalable_targets_paginates(autoscaling: Any, ecs: Any, cluster: str) -> None:
    ids = []
    for _ in range(5):
        name = unique_name("page")
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=cluster, desiredCount=0)
        ids.append(f"service/{cluster}/{name}")
        register(autoscaling, ids[-1], 0, 2)
    paginator = autoscaling.get_paginator("describe_scalable_targets")
    pages = list(paginator.paginate(ServiceNamespace="ecs", ResourceIds=ids, PaginationConfig={"PageSize": 2}))
    assert [len(page["ScalableTargets"]) for page in pages] == [2, 2, 1]
    seen = [t["ResourceId"] for page in pages for t in page["ScalableTargets"]]
    assert sorted(seen) == sorted(ids)


def test_target_tracking_policy_owns_its_alarms(autoscaling: Any, cloudwatch: Any, service: str) -> None:
    register(autoscaling, service, 1, 10)
    put = cpu_policy(autoscaling, service, "cpu")
    arn = put["PolicyARN"]
    assert arn.startswith(f"arn:aws:autoscaling:{DEFAULT_REGION}:{ACCOUNT_ID}:scalingPolicy:")
    assert arn.endswith(f":resource/ecs/{service}:policyName/cpu")
    names = sorted(alarm["AlarmName"] for alarm in put["Alarms"])
    prefix = f"TargetTracking-{service}-"
    assert len(names) == 2
    assert names[0].startswith(prefix + "AlarmHigh-") and names[1].startswith(prefix + "AlarmLow-")
    alarms = cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
    assert len(alarms) == 2
    for alarm in alarms:
        assert alarm["AlarmActions"] == [arn]
        assert alarm["Namespace"] == "AWS/ECS"
        assert alarm["MetricName"] == "CPUUtilization"
        assert alarm["AlarmDescription"] == f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {arn}."
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        _, cluster_name, service_name = service.split("/")
        assert dimensions == {"ClusterName": cluster_name, "ServiceName": service_name}

    [policy] = autoscaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)[
        "ScalingPolicies"
    ]
    assert policy["PolicyARN"] == arn
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert sorted(a["AlarmName"] for a in policy["Alarms"]) == names

    # An update keeps the ARN; disabling scale-in drops AlarmLow.
    again = cpu_policy(autoscaling, service, "cpu", 70.0, DisableScaleIn=True)
    assert again["PolicyARN"] == arn
    assert [a["AlarmName"] for a in again["Alarms"]] == [names[0]]
    assert alarm_names(cloudwatch, prefix) == [names[0]]

    autoscaling.delete_scaling_policy(**target(service), PolicyName="cpu")
    assert alarm_names(cloudwatch, prefix) == []
    error = api_error("ObjectNotFoundException", autoscaling.delete_scaling_policy,
                      **target(service), PolicyName="cpu")
    assert error.message == (
        f"No scaling policy found for service namespace: ecs, resource ID: {service}, "
        f"scalable dimension: {DIMENSION}, policy name: cpu"
    )


def test_step_policy_alarms_are_the_ones_naming_it(autoscaling: Any, cloudwatch: Any, service: str) -> None:
    register(autoscaling, service, 1, 10)
    arn = step_policy(autoscaling, service, "out")["PolicyARN"]
    alarm = unique_name("high-cpu")
    cloudwatch.put_metric_alarm(
        AlarmName=alarm, Namespace="AWS/ECS", MetricName="CPUUtilization", Statistic="Average",
        Period=60, EvaluationPeriods=1, Threshold=80, ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[arn],
    )
    [policy] = autoscaling.describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=service, PolicyNames=["out"]
    )["ScalingPolicies"]
    assert policy["PolicyType"] == "StepScaling"
    assert [a["AlarmName"] for a in policy["Alarms"]] == [alarm]
    assert policy["StepScalingPolicyConfiguration"]["Cooldown"] == 60
    autoscaling.delete_scaling_policy(**target(service), PolicyName="out")
    # The user's alarm stays.
    assert alarm_names(cloudwatch, alarm) == [alarm]
    cloudwatch.delete_alarms(AlarmNames=[alarm])


@pytest.mark.parametrize(
    "params, code, message",
    [
        ({"PolicyType": "TargetTrackingScaling",
          "TargetTrackingScalingPolicyConfiguration": {"TargetValue": 50}},
         "ValidationException", "Either PredefinedMetricSpecification or CustomizedMetricSpecification"),
        ({"PolicyType": "TargetTrackingScaling",
          "TargetTrackingScalingPolicyConfiguration": {
              "TargetValue": 50, "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget"}}},
         "ValidationException", "ResourceLabel is required"),
        ({"PolicyType": "TargetTrackingScaling",
          "TargetTrackingScalingPolicyConfiguration": {
              "TargetValue": 50,
              "PredefinedMetricSpecification": {"PredefinedMetricType": "DynamoDBReadCapacityUtilization"}}},
         "ValidationException", "Unsupported predefined metric type"),
        ({"PolicyType": "StepScaling",
          "StepScalingPolicyConfiguration": {
              "AdjustmentType": "ChangeInCapacity",
              "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
                                  {"MetricIntervalLowerBound": 5, "ScalingAdjustment": 2}]}},
         "ValidationException", "can't overlap"),
        ({"PolicyType": "StepScaling",
          "StepScalingPolicyConfiguration": {
              "AdjustmentType": "ExactCapacity", "MinAdjustmentMagnitude": 2,
              "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 3}]}},
         "ValidationException", "MinAdjustmentMagnitude may only be specified"),
        ({"PolicyType": "PredictiveScaling",
          "PredictiveScalingPolicyConfiguration": {"MetricSpecifications": []}},
         "ValidationException", "Berth does not support predictive scaling"),
    ],
)
def test_policy_validation(autoscaling: Any, cloudwatch: Any, service: str, params: dict, code: str,
                           message: str) -> None:
    register(autoscaling, service)
    error = api_error(code, autoscaling.put_scaling_policy, **target(service), PolicyName="p", **params)
    assert message in error.message, error.message
    assert autoscaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)[
        "ScalingPolicies"
    ] == []
    assert alarm_names(cloudwatch, f"TargetTracking-{service}-") == []


def test_policy_needs_a_registered_target(autoscaling: Any, service: str) -> None:
    error = api_error("ObjectNotFoundException", cpu_policy, autoscaling, service, "cpu")
    assert error.message == TARGET_NOT_FOUND.format(service)


def test_describe_scaling_policies_paginates(autoscaling: Any, service: str) -> None:
    register(autoscaling, service)
    names = [f"p{i:02}" for i in range(12)]
    for name in names:
        step_policy(autoscaling, service, name)
    first = autoscaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)
    assert len(first["ScalingPolicies"]) == 10 and "NextToken" in first
    paginator = autoscaling.get_paginator("describe_scaling_policies")
    seen = [p["PolicyName"] for page in paginator.paginate(ServiceNamespace="ecs", ResourceId=service)
            for p in page["ScalingPolicies"]]
    assert seen == names


def test_scheduled_actions(autoscaling: Any, service: str) -> None:
    register(autoscaling, service, 1, 4)
    autoscaling.put_scheduled_action(
        **target(service), ScheduledActionName="morning", Schedule="cron(0 8 * * ? *)",
        Timezone="Europe/Paris", ScalableTargetAction={"MinCapacity": 2},
    )
    autoscaling.put_scheduled_action(
        **target(service), ScheduledActionName="once", Schedule="at(2030-01-01T00:00:00)",
        ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 2},
    )
    actions = autoscaling.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=service)[
        "ScheduledActions"
    ]
    by_name = {a["ScheduledActionName"]: a for a in actions}
    assert set(by_name) == {"morning", "once"}
    assert by_name["morning"]["Timezone"] == "Europe/Paris"
    assert by_name["once"]["Timezone"] == "UTC"
    assert by_name["morning"]["ScalableTargetAction"] == {"MinCapacity": 2}
    assert by_name["morning"]["ScheduledActionARN"].endswith(
        f":resource/ecs/{service}:scheduledActionName/morning"
    )
    paginator = autoscaling.get_paginator("describe_scheduled_actions")
    pages = list(paginator.paginate(ServiceNamespace="ecs", ResourceId=service,
                                    PaginationConfig={"PageSize": 1}))
    assert [len(p["ScheduledActions"]) for p in pages] == [1, 1]

    error = api_error("ValidationException", autoscaling.put_scheduled_action,
                      **target(service), ScheduledActionName="empty", Schedule="rate(5 minutes)",
                      ScalableTargetAction={})
    assert error.message == "At least one of minimum capacity and maximum capacity should be provided"
    api_error("ValidationException", autoscaling.put_scheduled_action,
              **target(service), ScheduledActionName="bad", Schedule="every day",
              ScalableTargetAction={"MinCapacity": 1})

    autoscaling.delete_scheduled_action(**target(service), ScheduledActionName="morning")
    error = api_error("ObjectNotFoundException", autoscaling.delete_scheduled_action,
                      **target(service), ScheduledActionName="morning")
    assert error.message == (
        f"No scheduled action found for service namespace: ecs, resource ID: {service}, "
        f"scalable dimension: {DIMENSION}, scheduled action name: morning"
    )


def test_deregistering_deletes_policies_alarms_and_scheduled_actions(
    autoscaling: Any, cloudwatch: Any, service: str
) -> None:
    register(autoscaling, service, 1, 4)
    cpu_policy(autoscaling, service, "cpu")
    step_policy(autoscaling, service, "step")
    autoscaling.put_scheduled_action(
        **target(service), ScheduledActionName="night", Schedule="cron(0 22 * * ? *)",
        ScalableTargetAction={"MinCapacity": 0, "MaxCapacity": 1},
    )
    prefix = f"TargetTracking-{service}-"
    assert len(alarm_names(cloudwatch, prefix)) == 2
    autoscaling.deregister_scalable_target(**target(service))
    assert alarm_names(cloudwatch, prefix) == []
    assert autoscaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=service)[
        "ScalingPolicies"
    ] == []
    assert autoscaling.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=service)[
        "ScheduledActions"
    ] == []


def test_scaling_activities_are_described(autoscaling: Any, service: str) -> None:
    register(autoscaling, service, 1, 4)
    response = autoscaling.describe_scaling_activities(
        ServiceNamespace="ecs", ResourceId=service, ScalableDimension=DIMENSION,
        IncludeNotScaledActivities=True,
    )
    for activity in response["ScalingActivities"]:
        assert activity["ResourceId"] == service
        assert activity["StatusCode"] in {"Pending", "InProgress", "Successful", "Overridden",
                                          "Unfulfilled", "Failed"}
    paginator = autoscaling.get_paginator("describe_scaling_activities")
    list(paginator.paginate(ServiceNamespace="ecs", PaginationConfig={"PageSize": 1}))


def test_tags(autoscaling: Any, service: str) -> None:
    arn = register(autoscaling, service)
    autoscaling.tag_resource(ResourceARN=arn, Tags={"env": "prod", "team": "web"})
    autoscaling.untag_resource(ResourceARN=arn, TagKeys=["env"])
    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "web"}
    unknown = f"arn:aws:application-autoscaling:{DEFAULT_REGION}:{ACCOUNT_ID}:scalable-target/0abc"
    api_error("ResourceNotFoundException", autoscaling.list_tags_for_resource, ResourceARN=unknown)
    api_error("TooManyTagsException", autoscaling.tag_resource, ResourceARN=arn,
              Tags={f"k{i}": "v" for i in range(50)})
    error = api_error("ValidationException", autoscaling.tag_resource, ResourceARN=arn,
                      Tags={"aws:reserved": "x"})
    assert "reserved" in error.message


def test_aws_cli_describe_scalable_targets(server: BerthServer, autoscaling: Any, service: str,
                                           cli_home: Path) -> None:
    register(autoscaling, service, 2, 3)
    described = server.aws(
        "application-autoscaling", "describe-scalable-targets", "--service-namespace", "ecs",
        home=cli_home,
    ).json()
    found = [t for t in described["ScalableTargets"] if t["ResourceId"] == service]
    assert len(found) == 1
    assert (found[0]["MinCapacity"], found[0]["MaxCapacity"]) == (2, 3)
