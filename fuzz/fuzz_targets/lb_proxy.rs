//! The load balancer's HTTP request path with real sockets: one proxy
//! (`load_balancer_proxy::Proxy`, one worker thread) and one backend run on
//! loopback for the whole process, configured with a rule of every condition
//! kind and every action kind. Each input is written as raw bytes to a new
//! TCP connection to the listener, the answer is read (short timeouts), and
//! then a plain `GET /` on a fresh connection must still be answered: the
//! proxy must neither panic nor stop serving.
#![no_main]

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use load_balancer::{
    Action, Cidr, Condition, FixedResponse, ForwardAction, HealthCheck, Listener, LoadBalancer,
    Protocol, QueryStringPair, Redirect, RedirectStatus, Rule, Stickiness, Target, TargetGroup,
    TargetGroupAttributes, WeightedTargetGroup,
};
use load_balancer_proxy::{Proxy, ProxyOptions};

const IO_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long the check after each input waits for its answer (the machine
/// may be busy: this is not a latency test).
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an exchange waits for more bytes before closing its write side.
const SILENCE: Duration = Duration::from_millis(50);

struct Running {
    listener: SocketAddr,
    _proxy: Proxy,
    _config: tokio::sync::watch::Sender<Arc<LoadBalancer>>,
    _runtime: tokio::runtime::Runtime,
}

fn running() -> &'static Running {
    static RUNNING: OnceLock<Running> = OnceLock::new();
    RUNNING.get_or_init(start)
}

fn start() -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (listener, proxy, config) = runtime.block_on(async {
        let backend = backend().await;
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let (config, receiver) =
            tokio::sync::watch::channel(Arc::new(load_balancer(port, backend)));
        let options = ProxyOptions {
            bind_ip: "127.0.0.1".parse().unwrap(),
            upstream_timeout: Duration::from_secs(1),
            worker_threads: 1,
        };
        let proxy = Proxy::start(receiver, options)
            .await
            .expect("the proxy starts");
        (SocketAddr::from(([127, 0, 0, 1], port)), proxy, config)
    });
    Running {
        listener,
        _proxy: proxy,
        _config: config,
        _runtime: runtime,
    }
}

/// A backend that answers every request with its method, path and body size.
async fn backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service =
                    service_fn(|request: http::Request<hyper::body::Incoming>| async move {
                        let head = format!("{} {}", request.method(), request.uri());
                        let size = match request.into_body().collect().await {
                            Ok(body) => body.to_bytes().len(),
                            Err(_) => 0,
                        };
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(format!(
                            "{head} {size}"
                        )))))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| value.to_string()).collect()
}

fn forward(arn: &str) -> Action {
    Action::Forward(ForwardAction {
        target_groups: vec![WeightedTargetGroup {
            target_group_arn: arn.to_string(),
            weight: 1,
        }],
    })
}

fn rule(priority: u32, conditions: Vec<Condition>, action: Action) -> Rule {
    Rule {
        priority,
        conditions,
        actions: vec![action],
    }
}

fn load_balancer(port: u16, backend: SocketAddr) -> LoadBalancer {
    let target = Target {
        id: backend.ip(),
        port: backend.port(),
    };
    let group = |arn: &str, attributes: TargetGroupAttributes| TargetGroup {
        target_group_arn: arn.to_string(),
        targets: vec![target],
        health_check: HealthCheck {
            enabled: true,
            path: "/health".to_string(),
            interval_seconds: 5,
            timeout_seconds: 2,
            healthy_threshold_count: 2,
            unhealthy_threshold_count: 2,
            ..HealthCheck::default()
        },
        attributes,
    };
    let sticky = TargetGroupAttributes {
        stickiness: Stickiness {
            enabled: true,
            ..Stickiness::default()
        },
        ..TargetGroupAttributes::default()
    };
    LoadBalancer {
        name: "fuzz".to_string(),
        listeners: vec![Listener {
            port,
            protocol: Protocol::Http,
            default_actions: vec![forward("tg-plain")],
            rules: vec![
                rule(
                    1,
                    vec![Condition::PathPattern {
                        values: strings(&["/fixed/*", "/a?c"]),
                    }],
                    Action::FixedResponse(FixedResponse {
                        status_code: 418,
                        content_type: Some("application/json".to_string()),
                        message_body: Some("{\"short\":\"stout\"}".to_string()),
                    }),
                ),
                rule(
                    2,
                    vec![Condition::HostHeader {
                        values: strings(&["redirect.*", "*.example.com"]),
                    }],
                    Action::Redirect(Redirect {
                        protocol: "#{protocol}".to_string(),
                        host: "#{host}".to_string(),
                        port: "#{port}".to_string(),
                        path: "/moved/#{path}".to_string(),
                        query: "#{query}&from=lb".to_string(),
                        status_code: RedirectStatus::Http302,
                    }),
                ),
                rule(
                    3,
                    vec![
                        Condition::HttpHeader {
                            http_header_name: "X-Canary".to_string(),
                            values: strings(&["y*s"]),
                        },
                        Condition::HttpRequestMethod {
                            values: strings(&["GET", "POST"]),
                        },
                    ],
                    forward("tg-sticky"),
                ),
                rule(
                    4,
                    vec![Condition::QueryString {
                        values: vec![
                            QueryStringPair {
                                key: Some("version".to_string()),
                                value: "v*".to_string(),
                            },
                            QueryStringPair {
                                key: None,
                                value: "\\*lit".to_string(),
                            },
                        ],
                    }],
                    forward("tg-sticky"),
                ),
                rule(
                    5,
                    vec![Condition::SourceIp {
                        values: vec![Cidr::parse("10.0.0.0/8").unwrap()],
                    }],
                    Action::FixedResponse(FixedResponse {
                        status_code: 503,
                        content_type: None,
                        message_body: None,
                    }),
                ),
            ],
            response_server_enabled: true,
        }],
        target_groups: vec![
            group("tg-plain", TargetGroupAttributes::default()),
            group("tg-sticky", sticky),
        ],
        attributes: Default::default(),
    }
}

/// A last request that asks the proxy to close the connection once it has
/// answered, so an exchange ends as soon as the answers are in.
const CLOSING_REQUEST: &[u8] = b"GET /closing HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";

/// Sends `bytes` then [`CLOSING_REQUEST`] on a new connection and reads the
/// answers until the proxy closes the connection. Bytes that leave a request
/// unfinished (a body still owed) make the proxy wait: after a short silence
/// the write side is closed, and the rest is read with a longer timeout.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("the proxy accepts");
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_read_timeout(Some(SILENCE)).unwrap();
    // The proxy may answer and close before reading everything.
    let _ = stream.write_all(bytes);
    let _ = stream.write_all(CLOSING_REQUEST);
    let mut answer = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let mut write_closed = false;
    while answer.len() < 1 << 20 {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
            Err(error)
                if !write_closed
                    && matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
            {
                write_closed = true;
                let _ = stream.shutdown(std::net::Shutdown::Write);
                stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            }
            Err(_) => break,
        }
    }
    answer
}

/// A plain `GET /` on a new connection, answered within [`LIVENESS_TIMEOUT`].
fn still_serving(addr: SocketAddr) -> Vec<u8> {
    let mut stream =
        TcpStream::connect_timeout(&addr, LIVENESS_TIMEOUT).expect("the proxy accepts");
    stream.set_read_timeout(Some(LIVENESS_TIMEOUT)).unwrap();
    stream.write_all(CLOSING_REQUEST).expect("the proxy reads");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

fuzz_target!(|data: &[u8]| {
    let running = running();
    let _ = exchange(running.listener, data);
    let answer = still_serving(running.listener);
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "the proxy stopped serving: {:?}",
        String::from_utf8_lossy(&answer)
    );
});
