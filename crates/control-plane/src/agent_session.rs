//! Agent sessions: the long-lived stream a node agent opens
//! (`POST /_berth/agent/v1/session`), on which the control plane pushes the
//! instance's desired tasks whenever they change, and heartbeats.
//!
//! Level-triggered: every message carries the full desired state, so a lost
//! or repeated message does no harm. The session records the agent's
//! heartbeat in the store on connect and on every heartbeat it delivers,
//! which is what `agentConnected` is computed from.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use api::{ApiError, Ecs, RequestContext};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use model::agent::{AgentMessage, DesiredTask, SessionRequest};
use tokio::sync::{mpsc, watch};

use crate::clock;
use crate::response::{Body, REQUEST_ID_HEADER};

/// How often the control plane sends a heartbeat on an idle session (more
/// often when the agent timeout is short: see [`heartbeat_interval`]).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Heartbeats (which record the agent as connected) come at least three
/// times per agent timeout, so a live agent never looks disconnected.
pub fn heartbeat_interval(agent_timeout_ms: i64) -> Duration {
    let third = Duration::from_millis((agent_timeout_ms / 3).max(100) as u64);
    HEARTBEAT_INTERVAL.min(third)
}

/// Opens a session: checks the request, then streams until the agent goes
/// away or the server shuts down.
pub(crate) async fn open(
    ecs: Arc<Ecs>,
    ctx: RequestContext,
    body: &[u8],
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let request: SessionRequest = serde_json::from_slice(body)
        .map_err(|err| ApiError::serialization(format!("Invalid agent session request: {err}")))?;
    let (cluster_name, instance_id) = ecs.resolve_agent_session(&ctx, &request).await?;
    ecs.record_agent_heartbeat(&ctx, &cluster_name, &instance_id)
        .await?;
    // Subscribe before the first read so no change falls in between.
    let prefix = ecs.agent_watch_prefix(&ctx, &cluster_name, &instance_id);
    let changes = ecs
        .store_handle()
        .watch(&prefix, &store::prefix_end(&prefix), 0)
        .await?;
    let request_id = ctx.request_id.clone();
    let (sender, receiver) = mpsc::channel::<Bytes>(8);
    tracing::info!(
        cluster = cluster_name,
        container_instance = instance_id,
        "agent session opened"
    );
    tokio::spawn(run(
        ecs,
        ctx,
        cluster_name,
        instance_id,
        changes,
        sender,
        shutdown,
    ));

    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|line| (Ok::<_, Infallible>(Frame::data(line)), receiver))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

fn line(message: &AgentMessage) -> Bytes {
    let mut bytes = serde_json::to_vec(message).expect("agent messages serialize");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

async fn run(
    ecs: Arc<Ecs>,
    mut ctx: RequestContext,
    cluster_name: String,
    instance_id: String,
    mut changes: store::WatchStream,
    sender: mpsc::Sender<Bytes>,
    mut shutdown: watch::Receiver<bool>,
) {
    // `berth_agent_sessions` counts this session until `run` returns.
    let _open = instruments::global().open_agent_session();
    let mut last_sent: Option<Vec<DesiredTask>> = None;
    let mut heartbeat = tokio::time::interval(heartbeat_interval(ecs.config().agent_timeout_ms));
    heartbeat.tick().await;
    let mut dirty = true;
    loop {
        if dirty {
            ctx.now_ms = clock::now_ms();
            match ecs
                .agent_desired_tasks(&ctx, &cluster_name, &instance_id)
                .await
            {
                Ok((revision, tasks)) => {
                    if last_sent.as_ref() != Some(&tasks) {
                        let message = AgentMessage::DesiredTasks {
                            revision,
                            tasks: tasks.clone(),
                        };
                        if sender.send(line(&message)).await.is_err() {
                            break;
                        }
                        last_sent = Some(tasks);
                    }
                    dirty = false;
                }
                Err(err) => {
                    tracing::warn!(%err, cluster = cluster_name, container_instance = instance_id, "reading an agent's desired tasks failed; ending the session");
                    break;
                }
            }
        }
        tokio::select! {
            change = changes.next() => match change {
                Some(Ok(_)) => dirty = true,
                Some(Err(err)) => {
                    tracing::debug!(%err, "agent session watch ended; the agent reconnects");
                    break;
                }
                None => break,
            },
            _ = heartbeat.tick() => {
                ctx.now_ms = clock::now_ms();
                if sender.send(line(&AgentMessage::Heartbeat { at_ms: ctx.now_ms })).await.is_err() {
                    break;
                }
                if let Err(err) = ecs.record_agent_heartbeat(&ctx, &cluster_name, &instance_id).await {
                    tracing::warn!(%err, "recording an agent heartbeat failed");
                }
            }
            _ = sender.closed() => break,
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!(
        cluster = cluster_name,
        container_instance = instance_id,
        "agent session closed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_come_three_times_per_agent_timeout_at_most_every_five_seconds() {
        assert_eq!(heartbeat_interval(30_000), Duration::from_secs(5));
        assert_eq!(heartbeat_interval(3_000), Duration::from_secs(1));
        assert_eq!(heartbeat_interval(0), Duration::from_millis(100));
    }
}
