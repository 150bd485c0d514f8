//! `berth bench api`: ECS API throughput and latency over real HTTP with
//! real SigV4 signatures.
//!
//! Phase 1 registers task definitions (durable writes), phase 2 describes
//! the registered families. Each of `--clients` tasks keeps one HTTP/1.1
//! connection alive and sends requests back to back for `--seconds`.
//! Requests/s and latencies count successful (2xx) requests; errors are
//! counted and the first one shown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::Full;
use hyper::client::conn::http1;

use crate::bench_support::{
    connect, excerpt, micros, percentile, round3, send, start_in_process, InProcessOptions, Target,
};
use crate::{clock, credentials};

/// Families each client registers revisions of, round robin.
const FAMILIES_PER_CLIENT: usize = 8;
/// Pause after a failed connection attempt, so an unreachable endpoint is
/// not hammered.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

#[derive(clap::Args)]
pub struct ApiBenchArgs {
    /// Concurrent clients, each with one keep-alive connection.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Length of each phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// A running server, e.g. http://127.0.0.1:4566 [default: an in-process
    /// server with a fresh SQLite store in a temporary directory].
    #[arg(long)]
    endpoint: Option<String>,
    /// With --endpoint: where to read credentials when AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY are not set [default: as for `berth up`].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The region requests are signed for.
    #[arg(long, default_value = crate::DEFAULT_REGION)]
    region: String,
}

pub async fn run_api(args: ApiBenchArgs) -> Result<()> {
    if args.clients == 0 || args.seconds == 0 {
        bail!("--clients and --seconds must be at least 1");
    }
    let (target, in_process) = match &args.endpoint {
        Some(endpoint) => (remote_target(endpoint, &args).await?, None),
        None => {
            let (target, server) =
                start_in_process(&args.region, InProcessOptions::default()).await?;
            (target, Some(server))
        }
    };
    let target = Arc::new(target);
    let duration = Duration::from_secs(args.seconds);
    println!(
        "berth bench api: {} clients, {} s per phase, against {}",
        args.clients,
        args.seconds,
        target.host.to_str().unwrap_or("?")
    );

    let run_id = format!("{:x}", clock::now_ms());
    let register = run_phase(&target, args.clients, duration, {
        let run_id = run_id.clone();
        move |client, sequence| {
            let family = format!("bench-{run_id}-{client}-{}", sequence % FAMILIES_PER_CLIENT);
            let body = register_task_definition_body(&family);
            ("RegisterTaskDefinition", body, Some(family))
        }
    })
    .await;
    register.summary.print("register");

    let all_registered: Vec<String> = {
        let mut all: Vec<String> = register
            .registered_by_client
            .iter()
            .flatten()
            .cloned()
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    if all_registered.is_empty() {
        println!("describe: no task definition was registered; describing planned families");
    }
    let fallback: Arc<Vec<String>> = Arc::new(if all_registered.is_empty() {
        (0..FAMILIES_PER_CLIENT)
            .map(|index| format!("bench-{run_id}-0-{index}"))
            .collect()
    } else {
        all_registered
    });
    let by_client = Arc::new(register.registered_by_client);
    let describe = run_phase(&target, args.clients, duration, {
        move |client, sequence| {
            let own = by_client.get(client).filter(|own| !own.is_empty());
            let families = own.unwrap_or(&fallback);
            let family = &families[sequence % families.len()];
            let body = serde_json::to_vec(&serde_json::json!({ "taskDefinition": family }))
                .expect("a JSON literal serializes");
            ("DescribeTaskDefinition", body, None)
        }
    })
    .await;
    describe.summary.print("describe");

    if let Some(server) = in_process {
        server.stop().await;
    }

    let line = serde_json::json!({
        "clients": args.clients,
        "seconds": args.seconds,
        "register_requests": register.summary.requests,
        "register_errors": register.summary.errors,
        "register_per_s": round3(register.summary.per_s),
        "register_p50_ms": round3(register.summary.p50_ms),
        "register_p99_ms": round3(register.summary.p99_ms),
        "register_max_ms": round3(register.summary.max_ms),
        "describe_requests": describe.summary.requests,
        "describe_errors": describe.summary.errors,
        "describe_per_s": round3(describe.summary.per_s),
        "describe_p50_ms": round3(describe.summary.p50_ms),
        "describe_p99_ms": round3(describe.summary.p99_ms),
        "describe_max_ms": round3(describe.summary.max_ms),
    });
    println!("{line}");
    Ok(())
}

/// A small, realistic task definition: a web server and a sidecar.
fn register_task_definition_body(family: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "family": family,
        "networkMode": "bridge",
        "requiresCompatibilities": ["EC2"],
        "cpu": "512",
        "memory": "1024",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "nginx:1.27",
                "cpu": 384,
                "memory": 768,
                "essential": true,
                "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
                "environment": [
                    {"name": "APP_ENV", "value": "bench"},
                    {"name": "WORKERS", "value": "4"}
                ],
                "healthCheck": {
                    "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                    "interval": 30,
                    "timeout": 5,
                    "retries": 3
                },
                "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}}
            },
            {
                "name": "log-router",
                "image": "busybox:1.36",
                "cpu": 128,
                "memory": 256,
                "essential": false,
                "command": ["sh", "-c", "tail -F /var/log/app.log"]
            }
        ],
        "tags": [{"key": "purpose", "value": "bench"}]
    });
    serde_json::to_vec(&body).expect("a JSON literal serializes")
}

async fn remote_target(endpoint: &str, args: &ApiBenchArgs) -> Result<Target> {
    let uri: http::Uri = endpoint
        .parse()
        .with_context(|| format!("--endpoint {endpoint:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--endpoint must be an http:// URL, got {endpoint:?}");
    }
    let authority = uri
        .authority()
        .with_context(|| format!("--endpoint {endpoint:?} has no host"))?;
    let port = authority.port_u16().unwrap_or(80);
    let connect_addr = tokio::net::lookup_host((authority.host(), port))
        .await
        .with_context(|| format!("cannot resolve {}", authority.host()))?
        .next()
        .with_context(|| format!("{} has no address", authority.host()))?;

    let from_env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let (access_key_id, secret_access_key) = match (
        from_env("AWS_ACCESS_KEY_ID"),
        from_env("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => (id, secret),
        _ => {
            let data_dir = crate::data_dir_or_default(args.data_dir.clone())?;
            let stored = credentials::read_credentials(&data_dir)?;
            (stored.access_key_id, stored.secret_access_key)
        }
    };
    Ok(Target {
        connect_addr,
        host: HeaderValue::from_str(authority.as_str())?,
        access_key_id,
        secret_access_key,
        region: args.region.clone(),
    })
}

struct PhaseResult {
    summary: PhaseSummary,
    /// Per client: the task definition families it registered.
    registered_by_client: Vec<Vec<String>>,
}

/// What one client did in one phase.
#[derive(Default)]
struct ClientTally {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    registered: Vec<String>,
}

impl ClientTally {
    fn error(&mut self, description: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(description());
        }
    }
}

/// Runs `clients` clients for `duration`; `plan(client, sequence)` gives each request's operation, body, and the family it registers.
async fn run_phase<P>(
    target: &Arc<Target>,
    clients: usize,
    duration: Duration,
    plan: P,
) -> PhaseResult
where
    P: Fn(usize, usize) -> (&'static str, Vec<u8>, Option<String>) + Send + Sync + 'static,
{
    let plan = Arc::new(plan);
    let started = clock::monotonic_now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let target = Arc::clone(target);
        let plan = Arc::clone(&plan);
        tasks.push(tokio::spawn(async move {
            let mut tally = ClientTally::default();
            let mut connection: Option<http1::SendRequest<Full<Bytes>>> = None;
            let mut sequence = 0;
            while clock::monotonic_now() < deadline {
                let (operation, body, family) = plan(client, sequence);
                sequence += 1;
                let sender = match connection.as_mut() {
                    Some(sender) => sender,
                    None => match connect(target.connect_addr).await {
                        Ok(sender) => connection.insert(sender),
                        Err(err) => {
                            tally.error(|| format!("connect: {err:#}"));
                            tokio::time::sleep(RECONNECT_PAUSE).await;
                            continue;
                        }
                    },
                };
                let request = match target.request(operation, body) {
                    Ok(request) => request,
                    Err(err) => {
                        tally.error(|| format!("signing: {err:#}"));
                        continue;
                    }
                };
                let sent_at = clock::monotonic_now();
                match send(sender, request).await {
                    Ok((status, _)) if status.is_success() => {
                        tally.latencies_us.push(micros(sent_at.elapsed()));
                        if let Some(family) = family {
                            if !tally.registered.contains(&family) {
                                tally.registered.push(family);
                            }
                        }
                    }
                    Ok((status, body)) => {
                        tally.error(|| format!("{operation}: HTTP {status}: {}", excerpt(&body)))
                    }
                    Err(err) => {
                        tally.error(|| format!("{operation}: {err:#}"));
                        connection = None;
                    }
                }
            }
            tally
        }));
    }

    let mut latencies_us = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut registered_by_client = Vec::with_capacity(clients);
    for task in tasks {
        let tally = match task.await {
            Ok(tally) => tally,
            Err(err) => {
                let mut tally = ClientTally::default();
                tally.error(|| format!("client task failed: {err}"));
                tally
            }
        };
        latencies_us.extend(tally.latencies_us);
        errors += tally.errors;
        first_error = first_error.or(tally.first_error);
        registered_by_client.push(tally.registered);
    }
    let elapsed = started.elapsed();
    PhaseResult {
        summary: PhaseSummary::from_latencies(latencies_us, errors, first_error, elapsed),
        registered_by_client,
    }
}

#[derive(Clone, Debug, PartialEq)]
struct PhaseSummary {
    /// Successful plus failed requests.
    requests: u64,
    errors: u64,
    /// Successful requests per second.
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    first_error: Option<String>,
}

impl PhaseSummary {
    /// `latencies_us`: one per successful request.
    fn from_latencies(
        mut latencies_us: Vec<u64>,
        errors: u64,
        first_error: Option<String>,
        elapsed: Duration,
    ) -> PhaseSummary {
        latencies_us.sort_unstable();
        let successes = latencies_us.len() as u64;
        let elapsed_s = elapsed.as_secs_f64();
        let to_ms = |us: u64| us as f64 / 1000.0;
        PhaseSummary {
            requests: successes + errors,
            errors,
            per_s: if elapsed_s > 0.0 {
                successes as f64 / elapsed_s
            } else {
                0.0
            },
            p50_ms: to_ms(percentile(&latencies_us, 0.50)),
            p99_ms: to_ms(percentile(&latencies_us, 0.99)),
            max_ms: to_ms(latencies_us.last().copied().unwrap_or(0)),
            first_error,
        }
    }

    fn print(&self, phase: &str) {
        println!(
            "{phase}: {} requests, {} errors, {:.1} requests/s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.requests, self.errors, self.per_s, self.p50_ms, self.p99_ms, self.max_ms
        );
        if let Some(error) = &self.first_error {
            println!("  first error: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_errors_but_time_successes_only() {
        let summary = PhaseSummary::from_latencies(
            vec![3_000, 1_000, 2_000, 4_000],
            2,
            Some("boom".into()),
            Duration::from_secs(2),
        );
        assert_eq!(summary.requests, 6);
        assert_eq!(summary.errors, 2);
        assert_eq!(summary.per_s, 2.0);
        assert_eq!(summary.p50_ms, 2.0);
        assert_eq!(summary.p99_ms, 4.0);
        assert_eq!(summary.max_ms, 4.0);
    }

    #[test]
    fn the_task_definition_has_two_containers() {
        let body: serde_json::Value =
            serde_json::from_slice(&register_task_definition_body("web-1")).unwrap();
        assert_eq!(body["family"], "web-1");
        assert_eq!(body["containerDefinitions"].as_array().unwrap().len(), 2);
    }
}
