//! `berth bench run-task`: how long a task takes from RunTask to RUNNING
//! with a real agent on the local Docker Engine, next to `docker run -d` of
//! the same image on the same machine; and the agent's idle resident memory.
//!
//! An in-process control plane on a fresh SQLite store serves real HTTP on
//! loopback with real SigV4 verification, as for `berth bench api`, plus the
//! agent session stream, as for `berth up`. The bench starts a real
//! `berth agent` process for cluster `bench-latency` (a process of its own,
//! so its memory can be read from `/proc/<pid>/status`), waits until it has
//! registered, leaves it idle for `--idle-seconds` and reads its VmRSS and
//! VmHWM. Then, `--runs` times, interleaved and in alternating order so
//! machine noise hits both alike:
//! - Berth: RunTask (one task: one `sleep 300` container of
//!   [`TEST_IMAGE`], 32 MiB) → the DescribeTasks answer, polled every
//!   [`RUNNING_POLL_INTERVAL`], that shows `lastStatus` RUNNING. StopTask and
//!   the wait for STOPPED are not timed.
//! - Docker: `docker run -d --rm <image> sleep 300` until the CLI exits,
//!   which is Docker's answer that the container started; the container is
//!   then removed (not timed).
//!
//! One warm-up round of each is not counted. At the end the agent gets
//! SIGTERM and the containers of both sides are removed.
//!
//! Prints human-readable figures, then one JSON line:
//! `{"bench":"run-task","run_task_to_running_median_ms":…,"docker_run_median_ms":…,"ratio":…,"agent_idle_rss_mib":…,"agent_peak_rss_mib":…,"runs":…}`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use runtime_docker::test_support::{ensure_test_image, TEST_IMAGE};
use serde_json::{json, Value};

use crate::bench_support::{
    blocking, create_cluster_and_register, docker, micros, percentile, remove_containers, round3,
    start_in_process, stderr_excerpt, Client, InProcessOptions, Target,
};
use crate::clock;

pub(crate) const CLUSTER_NAME: &str = "bench-latency";
const FAMILY: &str = "bench-latency";
const CONTAINER_NAME: &str = "app";
const CONTAINER_MEMORY_MIB: u64 = 32;
/// The label the agent puts the cluster name in (as the ECS agent does).
const CLUSTER_LABEL: &str = "com.amazonaws.ecs.cluster";
/// The label on the bench's own `docker run` containers; its value is this
/// process's id.
const DOCKER_RUN_LABEL: &str = "berth.bench-run-task";
/// DescribeTasks is polled this often until the task is RUNNING.
const RUNNING_POLL_INTERVAL: Duration = Duration::from_millis(5);
/// ... and this often until it is STOPPED (not timed).
const STOPPED_POLL_INTERVAL: Duration = Duration::from_millis(20);
const REGISTRATION_POLL_INTERVAL: Duration = Duration::from_millis(100);
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(30);
const RUNNING_TIMEOUT: Duration = Duration::from_secs(60);
const STOPPED_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the agent has to exit after SIGTERM before it gets SIGKILL.
const AGENT_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
const AGENT_EXIT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// `--container-stop-timeout` for the agent: `sleep` as PID 1 ignores
/// SIGTERM, so each StopTask would otherwise wait ECS's 30 s for SIGKILL.
/// Stopping is not timed; this only keeps the bench short.
const AGENT_CONTAINER_STOP_TIMEOUT_S: u32 = 1;
/// Lines of the agent's log shown when it misbehaves.
const AGENT_LOG_TAIL_LINES: usize = 20;
const KIB_PER_MIB: f64 = 1024.0;

#[derive(clap::Args)]
pub struct RunTaskBenchArgs {
    /// Measured runs of each side (Berth's RunTask and `docker run`),
    /// interleaved.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// How long the agent is left idle after registering before its memory
    /// is read.
    #[arg(long, default_value_t = 5)]
    idle_seconds: u64,
    /// The region requests are signed for.
    #[arg(long, default_value = crate::DEFAULT_REGION)]
    region: String,
}

pub async fn run(args: RunTaskBenchArgs) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    tokio::task::spawn_blocking(ensure_test_image)
        .await
        .context("building the test image panicked")?
        .map_err(|message| anyhow::anyhow!("cannot provide the image {TEST_IMAGE}: {message}"))?;

    let (target, server) = start_in_process(
        &args.region,
        InProcessOptions {
            agent_sessions: true,
            ..Default::default()
        },
    )
    .await?;
    let target = Arc::new(target);
    let mut client = Client::new(Arc::clone(&target));
    let (_, task_definition_arn) =
        create_cluster_and_register(&mut client, CLUSTER_NAME, &task_definition_body()).await?;

    let mut agent = AgentProcess::spawn(&server.endpoint_url, &target)?;
    println!(
        "berth bench run-task: {} runs of each side, interleaved; image {TEST_IMAGE}; control plane {}; agent pid {}",
        args.runs,
        server.endpoint_url,
        agent.pid()
    );
    let measured = measure(&mut client, &mut agent, &task_definition_arn, &args).await;

    let agent_exit = agent.stop().await;
    let removed = remove_leftover_containers().await;
    server.stop().await;
    let measured = measured?;
    match agent_exit {
        Ok(status) if status.success() => {}
        Ok(status) => println!("note: the agent exited with {status}"),
        Err(err) => println!("note: stopping the agent: {err:#}"),
    }
    if let Err(err) = removed {
        println!("note: removing the bench's containers: {err:#}");
    }

    let report = Report::new(&measured);
    report.print(&measured, args.idle_seconds);
    println!("{}", report.json(args.runs));
    Ok(())
}

/// What one bench run measured.
struct Measured {
    /// RunTask → DescribeTasks shows RUNNING, one per run.
    run_task_latencies_us: Vec<u64>,
    /// `docker run -d` until the CLI exits, one per run.
    docker_run_latencies_us: Vec<u64>,
    agent_idle: ProcessMemory,
    agent_after_runs: ProcessMemory,
}

/// Everything between the agent's start and its stop; the caller cleans up
/// whatever the outcome.
async fn measure(
    client: &mut Client,
    agent: &mut AgentProcess,
    task_definition_arn: &str,
    args: &RunTaskBenchArgs,
) -> Result<Measured> {
    wait_for_registration(client, agent).await?;
    tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
    let agent_idle = agent.memory()?;
    println!(
        "agent idle ({} s after registering): VmRSS {:.2} MiB, VmHWM {:.2} MiB",
        args.idle_seconds,
        agent_idle.rss_mib(),
        agent_idle.peak_rss_mib()
    );

    // Warm-up, not counted: the first task pays for caches on both sides.
    run_task_once(client, agent, task_definition_arn).await?;
    docker_run_once().await?;

    let mut run_task_latencies_us = Vec::with_capacity(args.runs);
    let mut docker_run_latencies_us = Vec::with_capacity(args.runs);
    for index in 0..args.runs {
        let (run_task, docker_run) = if index % 2 == 0 {
            let run_task = run_task_once(client, agent, task_definition_arn).await?;
            (run_task, docker_run_once().await?)
        } else {
            let docker_run = docker_run_once().await?;
            (
                run_task_once(client, agent, task_definition_arn).await?,
                docker_run,
            )
        };
        println!(
            "  run {:>3}: RunTask → RUNNING {:>8.2} ms, docker run {:>8.2} ms",
            index + 1,
            millis(run_task),
            millis(docker_run)
        );
        run_task_latencies_us.push(run_task);
        docker_run_latencies_us.push(docker_run);
    }
    let agent_after_runs = agent.memory()?;
    Ok(Measured {
        run_task_latencies_us,
        docker_run_latencies_us,
        agent_idle,
        agent_after_runs,
    })
}

/// Waits until ListContainerInstances shows the agent's instance.
pub(crate) async fn wait_for_registration(
    client: &mut Client,
    agent: &mut AgentProcess,
) -> Result<()> {
    let started = clock::monotonic_now();
    loop {
        let listed = client
            .call_ok(
                "ListContainerInstances",
                &json!({ "cluster": CLUSTER_NAME }),
            )
            .await?;
        let registered = listed["containerInstanceArns"]
            .as_array()
            .is_some_and(|arns| !arns.is_empty());
        if registered {
            println!(
                "agent registered in {:.2} s",
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        agent.check_running()?;
        if started.elapsed() > REGISTRATION_TIMEOUT {
            bail!(
                "the agent did not register within {} s; its log ends:\n{}",
                REGISTRATION_TIMEOUT.as_secs(),
                agent.log_tail()
            );
        }
        tokio::time::sleep(REGISTRATION_POLL_INTERVAL).await;
    }
}

/// One task: the microseconds from sending RunTask to the DescribeTasks
/// answer that shows it RUNNING. Then stops it and waits for STOPPED.
async fn run_task_once(
    client: &mut Client,
    agent: &mut AgentProcess,
    task_definition_arn: &str,
) -> Result<u64> {
    let sent_at = clock::monotonic_now();
    let response = client
        .call_ok("RunTask", &run_task_body(task_definition_arn))
        .await?;
    let task_arn = placed_task_arn(&response)?;
    let latency_us = loop {
        let described = client
            .call_ok("DescribeTasks", &describe_tasks_body(&task_arn))
            .await?;
        let observed_at = clock::monotonic_now();
        match task_status(&described) {
            Some(TaskStatus::Running) => break micros(observed_at.duration_since(sent_at)),
            Some(TaskStatus::Stopped { reason }) => bail!(
                "task {task_arn} stopped before RUNNING: {}; the agent's log ends:\n{}",
                reason.unwrap_or_else(|| "no stoppedReason".to_string()),
                agent.log_tail()
            ),
            Some(TaskStatus::Other(_)) => {}
            None => bail!("DescribeTasks did not return task {task_arn}: {described}"),
        }
        if observed_at.duration_since(sent_at) > RUNNING_TIMEOUT {
            agent.check_running()?;
            bail!(
                "task {task_arn} was not RUNNING within {} s; the agent's log ends:\n{}",
                RUNNING_TIMEOUT.as_secs(),
                agent.log_tail()
            );
        }
        tokio::time::sleep(RUNNING_POLL_INTERVAL).await;
    };

    client
        .call_ok("StopTask", &stop_task_body(&task_arn))
        .await?;
    let stop_sent_at = clock::monotonic_now();
    loop {
        let described = client
            .call_ok("DescribeTasks", &describe_tasks_body(&task_arn))
            .await?;
        if let Some(TaskStatus::Stopped { .. }) = task_status(&described) {
            break;
        }
        if stop_sent_at.elapsed() > STOPPED_TIMEOUT {
            bail!(
                "task {task_arn} was not STOPPED within {} s of StopTask; the agent's log ends:\n{}",
                STOPPED_TIMEOUT.as_secs(),
                agent.log_tail()
            );
        }
        tokio::time::sleep(STOPPED_POLL_INTERVAL).await;
    }
    Ok(latency_us)
}

/// One `docker run -d --rm`: the microseconds until the CLI exits. Then
/// removes the container.
async fn docker_run_once() -> Result<u64> {
    blocking(|| {
        let label = format!("{DOCKER_RUN_LABEL}={}", std::process::id());
        let started = clock::monotonic_now();
        let output = Command::new("docker")
            .args([
                "run", "-d", "--rm", "--label", &label, TEST_IMAGE, "sleep", "300",
            ])
            .stdin(Stdio::null())
            .output()
            .context("cannot run the docker CLI")?;
        let latency_us = micros(started.elapsed());
        if !output.status.success() {
            bail!("docker run failed: {}", stderr_excerpt(&output));
        }
        let container_id = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let removed = docker(&["rm", "-f", &container_id])?;
        if !removed.status.success() {
            bail!(
                "docker rm -f {container_id} failed: {}",
                stderr_excerpt(&removed)
            );
        }
        Ok(latency_us)
    })
    .await
}

/// Removes the containers the agent ran for cluster `bench-latency` and the
/// bench's own `docker run` containers.
async fn remove_leftover_containers() -> Result<()> {
    blocking(|| {
        let filters = [
            format!("label={CLUSTER_LABEL}={CLUSTER_NAME}"),
            format!("label={DOCKER_RUN_LABEL}={}", std::process::id()),
        ];
        for filter in filters {
            remove_containers(&filter)?;
        }
        Ok(())
    })
    .await
}

/// A `berth agent` child process and its log file.
pub(crate) struct AgentProcess {
    child: Child,
    log_path: PathBuf,
    // Holds the agent's state file and log; removed when the bench ends.
    _data_dir: tempfile::TempDir,
}

impl AgentProcess {
    /// Starts this executable as `berth agent` for cluster `bench-latency`,
    /// with the in-process server's account key as its credentials.
    pub(crate) fn spawn(endpoint_url: &str, target: &Target) -> Result<AgentProcess> {
        let data_dir = tempfile::Builder::new()
            .prefix("berth-bench-agent-")
            .tempdir()
            .context("cannot create a temporary directory for the agent")?;
        let log_path = data_dir.path().join("agent.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let executable = std::env::current_exe().context("cannot find this executable")?;
        let stop_timeout = AGENT_CONTAINER_STOP_TIMEOUT_S.to_string();
        let child = Command::new(&executable)
            .arg("agent")
            .args(["--cluster", CLUSTER_NAME])
            .args(["--endpoint", endpoint_url])
            .arg("--data-dir")
            .arg(data_dir.path().join("state"))
            .args(["--container-stop-timeout", &stop_timeout])
            .env("AWS_ACCESS_KEY_ID", &target.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &target.secret_access_key)
            .env("AWS_REGION", &target.region)
            .env("AWS_DEFAULT_REGION", &target.region)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} agent", executable.display()))?;
        Ok(AgentProcess {
            child,
            log_path,
            _data_dir: data_dir,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error (with the end of its log) if the agent has exited.
    fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "the agent exited ({status}); its log ends:\n{}",
                self.log_tail()
            ),
        }
    }

    fn memory(&mut self) -> Result<ProcessMemory> {
        self.check_running()?;
        let path = format!("/proc/{}/status", self.pid());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        ProcessMemory::parse(&status).with_context(|| format!("{path} has no VmRSS or VmHWM"))
    }

    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.log_path, AGENT_LOG_TAIL_LINES)
    }

    /// SIGTERM, then up to [`AGENT_EXIT_TIMEOUT`] for it to exit, then
    /// SIGKILL.
    pub(crate) async fn stop(&mut self) -> Result<std::process::ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let pid = self.pid().to_string();
        let signalled = Command::new("kill")
            .args(["-TERM", &pid])
            .output()
            .context("cannot run kill")?;
        if signalled.status.success() {
            let asked_at = clock::monotonic_now();
            while asked_at.elapsed() < AGENT_EXIT_TIMEOUT {
                if let Some(status) = self.child.try_wait()? {
                    return Ok(status);
                }
                tokio::time::sleep(AGENT_EXIT_POLL_INTERVAL).await;
            }
            println!(
                "note: the agent did not exit within {} s of SIGTERM; killing it",
                AGENT_EXIT_TIMEOUT.as_secs()
            );
        }
        self.child.kill().context("cannot kill the agent")?;
        Ok(self.child.wait()?)
    }
}

impl Drop for AgentProcess {
    /// Never leaves the agent behind, even when the bench fails early.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `lines` lines of the file at `path`.
fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => last_lines(&text, lines),
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}

fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A process's resident memory, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ProcessMemory {
    /// VmRSS: resident now.
    rss_kib: u64,
    /// VmHWM: the most it has been resident.
    peak_rss_kib: u64,
}

impl ProcessMemory {
    fn parse(status: &str) -> Option<ProcessMemory> {
        let field_kib = |name: &str| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(name)?.strip_prefix(':')?.trim();
                value.strip_suffix("kB")?.trim().parse::<u64>().ok()
            })
        };
        Some(ProcessMemory {
            rss_kib: field_kib("VmRSS")?,
            peak_rss_kib: field_kib("VmHWM")?,
        })
    }

    fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / KIB_PER_MIB
    }

    fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / KIB_PER_MIB
    }
}

fn task_definition_body() -> Value {
    json!({
        "family": FAMILY,
        "containerDefinitions": [{
            "name": CONTAINER_NAME,
            "image": TEST_IMAGE,
            "memory": CONTAINER_MEMORY_MIB,
            "essential": true,
            "command": ["sleep", "300"]
        }]
    })
}

fn run_task_body(task_definition_arn: &str) -> Value {
    json!({
        "cluster": CLUSTER_NAME,
        "taskDefinition": task_definition_arn,
        "count": 1,
        "startedBy": "berth-bench",
    })
}

fn describe_tasks_body(task_arn: &str) -> Value {
    json!({ "cluster": CLUSTER_NAME, "tasks": [task_arn] })
}

fn stop_task_body(task_arn: &str) -> Value {
    json!({ "cluster": CLUSTER_NAME, "task": task_arn, "reason": "berth bench run-task" })
}

/// The one task a RunTask placed, or an error naming why none was.
fn placed_task_arn(response: &Value) -> Result<String> {
    if let Some(arn) = response["tasks"][0]["taskArn"].as_str() {
        return Ok(arn.to_string());
    }
    match response["failures"].as_array().and_then(|f| f.first()) {
        Some(failure) => bail!(
            "RunTask placed no task: {}: {} (is the agent connected?)",
            failure["arn"].as_str().unwrap_or("-"),
            failure["reason"].as_str().unwrap_or("no reason")
        ),
        None => bail!("RunTask answered with neither tasks nor failures: {response}"),
    }
}

#[derive(Debug, PartialEq)]
enum TaskStatus {
    Running,
    Stopped { reason: Option<String> },
    Other(String),
}

/// The `lastStatus` of the first task in a DescribeTasks answer.
fn task_status(response: &Value) -> Option<TaskStatus> {
    let task = &response["tasks"][0];
    let last_status = task["lastStatus"].as_str()?;
    Some(match last_status {
        "RUNNING" => TaskStatus::Running,
        "STOPPED" => TaskStatus::Stopped {
            reason: task["stoppedReason"].as_str().map(str::to_string),
        },
        other => TaskStatus::Other(other.to_string()),
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct LatencyFigures {
    median_ms: f64,
    p90_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

impl LatencyFigures {
    fn new(latencies_us: &[u64]) -> LatencyFigures {
        let mut sorted = latencies_us.to_vec();
        sorted.sort_unstable();
        let to_ms = |us: u64| us as f64 / 1000.0;
        LatencyFigures {
            median_ms: median_us(&sorted) / 1000.0,
            p90_ms: to_ms(percentile(&sorted, 0.90)),
            min_ms: to_ms(sorted.first().copied().unwrap_or(0)),
            max_ms: to_ms(sorted.last().copied().unwrap_or(0)),
        }
    }
}

/// The figures of a bench run.
#[derive(Debug, PartialEq)]
struct Report {
    run_task: LatencyFigures,
    docker_run: LatencyFigures,
    /// Berth's median over Docker's (0 when Docker's is 0).
    ratio: f64,
    agent_idle_rss_mib: f64,
    /// VmHWM after the runs: the most the agent was ever resident.
    agent_peak_rss_mib: f64,
    agent_rss_after_runs_mib: f64,
}

impl Report {
    fn new(measured: &Measured) -> Report {
        let run_task = LatencyFigures::new(&measured.run_task_latencies_us);
        let docker_run = LatencyFigures::new(&measured.docker_run_latencies_us);
        Report {
            run_task,
            docker_run,
            ratio: if docker_run.median_ms > 0.0 {
                run_task.median_ms / docker_run.median_ms
            } else {
                0.0
            },
            agent_idle_rss_mib: measured.agent_idle.rss_mib(),
            agent_peak_rss_mib: measured.agent_after_runs.peak_rss_mib(),
            agent_rss_after_runs_mib: measured.agent_after_runs.rss_mib(),
        }
    }

    fn print(&self, measured: &Measured, idle_seconds: u64) {
        let line = |name: &str, figures: &LatencyFigures| {
            println!(
                "{name}: median {:.2} ms, p90 {:.2} ms, min {:.2} ms, max {:.2} ms",
                figures.median_ms, figures.p90_ms, figures.min_ms, figures.max_ms
            );
        };
        line(
            &format!(
                "RunTask → RUNNING (real agent; DescribeTasks every {} ms)",
                RUNNING_POLL_INTERVAL.as_millis()
            ),
            &self.run_task,
        );
        line("docker run -d (until the CLI exits)", &self.docker_run);
        println!(
            "ratio of medians (Berth / docker run): {:.3} over {} runs",
            self.ratio,
            measured.run_task_latencies_us.len()
        );
        println!(
            "agent resident memory: idle {:.2} MiB (VmRSS {idle_seconds} s after registering); after the runs {:.2} MiB; peak {:.2} MiB (VmHWM)",
            self.agent_idle_rss_mib, self.agent_rss_after_runs_mib, self.agent_peak_rss_mib
        );
    }

    fn json(&self, runs: usize) -> Value {
        json!({
            "bench": "run-task",
            "run_task_to_running_median_ms": round3(self.run_task.median_ms),
            "run_task_to_running_p90_ms": round3(self.run_task.p90_ms),
            "docker_run_median_ms": round3(self.docker_run.median_ms),
            "docker_run_p90_ms": round3(self.docker_run.p90_ms),
            "ratio": round3(self.ratio),
            "agent_idle_rss_mib": round3(self.agent_idle_rss_mib),
            "agent_peak_rss_mib": round3(self.agent_peak_rss_mib),
            "agent_rss_after_runs_mib": round3(self.agent_rss_after_runs_mib),
            "runs": runs,
        })
    }
}

/// The median of ascending `sorted`: the mean of the middle two when the
/// count is even (0 when empty).
fn median_us(sorted: &[u64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2] as f64,
        n => (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0,
    }
}

fn millis(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_average_the_middle_two_of_an_even_count() {
        let check = |sorted: &[u64], expected: f64| {
            assert_eq!(median_us(sorted), expected, "{sorted:?}");
        };
        check(&[], 0.0);
        check(&[7], 7.0);
        check(&[1, 2, 3], 2.0);
        check(&[1, 2, 4, 10], 3.0);
    }

    #[test]
    fn process_memory_is_read_from_proc_status() {
        let status = "Name:\tberth\nVmPeak:\t  900000 kB\nVmHWM:\t   12288 kB\nVmRSS:\t    9216 kB\nThreads:\t2\n";
        let memory = ProcessMemory::parse(status).unwrap();
        assert_eq!(
            memory,
            ProcessMemory {
                rss_kib: 9216,
                peak_rss_kib: 12288
            }
        );
        assert_eq!(memory.rss_mib(), 9.0);
        assert_eq!(memory.peak_rss_mib(), 12.0);
        assert_eq!(ProcessMemory::parse("Name:\tzombie\nVmRSS:\t1 kB\n"), None);
    }

    #[test]
    fn this_process_has_a_readable_status() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let memory = ProcessMemory::parse(&status).unwrap();
        assert!(memory.rss_kib > 0);
        assert!(memory.peak_rss_kib >= memory.rss_kib);
    }

    #[test]
    fn task_statuses_come_from_describe_tasks() {
        let check = |response: Value, expected: Option<TaskStatus>| {
            assert_eq!(task_status(&response), expected, "{response}");
        };
        check(
            json!({"tasks": [{"lastStatus": "RUNNING"}]}),
            Some(TaskStatus::Running),
        );
        check(
            json!({"tasks": [{"lastStatus": "PENDING"}]}),
            Some(TaskStatus::Other("PENDING".into())),
        );
        check(
            json!({"tasks": [{"lastStatus": "STOPPED", "stoppedReason": "Essential container in task exited"}]}),
            Some(TaskStatus::Stopped {
                reason: Some("Essential container in task exited".into()),
            }),
        );
        check(
            json!({"tasks": [], "failures": [{"reason": "MISSING"}]}),
            None,
        );
    }

    #[test]
    fn run_task_yields_the_placed_task_or_the_failure() {
        let placed = json!({"tasks": [{"taskArn": "arn:t1"}], "failures": []});
        assert_eq!(placed_task_arn(&placed).unwrap(), "arn:t1");
        let refused =
            json!({"tasks": [], "failures": [{"arn": "arn:ci", "reason": "RESOURCE:MEMORY"}]});
        let message = placed_task_arn(&refused).unwrap_err().to_string();
        assert!(message.contains("RESOURCE:MEMORY"), "{message}");
        assert!(placed_task_arn(&json!({})).is_err());
    }

    #[test]
    fn the_task_definition_is_one_small_sleeping_container() {
        let body = task_definition_body();
        let containers = body["containerDefinitions"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["image"], TEST_IMAGE);
        assert_eq!(containers[0]["memory"], 32);
        assert_eq!(containers[0]["essential"], true);
        assert_eq!(containers[0]["command"], json!(["sleep", "300"]));
    }

    #[test]
    fn reports_compare_medians_and_take_the_peak_after_the_runs() {
        let measured = Measured {
            run_task_latencies_us: vec![110_000, 130_000, 120_000, 500_000],
            docker_run_latencies_us: vec![100_000, 100_000, 100_000, 100_000],
            agent_idle: ProcessMemory {
                rss_kib: 8 * 1024,
                peak_rss_kib: 9 * 1024,
            },
            agent_after_runs: ProcessMemory {
                rss_kib: 10 * 1024,
                peak_rss_kib: 12 * 1024,
            },
        };
        let report = Report::new(&measured);
        assert_eq!(report.run_task.median_ms, 125.0);
        assert_eq!(report.run_task.p90_ms, 500.0);
        assert_eq!(report.run_task.min_ms, 110.0);
        assert_eq!(report.docker_run.median_ms, 100.0);
        assert_eq!(report.ratio, 1.25);
        assert_eq!(report.agent_idle_rss_mib, 8.0);
        assert_eq!(report.agent_peak_rss_mib, 12.0);

        let line = report.json(4);
        assert_eq!(line["run_task_to_running_median_ms"], 125.0);
        assert_eq!(line["docker_run_median_ms"], 100.0);
        assert_eq!(line["ratio"], 1.25);
        assert_eq!(line["agent_idle_rss_mib"], 8.0);
        assert_eq!(line["agent_peak_rss_mib"], 12.0);
        assert_eq!(line["runs"], 4);
    }

    #[test]
    fn log_tails_keep_the_last_lines() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\n", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }
}
