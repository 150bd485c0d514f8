//! The registry `docker` and other OCI clients speak: the OCI Distribution
//! Specification v1.1 (Docker Registry HTTP API v2) under `/v2/`, over the
//! same records and rules as the ECR API (`images.rs`, `layers.rs`).
//!
//! Clients authenticate as ECR's do, with HTTP Basic credentials `AWS` and
//! the password GetAuthorizationToken issued (or, for GetDownloadUrlForLayer's
//! URLs, `?token=<password>`); the token's grant says which region's
//! repositories it opens. Without credentials only what a repository policy
//! allows anonymously is served. Large bodies stream both ways: uploads are
//! appended to the blob store chunk by chunk, blobs are read in chunks.

use std::sync::Arc;

use api::RequestContext;
use async_trait::async_trait;
use bytes::Bytes;
use control_plane::{RequestBody, ResponseBody};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;

use crate::auth::{self, Grant};
use crate::images::{ImageReference, PutChange};
use crate::layers::{parse_digest, UploadError};
use crate::manifest;
use crate::records::{get_layer, list_images, tags_prefix, RepositoryRecord, TagRecord};
use crate::Ecr;

/// The largest manifest accepted (OCI suggests registries accept 4 MiB).
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Uploads are appended to the blob store in chunks of about this size.
const APPEND_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Blobs are read and sent in chunks of this size.
const READ_CHUNK_BYTES: usize = 1024 * 1024;
/// Tag lists are paged at this many tags when the client names no `n`.
const DEFAULT_TAG_PAGE: usize = 1000;

const API_VERSION_HEADER: &str = "Docker-Distribution-API-Version";
const CONTENT_DIGEST_HEADER: &str = "Docker-Content-Digest";
const UPLOAD_UUID_HEADER: &str = "Docker-Upload-UUID";

/// The registry front of an [`Ecr`] service, mounted at `/v2`.
pub struct Registry {
    ecr: Arc<Ecr>,
    /// The region anonymous requests (allowed by a repository policy) see.
    default_region: String,
    account_id: String,
    clock: fn() -> i64,
}

impl Registry {
    pub fn new(
        ecr: Arc<Ecr>,
        default_region: impl Into<String>,
        account_id: impl Into<String>,
        clock: fn() -> i64,
    ) -> Self {
        Registry {
            ecr,
            default_region: default_region.into(),
            account_id: account_id.into(),
            clock,
        }
    }
}

#[async_trait]
impl control_plane::RegistryService for Registry {
    fn path_prefix(&self) -> &str {
        "/v2"
    }

    async fn serve(&self, request: Request<RequestBody>) -> Response<ResponseBody> {
        let mut response = match self.route(request).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        response
            .headers_mut()
            .insert(API_VERSION_HEADER, HeaderValue::from_static("registry/2.0"));
        response
    }
}

/// An error as OCI clients read it: `{"errors":[{"code","message"}]}`.
#[derive(Debug)]
pub(crate) struct RegistryError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// `WWW-Authenticate` for 401s.
    challenge: Option<String>,
}

impl RegistryError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        RegistryError {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }

    fn into_response(self) -> Response<ResponseBody> {
        let body = serde_json::json!({
            "errors": [{"code": self.code, "message": self.message, "detail": null}]
        });
        let mut response = json_response(self.status, &body);
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// ECR's error as the registry reports it.
impl From<api::ApiError> for RegistryError {
    fn from(err: api::ApiError) -> Self {
        let (status, code) = match err.code {
            "RepositoryNotFoundException" => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
            "ImageNotFoundException" => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
            "ReferencedImagesNotFoundException" => (StatusCode::BAD_REQUEST, "MANIFEST_UNKNOWN"),
            "LayersNotFoundException" => (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN"),
            "ImageTagAlreadyExistsException" => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
            "ImageDigestDoesNotMatchException" => (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            "UploadNotFoundException" => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            "InvalidParameterException" => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
            _ if err.http_status >= 500 => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
            _ => (StatusCode::BAD_REQUEST, "UNSUPPORTED"),
        };
        RegistryError::new(status, code, err.message)
    }
}

impl From<UploadError> for RegistryError {
    fn from(err: UploadError) -> Self {
        match err {
            UploadError::Api(err) => {
                let code = err.code;
                let mut mapped = RegistryError::from(err);
                if code == "InvalidParameterException" {
                    mapped.code = "BLOB_UPLOAD_INVALID";
                }
                mapped
            }
            UploadError::DigestMismatch { expected, actual } => RegistryError::new(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("the uploaded content's digest is {actual}, not {expected}"),
            ),
            UploadError::RangeMismatch { current } => RegistryError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!("the chunk does not start where the upload ends (byte {current})"),
            ),
            UploadError::BadDigest(digest) => RegistryError::new(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("invalid digest '{digest}'"),
            ),
        }
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<ResponseBody> {
    let mut response = Response::new(full(serde_json::to_vec(body).unwrap_or_default()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).boxed_unsync()
}

fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

fn set(response: &mut Response<ResponseBody>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// What a `/v2/<name>/…` path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `/v2/`: the API version check.
    Base,
    Manifest {
        name: String,
        reference: String,
    },
    Blob {
        name: String,
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`
    StartUpload {
        name: String,
    },
    Upload {
        name: String,
        id: String,
    },
    Tags {
        name: String,
    },
    Referrers {
        name: String,
        digest: String,
    },
}

/// Splits a path at the last of the spec's fixed components; repository
/// names may contain `/`.
fn parse_route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    let name = |n: &str| (!n.is_empty()).then(|| n.to_string());
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::StartUpload {
            name: name_of(name)?,
        });
    }
    if let Some(at) = rest.rfind("/blobs/uploads/") {
        let id = &rest[at + "/blobs/uploads/".len()..];
        return Some(Route::Upload {
            name: name_of(&rest[..at])?,
            id: name(id)?,
        });
    }
    if let Some(at) = rest.rfind("/manifests/") {
        return Some(Route::Manifest {
            name: name_of(&rest[..at])?,
            reference: name(&rest[at + "/manifests/".len()..])?,
        });
    }
    if let Some(at) = rest.rfind("/blobs/") {
        return Some(Route::Blob {
            name: name_of(&rest[..at])?,
            digest: name(&rest[at + "/blobs/".len()..])?,
        });
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags {
            name: name_of(name)?,
        });
    }
    if let Some(at) = rest.rfind("/referrers/") {
        return Some(Route::Referrers {
            name: name_of(&rest[..at])?,
            digest: name(&rest[at + "/referrers/".len()..])?,
        });
    }
    None
}

fn name_of(name: &str) -> Option<String> {
    (!name.is_empty() && !name.contains(':')).then(|| name.to_string())
}

/// The query parameter `key`, percent-decoded.
fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

/// Who is asking: a token's grant, or nobody.
enum Caller {
    Granted(Grant),
    Anonymous,
}

/// Whether a route only reads.
fn is_pull(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

impl Registry {
    fn unauthorized(&self, message: &str) -> RegistryError {
        let mut error = RegistryError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        error.challenge = Some(format!(
            "Basic realm=\"{}\",service=\"ecr.amazonaws.com\"",
            self.ecr.registry_address()
        ));
        error
    }

    fn caller(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Caller, RegistryError> {
        let password = match headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
        {
            Some(value) => Some(auth::basic_password(value).ok_or_else(|| {
                self.unauthorized(
                    "authenticate with user AWS and the password from aws ecr get-login-password",
                )
            })?),
            None => query_param(query, "token"),
        };
        let Some(password) = password else {
            return Ok(Caller::Anonymous);
        };
        let keys = &self.ecr.access_keys;
        auth::verify_password(&password, (self.clock)(), |key| keys.secret_for(key))
            .map(Caller::Granted)
            .map_err(|err| self.unauthorized(&err.to_string()))
    }

    fn context(&self, caller: &Caller) -> RequestContext {
        let region = match caller {
            Caller::Granted(grant) => grant.region.clone(),
            Caller::Anonymous => self.default_region.clone(),
        };
        RequestContext {
            region,
            account_id: self.account_id.clone(),
            principal_arn: format!("arn:aws:iam::{}:root", self.account_id),
            access_key_id: match caller {
                Caller::Granted(grant) => grant.access_key_id.clone(),
                Caller::Anonymous => String::new(),
            },
            request_id: String::new(),
            now_ms: (self.clock)(),
        }
    }

    /// Anonymous callers may only pull, and only where the repository's
    /// policy allows everyone to.
    async fn authorize(
        &self,
        caller: &Caller,
        ctx: &RequestContext,
        name: &str,
        method: &Method,
    ) -> Result<(), RegistryError> {
        if matches!(caller, Caller::Granted(_)) {
            return Ok(());
        }
        if !is_pull(method) {
            return Err(self.unauthorized("authentication required to push"));
        }
        let repository: Option<RepositoryRecord> =
            crate::records::get_repository(&*self.ecr.store, &ctx.region, name)
                .await?
                .map(|found| found.value);
        let allowed = repository
            .and_then(|repo| repo.repository_policy)
            .is_some_and(|policy| crate::operations::allows_anonymous_pull(&policy));
        if allowed {
            Ok(())
        } else {
            Err(self.unauthorized("authentication required"))
        }
    }

    async fn route(
        &self,
        request: Request<RequestBody>,
    ) -> Result<Response<ResponseBody>, RegistryError> {
        let (parts, body) = request.into_parts();
        let route = parse_route(parts.uri.path()).ok_or_else(|| {
            RegistryError::new(
                StatusCode::NOT_FOUND,
                "NAME_INVALID",
                "no such registry endpoint",
            )
        })?;
        let caller = self.caller(&parts.headers, parts.uri.query())?;
        let ctx = self.context(&caller);
        let query = parts.uri.query();
        let method = parts.method.clone();
        match route {
            Route::Base => match caller {
                Caller::Granted(_) => Ok(json_response(StatusCode::OK, &serde_json::json!({}))),
                Caller::Anonymous => Err(self.unauthorized("authentication required")),
            },
            Route::Manifest { name, reference } => {
                self.authorize(&caller, &ctx, &name, &method).await?;
                match method {
                    Method::GET | Method::HEAD => {
                        self.get_manifest(&ctx, &name, &reference, method == Method::HEAD)
                            .await
                    }
                    Method::PUT => {
                        let content_type = parts
                            .headers
                            .get(header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        let bytes = read_bounded(body, MAX_MANIFEST_BYTES).await?;
                        self.put_manifest(&ctx, &name, &reference, content_type.as_deref(), &bytes)
                            .await
                    }
                    Method::DELETE => self.delete_manifest(&ctx, &name, &reference).await,
                    _ => Err(unsupported_method()),
                }
            }
            Route::Blob { name, digest } => {
                self.authorize(&caller, &ctx, &name, &method).await?;
                match method {
                    Method::GET | Method::HEAD => {
                        self.get_blob(&ctx, &name, &digest, &parts.headers, method == Method::HEAD)
                            .await
                    }
                    Method::DELETE => Err(RegistryError::new(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "UNSUPPORTED",
                        "blobs are not deleted one by one; delete images and their unreferenced layers are garbage-collected",
                    )),
                    _ => Err(unsupported_method()),
                }
            }
            Route::StartUpload { name } => {
                self.authorize(&caller, &ctx, &name, &method).await?;
                if method != Method::POST {
                    return Err(unsupported_method());
                }
                self.start_upload(&ctx, &name, query, body).await
            }
            Route::Upload { name, id } => {
                self.authorize(&caller, &ctx, &name, &method).await?;
                match method {
                    Method::GET => self.upload_status(&ctx, &name, &id).await,
                    Method::PATCH => {
                        let start = content_range_start(&parts.headers)?;
                        self.append(&ctx, &name, &id, start, body).await
                    }
                    Method::PUT => {
                        let digest = query_param(query, "digest").ok_or_else(|| {
                            RegistryError::new(
                                StatusCode::BAD_REQUEST,
                                "DIGEST_INVALID",
                                "the digest query parameter is required to complete an upload",
                            )
                        })?;
                        self.complete(&ctx, &name, &id, &digest, body).await
                    }
                    Method::DELETE => {
                        self.ecr.cancel_upload(&ctx, &name, &id).await?;
                        Ok(empty(StatusCode::NO_CONTENT))
                    }
                    _ => Err(unsupported_method()),
                }
            }
            Route::Tags { name } => {
                self.authorize(&caller, &ctx, &name, &method).await?;
                if !is_pull(&method) {
                    return Err(unsupported_method());
                }
                self.list_tags(&ctx, &name, query).await
            }
            Route::Referrers { name, digest } => {
                self.authorize(&caller, &ctx, &name, &method).await?;
                if !is_pull(&method) {
                    return Err(unsupported_method());
                }
                self.referrers(&ctx, &name, &digest, query).await
            }
        }
    }

    async fn get_manifest(
        &self,
        ctx: &RequestContext,
        name: &str,
        reference: &str,
        head: bool,
    ) -> Result<Response<ResponseBody>, RegistryError> {
        crate::records::require_repository(&*self.ecr.store, &ctx.region, &ctx.account_id, name)
            .await?;
        let reference = ImageReference::parse(reference);
        let found = self
            .ecr
            .resolve_image(ctx, name, &reference)
            .await?
            .ok_or_else(|| {
                RegistryError::new(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    format!("manifest unknown: the repository '{name}' has no image {reference:?}"),
                )
            })?;
        if !head {
            self.ecr.record_pull(ctx, name, &found).await?;
        }
        let image = found.value;
        let length = image.manifest.len();
        let mut response = Response::new(if head {
            full(Bytes::new())
        } else {
            full(image.manifest.into_bytes())
        });
        set(&mut response, "content-type", &image.media_type);
        set(&mut response, "content-length", &length.to_string());
        set(&mut response, CONTENT_DIGEST_HEADER, &image.digest);
        Ok(response)
    }

    async fn put_manifest(
        &self,
        ctx: &RequestContext,
        name: &str,
        reference: &str,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<Response<ResponseBody>, RegistryError> {
        let (tag, digest) = match ImageReference::parse(reference) {
            ImageReference::Tag(tag) => (Some(tag), None),
            ImageReference::Digest(digest) => (None, Some(digest)),
        };
        if let Some(digest) = digest.as_deref() {
            parse_digest(digest)?;
        }
        let (image, _change): (_, PutChange) = self
            .ecr
            .put_manifest(
                ctx,
                name,
                bytes,
                content_type,
                tag.as_deref(),
                digest.as_deref(),
            )
            .await?;
        let mut response = empty(StatusCode::CREATED);
        set(
            &mut response,
            "location",
            &format!("/v2/{name}/manifests/{}", image.digest),
        );
        set(&mut response, CONTENT_DIGEST_HEADER, &image.digest);
        if let Some(subject) = &image.subject {
            set(&mut response, "OCI-Subject", subject);
        }
        Ok(response)
    }

    async fn delete_manifest(
        &self,
        ctx: &RequestContext,
        name: &str,
        reference: &str,
    ) -> Result<Response<ResponseBody>, RegistryError> {
        crate::records::require_repository(&*self.ecr.store, &ctx.region, &ctx.account_id, name)
            .await?;
        let reference = ImageReference::parse(reference);
        match self.ecr.delete_reference(ctx, name, &reference).await? {
            Some(_) => Ok(empty(StatusCode::ACCEPTED)),
            None => Err(RegistryError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                format!("manifest unknown: the repository '{name}' has no image {reference:?}"),
            )),
        }
    }

    async fn get_blob(
        &self,
        ctx: &RequestContext,
        name: &str,
        digest: &str,
        headers: &HeaderMap,
        head: bool,
    ) -> Result<Response<ResponseBody>, RegistryError> {
        crate::records::require_repository(&*self.ecr.store, &ctx.region, &ctx.account_id, name)
            .await?;
        let blob_unknown = || {
            RegistryError::new(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                format!("blob unknown to the repository '{name}': {digest}"),
            )
        };
        let parsed = parse_digest(digest)?;
        if get_layer(&*self.ecr.store, &ctx.region, name, digest)
            .await?
            .is_none()
        {
            return Err(blob_unknown());
        }
        let stat_digest = parsed.clone();
        let info = self
            .ecr
            .with_blobs(move |blobs| blobs.stat_blob(&stat_digest))
            .await?
            .ok_or_else(blob_unknown)?;
        let size = info.size;
        let (start, end, partial) = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            Some(range) => {
                let (start, end) = parse_range(range, size).ok_or_else(|| {
                    RegistryError::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "BLOB_UNKNOWN",
                        format!("range '{range}' is not satisfiable for a blob of {size} bytes"),
                    )
                })?;
                (start, end, true)
            }
            None => (0, size, false),
        };
        let length = end - start;
        let body = if head || length == 0 {
            full(Bytes::new())
        } else {
            self.blob_body(parsed, start, end)
        };
        let mut response = Response::new(body);
        if partial {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            set(
                &mut response,
                "content-range",
                &format!("bytes {start}-{}/{size}", end.saturating_sub(1)),
            );
        }
        set(&mut response, "content-type", "application/octet-stream");
        set(&mut response, "content-length", &length.to_string());
        set(&mut response, "accept-ranges", "bytes");
        set(&mut response, CONTENT_DIGEST_HEADER, digest);
        Ok(response)
    }

    /// Bytes `[start, end)` of a blob, read a chunk at a time as the client
    /// takes them.
    fn blob_body(&self, digest: blob_store::Digest, start: u64, end: u64) -> ResponseBody {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(2);
        let blobs = Arc::clone(&self.ecr.blobs);
        tokio::task::spawn_blocking(move || {
            let mut offset = start;
            while offset < end {
                let want = READ_CHUNK_BYTES.min((end - offset) as usize);
                match blobs.read_blob(&digest, offset, want) {
                    Ok(chunk) if !chunk.is_empty() => {
                        offset += chunk.len() as u64;
                        if sender.blocking_send(Bytes::from(chunk)).is_err() {
                            return; // the client went away
                        }
                    }
                    Ok(_) => return,
                    Err(err) => {
                        // The length is already promised: cutting the body
                        // short is how the client learns.
                        tracing::warn!(%digest, "reading a blob failed: {err}");
                        return;
                    }
                }
            }
        });
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| {
                (
                    Ok::<_, std::convert::Infallible>(Frame::data(chunk)),
                    receiver,
                )
            })
        });
        StreamBody::new(stream).boxed_unsync()
    }

    fn upload_location(name: &str, id: &str) -> String {
        format!("/v2/{name}/blobs/uploads/{id}")
    }

    fn upload_accepted(name: &str, id: &str, size: u64) -> Response<ResponseBody> {
        let mut response = empty(StatusCode::ACCEPTED);
        set(&mut response, "location", &Self::upload_location(name, id));
        set(
            &mut response,
            "range",
            &format!("0-{}", size.saturating_sub(1)),
        );
        set(&mut response, UPLOAD_UUID_HEADER, id);
        response
    }

    fn blob_created(name: &str, digest: &str) -> Response<ResponseBody> {
        let mut response = empty(StatusCode::CREATED);
        set(
            &mut response,
            "location",
            &format!("/v2/{name}/blobs/{digest}"),
        );
        set(&mut response, CONTENT_DIGEST_HEADER, digest);
        response
    }

    async fn start_upload(
        &self,
        ctx: &RequestContext,
        name: &str,
        query: Option<&str>,
        body: RequestBody,
    ) -> Result<Response<ResponseBody>, RegistryError> {
        if let (Some(digest), Some(from)) =
            (query_param(query, "mount"), query_param(query, "from"))
        {
            if let Some(layer) = self.ecr.mount_blob(ctx, &from, name, &digest).await? {
                return Ok(Self::blob_created(name, &layer.digest));
            }
            // Not mountable: fall through to an ordinary upload, as the spec
            // says.
        } else if let Some(digest) = query_param(query, "digest") {
            let bytes = read_bounded(body, usize::MAX).await?;
            let layer = self
                .ecr
                .put_blob(ctx, name, &digest, bytes.to_vec())
                .await?;
            return Ok(Self::blob_created(name, &layer.digest));
        }
        let id = self.ecr.start_upload(ctx, name).await?;
        Ok(Self::upload_accepted(name, &id, 0))
    }

    async fn upload_status(
        &self,
        ctx: &RequestContext,
        name: &str,
        id: &str,
    ) -> Result<Response<ResponseBody>, RegistryError> {
        let size = self.ecr.upload_size(ctx, name, id).await?;
        let mut response = Self::upload_accepted(name, id, size);
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok(response)
    }

    /// Appends the request body to the upload, chunk by chunk; durable
    /// before the response.
    async fn append_body(
        &self,
        ctx: &RequestContext,
        name: &str,
        id: &str,
        start: Option<u64>,
        mut body: RequestBody,
    ) -> Result<u64, RegistryError> {
        let upload = self.ecr.open_upload(ctx, name, id).await?;
        let mut offset = match start {
            Some(start) => start,
            None => {
                let upload = upload.clone();
                self.ecr
                    .with_blobs(move |blobs| blobs.upload_size(&upload))
                    .await?
            }
        };
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let frame = body.frame().await.transpose().map_err(|err| {
                RegistryError::new(
                    StatusCode::BAD_REQUEST,
                    "BLOB_UPLOAD_INVALID",
                    format!("could not read the request body: {err}"),
                )
            })?;
            let done = frame.is_none();
            if let Some(data) = frame.and_then(|frame| frame.into_data().ok()) {
                pending.extend_from_slice(&data);
            }
            if pending.len() >= APPEND_CHUNK_BYTES || (done && !pending.is_empty()) {
                let chunk = std::mem::take(&mut pending);
                let upload = upload.clone();
                offset = self
                    .ecr
                    .with_blobs(move |blobs| blobs.append_upload(&upload, offset, &chunk))
                    .await?;
            }
            if done {
                break;
            }
        }
        let upload = upload.clone();
        self.ecr
            .with_blobs(move |blobs| blobs.sync_upload(&upload))
            .await?;
        Ok(offset)
    }

    async fn append(
        &self,
        ctx: &RequestContext,
        name: &str,
        id: &str,
        start: Option<u64>,
        body: RequestBody,
    ) -> Result<Response<ResponseBody>, RegistryError> {
        let size = self.append_body(ctx, name, id, start, body).await?;
        Ok(Self::upload_accepted(name, id, size))
    }

    async fn complete(
        &self,
        ctx: &RequestContext,
        name: &str,
        id: &str,
        digest: &str,
        body: RequestBody,
    ) -> Result<Response<ResponseBody>, RegistryError> {
        parse_digest(digest)?;
        self.append_body(ctx, name, id, None, body).await?;
        let layer = self.ecr.finish_upload(ctx, name, id, digest).await?;
        Ok(Self::blob_created(name, &layer.digest))
    }

    async fn list_tags(
        &self,
        ctx: &RequestContext,
        name: &str,
        query: Option<&str>,
    ) -> Result<Response<ResponseBody>, RegistryError> {
        crate::records::require_repository(&*self.ecr.store, &ctx.region, &ctx.account_id, name)
            .await?;
        let limit = match query_param(query, "n") {
            Some(n) => n.parse::<usize>().map_err(|_| {
                RegistryError::new(
                    StatusCode::BAD_REQUEST,
                    "PAGINATION_NUMBER_INVALID",
                    format!("invalid n '{n}'"),
                )
            })?,
            None => DEFAULT_TAG_PAGE,
        };
        let last = query_param(query, "last");
        let prefix = tags_prefix(&ctx.region, name);
        let mut tags: Vec<String> = api::records::list::<TagRecord>(&*self.ecr.store, &prefix)
            .await?
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix(&prefix).map(str::to_string))
            .collect();
        tags.sort();
        if let Some(last) = &last {
            tags.retain(|tag| tag > last);
        }
        let more = tags.len() > limit;
        tags.truncate(limit);
        let mut response = json_response(
            StatusCode::OK,
            &serde_json::json!({"name": name, "tags": tags}),
        );
        if more {
            if let Some(last) = tags.last() {
                set(
                    &mut response,
                    "link",
                    &format!("</v2/{name}/tags/list?n={limit}&last={last}>; rel=\"next\""),
                );
            }
        }
        Ok(response)
    }

    async fn referrers(
        &self,
        ctx: &RequestContext,
        name: &str,
        digest: &str,
        query: Option<&str>,
    ) -> Result<Response<ResponseBody>, RegistryError> {
        crate::records::require_repository(&*self.ecr.store, &ctx.region, &ctx.account_id, name)
            .await?;
        parse_digest(digest)?;
        let artifact_type = query_param(query, "artifactType");
        let mut manifests = Vec::new();
        for image in list_images(&*self.ecr.store, &ctx.region, name).await? {
            let image = image.value;
            if image.subject.as_deref() != Some(digest) {
                continue;
            }
            let parsed = manifest::parse(image.manifest.as_bytes(), Some(&image.media_type)).ok();
            let kind = parsed.as_ref().and_then(|p| p.artifact_type.clone());
            if artifact_type.is_some() && kind != artifact_type {
                continue;
            }
            let annotations = serde_json::from_str::<serde_json::Value>(&image.manifest)
                .ok()
                .and_then(|doc| doc.get("annotations").cloned());
            let mut descriptor = serde_json::json!({
                "mediaType": image.media_type,
                "digest": image.digest,
                "size": image.manifest.len(),
            });
            if let Some(kind) = kind {
                descriptor["artifactType"] = kind.into();
            }
            if let Some(annotations) = annotations {
                descriptor["annotations"] = annotations;
            }
            manifests.push(descriptor);
        }
        let mut response = json_response(
            StatusCode::OK,
            &serde_json::json!({
                "schemaVersion": 2,
                "mediaType": manifest::OCI_INDEX,
                "manifests": manifests,
            }),
        );
        set(&mut response, "content-type", manifest::OCI_INDEX);
        if artifact_type.is_some() {
            set(&mut response, "OCI-Filters-Applied", "artifactType");
        }
        Ok(response)
    }
}

fn unsupported_method() -> RegistryError {
    RegistryError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "the method is not supported on this endpoint",
    )
}

/// A PATCH's `Content-Range: <start>-<end>`, if it has one.
fn content_range_start(headers: &HeaderMap) -> Result<Option<u64>, RegistryError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("");
    let text = text.strip_prefix("bytes ").unwrap_or(text);
    text.split_once('-')
        .and_then(|(start, _)| start.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| {
            RegistryError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!("invalid Content-Range '{text}'"),
            )
        })
}

/// `bytes=<a>-<b>`, `bytes=<a>-` or `bytes=-<n>` as `[start, end)` within
/// `size`.
fn parse_range(range: &str, size: u64) -> Option<(u64, u64)> {
    let spec = range.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (start, end) = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        (size.saturating_sub(suffix), size)
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            size
        } else {
            last.parse::<u64>().ok()?.saturating_add(1).min(size)
        };
        (start, end)
    };
    (start < end || (size == 0 && start == 0)).then_some((start, end))
}

/// The whole body, refused past `limit` bytes.
async fn read_bounded(mut body: RequestBody, limit: usize) -> Result<Bytes, RegistryError> {
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            RegistryError::new(
                StatusCode::BAD_REQUEST,
                "UNKNOWN",
                format!("could not read the request body: {err}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > limit {
                return Err(RegistryError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "SIZE_INVALID",
                    format!("the body is larger than the {limit} byte limit"),
                ));
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_the_specs_last_component() {
        let cases = [
            ("/v2/", Some(Route::Base)),
            ("/v2", Some(Route::Base)),
            (
                "/v2/team/web/manifests/1",
                Some(Route::Manifest {
                    name: "team/web".into(),
                    reference: "1".into(),
                }),
            ),
            (
                "/v2/web/blobs/sha256:ab",
                Some(Route::Blob {
                    name: "web".into(),
                    digest: "sha256:ab".into(),
                }),
            ),
            (
                "/v2/a/b/blobs/uploads/",
                Some(Route::StartUpload { name: "a/b".into() }),
            ),
            (
                "/v2/web/blobs/uploads/abc-123",
                Some(Route::Upload {
                    name: "web".into(),
                    id: "abc-123".into(),
                }),
            ),
            (
                "/v2/web/tags/list",
                Some(Route::Tags { name: "web".into() }),
            ),
            (
                "/v2/web/referrers/sha256:ab",
                Some(Route::Referrers {
                    name: "web".into(),
                    digest: "sha256:ab".into(),
                }),
            ),
            ("/v2/web", None),
            ("/v2//manifests/1", None),
            ("/v2/web/manifests/", None),
            ("/v3/web/manifests/1", None),
        ];
        for (path, expected) in cases {
            assert_eq!(parse_route(path), expected, "{path}");
        }
    }

    #[test]
    fn ranges_are_read_as_http_defines_them() {
        let cases = [
            ("bytes=0-9", 100, Some((0, 10))),
            ("bytes=90-", 100, Some((90, 100))),
            ("bytes=-10", 100, Some((90, 100))),
            ("bytes=50-500", 100, Some((50, 100))),
            ("bytes=100-", 100, None),
            ("bytes=5-1", 100, None),
            ("bytes=0-1,5-6", 100, None),
            ("items=0-1", 100, None),
        ];
        for (range, size, expected) in cases {
            assert_eq!(parse_range(range, size), expected, "{range}");
        }
    }

    #[test]
    fn query_parameters_are_percent_decoded() {
        let query = Some("mount=sha256%3Aabc&from=team%2Fweb&n=5");
        assert_eq!(query_param(query, "mount").as_deref(), Some("sha256:abc"));
        assert_eq!(query_param(query, "from").as_deref(), Some("team/web"));
        assert_eq!(query_param(query, "n").as_deref(), Some("5"));
        assert_eq!(query_param(query, "last"), None);
        assert_eq!(
            query_param(Some("bad=%zz%"), "bad").as_deref(),
            Some("%zz%")
        );
    }
}
