//! CloudWatch's background work: alarm evaluation, the cluster metrics pass, the load
//! balancers' traffic, metric retention and alarm history expiry.

use std::sync::Arc;
use std::time::Duration;

use crate::clock;

/// How often alarms are checked for a closed period: the evaluation lag is at most this.
const ALARM_TICK: Duration = Duration::from_millis(250);
/// How often the cluster pass publishes reservations and Container Insights counts, and the
/// load balancers' traffic is published (the agents report usage at the same rate).
const CLUSTER_METRICS_INTERVAL: Duration =
    Duration::from_millis(model::agent_metrics::REPORT_INTERVAL_MS as u64);
/// How often expired metric buckets and alarm history are deleted (reads never return
/// data past its retention in between).
const RETENTION_INTERVAL: Duration = Duration::from_secs(600);

pub async fn run(
    cloudwatch: cloudwatch::CloudWatch,
    store: Arc<dyn store::Store>,
    publisher: cloudwatch::Publisher,
    load_balancers: Arc<crate::load_balancers::LoadBalancers>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let evaluator = cloudwatch::AlarmEvaluator::new(cloudwatch.clone());
    let mut alarm_tick = tokio::time::interval(ALARM_TICK);
    alarm_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut cluster_tick = tokio::time::interval(CLUSTER_METRICS_INTERVAL);
    cluster_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut retention_tick = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        tokio::select! {
            _ = alarm_tick.tick() => match evaluator.pass(clock::now_ms()).await {
                Ok(pass) if pass.state_changes > 0 => {
                    tracing::info!(evaluated = pass.evaluated, state_changes = pass.state_changes, "alarms evaluated");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "alarm evaluation pass failed"),
            },
            _ = cluster_tick.tick() => {
                let now_ms = clock::now_ms();
                if let Err(err) = cloudwatch::publish_cluster_metrics(&*store, &publisher, now_ms).await {
                    tracing::warn!(%err, "cluster metrics pass failed");
                }
                let samples = load_balancers
                    .take_traffic_reports()
                    .iter()
                    .flat_map(|(arn, report)| cloudwatch::traffic_samples(arn, report, now_ms))
                    .collect();
                if let Err(err) = publisher.publish(samples).await {
                    tracing::warn!(%err, "publishing load balancer metrics failed");
                }
            }
            _ = retention_tick.tick() => {
                let metrics = Arc::clone(cloudwatch.metric_store());
                let now_ms = clock::now_ms();
                match tokio::task::spawn_blocking(move || metrics.apply_retention(now_ms)).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(buckets)) => tracing::info!(buckets, "expired metric data deleted"),
                    Ok(Err(err)) => tracing::warn!(%err, "metric retention pass failed"),
                    Err(err) => tracing::warn!(%err, "metric retention task failed"),
                }
                if let Err(err) = evaluator.expire_history(now_ms).await {
                    tracing::warn!(%err, "alarm history expiry failed");
                }
            }
            () = &mut shutdown => break,
        }
    }
}
