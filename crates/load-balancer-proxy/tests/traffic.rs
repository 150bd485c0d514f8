//! The traffic report (CloudWatch's `AWS/ApplicationELB` counts) for a known
//! mix of requests through a real proxy on loopback.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use load_balancer::{
    Action, Condition, FixedResponse, ForwardAction, HealthCheck, Listener, LoadBalancer,
    LoadBalancerAttributes, Protocol, Redirect, RedirectStatus, Rule, Target, TargetGroup,
    TargetGroupAttributes, WeightedTargetGroup,
};
use load_balancer_proxy::{LoadBalancerTraffic, Proxy, ProxyOptions, TargetCounts, TrafficReport};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A backend answering `/status/<code>` with that code, `/hang` after 2 s,
/// anything else 200; every body is `x`.
async fn backend() -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let path = request.uri().path().to_string();
                    if path == "/hang" {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    let status = path
                        .strip_prefix("/status/")
                        .and_then(|code| code.parse().ok())
                        .and_then(|code| StatusCode::from_u16(code).ok())
                        .unwrap_or(StatusCode::OK);
                    let mut response = Response::new(Full::new(Bytes::from_static(b"x")));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Target {
        id: addr.ip(),
        port: addr.port(),
    }
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn group(arn: &str, targets: Vec<Target>) -> TargetGroup {
    TargetGroup {
        target_group_arn: arn.to_string(),
        targets,
        health_check: HealthCheck {
            enabled: false,
            ..HealthCheck::default()
        },
        attributes: TargetGroupAttributes::default(),
    }
}

fn rule(priority: u32, path: &str, action: Action) -> Rule {
    Rule {
        priority,
        conditions: vec![Condition::PathPattern {
            values: vec![path.to_string()],
        }],
        actions: vec![action],
    }
}

fn forward(arn: &str) -> Action {
    Action::Forward(ForwardAction {
        target_groups: vec![WeightedTargetGroup {
            target_group_arn: arn.to_string(),
            weight: 1,
        }],
    })
}

/// One client connection speaking HTTP/1.1 by hand, counting every byte
/// it writes and reads.
struct RawClient {
    stream: TcpStream,
    bytes: u64,
}

impl RawClient {
    async fn connect(port: u16) -> RawClient {
        RawClient {
            stream: TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
            bytes: 0,
        }
    }

    /// GET `path`; the response's status.
    async fn get(&mut self, path: &str) -> u16 {
        let request = format!("GET {path} HTTP/1.1\r\nHost: traffic.test\r\n\r\n");
        self.stream.write_all(request.as_bytes()).await.unwrap();
        self.bytes += request.len() as u64;
        let mut received = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 4096];
            let read = self.stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the proxy closed the connection");
            received.extend_from_slice(&chunk[..read]);
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
        };
        let head = String::from_utf8(received[..head_end].to_vec()).unwrap();
        let status: u16 = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no content-length in {head}"));
        while received.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let read = self.stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the proxy closed the connection");
            received.extend_from_slice(&chunk[..read]);
        }
        assert_eq!(received.len(), head_end + length, "nothing unasked");
        self.bytes += received.len() as u64;
        status
    }
}

/// Takes reports until `done` holds for one (the proxy sees a closed
/// connection a moment after the client closed it).
async fn report_when(proxy: &Proxy, done: impl Fn(&TrafficReport) -> bool) -> TrafficReport {
    for _ in 0..100 {
        let report = proxy.take_traffic_report();
        if done(&report) {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no report as expected: {:?}", proxy.take_traffic_report());
}

/// A report whose ProcessedBytes reached `bytes`: a write is counted just
/// after its system call, so the client may have read a response before
/// its bytes count; they are in a report taken a moment later.
async fn report_with_bytes(proxy: &Proxy, bytes: u64) -> TrafficReport {
    let mut report = proxy.take_traffic_report();
    for _ in 0..100 {
        if report.load_balancer.processed_bytes >= bytes {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let later = proxy.take_traffic_report();
        report.load_balancer.processed_bytes += later.load_balancer.processed_bytes;
        assert_eq!(later.load_balancer.request_count, 0, "{later:?}");
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_a_known_mix_of_requests_exactly() {
    let (first, second, slow) = (backend().await, backend().await, backend().await);
    let refused = Target {
        id: "127.0.0.1".parse().unwrap(),
        port: free_port().await,
    };
    let port = free_port().await;
    let config = LoadBalancer {
        name: "traffic".to_string(),
        listeners: vec![Listener {
            port,
            protocol: Protocol::Http,
            default_actions: vec![forward("tg-web")],
            rules: vec![
                rule(
                    1,
                    "/fixed",
                    Action::FixedResponse(FixedResponse {
                        status_code: 404,
                        content_type: Some("text/plain".to_string()),
                        message_body: Some("none here".to_string()),
                    }),
                ),
                rule(
                    2,
                    "/redirect",
                    Action::Redirect(Redirect {
                        status_code: RedirectStatus::Http301,
                        path: "/elsewhere".to_string(),
                        ..Redirect::default()
                    }),
                ),
                rule(3, "/refused", forward("tg-refused")),
                rule(4, "/empty", forward("tg-empty")),
                rule(5, "/hang", forward("tg-slow")),
            ],
            response_server_enabled: true,
        }],
        target_groups: vec![
            group("tg-web", vec![first, second]),
            group("tg-refused", vec![refused]),
            group("tg-empty", vec![]),
            group("tg-slow", vec![slow]),
        ],
        attributes: LoadBalancerAttributes::default(),
    };
    let (_config, receiver) = watch::channel(Arc::new(config));
    let options = ProxyOptions {
        bind_ip: "127.0.0.1".parse().unwrap(),
        upstream_timeout: Duration::from_millis(300),
        worker_threads: 2,
    };
    let proxy = Proxy::start(receiver, options).await.unwrap();

    // Connections go to the workers in turn: one each.
    let mut web = RawClient::connect(port).await;
    for (path, status) in [
        ("/", 200),
        ("/", 200),
        ("/status/404", 404),
        ("/status/500", 500),
        ("/status/302", 302),
    ] {
        assert_eq!(web.get(path).await, status, "{path}");
    }
    let mut own = RawClient::connect(port).await;
    for (path, status) in [
        ("/fixed", 404),
        ("/redirect", 301),
        ("/refused", 502),
        ("/empty", 503),
        ("/hang", 504),
    ] {
        assert_eq!(own.get(path).await, status, "{path}");
    }

    let report = report_with_bytes(&proxy, web.bytes + own.bytes).await;
    assert_eq!(
        report.load_balancer,
        LoadBalancerTraffic {
            request_count: 10,
            new_client_connection_count: 2,
            // tg-web's two targets and tg-slow's (the refused one never
            // opened).
            new_target_connection_count: 3,
            active_client_connection_count: 2,
            // tg-web's two, back in the pool; tg-slow's was dropped at the
            // 504.
            active_target_connection_count: 2,
            processed_bytes: web.bytes + own.bytes,
            http_code_elb_3xx_count: 1,
            http_code_elb_4xx_count: 1,
            http_code_elb_5xx_count: 3,
            http_code_elb_502_count: 1,
            http_code_elb_503_count: 1,
            http_code_elb_504_count: 1,
            http_fixed_response_count: 1,
            http_redirect_count: 1,
            ..LoadBalancerTraffic::default()
        }
    );
    assert_eq!(report.load_balancer.new_connection_count(), 5);
    assert_eq!(report.load_balancer.active_connection_count(), 4);

    let groups: Vec<&str> = report.target_groups.keys().map(String::as_str).collect();
    assert_eq!(groups, ["tg-empty", "tg-refused", "tg-slow", "tg-web"]);

    // Round robin: one target got /, /status/404 and /status/302, the
    // other / and /status/500.
    let web_group = &report.target_groups["tg-web"];
    let mut per_target: Vec<TargetCounts> = web_group.targets.values().copied().collect();
    per_target.sort_by_key(|counts| counts.request_count);
    assert_eq!(
        per_target,
        [
            TargetCounts {
                request_count: 2,
                http_code_target_2xx_count: 1,
                http_code_target_5xx_count: 1,
                ..TargetCounts::default()
            },
            TargetCounts {
                request_count: 3,
                http_code_target_2xx_count: 1,
                http_code_target_3xx_count: 1,
                http_code_target_4xx_count: 1,
                ..TargetCounts::default()
            },
        ]
    );
    let keys: Vec<Target> = web_group.targets.keys().copied().collect();
    let mut expected_keys = vec![first, second];
    expected_keys.sort();
    assert_eq!(keys, expected_keys);
    assert_eq!(web_group.totals().request_count, 5);
    assert_eq!(web_group.response_times.sample_count(), 5);
    let values = web_group.response_times.values_s();
    assert!(
        values.iter().all(|&(seconds, _)| seconds < 0.3),
        "{values:?}"
    );
    assert_eq!(
        (web_group.healthy_host_count, web_group.unhealthy_host_count),
        (2, 0)
    );

    let refused_group = &report.target_groups["tg-refused"];
    assert_eq!(
        refused_group.targets,
        BTreeMap::from([(
            refused,
            TargetCounts {
                request_count: 1,
                target_connection_error_count: 1,
                ..TargetCounts::default()
            }
        )])
    );
    assert!(refused_group.response_times.is_empty());
    assert_eq!(refused_group.healthy_host_count, 1);

    // No target: the load balancer's 503, nothing for the group.
    let empty_group = &report.target_groups["tg-empty"];
    assert!(empty_group.targets.is_empty());
    assert_eq!(empty_group.healthy_host_count, 0);

    // Chosen, never answered: a request without a status or a time.
    let slow_group = &report.target_groups["tg-slow"];
    assert_eq!(
        slow_group.targets,
        BTreeMap::from([(
            slow,
            TargetCounts {
                request_count: 1,
                ..TargetCounts::default()
            }
        )])
    );
    assert!(slow_group.response_times.is_empty());

    // Counts are deltas, gauges stay.
    let again = proxy.take_traffic_report();
    assert_eq!(
        again.load_balancer,
        LoadBalancerTraffic {
            active_client_connection_count: 2,
            active_target_connection_count: 2,
            ..LoadBalancerTraffic::default()
        }
    );
    assert!(again
        .target_groups
        .values()
        .all(|group| group.targets.is_empty() && group.response_times.is_empty()));
    assert_eq!(again.target_groups["tg-web"].healthy_host_count, 2);

    // Switched off, requests and bytes are not counted.
    proxy.set_traffic_counting(false);
    assert_eq!(web.get("/").await, 200);
    let off = proxy.take_traffic_report();
    assert_eq!(off.load_balancer.request_count, 0);
    assert_eq!(off.load_balancer.processed_bytes, 0);
    assert!(off.target_groups["tg-web"].targets.is_empty());
    proxy.set_traffic_counting(true);
    let bytes_before = web.bytes;
    assert_eq!(web.get("/status/201").await, 201);
    let on = report_with_bytes(&proxy, web.bytes - bytes_before).await;
    assert_eq!(on.load_balancer.request_count, 1);
    assert_eq!(on.load_balancer.processed_bytes, web.bytes - bytes_before);
    assert_eq!(
        on.target_groups["tg-web"]
            .totals()
            .http_code_target_2xx_count,
        1
    );

    // Closed client connections leave the gauge.
    drop(web);
    drop(own);
    let closed = report_when(&proxy, |report| {
        report.load_balancer.active_client_connection_count == 0
    })
    .await;
    assert_eq!(closed.load_balancer.request_count, 0);
    proxy.shutdown().await;
}
