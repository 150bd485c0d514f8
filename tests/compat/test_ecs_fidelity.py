"""Where Berth must answer exactly as ECS does: empty identifier lists,
task tags (RunTask, StartTask, DescribeTasks, TagResource on a task, kept
across a restart), Fargate's pidMode rule, DeleteTaskDefinitions without a
revision.

No agent runs here: a container instance registered through the API counts
as connected for a while after it registers (registration is a heartbeat),
so RunTask places tasks on it and they stay PROVISIONING."""

from __future__ import annotations

import json
from typing import Any

import pytest

from berth_harness import BerthServer, api_error, container, tag_set, unique_name


def register_instance(ecs, cluster: str) -> str:
    return ecs.register_container_instance(
        cluster=cluster,
        instanceIdentityDocument=json.dumps({"instanceId": "i-" + unique_name("ci")[-12:]}),
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}],
    )["containerInstance"]["containerInstanceArn"]


@pytest.fixture
def cluster(ecs) -> str:
    return ecs.create_cluster(clusterName=unique_name("fidelity"))["cluster"]["clusterName"]


@pytest.fixture
def instance(ecs, cluster: str) -> str:
    return register_instance(ecs, cluster)


def tagged_family(ecs, tags: list[dict[str, str]]) -> str:
    family = unique_name("tagged")
    extra = {"tags": tags} if tags else {}
    ecs.register_task_definition(family=family, containerDefinitions=[container(memory=64)], **extra)
    return family


# ----- empty lists ------------------------------------------------------------------------------------------


def test_describe_tasks_refuses_an_empty_list(ecs, cluster: str) -> None:
    error = api_error("InvalidParameterException", ecs.describe_tasks, cluster=cluster, tasks=[])
    assert error.message == "Tasks cannot be empty."


def test_describe_container_instances_refuses_an_empty_list(ecs, cluster: str) -> None:
    error = api_error("InvalidParameterException", ecs.describe_container_instances,
                      cluster=cluster, containerInstances=[])
    assert error.message == "Container Instances cannot be empty."


# ----- task definitions -------------------------------------------------------------------------------------


def test_fargate_task_definition_refuses_pid_mode_host(ecs) -> None:
    family = unique_name("pid-host")
    error = api_error(
        "ClientException", ecs.register_task_definition,
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        pidMode="host", containerDefinitions=[container()],
    )
    assert error.message == (
        "Tasks using the Fargate launch type do not support pidMode 'host'. "
        "The supported value for pidMode is 'task'."
    )
    # Nothing was registered.
    api_error("ClientException", ecs.describe_task_definition, taskDefinition=family)
    # For EC2, pidMode host is fine, and the revision is not Fargate-compatible.
    registered = ecs.register_task_definition(
        family=family, networkMode="awsvpc", cpu="256", memory="512", pidMode="host",
        containerDefinitions=[container()],
    )["taskDefinition"]
    assert "FARGATE" not in registered["compatibilities"]


def test_delete_task_definitions_without_a_revision(ecs) -> None:
    family = unique_name("no-revision")
    ecs.register_task_definition(family=family, containerDefinitions=[container(memory=64)])
    unknown = unique_name("never-registered")
    response = ecs.delete_task_definitions(taskDefinitions=[family, unknown])
    assert response["taskDefinitions"] == []
    reason = "The specified task definition identifier is invalid. Specify a valid name or ARN and try again."
    assert response["failures"] == [{"arn": family, "reason": reason}, {"arn": unknown, "reason": reason}]
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]["status"] == "ACTIVE"


# ----- task tags ---------------------------------------------------------------------------------------------


def test_run_task_returns_the_tasks_tags(ecs, cluster: str, instance: str) -> None:
    family = tagged_family(ecs, [{"key": "team", "value": "core"}, {"key": "env", "value": "dev"}])
    plain = ecs.run_task(cluster=cluster, taskDefinition=family)["tasks"][0]
    assert plain["tags"] == []
    task = ecs.run_task(
        cluster=cluster, taskDefinition=family, tags=[{"key": "env", "value": "prod"}],
        propagateTags="TASK_DEFINITION", enableECSManagedTags=True,
    )["tasks"][0]
    expected = {("team", "core"), ("env", "prod"), ("aws:ecs:clusterName", cluster)}
    assert tag_set(task["tags"]) == expected
    # DescribeTasks answers an empty list unless TAGS is asked for.
    described = ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]])["tasks"][0]
    assert described["tags"] == []
    described = ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]], include=["TAGS"])["tasks"][0]
    assert tag_set(described["tags"]) == expected
    assert tag_set(ecs.list_tags_for_resource(resourceArn=task["taskArn"])["tags"]) == expected


def test_start_task_returns_the_tasks_tags(ecs, cluster: str, instance: str) -> None:
    family = tagged_family(ecs, [{"key": "team", "value": "core"}])
    started = ecs.start_task(
        cluster=cluster, taskDefinition=family, containerInstances=[instance],
        propagateTags="TASK_DEFINITION", tags=[{"key": "job", "value": "nightly"}],
    )
    assert started["failures"] == []
    assert tag_set(started["tasks"][0]["tags"]) == {("team", "core"), ("job", "nightly")}


def test_run_task_refuses_propagating_from_a_service(ecs, cluster: str, instance: str) -> None:
    family = tagged_family(ecs, [])
    api_error("InvalidParameterException", ecs.run_task, cluster=cluster, taskDefinition=family,
              propagateTags="SERVICE")
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []


def test_tag_and_untag_a_task(ecs, cluster: str, instance: str) -> None:
    family = tagged_family(ecs, [])
    task_arn = ecs.run_task(cluster=cluster, taskDefinition=family, enableECSManagedTags=True,
                            tags=[{"key": "a", "value": "1"}])["tasks"][0]["taskArn"]
    ecs.tag_resource(resourceArn=task_arn, tags=[{"key": "a", "value": "10"}, {"key": "b", "value": "2"}])
    ecs.untag_resource(resourceArn=task_arn, tagKeys=["b", "not-there"])
    expected = {("a", "10"), ("aws:ecs:clusterName", cluster)}
    assert tag_set(ecs.list_tags_for_resource(resourceArn=task_arn)["tags"]) == expected
    # The managed tag is ECS's: it cannot be removed.
    api_error("InvalidParameterException", ecs.untag_resource, resourceArn=task_arn,
              tagKeys=["aws:ecs:clusterName"])
    described = ecs.describe_tasks(cluster=cluster, tasks=[task_arn], include=["TAGS"])["tasks"][0]
    assert tag_set(described["tags"]) == expected


def test_tagging_a_missing_task(ecs, cluster: str) -> None:
    arn = f"arn:aws:ecs:us-east-1:000000000000:task/{cluster}/0123456789abcdef0123456789abcdef"
    api_error("ResourceNotFoundException", ecs.tag_resource, resourceArn=arn,
              tags=[{"key": "k", "value": "v"}])


def test_tagging_a_container_instance(ecs, cluster: str, instance: str) -> None:
    ecs.tag_resource(resourceArn=instance, tags=[{"key": "rack", "value": "r1"}])
    assert tag_set(ecs.list_tags_for_resource(resourceArn=instance)["tags"]) == {("rack", "r1")}
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=[instance],
                                                 include=["TAGS"])["containerInstances"][0]
    assert tag_set(described["tags"]) == {("rack", "r1")}


def test_task_tags_survive_a_restart(make_server: Any) -> None:
    server: BerthServer = make_server()
    ecs = server.client()
    cluster = ecs.create_cluster(clusterName=unique_name("restart"))["cluster"]["clusterName"]
    register_instance(ecs, cluster)
    family = tagged_family(ecs, [{"key": "team", "value": "core"}])
    task_arn = ecs.run_task(cluster=cluster, taskDefinition=family, propagateTags="TASK_DEFINITION",
                            tags=[{"key": "a", "value": "1"}])["tasks"][0]["taskArn"]
    ecs.tag_resource(resourceArn=task_arn, tags=[{"key": "b", "value": "2"}])
    server.stop()
    server.start()
    ecs = server.client()
    expected = {("team", "core"), ("a", "1"), ("b", "2")}
    assert tag_set(ecs.list_tags_for_resource(resourceArn=task_arn)["tags"]) == expected
    described = ecs.describe_tasks(cluster=cluster, tasks=[task_arn], include=["TAGS"])["tasks"][0]
    assert tag_set(described["tags"]) == expected
