//! How long Berth takes to get a container running compared with the Docker
//! CLI: `DockerRuntime::create_container` + `start_container` (what the agent
//! does for RunTask → RUNNING) against `docker run -d` (shelling out), each
//! on `berth-test/busybox:latest` running `sleep 300`.
//!
//! Run with `cargo run --release -p runtime-docker --example run_latency`
//! (optionally followed by the number of runs, default 20). The two are
//! interleaved so daemon warm-up and background load hit both alike;
//! containers are removed outside the timed region.

use std::process::Command;
use std::time::Duration;

use runtime::{ContainerRuntime, ContainerSpec};
use runtime_docker::test_support::{ensure_test_image, TEST_IMAGE};
use runtime_docker::DockerRuntime;

#[allow(clippy::disallowed_methods)] // A benchmark reads the clock.
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn summary(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction).round() as usize];
    println!(
        "{label:<34} median {:>7.1} ms   min {:>7.1} ms   p90 {:>7.1} ms   (n={})",
        at(0.5).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        samples.len()
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 20,
    };
    ensure_test_image()?;
    let docker = DockerRuntime::connect().await?;
    let info = docker.info().await?;
    println!(
        "Docker {} (API {}), {} CPUs; {runs} runs each, image {TEST_IMAGE}",
        info.server_version, info.api_version, info.cpus
    );

    let prefix = format!("berth-latency-{}", std::process::id());
    let mut berth_samples = Vec::with_capacity(runs);
    let mut create_samples = Vec::with_capacity(runs);
    let mut start_samples = Vec::with_capacity(runs);
    let mut cli_samples = Vec::with_capacity(runs);
    for run in 0..runs {
        let mut spec = ContainerSpec::new(format!("{prefix}-api-{run}"), TEST_IMAGE);
        spec.command = Some(vec!["sleep".into(), "300".into()]);
        let started = now();
        let id = docker.create_container(&spec).await?;
        let created = now();
        docker.start_container(&id).await?;
        berth_samples.push(started.elapsed());
        create_samples.push(created - started);
        start_samples.push(created.elapsed());
        docker.remove_container(&id).await?;

        let name = format!("{prefix}-cli-{run}");
        let started = now();
        let output = Command::new("docker")
            .args(["run", "-d", "--name", &name, TEST_IMAGE, "sleep", "300"])
            .output()?;
        cli_samples.push(started.elapsed());
        if !output.status.success() {
            return Err(format!(
                "docker run failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        docker.remove_container(&name).await?;
    }
    summary("DockerRuntime create + start", &mut berth_samples);
    summary("  of which create", &mut create_samples);
    summary("  of which start", &mut start_samples);
    summary("docker run -d (CLI)", &mut cli_samples);
    Ok(())
}
