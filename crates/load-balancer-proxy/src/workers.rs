//! Worker threads, one per core by default, each running a single-threaded
//! runtime. A listener's accept loop runs on one worker and hands accepted
//! connections to the workers in turn; from then on everything a client
//! connection needs (its requests, the upstream connections they use, the
//! pool those are kept in) stays on that worker's thread: no work stealing,
//! no cross-thread wake-ups, no contended locks on the request path.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, Version};
use hyper::body::{Body, Frame, SizeHint};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use pin_project_lite::pin_project;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::clock::{self, RandomDraws};
use crate::deadlines::{self, Deadlines};
use crate::handler::{self, Client, ProxyBody};
use crate::proxy::{Shared, Snapshot};
use crate::traffic::{Count, CountedIo, OpenConnection, WorkerTraffic};
use crate::upstream::UpstreamPool;

const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// How often a worker closes upstream connections idle for too long.
const POOL_SWEEP_INTERVAL: Duration = Duration::from_secs(5);
/// After shutdown, how long requests in flight may take to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The shortest idle timeout ELBv2 accepts: the deadline sweep runs often
/// enough for it.
const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

enum Command {
    /// Accept connections on `listener` (bound to `port`) until told to stop.
    Listen {
        port: u16,
        listener: std::net::TcpListener,
    },
    StopListening {
        port: u16,
    },
    /// Serve a client connection accepted on `port`.
    Connection {
        port: u16,
        stream: std::net::TcpStream,
        peer: SocketAddr,
    },
    /// Close every listener (then report), let the connections finish and
    /// end the thread.
    Stop {
        listeners_closed: oneshot::Sender<()>,
    },
}

/// What the request path of one worker reads and writes; only its own
/// thread touches the locks inside, so they are never contended.
pub(crate) struct WorkerContext {
    pub(crate) shared: Arc<Shared>,
    /// This worker's number: which shard of each target group's state it
    /// uses.
    pub(crate) index: usize,
    /// The configuration snapshot last seen and its generation.
    snapshot: Mutex<(u64, Arc<Snapshot>)>,
    pool: Mutex<UpstreamPool>,
    /// When requests waiting on a target get a 504.
    pub(crate) deadlines: Deadlines,
    pub(crate) random: RandomDraws,
    /// This worker's load balancer counts (written by this thread only).
    pub(crate) traffic: Arc<WorkerTraffic>,
    /// HTTP/1.1 and h2c.
    server: auto::Builder<TokioExecutor>,
    /// HTTP/1.1 only (`routing.http2.enabled` false).
    server_http1: auto::Builder<TokioExecutor>,
}

impl WorkerContext {
    fn new(shared: Arc<Shared>, index: usize) -> WorkerContext {
        let builder = || {
            let mut server = auto::Builder::new(TokioExecutor::new());
            server
                .http1()
                .keep_alive(true)
                // Small responses go out with one plain write of head and body
                // (copied together) rather than a writev of two buffers.
                .writev(false)
                .timer(TokioTimer::new())
                // Armed per request, it costs an allocation and a timer: each
                // connection has one idle timer instead (see `serve_connection`).
                .header_read_timeout(None);
            server.http2().timer(TokioTimer::new());
            server
        };
        let server = builder();
        let server_http1 = builder().http1_only();
        let snapshot = Mutex::new((shared.generation(), shared.snapshot()));
        let traffic = shared.traffic.worker(index);
        WorkerContext {
            shared,
            index,
            snapshot,
            pool: Mutex::new(UpstreamPool::default()),
            deadlines: Deadlines::default(),
            random: RandomDraws::from_os_seed(),
            traffic,
            server,
            server_http1,
        }
    }

    /// Runs `decide` on the current configuration snapshot.
    pub(crate) fn with_snapshot<R>(&self, decide: impl FnOnce(&Snapshot) -> R) -> R {
        let generation = self.shared.generation();
        let mut cached = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != generation {
            *cached = (generation, self.shared.snapshot());
        }
        decide(&cached.1)
    }

    pub(crate) fn pool(&self) -> MutexGuard<'_, UpstreamPool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The worker threads of one proxy.
pub(crate) struct Workers {
    senders: Arc<[mpsc::UnboundedSender<Command>]>,
    /// Which worker accepts on each port.
    listening: HashMap<u16, usize>,
    next_listener_worker: usize,
    stopped: bool,
}

impl Workers {
    pub(crate) fn start(shared: &Arc<Shared>, count: usize) -> std::io::Result<Workers> {
        let mut senders = Vec::with_capacity(count);
        let mut receivers = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            let (sender, receiver) = mpsc::unbounded_channel();
            senders.push(sender);
            receivers.push(receiver);
        }
        let senders: Arc<[mpsc::UnboundedSender<Command>]> = senders.into();
        let workers = Workers {
            senders: Arc::clone(&senders),
            listening: HashMap::new(),
            next_listener_worker: 0,
            stopped: false,
        };
        for (index, commands) in receivers.into_iter().enumerate() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let context = Arc::new(WorkerContext::new(Arc::clone(shared), index));
            let senders = Arc::clone(&senders);
            std::thread::Builder::new()
                .name(format!("berth-lb-{index}"))
                .spawn(move || {
                    runtime.block_on(run(context, senders, index, commands));
                })?;
        }
        Ok(workers)
    }

    /// Serves `listener` (bound to `port`) until
    /// [`stop_listening`](Self::stop_listening).
    pub(crate) fn listen(&mut self, port: u16, listener: std::net::TcpListener) {
        let worker = self.next_listener_worker % self.senders.len();
        self.next_listener_worker += 1;
        let _ = self.senders[worker].send(Command::Listen { port, listener });
        self.listening.insert(port, worker);
    }

    pub(crate) fn stop_listening(&mut self, port: u16) {
        if let Some(worker) = self.listening.remove(&port) {
            let _ = self.senders[worker].send(Command::StopListening { port });
        }
    }

    pub(crate) fn listening_ports(&self) -> Vec<u16> {
        self.listening.keys().copied().collect()
    }

    pub(crate) fn is_listening(&self, port: u16) -> bool {
        self.listening.contains_key(&port)
    }

    /// Closes every listener (returning once they are closed); connections
    /// already accepted finish their requests in the background.
    pub(crate) async fn stop(&mut self) {
        self.stopped = true;
        self.listening.clear();
        let mut closed = Vec::new();
        for sender in self.senders.iter() {
            let (listeners_closed, receiver) = oneshot::channel();
            if sender.send(Command::Stop { listeners_closed }).is_ok() {
                closed.push(receiver);
            }
        }
        for receiver in closed {
            let _ = receiver.await;
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if !self.stopped {
            for sender in self.senders.iter() {
                let (listeners_closed, _) = oneshot::channel();
                let _ = sender.send(Command::Stop { listeners_closed });
            }
        }
    }
}

/// One worker's life: follow commands until told to stop, then drain.
async fn run(
    context: Arc<WorkerContext>,
    senders: Arc<[mpsc::UnboundedSender<Command>]>,
    index: usize,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let (stop_connections, connections_stop) = watch::channel(false);
    let mut accept_loops: HashMap<u16, JoinHandle<()>> = HashMap::new();
    let mut connections = JoinSet::new();
    let mut sweep = tokio::time::interval(POOL_SWEEP_INTERVAL);
    let mut deadline_sweep = tokio::time::interval(deadlines::sweep_period(
        context
            .shared
            .options
            .upstream_timeout
            .min(MIN_IDLE_TIMEOUT),
    ));
    deadline_sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let listeners_closed = loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Listen { port, listener }) => {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let senders = Arc::clone(&senders);
                            let traffic = Arc::clone(&context.traffic);
                            let task =
                                tokio::spawn(accept(listener, port, senders, index, traffic));
                            if let Some(previous) = accept_loops.insert(port, task) {
                                previous.abort();
                            }
                        }
                        Err(err) => tracing::warn!(%err, port, "cannot serve a listener"),
                    }
                }
                Some(Command::StopListening { port }) => {
                    if let Some(task) = accept_loops.remove(&port) {
                        task.abort();
                        let _ = task.await;
                    }
                }
                Some(Command::Connection { port, stream, peer }) => {
                    connections.spawn(serve_connection(
                        Arc::clone(&context),
                        stream,
                        port,
                        peer,
                        connections_stop.clone(),
                    ));
                }
                Some(Command::Stop { listeners_closed }) => break Some(listeners_closed),
                None => break None,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = sweep.tick() => context.pool().sweep(clock::now_ms()),
            _ = deadline_sweep.tick() => context.deadlines.sweep(clock::monotonic_ms()),
        }
    };
    for (_, task) in accept_loops.drain() {
        task.abort();
        let _ = task.await;
    }
    if let Some(listeners_closed) = listeners_closed {
        let _ = listeners_closed.send(());
    }
    drop(commands);
    let _ = stop_connections.send(true);
    let drained = async {
        loop {
            tokio::select! {
                joined = connections.join_next() => if joined.is_none() { break },
                _ = deadline_sweep.tick() => context.deadlines.sweep(clock::monotonic_ms()),
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drained).await;
}

/// Accepts connections on one listener until aborted, handing them to the
/// workers in turn.
async fn accept(
    listener: TcpListener,
    port: u16,
    workers: Arc<[mpsc::UnboundedSender<Command>]>,
    first: usize,
    traffic: Arc<WorkerTraffic>,
) {
    let mut next = first;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(err) => {
                        tracing::debug!(%err, %peer, "cannot hand over a connection");
                        continue;
                    }
                };
                let worker = next % workers.len();
                next = next.wrapping_add(1);
                let _ = workers[worker].send(Command::Connection { port, stream, peer });
            }
            Err(err) => {
                // RejectedConnectionCount (Berth has no connection limit of
                // its own: these are the connections it could not accept).
                traffic.add(Count::RejectedConnections, 1);
                tracing::warn!(%err, port, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

/// Serves one client connection (HTTP/1.1 with keep-alive, or h2c) until it
/// closes; once the worker stops, finishes the requests in flight.
async fn serve_connection(
    context: Arc<WorkerContext>,
    stream: std::net::TcpStream,
    port: u16,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) {
    let stream = match TcpStream::from_std(stream) {
        Ok(stream) => stream,
        Err(err) => {
            tracing::debug!(%err, %peer, "cannot serve a connection");
            return;
        }
    };
    let _open = OpenConnection::client(Arc::clone(&context.traffic));
    let client = Client::new(peer, port);
    // The connection keeps the attributes it started with, as on ALB.
    let attributes = context.with_snapshot(|snapshot| snapshot.load_balancer.attributes);
    let service_context = Arc::clone(&context);
    let activity = Arc::new(Activity::new(Arc::clone(&context.traffic)));
    let service_activity = Arc::clone(&activity);
    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let context = Arc::clone(&service_context);
        let client = client.clone();
        let http1 = request.version() != Version::HTTP_2;
        if !http1 {
            service_activity.http2.store(true, Ordering::Relaxed);
        }
        let active = Active::start(&service_activity);
        let prepared = handler::prepare(&context, &client, request);
        Responding {
            respond: handler::respond(context, client, prepared),
            active: Some(active),
            http1,
        }
    });
    let server = if attributes.http2_enabled {
        &context.server
    } else {
        &context.server_http1
    };
    let stream = CountedIo::new(stream, Arc::clone(&context.traffic));
    let connection = server.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    // The worker's stop and the idle timer are watched by a task of their
    // own, which tells the connection through `verdict`: selecting on them
    // here would poll both every time the connection's task wakes, twice
    // per request.
    let (verdict_sender, mut verdict) = oneshot::channel();
    tokio::spawn(watch_connection(
        activity,
        stop,
        verdict_sender,
        Lifetimes {
            idle: Duration::from_secs(u64::from(attributes.idle_timeout_seconds)),
            keep_alive: Duration::from_secs(u64::from(attributes.client_keep_alive_seconds)),
        },
    ));
    let result = tokio::select! {
        biased;
        result = connection.as_mut() => result,
        verdict = &mut verdict => match verdict {
            Ok(Verdict::Shutdown) => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
            Ok(Verdict::Close) => {
                tracing::debug!(%peer, "closing a client connection that started no request");
                return;
            }
            // The watcher is gone (the runtime is shutting down).
            Err(_) => connection.await,
        },
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "client connection ended with an error");
    }
}

/// What a connection's watcher tells it.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The worker stops: finish the requests in flight, then close.
    Shutdown,
    /// No request started for a whole idle period while none was in
    /// progress (idle, or dribbling a head): close now.
    Close,
}

/// How long a client connection may live.
#[derive(Debug, Clone, Copy)]
struct Lifetimes {
    /// `idle_timeout.timeout_seconds`: no request started for this long
    /// while none is in progress closes it.
    idle: Duration,
    /// `client_keep_alive.seconds`: once the connection is this old, its
    /// next HTTP/1 response carries `Connection: close`; an HTTP/2
    /// connection is shut down gracefully (GOAWAY, requests in flight
    /// finish).
    keep_alive: Duration,
}

/// Watches one connection until it ends: one timer per connection instead
/// of hyper's per-request header read timeout.
async fn watch_connection(
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
    mut verdict: oneshot::Sender<Verdict>,
    lifetimes: Lifetimes,
) {
    let idle = tokio::time::sleep(lifetimes.idle);
    tokio::pin!(idle);
    let keep_alive = tokio::time::sleep(lifetimes.keep_alive);
    tokio::pin!(keep_alive);
    let mut kept_alive_long_enough = false;
    let mut started_seen = 0;
    loop {
        tokio::select! {
            // The connection ended.
            () = verdict.closed() => return,
            _ = stop.wait_for(|stop| *stop) => {
                let _ = verdict.send(Verdict::Shutdown);
                return;
            }
            () = &mut keep_alive, if !kept_alive_long_enough => {
                kept_alive_long_enough = true;
                activity.keep_alive_over.store(true, Ordering::Relaxed);
                if activity.http2.load(Ordering::Relaxed) {
                    let _ = verdict.send(Verdict::Shutdown);
                    return;
                }
            }
            () = &mut idle => {
                let started = activity.started.load(Ordering::Relaxed);
                if started == started_seen && activity.active.load(Ordering::Relaxed) == 0 {
                    let _ = verdict.send(Verdict::Close);
                    return;
                }
                started_seen = started;
                let next = idle.deadline() + lifetimes.idle;
                idle.as_mut().reset(next);
            }
        }
    }
}

/// The requests of one client connection: how many started, how many are
/// in progress (until their response body is dropped).
#[derive(Default)]
struct Activity {
    /// Where its requests are counted.
    traffic: Arc<WorkerTraffic>,
    started: AtomicU64,
    active: AtomicUsize,
    /// The client keep-alive duration is over: the next response closes
    /// the connection.
    keep_alive_over: AtomicBool,
    /// The connection speaks HTTP/2.
    http2: AtomicBool,
}

impl Activity {
    fn new(traffic: Arc<WorkerTraffic>) -> Activity {
        Activity {
            traffic,
            started: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            keep_alive_over: AtomicBool::new(false),
            http2: AtomicBool::new(false),
        }
    }
}

/// One request in progress.
struct Active {
    activity: Arc<Activity>,
    /// Its response was produced (and counted); dropped before that, the
    /// client went away (ALB's 460).
    answered: bool,
}

impl Active {
    fn start(activity: &Arc<Activity>) -> Active {
        activity.started.fetch_add(1, Ordering::Relaxed);
        activity.active.fetch_add(1, Ordering::Relaxed);
        Active {
            activity: Arc::clone(activity),
            answered: false,
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.activity.active.fetch_sub(1, Ordering::Relaxed);
        let traffic = &self.activity.traffic;
        if !self.answered && traffic.enabled() {
            traffic.count_client_closed();
        }
    }
}

pin_project! {
    /// A request's response on its way, then counted as in progress until
    /// its body is dropped. (An `async` block would hold the arguments of
    /// `respond` twice, and hyper moves this future on every request.)
    struct Responding<F> {
        #[pin]
        respond: F,
        active: Option<Active>,
        // An HTTP/1 request (whose response may carry `Connection: close`).
        http1: bool,
    }
}

impl<F: Future<Output = Response<ProxyBody>>> Future for Responding<F> {
    type Output = Result<Response<Tracked>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.respond.poll(cx));
        let mut active = this
            .active
            .take()
            .expect("a response future is not polled after it completed");
        active.answered = true;
        let traffic = &active.activity.traffic;
        if traffic.enabled() {
            traffic.count_answer(response.status().as_u16(), response.body().own_answer());
        }
        if *this.http1 && active.activity.keep_alive_over.load(Ordering::Relaxed) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Poll::Ready(Ok(response.map(|body| Tracked {
            body,
            _active: active,
        })))
    }
}

/// A response body counted as in progress until dropped.
struct Tracked {
    body: ProxyBody,
    _active: Active,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    const KEEP_ALIVE: Duration = Duration::from_secs(3600);

    fn watched() -> (
        Arc<Activity>,
        watch::Sender<bool>,
        oneshot::Receiver<Verdict>,
        JoinHandle<()>,
    ) {
        watched_with(Arc::new(Activity::default()))
    }

    fn watched_with(
        activity: Arc<Activity>,
    ) -> (
        Arc<Activity>,
        watch::Sender<bool>,
        oneshot::Receiver<Verdict>,
        JoinHandle<()>,
    ) {
        let (stop, stop_receiver) = watch::channel(false);
        let (verdict, verdict_receiver) = oneshot::channel();
        let watcher = tokio::spawn(watch_connection(
            Arc::clone(&activity),
            stop_receiver,
            verdict,
            Lifetimes {
                idle: CLIENT_IDLE_TIMEOUT,
                keep_alive: KEEP_ALIVE,
            },
        ));
        (activity, stop, verdict_receiver, watcher)
    }

    #[tokio::test]
    async fn once_the_keep_alive_duration_is_over_http1_responses_close_the_connection() {
        let activity = Arc::new(Activity::default());
        let respond = |http1: bool| Responding {
            respond: std::future::ready(handler::alb_error(http::StatusCode::BAD_GATEWAY)),
            active: Some(Active::start(&activity)),
            http1,
        };
        let connection =
            |response: Response<Tracked>| response.headers().get(header::CONNECTION).cloned();
        assert_eq!(connection(respond(true).await.unwrap()), None);
        activity.keep_alive_over.store(true, Ordering::Relaxed);
        assert_eq!(
            connection(respond(true).await.unwrap()),
            Some(HeaderValue::from_static("close"))
        );
        // HTTP/2 has no Connection header: its connection gets a GOAWAY.
        assert_eq!(connection(respond(false).await.unwrap()), None);
    }

    #[tokio::test]
    async fn requests_count_when_answered_and_when_their_client_goes_away() {
        let shared_traffic = crate::traffic::TrafficCounters::new(1);
        let activity = Arc::new(Activity::new(shared_traffic.worker(0)));
        let respond = |status| Responding {
            respond: std::future::ready(handler::alb_error(status)),
            active: Some(Active::start(&activity)),
            http1: true,
        };
        let answered = respond(http::StatusCode::SERVICE_UNAVAILABLE)
            .await
            .unwrap();
        // Its body still in progress: counted once, when produced.
        drop(answered);
        // Dropped unanswered: the client went away (460).
        drop(respond(http::StatusCode::BAD_GATEWAY));
        let report = shared_traffic.take();
        assert_eq!(report.request_count, 2);
        assert_eq!(report.http_code_elb_503_count, 1);
        assert_eq!(report.http_code_elb_502_count, 0);
        assert_eq!(report.http_code_elb_460_count, 1);
        assert_eq!(report.http_code_elb_4xx_count, 1);
        assert_eq!(report.http_code_elb_5xx_count, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_keep_alive_duration_ends_a_connection() {
        // HTTP/1: the flag is raised for the next response; the connection
        // lives on until then.
        let (activity, _stop, mut verdict, _watcher) = watched();
        let mut active = Active::start(&activity);
        let started = tokio::time::Instant::now();
        while started.elapsed() < KEEP_ALIVE {
            tokio::time::sleep(CLIENT_IDLE_TIMEOUT).await;
            drop(active);
            active = Active::start(&activity);
        }
        tokio::time::sleep(CLIENT_IDLE_TIMEOUT).await;
        assert!(activity.keep_alive_over.load(Ordering::Relaxed));
        assert_eq!(verdict.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        drop(active);

        // HTTP/2: shut down gracefully.
        let http2 = Arc::new(Activity::default());
        http2.http2.store(true, Ordering::Relaxed);
        let (activity, _stop, verdict, _watcher) = watched_with(http2);
        let _active = Active::start(&activity);
        let started = tokio::time::Instant::now();
        assert_eq!(verdict.await, Ok(Verdict::Shutdown));
        assert_eq!(started.elapsed(), KEEP_ALIVE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_starting_no_request_for_an_idle_period_is_closed() {
        let (_activity, _stop, verdict, watcher) = watched();
        let started = tokio::time::Instant::now();
        assert_eq!(verdict.await, Ok(Verdict::Close));
        assert_eq!(started.elapsed(), CLIENT_IDLE_TIMEOUT);
        watcher.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn requests_started_or_in_progress_keep_a_connection_open() {
        let (activity, _stop, mut verdict, _watcher) = watched();
        let started = tokio::time::Instant::now();
        // A request starts and finishes in the first period.
        drop(Active::start(&activity));
        tokio::time::sleep(CLIENT_IDLE_TIMEOUT + Duration::from_secs(1)).await;
        assert_eq!(verdict.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        // One starts in the second period and is still in progress through
        // the whole third (a long response).
        let active = Active::start(&activity);
        tokio::time::sleep(2 * CLIENT_IDLE_TIMEOUT).await;
        assert_eq!(verdict.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        drop(active);
        // Then a whole period with none started and none in progress.
        assert_eq!(verdict.await, Ok(Verdict::Close));
        assert_eq!(started.elapsed(), 4 * CLIENT_IDLE_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn the_worker_stopping_shuts_a_connection_down() {
        let (_activity, stop, verdict, watcher) = watched();
        stop.send(true).unwrap();
        assert_eq!(verdict.await, Ok(Verdict::Shutdown));
        watcher.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_watcher_ends_with_its_connection() {
        let (_activity, _stop, verdict, watcher) = watched();
        drop(verdict);
        tokio::time::timeout(Duration::from_secs(1), watcher)
            .await
            .expect("the watcher ended")
            .unwrap();
    }
}
