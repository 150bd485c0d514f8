"""Traffic through Berth's Application Load Balancer, set up with boto3's `elbv2`
client only: an `ip` target group whose targets are HTTP servers on this machine,
a load balancer and an HTTP listener forwarding to the group; requests to
http://<DNSName>:<port>/ reach the targets, DescribeTargetHealth reports what
the data plane's health checks saw, and a deregistered target drains."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest

from berth_harness import Backend, BerthServer, unique_name

HEALTH_CHECK_INTERVAL_S = 5
# How long a backend takes to answer GET /slow.
# Two passing checks make a target healthy, two failing ones unhealthy.
STATE_CHANGE_TIMEOUT_S = 3 * HEALTH_CHECK_INTERVAL_S + 5
REQUESTS = 20


@pytest.fixture(scope="module")
def elbv2(server: BerthServer) -> Any:
    return server.client(service="elbv2")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def health_by_port(elbv2: Any, target_group_arn: str) -> dict[int, dict[str, Any]]:
    described = elbv2.describe_target_health(TargetGroupArn=target_group_arn)
    return {
        description["Target"]["Port"]: description["TargetHealth"]
        for description in described["TargetHealthDescriptions"]
    }


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.25)


def answers(url: str, count: int) -> Counter[str]:
    """Which backend answered each of `count` GETs of `url` (status: body)."""
    seen: Counter[str] = Counter()
    for _ in range(count):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                seen[f"{response.status}: {response.read().decode()}"] += 1
        except urllib.error.HTTPError as err:
            seen[f"{err.code}: {err.read().decode()}"] += 1
        except urllib.error.URLError as err:
            # The listener is not bound yet.
            seen[f"unreachable: {err.reason}"] += 1
    return seen


def test_traffic_reaches_healthy_registered_targets(
    server: BerthServer, elbv2: Any, backends: tuple[Backend, Backend], cli_home: Path
) -> None:
    a, b = backends
    group = elbv2.create_target_group(
        Name=unique_name("tg")[:32], Protocol="HTTP", Port=80, VpcId="vpc-berth",
        TargetType="ip", HealthCheckPath="/",
        HealthCheckIntervalSeconds=HEALTH_CHECK_INTERVAL_S, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]
    group_arn = group["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group_arn, Targets=[a.target(), b.target()])
    load_balancer = elbv2.create_load_balancer(Name=unique_name("lb")[:32])["LoadBalancers"][0]
    port = free_port()
    elbv2.create_listener(
        LoadBalancerArn=load_balancer["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )
    url = f"http://{load_balancer['DNSName']}:{port}/"

    # The data plane picks the listener up within moments (until then no check has run).
    first = wait_for(
        "the data plane to check the targets",
        lambda: (health := health_by_port(elbv2, group_arn))
        and all(h["State"] != "unavailable" for h in health.values()) and health,
        3,
    )
    assert {health["State"] for health in first.values()} <= {"initial", "healthy"}, first
    wait_for(
        "both targets healthy",
        lambda: all(health["State"] == "healthy"
                    for health in health_by_port(elbv2, group_arn).values()),
        STATE_CHANGE_TIMEOUT_S,
    )
    described = server.aws("elbv2", "describe-target-health", "--target-group-arn", group_arn,
                           home=cli_home).json()
    assert sorted(
        (d["Target"]["Id"], d["Target"]["Port"], d["TargetHealth"]["State"])
        for d in described["TargetHealthDescriptions"]
    ) == sorted([("127.0.0.1", a.port, "healthy"), ("127.0.0.1", b.port, "healthy")])

    seen = answers(url, REQUESTS)
    assert set(seen) == {"200: backend-a", "200: backend-b"}, seen

    # A deregistered target gets no new requests.
    elbv2.deregister_targets(TargetGroupArn=group_arn, Targets=[a.target()])
    wait_for("traffic to leave backend-a", lambda: answers(url, 2) == {"200: backend-b": 2}, 5)
    assert answers(url, REQUESTS) == {"200: backend-b": REQUESTS}
    assert health_by_port(elbv2, group_arn)[b.port]["State"] == "healthy"

    # A target answering 500 to its health checks turns unhealthy.
    b.failing = True
    unhealthy = wait_for(
        "backend-b unhealthy",
        lambda: (health := health_by_port(elbv2, group_arn)[b.port])["State"] == "unhealthy"
        and health,
        STATE_CHANGE_TIMEOUT_S,
    )
    assert unhealthy["Reason"] == "Target.ResponseCodeMismatch", unhealthy
    assert "500" in unhealthy.get("Description", ""), unhealthy


def test_a_deregistered_target_drains_its_requests(
    elbv2: Any, backends: tuple[Backend, Backend]
) -> None:
    a, _ = backends
    group_arn = elbv2.create_target_group(
        Name=unique_name("tg")[:32], Protocol="HTTP", Port=80, VpcId="vpc-berth",
        TargetType="ip", HealthCheckIntervalSeconds=HEALTH_CHECK_INTERVAL_S,
        HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(TargetGroupArn=group_arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "60"}])
    elbv2.register_targets(TargetGroupArn=group_arn, Targets=[a.target()])
    load_balancer = elbv2.create_load_balancer(Name=unique_name("lb")[:32])["LoadBalancers"][0]
    port = free_port()
    elbv2.create_listener(
        LoadBalancerArn=load_balancer["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )
    url = f"http://{load_balancer['DNSName']}:{port}/"
    wait_for("traffic to reach backend-a", lambda: answers(url, 1) == {"200: backend-a": 1}, 5)

    # A request in flight keeps the deregistered target draining until it is answered.
    slow: Counter[str] = Counter()
    request = threading.Thread(target=lambda: slow.update(answers(url + "slow", 1)))
    request.start()
    time.sleep(0.5)
    elbv2.deregister_targets(TargetGroupArn=group_arn, Targets=[a.target()])
    draining = wait_for(
        "backend-a draining",
        lambda: (health := health_by_port(elbv2, group_arn).get(a.port))
        and health["State"] == "draining" and health,
        Backend.SLOW_REQUEST_S - 1,
    )
    assert draining["Reason"] == "Target.DeregistrationInProgress", draining
    asked = elbv2.describe_target_health(TargetGroupArn=group_arn, Targets=[a.target()])
    assert asked["TargetHealthDescriptions"][0]["TargetHealth"]["State"] == "draining", asked
    request.join()
    assert slow == {"200: backend-a": 1}
    # Answered: the deregistration completes.
    wait_for("backend-a gone", lambda: a.port not in health_by_port(elbv2, group_arn), 5)
    gone = elbv2.describe_target_health(TargetGroupArn=group_arn, Targets=[a.target()])
    assert gone["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"] == "Target.NotRegistered"
