//! What the `berth bench …` commands share: a SigV4-signing keep-alive HTTP
//! client for the ECS JSON API, an in-process server on a fresh SQLite
//! store, and the arithmetic of their figures.

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use api::access_keys::AccessKeys;
use aws_protocol::sigv4::{self, SigningParams};
use bytes::Bytes;
use control_plane::{JsonService, Server, ServerConfig, Services};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::clock;

/// Bytes of a response body quoted in an error.
const EXCERPT_BYTES: usize = 300;

/// A JSON 1.1 service: its `X-Amz-Target` prefix and SigV4 signing name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JsonTarget {
    pub(crate) target_prefix: &'static str,
    pub(crate) signing_name: &'static str,
}

pub(crate) const ECS: JsonTarget = JsonTarget {
    target_prefix: api::Ecs::TARGET_PREFIX,
    signing_name: api::Ecs::SIGNING_NAME,
};

pub(crate) const LOGS: JsonTarget = JsonTarget {
    target_prefix: logs::Logs::TARGET_PREFIX,
    signing_name: logs::Logs::SIGNING_NAME,
};

/// Where requests go and how they are signed.
pub(crate) struct Target {
    pub(crate) connect_addr: SocketAddr,
    pub(crate) host: HeaderValue,
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) region: String,
}

impl Target {
    /// A signed ECS JSON 1.1 request for `operation` with `body`.
    pub(crate) fn request(&self, operation: &str, body: Vec<u8>) -> Result<Request<Full<Bytes>>> {
        self.request_to(ECS, operation, body)
    }

    /// A signed JSON 1.1 request to `service`.
    pub(crate) fn request_to(
        &self,
        service: JsonTarget,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<Request<Full<Bytes>>> {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, self.host.clone());
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(aws_protocol::json::CONTENT_TYPE),
        );
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(&format!("{}.{operation}", service.target_prefix))?,
        );
        sigv4::sign_headers(
            "POST",
            "/",
            "",
            &mut headers,
            &body,
            &SigningParams {
                access_key_id: &self.access_key_id,
                secret_access_key: &self.secret_access_key,
                session_token: None,
                region: &self.region,
                service: service.signing_name,
                now_epoch_s: clock::now_ms().div_euclid(1000),
            },
        )?;
        let mut request = Request::post("/").body(Full::new(Bytes::from(body)))?;
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// One keep-alive HTTP/1.1 connection, opened on first use and again after
/// a transport error.
pub(crate) struct Client {
    target: Arc<Target>,
    connection: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Client {
    pub(crate) fn new(target: Arc<Target>) -> Client {
        Client {
            target,
            connection: None,
        }
    }

    /// Sends `operation` with `body`; the status and body of the answer,
    /// whatever the status.
    pub(crate) async fn call(
        &mut self,
        operation: &str,
        body: &Value,
    ) -> Result<(StatusCode, Bytes)> {
        self.call_bytes(ECS, operation, serde_json::to_vec(body)?)
            .await
    }

    /// `call` to `service` with a body already encoded.
    pub(crate) async fn call_bytes(
        &mut self,
        service: JsonTarget,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes)> {
        let request = self.target.request_to(service, operation, body)?;
        send_kept_alive(&mut self.connection, self.target.connect_addr, request).await
    }

    /// `call`, with anything but a 2xx answer an error; the body as JSON.
    pub(crate) async fn call_ok(&mut self, operation: &str, body: &Value) -> Result<Value> {
        self.call_ok_to(ECS, operation, body).await
    }

    /// `call_ok` to `service`.
    pub(crate) async fn call_ok_to(
        &mut self,
        service: JsonTarget,
        operation: &str,
        body: &Value,
    ) -> Result<Value> {
        let (status, response) = self
            .call_bytes(service, operation, serde_json::to_vec(body)?)
            .await?;
        if !status.is_success() {
            bail!("{operation}: HTTP {status}: {}", excerpt(&response));
        }
        serde_json::from_slice(&response)
            .with_context(|| format!("{operation} answered with invalid JSON"))
    }
}

/// Creates cluster `cluster_name` and registers `task_definition` in it;
/// the RegisterTaskDefinition answer and its `taskDefinitionArn`.
pub(crate) async fn create_cluster_and_register(
    client: &mut Client,
    cluster_name: &str,
    task_definition: &Value,
) -> Result<(Value, String)> {
    client
        .call_ok("CreateCluster", &json!({ "clusterName": cluster_name }))
        .await?;
    let registered = client
        .call_ok("RegisterTaskDefinition", task_definition)
        .await?;
    let task_definition_arn = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .context("RegisterTaskDefinition answered without a taskDefinitionArn")?
        .to_string();
    Ok((registered, task_definition_arn))
}

/// Opens an HTTP/1.1 connection to `addr` (no Nagle delay).
pub(crate) async fn connect(addr: SocketAddr) -> Result<http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "bench connection ended");
        }
    });
    Ok(sender)
}

/// Sends `request` on `sender` once it is ready; the whole answer.
pub(crate) async fn send(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Sends `request` on the kept-alive `connection` to `addr`, opening a new
/// one first if there is none or the server closed it (it closes idle ones),
/// and forgetting it when the exchange fails.
pub(crate) async fn send_kept_alive(
    connection: &mut Option<http1::SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes)> {
    if connection.as_ref().is_some_and(|sender| sender.is_closed()) {
        *connection = None;
    }
    let sender = match connection {
        Some(sender) => sender,
        None => connection.insert(connect(addr).await?),
    };
    let sent = send(sender, request).await;
    if sent.is_err() {
        *connection = None;
    }
    sent
}

/// How [`start_in_process`] sets the server up.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct InProcessOptions {
    /// Also serve the agent session stream, as `berth up` does, so a real
    /// `berth agent` can connect.
    pub(crate) agent_sessions: bool,
    /// Also serve CloudWatch Logs (and the agents' log delivery), with log
    /// events in segment files beside the store.
    pub(crate) logs: bool,
}

/// A server in this process on a fresh SQLite store.
pub(crate) struct InProcessServer {
    /// Where it listens, as agents are told (DiscoverPollEndpoint).
    pub(crate) endpoint_url: String,
    /// For its group-commit counters (`write_stats`).
    pub(crate) store: store_sqlite::SqliteStore,
    /// The ECS service it serves, for benches that run the control plane's
    /// background loops (the service controller) beside it.
    pub(crate) ecs: Arc<api::Ecs>,
    /// With `InProcessOptions::logs`: the log event store, for its figures.
    pub(crate) log_events: Option<Arc<log_store::segments::SegmentLogStore>>,
    // Removed (with the store) when the bench ends.
    _data_dir: tempfile::TempDir,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl InProcessServer {
    /// Stops serving and waits for the server to end.
    pub(crate) async fn stop(self) {
        let _ = self.shutdown.send(());
        if let Err(err) = self.task.await {
            tracing::warn!(%err, "the in-process server ended abnormally");
        }
    }
}

/// Starts a server on loopback (a free port) over a fresh SQLite store in a
/// temporary directory; the target signs with the account's key for
/// `region`.
pub(crate) async fn start_in_process(
    region: &str,
    options: InProcessOptions,
) -> Result<(Target, InProcessServer)> {
    let data_dir = tempfile::Builder::new()
        .prefix("berth-bench-")
        .tempdir()
        .context("cannot create a temporary directory for the bench store")?;
    let store_path = data_dir.path().join("berth.db");
    let sqlite = store_sqlite::SqliteStore::open(&store_path)
        .await
        .with_context(|| format!("cannot open the store at {}", store_path.display()))?;
    let store: Arc<dyn store::Store> = Arc::new(sqlite.clone());
    let access_keys = AccessKeys::load(&*store).await?;
    let key = access_keys
        .ensure_account_key(
            &*store,
            crate::DEFAULT_ACCOUNT_ID,
            clock::now_ms(),
            &mut rand::rngs::OsRng,
        )
        .await?;
    let ecs = Arc::new(api::Ecs::new(Arc::clone(&store)));
    let mut services = Services::new().with_json(Arc::clone(&ecs) as Arc<dyn JsonService>);
    if options.agent_sessions {
        services = services.with_agent_sessions(Arc::clone(&ecs));
    }
    let mut log_events = None;
    if options.logs {
        let events = Arc::new(log_store::segments::SegmentLogStore::open(
            &data_dir.path().join("logs"),
        )?);
        let logs = Arc::new(logs::Logs::new(
            Arc::clone(&store),
            Arc::clone(&events) as Arc<dyn log_store::LogStore>,
        ));
        services = services
            .with_json(Arc::clone(&logs) as Arc<dyn JsonService>)
            .with_json(Arc::new(logs::AgentLogs::new(logs)));
        log_events = Some(events);
    }
    let config = ServerConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        crate::DEFAULT_ACCOUNT_ID,
    );
    let server = Server::bind(config, Arc::new(access_keys), services).await?;
    let connect_addr = server.local_addr();
    let endpoint_url = crate::node::endpoint_url(connect_addr);
    ecs.set_endpoint(endpoint_url.clone());
    let (shutdown, signalled) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = signalled.await;
    }));
    let target = Target {
        connect_addr,
        host: HeaderValue::from_str(&connect_addr.to_string())?,
        access_key_id: key.access_key_id,
        secret_access_key: key.secret_access_key,
        region: region.to_string(),
    };
    Ok((
        target,
        InProcessServer {
            endpoint_url,
            store: sqlite,
            ecs,
            log_events,
            _data_dir: data_dir,
            shutdown,
            task,
        },
    ))
}

/// Nearest-rank percentile of ascending `sorted` (0 when empty).
pub(crate) fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `value` rounded to three decimals, for the JSON line.
pub(crate) fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Whole microseconds in `duration` (saturating).
pub(crate) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The start of `body` as text, for an error message.
pub(crate) fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]).into_owned()
}

pub(crate) fn docker(args: &[&str]) -> Result<Output> {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run the docker CLI")
}

/// Runs blocking work (the docker CLI) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("a blocking bench step panicked")?
}

pub(crate) fn stderr_excerpt(output: &Output) -> String {
    excerpt(output.stderr.trim_ascii())
}

/// Force-removes every container `docker ps -a --filter <filter>` lists
/// (blocking: call it inside [`blocking`]).
pub(crate) fn remove_containers(filter: &str) -> Result<()> {
    let listed = docker(&["ps", "-aq", "--filter", filter])?;
    if !listed.status.success() {
        bail!("docker ps failed: {}", stderr_excerpt(&listed));
    }
    let ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    let removed = docker(&args)?;
    if !removed.status.success() {
        bail!("docker rm -f failed: {}", stderr_excerpt(&removed));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let check = |values: &[u64], fraction: f64, expected: u64| {
            assert_eq!(
                percentile(values, fraction),
                expected,
                "{values:?} @ {fraction}"
            );
        };
        check(&[], 0.5, 0);
        check(&[], 0.90, 0);
        check(&[7], 0.5, 7);
        check(&[7], 0.99, 7);
        check(&[5], 0.90, 5);
        check(&[1, 2, 3, 4], 0.5, 2);
        let twenty: Vec<u64> = (1..=20).collect();
        check(&twenty, 0.90, 18);
        let hundred: Vec<u64> = (1..=100).collect();
        check(&hundred, 0.50, 50);
        check(&hundred, 0.99, 99);
        check(&hundred, 1.0, 100);
    }

    #[test]
    fn figures_are_rounded_and_saturated() {
        assert_eq!(round3(1.234_56), 1.235);
        assert_eq!(round3(2.0), 2.0);
        assert_eq!(micros(Duration::from_millis(3)), 3_000);
        assert_eq!(micros(Duration::MAX), u64::MAX);
    }

    #[test]
    fn excerpts_keep_the_first_300_bytes() {
        assert_eq!(excerpt(b"short"), "short");
        assert_eq!(excerpt(&[b'x'; 1000]).len(), 300);
        assert_eq!(excerpt(b"\xffok"), "\u{fffd}ok");
    }

    #[test]
    fn requests_name_the_ecs_operation_and_are_signed() {
        let target = Target {
            connect_addr: SocketAddr::from(([127, 0, 0, 1], 4566)),
            host: HeaderValue::from_static("127.0.0.1:4566"),
            access_key_id: "AKIDEXAMPLE".to_string(),
            secret_access_key: "secret".to_string(),
            region: "eu-west-1".to_string(),
        };
        let request = target.request("ListClusters", b"{}".to_vec()).unwrap();
        let header = |name: &str| request.headers()[name].to_str().unwrap().to_string();
        assert_eq!(
            header("x-amz-target"),
            "AmazonEC2ContainerServiceV20141113.ListClusters"
        );
        assert_eq!(header("host"), "127.0.0.1:4566");
        assert_eq!(header("content-type"), aws_protocol::json::CONTENT_TYPE);
        let authorization = header("authorization");
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && authorization.contains("/eu-west-1/ecs/aws4_request"),
            "{authorization}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_in_process_server_accepts_signed_calls_and_counts_writes() {
        let (target, server) = start_in_process(
            crate::DEFAULT_REGION,
            InProcessOptions {
                agent_sessions: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            server.endpoint_url,
            format!("http://{}", target.connect_addr)
        );
        let before = server.store.write_stats();
        let mut client = Client::new(Arc::new(target));
        let task_definition = json!({
            "family": "bench-support",
            "containerDefinitions": [{"name": "app", "image": "busybox:1.36", "memory": 32}]
        });
        let (registered, task_definition_arn) =
            create_cluster_and_register(&mut client, "bench-support", &task_definition)
                .await
                .unwrap();
        assert!(
            task_definition_arn.ends_with(":task-definition/bench-support:1"),
            "{task_definition_arn}"
        );
        assert_eq!(registered["taskDefinition"]["family"], "bench-support");
        let clusters = client
            .call_ok(
                "DescribeClusters",
                &json!({ "clusters": ["bench-support"] }),
            )
            .await
            .unwrap();
        assert_eq!(clusters["clusters"][0]["status"], "ACTIVE");
        assert!(server.store.write_stats().requests > before.requests);

        let refused = client
            .call_ok(
                "DescribeTaskDefinition",
                &json!({ "taskDefinition": "none:1" }),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with("DescribeTaskDefinition: HTTP 400"),
            "{refused}"
        );
        server.stop().await;
    }
}
