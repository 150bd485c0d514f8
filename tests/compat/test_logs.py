"""CloudWatch Logs through boto3 and the AWS CLI: groups, streams, events,
paging with AWS's tokens and botocore's paginators, filter patterns,
retention, tags, metric filters, StartLiveTail's event stream, AWS's
errors, and acknowledged events surviving kill -9 of the server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from berth_harness import BerthServer, api_error, unique_name

DAY_MS = 24 * 60 * 60 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture(scope="module")
def logs(server: BerthServer) -> Any:
    return server.client(service="logs")


def make_stream(logs: Any, prefix: str = "g") -> tuple[str, str]:
    group = "/berth/" + unique_name(prefix)
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    return group, "s"


def put(logs: Any, group: str, stream: str, events: list[tuple[int, str]]) -> dict[str, Any]:
    return logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": t, "message": m} for t, m in events],
    )


def test_groups_streams_and_their_errors(logs: Any) -> None:
    group = "/berth/" + unique_name("groups")
    logs.create_log_group(
        logGroupName=group, tags={"team": "web"}, logGroupClass="STANDARD",
        kmsKeyId="arn:aws:kms:us-east-1:000000000000:key/abc",
    )
    error = api_error("ResourceAlreadyExistsException", logs.create_log_group, logGroupName=group)
    assert error.message == "The specified log group already exists"
    assert error.status == 400
    error = api_error("InvalidParameterException", logs.create_log_group, logGroupName="bad name")
    assert "Member must satisfy regular expression pattern" in error.message

    described = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in described] == [group]
    assert described[0]["arn"].endswith(f":log-group:{group}:*")
    assert described[0]["logGroupArn"].endswith(f":log-group:{group}")
    assert described[0]["kmsKeyId"] == "arn:aws:kms:us-east-1:000000000000:key/abc"
    assert described[0]["logGroupClass"] == "STANDARD"
    assert described[0]["storedBytes"] == 0

    for name in ["b", "a", "c"]:
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    error = api_error(
        "ResourceAlreadyExistsException", logs.create_log_stream, logGroupName=group, logStreamName="a"
    )
    assert error.message == "The specified log stream already exists"
    error = api_error(
        "ResourceNotFoundException", logs.create_log_stream,
        logGroupName=group + "-missing", logStreamName="a",
    )
    assert error.message == "The specified log group does not exist."
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["a", "b", "c"]
    put(logs, group, "b", [(now_ms(), "hello")])
    by_time = logs.describe_log_streams(
        logGroupName=group, orderBy="LastEventTime", descending=True
    )["logStreams"]
    assert by_time[0]["logStreamName"] == "b"
    assert by_time[0]["lastEventTimestamp"] > 0
    assert by_time[0]["storedBytes"] == len("hello") + 26
    api_error(
        "InvalidParameterException", logs.describe_log_streams,
        logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="a",
    )

    paginator = logs.get_paginator("describe_log_streams")
    pages = list(paginator.paginate(logGroupName=group, PaginationConfig={"PageSize": 2}))
    assert [[s["logStreamName"] for s in p["logStreams"]] for p in pages] == [["a", "b"], ["c"]]

    logs.delete_log_stream(logGroupName=group, logStreamName="a")
    error = api_error(
        "ResourceNotFoundException", logs.delete_log_stream, logGroupName=group, logStreamName="a"
    )
    assert error.message == "The specified log stream does not exist."
    logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    # A group created again under the same name starts empty.
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="b")
    assert logs.get_log_events(logGroupName=group, logStreamName="b")["events"] == []


def test_describe_log_groups_pages_and_patterns(logs: Any) -> None:
    base = "/berth/" + unique_name("pages")
    names = [f"{base}/{i:02d}" for i in range(7)]
    for name in names:
        logs.create_log_group(logGroupName=name)
    paginator = logs.get_paginator("describe_log_groups")
    pages = list(paginator.paginate(logGroupNamePrefix=base, PaginationConfig={"PageSize": 3}))
    assert [len(p["logGroups"]) for p in pages] == [3, 3, 1]
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == names
    found = logs.describe_log_groups(logGroupNamePattern=base.split("/")[-1].upper())["logGroups"]
    assert len(found) == 7
    api_error(
        "InvalidParameterException", logs.describe_log_groups,
        logGroupNamePrefix=base, logGroupNamePattern="x",
    )


def test_events_come_back_complete_in_order_with_aws_tokens(logs: Any) -> None:
    group, stream = make_stream(logs, "events")
    start = now_ms() - 60_000
    sent = [(start + i // 3, f"line {i:05d}") for i in range(2500)]
    for offset in range(0, len(sent), 1000):
        response = put(logs, group, stream, sent[offset:offset + 1000])
        assert "rejectedLogEventsInfo" not in response
        assert response["nextSequenceToken"]

    # From the head until the forward token comes back unchanged.
    got: list[str] = []
    kwargs: dict[str, Any] = {"startFromHead": True, "limit": 700}
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, **kwargs)
        got.extend(e["message"] for e in page["events"])
        assert page["nextForwardToken"].startswith("f/")
        assert page["nextBackwardToken"].startswith("b/")
        if kwargs.get("nextToken") == page["nextForwardToken"]:
            break
        kwargs["nextToken"] = page["nextForwardToken"]
    assert got == [m for _, m in sent]

    # The default read is the latest events, oldest first; backward tokens page back.
    latest = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=100)
    assert [e["message"] for e in latest["events"]] == [m for _, m in sent[-100:]]
    previous = logs.get_log_events(
        logGroupName=group, logStreamName=stream, limit=100, nextToken=latest["nextBackwardToken"]
    )
    assert [e["message"] for e in previous["events"]] == [m for _, m in sent[-200:-100]]

    window = logs.get_log_events(
        logGroupName=group, logStreamName=stream, startTime=start + 10, endTime=start + 12,
        startFromHead=True,
    )["events"]
    assert [e["message"] for e in window] == [m for t, m in sent if start + 10 <= t < start + 12]
    assert all(e["ingestionTime"] >= e["timestamp"] for e in window)

    api_error(
        "InvalidParameterException", logs.get_log_events,
        logGroupName=group, logStreamName=stream, nextToken="f/garbage",
    )
    error = api_error(
        "ResourceNotFoundException", logs.get_log_events, logGroupName=group, logStreamName="nope"
    )
    assert error.message == "The specified log stream does not exist."


def test_put_log_events_limits(logs: Any) -> None:
    group, stream = make_stream(logs, "limits")
    now = now_ms()
    error = api_error(
        "InvalidParameterException", put, logs, group, stream, [(now, "b"), (now - 1, "a")]
    )
    assert error.message == "Log events in a single PutLogEvents request must be in chronological order."
    error = api_error(
        "InvalidParameterException", put, logs, group, stream,
        [(now - 25 * 3_600_000, "a"), (now, "b")],
    )
    assert "cannot span more than 24 hours" in error.message
    error = api_error(
        "InvalidParameterException", put, logs, group, stream,
        [(now, "x" * 600_000), (now, "y" * 600_000)],
    )
    assert error.message.startswith("Upload too large: 1200052 bytes exceeds limit of 1048576")
    # Exactly the limit is fine: 10,000 events of 78 bytes + 26 each = 1,040,000.
    full = [(now, f"{i:078d}") for i in range(10_000)]
    put(logs, group, stream, full)
    error = api_error(
        "InvalidParameterException", logs.put_log_events,
        logGroupName=group, logStreamName=stream,
        logEvents=[{"timestamp": now, "message": "m"}] * 10_001,
    )
    assert "Member must have length less than or equal to 10000" in error.message

    # A batch spans at most 24 hours, so too old and too new come in two.
    response = put(logs, group, stream, [(now - 15 * DAY_MS, "too old"), (now - 15 * DAY_MS + 1, "too old")])
    assert response["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2}
    response = put(logs, group, stream, [(now, "fine"), (now + 3 * 3_600_000, "too new")])
    assert response["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    # A sequence token is accepted and ignored, as on AWS today.
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, sequenceToken="whatever",
        logEvents=[{"timestamp": now, "message": "with a token"}],
    )
    error = api_error(
        "ResourceNotFoundException", put, logs, group, "missing", [(now, "x")]
    )
    assert error.message == "The specified log stream does not exist."


def test_filter_log_events_patterns_and_paging(logs: Any) -> None:
    group = "/berth/" + unique_name("filter")
    logs.create_log_group(logGroupName=group)
    for name in ["app-1", "app-2", "web"]:
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    t = now_ms() - 10_000
    put(logs, group, "app-1", [
        (t, "ERROR disk full"), (t + 2, "INFO all good"),
        (t + 4, '{"level": "error", "latency": 250}'),
    ])
    put(logs, group, "app-2", [
        (t + 1, "ERROR timeout talking to db"), (t + 3, "WARN slow"),
        (t + 5, '{"level": "info", "latency": 20}'),
    ])
    put(logs, group, "web", [(t + 6, '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 404 2326')])

    def messages(**kwargs: Any) -> list[str]:
        paginator = logs.get_paginator("filter_log_events")
        return [
            e["message"]
            for page in paginator.paginate(logGroupName=group, **kwargs)
            for e in page["events"]
        ]

    assert messages(filterPattern="ERROR") == ["ERROR disk full", "ERROR timeout talking to db"]
    assert messages(filterPattern="ERROR -timeout") == ["ERROR disk full"]
    assert messages(filterPattern="?WARN ?INFO") == ["INFO all good", "WARN slow"]
    assert messages(filterPattern='"talking to"') == ["ERROR timeout talking to db"]
    assert messages(filterPattern='{ $.level = "error" }') == ['{"level": "error", "latency": 250}']
    assert messages(filterPattern="{ $.latency > 100 }") == ['{"level": "error", "latency": 250}']
    assert messages(filterPattern="[ip, identity, user, timestamp, request, status_code = 4*, bytes]") == [
        '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.0" 404 2326'
    ]
    assert messages(logStreamNamePrefix="app-", filterPattern="ERROR") == [
        "ERROR disk full", "ERROR timeout talking to db",
    ]
    assert messages(logStreamNames=["app-2"], startTime=t + 2) == ['WARN slow', '{"level": "info", "latency": 20}']

    # Interleaved across streams, one event per page.
    paginator = logs.get_paginator("filter_log_events")
    pages = list(paginator.paginate(logGroupName=group, PaginationConfig={"PageSize": 1}))
    events = [e for p in pages for e in p["events"]]
    assert [e["timestamp"] for e in events] == [t + i for i in range(7)]
    assert len({e["eventId"] for e in events}) == 7
    assert events[1]["logStreamName"] == "app-2"
    api_error(
        "InvalidParameterException", logs.filter_log_events,
        logGroupName=group, logStreamNames=["web"], logStreamNamePrefix="w",
    )
    api_error(
        "InvalidParameterException", logs.filter_log_events,
        logGroupName=group, filterPattern='{ $.level = }',
    )


def test_retention_hides_and_rejects_expired_events(logs: Any) -> None:
    group, stream = make_stream(logs, "retention")
    now = now_ms()
    put(logs, group, stream, [(now - 10 * DAY_MS, "ten days old")])
    put(logs, group, stream, [(now - 2 * DAY_MS, "two days old")])
    put(logs, group, stream, [(now, "today")])
    error = api_error("InvalidParameterException", logs.put_retention_policy, logGroupName=group, retentionInDays=2)
    assert "Member must satisfy enum value set: [1, 3, 5, 7, 14," in error.message
    logs.put_retention_policy(logGroupName=group, retentionInDays=7)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 7
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["two days old", "today"]
    assert [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]] == [
        "two days old", "today",
    ]
    response = put(logs, group, stream, [(now - 7 * DAY_MS - 60_000, "expired"), (now - 7 * DAY_MS + 60_000, "kept")])
    assert response["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 1}
    logs.delete_retention_policy(logGroupName=group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]


def test_tags_and_metric_filters(logs: Any) -> None:
    group = "/berth/" + unique_name("tags")
    logs.create_log_group(logGroupName=group, tags={"a": "1"})
    arn = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["logGroupArn"]
    logs.tag_resource(resourceArn=arn, tags={"b": "2"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"a": "1", "b": "2"}
    logs.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"b": "2"}
    logs.tag_log_group(logGroupName=group, tags={"c": "3"})
    logs.untag_log_group(logGroupName=group, tags=["b"])
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"c": "3"}
    api_error("ResourceNotFoundException", logs.list_tags_for_resource, resourceArn=arn + "-nope")

    transformation = {"metricName": "Errors", "metricNamespace": "App", "metricValue": "1", "defaultValue": 0.0}
    logs.put_metric_filter(
        logGroupName=group, filterName="errors", filterPattern="ERROR",
        metricTransformations=[transformation],
    )
    filters = logs.describe_metric_filters(logGroupName=group)["metricFilters"]
    assert filters[0]["filterName"] == "errors"
    assert filters[0]["filterPattern"] == "ERROR"
    assert filters[0]["metricTransformations"] == [transformation]
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["metricFilterCount"] == 1
    by_metric = logs.describe_metric_filters(metricName="Errors", metricNamespace="App")["metricFilters"]
    assert any(f["logGroupName"] == group for f in by_metric)
    api_error(
        "InvalidParameterException", logs.put_metric_filter,
        logGroupName=group, filterName="bad", filterPattern="{ $.x = ",
        metricTransformations=[transformation],
    )
    tested = logs.test_metric_filter(
        filterPattern="[ip, user, status = 404]",
        logEventMessages=["1.2.3.4 bob 404", "1.2.3.4 bob 200"],
    )["matches"]
    assert [m["eventNumber"] for m in tested] == [1]
    logs.delete_metric_filter(logGroupName=group, filterName="errors")
    error = api_error(
        "ResourceNotFoundException", logs.delete_metric_filter, logGroupName=group, filterName="errors"
    )
    assert error.message == "The specified metric filter does not exist."


def test_the_aws_cli_reads_and_writes_logs(server: BerthServer, cli_home: Path) -> None:
    group = "/berth/" + unique_name("cli")
    server.aws("logs", "create-log-group", "--log-group-name", group, home=cli_home)
    server.aws(
        "logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "s", home=cli_home
    )
    events = json.dumps([{"timestamp": now_ms(), "message": f"cli {i}"} for i in range(3)])
    server.aws(
        "logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "s",
        "--log-events", events, home=cli_home,
    )
    got = server.aws(
        "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "s",
        "--start-from-head", home=cli_home,
    ).json()
    assert [e["message"] for e in got["events"]] == ["cli 0", "cli 1", "cli 2"]
    filtered = server.aws(
        "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", '"cli 1"',
        home=cli_home,
    ).json()
    assert [e["message"] for e in filtered["events"]] == ["cli 1"]
    groups = server.aws("logs", "describe-log-groups", "--log-group-name-prefix", group, home=cli_home).json()
    assert groups["logGroups"][0]["logGroupName"] == group
    missing = server.aws(
        "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "nope",
        home=cli_home, check=False,
    )
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr


def test_acknowledged_events_survive_kill_9(make_server: Any) -> None:
    server: BerthServer = make_server()
    logs = server.client(service="logs")
    group, stream = make_stream(logs, "durable")
    acknowledged: list[list[str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        client = server.client(service="logs", fresh=True)
        name = f"w{worker}"
        client.create_log_stream(logGroupName=group, logStreamName=name)
        batch = 0
        while not stop.is_set():
            messages = [f"w{worker} b{batch} e{i}" for i in range(200)]
            try:
                client.put_log_events(
                    logGroupName=group, logStreamName=name,
                    logEvents=[{"timestamp": now_ms(), "message": m} for m in messages],
                )
            except (ClientError, BotoCoreError):
                return
            with lock:
                acknowledged.append(messages)
            batch += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(acknowledged) >= 40:
                break
        time.sleep(0.01)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join()
    with lock:
        assert len(acknowledged) >= 40, "too few batches were acknowledged before the kill"
        expected = {m for batch in acknowledged for m in batch}
    server.start()
    logs = server.client(service="logs", fresh=True)
    stored: set[str] = set()
    for worker in range(4):
        kwargs: dict[str, Any] = {"startFromHead": True}
        while True:
            page = logs.get_log_events(logGroupName=group, logStreamName=f"w{worker}", **kwargs)
            stored.update(e["message"] for e in page["events"])
            if kwargs.get("nextToken") == page["nextForwardToken"]:
                break
            kwargs["nextToken"] = page["nextForwardToken"]
    missing = expected - stored
    assert not missing, f"{len(missing)} acknowledged events were lost, e.g. {sorted(missing)[:3]}"
    # Writing continues after the restart.
    put(logs, group, stream, [(now_ms(), "after restart")])


def live_tail_client(server: BerthServer) -> Any:
    """A Logs client that sends StartLiveTail to the endpoint itself: AWS's
    SDKs prefix the host with `stream-` for it unless host prefix injection
    is off (`AWS_DISABLE_HOST_PREFIX_INJECTION=true` does the same)."""
    access_key, secret_key = server.credentials()
    return boto3.session.Session().client(
        "logs",
        region_name="us-east-1",
        endpoint_url=server.endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(inject_host_prefix=False, retries={"total_max_attempts": 1}),
    )


def test_live_tail_streams_new_events_as_cloudwatch_does(server: BerthServer, logs: Any) -> None:
    group, _ = make_stream(logs, "tail")
    logs.create_log_stream(logGroupName=group, logStreamName="web/1")
    logs.create_log_stream(logGroupName=group, logStreamName="db/1")
    arn = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["logGroupArn"]
    tail = live_tail_client(server)

    response = tail.start_live_tail(
        logGroupIdentifiers=[arn], logStreamNamePrefixes=["web/"], logEventFilterPattern="-DEBUG"
    )
    stream = response["responseStream"]
    events = iter(stream)
    start = next(events)["sessionStart"]
    assert start["logGroupIdentifiers"] == [arn]
    assert start["logStreamNamePrefixes"] == ["web/"]
    assert start["logEventFilterPattern"] == "-DEBUG"
    assert len(start["sessionId"]) == 36 and start["requestId"]

    t = now_ms()
    put(logs, group, "web/1", [(t, "GET / 200"), (t + 1, "DEBUG noise"), (t + 2, "GET /x 404")])
    put(logs, group, "db/1", [(t, "not this stream")])
    seen: list[dict[str, Any]] = []
    updates = 0
    began = time.monotonic()
    for event in events:
        update = event["sessionUpdate"]
        updates += 1
        assert update["sessionMetadata"] == {"sampled": False}
        seen.extend(update["sessionResults"])
        if len(seen) >= 2 or updates >= 5:
            break
    assert time.monotonic() - began < 5
    assert [e["message"] for e in seen] == ["GET / 200", "GET /x 404"]
    account = arn.split(":")[4]
    assert {e["logGroupIdentifier"] for e in seen} == {f"{account}:{group}"}
    assert {e["logStreamName"] for e in seen} == {"web/1"}
    assert [e["timestamp"] for e in seen] == [t, t + 2]
    assert all(e["ingestionTime"] >= t - 1000 for e in seen)
    # An idle second still brings an (empty) update.
    assert next(events)["sessionUpdate"]["sessionResults"] == []
    stream.close()


def test_live_tail_refuses_what_aws_refuses(server: BerthServer, logs: Any) -> None:
    group, _ = make_stream(logs, "tailbad")
    tail = live_tail_client(server)
    error = api_error(
        "ResourceNotFoundException", tail.start_live_tail, logGroupIdentifiers=[group + "-missing"]
    )
    assert error.message == "The specified log group does not exist."
    error = api_error(
        "InvalidParameterException", tail.start_live_tail,
        logGroupIdentifiers=[group], logStreamNames=["a"], logStreamNamePrefixes=["b"],
    )
    assert error.message == "Cannot specify both logStreamNames and logStreamNamePrefixes."
    error = api_error(
        "InvalidParameterException", tail.start_live_tail,
        logGroupIdentifiers=[group] * 11,
    )
    assert "Member must have length less than or equal to 10" in error.message


def wait_for_query(logs: Any, query_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        got = logs.get_query_results(queryId=query_id)
        if got["status"] not in ("Scheduled", "Running"):
            return got
        assert time.monotonic() < deadline, f"query {query_id} is still {got['status']}"
        time.sleep(0.05)


def fields_of(results: dict[str, Any]) -> list[dict[str, str]]:
    return [{f["field"]: f["value"] for f in row} for row in results["results"]]


def test_insights_query_results_log_records_and_descriptions(logs: Any) -> None:
    group, stream = make_stream(logs, "query")
    t = now_ms()
    error_json = json.dumps({"level": "ERROR", "user": {"id": "u1"}})
    put(logs, group, stream, [(t - 3000, "INFO start"), (t - 2000, error_json), (t - 1000, "ERROR disk full")])
    now_s = t // 1000
    query_id = logs.start_query(
        logGroupName=group, startTime=now_s - 600, endTime=now_s + 60,
        queryString="fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc",
    )["queryId"]
    assert len(query_id) == 36
    got = wait_for_query(logs, query_id)
    assert got["status"] == "Complete"
    assert "encryptionKey" not in got
    rows = fields_of(got)
    assert [r["@message"] for r in rows] == ["ERROR disk full", error_json]
    assert got["statistics"]["recordsScanned"] == 3.0
    assert got["statistics"]["recordsMatched"] == 2.0

    record = logs.get_log_record(logRecordPointer=rows[1]["@ptr"])["logRecord"]
    assert record["@message"] == error_json
    assert record["@timestamp"] == str(t - 2000)
    assert record["@logStream"] == stream
    assert record["@log"].endswith(":" + group)
    assert (record["level"], record["user.id"]) == ("ERROR", "u1")

    stats_id = logs.start_query(
        logGroupNames=[group], startTime=now_s - 600, endTime=now_s + 60,
        queryString="stats count(*) as n", limit=5,
    )["queryId"]
    assert fields_of(wait_for_query(logs, stats_id)) == [{"n": "3"}]
    described = logs.describe_queries(logGroupName=group)["queries"]
    assert {q["queryId"] for q in described} == {query_id, stats_id}
    assert all(q["status"] == "Complete" and q["logGroupName"] == group for q in described)
    assert {q["queryString"] for q in described} >= {"stats count(*) as n"}
    complete = logs.describe_queries(logGroupName=group, status="Cancelled")["queries"]
    assert complete == []


def test_insights_query_errors_are_aws_errors(logs: Any) -> None:
    group, _ = make_stream(logs, "queryerr")
    now_s = now_ms() // 1000
    window = {"startTime": now_s - 600, "endTime": now_s}
    error = api_error(
        "MalformedQueryException", logs.start_query,
        logGroupName=group, queryString="fields @message | bogus", **window,
    )
    assert "bogus" in error.message
    try:
        logs.start_query(logGroupName=group, queryString="fields @message | bogus", **window)
    except ClientError as raised:
        location = raised.response["queryCompileError"]["location"]
        assert location == {"startCharOffset": 18, "endCharOffset": 23}
    error = api_error(
        "ResourceNotFoundException", logs.start_query,
        logGroupName=group + "-missing", queryString="fields @message", **window,
    )
    assert error.message == "The specified log group does not exist."
    error = api_error(
        "InvalidParameterException", logs.start_query,
        logGroupName=group, logGroupNames=[group], queryString="fields @message", **window,
    )
    assert "exactly one of" in error.message
    error = api_error(
        "InvalidParameterException", logs.start_query,
        logGroupName=group, queryString="SELECT 1", queryLanguage="SQL", **window,
    )
    assert "CWLI" in error.message
    error = api_error("ResourceNotFoundException", logs.get_query_results, queryId="nope")
    assert error.message == "Query does not exist."
    query_id = logs.start_query(logGroupName=group, queryString="fields @message", **window)["queryId"]
    wait_for_query(logs, query_id)
    error = api_error("InvalidParameterException", logs.stop_query, queryId=query_id)
    assert "is not running" in error.message
    api_error("InvalidParameterException", logs.get_log_record, logRecordPointer="garbage")


def test_the_aws_cli_starts_a_query(server: BerthServer, logs: Any, cli_home: Path) -> None:
    group, stream = make_stream(logs, "querycli")
    t = now_ms()
    put(logs, group, stream, [(t - 1000, "cli one"), (t - 500, "cli two")])
    now_s = t // 1000
    started = server.aws(
        "logs", "start-query", "--log-group-name", group,
        "--start-time", str(now_s - 600), "--end-time", str(now_s + 60),
        "--query-string", "fields @message | sort @timestamp asc", home=cli_home,
    ).json()
    got = wait_for_query(logs, started["queryId"])
    assert [r["@message"] for r in fields_of(got)] == ["cli one", "cli two"]
    cli_results = server.aws(
        "logs", "get-query-results", "--query-id", started["queryId"], home=cli_home,
    ).json()
    assert cli_results["status"] == "Complete"
    assert len(cli_results["results"]) == 2
