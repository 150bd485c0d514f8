//! The ECR API end to end on the in-memory store and blob store: every
//! operation, its checks and its errors, through `Ecr::handle`.

use std::cell::Cell;
use std::sync::Arc;

use api::access_keys::{AccessKey, AccessKeys};
use api::{ApiError, RequestContext};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::SeedableRng;
use serde_json::{json, Value};

use super::lifecycle_policy::MILLIS_PER_DAY;
use crate::auth;
use crate::manifest::{sha256_digest, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::Ecr;

const NOW: i64 = 1_800_000_000_000;
const ACCOUNT: &str = "000000000000";
const REGISTRY: &str = "127.0.0.1:4566";

struct Harness {
    ecr: Arc<Ecr>,
    key: AccessKey,
    now_ms: Cell<i64>,
}

impl Harness {
    async fn new() -> Self {
        let store: Arc<dyn store::Store> = Arc::new(store::MemoryStore::new());
        let keys = AccessKeys::load(&*store).await.unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let key = keys
            .ensure_account_key(&*store, ACCOUNT, NOW, &mut rng)
            .await
            .unwrap();
        let ecr = Arc::new(Ecr::new(
            store,
            Arc::new(blob_store::MemoryBlobStore::new()),
            Arc::new(keys),
        ));
        ecr.set_registry_address(REGISTRY.into());
        Harness {
            ecr,
            key,
            now_ms: Cell::new(NOW),
        }
    }

    fn ctx(&self) -> RequestContext {
        RequestContext {
            region: "us-east-1".into(),
            account_id: ACCOUNT.into(),
            principal_arn: format!("arn:aws:iam::{ACCOUNT}:root"),
            access_key_id: self.key.access_key_id.clone(),
            request_id: "request".into(),
            now_ms: self.now_ms.get(),
        }
    }

    async fn call(&self, operation: &str, body: Value) -> Result<Value, ApiError> {
        let response = self
            .ecr
            .handle(&self.ctx(), operation, body.to_string().as_bytes())
            .await?;
        Ok(serde_json::from_slice(&response).unwrap())
    }

    async fn ok(&self, operation: &str, body: Value) -> Value {
        match self.call(operation, body).await {
            Ok(value) => value,
            Err(err) => panic!("{operation}: {err}"),
        }
    }

    async fn err(&self, operation: &str, body: Value) -> (String, String) {
        match self.call(operation, body).await {
            Ok(value) => panic!("{operation} succeeded: {value}"),
            Err(err) => (err.code.to_string(), err.message),
        }
    }

    async fn code(&self, operation: &str, body: Value) -> String {
        self.err(operation, body).await.0
    }

    async fn repository(&self, name: &str) -> Value {
        self.ok("CreateRepository", json!({"repositoryName": name}))
            .await
    }

    /// Uploads `data` in parts of `part` bytes; returns its digest.
    async fn push_layer_in_parts(&self, repository: &str, data: &[u8], part: usize) -> String {
        let started = self
            .ok("InitiateLayerUpload", json!({"repositoryName": repository}))
            .await;
        let upload_id = started["uploadId"].as_str().unwrap().to_string();
        let mut first = 0;
        for chunk in data.chunks(part) {
            let sent = self
                .ok(
                    "UploadLayerPart",
                    json!({
                        "repositoryName": repository, "uploadId": upload_id,
                        "partFirstByte": first, "partLastByte": first + chunk.len() - 1,
                        "layerPartBlob": STANDARD.encode(chunk),
                    }),
                )
                .await;
            first += chunk.len();
            assert_eq!(sent["lastByteReceived"], first as i64 - 1);
        }
        let digest = sha256_digest(data);
        let done = self
            .ok(
                "CompleteLayerUpload",
                json!({"repositoryName": repository, "uploadId": upload_id, "layerDigests": [digest]}),
            )
            .await;
        assert_eq!(done["layerDigest"], digest);
        digest
    }

    /// Uploads `data` unless the repository holds it already (as `docker
    /// push` asks first).
    async fn push_layer(&self, repository: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let checked = self
            .ok(
                "BatchCheckLayerAvailability",
                json!({"repositoryName": repository, "layerDigests": [digest]}),
            )
            .await;
        if checked["layers"].as_array().unwrap().is_empty() {
            self.push_layer_in_parts(repository, data, 1 << 20).await
        } else {
            digest
        }
    }

    /// Pushes a Docker image whose config and layer are made from `seed`;
    /// returns its digest and manifest.
    async fn push_image(
        &self,
        repository: &str,
        tag: Option<&str>,
        seed: &str,
    ) -> (String, String) {
        let manifest = self.image_manifest(repository, seed).await;
        let mut body = json!({"repositoryName": repository, "imageManifest": manifest});
        if let Some(tag) = tag {
            body["imageTag"] = json!(tag);
        }
        let put = self.ok("PutImage", body).await;
        let digest = put["image"]["imageId"]["imageDigest"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(digest, sha256_digest(manifest.as_bytes()));
        (digest, manifest)
    }

    async fn image_manifest(&self, repository: &str, seed: &str) -> String {
        let config = format!("{{\"config\":\"{seed}\"}}");
        let layer = format!("layer of {seed}");
        let config_digest = self.push_layer(repository, config.as_bytes()).await;
        let layer_digest = self.push_layer(repository, layer.as_bytes()).await;
        docker_manifest(&config_digest, config.len(), &layer_digest, layer.len())
    }
}

fn docker_manifest(config: &str, config_size: usize, layer: &str, layer_size: usize) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{config_size},"digest":"{config}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{layer_size},"digest":"{layer}"}}]}}"#
    )
}

fn strings(value: &Value, member: &str) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[member].as_str().unwrap_or("-").to_string())
        .collect()
}

#[tokio::test]
async fn operations_outside_berth_or_the_model_are_refused() {
    let h = Harness::new().await;
    assert_eq!(
        h.err("CreatePullThroughCacheRule", json!({})).await,
        (
            "InvalidOperationException".into(),
            "The operation CreatePullThroughCacheRule is not supported by Berth yet.".into()
        )
    );
    assert_eq!(
        h.code("MakeCoffee", json!({})).await,
        "UnknownOperationException"
    );
    for operation in super::SUPPORTED_OPERATIONS {
        assert!(ecr_wire::find_operation(operation).is_some(), "{operation}");
    }
}

#[tokio::test]
async fn repositories_are_created_with_ecrs_defaults() {
    let h = Harness::new().await;
    let created = h.repository("team/web").await;
    let repository = &created["repository"];
    assert_eq!(
        repository["repositoryArn"],
        "arn:aws:ecr:us-east-1:000000000000:repository/team/web"
    );
    assert_eq!(repository["registryId"], ACCOUNT);
    assert_eq!(repository["repositoryUri"], "127.0.0.1:4566/team/web");
    assert_eq!(repository["createdAt"], NOW as f64 / 1000.0);
    assert_eq!(repository["imageTagMutability"], "MUTABLE");
    assert_eq!(
        repository["imageScanningConfiguration"],
        json!({"scanOnPush": false})
    );
    assert_eq!(
        repository["encryptionConfiguration"],
        json!({"encryptionType": "AES256"})
    );
    assert!(repository
        .get("imageTagMutabilityExclusionFilters")
        .is_none());

    assert_eq!(
        h.err("CreateRepository", json!({"repositoryName": "team/web"})).await,
        (
            "RepositoryAlreadyExistsException".into(),
            "The repository with name 'team/web' already exists in the registry with id '000000000000'".into()
        )
    );

    let configured = h
        .ok(
            "CreateRepository",
            json!({
                "repositoryName": "locked",
                "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "dev-*"}],
                "imageScanningConfiguration": {"scanOnPush": true},
                "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:000000000000:key/k"},
                "tags": [{"Key": "team", "Value": "a"}],
            }),
        )
        .await;
    let repository = &configured["repository"];
    assert_eq!(repository["imageTagMutability"], "IMMUTABLE_WITH_EXCLUSION");
    assert_eq!(
        repository["imageTagMutabilityExclusionFilters"],
        json!([{"filterType": "WILDCARD", "filter": "dev-*"}])
    );
    assert_eq!(repository["imageScanningConfiguration"]["scanOnPush"], true);
    assert_eq!(
        repository["encryptionConfiguration"]["encryptionType"],
        "KMS"
    );
    let tags = h
        .ok(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:ecr:us-east-1:000000000000:repository/locked"}),
        )
        .await;
    assert_eq!(tags["tags"], json!([{"Key": "team", "Value": "a"}]));
}

#[tokio::test]
async fn bad_repository_requests_say_what_is_wrong() {
    let h = Harness::new().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"repositoryName": "Web"}),
            "InvalidParameterException",
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''",
        ),
        (
            json!({"repositoryName": "a"}),
            "InvalidParameterException",
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must have length greater than or equal to 2'",
        ),
        (
            json!({"repositoryName": "web", "registryId": "111111111111"}),
            "InvalidParameterException",
            "Invalid parameter at 'registryId' failed to satisfy constraint: 'Berth serves only the registry of account '000000000000'; omit registryId or pass that id'",
        ),
        (
            json!({"repositoryName": "web", "imageTagMutability": "MUTABLE_WITH_EXCLUSION"}),
            "InvalidParameterException",
            "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'must be specified when imageTagMutability is MUTABLE_WITH_EXCLUSION'",
        ),
        (
            json!({"repositoryName": "web", "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "x"}]}),
            "InvalidParameterException",
            "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'can only be specified when imageTagMutability is MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION, not MUTABLE'",
        ),
        (
            json!({"repositoryName": "web", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "a b"}]}),
            "InvalidParameterException",
            "Invalid parameter at 'imageTagMutabilityExclusionFilters.filter' failed to satisfy constraint: 'must satisfy regular expression '^[0-9a-zA-Z._*-]{1,128}$''",
        ),
        (
            json!({"repositoryName": "web", "imageTagMutability": "SOMETIMES"}),
            "InvalidParameterException",
            "imageTagMutability should be one of [MUTABLE,IMMUTABLE,IMMUTABLE_WITH_EXCLUSION,MUTABLE_WITH_EXCLUSION]; 'SOMETIMES' is not.",
        ),
        (
            json!({"repositoryName": "web", "encryptionConfiguration": {"encryptionType": "AES256", "kmsKey": "k"}}),
            "InvalidParameterException",
            "Invalid parameter at 'encryptionConfiguration.kmsKey' failed to satisfy constraint: 'KMS key can only be specified when encryptionType is KMS or KMS_DSSE'",
        ),
        (
            json!({"repositoryName": "web", "tags": [{"Key": "aws:x", "Value": "v"}]}),
            "InvalidTagParameterException",
            "The tag key 'aws:x' uses the reserved prefix 'aws:'",
        ),
    ];
    for (body, code, message) in cases {
        assert_eq!(
            h.err("CreateRepository", body.clone()).await,
            (code.to_string(), message.to_string()),
            "{body}"
        );
    }
    let too_many: Vec<Value> = (0..51)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    assert_eq!(
        h.code(
            "CreateRepository",
            json!({"repositoryName": "web", "tags": too_many})
        )
        .await,
        "TooManyTagsException"
    );
    // Nothing was created by the refused requests.
    let all = h.ok("DescribeRepositories", json!({})).await;
    assert_eq!(all["repositories"], json!([]));
}

#[tokio::test]
async fn repositories_are_described_by_name_and_by_page() {
    let h = Harness::new().await;
    for name in ["b-repo", "a-repo", "c/repo", "d-repo", "e-repo"] {
        h.repository(name).await;
    }
    let named = h
        .ok(
            "DescribeRepositories",
            json!({"repositoryNames": ["d-repo", "a-repo"]}),
        )
        .await;
    assert_eq!(
        strings(&named["repositories"], "repositoryName"),
        ["d-repo", "a-repo"]
    );
    assert_eq!(
        h.err("DescribeRepositories", json!({"repositoryNames": ["a-repo", "missing"]}))
            .await,
        (
            "RepositoryNotFoundException".into(),
            "The repository with name 'missing' does not exist in the registry with id '000000000000'".into()
        )
    );
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"maxResults": 2});
        if let Some(token) = &token {
            body["nextToken"] = json!(token);
        }
        let page = h.ok("DescribeRepositories", body).await;
        let names = strings(&page["repositories"], "repositoryName");
        assert!(names.len() <= 2);
        seen.extend(names);
        match page.get("nextToken").and_then(Value::as_str) {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["a-repo", "b-repo", "c/repo", "d-repo", "e-repo"]);
    assert_eq!(
        h.code("DescribeRepositories", json!({"maxResults": 0}))
            .await,
        "InvalidParameterException"
    );
    assert_eq!(
        h.code("DescribeRepositories", json!({"nextToken": "garbage"}))
            .await,
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn repositories_with_images_are_deleted_only_by_force() {
    let h = Harness::new().await;
    h.repository("web").await;
    h.repository("web/api").await;
    h.push_image("web", Some("v1"), "one").await;
    h.push_image("web/api", Some("v1"), "api").await;
    h.ok("InitiateLayerUpload", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(
        h.err("DeleteRepository", json!({"repositoryName": "web"})).await,
        (
            "RepositoryNotEmptyException".into(),
            "The repository with name 'web' in registry with id '000000000000' cannot be deleted because it still contains images".into()
        )
    );
    let deleted = h
        .ok(
            "DeleteRepository",
            json!({"repositoryName": "web", "force": true}),
        )
        .await;
    assert_eq!(deleted["repository"]["repositoryName"], "web");
    let left = h
        .ecr
        .store
        .range(store::RangeRequest::prefix("/ecr/us-east-1/"))
        .await
        .unwrap();
    let keys: Vec<&str> = left
        .kvs
        .iter()
        .map(|kv| kv.key.as_str())
        .filter(|key| key.contains("/web:") || key.ends_with("/web"))
        .collect();
    assert!(keys.is_empty(), "{keys:?}");
    // The other repository, whose name starts the same, is intact.
    let images = h
        .ok("ListImages", json!({"repositoryName": "web/api"}))
        .await;
    assert_eq!(images["imageIds"].as_array().unwrap().len(), 1);
    assert_eq!(
        h.code("DeleteRepository", json!({"repositoryName": "web"}))
            .await,
        "RepositoryNotFoundException"
    );
    h.repository("empty").await;
    h.ok("DeleteRepository", json!({"repositoryName": "empty"}))
        .await;
}

#[tokio::test]
async fn layers_are_uploaded_in_parts_and_checked() {
    let h = Harness::new().await;
    h.repository("web").await;
    let started = h
        .ok("InitiateLayerUpload", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(started["partSize"], 10_485_760);
    let upload_id = started["uploadId"].as_str().unwrap().to_string();

    let part = |first: i64, last: i64, data: &[u8]| {
        json!({"repositoryName": "web", "uploadId": upload_id, "partFirstByte": first,
               "partLastByte": last, "layerPartBlob": STANDARD.encode(data)})
    };
    assert_eq!(
        h.err("CompleteLayerUpload", json!({"repositoryName": "web", "uploadId": upload_id, "layerDigests": [sha256_digest(b"")]}))
            .await,
        (
            "EmptyUploadException".into(),
            format!("The upload with id '{upload_id}' in the repository with name 'web' in registry with id '000000000000' cannot be completed because it does not have any parts")
        )
    );
    assert_eq!(
        h.code("UploadLayerPart", part(0, 5, b"abc")).await,
        "InvalidLayerPartException"
    );
    h.ok("UploadLayerPart", part(0, 2, b"abc")).await;
    // A part must start where the upload ends.
    assert_eq!(
        h.code("UploadLayerPart", part(5, 7, b"def")).await,
        "InvalidLayerPartException"
    );
    let sent = h.ok("UploadLayerPart", part(3, 5, b"def")).await;
    assert_eq!(sent["lastByteReceived"], 5);
    assert_eq!(sent["uploadId"], upload_id.as_str());
    let mut not_base64 = part(6, 6, b"g");
    not_base64["layerPartBlob"] = json!("!!!");
    assert_eq!(
        h.code("UploadLayerPart", not_base64).await,
        "SerializationException"
    );

    // The wrong digest discards the upload.
    let wrong = sha256_digest(b"something else");
    let (code, message) = h
        .err(
            "CompleteLayerUpload",
            json!({"repositoryName": "web", "uploadId": upload_id, "layerDigests": [wrong]}),
        )
        .await;
    assert_eq!(code, "InvalidLayerException");
    assert!(message.contains(&sha256_digest(b"abcdef")), "{message}");
    assert_eq!(
        h.code("UploadLayerPart", part(6, 6, b"g")).await,
        "UploadNotFoundException"
    );

    let digest = h.push_layer_in_parts("web", b"abcdef", 2).await;
    let checked = h
        .ok(
            "BatchCheckLayerAvailability",
            json!({"repositoryName": "web", "layerDigests": [digest, sha256_digest(b"nope"), "not-a-digest"]}),
        )
        .await;
    assert_eq!(
        checked["layers"],
        json!([{"layerDigest": digest, "layerAvailability": "AVAILABLE", "layerSize": 6}])
    );
    assert_eq!(
        checked["failures"],
        json!([
            {"layerDigest": sha256_digest(b"nope"), "failureCode": "MissingLayerDigest", "failureReason": "Could not find layer"},
            {"layerDigest": "not-a-digest", "failureCode": "InvalidLayerDigest", "failureReason": "Invalid layer digest"},
        ])
    );

    // Uploading a layer the repository holds already.
    let again = h
        .ok("InitiateLayerUpload", json!({"repositoryName": "web"}))
        .await;
    let again_id = again["uploadId"].as_str().unwrap();
    h.ok(
        "UploadLayerPart",
        json!({"repositoryName": "web", "uploadId": again_id, "partFirstByte": 0, "partLastByte": 5,
               "layerPartBlob": STANDARD.encode(b"abcdef")}),
    )
    .await;
    assert_eq!(
        h.err("CompleteLayerUpload", json!({"repositoryName": "web", "uploadId": again_id, "layerDigests": [digest]}))
            .await,
        (
            "LayerAlreadyExistsException".into(),
            format!("The layer with digest '{digest}' already exists in the repository with name 'web' in registry with id '000000000000'")
        )
    );

    for (body, code) in [
        (
            json!({"repositoryName": "web", "uploadId": "not-an-id", "layerDigests": [digest]}),
            "InvalidParameterException",
        ),
        (
            json!({"repositoryName": "web", "uploadId": "01234567-89ab-4def-8123-456789abcdef", "layerDigests": [digest]}),
            "UploadNotFoundException",
        ),
        (
            json!({"repositoryName": "web", "uploadId": again_id, "layerDigests": ["sha256:zz"]}),
            "InvalidParameterException",
        ),
        (
            json!({"repositoryName": "web", "uploadId": again_id, "layerDigests": [digest, digest]}),
            "InvalidParameterException",
        ),
        (
            json!({"repositoryName": "gone", "uploadId": again_id, "layerDigests": [digest]}),
            "RepositoryNotFoundException",
        ),
    ] {
        assert_eq!(
            h.code("CompleteLayerUpload", body.clone()).await,
            code,
            "{body}"
        );
    }
    assert_eq!(
        h.code("InitiateLayerUpload", json!({"repositoryName": "gone"}))
            .await,
        "RepositoryNotFoundException"
    );
}

#[tokio::test]
async fn download_urls_carry_a_registry_token() {
    let h = Harness::new().await;
    h.repository("web").await;
    let digest = h.push_layer("web", b"layer bytes").await;
    let got = h
        .ok(
            "GetDownloadUrlForLayer",
            json!({"repositoryName": "web", "layerDigest": digest}),
        )
        .await;
    assert_eq!(got["layerDigest"], digest);
    let url = got["downloadUrl"].as_str().unwrap();
    let prefix = format!("http://{REGISTRY}/v2/web/blobs/{digest}?token=");
    let token = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    let grant = auth::verify_password(token, NOW, |key| h.ecr.access_keys.secret_for(key)).unwrap();
    assert_eq!(grant.expires_ms, NOW + 60 * 60 * 1000);
    assert_eq!(grant.region, "us-east-1");

    let missing = sha256_digest(b"missing");
    assert_eq!(
        h.err("GetDownloadUrlForLayer", json!({"repositoryName": "web", "layerDigest": missing}))
            .await,
        (
            "LayersNotFoundException".into(),
            format!("The layer with digest '{missing}' does not exist within the repository with name 'web' in the registry with id '000000000000'")
        )
    );
    assert_eq!(
        h.code(
            "GetDownloadUrlForLayer",
            json!({"repositoryName": "web", "layerDigest": "bad"})
        )
        .await,
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn authorization_tokens_log_docker_in_for_12_hours() {
    let h = Harness::new().await;
    let got = h.ok("GetAuthorizationToken", json!({})).await;
    let data = &got["authorizationData"];
    assert_eq!(data.as_array().unwrap().len(), 1);
    assert_eq!(data[0]["proxyEndpoint"], format!("http://{REGISTRY}"));
    assert_eq!(
        data[0]["expiresAt"],
        (NOW + auth::TOKEN_LIFETIME_MS) as f64 / 1000.0
    );
    let decoded = STANDARD
        .decode(data[0]["authorizationToken"].as_str().unwrap())
        .unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    let password = decoded.strip_prefix("AWS:").unwrap();
    let grant =
        auth::verify_password(password, NOW, |key| h.ecr.access_keys.secret_for(key)).unwrap();
    assert_eq!(grant.access_key_id, h.key.access_key_id);
    assert_eq!(grant.account_id, ACCOUNT);

    h.ok("GetAuthorizationToken", json!({"registryIds": [ACCOUNT]}))
        .await;
    assert_eq!(
        h.code(
            "GetAuthorizationToken",
            json!({"registryIds": ["111111111111"]})
        )
        .await,
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn images_are_put_tagged_and_refused_as_ecr_does() {
    let h = Harness::new().await;
    h.repository("web").await;
    let (digest, manifest) = h.push_image("web", Some("v1"), "one").await;
    let (code, message) = h
        .err(
            "PutImage",
            json!({"repositoryName": "web", "imageManifest": manifest, "imageTag": "v1"}),
        )
        .await;
    assert_eq!(code, "ImageAlreadyExistsException");
    assert_eq!(
        message,
        format!("Image with digest '{digest}' and tag 'v1' already exists in the repository with name 'web' in registry with id '000000000000'")
    );
    assert_eq!(
        h.code(
            "PutImage",
            json!({"repositoryName": "web", "imageManifest": manifest})
        )
        .await,
        "ImageAlreadyExistsException"
    );
    // Another tag for the same manifest, with its digest and media type.
    let tagged = h
        .ok(
            "PutImage",
            json!({"repositoryName": "web", "imageManifest": manifest, "imageTag": "latest",
                   "imageDigest": digest, "imageManifestMediaType": DOCKER_MANIFEST}),
        )
        .await;
    assert_eq!(
        tagged["image"]["imageId"],
        json!({"imageDigest": digest, "imageTag": "latest"})
    );
    assert_eq!(tagged["image"]["imageManifestMediaType"], DOCKER_MANIFEST);
    assert_eq!(tagged["image"]["registryId"], ACCOUNT);

    let wrong = sha256_digest(b"other");
    assert_eq!(
        h.err("PutImage", json!({"repositoryName": "web", "imageManifest": manifest, "imageTag": "x", "imageDigest": wrong}))
            .await,
        (
            "ImageDigestDoesNotMatchException".into(),
            format!("The provided image digest '{wrong}' does not match the digest '{digest}' calculated for the image manifest")
        )
    );
    let missing_layer = docker_manifest(&sha256_digest(b"c"), 1, &sha256_digest(b"l"), 1);
    let (code, message) = h
        .err(
            "PutImage",
            json!({"repositoryName": "web", "imageManifest": missing_layer}),
        )
        .await;
    assert_eq!(code, "LayersNotFoundException");
    assert!(message.contains(&sha256_digest(b"l")), "{message}");
    for (body, code) in [
        (
            json!({"repositoryName": "web", "imageManifest": "{"}),
            "InvalidParameterException",
        ),
        (
            json!({"repositoryName": "web", "imageManifest": manifest, "imageTag": "bad tag"}),
            "InvalidParameterException",
        ),
        (
            json!({"repositoryName": "web", "imageManifest": manifest, "imageManifestMediaType": OCI_MANIFEST}),
            "InvalidParameterException",
        ),
        (
            json!({"repositoryName": "web"}),
            "InvalidParameterException",
        ),
        (
            json!({"repositoryName": "gone", "imageManifest": manifest}),
            "RepositoryNotFoundException",
        ),
    ] {
        assert_eq!(h.code("PutImage", body.clone()).await, code, "{body}");
    }

    // Immutable tags cannot move; tags matching an exclusion filter can.
    let second = h.image_manifest("web", "two").await;
    h.ok(
        "PutImageTagMutability",
        json!({"repositoryName": "web", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
               "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "late*"}]}),
    )
    .await;
    assert_eq!(
        h.err("PutImage", json!({"repositoryName": "web", "imageManifest": second, "imageTag": "v1"}))
            .await,
        (
            "ImageTagAlreadyExistsException".into(),
            "The image tag 'v1' already exists in the 'web' repository and cannot be overwritten because the tag is immutable.".into()
        )
    );
    h.ok(
        "PutImage",
        json!({"repositoryName": "web", "imageManifest": second, "imageTag": "latest"}),
    )
    .await;
    let described = h
        .ok(
            "DescribeImages",
            json!({"repositoryName": "web", "imageIds": [{"imageDigest": digest}]}),
        )
        .await;
    assert_eq!(described["imageDetails"][0]["imageTags"], json!(["v1"]));
}

#[tokio::test]
async fn repository_settings_are_changed_and_returned() {
    let h = Harness::new().await;
    h.repository("web").await;
    let changed = h
        .ok(
            "PutImageTagMutability",
            json!({"repositoryName": "web", "imageTagMutability": "IMMUTABLE", "registryId": ACCOUNT}),
        )
        .await;
    assert_eq!(
        changed,
        json!({"registryId": ACCOUNT, "repositoryName": "web", "imageTagMutability": "IMMUTABLE"})
    );
    assert_eq!(
        h.code("PutImageTagMutability", json!({"repositoryName": "web"}))
            .await,
        "InvalidParameterException"
    );
    assert_eq!(
        h.code(
            "PutImageTagMutability",
            json!({"repositoryName": "gone", "imageTagMutability": "MUTABLE"})
        )
        .await,
        "RepositoryNotFoundException"
    );
    let scanning = h
        .ok(
            "PutImageScanningConfiguration",
            json!({"repositoryName": "web", "imageScanningConfiguration": {"scanOnPush": true}}),
        )
        .await;
    assert_eq!(
        scanning["imageScanningConfiguration"],
        json!({"scanOnPush": true})
    );
    let described = h
        .ok("DescribeRepositories", json!({"repositoryNames": ["web"]}))
        .await;
    let repository = &described["repositories"][0];
    assert_eq!(repository["imageTagMutability"], "IMMUTABLE");
    assert_eq!(repository["imageScanningConfiguration"]["scanOnPush"], true);

    let registry = h.ok("DescribeRegistry", json!({})).await;
    assert_eq!(
        registry,
        json!({"registryId": ACCOUNT, "replicationConfiguration": {"rules": []}})
    );
}

#[tokio::test]
async fn images_are_listed_once_per_tag_and_described() {
    let h = Harness::new().await;
    h.repository("web").await;
    let (a, _) = h.push_image("web", Some("v1"), "a").await;
    h.ok("PutImage", json!({"repositoryName": "web", "imageManifest": h.image_manifest("web", "a").await, "imageTag": "latest"}))
        .await;
    h.now_ms.set(NOW + 1000);
    let (b, _) = h.push_image("web", None, "b").await;

    let listed = h.ok("ListImages", json!({"repositoryName": "web"})).await;
    let mut ids: Vec<(String, String)> = listed["imageIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            (
                id["imageDigest"].as_str().unwrap().to_string(),
                id["imageTag"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    ids.sort();
    let mut expected = vec![
        (a.clone(), "latest".to_string()),
        (a.clone(), "v1".to_string()),
        (b.clone(), String::new()),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    for (status, count) in [("TAGGED", 2), ("UNTAGGED", 1), ("ANY", 3)] {
        let filtered = h
            .ok(
                "ListImages",
                json!({"repositoryName": "web", "filter": {"tagStatus": status}}),
            )
            .await;
        assert_eq!(
            filtered["imageIds"].as_array().unwrap().len(),
            count,
            "{status}"
        );
    }
    let first = h
        .ok(
            "ListImages",
            json!({"repositoryName": "web", "maxResults": 2}),
        )
        .await;
    assert_eq!(first["imageIds"].as_array().unwrap().len(), 2);
    let rest = h
        .ok(
            "ListImages",
            json!({"repositoryName": "web", "maxResults": 2, "nextToken": first["nextToken"]}),
        )
        .await;
    assert_eq!(rest["imageIds"].as_array().unwrap().len(), 1);
    assert!(rest.get("nextToken").is_none());
    assert_eq!(
        h.code("ListImages", json!({"repositoryName": "gone"}))
            .await,
        "RepositoryNotFoundException"
    );
    assert_eq!(
        h.code(
            "ListImages",
            json!({"repositoryName": "web", "filter": {"tagStatus": "SOME"}})
        )
        .await,
        "InvalidParameterException"
    );

    let described = h
        .ok("DescribeImages", json!({"repositoryName": "web"}))
        .await;
    let details = described["imageDetails"].as_array().unwrap();
    assert_eq!(details.len(), 2);
    let detail_a = details
        .iter()
        .find(|d| d["imageDigest"] == a.as_str())
        .unwrap();
    assert_eq!(detail_a["imageTags"], json!(["v1", "latest"]));
    assert_eq!(detail_a["registryId"], ACCOUNT);
    assert_eq!(detail_a["repositoryName"], "web");
    assert_eq!(detail_a["imagePushedAt"], NOW as f64 / 1000.0);
    assert_eq!(detail_a["imageManifestMediaType"], DOCKER_MANIFEST);
    assert_eq!(
        detail_a["artifactMediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(detail_a["imageSizeInBytes"], "layer of a".len() as i64);
    assert!(detail_a.get("lastRecordedPullTime").is_none());
    let untagged = h
        .ok(
            "DescribeImages",
            json!({"repositoryName": "web", "filter": {"tagStatus": "UNTAGGED"}}),
        )
        .await;
    assert_eq!(
        strings(&untagged["imageDetails"], "imageDigest"),
        [b.as_str()]
    );
    assert!(untagged["imageDetails"][0].get("imageTags").is_none());
    let by_tag = h
        .ok("DescribeImages", json!({"repositoryName": "web", "imageIds": [{"imageTag": "latest"}, {"imageDigest": a}]}))
        .await;
    assert_eq!(by_tag["imageDetails"].as_array().unwrap().len(), 1);
    assert_eq!(
        h.err("DescribeImages", json!({"repositoryName": "web", "imageIds": [{"imageTag": "nope"}]}))
            .await,
        (
            "ImageNotFoundException".into(),
            "The image with imageId {imageDigest:'null', imageTag:'nope'} does not exist within the repository with name 'web' in the registry with id '000000000000'".into()
        )
    );
    assert_eq!(
        h.code(
            "DescribeImages",
            json!({"repositoryName": "web", "imageIds": [{"imageTag": "v1"}], "maxResults": 5})
        )
        .await,
        "InvalidParameterException"
    );
    let paged = h
        .ok(
            "DescribeImages",
            json!({"repositoryName": "web", "maxResults": 1}),
        )
        .await;
    assert_eq!(paged["imageDetails"].as_array().unwrap().len(), 1);
    assert!(paged["nextToken"].is_string());
}

#[tokio::test]
async fn batch_get_image_returns_manifests_and_failures() {
    let h = Harness::new().await;
    h.repository("web").await;
    let (a, manifest) = h.push_image("web", Some("v1"), "a").await;
    let (b, _) = h.push_image("web", Some("v2"), "b").await;
    h.now_ms.set(NOW + 5000);
    let got = h
        .ok(
            "BatchGetImage",
            json!({"repositoryName": "web", "imageIds": [
                {"imageTag": "v1"},
                {"imageDigest": b},
                {"imageTag": "missing"},
                {"imageTag": "v1", "imageDigest": b},
                {},
                {"imageDigest": "sha256:xyz"},
            ]}),
        )
        .await;
    let images = got["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(
        images[0]["imageId"],
        json!({"imageDigest": a, "imageTag": "v1"})
    );
    assert_eq!(images[0]["imageManifest"], manifest.as_str());
    assert_eq!(images[0]["imageManifestMediaType"], DOCKER_MANIFEST);
    assert_eq!(images[1]["imageId"], json!({"imageDigest": b}));
    assert_eq!(
        strings(&got["failures"], "failureCode"),
        [
            "ImageNotFound",
            "ImageTagDoesNotMatchDigest",
            "MissingDigestAndTag",
            "InvalidImageDigest"
        ]
    );
    assert_eq!(
        got["failures"][0]["failureReason"],
        "Requested image not found"
    );
    assert_eq!(
        got["failures"][0]["imageId"],
        json!({"imageTag": "missing"})
    );
    // Pulls are recorded.
    let described = h
        .ok(
            "DescribeImages",
            json!({"repositoryName": "web", "imageIds": [{"imageDigest": a}]}),
        )
        .await;
    assert_eq!(
        described["imageDetails"][0]["lastRecordedPullTime"],
        (NOW + 5000) as f64 / 1000.0
    );

    let oci_only = h
        .ok(
            "BatchGetImage",
            json!({"repositoryName": "web", "imageIds": [{"imageTag": "v1"}], "acceptedMediaTypes": [OCI_MANIFEST]}),
        )
        .await;
    assert_eq!(oci_only["images"], json!([]));
    assert_eq!(oci_only["failures"][0]["failureCode"], "ImageNotFound");
    assert_eq!(
        h.code(
            "BatchGetImage",
            json!({"repositoryName": "web", "imageIds": []})
        )
        .await,
        "InvalidParameterException"
    );
    assert_eq!(
        h.code(
            "BatchGetImage",
            json!({"repositoryName": "gone", "imageIds": [{"imageTag": "v1"}]})
        )
        .await,
        "RepositoryNotFoundException"
    );
}

#[tokio::test]
async fn batch_delete_image_removes_tags_then_images() {
    let h = Harness::new().await;
    h.repository("web").await;
    let (a, manifest) = h.push_image("web", Some("v1"), "a").await;
    h.ok(
        "PutImage",
        json!({"repositoryName": "web", "imageManifest": manifest, "imageTag": "latest"}),
    )
    .await;
    let (b, _) = h.push_image("web", Some("b1"), "b").await;
    h.ok("PutImage", json!({"repositoryName": "web", "imageManifest": h.image_manifest("web", "b").await, "imageTag": "b2"}))
        .await;

    let deleted = h
        .ok(
            "BatchDeleteImage",
            json!({"repositoryName": "web", "imageIds": [{"imageTag": "v1"}, {"imageTag": "nope"}, {"imageDigest": b}]}),
        )
        .await;
    assert_eq!(
        deleted["imageIds"],
        json!([
            {"imageDigest": a, "imageTag": "v1"},
            {"imageDigest": b, "imageTag": "b1"},
            {"imageDigest": b, "imageTag": "b2"},
        ])
    );
    assert_eq!(
        deleted["failures"],
        json!([{"imageId": {"imageTag": "nope"}, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}])
    );
    // `a` keeps its other tag; `b` is gone.
    let listed = h.ok("ListImages", json!({"repositoryName": "web"})).await;
    assert_eq!(
        listed["imageIds"],
        json!([{"imageDigest": a, "imageTag": "latest"}])
    );
    let last = h
        .ok("BatchDeleteImage", json!({"repositoryName": "web", "imageIds": [{"imageTag": "latest", "imageDigest": a}]}))
        .await;
    assert_eq!(
        last["imageIds"],
        json!([{"imageDigest": a, "imageTag": "latest"}])
    );
    let listed = h.ok("ListImages", json!({"repositoryName": "web"})).await;
    assert_eq!(listed["imageIds"], json!([]));
}

#[tokio::test]
async fn images_an_index_references_are_not_deleted() {
    let h = Harness::new().await;
    h.repository("web").await;
    let (child, manifest) = h.push_image("web", None, "child").await;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","size":{},"digest":"{child}"}}]}}"#,
        manifest.len()
    );
    let put = h
        .ok(
            "PutImage",
            json!({"repositoryName": "web", "imageManifest": index, "imageTag": "multi"}),
        )
        .await;
    let index_digest = put["image"]["imageId"]["imageDigest"]
        .as_str()
        .unwrap()
        .to_string();
    let refused = h
        .ok(
            "BatchDeleteImage",
            json!({"repositoryName": "web", "imageIds": [{"imageDigest": child}]}),
        )
        .await;
    assert_eq!(
        refused["failures"][0]["failureCode"],
        "ImageReferencedByManifestList"
    );
    assert_eq!(
        refused["failures"][0]["failureReason"],
        format!("Requested image referenced by manifest list: [{index_digest}]")
    );
    h.ok(
        "BatchDeleteImage",
        json!({"repositoryName": "web", "imageIds": [{"imageTag": "multi"}]}),
    )
    .await;
    let deleted = h
        .ok(
            "BatchDeleteImage",
            json!({"repositoryName": "web", "imageIds": [{"imageDigest": child}]}),
        )
        .await;
    assert_eq!(deleted["imageIds"], json!([{"imageDigest": child}]));
}

fn keep_untagged(count: u32) -> String {
    json!({"rules": [{
        "rulePriority": 1, "description": "keep the newest untagged images",
        "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": count},
        "action": {"type": "expire"},
    }]})
    .to_string()
}

#[tokio::test]
async fn lifecycle_policies_are_checked_stored_and_deleted() {
    let h = Harness::new().await;
    h.repository("web").await;
    assert_eq!(
        h.err("GetLifecyclePolicy", json!({"repositoryName": "web"})).await,
        (
            "LifecyclePolicyNotFoundException".into(),
            "Lifecycle policy does not exist for the repository with name 'web' in the registry with id '000000000000'".into()
        )
    );
    let bad = json!({"rules": [{"rulePriority": 1, "description": "a rule that has no selection at all, padded to 100 characters"}]}).to_string();
    assert_eq!(
        h.err("PutLifecyclePolicy", json!({"repositoryName": "web", "lifecyclePolicyText": bad}))
            .await,
        (
            "InvalidParameterException".into(),
            r#"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: object has missing required properties (["action","selection"])'"#.into()
        )
    );
    assert_eq!(
        h.err("PutLifecyclePolicy", json!({"repositoryName": "web", "lifecyclePolicyText": "{}"}))
            .await,
        (
            "InvalidParameterException".into(),
            "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'must have length greater than or equal to 100'".into()
        )
    );
    let text = keep_untagged(1);
    let put = h
        .ok(
            "PutLifecyclePolicy",
            json!({"repositoryName": "web", "lifecyclePolicyText": text}),
        )
        .await;
    assert_eq!(
        put,
        json!({"registryId": ACCOUNT, "repositoryName": "web", "lifecyclePolicyText": text})
    );
    let got = h
        .ok("GetLifecyclePolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(got["lifecyclePolicyText"], text.as_str());
    let deleted = h
        .ok("DeleteLifecyclePolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(deleted["lifecyclePolicyText"], text.as_str());
    assert_eq!(
        h.code("DeleteLifecyclePolicy", json!({"repositoryName": "web"}))
            .await,
        "LifecyclePolicyNotFoundException"
    );
    assert_eq!(
        h.code(
            "PutLifecyclePolicy",
            json!({"repositoryName": "gone", "lifecyclePolicyText": text})
        )
        .await,
        "RepositoryNotFoundException"
    );
}

#[tokio::test]
async fn previews_show_what_a_policy_would_expire() {
    let h = Harness::new().await;
    h.repository("web").await;
    assert_eq!(
        h.code(
            "StartLifecyclePolicyPreview",
            json!({"repositoryName": "web"})
        )
        .await,
        "LifecyclePolicyNotFoundException"
    );
    assert_eq!(
        h.err("GetLifecyclePolicyPreview", json!({"repositoryName": "web"})).await,
        (
            "LifecyclePolicyPreviewNotFoundException".into(),
            "Lifecycle policy preview does not exist for the repository with name 'web' in the registry with id '000000000000'".into()
        )
    );
    let mut digests = Vec::new();
    for (i, seed) in ["oldest", "middle", "newest"].iter().enumerate() {
        h.now_ms.set(NOW + i as i64 * 1000);
        digests.push(h.push_image("web", None, seed).await.0);
    }
    h.push_image("web", Some("v1"), "tagged").await;
    let text = keep_untagged(1);
    let started = h
        .ok(
            "StartLifecyclePolicyPreview",
            json!({"repositoryName": "web", "lifecyclePolicyText": text}),
        )
        .await;
    assert_eq!(started["status"], "IN_PROGRESS");
    let preview = h
        .ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "web"}),
        )
        .await;
    assert_eq!(preview["status"], "COMPLETE");
    assert_eq!(preview["lifecyclePolicyText"], text.as_str());
    assert_eq!(preview["summary"], json!({"expiringImageTotalCount": 2}));
    let results = preview["previewResults"].as_array().unwrap();
    let mut expiring: Vec<&str> = results
        .iter()
        .map(|r| r["imageDigest"].as_str().unwrap())
        .collect();
    expiring.sort_unstable();
    let mut expected = vec![digests[0].as_str(), digests[1].as_str()];
    expected.sort_unstable();
    assert_eq!(expiring, expected);
    assert_eq!(results[0]["action"], json!({"type": "EXPIRE"}));
    assert_eq!(results[0]["appliedRulePriority"], 1);
    let page = h
        .ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "web", "maxResults": 1}),
        )
        .await;
    assert_eq!(page["previewResults"].as_array().unwrap().len(), 1);
    assert!(page["nextToken"].is_string());
    let tagged_only = h
        .ok(
            "GetLifecyclePolicyPreview",
            json!({"repositoryName": "web", "filter": {"tagStatus": "TAGGED"}}),
        )
        .await;
    assert_eq!(tagged_only["previewResults"], json!([]));
    // The preview changed nothing.
    let listed = h.ok("ListImages", json!({"repositoryName": "web"})).await;
    assert_eq!(listed["imageIds"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn the_lifecycle_pass_expires_what_the_policies_say() {
    let h = Harness::new().await;
    h.repository("web").await;
    h.repository("other").await;
    for day in 0..3 {
        h.now_ms.set(NOW + day * MILLIS_PER_DAY);
        h.push_image("web", None, &format!("untagged-{day}")).await;
        h.push_image("web", Some(&format!("v{day}")), &format!("tagged-{day}"))
            .await;
        h.push_image("other", None, &format!("kept-{day}")).await;
    }
    let text = json!({"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}, "action": {"type": "expire"}},
    ]})
    .to_string();
    h.ok(
        "PutLifecyclePolicy",
        json!({"repositoryName": "web", "lifecyclePolicyText": text}),
    )
    .await;
    // v0 is older than a day; v1 exactly a day old.
    let now = NOW + 2 * MILLIS_PER_DAY;
    let pass = h.ecr.apply_lifecycle_policies(ACCOUNT, now).await.unwrap();
    assert_eq!(
        pass,
        super::LifecyclePass {
            repositories_evaluated: 1,
            images_expired: 3
        }
    );
    let listed = h.ok("ListImages", json!({"repositoryName": "web"})).await;
    let tags: Vec<String> = strings(&listed["imageIds"], "imageTag");
    assert_eq!(tags.len(), 3, "{listed}");
    assert!(tags.contains(&"v1".to_string()) && tags.contains(&"v2".to_string()));
    let other = h.ok("ListImages", json!({"repositoryName": "other"})).await;
    assert_eq!(other["imageIds"].as_array().unwrap().len(), 3);
    // A second pass finds nothing more to do.
    let again = h.ecr.apply_lifecycle_policies(ACCOUNT, now).await.unwrap();
    assert_eq!(again.images_expired, 0);
}

#[tokio::test]
async fn repository_and_registry_policies_are_kept() {
    let h = Harness::new().await;
    h.repository("web").await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "pull", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}
    ]})
    .to_string();
    assert_eq!(
        h.err("GetRepositoryPolicy", json!({"repositoryName": "web"})).await,
        (
            "RepositoryPolicyNotFoundException".into(),
            "Repository policy does not exist for the repository with name 'web' in the registry with id '000000000000'".into()
        )
    );
    assert_eq!(
        h.err("SetRepositoryPolicy", json!({"repositoryName": "web", "policyText": "{\"Statement\": []}"}))
            .await,
        (
            "InvalidParameterException".into(),
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'".into()
        )
    );
    let set = h
        .ok(
            "SetRepositoryPolicy",
            json!({"repositoryName": "web", "policyText": policy}),
        )
        .await;
    assert_eq!(
        set,
        json!({"registryId": ACCOUNT, "repositoryName": "web", "policyText": policy})
    );
    let got = h
        .ok("GetRepositoryPolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(got["policyText"], policy.as_str());
    let record = crate::records::get_repository(&*h.ecr.store, "us-east-1", "web")
        .await
        .unwrap()
        .unwrap();
    assert!(super::allows_anonymous_pull(
        record.value.repository_policy.as_deref().unwrap()
    ));
    let deleted = h
        .ok("DeleteRepositoryPolicy", json!({"repositoryName": "web"}))
        .await;
    assert_eq!(deleted["policyText"], policy.as_str());
    assert_eq!(
        h.code("DeleteRepositoryPolicy", json!({"repositoryName": "web"}))
            .await,
        "RepositoryPolicyNotFoundException"
    );

    assert_eq!(
        h.err("GetRegistryPolicy", json!({})).await,
        (
            "RegistryPolicyNotFoundException".into(),
            "Registry policy does not exist in the registry with id '000000000000'".into()
        )
    );
    assert_eq!(
        h.code("PutRegistryPolicy", json!({"policyText": "nope"}))
            .await,
        "InvalidParameterException"
    );
    let put = h
        .ok("PutRegistryPolicy", json!({"policyText": policy}))
        .await;
    assert_eq!(put, json!({"registryId": ACCOUNT, "policyText": policy}));
    assert_eq!(
        h.ok("GetRegistryPolicy", json!({})).await["policyText"],
        policy.as_str()
    );
    assert!(h
        .ecr
        .store
        .get("/ecr/us-east-1/registry-policy")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        h.ok("DeleteRegistryPolicy", json!({})).await["policyText"],
        policy.as_str()
    );
    assert_eq!(
        h.code("DeleteRegistryPolicy", json!({})).await,
        "RegistryPolicyNotFoundException"
    );
}

#[tokio::test]
async fn repositories_are_tagged_by_arn() {
    let h = Harness::new().await;
    h.repository("web").await;
    let arn = "arn:aws:ecr:us-east-1:000000000000:repository/web";
    h.ok("TagResource", json!({"resourceArn": arn, "tags": [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}]}))
        .await;
    h.ok(
        "TagResource",
        json!({"resourceArn": arn, "tags": [{"Key": "a", "Value": "one"}]}),
    )
    .await;
    let listed = h
        .ok("ListTagsForResource", json!({"resourceArn": arn}))
        .await;
    assert_eq!(
        listed["tags"],
        json!([{"Key": "a", "Value": "one"}, {"Key": "b", "Value": "2"}])
    );
    h.ok(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["a", "missing"]}),
    )
    .await;
    let listed = h
        .ok("ListTagsForResource", json!({"resourceArn": arn}))
        .await;
    assert_eq!(listed["tags"], json!([{"Key": "b", "Value": "2"}]));

    let fifty: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    assert_eq!(
        h.code("TagResource", json!({"resourceArn": arn, "tags": fifty}))
            .await,
        "TooManyTagsException"
    );
    for (body, code) in [
        (
            json!({"resourceArn": arn, "tags": [{"Key": "", "Value": "v"}]}),
            "InvalidTagParameterException",
        ),
        (
            json!({"resourceArn": arn, "tags": [{"Key": "k", "Value": "v".repeat(257)}]}),
            "InvalidTagParameterException",
        ),
        (
            json!({"resourceArn": arn, "tags": [{"Key": "k"}]}),
            "InvalidTagParameterException",
        ),
        (
            json!({"resourceArn": "arn:aws:ecr:us-east-1:000000000000:repository/gone", "tags": [{"Key": "k", "Value": "v"}]}),
            "RepositoryNotFoundException",
        ),
        (
            json!({"resourceArn": "arn:aws:ecr:eu-west-1:000000000000:repository/web", "tags": [{"Key": "k", "Value": "v"}]}),
            "InvalidParameterException",
        ),
        (
            json!({"resourceArn": "not an arn", "tags": [{"Key": "k", "Value": "v"}]}),
            "InvalidParameterException",
        ),
        (json!({"resourceArn": arn}), "InvalidParameterException"),
    ] {
        assert_eq!(h.code("TagResource", body.clone()).await, code, "{body}");
    }
    assert_eq!(
        h.code(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:ecr:us-east-1:000000000000:repository/gone"})
        )
        .await,
        "RepositoryNotFoundException"
    );
}
