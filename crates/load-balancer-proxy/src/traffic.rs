//! The load balancer's own traffic counts, per worker: what CloudWatch's
//! `AWS/ApplicationELB` metrics need at the load balancer level (target
//! groups count in their shards, see `load_balancer::TargetGroupState`).
//!
//! Each worker writes only its own [`WorkerTraffic`], alone on its cache
//! lines; a counter is a relaxed load and store (no read-modify-write, no
//! lock), which is exact as long as one thread writes it: everything a
//! worker counts happens on its own thread. Counters only grow; the report
//! sums the workers' totals and subtracts the previous report's.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use load_balancer::LoadBalancerTraffic;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a worker counts.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub(crate) enum Count {
    Requests,
    ClientConnectionsOpened,
    ClientConnectionsClosed,
    TargetConnectionsOpened,
    TargetConnectionsClosed,
    ProcessedBytes,
    Elb3xx,
    Elb4xx,
    Elb5xx,
    Elb500,
    Elb502,
    Elb503,
    Elb504,
    Elb460,
    FixedResponses,
    Redirects,
    RejectedConnections,
}

const COUNTS: usize = Count::RejectedConnections as usize + 1;

/// Totals of every [`Count`].
type Totals = [u64; COUNTS];

/// One worker's counters.
#[repr(align(128))]
pub(crate) struct WorkerTraffic {
    /// Whether requests and bytes are counted (connections always are, so
    /// that the gauges stay right across a switch).
    enabled: AtomicBool,
    counters: [AtomicU64; COUNTS],
}

impl Default for WorkerTraffic {
    fn default() -> Self {
        WorkerTraffic {
            enabled: AtomicBool::new(true),
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl WorkerTraffic {
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Adds `amount` to `count`. Only the worker's own thread calls this:
    /// a load and a store instead of an atomic read-modify-write.
    #[inline]
    pub(crate) fn add(&self, count: Count, amount: u64) {
        let counter = &self.counters[count as usize];
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(amount),
            Ordering::Relaxed,
        );
    }

    /// Counts a response the request path produced: every request, and
    /// those the load balancer answered itself by status code.
    pub(crate) fn count_answer(&self, status_code: u16, own_answer: Option<OwnAnswer>) {
        self.add(Count::Requests, 1);
        let Some(own_answer) = own_answer else {
            return;
        };
        match own_answer {
            OwnAnswer::FixedResponse => self.add(Count::FixedResponses, 1),
            OwnAnswer::Redirect => self.add(Count::Redirects, 1),
            OwnAnswer::Error => {}
        }
        match status_code / 100 {
            3 => self.add(Count::Elb3xx, 1),
            4 => self.add(Count::Elb4xx, 1),
            5 => self.add(Count::Elb5xx, 1),
            _ => {}
        }
        match status_code {
            500 => self.add(Count::Elb500, 1),
            502 => self.add(Count::Elb502, 1),
            503 => self.add(Count::Elb503, 1),
            504 => self.add(Count::Elb504, 1),
            _ => {}
        }
    }

    /// A request whose client went away before its answer (ALB's 460).
    pub(crate) fn count_client_closed(&self) {
        self.add(Count::Requests, 1);
        self.add(Count::Elb4xx, 1);
        self.add(Count::Elb460, 1);
    }

    fn totals(&self) -> Totals {
        std::array::from_fn(|index| self.counters[index].load(Ordering::Relaxed))
    }
}

/// Which of the load balancer's own answers a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnAnswer {
    FixedResponse,
    Redirect,
    /// 400, 502, 503, 504.
    Error,
}

/// Every worker's counters and what the previous report saw.
pub(crate) struct TrafficCounters {
    workers: Box<[Arc<WorkerTraffic>]>,
    reported: Mutex<Totals>,
}

impl TrafficCounters {
    pub(crate) fn new(workers: usize) -> TrafficCounters {
        TrafficCounters {
            workers: (0..workers.max(1))
                .map(|_| Arc::new(WorkerTraffic::default()))
                .collect(),
            reported: Mutex::new([0; COUNTS]),
        }
    }

    pub(crate) fn worker(&self, index: usize) -> Arc<WorkerTraffic> {
        Arc::clone(&self.workers[index % self.workers.len()])
    }

    pub(crate) fn set_enabled(&self, enabled: bool) {
        for worker in self.workers.iter() {
            worker.enabled.store(enabled, Ordering::Relaxed);
        }
    }

    /// The counts since the previous call and the gauges now.
    pub(crate) fn take(&self) -> LoadBalancerTraffic {
        let mut totals: Totals = [0; COUNTS];
        for worker in self.workers.iter() {
            for (total, value) in totals.iter_mut().zip(worker.totals()) {
                *total = total.wrapping_add(value);
            }
        }
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let previous = std::mem::replace(&mut *reported, totals);
        drop(reported);
        let delta = |count: Count| totals[count as usize].wrapping_sub(previous[count as usize]);
        let open = |opened: Count, closed: Count| {
            totals[opened as usize].saturating_sub(totals[closed as usize])
        };
        LoadBalancerTraffic {
            request_count: delta(Count::Requests),
            new_client_connection_count: delta(Count::ClientConnectionsOpened),
            new_target_connection_count: delta(Count::TargetConnectionsOpened),
            active_client_connection_count: open(
                Count::ClientConnectionsOpened,
                Count::ClientConnectionsClosed,
            ),
            active_target_connection_count: open(
                Count::TargetConnectionsOpened,
                Count::TargetConnectionsClosed,
            ),
            processed_bytes: delta(Count::ProcessedBytes),
            http_code_elb_3xx_count: delta(Count::Elb3xx),
            http_code_elb_4xx_count: delta(Count::Elb4xx),
            http_code_elb_5xx_count: delta(Count::Elb5xx),
            http_code_elb_500_count: delta(Count::Elb500),
            http_code_elb_502_count: delta(Count::Elb502),
            http_code_elb_503_count: delta(Count::Elb503),
            http_code_elb_504_count: delta(Count::Elb504),
            http_code_elb_460_count: delta(Count::Elb460),
            http_fixed_response_count: delta(Count::FixedResponses),
            http_redirect_count: delta(Count::Redirects),
            rejected_connection_count: delta(Count::RejectedConnections),
        }
    }
}

/// Counts one open connection (client or target) until dropped.
pub(crate) struct OpenConnection {
    traffic: Arc<WorkerTraffic>,
    closed: Count,
}

impl OpenConnection {
    pub(crate) fn client(traffic: Arc<WorkerTraffic>) -> OpenConnection {
        traffic.add(Count::ClientConnectionsOpened, 1);
        OpenConnection {
            traffic,
            closed: Count::ClientConnectionsClosed,
        }
    }

    pub(crate) fn target(traffic: Arc<WorkerTraffic>) -> OpenConnection {
        traffic.add(Count::TargetConnectionsOpened, 1);
        OpenConnection {
            traffic,
            closed: Count::TargetConnectionsClosed,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.traffic.add(self.closed, 1);
    }
}

/// A client connection whose bytes (both ways) count as ProcessedBytes.
pub(crate) struct CountedIo<T> {
    io: T,
    traffic: Arc<WorkerTraffic>,
}

impl<T> CountedIo<T> {
    pub(crate) fn new(io: T, traffic: Arc<WorkerTraffic>) -> CountedIo<T> {
        CountedIo { io, traffic }
    }

    /// Whether to count the bytes of the next read or write: asked before
    /// the system call, so that bytes already seen by the peer are never
    /// counted under a later switch.
    fn counting(&self) -> bool {
        self.traffic.enabled()
    }

    fn count(&self, bytes: usize) {
        self.traffic.add(Count::ProcessedBytes, bytes as u64);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CountedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let counting = this.counting();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if counting && polled.is_ready() {
            this.count(buf.filled().len() - before);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let counting = this.counting();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if let (true, Poll::Ready(Ok(written))) = (counting, &polled) {
            this.count(*written);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let counting = this.counting();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let (true, Poll::Ready(Ok(written))) = (counting, &polled) {
            this.count(*written);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[test]
    fn reports_are_deltas_and_gauges_are_current() {
        let counters = TrafficCounters::new(2);
        let (first, second) = (counters.worker(0), counters.worker(1));
        let client = OpenConnection::client(Arc::clone(&first));
        let _target = OpenConnection::target(Arc::clone(&second));
        first.count_answer(200, None);
        second.count_answer(503, Some(OwnAnswer::Error));
        second.count_answer(301, Some(OwnAnswer::Redirect));
        second.count_answer(404, Some(OwnAnswer::FixedResponse));
        first.count_client_closed();
        let report = counters.take();
        assert_eq!(
            report,
            LoadBalancerTraffic {
                request_count: 5,
                new_client_connection_count: 1,
                new_target_connection_count: 1,
                active_client_connection_count: 1,
                active_target_connection_count: 1,
                http_code_elb_3xx_count: 1,
                http_code_elb_4xx_count: 2,
                http_code_elb_5xx_count: 1,
                http_code_elb_503_count: 1,
                http_code_elb_460_count: 1,
                http_fixed_response_count: 1,
                http_redirect_count: 1,
                ..LoadBalancerTraffic::default()
            }
        );
        drop(client);
        let report = counters.take();
        assert_eq!(
            report,
            LoadBalancerTraffic {
                active_target_connection_count: 1,
                ..LoadBalancerTraffic::default()
            }
        );
        // A worker index past the workers wraps around.
        assert!(Arc::ptr_eq(&counters.worker(2), &first));
    }

    #[test]
    fn switched_off_only_connections_count() {
        let counters = TrafficCounters::new(1);
        counters.set_enabled(false);
        let worker = counters.worker(0);
        assert!(!worker.enabled());
        let _client = OpenConnection::client(Arc::clone(&worker));
        let report = counters.take();
        assert_eq!(report.new_client_connection_count, 1);
        assert_eq!(report.active_client_connection_count, 1);
        assert_eq!(report.request_count, 0);
    }

    #[tokio::test]
    async fn counted_io_counts_bytes_both_ways() {
        let counters = TrafficCounters::new(1);
        let (near, mut far) = tokio::io::duplex(64);
        let mut counted = CountedIo::new(near, counters.worker(0));
        counted.write_all(b"hello").await.unwrap();
        far.write_all(b"hi!").await.unwrap();
        let mut read = [0u8; 3];
        counted.read_exact(&mut read).await.unwrap();
        assert_eq!(counters.take().processed_bytes, 8);
        counters.set_enabled(false);
        counted.write_all(b"uncounted").await.unwrap();
        assert_eq!(counters.take().processed_bytes, 0);
    }
}
