"""Amazon ECR's API through boto3 and the AWS CLI: repositories, layer
uploads (InitiateLayerUpload/UploadLayerPart/CompleteLayerUpload), images
pushed with PutImage, listing and paging with botocore's paginators,
deleting, lifecycle policies and their previews, repository and registry
policies, tags, authorization tokens, and ECR's errors. No Docker needed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

import pytest

from berth_harness import BerthServer, api_error, unique_name

ACCOUNT = "000000000000"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def ecr(server: BerthServer) -> Any:
    return server.client(service="ecr")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_repository(ecr: Any, prefix: str = "repo", **kwargs: Any) -> str:
    name = unique_name(prefix).lower()
    ecr.create_repository(repositoryName=name, **kwargs)
    return name


def push_layer(ecr: Any, repository: str, data: bytes, part_size: int = 1 << 20) -> str:
    digest = digest_of(data)
    checked = ecr.batch_check_layer_availability(repositoryName=repository, layerDigests=[digest])
    if checked["layers"]:
        return digest
    upload_id = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    first = 0
    while first < len(data):
        part = data[first:first + part_size]
        sent = ecr.upload_layer_part(
            repositoryName=repository, uploadId=upload_id, partFirstByte=first,
            partLastByte=first + len(part) - 1, layerPartBlob=part,
        )
        first += len(part)
        assert sent["lastByteReceived"] == first - 1
    done = ecr.complete_layer_upload(repositoryName=repository, uploadId=upload_id, layerDigests=[digest])
    assert done["layerDigest"] == digest
    return digest


def image_manifest(ecr: Any, repository: str, seed: str) -> str:
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer of {seed}".encode()
    config_digest = push_layer(ecr, repository, config)
    layer_digest = push_layer(ecr, repository, layer)
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer), "digest": layer_digest}],
    })


def push_image(ecr: Any, repository: str, seed: str, tag: Optional[str] = None) -> str:
    manifest = image_manifest(ecr, repository, seed)
    kwargs: dict[str, Any] = {"repositoryName": repository, "imageManifest": manifest}
    if tag is not None:
        kwargs["imageTag"] = tag
    image = ecr.put_image(**kwargs)["image"]
    assert image["imageId"]["imageDigest"] == digest_of(manifest.encode())
    return image["imageId"]["imageDigest"]


def test_repositories_are_created_described_and_deleted(ecr: Any) -> None:
    name = new_repository(ecr, "repos", tags=[{"Key": "team", "Value": "web"}])
    described = ecr.describe_repositories(repositoryNames=[name])["repositories"]
    assert len(described) == 1
    repository = described[0]
    assert repository["repositoryName"] == name
    assert repository["registryId"] == ACCOUNT
    assert repository["repositoryArn"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}"
    assert repository["repositoryUri"].endswith("/" + name)
    assert repository["imageTagMutability"] == "MUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": False}
    assert repository["encryptionConfiguration"] == {"encryptionType": "AES256"}

    error = api_error("RepositoryAlreadyExistsException", ecr.create_repository, repositoryName=name)
    assert error.message == (
        f"The repository with name '{name}' already exists in the registry with id '{ACCOUNT}'"
    )
    error = api_error("InvalidParameterException", ecr.create_repository, repositoryName="Bad")
    assert error.message == (
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular "
        "expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''"
    )
    error = api_error("RepositoryNotFoundException", ecr.describe_repositories, repositoryNames=[name + "-x"])
    assert error.message == (
        f"The repository with name '{name}-x' does not exist in the registry with id '{ACCOUNT}'"
    )

    push_image(ecr, name, "deleted")
    error = api_error("RepositoryNotEmptyException", ecr.delete_repository, repositoryName=name)
    assert "cannot be deleted because it still contains images" in error.message
    deleted = ecr.delete_repository(repositoryName=name, force=True)["repository"]
    assert deleted["repositoryName"] == name
    api_error("RepositoryNotFoundException", ecr.describe_repositories, repositoryNames=[name])


def test_describe_repositories_pages_as_the_paginator_reads_them(ecr: Any) -> None:
    names = {new_repository(ecr, "paged") for _ in range(5)}
    paginator = ecr.get_paginator("describe_repositories")
    seen: list[str] = []
    pages = 0
    for page in paginator.paginate(PaginationConfig={"PageSize": 2}):
        pages += 1
        assert len(page["repositories"]) <= 2
        seen.extend(r["repositoryName"] for r in page["repositories"])
    assert names <= set(seen)
    assert len(seen) == len(set(seen))
    assert pages >= 3


def test_layers_upload_in_parts_and_report_availability(ecr: Any) -> None:
    name = new_repository(ecr, "layers")
    started = ecr.initiate_layer_upload(repositoryName=name)
    assert started["partSize"] == 10 * 1024 * 1024
    upload_id = started["uploadId"]
    error = api_error(
        "EmptyUploadException", ecr.complete_layer_upload,
        repositoryName=name, uploadId=upload_id, layerDigests=[digest_of(b"")],
    )
    assert error.message == (
        f"The upload with id '{upload_id}' in the repository with name '{name}' in registry with id "
        f"'{ACCOUNT}' cannot be completed because it does not have any parts"
    )
    api_error(
        "InvalidLayerPartException", ecr.upload_layer_part, repositoryName=name, uploadId=upload_id,
        partFirstByte=0, partLastByte=9, layerPartBlob=b"abc",
    )

    data = bytes(range(256)) * 40
    digest = push_layer(ecr, name, data, part_size=3000)
    checked = ecr.batch_check_layer_availability(
        repositoryName=name, layerDigests=[digest, digest_of(b"missing"), "not-a-digest"]
    )
    assert checked["layers"] == [
        {"layerDigest": digest, "layerAvailability": "AVAILABLE", "layerSize": len(data)}
    ]
    assert [f["failureCode"] for f in checked["failures"]] == ["MissingLayerDigest", "InvalidLayerDigest"]

    again = ecr.initiate_layer_upload(repositoryName=name)["uploadId"]
    ecr.upload_layer_part(
        repositoryName=name, uploadId=again, partFirstByte=0, partLastByte=len(data) - 1, layerPartBlob=data
    )
    api_error(
        "LayerAlreadyExistsException", ecr.complete_layer_upload,
        repositoryName=name, uploadId=again, layerDigests=[digest],
    )
    api_error(
        "UploadNotFoundException", ecr.upload_layer_part, repositoryName=name,
        uploadId="01234567-89ab-4def-8123-456789abcdef", partFirstByte=0, partLastByte=0, layerPartBlob=b"x",
    )

    url = ecr.get_download_url_for_layer(repositoryName=name, layerDigest=digest)["downloadUrl"]
    assert f"/v2/{name}/blobs/{digest}?token=" in url
    api_error(
        "LayersNotFoundException", ecr.get_download_url_for_layer,
        repositoryName=name, layerDigest=digest_of(b"missing"),
    )


def test_images_are_put_listed_described_fetched_and_deleted(ecr: Any) -> None:
    name = new_repository(ecr, "images")
    first = push_image(ecr, name, "first", tag="v1")
    manifest = image_manifest(ecr, name, "first")
    ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag="latest")
    error = api_error(
        "ImageAlreadyExistsException", ecr.put_image,
        repositoryName=name, imageManifest=manifest, imageTag="latest",
    )
    assert error.message == (
        f"Image with digest '{first}' and tag 'latest' already exists in the repository with name "
        f"'{name}' in registry with id '{ACCOUNT}'"
    )
    api_error(
        "ImageDigestDoesNotMatchException", ecr.put_image, repositoryName=name, imageManifest=manifest,
        imageTag="x", imageDigest=digest_of(b"other"),
    )
    untagged = push_image(ecr, name, "second")

    listed = ecr.list_images(repositoryName=name)["imageIds"]
    assert sorted((i["imageDigest"], i.get("imageTag", "")) for i in listed) == sorted(
        [(first, "v1"), (first, "latest"), (untagged, "")]
    )
    assert ecr.list_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["imageIds"] == [
        {"imageDigest": untagged}
    ]
    paginator = ecr.get_paginator("list_images")
    paged = [i for page in paginator.paginate(repositoryName=name, PaginationConfig={"PageSize": 1})
             for i in page["imageIds"]]
    assert len(paged) == 3

    details = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "v1"}])["imageDetails"]
    assert details[0]["imageDigest"] == first
    assert sorted(details[0]["imageTags"]) == ["latest", "v1"]
    assert details[0]["imageManifestMediaType"] == DOCKER_MANIFEST
    assert details[0]["imageSizeInBytes"] > 0
    assert "imagePushedAt" in details[0]
    error = api_error(
        "ImageNotFoundException", ecr.describe_images, repositoryName=name, imageIds=[{"imageTag": "nope"}]
    )
    assert error.message == (
        "The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the "
        f"repository with name '{name}' in the registry with id '{ACCOUNT}'"
    )

    got = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}, {"imageTag": "nope"}])
    assert got["images"][0]["imageManifest"] == manifest
    assert got["images"][0]["imageId"] == {"imageDigest": first, "imageTag": "v1"}
    assert got["failures"] == [{
        "imageId": {"imageTag": "nope"}, "failureCode": "ImageNotFound",
        "failureReason": "Requested image not found",
    }]
    pulled = ecr.describe_images(repositoryName=name, imageIds=[{"imageDigest": first}])["imageDetails"][0]
    assert "lastRecordedPullTime" in pulled

    deleted = ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "v1"}, {"imageTag": "gone"}])
    assert deleted["imageIds"] == [{"imageDigest": first, "imageTag": "v1"}]
    assert deleted["failures"][0]["failureCode"] == "ImageNotFound"
    ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": untagged}])
    assert ecr.list_images(repositoryName=name)["imageIds"] == [{"imageDigest": first, "imageTag": "latest"}]


def test_immutable_tags_and_scanning_settings(ecr: Any) -> None:
    name = new_repository(ecr, "immutable")
    push_image(ecr, name, "one", tag="release")
    changed = ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
    assert changed["imageTagMutability"] == "IMMUTABLE"
    manifest = image_manifest(ecr, name, "two")
    error = api_error(
        "ImageTagAlreadyExistsException", ecr.put_image,
        repositoryName=name, imageManifest=manifest, imageTag="release",
    )
    assert "cannot be overwritten because the tag is immutable" in error.message
    scanning = ecr.put_image_scanning_configuration(
        repositoryName=name, imageScanningConfiguration={"scanOnPush": True}
    )
    assert scanning["imageScanningConfiguration"] == {"scanOnPush": True}
    repository = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}


def untagged_policy(count: int) -> str:
    return json.dumps({"rules": [{
        "rulePriority": 1, "description": "keep the newest untagged images",
        "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": count},
        "action": {"type": "expire"},
    }]})


def test_lifecycle_policies_and_previews(ecr: Any) -> None:
    name = new_repository(ecr, "lifecycle")
    error = api_error("LifecyclePolicyNotFoundException", ecr.get_lifecycle_policy, repositoryName=name)
    assert error.message == (
        f"Lifecycle policy does not exist for the repository with name '{name}' in the registry "
        f"with id '{ACCOUNT}'"
    )
    invalid = json.dumps({"rules": [{"rulePriority": 1, "description": "x" * 100}]})
    error = api_error(
        "InvalidParameterException", ecr.put_lifecycle_policy, repositoryName=name, lifecyclePolicyText=invalid
    )
    assert error.message.startswith(
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
        "'Lifecycle policy validation failure: "
    )
    text = untagged_policy(1)
    put = ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=text)
    assert put["lifecyclePolicyText"] == text
    assert ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"] == text

    for seed in ["a", "b", "c"]:
        push_image(ecr, name, seed)
    api_error("LifecyclePolicyPreviewNotFoundException", ecr.get_lifecycle_policy_preview, repositoryName=name)
    started = ecr.start_lifecycle_policy_preview(repositoryName=name)
    assert started["status"] in ("IN_PROGRESS", "COMPLETE")
    preview = ecr.get_lifecycle_policy_preview(repositoryName=name)
    assert preview["status"] == "COMPLETE"
    assert preview["summary"]["expiringImageTotalCount"] == 2
    assert all(r["action"]["type"] == "EXPIRE" for r in preview["previewResults"])
    assert all(r["appliedRulePriority"] == 1 for r in preview["previewResults"])
    assert len(ecr.list_images(repositoryName=name)["imageIds"]) == 3

    deleted = ecr.delete_lifecycle_policy(repositoryName=name)
    assert deleted["lifecyclePolicyText"] == text
    api_error("LifecyclePolicyNotFoundException", ecr.delete_lifecycle_policy, repositoryName=name)


def test_repository_and_registry_policies(ecr: Any) -> None:
    name = new_repository(ecr, "policy")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "pull", "Effect": "Allow", "Principal": "*",
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    }]})
    error = api_error("RepositoryPolicyNotFoundException", ecr.get_repository_policy, repositoryName=name)
    assert error.message == (
        f"Repository policy does not exist for the repository with name '{name}' in the registry "
        f"with id '{ACCOUNT}'"
    )
    api_error("InvalidParameterException", ecr.set_repository_policy, repositoryName=name, policyText="{}")
    assert ecr.set_repository_policy(repositoryName=name, policyText=policy)["policyText"] == policy
    assert ecr.get_repository_policy(repositoryName=name)["policyText"] == policy
    assert ecr.delete_repository_policy(repositoryName=name)["policyText"] == policy
    api_error("RepositoryPolicyNotFoundException", ecr.delete_repository_policy, repositoryName=name)

    registry = ecr.put_registry_policy(policyText=policy)
    assert registry == {**registry, "registryId": ACCOUNT, "policyText": policy}
    assert ecr.get_registry_policy()["policyText"] == policy
    assert ecr.delete_registry_policy()["policyText"] == policy
    api_error("RegistryPolicyNotFoundException", ecr.get_registry_policy)


def test_tags_by_repository_arn(ecr: Any) -> None:
    name = new_repository(ecr, "tags")
    arn = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}"
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ecr.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]
    api_error(
        "TooManyTagsException", ecr.tag_resource, resourceArn=arn,
        tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)],
    )
    api_error(
        "InvalidTagParameterException", ecr.tag_resource, resourceArn=arn, tags=[{"Key": "aws:x", "Value": "v"}]
    )
    api_error(
        "RepositoryNotFoundException", ecr.list_tags_for_resource,
        resourceArn=f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}-gone",
    )


def test_authorization_tokens_and_the_registry(ecr: Any) -> None:
    data = ecr.get_authorization_token()["authorizationData"]
    assert len(data) == 1
    user, password = base64.b64decode(data[0]["authorizationToken"]).decode().split(":", 1)
    assert user == "AWS"
    assert password
    assert data[0]["proxyEndpoint"].startswith("http://")
    assert "expiresAt" in data[0]
    api_error("InvalidParameterException", ecr.get_authorization_token, registryIds=["111111111111"])
    registry = ecr.describe_registry()
    assert registry["registryId"] == ACCOUNT
    assert registry["replicationConfiguration"] == {"rules": []}


def test_operations_berth_does_not_implement_say_so(ecr: Any) -> None:
    error = api_error("InvalidOperationException", ecr.describe_pull_through_cache_rules)
    assert error.message == "The operation DescribePullThroughCacheRules is not supported by Berth yet."


def test_the_aws_cli_manages_repositories(server: BerthServer, cli_home: Path) -> None:
    name = unique_name("cli").lower()
    created = server.aws("ecr", "create-repository", "--repository-name", name, home=cli_home).json()
    assert created["repository"]["repositoryName"] == name
    described = server.aws(
        "ecr", "describe-repositories", "--repository-names", name, home=cli_home
    ).json()
    assert [r["repositoryName"] for r in described["repositories"]] == [name]
    password = server.aws("ecr", "get-login-password", home=cli_home)
    assert password.stdout.strip()
    listed = server.aws("ecr", "list-images", "--repository-name", name, home=cli_home).json()
    assert listed["imageIds"] == []
    failed = server.aws("ecr", "describe-repositories", "--repository-names", name + "-x",
                        home=cli_home, check=False)
    assert failed.returncode != 0
    assert "RepositoryNotFoundException" in failed.stderr
    server.aws("ecr", "delete-repository", "--repository-name", name, home=cli_home)


def test_download_urls_serve_the_layer_bytes(ecr: Any) -> None:
    repository = new_repository(ecr, "download")
    data = os.urandom(300_000)
    digest = push_layer(ecr, repository, data, part_size=100_000)
    url = ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=digest)["downloadUrl"]
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == data
    request = urllib.request.Request(url, headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 206
        assert response.read() == data[10:20]
    # Without the token the registry asks for credentials.
    bare = url.split("?", 1)[0]
    try:
        urllib.request.urlopen(bare, timeout=30)
        raise AssertionError("an anonymous blob read was served")
    except urllib.error.HTTPError as error:
        assert error.code == 401
        assert error.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_pushed_images_survive_kill_9(make_server: Any) -> None:
    server: BerthServer = make_server()
    ecr = server.client(service="ecr")
    repository = new_repository(ecr, "durable")
    pushed = {f"v{i}": push_image(ecr, repository, f"seed-{i}", tag=f"v{i}") for i in range(5)}
    layer_data = os.urandom(200_000)
    layer = push_layer(ecr, repository, layer_data)
    server.kill()
    server.start()
    ecr = server.client(service="ecr", fresh=True)
    images = ecr.describe_images(repositoryName=repository)["imageDetails"]
    assert {i["imageTags"][0]: i["imageDigest"] for i in images if i.get("imageTags")} == pushed
    got = ecr.batch_get_image(
        repositoryName=repository, imageIds=[{"imageTag": tag} for tag in pushed]
    )
    assert got["failures"] == []
    assert {digest_of(i["imageManifest"].encode()) for i in got["images"]} == set(pushed.values())
    url = ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=layer)["downloadUrl"]
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read() == layer_data
