"""TagResource, UntagResource and ListTagsForResource on clusters and task
definitions, and tags given at creation."""

from __future__ import annotations

import pytest

from berth_harness import api_error, cluster_arn, container, tag_set, unique_name


@pytest.fixture
def cluster(ecs) -> str:
    return ecs.create_cluster(clusterName=unique_name("tags"))["cluster"]["clusterArn"]


@pytest.fixture
def task_definition(ecs) -> str:
    response = ecs.register_task_definition(family=unique_name("tags"), containerDefinitions=[container()])
    return response["taskDefinition"]["taskDefinitionArn"]


def tags_of(ecs, arn: str) -> set[tuple[str, str]]:
    return tag_set(ecs.list_tags_for_resource(resourceArn=arn)["tags"])


def test_new_resources_have_no_tags(ecs, cluster: str, task_definition: str) -> None:
    assert tags_of(ecs, cluster) == set()
    assert tags_of(ecs, task_definition) == set()


def test_tags_given_at_creation_are_listed(ecs) -> None:
    name = unique_name("born-tagged")
    ecs.create_cluster(clusterName=name, tags=[{"key": "env", "value": "prod"}])
    assert tags_of(ecs, cluster_arn(name)) == {("env", "prod")}
    registered = ecs.register_task_definition(
        family=unique_name("born-tagged"), containerDefinitions=[container()],
        tags=[{"key": "app", "value": "api"}],
    )
    assert tags_of(ecs, registered["taskDefinition"]["taskDefinitionArn"]) == {("app", "api")}


@pytest.mark.parametrize("resource", ["cluster", "task_definition"])
def test_tag_overwrite_and_untag(ecs, request: pytest.FixtureRequest, resource: str) -> None:
    arn = request.getfixturevalue(resource)
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    assert tags_of(ecs, arn) == {("a", "1"), ("b", "2")}
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "10"}, {"key": "c", "value": ""}])
    assert tags_of(ecs, arn) == {("a", "10"), ("b", "2"), ("c", "")}
    ecs.untag_resource(resourceArn=arn, tagKeys=["b", "not-there"])
    assert tags_of(ecs, arn) == {("a", "10"), ("c", "")}
    ecs.untag_resource(resourceArn=arn, tagKeys=["a", "c"])
    assert tags_of(ecs, arn) == set()


def test_tags_are_per_resource(ecs, cluster: str, task_definition: str) -> None:
    ecs.tag_resource(resourceArn=cluster, tags=[{"key": "only", "value": "cluster"}])
    assert tags_of(ecs, task_definition) == set()


def test_tags_on_a_cluster_show_in_describe(ecs, cluster: str) -> None:
    ecs.tag_resource(resourceArn=cluster, tags=[{"key": "team", "value": "core"}])
    described = ecs.describe_clusters(clusters=[cluster], include=["TAGS"])["clusters"][0]
    assert tag_set(described["tags"]) == {("team", "core")}


def test_tags_on_a_task_definition_show_in_describe(ecs, task_definition: str) -> None:
    ecs.tag_resource(resourceArn=task_definition, tags=[{"key": "team", "value": "core"}])
    described = ecs.describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
    assert tag_set(described["tags"]) == {("team", "core")}


def test_tagging_a_missing_cluster(ecs) -> None:
    error = api_error("ClusterNotFoundException", ecs.tag_resource,
                      resourceArn=cluster_arn(unique_name("nowhere")),
                      tags=[{"key": "k", "value": "v"}])
    assert error.message == "Cluster not found."


def test_tagging_an_inactive_cluster(ecs) -> None:
    name = unique_name("gone")
    ecs.create_cluster(clusterName=name)
    ecs.delete_cluster(cluster=name)
    error = api_error("InvalidParameterException", ecs.tag_resource,
                      resourceArn=cluster_arn(name), tags=[{"key": "k", "value": "v"}])
    assert error.message == "The specified cluster is inactive. Specify an active cluster and try again."


@pytest.mark.parametrize("arn", ["not-an-arn", "arn:aws:s3:::my-bucket"])
def test_tagging_an_invalid_arn(ecs, arn: str) -> None:
    api_error("InvalidParameterException", ecs.list_tags_for_resource, resourceArn=arn)
    api_error("InvalidParameterException", ecs.tag_resource, resourceArn=arn,
              tags=[{"key": "k", "value": "v"}])


def test_more_than_50_tags_are_refused(ecs, cluster: str) -> None:
    tags = [{"key": f"k{i}", "value": "v"} for i in range(51)]
    api_error("InvalidParameterException", ecs.tag_resource, resourceArn=cluster, tags=tags)
    assert tags_of(ecs, cluster) == set()
