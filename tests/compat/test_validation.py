"""RegisterTaskDefinition validation with ECS's error codes and, where AWS's
wording is known from real responses, its messages: the message must start
with AWS's sentence (Berth may add a hint after it). Where the wording is not
known, the test checks the code and that the message names the offending field."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from berth_harness import BerthServer, api_error, container, unique_name


def fargate(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{"name": "app", "image": "nginx:1.27"}],
    }
    request.update(overrides)
    return {key: value for key, value in request.items() if value is not None}


def aws_wording(expected: str) -> Callable[[str], None]:
    def check(message: str) -> None:
        assert message.startswith(expected), f"expected {expected!r} first, got {message!r}"

    return check


def mentions(*words: str) -> Callable[[str], None]:
    def check(message: str) -> None:
        lowered = message.lower()
        for word in words:
            assert word.lower() in lowered, f"{word!r} not in {message!r}"

    return check


# (id, request without family, error code, message check)
INVALID_REQUESTS: list[tuple[str, dict[str, Any], str, Callable[[str], None]]] = [
    (
        "no-containers",
        {"containerDefinitions": []},
        "ClientException",
        aws_wording("Container list cannot be empty."),
    ),
    (
        "container-without-name",
        {"containerDefinitions": [{"image": "nginx", "memory": 128}]},
        "ClientException",
        aws_wording("Container.name should not be null or empty."),
    ),
    (
        "container-without-image",
        {"containerDefinitions": [{"name": "web", "memory": 128}]},
        "ClientException",
        aws_wording("Container.image should not be null or empty."),
    ),
    (
        "container-name-with-spaces",
        {"containerDefinitions": [container("my web")]},
        "ClientException",
        aws_wording("Container.name contains invalid characters."),
    ),
    (
        "container-name-with-dots",
        {"containerDefinitions": [container("web.1")]},
        "ClientException",
        aws_wording("Container.name contains invalid characters."),
    ),
    (
        "container-name-256-chars",
        {"containerDefinitions": [container("n" * 256)]},
        "ClientException",
        mentions("name"),
    ),
    (
        "duplicate-container-names",
        {"containerDefinitions": [container("web"), container("web")]},
        "ClientException",
        aws_wording("Container names must be unique within a Task Definition."),
    ),
    (
        "no-essential-container",
        {"containerDefinitions": [container("a", essential=False), container("b", essential=False)]},
        "ClientException",
        aws_wording("Task definition doesn't have any essential container."),
    ),
    (
        "ec2-container-without-memory",
        {"containerDefinitions": [container("web", memory=None)]},
        "ClientException",
        aws_wording(
            "Invalid setting for container 'web'. "
            "At least one of 'memory' or 'memoryReservation' must be specified."
        ),
    ),
    (
        "memory-reservation-above-memory",
        {"containerDefinitions": [container("web", memory=128, memoryReservation=256)]},
        "ClientException",
        mentions("memoryReservation"),
    ),
    (
        "fargate-without-task-cpu",
        fargate(cpu=None),
        "ClientException",
        aws_wording("Fargate requires that 'cpu' be defined at the task level."),
    ),
    (
        "fargate-without-task-memory",
        fargate(memory=None),
        "ClientException",
        mentions("memory"),
    ),
    (
        "fargate-bridge-network",
        fargate(networkMode="bridge"),
        "ClientException",
        mentions("Fargate", "awsvpc"),
    ),
    (
        "task-cpu-not-a-number",
        {"cpu": "lots", "containerDefinitions": [container()]},
        "ClientException",
        aws_wording("Invalid 'cpu' setting for task."),
    ),
    (
        "task-memory-not-a-number",
        {"memory": "plenty", "containerDefinitions": [container()]},
        "ClientException",
        mentions("memory"),
    ),
    (
        "awsvpc-host-port-differs",
        {
            "networkMode": "awsvpc",
            "containerDefinitions": [container(portMappings=[{"containerPort": 80, "hostPort": 8080}])],
        },
        "ClientException",
        aws_wording("When networkMode=awsvpc, the host ports and container ports in port mappings must match."),
    ),
    (
        "depends-on-unknown-container",
        {"containerDefinitions": [container("web", dependsOn=[{"containerName": "db", "condition": "START"}])]},
        "ClientException",
        aws_wording("Cannot depend on container + 'db' because it does not exist"),
    ),
    (
        "mount-point-unknown-volume",
        {
            "containerDefinitions": [
                container("web", mountPoints=[{"sourceVolume": "data", "containerPath": "/data"}])
            ],
        },
        "ClientException",
        aws_wording("Unknown volume 'data'."),
    ),
    (
        "eleven-containers",
        {"containerDefinitions": [container(f"c{i}") for i in range(11)]},
        "ClientException",
        aws_wording("Too many containers."),
    ),
]


@pytest.mark.parametrize(
    ("request_body", "code", "check"),
    [pytest.param(body, code, check, id=name) for name, body, code, check in INVALID_REQUESTS],
)
def test_invalid_task_definition_is_rejected(
    ecs, request_body: dict[str, Any], code: str, check: Callable[[str], None]
) -> None:
    family = unique_name("invalid")
    error = api_error(code, ecs.register_task_definition, family=family, **request_body)
    assert error.status == 400
    check(error.message)
    # Nothing was stored: the family has no revision.
    api_error("ClientException", ecs.describe_task_definition, taskDefinition=family)


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [("256", "4096"), ("512", "512"), ("1024", "1024"), ("4096", "4096"), ("8192", "18432"), ("300", "1024")],
)
def test_fargate_rejects_unsupported_cpu_memory_combinations(ecs, cpu: str, memory: str) -> None:
    error = api_error(
        "ClientException", ecs.register_task_definition,
        family=unique_name("fargate-size"), **fargate(cpu=cpu, memory=memory),
    )
    assert (
        error.message.startswith("No Fargate configuration exists for given values")
        or error.message == "Invalid 'cpu' setting for task."
    ), error.message


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [("256", "512"), ("256", "2048"), ("1 vCPU", "2 GB"), ("512", "4096"), ("1024", "8 GB"),
     ("2048", "16384"), ("4096", "30720"), ("8192", "61440"), ("16384", "122880")],
)
def test_fargate_accepts_supported_cpu_memory_combinations(ecs, cpu: str, memory: str) -> None:
    family = unique_name("fargate-ok")
    definition = ecs.register_task_definition(family=family, **fargate(cpu=cpu, memory=memory))["taskDefinition"]
    assert "FARGATE" in definition["compatibilities"]


@pytest.mark.parametrize(
    ("family", "check"),
    [
        ("bad family", aws_wording("Family contains invalid characters.")),
        ("family:1", aws_wording("Family contains invalid characters.")),
        ("f" * 256, mentions("family")),
        ("", mentions("family")),
    ],
    ids=["space", "colon", "256-chars", "empty"],
)
def test_invalid_family_is_rejected(ecs, family: str, check: Callable[[str], None]) -> None:
    error = api_error("ClientException", ecs.register_task_definition,
                      family=family, containerDefinitions=[container()])
    check(error.message)


def test_family_is_required(server: BerthServer) -> None:
    response = server.raw_request(
        "RegisterTaskDefinition", {"containerDefinitions": [container()]}
    )
    assert response.status == 400
    assert response.error_code == "ClientException", response.body
    assert "family" in (response.error_message or "").lower(), response.body


def test_container_definitions_are_required(server: BerthServer) -> None:
    response = server.raw_request("RegisterTaskDefinition", {"family": unique_name("no-containers")})
    assert response.status == 400
    assert response.error_code in ("ClientException", "InvalidParameterException"), response.body
    assert "container" in (response.error_message or "").lower(), response.body


# ----- limits that are valid -------------------------------------------------------------------------


def _registers(ecs, **request: Any) -> dict[str, Any]:
    return ecs.register_task_definition(family=unique_name("valid"), **request)["taskDefinition"]


def test_container_name_rules_at_their_limits(ecs) -> None:
    longest = "A-z_0" + "9" * 250
    assert len(longest) == 255
    definition = _registers(ecs, containerDefinitions=[container(longest)])
    assert definition["containerDefinitions"][0]["name"] == longest


def test_family_of_255_allowed_characters(ecs) -> None:
    family = ("Fam_ily-" + "x" * 255)[:255]
    definition = ecs.register_task_definition(family=family, containerDefinitions=[container()])
    assert definition["taskDefinition"]["family"] == family


def test_ten_containers_are_allowed(ecs) -> None:
    definition = _registers(ecs, containerDefinitions=[container(f"c{i}") for i in range(10)])
    assert len(definition["containerDefinitions"]) == 10


def test_task_level_memory_replaces_container_memory_on_ec2(ecs) -> None:
    definition = _registers(ecs, memory="512", containerDefinitions=[container("web", memory=None)])
    assert definition["memory"] == "512"
    assert "memory" not in definition["containerDefinitions"][0]


def test_memory_reservation_alone_is_enough(ecs) -> None:
    definition = _registers(
        ecs, containerDefinitions=[container("web", memory=None, memoryReservation=64)]
    )
    assert definition["containerDefinitions"][0]["memoryReservation"] == 64


def test_memory_reservation_equal_to_memory_is_allowed(ecs) -> None:
    definition = _registers(ecs, containerDefinitions=[container("web", memory=256, memoryReservation=256)])
    assert definition["containerDefinitions"][0]["memoryReservation"] == 256


def test_one_essential_container_is_enough(ecs) -> None:
    definition = _registers(
        ecs, containerDefinitions=[container("a", essential=False), container("b", essential=True)]
    )
    assert [c["essential"] for c in definition["containerDefinitions"]] == [False, True]


def test_awsvpc_host_port_may_be_omitted_or_equal(ecs) -> None:
    definition = _registers(
        ecs,
        networkMode="awsvpc",
        containerDefinitions=[
            container(
                "web",
                portMappings=[{"containerPort": 80}, {"containerPort": 443, "hostPort": 443}],
            )
        ],
    )
    mappings = definition["containerDefinitions"][0]["portMappings"]
    assert [m["containerPort"] for m in mappings] == [80, 443]
    for mapping in mappings:
        assert mapping.get("hostPort", mapping["containerPort"]) == mapping["containerPort"]


def test_depends_on_and_mount_points_that_resolve(ecs) -> None:
    definition = _registers(
        ecs,
        volumes=[{"name": "data", "host": {"sourcePath": "/srv/data"}}],
        containerDefinitions=[
            container("db", mountPoints=[{"sourceVolume": "data", "containerPath": "/var/lib/db"}]),
            container("web", dependsOn=[{"containerName": "db", "condition": "START"}]),
        ],
    )
    assert definition["containerDefinitions"][1]["dependsOn"] == [{"containerName": "db", "condition": "START"}]
