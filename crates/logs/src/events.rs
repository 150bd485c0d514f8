//! Events: PutLogEvents, GetLogEvents, FilterLogEvents.
//!
//! PutLogEvents follows AWS's rules: at most 10,000 events and 1,048,576
//! bytes (messages in UTF-8 plus 26 bytes each), in chronological order,
//! spanning at most 24 hours; events more than 2 hours ahead, more than 14
//! days old or older than the group's retention are rejected (reported in
//! `rejectedLogEventsInfo`) while the others are stored. Sequence tokens
//! are accepted and ignored, as AWS now does.
//!
//! GetLogEvents pages with AWS's tokens: `f/…` continues forward after the
//! last event returned, `b/…` backward before the first, and a forward
//! token at the end of the stream comes back unchanged, which is how
//! clients know they have read everything.

use std::sync::Arc;

use api::{ApiError, RequestContext};
use log_store::{
    Append, Direction, NewEvent, Position, ProducerCursor, Read, Scan, EVENT_OVERHEAD_BYTES,
};
use logs_wire as wire;

use crate::error;
use crate::filter_pattern::FilterPattern;
use crate::groups::{group_name_of, retention_cutoff_ms};
use crate::live_tail::IngestedBatch;
use crate::records::{list_streams, require_group, require_stream, LogStreamRecord};
use crate::validate::{Violations, LOG_STREAM_NAME_PATTERN};
use crate::Logs;

pub(crate) use model::agent_logs::MAX_BATCH_EVENTS;
use model::agent_logs::{MAX_BATCH_BYTES, MAX_BATCH_SPAN_MS};
const MAX_FUTURE_MS: i64 = 2 * 60 * 60 * 1000;
const MAX_AGE_MS: i64 = 14 * 24 * 60 * 60 * 1000;
/// What GetLogEvents and FilterLogEvents return at most per page.
const MAX_PAGE_EVENTS: usize = 10_000;
const MAX_PAGE_BYTES: usize = 1_048_576;

/// Which events of a valid batch are stored, as `rejectedLogEventsInfo`
/// reports the others: `[0, too_old_end)` are too old, `[0, expired_end)`
/// older than the retention period, `[too_new_start, len)` too far ahead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Acceptance {
    pub too_old_end: Option<usize>,
    pub expired_end: Option<usize>,
    pub too_new_start: Option<usize>,
    /// The stored events are `[accepted_start, accepted_end)`.
    pub accepted_start: usize,
    pub accepted_end: usize,
}

impl Acceptance {
    fn rejected_info(&self) -> Option<wire::RejectedLogEventsInfo> {
        if self.too_old_end.is_none() && self.expired_end.is_none() && self.too_new_start.is_none()
        {
            return None;
        }
        Some(wire::RejectedLogEventsInfo {
            too_new_log_event_start_index: self.too_new_start.map(|i| i as i32),
            too_old_log_event_end_index: self.too_old_end.map(|i| i as i32),
            expired_log_event_end_index: self.expired_end.map(|i| i as i32),
        })
    }
}

/// Checks a batch as PutLogEvents does (`Err`: the whole batch is refused)
/// and says which of its events are stored.
pub(crate) fn check_batch(
    events: &[NewEvent],
    now_ms: i64,
    retention_cutoff_ms: Option<i64>,
) -> Result<Acceptance, ApiError> {
    let bytes: u64 = events
        .iter()
        .map(|e| e.message.len() as u64 + EVENT_OVERHEAD_BYTES)
        .sum();
    if bytes > MAX_BATCH_BYTES as u64 {
        return Err(error::invalid(format!(
            "Upload too large: {bytes} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    if events
        .windows(2)
        .any(|pair| pair[1].timestamp_ms < pair[0].timestamp_ms)
    {
        return Err(error::invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    if let (Some(first), Some(last)) = (events.first(), events.last()) {
        if last.timestamp_ms - first.timestamp_ms > MAX_BATCH_SPAN_MS {
            return Err(error::invalid(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
            ));
        }
    }
    let count_before = |limit: i64| events.partition_point(|e| e.timestamp_ms < limit);
    let too_old = count_before(now_ms - MAX_AGE_MS);
    let expired = retention_cutoff_ms.map_or(0, count_before);
    let too_new = events.partition_point(|e| e.timestamp_ms <= now_ms + MAX_FUTURE_MS);
    let accepted_start = too_old.max(expired).min(too_new);
    Ok(Acceptance {
        too_old_end: (too_old > 0).then_some(too_old),
        expired_end: (expired > 0).then_some(expired),
        too_new_start: (too_new < events.len()).then_some(too_new),
        accepted_start,
        accepted_end: too_new,
    })
}

/// Where a read starts: at `startTime`, but never before the retention
/// cutoff (expired events are hidden whether or not their segments are
/// gone yet).
fn visible_start_ms(start_time: Option<i64>, cutoff: Option<i64>) -> Option<i64> {
    match (start_time, cutoff) {
        (Some(start), Some(cutoff)) => Some(start.max(cutoff)),
        (start, cutoff) => start.or(cutoff),
    }
}

/// The deprecated `nextSequenceToken` (still returned: scripts read it).
fn sequence_token(stored_events: u64) -> String {
    format!("{stored_events:056}")
}

// --- tokens ---------------------------------------------------------------

/// Before every event.
const START: Position = Position {
    timestamp_ms: -1,
    sequence: u64::MAX,
};

fn encode_position(direction: char, position: Position) -> String {
    format!(
        "{direction}/{:020}{:020}/s",
        position.timestamp_ms + 1,
        position.sequence
    )
}

fn decode_position(token: &str) -> Option<(char, Position)> {
    let (direction, rest) = token.split_once('/')?;
    let direction = match direction {
        "f" => 'f',
        "b" => 'b',
        _ => return None,
    };
    let digits = rest.strip_suffix("/s").unwrap_or(rest);
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let timestamp: i64 = digits[..20].parse().ok()?;
    let sequence: u64 = digits[20..].parse().ok()?;
    Some((
        direction,
        Position {
            timestamp_ms: timestamp.checked_sub(1)?,
            sequence,
        },
    ))
}

fn invalid_token() -> ApiError {
    error::invalid("The specified nextToken is invalid.")
}

/// FilterLogEvents' token: the stream and position of the last event
/// returned.
fn encode_filter_token(stream: &str, position: Position) -> String {
    api::pagination::encode_token(
        "FilterLogEvents",
        &format!(
            "{}\n{}\n{}",
            position.timestamp_ms, position.sequence, stream
        ),
    )
}

fn decode_filter_token(token: Option<&str>) -> Result<Option<(String, Position)>, ApiError> {
    let Some(after) =
        api::pagination::decode_token("FilterLogEvents", token).map_err(|_| invalid_token())?
    else {
        return Ok(None);
    };
    let mut parts = after.splitn(3, '\n');
    let timestamp_ms = parts.next().and_then(|p| p.parse().ok());
    let sequence = parts.next().and_then(|p| p.parse().ok());
    match (timestamp_ms, sequence, parts.next()) {
        (Some(timestamp_ms), Some(sequence), Some(stream)) => Ok(Some((
            stream.to_string(),
            Position {
                timestamp_ms,
                sequence,
            },
        ))),
        _ => Err(invalid_token()),
    }
}

/// A 56-digit event id, unique per stream incarnation and position.
fn event_id(stream_id: &str, position: Position) -> String {
    let stream_digits: u64 = u64::from_str_radix(&stream_id[..stream_id.len().min(12)], 16)
        .unwrap_or(0)
        % 10_000_000_000_000_000;
    format!(
        "{:020}{:020}{:016}",
        position.timestamp_ms.max(0),
        position.sequence,
        stream_digits
    )
}

/// The batch the agent or a caller sends, checked and ready to store.
pub(crate) struct CheckedBatch {
    pub stream: LogStreamRecord,
    pub events: Vec<NewEvent>,
    pub acceptance: Acceptance,
}

impl Logs {
    /// Runs the group's metric filters over a stored batch and hands their datapoints to
    /// the metric sink, in the background: the events are durable already, and a metric
    /// lost to a crash is a gap in a metric, never a lost event.
    async fn publish_metric_filters(
        &self,
        ctx: &RequestContext,
        group: &str,
        events: &[NewEvent],
    ) -> Result<(), ApiError> {
        let Some(sink) = &self.metric_sink else {
            return Ok(());
        };
        let filters = match self.metric_filters.get(&ctx.region, group, ctx.now_ms) {
            Some(filters) => filters,
            None => {
                let records: Vec<(String, crate::records::MetricFilterRecord)> =
                    api::records::list(
                        &*self.store,
                        &crate::records::metric_filters_prefix(&ctx.region, group),
                    )
                    .await?;
                let compiled: Vec<crate::metric_publishing::CompiledFilter> = records
                    .into_iter()
                    .filter_map(|(_, record)| {
                        let pattern =
                            crate::filter_pattern::FilterPattern::parse(&record.filter_pattern)
                                .ok()?;
                        Some(crate::metric_publishing::CompiledFilter { record, pattern })
                    })
                    .collect();
                let compiled = Arc::new(compiled);
                self.metric_filters
                    .put(&ctx.region, group, ctx.now_ms, Arc::clone(&compiled));
                compiled
            }
        };
        if filters.is_empty() {
            return Ok(());
        }
        let datapoints = crate::metric_publishing::datapoints(&filters, events);
        if datapoints.is_empty() {
            return Ok(());
        }
        let sink = Arc::clone(sink);
        let region = ctx.region.clone();
        tokio::spawn(async move {
            if let Err(err) = sink.publish(&region, datapoints).await {
                tracing::warn!(%err, "publishing metric filter datapoints failed");
            }
        });
        Ok(())
    }

    /// Looks the stream up and checks `events` as PutLogEvents does.
    pub(crate) async fn check_put(
        &self,
        ctx: &RequestContext,
        group: &str,
        stream: &str,
        events: Vec<NewEvent>,
    ) -> Result<CheckedBatch, ApiError> {
        let stream = require_stream(&*self.store, &ctx.region, group, stream).await?;
        let group = require_group(&*self.store, &ctx.region, group).await?;
        let acceptance = check_batch(
            &events,
            ctx.now_ms,
            retention_cutoff_ms(group.value.retention_in_days, ctx.now_ms),
        )?;
        Ok(CheckedBatch {
            stream: stream.value,
            events,
            acceptance,
        })
    }

    /// Stores a checked batch's accepted events (durable on return).
    pub(crate) async fn store_batch(
        &self,
        ctx: &RequestContext,
        batch: CheckedBatch,
        producer_cursor: Option<ProducerCursor>,
    ) -> Result<(log_store::Appended, u64), ApiError> {
        let CheckedBatch {
            stream,
            mut events,
            acceptance,
        } = batch;
        events.truncate(acceptance.accepted_end);
        events.drain(..acceptance.accepted_start);
        let now_ms = ctx.now_ms;
        let stream_id = stream.stream_id.clone();
        let (appended, stored, events) = self
            .with_events(move |store| {
                let appended = store.append(
                    &stream_id,
                    Append {
                        events: &events,
                        ingestion_time_ms: now_ms,
                        producer_cursor,
                    },
                )?;
                let stats = store.stats(&stream_id)?;
                Ok((appended, stats.event_count, events))
            })
            .await?;
        if appended.written && !events.is_empty() {
            self.publish_metric_filters(ctx, &stream.group, &events)
                .await?;
        }
        if appended.written && !events.is_empty() && self.live_tail.has_sessions() {
            self.live_tail.publish(IngestedBatch {
                region: ctx.region.clone(),
                group: stream.group,
                stream: stream.name,
                ingestion_time_ms: now_ms,
                events,
            });
        }
        Ok((appended, stored))
    }

    pub(crate) async fn put_log_events(
        &self,
        ctx: &RequestContext,
        request: wire::PutLogEventsRequest,
    ) -> Result<wire::PutLogEventsResponse, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.required_log_stream_name("logStreamName", request.log_stream_name.as_deref());
        violations.required("logEvents", request.log_events.as_ref());
        violations.count(
            "logEvents",
            request.log_events.as_ref().map(Vec::len),
            1,
            MAX_BATCH_EVENTS,
        );
        for (index, event) in request.log_events.iter().flatten().enumerate() {
            let member = format!("logEvents.{}.member", index + 1);
            violations.required(&format!("{member}.timestamp"), event.timestamp.as_ref());
            violations.range(&format!("{member}.timestamp"), event.timestamp, 0, i64::MAX);
            violations.required(&format!("{member}.message"), event.message.as_ref());
            violations.string(
                &format!("{member}.message"),
                event.message.as_deref(),
                1,
                usize::MAX,
                None,
            );
        }
        violations.finish()?;
        let events: Vec<NewEvent> = request
            .log_events
            .unwrap_or_default()
            .into_iter()
            .map(|e| NewEvent {
                timestamp_ms: e.timestamp.unwrap_or_default(),
                message: e.message.unwrap_or_default(),
            })
            .collect();
        let batch = self
            .check_put(
                ctx,
                request.log_group_name.as_deref().unwrap_or(""),
                request.log_stream_name.as_deref().unwrap_or(""),
                events,
            )
            .await?;
        let rejected = batch.acceptance.rejected_info();
        let (_, stored) = self.store_batch(ctx, batch, None).await?;
        Ok(wire::PutLogEventsResponse {
            next_sequence_token: Some(sequence_token(stored)),
            rejected_log_events_info: rejected,
            rejected_entity_info: None,
        })
    }

    pub(crate) async fn get_log_events(
        &self,
        ctx: &RequestContext,
        request: wire::GetLogEventsRequest,
    ) -> Result<wire::GetLogEventsResponse, ApiError> {
        let mut violations = Violations::new();
        violations.group_reference(
            request.log_group_name.as_deref(),
            request.log_group_identifier.as_deref(),
        );
        violations.required_log_stream_name("logStreamName", request.log_stream_name.as_deref());
        violations.range("startTime", request.start_time, 0, i64::MAX);
        violations.range("endTime", request.end_time, 0, i64::MAX);
        violations.range("limit", request.limit.map(i64::from), 1, 10_000);
        violations.finish()?;
        let group_name = group_name_of(
            request.log_group_name.as_deref(),
            request.log_group_identifier.as_deref(),
        )?;
        let token = match request.next_token.as_deref() {
            None => None,
            Some(token) => Some(decode_position(token).ok_or_else(invalid_token)?),
        };
        let stream = require_stream(
            &*self.store,
            &ctx.region,
            &group_name,
            request.log_stream_name.as_deref().unwrap_or(""),
        )
        .await?;
        let group = require_group(&*self.store, &ctx.region, &group_name).await?;
        let cutoff = retention_cutoff_ms(group.value.retention_in_days, ctx.now_ms);
        let start_ms = visible_start_ms(request.start_time, cutoff);
        let end_ms = request.end_time;
        let (direction, after) = match token {
            Some(('f', position)) => (Direction::Forward, Some(position)),
            Some((_, position)) => (Direction::Backward, Some(position)),
            None if request.start_from_head == Some(true) => (Direction::Forward, None),
            None => (Direction::Backward, None),
        };
        let read = Read {
            start_ms,
            end_ms,
            direction,
            after,
            limit_events: request.limit.map_or(MAX_PAGE_EVENTS, |n| n as usize),
            limit_bytes: MAX_PAGE_BYTES,
        };
        let id = stream.value.stream_id.clone();
        let mut page = self
            .with_events(move |events| events.read(&id, read))
            .await?;
        if direction == Direction::Backward {
            page.events.reverse();
        }
        // Where an empty read leaves the reader: a forward reader stays where
        // it was (the token comes back unchanged), a backward one too.
        let (first, last) = match (page.events.first(), page.events.last()) {
            (Some(first), Some(last)) => (first.position, last.position),
            _ => {
                let here = after.unwrap_or(match direction {
                    Direction::Forward => Position {
                        timestamp_ms: start_ms.map_or(START.timestamp_ms, |s| s - 1),
                        sequence: u64::MAX,
                    },
                    Direction::Backward => Position {
                        timestamp_ms: end_ms.unwrap_or(i64::MAX - 1),
                        sequence: 0,
                    },
                });
                (here, here)
            }
        };
        let (next_forward, next_backward) = match (direction, page.events.is_empty()) {
            (_, false) => (encode_position('f', last), encode_position('b', first)),
            (Direction::Forward, true) => (
                request
                    .next_token
                    .clone()
                    .unwrap_or_else(|| encode_position('f', last)),
                encode_position('b', first),
            ),
            (Direction::Backward, true) => (
                encode_position('f', last),
                request
                    .next_token
                    .clone()
                    .unwrap_or_else(|| encode_position('b', first)),
            ),
        };
        Ok(wire::GetLogEventsResponse {
            events: Some(
                page.events
                    .into_iter()
                    .map(|event| wire::OutputLogEvent {
                        timestamp: Some(event.position.timestamp_ms),
                        message: Some(event.message),
                        ingestion_time: Some(event.ingestion_time_ms),
                    })
                    .collect(),
            ),
            next_forward_token: Some(next_forward),
            next_backward_token: Some(next_backward),
        })
    }

    pub(crate) async fn filter_log_events(
        &self,
        ctx: &RequestContext,
        request: wire::FilterLogEventsRequest,
    ) -> Result<wire::FilterLogEventsResponse, ApiError> {
        let mut violations = Violations::new();
        violations.group_reference(
            request.log_group_name.as_deref(),
            request.log_group_identifier.as_deref(),
        );
        violations.count(
            "logStreamNames",
            request.log_stream_names.as_ref().map(Vec::len),
            1,
            100,
        );
        for name in request.log_stream_names.iter().flatten() {
            violations.log_stream_name("logStreamNames.member", Some(name));
        }
        violations.string(
            "logStreamNamePrefix",
            request.log_stream_name_prefix.as_deref(),
            1,
            512,
            Some(LOG_STREAM_NAME_PATTERN),
        );
        violations.range("startTime", request.start_time, 0, i64::MAX);
        violations.range("endTime", request.end_time, 0, i64::MAX);
        violations.string(
            "filterPattern",
            request.filter_pattern.as_deref(),
            0,
            1024,
            None,
        );
        violations.range("limit", request.limit.map(i64::from), 1, 10_000);
        violations.finish()?;
        if request.log_stream_names.is_some() && request.log_stream_name_prefix.is_some() {
            return Err(error::invalid(
                "Cannot specify both logStreamNames and logStreamNamePrefix.",
            ));
        }
        if request.start_from_head == Some(false) {
            return Err(error::invalid(
                "startFromHead false is not supported by Berth: FilterLogEvents returns the oldest matching events first.",
            ));
        }
        let group_name = group_name_of(
            request.log_group_name.as_deref(),
            request.log_group_identifier.as_deref(),
        )?;
        let pattern = Arc::new(
            FilterPattern::parse(request.filter_pattern.as_deref().unwrap_or(""))
                .map_err(|err| error::invalid(err.to_string()))?,
        );
        let resume = decode_filter_token(request.next_token.as_deref())?;
        let group = require_group(&*self.store, &ctx.region, &group_name).await?;
        let mut streams = list_streams(&*self.store, &ctx.region, &group_name).await?;
        if let Some(names) = &request.log_stream_names {
            streams.retain(|stream| names.contains(&stream.name));
        }
        if let Some(prefix) = &request.log_stream_name_prefix {
            streams.retain(|stream| stream.name.starts_with(prefix.as_str()));
        }
        let cutoff = retention_cutoff_ms(group.value.retention_in_days, ctx.now_ms);
        let start_ms = visible_start_ms(request.start_time, cutoff);
        let end_ms = request.end_time;
        // Resume after the stream named in the token, by its place in the
        // sorted list (a stream created since sorts where its name goes).
        let after = resume.map(|(name, position)| {
            let index = match streams.binary_search_by(|s| s.name.as_str().cmp(&name)) {
                Ok(index) => index,
                Err(insertion) => insertion.saturating_sub(1),
            };
            (index, position)
        });
        let limit_events = request.limit.map_or(MAX_PAGE_EVENTS, |n| n as usize);
        let ids: Vec<String> = streams.iter().map(|s| s.stream_id.clone()).collect();
        let page = self
            .with_events(move |events| {
                let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                let matches = move |message: &str| pattern.matches(message);
                events.scan(Scan {
                    streams: &id_refs,
                    start_ms,
                    end_ms,
                    after,
                    matches: &matches,
                    limit_events,
                    limit_bytes: MAX_PAGE_BYTES,
                })
            })
            .await?;
        let next_token = page
            .resume_after
            .map(|(index, position)| encode_filter_token(&streams[index].name, position));
        let searched_completely = next_token.is_none();
        Ok(wire::FilterLogEventsResponse {
            events: Some(
                page.events
                    .into_iter()
                    .map(|(index, event)| wire::FilteredLogEvent {
                        log_stream_name: Some(streams[index].name.clone()),
                        timestamp: Some(event.position.timestamp_ms),
                        event_id: Some(event_id(&streams[index].stream_id, event.position)),
                        message: Some(event.message),
                        ingestion_time: Some(event.ingestion_time_ms),
                    })
                    .collect(),
            ),
            searched_log_streams: Some(
                streams
                    .iter()
                    .map(|stream| wire::SearchedLogStream {
                        log_stream_name: Some(stream.name.clone()),
                        searched_completely: Some(searched_completely),
                    })
                    .collect(),
            ),
            next_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const HOUR: i64 = 60 * 60 * 1000;

    fn events(timestamps: &[i64]) -> Vec<NewEvent> {
        timestamps
            .iter()
            .map(|&timestamp_ms| NewEvent {
                timestamp_ms,
                message: "m".into(),
            })
            .collect()
    }

    fn check(timestamps: &[i64], cutoff: Option<i64>, expected: Result<Acceptance, &str>) {
        let got = check_batch(&events(timestamps), NOW, cutoff).map_err(|e| e.message);
        assert_eq!(got, expected.map_err(str::to_string), "{timestamps:?}");
    }

    #[test]
    fn batches_are_checked_as_aws_checks_them() {
        check(
            &[NOW - 1, NOW],
            None,
            Ok(Acceptance {
                accepted_start: 0,
                accepted_end: 2,
                ..Default::default()
            }),
        );
        check(
            &[NOW, NOW - 1],
            None,
            Err("Log events in a single PutLogEvents request must be in chronological order."),
        );
        check(
            &[NOW - 25 * HOUR, NOW],
            None,
            Err("The batch of log events in a single PutLogEvents request cannot span more than 24 hours."),
        );
        // 15 days old; older than 7 days' retention; 3 h ahead.
        check(
            &[NOW - 15 * 24 * HOUR],
            None,
            Ok(Acceptance {
                too_old_end: Some(1),
                accepted_start: 1,
                accepted_end: 1,
                ..Default::default()
            }),
        );
        check(
            &[
                NOW - 7 * 24 * HOUR - 10,
                NOW - 7 * 24 * HOUR - 5,
                NOW - 7 * 24 * HOUR + 10,
            ],
            Some(NOW - 7 * 24 * HOUR),
            Ok(Acceptance {
                expired_end: Some(2),
                accepted_start: 2,
                accepted_end: 3,
                ..Default::default()
            }),
        );
        check(
            &[NOW, NOW + 3 * HOUR],
            None,
            Ok(Acceptance {
                too_new_start: Some(1),
                accepted_start: 0,
                accepted_end: 1,
                ..Default::default()
            }),
        );
        let big = vec![
            NewEvent {
                timestamp_ms: NOW,
                message: "x".repeat(1_048_576 - 26),
            },
            NewEvent {
                timestamp_ms: NOW,
                message: "y".into(),
            },
        ];
        assert_eq!(
            check_batch(&big, NOW, None).unwrap_err().message,
            "Upload too large: 1048603 bytes exceeds limit of 1048576"
        );
        assert!(check_batch(&big[..1], NOW, None).is_ok());
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for position in [
            START,
            Position {
                timestamp_ms: 0,
                sequence: 0,
            },
            Position {
                timestamp_ms: NOW,
                sequence: 12345,
            },
        ] {
            for direction in ['f', 'b'] {
                let token = encode_position(direction, position);
                assert_eq!(decode_position(&token), Some((direction, position)));
            }
        }
        for garbage in ["", "f/", "x/0000", "f/12", "b/abc"] {
            assert_eq!(decode_position(garbage), None, "{garbage}");
        }
        let token = encode_filter_token(
            "a/b",
            Position {
                timestamp_ms: 5,
                sequence: 6,
            },
        );
        assert_eq!(
            decode_filter_token(Some(&token)).unwrap(),
            Some((
                "a/b".to_string(),
                Position {
                    timestamp_ms: 5,
                    sequence: 6
                }
            ))
        );
        assert!(decode_filter_token(Some("nope")).is_err());
    }

    #[test]
    fn event_ids_have_56_digits() {
        let id = event_id(
            "0123456789abcdef0123456789abcdef",
            Position {
                timestamp_ms: NOW,
                sequence: 7,
            },
        );
        assert_eq!(id.len(), 56);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
    }
}
