//! Keep-alive HTTP/1.1 connections to targets, pooled per worker thread:
//! every connection of a worker, client and upstream, lives on that
//! worker's single-threaded runtime, so checking a connection out and in
//! never contends with another thread.

use std::collections::HashMap;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::TrySendError;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Idle upstream connections kept per target and worker.
const IDLE_CONNECTIONS_PER_TARGET: usize = 256;
/// An idle upstream connection is closed after this long.
pub(crate) const IDLE_TIMEOUT_MS: u64 = 60_000;

/// A request body sent to a target: the client's, streamed, or one held in
/// memory (empty, or small and buffered so the request can be sent again).
pub(crate) enum UpstreamBody {
    Buffered(Option<Bytes>),
    Streaming(Incoming),
}

impl UpstreamBody {
    /// The same body again, when it is held in memory.
    pub(crate) fn replay(&self) -> Option<UpstreamBody> {
        match self {
            UpstreamBody::Buffered(bytes) => Some(UpstreamBody::Buffered(bytes.clone())),
            UpstreamBody::Streaming(_) => None,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Buffered(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            UpstreamBody::Streaming(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Buffered(bytes) => bytes.is_none(),
            UpstreamBody::Streaming(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Buffered(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            UpstreamBody::Streaming(body) => body.size_hint(),
        }
    }
}

/// One keep-alive connection to a target.
pub(crate) struct Upstream {
    sender: SendRequest<UpstreamBody>,
    /// Bytes received on the connection so far.
    bytes_read: Arc<AtomicU64>,
}

impl Upstream {
    /// Waits until the connection can take a request; fails if it closed.
    pub(crate) async fn ready(&mut self) -> hyper::Result<()> {
        self.sender.ready().await
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Bytes received on the connection so far: unchanged since a request
    /// was sent means no byte of its response arrived.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    /// Sends `request`; on an error before the request was written the
    /// error carries it back.
    pub(crate) fn send(
        &mut self,
        request: Request<UpstreamBody>,
    ) -> impl Future<Output = Result<Response<Incoming>, TrySendError<Request<UpstreamBody>>>> {
        self.sender.try_send_request(request)
    }
}

/// A target connection counting the bytes it receives.
struct CountingStream {
    stream: TcpStream,
    bytes_read: Arc<AtomicU64>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        if read > 0 {
            // Only this connection's task writes the counter.
            let total = this.bytes_read.load(Ordering::Relaxed) + read;
            this.bytes_read.store(total, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
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
        if upstream.is_closed() {
            return;
        }
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
    Handshake(hyper::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Io(err) => write!(f, "{err}"),
            ConnectError::TimedOut => write!(f, "connecting timed out"),
            ConnectError::Handshake(err) => write!(f, "HTTP/1.1 handshake failed: {err}"),
        }
    }
}

/// Opens a connection to `addr`; its I/O runs as a task of the current
/// (worker) runtime until the connection closes.
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Upstream, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_elapsed) => return Err(ConnectError::TimedOut),
        Ok(Err(err)) => return Err(ConnectError::Io(err)),
        Ok(Ok(stream)) => stream,
    };
    let _ = stream.set_nodelay(true);
    let bytes_read = Arc::new(AtomicU64::new(0));
    let stream = CountingStream {
        stream,
        bytes_read: Arc::clone(&bytes_read),
    };
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%addr, %err, "upstream connection ended with an error");
        }
    });
    Ok(Upstream { sender, bytes_read })
}

#[cfg(test)]
mod tests {
    use super::*;
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
