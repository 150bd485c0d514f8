//! `berth bench load-balancer`: Berth's Application Load Balancer proxy
//! against nginx, both in front of the same two loopback backends, loaded
//! by the same `wrk` runs.
//!
//! Both proxies run side by side and take turns (Berth first in odd rounds,
//! nginx first in even ones), so drift on a shared machine hits both alike;
//! each round is a 2 s warm-up and a measured run. nginx is configured to
//! do what a reverse proxy in the load balancer's place does to every
//! request: pass `Host` on, add `X-Forwarded-For`, `X-Forwarded-Proto` and
//! `X-Forwarded-Port`, and keep connections to the backends alive. It adds
//! no trace id: Berth adds `X-Amzn-Trace-Id` to every request as ALB does,
//! while nginx's `$request_id` draws from OpenSSL for each request and
//! would cost it several percent, so leaving it out favours nginx.
//!
//! The backends run in a process of their own (this binary again, with
//! `--serve-backends`), apart from both proxies, so the two are set alike.
//! They used to share Berth's process, which nginx's workers could not:
//! a switch between threads of one process keeps the memory map, and the
//! threads share an allocator.
//!
//! Prints each round's requests/s, p50/p99 latency and the CPU time the
//! proxy's workers spent per request (from `/proc/…/schedstat`), the
//! medians over the rounds and the ratio Berth/nginx of the medians, in
//! how many rounds Berth was ahead (each round's two runs side by side),
//! then one JSON line:
//! `{"bench":"load-balancer","berth_rps":…,"nginx_rps":…,"ratio":…,…}`.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
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
    /// Seconds of load per proxy and round (after a 2 s warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration_seconds: u32,
    /// Rounds; each loads both proxies once and the medians are reported.
    /// On a machine the proxies share with wrk and the backends, one
    /// round's p99 swings by 2x for either proxy; the default fifteen
    /// rounds (about six minutes) keep the medians steady.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Worker threads of Berth's proxy (each with a single-threaded
    /// runtime) and nginx worker processes
    /// [default: the number of cores].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Internal: serve the two backends (printing their addresses on one
    /// line) until standard input closes. The bench runs its backends so,
    /// in a process of their own, apart from both proxies (see above).
    #[arg(long, hide = true)]
    pub serve_backends: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct WrkFigures {
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The proxy's CPU time (all its workers) per request, in microseconds,
    /// where the kernel tells it.
    pub cpu_us_per_request: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Berth,
    Nginx,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Berth => "berth",
            Contender::Nginx => "nginx",
        }
    }
}

/// Which proxy is loaded first in round `round` (counted from 1).
fn order(round: u32) -> [Contender; 2] {
    if round % 2 == 1 {
        [Contender::Berth, Contender::Nginx]
    } else {
        [Contender::Nginx, Contender::Berth]
    }
}

pub fn run(args: &LoadBalancerBenchArgs) -> Result<()> {
    require_tool("nginx", &["-v"])?;
    require_tool("wrk", &["--version"])?;
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });

    if args.serve_backends {
        return serve_backends(workers);
    }
    let backend_process = Backends::start(workers)?;
    let backends = backend_process.addrs;

    println!(
        "berth bench load-balancer: 2 backends {} and {}, {workers} proxy workers, \
         wrk -t{} -c{} -d{}s, {} rounds",
        backends[0],
        backends[1],
        args.threads,
        args.connections,
        args.duration_seconds,
        args.rounds
    );

    // Berth's proxy serves connections on its own `workers` threads; this
    // runtime only runs its supervisor and health checks.
    let proxy_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("berth-proxy")
        .enable_all()
        .build()
        .context("cannot start the proxy's runtime")?;
    let berth_port = free_port()?;
    let (_config, proxy) = proxy_runtime.block_on(start_berth(berth_port, &backends, workers))?;

    let nginx_directory = tempfile::Builder::new()
        .prefix("berth-bench-nginx")
        .tempdir()
        .context("cannot create a directory for nginx")?;
    let nginx_port = free_port()?;
    let nginx = Nginx::start(nginx_directory.path(), nginx_port, &backends, workers)?;

    let mut berth_rounds = Vec::new();
    let mut nginx_rounds = Vec::new();
    let mut outcome = Ok(());
    'rounds: for round in 1..=args.rounds {
        for contender in order(round) {
            let (port, rounds) = match contender {
                Contender::Berth => (berth_port, &mut berth_rounds),
                Contender::Nginx => (nginx_port, &mut nginx_rounds),
            };
            let measured = match contender {
                Contender::Berth => load(args, port, berth_workers_cpu_ns),
                Contender::Nginx => load(args, port, || children_cpu_ns(nginx.child.id())),
            };
            match measured {
                Ok((figures, errors)) => {
                    print_figures(
                        &format!("round {round} {}", contender.name()),
                        &figures,
                        &errors,
                    );
                    rounds.push(figures);
                }
                Err(err) => {
                    outcome = Err(err.context(format!("loading {}", contender.name())));
                    break 'rounds;
                }
            }
        }
    }
    nginx.stop();
    proxy_runtime.block_on(proxy.shutdown());
    outcome?;

    let berth = median_figures(&berth_rounds);
    let nginx = median_figures(&nginx_rounds);
    print_figures("median berth", &berth, "");
    print_figures("median nginx", &nginx, "");
    let ratio = berth.requests_per_s / nginx.requests_per_s;
    println!("ratio Berth/nginx: {ratio:.3} (median requests/s)");
    let ahead = rounds_ahead(&berth_rounds, &nginx_rounds);
    println!(
        "rounds Berth ahead: {} of {} in requests/s, {} of {} in p99 (no higher)",
        ahead.requests_per_s, ahead.rounds, ahead.p99, ahead.rounds
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "load-balancer",
            "workers": workers,
            "wrk_threads": args.threads,
            "connections": args.connections,
            "duration_s": args.duration_seconds,
            "rounds": args.rounds,
            "berth_rps": round2(berth.requests_per_s),
            "nginx_rps": round2(nginx.requests_per_s),
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "berth_p50_ms": round3(berth.p50_ms),
            "berth_p99_ms": round3(berth.p99_ms),
            "nginx_p50_ms": round3(nginx.p50_ms),
            "nginx_p99_ms": round3(nginx.p99_ms),
            "berth_cpu_us_per_request": berth.cpu_us_per_request.map(round3),
            "nginx_cpu_us_per_request": nginx.cpu_us_per_request.map(round3),
            "berth_rps_ahead_rounds": ahead.requests_per_s,
            "berth_p99_ahead_rounds": ahead.p99,
        })
    );
    Ok(())
}

/// In how many rounds Berth served more requests/s than nginx, and had a
/// p99 no higher: a round's two runs are next to each other in time, so
/// this pairing sees past drift that the medians only average out.
#[derive(Debug, PartialEq)]
struct RoundsAhead {
    rounds: usize,
    requests_per_s: usize,
    p99: usize,
}

fn rounds_ahead(berth: &[WrkFigures], nginx: &[WrkFigures]) -> RoundsAhead {
    let pairs = || berth.iter().zip(nginx);
    RoundsAhead {
        rounds: pairs().count(),
        requests_per_s: pairs()
            .filter(|(b, n)| b.requests_per_s > n.requests_per_s)
            .count(),
        p99: pairs().filter(|(b, n)| b.p99_ms <= n.p99_ms).count(),
    }
}

/// Each figure's median over the rounds (the mean of the middle two when
/// there is an even number).
fn median_figures(rounds: &[WrkFigures]) -> WrkFigures {
    WrkFigures {
        requests_per_s: median(rounds.iter().map(|r| r.requests_per_s).collect()),
        p50_ms: median(rounds.iter().map(|r| r.p50_ms).collect()),
        p99_ms: median(rounds.iter().map(|r| r.p99_ms).collect()),
        cpu_us_per_request: rounds
            .iter()
            .map(|r| r.cpu_us_per_request)
            .collect::<Option<Vec<f64>>>()
            .map(median),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn print_figures(name: &str, figures: &WrkFigures, errors: &str) {
    println!(
        "{name:>14}: {:>10.0} requests/s  p50 {:.3} ms  p99 {:.3} ms{}{}",
        figures.requests_per_s,
        figures.p50_ms,
        figures.p99_ms,
        figures
            .cpu_us_per_request
            .map_or_else(String::new, |cpu| format!(
                "  proxy CPU {cpu:.2} µs/request"
            )),
        if errors.is_empty() {
            String::new()
        } else {
            format!("  ({errors})")
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

/// A loopback port nobody listens on now.
pub(crate) fn free_port() -> Result<u16> {
    let listener = StdTcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Both backends, in a child process (`--serve-backends`) that ends when
/// this is dropped: its standard input closes.
struct Backends {
    child: Child,
    addrs: [SocketAddr; 2],
}

impl Backends {
    fn start(workers: usize) -> Result<Backends> {
        let mut child = Command::new(std::env::current_exe().context("cannot find berth")?)
            .args(["bench", "load-balancer", "--serve-backends", "--workers"])
            .arg(workers.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the backends")?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
                .context("cannot read the backends' addresses")?;
        }
        let addrs: Vec<SocketAddr> = line
            .split_whitespace()
            .filter_map(|addr| addr.parse().ok())
            .collect();
        match <[SocketAddr; 2]>::try_from(addrs) {
            Ok(addrs) => Ok(Backends { child, addrs }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the backends did not start (they said {line:?})")
            }
        }
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        wait_or_kill(&mut self.child);
    }
}

/// `--serve-backends`: both backends on a runtime of `workers` threads,
/// their addresses on one line, until standard input closes.
fn serve_backends(workers: usize) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("bench-backend")
        .enable_all()
        .build()
        .context("cannot start the backends' runtime")?;
    let a = runtime.block_on(start_backend())?;
    let b = runtime.block_on(start_backend())?;
    println!("{a} {b}");
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
    Ok(())
}

pub(crate) async fn start_backend() -> Result<SocketAddr> {
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
            response_server_enabled: true,
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
        attributes: Default::default(),
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

/// nginx as a reverse proxy to the backends, in its own directory.
struct Nginx {
    child: Child,
    directory: PathBuf,
    config: PathBuf,
}

impl Nginx {
    fn start(
        directory: &Path,
        port: u16,
        backends: &[SocketAddr; 2],
        workers: usize,
    ) -> Result<Nginx> {
        let config = directory.join("nginx.conf");
        std::fs::write(&config, nginx_config(directory, port, backends, workers))
            .context("cannot write nginx.conf")?;
        let child = Command::new("nginx")
            .arg("-p")
            .arg(directory)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start nginx")?;
        let mut nginx = Nginx {
            child,
            directory: directory.to_path_buf(),
            config,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(nginx);
            }
            if let Some(status) = nginx.child.try_wait()? {
                bail!(
                    "nginx exited with {status}; see {}",
                    directory.join("error.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx.stop();
        bail!("nginx did not listen on port {port} within 5 s")
    }

    /// Asks the master process to stop (it stops its workers first), and
    /// kills it if it has not within 5 s. Killing the master outright would
    /// leave its workers running.
    fn stop(mut self) {
        let _ = Command::new("nginx")
            .arg("-p")
            .arg(&self.directory)
            .arg("-c")
            .arg(&self.config)
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        wait_or_kill(&mut self.child);
    }
}

/// Waits up to 5 s for `child` to exit, then kills it.
fn wait_or_kill(child: &mut Child) {
    for _ in 0..100 {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// nginx doing to each request what a reverse proxy in the load
/// balancer's place does: `Host` passed on, the `X-Forwarded-*` headers
/// added, keep-alive to the backends (no trace id; see the module's note).
fn nginx_config(directory: &Path, port: u16, backends: &[SocketAddr; 2], workers: usize) -> String {
    let dir = directory.display();
    format!(
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
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Port $server_port;
        }}
    }}
}}
"#,
        backend_a = backends[0],
        backend_b = backends[1],
    )
}

/// A 2 s warm-up, then the measured run, with the CPU time the proxy's
/// workers (`cpu_ns` reads their total) spent on it.
fn load(
    args: &LoadBalancerBenchArgs,
    port: u16,
    cpu_ns: impl Fn() -> Option<u64>,
) -> Result<(WrkFigures, String)> {
    let url = format!("http://127.0.0.1:{port}/");
    run_wrk(args.threads, args.connections, 2, &url)?;
    let cpu_before = cpu_ns();
    let output = run_wrk(args.threads, args.connections, args.duration_seconds, &url)?;
    let cpu_after = cpu_ns();
    let (mut figures, errors) = parse_wrk(&output)?;
    figures.cpu_us_per_request = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) if figures.requests_per_s > 0.0 => {
            let requests = figures.requests_per_s * f64::from(args.duration_seconds);
            Some(after.saturating_sub(before) as f64 / 1000.0 / requests)
        }
        _ => None,
    };
    Ok((figures, errors))
}

/// CPU time in nanoseconds a task (a thread, or a single-threaded process)
/// has run: the first field of `/proc/…/schedstat`.
fn schedstat_ns(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path.join("schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time of this process's threads named `berth-lb-…` (the proxy's
/// workers).
pub(crate) fn berth_workers_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?.path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if name.starts_with("berth-lb-") {
            total += schedstat_ns(&task)?;
        }
    }
    Some(total)
}

/// CPU time of the processes whose parent is `parent` (nginx's workers).
fn children_cpu_ns(parent: u32) -> Option<u64> {
    let mut total = 0;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()? {
        let path = entry.ok()?.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so read after
        // its closing parenthesis.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if ppid == Some(parent) {
            total += schedstat_ns(&path)?;
            found = true;
        }
    }
    found.then_some(total)
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

/// The figures, and wrk's lines about errors (empty when there were none).
pub(crate) fn parse_wrk(output: &str) -> Result<(WrkFigures, String)> {
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
        (Some(requests_per_s), Some(p50_ms), Some(p99_ms)) => Ok((
            WrkFigures {
                requests_per_s,
                p50_ms,
                p99_ms,
                cpu_us_per_request: None,
            },
            errors.join("; "),
        )),
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
        let (figures, errors) = parse_wrk(output).unwrap();
        assert_eq!(figures.requests_per_s, 12345.67);
        assert!((figures.p50_ms - 0.635).abs() < 1e-9);
        assert!((figures.p99_ms - 2.1).abs() < 1e-9);
        assert_eq!(errors, "Non-2xx or 3xx responses: 3");
        assert_eq!(parse_duration_ms("1.50s"), Some(1500.0));
        assert!(parse_wrk("nothing").is_err());
    }

    #[test]
    fn rounds_ahead_pairs_each_round() {
        let figures = |requests_per_s, p99_ms| WrkFigures {
            requests_per_s,
            p50_ms: 0.5,
            p99_ms,
            cpu_us_per_request: None,
        };
        let berth = [figures(100.0, 2.0), figures(90.0, 3.0), figures(95.0, 1.0)];
        let nginx = [figures(99.0, 2.0), figures(91.0, 2.5), figures(94.0, 1.5)];
        assert_eq!(
            rounds_ahead(&berth, &nginx),
            RoundsAhead {
                rounds: 3,
                requests_per_s: 2,
                p99: 2,
            }
        );
    }

    #[test]
    fn rounds_alternate_who_goes_first() {
        assert_eq!(order(1), [Contender::Berth, Contender::Nginx]);
        assert_eq!(order(2), [Contender::Nginx, Contender::Berth]);
        assert_eq!(order(3), [Contender::Berth, Contender::Nginx]);
    }

    #[test]
    fn medians_are_taken_figure_by_figure() {
        let figures = |requests_per_s, p50_ms, p99_ms| WrkFigures {
            requests_per_s,
            p50_ms,
            p99_ms,
            cpu_us_per_request: Some(requests_per_s / 10.0),
        };
        let rounds = [
            figures(100.0, 0.5, 3.0),
            figures(90.0, 0.7, 1.0),
            figures(95.0, 0.6, 2.0),
        ];
        assert_eq!(median_figures(&rounds), figures(95.0, 0.6, 2.0));
        assert_eq!(median_figures(&rounds[..2]), figures(95.0, 0.6, 2.0));
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn nginx_adds_the_forwarded_headers_the_load_balancer_adds() {
        let backends = [
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        ];
        let config = nginx_config(Path::new("/tmp/x"), 8080, &backends, 2);
        for header in [
            "Host $http_host",
            "X-Forwarded-For $proxy_add_x_forwarded_for",
            "X-Forwarded-Proto $scheme",
            "X-Forwarded-Port $server_port",
        ] {
            assert!(config.contains(header), "{header} missing from:\n{config}");
        }
        assert!(config.contains("server 127.0.0.1:1;") && config.contains("keepalive 64;"));
        assert!(config.contains("worker_processes 2;"));
    }

    #[test]
    fn cpu_time_is_read_for_threads_and_child_processes() {
        assert!(schedstat_ns(Path::new("/proc/self")).is_some());
        assert_eq!(berth_workers_cpu_ns(), Some(0));
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let cpu = children_cpu_ns(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(cpu.is_some());
    }
}
