//! Shippers against `runtime::FakeRuntime` and [`FakeLogs`], an in-memory
//! control plane that stores events by producer cursor as the real one
//! does, and fails or loses acknowledgements when told to.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use model::agent_logs::AgentLogEvent;
use runtime::fake::FakeRuntime;
use runtime::{ContainerSpec, LogSource};

use super::*;

const REGION: &str = "us-east-1";
const GROUP: &str = "/ecs/web";
const TASK_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task/default/abc123";

#[derive(Default)]
struct StoredStream {
    cursor: Option<Position>,
    events: Vec<AgentLogEvent>,
}

#[derive(Default)]
pub(crate) struct FakeLogsState {
    groups: BTreeSet<(String, String)>,
    streams: BTreeMap<(String, String, String), StoredStream>,
    /// Answer every call with a transport error while set.
    unreachable: bool,
    /// Store the next this-many puts but answer them with a transport error.
    lose_acks: usize,
    pub(crate) puts: usize,
    pub(crate) calls: Vec<String>,
}

/// The control plane's log calls, in memory.
#[derive(Clone, Default)]
pub(crate) struct FakeLogs(pub(crate) Arc<Mutex<FakeLogsState>>);

fn transport() -> AgentError {
    AgentError::Transport {
        endpoint: "http://fake".into(),
        message: "connection refused".into(),
    }
}

fn api(code: &str, message: &str) -> AgentError {
    AgentError::Api {
        operation: "fake".into(),
        status: 400,
        code: code.into(),
        message: message.into(),
    }
}

impl FakeLogs {
    pub(crate) fn with_group(group: &str) -> FakeLogs {
        let logs = FakeLogs::default();
        logs.state()
            .groups
            .insert((REGION.to_string(), group.to_string()));
        logs
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeLogsState> {
        self.0.lock().unwrap()
    }

    pub(crate) fn set_unreachable(&self, unreachable: bool) {
        self.state().unreachable = unreachable;
    }

    pub(crate) fn lose_acks(&self, count: usize) {
        self.state().lose_acks = count;
    }

    pub(crate) fn has_group(&self, group: &str) -> bool {
        self.state()
            .groups
            .contains(&(REGION.to_string(), group.to_string()))
    }

    pub(crate) fn messages(&self, stream: &str) -> Vec<String> {
        self.state()
            .streams
            .get(&(REGION.to_string(), GROUP.to_string(), stream.to_string()))
            .map(|s| s.events.iter().map(|e| e.message.clone()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn stream_names(&self) -> Vec<String> {
        self.state()
            .streams
            .keys()
            .map(|(_, _, stream)| stream.clone())
            .collect()
    }
}

#[async_trait]
impl LogsApi for FakeLogs {
    async fn create_log_group(&self, region: &str, group: &str) -> Result<(), AgentError> {
        let mut state = self.state();
        state.calls.push(format!("CreateLogGroup {group}"));
        if state.unreachable {
            return Err(transport());
        }
        if !state.groups.insert((region.into(), group.into())) {
            return Err(api(
                "ResourceAlreadyExistsException",
                "The specified log group already exists",
            ));
        }
        Ok(())
    }

    async fn create_log_stream(
        &self,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<(), AgentError> {
        let mut state = self.state();
        state
            .calls
            .push(format!("CreateLogStream {group} {stream}"));
        if state.unreachable {
            return Err(transport());
        }
        if !state.groups.contains(&(region.into(), group.into())) {
            return Err(api(
                "ResourceNotFoundException",
                "The specified log group does not exist.",
            ));
        }
        let key = (region.to_string(), group.to_string(), stream.to_string());
        if state.streams.contains_key(&key) {
            return Err(api(
                "ResourceAlreadyExistsException",
                "The specified log stream already exists",
            ));
        }
        state.streams.insert(key, StoredStream::default());
        Ok(())
    }

    async fn get_producer_cursor(
        &self,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<Option<Position>, AgentError> {
        let mut state = self.state();
        state.calls.push(format!("GetProducerCursor {stream}"));
        if state.unreachable {
            return Err(transport());
        }
        match state
            .streams
            .get(&(region.to_string(), group.to_string(), stream.to_string()))
        {
            Some(stored) => Ok(stored.cursor),
            None => Err(api(
                "ResourceNotFoundException",
                "The specified log stream does not exist.",
            )),
        }
    }

    async fn put_container_log_events(
        &self,
        region: &str,
        request: &PutContainerLogEventsRequest,
    ) -> Result<PutContainerLogEventsResponse, AgentError> {
        let mut state = self.state();
        state.calls.push("PutContainerLogEvents".into());
        state.puts += 1;
        if state.unreachable {
            return Err(transport());
        }
        let key = (
            region.to_string(),
            request.log_group_name.clone(),
            request.log_stream_name.clone(),
        );
        let cursor = Position::parse(&request.producer_cursor).expect("a decimal cursor");
        let lose = state.lose_acks > 0;
        if lose {
            state.lose_acks -= 1;
        }
        let Some(stored) = state.streams.get_mut(&key) else {
            return Err(api(
                "ResourceNotFoundException",
                "The specified log stream does not exist.",
            ));
        };
        let written = stored.cursor.is_none_or(|stored| cursor > stored);
        if written {
            stored.events.extend(request.log_events.iter().cloned());
            stored.cursor = Some(cursor);
        }
        let answer = PutContainerLogEventsResponse {
            written,
            producer_cursor: stored.cursor.map(Position::to_cursor),
        };
        if lose {
            return Err(transport());
        }
        Ok(answer)
    }
}

fn timing() -> ShipperTiming {
    ShipperTiming {
        flush_interval_ms: 10,
        multiline_idle_ms: 30,
        backoff_initial_ms: 1,
        backoff_max_ms: 5,
        blocking_high_water_bytes: 2 * awslogs::MAX_BATCH_BYTES,
    }
}

/// A running container `app` with these awslogs options (besides group
/// and region) and the shipper's view of it.
async fn running_container(
    runtime: &FakeRuntime,
    extra: &[(&str, &str)],
) -> (String, ContainerLogs) {
    runtime.add_image("app");
    let mut options: BTreeMap<String, String> = [
        ("awslogs-group", GROUP),
        ("awslogs-region", REGION),
        ("awslogs-stream-prefix", "ecs"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    options.retain(|_, v| !v.is_empty());
    let name = format!("ecs-web-1-app-abc123-{}", runtime.containers().len());
    let mut spec = ContainerSpec::new(&name, "app");
    spec.labels.insert(
        LABEL_AWSLOGS_OPTIONS.into(),
        serde_json::to_string(&options).unwrap(),
    );
    spec.labels.insert(LABEL_TASK_ARN.into(), TASK_ARN.into());
    spec.labels
        .insert(LABEL_CONTAINER_NAME.into(), "app".into());
    let id = runtime.create_container(&spec).await.unwrap();
    runtime.start_container(&id).await.unwrap();
    let state = runtime.container(&id).unwrap();
    let container = ContainerLogs::from_container(&state).expect("an awslogs container");
    (id, container)
}

fn spawn_shipper(
    runtime: &FakeRuntime,
    logs: &FakeLogs,
    container: &ContainerLogs,
) -> tokio::task::JoinHandle<Shipped> {
    tokio::spawn(ship(
        Arc::new(runtime.clone()),
        Arc::new(logs.clone()),
        Clock::system(),
        timing(),
        container.clone(),
    ))
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..2_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("timed out waiting for {what}");
}

const T0: i64 = 1_700_000_000_000_000_000;

fn write(runtime: &FakeRuntime, id: &str, lines: std::ops::Range<usize>) {
    for n in lines {
        // Two lines share each timestamp: positions must tell them apart.
        let source = if n % 3 == 0 {
            LogSource::Stderr
        } else {
            LogSource::Stdout
        };
        runtime.write_log(id, source, T0 + (n as i64 / 2) * 1_000, format!("line {n}"));
    }
}

fn numbered(lines: std::ops::Range<usize>) -> Vec<String> {
    lines.map(|n| format!("line {n}")).collect()
}

#[tokio::test]
async fn the_stream_is_named_as_ecs_names_it_and_created_first() {
    let runtime = FakeRuntime::new();
    let (_, container) = running_container(&runtime, &[]).await;
    assert_eq!(container.stream, "ecs/app/abc123");
    let (id, container) = running_container(&runtime, &[("awslogs-stream-prefix", "")]).await;
    assert_eq!(container.stream, id, "without a prefix: the Docker id");
}

#[tokio::test]
async fn every_line_arrives_once_when_an_acknowledgement_is_lost() {
    let runtime = FakeRuntime::new();
    let logs = FakeLogs::with_group(GROUP);
    let (id, container) = running_container(&runtime, &[]).await;
    logs.lose_acks(2);
    let shipper = spawn_shipper(&runtime, &logs, &container);
    write(&runtime, &id, 0..10);
    wait_until("the first lines", || {
        logs.messages(&container.stream).len() == 10
    })
    .await;
    write(&runtime, &id, 10..20);
    runtime.exit(&id, 0);
    let shipped = shipper.await.unwrap();
    assert_eq!(logs.messages(&container.stream), numbered(0..20));
    assert!(logs.state().puts >= 3, "the batches were sent again");
    assert_eq!(
        shipped.started_at_ms,
        runtime.container(&id).unwrap().started_at_ms
    );
}

#[tokio::test]
async fn a_restarted_agent_resumes_from_the_stored_cursor() {
    let runtime = FakeRuntime::new();
    let logs = FakeLogs::with_group(GROUP);
    let (id, container) = running_container(&runtime, &[]).await;
    let first = spawn_shipper(&runtime, &logs, &container);
    write(&runtime, &id, 0..7);
    wait_until("the first lines", || {
        logs.messages(&container.stream).len() == 7
    })
    .await;
    // The agent dies; the container writes on (line 7 shares line 6's
    // timestamp, which the cursor points into).
    first.abort();
    let _ = first.await;
    logs.lose_acks(1);
    write(&runtime, &id, 7..15);
    let second = spawn_shipper(&runtime, &logs, &container);
    write(&runtime, &id, 15..18);
    runtime.exit(&id, 0);
    second.await.unwrap();
    assert_eq!(logs.messages(&container.stream), numbered(0..18));
    // A third agent after the container stopped delivers nothing again.
    let puts = logs.state().puts;
    spawn_shipper(&runtime, &logs, &container).await.unwrap();
    assert_eq!(logs.state().puts, puts);
    assert_eq!(logs.messages(&container.stream), numbered(0..18));
}

#[tokio::test]
async fn an_unreachable_control_plane_delays_but_loses_nothing() {
    let runtime = FakeRuntime::new();
    let logs = FakeLogs::with_group(GROUP);
    let (id, container) = running_container(&runtime, &[]).await;
    let shipper = spawn_shipper(&runtime, &logs, &container);
    wait_until("the cursor read", || {
        logs.state()
            .calls
            .iter()
            .any(|c| c.starts_with("GetProducerCursor"))
    })
    .await;
    logs.set_unreachable(true);
    write(&runtime, &id, 0..50);
    wait_until("failing sends", || logs.state().puts >= 3).await;
    logs.set_unreachable(false);
    runtime.exit(&id, 0);
    shipper.await.unwrap();
    assert_eq!(logs.messages(&container.stream), numbered(0..50));
}

#[tokio::test]
async fn blocking_mode_holds_back_reading_without_losing_lines() {
    let runtime = FakeRuntime::new();
    let logs = FakeLogs::with_group(GROUP);
    let (id, container) = running_container(&runtime, &[("mode", "blocking")]).await;
    logs.set_unreachable(true);
    let shipper = tokio::spawn(ship(
        Arc::new(runtime.clone()),
        Arc::new(logs.clone()),
        Clock::system(),
        ShipperTiming {
            blocking_high_water_bytes: 64,
            ..timing()
        },
        container.clone(),
    ));
    write(&runtime, &id, 0..200);
    tokio::time::sleep(Duration::from_millis(30)).await;
    logs.set_unreachable(false);
    runtime.exit(&id, 0);
    shipper.await.unwrap();
    assert_eq!(logs.messages(&container.stream), numbered(0..200));
}

#[tokio::test]
async fn non_blocking_mode_drops_the_oldest_lines_visibly() {
    let runtime = FakeRuntime::new();
    let logs = FakeLogs::with_group(GROUP);
    let (id, container) = running_container(
        &runtime,
        &[("mode", "non-blocking"), ("max-buffer-size", "1k")],
    )
    .await;
    let shipper = spawn_shipper(&runtime, &logs, &container);
    wait_until("the cursor read", || {
        logs.state()
            .calls
            .iter()
            .any(|c| c.starts_with("GetProducerCursor"))
    })
    .await;
    logs.set_unreachable(true);
    for n in 0..100 {
        runtime.write_log(
            &id,
            LogSource::Stdout,
            T0 + n,
            format!("{n:03} {}", "x".repeat(96)),
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    logs.set_unreachable(false);
    runtime.exit(&id, 0);
    shipper.await.unwrap();
    let messages = logs.messages(&container.stream);
    let markers: Vec<&String> = messages
        .iter()
        .filter(|m| m.starts_with("[berth] "))
        .collect();
    assert!(
        !markers.is_empty(),
        "a full buffer leaves a marker: {messages:?}"
    );
    let dropped: usize = markers
        .iter()
        .map(|m| {
            m["[berth] ".len()..]
                .split(' ')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    let delivered = messages.len() - markers.len();
    assert_eq!(
        delivered + dropped,
        100,
        "every line is delivered or counted"
    );
    assert!(
        markers[0].contains("max-buffer-size (1024 bytes)"),
        "{}",
        markers[0]
    );
    assert!(
        messages.last().unwrap().starts_with("099 "),
        "the newest lines are kept"
    );
    let numbers: Vec<usize> = messages
        .iter()
        .filter(|m| !m.starts_with("[berth] "))
        .map(|m| m[..3].parse().unwrap())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "in order: {numbers:?}"
    );
}

#[tokio::test]
async fn multiline_events_are_gathered_and_flushed() {
    let runtime = FakeRuntime::new();
    let logs = FakeLogs::with_group(GROUP);
    let (id, container) =
        running_container(&runtime, &[("awslogs-multiline-pattern", "^\\d{4}-")]).await;
    let shipper = spawn_shipper(&runtime, &logs, &container);
    for (n, text) in [
        "2024-01-01 Exception in thread main",
        "  at com.example.Main.run(Main.java:10)",
        "  at com.example.Main.main(Main.java:3)",
        "2024-01-01 recovered",
    ]
    .iter()
    .enumerate()
    {
        runtime.write_log(&id, LogSource::Stderr, T0 + n as i64, *text);
    }
    // The last event is sent once idle, before the container stops.
    wait_until("the idle flush", || {
        logs.messages(&container.stream).len() == 2
    })
    .await;
    runtime.exit(&id, 0);
    shipper.await.unwrap();
    assert_eq!(
        logs.messages(&container.stream),
        vec![
            "2024-01-01 Exception in thread main\n  at com.example.Main.run(Main.java:10)\n  at com.example.Main.main(Main.java:3)\n",
            "2024-01-01 recovered\n",
        ]
    );
}

#[tokio::test]
async fn a_missing_stream_is_created_by_the_shipper() {
    let runtime = FakeRuntime::new();
    let logs = FakeLogs::with_group(GROUP);
    let (id, container) = running_container(&runtime, &[]).await;
    write(&runtime, &id, 0..3);
    runtime.exit(&id, 0);
    spawn_shipper(&runtime, &logs, &container).await.unwrap();
    assert_eq!(logs.stream_names(), vec!["ecs/app/abc123".to_string()]);
    assert_eq!(logs.messages(&container.stream), numbered(0..3));
}

#[tokio::test]
async fn a_removed_container_ends_its_shipper() {
    let runtime = FakeRuntime::new();
    let logs = FakeLogs::with_group(GROUP);
    let (id, container) = running_container(&runtime, &[]).await;
    let shipper = spawn_shipper(&runtime, &logs, &container);
    write(&runtime, &id, 0..3);
    wait_until("delivery", || logs.messages(&container.stream).len() == 3).await;
    runtime.vanish(&id);
    assert_eq!(
        shipper.await.unwrap(),
        Shipped {
            started_at_ms: None
        }
    );
}

#[tokio::test]
async fn streams_are_prepared_as_dockers_driver_prepares_them() {
    let config = |create_group: &str| {
        awslogs::parse_options(
            &[
                ("awslogs-group", GROUP),
                ("awslogs-region", REGION),
                ("awslogs-create-group", create_group),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )
        .unwrap()
    };
    let logs = FakeLogs::default();
    match ensure_stream(&logs, &config("false"), "s").await {
        Err(PrepareError::Fail(reason)) => assert_eq!(
            reason,
            "CannotStartContainerError: Error response from daemon: failed to initialize logging \
             driver: failed to create Cloudwatch log stream: ResourceNotFoundException: The \
             specified log group does not exist."
        ),
        other => panic!("{other:?}"),
    }
    ensure_stream(&logs, &config("true"), "s").await.unwrap();
    assert!(logs.has_group(GROUP));
    // Both exist now: fine.
    ensure_stream(&logs, &config("true"), "s").await.unwrap();
    ensure_stream(&logs, &config("false"), "s").await.unwrap();
    logs.set_unreachable(true);
    assert!(matches!(
        ensure_stream(&logs, &config("false"), "s").await,
        Err(PrepareError::Retry(_))
    ));
}
