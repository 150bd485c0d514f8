//! The proxy against real backends on loopback.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use load_balancer::{
    Action, Condition, DesyncMitigationMode, FixedResponse, ForwardAction, HealthCheck, Listener,
    LoadBalancer, LoadBalancerAttributes, Protocol, Redirect, Rule, Stickiness, Target,
    TargetGroup, TargetGroupAttributes, TargetHealthReason, TargetHealthState, WeightedTargetGroup,
    XffHeaderProcessingMode,
};
use load_balancer_proxy::{Proxy, ProxyOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::watch;

struct Backend {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    health_status: Arc<AtomicU16>,
    /// What requests other than `/health` are answered with.
    status: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

impl Backend {
    fn target(&self) -> Target {
        Target {
            id: self.addr.ip(),
            port: self.addr.port(),
        }
    }

    fn last_headers(&self) -> HeaderMap {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

/// A backend answering its name; `/health` answers `health_status`,
/// `/slow` after a second, `/hang` after ten; `/login` sets the cookie
/// `SESSION`.
async fn backend(name: &'static str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let health_status = Arc::new(AtomicU16::new(200));
    let status = Arc::new(AtomicU16::new(200));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let backend = Backend {
        addr,
        connections: Arc::clone(&connections),
        health_status: Arc::clone(&health_status),
        status: Arc::clone(&status),
        seen: Arc::clone(&seen),
    };
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            connections.fetch_add(1, Ordering::SeqCst);
            let health_status = Arc::clone(&health_status);
            let status = Arc::clone(&status);
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let health_status = Arc::clone(&health_status);
                    let status = StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap();
                    let seen = Arc::clone(&seen);
                    async move {
                        let path = request.uri().path().to_string();
                        if path == "/health" {
                            let status =
                                StatusCode::from_u16(health_status.load(Ordering::SeqCst)).unwrap();
                            let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                            *response.status_mut() = status;
                            return Ok::<_, Infallible>(response);
                        }
                        seen.lock().unwrap().push(request.headers().clone());
                        match path.as_str() {
                            "/slow" => tokio::time::sleep(Duration::from_secs(1)).await,
                            "/hang" => tokio::time::sleep(Duration::from_secs(10)).await,
                            _ => {}
                        }
                        let mut response =
                            Response::new(Full::new(Bytes::from_static(name.as_bytes())));
                        *response.status_mut() = status;
                        if path == "/login" {
                            response.headers_mut().insert(
                                "set-cookie",
                                http::HeaderValue::from_static("SESSION=s; Path=/"),
                            );
                        }
                        Ok(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    backend
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn forward(groups: &[(&str, u32)]) -> Action {
    Action::Forward(ForwardAction {
        target_groups: groups
            .iter()
            .map(|&(arn, weight)| WeightedTargetGroup {
                target_group_arn: arn.to_string(),
                weight,
            })
            .collect(),
    })
}

fn target_group(arn: &str, targets: &[&Backend]) -> TargetGroup {
    TargetGroup {
        target_group_arn: arn.to_string(),
        targets: targets.iter().map(|backend| backend.target()).collect(),
        health_check: HealthCheck {
            enabled: true,
            path: "/health".to_string(),
            interval_seconds: 5,
            timeout_seconds: 2,
            healthy_threshold_count: 2,
            unhealthy_threshold_count: 2,
            ..HealthCheck::default()
        },
        attributes: TargetGroupAttributes::default(),
    }
}

fn load_balancer(
    port: u16,
    default: Action,
    rules: Vec<Rule>,
    groups: Vec<TargetGroup>,
) -> LoadBalancer {
    LoadBalancer {
        name: "test".to_string(),
        listeners: vec![Listener {
            port,
            protocol: Protocol::Http,
            default_actions: vec![default],
            rules,
            response_server_enabled: true,
        }],
        target_groups: groups,
        attributes: LoadBalancerAttributes::default(),
    }
}

async fn start(config: LoadBalancer) -> (Proxy, watch::Sender<Arc<LoadBalancer>>) {
    start_with_timeout(config, Duration::from_secs(5)).await
}

async fn start_with_timeout(
    config: LoadBalancer,
    upstream_timeout: Duration,
) -> (Proxy, watch::Sender<Arc<LoadBalancer>>) {
    let options = ProxyOptions {
        bind_ip: "127.0.0.1".parse().unwrap(),
        upstream_timeout,
        ..ProxyOptions::default()
    };
    start_with_options(config, options).await
}

async fn start_with_options(
    config: LoadBalancer,
    options: ProxyOptions,
) -> (Proxy, watch::Sender<Arc<LoadBalancer>>) {
    let (sender, receiver) = watch::channel(Arc::new(config));
    let proxy = Proxy::start(receiver, options).await.unwrap();
    (proxy, sender)
}

/// One worker thread: every upstream connection is in the same pool.
async fn start_single_worker(config: LoadBalancer) -> (Proxy, watch::Sender<Arc<LoadBalancer>>) {
    let options = ProxyOptions {
        bind_ip: "127.0.0.1".parse().unwrap(),
        upstream_timeout: Duration::from_secs(5),
        worker_threads: 1,
    };
    start_with_options(config, options).await
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Answer {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::get(format!("http://127.0.0.1:{port}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client
        .request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_path_host_and_header_with_fixed_responses_and_redirects() {
    let a = backend("a").await;
    let b = backend("b").await;
    let port = free_port().await;
    let rule = |priority, condition, action| Rule {
        priority,
        conditions: vec![condition],
        actions: vec![action],
    };
    let config = load_balancer(
        port,
        forward(&[("tg-a", 1)]),
        vec![
            rule(
                1,
                Condition::PathPattern {
                    values: strings(&["/b/*"]),
                },
                forward(&[("tg-b", 1)]),
            ),
            rule(
                2,
                Condition::HostHeader {
                    values: strings(&["api.*"]),
                },
                forward(&[("tg-b", 1)]),
            ),
            rule(
                3,
                Condition::HttpHeader {
                    http_header_name: "X-Canary".to_string(),
                    values: strings(&["yes"]),
                },
                forward(&[("tg-b", 1)]),
            ),
            rule(
                4,
                Condition::PathPattern {
                    values: strings(&["/teapot"]),
                },
                Action::FixedResponse(FixedResponse {
                    status_code: 418,
                    content_type: Some("application/json".to_string()),
                    message_body: Some("{\"short\":\"stout\"}".to_string()),
                }),
            ),
            rule(
                5,
                Condition::PathPattern {
                    values: strings(&["/old/*"]),
                },
                Action::Redirect(Redirect {
                    path: "/new/#{path}".to_string(),
                    ..Redirect::default()
                }),
            ),
        ],
        vec![target_group("tg-a", &[&a]), target_group("tg-b", &[&b])],
    );
    let (proxy, _config) = start(config).await;

    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Headers, &str); 6] = [
        ("/", &[], "a"),
        ("/b/x?q=1", &[], "b"),
        ("/bx", &[], "a"),
        ("/", &[("host", "API.example.com")], "b"),
        ("/", &[("x-canary", "YES")], "b"),
        ("/", &[("x-canary", "no")], "a"),
    ];
    for (path, headers, expected) in cases {
        let answer = get(port, path, headers).await;
        assert_eq!(answer.status, StatusCode::OK, "{path} {headers:?}");
        assert_eq!(answer.body, expected, "{path} {headers:?}");
    }

    let answer = get(port, "/teapot", &[]).await;
    assert_eq!(answer.status.as_u16(), 418);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.body, "{\"short\":\"stout\"}");

    let answer = get(port, "/old/page?x=1", &[("host", "www.example.com")]).await;
    assert_eq!(answer.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        answer.headers["location"],
        format!("http://www.example.com:{port}/new/old/page?x=1")
    );

    // Forwarding headers as ALB adds them.
    get(port, "/", &[("x-forwarded-for", "203.0.113.7")]).await;
    let seen = a.last_headers();
    assert_eq!(seen["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-port"], port.to_string().as_str());
    let trace_id = seen["x-amzn-trace-id"].to_str().unwrap();
    assert!(trace_id.starts_with("Root=1-"), "{trace_id}");
    assert_eq!(trace_id.len(), "Root=1-".len() + 8 + 1 + 24, "{trace_id}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_forward_splits_by_weight() {
    let a = backend("a").await;
    let b = backend("b").await;
    let port = free_port().await;
    let config = load_balancer(
        port,
        forward(&[("tg-a", 1), ("tg-b", 3)]),
        vec![],
        vec![target_group("tg-a", &[&a]), target_group("tg-b", &[&b])],
    );
    let (proxy, _config) = start(config).await;
    let mut counts = BTreeMap::new();
    for _ in 0..400 {
        *counts.entry(get(port, "/", &[]).await.body).or_insert(0u32) += 1;
    }
    let share_b = f64::from(counts["b"]) / 400.0;
    assert!((0.65..=0.85).contains(&share_b), "{counts:?}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_503_502_and_504_like_alb() {
    let slow = backend("slow").await;
    let closed_port = free_port().await;
    let closed = Target {
        id: "127.0.0.1".parse().unwrap(),
        port: closed_port,
    };
    // Answers anything with bytes that are not HTTP.
    let garbage = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_addr = garbage.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = garbage.accept().await.unwrap();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let mut buffer = [0u8; 1024];
                let _ = stream.read(&mut buffer).await;
                let _ = stream.write_all(b"SSH-2.0-not-http\r\n\r\n").await;
            });
        }
    });
    let port = free_port().await;
    let path_rule = |priority, path: &str, arn: &str| Rule {
        priority,
        conditions: vec![Condition::PathPattern {
            values: strings(&[path]),
        }],
        actions: vec![forward(&[(arn, 1)])],
    };
    let mut refused = target_group("tg-refused", &[]);
    refused.targets = vec![closed];
    let mut not_http = target_group("tg-garbage", &[]);
    not_http.targets = vec![Target {
        id: garbage_addr.ip(),
        port: garbage_addr.port(),
    }];
    let config = load_balancer(
        port,
        forward(&[("tg-empty", 1)]),
        vec![
            path_rule(1, "/refused", "tg-refused"),
            path_rule(2, "/garbage", "tg-garbage"),
            path_rule(3, "/hang", "tg-slow"),
        ],
        vec![
            target_group("tg-empty", &[]),
            refused,
            not_http,
            target_group("tg-slow", &[&slow]),
        ],
    );
    let (proxy, _config) = start_with_timeout(config, Duration::from_millis(500)).await;
    for (path, status, title) in [
        ("/", 503, "503 Service Temporarily Unavailable"),
        ("/refused", 502, "502 Bad Gateway"),
        ("/garbage", 502, "502 Bad Gateway"),
        ("/hang", 504, "504 Gateway Time-out"),
    ] {
        let answer = get(port, path, &[]).await;
        assert_eq!(answer.status.as_u16(), status, "{path}");
        assert_eq!(answer.headers["server"], "awselb/2.0");
        assert_eq!(answer.headers["content-type"], "text/html");
        assert!(
            answer
                .body
                .contains(&format!("<center><h1>{title}</h1></center>")),
            "{}",
            answer.body
        );
    }
    proxy.shutdown().await;
}

async fn wait_for_state(
    proxy: &Proxy,
    arn: &str,
    target: Target,
    state: TargetHealthState,
) -> load_balancer::TargetHealth {
    for _ in 0..400 {
        let health = proxy.target_health(arn, target).unwrap();
        if health.state == state {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{target:?} never became {state:?}: {:?}",
        proxy.target_health(arn, target)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_mark_a_target_unhealthy_and_back() {
    let a = backend("a").await;
    let b = backend("b").await;
    b.health_status.store(500, Ordering::SeqCst);
    let port = free_port().await;
    let config = load_balancer(
        port,
        forward(&[("tg", 1)]),
        vec![],
        vec![target_group("tg", &[&a, &b])],
    );
    let (proxy, _config) = start(config).await;
    let health = proxy.target_health("tg", b.target()).unwrap();
    assert_eq!(health.state, TargetHealthState::Initial);

    let health = wait_for_state(&proxy, "tg", b.target(), TargetHealthState::Unhealthy).await;
    assert_eq!(
        health.reason,
        Some(TargetHealthReason::TargetResponseCodeMismatch)
    );
    assert_eq!(
        health.description.as_deref(),
        Some("Health checks failed with these codes: [500]")
    );
    wait_for_state(&proxy, "tg", a.target(), TargetHealthState::Healthy).await;
    for _ in 0..10 {
        assert_eq!(get(port, "/", &[]).await.body, "a");
    }

    b.health_status.store(200, Ordering::SeqCst);
    wait_for_state(&proxy, "tg", b.target(), TargetHealthState::Healthy).await;
    let mut bodies = std::collections::BTreeSet::new();
    for _ in 0..4 {
        bodies.insert(get(port, "/", &[]).await.body);
    }
    assert_eq!(bodies.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
    let all = proxy.describe_target_health("tg").unwrap();
    assert_eq!(all.len(), 2);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_lets_requests_in_flight_finish() {
    let a = backend("a").await;
    let b = backend("b").await;
    let port = free_port().await;
    let mut group = target_group("tg", &[&b]);
    group.attributes.deregistration_delay_timeout_seconds = 30;
    let config = load_balancer(port, forward(&[("tg", 1)]), vec![], vec![group.clone()]);
    let (proxy, config_sender) = start(config.clone()).await;

    let slow = tokio::spawn(async move { get(port, "/slow", &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut replaced = config.clone();
    replaced.target_groups[0].targets = vec![a.target()];
    config_sender.send(Arc::new(replaced)).unwrap();
    let health = wait_for_state(&proxy, "tg", b.target(), TargetHealthState::Draining).await;
    assert_eq!(
        health.reason,
        Some(TargetHealthReason::TargetDeregistrationInProgress)
    );
    assert_eq!(get(port, "/", &[]).await.body, "a");

    let answer = slow.await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "b"));
    let health = wait_for_state(&proxy, "tg", b.target(), TargetHealthState::Unused).await;
    assert_eq!(health.reason, Some(TargetHealthReason::TargetNotRegistered));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_connections_alive_and_speaks_h2c() {
    let a = backend("a").await;
    let port = free_port().await;
    let config = load_balancer(
        port,
        forward(&[("tg", 1)]),
        vec![],
        vec![target_group("tg", &[&a])],
    );
    let (proxy, _config) = start(config).await;

    // One client connection carries several HTTP/1.1 requests.
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    for _ in 0..5 {
        sender.ready().await.unwrap();
        let request = Request::get("/")
            .header("host", "x")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "a"
        );
    }

    // h2c with prior knowledge.
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for _ in 0..3 {
        let request = Request::get(format!("http://127.0.0.1:{port}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "a"
        );
    }

    // Sequential requests reuse pooled upstream connections (health checks
    // open their own: one at start).
    let before = a.connections.load(Ordering::SeqCst);
    for _ in 0..20 {
        get(port, "/", &[]).await;
    }
    let opened = a.connections.load(Ordering::SeqCst) - before;
    assert!(
        opened <= 1,
        "{opened} new upstream connections for 20 sequential requests"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_follow_the_configuration() {
    let a = backend("a").await;
    let first = free_port().await;
    let second = free_port().await;
    let config = load_balancer(
        first,
        forward(&[("tg", 1)]),
        vec![],
        vec![target_group("tg", &[&a])],
    );
    let (proxy, sender) = start(config.clone()).await;
    assert_eq!(get(first, "/", &[]).await.body, "a");

    let mut both = config.clone();
    let mut listener = both.listeners[0].clone();
    listener.port = second;
    both.listeners.push(listener);
    sender.send(Arc::new(both.clone())).unwrap();
    let mut reachable = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", second))
            .await
            .is_ok()
        {
            reachable = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reachable);
    assert_eq!(get(second, "/", &[]).await.body, "a");
    assert_eq!(proxy.listener_ports(), vec![first, second]);

    // An invalid snapshot is refused; the running one stays.
    let mut invalid = both.clone();
    invalid.listeners[1].port = first;
    sender.send(Arc::new(invalid)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(proxy.listener_ports(), vec![first, second]);

    let mut only_second = both.clone();
    only_second.listeners.remove(0);
    sender.send(Arc::new(only_second)).unwrap();
    let mut closed = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", first))
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed);
    assert_eq!(get(second, "/", &[]).await.body, "a");
    proxy.shutdown().await;
}

/// A target that answers the first request of every connection (keeping
/// it alive) and closes the connection when the next request arrives,
/// without answering: a target going away under a pooled connection.
/// Counts the requests it answered and those it closed on.
async fn closing_backend() -> (Target, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    let closed_counter = Arc::clone(&closed);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let counter = Arc::clone(&counter);
            let closed_counter = Arc::clone(&closed_counter);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Health checks and the first request: read a whole head
                // (and the small bodies these tests send), then answer.
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                if request.starts_with(b"GET /health") {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nclosing")
                    .await;
                // The next request is read, then the connection closes.
                if let Ok(1..) = stream.read(&mut buffer).await {
                    closed_counter.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    let target = Target {
        id: addr.ip(),
        port: addr.port(),
    };
    (target, answered, closed)
}

async fn request(port: u16, method: &str, path: &str, body: &'static str) -> Answer {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::builder()
        .method(method)
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_on_another_target_and_avoided() {
    let a = backend("a").await;
    let gone = Target {
        id: "127.0.0.1".parse().unwrap(),
        port: free_port().await,
    };
    let port = free_port().await;
    let mut group = target_group("tg", &[&a]);
    group.targets.push(gone);
    // Every request, whatever its method, reaches `a`.
    let config = load_balancer(port, forward(&[("tg", 1)]), vec![], vec![group]);
    let (proxy, _config) = start(config).await;
    for method in ["GET", "POST", "PATCH", "GET"] {
        let answer = request(port, method, "/", "payload").await;
        assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "a"));
    }
    // Passive health is not reported: the health checks decide that.
    let health = proxy.target_health("tg", gone).unwrap();
    assert_ne!(health.state, TargetHealthState::Healthy);
    assert_eq!(
        proxy.describe_target_health("tg").unwrap().len(),
        2,
        "both targets stay registered"
    );
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_closed_before_the_response_is_retried_when_safe() {
    let b = backend("b").await;
    let (closing, answered, closed) = closing_backend().await;
    let port = free_port().await;
    let mut group = target_group("tg", &[&b]);
    group.targets.push(closing);
    let config = load_balancer(port, forward(&[("tg", 1)]), vec![], vec![group]);
    let (proxy, _config) = start_single_worker(config).await;
    // Round robin alternates; every second request to `closing` uses its
    // pooled connection, which it then closes. Idempotent requests (with no
    // body or a small one) go to `b` instead; none fails.
    let mut bodies = BTreeMap::new();
    for (method, body) in [("GET", ""), ("PUT", "small"), ("DELETE", ""), ("HEAD", "")]
        .into_iter()
        .cycle()
        .take(16)
    {
        let answer = request(port, method, "/", body).await;
        assert_eq!(answer.status, StatusCode::OK, "{method}");
        *bodies.entry(answer.body).or_insert(0) += 1;
    }
    assert!(answered.load(Ordering::SeqCst) >= 2, "{bodies:?}");
    assert!(closed.load(Ordering::SeqCst) >= 2, "{bodies:?}");
    proxy.shutdown().await;

    // A POST is never sent twice: the client gets a 502.
    let port = free_port().await;
    let mut group = target_group("tg-closing", &[]);
    group.targets = vec![closing];
    let config = load_balancer(port, forward(&[("tg-closing", 1)]), vec![], vec![group]);
    let (proxy, _config) = start_single_worker(config).await;
    // A POST answered on a new connection leaves that connection pooled (its
    // check-in may still be under way when the next request comes, so the
    // next one may open another); the first POST that meets a pooled one is
    // swallowed and answered 502, not sent again.
    let mut refused = false;
    for _ in 0..20 {
        let (answered_before, closed_before) = (
            answered.load(Ordering::SeqCst),
            closed.load(Ordering::SeqCst),
        );
        let answer = request(port, "POST", "/", "once").await;
        if answer.status == StatusCode::BAD_GATEWAY {
            assert_eq!(answered.load(Ordering::SeqCst), answered_before);
            assert_eq!(closed.load(Ordering::SeqCst), closed_before + 1);
            refused = true;
            break;
        }
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "closing")
        );
    }
    assert!(refused, "no POST met a stale pooled connection");
    // GETs meeting the same kind of stale connection are retried on a new
    // one (there is no other target): none fails.
    let closed_before = closed.load(Ordering::SeqCst);
    for _ in 0..6 {
        let answer = request(port, "GET", "/", "").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (StatusCode::OK, "closing")
        );
    }
    assert!(
        closed.load(Ordering::SeqCst) > closed_before,
        "no GET met a stale connection"
    );
    proxy.shutdown().await;
}

/// Accepts connections, reads the request and closes without answering, as
/// Docker's port proxy does once the container behind it has died. Counts
/// the requests it swallowed (health checks aside).
async fn unanswering_backend() -> (Target, Arc<AtomicUsize>) {
    use tokio::io::AsyncReadExt as _;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let swallowed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&swallowed);
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                if let Ok(n @ 1..) = stream.read(&mut buffer).await {
                    if !buffer[..n].starts_with(b"GET /health") {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let target = Target {
        id: addr.ip(),
        port: addr.port(),
    };
    (target, swallowed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_closed_unanswered_is_retried_for_idempotent_requests() {
    let a = backend("a").await;
    let (dead, swallowed) = unanswering_backend().await;
    let port = free_port().await;
    let mut group = target_group("tg", &[&a]);
    group.targets.push(dead);
    let config = load_balancer(port, forward(&[("tg", 1)]), vec![], vec![group]);
    let (proxy, _config) = start_single_worker(config).await;
    for _ in 0..6 {
        let answer = request(port, "GET", "/", "").await;
        assert_eq!((answer.status, answer.body.as_str()), (StatusCode::OK, "a"));
    }
    // The dead target got one request, then was avoided.
    assert_eq!(swallowed.load(Ordering::SeqCst), 1);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_health_checks_send_traffic_to_every_registered_target() {
    let a = backend("a").await;
    let b = backend("b").await;
    // It would fail its checks, were there any.
    b.health_status.store(500, Ordering::SeqCst);
    let port = free_port().await;
    let mut group = target_group("tg", &[&a, &b]);
    group.health_check.enabled = false;
    let config = load_balancer(port, forward(&[("tg", 1)]), vec![], vec![group]);
    let (proxy, _config) = start(config).await;
    for target in [a.target(), b.target()] {
        let health = proxy.target_health("tg", target).unwrap();
        assert_eq!(
            (health.state, health.reason),
            (TargetHealthState::Healthy, None)
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No health check connected.
    assert_eq!(a.connections.load(Ordering::SeqCst), 0);
    assert_eq!(b.connections.load(Ordering::SeqCst), 0);
    let mut bodies = BTreeMap::new();
    for _ in 0..4 {
        *bodies.entry(get(port, "/", &[]).await.body).or_insert(0) += 1;
    }
    assert_eq!(
        bodies,
        BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 2)])
    );
    proxy.shutdown().await;
}

/// Sends a new configuration and gives the proxy a moment to apply it.
async fn reconfigure(sender: &watch::Sender<Arc<LoadBalancer>>, config: &LoadBalancer) {
    sender.send_replace(Arc::new(config.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_follow_the_load_balancer_attributes() {
    let a = backend("a").await;
    let port = free_port().await;
    let mut config = load_balancer(
        port,
        forward(&[("tg", 1)]),
        vec![],
        vec![target_group("tg", &[&a])],
    );
    let (proxy, sender) = start(config.clone()).await;
    let seen = |headers: &[(&str, &str)]| {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let a = &a;
        async move {
            let borrowed: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            assert_eq!(get(port, "/", &borrowed).await.body, "a");
            a.last_headers()
        }
    };
    let value = |headers: &HeaderMap, name: &str| -> Option<String> {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect();
        (!values.is_empty()).then(|| values.join(" | "))
    };

    // ALB's defaults: the client's address is appended; the Host gets the
    // listener's (non-default) port; header names are not checked.
    let headers = seen(&[
        ("x-forwarded-for", "192.0.2.9"),
        ("host", "example.com"),
        ("x_underscore", "1"),
    ])
    .await;
    assert_eq!(
        value(&headers, "x-forwarded-for").as_deref(),
        Some("192.0.2.9, 127.0.0.1")
    );
    assert_eq!(value(&headers, "host"), Some(format!("example.com:{port}")));
    assert_eq!(value(&headers, "x_underscore").as_deref(), Some("1"));
    let headers = seen(&[]).await;
    assert_eq!(
        value(&headers, "x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );

    // With the client's port, the host preserved and invalid names dropped.
    config.attributes = LoadBalancerAttributes {
        xff_client_port_enabled: true,
        preserve_host_header: true,
        drop_invalid_header_fields: true,
        ..LoadBalancerAttributes::default()
    };
    reconfigure(&sender, &config).await;
    let headers = seen(&[
        ("x-forwarded-for", "192.0.2.9"),
        ("host", "example.com"),
        ("x_underscore", "1"),
        ("x-valid-2", "1"),
    ])
    .await;
    let forwarded_for = value(&headers, "x-forwarded-for").unwrap();
    let client_port = forwarded_for
        .strip_prefix("192.0.2.9, 127.0.0.1:")
        .unwrap_or_else(|| panic!("{forwarded_for}"));
    assert!(client_port.parse::<u16>().is_ok(), "{forwarded_for}");
    assert_eq!(value(&headers, "host").as_deref(), Some("example.com"));
    assert_eq!(value(&headers, "x_underscore"), None);
    assert_eq!(value(&headers, "x-valid-2").as_deref(), Some("1"));

    // Preserve: as received, and none when there was none.
    config.attributes = LoadBalancerAttributes {
        xff_header_processing_mode: XffHeaderProcessingMode::Preserve,
        ..LoadBalancerAttributes::default()
    };
    reconfigure(&sender, &config).await;
    let headers = seen(&[("x-forwarded-for", "192.0.2.9")]).await;
    assert_eq!(
        value(&headers, "x-forwarded-for").as_deref(),
        Some("192.0.2.9")
    );
    assert_eq!(value(&seen(&[]).await, "x-forwarded-for"), None);

    // Remove.
    config.attributes.xff_header_processing_mode = XffHeaderProcessingMode::Remove;
    reconfigure(&sender, &config).await;
    let headers = seen(&[("x-forwarded-for", "192.0.2.9")]).await;
    assert_eq!(value(&headers, "x-forwarded-for"), None);
    // The other forwarded headers stay.
    assert_eq!(
        value(&headers, "x-forwarded-proto").as_deref(),
        Some("http")
    );
    proxy.shutdown().await;
}

/// Writes `request` on a new connection and reads until the proxy closes
/// it (or two seconds pass): the raw answer, and whether it was closed.
async fn raw_exchange(port: u16, request: &[u8]) -> (String, bool) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(read)) => answer.extend_from_slice(&buffer[..read]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desync_mitigation_modes_treat_requests_by_classification() {
    let a = backend("a").await;
    let port = free_port().await;
    let mut config = load_balancer(
        port,
        forward(&[("tg", 1)]),
        vec![Rule {
            priority: 1,
            conditions: vec![Condition::PathPattern {
                values: strings(&["/fixed"]),
            }],
            actions: vec![Action::FixedResponse(FixedResponse {
                status_code: 200,
                content_type: None,
                message_body: Some("fixed".to_string()),
            })],
        }],
        vec![target_group("tg", &[&a])],
    );
    let (proxy, sender) = start(config.clone()).await;
    let compliant = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n".as_slice();
    // Acceptable: GetHeadZeroContentLength.
    let acceptable = b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n".as_slice();
    // Ambiguous: UndefinedContentLengthSemantics.
    let ambiguous = b"GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello".as_slice();
    // Severe: MultipleTransferEncodingChunked.
    let severe =
        b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked, chunked\r\n\r\n0\r\n\r\n"
            .as_slice();
    // (status, connection closed) for each of them.
    for (mode, expected) in [
        (
            DesyncMitigationMode::Monitor,
            [(200, false), (200, false), (200, false), (200, false)],
        ),
        (
            DesyncMitigationMode::Defensive,
            [(200, false), (200, false), (200, true), (400, true)],
        ),
        (
            DesyncMitigationMode::Strictest,
            [(200, false), (400, true), (400, true), (400, true)],
        ),
    ] {
        config.attributes.desync_mitigation_mode = mode;
        reconfigure(&sender, &config).await;
        for (request, (status, closed)) in [compliant, acceptable, ambiguous, severe]
            .into_iter()
            .zip(expected)
        {
            let (answer, was_closed) = raw_exchange(port, request).await;
            let what = format!("{mode:?} {:?}: {answer}", String::from_utf8_lossy(request));
            assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{what}");
            assert_eq!(was_closed, closed, "{what}");
            assert_eq!(
                answer.to_ascii_lowercase().contains("connection: close"),
                closed,
                "{what}"
            );
        }
    }
    // The load balancer's own answers close an ambiguous request's
    // connection too.
    config.attributes.desync_mitigation_mode = DesyncMitigationMode::Defensive;
    reconfigure(&sender, &config).await;
    let (answer, closed) = raw_exchange(
        port,
        b"GET /fixed HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nx",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("fixed"),
        "{answer}"
    );
    assert!(closed, "{answer}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_can_be_turned_off() {
    let a = backend("a").await;
    let port = free_port().await;
    let mut config = load_balancer(
        port,
        forward(&[("tg", 1)]),
        vec![],
        vec![target_group("tg", &[&a])],
    );
    config.attributes.http2_enabled = false;
    let (proxy, _sender) = start(config).await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = Request::get(format!("http://127.0.0.1:{port}/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert!(sender.send_request(request).await.is_err());
    // HTTP/1.1 still works.
    assert_eq!(get(port, "/", &[]).await.body, "a");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_bounds_the_wait_for_a_target() {
    let a = backend("a").await;
    let port = free_port().await;
    let mut config = load_balancer(
        port,
        forward(&[("tg", 1)]),
        vec![],
        vec![target_group("tg", &[&a])],
    );
    config.attributes.idle_timeout_seconds = 1;
    let (proxy, _sender) = start(config).await;
    // The proxy's own limit in these tests is 5 s; the hang is 10 s.
    let answer = tokio::time::timeout(Duration::from_secs(4), get(port, "/hang", &[]))
        .await
        .expect("the idle timeout (1 s) ended the wait");
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_cookie_stickiness_pins_clients_once_the_application_sets_its_cookie() {
    let (a, b) = (backend("a").await, backend("b").await);
    let port = free_port().await;
    let mut group = target_group("tg", &[&a, &b]);
    group.health_check.enabled = false;
    group.attributes.stickiness = Stickiness::app_cookie("SESSION", 300);
    let config = load_balancer(port, forward(&[("tg", 1)]), vec![], vec![group]);
    let (proxy, _sender) = start_single_worker(config).await;

    // No application cookie: no stickiness cookie, round robin.
    let plain = get(port, "/", &[]).await;
    assert!(
        plain.headers.get("set-cookie").is_none(),
        "{:?}",
        plain.headers
    );
    let login = get(port, "/login", &[]).await;
    let cookies: Vec<&str> = login
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert_eq!(cookies[0], "SESSION=s; Path=/");
    let sticky = cookies[1]
        .strip_suffix("; Max-Age=300; Path=/")
        .and_then(|cookie| cookie.strip_prefix("AWSALBAPP-0="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    let cookie = format!("SESSION=s; AWSALBAPP-0={sticky}");
    for _ in 0..6 {
        let answer = get(port, "/", &[("cookie", &cookie)]).await;
        assert_eq!(answer.body, login.body);
    }
    // The lb_cookie's AWSALB means nothing to app_cookie stickiness.
    let mut bodies = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let cookie = format!("AWSALB={sticky}");
        bodies.insert(get(port, "/", &[("cookie", &cookie)]).await.body);
    }
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_header_of_the_load_balancers_own_answers_can_be_turned_off() {
    let port = free_port().await;
    let fixed = Action::FixedResponse(FixedResponse {
        status_code: 200,
        content_type: None,
        message_body: Some("fixed".to_string()),
    });
    let mut config = load_balancer(port, fixed, vec![], vec![]);
    let (proxy, sender) = start(config.clone()).await;
    let answer = get(port, "/", &[]).await;
    assert_eq!(
        answer.headers.get("server").map(|v| v.to_str().unwrap()),
        Some("awselb/2.0")
    );
    config.listeners[0].response_server_enabled = false;
    reconfigure(&sender, &config).await;
    let answer = get(port, "/", &[]).await;
    assert_eq!(answer.body, "fixed");
    assert_eq!(answer.headers.get("server"), None);
    proxy.shutdown().await;
}

/// Sends `requests` GETs one after another; counts the answers by body.
async fn tally(port: u16, requests: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..requests {
        *counts.entry(get(port, "/", &[]).await.body).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_target_weights_move_traffic_off_a_target_answering_500s() {
    use load_balancer::{AnomalyResult, LoadBalancingAlgorithm};
    for mitigation in [true, false] {
        let a = backend("a").await;
        let b = backend("b").await;
        let c = backend("c").await;
        c.status.store(500, Ordering::SeqCst);
        let mut group = target_group("tg", &[&a, &b, &c]);
        // Every registered target counts as healthy at once.
        group.health_check.enabled = false;
        group.attributes.load_balancing_algorithm_type = LoadBalancingAlgorithm::WeightedRandom;
        group.attributes.anomaly_mitigation_enabled = mitigation;
        let port = free_port().await;
        let (proxy, _config) = start(load_balancer(
            port,
            forward(&[("tg", 1)]),
            vec![],
            vec![group],
        ))
        .await;

        // Before the first evaluation: a third each.
        let before = tally(port, 150).await;
        // (Detection needs 20 of its requests: until then it gets a third.)
        assert!(before["c"] >= 20, "{mitigation}: {before:?}");
        // A few evaluations (every 500 ms) later c is anomalous.
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let anomaly = proxy.target_anomaly("tg", c.target()).unwrap();
        assert_eq!(anomaly.result, AnomalyResult::Anomalous, "{mitigation}");
        assert_eq!(anomaly.mitigation_in_effect, mitigation);
        let normal = proxy.target_anomaly("tg", a.target()).unwrap();
        assert_eq!(normal.result, AnomalyResult::Normal);
        assert!(!normal.mitigation_in_effect);

        let after = tally(port, 300).await;
        let to_c = after.get("c").copied().unwrap_or(0);
        if mitigation {
            // Its weight is at most 1/16 of the others': under 5% expected.
            assert!(to_c < 30, "{after:?}");
            assert!(after["a"] > 100 && after["b"] > 100, "{after:?}");
        } else {
            assert!(to_c > 60, "{after:?}");
        }
        proxy.shutdown().await;
    }
}
