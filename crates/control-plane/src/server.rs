//! The listener: accepts connections (HTTP/1.1 keep-alive or h2c), runs each
//! request through [`Handler`], and drains in-flight requests on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::access_keys::AccessKeys;
use aws_protocol::sigv4::AuthMode;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::handler::Handler;
use crate::{ServerError, Services};

/// 16 MiB: far above any ECS request, small enough to bound memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The one account this server serves, e.g. `000000000000`.
    pub account_id: String,
    pub auth_mode: AuthMode,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// How long shutdown waits for in-flight requests before closing their
    /// connections.
    pub drain_timeout: Duration,
    /// Serve Berth's instruments at `GET /metrics` (Prometheus text formats,
    /// no SigV4, as Prometheus scrapes). On by default.
    pub metrics_endpoint: bool,
}

impl ServerConfig {
    /// Verified SigV4, a 16 MiB body limit, a 30 s drain and `GET /metrics`.
    pub fn new(listen: SocketAddr, account_id: impl Into<String>) -> Self {
        ServerConfig {
            listen,
            account_id: account_id.into(),
            auth_mode: AuthMode::Verify,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            metrics_endpoint: true,
        }
    }

    /// Refuses configurations that must not run: open authentication on a
    /// non-loopback address. [`Server::bind`] checks this too; call it to
    /// fail before doing anything else.
    pub fn validate(&self) -> Result<(), ServerError> {
        if self.auth_mode == AuthMode::Open && !self.listen.ip().is_loopback() {
            return Err(ServerError::OpenAuthNotLoopback { addr: self.listen });
        }
        Ok(())
    }
}

/// A bound, not yet running, server.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    drain_timeout: Duration,
    handler: Arc<Handler>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the listener. Refuses open authentication on a non-loopback
    /// address.
    pub async fn bind(
        config: ServerConfig,
        access_keys: Arc<AccessKeys>,
        services: Services,
    ) -> Result<Server, ServerError> {
        config.validate()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(ServerError::LocalAddr)?;
        let (shutdown, shutdown_receiver) = tokio::sync::watch::channel(false);
        let handler = Handler::new(
            services,
            access_keys,
            config.account_id,
            config.auth_mode,
            config.max_body_bytes,
            config.metrics_endpoint,
            shutdown_receiver,
        );
        Ok(Server {
            listener,
            local_addr,
            drain_timeout: config.drain_timeout,
            handler: Arc::new(handler),
            shutdown,
        })
    }

    /// The address actually bound (the real port when listening on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, lets
    /// in-flight requests finish (up to the drain timeout) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        builder.http2().timer(TokioTimer::new());
        let graceful = GracefulShutdown::new();

        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if let Err(err) = stream.set_nodelay(true) {
                            tracing::debug!(%peer, %err, "could not set TCP_NODELAY");
                        }
                        let handler = Arc::clone(&self.handler);
                        let service = service_fn(move |request| {
                            let handler = Arc::clone(&handler);
                            async move { Ok::<_, Infallible>(handler.serve(request).await) }
                        });
                        let connection = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .into_owned();
                        let connection = graceful.watch(connection);
                        tokio::spawn(async move {
                            if let Err(err) = connection.await {
                                tracing::debug!(%peer, %err, "connection ended with an error");
                            }
                        });
                    }
                    Err(err) => {
                        tracing::warn!(%err, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }

        drop(self.listener);
        // Long-lived agent sessions end now; their agents reconnect.
        let _ = self.shutdown.send(true);
        let open_connections = graceful.count();
        tracing::info!(
            open_connections,
            "shutting down: no longer accepting connections"
        );
        if tokio::time::timeout(self.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                drain_timeout_ms = self.drain_timeout.as_millis() as u64,
                "requests still in flight after the drain timeout; closing their connections"
            );
        }
    }
}
