//! The services one listener serves, and how a request finds its service.
//!
//! AWS services speak one of two wire protocols here:
//! - JSON 1.1 (ECS, Application Auto Scaling, ECR, CloudWatch Logs): the
//!   `X-Amz-Target: <prefix>.<Operation>` header names the service and the
//!   operation; these implement [`JsonService`].
//! - Query (ELBv2): a form-encoded `Action=…` request without
//!   `X-Amz-Target`; the service is the one the SigV4 credential scope names.
//!   These implement [`QueryService`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use api::{ApiError, RequestContext};
use async_trait::async_trait;
pub use aws_protocol::eventstream::StreamMessage;

/// The messages of an event-stream response (`application/vnd.amazon.eventstream`),
/// produced as the client reads them. The service ends it (after an
/// exception message, say); dropping it — the client went away, the server
/// shuts down — ends it too.
pub type EventStream = futures::stream::BoxStream<'static, StreamMessage>;

/// A JSON 1.1 protocol service.
#[async_trait]
pub trait JsonService: Send + Sync + 'static {
    /// The `X-Amz-Target` prefix before the dot, e.g.
    /// `AmazonEC2ContainerServiceV20141113`.
    fn target_prefix(&self) -> &str;
    /// The service name callers sign with (SigV4 credential scope), e.g. `ecs`.
    fn signing_name(&self) -> &str;
    /// Runs `operation` (the part of `X-Amz-Target` after the dot) on the raw
    /// JSON `body` (`{}` when the request had none) and returns the JSON
    /// response body.
    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError>;

    /// Runs `operation` on a Smithy RPC v2 CBOR `body` (the request was
    /// `POST /service/<target prefix>/operation/<operation>`) and returns the
    /// CBOR response body. Only services that speak the protocol
    /// (CloudWatch) implement it.
    async fn handle_cbor(
        &self,
        _ctx: &RequestContext,
        operation: &str,
        _body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        Err(ApiError::unknown_operation(operation))
    }

    /// Whether `operation` answers with an event stream (CloudWatch Logs'
    /// StartLiveTail) instead of a JSON body; such operations go to
    /// [`JsonService::open_event_stream`] rather than `handle`.
    fn is_event_stream(&self, _operation: &str) -> bool {
        false
    }

    /// Checks an event-stream operation's request and opens its stream; an
    /// error here is an ordinary error response. The control plane sends
    /// the `initial-response` message before the stream's own.
    async fn open_event_stream(
        &self,
        _ctx: &RequestContext,
        operation: &str,
        _body: &[u8],
    ) -> Result<EventStream, ApiError> {
        Err(ApiError::unknown_operation(operation))
    }
}

/// A query protocol service (form-encoded request, XML response).
#[async_trait]
pub trait QueryService: Send + Sync + 'static {
    /// The service name callers sign with and the request is routed by, e.g.
    /// `elasticloadbalancing`.
    fn signing_name(&self) -> &str;
    /// Runs the request whose form-encoded parameters (`Action=…&…`; the
    /// body of a POST, the query string of a GET) are `params` and returns
    /// the XML response body.
    async fn handle(&self, ctx: &RequestContext, params: &[u8]) -> Result<Vec<u8>, ApiError>;
}

#[async_trait]
impl JsonService for api::Ecs {
    fn target_prefix(&self) -> &str {
        api::Ecs::TARGET_PREFIX
    }
    fn signing_name(&self) -> &str {
        api::Ecs::SIGNING_NAME
    }
    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        api::Ecs::handle(self, ctx, operation, body).await
    }
}

/// A request body as a [`RegistryService`] reads it: streamed, frame by
/// frame.
pub type RequestBody = http_body_util::combinators::UnsyncBoxBody<
    bytes::Bytes,
    Box<dyn std::error::Error + Send + Sync>,
>;

/// A response body: whole or streamed.
pub type ResponseBody = crate::response::Body;

/// A service with an HTTP API of its own under a path prefix, outside
/// AWS's protocols: the container registry (`/v2/…`, OCI Distribution),
/// which authenticates with its own tokens rather than SigV4 and streams
/// large bodies both ways.
#[async_trait]
pub trait RegistryService: Send + Sync + 'static {
    /// The path prefix it serves, e.g. `/v2` (the prefix itself and
    /// everything under `<prefix>/`).
    fn path_prefix(&self) -> &str;
    async fn serve(&self, request: http::Request<RequestBody>) -> http::Response<ResponseBody>;
}

/// The registry of services, keyed by JSON target prefix and by query
/// protocol signing name.
#[derive(Clone, Default)]
pub struct Services {
    json_by_target_prefix: HashMap<String, Arc<dyn JsonService>>,
    query_by_signing_name: HashMap<String, Arc<dyn QueryService>>,
    agent_sessions: Option<Arc<api::Ecs>>,
    registry: Option<Arc<dyn RegistryService>>,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut json: Vec<&str> = self
            .json_by_target_prefix
            .keys()
            .map(String::as_str)
            .collect();
        json.sort_unstable();
        let mut query: Vec<&str> = self
            .query_by_signing_name
            .keys()
            .map(String::as_str)
            .collect();
        query.sort_unstable();
        f.debug_struct("Services")
            .field("json", &json)
            .field("query", &query)
            .finish()
    }
}

impl Services {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a JSON service; a later service with the same target prefix
    /// replaces an earlier one.
    pub fn with_json(mut self, service: Arc<dyn JsonService>) -> Self {
        self.json_by_target_prefix
            .insert(service.target_prefix().to_string(), service);
        self
    }

    /// Adds a query service; a later service with the same signing name
    /// replaces an earlier one.
    pub fn with_query(mut self, service: Arc<dyn QueryService>) -> Self {
        self.query_by_signing_name
            .insert(service.signing_name().to_string(), service);
        self
    }

    /// Serves node-agent sessions (`POST /_berth/agent/v1/session`) for
    /// this ECS service.
    pub fn with_agent_sessions(mut self, ecs: Arc<api::Ecs>) -> Self {
        self.agent_sessions = Some(ecs);
        self
    }

    /// Serves `service`'s path prefix with it.
    pub fn with_registry(mut self, service: Arc<dyn RegistryService>) -> Self {
        self.registry = Some(service);
        self
    }

    /// The registry service whose prefix `path` is under, if any.
    pub fn registry_for(&self, path: &str) -> Option<&Arc<dyn RegistryService>> {
        self.registry.as_ref().filter(|service| {
            let prefix = service.path_prefix();
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    pub fn agent_sessions(&self) -> Option<&Arc<api::Ecs>> {
        self.agent_sessions.as_ref()
    }

    pub fn json(&self, target_prefix: &str) -> Option<&Arc<dyn JsonService>> {
        self.json_by_target_prefix.get(target_prefix)
    }

    pub fn query(&self, signing_name: &str) -> Option<&Arc<dyn QueryService>> {
        self.query_by_signing_name.get(signing_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    #[async_trait]
    impl JsonService for Echo {
        fn target_prefix(&self) -> &str {
            "EchoV1"
        }
        fn signing_name(&self) -> &str {
            "echo"
        }
        async fn handle(
            &self,
            _ctx: &RequestContext,
            _operation: &str,
            body: &[u8],
        ) -> Result<Vec<u8>, ApiError> {
            Ok(body.to_vec())
        }
    }

    struct Registry;

    #[async_trait]
    impl RegistryService for Registry {
        fn path_prefix(&self) -> &str {
            "/v2"
        }
        async fn serve(
            &self,
            _request: http::Request<RequestBody>,
        ) -> http::Response<ResponseBody> {
            http::Response::new(crate::response::full("registry"))
        }
    }

    #[test]
    fn the_registry_serves_its_prefix_and_nothing_beside_it() {
        let services = Services::new().with_registry(Arc::new(Registry));
        for path in ["/v2", "/v2/", "/v2/web/manifests/1"] {
            assert!(services.registry_for(path).is_some(), "{path}");
        }
        for path in ["/", "/v20", "/v2x/a", "/_berth/agent/v1/session"] {
            assert!(services.registry_for(path).is_none(), "{path}");
        }
        assert!(Services::new().registry_for("/v2/").is_none());
    }

    #[test]
    fn json_services_are_found_by_target_prefix_only() {
        let services = Services::new().with_json(Arc::new(Echo));
        assert!(services.json("EchoV1").is_some());
        assert!(services.json("echo").is_none());
        assert!(services.query("echo").is_none());
        assert_eq!(
            format!("{services:?}"),
            r#"Services { json: ["EchoV1"], query: [] }"#
        );
    }
}
