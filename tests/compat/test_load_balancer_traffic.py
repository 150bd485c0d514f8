"""Traffic through Berth's Application Load Balancer, set up with boto3's `elbv2`
client only: an `ip` target group whose targets are HTTP servers on this machine,
a load balancer and an HTTP listener forwarding to the group; requests to
http://<DNSName>:<port>/ reach the targets, DescribeTargetHealth reports what
the data plane's health checks saw, and a deregistered target drains."""

from __future__ import annotations

import http.client
import http.server
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
    # (Six in a row: each worker of the proxy takes turns on its own.)
    wait_for("traffic to leave backend-a", lambda: answers(url, 6) == {"200: backend-b": 6}, 5)
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


# ---------------------------------------------------------------------------
# Load balancer and target group attributes in the data plane.


class EchoBackend:
    """An HTTP/1.1 server on 127.0.0.1 that records each request's headers
    (name and value pairs, in order) and answers with its name; `/login`
    also sets the application cookie `SESSION`, `/slow` answers after
    `SLOW_REQUEST_S` seconds and `/health` answers 500 once told to fail."""

    SLOW_REQUEST_S = 4

    def __init__(self, name: str) -> None:
        self.name = name
        # `failing`: health checks get 500s; `erroring`: every other request does.
        self.failing = False
        self.erroring = False
        self.seen: list[list[tuple[str, str]]] = []
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                elif "chunked" in (self.headers.get("Transfer-Encoding") or ""):
                    while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                        self.rfile.read(size + 2)
                    self.rfile.readline()
                if self.path == "/health":
                    status = 500 if backend.failing else 200
                else:
                    backend.seen.append(list(self.headers.items()))
                    status = 500 if backend.erroring else 200
                if self.path == "/slow":
                    time.sleep(EchoBackend.SLOW_REQUEST_S)
                body = backend.name.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if self.path == "/login":
                    self.send_header("Set-Cookie", "SESSION=s1; Path=/")
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def target(self) -> dict[str, Any]:
        return {"Id": "127.0.0.1", "Port": self.port}

    def headers(self, name: str) -> list[str]:
        """The values of header `name` in the last request."""
        return [value for key, value in self.seen[-1] if key.lower() == name.lower()]

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def echo_backends() -> Any:
    pair = (EchoBackend("echo-a"), EchoBackend("echo-b"))
    yield pair
    for backend in pair:
        backend.stop()


def serve(elbv2: Any, backends: list[EchoBackend], *, health_checks: bool = False,
          target_group_attributes: dict[str, str] | None = None) -> tuple[str, str, int]:
    """A load balancer with an HTTP listener forwarding to an `ip` group of
    `backends`: its ARN, the group's ARN and the listener's port, once
    traffic flows."""
    group_arn = elbv2.create_target_group(
        Name=unique_name("tg")[:32], Protocol="HTTP", Port=80, VpcId="vpc-berth",
        TargetType="ip", HealthCheckEnabled=health_checks, HealthCheckPath="/health",
        HealthCheckIntervalSeconds=HEALTH_CHECK_INTERVAL_S, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    if target_group_attributes:
        elbv2.modify_target_group_attributes(TargetGroupArn=group_arn, Attributes=[
            {"Key": key, "Value": value} for key, value in target_group_attributes.items()])
    elbv2.register_targets(TargetGroupArn=group_arn, Targets=[b.target() for b in backends])
    load_balancer_arn = elbv2.create_load_balancer(
        Name=unique_name("lb")[:32])["LoadBalancers"][0]["LoadBalancerArn"]
    port = free_port()
    elbv2.create_listener(
        LoadBalancerArn=load_balancer_arn, Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )
    wait_for("traffic to flow",
             lambda: not any(k.startswith("unreachable") for k in answers(
                 f"http://127.0.0.1:{port}/", 1)), 5)
    return load_balancer_arn, group_arn, port


def set_attributes(elbv2: Any, load_balancer_arn: str, **attributes: str) -> None:
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=load_balancer_arn, Attributes=[
        {"Key": key.replace("__", "."), "Value": value} for key, value in attributes.items()])
    # The data plane follows within moments.
    time.sleep(1.5)


def raw_request(port: int, request: bytes, timeout_s: float = 3) -> tuple[bytes, bool]:
    """Sends `request` on a new connection and reads until the load balancer
    closes it or `timeout_s` passes: the answer and whether it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as connection:
        connection.sendall(request)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
            return answer, True
        except (TimeoutError, socket.timeout):
            return answer, False
        except ConnectionResetError:
            return answer, True


def get_with(port: int, path: str = "/", headers: list[tuple[str, str]] | None = None
             ) -> tuple[int, str, list[tuple[str, str]]]:
    """A GET with exactly `headers` (http.client adds only Accept-Encoding
    when told not to add Host): status, body and response headers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers or []:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode(), response.getheaders()
    finally:
        connection.close()


def test_forwarded_headers_follow_the_load_balancer_attributes(
    elbv2: Any, echo_backends: tuple[EchoBackend, EchoBackend]
) -> None:
    a, _ = echo_backends
    load_balancer_arn, _, port = serve(elbv2, [a])
    headers = [("Host", "example.com"), ("X-Forwarded-For", "192.0.2.9"),
               ("X_Underscore", "1")]

    # ALB's defaults: append the client, the listener's port on the Host
    # (it is not 80), header names not checked.
    assert get_with(port, "/", headers)[:2] == (200, "echo-a")
    assert a.headers("X-Forwarded-For") == ["192.0.2.9, 127.0.0.1"]
    assert a.headers("Host") == [f"example.com:{port}"]
    assert a.headers("X_Underscore") == ["1"]

    set_attributes(elbv2, load_balancer_arn, **{
        "routing.http.xff_client_port.enabled": "true",
        "routing.http.preserve_host_header.enabled": "true",
        "routing.http.drop_invalid_header_fields.enabled": "true",
    })
    assert get_with(port, "/", headers)[:2] == (200, "echo-a")
    [forwarded_for] = a.headers("X-Forwarded-For")
    assert forwarded_for.startswith("192.0.2.9, 127.0.0.1:"), forwarded_for
    assert forwarded_for.rsplit(":", 1)[1].isdigit(), forwarded_for
    assert a.headers("Host") == ["example.com"]
    assert a.headers("X_Underscore") == []

    set_attributes(elbv2, load_balancer_arn, **{
        "routing.http.xff_header_processing.mode": "preserve"})
    get_with(port, "/", headers)
    assert a.headers("X-Forwarded-For") == ["192.0.2.9"]
    get_with(port, "/", [("Host", "example.com")])
    assert a.headers("X-Forwarded-For") == []

    set_attributes(elbv2, load_balancer_arn, **{
        "routing.http.xff_header_processing.mode": "remove"})
    get_with(port, "/", headers)
    assert a.headers("X-Forwarded-For") == []
    assert a.headers("X-Forwarded-Proto") == ["http"]


def test_desync_mitigation_mode_treats_requests_by_classification(
    elbv2: Any, echo_backends: tuple[EchoBackend, EchoBackend]
) -> None:
    a, _ = echo_backends
    load_balancer_arn, _, port = serve(elbv2, [a])
    # A GET with a body: Ambiguous (UndefinedContentLengthSemantics).
    ambiguous = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    # Severe: MultipleTransferEncodingChunked.
    severe = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
              b"0\r\n\r\n")
    # Acceptable: GetHeadZeroContentLength.
    acceptable = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"

    def status_and_close(request: bytes) -> tuple[int, bool]:
        answer, closed = raw_request(port, request)
        assert answer.startswith(b"HTTP/1.1 "), answer
        return int(answer[9:12]), closed and b"connection: close" in answer.lower()

    # Defensive (the default): ambiguous requests are served, then the
    # connection closes; severe ones get a 400.
    assert status_and_close(acceptable) == (200, False)
    assert status_and_close(ambiguous) == (200, True)
    assert status_and_close(severe) == (400, True)

    set_attributes(elbv2, load_balancer_arn, **{
        "routing.http.desync_mitigation_mode": "strictest"})
    assert status_and_close(acceptable) == (400, True)
    assert status_and_close(ambiguous) == (400, True)

    set_attributes(elbv2, load_balancer_arn, **{
        "routing.http.desync_mitigation_mode": "monitor"})
    assert status_and_close(ambiguous) == (200, False)
    assert status_and_close(severe) == (200, False)


H2C_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def test_http2_can_be_turned_off(
    elbv2: Any, echo_backends: tuple[EchoBackend, EchoBackend]
) -> None:
    a, _ = echo_backends
    load_balancer_arn, _, port = serve(elbv2, [a])
    # h2c with prior knowledge: the server's first frame is its SETTINGS.
    answer, _ = raw_request(port, H2C_PREFACE, timeout_s=1)
    assert answer[3:4] == b"\x04", answer

    set_attributes(elbv2, load_balancer_arn, **{"routing.http2.enabled": "false"})
    answer, closed = raw_request(port, H2C_PREFACE, timeout_s=1)
    assert answer[3:4] != b"\x04", answer
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer
    assert get_with(port, "/", [("Host", "x")])[:2] == (200, "echo-a")


def test_the_idle_timeout_bounds_the_wait_for_a_target(
    elbv2: Any, echo_backends: tuple[EchoBackend, EchoBackend]
) -> None:
    a, _ = echo_backends
    load_balancer_arn, _, port = serve(elbv2, [a])
    set_attributes(elbv2, load_balancer_arn, **{"idle_timeout.timeout_seconds": "1"})
    started = time.monotonic()
    status, _, _ = get_with(port, "/slow", [("Host", "x")])
    assert status == 504
    assert time.monotonic() - started < EchoBackend.SLOW_REQUEST_S - 1


def test_app_cookie_stickiness_follows_the_applications_cookie(
    elbv2: Any, echo_backends: tuple[EchoBackend, EchoBackend]
) -> None:
    _, _, port = serve(elbv2, list(echo_backends), target_group_attributes={
        "stickiness.enabled": "true", "stickiness.type": "app_cookie",
        "stickiness.app_cookie.cookie_name": "SESSION",
        "stickiness.app_cookie.duration_seconds": "120",
    })
    # No application cookie, no stickiness cookie: requests are spread.
    status, _, headers = get_with(port, "/", [("Host", "x")])
    assert status == 200 and not [v for k, v in headers if k.lower() == "set-cookie"]
    assert {get_with(port, "/", [("Host", "x")])[1] for _ in range(4)} == {"echo-a", "echo-b"}

    _, owner, headers = get_with(port, "/login", [("Host", "x")])
    cookies = [value for key, value in headers if key.lower() == "set-cookie"]
    assert cookies[0] == "SESSION=s1; Path=/", cookies
    sticky = [c for c in cookies if c.startswith("AWSALBAPP-0=")]
    assert len(sticky) == 1 and sticky[0].endswith("; Max-Age=120; Path=/"), cookies
    value = sticky[0].split(";")[0]
    for _ in range(6):
        assert get_with(port, "/", [("Host", "x"), ("Cookie", f"SESSION=s1; {value}")])[1] \
            == owner


def test_too_few_healthy_targets_fail_open(
    elbv2: Any, echo_backends: tuple[EchoBackend, EchoBackend]
) -> None:
    a, b = echo_backends
    b.failing = True
    _, group_arn, port = serve(elbv2, [a, b], health_checks=True)
    wait_for(
        "echo-a healthy and echo-b unhealthy",
        lambda: (health := health_by_port(elbv2, group_arn))
        and health[a.port]["State"] == "healthy" and health[b.port]["State"] == "unhealthy",
        STATE_CHANGE_TIMEOUT_S,
    )
    url = f"http://127.0.0.1:{port}/"
    assert answers(url, 6) == {"200: echo-a": 6}

    # Two healthy targets are required: with one, the group fails open.
    elbv2.modify_target_group_attributes(TargetGroupArn=group_arn, Attributes=[{
        "Key": "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
        "Value": "2"}])
    wait_for("traffic to reach both targets",
             lambda: set(answers(url, 6)) == {"200: echo-a", "200: echo-b"}, 5)

    # And by percentage: 50% of two is one, met again.
    elbv2.modify_target_group_attributes(TargetGroupArn=group_arn, Attributes=[
        {"Key": "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
         "Value": "1"},
        {"Key": "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
         "Value": "50"}])
    wait_for("traffic to leave echo-b", lambda: answers(url, 6) == {"200: echo-a": 6}, 5)


def test_weighted_random_spreads_requests_over_the_targets(
    elbv2: Any, echo_backends: tuple[EchoBackend, EchoBackend]
) -> None:
    _, _, port = serve(elbv2, list(echo_backends), target_group_attributes={
        "load_balancing.algorithm.type": "weighted_random"})
    seen = answers(f"http://127.0.0.1:{port}/", 40)
    assert set(seen) == {"200: echo-a", "200: echo-b"}, seen


def anomaly_detection_by_port(elbv2: Any, group_arn: str, include: list[str]
                              ) -> dict[int, dict[str, str] | None]:
    described = elbv2.describe_target_health(TargetGroupArn=group_arn, Include=include)
    return {d["Target"]["Port"]: d.get("AnomalyDetection")
            for d in described["TargetHealthDescriptions"]}


def test_automatic_target_weights_mitigate_a_target_answering_500s(elbv2: Any) -> None:
    trio = [EchoBackend(f"atw-{name}") for name in "abc"]
    a, b, c = trio
    try:
        # Health checks pass; c answers every request with a 500.
        c.erroring = True
        _, group_arn, port = serve(elbv2, trio, health_checks=True, target_group_attributes={
            "load_balancing.algorithm.type": "weighted_random",
            "load_balancing.algorithm.anomaly_mitigation": "on"})
        wait_for("the three targets healthy",
                 lambda: all(h["State"] == "healthy"
                             for h in health_by_port(elbv2, group_arn).values()),
                 STATE_CHANGE_TIMEOUT_S)
        url = f"http://127.0.0.1:{port}/"
        before = answers(url, 90)
        assert before["500: atw-c"] >= 15, before

        anomalous = {"Result": "anomalous", "MitigationInEffect": "yes"}
        wait_for("atw-c anomalous, mitigated",
                 lambda: anomaly_detection_by_port(
                     elbv2, group_arn, ["AnomalyDetection"])[c.port] == anomalous, 5)
        for include in (["AnomalyDetection"], ["All"]):
            detection = anomaly_detection_by_port(elbv2, group_arn, include)
            assert detection == {
                a.port: {"Result": "normal", "MitigationInEffect": "no"},
                b.port: {"Result": "normal", "MitigationInEffect": "no"},
                c.port: anomalous,
            }, (include, detection)
        # Only when asked for.
        assert not any("AnomalyDetection" in d for d in elbv2.describe_target_health(
            TargetGroupArn=group_arn)["TargetHealthDescriptions"])

        # Its weight keeps halving (every 500 ms): it gets far fewer requests.
        time.sleep(1.5)
        after = answers(url, 150)
        assert after["500: atw-c"] < 15, after
        assert after["200: atw-a"] > 50 and after["200: atw-b"] > 50, after
    finally:
        for backend in trio:
            backend.stop()


def test_the_server_header_of_the_load_balancers_own_answers_can_be_turned_off(
    elbv2: Any,
) -> None:
    load_balancer_arn = elbv2.create_load_balancer(
        Name=unique_name("lb")[:32])["LoadBalancers"][0]["LoadBalancerArn"]
    port = free_port()
    listener_arn = elbv2.create_listener(
        LoadBalancerArn=load_balancer_arn, Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "fixed"}}],
    )["Listeners"][0]["ListenerArn"]

    def server_header() -> list[str]:
        status, body, headers = get_with(port, "/", [("Host", "x")])
        assert (status, body) == (200, "fixed")
        return [value for key, value in headers if key.lower() == "server"]

    wait_for("the listener", lambda: not any(
        k.startswith("unreachable") for k in answers(f"http://127.0.0.1:{port}/", 1)), 5)
    assert server_header() == ["awselb/2.0"]
    elbv2.modify_listener_attributes(ListenerArn=listener_arn, Attributes=[
        {"Key": "routing.http.response.server.enabled", "Value": "false"}])
    wait_for("the Server header to go", lambda: server_header() == [], 5)


def test_client_connections_close_after_the_keep_alive_duration(
    elbv2: Any, echo_backends: tuple[EchoBackend, EchoBackend]
) -> None:
    """Takes a minute: 60 s is the shortest keep-alive duration ELBv2 accepts."""
    a, _ = echo_backends
    load_balancer_arn, _, port = serve(elbv2, [a])
    set_attributes(elbv2, load_balancer_arn, **{
        "client_keep_alive.seconds": "60", "idle_timeout.timeout_seconds": "120"})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": "x"})
        first = connection.getresponse()
        assert first.read() == b"echo-a"
        assert first.getheader("Connection") is None
        time.sleep(61)
        # The same connection: one more request, answered with Connection: close.
        connection.request("GET", "/", headers={"Host": "x"})
        last = connection.getresponse()
        assert last.read() == b"echo-a"
        assert (last.getheader("Connection") or "").lower() == "close"
        assert connection.sock is None or connection.sock.recv(1) == b""
    finally:
        connection.close()
