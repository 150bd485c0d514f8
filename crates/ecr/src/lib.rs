//! Amazon Elastic Container Registry: the ECR API (JSON 1.1,
//! `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.*`) and the registry
//! `docker push`/`docker pull` speak (OCI Distribution, Docker Registry HTTP
//! API v2, under `/v2/` on the same port), over one set of records.
//!
//! - `records.rs`: repositories, images, tags, layers and uploads under
//!   `/ecr/<region>/…` in the orchestration store.
//! - `manifest.rs`: what a manifest is and references (pure).
//! - `images.rs`: storing, tagging and deleting manifests — the rules both
//!   fronts share (layers present, tag immutability).
//! - `layers.rs`: uploads, monolithic puts and mounts into the
//!   [`blob_store::BlobStore`], which holds the bytes, deduplicated.
//! - `auth.rs`: GetAuthorizationToken's signed, expiring passwords.
//! - `operations.rs` and the files it dispatches to: the ECR API.
//! - `registry.rs`: the `/v2/` HTTP API.
//! - `gc.rs`: unlinking unreferenced layers, deleting unreferenced blobs
//!   and abandoning stale uploads.
//!
//! `now` is the request's `now_ms`, read once by the shell.

use std::sync::{Arc, OnceLock};

use api::access_keys::AccessKeys;
use api::{ApiError, RequestContext};
use async_trait::async_trait;
use blob_store::BlobStore;
use store::Store;

pub mod auth;
mod error;
mod gc;
mod images;
mod layers;
pub mod manifest;
mod operations;
mod records;
mod registry;
#[cfg(test)]
mod registry_tests;

pub use gc::{CollectionPass, GarbageCollector};
pub use operations::{allows_anonymous, LifecyclePass};
pub use registry::Registry;

/// The ECR service: its API and its registry.
pub struct Ecr {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    access_keys: Arc<AccessKeys>,
    /// `host:port` of the registry (`repositoryUri`'s host), known once the
    /// server is bound.
    registry_address: OnceLock<String>,
}

impl Ecr {
    pub const TARGET_PREFIX: &'static str = ecr_wire::TARGET_PREFIX;
    pub const SIGNING_NAME: &'static str = ecr_wire::SIGNING_NAME;

    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        access_keys: Arc<AccessKeys>,
    ) -> Self {
        Ecr {
            store,
            blobs,
            access_keys,
            registry_address: OnceLock::new(),
        }
    }

    /// Sets the registry's `host:port` (once; later calls are ignored).
    pub fn set_registry_address(&self, address: String) {
        let _ = self.registry_address.set(address);
    }

    /// The registry's `host:port`, as `repositoryUri` and `proxyEndpoint`
    /// name it.
    pub(crate) fn registry_address(&self) -> &str {
        self.registry_address
            .get()
            .map(String::as_str)
            .unwrap_or("localhost")
    }

    /// `<registry>/<name>`.
    pub(crate) fn repository_uri(&self, name: &str) -> String {
        format!("{}/{name}", self.registry_address())
    }

    pub async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        operations::dispatch(self, ctx, operation, body).await
    }
}

#[async_trait]
impl control_plane::JsonService for Ecr {
    fn target_prefix(&self) -> &str {
        Ecr::TARGET_PREFIX
    }
    fn signing_name(&self) -> &str {
        Ecr::SIGNING_NAME
    }
    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        Ecr::handle(self, ctx, operation, body).await
    }
}

/// `arn:aws:ecr:<region>:<account>:repository/<name>`.
pub(crate) fn repository_arn(ctx: &RequestContext, name: &str) -> String {
    format!(
        "arn:aws:ecr:{}:{}:repository/{name}",
        ctx.region, ctx.account_id
    )
}
