"""Application Auto Scaling on real Docker (`berth up`, boto3): ECS services scale by
themselves.

One test drives three services at once, so their waits overlap:
- a web service behind the load balancer with ALBRequestCountPerTarget target tracking:
  a load step scales it out within seconds, no request fails while it does, and when the
  load stops it scales back in to its minimum after the AlarmLow window;
- a CPU-burning service with ECSServiceAverageCPUUtilization target tracking scales out;
- a scheduled action (`at()`) raises a service's minimum capacity, and the desired count
  with it.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import http.client
from typing import Any, Callable

import pytest

import test_tasks_docker
from berth_harness import unique_name
from test_services_load_balancer import healthy_ports, load_balanced_group, web_definition
from test_tasks_docker import BerthNode, container

image = test_tasks_docker.image
node = test_tasks_docker.node


def wait_until(what: str, check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.25)


def desired_count(ecs: Any, name: str) -> int:
    return ecs.describe_services(cluster="default", services=[name])["services"][0]["desiredCount"]


def resource_id(name: str) -> str:
    return f"service/default/{name}"


def register_target(autoscaling: Any, name: str, low: int, high: int) -> None:
    autoscaling.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=resource_id(name),
        ScalableDimension="ecs:service:DesiredCount", MinCapacity=low, MaxCapacity=high)


def activities(autoscaling: Any, name: str) -> list[dict[str, Any]]:
    return autoscaling.describe_scaling_activities(
        ServiceNamespace="ecs", ResourceId=resource_id(name),
        ScalableDimension="ecs:service:DesiredCount")["ScalingActivities"]


class Load(threading.Thread):
    """GET / through the load balancer at a fixed rate, counting failures."""

    def __init__(self, port: int, rate_per_s: float) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.interval_s = 1.0 / rate_per_s
        self.stopping = threading.Event()
        self.answers = 0
        self.failures: list[str] = []

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        next_at = time.monotonic()
        while not self.stopping.is_set():
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    self.answers += 1
                else:
                    self.failures.append(str(response.status))
            except (OSError, http.client.HTTPException) as err:
                self.failures.append(repr(err))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            next_at += self.interval_s
            time.sleep(max(0.0, next_at - time.monotonic()))
        connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def service_events(ecs: Any, name: str) -> list[str]:
    return [e["message"] for e in ecs.describe_services(cluster="default", services=[name])["services"][0]["events"]]


def test_services_scale_on_requests_cpu_and_schedules(node: BerthNode) -> None:
    ecs = node.client()
    elbv2 = node.client(service="elbv2")
    autoscaling = node.client(service="application-autoscaling")
    cloudwatch = node.client(service="cloudwatch")

    # The web service behind the load balancer, tracking 300 requests per target per minute.
    web = unique_name("scale-web")
    group, port, balancer = load_balanced_group(elbv2, web, health_path="/health")
    ecs.create_service(
        cluster="default", serviceName=web, taskDefinition=web_definition(ecs, web, "1"),
        desiredCount=1, healthCheckGracePeriodSeconds=30,
        loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 8080}])
    register_target(autoscaling, web, 1, 3)
    label = (balancer.split(":loadbalancer/")[1] + "/" + group.split(":")[-1])
    web_policy = autoscaling.put_scaling_policy(
        PolicyName="requests", ServiceNamespace="ecs", ResourceId=resource_id(web),
        ScalableDimension="ecs:service:DesiredCount", PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 300.0,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": label},
            "ScaleOutCooldown": 0, "ScaleInCooldown": 0,
        })
    alarm_names = [alarm["AlarmName"] for alarm in web_policy["Alarms"]]
    assert len(alarm_names) == 2 and all(n.startswith(f"TargetTracking-{resource_id(web)}-Alarm")
                                         for n in alarm_names)

    # The CPU burner: one busy loop on a quarter-core reservation is far above 50 %.
    burner = unique_name("scale-cpu")
    burner_definition = ecs.register_task_definition(family=burner, containerDefinitions=[container(
        cpu=256, command=["sh", "-c", "while :; do :; done"], stopTimeout=1)])["taskDefinition"]
    ecs.create_service(cluster="default", serviceName=burner,
                       taskDefinition=burner_definition["taskDefinitionArn"], desiredCount=1)
    register_target(autoscaling, burner, 1, 2)
    autoscaling.put_scaling_policy(
        PolicyName="cpu", ServiceNamespace="ecs", ResourceId=resource_id(burner),
        ScalableDimension="ecs:service:DesiredCount", PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 50.0, "DisableScaleIn": True,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
        })

    # The scheduled service: an at() action 15 s from now raises its minimum to 2.
    scheduled = unique_name("scale-at")
    idle = ecs.register_task_definition(family=scheduled, containerDefinitions=[container(
        command=["sleep", "600"], stopTimeout=1)])["taskDefinition"]
    ecs.create_service(cluster="default", serviceName=scheduled,
                       taskDefinition=idle["taskDefinitionArn"], desiredCount=1)
    register_target(autoscaling, scheduled, 1, 4)
    at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=15)).strftime("%Y-%m-%dT%H:%M:%S")
    autoscaling.put_scheduled_action(
        ServiceNamespace="ecs", ScheduledActionName="raise", ResourceId=resource_id(scheduled),
        ScalableDimension="ecs:service:DesiredCount", Schedule=f"at({at})",
        ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 4})

    wait_until("the web task healthy", lambda: len(healthy_ports(elbv2, group)) == 1, 90)
    # 15 requests/s = 900 per minute on one target: three times the target value.
    load = Load(port, 15.0)
    load.start()
    stepped = time.monotonic()
    try:
        wait_until("the web service scaled out to 3", lambda: desired_count(ecs, web) == 3, 90)
        scaled_out_s = time.monotonic() - stepped
        wait_until("three healthy web targets", lambda: len(healthy_ports(elbv2, group)) == 3, 90)
        healthy_s = time.monotonic() - stepped
        print(f"load step → desired count 3 in {scaled_out_s:.1f} s, 3 healthy targets in {healthy_s:.1f} s")
        scaled = [a for a in activities(autoscaling, web) if a["Description"] == "Setting desired count to 3."]
        assert scaled and scaled[0]["StatusCode"] == "Successful", activities(autoscaling, web)
        assert "AlarmHigh" in scaled[0]["Cause"] and "triggered policy requests" in scaled[0]["Cause"]
        high = cloudwatch.describe_alarms(AlarmNames=alarm_names)["MetricAlarms"]
        assert any(a["StateValue"] == "ALARM" and "AlarmHigh" in a["AlarmName"] for a in high)
        # The service's events say it as ECS does when scaling starts tasks.
        assert any(re.fullmatch(rf"\(service {web}\) has started [12] tasks: (\(task \w+\) ?)+\.", m)
                   for m in service_events(ecs, web)), service_events(ecs, web)

        # The other two services meanwhile.
        wait_until("the burner scaled out to 2", lambda: desired_count(ecs, burner) == 2, 60)
        wait_until("the scheduled minimum applied", lambda: desired_count(ecs, scheduled) == 2, 60)
        target = autoscaling.describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[resource_id(scheduled)])["ScalableTargets"][0]
        assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
        assert any("raise" in a["Cause"] for a in activities(autoscaling, scheduled))
        # Stop burning CPU on this 2-core machine as soon as it has shown what it had to.
        ecs.update_service(cluster="default", service=burner, desiredCount=0)
        autoscaling.deregister_scalable_target(
            ServiceNamespace="ecs", ResourceId=resource_id(burner),
            ScalableDimension="ecs:service:DesiredCount")

        # A trickle (1 request/s: 20 per target per minute, far below 90 % of the target)
        # for the AlarmLow window, then back to the minimum. (A load balancer with no
        # requests publishes no RequestCount, as on AWS: its alarms would have no data.)
        load.interval_s = 1.0
        dropped = time.monotonic()
        wait_until("the web service scaled back in to 1", lambda: desired_count(ecs, web) == 1, 300)
        print(f"scale-in to 1 {time.monotonic() - dropped:.1f} s after the load dropped")
        scaled_in = [a for a in activities(autoscaling, web)
                     if a["Description"] == "Setting desired count to 1."]
        assert scaled_in and "AlarmLow" in scaled_in[0]["Cause"], activities(autoscaling, web)
        wait_until("one web task left", lambda: len(healthy_ports(elbv2, group)) == 1, 60)
        assert any(re.fullmatch(rf"\(service {web}\) has stopped [12] running tasks: (\(task \w+\) ?)+\.", m)
                   for m in service_events(ecs, web)), service_events(ecs, web)
    finally:
        load.stop()
    # Scaling out and in, the load balancer never failed a request.
    assert load.failures == [], load.failures[:5]
    assert load.answers > 0
    for name in (web, burner, scheduled):
        ecs.update_service(cluster="default", service=name, desiredCount=0)
        ecs.delete_service(cluster="default", service=name, force=True)
