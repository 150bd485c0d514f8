//! The service controller's load balancer step, run for each service before
//! it is planned: register RUNNING tasks in the service's target groups,
//! deregister tasks that are stopping, let DEACTIVATING tasks stop once
//! their targets have drained, and tell the planner which tasks the load
//! balancer finds healthy. The rules are `load_balancing`'s pure functions;
//! this is their shell.

use std::collections::BTreeMap;

use deployments::{LoadBalancerFailure, TaskHealth};
use model::container_instance::ContainerInstance;
use model::task::{DesiredStatus, LoadBalancerTarget, Task, TaskStatus};

use crate::load_balancing::{
    self, combined_health, draining_finished, TargetGroupSummary, TargetGroups, TargetObservation,
};
use crate::services::ServiceRecord;
use crate::{ApiError, Ecs, RequestContext};

/// How long past the deregistration delay a DEACTIVATING task waits for the
/// load balancer to report its draining over (the load balancer may not be
/// running) before its containers are stopped anyway.
const DRAINING_SLACK_MS: i64 = 5_000;
/// While targets are draining or being health checked, the service is
/// planned again this soon (the load balancer's view is not in the store,
/// so no store change wakes the controller).
const TARGET_POLL_MS: i64 = 250;

/// What the step found and did.
#[derive(Debug, Default)]
pub(crate) struct TargetsStep {
    /// Registered (or registering) tasks: the health to plan with, and how to
    /// report them if they are replaced for an unhealthy target.
    pub health: BTreeMap<String, (TaskHealth, Option<LoadBalancerFailure>)>,
    /// Service events, in order.
    pub events: Vec<String>,
    pub wake_at_ms: Option<i64>,
}

impl TargetsStep {
    fn wake_soon(&mut self, now_ms: i64) {
        self.wake_at_ms = Some(now_ms + TARGET_POLL_MS);
    }
}

/// Target groups looked up once per step.
struct Summaries<'a> {
    source: &'a dyn TargetGroups,
    region: &'a str,
    known: BTreeMap<String, Option<TargetGroupSummary>>,
}

impl Summaries<'_> {
    async fn get(&mut self, arn: &str) -> Result<Option<&TargetGroupSummary>, ApiError> {
        if !self.known.contains_key(arn) {
            let summary = self.source.describe(self.region, arn).await?;
            self.known.insert(arn.to_string(), summary);
        }
        Ok(self.known.get(arn).and_then(Option::as_ref))
    }
}

/// `targets` by target group, in order.
fn by_target_group(
    targets: impl IntoIterator<Item = LoadBalancerTarget>,
) -> BTreeMap<String, Vec<LoadBalancerTarget>> {
    let mut groups: BTreeMap<String, Vec<LoadBalancerTarget>> = BTreeMap::new();
    for target in targets {
        groups
            .entry(target.target_group_arn.clone())
            .or_default()
            .push(target);
    }
    groups
}

impl Ecs {
    /// The load balancer step for one service (`tasks`: its tasks;
    /// `container_health`: each task's health from its containers).
    pub(crate) async fn reconcile_targets(
        &self,
        ctx: &RequestContext,
        service: &ServiceRecord,
        tasks: &[Task],
        instances: &[(ContainerInstance, bool)],
        container_health: &BTreeMap<String, TaskHealth>,
    ) -> Result<TargetsStep, ApiError> {
        let mut step = TargetsStep::default();
        let involved = !service.load_balancers.is_empty()
            || tasks.iter().any(|t| !t.load_balancer_targets.is_empty());
        if !involved {
            return Ok(step);
        }
        let Some(source) = self.target_groups() else {
            tracing::warn!(
                service = %service.scheduling.service_name,
                "the service uses load balancers, but this server runs none"
            );
            return Ok(step);
        };
        let mut summaries = Summaries {
            source,
            region: &ctx.region,
            known: BTreeMap::new(),
        };
        let name = &service.scheduling.service_name;
        self.register_running_tasks(ctx, service, tasks, instances, source, &mut step)
            .await?;
        self.deregister_stopping_tasks(ctx, name, tasks, source, &mut step)
            .await?;
        self.finish_draining(ctx, tasks, source, &mut summaries, &mut step)
            .await?;
        // The health of registered tasks still in service.
        for task in tasks {
            if task.last_status != TaskStatus::Running
                || task.desired_status != DesiredStatus::Running
            {
                continue;
            }
            let containers = container_health
                .get(&task.id)
                .copied()
                .unwrap_or(TaskHealth::NoHealthCheck);
            if task.load_balancer_targets.is_empty() {
                if !service.load_balancers.is_empty() {
                    // Not registered yet: not healthy for deployments.
                    step.health
                        .insert(task.id.clone(), (TaskHealth::Unknown, None));
                    step.wake_soon(ctx.now_ms);
                }
                continue;
            }
            let mut observed = Vec::new();
            let mut failure = None;
            for target in &task.load_balancer_targets {
                let observation = source.observe(target);
                let checked = summaries
                    .get(&target.target_group_arn)
                    .await?
                    .is_some_and(|s| s.health_check_enabled && !s.load_balancer_arns.is_empty());
                if checked {
                    match &observation {
                        TargetObservation::Unhealthy { description } if failure.is_none() => {
                            failure = Some(LoadBalancerFailure {
                                event_message: load_balancing::unhealthy_target_message(
                                    name,
                                    target,
                                    description,
                                ),
                                stopped_reason: load_balancing::failed_elb_health_checks_reason(
                                    &target.target_group_arn,
                                ),
                            });
                        }
                        TargetObservation::Healthy | TargetObservation::Unhealthy { .. } => {}
                        _ => step.wake_soon(ctx.now_ms),
                    }
                }
                observed.push((observation, checked));
            }
            let health = combined_health(containers, &observed);
            let failure = failure.filter(|_| health == TaskHealth::Unhealthy);
            step.health.insert(task.id.clone(), (health, failure));
        }
        Ok(step)
    }

    /// RUNNING tasks not yet registered get their targets registered, then
    /// recorded on the task (a crash in between registers them again, which
    /// changes nothing).
    async fn register_running_tasks(
        &self,
        ctx: &RequestContext,
        service: &ServiceRecord,
        tasks: &[Task],
        instances: &[(ContainerInstance, bool)],
        source: &dyn TargetGroups,
        step: &mut TargetsStep,
    ) -> Result<(), ApiError> {
        if service.load_balancers.is_empty() {
            return Ok(());
        }
        let mut pending: Vec<(&Task, Vec<LoadBalancerTarget>)> = Vec::new();
        for task in tasks {
            if task.last_status != TaskStatus::Running
                || task.desired_status != DesiredStatus::Running
                || !task.load_balancer_targets.is_empty()
            {
                continue;
            }
            let Some((instance, _)) = instances
                .iter()
                .find(|(i, _)| Some(&i.id) == task.container_instance_id.as_ref())
            else {
                continue;
            };
            match load_balancing::task_targets(
                task,
                &service.load_balancers,
                &instance.ec2_instance_id,
            ) {
                Ok(targets) => pending.push((task, targets)),
                Err(why) => {
                    tracing::warn!(task = %task.id, %why, "cannot register the task with its load balancers")
                }
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let groups = by_target_group(pending.iter().flat_map(|(_, t)| t.iter().cloned()));
        for (arn, targets) in &groups {
            source.register(&ctx.region, arn, targets).await?;
        }
        for (task, targets) in &pending {
            self.modify_task(ctx, &task.cluster_name, &task.id, |stored| {
                if !stored.load_balancer_targets.is_empty() {
                    return Ok(false);
                }
                stored.load_balancer_targets = targets.clone();
                Ok(true)
            })
            .await?;
        }
        for (arn, targets) in &groups {
            step.events.push(load_balancing::registered_targets_message(
                &service.scheduling.service_name,
                targets.len(),
                arn,
            ));
        }
        step.wake_soon(ctx.now_ms);
        Ok(())
    }

    /// Registered tasks that are to stop (or stopped) get their targets
    /// deregistered: the load balancer drains them.
    async fn deregister_stopping_tasks(
        &self,
        ctx: &RequestContext,
        service_name: &str,
        tasks: &[Task],
        source: &dyn TargetGroups,
        step: &mut TargetsStep,
    ) -> Result<(), ApiError> {
        let leaving: Vec<&Task> = tasks
            .iter()
            .filter(|t| {
                !t.load_balancer_targets.is_empty()
                    && t.targets_deregistered_at_ms.is_none()
                    && (t.desired_status == DesiredStatus::Stopped
                        || t.last_status >= TaskStatus::Deactivating)
            })
            .collect();
        if leaving.is_empty() {
            return Ok(());
        }
        let groups = by_target_group(
            leaving
                .iter()
                .flat_map(|t| t.load_balancer_targets.iter().cloned()),
        );
        for (arn, targets) in &groups {
            source.deregister(&ctx.region, arn, targets).await?;
        }
        let now = ctx.now_ms;
        for task in &leaving {
            self.modify_task(ctx, &task.cluster_name, &task.id, |stored| {
                if stored.targets_deregistered_at_ms.is_some() {
                    return Ok(false);
                }
                stored.targets_deregistered_at_ms = Some(now);
                Ok(true)
            })
            .await?;
        }
        let draining = leaving
            .iter()
            .filter(|t| t.last_status == TaskStatus::Deactivating)
            .count();
        if draining > 0 {
            step.events
                .push(load_balancing::draining_connections_message(
                    service_name,
                    draining,
                ));
        }
        for (arn, targets) in &groups {
            step.events
                .push(load_balancing::deregistered_targets_message(
                    service_name,
                    targets.len(),
                    arn,
                ));
        }
        step.wake_soon(ctx.now_ms);
        Ok(())
    }

    /// DEACTIVATING tasks whose targets have drained move on to STOPPING:
    /// their agents stop the containers.
    async fn finish_draining(
        &self,
        ctx: &RequestContext,
        tasks: &[Task],
        source: &dyn TargetGroups,
        summaries: &mut Summaries<'_>,
        step: &mut TargetsStep,
    ) -> Result<(), ApiError> {
        for task in tasks {
            if task.last_status != TaskStatus::Deactivating {
                continue;
            }
            let finished = match task.targets_deregistered_at_ms {
                // Deregistered by this very step: look again soon.
                None if !task.load_balancer_targets.is_empty() => false,
                None => true,
                Some(deregistered_at_ms) => {
                    let mut longest_delay_ms = 0;
                    let mut observations = Vec::new();
                    for target in &task.load_balancer_targets {
                        if let Some(summary) = summaries.get(&target.target_group_arn).await? {
                            longest_delay_ms =
                                longest_delay_ms.max(summary.deregistration_delay_ms);
                        }
                        observations.push(source.observe(target));
                    }
                    draining_finished(
                        &observations,
                        deregistered_at_ms,
                        longest_delay_ms,
                        DRAINING_SLACK_MS,
                        ctx.now_ms,
                    )
                }
            };
            if !finished {
                step.wake_soon(ctx.now_ms);
                continue;
            }
            self.modify_task(ctx, &task.cluster_name, &task.id, |stored| {
                if stored.last_status != TaskStatus::Deactivating {
                    return Ok(false);
                }
                stored.last_status = TaskStatus::Stopping;
                Ok(true)
            })
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{json, Value};

    use super::*;
    use crate::records;
    use crate::test_support::{ctx, Harness};
    use crate::{keys, load_balancing::ServiceLoadBalancer};

    const NOW_MS: i64 = 1_700_000_000_000;
    const TG: &str =
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef";

    /// Target groups in memory: what is registered, and what the test says
    /// the load balancer observes.
    #[derive(Default)]
    struct FakeTargetGroups {
        registered: Mutex<Vec<LoadBalancerTarget>>,
        observed: Mutex<BTreeMap<LoadBalancerTarget, TargetObservation>>,
    }

    impl FakeTargetGroups {
        fn registered(&self) -> Vec<LoadBalancerTarget> {
            self.registered.lock().unwrap().clone()
        }
        fn observe_all(&self, targets: &[LoadBalancerTarget], observation: TargetObservation) {
            let mut observed = self.observed.lock().unwrap();
            for target in targets {
                observed.insert(target.clone(), observation.clone());
            }
        }
    }

    #[async_trait::async_trait]
    impl TargetGroups for FakeTargetGroups {
        async fn describe(
            &self,
            _region: &str,
            arn: &str,
        ) -> Result<Option<TargetGroupSummary>, ApiError> {
            Ok((arn == TG).then(|| TargetGroupSummary {
                target_group_arn: TG.into(),
                target_type: "instance".into(),
                load_balancer_arns: vec!["lb".into()],
                health_check_enabled: true,
                deregistration_delay_ms: 300_000,
            }))
        }
        async fn register(
            &self,
            _region: &str,
            _arn: &str,
            targets: &[LoadBalancerTarget],
        ) -> Result<(), ApiError> {
            let mut registered = self.registered.lock().unwrap();
            for target in targets {
                if !registered.contains(target) {
                    registered.push(target.clone());
                }
            }
            Ok(())
        }
        async fn deregister(
            &self,
            _region: &str,
            _arn: &str,
            targets: &[LoadBalancerTarget],
        ) -> Result<(), ApiError> {
            self.registered
                .lock()
                .unwrap()
                .retain(|target| !targets.contains(target));
            Ok(())
        }
        fn observe(&self, target: &LoadBalancerTarget) -> TargetObservation {
            self.observed
                .lock()
                .unwrap()
                .get(target)
                .cloned()
                .unwrap_or(TargetObservation::NotServed)
        }
    }

    /// One instance and service `web` (2 tasks of a container `web` with
    /// port 8080) behind target group [`TG`].
    async fn service_behind_a_load_balancer(fake: Arc<FakeTargetGroups>) -> Harness {
        let Harness { ecs } = Harness::new();
        let h = Harness {
            ecs: ecs.with_target_groups(fake),
        };
        h.ok("CreateCluster", json!({})).await;
        h.ok(
            "RegisterContainerInstance",
            json!({"totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}
            ]}),
        )
        .await;
        h.ok(
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "busybox",
                "memory": 64, "portMappings": [{"containerPort": 8080, "hostPort": 0}]}]}),
        )
        .await;
        h.ok(
            "CreateService",
            json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 2,
                "loadBalancers": [{"targetGroupArn": TG, "containerName": "web", "containerPort": 8080}]}),
        )
        .await;
        h
    }

    async fn pass(h: &Harness, at_ms: i64) {
        h.ecs
            .reconcile_services("000000000000", at_ms, at_ms as u64)
            .await
            .unwrap();
    }

    async fn tasks(h: &Harness, desired: &str) -> Vec<Value> {
        let arns = h
            .ok(
                "ListTasks",
                json!({"serviceName": "web", "desiredStatus": desired}),
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

    async fn service(h: &Harness) -> ServiceRecord {
        records::get::<ServiceRecord>(h.ecs.store(), &keys::service("us-east-1", "default", "web"))
            .await
            .unwrap()
            .unwrap()
            .value
    }

    async fn messages(h: &Harness) -> Vec<String> {
        service(h)
            .await
            .scheduling
            .events
            .iter()
            .map(|e| e.message.clone())
            .collect()
    }

    /// The agent reports the tasks RUNNING with host ports 32768, 32769, ….
    async fn report_running(h: &Harness, tasks: &[Value], first_port: i32) {
        for (n, task) in tasks.iter().enumerate() {
            h.ok(
                "SubmitTaskStateChange",
                json!({"task": task["taskArn"], "status": "RUNNING",
                    "containers": [{"containerName": "web", "status": "RUNNING", "runtimeId": "c",
                        "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 8080,
                            "hostPort": first_port + n as i32, "protocol": "tcp"}]}]}),
            )
            .await;
        }
    }

    async fn agent_view(h: &Harness, task_arn: &Value) -> (String, String) {
        let task = &tasks(h, "STOPPED").await[0];
        let instance_id = task["containerInstanceArn"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let (_, desired) = h
            .ecs
            .agent_desired_tasks(&ctx("us-east-1"), "default", &instance_id)
            .await
            .unwrap();
        let mine = desired
            .iter()
            .find(|d| Some(d.task_arn.as_str()) == task_arn.as_str())
            .unwrap();
        (
            mine.desired_status.as_str().to_string(),
            mine.last_status.as_str().to_string(),
        )
    }

    #[tokio::test]
    async fn tasks_are_registered_counted_healthy_by_their_targets_and_drained_before_stopping() {
        const SETTLED: i64 = deployments::DEFAULT_SETTLE_PERIOD_MS;
        let fake = Arc::new(FakeTargetGroups::default());
        let h = service_behind_a_load_balancer(Arc::clone(&fake)).await;
        assert_eq!(
            service(&h).await.load_balancers,
            [ServiceLoadBalancer {
                target_group_arn: TG.into(),
                container_name: "web".into(),
                container_port: 8080,
            }]
        );
        pass(&h, NOW_MS).await;
        let launched = tasks(&h, "RUNNING").await;
        assert_eq!(launched.len(), 2);
        report_running(&h, &launched, 32768).await;

        // RUNNING tasks are registered: the instance and each host port.
        pass(&h, NOW_MS + 1).await;
        let registered = fake.registered();
        let ports: Vec<u16> = registered.iter().map(|t| t.port).collect();
        assert_eq!(ports.len(), 2);
        assert!(ports.contains(&32768) && ports.contains(&32769));
        assert!(registered.iter().all(|t| t.target_id.starts_with("i-")));
        assert!(messages(&h).await.contains(&format!(
            "(service web) registered 2 targets in (target-group {TG})"
        )));
        // Not yet healthy in the target group: the deployment waits.
        pass(&h, NOW_MS + 2).await;
        let primary = service(&h).await.scheduling.primary().clone();
        assert_eq!(primary.rollout_state, deployments::RolloutState::InProgress);

        // Healthy, and RUNNING through the settle period: COMPLETED.
        fake.observe_all(&registered, TargetObservation::Healthy);
        pass(&h, NOW_MS + SETTLED + 3).await;
        let scheduling = service(&h).await.scheduling;
        assert_eq!(
            scheduling.primary().rollout_state,
            deployments::RolloutState::Completed
        );
        assert_eq!(
            fake.registered().len(),
            2,
            "registering twice changes nothing"
        );

        // Scale-in: the task leaves through DEACTIVATING; its agent keeps it
        // running until the target has drained.
        h.ok(
            "UpdateService",
            json!({"service": "web", "desiredCount": 1}),
        )
        .await;
        pass(&h, NOW_MS + SETTLED + 4).await;
        let leaving = tasks(&h, "STOPPED").await;
        assert_eq!(leaving.len(), 1);
        assert_eq!(leaving[0]["lastStatus"], "DEACTIVATING");
        assert_eq!(
            agent_view(&h, &leaving[0]["taskArn"]).await,
            ("RUNNING".to_string(), "RUNNING".to_string())
        );
        pass(&h, NOW_MS + SETTLED + 5).await;
        assert_eq!(fake.registered().len(), 1);
        let events = messages(&h).await;
        assert!(events
            .contains(&"(service web) has begun draining connections on 1 tasks.".to_string()));
        assert!(events.contains(&format!(
            "(service web) deregistered 1 targets in (target-group {TG})"
        )));
        let gone: Vec<LoadBalancerTarget> = registered
            .iter()
            .filter(|t| !fake.registered().contains(t))
            .cloned()
            .collect();
        fake.observe_all(&gone, TargetObservation::Draining);
        pass(&h, NOW_MS + SETTLED + 6).await;
        assert_eq!(tasks(&h, "STOPPED").await[0]["lastStatus"], "DEACTIVATING");

        // Drained: the containers may stop now.
        fake.observe_all(&gone, TargetObservation::NotServed);
        pass(&h, NOW_MS + SETTLED + 7).await;
        assert_eq!(tasks(&h, "STOPPED").await[0]["lastStatus"], "STOPPING");
        assert_eq!(
            agent_view(&h, &leaving[0]["taskArn"]).await,
            ("STOPPED".to_string(), "STOPPING".to_string())
        );
    }

    #[tokio::test]
    async fn a_task_whose_target_fails_health_checks_is_replaced() {
        let fake = Arc::new(FakeTargetGroups::default());
        let h = service_behind_a_load_balancer(Arc::clone(&fake)).await;
        pass(&h, NOW_MS).await;
        report_running(&h, &tasks(&h, "RUNNING").await, 32768).await;
        pass(&h, NOW_MS + 1).await;
        let registered = fake.registered();
        fake.observe_all(&registered, TargetObservation::Healthy);
        fake.observe_all(
            &registered[..1],
            TargetObservation::Unhealthy {
                description: "Health checks failed with these codes: [500]".into(),
            },
        );
        pass(&h, NOW_MS + 2).await;
        let stopping = tasks(&h, "STOPPED").await;
        assert_eq!(stopping.len(), 1);
        assert_eq!(
            stopping[0]["stoppedReason"],
            format!("Task failed ELB health checks in (target-group {TG})")
        );
        assert_eq!(stopping[0]["lastStatus"], "DEACTIVATING");
        let target = &registered[0];
        assert!(messages(&h).await.contains(&format!(
            "(service web) (instance {}) (port {}) is unhealthy in (target-group {TG}) due to (reason Health checks failed with these codes: [500]).",
            target.target_id, target.port
        )));
    }

    #[tokio::test]
    async fn a_stopped_task_no_load_balancer_serves_stops_at_once() {
        let fake = Arc::new(FakeTargetGroups::default());
        let h = service_behind_a_load_balancer(Arc::clone(&fake)).await;
        pass(&h, NOW_MS).await;
        report_running(&h, &tasks(&h, "RUNNING").await, 32768).await;
        pass(&h, NOW_MS + 1).await;
        // The load balancer never reports anything (it does not run), and
        // the task is stopped by hand.
        let task = tasks(&h, "RUNNING").await[0]["taskArn"].clone();
        h.ok("StopTask", json!({"task": task})).await;
        pass(&h, NOW_MS + 2).await;
        // "Not served" means drained: nothing to wait for.
        pass(&h, NOW_MS + 3).await;
        let stopped = tasks(&h, "STOPPED").await;
        assert_eq!(stopped[0]["lastStatus"], "STOPPING");
        assert_eq!(stopped[0]["stopCode"], "UserInitiated");
    }
}
