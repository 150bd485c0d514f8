//! Delivers the output of `awslogs` containers to the control plane.
//!
//! One shipper per started awslogs container: it asks the control plane
//! where the stream's record ends (`GetProducerCursor`), reads the
//! container's log from there ([`ContainerRuntime::follow_logs`]), assembles
//! events ([`crate::awslogs`]) and sends them in batches with
//! `PutContainerLogEvents`, each carrying the position of its last line as
//! the producer cursor. A batch whose acknowledgement was lost is sent again
//! as it was, and the control plane stores it once. The agent keeps no log
//! state of its own: after a restart the control plane's cursor says where
//! to go on, so nothing is lost or doubled.
//!
//! Transport failures, 5xx and throttling are retried with backoff for as
//! long as it takes; a batch the control plane refuses outright (a 4xx other
//! than a missing stream, which is created again) is logged and skipped.
//! Batches leave at most every `flush_interval_ms` (200 ms), so a line is
//! readable within a second. `mode` blocking stops reading the log while
//! more than `blocking_high_water_bytes` wait (Docker keeps the rest on
//! disk); non-blocking keeps reading into at most `max-buffer-size` bytes
//! and replaces the oldest waiting lines by a marker event when full.
//! The shipper ends once the container has stopped and everything it wrote
//! was acknowledged.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use model::agent::{LABEL_CONTAINER_NAME, LABEL_TASK_ARN};
use model::agent_logs::{
    GetProducerCursorRequest, GetProducerCursorResponse, PutContainerLogEventsRequest,
    PutContainerLogEventsResponse,
};
use runtime::{ContainerRuntime, ContainerState, LogLineStream, RuntimeError};
use serde_json::json;
use tracing::{debug, error, info, warn};

use crate::awslogs::{
    self, Assembler, AwsLogsConfig, Batch, DeliveryMode, LinePositions, Outbox, Position,
    LABEL_AWSLOGS_OPTIONS,
};
use crate::client::EcsClient;
use crate::clock::Clock;
use crate::AgentError;

/// The CloudWatch Logs JSON target prefix.
pub const LOGS_TARGET_PREFIX: &str = "Logs_20140328";

const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
const RESOURCE_ALREADY_EXISTS: &str = "ResourceAlreadyExistsException";

/// The log calls the agent makes: the seam between the shipper and the
/// control plane (an in-memory fake in tests).
#[async_trait]
pub trait LogsApi: Send + Sync {
    async fn create_log_group(&self, region: &str, group: &str) -> Result<(), AgentError>;
    async fn create_log_stream(
        &self,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<(), AgentError>;
    /// The stream's stored producer cursor, `None` if nothing was stored.
    async fn get_producer_cursor(
        &self,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<Option<Position>, AgentError>;
    async fn put_container_log_events(
        &self,
        region: &str,
        request: &PutContainerLogEventsRequest,
    ) -> Result<PutContainerLogEventsResponse, AgentError>;
}

#[async_trait]
impl LogsApi for EcsClient {
    async fn create_log_group(&self, region: &str, group: &str) -> Result<(), AgentError> {
        let _: serde_json::Value = self
            .call_logs(
                LOGS_TARGET_PREFIX,
                region,
                "CreateLogGroup",
                &json!({ "logGroupName": group }),
            )
            .await?;
        Ok(())
    }

    async fn create_log_stream(
        &self,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<(), AgentError> {
        let _: serde_json::Value = self
            .call_logs(
                LOGS_TARGET_PREFIX,
                region,
                "CreateLogStream",
                &json!({ "logGroupName": group, "logStreamName": stream }),
            )
            .await?;
        Ok(())
    }

    async fn get_producer_cursor(
        &self,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<Option<Position>, AgentError> {
        let response: GetProducerCursorResponse = self
            .call_logs(
                model::agent_logs::TARGET_PREFIX,
                region,
                "GetProducerCursor",
                &GetProducerCursorRequest {
                    log_group_name: group.to_string(),
                    log_stream_name: stream.to_string(),
                },
            )
            .await?;
        response
            .producer_cursor
            .map(|cursor| {
                Position::parse(&cursor).ok_or_else(|| AgentError::Protocol {
                    operation: "GetProducerCursor".to_string(),
                    message: format!("the producer cursor {cursor:?} is not a decimal u128"),
                })
            })
            .transpose()
    }

    async fn put_container_log_events(
        &self,
        region: &str,
        request: &PutContainerLogEventsRequest,
    ) -> Result<PutContainerLogEventsResponse, AgentError> {
        self.call_logs(
            model::agent_logs::TARGET_PREFIX,
            region,
            "PutContainerLogEvents",
            request,
        )
        .await
    }
}

fn has_code(error: &AgentError, wanted: &str) -> bool {
    matches!(error, AgentError::Api { code, .. } if code == wanted)
}

fn api_words(error: &AgentError) -> String {
    match error {
        AgentError::Api { code, message, .. } => format!("{code}: {message}"),
        other => other.to_string(),
    }
}

/// Why a container's log stream could not be made ready.
#[derive(Debug)]
pub enum PrepareError {
    /// The control plane could not be reached or failed: try again.
    Retry(AgentError),
    /// The container cannot start; its reason, as ECS reports it.
    Fail(String),
}

/// Creates the container's log stream (and its group with
/// `awslogs-create-group`), as Docker's awslogs driver does when a
/// container starts: streams and groups that exist already are fine; a
/// missing group without `awslogs-create-group` fails the start with ECS's
/// reason.
pub async fn ensure_stream(
    logs: &dyn LogsApi,
    config: &AwsLogsConfig,
    stream: &str,
) -> Result<(), PrepareError> {
    let fail = |what: &str, error: &AgentError| {
        PrepareError::Fail(format!(
            "CannotStartContainerError: Error response from daemon: failed to initialize logging \
             driver: failed to create Cloudwatch log {what}: {}",
            api_words(error)
        ))
    };
    let classify = |what: &str, error: AgentError| {
        if error.is_retryable() {
            PrepareError::Retry(error)
        } else {
            fail(what, &error)
        }
    };
    match logs
        .create_log_stream(&config.region, &config.group, stream)
        .await
    {
        Ok(()) => return Ok(()),
        Err(error) if has_code(&error, RESOURCE_ALREADY_EXISTS) => return Ok(()),
        Err(error) if has_code(&error, RESOURCE_NOT_FOUND) && config.create_group => {}
        Err(error) => return Err(classify("stream", error)),
    }
    match logs.create_log_group(&config.region, &config.group).await {
        Ok(()) => {}
        Err(error) if has_code(&error, RESOURCE_ALREADY_EXISTS) => {}
        Err(error) => return Err(classify("group", error)),
    }
    match logs
        .create_log_stream(&config.region, &config.group, stream)
        .await
    {
        Ok(()) => Ok(()),
        Err(error) if has_code(&error, RESOURCE_ALREADY_EXISTS) => Ok(()),
        Err(error) => Err(classify("stream", error)),
    }
}

/// Intervals and sizes of the shippers.
#[derive(Clone, Debug)]
pub struct ShipperTiming {
    /// A batch leaves at most this often (unless a full one is waiting).
    pub flush_interval_ms: u64,
    /// A multiline event no line joined for this long is sent (Docker waits
    /// up to 5 s; Berth keeps the latency lower).
    pub multiline_idle_ms: i64,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// `mode` blocking: stop reading the log while this much waits.
    pub blocking_high_water_bytes: usize,
}

impl Default for ShipperTiming {
    fn default() -> Self {
        ShipperTiming {
            flush_interval_ms: 200,
            multiline_idle_ms: 1_000,
            backoff_initial_ms: 100,
            backoff_max_ms: 5_000,
            blocking_high_water_bytes: 2 * awslogs::MAX_BATCH_BYTES,
        }
    }
}

/// One awslogs container whose output is to be delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerLogs {
    pub container_id: String,
    pub task_arn: String,
    pub container_name: String,
    pub config: AwsLogsConfig,
    pub stream: String,
}

impl ContainerLogs {
    /// From a container's labels (see [`LABEL_AWSLOGS_OPTIONS`]); `None`
    /// for a container without awslogs.
    pub fn from_container(state: &ContainerState) -> Option<ContainerLogs> {
        let options = state.labels.get(LABEL_AWSLOGS_OPTIONS)?;
        let options: BTreeMap<String, String> = match serde_json::from_str(options) {
            Ok(options) => options,
            Err(error) => {
                warn!(container = %state.id, %error, "unreadable awslogs label; its output is not delivered");
                return None;
            }
        };
        let config = match awslogs::parse_options(&options) {
            Ok(config) => config,
            Err(error) => {
                warn!(container = %state.id, ?error, "unusable awslogs options; its output is not delivered");
                return None;
            }
        };
        let task_arn = state.labels.get(LABEL_TASK_ARN)?.clone();
        let container_name = state.labels.get(LABEL_CONTAINER_NAME)?.clone();
        let stream = awslogs::stream_name(&config, &container_name, &task_arn, &state.id);
        Some(ContainerLogs {
            container_id: state.id.clone(),
            task_arn,
            container_name,
            config,
            stream,
        })
    }
}

/// What a finished shipper saw of its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shipped {
    /// The container's start time when its output ended (`None`: the
    /// container is gone).
    pub started_at_ms: Option<i64>,
}

struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    next_ms: u64,
}

impl Backoff {
    fn new(timing: &ShipperTiming) -> Backoff {
        Backoff {
            initial_ms: timing.backoff_initial_ms.max(1),
            max_ms: timing.backoff_max_ms.max(1),
            next_ms: timing.backoff_initial_ms.max(1),
        }
    }

    fn reset(&mut self) {
        self.next_ms = self.initial_ms;
    }

    fn next_delay(&mut self) -> Duration {
        let delay_ms = self.next_ms.min(self.max_ms);
        self.next_ms = (delay_ms * 2).min(self.max_ms);
        Duration::from_millis(delay_ms)
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

/// Sends one batch until the control plane acknowledges it (`true`) or
/// refuses it for good (`false`, logged).
async fn deliver(
    logs: Arc<dyn LogsApi>,
    container: Arc<ContainerLogs>,
    timing: ShipperTiming,
    batch: Batch,
) -> bool {
    let config = &container.config;
    let request = PutContainerLogEventsRequest {
        log_group_name: config.group.clone(),
        log_stream_name: container.stream.clone(),
        producer_cursor: batch.cursor.to_cursor(),
        log_events: batch.events,
    };
    let mut backoff = Backoff::new(&timing);
    loop {
        match logs
            .put_container_log_events(&config.region, &request)
            .await
        {
            Ok(response) => {
                debug!(
                    container = %container.container_id,
                    events = request.log_events.len(),
                    written = response.written,
                    "log events delivered"
                );
                return true;
            }
            Err(error) if has_code(&error, RESOURCE_NOT_FOUND) => {
                warn!(container = %container.container_id, group = %config.group, stream = %container.stream, %error, "the log stream is gone; creating it again");
                if let Err(error) = ensure_stream(logs.as_ref(), config, &container.stream).await {
                    warn!(container = %container.container_id, ?error, "cannot create the log stream; retrying");
                }
                backoff.wait().await;
            }
            Err(error) if error.is_retryable() => {
                debug!(container = %container.container_id, %error, "log events not delivered; retrying");
                backoff.wait().await;
            }
            Err(error) => {
                error!(
                    container = %container.container_id,
                    group = %config.group,
                    stream = %container.stream,
                    events = request.log_events.len(),
                    %error,
                    "the control plane refused a batch of log events; skipping it"
                );
                return false;
            }
        }
    }
}

type Delivery = Pin<Box<dyn Future<Output = bool> + Send>>;

async fn next_line(
    stream: &mut Option<LogLineStream>,
) -> Option<Result<runtime::LogLine, RuntimeError>> {
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

async fn delivered(in_flight: &mut Option<Delivery>) -> bool {
    match in_flight {
        Some(delivery) => delivery.await,
        None => std::future::pending().await,
    }
}

async fn sleep_if(sleep: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match sleep {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}

/// Delivers one container's output until it has stopped and everything is
/// acknowledged. See the module docs.
pub async fn ship(
    runtime: Arc<dyn ContainerRuntime>,
    logs: Arc<dyn LogsApi>,
    clock: Clock,
    timing: ShipperTiming,
    container: ContainerLogs,
) -> Shipped {
    let container = Arc::new(container);
    let config = &container.config;
    let id = container.container_id.clone();
    let mut backoff = Backoff::new(&timing);
    let cursor = loop {
        match logs
            .get_producer_cursor(&config.region, &config.group, &container.stream)
            .await
        {
            Ok(cursor) => break cursor,
            Err(error) if has_code(&error, RESOURCE_NOT_FOUND) => {
                if let Err(error) = ensure_stream(logs.as_ref(), config, &container.stream).await {
                    warn!(container = %id, ?error, "cannot create the log stream; retrying");
                    backoff.wait().await;
                }
            }
            Err(error) => {
                warn!(container = %id, %error, "cannot read the log stream's cursor; retrying");
                backoff.wait().await;
            }
        }
    };
    backoff.reset();
    info!(container = %id, group = %config.group, stream = %container.stream, cursor = ?cursor, "delivering container output");

    // The last position read (delivered or waiting): where a new read of
    // the log goes on from.
    let mut seen: Option<Position> = cursor;
    let mut positions = LinePositions::new(seen);
    let mut assembler = Assembler::new(config.start_pattern());
    let mut outbox = Outbox::default();
    let mut in_flight: Option<Delivery> = None;
    let mut stream: Option<LogLineStream> = None;
    let mut reopen: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut ended = false;
    let mut started_at_ms: Option<i64> = None;
    let mut flush_due = false;
    let mut tick = tokio::time::interval(Duration::from_millis(timing.flush_interval_ms.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let push = |outbox: &mut Outbox, events: Vec<awslogs::Event>| {
        for event in events {
            match config.mode {
                DeliveryMode::Blocking => outbox.push(event),
                DeliveryMode::NonBlocking {
                    max_buffer_size_bytes,
                } => outbox.push_bounded(event, max_buffer_size_bytes),
            }
        }
    };

    loop {
        if stream.is_none() && reopen.is_none() && !ended {
            let since_ns = seen.map_or(0, Position::resume_since_ns);
            match runtime.follow_logs(&id, since_ns).await {
                Ok(opened) => {
                    stream = Some(opened);
                    positions = LinePositions::new(seen);
                }
                Err(RuntimeError::NotFound { .. }) => {
                    warn!(container = %id, "the container is gone; delivering what was read");
                    ended = true;
                    push(&mut outbox, assembler.finish());
                }
                Err(error) => {
                    warn!(container = %id, %error, "cannot read the container's log; retrying");
                    reopen = Some(Box::pin(tokio::time::sleep(backoff.next_delay())));
                }
            }
        }
        if in_flight.is_none()
            && !outbox.is_empty()
            && (flush_due || ended || outbox.full_batch_ready())
        {
            let batch = outbox.take_batch().expect("the outbox is not empty");
            in_flight = Some(Box::pin(deliver(
                logs.clone(),
                container.clone(),
                timing.clone(),
                batch,
            )));
            flush_due = false;
        }
        if ended && in_flight.is_none() && outbox.is_empty() {
            info!(container = %id, "container output delivered");
            return Shipped { started_at_ms };
        }
        let room = match config.mode {
            DeliveryMode::Blocking => outbox.bytes() < timing.blocking_high_water_bytes,
            DeliveryMode::NonBlocking { .. } => true,
        };
        tokio::select! {
            item = next_line(&mut stream), if room && stream.is_some() => match item {
                Some(Ok(line)) => {
                    backoff.reset();
                    if let Some(placed) = positions.place(line.timestamp_ns) {
                        seen = seen.max(Some(placed.position));
                        push(&mut outbox, assembler.push(&line.text, placed, clock.now_ms()));
                    }
                }
                Some(Err(error)) => {
                    warn!(container = %id, %error, "the container's log broke off; reading on");
                    stream = None;
                    reopen = Some(Box::pin(tokio::time::sleep(backoff.next_delay())));
                }
                None => {
                    stream = None;
                    match runtime.inspect_container(&id).await {
                        Ok(Some(state)) if state.status.is_running() => {
                            debug!(container = %id, "the log ended while the container runs; reading on");
                        }
                        Ok(state) => {
                            ended = true;
                            started_at_ms = state.and_then(|s| s.started_at_ms);
                            push(&mut outbox, assembler.finish());
                        }
                        Err(error) => {
                            warn!(container = %id, %error, "cannot inspect the container; reading its log again");
                            reopen = Some(Box::pin(tokio::time::sleep(backoff.next_delay())));
                        }
                    }
                }
            },
            _acknowledged = delivered(&mut in_flight) => in_flight = None,
            () = sleep_if(&mut reopen) => reopen = None,
            _ = tick.tick() => {
                flush_due = true;
                push(&mut outbox, assembler.flush_idle(clock.now_ms(), timing.multiline_idle_ms));
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
