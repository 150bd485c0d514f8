//! The registry end to end on the in-memory store and blob store: what
//! `docker push` and `docker pull` send, and the spec's edge cases.

use std::sync::Arc;

use api::access_keys::AccessKeys;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use control_plane::{RegistryService, RequestBody};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use crate::auth::{self, Grant};
use crate::manifest::{sha256_digest, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::records::{repository_key, RepositoryRecord};
use crate::{Ecr, Registry};

const NOW: i64 = 1_800_000_000_000;
const ACCOUNT: &str = "000000000000";

struct Harness {
    ecr: Arc<Ecr>,
    registry: Registry,
    password: String,
}

fn now() -> i64 {
    NOW
}

impl Harness {
    async fn new() -> Self {
        let store: Arc<dyn store::Store> = Arc::new(store::MemoryStore::new());
        let keys = AccessKeys::load(&*store).await.unwrap();
        let key = keys
            .ensure_account_key(&*store, ACCOUNT, NOW, &mut rand::rngs::OsRng)
            .await
            .unwrap();
        let ecr = Arc::new(Ecr::new(
            Arc::clone(&store),
            Arc::new(blob_store::MemoryBlobStore::new()),
            Arc::new(keys),
        ));
        ecr.set_registry_address("127.0.0.1:4566".into());
        let grant = Grant {
            access_key_id: key.access_key_id.clone(),
            region: "us-east-1".into(),
            account_id: ACCOUNT.into(),
            expires_ms: NOW + auth::TOKEN_LIFETIME_MS,
        };
        let password = auth::issue_password(&grant, &key.secret_access_key);
        let registry = Registry::new(Arc::clone(&ecr), "us-east-1", ACCOUNT, now);
        let harness = Harness {
            ecr,
            registry,
            password,
        };
        harness.repository("web", "MUTABLE", None).await;
        harness
    }

    async fn repository(&self, name: &str, mutability: &str, policy: Option<&str>) {
        let record = RepositoryRecord {
            name: name.into(),
            created_ms: NOW,
            image_tag_mutability: mutability.into(),
            image_tag_mutability_exclusion_filters: Vec::new(),
            image_scanning_configuration: None,
            encryption_configuration: None,
            tags: Default::default(),
            lifecycle_policy: None,
            lifecycle_policy_updated_ms: None,
            repository_policy: policy.map(str::to_string),
        };
        let key = repository_key("us-east-1", name);
        api::records::Write::new()
            .put(&key, &record)
            .commit(&*self.ecr.store)
            .await
            .unwrap();
    }

    fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("AWS:{}", self.password))
        )
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
        authenticated: bool,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(uri);
        if authenticated {
            builder = builder.header("authorization", self.basic());
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body: RequestBody = Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync();
        let response = self.registry.serve(builder.body(body).unwrap()).await;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn call(&self, method: Method, uri: &str, body: impl Into<Bytes>) -> Reply {
        self.send(method, uri, &[], body, true).await
    }

    /// Pushes a blob the way docker does: POST, PATCH, PUT ?digest.
    async fn push_blob(&self, repository: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let started = self
            .call(
                Method::POST,
                &format!("/v2/{repository}/blobs/uploads/"),
                "",
            )
            .await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text());
        let location = started.header("location");
        assert_eq!(started.header("range"), "0-0");
        let patched = self.call(Method::PATCH, &location, data.to_vec()).await;
        assert_eq!(patched.status, StatusCode::ACCEPTED, "{}", patched.text());
        assert_eq!(patched.header("range"), format!("0-{}", data.len() - 1));
        let done = self
            .call(Method::PUT, &format!("{location}?digest={digest}"), "")
            .await;
        assert_eq!(done.status, StatusCode::CREATED, "{}", done.text());
        assert_eq!(done.header("docker-content-digest"), digest);
        digest
    }

    /// Pushes a config and a layer and returns the manifest for them.
    async fn image(&self, repository: &str, marker: &str) -> String {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","marker":"{marker}"}}"#);
        let layer = format!("layer bytes of {marker}").repeat(100);
        let config_digest = self.push_blob(repository, config.as_bytes()).await;
        let layer_digest = self.push_blob(repository, layer.as_bytes()).await;
        json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": config.len(), "digest": config_digest},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": layer.len(), "digest": layer_digest}],
        })
        .to_string()
    }

    async fn put_manifest(&self, repository: &str, reference: &str, manifest: &str) -> Reply {
        let media_type = serde_json::from_str::<Value>(manifest).unwrap()["mediaType"]
            .as_str()
            .unwrap_or(OCI_MANIFEST)
            .to_string();
        self.send(
            Method::PUT,
            &format!("/v2/{repository}/manifests/{reference}"),
            &[("content-type", &media_type)],
            manifest.to_string(),
            true,
        )
        .await
    }
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[tokio::test]
async fn docker_login_needs_the_token_ecr_issued() {
    let h = Harness::new().await;
    let anonymous = h.send(Method::GET, "/v2/", &[], "", false).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous
        .header("www-authenticate")
        .starts_with("Basic realm="));
    assert_eq!(
        anonymous.header("docker-distribution-api-version"),
        "registry/2.0"
    );
    let ok = h.call(Method::GET, "/v2/", "").await;
    assert_eq!(ok.status, StatusCode::OK);
    let wrong = format!("Basic {}", STANDARD.encode("AWS:not-a-token"));
    let refused = h
        .send(Method::GET, "/v2/", &[("authorization", &wrong)], "", false)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.error_code(), "UNAUTHORIZED");
    // Pushing anonymously is refused even where pulling is allowed.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}"#;
    h.repository("public", "MUTABLE", Some(policy)).await;
    let push = h
        .send(Method::POST, "/v2/public/blobs/uploads/", &[], "", false)
        .await;
    assert_eq!(push.status, StatusCode::UNAUTHORIZED);
    // Pulling anonymously: only where the policy allows everyone.
    let manifest = h.image("public", "open").await;
    assert_eq!(
        h.put_manifest("public", "1", &manifest).await.status,
        StatusCode::CREATED
    );
    let open = h
        .send(Method::GET, "/v2/public/manifests/1", &[], "", false)
        .await;
    assert_eq!(open.status, StatusCode::OK);
    assert_eq!(open.text(), manifest);
    let closed = h
        .send(Method::GET, "/v2/web/manifests/1", &[], "", false)
        .await;
    assert_eq!(closed.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_pushed_image_pulls_back_byte_for_byte() {
    let h = Harness::new().await;
    let manifest = h.image("web", "one").await;
    let digest = sha256_digest(manifest.as_bytes());
    let put = h.put_manifest("web", "1", &manifest).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
    assert_eq!(put.header("docker-content-digest"), digest);
    assert_eq!(
        put.header("location"),
        format!("/v2/web/manifests/{digest}")
    );

    for reference in ["1", digest.as_str()] {
        let got = h
            .call(Method::GET, &format!("/v2/web/manifests/{reference}"), "")
            .await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.text(), manifest);
        assert_eq!(got.header("content-type"), DOCKER_MANIFEST);
        assert_eq!(got.header("docker-content-digest"), digest);
        let head = h
            .call(Method::HEAD, &format!("/v2/web/manifests/{reference}"), "")
            .await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty());
        assert_eq!(head.header("content-length"), manifest.len().to_string());
    }
    let parsed: Value = serde_json::from_str(&manifest).unwrap();
    let layer = parsed["layers"][0]["digest"].as_str().unwrap();
    let blob = h
        .call(Method::GET, &format!("/v2/web/blobs/{layer}"), "")
        .await;
    assert_eq!(blob.status, StatusCode::OK);
    assert_eq!(sha256_digest(&blob.body), layer);
    let ranged = h
        .send(
            Method::GET,
            &format!("/v2/web/blobs/{layer}"),
            &[("range", "bytes=6-10")],
            "",
            true,
        )
        .await;
    assert_eq!(ranged.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&ranged.body[..], &blob.body[6..11]);
    assert_eq!(
        ranged.header("content-range"),
        format!("bytes 6-10/{}", blob.body.len())
    );
    let missing = h.call(Method::GET, "/v2/web/manifests/2", "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "MANIFEST_UNKNOWN");
    let no_repo = h.call(Method::GET, "/v2/nope/manifests/1", "").await;
    assert_eq!(no_repo.error_code(), "NAME_UNKNOWN");
    assert_eq!(
        no_repo.json()["errors"][0]["message"],
        "The repository with name 'nope' does not exist in the registry with id '000000000000'"
    );
}

#[tokio::test]
async fn manifests_must_reference_what_the_repository_holds() {
    let h = Harness::new().await;
    let manifest = h.image("web", "one").await;
    h.repository("other", "MUTABLE", None).await;
    // `other` holds none of the layers.
    let refused = h.put_manifest("other", "1", &manifest).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "MANIFEST_BLOB_UNKNOWN");
    // A cross-repository mount makes them available without re-upload.
    let parsed: Value = serde_json::from_str(&manifest).unwrap();
    for digest in [&parsed["config"]["digest"], &parsed["layers"][0]["digest"]] {
        let digest = digest.as_str().unwrap();
        let mounted = h
            .call(
                Method::POST,
                &format!("/v2/other/blobs/uploads/?mount={digest}&from=web"),
                "",
            )
            .await;
        assert_eq!(mounted.status, StatusCode::CREATED, "{}", mounted.text());
    }
    assert_eq!(
        h.put_manifest("other", "1", &manifest).await.status,
        StatusCode::CREATED
    );
    // PUT by digest checks the digest.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let mismatch = h.put_manifest("web", &wrong, &manifest).await;
    assert_eq!(mismatch.error_code(), "DIGEST_INVALID");
    let garbage = h.put_manifest("web", "1", "{\"schemaVersion\":2}").await;
    assert_eq!(garbage.error_code(), "MANIFEST_INVALID");
}

#[tokio::test]
async fn uploads_verify_digests_and_chunks_follow_each_other() {
    let h = Harness::new().await;
    let started = h.call(Method::POST, "/v2/web/blobs/uploads/", "").await;
    let location = started.header("location");
    let first = h
        .send(
            Method::PATCH,
            &location,
            &[("content-range", "0-4")],
            "hello",
            true,
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let out_of_order = h
        .send(
            Method::PATCH,
            &location,
            &[("content-range", "2-6")],
            "xxxxx",
            true,
        )
        .await;
    assert_eq!(out_of_order.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let status = h.call(Method::GET, &location, "").await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-4");
    let wrong = sha256_digest(b"something else");
    let refused = h
        .call(Method::PUT, &format!("{location}?digest={wrong}"), " world")
        .await;
    assert_eq!(refused.error_code(), "DIGEST_INVALID");
    // The refused upload is gone and nothing became visible.
    let gone = h.call(Method::GET, &location, "").await;
    assert_eq!(gone.error_code(), "BLOB_UPLOAD_UNKNOWN");
    let blob = h
        .call(Method::HEAD, &format!("/v2/web/blobs/{wrong}"), "")
        .await;
    assert_eq!(blob.status, StatusCode::NOT_FOUND);

    // Monolithic upload: POST ?digest with the body.
    let digest = sha256_digest(b"all at once");
    let whole = h
        .call(
            Method::POST,
            &format!("/v2/web/blobs/uploads/?digest={digest}"),
            "all at once",
        )
        .await;
    assert_eq!(whole.status, StatusCode::CREATED);
    let head = h
        .call(Method::HEAD, &format!("/v2/web/blobs/{digest}"), "")
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), "11");
}

#[tokio::test]
async fn immutable_tags_refuse_to_move_with_ecrs_message() {
    let h = Harness::new().await;
    h.repository("frozen", "IMMUTABLE", None).await;
    let first = h.image("frozen", "one").await;
    let second = h.image("frozen", "two").await;
    assert_eq!(
        h.put_manifest("frozen", "1", &first).await.status,
        StatusCode::CREATED
    );
    // The same image again under the same tag is fine (docker push twice).
    assert_eq!(
        h.put_manifest("frozen", "1", &first).await.status,
        StatusCode::CREATED
    );
    let refused = h.put_manifest("frozen", "1", &second).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "TAG_INVALID");
    assert_eq!(
        refused.json()["errors"][0]["message"],
        "The image tag '1' already exists in the 'frozen' repository and cannot be overwritten because the tag is immutable."
    );
    // On a mutable repository the tag moves; the old image stays, untagged.
    let old = h.image("web", "one").await;
    let new = h.image("web", "two").await;
    h.put_manifest("web", "latest", &old).await;
    h.put_manifest("web", "latest", &new).await;
    let tagged = h.call(Method::GET, "/v2/web/manifests/latest", "").await;
    assert_eq!(tagged.text(), new);
    let by_digest = h
        .call(
            Method::GET,
            &format!("/v2/web/manifests/{}", sha256_digest(old.as_bytes())),
            "",
        )
        .await;
    assert_eq!(by_digest.status, StatusCode::OK);
}

#[tokio::test]
async fn tags_list_pages_and_deletes_untag() {
    let h = Harness::new().await;
    let manifest = h.image("web", "one").await;
    for tag in ["c", "a", "b"] {
        h.put_manifest("web", tag, &manifest).await;
    }
    let all = h.call(Method::GET, "/v2/web/tags/list", "").await;
    assert_eq!(all.json(), json!({"name": "web", "tags": ["a", "b", "c"]}));
    let page = h.call(Method::GET, "/v2/web/tags/list?n=2", "").await;
    assert_eq!(page.json()["tags"], json!(["a", "b"]));
    assert_eq!(
        page.header("link"),
        "</v2/web/tags/list?n=2&last=b>; rel=\"next\""
    );
    let rest = h
        .call(Method::GET, "/v2/web/tags/list?n=2&last=b", "")
        .await;
    assert_eq!(rest.json()["tags"], json!(["c"]));
    assert_eq!(rest.header("link"), "");

    let deleted = h.call(Method::DELETE, "/v2/web/manifests/a", "").await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    let after = h.call(Method::GET, "/v2/web/tags/list", "").await;
    assert_eq!(after.json()["tags"], json!(["b", "c"]));
    let digest = sha256_digest(manifest.as_bytes());
    assert_eq!(
        h.call(Method::DELETE, &format!("/v2/web/manifests/{digest}"), "")
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        h.call(Method::GET, "/v2/web/tags/list", "").await.json()["tags"],
        json!([])
    );
}

#[tokio::test]
async fn indexes_and_referrers() {
    let h = Harness::new().await;
    let amd64 = h.image("web", "amd64").await;
    let arm64 = h.image("web", "arm64").await;
    let amd64_digest = sha256_digest(amd64.as_bytes());
    let arm64_digest = sha256_digest(arm64.as_bytes());
    h.put_manifest("web", &amd64_digest, &amd64).await;
    // An index may only name manifests the repository holds.
    let index = |children: &[(&str, &str, usize)]| {
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": children.iter().map(|(digest, arch, size)| json!({
                "mediaType": DOCKER_MANIFEST, "digest": digest, "size": size,
                "platform": {"os": "linux", "architecture": arch}
            })).collect::<Vec<_>>(),
        })
        .to_string()
    };
    let both = index(&[
        (&amd64_digest, "amd64", amd64.len()),
        (&arm64_digest, "arm64", arm64.len()),
    ]);
    let refused = h.put_manifest("web", "multi", &both).await;
    assert_eq!(refused.error_code(), "MANIFEST_UNKNOWN");
    h.put_manifest("web", &arm64_digest, &arm64).await;
    let stored = h.put_manifest("web", "multi", &both).await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text());
    let got = h.call(Method::GET, "/v2/web/manifests/multi", "").await;
    assert_eq!(got.header("content-type"), OCI_INDEX);

    // A signature-like artifact whose subject is the amd64 image.
    let config = b"{}";
    let config_digest = h.push_blob("web", config).await;
    let artifact = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": config_digest},
        "layers": [],
        "subject": {"mediaType": DOCKER_MANIFEST, "digest": amd64_digest, "size": amd64.len()},
        "annotations": {"org.example": "yes"},
    })
    .to_string();
    let artifact_digest = sha256_digest(artifact.as_bytes());
    let put = h.put_manifest("web", &artifact_digest, &artifact).await;
    assert_eq!(put.header("oci-subject"), amd64_digest);
    let referrers = h
        .call(
            Method::GET,
            &format!("/v2/web/referrers/{amd64_digest}"),
            "",
        )
        .await;
    let listed = referrers.json();
    assert_eq!(listed["mediaType"], OCI_INDEX);
    assert_eq!(listed["manifests"][0]["digest"], artifact_digest);
    assert_eq!(
        listed["manifests"][0]["artifactType"],
        "application/vnd.example.signature"
    );
    assert_eq!(listed["manifests"][0]["annotations"]["org.example"], "yes");
    let filtered = h
        .call(
            Method::GET,
            &format!("/v2/web/referrers/{amd64_digest}?artifactType=other"),
            "",
        )
        .await;
    assert_eq!(filtered.json()["manifests"], json!([]));
    assert_eq!(filtered.header("oci-filters-applied"), "artifactType");
}

#[tokio::test]
async fn garbage_collection_keeps_what_images_use_and_frees_the_rest() {
    let h = Harness::new().await;
    let kept = h.image("web", "kept").await;
    h.put_manifest("web", "1", &kept).await;
    let dropped = h.image("web", "dropped").await;
    h.put_manifest("web", "2", &dropped).await;
    h.call(Method::DELETE, "/v2/web/manifests/2", "").await;
    let mut collector = crate::GarbageCollector::default();
    let later = NOW + crate::gc::LAYER_GRACE_MS + 1;
    let first = collector.collect(&h.ecr, later).await.unwrap();
    assert_eq!(
        first.layers_unlinked, 2,
        "config and layer of the deleted image"
    );
    assert_eq!(first.blobs_deleted, 0, "deleted only on the next pass");
    let second = collector.collect(&h.ecr, later).await.unwrap();
    assert_eq!(second.blobs_deleted, 2);
    let parsed: Value = serde_json::from_str(&kept).unwrap();
    let layer = parsed["layers"][0]["digest"].as_str().unwrap();
    let still = h
        .call(Method::GET, &format!("/v2/web/blobs/{layer}"), "")
        .await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(
        collector.collect(&h.ecr, later).await.unwrap(),
        crate::CollectionPass::default()
    );
}
