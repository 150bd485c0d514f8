"""Amazon CloudWatch metrics and alarms through the real clients: boto3 in all
three protocols CloudWatch speaks (JSON 1.0, which botocore 1.44 picks by
default: its model lists `smithy-rpc-v2-cbor`, `json`, `query` and botocore
prefers `json`; Smithy RPC v2 CBOR and the query protocol, each forced through
a copy of botocore's model), the
AWS CLI, botocore's paginators and waiters, AWS's error codes as boto3 raises
them, an alarm that really evaluates high-resolution data, and acknowledged
datapoints and alarms surviving kill -9 of the server."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import time
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

from berth_harness import ACCOUNT_ID, DEFAULT_REGION, BerthServer, api_error, unique_name

UTC = dt.timezone.utc
# "default" is boto3 as users get it (JSON 1.0 with botocore 1.44); "json" forces it
# in case a later botocore prefers CBOR.
PROTOCOLS = ["default", "json", "smithy-rpc-v2-cbor", "query"]
CONTENT_TYPES = {
    "smithy-rpc-v2-cbor": "application/cbor",
    "json": "application/x-amz-json-1.0",
    "query": "application/x-www-form-urlencoded",
}
ALARM_WAIT_S = 30.0


def minute_aligned(minutes_ago: int) -> dt.datetime:
    """A whole minute `minutes_ago` minutes before now (UTC)."""
    now_s = int(time.time())
    return dt.datetime.fromtimestamp(now_s - now_s % 60 - minutes_ago * 60, tz=UTC)


def alarm_arn(name: str) -> str:
    return f"arn:aws:cloudwatch:{DEFAULT_REGION}:{ACCOUNT_ID}:alarm:{name}"


def client_config() -> Config:
    return Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
    )


def forced_protocol_client(server: BerthServer, protocol: str, data_root: Path) -> Any:
    """A CloudWatch client that speaks `protocol`: botocore's own model with
    `metadata.protocol`/`protocols` rewritten, found first on the loader's path
    of a session of its own (so the default session keeps CBOR)."""
    source = Path(botocore.__file__).parent / "data" / "cloudwatch" / "2010-08-01" / "service-2.json.gz"
    model = json.loads(gzip.decompress(source.read_bytes()))
    model["metadata"]["protocol"] = protocol
    model["metadata"]["protocols"] = [protocol]
    target = data_root / protocol / "cloudwatch" / "2010-08-01"
    target.mkdir(parents=True, exist_ok=True)
    (target / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.Session()
    session.get_component("data_loader").search_paths.insert(0, str(data_root / protocol))
    access_key, secret_key = server.credentials()
    return boto3.session.Session(botocore_session=session).client(
        "cloudwatch",
        region_name=DEFAULT_REGION,
        endpoint_url=server.endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=client_config(),
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cloudwatch-models")


@pytest.fixture(scope="module", params=PROTOCOLS)
def cw(request: pytest.FixtureRequest, server: BerthServer, model_dir: Path) -> Any:
    """A CloudWatch client in each protocol."""
    protocol = request.param
    if protocol == "default":
        return server.client(service="cloudwatch")
    made = forced_protocol_client(server, protocol, model_dir)
    assert made.meta.service_model.resolved_protocol == protocol
    return made


@pytest.fixture(scope="module")
def cbor(server: BerthServer, model_dir: Path) -> Any:
    return forced_protocol_client(server, "smithy-rpc-v2-cbor", model_dir)


def sent_content_types(client: Any) -> tuple[list[str], Callable[[], None]]:
    seen: list[str] = []

    def record(request: Any, **_: Any) -> None:
        value = request.headers.get("Content-Type", "")
        seen.append(value.decode() if isinstance(value, bytes) else value)

    client.meta.events.register("before-send.cloudwatch", record)
    return seen, lambda: client.meta.events.unregister("before-send.cloudwatch", record)


def stats(client: Any, namespace: str, name: str, start: dt.datetime, minutes: int,
          dimensions: list[dict[str, str]] | None = None, **extra: Any) -> list[dict[str, Any]]:
    request: dict[str, Any] = dict(
        Namespace=namespace, MetricName=name, StartTime=start,
        EndTime=start + dt.timedelta(minutes=minutes), Period=60,
    )
    if dimensions is not None:
        request["Dimensions"] = dimensions
    request.update(extra)
    if "Statistics" not in request and "ExtendedStatistics" not in request:
        request["Statistics"] = ["Sum", "SampleCount", "Average", "Minimum", "Maximum"]
    points = client.get_metric_statistics(**request)["Datapoints"]
    return sorted(points, key=lambda p: p["Timestamp"])


# ----- metrics ------------------------------------------------------------------------


def test_each_client_speaks_its_protocol(cw: Any) -> None:
    seen, stop = sent_content_types(cw)
    try:
        cw.list_metrics(Namespace="Berth/None")
    finally:
        stop()
    protocol = cw.meta.service_model.resolved_protocol
    assert seen and seen[0].startswith(CONTENT_TYPES[protocol]), seen


def test_put_metric_data_in_every_form_and_get_statistics(cw: Any) -> None:
    namespace = "Berth/" + unique_name("stats")
    start = minute_aligned(30)
    host = [{"Name": "Host", "Value": "a"}]
    cw.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "Latency", "Dimensions": host, "Timestamp": start, "Value": 10.0,
             "Unit": "Milliseconds"},
            {"MetricName": "Latency", "Dimensions": host, "Timestamp": start + dt.timedelta(seconds=5),
             "Values": [1.0, 4.0], "Counts": [2.0, 1.0], "Unit": "Milliseconds"},
            {"MetricName": "Latency", "Dimensions": host, "Timestamp": start + dt.timedelta(minutes=1),
             "StatisticValues": {"SampleCount": 4, "Sum": 20, "Minimum": 2, "Maximum": 8},
             "Unit": "Milliseconds"},
            {"MetricName": "Latency", "Dimensions": host, "Timestamp": start + dt.timedelta(minutes=2),
             "Values": [7.5], "StorageResolution": 1, "Unit": "Milliseconds"},
        ],
    )
    points = stats(cw, namespace, "Latency", start, 5, host)
    assert [p["Timestamp"] for p in points] == [start + dt.timedelta(minutes=m) for m in range(3)]
    first, second, third = points
    # 10 + 1 + 1 + 4: four samples.
    assert (first["Sum"], first["SampleCount"], first["Minimum"], first["Maximum"]) == (16, 4, 1, 10)
    assert first["Average"] == 4
    assert first["Unit"] == "Milliseconds"
    assert (second["Sum"], second["SampleCount"], second["Minimum"], second["Maximum"]) == (20, 4, 2, 8)
    assert third["Sum"] == 7.5 and third["SampleCount"] == 1
    # A metric is identified by its dimensions too: none match without them.
    assert stats(cw, namespace, "Latency", start, 5) == []
    # Only the statistics asked for come back.
    only_max = stats(cw, namespace, "Latency", start, 5, host, Statistics=["Maximum"])
    assert set(only_max[0]) == {"Timestamp", "Maximum", "Unit"}
    # A unit filter that matches nothing.
    assert stats(cw, namespace, "Latency", start, 5, host, Unit="Seconds") == []
    # Wider periods merge the minutes.
    wide = cw.get_metric_statistics(
        Namespace=namespace, MetricName="Latency", Dimensions=host, StartTime=start,
        EndTime=start + dt.timedelta(minutes=5), Period=300, Statistics=["Sum", "SampleCount"],
    )
    assert wide["Label"] == "Latency"
    assert [(p["Sum"], p["SampleCount"]) for p in wide["Datapoints"]] == [(43.5, 9)]


def test_extended_statistics_are_percentiles(cw: Any) -> None:
    namespace = "Berth/" + unique_name("pct")
    start = minute_aligned(20)
    cw.put_metric_data(
        Namespace=namespace,
        MetricData=[{"MetricName": "Lat", "Timestamp": start, "Values": [float(v) for v in range(1, 101)]}],
    )
    points = stats(cw, namespace, "Lat", start, 1, ExtendedStatistics=["p50", "p99"])
    assert len(points) == 1
    extended = points[0]["ExtendedStatistics"]
    assert set(extended) == {"p50", "p99"}
    # CloudWatch's percentiles are approximations: within 2% of the exact value.
    assert 49 <= extended["p50"] <= 51.5, extended
    assert 97 <= extended["p99"] <= 100, extended
    assert "Sum" not in points[0]


def put_series(client: Any, namespace: str, name: str, start: dt.datetime,
               values: dict[int, float], dimensions: list[dict[str, str]] | None = None) -> None:
    """One datapoint per minute offset in `values`."""
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions or [],
             "Timestamp": start + dt.timedelta(minutes=minute), "Value": value}
            for minute, value in values.items()
        ],
    )


def metric_stat(namespace: str, name: str, stat: str = "Sum", period_s: int = 60) -> dict[str, Any]:
    return {"Metric": {"Namespace": namespace, "MetricName": name}, "Period": period_s, "Stat": stat}


def test_get_metric_data_metric_stats_and_math(cw: Any) -> None:
    namespace = "Berth/" + unique_name("math")
    start = minute_aligned(40)
    put_series(cw, namespace, "A", start, {0: 60.0, 1: 120.0, 2: 180.0, 4: 300.0})
    put_series(cw, namespace, "B", start, {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0, 4: 5.0})
    response = cw.get_metric_data(
        MetricDataQueries=[
            {"Id": "a", "MetricStat": metric_stat(namespace, "A")},
            {"Id": "b", "MetricStat": metric_stat(namespace, "B"), "ReturnData": False},
            {"Id": "doubled", "Expression": "a * 2", "Label": "twice A"},
            {"Id": "total", "Expression": "SUM(METRICS())"},
            {"Id": "filled", "Expression": "FILL(a, 0)"},
            {"Id": "rate", "Expression": "RATE(a)"},
        ],
        StartTime=start,
        EndTime=start + dt.timedelta(minutes=5),
        ScanBy="TimestampAscending",
        LabelOptions={"Timezone": "+0130"},
    )
    results = {r["Id"]: r for r in response["MetricDataResults"]}
    assert list(results) == ["a", "doubled", "total", "filled", "rate"], "ReturnData=False hides b"
    minute = [start + dt.timedelta(minutes=m) for m in range(5)]

    a = results["a"]
    assert a["Label"] == "A"
    assert a["StatusCode"] == "Complete"
    assert a["Timestamps"] == [minute[0], minute[1], minute[2], minute[4]]
    assert a["Values"] == [60, 120, 180, 300]
    assert results["doubled"]["Label"] == "twice A"
    assert results["doubled"]["Values"] == [120, 240, 360, 600]
    # SUM(METRICS()) adds a and b where both have a value; b alone at minute 3.
    total = dict(zip(results["total"]["Timestamps"], results["total"]["Values"]))
    assert total[minute[0]] == 61 and total[minute[4]] == 305
    assert results["filled"]["Timestamps"] == minute
    assert results["filled"]["Values"] == [60, 120, 180, 0, 300]
    # RATE: change per second between consecutive datapoints.
    rate = dict(zip(results["rate"]["Timestamps"], results["rate"]["Values"]))
    assert rate[minute[1]] == pytest.approx(1.0)
    assert rate[minute[2]] == pytest.approx(1.0)
    assert rate[minute[4]] == pytest.approx(120 / 120)

    descending = cw.get_metric_data(
        MetricDataQueries=[{"Id": "a", "MetricStat": metric_stat(namespace, "A")}],
        StartTime=start,
        EndTime=start + dt.timedelta(minutes=5),
    )["MetricDataResults"][0]
    assert descending["Timestamps"] == [minute[4], minute[2], minute[1], minute[0]]
    assert descending["Values"] == [300, 180, 120, 60]


def test_get_metric_data_pages_with_max_datapoints(cw: Any) -> None:
    namespace = "Berth/" + unique_name("pages")
    start = minute_aligned(50)
    put_series(cw, namespace, "N", start, {m: float(m) for m in range(10)})
    queries = [{"Id": "n", "MetricStat": metric_stat(namespace, "N")}]
    window = dict(StartTime=start, EndTime=start + dt.timedelta(minutes=10), ScanBy="TimestampAscending")

    first = cw.get_metric_data(MetricDataQueries=queries, MaxDatapoints=4, **window)
    assert first["MetricDataResults"][0]["Values"] == [0, 1, 2, 3]
    assert first["MetricDataResults"][0]["StatusCode"] == "PartialData"
    assert first["NextToken"]

    paginator = cw.get_paginator("get_metric_data")
    pages = list(paginator.paginate(MetricDataQueries=queries, PaginationConfig={"PageSize": 4}, **window))
    assert len(pages) == 3
    values = [v for page in pages for result in page["MetricDataResults"] for v in result["Values"]]
    assert values == [float(m) for m in range(10)]
    assert pages[-1]["MetricDataResults"][0]["StatusCode"] == "Complete"
    assert "NextToken" not in pages[-1]

    whole = paginator.paginate(MetricDataQueries=queries, PaginationConfig={"PageSize": 3}, **window)
    merged = whole.build_full_result()
    assert [v for r in merged["MetricDataResults"] for v in r["Values"]] == [float(m) for m in range(10)]

    error = api_error("InvalidNextToken", cw.get_metric_data, MetricDataQueries=queries,
                      NextToken="not-a-token", **window)
    assert error.status == 400


def test_list_metrics_filters_and_pages(cw: Any) -> None:
    namespace = "Berth/" + unique_name("list")
    start = minute_aligned(10)
    cw.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "Hits", "Dimensions": [{"Name": "Host", "Value": "a"}], "Timestamp": start, "Value": 1},
            {"MetricName": "Hits", "Dimensions": [{"Name": "Host", "Value": "b"}], "Timestamp": start, "Value": 1},
            {"MetricName": "Hits", "Timestamp": start, "Value": 1},
            {"MetricName": "Errors", "Dimensions": [{"Name": "Host", "Value": "a"},
                                                     {"Name": "Zone", "Value": "z1"}],
             "Timestamp": start, "Value": 1},
        ],
    )

    def listed(**filters: Any) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        metrics = cw.list_metrics(Namespace=namespace, **filters)["Metrics"]
        for metric in metrics:
            assert metric["Namespace"] == namespace
        return sorted(
            (m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m.get("Dimensions", []))))
            for m in metrics
        )

    assert len(listed()) == 4
    assert listed(MetricName="Hits") == [
        ("Hits", ()), ("Hits", (("Host", "a"),)), ("Hits", (("Host", "b"),)),
    ]
    assert listed(Dimensions=[{"Name": "Host", "Value": "a"}]) == [
        ("Errors", (("Host", "a"), ("Zone", "z1"))), ("Hits", (("Host", "a"),)),
    ]
    assert listed(Dimensions=[{"Name": "Zone"}]) == [("Errors", (("Host", "a"), ("Zone", "z1")))]
    assert len(listed(RecentlyActive="PT3H")) == 4
    assert cw.list_metrics(Namespace=namespace + "-none")["Metrics"] == []

    # 501 metrics: the paginator follows NextToken past ListMetrics' 500 a page.
    big = namespace + "-big"
    cw.put_metric_data(
        Namespace=big,
        MetricData=[{"MetricName": "M", "Dimensions": [{"Name": "I", "Value": str(i)}], "Value": 1.0}
                    for i in range(501)],
    )
    pages = list(cw.get_paginator("list_metrics").paginate(Namespace=big))
    assert [len(page["Metrics"]) for page in pages] == [500, 1]
    seen = {m["Dimensions"][0]["Value"] for page in pages for m in page["Metrics"]}
    assert seen == {str(i) for i in range(501)}


# ----- alarms -------------------------------------------------------------------------


def static_alarm(name: str, namespace: str, **extra: Any) -> dict[str, Any]:
    alarm: dict[str, Any] = dict(
        AlarmName=name,
        AlarmDescription="latency is high",
        MetricName="Latency",
        Namespace=namespace,
        Statistic="Average",
        Dimensions=[{"Name": "Host", "Value": "a"}],
        Period=60,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        Threshold=250.0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="missing",
        Unit="Milliseconds",
    )
    alarm.update(extra)
    return alarm


def test_metric_alarms_round_trip_and_filter(cw: Any) -> None:
    prefix = unique_name("alarm")
    namespace = "Berth/" + prefix
    names = [f"{prefix}-{i}" for i in range(5)]
    for name in names:
        cw.put_metric_alarm(**static_alarm(name, namespace))
    math_name = f"{prefix}-math"
    cw.put_metric_alarm(
        AlarmName=math_name,
        EvaluationPeriods=1,
        Threshold=10.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Metrics=[
            {"Id": "m1", "MetricStat": metric_stat(namespace, "Errors"), "ReturnData": False},
            {"Id": "m2", "MetricStat": metric_stat(namespace, "Requests"), "ReturnData": False},
            {"Id": "e1", "Expression": "100 * m1 / m2", "Label": "error rate", "ReturnData": True},
        ],
    )

    described = cw.describe_alarms(AlarmNames=[names[0]])["MetricAlarms"]
    assert len(described) == 1
    alarm = described[0]
    sent = static_alarm(names[0], namespace)
    for key, value in sent.items():
        assert alarm[key] == value, key
    assert alarm["AlarmArn"] == alarm_arn(names[0])
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm["ActionsEnabled"] is True
    assert isinstance(alarm["StateUpdatedTimestamp"], dt.datetime)
    assert isinstance(alarm["AlarmConfigurationUpdatedTimestamp"], dt.datetime)

    math = cw.describe_alarms(AlarmNames=[math_name])["MetricAlarms"][0]
    assert [m["Id"] for m in math["Metrics"]] == ["m1", "m2", "e1"]
    assert math["Metrics"][2]["Expression"] == "100 * m1 / m2"
    assert math["Metrics"][0]["MetricStat"]["Metric"]["MetricName"] == "Errors"
    assert "MetricName" not in math

    by_prefix = cw.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    assert [a["AlarmName"] for a in by_prefix] == sorted(names + [math_name])
    pages = list(cw.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=prefix, PaginationConfig={"PageSize": 2}))
    assert [len(p["MetricAlarms"]) for p in pages] == [2, 2, 2]
    assert [a["AlarmName"] for p in pages for a in p["MetricAlarms"]] == sorted(names + [math_name])

    cw.set_alarm_state(AlarmName=names[1], StateValue="ALARM", StateReason="testing purposes")
    in_alarm = cw.describe_alarms(AlarmNamePrefix=prefix, StateValue="ALARM")["MetricAlarms"]
    assert [a["AlarmName"] for a in in_alarm] == [names[1]]
    assert in_alarm[0]["StateReason"] == "testing purposes"
    assert cw.describe_alarms(AlarmNamePrefix=prefix, AlarmTypes=["CompositeAlarm"]) \
        .get("MetricAlarms", []) == []

    for_metric = cw.describe_alarms_for_metric(
        MetricName="Latency", Namespace=namespace, Dimensions=[{"Name": "Host", "Value": "a"}])
    assert sorted(a["AlarmName"] for a in for_metric["MetricAlarms"]) == names
    assert cw.describe_alarms_for_metric(
        MetricName="Latency", Namespace=namespace, Statistic="Maximum")["MetricAlarms"] == []

    cw.disable_alarm_actions(AlarmNames=[names[2]])
    assert cw.describe_alarms(AlarmNames=[names[2]])["MetricAlarms"][0]["ActionsEnabled"] is False
    cw.enable_alarm_actions(AlarmNames=[names[2]])
    assert cw.describe_alarms(AlarmNames=[names[2]])["MetricAlarms"][0]["ActionsEnabled"] is True

    # An update keeps the state and changes the definition.
    cw.put_metric_alarm(**static_alarm(names[1], namespace, Threshold=500.0))
    updated = cw.describe_alarms(AlarmNames=[names[1]])["MetricAlarms"][0]
    assert updated["Threshold"] == 500.0

    cw.delete_alarms(AlarmNames=[names[3], names[4]])
    remaining = cw.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    assert [a["AlarmName"] for a in remaining] == sorted([names[0], names[1], names[2], math_name])


def test_alarm_history_types_dates_and_pages(cw: Any) -> None:
    name = unique_name("history")
    before = dt.datetime.now(UTC) - dt.timedelta(seconds=5)
    cw.put_metric_alarm(**static_alarm(name, "Berth/" + name))
    for state in ["ALARM", "OK", "ALARM", "OK"]:
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"to {state}")
    cw.put_metric_alarm(**static_alarm(name, "Berth/" + name, Threshold=1.0))

    items = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    assert len(items) == 6
    assert [i["HistoryItemType"] for i in items] == (
        ["ConfigurationUpdate"] + ["StateUpdate"] * 4 + ["ConfigurationUpdate"]
    )
    stamps = [i["Timestamp"] for i in items]
    assert stamps == sorted(stamps, reverse=True), "newest first by default"
    for item in items:
        assert item["AlarmName"] == name
        assert item["AlarmType"] == "MetricAlarm"
        json.loads(item["HistoryData"])

    updates = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate",
                                        ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in updates] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM",
        "Alarm updated from ALARM to OK",
        "Alarm updated from OK to ALARM",
        "Alarm updated from ALARM to OK",
    ]
    data = json.loads(updates[0]["HistoryData"])
    assert data["oldState"]["stateValue"] == "INSUFFICIENT_DATA"
    assert data["newState"] == {"stateValue": "ALARM", "stateReason": "to ALARM"}
    configuration = cw.describe_alarm_history(AlarmName=name, HistoryItemType="ConfigurationUpdate")
    assert len(configuration["AlarmHistoryItems"]) == 2

    after = dt.datetime.now(UTC) + dt.timedelta(seconds=5)
    assert len(cw.describe_alarm_history(AlarmName=name, StartDate=before, EndDate=after)
               ["AlarmHistoryItems"]) == 6
    assert cw.describe_alarm_history(AlarmName=name, StartDate=after,
                                     EndDate=after + dt.timedelta(hours=1))["AlarmHistoryItems"] == []
    assert cw.describe_alarm_history(AlarmName=name, EndDate=before)["AlarmHistoryItems"] == []

    pages = list(cw.get_paginator("describe_alarm_history").paginate(
        AlarmName=name, PaginationConfig={"PageSize": 4}))
    assert [len(p["AlarmHistoryItems"]) for p in pages] == [4, 2]
    assert [i["Timestamp"] for p in pages for i in p["AlarmHistoryItems"]] == stamps


def test_alarm_tags(cw: Any) -> None:
    name = unique_name("tagged")
    arn = alarm_arn(name)
    cw.put_metric_alarm(**static_alarm(name, "Berth/" + name), Tags=[{"Key": "team", "Value": "web"}])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "web"}]
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "api"}])
    tags = {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(ResourceARN=arn)["Tags"]}
    assert tags == {"team": "api", "env": "prod"}
    cw.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]

    missing = alarm_arn(name + "-missing")
    with pytest.raises(cw.exceptions.ResourceNotFoundException):
        cw.list_tags_for_resource(ResourceARN=missing)
    error = api_error("ResourceNotFoundException", cw.tag_resource, ResourceARN=missing,
                      Tags=[{"Key": "a", "Value": "b"}])
    assert error.status == 404
    api_error("InvalidParameterValue", cw.tag_resource, ResourceARN=arn,
              Tags=[{"Key": "aws:reserved", "Value": "b"}])


def test_waiters(cw: Any) -> None:
    name = unique_name("waited")
    waiter = cw.get_waiter("alarm_exists")
    with pytest.raises(WaiterError):
        waiter.wait(AlarmNames=[name], WaiterConfig={"Delay": 1, "MaxAttempts": 1})
    cw.put_metric_alarm(**static_alarm(name, "Berth/" + name))
    waiter.wait(AlarmNames=[name], WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    # Berth has no composite alarms: the waiter never succeeds, and fails cleanly.
    with pytest.raises(WaiterError) as raised:
        cw.get_waiter("composite_alarm_exists").wait(
            AlarmNames=[name], WaiterConfig={"Delay": 1, "MaxAttempts": 1})
    assert "Max attempts exceeded" in str(raised.value)


# ----- errors --------------------------------------------------------------------------


def test_errors_carry_the_query_codes(cw: Any) -> None:
    start = minute_aligned(10)
    reserved = api_error("InvalidParameterValue", cw.put_metric_data, Namespace="AWS/EC2",
                         MetricData=[{"MetricName": "CPU", "Value": 1.0}])
    assert reserved.status == 400
    assert reserved.message == "The value AWS/ for parameter Namespace is invalid."
    with pytest.raises(cw.exceptions.InvalidParameterValueException):
        cw.put_metric_data(Namespace="Berth/x",
                           MetricData=[{"MetricName": "CPU", "Value": 1.0, "StorageResolution": 5}])
    api_error("InvalidParameterCombination", cw.put_metric_data, Namespace="Berth/x",
              MetricData=[{"MetricName": "CPU", "Values": [1.0, 2.0], "Counts": [1.0]}])

    with pytest.raises(cw.exceptions.InvalidParameterCombinationException):
        cw.get_metric_statistics(Namespace="Berth/x", MetricName="CPU", StartTime=start,
                                 EndTime=start + dt.timedelta(minutes=1), Period=60,
                                 Statistics=["Sum"], ExtendedStatistics=["p99"])
    too_many = api_error(
        "InvalidParameterCombination", cw.get_metric_statistics, Namespace="Berth/x",
        MetricName="CPU", StartTime=start - dt.timedelta(minutes=1441), EndTime=start, Period=60,
        Statistics=["Sum"])
    assert too_many.message == (
        "You have requested up to 1,441 datapoints, which exceeds the limit of 1,440. You may "
        "reduce the datapoints requested by increasing Period, or decreasing the time range."
    )
    api_error("InvalidParameterValue", cw.get_metric_statistics, Namespace="Berth/x",
              MetricName="CPU", StartTime=start, EndTime=start + dt.timedelta(minutes=1),
              Period=7, Statistics=["Sum"])
    api_error("InvalidParameterValue", cw.get_metric_statistics, Namespace="Berth/x",
              MetricName="CPU", StartTime=start, EndTime=start + dt.timedelta(minutes=1),
              Period=60, ExtendedStatistics=["p101"])

    missing = unique_name("missing")
    not_found = api_error("ResourceNotFound", cw.set_alarm_state, AlarmName=missing,
                          StateValue="OK", StateReason="x")
    assert not_found.status == 404
    with pytest.raises(cw.exceptions.ResourceNotFound):
        cw.set_alarm_state(AlarmName=missing, StateValue="OK", StateReason="x")

    api_error("InvalidNextToken", cw.describe_alarms, NextToken="bm90LWEtbmFtZQ")
    too_long = api_error("ValidationError", cw.put_metric_alarm,
                         **static_alarm("a" * 256, "Berth/x"))
    assert "Member must have length less than or equal to 255" in too_long.message
    api_error("InvalidParameterCombination", cw.put_metric_alarm,
              **static_alarm(unique_name("both"), "Berth/x", ExtendedStatistic="p99"))
    with pytest.raises(cw.exceptions.InvalidFormatFault):
        cw.set_alarm_state(AlarmName=missing, StateValue="OK", StateReason="x",
                           StateReasonData="{not json")

    # A client error of every protocol is a ClientError with the code and HTTP status.
    try:
        cw.put_metric_data(Namespace="AWS/x", MetricData=[{"MetricName": "m", "Value": 1.0}])
    except ClientError as error:
        assert error.response["Error"]["Code"] == "InvalidParameterValue"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error.response["ResponseMetadata"]["RequestId"]
    else:
        raise AssertionError("a reserved namespace was accepted")


def test_put_metric_data_limits(cw: Any) -> None:
    namespace = "Berth/" + unique_name("limits")
    # 1,000 datums is the limit (the body is large enough for botocore to gzip it).
    cw.put_metric_data(Namespace=namespace,
                       MetricData=[{"MetricName": "M", "Value": 1.0} for _ in range(1000)])
    api_error("InvalidParameterValue", cw.put_metric_data, Namespace=namespace,
              MetricData=[{"MetricName": "M", "Value": 1.0} for _ in range(1001)])
    cw.put_metric_data(Namespace=namespace,
                       MetricData=[{"MetricName": "V", "Values": [float(v) for v in range(150)]}])
    api_error("InvalidParameterValue", cw.put_metric_data, Namespace=namespace,
              MetricData=[{"MetricName": "V", "Values": [float(v) for v in range(151)]}])
    dimensions = [{"Name": f"D{i}", "Value": "v"} for i in range(30)]
    cw.put_metric_data(Namespace=namespace,
                       MetricData=[{"MetricName": "D", "Dimensions": dimensions, "Value": 1.0}])
    with pytest.raises(ClientError):
        cw.put_metric_data(Namespace=namespace, MetricData=[
            {"MetricName": "D", "Dimensions": dimensions + [{"Name": "D30", "Value": "v"}], "Value": 1.0}])
    old = dt.datetime.now(UTC) - dt.timedelta(days=15)
    api_error("InvalidParameterValue", cw.put_metric_data, Namespace=namespace,
              MetricData=[{"MetricName": "M", "Timestamp": old, "Value": 1.0}])
    future = dt.datetime.now(UTC) + dt.timedelta(hours=3)
    api_error("InvalidParameterValue", cw.put_metric_data, Namespace=namespace,
              MetricData=[{"MetricName": "M", "Timestamp": future, "Value": 1.0}])
    points = cw.get_metric_statistics(
        Namespace=namespace, MetricName="M", StartTime=dt.datetime.now(UTC) - dt.timedelta(minutes=5),
        EndTime=dt.datetime.now(UTC) + dt.timedelta(minutes=1), Period=60, Statistics=["SampleCount"],
    )["Datapoints"]
    assert sum(p["SampleCount"] for p in points) == 1000, "refused calls stored nothing"


# ----- evaluation, the CLI and durability ---------------------------------------------------


def wait_for_state(client: Any, name: str, state: str, timeout_s: float = ALARM_WAIT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        alarm = client.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        if alarm["StateValue"] == state:
            return alarm
        if time.monotonic() > deadline:
            raise AssertionError(f"alarm {name} is {alarm['StateValue']}, not {state}, after {timeout_s}s: "
                                 f"{alarm['StateReason']}")
        time.sleep(0.25)


def high_resolution(name: str, value: float, count: float, seconds: range) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {"MetricName": name, "Timestamp": dt.datetime.fromtimestamp(now + offset / 2, tz=UTC),
         "Values": [value], "Counts": [count], "StorageResolution": 1}
        for offset in seconds
    ]


def test_a_high_resolution_alarm_really_evaluates(cbor: Any) -> None:
    name = unique_name("evaluated")
    namespace = "Berth/" + name
    # High values every half second over the last 40 s: every 10 s period that closed has them.
    cbor.put_metric_data(Namespace=namespace, MetricData=high_resolution("Load", 100.0, 1, range(-80, 1)))
    cbor.put_metric_alarm(
        AlarmName=name, MetricName="Load", Namespace=namespace, Statistic="Average", Period=10,
        EvaluationPeriods=1, Threshold=50.0, ComparisonOperator="GreaterThanThreshold",
    )
    alarmed = wait_for_state(cbor, name, "ALARM")
    assert alarmed["StateReason"].startswith("Threshold Crossed: 1 datapoint")
    reason_data = json.loads(alarmed["StateReasonData"])
    assert reason_data["period"] == 10 and reason_data["threshold"] == 50.0

    # Low values that outweigh the high ones in every recent and coming period bring it back.
    cbor.put_metric_data(Namespace=namespace, MetricData=high_resolution("Load", -1000.0, 100, range(-80, 60)))
    ok = wait_for_state(cbor, name, "OK")
    assert ok["StateReason"].startswith("Threshold Crossed: 1 datapoint")

    updates = cbor.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate",
                                          ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in updates] == [
        "Alarm updated from INSUFFICIENT_DATA to ALARM",
        "Alarm updated from ALARM to OK",
    ]
    moved = json.loads(updates[1]["HistoryData"])
    assert moved["oldState"]["stateValue"] == "ALARM"
    assert moved["newState"]["stateValue"] == "OK"
    assert moved["newState"]["stateReasonData"]["period"] == 10


def test_the_aws_cli_puts_gets_and_describes(server: BerthServer, cli_home: Path) -> None:
    namespace = "Berth/" + unique_name("cli")
    start = minute_aligned(15)
    stamp = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    server.aws("cloudwatch", "put-metric-data", "--namespace", namespace, "--metric-name", "Hits",
               "--value", "3", "--unit", "Count", "--timestamp", stamp, home=cli_home)
    server.aws("cloudwatch", "put-metric-data", "--namespace", namespace, "--metric-name", "Hits",
               "--statistic-values", "Sum=7,Minimum=1,Maximum=6,SampleCount=2", "--timestamp", stamp,
               "--unit", "Count", home=cli_home)
    got = server.aws(
        "cloudwatch", "get-metric-statistics", "--namespace", namespace, "--metric-name", "Hits",
        "--start-time", stamp,
        "--end-time", (start + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--period", "60", "--statistics", "Sum", "SampleCount", "Maximum", home=cli_home,
    ).json()
    assert got["Label"] == "Hits"
    assert [(p["Sum"], p["SampleCount"], p["Maximum"], p["Unit"]) for p in got["Datapoints"]] == [
        (10.0, 3.0, 6.0, "Count")]

    name = unique_name("cli-alarm")
    server.aws("cloudwatch", "put-metric-alarm", "--alarm-name", name, "--namespace", namespace,
               "--metric-name", "Hits", "--statistic", "Sum", "--period", "60",
               "--evaluation-periods", "1", "--threshold", "5",
               "--comparison-operator", "GreaterThanThreshold", home=cli_home)
    described = server.aws("cloudwatch", "describe-alarms", "--alarm-names", name, home=cli_home).json()
    assert [a["AlarmName"] for a in described["MetricAlarms"]] == [name]
    assert described["MetricAlarms"][0]["Threshold"] == 5.0

    failed = server.aws("cloudwatch", "put-metric-data", "--namespace", "AWS/EC2", "--metric-name", "x",
                        "--value", "1", home=cli_home, check=False)
    assert failed.returncode != 0
    assert "(InvalidParameterValue)" in failed.stderr


def test_acknowledged_datapoints_and_alarms_survive_kill_9(make_server: Any) -> None:
    server: BerthServer = make_server()
    client = server.client(service="cloudwatch")
    namespace = "Berth/" + unique_name("durable")
    start = minute_aligned(30)
    acknowledged = 0
    for batch in range(50):
        client.put_metric_data(
            Namespace=namespace,
            MetricData=[{"MetricName": "Count", "Timestamp": start + dt.timedelta(minutes=batch % 5),
                         "Value": 1.0} for _ in range(20)],
        )
        acknowledged += 20
    name = unique_name("durable-alarm")
    client.put_metric_alarm(**static_alarm(name, namespace))
    client.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="before the kill")
    server.kill()
    server.start()

    client = server.client(service="cloudwatch")
    points = stats(client, namespace, "Count", start, 5, Statistics=["SampleCount", "Sum"])
    assert [p["SampleCount"] for p in points] == [acknowledged / 5] * 5
    assert sum(p["Sum"] for p in points) == acknowledged
    alarm = client.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert alarm["Threshold"] == 250.0
    assert alarm["AlarmArn"] == alarm_arn(name)
    # The state SetAlarmState set lasts until the next evaluation, which a restart runs at
    # once (the alarm has no data: INSUFFICIENT_DATA); its history item is kept.
    updates = client.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate",
                                            ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert updates[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert json.loads(updates[0]["HistoryData"])["newState"]["stateReason"] == "before the kill"
    assert [m["MetricName"] for m in client.list_metrics(Namespace=namespace)["Metrics"]] == ["Count"]
