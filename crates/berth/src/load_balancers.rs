//! The load balancer data plane of a node: one `load-balancer-proxy` per ELBv2 load balancer,
//! kept in step with the records under `/elbv2/`, and the health its checks observe handed to
//! DescribeTargetHealth.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use load_balancer::{LoadBalancer, Target, TargetHealthState};
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

/// The running proxies by load balancer ARN.
#[derive(Default)]
pub struct LoadBalancers {
    running: Mutex<HashMap<String, Running>>,
}

impl LoadBalancers {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings the running proxies in line with `configs`: starts missing ones, sends every
    /// running one its snapshot, stops those whose load balancer is gone.
    async fn apply(&self, configs: Vec<(String, LoadBalancer)>, options: &ProxyOptions) {
        let wanted: HashMap<String, LoadBalancer> = configs.into_iter().collect();
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

impl elbv2::TargetHealthSource for LoadBalancers {
    fn target_health(
        &self,
        target_group_arn: &str,
        target_id: &str,
        port_number: i32,
    ) -> Option<elbv2::ObservedTargetHealth> {
        let id: IpAddr = target_id.parse().ok()?;
        let port = u16::try_from(port_number).ok()?;
        let target = Target { id, port };
        let running = self.lock();
        running.values().find_map(|running| {
            let health = running.proxy.target_health(target_group_arn, target)?;
            observed(health)
        })
    }
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
        match elbv2::data_plane::load_balancer_configs(&*store).await {
            Ok(configs) => registry.apply(configs, &options).await,
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
    }
}
