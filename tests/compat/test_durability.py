"""Acknowledged writes survive SIGKILL.

Threads register task definitions (all in one family, so revisions are
contended) and create clusters as fast as they can; once enough calls have
been acknowledged the server is killed with SIGKILL mid-burst, restarted on
the same data directory, and every call that got HTTP 200 must be there with
the content that was sent. Revisions must never have been handed out twice,
and are not reused after the restart."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from berth_harness import BerthServer, cluster_arn, unique_name

THREADS = 8
ACKS_BEFORE_KILL = 400
BURST_DEADLINE_S = 30.0


@dataclass
class Burst:
    family: str
    revisions: list[tuple[int, str]] = field(default_factory=list)  # (revision, image)
    clusters: list[str] = field(default_factory=list)
    errors_before_kill: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    killed: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def acknowledged(self) -> int:
        with self.lock:
            return len(self.revisions) + len(self.clusters)


def hammer(burst: Burst, client, worker: int) -> None:
    sequence = 0
    while not burst.stop.is_set():
        sequence += 1
        image = f"registry.local/burst:w{worker}-s{sequence}"
        cluster_name = f"{burst.family}-w{worker}-s{sequence}"
        try:
            response = client.register_task_definition(
                family=burst.family,
                containerDefinitions=[{"name": "main", "image": image, "memory": 64}],
            )
            with burst.lock:
                burst.revisions.append((response["taskDefinition"]["revision"], image))
            client.create_cluster(clusterName=cluster_name)
            with burst.lock:
                burst.clusters.append(cluster_name)
        except ClientError as error:
            # A real HTTP response: while the server is alive this is a bug
            # (e.g. a database-busy 500 under concurrency).
            if not burst.killed.is_set():
                with burst.lock:
                    burst.errors_before_kill.append(str(error))
            return
        except BotoCoreError:
            return  # connection refused or reset: the server is gone
        except Exception as error:  # a malformed response is a bug too
            if not burst.killed.is_set():
                with burst.lock:
                    burst.errors_before_kill.append(repr(error))
            return


def assert_acknowledged_writes_stored(ecs, burst: Burst) -> None:
    """Every registration and cluster the burst got HTTP 200 for is there, as sent."""
    for revision, image in burst.revisions:
        definition = ecs.describe_task_definition(taskDefinition=f"{burst.family}:{revision}")["taskDefinition"]
        assert definition["status"] == "ACTIVE"
        assert definition["containerDefinitions"][0]["image"] == image, revision

    for start in range(0, len(burst.clusters), 100):
        batch = burst.clusters[start:start + 100]
        described = ecs.describe_clusters(clusters=batch)
        assert described["failures"] == [], described["failures"][:5]
        assert sorted(c["clusterArn"] for c in described["clusters"]) == sorted(cluster_arn(n) for n in batch)
        assert {c["status"] for c in described["clusters"]} == {"ACTIVE"}


def test_acknowledged_writes_survive_sigkill(make_server) -> None:
    berth: BerthServer = make_server()
    burst = Burst(family=unique_name("burst"))
    clients = [berth.client(fresh=True) for _ in range(THREADS)]
    threads = [
        threading.Thread(target=hammer, args=(burst, clients[i], i), name=f"burst-{i}", daemon=True)
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + BURST_DEADLINE_S
    while burst.acknowledged() < ACKS_BEFORE_KILL and time.monotonic() < deadline:
        if not any(thread.is_alive() for thread in threads):
            break
        time.sleep(0.01)
    burst.killed.set()
    berth.kill()
    burst.stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), f"{thread.name} did not stop"

    assert burst.errors_before_kill == [], burst.errors_before_kill[:5]
    assert len(burst.revisions) >= 10, f"only {len(burst.revisions)} registrations before the kill"
    revisions = [revision for revision, _ in burst.revisions]
    assert len(revisions) == len(set(revisions)), "a revision was acknowledged twice"

    berth.start()
    ecs = berth.client()
    assert_acknowledged_writes_stored(ecs, burst)

    after = ecs.register_task_definition(
        family=burst.family, containerDefinitions=[{"name": "main", "image": "after", "memory": 64}]
    )["taskDefinition"]["revision"]
    assert after > max(revisions)


def test_state_survives_a_clean_restart(make_server) -> None:
    berth: BerthServer = make_server()
    ecs = berth.client()
    family = unique_name("restart")
    cluster = unique_name("restart")
    ecs.create_cluster(clusterName=cluster, tags=[{"key": "k", "value": "v"}])
    ecs.register_task_definition(family=family, containerDefinitions=[{"name": "m", "image": "i", "memory": 64}])
    ecs.register_task_definition(family=family, containerDefinitions=[{"name": "m", "image": "j", "memory": 64}])
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    ecs.put_account_setting_default(name="containerInsights", value="enabled")
    assert berth.stop() == 0

    berth.start()
    ecs = berth.client()
    described = ecs.describe_clusters(clusters=[cluster], include=["TAGS"])["clusters"][0]
    assert described["status"] == "ACTIVE"
    assert described["tags"] == [{"key": "k", "value": "v"}]
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]["status"] == "INACTIVE"
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 2
    settings = ecs.list_account_settings(name="containerInsights", effectiveSettings=True)["settings"]
    assert [s["value"] for s in settings] == ["enabled"]
