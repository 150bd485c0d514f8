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


BERTH_VPC_ID = "vpc-0000000000000be47"


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
    # AWS's hosted zone of application load balancers in us-east-1; Berth's one VPC.
    assert balancer["CanonicalHostedZoneId"] == "Z35SXDOTRQ7X7K"
    assert balancer["VpcId"] == BERTH_VPC_ID

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
    # AWS's set for an ipv4 application load balancer, with its defaults.
    assert {a["Key"]: a["Value"] for a in attributes} == {
        "access_logs.s3.enabled": "false", "access_logs.s3.bucket": "",
        "access_logs.s3.prefix": "", "client_keep_alive.seconds": "3600",
        "connection_logs.s3.enabled": "false", "connection_logs.s3.bucket": "",
        "connection_logs.s3.prefix": "", "deletion_protection.enabled": "false",
        "health_check_logs.s3.enabled": "false", "health_check_logs.s3.bucket": "",
        "health_check_logs.s3.prefix": "", "idle_timeout.timeout_seconds": "60",
        "load_balancing.cross_zone.enabled": "true",
        "routing.http.desync_mitigation_mode": "defensive",
        "routing.http.drop_invalid_header_fields.enabled": "false",
        "routing.http.preserve_host_header.enabled": "false",
        "routing.http.x_amzn_tls_version_and_cipher_suite.enabled": "false",
        "routing.http.xff_client_port.enabled": "false",
        "routing.http.xff_header_processing.mode": "append",
        "routing.http2.enabled": "true", "waf.fail_open.enabled": "false",
        "zonal_shift.config.enabled": "false",
    }
    modified = elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "routing.http.desync_mitigation_mode", "Value": "strictest"},
        {"Key": "client_keep_alive.seconds", "Value": "120"},
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}])["Attributes"]
    assert {"Key": "routing.http.desync_mitigation_mode", "Value": "strictest"} in modified
    attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    assert {"Key": "client_keep_alive.seconds", "Value": "120"} in attributes
    api_error("ValidationError", elbv2.modify_load_balancer_attributes, LoadBalancerArn=arn,
              Attributes=[{"Key": "access_logs.s3.enabled", "Value": "true"}])
    api_error("ValidationError", elbv2.modify_load_balancer_attributes, LoadBalancerArn=arn,
              Attributes=[{"Key": "routing.http.xff_header_processing.mode", "Value": "keep"}])
    failure = api_error("ValidationError", elbv2.modify_load_balancer_attributes,
                        LoadBalancerArn=arn,
                        Attributes=[{"Key": "dns_record.client_routing_policy",
                                     "Value": "any_availability_zone"}])
    assert failure.message == (
        "Load balancer attribute key 'dns_record.client_routing_policy' is not recognized")
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"}])
    failure = api_error("OperationNotPermitted", elbv2.delete_load_balancer, LoadBalancerArn=arn)
    assert failure.message.startswith(
        f"Load balancer '{arn}' cannot be deleted because deletion protection is enabled")
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    elbv2.delete_load_balancer(LoadBalancerArn=arn)


def test_subnets_security_groups_and_ip_address_type(elbv2: Any) -> None:
    arn = elbv2.create_load_balancer(Name=short("sets"))["LoadBalancers"][0]["LoadBalancerArn"]
    zones = elbv2.set_subnets(LoadBalancerArn=arn, Subnets=["subnet-a", "subnet-b"])
    assert [zone["SubnetId"] for zone in zones["AvailabilityZones"]] == ["subnet-a", "subnet-b"]
    assert zones["IpAddressType"] == "ipv4"
    api_error("InvalidConfigurationRequest", elbv2.set_subnets, LoadBalancerArn=arn,
              Subnets=["subnet-a"])
    groups = elbv2.set_security_groups(LoadBalancerArn=arn, SecurityGroups=["sg-1", "sg-2"])
    assert groups["SecurityGroupIds"] == ["sg-1", "sg-2"]
    described = elbv2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]
    assert [zone["SubnetId"] for zone in described["AvailabilityZones"]] == ["subnet-a", "subnet-b"]
    assert described["SecurityGroups"] == ["sg-1", "sg-2"]
    assert elbv2.set_ip_address_type(LoadBalancerArn=arn, IpAddressType="ipv4")[
        "IpAddressType"] == "ipv4"
    api_error("ValidationError", elbv2.set_ip_address_type, LoadBalancerArn=arn,
              IpAddressType="dualstack")
    reservation = elbv2.describe_capacity_reservation(LoadBalancerArn=arn)
    assert reservation.get("CapacityReservationState", []) == []
    assert "MinimumLoadBalancerCapacity" not in reservation
    elbv2.delete_load_balancer(LoadBalancerArn=arn)
    api_error("LoadBalancerNotFound", elbv2.set_security_groups, LoadBalancerArn=arn,
              SecurityGroups=["sg-1"])


def test_ssl_policies_and_account_limits(elbv2: Any) -> None:
    policies = elbv2.describe_ssl_policies()["SslPolicies"]
    by_name = {policy["Name"]: policy for policy in policies}
    default = by_name["ELBSecurityPolicy-2016-08"]
    assert default["SslProtocols"] == ["TLSv1", "TLSv1.1", "TLSv1.2"]
    assert default["Ciphers"][0] == {"Name": "ECDHE-ECDSA-AES128-GCM-SHA256", "Priority": 1}
    tls13 = elbv2.describe_ssl_policies(Names=["ELBSecurityPolicy-TLS13-1-2-2021-06"])
    assert tls13["SslPolicies"][0]["SslProtocols"] == ["TLSv1.2", "TLSv1.3"]
    api_error("SSLPolicyNotFound", elbv2.describe_ssl_policies, Names=["ELBSecurityPolicy-Nope"])
    limits = {limit["Name"]: limit["Max"]
              for page in elbv2.get_paginator("describe_account_limits").paginate(
                  PaginationConfig={"PageSize": 4})
              for limit in page["Limits"]}
    assert len(limits) == 18
    assert limits["application-load-balancers"] == "50"
    assert limits["listeners-per-application-load-balancer"] == "50"
    assert limits["rules-per-application-load-balancer"] == "100"
    assert limits["target-groups"] == "3000"


def test_target_group_lifecycle(elbv2: Any) -> None:
    group = make_target_group(elbv2, HealthCheckPath="/health", Matcher={"HttpCode": "200-299"},
                              TargetType="ip")
    arn = group["TargetGroupArn"]
    assert group["HealthCheckPath"] == "/health"
    assert group["Matcher"] == {"HttpCode": "200-299"}
    assert group["HealthCheckEnabled"] is True
    assert group["HealthCheckIntervalSeconds"] == 30
    assert group["TargetType"] == "ip"
    assert group["VpcId"] == "vpc-berth"
    modified = elbv2.modify_target_group(TargetGroupArn=arn, HealthCheckIntervalSeconds=10)
    assert modified["TargetGroups"][0]["HealthCheckIntervalSeconds"] == 10
    failure = api_error("ValidationError", elbv2.modify_target_group, TargetGroupArn=arn,
                        HealthCheckTimeoutSeconds=20)
    assert failure.message == "Health check interval must be greater than the timeout."
    elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "stickiness.enabled", "Value": "true"},
        {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"}])
    attributes = elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    assert {"Key": "stickiness.enabled", "Value": "true"} in attributes
    # AWS's full set for an instance or ip target group.
    assert {a["Key"] for a in attributes} == {
        "deregistration_delay.timeout_seconds", "load_balancing.algorithm.anomaly_mitigation",
        "load_balancing.algorithm.type", "load_balancing.cross_zone.enabled",
        "slow_start.duration_seconds", "stickiness.app_cookie.cookie_name",
        "stickiness.app_cookie.duration_seconds", "stickiness.enabled",
        "stickiness.lb_cookie.duration_seconds", "stickiness.type",
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage"}
    # app_cookie stickiness needs its cookie's name.
    api_error("ValidationError", elbv2.modify_target_group_attributes, TargetGroupArn=arn,
              Attributes=[{"Key": "stickiness.type", "Value": "app_cookie"}])
    elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "stickiness.type", "Value": "app_cookie"},
        {"Key": "stickiness.app_cookie.cookie_name", "Value": "SESSION"},
        {"Key": "load_balancing.cross_zone.enabled", "Value": "false"},
        {"Key": "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
         "Value": "50"}])
    attributes = elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
    assert {"Key": "stickiness.app_cookie.cookie_name", "Value": "SESSION"} in attributes
    failure = api_error("ValidationError", elbv2.modify_target_group_attributes,
                        TargetGroupArn=arn,
                        Attributes=[{"Key": "stickiness.type", "Value": "cookie"}])
    assert failure.message == "'Stickiness type' must be one of [app_cookie, lb_cookie, source_ip]"
    api_error("ValidationError", elbv2.modify_target_group_attributes, TargetGroupArn=arn,
              Attributes=[{"Key": "stickiness.app_cookie.cookie_name", "Value": "AWSALBAPP-1"}])
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


def test_target_group_names_and_vpc(elbv2: Any) -> None:
    failure = api_error("ValidationError", elbv2.create_target_group, Name="-edge",
                        Protocol="HTTP", Port=80)
    assert failure.message == "Target group name '-edge' cannot begin or end with '-'"
    failure = api_error("ValidationError", elbv2.create_target_group, Name="a_b",
                        Protocol="HTTP", Port=80)
    assert failure.message == ("Target group name 'a_b' can only contain characters that are "
                               "alphanumeric characters or hyphens(-)")
    failure = api_error("ValidationError", elbv2.create_target_group, Name="x" * 33,
                        Protocol="HTTP", Port=80)
    assert failure.message == f"Target group name '{'x' * 33}' cannot be longer than '32' characters"
    group = elbv2.create_target_group(Name=short("novpc"), Protocol="HTTP", Port=80)
    assert group["TargetGroups"][0]["VpcId"] == BERTH_VPC_ID


def test_listener_protocol_attributes_and_certificates(elbv2: Any) -> None:
    lb = elbv2.create_load_balancer(Name=short("lsa"))["LoadBalancers"][0]["LoadBalancerArn"]
    fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]
    failure = api_error("ValidationError", elbv2.create_listener, LoadBalancerArn=lb, Port=80,
                        DefaultActions=fixed)
    assert failure.message == "A protocol must be specified"
    failure = api_error("ValidationError", elbv2.create_listener, LoadBalancerArn=lb, Port=80,
                        Protocol="TCP", DefaultActions=fixed)
    assert failure.message == "Listener protocol 'TCP' must be one of 'HTTPS, HTTP'"
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                     DefaultActions=fixed)["Listeners"][0]["ListenerArn"]
    attributes = elbv2.describe_listener_attributes(ListenerArn=listener)["Attributes"]
    assert attributes == [{"Key": "routing.http.response.server.enabled", "Value": "true"}]
    elbv2.modify_listener_attributes(ListenerArn=listener, Attributes=[
        {"Key": "routing.http.response.server.enabled", "Value": "false"}])
    attributes = elbv2.describe_listener_attributes(ListenerArn=listener)["Attributes"]
    assert attributes == [{"Key": "routing.http.response.server.enabled", "Value": "false"}]
    failure = api_error("ValidationError", elbv2.modify_listener_attributes, ListenerArn=listener,
                        Attributes=[{"Key": "tcp.idle_timeout.seconds", "Value": "350"}])
    assert failure.message == "Listener attribute key 'tcp.idle_timeout.seconds' is not recognized"
    assert elbv2.describe_listener_certificates(ListenerArn=listener)["Certificates"] == []
    certificate = [{"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/x"}]
    api_error("ValidationError", elbv2.add_listener_certificates, ListenerArn=listener,
              Certificates=certificate)
    missing = listener + "0"
    api_error("ListenerNotFound", elbv2.describe_listener_attributes, ListenerArn=missing)
    api_error("ListenerNotFound", elbv2.modify_listener_attributes, ListenerArn=missing,
              Attributes=[{"Key": "routing.http.response.server.enabled", "Value": "true"}])
    api_error("ListenerNotFound", elbv2.describe_listener_certificates, ListenerArn=missing)
    api_error("ListenerNotFound", elbv2.add_listener_certificates, ListenerArn=missing,
              Certificates=certificate)
    api_error("ListenerNotFound", elbv2.remove_listener_certificates, ListenerArn=missing,
              Certificates=certificate)


def test_actions_berth_does_not_implement_are_invalid(elbv2: Any) -> None:
    failure = api_error("InvalidAction", elbv2.describe_trust_stores)
    assert failure.status == 400
    assert failure.message.startswith(
        "The action DescribeTrustStores is not valid for this web service. ")


def test_aws_cli_target_groups(server: BerthServer, cli_home: Path) -> None:
    name = short("cli")
    created = server.aws("elbv2", "create-target-group", "--name", name, "--protocol", "HTTP",
                         "--port", "80", "--target-type", "ip", "--vpc-id", "vpc-1",
                         home=cli_home).json()
    arn = created["TargetGroups"][0]["TargetGroupArn"]
    described = server.aws("elbv2", "describe-target-groups", "--names", name, home=cli_home).json()
    assert described["TargetGroups"][0]["TargetGroupArn"] == arn
    assert described["TargetGroups"][0]["Port"] == 80
    policies = server.aws("elbv2", "describe-ssl-policies", "--names",
                          "ELBSecurityPolicy-TLS13-1-3-2021-06", home=cli_home).json()
    assert policies["SslPolicies"][0]["SslProtocols"] == ["TLSv1.3"]
    missing = server.aws("elbv2", "describe-target-groups", "--names", short("nope"),
                         home=cli_home, check=False)
    assert missing.returncode != 0
    assert "TargetGroupNotFound" in missing.stderr
