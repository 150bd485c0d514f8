//! Application Auto Scaling's background work: the scaling controller's passes (every
//! second, and at once when an alarm action names a policy) and the expiry of old scaling
//! activities.

use std::time::Duration;

use crate::clock;

/// The longest a decision waits for a pass: alarms change state at most every 250 ms, and
/// an alarm action wakes the controller at once.
const PASS_INTERVAL: Duration = Duration::from_secs(1);
/// How often activities past AWS's six weeks are deleted.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(600);

pub async fn run(
    service: application_autoscaling::ApplicationAutoScaling,
    controller: application_autoscaling::ScalingController,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let wake = controller.wake_signal();
    let mut pass_tick = tokio::time::interval(PASS_INTERVAL);
    pass_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut expiry_tick = tokio::time::interval(EXPIRY_INTERVAL);
    loop {
        tokio::select! {
            _ = pass_tick.tick() => {}
            () = wake.notified() => {}
            _ = expiry_tick.tick() => {
                if let Err(err) = service.expire_activities(clock::now_ms()).await {
                    tracing::warn!(%err, "scaling activity expiry failed");
                }
                continue;
            }
            () = &mut shutdown => break,
        }
        match controller.pass(clock::now_ms()).await {
            Ok(pass) if pass.scaled > 0 || pass.activities > 0 => tracing::info!(
                scaled = pass.scaled,
                activities = pass.activities,
                "scaling pass"
            ),
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "scaling pass failed"),
        }
    }
}
