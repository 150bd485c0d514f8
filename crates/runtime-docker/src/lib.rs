//! [`DockerRuntime`]: the container runtime seam implemented on the Docker
//! Engine API.
//!
//! # Why a small client of our own rather than `bollard`
//!
//! Berth uses a dozen Engine endpoints (version, info, image inspect/create,
//! container create/start/stop/kill/delete/inspect/list, volume
//! create/delete, events) and a handful of fields of each response. `bollard`
//! would bring the whole generated API model (hundreds of types; minutes of
//! compile time on the two-core build machines) and its own version of every
//! shape, which we would still have to map to [`runtime`]'s types. Instead
//! this crate speaks HTTP/1.1 over the daemon socket with `hyper`, which the
//! workspace already builds for the control plane, and keeps the Docker JSON
//! in one module (`convert`) of pure, unit-tested functions. The cost is
//! owning that mapping, which we would own anyway.
//!
//! # Behaviour
//!
//! - [`DockerRuntime::connect`] reads `DOCKER_HOST` (`unix://` or plain
//!   `tcp://`; default `/var/run/docker.sock`) and negotiates the API
//!   version: the daemon's, capped at 1.41 (the version tested), raised to
//!   the daemon's minimum if it has dropped 1.41; daemons older than API
//!   1.40 (Docker 19.03) are refused.
//! - One connection per request, so a long pull or the event stream never
//!   blocks other calls.
//! - Pulls consume the whole progress stream: Docker reports most failures
//!   (unknown tag, denied) *after* `200 OK`, as a line of the stream.
//! - [`ContainerRuntime::image_digest`] reads the image's `RepoDigests`
//!   (`GET /images/{name}/json`) and picks the entry of the reference's
//!   repository ([`runtime::ImageReference::manifest_digest`]).
//! - [`ContainerRuntime::list_containers`] inspects each listed container,
//!   because Docker's list does not include exit codes, OOM or health.
//! - `oom_killed` is `State.OOMKilled`, except that an exit with 137 and the
//!   flag unset is checked against the daemon's recent events: Docker 20.10
//!   leaves the flag unset when its `oom` event is processed after the exit
//!   (about one OOM kill in fifteen on the test machine).
//! - The event stream is filtered by the daemon (type, label, and only the
//!   actions the seam reports, so healthcheck `exec_*` events never cross the
//!   socket). When the daemon closes it, the stream yields one
//!   [`RuntimeError::Unavailable`] and ends.
//! - [`ContainerRuntime::follow_logs`] reads
//!   `GET /containers/{id}/logs?follow=1&timestamps=1&since=…`, so it works
//!   with every driver Docker can read back (`json-file`, `local`,
//!   `journald`, and others through Docker 20.10's dual logging). The
//!   container is inspected first: a TTY container's stream is raw, the
//!   others' multiplexed (API 1.41 does not say which in `Content-Type`).
//!   Decoding (frames, timestamps, rejoining Docker's 16 KiB partial
//!   messages) is the pure `log_stream` module. Docker ends the stream when
//!   the container stops, sometimes before sending the last entries (a
//!   final line without newline, always with `local` on Docker 20.10):
//!   so the log is then read once more without `follow` from the last
//!   timestamp delivered, and what is new is delivered. A cut connection
//!   yields one
//!   [`RuntimeError::Unavailable`] (a line being rejoined is not delivered:
//!   follow again from the last timestamp seen).
//!
//! - [`ContainerRuntime::container_stats`] reads
//!   `GET /containers/{id}/stats?stream=false&one-shot=true`: one sample,
//!   answered at once on API 1.41 (Docker 20.10); a daemon negotiated down
//!   to API 1.40 ignores `one-shot` and answers after about a second. Docker
//!   answers a container that is not running with empty stats: `None`.
//!
//! Streams (events, logs, pulls) are read straight from the hyper body,
//! which is why the Engine's log stream did not call for `bollard` either:
//! the multiplexed framing is a few lines of pure code, and `bollard`'s log
//! output would still need the partial-message rejoining done here.
//!
//! **Architecture Invariant:** everything that knows Docker's JSON lives in
//! `convert` and has no I/O; this file only sequences HTTP calls.

use async_trait::async_trait;
use base64::Engine as _;
use futures::StreamExt;
use http::{Method, StatusCode};
use runtime::{
    ContainerEventStream, ContainerRuntime, ContainerSpec, ContainerState, ContainerStats, LogLine,
    LogLineStream, RegistryAuth, RuntimeError, RuntimeInfo, VolumeSpec,
};
use serde::Deserialize;

mod client;
mod convert;
mod log_stream;
mod rfc3339;
pub mod test_support;

use client::{path_segment, query_value, read_body, Client, Endpoint, LineReader};
use convert::ApiVersion;

pub use client::DEFAULT_DOCKER_SOCKET;
pub use rfc3339::{parse_rfc3339_ms, parse_rfc3339_ns};

/// The API version requests use when the daemon supports it.
pub const PREFERRED_API_VERSION: &str = "1.41";
/// The oldest daemon API version accepted (Docker 19.03).
pub const OLDEST_SUPPORTED_API_VERSION: &str = "1.40";

/// A connection to one Docker daemon.
#[derive(Clone, Debug)]
pub struct DockerRuntime {
    client: Client,
    api_version: String,
}

impl DockerRuntime {
    /// Connects to the daemon named by `DOCKER_HOST`, or the default socket.
    pub async fn connect() -> Result<DockerRuntime, RuntimeError> {
        let docker_host = std::env::var("DOCKER_HOST").ok();
        DockerRuntime::connect_to(docker_host.as_deref()).await
    }

    /// Connects to the daemon at `docker_host` (a `DOCKER_HOST` value;
    /// `None` for the default socket) and negotiates the API version.
    pub async fn connect_to(docker_host: Option<&str>) -> Result<DockerRuntime, RuntimeError> {
        let mut client = Client::new(Endpoint::from_docker_host(docker_host)?);
        let (status, body) = client.call(Method::GET, "/version", None).await?;
        if status != StatusCode::OK {
            return Err(RuntimeError::Unavailable {
                message: format!(
                    "the Docker daemon at {} answered /version with HTTP {status}: {}",
                    client.endpoint(),
                    convert::error_message(&body)
                ),
            });
        }
        let (server, server_minimum) = convert::parse_version(&body)?;
        let version = |text| ApiVersion::parse(text).expect("constant API versions parse");
        let chosen = convert::negotiate_api_version(
            server,
            server_minimum,
            version(PREFERRED_API_VERSION),
            version(OLDEST_SUPPORTED_API_VERSION),
        )?;
        let api_version = chosen.to_string();
        client.set_api_version(&api_version);
        Ok(DockerRuntime {
            client,
            api_version,
        })
    }

    /// The negotiated API version, e.g. `1.41`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// Where the daemon is, e.g. `unix:///var/run/docker.sock`.
    pub fn endpoint(&self) -> String {
        self.client.endpoint().to_string()
    }

    fn stream_ended(&self, detail: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Unavailable {
            message: format!(
                "the Docker event stream from {} ended ({detail}); the daemon may be \
                 restarting: subscribe and list containers again",
                self.client.endpoint()
            ),
        }
    }
}

impl DockerRuntime {
    /// Whether the daemon's recent-event buffer holds an `oom` event for the
    /// container since it started. Docker 20.10 leaves `State.OOMKilled`
    /// false when the `oom` event is processed after the exit (moby#18510
    /// shows the same symptom), roughly one OOM kill in fifteen here; the event
    /// itself is reliable. Best effort: the daemon keeps only its last 256
    /// events, and a failure to ask counts as "no".
    async fn oom_event_recorded(&self, state: &ContainerState) -> bool {
        let Some(started_at_ms) = state.started_at_ms else {
            return false;
        };
        let filters = convert::oom_history_filter(&state.id).to_string();
        let path = format!(
            "/events?since={}&until={}&filters={}",
            convert::unix_seconds_text(started_at_ms - 1_000),
            convert::unix_seconds_text(unix_now_ms()),
            query_value(&filters)
        );
        let Ok(response) = self.client.send(Method::GET, &path, None, &[]).await else {
            return false;
        };
        if response.status() != StatusCode::OK {
            return false;
        }
        let mut lines = LineReader::new(response.into_body());
        while let Ok(Some(line)) = lines.next_line().await {
            if convert::parse_event(&line).is_some_and(|event| {
                event.id == state.id && event.action == runtime::ContainerEventAction::Oom
            }) {
                return true;
            }
        }
        false
    }
}

/// The wall clock, for bounding a query of past events.
#[allow(clippy::disallowed_methods)]
fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// What [`ContainerRuntime::follow_logs`]'s stream carries between polls.
struct LogFollow {
    runtime: DockerRuntime,
    container: String,
    format: log_stream::StreamFormat,
    since_ns: i64,
    body: hyper::body::Incoming,
    decoder: log_stream::LogDecoder,
    tail: log_stream::DeliveredTail,
    ready: std::collections::VecDeque<LogLine>,
    /// The follow ended and the catch-up read was delivered (or failed):
    /// deliver `ready` (then `fault`), then end.
    done: bool,
    /// Why the stream stopped early, yielded after the lines before it.
    fault: Option<RuntimeError>,
}

impl DockerRuntime {
    /// `GET /containers/{id}/logs` from `since_ns` on; the body unread.
    async fn open_logs(
        &self,
        id: &str,
        since_ns: i64,
        follow: bool,
    ) -> Result<hyper::body::Incoming, RuntimeError> {
        let path = container_path(
            id,
            &format!(
                "/logs?follow={}&stdout=1&stderr=1&timestamps=1&since={}",
                u8::from(follow),
                log_stream::since_parameter(since_ns)
            ),
        );
        let response = self.client.send(Method::GET, &path, None, &[]).await?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = read_body(response.into_body()).await.unwrap_or_default();
            return Err(convert::error_for_status(status.as_u16(), &body));
        }
        Ok(response.into_body())
    }

    fn log_stream_cut(&self, id: &str, error: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Unavailable {
            message: format!(
                "the log stream of container {id} from {} was cut ({error}); follow again \
                 from the last timestamp read",
                self.client.endpoint()
            ),
        }
    }
}

impl LogFollow {
    async fn next(mut self) -> Option<(Result<LogLine, RuntimeError>, LogFollow)> {
        use http_body_util::BodyExt as _;
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Some((Ok(line), self));
            }
            if let Some(error) = self.fault.take() {
                return Some((Err(error), self));
            }
            if self.done {
                return None;
            }
            let mut lines = Vec::new();
            let decoded = match self.body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.decoder.push(&data, &mut lines),
                    Err(_) => continue, // trailers: nothing to decode
                },
                Some(Err(error)) => Err(self.runtime.log_stream_cut(&self.container, error)),
                None => match self.decoder.end_follow(&mut lines) {
                    Ok(open_since_ns) => {
                        self.record(&lines);
                        self.ready.extend(lines);
                        let since_ns = self.tail.catch_up_since_ns(open_since_ns, self.since_ns);
                        self.done = true;
                        match self.catch_up(since_ns).await {
                            Ok(missed) => self.ready.extend(missed),
                            Err(error) => self.fault = Some(error),
                        }
                        continue;
                    }
                    Err(error) => Err(error),
                },
            };
            self.record(&lines);
            self.ready.extend(lines);
            if let Err(error) = decoded {
                self.done = true;
                self.fault = Some(error);
            }
        }
    }

    fn record(&mut self, lines: &[LogLine]) {
        for line in lines {
            self.tail.delivered(line, self.decoder.open_since_ns());
        }
    }

    /// Reads the stopped container's log once more (without `follow`) from
    /// `since_ns`: the lines Docker's follow ended without sending.
    async fn catch_up(&mut self, since_ns: i64) -> Result<Vec<LogLine>, RuntimeError> {
        let body = self
            .runtime
            .open_logs(&self.container, since_ns, false)
            .await?;
        let bytes = read_body(body)
            .await
            .map_err(|error| self.runtime.log_stream_cut(&self.container, error))?;
        let mut decoder = log_stream::LogDecoder::new(self.format);
        let mut lines = Vec::new();
        decoder.push(&bytes, &mut lines)?;
        decoder.finish(&mut lines)?;
        Ok(lines
            .into_iter()
            .filter(|line| self.tail.is_new(line))
            .collect())
    }
}

fn container_path(id: &str, suffix: &str) -> String {
    format!("/containers/{}{suffix}", path_segment(id))
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    async fn info(&self) -> Result<RuntimeInfo, RuntimeError> {
        let (status, body) = self.client.call(Method::GET, "/info", None).await?;
        if status != StatusCode::OK {
            return Err(convert::error_for_status(status.as_u16(), &body));
        }
        convert::parse_info(&body, &self.api_version)
    }

    async fn image_present(&self, image: &str) -> Result<bool, RuntimeError> {
        let canonical = runtime::ImageReference::parse(image).canonical();
        let path = format!("/images/{}/json", path_segment(&canonical));
        let (status, body) = self.client.call(Method::GET, &path, None).await?;
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(convert::error_for_status(status.as_u16(), &body)),
        }
    }

    async fn image_digest(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        let reference = runtime::ImageReference::parse(image);
        let path = format!("/images/{}/json", path_segment(&reference.canonical()));
        let (status, body) = self.client.call(Method::GET, &path, None).await?;
        if status != StatusCode::OK {
            return Err(convert::error_for_status(status.as_u16(), &body));
        }
        let repo_digests = convert::parse_repo_digests(&body)?;
        Ok(reference.manifest_digest(&repo_digests))
    }

    async fn pull_image(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        let (from_image, tag) = convert::pull_parameters(image);
        let path = format!(
            "/images/create?fromImage={}&tag={}",
            query_value(&from_image),
            query_value(&tag)
        );
        let mut headers = Vec::new();
        if let Some(auth) = auth {
            let json = convert::registry_auth_json(image, auth).to_string();
            headers.push((
                "X-Registry-Auth",
                base64::engine::general_purpose::URL_SAFE.encode(json),
            ));
        }
        let pull_failed = |message: String| RuntimeError::ImagePull {
            image: image.to_string(),
            message,
        };
        let response = self
            .client
            .send(Method::POST, &path, None, &headers)
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = read_body(response.into_body())
                .await
                .map_err(|error| pull_failed(error.to_string()))?;
            let message = convert::error_message(&body);
            return Err(pull_failed(if message.is_empty() {
                format!("Docker answered HTTP {status} with no message")
            } else {
                message
            }));
        }
        let mut lines = LineReader::new(response.into_body());
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => {
                    if let Some(message) = convert::pull_progress_error(&line) {
                        return Err(pull_failed(message));
                    }
                }
                Ok(None) => return Ok(()),
                Err(error) => {
                    return Err(pull_failed(format!("the pull was interrupted: {error}")))
                }
            }
        }
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        #[derive(Deserialize)]
        struct Created {
            #[serde(rename = "Id")]
            id: String,
        }
        let path = if spec.name.is_empty() {
            "/containers/create".to_string()
        } else {
            format!("/containers/create?name={}", query_value(&spec.name))
        };
        let body = convert::create_container_body(spec);
        let (status, response) = self.client.call(Method::POST, &path, Some(&body)).await?;
        if status != StatusCode::CREATED {
            return Err(convert::error_for_status(status.as_u16(), &response));
        }
        let created: Created =
            serde_json::from_slice(&response).map_err(|error| RuntimeError::Other {
                message: format!("unexpected container create response from Docker: {error}"),
            })?;
        Ok(created.id)
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let path = container_path(id, "/start");
        let (status, body) = self.client.call(Method::POST, &path, None).await?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED => Ok(()),
            _ => Err(convert::error_for_status(status.as_u16(), &body)),
        }
    }

    async fn stop_container(&self, id: &str, timeout_s: u32) -> Result<(), RuntimeError> {
        let path = container_path(id, &format!("/stop?t={timeout_s}"));
        let (status, body) = self.client.call(Method::POST, &path, None).await?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(convert::error_for_status(status.as_u16(), &body)),
        }
    }

    async fn kill_container(&self, id: &str) -> Result<(), RuntimeError> {
        let path = container_path(id, "/kill");
        let (status, body) = self.client.call(Method::POST, &path, None).await?;
        match status {
            // 409: the container is not running.
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND | StatusCode::CONFLICT => Ok(()),
            _ => Err(convert::error_for_status(status.as_u16(), &body)),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let path = container_path(id, "?force=true&v=true");
        let (status, body) = self.client.call(Method::DELETE, &path, None).await?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            StatusCode::CONFLICT
                if convert::error_message(&body).contains("already in progress") =>
            {
                Ok(())
            }
            _ => Err(convert::error_for_status(status.as_u16(), &body)),
        }
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerState>, RuntimeError> {
        let path = container_path(id, "/json");
        let (status, body) = self.client.call(Method::GET, &path, None).await?;
        let mut state = match status {
            StatusCode::OK => convert::parse_inspect(&body)?,
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(convert::error_for_status(status.as_u16(), &body)),
        };
        if convert::may_be_unflagged_oom(&state) {
            state.oom_killed = self.oom_event_recorded(&state).await;
        }
        Ok(Some(state))
    }

    async fn list_containers(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> Result<Vec<ContainerState>, RuntimeError> {
        let filters = convert::label_filter(label_key, label_value).to_string();
        let path = format!(
            "/containers/json?all=true&filters={}",
            query_value(&filters)
        );
        let (status, body) = self.client.call(Method::GET, &path, None).await?;
        if status != StatusCode::OK {
            return Err(convert::error_for_status(status.as_u16(), &body));
        }
        let mut states = Vec::new();
        for id in convert::parse_container_ids(&body)? {
            // A container removed between the list and the inspect is skipped.
            if let Some(state) = self.inspect_container(&id).await? {
                states.push(state);
            }
        }
        Ok(states)
    }

    async fn create_volume(&self, volume: &VolumeSpec) -> Result<(), RuntimeError> {
        let body = convert::create_volume_body(volume);
        let (status, response) = self
            .client
            .call(Method::POST, "/volumes/create", Some(&body))
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(convert::error_for_status(status.as_u16(), &response))
        }
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        let path = format!("/volumes/{}", path_segment(name));
        let (status, body) = self.client.call(Method::DELETE, &path, None).await?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            StatusCode::CONFLICT => Err(RuntimeError::Conflict {
                message: format!(
                    "{}; remove the containers using volume {name} first",
                    convert::error_message(&body)
                ),
            }),
            _ => Err(convert::error_for_status(status.as_u16(), &body)),
        }
    }

    async fn events(
        &self,
        label_key: &str,
        label_value: &str,
    ) -> Result<ContainerEventStream, RuntimeError> {
        let filters = convert::event_filter(label_key, label_value).to_string();
        let path = format!("/events?filters={}", query_value(&filters));
        // Docker sends the response head as soon as the subscription exists,
        // so events after this returns are not missed.
        let response = self.client.send(Method::GET, &path, None, &[]).await?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = read_body(response.into_body()).await.unwrap_or_default();
            return Err(convert::error_for_status(status.as_u16(), &body));
        }
        let lines = LineReader::new(response.into_body());
        let runtime = self.clone();
        let stream = futures::stream::unfold(Some(lines), move |lines| {
            let runtime = runtime.clone();
            async move {
                let mut lines = lines?;
                loop {
                    match lines.next_line().await {
                        Ok(Some(line)) => {
                            if let Some(event) = convert::parse_event(&line) {
                                return Some((Ok(event), Some(lines)));
                            }
                        }
                        Ok(None) => {
                            return Some((Err(runtime.stream_ended("closed by the daemon")), None))
                        }
                        Err(error) => return Some((Err(runtime.stream_ended(error)), None)),
                    }
                }
            }
        });
        Ok(stream.boxed())
    }

    async fn follow_logs(&self, id: &str, since_ns: i64) -> Result<LogLineStream, RuntimeError> {
        let (status, body) = self
            .client
            .call(Method::GET, &container_path(id, "/json"), None)
            .await?;
        if status != StatusCode::OK {
            return Err(convert::error_for_status(status.as_u16(), &body));
        }
        let format = if convert::parse_tty(&body)? {
            log_stream::StreamFormat::Raw
        } else {
            log_stream::StreamFormat::Multiplexed
        };
        let body = self.open_logs(id, since_ns, true).await?;
        let follow = LogFollow {
            runtime: self.clone(),
            container: id.to_string(),
            format,
            since_ns,
            body,
            decoder: log_stream::LogDecoder::new(format),
            tail: log_stream::DeliveredTail::default(),
            ready: std::collections::VecDeque::new(),
            done: false,
            fault: None,
        };
        Ok(futures::stream::unfold(follow, LogFollow::next).boxed())
    }

    async fn container_stats(&self, id: &str) -> Result<Option<ContainerStats>, RuntimeError> {
        let path = container_path(id, convert::STATS_PATH_SUFFIX);
        let (status, body) = self.client.call(Method::GET, &path, None).await?;
        match status {
            StatusCode::OK => convert::parse_stats(&body),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(convert::error_for_status(status.as_u16(), &body)),
        }
    }
}
