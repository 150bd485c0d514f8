//! `berth bench logs --container-latency`: a real container on the local
//! Docker Engine, run by a real `berth agent` process, writes a line every
//! `INTERVAL`; the bench follows its stream with GetLogEvents (the forward
//! token, polled every `POLL_INTERVAL`) and takes, for each line, the time
//! from Docker's timestamp of the write to the first poll that returned
//! it. Both clocks are this machine's; the poll interval bounds the error.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use runtime_docker::test_support::{ensure_test_image, TEST_IMAGE};
use serde_json::{json, Value};

use crate::bench_run_task::{wait_for_registration, AgentProcess, CLUSTER_NAME};
use crate::bench_support::{percentile, remove_containers, Client, InProcessServer, Target, LOGS};
use crate::clock;

const GROUP: &str = "/berth/bench-latency";
const STREAM_PREFIX: &str = "bench";
const CONTAINER_NAME: &str = "writer";
/// Between two lines the container writes (busybox `usleep`, µs).
const INTERVAL_US: u64 = 20_000;
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// The longest the bench waits for all lines after the last was written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) async fn run(
    target: &Arc<Target>,
    server: &InProcessServer,
    lines: usize,
) -> Result<()> {
    tokio::task::spawn_blocking(ensure_test_image)
        .await
        .context("building the test image panicked")?
        .map_err(|message| anyhow::anyhow!("cannot provide the image {TEST_IMAGE}: {message}"))?;
    let mut client = Client::new(Arc::clone(target));
    client
        .call_ok("CreateCluster", &json!({"clusterName": CLUSTER_NAME}))
        .await?;
    let mut agent = AgentProcess::spawn(&server.endpoint_url, target)?;
    let measured = measure(&mut client, &mut agent, target, lines).await;
    let stopped = agent.stop().await;
    tokio::task::spawn_blocking(|| {
        remove_containers(&format!("label=com.amazonaws.ecs.cluster={CLUSTER_NAME}"))
    })
    .await??;
    let mut latencies_ms = measured?;
    if let Err(err) = stopped {
        println!("note: stopping the agent: {err:#}");
    }
    latencies_ms.sort_unstable();
    println!(
        "container write → GetLogEvents ({} lines, one per {} ms, polled every {} ms): p50 {} ms, p99 {} ms, max {} ms",
        latencies_ms.len(),
        INTERVAL_US / 1000,
        POLL_INTERVAL.as_millis(),
        percentile(&latencies_ms, 0.50),
        percentile(&latencies_ms, 0.99),
        latencies_ms.last().copied().unwrap_or(0),
    );
    Ok(())
}

async fn measure(
    client: &mut Client,
    agent: &mut AgentProcess,
    target: &Arc<Target>,
    lines: usize,
) -> Result<Vec<u64>> {
    wait_for_registration(client, agent).await?;
    let mut logs = Client::new(Arc::clone(target));
    logs.call_ok_to(LOGS, "CreateLogGroup", &json!({"logGroupName": GROUP}))
        .await?;
    let script = format!(
        "i=0; while [ $i -lt {lines} ]; do i=$((i+1)); echo \"line $i\"; usleep {INTERVAL_US}; done"
    );
    let registered = client
        .call_ok(
            "RegisterTaskDefinition",
            &json!({
                "family": "bench-logs-latency",
                "containerDefinitions": [{
                    "name": CONTAINER_NAME,
                    "image": TEST_IMAGE,
                    "memory": 64,
                    "command": ["sh", "-c", script],
                    "logConfiguration": {"logDriver": "awslogs", "options": {
                        "awslogs-group": GROUP,
                        "awslogs-region": target.region,
                        "awslogs-stream-prefix": STREAM_PREFIX,
                    }},
                }],
            }),
        )
        .await?;
    let task_definition_arn = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .context("RegisterTaskDefinition answered without an ARN")?
        .to_string();
    let ran = client
        .call_ok(
            "RunTask",
            &json!({"cluster": CLUSTER_NAME, "taskDefinition": task_definition_arn}),
        )
        .await?;
    let task_arn = ran["tasks"][0]["taskArn"]
        .as_str()
        .with_context(|| format!("RunTask placed nothing: {ran}"))?
        .to_string();
    let task_id = task_arn.rsplit('/').next().unwrap_or_default();
    let stream = format!("{STREAM_PREFIX}/{CONTAINER_NAME}/{task_id}");

    let mut latencies_ms = Vec::with_capacity(lines);
    let mut token: Option<String> = None;
    let mut last_line_at: Option<std::time::Instant> = None;
    while latencies_ms.len() < lines {
        if last_line_at.is_some_and(|at| at.elapsed() > DRAIN_TIMEOUT) {
            bail!(
                "only {} of {lines} lines arrived; the agent's log ends:\n{}",
                latencies_ms.len(),
                agent.log_tail()
            );
        }
        let mut request =
            json!({"logGroupName": GROUP, "logStreamName": stream, "startFromHead": true});
        if let Some(token) = &token {
            request["nextToken"] = json!(token);
        }
        let (status, body) = logs
            .call_bytes(LOGS, "GetLogEvents", serde_json::to_vec(&request)?)
            .await?;
        let seen_ms = clock::now_ms();
        if status.is_success() {
            let page: Value = serde_json::from_slice(&body)?;
            for event in page["events"].as_array().into_iter().flatten() {
                let written_ms = event["timestamp"].as_i64().unwrap_or(seen_ms);
                latencies_ms.push(u64::try_from(seen_ms - written_ms).unwrap_or(0));
                last_line_at = Some(clock::monotonic_now());
            }
            token = page["nextForwardToken"].as_str().map(str::to_string);
        } else if status.as_u16() != 400 {
            // 400: the stream does not exist until the container starts.
            bail!(
                "GetLogEvents: HTTP {status}: {}",
                crate::bench_support::excerpt(&body)
            );
        }
        if last_line_at.is_none() {
            last_line_at = Some(clock::monotonic_now());
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Ok(latencies_ms)
}
