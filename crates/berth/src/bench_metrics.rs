//! `berth bench metrics`: the CloudWatch figures, through the real HTTP API
//! of a real `berth server` (a child process of this binary on a temporary
//! data directory, with its alarm evaluator running), with SigV4-signed
//! requests from this process.
//!
//! 1. PutMetricData throughput: `--clients` keep-alive clients send the same
//!    pre-encoded requests (their signatures are fresh) until `--put-seconds`
//!    have passed, in two shapes (1,000 datums of one value; 20 datums of
//!    150 `Values`) and two protocols (JSON 1.0, and Smithy RPC v2 CBOR, which
//!    boto3 sends). A datapoint is one value. Every acknowledgement came after
//!    the metric store's COMMIT (WAL, `synchronous=FULL`).
//! 2. GetMetricData: 100 metrics × a week of one value a minute are loaded
//!    (timed too), then 100 `MetricStat` queries over the week are timed at
//!    Period 3600 and 300, in both protocols: median of `--read-runs` runs,
//!    each run every page (Period 300 is 201,600 datapoints, two pages of
//!    CloudWatch's default 100,800).
//! 3. Alarm evaluation lag: per round, a fresh alarm (Period 10, one
//!    evaluation period, `Maximum > 50`) on a high-resolution metric
//!    (StorageResolution 1) gets one breaching value early in a 10 s period;
//!    DescribeAlarms is polled every 20 ms from then on, and the lag is from
//!    the end of that period to the answer that shows ALARM, and to the
//!    history item's timestamp. Rounds take consecutive periods, so the
//!    phase lasts about 10 s a round.
//! 4. The load balancer proxy with traffic counting (CloudWatch's
//!    `AWS/ApplicationELB` counts) on and off: the proxy in this process in
//!    front of two loopback backends, loaded by `wrk` as in
//!    `berth bench load-balancer`, in alternating rounds (on first in odd
//!    rounds, off first in even ones). The server is stopped by then.
//!
//! Prints the machine, each figure with its aim, then one JSON line
//! `{"bench":"metrics",…}`. The default run takes about three minutes on
//! two cores; `--quick` about 30 s (a day of data instead of a week, two
//! alarm rounds, one proxy round).

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use aws_protocol::sigv4::{self, SigningParams};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use hyper::client::conn::http1;
use serde_json::{json, Value};

use crate::bench_load_balancer::{berth_workers_cpu_ns, parse_wrk, start_backend};
use crate::bench_support::{self, micros, percentile, Target};
use crate::clock;

/// PutMetricData's largest request: 1,000 datums.
const DATUMS_PER_REQUEST: usize = 1000;
/// The other shape: 20 datums of 150 values (CloudWatch's maximum per datum).
const VALUES_DATUMS: usize = 20;
const VALUES_PER_DATUM: usize = 150;
/// Each put client writes its own 1,000 metrics.
const METRICS_PER_CLIENT: usize = 1000;
/// Requests each put client rotates through (the values differ).
const BODY_VARIANTS: usize = 4;
const PUT_NAMESPACE: &str = "Berth/BenchPut";
/// The GetMetricData figure: this many metrics, one value a minute each.
const READ_METRICS: usize = 100;
const READ_NAMESPACE: &str = "Berth/BenchRead";
const READ_PERIODS_S: [u32; 2] = [3600, 300];
const ALARM_NAMESPACE: &str = "Berth/BenchAlarm";
const ALARM_PERIOD_MS: i64 = 10_000;
/// A round's value goes into a period only while at least this much of it is
/// left, so it is acknowledged well before the period ends.
const ALARM_SEND_MARGIN_MS: i64 = 4_000;
/// Sent this long after a period starts when a round waits for one.
const ALARM_SEND_OFFSET_MS: i64 = 100;
const ALARM_POLL: Duration = Duration::from_millis(20);
/// A round fails when ALARM has not shown this long after the period end.
const ALARM_TIMEOUT_MS: i64 = 30_000;

/// The aims the issue sets.
const AIM_PUT_DATAPOINTS_PER_S: f64 = 100_000.0;
const AIM_GET_MS: f64 = 50.0;
const AIM_ALARM_LAG_MS: f64 = 1_000.0;
const AIM_PROXY_RATIO: f64 = 0.98;

#[derive(clap::Args, Debug)]
pub struct MetricsBenchArgs {
    /// A run of about 30 s: 1 s per put run, a day of data instead of a
    /// week, 2 alarm rounds, one proxy round of 2 s per mode. Options given
    /// explicitly still apply.
    #[arg(long)]
    quick: bool,
    /// Concurrent PutMetricData clients (and loaders of the read data).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds each PutMetricData run lasts (4 runs) [default: 4; quick: 1].
    #[arg(long)]
    put_seconds: Option<u32>,
    /// Days of one value a minute each of the 100 read metrics holds
    /// (at most 13: PutMetricData takes two weeks back) [default: 7; quick: 1].
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=13))]
    read_days: Option<i64>,
    /// Timed GetMetricData runs per period and protocol (the median is
    /// reported).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    read_runs: u32,
    /// Alarm evaluation rounds, about 10 s each [default: 10; quick: 2].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    alarm_rounds: Option<u32>,
    /// Proxy rounds, each one run with counting on and one with it off
    /// [default: 3; quick: 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    proxy_rounds: Option<u32>,
    /// Seconds of each measured proxy run (after a 1 s warm-up)
    /// [default: 4; quick: 2].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    proxy_seconds: Option<u32>,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    wrk_threads: u32,
    /// wrk connections (kept alive).
    #[arg(long, default_value_t = 64)]
    wrk_connections: u32,
    #[arg(long, default_value = crate::DEFAULT_REGION)]
    region: String,
}

/// What a run does, the options resolved.
#[derive(Clone, Debug, PartialEq)]
struct Plan {
    clients: usize,
    put_seconds: u32,
    read_days: i64,
    read_runs: u32,
    alarm_rounds: u32,
    proxy_rounds: u32,
    proxy_seconds: u32,
    /// 0 in quick runs.
    proxy_warmup_seconds: u32,
}

impl Plan {
    fn of(args: &MetricsBenchArgs) -> Plan {
        let pick = |explicit: Option<u32>, default: u32, quick: u32| {
            explicit.unwrap_or(if args.quick { quick } else { default })
        };
        Plan {
            clients: args.clients,
            put_seconds: pick(args.put_seconds, 4, 1),
            read_days: args.read_days.unwrap_or(if args.quick { 1 } else { 7 }),
            read_runs: args.read_runs,
            alarm_rounds: pick(args.alarm_rounds, 10, 2),
            proxy_rounds: pick(args.proxy_rounds, 3, 1),
            proxy_seconds: pick(args.proxy_seconds, 4, 2),
            proxy_warmup_seconds: if args.quick { 0 } else { 1 },
        }
    }
}

pub fn run(args: &MetricsBenchArgs) -> Result<()> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let plan = Plan::of(args);
    print_machine();
    println!(
        "berth bench metrics: {} clients, {} s per put run, {} metrics × {} day(s) of minutes read \
         ({} runs), {} alarm rounds, {} proxy rounds of {} s",
        plan.clients,
        plan.put_seconds,
        READ_METRICS,
        plan.read_days,
        plan.read_runs,
        plan.alarm_rounds,
        plan.proxy_rounds,
        plan.proxy_seconds
    );
    let mut summary = serde_json::Map::new();
    summary.insert("bench".into(), json!("metrics"));
    summary.insert("quick".into(), json!(args.quick));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (server, target) = ServerProcess::start(&args.region)?;
    println!(
        "server: `berth server` pid {} on {}",
        server.pid(),
        target.connect_addr
    );
    let target = Arc::new(target);
    let measured = runtime.block_on(cloudwatch_figures(&plan, &target, &server, &mut summary));
    server.stop();
    measured?;
    drop(runtime);

    match proxy_figures(&plan, args)? {
        Some(proxy) => {
            summary.insert("proxy_on_rps".into(), json!(round1(proxy.on_rps)));
            summary.insert("proxy_off_rps".into(), json!(round1(proxy.off_rps)));
            summary.insert("proxy_ratio".into(), json!(round4(proxy.ratio())));
        }
        None => {
            summary.insert("proxy_ratio".into(), Value::Null);
        }
    }
    println!("{}", Value::Object(summary));
    Ok(())
}

/// Phases 1–3, against the server.
async fn cloudwatch_figures(
    plan: &Plan,
    target: &Arc<Target>,
    server: &ServerProcess,
    summary: &mut serde_json::Map<String, Value>,
) -> Result<()> {
    // 1. PutMetricData.
    println!();
    println!(
        "1. PutMetricData, durable (aim ≥ {} datapoints/s)",
        thousands(AIM_PUT_DATAPOINTS_PER_S)
    );
    create_put_series(target, plan.clients).await?;
    // Shape by shape, so both protocols' 1,000-datum runs update buckets of the same size
    // (the 150-Values runs add millions of values to the buckets they share).
    for shape in [Shape::Datums, Shape::Values] {
        for protocol in [Protocol::Json, Protocol::Cbor] {
            let figures = put_throughput(target, server, protocol, shape, plan).await?;
            println!(
                "   {:<5} {:<23}: {:>9} datapoints/s ({} requests/s), request p50 {:.1} ms, p99 {:.1} ms{} {}",
                protocol.name(),
                shape.label(),
                thousands(figures.datapoints_per_s),
                thousands(figures.requests_per_s),
                figures.p50_ms,
                figures.p99_ms,
                figures.server_cpu_us_per_datapoint.map_or_else(String::new, |cpu| format!(
                    ", server CPU {cpu:.2} µs/datapoint"
                )),
                verdict(figures.datapoints_per_s >= AIM_PUT_DATAPOINTS_PER_S)
            );
            let key = format!("put_{}_{}", protocol.key(), shape.key());
            summary.insert(
                format!("{key}_datapoints_per_s"),
                json!(figures.datapoints_per_s.round()),
            );
            summary.insert(format!("{key}_p50_ms"), json!(round1(figures.p50_ms)));
            summary.insert(format!("{key}_p99_ms"), json!(round1(figures.p99_ms)));
        }
    }

    // 2. GetMetricData.
    println!();
    println!(
        "2. GetMetricData, {READ_METRICS} MetricStat queries over {} day(s) of 1-minute data (aim ≤ {AIM_GET_MS} ms for a week)",
        plan.read_days
    );
    let loaded = load_read_data(target, plan.clients, plan.read_days).await?;
    println!(
        "   loaded {} datapoints ({} requests of 1,000 datums, JSON 1.0) in {:.1} s = {} datapoints/s",
        thousands(loaded.datapoints as f64),
        loaded.requests,
        loaded.seconds,
        thousands(loaded.datapoints as f64 / loaded.seconds)
    );
    for period_s in READ_PERIODS_S {
        for protocol in [Protocol::Json, Protocol::Cbor] {
            let figures = time_reads(target, protocol, &loaded, period_s, plan.read_runs).await?;
            println!(
                "   Period {period_s:>4} {:<5}: median {:.1} ms (min {:.1}, max {:.1}) over {} runs; {} datapoints in {} page(s) {}",
                protocol.name(),
                figures.median_ms,
                figures.min_ms,
                figures.max_ms,
                plan.read_runs,
                thousands(figures.datapoints as f64),
                figures.pages,
                verdict(figures.median_ms <= AIM_GET_MS)
            );
            let key = format!("get_{period_s}_{}", protocol.key());
            summary.insert(format!("{key}_median_ms"), json!(round1(figures.median_ms)));
            summary.insert(format!("{key}_datapoints"), json!(figures.datapoints));
        }
    }

    // 3. Alarm evaluation lag.
    println!();
    println!(
        "3. Alarm evaluation lag, Period 10 on a StorageResolution 1 metric, {} rounds (aim ≤ {AIM_ALARM_LAG_MS} ms after the period closes)",
        plan.alarm_rounds
    );
    let lags = alarm_lag(target, plan.alarm_rounds).await?;
    let seen = Summary::of(lags.iter().map(|lag| lag.seen_ms as f64).collect());
    let history = Summary::of(lags.iter().map(|lag| lag.history_ms as f64).collect());
    println!(
        "   DescribeAlarms shows ALARM: median {:.0} ms, max {:.0} ms after the period end {}",
        seen.median,
        seen.max,
        verdict(seen.max <= AIM_ALARM_LAG_MS)
    );
    println!(
        "   history item timestamp:     median {:.0} ms, max {:.0} ms after the period end",
        history.median, history.max
    );
    println!(
        "   (polled every {} ms: the first figure includes up to one poll interval and a DescribeAlarms call)",
        ALARM_POLL.as_millis()
    );
    summary.insert("alarm_lag_median_ms".into(), json!(seen.median));
    summary.insert("alarm_lag_max_ms".into(), json!(seen.max));
    summary.insert("alarm_history_lag_median_ms".into(), json!(history.median));
    summary.insert("alarm_history_lag_max_ms".into(), json!(history.max));
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met {
        "[aim met]"
    } else {
        "[aim missed]"
    }
}

// ---------------------------------------------------------------------------
// The machine.

fn print_machine() {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim());
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or_else(
            || "?".to_string(),
            |kib| format!("{:.1}", kib / 1024.0 / 1024.0),
        );
    let load = read("/proc/loadavg");
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "machine: {} — {cpu}, {cores} cores, {memory_gib} GiB, Linux {}, load average {}; berth {} ({} build)",
        read("/proc/sys/kernel/hostname").trim(),
        read("/proc/sys/kernel/osrelease").trim(),
        load.join(" "),
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) { "debug" } else { "release" },
    );
}

// ---------------------------------------------------------------------------
// The server: `berth server` on a temporary data directory.

struct ServerProcess {
    child: Child,
    // Removed after the child has exited (`Drop` runs before the fields drop).
    _data_dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `berth server` on a free loopback port and waits for its
    /// ready line; the target signs with the key it wrote.
    fn start(region: &str) -> Result<(ServerProcess, Target)> {
        let data_dir = tempfile::Builder::new()
            .prefix("berth-bench-metrics-")
            .tempdir()
            .context("cannot create a data directory for the server")?;
        let mut child = Command::new(std::env::current_exe().context("cannot find berth")?)
            .args(["server", "--listen", "127.0.0.1:0", "--region", region])
            .arg("--data-dir")
            .arg(data_dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start `berth server`")?;
        let stderr = child.stderr.take().context("no stderr from the server")?;
        let (ready, announced) = mpsc::channel();
        std::thread::spawn(move || forward_server_output(stderr, ready));
        let mut server = ServerProcess {
            child,
            _data_dir: data_dir,
        };
        let addr = match announced.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                bail!("`berth server` did not become ready within 30 s (exit status: {status:?})")
            }
        };
        let credentials = crate::credentials::read_credentials(server._data_dir.path())?;
        let target = Target {
            connect_addr: addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            access_key_id: credentials.access_key_id,
            secret_access_key: credentials.secret_access_key,
            region: region.to_string(),
        };
        Ok((server, target))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The CPU time the server has used so far (all its threads).
    fn cpu_ns(&self) -> Option<u64> {
        process_cpu_ns(&format!("/proc/{}/stat", self.pid()))
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its
    /// data directory.
    fn stop(self) {
        drop(self);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if terminated {
            for _ in 0..200 {
                if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the server's standard error: sends the address of its ready line,
/// then passes on what it logs (warnings and errors only: `RUST_LOG=warn`).
fn forward_server_output(stderr: std::process::ChildStderr, ready: mpsc::Sender<SocketAddr>) {
    let mut announced = false;
    for line in std::io::BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if !announced {
            if let Some(addr) = ready_address(&line) {
                announced = true;
                let _ = ready.send(addr);
            }
            continue;
        }
        eprintln!("   [server] {line}");
    }
}

/// The address in the server's `berth ready on http://<addr>` line.
fn ready_address(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("berth ready on http://")?
        .trim()
        .parse()
        .ok()
}

/// utime + stime of `/proc/<pid>/stat` in nanoseconds, every thread
/// included (exited ones too). Assumes the kernel's USER_HZ of 100, which
/// Linux reports on every architecture Berth runs on.
fn process_cpu_ns(stat_path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    cpu_ns_of_stat(&stat)
}

fn cpu_ns_of_stat(stat: &str) -> Option<u64> {
    // `pid (comm) state ppid …`: comm may hold spaces; fields after it are
    // numbered from 3 (state), so utime (14) and stime (15) are the 12th
    // and 13th after it.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10_000_000)
}

// ---------------------------------------------------------------------------
// The protocols and the client.

/// The two protocols current SDKs speak to CloudWatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// `X-Amz-Target: GraniteServiceVersion20100801.<Operation>`,
    /// `Content-Type: application/x-amz-json-1.0`.
    Json,
    /// `POST /service/GraniteServiceVersion20100801/operation/<Operation>`,
    /// `smithy-protocol: rpc-v2-cbor` (what boto3 sends).
    Cbor,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Json => "JSON",
            Protocol::Cbor => "CBOR",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Protocol::Json => "json",
            Protocol::Cbor => "cbor",
        }
    }

    /// `body` in this protocol's encoding.
    fn encode(self, body: &Value) -> Vec<u8> {
        match self {
            Protocol::Json => serde_json::to_vec(body).expect("a JSON value serializes"),
            Protocol::Cbor => {
                let mut bytes = Vec::new();
                ciborium::ser::into_writer(&json_to_cbor(body, None), &mut bytes)
                    .expect("a CBOR value serializes into memory");
                bytes
            }
        }
    }

    /// A response body in this protocol's encoding, as JSON.
    fn decode(self, body: &[u8]) -> Result<Value> {
        match self {
            Protocol::Json => serde_json::from_slice(body).context("invalid JSON in the answer"),
            Protocol::Cbor => {
                let value: ciborium::Value =
                    ciborium::de::from_reader(body).context("invalid CBOR in the answer")?;
                Ok(cbor_to_json(value))
            }
        }
    }
}

/// Members that are timestamps in the requests this bench sends: CBOR tag 1
/// (epoch seconds) on the CBOR protocol, as botocore encodes them.
const TIMESTAMP_MEMBERS: &[&str] = &["Timestamp", "StartTime", "EndTime"];

fn json_to_cbor(value: &Value, member: Option<&str>) -> ciborium::Value {
    use ciborium::Value as C;
    match value {
        Value::Null => C::Null,
        Value::Bool(flag) => C::Bool(*flag),
        Value::Number(number) => {
            let float = || C::Float(number.as_f64().unwrap_or(f64::NAN));
            if member.is_some_and(|name| TIMESTAMP_MEMBERS.contains(&name)) {
                C::Tag(1, Box::new(float()))
            } else if let Some(integer) = number.as_i64() {
                C::Integer(integer.into())
            } else {
                float()
            }
        }
        Value::String(text) => C::Text(text.clone()),
        Value::Array(items) => {
            C::Array(items.iter().map(|item| json_to_cbor(item, None)).collect())
        }
        Value::Object(members) => C::Map(
            members
                .iter()
                .map(|(name, value)| (C::Text(name.clone()), json_to_cbor(value, Some(name))))
                .collect(),
        ),
    }
}

fn cbor_to_json(value: ciborium::Value) -> Value {
    use ciborium::Value as C;
    match value {
        C::Integer(integer) => {
            let wide = i128::from(integer);
            i64::try_from(wide).map_or_else(|_| json!(wide as f64), |small| json!(small))
        }
        C::Float(float) => serde_json::Number::from_f64(float).map_or(Value::Null, Value::Number),
        C::Text(text) => Value::String(text),
        C::Bool(flag) => Value::Bool(flag),
        C::Tag(_, inner) => cbor_to_json(*inner),
        C::Array(items) => Value::Array(items.into_iter().map(cbor_to_json).collect()),
        C::Map(entries) => Value::Object(
            entries
                .into_iter()
                .filter_map(|(key, value)| match key {
                    C::Text(key) => Some((key, cbor_to_json(value))),
                    _ => None,
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// A signed CloudWatch request for `operation` in `protocol`.
fn cloudwatch_request(
    target: &Target,
    protocol: Protocol,
    operation: &str,
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>> {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, target.host.clone());
    let path = match protocol {
        Protocol::Json => {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-amz-json-1.0"),
            );
            headers.insert(
                "x-amz-target",
                HeaderValue::from_str(&format!(
                    "{}.{operation}",
                    cloudwatch::CloudWatch::TARGET_PREFIX
                ))?,
            );
            "/".to_string()
        }
        Protocol::Cbor => {
            headers.insert(
                aws_protocol::rpcv2::PROTOCOL_HEADER,
                HeaderValue::from_static(aws_protocol::rpcv2::PROTOCOL),
            );
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(aws_protocol::rpcv2::CONTENT_TYPE),
            );
            headers.insert(
                http::header::ACCEPT,
                HeaderValue::from_static(aws_protocol::rpcv2::CONTENT_TYPE),
            );
            format!(
                "/service/{}/operation/{operation}",
                cloudwatch::CloudWatch::TARGET_PREFIX
            )
        }
    };
    sigv4::sign_headers(
        "POST",
        &path,
        "",
        &mut headers,
        &body,
        &SigningParams {
            access_key_id: &target.access_key_id,
            secret_access_key: &target.secret_access_key,
            session_token: None,
            region: &target.region,
            service: cloudwatch::CloudWatch::SIGNING_NAME,
            now_epoch_s: clock::now_ms().div_euclid(1000),
        },
    )?;
    let mut request = Request::post(path).body(Full::new(Bytes::from(body)))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// One keep-alive connection to the server, opened again after an error.
struct CloudWatchClient {
    target: Arc<Target>,
    connection: Option<http1::SendRequest<Full<Bytes>>>,
}

impl CloudWatchClient {
    fn new(target: Arc<Target>) -> Self {
        CloudWatchClient {
            target,
            connection: None,
        }
    }

    async fn call_bytes(
        &mut self,
        protocol: Protocol,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes)> {
        let request = cloudwatch_request(&self.target, protocol, operation, body)?;
        bench_support::send_kept_alive(&mut self.connection, self.target.connect_addr, request)
            .await
    }

    /// `operation` with an already encoded body; an error unless 2xx.
    async fn call_encoded(
        &mut self,
        protocol: Protocol,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<Bytes> {
        let (status, response) = self.call_bytes(protocol, operation, body).await?;
        if !status.is_success() {
            let shown = match protocol.decode(&response) {
                Ok(value) => value.to_string(),
                Err(_) => bench_support::excerpt(&response),
            };
            bail!(
                "{operation} ({}): HTTP {status}: {}",
                protocol.name(),
                bench_support::excerpt(shown.as_bytes())
            );
        }
        Ok(response)
    }

    async fn call_ok(
        &mut self,
        protocol: Protocol,
        operation: &str,
        body: &Value,
    ) -> Result<Value> {
        let response = self
            .call_encoded(protocol, operation, protocol.encode(body))
            .await?;
        if response.is_empty() {
            return Ok(json!({}));
        }
        protocol
            .decode(&response)
            .with_context(|| format!("{operation} answered with an unreadable body"))
    }
}

// ---------------------------------------------------------------------------
// 1. PutMetricData.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// 1,000 datums of one `Value` each.
    Datums,
    /// 20 datums of 150 `Values` each.
    Values,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Shape::Datums => "1,000 datums × 1 value",
            Shape::Values => "20 datums × 150 Values",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Shape::Datums => "datums",
            Shape::Values => "values",
        }
    }

    fn datapoints_per_request(self) -> usize {
        match self {
            Shape::Datums => DATUMS_PER_REQUEST,
            Shape::Values => VALUES_DATUMS * VALUES_PER_DATUM,
        }
    }
}

/// One PutMetricData request of `shape` for `client`'s metrics (variant
/// `variant` of its values), every datum at `timestamp_ms`.
fn put_body(shape: Shape, client: usize, variant: usize, timestamp_ms: i64) -> Value {
    let datum = |metric: usize| {
        json!({
            "MetricName": format!("Metric{metric:04}"),
            "Dimensions": [{"Name": "Client", "Value": format!("{client:02}")}],
            "Timestamp": timestamp_ms as f64 / 1000.0,
            "Unit": "Milliseconds",
        })
    };
    let data: Vec<Value> = match shape {
        Shape::Datums => (0..DATUMS_PER_REQUEST)
            .map(|metric| {
                let mut datum = datum(metric);
                datum["Value"] = json!(((metric * 7 + variant * 13) % 100) as f64 + 0.5);
                datum
            })
            .collect(),
        Shape::Values => (0..VALUES_DATUMS)
            .map(|index| {
                let metric = (variant * VALUES_DATUMS + index) % METRICS_PER_CLIENT;
                let mut datum = datum(metric);
                datum["Values"] = (0..VALUES_PER_DATUM)
                    .map(|k| json!(((k * 7 + metric) % 100) as f64 + 0.5))
                    .collect();
                datum
            })
            .collect(),
    };
    json!({"Namespace": PUT_NAMESPACE, "MetricData": data})
}

/// Creates every put client's series first, so the timed runs measure
/// appends to existing series.
async fn create_put_series(target: &Arc<Target>, clients: usize) -> Result<()> {
    let mut workers = tokio::task::JoinSet::new();
    for client in 0..clients {
        let mut http = CloudWatchClient::new(Arc::clone(target));
        workers.spawn(async move {
            let body = put_body(Shape::Datums, client, 0, clock::now_ms());
            http.call_ok(Protocol::Json, "PutMetricData", &body).await?;
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.context("a put client panicked")??;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
struct PutFigures {
    datapoints_per_s: f64,
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    server_cpu_us_per_datapoint: Option<f64>,
}

async fn put_throughput(
    target: &Arc<Target>,
    server: &ServerProcess,
    protocol: Protocol,
    shape: Shape,
    plan: &Plan,
) -> Result<PutFigures> {
    let timestamp_ms = clock::now_ms();
    let bodies: Vec<Vec<Vec<u8>>> = (0..plan.clients)
        .map(|client| {
            (0..BODY_VARIANTS)
                .map(|variant| protocol.encode(&put_body(shape, client, variant, timestamp_ms)))
                .collect()
        })
        .collect();
    let duration = Duration::from_secs(u64::from(plan.put_seconds));
    let cpu_before = server.cpu_ns();
    let started = clock::monotonic_now();
    let mut workers = tokio::task::JoinSet::new();
    for client_bodies in bodies {
        let mut http = CloudWatchClient::new(Arc::clone(target));
        workers.spawn(async move {
            let mut latencies_us = Vec::new();
            while started.elapsed() < duration {
                let body = client_bodies[latencies_us.len() % client_bodies.len()].clone();
                let sent = clock::monotonic_now();
                http.call_encoded(protocol, "PutMetricData", body).await?;
                latencies_us.push(micros(sent.elapsed()));
            }
            Ok::<_, anyhow::Error>(latencies_us)
        });
    }
    let mut latencies_us = Vec::new();
    while let Some(joined) = workers.join_next().await {
        latencies_us.extend(joined.context("a put client panicked")??);
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let cpu_after = server.cpu_ns();
    latencies_us.sort_unstable();
    let requests = latencies_us.len();
    let datapoints = (requests * shape.datapoints_per_request()) as f64;
    Ok(PutFigures {
        datapoints_per_s: datapoints / elapsed_s,
        requests_per_s: requests as f64 / elapsed_s,
        p50_ms: percentile(&latencies_us, 0.50) as f64 / 1000.0,
        p99_ms: percentile(&latencies_us, 0.99) as f64 / 1000.0,
        server_cpu_us_per_datapoint: match (cpu_before, cpu_after) {
            (Some(before), Some(after)) if datapoints > 0.0 => {
                Some(after.saturating_sub(before) as f64 / 1000.0 / datapoints)
            }
            _ => None,
        },
    })
}

// ---------------------------------------------------------------------------
// 2. GetMetricData.

/// What was loaded for the read figure.
#[derive(Clone, Copy, Debug)]
struct Loaded {
    /// The first minute of data.
    start_ms: i64,
    days: i64,
    datapoints: usize,
    requests: usize,
    seconds: f64,
}

/// The minute the loaded data starts at, so that `days` of minutes end
/// before the minute of `now_ms`.
fn read_data_start_ms(now_ms: i64, days: i64) -> i64 {
    now_ms.div_euclid(60_000) * 60_000 - days * 86_400_000
}

/// Request `request` of the load: 1,000 datums in time order (every metric
/// at one minute, then the next minute), from datum `request × 1,000` of the
/// `minutes × READ_METRICS` in all.
fn load_body(request: usize, start_ms: i64, minutes: usize) -> Value {
    let total = minutes * READ_METRICS;
    let first = request * DATUMS_PER_REQUEST;
    let data: Vec<Value> = (first..(first + DATUMS_PER_REQUEST).min(total))
        .map(|index| {
            let (minute, metric) = (index / READ_METRICS, index % READ_METRICS);
            json!({
                "MetricName": "Requests",
                "Dimensions": [{"Name": "Series", "Value": format!("{metric:03}")}],
                "Timestamp": (start_ms + minute as i64 * 60_000) as f64 / 1000.0,
                "Value": ((minute * 31 + metric) % 1000) as f64,
                "Unit": "Count",
            })
        })
        .collect();
    json!({"Namespace": READ_NAMESPACE, "MetricData": data})
}

async fn load_read_data(target: &Arc<Target>, clients: usize, days: i64) -> Result<Loaded> {
    let start_ms = read_data_start_ms(clock::now_ms(), days);
    let minutes = usize::try_from(days * 1440)?;
    let datapoints = minutes * READ_METRICS;
    let requests = datapoints.div_ceil(DATUMS_PER_REQUEST);
    let next = Arc::new(AtomicUsize::new(0));
    let started = clock::monotonic_now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let mut http = CloudWatchClient::new(Arc::clone(target));
        let next = Arc::clone(&next);
        workers.spawn(async move {
            loop {
                let request = next.fetch_add(1, Ordering::Relaxed);
                if request >= requests {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = Protocol::Json.encode(&load_body(request, start_ms, minutes));
                http.call_encoded(Protocol::Json, "PutMetricData", body)
                    .await?;
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.context("a loader panicked")??;
    }
    Ok(Loaded {
        start_ms,
        days,
        datapoints,
        requests,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// GetMetricData for every read metric at `period_s` over the loaded days
/// (from the period boundary at or before the first minute).
fn read_body(loaded: &Loaded, period_s: u32, next_token: Option<&str>) -> Value {
    let period_ms = i64::from(period_s) * 1000;
    let start_ms = loaded.start_ms.div_euclid(period_ms) * period_ms;
    let end_ms = start_ms + loaded.days * 86_400_000;
    let queries: Vec<Value> = (0..READ_METRICS)
        .map(|metric| {
            json!({
                "Id": format!("m{metric:03}"),
                "MetricStat": {
                    "Metric": {
                        "Namespace": READ_NAMESPACE,
                        "MetricName": "Requests",
                        "Dimensions": [{"Name": "Series", "Value": format!("{metric:03}")}],
                    },
                    "Period": period_s,
                    "Stat": "Average",
                },
            })
        })
        .collect();
    let mut body = json!({
        "MetricDataQueries": queries,
        "StartTime": start_ms as f64 / 1000.0,
        "EndTime": end_ms as f64 / 1000.0,
    });
    if let Some(token) = next_token {
        body["NextToken"] = json!(token);
    }
    body
}

/// The datapoints in a GetMetricData answer, and its NextToken.
fn read_answer(answer: &Value) -> (usize, Option<String>) {
    let datapoints = answer["MetricDataResults"].as_array().map_or(0, |results| {
        results
            .iter()
            .map(|result| result["Values"].as_array().map_or(0, Vec::len))
            .sum()
    });
    (datapoints, answer["NextToken"].as_str().map(str::to_string))
}

#[derive(Clone, Copy, Debug)]
struct ReadFigures {
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    datapoints: usize,
    pages: usize,
}

/// One untimed run, then `runs` timed ones; each run reads every page.
async fn time_reads(
    target: &Arc<Target>,
    protocol: Protocol,
    loaded: &Loaded,
    period_s: u32,
    runs: u32,
) -> Result<ReadFigures> {
    let mut http = CloudWatchClient::new(Arc::clone(target));
    let mut times_ms = Vec::new();
    let (mut datapoints, mut pages) = (0, 0);
    for run in 0..=runs {
        let started = clock::monotonic_now();
        let (mut run_datapoints, mut run_pages) = (0, 0);
        let mut token: Option<String> = None;
        loop {
            let body = read_body(loaded, period_s, token.as_deref());
            let answer = http.call_ok(protocol, "GetMetricData", &body).await?;
            let (count, next) = read_answer(&answer);
            run_datapoints += count;
            run_pages += 1;
            match next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        if run > 0 {
            times_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        (datapoints, pages) = (run_datapoints, run_pages);
    }
    let summary = Summary::of(times_ms);
    Ok(ReadFigures {
        median_ms: summary.median,
        min_ms: summary.min,
        max_ms: summary.max,
        datapoints,
        pages,
    })
}

// ---------------------------------------------------------------------------
// 3. Alarm evaluation lag.

/// Where a round at `now_ms` puts its value: the start of the period it
/// goes into and when to send it (now, when at least `margin_ms` of the
/// current period is left; else just after the next period starts).
fn round_period(now_ms: i64, period_ms: i64, margin_ms: i64) -> (i64, i64) {
    let start_ms = now_ms.div_euclid(period_ms) * period_ms;
    if start_ms + period_ms - now_ms >= margin_ms {
        (start_ms, now_ms)
    } else {
        let next_ms = start_ms + period_ms;
        (next_ms, next_ms + ALARM_SEND_OFFSET_MS)
    }
}

#[derive(Clone, Copy, Debug)]
struct AlarmLag {
    /// The answer that showed ALARM, after the period end.
    seen_ms: i64,
    /// The state change's history item timestamp, after the period end.
    history_ms: i64,
}

fn alarm_name(round: u32) -> String {
    format!("bench-lag-{round:02}")
}

async fn alarm_lag(target: &Arc<Target>, rounds: u32) -> Result<Vec<AlarmLag>> {
    let mut http = CloudWatchClient::new(Arc::clone(target));
    for round in 0..rounds {
        http.call_ok(
            Protocol::Json,
            "PutMetricAlarm",
            &json!({
                "AlarmName": alarm_name(round),
                "Namespace": ALARM_NAMESPACE,
                "MetricName": "Latency",
                "Dimensions": [{"Name": "Round", "Value": round.to_string()}],
                "Statistic": "Maximum",
                "Period": 10,
                "EvaluationPeriods": 1,
                "DatapointsToAlarm": 1,
                "Threshold": 50.0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "missing",
            }),
        )
        .await?;
    }
    let mut lags = Vec::new();
    for round in 0..rounds {
        let period_start_ms = loop {
            let now_ms = clock::now_ms();
            let (start_ms, send_at_ms) =
                round_period(now_ms, ALARM_PERIOD_MS, ALARM_SEND_MARGIN_MS);
            if send_at_ms <= now_ms {
                break start_ms;
            }
            tokio::time::sleep(Duration::from_millis((send_at_ms - now_ms) as u64)).await;
        };
        let period_end_ms = period_start_ms + ALARM_PERIOD_MS;
        let name = alarm_name(round);
        http.call_ok(
            Protocol::Json,
            "PutMetricData",
            &json!({
                "Namespace": ALARM_NAMESPACE,
                "MetricData": [{
                    "MetricName": "Latency",
                    "Dimensions": [{"Name": "Round", "Value": round.to_string()}],
                    "Timestamp": clock::now_ms() as f64 / 1000.0,
                    "Value": 100.0,
                    "StorageResolution": 1,
                }],
            }),
        )
        .await?;
        let acknowledged_ms = clock::now_ms();
        if acknowledged_ms >= period_end_ms {
            bail!(
                "round {round}: PutMetricData was acknowledged {} ms after its period ended; \
                 the machine is too busy for this figure",
                acknowledged_ms - period_end_ms
            );
        }
        let seen_ms = loop {
            let answer = http
                .call_ok(
                    Protocol::Json,
                    "DescribeAlarms",
                    &json!({"AlarmNames": [name]}),
                )
                .await?;
            let now_ms = clock::now_ms();
            if answer["MetricAlarms"][0]["StateValue"] == "ALARM" {
                break now_ms;
            }
            if now_ms > period_end_ms + ALARM_TIMEOUT_MS {
                bail!(
                    "round {round}: alarm {name} was not in ALARM {} s after its period ended (it is {})",
                    ALARM_TIMEOUT_MS / 1000,
                    answer["MetricAlarms"][0]["StateValue"]
                );
            }
            tokio::time::sleep(ALARM_POLL).await;
        };
        let history = http
            .call_ok(
                Protocol::Json,
                "DescribeAlarmHistory",
                &json!({"AlarmName": name, "HistoryItemType": "StateUpdate"}),
            )
            .await?;
        let history_ms = history["AlarmHistoryItems"][0]["Timestamp"]
            .as_f64()
            .map(|seconds| (seconds * 1000.0).round() as i64)
            .with_context(|| format!("alarm {name} has no StateUpdate history item: {history}"))?;
        lags.push(AlarmLag {
            seen_ms: seen_ms - period_end_ms,
            history_ms: history_ms - period_end_ms,
        });
    }
    Ok(lags)
}

// ---------------------------------------------------------------------------
// 4. The proxy, traffic counting on and off.

#[derive(Clone, Copy, Debug)]
struct ProxyFigures {
    on_rps: f64,
    off_rps: f64,
}

impl ProxyFigures {
    fn ratio(&self) -> f64 {
        self.on_rps / self.off_rps
    }
}

/// Which mode (counting on?) goes first in round `round` (counted from 1).
fn counting_order(round: u32) -> [bool; 2] {
    if round % 2 == 1 {
        [true, false]
    } else {
        [false, true]
    }
}

/// `None` (and says why) when wrk cannot be run.
fn proxy_figures(plan: &Plan, args: &MetricsBenchArgs) -> Result<Option<ProxyFigures>> {
    println!();
    println!(
        "4. Load balancer proxy with traffic counting on vs off, wrk -t{} -c{} -d{}s, {} rounds (aim: on within 2% of off)",
        args.wrk_threads, args.wrk_connections, plan.proxy_seconds, plan.proxy_rounds
    );
    if Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        println!("   skipped: wrk is not installed; install it with `apt-get install -y wrk`");
        return Ok(None);
    }
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
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
    // The proxy serves connections on its own worker threads; this runtime
    // only runs its supervisor and health checks.
    let proxy_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("berth-proxy")
        .enable_all()
        .build()
        .context("cannot start the proxy's runtime")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("cannot find a free port")?
        .port();
    let (_config, proxy) = proxy_runtime.block_on(start_proxy(port, &backends, workers))?;
    let url = format!("http://127.0.0.1:{port}/");
    let mut on = Vec::new();
    let mut off = Vec::new();
    let (mut on_cpu, mut off_cpu) = (Vec::new(), Vec::new());
    let mut outcome = Ok(());
    'rounds: for round in 1..=plan.proxy_rounds {
        for counting in counting_order(round) {
            proxy.set_traffic_counting(counting);
            let measured = (|| {
                if plan.proxy_warmup_seconds > 0 {
                    run_wrk(args, plan.proxy_warmup_seconds, &url)?;
                }
                let _ = proxy.take_traffic_report();
                let cpu_before = berth_workers_cpu_ns();
                let output = run_wrk(args, plan.proxy_seconds, &url)?;
                let cpu_after = berth_workers_cpu_ns();
                let counted = proxy.take_traffic_report().load_balancer.request_count;
                let (figures, errors) = parse_wrk(&output)?;
                let requests = figures.requests_per_s * f64::from(plan.proxy_seconds);
                let cpu_us_per_request = match (cpu_before, cpu_after) {
                    (Some(before), Some(after)) if requests > 0.0 => {
                        Some(after.saturating_sub(before) as f64 / 1000.0 / requests)
                    }
                    _ => None,
                };
                Ok::<_, anyhow::Error>((figures, errors, counted, cpu_us_per_request))
            })();
            match measured {
                Ok((figures, errors, counted, cpu_us_per_request)) => {
                    println!(
                        "   round {round} counting {:<3}: {:>8.0} requests/s, p50 {:.3} ms, p99 {:.3} ms, {} requests counted{}{}",
                        if counting { "on" } else { "off" },
                        figures.requests_per_s,
                        figures.p50_ms,
                        figures.p99_ms,
                        counted,
                        cpu_us_per_request.map_or_else(String::new, |cpu| format!(", proxy CPU {cpu:.2} µs/request")),
                        if errors.is_empty() { String::new() } else { format!(" ({errors})") }
                    );
                    if counting { &mut on } else { &mut off }.push(figures.requests_per_s);
                    if let Some(cpu) = cpu_us_per_request {
                        if counting { &mut on_cpu } else { &mut off_cpu }.push(cpu);
                    }
                }
                Err(err) => {
                    outcome = Err(err);
                    break 'rounds;
                }
            }
        }
    }
    proxy_runtime.block_on(proxy.shutdown());
    drop(backend_runtime);
    outcome?;
    let figures = ProxyFigures {
        on_rps: Summary::of(on).median,
        off_rps: Summary::of(off).median,
    };
    println!(
        "   median: on {:.0} requests/s, off {:.0} requests/s, on/off {:.3} {}",
        figures.on_rps,
        figures.off_rps,
        figures.ratio(),
        verdict(figures.ratio() >= AIM_PROXY_RATIO)
    );
    if !on_cpu.is_empty() && !off_cpu.is_empty() {
        let (on_cpu, off_cpu) = (Summary::of(on_cpu).median, Summary::of(off_cpu).median);
        println!(
            "   median proxy CPU: on {on_cpu:.2} µs/request, off {off_cpu:.2} µs/request, on/off {:.3} \
             (less sensitive than requests/s to what else the machine runs)",
            on_cpu / off_cpu
        );
    }
    Ok(Some(figures))
}

/// The proxy as `berth bench load-balancer` sets it up: one HTTP listener
/// forwarding to one target group of both backends.
async fn start_proxy(
    port: u16,
    backends: &[SocketAddr; 2],
    workers: usize,
) -> Result<(
    tokio::sync::watch::Sender<Arc<load_balancer::LoadBalancer>>,
    load_balancer_proxy::Proxy,
)> {
    use load_balancer::{
        Action, ForwardAction, HealthCheck, Listener, LoadBalancer, Protocol, TargetGroup,
        TargetGroupAttributes, WeightedTargetGroup,
    };
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
                .map(|addr| load_balancer::Target {
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
    let proxy = load_balancer_proxy::Proxy::start(
        receiver,
        load_balancer_proxy::ProxyOptions {
            bind_ip: "127.0.0.1".parse()?,
            upstream_timeout: Duration::from_secs(60),
            worker_threads: workers,
        },
    )
    .await
    .context("cannot start Berth's proxy")?;
    Ok((sender, proxy))
}

fn run_wrk(args: &MetricsBenchArgs, seconds: u32, url: &str) -> Result<String> {
    let output = Command::new("wrk")
        .arg(format!("-t{}", args.wrk_threads))
        .arg(format!("-c{}", args.wrk_connections))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg(url)
        .stdin(Stdio::null())
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

// ---------------------------------------------------------------------------
// Arithmetic.

#[derive(Clone, Copy, Debug, PartialEq)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

impl Summary {
    /// The median (the mean of the middle two for an even count), min and
    /// max; NaN when empty.
    fn of(mut values: Vec<f64>) -> Summary {
        if values.is_empty() {
            return Summary {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        values.sort_by(f64::total_cmp);
        let middle = values.len() / 2;
        let median = if values.len() % 2 == 1 {
            values[middle]
        } else {
            (values[middle - 1] + values[middle]) / 2.0
        };
        Summary {
            median,
            min: values[0],
            max: values[values.len() - 1],
        }
    }
}

/// `value` rounded, with thousands separators: `123,456`.
fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let digits = (value.round().abs() as u64).to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    if value.round() < 0.0 {
        out.insert(0, '-');
    }
    out
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use control_plane::JsonService as _;

    fn target() -> Target {
        Target {
            connect_addr: SocketAddr::from(([127, 0, 0, 1], 4566)),
            host: HeaderValue::from_static("127.0.0.1:4566"),
            access_key_id: "AKIDEXAMPLE".to_string(),
            secret_access_key: "secret".to_string(),
            region: "eu-west-1".to_string(),
        }
    }

    /// CloudWatch over an in-memory store, answering as the server does.
    fn cloudwatch() -> cloudwatch::CloudWatch {
        cloudwatch::CloudWatch::new(
            Arc::new(store::MemoryStore::new()),
            Arc::new(metric_store::MemoryMetricStore::new()),
        )
    }

    fn context(now_ms: i64) -> api::RequestContext {
        api::RequestContext {
            region: "us-east-1".to_string(),
            account_id: crate::DEFAULT_ACCOUNT_ID.to_string(),
            principal_arn: format!("arn:aws:iam::{}:root", crate::DEFAULT_ACCOUNT_ID),
            access_key_id: "AKIDEXAMPLE".to_string(),
            request_id: "test".to_string(),
            now_ms,
        }
    }

    async fn call(
        service: &cloudwatch::CloudWatch,
        protocol: Protocol,
        now_ms: i64,
        operation: &str,
        body: &Value,
    ) -> Value {
        let ctx = context(now_ms);
        let encoded = protocol.encode(body);
        let answer = match protocol {
            Protocol::Json => service.handle(&ctx, operation, &encoded).await,
            Protocol::Cbor => service.handle_cbor(&ctx, operation, &encoded).await,
        }
        .unwrap_or_else(|err| panic!("{operation} ({protocol:?}): {err:?}"));
        protocol.decode(&answer).unwrap()
    }

    #[test]
    fn put_bodies_carry_the_datapoints_they_count() {
        let check = |shape: Shape, datums: usize, values_each: usize| {
            let body = put_body(shape, 3, 1, 1_796_652_000_123);
            let data = body["MetricData"].as_array().unwrap();
            assert_eq!(data.len(), datums, "{shape:?}");
            let values: usize = data
                .iter()
                .map(|datum| datum["Values"].as_array().map_or(1, Vec::len))
                .sum();
            assert_eq!(values, datums * values_each, "{shape:?}");
            assert_eq!(values, shape.datapoints_per_request(), "{shape:?}");
            assert_eq!(data[0]["Dimensions"][0]["Value"], "03");
            assert_eq!(data[0]["Timestamp"], 1_796_652_000.123);
        };
        check(Shape::Datums, 1000, 1);
        check(Shape::Values, 20, 150);
    }

    #[tokio::test]
    async fn cloudwatch_accepts_both_shapes_in_both_protocols() {
        let service = cloudwatch();
        let now_ms = 1_796_652_030_000;
        for protocol in [Protocol::Json, Protocol::Cbor] {
            for shape in [Shape::Datums, Shape::Values] {
                let answer = call(
                    &service,
                    protocol,
                    now_ms,
                    "PutMetricData",
                    &put_body(shape, 0, 0, now_ms - 1000),
                )
                .await;
                assert_eq!(answer, json!({}), "{protocol:?} {shape:?}");
            }
        }
        // Metric0000 of client 00 got one value from each Datums request
        // and 150 from each Values request: 302.
        let statistics = call(
            &service,
            Protocol::Json,
            now_ms,
            "GetMetricStatistics",
            &json!({
                "Namespace": PUT_NAMESPACE,
                "MetricName": "Metric0000",
                "Dimensions": [{"Name": "Client", "Value": "00"}],
                "StartTime": (now_ms - 120_000) as f64 / 1000.0,
                "EndTime": now_ms as f64 / 1000.0,
                "Period": 60,
                "Statistics": ["SampleCount"],
            }),
        )
        .await;
        let count: f64 = statistics["Datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|point| point["SampleCount"].as_f64().unwrap())
            .sum();
        assert_eq!(count, 302.0);
    }

    #[test]
    fn load_requests_cover_every_minute_of_every_metric_in_time_order() {
        let start_ms = read_data_start_ms(1_796_652_061_234, 1);
        assert_eq!(start_ms, 1_796_652_060_000 - 86_400_000);
        let minutes = 1440;
        let requests = (minutes * READ_METRICS).div_ceil(DATUMS_PER_REQUEST);
        assert_eq!(requests, 144);
        let first = load_body(0, start_ms, minutes);
        let data = first["MetricData"].as_array().unwrap();
        assert_eq!(data.len(), 1000);
        assert_eq!(data[0]["Timestamp"], start_ms as f64 / 1000.0);
        assert_eq!(data[99]["Dimensions"][0]["Value"], "099");
        assert_eq!(data[100]["Timestamp"], (start_ms + 60_000) as f64 / 1000.0);
        let last = load_body(requests - 1, start_ms, minutes);
        let data = last["MetricData"].as_array().unwrap();
        assert_eq!(
            data.last().unwrap()["Timestamp"],
            (start_ms + 1439 * 60_000) as f64 / 1000.0
        );
        assert!(load_body(requests, start_ms, minutes)["MetricData"]
            .as_array()
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn reads_return_a_datapoint_per_metric_and_period_and_paginate() {
        let service = cloudwatch();
        let now_ms = 1_796_652_061_234;
        let loaded = Loaded {
            start_ms: read_data_start_ms(now_ms, 1),
            days: 1,
            datapoints: 1440 * READ_METRICS,
            requests: 144,
            seconds: 1.0,
        };
        for request in 0..loaded.requests {
            call(
                &service,
                Protocol::Json,
                now_ms,
                "PutMetricData",
                &load_body(request, loaded.start_ms, 1440),
            )
            .await;
        }
        let check = |answer: Value, datapoints: usize, more: bool| {
            let (count, token) = read_answer(&answer);
            assert_eq!(count, datapoints);
            assert_eq!(token.is_some(), more);
            token
        };
        // A day at 3600: 24 periods (the first one partly filled) × 100.
        for protocol in [Protocol::Json, Protocol::Cbor] {
            let answer = call(
                &service,
                protocol,
                now_ms,
                "GetMetricData",
                &read_body(&loaded, 3600, None),
            )
            .await;
            check(answer, 2400, false);
        }
        // At 60 the day is 144,000 datapoints: past 100,800, a second page.
        let answer = call(
            &service,
            Protocol::Cbor,
            now_ms,
            "GetMetricData",
            &read_body(&loaded, 60, None),
        )
        .await;
        let token = check(answer, 100_800, true).unwrap();
        let answer = call(
            &service,
            Protocol::Cbor,
            now_ms,
            "GetMetricData",
            &read_body(&loaded, 60, Some(&token)),
        )
        .await;
        check(answer, 43_200, false);
    }

    #[test]
    fn cbor_bodies_tag_timestamps_and_round_trip() {
        let body =
            json!({"StartTime": 1.5, "Period": 60, "Value": 2.5, "Names": ["a"], "Gone": null});
        let encoded = Protocol::Cbor.encode(&body);
        let value: ciborium::Value = ciborium::de::from_reader(&encoded[..]).unwrap();
        let map = value.as_map().unwrap();
        let member = |name: &str| {
            map.iter()
                .find(|(key, _)| key.as_text() == Some(name))
                .map(|(_, value)| value.clone())
                .unwrap()
        };
        assert_eq!(
            member("StartTime"),
            ciborium::Value::Tag(1, Box::new(ciborium::Value::Float(1.5)))
        );
        assert_eq!(member("Period"), ciborium::Value::Integer(60.into()));
        assert_eq!(member("Value"), ciborium::Value::Float(2.5));
        assert_eq!(Protocol::Cbor.decode(&encoded).unwrap(), body);
        assert!(Protocol::Cbor.decode(b"\xff").is_err());
    }

    #[test]
    fn requests_are_routed_and_signed_per_protocol() {
        let check = |protocol: Protocol, path: &str, headers: &[(&str, &str)]| {
            let request =
                cloudwatch_request(&target(), protocol, "PutMetricData", b"{}".to_vec()).unwrap();
            assert_eq!(request.uri().path(), path, "{protocol:?}");
            for (name, value) in headers {
                assert_eq!(request.headers()[*name], *value, "{protocol:?} {name}");
            }
            let authorization = request.headers()["authorization"].to_str().unwrap();
            assert!(
                authorization.contains("/eu-west-1/monitoring/aws4_request"),
                "{authorization}"
            );
        };
        check(
            Protocol::Json,
            "/",
            &[
                ("content-type", "application/x-amz-json-1.0"),
                (
                    "x-amz-target",
                    "GraniteServiceVersion20100801.PutMetricData",
                ),
            ],
        );
        check(
            Protocol::Cbor,
            "/service/GraniteServiceVersion20100801/operation/PutMetricData",
            &[
                ("content-type", "application/cbor"),
                ("smithy-protocol", "rpc-v2-cbor"),
            ],
        );
    }

    #[test]
    fn alarm_rounds_take_a_period_with_time_left() {
        let check = |now_ms: i64, expected: (i64, i64)| {
            assert_eq!(round_period(now_ms, 10_000, 4_000), expected, "at {now_ms}");
        };
        check(100_000, (100_000, 100_000));
        check(105_999, (100_000, 105_999));
        check(106_000, (100_000, 106_000));
        check(106_001, (110_000, 110_100));
        check(109_999, (110_000, 110_100));
    }

    #[test]
    fn the_server_announces_its_address_and_cpu_time_is_read() {
        assert_eq!(
            ready_address("berth ready on http://127.0.0.1:40123"),
            Some(SocketAddr::from(([127, 0, 0, 1], 40123)))
        );
        assert_eq!(ready_address("berth: account 000000000000"), None);
        let stat = "42 (berth server) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(cpu_ns_of_stat(stat), Some(300 * 10_000_000));
        assert_eq!(cpu_ns_of_stat("garbage"), None);
        assert!(process_cpu_ns("/proc/self/stat").is_some());
        assert_eq!(berth_workers_cpu_ns(), Some(0));
    }

    #[test]
    fn figures_arithmetic() {
        let check = |values: &[f64], median: f64, min: f64, max: f64| {
            assert_eq!(
                Summary::of(values.to_vec()),
                Summary { median, min, max },
                "{values:?}"
            );
        };
        check(&[3.0], 3.0, 3.0, 3.0);
        check(&[5.0, 1.0, 3.0], 3.0, 1.0, 5.0);
        check(&[4.0, 1.0, 3.0, 2.0], 2.5, 1.0, 4.0);
        assert!(Summary::of(Vec::new()).median.is_nan());
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-1000.0), "-1,000");
        assert_eq!(counting_order(1), [true, false]);
        assert_eq!(counting_order(2), [false, true]);
    }

    #[test]
    fn quick_runs_shorten_every_phase_but_keep_explicit_options() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: MetricsBenchArgs,
        }
        let plan = |argv: &[&str]| {
            let mut full = vec!["bench"];
            full.extend_from_slice(argv);
            Plan::of(&Wrapper::parse_from(full).args)
        };
        let default = plan(&[]);
        assert_eq!(
            (default.put_seconds, default.read_days, default.alarm_rounds),
            (4, 7, 10)
        );
        let quick = plan(&["--quick"]);
        assert_eq!(
            (
                quick.put_seconds,
                quick.read_days,
                quick.alarm_rounds,
                quick.proxy_warmup_seconds
            ),
            (1, 1, 2, 0)
        );
        assert_eq!(plan(&["--quick", "--alarm-rounds", "5"]).alarm_rounds, 5);
    }
}
