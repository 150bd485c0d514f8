//! `berth bench autoscaling`: how fast Application Auto Scaling follows a
//! load step on a service behind the load balancer, on real Docker.
//!
//! The bench starts Berth the way users do: this executable as `berth up`
//! (control plane and an agent joining cluster `default` on the local Docker
//! Engine) on a temporary data directory and a free loopback port, and
//! signs with the credentials it writes there. Everything else goes through
//! the AWS APIs, signed: ELBv2 (query protocol) creates a target group
//! (health check `/health` every 5 s, healthy after 2), an Application Load
//! Balancer and an HTTP listener on a free loopback port; ECS registers a
//! busybox `httpd` task definition (container port 8080, dynamic host port)
//! and creates a service of one task behind the target group; Application
//! Auto Scaling registers the service's desired count as a scalable target
//! (MinCapacity 1) and attaches a target-tracking policy on
//! ALBRequestCountPerTarget.
//!
//! An in-process load generator sends GET / to the listener at a fixed rate
//! (open loop, over a few keep-alive HTTP/1.1 connections; loopback only,
//! at most a bounded number of requests). The baseline is half a target's
//! worth of requests (the right count is 1); step `n` raises it to
//! `n + 0.5` targets' worth, so target tracking's
//! `ceil(requests per minute / TargetValue)` is `n + 1` and no rate sits on
//! a boundary. For each step the bench times (DescribeServices,
//! DescribeTargetHealth every 100 ms) the step → the new desiredCount and
//! the step → runningCount and the healthy targets at the new count, then
//! holds the rate for `--settle-seconds`, counting further desired-count
//! changes (overshoot). Then `--steady-seconds` at the last rate, counting
//! desired-count changes (aim: none). Then the load drops back to the
//! baseline and the bench times the desiredCount (and runningCount) back at
//! MinCapacity. It does not stop the load altogether: with no requests the
//! load balancer publishes no RequestCount datapoints and target tracking,
//! as on AWS, does not scale in on missing data.
//!
//! At the end `berth up` is stopped (SIGTERM, then SIGKILL) and the
//! containers its agent started (label
//! `com.amazonaws.ecs.task-definition-family` = [`FAMILY`]) are removed,
//! also when a step failed; they are removed at the start too, should a
//! previous run have left some.
//!
//! Prints a human summary, then one JSON line:
//! `{"bench":"autoscaling","step_to_desired_median_s":…,"step_to_healthy_max_s":…,"steady_changes":…,"scale_in_s":…,…}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use aws_protocol::sigv4::{self, SigningParams};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use hyper::client::conn::http1;
use runtime_docker::test_support::{ensure_test_image, TEST_IMAGE};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bench_load_balancer::free_port;
use crate::bench_support::{
    blocking, connect, excerpt, percentile, remove_containers, round3, send, send_kept_alive,
    Client, JsonTarget, Target,
};
use crate::clock;

/// `berth up`'s agent joins this cluster.
const CLUSTER: &str = "default";
const FAMILY: &str = "berth-bench-autoscaling";
const SERVICE: &str = "bench-autoscaling";
const TARGET_GROUP: &str = "bench-autoscaling";
const LOAD_BALANCER: &str = "bench-autoscaling";
const POLICY: &str = "bench-autoscaling-requests";
const CONTAINER_NAME: &str = "web";
const CONTAINER_PORT: u16 = 8080;
const CONTAINER_MEMORY_MIB: u64 = 32;
const CONTAINER_STOP_TIMEOUT_S: u32 = 2;
const CONTAINER_SCRIPT: &str = "mkdir -p /www && echo ok > /www/index.html && \
     echo ok > /www/health && exec httpd -f -p 8080 -h /www";
const HEALTH_CHECK_PATH: &str = "/health";
const HEALTH_CHECK_INTERVAL_S: u32 = 5;
const HEALTH_CHECK_TIMEOUT_S: u32 = 2;
const HEALTHY_THRESHOLD: u32 = 2;
const UNHEALTHY_THRESHOLD: u32 = 2;
const MIN_CAPACITY: u32 = 1;
/// The label the agent puts the task definition's family in.
const FAMILY_LABEL: &str = "com.amazonaws.ecs.task-definition-family";

const ELBV2_VERSION: &str = "2015-12-01";
const ELBV2_SIGNING_NAME: &str = "elasticloadbalancing";
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
const AUTOSCALING: JsonTarget = JsonTarget {
    target_prefix: application_autoscaling::ApplicationAutoScaling::TARGET_PREFIX,
    signing_name: application_autoscaling::ApplicationAutoScaling::SIGNING_NAME,
};
const CLOUDWATCH: JsonTarget = JsonTarget {
    target_prefix: cloudwatch::CloudWatch::TARGET_PREFIX,
    signing_name: cloudwatch::CloudWatch::SIGNING_NAME,
};

/// How often the service and the target group are read.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const AGENT_TIMEOUT: Duration = Duration::from_secs(60);
const FIRST_TASK_TIMEOUT: Duration = Duration::from_secs(180);
const ALARM_DATA_TIMEOUT: Duration = Duration::from_secs(120);
const SCALE_OUT_TIMEOUT: Duration = Duration::from_secs(120);
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(180);
/// Scale-in is conservative and waits ScaleInCooldown between changes.
const SCALE_IN_TIMEOUT: Duration = Duration::from_secs(900);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// A load request not answered within this long counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A request sent this long after its turn counts as late.
const LATE_THRESHOLD: Duration = Duration::from_millis(100);
/// The generator never owes more than this much of its schedule.
const MAX_BACKLOG: Duration = Duration::from_secs(1);
/// The load stays small: it shares the machine with what it measures.
const MAX_RATE_RPS: f64 = 2_000.0;
/// Kinds of failure told apart in the summary.
const FAILURES_KEPT: usize = 10;
/// Characters of a failure quoted.
const FAILURE_CHARS: usize = 100;
/// Lines of `berth up`'s log quoted when the bench fails.
const LOG_TAIL_LINES: usize = 30;

#[derive(clap::Args)]
pub struct AutoscalingBenchArgs {
    /// Load steps, each adding one target's worth of requests: the right
    /// count goes 1 → 2 → … → steps + 1.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    steps: u32,
    /// The scalable target's MaxCapacity (at least steps + 1).
    #[arg(long, default_value_t = 8)]
    max_tasks: u32,
    /// The policy's TargetValue: ALBRequestCountPerTarget, requests per
    /// target per minute (600: 10 requests/s per target).
    #[arg(long, default_value_t = 600.0)]
    requests_per_target_per_minute: f64,
    /// Seconds of steady load at the last step's rate, counting
    /// desired-count changes.
    #[arg(long, default_value_t = 600)]
    steady_seconds: u64,
    /// Seconds each step's rate is held once its tasks are healthy, counting
    /// further desired-count changes, before the next step.
    #[arg(long, default_value_t = 20)]
    settle_seconds: u64,
    /// The policy's ScaleOutCooldown (AWS's default is 300): long enough
    /// for a new task to turn healthy, so the requests the old targets carry
    /// meanwhile do not add a task more.
    #[arg(long, default_value_t = 15)]
    scale_out_cooldown_seconds: u32,
    /// The policy's ScaleInCooldown (AWS's default is 300).
    #[arg(long, default_value_t = 60)]
    scale_in_cooldown_seconds: u32,
    /// Keep-alive connections the load generator spreads its rate over.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    connections: u32,
    /// The region `berth up` is started with and requests are signed for.
    #[arg(long, default_value = crate::DEFAULT_REGION)]
    region: String,
}

/// The request rates of the run (pure arithmetic of the arguments).
#[derive(Clone, Debug, PartialEq)]
struct LoadPlan {
    /// `rates_rps[0]`: the baseline (count 1); `rates_rps[n]`: step `n`.
    rates_rps: Vec<f64>,
    /// The most requests the generator may send in the whole run.
    request_budget: u64,
}

impl LoadPlan {
    fn of(args: &AutoscalingBenchArgs) -> Result<LoadPlan> {
        let target_value = args.requests_per_target_per_minute;
        if !target_value.is_finite() || target_value <= 0.0 {
            bail!("--requests-per-target-per-minute must be a positive number");
        }
        if args.max_tasks < args.steps + 1 {
            bail!(
                "--max-tasks {} cannot hold {} steps (the count goes up to {}); raise --max-tasks or lower --steps",
                args.max_tasks,
                args.steps,
                args.steps + 1
            );
        }
        let rates_rps: Vec<f64> = (1..=args.steps + 1)
            .map(|count| rate_for_count_rps(target_value, count))
            .collect();
        let top_rps = rates_rps.last().copied().unwrap_or_default();
        if top_rps > MAX_RATE_RPS {
            bail!(
                "the last step would send {top_rps:.0} requests/s, more than this bench's {MAX_RATE_RPS:.0}; lower --requests-per-target-per-minute or --steps"
            );
        }
        let longest_run = ALARM_DATA_TIMEOUT
            + (HEALTHY_TIMEOUT + Duration::from_secs(args.settle_seconds)) * (args.steps + 1)
            + Duration::from_secs(args.steady_seconds)
            + SCALE_IN_TIMEOUT * 2;
        let request_budget = (top_rps * longest_run.as_secs_f64()).ceil() as u64;
        Ok(LoadPlan {
            rates_rps,
            request_budget,
        })
    }
}

/// The rate at which target tracking's `ceil(requests per minute /
/// target_value)` is `count`, half a target's worth from either boundary.
fn rate_for_count_rps(target_value_per_minute: f64, count: u32) -> f64 {
    (f64::from(count) - 0.5) * target_value_per_minute / 60.0
}

/// The count target tracking aims at for `rate_rps`.
fn count_for_rate(target_value_per_minute: f64, rate_rps: f64) -> u32 {
    (rate_rps * 60.0 / target_value_per_minute).ceil() as u32
}

pub async fn run(args: AutoscalingBenchArgs) -> Result<()> {
    let plan = LoadPlan::of(&args)?;
    let docker_info =
        blocking(|| crate::bench_support::docker(&["info", "--format", "{{.ServerVersion}}"]))
            .await?;
    if !docker_info.status.success() {
        bail!(
            "Docker is not running ({}); start it and run the bench again",
            crate::bench_support::stderr_excerpt(&docker_info)
        );
    }
    blocking(|| {
        ensure_test_image()
            .map_err(|message| anyhow::anyhow!("cannot provide the image {TEST_IMAGE}: {message}"))
    })
    .await?;
    remove_bench_containers()
        .await
        .context("removing containers a previous run left")?;

    let mut up = BerthUp::start(&args.region)?;
    let measured = measure(&mut up, &args, &plan).await;
    let log_tail = measured.is_err().then(|| up.log_tail(LOG_TAIL_LINES));
    tokio::task::block_in_place(|| up.stop());
    let removed = remove_bench_containers().await;
    if let Err(err) = &removed {
        println!("note: removing the bench's containers: {err:#}");
    }
    drop(up);
    match measured {
        Ok(figures) => {
            figures.print();
            println!("{}", figures.json_line());
            Ok(())
        }
        Err(err) => match log_tail {
            Some(tail) if !tail.is_empty() => {
                Err(err.context(format!("berth up's log ends with:\n{tail}")))
            }
            _ => Err(err),
        },
    }
}

async fn remove_bench_containers() -> Result<()> {
    blocking(|| remove_containers(&format!("label={FAMILY_LABEL}={FAMILY}"))).await
}

// ---------------------------------------------------------------------------
// `berth up` in a child process

/// `berth up` on a temporary data directory, its output in a log file there.
struct BerthUp {
    child: Child,
    data_dir: PathBuf,
    log_path: PathBuf,
    // Removed after the child has exited (`Drop` stops it first).
    _root: tempfile::TempDir,
}

impl BerthUp {
    fn start(region: &str) -> Result<BerthUp> {
        let root = tempfile::Builder::new()
            .prefix("berth-bench-autoscaling-")
            .tempdir()
            .context("cannot create a data directory for berth up")?;
        let data_dir = root.path().join("data");
        let log_path = root.path().join("berth-up.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = Command::new(std::env::current_exe().context("cannot find berth")?)
            .args(["up", "--listen", "127.0.0.1:0", "--region", region])
            .arg("--data-dir")
            .arg(&data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start `berth up`")?;
        Ok(BerthUp {
            child,
            data_dir,
            log_path,
            _root: root,
        })
    }

    /// Waits until `berth up` serves (it writes `<data-dir>/endpoint` once
    /// bound); the target signs with the key it wrote.
    async fn wait_ready(&mut self, region: &str) -> Result<Target> {
        let started = clock::monotonic_now();
        let addr = loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("`berth up` exited before serving ({status})");
            }
            let endpoint = crate::credentials::read_endpoint(&self.data_dir);
            if let Some(addr) = endpoint.as_deref().and_then(endpoint_addr) {
                break addr;
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "`berth up` did not serve within {} s",
                    READY_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let credentials = crate::credentials::read_credentials(&self.data_dir)?;
        Ok(Target {
            connect_addr: addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            access_key_id: credentials.access_key_id,
            secret_access_key: credentials.secret_access_key,
            region: region.to_string(),
        })
    }

    fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("`berth up` exited ({status})"),
            None => Ok(()),
        }
    }

    /// The last `lines` lines of its output.
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`] (blocking).
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if terminated {
            let started = clock::monotonic_now();
            while started.elapsed() < STOP_TIMEOUT {
                if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            println!(
                "note: berth up did not stop within {} s of SIGTERM; killing it",
                STOP_TIMEOUT.as_secs()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BerthUp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `http://<addr>` → addr.
fn endpoint_addr(endpoint_url: &str) -> Option<SocketAddr> {
    endpoint_url.strip_prefix("http://")?.trim().parse().ok()
}

// ---------------------------------------------------------------------------
// ELBv2's query protocol

/// One keep-alive connection for ELBv2 query-protocol calls.
struct Elbv2Client {
    target: Arc<Target>,
    connection: Option<http1::SendRequest<Full<Bytes>>>,
}

impl Elbv2Client {
    fn new(target: Arc<Target>) -> Elbv2Client {
        Elbv2Client {
            target,
            connection: None,
        }
    }

    /// `action` with `params`; the XML answer, an error unless 2xx.
    async fn call(&mut self, action: &str, params: &[(&str, &str)]) -> Result<String> {
        let mut pairs = vec![("Action", action), ("Version", ELBV2_VERSION)];
        pairs.extend_from_slice(params);
        let body = form_encode(&pairs).into_bytes();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, self.target.host.clone());
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(FORM_CONTENT_TYPE),
        );
        sigv4::sign_headers(
            "POST",
            "/",
            "",
            &mut headers,
            &body,
            &SigningParams {
                access_key_id: &self.target.access_key_id,
                secret_access_key: &self.target.secret_access_key,
                session_token: None,
                region: &self.target.region,
                service: ELBV2_SIGNING_NAME,
                now_epoch_s: clock::now_ms().div_euclid(1000),
            },
        )?;
        let mut request = Request::post("/").body(Full::new(Bytes::from(body)))?;
        *request.headers_mut() = headers;
        let (status, answer) =
            send_kept_alive(&mut self.connection, self.target.connect_addr, request).await?;
        if !status.is_success() {
            bail!("{action}: HTTP {status}: {}", excerpt(&answer));
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// Targets of `target_group_arn` whose state is `healthy`.
    async fn healthy_targets(&mut self, target_group_arn: &str) -> Result<usize> {
        let answer = self
            .call(
                "DescribeTargetHealth",
                &[("TargetGroupArn", target_group_arn)],
            )
            .await?;
        Ok(healthy_count(&answer))
    }
}

/// `application/x-www-form-urlencoded` with RFC 3986 percent-encoding, as
/// the AWS SDKs send query-protocol requests.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        percent_encode_into(&mut out, name);
        out.push('=');
        percent_encode_into(&mut out, value);
    }
    out
}

fn percent_encode_into(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// The text of every `<tag>…</tag>` leaf element of `xml`, entities
/// replaced.
fn xml_texts(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut texts = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        texts.push(xml_unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    texts
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The first `<tag>` of an ELBv2 answer to `action`.
fn xml_first(xml: &str, tag: &str, action: &str) -> Result<String> {
    xml_texts(xml, tag).into_iter().next().with_context(|| {
        format!(
            "{action} answered without {tag}: {}",
            excerpt(xml.as_bytes())
        )
    })
}

/// Healthy targets in a DescribeTargetHealth answer (TargetHealth's
/// `State`; AdministrativeOverride's `State` never reads `healthy`).
fn healthy_count(describe_target_health: &str) -> usize {
    xml_texts(describe_target_health, "State")
        .iter()
        .filter(|state| *state == "healthy")
        .count()
}

/// ALBRequestCountPerTarget's ResourceLabel,
/// `app/<lb name>/<lb id>/targetgroup/<tg name>/<tg id>`, from the ARNs.
fn resource_label(load_balancer_arn: &str, target_group_arn: &str) -> Result<String> {
    let load_balancer = load_balancer_arn
        .split_once(":loadbalancer/")
        .map(|(_, rest)| rest)
        .filter(|rest| rest.starts_with("app/"))
        .with_context(|| {
            format!("{load_balancer_arn} is not an Application Load Balancer's ARN")
        })?;
    let target_group = target_group_arn
        .split_once(":targetgroup/")
        .map(|(_, rest)| rest)
        .with_context(|| format!("{target_group_arn} is not a target group's ARN"))?;
    Ok(format!("{load_balancer}/targetgroup/{target_group}"))
}

// ---------------------------------------------------------------------------
// The load generator

#[derive(Default)]
struct LoadCounters {
    sent: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    late: AtomicU64,
    /// Failures by phase and what failed (at most [`FAILURES_KEPT`]
    /// kinds; later kinds are counted together per phase).
    failures: Mutex<BTreeMap<String, u64>>,
    phase: Mutex<String>,
}

impl LoadCounters {
    fn totals(&self) -> LoadTotals {
        LoadTotals {
            sent: self.sent.load(Ordering::Relaxed),
            answered: self.answered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            late: self.late.load(Ordering::Relaxed),
            failures: self
                .failures
                .lock()
                .map(|f| f.iter().map(|(what, n)| (what.clone(), *n)).collect())
                .unwrap_or_default(),
        }
    }

    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let phase = self.phase.lock().map(|p| p.clone()).unwrap_or_default();
        if let Ok(mut failures) = self.failures.lock() {
            let mut kind = format!("{phase}: {}", compact(&what));
            if failures.len() >= FAILURES_KEPT && !failures.contains_key(&kind) {
                kind = format!("{phase}: other failures");
            }
            *failures.entry(kind).or_default() += 1;
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
struct LoadTotals {
    sent: u64,
    answered: u64,
    failed: u64,
    late: u64,
    /// (phase: what failed, how many times).
    failures: Vec<(String, u64)>,
}

/// `text` on one line, whitespace collapsed, at most [`FAILURE_CHARS`]
/// characters.
fn compact(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(FAILURE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Open-loop GET / at a fixed rate, spread over keep-alive connections.
struct LoadGenerator {
    rate_rps: watch::Sender<f64>,
    counters: Arc<LoadCounters>,
    workers: Vec<JoinHandle<()>>,
}

impl LoadGenerator {
    /// Starts idle (rate 0); sends at most `budget` requests in all.
    fn start(listener: SocketAddr, connections: u32, budget: u64) -> Result<LoadGenerator> {
        let host = HeaderValue::from_str(&listener.to_string())?;
        let (rate_rps, receiver) = watch::channel(0.0);
        let counters = Arc::new(LoadCounters::default());
        let workers = (0..connections)
            .map(|index| {
                tokio::spawn(load_worker(
                    Worker {
                        index,
                        connections,
                        listener,
                        host: host.clone(),
                        budget,
                    },
                    receiver.clone(),
                    Arc::clone(&counters),
                ))
            })
            .collect();
        Ok(LoadGenerator {
            rate_rps,
            counters,
            workers,
        })
    }

    fn set(&self, phase: &str, rate_rps: f64) {
        if let Ok(mut current) = self.counters.phase.lock() {
            *current = phase.to_string();
        }
        self.rate_rps.send_replace(rate_rps);
    }

    /// Stops sending, waits for the requests in flight; the totals.
    async fn stop(self) -> LoadTotals {
        let LoadGenerator {
            rate_rps,
            counters,
            workers,
        } = self;
        // The workers end when the rate's sender is gone.
        drop(rate_rps);
        for worker in workers {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, worker).await;
        }
        counters.totals()
    }
}

struct Worker {
    index: u32,
    connections: u32,
    listener: SocketAddr,
    host: HeaderValue,
    budget: u64,
}

/// One connection's share of the rate: a request every `connections / rate`
/// seconds, offset by its index, whatever the answers take (catching up at
/// most [`MAX_BACKLOG`]); a new schedule whenever the rate changes.
async fn load_worker(
    worker: Worker,
    mut rate_rps: watch::Receiver<f64>,
    counters: Arc<LoadCounters>,
) {
    let mut connection: Option<http1::SendRequest<Full<Bytes>>> = None;
    loop {
        let rate = *rate_rps.borrow_and_update();
        if rate <= 0.0 {
            if rate_rps.changed().await.is_err() {
                return;
            }
            continue;
        }
        let interval = Duration::from_secs_f64(f64::from(worker.connections) / rate);
        let mut due = clock::monotonic_now()
            + interval.mul_f64(f64::from(worker.index) / f64::from(worker.connections));
        loop {
            tokio::select! {
                changed = rate_rps.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                () = tokio::time::sleep_until(tokio::time::Instant::from_std(due)) => {}
            }
            if counters.sent.fetch_add(1, Ordering::Relaxed) >= worker.budget {
                counters.fail(format!(
                    "the bench's budget of {} requests is spent; no more are sent",
                    worker.budget
                ));
                return;
            }
            let now = clock::monotonic_now();
            if now.saturating_duration_since(due) > LATE_THRESHOLD {
                counters.late.fetch_add(1, Ordering::Relaxed);
            }
            get_once(&mut connection, &worker, &counters).await;
            due += interval;
            let now = clock::monotonic_now();
            if now > due + MAX_BACKLOG {
                due = now;
            }
        }
    }
}

async fn get_once(
    connection: &mut Option<http1::SendRequest<Full<Bytes>>>,
    worker: &Worker,
    counters: &LoadCounters,
) {
    if connection.as_ref().is_some_and(|sender| sender.is_closed()) {
        *connection = None;
    }
    let sender = match connection {
        Some(sender) => sender,
        None => match connect(worker.listener).await {
            Ok(sender) => connection.insert(sender),
            Err(err) => {
                counters.fail(format!("{err:#}"));
                return;
            }
        },
    };
    let request = match Request::get("/")
        .header(http::header::HOST, worker.host.clone())
        .body(Full::new(Bytes::new()))
    {
        Ok(request) => request,
        Err(err) => {
            counters.fail(err.to_string());
            return;
        }
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, send(sender, request)).await {
        Ok(Ok((status, _))) if status == StatusCode::OK => {
            counters.answered.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Ok((status, body))) => {
            counters.fail(format!("HTTP {status}: {}", excerpt(&body)));
        }
        Ok(Err(err)) => {
            *connection = None;
            counters.fail(format!("{err:#}"));
        }
        Err(_) => {
            *connection = None;
            counters.fail(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()));
        }
    }
}

// ---------------------------------------------------------------------------
// The measurement

/// What the bench reads of the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ServiceCounts {
    desired: u32,
    running: u32,
}

impl ServiceCounts {
    fn parse(describe_services: &Value) -> Option<ServiceCounts> {
        let service = &describe_services["services"][0];
        Some(ServiceCounts {
            desired: u32::try_from(service["desiredCount"].as_u64()?).ok()?,
            running: u32::try_from(service["runningCount"].as_u64()?).ok()?,
        })
    }
}

async fn service_counts(ecs: &mut Client) -> Result<ServiceCounts> {
    let answer = ecs
        .call_ok(
            "DescribeServices",
            &json!({ "cluster": CLUSTER, "services": [SERVICE] }),
        )
        .await?;
    ServiceCounts::parse(&answer)
        .with_context(|| format!("DescribeServices did not describe {SERVICE}: {answer}"))
}

/// One of the policy's alarms as DescribeAlarms shows it.
#[derive(Clone, Debug, PartialEq)]
struct AlarmSettings {
    name: String,
    /// The metric-math alarm's MetricStat period, or the alarm's Period.
    period_s: Option<u64>,
    evaluation_periods: Option<u64>,
    datapoints_to_alarm: Option<u64>,
    threshold: Option<f64>,
    comparison_operator: String,
    state: String,
}

impl AlarmSettings {
    fn parse_all(describe_alarms: &Value) -> Vec<AlarmSettings> {
        let Some(alarms) = describe_alarms["MetricAlarms"].as_array() else {
            return Vec::new();
        };
        alarms
            .iter()
            .map(|alarm| {
                let stat_period = alarm["Metrics"].as_array().and_then(|queries| {
                    queries
                        .iter()
                        .filter_map(|query| query["MetricStat"]["Period"].as_u64())
                        .max()
                });
                AlarmSettings {
                    name: alarm["AlarmName"].as_str().unwrap_or_default().to_string(),
                    period_s: alarm["Period"].as_u64().or(stat_period),
                    evaluation_periods: alarm["EvaluationPeriods"].as_u64(),
                    datapoints_to_alarm: alarm["DatapointsToAlarm"].as_u64(),
                    threshold: alarm["Threshold"].as_f64(),
                    comparison_operator: alarm["ComparisonOperator"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    state: alarm["StateValue"].as_str().unwrap_or_default().to_string(),
                }
            })
            .collect()
    }

    /// `AlarmHigh` / `AlarmLow` (from AWS's naming), else the name.
    fn role(&self) -> &str {
        ["AlarmHigh", "AlarmLow"]
            .into_iter()
            .find(|role| self.name.contains(&format!("-{role}-")))
            .unwrap_or(&self.name)
    }

    fn describe(&self) -> String {
        let show = |value: Option<u64>| value.map_or_else(|| "?".to_string(), |v| v.to_string());
        format!(
            "{}: Period {} s, EvaluationPeriods {}, DatapointsToAlarm {}, {} {}",
            self.name,
            show(self.period_s),
            show(self.evaluation_periods),
            show(self.datapoints_to_alarm),
            self.comparison_operator,
            self.threshold
                .map_or_else(|| "?".to_string(), |t| format!("{t}")),
        )
    }
}

/// A desired-count change seen while watching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Change {
    after_ms: u64,
    from: u32,
    to: u32,
}

fn render_changes(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| {
            format!(
                "{} → {} at {:.1} s",
                c.from,
                c.to,
                c.after_ms as f64 / 1000.0
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Debug, PartialEq)]
struct StepFigures {
    step: u32,
    rate_rps: f64,
    count: u32,
    to_desired_ms: u64,
    to_healthy_ms: u64,
    /// Desired-count changes while the rate was held after the step.
    settle_changes: Vec<Change>,
}

#[derive(Clone, Debug, PartialEq)]
struct Figures {
    target_value: f64,
    scale_out_cooldown_s: u32,
    scale_in_cooldown_s: u32,
    max_tasks: u32,
    settle_s: u64,
    first_task_healthy_ms: u64,
    alarms: Vec<AlarmSettings>,
    steps: Vec<StepFigures>,
    steady_s: u64,
    steady_rate_rps: f64,
    steady_changes: Vec<Change>,
    scale_in_rate_rps: f64,
    scale_in_from: u32,
    scale_in_ms: u64,
    scale_in_running_ms: u64,
    scale_in_changes: Vec<Change>,
    load: LoadTotals,
}

/// Median (nearest rank) and worst of `values_ms`.
fn median_and_worst_ms(values_ms: &[u64]) -> (u64, u64) {
    let mut sorted = values_ms.to_vec();
    sorted.sort_unstable();
    (
        percentile(&sorted, 0.5),
        sorted.last().copied().unwrap_or_default(),
    )
}

fn seconds(ms: u64) -> f64 {
    round3(ms as f64 / 1000.0)
}

impl Figures {
    fn to_desired(&self) -> (u64, u64) {
        median_and_worst_ms(
            &self
                .steps
                .iter()
                .map(|s| s.to_desired_ms)
                .collect::<Vec<_>>(),
        )
    }

    fn to_healthy(&self) -> (u64, u64) {
        median_and_worst_ms(
            &self
                .steps
                .iter()
                .map(|s| s.to_healthy_ms)
                .collect::<Vec<_>>(),
        )
    }

    fn settle_changes(&self) -> usize {
        self.steps.iter().map(|s| s.settle_changes.len()).sum()
    }

    fn alarm(&self, role: &str) -> Option<&AlarmSettings> {
        self.alarms.iter().find(|alarm| alarm.role() == role)
    }

    fn print(&self) {
        let (desired_median, desired_worst) = self.to_desired();
        let (healthy_median, healthy_worst) = self.to_healthy();
        for step in &self.steps {
            println!(
                "step {}: {:.1} requests/s ({} tasks): desiredCount in {:.2} s, RUNNING and healthy in {:.2} s{}",
                step.step,
                step.rate_rps,
                step.count,
                seconds(step.to_desired_ms),
                seconds(step.to_healthy_ms),
                if step.settle_changes.is_empty() {
                    String::new()
                } else {
                    format!("; then {}", render_changes(&step.settle_changes))
                }
            );
        }
        println!(
            "step → desiredCount: median {:.2} s, worst {:.2} s over {} steps",
            seconds(desired_median),
            seconds(desired_worst),
            self.steps.len()
        );
        println!(
            "step → RUNNING and healthy in the target group: median {:.2} s, worst {:.2} s (aim: ≤ 15 s)",
            seconds(healthy_median),
            seconds(healthy_worst)
        );
        println!(
            "desired-count changes while each step settled ({} s): {}",
            self.settle_s,
            self.settle_changes()
        );
        println!(
            "steady load ({} s at {:.1} requests/s): {} desired-count changes (aim: none){}",
            self.steady_s,
            self.steady_rate_rps,
            self.steady_changes.len(),
            if self.steady_changes.is_empty() {
                String::new()
            } else {
                format!(": {}", render_changes(&self.steady_changes))
            }
        );
        println!(
            "scale-in (load back to {:.1} requests/s): desiredCount {} → {MIN_CAPACITY} in {:.1} s ({}), runningCount at {MIN_CAPACITY} in {:.1} s",
            self.scale_in_rate_rps,
            self.scale_in_from,
            seconds(self.scale_in_ms),
            render_changes(&self.scale_in_changes),
            seconds(self.scale_in_running_ms)
        );
        println!(
            "load generator: {} requests, {} answered 200, {} failed (aim: none), {} sent late (> {} ms)",
            self.load.sent,
            self.load.answered,
            self.load.failed,
            self.load.late,
            LATE_THRESHOLD.as_millis()
        );
        for (failure, times) in &self.load.failures {
            println!("  failed {times}×: {failure}");
        }
    }

    fn json_line(&self) -> Value {
        let (desired_median, desired_worst) = self.to_desired();
        let (healthy_median, healthy_worst) = self.to_healthy();
        let alarm = |role: &str| {
            self.alarm(role).map(|a| {
                json!({
                    "period_s": a.period_s,
                    "evaluation_periods": a.evaluation_periods,
                    "datapoints_to_alarm": a.datapoints_to_alarm,
                    "threshold": a.threshold,
                })
            })
        };
        json!({
            "bench": "autoscaling",
            "steps": self.steps.len(),
            "target_value": self.target_value,
            "scale_out_cooldown_s": self.scale_out_cooldown_s,
            "scale_in_cooldown_s": self.scale_in_cooldown_s,
            "min_tasks": MIN_CAPACITY,
            "max_tasks": self.max_tasks,
            "health_check_interval_s": HEALTH_CHECK_INTERVAL_S,
            "healthy_threshold": HEALTHY_THRESHOLD,
            "alarm_high": alarm("AlarmHigh"),
            "alarm_low": alarm("AlarmLow"),
            "first_task_healthy_s": seconds(self.first_task_healthy_ms),
            "step_to_desired_median_s": seconds(desired_median),
            "step_to_desired_max_s": seconds(desired_worst),
            "step_to_healthy_median_s": seconds(healthy_median),
            "step_to_healthy_max_s": seconds(healthy_worst),
            "settle_s": self.settle_s,
            "settle_changes": self.settle_changes(),
            "steady_s": self.steady_s,
            "steady_rps": round3(self.steady_rate_rps),
            "steady_changes": self.steady_changes.len(),
            "scale_in_from": self.scale_in_from,
            "scale_in_s": seconds(self.scale_in_ms),
            "scale_in_running_s": seconds(self.scale_in_running_ms),
            "scale_in_changes": self.scale_in_changes.len(),
            "load_requests": self.load.sent,
            "load_errors": self.load.failed,
            "load_late": self.load.late,
            "load_failures": self.load.failures.iter().map(|(what, n)| json!({"failure": what, "count": n})).collect::<Vec<_>>(),
        })
    }
}

/// The resources the bench created, as the steps need them.
struct Setup {
    target_group_arn: String,
    listener_port: u16,
    alarms: Vec<AlarmSettings>,
    first_task_healthy_ms: u64,
}

async fn measure(
    up: &mut BerthUp,
    args: &AutoscalingBenchArgs,
    plan: &LoadPlan,
) -> Result<Figures> {
    let target = Arc::new(up.wait_ready(&args.region).await?);
    let endpoint = crate::node::endpoint_url(target.connect_addr);
    let mut ecs = Client::new(Arc::clone(&target));
    let mut elbv2 = Elbv2Client::new(Arc::clone(&target));
    wait_for_agent(&mut ecs, up).await?;
    let setup = set_up(&mut ecs, &mut elbv2, up, args).await?;
    println!(
        "berth bench autoscaling: berth up on {endpoint} (image {TEST_IMAGE}); listener 127.0.0.1:{} → target group {TARGET_GROUP} (health check {HEALTH_CHECK_PATH} every {HEALTH_CHECK_INTERVAL_S} s, healthy after {HEALTHY_THRESHOLD}); first task RUNNING and healthy in {:.1} s",
        setup.listener_port,
        seconds(setup.first_task_healthy_ms)
    );
    println!(
        "policy: TargetTrackingScaling ALBRequestCountPerTarget, TargetValue {} requests per target per minute ({:.1} requests/s per target), ScaleOutCooldown {} s, ScaleInCooldown {} s, MinCapacity {MIN_CAPACITY}, MaxCapacity {}",
        args.requests_per_target_per_minute,
        args.requests_per_target_per_minute / 60.0,
        args.scale_out_cooldown_seconds,
        args.scale_in_cooldown_seconds,
        args.max_tasks
    );
    for alarm in &setup.alarms {
        println!("alarm {}", alarm.describe());
    }

    let listener = SocketAddr::from(([127, 0, 0, 1], setup.listener_port));
    let generator = LoadGenerator::start(listener, args.connections, plan.request_budget)?;
    let run = Run {
        ecs: &mut ecs,
        elbv2: &mut elbv2,
        up,
        generator: &generator,
        target_group_arn: &setup.target_group_arn,
        alarm_names: setup.alarms.iter().map(|alarm| json!(alarm.name)).collect(),
        target_value: args.requests_per_target_per_minute,
    };
    let measured = run_load(run, args, plan).await;
    let load = generator.stop().await;
    let (steps, steady_changes, scale_in) = measured?;
    Ok(Figures {
        target_value: args.requests_per_target_per_minute,
        scale_out_cooldown_s: args.scale_out_cooldown_seconds,
        scale_in_cooldown_s: args.scale_in_cooldown_seconds,
        max_tasks: args.max_tasks,
        settle_s: args.settle_seconds,
        first_task_healthy_ms: setup.first_task_healthy_ms,
        alarms: setup.alarms,
        steps,
        steady_s: args.steady_seconds,
        steady_rate_rps: plan.rates_rps.last().copied().unwrap_or_default(),
        steady_changes,
        scale_in_rate_rps: plan.rates_rps[0],
        scale_in_from: scale_in.from,
        scale_in_ms: scale_in.to_min_ms,
        scale_in_running_ms: scale_in.running_at_min_ms,
        scale_in_changes: scale_in.changes,
        load,
    })
}

/// Waits until `berth up`'s agent is registered and connected.
async fn wait_for_agent(ecs: &mut Client, up: &mut BerthUp) -> Result<()> {
    let started = clock::monotonic_now();
    loop {
        up.check_running()?;
        let listed = ecs
            .call_ok("ListContainerInstances", &json!({ "cluster": CLUSTER }))
            .await?;
        if let Some(arn) = listed["containerInstanceArns"][0].as_str() {
            let described = ecs
                .call_ok(
                    "DescribeContainerInstances",
                    &json!({ "cluster": CLUSTER, "containerInstances": [arn] }),
                )
                .await?;
            if described["containerInstances"][0]["agentConnected"] == json!(true) {
                return Ok(());
            }
        }
        if started.elapsed() > AGENT_TIMEOUT {
            bail!(
                "berth up's agent did not register in cluster {CLUSTER} within {} s",
                AGENT_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn task_definition() -> Value {
    json!({
        "family": FAMILY,
        "containerDefinitions": [{
            "name": CONTAINER_NAME,
            "image": TEST_IMAGE,
            "memory": CONTAINER_MEMORY_MIB,
            "command": ["sh", "-c", CONTAINER_SCRIPT],
            "portMappings": [{"containerPort": CONTAINER_PORT, "hostPort": 0}],
            "stopTimeout": CONTAINER_STOP_TIMEOUT_S,
        }],
    })
}

/// The target group, load balancer, listener, service (running and healthy
/// at one task), scalable target and policy; the policy's alarms.
async fn set_up(
    ecs: &mut Client,
    elbv2: &mut Elbv2Client,
    up: &mut BerthUp,
    args: &AutoscalingBenchArgs,
) -> Result<Setup> {
    let (interval, timeout, healthy, unhealthy) = (
        HEALTH_CHECK_INTERVAL_S.to_string(),
        HEALTH_CHECK_TIMEOUT_S.to_string(),
        HEALTHY_THRESHOLD.to_string(),
        UNHEALTHY_THRESHOLD.to_string(),
    );
    let created = elbv2
        .call(
            "CreateTargetGroup",
            &[
                ("Name", TARGET_GROUP),
                ("Protocol", "HTTP"),
                // A placeholder: each task registers with its host port.
                ("Port", "80"),
                ("VpcId", "vpc-berth"),
                ("TargetType", "instance"),
                ("HealthCheckPath", HEALTH_CHECK_PATH),
                ("HealthCheckIntervalSeconds", &interval),
                ("HealthCheckTimeoutSeconds", &timeout),
                ("HealthyThresholdCount", &healthy),
                ("UnhealthyThresholdCount", &unhealthy),
            ],
        )
        .await?;
    let target_group_arn = xml_first(&created, "TargetGroupArn", "CreateTargetGroup")?;
    let created = elbv2
        .call(
            "CreateLoadBalancer",
            &[("Name", LOAD_BALANCER), ("Type", "application")],
        )
        .await?;
    let load_balancer_arn = xml_first(&created, "LoadBalancerArn", "CreateLoadBalancer")?;
    let listener_port = free_port()?;
    elbv2
        .call(
            "CreateListener",
            &[
                ("LoadBalancerArn", &load_balancer_arn),
                ("Protocol", "HTTP"),
                ("Port", &listener_port.to_string()),
                ("DefaultActions.member.1.Type", "forward"),
                ("DefaultActions.member.1.TargetGroupArn", &target_group_arn),
            ],
        )
        .await?;

    let registered = ecs
        .call_ok("RegisterTaskDefinition", &task_definition())
        .await?;
    let task_definition_arn = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .context("RegisterTaskDefinition answered without a taskDefinitionArn")?
        .to_string();
    let started = clock::monotonic_now();
    ecs.call_ok(
        "CreateService",
        &json!({
            "cluster": CLUSTER,
            "serviceName": SERVICE,
            "taskDefinition": task_definition_arn,
            "desiredCount": MIN_CAPACITY,
            "loadBalancers": [{
                "targetGroupArn": target_group_arn,
                "containerName": CONTAINER_NAME,
                "containerPort": CONTAINER_PORT,
            }],
        }),
    )
    .await?;
    loop {
        up.check_running()?;
        let counts = service_counts(ecs).await?;
        if counts.running >= MIN_CAPACITY
            && elbv2.healthy_targets(&target_group_arn).await? >= MIN_CAPACITY as usize
        {
            break;
        }
        if started.elapsed() > FIRST_TASK_TIMEOUT {
            bail!(
                "the service's first task was not RUNNING and healthy within {} s of CreateService (runningCount {})",
                FIRST_TASK_TIMEOUT.as_secs(),
                counts.running
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let first_task_healthy_ms = elapsed_ms(started);

    let resource_id = format!("service/{CLUSTER}/{SERVICE}");
    let scalable = json!({
        "ServiceNamespace": "ecs",
        "ResourceId": resource_id,
        "ScalableDimension": "ecs:service:DesiredCount",
    });
    let mut register = scalable.clone();
    register["MinCapacity"] = json!(MIN_CAPACITY);
    register["MaxCapacity"] = json!(args.max_tasks);
    ecs.call_ok_to(AUTOSCALING, "RegisterScalableTarget", &register)
        .await?;
    let mut policy = scalable.clone();
    policy["PolicyName"] = json!(POLICY);
    policy["PolicyType"] = json!("TargetTrackingScaling");
    policy["TargetTrackingScalingPolicyConfiguration"] = json!({
        "TargetValue": args.requests_per_target_per_minute,
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "ALBRequestCountPerTarget",
            "ResourceLabel": resource_label(&load_balancer_arn, &target_group_arn)?,
        },
        "ScaleOutCooldown": args.scale_out_cooldown_seconds,
        "ScaleInCooldown": args.scale_in_cooldown_seconds,
        "DisableScaleIn": false,
    });
    ecs.call_ok_to(AUTOSCALING, "PutScalingPolicy", &policy)
        .await?;
    let mut describe = scalable;
    describe["PolicyNames"] = json!([POLICY]);
    let described = ecs
        .call_ok_to(AUTOSCALING, "DescribeScalingPolicies", &describe)
        .await?;
    let alarm_names: Vec<Value> = described["ScalingPolicies"][0]["Alarms"]
        .as_array()
        .map(|alarms| alarms.iter().map(|a| a["AlarmName"].clone()).collect())
        .unwrap_or_default();
    if alarm_names.is_empty() {
        bail!("DescribeScalingPolicies shows no alarms for {POLICY}: {described}");
    }
    let alarms = describe_alarms(ecs, &alarm_names).await?;
    Ok(Setup {
        target_group_arn,
        listener_port,
        alarms,
        first_task_healthy_ms,
    })
}

async fn describe_alarms(ecs: &mut Client, alarm_names: &[Value]) -> Result<Vec<AlarmSettings>> {
    let answer = ecs
        .call_ok_to(
            CLOUDWATCH,
            "DescribeAlarms",
            &json!({ "AlarmNames": alarm_names }),
        )
        .await?;
    Ok(AlarmSettings::parse_all(&answer))
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What the load phases share.
struct Run<'a> {
    ecs: &'a mut Client,
    elbv2: &'a mut Elbv2Client,
    up: &'a mut BerthUp,
    generator: &'a LoadGenerator,
    target_group_arn: &'a str,
    /// The policy's alarms (names as DescribeAlarms takes them).
    alarm_names: Vec<Value>,
    target_value: f64,
}

struct ScaleIn {
    from: u32,
    to_min_ms: u64,
    running_at_min_ms: u64,
    changes: Vec<Change>,
}

async fn run_load(
    mut run: Run<'_>,
    args: &AutoscalingBenchArgs,
    plan: &LoadPlan,
) -> Result<(Vec<StepFigures>, Vec<Change>, ScaleIn)> {
    // The baseline: the alarms must have data before the first step.
    run.generator.set("baseline", plan.rates_rps[0]);
    wait_for_alarm_data(&mut run).await?;

    let mut steps = Vec::new();
    for (step, &rate_rps) in (1..).zip(&plan.rates_rps[1..]) {
        let figures = measure_step(&mut run, step, rate_rps, args.settle_seconds).await?;
        println!(
            "  step {step}: {rate_rps:.1} requests/s → {} tasks: desired {:.2} s, healthy {:.2} s",
            figures.count,
            seconds(figures.to_desired_ms),
            seconds(figures.to_healthy_ms)
        );
        steps.push(figures);
    }

    let steady_rate_rps = plan.rates_rps.last().copied().unwrap_or_default();
    run.generator.set("steady", steady_rate_rps);
    let steady_changes = watch_desired(&mut run, Duration::from_secs(args.steady_seconds)).await?;

    run.generator.set("scale-in", plan.rates_rps[0]);
    let scale_in = measure_scale_in(&mut run).await?;
    Ok((steps, steady_changes, scale_in))
}

async fn wait_for_alarm_data(run: &mut Run<'_>) -> Result<()> {
    let started = clock::monotonic_now();
    loop {
        run.up.check_running()?;
        let alarms = describe_alarms(run.ecs, &run.alarm_names).await?;
        if alarms
            .iter()
            .filter(|alarm| alarm.role() == "AlarmHigh")
            .any(|alarm| alarm.state == "OK")
        {
            return Ok(());
        }
        if started.elapsed() > ALARM_DATA_TIMEOUT {
            let states: Vec<String> = alarms
                .iter()
                .map(|a| format!("{} {}", a.role(), a.state))
                .collect();
            bail!(
                "the policy's AlarmHigh was not OK within {} s of the baseline load (alarm states: {}); are RequestCountPerTarget datapoints published?",
                ALARM_DATA_TIMEOUT.as_secs(),
                states.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn measure_step(
    run: &mut Run<'_>,
    step: u32,
    rate_rps: f64,
    settle_seconds: u64,
) -> Result<StepFigures> {
    let count = count_for_rate(run.target_value, rate_rps);
    run.generator.set(&format!("step {step}"), rate_rps);
    let started = clock::monotonic_now();
    let mut to_desired_ms = None;
    let to_healthy_ms = loop {
        run.up.check_running()?;
        let counts = service_counts(run.ecs).await?;
        if to_desired_ms.is_none() && counts.desired >= count {
            to_desired_ms = Some(elapsed_ms(started));
        }
        let mut healthy = None;
        if to_desired_ms.is_some() && counts.running >= count {
            let targets = run.elbv2.healthy_targets(run.target_group_arn).await?;
            if targets >= count as usize {
                break elapsed_ms(started);
            }
            healthy = Some(targets);
        }
        if to_desired_ms.is_none() && started.elapsed() > SCALE_OUT_TIMEOUT {
            bail!(
                "no scale-out to {count} tasks within {} s of step {step} ({rate_rps:.1} requests/s); desiredCount stayed {}",
                SCALE_OUT_TIMEOUT.as_secs(),
                counts.desired
            );
        }
        if started.elapsed() > HEALTHY_TIMEOUT {
            bail!(
                "the {count} tasks of step {step} were not RUNNING and healthy within {} s (runningCount {}, healthy targets {})",
                HEALTHY_TIMEOUT.as_secs(),
                counts.running,
                healthy.map_or_else(|| "not read".to_string(), |h| h.to_string())
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let settle_changes = watch_desired(run, Duration::from_secs(settle_seconds)).await?;
    Ok(StepFigures {
        step,
        rate_rps,
        count,
        to_desired_ms: to_desired_ms.unwrap_or(to_healthy_ms),
        to_healthy_ms,
        settle_changes,
    })
}

/// The desired-count changes during `duration`.
async fn watch_desired(run: &mut Run<'_>, duration: Duration) -> Result<Vec<Change>> {
    let started = clock::monotonic_now();
    let mut desired = service_counts(run.ecs).await?.desired;
    let mut changes = Vec::new();
    while started.elapsed() < duration {
        tokio::time::sleep(POLL_INTERVAL).await;
        run.up.check_running()?;
        let now = service_counts(run.ecs).await?.desired;
        if now != desired {
            changes.push(Change {
                after_ms: elapsed_ms(started),
                from: desired,
                to: now,
            });
            desired = now;
        }
    }
    Ok(changes)
}

async fn measure_scale_in(run: &mut Run<'_>) -> Result<ScaleIn> {
    let started = clock::monotonic_now();
    let from = service_counts(run.ecs).await?.desired;
    let mut desired = from;
    let mut changes = Vec::new();
    let mut to_min_ms = None;
    loop {
        run.up.check_running()?;
        let counts = service_counts(run.ecs).await?;
        if counts.desired != desired {
            changes.push(Change {
                after_ms: elapsed_ms(started),
                from: desired,
                to: counts.desired,
            });
            desired = counts.desired;
        }
        if to_min_ms.is_none() && counts.desired <= MIN_CAPACITY {
            to_min_ms = Some(elapsed_ms(started));
        }
        if let Some(to_min_ms) = to_min_ms {
            if counts.running <= MIN_CAPACITY {
                return Ok(ScaleIn {
                    from,
                    to_min_ms,
                    running_at_min_ms: elapsed_ms(started),
                    changes,
                });
            }
        }
        if started.elapsed() > SCALE_IN_TIMEOUT {
            bail!(
                "no scale-in to {MIN_CAPACITY} task within {} s of the load dropping (desiredCount {}, runningCount {}; changes: {})",
                SCALE_IN_TIMEOUT.as_secs(),
                counts.desired,
                counts.running,
                render_changes(&changes)
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: AutoscalingBenchArgs,
    }

    fn args(extra: &[&str]) -> AutoscalingBenchArgs {
        let mut argv = vec!["bench"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn each_step_adds_one_targets_worth_half_way_between_boundaries() {
        let plan = LoadPlan::of(&args(&[])).unwrap();
        assert_eq!(plan.rates_rps, vec![5.0, 15.0, 25.0, 35.0, 45.0, 55.0]);
        let counts: Vec<u32> = plan
            .rates_rps
            .iter()
            .map(|&rate| count_for_rate(600.0, rate))
            .collect();
        assert_eq!(counts, vec![1, 2, 3, 4, 5, 6]);
        let check = |target_value: f64, count: u32| {
            assert_eq!(
                count_for_rate(target_value, rate_for_count_rps(target_value, count)),
                count,
                "{target_value} {count}"
            );
        };
        for count in 1..=20 {
            check(600.0, count);
            check(90.0, count);
            check(1000.0, count);
        }
        assert!(plan.request_budget > 55 * 600);
    }

    #[test]
    fn plans_refuse_what_they_cannot_run() {
        let refused = |extra: &[&str]| LoadPlan::of(&args(extra)).unwrap_err().to_string();
        assert!(refused(&["--max-tasks", "5"]).contains("cannot hold 5 steps"));
        assert!(refused(&["--requests-per-target-per-minute", "0"]).contains("positive"));
        assert!(refused(&["--requests-per-target-per-minute", "100000"]).contains("requests/s"));
        assert!(Cli::try_parse_from(["bench", "--steps", "0"]).is_err());
        assert!(LoadPlan::of(&args(&["--steps", "7"])).is_ok());
    }

    #[test]
    fn resource_labels_join_the_load_balancer_and_target_group() {
        assert_eq!(
            resource_label(
                "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/lb/50dc6c495c0c9188",
                "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/943f017f100becff",
            )
            .unwrap(),
            "app/lb/50dc6c495c0c9188/targetgroup/tg/943f017f100becff"
        );
        assert!(resource_label(
            "arn:aws:elasticloadbalancing:us-east-1:0:loadbalancer/net/lb/1",
            "arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/tg/2"
        )
        .is_err());
        assert!(resource_label(
            "arn:aws:elasticloadbalancing:us-east-1:0:loadbalancer/app/lb/1",
            "tg"
        )
        .is_err());
    }

    #[test]
    fn forms_are_percent_encoded_as_the_sdks_do() {
        assert_eq!(
            form_encode(&[
                ("Action", "CreateListener"),
                ("DefaultActions.member.1.TargetGroupArn", "arn:aws:x/y z~"),
            ]),
            "Action=CreateListener&DefaultActions.member.1.TargetGroupArn=arn%3Aaws%3Ax%2Fy%20z~"
        );
    }

    #[test]
    fn target_health_and_arns_are_read_from_the_xml() {
        let xml = "<DescribeTargetHealthResponse><DescribeTargetHealthResult><TargetHealthDescriptions>\
            <member><Target><Id>i-1</Id><Port>32768</Port></Target><TargetHealth><State>healthy</State></TargetHealth></member>\
            <member><Target><Id>i-1</Id><Port>32769</Port></Target><TargetHealth><State>initial</State><Reason>Elb.RegistrationInProgress</Reason></TargetHealth></member>\
            <member><Target><Id>i-1</Id><Port>32770</Port></Target><TargetHealth><State>healthy</State></TargetHealth>\
            <AdministrativeOverride><State>no_override</State></AdministrativeOverride></member>\
            </TargetHealthDescriptions></DescribeTargetHealthResult></DescribeTargetHealthResponse>";
        assert_eq!(healthy_count(xml), 2);
        assert_eq!(xml_texts(xml, "Port"), vec!["32768", "32769", "32770"]);
        assert_eq!(
            xml_first(
                "<a><TargetGroupArn>arn:x&amp;y</TargetGroupArn></a>",
                "TargetGroupArn",
                "X"
            )
            .unwrap(),
            "arn:x&y"
        );
        assert!(xml_first("<a/>", "TargetGroupArn", "CreateTargetGroup")
            .unwrap_err()
            .to_string()
            .contains("CreateTargetGroup answered without TargetGroupArn"));
    }

    #[test]
    fn alarm_settings_come_from_describe_alarms() {
        let answer = json!({"MetricAlarms": [
            {
                "AlarmName": "TargetTracking-service/default/s-AlarmHigh-1f2e",
                "EvaluationPeriods": 3, "DatapointsToAlarm": 3, "Threshold": 600.0,
                "ComparisonOperator": "GreaterThanThreshold", "StateValue": "OK",
                "Metrics": [
                    {"Id": "m1", "MetricStat": {"Period": 10, "Stat": "Sum"}, "ReturnData": false},
                    {"Id": "e1", "Expression": "m1*6", "ReturnData": true}
                ]
            },
            {
                "AlarmName": "TargetTracking-service/default/s-AlarmLow-9a8b",
                "Period": 20, "EvaluationPeriods": 15, "Threshold": 540.0,
                "ComparisonOperator": "LessThanThreshold", "StateValue": "INSUFFICIENT_DATA"
            }
        ]});
        let alarms = AlarmSettings::parse_all(&answer);
        assert_eq!(alarms.len(), 2);
        assert_eq!(alarms[0].role(), "AlarmHigh");
        assert_eq!(alarms[0].period_s, Some(10));
        assert_eq!(alarms[0].datapoints_to_alarm, Some(3));
        assert_eq!(alarms[0].state, "OK");
        assert_eq!(alarms[1].role(), "AlarmLow");
        assert_eq!(alarms[1].period_s, Some(20));
        assert_eq!(alarms[1].datapoints_to_alarm, None);
        assert_eq!(
            alarms[1].describe(),
            "TargetTracking-service/default/s-AlarmLow-9a8b: Period 20 s, EvaluationPeriods 15, DatapointsToAlarm ?, LessThanThreshold 540"
        );
        assert!(AlarmSettings::parse_all(&json!({})).is_empty());
    }

    #[test]
    fn services_endpoints_and_figures() {
        assert_eq!(
            ServiceCounts::parse(&json!({"services": [{"desiredCount": 3, "runningCount": 2}]})),
            Some(ServiceCounts {
                desired: 3,
                running: 2
            })
        );
        assert_eq!(ServiceCounts::parse(&json!({"services": []})), None);
        assert_eq!(
            endpoint_addr("http://127.0.0.1:4566"),
            Some(SocketAddr::from(([127, 0, 0, 1], 4566)))
        );
        assert_eq!(endpoint_addr("127.0.0.1:4566"), None);
        assert_eq!(median_and_worst_ms(&[900, 100, 500, 300, 700]), (500, 900));
        assert_eq!(median_and_worst_ms(&[]), (0, 0));
        assert_eq!(
            compact("HTTP 502: <html>\n<head>  </head>"),
            "HTTP 502: <html> <head> </head>"
        );
        assert_eq!(compact(&"é".repeat(150)), format!("{}…", "é".repeat(100)));
        assert_eq!(
            render_changes(&[Change {
                after_ms: 1500,
                from: 6,
                to: 3
            }]),
            "6 → 3 at 1.5 s"
        );
    }

    #[tokio::test]
    async fn the_load_generator_keeps_its_rate_and_counts_failures() {
        let backend = crate::bench_load_balancer::start_backend().await.unwrap();
        let generator = LoadGenerator::start(backend, 2, 1_000).unwrap();
        generator.set("test", 100.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
        generator.set("idle", 0.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sent = generator.counters.totals().sent;
        assert!(
            (30..=70).contains(&sent),
            "{sent} requests in 0.5 s at 100/s"
        );
        let totals = generator.stop().await;
        assert_eq!(totals.failed, 0, "{:?}", totals.failures);
        assert_eq!(totals.answered, totals.sent);

        // Nobody listens: every request fails, within the budget.
        let closed = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
        let generator = LoadGenerator::start(closed, 1, 5).unwrap();
        generator.set("closed", 200.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let totals = generator.stop().await;
        assert_eq!(totals.answered, 0);
        assert_eq!(totals.failed, 6, "5 refused and the spent budget");
        assert_eq!(totals.failures.len(), 2, "{:?}", totals.failures);
        assert!(
            totals
                .failures
                .iter()
                .any(|(what, n)| what.starts_with("closed: cannot connect") && *n == 5),
            "{:?}",
            totals.failures
        );
    }
}
