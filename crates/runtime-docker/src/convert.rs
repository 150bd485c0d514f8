//! Pure translation between the runtime seam's values and Docker Engine API
//! JSON. No I/O here, so every mapping is unit-tested without a daemon.

use std::collections::BTreeMap;

use runtime::{
    ActualBinding, ContainerEvent, ContainerEventAction, ContainerSpec, ContainerState,
    ContainerStats, ContainerStatus, DevicePermission, Health, ImageReference, Mount, NetworkMode,
    Protocol, RegistryAuth, RuntimeError, RuntimeInfo, VolumeSpec,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::rfc3339::{parse_rfc3339_ms, parse_rfc3339_ns};

const BYTES_PER_MIB: u64 = 1024 * 1024;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The event actions [`parse_event`] understands; used as the server-side
/// `event` filter so healthcheck `exec_*` noise never crosses the socket.
pub const WATCHED_EVENT_ACTIONS: &[&str] = &[
    "create",
    "start",
    "die",
    "oom",
    "kill",
    "stop",
    "pause",
    "unpause",
    "restart",
    "health_status",
    "destroy",
];

/// `8080/tcp`: Docker's key for a container port.
fn port_key(container_port: u16, protocol: Protocol) -> String {
    format!("{container_port}/{protocol}")
}

fn strings(values: &[String]) -> Value {
    Value::from(values.to_vec())
}

fn string_map(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(key, value)| (key.clone(), Value::from(value.clone())))
            .collect(),
    )
}

fn seconds_to_nanos(seconds: u32) -> u64 {
    u64::from(seconds) * NANOS_PER_SECOND
}

/// The body of `POST /containers/create` for `spec` (the name goes in the
/// query string). Empty and unset fields are left out so Docker applies its
/// defaults.
pub fn create_container_body(spec: &ContainerSpec) -> Value {
    let mut config = Map::new();
    config.insert("Image".into(), Value::from(spec.image.clone()));
    if !spec.labels.is_empty() {
        config.insert("Labels".into(), string_map(&spec.labels));
    }
    if let Some(entrypoint) = &spec.entrypoint {
        config.insert("Entrypoint".into(), strings(entrypoint));
    }
    if let Some(command) = &spec.command {
        config.insert("Cmd".into(), strings(command));
    }
    if !spec.env.is_empty() {
        let env: Vec<String> = spec
            .env
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        config.insert("Env".into(), Value::from(env));
    }
    if let Some(working_dir) = &spec.working_dir {
        config.insert("WorkingDir".into(), Value::from(working_dir.clone()));
    }
    if let Some(user) = &spec.user {
        config.insert("User".into(), Value::from(user.clone()));
    }
    if let Some(hostname) = &spec.hostname {
        config.insert("Hostname".into(), Value::from(hostname.clone()));
    }
    if spec.open_stdin {
        config.insert("OpenStdin".into(), Value::from(true));
    }
    if spec.tty {
        config.insert("Tty".into(), Value::from(true));
    }
    if let Some(healthcheck) = &spec.healthcheck {
        let mut check = Map::new();
        check.insert("Test".into(), strings(&healthcheck.test));
        for (field, seconds) in [
            ("Interval", healthcheck.interval_s),
            ("Timeout", healthcheck.timeout_s),
            ("StartPeriod", healthcheck.start_period_s),
        ] {
            if seconds > 0 {
                check.insert(field.into(), Value::from(seconds_to_nanos(seconds)));
            }
        }
        if healthcheck.retries > 0 {
            check.insert("Retries".into(), Value::from(healthcheck.retries));
        }
        config.insert("Healthcheck".into(), Value::Object(check));
    }
    if let Some(stop_timeout_s) = spec.stop_timeout_s {
        config.insert("StopTimeout".into(), Value::from(stop_timeout_s));
    }

    let mut host = Map::new();
    let network_mode = match &spec.network_mode {
        NetworkMode::Bridge => "bridge".to_string(),
        NetworkMode::Host => "host".to_string(),
        NetworkMode::None => "none".to_string(),
        NetworkMode::ContainerOf(id) => format!("container:{id}"),
    };
    host.insert("NetworkMode".into(), Value::from(network_mode));

    if !spec.port_bindings.is_empty() {
        let mut exposed = Map::new();
        let mut bindings: Map<String, Value> = Map::new();
        for binding in &spec.port_bindings {
            let key = port_key(binding.container_port, binding.protocol);
            exposed.insert(key.clone(), json!({}));
            let host_port = binding
                .requested_host_port()
                .map_or_else(String::new, |port| port.to_string());
            let entry = json!({"HostIp": binding.host_ip_or_default(), "HostPort": host_port});
            match bindings.get_mut(&key) {
                Some(Value::Array(list)) => list.push(entry),
                _ => {
                    bindings.insert(key, Value::Array(vec![entry]));
                }
            }
        }
        config.insert("ExposedPorts".into(), Value::Object(exposed));
        host.insert("PortBindings".into(), Value::Object(bindings));
    }

    // Binds rather than Mounts: with Binds Docker creates a missing host
    // directory, which is what ECS documents for `host.sourcePath`.
    if !spec.mounts.is_empty() {
        let binds: Vec<String> = spec
            .mounts
            .iter()
            .map(|mount| {
                let (source, target, read_only) = match mount {
                    Mount::Bind {
                        source,
                        target,
                        read_only,
                    } => (source, target, *read_only),
                    Mount::Volume {
                        name,
                        target,
                        read_only,
                    } => (name, target, *read_only),
                };
                let mode = if read_only { "ro" } else { "rw" };
                format!("{source}:{target}:{mode}")
            })
            .collect();
        host.insert("Binds".into(), Value::from(binds));
    }
    if !spec.volumes_from.is_empty() {
        let volumes_from: Vec<String> = spec
            .volumes_from
            .iter()
            .map(|from| {
                let mode = if from.read_only { "ro" } else { "rw" };
                format!("{}:{mode}", from.container)
            })
            .collect();
        host.insert("VolumesFrom".into(), Value::from(volumes_from));
    }
    if !spec.links.is_empty() {
        let links: Vec<String> = spec
            .links
            .iter()
            .map(|link| format!("{}:{}", link.container_name, link.alias))
            .collect();
        host.insert("Links".into(), Value::from(links));
    }
    if !spec.extra_hosts.is_empty() {
        let extra_hosts: Vec<String> = spec
            .extra_hosts
            .iter()
            .map(|entry| format!("{}:{}", entry.hostname, entry.ip_address))
            .collect();
        host.insert("ExtraHosts".into(), Value::from(extra_hosts));
    }
    if !spec.dns_servers.is_empty() {
        host.insert("Dns".into(), strings(&spec.dns_servers));
    }
    if !spec.dns_search_domains.is_empty() {
        host.insert("DnsSearch".into(), strings(&spec.dns_search_domains));
    }
    if !spec.ulimits.is_empty() {
        let ulimits: Vec<Value> = spec
            .ulimits
            .iter()
            .map(|ulimit| {
                json!({"Name": ulimit.name, "Soft": ulimit.soft_limit, "Hard": ulimit.hard_limit})
            })
            .collect();
        host.insert("Ulimits".into(), Value::from(ulimits));
    }
    if spec.privileged {
        host.insert("Privileged".into(), Value::from(true));
    }
    if spec.readonly_rootfs {
        host.insert("ReadonlyRootfs".into(), Value::from(true));
    }
    if spec.init {
        host.insert("Init".into(), Value::from(true));
    }
    if !spec.cap_add.is_empty() {
        host.insert("CapAdd".into(), strings(&spec.cap_add));
    }
    if !spec.cap_drop.is_empty() {
        host.insert("CapDrop".into(), strings(&spec.cap_drop));
    }
    if !spec.tmpfs.is_empty() {
        let tmpfs: Map<String, Value> = spec
            .tmpfs
            .iter()
            .map(|mount| {
                let mut options = vec![format!("size={}m", mount.size_mib)];
                options.extend(mount.mount_options.iter().cloned());
                (mount.container_path.clone(), Value::from(options.join(",")))
            })
            .collect();
        host.insert("Tmpfs".into(), Value::Object(tmpfs));
    }
    if let Some(shm_size_mib) = spec.shm_size_mib {
        host.insert("ShmSize".into(), Value::from(shm_size_mib * BYTES_PER_MIB));
    }
    if !spec.devices.is_empty() {
        let devices: Vec<Value> = spec
            .devices
            .iter()
            .map(|device| {
                let permissions = if device.permissions.is_empty() {
                    "rwm".to_string()
                } else {
                    let mut letters: Vec<DevicePermission> = device.permissions.clone();
                    letters.sort();
                    letters.dedup();
                    letters
                        .iter()
                        .map(|permission| match permission {
                            DevicePermission::Read => 'r',
                            DevicePermission::Write => 'w',
                            DevicePermission::Mknod => 'm',
                        })
                        .collect()
                };
                json!({
                    "PathOnHost": device.host_path,
                    "PathInContainer": device.container_path.as_deref().unwrap_or(&device.host_path),
                    "CgroupPermissions": permissions,
                })
            })
            .collect();
        host.insert("Devices".into(), Value::from(devices));
    }
    if !spec.sysctls.is_empty() {
        host.insert("Sysctls".into(), string_map(&spec.sysctls));
    }
    if !spec.security_opt.is_empty() {
        host.insert("SecurityOpt".into(), strings(&spec.security_opt));
    }
    if let Some(cpu_shares) = spec.cpu_shares {
        host.insert("CpuShares".into(), Value::from(cpu_shares));
    }
    if let Some(memory_limit_mib) = spec.memory_limit_mib {
        host.insert(
            "Memory".into(),
            Value::from(memory_limit_mib * BYTES_PER_MIB),
        );
    }
    if let Some(memory_reservation_mib) = spec.memory_reservation_mib {
        host.insert(
            "MemoryReservation".into(),
            Value::from(memory_reservation_mib * BYTES_PER_MIB),
        );
    }
    if let Some(nano_cpus) = spec.nano_cpus {
        host.insert("NanoCpus".into(), Value::from(nano_cpus));
    }
    if let Some(log_driver) = &spec.log_driver {
        host.insert(
            "LogConfig".into(),
            json!({"Type": log_driver.name, "Config": string_map(&log_driver.options)}),
        );
    }
    if let Some(pid_mode) = &spec.pid_mode {
        host.insert("PidMode".into(), Value::from(pid_mode.clone()));
    }
    if let Some(ipc_mode) = &spec.ipc_mode {
        host.insert("IpcMode".into(), Value::from(ipc_mode.clone()));
    }
    config.insert("HostConfig".into(), Value::Object(host));
    Value::Object(config)
}

/// The body of `POST /volumes/create`.
pub fn create_volume_body(volume: &VolumeSpec) -> Value {
    json!({
        "Name": volume.name,
        "Driver": volume.driver.as_deref().unwrap_or("local"),
        "DriverOpts": string_map(&volume.driver_opts),
        "Labels": string_map(&volume.labels),
    })
}

/// The `fromImage` and `tag` query parameters of `POST /images/create`.
/// Docker pulls *every* tag when `tag` is empty, so it is always set: to the
/// digest when there is one, else the tag (`latest` by default).
pub fn pull_parameters(image: &str) -> (String, String) {
    let reference = ImageReference::parse(image);
    let tag = reference
        .digest
        .clone()
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| "latest".to_string());
    (reference.name(), tag)
}

/// Docker Hub's credential server address, as the Docker CLI sends it.
const DOCKER_HUB_AUTH_ADDRESS: &str = "https://index.docker.io/v1/";

/// The JSON for the `X-Registry-Auth` header (before base64url).
pub fn registry_auth_json(image: &str, auth: &RegistryAuth) -> Value {
    let server_address = ImageReference::parse(image)
        .registry
        .unwrap_or_else(|| DOCKER_HUB_AUTH_ADDRESS.to_string());
    json!({
        "username": auth.username,
        "password": auth.password,
        "serveraddress": server_address,
    })
}

/// The failure reported by one line of a pull progress stream, if any.
///
/// Docker reports pull failures after `200 OK` as a line like
/// `{"errorDetail":{"message":"..."},"error":"..."}`.
pub fn pull_progress_error(line: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(line).ok()?;
    let detail = value
        .get("errorDetail")
        .and_then(|detail| detail.get("message"))
        .and_then(Value::as_str);
    let error = value.get("error").and_then(Value::as_str);
    detail.or(error).map(str::to_string)
}

/// Docker's error message from an error response body (`{"message": ...}`),
/// or the body itself when it is not that JSON.
pub fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => error.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}

/// The [`RuntimeError`] for an unexpected HTTP status from Docker.
pub fn error_for_status(status: u16, body: &[u8]) -> RuntimeError {
    let message = error_message(body);
    let message = if message.is_empty() {
        format!("Docker answered HTTP {status} with no message")
    } else {
        message
    };
    match status {
        400 => RuntimeError::InvalidSpec { message },
        404 => RuntimeError::NotFound { message },
        409 => RuntimeError::Conflict { message },
        _ => RuntimeError::Other { message },
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectResponse {
    id: String,
    #[serde(default)]
    name: String,
    /// The image id.
    #[serde(default)]
    image: String,
    state: InspectState,
    config: InspectConfig,
    #[serde(default)]
    network_settings: Option<InspectNetworkSettings>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectState {
    status: String,
    #[serde(default)]
    exit_code: i64,
    #[serde(rename = "OOMKilled", default)]
    oom_killed: bool,
    #[serde(default)]
    error: String,
    #[serde(default)]
    started_at: String,
    #[serde(default)]
    finished_at: String,
    #[serde(default)]
    health: Option<InspectHealth>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectHealth {
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectConfig {
    #[serde(default)]
    image: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectNetworkSettings {
    #[serde(default)]
    ports: Option<BTreeMap<String, Option<Vec<InspectPortBinding>>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectPortBinding {
    #[serde(default)]
    host_ip: String,
    #[serde(default)]
    host_port: String,
}

/// A [`ContainerState`] from the body of `GET /containers/{id}/json`.
pub fn parse_inspect(body: &[u8]) -> Result<ContainerState, RuntimeError> {
    let inspect: InspectResponse =
        serde_json::from_slice(body).map_err(|error| RuntimeError::Other {
            message: format!("unexpected container inspect response from Docker: {error}"),
        })?;
    let status =
        ContainerStatus::parse(&inspect.state.status).ok_or_else(|| RuntimeError::Other {
            message: format!(
                "unknown container status {:?} from Docker",
                inspect.state.status
            ),
        })?;
    let start_failed = status == ContainerStatus::Created && !inspect.state.error.is_empty();
    let exit_code = (status.has_stopped() || start_failed).then_some(inspect.state.exit_code);
    let started_at_ms = parse_rfc3339_ms(&inspect.state.started_at);
    // Docker stamps StartedAt when its start bookkeeping ends, which for a
    // process that exits at once can be after FinishedAt; a container never
    // finishes before it starts.
    let finished_at_ms = if status.has_stopped() {
        parse_rfc3339_ms(&inspect.state.finished_at)
            .map(|finished| started_at_ms.map_or(finished, |started| finished.max(started)))
    } else {
        None
    };
    let mut port_bindings = Vec::new();
    let ports = inspect
        .network_settings
        .and_then(|settings| settings.ports)
        .unwrap_or_default();
    for (key, bindings) in ports {
        let Some((port, protocol)) = key.split_once('/') else {
            continue;
        };
        let (Ok(container_port), Some(protocol)) = (port.parse::<u16>(), Protocol::parse(protocol))
        else {
            continue;
        };
        for binding in bindings.unwrap_or_default() {
            if let Ok(host_port) = binding.host_port.parse::<u16>() {
                port_bindings.push(ActualBinding {
                    container_port,
                    protocol,
                    host_ip: binding.host_ip,
                    host_port,
                });
            }
        }
    }
    port_bindings.sort();
    Ok(ContainerState {
        id: inspect.id,
        name: inspect.name.trim_start_matches('/').to_string(),
        labels: inspect.config.labels.unwrap_or_default(),
        status,
        exit_code,
        oom_killed: inspect.state.oom_killed,
        started_at_ms,
        finished_at_ms,
        health: inspect
            .state
            .health
            .and_then(|health| Health::parse(&health.status)),
        port_bindings,
        image: inspect.config.image,
        image_id: inspect.image,
        error: Some(inspect.state.error).filter(|error| !error.is_empty()),
    })
}

/// The repository digests (`RepoDigests`, `<repository>@sha256:...`) from
/// the body of `GET /images/{name}/json`; empty (or absent) for an image
/// that was built or loaded locally and never pulled or pushed.
pub fn parse_repo_digests(body: &[u8]) -> Result<Vec<String>, RuntimeError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct ImageInspect {
        #[serde(default)]
        repo_digests: Option<Vec<String>>,
    }
    let inspect: ImageInspect =
        serde_json::from_slice(body).map_err(|error| RuntimeError::Other {
            message: format!("unexpected image inspect response from Docker: {error}"),
        })?;
    Ok(inspect.repo_digests.unwrap_or_default())
}

/// Container ids from the body of `GET /containers/json`.
pub fn parse_container_ids(body: &[u8]) -> Result<Vec<String>, RuntimeError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Summary {
        id: String,
    }
    let summaries: Vec<Summary> =
        serde_json::from_slice(body).map_err(|error| RuntimeError::Other {
            message: format!("unexpected container list response from Docker: {error}"),
        })?;
    Ok(summaries.into_iter().map(|summary| summary.id).collect())
}

/// [`RuntimeInfo`] from the body of `GET /info`.
pub fn parse_info(body: &[u8], api_version: &str) -> Result<RuntimeInfo, RuntimeError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Info {
        #[serde(default)]
        server_version: String,
        #[serde(rename = "OSType", default)]
        os_type: String,
        #[serde(default)]
        architecture: String,
        #[serde(rename = "NCPU", default)]
        ncpu: u32,
        #[serde(default)]
        mem_total: u64,
    }
    let info: Info = serde_json::from_slice(body).map_err(|error| RuntimeError::Other {
        message: format!("unexpected info response from Docker: {error}"),
    })?;
    Ok(RuntimeInfo {
        server_version: info.server_version,
        api_version: api_version.to_string(),
        os: info.os_type,
        arch: info.architecture,
        cpus: info.ncpu,
        memory_bytes: info.mem_total,
    })
}

/// `ApiVersion` and `MinAPIVersion` from the body of `GET /version`.
pub fn parse_version(body: &[u8]) -> Result<(ApiVersion, Option<ApiVersion>), RuntimeError> {
    #[derive(Deserialize)]
    struct Version {
        #[serde(rename = "ApiVersion")]
        api_version: String,
        #[serde(rename = "MinAPIVersion", default)]
        min_api_version: Option<String>,
    }
    let version: Version = serde_json::from_slice(body).map_err(|error| RuntimeError::Other {
        message: format!("unexpected version response from Docker: {error}"),
    })?;
    let api_version =
        ApiVersion::parse(&version.api_version).ok_or_else(|| RuntimeError::Other {
            message: format!(
                "Docker reported an unreadable API version {:?}",
                version.api_version
            ),
        })?;
    let min_api_version = version
        .min_api_version
        .as_deref()
        .and_then(ApiVersion::parse);
    Ok((api_version, min_api_version))
}

/// A Docker Engine API version, `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Picks the API version to speak: the newest both sides know, raised to the
/// daemon's minimum if it no longer accepts ours (the fields Berth uses are
/// stable across versions). Fails if the daemon predates `oldest_supported`.
pub fn negotiate_api_version(
    server: ApiVersion,
    server_minimum: Option<ApiVersion>,
    preferred: ApiVersion,
    oldest_supported: ApiVersion,
) -> Result<ApiVersion, RuntimeError> {
    if server < oldest_supported {
        return Err(RuntimeError::Unavailable {
            message: format!(
                "the Docker daemon speaks API {server}, older than {oldest_supported} which Berth \
                 needs; upgrade Docker Engine to 19.03 or newer"
            ),
        });
    }
    let chosen = server.min(preferred);
    Ok(match server_minimum {
        Some(minimum) if minimum > chosen => minimum,
        _ => chosen,
    })
}

#[derive(Deserialize)]
struct EventMessage {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Action", default)]
    action: String,
    #[serde(rename = "Actor")]
    actor: EventActor,
    #[serde(rename = "timeNano", default)]
    time_nanos: i64,
}

#[derive(Deserialize)]
struct EventActor {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Attributes", default)]
    attributes: BTreeMap<String, String>,
}

/// A [`ContainerEvent`] from one line of the `GET /events` stream; `None` for
/// lines that are not container events the seam reports.
pub fn parse_event(line: &[u8]) -> Option<ContainerEvent> {
    let message: EventMessage = serde_json::from_slice(line).ok()?;
    if message.kind != "container" {
        return None;
    }
    let action = match message.action.as_str() {
        "create" => ContainerEventAction::Create,
        "start" => ContainerEventAction::Start,
        "die" => ContainerEventAction::Die {
            exit_code: message
                .actor
                .attributes
                .get("exitCode")
                .and_then(|code| code.parse().ok()),
        },
        "oom" => ContainerEventAction::Oom,
        "kill" => ContainerEventAction::Kill,
        "stop" => ContainerEventAction::Stop,
        "pause" => ContainerEventAction::Pause,
        "unpause" => ContainerEventAction::Unpause,
        "restart" => ContainerEventAction::Restart,
        "destroy" => ContainerEventAction::Destroy,
        other => {
            let status = other.strip_prefix("health_status:")?;
            ContainerEventAction::HealthStatus(Health::parse(status.trim())?)
        }
    };
    Some(ContainerEvent {
        name: message
            .actor
            .attributes
            .get("name")
            .cloned()
            .unwrap_or_default(),
        id: message.actor.id,
        action,
        time_ms: message.time_nanos / 1_000_000,
    })
}

/// Exit code of a process killed by SIGKILL (128 + 9), which an OOM kill gives.
pub const SIGKILL_EXIT_CODE: i64 = 137;

/// Whether `state` looks like an OOM kill Docker did not flag: exited with
/// 137 and `OOMKilled` false. Worth asking the event history.
pub fn may_be_unflagged_oom(state: &ContainerState) -> bool {
    state.status.has_stopped() && state.exit_code == Some(SIGKILL_EXIT_CODE) && !state.oom_killed
}

/// The `filters` query value for past `oom` events of one container.
pub fn oom_history_filter(container_id: &str) -> Value {
    json!({"type": ["container"], "container": [container_id], "event": ["oom"]})
}

/// Milliseconds since the epoch as the `seconds.nanoseconds` text Docker's
/// `since`/`until` parameters take.
pub fn unix_seconds_text(unix_ms: i64) -> String {
    let unix_ms = unix_ms.max(0);
    format!("{}.{:09}", unix_ms / 1_000, (unix_ms % 1_000) * 1_000_000)
}

/// The `filters` query value selecting containers with `key=value`.
pub fn label_filter(label_key: &str, label_value: &str) -> Value {
    json!({"label": [format!("{label_key}={label_value}")]})
}

/// The `filters` query value for the event stream.
pub fn event_filter(label_key: &str, label_value: &str) -> Value {
    json!({
        "type": ["container"],
        "label": [format!("{label_key}={label_value}")],
        "event": WATCHED_EVENT_ACTIONS,
    })
}

/// Whether the inspected container has a TTY (`Config.Tty`), which makes
/// its log stream raw rather than multiplexed.
pub fn parse_tty(body: &[u8]) -> Result<bool, RuntimeError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Inspect {
        config: Config,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Config {
        #[serde(default)]
        tty: bool,
    }
    let inspect: Inspect = serde_json::from_slice(body).map_err(|error| RuntimeError::Other {
        message: format!("unexpected container inspect response from Docker: {error}"),
    })?;
    Ok(inspect.config.tty)
}

/// The path after `/containers/{id}` for one stats sample: `one-shot`
/// (API 1.41, Docker 20.10) answers at once instead of waiting a second
/// to fill `precpu_stats`, which Berth does not read. Older API versions
/// ignore it and answer after that second.
pub const STATS_PATH_SUFFIX: &str = "/stats?stream=false&one-shot=true";

#[derive(Deserialize)]
struct StatsResponse {
    #[serde(default)]
    read: String,
    #[serde(default)]
    cpu_stats: Option<StatsCpu>,
    #[serde(default)]
    memory_stats: Option<StatsMemory>,
    #[serde(default)]
    networks: Option<BTreeMap<String, StatsNetwork>>,
    #[serde(default)]
    blkio_stats: Option<StatsBlkio>,
}

#[derive(Deserialize)]
struct StatsCpu {
    #[serde(default)]
    cpu_usage: Option<StatsCpuUsage>,
}

#[derive(Deserialize)]
struct StatsCpuUsage {
    #[serde(default)]
    total_usage: u64,
}

#[derive(Deserialize)]
struct StatsMemory {
    #[serde(default)]
    usage: u64,
    #[serde(default)]
    limit: u64,
    #[serde(default)]
    stats: Option<BTreeMap<String, u64>>,
}

#[derive(Deserialize)]
struct StatsNetwork {
    #[serde(default)]
    rx_bytes: u64,
    #[serde(default)]
    tx_bytes: u64,
}

#[derive(Deserialize)]
struct StatsBlkio {
    #[serde(default)]
    io_service_bytes_recursive: Option<Vec<StatsBlkioEntry>>,
}

#[derive(Deserialize)]
struct StatsBlkioEntry {
    #[serde(default)]
    op: String,
    #[serde(default)]
    value: u64,
}

/// Memory in use less the inactive page cache, as the docker CLI computes
/// it for `docker stats` (`calculateMemUsageUnixNoCache`): cgroup v1
/// reports `total_inactive_file`, cgroup v2 `inactive_file`; a cache figure
/// not below the usage is ignored.
fn memory_used_bytes(memory: &StatsMemory) -> u64 {
    let stats = memory.stats.as_ref();
    let cache = |key: &str| stats.and_then(|stats| stats.get(key)).copied();
    if let Some(inactive) = cache("total_inactive_file") {
        if inactive < memory.usage {
            return memory.usage - inactive;
        }
    }
    match cache("inactive_file") {
        Some(inactive) if inactive < memory.usage => memory.usage - inactive,
        _ => memory.usage,
    }
}

/// [`ContainerStats`] from the body of `GET /containers/{id}/stats` with
/// `stream=false`; `None` for the empty answer Docker gives for a container
/// that is not running (`read` is Go's zero time). Block I/O sums the
/// `Read`/`Write` entries (cgroup v1; `read`/`write` on v2) over devices,
/// as `docker stats` does.
pub fn parse_stats(body: &[u8]) -> Result<Option<ContainerStats>, RuntimeError> {
    let stats: StatsResponse =
        serde_json::from_slice(body).map_err(|error| RuntimeError::Other {
            message: format!("unexpected container stats response from Docker: {error}"),
        })?;
    let Some(read_at_ns) = parse_rfc3339_ns(&stats.read) else {
        return Ok(None);
    };
    let (mut network_rx_bytes, mut network_tx_bytes) = (0u64, 0u64);
    for network in stats.networks.unwrap_or_default().values() {
        network_rx_bytes = network_rx_bytes.saturating_add(network.rx_bytes);
        network_tx_bytes = network_tx_bytes.saturating_add(network.tx_bytes);
    }
    let (mut storage_read_bytes, mut storage_write_bytes) = (0u64, 0u64);
    let entries = stats
        .blkio_stats
        .and_then(|blkio| blkio.io_service_bytes_recursive)
        .unwrap_or_default();
    for entry in entries {
        match entry.op.bytes().next() {
            Some(b'r' | b'R') => {
                storage_read_bytes = storage_read_bytes.saturating_add(entry.value)
            }
            Some(b'w' | b'W') => {
                storage_write_bytes = storage_write_bytes.saturating_add(entry.value)
            }
            _ => {}
        }
    }
    let memory = stats.memory_stats;
    Ok(Some(ContainerStats {
        read_at_ns,
        cpu_used_ns: stats
            .cpu_stats
            .and_then(|cpu| cpu.cpu_usage)
            .map_or(0, |usage| usage.total_usage),
        memory_used_bytes: memory.as_ref().map_or(0, memory_used_bytes),
        memory_limit_bytes: memory.as_ref().map_or(0, |memory| memory.limit),
        network_rx_bytes,
        network_tx_bytes,
        storage_read_bytes,
        storage_write_bytes,
    }))
}

#[cfg(test)]
mod tests {
    use runtime::{
        Device, ExtraHost, HealthCheck, Link, LogDriver, PortBinding, Tmpfs, Ulimit, VolumeFrom,
    };

    use super::*;

    #[test]
    fn minimal_spec_leaves_docker_defaults() {
        let body = create_container_body(&ContainerSpec::new("web", "nginx:1"));
        assert_eq!(
            body,
            json!({"Image": "nginx:1", "HostConfig": {"NetworkMode": "bridge"}})
        );
    }

    #[test]
    fn every_field_is_mapped() {
        let spec = ContainerSpec {
            labels: BTreeMap::from([("com.example".to_string(), "x".to_string())]),
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
            command: Some(vec!["echo hi".into()]),
            env: vec![("A".into(), "1".into()), ("B".into(), "x=y".into())],
            working_dir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            hostname: Some("box".into()),
            extra_hosts: vec![ExtraHost {
                hostname: "db".into(),
                ip_address: "10.0.0.5".into(),
            }],
            dns_servers: vec!["10.0.0.2".into()],
            dns_search_domains: vec!["corp".into()],
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft_limit: 1024,
                hard_limit: 4096,
            }],
            privileged: true,
            readonly_rootfs: true,
            init: true,
            open_stdin: true,
            tty: true,
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["MKNOD".into()],
            tmpfs: vec![Tmpfs {
                container_path: "/run".into(),
                size_mib: 64,
                mount_options: vec!["noexec".into(), "mode=1777".into()],
            }],
            shm_size_mib: Some(128),
            devices: vec![
                Device {
                    host_path: "/dev/fuse".into(),
                    container_path: None,
                    permissions: vec![],
                },
                Device {
                    host_path: "/dev/sda".into(),
                    container_path: Some("/dev/xvda".into()),
                    permissions: vec![DevicePermission::Write, DevicePermission::Read],
                },
            ],
            sysctls: BTreeMap::from([("net.core.somaxconn".to_string(), "1024".to_string())]),
            security_opt: vec!["no-new-privileges".into()],
            network_mode: NetworkMode::ContainerOf("pause123".into()),
            port_bindings: vec![
                PortBinding::dynamic_tcp(80),
                PortBinding {
                    host_port: Some(8443),
                    host_ip: Some("127.0.0.1".into()),
                    ..PortBinding::dynamic_tcp(80)
                },
                PortBinding {
                    protocol: Protocol::Udp,
                    host_port: Some(5353),
                    ..PortBinding::dynamic_tcp(53)
                },
            ],
            cpu_shares: Some(2),
            memory_limit_mib: Some(512),
            memory_reservation_mib: Some(256),
            nano_cpus: Some(500_000_000),
            mounts: vec![
                Mount::Bind {
                    source: "/host/data".into(),
                    target: "/data".into(),
                    read_only: true,
                },
                Mount::Volume {
                    name: "cache".into(),
                    target: "/cache".into(),
                    read_only: false,
                },
            ],
            volumes_from: vec![VolumeFrom {
                container: "sidecar".into(),
                read_only: true,
            }],
            links: vec![Link {
                container_name: "ecs-db-1".into(),
                alias: "db".into(),
            }],
            healthcheck: Some(HealthCheck {
                test: vec!["CMD-SHELL".into(), "wget -q localhost || exit 1".into()],
                interval_s: 30,
                timeout_s: 5,
                start_period_s: 0,
                retries: 3,
            }),
            stop_timeout_s: Some(45),
            log_driver: Some(LogDriver {
                name: "json-file".into(),
                options: BTreeMap::from([("max-size".to_string(), "10m".to_string())]),
            }),
            pid_mode: Some("host".into()),
            ipc_mode: Some("container:pause123".into()),
            ..ContainerSpec::new("ecs-web-1-app-abc", "app:1")
        };
        let host_config = json!({
            "NetworkMode": "container:pause123",
            "PortBindings": {
                "80/tcp": [
                    {"HostIp": "0.0.0.0", "HostPort": ""},
                    {"HostIp": "127.0.0.1", "HostPort": "8443"}
                ],
                "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}]
            },
            "Binds": ["/host/data:/data:ro", "cache:/cache:rw"],
            "VolumesFrom": ["sidecar:ro"],
            "Links": ["ecs-db-1:db"],
            "ExtraHosts": ["db:10.0.0.5"],
            "Dns": ["10.0.0.2"],
            "DnsSearch": ["corp"],
            "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 4096}],
            "Privileged": true,
            "ReadonlyRootfs": true,
            "Init": true,
            "CapAdd": ["NET_ADMIN"],
            "CapDrop": ["MKNOD"],
            "Tmpfs": {"/run": "size=64m,noexec,mode=1777"},
            "ShmSize": 134_217_728u64,
            "Devices": [
                {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
                {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/xvda", "CgroupPermissions": "rw"}
            ],
            "Sysctls": {"net.core.somaxconn": "1024"},
            "SecurityOpt": ["no-new-privileges"],
            "CpuShares": 2,
            "Memory": 536_870_912u64,
            "MemoryReservation": 268_435_456u64,
            "NanoCpus": 500_000_000u64,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}},
            "PidMode": "host",
            "IpcMode": "container:pause123"
        });
        let mut expected = json!({
            "Image": "app:1",
            "Labels": {"com.example": "x"},
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo hi"],
            "Env": ["A=1", "B=x=y"],
            "WorkingDir": "/srv",
            "User": "1000:1000",
            "Hostname": "box",
            "OpenStdin": true,
            "Tty": true,
            "Healthcheck": {
                "Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                "Interval": 30_000_000_000u64,
                "Timeout": 5_000_000_000u64,
                "Retries": 3
            },
            "StopTimeout": 45,
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}}
        });
        expected["HostConfig"] = host_config;
        assert_eq!(create_container_body(&spec), expected);
    }

    #[test]
    fn network_modes() {
        for (mode, word) in [
            (NetworkMode::Bridge, "bridge"),
            (NetworkMode::Host, "host"),
            (NetworkMode::None, "none"),
            (NetworkMode::ContainerOf("abc".into()), "container:abc"),
        ] {
            let spec = ContainerSpec {
                network_mode: mode,
                ..ContainerSpec::new("n", "i")
            };
            assert_eq!(
                create_container_body(&spec)["HostConfig"]["NetworkMode"],
                word
            );
        }
    }

    #[test]
    fn pull_always_names_a_tag_or_digest() {
        let check = |image: &str, from_image: &str, tag: &str| {
            assert_eq!(
                pull_parameters(image),
                (from_image.to_string(), tag.to_string()),
                "{image}"
            );
        };
        check("busybox", "busybox", "latest");
        check("busybox:1.36", "busybox", "1.36");
        check("localhost:5000/app", "localhost:5000/app", "latest");
        check("nginx@sha256:abc", "nginx", "sha256:abc");
        check(
            "r.example.com/a/b:2@sha256:abc",
            "r.example.com/a/b",
            "sha256:abc",
        );
    }

    #[test]
    fn registry_auth_names_the_registry() {
        let auth = RegistryAuth {
            username: "AWS".into(),
            password: "token".into(),
        };
        assert_eq!(
            registry_auth_json("1.dkr.ecr.us-east-1.amazonaws.com/app:1", &auth),
            json!({"username": "AWS", "password": "token", "serveraddress": "1.dkr.ecr.us-east-1.amazonaws.com"})
        );
        assert_eq!(
            registry_auth_json("private/app", &auth)["serveraddress"],
            "https://index.docker.io/v1/"
        );
    }

    #[test]
    fn pull_progress_errors_are_found() {
        assert_eq!(
            pull_progress_error(br#"{"status":"Pulling from library/busybox","id":"latest"}"#),
            None
        );
        assert_eq!(
            pull_progress_error(
                br#"{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}"#
            ),
            Some("manifest unknown".to_string())
        );
        assert_eq!(
            pull_progress_error(br#"{"error":"denied"}"#),
            Some("denied".to_string())
        );
        assert_eq!(pull_progress_error(b"not json"), None);
    }

    #[test]
    fn errors_map_by_status() {
        let body = br#"{"message":"No such container: x"}"#;
        assert_eq!(
            error_for_status(404, body),
            RuntimeError::NotFound {
                message: "No such container: x".into()
            }
        );
        assert!(matches!(
            error_for_status(409, body),
            RuntimeError::Conflict { .. }
        ));
        assert!(matches!(
            error_for_status(400, body),
            RuntimeError::InvalidSpec { .. }
        ));
        assert_eq!(
            error_for_status(500, b"boom\n"),
            RuntimeError::Other {
                message: "boom".into()
            }
        );
        assert_eq!(
            error_for_status(503, b""),
            RuntimeError::Other {
                message: "Docker answered HTTP 503 with no message".into()
            }
        );
    }

    const EXITED_INSPECT: &str = r#"{
        "Id": "abc123",
        "Name": "/ecs-web-1",
        "Image": "sha256:feed",
        "State": {"Status": "exited", "Running": false, "OOMKilled": true, "ExitCode": 137,
                  "Error": "", "StartedAt": "2024-05-01T12:34:56.123456789Z",
                  "FinishedAt": "2024-05-01T12:35:00.5Z",
                  "Health": {"Status": "unhealthy", "FailingStreak": 3, "Log": []}},
        "Config": {"Image": "app:1", "Labels": {"berth.task": "t1"}},
        "NetworkSettings": {"Ports": {}}
    }"#;

    #[test]
    fn inspect_of_an_exited_container() {
        let state = parse_inspect(EXITED_INSPECT.as_bytes()).unwrap();
        assert_eq!(
            state,
            ContainerState {
                id: "abc123".into(),
                name: "ecs-web-1".into(),
                labels: BTreeMap::from([("berth.task".to_string(), "t1".to_string())]),
                status: ContainerStatus::Exited,
                exit_code: Some(137),
                oom_killed: true,
                started_at_ms: Some(1_714_566_896_123),
                finished_at_ms: Some(1_714_566_900_500),
                health: Some(Health::Unhealthy),
                port_bindings: vec![],
                image: "app:1".into(),
                image_id: "sha256:feed".into(),
                error: None,
            }
        );
    }

    #[test]
    fn a_container_never_finishes_before_it_starts() {
        let body = EXITED_INSPECT.replace("2024-05-01T12:35:00.5Z", "2024-05-01T12:34:56.1Z");
        let state = parse_inspect(body.as_bytes()).unwrap();
        assert_eq!(state.started_at_ms, Some(1_714_566_896_123));
        assert_eq!(state.finished_at_ms, state.started_at_ms);
    }

    #[test]
    fn inspect_of_a_running_container_with_ports() {
        let body = r#"{
            "Id": "def", "Name": "/web", "Image": "sha256:1",
            "State": {"Status": "running", "OOMKilled": false, "ExitCode": 0, "Error": "",
                      "StartedAt": "2024-05-01T12:34:56Z", "FinishedAt": "0001-01-01T00:00:00Z"},
            "Config": {"Image": "web", "Labels": null},
            "NetworkSettings": {"Ports": {
                "8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"}, {"HostIp": "::", "HostPort": "49153"}],
                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
                "9000/tcp": null
            }}
        }"#;
        let state = parse_inspect(body.as_bytes()).unwrap();
        assert_eq!(state.status, ContainerStatus::Running);
        assert_eq!(state.exit_code, None);
        assert_eq!(state.finished_at_ms, None);
        assert_eq!(state.health, None);
        assert!(state.labels.is_empty());
        let binding = |container_port, protocol, host_ip: &str, host_port| ActualBinding {
            container_port,
            protocol,
            host_ip: host_ip.into(),
            host_port,
        };
        assert_eq!(
            state.port_bindings,
            vec![
                binding(53, Protocol::Udp, "127.0.0.1", 5353),
                binding(8080, Protocol::Tcp, "0.0.0.0", 49153),
                binding(8080, Protocol::Tcp, "::", 49153),
            ]
        );
    }

    #[test]
    fn inspect_of_a_failed_start_reports_the_error() {
        let body = r#"{
            "Id": "x", "Name": "/bad", "Image": "sha256:1",
            "State": {"Status": "created", "ExitCode": 127,
                      "Error": "exec: \"nope\": executable file not found in $PATH",
                      "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"},
            "Config": {"Image": "busybox"}
        }"#;
        let state = parse_inspect(body.as_bytes()).unwrap();
        assert_eq!(state.status, ContainerStatus::Created);
        assert_eq!(state.exit_code, Some(127));
        assert_eq!(state.started_at_ms, None);
        assert!(state.error.unwrap().contains("executable file not found"));
    }

    #[test]
    fn tty_comes_from_the_config() {
        for (body, expected) in [
            (r#"{"Config":{"Tty":true,"Image":"app"}}"#, Some(true)),
            (r#"{"Config":{"Tty":false}}"#, Some(false)),
            (r#"{"Config":{}}"#, Some(false)),
            (r#"{"State":{}}"#, None),
        ] {
            assert_eq!(parse_tty(body.as_bytes()).ok(), expected, "{body}");
        }
        assert_eq!(parse_tty(EXITED_INSPECT.as_bytes()), Ok(false));
    }

    #[test]
    fn inspect_rejects_garbage() {
        assert!(matches!(
            parse_inspect(b"{}"),
            Err(RuntimeError::Other { .. })
        ));
        let unknown = EXITED_INSPECT.replace("\"exited\"", "\"sleeping\"");
        let error = parse_inspect(unknown.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("sleeping"), "{error}");
    }

    fn event_line(action: &str, attributes: &str) -> String {
        format!(
            r#"{{"status":"{action}","id":"c1","Type":"container","Action":"{action}","Actor":{{"ID":"c1","Attributes":{{"name":"web"{attributes}}}}},"scope":"local","time":1714566896,"timeNano":1714566896123456789}}"#
        )
    }

    #[test]
    fn events_are_parsed() {
        let check = |action: &str, attributes: &str, expected: Option<ContainerEventAction>| {
            let parsed = parse_event(event_line(action, attributes).as_bytes());
            assert_eq!(
                parsed.as_ref().map(|event| event.action.clone()),
                expected,
                "{action}"
            );
            if let Some(event) = parsed {
                assert_eq!(
                    (event.id.as_str(), event.name.as_str(), event.time_ms),
                    ("c1", "web", 1_714_566_896_123)
                );
            }
        };
        check("create", "", Some(ContainerEventAction::Create));
        check("start", "", Some(ContainerEventAction::Start));
        check(
            "die",
            r#","exitCode":"137""#,
            Some(ContainerEventAction::Die {
                exit_code: Some(137),
            }),
        );
        check(
            "die",
            "",
            Some(ContainerEventAction::Die { exit_code: None }),
        );
        check("oom", "", Some(ContainerEventAction::Oom));
        check(
            "kill",
            r#","signal":"15""#,
            Some(ContainerEventAction::Kill),
        );
        check("stop", "", Some(ContainerEventAction::Stop));
        check("destroy", "", Some(ContainerEventAction::Destroy));
        check(
            "health_status: healthy",
            "",
            Some(ContainerEventAction::HealthStatus(Health::Healthy)),
        );
        check(
            "health_status: unhealthy",
            "",
            Some(ContainerEventAction::HealthStatus(Health::Unhealthy)),
        );
        check("exec_start: sh -c true", "", None);
        check("attach", "", None);
        assert_eq!(
            parse_event(br#"{"Type":"network","Action":"connect","Actor":{"ID":"n"}}"#),
            None
        );
        assert_eq!(parse_event(b"garbage"), None);
    }

    #[test]
    fn api_version_negotiation() {
        fn version(text: &str) -> ApiVersion {
            ApiVersion::parse(text).unwrap()
        }
        let negotiate = |server, minimum: Option<&str>| {
            negotiate_api_version(
                version(server),
                minimum.map(version),
                version("1.41"),
                version("1.40"),
            )
            .map(|chosen| chosen.to_string())
        };
        assert_eq!(negotiate("1.41", Some("1.12")).unwrap(), "1.41");
        assert_eq!(negotiate("1.40", None).unwrap(), "1.40");
        assert_eq!(negotiate("1.47", Some("1.24")).unwrap(), "1.41");
        assert_eq!(negotiate("1.52", Some("1.44")).unwrap(), "1.44");
        let old = negotiate("1.39", Some("1.12")).unwrap_err();
        assert!(old.to_string().contains("upgrade Docker"), "{old}");
        assert!(version("1.9") < version("1.10"));
    }

    #[test]
    fn info_and_version_and_list_bodies() {
        let info = parse_info(
            br#"{"ServerVersion":"20.10.24","OSType":"linux","Architecture":"x86_64","NCPU":2,"MemTotal":25275461632}"#,
            "1.41",
        )
        .unwrap();
        assert_eq!(
            info,
            RuntimeInfo {
                server_version: "20.10.24".into(),
                api_version: "1.41".into(),
                os: "linux".into(),
                arch: "x86_64".into(),
                cpus: 2,
                memory_bytes: 25_275_461_632,
            }
        );
        let (api, minimum) =
            parse_version(br#"{"ApiVersion":"1.41","MinAPIVersion":"1.12"}"#).unwrap();
        assert_eq!(
            (api.to_string(), minimum.unwrap().to_string()),
            ("1.41".into(), "1.12".into())
        );
        assert_eq!(
            parse_container_ids(br#"[{"Id":"a","Names":["/x"]},{"Id":"b"}]"#).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    /// `GET /images/{name}/json` of a pulled image, as Docker 20.10 answers
    /// (shortened): the Hub repository in its short form, and a second
    /// repository the image was pushed to.
    const PULLED_IMAGE_INSPECT: &str = r#"{
        "Id": "sha256:beae173ccac6ad749f76713cf4440fe3d21d1043fe616dfbe30775815d1d0f6a",
        "RepoTags": ["busybox:latest", "localhost:5000/tools/busybox:1.36"],
        "RepoDigests": [
            "busybox@sha256:5acba83a746c7608ed544dc1533b87c737a0b0fb730301639a0179f9344b1678",
            "localhost:5000/tools/busybox@sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c"
        ],
        "Parent": "",
        "Created": "2023-05-19T20:19:24.407525962Z",
        "Architecture": "amd64",
        "Os": "linux",
        "Size": 4261550
    }"#;

    #[test]
    fn repo_digests_pick_the_manifest_of_the_image_reference() {
        let repo_digests = parse_repo_digests(PULLED_IMAGE_INSPECT.as_bytes()).unwrap();
        let check = |image: &str, expected: Option<&str>| {
            assert_eq!(
                runtime::ImageReference::parse(image)
                    .manifest_digest(&repo_digests)
                    .as_deref(),
                expected,
                "{image}"
            );
        };
        let hub = "sha256:5acba83a746c7608ed544dc1533b87c737a0b0fb730301639a0179f9344b1678";
        let local = "sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c";
        check("busybox", Some(hub));
        check("docker.io/library/busybox:latest", Some(hub));
        check("localhost:5000/tools/busybox:1.36", Some(local));
        check("localhost:5000/busybox", None);
    }

    #[test]
    fn repo_digests_of_a_local_image_are_empty() {
        // What Docker 20.10 answers for an image built here (shortened).
        let built = br#"{"Id":"sha256:eefbf9b70220","RepoTags":["berth-test/busybox:latest"],"RepoDigests":[],"Parent":""}"#;
        assert_eq!(parse_repo_digests(built).unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_repo_digests(br#"{"Id":"sha256:eefbf9b70220","RepoDigests":null}"#).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            parse_repo_digests(br#"{"Id":"sha256:eefbf9b70220"}"#).unwrap(),
            Vec::<String>::new()
        );
        assert!(matches!(
            parse_repo_digests(b"not json"),
            Err(RuntimeError::Other { .. })
        ));
    }

    #[test]
    fn unflagged_oom_candidates() {
        let exited = parse_inspect(EXITED_INSPECT.as_bytes()).unwrap();
        assert!(!may_be_unflagged_oom(&exited), "already flagged");
        let unflagged = ContainerState {
            oom_killed: false,
            ..exited.clone()
        };
        assert!(may_be_unflagged_oom(&unflagged));
        let clean_exit = ContainerState {
            exit_code: Some(0),
            ..unflagged.clone()
        };
        assert!(!may_be_unflagged_oom(&clean_exit));
        let running = ContainerState {
            status: ContainerStatus::Running,
            exit_code: None,
            ..unflagged
        };
        assert!(!may_be_unflagged_oom(&running));
        assert_eq!(unix_seconds_text(1_714_566_896_123), "1714566896.123000000");
        assert_eq!(unix_seconds_text(-5), "0.000000000");
        assert_eq!(
            oom_history_filter("abc"),
            json!({"type": ["container"], "container": ["abc"], "event": ["oom"]})
        );
    }

    #[test]
    fn filters_and_volume_bodies() {
        assert_eq!(
            label_filter("berth.task", "t1"),
            json!({"label": ["berth.task=t1"]})
        );
        assert_eq!(
            event_filter("k", "v")["event"].as_array().unwrap().len(),
            WATCHED_EVENT_ACTIONS.len()
        );
        let volume = VolumeSpec {
            name: "data".into(),
            driver: None,
            driver_opts: BTreeMap::from([("type".to_string(), "tmpfs".to_string())]),
            labels: BTreeMap::new(),
        };
        assert_eq!(
            create_volume_body(&volume),
            json!({"Name": "data", "Driver": "local", "DriverOpts": {"type": "tmpfs"}, "Labels": {}})
        );
    }

    #[test]
    fn stats_as_docker_stats_computes_them() {
        fn check(body: Value, expected: Option<ContainerStats>) {
            let parsed = parse_stats(body.to_string().as_bytes()).unwrap();
            assert_eq!(parsed, expected, "{body}");
        }
        // Docker 20.10 on cgroup v1, one-shot (precpu_stats empty).
        check(
            json!({
                "read": "2026-12-07T14:00:00.250000000Z",
                "preread": "0001-01-01T00:00:00Z",
                "pids_stats": {"current": 1},
                "blkio_stats": {"io_service_bytes_recursive": [
                    {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                    {"major": 8, "minor": 0, "op": "Write", "value": 8192},
                    {"major": 8, "minor": 0, "op": "Sync", "value": 12288},
                    {"major": 8, "minor": 0, "op": "Async", "value": 0},
                    {"major": 8, "minor": 0, "op": "Total", "value": 12288},
                    {"major": 8, "minor": 16, "op": "Read", "value": 1},
                ]},
                "cpu_stats": {
                    "cpu_usage": {"total_usage": 2_500_000_000u64, "percpu_usage": [2_000_000_000u64, 500_000_000u64],
                                  "usage_in_kernelmode": 10, "usage_in_usermode": 20},
                    "system_cpu_usage": 99_000_000_000u64, "online_cpus": 2,
                    "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
                },
                "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
                "memory_stats": {
                    "usage": 10_000_000, "max_usage": 12_000_000, "limit": 536_870_912,
                    "stats": {"cache": 3_000_000, "inactive_file": 900_000, "total_inactive_file": 1_000_000}
                },
                "name": "/web", "id": "abc",
                "networks": {
                    "eth0": {"rx_bytes": 1000, "rx_packets": 3, "tx_bytes": 200, "tx_packets": 2},
                    "eth1": {"rx_bytes": 5, "tx_bytes": 7}
                }
            }),
            Some(ContainerStats {
                read_at_ns: 1_796_652_000_250_000_000,
                cpu_used_ns: 2_500_000_000,
                memory_used_bytes: 9_000_000,
                memory_limit_bytes: 536_870_912,
                network_rx_bytes: 1005,
                network_tx_bytes: 207,
                storage_read_bytes: 4097,
                storage_write_bytes: 8192,
            }),
        );
        // cgroup v2: `inactive_file`, lower-case ops; host network: no `networks`.
        check(
            json!({
                "read": "2026-12-07T14:00:01Z",
                "blkio_stats": {"io_service_bytes_recursive": [
                    {"major": 259, "minor": 0, "op": "read", "value": 100},
                    {"major": 259, "minor": 0, "op": "write", "value": 300}
                ]},
                "cpu_stats": {"cpu_usage": {"total_usage": 42}},
                "memory_stats": {"usage": 5000, "limit": 8000, "stats": {"inactive_file": 1000, "file": 2000}}
            }),
            Some(ContainerStats {
                read_at_ns: 1_796_652_001_000_000_000,
                cpu_used_ns: 42,
                memory_used_bytes: 4000,
                memory_limit_bytes: 8000,
                storage_read_bytes: 100,
                storage_write_bytes: 300,
                ..ContainerStats::default()
            }),
        );
        // A cache figure at or above the usage is ignored; blkio may be null.
        check(
            json!({
                "read": "2026-12-07T14:00:01Z",
                "blkio_stats": {"io_service_bytes_recursive": null},
                "memory_stats": {"usage": 500, "limit": 800, "stats": {"total_inactive_file": 600}}
            }),
            Some(ContainerStats {
                read_at_ns: 1_796_652_001_000_000_000,
                memory_used_bytes: 500,
                memory_limit_bytes: 800,
                ..ContainerStats::default()
            }),
        );
        // What Docker answers for a container that is not running.
        check(
            json!({
                "read": "0001-01-01T00:00:00Z", "preread": "0001-01-01T00:00:00Z",
                "pids_stats": {}, "blkio_stats": {"io_service_bytes_recursive": null},
                "cpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
                "memory_stats": {}, "name": "/web", "id": "abc"
            }),
            None,
        );
        assert!(parse_stats(b"not json").is_err());
    }
}
