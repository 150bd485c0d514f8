//! The load balancer data plane of a node: one `load-balancer-proxy` per ELBv2 load balancer,
//! kept in step with the records under `/elbv2/` (and the container instances `instance`
//! targets name), and the health its checks observe handed to DescribeTargetHealth.
//!
//! Proxies know targets by address and port; ELBv2 names them by id (an IP address or an
//! `ec2InstanceId`) and port. The registry keeps what each registered target resolved to, and
//! keeps a deregistered target's entry while a proxy still drains it, so its health (then
//! `draining`) can still be asked for by id.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elbv2::data_plane::{DataPlane, ResolvedTarget};
use load_balancer::{AnomalyResult, LoadBalancer, Target, TargetHealthState};
use load_balancer_proxy::{Proxy, ProxyOptions};
use tokio::sync::watch;

/// Without a change under `/elbv2/`, the configurations are recomputed this often (this also
/// retries load balancers whose proxy could not start, e.g. because a port was taken).
const RESYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Waits this long after a change so a burst of writes becomes one snapshot.
const CHANGE_DEBOUNCE: Duration = Duration::from_millis(10);

struct Running {
    proxy: Proxy,
    config: watch::Sender<Arc<LoadBalancer>>,
}

/// By target group ARN, the targets of the group by ELBv2 id and port with what each resolved
/// to.
type ResolvedTargets = BTreeMap<String, Vec<ResolvedTarget>>;

/// The running proxies by load balancer ARN.
#[derive(Default)]
pub struct LoadBalancers {
    running: Mutex<HashMap<String, Running>>,
    /// Registered targets and deregistered ones a proxy still has.
    targets: Mutex<ResolvedTargets>,
}

impl LoadBalancers {
    pub fn new() -> Self {
        Self::default()
    }

    /// What every running load balancer's proxy counted since the previous call, by load
    /// balancer ARN (CloudWatch's `AWS/ApplicationELB` metrics).
    pub fn take_traffic_reports(&self) -> Vec<(String, load_balancer_proxy::TrafficReport)> {
        self.lock()
            .iter()
            .map(|(arn, running)| (arn.clone(), running.proxy.take_traffic_report()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_targets(&self) -> std::sync::MutexGuard<'_, ResolvedTargets> {
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The targets some running proxy has for the group (registered or draining).
    fn proxy_targets(&self, target_group_arn: &str) -> Vec<Target> {
        let running = self.lock();
        let mut targets: Vec<Target> = running
            .values()
            .filter_map(|running| running.proxy.describe_target_health(target_group_arn))
            .flatten()
            .map(|(target, _)| target)
            .collect();
        targets.sort();
        targets.dedup();
        targets
    }

    /// Brings the running proxies in line with `data_plane`: starts missing ones, sends every
    /// running one its snapshot, stops those whose load balancer is gone.
    async fn apply(&self, data_plane: DataPlane, options: &ProxyOptions) {
        let previous = self.lock_targets().clone();
        let targets = merge_resolved_targets(previous, data_plane.targets, |arn, target| {
            self.proxy_targets(arn).contains(&target)
        });
        *self.lock_targets() = targets;
        let wanted: HashMap<String, LoadBalancer> = data_plane.load_balancers.into_iter().collect();
        let removed: Vec<Running> = {
            let mut running = self.lock();
            let gone: Vec<String> = running
                .keys()
                .filter(|arn| !wanted.contains_key(*arn))
                .cloned()
                .collect();
            gone.iter().filter_map(|arn| running.remove(arn)).collect()
        };
        for stopped in removed {
            stopped.proxy.shutdown().await;
        }
        for (arn, config) in wanted {
            // Resent on every pass, changed or not: the proxy ignores a snapshot equal to
            // the one it applied, and retries the listeners it could not bind.
            let config = {
                let running = self.lock();
                match running.get(&arn) {
                    Some(existing) => {
                        existing.config.send_replace(Arc::new(config));
                        continue;
                    }
                    None => config,
                }
            };
            let (sender, receiver) = watch::channel(Arc::new(config));
            match Proxy::start(receiver, options.clone()).await {
                Ok(proxy) => {
                    tracing::info!(load_balancer = %arn, "load balancer started");
                    self.lock().insert(
                        arn,
                        Running {
                            proxy,
                            config: sender,
                        },
                    );
                }
                Err(err) => {
                    tracing::warn!(load_balancer = %arn, %err, "cannot start the load balancer; retrying");
                }
            }
        }
    }

    /// Stops every proxy.
    async fn stop_all(&self) {
        let all: Vec<Running> = self.lock().drain().map(|(_, running)| running).collect();
        for running in all {
            running.proxy.shutdown().await;
        }
    }
}

impl LoadBalancers {
    /// The proxy's target for an ELBv2 target id and port.
    fn resolve_target(
        &self,
        target_group_arn: &str,
        target_id: &str,
        port_number: i32,
    ) -> Option<Target> {
        let resolved = self
            .lock_targets()
            .get(target_group_arn)
            .into_iter()
            .flatten()
            .find(|resolved| resolved.id == target_id && resolved.port == port_number)
            .map(|resolved| resolved.target);
        match resolved {
            Some(target) => Some(target),
            // A target the registry never resolved: an address names itself.
            None => Some(Target {
                id: target_id.parse().ok()?,
                port: u16::try_from(port_number).ok()?,
            }),
        }
    }
}

impl elbv2::TargetHealthSource for LoadBalancers {
    fn target_health(
        &self,
        target_group_arn: &str,
        target_id: &str,
        port_number: i32,
    ) -> Option<elbv2::ObservedTargetHealth> {
        let target = self.resolve_target(target_group_arn, target_id, port_number)?;
        let running = self.lock();
        running.values().find_map(|running| {
            let health = running.proxy.target_health(target_group_arn, target)?;
            observed(health)
        })
    }

    fn anomaly_detection(
        &self,
        target_group_arn: &str,
        target_id: &str,
        port_number: i32,
    ) -> Option<elbv2::ObservedAnomaly> {
        let target = self.resolve_target(target_group_arn, target_id, port_number)?;
        let running = self.lock();
        running.values().find_map(|running| {
            let anomaly = running.proxy.target_anomaly(target_group_arn, target)?;
            Some(elbv2::ObservedAnomaly {
                anomalous: anomaly.result == AnomalyResult::Anomalous,
                mitigation_in_effect: anomaly.mitigation_in_effect,
            })
        })
    }

    fn data_plane_targets(&self, target_group_arn: &str) -> Vec<(String, i32)> {
        let served = self.proxy_targets(target_group_arn);
        let known = self
            .lock_targets()
            .get(target_group_arn)
            .cloned()
            .unwrap_or_default();
        target_ids(&known, &served)
    }
}

/// The resolved targets after a new snapshot: the snapshot's, plus the previous entries it
/// no longer has whose target `still_in_proxy` (a deregistered target draining).
fn merge_resolved_targets(
    previous: ResolvedTargets,
    mut current: ResolvedTargets,
    still_in_proxy: impl Fn(&str, Target) -> bool,
) -> ResolvedTargets {
    for (arn, entries) in previous {
        let kept: Vec<ResolvedTarget> = entries
            .into_iter()
            .filter(|entry| {
                !current
                    .get(&arn)
                    .is_some_and(|entries| entries.contains(entry))
                    && still_in_proxy(&arn, entry.target)
            })
            .collect();
        if !kept.is_empty() {
            current.entry(arn).or_default().extend(kept);
        }
    }
    current
}

/// The ELBv2 ids and ports of the proxy's `served` targets: every known entry resolved to
/// one (several ids may share an address and port), or the address itself.
fn target_ids(known: &[ResolvedTarget], served: &[Target]) -> Vec<(String, i32)> {
    let mut ids = Vec::new();
    for &target in served {
        let before = ids.len();
        ids.extend(
            known
                .iter()
                .filter(|entry| entry.target == target)
                .map(|entry| (entry.id.clone(), entry.port)),
        );
        if ids.len() == before {
            ids.push((target.id.to_string(), i32::from(target.port)));
        }
    }
    ids
}

/// The proxy's health in ELBv2's terms; `unused` (the proxy does not serve the target) is no
/// observation.
fn observed(health: load_balancer::TargetHealth) -> Option<elbv2::ObservedTargetHealth> {
    let state = match health.state {
        TargetHealthState::Initial => elbv2::TargetHealthState::Initial,
        TargetHealthState::Healthy => elbv2::TargetHealthState::Healthy,
        TargetHealthState::Unhealthy => elbv2::TargetHealthState::Unhealthy,
        TargetHealthState::Draining => elbv2::TargetHealthState::Draining,
        TargetHealthState::Unused => return None,
    };
    Some(elbv2::ObservedTargetHealth {
        state,
        reason: health.reason.map(|reason| reason.as_elbv2().to_string()),
        description: health.description,
    })
}

/// Keeps `registry` serving what the store says until `shutdown`, then stops every proxy.
/// Listeners bind on `bind_ip`. A load balancer whose proxy cannot start is logged and
/// retried on the next change or tick; the node keeps running.
pub async fn run(
    registry: Arc<LoadBalancers>,
    store: Arc<dyn store::Store>,
    bind_ip: IpAddr,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use futures::StreamExt as _;
    tokio::pin!(shutdown);
    let options = ProxyOptions {
        bind_ip,
        ..ProxyOptions::default()
    };
    let prefix = elbv2::data_plane::RECORDS_PREFIX;
    let mut changes: Option<store::WatchStream> = None;
    loop {
        if changes.is_none() {
            match store.watch(prefix, &store::prefix_end(prefix), 0).await {
                Ok(stream) => changes = Some(stream),
                Err(err) => {
                    tracing::warn!(%err, "the load balancer controller cannot watch the store")
                }
            }
        }
        match elbv2::data_plane::data_plane(&*store).await {
            Ok(data_plane) => registry.apply(data_plane, &options).await,
            Err(err) => {
                tracing::warn!(%err, "cannot read the load balancer configurations; retrying")
            }
        }
        let next = async {
            match changes.as_mut() {
                Some(stream) => stream.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(RESYNC_INTERVAL) => {}
            event = next => match event {
                Some(Ok(_)) => tokio::time::sleep(CHANGE_DEBOUNCE).await,
                Some(Err(_)) | None => changes = None,
            },
        }
        // Take whatever else arrived meanwhile: the next pass reads it all.
        if let Some(stream) = changes.as_mut() {
            while let Some(Some(_)) = futures::FutureExt::now_or_never(stream.next()) {}
        }
    }
    registry.stop_all().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use load_balancer::TargetHealthReason;

    #[test]
    fn health_in_elbv2_terms() {
        let unhealthy = load_balancer::TargetHealth {
            state: TargetHealthState::Unhealthy,
            reason: Some(TargetHealthReason::TargetResponseCodeMismatch),
            description: Some("Health checks failed with these codes: [500]".into()),
        };
        assert_eq!(
            observed(unhealthy),
            Some(elbv2::ObservedTargetHealth {
                state: elbv2::TargetHealthState::Unhealthy,
                reason: Some("Target.ResponseCodeMismatch".into()),
                description: Some("Health checks failed with these codes: [500]".into()),
            })
        );
        let unused = load_balancer::TargetHealth {
            state: TargetHealthState::Unused,
            reason: Some(TargetHealthReason::TargetNotRegistered),
            description: None,
        };
        assert_eq!(observed(unused), None);
    }

    #[test]
    fn without_proxies_nothing_is_observed() {
        let registry = LoadBalancers::new();
        let source: &dyn elbv2::TargetHealthSource = &registry;
        assert_eq!(source.target_health("arn", "10.0.0.1", 80), None);
        assert_eq!(source.target_health("arn", "i-123", 80), None);
        assert_eq!(source.data_plane_targets("arn"), vec![]);
        assert_eq!(source.anomaly_detection("arn", "10.0.0.1", 80), None);
    }

    fn resolved(id: &str, port: u16, address: &str) -> ResolvedTarget {
        ResolvedTarget {
            id: id.to_string(),
            port: i32::from(port),
            target: Target {
                id: address.parse().unwrap(),
                port,
            },
        }
    }

    #[test]
    fn deregistered_targets_stay_known_while_a_proxy_drains_them() {
        let previous = ResolvedTargets::from([
            (
                "tg".to_string(),
                vec![
                    resolved("i-1", 80, "10.0.0.1"),
                    resolved("i-2", 80, "10.0.0.2"),
                    resolved("i-3", 80, "10.0.0.3"),
                ],
            ),
            ("gone".to_string(), vec![resolved("i-9", 80, "10.0.0.9")]),
        ]);
        let current =
            ResolvedTargets::from([("tg".to_string(), vec![resolved("i-1", 80, "10.0.0.1")])]);
        // The proxy still drains i-2; i-3 and the group "gone" are over.
        let merged = merge_resolved_targets(previous, current, |arn, target| {
            arn == "tg" && target.id.to_string() == "10.0.0.2"
        });
        assert_eq!(
            merged,
            ResolvedTargets::from([(
                "tg".to_string(),
                vec![
                    resolved("i-1", 80, "10.0.0.1"),
                    resolved("i-2", 80, "10.0.0.2")
                ]
            )])
        );
    }

    #[test]
    fn proxy_targets_are_named_by_their_ids() {
        let known = vec![
            resolved("i-1", 8080, "127.0.0.1"),
            resolved("i-2", 8080, "127.0.0.1"),
            resolved("i-3", 9090, "127.0.0.1"),
        ];
        let served = [
            Target {
                id: "127.0.0.1".parse().unwrap(),
                port: 8080,
            },
            Target {
                id: "10.0.0.5".parse().unwrap(),
                port: 80,
            },
        ];
        assert_eq!(
            target_ids(&known, &served),
            vec![
                ("i-1".to_string(), 8080),
                ("i-2".to_string(), 8080),
                ("10.0.0.5".to_string(), 80)
            ]
        );
    }
}
