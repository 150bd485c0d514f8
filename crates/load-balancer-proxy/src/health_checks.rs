//! Active HTTP health checks of one target group.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Uri};
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use load_balancer::{HealthCheck, HealthCheckOutcome, Target, TargetGroup};
use tokio::sync::watch;

use crate::clock;
use crate::proxy::GroupRuntime;

type HealthCheckClient = Client<HttpConnector, Empty<Bytes>>;

/// Checks every registered, non-draining target once per interval (the
/// first round at once) until aborted; follows configuration changes.
pub(crate) async fn run(group: Arc<GroupRuntime>, mut config: watch::Receiver<TargetGroup>) {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    // Every check opens its own connection, as ALB's do.
    let client: HealthCheckClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    loop {
        let health_check = config.borrow_and_update().health_check.clone();
        let targets = group.health_check_targets();
        for target in targets {
            let client = client.clone();
            let group = Arc::clone(&group);
            let health_check = health_check.clone();
            tokio::spawn(async move {
                let outcome = check(&client, &health_check, target).await;
                let now_ms = clock::now_ms();
                group.update_all(|state| state.record_health_check(target, outcome, now_ms));
            });
        }
        let interval = Duration::from_secs(u64::from(health_check.interval_seconds));
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = config.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

async fn check(
    client: &HealthCheckClient,
    health_check: &HealthCheck,
    target: Target,
) -> HealthCheckOutcome {
    let port = health_check.port.for_target(&target);
    let authority = std::net::SocketAddr::new(target.id, port);
    let Ok(uri) = Uri::try_from(format!("http://{authority}{}", health_check.path)) else {
        return HealthCheckOutcome::ConnectionFailed;
    };
    let request = Request::get(uri)
        .header(header::HOST, authority.to_string())
        .header(header::USER_AGENT, "ELB-HealthChecker/2.0")
        .body(Empty::new());
    let Ok(request) = request else {
        return HealthCheckOutcome::ConnectionFailed;
    };
    let timeout = Duration::from_secs(u64::from(health_check.timeout_seconds));
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_elapsed) => HealthCheckOutcome::Timeout,
        Ok(Err(_)) => HealthCheckOutcome::ConnectionFailed,
        Ok(Ok(response)) => {
            let status_code = response.status().as_u16();
            if health_check.matcher.matches(status_code) {
                HealthCheckOutcome::Passed
            } else {
                HealthCheckOutcome::ResponseCodeMismatch { status_code }
            }
        }
    }
}
