//! The service controller's shell: for every service, read the service, its
//! tasks and the cluster's container instances; ask `deployments::plan` what
//! to do; stop and launch tasks; write the service's new scheduling state
//! back with compare-and-swap.
//!
//! Everything it knows is in the store, so a restarted control plane picks
//! up where the last one stopped: tasks are launched and their instances'
//! resources reserved in one transaction, and the next pass counts them.

use std::collections::BTreeMap;

use deployments::{
    Launch as PlannedLaunch, ObservedInstance, ObservedTask, SchedulingStrategy, ServiceStatus,
    StopCause, TaskHealth, TaskPhase,
};
use ecs_wire::{Compatibility, HealthStatus, PropagateTags, TaskStopCode};
use model::cluster::Cluster;
use model::container_instance::{ContainerInstance, ContainerInstanceStatus};
use model::task::{DesiredStatus, Task, TaskStatus};
use model::task_definition::TaskDefinitionReference;
use rand::{Rng, SeedableRng};

use crate::records::{self, Versioned};
use crate::services::ServiceRecord;
use crate::tasks::{Launch, LaunchRequest};
use crate::{keys, placement, ApiError, Ecs, RequestContext};

/// What one pass over every service did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServicesPass {
    /// Services looked at (not INACTIVE).
    pub services: usize,
    pub tasks_launched: usize,
    pub tasks_stopped: usize,
    /// Services whose pass failed (logged; retried on the next pass).
    pub failed_services: usize,
    /// The earliest instant a plan asked to be planned again at.
    pub wake_at_ms: Option<i64>,
}

impl ServicesPass {
    fn wake_at(&mut self, at_ms: Option<i64>) {
        if let Some(at) = at_ms {
            self.wake_at_ms = Some(self.wake_at_ms.map_or(at, |w| w.min(at)));
        }
    }
}

/// Whether a store key's change can matter to a service (the shell wakes
/// the controller on these, not on heartbeats).
pub fn key_concerns_services(key: &str) -> bool {
    let mut segments = key.split('/');
    // "", "ecs", region, kind, …
    if segments.nth(1) != Some("ecs") {
        return false;
    }
    matches!(
        segments.nth(1),
        Some("services" | "tasks" | "container-instances")
    )
}

impl Ecs {
    /// One pass: every ACTIVE or DRAINING service of every region is
    /// planned and its plan applied. `seed` feeds the placement RNG and new
    /// deployment ids (the shell passes fresh entropy).
    pub async fn reconcile_services(
        &self,
        account_id: &str,
        now_ms: i64,
        seed: u64,
    ) -> Result<ServicesPass, ApiError> {
        let stopwatch = instruments::Stopwatch::start();
        let mut pass = ServicesPass::default();
        let regions = self
            .store()
            .range(store::RangeRequest::prefix(keys::SERVICE_REGIONS_PREFIX))
            .await?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for kv in regions.kvs {
            let region = kv.key[keys::SERVICE_REGIONS_PREFIX.len()..].to_string();
            let ctx = RequestContext {
                principal_arn: model::arn::ArnScope::new(&region, account_id).root_principal(),
                access_key_id: String::new(),
                region,
                account_id: account_id.to_string(),
                request_id: format!("service-controller-{:016x}", rng.gen::<u64>()),
                now_ms,
            };
            self.reconcile_region(&ctx, &mut rng, &mut pass).await?;
        }
        // Only completed passes count (one that fails is logged by the shell).
        instruments::global().observe_controller_pass(stopwatch.elapsed_s());
        Ok(pass)
    }

    async fn reconcile_region(
        &self,
        ctx: &RequestContext,
        rng: &mut rand::rngs::StdRng,
        pass: &mut ServicesPass,
    ) -> Result<(), ApiError> {
        let services: Vec<Versioned<ServiceRecord>> =
            records::list_versioned(self.store(), &keys::all_services_prefix(&ctx.region)).await?;
        let mut by_cluster: BTreeMap<String, Vec<Versioned<ServiceRecord>>> = BTreeMap::new();
        for service in services {
            if service.value.scheduling.status != ServiceStatus::Inactive {
                by_cluster
                    .entry(service.value.cluster_name.clone())
                    .or_default()
                    .push(service);
            }
        }
        for (cluster_name, services) in by_cluster {
            let Some(cluster) = self.load_cluster(ctx, &cluster_name).await? else {
                continue;
            };
            let snapshot = self.cluster_snapshot(ctx, &cluster_name).await?;
            for service in services {
                pass.services += 1;
                let ctx = RequestContext {
                    request_id: format!("{}-{:08x}", ctx.request_id, rng.gen::<u32>()),
                    ..ctx.clone()
                };
                let name = service.value.scheduling.service_name.clone();
                // One service's fault (a store error, a record it cannot
                // use) must not starve the others: report it and go on.
                if let Err(err) = self
                    .reconcile_service(&ctx, &cluster.value, &snapshot, service, pass)
                    .await
                {
                    tracing::warn!(service = %name, cluster = %cluster_name, %err, "planning the service failed");
                    pass.failed_services += 1;
                }
            }
        }
        Ok(())
    }

    async fn cluster_snapshot(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
    ) -> Result<ClusterSnapshot, ApiError> {
        let tasks = self.tasks(ctx, cluster_name).await?;
        let instances = self.container_instances(ctx, cluster_name).await?;
        let heartbeats = self.heartbeats(ctx, cluster_name).await?;
        let mut tasks_by_group: BTreeMap<String, Vec<Task>> = BTreeMap::new();
        for task in tasks {
            if let Some(group) = task.value.group.clone() {
                if group.starts_with("service:") {
                    tasks_by_group.entry(group).or_default().push(task.value);
                }
            }
        }
        let instances = instances
            .into_iter()
            .map(|i| {
                let connected = self.agent_connected(ctx, heartbeats.get(&i.value.id).copied());
                (i.value, connected)
            })
            .collect();
        Ok(ClusterSnapshot {
            tasks_by_group,
            instances,
        })
    }

    async fn reconcile_service(
        &self,
        ctx: &RequestContext,
        cluster: &Cluster,
        snapshot: &ClusterSnapshot,
        record: Versioned<ServiceRecord>,
        pass: &mut ServicesPass,
    ) -> Result<(), ApiError> {
        let service = &record.value;
        let name = service.scheduling.service_name.clone();
        let group = format!("service:{name}");
        let stored_tasks: &[Task] = snapshot
            .tasks_by_group
            .get(&group)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let settle_periods = self.settle_periods(ctx, stored_tasks).await?;
        let mut tasks: Vec<ObservedTask> = stored_tasks
            .iter()
            .map(|task| {
                let settle_period_ms = settle_periods
                    .get(&task.task_definition_arn)
                    .copied()
                    .unwrap_or(deployments::DEFAULT_SETTLE_PERIOD_MS);
                observe_task(task, settle_period_ms)
            })
            .collect();
        // The load balancers' part: registrations, draining, and the health
        // of registered tasks as their targets' health checks see it.
        let container_health: BTreeMap<String, TaskHealth> = tasks
            .iter()
            .map(|t| (t.task_id.clone(), t.health))
            .collect();
        let targets = self
            .reconcile_targets(
                ctx,
                service,
                stored_tasks,
                &snapshot.instances,
                &container_health,
            )
            .await?;
        pass.wake_at(targets.wake_at_ms);
        for task in &mut tasks {
            if let Some((health, failure)) = targets.health.get(&task.task_id) {
                task.health = *health;
                task.load_balancer_failure = failure.clone();
            }
        }
        let constraints = daemon_constraints(service);
        let instances: Vec<ObservedInstance> = snapshot
            .instances
            .iter()
            .filter(|(instance, _)| instance.status != ContainerInstanceStatus::Inactive)
            .map(|(instance, connected)| ObservedInstance {
                container_instance_id: instance.id.clone(),
                active: instance.is_active(),
                draining: instance.status == ContainerInstanceStatus::Draining,
                agent_connected: *connected,
                daemon_eligible: service.scheduling.scheduling_strategy
                    == SchedulingStrategy::Daemon
                    && constraints
                        .iter()
                        .all(|expr| placement::instance_matches(expr, instance)),
            })
            .collect();
        let plan = deployments::plan(&service.scheduling, &tasks, &instances, ctx.now_ms);
        pass.wake_at(plan.wake_at_ms);
        let mut scheduling = plan.service;
        for message in targets.events {
            scheduling.record_event(ctx.now_ms, message);
        }

        for stop in &plan.stops {
            if self
                .request_task_stop(
                    ctx,
                    &cluster.cluster_name,
                    &stop.task_id,
                    TaskStopCode::ServiceSchedulerInitiated,
                    &stop.reason,
                )
                .await?
                .is_some()
            {
                pass.tasks_stopped += 1;
            }
        }
        // Tasks stopped for failed health checks are named in the next
        // started event, as ECS does.
        let mut replaced_unhealthy = plan
            .stops
            .iter()
            .filter(|stop| is_failed_health_checks_reason(&stop.reason))
            .count();
        for launch in &plan.launches {
            let outcome = self.launch(ctx, cluster, service, launch).await?;
            // Count what was started, not what was planned: the counts stay
            // what the stored tasks say when placement fails.
            scheduling.record_started(
                &launch.deployment_id,
                outcome.started.len() as u32,
                ctx.now_ms,
            );
            if !outcome.started.is_empty() {
                pass.tasks_launched += outcome.started.len();
                scheduling.steady_state = false;
                let message = match replaced_unhealthy {
                    0 => deployments::started_tasks_message(&name, &outcome.started),
                    replaced => deployments::started_replacing_unhealthy_message(
                        &name,
                        &outcome.started,
                        replaced,
                    ),
                };
                replaced_unhealthy = 0;
                scheduling.record_event(ctx.now_ms, message);
            }
            if let Some(reason) = outcome.unplaced_reason {
                scheduling.steady_state = false;
                scheduling.record_event(
                    ctx.now_ms,
                    deployments::unable_to_place_message(&name, &reason),
                );
                // Try again soon: instances may free up or join.
                pass.wake_at(Some(ctx.now_ms + UNPLACED_RETRY_MS));
            }
        }
        if scheduling != service.scheduling {
            let mut updated = service.clone();
            updated.scheduling = scheduling;
            updated.version += 1;
            let key = keys::service(&ctx.region, &cluster.cluster_name, &name);
            // A lost race (UpdateService meanwhile) is fine: the next pass
            // plans again from what is stored.
            records::Write::new()
                .expect(&key, record.mod_revision)
                .put(&key, &updated)
                .commit(self.store())
                .await?;
        }
        Ok(())
    }

    /// The settle period of the tasks of each task definition the service's
    /// tasks use ([`deployments::settle_period_ms`]: from the essential
    /// containers' health check `startPeriod`s). A task definition that is
    /// gone gets the default.
    async fn settle_periods(
        &self,
        ctx: &RequestContext,
        tasks: &[Task],
    ) -> Result<BTreeMap<String, i64>, ApiError> {
        let mut periods = BTreeMap::new();
        for task in tasks {
            if periods.contains_key(&task.task_definition_arn) {
                continue;
            }
            let start_periods: Vec<i32> =
                match TaskDefinitionReference::parse(&task.task_definition_arn) {
                    Ok(reference) => self
                        .resolve_task_definition(ctx, &reference)
                        .await?
                        .map(|record| {
                            record
                                .value
                                .task_definition
                                .container_definitions
                                .unwrap_or_default()
                                .iter()
                                .filter(|c| c.essential != Some(false))
                                .filter_map(|c| c.health_check.as_ref()?.start_period)
                                .collect()
                        })
                        .unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
            periods.insert(
                task.task_definition_arn.clone(),
                deployments::settle_period_ms(start_periods),
            );
        }
        Ok(periods)
    }

    /// Starts a planned launch: REPLICA tasks wherever the scheduler places
    /// them (the service's constraints and strategy), a DAEMON task on its
    /// instance.
    async fn launch(
        &self,
        ctx: &RequestContext,
        cluster: &Cluster,
        service: &ServiceRecord,
        planned: &PlannedLaunch,
    ) -> Result<LaunchOutcome, ApiError> {
        let group = format!("service:{}", service.scheduling.service_name);
        let propagate_tags = service
            .propagate_tags
            .as_deref()
            .and_then(|p| p.parse::<PropagateTags>().ok());
        let prepared = self
            .prepare_launch(
                ctx,
                cluster,
                LaunchRequest {
                    task_definition: Some(&planned.task_definition_arn),
                    overrides: None,
                    group: Some(&group),
                    started_by: Some(&planned.deployment_id),
                    tags: None,
                    propagate_tags,
                    enable_ecs_managed_tags: Some(service.enable_ecs_managed_tags),
                    network_configuration: false,
                    enable_execute_command: None,
                    launch_type: if service.launch_type == "EXTERNAL" {
                        Compatibility::External
                    } else {
                        Compatibility::Ec2
                    },
                    service_tags: Some(&service.tags),
                    service_name: Some(&service.scheduling.service_name),
                },
            )
            .await;
        let launch = match prepared {
            Ok(launch) => launch,
            Err(err) if err.http_status < 500 => {
                return Ok(LaunchOutcome {
                    started: Vec::new(),
                    unplaced_reason: Some(format!("Reason: {}", err.message)),
                })
            }
            Err(err) => return Err(err),
        };
        match &planned.container_instance_id {
            Some(instance_id) => {
                self.launch_on_instance(ctx, &cluster.cluster_name, &launch, instance_id)
                    .await
            }
            None => {
                self.launch_placed(ctx, &cluster.cluster_name, service, &launch, planned.count)
                    .await
            }
        }
    }

    async fn launch_on_instance(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        launch: &Launch,
        instance_id: &str,
    ) -> Result<LaunchOutcome, ApiError> {
        Ok(
            match self
                .start_on_instance(ctx, cluster_name, launch, instance_id)
                .await?
            {
                Ok(task) => LaunchOutcome {
                    started: vec![task.id],
                    unplaced_reason: None,
                },
                Err(reason) => LaunchOutcome {
                    started: Vec::new(),
                    unplaced_reason: Some(closest_matching(instance_id, &reason)),
                },
            },
        )
    }

    async fn launch_placed(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        service: &ServiceRecord,
        launch: &Launch,
        count: u32,
    ) -> Result<LaunchOutcome, ApiError> {
        let (constraints, strategies) = placement::placement_from_wire(
            &service.placement_constraints,
            &service.placement_strategy,
        )?;
        let strategies = scheduler::PlacementStrategy::chain_or_default(
            strategies,
            scheduler::PlacementStrategy::service_default,
        );
        let task_request = placement::task_request(
            &launch.task_definition,
            &launch.reservation,
            &launch.group,
            constraints,
        )?;
        for attempt in 0..records::MAX_CAS_ATTEMPTS {
            let prototype = self.new_task(ctx, cluster_name, launch);
            let Some(placed) = self
                .place_and_commit(
                    ctx,
                    cluster_name,
                    prototype,
                    &task_request,
                    &strategies,
                    count as usize,
                    None,
                    attempt > 0,
                )
                .await?
            else {
                continue;
            };
            let unplaced_reason = if placed.no_container_instances {
                Some(NO_CONTAINER_INSTANCES_REASON.to_string())
            } else if placed.tasks.len() < count as usize {
                Some(match placed.failures.first() {
                    Some((Some(arn), reason)) => {
                        let id = arn.rsplit('/').next().unwrap_or(arn);
                        closest_matching(id, reason)
                    }
                    _ => NO_CONTAINER_INSTANCES_REASON.to_string(),
                })
            } else {
                None
            };
            return Ok(LaunchOutcome {
                started: placed.tasks.into_iter().map(|t| t.id).collect(),
                unplaced_reason,
            });
        }
        Err(records::too_much_contention(
            "the cluster's container instances",
        ))
    }
}

/// How soon a service that could not place all its tasks is planned again.
const UNPLACED_RETRY_MS: i64 = 5_000;

const NO_CONTAINER_INSTANCES_REASON: &str =
    "Reason: No Container Instances were found in your cluster.";

/// The second sentence of ECS's "unable to place a task" event.
fn closest_matching(instance_id: &str, reason: &str) -> String {
    let what = match reason {
        "RESOURCE:CPU" => "has insufficient CPU units available".to_string(),
        "RESOURCE:MEMORY" => "has insufficient memory available".to_string(),
        "RESOURCE:GPU" => "has insufficient GPU resources available".to_string(),
        "RESOURCE:PORTS" | "RESOURCE:PORTS_UDP" => {
            "is already using a port required by your task".to_string()
        }
        "ATTRIBUTE" => "is missing an attribute required by your task".to_string(),
        "MISSING" | "INACTIVE" => "is not ACTIVE".to_string(),
        other if other.starts_with("RESOURCE") => {
            format!("has insufficient {} available", &other[9..])
        }
        other => format!("encountered error \"{other}\""),
    };
    format!(
        "The closest matching (container-instance {instance_id}) {what}. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
    )
}

/// What one planned launch started.
struct LaunchOutcome {
    started: Vec<String>,
    /// The second sentence of the "unable to place" event, when not every
    /// task could be placed.
    unplaced_reason: Option<String>,
}

/// A cluster's service tasks and container instances, read once per pass.
struct ClusterSnapshot {
    tasks_by_group: BTreeMap<String, Vec<Task>>,
    /// Each instance with whether its agent is connected.
    instances: Vec<(ContainerInstance, bool)>,
}

/// The service's `memberOf` expressions, which decide where a DAEMON task
/// belongs.
fn daemon_constraints(service: &ServiceRecord) -> Vec<scheduler::Expr> {
    service
        .placement_constraints
        .iter()
        .filter(|c| c.type_.map(|t| t.as_str()) == Some("memberOf"))
        .filter_map(|c| c.expression.as_deref())
        .filter_map(|e| placement::parse_expression(e).ok())
        .collect()
}

/// An essential container exited with a non-zero code or was killed for
/// running out of memory.
fn essential_container_failed(task: &Task) -> bool {
    task.containers.iter().any(|c| {
        c.essential
            && (c.exit_code.is_some_and(|code| code != 0)
                || c.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("OutOfMemoryError")))
    })
}

fn observe_task(task: &Task, settle_period_ms: i64) -> ObservedTask {
    let phase = match task.last_status {
        TaskStatus::Running => TaskPhase::Running,
        TaskStatus::Stopped => TaskPhase::Stopped,
        status if status.is_pending() => TaskPhase::Pending,
        _ => TaskPhase::Stopping,
    };
    let checked = task
        .containers
        .iter()
        .any(|c| c.essential && c.health_status.is_some());
    let health = if !checked {
        TaskHealth::NoHealthCheck
    } else {
        match task.derived_health() {
            HealthStatus::Healthy => TaskHealth::Healthy,
            HealthStatus::Unhealthy => TaskHealth::Unhealthy,
            _ => TaskHealth::Unknown,
        }
    };
    let stop_cause = (task.last_status == TaskStatus::Stopped).then(|| match task.stop_code {
        Some(TaskStopCode::UserInitiated) => StopCause::Requested,
        Some(TaskStopCode::ServiceSchedulerInitiated)
            if task
                .stopped_reason
                .as_deref()
                .is_some_and(is_failed_health_checks_reason) =>
        {
            StopCause::FailedHealthChecks
        }
        Some(TaskStopCode::ServiceSchedulerInitiated) => StopCause::Requested,
        Some(TaskStopCode::EssentialContainerExited) if essential_container_failed(task) => {
            StopCause::EssentialContainerFailed
        }
        _ => StopCause::Failed,
    });
    ObservedTask {
        task_id: task.id.clone(),
        deployment_id: task.started_by.clone(),
        container_instance_id: task.container_instance_id.clone(),
        phase,
        desired_stopped: task.desired_status == DesiredStatus::Stopped,
        health,
        created_at_ms: task.created_at_ms,
        started_at_ms: task.started_at_ms,
        settle_period_ms,
        stopped_at_ms: task.stopped_at_ms,
        stop_cause,
        load_balancer_failure: None,
        scale_in_protected_until_ms: task.protection_expires_at_ms,
    }
}

/// The stoppedReason of a task replaced for failing container or load
/// balancer health checks.
fn is_failed_health_checks_reason(reason: &str) -> bool {
    reason == deployments::failed_health_checks_reason()
        || reason.starts_with(crate::load_balancing::FAILED_ELB_HEALTH_CHECKS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support;
    use serde_json::{json, Value};

    const NOW_MS: i64 = 1_700_000_000_000;

    /// Cluster `default`, `instances` container instances with their
    /// heartbeats, task definition `web:1`, and service `web` stored as
    /// CreateService stores it.
    async fn cluster_with_service(instances: usize, desired: u32) -> test_support::Harness {
        cluster_with(instances, desired, SchedulingStrategy::Replica).await
    }

    async fn cluster_with(
        instances: usize,
        desired: u32,
        strategy: SchedulingStrategy,
    ) -> test_support::Harness {
        let h = test_support::Harness::new();
        h.ok("CreateCluster", json!({})).await;
        for n in 0..instances {
            h.ok(
                "RegisterContainerInstance",
                json!({
                    "totalResources": [
                        {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024},
                        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": []},
                        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []}
                    ],
                    "attributes": [
                        {"name": "ecs.availability-zone", "value": format!("az-{}", n % 2)},
                        {"name": "ecs.capability.container-health-check"},
                        {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.24"}
                    ]
                }),
            )
            .await;
        }
        let registered = h
            .ok(
                "RegisterTaskDefinition",
                json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "busybox", "cpu": 256, "memory": 128}]}),
            )
            .await;
        let arn = registered["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_string();
        let record = ServiceRecord {
            cluster_name: "default".into(),
            scheduling: deployments::Service::new(
                deployments::NewService {
                    service_name: "web".into(),
                    scheduling_strategy: strategy,
                    desired_count: desired,
                    deployment_configuration: deployments::DeploymentConfiguration::default_for(
                        strategy,
                    ),
                    health_check_grace_period_ms: 0,
                    task_definition_arn: arn,
                },
                "ecs-svc/1000000000000000001".into(),
                NOW_MS,
            ),
            launch_type: "EC2".into(),
            placement_constraints: vec![],
            placement_strategy: vec![],
            tags: vec![],
            propagate_tags: None,
            enable_ecs_managed_tags: false,
            role_arn: None,
            created_by: None,
            load_balancers: vec![],
            version: 1,
        };
        let written = records::Write::new()
            .put(&keys::service("us-east-1", "default", "web"), &record)
            .put(&keys::service_region("us-east-1"), &json!({}))
            .commit(h.ecs.store())
            .await
            .unwrap();
        assert!(written);
        h
    }

    async fn service_tasks(h: &test_support::Harness) -> Vec<Value> {
        let arns = h
            .ok(
                "ListTasks",
                json!({"family": "web", "desiredStatus": "RUNNING"}),
            )
            .await["taskArns"]
            .clone();
        if arns.as_array().unwrap().is_empty() {
            return vec![];
        }
        h.ok("DescribeTasks", json!({"tasks": arns})).await["tasks"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// What an agent says once its containers run.
    async fn report_running(h: &test_support::Harness, tasks: &[Value]) {
        for task in tasks {
            h.ok(
                "SubmitTaskStateChange",
                json!({"task": task["taskArn"], "status": "RUNNING",
                    "containers": [{"containerName": "web", "status": "RUNNING", "runtimeId": "c"}]}),
            )
            .await;
        }
    }

    async fn stored(h: &test_support::Harness) -> ServiceRecord {
        records::get::<ServiceRecord>(h.ecs.store(), &keys::service("us-east-1", "default", "web"))
            .await
            .unwrap()
            .unwrap()
            .value
    }

    #[tokio::test]
    async fn a_service_is_launched_counted_and_reaches_a_steady_state() {
        let h = cluster_with_service(2, 3).await;
        let pass = h
            .ecs
            .reconcile_services("000000000000", NOW_MS, 1)
            .await
            .unwrap();
        assert_eq!(pass.services, 1);
        assert_eq!(pass.tasks_launched, 3);
        let tasks = service_tasks(&h).await;
        assert_eq!(tasks.len(), 3);
        for task in &tasks {
            assert_eq!(task["group"], "service:web");
            assert_eq!(task["startedBy"], "ecs-svc/1000000000000000001");
        }
        // Planning again before anything changed launches nothing more.
        let again = h
            .ecs
            .reconcile_services("000000000000", NOW_MS, 2)
            .await
            .unwrap();
        assert_eq!(again.tasks_launched, 0);

        report_running(&h, &tasks).await;
        // RUNNING through the settle period: COMPLETED.
        h.ecs
            .reconcile_services(
                "000000000000",
                NOW_MS + deployments::DEFAULT_SETTLE_PERIOD_MS,
                3,
            )
            .await
            .unwrap();
        let service = stored(&h).await.scheduling;
        assert_eq!(service.running_count, 3);
        assert_eq!(
            service.primary().rollout_state,
            deployments::RolloutState::Completed
        );
        let messages: Vec<&str> = service.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages[0], "(service web) has reached a steady state.");
        assert!(messages
            .iter()
            .any(|m| m.starts_with("(service web) has started 3 tasks: (task ")));
    }

    #[tokio::test]
    async fn a_stopped_task_is_replaced() {
        let h = cluster_with_service(1, 2).await;
        h.ecs
            .reconcile_services("000000000000", NOW_MS, 1)
            .await
            .unwrap();
        let tasks = service_tasks(&h).await;
        report_running(&h, &tasks).await;
        h.ecs
            .reconcile_services("000000000000", NOW_MS + 1, 2)
            .await
            .unwrap();
        // The container exits: the agent reports the task STOPPED.
        h.ok(
            "SubmitTaskStateChange",
            json!({"task": tasks[0]["taskArn"], "status": "STOPPED",
                "containers": [{"containerName": "web", "status": "STOPPED", "exitCode": 1}]}),
        )
        .await;
        let pass = h
            .ecs
            .reconcile_services("000000000000", NOW_MS + 2, 3)
            .await
            .unwrap();
        assert_eq!(pass.tasks_launched, 1);
        let live = service_tasks(&h).await;
        assert_eq!(live.len(), 2);
        assert!(live.iter().all(|t| t["taskArn"] != tasks[0]["taskArn"]));
    }

    #[tokio::test]
    async fn a_daemon_runs_once_on_every_instance_and_leaves_a_draining_one() {
        let h = cluster_with(3, 0, SchedulingStrategy::Daemon).await;
        let pass = h
            .ecs
            .reconcile_services("000000000000", NOW_MS, 1)
            .await
            .unwrap();
        assert_eq!(pass.tasks_launched, 3);
        let tasks = service_tasks(&h).await;
        let instances: std::collections::BTreeSet<&str> = tasks
            .iter()
            .map(|t| t["containerInstanceArn"].as_str().unwrap())
            .collect();
        assert_eq!(instances.len(), 3, "one task per instance");
        assert_eq!(stored(&h).await.scheduling.desired_count, 3);
        report_running(&h, &tasks).await;

        let draining = tasks[0]["containerInstanceArn"].clone();
        h.ok(
            "UpdateContainerInstancesState",
            json!({"containerInstances": [draining], "status": "DRAINING"}),
        )
        .await;
        let pass = h
            .ecs
            .reconcile_services("000000000000", NOW_MS + 1, 2)
            .await
            .unwrap();
        assert_eq!((pass.tasks_launched, pass.tasks_stopped), (0, 1));
        let left: Vec<Value> = service_tasks(&h).await;
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|t| t["containerInstanceArn"] != draining));
        assert_eq!(stored(&h).await.scheduling.desired_count, 2);
    }

    #[tokio::test]
    async fn a_task_failing_its_health_checks_is_replaced_after_the_grace_period() {
        let h = cluster_with_service(1, 1).await;
        // Revision 2 of `web` has a health check; the service moves to it.
        let registered = h
            .ok(
                "RegisterTaskDefinition",
                json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "busybox", "cpu": 256, "memory": 128,
                    "healthCheck": {"command": ["CMD", "true"]}}]}),
            )
            .await;
        let key = keys::service("us-east-1", "default", "web");
        let mut record = stored(&h).await;
        record.scheduling.health_check_grace_period_ms = 10_000;
        record.scheduling.update(
            deployments::ServiceUpdate {
                task_definition_arn: registered["taskDefinition"]["taskDefinitionArn"]
                    .as_str()
                    .map(str::to_string),
                ..Default::default()
            },
            "ecs-svc/1000000000000000002".into(),
            NOW_MS,
        );
        let current = records::get::<ServiceRecord>(h.ecs.store(), &key)
            .await
            .unwrap()
            .unwrap();
        assert!(records::Write::new()
            .expect(&key, current.mod_revision)
            .put(&key, &record)
            .commit(h.ecs.store())
            .await
            .unwrap());
        h.ecs
            .reconcile_services("000000000000", NOW_MS, 1)
            .await
            .unwrap();
        let [task] = service_tasks(&h).await.try_into().unwrap();
        let unhealthy = json!({"task": task["taskArn"], "status": "RUNNING",
            "containers": [{"containerName": "web", "status": "RUNNING", "runtimeId": "c", "healthStatus": "UNHEALTHY"}]});
        h.ok("SubmitTaskStateChange", unhealthy).await;

        // Inside the grace period (counted from when the task started) it stays.
        let started_ms = h
            .ok("DescribeTasks", json!({"tasks": [task["taskArn"]]}))
            .await["tasks"][0]["startedAt"]
            .as_f64()
            .map(|s| (s * 1000.0) as i64)
            .unwrap();
        let pass = h
            .ecs
            .reconcile_services("000000000000", started_ms + 5_000, 2)
            .await
            .unwrap();
        assert_eq!((pass.tasks_launched, pass.tasks_stopped), (0, 0));
        assert_eq!(pass.wake_at_ms, Some(started_ms + 10_000));

        let pass = h
            .ecs
            .reconcile_services("000000000000", started_ms + 10_000, 3)
            .await
            .unwrap();
        assert_eq!((pass.tasks_launched, pass.tasks_stopped), (1, 1));
        let stopped = h
            .ok("DescribeTasks", json!({"tasks": [task["taskArn"]]}))
            .await["tasks"][0]
            .clone();
        assert_eq!(stopped["stopCode"], "ServiceSchedulerInitiated");
        assert_eq!(
            stopped["stoppedReason"],
            "Task failed container health checks"
        );
        let messages: Vec<String> = stored(&h)
            .await
            .scheduling
            .events
            .iter()
            .map(|e| e.message.clone())
            .collect();
        let id = task["taskArn"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        assert!(
            messages.contains(&format!(
                "(service web) (task {id}) failed container health checks."
            )),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.ends_with(" Amazon ECS replaced 1 tasks due to an unhealthy status.")),
            "{messages:?}"
        );
    }

    /// Writes the service back after `change` (as UpdateService would).
    async fn change_service(h: &test_support::Harness, change: impl FnOnce(&mut ServiceRecord)) {
        let key = keys::service("us-east-1", "default", "web");
        let current = records::get::<ServiceRecord>(h.ecs.store(), &key)
            .await
            .unwrap()
            .unwrap();
        let mut record = current.value.clone();
        change(&mut record);
        assert!(records::Write::new()
            .expect(&key, current.mod_revision)
            .put(&key, &record)
            .commit(h.ecs.store())
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_service_that_places_nothing_has_no_pending_tasks() {
        // Issue 13: pendingCount stayed 2 with no task, and after desired 0.
        let h = cluster_with_service(0, 2).await;
        for n in 0..2 {
            let pass = h
                .ecs
                .reconcile_services("000000000000", NOW_MS + n, 1)
                .await
                .unwrap();
            assert_eq!(pass.tasks_launched, 0);
            let service = stored(&h).await.scheduling;
            assert_eq!((service.pending_count, service.running_count), (0, 0));
            assert_eq!(service.primary().pending_count, 0);
        }
        change_service(&h, |record| {
            record.scheduling.update(
                deployments::ServiceUpdate {
                    desired_count: Some(0),
                    ..Default::default()
                },
                "ecs-svc/1000000000000000009".into(),
                NOW_MS + 5,
            );
        })
        .await;
        h.ecs
            .reconcile_services("000000000000", NOW_MS + 10, 2)
            .await
            .unwrap();
        let service = stored(&h).await.scheduling;
        assert_eq!((service.pending_count, service.running_count), (0, 0));
        assert_eq!(service.primary().desired_count, 0);
    }

    #[tokio::test]
    async fn a_task_whose_essential_container_crashes_before_it_settles_is_a_failed_task() {
        let h = cluster_with_service(1, 1).await;
        h.ecs
            .reconcile_services("000000000000", NOW_MS, 1)
            .await
            .unwrap();
        let [task] = service_tasks(&h).await.try_into().unwrap();
        report_running(&h, std::slice::from_ref(&task)).await;
        h.ok(
            "SubmitTaskStateChange",
            json!({"task": task["taskArn"], "status": "STOPPED",
                "containers": [{"containerName": "web", "status": "STOPPED", "exitCode": 1}]}),
        )
        .await;
        let described = h
            .ok("DescribeTasks", json!({"tasks": [task["taskArn"]]}))
            .await["tasks"][0]
            .clone();
        let ms = |field: &str| (described[field].as_f64().unwrap() * 1000.0) as i64;
        // It ran for less than the default settle period (10 s).
        assert!(ms("stoppedAt") - ms("startedAt") < deployments::DEFAULT_SETTLE_PERIOD_MS);
        h.ecs
            .reconcile_services("000000000000", ms("stoppedAt") + 1, 2)
            .await
            .unwrap();
        let service = stored(&h).await.scheduling;
        assert_eq!(service.primary().failed_tasks, 1);
        assert_eq!(service.throttle.consecutive_failures, 1);
    }

    #[tokio::test]
    async fn the_settle_period_comes_from_the_health_checks_start_period() {
        let h = cluster_with_service(1, 1).await;
        let registered = h
            .ok(
                "RegisterTaskDefinition",
                json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "busybox", "cpu": 256, "memory": 128,
                    "healthCheck": {"command": ["CMD", "true"], "startPeriod": 25}}]}),
            )
            .await;
        let arn = registered["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_string();
        change_service(&h, |record| {
            record.scheduling.update(
                deployments::ServiceUpdate {
                    task_definition_arn: Some(arn),
                    ..Default::default()
                },
                "ecs-svc/1000000000000000002".into(),
                NOW_MS,
            );
        })
        .await;
        h.ecs
            .reconcile_services("000000000000", NOW_MS, 1)
            .await
            .unwrap();
        let [task] = service_tasks(&h).await.try_into().unwrap();
        h.ok(
            "SubmitTaskStateChange",
            json!({"task": task["taskArn"], "status": "RUNNING",
                "containers": [{"containerName": "web", "status": "RUNNING", "runtimeId": "c", "healthStatus": "HEALTHY"}]}),
        )
        .await;
        let started_ms = (h
            .ok("DescribeTasks", json!({"tasks": [task["taskArn"]]}))
            .await["tasks"][0]["startedAt"]
            .as_f64()
            .unwrap()
            * 1000.0) as i64;
        let pass = h
            .ecs
            .reconcile_services("000000000000", started_ms + 15_000, 2)
            .await
            .unwrap();
        assert_eq!(pass.wake_at_ms, Some(started_ms + 25_000));
        let service = stored(&h).await.scheduling;
        assert_eq!(
            service.primary().rollout_state,
            deployments::RolloutState::InProgress
        );
        h.ecs
            .reconcile_services("000000000000", started_ms + 25_000, 3)
            .await
            .unwrap();
        let service = stored(&h).await.scheduling;
        assert_eq!(
            service.primary().rollout_state,
            deployments::RolloutState::Completed,
            "{service:#?}"
        );
    }

    #[tokio::test]
    async fn without_instances_the_service_says_why_it_cannot_place() {
        let h = cluster_with_service(0, 1).await;
        let pass = h
            .ecs
            .reconcile_services("000000000000", NOW_MS, 1)
            .await
            .unwrap();
        assert_eq!(pass.tasks_launched, 0);
        assert!(pass.wake_at_ms.is_some());
        let service = stored(&h).await.scheduling;
        assert_eq!(
            service.events[0].message,
            "(service web) was unable to place a task because no container instance met all of its requirements. Reason: No Container Instances were found in your cluster."
        );
    }

    #[test]
    fn only_service_task_and_instance_keys_wake_the_controller() {
        assert!(key_concerns_services("/ecs/us-east-1/tasks/default/abc"));
        assert!(key_concerns_services("/ecs/us-east-1/services/default/web"));
        assert!(key_concerns_services(
            "/ecs/us-east-1/container-instances/default/i"
        ));
        assert!(!key_concerns_services(
            "/ecs/us-east-1/agent-heartbeats/default/i"
        ));
        assert!(!key_concerns_services("/iam/access-keys/x"));
    }

    #[test]
    fn closest_matching_names_the_shortfall() {
        assert_eq!(
            closest_matching("abc", "RESOURCE:MEMORY"),
            "The closest matching (container-instance abc) has insufficient memory available. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
        );
        assert!(closest_matching("abc", "RESOURCE:PORTS").contains("port required"));
    }
}
