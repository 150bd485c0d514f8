"""Task scale-in protection on real Docker: UpdateTaskProtection /
GetTaskProtection through boto3, and the service scheduler keeping protected
tasks when the desired count drops.
"""

from __future__ import annotations

import time
from typing import Any

import botocore.exceptions
import pytest

from berth_harness import unique_name
import test_tasks_docker
from test_services_docker import delete, register, service, service_tasks, wait_until
from test_tasks_docker import BerthNode

image = test_tasks_docker.image
node = test_tasks_docker.node


@pytest.fixture
def ecs(node: BerthNode) -> Any:
    return node.client()


def running_arns(ecs: Any, name: str) -> set[str]:
    return {t["taskArn"] for t in service_tasks(ecs, name) if t["lastStatus"] == "RUNNING"}


def protection(ecs: Any, arns: list[str]) -> dict[str, bool]:
    response = ecs.get_task_protection(cluster="default", tasks=arns)
    assert response["failures"] == []
    return {t["taskArn"]: t["protectionEnabled"] for t in response["protectedTasks"]}


def error(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**kwargs)
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def test_scale_in_keeps_the_protected_task_until_protection_is_removed(ecs: Any) -> None:
    name = unique_name("protect")
    task_definition = register(ecs, name)
    ecs.create_service(cluster="default", serviceName=name, taskDefinition=task_definition, desiredCount=3)
    arns = sorted(wait_until("3 tasks RUNNING", lambda: len(r := running_arns(ecs, name)) == 3 and r))

    # Protect the newest: unprotected, the scheduler keeps the oldest.
    tasks = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
    protected = max(tasks, key=lambda t: (t["createdAt"], t["taskArn"]))["taskArn"]
    response = ecs.update_task_protection(
        cluster="default", tasks=[protected], protectionEnabled=True, expiresInMinutes=30
    )
    assert response["failures"] == []
    [entry] = response["protectedTasks"]
    assert entry["taskArn"] == protected and entry["protectionEnabled"] is True
    assert "expirationDate" in entry
    assert protection(ecs, arns) == {arn: arn == protected for arn in arns}

    # Validation, as ECS words it in Berth.
    assert error(
        ecs.update_task_protection, cluster="default", tasks=[protected], protectionEnabled=True, expiresInMinutes=0
    ) == ("InvalidParameterException", "expiresInMinutes must be between 1 and 2880 minutes.")
    assert error(
        ecs.update_task_protection, cluster="default", tasks=[protected], protectionEnabled=True, expiresInMinutes=2881
    ) == ("InvalidParameterException", "expiresInMinutes must be between 1 and 2880 minutes.")
    assert error(
        ecs.update_task_protection, cluster="default", tasks=[protected] * 11, protectionEnabled=True
    ) == ("InvalidParameterException", "tasks can have at most 10 items.")

    # A standalone task cannot be protected; an unknown one is MISSING.
    standalone = ecs.run_task(cluster="default", taskDefinition=task_definition)["tasks"][0]["taskArn"]
    unknown = protected.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
    response = ecs.update_task_protection(cluster="default", tasks=[standalone, unknown], protectionEnabled=True)
    assert response["protectedTasks"] == []
    assert [(f["arn"], f["reason"]) for f in response["failures"]] == [
        (standalone, "TASK_NOT_VALID"),
        (unknown, "MISSING"),
    ]
    ecs.stop_task(cluster="default", task=standalone)

    # Scale in to 1: the protected task is the survivor, still RUNNING.
    ecs.update_service(cluster="default", service=name, desiredCount=1)
    wait_until("scale-in to 1", lambda: running_arns(ecs, name) == {protected}, timeout_s=30)
    [survivor] = ecs.describe_tasks(cluster="default", tasks=[protected])["tasks"]
    assert survivor["lastStatus"] == "RUNNING" and survivor["desiredStatus"] == "RUNNING"

    # Scale in to 0: the protected task stays (runningCount above
    # desiredCount) until protection is removed, then goes.
    ecs.update_service(cluster="default", service=name, desiredCount=0)
    wait_until("the service to see desiredCount 0", lambda: service(ecs, name)["desiredCount"] == 0)
    for _ in range(8):
        assert running_arns(ecs, name) == {protected}
        assert service(ecs, name)["runningCount"] == 1
        time.sleep(0.5)
    response = ecs.update_task_protection(cluster="default", tasks=[protected], protectionEnabled=False)
    assert response["protectedTasks"][0]["protectionEnabled"] is False
    assert protection(ecs, [protected]) == {protected: False}
    wait_until("the unprotected task to stop", lambda: not running_arns(ecs, name), timeout_s=30)
    wait_until("runningCount 0", lambda: service(ecs, name)["runningCount"] == 0, timeout_s=30)
    delete(ecs, name)
