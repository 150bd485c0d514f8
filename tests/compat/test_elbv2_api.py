"""ELBv2 (API version 2015-12-01, query protocol) through boto3's `elbv2` client
and the AWS CLI: load balancers, target groups, listeners, targets, tags,
validation in AWS's wording, and actions Berth does not implement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config

from berth_harness import BerthServer, api_error, unique_name


@pytest.fixture(scope="module")
def elbv2(server: BerthServer) -> Any:
    return server.client(service="elbv2")


@pytest.fixture(scope="module")
def unvalidated(server: BerthServer) -> Any:
    """A client that sends what botocore's own parameter validation would refuse."""
    access_key, secret_key = server.credentials()
    session = boto3.session.Session(botocore_session=botocore.session.get_session())
    return session.client(
        "elbv2",
        region_name="us-east-1",
        endpoint_url=server.endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"},
                      parameter_validation=False),
    )


def short(prefix: str) -> str:
    return unique_name(prefix)[:32]


def make_target_group(elbv2: Any, **extra: Any) -> dict[str, Any]:
    arguments = {"Name": short("tg"), "Protocol": "HTTP", "Port": 8080, "VpcId": "vpc-berth"}
    arguments.update(extra)
    return elbv2.create_target_group(**arguments)["TargetGroups"][0]


def test_load_balancer_lifecycle(elbv2: Any) -> None:
    name = short("lb")
    created = elbv2.create_load_balancer(Name=name, Subnets=["subnet-a", "subnet-b"],
                                         SecurityGroups=["sg-1"], Scheme="internal",
                                         Tags=[{"Key": "team", "Value": "blue"}])
    balancer = created["LoadBalancers"][0]
    arn = balancer["LoadBalancerArn"]
    assert arn.startswith(f"arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/{name}/")
    assert balancer["DNSName"] == "127.0.0.1"
    assert balancer["State"] == {"Code": "active"}
    assert balancer["Type"] == "application"
    assert balancer["Scheme"] == "internal"
    assert [zone["SubnetId"] for zone in balancer["AvailabilityZones"]] == ["subnet-a", "subnet-b"]
    assert balancer["SecurityGroups"] == ["sg-1"]
    assert balancer["CreatedTime"].year >= 2024

    described = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
    assert [lb["LoadBalancerArn"] for lb in described] == [arn]
    tags = elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
    assert tags == [{"Key": "team", "Value": "blue"}]
    api_error("DuplicateLoadBalancerName", elbv2.create_load_balancer, Name=name)

    elbv2.delete_load_balancer(LoadBalancerArn=arn)
    failure = api_error("LoadBalancerNotFound", elbv2.describe_load_balancers, Names=[name])
    assert failure.status == 400


def test_describe_load_balancers_pages_with_the_paginator(elbv2: Any) -> None:
    names = sorted(short("page") for _ in range(3))
    for name in names:
        elbv2.create_load_balancer(Name=name)
    seen = []
    for page in elbv2.get_paginator("describe_load_balancers").paginate(PaginationConfig={"PageSize": 1}):
        seen += [lb["LoadBalancerName"] for lb in page["LoadBalancers"]]
    assert [name for name in seen if name in names] == names


def test_load_balancer_attributes(elbv2: Any) -> None:
    arn = elbv2.create_load_balancer(Name=short("attrs"))["LoadBalancers"][0]["LoadBalancerArn"]
    attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "60"} in attributes
    api_error("ValidationError", elbv2.modify_load_balancer_attributes, LoadBalancerArn=arn,
              Attributes=[{"Key": "access_logs.s3.enabled", "Value": "true"}])
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"}])
    api_error("OperationNotPermitted", elbv2.delete_load_balancer, LoadBalancerArn=arn)


def test_target_group_lifecycle(elbv2: Any) -> None:
    group = make_target_group(elbv2, HealthCheckPath="/health", Matcher={"HttpCode": "200-299"},
                              TargetType="ip")
    arn = group["TargetGroupArn"]
    assert group["HealthCheckPath"] == "/health"
    assert group["Matcher"] == {"HttpCode": "200-299"}
    assert group["HealthCheckEnabled"] is True
    assert group["HealthCheckIntervalSeconds"] == 30
    assert group["TargetType"] == "ip"
    modified = elbv2.modify_target_group(TargetGroupArn=arn, HealthCheckIntervalSeconds=10)
    assert modified["TargetGroups"][0]["HealthCheckIntervalSeconds"] == 10
    api_error("InvalidConfigurationRequest", elbv2.modify_target_group, TargetGroupArn=arn,
              HealthCheckTimeoutSeconds=20)
    elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "stickiness.enabled", "Value": "true"},
        {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"}])
    attributes = elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    assert {"Key": "stickiness.enabled", "Value": "true"} in attributes
    api_error("ValidationError", elbv2.modify_target_group_attributes, TargetGroupArn=arn,
              Attributes=[{"Key": "stickiness.type", "Value": "app_cookie"}])
    elbv2.delete_target_group(TargetGroupArn=arn)
    api_error("TargetGroupNotFound", elbv2.describe_target_groups, TargetGroupArns=[arn])


def test_listener_forwards_and_protects_its_target_group(elbv2: Any) -> None:
    lb = elbv2.create_load_balancer(Name=short("lsn"))["LoadBalancers"][0]["LoadBalancerArn"]
    group = make_target_group(elbv2)["TargetGroupArn"]
    listener = elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])["Listeners"][0]
    assert listener["Port"] == 80
    assert listener["DefaultActions"][0]["TargetGroupArn"] == group
    assert elbv2.describe_target_groups(LoadBalancerArn=lb)["TargetGroups"][0]["LoadBalancerArns"] == [lb]
    api_error("ResourceInUse", elbv2.delete_target_group, TargetGroupArn=group)
    api_error("DuplicateListener", elbv2.create_listener, LoadBalancerArn=lb, Protocol="HTTP", Port=80,
              DefaultActions=[{"Type": "fixed-response",
                               "FixedResponseConfig": {"StatusCode": "503"}}])
    modified = elbv2.modify_listener(
        ListenerArn=listener["ListenerArn"],
        DefaultActions=[{"Type": "redirect", "RedirectConfig": {
            "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}])["Listeners"][0]
    assert modified["DefaultActions"][0]["RedirectConfig"]["StatusCode"] == "HTTP_301"
    elbv2.delete_target_group(TargetGroupArn=group)
    listed = elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]
    assert [item["ListenerArn"] for item in listed] == [listener["ListenerArn"]]
    elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    api_error("ListenerNotFound", elbv2.describe_listeners, ListenerArns=[listener["ListenerArn"]])


def test_targets_and_their_health(elbv2: Any) -> None:
    group = make_target_group(elbv2, TargetType="ip")["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": "10.1.0.1"}, {"Id": "10.1.0.2", "Port": 81}])
    health = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    assert sorted((d["Target"]["Id"], d["Target"]["Port"], d["TargetHealth"]["State"]) for d in health) == [
        ("10.1.0.1", 8080, "unused"), ("10.1.0.2", 81, "unused")]
    api_error("InvalidTarget", elbv2.register_targets, TargetGroupArn=group, Targets=[{"Id": "i-0123"}])
    elbv2.deregister_targets(TargetGroupArn=group, Targets=[{"Id": "10.1.0.2", "Port": 81}])
    health = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    assert [d["Target"]["Id"] for d in health] == ["10.1.0.1"]


def test_tags(elbv2: Any) -> None:
    group = make_target_group(elbv2)["TargetGroupArn"]
    elbv2.add_tags(ResourceArns=[group], Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    elbv2.remove_tags(ResourceArns=[group], TagKeys=["a"])
    described = elbv2.describe_tags(ResourceArns=[group])["TagDescriptions"]
    assert described == [{"ResourceArn": group, "Tags": [{"Key": "b", "Value": "2"}]}]
    api_error("TooManyTags", elbv2.add_tags, ResourceArns=[group],
              Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])


def test_validation_errors_use_aws_wording(unvalidated: Any) -> None:
    failure = api_error("ValidationError", unvalidated.create_target_group, Protocol="HTTP")
    assert failure.message == (
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: "
        "Member must not be null")
    assert failure.status == 400
    failure = api_error("ValidationError", unvalidated.create_load_balancer, Name="x", Type="bogus")
    assert "Member must satisfy enum value set: [application, network, gateway]" in failure.message


def test_actions_berth_does_not_implement_are_invalid(elbv2: Any) -> None:
    failure = api_error("InvalidAction", elbv2.describe_ssl_policies)
    assert failure.status == 400


def test_aws_cli_target_groups(server: BerthServer, cli_home: Path) -> None:
    name = short("cli")
    created = server.aws("elbv2", "create-target-group", "--name", name, "--protocol", "HTTP",
                         "--port", "80", "--target-type", "ip", "--vpc-id", "vpc-1",
                         home=cli_home).json()
    arn = created["TargetGroups"][0]["TargetGroupArn"]
    described = server.aws("elbv2", "describe-target-groups", "--names", name, home=cli_home).json()
    assert described["TargetGroups"][0]["TargetGroupArn"] == arn
    assert described["TargetGroups"][0]["Port"] == 80
    missing = server.aws("elbv2", "describe-target-groups", "--names", short("nope"),
                         home=cli_home, check=False)
    assert missing.returncode != 0
    assert "TargetGroupNotFound" in missing.stderr
