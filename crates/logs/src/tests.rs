//! The operations end to end on the in-memory store and log store.

use std::sync::Arc;

use api::{ApiError, RequestContext};
use serde_json::{json, Value};

use crate::{AgentLogs, Logs};

const NOW: i64 = 1_800_000_000_000;
const DAY: i64 = 24 * 60 * 60 * 1000;

struct Harness {
    logs: Arc<Logs>,
    agent: AgentLogs,
    now_ms: i64,
    requests: std::cell::Cell<u64>,
}

impl Harness {
    fn new() -> Self {
        let logs = Arc::new(Logs::new(
            Arc::new(store::MemoryStore::new()),
            Arc::new(log_store::MemoryLogStore::new()),
        ));
        Harness {
            agent: AgentLogs::new(Arc::clone(&logs)),
            logs,
            now_ms: NOW,
            requests: std::cell::Cell::new(0),
        }
    }

    fn ctx(&self) -> RequestContext {
        self.requests.set(self.requests.get() + 1);
        RequestContext {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            principal_arn: "arn:aws:iam::000000000000:root".into(),
            access_key_id: String::new(),
            request_id: format!("request-{}", self.requests.get()),
            now_ms: self.now_ms,
        }
    }

    async fn call(&self, operation: &str, body: Value) -> Result<Value, ApiError> {
        let response = self
            .logs
            .handle(&self.ctx(), operation, body.to_string().as_bytes())
            .await?;
        Ok(serde_json::from_slice(&response).unwrap())
    }

    async fn ok(&self, operation: &str, body: Value) -> Value {
        match self.call(operation, body).await {
            Ok(value) => value,
            Err(err) => panic!("{operation}: {err}"),
        }
    }

    async fn err(&self, operation: &str, body: Value) -> (String, String) {
        let err = self.call(operation, body).await.unwrap_err();
        (err.code.to_string(), err.message)
    }

    async fn agent_call(&self, operation: &str, body: Value) -> Result<Value, ApiError> {
        use control_plane::JsonService as _;
        let response = self
            .agent
            .handle(&self.ctx(), operation, body.to_string().as_bytes())
            .await?;
        Ok(serde_json::from_slice(&response).unwrap())
    }

    async fn group_and_stream(&self, group: &str, stream: &str) {
        self.ok("CreateLogGroup", json!({"logGroupName": group}))
            .await;
        self.ok(
            "CreateLogStream",
            json!({"logGroupName": group, "logStreamName": stream}),
        )
        .await;
    }

    async fn put(&self, group: &str, stream: &str, events: &[(i64, &str)]) -> Value {
        let events: Vec<Value> = events
            .iter()
            .map(|(t, m)| json!({"timestamp": t, "message": m}))
            .collect();
        self.ok(
            "PutLogEvents",
            json!({"logGroupName": group, "logStreamName": stream, "logEvents": events}),
        )
        .await
    }
}

fn messages(response: &Value) -> Vec<String> {
    response["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn groups_and_streams_are_created_described_and_deleted() {
    let h = Harness::new();
    h.ok(
        "CreateLogGroup",
        json!({"logGroupName": "/ecs/web", "tags": {"team": "a"}, "logGroupClass": "INFREQUENT_ACCESS"}),
    )
    .await;
    assert_eq!(
        h.err("CreateLogGroup", json!({"logGroupName": "/ecs/web"}))
            .await,
        (
            "ResourceAlreadyExistsException".into(),
            "The specified log group already exists".into()
        )
    );
    assert_eq!(
        h.err("CreateLogGroup", json!({"logGroupName": "bad name"}))
            .await
            .0,
        "InvalidParameterException"
    );
    h.ok("CreateLogGroup", json!({"logGroupName": "/ecs/web/b"}))
        .await;
    h.ok("CreateLogGroup", json!({"logGroupName": "other"}))
        .await;

    let groups = h
        .ok("DescribeLogGroups", json!({"logGroupNamePrefix": "/ecs/"}))
        .await;
    let names: Vec<&str> = groups["logGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["logGroupName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/ecs/web", "/ecs/web/b"]);
    let web = &groups["logGroups"][0];
    assert_eq!(
        web["arn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web:*"
    );
    assert_eq!(
        web["logGroupArn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web"
    );
    assert_eq!(web["creationTime"], NOW);
    assert_eq!(web["logGroupClass"], "INFREQUENT_ACCESS");
    assert_eq!(web["storedBytes"], 0);
    assert_eq!(web["metricFilterCount"], 0);

    let pattern = h
        .ok("DescribeLogGroups", json!({"logGroupNamePattern": "WEB"}))
        .await;
    assert_eq!(pattern["logGroups"].as_array().unwrap().len(), 2);
    let page = h.ok("DescribeLogGroups", json!({"limit": 2})).await;
    assert_eq!(page["logGroups"].as_array().unwrap().len(), 2);
    let rest = h
        .ok(
            "DescribeLogGroups",
            json!({"limit": 2, "nextToken": page["nextToken"]}),
        )
        .await;
    assert_eq!(rest["logGroups"][0]["logGroupName"], "other");
    assert!(rest.get("nextToken").is_none());

    // Streams of `/ecs/web` are not those of `/ecs/web/b`.
    for (group, stream) in [("/ecs/web", "a"), ("/ecs/web", "b"), ("/ecs/web/b", "c")] {
        h.ok(
            "CreateLogStream",
            json!({"logGroupName": group, "logStreamName": stream}),
        )
        .await;
    }
    assert_eq!(
        h.err(
            "CreateLogStream",
            json!({"logGroupName": "/ecs/web", "logStreamName": "a"})
        )
        .await,
        (
            "ResourceAlreadyExistsException".into(),
            "The specified log stream already exists".into()
        )
    );
    assert_eq!(
        h.err(
            "CreateLogStream",
            json!({"logGroupName": "missing", "logStreamName": "a"})
        )
        .await,
        (
            "ResourceNotFoundException".into(),
            "The specified log group does not exist.".into()
        )
    );
    let streams = h
        .ok("DescribeLogStreams", json!({"logGroupName": "/ecs/web"}))
        .await;
    let names: Vec<&str> = streams["logStreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["logStreamName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        streams["logStreams"][0]["arn"],
        "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web:log-stream:a"
    );
    assert_eq!(
        h.err(
            "DescribeLogStreams",
            json!({"logGroupName": "/ecs/web", "orderBy": "LastEventTime", "logStreamNamePrefix": "a"})
        )
        .await
        .1,
        "Cannot order by LastEventTime with a logStreamNamePrefix."
    );

    h.ok(
        "DeleteLogStream",
        json!({"logGroupName": "/ecs/web", "logStreamName": "a"}),
    )
    .await;
    assert_eq!(
        h.err(
            "DeleteLogStream",
            json!({"logGroupName": "/ecs/web", "logStreamName": "a"})
        )
        .await
        .1,
        "The specified log stream does not exist."
    );
    h.ok("DeleteLogGroup", json!({"logGroupName": "/ecs/web"}))
        .await;
    assert_eq!(
        h.err("DeleteLogGroup", json!({"logGroupName": "/ecs/web"}))
            .await
            .1,
        "The specified log group does not exist."
    );
    // The other group's stream is still there.
    let streams = h
        .ok("DescribeLogStreams", json!({"logGroupName": "/ecs/web/b"}))
        .await;
    assert_eq!(streams["logStreams"][0]["logStreamName"], "c");
}

#[tokio::test]
async fn events_are_put_and_read_back_in_pages_as_aws_pages_them() {
    let h = Harness::new();
    h.group_and_stream("g", "s").await;
    let events: Vec<(i64, String)> = (0..25)
        .map(|i| (NOW - 1000 + i, format!("line {i}")))
        .collect();
    let refs: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
    let put = h.put("g", "s", &refs).await;
    assert!(put["nextSequenceToken"].is_string());
    assert!(put.get("rejectedLogEventsInfo").is_none());

    // From the head, 10 at a time, until the forward token repeats.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request =
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 10, "startFromHead": true});
        if let Some(token) = &token {
            request["nextToken"] = json!(token);
        }
        let page = h.ok("GetLogEvents", request).await;
        seen.extend(messages(&page));
        let next = page["nextForwardToken"].as_str().unwrap().to_string();
        assert!(next.starts_with("f/"));
        if token.as_deref() == Some(next.as_str()) {
            break;
        }
        token = Some(next);
    }
    let expected: Vec<String> = events.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(seen, expected);

    // Without startFromHead: the latest events, oldest first; then backward.
    let latest = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 10}),
        )
        .await;
    assert_eq!(messages(&latest), expected[15..]);
    let before = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 10, "nextToken": latest["nextBackwardToken"]}),
        )
        .await;
    assert_eq!(messages(&before), expected[5..15]);

    // A time range.
    let range = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startTime": NOW - 1000 + 3, "endTime": NOW - 1000 + 6, "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&range), expected[3..6]);

    // New events after the end are found with the last forward token.
    h.put("g", "s", &[(NOW, "late")]).await;
    let more = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "nextToken": token}),
        )
        .await;
    assert_eq!(messages(&more), ["late"]);

    let stream = h
        .ok("DescribeLogStreams", json!({"logGroupName": "g"}))
        .await;
    let s = &stream["logStreams"][0];
    assert_eq!(s["firstEventTimestamp"], NOW - 1000);
    assert_eq!(s["lastEventTimestamp"], NOW);
    assert_eq!(s["lastIngestionTime"], NOW);
    let bytes: usize = expected.iter().map(|m| m.len() + 26).sum::<usize>() + 4 + 26;
    assert_eq!(s["storedBytes"], bytes);
    assert_eq!(
        h.err(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "nextToken": "garbage"})
        )
        .await
        .1,
        "The specified nextToken is invalid."
    );
    assert_eq!(
        h.err(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "missing"})
        )
        .await
        .1,
        "The specified log stream does not exist."
    );
}

#[tokio::test]
async fn put_log_events_rejects_old_new_and_expired_events() {
    let mut h = Harness::new();
    h.group_and_stream("g", "s").await;
    let put = h
        .put(
            "g",
            "s",
            &[(NOW - 15 * DAY, "old"), (NOW - 15 * DAY + 1, "old too")],
        )
        .await;
    assert_eq!(
        put["rejectedLogEventsInfo"],
        json!({"tooOldLogEventEndIndex": 2})
    );
    let put = h
        .put("g", "s", &[(NOW, "now"), (NOW + 3 * 3_600_000, "future")])
        .await;
    assert_eq!(
        put["rejectedLogEventsInfo"],
        json!({"tooNewLogEventStartIndex": 1})
    );
    let all = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&all), ["now"]);
    assert_eq!(
        h.err(
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [
                {"timestamp": NOW, "message": "b"}, {"timestamp": NOW - 1, "message": "a"}]})
        )
        .await
        .1,
        "Log events in a single PutLogEvents request must be in chronological order."
    );

    // Retention hides older events at once and rejects them on the way in.
    h.put("g", "s", &[(NOW - 10 * DAY, "ten days old")]).await;
    assert_eq!(
        h.err(
            "PutRetentionPolicy",
            json!({"logGroupName": "g", "retentionInDays": 2})
        )
        .await
        .1,
        "1 validation error detected: Value '2' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]"
    );
    h.ok(
        "PutRetentionPolicy",
        json!({"logGroupName": "g", "retentionInDays": 7}),
    )
    .await;
    let groups = h.ok("DescribeLogGroups", json!({})).await;
    assert_eq!(groups["logGroups"][0]["retentionInDays"], 7);
    let all = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&all), ["now"]);
    let put = h.put("g", "s", &[(NOW - 8 * DAY, "expired")]).await;
    assert_eq!(
        put["rejectedLogEventsInfo"],
        json!({"expiredLogEventEndIndex": 1})
    );
    h.now_ms += DAY;
    let pass = h.logs.enforce_retention(h.now_ms).await.unwrap();
    assert_eq!(pass.orphans_deleted, 0);
    h.ok("DeleteRetentionPolicy", json!({"logGroupName": "g"}))
        .await;
    let groups = h.ok("DescribeLogGroups", json!({})).await;
    assert!(groups["logGroups"][0].get("retentionInDays").is_none());
}

#[tokio::test]
async fn filter_log_events_interleaves_streams_and_pages() {
    let h = Harness::new();
    h.group_and_stream("g", "a").await;
    h.ok(
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "b"}),
    )
    .await;
    h.put("g", "a", &[(NOW - 30, "ERROR one"), (NOW - 10, "INFO two")])
        .await;
    h.put("g", "b", &[(NOW - 20, "ERROR three"), (NOW, "ERROR four")])
        .await;
    let all = h
        .ok(
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "ERROR"}),
        )
        .await;
    assert_eq!(messages(&all), ["ERROR one", "ERROR three", "ERROR four"]);
    assert_eq!(all["events"][1]["logStreamName"], "b");
    assert_eq!(all["events"][0]["eventId"].as_str().unwrap().len(), 56);

    let mut seen = Vec::new();
    let mut token: Option<Value> = None;
    loop {
        let mut request = json!({"logGroupName": "g", "limit": 1});
        if let Some(token) = &token {
            request["nextToken"] = token.clone();
        }
        let page = h.ok("FilterLogEvents", request).await;
        seen.extend(messages(&page));
        match page.get("nextToken") {
            Some(next) => token = Some(next.clone()),
            None => break,
        }
    }
    assert_eq!(seen, ["ERROR one", "ERROR three", "INFO two", "ERROR four"]);

    let only_b = h
        .ok(
            "FilterLogEvents",
            json!({"logGroupName": "g", "logStreamNames": ["b"], "startTime": NOW - 5}),
        )
        .await;
    assert_eq!(messages(&only_b), ["ERROR four"]);
    assert_eq!(
        h.err(
            "FilterLogEvents",
            json!({"logGroupName": "g", "logStreamNames": ["a"], "logStreamNamePrefix": "a"})
        )
        .await
        .0,
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn tags_and_metric_filters() {
    let h = Harness::new();
    h.ok(
        "CreateLogGroup",
        json!({"logGroupName": "g", "tags": {"a": "1"}}),
    )
    .await;
    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:g";
    h.ok(
        "TagResource",
        json!({"resourceArn": arn, "tags": {"b": "2"}}),
    )
    .await;
    assert_eq!(
        h.ok("ListTagsForResource", json!({"resourceArn": arn}))
            .await["tags"],
        json!({"a": "1", "b": "2"})
    );
    h.ok(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["a"]}),
    )
    .await;
    assert_eq!(
        h.ok("ListTagsLogGroup", json!({"logGroupName": "g"})).await["tags"],
        json!({"b": "2"})
    );
    assert_eq!(
        h.err(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:logs:us-east-1:000000000000:log-group:nope"})
        )
        .await
        .0,
        "ResourceNotFoundException"
    );

    let transformation =
        json!([{"metricName": "Errors", "metricNamespace": "App", "metricValue": "1"}]);
    h.ok(
        "PutMetricFilter",
        json!({"logGroupName": "g", "filterName": "errors", "filterPattern": "ERROR", "metricTransformations": transformation}),
    )
    .await;
    let filters = h
        .ok("DescribeMetricFilters", json!({"logGroupName": "g"}))
        .await;
    assert_eq!(filters["metricFilters"][0]["filterName"], "errors");
    assert_eq!(
        filters["metricFilters"][0]["metricTransformations"],
        transformation
    );
    let groups = h.ok("DescribeLogGroups", json!({})).await;
    assert_eq!(groups["logGroups"][0]["metricFilterCount"], 1);
    let test = h
        .ok(
            "TestMetricFilter",
            json!({"filterPattern": "ERROR", "logEventMessages": ["ERROR x", "INFO y"]}),
        )
        .await;
    assert_eq!(test["matches"].as_array().unwrap().len(), 1);
    assert_eq!(test["matches"][0]["eventNumber"], 1);
    h.ok(
        "DeleteMetricFilter",
        json!({"logGroupName": "g", "filterName": "errors"}),
    )
    .await;
    assert_eq!(
        h.err(
            "DeleteMetricFilter",
            json!({"logGroupName": "g", "filterName": "errors"})
        )
        .await
        .1,
        "The specified metric filter does not exist."
    );
}

#[tokio::test]
async fn the_agent_service_stores_a_resent_batch_once() {
    let h = Harness::new();
    h.group_and_stream("g", "s").await;
    let batch = json!({"logGroupName": "g", "logStreamName": "s", "producerCursor": "100",
        "logEvents": [{"timestamp": NOW, "message": "one"}]});
    let first = h
        .agent_call("PutContainerLogEvents", batch.clone())
        .await
        .unwrap();
    assert_eq!(first, json!({"written": true, "producerCursor": "100"}));
    let again = h.agent_call("PutContainerLogEvents", batch).await.unwrap();
    assert_eq!(again, json!({"written": false, "producerCursor": "100"}));
    let cursor = h
        .agent_call(
            "GetProducerCursor",
            json!({"logGroupName": "g", "logStreamName": "s"}),
        )
        .await
        .unwrap();
    assert_eq!(cursor, json!({"producerCursor": "100"}));
    let all = h
        .ok(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true}),
        )
        .await;
    assert_eq!(messages(&all), ["one"]);
    let missing = h
        .agent_call(
            "GetProducerCursor",
            json!({"logGroupName": "nope", "logStreamName": "s"}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.message, "The specified log group does not exist.");
}

#[tokio::test]
async fn orphaned_events_are_deleted_by_the_retention_pass() {
    let h = Harness::new();
    h.group_and_stream("g", "s").await;
    h.put("g", "s", &[(NOW, "x")]).await;
    // Events whose stream record is gone (as after a crash mid-delete).
    h.logs
        .events
        .append(
            "deadbeef",
            log_store::Append {
                events: &[log_store::NewEvent {
                    timestamp_ms: NOW,
                    message: "orphan".into(),
                }],
                ingestion_time_ms: NOW,
                producer_cursor: None,
            },
        )
        .unwrap();
    let pass = h.logs.enforce_retention(NOW).await.unwrap();
    assert_eq!(pass.orphans_deleted, 1);
    assert_eq!(h.logs.events.streams().unwrap().len(), 1);
}

#[tokio::test]
async fn live_tail_shows_what_puts_and_agents_store_and_nothing_resent() {
    use control_plane::JsonService as _;
    use futures::StreamExt;
    let h = Harness::new();
    h.group_and_stream("g", "s").await;
    let missing = h
        .logs
        .open_event_stream(
            &h.ctx(),
            "StartLiveTail",
            json!({"logGroupIdentifiers": ["nope"]})
                .to_string()
                .as_bytes(),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(missing.message, "The specified log group does not exist.");

    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:g";
    let mut stream = h
        .logs
        .open_event_stream(
            &h.ctx(),
            "StartLiveTail",
            json!({"logGroupIdentifiers": [arn]}).to_string().as_bytes(),
        )
        .await
        .unwrap();
    h.put("g", "s", &[(NOW, "from PutLogEvents")]).await;
    let batch = json!({"logGroupName": "g", "logStreamName": "s", "producerCursor": "7",
        "logEvents": [{"timestamp": NOW + 1, "message": "from an agent"}]});
    h.agent_call("PutContainerLogEvents", batch.clone())
        .await
        .unwrap();
    // A resent batch the store already holds is not shown twice.
    h.agent_call("PutContainerLogEvents", batch).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..5 {
        let Some(control_plane::StreamMessage::Event {
            event_type,
            payload,
        }) = stream.next().await
        else {
            panic!("the session ended early");
        };
        let payload: Value = serde_json::from_slice(&payload).unwrap();
        if event_type == "sessionStart" {
            assert_eq!(payload["logGroupIdentifiers"], json!([arn]));
            continue;
        }
        assert_eq!(event_type, "sessionUpdate");
        for event in payload["sessionResults"].as_array().unwrap() {
            assert_eq!(event["logGroupIdentifier"], "000000000000:g");
            assert_eq!(event["ingestionTime"], NOW);
            seen.push(event["message"].as_str().unwrap().to_string());
        }
        if seen.len() >= 2 {
            break;
        }
    }
    assert_eq!(seen, ["from PutLogEvents", "from an agent"]);
}

// --- Logs Insights -----------------------------------------------------------

impl Harness {
    /// A new process on the same store and log store: nothing in memory.
    fn restart(&mut self) {
        let logs = Arc::new(Logs::new(
            Arc::clone(&self.logs.store),
            Arc::clone(&self.logs.events),
        ));
        self.agent = AgentLogs::new(Arc::clone(&logs));
        self.logs = logs;
    }

    async fn start_query(&self, query: &str, mut extra: Value) -> String {
        extra["queryString"] = json!(query);
        if extra.get("startTime").is_none() {
            extra["startTime"] = json!((NOW - DAY) / 1000);
            extra["endTime"] = json!(NOW / 1000);
        }
        if ["logGroupName", "logGroupNames", "logGroupIdentifiers"]
            .iter()
            .all(|kind| extra.get(kind).is_none())
        {
            extra["logGroupName"] = json!("g");
        }
        let started = self.ok("StartQuery", extra).await;
        started["queryId"].as_str().unwrap().to_string()
    }

    /// Polls GetQueryResults until the query is no longer running.
    async fn results(&self, query_id: &str) -> Value {
        for _ in 0..5000 {
            let got = self
                .ok("GetQueryResults", json!({"queryId": query_id}))
                .await;
            if got["status"] != "Running" {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("query {query_id} did not finish");
    }

    async fn rows(&self, query: &str, extra: Value) -> Vec<Vec<(String, String)>> {
        let id = self.start_query(query, extra).await;
        let got = self.results(&id).await;
        assert_eq!(got["status"], "Complete", "{got}");
        rows_of(&got)
    }

    /// The events queries below read: two streams of group `g`.
    async fn query_fixture(&self) {
        self.group_and_stream("g", "a").await;
        self.ok(
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "b"}),
        )
        .await;
        self.put(
            "g",
            "a",
            &[
                (NOW - 3000, "INFO start"),
                (
                    NOW - 2000,
                    r#"{"level":"ERROR","latency":120,"user":{"id":"u1"}}"#,
                ),
                (NOW - 1000, "ERROR disk full"),
            ],
        )
        .await;
        self.put(
            "g",
            "b",
            &[
                (
                    NOW - 2500,
                    r#"{"level":"INFO","latency":30,"user":{"id":"u2"}}"#,
                ),
                (NOW - 500, "ERROR timeout"),
            ],
        )
        .await;
    }
}

fn rows_of(results: &Value) -> Vec<Vec<(String, String)>> {
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap().to_string(),
                        f["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

/// One field of every row.
fn column(rows: &[Vec<(String, String)>], field: &str) -> Vec<String> {
    rows.iter()
        .map(|row| {
            row.iter()
                .find(|(f, _)| f == field)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn queries_run_in_the_background_and_return_aws_shaped_results() {
    let h = Harness::new();
    h.query_fixture().await;

    let id = h
        .start_query(
            "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 2",
            json!({}),
        )
        .await;
    assert_eq!(id.len(), 36);
    let got = h.results(&id).await;
    assert_eq!(got["status"], "Complete");
    assert!(got.get("encryptionKey").is_none());
    assert_eq!(got["statistics"]["recordsScanned"], 5.0);
    assert_eq!(got["statistics"]["recordsMatched"], 3.0);
    let rows = rows_of(&got);
    let fields: Vec<&str> = rows[0].iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["@timestamp", "@message", "@ptr"]);
    assert_eq!(
        column(&rows, "@message"),
        ["ERROR timeout", "ERROR disk full"]
    );
    assert_eq!(column(&rows, "@timestamp")[0], "2027-01-15 07:59:59.500");

    // JSON fields, flattened with dots; `limit` of the request.
    let rows = h
        .rows(
            "filter level = \"ERROR\" | fields user.id, latency, @logStream",
            json!({}),
        )
        .await;
    assert_eq!(column(&rows, "user.id"), ["u1"]);
    assert_eq!(column(&rows, "latency"), ["120"]);
    assert_eq!(column(&rows, "@logStream"), ["a"]);
    let rows = h.rows("fields @message", json!({"limit": 2})).await;
    assert_eq!(
        column(&rows, "@message"),
        ["ERROR timeout", "ERROR disk full"]
    );

    // stats by bin, across both streams, in the order of the bins.
    let rows = h
        .rows("stats count(*) as n by bin(1s) as t", json!({}))
        .await;
    assert_eq!(
        rows,
        [
            vec![
                ("t".to_string(), "2027-01-15 07:59:57.000".to_string()),
                ("n".to_string(), "2".to_string())
            ],
            vec![
                ("t".to_string(), "2027-01-15 07:59:58.000".to_string()),
                ("n".to_string(), "1".to_string())
            ],
            vec![
                ("t".to_string(), "2027-01-15 07:59:59.000".to_string()),
                ("n".to_string(), "2".to_string())
            ],
        ]
    );

    // The time range: whole seconds, both ends included.
    let rows = h
        .rows(
            "fields @message",
            json!({"startTime": (NOW - 3000) / 1000, "endTime": (NOW - 2000) / 1000}),
        )
        .await;
    assert_eq!(
        column(&rows, "@message"),
        [
            r#"{"level":"ERROR","latency":120,"user":{"id":"u1"}}"#,
            r#"{"level":"INFO","latency":30,"user":{"id":"u2"}}"#,
            "INFO start"
        ]
    );

    // maxItems pages the results.
    let id = h.start_query("fields @message", json!({})).await;
    h.results(&id).await;
    let first = h
        .ok("GetQueryResults", json!({"queryId": id, "maxItems": 3}))
        .await;
    assert_eq!(rows_of(&first).len(), 3);
    let rest = h
        .ok(
            "GetQueryResults",
            json!({"queryId": id, "maxItems": 3, "nextToken": first["nextToken"]}),
        )
        .await;
    assert_eq!(rows_of(&rest).len(), 2);
    assert!(rest.get("nextToken").is_none());
}

#[tokio::test]
async fn a_ptr_finds_its_log_record() {
    let h = Harness::new();
    h.query_fixture().await;
    let rows = h
        .rows("fields @message | filter level = \"ERROR\"", json!({}))
        .await;
    let ptr = column(&rows, "@ptr")[0].clone();
    let record = h.ok("GetLogRecord", json!({"logRecordPointer": ptr})).await;
    assert_eq!(
        record["logRecord"],
        json!({
            "@message": r#"{"level":"ERROR","latency":120,"user":{"id":"u1"}}"#,
            "@timestamp": (NOW - 2000).to_string(),
            "@ingestionTime": NOW.to_string(),
            "@logStream": "a",
            "@log": "000000000000:g",
            "level": "ERROR",
            "latency": "120",
            "user.id": "u1",
        })
    );
    assert_eq!(
        h.err("GetLogRecord", json!({"logRecordPointer": "garbage"}))
            .await
            .0,
        "InvalidParameterException"
    );
    // A pointer into a stream deleted (and created again) finds nothing.
    h.ok(
        "DeleteLogStream",
        json!({"logGroupName": "g", "logStreamName": "a"}),
    )
    .await;
    h.ok(
        "CreateLogStream",
        json!({"logGroupName": "g", "logStreamName": "a"}),
    )
    .await;
    assert_eq!(
        h.err("GetLogRecord", json!({"logRecordPointer": ptr}))
            .await,
        (
            "ResourceNotFoundException".into(),
            "The specified log record does not exist.".into()
        )
    );
}

#[tokio::test]
async fn queries_honour_retention_and_span_groups() {
    let h = Harness::new();
    h.query_fixture().await;
    h.group_and_stream("other", "s").await;
    h.put("other", "s", &[(NOW - 2 * DAY, "old")]).await;
    h.put("other", "s", &[(NOW - 100, "new")]).await;
    let rows = h
        .rows(
            "fields @message, @log | sort @timestamp asc | limit 1",
            json!({"logGroupIdentifiers": ["arn:aws:logs:us-east-1:000000000000:log-group:other", "g"],
                   "startTime": (NOW - 3 * DAY) / 1000, "endTime": NOW / 1000}),
        )
        .await;
    assert_eq!(column(&rows, "@message"), ["old"]);
    assert_eq!(column(&rows, "@log"), ["000000000000:other"]);
    h.ok(
        "PutRetentionPolicy",
        json!({"logGroupName": "other", "retentionInDays": 1}),
    )
    .await;
    let rows = h
        .rows(
            "fields @message | sort @timestamp asc",
            json!({"logGroupNames": ["other"], "startTime": (NOW - 3 * DAY) / 1000, "endTime": NOW / 1000}),
        )
        .await;
    assert_eq!(column(&rows, "@message"), ["new"]);
}

#[tokio::test]
async fn start_query_refuses_what_aws_refuses() {
    let h = Harness::new();
    h.query_fixture().await;
    let base = json!({"logGroupName": "g", "startTime": 0, "endTime": NOW / 1000, "queryString": "fields @message"});
    let with = |changes: Value| {
        let mut request = base.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                request.as_object_mut().unwrap().remove(k);
            } else {
                request[k] = v.clone();
            }
        }
        request
    };
    assert_eq!(
        h.err("StartQuery", with(json!({"logGroupName": "missing"})))
            .await,
        (
            "ResourceNotFoundException".into(),
            "The specified log group does not exist.".into()
        )
    );
    let malformed = h
        .call(
            "StartQuery",
            with(json!({"queryString": "fields @message | bogus"})),
        )
        .await
        .unwrap_err();
    assert_eq!(malformed.code, "MalformedQueryException");
    assert_eq!(
        malformed.members["queryCompileError"]["location"],
        json!({"startCharOffset": 18, "endCharOffset": 23})
    );
    assert_eq!(
        malformed.members["queryCompileError"]["message"],
        malformed.message.as_str()
    );
    for changes in [
        json!({"logGroupNames": ["g"]}),
        json!({"logGroupName": null}),
    ] {
        assert_eq!(
            h.err("StartQuery", with(changes)).await.1,
            "A StartQuery operation must include exactly one of the following parameters: logGroupName, logGroupNames or logGroupIdentifiers."
        );
    }
    let many: Vec<String> = (0..51).map(|i| format!("g{i}")).collect();
    assert!(h
        .err(
            "StartQuery",
            with(json!({"logGroupName": null, "logGroupNames": many}))
        )
        .await
        .1
        .contains("at most 50 log groups"));
    assert!(h
        .err("StartQuery", with(json!({"queryLanguage": "SQL"})))
        .await
        .1
        .contains("supports only the CWLI query language"));
    assert_eq!(
        h.err("StartQuery", with(json!({"limit": 0}))).await.1,
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
    );
    assert_eq!(
        h.err("StartQuery", with(json!({"startTime": null}))).await.1,
        "1 validation error detected: Value null at 'startTime' failed to satisfy constraint: Member must not be null"
    );
    assert_eq!(
        h.err("StartQuery", with(json!({"startTime": NOW / 1000 + 1})))
            .await
            .1,
        "endTime must be greater than or equal to startTime."
    );
    for operation in ["GetQueryResults", "StopQuery"] {
        assert_eq!(
            h.err(operation, json!({"queryId": "nope"})).await,
            (
                "ResourceNotFoundException".into(),
                "Query does not exist.".into()
            )
        );
    }

    // At most 30 at once (none of these has run yet: the test's runtime
    // runs them only when this task waits).
    for _ in 0..30 {
        h.ok("StartQuery", base.clone()).await;
    }
    assert_eq!(
        h.err("StartQuery", base.clone()).await.0,
        "LimitExceededException"
    );
}

#[tokio::test]
async fn stop_query_cancels_a_running_query_and_describe_queries_lists_them() {
    let h = Harness::new();
    h.query_fixture().await;
    h.group_and_stream("other", "s").await;
    let done = h.start_query("fields @message", json!({})).await;
    h.results(&done).await;
    let stopped = h.start_query("stats count(*)", json!({})).await;
    assert_eq!(
        h.ok("StopQuery", json!({"queryId": stopped})).await,
        json!({"success": true})
    );
    let got = h.results(&stopped).await;
    assert_eq!(got["status"], "Cancelled");
    assert_eq!(got["results"], json!([]));
    for id in [&done, &stopped] {
        let (code, message) = h.err("StopQuery", json!({"queryId": id})).await;
        assert_eq!(code, "InvalidParameterException");
        assert!(message.contains("is not running"), "{message}");
    }
    let elsewhere = h
        .start_query("fields @message", json!({"logGroupName": "other"}))
        .await;
    h.results(&elsewhere).await;

    let all = h.ok("DescribeQueries", json!({})).await;
    let ids: Vec<&str> = all["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queryId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    let info = all["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queryId"] == stopped.as_str())
        .unwrap();
    assert_eq!(info["status"], "Cancelled");
    assert_eq!(info["queryString"], "stats count(*)");
    assert_eq!(info["logGroupName"], "g");
    assert_eq!(info["createTime"], NOW);
    let cancelled = h
        .ok("DescribeQueries", json!({"status": "Cancelled"}))
        .await;
    assert_eq!(cancelled["queries"].as_array().unwrap().len(), 1);
    let other = h
        .ok("DescribeQueries", json!({"logGroupName": "other"}))
        .await;
    assert_eq!(other["queries"][0]["queryId"], elsewhere.as_str());
    let page = h.ok("DescribeQueries", json!({"maxResults": 2})).await;
    assert_eq!(page["queries"].as_array().unwrap().len(), 2);
    let rest = h
        .ok(
            "DescribeQueries",
            json!({"maxResults": 2, "nextToken": page["nextToken"]}),
        )
        .await;
    assert_eq!(rest["queries"].as_array().unwrap().len(), 1);
    assert!(rest.get("nextToken").is_none());
    assert_eq!(
        h.err("DescribeQueries", json!({"maxResults": 0})).await.0,
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn a_query_runs_again_from_its_record_after_a_restart_and_expires_in_7_days() {
    let mut h = Harness::new();
    h.query_fixture().await;
    let id = h
        .start_query("fields @message | sort @timestamp desc", json!({}))
        .await;
    let before = h.results(&id).await;
    // Killed mid-run: the record still says Running.
    let interrupted = h.start_query("stats count(*) as n", json!({})).await;
    h.restart();
    let again = h.results(&id).await;
    assert_eq!(again["status"], "Complete");
    assert_eq!(rows_of(&again), rows_of(&before));
    let resumed = h.results(&interrupted).await;
    assert_eq!(resumed["status"], "Complete");
    assert_eq!(
        rows_of(&resumed),
        [vec![("n".to_string(), "5".to_string())]]
    );
    // A finished query computing its lost results again is not running.
    h.restart();
    h.ok("GetQueryResults", json!({"queryId": id})).await;
    let refused = h.err("StopQuery", json!({"queryId": id})).await;
    assert_eq!(refused.0, "InvalidParameterException");
    assert_eq!(h.results(&id).await["status"], "Complete");
    // A stopped query stays stopped across a restart.
    let stopped = h.start_query("fields @message", json!({})).await;
    h.ok("StopQuery", json!({"queryId": stopped})).await;
    h.restart();
    assert_eq!(h.results(&stopped).await["status"], "Cancelled");
    // A record that survives a crash mid-run can still be stopped.
    let orphan = h.start_query("fields @message", json!({})).await;
    h.restart();
    h.ok("StopQuery", json!({"queryId": orphan})).await;
    assert_eq!(h.results(&orphan).await["status"], "Cancelled");

    h.now_ms += 7 * DAY + 1;
    let pass = h.logs.enforce_retention(h.now_ms).await.unwrap();
    assert_eq!(pass.queries_deleted, 4);
    assert_eq!(
        h.err("GetQueryResults", json!({"queryId": id})).await.0,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn a_query_past_its_time_limit_times_out() {
    let h = Harness::new();
    h.query_fixture().await;
    h.logs.queries.set_timeout(std::time::Duration::ZERO);
    let id = h.start_query("fields @message", json!({})).await;
    assert_eq!(h.results(&id).await["status"], "Timeout");
    let described = h.ok("DescribeQueries", json!({"status": "Timeout"})).await;
    assert_eq!(described["queries"][0]["queryId"], id.as_str());
}
