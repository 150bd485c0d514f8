//! The control plane's HTTP shell: one listener serves every AWS service
//! Berth implements.
//!
//! Each request is read (bounded by [`ServerConfig::max_body_bytes`]),
//! SigV4-verified against the account's access keys, then routed:
//! - with `X-Amz-Target` → the JSON 1.1 [`JsonService`] registered for the
//!   target prefix (ECS: `AmazonEC2ContainerServiceV20141113`);
//! - without → the query-protocol [`QueryService`] named by the credential
//!   scope's service;
//! - under a [`RegistryService`]'s path prefix (`/v2/`) → that service,
//!   which authenticates by itself and streams bodies both ways;
//! - `GET /metrics` (unless [`ServerConfig::metrics_endpoint`] is off) →
//!   Berth's instruments (crate `instruments`) in the Prometheus text format
//!   0.0.4 or OpenMetrics as the `Accept` header asks, without SigV4.
//!
//! Every response carries `x-amzn-RequestId`; errors carry
//! `x-amzn-ErrorType` and the protocol's error body.
//!
//! ```no_run
//! # async fn example(store: std::sync::Arc<dyn store::Store>,
//! #                  keys: std::sync::Arc<api::access_keys::AccessKeys>) -> Result<(), control_plane::ServerError> {
//! use std::sync::Arc;
//! use control_plane::{Server, ServerConfig, Services};
//!
//! let services = Services::new().with_json(Arc::new(api::Ecs::new(store)));
//! let config = ServerConfig::new("127.0.0.1:4566".parse().unwrap(), "000000000000");
//! let server = Server::bind(config, keys, services).await?;
//! println!("berth ready on http://{}", server.local_addr());
//! server.run(async { tokio::signal::ctrl_c().await.ok(); }).await;
//! # Ok(())
//! # }
//! ```

mod agent_session;
mod clock;
mod error;
mod handler;
mod metrics;
mod response;
mod server;
mod service;

pub use agent_session::HEARTBEAT_INTERVAL;
pub use error::ServerError;
pub use server::{Server, ServerConfig, DEFAULT_MAX_BODY_BYTES};
pub use service::{
    EventStream, JsonService, QueryService, RegistryService, RequestBody, ResponseBody, Services,
    StreamMessage,
};
