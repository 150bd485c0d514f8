//! CloudWatch Logs Insights: StartQuery, GetQueryResults, StopQuery,
//! DescribeQueries and GetLogRecord, on the pure engine in `insights`.
//!
//! StartQuery checks the request and the query text, writes the query's
//! record (`/logs/<region>/queries/<id>`: text, groups, times, limit,
//! createTime, status) and returns; a background task then scans the
//! groups' streams within `[startTime, endTime]` (whole seconds, both ends
//! included, never before a group's retention cutoff) a page at a time on
//! a blocking thread, offers every event to the [`insights::Run`], and
//! keeps the output in `cache`. StopQuery aborts the task; a run longer
//! than AWS's 60 minutes ends as `Timeout`.
//!
//! Durability: the record is written before the query id is returned and
//! updated when the run ends, so no acknowledged query is lost to a
//! restart. Results live only in memory, in a bounded cache: when
//! GetQueryResults asks for a query whose results are not there (evicted,
//! or the process restarted, mid-run or after), the query runs again from
//! its record over the same time range — the events are durable — and
//! reports `Running` until it is done. A query that was cancelled, failed
//! or timed out keeps that status and returns no results. The retention
//! pass deletes records older than 7 days, as AWS keeps query results.

mod cache;
mod pointer;

use std::collections::BTreeMap;
use std::sync::Arc;

use api::records::{self, Versioned, Write};
use api::{pagination, ApiError, RequestContext};
use log_store::{LogStore, Position, Read, Scan, ScanPage};
use logs_wire as wire;
use serde::{Deserialize, Serialize};
use store::Store;

use crate::groups::{group_name_of, retention_cutoff_ms, MILLIS_PER_DAY};
use crate::insights::{self, Event, Output};
use crate::records::{get_group, list_streams, queries_prefix, query_key, require_stream};
use crate::validate::Violations;
use crate::{error, Logs};

pub(crate) use cache::QueryCache;
use cache::{Known, Progress};
use pointer::RecordPointer;

/// A StartQuery names at most this many log groups.
const MAX_QUERY_GROUPS: usize = 50;
/// AWS's limit on queries running at once in an account.
const MAX_CONCURRENT_QUERIES: usize = 30;
/// How long AWS keeps a query's results (and Berth its record).
pub(crate) const QUERY_RECORD_RETENTION_MS: i64 = 7 * MILLIS_PER_DAY;
/// One page of a query's scan.
const SCAN_PAGE_EVENTS: usize = 10_000;
const SCAN_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// A query's lifecycle. `Running` may end in any of the others, and
/// nothing leaves them (`Scheduled` is not used: a query runs at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum QueryState {
    Running,
    Complete,
    Failed,
    Cancelled,
    Timeout,
}

impl QueryState {
    fn is_finished(self) -> bool {
        self != QueryState::Running
    }

    fn to_wire(self) -> wire::QueryStatus {
        match self {
            QueryState::Running => wire::QueryStatus::Running,
            QueryState::Complete => wire::QueryStatus::Complete,
            QueryState::Failed => wire::QueryStatus::Failed,
            QueryState::Cancelled => wire::QueryStatus::Cancelled,
            QueryState::Timeout => wire::QueryStatus::Timeout,
        }
    }
}

/// What the orchestration store keeps of a query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct QueryRecord {
    pub query_id: String,
    pub query_string: String,
    pub account_id: String,
    pub log_groups: Vec<String>,
    /// StartQuery's `startTime` and `endTime`, epoch seconds.
    pub start_time_s: i64,
    pub end_time_s: i64,
    /// StartQuery's `limit` (the query's own applies without it).
    pub limit: Option<usize>,
    pub create_time_ms: i64,
    pub state: QueryState,
}

impl QueryRecord {
    /// The events the query reads: `[start, end]` in whole seconds.
    fn range_ms(&self) -> (i64, i64) {
        (
            self.start_time_s.saturating_mul(1000),
            self.end_time_s.saturating_add(1).saturating_mul(1000),
        )
    }
}

fn query_not_found() -> ApiError {
    ApiError::client("ResourceNotFoundException", "Query does not exist.")
}

fn malformed_query(err: &insights::QueryError) -> ApiError {
    ApiError::client("MalformedQueryException", err.message.clone()).with_member(
        "queryCompileError",
        serde_json::json!({
            "location": {"startCharOffset": err.start, "endCharOffset": err.end},
            "message": err.message,
        }),
    )
}

fn invalid_pointer() -> ApiError {
    error::invalid("The specified logRecordPointer is not valid. Pass an @ptr value a query returned, unchanged.")
}

fn record_not_found() -> ApiError {
    ApiError::client(
        "ResourceNotFoundException",
        "The specified log record does not exist.",
    )
}

/// The record's `@log`: `<account>:<group>`.
pub(crate) fn log_of(account_id: &str, group: &str) -> String {
    format!("{account_id}:{group}")
}

/// GetLogRecord's JSON fields, flattened with dots as the engine does.
fn flatten_json(prefix: String, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::Bool(b) => {
            out.insert(prefix, b.to_string());
        }
        serde_json::Value::Number(n) => {
            out.insert(prefix, n.to_string());
        }
        serde_json::Value::String(s) => {
            out.insert(prefix, s.clone());
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_json(format!("{prefix}.{i}"), item, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                flatten_json(format!("{prefix}.{k}"), item, out);
            }
        }
    }
}

/// Why a run ended without results.
enum RunError {
    /// The store or log store failed.
    Failed,
    Timeout,
}

impl From<ApiError> for RunError {
    fn from(_: ApiError) -> Self {
        RunError::Failed
    }
}

/// What a run needs, apart from the `Logs` it was started from.
#[derive(Clone)]
struct Runner {
    store: Arc<dyn Store>,
    events: Arc<dyn LogStore>,
    cache: Arc<QueryCache>,
    region: String,
}

impl Runner {
    /// Starts running `record` in the background (unless this process
    /// runs or ran it already); retention cutoffs are taken at `now_ms`.
    fn spawn(&self, record: QueryRecord, now_ms: i64) {
        let Some(progress) = self.cache.begin(&record.query_id) else {
            return;
        };
        let runner = self.clone();
        let query_id = record.query_id.clone();
        let timeout = self.cache.timeout();
        let task = tokio::spawn(async move {
            let query_id = record.query_id.clone();
            let deadline = tokio::time::Instant::now() + timeout;
            let run = runner.execute(&record, now_ms, &progress, deadline);
            let (state, output) = match tokio::time::timeout_at(deadline, run).await {
                Ok(Ok(output)) => (QueryState::Complete, output),
                Ok(Err(RunError::Failed)) => (QueryState::Failed, Output::default()),
                Ok(Err(RunError::Timeout)) | Err(_) => (QueryState::Timeout, Output::default()),
            };
            if runner.cache.finish(&query_id, state, output) {
                // Best effort: should this write fail, the record still says
                // Running and the query runs again when next asked for.
                let _ = set_state(&*runner.store, &runner.region, &query_id, state).await;
            }
        });
        self.cache.attach(&query_id, task.abort_handle());
    }

    async fn execute(
        &self,
        record: &QueryRecord,
        now_ms: i64,
        progress: &Progress,
        deadline: tokio::time::Instant,
    ) -> Result<Output, RunError> {
        let query = insights::parse(&record.query_string).map_err(|_| RunError::Failed)?;
        let mut run = query.run();
        let (start_ms, end_ms) = record.range_ms();
        for group_name in &record.log_groups {
            // A group deleted since StartQuery has nothing left to read.
            let Some(group) = get_group(&*self.store, &self.region, group_name).await? else {
                continue;
            };
            let cutoff = retention_cutoff_ms(group.value.retention_in_days, now_ms);
            let start_ms = cutoff.map_or(start_ms, |cutoff| start_ms.max(cutoff));
            let streams = list_streams(&*self.store, &self.region, group_name).await?;
            let ids: Arc<Vec<String>> =
                Arc::new(streams.iter().map(|s| s.stream_id.clone()).collect());
            let log = log_of(&record.account_id, group_name);
            let mut after = None;
            loop {
                // Between pages too: a page of CPU-bound offers does not
                // yield to the timer.
                if tokio::time::Instant::now() >= deadline {
                    return Err(RunError::Timeout);
                }
                let page = self
                    .scan_page(Arc::clone(&ids), start_ms, end_ms, after)
                    .await?;
                let mut bytes = 0u64;
                for (index, event) in &page.events {
                    let stream = &streams[*index];
                    let ptr = RecordPointer {
                        group: group_name.clone(),
                        stream: stream.name.clone(),
                        stream_id: stream.stream_id.clone(),
                        position: event.position,
                    }
                    .encode();
                    bytes += event.message.len() as u64;
                    run.offer(&Event {
                        timestamp_ms: event.position.timestamp_ms,
                        ingestion_time_ms: event.ingestion_time_ms,
                        message: &event.message,
                        log_stream: &stream.name,
                        log: &log,
                        ptr: &ptr,
                    });
                }
                progress.add(page.events.len() as u64, bytes);
                match page.resume_after {
                    Some(resume) => after = Some(resume),
                    None => break,
                }
            }
        }
        let mut output = run.finish();
        if let Some(limit) = record.limit {
            output.rows.truncate(limit);
        }
        Ok(output)
    }

    async fn scan_page(
        &self,
        ids: Arc<Vec<String>>,
        start_ms: i64,
        end_ms: i64,
        after: Option<(usize, Position)>,
    ) -> Result<ScanPage, ApiError> {
        if ids.is_empty() || end_ms <= start_ms {
            return Ok(ScanPage::default());
        }
        let events = Arc::clone(&self.events);
        tokio::task::spawn_blocking(move || {
            let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            events.scan(Scan {
                streams: &id_refs,
                start_ms: Some(start_ms),
                end_ms: Some(end_ms),
                after,
                matches: &|_| true,
                limit_events: SCAN_PAGE_EVENTS,
                limit_bytes: SCAN_PAGE_BYTES,
            })
        })
        .await
        .map_err(|err| error::unavailable(format!("log store task failed: {err}")))?
        .map_err(error::from_log_store)
    }
}

async fn get_record(
    store: &dyn Store,
    region: &str,
    query_id: &str,
) -> Result<Option<Versioned<QueryRecord>>, ApiError> {
    records::get(store, &query_key(region, query_id)).await
}

/// Moves a running query's record to `state`; a finished record keeps its
/// state (the first ending wins, as in the cache).
async fn set_state(
    store: &dyn Store,
    region: &str,
    query_id: &str,
    state: QueryState,
) -> Result<(), ApiError> {
    let key = query_key(region, query_id);
    for _ in 0..records::MAX_CAS_ATTEMPTS {
        let Some(Versioned {
            mut value,
            mod_revision,
        }) = get_record(store, region, query_id).await?
        else {
            return Ok(());
        };
        if value.state.is_finished() {
            return Ok(());
        }
        value.state = state;
        if Write::new()
            .expect(&key, mod_revision)
            .put(&key, &value)
            .commit(store)
            .await?
        {
            return Ok(());
        }
    }
    Err(records::too_much_contention("the query"))
}

impl Logs {
    fn runner(&self, ctx: &RequestContext) -> Runner {
        Runner {
            store: Arc::clone(&self.store),
            events: Arc::clone(&self.events),
            cache: Arc::clone(&self.queries),
            region: ctx.region.clone(),
        }
    }

    pub(crate) async fn start_query(
        &self,
        ctx: &RequestContext,
        request: wire::StartQueryRequest,
    ) -> Result<wire::StartQueryResponse, ApiError> {
        let mut violations = Violations::new();
        violations.log_group_name("logGroupName", request.log_group_name.as_deref());
        for name in request.log_group_names.iter().flatten() {
            violations.log_group_name("logGroupNames.member", Some(name));
        }
        for identifier in request.log_group_identifiers.iter().flatten() {
            violations.log_group_identifier("logGroupIdentifiers.member", Some(identifier));
        }
        violations.required("startTime", request.start_time.as_ref());
        violations.range("startTime", request.start_time, 0, i64::MAX);
        violations.required("endTime", request.end_time.as_ref());
        violations.range("endTime", request.end_time, 0, i64::MAX);
        violations.required("queryString", request.query_string.as_ref());
        violations.string(
            "queryString",
            request.query_string.as_deref(),
            0,
            10_000,
            None,
        );
        violations.range(
            "limit",
            request.limit.map(i64::from),
            1,
            insights::MAX_ROWS as i64,
        );
        violations.finish()?;
        if let Some(language) = request.query_language {
            if language != wire::QueryLanguage::Cwli {
                return Err(error::invalid(format!(
                    "Berth supports only the CWLI query language (Logs Insights QL); queryLanguage {language} is not supported."
                )));
            }
        }
        let kinds = [
            request.log_group_name.is_some(),
            request.log_group_names.is_some(),
            request.log_group_identifiers.is_some(),
        ];
        if kinds.iter().filter(|&&given| given).count() != 1 {
            return Err(error::invalid(
                "A StartQuery operation must include exactly one of the following parameters: logGroupName, logGroupNames or logGroupIdentifiers.",
            ));
        }
        let mut groups: Vec<String> = Vec::new();
        if let Some(name) = &request.log_group_name {
            groups.push(name.clone());
        }
        for name in request.log_group_names.iter().flatten() {
            groups.push(name.clone());
        }
        for identifier in request.log_group_identifiers.iter().flatten() {
            groups.push(group_name_of(None, Some(identifier))?);
        }
        let mut seen = std::collections::HashSet::new();
        groups.retain(|group| seen.insert(group.clone()));
        if groups.is_empty() {
            return Err(error::invalid(
                "A StartQuery operation must name at least one log group.",
            ));
        }
        if groups.len() > MAX_QUERY_GROUPS {
            return Err(error::invalid(format!(
                "A StartQuery operation can query at most {MAX_QUERY_GROUPS} log groups; {} were given.",
                groups.len()
            )));
        }
        let start_time_s = request.start_time.unwrap_or_default();
        let end_time_s = request.end_time.unwrap_or_default();
        if end_time_s < start_time_s {
            return Err(error::invalid(
                "endTime must be greater than or equal to startTime.",
            ));
        }
        let query_string = request.query_string.unwrap_or_default();
        insights::parse(&query_string).map_err(|e| malformed_query(&e))?;
        for group in &groups {
            if get_group(&*self.store, &ctx.region, group).await?.is_none() {
                return Err(error::group_not_found());
            }
        }
        if self.queries.running() >= MAX_CONCURRENT_QUERIES {
            return Err(error::limit_exceeded(format!(
                "Account maximum query concurrency limit of [{MAX_CONCURRENT_QUERIES}] reached. Wait for a query to finish, or stop one with StopQuery."
            )));
        }
        let record = QueryRecord {
            query_id: crate::records::derived_uuid(&ctx.request_id, "StartQuery"),
            query_string,
            account_id: ctx.account_id.clone(),
            log_groups: groups,
            start_time_s,
            end_time_s,
            limit: request.limit.map(|n| n as usize),
            create_time_ms: ctx.now_ms,
            state: QueryState::Running,
        };
        let key = query_key(&ctx.region, &record.query_id);
        if !Write::new()
            .expect(&key, 0)
            .put(&key, &record)
            .commit(&*self.store)
            .await?
        {
            return Err(ApiError::server(
                "A query with this id already exists; retry the request.",
            ));
        }
        let query_id = record.query_id.clone();
        self.runner(ctx).spawn(record, ctx.now_ms);
        Ok(wire::StartQueryResponse {
            query_id: Some(query_id),
        })
    }

    /// The state and (when finished) output of a query, running it again
    /// from its record when this process does not hold its results.
    async fn query_status(
        &self,
        ctx: &RequestContext,
        query_id: &str,
    ) -> Result<(QueryRecord, Known), ApiError> {
        let record = get_record(&*self.store, &ctx.region, query_id)
            .await?
            .ok_or_else(query_not_found)?
            .value;
        if let Some(known) = self.queries.get(query_id) {
            return Ok((record, known));
        }
        if record.state == QueryState::Running || record.state == QueryState::Complete {
            self.runner(ctx).spawn(record.clone(), ctx.now_ms);
        }
        let known = self
            .queries
            .get(query_id)
            .unwrap_or_else(|| Known::Finished(record.state, Arc::new(Output::default())));
        Ok((record, known))
    }

    pub(crate) async fn get_query_results(
        &self,
        ctx: &RequestContext,
        request: wire::GetQueryResultsRequest,
    ) -> Result<wire::GetQueryResultsResponse, ApiError> {
        let mut violations = Violations::new();
        violations.required("queryId", request.query_id.as_ref());
        violations.string("queryId", request.query_id.as_deref(), 1, 256, None);
        violations.string("nextToken", request.next_token.as_deref(), 0, 1024, None);
        violations.range(
            "maxItems",
            request.max_items.map(i64::from),
            0,
            insights::MAX_ROWS as i64,
        );
        violations.finish()?;
        let query_id = request.query_id.unwrap_or_default();
        let offset: usize =
            match pagination::decode_token("GetQueryResults", request.next_token.as_deref())? {
                None => 0,
                Some(after) => after
                    .parse()
                    .map_err(|_| error::invalid("The specified nextToken is invalid."))?,
            };
        let (_, known) = self.query_status(ctx, &query_id).await?;
        let (state, output, statistics) = match known {
            Known::Running(progress) => {
                let (records, bytes) = progress.scanned();
                (
                    QueryState::Running,
                    Arc::new(Output::default()),
                    wire::QueryStatistics {
                        records_matched: Some(0.0),
                        records_scanned: Some(records as f64),
                        bytes_scanned: Some(bytes as f64),
                        ..Default::default()
                    },
                )
            }
            Known::Finished(state, output) => {
                let statistics = wire::QueryStatistics {
                    records_matched: Some(output.records_matched),
                    records_scanned: Some(output.records_scanned),
                    bytes_scanned: Some(output.bytes_scanned),
                    ..Default::default()
                };
                (state, output, statistics)
            }
        };
        let page_size = match request.max_items {
            Some(n) if n > 0 => n as usize,
            _ => usize::MAX,
        };
        let rows = output.rows.get(offset..).unwrap_or_default();
        let page = &rows[..rows.len().min(page_size)];
        let next_token = (page.len() < rows.len()).then(|| {
            pagination::encode_token("GetQueryResults", &(offset + page.len()).to_string())
        });
        Ok(wire::GetQueryResultsResponse {
            query_language: Some(wire::QueryLanguage::Cwli),
            results: Some(
                page.iter()
                    .map(|row| {
                        row.iter()
                            .map(|(field, value)| wire::ResultField {
                                field: Some(field.clone()),
                                value: Some(value.clone()),
                            })
                            .collect()
                    })
                    .collect(),
            ),
            statistics: Some(statistics),
            status: Some(state.to_wire()),
            encryption_key: None,
            next_token,
        })
    }

    pub(crate) async fn stop_query(
        &self,
        ctx: &RequestContext,
        request: wire::StopQueryRequest,
    ) -> Result<wire::StopQueryResponse, ApiError> {
        let mut violations = Violations::new();
        violations.required("queryId", request.query_id.as_ref());
        violations.string("queryId", request.query_id.as_deref(), 1, 256, None);
        violations.finish()?;
        let query_id = request.query_id.unwrap_or_default();
        let record = get_record(&*self.store, &ctx.region, &query_id)
            .await?
            .ok_or_else(query_not_found)?
            .value;
        // The record decides: a finished query whose evicted results are
        // being computed again is not running, whatever the cache shows.
        let stopped = record.state == QueryState::Running
            && match self.queries.get(&query_id) {
                Some(Known::Running(_)) => self.queries.cancel(&query_id),
                Some(Known::Finished(..)) => false,
                // Running when the process stopped: it would run again when
                // asked for, so it can still be stopped.
                None => true,
            };
        if !stopped {
            return Err(error::invalid(format!(
                "Query {query_id} is not running; only a running query can be stopped."
            )));
        }
        set_state(&*self.store, &ctx.region, &query_id, QueryState::Cancelled).await?;
        Ok(wire::StopQueryResponse {
            success: Some(true),
        })
    }

    pub(crate) async fn describe_queries(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeQueriesRequest,
    ) -> Result<wire::DescribeQueriesResponse, ApiError> {
        let mut violations = Violations::new();
        violations.log_group_name("logGroupName", request.log_group_name.as_deref());
        violations.range("maxResults", request.max_results.map(i64::from), 1, 1000);
        violations.string(
            "nextToken",
            request.next_token.as_deref(),
            1,
            usize::MAX,
            None,
        );
        violations.finish()?;
        let after = pagination::decode_token("DescribeQueries", request.next_token.as_deref())?;
        let mut queries: Vec<(QueryRecord, QueryState)> =
            records::list::<QueryRecord>(&*self.store, &queries_prefix(&ctx.region))
                .await?
                .into_iter()
                .map(|(_, record)| {
                    let state = match self.queries.get(&record.query_id) {
                        Some(Known::Running(_)) => QueryState::Running,
                        Some(Known::Finished(state, _)) => state,
                        None => record.state,
                    };
                    (record, state)
                })
                .filter(|(record, _)| {
                    request
                        .log_group_name
                        .as_ref()
                        .is_none_or(|name| record.log_groups.contains(name))
                })
                .filter(|(_, state)| {
                    request
                        .status
                        .is_none_or(|status| status == state.to_wire())
                })
                .filter(|_| {
                    request
                        .query_language
                        .is_none_or(|language| language == wire::QueryLanguage::Cwli)
                })
                .collect();
        // Newest first.
        let key = |(record, _): &(QueryRecord, QueryState)| {
            format!(
                "{:020}/{}",
                i64::MAX - record.create_time_ms.max(0),
                record.query_id
            )
        };
        queries.sort_by_key(key);
        let (page, next_token) = pagination::paginate(
            "DescribeQueries",
            queries,
            key,
            after.as_deref(),
            request.max_results.map_or(1000, |n| n as usize),
            false,
        );
        Ok(wire::DescribeQueriesResponse {
            queries: Some(
                page.into_iter()
                    .map(|(record, state)| wire::QueryInfo {
                        query_language: Some(wire::QueryLanguage::Cwli),
                        query_id: Some(record.query_id),
                        query_string: Some(record.query_string),
                        status: Some(state.to_wire()),
                        create_time: Some(record.create_time_ms),
                        log_group_name: record.log_groups.into_iter().next(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            next_token,
        })
    }

    pub(crate) async fn get_log_record(
        &self,
        ctx: &RequestContext,
        request: wire::GetLogRecordRequest,
    ) -> Result<wire::GetLogRecordResponse, ApiError> {
        let mut violations = Violations::new();
        violations.required("logRecordPointer", request.log_record_pointer.as_ref());
        violations.finish()?;
        let pointer = RecordPointer::decode(request.log_record_pointer.as_deref().unwrap_or(""))
            .ok_or_else(invalid_pointer)?;
        let stream = match require_stream(
            &*self.store,
            &ctx.region,
            &pointer.group,
            &pointer.stream,
        )
        .await
        {
            Ok(stream) if stream.value.stream_id == pointer.stream_id => stream.value,
            Ok(_) => return Err(record_not_found()),
            Err(err) if err.code == "ResourceNotFoundException" => return Err(record_not_found()),
            Err(err) => return Err(err),
        };
        let group = get_group(&*self.store, &ctx.region, &pointer.group)
            .await?
            .ok_or_else(record_not_found)?;
        let cutoff = retention_cutoff_ms(group.value.retention_in_days, ctx.now_ms);
        let position = pointer.position;
        if cutoff.is_some_and(|cutoff| position.timestamp_ms < cutoff) {
            return Err(record_not_found());
        }
        let read = Read {
            start_ms: Some(position.timestamp_ms),
            end_ms: position.timestamp_ms.checked_add(1),
            direction: log_store::Direction::Forward,
            after: position.sequence.checked_sub(1).map(|sequence| Position {
                timestamp_ms: position.timestamp_ms,
                sequence,
            }),
            limit_events: 1,
            limit_bytes: usize::MAX,
        };
        let id = stream.stream_id.clone();
        let page = self
            .with_events(move |events| events.read(&id, read))
            .await?;
        let event = page
            .events
            .into_iter()
            .next()
            .filter(|event| event.position == position)
            .ok_or_else(record_not_found)?;
        let mut record = BTreeMap::new();
        if event.message.trim_start().starts_with('{') {
            if let Ok(serde_json::Value::Object(map)) =
                serde_json::from_str::<serde_json::Value>(&event.message)
            {
                for (k, v) in &map {
                    flatten_json(k.clone(), v, &mut record);
                }
            }
        }
        record.insert("@message".into(), event.message);
        record.insert("@timestamp".into(), event.position.timestamp_ms.to_string());
        record.insert("@ingestionTime".into(), event.ingestion_time_ms.to_string());
        record.insert("@logStream".into(), stream.name);
        record.insert("@log".into(), log_of(&ctx.account_id, &pointer.group));
        Ok(wire::GetLogRecordResponse {
            log_record: Some(record),
        })
    }

    /// The retention pass's part: deletes the records (and cached results)
    /// of queries created more than 7 days before `now_ms`.
    pub(crate) async fn expire_queries(
        &self,
        expired: Vec<(String, String, store::Revision)>,
    ) -> Result<usize, ApiError> {
        let mut deleted = 0;
        for (key, query_id, mod_revision) in expired {
            let txn = store::Txn::new()
                .when(store::Compare::mod_revision_is(&key, mod_revision))
                .then(store::Op::delete(&key));
            if self.store.txn(txn).await?.succeeded {
                self.queries.forget(&query_id);
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_ids_are_uuids_unique_per_request() {
        let a = crate::records::derived_uuid("request-1", "StartQuery");
        let b = crate::records::derived_uuid("request-2", "StartQuery");
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn times_are_whole_seconds_both_ends_included() {
        let record = QueryRecord {
            query_id: "q".into(),
            query_string: "fields @message".into(),
            account_id: "0".into(),
            log_groups: vec!["g".into()],
            start_time_s: 10,
            end_time_s: 20,
            limit: None,
            create_time_ms: 0,
            state: QueryState::Running,
        };
        assert_eq!(record.range_ms(), (10_000, 21_000));
    }

    #[test]
    fn json_fields_flatten_with_dots() {
        let mut out = BTreeMap::new();
        let value: serde_json::Value =
            serde_json::from_str(r#"{"a": {"b": [1, {"c": true}]}, "n": null, "s": "x"}"#).unwrap();
        if let serde_json::Value::Object(map) = value {
            for (k, v) in &map {
                flatten_json(k.clone(), v, &mut out);
            }
        }
        let got: Vec<(&str, &str)> = out.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, [("a.b.0", "1"), ("a.b.1.c", "true"), ("s", "x")]);
    }
}
