//! `berth bench load-balancer`: Berth's Application Load Balancer proxy
//! against nginx, both in front of the same two loopback backends, loaded
//! by the same `wrk` run.
//!
//! Prints requests/s, the ratio Berth/nginx and p50/p99 latency, then one
//! JSON line:
//! `{"bench":"load-balancer","berth_rps":…,"nginx_rps":…,"ratio":…,…}`.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use load_balancer::{
    Action, ForwardAction, HealthCheck, Listener, LoadBalancer, Protocol, Target, TargetGroup,
    TargetGroupAttributes, WeightedTargetGroup,
};
use load_balancer_proxy::{Proxy, ProxyOptions};

/// What each backend answers (a small fixed payload).
const PAYLOAD: &[u8] = b"Hello from a Berth benchmark backend. This payload is 64 bytes.\n";

#[derive(clap::Args, Debug)]
pub struct LoadBalancerBenchArgs {
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// wrk connections (kept alive).
    #[arg(long, default_value_t = 64)]
    pub connections: u32,
    /// Seconds of load per proxy (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration_seconds: u32,
    /// Worker threads of Berth's proxy (each with a single-threaded
    /// runtime) and nginx worker processes
    /// [default: the number of cores].
    #[arg(long)]
    pub workers: Option<usize>,
}

struct WrkFigures {
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: String,
}

pub fn run(args: &LoadBalancerBenchArgs) -> Result<()> {
    require_tool("nginx", &["-v"])?;
    require_tool("wrk", &["--version"])?;
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });

    // The backends get their own runtime, shared by both proxies' runs.
    let backend_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("bench-backend")
        .enable_all()
        .build()
        .context("cannot start the backends' runtime")?;
    let backends = [
        backend_runtime.block_on(start_backend())?,
        backend_runtime.block_on(start_backend())?,
    ];

    println!(
        "berth bench load-balancer: 2 backends {} and {}, {workers} proxy workers, wrk -t{} -c{} -d{}s",
        backends[0], backends[1], args.threads, args.connections, args.duration_seconds
    );

    let berth = {
        // The proxy serves connections on its own `workers` threads; this
        // runtime only runs its supervisor and health checks.
        let proxy_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("berth-proxy")
            .enable_all()
            .build()
            .context("cannot start the proxy's runtime")?;
        let port = free_port()?;
        let (_config, proxy) = proxy_runtime.block_on(start_berth(port, &backends, workers))?;
        let figures = load(args, port).context("Berth's proxy")?;
        proxy_runtime.block_on(proxy.shutdown());
        figures
    };
    print_figures("berth", &berth);

    let nginx = {
        let port = free_port()?;
        let directory = tempfile::Builder::new()
            .prefix("berth-bench-nginx")
            .tempdir()
            .context("cannot create a directory for nginx")?;
        let mut child = start_nginx(directory.path(), port, &backends, workers)?;
        let figures = load(args, port).context("nginx");
        let _ = child.kill();
        let _ = child.wait();
        figures?
    };
    print_figures("nginx", &nginx);

    let ratio = berth.requests_per_s / nginx.requests_per_s;
    println!("ratio Berth/nginx: {ratio:.3} (requests/s)");
    println!(
        "{}",
        serde_json::json!({
            "bench": "load-balancer",
            "workers": workers,
            "wrk_threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration_seconds,
            "berth_rps": round2(berth.requests_per_s),
            "nginx_rps": round2(nginx.requests_per_s),
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "berth_p50_ms": round3(berth.p50_ms),
            "berth_p99_ms": round3(berth.p99_ms),
            "nginx_p50_ms": round3(nginx.p50_ms),
            "nginx_p99_ms": round3(nginx.p99_ms),
        })
    );
    Ok(())
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn print_figures(name: &str, figures: &WrkFigures) {
    println!(
        "{name:>6}: {:>10.0} requests/s  p50 {:.3} ms  p99 {:.3} ms{}",
        figures.requests_per_s,
        figures.p50_ms,
        figures.p99_ms,
        if figures.errors.is_empty() {
            String::new()
        } else {
            format!("  ({})", figures.errors)
        }
    );
}

fn require_tool(program: &str, version_args: &[&str]) -> Result<()> {
    match Command::new(program)
        .args(version_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(err) => bail!(
            "`{program}` is needed for this benchmark and cannot be run ({err}); \
             install it with `apt-get install -y nginx wrk`"
        ),
    }
}

fn free_port() -> Result<u16> {
    let listener = StdTcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

async fn start_backend() -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a backend")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_request| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(PAYLOAD))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn start_berth(
    port: u16,
    backends: &[SocketAddr; 2],
    workers: usize,
) -> Result<(tokio::sync::watch::Sender<Arc<LoadBalancer>>, Proxy)> {
    let target_group_arn =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/bench/0";
    let load_balancer = LoadBalancer {
        name: "bench".to_string(),
        listeners: vec![Listener {
            port,
            protocol: Protocol::Http,
            default_actions: vec![Action::Forward(ForwardAction {
                target_groups: vec![WeightedTargetGroup {
                    target_group_arn: target_group_arn.to_string(),
                    weight: 1,
                }],
            })],
            rules: vec![],
        }],
        target_groups: vec![TargetGroup {
            target_group_arn: target_group_arn.to_string(),
            targets: backends
                .iter()
                .map(|addr| Target {
                    id: addr.ip(),
                    port: addr.port(),
                })
                .collect(),
            health_check: HealthCheck::default(),
            attributes: TargetGroupAttributes::default(),
        }],
    };
    let (sender, receiver) = tokio::sync::watch::channel(Arc::new(load_balancer));
    let proxy = Proxy::start(
        receiver,
        ProxyOptions {
            bind_ip: "127.0.0.1".parse()?,
            upstream_timeout: Duration::from_secs(60),
            worker_threads: workers,
        },
    )
    .await
    .context("cannot start Berth's proxy")?;
    Ok((sender, proxy))
}

fn start_nginx(
    directory: &Path,
    port: u16,
    backends: &[SocketAddr; 2],
    workers: usize,
) -> Result<Child> {
    let dir = directory.display();
    let config = format!(
        r#"worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream backends {{
        server {backend_a};
        server {backend_b};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#,
        backend_a = backends[0],
        backend_b = backends[1],
    );
    let config_path = directory.join("nginx.conf");
    std::fs::write(&config_path, config).context("cannot write nginx.conf")?;
    let mut child = Command::new("nginx")
        .arg("-p")
        .arg(directory)
        .arg("-c")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start nginx")?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(child);
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "nginx exited with {status}; see {}",
                directory.join("error.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    bail!("nginx did not listen on port {port} within 5 s")
}

/// A 2 s warm-up, then the measured run.
fn load(args: &LoadBalancerBenchArgs, port: u16) -> Result<WrkFigures> {
    let url = format!("http://127.0.0.1:{port}/");
    run_wrk(args.threads, args.connections, 2, &url)?;
    let output = run_wrk(args.threads, args.connections, args.duration_seconds, &url)?;
    parse_wrk(&output)
}

fn run_wrk(threads: u32, connections: u32, duration_seconds: u32, url: &str) -> Result<String> {
    let output = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{duration_seconds}s"))
        .arg("--latency")
        .arg(url)
        .output()
        .context("cannot run wrk")?;
    if !output.status.success() {
        bail!(
            "wrk failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn parse_wrk(output: &str) -> Result<WrkFigures> {
    let mut requests_per_s = None;
    let (mut p50_ms, mut p99_ms) = (None, None);
    let mut errors = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        if let Some(value) = line.strip_prefix("Requests/sec:") {
            requests_per_s = value.trim().parse::<f64>().ok();
        } else if let Some(value) = line.strip_prefix("50%") {
            p50_ms = parse_duration_ms(value.trim());
        } else if let Some(value) = line.strip_prefix("99%") {
            p99_ms = parse_duration_ms(value.trim());
        } else if line.starts_with("Non-2xx") || line.starts_with("Socket errors") {
            errors.push(line.to_string());
        }
    }
    match (requests_per_s, p50_ms, p99_ms) {
        (Some(requests_per_s), Some(p50_ms), Some(p99_ms)) => Ok(WrkFigures {
            requests_per_s,
            p50_ms,
            p99_ms,
            errors: errors.join("; "),
        }),
        _ => bail!("cannot read wrk's output:\n{output}"),
    }
}

/// `635.00us`, `2.10ms`, `1.02s` in milliseconds.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        _ => return None,
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let output = "Running 10s test @ http://127.0.0.1:1/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.34us  300.00us  10.00ms   90.00%
  Latency Distribution
     50%  635.00us
     75%  900.00us
     90%    1.20ms
     99%    2.10ms
  123456 requests in 10.00s, 20.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  12345.67
Transfer/sec:      2.00MB
";
        let figures = parse_wrk(output).unwrap();
        assert_eq!(figures.requests_per_s, 12345.67);
        assert!((figures.p50_ms - 0.635).abs() < 1e-9);
        assert!((figures.p99_ms - 2.1).abs() < 1e-9);
        assert_eq!(figures.errors, "Non-2xx or 3xx responses: 3");
        assert_eq!(parse_duration_ms("1.50s"), Some(1500.0));
        assert!(parse_wrk("nothing").is_err());
    }
}
