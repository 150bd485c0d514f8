"""Services behind a load balancer on real Docker (`berth up`, boto3 and the AWS CLI).

Each task of a service with `loadBalancers` is registered in its target group once
RUNNING, deregistered and drained (DEACTIVATING) before its containers stop, counts
as healthy for deployments only when its target is, and is replaced when its target
turns unhealthy. A client sending requests all the while through the load balancer
sees no failed request during a rolling deployment, a scale-in and the replacement
of a killed task.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from typing import Any

import pytest

import test_tasks_docker
from berth_harness import unique_name
from test_load_balancer_traffic import free_port
from test_services_docker import messages, service, service_tasks, wait_until
from test_tasks_docker import BerthNode, docker

image = test_tasks_docker.image
node = test_tasks_docker.node

STABLE = {"Delay": 1, "MaxAttempts": 180}


@pytest.fixture
def ecs(node: BerthNode) -> Any:
    return node.client()


@pytest.fixture
def elbv2(node: BerthNode) -> Any:
    return node.client(service="elbv2")


def web_definition(ecs: Any, family: str, revision: str) -> str:
    """busybox httpd on container port 8080 (dynamic host port) answering `rev-<revision>`."""
    script = (
        f"mkdir -p /www && echo rev-{revision} > /www/index.html && echo ok > /www/health "
        "&& exec httpd -f -p 8080 -h /www"
    )
    response = ecs.register_task_definition(
        family=family,
        containerDefinitions=[{
            "name": "web",
            "image": test_tasks_docker.IMAGE,
            "memory": 32,
            "command": ["sh", "-c", script],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
            "stopTimeout": 2,
        }],
    )
    return response["taskDefinition"]["taskDefinitionArn"]


def load_balanced_group(elbv2: Any, name: str, health_path: str = "/") -> tuple[str, int, str]:
    """A target group (type instance) behind a new load balancer's listener:
    (target group ARN, listener port, load balancer ARN)."""
    group = elbv2.create_target_group(
        Name=name, Protocol="HTTP", Port=8080, VpcId="vpc-berth", TargetType="instance",
        HealthCheckPath=health_path, HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=group,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "3"}],
    )
    balancer = elbv2.create_load_balancer(Name=name, Type="application")["LoadBalancers"][0]
    port = free_port()
    elbv2.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    return group, port, balancer["LoadBalancerArn"]


def healthy_ports(elbv2: Any, group: str) -> set[int]:
    described = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    return {d["Target"]["Port"] for d in described if d["TargetHealth"]["State"] == "healthy"}


def task_ports(tasks: list[dict[str, Any]]) -> set[int]:
    return {b["hostPort"] for t in tasks for c in t["containers"] for b in c.get("networkBindings", [])}


def stable(ecs: Any, name: str) -> None:
    """The services-stable waiter (runningCount == desiredCount), then the
    deployment COMPLETED: with a load balancer that needs healthy targets."""
    ecs.get_waiter("services_stable").wait(cluster="default", services=[name], WaiterConfig=STABLE)
    wait_until(
        f"{name} deployment completed",
        lambda: service(ecs, name)["deployments"][0]["rolloutState"] == "COMPLETED",
        timeout_s=180,
    )


class Client(threading.Thread):
    """Sends GET / through the load balancer without pause, over keep-alive
    connections, and counts answers and failures."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stopping = threading.Event()
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        # What the test is doing meanwhile, named in each failure.
        self.phase = "start"

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stopping.is_set():
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read().decode().strip()
                if response.status != 200:
                    self.failures.append(f"{self.phase}: {response.status} {body[:40]}")
                else:
                    self.answers[body] += 1
            except (OSError, http.client.HTTPException) as err:
                self.failures.append(f"{self.phase}: {err!r}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            time.sleep(0.005)
        connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def test_a_service_behind_a_load_balancer_loses_no_request(
    node: BerthNode, ecs: Any, elbv2: Any, tmp_path: Any
) -> None:
    name = unique_name("lb")
    first = web_definition(ecs, name, "1")
    second = web_definition(ecs, name, "2")
    group, port, balancer = load_balanced_group(elbv2, name)
    # Created with the AWS CLI's shorthand, as users write it.
    node.aws(
        "ecs", "create-service", "--cluster", "default", "--service-name", name,
        "--task-definition", first, "--desired-count", "2",
        "--health-check-grace-period-seconds", "30",
        "--load-balancers", f"targetGroupArn={group},containerName=web,containerPort=8080",
        home=tmp_path,
    )
    described = service(ecs, name)
    assert described["loadBalancers"] == [
        {"targetGroupArn": group, "containerName": "web", "containerPort": 8080}
    ]
    stable(ecs, name)
    # Steady means the targets are healthy: deployments wait for them.
    tasks = service_tasks(ecs, name)
    assert healthy_ports(elbv2, group) == task_ports(tasks) and len(tasks) == 2
    events = messages(ecs, name)
    registered = [m for m in events if m.startswith(f"(service {name}) registered ")]
    assert registered and all(m.endswith(f"targets in (target-group {group})") for m in registered)
    instance_ids = {
        d["Target"]["Id"]
        for d in elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    }
    assert len(instance_ids) == 1 and next(iter(instance_ids)).startswith("i-")

    client = Client(port)
    client.start()
    try:
        wait_until("traffic flows", lambda: client.answers["rev-1"] > 20)

        # A rolling deployment: the old tasks drain (DEACTIVATING) before they stop
        # (the controller's tests in crates/api/src/service_targets.rs pin each step).
        client.phase = "rolling deployment"
        ecs.update_service(cluster="default", service=name, taskDefinition=second)
        saw_deactivating = False
        deadline = time.monotonic() + 180
        while True:
            stopping = service_tasks(ecs, name, desired="STOPPED")
            saw_deactivating |= any(t["lastStatus"] == "DEACTIVATING" for t in stopping)
            current = service(ecs, name)
            if (len(current["deployments"]) == 1 and current["deployments"][0]["taskDefinition"] == second
                    and current["deployments"][0]["rolloutState"] == "COMPLETED" and current["runningCount"] == 2):
                break
            assert time.monotonic() < deadline, current
            time.sleep(0.2)
        # DEACTIVATING lasts only while requests are in flight on the old
        # targets (draining ends when none is, as on ALB), so it may pass
        # between two samples; the draining event says the tasks went through it.
        print(f"saw a DEACTIVATING task: {saw_deactivating}")
        wait_until("rev-2 answers", lambda: client.answers["rev-2"] > 20)
        drained = [m for m in messages(ecs, name) if "has begun draining connections on" in m]
        assert drained, messages(ecs, name)
        assert any(m.startswith(f"(service {name}) deregistered ") for m in messages(ecs, name))
        old = [t for t in service_tasks(ecs, name, desired="STOPPED") if t["taskDefinitionArn"] == first]
        assert old and all(t["stopCode"] == "ServiceSchedulerInitiated" for t in old)

        # Scale-in: one task leaves through draining.
        client.phase = "scale-in"
        ecs.update_service(cluster="default", service=name, desiredCount=1)
        wait_until("one target", lambda: len(healthy_ports(elbv2, group)) == 1 and service(ecs, name)["runningCount"] == 1)
        stable(ecs, name)

        # Back to two, then a killed task is replaced.
        client.phase = "scale-out"
        ecs.update_service(cluster="default", service=name, desiredCount=2)
        wait_until("two healthy targets", lambda: len(healthy_ports(elbv2, group)) == 2)
        stable(ecs, name)
        victim = service_tasks(ecs, name)[0]
        client.phase = "killed task"
        docker("kill", victim["containers"][0]["runtimeId"])
        wait_until(
            "the killed task replaced",
            lambda: victim["taskArn"] not in {t["taskArn"] for t in service_tasks(ecs, name)}
            and len(healthy_ports(elbv2, group)) == 2
            and healthy_ports(elbv2, group) == task_ports(service_tasks(ecs, name)),
            timeout_s=180,
        )
        time.sleep(1)
    finally:
        client.stop()
    total = sum(client.answers.values())
    print(f"requests through the load balancer: {total} answered, {len(client.failures)} failed")
    assert total > 200
    assert client.failures == [], client.failures[:10]

    # Deleting the service deregisters everything.
    ecs.update_service(cluster="default", service=name, desiredCount=0)
    ecs.delete_service(cluster="default", service=name)
    wait_until("INACTIVE", lambda: service(ecs, name)["status"] == "INACTIVE")
    wait_until(
        "no targets",
        lambda: elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"] == [],
    )
    elbv2.delete_load_balancer(LoadBalancerArn=balancer)


def test_a_task_whose_target_is_unhealthy_is_replaced_after_the_grace_period(
    ecs: Any, elbv2: Any
) -> None:
    name = unique_name("lbsick")
    definition = web_definition(ecs, name, "1")
    group, _, balancer = load_balanced_group(elbv2, name, health_path="/missing")
    ecs.create_service(
        cluster="default", serviceName=name, taskDefinition=definition, desiredCount=1,
        healthCheckGracePeriodSeconds=5,
        loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 8080}],
    )
    first = wait_until("a task", lambda: service_tasks(ecs, name))[0]
    stopped = wait_until(
        "the unhealthy task stopped",
        lambda: [t for t in service_tasks(ecs, name, desired="STOPPED") if t["taskArn"] == first["taskArn"]
                 and t["lastStatus"] == "STOPPED"],
        timeout_s=120,
    )[0]
    assert stopped["stoppedReason"] == f"Task failed ELB health checks in (target-group {group})"
    events = messages(ecs, name)
    assert any(
        f"is unhealthy in (target-group {group}) due to (reason Health checks failed with these codes: [404])."
        in m for m in events
    ), events
    wait_until("a replacement", lambda: service_tasks(ecs, name))
    ecs.update_service(cluster="default", service=name, desiredCount=0)
    ecs.delete_service(cluster="default", service=name)
    wait_until("INACTIVE", lambda: service(ecs, name)["status"] == "INACTIVE", timeout_s=120)
    elbv2.delete_load_balancer(LoadBalancerArn=balancer)


def test_load_balancers_are_checked_like_ecs_checks_them(ecs: Any, elbv2: Any) -> None:
    name = unique_name("lbcheck")
    definition = web_definition(ecs, name, "1")
    group, _, balancer = load_balanced_group(elbv2, name)
    lonely = elbv2.create_target_group(
        Name=f"{name}-x", Protocol="HTTP", Port=8080, VpcId="vpc-berth", TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    by_ip = elbv2.create_target_group(
        Name=f"{name}-ip", Protocol="HTTP", Port=8080, VpcId="vpc-berth", TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]

    def refused(load_balancer: dict[str, Any]) -> str:
        with pytest.raises(ecs.exceptions.InvalidParameterException) as raised:
            ecs.create_service(cluster="default", serviceName=name, taskDefinition=definition,
                               desiredCount=1, loadBalancers=[load_balancer])
        return raised.value.response["Error"]["Message"]

    good = {"targetGroupArn": group, "containerName": "web", "containerPort": 8080}
    assert refused({**good, "targetGroupArn": lonely}) == (
        f"The target group with targetGroupArn {lonely} does not have an associated load balancer."
    )
    assert refused({**good, "containerName": "api"}) == "The container api does not exist in the task definition."
    assert refused({**good, "containerPort": 9090}) == "The container web did not have a container port 9090 defined."
    assert "has target type ip" in refused({**good, "targetGroupArn": by_ip})
    # Nothing was created by the refused calls.
    assert ecs.describe_services(cluster="default", services=[name])["failures"][0]["reason"] == "MISSING"

    ecs.create_service(cluster="default", serviceName=name, taskDefinition=definition, desiredCount=0,
                       loadBalancers=[good], role="ecsServiceRole")
    created = service(ecs, name)
    assert created["loadBalancers"] == [good]
    assert created["roleArn"].endswith(":role/ecsServiceRole")
    # Changing the load balancers starts a new deployment, as on ECS.
    before = created["deployments"][0]["id"]
    ecs.update_service(cluster="default", service=name, loadBalancers=[])
    updated = service(ecs, name)
    assert updated["loadBalancers"] == [] and updated["deployments"][0]["id"] != before
    ecs.delete_service(cluster="default", service=name)
    elbv2.delete_load_balancer(LoadBalancerArn=balancer)
    for arn in (group, lonely, by_ip):
        wait_until("target group deletable", lambda arn=arn: _deleted(elbv2, arn))


def _deleted(elbv2: Any, arn: str) -> bool:
    try:
        elbv2.delete_target_group(TargetGroupArn=arn)
        return True
    except elbv2.exceptions.ResourceInUseException:
        return False


def test_the_agent_reports_the_address_load_balancers_reach(ecs: Any) -> None:
    arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    instance = ecs.describe_container_instances(cluster="default", containerInstances=arns)["containerInstances"][0]
    attributes = {a["name"]: a.get("value") for a in instance["attributes"]}
    assert attributes["berth.host-address"] == "127.0.0.1", json.dumps(attributes)
