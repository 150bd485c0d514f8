//! StartLiveTail: a stream of the events ingested from now on into up to
//! ten log groups, as CloudWatch Logs sends it: one `sessionStart`, then a
//! `sessionUpdate` every second (empty when nothing arrived), at most 500
//! events each (sampled down beyond that, `sessionMetadata.sampled`), and a
//! `SessionTimeoutException` after three hours.
//!
//! Every batch `store_batch` makes durable is published on the
//! [`LiveTailHub`] (only while a session listens); each session keeps the
//! events its [`Selection`] matches in a bounded [`Pending`] buffer that the
//! next tick drains. A session that falls behind the hub, or buffers more
//! than CloudWatch's 5,000 events, loses the oldest events and says so with
//! `sampled`. Closing the stream ends the session.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use api::{ApiError, RequestContext};
use aws_protocol::eventstream::StreamMessage;
use control_plane::EventStream;
use futures::StreamExt;
use log_store::NewEvent;
use logs_wire as wire;
use tokio::sync::broadcast;

use crate::error;
use crate::filter_pattern::FilterPattern;
use crate::groups::group_name_of;
use crate::records::require_group;
use crate::validate::Violations;
use crate::Logs;

/// How often a session sends a `sessionUpdate`.
pub(crate) const UPDATE_INTERVAL: Duration = Duration::from_secs(1);
/// The most events one `sessionUpdate` carries.
pub(crate) const MAX_EVENTS_PER_UPDATE: usize = 500;
/// The most events a session holds between updates before dropping the
/// oldest (CloudWatch buffers 5,000 for a slow client).
pub(crate) const MAX_BUFFERED_EVENTS: usize = 5_000;
/// Sessions end with `SessionTimeoutException` after three hours.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(3 * 60 * 60);
/// Batches the hub holds for sessions that have not read them yet.
const HUB_CAPACITY_BATCHES: usize = 64;

/// Events just made durable in one log stream.
#[derive(Debug)]
pub(crate) struct IngestedBatch {
    pub region: String,
    pub group: String,
    pub stream: String,
    pub ingestion_time_ms: i64,
    pub events: Vec<NewEvent>,
}

/// Fans ingested batches out to the open sessions.
pub(crate) struct LiveTailHub {
    sender: broadcast::Sender<Arc<IngestedBatch>>,
}

impl LiveTailHub {
    pub fn new() -> Self {
        LiveTailHub {
            sender: broadcast::channel(HUB_CAPACITY_BATCHES).0,
        }
    }

    /// Whether any session would see a published batch (so writers can
    /// skip building one).
    pub fn has_sessions(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    pub fn publish(&self, batch: IngestedBatch) {
        // No receivers is not an error: nobody is tailing.
        let _ = self.sender.send(Arc::new(batch));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<IngestedBatch>> {
        self.sender.subscribe()
    }
}

/// Which streams a session names, if it narrows its one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamFilter {
    All,
    Names(Vec<String>),
    Prefixes(Vec<String>),
}

impl StreamFilter {
    fn admits(&self, stream: &str) -> bool {
        match self {
            StreamFilter::All => true,
            StreamFilter::Names(names) => names.iter().any(|name| name == stream),
            StreamFilter::Prefixes(prefixes) => prefixes
                .iter()
                .any(|prefix| stream.starts_with(prefix.as_str())),
        }
    }
}

/// What a session shows: its region's groups (by name, with the
/// identifier events are labelled with), streams and filter pattern.
pub(crate) struct Selection {
    pub region: String,
    /// (group name, `logGroupIdentifier` of its events)
    pub groups: Vec<(String, String)>,
    pub streams: StreamFilter,
    pub pattern: FilterPattern,
}

impl Selection {
    /// The batch's events this session shows, as live tail events.
    fn select(&self, batch: &IngestedBatch) -> Vec<wire::LiveTailSessionLogEvent> {
        if batch.region != self.region || !self.streams.admits(&batch.stream) {
            return Vec::new();
        }
        let Some((_, identifier)) = self.groups.iter().find(|(name, _)| *name == batch.group)
        else {
            return Vec::new();
        };
        batch
            .events
            .iter()
            .filter(|event| self.pattern.matches(&event.message))
            .map(|event| wire::LiveTailSessionLogEvent {
                log_stream_name: Some(batch.stream.clone()),
                log_group_identifier: Some(identifier.clone()),
                message: Some(event.message.clone()),
                timestamp: Some(event.timestamp_ms),
                ingestion_time: Some(batch.ingestion_time_ms),
            })
            .collect()
    }
}

/// The events a session holds until its next update.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    events: VecDeque<wire::LiveTailSessionLogEvent>,
    /// Events were dropped since the last update.
    sampled: bool,
}

impl Pending {
    pub fn offer(&mut self, selection: &Selection, batch: &IngestedBatch) {
        self.events.extend(selection.select(batch));
        if self.events.len() > MAX_BUFFERED_EVENTS {
            let excess = self.events.len() - MAX_BUFFERED_EVENTS;
            self.events.drain(..excess);
            self.sampled = true;
        }
    }

    /// The session missed events it was not there to buffer.
    pub fn lost(&mut self) {
        self.sampled = true;
    }

    /// The next `sessionUpdate`: everything held, sampled down evenly to
    /// [`MAX_EVENTS_PER_UPDATE`] in arrival order.
    pub fn take_update(&mut self) -> wire::LiveTailSessionUpdate {
        let held: Vec<_> = self.events.drain(..).collect();
        let mut sampled = std::mem::take(&mut self.sampled);
        let results = if held.len() > MAX_EVENTS_PER_UPDATE {
            sampled = true;
            let total = held.len();
            let mut picks = (0..MAX_EVENTS_PER_UPDATE).map(|i| i * total / MAX_EVENTS_PER_UPDATE);
            let mut next = picks.next();
            held.into_iter()
                .enumerate()
                .filter_map(|(index, event)| {
                    (Some(index) == next).then(|| {
                        next = picks.next();
                        event
                    })
                })
                .collect()
        } else {
            held
        };
        wire::LiveTailSessionUpdate {
            session_metadata: Some(wire::LiveTailSessionMetadata {
                sampled: Some(sampled),
            }),
            session_results: Some(results),
        }
    }
}

/// Checks the request as AWS does, in its words.
fn validate(request: &wire::StartLiveTailRequest) -> Result<(), ApiError> {
    let mut violations = Violations::new();
    violations.required(
        "logGroupIdentifiers",
        request.log_group_identifiers.as_ref(),
    );
    violations.count(
        "logGroupIdentifiers",
        request.log_group_identifiers.as_ref().map(Vec::len),
        1,
        10,
    );
    for identifier in request.log_group_identifiers.iter().flatten() {
        violations.log_group_identifier("logGroupIdentifiers.member", Some(identifier));
    }
    for (member, names) in [
        ("logStreamNames", &request.log_stream_names),
        ("logStreamNamePrefixes", &request.log_stream_name_prefixes),
    ] {
        violations.count(member, names.as_ref().map(Vec::len), 1, 100);
        for name in names.iter().flatten() {
            violations.log_stream_name(&format!("{member}.member"), Some(name));
        }
    }
    violations.string(
        "logEventFilterPattern",
        request.log_event_filter_pattern.as_deref(),
        0,
        1024,
        None,
    );
    violations.finish()?;
    let identifiers = request.log_group_identifiers.as_deref().unwrap_or_default();
    if request.log_stream_names.is_some() && request.log_stream_name_prefixes.is_some() {
        return Err(error::invalid(
            "Cannot specify both logStreamNames and logStreamNamePrefixes.",
        ));
    }
    if (request.log_stream_names.is_some() || request.log_stream_name_prefixes.is_some())
        && identifiers.len() != 1
    {
        return Err(error::invalid(
            "logStreamNames and logStreamNamePrefixes can only be specified with exactly one logGroupIdentifier.",
        ));
    }
    Ok(())
}

impl Logs {
    /// Opens a session: the request is checked and its groups looked up
    /// now, so a bad request is an ordinary error response.
    pub(crate) async fn start_live_tail(
        &self,
        ctx: &RequestContext,
        request: wire::StartLiveTailRequest,
    ) -> Result<EventStream, ApiError> {
        validate(&request)?;
        let pattern =
            FilterPattern::parse(request.log_event_filter_pattern.as_deref().unwrap_or(""))
                .map_err(|err| error::invalid(err.to_string()))?;
        let identifiers = request.log_group_identifiers.clone().unwrap_or_default();
        let mut groups = Vec::with_capacity(identifiers.len());
        for identifier in &identifiers {
            let name = group_name_of(None, Some(identifier))?;
            require_group(&*self.store, &ctx.region, &name).await?;
            let label = crate::queries::log_of(&ctx.account_id, &name);
            groups.push((name, label));
        }
        let streams = match (&request.log_stream_names, &request.log_stream_name_prefixes) {
            (Some(names), _) => StreamFilter::Names(names.clone()),
            (None, Some(prefixes)) => StreamFilter::Prefixes(prefixes.clone()),
            (None, None) => StreamFilter::All,
        };
        let selection = Selection {
            region: ctx.region.clone(),
            groups,
            streams,
            pattern,
        };
        let start = wire::LiveTailSessionStart {
            request_id: Some(ctx.request_id.clone()),
            session_id: Some(crate::records::derived_uuid(
                &ctx.request_id,
                "StartLiveTail",
            )),
            log_group_identifiers: Some(identifiers),
            log_stream_names: request.log_stream_names,
            log_stream_name_prefixes: request.log_stream_name_prefixes,
            log_event_filter_pattern: request.log_event_filter_pattern,
        };
        Ok(session(
            self.live_tail.subscribe(),
            selection,
            start,
            SESSION_TIMEOUT,
        ))
    }
}

enum Phase {
    Start(wire::LiveTailSessionStart),
    Streaming,
    Ended,
}

struct Session {
    receiver: broadcast::Receiver<Arc<IngestedBatch>>,
    selection: Selection,
    pending: Pending,
    ticks: tokio::time::Interval,
    deadline: tokio::time::Instant,
    phase: Phase,
}

/// The session's messages, produced as the client reads them.
fn session(
    receiver: broadcast::Receiver<Arc<IngestedBatch>>,
    selection: Selection,
    start: wire::LiveTailSessionStart,
    timeout: Duration,
) -> EventStream {
    let now = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval_at(now + UPDATE_INTERVAL, UPDATE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = Session {
        receiver,
        selection,
        pending: Pending::default(),
        ticks,
        deadline: now + timeout,
        phase: Phase::Start(start),
    };
    futures::stream::unfold(state, |mut state| async move {
        let message = state.next_message().await?;
        Some((message, state))
    })
    .boxed()
}

impl Session {
    async fn next_message(&mut self) -> Option<StreamMessage> {
        match std::mem::replace(&mut self.phase, Phase::Streaming) {
            Phase::Start(start) => return Some(json_event("sessionStart", &start)),
            Phase::Ended => {
                self.phase = Phase::Ended;
                return None;
            }
            Phase::Streaming => {}
        }
        loop {
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(self.deadline) => {
                    self.phase = Phase::Ended;
                    return Some(StreamMessage::exception(
                        "SessionTimeoutException",
                        "Session timed out after 3 hours.",
                    ));
                }
                _ = self.ticks.tick() => {
                    return Some(json_event("sessionUpdate", &self.pending.take_update()));
                }
                received = self.receiver.recv() => match received {
                    Ok(batch) => self.pending.offer(&self.selection, &batch),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.pending.lost(),
                    Err(broadcast::error::RecvError::Closed) => {
                        self.phase = Phase::Ended;
                        return Some(StreamMessage::exception(
                            "SessionStreamingException",
                            "The log service is shutting down.",
                        ));
                    }
                },
            }
        }
    }
}

fn json_event(event_type: &str, value: &impl serde::Serialize) -> StreamMessage {
    StreamMessage::event(
        event_type,
        serde_json::to_vec(value).expect("wire shapes serialize"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(streams: StreamFilter, pattern: &str) -> Selection {
        Selection {
            region: "us-east-1".into(),
            groups: vec![("/ecs/web".into(), "000000000000:/ecs/web".into())],
            streams,
            pattern: FilterPattern::parse(pattern).unwrap(),
        }
    }

    fn batch(group: &str, stream: &str, messages: &[&str]) -> IngestedBatch {
        IngestedBatch {
            region: "us-east-1".into(),
            group: group.into(),
            stream: stream.into(),
            ingestion_time_ms: 5_000,
            events: messages
                .iter()
                .enumerate()
                .map(|(i, m)| NewEvent {
                    timestamp_ms: 1_000 + i as i64,
                    message: (*m).to_string(),
                })
                .collect(),
        }
    }

    fn results(update: &wire::LiveTailSessionUpdate) -> Vec<String> {
        update
            .session_results
            .iter()
            .flatten()
            .map(|event| {
                format!(
                    "{}|{}|{}",
                    event.log_stream_name.as_deref().unwrap(),
                    event.message.as_deref().unwrap(),
                    event.timestamp.unwrap()
                )
            })
            .collect()
    }

    fn sampled(update: &wire::LiveTailSessionUpdate) -> bool {
        update.session_metadata.as_ref().unwrap().sampled.unwrap()
    }

    #[test]
    fn sessions_see_their_groups_streams_and_pattern_only() {
        let cases: Vec<(StreamFilter, &str, Vec<&str>)> = vec![
            (
                StreamFilter::All,
                "",
                vec!["a/1|GET /|1000", "a/1|ERROR x|1001", "b/1|ok|1000"],
            ),
            (StreamFilter::All, "ERROR", vec!["a/1|ERROR x|1001"]),
            (
                StreamFilter::Names(vec!["b/1".into()]),
                "",
                vec!["b/1|ok|1000"],
            ),
            (
                StreamFilter::Prefixes(vec!["a/".into()]),
                "",
                vec!["a/1|GET /|1000", "a/1|ERROR x|1001"],
            ),
        ];
        for (streams, pattern, expected) in cases {
            let selection = selection(streams.clone(), pattern);
            let mut pending = Pending::default();
            pending.offer(&selection, &batch("/ecs/web", "a/1", &["GET /", "ERROR x"]));
            pending.offer(&selection, &batch("/ecs/other", "a/1", &["elsewhere"]));
            pending.offer(&selection, &batch("/ecs/web", "b/1", &["ok"]));
            let mut other_region = batch("/ecs/web", "a/1", &["ERROR far away"]);
            other_region.region = "eu-west-1".into();
            pending.offer(&selection, &other_region);
            let update = pending.take_update();
            assert_eq!(results(&update), expected, "{streams:?} {pattern:?}");
            assert!(!sampled(&update));
            let identifiers: Vec<_> = update
                .session_results
                .iter()
                .flatten()
                .map(|e| e.log_group_identifier.clone().unwrap())
                .collect();
            assert!(identifiers.iter().all(|i| i == "000000000000:/ecs/web"));
            assert_eq!(results(&pending.take_update()), Vec::<String>::new());
        }
    }

    #[test]
    fn updates_are_sampled_down_to_500_in_order() {
        let selection = selection(StreamFilter::All, "");
        let messages: Vec<String> = (0..1_200).map(|i| format!("line {i}")).collect();
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        let mut pending = Pending::default();
        pending.offer(&selection, &batch("/ecs/web", "s", &refs));
        let update = pending.take_update();
        let got = update.session_results.as_ref().unwrap();
        assert_eq!(got.len(), MAX_EVENTS_PER_UPDATE);
        assert!(sampled(&update));
        assert_eq!(got[0].message.as_deref(), Some("line 0"));
        assert!(got.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        assert!(
            !sampled(&pending.take_update()),
            "the next update is whole again"
        );
    }

    #[test]
    fn a_session_that_falls_behind_keeps_the_newest_events_and_says_so() {
        let selection = selection(StreamFilter::All, "");
        let messages: Vec<String> = (0..MAX_BUFFERED_EVENTS + 10)
            .map(|i| format!("line {i}"))
            .collect();
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        let mut pending = Pending::default();
        pending.offer(&selection, &batch("/ecs/web", "s", &refs));
        let update = pending.take_update();
        assert!(sampled(&update));
        let oldest_kept = update.session_results.as_ref().unwrap().first().unwrap();
        assert_eq!(oldest_kept.message.as_deref(), Some("line 10"));

        let mut pending = Pending::default();
        pending.lost();
        assert!(sampled(&pending.take_update()));
    }

    #[test]
    fn requests_are_checked_as_aws_checks_them() {
        let request = |groups: &[&str], names: Option<&[&str]>, prefixes: Option<&[&str]>| {
            wire::StartLiveTailRequest {
                log_group_identifiers: Some(groups.iter().map(|g| g.to_string()).collect()),
                log_stream_names: names.map(|n| n.iter().map(|s| s.to_string()).collect()),
                log_stream_name_prefixes: prefixes
                    .map(|n| n.iter().map(|s| s.to_string()).collect()),
                log_event_filter_pattern: None,
            }
        };
        let arn = "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web";
        assert!(validate(&request(&[arn], None, None)).is_ok());
        assert!(validate(&request(&[arn], Some(&["a"]), None)).is_ok());
        let cases = [
            (
                request(&[arn], Some(&["a"]), Some(&["b"])),
                "Cannot specify both logStreamNames and logStreamNamePrefixes.",
            ),
            (
                request(&[arn, "/ecs/db"], Some(&["a"]), None),
                "logStreamNames and logStreamNamePrefixes can only be specified with exactly one logGroupIdentifier.",
            ),
            (
                request(&["arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web:*"], None, None),
                "1 validation error detected: Value 'arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web:*' at 'logGroupIdentifiers.member' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w#+=/:,.@-]*",
            ),
            (
                request(&[], None, None),
                "1 validation error detected: Value '[]' at 'logGroupIdentifiers' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ),
        ];
        for (request, message) in cases {
            let err = validate(&request).unwrap_err();
            assert_eq!(err.code, "InvalidParameterException");
            assert_eq!(err.message, message);
        }
        let missing = wire::StartLiveTailRequest::default();
        assert!(validate(&missing)
            .unwrap_err()
            .message
            .contains("Value null at 'logGroupIdentifiers' failed to satisfy constraint: Member must not be null"));
    }

    fn event_type(message: &StreamMessage) -> &str {
        match message {
            StreamMessage::Event { event_type, .. } => event_type,
            StreamMessage::Exception { exception_type, .. } => exception_type,
        }
    }

    fn payload(message: &StreamMessage) -> serde_json::Value {
        match message {
            StreamMessage::Event { payload, .. } | StreamMessage::Exception { payload, .. } => {
                serde_json::from_slice(payload).unwrap()
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_starts_updates_every_second_and_times_out() {
        let hub = LiveTailHub::new();
        assert!(!hub.has_sessions());
        let start = wire::LiveTailSessionStart {
            session_id: Some("s-1".into()),
            ..Default::default()
        };
        let mut stream = session(
            hub.subscribe(),
            selection(StreamFilter::All, ""),
            start,
            Duration::from_millis(3_500),
        );
        assert!(hub.has_sessions());
        let first = stream.next().await.unwrap();
        assert_eq!(event_type(&first), "sessionStart");
        assert_eq!(payload(&first)["sessionId"], "s-1");

        hub.publish(batch("/ecs/web", "a/1", &["hello"]));
        let began = tokio::time::Instant::now();
        let update = stream.next().await.unwrap();
        assert_eq!(event_type(&update), "sessionUpdate");
        assert_eq!(began.elapsed(), UPDATE_INTERVAL);
        assert_eq!(payload(&update)["sessionResults"][0]["message"], "hello");
        assert_eq!(payload(&update)["sessionMetadata"]["sampled"], false);

        let empty = stream.next().await.unwrap();
        assert_eq!(payload(&empty)["sessionResults"], serde_json::json!([]));
        stream.next().await.unwrap();
        let end = stream.next().await.unwrap();
        assert!(end.is_exception());
        assert_eq!(event_type(&end), "SessionTimeoutException");
        assert!(stream.next().await.is_none());
        drop(stream);
        assert!(!hub.has_sessions(), "closing the stream ends the session");
    }
}
