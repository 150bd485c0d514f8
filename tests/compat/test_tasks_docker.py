"""Tasks on real Docker: `berth up` (control plane + one agent for this machine
in cluster `default`) driven with boto3 and the AWS CLI, on an image built
locally from Debian's static busybox (no outside registry is reachable), and
images pushed to Berth's own registry (ECR) with the docker CLI.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from berth_harness import BerthServer, berth_binary, unique_name

IMAGE = "berth-test/busybox:latest"
WAIT = {"Delay": 1, "MaxAttempts": 60}


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.fail("Docker is not available: scripts/test.sh installs and starts it")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        busybox = Path("/bin/busybox")
        if not busybox.is_file():
            pytest.fail("/bin/busybox is missing: install Debian's busybox-static")
        context = Path(__file__).parent / ".image-context"
        context.mkdir(exist_ok=True)
        shutil.copy(busybox, context / "busybox")
        (context / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\n'
            "ENV PATH=/bin\nCMD [\"sh\"]\n"
        )
        docker("build", "-q", "-t", IMAGE, str(context))
        shutil.rmtree(context)
    return IMAGE


class BerthNode(BerthServer):
    """`berth up`: the control plane plus this machine's agent."""

    def command(self) -> list[str]:
        command = super().command()
        command[1] = "up"
        return command


@pytest.fixture(scope="module")
def node(image: str, require_berth: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthNode]:
    root = tmp_path_factory.mktemp("berth-node")
    # Lifecycle policies are applied every second rather than every minute.
    berth = BerthNode(
        root / "data", root / "berth.log", extra_args=("--registry-maintenance-interval-seconds", "1")
    ).start()
    ecs = berth.client()
    deadline = time.monotonic() + 30
    while not ecs.list_container_instances(cluster="default")["containerInstanceArns"]:
        # `berth up` creates cluster default before its ready line.
        if time.monotonic() > deadline:
            pytest.fail(f"the agent did not register within 30 s; log:\n{berth.log_since_start()}")
        time.sleep(0.2)
    yield berth
    berth.kill()
    leftovers = docker("ps", "-aq", "--filter", "label=com.amazonaws.ecs.cluster=default", check=False).stdout.split()
    if leftovers:
        docker("rm", "-f", *leftovers, check=False)


@pytest.fixture(scope="module")
def ecs(node: BerthNode) -> Any:
    return node.client()


def register(ecs: Any, containers: list[dict[str, Any]], **extra: Any) -> str:
    family = unique_name("docker")
    response = ecs.register_task_definition(family=family, containerDefinitions=containers, **extra)
    return response["taskDefinition"]["taskDefinitionArn"]


def container(name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "memory": 64, **extra}


def run(ecs: Any, task_definition: str, **extra: Any) -> str:
    response = ecs.run_task(cluster="default", taskDefinition=task_definition, **extra)
    assert response["failures"] == [], response["failures"]
    return response["tasks"][0]["taskArn"]


def describe(ecs: Any, task_arn: str) -> dict[str, Any]:
    return ecs.describe_tasks(cluster="default", tasks=[task_arn])["tasks"][0]


def wait_running(ecs: Any, task_arn: str) -> dict[str, Any]:
    ecs.get_waiter("tasks_running").wait(cluster="default", tasks=[task_arn], WaiterConfig=WAIT)
    return describe(ecs, task_arn)


def wait_stopped(ecs: Any, task_arn: str) -> dict[str, Any]:
    ecs.get_waiter("tasks_stopped").wait(cluster="default", tasks=[task_arn], WaiterConfig=WAIT)
    return describe(ecs, task_arn)


def by_name(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in task["containers"]}


def test_agent_registers_this_machine(ecs: Any) -> None:
    arns = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    instance = ecs.describe_container_instances(cluster="default", containerInstances=arns)["containerInstances"][0]
    assert instance["status"] == "ACTIVE"
    assert instance["agentConnected"] is True
    attributes = {a["name"]: a.get("value") for a in instance["attributes"]}
    assert attributes["ecs.os-type"] == "linux"
    assert "ecs.availability-zone" in attributes
    assert any(name.startswith("com.amazonaws.ecs.capability.docker-remote-api.") for name in attributes)
    registered = {r["name"]: r for r in instance["registeredResources"]}
    assert registered["CPU"]["integerValue"] >= 1024
    assert registered["MEMORY"]["integerValue"] > 0
    assert "22" in registered["PORTS"]["stringSetValue"]
    assert instance["versionInfo"]["dockerVersion"]


def test_port_mapping_is_reachable_and_stop_task_stops_it(ecs: Any) -> None:
    task_definition = register(ecs, [container(
        command=["sh", "-c", "mkdir -p /www && echo hello-berth > /www/index.html && exec httpd -f -p 8080 -h /www"],
        portMappings=[{"containerPort": 8080, "hostPort": 0}],
        environment=[{"name": "GREETING", "value": "hi"}],
    )])
    task_arn = run(ecs, task_definition)
    task = wait_running(ecs, task_arn)
    main = by_name(task)["main"]
    assert main["lastStatus"] == "RUNNING"
    assert main["runtimeId"]
    binding = main["networkBindings"][0]
    assert binding["containerPort"] == 8080 and binding["hostPort"] > 0
    body = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{binding['hostPort']}/", timeout=2).read().decode()
            break
        except OSError:
            time.sleep(0.2)
    assert body.strip() == "hello-berth"
    inspect = json.loads(docker("inspect", main["runtimeId"]).stdout)[0]
    assert "GREETING=hi" in inspect["Config"]["Env"]
    assert inspect["Config"]["Labels"]["com.amazonaws.ecs.task-arn"] == task_arn

    ecs.stop_task(cluster="default", task=task_arn, reason="test is done")
    task = wait_stopped(ecs, task_arn)
    assert task["stopCode"] == "UserInitiated"
    assert task["stoppedReason"] == "test is done"
    for field in ("createdAt", "startedAt", "stoppingAt", "stoppedAt", "pullStartedAt", "pullStoppedAt"):
        assert field in task, field


def test_exit_code_and_essential_container(ecs: Any) -> None:
    task_definition = register(ecs, [
        container("sidecar", essential=False, command=["sh", "-c", "exit 5"]),
        container("main", command=["sh", "-c", "sleep 2; exit 3"]),
    ])
    task = wait_stopped(ecs, run(ecs, task_definition))
    containers = by_name(task)
    assert containers["main"]["exitCode"] == 3
    assert containers["sidecar"]["exitCode"] == 5
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"


def test_depends_on_orders_containers(ecs: Any) -> None:
    task_definition = register(ecs, [
        container("init", essential=False, command=["sh", "-c", "sleep 1; exit 0"]),
        container("app", command=["sleep", "30"], stopTimeout=2, dependsOn=[{"containerName": "init", "condition": "SUCCESS"}]),
    ])
    task_arn = run(ecs, task_definition)
    task = wait_running(ecs, task_arn)
    containers = by_name(task)
    init = json.loads(docker("inspect", containers["init"]["runtimeId"]).stdout)[0]
    app = json.loads(docker("inspect", containers["app"]["runtimeId"]).stdout)[0]
    assert app["State"]["StartedAt"] > init["State"]["FinishedAt"]
    ecs.stop_task(cluster="default", task=task_arn)
    wait_stopped(ecs, task_arn)


def test_health_check_makes_the_task_healthy(ecs: Any) -> None:
    task_definition = register(ecs, [container(
        command=["sleep", "60"], stopTimeout=2,
        healthCheck={"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 2, "startPeriod": 0},
    )])
    task_arn = run(ecs, task_definition)
    wait_running(ecs, task_arn)
    deadline = time.monotonic() + 30
    while describe(ecs, task_arn).get("healthStatus") != "HEALTHY":
        assert time.monotonic() < deadline, describe(ecs, task_arn)
        time.sleep(0.5)
    assert by_name(describe(ecs, task_arn))["main"]["healthStatus"] == "HEALTHY"
    ecs.stop_task(cluster="default", task=task_arn)
    wait_stopped(ecs, task_arn)


def test_stop_timeout_sends_sigkill(ecs: Any) -> None:
    task_definition = register(ecs, [container(command=["sh", "-c", "trap '' TERM; sleep 100"], stopTimeout=2)])
    task_arn = run(ecs, task_definition)
    wait_running(ecs, task_arn)
    started = time.monotonic()
    ecs.stop_task(cluster="default", task=task_arn)
    seen = set()
    while time.monotonic() - started < 10 and "STOPPED" not in seen:
        seen.add(describe(ecs, task_arn)["lastStatus"])
        time.sleep(0.1)
    assert "STOPPING" in seen, seen
    task = wait_stopped(ecs, task_arn)
    assert time.monotonic() - started >= 2
    assert by_name(task)["main"]["exitCode"] == 137


def test_out_of_memory(ecs: Any) -> None:
    task_definition = register(ecs, [container(
        memory=16,
        command=["sh", "-c", "x=a; while true; do x=$x$x; done"],
    )])
    task = wait_stopped(ecs, run(ecs, task_definition))
    main = by_name(task)["main"]
    assert main["exitCode"] == 137
    assert main["reason"] == "OutOfMemoryError: Container killed due to memory usage"


def test_pull_failure_stops_the_task(ecs: Any) -> None:
    task_definition = register(ecs, [{"name": "main", "image": "berth-test/no-such-image:1", "memory": 64}])
    task = wait_stopped(ecs, run(ecs, task_definition))
    assert task["stopCode"] == "TaskFailedToStart"
    assert by_name(task)["main"]["reason"].startswith("CannotPullContainerError:")


def test_cli_waiters(node: BerthNode, ecs: Any, cli_home: Path) -> None:
    task_definition = register(ecs, [container(command=["sleep", "30"], stopTimeout=2)])
    task_arn = run(ecs, task_definition)
    node.aws("ecs", "wait", "tasks-running", "--cluster", "default", "--tasks", task_arn, home=cli_home)
    node.aws("ecs", "stop-task", "--cluster", "default", "--task", task_arn, home=cli_home)
    node.aws("ecs", "wait", "tasks-stopped", "--cluster", "default", "--tasks", task_arn, home=cli_home)
    assert describe(ecs, task_arn)["lastStatus"] == "STOPPED"


def test_restart_readopts_running_containers(node: BerthNode, ecs: Any) -> None:
    task_definition = register(ecs, [container(command=["sleep", "300"], stopTimeout=2)])
    task_arn = run(ecs, task_definition)
    before = by_name(wait_running(ecs, task_arn))["main"]["runtimeId"]
    node.stop()
    assert docker("inspect", "-f", "{{.State.Running}}", before).stdout.strip() == "true"
    node.start()
    ecs = node.client()
    deadline = time.monotonic() + 30
    while True:
        task = describe(ecs, task_arn)
        instances = ecs.describe_container_instances(
            cluster="default", containerInstances=[task["containerInstanceArn"]])["containerInstances"]
        if instances and instances[0]["agentConnected"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert task["lastStatus"] == "RUNNING"
    assert by_name(task)["main"]["runtimeId"] == before
    labelled = docker("ps", "-q", "--filter", f"label=com.amazonaws.ecs.task-arn={task_arn}").stdout.split()
    assert len(labelled) == 1
    ecs.stop_task(cluster="default", task=task_arn)
    wait_stopped(ecs, task_arn)


def test_agents_on_one_engine_survive_a_control_plane_restart(
    image: str, make_server: Any, tmp_path: Path
) -> None:
    """`berth server` plus two `berth agent` processes sharing this Docker
    Engine: a two-instance cluster. The control plane is killed and started
    again under running tasks; the agents reconnect by themselves and nothing
    is lost or duplicated."""
    # A fixed port, so the agents find the control plane again after its restart.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server("--agent-timeout-seconds", "10", listen=f"127.0.0.1:{port}")
    ecs = server.client()
    cluster = unique_name("pair")
    ecs.create_cluster(clusterName=cluster)
    access_key, secret_key = server.credentials()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
    })
    agents = []
    try:
        for zone in ("zone-a", "zone-b"):
            log = open(tmp_path / f"agent-{zone}.log", "wb")
            agents.append(subprocess.Popen(
                [str(berth_binary()), "agent", "--cluster", cluster, "--endpoint", server.endpoint,
                 "--data-dir", str(tmp_path / zone), "--availability-zone", zone, "--attribute", f"slot={zone}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            ))
        deadline = time.monotonic() + 30
        while len(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]) < 2:
            assert time.monotonic() < deadline, "two agents did not register"
            time.sleep(0.2)
        family = unique_name("pair")
        ecs.register_task_definition(family=family, containerDefinitions=[container(command=["sleep", "300"], stopTimeout=2)])
        run_response = ecs.run_task(
            cluster=cluster, taskDefinition=family, count=2,
            placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"}],
        )
        assert run_response["failures"] == []
        arns = [t["taskArn"] for t in run_response["tasks"]]
        ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=arns, WaiterConfig=WAIT)
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
        assert len({t["containerInstanceArn"] for t in tasks}) == 2, "spread over both instances"
        runtime_ids = sorted(c["runtimeId"] for t in tasks for c in t["containers"])

        server.kill()
        # Longer than the agent timeout, so "connected" below means reconnected.
        time.sleep(11)
        server.start()
        ecs = server.client()
        deadline = time.monotonic() + 40
        while True:
            instances = ecs.describe_container_instances(
                cluster=cluster,
                containerInstances=ecs.list_container_instances(cluster=cluster)["containerInstanceArns"],
            )["containerInstances"]
            if len(instances) == 2 and all(i["agentConnected"] for i in instances):
                break
            assert time.monotonic() < deadline, instances
            time.sleep(0.5)
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
        assert [t["lastStatus"] for t in tasks] == ["RUNNING", "RUNNING"]
        assert sorted(c["runtimeId"] for t in tasks for c in t["containers"]) == runtime_ids
        labelled = docker("ps", "-q", "--filter", f"label=com.amazonaws.ecs.cluster={cluster}").stdout.split()
        assert len(labelled) == 2

        for arn in arns:
            ecs.stop_task(cluster=cluster, task=arn)
        ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=arns, WaiterConfig=WAIT)
    finally:
        for agent in agents:
            agent.terminate()
        for agent in agents:
            agent.wait(timeout=30)
        leftovers = docker("ps", "-aq", "--filter", f"label=com.amazonaws.ecs.cluster={cluster}", check=False).stdout.split()
        if leftovers:
            docker("rm", "-f", *leftovers, check=False)


def test_a_running_task_keeps_and_changes_its_tags(node: BerthNode) -> None:
    # A client of its own: an earlier test restarts the node, which may then listen elsewhere.
    ecs = node.client()
    task_definition = register(ecs, [container(command=["sleep", "300"], stopTimeout=2)],
                               tags=[{"key": "team", "value": "core"}])
    task_arn = run(ecs, task_definition, propagateTags="TASK_DEFINITION", enableECSManagedTags=True,
                   tags=[{"key": "job", "value": "tags"}])
    wait_running(ecs, task_arn)
    # The agent's reports rewrote the task; its tags are still there.
    expected = {("team", "core"), ("job", "tags"), ("aws:ecs:clusterName", "default")}

    def tags_now() -> set[tuple[str, str]]:
        listed = ecs.list_tags_for_resource(resourceArn=task_arn)["tags"]
        described = ecs.describe_tasks(cluster="default", tasks=[task_arn], include=["TAGS"])["tasks"][0]
        assert {(t["key"], t["value"]) for t in described["tags"]} == {(t["key"], t["value"]) for t in listed}
        return {(t["key"], t["value"]) for t in listed}

    assert tags_now() == expected
    ecs.tag_resource(resourceArn=task_arn, tags=[{"key": "phase", "value": "running"}])
    ecs.untag_resource(resourceArn=task_arn, tagKeys=["job"])
    expected = {("team", "core"), ("phase", "running"), ("aws:ecs:clusterName", "default")}
    assert tags_now() == expected
    # Tagging is no state change: the task keeps running, and stops normally.
    assert describe(ecs, task_arn)["lastStatus"] == "RUNNING"
    ecs.stop_task(cluster="default", task=task_arn)
    assert wait_stopped(ecs, task_arn)["lastStatus"] == "STOPPED"
    assert tags_now() == expected


# ----- the awslogs log driver ------------------------------------------------------


def awslogs(group: str, prefix: str = "app", **options: str) -> dict[str, Any]:
    return {"logDriver": "awslogs", "options": {
        "awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": prefix, **options,
    }}


def read_stream(logs: Any, group: str, stream: str) -> list[dict[str, Any]]:
    """Every event of the stream, from the head, following the forward token to its end."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"startFromHead": True}
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName=stream, **kwargs)
        events.extend(page["events"])
        if kwargs.get("nextToken") == page["nextForwardToken"]:
            return events
        kwargs["nextToken"] = page["nextForwardToken"]


def wait_for_events(logs: Any, group: str, stream: str, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            events = read_stream(logs, group, stream)
        except logs.exceptions.ResourceNotFoundException:
            events = []
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def task_id(task_arn: str) -> str:
    return task_arn.rsplit("/", 1)[1]


def test_awslogs_delivers_stdout_and_stderr_complete_and_in_order(node: BerthNode) -> None:
    ecs, logs = node.client(), node.client(service="logs")
    group = "/ecs/" + unique_name("awslogs")
    logs.create_log_group(logGroupName=group)
    script = 'for i in $(seq 1 1500); do echo "out $i"; echo "err $i" >&2; done'
    task_definition = register(ecs, [container(
        name="web", command=["sh", "-c", script], logConfiguration=awslogs(group, "app"),
    )])
    task_arn = run(ecs, task_definition)
    # The task definition and DescribeTasks say where the container writes;
    # the stream is named <prefix>/<container name>/<task id>, as on ECS.
    stream = f"app/web/{task_id(task_arn)}"
    task = wait_stopped(ecs, task_arn)
    assert by_name(task)["web"]["exitCode"] == 0
    events = wait_for_events(logs, group, stream, 3000)
    messages = [e["message"] for e in events]
    assert [m for m in messages if m.startswith("out ")] == [f"out {i}" for i in range(1, 1501)]
    assert [m for m in messages if m.startswith("err ")] == [f"err {i}" for i in range(1, 1501)]
    assert len(messages) == 3000
    timestamps = [e["timestamp"] for e in events]
    assert timestamps == sorted(timestamps)
    described = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in described] == [stream]


def test_awslogs_latency_and_multiline_events(node: BerthNode) -> None:
    ecs, logs = node.client(), node.client(service="logs")
    group = "/ecs/" + unique_name("multiline")
    logs.create_log_group(logGroupName=group)
    script = (
        "echo 'INFO starting'; "
        "printf 'ERROR boom\\n  at a.b(C.java:1)\\n  at d.e(F.java:2)\\n'; "
        "echo 'INFO done'; sleep 30"
    )
    task_definition = register(ecs, [container(
        name="app", command=["sh", "-c", script], stopTimeout=2,
        logConfiguration=awslogs(group, "ml", **{"awslogs-multiline-pattern": "^(INFO|ERROR)"}),
    )])
    task_arn = run(ecs, task_definition)
    wait_running(ecs, task_arn)
    stream = f"ml/app/{task_id(task_arn)}"
    # The last event is sent once the next one starts or the container goes
    # quiet; all three arrive while the container is still running.
    events = wait_for_events(logs, group, stream, 3, timeout_s=15)
    # As Docker's awslogs driver sends them: with a multiline pattern every
    # line of an event is followed by a newline.
    assert [e["message"] for e in events] == [
        "INFO starting\n",
        "ERROR boom\n  at a.b(C.java:1)\n  at d.e(F.java:2)\n",
        "INFO done\n",
    ]
    assert describe(ecs, task_arn)["lastStatus"] == "RUNNING"
    ecs.stop_task(cluster="default", task=task_arn)
    wait_stopped(ecs, task_arn)


def test_awslogs_group_must_exist_unless_create_group(node: BerthNode) -> None:
    ecs, logs = node.client(), node.client(service="logs")
    missing = "/ecs/" + unique_name("missing")
    task_definition = register(ecs, [container(
        name="app", command=["echo", "hi"], logConfiguration=awslogs(missing),
    )])
    task = wait_stopped(ecs, run(ecs, task_definition))
    reason = by_name(task)["app"]["reason"]
    assert reason.startswith("CannotStartContainerError:"), reason
    assert "ResourceNotFoundException" in reason and "log group does not exist" in reason, reason

    created = "/ecs/" + unique_name("created")
    task_definition = register(ecs, [container(
        name="app", command=["echo", "hello from a new group"],
        logConfiguration=awslogs(created, **{"awslogs-create-group": "true"}),
    )])
    task_arn = run(ecs, task_definition)
    wait_stopped(ecs, task_arn)
    events = wait_for_events(logs, created, f"app/app/{task_id(task_arn)}", 1)
    assert [e["message"] for e in events] == ["hello from a new group"]


def test_awslogs_loses_and_doubles_nothing_across_a_kill_9(node: BerthNode) -> None:
    """`berth up` (control plane and agent) is killed with SIGKILL while a
    container writes, and started again: every line arrives exactly once."""
    ecs, logs = node.client(), node.client(service="logs")
    group = "/ecs/" + unique_name("kill9")
    logs.create_log_group(logGroupName=group)
    script = 'i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo "line $i"; usleep 2000; done'
    task_definition = register(ecs, [container(
        name="app", command=["sh", "-c", script], logConfiguration=awslogs(group, "k"),
    )])
    task_arn = run(ecs, task_definition)
    wait_running(ecs, task_arn)
    stream = f"k/app/{task_id(task_arn)}"
    assert wait_for_events(logs, group, stream, 200)
    node.kill()
    time.sleep(1)
    node.start()
    ecs, logs = node.client(), node.client(service="logs")
    wait_stopped(ecs, task_arn)
    events = wait_for_events(logs, group, stream, 3000, timeout_s=60)
    assert [e["message"] for e in events] == [f"line {i}" for i in range(1, 3001)]


# ----- ECR: docker login, push and pull; tasks running pushed images -------------


def build_layered_image(tag: str, marker: str) -> None:
    """A three-layer image on the busybox base: two files and a config change."""
    context = Path(__file__).parent / f".ecr-context-{marker}"
    context.mkdir(exist_ok=True)
    try:
        (context / "marker").write_text(marker)
        (context / "big").write_bytes(os.urandom(512 * 1024))
        (context / "Dockerfile").write_text(
            f"FROM {IMAGE}\nCOPY marker /marker\nCOPY big /big\nENV MARKER={marker}\n"
            'CMD ["sh", "-c", "cat /marker; sleep 3600"]\n'
        )
        docker("build", "-q", "-t", tag, str(context))
    finally:
        shutil.rmtree(context)


def docker_as(config_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The docker CLI with its own config directory (logins stay in the test)."""
    return subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, timeout=300,
        env={**os.environ, "DOCKER_CONFIG": str(config_dir)},
    )


def test_docker_push_to_ecr_and_a_task_pulls_it(node: BerthNode, tmp_path: Path, cli_home: Path) -> None:
    ecr = node.client(service="ecr")
    ecs = node.client()
    name = "berth-e2e/" + unique_name("web")
    repository = ecr.create_repository(repositoryName=name)["repository"]
    uri = repository["repositoryUri"]
    registry = uri.split("/")[0]
    assert uri == f"{registry}/{name}"

    # `aws ecr get-login-password | docker login --username AWS --password-stdin <registry>`
    password = node.aws("ecr", "get-login-password", home=cli_home).stdout.strip()
    config = tmp_path / "docker-config"
    config.mkdir()
    refused = docker_as(config, "login", "--username", "AWS", "--password-stdin", registry, stdin="wrong")
    assert refused.returncode != 0
    login = docker_as(config, "login", "--username", "AWS", "--password-stdin", registry, stdin=password)
    assert login.returncode == 0, login.stderr

    build_layered_image(f"{uri}:1", "one")
    pushed = docker_as(config, "push", f"{uri}:1")
    assert pushed.returncode == 0, pushed.stderr + pushed.stdout
    digest = next(word for word in pushed.stdout.split() if word.startswith("sha256:"))
    image = ecr.describe_images(repositoryName=name)["imageDetails"][0]
    assert image["imageDigest"] == digest
    assert image["imageTags"] == ["1"]
    assert image["imageSizeInBytes"] > 512 * 1024
    assert image["imageManifestMediaType"] in (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )

    # A second push of the same image sends no layer again.
    again = docker_as(config, "push", f"{uri}:1")
    assert again.returncode == 0 and "Layer already exists" in again.stdout, again.stdout

    # Pull on a clean engine state: the local copy is gone.
    docker("rmi", "-f", f"{uri}:1")
    pulled = docker_as(config, "pull", f"{uri}:1")
    assert pulled.returncode == 0, pulled.stderr
    docker("rmi", "-f", f"{uri}:1")

    # The agent pulls it with a token of its own (no docker login of its own).
    task_definition = register(ecs, [{"name": "web", "image": f"{uri}:1", "memory": 64}])
    task = wait_running(ecs, run(ecs, task_definition))
    assert by_name(task)["web"]["lastStatus"] == "RUNNING"
    assert by_name(task)["web"]["imageDigest"] == digest
    assert ecr.describe_images(repositoryName=name)["imageDetails"][0].get("lastRecordedPullTime")
    ecs.stop_task(cluster="default", task=task["taskArn"])


def test_an_immutable_tag_refuses_a_second_push(node: BerthNode, tmp_path: Path) -> None:
    ecr = node.client(service="ecr")
    name = "berth-e2e/" + unique_name("frozen")
    uri = ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")["repository"]["repositoryUri"]
    registry = uri.split("/")[0]
    token = ecr.get_authorization_token()["authorizationData"][0]
    assert token["proxyEndpoint"] == f"http://{registry}"
    password = base64.b64decode(token["authorizationToken"]).decode().split(":", 1)[1]
    config = tmp_path / "docker-config"
    config.mkdir()
    assert docker_as(config, "login", "-u", "AWS", "--password-stdin", registry, stdin=password).returncode == 0

    build_layered_image(f"{uri}:1", "first")
    assert docker_as(config, "push", f"{uri}:1").returncode == 0
    build_layered_image(f"{uri}:1", "second")
    refused = docker_as(config, "push", f"{uri}:1")
    assert refused.returncode != 0
    assert (
        f"The image tag '1' already exists in the '{name}' repository and cannot be overwritten "
        "because the tag is immutable."
    ) in refused.stderr
    assert [i["imageTags"] for i in ecr.describe_images(repositoryName=name)["imageDetails"]] == [["1"]]
    docker("rmi", "-f", f"{uri}:1", check=False)


def test_skopeo_copies_oci_images_in_and_out(node: BerthNode, image: str, tmp_path: Path) -> None:
    """A second registry client: skopeo pushes the busybox image as an OCI
    manifest, reads it back raw, and copies it out to an OCI layout."""
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is missing: scripts/test.sh installs Debian's skopeo")
    ecr = node.client(service="ecr")
    name = "berth-e2e/" + unique_name("oci")
    uri = ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"]
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    creds = base64.b64decode(token).decode()

    def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["skopeo", *args], capture_output=True, text=True, timeout=300,
            env={**os.environ, "HOME": str(tmp_path)},
        )

    copied = skopeo(
        "copy", "--format", "oci", "--dest-creds", creds, "--dest-tls-verify=false",
        f"docker-daemon:{image}", f"docker://{uri}:oci",
    )
    assert copied.returncode == 0, copied.stderr
    raw = skopeo("inspect", "--raw", "--creds", creds, "--tls-verify=false", f"docker://{uri}:oci")
    assert raw.returncode == 0, raw.stderr
    manifest = json.loads(raw.stdout)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    described = ecr.describe_images(repositoryName=name)["imageDetails"][0]
    assert described["imageManifestMediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert described["artifactMediaType"] == manifest["config"]["mediaType"]
    tags = skopeo("list-tags", "--creds", creds, "--tls-verify=false", f"docker://{uri}")
    assert json.loads(tags.stdout)["Tags"] == ["oci"]
    out = skopeo(
        "copy", "--src-creds", creds, "--src-tls-verify=false",
        f"docker://{uri}:oci", f"oci:{tmp_path / 'layout'}:copy",
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "layout" / "index.json").is_file()
    anonymous = skopeo("inspect", "--raw", "--no-creds", "--tls-verify=false", f"docker://{uri}:oci")
    assert anonymous.returncode != 0


def test_a_lifecycle_policy_expires_old_pushed_images(node: BerthNode, tmp_path: Path) -> None:
    ecr = node.client(service="ecr")
    name = "berth-e2e/" + unique_name("cycle")
    uri = ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"]
    registry = uri.split("/")[0]
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().split(":", 1)[1]
    config = tmp_path / "docker-config"
    config.mkdir()
    assert docker_as(config, "login", "-u", "AWS", "--password-stdin", registry, stdin=password).returncode == 0
    for version in ["1", "2", "3"]:
        build_layered_image(f"{uri}:build-{version}", f"cycle-{version}")
        pushed = docker_as(config, "push", f"{uri}:build-{version}")
        assert pushed.returncode == 0, pushed.stderr
        docker("rmi", "-f", f"{uri}:build-{version}", check=False)
        time.sleep(0.01)
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps({"rules": [{
        "rulePriority": 1, "description": "keep the newest build",
        "selection": {"tagStatus": "tagged", "tagPrefixList": ["build-"],
                      "countType": "imageCountMoreThan", "countNumber": 1},
        "action": {"type": "expire"},
    }]}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tags = [i.get("imageTags") for i in ecr.describe_images(repositoryName=name)["imageDetails"]]
        if len(tags) == 1:
            break
        time.sleep(0.5)
    assert tags == [["build-3"]]
    expired = docker_as(config, "pull", f"{uri}:build-1")
    assert expired.returncode != 0 and "not found" in expired.stderr.lower(), expired.stderr
    kept = docker_as(config, "pull", f"{uri}:build-3")
    assert kept.returncode == 0, kept.stderr
    docker("rmi", "-f", f"{uri}:build-3", check=False)
