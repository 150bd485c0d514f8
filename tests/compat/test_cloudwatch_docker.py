"""CloudWatch's `AWS/ECS` metrics from real containers on `berth up`: a service
burning a core shows CPUUtilization close to what `docker stats` reports (one core
burnt of one core reserved is 100 %), an alarm
on it goes to ALARM and back to OK when the service stops burning, and Container
Insights' task counts appear once the cluster setting is on."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Callable

import pytest

from berth_harness import unique_name
import test_tasks_docker
from test_tasks_docker import BerthNode, container, docker

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
        time.sleep(0.5)


def recent(cloudwatch: Any, namespace: str, name: str, dimensions: list[dict[str, str]],
           period: int = 10) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.timezone.utc)
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=dimensions, Period=period,
        Statistics=["Average", "SampleCount"], StartTime=now - dt.timedelta(minutes=3),
        EndTime=now + dt.timedelta(minutes=1))["Datapoints"]
    return sorted(points, key=lambda point: point["Timestamp"])


def docker_cpu_percent(container_id: str) -> float:
    shown = docker("stats", "--no-stream", "--format", "{{.CPUPerc}}", container_id).stdout.strip()
    return float(shown.rstrip("%"))


def test_a_cpu_burning_service_shows_its_utilization_and_trips_an_alarm(node: BerthNode) -> None:
    ecs = node.client()
    cloudwatch = node.client(service="cloudwatch")
    name = unique_name("burner")
    # One core reserved, one core burnt: CPUUtilization near 100 %.
    burner = ecs.register_task_definition(family=name, containerDefinitions=[container(
        cpu=1024, command=["sh", "-c", "while :; do :; done"], stopTimeout=1)])["taskDefinition"]
    idle = ecs.register_task_definition(family=name, containerDefinitions=[container(
        cpu=1024, command=["sleep", "600"], stopTimeout=1)])["taskDefinition"]
    ecs.update_cluster_settings(cluster="default",
                                settings=[{"name": "containerInsights", "value": "enabled"}])
    ecs.create_service(cluster="default", serviceName=name,
                       taskDefinition=burner["taskDefinitionArn"], desiredCount=1)
    service = [{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName", "Value": name}]
    try:
        task = wait_until("the burner to run", lambda: next(iter(
            t for t in ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(
                cluster="default", serviceName=name)["taskArns"] or ["none"]).get("tasks", [])
            if t["lastStatus"] == "RUNNING"), None), 60)
        container_id = task["containers"][0]["runtimeId"]
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/ECS", MetricName="CPUUtilization", Dimensions=service,
            Statistic="Average", Period=10, EvaluationPeriods=1, Threshold=10.0,
            ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")

        # Two reports (5 s apart) after the first sample give a full figure.
        points = wait_until("CPUUtilization datapoints",
                            lambda: (p := recent(cloudwatch, "AWS/ECS", "CPUUtilization", service))
                            and len(p) >= 3 and p, 60)
        # The busy loop gets what the machine's other work leaves it: compare with
        # `docker stats` at the same moment rather than with one core.
        # Both are averaged over the same ~15 s.
        started = dt.datetime.now(dt.timezone.utc)
        by_docker = [docker_cpu_percent(container_id) for _ in range(4)]
        time.sleep(6)
        points = [p for p in recent(cloudwatch, "AWS/ECS", "CPUUtilization", service, period=5)
                  if p["Timestamp"] >= started - dt.timedelta(seconds=5)]
        assert points
        berth = sum(p["Average"] for p in points) / len(points)
        seen_by_docker = sum(by_docker) / len(by_docker)
        assert berth > 10, points
        assert abs(berth - seen_by_docker) < 25, (berth, by_docker, points)
        assert recent(cloudwatch, "AWS/ECS", "MemoryUtilization", service)
        cluster = [{"Name": "ClusterName", "Value": "default"}]
        reservation = wait_until("CPUReservation", lambda: recent(
            cloudwatch, "AWS/ECS", "CPUReservation", cluster), 20)
        assert reservation[-1]["Average"] > 0
        running = wait_until("Container Insights' RunningTaskCount", lambda: recent(
            cloudwatch, "ECS/ContainerInsights", "RunningTaskCount", service), 20)
        assert running[-1]["Average"] == 1

        wait_until("the alarm to go to ALARM", lambda: cloudwatch.describe_alarms(
            AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "ALARM", 45)
        ecs.update_service(cluster="default", service=name, taskDefinition=idle["taskDefinitionArn"])
        wait_until("the alarm to go back to OK", lambda: cloudwatch.describe_alarms(
            AlarmNames=[name])["MetricAlarms"][0]["StateValue"] == "OK", 120)
        history = cloudwatch.describe_alarm_history(
            AlarmName=name, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
        summaries = [item["HistorySummary"] for item in history]
        assert any(summary.endswith("to ALARM") for summary in summaries), summaries
        assert summaries[0] == "Alarm updated from ALARM to OK", summaries
    finally:
        cloudwatch.delete_alarms(AlarmNames=[name])
        ecs.update_service(cluster="default", service=name, desiredCount=0)
        ecs.delete_service(cluster="default", service=name)
