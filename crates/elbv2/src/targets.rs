//! RegisterTargets, DeregisterTargets, DescribeTargetHealth, and the seam through which the
//! data plane reports what its health checks saw.
//!
//! A deregistered target leaves the record at once; the data plane keeps it draining (no new
//! requests, those in flight finish) until nothing is in flight or the group's
//! `deregistration_delay.timeout_seconds` ends, and DescribeTargetHealth lists it meanwhile as
//! `draining` / `Target.DeregistrationInProgress`.
//!
//! The ids of an `instance` group are container instances' `ec2InstanceId`s: RegisterTargets
//! accepts only ids of ACTIVE or DRAINING container instances of the region, and the data
//! plane serves them at their reported address (see [`crate::data_plane`]).

use api::{ApiError, RequestContext};
use elbv2_wire::{
    AnomalyDetection, DeregisterTargetsInput, DeregisterTargetsOutput, DescribeTargetHealthInput,
    DescribeTargetHealthOutput, RegisterTargetsInput, RegisterTargetsOutput, TargetDescription,
    TargetHealth, TargetHealthDescription,
};

use crate::data_plane::{InstanceResolution, Instances};
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

/// What the data plane's automatic target weights decided for a target of a `weighted_random`
/// group (DescribeTargetHealth's `AnomalyDetection`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedAnomaly {
    /// `Result`: `anomalous` rather than `normal`.
    pub anomalous: bool,
    /// `MitigationInEffect`: `yes` rather than `no`.
    pub mitigation_in_effect: bool,
}

impl ObservedAnomaly {
    fn to_wire(self) -> AnomalyDetection {
        let result = if self.anomalous {
            "anomalous"
        } else {
            "normal"
        };
        let mitigation = if self.mitigation_in_effect {
            "yes"
        } else {
            "no"
        };
        AnomalyDetection {
            result: Some(result.to_string()),
            mitigation_in_effect: Some(mitigation.to_string()),
        }
    }
}

/// The data plane's view of target health (implemented by the load balancer proxy).
/// Targets are named as ELBv2 names them: an IP address or an `ec2InstanceId`, and a port.
pub trait TargetHealthSource: Send + Sync + 'static {
    /// `None` when the data plane has not checked this target (yet), or no longer serves it.
    fn target_health(
        &self,
        target_group_arn: &str,
        target_id: &str,
        port_number: i32,
    ) -> Option<ObservedTargetHealth>;

    /// Every target the data plane still has for the group, by id and port: the registered
    /// ones it serves and deregistered ones still draining.
    fn data_plane_targets(&self, target_group_arn: &str) -> Vec<(String, i32)>;

    /// Anomaly detection for one target: `None` when the data plane has none for it (its
    /// group is not `weighted_random`, or the target is not served).
    fn anomaly_detection(
        &self,
        _target_group_arn: &str,
        _target_id: &str,
        _port_number: i32,
    ) -> Option<ObservedAnomaly> {
        None
    }
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

    /// Container instances of the region, for resolving `instance` targets.
    async fn instances(&self, ctx: &RequestContext) -> Result<Instances, ApiError> {
        let mut instances = Instances::default();
        instances.add_region(self.store(), &ctx.region).await?;
        Ok(instances)
    }

    /// An `instance` group takes only ACTIVE or DRAINING container instances, as ELBv2 takes
    /// only running EC2 instances.
    pub(crate) async fn register_targets(
        &self,
        ctx: &RequestContext,
        request: RegisterTargetsInput,
    ) -> Result<RegisterTargetsOutput, ApiError> {
        let arn = request.target_group_arn.unwrap_or_default();
        let targets = request.targets.unwrap_or_default();
        let group = self.find_target_group(ctx, &arn).await?;
        if group.value.target_type == "instance" {
            let instances = self.instances(ctx).await?;
            let not_running: Vec<String> = targets
                .iter()
                .filter_map(|target| target.id.as_deref())
                .filter(|id| {
                    matches!(
                        instances.resolve(&ctx.region, id),
                        InstanceResolution::Unknown | InstanceResolution::NotRunning(_)
                    )
                })
                .map(|id| format!("'{id}'"))
                .collect();
            if !not_running.is_empty() {
                return Err(error(
                    "InvalidTarget",
                    format!(
                        "The following targets are not in a running state and cannot be \
                         registered: {}",
                        not_running.join(", ")
                    ),
                ));
            }
        }
        self.update_targets(ctx, &arn, targets, true).await?;
        Ok(RegisterTargetsOutput {})
    }

    /// Deregistered targets leave the record at once; the data plane drains them.
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

    /// Reports only what is known: `unused` for unregistered targets, groups no listener or
    /// rule uses and `instance` targets the data plane cannot serve; `draining` for
    /// deregistered targets the data plane still drains; `unavailable` when health checks are
    /// disabled; the data plane's observation when it has one; and otherwise `unavailable`
    /// saying that no health check has run.
    pub(crate) async fn describe_target_health(
        &self,
        ctx: &RequestContext,
        request: DescribeTargetHealthInput,
    ) -> Result<DescribeTargetHealthOutput, ApiError> {
        // `Include` values are checked against the model's enum by the wire layer.
        let include_anomaly = request.include.as_ref().is_some_and(|include| {
            include
                .iter()
                .any(|option| option == "AnomalyDetection" || option == "All")
        });
        let arn = request.target_group_arn.unwrap_or_default();
        let group = self.find_target_group(ctx, &arn).await?.value;
        let observe = |target: &TargetRecord| {
            self.health
                .as_ref()
                .and_then(|source| source.target_health(&arn, &target.id, target.port))
        };
        let draining = |target: &TargetRecord| {
            observe(target).is_some_and(|observed| observed.state == TargetHealthState::Draining)
        };
        // (target, registered)
        let targets: Vec<(TargetRecord, bool)> = match request.targets {
            Some(asked) => Self::resolve_targets(&group, asked)?
                .into_iter()
                .map(|target| {
                    let registered = group.targets.contains(&target);
                    (target, registered)
                })
                .collect(),
            None => {
                let mut all: Vec<(TargetRecord, bool)> = group
                    .targets
                    .iter()
                    .map(|target| (target.clone(), true))
                    .collect();
                let mut leaving: Vec<TargetRecord> = self
                    .health
                    .as_ref()
                    .map(|source| source.data_plane_targets(&arn))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(id, port)| TargetRecord { id, port })
                    .filter(|target| !group.targets.contains(target) && draining(target))
                    .collect();
                leaving.sort();
                leaving.dedup();
                all.extend(leaving.into_iter().map(|target| (target, false)));
                all
            }
        };
        let instances = if group.target_type == "instance" {
            Some(self.instances(ctx).await?)
        } else {
            None
        };
        let descriptions = targets
            .into_iter()
            .map(|(target, registered)| {
                let not_served = instances
                    .as_ref()
                    .and_then(|instances| instances.resolve(&ctx.region, &target.id).description());
                let target_health = if !registered {
                    if draining(&target) {
                        deregistration_in_progress()
                    } else {
                        health("unused", Some("Target.NotRegistered"), "Target is not registered to the target group")
                    }
                } else if !group.in_use() {
                    health("unused", Some("Target.NotInUse"), "Target group is not configured to receive traffic from the load balancer")
                } else if let Some(description) = not_served {
                    health("unused", Some("Target.InvalidState"), &description)
                } else {
                    match observe(&target) {
                        Some(observed) if observed.state == TargetHealthState::Draining => {
                            deregistration_in_progress()
                        }
                        _ if !group.health_check.enabled => health(
                            "unavailable",
                            Some("Target.HealthCheckDisabled"),
                            "Health checks are disabled",
                        ),
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
                let anomaly_detection = self
                    .health
                    .as_ref()
                    .filter(|_| include_anomaly && registered)
                    .and_then(|source| source.anomaly_detection(&arn, &target.id, target.port))
                    .map(ObservedAnomaly::to_wire);
                TargetHealthDescription {
                    anomaly_detection,
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

fn deregistration_in_progress() -> TargetHealth {
    health(
        "draining",
        Some("Target.DeregistrationInProgress"),
        "Target deregistration is in progress",
    )
}
