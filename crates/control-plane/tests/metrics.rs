//! `GET /metrics` over real TCP: unsigned scrapes, the format the `Accept`
//! header asks for, and API requests counted with bounded labels.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::access_keys::{AccessKey, AccessKeys};
use api::{ApiError, RequestContext};
use async_trait::async_trait;
use aws_protocol::sigv4::{self, SigningParams};
use bytes::Bytes;
use control_plane::{JsonService, Server, ServerConfig, Services};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rand::SeedableRng;
use store::MemoryStore;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";
const TARGET: &str = "BerthTestMetricsV1";
/// The signing name the test service answers for: a label of its own, so
/// other tests in this process do not move its counts.
const SERVICE: &str = "berthmetricstest";

struct TestService;

#[async_trait]
impl JsonService for TestService {
    fn target_prefix(&self) -> &str {
        TARGET
    }
    fn signing_name(&self) -> &str {
        SERVICE
    }
    async fn handle(
        &self,
        _ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        match operation {
            "Echo" => Ok(body.to_vec()),
            "Fail" => Err(ApiError::server("failed on purpose")),
            other => Err(ApiError::unknown_operation(other)),
        }
    }
}

struct TestServer {
    addr: SocketAddr,
    key: AccessKey,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(metrics_endpoint: bool) -> TestServer {
    let store: Arc<dyn store::Store> = Arc::new(MemoryStore::new());
    let access_keys = AccessKeys::load(&*store).await.unwrap();
    let key = access_keys
        .ensure_account_key(
            &*store,
            ACCOUNT,
            0,
            &mut rand::rngs::StdRng::seed_from_u64(1),
        )
        .await
        .unwrap();
    let services = Services::new().with_json(Arc::new(TestService));
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), ACCOUNT);
    assert!(config.metrics_endpoint, "on by default");
    config.metrics_endpoint = metrics_endpoint;
    let server = Server::bind(config, Arc::new(access_keys), services)
        .await
        .unwrap();
    let addr = server.local_addr();
    let (shutdown, signalled) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = signalled.await;
    }));
    TestServer {
        addr,
        key,
        shutdown,
        task,
    }
}

impl TestServer {
    async fn stop(self) {
        let _ = self.shutdown.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }

    /// A POST of `operation` to the test service, signed unless `signed` is
    /// false.
    async fn call(&self, operation: &str, signed: bool) -> StatusCode {
        let body = b"{}";
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::HOST,
            HeaderValue::from_str(&self.addr.to_string()).unwrap(),
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(&format!("{TARGET}.{operation}")).unwrap(),
        );
        if signed {
            sigv4::sign_headers(
                "POST",
                "/",
                "",
                &mut headers,
                body,
                &SigningParams {
                    access_key_id: &self.key.access_key_id,
                    secret_access_key: &self.key.secret_access_key,
                    session_token: None,
                    region: REGION,
                    service: SERVICE,
                    now_epoch_s: now_epoch_s(),
                },
            )
            .unwrap();
        }
        let mut request = Request::post(format!("http://{}/", self.addr))
            .body(Full::new(Bytes::from_static(body)))
            .unwrap();
        *request.headers_mut() = headers;
        send(self.addr, request).await.0
    }

    async fn scrape(
        &self,
        method: Method,
        accept: Option<&str>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{}/metrics", self.addr))
            .header(http::header::HOST, self.addr.to_string());
        if let Some(accept) = accept {
            request = request.header(http::header::ACCEPT, accept);
        }
        send(self.addr, request.body(Full::new(Bytes::new())).unwrap()).await
    }
}

#[allow(clippy::disallowed_methods)] // Signing needs the real time.
fn now_epoch_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

/// `berth_api_requests_total` by `(service, operation, code)`.
fn api_requests(text: &str) -> HashMap<(String, String, String), f64> {
    let mut counts = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("berth_api_requests_total{") else {
            continue;
        };
        let (labels, value) = rest.rsplit_once("} ").unwrap();
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                .map(|value| value.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        counts.insert(
            (label("service"), label("operation"), label("code")),
            value.parse().unwrap(),
        );
    }
    counts
}

fn count(counts: &HashMap<(String, String, String), f64>, key: (&str, &str, &str)) -> f64 {
    counts
        .get(&(key.0.to_string(), key.1.to_string(), key.2.to_string()))
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test]
async fn an_unsigned_scrape_sees_each_request_once_with_bounded_labels() {
    let server = start(true).await;
    let (status, headers, before) = server.scrape(Method::GET, None).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(
        before.contains("# TYPE berth_store_commit_duration_seconds histogram"),
        "{before}"
    );
    let before = api_requests(&before);

    for _ in 0..3 {
        assert_eq!(server.call("Echo", true).await, StatusCode::OK);
    }
    assert_eq!(
        server.call("Fail", true).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        server.call("NoSuchOperation", true).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(server.call("Echo", false).await, StatusCode::FORBIDDEN);

    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (status, headers, after) = server.scrape(Method::GET, Some(prometheus_accept)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(after.ends_with("# EOF\n"), "{after}");
    assert!(
        after.contains("# TYPE berth_api_requests counter"),
        "{after}"
    );
    assert!(!after.contains("NoSuchOperation"), "{after}");
    let counts = api_requests(&after);
    let delta = |key| count(&counts, key) - count(&before, key);
    assert_eq!(delta((SERVICE, "Echo", "200")), 3.0, "{after}");
    assert_eq!(delta((SERVICE, "Fail", "500")), 1.0, "{after}");
    // Other tests in this process may add to the shared `other` series.
    assert!(delta(("other", "other", "400")) >= 1.0, "{after}");
    assert!(delta(("other", "other", "403")) >= 1.0, "{after}");
    let histogram_count = after
        .lines()
        .find_map(|line| {
            line.strip_prefix(&format!(
                "berth_api_request_duration_seconds_count{{service=\"{SERVICE}\",operation=\"Echo\"}} "
            ))
        })
        .unwrap_or_else(|| panic!("no Echo latency in:\n{after}"));
    assert_eq!(histogram_count, "3");

    // Scrapes are not API requests and are not counted.
    let (_, _, again) = server.scrape(Method::GET, None).await;
    assert!(!again.contains("operation=\"-\""), "{again}");
    server.stop().await;
}

#[tokio::test]
async fn only_a_get_is_a_scrape_and_the_endpoint_can_be_turned_off() {
    let server = start(true).await;
    let (status, _, body) = server.scrape(Method::POST, None).await;
    assert_ne!(status, StatusCode::OK, "{body}");
    server.stop().await;

    let server = start(false).await;
    let (status, _, body) = server.scrape(Method::GET, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an unsigned API request: {body}"
    );
    assert!(!body.contains("berth_api_requests"), "{body}");
    server.stop().await;
}
