//! Services behind load balancers: the seam to ELBv2 target groups, and the
//! pure rules the service controller follows.
//!
//! A service's `loadBalancers` name target groups (type `instance`) and a
//! container port. When one of its tasks is RUNNING, the controller registers
//! the task's host port on its container instance in each target group and
//! records the targets on the task. A registered task asked to stop goes
//! DEACTIVATING first: its targets are deregistered, the load balancer drains
//! them, and only then do its containers stop. While registered, a task is
//! healthy for deployments only when its targets are healthy.

use async_trait::async_trait;
use deployments::TaskHealth;
use model::task::{LoadBalancerTarget, Task};

use crate::{ApiError, Ecs, RequestContext};

/// A service names at most this many target groups.
pub const MAX_SERVICE_LOAD_BALANCERS: usize = 5;

/// What the service scheduler needs of a target group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroupSummary {
    pub target_group_arn: String,
    /// `instance`, `ip`, `lambda` or `alb`.
    pub target_type: String,
    /// The load balancers whose listeners forward to the group.
    pub load_balancer_arns: Vec<String>,
    pub health_check_enabled: bool,
    /// `deregistration_delay.timeout_seconds`, in milliseconds.
    pub deregistration_delay_ms: i64,
}

/// What the load balancer's health checks say of one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetObservation {
    /// The data plane does not serve the target: not checked yet when it is
    /// registered, its draining over when it is deregistered.
    NotServed,
    Initial,
    Healthy,
    Unhealthy {
        /// ELBv2's description, e.g. `Health checks failed with these codes: [500]`.
        description: String,
    },
    Draining,
}

/// ELBv2 target groups as the ECS service scheduler uses them (the `elbv2`
/// crate implements it over the same store and the load balancer's health
/// checks).
#[async_trait]
pub trait TargetGroups: Send + Sync + 'static {
    async fn describe(
        &self,
        region: &str,
        target_group_arn: &str,
    ) -> Result<Option<TargetGroupSummary>, ApiError>;
    /// Registers targets (already registered ones are left as they are).
    async fn register(
        &self,
        region: &str,
        target_group_arn: &str,
        targets: &[LoadBalancerTarget],
    ) -> Result<(), ApiError>;
    /// Deregisters targets (ones not registered, or a group that is gone, are
    /// no error).
    async fn deregister(
        &self,
        region: &str,
        target_group_arn: &str,
        targets: &[LoadBalancerTarget],
    ) -> Result<(), ApiError>;
    fn observe(&self, target: &LoadBalancerTarget) -> TargetObservation;
}

/// A `loadBalancers` entry of a service, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceLoadBalancer {
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: u16,
}

impl ServiceLoadBalancer {
    pub fn to_wire(&self) -> ecs_wire::LoadBalancer {
        ecs_wire::LoadBalancer {
            target_group_arn: Some(self.target_group_arn.clone()),
            load_balancer_name: None,
            container_name: Some(self.container_name.clone()),
            container_port: Some(i32::from(self.container_port)),
            advanced_configuration: None,
        }
    }
}

/// A service's `loadBalancers` checked against its task definition (pure
/// part: every entry names a target group, a container of the task
/// definition and one of that container's port mappings).
pub fn parse_load_balancers(
    wire: &[ecs_wire::LoadBalancer],
    task_definition: &ecs_wire::TaskDefinition,
) -> Result<Vec<ServiceLoadBalancer>, ApiError> {
    if wire.len() > MAX_SERVICE_LOAD_BALANCERS {
        return Err(ApiError::invalid_parameter(format!(
            "loadBalancers can have at most {MAX_SERVICE_LOAD_BALANCERS} items."
        )));
    }
    if matches!(
        task_definition.network_mode,
        Some(ecs_wire::NetworkMode::None)
    ) {
        return Err(ApiError::invalid_parameter(
            "The none network mode does not support load balancers: its containers have no ports a load balancer can reach. Use the bridge or host network mode.",
        ));
    }
    let mut parsed: Vec<ServiceLoadBalancer> = Vec::new();
    for entry in wire {
        if entry.load_balancer_name.is_some() {
            return Err(ApiError::invalid_parameter(
                "loadBalancerName names a Classic Load Balancer, which Berth does not have. Use targetGroupArn with an Application Load Balancer target group.",
            ));
        }
        if entry.advanced_configuration.is_some() {
            return Err(ApiError::invalid_parameter(
                "advancedConfiguration is for blue/green deployments, which Berth does not support. Omit it.",
            ));
        }
        let target_group_arn = entry
            .target_group_arn
            .clone()
            .filter(|arn| !arn.is_empty())
            .ok_or_else(|| {
                ApiError::invalid_parameter(
                    "targetGroupArn must be specified for each load balancer.",
                )
            })?;
        let container_name = entry
            .container_name
            .clone()
            .filter(|name| !name.is_empty())
            .ok_or_else(|| ApiError::invalid_parameter("containerName can not be blank."))?;
        let container_port = entry
            .container_port
            .ok_or_else(|| ApiError::invalid_parameter("containerPort can not be blank."))?;
        let container = task_definition
            .container_definitions
            .iter()
            .flatten()
            .find(|c| c.name.as_deref() == Some(container_name.as_str()))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!(
                    "The container {container_name} does not exist in the task definition."
                ))
            })?;
        let mapped = container.port_mappings.iter().flatten().any(|mapping| {
            mapping.container_port == Some(container_port)
                && mapping
                    .protocol
                    .is_none_or(|p| p == ecs_wire::TransportProtocol::Tcp)
        });
        let port = u16::try_from(container_port).ok().filter(|_| mapped).ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "The container {container_name} did not have a container port {container_port} defined."
            ))
        })?;
        let balancer = ServiceLoadBalancer {
            target_group_arn,
            container_name,
            container_port: port,
        };
        if parsed
            .iter()
            .any(|p| p.target_group_arn == balancer.target_group_arn)
        {
            return Err(ApiError::invalid_parameter(format!(
                "The target group {} is specified more than once in loadBalancers.",
                balancer.target_group_arn
            )));
        }
        parsed.push(balancer);
    }
    Ok(parsed)
}

impl Ecs {
    /// [`parse_load_balancers`], then each target group checked in ELBv2:
    /// it exists, takes `instance` targets (the bridge and host network
    /// modes register the container instance and host port) and a load
    /// balancer's listener forwards to it.
    pub(crate) async fn checked_load_balancers(
        &self,
        ctx: &RequestContext,
        wire: &[ecs_wire::LoadBalancer],
        task_definition: &ecs_wire::TaskDefinition,
    ) -> Result<Vec<ServiceLoadBalancer>, ApiError> {
        let parsed = parse_load_balancers(wire, task_definition)?;
        if parsed.is_empty() {
            return Ok(parsed);
        }
        let Some(target_groups) = self.target_groups() else {
            return Err(ApiError::invalid_parameter(
                "loadBalancers need Berth's load balancer, which this server does not run.",
            ));
        };
        let network_mode = task_definition
            .network_mode
            .map_or("bridge", |mode| mode.as_str());
        for balancer in &parsed {
            let arn = &balancer.target_group_arn;
            let summary = target_groups
                .describe(&ctx.region, arn)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "The target group with targetGroupArn {arn} does not exist."
                    ))
                })?;
            if summary.target_type != "instance" {
                return Err(ApiError::invalid_parameter(format!(
                    "The provided target group {arn} has target type {}, which is incompatible with the {network_mode} network mode specified in the task definition.",
                    summary.target_type
                )));
            }
            if summary.load_balancer_arns.is_empty() {
                return Err(ApiError::invalid_parameter(format!(
                    "The target group with targetGroupArn {arn} does not have an associated load balancer."
                )));
            }
        }
        Ok(parsed)
    }
}

/// The targets a RUNNING task gets: for each of the service's load
/// balancers, the host port its container's `containerPort` is bound to on
/// the instance. `Err` names what is missing (the task cannot be registered).
pub fn task_targets(
    task: &Task,
    load_balancers: &[ServiceLoadBalancer],
    ec2_instance_id: &str,
) -> Result<Vec<LoadBalancerTarget>, String> {
    load_balancers
        .iter()
        .map(|lb| {
            let container = task
                .containers
                .iter()
                .find(|c| c.name == lb.container_name)
                .ok_or_else(|| format!("the task has no container {}", lb.container_name))?;
            let binding = container
                .network_bindings
                .iter()
                .find(|b| b.container_port == lb.container_port && b.protocol == "tcp")
                .ok_or_else(|| {
                    format!(
                        "container {} has no host port bound to container port {}",
                        lb.container_name, lb.container_port
                    )
                })?;
            Ok(LoadBalancerTarget {
                target_group_arn: lb.target_group_arn.clone(),
                target_id: ec2_instance_id.to_string(),
                port: binding.host_port,
            })
        })
        .collect()
}

/// The task's health for deployments: its containers' health checks and
/// the load balancer's checks of its targets together (`checked` says which
/// targets' groups have health checks and a load balancer). Any unhealthy →
/// unhealthy; anything not yet known → unknown.
pub fn combined_health(
    container_health: TaskHealth,
    targets: &[(TargetObservation, bool)],
) -> TaskHealth {
    let mut health = container_health;
    for (observation, checked) in targets {
        if !checked {
            continue;
        }
        let target = match observation {
            TargetObservation::Healthy => TaskHealth::Healthy,
            TargetObservation::Unhealthy { .. } => TaskHealth::Unhealthy,
            TargetObservation::NotServed
            | TargetObservation::Initial
            | TargetObservation::Draining => TaskHealth::Unknown,
        };
        health = match (health, target) {
            (TaskHealth::Unhealthy, _) | (_, TaskHealth::Unhealthy) => TaskHealth::Unhealthy,
            (TaskHealth::Unknown, _) | (_, TaskHealth::Unknown) => TaskHealth::Unknown,
            _ => TaskHealth::Healthy,
        };
    }
    health
}

/// A DEACTIVATING task may stop once every target's draining is over (the
/// data plane no longer serves it), or once the longest deregistration delay
/// plus `slack_ms` has passed since deregistration (the data plane is gone).
pub fn draining_finished(
    observations: &[TargetObservation],
    deregistered_at_ms: i64,
    longest_delay_ms: i64,
    slack_ms: i64,
    now_ms: i64,
) -> bool {
    observations
        .iter()
        .all(|o| *o == TargetObservation::NotServed)
        || now_ms >= deregistered_at_ms + longest_delay_ms + slack_ms
}

/// `(service web) registered 2 targets in (target-group arn:…)`.
pub fn registered_targets_message(
    service_name: &str,
    count: usize,
    target_group_arn: &str,
) -> String {
    format!(
        "(service {service_name}) registered {count} targets in (target-group {target_group_arn})"
    )
}

/// `(service web) deregistered 1 targets in (target-group arn:…)`.
pub fn deregistered_targets_message(
    service_name: &str,
    count: usize,
    target_group_arn: &str,
) -> String {
    format!("(service {service_name}) deregistered {count} targets in (target-group {target_group_arn})")
}

/// `(service web) has begun draining connections on 1 tasks.`
pub fn draining_connections_message(service_name: &str, count: usize) -> String {
    format!("(service {service_name}) has begun draining connections on {count} tasks.")
}

/// `(service web) (instance i-…) (port 32768) is unhealthy in (target-group
/// arn:…) due to (reason Health checks failed with these codes: [500]).`
pub fn unhealthy_target_message(
    service_name: &str,
    target: &LoadBalancerTarget,
    description: &str,
) -> String {
    format!(
        "(service {service_name}) (instance {}) (port {}) is unhealthy in (target-group {}) due to (reason {description}).",
        target.target_id, target.port, target.target_group_arn
    )
}

/// The beginning of [`failed_elb_health_checks_reason`].
pub const FAILED_ELB_HEALTH_CHECKS: &str = "Task failed ELB health checks in ";

/// stoppedReason of a task replaced because its target failed the load
/// balancer's health checks.
pub fn failed_elb_health_checks_reason(target_group_arn: &str) -> String {
    format!("{FAILED_ELB_HEALTH_CHECKS}(target-group {target_group_arn})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::task::NetworkBinding;

    fn observation(name: &str) -> TargetObservation {
        match name {
            "healthy" => TargetObservation::Healthy,
            "unhealthy" => TargetObservation::Unhealthy {
                description: "Health checks failed with these codes: [500]".into(),
            },
            "initial" => TargetObservation::Initial,
            "draining" => TargetObservation::Draining,
            _ => TargetObservation::NotServed,
        }
    }

    #[test]
    fn health_combines_containers_and_targets() {
        use TaskHealth::*;
        type Case = (TaskHealth, &'static [(&'static str, bool)], TaskHealth);
        let cases: &[Case] = &[
            (NoHealthCheck, &[], NoHealthCheck),
            (NoHealthCheck, &[("healthy", true)], Healthy),
            (NoHealthCheck, &[("initial", true)], Unknown),
            (NoHealthCheck, &[("not-served", true)], Unknown),
            (NoHealthCheck, &[("unhealthy", true)], Unhealthy),
            // Groups without health checks or a load balancer do not count.
            (NoHealthCheck, &[("unhealthy", false)], NoHealthCheck),
            (Healthy, &[("healthy", true), ("initial", true)], Unknown),
            (Unknown, &[("healthy", true)], Unknown),
            (Unhealthy, &[("healthy", true)], Unhealthy),
            (
                Healthy,
                &[("healthy", true), ("unhealthy", true)],
                Unhealthy,
            ),
            (Healthy, &[("healthy", true), ("healthy", true)], Healthy),
        ];
        for (container, targets, expected) in cases {
            let targets: Vec<(TargetObservation, bool)> = targets
                .iter()
                .map(|(name, checked)| (observation(name), *checked))
                .collect();
            assert_eq!(
                combined_health(*container, &targets),
                *expected,
                "{container:?} {targets:?}"
            );
        }
    }

    #[test]
    fn draining_ends_when_no_target_is_served_or_the_delay_passed() {
        let served = [observation("draining"), observation("not-served")];
        assert!(!draining_finished(&served, 1_000, 5_000, 2_000, 7_999));
        assert!(draining_finished(&served, 1_000, 5_000, 2_000, 8_000));
        let done = [observation("not-served"), observation("not-served")];
        assert!(draining_finished(&done, 1_000, 5_000, 2_000, 1_000));
        // Still shown healthy: the data plane has not seen the
        // deregistration yet.
        assert!(!draining_finished(
            &[observation("healthy")],
            1_000,
            0,
            2_000,
            2_999
        ));
    }

    #[test]
    fn targets_are_the_bound_host_ports_on_the_instance() {
        let task: Task = serde_json::from_value(serde_json::json!({
            "id": "t1", "clusterName": "default", "taskDefinitionArn": "arn", "family": "web",
            "revision": 1, "containerInstanceId": "ci", "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING", "launchType": "EC2", "cpu": null, "memory": null,
            "containers": [], "reservation": {"cpuUnits": 0, "memoryMib": 0, "tcpPorts": [], "udpPorts": []},
            "createdAtMs": 0, "version": 1
        }))
        .unwrap_or_else(|err| panic!("task json: {err}"));
        let mut task = task;
        let lb = ServiceLoadBalancer {
            target_group_arn: "tg".into(),
            container_name: "web".into(),
            container_port: 8080,
        };
        assert_eq!(
            task_targets(&task, std::slice::from_ref(&lb), "i-1"),
            Err("the task has no container web".to_string())
        );
        let container: model::task::TaskContainer = serde_json::from_value(serde_json::json!({
            "name": "web", "image": "busybox", "lastStatus": "RUNNING", "networkBindings": [],
            "essential": true
        }))
        .unwrap_or_else(|err| panic!("container json: {err}"));
        task.containers.push(container);
        assert!(task_targets(&task, std::slice::from_ref(&lb), "i-1").is_err());
        task.containers[0].network_bindings.push(NetworkBinding {
            bind_ip: "0.0.0.0".into(),
            container_port: 8080,
            host_port: 32768,
            protocol: "tcp".into(),
        });
        assert_eq!(
            task_targets(&task, &[lb], "i-1"),
            Ok(vec![LoadBalancerTarget {
                target_group_arn: "tg".into(),
                target_id: "i-1".into(),
                port: 32768,
            }])
        );
    }
}
