"""The unmodified AWS CLI v1 end to end, with the profile files Berth writes
(AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE / AWS_PROFILE=berth) and
--endpoint-url, and the `eval "$(berth env)"` flow with no files at all."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from berth_harness import (
    BerthServer,
    aws_cli_binary,
    berth_binary,
    cluster_arn,
    isolated_environ,
    task_definition_arn,
    unique_name,
)


def write_json(path: Path, document: object) -> str:
    path.write_text(json.dumps(document, indent=2))
    return f"file://{path}"


def test_create_cluster(server: BerthServer, cli_home: Path) -> None:
    name = unique_name("cli")
    created = server.aws("ecs", "create-cluster", "--cluster-name", name, home=cli_home).json()
    assert created["cluster"]["clusterName"] == name
    assert created["cluster"]["clusterArn"] == cluster_arn(name)
    assert created["cluster"]["status"] == "ACTIVE"


def test_register_task_definition_from_cli_input_json(server: BerthServer, cli_home: Path) -> None:
    family = unique_name("cli-input")
    document = {
        "family": family,
        "networkMode": "bridge",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "nginx:1.27",
                "memory": 256,
                "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}],
                "environment": [{"name": "MODE", "value": "cli"}],
            }
        ],
        "tags": [{"key": "via", "value": "cli"}],
    }
    url = write_json(cli_home / "task-definition.json", document)
    registered = server.aws("ecs", "register-task-definition", "--cli-input-json", url, home=cli_home).json()
    definition = registered["taskDefinition"]
    assert definition["taskDefinitionArn"] == task_definition_arn(family, 1)
    assert definition["containerDefinitions"][0]["portMappings"] == document["containerDefinitions"][0]["portMappings"]
    assert registered["tags"] == [{"key": "via", "value": "cli"}]


def test_register_with_container_definitions_file(server: BerthServer, cli_home: Path) -> None:
    family = unique_name("cli-file")
    url = write_json(cli_home / "containers.json", [{"name": "app", "image": "busybox:1.36", "essential": True}])
    definition = server.aws(
        "ecs", "register-task-definition",
        "--family", family,
        "--container-definitions", url,
        "--cpu", "1 vCPU",
        "--memory", "2 GB",
        home=cli_home,
    ).json()["taskDefinition"]
    assert (definition["cpu"], definition["memory"]) == ("1024", "2048")
    assert definition["containerDefinitions"][0]["name"] == "app"


def test_list_and_describe_with_query(server: BerthServer, cli_home: Path) -> None:
    family = unique_name("cli-query")
    ecs = server.client()
    ecs.register_task_definition(family=family, containerDefinitions=[{"name": "a", "image": "one", "memory": 64}])
    ecs.register_task_definition(family=family, containerDefinitions=[{"name": "a", "image": "two", "memory": 64}])
    listed = server.aws("ecs", "list-task-definitions", "--family-prefix", family, home=cli_home).json()
    assert listed["taskDefinitionArns"] == [task_definition_arn(family, 1), task_definition_arn(family, 2)]
    image = server.aws(
        "ecs", "describe-task-definition", "--task-definition", family,
        "--query", "taskDefinition.containerDefinitions[0].image",
        home=cli_home,
    ).json()
    assert image == "two"
    families = server.aws(
        "ecs", "list-task-definition-families", "--family-prefix", family, "--status", "ACTIVE",
        home=cli_home,
    ).json()
    assert families["families"] == [family]


def test_describe_clusters_with_include_and_query(server: BerthServer, cli_home: Path) -> None:
    name = unique_name("cli-describe")
    server.client().create_cluster(clusterName=name, tags=[{"key": "owner", "value": "cli"}])
    tags = server.aws(
        "ecs", "describe-clusters", "--clusters", name, "--include", "TAGS", "SETTINGS",
        "--query", "clusters[0].tags",
        home=cli_home,
    ).json()
    assert tags == [{"key": "owner", "value": "cli"}]


def test_auto_pagination(server: BerthServer, cli_home: Path) -> None:
    family = unique_name("cli-pages")
    ecs = server.client()
    for _ in range(7):
        ecs.register_task_definition(family=family, containerDefinitions=[{"name": "a", "image": "i", "memory": 64}])
    expected = [task_definition_arn(family, n) for n in range(1, 8)]

    everything = server.aws(
        "ecs", "list-task-definitions", "--family-prefix", family, "--page-size", "2", home=cli_home
    ).json()
    assert everything["taskDefinitionArns"] == expected
    assert "NextToken" not in everything

    first = server.aws(
        "ecs", "list-task-definitions", "--family-prefix", family, "--page-size", "2", "--max-items", "3",
        home=cli_home,
    ).json()
    assert first["taskDefinitionArns"] == expected[:3]
    assert first.get("NextToken")
    rest = server.aws(
        "ecs", "list-task-definitions", "--family-prefix", family, "--page-size", "2",
        "--starting-token", first["NextToken"],
        home=cli_home,
    ).json()
    assert rest["taskDefinitionArns"] == expected[3:]


def test_service_errors_reach_the_cli(server: BerthServer, cli_home: Path) -> None:
    result = server.aws(
        "ecs", "describe-task-definition", "--task-definition", unique_name("absent"),
        home=cli_home, check=False,
    )
    # AWS CLI v1 exits 255 on a service error (v2 uses 254).
    assert result.returncode == 255, (result.returncode, result.stderr)
    assert "(ClientException)" in result.stderr
    assert "Unable to describe task definition." in result.stderr


def test_berth_env_exports(server: BerthServer) -> None:
    exported = server.env_exports()
    access_key, secret_key = server.credentials()
    assert exported["AWS_ACCESS_KEY_ID"] == access_key
    assert exported["AWS_SECRET_ACCESS_KEY"] == secret_key
    assert exported["AWS_REGION"] == server.region
    assert exported["AWS_ENDPOINT_URL"] == server.endpoint


def test_berth_env_eval_flow(server: BerthServer, cli_home: Path) -> None:
    """`eval "$(berth env)"` alone is enough for the AWS CLI v1: no profile files,
    no --endpoint-url, no --region."""
    name = unique_name("eval")
    script = f"""
set -euo pipefail
eval "$("$BERTH" env --data-dir "$DATA_DIR")"
aws ecs create-cluster --cluster-name {name} --output json >/dev/null
aws ecs list-clusters --output json
"""
    env = isolated_environ()
    env.update(
        {
            "HOME": str(cli_home),
            "PATH": f"{aws_cli_binary().parent}:/usr/local/bin:/usr/bin:/bin",
            "BERTH": str(berth_binary()),
            "DATA_DIR": str(server.data_dir),
        }
    )
    completed = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, cwd=str(cli_home),
    )
    assert completed.returncode == 0, completed.stderr
    assert cluster_arn(name) in json.loads(completed.stdout)["clusterArns"]
