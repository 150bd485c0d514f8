//! ELBv2 target groups as the ECS service scheduler uses them
//! ([`api::load_balancing::TargetGroups`]): the records it registers service
//! tasks in, over the same store and with the same compare-and-swap writes
//! as RegisterTargets and DeregisterTargets, and the data plane's health
//! checks of those targets.

use std::sync::Arc;

use api::load_balancing::{TargetGroupSummary, TargetGroups, TargetObservation};
use api::ApiError;
use async_trait::async_trait;
use model::task::LoadBalancerTarget;
use store::Store;

use crate::records::{self, TargetGroupRecord, TargetRecord, Versioned, Write};
use crate::target_groups::DEREGISTRATION_DELAY;
use crate::{TargetHealthSource, TargetHealthState};

/// ALB's default `deregistration_delay.timeout_seconds`.
const DEFAULT_DEREGISTRATION_DELAY_SECONDS: i64 = 300;

pub struct ServiceTargets {
    store: Arc<dyn Store>,
    health: Option<Arc<dyn TargetHealthSource>>,
}

impl ServiceTargets {
    /// `health`: the data plane's health checks (none: targets are never
    /// observed, so registered tasks stay unknown and draining waits out
    /// the deregistration delay).
    pub fn new(store: Arc<dyn Store>, health: Option<Arc<dyn TargetHealthSource>>) -> Self {
        ServiceTargets { store, health }
    }

    async fn load(
        &self,
        region: &str,
        arn: &str,
    ) -> Result<Option<Versioned<TargetGroupRecord>>, ApiError> {
        let Some(name) = target_group_name(arn) else {
            return Ok(None);
        };
        let found: Option<Versioned<TargetGroupRecord>> =
            records::get(&*self.store, &records::target_group_key(region, name)).await?;
        Ok(found.filter(|group| group.value.arn == arn))
    }

    /// Adds (`register`) or removes `targets` with compare-and-swap; a group
    /// that is gone is no error when removing.
    async fn update(
        &self,
        region: &str,
        arn: &str,
        targets: &[LoadBalancerTarget],
        register: bool,
    ) -> Result<(), ApiError> {
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let Some(mut group) = self.load(region, arn).await? else {
                if register {
                    return Err(crate::error(
                        "TargetGroupNotFound",
                        format!("Target group '{arn}' not found"),
                    ));
                }
                return Ok(());
            };
            let mut changed = false;
            for target in targets {
                let record = TargetRecord {
                    id: target.target_id.clone(),
                    port: i32::from(target.port),
                };
                changed |= if register {
                    group.value.targets.insert(record)
                } else {
                    group.value.targets.remove(&record)
                };
            }
            if !changed {
                return Ok(());
            }
            let key = records::target_group_key(region, &group.value.name);
            if Write::new()
                .expect(&key, group.mod_revision)
                .put(&key, &group.value)
                .commit(&*self.store)
                .await?
            {
                return Ok(());
            }
        }
        Err(records::too_much_contention("target groups"))
    }
}

/// `arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>` → name.
fn target_group_name(arn: &str) -> Option<&str> {
    let (_, resource) = arn.split_once(":targetgroup/")?;
    let (name, _id) = resource.split_once('/')?;
    Some(name)
}

#[async_trait]
impl TargetGroups for ServiceTargets {
    async fn describe(
        &self,
        region: &str,
        target_group_arn: &str,
    ) -> Result<Option<TargetGroupSummary>, ApiError> {
        let Some(group) = self.load(region, target_group_arn).await? else {
            return Ok(None);
        };
        let group = group.value;
        let delay_seconds = group
            .attributes
            .get(DEREGISTRATION_DELAY)
            .and_then(|value| value.parse::<i64>().ok())
            .unwrap_or(DEFAULT_DEREGISTRATION_DELAY_SECONDS);
        Ok(Some(TargetGroupSummary {
            target_group_arn: group.arn,
            target_type: group.target_type,
            load_balancer_arns: group.load_balancer_arns.into_iter().collect(),
            health_check_enabled: group.health_check.enabled,
            deregistration_delay_ms: delay_seconds * 1000,
        }))
    }

    async fn register(
        &self,
        region: &str,
        target_group_arn: &str,
        targets: &[LoadBalancerTarget],
    ) -> Result<(), ApiError> {
        self.update(region, target_group_arn, targets, true).await
    }

    async fn deregister(
        &self,
        region: &str,
        target_group_arn: &str,
        targets: &[LoadBalancerTarget],
    ) -> Result<(), ApiError> {
        self.update(region, target_group_arn, targets, false).await
    }

    fn observe(&self, target: &LoadBalancerTarget) -> TargetObservation {
        let Some(observed) = self.health.as_ref().and_then(|source| {
            source.target_health(
                &target.target_group_arn,
                &target.target_id,
                i32::from(target.port),
            )
        }) else {
            return TargetObservation::NotServed;
        };
        match observed.state {
            TargetHealthState::Initial => TargetObservation::Initial,
            TargetHealthState::Healthy => TargetObservation::Healthy,
            TargetHealthState::Unhealthy => TargetObservation::Unhealthy {
                description: observed
                    .description
                    .or(observed.reason)
                    .unwrap_or_else(|| "Health checks failed".to_string()),
            },
            TargetHealthState::Draining => TargetObservation::Draining,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_read_from_the_arn() {
        assert_eq!(
            target_group_name(
                "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/50dc6c495c0c9188"
            ),
            Some("web")
        );
        assert_eq!(target_group_name("arn:aws:ecs:us-east-1:0:cluster/x"), None);
    }
}
