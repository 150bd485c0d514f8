//! The node agent: joins a machine to a cluster as a container instance and
//! runs the tasks the control plane places on it, on the local container
//! runtime.
//!
//! # Layout
//!
//! Pure decisions (no tokio, no I/O, no clock; tested with tables and
//! `runtime::fake`):
//! - [`blueprint`]: desired task → [`runtime::ContainerSpec`]s, Docker names,
//!   labels, volumes, dependencies; [`blueprint::unsupported_feature`] names
//!   the first field Berth cannot honour.
//! - [`reconcile`]: desired tasks + observed containers + [`reconcile::LocalState`]
//!   + `now` → [`reconcile::Plan`] (runtime actions, reports, memory updates).
//! - [`report`]: task and container state → `SubmitTaskStateChange` calls.
//! - [`registration`]: `RegisterContainerInstance` from host facts.
//! - [`awslogs`]: the `awslogs` log driver's options, stream names, and a
//!   container's output lines → events → batches with a producer cursor.
//! - [`credentials`]: the AWS credential and region chain, with injected
//!   environment and file reads.
//!
//! Shells: `executor` (runs one task's actions in order on the runtime; async
//! but free of tokio, so tests drive it with `block_on`), [`client`]
//! (SigV4-signed ECS calls and the session stream), [`state_file`], and the
//! agent loop in `shell` ([`run_with`], [`run_with_runtime`]): registration,
//! the session (reconnects with backoff, also when silent for 3 heartbeats),
//! Docker events plus a periodic listing, one executor per task with actions
//! in flight (tasks in parallel), and a reporter that retries every report
//! until the control plane acknowledges it. [`log_shipper`] delivers each
//! awslogs container's output (one tokio task per started container; the
//! control plane's producer cursor is the only record of what arrived), and
//! a container is removed only once its output was delivered.
//! [`metrics_reporter`] samples the running containers of the agent's
//! tasks every few seconds in its own tokio task and sends their
//! consumption (`PutTaskMetrics`) for CloudWatch; lost reports are gaps.
//!
//! **Architecture Invariant:** the agent only ever touches containers that
//! carry its container instance ARN label; several agents may share one
//! Docker Engine.
//!
//! # Limits (say so rather than pretend)
//! - Task-level `memory`/`cpu` are applied to each container (Docker has no
//!   task cgroup through the runtime seam): exact for single-container tasks;
//!   for several containers each is held to the task's limit, not their sum.
//! - `repositoryCredentials` are resolved from credentials given to the agent
//!   (Berth has no Secrets Manager).

pub mod awslogs;
pub mod blueprint;
pub mod client;
mod clock;
pub mod credentials;
mod executor;
pub mod log_shipper;
pub mod metrics_reporter;
pub mod reconcile;
pub mod registration;
pub mod registry_login;
pub mod report;
mod shell;
pub mod state_file;

pub use clock::Clock;
pub use credentials::Credentials;
pub use reconcile::ImagePullBehavior;
pub use runtime::RegistryAuth;
pub use shell::{run_with, run_with_runtime, AgentConfig, Timing};

/// An agent fault.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The agent's configuration is unusable; the message says what to change.
    #[error("{message}")]
    Config { message: String },
    /// The state file cannot be read or written.
    #[error("agent state file {path}: {message}")]
    StateFile { path: String, message: String },
    /// The container runtime failed.
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// The control plane could not be reached.
    #[error("cannot reach the control plane at {endpoint}: {message} (is `berth server` running there?)")]
    Transport { endpoint: String, message: String },
    /// The control plane answered with an error.
    #[error("{operation} failed: {code}: {message}")]
    Api {
        operation: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The control plane's answer could not be understood.
    #[error("unexpected answer from the control plane to {operation}: {message}")]
    Protocol { operation: String, message: String },
}

impl AgentError {
    /// Worth trying again later: the control plane was unreachable, busy or
    /// failing, not refusing the request.
    pub fn is_retryable(&self) -> bool {
        match self {
            AgentError::Transport { .. } => true,
            AgentError::Api { status, code, .. } => *status >= 500 || code.contains("Throttl"),
            AgentError::Protocol { .. } => true,
            AgentError::Runtime(runtime::RuntimeError::Unavailable { .. }) => true,
            AgentError::Config { .. } | AgentError::StateFile { .. } | AgentError::Runtime(_) => {
                false
            }
        }
    }
}
