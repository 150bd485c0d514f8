//! CloudWatch alarm actions that name scaling policies. The controller is level-triggered: it
//! reads every policy's alarms on each pass, so an action only wakes it early (the decision
//! is made from the alarm's state, not from the action having run).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

/// The [`cloudwatch::AlarmActionTarget`] for scaling policy ARNs
/// (`arn:aws:autoscaling:<region>:<account>:scalingPolicy:<id>:resource/<namespace>/<resource
/// id>:policyName/<name>`).
#[derive(Clone, Default)]
pub struct PolicyActions {
    wake: Arc<Notify>,
}

impl PolicyActions {
    pub fn new() -> Self {
        PolicyActions::default()
    }

    /// What the controller waits on between passes.
    pub(crate) fn wake(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }
}

/// A scaling policy ARN's parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PolicyArn<'a> {
    pub region: &'a str,
    pub service_namespace: &'a str,
    pub resource_id: &'a str,
    pub policy_name: &'a str,
}

pub(crate) fn parse_policy_arn(arn: &str) -> Option<PolicyArn<'_>> {
    let rest = arn.strip_prefix("arn:aws:autoscaling:")?;
    let (region, rest) = rest.split_once(':')?;
    let (_account, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("scalingPolicy:")?;
    let (_id, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("resource/")?;
    let (resource, policy_name) = rest.rsplit_once(":policyName/")?;
    let (service_namespace, resource_id) = resource.split_once('/')?;
    if region.is_empty() || policy_name.is_empty() || resource_id.is_empty() {
        return None;
    }
    Some(PolicyArn {
        region,
        service_namespace,
        resource_id,
        policy_name,
    })
}

#[async_trait]
impl cloudwatch::AlarmActionTarget for PolicyActions {
    fn accepts(&self, arn: &str) -> bool {
        parse_policy_arn(arn).is_some()
    }

    async fn execute(
        &self,
        arn: &str,
        region: &str,
        _alarm_name: &str,
        _state: &str,
        _now_ms: i64,
    ) -> Result<(), String> {
        let Some(policy) = parse_policy_arn(arn) else {
            return Err(format!("Invalid scaling policy ARN: {arn}"));
        };
        if policy.region != region {
            return Err(format!(
                "The scaling policy {arn} is not in the alarm's region {region}"
            ));
        }
        // The next pass reads the alarm's state and decides; waking it now is all an
        // action does.
        self.wake.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_arns_parse() {
        let arn = "arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:\
                   6d8972f3-efc8-437c-92d1-6270f29a66e7:resource/ecs/service/default/web:\
                   policyName/cpu-tracking";
        assert_eq!(
            parse_policy_arn(arn),
            Some(PolicyArn {
                region: "us-east-1",
                service_namespace: "ecs",
                resource_id: "service/default/web",
                policy_name: "cpu-tracking",
            })
        );
        for bad in [
            "arn:aws:sns:us-east-1:000000000000:topic",
            "arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:id:resource/ecs",
            "arn:aws:autoscaling::000000000000:scalingPolicy:id:resource/ecs/x:policyName/p",
        ] {
            assert_eq!(parse_policy_arn(bad), None, "{bad}");
        }
    }
}
