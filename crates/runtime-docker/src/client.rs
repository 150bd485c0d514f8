//! A minimal HTTP/1.1 client for the Docker Engine API over a Unix socket
//! (or plain TCP).
//!
//! One connection per request: connecting to a Unix socket costs tens of
//! microseconds, and it keeps long-lived streams (events, pulls) from
//! blocking other calls without a pool.

use std::path::PathBuf;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
use runtime::RuntimeError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

/// Default daemon socket when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Characters escaped in a path segment (keeps `/` and `:` for image names).
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Escapes an id, name or image reference for use in a URL path.
pub fn path_segment(text: &str) -> String {
    utf8_percent_encode(text, PATH_SEGMENT).to_string()
}

/// Escapes a query parameter value.
pub fn query_value(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// Where the daemon listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host:port`, plain HTTP (no TLS).
    Tcp(String),
}

impl Endpoint {
    /// Parses a `DOCKER_HOST` value: `unix:///path` or `tcp://host:port`;
    /// `None` or empty means the default socket.
    pub fn from_docker_host(docker_host: Option<&str>) -> Result<Endpoint, RuntimeError> {
        let Some(value) = docker_host.map(str::trim).filter(|value| !value.is_empty()) else {
            return Ok(Endpoint::Unix(PathBuf::from(DEFAULT_DOCKER_SOCKET)));
        };
        if let Some(path) = value.strip_prefix("unix://") {
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        if let Some(address) = value.strip_prefix("tcp://") {
            return Ok(Endpoint::Tcp(address.trim_end_matches('/').to_string()));
        }
        Err(RuntimeError::Unavailable {
            message: format!(
                "DOCKER_HOST={value} is not supported; use unix:///path/to/docker.sock or \
                 tcp://host:port (without TLS), or unset it for {DEFAULT_DOCKER_SOCKET}"
            ),
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(address) => write!(f, "tcp://{address}"),
        }
    }
}

/// Sends requests to one daemon, prefixing paths with the API version.
#[derive(Clone, Debug)]
pub struct Client {
    endpoint: Endpoint,
    /// `/v1.41`, or empty before negotiation.
    version_prefix: String,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Self {
        Client {
            endpoint,
            version_prefix: String::new(),
        }
    }

    pub fn set_api_version(&mut self, api_version: &str) {
        self.version_prefix = format!("/v{api_version}");
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn unavailable(&self, error: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Unavailable {
            message: format!(
                "cannot talk to the Docker daemon at {}: {error}; is dockerd running? Start it \
                 (e.g. `systemctl start docker`) or point DOCKER_HOST at its socket",
                self.endpoint
            ),
        }
    }

    async fn open(&self) -> Result<http1::SendRequest<Full<Bytes>>, RuntimeError> {
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = UnixStream::connect(path)
                    .await
                    .map_err(|error| self.unavailable(error))?;
                self.handshake(stream).await
            }
            Endpoint::Tcp(address) => {
                let stream = TcpStream::connect(address)
                    .await
                    .map_err(|error| self.unavailable(error))?;
                stream
                    .set_nodelay(true)
                    .map_err(|error| self.unavailable(error))?;
                self.handshake(stream).await
            }
        }
    }

    async fn handshake<S>(&self, stream: S) -> Result<http1::SendRequest<Full<Bytes>>, RuntimeError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| self.unavailable(error))?;
        // The connection task ends when the response body is consumed or
        // dropped and the sender is gone.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends one request; `path` is relative to the API version (e.g.
    /// `/containers/json?all=true`). Returns the response with its body unread.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        extra_headers: &[(&str, String)],
    ) -> Result<Response<Incoming>, RuntimeError> {
        let mut sender = self.open().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.version_prefix))
            .header(header::HOST, "docker");
        for (name, value) in extra_headers {
            request = request.header(*name, value);
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(
                    serde_json::to_vec(json).map_err(|error| RuntimeError::Other {
                        message: format!("cannot encode a Docker request: {error}"),
                    })?,
                )
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|error| RuntimeError::Other {
                message: format!("cannot build a Docker request for {path}: {error}"),
            })?;
        sender
            .send_request(request)
            .await
            .map_err(|error| self.unavailable(error))
    }

    /// Sends one request and reads the whole response body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, Bytes), RuntimeError> {
        let response = self.send(method, path, body, &[]).await?;
        let status = response.status();
        let body = read_body(response.into_body())
            .await
            .map_err(|error| self.unavailable(error))?;
        Ok((status, body))
    }
}

/// Reads a whole response body.
pub async fn read_body(body: Incoming) -> Result<Bytes, hyper::Error> {
    Ok(body.collect().await?.to_bytes())
}

/// Splits a streamed body into newline-terminated lines (Docker's JSON
/// streams write one object per line).
pub struct LineReader {
    body: Incoming,
    buffer: Vec<u8>,
    finished: bool,
}

impl LineReader {
    pub fn new(body: Incoming) -> Self {
        LineReader {
            body,
            buffer: Vec::new(),
            finished: false,
        }
    }

    /// The next non-empty line, `Ok(None)` at the end of the body.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>, hyper::Error> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.finished {
                if self.buffer.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.buffer)));
            }
            match self.body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                None => self.finished = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_values() {
        assert_eq!(
            Endpoint::from_docker_host(None).unwrap(),
            Endpoint::Unix(PathBuf::from("/var/run/docker.sock"))
        );
        assert_eq!(
            Endpoint::from_docker_host(Some("")).unwrap(),
            Endpoint::Unix(PathBuf::from("/var/run/docker.sock"))
        );
        assert_eq!(
            Endpoint::from_docker_host(Some("unix:///run/user/1000/docker.sock")).unwrap(),
            Endpoint::Unix(PathBuf::from("/run/user/1000/docker.sock"))
        );
        assert_eq!(
            Endpoint::from_docker_host(Some("tcp://10.0.0.1:2375/")).unwrap(),
            Endpoint::Tcp("10.0.0.1:2375".into())
        );
        let error = Endpoint::from_docker_host(Some("ssh://me@host")).unwrap_err();
        assert!(error.to_string().contains("unix://"), "{error}");
        assert_eq!(
            Endpoint::Unix(PathBuf::from("/var/run/docker.sock")).to_string(),
            "unix:///var/run/docker.sock"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(path_segment("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(path_segment("a b?c#d"), "a%20b%3Fc%23d");
        assert_eq!(
            query_value("{\"label\":[\"k=v\"]}"),
            "%7B%22label%22%3A%5B%22k%3Dv%22%5D%7D"
        );
    }
}
