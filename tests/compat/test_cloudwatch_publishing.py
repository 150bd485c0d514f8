"""The metrics Berth publishes itself, read back through boto3's CloudWatch client:
the load balancer's `AWS/ApplicationELB` traffic counts (RequestCount equals the
requests sent) and the metrics CloudWatch Logs' metric filters extract. (`AWS/ECS`
from real containers is in test_cloudwatch_docker.py.)"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest

from berth_harness import BerthServer, unique_name
from test_load_balancer_traffic import EchoBackend, answers, serve, wait_for

# Load balancers' traffic is published every 5 s.
PUBLISH_WAIT_S = 20


@pytest.fixture(scope="module")
def cloudwatch(server: BerthServer) -> Any:
    return server.client(service="cloudwatch")


@pytest.fixture(scope="module")
def elbv2(server: BerthServer) -> Any:
    return server.client(service="elbv2")


def window() -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc)
    return {"StartTime": now - dt.timedelta(minutes=10), "EndTime": now + dt.timedelta(minutes=1)}


def total(cloudwatch: Any, namespace: str, name: str, dimensions: list[dict[str, str]],
          statistic: str = "Sum") -> float:
    datapoints = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=dimensions, Period=60,
        Statistics=[statistic], **window())["Datapoints"]
    return sum(point[statistic] for point in datapoints)


def test_load_balancer_request_counts_equal_the_requests_sent(
    cloudwatch: Any, elbv2: Any
) -> None:
    backends = [EchoBackend("cw-a"), EchoBackend("cw-b")]
    try:
        load_balancer_arn, group_arn, port = serve(elbv2, backends, health_checks=True)
        load_balancer = load_balancer_arn.split(":loadbalancer/", 1)[1]
        target_group = group_arn.split(":", 5)[5]
        lb = [{"Name": "LoadBalancer", "Value": load_balancer}]
        both = lb + [{"Name": "TargetGroup", "Value": target_group}]
        # The warm-up requests `serve` sent are published within one interval.
        time.sleep(6)
        before = total(cloudwatch, "AWS/ApplicationELB", "RequestCount", lb)
        assert before >= 1
        sent = 25
        seen = answers(f"http://127.0.0.1:{port}/", sent)
        assert sum(seen.values()) == sent and all(k.startswith("200") for k in seen), seen
        wait_for("RequestCount to count every request",
                 lambda: total(cloudwatch, "AWS/ApplicationELB", "RequestCount", lb) == before + sent,
                 PUBLISH_WAIT_S)
        group_requests = total(cloudwatch, "AWS/ApplicationELB", "RequestCount", both)
        assert group_requests == before + sent
        assert total(cloudwatch, "AWS/ApplicationELB", "HTTPCode_Target_2XX_Count", both) == before + sent
        response_time = cloudwatch.get_metric_statistics(
            Namespace="AWS/ApplicationELB", MetricName="TargetResponseTime", Dimensions=both,
            Period=600, Statistics=["SampleCount", "Average"], **window())["Datapoints"]
        assert sum(p["SampleCount"] for p in response_time) == before + sent
        assert all(0 < p["Average"] < 1 for p in response_time), response_time
        metrics = cloudwatch.list_metrics(Namespace="AWS/ApplicationELB",
                                          Dimensions=[{"Name": "LoadBalancer", "Value": load_balancer}])
        names = {metric["MetricName"] for metric in metrics["Metrics"]}
        assert {"RequestCount", "ProcessedBytes", "NewConnectionCount", "HealthyHostCount",
                "RequestCountPerTarget", "TargetResponseTime"} <= names, names
    finally:
        for backend in backends:
            backend.stop()


def test_metric_filters_publish_their_metrics(server: BerthServer, cloudwatch: Any) -> None:
    logs = server.client(service="logs")
    group = unique_name("/app/filters")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="web")
    namespace = unique_name("Filtered")
    logs.put_metric_filter(
        logGroupName=group, filterName="latency", filterPattern="{ $.latency > 0 }",
        metricTransformations=[{"metricName": "Latency", "metricNamespace": namespace,
                                "metricValue": "$.latency", "unit": "Milliseconds",
                                "dimensions": {"Route": "$.route"}}],
    )
    logs.put_metric_filter(
        logGroupName=group, filterName="errors", filterPattern="ERROR",
        metricTransformations=[{"metricName": "Errors", "metricNamespace": namespace,
                                "metricValue": "1", "defaultValue": 0}],
    )
    now_ms = int(time.time() * 1000)
    messages = [json.dumps({"latency": value, "route": "/a"}) for value in (10, 20, 30)]
    messages += ["ERROR one", "ERROR two", json.dumps({"latency": 0, "route": "/a"})]
    logs.put_log_events(logGroupName=group, logStreamName="web", logEvents=[
        {"timestamp": now_ms + index, "message": message} for index, message in enumerate(messages)])

    route = [{"Name": "Route", "Value": "/a"}]
    wait_for("the latency metric",
             lambda: total(cloudwatch, namespace, "Latency", route, "SampleCount") == 3, 10)
    assert total(cloudwatch, namespace, "Latency", route) == 60
    assert total(cloudwatch, namespace, "Errors", []) == 2
    listed = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    assert sorted(metric["MetricName"] for metric in listed) == ["Errors", "Latency"]
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace, MetricName="Latency", Dimensions=route, Period=60,
        Statistics=["Average"], **window())["Datapoints"]
    assert {point["Unit"] for point in points} == {"Milliseconds"}
