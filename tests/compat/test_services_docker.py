"""Services on real Docker: `berth up` driven with boto3 and the AWS CLI.
A service keeps its tasks running whatever fails, rolls out new revisions
within its limits, and the circuit breaker rolls back a broken image.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any, Callable

import pytest

from berth_harness import berth_binary, unique_name
import test_tasks_docker
from test_tasks_docker import BerthNode, container, docker

# The same `berth up` node fixture as the task tests (one node per module).
image = test_tasks_docker.image
node = test_tasks_docker.node


@pytest.fixture
def ecs(node: BerthNode) -> Any:
    """A client per test: tests that restart the node change its port."""
    return node.client()

STABLE = {"Delay": 1, "MaxAttempts": 120}


def register(ecs: Any, family: str, **extra: Any) -> str:
    definition = container(command=["sleep", "600"], stopTimeout=1, **extra)
    response = ecs.register_task_definition(family=family, containerDefinitions=[definition])
    return response["taskDefinition"]["taskDefinitionArn"]


def service(ecs: Any, name: str) -> dict[str, Any]:
    return ecs.describe_services(cluster="default", services=[name])["services"][0]


def service_tasks(ecs: Any, name: str, desired: str = "RUNNING") -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster="default", serviceName=name, desiredStatus=desired)["taskArns"]
    if not arns:
        return []
    return ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = 90) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.25)


def messages(ecs: Any, name: str) -> list[str]:
    return [event["message"] for event in service(ecs, name)["events"]]


def delete(ecs: Any, name: str) -> None:
    ecs.update_service(cluster="default", service=name, desiredCount=0)
    ecs.delete_service(cluster="default", service=name)
    wait_until(f"{name} INACTIVE", lambda: service(ecs, name)["status"] == "INACTIVE")


def test_service_reaches_a_steady_state_the_cli_waiter_sees(node: BerthNode, ecs: Any, tmp_path: Any) -> None:
    name = unique_name("steady")
    task_definition = register(ecs, name)
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=task_definition, desiredCount=2)
    node.aws("ecs", "wait", "services-stable", "--cluster", "default", "--services", name, home=tmp_path, timeout_s=120)
    described = service(ecs, name)
    assert described["runningCount"] == 2 and described["pendingCount"] == 0
    # The deployment completes once its tasks have settled: RUNNING for the
    # settle period (10 s), which the waiter does not wait for.
    wait_until("the deployment to complete",
               lambda: service(ecs, name)["deployments"][0]["rolloutState"] == "COMPLETED", timeout_s=30)
    described = service(ecs, name)
    [deployment] = described["deployments"]
    assert deployment["status"] == "PRIMARY" and deployment["rolloutState"] == "COMPLETED"
    assert deployment["rolloutStateReason"] == f"ECS deployment {deployment['id']} completed."
    tasks = service_tasks(ecs, name)
    assert len(tasks) == 2
    assert all(t["lastStatus"] == "RUNNING" and t["group"] == f"service:{name}" for t in tasks)
    assert all(t["startedBy"] == deployment["id"] for t in tasks)
    events = messages(ecs, name)
    assert events[0] == f"(service {name}) has reached a steady state."
    assert any(m.startswith(f"(service {name}) has started 2 tasks: (task ") for m in events)
    for task in tasks:
        labelled = docker("ps", "-q", "--filter", f"label=com.amazonaws.ecs.task-arn={task['taskArn']}").stdout.split()
        assert len(labelled) == 1
    delete(ecs, name)
    wait_until("containers removed", lambda: not service_tasks(ecs, name))


def test_rolling_update_of_four_tasks_stays_within_its_limits(ecs: Any) -> None:
    name = unique_name("roll")
    first = register(ecs, name)
    second = register(ecs, name, environment=[{"name": "REVISION", "value": "2"}])
    ecs.create_service(
        cluster="default", serviceName=name, taskDefinition=first, desiredCount=4,
        deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 150},
    )
    ecs.get_waiter("services_stable").wait(cluster="default", services=[name], WaiterConfig=STABLE)
    started = time.monotonic()
    ecs.update_service(cluster="default", service=name, taskDefinition=second)
    most_counted, fewest_running = 0, 4
    while True:
        tasks = service_tasks(ecs, name)
        running = [t for t in tasks if t["lastStatus"] == "RUNNING"]
        # maximumPercent counts tasks being stopped too, until they are STOPPED.
        stopping = [t for t in service_tasks(ecs, name, desired="STOPPED") if t["lastStatus"] != "STOPPED"]
        # (A task stopped between the two reads shows in both: count it once.)
        most_counted = max(most_counted, len({t["taskArn"] for t in tasks + stopping}))
        fewest_running = min(fewest_running, len(running))
        described = service(ecs, name)
        if (len(described["deployments"]) == 1 and described["deployments"][0]["taskDefinition"] == second
                and described["runningCount"] == 4 and described["deployments"][0]["rolloutState"] == "COMPLETED"):
            break
        assert time.monotonic() - started < 120, described
        time.sleep(0.1)
    print(f"rolling update of 4 tasks: {time.monotonic() - started:.1f} s")
    # minimumHealthyPercent 50 → at least 2 running; maximumPercent 150 → at most 6 tasks.
    assert fewest_running >= 2
    assert most_counted <= 6
    tasks = service_tasks(ecs, name)
    assert len(tasks) == 4 and all(t["taskDefinitionArn"] == second for t in tasks)
    assert any(m.endswith("deployment completed.") for m in messages(ecs, name))
    delete(ecs, name)


def test_a_broken_image_is_rolled_back_by_the_circuit_breaker(ecs: Any) -> None:
    name = unique_name("breaker")
    good = register(ecs, name)
    ecs.create_service(
        cluster="default", serviceName=name, taskDefinition=good, desiredCount=1,
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
    )
    # A rollback needs a COMPLETED deployment: it completes once its task has
    # settled (RUNNING for 10 s).
    wait_until("the first deployment to complete",
               lambda: service(ecs, name)["deployments"][0]["rolloutState"] == "COMPLETED", timeout_s=60)
    good_deployment = service(ecs, name)["deployments"][0]["id"]
    broken = ecs.register_task_definition(family=name, containerDefinitions=[
        {"name": "main", "image": "berth-test/does-not-exist:latest", "memory": 64},
    ])["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster="default", service=name, taskDefinition=broken)

    def rolled_back() -> bool:
        deployments = service(ecs, name)["deployments"]
        return any(d["taskDefinition"] == broken and d["rolloutState"] == "FAILED" for d in deployments) or (
            deployments[0]["taskDefinition"] == good and len(deployments) == 1)

    wait_until("the broken deployment to fail", rolled_back, timeout_s=180)
    ecs.get_waiter("services_stable").wait(cluster="default", services=[name], WaiterConfig=STABLE)
    described = service(ecs, name)
    assert described["deployments"][0]["taskDefinition"] == good
    assert described["deployments"][0]["id"] == good_deployment
    events = messages(ecs, name)
    assert any(m.endswith("deployment failed: tasks failed to start.") for m in events), events
    assert f"(service {name}) rolling back to deployment {good_deployment}." in events
    deployments = ecs.list_service_deployments(cluster="default", service=name)["serviceDeployments"]
    assert len(deployments) >= 2
    delete(ecs, name)


def test_a_killed_container_is_replaced(ecs: Any) -> None:
    name = unique_name("kill")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=register(ecs, name), desiredCount=1)
    ecs.get_waiter("services_stable").wait(cluster="default", services=[name], WaiterConfig=STABLE)
    [task] = service_tasks(ecs, name)
    runtime_id = task["containers"][0]["runtimeId"]
    killed = time.monotonic()
    docker("kill", runtime_id)

    def replacement() -> Any:
        running = [t for t in service_tasks(ecs, name) if t["lastStatus"] == "RUNNING" and t["taskArn"] != task["taskArn"]]
        return running[0] if running else None

    replaced = wait_until("a replacement task", replacement, timeout_s=60)
    print(f"killed container to replacement RUNNING: {time.monotonic() - killed:.2f} s")
    old = ecs.describe_tasks(cluster="default", tasks=[task["taskArn"]])["tasks"][0]
    assert old["lastStatus"] == "STOPPED"
    assert replaced["startedBy"] == task["startedBy"]
    ecs.get_waiter("services_stable").wait(cluster="default", services=[name], WaiterConfig=STABLE)
    assert len(service_tasks(ecs, name)) == 1
    delete(ecs, name)


def test_a_restarted_agent_keeps_the_service_without_duplicates(node: BerthNode, ecs: Any) -> None:
    name = unique_name("restart")
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=register(ecs, name), desiredCount=2)
    ecs.get_waiter("services_stable").wait(cluster="default", services=[name], WaiterConfig=STABLE)
    before = sorted(t["taskArn"] for t in service_tasks(ecs, name))
    node.stop()
    node.start()
    ecs = node.client()
    ecs.get_waiter("services_stable").wait(cluster="default", services=[name], WaiterConfig=STABLE)
    after = sorted(t["taskArn"] for t in service_tasks(ecs, name))
    assert after == before
    containers = docker("ps", "-q", "--filter", f"label=com.amazonaws.ecs.task-definition-family={name}").stdout.split()
    assert len(containers) == 2
    delete(ecs, name)


def test_control_plane_killed_mid_deployment_finishes_it_without_loss_or_duplicates(
    node: BerthNode, ecs: Any
) -> None:
    name = unique_name("crash")
    first = register(ecs, name)
    second = register(ecs, name, environment=[{"name": "REVISION", "value": "2"}])
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=first, desiredCount=3)
    ecs.get_waiter("services_stable").wait(cluster="default", services=[name], WaiterConfig=STABLE)
    ecs.update_service(cluster="default", service=name, taskDefinition=second)
    wait_until("the rollout to start", lambda: any(
        t["taskDefinitionArn"] == second for t in service_tasks(ecs, name)), timeout_s=60)
    node.kill()
    node.start()
    ecs = node.client()

    def finished() -> bool:
        described = service(ecs, name)
        return (len(described["deployments"]) == 1 and described["deployments"][0]["taskDefinition"] == second
                and described["runningCount"] == 3 and described["deployments"][0]["rolloutState"] == "COMPLETED")

    wait_until("the deployment to finish after the restart", finished, timeout_s=120)
    tasks = service_tasks(ecs, name)
    assert len(tasks) == 3 and all(t["taskDefinitionArn"] == second for t in tasks)
    # The old revision's containers are stopped; nothing is left twice.
    wait_until("old containers to stop", lambda: len(docker(
        "ps", "-q", "--filter", f"label=com.amazonaws.ecs.task-definition-family={name}").stdout.split()) == 3)
    delete(ecs, name)


def test_tasks_of_a_lost_agent_are_replaced_and_its_stale_copies_stopped_when_it_returns(
    image: str, make_server: Any, tmp_path: Any
) -> None:
    """`berth server` with two `berth agent` processes on this Docker Engine.
    One agent is killed (its containers keep running): past the agent
    timeout its tasks are replaced on the other instance; when it comes back
    it stops the stale copies, so the service never keeps more than it asked."""
    server = make_server("--agent-timeout-seconds", "3")
    ecs = server.client()
    cluster = unique_name("lost")
    ecs.create_cluster(clusterName=cluster)
    access_key, secret_key = server.credentials()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
    })

    def start_agent(zone: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"agent-{zone}.log", "ab")
        return subprocess.Popen(
            [str(berth_binary()), "agent", "--cluster", cluster, "--endpoint", server.endpoint,
             "--data-dir", str(tmp_path / zone), "--availability-zone", zone],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )

    agents = {zone: start_agent(zone) for zone in ("zone-a", "zone-b")}
    name = unique_name("svc")
    family = name

    def family_containers() -> list[str]:
        return docker("ps", "-q", "--filter", f"label=com.amazonaws.ecs.task-definition-family={family}").stdout.split()

    def tasks() -> list[dict[str, Any]]:
        arns = ecs.list_tasks(cluster=cluster, serviceName=name)["taskArns"]
        return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []

    try:
        wait_until("two agents", lambda: len(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]) == 2)
        instances = ecs.describe_container_instances(
            cluster=cluster, containerInstances=ecs.list_container_instances(cluster=cluster)["containerInstanceArns"],
        )["containerInstances"]
        zone_of = {i["containerInstanceArn"]: next(a["value"] for a in i["attributes"]
                                                   if a["name"] == "ecs.availability-zone") for i in instances}
        ecs.register_task_definition(family=family, containerDefinitions=[container(command=["sleep", "600"], stopTimeout=1)])
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=family, desiredCount=2)
        ecs.get_waiter("services_stable").wait(cluster=cluster, services=[name], WaiterConfig=STABLE)
        placed = {zone_of[t["containerInstanceArn"]] for t in tasks()}
        assert placed == {"zone-a", "zone-b"}, "spread over both zones"

        agents["zone-a"].kill()
        agents["zone-a"].wait()

        def replaced() -> bool:
            running = [t for t in tasks() if t["lastStatus"] == "RUNNING"]
            return len(running) == 2 and all(zone_of[t["containerInstanceArn"]] == "zone-b" for t in running)

        wait_until("the lost agent's task to be replaced on zone-b", replaced, timeout_s=60)
        # The lost agent's container is still running: nobody could stop it.
        assert len(family_containers()) == 3

        agents["zone-a"] = start_agent("zone-a")
        wait_until("the stale copy to be stopped", lambda: len(family_containers()) == 2, timeout_s=60)
        ecs.get_waiter("services_stable").wait(cluster=cluster, services=[name], WaiterConfig=STABLE)
        assert len(tasks()) == 2
    finally:
        for agent in agents.values():
            agent.terminate()
        for agent in agents.values():
            agent.wait(timeout=30)
        leftovers = docker("ps", "-aq", "--filter", f"label=com.amazonaws.ecs.cluster={cluster}", check=False).stdout.split()
        if leftovers:
            docker("rm", "-f", *leftovers, check=False)


CRASHING_IMAGE = "berth-test/crashing:latest"


@pytest.fixture(scope="module")
def crashing_image(image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The busybox image whose only process exits 1 a second after it starts:
    its tasks reach RUNNING, then their essential container fails."""
    if docker("image", "inspect", CRASHING_IMAGE, check=False).returncode != 0:
        context = tmp_path_factory.mktemp("crashing-image")
        (context / "Dockerfile").write_text(
            f'FROM {image}\nCMD ["sh", "-c", "sleep 1; exit 1"]\n'
        )
        docker("build", "-q", "-t", CRASHING_IMAGE, str(context))
    return CRASHING_IMAGE


def deployment_tasks(ecs: Any, name: str, task_definition: str) -> list[dict[str, Any]]:
    """Every task of the service's task definition, running or stopped."""
    tasks = service_tasks(ecs, name) + service_tasks(ecs, name, desired="STOPPED")
    return [t for t in {t["taskArn"]: t for t in tasks}.values() if t["taskDefinitionArn"] == task_definition]


def test_a_crash_looping_revision_trips_the_breaker_and_rolls_back_within_the_minimum(
    ecs: Any, crashing_image: str
) -> None:
    """The revision's essential container exits 1 a second after RUNNING. Its
    tasks count as failed because they never settle, so the old deployment is
    not drained, the new one never completes, the breaker trips after its
    threshold (3 for a desired count of 3) and rolls back, and only a handful
    of containers are ever started."""
    name = unique_name("crashloop")
    good = register(ecs, name)
    ecs.create_service(
        cluster="default", serviceName=name, taskDefinition=good, desiredCount=3,
        deploymentConfiguration={
            "minimumHealthyPercent": 50, "maximumPercent": 200,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        },
    )
    # A rollback needs a COMPLETED deployment: the first one completes once
    # its tasks have settled (RUNNING for 10 s).
    wait_until("the first deployment to complete",
               lambda: service(ecs, name)["deployments"][0]["rolloutState"] == "COMPLETED", timeout_s=60)
    good_deployment = service(ecs, name)["deployments"][0]["id"]
    crashing = ecs.register_task_definition(family=name, containerDefinitions=[
        {"name": "main", "image": crashing_image, "memory": 64, "essential": True},
    ])["taskDefinition"]["taskDefinitionArn"]
    started = time.monotonic()
    ecs.update_service(cluster="default", service=name, taskDefinition=crashing)

    fewest_good_running, most_failed, crashing_completed = 3, 0, False
    while True:
        good_running = [t for t in service_tasks(ecs, name)
                        if t["taskDefinitionArn"] == good and t["lastStatus"] == "RUNNING"]
        fewest_good_running = min(fewest_good_running, len(good_running))
        described = service(ecs, name)
        for deployment in described["deployments"]:
            if deployment["taskDefinition"] == crashing:
                most_failed = max(most_failed, deployment["failedTasks"])
                crashing_completed |= deployment["rolloutState"] == "COMPLETED"
        [primary, *others] = described["deployments"]
        if (not others and primary["id"] == good_deployment and primary["rolloutState"] == "COMPLETED"
                and described["runningCount"] == 3):
            break
        assert time.monotonic() - started < 100, (described["deployments"], described["events"][:15])
        time.sleep(0.2)
    print(f"crash loop rolled back in {time.monotonic() - started:.1f} s")

    # minimumHealthyPercent 50 of 3: at least 2 old tasks ran all along.
    assert fewest_good_running >= 2
    assert not crashing_completed
    assert most_failed >= 3
    events = messages(ecs, name)
    assert any(m.endswith("deployment failed: tasks failed to start.") for m in events), events
    assert f"(service {name}) rolling back to deployment {good_deployment}." in events
    # The breaker stopped the loop: at most its threshold (3) of failures
    # plus the desired count (3) in flight when it tripped.
    launched = deployment_tasks(ecs, name, crashing)
    assert 3 <= len(launched) <= 6, len(launched)
    assert all(t["desiredStatus"] == "STOPPED" for t in launched)
    assert sum(t.get("stopCode") == "EssentialContainerExited" for t in launched) >= 3
    summaries = ecs.list_service_deployments(cluster="default", service=name)["serviceDeployments"]
    [failed] = [d for d in summaries if d["status"].startswith("ROLLBACK")]
    detail = ecs.describe_service_deployments(serviceDeploymentArns=[failed["serviceDeploymentArn"]])
    breaker = detail["serviceDeployments"][0]["deploymentCircuitBreaker"]
    assert breaker["status"] == "TRIGGERED" and breaker["failureCount"] >= 3 and breaker["threshold"] == 3
    tasks = service_tasks(ecs, name)
    assert len(tasks) == 3 and all(t["taskDefinitionArn"] == good for t in tasks)
    delete(ecs, name)


def test_a_crash_looping_service_is_throttled(ecs: Any, crashing_image: str) -> None:
    """Without a circuit breaker a service whose tasks crash a second after
    RUNNING keeps retrying, but the service throttle spaces the launches out
    (10 s after three failures in a row, doubling per failure)."""
    name = unique_name("throttle")
    crashing = ecs.register_task_definition(family=name, containerDefinitions=[
        {"name": "main", "image": crashing_image, "memory": 64},
    ])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=crashing, desiredCount=1)
    throttled = f"(service {name}) is unable to consistently start tasks successfully."
    wait_until("the throttle event", lambda: throttled in messages(ecs, name), timeout_s=60)
    at_throttle = len(deployment_tasks(ecs, name, crashing))
    assert at_throttle >= 3
    time.sleep(25)
    # Within 25 s of the throttle: one launch after 10 s, the next after
    # another 20 s at the earliest, so at most two more tasks.
    launched = len(deployment_tasks(ecs, name, crashing))
    assert launched <= at_throttle + 2, (at_throttle, launched)
    described = service(ecs, name)
    assert described["deployments"][0]["failedTasks"] >= 3
    assert described["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    delete(ecs, name)
