//! How agents deliver containers' output to CloudWatch Logs without losing
//! or doubling a line.
//!
//! The agent creates log groups and streams with the ordinary CloudWatch
//! Logs operations (`CreateLogGroup`, `CreateLogStream`), then sends each
//! container's output through a Berth-only JSON service on the same port,
//! `X-Amz-Target: BerthAgentLogs_20261207.<Operation>`, SigV4-signed for
//! service `logs`, with AWS's JSON error format:
//!
//! - `PutContainerLogEvents` ([`PutContainerLogEventsRequest`]): the same
//!   checks as `PutLogEvents`, plus a producer cursor: the events are stored
//!   only if `producerCursor` is greater than the stream's stored cursor,
//!   atomically with it. A resend after a lost acknowledgement is
//!   acknowledged again (`written: false`) and stores nothing.
//! - `GetProducerCursor` ([`GetProducerCursorRequest`]): where a restarted
//!   agent resumes a container's output.
//!
//! The cursor is the agent's business (it encodes the position of the last
//! line in Docker's log); the control plane only compares cursors. It travels
//! as a decimal string because it is a `u128`.

use serde::{Deserialize, Serialize};

pub const TARGET_PREFIX: &str = "BerthAgentLogs_20261207";

/// CloudWatch Logs' PutLogEvents limits, which agents batch within and the
/// control plane enforces: at most this many events...
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// ...of at most this many bytes, counting each event's message in UTF-8
/// plus [`EVENT_OVERHEAD_BYTES`]...
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// ...spanning at most 24 hours.
pub const MAX_BATCH_SPAN_MS: i64 = 24 * 60 * 60 * 1000;
/// What CloudWatch counts per event besides its message.
pub const EVENT_OVERHEAD_BYTES: usize = 26;
pub const SIGNING_NAME: &str = "logs";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentLogEvent {
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutContainerLogEventsRequest {
    pub log_group_name: String,
    pub log_stream_name: String,
    /// Decimal `u128`.
    pub producer_cursor: String,
    pub log_events: Vec<AgentLogEvent>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutContainerLogEventsResponse {
    /// False when the cursor showed the events were already stored.
    pub written: bool,
    /// The stream's stored cursor (decimal `u128`), absent if none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer_cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetProducerCursorRequest {
    pub log_group_name: String,
    pub log_stream_name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetProducerCursorResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer_cursor: Option<String>,
}
