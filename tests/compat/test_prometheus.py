"""`GET /metrics` scraped by a real Prometheus (Debian's `prometheus`; scripts/test.sh
installs it): the target comes up without SigV4, and the API request counts
Prometheus stores are exactly the calls made.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

from berth_harness import BerthServer, container, unique_name

SCRAPE_INTERVAL_S = 1
# Prometheus starts in well under a second here; a loaded CI machine gets slack.
READY_TIMEOUT_S = 60
SEEN_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Prometheus:
    """One `prometheus` process scraping `target` every second, with its TSDB,
    config and log in `root`."""

    def __init__(self, binary: str, root: Path, target: str) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = root / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL_S}s\n"
            "scrape_configs:\n"
            "  - job_name: berth\n"
            "    metrics_path: /metrics\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        self.log_path = root / "prometheus.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        return self.api("/api/v1/query", query=expression)["result"]

    def wait_for(self, what: str, probe: Callable[[], Optional[Any]], timeout_s: float) -> Any:
        """Polls `probe` until it returns something other than None."""
        deadline = time.monotonic() + timeout_s
        last_error: Optional[BaseException] = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited with {self.process.returncode}:\n{self.log()}")
            try:
                found = probe()
                if found is not None:
                    return found
            except (OSError, ValueError) as err:  # not listening yet
                last_error = err
            time.sleep(0.2)
        pytest.fail(f"{what} within {timeout_s}s (last error: {last_error}); log:\n{self.log()}")


@pytest.fixture
def prometheus(server: BerthServer, tmp_path: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: scripts/test.sh installs Debian's prometheus")
    host, port = server.host_port
    instance = Prometheus(binary, tmp_path, f"{host}:{port}")
    try:
        yield instance
    finally:
        instance.stop()


def api_requests(prometheus: Prometheus) -> dict[tuple[str, str, str], float]:
    """berth_api_requests_total as Prometheus last scraped it, by (service, operation, code)."""
    return {
        (s["metric"]["service"], s["metric"]["operation"], s["metric"]["code"]): float(s["value"][1])
        for s in prometheus.query('berth_api_requests_total{job="berth"}')
    }


def test_prometheus_scrapes_the_api_request_counts(server: BerthServer, prometheus: Prometheus) -> None:
    ecs = server.client()
    names = [unique_name("prom") for _ in range(2)]
    for name in names:
        ecs.create_cluster(clusterName=name)
    for _ in range(3):
        ecs.list_clusters()
    described = ecs.describe_clusters(clusters=[names[0], unique_name("missing")])
    assert len(described["failures"]) == 1
    family = unique_name("prom")
    ecs.register_task_definition(
        family=family, containerDefinitions=[container(memory=64)]
    )
    # No container instances: one placement decision, not placed.
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.run_task(cluster=names[0], taskDefinition=family)
    unknown = server.raw_request("NoSuchOperation")
    assert unknown.status == 400 and unknown.error_code == "UnknownOperationException"

    def target_up() -> Optional[bool]:
        targets = prometheus.api("/api/v1/targets")["activeTargets"]
        up = [t for t in targets if t["labels"].get("job") == "berth" and t["health"] == "up"]
        return True if up else None

    prometheus.wait_for("the berth target is not up", target_up, READY_TIMEOUT_S)

    def scraped() -> Optional[dict[tuple[str, str, str], float]]:
        counts = api_requests(prometheus)
        return counts if ("ecs", "ListClusters", "200") in counts else None

    counts = prometheus.wait_for("no berth_api_requests_total sample", scraped, SEEN_TIMEOUT_S)
    assert counts[("ecs", "CreateCluster", "200")] == 2, counts
    assert counts[("ecs", "ListClusters", "200")] == 3, counts
    assert counts[("ecs", "DescribeClusters", "200")] == 1, counts
    # An operation no service knows is not a label of its own.
    assert counts[("other", "other", "400")] >= 1, counts
    assert not any(operation == "NoSuchOperation" for _, operation, _ in counts), counts

    # Later calls show up in later scrapes.
    for _ in range(2):
        ecs.list_clusters()

    def five_list_calls() -> Optional[bool]:
        return True if api_requests(prometheus).get(("ecs", "ListClusters", "200")) == 5 else None

    prometheus.wait_for("ListClusters did not reach 5", five_list_calls, SEEN_TIMEOUT_S)

    latency = prometheus.query(
        'berth_api_request_duration_seconds_count{job="berth",service="ecs",operation="CreateCluster"}'
    )
    assert [float(s["value"][1]) for s in latency] == [2.0], latency
    # Berth's own health is there beside the API counts.
    commits = prometheus.query('berth_store_commit_duration_seconds_count{job="berth"}')
    assert commits and float(commits[0]["value"][1]) >= 2, commits
    placements = prometheus.query('berth_placements_total{job="berth"}')
    assert {s["metric"]["result"]: float(s["value"][1]) for s in placements} == {
        "no_container_instances": 1.0
    }, placements
    sessions = prometheus.query('berth_agent_sessions{job="berth"}')
    assert [float(s["value"][1]) for s in sessions] == [0.0], sessions
