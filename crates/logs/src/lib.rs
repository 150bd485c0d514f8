//! Amazon CloudWatch Logs (JSON 1.1, `X-Amz-Target: Logs_20140328.*`): log
//! groups, log streams, their events, retention, tags, metric filters and
//! Logs Insights queries.
//!
//! `Logs::handle` parses the body into `logs-wire` shapes, validates it in
//! AWS's words (`validate`), reads and writes the group, stream and metric
//! filter records under `/logs/<region>/…` in the orchestration store with
//! compare-and-swap (`records`), and keeps events in a
//! [`log_store::LogStore`] keyed by each stream's id — never in the
//! orchestration store, so log traffic does not slow it.
//!
//! - `events.rs`: PutLogEvents (AWS's batch rules, `rejectedLogEventsInfo`),
//!   GetLogEvents (AWS's forward/backward tokens), FilterLogEvents (filter
//!   patterns from `filter_pattern`, interleaved across streams).
//! - `live_tail.rs`: StartLiveTail, an event stream of what `store_batch`
//!   makes durable from the moment the session opens.
//! - `retention.rs`: the pass `berth` runs to drop expired segments and the
//!   events of streams whose records are gone; reads hide expired events
//!   whatever the pass has done.
//! - `queries.rs`: Logs Insights (StartQuery, GetQueryResults, StopQuery,
//!   DescribeQueries, GetLogRecord) on the pure engine in [`insights`]:
//!   runs in background tasks, records in the store, results cached.
//! - `agent.rs`: [`AgentLogs`], the Berth-only service agents deliver
//!   containers' output through (see `model::agent_logs`).
//!
//! Event times are the caller's milliseconds; `now` is the request's
//! `now_ms`, read once by the shell.

use std::sync::Arc;

use api::{parse_unchecked as parse, respond, ApiError, RequestContext};
use async_trait::async_trait;
use log_store::LogStore;
use serde::Serialize;
use store::Store;

mod agent;
pub use metric_publishing::{MetricFilterDatapoint, MetricFilterSink};
mod error;
mod events;
pub mod filter_pattern;
mod groups;
pub mod insights;
mod live_tail;
mod metric_filters;
mod metric_publishing;
mod queries;
mod records;
mod retention;
mod streams;
mod tags;
mod validate;

pub use agent::AgentLogs;
pub use retention::RetentionPass;

#[cfg(test)]
mod tests;

/// The CloudWatch Logs JSON service.
pub struct Logs {
    store: Arc<dyn Store>,
    events: Arc<dyn LogStore>,
    live_tail: live_tail::LiveTailHub,
    queries: Arc<queries::QueryCache>,
    metric_sink: Option<Arc<dyn MetricFilterSink>>,
    metric_filters: Arc<metric_publishing::FilterCache>,
}

/// Operations dispatched by [`Logs::handle`]; the model's other operations
/// answer that Berth does not support them yet.
pub const SUPPORTED_OPERATIONS: &[&str] = &[
    "CreateLogGroup",
    "DeleteLogGroup",
    "DescribeLogGroups",
    "PutLogGroupDeletionProtection",
    "CreateLogStream",
    "DeleteLogStream",
    "DescribeLogStreams",
    "PutLogEvents",
    "GetLogEvents",
    "FilterLogEvents",
    "PutRetentionPolicy",
    "DeleteRetentionPolicy",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "TagLogGroup",
    "UntagLogGroup",
    "ListTagsLogGroup",
    "PutMetricFilter",
    "DescribeMetricFilters",
    "DeleteMetricFilter",
    "TestMetricFilter",
    "StartLiveTail",
    "StartQuery",
    "GetQueryResults",
    "StopQuery",
    "DescribeQueries",
    "GetLogRecord",
];

impl Logs {
    pub const TARGET_PREFIX: &'static str = logs_wire::TARGET_PREFIX;
    pub const SIGNING_NAME: &'static str = logs_wire::SIGNING_NAME;

    pub fn new(store: Arc<dyn Store>, events: Arc<dyn LogStore>) -> Self {
        Logs {
            store,
            events,
            live_tail: live_tail::LiveTailHub::new(),
            queries: Arc::new(queries::QueryCache::new()),
            metric_sink: None,
            metric_filters: Arc::default(),
        }
    }

    /// The same service, publishing what its metric filters extract to `sink`.
    pub fn with_metric_sink(mut self, sink: Arc<dyn MetricFilterSink>) -> Self {
        self.metric_sink = Some(sink);
        self
    }

    pub async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        match operation {
            "CreateLogGroup" => respond(self.create_log_group(ctx, parse(body)?).await?),
            "DeleteLogGroup" => respond(self.delete_log_group(ctx, parse(body)?).await?),
            "DescribeLogGroups" => respond(self.describe_log_groups(ctx, parse(body)?).await?),
            "PutLogGroupDeletionProtection" => respond(
                self.put_log_group_deletion_protection(ctx, parse(body)?)
                    .await?,
            ),
            "CreateLogStream" => respond(self.create_log_stream(ctx, parse(body)?).await?),
            "DeleteLogStream" => respond(self.delete_log_stream(ctx, parse(body)?).await?),
            "DescribeLogStreams" => respond(self.describe_log_streams(ctx, parse(body)?).await?),
            "PutLogEvents" => respond(self.put_log_events(ctx, parse(body)?).await?),
            "GetLogEvents" => respond(self.get_log_events(ctx, parse(body)?).await?),
            "FilterLogEvents" => respond(self.filter_log_events(ctx, parse(body)?).await?),
            "PutRetentionPolicy" => respond(self.put_retention_policy(ctx, parse(body)?).await?),
            "DeleteRetentionPolicy" => {
                respond(self.delete_retention_policy(ctx, parse(body)?).await?)
            }
            "TagResource" => respond(self.tag_resource(ctx, parse(body)?).await?),
            "UntagResource" => respond(self.untag_resource(ctx, parse(body)?).await?),
            "ListTagsForResource" => respond(self.list_tags_for_resource(ctx, parse(body)?).await?),
            "TagLogGroup" => respond(self.tag_log_group(ctx, parse(body)?).await?),
            "UntagLogGroup" => respond(self.untag_log_group(ctx, parse(body)?).await?),
            "ListTagsLogGroup" => respond(self.list_tags_log_group(ctx, parse(body)?).await?),
            "PutMetricFilter" => respond(self.put_metric_filter(ctx, parse(body)?).await?),
            "DescribeMetricFilters" => {
                respond(self.describe_metric_filters(ctx, parse(body)?).await?)
            }
            "DeleteMetricFilter" => respond(self.delete_metric_filter(ctx, parse(body)?).await?),
            "TestMetricFilter" => respond(self.test_metric_filter(parse(body)?)?),
            "StartQuery" => respond(self.start_query(ctx, parse(body)?).await?),
            "GetQueryResults" => respond(self.get_query_results(ctx, parse(body)?).await?),
            "StopQuery" => respond(self.stop_query(ctx, parse(body)?).await?),
            "DescribeQueries" => respond(self.describe_queries(ctx, parse(body)?).await?),
            "GetLogRecord" => respond(self.get_log_record(ctx, parse(body)?).await?),
            "StartLiveTail" => Err(ApiError::client(
                "InvalidOperationException",
                "StartLiveTail answers with an event stream; call it through the control plane's event-stream path.",
            )),
            other => match logs_wire::find_operation(other) {
                Some(_) => Err(ApiError::client(
                    "InvalidOperationException",
                    format!("The operation {other} is not supported by Berth yet."),
                )),
                None => Err(ApiError::unknown_operation(other)),
            },
        }
    }

    /// Runs `work` on the log store from a blocking thread (backends do
    /// file I/O and `fsync`).
    async fn with_events<T: Send + 'static>(
        &self,
        work: impl FnOnce(&dyn LogStore) -> Result<T, log_store::LogStoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let events = Arc::clone(&self.events);
        tokio::task::spawn_blocking(move || work(&*events))
            .await
            .map_err(|err| error::unavailable(format!("log store task failed: {err}")))?
            .map_err(error::from_log_store)
    }
}

#[async_trait]
impl control_plane::JsonService for Logs {
    fn target_prefix(&self) -> &str {
        Logs::TARGET_PREFIX
    }
    fn signing_name(&self) -> &str {
        Logs::SIGNING_NAME
    }
    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        Logs::handle(self, ctx, operation, body).await
    }
    fn is_event_stream(&self, operation: &str) -> bool {
        operation == "StartLiveTail"
    }
    async fn open_event_stream(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<control_plane::EventStream, ApiError> {
        match operation {
            "StartLiveTail" => self.start_live_tail(ctx, parse(body)?).await,
            other => Err(ApiError::unknown_operation(other)),
        }
    }
}

/// The response of an operation without an output shape: `{}`.
#[derive(Serialize)]
pub(crate) struct Empty {}

/// `arn:aws:logs:<region>:<account>:log-group:<name>` (without the `:*`
/// that DescribeLogGroups' `arn` member ends with).
fn log_group_arn(ctx: &RequestContext, name: &str) -> String {
    format!(
        "arn:aws:logs:{}:{}:log-group:{name}",
        ctx.region, ctx.account_id
    )
}
