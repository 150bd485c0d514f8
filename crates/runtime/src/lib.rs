//! The container runtime seam.
//!
//! The agent decides what should run; a [`ContainerRuntime`] makes it so on
//! one host. This crate holds the trait, the values crossing it
//! ([`ContainerSpec`] in; [`ContainerState`], [`ContainerEvent`],
//! [`RuntimeInfo`], [`LogLine`] out), the one error type, and [`fake::FakeRuntime`], an
//! in-memory scriptable implementation for deterministic tests and the
//! simulator. The Docker Engine implementation lives in `runtime-docker`.
//!
//! **Architecture Invariant:** this crate knows nothing about Docker's wire
//! format, sockets, tokio or the clock. The fake's time is a counter the test sets.
//!
//! Contract every implementation honours (the fake and Docker alike):
//! - Containers are addressed by the id `create_container` returned or by
//!   their name.
//! - `stop_container`, `kill_container` and `remove_container` are idempotent:
//!   a container that is already stopped or gone is not an error.
//!   `inspect_container` answers `None` for a container that is gone.
//! - `create_container` needs the image to be present; pull it first.
//!   Pulling always asks the registry, even for a present image.
//! - `events` delivers events that happen after it returns. To miss nothing,
//!   subscribe first, then `list_containers`, then apply the events. If the
//!   runtime goes away (e.g. the daemon restarts) the stream yields one
//!   [`RuntimeError::Unavailable`] and ends: subscribe and list again.
//! - `follow_logs` delivers what the container wrote from a timestamp on
//!   (inclusive) and follows until the container stops. If the runtime goes
//!   away mid-stream the stream yields one [`RuntimeError::Unavailable`] and
//!   ends: follow again from the last timestamp seen (lines with that
//!   timestamp come again; skip the ones already handled).
//! - `container_stats` answers `None` for a container that is gone or not
//!   running. Its counters are cumulative since the container (last)
//!   started: a restart resets them.

use async_trait::async_trait;
use futures::stream::BoxStream;

pub mod fake;
mod logs;
mod spec;
mod state;

pub use logs::{LogLine, LogLineStream, LogSource, MAX_LOG_LINE_BYTES};
pub use spec::{
    ContainerSpec, Device, DevicePermission, ExtraHost, HealthCheck, ImageReference, Link,
    LogDriver, Mount, NetworkMode, PortBinding, Protocol, RegistryAuth, Tmpfs, Ulimit, VolumeFrom,
    VolumeSpec,
};
pub use state::{
    ActualBinding, ContainerEvent, ContainerEventAction, ContainerState, ContainerStatus, Health,
    RuntimeInfo,
};

/// One sample of a running container's resource counters, as the runtime
/// reads them (Docker's `GET /containers/{id}/stats`). Counters are
/// cumulative since the container started; the difference between two
/// samples is what the container consumed in between.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerStats {
    /// When the runtime read the counters, nanoseconds since the Unix epoch
    /// (Docker's `read`).
    pub read_at_ns: i64,
    /// CPU time used by all the container's processes (Docker's
    /// `cpu_stats.cpu_usage.total_usage`).
    pub cpu_used_ns: u64,
    /// Memory in use less the inactive page cache, as `docker stats` shows
    /// it: `usage` minus `total_inactive_file` (cgroup v1) or
    /// `inactive_file` (cgroup v2). A gauge, not a counter.
    pub memory_used_bytes: u64,
    /// The container's memory limit (the host's memory when it has none).
    pub memory_limit_bytes: u64,
    /// Bytes received and sent, summed over the container's interfaces
    /// (zero without a network of its own, e.g. `host` or `none`).
    pub network_rx_bytes: u64,
    pub network_tx_bytes: u64,
    /// Bytes read from and written to block devices.
    pub storage_read_bytes: u64,
    pub storage_write_bytes: u64,
}

/// Container events, in the order the runtime emitted them.
pub type ContainerEventStream = BoxStream<'static, Result<ContainerEvent, RuntimeError>>;

/// A container runtime fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The container, image or volume does not exist; `message` says which
    /// (Docker's words, e.g. `No such image: app:1`).
    #[error("{message}")]
    NotFound { message: String },
    /// Pulling `image` failed; `message` is the runtime's reason verbatim.
    /// ECS reports it to users as `CannotPullContainerError: <message>`.
    #[error(
        "pulling image {image} failed: {message} (check that the image name and tag exist, \
         that the registry is reachable from this host, and the registry credentials)"
    )]
    ImagePull { image: String, message: String },
    /// The request clashes with current state, e.g. the container name is
    /// taken or a volume is still in use.
    #[error("{message}")]
    Conflict { message: String },
    /// The runtime rejected the spec as invalid; `message` says which field.
    #[error("invalid container spec: {message}")]
    InvalidSpec { message: String },
    /// The runtime cannot be reached.
    #[error("container runtime unavailable: {message}")]
    Unavailable { message: String },
    /// Any other runtime failure, in the runtime's words (e.g. a start that
    /// failed because a host port is already allocated).
    #[error("container runtime error: {message}")]
    Other { message: String },
}

/// One host's container runtime. See the crate docs for the contract.
#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// Runtime version and host resources.
    async fn info(&self) -> Result<RuntimeInfo, RuntimeError>;

    /// Whether `image` is present locally (a missing tag means `latest`).
    async fn image_present(&self, image: &str) -> Result<bool, RuntimeError>;

    /// Pulls `image` from its registry, with `auth` for private registries.
    /// Fails with [`RuntimeError::ImagePull`] carrying the registry's reason.
    async fn pull_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError>;

    /// The manifest digest (`sha256:...`, ECS `imageDigest`) of the present
    /// `image`: the one its registry served, as `docker pull` prints it
    /// ("Digest:"). See [`ImageReference::manifest_digest`]: the
    /// reference's own digest if it has one, else the repository digest of
    /// the reference's repository; `None` for an image that was never
    /// pulled from or pushed to that repository (built locally). A missing
    /// image is [`RuntimeError::NotFound`].
    async fn image_digest(&self, image: &str) -> Result<Option<String>, RuntimeError>;

    /// Creates (does not start) a container; returns its id.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;

    /// Starts a created or stopped container. Starting a running one is a no-op.
    async fn start_container(&self, id: &str) -> Result<(), RuntimeError>;

    /// Sends SIGTERM (or the image's stop signal), then SIGKILL after
    /// `timeout_s`; returns once the container has stopped. Stopped or
    /// missing containers are fine.
    async fn stop_container(&self, id: &str, timeout_s: u32) -> Result<(), RuntimeError>;

    /// Sends SIGKILL. Stopped or missing containers are fine.
    async fn kill_container(&self, id: &str) -> Result<(), RuntimeError>;

    /// Removes the container (killing it if running) and its anonymous
    /// volumes. A missing container is fine.
    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError>;

    /// The container's current state, `None` if it does not exist.
    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerState>, RuntimeError>;

    /// Every container (running or not) carrying label `label_key=label_value`.
    async fn list_containers(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> Result<Vec<ContainerState>, RuntimeError>;

    /// Creates a volume; creating an existing volume with the same driver is a no-op.
    async fn create_volume(&self, volume: &VolumeSpec) -> Result<(), RuntimeError>;

    /// Removes a volume. A missing volume is fine; one in use is a
    /// [`RuntimeError::Conflict`].
    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError>;

    /// Events of containers carrying label `label_key=label_value`, from now on.
    async fn events(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> Result<ContainerEventStream, RuntimeError>;

    /// The container's stdout and stderr, from lines recorded at or after
    /// `since_ns` (nanoseconds since the Unix epoch) on, in the order
    /// written, following new output until the container has stopped: then
    /// the stream ends after the last line. A container that is not running
    /// gives what it wrote and ends. A missing container is
    /// [`RuntimeError::NotFound`].
    async fn follow_logs(&self, id: &str, since_ns: i64) -> Result<LogLineStream, RuntimeError>;

    /// One sample of the container's resource counters; `None` if the
    /// container is gone or not running.
    async fn container_stats(&self, id: &str) -> Result<Option<ContainerStats>, RuntimeError>;
}
