//! Carries out a task's [`Action`]s on the container runtime, in order,
//! and turns what happened into [`LocalUpdate`]s and fresh observations.
//!
//! Async but tied to no async runtime (no tokio), so tests drive it with
//! `futures::executor::block_on` against `runtime::fake`.

use std::sync::Arc;

use model::agent::LABEL_TASK_ARN;
use runtime::{ContainerRuntime, ContainerState, RuntimeError};
use tracing::{debug, info, warn};

use crate::awslogs::{self, AwsLogsConfig};
use crate::blueprint::RegistryCredentials;
use crate::clock::Clock;
use crate::log_shipper::{ensure_stream, LogsApi, PrepareError};
use crate::reconcile::{Action, ImagePullBehavior, LocalUpdate, PullDecision};
use crate::registry_login::RegistryLogin;

/// An observation of one container: its state, or `None` when it is gone.
#[derive(Debug)]
pub(crate) struct Observation {
    pub(crate) id: String,
    pub(crate) state: Option<ContainerState>,
}

/// What one executor run did.
pub(crate) struct Done {
    pub(crate) task_arn: String,
    pub(crate) updates: Vec<LocalUpdate>,
    pub(crate) observations: Vec<Observation>,
}

/// The runtime's own words, without our prefixes.
fn runtime_message(error: &RuntimeError) -> String {
    match error {
        RuntimeError::NotFound { message }
        | RuntimeError::Conflict { message }
        | RuntimeError::InvalidSpec { message }
        | RuntimeError::Unavailable { message }
        | RuntimeError::Other { message }
        | RuntimeError::ImagePull { message, .. } => message.clone(),
    }
}

/// Runs one task's actions in order; stops at the first failure. Without
/// a logs client: for tasks without awslogs containers.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) async fn execute(
    runtime: Arc<dyn ContainerRuntime>,
    clock: Clock,
    runtime_retry_ms: i64,
    task_arn: String,
    actions: Vec<Action>,
) -> Done {
    execute_with_logs(
        runtime,
        None,
        None,
        clock,
        runtime_retry_ms,
        task_arn,
        actions,
    )
    .await
}

/// [`execute`], creating awslogs containers' log streams with `logs` and
/// pulling images of Berth's registry with credentials from `registry`.
pub(crate) async fn execute_with_logs(
    runtime: Arc<dyn ContainerRuntime>,
    logs: Option<Arc<dyn LogsApi>>,
    registry: Option<Arc<dyn RegistryLogin>>,
    clock: Clock,
    runtime_retry_ms: i64,
    task_arn: String,
    actions: Vec<Action>,
) -> Done {
    let mut execution = Execution {
        runtime,
        logs,
        registry,
        clock,
        runtime_retry_ms,
        task_arn,
        updates: Vec::new(),
        observations: Vec::new(),
    };
    for action in actions {
        debug!(task = %execution.task_arn, ?action, "action");
        if !execution.run(action).await {
            break;
        }
    }
    Done {
        task_arn: execution.task_arn,
        updates: execution.updates,
        observations: execution.observations,
    }
}

struct Execution {
    runtime: Arc<dyn ContainerRuntime>,
    logs: Option<Arc<dyn LogsApi>>,
    registry: Option<Arc<dyn RegistryLogin>>,
    clock: Clock,
    runtime_retry_ms: i64,
    task_arn: String,
    updates: Vec<LocalUpdate>,
    observations: Vec<Observation>,
}

impl Execution {
    /// A runtime failure worth retrying later.
    fn transient(&mut self, what: &str, error: &RuntimeError) -> bool {
        warn!(task = %self.task_arn, %error, "{what} failed; retrying shortly");
        self.updates.push(LocalUpdate::RetryAfter {
            at_ms: self.clock.now_ms() + self.runtime_retry_ms,
        });
        false
    }

    async fn observe(&mut self, id_or_name: &str, known_id: Option<&str>) {
        match self.runtime.inspect_container(id_or_name).await {
            Ok(Some(state)) => self.observations.push(Observation {
                id: state.id.clone(),
                state: Some(state),
            }),
            Ok(None) => {
                if let Some(id) = known_id {
                    self.observations.push(Observation {
                        id: id.to_string(),
                        state: None,
                    });
                }
            }
            Err(error) => debug!(%error, container = id_or_name, "cannot inspect"),
        }
    }

    /// Runs one action; `false` ends the batch.
    async fn run(&mut self, action: Action) -> bool {
        match action {
            Action::EnsureImage {
                image,
                credentials,
                behavior,
            } => self.ensure_image(image, credentials, behavior).await,
            Action::CreateVolume { spec, task_scoped } => {
                match self.runtime.create_volume(&spec).await {
                    Ok(()) => {
                        self.updates.push(LocalUpdate::VolumeCreated {
                            name: spec.name,
                            task_scoped,
                        });
                        true
                    }
                    Err(error @ RuntimeError::Unavailable { .. }) => {
                        self.transient("creating a volume", &error)
                    }
                    Err(error) => {
                        self.updates.push(LocalUpdate::TaskStopping {
                            reason: Some(format!(
                                "CannotCreateVolumeError: volume '{}': {}",
                                spec.name,
                                runtime_message(&error)
                            )),
                        });
                        false
                    }
                }
            }
            Action::CreateContainer {
                container_name,
                spec,
            } => {
                match self.runtime.create_container(&spec).await {
                    Ok(id) => {
                        self.updates.push(LocalUpdate::ContainerCreated {
                            container_name,
                            runtime_id: id.clone(),
                        });
                        self.observe(&id, Some(&id)).await;
                        true
                    }
                    Err(RuntimeError::Conflict { message }) => {
                        // Created before (e.g. by an agent that crashed after
                        // the create): adopt it if it is this task's.
                        match self.runtime.inspect_container(&spec.name).await {
                            Ok(Some(state))
                                if state.labels.get(LABEL_TASK_ARN) == Some(&self.task_arn) =>
                            {
                                self.updates.push(LocalUpdate::ContainerCreated {
                                    container_name,
                                    runtime_id: state.id.clone(),
                                });
                                self.observations.push(Observation {
                                    id: state.id.clone(),
                                    state: Some(state),
                                });
                                true
                            }
                            _ => {
                                self.updates.push(LocalUpdate::ContainerFailed {
                                    container_name,
                                    reason: format!("CannotCreateContainerError: {message}"),
                                });
                                false
                            }
                        }
                    }
                    Err(error @ RuntimeError::Unavailable { .. }) => {
                        self.transient("creating a container", &error)
                    }
                    Err(error) => {
                        self.updates.push(LocalUpdate::ContainerFailed {
                            container_name,
                            reason: format!(
                                "CannotCreateContainerError: {}",
                                runtime_message(&error)
                            ),
                        });
                        false
                    }
                }
            }
            Action::StartContainer {
                container_name,
                docker_name,
            } => match self.runtime.start_container(&docker_name).await {
                Ok(()) => {
                    self.observe(&docker_name, None).await;
                    true
                }
                Err(error @ (RuntimeError::Unavailable { .. } | RuntimeError::NotFound { .. })) => {
                    self.observe(&docker_name, None).await;
                    self.transient("starting a container", &error)
                }
                Err(error) => {
                    self.updates.push(LocalUpdate::ContainerFailed {
                        container_name,
                        reason: format!("CannotStartContainerError: {}", runtime_message(&error)),
                    });
                    self.observe(&docker_name, None).await;
                    false
                }
            },
            Action::PrepareLogStream {
                container_name,
                docker_name,
                awslogs,
            } => {
                self.prepare_log_stream(container_name, docker_name, &awslogs)
                    .await
            }
            Action::StopContainer {
                runtime_id,
                timeout_s,
                ..
            } => match self.runtime.stop_container(&runtime_id, timeout_s).await {
                Ok(()) => {
                    self.observe(&runtime_id, Some(&runtime_id)).await;
                    true
                }
                Err(error) => self.transient("stopping a container", &error),
            },
            Action::RemoveContainer {
                container_name,
                runtime_id,
            } => match self.runtime.remove_container(&runtime_id).await {
                Ok(()) => {
                    self.updates
                        .push(LocalUpdate::ContainerRemoved { container_name });
                    self.observations.push(Observation {
                        id: runtime_id,
                        state: None,
                    });
                    true
                }
                Err(error) => self.transient("removing a container", &error),
            },
            Action::RemoveVolume { name } => {
                if let Err(error) = self.runtime.remove_volume(&name).await {
                    warn!(volume = %name, %error, "cannot remove a task volume; leaving it");
                }
                true
            }
        }
    }

    /// Creates the log stream (and group) of an awslogs container before it
    /// starts, as Docker's awslogs driver does at start.
    async fn prepare_log_stream(
        &mut self,
        container_name: String,
        docker_name: String,
        config: &AwsLogsConfig,
    ) -> bool {
        let Some(logs) = self.logs.clone() else {
            self.updates.push(LocalUpdate::ContainerFailed {
                container_name,
                reason: "CannotStartContainerError: this agent has no CloudWatch Logs client for \
                         the awslogs log driver"
                    .to_string(),
            });
            return false;
        };
        let docker_id = if config.stream_prefix.is_some() {
            String::new()
        } else {
            // Without a prefix the stream is named after the container's id.
            match self.runtime.inspect_container(&docker_name).await {
                Ok(Some(state)) => state.id,
                Ok(None) => {
                    let error = RuntimeError::NotFound {
                        message: format!("No such container: {docker_name}"),
                    };
                    return self.transient("preparing a log stream", &error);
                }
                Err(error) => return self.transient("preparing a log stream", &error),
            }
        };
        let stream = awslogs::stream_name(config, &container_name, &self.task_arn, &docker_id);
        match ensure_stream(logs.as_ref(), config, &stream).await {
            Ok(()) => true,
            Err(PrepareError::Retry(error)) => {
                warn!(task = %self.task_arn, %error, "cannot create the log stream yet; retrying shortly");
                self.updates.push(LocalUpdate::RetryAfter {
                    at_ms: self.clock.now_ms() + self.runtime_retry_ms,
                });
                false
            }
            Err(PrepareError::Fail(reason)) => {
                info!(task = %self.task_arn, container = %container_name, %reason, "the log stream cannot be created");
                self.updates.push(LocalUpdate::ContainerFailed {
                    container_name,
                    reason,
                });
                false
            }
        }
    }

    async fn ensure_image(
        &mut self,
        image: String,
        credentials: RegistryCredentials,
        behavior: ImagePullBehavior,
    ) -> bool {
        let started_ms = self.clock.now_ms();
        let present = match self.runtime.image_present(&image).await {
            Ok(present) => present,
            Err(error) => return self.transient("looking up an image", &error),
        };
        let failure = match behavior.decide(present) {
            PullDecision::UseCached => None,
            PullDecision::Pull {
                fall_back_to_cached,
            } => {
                let login = match (&credentials, &self.registry) {
                    (RegistryCredentials::None, Some(registry)) => {
                        match registry.credentials_for(&image).await {
                            Ok(login) => login,
                            Err(message) => {
                                let error = RuntimeError::Unavailable { message };
                                return self.transient("getting registry credentials", &error);
                            }
                        }
                    }
                    _ => None,
                };
                let result = match &credentials {
                    RegistryCredentials::None => {
                        self.runtime.pull_image(&image, login.as_ref()).await
                    }
                    RegistryCredentials::Auth(auth) => {
                        self.runtime.pull_image(&image, Some(auth)).await
                    }
                    RegistryCredentials::Unresolved(reason) => Err(RuntimeError::ImagePull {
                        image: image.clone(),
                        message: reason.clone(),
                    }),
                };
                match result {
                    Ok(()) => None,
                    Err(error @ RuntimeError::Unavailable { .. }) => {
                        return self.transient("pulling an image", &error)
                    }
                    Err(_) if fall_back_to_cached => None,
                    Err(error) => Some(runtime_message(&error)),
                }
            }
        };
        let stopped_ms = self.clock.now_ms();
        match failure {
            None => {
                let image_digest = match self.runtime.image_digest(&image).await {
                    Ok(digest) => digest,
                    Err(error @ RuntimeError::Unavailable { .. }) => {
                        return self.transient("reading an image digest", &error)
                    }
                    Err(error) => {
                        warn!(task = %self.task_arn, %image, %error, "cannot read the image digest; reporting none");
                        None
                    }
                };
                self.updates.push(LocalUpdate::ImageReady {
                    image,
                    image_digest,
                    pull_started_at_ms: started_ms,
                    pull_stopped_at_ms: stopped_ms,
                });
                true
            }
            Some(message) => {
                info!(task = %self.task_arn, %image, %message, "image pull failed");
                self.updates.push(LocalUpdate::ImageFailed {
                    image,
                    message,
                    pull_started_at_ms: started_ms,
                    pull_stopped_at_ms: stopped_ms,
                });
                false
            }
        }
    }
}
