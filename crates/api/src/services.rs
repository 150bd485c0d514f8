//! ECS services: CreateService, UpdateService, DeleteService,
//! DescribeServices, ListServices and the service-deployment/revision
//! operations. The scheduling state lives in `deployments::Service`; the
//! service controller (`service_controller.rs`) moves it forward.
//!
//! The operations here only create and change a service's record (with
//! compare-and-swap) and render it; launching and stopping tasks, counts,
//! events and rollout states are the controller's.
//!
//! Service deployments and revisions (ListServiceDeployments,
//! DescribeServiceDeployments, DescribeServiceRevisions) are derived from the
//! service's deployments: deployment `ecs-svc/<n>` is service deployment
//! `…:service-deployment/<cluster>/<service>/<n>` and service revision
//! `…:service-revision/<cluster>/<service>/<n>`.

use std::collections::BTreeMap;

use deployments::{
    CircuitBreaker, Deployment, DeploymentConfiguration, DeploymentOutcome, FailureThreshold,
    NewService, RolloutState, SchedulingStrategy, Service, ServiceStatus, ServiceUpdate,
    ThresholdType,
};
use ecs_wire::{
    Compatibility, CreateServiceRequest, CreateServiceResponse, DeleteServiceRequest,
    DeleteServiceResponse, DeploymentControllerType, DeploymentRolloutState,
    DescribeServiceDeploymentsRequest, DescribeServiceDeploymentsResponse,
    DescribeServiceRevisionsRequest, DescribeServiceRevisionsResponse, DescribeServicesRequest,
    DescribeServicesResponse, Failure, LaunchType, ListServiceDeploymentsRequest,
    ListServiceDeploymentsResponse, ListServicesRequest, ListServicesResponse, PropagateTags,
    ResourceManagementType, ServiceDeploymentRollbackMonitorsStatus, ServiceDeploymentStatus,
    ServiceField, TaskDefinitionStatus, UpdateServiceRequest, UpdateServiceResponse,
};
use model::arn::{id_from_reference, ArnScope, EcsArn};
use model::cluster::Cluster;
use model::tags::Tag;
use model::task_definition::TaskDefinitionReference;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::load_balancing::ServiceLoadBalancer;
use crate::records::{self, Versioned, Write, MAX_CAS_ATTEMPTS};
use crate::tasks::LaunchRequest;
use crate::{keys, pagination, placement, ApiError, Ecs, RequestContext};

/// DescribeServices takes at most this many services.
pub const MAX_DESCRIBE_SERVICES: usize = 10;
/// DescribeServiceDeployments / DescribeServiceRevisions take at most this
/// many ARNs.
pub const MAX_DESCRIBE_SERVICE_DEPLOYMENTS: usize = 20;
/// `ecs-svc/` + 19 digits: a deployment id, and the tasks' `startedBy`.
pub const DEPLOYMENT_ID_PREFIX: &str = "ecs-svc/";
/// The role ECS shows as a service's `roleArn` when no role was given: the
/// account's service-linked role.
const SERVICE_LINKED_ROLE_PATH: &str =
    "role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS";

/// One service, stored at `keys::service`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ServiceRecord {
    pub cluster_name: String,
    /// Deployments, counts, events, throttle: what the controller changes.
    pub scheduling: Service,
    /// `EC2` or `EXTERNAL`.
    pub launch_type: String,
    pub placement_constraints: Vec<ecs_wire::PlacementConstraint>,
    pub placement_strategy: Vec<ecs_wire::PlacementStrategy>,
    pub tags: Vec<Tag>,
    /// `SERVICE`, `TASK_DEFINITION` or absent (`NONE`).
    pub propagate_tags: Option<String>,
    pub enable_ecs_managed_tags: bool,
    pub role_arn: Option<String>,
    pub created_by: Option<String>,
    /// Target groups the tasks are registered in.
    #[serde(default)]
    pub load_balancers: Vec<ServiceLoadBalancer>,
    pub version: u64,
}

impl ServiceRecord {
    pub fn is_inactive(&self) -> bool {
        self.scheduling.status == ServiceStatus::Inactive
    }

    pub fn load_balancers_to_wire(&self) -> Vec<ecs_wire::LoadBalancer> {
        self.load_balancers
            .iter()
            .map(ServiceLoadBalancer::to_wire)
            .collect()
    }
}

pub(crate) fn service_not_found() -> ApiError {
    ApiError::client("ServiceNotFoundException", "Service not found.")
}

fn service_not_active() -> ApiError {
    ApiError::client("ServiceNotActiveException", "Service was not ACTIVE.")
}

fn not_idempotent() -> ApiError {
    ApiError::invalid_parameter("Creation of service was not idempotent.")
}

/// A fresh deployment id: `ecs-svc/` and 19 decimal digits, the first not
/// zero, within the int64 range (as every ECS deployment id is).
pub(crate) fn new_deployment_id() -> String {
    let number: u64 = rand::rngs::OsRng.gen_range(1_000_000_000_000_000_000..=i64::MAX as u64);
    format!("{DEPLOYMENT_ID_PREFIX}{number}")
}

/// `ecs-svc/<n>` → `<n>`: the last part of the deployment's service
/// deployment and service revision ARNs.
pub(crate) fn deployment_key(deployment_id: &str) -> &str {
    deployment_id
        .strip_prefix(DEPLOYMENT_ID_PREFIX)
        .unwrap_or(deployment_id)
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

// ---------------------------------------------------------------------------
// Validation (pure)

/// Service names: up to 255 letters, digits, hyphens and underscores.
pub(crate) fn validate_service_name(name: &str) -> Result<(), ApiError> {
    if model::names::is_valid_resource_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!(
            "Invalid service name '{name}'. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
        )))
    }
}

fn scheduling_strategy(wire: Option<ecs_wire::SchedulingStrategy>) -> SchedulingStrategy {
    match wire {
        Some(ecs_wire::SchedulingStrategy::Daemon) => SchedulingStrategy::Daemon,
        None | Some(ecs_wire::SchedulingStrategy::Replica) => SchedulingStrategy::Replica,
    }
}

fn scheduling_strategy_to_wire(strategy: SchedulingStrategy) -> ecs_wire::SchedulingStrategy {
    match strategy {
        SchedulingStrategy::Replica => ecs_wire::SchedulingStrategy::Replica,
        SchedulingStrategy::Daemon => ecs_wire::SchedulingStrategy::Daemon,
    }
}

/// `EC2` (the default) or `EXTERNAL`; the other launch types need
/// infrastructure Berth does not have.
fn service_launch_type(wire: Option<LaunchType>) -> Result<LaunchType, ApiError> {
    match wire {
        None | Some(LaunchType::Ec2) => Ok(LaunchType::Ec2),
        Some(LaunchType::External) => Ok(LaunchType::External),
        Some(other) => Err(ApiError::invalid_parameter(format!(
            "Launch type {} is not supported by Berth: tasks run on the cluster's container instances (EC2 or EXTERNAL).",
            other.as_str()
        ))),
    }
}

const DAEMON_DESIRED_COUNT: &str = "The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again";
const DAEMON_PLACEMENT_STRATEGY: &str = "The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again";
const DAEMON_CAPACITY_PROVIDER_STRATEGY: &str = "Specifying a capacity provider strategy is not supported when you create a service using the DAEMON scheduling strategy.";

/// The desired count a CreateService asks for.
fn create_desired_count(
    strategy: SchedulingStrategy,
    desired_count: Option<i32>,
) -> Result<u32, ApiError> {
    match (strategy, desired_count) {
        (SchedulingStrategy::Replica, None) => Err(ApiError::invalid_parameter(
            "desiredCount can not be blank.",
        )),
        (SchedulingStrategy::Daemon, None | Some(0)) => Ok(0),
        (SchedulingStrategy::Daemon, Some(_)) => {
            Err(ApiError::invalid_parameter(DAEMON_DESIRED_COUNT))
        }
        (SchedulingStrategy::Replica, Some(n)) => non_negative_desired_count(n),
    }
}

fn non_negative_desired_count(n: i32) -> Result<u32, ApiError> {
    u32::try_from(n).map_err(|_| {
        ApiError::invalid_parameter(format!("desiredCount must be 0 or greater; {n} was given."))
    })
}

fn health_check_grace_period_ms(seconds: Option<i32>) -> Result<Option<i64>, ApiError> {
    match seconds {
        None => Ok(None),
        Some(s) if s >= 0 => Ok(Some(i64::from(s) * 1000)),
        Some(s) => Err(ApiError::invalid_parameter(format!(
            "healthCheckGracePeriodSeconds must be 0 or greater; {s} was given."
        ))),
    }
}

/// Applies the members of a request's `deploymentConfiguration` to `base`
/// (the defaults on create, the service's current configuration on update)
/// and checks the result. Parts of the configuration that belong to
/// deployment types Berth does not run are refused, never ignored.
pub(crate) fn merge_deployment_configuration(
    wire: Option<&ecs_wire::DeploymentConfiguration>,
    base: DeploymentConfiguration,
    strategy: SchedulingStrategy,
) -> Result<DeploymentConfiguration, ApiError> {
    let Some(wire) = wire else {
        return Ok(base);
    };
    if wire.alarms.as_ref().is_some_and(|a| a.enable == Some(true)) {
        return Err(ApiError::invalid_parameter(
            "Deployment alarms (deploymentConfiguration.alarms with enable true) are not supported by Berth: it has no CloudWatch alarms. Set enable to false or omit alarms.",
        ));
    }
    if let Some(deployment_strategy) = wire.strategy {
        if deployment_strategy != ecs_wire::DeploymentStrategy::Rolling {
            return Err(ApiError::invalid_parameter(format!(
                "The {} deployment strategy is not supported by Berth yet; use ROLLING.",
                deployment_strategy.as_str()
            )));
        }
    }
    if wire.bake_time_in_minutes.is_some()
        || wire.lifecycle_hooks.as_ref().is_some_and(|h| !h.is_empty())
        || wire.linear_configuration.is_some()
        || wire.canary_configuration.is_some()
    {
        return Err(ApiError::invalid_parameter(
            "bakeTimeInMinutes, lifecycleHooks, linearConfiguration and canaryConfiguration belong to BLUE_GREEN, LINEAR and CANARY deployments, which Berth does not support yet; omit them.",
        ));
    }
    let mut config = base;
    if let Some(minimum) = wire.minimum_healthy_percent {
        if !(0..=100).contains(&minimum) {
            return Err(ApiError::invalid_parameter(format!(
                "deploymentConfiguration.minimumHealthyPercent must be between 0 and 100; {minimum} was given."
            )));
        }
        config.minimum_healthy_percent = minimum as u32;
    }
    if let Some(maximum) = wire.maximum_percent {
        if maximum < 0 {
            return Err(ApiError::invalid_parameter(format!(
                "deploymentConfiguration.maximumPercent must be 0 or greater; {maximum} was given."
            )));
        }
        config.maximum_percent = maximum as u32;
    }
    if let Some(breaker) = &wire.deployment_circuit_breaker {
        config.circuit_breaker = CircuitBreaker {
            enable: breaker.enable.unwrap_or(false),
            rollback: breaker.rollback.unwrap_or(false),
            reset_on_healthy_task: breaker.reset_on_healthy_task.unwrap_or(true),
            threshold: match &breaker.threshold_configuration {
                Some(threshold) => failure_threshold(threshold)?,
                None => FailureThreshold::default(),
            },
        };
    }
    match strategy {
        SchedulingStrategy::Replica => {
            if config.maximum_percent < 100 {
                return Err(ApiError::invalid_parameter(format!(
                    "deploymentConfiguration.maximumPercent must be at least 100 for a REPLICA service; {} was given.",
                    config.maximum_percent
                )));
            }
        }
        SchedulingStrategy::Daemon => {
            if config.maximum_percent != 100 {
                return Err(ApiError::invalid_parameter(format!(
                    "The daemon scheduling strategy only supports a maximumPercent of 100; {} was given. Remove the maximum percent value and try again.",
                    config.maximum_percent
                )));
            }
        }
    }
    if config.maximum_percent < config.minimum_healthy_percent {
        return Err(ApiError::invalid_parameter(format!(
            "deploymentConfiguration.maximumPercent ({}) must not be less than minimumHealthyPercent ({}).",
            config.maximum_percent, config.minimum_healthy_percent
        )));
    }
    Ok(config)
}

/// `deploymentCircuitBreaker.thresholdConfiguration`: both members are
/// required, and the value must be at least 1.
fn failure_threshold(
    wire: &ecs_wire::ThresholdConfiguration,
) -> Result<FailureThreshold, ApiError> {
    const MEMBER: &str = "deploymentConfiguration.deploymentCircuitBreaker.thresholdConfiguration";
    let Some(threshold_type) = wire.type_ else {
        return Err(ApiError::invalid_parameter(format!(
            "{MEMBER}.type can not be blank."
        )));
    };
    let Some(value) = wire.value else {
        return Err(ApiError::invalid_parameter(format!(
            "{MEMBER}.value can not be blank."
        )));
    };
    if value < 1 {
        return Err(ApiError::invalid_parameter(format!(
            "{MEMBER}.value must be 1 or greater; {value} was given."
        )));
    }
    Ok(FailureThreshold {
        threshold_type: match threshold_type {
            ecs_wire::ThresholdType::Count => ThresholdType::Count,
            ecs_wire::ThresholdType::BoundedPercent => ThresholdType::BoundedPercent,
            ecs_wire::ThresholdType::UnboundedPercent => ThresholdType::UnboundedPercent,
        },
        value: value as u32,
    })
}

/// A service's placement constraints and strategy, as given, after checking
/// each with the scheduler's rules.
pub(crate) fn validate_placement(
    constraints: &[ecs_wire::PlacementConstraint],
    strategies: &[ecs_wire::PlacementStrategy],
    strategy: SchedulingStrategy,
) -> Result<Vec<scheduler::PlacementConstraint>, ApiError> {
    if strategy == SchedulingStrategy::Daemon && !strategies.is_empty() {
        return Err(ApiError::invalid_parameter(DAEMON_PLACEMENT_STRATEGY));
    }
    let (parsed_constraints, _) = crate::placement::placement_from_wire(constraints, strategies)?;
    scheduler::validate_constraints(&parsed_constraints)?;
    Ok(parsed_constraints)
}

fn propagate_tags(wire: Option<PropagateTags>) -> Option<String> {
    match wire {
        None | Some(PropagateTags::None) => None,
        Some(other) => Some(other.as_str().to_string()),
    }
}

/// The request members of CreateService and UpdateService that need
/// something Berth does not have. Each is refused with a message saying so.
#[derive(Default)]
struct Unsupported<'a> {
    service_registries: Option<&'a [ecs_wire::ServiceRegistry]>,
    capacity_provider_strategy: Option<&'a [ecs_wire::CapacityProviderStrategyItem]>,
    network_configuration: bool,
    service_connect_configuration: Option<&'a ecs_wire::ServiceConnectConfiguration>,
    volume_configurations: Option<&'a [ecs_wire::ServiceVolumeConfiguration]>,
    vpc_lattice_configurations: Option<&'a [ecs_wire::VpcLatticeConfiguration]>,
    enable_execute_command: Option<bool>,
    deployment_controller: Option<&'a ecs_wire::DeploymentController>,
    platform_version: Option<&'a str>,
    availability_zone_rebalancing: Option<ecs_wire::AvailabilityZoneRebalancing>,
}

fn refuse_unsupported(
    request: &Unsupported<'_>,
    strategy: SchedulingStrategy,
) -> Result<(), ApiError> {
    let non_empty = |list: Option<usize>| list.is_some_and(|n| n > 0);
    if let Some(controller) = request.deployment_controller {
        let kind = controller.type_.unwrap_or(DeploymentControllerType::Ecs);
        if kind != DeploymentControllerType::Ecs {
            return Err(ApiError::invalid_parameter(format!(
                "The {} deployment controller is not supported by Berth; use the ECS (rolling update) deployment controller.",
                kind.as_str()
            )));
        }
    }
    if non_empty(request.capacity_provider_strategy.map(<[_]>::len)) {
        if strategy == SchedulingStrategy::Daemon {
            return Err(ApiError::invalid_parameter(
                DAEMON_CAPACITY_PROVIDER_STRATEGY,
            ));
        }
        return Err(ApiError::invalid_parameter(
            "capacityProviderStrategy is not supported by Berth yet; omit it to place the service's tasks on the cluster's container instances.",
        ));
    }
    if request.platform_version.is_some() {
        return Err(ApiError::invalid_parameter(
            "The platform version must be null when specifying an EC2 launch type.",
        ));
    }
    if non_empty(request.service_registries.map(<[_]>::len)) {
        return Err(ApiError::invalid_parameter(
            "serviceRegistries are not supported by Berth: it has no AWS Cloud Map. Omit serviceRegistries.",
        ));
    }
    if request
        .service_connect_configuration
        .is_some_and(|c| c.enabled != Some(false))
    {
        return Err(ApiError::invalid_parameter(
            "Service Connect is not supported by Berth: it has no AWS Cloud Map namespaces. Omit serviceConnectConfiguration.",
        ));
    }
    if request.network_configuration {
        return Err(ApiError::invalid_parameter(
            "networkConfiguration is not supported by Berth yet: the awsvpc network mode is not supported; use bridge, host or none and omit networkConfiguration.",
        ));
    }
    if non_empty(request.volume_configurations.map(<[_]>::len)) {
        return Err(ApiError::invalid_parameter(
            "volumeConfigurations are not supported by Berth yet.",
        ));
    }
    if non_empty(request.vpc_lattice_configurations.map(<[_]>::len)) {
        return Err(ApiError::invalid_parameter(
            "vpcLatticeConfigurations are not supported by Berth: it has no Amazon VPC Lattice.",
        ));
    }
    if request.enable_execute_command == Some(true) {
        return Err(ApiError::invalid_parameter(
            "enableExecuteCommand is not supported by Berth yet.",
        ));
    }
    if request.availability_zone_rebalancing == Some(ecs_wire::AvailabilityZoneRebalancing::Enabled)
    {
        return Err(ApiError::invalid_parameter(
            "availabilityZoneRebalancing ENABLED is not supported by Berth yet; omit it or use DISABLED.",
        ));
    }
    Ok(())
}

/// Whether an existing service is what a CreateService asks for, so that
/// the request is answered with it rather than refused as "not
/// idempotent": the same task definition revision, scheduling, launch type,
/// desired count (REPLICA), deployment configuration, grace period,
/// placement and tags.
fn same_service(existing: &ServiceRecord, wanted: &ServiceRecord) -> bool {
    let (a, b) = (&existing.scheduling, &wanted.scheduling);
    a.scheduling_strategy == b.scheduling_strategy
        && (a.scheduling_strategy == SchedulingStrategy::Daemon
            || a.desired_count == b.desired_count)
        && a.deployment_configuration == b.deployment_configuration
        && a.health_check_grace_period_ms == b.health_check_grace_period_ms
        && a.primary().task_definition_arn == b.primary().task_definition_arn
        && existing.launch_type == wanted.launch_type
        && existing.placement_constraints == wanted.placement_constraints
        && existing.placement_strategy == wanted.placement_strategy
        && existing.tags == wanted.tags
        && existing.propagate_tags == wanted.propagate_tags
        && existing.enable_ecs_managed_tags == wanted.enable_ecs_managed_tags
        && existing.load_balancers == wanted.load_balancers
}

// ---------------------------------------------------------------------------
// Rendering (pure)

fn deployment_configuration_to_wire(
    config: &DeploymentConfiguration,
) -> ecs_wire::DeploymentConfiguration {
    ecs_wire::DeploymentConfiguration {
        deployment_circuit_breaker: Some(ecs_wire::DeploymentCircuitBreaker {
            enable: Some(config.circuit_breaker.enable),
            rollback: Some(config.circuit_breaker.rollback),
            reset_on_healthy_task: Some(config.circuit_breaker.reset_on_healthy_task),
            threshold_configuration: Some(ecs_wire::ThresholdConfiguration {
                type_: Some(match config.circuit_breaker.threshold.threshold_type {
                    ThresholdType::Count => ecs_wire::ThresholdType::Count,
                    ThresholdType::BoundedPercent => ecs_wire::ThresholdType::BoundedPercent,
                    ThresholdType::UnboundedPercent => ecs_wire::ThresholdType::UnboundedPercent,
                }),
                value: Some(count(config.circuit_breaker.threshold.value)),
            }),
        }),
        maximum_percent: Some(count(config.maximum_percent)),
        minimum_healthy_percent: Some(count(config.minimum_healthy_percent)),
        ..Default::default()
    }
}

fn rollout_state_to_wire(state: RolloutState) -> DeploymentRolloutState {
    match state {
        RolloutState::InProgress => DeploymentRolloutState::InProgress,
        RolloutState::Completed => DeploymentRolloutState::Completed,
        RolloutState::Failed => DeploymentRolloutState::Failed,
    }
}

fn launch_type_to_wire(launch_type: &str) -> Option<LaunchType> {
    launch_type.parse().ok()
}

fn deployment_to_wire(deployment: &Deployment, launch_type: &str) -> ecs_wire::Deployment {
    ecs_wire::Deployment {
        id: Some(deployment.id.clone()),
        status: Some(deployment.status.as_str().to_string()),
        task_definition: Some(deployment.task_definition_arn.clone()),
        desired_count: Some(count(deployment.desired_count)),
        pending_count: Some(count(deployment.pending_count)),
        running_count: Some(count(deployment.running_count)),
        failed_tasks: Some(count(deployment.failed_tasks)),
        created_at: Some(seconds(deployment.created_at_ms)),
        updated_at: Some(seconds(deployment.updated_at_ms)),
        launch_type: launch_type_to_wire(launch_type),
        rollout_state: Some(rollout_state_to_wire(deployment.rollout_state)),
        rollout_state_reason: Some(deployment.rollout_state_reason.clone()),
        ..Default::default()
    }
}

/// The ARNs of one service and its deployments.
struct ServiceArns {
    scope: ArnScope,
    cluster_name: String,
    service_name: String,
}

impl ServiceArns {
    fn new(scope: ArnScope, record: &ServiceRecord) -> Self {
        ServiceArns {
            scope,
            cluster_name: record.cluster_name.clone(),
            service_name: record.scheduling.service_name.clone(),
        }
    }
    fn cluster(&self) -> String {
        self.scope.cluster(&self.cluster_name)
    }
    fn service(&self) -> String {
        self.scope.service(&self.cluster_name, &self.service_name)
    }
    fn deployment(&self, deployment_id: &str) -> String {
        self.scope.service_deployment(
            &self.cluster_name,
            &self.service_name,
            deployment_key(deployment_id),
        )
    }
    fn revision(&self, deployment_id: &str) -> String {
        self.scope.service_revision(
            &self.cluster_name,
            &self.service_name,
            deployment_key(deployment_id),
        )
    }
}

/// A service as DescribeServices (and Create/Update/DeleteService) show it.
pub(crate) fn service_to_wire(
    scope: &ArnScope,
    record: &ServiceRecord,
    include_tags: bool,
) -> ecs_wire::Service {
    let arns = ServiceArns::new(scope.clone(), record);
    let service = &record.scheduling;
    let primary = service.deployments.first();
    ecs_wire::Service {
        service_arn: Some(arns.service()),
        service_name: Some(service.service_name.clone()),
        cluster_arn: Some(arns.cluster()),
        load_balancers: Some(record.load_balancers_to_wire()),
        service_registries: Some(vec![]),
        status: Some(service.status.as_str().to_string()),
        desired_count: Some(count(service.desired_count)),
        running_count: Some(count(service.running_count)),
        pending_count: Some(count(service.pending_count)),
        launch_type: launch_type_to_wire(&record.launch_type),
        task_definition: primary.map(|d| d.task_definition_arn.clone()),
        deployment_configuration: Some(deployment_configuration_to_wire(
            &service.deployment_configuration,
        )),
        deployments: Some(
            service
                .deployments
                .iter()
                .map(|d| deployment_to_wire(d, &record.launch_type))
                .collect(),
        ),
        role_arn: record.role_arn.clone(),
        events: Some(
            service
                .events
                .iter()
                .map(|e| ecs_wire::ServiceEvent {
                    id: Some(e.id.clone()),
                    created_at: Some(seconds(e.created_at_ms)),
                    message: Some(e.message.clone()),
                })
                .collect(),
        ),
        created_at: Some(seconds(service.created_at_ms)),
        current_service_deployment: primary
            .filter(|d| d.rollback_of.is_none())
            .map(|d| arns.deployment(&d.id)),
        current_service_revisions: Some(
            service
                .deployments
                .iter()
                .map(|d| ecs_wire::ServiceCurrentRevisionSummary {
                    arn: Some(arns.revision(&d.id)),
                    requested_task_count: Some(count(d.desired_count)),
                    running_task_count: Some(count(d.running_count)),
                    pending_task_count: Some(count(d.pending_count)),
                })
                .collect(),
        ),
        placement_constraints: Some(record.placement_constraints.clone()),
        placement_strategy: Some(record.placement_strategy.clone()),
        // Shown once set (ECS omits it for services that never had one).
        health_check_grace_period_seconds: (service.health_check_grace_period_ms > 0).then(|| {
            i32::try_from(service.health_check_grace_period_ms / 1000).unwrap_or(i32::MAX)
        }),
        scheduling_strategy: Some(scheduling_strategy_to_wire(service.scheduling_strategy)),
        deployment_controller: Some(ecs_wire::DeploymentController {
            type_: Some(DeploymentControllerType::Ecs),
        }),
        tags: include_tags.then(|| model::tags::to_wire(&record.tags)),
        created_by: record.created_by.clone(),
        enable_ecs_managed_tags: Some(record.enable_ecs_managed_tags),
        propagate_tags: Some(
            record
                .propagate_tags
                .as_deref()
                .and_then(|p| p.parse().ok())
                .unwrap_or(PropagateTags::None),
        ),
        enable_execute_command: Some(false),
        availability_zone_rebalancing: Some(ecs_wire::AvailabilityZoneRebalancing::Disabled),
        ..Default::default()
    }
}

/// How a deployment looks in the ServiceDeployment API.
///
/// `deployments::Deployment` knows whether a deployment is still converging
/// (`outcome` unset), completed, was superseded, or was failed by the circuit
/// breaker; botocore's `ServiceDeploymentStatus` has no plain "failed":
/// - no outcome yet: `IN_PROGRESS`, or `STOPPED` when the service was deleted
///   meanwhile (it will never finish);
/// - completed: `SUCCESSFUL`; superseded by a newer UpdateService: `STOPPED`;
/// - failed, with a rollback deployment started for it: `ROLLBACK_IN_PROGRESS`
///   until that deployment completes (`ROLLBACK_SUCCESSFUL`) or fails or is
///   superseded itself (`ROLLBACK_FAILED`);
/// - failed with rollback enabled but no rollback started (there was no
///   completed deployment to return to, so the deployment stalls):
///   `ROLLBACK_FAILED`;
/// - failed with rollback disabled: `STOPPED` (the deployment stops launching
///   tasks); `statusReason` carries the circuit breaker's reason.
struct DeploymentView<'a> {
    status: ServiceDeploymentStatus,
    status_reason: Option<String>,
    rollback: Option<&'a Deployment>,
    finished_at_ms: Option<i64>,
    stopped_at_ms: Option<i64>,
}

fn deployment_view<'a>(service: &'a Service, deployment: &Deployment) -> DeploymentView<'a> {
    let rollback = service
        .all_deployments()
        .find(|d| d.rollback_of.as_deref() == Some(deployment.id.as_str()));
    let failure_reason = || Some(deployment.rollout_state_reason.clone());
    let view = |status, status_reason, finished_at_ms, stopped_at_ms| DeploymentView {
        status,
        status_reason,
        rollback,
        finished_at_ms,
        stopped_at_ms,
    };
    match deployment.outcome {
        // The circuit breaker rolled back to this (once COMPLETED)
        // deployment: ECS reports that under the failed deployment's
        // `ROLLBACK_*` status; this one's own service deployment succeeded.
        None if deployment.rollback_of.is_some() => view(
            ServiceDeploymentStatus::Successful,
            None,
            deployment.finished_at_ms,
            None,
        ),
        None if service.status == ServiceStatus::Active => {
            view(ServiceDeploymentStatus::InProgress, None, None, None)
        }
        None => view(
            ServiceDeploymentStatus::Stopped,
            Some("The service was deleted.".to_string()),
            None,
            Some(service.updated_at_ms),
        ),
        Some(DeploymentOutcome::Successful) => view(
            ServiceDeploymentStatus::Successful,
            None,
            deployment.finished_at_ms,
            None,
        ),
        Some(DeploymentOutcome::Stopped) => view(
            ServiceDeploymentStatus::Stopped,
            None,
            None,
            deployment.finished_at_ms,
        ),
        Some(DeploymentOutcome::Failed) => match rollback {
            Some(r) => match r.outcome {
                None => view(
                    ServiceDeploymentStatus::RollbackInProgress,
                    failure_reason(),
                    None,
                    None,
                ),
                Some(DeploymentOutcome::Successful) => view(
                    ServiceDeploymentStatus::RollbackSuccessful,
                    failure_reason(),
                    r.finished_at_ms,
                    None,
                ),
                Some(_) => view(
                    ServiceDeploymentStatus::RollbackFailed,
                    failure_reason(),
                    r.finished_at_ms,
                    None,
                ),
            },
            None if deployment.deployment_configuration.circuit_breaker.rollback => view(
                ServiceDeploymentStatus::RollbackFailed,
                failure_reason(),
                deployment.finished_at_ms,
                None,
            ),
            None => view(
                ServiceDeploymentStatus::Stopped,
                failure_reason(),
                None,
                deployment.finished_at_ms,
            ),
        },
    }
}

/// The ServiceDeployment status of one of the service's deployments.
#[cfg(test)]
pub(crate) fn service_deployment_status(
    service: &Service,
    deployment: &Deployment,
) -> ServiceDeploymentStatus {
    deployment_view(service, deployment).status
}

fn revision_summary(
    arns: &ServiceArns,
    deployment: &Deployment,
) -> ecs_wire::ServiceRevisionSummary {
    ecs_wire::ServiceRevisionSummary {
        arn: Some(arns.revision(&deployment.id)),
        requested_task_count: Some(count(deployment.desired_count)),
        running_task_count: Some(count(deployment.running_count)),
        pending_task_count: Some(count(deployment.pending_count)),
        ..Default::default()
    }
}

fn service_deployment_brief(
    arns: &ServiceArns,
    service: &Service,
    deployment: &Deployment,
) -> ecs_wire::ServiceDeploymentBrief {
    let view = deployment_view(service, deployment);
    ecs_wire::ServiceDeploymentBrief {
        service_deployment_arn: Some(arns.deployment(&deployment.id)),
        service_arn: Some(arns.service()),
        cluster_arn: Some(arns.cluster()),
        started_at: Some(seconds(deployment.created_at_ms)),
        created_at: Some(seconds(deployment.created_at_ms)),
        finished_at: view.finished_at_ms.map(seconds),
        target_service_revision_arn: Some(arns.revision(&deployment.id)),
        status: Some(view.status),
        status_reason: view.status_reason,
    }
}

fn service_deployment_to_wire(
    arns: &ServiceArns,
    service: &Service,
    deployment: &Deployment,
) -> ecs_wire::ServiceDeployment {
    let view = deployment_view(service, deployment);
    // The revision this deployment replaced: the next older service deployment.
    let source = service
        .all_deployments()
        .skip_while(|d| d.id != deployment.id)
        .nth(1);
    let breaker = deployment.deployment_configuration.circuit_breaker;
    let breaker_status = if !breaker.enable {
        ServiceDeploymentRollbackMonitorsStatus::Disabled
    } else if deployment.outcome == Some(DeploymentOutcome::Failed) {
        ServiceDeploymentRollbackMonitorsStatus::Triggered
    } else if deployment.outcome.is_none() && service.status == ServiceStatus::Active {
        ServiceDeploymentRollbackMonitorsStatus::Monitoring
    } else {
        ServiceDeploymentRollbackMonitorsStatus::MonitoringComplete
    };
    let updated_at_ms = view.rollback.map_or(deployment.updated_at_ms, |r| {
        r.updated_at_ms.max(deployment.updated_at_ms)
    });
    ecs_wire::ServiceDeployment {
        service_deployment_arn: Some(arns.deployment(&deployment.id)),
        service_arn: Some(arns.service()),
        cluster_arn: Some(arns.cluster()),
        created_at: Some(seconds(deployment.created_at_ms)),
        started_at: Some(seconds(deployment.created_at_ms)),
        finished_at: view.finished_at_ms.map(seconds),
        stopped_at: view.stopped_at_ms.map(seconds),
        updated_at: Some(seconds(updated_at_ms)),
        source_service_revisions: Some(
            source
                .map(|s| vec![revision_summary(arns, s)])
                .unwrap_or_default(),
        ),
        target_service_revision: Some(revision_summary(arns, deployment)),
        status: Some(view.status),
        status_reason: view.status_reason,
        deployment_configuration: Some(deployment_configuration_to_wire(
            &deployment.deployment_configuration,
        )),
        rollback: view.rollback.map(|r| ecs_wire::Rollback {
            reason: Some(deployment.rollout_state_reason.clone()),
            started_at: Some(seconds(r.created_at_ms)),
            service_revision_arn: Some(arns.revision(&r.id)),
        }),
        deployment_circuit_breaker: Some(ecs_wire::ServiceDeploymentCircuitBreaker {
            status: Some(breaker_status),
            failure_count: Some(count(deployment.failed_tasks)),
            threshold: Some(count(deployments::circuit_breaker_threshold(
                &breaker,
                deployment.desired_count,
            ))),
        }),
        alarms: Some(ecs_wire::ServiceDeploymentAlarms {
            status: Some(ServiceDeploymentRollbackMonitorsStatus::Disabled),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A parsed service-deployment or service-revision ARN.
struct ServiceChildArn {
    cluster_name: String,
    service_name: String,
    key: String,
}

/// `None` for an ARN of another account or region, or a malformed resource
/// part (answered as a MISSING failure); an error for text that is not an
/// ECS ARN of `resource_type`.
fn parse_child_arn(
    ctx: &RequestContext,
    arn: &str,
    resource_type: &str,
) -> Result<Option<ServiceChildArn>, ApiError> {
    let parsed = EcsArn::parse(arn)?;
    if parsed.resource_type != resource_type {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid {resource_type} ARN: '{arn}'. It looks like arn:aws:ecs:<region>:<account>:{resource_type}/<cluster>/<service>/<id>."
        )));
    }
    if parsed.region != ctx.region || parsed.account_id != ctx.account_id {
        return Ok(None);
    }
    let mut parts = parsed.resource_id.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(cluster), Some(service), Some(key), None)
            if !cluster.is_empty() && !service.is_empty() && !key.is_empty() =>
        {
            Ok(Some(ServiceChildArn {
                cluster_name: cluster.to_string(),
                service_name: service.to_string(),
                key: key.to_string(),
            }))
        }
        _ => Ok(None),
    }
}

fn missing(arn: &str) -> Failure {
    Failure {
        arn: Some(arn.to_string()),
        reason: Some("MISSING".to_string()),
        detail: None,
    }
}

fn check_arn_count(arns: &[String], member: &str) -> Result<(), ApiError> {
    if arns.is_empty() {
        return Err(ApiError::invalid_parameter(format!(
            "{member} can not be empty."
        )));
    }
    if arns.len() > MAX_DESCRIBE_SERVICE_DEPLOYMENTS {
        return Err(ApiError::invalid_parameter(format!(
            "{member} can have at most {MAX_DESCRIBE_SERVICE_DEPLOYMENTS} items; {} were given.",
            arns.len()
        )));
    }
    Ok(())
}

/// The sort key of a deployment in ListServiceDeployments (newest first).
fn deployment_sort_key(deployment: &Deployment) -> String {
    format!("{:020}/{}", deployment.created_at_ms.max(0), deployment.id)
}

/// What a service's task definition is checked against.
struct ServiceLaunchCheck<'a> {
    task_definition: &'a str,
    require_active: bool,
    service_name: &'a str,
    launch_type: LaunchType,
    propagate_tags: Option<PropagateTags>,
    service_tags: &'a [Tag],
    constraints: Vec<scheduler::PlacementConstraint>,
}

// ---------------------------------------------------------------------------
// Requests

macro_rules! service_requests {
    ($($shape:ident),* $(,)?) => {
        $(impl crate::Request for ecs_wire::$shape {
            const REQUIRED: &'static [&'static str] = ecs_wire::$shape::REQUIRED;
        })*
    };
}

service_requests!(
    CreateServiceRequest,
    UpdateServiceRequest,
    DeleteServiceRequest,
    DescribeServicesRequest,
    ListServicesRequest,
    ListServiceDeploymentsRequest,
    DescribeServiceDeploymentsRequest,
    DescribeServiceRevisionsRequest,
);

// ---------------------------------------------------------------------------
// Operations

impl Ecs {
    pub(crate) async fn load_service(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        service_name: &str,
    ) -> Result<Option<Versioned<ServiceRecord>>, ApiError> {
        records::get(
            self.store(),
            &keys::service(&ctx.region, cluster_name, service_name),
        )
        .await
    }

    /// The task definition a service runs: `reference` resolved to a
    /// revision (ACTIVE when `require_active`), then checked the way every
    /// launch of the service will check it (`prepare_launch`: launch type,
    /// features Berth cannot honour, sizes), with the service's placement
    /// constraints counted together with the task definition's. Returns the
    /// revision's ARN and the task definition.
    async fn checked_service_task_definition(
        &self,
        ctx: &RequestContext,
        cluster: &Cluster,
        check: ServiceLaunchCheck<'_>,
    ) -> Result<(String, ecs_wire::TaskDefinition), ApiError> {
        let not_found = || ApiError::client_exception("TaskDefinition not found.");
        let parsed =
            TaskDefinitionReference::parse(check.task_definition).map_err(|_| not_found())?;
        let record = self
            .resolve_task_definition(ctx, &parsed)
            .await?
            .ok_or_else(not_found)?;
        if check.require_active && record.value.status() != TaskDefinitionStatus::Active {
            return Err(ApiError::client_exception("TaskDefinition is inactive"));
        }
        let arn = record
            .value
            .task_definition
            .task_definition_arn
            .clone()
            .unwrap_or_default();
        let group = format!("service:{}", check.service_name);
        let launch = self
            .prepare_launch(
                ctx,
                cluster,
                LaunchRequest {
                    task_definition: Some(&arn),
                    overrides: None,
                    group: Some(&group),
                    started_by: None,
                    tags: None,
                    propagate_tags: check.propagate_tags,
                    enable_ecs_managed_tags: None,
                    network_configuration: false,
                    enable_execute_command: None,
                    launch_type: match check.launch_type {
                        LaunchType::External => Compatibility::External,
                        _ => Compatibility::Ec2,
                    },
                    service_tags: Some(check.service_tags),
                    service_name: Some(check.service_name),
                },
            )
            .await?;
        placement::task_request(
            &launch.task_definition,
            &launch.reservation,
            &group,
            check.constraints,
        )?;
        Ok((arn, launch.task_definition))
    }

    fn service_name_from_reference(
        &self,
        reference: &str,
        cluster_name: &str,
    ) -> Result<String, ApiError> {
        Ok(id_from_reference(reference, "service", cluster_name)?)
    }

    pub(crate) async fn create_service(
        &self,
        ctx: &RequestContext,
        request: CreateServiceRequest,
    ) -> Result<CreateServiceResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let name = request.service_name.clone().unwrap_or_default();
        validate_service_name(&name)?;
        let strategy = scheduling_strategy(request.scheduling_strategy);
        let launch_type = service_launch_type(request.launch_type)?;
        refuse_unsupported(
            &Unsupported {
                service_registries: request.service_registries.as_deref(),
                capacity_provider_strategy: request.capacity_provider_strategy.as_deref(),
                network_configuration: request.network_configuration.is_some(),
                service_connect_configuration: request.service_connect_configuration.as_ref(),
                volume_configurations: request.volume_configurations.as_deref(),
                vpc_lattice_configurations: request.vpc_lattice_configurations.as_deref(),
                enable_execute_command: request.enable_execute_command,
                deployment_controller: request.deployment_controller.as_ref(),
                platform_version: request.platform_version.as_deref(),
                availability_zone_rebalancing: request.availability_zone_rebalancing,
            },
            strategy,
        )?;
        let has_load_balancers = request
            .load_balancers
            .as_ref()
            .is_some_and(|l| !l.is_empty());
        if request.role.is_some() && !has_load_balancers {
            return Err(ApiError::invalid_parameter(
                "The role parameter is only valid for a service that uses load balancers. Omit role.",
            ));
        }
        let desired_count = create_desired_count(strategy, request.desired_count)?;
        let deployment_configuration = merge_deployment_configuration(
            request.deployment_configuration.as_ref(),
            DeploymentConfiguration::default_for(strategy),
            strategy,
        )?;
        let grace_ms = health_check_grace_period_ms(request.health_check_grace_period_seconds)?;
        let placement_constraints = request.placement_constraints.clone().unwrap_or_default();
        let placement_strategy = request.placement_strategy.clone().unwrap_or_default();
        let constraints =
            validate_placement(&placement_constraints, &placement_strategy, strategy)?;
        let tags = model::tags::from_wire(request.tags.as_deref().unwrap_or_default());
        model::tags::validate_tags(&tags)?;
        let task_definition_reference = request
            .task_definition
            .as_deref()
            .ok_or_else(|| ApiError::invalid_parameter("taskDefinition can not be blank."))?;
        let (task_definition_arn, task_definition) = self
            .checked_service_task_definition(
                ctx,
                &cluster,
                ServiceLaunchCheck {
                    task_definition: task_definition_reference,
                    require_active: true,
                    service_name: &name,
                    launch_type,
                    propagate_tags: request.propagate_tags,
                    service_tags: &tags,
                    constraints,
                },
            )
            .await?;
        let load_balancers = self
            .checked_load_balancers(
                ctx,
                request.load_balancers.as_deref().unwrap_or_default(),
                &task_definition,
            )
            .await?;
        let role_arn = match request.role.as_deref() {
            Some(role) if role.starts_with("arn:") => role.to_string(),
            Some(role) => format!("arn:aws:iam::{}:role/{role}", ctx.account_id),
            None => format!("arn:aws:iam::{}:{SERVICE_LINKED_ROLE_PATH}", ctx.account_id),
        };

        let scope = ctx.arns();
        let service_key = keys::service(&ctx.region, &cluster.cluster_name, &name);
        let token_key = request
            .client_token
            .as_deref()
            .map(|token| keys::service_token(&ctx.region, &cluster.cluster_name, token));
        for _ in 0..MAX_CAS_ATTEMPTS {
            let mut write = Write::new();
            if let Some(token_key) = &token_key {
                let token: Option<Versioned<String>> =
                    records::get(self.store(), token_key).await?;
                let expected = match token {
                    Some(token) => {
                        if let Some(existing) = self
                            .load_service(ctx, &cluster.cluster_name, &token.value)
                            .await?
                            .filter(|s| !s.value.is_inactive())
                        {
                            if token.value != name {
                                return Err(not_idempotent());
                            }
                            return Ok(CreateServiceResponse {
                                service: Some(service_to_wire(&scope, &existing.value, true)),
                            });
                        }
                        token.mod_revision
                    }
                    None => 0,
                };
                write = write.expect(token_key, expected).put(token_key, &name);
            }
            let existing = self.load_service(ctx, &cluster.cluster_name, &name).await?;
            let scheduling = Service::new(
                NewService {
                    service_name: name.clone(),
                    scheduling_strategy: strategy,
                    desired_count,
                    deployment_configuration,
                    health_check_grace_period_ms: grace_ms.unwrap_or(0),
                    task_definition_arn: task_definition_arn.clone(),
                },
                new_deployment_id(),
                ctx.now_ms,
            );
            let record = ServiceRecord {
                cluster_name: cluster.cluster_name.clone(),
                scheduling,
                launch_type: launch_type.as_str().to_string(),
                placement_constraints: placement_constraints.clone(),
                placement_strategy: placement_strategy.clone(),
                tags: tags.clone(),
                propagate_tags: propagate_tags(request.propagate_tags),
                enable_ecs_managed_tags: request.enable_ecs_managed_tags.unwrap_or(false),
                role_arn: Some(role_arn.clone()),
                created_by: Some(ctx.principal_arn.clone()),
                load_balancers: load_balancers.clone(),
                version: 1,
            };
            if let Some(existing) = &existing {
                if !existing.value.is_inactive() {
                    if same_service(&existing.value, &record) {
                        return Ok(CreateServiceResponse {
                            service: Some(service_to_wire(&scope, &existing.value, true)),
                        });
                    }
                    return Err(not_idempotent());
                }
            }
            let written = write
                .expect(
                    &service_key,
                    existing.as_ref().map_or(0, |e| e.mod_revision),
                )
                .put(&service_key, &record)
                .put(&keys::service_region(&ctx.region), &serde_json::json!({}))
                .commit(self.store())
                .await?;
            if written {
                return Ok(CreateServiceResponse {
                    service: Some(service_to_wire(&scope, &record, true)),
                });
            }
        }
        Err(records::too_much_contention("the service"))
    }

    pub(crate) async fn update_service(
        &self,
        ctx: &RequestContext,
        request: UpdateServiceRequest,
    ) -> Result<UpdateServiceResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let name = self.service_name_from_reference(
            request.service.as_deref().unwrap_or_default(),
            &cluster.cluster_name,
        )?;
        let desired_count = request
            .desired_count
            .map(non_negative_desired_count)
            .transpose()?;
        let grace_ms = health_check_grace_period_ms(request.health_check_grace_period_seconds)?;
        let key = keys::service(&ctx.region, &cluster.cluster_name, &name);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self
                .load_service(ctx, &cluster.cluster_name, &name)
                .await?
                .ok_or_else(service_not_found)?;
            if current.value.scheduling.status != ServiceStatus::Active {
                return Err(service_not_active());
            }
            let mut record = current.value.clone();
            let strategy = record.scheduling.scheduling_strategy;
            refuse_unsupported(
                &Unsupported {
                    service_registries: request.service_registries.as_deref(),
                    capacity_provider_strategy: request.capacity_provider_strategy.as_deref(),
                    network_configuration: request.network_configuration.is_some(),
                    service_connect_configuration: request.service_connect_configuration.as_ref(),
                    volume_configurations: request.volume_configurations.as_deref(),
                    vpc_lattice_configurations: request.vpc_lattice_configurations.as_deref(),
                    enable_execute_command: request.enable_execute_command,
                    deployment_controller: request.deployment_controller.as_ref(),
                    platform_version: request.platform_version.as_deref(),
                    availability_zone_rebalancing: request.availability_zone_rebalancing,
                },
                strategy,
            )?;
            if strategy == SchedulingStrategy::Daemon && desired_count.is_some() {
                return Err(ApiError::invalid_parameter(DAEMON_DESIRED_COUNT));
            }
            let deployment_configuration = request
                .deployment_configuration
                .as_ref()
                .map(|wire| {
                    merge_deployment_configuration(
                        Some(wire),
                        record.scheduling.deployment_configuration,
                        strategy,
                    )
                })
                .transpose()?;
            let placement_constraints = request
                .placement_constraints
                .clone()
                .unwrap_or_else(|| record.placement_constraints.clone());
            let placement_strategy = request
                .placement_strategy
                .clone()
                .unwrap_or_else(|| record.placement_strategy.clone());
            let constraints =
                validate_placement(&placement_constraints, &placement_strategy, strategy)?;
            let launch_type = launch_type_to_wire(&record.launch_type).unwrap_or(LaunchType::Ec2);
            let propagate = match request.propagate_tags {
                Some(p) => Some(p),
                None => record
                    .propagate_tags
                    .as_deref()
                    .and_then(|p| p.parse().ok()),
            };
            let check = |task_definition, require_active| ServiceLaunchCheck {
                task_definition,
                require_active,
                service_name: &name,
                launch_type,
                propagate_tags: propagate,
                service_tags: &record.tags,
                constraints: constraints.clone(),
            };
            let (task_definition_arn, task_definition) = match request.task_definition.as_deref() {
                Some(reference) => {
                    let (arn, definition) = self
                        .checked_service_task_definition(ctx, &cluster, check(reference, true))
                        .await?;
                    (Some(arn), Some(definition))
                }
                None if request.placement_constraints.is_some()
                    || request.load_balancers.is_some() =>
                {
                    // The new constraints and load balancers must fit with
                    // the running task definition (deregistered revisions
                    // included).
                    let current_arn = record.scheduling.primary().task_definition_arn.clone();
                    let (_, definition) = self
                        .checked_service_task_definition(ctx, &cluster, check(&current_arn, false))
                        .await?;
                    (None, Some(definition))
                }
                None => (None, None),
            };
            // New load balancers, or the current ones checked against a new
            // task definition (its containers and ports must still fit).
            let load_balancers = match (&request.load_balancers, &task_definition) {
                (Some(wire), Some(definition)) => {
                    Some(self.checked_load_balancers(ctx, wire, definition).await?)
                }
                (None, Some(definition)) if !record.load_balancers.is_empty() => {
                    let current = record.load_balancers_to_wire();
                    self.checked_load_balancers(ctx, &current, definition)
                        .await?;
                    None
                }
                _ => None,
            };
            // ECS starts new tasks with a changed load balancer
            // configuration and stops the old ones: a new deployment.
            let load_balancers_changed = load_balancers
                .as_ref()
                .is_some_and(|wanted| *wanted != record.load_balancers);
            record.scheduling.update(
                ServiceUpdate {
                    desired_count,
                    task_definition_arn,
                    deployment_configuration,
                    health_check_grace_period_ms: grace_ms,
                    force_new_deployment: request.force_new_deployment.unwrap_or(false)
                        || load_balancers_changed,
                },
                new_deployment_id(),
                ctx.now_ms,
            );
            record.placement_constraints = placement_constraints;
            record.placement_strategy = placement_strategy;
            if let Some(load_balancers) = load_balancers {
                record.load_balancers = load_balancers;
            }
            if request.propagate_tags.is_some() {
                record.propagate_tags = propagate_tags(request.propagate_tags);
            }
            if let Some(managed) = request.enable_ecs_managed_tags {
                record.enable_ecs_managed_tags = managed;
            }
            record.version += 1;
            if Write::new()
                .expect(&key, current.mod_revision)
                .put(&key, &record)
                .commit(self.store())
                .await?
            {
                return Ok(UpdateServiceResponse {
                    service: Some(service_to_wire(&ctx.arns(), &record, false)),
                });
            }
        }
        Err(records::too_much_contention("the service"))
    }

    pub(crate) async fn delete_service(
        &self,
        ctx: &RequestContext,
        request: DeleteServiceRequest,
    ) -> Result<DeleteServiceResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let name = self.service_name_from_reference(
            request.service.as_deref().unwrap_or_default(),
            &cluster.cluster_name,
        )?;
        let force = request.force.unwrap_or(false);
        let key = keys::service(&ctx.region, &cluster.cluster_name, &name);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self
                .load_service(ctx, &cluster.cluster_name, &name)
                .await?
                .filter(|s| !s.value.is_inactive())
                .ok_or_else(service_not_found)?;
            let mut record = current.value.clone();
            if record.scheduling.status == ServiceStatus::Draining {
                return Ok(DeleteServiceResponse {
                    service: Some(service_to_wire(&ctx.arns(), &record, false)),
                });
            }
            if record.scheduling.scheduling_strategy == SchedulingStrategy::Replica
                && record.scheduling.desired_count > 0
                && !force
            {
                return Err(ApiError::invalid_parameter(
                    "The service cannot be stopped while it is scaled above 0.",
                ));
            }
            record.scheduling.delete(ctx.now_ms);
            record.version += 1;
            if Write::new()
                .expect(&key, current.mod_revision)
                .put(&key, &record)
                .commit(self.store())
                .await?
            {
                return Ok(DeleteServiceResponse {
                    service: Some(service_to_wire(&ctx.arns(), &record, false)),
                });
            }
        }
        Err(records::too_much_contention("the service"))
    }

    pub(crate) async fn describe_services(
        &self,
        ctx: &RequestContext,
        request: DescribeServicesRequest,
    ) -> Result<DescribeServicesResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let references = request.services.clone().unwrap_or_default();
        if references.is_empty() {
            return Err(ApiError::invalid_parameter("Services can not be empty."));
        }
        if references.len() > MAX_DESCRIBE_SERVICES {
            return Err(ApiError::invalid_parameter(format!(
                "services can have at most {MAX_DESCRIBE_SERVICES} items; {} were given.",
                references.len()
            )));
        }
        let include_tags = request
            .include
            .as_deref()
            .unwrap_or_default()
            .contains(&ServiceField::Tags);
        let scope = ctx.arns();
        let mut services = Vec::new();
        let mut failures = Vec::new();
        for reference in &references {
            let name = self.service_name_from_reference(reference, &cluster.cluster_name)?;
            match self.load_service(ctx, &cluster.cluster_name, &name).await? {
                Some(record) => services.push(service_to_wire(&scope, &record.value, include_tags)),
                None => failures.push(missing(&scope.service(&cluster.cluster_name, &name))),
            }
        }
        Ok(DescribeServicesResponse {
            services: Some(services),
            failures: Some(failures),
        })
    }

    pub(crate) async fn list_services(
        &self,
        ctx: &RequestContext,
        request: ListServicesRequest,
    ) -> Result<ListServicesResponse, ApiError> {
        const OP: &str = "ListServices";
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let page_size = pagination::page_size(request.max_results, 10, 100)?;
        let after = pagination::decode_token(OP, request.next_token.as_deref())?;
        let strategy = request
            .scheduling_strategy
            .map(|s| scheduling_strategy(Some(s)));
        let records: Vec<(String, ServiceRecord)> = records::list(
            self.store(),
            &keys::services_prefix(&ctx.region, &cluster.cluster_name),
        )
        .await?;
        let names: Vec<String> = records
            .into_iter()
            .map(|(_, record)| record)
            .filter(|record| !record.is_inactive())
            .filter(|record| {
                request
                    .launch_type
                    .is_none_or(|l| l.as_str() == record.launch_type)
            })
            .filter(|record| strategy.is_none_or(|s| s == record.scheduling.scheduling_strategy))
            // Every Berth service is managed by its user.
            .filter(|_| request.resource_management_type != Some(ResourceManagementType::Ecs))
            .map(|record| record.scheduling.service_name)
            .collect();
        let (page, next_token) =
            pagination::paginate(OP, names, String::clone, after.as_deref(), page_size, false);
        let scope = ctx.arns();
        Ok(ListServicesResponse {
            service_arns: Some(
                page.iter()
                    .map(|name| scope.service(&cluster.cluster_name, name))
                    .collect(),
            ),
            next_token,
        })
    }

    pub(crate) async fn list_service_deployments(
        &self,
        ctx: &RequestContext,
        request: ListServiceDeploymentsRequest,
    ) -> Result<ListServiceDeploymentsResponse, ApiError> {
        const OP: &str = "ListServiceDeployments";
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let name = self.service_name_from_reference(
            request.service.as_deref().unwrap_or_default(),
            &cluster.cluster_name,
        )?;
        let page_size = pagination::page_size(request.max_results, 20, 100)?;
        let after = pagination::decode_token(OP, request.next_token.as_deref())?;
        let record = self
            .load_service(ctx, &cluster.cluster_name, &name)
            .await?
            .ok_or_else(service_not_found)?
            .value;
        let statuses = request.status.clone().unwrap_or_default();
        let created_after = request.created_at.as_ref().and_then(|c| c.after);
        let created_before = request.created_at.as_ref().and_then(|c| c.before);
        let arns = ServiceArns::new(ctx.arns(), &record);
        let service = &record.scheduling;
        let briefs: Vec<(String, ecs_wire::ServiceDeploymentBrief)> = service
            .all_deployments()
            .filter(|d| created_after.is_none_or(|t| seconds(d.created_at_ms) >= t))
            .filter(|d| created_before.is_none_or(|t| seconds(d.created_at_ms) <= t))
            .map(|d| {
                (
                    deployment_sort_key(d),
                    service_deployment_brief(&arns, service, d),
                )
            })
            .filter(|(_, brief)| {
                statuses.is_empty() || brief.status.is_some_and(|s| statuses.contains(&s))
            })
            .collect();
        let (page, next_token) = pagination::paginate(
            OP,
            briefs,
            |(key, _)| key.clone(),
            after.as_deref(),
            page_size,
            true,
        );
        Ok(ListServiceDeploymentsResponse {
            service_deployments: Some(page.into_iter().map(|(_, brief)| brief).collect()),
            next_token,
        })
    }

    /// Loads the services the ARNs name, once each.
    async fn services_for_arns(
        &self,
        ctx: &RequestContext,
        parsed: &[Option<ServiceChildArn>],
    ) -> Result<BTreeMap<(String, String), ServiceRecord>, ApiError> {
        let mut services = BTreeMap::new();
        for arn in parsed.iter().flatten() {
            let id = (arn.cluster_name.clone(), arn.service_name.clone());
            if services.contains_key(&id) {
                continue;
            }
            if let Some(record) = self
                .load_service(ctx, &arn.cluster_name, &arn.service_name)
                .await?
            {
                services.insert(id, record.value);
            }
        }
        Ok(services)
    }

    /// Each ARN (`service-deployment/…` or `service-revision/…`, `kind`)
    /// with its service and deployment, or `None` when either is missing.
    async fn deployments_for_arns(
        &self,
        ctx: &RequestContext,
        arns: &[String],
        kind: &str,
    ) -> Result<Vec<(String, Option<(ServiceRecord, Deployment)>)>, ApiError> {
        let parsed = arns
            .iter()
            .map(|arn| parse_child_arn(ctx, arn, kind))
            .collect::<Result<Vec<_>, _>>()?;
        let services = self.services_for_arns(ctx, &parsed).await?;
        Ok(arns
            .iter()
            .zip(&parsed)
            .map(|(arn, parsed)| {
                let found = parsed.as_ref().and_then(|p| {
                    let record = services.get(&(p.cluster_name.clone(), p.service_name.clone()))?;
                    let deployment = record
                        .scheduling
                        .all_deployments()
                        .find(|d| deployment_key(&d.id) == p.key)?;
                    Some((record.clone(), deployment.clone()))
                });
                (arn.clone(), found)
            })
            .collect())
    }

    pub(crate) async fn describe_service_deployments(
        &self,
        ctx: &RequestContext,
        request: DescribeServiceDeploymentsRequest,
    ) -> Result<DescribeServiceDeploymentsResponse, ApiError> {
        let arns = request.service_deployment_arns.clone().unwrap_or_default();
        check_arn_count(&arns, "serviceDeploymentArns")?;
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for (arn, deployment) in self
            .deployments_for_arns(ctx, &arns, "service-deployment")
            .await?
        {
            match deployment {
                Some((record, deployment)) => found.push(service_deployment_to_wire(
                    &ServiceArns::new(ctx.arns(), &record),
                    &record.scheduling,
                    &deployment,
                )),
                None => failures.push(missing(&arn)),
            }
        }
        Ok(DescribeServiceDeploymentsResponse {
            service_deployments: Some(found),
            failures: Some(failures),
        })
    }

    pub(crate) async fn describe_service_revisions(
        &self,
        ctx: &RequestContext,
        request: DescribeServiceRevisionsRequest,
    ) -> Result<DescribeServiceRevisionsResponse, ApiError> {
        let arns = request.service_revision_arns.clone().unwrap_or_default();
        check_arn_count(&arns, "serviceRevisionArns")?;
        let mut revisions = Vec::new();
        let mut failures = Vec::new();
        for (arn, deployment) in self
            .deployments_for_arns(ctx, &arns, "service-revision")
            .await?
        {
            let Some((record, deployment)) = deployment else {
                failures.push(missing(&arn));
                continue;
            };
            let record = &record;
            let service_arns = ServiceArns::new(ctx.arns(), record);
            let container_images = self
                .container_images(ctx, &deployment.task_definition_arn)
                .await?;
            revisions.push(ecs_wire::ServiceRevision {
                service_revision_arn: Some(service_arns.revision(&deployment.id)),
                service_arn: Some(service_arns.service()),
                cluster_arn: Some(service_arns.cluster()),
                task_definition: Some(deployment.task_definition_arn.clone()),
                launch_type: launch_type_to_wire(&record.launch_type),
                load_balancers: Some(record.load_balancers_to_wire()),
                service_registries: Some(vec![]),
                container_images,
                created_at: Some(seconds(deployment.created_at_ms)),
                ..Default::default()
            });
        }
        Ok(DescribeServiceRevisionsResponse {
            service_revisions: Some(revisions),
            failures: Some(failures),
        })
    }

    /// The images of a task definition's containers, when it still exists.
    async fn container_images(
        &self,
        ctx: &RequestContext,
        task_definition_arn: &str,
    ) -> Result<Option<Vec<ecs_wire::ContainerImage>>, ApiError> {
        let Ok(reference) = TaskDefinitionReference::parse(task_definition_arn) else {
            return Ok(None);
        };
        let Some(record) = self.resolve_task_definition(ctx, &reference).await? else {
            return Ok(None);
        };
        Ok(Some(
            record
                .value
                .task_definition
                .container_definitions
                .unwrap_or_default()
                .into_iter()
                .map(|c| ecs_wire::ContainerImage {
                    container_name: c.name,
                    image_digest: None,
                    image: c.image,
                })
                .collect(),
        ))
    }
}
