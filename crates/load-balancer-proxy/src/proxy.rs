//! The proxy's lifecycle: configuration snapshots in, listeners and health
//! check tasks out.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use load_balancer::{
    Listener, LoadBalancer, LoadBalancerError, Target, TargetGroup, TargetGroupState, TargetHealth,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock;
use crate::health_checks;
use crate::workers::Workers;

/// How often draining targets whose deregistration delay ended are retired.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The address every listener's port is bound on.
    pub bind_ip: IpAddr,
    /// How long a target has to start answering (connect included) before
    /// the client gets a 504; ALB's idle timeout defaults to 60 s.
    pub upstream_timeout: Duration,
    /// Threads serving connections, each with its own single-threaded
    /// runtime (default: one per core).
    pub worker_threads: usize,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            upstream_timeout: Duration::from_secs(60),
            worker_threads: std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    InvalidConfiguration(#[from] LoadBalancerError),
    #[error("cannot listen on {addr}: {source}; free the port or change the listener's port")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the proxy's worker threads: {0}; lower ProxyOptions::worker_threads")]
    Workers(std::io::Error),
}

/// A running load balancer.
pub struct Proxy {
    shared: Arc<Shared>,
    supervisor: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

/// What the request path reads.
pub(crate) struct Shared {
    pub(crate) options: ProxyOptions,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Bumped after every new snapshot (workers cache theirs until then).
    generation: AtomicU64,
}

impl Shared {
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn replace_snapshot(&self, snapshot: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// One configuration as the request path sees it.
pub(crate) struct Snapshot {
    pub(crate) load_balancer: Arc<LoadBalancer>,
    pub(crate) groups: HashMap<String, Arc<GroupRuntime>>,
}

impl Snapshot {
    pub(crate) fn listener(&self, port: u16) -> Option<&Listener> {
        self.load_balancer
            .listeners
            .iter()
            .find(|listener| listener.port == port)
    }
}

/// A target group's live state, kept across snapshots while the group
/// exists.
pub(crate) struct GroupRuntime {
    pub(crate) state: Mutex<TargetGroupState>,
}

impl GroupRuntime {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, TargetGroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct GroupTask {
    runtime: Arc<GroupRuntime>,
    config: watch::Sender<TargetGroup>,
    health_checks: JoinHandle<()>,
}

/// What the supervisor owns.
struct Supervisor {
    shared: Arc<Shared>,
    workers: Workers,
    groups: HashMap<String, GroupTask>,
    applied: Option<Arc<LoadBalancer>>,
}

impl Proxy {
    /// Validates the current snapshot, binds its listeners, starts health
    /// checks, and follows `config` from then on (an invalid later snapshot
    /// is logged and the previous one kept).
    pub async fn start(
        mut config: watch::Receiver<Arc<LoadBalancer>>,
        options: ProxyOptions,
    ) -> Result<Proxy, ProxyError> {
        let initial = Arc::clone(&config.borrow_and_update());
        initial.validate()?;
        let worker_threads = options.worker_threads;
        let shared = Arc::new(Shared {
            options,
            snapshot: RwLock::new(Arc::new(Snapshot {
                load_balancer: Arc::clone(&initial),
                groups: HashMap::new(),
            })),
            generation: AtomicU64::new(0),
        });
        let workers = Workers::start(&shared, worker_threads).map_err(ProxyError::Workers)?;
        let mut supervisor = Supervisor {
            shared: Arc::clone(&shared),
            workers,
            groups: HashMap::new(),
            applied: None,
        };
        if let Err(err) = supervisor.apply(initial).await {
            supervisor.stop_all().await;
            return Err(err);
        }
        let (stop, stop_receiver) = watch::channel(false);
        let supervisor = tokio::spawn(async move {
            supervisor.run(&mut config, stop_receiver).await;
        });
        Ok(Proxy {
            shared,
            supervisor,
            stop,
        })
    }

    /// The ports of the listeners currently bound.
    pub fn listener_ports(&self) -> Vec<u16> {
        let snapshot = self.shared.snapshot();
        snapshot
            .load_balancer
            .listeners
            .iter()
            .map(|listener| listener.port)
            .collect()
    }

    /// DescribeTargetHealth: every registered target of the group (draining
    /// ones included) with its health; `None` for an unknown group.
    pub fn describe_target_health(
        &self,
        target_group_arn: &str,
    ) -> Option<Vec<(Target, TargetHealth)>> {
        let snapshot = self.shared.snapshot();
        let group = snapshot.groups.get(target_group_arn)?;
        let health = group.lock().describe_target_health();
        Some(health)
    }

    /// DescribeTargetHealth for one target (`unused` /
    /// `Target.NotRegistered` when it is not registered).
    pub fn target_health(&self, target_group_arn: &str, target: Target) -> Option<TargetHealth> {
        let snapshot = self.shared.snapshot();
        let group = snapshot.groups.get(target_group_arn)?;
        let health = group.lock().target_health(target);
        Some(health)
    }

    /// Stops listening (the ports are closed when this returns) and health
    /// checking. Connections already accepted finish their requests.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.supervisor.await;
    }
}

impl Supervisor {
    async fn run(
        mut self,
        config: &mut watch::Receiver<Arc<LoadBalancer>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        let mut following = true;
        loop {
            tokio::select! {
                changed = config.changed(), if following => {
                    if changed.is_err() {
                        // The controller is gone: keep serving the last snapshot.
                        following = false;
                        continue;
                    }
                    let load_balancer = Arc::clone(&config.borrow_and_update());
                    if let Err(err) = self.apply(load_balancer).await {
                        tracing::warn!(%err, "load balancer configuration not (fully) applied");
                    }
                }
                _ = housekeeping.tick() => {
                    let now_ms = clock::now_ms();
                    for group in self.groups.values() {
                        group.runtime.lock().complete_deregistrations(now_ms);
                    }
                }
                _ = stop.changed() => break,
            }
        }
        self.stop_all().await;
    }

    /// Makes the running proxy match `load_balancer`. Bind failures are
    /// reported after everything else is applied; the listener is retried
    /// with the next snapshot.
    async fn apply(&mut self, load_balancer: Arc<LoadBalancer>) -> Result<(), ProxyError> {
        if self.applied.as_ref() == Some(&load_balancer) {
            return Ok(());
        }
        load_balancer.validate()?;
        let now_ms = clock::now_ms();

        let mut groups = HashMap::new();
        for target_group in &load_balancer.target_groups {
            let arn = &target_group.target_group_arn;
            let task = match self.groups.remove(arn) {
                Some(task) => {
                    task.runtime.lock().apply_config(target_group, now_ms);
                    task.config.send_if_modified(|current| {
                        let changed = current != target_group;
                        if changed {
                            *current = target_group.clone();
                        }
                        changed
                    });
                    task
                }
                None => {
                    let runtime = Arc::new(GroupRuntime {
                        state: Mutex::new(TargetGroupState::new(target_group, now_ms)),
                    });
                    let (config, config_receiver) = watch::channel(target_group.clone());
                    let health_checks =
                        tokio::spawn(health_checks::run(Arc::clone(&runtime), config_receiver));
                    GroupTask {
                        runtime,
                        config,
                        health_checks,
                    }
                }
            };
            groups.insert(arn.clone(), task);
        }
        for (_, removed) in self.groups.drain() {
            removed.health_checks.abort();
        }
        self.groups = groups;

        let snapshot = Snapshot {
            load_balancer: Arc::clone(&load_balancer),
            groups: self
                .groups
                .iter()
                .map(|(arn, task)| (arn.clone(), Arc::clone(&task.runtime)))
                .collect(),
        };
        self.shared.replace_snapshot(snapshot);

        let ports: Vec<u16> = load_balancer.listeners.iter().map(|l| l.port).collect();
        for port in self.workers.listening_ports() {
            if !ports.contains(&port) {
                self.workers.stop_listening(port);
            }
        }
        let mut first_error = None;
        for port in ports {
            if self.workers.is_listening(port) {
                continue;
            }
            let addr = SocketAddr::new(self.shared.options.bind_ip, port);
            match TcpListener::bind(addr).await.and_then(|l| l.into_std()) {
                Ok(listener) => self.workers.listen(port, listener),
                Err(source) => {
                    tracing::warn!(%addr, %source, "cannot bind listener");
                    first_error.get_or_insert(ProxyError::Bind { addr, source });
                }
            }
        }
        if first_error.is_none() {
            self.applied = Some(load_balancer);
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn stop_all(&mut self) {
        for (_, group) in self.groups.drain() {
            group.health_checks.abort();
        }
        self.workers.stop().await;
    }
}
