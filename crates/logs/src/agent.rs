//! [`AgentLogs`]: the Berth-only service node agents deliver containers'
//! output through (`model::agent_logs`). The events get PutLogEvents'
//! checks; the producer cursor makes a resend after a lost acknowledgement
//! store nothing twice.

use std::sync::Arc;

use api::{ApiError, RequestContext};
use async_trait::async_trait;
use log_store::{NewEvent, ProducerCursor};
use model::agent_logs::{
    GetProducerCursorRequest, GetProducerCursorResponse, PutContainerLogEventsRequest,
    PutContainerLogEventsResponse, SIGNING_NAME, TARGET_PREFIX,
};

use crate::error;
use crate::events::MAX_BATCH_EVENTS;
use crate::records::require_stream;
use crate::validate::Violations;
use crate::Logs;

/// The agents' log delivery service, sharing [`Logs`]' store and events.
pub struct AgentLogs {
    logs: Arc<Logs>,
}

impl AgentLogs {
    pub fn new(logs: Arc<Logs>) -> Self {
        AgentLogs { logs }
    }

    async fn put(
        &self,
        ctx: &RequestContext,
        request: PutContainerLogEventsRequest,
    ) -> Result<PutContainerLogEventsResponse, ApiError> {
        let mut violations = Violations::new();
        violations.log_group_name("logGroupName", Some(&request.log_group_name));
        violations.log_stream_name("logStreamName", Some(&request.log_stream_name));
        violations.count(
            "logEvents",
            Some(request.log_events.len()),
            1,
            MAX_BATCH_EVENTS,
        );
        violations.finish()?;
        let cursor = parse_cursor(&request.producer_cursor)?;
        let events = request
            .log_events
            .into_iter()
            .map(|e| NewEvent {
                timestamp_ms: e.timestamp,
                message: e.message,
            })
            .collect();
        let batch = self
            .logs
            .check_put(
                ctx,
                &request.log_group_name,
                &request.log_stream_name,
                events,
            )
            .await?;
        let (appended, _) = self.logs.store_batch(ctx, batch, Some(cursor)).await?;
        Ok(PutContainerLogEventsResponse {
            written: appended.written,
            producer_cursor: appended.producer_cursor.map(|c| c.0.to_string()),
        })
    }

    async fn cursor(
        &self,
        ctx: &RequestContext,
        request: GetProducerCursorRequest,
    ) -> Result<GetProducerCursorResponse, ApiError> {
        let stream = require_stream(
            &*self.logs.store,
            &ctx.region,
            &request.log_group_name,
            &request.log_stream_name,
        )
        .await?;
        let id = stream.value.stream_id;
        let stats = self
            .logs
            .with_events(move |events| events.stats(&id))
            .await?;
        Ok(GetProducerCursorResponse {
            producer_cursor: stats.producer_cursor.map(|c| c.0.to_string()),
        })
    }
}

fn parse_cursor(text: &str) -> Result<ProducerCursor, ApiError> {
    text.parse::<u128>()
        .map(ProducerCursor)
        .map_err(|_| error::invalid(format!("producerCursor {text:?} is not a decimal u128")))
}

#[async_trait]
impl control_plane::JsonService for AgentLogs {
    fn target_prefix(&self) -> &str {
        TARGET_PREFIX
    }
    fn signing_name(&self) -> &str {
        SIGNING_NAME
    }
    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        match operation {
            "PutContainerLogEvents" => {
                api::respond(self.put(ctx, api::parse_unchecked(body)?).await?)
            }
            "GetProducerCursor" => {
                api::respond(self.cursor(ctx, api::parse_unchecked(body)?).await?)
            }
            other => Err(ApiError::unknown_operation(other)),
        }
    }
}
