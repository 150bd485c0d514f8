"""CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
UpdateClusterSettings and DeleteCluster, as the ECS API reference describes
them, plus regions taken from the request's credential scope."""

from __future__ import annotations

from berth_harness import (
    ACCOUNT_ID,
    BerthServer,
    api_error,
    cluster_arn,
    tag_set,
    unique_name,
)

COUNTERS = (
    "registeredContainerInstancesCount",
    "runningTasksCount",
    "pendingTasksCount",
    "activeServicesCount",
)


def describe_one(ecs, name: str, *include: str) -> dict:
    response = ecs.describe_clusters(clusters=[name], include=list(include))
    assert response["failures"] == [], response["failures"]
    assert len(response["clusters"]) == 1
    return response["clusters"][0]


def test_create_cluster_returns_an_active_cluster(ecs) -> None:
    name = unique_name("create")
    cluster = ecs.create_cluster(clusterName=name)["cluster"]
    assert cluster["clusterName"] == name
    assert cluster["clusterArn"] == cluster_arn(name)
    assert cluster["status"] == "ACTIVE"
    for counter in COUNTERS:
        assert cluster[counter] == 0, counter


def test_create_cluster_without_a_name_creates_default(ecs) -> None:
    cluster = ecs.create_cluster()["cluster"]
    assert cluster["clusterName"] == "default"
    assert cluster["clusterArn"] == cluster_arn("default")
    described = ecs.describe_clusters()
    assert [c["clusterName"] for c in described["clusters"]] == ["default"]


def test_create_cluster_twice_returns_the_same_cluster(ecs) -> None:
    name = unique_name("twice")
    first = ecs.create_cluster(clusterName=name)["cluster"]
    second = ecs.create_cluster(clusterName=name)["cluster"]
    assert first["clusterArn"] == second["clusterArn"]
    arns = [arn for page in ecs.get_paginator("list_clusters").paginate() for arn in page["clusterArns"]]
    assert arns.count(first["clusterArn"]) == 1


def test_describe_by_name_and_by_arn(ecs) -> None:
    name = unique_name("describe")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    by_name = describe_one(ecs, name)
    by_arn = describe_one(ecs, arn)
    assert by_name["clusterArn"] == by_arn["clusterArn"] == arn
    assert by_name["status"] == "ACTIVE"


def test_describe_missing_cluster_is_a_failure_not_an_error(ecs) -> None:
    present = unique_name("present")
    missing = unique_name("missing")
    ecs.create_cluster(clusterName=present)
    response = ecs.describe_clusters(clusters=[present, missing])
    assert [c["clusterName"] for c in response["clusters"]] == [present]
    assert response["failures"] == [{"arn": cluster_arn(missing), "reason": "MISSING"}]


def test_describe_include_settings(ecs) -> None:
    name = unique_name("insights")
    ecs.create_cluster(
        clusterName=name, settings=[{"name": "containerInsights", "value": "enabled"}]
    )
    cluster = describe_one(ecs, name, "SETTINGS")
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]


def test_describe_include_statistics_reports_zero_counts(ecs) -> None:
    name = unique_name("stats")
    ecs.create_cluster(clusterName=name)
    plain = describe_one(ecs, name)
    assert not plain.get("statistics"), plain.get("statistics")
    statistics = describe_one(ecs, name, "STATISTICS")["statistics"]
    assert statistics, "STATISTICS asked for but none returned"
    for statistic in statistics:
        assert set(statistic) >= {"name", "value"}, statistic
        assert statistic["value"] == "0", statistic


def test_describe_include_tags(ecs) -> None:
    name = unique_name("tagged")
    tags = [{"key": "team", "value": "platform"}, {"key": "env", "value": "test"}]
    ecs.create_cluster(clusterName=name, tags=tags)
    assert not describe_one(ecs, name).get("tags")
    assert tag_set(describe_one(ecs, name, "TAGS")["tags"]) == tag_set(tags)


def test_describe_include_configurations(ecs) -> None:
    name = unique_name("configured")
    configuration = {
        "executeCommandConfiguration": {
            "logging": "OVERRIDE",
            "logConfiguration": {
                "cloudWatchLogGroupName": "/ecs/exec",
                "cloudWatchEncryptionEnabled": True,
            },
        }
    }
    ecs.create_cluster(clusterName=name, configuration=configuration)
    cluster = describe_one(ecs, name, "CONFIGURATIONS")
    assert cluster["configuration"] == configuration


def test_describe_all_includes_at_once(ecs) -> None:
    name = unique_name("everything")
    ecs.create_cluster(
        clusterName=name,
        tags=[{"key": "k", "value": "v"}],
        settings=[{"name": "containerInsights", "value": "disabled"}],
    )
    cluster = describe_one(ecs, name, "SETTINGS", "STATISTICS", "TAGS", "CONFIGURATIONS")
    assert tag_set(cluster["tags"]) == {("k", "v")}
    assert {"name": "containerInsights", "value": "disabled"} in cluster["settings"]
    assert all(s["value"] == "0" for s in cluster["statistics"])


def test_list_clusters_contains_created_clusters(ecs) -> None:
    names = [unique_name("listed") for _ in range(3)]
    for name in names:
        ecs.create_cluster(clusterName=name)
    arns = [arn for page in ecs.get_paginator("list_clusters").paginate() for arn in page["clusterArns"]]
    for name in names:
        assert cluster_arn(name) in arns


def test_update_cluster_settings(ecs) -> None:
    name = unique_name("update-settings")
    ecs.create_cluster(clusterName=name)
    updated = ecs.update_cluster_settings(
        cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}]
    )["cluster"]
    assert updated["clusterName"] == name
    assert {"name": "containerInsights", "value": "enabled"} in updated["settings"]
    assert {"name": "containerInsights", "value": "enabled"} in describe_one(ecs, name, "SETTINGS")["settings"]
    ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "disabled"}])
    settings = describe_one(ecs, name, "SETTINGS")["settings"]
    assert {"name": "containerInsights", "value": "disabled"} in settings
    assert {"name": "containerInsights", "value": "enabled"} not in settings


def test_update_cluster_settings_rejects_an_invalid_value(ecs) -> None:
    name = unique_name("bad-setting")
    ecs.create_cluster(clusterName=name)
    error = api_error(
        "InvalidParameterException",
        ecs.update_cluster_settings,
        cluster=name,
        settings=[{"name": "containerInsights", "value": "sometimes"}],
    )
    assert "Invalid setting 'value'" in error.message, error.message


def test_update_cluster_configuration_and_settings(ecs) -> None:
    name = unique_name("update")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    configuration = {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    updated = ecs.update_cluster(
        cluster=arn,
        settings=[{"name": "containerInsights", "value": "enabled"}],
        configuration=configuration,
    )["cluster"]
    assert updated["clusterArn"] == arn
    described = describe_one(ecs, name, "SETTINGS", "CONFIGURATIONS")
    assert described["configuration"] == configuration
    assert {"name": "containerInsights", "value": "enabled"} in described["settings"]


def test_update_missing_cluster(ecs) -> None:
    error = api_error("ClusterNotFoundException", ecs.update_cluster,
                      cluster=unique_name("missing"),
                      settings=[{"name": "containerInsights", "value": "enabled"}])
    assert error.message == "Cluster not found."
    api_error("ClusterNotFoundException", ecs.update_cluster_settings,
              cluster=unique_name("missing"),
              settings=[{"name": "containerInsights", "value": "enabled"}])


def test_delete_cluster_makes_it_inactive(ecs) -> None:
    name = unique_name("delete")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    deleted = ecs.delete_cluster(cluster=name)["cluster"]
    assert deleted["clusterArn"] == arn
    assert deleted["status"] == "INACTIVE"
    assert describe_one(ecs, name)["status"] == "INACTIVE"
    arns = [a for page in ecs.get_paginator("list_clusters").paginate() for a in page["clusterArns"]]
    assert arn not in arns


def test_delete_missing_cluster(ecs) -> None:
    error = api_error("ClusterNotFoundException", ecs.delete_cluster, cluster=unique_name("never"))
    assert error.message == "Cluster not found."
    assert error.status == 400


def test_create_after_delete_reactivates(ecs) -> None:
    name = unique_name("phoenix")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    ecs.delete_cluster(cluster=arn)
    again = ecs.create_cluster(clusterName=name)["cluster"]
    assert again["clusterArn"] == arn
    assert again["status"] == "ACTIVE"
    assert describe_one(ecs, name)["status"] == "ACTIVE"


def test_region_comes_from_the_credential_scope(server: BerthServer) -> None:
    dublin = server.client("eu-west-1")
    virginia = server.client("us-east-1")
    name = unique_name("regional")
    cluster = dublin.create_cluster(clusterName=name)["cluster"]
    assert cluster["clusterArn"] == f"arn:aws:ecs:eu-west-1:{ACCOUNT_ID}:cluster/{name}"
    dublin_arns = [a for p in dublin.get_paginator("list_clusters").paginate() for a in p["clusterArns"]]
    virginia_arns = [a for p in virginia.get_paginator("list_clusters").paginate() for a in p["clusterArns"]]
    assert cluster["clusterArn"] in dublin_arns
    assert all(f"cluster/{name}" not in arn for arn in virginia_arns)
    assert all(":eu-west-1:" in arn for arn in dublin_arns)
    response = virginia.describe_clusters(clusters=[name])
    assert response["clusters"] == []
    assert response["failures"] == [{"arn": cluster_arn(name), "reason": "MISSING"}]


def test_account_id_flag_sets_the_account_in_arns(make_server) -> None:
    berth: BerthServer = make_server("--account-id", "123456789012")
    name = unique_name("account")
    arn = berth.client("ap-southeast-2").create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn == f"arn:aws:ecs:ap-southeast-2:123456789012:cluster/{name}"
