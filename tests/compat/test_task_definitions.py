"""RegisterTaskDefinition, DescribeTaskDefinition, DeregisterTaskDefinition,
DeleteTaskDefinitions, ListTaskDefinitions and ListTaskDefinitionFamilies:
round trips of every member, the fields ECS derives, the lifecycle
ACTIVE -> INACTIVE -> DELETE_IN_PROGRESS, and listing order and filters."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from berth_harness import (
    ACCOUNT_ID,
    api_error,
    assert_round_trips,
    container,
    tag_set,
    task_definition_arn,
    unique_name,
)

TASK_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/app-task"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/ecsTaskExecutionRole"


def rich_ec2_request(family: str) -> dict[str, Any]:
    """A bridge-mode EC2 task definition that sets nearly every member."""
    web = {
        "name": "web",
        "image": "public.ecr.aws/nginx/nginx:1.27",
        "repositoryCredentials": {
            "credentialsParameter": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT_ID}:secret:registry"
        },
        "cpu": 256,
        "memory": 512,
        "memoryReservation": 256,
        "links": ["sidecar"],
        "portMappings": [
            {"containerPort": 80, "hostPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"},
            {"containerPort": 5353, "hostPort": 5353, "protocol": "udp"},
        ],
        "essential": True,
        "restartPolicy": {"enabled": True, "ignoredExitCodes": [0], "restartAttemptPeriod": 180},
        "entryPoint": ["/docker-entrypoint.sh"],
        "command": ["nginx", "-g", "daemon off;"],
        "environment": [{"name": "MODE", "value": "production"}, {"name": "LANG", "value": "C.UTF-8"}],
        "environmentFiles": [{"value": "arn:aws:s3:::config-bucket/web.env", "type": "s3"}],
        "mountPoints": [
            {"sourceVolume": "data", "containerPath": "/data", "readOnly": False},
            {"sourceVolume": "scratch", "containerPath": "/scratch", "readOnly": True},
        ],
        "volumesFrom": [{"sourceContainer": "sidecar", "readOnly": True}],
        "linuxParameters": {
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
            "devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse", "permissions": ["read", "write"]}],
            "initProcessEnabled": True,
            "sharedMemorySize": 64,
            "tmpfs": [{"containerPath": "/run", "size": 64, "mountOptions": ["rw", "noexec"]}],
            "maxSwap": 0,
            "swappiness": 60,
        },
        "secrets": [
            {"name": "DB_PASSWORD", "valueFrom": f"arn:aws:ssm:us-east-1:{ACCOUNT_ID}:parameter/db-password"}
        ],
        "dependsOn": [{"containerName": "sidecar", "condition": "START"}],
        "startTimeout": 30,
        "stopTimeout": 20,
        "versionConsistency": "enabled",
        "hostname": "web",
        "user": "nginx",
        "workingDirectory": "/usr/share/nginx/html",
        "disableNetworking": False,
        "privileged": False,
        "readonlyRootFilesystem": False,
        "dnsServers": ["10.0.0.2"],
        "dnsSearchDomains": ["internal.example"],
        "extraHosts": [{"hostname": "db.internal", "ipAddress": "10.0.0.5"}],
        "dockerSecurityOptions": ["no-new-privileges"],
        "interactive": False,
        "pseudoTerminal": False,
        "dockerLabels": {"team": "web", "tier": "frontend"},
        "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"},
        },
        "healthCheck": {
            "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 10,
        },
        "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
        "resourceRequirements": [{"type": "GPU", "value": "1"}],
    }
    sidecar = {
        "name": "sidecar",
        "image": "busybox:1.36",
        "memory": 128,
        "essential": False,
        "command": ["sleep", "3600"],
    }
    return {
        "family": family,
        "taskRoleArn": TASK_ROLE,
        "executionRoleArn": EXECUTION_ROLE,
        "networkMode": "bridge",
        "containerDefinitions": [web, sidecar],
        "volumes": [
            {"name": "data", "host": {"sourcePath": "/srv/data"}},
            {
                "name": "scratch",
                "dockerVolumeConfiguration": {
                    "scope": "shared",
                    "autoprovision": True,
                    "driver": "local",
                    "driverOpts": {"type": "tmpfs", "device": "tmpfs"},
                    "labels": {"purpose": "scratch"},
                },
            },
        ],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        "requiresCompatibilities": ["EC2"],
        "cpu": "1024",
        "memory": "2048",
        "pidMode": "task",
        "ipcMode": "task",
    }


def rich_fargate_request(family: str) -> dict[str, Any]:
    """An awsvpc task definition valid on Fargate, with a proxy configuration."""
    envoy = {
        "name": "envoy",
        "image": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.29.4.0-prod",
        "essential": True,
        "user": "1337",
        "portMappings": [{"containerPort": 9901, "hostPort": 9901, "protocol": "tcp"}],
    }
    app = {
        "name": "app",
        "image": "public.ecr.aws/nginx/nginx:1.27",
        "essential": True,
        "cpu": 128,
        "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
        "dependsOn": [{"containerName": "envoy", "condition": "START"}],
    }
    return {
        "family": family,
        "executionRoleArn": EXECUTION_ROLE,
        "networkMode": "awsvpc",
        "containerDefinitions": [envoy, app],
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        "ephemeralStorage": {"sizeInGiB": 30},
        "proxyConfiguration": {
            "type": "APPMESH",
            "containerName": "envoy",
            "properties": [
                {"name": "AppPorts", "value": "8080"},
                {"name": "ProxyIngressPort", "value": "15000"},
                {"name": "ProxyEgressPort", "value": "15001"},
                {"name": "IgnoredUID", "value": "1337"},
                {"name": "EgressIgnoredIPs", "value": "169.254.170.2,169.254.169.254"},
            ],
        },
        "enableFaultInjection": True,
    }


def register(ecs, family: str, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"family": family, "containerDefinitions": [container()]}
    request.update(extra)
    return ecs.register_task_definition(**request)["taskDefinition"]


def requirement_names(task_definition: dict[str, Any]) -> set[str]:
    return {attribute["name"] for attribute in task_definition.get("requiresAttributes") or []}


def all_task_definition_arns(ecs, **params: Any) -> list[str]:
    paginator = ecs.get_paginator("list_task_definitions")
    return [arn for page in paginator.paginate(**params) for arn in page["taskDefinitionArns"]]


def all_families(ecs, **params: Any) -> list[str]:
    paginator = ecs.get_paginator("list_task_definition_families")
    return [family for page in paginator.paginate(**params) for family in page["families"]]


# ----- registration ------------------------------------------------------------------------


def test_register_minimal_task_definition(ecs) -> None:
    family = unique_name("minimal")
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=2)
    definition = register(ecs, family)
    assert definition["family"] == family
    assert definition["revision"] == 1
    assert definition["taskDefinitionArn"] == task_definition_arn(family, 1)
    assert definition["status"] == "ACTIVE"
    registered_at = definition["registeredAt"]
    assert isinstance(registered_at, dt.datetime)
    assert before <= registered_at <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=2)
    assert definition["registeredBy"].startswith(f"arn:aws:iam::{ACCOUNT_ID}:"), definition["registeredBy"]
    assert "EC2" in definition["compatibilities"]
    assert "deregisteredAt" not in definition


def test_essential_defaults_to_true(ecs) -> None:
    definition = register(ecs, unique_name("essential"))
    assert definition["containerDefinitions"][0]["essential"] is True


def test_revisions_count_up_per_family(ecs) -> None:
    first_family, second_family = unique_name("rev-a"), unique_name("rev-b")
    assert [register(ecs, first_family)["revision"] for _ in range(3)] == [1, 2, 3]
    assert register(ecs, second_family)["revision"] == 1
    assert register(ecs, first_family)["revision"] == 4


def test_every_member_of_an_ec2_task_definition_round_trips(ecs) -> None:
    family = unique_name("rich-ec2")
    sent = rich_ec2_request(family)
    registered = ecs.register_task_definition(**copy.deepcopy(sent))["taskDefinition"]
    assert_round_trips(sent, registered)
    assert registered["revision"] == 1
    assert registered["status"] == "ACTIVE"
    described = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert described == registered


def test_every_member_of_a_fargate_task_definition_round_trips(ecs) -> None:
    family = unique_name("rich-fargate")
    sent = rich_fargate_request(family)
    registered = ecs.register_task_definition(**copy.deepcopy(sent))["taskDefinition"]
    assert_round_trips(sent, registered)
    assert {"EC2", "FARGATE"} <= set(registered["compatibilities"])
    described = ecs.describe_task_definition(taskDefinition=registered["taskDefinitionArn"])
    assert described["taskDefinition"] == registered


@pytest.mark.parametrize(
    ("cpu", "memory", "cpu_units", "memory_mib"),
    [
        ("1 vCPU", "2 GB", "1024", "2048"),
        ("2 vcpu", "4GB", "2048", "4096"),
        ("512", "1024", "512", "1024"),
        ("1024", "3 GB", "1024", "3072"),
    ],
)
def test_task_cpu_and_memory_are_stored_as_units_and_mib(
    ecs, cpu: str, memory: str, cpu_units: str, memory_mib: str
) -> None:
    definition = register(ecs, unique_name("sizes"), cpu=cpu, memory=memory)
    assert (definition["cpu"], definition["memory"]) == (cpu_units, memory_mib)


def test_register_returns_tags(ecs) -> None:
    tags = [{"key": "owner", "value": "alice"}, {"key": "cost-center", "value": "42"}]
    response = ecs.register_task_definition(
        family=unique_name("tagged"), containerDefinitions=[container()], tags=tags
    )
    assert tag_set(response["tags"]) == tag_set(tags)


# ----- derived fields ------------------------------------------------------------------------


def test_compatibilities_of_a_bridge_task_definition(ecs) -> None:
    definition = register(ecs, unique_name("bridge"), networkMode="bridge")
    assert "EC2" in definition["compatibilities"]
    assert "FARGATE" not in definition["compatibilities"]


def test_a_plain_task_definition_requires_no_attributes(ecs) -> None:
    assert requirement_names(register(ecs, unique_name("plain"))) == set()


AWSLOGS = {
    "logDriver": "awslogs",
    "options": {"awslogs-group": "/ecs/app", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app"},
}


@pytest.mark.parametrize(
    ("extra", "container_extra", "expected"),
    [
        pytest.param({"taskRoleArn": TASK_ROLE}, {}, {"com.amazonaws.ecs.capability.task-iam-role"}, id="task-role"),
        pytest.param(
            {},
            {"logConfiguration": AWSLOGS},
            {
                "com.amazonaws.ecs.capability.logging-driver.awslogs",
                "com.amazonaws.ecs.capability.docker-remote-api.1.19",
            },
            id="awslogs",
        ),
        pytest.param(
            {"executionRoleArn": EXECUTION_ROLE},
            {"logConfiguration": AWSLOGS},
            {"ecs.capability.execution-role-awslogs", "com.amazonaws.ecs.capability.logging-driver.awslogs"},
            id="awslogs-with-execution-role",
        ),
        pytest.param(
            {"executionRoleArn": EXECUTION_ROLE},
            {"image": f"{ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com/app:1.0"},
            {"ecs.capability.execution-role-ecr-pull", "com.amazonaws.ecs.capability.ecr-auth"},
            id="ecr-image",
        ),
        pytest.param({"networkMode": "awsvpc"}, {}, {"ecs.capability.task-eni"}, id="awsvpc"),
        pytest.param(
            {},
            {"healthCheck": {"command": ["CMD", "true"]}},
            {"ecs.capability.container-health-check"},
            id="health-check",
        ),
        pytest.param(
            {"executionRoleArn": EXECUTION_ROLE},
            {"secrets": [{"name": "TOKEN", "valueFrom": f"arn:aws:ssm:us-east-1:{ACCOUNT_ID}:parameter/token"}]},
            {"ecs.capability.secrets.ssm.environment-variables"},
            id="ssm-secrets",
        ),
    ],
)
def test_requires_attributes_are_derived(ecs, extra, container_extra, expected) -> None:
    definition = register(
        ecs, unique_name("requires"), containerDefinitions=[container(**container_extra)], **extra
    )
    missing = expected - requirement_names(definition)
    assert not missing, f"missing {missing}; got {definition.get('requiresAttributes')}"


def test_container_ordering_is_a_required_attribute(ecs) -> None:
    definition = register(
        ecs,
        unique_name("ordering"),
        containerDefinitions=[
            container("init", essential=False, command=["true"]),
            container("app", dependsOn=[{"containerName": "init", "condition": "SUCCESS"}]),
        ],
    )
    assert "ecs.capability.container-ordering" in requirement_names(definition)


# ----- describe -----------------------------------------------------------------------------------


def test_describe_by_family_family_revision_and_arn(ecs) -> None:
    family = unique_name("describe")
    register(ecs, family)
    second = register(ecs, family, containerDefinitions=[container(image="busybox:1.37")])
    arn = second["taskDefinitionArn"]
    for reference in (family, f"{family}:2", arn):
        described = ecs.describe_task_definition(taskDefinition=reference)["taskDefinition"]
        assert described["taskDefinitionArn"] == arn, reference
        assert described["containerDefinitions"][0]["image"] == "busybox:1.37"
    first = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert first["revision"] == 1


def test_describe_missing_task_definition(ecs) -> None:
    family = unique_name("ghost")
    error = api_error("ClientException", ecs.describe_task_definition, taskDefinition=family)
    assert error.message == "Unable to describe task definition."
    register(ecs, family)
    api_error("ClientException", ecs.describe_task_definition, taskDefinition=f"{family}:2")


def test_describe_include_tags(ecs) -> None:
    family = unique_name("describe-tags")
    tags = [{"key": "app", "value": "shop"}]
    register(ecs, family, tags=tags)
    plain = ecs.describe_task_definition(taskDefinition=family)
    assert not plain.get("tags")
    with_tags = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    assert tag_set(with_tags["tags"]) == tag_set(tags)


# ----- lifecycle ---------------------------------------------------------------------------------------


def test_deregister_marks_the_revision_inactive(ecs) -> None:
    family = unique_name("dereg")
    register(ecs, family)
    register(ecs, family)
    deregistered = ecs.deregister_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]
    assert deregistered["status"] == "INACTIVE"
    assert isinstance(deregistered["deregisteredAt"], dt.datetime)
    described = ecs.describe_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]
    assert described["status"] == "INACTIVE"
    assert "deregisteredAt" in described
    latest = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert latest["revision"] == 1
    assert latest["status"] == "ACTIVE"


def test_deregister_by_arn(ecs) -> None:
    arn = register(ecs, unique_name("dereg-arn"))["taskDefinitionArn"]
    assert ecs.deregister_task_definition(taskDefinition=arn)["taskDefinition"]["status"] == "INACTIVE"


def test_deregister_needs_a_known_revision(ecs) -> None:
    family = unique_name("dereg-bad")
    register(ecs, family)
    api_error("ClientException", ecs.deregister_task_definition, taskDefinition=f"{family}:7")
    api_error("ClientException", ecs.deregister_task_definition, taskDefinition=family)


def test_delete_refuses_active_revisions(ecs) -> None:
    family = unique_name("delete-active")
    arn = register(ecs, family)["taskDefinitionArn"]
    response = ecs.delete_task_definitions(taskDefinitions=[arn])
    assert response["taskDefinitions"] == []
    assert len(response["failures"]) == 1
    failure = response["failures"][0]
    assert failure["arn"] in (arn, f"{family}:1")
    assert "ACTIVE" in failure["reason"], failure
    assert ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"] == "ACTIVE"


def test_delete_inactive_revision_is_delete_in_progress(ecs) -> None:
    family = unique_name("delete")
    register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    response = ecs.delete_task_definitions(taskDefinitions=[f"{family}:1"])
    assert response.get("failures", []) == []
    [deleted] = response["taskDefinitions"]
    assert deleted["taskDefinitionArn"] == task_definition_arn(family, 1)
    assert deleted["status"] == "DELETE_IN_PROGRESS"
    assert isinstance(deleted["deleteRequestedAt"], dt.datetime)
    described = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert described["status"] == "DELETE_IN_PROGRESS"


def test_delete_mixed_batch_reports_each(ecs) -> None:
    family = unique_name("delete-batch")
    for _ in range(3):
        register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    ecs.deregister_task_definition(taskDefinition=f"{family}:3")
    missing = f"{unique_name('absent')}:1"
    response = ecs.delete_task_definitions(
        taskDefinitions=[f"{family}:1", f"{family}:2", f"{family}:3", missing]
    )
    assert sorted(d["revision"] for d in response["taskDefinitions"]) == [1, 3]
    assert len(response["failures"]) == 2
    failed = " ".join(failure["arn"] for failure in response["failures"])
    assert f"{family}:2" in failed and missing in failed


def test_revisions_are_never_reused(ecs) -> None:
    family = unique_name("no-reuse")
    for _ in range(3):
        register(ecs, family)
    revisions = [f"{family}:{n}" for n in (1, 2, 3)]
    for revision in revisions:
        ecs.deregister_task_definition(taskDefinition=revision)
    ecs.delete_task_definitions(taskDefinitions=revisions)
    assert register(ecs, family)["revision"] == 4


# ----- listing ----------------------------------------------------------------------------------------------


def test_list_task_definitions_lists_active_revisions_in_ascending_order(ecs) -> None:
    family = unique_name("list-order")
    for _ in range(11):
        register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:5")
    arns = all_task_definition_arns(ecs, familyPrefix=family)
    expected = [task_definition_arn(family, n) for n in range(1, 12) if n != 5]
    assert arns == expected


def test_list_task_definitions_sort_desc(ecs) -> None:
    family = unique_name("list-desc")
    for _ in range(11):
        register(ecs, family)
    arns = all_task_definition_arns(ecs, familyPrefix=family, sort="DESC")
    assert arns == [task_definition_arn(family, n) for n in range(11, 0, -1)]


def test_list_task_definitions_orders_families_lexicographically(ecs) -> None:
    prefix = unique_name("lex")
    alpha, beta = f"{prefix}-a", f"{prefix}-b"
    register(ecs, beta)
    register(ecs, alpha)
    register(ecs, beta)
    ours = [arn for arn in all_task_definition_arns(ecs) if f"/{prefix}-" in arn]
    assert ours == [task_definition_arn(alpha, 1), task_definition_arn(beta, 1), task_definition_arn(beta, 2)]
    ours_desc = [arn for arn in all_task_definition_arns(ecs, sort="DESC") if f"/{prefix}-" in arn]
    assert ours_desc == list(reversed(ours))


def test_list_task_definitions_family_filter_matches_the_whole_family(ecs) -> None:
    # The API reference: familyPrefix is "the full family name to filter the
    # ListTaskDefinitions results with".
    family = unique_name("exact")
    longer = f"{family}-extended"
    register(ecs, family)
    register(ecs, longer)
    assert all_task_definition_arns(ecs, familyPrefix=family) == [task_definition_arn(family, 1)]


def test_list_task_definitions_status_filter(ecs) -> None:
    family = unique_name("list-status")
    for _ in range(3):
        register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:2")
    ecs.deregister_task_definition(taskDefinition=f"{family}:3")
    ecs.delete_task_definitions(taskDefinitions=[f"{family}:3"])
    assert all_task_definition_arns(ecs, familyPrefix=family) == [task_definition_arn(family, 1)]
    assert all_task_definition_arns(ecs, familyPrefix=family, status="ACTIVE") == [task_definition_arn(family, 1)]
    assert all_task_definition_arns(ecs, familyPrefix=family, status="INACTIVE") == [task_definition_arn(family, 2)]
    assert all_task_definition_arns(ecs, familyPrefix=family, status="DELETE_IN_PROGRESS") == [
        task_definition_arn(family, 3)
    ]


def test_list_task_definition_families_by_prefix_and_status(ecs) -> None:
    prefix = unique_name("families")
    active, inactive, mixed = f"{prefix}-active", f"{prefix}-inactive", f"{prefix}-mixed"
    register(ecs, active)
    register(ecs, inactive)
    ecs.deregister_task_definition(taskDefinition=f"{inactive}:1")
    register(ecs, mixed)
    register(ecs, mixed)
    ecs.deregister_task_definition(taskDefinition=f"{mixed}:2")
    register(ecs, unique_name("unrelated"))

    assert set(all_families(ecs, familyPrefix=prefix)) == {active, inactive, mixed}
    assert set(all_families(ecs, familyPrefix=prefix, status="ALL")) == {active, inactive, mixed}
    assert set(all_families(ecs, familyPrefix=prefix, status="ACTIVE")) == {active, mixed}
    assert set(all_families(ecs, familyPrefix=prefix, status="INACTIVE")) == {inactive}
    assert set(all_families(ecs, familyPrefix=f"{prefix}-m")) == {mixed}
    assert active in all_families(ecs)
