"""`berth server --store etcd://…` on a real 3-member etcd cluster (Debian's
`etcd-server`, three processes on loopback ports, as the README's
"several machines" set-up runs them).

A burst of acknowledged writes goes on while one etcd member is killed with
SIGKILL; then the server itself is killed with SIGKILL and started again on
the two members left: every acknowledged write is there. Then the etcd
leader is killed: the cluster elects another and the server carries on."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

import boto3
import pytest
from botocore.config import Config

from berth_harness import BerthServer, unique_name
from test_durability import THREADS, Burst, assert_acknowledged_writes_stored, hammer

MEMBERS = 3
READY_TIMEOUT_S = 30.0
ACKS_BEFORE_MEMBER_DIES = 150
ACKS_BEFORE_SERVER_DIES = 400
BURST_DEADLINE_S = 60.0


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class EtcdCluster:
    """Three `etcd` processes forming one cluster on loopback ports."""

    def __init__(self, binary: str, root: Path) -> None:
        ports = free_ports(MEMBERS * 2)
        self.client_ports = ports[:MEMBERS]
        self.peer_ports = ports[MEMBERS:]
        self.root = root
        self.binary = binary
        self.processes: list[Optional[subprocess.Popen[bytes]]] = [None] * MEMBERS
        initial = ",".join(f"m{i}=http://127.0.0.1:{self.peer_ports[i]}" for i in range(MEMBERS))
        token = unique_name("berth-etcd")
        for i in range(MEMBERS):
            client = f"http://127.0.0.1:{self.client_ports[i]}"
            peer = f"http://127.0.0.1:{self.peer_ports[i]}"
            command = [
                binary, "--name", f"m{i}", "--data-dir", str(root / f"m{i}"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", token,
                # Elections within about a second once the leader is gone.
                "--heartbeat-interval", "50", "--election-timeout", "500",
            ]
            with open(root / f"m{i}.log", "ab") as log:
                self.processes[i] = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
        for i in range(MEMBERS):
            self.wait_healthy(i)

    def url(self) -> str:
        return "etcd://" + ",".join(f"127.0.0.1:{port}" for port in self.client_ports) + "/berth/"

    def status(self, member: int) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.client_ports[member]}/v3/maintenance/status",
            data=b"{}", method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.load(response)

    def wait_healthy(self, member: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            process = self.processes[member]
            assert process is not None and process.poll() is None, self.log(member)
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.client_ports[member]}/health", timeout=2) as response:
                    if json.load(response).get("health") == "true":
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"etcd member {member} not healthy:\n{self.log(member)}"
            time.sleep(0.1)

    def leader(self) -> int:
        """The index of the member that leads, as the live members say."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            for i, process in enumerate(self.processes):
                if process is None or process.poll() is not None:
                    continue
                try:
                    status = self.status(i)
                except OSError:
                    continue
                if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                    return i
            assert time.monotonic() < deadline, "no etcd member leads"
            time.sleep(0.1)

    def kill(self, member: int) -> None:
        process = self.processes[member]
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def log(self, member: int) -> str:
        return (self.root / f"m{member}.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    binary = shutil.which("etcd")
    if binary is None:
        pytest.fail("the etcd binary is not installed; the README's test command "
                    "(bash scripts/test.sh) installs Debian's etcd-server")
    cluster = EtcdCluster(binary, tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


def retrying_client(berth: BerthServer):
    """An ECS client that retries as the SDKs do by default (standard mode, 3
    attempts): a request in flight to the etcd member that dies gets an
    ambiguous transport error, which Berth cannot resolve and answers with a
    500 ServerException; the SDK sends it again."""
    access_key, secret_key = berth.credentials()
    return boto3.session.Session().client(
        "ecs", region_name="us-east-1", endpoint_url=berth.endpoint,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        config=Config(retries={"total_max_attempts": 3, "mode": "standard"}, max_pool_connections=32))


def wait_for_acks(burst: Burst, threads: list[threading.Thread], count: int) -> None:
    deadline = time.monotonic() + BURST_DEADLINE_S
    while burst.acknowledged() < count and time.monotonic() < deadline:
        if not any(thread.is_alive() for thread in threads):
            break
        time.sleep(0.01)


def test_writes_survive_an_etcd_member_and_the_server_dying(make_server, etcd: EtcdCluster) -> None:
    berth: BerthServer = make_server("--store", etcd.url())
    burst = Burst(family=unique_name("etcd-burst"))
    clients = [retrying_client(berth) for _ in range(THREADS)]
    threads = [threading.Thread(target=hammer, args=(burst, clients[i], i), daemon=True)
               for i in range(THREADS)]
    for thread in threads:
        thread.start()

    # A follower dies mid-burst: the two left are a majority and writes go on.
    wait_for_acks(burst, threads, ACKS_BEFORE_MEMBER_DIES)
    leader = etcd.leader()
    follower = next(i for i in range(MEMBERS) if i != leader)
    etcd.kill(follower)
    before = burst.acknowledged()
    wait_for_acks(burst, threads, ACKS_BEFORE_SERVER_DIES)
    assert burst.acknowledged() > before + 100, "writes stopped when a follower died"

    burst.killed.set()
    berth.kill()
    burst.stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert burst.errors_before_kill == [], burst.errors_before_kill[:5]
    revisions = [revision for revision, _ in burst.revisions]
    assert len(revisions) == len(set(revisions)), "a revision was acknowledged twice"

    # The server starts again on a fresh data directory: its state is in etcd.
    again: BerthServer = make_server("--store", etcd.url())
    assert_acknowledged_writes_stored(again.client(), burst)


def test_the_server_carries_on_when_the_etcd_leader_dies(make_server, etcd: EtcdCluster) -> None:
    berth: BerthServer = make_server("--store", etcd.url())
    ecs = retrying_client(berth)
    family = unique_name("etcd-leader")
    ecs.register_task_definition(family=family, containerDefinitions=[{"name": "m", "image": "a", "memory": 64}])
    etcd.kill(etcd.leader())
    etcd.leader()  # a new one is elected among the two left
    revision = ecs.register_task_definition(
        family=family, containerDefinitions=[{"name": "m", "image": "b", "memory": 64}])["taskDefinition"]["revision"]
    assert revision == 2
    cluster = unique_name("etcd-leader")
    ecs.create_cluster(clusterName=cluster)
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["status"] == "ACTIVE"
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]["containerDefinitions"][0]["image"] == "a"
