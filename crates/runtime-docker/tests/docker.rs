//! End-to-end tests of `DockerRuntime` against the real Docker daemon.
//!
//! Each test skips (printing `SKIPPED <test>: <reason>`) only when no daemon
//! is reachable; in CI (`CI=true`) or with `BERTH_REQUIRE_DOCKER=1` an
//! unreachable daemon fails instead. Tests use the local image
//! `berth-test/busybox:latest`, built from the host's static busybox when
//! missing, so no registry is needed.
//!
//! Every container and volume a test makes carries its test's name and the
//! process id, and is removed when the test ends, even by panic.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use runtime::{
    ContainerEventAction, ContainerEventStream, ContainerRuntime, ContainerSpec, ContainerState,
    ContainerStatus, ExtraHost, Health, HealthCheck, LogDriver, LogLine, LogLineStream, LogSource,
    Mount, NetworkMode, PortBinding, RuntimeError, Tmpfs, Ulimit, VolumeFrom, VolumeSpec,
};
use runtime_docker::test_support::{build_busybox_image, docker_or_skip, TEST_IMAGE};
use runtime_docker::DockerRuntime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Label every test container carries; the value names the test.
const SCOPE_LABEL: &str = "berth-test.scope";
/// How long to wait for something Docker does asynchronously.
const WAIT_LIMIT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);

macro_rules! docker_or_return {
    ($test:expr) => {
        match docker_or_skip($test).await {
            Some(docker) => docker,
            None => return,
        }
    };
}

/// Names, labels and cleanup for one test's containers and volumes.
struct Scope {
    prefix: String,
    containers: Mutex<Vec<String>>,
    volumes: Mutex<Vec<String>>,
}

impl Scope {
    fn new(test: &str) -> Scope {
        Scope {
            prefix: format!("berth-test-{test}-{}", std::process::id()),
            containers: Mutex::new(Vec::new()),
            volumes: Mutex::new(Vec::new()),
        }
    }

    /// A spec for a test container running `sh -xc script` (the trace in the
    /// logs shows which check failed).
    fn shell(&self, suffix: &str, script: &str) -> ContainerSpec {
        let name = format!("{}-{suffix}", self.prefix);
        self.containers.lock().unwrap().push(name.clone());
        let mut spec = ContainerSpec::new(name, TEST_IMAGE);
        spec.labels.insert(SCOPE_LABEL.into(), self.prefix.clone());
        spec.command = Some(vec!["sh".into(), "-xc".into(), script.into()]);
        spec
    }

    fn volume(&self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.prefix);
        self.volumes.lock().unwrap().push(name.clone());
        name
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let containers = self.containers.get_mut().unwrap();
        if !containers.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "--force", "--volumes"])
                .args(containers.iter())
                .output();
        }
        let volumes = self.volumes.get_mut().unwrap();
        if !volumes.is_empty() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "--force"])
                .args(volumes.iter())
                .output();
        }
    }
}

#[allow(clippy::disallowed_methods)] // Tests measure how long Docker waited.
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// The container's output, for failure messages.
fn logs(name: &str) -> String {
    match Command::new("docker").args(["logs", name]).output() {
        Ok(output) => format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => format!("<docker logs failed: {error}>"),
    }
}

/// `docker inspect` of one field group, for checking what reached Docker.
fn docker_inspect_json(name: &str, template: &str) -> serde_json::Value {
    let output = Command::new("docker")
        .args(["inspect", "--format", template, name])
        .output()
        .expect("docker CLI");
    assert!(output.status.success(), "docker inspect {name} failed");
    serde_json::from_slice(&output.stdout).expect("docker inspect JSON")
}

/// Polls until `ready` holds for the container, panicking after [`WAIT_LIMIT`].
async fn wait_for(
    docker: &DockerRuntime,
    id: &str,
    what: &str,
    ready: impl Fn(&ContainerState) -> bool,
) -> ContainerState {
    let started = now();
    loop {
        let state = docker
            .inspect_container(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("container {id} vanished while waiting until {what}"));
        if ready(&state) {
            return state;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "container {} did not become {what} within {WAIT_LIMIT:?}; last state {state:?}; logs:\n{}",
            state.name,
            logs(&state.name)
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Creates and starts the container; returns its id.
async fn run(docker: &DockerRuntime, spec: &ContainerSpec) -> String {
    let id = docker.create_container(spec).await.unwrap();
    docker.start_container(&id).await.unwrap();
    id
}

/// Runs the container to completion and returns its final state.
async fn run_to_exit(docker: &DockerRuntime, spec: &ContainerSpec) -> ContainerState {
    let id = run(docker, spec).await;
    wait_for(docker, &id, "exited", |state| state.status.has_stopped()).await
}

/// Runs a container whose script checks things and exits 0 when all hold.
async fn assert_script_passes(docker: &DockerRuntime, spec: &ContainerSpec) {
    let state = run_to_exit(docker, spec).await;
    assert_eq!(
        state.exit_code,
        Some(0),
        "script of {} failed; logs:\n{}",
        spec.name,
        logs(&spec.name)
    );
}

/// The next event of the stream, panicking after [`WAIT_LIMIT`].
async fn next_action(events: &mut ContainerEventStream) -> (String, ContainerEventAction) {
    let event = tokio::time::timeout(WAIT_LIMIT, events.next())
        .await
        .expect("an event within the wait limit")
        .expect("the event stream is open")
        .expect("an event, not an error");
    (event.id, event.action)
}

/// Reads events until `wanted` arrives for container `id`, returning every
/// action seen for `id` on the way (inclusive).
async fn actions_until(
    events: &mut ContainerEventStream,
    id: &str,
    wanted: &ContainerEventAction,
) -> Vec<ContainerEventAction> {
    let mut seen = Vec::new();
    loop {
        let (event_id, action) = next_action(events).await;
        if event_id != id {
            continue;
        }
        let done = &action == wanted;
        seen.push(action);
        if done {
            return seen;
        }
    }
}

#[tokio::test]
async fn info_reports_the_daemon() {
    let docker = docker_or_return!("info_reports_the_daemon");
    let info = docker.info().await.unwrap();
    assert!(!info.server_version.is_empty());
    assert_eq!(info.api_version, docker.api_version());
    assert_eq!(info.os, "linux");
    assert!(info.cpus >= 1 && info.memory_bytes > 0, "{info:?}");
}

#[tokio::test]
async fn create_start_inspect_and_stop_after_the_timeout() {
    let docker = docker_or_return!("create_start_inspect_and_stop_after_the_timeout");
    let scope = Scope::new("stop-timeout");
    let mut spec = scope.shell("stubborn", r#"trap "" TERM; sleep 100"#);
    spec.labels
        .insert("com.example.team".into(), "payments".into());
    let id = docker.create_container(&spec).await.unwrap();
    assert_eq!(id.len(), 64, "full container id: {id}");

    let created = docker.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(created.status, ContainerStatus::Created);
    assert_eq!(created.name, spec.name);
    assert_eq!(created.image, TEST_IMAGE);
    assert!(
        created.image_id.starts_with("sha256:"),
        "{}",
        created.image_id
    );
    assert_eq!(created.labels["com.example.team"], "payments");
    assert_eq!((created.started_at_ms, created.exit_code), (None, None));

    docker.start_container(&id).await.unwrap();
    docker.start_container(&spec.name).await.unwrap(); // already running: a no-op
    let running = docker.inspect_container(&spec.name).await.unwrap().unwrap();
    assert_eq!(running.status, ContainerStatus::Running);
    assert!(running.started_at_ms.is_some());
    assert_eq!((running.exit_code, running.finished_at_ms), (None, None));

    let stop_requested = now();
    docker.stop_container(&id, 1).await.unwrap();
    let waited = stop_requested.elapsed();
    let stopped = docker.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(stopped.status, ContainerStatus::Exited);
    assert_eq!(
        stopped.exit_code,
        Some(137),
        "SIGTERM was ignored, so SIGKILL ended it"
    );
    assert!(!stopped.oom_killed);
    // A lower bound only: Docker must have waited the timeout before SIGKILL.
    assert!(
        waited >= Duration::from_millis(900),
        "stop returned after {waited:?}"
    );
    assert!(stopped.finished_at_ms >= stopped.started_at_ms);
}

#[tokio::test]
async fn init_forwards_sigterm_and_is_pid_one() {
    let docker = docker_or_return!("init_forwards_sigterm_and_is_pid_one");
    let scope = Scope::new("init");
    let mut check = scope.shell("pid1", r#"test "$(cat /proc/1/comm)" = docker-init"#);
    check.init = true;
    assert_script_passes(&docker, &check).await;

    let mut sleeper = scope.shell("sleeper", "sleep 100");
    sleeper.init = true;
    let id = run(&docker, &sleeper).await;
    docker.stop_container(&id, 30).await.unwrap();
    let stopped = docker.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(
        stopped.exit_code,
        Some(143),
        "sleep died of the forwarded SIGTERM"
    );
}

#[tokio::test]
async fn exit_code_is_reported() {
    let docker = docker_or_return!("exit_code_is_reported");
    let scope = Scope::new("exit-code");
    let state = run_to_exit(&docker, &scope.shell("seven", "exit 7")).await;
    assert_eq!(state.status, ContainerStatus::Exited);
    assert_eq!(state.exit_code, Some(7));
    assert!(!state.oom_killed);
    assert!(state.finished_at_ms.is_some() && state.finished_at_ms >= state.started_at_ms);
}

#[tokio::test]
async fn memory_limit_oom_kills() {
    let docker = docker_or_return!("memory_limit_oom_kills");
    let scope = Scope::new("oom");
    // One process doubling a string: the OOM killer's only candidate is PID 1.
    // (A `head | tr` pipeline left a killed container hanging in the kernel
    // under load on cgroup v1.)
    let mut spec = scope.shell("hog", "unused");
    // Without -x: tracing would log every doubled string.
    spec.command = Some(vec![
        "sh".into(),
        "-c".into(),
        "x=a; while true; do x=$x$x; done".into(),
    ]);
    spec.memory_limit_mib = Some(16);
    let mut events = docker.events(SCOPE_LABEL, &scope.prefix).await.unwrap();
    let id = run(&docker, &spec).await;
    // Docker may report the OOM a moment after the exit (see
    // `DockerRuntime::inspect_container`), so wait for the flag.
    let state = wait_for(&docker, &id, "OOM-killed", |state| state.oom_killed).await;
    assert_eq!(
        (state.status, state.exit_code),
        (ContainerStatus::Exited, Some(137))
    );
    // The `oom` event may come before or after `die`.
    let died = ContainerEventAction::Die {
        exit_code: Some(137),
    };
    let mut actions = actions_until(&mut events, &id, &died).await;
    if !actions.contains(&ContainerEventAction::Oom) {
        actions.extend(actions_until(&mut events, &id, &ContainerEventAction::Oom).await);
    }
    assert!(actions.contains(&ContainerEventAction::Oom), "{actions:?}");
}

#[tokio::test]
async fn dynamic_host_port_is_reachable() {
    let docker = docker_or_return!("dynamic_host_port_is_reachable");
    let scope = Scope::new("port");
    let mut spec = scope.shell(
        "httpd",
        "mkdir -p /www && echo hello-berth > /www/index.html && httpd -f -p 8080 -h /www",
    );
    spec.port_bindings = vec![PortBinding::dynamic_tcp(8080)];
    let id = run(&docker, &spec).await;
    let state = wait_for(&docker, &id, "bound", |state| {
        !state.port_bindings.is_empty()
    })
    .await;
    let binding = state
        .port_bindings
        .iter()
        .find(|binding| binding.host_ip == "0.0.0.0")
        .unwrap_or_else(|| panic!("an IPv4 binding in {:?}", state.port_bindings));
    assert_eq!(binding.container_port, 8080);
    assert_ne!(binding.host_port, 0);

    let started = now();
    let response = loop {
        let attempt = async {
            let mut stream =
                tokio::net::TcpStream::connect(("127.0.0.1", binding.host_port)).await?;
            stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await?;
            Ok::<String, std::io::Error>(response)
        };
        match attempt.await {
            Ok(response) if response.contains("hello-berth") => break response,
            other => {
                assert!(
                    started.elapsed() < WAIT_LIMIT,
                    "no answer on 127.0.0.1:{}: {other:?}; logs:\n{}",
                    binding.host_port,
                    logs(&spec.name)
                );
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    };
    assert!(response.starts_with("HTTP/1."), "{response}");
}

#[tokio::test]
async fn containers_share_a_network_namespace() {
    let docker = docker_or_return!("containers_share_a_network_namespace");
    let scope = Scope::new("netns");
    let server = scope.shell(
        "pause",
        "mkdir -p /www && echo shared > /www/index.html && httpd -f -p 8080 -h /www",
    );
    let server_id = run(&docker, &server).await;
    let mut client = scope.shell(
        "client",
        "for i in 1 2 3 4 5 6 7 8 9 10; do \
           test \"$(wget -q -O- http://127.0.0.1:8080/)\" = shared && exit 0; sleep 1; \
         done; exit 1",
    );
    client.network_mode = NetworkMode::ContainerOf(server_id);
    assert_script_passes(&docker, &client).await;
}

fn quick_healthcheck(test: &[&str]) -> HealthCheck {
    HealthCheck {
        test: test.iter().map(|part| part.to_string()).collect(),
        interval_s: 1,
        timeout_s: 1,
        start_period_s: 0,
        retries: 1,
    }
}

#[tokio::test]
async fn healthcheck_becomes_healthy_or_unhealthy() {
    let docker = docker_or_return!("healthcheck_becomes_healthy_or_unhealthy");
    let scope = Scope::new("health");
    let mut events = docker.events(SCOPE_LABEL, &scope.prefix).await.unwrap();

    let mut healthy = scope.shell("healthy", "sleep 100");
    healthy.healthcheck = Some(quick_healthcheck(&["CMD", "true"]));
    let healthy_id = run(&docker, &healthy).await;
    let mut unhealthy = scope.shell("unhealthy", "sleep 100");
    unhealthy.healthcheck = Some(quick_healthcheck(&["CMD-SHELL", "exit 1"]));
    let unhealthy_id = run(&docker, &unhealthy).await;

    let starting = docker
        .inspect_container(&healthy_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(starting.health, Some(Health::Starting | Health::Healthy)),
        "{:?}",
        starting.health
    );
    wait_for(&docker, &healthy_id, "healthy", |state| {
        state.health == Some(Health::Healthy)
    })
    .await;
    wait_for(&docker, &unhealthy_id, "unhealthy", |state| {
        state.health == Some(Health::Unhealthy)
    })
    .await;
    let wanted = ContainerEventAction::HealthStatus(Health::Unhealthy);
    let actions = actions_until(&mut events, &unhealthy_id, &wanted).await;
    assert!(
        actions
            .iter()
            .all(|action| !matches!(action, ContainerEventAction::HealthStatus(Health::Healthy))),
        "{actions:?}"
    );

    let plain = run(&docker, &scope.shell("plain", "sleep 100")).await;
    assert_eq!(
        docker
            .inspect_container(&plain)
            .await
            .unwrap()
            .unwrap()
            .health,
        None
    );
}

#[tokio::test]
async fn list_finds_labelled_containers_in_every_state() {
    let docker = docker_or_return!("list_finds_labelled_containers_in_every_state");
    let scope = Scope::new("list");
    let created = docker
        .create_container(&scope.shell("created", "sleep 100"))
        .await
        .unwrap();
    let exited = run_to_exit(&docker, &scope.shell("exited", "exit 2")).await;
    let mut running_spec = scope.shell("running", "sleep 100");
    running_spec
        .labels
        .insert("com.example.role".into(), "web".into());
    let running = run(&docker, &running_spec).await;

    let mut listed = docker
        .list_containers(SCOPE_LABEL, &scope.prefix)
        .await
        .unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let summary: Vec<(String, ContainerStatus, Option<i64>)> = listed
        .iter()
        .map(|state| (state.id.clone(), state.status, state.exit_code))
        .collect();
    assert_eq!(
        summary,
        vec![
            (created, ContainerStatus::Created, None),
            (exited.id, ContainerStatus::Exited, Some(2)),
            (running, ContainerStatus::Running, None),
        ]
    );
    assert_eq!(listed[2].labels["com.example.role"], "web");
    assert!(docker
        .list_containers(SCOPE_LABEL, "no-such-scope")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn events_stream_delivers_the_lifecycle() {
    let docker = docker_or_return!("events_stream_delivers_the_lifecycle");
    let scope = Scope::new("events");
    let mut events = docker.events(SCOPE_LABEL, &scope.prefix).await.unwrap();
    let spec = scope.shell("short", "exit 3");
    let id = run(&docker, &spec).await;
    let actions = actions_until(
        &mut events,
        &id,
        &ContainerEventAction::Die { exit_code: Some(3) },
    )
    .await;
    assert_eq!(
        actions,
        vec![
            ContainerEventAction::Create,
            ContainerEventAction::Start,
            ContainerEventAction::Die { exit_code: Some(3) },
        ]
    );
    docker.remove_container(&id).await.unwrap();
    assert_eq!(
        next_action(&mut events).await,
        (id, ContainerEventAction::Destroy)
    );
}

#[tokio::test]
async fn pull_failure_explains_itself() {
    let docker = docker_or_return!("pull_failure_explains_itself");
    let missing = "berth-test/does-not-exist:1";
    assert!(docker.image_present(TEST_IMAGE).await.unwrap());
    assert!(!docker.image_present(missing).await.unwrap());
    let error = docker.pull_image(missing, None).await.unwrap_err();
    let RuntimeError::ImagePull { image, message } = &error else {
        panic!("expected an ImagePull error, got {error:?}");
    };
    assert_eq!(image, missing);
    assert!(!message.is_empty());
    let text = error.to_string();
    assert!(
        text.contains(missing) && text.contains(message.as_str()),
        "{text}"
    );
    eprintln!("pull failure as users see it: CannotPullContainerError: {message}");

    let scope = Scope::new("pull");
    let mut spec = scope.shell("no-image", "true");
    spec.image = missing.into();
    let error = docker.create_container(&spec).await.unwrap_err();
    assert!(
        matches!(&error, RuntimeError::NotFound { message } if message.contains("No such image")),
        "{error:?}"
    );
}

#[tokio::test]
async fn volumes_and_bind_mounts() {
    let docker = docker_or_return!("volumes_and_bind_mounts");
    let scope = Scope::new("volumes");
    let volume = VolumeSpec {
        name: scope.volume("data"),
        labels: BTreeMap::from([("com.example.purpose".to_string(), "test".to_string())]),
        ..VolumeSpec::default()
    };
    docker.create_volume(&volume).await.unwrap();
    docker.create_volume(&volume).await.unwrap();

    let mount = |read_only| Mount::Volume {
        name: volume.name.clone(),
        target: "/data".into(),
        read_only,
    };
    let mut writer = scope.shell("writer", "echo persisted > /data/file");
    writer.mounts = vec![mount(false)];
    assert_script_passes(&docker, &writer).await;
    let mut reader = scope.shell(
        "reader",
        r#"test "$(cat /data/file)" = persisted && ! touch /data/other 2>/dev/null"#,
    );
    reader.mounts = vec![mount(true)];
    assert_script_passes(&docker, &reader).await;
    let mut borrower = scope.shell(
        "borrower",
        r#"test "$(cat /data/file)" = persisted && ! touch /data/other 2>/dev/null"#,
    );
    borrower.volumes_from = vec![VolumeFrom {
        container: writer.name.clone(),
        read_only: true,
    }];
    assert_script_passes(&docker, &borrower).await;

    let in_use = docker.remove_volume(&volume.name).await.unwrap_err();
    assert!(
        matches!(in_use, RuntimeError::Conflict { .. }),
        "{in_use:?}"
    );

    let host_dir = std::env::temp_dir().join(format!("{}-bind", scope.prefix));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(host_dir.join("input"), "from-host").unwrap();
    let created_by_docker: PathBuf = host_dir.join("made-by-docker");
    let mut binder = scope.shell(
        "binder",
        r#"test "$(cat /host/input)" = from-host && echo from-container > /host/output \
           && ! touch /host-ro/x 2>/dev/null && test -d /fresh"#,
    );
    binder.mounts = vec![
        Mount::Bind {
            source: host_dir.display().to_string(),
            target: "/host".into(),
            read_only: false,
        },
        Mount::Bind {
            source: host_dir.display().to_string(),
            target: "/host-ro".into(),
            read_only: true,
        },
        Mount::Bind {
            source: created_by_docker.display().to_string(),
            target: "/fresh".into(),
            read_only: false,
        },
    ];
    assert_script_passes(&docker, &binder).await;
    assert_eq!(
        std::fs::read_to_string(host_dir.join("output"))
            .unwrap()
            .trim(),
        "from-container"
    );
    assert!(
        created_by_docker.is_dir(),
        "Docker creates a missing bind source"
    );
    std::fs::remove_dir_all(&host_dir).unwrap();

    for name in [&writer.name, &reader.name, &borrower.name] {
        docker.remove_container(name).await.unwrap();
    }
    docker.remove_volume(&volume.name).await.unwrap();
    docker.remove_volume(&volume.name).await.unwrap();
}

#[tokio::test]
async fn env_command_entrypoint_workdir_and_user() {
    let docker = docker_or_return!("env_command_entrypoint_workdir_and_user");
    let scope = Scope::new("process");
    let mut spec = scope.shell("process", "unused");
    spec.entrypoint = Some(vec!["sh".into(), "-c".into()]);
    spec.command = Some(vec![
        r#"test "$GREETING" = "hello world" && test "$EQUALS" = "a=b" && test -z "$EMPTY" \
           && test "$(pwd)" = /work && test "$(id -u):$(id -g)" = 1000:1000"#
            .into(),
    ]);
    spec.env = vec![
        ("GREETING".into(), "hello world".into()),
        ("EQUALS".into(), "a=b".into()),
        ("EMPTY".into(), String::new()),
    ];
    spec.working_dir = Some("/work".into());
    spec.user = Some("1000:1000".into());
    assert_script_passes(&docker, &spec).await;
}

#[tokio::test]
async fn host_settings_ulimits_sysctls_and_capabilities() {
    let docker = docker_or_return!("host_settings_ulimits_sysctls_and_capabilities");
    let scope = Scope::new("settings");
    let mut spec = scope.shell(
        "settings",
        r#"test "$(hostname)" = berth-box \
           && grep -q "^10.1.2.3.db.internal$" /etc/hosts \
           && grep -q "^nameserver 10.9.9.9$" /etc/resolv.conf \
           && grep -q "^search corp.example$" /etc/resolv.conf \
           && test "$(ulimit -n)" = 1024 && test "$(ulimit -Hn)" = 2048 \
           && test "$(cat /proc/sys/net/core/somaxconn)" = 1234 \
           && touch /owned && ! chown 1 /owned 2>/dev/null \
           && grep -q "^shm /dev/shm tmpfs .*size=32768k" /proc/mounts"#,
    );
    spec.hostname = Some("berth-box".into());
    spec.extra_hosts = vec![ExtraHost {
        hostname: "db.internal".into(),
        ip_address: "10.1.2.3".into(),
    }];
    spec.dns_servers = vec!["10.9.9.9".into()];
    spec.dns_search_domains = vec!["corp.example".into()];
    spec.ulimits = vec![Ulimit {
        name: "nofile".into(),
        soft_limit: 1024,
        hard_limit: 2048,
    }];
    spec.sysctls = BTreeMap::from([("net.core.somaxconn".to_string(), "1234".to_string())]);
    spec.cap_drop = vec!["CHOWN".into()];
    spec.shm_size_mib = Some(32);
    assert_script_passes(&docker, &spec).await;
}

#[tokio::test]
async fn readonly_rootfs_with_tmpfs() {
    let docker = docker_or_return!("readonly_rootfs_with_tmpfs");
    let scope = Scope::new("readonly");
    let mut spec = scope.shell(
        "readonly",
        r#"! touch /nope 2>/dev/null && touch /scratch/ok \
           && grep -q "^tmpfs /scratch tmpfs .*noexec.*size=8192k" /proc/mounts"#,
    );
    spec.readonly_rootfs = true;
    spec.tmpfs = vec![Tmpfs {
        container_path: "/scratch".into(),
        size_mib: 8,
        mount_options: vec!["noexec".into()],
    }];
    assert_script_passes(&docker, &spec).await;
}

#[tokio::test]
async fn resource_limits_and_options_reach_docker() {
    let docker = docker_or_return!("resource_limits_and_options_reach_docker");
    let scope = Scope::new("resources");
    let mut spec = scope.shell("limited", "sleep 100");
    spec.cpu_shares = Some(512);
    spec.memory_limit_mib = Some(64);
    spec.memory_reservation_mib = Some(32);
    spec.nano_cpus = Some(500_000_000);
    spec.security_opt = vec!["no-new-privileges".into()];
    spec.log_driver = Some(LogDriver {
        name: "json-file".into(),
        options: BTreeMap::from([("max-size".to_string(), "1m".to_string())]),
    });
    spec.stop_timeout_s = Some(3);
    let id = run(&docker, &spec).await;
    let host = docker_inspect_json(&spec.name, "{{json .HostConfig}}");
    assert_eq!(host["CpuShares"], 512);
    assert_eq!(host["Memory"], 64 * 1024 * 1024);
    assert_eq!(host["MemoryReservation"], 32 * 1024 * 1024);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges"])
    );
    assert_eq!(
        host["LogConfig"],
        serde_json::json!({"Type": "json-file", "Config": {"max-size": "1m"}})
    );
    let config = docker_inspect_json(&spec.name, "{{json .Config}}");
    assert_eq!(config["StopTimeout"], 3);
    assert_eq!(
        docker.inspect_container(&id).await.unwrap().unwrap().status,
        ContainerStatus::Running
    );
}

#[tokio::test]
async fn idempotent_operations_and_conflicts() {
    let docker = docker_or_return!("idempotent_operations_and_conflicts");
    let scope = Scope::new("idempotent");
    let ghost = format!("{}-ghost", scope.prefix);
    docker.stop_container(&ghost, 1).await.unwrap();
    docker.kill_container(&ghost).await.unwrap();
    docker.remove_container(&ghost).await.unwrap();
    assert_eq!(docker.inspect_container(&ghost).await.unwrap(), None);
    let missing = docker.start_container(&ghost).await.unwrap_err();
    assert!(
        matches!(missing, RuntimeError::NotFound { .. }),
        "{missing:?}"
    );
    docker
        .remove_volume(&format!("{}-no-volume", scope.prefix))
        .await
        .unwrap();

    let spec = scope.shell("once", "sleep 100");
    let id = docker.create_container(&spec).await.unwrap();
    let clash = docker.create_container(&spec).await.unwrap_err();
    assert!(
        matches!(&clash, RuntimeError::Conflict { message } if message.contains("already in use")),
        "{clash:?}"
    );
    docker.kill_container(&id).await.unwrap(); // created, not running
    docker.stop_container(&id, 1).await.unwrap();
    docker.start_container(&id).await.unwrap();
    docker.kill_container(&id).await.unwrap();
    let killed = docker.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(
        (killed.status, killed.exit_code),
        (ContainerStatus::Exited, Some(137))
    );
    docker.kill_container(&id).await.unwrap();
    docker.stop_container(&id, 1).await.unwrap();
    docker.remove_container(&id).await.unwrap();
    assert_eq!(docker.inspect_container(&id).await.unwrap(), None);

    let running = run(&docker, &scope.shell("running", "sleep 100")).await;
    docker.remove_container(&running).await.unwrap();
    assert_eq!(docker.inspect_container(&running).await.unwrap(), None);
}

#[tokio::test]
async fn failed_start_reports_the_reason() {
    let docker = docker_or_return!("failed_start_reports_the_reason");
    let scope = Scope::new("bad-start");
    let mut spec = scope.shell("bad", "unused");
    spec.command = Some(vec!["/no/such/program".into()]);
    let id = docker.create_container(&spec).await.unwrap();
    let error = docker.start_container(&id).await.unwrap_err();
    assert!(error.to_string().contains("/no/such/program"), "{error}");
    let state = docker.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(state.status, ContainerStatus::Created);
    assert_eq!(state.exit_code, Some(127));
    assert!(state.error.unwrap().contains("/no/such/program"));
}

#[tokio::test]
async fn unreachable_daemon_is_unavailable() {
    let error = DockerRuntime::connect_to(Some("unix:///nonexistent/docker.sock"))
        .await
        .unwrap_err();
    let RuntimeError::Unavailable { message } = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        message.contains("/nonexistent/docker.sock") && message.contains("dockerd"),
        "{message}"
    );
}

#[tokio::test]
async fn test_image_builds_from_the_host_busybox() {
    let docker = docker_or_return!("test_image_builds_from_the_host_busybox");
    let scope = Scope::new("image-build");
    let tag = format!("berth-test/busybox:build-check-{}", std::process::id());
    build_busybox_image(&tag).unwrap();
    assert!(docker.image_present(&tag).await.unwrap());
    let mut spec = scope.shell("built", "test -x /bin/wget && test \"$PATH\" = /bin");
    spec.image = tag.clone();
    let state = run_to_exit(&docker, &spec).await;
    docker.remove_container(&state.id).await.unwrap();
    let _ = Command::new("docker").args(["rmi", &tag]).output();
    assert_eq!(state.exit_code, Some(0), "logs:\n{}", logs(&spec.name));
}

/// A real manifest digest needs a registry (a pull, or a push), which these
/// tests do not have: `convert`'s unit tests read a recorded answer of a
/// pulled image; here, a locally built image has none, as ECS reports it.
#[tokio::test]
async fn a_locally_built_image_has_no_manifest_digest() {
    let docker = docker_or_return!("a_locally_built_image_has_no_manifest_digest");
    let repo_digests = docker_inspect_image_repo_digests(TEST_IMAGE);
    assert_eq!(
        repo_digests,
        serde_json::json!([]),
        "{TEST_IMAGE} was built here"
    );
    assert_eq!(docker.image_digest(TEST_IMAGE).await, Ok(None));
    // Another spelling of the same Docker Hub name finds the same image.
    assert_eq!(
        docker.image_digest("docker.io/berth-test/busybox").await,
        Ok(None)
    );
    let missing = format!("berth-test/never-built-{}:latest", std::process::id());
    assert!(
        matches!(
            docker.image_digest(&missing).await,
            Err(RuntimeError::NotFound { .. })
        ),
        "a missing image is not found"
    );
}

fn docker_inspect_image_repo_digests(image: &str) -> serde_json::Value {
    let output = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            image,
        ])
        .output()
        .expect("docker CLI");
    assert!(output.status.success(), "docker image inspect {image}");
    serde_json::from_slice(&output.stdout).expect("JSON from docker image inspect")
}

/// Reads the log stream until it ends (or until `stop` says so), panicking
/// if a line takes longer than [`WAIT_LIMIT`].
async fn read_logs(
    stream: &mut LogLineStream,
    stop: impl Fn(&[LogLine]) -> bool,
) -> (Vec<LogLine>, bool) {
    let mut lines = Vec::new();
    while !stop(&lines) {
        match tokio::time::timeout(WAIT_LIMIT, stream.next())
            .await
            .expect("a log line within the wait limit")
        {
            Some(line) => lines.push(line.expect("a log line, not an error")),
            None => return (lines, true),
        }
    }
    (lines, false)
}

/// The texts of one source's lines, long ones shortened to
/// `<first byte>×<length>` so that failures stay readable.
fn texts(lines: &[LogLine], source: LogSource) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line.source == source)
        .map(|line| shorten(&String::from_utf8_lossy(&line.text)))
        .collect()
}

/// Lines as (source, timestamp, shortened text), for readable comparisons.
fn summary(lines: &[LogLine]) -> Vec<(LogSource, i64, String)> {
    lines
        .iter()
        .map(|line| {
            let text = shorten(&String::from_utf8_lossy(&line.text));
            (line.source, line.timestamp_ns, text)
        })
        .collect()
}

fn shorten(text: &str) -> String {
    if text.len() <= 64 {
        return text.to_string();
    }
    let first = text.chars().next().expect("not empty");
    if text.chars().all(|c| c == first) {
        format!("{first}×{}", text.len())
    } else {
        format!("{}…({} bytes)", &text[..32], text.len())
    }
}

fn has_line(lines: &[LogLine], source: LogSource, text: &str) -> bool {
    lines
        .iter()
        .any(|line| line.source == source && line.text == text.as_bytes())
}

/// A container running `sh -c script` (no `-x`: the trace would be output).
fn quiet_shell(scope: &Scope, suffix: &str, script: &str, log_driver: &str) -> ContainerSpec {
    let mut spec = scope.shell(suffix, script);
    spec.command = Some(vec!["sh".into(), "-c".into(), script.into()]);
    spec.log_driver = Some(LogDriver {
        name: log_driver.into(),
        options: BTreeMap::new(),
    });
    spec
}

/// Writes `out N` and `err N` for N in `first..=last`.
fn numbered(first: u32, last: u32) -> String {
    format!(
        "i={first}; while [ $i -le {last} ]; do echo \"out $i\"; echo \"err $i\" >&2; \
         i=$((i+1)); done"
    )
}

#[tokio::test]
async fn follow_logs_reads_every_line_in_order_until_exit() {
    let docker = docker_or_return!("follow_logs_reads_every_line_in_order_until_exit");
    let scope = Scope::new("logs");
    // Part one, a pause until the test says go (so following starts
    // mid-output), part two with long lines, and a last line without newline.
    let script = format!(
        "{}; while [ ! -e /go ]; do sleep 0.05; done; {}; \
         head -c 40000 /dev/zero | tr '\\0' L; echo; \
         head -c 20000 /dev/zero | tr '\\0' E >&2; echo >&2; \
         printf 'carriage\\r\\n'; printf 'no newline'",
        numbered(1, 10),
        numbered(11, 20)
    );
    let mut expected_stdout: Vec<String> = (1..=20).map(|n| format!("out {n}")).collect();
    expected_stdout.extend(["L×40000".into(), "carriage\r".into(), "no newline".into()]);
    let mut expected_stderr: Vec<String> = (1..=20).map(|n| format!("err {n}")).collect();
    expected_stderr.push("E×20000".into());

    for driver in ["json-file", "local"] {
        let spec = quiet_shell(&scope, driver, &script, driver);
        let id = run(&docker, &spec).await;
        let mut from_start = docker.follow_logs(&id, 0).await.unwrap();
        let (part_one, ended) = read_logs(&mut from_start, |lines| {
            has_line(lines, LogSource::Stdout, "out 10")
                && has_line(lines, LogSource::Stderr, "err 10")
        })
        .await;
        assert!(!ended, "{driver}: the stream follows a running container");
        let since = part_one
            .iter()
            .find(|line| line.text == b"out 5")
            .expect("out 5 came before out 10")
            .timestamp_ns;
        let mut from_since = docker.follow_logs(&spec.name, since).await.unwrap();
        let touched = Command::new("docker")
            .args(["exec", &id, "touch", "/go"])
            .output()
            .expect("docker exec");
        assert!(touched.status.success(), "{driver}: docker exec failed");

        let (rest, ended) = read_logs(&mut from_start, |_| false).await;
        assert!(ended);
        let all: Vec<LogLine> = part_one.into_iter().chain(rest).collect();
        let state = docker.inspect_container(&id).await.unwrap().unwrap();
        assert!(
            state.status.has_stopped(),
            "{driver}: the stream ended when the container exited: {state:?}"
        );
        assert_eq!(texts(&all, LogSource::Stdout), expected_stdout, "{driver}");
        assert_eq!(texts(&all, LogSource::Stderr), expected_stderr, "{driver}");
        for source in [LogSource::Stdout, LogSource::Stderr] {
            let stamps: Vec<i64> = all
                .iter()
                .filter(|line| line.source == source)
                .map(|line| line.timestamp_ns)
                .collect();
            assert!(
                stamps.windows(2).all(|pair| pair[0] < pair[1]),
                "{driver}: {source:?} timestamps increase: {stamps:?}"
            );
        }

        let (since_lines, ended) = read_logs(&mut from_since, |_| false).await;
        assert!(ended);
        assert_eq!(
            since_lines.first().map(|line| line.text.clone()),
            Some(b"out 5".to_vec())
        );
        let expected_since: Vec<LogLine> = all
            .iter()
            .filter(|line| line.timestamp_ns >= since)
            .cloned()
            .collect();
        assert_eq!(
            summary(&since_lines),
            summary(&expected_since),
            "{driver}: since is inclusive"
        );
        assert!(since_lines == expected_since, "{driver}: the same bytes");

        // An exited container gives what it wrote and ends.
        let mut again = docker.follow_logs(&id, since).await.unwrap();
        let (again_lines, ended) = read_logs(&mut again, |_| false).await;
        assert!(ended);
        assert_eq!(summary(&again_lines), summary(&expected_since), "{driver}");
    }

    let missing = docker
        .follow_logs(&format!("{}-ghost", scope.prefix), 0)
        .await
        .err()
        .expect("a missing container is an error");
    assert!(
        matches!(missing, RuntimeError::NotFound { .. }),
        "{missing:?}"
    );
}

#[tokio::test]
async fn follow_logs_of_a_tty_container_is_all_stdout() {
    let docker = docker_or_return!("follow_logs_of_a_tty_container_is_all_stdout");
    let scope = Scope::new("logs-tty");
    let script = "echo 'tty 1'; echo 'to stderr' >&2; head -c 40000 /dev/zero | tr '\\0' T; echo; \
                  printf 'no newline'";
    // Not `local`: see the known limit in `log_stream`'s docs (the last
    // piece of a long line runs into the next message with a TTY).
    for driver in ["json-file"] {
        let mut spec = quiet_shell(&scope, driver, script, driver);
        spec.tty = true;
        let id = run(&docker, &spec).await;
        let mut stream = docker.follow_logs(&id, 0).await.unwrap();
        let (lines, ended) = read_logs(&mut stream, |_| false).await;
        assert!(ended);
        assert!(
            lines.iter().all(|line| line.source == LogSource::Stdout),
            "{driver}"
        );
        assert_eq!(
            texts(&lines, LogSource::Stdout),
            vec![
                "tty 1\r".to_string(),
                "to stderr\r".to_string(),
                shorten(&format!("{}\r", "T".repeat(40_000))),
                "no newline".to_string(),
            ],
            "{driver}: the TTY turns \\n into \\r\\n; \\r is kept"
        );
        assert!(
            lines
                .windows(2)
                .all(|pair| pair[0].timestamp_ns < pair[1].timestamp_ns),
            "{driver}: timestamps increase"
        );
    }
}

#[tokio::test]
async fn stats_of_a_busy_container_show_one_core() {
    let docker = docker_or_return!("stats_of_a_busy_container_show_one_core");
    let scope = Scope::new("stats");
    let mut spec = scope.shell("burn", "unused");
    // Without -x: tracing would log every turn of the loop.
    spec.command = Some(vec!["sh".into(), "-c".into(), "while :; do :; done".into()]);
    spec.memory_limit_mib = Some(64);
    let id = run(&docker, &spec).await;
    wait_for(&docker, &id, "running", |state| state.status.is_running()).await;

    let asked = now();
    let first = docker.container_stats(&id).await.unwrap().expect("running");
    assert!(
        asked.elapsed() < Duration::from_millis(900),
        "one-shot stats answer at once, not after Docker's one-second sample; took {:?}",
        asked.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = docker.container_stats(&id).await.unwrap().expect("running");
    let elapsed_ns = second.read_at_ns - first.read_at_ns;
    assert!(
        elapsed_ns >= 900_000_000,
        "read times a second apart: {first:?} {second:?}"
    );
    let cores = (second.cpu_used_ns - first.cpu_used_ns) as f64 / elapsed_ns as f64;
    // Straight to stderr so the figure shows with --nocapture.
    eprintln!("busy loop used {cores:.3} cores over {elapsed_ns} ns");
    // One core, give or take what other work on a shared machine takes away.
    assert!(
        (0.6..=1.1).contains(&cores),
        "a busy loop uses about one core, not {cores:.3}: {first:?} {second:?}"
    );
    assert_eq!(second.memory_limit_bytes, 64 * 1024 * 1024);
    assert!(
        second.memory_used_bytes > 0 && second.memory_used_bytes < second.memory_limit_bytes,
        "{second:?}"
    );
    // Bridge network: eth0 exists (counters may still be zero).
    assert!(second.network_rx_bytes >= first.network_rx_bytes);

    docker.kill_container(&id).await.unwrap();
    wait_for(&docker, &id, "stopped", |state| state.status.has_stopped()).await;
    assert_eq!(docker.container_stats(&id).await.unwrap(), None, "stopped");
    docker.remove_container(&id).await.unwrap();
    assert_eq!(docker.container_stats(&id).await.unwrap(), None, "gone");
}
