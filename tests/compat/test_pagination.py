"""maxResults / nextToken on the list operations: page sizes, bounds (1..100,
and 1..10 for ListAccountSettings per the API reference), default page sizes,
opaque tokens, and boto3's paginators."""

from __future__ import annotations

import base64

import pytest

from berth_harness import (
    api_error,
    cluster_arn,
    collect_pages,
    container,
    task_definition_arn,
    unique_name,
)

LIST_OPERATIONS = ["list_clusters", "list_task_definitions", "list_task_definition_families"]


@pytest.fixture(scope="module")
def many_revisions(ecs) -> str:
    """A family with 101 ACTIVE revisions: one more than a default page."""
    family = unique_name("paged")
    for _ in range(101):
        ecs.register_task_definition(family=family, containerDefinitions=[container()])
    return family


def test_list_task_definitions_pages_by_max_results(ecs, many_revisions: str) -> None:
    pages = collect_pages(ecs.list_task_definitions, "taskDefinitionArns",
                          familyPrefix=many_revisions, maxResults=30)
    assert [len(page) for page in pages] == [30, 30, 30, 11]
    flat = [arn for page in pages for arn in page]
    assert flat == [task_definition_arn(many_revisions, n) for n in range(1, 102)]


def test_list_task_definitions_default_page_is_100(ecs, many_revisions: str) -> None:
    first = ecs.list_task_definitions(familyPrefix=many_revisions)
    assert len(first["taskDefinitionArns"]) == 100
    assert first.get("nextToken")
    second = ecs.list_task_definitions(familyPrefix=many_revisions, nextToken=first["nextToken"])
    assert second["taskDefinitionArns"] == [task_definition_arn(many_revisions, 101)]
    assert not second.get("nextToken")


def test_max_results_100_is_allowed(ecs, many_revisions: str) -> None:
    page = ecs.list_task_definitions(familyPrefix=many_revisions, maxResults=100)
    assert len(page["taskDefinitionArns"]) == 100


def test_pagination_keeps_sort_order_desc(ecs, many_revisions: str) -> None:
    pages = collect_pages(ecs.list_task_definitions, "taskDefinitionArns",
                          familyPrefix=many_revisions, sort="DESC", maxResults=40)
    flat = [arn for page in pages for arn in page]
    assert flat == [task_definition_arn(many_revisions, n) for n in range(101, 0, -1)]


def test_boto3_paginator_with_page_size(ecs, many_revisions: str) -> None:
    paginator = ecs.get_paginator("list_task_definitions")
    pages = list(paginator.paginate(familyPrefix=many_revisions, PaginationConfig={"PageSize": 25}))
    assert [len(page["taskDefinitionArns"]) for page in pages] == [25, 25, 25, 25, 1]


def test_list_clusters_pages_cover_every_cluster_once(ecs) -> None:
    names = [unique_name("page-cluster") for _ in range(7)]
    for name in names:
        ecs.create_cluster(clusterName=name)
    pages = collect_pages(ecs.list_clusters, "clusterArns", maxResults=2)
    assert all(len(page) <= 2 for page in pages), [len(p) for p in pages]
    assert all(pages[:-1]), "only the last page may be empty"
    flat = [arn for page in pages for arn in page]
    assert len(flat) == len(set(flat)), "a cluster appeared on two pages"
    for name in names:
        assert cluster_arn(name) in flat


def test_list_task_definition_families_pages(ecs) -> None:
    prefix = unique_name("page-family")
    families = {f"{prefix}-{i}" for i in range(5)}
    for family in families:
        ecs.register_task_definition(family=family, containerDefinitions=[container()])
    pages = collect_pages(ecs.list_task_definition_families, "families",
                          familyPrefix=prefix, maxResults=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    flat = [family for page in pages for family in page]
    assert len(flat) == len(set(flat))
    assert set(flat) == families


@pytest.mark.parametrize("operation", LIST_OPERATIONS)
@pytest.mark.parametrize("max_results", [0, 101, -1])
def test_max_results_out_of_range(ecs, operation: str, max_results: int) -> None:
    error = api_error("InvalidParameterException", getattr(ecs, operation), maxResults=max_results)
    assert "maxresults" in error.message.lower(), error.message


@pytest.mark.parametrize("operation", LIST_OPERATIONS)
@pytest.mark.parametrize(
    "token",
    ["not-a-token", "A" * 300, base64.b64encode(bytes(range(48))).decode()],
    ids=["garbage", "long", "random-base64"],
)
def test_bad_next_token(ecs, operation: str, token: str) -> None:
    error = api_error("InvalidParameterException", getattr(ecs, operation), nextToken=token)
    assert "token" in error.message.lower(), error.message


def test_a_next_token_can_be_used_twice(ecs, many_revisions: str) -> None:
    token = ecs.list_task_definitions(familyPrefix=many_revisions, maxResults=10)["nextToken"]
    expected = [task_definition_arn(many_revisions, n) for n in range(11, 21)]
    for _ in range(2):
        page = ecs.list_task_definitions(familyPrefix=many_revisions, maxResults=10, nextToken=token)
        assert page["taskDefinitionArns"] == expected


def test_list_account_settings_max_results_bounds(ecs) -> None:
    # API reference: "This value can be between 1 and 10."
    page = ecs.list_account_settings(effectiveSettings=True, maxResults=10)
    assert len(page["settings"]) <= 10
    for bad in (0, 11):
        api_error("InvalidParameterException", ecs.list_account_settings,
                  effectiveSettings=True, maxResults=bad)


def test_list_account_settings_pages(ecs) -> None:
    pages = collect_pages(ecs.list_account_settings, "settings", effectiveSettings=True, maxResults=2)
    assert all(len(page) <= 2 for page in pages)
    names = [setting["name"] for page in pages for setting in page]
    assert len(names) == len(set(names))
    assert {"containerInsights", "serviceLongArnFormat", "taskLongArnFormat"} <= set(names)
