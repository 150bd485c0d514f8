//! Changes the API makes to a service's scheduling state: create, update,
//! delete, and the event log.

use std::collections::BTreeSet;

use crate::{
    Deployment, DeploymentConfiguration, DeploymentOutcome, DeploymentStatus, RolloutState,
    SchedulingStrategy, Service, ServiceEvent, ServiceStatus, Throttle, MAX_EVENTS,
    MAX_FINISHED_DEPLOYMENTS,
};

// The scheduler's policies, re-exported here because `lib.rs` re-exports
// only `plan` from the `plan` module.
pub use crate::plan::{
    circuit_breaker_threshold, throttle_delay_ms, THROTTLE_BASE_DELAY_MS,
    THROTTLE_FAILURE_THRESHOLD, THROTTLE_MAX_DELAY_MS,
};

/// What CreateService asks for, validated by the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewService {
    pub service_name: String,
    pub scheduling_strategy: SchedulingStrategy,
    /// DAEMON: 0 (the planner sets it to the number of eligible instances).
    pub desired_count: u32,
    pub deployment_configuration: DeploymentConfiguration,
    pub health_check_grace_period_ms: i64,
    pub task_definition_arn: String,
}

/// What UpdateService asks for, validated by the API; `None` keeps the
/// current value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceUpdate {
    pub desired_count: Option<u32>,
    pub task_definition_arn: Option<String>,
    pub deployment_configuration: Option<DeploymentConfiguration>,
    pub health_check_grace_period_ms: Option<i64>,
    pub force_new_deployment: bool,
}

/// `ECS deployment <id> in progress.`
pub fn in_progress_reason(deployment_id: &str) -> String {
    format!("ECS deployment {deployment_id} in progress.")
}

fn new_deployment(
    id: String,
    task_definition_arn: String,
    desired_count: u32,
    deployment_configuration: DeploymentConfiguration,
    now_ms: i64,
) -> Deployment {
    Deployment {
        rollout_state_reason: in_progress_reason(&id),
        id,
        status: DeploymentStatus::Primary,
        task_definition_arn,
        desired_count,
        pending_count: 0,
        running_count: 0,
        failed_tasks: 0,
        rollout_state: RolloutState::InProgress,
        deployment_configuration,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        finished_at_ms: None,
        outcome: None,
        rollback_of: None,
    }
}

impl Service {
    pub fn new(spec: NewService, first_deployment_id: String, now_ms: i64) -> Service {
        let deployment = new_deployment(
            first_deployment_id,
            spec.task_definition_arn,
            spec.desired_count,
            spec.deployment_configuration,
            now_ms,
        );
        Service {
            service_name: spec.service_name,
            status: ServiceStatus::Active,
            scheduling_strategy: spec.scheduling_strategy,
            desired_count: spec.desired_count,
            deployment_configuration: spec.deployment_configuration,
            health_check_grace_period_ms: spec.health_check_grace_period_ms,
            deployments: vec![deployment],
            finished_deployments: Vec::new(),
            events: Vec::new(),
            next_event_number: 0,
            running_count: 0,
            pending_count: 0,
            steady_state: false,
            throttle: Throttle::default(),
            counted_failures: BTreeSet::new(),
            settled_tasks: BTreeSet::new(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }

    /// The deployment the service converges to.
    pub fn primary(&self) -> &Deployment {
        &self.deployments[0]
    }

    pub fn primary_mut(&mut self) -> &mut Deployment {
        &mut self.deployments[0]
    }

    /// Applies UpdateService. A new task definition (or
    /// `forceNewDeployment`) starts a new PRIMARY deployment with
    /// `new_deployment_id`; the old PRIMARY becomes ACTIVE and is drained.
    /// Returns whether a deployment was started.
    pub fn update(
        &mut self,
        update: ServiceUpdate,
        new_deployment_id: String,
        now_ms: i64,
    ) -> bool {
        if let Some(config) = update.deployment_configuration {
            self.deployment_configuration = config;
        }
        if let Some(grace_ms) = update.health_check_grace_period_ms {
            self.health_check_grace_period_ms = grace_ms;
        }
        if let Some(desired) = update.desired_count {
            self.desired_count = desired;
        }
        let task_definition_arn = update
            .task_definition_arn
            .unwrap_or_else(|| self.primary().task_definition_arn.clone());
        let new_deployment_needed = update.force_new_deployment
            || task_definition_arn != self.primary().task_definition_arn;
        self.updated_at_ms = now_ms;
        self.steady_state = false;
        if !new_deployment_needed {
            let desired = self.desired_count;
            let primary = self.primary_mut();
            primary.desired_count = desired;
            primary.updated_at_ms = now_ms;
            return false;
        }
        self.throttle = Throttle::default();
        for deployment in &mut self.deployments {
            if deployment.status == DeploymentStatus::Primary {
                deployment.status = DeploymentStatus::Active;
                deployment.updated_at_ms = now_ms;
                if deployment.outcome.is_none() {
                    deployment.outcome = Some(DeploymentOutcome::Stopped);
                    deployment.finished_at_ms = Some(now_ms);
                }
            }
        }
        let deployment = new_deployment(
            new_deployment_id,
            task_definition_arn,
            self.desired_count,
            self.deployment_configuration,
            now_ms,
        );
        self.deployments.insert(0, deployment);
        true
    }

    /// Applies DeleteService: the service drains to zero tasks and then goes
    /// INACTIVE (the planner does that).
    pub fn delete(&mut self, now_ms: i64) {
        self.status = ServiceStatus::Draining;
        self.desired_count = 0;
        self.steady_state = false;
        self.updated_at_ms = now_ms;
        for deployment in &mut self.deployments {
            deployment.desired_count = 0;
            deployment.updated_at_ms = now_ms;
        }
    }

    /// Adds an event (newest first, at most [`MAX_EVENTS`]). The same
    /// message as the newest event is not repeated.
    pub fn record_event(&mut self, now_ms: i64, message: String) {
        if self.events.first().is_some_and(|e| e.message == message) {
            return;
        }
        self.next_event_number += 1;
        let id = event_id(
            self.created_at_ms,
            &self.service_name,
            self.next_event_number,
        );
        self.events.insert(
            0,
            ServiceEvent {
                id,
                created_at_ms: now_ms,
                message,
            },
        );
        self.events.truncate(MAX_EVENTS);
    }

    /// Counts tasks the shell has just launched for a deployment (they are
    /// PENDING in the store now): the counts stay what the stored tasks
    /// say, whether a planned launch placed all, some or none of its tasks.
    pub fn record_started(&mut self, deployment_id: &str, count: u32, now_ms: i64) {
        if count == 0 {
            return;
        }
        if let Some(deployment) = self.deployments.iter_mut().find(|d| d.id == deployment_id) {
            deployment.pending_count += count;
            deployment.updated_at_ms = now_ms;
            self.pending_count += count;
        }
    }

    /// Moves a deployment with no tasks left out of `deployments`.
    pub fn retire_deployment(&mut self, index: usize, now_ms: i64) {
        let mut deployment = self.deployments.remove(index);
        deployment.status = DeploymentStatus::Inactive;
        deployment.updated_at_ms = now_ms;
        if deployment.finished_at_ms.is_none() {
            deployment.finished_at_ms = Some(now_ms);
        }
        self.finished_deployments.insert(0, deployment);
        self.finished_deployments.truncate(MAX_FINISHED_DEPLOYMENTS);
    }

    /// Every deployment, live or finished, newest first.
    pub fn all_deployments(&self) -> impl Iterator<Item = &Deployment> {
        let mut all: Vec<&Deployment> = self
            .deployments
            .iter()
            .chain(self.finished_deployments.iter())
            .collect();
        all.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then(b.id.cmp(&a.id)));
        all.into_iter()
    }
}

/// A UUID-shaped id, unique within a service, from values the service
/// already has (no randomness here).
fn event_id(created_at_ms: i64, service_name: &str, number: u64) -> String {
    let name_hash = service_name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let a = (created_at_ms as u64) ^ name_hash;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a as u16,
        (number >> 48) as u16,
        number & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NewService {
        NewService {
            service_name: "web".into(),
            scheduling_strategy: SchedulingStrategy::Replica,
            desired_count: 2,
            deployment_configuration: DeploymentConfiguration::default_for(
                SchedulingStrategy::Replica,
            ),
            health_check_grace_period_ms: 0,
            task_definition_arn: "td:1".into(),
        }
    }

    #[test]
    fn update_with_new_task_definition_starts_a_primary_deployment() {
        let mut service = Service::new(spec(), "ecs-svc/1".into(), 10);
        let started = service.update(
            ServiceUpdate {
                task_definition_arn: Some("td:2".into()),
                ..ServiceUpdate::default()
            },
            "ecs-svc/2".into(),
            20,
        );
        assert!(started);
        assert_eq!(service.deployments.len(), 2);
        assert_eq!(service.primary().id, "ecs-svc/2");
        assert_eq!(
            service.primary().rollout_state_reason,
            "ECS deployment ecs-svc/2 in progress."
        );
        assert_eq!(service.deployments[1].status, DeploymentStatus::Active);
        assert_eq!(
            service.deployments[1].outcome,
            Some(DeploymentOutcome::Stopped)
        );
    }

    #[test]
    fn update_of_desired_count_only_keeps_the_deployment() {
        let mut service = Service::new(spec(), "ecs-svc/1".into(), 10);
        let started = service.update(
            ServiceUpdate {
                desired_count: Some(5),
                ..ServiceUpdate::default()
            },
            "ecs-svc/2".into(),
            20,
        );
        assert!(!started);
        assert_eq!(service.deployments.len(), 1);
        assert_eq!(service.primary().desired_count, 5);
    }

    #[test]
    fn events_are_newest_first_bounded_and_not_repeated() {
        let mut service = Service::new(spec(), "ecs-svc/1".into(), 10);
        service.record_event(1, "a".into());
        service.record_event(2, "a".into());
        assert_eq!(service.events.len(), 1);
        for n in 0..150 {
            service.record_event(3 + n, format!("m{n}"));
        }
        assert_eq!(service.events.len(), MAX_EVENTS);
        assert_eq!(service.events[0].message, "m149");
        let ids: BTreeSet<&str> = service.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), MAX_EVENTS);
    }
}
