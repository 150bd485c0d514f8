//! RegisterTargets, DeregisterTargets, DescribeTargetHealth, and the seam through which the
//! data plane reports what its health checks saw.

use api::{ApiError, RequestContext};
use elbv2_wire::{
    DeregisterTargetsInput, DeregisterTargetsOutput, DescribeTargetHealthInput,
    DescribeTargetHealthOutput, RegisterTargetsInput, RegisterTargetsOutput, TargetDescription,
    TargetHealth, TargetHealthDescription,
};

use crate::records::{self, TargetGroupRecord, TargetRecord, Write};
use crate::{error, reject_unsupported, validation, Elbv2};

/// A target state the data plane observed (ELBv2's `TargetHealthStateEnum` values it can
/// produce).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetHealthState {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
}

impl TargetHealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealthState::Initial => "initial",
            TargetHealthState::Healthy => "healthy",
            TargetHealthState::Unhealthy => "unhealthy",
            TargetHealthState::Draining => "draining",
        }
    }
}

/// What the data plane knows about one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTargetHealth {
    pub state: TargetHealthState,
    /// An ELBv2 reason code, e.g. `Target.ResponseCodeMismatch`.
    pub reason: Option<String>,
    pub description: Option<String>,
}

/// The data plane's view of target health (implemented by the load balancer proxy).
pub trait TargetHealthSource: Send + Sync + 'static {
    /// `None` when the data plane has not checked this target (yet).
    fn target_health(
        &self,
        target_group_arn: &str,
        target_id: &str,
        port_number: i32,
    ) -> Option<ObservedTargetHealth>;
}

fn health(state: &str, reason: Option<&str>, description: &str) -> TargetHealth {
    TargetHealth {
        state: Some(state.to_string()),
        reason: reason.map(str::to_string),
        description: Some(description.to_string()),
    }
}

impl Elbv2 {
    fn resolve_targets(
        group: &TargetGroupRecord,
        targets: Vec<TargetDescription>,
    ) -> Result<Vec<TargetRecord>, ApiError> {
        let mut resolved = Vec::new();
        for target in targets {
            reject_unsupported(&[
                (
                    "Targets.member.N.AvailabilityZone",
                    target.availability_zone.is_some(),
                ),
                (
                    "Targets.member.N.QuicServerId",
                    target.quic_server_id.is_some(),
                ),
            ])?;
            let id = target.id.unwrap_or_default();
            if group.target_type == "ip" && id.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(error(
                    "InvalidTarget",
                    format!("The IP address '{id}' is not a valid IPv4 address"),
                ));
            }
            if id.is_empty() {
                return Err(error("InvalidTarget", "A target ID cannot be empty"));
            }
            let port = target.port.unwrap_or(group.port);
            if !(1..=65535).contains(&port) {
                return Err(validation(format!(
                    "Target port {port} must be between 1 and 65535"
                )));
            }
            resolved.push(TargetRecord { id, port });
        }
        Ok(resolved)
    }

    async fn update_targets(
        &self,
        ctx: &RequestContext,
        arn: &str,
        targets: Vec<TargetDescription>,
        register: bool,
    ) -> Result<(), ApiError> {
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let mut group = self.find_target_group(ctx, arn).await?;
            let resolved = Self::resolve_targets(&group.value, targets.clone())?;
            for target in resolved {
                if register {
                    group.value.targets.insert(target);
                } else if !group.value.targets.remove(&target) {
                    return Err(error(
                        "InvalidTarget",
                        format!("The target '{}' on port {} is not registered with target group '{arn}'", target.id, target.port),
                    ));
                }
            }
            let key = records::target_group_key(&ctx.region, &group.value.name);
            if Write::new()
                .expect(&key, group.mod_revision)
                .put(&key, &group.value)
                .commit(self.store())
                .await?
            {
                return Ok(());
            }
        }
        Err(records::too_much_contention("target groups"))
    }

    pub(crate) async fn register_targets(
        &self,
        ctx: &RequestContext,
        request: RegisterTargetsInput,
    ) -> Result<RegisterTargetsOutput, ApiError> {
        let arn = request.target_group_arn.unwrap_or_default();
        self.update_targets(ctx, &arn, request.targets.unwrap_or_default(), true)
            .await?;
        Ok(RegisterTargetsOutput {})
    }

    /// Deregistered targets leave the group at once: Berth's data plane does not drain yet,
    /// so no `draining` state is reported for them.
    pub(crate) async fn deregister_targets(
        &self,
        ctx: &RequestContext,
        request: DeregisterTargetsInput,
    ) -> Result<DeregisterTargetsOutput, ApiError> {
        let arn = request.target_group_arn.unwrap_or_default();
        self.update_targets(ctx, &arn, request.targets.unwrap_or_default(), false)
            .await?;
        Ok(DeregisterTargetsOutput {})
    }

    /// Reports only what is known: `unused` for unregistered targets and groups no listener
    /// uses, `unavailable` when health checks are disabled, the data plane's observation when
    /// it has one, and otherwise `unavailable` saying that no health check has run.
    pub(crate) async fn describe_target_health(
        &self,
        ctx: &RequestContext,
        request: DescribeTargetHealthInput,
    ) -> Result<DescribeTargetHealthOutput, ApiError> {
        reject_unsupported(&[("Include", request.include.is_some())])?;
        let arn = request.target_group_arn.unwrap_or_default();
        let group = self.find_target_group(ctx, &arn).await?.value;
        let targets: Vec<(TargetRecord, bool)> = match request.targets {
            Some(asked) => Self::resolve_targets(&group, asked)?
                .into_iter()
                .map(|target| {
                    let registered = group.targets.contains(&target);
                    (target, registered)
                })
                .collect(),
            None => group
                .targets
                .iter()
                .map(|target| (target.clone(), true))
                .collect(),
        };
        let descriptions = targets
            .into_iter()
            .map(|(target, registered)| {
                let target_health = if !registered {
                    health("unused", Some("Target.NotRegistered"), "Target is not registered to the target group")
                } else if group.used_by_listeners.is_empty() {
                    health("unused", Some("Target.NotInUse"), "Target group is not configured to receive traffic from the load balancer")
                } else if !group.health_check.enabled {
                    health("unavailable", Some("Target.HealthCheckDisabled"), "Health checks are disabled")
                } else {
                    match self.health.as_ref().and_then(|source| source.target_health(&arn, &target.id, target.port)) {
                        Some(observed) => TargetHealth {
                            state: Some(observed.state.as_str().to_string()),
                            reason: observed.reason,
                            description: observed.description,
                        },
                        None => health(
                            "unavailable",
                            Some("Elb.InternalError"),
                            "No health check has run: Berth's load balancer data plane has not checked this target",
                        ),
                    }
                };
                TargetHealthDescription {
                    target: Some(TargetDescription {
                        id: Some(target.id),
                        port: Some(target.port),
                        ..Default::default()
                    }),
                    health_check_port: Some(if group.health_check.port == "traffic-port" {
                        target.port.to_string()
                    } else {
                        group.health_check.port.clone()
                    }),
                    target_health: Some(target_health),
                    ..Default::default()
                }
            })
            .collect();
        Ok(DescribeTargetHealthOutput {
            target_health_descriptions: Some(descriptions),
        })
    }
}
