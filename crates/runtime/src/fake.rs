//! [`FakeRuntime`]: an in-memory, scriptable [`ContainerRuntime`] for fast,
//! deterministic agent tests and the simulator.
//!
//! It behaves like Docker where the agent can tell the difference: images must
//! be present (or pulled) before create, names are unique, containers move
//! `created → running → exited`, stop/kill/remove are idempotent, dynamic host
//! ports are assigned (deterministically, from 32768 up), fixed host ports
//! clash, events come in Docker's order (`kill`, `die`, `stop`; `oom` before
//! `die`; `destroy` last). Nothing happens by itself: processes exit, run out
//! of memory, change health or write output only when the test says so
//! ([`FakeRuntime::exit`], [`FakeRuntime::oom`], [`FakeRuntime::set_health`],
//! [`FakeRuntime::write_log`], [`FakeRuntime::set_stats`]), and time is a counter
//! the test sets ([`FakeRuntime::set_now_ms`]). Every trait call is recorded
//! ([`FakeRuntime::calls`]) so tests assert on what the agent did.
//!
//! Clones share state: hand one clone to the code under test, keep another
//! to script and inspect.
//!
//! Scripting methods panic when given a container that does not exist: that
//! is a bug in the test, not a runtime fault.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::channel::mpsc;
use futures::StreamExt;

use crate::{
    ActualBinding, ContainerEvent, ContainerEventAction, ContainerEventStream, ContainerRuntime,
    ContainerSpec, ContainerState, ContainerStats, ContainerStatus, Health, ImageReference,
    LogLine, LogLineStream, LogSource, Mount, NetworkMode, Protocol, RegistryAuth, RuntimeError,
    RuntimeInfo, VolumeSpec, MAX_LOG_LINE_BYTES,
};

/// The first host port handed out for dynamic port bindings (the start of
/// Linux's default ephemeral range, as Docker uses).
pub const FIRST_DYNAMIC_HOST_PORT: u16 = 32768;
/// The last one; assignment wraps around to [`FIRST_DYNAMIC_HOST_PORT`].
pub const LAST_DYNAMIC_HOST_PORT: u16 = 60999;
/// Exit code of a container killed by SIGKILL (128 + 9), as Docker reports it.
pub const SIGKILL_EXIT_CODE: i64 = 137;

/// One call the code under test made, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeCall {
    Info,
    ImagePresent {
        image: String,
    },
    ImageDigest {
        image: String,
    },
    PullImage {
        image: String,
        /// The user name of the credentials passed, if any (never the password).
        username: Option<String>,
    },
    CreateContainer {
        spec: Box<ContainerSpec>,
    },
    StartContainer {
        id: String,
    },
    StopContainer {
        id: String,
        timeout_s: u32,
    },
    KillContainer {
        id: String,
    },
    RemoveContainer {
        id: String,
    },
    InspectContainer {
        id: String,
    },
    ListContainers {
        label_key: String,
        label_value: String,
    },
    CreateVolume {
        volume: VolumeSpec,
    },
    RemoveVolume {
        name: String,
    },
    Events {
        label_key: String,
        label_value: String,
    },
    FollowLogs {
        id: String,
        since_ns: i64,
    },
    ContainerStats {
        id: String,
    },
}

impl RuntimeCall {
    /// Which trait method this call was.
    pub fn operation(&self) -> Operation {
        match self {
            RuntimeCall::Info => Operation::Info,
            RuntimeCall::ImagePresent { .. } => Operation::ImagePresent,
            RuntimeCall::ImageDigest { .. } => Operation::ImageDigest,
            RuntimeCall::PullImage { .. } => Operation::PullImage,
            RuntimeCall::CreateContainer { .. } => Operation::CreateContainer,
            RuntimeCall::StartContainer { .. } => Operation::StartContainer,
            RuntimeCall::StopContainer { .. } => Operation::StopContainer,
            RuntimeCall::KillContainer { .. } => Operation::KillContainer,
            RuntimeCall::RemoveContainer { .. } => Operation::RemoveContainer,
            RuntimeCall::InspectContainer { .. } => Operation::InspectContainer,
            RuntimeCall::ListContainers { .. } => Operation::ListContainers,
            RuntimeCall::CreateVolume { .. } => Operation::CreateVolume,
            RuntimeCall::RemoveVolume { .. } => Operation::RemoveVolume,
            RuntimeCall::Events { .. } => Operation::Events,
            RuntimeCall::FollowLogs { .. } => Operation::FollowLogs,
            RuntimeCall::ContainerStats { .. } => Operation::ContainerStats,
        }
    }

    /// Whether the call changes runtime state (pull, create, start, stop,
    /// kill, remove, volume create/remove) rather than only reading it.
    pub fn is_mutation(&self) -> bool {
        self.operation().is_mutation()
    }
}

/// The trait's methods, for scripting failures with [`FakeRuntime::fail_next`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Info,
    ImagePresent,
    ImageDigest,
    PullImage,
    CreateContainer,
    StartContainer,
    StopContainer,
    KillContainer,
    RemoveContainer,
    InspectContainer,
    ListContainers,
    CreateVolume,
    RemoveVolume,
    Events,
    FollowLogs,
    ContainerStats,
}

impl Operation {
    /// See [`RuntimeCall::is_mutation`].
    pub fn is_mutation(self) -> bool {
        !matches!(
            self,
            Operation::Info
                | Operation::ImagePresent
                | Operation::ImageDigest
                | Operation::InspectContainer
                | Operation::ListContainers
                | Operation::Events
                | Operation::FollowLogs
                | Operation::ContainerStats
        )
    }
}

/// The in-memory runtime. See the module docs.
#[derive(Clone, Default)]
pub struct FakeRuntime {
    state: Arc<Mutex<FakeState>>,
}

struct FakeContainer {
    spec: ContainerSpec,
    state: ContainerState,
    /// Exit code when stopped with `stop_container`.
    stop_exit_code: i64,
    /// Everything the container wrote, in the order written (kept across
    /// restarts, as Docker's `json-file` and `local` drivers keep it).
    log: Vec<LogLine>,
    /// The counters [`ContainerRuntime::container_stats`] reports while it
    /// runs; `None`: all zero (reset by every start, as Docker's are).
    stats: Option<ContainerStats>,
}

/// An open [`ContainerRuntime::follow_logs`] stream of a running container.
struct LogFollower {
    container_id: String,
    since_ns: i64,
    sender: mpsc::UnboundedSender<Result<LogLine, RuntimeError>>,
}

struct Subscriber {
    label_key: String,
    label_value: String,
    sender: mpsc::UnboundedSender<Result<ContainerEvent, RuntimeError>>,
}

struct FakeState {
    now_ms: i64,
    next_container_number: u64,
    next_image_number: u64,
    next_host_port: u16,
    /// Canonical image reference → image id.
    images: BTreeMap<String, String>,
    /// Canonical image reference → pull failure message.
    pull_failures: BTreeMap<String, String>,
    /// Canonical image reference → the manifest digest its registry serves.
    registry_digests: BTreeMap<String, String>,
    /// Canonical reference of a present image → its repository digest
    /// (Docker's `RepoDigests` entry, `<name>@sha256:...`), for images
    /// pulled from a registry.
    repo_digests: BTreeMap<String, String>,
    /// By id; ids grow with creation order, so this is creation order too.
    containers: BTreeMap<String, FakeContainer>,
    volumes: BTreeMap<String, VolumeSpec>,
    calls: Vec<RuntimeCall>,
    subscribers: Vec<Subscriber>,
    log_followers: Vec<LogFollower>,
    scripted_failures: VecDeque<(Operation, RuntimeError)>,
    unavailable: bool,
    info: RuntimeInfo,
}

impl Default for FakeState {
    fn default() -> Self {
        FakeState {
            now_ms: 0,
            next_container_number: 1,
            next_image_number: 1,
            next_host_port: FIRST_DYNAMIC_HOST_PORT,
            images: BTreeMap::new(),
            pull_failures: BTreeMap::new(),
            registry_digests: BTreeMap::new(),
            repo_digests: BTreeMap::new(),
            containers: BTreeMap::new(),
            volumes: BTreeMap::new(),
            calls: Vec::new(),
            subscribers: Vec::new(),
            log_followers: Vec::new(),
            scripted_failures: VecDeque::new(),
            unavailable: false,
            info: RuntimeInfo {
                server_version: "fake".to_string(),
                api_version: "1.41".to_string(),
                os: "linux".to_string(),
                arch: "x86_64".to_string(),
                cpus: 2,
                memory_bytes: 4 * 1024 * 1024 * 1024,
            },
        }
    }
}

fn no_such_container(id: &str) -> RuntimeError {
    RuntimeError::NotFound {
        message: format!("No such container: {id}"),
    }
}

fn canonical_image(image: &str) -> String {
    ImageReference::parse(image).canonical()
}

impl FakeState {
    fn resolve(&self, id_or_name: &str) -> Option<String> {
        if self.containers.contains_key(id_or_name) {
            return Some(id_or_name.to_string());
        }
        self.containers
            .values()
            .find(|container| container.state.name == id_or_name)
            .map(|container| container.state.id.clone())
    }

    fn container_mut(&mut self, id: &str) -> &mut FakeContainer {
        self.containers
            .get_mut(id)
            .expect("resolved container ids exist")
    }

    fn scripted_container(&self, id_or_name: &str) -> String {
        self.resolve(id_or_name).unwrap_or_else(|| {
            panic!(
                "FakeRuntime: no container {id_or_name:?}; scripting needs an existing container"
            )
        })
    }

    fn emit(&mut self, id: &str, action: ContainerEventAction) {
        let container = &self.containers[id];
        let event = ContainerEvent {
            id: id.to_string(),
            name: container.state.name.clone(),
            action,
            time_ms: self.now_ms,
        };
        let labels = &container.state.labels;
        self.subscribers.retain(|subscriber| {
            if labels.get(&subscriber.label_key) != Some(&subscriber.label_value) {
                return !subscriber.sender.is_closed();
            }
            subscriber.sender.unbounded_send(Ok(event.clone())).is_ok()
        });
    }

    fn host_port_in_use(&self, host_port: u16, protocol: Protocol) -> bool {
        self.containers.values().any(|container| {
            container
                .state
                .port_bindings
                .iter()
                .any(|bound| bound.host_port == host_port && bound.protocol == protocol)
        })
    }

    fn next_dynamic_port(&mut self, protocol: Protocol) -> u16 {
        loop {
            let port = self.next_host_port;
            self.next_host_port = if port >= LAST_DYNAMIC_HOST_PORT {
                FIRST_DYNAMIC_HOST_PORT
            } else {
                port + 1
            };
            if !self.host_port_in_use(port, protocol) {
                return port;
            }
        }
    }

    /// The process ended: record it and emit the events leading to it.
    fn finish(
        &mut self,
        id: &str,
        exit_code: i64,
        oom_killed: bool,
        actions: Vec<ContainerEventAction>,
    ) {
        let now_ms = self.now_ms;
        let container = self.container_mut(id);
        container.state.status = ContainerStatus::Exited;
        container.state.exit_code = Some(exit_code);
        container.state.oom_killed = oom_killed;
        container.state.finished_at_ms = Some(now_ms);
        container.state.port_bindings.clear();
        for action in actions {
            self.emit(id, action);
        }
        self.end_log_followers(id);
    }

    /// The container stopped or went away: its log streams end (after the
    /// lines already sent).
    fn end_log_followers(&mut self, id: &str) {
        self.log_followers
            .retain(|follower| follower.container_id != id);
    }

    fn running(&self, id: &str) -> bool {
        self.containers[id].state.status.is_running()
    }
}

impl FakeRuntime {
    /// An empty runtime: no images, no containers, time 0.
    pub fn new() -> Self {
        FakeRuntime::default()
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panicking test thread may poison the lock; the state is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records `call` and applies scripted failures; on success, hands back
    /// the locked state for the operation itself.
    fn begin(&self, call: RuntimeCall) -> Result<MutexGuard<'_, FakeState>, RuntimeError> {
        let mut state = self.lock();
        let operation = call.operation();
        state.calls.push(call);
        if state.unavailable {
            return Err(fake_unavailable());
        }
        if let Some(index) = state
            .scripted_failures
            .iter()
            .position(|(failing, _)| *failing == operation)
        {
            let (_, error) = state
                .scripted_failures
                .remove(index)
                .expect("index is in range");
            return Err(error);
        }
        Ok(state)
    }

    // ---- clock ----

    /// Sets the time used for timestamps and events (milliseconds since the epoch).
    pub fn set_now_ms(&self, now_ms: i64) {
        self.lock().now_ms = now_ms;
    }

    /// Moves the clock forward.
    pub fn advance_ms(&self, duration_ms: i64) {
        self.lock().now_ms += duration_ms;
    }

    pub fn now_ms(&self) -> i64 {
        self.lock().now_ms
    }

    // ---- scripting ----

    /// Makes `image` present, as if pulled earlier.
    pub fn add_image(&self, image: &str) {
        let mut state = self.lock();
        add_image(&mut state, image);
    }

    /// Makes `image` present as if pulled from its registry, which served
    /// the manifest with `digest` (`sha256:...`): what
    /// [`ContainerRuntime::image_digest`] then answers. Images from
    /// [`FakeRuntime::add_image`] or pulls without a registry digest have
    /// none, like images built locally.
    pub fn add_pulled_image(&self, image: &str, digest: &str) {
        let mut state = self.lock();
        add_image(&mut state, image);
        record_repo_digest(&mut state, image, digest);
    }

    /// Makes `image`'s registry serve a manifest with `digest`: every later
    /// successful pull of `image` records it, as [`FakeRuntime::add_pulled_image`].
    pub fn set_registry_digest(&self, image: &str, digest: &str) {
        self.lock()
            .registry_digests
            .insert(canonical_image(image), digest.to_string());
    }

    /// Makes every pull of `image` fail with `message` (as the registry would say it).
    pub fn fail_pull(&self, image: &str, message: impl Into<String>) {
        self.lock()
            .pull_failures
            .insert(canonical_image(image), message.into());
    }

    /// Lets pulls of `image` succeed again.
    pub fn clear_pull_failure(&self, image: &str) {
        self.lock().pull_failures.remove(&canonical_image(image));
    }

    /// Makes the next call of `operation` fail with `error` (once; calls to
    /// other operations are unaffected). Several can be queued.
    pub fn fail_next(&self, operation: Operation, error: RuntimeError) {
        self.lock().scripted_failures.push_back((operation, error));
    }

    /// Takes the runtime down (every call fails with
    /// [`RuntimeError::Unavailable`] and open event streams get that error,
    /// then end) or brings it back up.
    pub fn set_unavailable(&self, unavailable: bool) {
        let mut state = self.lock();
        state.unavailable = unavailable;
        if unavailable {
            for subscriber in state.subscribers.drain(..) {
                let _ = subscriber.sender.unbounded_send(Err(fake_unavailable()));
            }
            for follower in state.log_followers.drain(..) {
                let _ = follower.sender.unbounded_send(Err(fake_unavailable()));
            }
        }
    }

    /// Replaces what [`ContainerRuntime::info`] reports.
    pub fn set_info(&self, info: RuntimeInfo) {
        self.lock().info = info;
    }

    /// The container's main process exits with `exit_code`.
    ///
    /// Panics unless the container exists and is running.
    pub fn exit(&self, id_or_name: &str, exit_code: i64) {
        let mut state = self.lock();
        let id = state.scripted_container(id_or_name);
        assert!(
            state.running(&id),
            "FakeRuntime: container {id_or_name:?} is not running, it cannot exit"
        );
        state.finish(
            &id,
            exit_code,
            false,
            vec![ContainerEventAction::Die {
                exit_code: Some(exit_code),
            }],
        );
    }

    /// The kernel OOM-kills the container's main process: `oom`, then `die`
    /// with exit code 137, and `oom_killed` set.
    ///
    /// Panics unless the container exists and is running.
    pub fn oom(&self, id_or_name: &str) {
        let mut state = self.lock();
        let id = state.scripted_container(id_or_name);
        assert!(
            state.running(&id),
            "FakeRuntime: container {id_or_name:?} is not running, it cannot run out of memory"
        );
        state.finish(
            &id,
            SIGKILL_EXIT_CODE,
            true,
            vec![
                ContainerEventAction::Oom,
                ContainerEventAction::Die {
                    exit_code: Some(SIGKILL_EXIT_CODE),
                },
            ],
        );
    }

    /// Sets the healthcheck status; emits `health_status` when it changes.
    ///
    /// Panics unless the container exists.
    pub fn set_health(&self, id_or_name: &str, health: Health) {
        let mut state = self.lock();
        let id = state.scripted_container(id_or_name);
        let container = state.container_mut(&id);
        if container.state.health != Some(health) {
            container.state.health = Some(health);
            state.emit(&id, ContainerEventAction::HealthStatus(health));
        }
    }

    /// The container disappears without any event, as when it was removed
    /// while nobody was watching (e.g. during an agent restart). Its log
    /// streams end.
    ///
    /// Panics unless the container exists.
    pub fn vanish(&self, id_or_name: &str) {
        let mut state = self.lock();
        let id = state.scripted_container(id_or_name);
        state.containers.remove(&id);
        state.end_log_followers(&id);
    }

    /// The container's process writes one line, `text` without its newline,
    /// which the runtime records at `timestamp_ns` (nanoseconds since the
    /// epoch; the fake does not check that timestamps grow, Docker's
    /// stdout and stderr copiers do not guarantee it either). Open
    /// [`ContainerRuntime::follow_logs`] streams that asked for lines from
    /// `timestamp_ns` or earlier get it.
    ///
    /// Panics unless the container exists and is running (only a running
    /// process writes), or if `text` holds a newline or is longer than
    /// [`MAX_LOG_LINE_BYTES`] (a runtime never delivers such a line: write
    /// several).
    pub fn write_log(
        &self,
        id_or_name: &str,
        source: LogSource,
        timestamp_ns: i64,
        text: impl Into<Vec<u8>>,
    ) {
        let text = text.into();
        assert!(
            !text.contains(&b'\n'),
            "FakeRuntime: a log line has no newline in it; write one line per call"
        );
        assert!(
            text.len() <= MAX_LOG_LINE_BYTES,
            "FakeRuntime: a log line is at most {MAX_LOG_LINE_BYTES} bytes; write several"
        );
        let mut state = self.lock();
        let id = state.scripted_container(id_or_name);
        assert!(
            state.running(&id),
            "FakeRuntime: container {id_or_name:?} is not running, it cannot write output"
        );
        let line = LogLine {
            source,
            timestamp_ns,
            text,
        };
        state.log_followers.retain(|follower| {
            if follower.container_id != id || timestamp_ns < follower.since_ns {
                return !follower.sender.is_closed();
            }
            follower.sender.unbounded_send(Ok(line.clone())).is_ok()
        });
        state.container_mut(&id).log.push(line);
    }

    /// The exit code the container reports when stopped with
    /// `stop_container` (default 0: the process handled SIGTERM and exited
    /// cleanly; 137 models a process that ignores SIGTERM and is killed at
    /// the timeout; 143 one that dies of SIGTERM).
    ///
    /// Panics unless the container exists.
    pub fn set_stop_exit_code(&self, id_or_name: &str, exit_code: i64) {
        let mut state = self.lock();
        let id = state.scripted_container(id_or_name);
        state.container_mut(&id).stop_exit_code = exit_code;
    }

    /// Sets the counters [`ContainerRuntime::container_stats`] reports for
    /// the container while it runs (cumulative, as Docker's; script a
    /// smaller value to model counters that were reset). A `read_at_ns` of
    /// 0 reads as the fake's clock at the time of the call. Starting the
    /// container resets them to zero, as a Docker start does.
    ///
    /// Panics unless the container exists.
    pub fn set_stats(&self, id_or_name: &str, stats: ContainerStats) {
        let mut state = self.lock();
        let id = state.scripted_container(id_or_name);
        state.container_mut(&id).stats = Some(stats);
    }

    // ---- observing ----

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<RuntimeCall> {
        self.lock().calls.clone()
    }

    /// Every call so far, and forgets them.
    pub fn take_calls(&self) -> Vec<RuntimeCall> {
        std::mem::take(&mut self.lock().calls)
    }

    /// The calls that changed state (see [`RuntimeCall::is_mutation`]).
    pub fn mutating_calls(&self) -> Vec<RuntimeCall> {
        self.lock()
            .calls
            .iter()
            .filter(|call| call.is_mutation())
            .cloned()
            .collect()
    }

    /// Everything a container wrote, by id or name, without recording a call.
    pub fn log(&self, id_or_name: &str) -> Option<Vec<LogLine>> {
        let state = self.lock();
        let id = state.resolve(id_or_name)?;
        Some(state.containers[&id].log.clone())
    }

    /// How many [`ContainerRuntime::follow_logs`] streams are open and
    /// following (not yet ended by a stop, a removal or an outage).
    pub fn log_followers(&self) -> usize {
        let mut state = self.lock();
        state
            .log_followers
            .retain(|follower| !follower.sender.is_closed());
        state.log_followers.len()
    }

    /// A container's state by id or name, without recording a call.
    pub fn container(&self, id_or_name: &str) -> Option<ContainerState> {
        let state = self.lock();
        let id = state.resolve(id_or_name)?;
        Some(state.containers[&id].state.clone())
    }

    /// The spec a container was created from, by id or name.
    pub fn spec(&self, id_or_name: &str) -> Option<ContainerSpec> {
        let state = self.lock();
        let id = state.resolve(id_or_name)?;
        Some(state.containers[&id].spec.clone())
    }

    /// All containers in creation order, without recording a call.
    pub fn containers(&self) -> Vec<ContainerState> {
        self.lock()
            .containers
            .values()
            .map(|container| container.state.clone())
            .collect()
    }

    /// All volumes, by name.
    pub fn volumes(&self) -> Vec<VolumeSpec> {
        self.lock().volumes.values().cloned().collect()
    }

    /// Present images, canonical references (`busybox:latest`), sorted.
    pub fn images(&self) -> Vec<String> {
        self.lock().images.keys().cloned().collect()
    }
}

fn fake_unavailable() -> RuntimeError {
    RuntimeError::Unavailable {
        message: "the fake runtime is down (FakeRuntime::set_unavailable)".to_string(),
    }
}

fn record_repo_digest(state: &mut FakeState, image: &str, digest: &str) {
    let name = ImageReference::parse(image).name();
    state
        .repo_digests
        .insert(canonical_image(image), format!("{name}@{digest}"));
}

fn add_image(state: &mut FakeState, image: &str) {
    let canonical = canonical_image(image);
    if !state.images.contains_key(&canonical) {
        let image_id = format!("sha256:{:064x}", state.next_image_number);
        state.next_image_number += 1;
        state.images.insert(canonical, image_id);
    }
}

#[async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn info(&self) -> Result<RuntimeInfo, RuntimeError> {
        let state = self.begin(RuntimeCall::Info)?;
        Ok(state.info.clone())
    }

    async fn image_present(&self, image: &str) -> Result<bool, RuntimeError> {
        let state = self.begin(RuntimeCall::ImagePresent {
            image: image.to_string(),
        })?;
        Ok(state.images.contains_key(&canonical_image(image)))
    }

    async fn pull_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        let mut state = self.begin(RuntimeCall::PullImage {
            image: image.to_string(),
            username: auth.map(|auth| auth.username.clone()),
        })?;
        if let Some(message) = state.pull_failures.get(&canonical_image(image)) {
            return Err(RuntimeError::ImagePull {
                image: image.to_string(),
                message: message.clone(),
            });
        }
        add_image(&mut state, image);
        if let Some(digest) = state.registry_digests.get(&canonical_image(image)).cloned() {
            record_repo_digest(&mut state, image, &digest);
        }
        Ok(())
    }

    async fn image_digest(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        let state = self.begin(RuntimeCall::ImageDigest {
            image: image.to_string(),
        })?;
        let canonical = canonical_image(image);
        if !state.images.contains_key(&canonical) {
            return Err(RuntimeError::NotFound {
                message: format!("No such image: {canonical}"),
            });
        }
        let repo_digests: Vec<String> = state
            .repo_digests
            .get(&canonical)
            .cloned()
            .into_iter()
            .collect();
        Ok(ImageReference::parse(image).manifest_digest(&repo_digests))
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let mut state = self.begin(RuntimeCall::CreateContainer {
            spec: Box::new(spec.clone()),
        })?;
        let Some(image_id) = state.images.get(&canonical_image(&spec.image)).cloned() else {
            return Err(RuntimeError::NotFound {
                message: format!("No such image: {}", canonical_image(&spec.image)),
            });
        };
        let number = state.next_container_number;
        let id = format!("{number:064x}");
        let name = if spec.name.is_empty() {
            format!("fake_{number}")
        } else {
            spec.name.clone()
        };
        if let Some(existing) = state.resolve(&name) {
            return Err(RuntimeError::Conflict {
                message: format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \
                     \"{existing}\". You have to remove (or rename) that container to be able \
                     to reuse that name."
                ),
            });
        }
        let mut referenced: Vec<&str> = spec
            .volumes_from
            .iter()
            .map(|from| from.container.as_str())
            .collect();
        if let NetworkMode::ContainerOf(other) = &spec.network_mode {
            referenced.push(other);
        }
        if let Some(missing) = referenced
            .into_iter()
            .find(|other| state.resolve(other).is_none())
        {
            return Err(no_such_container(missing));
        }
        state.next_container_number += 1;
        let container = FakeContainer {
            spec: spec.clone(),
            state: ContainerState {
                id: id.clone(),
                name,
                labels: spec.labels.clone(),
                status: ContainerStatus::Created,
                exit_code: None,
                oom_killed: false,
                started_at_ms: None,
                finished_at_ms: None,
                health: None,
                port_bindings: Vec::new(),
                image: spec.image.clone(),
                image_id,
                error: None,
            },
            stop_exit_code: 0,
            log: Vec::new(),
            stats: None,
        };
        state.containers.insert(id.clone(), container);
        state.emit(&id, ContainerEventAction::Create);
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.begin(RuntimeCall::StartContainer { id: id.to_string() })?;
        let id = state.resolve(id).ok_or_else(|| no_such_container(id))?;
        if state.running(&id) {
            return Ok(());
        }
        let spec = state.containers[&id].spec.clone();
        let mut bindings = Vec::new();
        if spec.network_mode == NetworkMode::Bridge {
            for binding in &spec.port_bindings {
                let host_port = match binding.requested_host_port() {
                    Some(port) => {
                        if state.host_port_in_use(port, binding.protocol) {
                            return Err(RuntimeError::Other {
                                message: format!(
                                    "driver failed programming external connectivity on endpoint \
                                     {} ({id}): Bind for {}:{port} failed: port is already allocated",
                                    state.containers[&id].state.name,
                                    binding.host_ip_or_default(),
                                ),
                            });
                        }
                        port
                    }
                    None => state.next_dynamic_port(binding.protocol),
                };
                bindings.push(ActualBinding {
                    container_port: binding.container_port,
                    protocol: binding.protocol,
                    host_ip: binding.host_ip_or_default().to_string(),
                    host_port,
                });
            }
        }
        let now_ms = state.now_ms;
        let container = state.container_mut(&id);
        container.state.status = ContainerStatus::Running;
        container.state.exit_code = None;
        container.state.oom_killed = false;
        container.state.started_at_ms = Some(now_ms);
        container.state.finished_at_ms = None;
        container.state.health = spec.healthcheck.as_ref().map(|_| Health::Starting);
        container.state.port_bindings = bindings;
        container.stats = None;
        state.emit(&id, ContainerEventAction::Start);
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout_s: u32) -> Result<(), RuntimeError> {
        let mut state = self.begin(RuntimeCall::StopContainer {
            id: id.to_string(),
            timeout_s,
        })?;
        let Some(id) = state.resolve(id) else {
            return Ok(());
        };
        if state.running(&id) {
            let exit_code = state.containers[&id].stop_exit_code;
            state.finish(
                &id,
                exit_code,
                false,
                vec![
                    ContainerEventAction::Kill,
                    ContainerEventAction::Die {
                        exit_code: Some(exit_code),
                    },
                    ContainerEventAction::Stop,
                ],
            );
        }
        Ok(())
    }

    async fn kill_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.begin(RuntimeCall::KillContainer { id: id.to_string() })?;
        let Some(id) = state.resolve(id) else {
            return Ok(());
        };
        if state.running(&id) {
            state.finish(
                &id,
                SIGKILL_EXIT_CODE,
                false,
                vec![
                    ContainerEventAction::Kill,
                    ContainerEventAction::Die {
                        exit_code: Some(SIGKILL_EXIT_CODE),
                    },
                ],
            );
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let mut state = self.begin(RuntimeCall::RemoveContainer { id: id.to_string() })?;
        let Some(id) = state.resolve(id) else {
            return Ok(());
        };
        if state.running(&id) {
            state.finish(
                &id,
                SIGKILL_EXIT_CODE,
                false,
                vec![
                    ContainerEventAction::Kill,
                    ContainerEventAction::Die {
                        exit_code: Some(SIGKILL_EXIT_CODE),
                    },
                ],
            );
        }
        state.emit(&id, ContainerEventAction::Destroy);
        state.containers.remove(&id);
        Ok(())
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerState>, RuntimeError> {
        let state = self.begin(RuntimeCall::InspectContainer { id: id.to_string() })?;
        Ok(state
            .resolve(id)
            .map(|id| state.containers[&id].state.clone()))
    }

    async fn list_containers(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> Result<Vec<ContainerState>, RuntimeError> {
        let state = self.begin(RuntimeCall::ListContainers {
            label_key: label_key.to_string(),
            label_value: label_value.to_string(),
        })?;
        Ok(state
            .containers
            .values()
            .filter(|container| {
                container.state.labels.get(label_key).map(String::as_str) == Some(label_value)
            })
            .map(|container| container.state.clone())
            .collect())
    }

    async fn create_volume(&self, volume: &VolumeSpec) -> Result<(), RuntimeError> {
        let mut state = self.begin(RuntimeCall::CreateVolume {
            volume: volume.clone(),
        })?;
        let driver = |spec: &VolumeSpec| spec.driver.clone().unwrap_or_else(|| "local".to_string());
        if let Some(existing) = state.volumes.get(&volume.name) {
            if driver(existing) != driver(volume) {
                return Err(RuntimeError::Conflict {
                    message: format!(
                        "volume {} already exists with driver {}; remove it or use the same driver",
                        volume.name,
                        driver(existing)
                    ),
                });
            }
            return Ok(());
        }
        state.volumes.insert(volume.name.clone(), volume.clone());
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        let mut state = self.begin(RuntimeCall::RemoveVolume {
            name: name.to_string(),
        })?;
        if !state.volumes.contains_key(name) {
            return Ok(());
        }
        let users: Vec<String> =
            state
                .containers
                .values()
                .filter(|container| {
                    container.spec.mounts.iter().any(
                        |mount| matches!(mount, Mount::Volume { name: used, .. } if used == name),
                    )
                })
                .map(|container| container.state.id.clone())
                .collect();
        if !users.is_empty() {
            return Err(RuntimeError::Conflict {
                message: format!(
                    "remove {name}: volume is in use - [{}]; remove those containers first",
                    users.join(", ")
                ),
            });
        }
        state.volumes.remove(name);
        Ok(())
    }

    async fn events(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> Result<ContainerEventStream, RuntimeError> {
        let mut state = self.begin(RuntimeCall::Events {
            label_key: label_key.to_string(),
            label_value: label_value.to_string(),
        })?;
        let (sender, receiver) = mpsc::unbounded();
        state.subscribers.push(Subscriber {
            label_key: label_key.to_string(),
            label_value: label_value.to_string(),
            sender,
        });
        Ok(receiver.boxed())
    }

    async fn follow_logs(&self, id: &str, since_ns: i64) -> Result<LogLineStream, RuntimeError> {
        let mut state = self.begin(RuntimeCall::FollowLogs {
            id: id.to_string(),
            since_ns,
        })?;
        let id = state.resolve(id).ok_or_else(|| no_such_container(id))?;
        let written: Vec<LogLine> = state.containers[&id]
            .log
            .iter()
            .filter(|line| line.timestamp_ns >= since_ns)
            .cloned()
            .collect();
        if !state.running(&id) {
            return Ok(futures::stream::iter(written.into_iter().map(Ok)).boxed());
        }
        let (sender, receiver) = mpsc::unbounded();
        for line in written {
            sender
                .unbounded_send(Ok(line))
                .expect("the receiver is still here");
        }
        state.log_followers.push(LogFollower {
            container_id: id,
            since_ns,
            sender,
        });
        Ok(receiver.boxed())
    }

    async fn container_stats(&self, id: &str) -> Result<Option<ContainerStats>, RuntimeError> {
        let state = self.begin(RuntimeCall::ContainerStats { id: id.to_string() })?;
        let Some(id) = state.resolve(id) else {
            return Ok(None);
        };
        if !state.running(&id) {
            return Ok(None);
        }
        let mut stats = state.containers[&id].stats.clone().unwrap_or_default();
        if stats.read_at_ns == 0 {
            stats.read_at_ns = state.now_ms.saturating_mul(1_000_000);
        }
        Ok(Some(stats))
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::FutureExt;

    use super::*;
    use crate::{HealthCheck, PortBinding, Protocol};

    const IMAGE: &str = "app:1";

    fn labelled(name: &str) -> ContainerSpec {
        let mut spec = ContainerSpec::new(name, IMAGE);
        spec.labels.insert("berth.task".into(), "t1".into());
        spec
    }

    fn runtime_with_image() -> FakeRuntime {
        let runtime = FakeRuntime::new();
        runtime.add_image(IMAGE);
        runtime
    }

    /// Events already delivered to `stream`, without waiting for more.
    fn drain(stream: &mut ContainerEventStream) -> Vec<ContainerEventAction> {
        let mut actions = Vec::new();
        while let Some(Some(event)) = stream.next().now_or_never() {
            actions.push(event.expect("event").action);
        }
        actions
    }

    #[test]
    fn scripted_stats_are_reported_while_running_and_reset_by_a_start() {
        let runtime = runtime_with_image();
        runtime.set_now_ms(2_000);
        let id = block_on(runtime.create_container(&labelled("web"))).unwrap();
        assert_eq!(
            block_on(runtime.container_stats(&id)).unwrap(),
            None,
            "created, not running"
        );
        block_on(runtime.start_container(&id)).unwrap();
        assert_eq!(
            block_on(runtime.container_stats("web")).unwrap(),
            Some(ContainerStats {
                read_at_ns: 2_000_000_000,
                ..ContainerStats::default()
            }),
            "zero counters, read at the fake's clock"
        );
        let scripted = ContainerStats {
            read_at_ns: 7,
            cpu_used_ns: 1_500,
            memory_used_bytes: 1 << 20,
            memory_limit_bytes: 1 << 30,
            network_rx_bytes: 10,
            network_tx_bytes: 20,
            storage_read_bytes: 30,
            storage_write_bytes: 40,
        };
        runtime.set_stats("web", scripted.clone());
        assert_eq!(
            block_on(runtime.container_stats(&id)).unwrap(),
            Some(scripted.clone())
        );
        runtime.exit(&id, 0);
        assert_eq!(block_on(runtime.container_stats(&id)).unwrap(), None);
        block_on(runtime.start_container(&id)).unwrap();
        assert_eq!(
            block_on(runtime.container_stats(&id))
                .unwrap()
                .map(|stats| stats.cpu_used_ns),
            Some(0),
            "a start resets the counters"
        );
        block_on(runtime.remove_container(&id)).unwrap();
        assert_eq!(block_on(runtime.container_stats(&id)).unwrap(), None);
        assert_eq!(
            runtime.calls().last(),
            Some(&RuntimeCall::ContainerStats { id: id.clone() })
        );
        assert!(!Operation::ContainerStats.is_mutation());
        runtime.fail_next(
            Operation::ContainerStats,
            RuntimeError::Other {
                message: "boom".into(),
            },
        );
        assert!(block_on(runtime.container_stats(&id)).is_err());
    }

    #[test]
    fn lifecycle_created_running_exited() {
        let runtime = runtime_with_image();
        runtime.set_now_ms(1_000);
        let id = block_on(runtime.create_container(&labelled("web"))).unwrap();
        let created = runtime.container(&id).unwrap();
        assert_eq!(created.status, ContainerStatus::Created);
        assert_eq!(created.name, "web");
        assert_eq!(created.started_at_ms, None);

        runtime.set_now_ms(2_000);
        block_on(runtime.start_container("web")).unwrap();
        let running = block_on(runtime.inspect_container(&id)).unwrap().unwrap();
        assert_eq!(running.status, ContainerStatus::Running);
        assert_eq!(running.started_at_ms, Some(2_000));
        assert_eq!(running.exit_code, None);

        runtime.set_now_ms(3_500);
        runtime.exit(&id, 3);
        let exited = runtime.container(&id).unwrap();
        assert_eq!(exited.status, ContainerStatus::Exited);
        assert_eq!(exited.exit_code, Some(3));
        assert_eq!(exited.finished_at_ms, Some(3_500));
        assert!(!exited.oom_killed);
    }

    #[test]
    fn create_needs_the_image_and_a_free_name() {
        let runtime = FakeRuntime::new();
        let missing = block_on(runtime.create_container(&labelled("web"))).unwrap_err();
        assert_eq!(
            missing,
            RuntimeError::NotFound {
                message: "No such image: app:1".into()
            }
        );
        block_on(runtime.pull_image(IMAGE, None)).unwrap();
        assert!(block_on(runtime.image_present("app:1")).unwrap());
        block_on(runtime.create_container(&labelled("web"))).unwrap();
        let clash = block_on(runtime.create_container(&labelled("web"))).unwrap_err();
        assert!(matches!(clash, RuntimeError::Conflict { .. }), "{clash:?}");
        let joins_missing = ContainerSpec {
            network_mode: NetworkMode::ContainerOf("pause".into()),
            ..labelled("app")
        };
        assert_eq!(
            block_on(runtime.create_container(&joins_missing)).unwrap_err(),
            RuntimeError::NotFound {
                message: "No such container: pause".into()
            }
        );
    }

    #[test]
    fn images_without_a_tag_mean_latest() {
        let runtime = FakeRuntime::new();
        runtime.add_image("busybox");
        assert!(block_on(runtime.image_present("busybox:latest")).unwrap());
        assert!(!block_on(runtime.image_present("busybox:1")).unwrap());
        assert_eq!(runtime.images(), vec!["busybox:latest".to_string()]);
    }

    #[test]
    fn image_digests_come_from_the_registry() {
        const DIGEST: &str =
            "sha256:c3839dd800b9eb7603340509769c43e146a74c63dca3045a8e7dc8ee07e53966";
        let runtime = FakeRuntime::new();
        let digest = |image: &str| block_on(runtime.image_digest(image));
        // Built locally: no digest.
        runtime.add_image("berth-test/busybox");
        assert_eq!(digest("berth-test/busybox:latest"), Ok(None));
        // Pulled from a registry that serves a digest: that digest.
        runtime.set_registry_digest("localhost:5000/app:1", DIGEST);
        block_on(runtime.pull_image("localhost:5000/app:1", None)).unwrap();
        assert_eq!(digest("localhost:5000/app:1"), Ok(Some(DIGEST.to_string())));
        runtime.add_pulled_image("busybox", DIGEST);
        assert_eq!(digest("busybox:latest"), Ok(Some(DIGEST.to_string())));
        // A digest reference names its digest.
        let by_digest = format!("app@{DIGEST}");
        runtime.add_image(&by_digest);
        assert_eq!(digest(&by_digest), Ok(Some(DIGEST.to_string())));
        // Missing images are not found.
        assert_eq!(
            digest("nginx"),
            Err(RuntimeError::NotFound {
                message: "No such image: nginx:latest".into()
            })
        );
        assert!(runtime
            .calls()
            .iter()
            .all(|call| !call.is_mutation() || call.operation() == Operation::PullImage));
    }

    #[test]
    fn scripted_pull_failure_carries_the_message() {
        let runtime = FakeRuntime::new();
        runtime.fail_pull("private/app", "pull access denied for private/app");
        let auth = RegistryAuth {
            username: "AWS".into(),
            password: "token".into(),
        };
        let error = block_on(runtime.pull_image("private/app:latest", Some(&auth))).unwrap_err();
        assert_eq!(
            error,
            RuntimeError::ImagePull {
                image: "private/app:latest".into(),
                message: "pull access denied for private/app".into()
            }
        );
        assert_eq!(
            runtime.calls(),
            vec![RuntimeCall::PullImage {
                image: "private/app:latest".into(),
                username: Some("AWS".into())
            }]
        );
        runtime.clear_pull_failure("private/app");
        block_on(runtime.pull_image("private/app", None)).unwrap();
    }

    #[test]
    fn dynamic_ports_are_deterministic_and_fixed_ports_clash() {
        let runtime = runtime_with_image();
        let web = ContainerSpec {
            port_bindings: vec![
                PortBinding::dynamic_tcp(80),
                PortBinding {
                    host_port: Some(0),
                    protocol: Protocol::Udp,
                    ..PortBinding::dynamic_tcp(53)
                },
                PortBinding {
                    host_port: Some(8080),
                    ..PortBinding::dynamic_tcp(8080)
                },
            ],
            ..labelled("web")
        };
        block_on(runtime.create_container(&web)).unwrap();
        block_on(runtime.start_container("web")).unwrap();
        let bindings = runtime.container("web").unwrap().port_bindings;
        let ports: Vec<(u16, Protocol, u16)> = bindings
            .iter()
            .map(|binding| (binding.container_port, binding.protocol, binding.host_port))
            .collect();
        assert_eq!(
            ports,
            vec![
                (80, Protocol::Tcp, 32768),
                (53, Protocol::Udp, 32769),
                (8080, Protocol::Tcp, 8080)
            ]
        );

        let second = ContainerSpec {
            port_bindings: vec![PortBinding {
                host_port: Some(8080),
                ..PortBinding::dynamic_tcp(80)
            }],
            ..labelled("web2")
        };
        block_on(runtime.create_container(&second)).unwrap();
        let error = block_on(runtime.start_container("web2")).unwrap_err();
        assert!(
            error.to_string().contains("port is already allocated"),
            "{error}"
        );
        assert_eq!(
            runtime.container("web2").unwrap().status,
            ContainerStatus::Created
        );

        runtime.exit("web", 0);
        assert!(runtime.container("web").unwrap().port_bindings.is_empty());
        block_on(runtime.start_container("web2")).unwrap();
    }

    #[test]
    fn host_network_publishes_nothing() {
        let runtime = runtime_with_image();
        let spec = ContainerSpec {
            network_mode: NetworkMode::Host,
            port_bindings: vec![PortBinding::dynamic_tcp(80)],
            ..labelled("web")
        };
        block_on(runtime.create_container(&spec)).unwrap();
        block_on(runtime.start_container("web")).unwrap();
        assert!(runtime.container("web").unwrap().port_bindings.is_empty());
    }

    #[test]
    fn stop_kill_remove_are_idempotent_and_emit_docker_order() {
        let runtime = runtime_with_image();
        let mut events = block_on(runtime.events("berth.task", "t1")).unwrap();
        let id = block_on(runtime.create_container(&labelled("web"))).unwrap();
        block_on(runtime.start_container(&id)).unwrap();
        runtime.set_stop_exit_code(&id, 143);
        block_on(runtime.stop_container(&id, 30)).unwrap();
        block_on(runtime.stop_container(&id, 30)).unwrap();
        block_on(runtime.kill_container(&id)).unwrap();
        assert_eq!(runtime.container(&id).unwrap().exit_code, Some(143));
        block_on(runtime.remove_container(&id)).unwrap();
        block_on(runtime.remove_container(&id)).unwrap();
        block_on(runtime.stop_container(&id, 30)).unwrap();
        block_on(runtime.kill_container(&id)).unwrap();
        assert_eq!(block_on(runtime.inspect_container(&id)).unwrap(), None);
        assert_eq!(
            drain(&mut events),
            vec![
                ContainerEventAction::Create,
                ContainerEventAction::Start,
                ContainerEventAction::Kill,
                ContainerEventAction::Die {
                    exit_code: Some(143)
                },
                ContainerEventAction::Stop,
                ContainerEventAction::Destroy,
            ]
        );
    }

    #[test]
    fn removing_a_running_container_kills_it_first() {
        let runtime = runtime_with_image();
        let mut events = block_on(runtime.events("berth.task", "t1")).unwrap();
        let id = block_on(runtime.create_container(&labelled("web"))).unwrap();
        block_on(runtime.start_container(&id)).unwrap();
        drain(&mut events);
        block_on(runtime.kill_container("nope")).unwrap();
        block_on(runtime.remove_container(&id)).unwrap();
        assert_eq!(
            drain(&mut events),
            vec![
                ContainerEventAction::Kill,
                ContainerEventAction::Die {
                    exit_code: Some(137)
                },
                ContainerEventAction::Destroy,
            ]
        );
    }

    #[test]
    fn oom_and_health_are_scripted() {
        let runtime = runtime_with_image();
        runtime.set_now_ms(42);
        let mut events = block_on(runtime.events("berth.task", "t1")).unwrap();
        let spec = ContainerSpec {
            healthcheck: Some(HealthCheck {
                test: vec!["CMD".into(), "true".into()],
                interval_s: 5,
                timeout_s: 2,
                start_period_s: 0,
                retries: 3,
            }),
            ..labelled("web")
        };
        let id = block_on(runtime.create_container(&spec)).unwrap();
        block_on(runtime.start_container(&id)).unwrap();
        assert_eq!(
            runtime.container(&id).unwrap().health,
            Some(Health::Starting)
        );
        runtime.set_health(&id, Health::Healthy);
        runtime.set_health(&id, Health::Healthy);
        runtime.oom(&id);
        let state = runtime.container(&id).unwrap();
        assert!(state.oom_killed);
        assert_eq!(state.exit_code, Some(137));
        let events: Vec<ContainerEvent> =
            std::iter::from_fn(|| events.next().now_or_never().flatten())
                .map(|event| event.unwrap())
                .collect();
        assert!(events
            .iter()
            .all(|event| event.id == id && event.name == "web" && event.time_ms == 42));
        let actions: Vec<ContainerEventAction> =
            events.into_iter().map(|event| event.action).collect();
        assert_eq!(
            actions,
            vec![
                ContainerEventAction::Create,
                ContainerEventAction::Start,
                ContainerEventAction::HealthStatus(Health::Healthy),
                ContainerEventAction::Oom,
                ContainerEventAction::Die {
                    exit_code: Some(137)
                },
            ]
        );
    }

    #[test]
    fn events_and_lists_are_filtered_by_label() {
        let runtime = runtime_with_image();
        let mut events = block_on(runtime.events("berth.task", "t2")).unwrap();
        block_on(runtime.create_container(&labelled("one"))).unwrap();
        let mut other = labelled("two");
        other.labels.insert("berth.task".into(), "t2".into());
        let two = block_on(runtime.create_container(&other)).unwrap();
        assert_eq!(drain(&mut events), vec![ContainerEventAction::Create]);
        let listed = block_on(runtime.list_containers("berth.task", "t2")).unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|state| state.id.clone())
                .collect::<Vec<_>>(),
            vec![two]
        );
        assert_eq!(
            block_on(runtime.list_containers("berth.task", "t1"))
                .unwrap()
                .len(),
            1
        );
        assert!(block_on(runtime.list_containers("other", "t1"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn vanish_is_silent() {
        let runtime = runtime_with_image();
        let id = block_on(runtime.create_container(&labelled("web"))).unwrap();
        let mut events = block_on(runtime.events("berth.task", "t1")).unwrap();
        runtime.vanish(&id);
        assert!(drain(&mut events).is_empty());
        assert_eq!(block_on(runtime.inspect_container(&id)).unwrap(), None);
    }

    #[test]
    fn scripted_failures_hit_only_the_named_operation_once() {
        let runtime = runtime_with_image();
        let refused = RuntimeError::Other {
            message: "exec format error".into(),
        };
        runtime.fail_next(Operation::StartContainer, refused.clone());
        let id = block_on(runtime.create_container(&labelled("web"))).unwrap();
        assert_eq!(block_on(runtime.start_container(&id)).unwrap_err(), refused);
        block_on(runtime.start_container(&id)).unwrap();
    }

    #[test]
    fn unavailable_fails_calls_and_ends_event_streams() {
        let runtime = runtime_with_image();
        let mut events = block_on(runtime.events("berth.task", "t1")).unwrap();
        runtime.set_unavailable(true);
        assert!(matches!(
            block_on(runtime.info()),
            Err(RuntimeError::Unavailable { .. })
        ));
        assert!(matches!(
            block_on(events.next()),
            Some(Err(RuntimeError::Unavailable { .. }))
        ));
        assert!(
            block_on(events.next()).is_none(),
            "the stream ends after the error"
        );
        runtime.set_unavailable(false);
        assert_eq!(block_on(runtime.info()).unwrap().api_version, "1.41");
    }

    #[test]
    fn calls_are_recorded_and_split_into_mutations() {
        let runtime = runtime_with_image();
        let spec = labelled("web");
        let id = block_on(runtime.create_container(&spec)).unwrap();
        block_on(runtime.inspect_container(&id)).unwrap();
        block_on(runtime.start_container(&id)).unwrap();
        block_on(runtime.list_containers("berth.task", "t1")).unwrap();
        block_on(runtime.stop_container(&id, 7)).unwrap();
        assert_eq!(
            runtime.mutating_calls(),
            vec![
                RuntimeCall::CreateContainer {
                    spec: Box::new(spec)
                },
                RuntimeCall::StartContainer { id: id.clone() },
                RuntimeCall::StopContainer {
                    id: id.clone(),
                    timeout_s: 7
                },
            ]
        );
        assert_eq!(runtime.take_calls().len(), 5);
        assert!(runtime.calls().is_empty());
    }

    #[test]
    fn volumes_in_use_cannot_be_removed() {
        let runtime = runtime_with_image();
        let volume = VolumeSpec {
            name: "data".into(),
            ..VolumeSpec::default()
        };
        block_on(runtime.create_volume(&volume)).unwrap();
        block_on(runtime.create_volume(&volume)).unwrap();
        let other_driver = VolumeSpec {
            driver: Some("nfs".into()),
            ..volume.clone()
        };
        assert!(matches!(
            block_on(runtime.create_volume(&other_driver)),
            Err(RuntimeError::Conflict { .. })
        ));
        let spec = ContainerSpec {
            mounts: vec![Mount::Volume {
                name: "data".into(),
                target: "/data".into(),
                read_only: false,
            }],
            ..labelled("web")
        };
        let id = block_on(runtime.create_container(&spec)).unwrap();
        assert!(matches!(
            block_on(runtime.remove_volume("data")),
            Err(RuntimeError::Conflict { .. })
        ));
        block_on(runtime.remove_container(&id)).unwrap();
        block_on(runtime.remove_volume("data")).unwrap();
        block_on(runtime.remove_volume("data")).unwrap();
        assert!(runtime.volumes().is_empty());
    }

    fn line(source: LogSource, timestamp_ns: i64, text: &str) -> LogLine {
        LogLine {
            source,
            timestamp_ns,
            text: text.as_bytes().to_vec(),
        }
    }

    /// Lines already delivered to `stream`, without waiting for more, and
    /// whether the stream has ended.
    fn drain_log(stream: &mut LogLineStream) -> (Vec<LogLine>, bool) {
        let mut lines = Vec::new();
        loop {
            match stream.next().now_or_never() {
                Some(Some(line)) => lines.push(line.expect("a line, not an error")),
                Some(None) => return (lines, true),
                None => return (lines, false),
            }
        }
    }

    /// A running container `web` that wrote `out 1` at 10, `err 2` at 20 and
    /// `out 3` at 30.
    fn container_with_output() -> (FakeRuntime, String) {
        let runtime = runtime_with_image();
        let id = block_on(runtime.create_container(&labelled("web"))).unwrap();
        block_on(runtime.start_container(&id)).unwrap();
        runtime.write_log("web", LogSource::Stdout, 10, "out 1");
        runtime.write_log(&id, LogSource::Stderr, 20, "err 2");
        runtime.write_log(&id, LogSource::Stdout, 30, b"out 3\r".to_vec());
        (runtime, id)
    }

    #[test]
    fn follow_logs_starts_at_since_inclusive() {
        fn check(since_ns: i64, expected: &[(LogSource, i64, &str)]) {
            let (runtime, id) = container_with_output();
            let mut stream = block_on(runtime.follow_logs(&id, since_ns)).unwrap();
            let expected: Vec<LogLine> = expected
                .iter()
                .map(|(source, timestamp_ns, text)| line(*source, *timestamp_ns, text))
                .collect();
            assert_eq!(
                drain_log(&mut stream),
                (expected, false),
                "since {since_ns}"
            );
        }
        check(
            0,
            &[
                (LogSource::Stdout, 10, "out 1"),
                (LogSource::Stderr, 20, "err 2"),
                (LogSource::Stdout, 30, "out 3\r"),
            ],
        );
        check(
            20,
            &[
                (LogSource::Stderr, 20, "err 2"),
                (LogSource::Stdout, 30, "out 3\r"),
            ],
        );
        check(21, &[(LogSource::Stdout, 30, "out 3\r")]);
        check(31, &[]);
    }

    #[test]
    fn follow_logs_follows_until_the_container_stops() {
        let (runtime, id) = container_with_output();
        let mut stream = block_on(runtime.follow_logs("web", 30)).unwrap();
        assert_eq!(
            drain_log(&mut stream),
            (vec![line(LogSource::Stdout, 30, "out 3\r")], false)
        );
        runtime.write_log(&id, LogSource::Stderr, 40, "err 4");
        runtime.write_log(&id, LogSource::Stdout, 50, "");
        assert_eq!(
            drain_log(&mut stream),
            (
                vec![
                    line(LogSource::Stderr, 40, "err 4"),
                    line(LogSource::Stdout, 50, "")
                ],
                false
            )
        );
        assert_eq!(runtime.log_followers(), 1);
        runtime.write_log(&id, LogSource::Stdout, 60, "last");
        runtime.exit(&id, 0);
        assert_eq!(
            drain_log(&mut stream),
            (vec![line(LogSource::Stdout, 60, "last")], true)
        );
        assert_eq!(runtime.log_followers(), 0);
        assert_eq!(runtime.log(&id).unwrap().len(), 6);
        assert_eq!(
            runtime.calls().last(),
            Some(&RuntimeCall::FollowLogs {
                id: "web".into(),
                since_ns: 30
            })
        );
    }

    #[test]
    fn every_way_of_stopping_ends_log_streams() {
        type Stop = fn(&FakeRuntime, &str);
        let stops: [(&str, Stop); 5] = [
            ("exit", |runtime, id| runtime.exit(id, 1)),
            ("oom", |runtime, id| runtime.oom(id)),
            ("stop", |runtime, id| {
                block_on(runtime.stop_container(id, 10)).unwrap()
            }),
            ("kill", |runtime, id| {
                block_on(runtime.kill_container(id)).unwrap()
            }),
            ("remove", |runtime, id| {
                block_on(runtime.remove_container(id)).unwrap()
            }),
        ];
        for (name, stop) in stops {
            let (runtime, id) = container_with_output();
            let mut stream = block_on(runtime.follow_logs(&id, 0)).unwrap();
            stop(&runtime, &id);
            let (lines, ended) = drain_log(&mut stream);
            assert_eq!(lines.len(), 3, "{name}");
            assert!(ended, "{name} ends the stream");
        }
        let (runtime, id) = container_with_output();
        let mut stream = block_on(runtime.follow_logs(&id, 0)).unwrap();
        runtime.vanish(&id);
        assert!(drain_log(&mut stream).1, "vanish ends the stream");
    }

    #[test]
    fn stopped_containers_give_what_they_wrote_and_end() {
        let (runtime, id) = container_with_output();
        runtime.exit(&id, 0);
        let mut stream = block_on(runtime.follow_logs(&id, 15)).unwrap();
        let (lines, ended) = drain_log(&mut stream);
        assert_eq!(
            lines,
            vec![
                line(LogSource::Stderr, 20, "err 2"),
                line(LogSource::Stdout, 30, "out 3\r")
            ]
        );
        assert!(ended);

        // A restarted container keeps its earlier output.
        block_on(runtime.start_container(&id)).unwrap();
        runtime.write_log(&id, LogSource::Stdout, 40, "again");
        let mut stream = block_on(runtime.follow_logs(&id, 0)).unwrap();
        assert_eq!(
            drain_log(&mut stream),
            (
                vec![
                    line(LogSource::Stdout, 10, "out 1"),
                    line(LogSource::Stderr, 20, "err 2"),
                    line(LogSource::Stdout, 30, "out 3\r"),
                    line(LogSource::Stdout, 40, "again"),
                ],
                false
            )
        );

        let created = block_on(runtime.create_container(&labelled("idle"))).unwrap();
        let mut stream = block_on(runtime.follow_logs(&created, 0)).unwrap();
        assert_eq!(drain_log(&mut stream), (Vec::new(), true));
    }

    #[test]
    fn follow_logs_of_a_missing_container_is_not_found() {
        let runtime = runtime_with_image();
        let error = block_on(runtime.follow_logs("ghost", 0)).err().unwrap();
        assert_eq!(
            error,
            RuntimeError::NotFound {
                message: "No such container: ghost".into()
            }
        );
    }

    #[test]
    fn an_outage_cuts_log_streams_with_unavailable() {
        let (runtime, id) = container_with_output();
        let mut stream = block_on(runtime.follow_logs(&id, 0)).unwrap();
        runtime.set_unavailable(true);
        let mut items = Vec::new();
        while let Some(Some(item)) = stream.next().now_or_never() {
            items.push(item);
        }
        assert_eq!(items.len(), 4, "{items:?}");
        assert!(matches!(items[3], Err(RuntimeError::Unavailable { .. })));
        assert!(block_on(stream.next()).is_none(), "the stream ends");
        assert!(matches!(
            block_on(runtime.follow_logs(&id, 0)),
            Err(RuntimeError::Unavailable { .. })
        ));
        runtime.set_unavailable(false);
        runtime.fail_next(
            Operation::FollowLogs,
            RuntimeError::Other {
                message: "scripted".into(),
            },
        );
        assert!(block_on(runtime.follow_logs(&id, 0)).is_err());
        assert_eq!(
            drain_log(&mut block_on(runtime.follow_logs(&id, 0)).unwrap())
                .0
                .len(),
            3
        );
    }

    #[test]
    #[should_panic(expected = "cannot write output")]
    fn only_running_containers_write() {
        let runtime = runtime_with_image();
        block_on(runtime.create_container(&labelled("web"))).unwrap();
        runtime.write_log("web", LogSource::Stdout, 1, "hello");
    }

    #[test]
    #[should_panic(expected = "one line per call")]
    fn a_log_line_holds_no_newline() {
        let (runtime, id) = container_with_output();
        runtime.write_log(&id, LogSource::Stdout, 1, "two\nlines");
    }

    #[test]
    #[should_panic(expected = "no container \"ghost\"")]
    fn scripting_an_unknown_container_is_a_test_bug() {
        FakeRuntime::new().exit("ghost", 1);
    }
}
