//! Log streams: CreateLogStream, DeleteLogStream, DescribeLogStreams.

use api::pagination;
use api::records::{self, Write};
use api::{ApiError, RequestContext};
use log_store::StreamStats;
use logs_wire as wire;

use crate::error;
use crate::groups::group_name_of;
use crate::records::{require_group, require_stream, stream_key, LogStreamRecord};
use crate::validate::{Violations, LOG_STREAM_NAME_PATTERN};
use crate::{Empty, Logs};

impl Logs {
    pub(crate) async fn create_log_stream(
        &self,
        ctx: &RequestContext,
        request: wire::CreateLogStreamRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.required_log_stream_name("logStreamName", request.log_stream_name.as_deref());
        violations.finish()?;
        let group = request.log_group_name.unwrap_or_default();
        let name = request.log_stream_name.unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let group_record = require_group(&*self.store, &ctx.region, &group).await?;
            let key = stream_key(&ctx.region, &group, &name);
            let record = LogStreamRecord {
                group: group.clone(),
                name: name.clone(),
                creation_time_ms: ctx.now_ms,
                stream_id: crate::records::new_stream_id(&ctx.request_id, &group, &name),
            };
            // The group must still be there when the stream is written (a
            // concurrent DeleteLogGroup would otherwise orphan it).
            let group_key = crate::records::group_key(&ctx.region, &group);
            if Write::new()
                .expect(&group_key, group_record.mod_revision)
                .expect(&key, 0)
                .put(&key, &record)
                .commit(&*self.store)
                .await?
            {
                return Ok(Empty {});
            }
            if self.store.get(&key).await?.is_some() {
                return Err(error::stream_exists());
            }
        }
        Err(records::too_much_contention("the log group"))
    }

    pub(crate) async fn delete_log_stream(
        &self,
        ctx: &RequestContext,
        request: wire::DeleteLogStreamRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.required_log_stream_name("logStreamName", request.log_stream_name.as_deref());
        violations.finish()?;
        let group = request.log_group_name.unwrap_or_default();
        let name = request.log_stream_name.unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let stream = require_stream(&*self.store, &ctx.region, &group, &name).await?;
            let key = stream_key(&ctx.region, &group, &name);
            let txn = store::Txn::new()
                .when(store::Compare::mod_revision_is(&key, stream.mod_revision))
                .then(store::Op::delete(&key));
            if !self.store.txn(txn).await?.succeeded {
                continue;
            }
            let id = stream.value.stream_id;
            self.with_events(move |events| events.delete_stream(&id))
                .await?;
            return Ok(Empty {});
        }
        Err(records::too_much_contention("the log stream"))
    }

    pub(crate) async fn describe_log_streams(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeLogStreamsRequest,
    ) -> Result<wire::DescribeLogStreamsResponse, ApiError> {
        let mut violations = Violations::new();
        violations.group_reference(
            request.log_group_name.as_deref(),
            request.log_group_identifier.as_deref(),
        );
        violations.string(
            "logStreamNamePrefix",
            request.log_stream_name_prefix.as_deref(),
            1,
            512,
            Some(LOG_STREAM_NAME_PATTERN),
        );
        violations.range("limit", request.limit.map(i64::from), 1, 50);
        violations.finish()?;
        let group = group_name_of(
            request.log_group_name.as_deref(),
            request.log_group_identifier.as_deref(),
        )?;
        let order_by_time = request.order_by == Some(wire::OrderBy::LastEventTime);
        if order_by_time && request.log_stream_name_prefix.is_some() {
            return Err(error::invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        require_group(&*self.store, &ctx.region, &group).await?;
        let prefix = request.log_stream_name_prefix.as_deref().unwrap_or("");
        let streams: Vec<LogStreamRecord> =
            crate::records::list_streams(&*self.store, &ctx.region, &group)
                .await?
                .into_iter()
                .filter(|stream| stream.name.starts_with(prefix))
                .collect();
        let ids: Vec<String> = streams.iter().map(|s| s.stream_id.clone()).collect();
        let stats = self
            .with_events(move |events| {
                ids.iter()
                    .map(|id| events.stats(id))
                    .collect::<Result<Vec<StreamStats>, _>>()
            })
            .await?;
        let mut rows: Vec<(LogStreamRecord, StreamStats)> =
            streams.into_iter().zip(stats).collect::<Vec<_>>();
        let sort_key = |(stream, stats): &(LogStreamRecord, StreamStats)| {
            if order_by_time {
                // Streams without events sort first, by name.
                format!(
                    "{:020}/{}",
                    stats.last_event_timestamp_ms.unwrap_or(0).max(0),
                    stream.name
                )
            } else {
                stream.name.clone()
            }
        };
        let descending = request.descending.unwrap_or(false);
        rows.sort_by_key(sort_key);
        if descending {
            rows.reverse();
        }
        let after = pagination::decode_token("DescribeLogStreams", request.next_token.as_deref())?;
        let (page, next_token) = pagination::paginate(
            "DescribeLogStreams",
            rows,
            sort_key,
            after.as_deref(),
            request.limit.map_or(50, |n| n as usize),
            descending,
        );
        let group_arn = crate::log_group_arn(ctx, &group);
        let log_streams = page
            .into_iter()
            .map(|(stream, stats)| wire::LogStream {
                arn: Some(format!("{group_arn}:log-stream:{}", stream.name)),
                log_stream_name: Some(stream.name),
                creation_time: Some(stream.creation_time_ms),
                first_event_timestamp: stats.first_event_timestamp_ms,
                last_event_timestamp: stats.last_event_timestamp_ms,
                last_ingestion_time: stats.last_ingestion_time_ms,
                upload_sequence_token: None,
                stored_bytes: Some(stats.stored_bytes as i64),
            })
            .collect();
        Ok(wire::DescribeLogStreamsResponse {
            log_streams: Some(log_streams),
            next_token,
        })
    }
}
