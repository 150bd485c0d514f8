//! The agent's HTTP client to the control plane: SigV4-signed ECS JSON
//! calls, and the long-lived session stream of [`AgentMessage`]s. One
//! keep-alive connection pool; plain HTTP (the control plane listens on
//! HTTP).

use aws_protocol::sigv4::{self, SigningParams};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use model::agent::{AgentMessage, SessionRequest, SESSION_PATH};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{AgentError, Credentials};

/// The longest session line accepted (a full desired-state message).
pub const MAX_SESSION_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Where the control plane is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://host:port`, without a trailing slash.
    pub base_url: String,
    /// `host:port` (the `Host` header).
    pub authority: String,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses `http://host[:port][/]`.
    pub fn parse(url: &str) -> Result<Endpoint, AgentError> {
        let invalid = |why: &str| AgentError::Config {
            message: format!(
                "endpoint {url:?} {why}: give the control plane's URL, e.g. http://127.0.0.1:4566"
            ),
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid("is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(invalid("uses https, which the agent does not speak yet")),
            _ => return Err(invalid("has no http:// scheme")),
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(invalid("has a path"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        Ok(Endpoint {
            base_url: format!("http://{authority}"),
            authority: authority.to_string(),
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        })
    }

    /// The control plane runs on this machine.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// Splits a byte stream into lines (`\n`, an optional `\r` dropped).
#[derive(Debug, Default)]
pub struct LineBuffer {
    buffer: Vec<u8>,
}

impl LineBuffer {
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() > MAX_SESSION_LINE_BYTES && !self.buffer.contains(&b'\n') {
            return Err(format!(
                "a session line is longer than {MAX_SESSION_LINE_BYTES} bytes"
            ));
        }
        Ok(())
    }

    /// The next complete line, if any.
    pub fn next_line(&mut self) -> Option<Vec<u8>> {
        let end = self.buffer.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if self.buffer.is_empty() {
            // Give back memory held by a large message.
            self.buffer = Vec::new();
        }
        Some(line)
    }
}

/// Decodes one session line: `None` for a blank line (skipped), otherwise
/// the message or why it is not one.
pub fn decode_session_line(line: &[u8]) -> Option<Result<AgentMessage, String>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(serde_json::from_slice(line).map_err(|e| format!("bad message: {e}")))
}

/// The open session: [`AgentMessage`]s as the control plane sends them.
pub struct SessionStream {
    body: Incoming,
    lines: LineBuffer,
}

impl SessionStream {
    /// The next message; `Ok(None)` when the control plane closed the stream.
    pub async fn next_message(&mut self) -> Result<Option<AgentMessage>, AgentError> {
        let protocol = |message: String| AgentError::Protocol {
            operation: "the agent session".to_string(),
            message,
        };
        loop {
            while let Some(line) = self.lines.next_line() {
                if let Some(message) = decode_session_line(&line) {
                    return message.map(Some).map_err(protocol);
                }
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(protocol(format!("the stream broke: {e}"))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.lines.push(&data).map_err(protocol)?;
                    }
                }
            }
        }
    }
}

/// The signed client.
#[derive(Clone)]
pub struct EcsClient {
    http: Client<HttpConnector, Full<Bytes>>,
    endpoint: Endpoint,
    credentials: Credentials,
    region: String,
}

impl EcsClient {
    pub fn new(endpoint: Endpoint, credentials: Credentials, region: String) -> EcsClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(4)
            .build(connector);
        EcsClient {
            http,
            endpoint,
            credentials,
            region,
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn transport(&self, message: impl std::fmt::Display) -> AgentError {
        AgentError::Transport {
            endpoint: self.endpoint.base_url.clone(),
            message: message.to_string(),
        }
    }

    async fn send(
        &self,
        path: &str,
        content_type: &'static str,
        target: Option<String>,
        body: Vec<u8>,
    ) -> Result<Response<Incoming>, AgentError> {
        self.send_signed(
            path,
            content_type,
            target,
            body,
            ecs_wire::SIGNING_NAME,
            &self.region,
        )
        .await
    }

    /// Sends a request signed for `service` in `region`.
    async fn send_signed(
        &self,
        path: &str,
        content_type: &'static str,
        target: Option<String>,
        body: Vec<u8>,
        service: &str,
        region: &str,
    ) -> Result<Response<Incoming>, AgentError> {
        let mut headers = HeaderMap::new();
        let host =
            HeaderValue::from_str(&self.endpoint.authority).map_err(|e| self.transport(e))?;
        headers.insert(HOST, host);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(target) = target {
            let target = HeaderValue::from_str(&target).map_err(|e| self.transport(e))?;
            headers.insert("x-amz-target", target);
        }
        sigv4::sign_headers(
            "POST",
            path,
            "",
            &mut headers,
            &body,
            &SigningParams {
                access_key_id: &self.credentials.access_key_id,
                secret_access_key: &self.credentials.secret_access_key,
                session_token: self.credentials.session_token.as_deref(),
                region,
                service,
                // Always the system clock: the control plane checks the signing
                // time against its own.
                now_epoch_s: crate::clock::system_now_ms().div_euclid(1000),
            },
        )
        .map_err(|e| AgentError::Config {
            message: e.to_string(),
        })?;
        let mut request = Request::post(format!("{}{path}", self.endpoint.base_url))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| self.transport(e))?;
        *request.headers_mut() = headers;
        self.http
            .request(request)
            .await
            .map_err(|e| self.transport(e))
    }

    async fn error_from(&self, operation: &str, response: Response<Incoming>) -> AgentError {
        let status = response.status();
        let body = match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return self.transport(e),
        };
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let code = json
            .get("__type")
            .and_then(|t| t.as_str())
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        let message = json
            .get("message")
            .or_else(|| json.get("Message"))
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        AgentError::Api {
            operation: operation.to_string(),
            status: status.as_u16(),
            code,
            message,
        }
    }

    /// Calls an ECS operation with a JSON body; returns the response body.
    pub async fn call_json(&self, operation: &str, body: Vec<u8>) -> Result<Bytes, AgentError> {
        self.call_json_to(
            ecs_wire::TARGET_PREFIX,
            ecs_wire::SIGNING_NAME,
            &self.region,
            operation,
            body,
        )
        .await
    }

    /// Calls an ECR operation (`AmazonEC2ContainerRegistry_V20150921.*`),
    /// signed for service `ecr` in the agent's region.
    pub async fn call_ecr(&self, operation: &str, body: Vec<u8>) -> Result<Bytes, AgentError> {
        self.call_json_to(
            crate::registry_login::ECR_TARGET_PREFIX,
            crate::registry_login::ECR_SIGNING_NAME,
            &self.region,
            operation,
            body,
        )
        .await
    }

    /// Calls `<target_prefix>.<operation>` with a JSON body, signed for
    /// `service` in `region`; returns the response body.
    async fn call_json_to(
        &self,
        target_prefix: &str,
        service: &str,
        region: &str,
        operation: &str,
        body: Vec<u8>,
    ) -> Result<Bytes, AgentError> {
        let response = self
            .send_signed(
                "/",
                aws_protocol::json::CONTENT_TYPE,
                Some(format!("{target_prefix}.{operation}")),
                body,
                service,
                region,
            )
            .await?;
        if response.status() != StatusCode::OK {
            return Err(self.error_from(operation, response).await);
        }
        Ok(response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.transport(e))?
            .to_bytes())
    }

    /// Calls a CloudWatch Logs operation (`Logs_20140328.*`, or Berth's
    /// `BerthAgentLogs_20261207.*` when `target_prefix` says so), signed for
    /// service `logs` in `region` (the log group's, `awslogs-region`).
    pub async fn call_logs<Q: Serialize, A: DeserializeOwned>(
        &self,
        target_prefix: &str,
        region: &str,
        operation: &str,
        request: &Q,
    ) -> Result<A, AgentError> {
        let protocol = |message: String| AgentError::Protocol {
            operation: operation.to_string(),
            message,
        };
        let body = serde_json::to_vec(request).map_err(|e| protocol(e.to_string()))?;
        let answer = self
            .call_json_to(
                target_prefix,
                model::agent_logs::SIGNING_NAME,
                region,
                operation,
                body,
            )
            .await?;
        // CreateLogGroup and CreateLogStream answer with an empty body.
        let answer: &[u8] = if answer.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &answer
        };
        serde_json::from_slice(answer).map_err(|e| protocol(e.to_string()))
    }

    /// Calls a Berth agent-metrics operation
    /// (`BerthAgentMetrics_20261207.*`, see [`model::agent_metrics`]),
    /// signed for service `monitoring` in the agent's region.
    pub async fn call_agent_metrics<Q: Serialize, A: DeserializeOwned>(
        &self,
        operation: &str,
        request: &Q,
    ) -> Result<A, AgentError> {
        let protocol = |message: String| AgentError::Protocol {
            operation: operation.to_string(),
            message,
        };
        let body = serde_json::to_vec(request).map_err(|e| protocol(e.to_string()))?;
        let answer = self
            .call_json_to(
                model::agent_metrics::TARGET_PREFIX,
                model::agent_metrics::SIGNING_NAME,
                &self.region,
                operation,
                body,
            )
            .await?;
        let answer: &[u8] = if answer.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &answer
        };
        serde_json::from_slice(answer).map_err(|e| protocol(e.to_string()))
    }

    /// Calls an ECS operation with typed request and response shapes.
    pub async fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        operation: &str,
        request: &Q,
    ) -> Result<A, AgentError> {
        let body = serde_json::to_vec(request).map_err(|e| AgentError::Protocol {
            operation: operation.to_string(),
            message: e.to_string(),
        })?;
        let answer = self.call_json(operation, body).await?;
        serde_json::from_slice(&answer).map_err(|e| AgentError::Protocol {
            operation: operation.to_string(),
            message: e.to_string(),
        })
    }

    /// Opens the session stream.
    pub async fn open_session(
        &self,
        request: &SessionRequest,
    ) -> Result<SessionStream, AgentError> {
        let body = serde_json::to_vec(request).map_err(|e| AgentError::Protocol {
            operation: "the agent session".to_string(),
            message: e.to_string(),
        })?;
        let response = self
            .send(SESSION_PATH, "application/json", None, body)
            .await?;
        if response.status() != StatusCode::OK {
            return Err(self.error_from("the agent session", response).await);
        }
        Ok(SessionStream {
            body: response.into_body(),
            lines: LineBuffer::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let local = Endpoint::parse("http://127.0.0.1:4566").unwrap();
        assert_eq!(local.base_url, "http://127.0.0.1:4566");
        assert_eq!((local.host.as_str(), local.port), ("127.0.0.1", 4566));
        assert!(local.is_loopback());
        let remote = Endpoint::parse("http://berth.example:8080/").unwrap();
        assert!(!remote.is_loopback());
        assert_eq!(Endpoint::parse("http://[::1]:9").unwrap().host, "::1");
        assert_eq!(Endpoint::parse("http://localhost").unwrap().port, 80);
        for bad in ["https://x", "x:1", "http://x/api", "::"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_split_across_chunks() {
        let mut lines = LineBuffer::default();
        lines.push(b"{\"a\":1}\r\n{\"b\"").unwrap();
        assert_eq!(lines.next_line().unwrap(), b"{\"a\":1}");
        assert_eq!(lines.next_line(), None);
        lines.push(b":2}\n\n").unwrap();
        assert_eq!(lines.next_line().unwrap(), b"{\"b\":2}");
        assert_eq!(lines.next_line().unwrap(), b"");
        assert_eq!(lines.next_line(), None);
    }

    #[test]
    fn session_lines_decode_to_messages() {
        assert_eq!(decode_session_line(b" \t"), None);
        assert_eq!(
            decode_session_line(b"{\"type\":\"heartbeat\",\"atMs\":5}"),
            Some(Ok(AgentMessage::Heartbeat { at_ms: 5 }))
        );
        let error = decode_session_line(b"{\"type\":\"gossip\"}")
            .unwrap()
            .unwrap_err();
        assert!(
            error.starts_with("bad message: unknown variant `gossip`"),
            "{error}"
        );
    }
}
