//! The proxy's lifecycle: configuration snapshots in, listeners and health
//! check tasks out.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use load_balancer::{
    AnomalyDetection, Listener, LoadBalancer, LoadBalancerError, LoadBalancingAlgorithm, Target,
    TargetAnomaly, TargetGroup, TargetGroupState, TargetGroupTraffic, TargetHealth,
    TargetObservation, TrafficReport,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock;
use crate::health_checks;
use crate::traffic::TrafficCounters;
use crate::workers::Workers;

/// How often draining targets whose deregistration delay ended are retired
/// and automatic target weights are evaluated.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The address every listener's port is bound on.
    pub bind_ip: IpAddr,
    /// The longest a target may take to start answering (connect
    /// included) before the client gets a 504, whatever the load
    /// balancer's `idle_timeout.timeout_seconds` (which applies below it;
    /// default: 4000 s, the highest idle timeout ELBv2 accepts).
    pub upstream_timeout: Duration,
    /// Threads serving connections, each with its own single-threaded
    /// runtime (default: one per core).
    pub worker_threads: usize,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            upstream_timeout: Duration::from_secs(4000),
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
    /// Each worker's load balancer counts.
    pub(crate) traffic: TrafficCounters,
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
/// exists: one [`TargetGroupState`] per worker, so the request path never
/// shares a lock (or a cache line) with another worker. Each worker selects
/// targets, counts requests in flight and avoids failing targets on its
/// own, as nginx's workers and ALB's nodes do; configuration changes and
/// health check results go to every shard alike (with the same clock
/// reading), so their health agrees. A draining target leaves a shard once
/// that shard has nothing in flight to it, and leaves the group when it has
/// left every shard.
///
/// Automatic target weights: each shard counts the requests it sends to a
/// target and their errors (in its own state, under its own lock); every
/// housekeeping tick the supervisor takes those counts from every shard,
/// runs the pure [`AnomalyDetection`] on their sum and gives every shard
/// the resulting weights.
pub(crate) struct GroupRuntime {
    shards: Box<[Shard]>,
    /// Touched only by the supervisor's housekeeping.
    anomaly_detection: Mutex<AnomalyDetection>,
}

/// One worker's state, alone on its cache lines.
#[repr(align(128))]
struct Shard(Mutex<TargetGroupState>);

impl GroupRuntime {
    pub(crate) fn new(target_group: &TargetGroup, now_ms: u64, workers: usize) -> GroupRuntime {
        GroupRuntime {
            shards: (0..workers.max(1))
                .map(|_| Shard(Mutex::new(TargetGroupState::new(target_group, now_ms))))
                .collect(),
            anomaly_detection: Mutex::new(AnomalyDetection::default()),
        }
    }

    /// One automatic target weights evaluation at `now_ms`: takes every
    /// shard's outcome counts and, for a `weighted_random` group, applies
    /// the decision to every shard (other groups forget any).
    pub(crate) fn evaluate_anomalies(&self, now_ms: u64) {
        let mut observations: Vec<TargetObservation> = Vec::new();
        let mut attributes = None;
        for index in 0..self.shards.len() {
            let mut shard = self.shard(index);
            attributes.get_or_insert_with(|| shard.config().attributes.clone());
            for observation in shard.take_observations() {
                match observations
                    .iter_mut()
                    .find(|seen| seen.target == observation.target)
                {
                    Some(seen) => seen.outcomes.add(observation.outcomes),
                    None => observations.push(observation),
                }
            }
        }
        let Some(attributes) = attributes else {
            return;
        };
        let mut detection = self
            .anomaly_detection
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if attributes.load_balancing_algorithm_type != LoadBalancingAlgorithm::WeightedRandom {
            if !detection.is_empty() {
                *detection = AnomalyDetection::default();
                drop(detection);
                self.update_all(|state| state.apply_anomaly_decisions(&[]));
            }
            return;
        }
        observations.sort_by_key(|observation| observation.target);
        let decisions =
            detection.evaluate(&observations, attributes.anomaly_mitigation_enabled, now_ms);
        drop(detection);
        self.update_all(|state| state.apply_anomaly_decisions(&decisions));
    }

    /// The group's traffic since the previous call, summed over the
    /// shards, with its health gauges now.
    pub(crate) fn take_traffic(&self) -> TargetGroupTraffic {
        let mut traffic = TargetGroupTraffic::default();
        for index in 0..self.shards.len() {
            let mut shard = self.shard(index);
            if index == 0 {
                // Health is the same in every shard (draining, which may
                // differ, counts in neither gauge).
                (traffic.healthy_host_count, traffic.unhealthy_host_count) = shard.host_counts();
            }
            let counted = shard.take_traffic();
            drop(shard);
            traffic.add_counts(&counted);
        }
        traffic
    }

    /// DescribeTargetHealth's `AnomalyDetection` for `target` (only in a
    /// `weighted_random` group).
    pub(crate) fn target_anomaly(&self, target: Target) -> Option<TargetAnomaly> {
        (0..self.shards.len())
            .map(|index| self.shard(index))
            .find(|state| state.is_registered(target))?
            .target_anomaly(target)
    }

    /// The state worker `worker` selects targets from.
    pub(crate) fn shard(&self, worker: usize) -> MutexGuard<'_, TargetGroupState> {
        let shard = &self.shards[worker % self.shards.len()];
        shard.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to every shard.
    pub(crate) fn update_all(&self, mut change: impl FnMut(&mut TargetGroupState)) {
        for index in 0..self.shards.len() {
            change(&mut self.shard(index));
        }
    }

    /// The targets health checks go to (the same in every shard).
    pub(crate) fn health_check_targets(&self) -> Vec<Target> {
        self.shard(0).health_check_targets()
    }

    /// Every target registered in some shard (draining ones included),
    /// sorted, with its health.
    pub(crate) fn describe_target_health(&self) -> Vec<(Target, TargetHealth)> {
        let mut health = BTreeMap::new();
        for index in 0..self.shards.len() {
            for (target, target_health) in self.shard(index).describe_target_health() {
                health.entry(target).or_insert(target_health);
            }
        }
        health.into_iter().collect()
    }

    /// One target's health: as the first shard it is still registered in
    /// reports it.
    pub(crate) fn target_health(&self, target: Target) -> TargetHealth {
        (0..self.shards.len())
            .map(|index| self.shard(index))
            .find(|state| state.is_registered(target))
            .unwrap_or_else(|| self.shard(0))
            .target_health(target)
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
            traffic: TrafficCounters::new(worker_threads),
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
        Some(group.describe_target_health())
    }

    /// DescribeTargetHealth for one target (`unused` /
    /// `Target.NotRegistered` when it is not registered).
    pub fn target_health(&self, target_group_arn: &str, target: Target) -> Option<TargetHealth> {
        let snapshot = self.shared.snapshot();
        let group = snapshot.groups.get(target_group_arn)?;
        Some(group.target_health(target))
    }

    /// DescribeTargetHealth's `AnomalyDetection` for one target: `None` for
    /// an unknown group or target, or a group whose algorithm is not
    /// `weighted_random`.
    pub fn target_anomaly(&self, target_group_arn: &str, target: Target) -> Option<TargetAnomaly> {
        let snapshot = self.shared.snapshot();
        snapshot
            .groups
            .get(target_group_arn)?
            .target_anomaly(target)
    }

    /// What the load balancer counted since the previous call (the first
    /// call: since the start), for CloudWatch's `AWS/ApplicationELB`
    /// metrics: counts are deltas, gauges (open connections, healthy and
    /// unhealthy targets) are as of now. Every target group of the current
    /// configuration is listed; a group removed from it since the previous
    /// call is not, and its last counts are lost. Cheap (it sums one set of
    /// counters per worker and per shard): call it every few seconds.
    pub fn take_traffic_report(&self) -> TrafficReport {
        let snapshot = self.shared.snapshot();
        let target_groups = snapshot
            .groups
            .iter()
            .map(|(arn, group)| (arn.clone(), group.take_traffic()))
            .collect();
        TrafficReport {
            load_balancer: self.shared.traffic.take(),
            target_groups,
        }
    }

    /// Turns the per-request traffic counting on (the default) or off (to
    /// measure what it costs). Connections are counted either way, so the
    /// open connection gauges stay right; requests, bytes, status codes and
    /// response times are not counted while it is off.
    pub fn set_traffic_counting(&self, enabled: bool) {
        self.shared.traffic.set_enabled(enabled);
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
                        group.runtime.update_all(|state| {
                            state.complete_deregistrations(now_ms);
                        });
                        group.runtime.evaluate_anomalies(now_ms);
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
                    task.runtime
                        .update_all(|state| state.apply_config(target_group, now_ms));
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
                    let runtime = Arc::new(GroupRuntime::new(
                        target_group,
                        now_ms,
                        self.shared.options.worker_threads,
                    ));
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

#[cfg(test)]
mod tests {
    use load_balancer::{
        HealthCheck, HealthCheckOutcome, TargetGroupAttributes, TargetHealthState,
    };

    use super::*;

    fn target(port: u16) -> Target {
        Target {
            id: "127.0.0.1".parse().unwrap(),
            port,
        }
    }

    fn group(targets: &[Target]) -> TargetGroup {
        TargetGroup {
            target_group_arn: "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/g/0"
                .to_string(),
            targets: targets.to_vec(),
            health_check: HealthCheck::default(),
            attributes: TargetGroupAttributes::default(),
        }
    }

    #[test]
    fn a_draining_target_stays_until_no_worker_has_requests_in_flight_to_it() {
        let web = target(9000);
        let runtime = GroupRuntime::new(&group(&[web]), 0, 2);
        let selection = runtime.shard(1).select(None, 0).unwrap();
        assert_eq!(selection.target, web);

        runtime.update_all(|state| state.apply_config(&group(&[]), 1));
        // Worker 0 has nothing in flight to it; worker 1 still has.
        assert!(!runtime.shard(0).is_registered(web));
        assert_eq!(
            runtime.target_health(web).state,
            TargetHealthState::Draining
        );
        let described = runtime.describe_target_health();
        assert_eq!(described.len(), 1);
        assert_eq!(described[0].0, web);
        assert_eq!(described[0].1.state, TargetHealthState::Draining);

        runtime.shard(1).request_finished(web, 2);
        assert_eq!(runtime.target_health(web).state, TargetHealthState::Unused);
        assert!(runtime.describe_target_health().is_empty());
    }

    #[test]
    fn health_check_results_reach_every_worker() {
        let (web, api) = (target(9000), target(9001));
        let runtime = GroupRuntime::new(&group(&[web, api]), 0, 3);
        let threshold = HealthCheck::default().healthy_threshold_count;
        for now_ms in 0..u64::from(threshold) {
            runtime.update_all(|state| {
                state.record_health_check(web, HealthCheckOutcome::Passed, now_ms);
            });
        }
        for worker in 0..3 {
            let state = runtime.shard(worker);
            assert_eq!(state.target_health(web).state, TargetHealthState::Healthy);
            assert_eq!(state.target_health(api).state, TargetHealthState::Initial);
            // Only the healthy target is routable, in every worker.
            assert_eq!(state.routable_targets(), vec![web]);
        }
        assert_eq!(runtime.health_check_targets(), vec![web, api]);
    }

    #[test]
    fn each_worker_counts_its_own_requests_in_flight() {
        let web = target(9000);
        let runtime = GroupRuntime::new(&group(&[web]), 0, 2);
        runtime.shard(0).select(None, 0).unwrap();
        runtime.shard(0).select(None, 0).unwrap();
        assert_eq!(runtime.shard(0).in_flight(web), 2);
        assert_eq!(runtime.shard(1).in_flight(web), 0);
        // A worker index past the shards wraps around.
        assert_eq!(runtime.shard(2).in_flight(web), 2);
    }
}
