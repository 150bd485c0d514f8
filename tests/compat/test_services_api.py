"""CreateService, UpdateService, DeleteService, DescribeServices, ListServices,
ListServiceDeployments, DescribeServiceDeployments and DescribeServiceRevisions
at the API level, through boto3 and the AWS CLI.

Every test uses its own cluster without container instances: nothing can be
placed there, so the service controller (when it runs) only records events;
running and pending counts stay 0. Tests never assume the event list is
empty, nor that a deleted service stays DRAINING (with no tasks it goes
INACTIVE).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from berth_harness import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    BerthServer,
    api_error,
    cluster_arn,
    collect_pages,
    container,
    tag_set,
    task_definition_arn,
    unique_name,
)

INVALID = "InvalidParameterException"
SERVICE_LINKED_ROLE = (
    f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
)


def service_arn(cluster: str, name: str) -> str:
    return f"arn:aws:ecs:{DEFAULT_REGION}:{ACCOUNT_ID}:service/{cluster}/{name}"


def deployment_number(deployment_id: str) -> str:
    match = re.fullmatch(r"ecs-svc/([1-9][0-9]{18})", deployment_id)
    assert match, deployment_id
    return match.group(1)


@pytest.fixture
def cluster(ecs) -> str:
    name = unique_name("svc")
    ecs.create_cluster(clusterName=name)
    return name


@pytest.fixture
def family(ecs) -> str:
    name = unique_name("svc-td")
    ecs.register_task_definition(family=name, containerDefinitions=[container("web")])
    return name


def create(ecs, cluster: str, family: str, name: str, **extra: Any) -> dict:
    params: dict[str, Any] = {"cluster": cluster, "serviceName": name, "taskDefinition": family}
    if extra.get("schedulingStrategy") != "DAEMON":
        params["desiredCount"] = 1
    params.update(extra)
    return ecs.create_service(**params)["service"]


def describe_one(ecs, cluster: str, service: str, **extra: Any) -> dict:
    response = ecs.describe_services(cluster=cluster, services=[service], **extra)
    assert response["failures"] == [], response["failures"]
    assert len(response["services"]) == 1
    return response["services"][0]


def test_create_service_shows_what_ecs_shows(ecs, cluster: str, family: str) -> None:
    service = create(ecs, cluster, family, "web", desiredCount=2)
    assert service["serviceArn"] == service_arn(cluster, "web")
    assert service["serviceName"] == "web"
    assert service["clusterArn"] == cluster_arn(cluster)
    assert service["status"] == "ACTIVE"
    assert service["desiredCount"] == 2
    assert (service["runningCount"], service["pendingCount"]) == (0, 0)
    assert service["launchType"] == "EC2"
    assert service["taskDefinition"] == task_definition_arn(family, 1)
    assert service["schedulingStrategy"] == "REPLICA"
    assert service["deploymentController"] == {"type": "ECS"}
    assert service["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {
            "enable": False, "rollback": False, "resetOnHealthyTask": True,
            "thresholdConfiguration": {"type": "BOUNDED_PERCENT", "value": 50},
        },
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }
    assert service["placementConstraints"] == []
    assert service["placementStrategy"] == []
    assert service["propagateTags"] == "NONE"
    assert service["enableECSManagedTags"] is False
    assert service["enableExecuteCommand"] is False
    assert service["createdBy"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
    assert service["roleArn"] == SERVICE_LINKED_ROLE
    assert "healthCheckGracePeriodSeconds" not in service
    assert "tags" in service  # CreateService answers the tags it was given
    (primary,) = service["deployments"]
    deployment_number(primary["id"])
    assert primary["status"] == "PRIMARY"
    assert primary["taskDefinition"] == task_definition_arn(family, 1)
    assert primary["desiredCount"] == 2
    assert primary["failedTasks"] == 0
    assert primary["rolloutState"] == "IN_PROGRESS"
    assert primary["rolloutStateReason"] == f"ECS deployment {primary['id']} in progress."
    # boto3 parses the timestamps.
    assert primary["createdAt"].year >= 2024
    assert service["createdAt"] == primary["createdAt"]

    described = describe_one(ecs, cluster, "web")
    assert described["deployments"][0]["id"] == primary["id"]
    assert "tags" not in described
    assert describe_one(ecs, cluster, service_arn(cluster, "web"))["serviceName"] == "web"


def test_create_service_with_every_supported_option(ecs, cluster: str, family: str) -> None:
    sent = {
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {
                "enable": True, "rollback": True, "resetOnHealthyTask": False,
                "thresholdConfiguration": {"type": "COUNT", "value": 4},
            },
            "maximumPercent": 150,
            "minimumHealthyPercent": 50,
        },
        "placementConstraints": [
            {"type": "distinctInstance"},
            {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"},
        ],
        "placementStrategy": [
            {"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "binpack", "field": "memory"},
        ],
        "healthCheckGracePeriodSeconds": 45,
        "propagateTags": "SERVICE",
        "enableECSManagedTags": True,
        "tags": [{"key": "team", "value": "web"}],
        "launchType": "EXTERNAL",
    }
    service = create(ecs, cluster, family, "full", desiredCount=3, clientToken=unique_name("t"), **sent)
    for key, value in sent.items():
        assert service[key] == value, key
    assert service["deployments"][0]["launchType"] == "EXTERNAL"

    daemon = create(ecs, cluster, family, "agentd", schedulingStrategy="DAEMON")
    assert daemon["schedulingStrategy"] == "DAEMON"
    assert daemon["deploymentConfiguration"]["maximumPercent"] == 100
    assert daemon["deploymentConfiguration"]["minimumHealthyPercent"] == 0


VALIDATION_CASES = [
    ({"serviceName": "bad name"}, INVALID, "Invalid service name 'bad name'"),
    ({"serviceName": "x" * 256}, INVALID, "Invalid service name"),
    ({"taskDefinition": "no-such-family-anywhere"}, "ClientException", "TaskDefinition not found."),
    ({"desiredCount": -1}, INVALID, "desiredCount must be 0 or greater"),
    ({"desiredCount": None}, INVALID, "desiredCount can not be blank."),
    ({"taskDefinition": None}, INVALID, "taskDefinition can not be blank."),
    ({"schedulingStrategy": "DAEMON", "desiredCount": 2}, INVALID,
     "The daemon scheduling strategy does not support a desired count for services. "
     "Remove the desired count value and try again"),
    ({"schedulingStrategy": "DAEMON", "desiredCount": None, "placementStrategy": [{"type": "random"}]}, INVALID,
     "The daemon scheduling strategy does not support placement strategies. "
     "Remove the placement strategy and try again"),
    ({"schedulingStrategy": "DAEMON", "desiredCount": None,
      "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}]}, INVALID,
     "Specifying a capacity provider strategy is not supported when you create a service "
     "using the DAEMON scheduling strategy."),
    ({"launchType": "FARGATE"}, INVALID, "Launch type FARGATE is not supported by Berth"),
    ({"capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}]}, INVALID,
     "capacityProviderStrategy is not supported by Berth yet"),
    ({"platformVersion": "LATEST"}, INVALID,
     "The platform version must be null when specifying an EC2 launch type."),
    ({"loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/1",
                         "containerName": "web", "containerPort": 80}]}, INVALID,
     "The container web did not have a container port 80 defined."),
    ({"loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/1",
                         "containerName": "db", "containerPort": 80}]}, INVALID,
     "The container db does not exist in the task definition."),
    ({"role": "ecsServiceRole"}, INVALID, "The role parameter is only valid for a service that uses load balancers"),
    ({"serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-1"}]},
     INVALID, "serviceRegistries are not supported by Berth"),
    ({"serviceConnectConfiguration": {"enabled": True, "namespace": "ns"}}, INVALID,
     "Service Connect is not supported by Berth"),
    ({"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}, INVALID,
     "networkConfiguration is not supported by Berth yet"),
    ({"volumeConfigurations": [{"name": "data"}]}, INVALID, "volumeConfigurations are not supported"),
    ({"enableExecuteCommand": True}, INVALID, "enableExecuteCommand is not supported by Berth yet."),
    ({"deploymentController": {"type": "CODE_DEPLOY"}}, INVALID,
     "The CODE_DEPLOY deployment controller is not supported by Berth"),
    ({"availabilityZoneRebalancing": "ENABLED"}, INVALID, "availabilityZoneRebalancing ENABLED is not supported"),
    ({"deploymentConfiguration": {"alarms": {"alarmNames": ["a"], "enable": True, "rollback": True}}}, INVALID,
     "Deployment alarms"),
    ({"deploymentConfiguration": {"minimumHealthyPercent": 101}}, INVALID,
     "minimumHealthyPercent must be between 0 and 100; 101 was given."),
    ({"deploymentConfiguration": {"maximumPercent": 90, "minimumHealthyPercent": 0}}, INVALID,
     "maximumPercent must be at least 100 for a REPLICA service; 90 was given."),
    ({"schedulingStrategy": "DAEMON", "desiredCount": None, "deploymentConfiguration": {"maximumPercent": 200}},
     INVALID, "maximumPercent of 100"),
    ({"healthCheckGracePeriodSeconds": -1}, INVALID, "healthCheckGracePeriodSeconds must be 0 or greater"),
    ({"placementConstraints": [{"type": "memberOf"}]}, INVALID,
     "A memberOf placement constraint requires an expression."),
    ({"placementConstraints": [{"type": "distinctInstance"}] * 11}, INVALID, "at most 10 placement constraints"),
    ({"placementStrategy": [{"type": "binpack"}]}, INVALID, "The binpack placement strategy requires a field"),
    ({"placementStrategy": [{"type": "random"}] * 6}, INVALID, "at most 5 placement strategy rules"),
    ({"tags": [{"key": "aws:reserved", "value": "x"}]}, INVALID, "the aws: prefix is reserved"),
]


@pytest.mark.parametrize(("change", "code", "message"), VALIDATION_CASES)
def test_create_service_validation(ecs, cluster: str, family: str, change: dict, code: str, message: str) -> None:
    params: dict[str, Any] = {
        "cluster": cluster, "serviceName": "svc", "taskDefinition": family, "desiredCount": 1,
    }
    for key, value in change.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    error = api_error(code, ecs.create_service, **params)
    assert message in error.message, error.message
    assert error.status == 400
    assert ecs.list_services(cluster=cluster)["serviceArns"] == []


def test_create_service_in_a_missing_cluster(ecs, family: str) -> None:
    error = api_error(
        "ClusterNotFoundException", ecs.create_service,
        cluster=unique_name("nowhere"), serviceName="svc", taskDefinition=family, desiredCount=1,
    )
    assert error.message == "Cluster not found."


def test_create_service_refuses_an_inactive_task_definition(ecs, cluster: str, family: str) -> None:
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    error = api_error(
        "ClientException", ecs.create_service,
        cluster=cluster, serviceName="svc", taskDefinition=f"{family}:1", desiredCount=1,
    )
    assert error.message == "TaskDefinition is inactive"


def test_create_service_refuses_what_run_task_refuses(ecs, cluster: str) -> None:
    secret = unique_name("secret")
    ecs.register_task_definition(family=secret, containerDefinitions=[container(
        "web", secrets=[{"name": "X", "valueFrom": "arn:aws:ssm:us-east-1:000000000000:parameter/x"}],
    )])
    error = api_error(INVALID, ecs.create_service,
                      cluster=cluster, serviceName="svc", taskDefinition=secret, desiredCount=1)
    assert "secrets" in error.message


def test_create_service_is_idempotent(ecs, cluster: str, family: str) -> None:
    first = create(ecs, cluster, family, "api")
    again = create(ecs, cluster, family, "api")
    assert again["deployments"][0]["id"] == first["deployments"][0]["id"]
    error = api_error(INVALID, ecs.create_service,
                      cluster=cluster, serviceName="api", taskDefinition=family, desiredCount=5)
    assert error.message == "Creation of service was not idempotent."

    token = unique_name("token")
    made = create(ecs, cluster, family, "tok", clientToken=token)
    retried = create(ecs, cluster, family, "tok", clientToken=token)
    assert retried["deployments"][0]["id"] == made["deployments"][0]["id"]

    # The same name in another cluster is another service.
    other = unique_name("svc-other")
    ecs.create_cluster(clusterName=other)
    assert create(ecs, other, family, "api")["serviceArn"] == service_arn(other, "api")

    arns = [arn for page in ecs.get_paginator("list_services").paginate(cluster=cluster)
            for arn in page["serviceArns"]]
    assert sorted(arns) == [service_arn(cluster, "api"), service_arn(cluster, "tok")]


def test_describe_services_failures_and_limits(ecs, cluster: str, family: str) -> None:
    create(ecs, cluster, family, "a", tags=[{"key": "k", "value": "v"}])
    response = ecs.describe_services(cluster=cluster, services=["a", "missing"], include=["TAGS"])
    assert [s["serviceName"] for s in response["services"]] == ["a"]
    assert response["services"][0]["tags"] == [{"key": "k", "value": "v"}]
    assert response["failures"] == [{"arn": service_arn(cluster, "missing"), "reason": "MISSING"}]

    error = api_error(INVALID, ecs.describe_services, cluster=cluster,
                      services=[f"s{i}" for i in range(11)])
    assert "at most 10" in error.message
    api_error("ClusterNotFoundException", ecs.describe_services,
              cluster=unique_name("nowhere"), services=["a"])


def test_list_services_pages_and_filters(ecs, cluster: str, family: str) -> None:
    names = [f"svc-{i:02}" for i in range(12)]
    for name in names:
        create(ecs, cluster, family, name, desiredCount=0)
    create(ecs, cluster, family, "zz-external", desiredCount=0, launchType="EXTERNAL")
    create(ecs, cluster, family, "zz-daemon", schedulingStrategy="DAEMON")

    pages = collect_pages(ecs.list_services, "serviceArns", cluster=cluster,
                          launchType="EC2", schedulingStrategy="REPLICA", maxResults=5)
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [arn for page in pages for arn in page] == [service_arn(cluster, n) for n in names]

    default_page = ecs.list_services(cluster=cluster)
    assert len(default_page["serviceArns"]) == 10
    assert "nextToken" in default_page

    everything = [arn for page in ecs.get_paginator("list_services").paginate(
        cluster=cluster, PaginationConfig={"PageSize": 4}) for arn in page["serviceArns"]]
    assert len(everything) == 14
    assert ecs.list_services(cluster=cluster, launchType="EXTERNAL")["serviceArns"] == [
        service_arn(cluster, "zz-external")]
    assert ecs.list_services(cluster=cluster, schedulingStrategy="DAEMON")["serviceArns"] == [
        service_arn(cluster, "zz-daemon")]

    for bad in (0, 101):
        api_error(INVALID, ecs.list_services, cluster=cluster, maxResults=bad)
    api_error(INVALID, ecs.list_services, cluster=cluster, nextToken="not-a-token")
    api_error("ClusterNotFoundException", ecs.list_services, cluster=unique_name("nowhere"))


def test_counts_are_what_the_tasks_say_when_nothing_can_be_placed(ecs, cluster: str, family: str) -> None:
    """A planned launch that places nothing leaves no task behind, so no
    pending count either (issue 13: pendingCount stayed at 2 with no task)."""
    create(ecs, cluster, family, "unplaced", desiredCount=2)
    deadline = time.monotonic() + 30
    while not any("was unable to place a task" in e["message"]
                  for e in describe_one(ecs, cluster, "unplaced")["events"]):
        assert time.monotonic() < deadline, "the service controller never tried to place"
        time.sleep(0.2)
    for desired in (2, 0):
        ecs.update_service(cluster=cluster, service="unplaced", desiredCount=desired)
        # A few controller passes (at least one a second).
        until = time.monotonic() + 2.5
        while time.monotonic() < until:
            service = describe_one(ecs, cluster, "unplaced")
            assert (service["runningCount"], service["pendingCount"]) == (0, 0), service
            assert [(d["runningCount"], d["pendingCount"]) for d in service["deployments"]] == [(0, 0)]
            assert service["deployments"][0]["desiredCount"] == desired
            time.sleep(0.2)
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []
    described = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert (described["pendingTasksCount"], described["runningTasksCount"]) == (0, 0)


def test_circuit_breaker_threshold_configuration(ecs, cluster: str, family: str) -> None:
    """`resetOnHealthyTask` and `thresholdConfiguration`, with AWS's defaults
    (true; BOUNDED_PERCENT 50) when omitted."""
    plain = create(ecs, cluster, family, "plain", desiredCount=10,
                   deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    assert plain["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True, "rollback": True, "resetOnHealthyTask": True,
        "thresholdConfiguration": {"type": "BOUNDED_PERCENT", "value": 50},
    }
    counted = create(ecs, cluster, family, "counted", desiredCount=10, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": False, "resetOnHealthyTask": False,
                                     "thresholdConfiguration": {"type": "COUNT", "value": 7}}})
    breaker = counted["deploymentConfiguration"]["deploymentCircuitBreaker"]
    assert breaker["resetOnHealthyTask"] is False
    assert breaker["thresholdConfiguration"] == {"type": "COUNT", "value": 7}
    assert describe_one(ecs, cluster, "counted")["deploymentConfiguration"][
        "deploymentCircuitBreaker"]["thresholdConfiguration"] == {"type": "COUNT", "value": 7}

    def threshold(service: str) -> int:
        arn = ecs.list_service_deployments(cluster=cluster, service=service)["serviceDeployments"][0][
            "serviceDeploymentArn"]
        return ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0][
            "deploymentCircuitBreaker"]["threshold"]

    assert threshold("counted") == 7
    assert threshold("plain") == 5  # 50% of 10
    ecs.update_service(cluster=cluster, service="plain", deploymentConfiguration={"deploymentCircuitBreaker": {
        "enable": True, "rollback": True, "thresholdConfiguration": {"type": "UNBOUNDED_PERCENT", "value": 20}}},
        forceNewDeployment=True)
    assert threshold("plain") == 2  # 20% of 10, without the minimum of 3

    error = api_error(INVALID, ecs.update_service, cluster=cluster, service="plain", deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True,
                                     "thresholdConfiguration": {"type": "COUNT", "value": 0}}})
    assert "thresholdConfiguration.value must be 1 or greater" in error.message
    # Refused updates change nothing.
    assert describe_one(ecs, cluster, "plain")["deploymentConfiguration"]["deploymentCircuitBreaker"][
        "thresholdConfiguration"] == {"type": "UNBOUNDED_PERCENT", "value": 20}


def test_update_service(ecs, cluster: str, family: str) -> None:
    created = create(ecs, cluster, family, "api")
    first_id = created["deployments"][0]["id"]

    scaled = ecs.update_service(cluster=cluster, service="api", desiredCount=3)["service"]
    assert scaled["desiredCount"] == 3
    assert [d["id"] for d in scaled["deployments"]] == [first_id]

    ecs.register_task_definition(family=family, containerDefinitions=[container("web", image="busybox:1.37")])
    updated = ecs.update_service(cluster=cluster, service=service_arn(cluster, "api"),
                                 taskDefinition=family)["service"]
    assert updated["taskDefinition"] == task_definition_arn(family, 2)
    primary, active = updated["deployments"]
    assert (primary["status"], active["status"]) == ("PRIMARY", "ACTIVE")
    assert primary["taskDefinition"] == task_definition_arn(family, 2)
    assert primary["desiredCount"] == 3
    assert active["id"] == first_id

    forced = ecs.update_service(cluster=cluster, service="api", forceNewDeployment=True)["service"]
    assert forced["deployments"][0]["id"] not in (first_id, primary["id"])
    assert forced["deployments"][0]["taskDefinition"] == task_definition_arn(family, 2)

    configured = ecs.update_service(
        cluster=cluster, service="api",
        deploymentConfiguration={"minimumHealthyPercent": 50},
        healthCheckGracePeriodSeconds=20,
        placementStrategy=[{"type": "spread", "field": "instanceId"}],
        propagateTags="TASK_DEFINITION",
    )["service"]
    assert configured["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    assert configured["deploymentConfiguration"]["maximumPercent"] == 200
    assert configured["healthCheckGracePeriodSeconds"] == 20
    assert configured["placementStrategy"] == [{"type": "spread", "field": "instanceId"}]
    assert configured["propagateTags"] == "TASK_DEFINITION"

    error = api_error("ServiceNotFoundException", ecs.update_service,
                      cluster=cluster, service="missing", desiredCount=1)
    assert error.message == "Service not found."
    error = api_error(INVALID, ecs.update_service, cluster=cluster, service="api",
                      loadBalancers=[{"targetGroupArn": "t", "containerName": "web", "containerPort": 80}])
    assert error.message == "The container web did not have a container port 80 defined."
    api_error(INVALID, ecs.update_service, cluster=cluster, service="api",
              deploymentConfiguration={"maximumPercent": 50})
    api_error("ClientException", ecs.update_service, cluster=cluster, service="api",
              taskDefinition="no-such-family-anywhere")


def test_delete_service(ecs, cluster: str, family: str) -> None:
    create(ecs, cluster, family, "api", desiredCount=2)
    error = api_error(INVALID, ecs.delete_service, cluster=cluster, service="api")
    assert error.message == "The service cannot be stopped while it is scaled above 0."

    deleted = ecs.delete_service(cluster=cluster, service="api", force=True)["service"]
    assert deleted["status"] == "DRAINING"
    assert deleted["desiredCount"] == 0

    status = describe_one(ecs, cluster, "api")["status"]
    assert status in ("DRAINING", "INACTIVE")
    error = api_error("ServiceNotActiveException", ecs.update_service,
                      cluster=cluster, service="api", desiredCount=1)
    assert error.message == "Service was not ACTIVE."
    # The controller takes it from DRAINING to INACTIVE at its own pace:
    # once INACTIVE it is no longer listed, but still described.
    ecs.get_waiter("services_inactive").wait(cluster=cluster, services=["api"],
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert service_arn(cluster, "api") not in ecs.list_services(cluster=cluster)["serviceArns"]

    create(ecs, cluster, family, "scaled-down")
    ecs.update_service(cluster=cluster, service="scaled-down", desiredCount=0)
    assert ecs.delete_service(cluster=cluster, service="scaled-down")["service"]["status"] == "DRAINING"

    error = api_error("ServiceNotFoundException", ecs.delete_service, cluster=cluster, service="missing")
    assert error.message == "Service not found."


def test_services_hold_their_cluster(ecs, cluster: str, family: str) -> None:
    create(ecs, cluster, family, "a", desiredCount=0)
    create(ecs, cluster, family, "b", desiredCount=0)
    described = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert described["activeServicesCount"] == 2
    error = api_error("ClusterContainsServicesException", ecs.delete_cluster, cluster=cluster)
    assert error.message == "The Cluster cannot be deleted while Services are active."
    ecs.delete_service(cluster=cluster, service="a")
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["activeServicesCount"] == 1


def test_service_tags(ecs, cluster: str, family: str) -> None:
    arn = create(ecs, cluster, family, "api", tags=[{"key": "a", "value": "1"}])["serviceArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}])
    assert tag_set(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {("a", "1"), ("b", "2")}
    ecs.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert tag_set(describe_one(ecs, cluster, "api", include=["TAGS"])["tags"]) == {("b", "2")}
    api_error("ResourceNotFoundException", ecs.tag_resource,
              resourceArn=service_arn(cluster, "missing"), tags=[{"key": "b", "value": "2"}])


def test_service_deployments_and_revisions(ecs, cluster: str, family: str) -> None:
    first = create(ecs, cluster, family, "api")["deployments"][0]["id"]
    ecs.register_task_definition(family=family, containerDefinitions=[container("web", image="busybox:1.37")])
    second = ecs.update_service(cluster=cluster, service="api",
                                taskDefinition=f"{family}:2")["service"]["deployments"][0]["id"]
    base = f"arn:aws:ecs:{DEFAULT_REGION}:{ACCOUNT_ID}"

    def deployment_arn(deployment_id: str) -> str:
        return f"{base}:service-deployment/{cluster}/api/{deployment_number(deployment_id)}"

    def revision_arn(deployment_id: str) -> str:
        return f"{base}:service-revision/{cluster}/api/{deployment_number(deployment_id)}"

    listed = ecs.list_service_deployments(cluster=cluster, service="api")["serviceDeployments"]
    by_arn = {d["serviceDeploymentArn"]: d for d in listed}
    assert set(by_arn) == {deployment_arn(first), deployment_arn(second)}
    assert by_arn[deployment_arn(second)]["status"] == "IN_PROGRESS"
    assert by_arn[deployment_arn(second)]["targetServiceRevisionArn"] == revision_arn(second)
    assert by_arn[deployment_arn(first)]["status"] == "STOPPED"

    stopped = ecs.list_service_deployments(cluster=cluster, service="api", status=["STOPPED"])
    assert [d["serviceDeploymentArn"] for d in stopped["serviceDeployments"]] == [deployment_arn(first)]
    pages = collect_pages(ecs.list_service_deployments, "serviceDeployments",
                          cluster=cluster, service="api", maxResults=1)
    assert [len(p) for p in pages] == [1, 1]

    missing = f"{base}:service-deployment/{cluster}/api/1234567890123456789"
    described = ecs.describe_service_deployments(serviceDeploymentArns=[deployment_arn(second), missing])
    (deployment,) = described["serviceDeployments"]
    assert deployment["status"] == "IN_PROGRESS"
    assert deployment["serviceArn"] == service_arn(cluster, "api")
    assert deployment["targetServiceRevision"]["arn"] == revision_arn(second)
    assert deployment["sourceServiceRevisions"][0]["arn"] == revision_arn(first)
    assert deployment["deploymentCircuitBreaker"]["status"] == "DISABLED"
    assert described["failures"] == [{"arn": missing, "reason": "MISSING"}]

    revisions = ecs.describe_service_revisions(
        serviceRevisionArns=[revision_arn(first), revision_arn(second)])
    assert [r["taskDefinition"] for r in revisions["serviceRevisions"]] == [
        task_definition_arn(family, 1), task_definition_arn(family, 2)]
    assert revisions["serviceRevisions"][1]["containerImages"] == [
        {"containerName": "web", "image": "busybox:1.37"}]
    assert revisions["failures"] == []

    api_error("ServiceNotFoundException", ecs.list_service_deployments, cluster=cluster, service="missing")
    api_error(INVALID, ecs.describe_service_revisions, serviceRevisionArns=[revision_arn(first)] * 21)


def test_cli_create_and_describe_service(server: BerthServer, cli_home: Path) -> None:
    ecs = server.client()
    cluster = unique_name("svc-cli")
    family = unique_name("svc-cli-td")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family=family, containerDefinitions=[container("web")])
    created = server.aws(
        "ecs", "create-service",
        "--cluster", cluster,
        "--service-name", "web",
        "--task-definition", family,
        "--desired-count", "2",
        "--deployment-configuration", "maximumPercent=150,minimumHealthyPercent=50",
        "--placement-strategy", "type=spread,field=attribute:ecs.availability-zone",
        "--tags", "key=team,value=web",
        home=cli_home,
    ).json()["service"]
    assert created["serviceArn"] == service_arn(cluster, "web")
    assert created["deploymentConfiguration"]["maximumPercent"] == 150
    assert created["placementStrategy"] == [{"type": "spread", "field": "attribute:ecs.availability-zone"}]

    described = server.aws(
        "ecs", "describe-services", "--cluster", cluster, "--services", "web", "--include", "TAGS",
        home=cli_home,
    ).json()
    assert described["failures"] == []
    (service,) = described["services"]
    assert service["taskDefinition"] == task_definition_arn(family, 1)
    assert service["tags"] == [{"key": "team", "value": "web"}]
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"

    listed = server.aws("ecs", "list-services", "--cluster", cluster, home=cli_home).json()
    assert listed["serviceArns"] == [service_arn(cluster, "web")]

    failed = server.aws("ecs", "delete-service", "--cluster", cluster, "--service", "web",
                        home=cli_home, check=False)
    assert failed.returncode != 0
    assert "The service cannot be stopped while it is scaled above 0." in failed.stderr
    deleted = server.aws("ecs", "delete-service", "--cluster", cluster, "--service", "web", "--force",
                         home=cli_home).json()
    assert deleted["service"]["status"] == "DRAINING"
