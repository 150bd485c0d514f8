"""The OCI Distribution Specification's conformance workflows (pull, push,
content discovery, content management), checked over raw HTTP against
Berth's registry, as the spec's Go conformance suite checks a registry (that
suite cannot be built here: its Go modules are not reachable)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

import pytest

from berth_harness import BerthServer, unique_name

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Reply:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def error_codes(self) -> list[str]:
        return [e["code"] for e in self.json()["errors"]]


class Registry:
    def __init__(self, endpoint: str, password: Optional[str]) -> None:
        self.endpoint = endpoint
        self.auth = (
            "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode() if password else None
        )

    def request(
        self, method: str, path: str, body: bytes = b"", headers: Optional[dict[str, str]] = None
    ) -> Reply:
        url = path if path.startswith("http") else self.endpoint + path
        request = urllib.request.Request(url, data=body if body or method in ("PUT", "PATCH", "POST") else None,
                                         method=method)
        if self.auth:
            request.add_header("Authorization", self.auth)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.headers, error.read())

    def push_blob(self, name: str, data: bytes) -> str:
        digest = digest_of(data)
        started = self.request("POST", f"/v2/{name}/blobs/uploads/")
        assert started.status == 202
        location = started.headers["Location"]
        done = self.request(
            "PUT", f"{location}?digest={urllib.parse.quote(digest)}", data,
            {"Content-Type": "application/octet-stream"},
        )
        assert done.status == 201, done.body
        return digest

    def manifest(self, name: str, layers: list[bytes], **extra: Any) -> bytes:
        config = b"{}"
        self.push_blob(name, config)
        descriptors = []
        for layer in layers:
            descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                "digest": self.push_blob(name, layer), "size": len(layer)})
        return json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": EMPTY_CONFIG, "digest": digest_of(config), "size": len(config)},
            "layers": descriptors, **extra,
        }).encode()

    def put_manifest(self, name: str, reference: str, manifest: bytes, media_type: str = OCI_MANIFEST) -> Reply:
        return self.request("PUT", f"/v2/{name}/manifests/{reference}", manifest, {"Content-Type": media_type})


@pytest.fixture(scope="module")
def registry(server: BerthServer) -> Registry:
    ecr = server.client(service="ecr")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert server.endpoint is not None
    return Registry(server.endpoint, base64.b64decode(token).decode().split(":", 1)[1])


@pytest.fixture
def name(server: BerthServer) -> str:
    repository = "conformance/" + unique_name("repo").lower()
    server.client(service="ecr").create_repository(repositoryName=repository)
    return repository


def test_pull(registry: Registry, name: str) -> None:
    layer = os.urandom(4096)
    manifest = registry.manifest(name, [layer])
    digest = digest_of(manifest)
    assert registry.put_manifest(name, "tagged", manifest).status == 201
    for reference in ["tagged", digest]:
        got = registry.request("GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert got.status == 200 and got.body == manifest
        assert got.headers["Docker-Content-Digest"] == digest
        assert got.headers["Content-Type"] == OCI_MANIFEST
        head = registry.request("HEAD", f"/v2/{name}/manifests/{reference}")
        assert head.status == 200 and int(head.headers["Content-Length"]) == len(manifest)
    blob = registry.request("GET", f"/v2/{name}/blobs/{digest_of(layer)}")
    assert blob.status == 200 and blob.body == layer
    assert registry.request("HEAD", f"/v2/{name}/blobs/{digest_of(layer)}").status == 200
    missing_manifest = registry.request("GET", f"/v2/{name}/manifests/nonexistent")
    assert missing_manifest.status == 404 and missing_manifest.error_codes() == ["MANIFEST_UNKNOWN"]
    missing_blob = registry.request("GET", f"/v2/{name}/blobs/{digest_of(b'nothing')}")
    assert missing_blob.status == 404 and missing_blob.error_codes() == ["BLOB_UNKNOWN"]


def test_push(registry: Registry, name: str, server: BerthServer) -> None:
    # Monolithic in one POST.
    data = os.urandom(2048)
    single = registry.request(
        "POST", f"/v2/{name}/blobs/uploads/?digest={urllib.parse.quote(digest_of(data))}", data,
        {"Content-Type": "application/octet-stream"},
    )
    assert single.status == 201 and single.headers["Location"].endswith(digest_of(data))
    # Chunked: POST, PATCH, PATCH, PUT; an out-of-order chunk is 416.
    chunks = [os.urandom(1000), os.urandom(1000), os.urandom(500)]
    whole = b"".join(chunks)
    location = registry.request("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
    first = registry.request("PATCH", location, chunks[0],
                             {"Content-Type": "application/octet-stream", "Content-Range": "0-999"})
    assert first.status == 202 and first.headers["Range"] == "0-999"
    location = first.headers["Location"]
    wrong = registry.request("PATCH", location, chunks[1],
                             {"Content-Type": "application/octet-stream", "Content-Range": "500-1499"})
    assert wrong.status == 416
    second = registry.request("PATCH", location, chunks[1],
                              {"Content-Type": "application/octet-stream", "Content-Range": "1000-1999"})
    assert second.status == 202 and second.headers["Range"] == "0-1999"
    status = registry.request("GET", location)
    assert status.status == 204 and status.headers["Range"] == "0-1999"
    done = registry.request("PUT", f"{location}?digest={urllib.parse.quote(digest_of(whole))}", chunks[2],
                            {"Content-Type": "application/octet-stream"})
    assert done.status == 201
    assert registry.request("GET", f"/v2/{name}/blobs/{digest_of(whole)}").body == whole
    # A wrong digest is refused and nothing appears.
    location = registry.request("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
    refused = registry.request("PUT", f"{location}?digest={urllib.parse.quote(digest_of(b'other'))}", b"bytes")
    assert refused.status == 400 and refused.error_codes() == ["DIGEST_INVALID"]
    # Cross-repository mount, and a mount from nowhere falling back to an upload.
    other = "conformance/" + unique_name("other").lower()
    server.client(service="ecr").create_repository(repositoryName=other)
    mounted = registry.request(
        "POST", f"/v2/{other}/blobs/uploads/?mount={urllib.parse.quote(digest_of(whole))}&from={name}")
    assert mounted.status == 201
    assert registry.request("HEAD", f"/v2/{other}/blobs/{digest_of(whole)}").status == 200
    fallback = registry.request(
        "POST", f"/v2/{other}/blobs/uploads/?mount={urllib.parse.quote(digest_of(b'absent'))}&from={name}")
    assert fallback.status == 202 and "/blobs/uploads/" in fallback.headers["Location"]
    # Manifests: by tag and by digest; a manifest naming a missing blob is refused.
    manifest = registry.manifest(name, [data])
    put = registry.put_manifest(name, "v1", manifest)
    assert put.status == 201 and put.headers["Docker-Content-Digest"] == digest_of(manifest)
    assert registry.put_manifest(name, digest_of(manifest), manifest).status == 201
    dangling = json.loads(manifest)
    dangling["layers"][0]["digest"] = digest_of(b"never pushed")
    refused_manifest = registry.put_manifest(name, "v2", json.dumps(dangling).encode())
    assert refused_manifest.status == 400
    assert refused_manifest.error_codes() == ["MANIFEST_BLOB_UNKNOWN"]


def test_content_discovery(registry: Registry, name: str) -> None:
    manifest = registry.manifest(name, [b"layer"])
    tags = [f"t{i:02d}" for i in range(12)]
    for tag in tags:
        assert registry.put_manifest(name, tag, manifest).status == 201
    listed = registry.request("GET", f"/v2/{name}/tags/list")
    assert listed.json() == {"name": name, "tags": tags}
    page = registry.request("GET", f"/v2/{name}/tags/list?n=5")
    assert page.json()["tags"] == tags[:5]
    assert f"last={tags[4]}" in page.headers["Link"]
    rest = registry.request("GET", f"/v2/{name}/tags/list?n=5&last={tags[9]}")
    assert rest.json()["tags"] == tags[10:]
    # Referrers, with and without an artifactType filter.
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(manifest), "size": len(manifest)}
    signature = registry.manifest(name, [b"sig"], artifactType="application/vnd.example.sig", subject=subject)
    sbom = registry.manifest(name, [b"sbom"], artifactType="application/vnd.example.sbom", subject=subject)
    for artifact in (signature, sbom):
        put = registry.put_manifest(name, digest_of(artifact), artifact)
        assert put.status == 201 and put.headers["OCI-Subject"] == digest_of(manifest)
    referrers = registry.request("GET", f"/v2/{name}/referrers/{digest_of(manifest)}")
    assert referrers.status == 200 and referrers.headers["Content-Type"] == OCI_INDEX
    assert {m["digest"] for m in referrers.json()["manifests"]} == {digest_of(signature), digest_of(sbom)}
    filtered = registry.request(
        "GET", f"/v2/{name}/referrers/{digest_of(manifest)}?artifactType=application/vnd.example.sbom")
    assert [m["digest"] for m in filtered.json()["manifests"]] == [digest_of(sbom)]
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    none = registry.request("GET", f"/v2/{name}/referrers/{digest_of(b'no subject')}")
    assert none.status == 200 and none.json()["manifests"] == []


def test_content_management(registry: Registry, name: str) -> None:
    manifest = registry.manifest(name, [b"to delete"])
    digest = digest_of(manifest)
    registry.put_manifest(name, "a", manifest)
    registry.put_manifest(name, "b", manifest)
    assert registry.request("DELETE", f"/v2/{name}/manifests/a").status == 202
    assert registry.request("GET", f"/v2/{name}/tags/list").json()["tags"] == ["b"]
    assert registry.request("DELETE", f"/v2/{name}/manifests/{digest}").status == 202
    assert registry.request("GET", f"/v2/{name}/manifests/{digest}").status == 404
    assert registry.request("GET", f"/v2/{name}/manifests/b").status == 404
    # Blobs are not deleted one by one (the spec allows 405), images are.
    blob = registry.request("DELETE", f"/v2/{name}/blobs/{digest_of(b'to delete')}")
    assert blob.status == 405 and blob.error_codes() == ["UNSUPPORTED"]
    # An abandoned upload can be cancelled.
    location = registry.request("POST", f"/v2/{name}/blobs/uploads/").headers["Location"]
    assert registry.request("DELETE", location).status == 204
    gone = registry.request("GET", location)
    assert gone.status == 404 and gone.error_codes() == ["BLOB_UPLOAD_UNKNOWN"]


def test_credentials(server: BerthServer, name: str, registry: Registry) -> None:
    assert server.endpoint is not None
    anonymous = Registry(server.endpoint, None)
    base = anonymous.request("GET", "/v2/")
    assert base.status == 401 and base.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert anonymous.request("GET", f"/v2/{name}/tags/list").status == 401
    assert Registry(server.endpoint, "forged.token").request("GET", "/v2/").status == 401
    assert registry.request("GET", "/v2/").status == 200
    missing = registry.request("GET", "/v2/conformance/no-such-repository/tags/list")
    assert missing.status == 404 and missing.error_codes() == ["NAME_UNKNOWN"]
