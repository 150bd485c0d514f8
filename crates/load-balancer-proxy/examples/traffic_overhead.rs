//! What traffic counting costs: one proxy worker in front of one backend,
//! loaded by keep-alive clients, in alternating rounds with counting on and
//! off (`Proxy::set_traffic_counting`). Prints requests/s and the proxy
//! worker's CPU time per request (from `/proc/self/task/*/schedstat`) per
//! round and their medians.
//!
//! `cargo run --release -p load-balancer-proxy --example traffic_overhead
//! [rounds] [seconds per round] [connections]`

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use load_balancer::{
    Action, ForwardAction, HealthCheck, Listener, LoadBalancer, LoadBalancerAttributes, Protocol,
    Target, TargetGroup, TargetGroupAttributes, WeightedTargetGroup,
};
use load_balancer_proxy::{Proxy, ProxyOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().unwrap());
    let rounds = args.next().unwrap_or(10);
    let seconds = args.next().unwrap_or(2);
    let connections = args.next().unwrap_or(32);

    let backend_port = start_backend();
    let proxy_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let supervisor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let proxy = supervisor.block_on(start_proxy(proxy_port, backend_port));
    let completed = Arc::new(AtomicU64::new(0));
    let running = Arc::new(AtomicBool::new(true));
    start_clients(proxy_port, connections, &completed, &running);
    // Warm up.
    supervisor.block_on(async { tokio::time::sleep(Duration::from_secs(1)).await });

    let mut results: Vec<(bool, f64, f64)> = Vec::new();
    for round in 0..rounds * 2 {
        let counting = round % 2 == 0;
        proxy.set_traffic_counting(counting);
        let (requests, cpu_ns, elapsed) = supervisor.block_on(measure(&completed, seconds));
        let rps = requests as f64 / elapsed.as_secs_f64();
        let cpu_us_per_request = cpu_ns as f64 / 1000.0 / requests.max(1) as f64;
        println!(
            "round {round:2} counting {:3}: {rps:9.0} requests/s, {cpu_us_per_request:6.2} µs proxy CPU per request",
            if counting { "on" } else { "off" }
        );
        results.push((counting, rps, cpu_us_per_request));
    }
    running.store(false, Ordering::Relaxed);
    let _ = proxy.take_traffic_report();
    for counting in [true, false] {
        let mut rps: Vec<f64> = results
            .iter()
            .filter(|r| r.0 == counting)
            .map(|r| r.1)
            .collect();
        let mut cpu: Vec<f64> = results
            .iter()
            .filter(|r| r.0 == counting)
            .map(|r| r.2)
            .collect();
        println!(
            "median counting {:3}: {:9.0} requests/s, {:6.2} µs proxy CPU per request",
            if counting { "on" } else { "off" },
            median(&mut rps),
            median(&mut cpu)
        );
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

/// Requests completed and the proxy worker's CPU time over one round.
#[allow(clippy::disallowed_methods)]
async fn measure(completed: &AtomicU64, seconds: u64) -> (u64, u64, Duration) {
    let started = Instant::now();
    let requests_before = completed.load(Ordering::Relaxed);
    let cpu_before = worker_cpu_ns();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let requests = completed.load(Ordering::Relaxed) - requests_before;
    let cpu = worker_cpu_ns() - cpu_before;
    (requests, cpu, started.elapsed())
}

/// The run time of the proxy's worker thread `berth-lb-0`, in ns.
fn worker_cpu_ns() -> u64 {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() == "berth-lb-0" {
            let schedstat = std::fs::read_to_string(path.join("schedstat")).unwrap();
            return schedstat
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    }
    panic!("no proxy worker thread");
}

fn start_backend() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = service_fn(|_: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                            b"hello from the backend",
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    port
}

async fn start_proxy(port: u16, backend_port: u16) -> Proxy {
    let config = LoadBalancer {
        name: "overhead".to_string(),
        listeners: vec![Listener {
            port,
            protocol: Protocol::Http,
            default_actions: vec![Action::Forward(ForwardAction {
                target_groups: vec![WeightedTargetGroup {
                    target_group_arn: "tg".to_string(),
                    weight: 1,
                }],
            })],
            rules: Vec::new(),
            response_server_enabled: true,
        }],
        target_groups: vec![TargetGroup {
            target_group_arn: "tg".to_string(),
            targets: vec![Target {
                id: "127.0.0.1".parse().unwrap(),
                port: backend_port,
            }],
            health_check: HealthCheck {
                enabled: false,
                ..HealthCheck::default()
            },
            attributes: TargetGroupAttributes::default(),
        }],
        attributes: LoadBalancerAttributes::default(),
    };
    let (sender, receiver) = tokio::sync::watch::channel(Arc::new(config));
    // The sender lives as long as the process.
    std::mem::forget(sender);
    let options = ProxyOptions {
        bind_ip: "127.0.0.1".parse().unwrap(),
        upstream_timeout: Duration::from_secs(60),
        worker_threads: 1,
    };
    Proxy::start(receiver, options).await.unwrap()
}

fn start_clients(
    port: u16,
    connections: u64,
    completed: &Arc<AtomicU64>,
    running: &Arc<AtomicBool>,
) {
    let completed = Arc::clone(completed);
    let running = Arc::clone(running);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut clients = tokio::task::JoinSet::new();
            for _ in 0..connections {
                let completed = Arc::clone(&completed);
                let running = Arc::clone(&running);
                clients.spawn(async move {
                    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                    let _ = stream.set_nodelay(true);
                    let request = b"GET / HTTP/1.1\r\nHost: overhead.test\r\n\r\n";
                    let mut buffer = vec![0u8; 4096];
                    while running.load(Ordering::Relaxed) {
                        stream.write_all(request).await.unwrap();
                        read_response(&mut stream, &mut buffer).await;
                        completed.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            while clients.join_next().await.is_some() {}
        });
    });
}

/// Reads one response with a content-length body.
async fn read_response(stream: &mut TcpStream, buffer: &mut [u8]) {
    let mut filled = 0;
    loop {
        let read = stream.read(&mut buffer[filled..]).await.unwrap();
        assert!(read > 0, "the proxy closed the connection");
        filled += read;
        let received = &buffer[..filled];
        let Some(head_end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&received[..head_end]).unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap();
        if filled >= head_end + 4 + length {
            return;
        }
    }
}
