//! What the runtime reports back: container state, events, host facts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::Protocol;

/// Docker's container status words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContainerStatus {
    /// Created, never started (or a start failed before the process ran).
    Created,
    Running,
    Paused,
    /// Docker's own restart policy is restarting it (Berth never sets one).
    Restarting,
    /// The process ended; `exit_code` is set.
    Exited,
    /// Docker failed to stop or remove it; needs removing again.
    Dead,
    /// Removal in progress.
    Removing,
}

impl ContainerStatus {
    /// Docker's word for the status (`created`, `running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Restarting => "restarting",
            ContainerStatus::Exited => "exited",
            ContainerStatus::Dead => "dead",
            ContainerStatus::Removing => "removing",
        }
    }

    /// Parses Docker's word for the status.
    pub fn parse(word: &str) -> Option<ContainerStatus> {
        Some(match word {
            "created" => ContainerStatus::Created,
            "running" => ContainerStatus::Running,
            "paused" => ContainerStatus::Paused,
            "restarting" => ContainerStatus::Restarting,
            "exited" => ContainerStatus::Exited,
            "dead" => ContainerStatus::Dead,
            "removing" => ContainerStatus::Removing,
            _ => return None,
        })
    }

    /// The process exists (it may be frozen or between restarts).
    pub fn is_running(self) -> bool {
        matches!(
            self,
            ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting
        )
    }

    /// The process has ended and will not come back by itself: ECS `STOPPED`.
    pub fn has_stopped(self) -> bool {
        matches!(
            self,
            ContainerStatus::Exited | ContainerStatus::Dead | ContainerStatus::Removing
        )
    }
}

/// Docker healthcheck status (ECS container `healthStatus` UNKNOWN is `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Health {
    /// Within the start period or before the first check finished.
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    /// Docker's word: `starting`, `healthy`, `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }

    /// Parses Docker's word; `none` and unknown words give `None`.
    pub fn parse(word: &str) -> Option<Health> {
        match word {
            "starting" => Some(Health::Starting),
            "healthy" => Some(Health::Healthy),
            "unhealthy" => Some(Health::Unhealthy),
            _ => None,
        }
    }
}

/// A port binding as Docker made it (ECS `networkBindings`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActualBinding {
    pub container_port: u16,
    pub protocol: Protocol,
    /// `0.0.0.0`, `::` or the address asked for.
    pub host_ip: String,
    pub host_port: u16,
}

/// A container as the runtime sees it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    /// Full Docker container id (64 hex digits).
    pub id: String,
    /// Docker name, without Docker's leading `/`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub status: ContainerStatus,
    /// Set once the process has ended ([`ContainerStatus::has_stopped`]).
    pub exit_code: Option<i64>,
    /// The kernel OOM killer killed a process of this container (exit code
    /// is then usually 137). ECS reports `OutOfMemoryError: Container killed
    /// due to memory usage`. Docker can learn of the OOM a few milliseconds
    /// after the exit, so an inspect right after a `Die` event may still say
    /// `false`; an [`ContainerEventAction::Oom`] event settles it.
    pub oom_killed: bool,
    /// Milliseconds since the Unix epoch; `None` if never started.
    pub started_at_ms: Option<i64>,
    /// Milliseconds since the Unix epoch; `None` if it has not ended. Never
    /// before `started_at_ms`.
    pub finished_at_ms: Option<i64>,
    /// `None` when the container has no healthcheck.
    pub health: Option<Health>,
    /// Empty unless running with published ports.
    pub port_bindings: Vec<ActualBinding>,
    /// The image reference the container was created from, as given.
    pub image: String,
    /// The image's content id (`sha256:...`): ECS `imageDigest` material.
    pub image_id: String,
    /// Docker's error for a failed start (e.g. the executable was not found),
    /// `None` when there was none.
    pub error: Option<String>,
}

/// What happened to a container (Docker event `Action`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerEventAction {
    Create,
    Start,
    /// The process ended.
    Die {
        exit_code: Option<i64>,
    },
    /// The OOM killer hit the container. It can arrive before or after the
    /// `Die` of the same exit.
    Oom,
    /// A signal was sent (by stop, kill or remove).
    Kill,
    /// A stop request completed.
    Stop,
    Pause,
    Unpause,
    Restart,
    HealthStatus(Health),
    /// The container was removed.
    Destroy,
}

/// One container event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerEvent {
    /// Full Docker container id.
    pub id: String,
    /// Docker name.
    pub name: String,
    pub action: ContainerEventAction,
    /// When it happened, milliseconds since the Unix epoch.
    pub time_ms: i64,
}

/// Facts about the runtime and the host it runs on (for container instance
/// registration: ECS `registeredResources`, `versionInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// e.g. `20.10.24+dfsg1`.
    pub server_version: String,
    /// The API version in use after negotiation, e.g. `1.41`.
    pub api_version: String,
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `x86_64`.
    pub arch: String,
    pub cpus: u32,
    pub memory_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_round_trip() {
        for status in [
            ContainerStatus::Created,
            ContainerStatus::Running,
            ContainerStatus::Paused,
            ContainerStatus::Restarting,
            ContainerStatus::Exited,
            ContainerStatus::Dead,
            ContainerStatus::Removing,
        ] {
            assert_eq!(ContainerStatus::parse(status.as_str()), Some(status));
            assert!(
                !(status.is_running() && status.has_stopped()),
                "{status:?} cannot be both running and stopped"
            );
        }
        assert_eq!(ContainerStatus::parse("up"), None);
        assert!(!ContainerStatus::Created.is_running() && !ContainerStatus::Created.has_stopped());
    }

    #[test]
    fn health_words_round_trip() {
        for health in [Health::Starting, Health::Healthy, Health::Unhealthy] {
            assert_eq!(Health::parse(health.as_str()), Some(health));
        }
        assert_eq!(Health::parse("none"), None);
    }
}
