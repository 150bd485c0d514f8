//! The control plane's HTTP shell, driven over real TCP with SigV4-signed
//! requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::access_keys::{AccessKey, AccessKeys};
use api::{ApiError, RequestContext};
use async_trait::async_trait;
use aws_protocol::sigv4::{self, AuthMode, SigningParams};
use bytes::Bytes;
use control_plane::{JsonService, Server, ServerConfig, ServerError, Services};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::SeedableRng;
use store::MemoryStore;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";
const ECS_TARGET: &str = "AmazonEC2ContainerServiceV20141113";
const ECHO_TARGET: &str = "BerthTestEchoV1";

/// A JSON service for the shell's own behaviour: `Echo` returns the body it
/// was given, `Fail` a server fault, `Slow` answers after 300 ms.
struct TestService;

#[async_trait]
impl JsonService for TestService {
    fn target_prefix(&self) -> &str {
        ECHO_TARGET
    }
    fn signing_name(&self) -> &str {
        "ecs"
    }
    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        match operation {
            "Echo" => Ok(body.to_vec()),
            "Context" => Ok(serde_json::to_vec(&serde_json::json!({
                "region": ctx.region,
                "accountId": ctx.account_id,
                "principalArn": ctx.principal_arn,
                "requestId": ctx.request_id,
            }))
            .unwrap()),
            "Fail" => Err(ApiError::server("the test service failed on purpose")),
            "Slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(b"{\"slow\":true}".to_vec())
            }
            other => Err(ApiError::unknown_operation(other)),
        }
    }
}

struct TestServer {
    addr: SocketAddr,
    key: AccessKey,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    async fn start(auth_mode: AuthMode) -> TestServer {
        Self::start_with(auth_mode, |_| {}).await
    }

    async fn start_with(auth_mode: AuthMode, adjust: impl FnOnce(&mut ServerConfig)) -> TestServer {
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
        let services = Services::new()
            .with_json(Arc::new(api::Ecs::new(Arc::clone(&store))))
            .with_json(Arc::new(TestService));
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), ACCOUNT);
        config.auth_mode = auth_mode;
        adjust(&mut config);
        let server = Server::bind(config, Arc::new(access_keys), services)
            .await
            .unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0, "local_addr reports the real port");
        let (shutdown, signalled) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = signalled.await;
        }));
        TestServer {
            addr,
            key,
            shutdown: Some(shutdown),
            task,
        }
    }

    fn credentials(&self) -> Credentials {
        Credentials {
            access_key_id: self.key.access_key_id.clone(),
            secret_access_key: self.key.secret_access_key.clone(),
        }
    }

    async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the server stops")
            .unwrap();
    }
}

#[derive(Clone)]
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
}

impl Credentials {
    fn dummy() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        }
    }
}

#[allow(clippy::disallowed_methods)]
fn now_epoch_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A POST to `/` with `X-Amz-Target: <target>` (if any), signed for
/// `service` with `credentials` (if any).
fn request(
    addr: SocketAddr,
    target: Option<&str>,
    body: &[u8],
    credentials: Option<&Credentials>,
    service: &str,
) -> Request<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::HOST,
        HeaderValue::from_str(&addr.to_string()).unwrap(),
    );
    match target {
        Some(target) => {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-amz-json-1.1"),
            );
            headers.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
        }
        None => {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
            );
        }
    }
    if let Some(credentials) = credentials {
        sigv4::sign_headers(
            "POST",
            "/",
            "",
            &mut headers,
            body,
            &SigningParams {
                access_key_id: &credentials.access_key_id,
                secret_access_key: &credentials.secret_access_key,
                session_token: None,
                region: REGION,
                service,
                now_epoch_s: now_epoch_s(),
            },
        )
        .unwrap();
    }
    let mut request = Request::post(format!("http://{addr}/"))
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    *request.headers_mut() = headers;
    request
}

fn ecs(server: &TestServer, operation: &str, body: &[u8]) -> Request<Full<Bytes>> {
    request(
        server.addr,
        Some(&format!("{ECS_TARGET}.{operation}")),
        body,
        Some(&server.credentials()),
        "ecs",
    )
}

fn echo(server: &TestServer, operation: &str, body: &[u8]) -> Request<Full<Bytes>> {
    request(
        server.addr,
        Some(&format!("{ECHO_TARGET}.{operation}")),
        body,
        Some(&server.credentials()),
        "ecs",
    )
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("body {:?} is not JSON: {err}", self.body);
        })
    }

    fn request_id(&self) -> &str {
        self.headers
            .get("x-amzn-requestid")
            .expect("x-amzn-RequestId is present")
            .to_str()
            .unwrap()
    }

    /// A JSON error with exactly `__type` and `message`, the type repeated
    /// in `x-amzn-ErrorType`.
    fn assert_json_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {:?}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/x-amz-json-1.1",
            "errors are JSON 1.1"
        );
        assert_eq!(self.headers["x-amzn-errortype"], code);
        let body = self.json();
        let fields = body.as_object().expect("the error body is an object");
        assert_eq!(fields.len(), 2, "only __type and message: {body}");
        assert_eq!(body["__type"], code);
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a message: {body}"
        );
        uuid::Uuid::parse_str(self.request_id()).expect("the request id is a UUID");
    }
}

async fn http1_connection(addr: SocketAddr) -> http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender
}

async fn send_on(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Reply {
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Reply {
    send_on(&mut http1_connection(addr).await, request).await
}

#[tokio::test]
async fn a_request_without_authentication_is_refused() {
    let server = TestServer::start(AuthMode::Verify).await;
    let reply = send(
        server.addr,
        request(
            server.addr,
            Some(&format!("{ECS_TARGET}.ListClusters")),
            b"{}",
            None,
            "ecs",
        ),
    )
    .await;
    reply.assert_json_error(StatusCode::FORBIDDEN, "MissingAuthenticationTokenException");
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_is_an_invalid_signature() {
    let server = TestServer::start(AuthMode::Verify).await;
    let mut credentials = server.credentials();
    credentials.secret_access_key = "x".repeat(40);
    let reply = send(
        server.addr,
        request(
            server.addr,
            Some(&format!("{ECHO_TARGET}.Echo")),
            b"{}",
            Some(&credentials),
            "ecs",
        ),
    )
    .await;
    reply.assert_json_error(StatusCode::FORBIDDEN, "InvalidSignatureException");
    server.stop().await;
}

#[tokio::test]
async fn a_tampered_body_is_an_invalid_signature() {
    let server = TestServer::start(AuthMode::Verify).await;
    let mut tampered = echo(&server, "Echo", br#"{"a":1}"#);
    *tampered.body_mut() = Full::new(Bytes::from_static(br#"{"a":2}"#));
    let reply = send(server.addr, tampered).await;
    reply.assert_json_error(StatusCode::FORBIDDEN, "InvalidSignatureException");
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_access_key_is_an_unrecognized_client() {
    let server = TestServer::start(AuthMode::Verify).await;
    let reply = send(
        server.addr,
        request(
            server.addr,
            Some(&format!("{ECHO_TARGET}.Echo")),
            b"{}",
            Some(&Credentials::dummy()),
            "ecs",
        ),
    )
    .await;
    reply.assert_json_error(StatusCode::FORBIDDEN, "UnrecognizedClientException");
    server.stop().await;
}

#[tokio::test]
async fn a_request_signed_for_another_service_is_refused() {
    let server = TestServer::start(AuthMode::Verify).await;
    let reply = send(
        server.addr,
        request(
            server.addr,
            Some(&format!("{ECHO_TARGET}.Echo")),
            b"{}",
            Some(&server.credentials()),
            "logs",
        ),
    )
    .await;
    reply.assert_json_error(StatusCode::FORBIDDEN, "InvalidSignatureException");
    assert!(reply.json()["message"].as_str().unwrap().contains("'ecs'"));
    server.stop().await;
}

#[tokio::test]
async fn open_mode_accepts_any_well_formed_signature() {
    let server = TestServer::start(AuthMode::Open).await;
    let reply = send(
        server.addr,
        request(
            server.addr,
            Some(&format!("{ECHO_TARGET}.Echo")),
            br#"{"hello":"world"}"#,
            Some(&Credentials::dummy()),
            "ecs",
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "body: {:?}", reply.body);
    assert_eq!(reply.json(), serde_json::json!({"hello": "world"}));

    let unsigned = send(
        server.addr,
        request(
            server.addr,
            Some(&format!("{ECHO_TARGET}.Echo")),
            b"{}",
            None,
            "ecs",
        ),
    )
    .await;
    unsigned.assert_json_error(StatusCode::FORBIDDEN, "MissingAuthenticationTokenException");
    server.stop().await;
}

#[tokio::test]
async fn open_mode_refuses_to_listen_beyond_loopback() {
    let store = MemoryStore::new();
    let access_keys = AccessKeys::load(&store).await.unwrap();
    let mut config = ServerConfig::new("0.0.0.0:0".parse().unwrap(), ACCOUNT);
    config.auth_mode = AuthMode::Open;
    let err = Server::bind(config, Arc::new(access_keys), Services::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServerError::OpenAuthNotLoopback { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("loopback"));
}

#[tokio::test]
async fn successes_carry_a_request_id_and_the_json_content_type() {
    let server = TestServer::start(AuthMode::Verify).await;
    let first = send(server.addr, echo(&server, "Context", b"{}")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers["content-type"], "application/x-amz-json-1.1");
    assert!(first.headers.get("x-amzn-errortype").is_none());
    let ctx = first.json();
    assert_eq!(ctx["requestId"], first.request_id());
    assert_eq!(ctx["region"], REGION);
    assert_eq!(ctx["accountId"], ACCOUNT);
    assert_eq!(ctx["principalArn"], "arn:aws:iam::000000000000:root");

    let second = send(server.addr, echo(&server, "Context", b"{}")).await;
    assert_ne!(first.request_id(), second.request_id());
    server.stop().await;
}

#[tokio::test]
async fn an_empty_body_reaches_the_service_as_an_empty_object() {
    let server = TestServer::start(AuthMode::Verify).await;
    let reply = send(server.addr, echo(&server, "Echo", b"")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(&reply.body[..], b"{}");
    server.stop().await;
}

#[tokio::test]
async fn unknown_targets_and_operations_are_unknown_operations() {
    let server = TestServer::start(AuthMode::Verify).await;
    for target in [
        "AmazonEC2ContainerServiceV20990101.ListClusters",
        "NoDotInThisTarget",
    ] {
        let reply = send(
            server.addr,
            request(
                server.addr,
                Some(target),
                b"{}",
                Some(&server.credentials()),
                "ecs",
            ),
        )
        .await;
        reply.assert_json_error(StatusCode::BAD_REQUEST, "UnknownOperationException");
    }
    let reply = send(server.addr, ecs(&server, "NoSuchOperation", b"{}")).await;
    reply.assert_json_error(StatusCode::BAD_REQUEST, "UnknownOperationException");
    server.stop().await;
}

#[tokio::test]
async fn server_faults_are_500_server_exceptions() {
    let server = TestServer::start(AuthMode::Verify).await;
    let reply = send(server.addr, echo(&server, "Fail", b"{}")).await;
    reply.assert_json_error(StatusCode::INTERNAL_SERVER_ERROR, "ServerException");
    server.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let server = TestServer::start_with(AuthMode::Verify, |config| {
        config.max_body_bytes = 1024;
    })
    .await;
    let big = format!(r#"{{"padding":"{}"}}"#, "x".repeat(2048));
    let reply = send(server.addr, echo(&server, "Echo", big.as_bytes())).await;
    reply.assert_json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLargeException",
    );
    server.stop().await;
}

#[tokio::test]
async fn query_requests_for_services_not_served_get_an_xml_invalid_action() {
    let server = TestServer::start(AuthMode::Verify).await;
    let reply = send(
        server.addr,
        request(
            server.addr,
            None,
            b"Action=DescribeLoadBalancers&Version=2015-12-01",
            Some(&server.credentials()),
            "elasticloadbalancing",
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.headers["content-type"], "text/xml");
    assert_eq!(reply.headers["x-amzn-errortype"], "InvalidAction");
    let body = std::str::from_utf8(&reply.body).unwrap();
    assert!(
        body.starts_with("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code>"),
        "{body}"
    );
    assert!(body.contains(&format!("<RequestId>{}</RequestId>", reply.request_id())));

    let unsigned = send(
        server.addr,
        request(
            server.addr,
            None,
            b"Action=DescribeLoadBalancers",
            None,
            "x",
        ),
    )
    .await;
    assert_eq!(unsigned.status, StatusCode::FORBIDDEN);
    assert_eq!(
        unsigned.headers["x-amzn-errortype"],
        "MissingAuthenticationToken"
    );
    server.stop().await;
}

#[tokio::test]
async fn one_connection_serves_several_requests() {
    let server = TestServer::start(AuthMode::Verify).await;
    let mut connection = http1_connection(server.addr).await;
    for round in 0..2 {
        let body = format!(r#"{{"round":{round}}}"#);
        let reply = send_on(&mut connection, echo(&server, "Echo", body.as_bytes())).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()["round"], round);
    }
    server.stop().await;
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_served() {
    let server = TestServer::start(AuthMode::Verify).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    // HTTP/2 sends the host as `:authority` (from the URI), not as a header.
    let mut signed = echo(&server, "Echo", br#"{"h2":true}"#);
    signed.headers_mut().remove(http::header::HOST);
    let response = sender.send_request(signed).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"h2":true}"#);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let server = TestServer::start(AuthMode::Verify).await;
    let addr = server.addr;
    let slow = echo(&server, "Slow", b"{}");
    let in_flight = tokio::spawn(async move { send(addr, slow).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(&reply.body[..], br#"{"slow":true}"#);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting after shutdown"
    );
}
