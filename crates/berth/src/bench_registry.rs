//! `berth bench registry`: Berth's image registry (ECR's `/v2/` front)
//! side by side with CNCF Distribution (Debian's `docker-registry`), on the
//! same images and the same Docker Engine.
//!
//! Each round starts both registries fresh, one after the other (the order
//! alternates between rounds), each a child process over a temporary
//! directory on loopback:
//! - Berth: this executable as `berth server --listen 127.0.0.1:0` with a
//!   temporary data directory; docker logs in with user `AWS` and the
//!   password GetAuthorizationToken issued;
//! - Distribution: `docker-registry serve` with a temporary config (a free
//!   port, the filesystem driver on a temporary directory, no auth).
//!
//! Against each, with a private `DOCKER_CONFIG`:
//! - `docker push` then `docker pull` of a big image: the busybox test image
//!   plus `--big-layers` layers of `--big-layer-mib` MiB of random
//!   (incompressible) data. Before the push the image is `docker load`ed
//!   from a tar saved once; before the pull it is removed from the engine
//!   (every tag, so its layers are deleted and the pull transfers them);
//! - `--clients` concurrent HTTP clients (hyper, one connection each)
//!   each fetching every blob of that image (config and layers) once:
//!   wall time and aggregate MB/s (10^6 bytes);
//! - `docker push` then `docker pull` of `--small-images` distinct
//!   single-layer images of a few KiB each, one after the other;
//! - the registry's resident memory (VmRSS, VmHWM from `/proc/<pid>/status`)
//!   right after it is ready and after the runs (idle for a moment).
//!
//! Every figure is printed as min / median over `--rounds`, then one JSON
//! line. Images, temporary directories and child processes are removed even
//! when a step fails.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use rand::rngs::StdRng;
use rand::{RngCore as _, SeedableRng as _};
use runtime_docker::test_support::{ensure_test_image, TEST_IMAGE};
use serde_json::{json, Value};

use crate::bench_support::{connect, excerpt, send, Client, JsonTarget, Target};
use crate::clock;

/// Every image and repository the bench makes has this in its name.
const NAME_MARK: &str = "berth-bench-registry";
const LABEL: &str = "berth.bench-registry=1";
const BIG_SOURCE_TAG: &str = "berth-bench-registry/big:latest";
const BIG_REPOSITORY: &str = "berth-bench-registry-big";
const SMALL_REPOSITORY: &str = "berth-bench-registry-small";
const SMALL_LAYER_BYTES: usize = 4096;
const ECR: JsonTarget = JsonTarget {
    target_prefix: ecr::Ecr::TARGET_PREFIX,
    signing_name: ecr::Ecr::SIGNING_NAME,
};
const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.oci.image.manifest.v1+json";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const READY_POLL_INTERVAL: Duration = Duration::from_millis(50);
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a registry is left alone before its idle memory is read.
const IDLE_SETTLE: Duration = Duration::from_secs(2);
const LOG_TAIL_LINES: usize = 20;
const MIB: usize = 1024 * 1024;

#[derive(clap::Args)]
pub struct RegistryBenchArgs {
    /// Rounds of every figure, on both registries (each round on fresh
    /// registries); min and median are printed.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Random-data layers added to the busybox test image for the big image.
    #[arg(long, default_value_t = 5)]
    big_layers: usize,
    /// MiB of random data in each of those layers.
    #[arg(long, default_value_t = 40)]
    big_layer_mib: usize,
    /// Small single-layer images pushed and pulled one after the other.
    #[arg(long, default_value_t = 50)]
    small_images: usize,
    /// Concurrent HTTP clients each fetching every blob of the big image.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// The region Berth's requests are signed for.
    #[arg(long, default_value = crate::DEFAULT_REGION)]
    region: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Berth,
    Distribution,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Berth => "berth",
            Kind::Distribution => "distribution",
        }
    }
}

pub async fn run(args: RegistryBenchArgs) -> Result<()> {
    ensure!(args.rounds >= 1, "--rounds must be at least 1");
    ensure!(args.big_layers >= 1, "--big-layers must be at least 1");
    ensure!(args.clients >= 1, "--clients must be at least 1");
    ensure!(args.small_images >= 1, "--small-images must be at least 1");
    let Some(registry_binary) = find_in_path("docker-registry") else {
        bail!(
            "CNCF Distribution's `docker-registry` is not installed (not on PATH); install it \
             with `apt-get install -y docker-registry` (Debian/Ubuntu) and run again"
        );
    };
    let work = tempfile::Builder::new()
        .prefix("berth-bench-registry-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let docker = Docker::new(work.path().join("docker-config"))?;
    docker
        .run(&["version", "--format", "{{.Server.Version}}"])
        .context("the Docker Engine is not reachable")?;
    // Whatever happens from here on, the bench's images go with it.
    let _images = ImagesGuard(docker.clone());
    remove_bench_images(&docker)?;
    tokio::task::spawn_blocking(ensure_test_image)
        .await
        .context("building the test image panicked")?
        .map_err(|message| anyhow::anyhow!("cannot provide the image {TEST_IMAGE}: {message}"))?;

    print_header(&args, &docker, &registry_binary);
    let prepared_at = clock::monotonic_now();
    let big_tar = build_big_image(&docker, work.path(), &args)?;
    let small = build_small_images(&docker, work.path(), args.small_images)?;
    println!(
        "images prepared in {:.1} s (not timed below)",
        prepared_at.elapsed().as_secs_f64()
    );

    let mut figures: Vec<(Kind, Figures)> = Vec::new();
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            [Kind::Berth, Kind::Distribution]
        } else {
            [Kind::Distribution, Kind::Berth]
        };
        for kind in order {
            let started = clock::monotonic_now();
            let measured = measure(kind, &registry_binary, &docker, &big_tar, &small, &args)
                .await
                .with_context(|| format!("round {}, {}", round + 1, kind.name()))?;
            println!(
                "round {}: {} done in {:.1} s",
                round + 1,
                kind.name(),
                started.elapsed().as_secs_f64()
            );
            figures.push((kind, measured));
        }
    }
    let report = Report::new(&figures);
    report.print(&args, &figures);
    println!("{}", report.json(&args));
    Ok(())
}

/// One registry's figures in one round.
#[derive(Clone, Debug, Default)]
struct Figures {
    big_push_s: f64,
    big_pull_s: f64,
    /// Bytes of the big image's blobs (config and compressed layers).
    big_blob_bytes: u64,
    big_blobs: usize,
    concurrent_wall_s: f64,
    concurrent_bytes: u64,
    small_push_s: f64,
    small_pull_s: f64,
    start_memory: Memory,
    idle_memory: Memory,
}

impl Figures {
    fn concurrent_mb_per_s(&self) -> f64 {
        self.concurrent_bytes as f64 / 1e6 / self.concurrent_wall_s.max(1e-9)
    }
}

/// A process's resident memory, from `/proc/<pid>/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

impl Memory {
    fn parse(status: &str) -> Option<Memory> {
        let field_kib = |name: &str| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(name)?.strip_prefix(':')?.trim();
                value.strip_suffix("kB")?.trim().parse::<u64>().ok()
            })
        };
        Some(Memory {
            rss_kib: field_kib("VmRSS")?,
            peak_kib: field_kib("VmHWM")?,
        })
    }

    fn of(pid: u32) -> Result<Memory> {
        let path = format!("/proc/{pid}/status");
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        Memory::parse(&status).with_context(|| format!("{path} has no VmRSS or VmHWM"))
    }
}

/// Everything one registry is put through in one round, on a fresh
/// instance that is stopped afterwards whatever the outcome.
async fn measure(
    kind: Kind,
    registry_binary: &Path,
    docker: &Docker,
    big_tar: &Path,
    small: &SmallImages,
    args: &RegistryBenchArgs,
) -> Result<Figures> {
    let mut registry = match kind {
        Kind::Berth => RegistryProcess::start_berth(&args.region).await?,
        Kind::Distribution => RegistryProcess::start_distribution(registry_binary).await?,
    };
    let measured = measure_on(&mut registry, docker, big_tar, small, args).await;
    let cleaned = remove_bench_images(docker);
    let measured = match measured {
        Ok(figures) => figures,
        Err(err) => {
            return Err(err.context(format!(
                "the {} registry's log ends:\n{}",
                kind.name(),
                registry.log_tail()
            )))
        }
    };
    cleaned?;
    registry.stop().await?;
    Ok(measured)
}

async fn measure_on(
    registry: &mut RegistryProcess,
    docker: &Docker,
    big_tar: &Path,
    small: &SmallImages,
    args: &RegistryBenchArgs,
) -> Result<Figures> {
    let mut figures = Figures::default();
    tokio::time::sleep(IDLE_SETTLE).await;
    figures.start_memory = registry.memory()?;
    let host = registry.addr.to_string();
    if let Some(password) = &registry.password {
        docker
            .run_with_stdin(
                &["login", "--username", "AWS", "--password-stdin", &host],
                password.as_bytes(),
            )
            .context("docker login to Berth")?;
    }

    // The big image: load (not timed), push, remove every trace, pull.
    docker.run(&["load", "--quiet", "--input", &big_tar.to_string_lossy()])?;
    let big = format!("{host}/{BIG_REPOSITORY}:latest");
    docker.run(&["tag", BIG_SOURCE_TAG, &big])?;
    figures.big_push_s = timed(|| docker.run(&["push", "--quiet", &big]))?;
    registry.check_running()?;
    remove_bench_images(docker)?;
    figures.big_pull_s = timed(|| docker.run(&["pull", "--quiet", &big]))?;
    remove_bench_images(docker)?;

    // Concurrent blob pulls of the same image, straight over HTTP.
    let (blobs, wall, bytes) = concurrent_pull(
        registry.addr,
        registry.authorization.clone(),
        BIG_REPOSITORY,
        args.clients,
    )
    .await?;
    figures.big_blobs = blobs.len();
    figures.big_blob_bytes = blobs.iter().map(|(_, size)| size).sum();
    figures.concurrent_wall_s = wall.as_secs_f64();
    figures.concurrent_bytes = bytes;

    // The small images, one after the other.
    docker.run(&["load", "--quiet", "--input", &small.tar.to_string_lossy()])?;
    let targets: Vec<String> = (0..small.tags.len())
        .map(|i| format!("{host}/{SMALL_REPOSITORY}:image-{i}"))
        .collect();
    for (source, target) in small.tags.iter().zip(&targets) {
        docker.run(&["tag", source, target])?;
    }
    figures.small_push_s = timed(|| {
        for target in &targets {
            docker.run(&["push", "--quiet", target])?;
        }
        Ok(())
    })?;
    registry.check_running()?;
    remove_bench_images(docker)?;
    figures.small_pull_s = timed(|| {
        for target in &targets {
            docker.run(&["pull", "--quiet", target])?;
        }
        Ok(())
    })?;
    remove_bench_images(docker)?;
    if registry.password.is_some() {
        docker.run(&["logout", &host])?;
    }

    tokio::time::sleep(IDLE_SETTLE).await;
    figures.idle_memory = registry.memory()?;
    Ok(figures)
}

/// Seconds `work` took (it runs on this thread: the docker CLI, blocking).
fn timed<T>(work: impl FnOnce() -> Result<T>) -> Result<f64> {
    let started = clock::monotonic_now();
    work()?;
    Ok(started.elapsed().as_secs_f64())
}

/// `clients` connections each fetching every blob of `repository:latest`
/// (the config first, then the layers, each client starting at a different
/// blob); the blobs, the wall time and the bytes received in all.
async fn concurrent_pull(
    addr: SocketAddr,
    authorization: Option<HeaderValue>,
    repository: &str,
    clients: usize,
) -> Result<(Vec<(String, u64)>, Duration, u64)> {
    let host = HeaderValue::from_str(&addr.to_string())?;
    let request = |path: String, accept: Option<&'static str>| -> Result<Request<Full<Bytes>>> {
        let mut builder = Request::get(path).header(header::HOST, host.clone());
        if let Some(authorization) = &authorization {
            builder = builder.header(header::AUTHORIZATION, authorization.clone());
        }
        if let Some(accept) = accept {
            builder = builder.header(header::ACCEPT, accept);
        }
        Ok(builder.body(Full::new(Bytes::new()))?)
    };
    let mut sender = connect(addr).await?;
    let (status, manifest) = send(
        &mut sender,
        request(
            format!("/v2/{repository}/manifests/latest"),
            Some(MANIFEST_ACCEPT),
        )?,
    )
    .await?;
    if status != StatusCode::OK {
        bail!("GET manifest: HTTP {status}: {}", excerpt(&manifest));
    }
    let blobs = manifest_blobs(&serde_json::from_slice(&manifest)?)?;
    let blobs = Arc::new(blobs);
    let started = clock::monotonic_now();
    let mut pullers = tokio::task::JoinSet::new();
    for client in 0..clients {
        let blobs = Arc::clone(&blobs);
        let requests: Vec<(Request<Full<Bytes>>, u64)> = (0..blobs.len())
            .map(|i| {
                let (digest, size) = &blobs[(client + i) % blobs.len()];
                Ok((
                    request(format!("/v2/{repository}/blobs/{digest}"), None)?,
                    *size,
                ))
            })
            .collect::<Result<_>>()?;
        pullers.spawn(async move {
            let mut sender = connect(addr).await?;
            let mut received = 0u64;
            for (request, size) in requests {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let mut body = response.into_body();
                let mut bytes = 0u64;
                while let Some(frame) = body.frame().await {
                    if let Ok(data) = frame?.into_data() {
                        bytes += data.len() as u64;
                    }
                }
                ensure!(
                    status == StatusCode::OK && bytes == size,
                    "GET blob: HTTP {status}, {bytes} of {size} bytes"
                );
                received += bytes;
            }
            Ok::<u64, anyhow::Error>(received)
        });
    }
    let mut total = 0;
    while let Some(joined) = pullers.join_next().await {
        total += joined.context("a blob puller panicked")??;
    }
    let wall = started.elapsed();
    let blobs = Arc::try_unwrap(blobs).unwrap_or_else(|shared| (*shared).clone());
    Ok((blobs, wall, total))
}

/// The config and layers an image manifest names: digest and size.
fn manifest_blobs(manifest: &Value) -> Result<Vec<(String, u64)>> {
    let blob = |descriptor: &Value| -> Result<(String, u64)> {
        Ok((
            descriptor["digest"]
                .as_str()
                .context("a descriptor without a digest")?
                .to_string(),
            descriptor["size"]
                .as_u64()
                .context("a descriptor without a size")?,
        ))
    };
    let mut blobs = vec![blob(&manifest["config"])?];
    for layer in manifest["layers"]
        .as_array()
        .context("the manifest has no layers")?
    {
        blobs.push(blob(layer)?);
    }
    Ok(blobs)
}

/// The docker CLI with the bench's private `DOCKER_CONFIG`.
#[derive(Clone)]
struct Docker {
    config_dir: PathBuf,
}

impl Docker {
    fn new(config_dir: PathBuf) -> Result<Docker> {
        std::fs::create_dir_all(&config_dir)
            .with_context(|| format!("cannot create {}", config_dir.display()))?;
        std::fs::write(config_dir.join("config.json"), "{}\n")?;
        Ok(Docker { config_dir })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        command
            .args(args)
            .env("DOCKER_CONFIG", &self.config_dir)
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CLI_HINTS", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `docker <args>`; its stdout, or an error with its stderr.
    fn run(&self, args: &[&str]) -> Result<String> {
        self.run_with_stdin(args, &[])
    }

    fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Result<String> {
        let mut child = self
            .command(args)
            .stdin(if input.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .spawn()
            .context("cannot run the docker CLI")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input)?;
        }
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "docker {} failed ({}): {}",
                args.first().copied().unwrap_or_default(),
                output.status,
                excerpt(output.stderr.trim_ascii())
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// Removes every image the bench made, with its layers.
fn remove_bench_images(docker: &Docker) -> Result<()> {
    let listed = docker.run(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}",
    ])?;
    let mut ids: Vec<&str> = listed
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, repository)| repository.contains(NAME_MARK))
        .map(|(id, _)| id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if !ids.is_empty() {
        let mut args = vec!["rmi", "--force"];
        args.extend(ids);
        docker.run(&args)?;
    }
    // Untagged leftovers of the bench's own builds only.
    docker.run(&[
        "image",
        "prune",
        "--force",
        "--filter",
        &format!("label={LABEL}"),
    ])?;
    Ok(())
}

struct ImagesGuard(Docker);

impl Drop for ImagesGuard {
    fn drop(&mut self) {
        if let Err(err) = remove_bench_images(&self.0) {
            eprintln!("note: removing the bench's images: {err:#}");
        }
    }
}

/// Builds the big image from [`TEST_IMAGE`] with random layers, saves it to
/// a tar in `work` and removes it from the engine; the tar.
fn build_big_image(docker: &Docker, work: &Path, args: &RegistryBenchArgs) -> Result<PathBuf> {
    let context = work.join("big-context");
    std::fs::create_dir_all(&context)?;
    let mut dockerfile = format!("FROM {TEST_IMAGE}\nLABEL {LABEL}\n");
    let mut chunk = vec![0u8; MIB];
    let mut rng = StdRng::from_entropy();
    for layer in 0..args.big_layers {
        let path = context.join(format!("layer-{layer}"));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for _ in 0..args.big_layer_mib {
            rng.fill_bytes(&mut chunk);
            file.write_all(&chunk)?;
        }
        file.flush()?;
        writeln!(dockerfile, "COPY layer-{layer} /bench/layer-{layer}")?;
    }
    std::fs::write(context.join("Dockerfile"), dockerfile)?;
    docker
        .run(&[
            "build",
            "--quiet",
            "--tag",
            BIG_SOURCE_TAG,
            &context.to_string_lossy(),
        ])
        .context("building the big image")?;
    std::fs::remove_dir_all(&context)?;
    let tar = work.join("big.tar");
    docker.run(&["save", "--output", &tar.to_string_lossy(), BIG_SOURCE_TAG])?;
    remove_bench_images(docker)?;
    Ok(tar)
}

struct SmallImages {
    tar: PathBuf,
    tags: Vec<String>,
}

/// Imports `count` single-layer images of [`SMALL_LAYER_BYTES`] random
/// bytes each, saves them to one tar in `work` and removes them from the
/// engine.
fn build_small_images(docker: &Docker, work: &Path, count: usize) -> Result<SmallImages> {
    let dir = work.join("small");
    std::fs::create_dir_all(&dir)?;
    let mut rng = StdRng::from_entropy();
    let mut data = vec![0u8; SMALL_LAYER_BYTES];
    let mut tags = Vec::with_capacity(count);
    for i in 0..count {
        let content = dir.join(format!("image-{i}"));
        std::fs::create_dir_all(&content)?;
        rng.fill_bytes(&mut data);
        std::fs::write(content.join("data"), &data)?;
        let layer = dir.join(format!("image-{i}.tar"));
        let tarred = Command::new("tar")
            .arg("-C")
            .arg(&content)
            .arg("-cf")
            .arg(&layer)
            .arg("data")
            .output()
            .context("cannot run tar")?;
        if !tarred.status.success() {
            bail!("tar failed: {}", excerpt(tarred.stderr.trim_ascii()));
        }
        let tag = format!("berth-bench-registry/small:image-{i}");
        docker.run(&[
            "import",
            "--change",
            &format!("LABEL {LABEL}"),
            &layer.to_string_lossy(),
            &tag,
        ])?;
        tags.push(tag);
    }
    std::fs::remove_dir_all(&dir)?;
    let tar = work.join("small.tar");
    let mut args = vec!["save", "--output"];
    let tar_arg = tar.to_string_lossy().into_owned();
    args.push(&tar_arg);
    args.extend(tags.iter().map(String::as_str));
    docker.run(&args)?;
    remove_bench_images(docker)?;
    Ok(SmallImages { tar, tags })
}

/// A registry child process over its own temporary directory.
struct RegistryProcess {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    /// Berth: docker's password (GetAuthorizationToken's).
    password: Option<String>,
    /// Berth: `Basic <token>` for the bench's own HTTP clients.
    authorization: Option<HeaderValue>,
    log_path: PathBuf,
    // Removed when the round ends.
    _dir: tempfile::TempDir,
}

impl RegistryProcess {
    async fn start_berth(region: &str) -> Result<RegistryProcess> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-registry-berth-")
            .tempdir()?;
        let log_path = dir.path().join("berth.log");
        let log = std::fs::File::create(&log_path)?;
        let data_dir = dir.path().join("data");
        let executable = std::env::current_exe().context("cannot find this executable")?;
        let child = Command::new(&executable)
            .arg("server")
            .args(["--listen", "127.0.0.1:0", "--region", region])
            .arg("--data-dir")
            .arg(&data_dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} server", executable.display()))?;
        let mut registry = RegistryProcess {
            kind: Kind::Berth,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            password: None,
            authorization: None,
            log_path,
            _dir: dir,
        };
        let started = clock::monotonic_now();
        registry.addr = loop {
            registry.check_running()?;
            let log = std::fs::read_to_string(&registry.log_path).unwrap_or_default();
            if let Some(addr) = log
                .lines()
                .find_map(|line| line.strip_prefix("berth ready on http://"))
            {
                break addr.trim().parse().context("the ready line's address")?;
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("berth server was not ready within {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        };
        let stored = crate::credentials::read_credentials(&data_dir)?;
        let mut client = Client::new(Arc::new(Target {
            connect_addr: registry.addr,
            host: HeaderValue::from_str(&registry.addr.to_string())?,
            access_key_id: stored.access_key_id,
            secret_access_key: stored.secret_access_key,
            region: region.to_string(),
        }));
        for repository in [BIG_REPOSITORY, SMALL_REPOSITORY] {
            client
                .call_ok_to(
                    ECR,
                    "CreateRepository",
                    &json!({ "repositoryName": repository }),
                )
                .await?;
        }
        let granted = client
            .call_ok_to(ECR, "GetAuthorizationToken", &json!({}))
            .await?;
        let token = granted["authorizationData"][0]["authorizationToken"]
            .as_str()
            .context("GetAuthorizationToken answered without a token")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .context("the authorization token is not base64")?;
        let decoded = String::from_utf8(decoded)?;
        let (user, password) = decoded
            .split_once(':')
            .context("the authorization token is not user:password")?;
        ensure!(user == "AWS", "the token's user is {user:?}, not AWS");
        registry.password = Some(password.to_string());
        registry.authorization = Some(HeaderValue::from_str(&format!("Basic {token}"))?);
        Ok(registry)
    }

    async fn start_distribution(binary: &Path) -> Result<RegistryProcess> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-registry-distribution-")
            .tempdir()?;
        let port = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, distribution_config(&storage, addr))?;
        let log_path = dir.path().join("registry.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut registry = RegistryProcess {
            kind: Kind::Distribution,
            child,
            addr,
            password: None,
            authorization: None,
            log_path,
            _dir: dir,
        };
        let started = clock::monotonic_now();
        loop {
            registry.check_running()?;
            if let Ok(mut sender) = connect(addr).await {
                let request = Request::get("/v2/")
                    .header(header::HOST, addr.to_string())
                    .body(Full::new(Bytes::new()))?;
                if matches!(send(&mut sender, request).await, Ok((StatusCode::OK, _))) {
                    break;
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("docker-registry was not ready within {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
        Ok(registry)
    }

    fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!(
                "the {} registry exited ({status}); its log ends:\n{}",
                self.kind.name(),
                self.log_tail()
            ),
        }
    }

    fn memory(&mut self) -> Result<Memory> {
        self.check_running()?;
        Memory::of(self.child.id())
    }

    fn log_tail(&self) -> String {
        match std::fs::read_to_string(&self.log_path) {
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
            }
            Err(err) => format!("(cannot read {}: {err})", self.log_path.display()),
        }
    }

    /// SIGTERM, up to [`EXIT_TIMEOUT`] to exit, then SIGKILL.
    async fn stop(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let signalled = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .output()
            .context("cannot run kill")?;
        if signalled.status.success() {
            let asked_at = clock::monotonic_now();
            while asked_at.elapsed() < EXIT_TIMEOUT {
                if self.child.try_wait()?.is_some() {
                    return Ok(());
                }
                tokio::time::sleep(READY_POLL_INTERVAL).await;
            }
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for RegistryProcess {
    /// Never leaves the registry behind, even when the bench fails early.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn distribution_config(storage: &Path, addr: SocketAddr) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  cache:\n    blobdescriptor: inmemory\n  \
         filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n",
        storage.display()
    )
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn print_header(args: &RegistryBenchArgs, docker: &Docker, registry_binary: &Path) {
    let first_line = |mut command: Command| {
        command
            .output()
            .ok()
            .map(|output| {
                let text = String::from_utf8_lossy(&output.stdout).into_owned();
                text.lines().next().unwrap_or_default().trim().to_string()
            })
            .unwrap_or_else(|| "unknown".to_string())
    };
    let mut uname = Command::new("uname");
    uname.arg("-srm");
    let mut distribution = Command::new(registry_binary);
    distribution.arg("--version");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0.0, |kib| kib as f64 / (1024.0 * 1024.0));
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let docker_version = docker
        .run(&["version", "--format", "{{.Server.Version}}"])
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    println!(
        "berth bench registry: {} round(s); big image {TEST_IMAGE} + {} layers × {} MiB random; \
         {} small images ({} B random layer each); {} concurrent blob clients",
        args.rounds,
        args.big_layers,
        args.big_layer_mib,
        args.small_images,
        SMALL_LAYER_BYTES,
        args.clients
    );
    println!(
        "machine: {}; {cpu}; {cpus} CPUs; {memory_gib:.1} GiB RAM",
        first_line(uname)
    );
    println!(
        "versions: berth {}; Docker Engine {docker_version}; {} ({})",
        env!("CARGO_PKG_VERSION"),
        first_line(distribution),
        registry_binary.display()
    );
}

/// min and median of one figure on each registry.
struct Row {
    label: &'static str,
    unit: &'static str,
    berth: (f64, f64),
    distribution: (f64, f64),
}

struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn new(figures: &[(Kind, Figures)]) -> Report {
        let stat = |kind: Kind, value: fn(&Figures) -> f64| {
            let mut values: Vec<f64> = figures
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, f)| value(f))
                .collect();
            values.sort_by(f64::total_cmp);
            (values.first().copied().unwrap_or(0.0), median(&values))
        };
        let row = |label, unit, value: fn(&Figures) -> f64| Row {
            label,
            unit,
            berth: stat(Kind::Berth, value),
            distribution: stat(Kind::Distribution, value),
        };
        Report {
            rows: vec![
                row("big image docker push", "s", |f| f.big_push_s),
                row("big image docker pull", "s", |f| f.big_pull_s),
                row("concurrent blob pulls, wall", "s", |f| f.concurrent_wall_s),
                row("concurrent blob pulls, aggregate", "MB/s", |f| {
                    f.concurrent_mb_per_s()
                }),
                row("small images docker push, all", "s", |f| f.small_push_s),
                row("small images docker pull, all", "s", |f| f.small_pull_s),
                row("RSS right after start", "MiB", |f| {
                    f.start_memory.rss_kib as f64 / 1024.0
                }),
                row("RSS idle after the runs", "MiB", |f| {
                    f.idle_memory.rss_kib as f64 / 1024.0
                }),
                row("peak RSS (VmHWM) after the runs", "MiB", |f| {
                    f.idle_memory.peak_kib as f64 / 1024.0
                }),
            ],
        }
    }

    fn print(&self, args: &RegistryBenchArgs, figures: &[(Kind, Figures)]) {
        if let Some((_, first)) = figures.first() {
            println!(
                "big image: {} blobs, {:.1} MB as pushed (gzipped layers + config); each of {} \
                 clients fetches all of them",
                first.big_blobs,
                first.big_blob_bytes as f64 / 1e6,
                args.clients
            );
        }
        println!(
            "{:<36} {:>6}  {:>20}  {:>20}  {:>12}",
            "figure", "unit", "berth min / median", "distrib. min / median", "berth/distr."
        );
        for row in &self.rows {
            let ratio = if row.distribution.1 > 0.0 {
                format!("{:.2}", row.berth.1 / row.distribution.1)
            } else {
                "-".to_string()
            };
            println!(
                "{:<36} {:>6}  {:>9.2} / {:>8.2}  {:>9.2} / {:>8.2}  {:>12}",
                row.label,
                row.unit,
                row.berth.0,
                row.berth.1,
                row.distribution.0,
                row.distribution.1,
                ratio
            );
        }
        println!(
            "(ratio: median over median; for MB/s higher is better, for the rest lower is better; \
             small images: {} pushed or pulled one after the other, per image = total / {})",
            args.small_images, args.small_images
        );
    }

    fn json(&self, args: &RegistryBenchArgs) -> Value {
        let mut figures = serde_json::Map::new();
        figures.insert("bench".into(), json!("registry"));
        figures.insert("rounds".into(), json!(args.rounds));
        for row in &self.rows {
            let key = row
                .label
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
                .split('_')
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("_")
                .to_lowercase();
            let unit = row.unit.replace('/', "_per_").to_lowercase();
            figures.insert(
                format!("berth_{key}_{unit}_median"),
                json!(crate::bench_support::round3(row.berth.1)),
            );
            figures.insert(
                format!("distribution_{key}_{unit}_median"),
                json!(crate::bench_support::round3(row.distribution.1)),
            );
        }
        Value::Object(figures)
    }
}

/// The median of ascending `sorted` (the mean of the middle two of an even
/// count; 0 when empty).
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_average_the_middle_two() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0]), 3.0);
        assert_eq!(median(&[1.0, 2.0, 10.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), 2.5);
    }

    #[test]
    fn memory_is_read_from_proc_status() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(
            Memory::parse(status),
            Some(Memory {
                rss_kib: 1024,
                peak_kib: 2048
            })
        );
        assert_eq!(Memory::parse("Name:\tx\n"), None);
        assert!(Memory::of(std::process::id()).unwrap().rss_kib > 0);
    }

    #[test]
    fn manifests_name_their_config_and_layers() {
        let manifest = json!({
            "schemaVersion": 2,
            "config": {"digest": "sha256:c", "size": 10},
            "layers": [{"digest": "sha256:a", "size": 1}, {"digest": "sha256:b", "size": 2}]
        });
        assert_eq!(
            manifest_blobs(&manifest).unwrap(),
            vec![
                ("sha256:c".to_string(), 10),
                ("sha256:a".to_string(), 1),
                ("sha256:b".to_string(), 2)
            ]
        );
        assert!(manifest_blobs(&json!({"config": {}})).is_err());
    }

    #[test]
    fn the_distribution_config_uses_the_filesystem_driver_on_loopback() {
        let config = distribution_config(
            Path::new("/tmp/x"),
            SocketAddr::from(([127, 0, 0, 1], 5001)),
        );
        assert!(config.contains("rootdirectory: /tmp/x"), "{config}");
        assert!(config.contains("addr: 127.0.0.1:5001"), "{config}");
    }
}
