//! Keep-alive HTTP/1.1 connections to targets, pooled per worker thread,
//! and the small HTTP/1.1 client that drives them inside the request's own
//! task: the request is written, the response head parsed and its body
//! streamed by whoever polls it (no connection task, no channel). Every
//! connection of a worker, client and upstream, lives on that worker's
//! single-threaded runtime, so checking a connection out and in never
//! contends with another thread.

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode, Version};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::traffic::OpenConnection;

/// Idle upstream connections kept per target and worker.
const IDLE_CONNECTIONS_PER_TARGET: usize = 256;
/// An idle upstream connection is closed after this long.
pub(crate) const IDLE_TIMEOUT_MS: u64 = 60_000;
/// A response head larger than this is a bad answer.
const MAX_RESPONSE_HEAD_BYTES: usize = 64 * 1024;
/// Headers of a response head at most.
const MAX_RESPONSE_HEADERS: usize = 128;
/// A chunk-size line longer than this is a bad answer.
const MAX_CHUNK_LINE_BYTES: usize = 4096;
/// Room kept free in the read buffer before each read.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// A request body sent to a target: the client's, streamed, or one held in
/// memory (empty, or small and buffered so the request can be sent again).
pub(crate) enum UpstreamBody {
    Buffered(Option<Bytes>),
    Streaming(Incoming),
}

/// A request ready to be written: its head (with the buffered body, if any)
/// encoded once, so sending it again copies nothing.
pub(crate) struct Outgoing {
    /// Request line, headers and a buffered body (a `Vec`: making it
    /// `Bytes` would cost an allocation per request).
    pub(crate) bytes: Vec<u8>,
    /// The client's body still to stream, framed by `chunked` or by the
    /// content-length written in the head.
    streaming: Option<Incoming>,
    chunked: bool,
    /// Whether any of the streamed body was taken (then it cannot be sent
    /// again).
    streaming_started: bool,
    /// A HEAD request: its response has no body.
    pub(crate) head_request: bool,
    /// An empty map (with room) the response's headers are parsed into:
    /// the client request's, recycled to spare two allocations.
    pub(crate) response_headers: HeaderMap,
}

impl Outgoing {
    /// `bytes` ends with the empty line after the headers; a buffered body
    /// is appended here.
    pub(crate) fn new(mut head: Vec<u8>, body: UpstreamBody, head_request: bool) -> Outgoing {
        match body {
            UpstreamBody::Buffered(bytes) => {
                if let Some(bytes) = bytes {
                    head.extend_from_slice(&bytes);
                }
                Outgoing {
                    bytes: head,
                    streaming: None,
                    chunked: false,
                    streaming_started: false,
                    head_request,
                    response_headers: HeaderMap::new(),
                }
            }
            UpstreamBody::Streaming(body) => Outgoing {
                bytes: head,
                chunked: body.size_hint().exact().is_none(),
                streaming: Some(body),
                streaming_started: false,
                head_request,
                response_headers: HeaderMap::new(),
            },
        }
    }

    /// Whether the whole request can be sent (again): its body is in
    /// memory, or the client's body was not touched yet.
    pub(crate) fn is_replayable(&self) -> bool {
        !self.streaming_started
    }
}

/// The framing header a request body needs (written after the headers).
pub(crate) fn write_body_framing(
    head: &mut Vec<u8>,
    body: &UpstreamBody,
    method_expects_body: bool,
) {
    match body {
        UpstreamBody::Buffered(Some(bytes)) => {
            head.extend_from_slice(b"content-length: ");
            head.extend_from_slice(itoa(bytes.len() as u64).as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        UpstreamBody::Buffered(None) => {
            if method_expects_body {
                head.extend_from_slice(b"content-length: 0\r\n");
            }
        }
        UpstreamBody::Streaming(body) => match body.size_hint().exact() {
            Some(length) => {
                head.extend_from_slice(b"content-length: ");
                head.extend_from_slice(itoa(length).as_bytes());
                head.extend_from_slice(b"\r\n");
            }
            None => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        },
    }
}

fn itoa(value: u64) -> String {
    value.to_string()
}

/// Why a request got no response head.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Nothing of the request was written: it may go anywhere.
    Unsent(io::Error),
    /// The connection closed or failed before any byte of the response.
    Unanswered(io::Error),
    /// Anything else (a bad answer, a failure after response bytes, the
    /// client's body failing).
    Failed(io::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Unsent(err) => write!(f, "the request could not be written: {err}"),
            SendError::Unanswered(err) => write!(f, "the target closed without answering: {err}"),
            SendError::Failed(err) => write!(f, "{err}"),
        }
    }
}

fn bad_answer(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// One keep-alive connection to a target.
pub(crate) struct Upstream {
    stream: TcpStream,
    /// Bytes received and not consumed yet.
    buffer: BytesMut,
    /// Where each field's name and value lie in the response head being
    /// parsed; kept with the connection so that parsing zeroes nothing and
    /// allocates only for the connection's first response.
    spans: Vec<Span>,
    /// Counted as an open target connection until dropped (the request
    /// path's connections; health checks' are not counted).
    _counted: Option<OpenConnection>,
}

/// A header field's name and value as offsets and lengths in its head.
#[derive(Clone, Copy)]
struct Span {
    name_start: usize,
    name_len: usize,
    value_start: usize,
    value_len: usize,
}

impl Upstream {
    /// Counts this connection among the load balancer's open target
    /// connections while it lives.
    pub(crate) fn count_as(&mut self, open: OpenConnection) {
        self._counted = Some(open);
    }

    /// Whether the target closed the idle connection (or sent something
    /// unasked): costs no system call unless the socket became readable.
    pub(crate) fn is_closed(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => false,
            Poll::Ready(Err(_)) => true,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                !matches!(self.stream.try_read(&mut probe), Err(err) if err.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes `outgoing` and reads the response head. The returned response
    /// carries its body, which owns this connection until it ends.
    pub(crate) async fn send(
        mut self,
        outgoing: &mut Outgoing,
    ) -> Result<Response<UpstreamResponseBody>, SendError> {
        self.write_request(outgoing).await?;
        self.read_response(outgoing).await
    }

    async fn write_request(&mut self, outgoing: &mut Outgoing) -> Result<(), SendError> {
        let mut written = 0;
        while written < outgoing.bytes.len() {
            match self.stream.write(&outgoing.bytes[written..]).await {
                Ok(0) => {
                    let err = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(if written == 0 {
                        SendError::Unsent(err)
                    } else {
                        SendError::Unanswered(err)
                    });
                }
                Ok(n) => written += n,
                Err(err) if written == 0 => return Err(SendError::Unsent(err)),
                Err(err) => return Err(SendError::Unanswered(err)),
            }
        }
        let Some(mut body) = outgoing.streaming.take() else {
            return Ok(());
        };
        outgoing.streaming_started = true;
        let chunked = outgoing.chunked;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| SendError::Failed(io::Error::other(err)))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            let written = if chunked {
                let size = format!("{:x}\r\n", data.len());
                self.write_all(size.as_bytes()).await?;
                self.write_all(&data).await?;
                self.write_all(b"\r\n").await
            } else {
                self.write_all(&data).await
            };
            written?;
        }
        if chunked {
            self.write_all(b"0\r\n\r\n").await?;
        }
        Ok(())
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(SendError::Unanswered)
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the end of the stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buffer.capacity() - self.buffer.len() < READ_CHUNK_BYTES / 4 {
            self.buffer.reserve(READ_CHUNK_BYTES);
        }
        self.stream.read_buf(&mut self.buffer).await
    }

    async fn read_response(
        mut self,
        outgoing: &mut Outgoing,
    ) -> Result<Response<UpstreamResponseBody>, SendError> {
        let mut received_any = !self.buffer.is_empty();
        loop {
            if !self.buffer.is_empty() {
                if let Some(head) = self.parse_head(outgoing)? {
                    let mut body = UpstreamResponseBody {
                        upstream: Some(self),
                        framing: head.framing,
                        keep_alive: head.keep_alive,
                        complete: None,
                    };
                    body.take_whole_body();
                    let mut response = Response::new(body);
                    *response.status_mut() = head.status;
                    *response.version_mut() = head.version;
                    *response.headers_mut() = head.headers;
                    return Ok(response);
                }
                if self.buffer.len() > MAX_RESPONSE_HEAD_BYTES {
                    return Err(SendError::Failed(bad_answer("response head too large")));
                }
            }
            match self.fill().await {
                Ok(0) if !received_any => {
                    return Err(SendError::Unanswered(io::ErrorKind::UnexpectedEof.into()))
                }
                Ok(0) => return Err(SendError::Failed(bad_answer("response head cut short"))),
                Ok(_) => received_any = true,
                Err(err) if !received_any => return Err(SendError::Unanswered(err)),
                Err(err) => return Err(SendError::Failed(err)),
            }
        }
    }

    /// The response when its head is complete in the buffer (interim 1xx
    /// responses are skipped).
    fn parse_head(&mut self, outgoing: &mut Outgoing) -> Result<Option<Head>, SendError> {
        let head_request = outgoing.head_request;
        // Left uninitialised: httparse writes only the fields it parses.
        // Zeroing all 128 (4 KB, and as much again for the spans) on every
        // response showed in the proxy's profile.
        let mut headers =
            [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let length = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut parsed,
            &self.buffer,
            &mut headers,
        ) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(err) => return Err(SendError::Failed(bad_answer(&err.to_string()))),
        };
        let code = parsed.code.unwrap_or(0);
        let status = StatusCode::from_u16(code)
            .map_err(|_| SendError::Failed(bad_answer("invalid status code")))?;
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            self.buffer.advance(length);
            return Ok(None);
        }
        let version = if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // Where names and values lie within the head, to share its bytes.
        let base = self.buffer.as_ptr() as usize;
        let spans = &mut self.spans;
        spans.clear();
        let mut keep_alive = version == Version::HTTP_11;
        let mut content_length: Option<u64> = None;
        let mut transfer_encoding: Option<bool> = None;
        for field in parsed.headers.iter() {
            let name = field.name.as_bytes();
            if name.eq_ignore_ascii_case(b"connection") {
                for token in field.value.split(|b| *b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = keep_alive || version == Version::HTTP_10;
                    }
                }
            } else if name.eq_ignore_ascii_case(b"content-length") {
                let value = std::str::from_utf8(field.value)
                    .ok()
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .ok_or_else(|| SendError::Failed(bad_answer("invalid content-length")))?;
                if content_length.is_some_and(|previous| previous != value) {
                    return Err(SendError::Failed(bad_answer("conflicting content-length")));
                }
                content_length = Some(value);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                let last = field
                    .value
                    .rsplit(|b| *b == b',')
                    .next()
                    .unwrap_or_default()
                    .trim_ascii();
                transfer_encoding = Some(last.eq_ignore_ascii_case(b"chunked"));
            }
            spans.push(Span {
                name_start: name.as_ptr() as usize - base,
                name_len: name.len(),
                value_start: field.value.as_ptr() as usize - base,
                value_len: field.value.len(),
            });
        }
        let head = self.buffer.split_to(length).freeze();
        let mut header_map = std::mem::take(&mut outgoing.response_headers);
        if !header_map.is_empty() {
            header_map.clear();
        }
        header_map.reserve(self.spans.len());
        for span in &self.spans {
            let name = HeaderName::from_bytes(&head[span.name_start..][..span.name_len])
                .map_err(|_| SendError::Failed(bad_answer("invalid header name")))?;
            let value = HeaderValue::from_maybe_shared(
                head.slice(span.value_start..span.value_start + span.value_len),
            )
            .map_err(|_| SendError::Failed(bad_answer("invalid header value")))?;
            header_map.append(name, value);
        }

        let no_body = head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let framing = if no_body {
            Framing::Length(0)
        } else if let Some(chunked) = transfer_encoding {
            if chunked {
                Framing::Chunked(Chunked::Size)
            } else {
                keep_alive = false;
                Framing::UntilClose
            }
        } else if let Some(length) = content_length {
            Framing::Length(length)
        } else {
            keep_alive = false;
            Framing::UntilClose
        };
        if status == StatusCode::SWITCHING_PROTOCOLS {
            keep_alive = false;
        }
        Ok(Some(Head {
            status,
            version,
            headers: header_map,
            framing,
            keep_alive,
        }))
    }
}

/// A parsed response head.
struct Head {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

/// How a response body ends.
enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunked),
    /// At the end of the connection (which is not kept then).
    UntilClose,
}

enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Reading the trailer section up to its empty line.
    Trailers,
    Done,
}

/// A target's response body, read from its connection as it is polled; the
/// connection is handed back by [`take_reusable`](Self::take_reusable) once
/// the body ended on a connection that may be kept.
pub(crate) struct UpstreamResponseBody {
    /// `None` once handed back or dropped.
    upstream: Option<Upstream>,
    framing: Framing,
    keep_alive: bool,
    /// The whole body, when it arrived with the head.
    complete: Option<Bytes>,
}

impl UpstreamResponseBody {
    /// When a content-length body is already in the buffer, takes it so the
    /// connection is free at once.
    fn take_whole_body(&mut self) {
        let (Framing::Length(length), Some(upstream)) = (&mut self.framing, &mut self.upstream)
        else {
            return;
        };
        if *length == 0 {
            return;
        }
        let Ok(wanted) = usize::try_from(*length) else {
            return;
        };
        if upstream.buffer.len() < wanted {
            return;
        }
        self.complete = Some(upstream.buffer.split_to(wanted).freeze());
        *length = 0;
    }

    /// Whether no more bytes are to be read from the connection.
    pub(crate) fn is_read(&self) -> bool {
        matches!(
            self.framing,
            Framing::Length(0) | Framing::Chunked(Chunked::Done)
        )
    }

    /// The connection is closed after this response, whatever the target
    /// said.
    pub(crate) fn forbid_reuse(&mut self) {
        self.keep_alive = false;
    }

    /// The connection, once the body was read to its end, when it may be
    /// used for another request.
    pub(crate) fn take_reusable(&mut self) -> Option<Upstream> {
        if !self.is_read() || !self.keep_alive {
            return None;
        }
        let upstream = self.upstream.take()?;
        // Bytes beyond the response: the connection is out of step.
        upstream.buffer.is_empty().then_some(upstream)
    }

    fn poll_chunked(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            let Some(upstream) = self.upstream.as_mut() else {
                return Poll::Ready(Some(Err(io::ErrorKind::NotConnected.into())));
            };
            let Framing::Chunked(state) = &mut self.framing else {
                return Poll::Ready(None);
            };
            let buffer = &mut upstream.buffer;
            match state {
                Chunked::Done => return Poll::Ready(None),
                Chunked::Size | Chunked::Trailers => {
                    if let Some(end) = buffer.windows(2).position(|w| w == b"\r\n") {
                        let line = buffer.split_to(end + 2);
                        let line = &line[..end];
                        if matches!(state, Chunked::Trailers) {
                            if line.is_empty() {
                                *state = Chunked::Done;
                                return Poll::Ready(None);
                            }
                            continue;
                        }
                        let digits = line
                            .split(|b| *b == b';')
                            .next()
                            .unwrap_or_default()
                            .trim_ascii();
                        let size = std::str::from_utf8(digits)
                            .ok()
                            .and_then(|digits| u64::from_str_radix(digits, 16).ok())
                            .ok_or_else(|| bad_answer("invalid chunk size"));
                        *state = match size {
                            Ok(0) => Chunked::Trailers,
                            Ok(size) => Chunked::Data(size),
                            Err(err) => return Poll::Ready(Some(Err(err))),
                        };
                        continue;
                    }
                    if buffer.len() > MAX_CHUNK_LINE_BYTES {
                        return Poll::Ready(Some(Err(bad_answer("chunk line too long"))));
                    }
                }
                Chunked::Data(left) => {
                    if !buffer.is_empty() {
                        let take = (*left).min(buffer.len() as u64) as usize;
                        let data = buffer.split_to(take).freeze();
                        *left -= take as u64;
                        if *left == 0 {
                            *state = Chunked::DataEnd;
                        }
                        return Poll::Ready(Some(Ok(data)));
                    }
                }
                Chunked::DataEnd => {
                    if buffer.len() >= 2 {
                        if &buffer[..2] != b"\r\n" {
                            return Poll::Ready(Some(Err(bad_answer("chunk not ended by CRLF"))));
                        }
                        buffer.advance(2);
                        *state = Chunked::Size;
                        continue;
                    }
                }
            }
            match std::task::ready!(poll_fill(upstream, cx)) {
                Ok(0) => {
                    return Poll::Ready(Some(Err(io::ErrorKind::UnexpectedEof.into())));
                }
                Ok(_) => {}
                Err(err) => return Poll::Ready(Some(Err(err))),
            }
        }
    }
}

fn poll_fill(upstream: &mut Upstream, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    let fill = pin!(upstream.fill());
    fill.poll(cx)
}

use std::future::Future as _;

impl Body for UpstreamResponseBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if let Some(bytes) = this.complete.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        let polled = match &mut this.framing {
            Framing::Length(0) => return Poll::Ready(None),
            Framing::Length(left) => {
                let Some(upstream) = this.upstream.as_mut() else {
                    return Poll::Ready(Some(Err(io::ErrorKind::NotConnected.into())));
                };
                if upstream.buffer.is_empty() {
                    match std::task::ready!(poll_fill(upstream, cx)) {
                        Ok(0) => {
                            return Poll::Ready(Some(Err(io::ErrorKind::UnexpectedEof.into())))
                        }
                        Ok(_) => {}
                        Err(err) => return Poll::Ready(Some(Err(err))),
                    }
                }
                let take = (*left).min(upstream.buffer.len() as u64) as usize;
                *left -= take as u64;
                Poll::Ready(Some(Ok(upstream.buffer.split_to(take).freeze())))
            }
            Framing::Chunked(_) => this.poll_chunked(cx),
            Framing::UntilClose => {
                let Some(upstream) = this.upstream.as_mut() else {
                    return Poll::Ready(None);
                };
                if upstream.buffer.is_empty() {
                    match std::task::ready!(poll_fill(upstream, cx)) {
                        Ok(0) => {
                            this.upstream = None;
                            return Poll::Ready(None);
                        }
                        Ok(_) => {}
                        Err(err) => return Poll::Ready(Some(Err(err))),
                    }
                }
                let data = upstream.buffer.split().freeze();
                Poll::Ready(Some(Ok(data)))
            }
        };
        if let Poll::Ready(Some(Err(_))) = &polled {
            // The connection is in an unknown state: close it.
            this.upstream = None;
        }
        polled.map(|frame| frame.map(|data| data.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.complete.is_none() && self.is_read()
    }

    fn size_hint(&self) -> SizeHint {
        let complete = self.complete.as_ref().map_or(0, |bytes| bytes.len() as u64);
        match self.framing {
            Framing::Length(left) => SizeHint::with_exact(left + complete),
            Framing::Chunked(Chunked::Done) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

struct Idle {
    upstream: Upstream,
    idle_since_ms: u64,
}

/// One worker's idle upstream connections by target address.
#[derive(Default)]
pub(crate) struct UpstreamPool {
    idle: HashMap<SocketAddr, Vec<Idle>>,
}

impl UpstreamPool {
    /// The most recently used idle connection to `addr` that is still open.
    pub(crate) fn checkout(&mut self, addr: SocketAddr, now_ms: u64) -> Option<Upstream> {
        let idle = self.idle.get_mut(&addr)?;
        while let Some(candidate) = idle.pop() {
            let fresh = now_ms.saturating_sub(candidate.idle_since_ms) < IDLE_TIMEOUT_MS;
            if fresh && !candidate.upstream.is_closed() {
                return Some(candidate.upstream);
            }
        }
        None
    }

    /// Keeps a connection whose last response ended.
    pub(crate) fn checkin(&mut self, addr: SocketAddr, upstream: Upstream, now_ms: u64) {
        let idle = self.idle.entry(addr).or_default();
        if idle.len() < IDLE_CONNECTIONS_PER_TARGET {
            idle.push(Idle {
                upstream,
                idle_since_ms: now_ms,
            });
        }
    }

    /// Closes connections idle for too long or closed by the target.
    pub(crate) fn sweep(&mut self, now_ms: u64) {
        self.idle.retain(|_, idle| {
            idle.retain(|candidate| {
                now_ms.saturating_sub(candidate.idle_since_ms) < IDLE_TIMEOUT_MS
                    && !candidate.upstream.is_closed()
            });
            !idle.is_empty()
        });
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }
}

/// Why no connection to a target could be opened.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Io(std::io::Error),
    TimedOut,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Io(err) => write!(f, "{err}"),
            ConnectError::TimedOut => write!(f, "connecting timed out"),
        }
    }
}

/// Opens a connection to `addr`.
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Upstream, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_elapsed) => return Err(ConnectError::TimedOut),
        Ok(Err(err)) => return Err(ConnectError::Io(err)),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    Ok(Upstream {
        stream,
        buffer: BytesMut::new(),
        spans: Vec::new(),
        _counted: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;
    use tokio::net::TcpListener;

    /// A target that accepts connections and closes each after `keep_ms`.
    async fn target(keep_ms: u64) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(keep_ms)).await;
                    drop(stream);
                });
            }
        });
        addr
    }

    /// A target that reads one request head and answers `answer` bytes.
    async fn answering(answer: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    // Dribble the answer to exercise partial reads.
                    for piece in answer.chunks(7) {
                        let _ = stream.write_all(piece).await;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    // A `connection: close` answer ends with the connection;
                    // any other stays open until the client closes.
                    if !answer.windows(17).any(|w| w == b"connection: close") {
                        let _ = stream.read(&mut buffer).await;
                    }
                });
            }
        });
        addr
    }

    /// A bodiless GET (or HEAD, as far as the response's framing goes).
    fn get(head_request: bool) -> Outgoing {
        Outgoing::new(
            b"GET / HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            UpstreamBody::Buffered(None),
            head_request,
        )
    }

    async fn exchange(
        answer: &'static [u8],
        head_request: bool,
    ) -> (StatusCode, HeaderMap, Bytes, bool) {
        let addr = answering(answer).await;
        let upstream = connect(addr, Duration::from_secs(1)).await.unwrap();
        let mut outgoing = get(head_request);
        let response = upstream.send(&mut outgoing).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = response.into_body();
        let mut collected = BytesMut::new();
        while let Some(frame) = body.frame().await {
            collected.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        let reusable = body.take_reusable().is_some();
        (status, headers, collected.freeze(), reusable)
    }

    #[tokio::test]
    async fn reads_content_length_chunked_and_until_close_bodies() {
        let (status, headers, body, reusable) = exchange(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nx-a: 1\r\ncontent-length: 5\r\n\r\nhello",
            false,
        )
        .await;
        assert_eq!(
            (status, &body[..], reusable),
            (StatusCode::CREATED, &b"hello"[..], true)
        );
        assert_eq!(headers["x-a"], "1");

        let (status, _, body, reusable) = exchange(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n7\r\n, world\r\n0\r\nx-t: 1\r\n\r\n",
            false,
        )
        .await;
        assert_eq!(
            (status, &body[..], reusable),
            (StatusCode::OK, &b"hello, world"[..], true)
        );

        let (_, _, body, reusable) = exchange(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil close",
            false,
        )
        .await;
        assert_eq!((&body[..], reusable), (&b"until close"[..], false));

        let (_, _, body, reusable) =
            exchange(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", false).await;
        assert_eq!((&body[..], reusable), (&b"ok"[..], false));

        let (_, headers, body, reusable) =
            exchange(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", true).await;
        assert_eq!((&body[..], reusable), (&b""[..], true));
        assert_eq!(headers[header::CONTENT_LENGTH], "9");
    }

    /// A target that answers the requests on one connection with `answers`
    /// in turn.
    async fn answering_in_turn(answers: &'static [&'static [u8]]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buffer = [0u8; 4096];
            for answer in answers {
                let end = loop {
                    if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end + 4;
                    }
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => received.extend_from_slice(&buffer[..n]),
                    }
                };
                received.drain(..end);
                stream.write_all(answer).await.unwrap();
            }
            let _ = stream.read(&mut buffer).await;
        });
        addr
    }

    async fn send_on(upstream: Upstream) -> (HeaderMap, Upstream) {
        let mut outgoing = get(false);
        let response = upstream.send(&mut outgoing).await.unwrap();
        let headers = response.headers().clone();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.unwrap();
        }
        (headers, body.take_reusable().unwrap())
    }

    #[tokio::test]
    async fn each_response_on_a_kept_connection_has_its_own_headers() {
        let addr = answering_in_turn(&[
            b"HTTP/1.1 200 OK\r\nx-a: 1\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\ncontent-length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let upstream = connect(addr, Duration::from_secs(1)).await.unwrap();
        let (first, upstream) = send_on(upstream).await;
        assert_eq!(first.len(), 4);
        assert_eq!(first["x-a"], "1");
        let cookies: Vec<_> = first.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        let (second, _) = send_on(upstream).await;
        assert_eq!(second.len(), 1);
        assert_eq!(second[header::CONTENT_LENGTH], "0");
    }

    #[tokio::test]
    async fn a_response_with_too_many_headers_is_a_bad_answer() {
        let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_RESPONSE_HEADERS {
            answer.extend_from_slice(format!("x-{i}: {i}\r\n").as_bytes());
        }
        answer.extend_from_slice(b"content-length: 0\r\n\r\n");
        let answer: &'static [u8] = answer.leak();
        let addr = answering(answer).await;
        let upstream = connect(addr, Duration::from_secs(1)).await.unwrap();
        let mut outgoing = get(false);
        let result = upstream.send(&mut outgoing).await;
        assert!(
            matches!(&result, Err(SendError::Failed(err)) if err.to_string().contains("too many headers")),
            "{:?}",
            result.map(|response| response.status())
        );
    }

    #[tokio::test]
    async fn a_connection_closed_unanswered_is_told_apart() {
        let addr = target(0).await;
        let upstream = connect(addr, Duration::from_secs(1)).await.unwrap();
        let mut outgoing = get(false);
        let result = upstream.send(&mut outgoing).await;
        assert!(
            matches!(result, Err(SendError::Unanswered(_) | SendError::Unsent(_))),
            "{:?}",
            result.map(|response| response.status())
        );
        assert!(outgoing.is_replayable());
    }

    #[tokio::test]
    async fn the_pool_hands_out_open_connections_newest_first() {
        let addr = target(60_000).await;
        let mut pool = UpstreamPool::default();
        assert!(pool.checkout(addr, 0).is_none());
        for now_ms in [0, 10] {
            let upstream = connect(addr, Duration::from_secs(1)).await.unwrap();
            pool.checkin(addr, upstream, now_ms);
        }
        assert_eq!(pool.idle_count(), 2);
        // Expired connections are dropped on the way.
        assert!(pool.checkout(addr, IDLE_TIMEOUT_MS + 5).is_some());
        assert_eq!(pool.idle_count(), 1);
        assert!(pool.checkout(addr, IDLE_TIMEOUT_MS + 5).is_none());
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn closed_connections_are_not_handed_out() {
        let addr = target(0).await;
        let mut pool = UpstreamPool::default();
        let upstream = connect(addr, Duration::from_secs(1)).await.unwrap();
        pool.checkin(addr, upstream, 0);
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            pool.sweep(1);
            if pool.idle_count() == 0 {
                break;
            }
        }
        assert_eq!(pool.idle_count(), 0);
        assert!(pool.checkout(addr, 1).is_none());
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_fails() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let result = connect(addr, Duration::from_secs(1)).await;
        assert!(matches!(result, Err(ConnectError::Io(_))));
    }
}
