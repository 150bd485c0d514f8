//! Data-driven tests of [`plan`]: each builds a service, its tasks and the
//! cluster's instances compactly, plans, and compares a one-line-per-action
//! summary (plus the fields the rule is about).

use crate::plan::replica::{maximum_tasks, minimum_healthy};
use crate::*;

const D1: &str = "ecs-svc/1";
const D2: &str = "ecs-svc/2";
const NOW: i64 = 1_000_000;

fn spec(strategy: SchedulingStrategy, desired_count: u32) -> NewService {
    NewService {
        service_name: "web".into(),
        scheduling_strategy: strategy,
        desired_count,
        deployment_configuration: DeploymentConfiguration::default_for(strategy),
        health_check_grace_period_ms: 0,
        task_definition_arn: "td:1".into(),
    }
}

/// A REPLICA service whose first deployment (`ecs-svc/1`, `td:1`) is still
/// IN_PROGRESS.
fn replica(desired_count: u32) -> Service {
    Service::new(
        spec(SchedulingStrategy::Replica, desired_count),
        D1.into(),
        0,
    )
}

fn daemon() -> Service {
    Service::new(spec(SchedulingStrategy::Daemon, 0), D1.into(), 0)
}

fn configured(mut service: Service, min: u32, max: u32) -> Service {
    service.deployment_configuration.minimum_healthy_percent = min;
    service.deployment_configuration.maximum_percent = max;
    service
}

fn with_breaker(mut service: Service, rollback: bool) -> Service {
    let breaker = CircuitBreaker {
        enable: true,
        rollback,
        ..CircuitBreaker::default()
    };
    service.deployment_configuration.circuit_breaker = breaker;
    for deployment in &mut service.deployments {
        deployment.deployment_configuration.circuit_breaker = breaker;
    }
    service
}

/// Marks the PRIMARY deployment COMPLETED, as the planner would have.
fn completed(mut service: Service) -> Service {
    let primary = service.primary_mut();
    primary.rollout_state = RolloutState::Completed;
    primary.rollout_state_reason = completed_reason(&primary.id);
    primary.outcome = Some(DeploymentOutcome::Successful);
    primary.finished_at_ms = Some(10);
    service
}

/// UpdateService to `td:2`, starting `ecs-svc/2`.
fn updated(mut service: Service) -> Service {
    service.update(
        ServiceUpdate {
            task_definition_arn: Some("td:2".into()),
            ..ServiceUpdate::default()
        },
        D2.into(),
        100,
    );
    service
}

/// A task RUNNING without health checks on `i1`, created in id order.
fn task(id: &str, deployment_id: &str) -> ObservedTask {
    let created_at_ms = 1000 + id.bytes().map(i64::from).sum::<i64>();
    ObservedTask {
        task_id: id.into(),
        deployment_id: Some(deployment_id.into()),
        container_instance_id: Some("i1".into()),
        phase: TaskPhase::Running,
        desired_stopped: false,
        health: TaskHealth::NoHealthCheck,
        created_at_ms,
        started_at_ms: Some(created_at_ms + 1),
        settle_period_ms: DEFAULT_SETTLE_PERIOD_MS,
        stopped_at_ms: None,
        stop_cause: None,
        load_balancer_failure: None,
        scale_in_protected_until_ms: None,
    }
}

trait TaskExt: Sized {
    fn on(self, instance: &str) -> Self;
    fn pending(self) -> Self;
    fn health(self, health: TaskHealth) -> Self;
    fn started_at(self, ms: i64) -> Self;
    fn leaving(self) -> Self;
    /// Task scale-in protection until `ms`.
    fn protected_until(self, ms: i64) -> Self;
    /// STOPPED with `cause`; `ran`: it had reached RUNNING.
    fn stopped(self, cause: StopCause, ran: bool) -> Self;
}

impl TaskExt for ObservedTask {
    fn on(mut self, instance: &str) -> Self {
        self.container_instance_id = Some(instance.into());
        self
    }
    fn pending(mut self) -> Self {
        self.phase = TaskPhase::Pending;
        self.started_at_ms = None;
        self
    }
    fn health(mut self, health: TaskHealth) -> Self {
        self.health = health;
        self
    }
    fn started_at(mut self, ms: i64) -> Self {
        self.started_at_ms = Some(ms);
        self
    }
    fn leaving(mut self) -> Self {
        self.desired_stopped = true;
        self
    }
    fn protected_until(mut self, ms: i64) -> Self {
        self.scale_in_protected_until_ms = Some(ms);
        self
    }
    fn stopped(mut self, cause: StopCause, ran: bool) -> Self {
        self.phase = TaskPhase::Stopped;
        self.stop_cause = Some(cause);
        self.stopped_at_ms = Some(self.created_at_ms + 500);
        if !ran {
            self.started_at_ms = None;
        }
        self
    }
}

fn instance(id: &str) -> ObservedInstance {
    ObservedInstance {
        container_instance_id: id.into(),
        active: true,
        draining: false,
        agent_connected: true,
        daemon_eligible: true,
    }
}

fn draining(id: &str) -> ObservedInstance {
    ObservedInstance {
        active: false,
        draining: true,
        ..instance(id)
    }
}

fn disconnected(id: &str) -> ObservedInstance {
    ObservedInstance {
        agent_connected: false,
        ..instance(id)
    }
}

fn cluster() -> Vec<ObservedInstance> {
    vec![instance("i1"), instance("i2"), instance("i3")]
}

fn run(service: &Service, tasks: &[ObservedTask], instances: &[ObservedInstance]) -> Plan {
    plan(service, tasks, instances, NOW)
}

/// One line per action: `launch <deployment> <task definition> x<count>
/// [on <instance>]` then `stop <task>: <reason>`.
fn summary(plan: &Plan) -> String {
    let mut lines = Vec::new();
    for launch in &plan.launches {
        let mut line = format!(
            "launch {} {} x{}",
            launch.deployment_id, launch.task_definition_arn, launch.count
        );
        if let Some(id) = &launch.container_instance_id {
            line.push_str(&format!(" on {id}"));
        }
        lines.push(line);
    }
    for stop in &plan.stops {
        lines.push(format!("stop {}: {}", stop.task_id, stop.reason));
    }
    lines.join("\n")
}

/// Plans and compares the actions with `expected` (one line per action).
fn check(
    service: &Service,
    tasks: &[ObservedTask],
    instances: &[ObservedInstance],
    expected: &str,
) -> Plan {
    let plan = run(service, tasks, instances);
    let expected: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(summary(&plan), expected.join("\n"));
    plan
}

fn messages(service: &Service) -> Vec<&str> {
    service.events.iter().map(|e| e.message.as_str()).collect()
}

fn scaling(deployment_id: &str) -> String {
    scaling_activity_reason(deployment_id)
}

// ---------------------------------------------------------------- policies

#[test]
fn circuit_breaker_threshold_is_half_the_desired_count_within_3_and_200() {
    for (desired, threshold) in [
        (0, 3),
        (1, 3),
        (6, 3),
        (7, 4),
        (25, 13),
        (400, 200),
        (1000, 200),
    ] {
        assert_eq!(
            circuit_breaker_threshold(&CircuitBreaker::default(), desired),
            threshold,
            "desired {desired}"
        );
    }
}

#[test]
fn throttle_delay_doubles_from_10_seconds_up_to_27_minutes() {
    for (failures, delay_ms) in [
        (0, 0),
        (2, 0),
        (3, 10_000),
        (4, 20_000),
        (5, 40_000),
        (10, 1_280_000),
        (11, 1_620_000),
        (100, 1_620_000),
    ] {
        assert_eq!(throttle_delay_ms(failures), delay_ms, "failures {failures}");
    }
}

#[test]
fn minimum_rounds_up_and_maximum_rounds_down() {
    for (desired, percent, min, max) in
        [(3, 50, 2, 1), (4, 50, 2, 2), (3, 150, 5, 4), (0, 100, 0, 0)]
    {
        assert_eq!(minimum_healthy(desired, percent), min);
        assert_eq!(maximum_tasks(desired, percent), max);
    }
}

// ---------------------------------------------------------------- REPLICA

#[test]
fn a_new_service_launches_its_desired_count_once() {
    let service = replica(3);
    let plan = check(&service, &[], &cluster(), "launch ecs-svc/1 td:1 x3");
    // Counts are what the tasks say: none exists until the shell starts
    // them and counts what it started.
    assert_eq!(plan.service.pending_count, 0);
    assert_eq!(plan.service.primary().pending_count, 0);
    let mut started = plan.service.clone();
    started.record_started(D1, 3, NOW);
    assert_eq!(started.pending_count, 3);
    assert_eq!(started.primary().pending_count, 3);
    // The same observation after the launches: nothing more to do.
    let tasks = [
        task("a", D1).pending(),
        task("b", D1).pending(),
        task("c", D1).pending(),
    ];
    let again = check(&started, &tasks, &cluster(), "");
    assert_eq!(again.service, started);
}

#[test]
fn a_deployment_completes_then_the_service_reaches_a_steady_state() {
    let service = replica(2);
    let tasks = [task("a", D1), task("b", D1)];
    let plan = check(&service, &tasks, &cluster(), "");
    let primary = plan.service.primary();
    assert_eq!(primary.rollout_state, RolloutState::Completed);
    assert_eq!(
        primary.rollout_state_reason,
        "ECS deployment ecs-svc/1 completed."
    );
    assert_eq!(primary.outcome, Some(DeploymentOutcome::Successful));
    assert_eq!(primary.finished_at_ms, Some(NOW));
    assert_eq!(primary.updated_at_ms, NOW);
    assert_eq!(
        messages(&plan.service),
        [
            "(service web) has reached a steady state.",
            "(service web) (deployment ecs-svc/1) deployment completed.",
        ]
    );
    assert!(plan.service.steady_state);
    assert_eq!(plan.service.running_count, 2);
    // Nothing changes any more: the very same service comes back.
    let again = check(&plan.service, &tasks, &cluster(), "");
    assert_eq!(again.service, plan.service);
}

#[test]
fn a_deployment_does_not_complete_while_tasks_are_pending_or_unhealthy() {
    let service = replica(2);
    for tasks in [
        vec![task("a", D1), task("b", D1).pending()],
        vec![task("a", D1), task("b", D1).health(TaskHealth::Unknown)],
    ] {
        let plan = check(&service, &tasks, &cluster(), "");
        assert_eq!(
            plan.service.primary().rollout_state,
            RolloutState::InProgress
        );
        assert!(!plan.service.steady_state);
    }
}

#[test]
fn rolling_update_100_200_launches_all_then_stops_old_as_new_become_healthy() {
    let service = updated(completed(replica(4)));
    let old = ["a", "b", "c", "d"].map(|id| task(id, D1));
    check(&service, &old, &cluster(), "launch ecs-svc/2 td:2 x4");

    let mut tasks = old.to_vec();
    tasks.extend(["e", "f"].map(|id| task(id, D2)));
    tasks.extend(["g", "h"].map(|id| task(id, D2).pending()));
    let reason = scaling(D1);
    check(
        &service,
        &tasks,
        &cluster(),
        &format!("stop a: {reason}\nstop b: {reason}"),
    );
}

#[test]
fn rolling_update_50_100_stops_half_first_then_launches_in_the_room() {
    let service = configured(updated(completed(replica(4))), 50, 100);
    let old = ["a", "b", "c", "d"].map(|id| task(id, D1));
    let reason = scaling(D1);
    let plan = check(
        &service,
        &old,
        &cluster(),
        &format!("stop a: {reason}\nstop b: {reason}"),
    );
    assert_eq!(plan.service.deployments[1].running_count, 2);
    // Still stopping: they count toward maximumPercent, nothing launches.
    let mut tasks = old.to_vec();
    tasks[0] = tasks[0].clone().leaving();
    tasks[1] = tasks[1].clone().leaving();
    check(&plan.service, &tasks, &cluster(), "");
    tasks[0] = tasks[0].clone().stopped(StopCause::Requested, true);
    tasks[1] = tasks[1].clone().stopped(StopCause::Requested, true);
    check(
        &plan.service,
        &tasks,
        &cluster(),
        "launch ecs-svc/2 td:2 x2",
    );
}

#[test]
fn rolling_update_0_100_stops_everything_first() {
    let service = configured(updated(completed(replica(2))), 0, 100);
    let reason = scaling(D1);
    check(
        &service,
        &[task("a", D1), task("b", D1)],
        &cluster(),
        &format!("stop a: {reason}\nstop b: {reason}"),
    );
}

#[test]
fn old_tasks_that_are_not_healthy_are_stopped_at_once() {
    let service = updated(completed(replica(2)));
    let tasks = [
        task("a", D1),
        task("b", D1).pending(),
        task("c", D1).health(TaskHealth::Unknown),
    ];
    let reason = scaling(D1);
    check(
        &service,
        &tasks,
        &cluster(),
        &format!("launch ecs-svc/2 td:2 x1\nstop b: {reason}\nstop c: {reason}"),
    );
}

#[test]
fn configuration_that_allows_neither_a_stop_nor_a_launch_is_reported() {
    let service = configured(updated(completed(replica(2))), 100, 100);
    let plan = check(&service, &[task("a", D1), task("b", D1)], &cluster(), "");
    assert_eq!(
        messages(&plan.service)[0],
        "(service web) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again."
    );
}

#[test]
fn scale_in_stops_unhealthy_then_newest_tasks_at_once() {
    let mut service = completed(replica(4));
    service.update(
        ServiceUpdate {
            desired_count: Some(2),
            ..ServiceUpdate::default()
        },
        "unused".into(),
        50,
    );
    let tasks = [
        task("a", D1),
        task("b", D1),
        task("c", D1),
        task("d", D1).health(TaskHealth::Unknown),
    ];
    let reason = scaling(D1);
    let plan = check(
        &service,
        &tasks,
        &cluster(),
        &format!("stop c: {reason}\nstop d: {reason}"),
    );
    assert_eq!(plan.service.running_count, 2);
    assert_eq!(
        messages(&plan.service)[0],
        "(service web) has stopped 2 running tasks: (task c) (task d)."
    );
}

/// A completed REPLICA service of `from` tasks scaled in to `to`.
fn scaled_in(from: u32, to: u32) -> Service {
    let mut service = completed(replica(from));
    service.update(
        ServiceUpdate {
            desired_count: Some(to),
            ..ServiceUpdate::default()
        },
        "unused".into(),
        50,
    );
    service
}

#[test]
fn scale_in_never_stops_protected_tasks() {
    const LATER: i64 = NOW + 60_000;
    // (desired count, tasks `a`..`d` with their protection, tasks stopped,
    // runningCount after, wake-up). Protection that ended (at or before now)
    // protects nothing.
    type Case = (
        u32,
        [Option<i64>; 4],
        &'static [&'static str],
        u32,
        Option<i64>,
    );
    let table: [Case; 6] = [
        (2, [None; 4], &["c", "d"], 2, None),
        (
            2,
            [None, None, Some(LATER), Some(LATER)],
            &["a", "b"],
            2,
            None,
        ),
        (
            2,
            [Some(LATER), None, None, Some(LATER)],
            &["b", "c"],
            2,
            None,
        ),
        (
            1,
            [None, Some(LATER), Some(LATER + 1), None],
            &["a", "d"],
            2,
            Some(LATER + 1),
        ),
        (0, [Some(LATER); 4], &[], 4, Some(LATER)),
        (
            2,
            [None, None, Some(NOW), Some(NOW - 1)],
            &["c", "d"],
            2,
            None,
        ),
    ];
    for (desired, protection, stopped, running, wake_at_ms) in table {
        let service = scaled_in(4, desired);
        let tasks: Vec<ObservedTask> = ["a", "b", "c", "d"]
            .into_iter()
            .zip(protection)
            .map(|(id, until)| match until {
                Some(ms) => task(id, D1).protected_until(ms),
                None => task(id, D1),
            })
            .collect();
        let reason = scaling(D1);
        let expected: Vec<String> = stopped
            .iter()
            .map(|id| format!("stop {id}: {reason}"))
            .collect();
        let plan = check(&service, &tasks, &cluster(), &expected.join("\n"));
        let case = format!("desired {desired}, protection {protection:?}");
        assert_eq!(plan.service.running_count, running, "{case}");
        assert_eq!(plan.wake_at_ms, wake_at_ms, "{case}");
        assert!(plan.launches.is_empty(), "{case}");
    }
}

#[test]
fn protected_tasks_in_excess_are_stopped_once_protection_expires() {
    const EXPIRES: i64 = NOW + 120_000;
    let service = scaled_in(3, 1);
    let tasks = [
        task("a", D1).protected_until(EXPIRES),
        task("b", D1),
        task("c", D1),
    ];
    let reason = scaling(D1);
    let plan = check(
        &service,
        &tasks,
        &cluster(),
        &format!("stop b: {reason}\nstop c: {reason}"),
    );
    // a is the one task wanted: nothing waits for its protection.
    assert_eq!(plan.wake_at_ms, None);
    // Scaled in to 0 while a is protected: a stays (runningCount 1 above
    // the desired count 0) until its protection expires.
    let mut service = plan.service.clone();
    service.update(
        ServiceUpdate {
            desired_count: Some(0),
            ..ServiceUpdate::default()
        },
        "unused".into(),
        NOW,
    );
    let gone = [
        tasks[0].clone(),
        tasks[1].clone().stopped(StopCause::Requested, true),
        tasks[2].clone().stopped(StopCause::Requested, true),
    ];
    let kept = plan_at(&service, &gone, NOW + 1000);
    assert_eq!(summary(&kept), "");
    assert_eq!(kept.service.running_count, 1);
    assert_eq!(kept.wake_at_ms, Some(EXPIRES));
    // Woken at expiry: a goes now.
    let expired = plan_at(&kept.service, &gone, EXPIRES);
    assert_eq!(summary(&expired), format!("stop a: {reason}"));
    // Removing protection (UpdateTaskProtection false) does the same at once.
    let mut unprotected = gone.clone();
    unprotected[0].scale_in_protected_until_ms = None;
    let removed = plan_at(&kept.service, &unprotected, NOW + 2000);
    assert_eq!(summary(&removed), format!("stop a: {reason}"));
}

fn plan_at(service: &Service, tasks: &[ObservedTask], now_ms: i64) -> Plan {
    plan(service, tasks, &cluster(), now_ms)
}

#[test]
fn a_rolling_update_replaces_a_protected_task_once_its_protection_ends() {
    const EXPIRES: i64 = NOW + 60_000;
    let service = updated(completed(replica(2)));
    let tasks = [
        task("a", D1).protected_until(EXPIRES),
        task("b", D1),
        task("c", D2),
        task("d", D2),
    ];
    let reason = scaling(D1);
    let plan = check(&service, &tasks, &cluster(), &format!("stop b: {reason}"));
    assert_eq!(plan.wake_at_ms, Some(EXPIRES));
    assert_eq!(plan.service.deployments.len(), 2);
    let mut tasks = tasks.to_vec();
    tasks[1] = tasks[1].clone().stopped(StopCause::Requested, true);
    let waiting = plan_at(&plan.service, &tasks, NOW + 1000);
    assert_eq!(summary(&waiting), "");
    let expired = plan_at(&waiting.service, &tasks, EXPIRES);
    assert_eq!(summary(&expired), format!("stop a: {reason}"));
}

#[test]
fn protection_holds_neither_a_deleted_service_nor_a_draining_instance() {
    let later = NOW + 60_000;
    let mut service = completed(replica(2));
    service.delete(50);
    let reason = scaling(D1);
    let tasks = [
        task("a", D1).protected_until(later),
        task("b", D1).protected_until(later),
    ];
    check(
        &service,
        &tasks,
        &cluster(),
        &format!("stop a: {reason}\nstop b: {reason}"),
    );
    let service = completed(replica(1));
    let on_draining = [task("a", D1).protected_until(later), task("b", D1).on("i2")];
    let instances = [draining("i1"), instance("i2")];
    check(
        &service,
        &on_draining,
        &instances,
        &format!("stop a: {}", instance_draining_reason()),
    );
}

#[test]
fn scale_out_launches_the_difference() {
    let service = completed(replica(4));
    check(
        &service,
        &[task("a", D1), task("b", D1)],
        &cluster(),
        "launch ecs-svc/1 td:1 x2",
    );
}

#[test]
fn stopping_tasks_count_toward_the_maximum_unless_their_agent_is_gone() {
    let service = configured(updated(completed(replica(2))), 0, 100);
    let leaving = [task("a", D1).leaving(), task("b", D1).leaving().on("i2")];
    check(&service, &leaving, &cluster(), "");
    let instances = [instance("i1"), disconnected("i2")];
    check(&service, &leaving, &instances, "launch ecs-svc/2 td:2 x1");
}

#[test]
fn tasks_of_unknown_deployments_are_stopped() {
    let service = completed(replica(1));
    check(
        &service,
        &[task("a", D1), task("z", "ecs-svc/9")],
        &cluster(),
        &format!("stop z: {}", scaling(D1)),
    );
}

#[test]
fn unhealthy_tasks_are_replaced_after_the_grace_period_only() {
    let mut service = completed(replica(2));
    service.health_check_grace_period_ms = 60_000;
    let sick = task("b", D1).health(TaskHealth::Unhealthy);
    let in_grace = [task("a", D1), sick.clone().started_at(NOW - 10_000)];
    let plan = check(&service, &in_grace, &cluster(), "");
    assert_eq!(plan.wake_at_ms, Some(NOW + 50_000));

    let past_grace = [task("a", D1), sick.started_at(NOW - 60_000)];
    let plan = check(
        &service,
        &past_grace,
        &cluster(),
        "launch ecs-svc/1 td:1 x1\nstop b: Task failed container health checks",
    );
    assert_eq!(
        messages(&plan.service),
        [
            "(service web) has stopped 1 running tasks: (task b).",
            "(service web) (task b) failed container health checks.",
        ]
    );
}

#[test]
fn tasks_failing_load_balancer_health_checks_are_replaced_in_its_words() {
    let mut service = completed(replica(2));
    service.health_check_grace_period_ms = 30_000;
    let mut sick = task("b", D1)
        .health(TaskHealth::Unhealthy)
        .started_at(NOW - 30_000);
    sick.load_balancer_failure = Some(LoadBalancerFailure {
        event_message: "(service web) (instance i-1) (port 32768) is unhealthy in (target-group tg) due to (reason Health checks failed with these codes: [500]).".into(),
        stopped_reason: "Task failed ELB health checks in (target-group tg)".into(),
    });
    let plan = check(
        &service,
        &[task("a", D1), sick],
        &cluster(),
        "launch ecs-svc/1 td:1 x1\nstop b: Task failed ELB health checks in (target-group tg)",
    );
    assert_eq!(
        messages(&plan.service),
        [
            "(service web) has stopped 1 running tasks: (task b).",
            "(service web) (instance i-1) (port 32768) is unhealthy in (target-group tg) due to (reason Health checks failed with these codes: [500]).",
        ]
    );
}

#[test]
fn tasks_on_lost_instances_are_stopped_and_replaced_at_once() {
    let service = completed(replica(3));
    let tasks = [
        task("a", D1),
        task("b", D1).on("i2"),
        task("c", D1).on("gone"),
    ];
    let plan = check(
        &service,
        &tasks,
        &[instance("i1"), disconnected("i2")],
        "launch ecs-svc/1 td:1 x2
         stop b: Task stopped because its container instance's agent was disconnected
         stop c: Task stopped because its container instance was deregistered",
    );
    assert_eq!(plan.service.running_count, 1);
    assert_eq!(plan.service.pending_count, 0);
    // When the agent comes back its task is leaving and counts toward the
    // maximum, but is no longer the service's.
    let back = [
        task("a", D1),
        task("b", D1).on("i2").leaving(),
        task("d", D1).pending(),
        task("e", D1).pending(),
    ];
    check(&plan.service, &back, &cluster(), "");
}

#[test]
fn tasks_on_a_draining_instance_are_replaced_within_the_minimum() {
    let service = completed(replica(2));
    let instances = [draining("i1"), instance("i2")];
    let on_draining = [task("a", D1), task("b", D1).pending()];
    check(
        &service,
        &on_draining,
        &instances,
        "launch ecs-svc/1 td:1 x2
         stop b: Task stopped because container instance is in DRAINING state",
    );
    let replaced = [
        task("a", D1),
        task("b", D1).leaving(),
        task("c", D1).on("i2"),
        task("d", D1).on("i2").pending(),
    ];
    check(&service, &replaced, &instances, "");
    let healthy = [
        task("a", D1),
        task("c", D1).on("i2"),
        task("d", D1).on("i2"),
    ];
    check(
        &service,
        &healthy,
        &instances,
        "stop a: Task stopped because container instance is in DRAINING state",
    );
}

#[test]
fn an_old_deployment_is_retired_once_its_tasks_have_stopped() {
    let service = updated(completed(replica(1)));
    let stopping = [task("a", D1).leaving(), task("b", D2)];
    let plan = check(&service, &stopping, &cluster(), "");
    assert_eq!(plan.service.deployments.len(), 2);
    assert_eq!(
        plan.service.primary().rollout_state,
        RolloutState::InProgress
    );

    let stopped = [
        task("a", D1).stopped(StopCause::Requested, true),
        task("b", D2),
    ];
    let plan = check(&service, &stopped, &cluster(), "");
    assert_eq!(plan.service.deployments.len(), 1);
    let retired = &plan.service.finished_deployments[0];
    assert_eq!(
        (retired.id.as_str(), retired.status),
        (D1, DeploymentStatus::Inactive)
    );
    assert_eq!(
        plan.service.primary().rollout_state,
        RolloutState::Completed
    );
}

#[test]
fn a_deleted_service_stops_its_tasks_then_goes_inactive() {
    let mut service = completed(replica(2));
    service.delete(50);
    let reason = scaling(D1);
    let plan = check(
        &service,
        &[task("a", D1), task("b", D1)],
        &cluster(),
        &format!("stop a: {reason}\nstop b: {reason}"),
    );
    assert_eq!(plan.service.status, ServiceStatus::Draining);
    let stopped = [
        task("a", D1).stopped(StopCause::Requested, true),
        task("b", D1).leaving().on("i2"),
    ];
    let plan = check(&plan.service, &stopped, &[instance("i1")], "");
    assert_eq!(plan.service.status, ServiceStatus::Inactive);
    assert_eq!(plan.service.deployments.len(), 1);
    assert_eq!(plan.service.running_count, 0);
}

#[test]
fn nothing_changes_for_a_steady_service() {
    let tasks = [task("a", D1), task("b", D1)];
    let service = run(&replica(2), &tasks, &cluster()).service;
    let plan = check(&service, &tasks, &cluster(), "");
    assert_eq!(plan.service, service);
    assert_eq!(plan.wake_at_ms, None);
}

// ---------------------------------------------------------------- failures

#[test]
fn each_failure_is_counted_once() {
    let service = replica(2);
    let tasks = [
        task("a", D1).stopped(StopCause::Failed, false),
        // Exited 0 after RUNNING: not a failure.
        task("b", D1).stopped(StopCause::Failed, true),
        task("c", D1).stopped(StopCause::FailedHealthChecks, true),
        task("d", D1).stopped(StopCause::Requested, true),
        // Exited non-zero 0.5 s after RUNNING, before settling: a failure.
        task("e", D1).stopped(StopCause::EssentialContainerFailed, true),
    ];
    let plan = check(&service, &tasks, &cluster(), "launch ecs-svc/1 td:1 x2");
    let counted: Vec<&str> = plan
        .service
        .counted_failures
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(counted, ["a", "c", "e"]);
    // Failed before RUNNING, crashed before settling and failed health
    // checks trip the breaker; the health-check failure does not feed the
    // throttle.
    assert_eq!(plan.service.primary().failed_tasks, 3);
    assert_eq!(plan.service.throttle.consecutive_failures, 2);

    let again = check(
        &plan.service,
        &tasks,
        &cluster(),
        "launch ecs-svc/1 td:1 x2",
    );
    assert_eq!(again.service.primary().failed_tasks, 3);
    // Failures no longer observed are forgotten.
    let later = check(
        &plan.service,
        &tasks[1..],
        &cluster(),
        "launch ecs-svc/1 td:1 x2",
    );
    assert!(!later.service.counted_failures.contains("a"));
}

#[test]
fn a_failure_ends_the_steady_state() {
    let tasks = [task("a", D1), task("b", D1)];
    let steady = run(&replica(2), &tasks, &cluster()).service;
    assert!(steady.steady_state);
    let exited = [
        task("a", D1),
        task("b", D1).stopped(StopCause::Failed, true),
    ];
    let plan = check(&steady, &exited, &cluster(), "launch ecs-svc/1 td:1 x1");
    assert!(!plan.service.steady_state);
}

#[test]
fn the_throttle_delays_launches_after_three_start_failures_and_grows() {
    let mut service = replica(1);
    service.throttle.consecutive_failures = 2;
    let failed = [task("a", D1).stopped(StopCause::Failed, false)];
    let throttled = check(&service, &failed, &cluster(), "");
    assert_eq!(throttled.service.throttle.consecutive_failures, 3);
    assert_eq!(
        throttled.service.throttle.launch_not_before_ms,
        NOW + 10_000
    );
    assert_eq!(throttled.wake_at_ms, Some(NOW + 10_000));
    assert_eq!(
        messages(&throttled.service),
        ["(service web) is unable to consistently start tasks successfully."]
    );
    // Once the delay is over, launches resume.
    let later = plan(&throttled.service, &failed, &cluster(), NOW + 10_000);
    assert_eq!(summary(&later), "launch ecs-svc/1 td:1 x1");
    // The next failure doubles the delay, without a second event.
    let failed_again = [
        failed[0].clone(),
        task("b", D1).stopped(StopCause::Failed, false),
    ];
    let next = plan(&later.service, &failed_again, &cluster(), NOW + 20_000);
    assert_eq!(next.service.throttle.launch_not_before_ms, NOW + 40_000);
    assert_eq!(next.service.events.len(), 1);
}

#[test]
fn the_throttle_resets_when_a_primary_task_settles() {
    let mut service = replica(2);
    service.throttle = Throttle {
        consecutive_failures: 5,
        launch_not_before_ms: NOW + 60_000,
    };
    service.counted_failures.insert("a".into());
    let failed = task("a", D1).stopped(StopCause::Failed, false);
    // RUNNING for 5 s of its 10 s settle period: the throttle holds, and
    // the planner asks to be woken when the period ends.
    let running = task("b", D1).started_at(NOW - 5_000);
    let plan = check(&service, &[failed.clone(), running.clone()], &cluster(), "");
    assert_eq!(plan.service.throttle.consecutive_failures, 5);
    assert_eq!(plan.wake_at_ms, Some(NOW + 5_000));
    let plan = crate::plan(&plan.service, &[failed, running], &cluster(), NOW + 5_000);
    assert_eq!(summary(&plan), "launch ecs-svc/1 td:1 x1");
    assert_eq!(plan.service.throttle, Throttle::default());
}

// ---------------------------------------------------------- circuit breaker

fn failing_update(rollback: bool) -> (Service, Vec<ObservedTask>) {
    let mut service = with_breaker(updated(completed(replica(2))), rollback);
    service.primary_mut().failed_tasks = 2;
    let tasks = vec![
        task("a", D1),
        task("b", D1),
        task("x", D2).stopped(StopCause::Failed, false),
    ];
    (service, tasks)
}

#[test]
fn the_circuit_breaker_fails_the_deployment_and_rolls_back() {
    let (service, mut tasks) = failing_update(true);
    tasks.push(task("y", D2).pending());
    let plan = check(
        &service,
        &tasks,
        &cluster(),
        &format!("stop y: {}", scaling(D2)),
    );
    let rollback = plan.service.primary();
    assert_eq!(rollback.id, D1);
    assert_eq!(rollback.status, DeploymentStatus::Primary);
    assert_eq!(rollback.rollout_state, RolloutState::InProgress);
    assert_eq!(
        rollback.rollout_state_reason,
        "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1."
    );
    assert_eq!(rollback.rollback_of.as_deref(), Some(D2));
    assert_eq!(rollback.outcome, None);
    assert_eq!(rollback.desired_count, 2);
    let failed = &plan.service.deployments[1];
    assert_eq!(
        (failed.id.as_str(), failed.status),
        (D2, DeploymentStatus::Active)
    );
    assert_eq!(failed.rollout_state, RolloutState::Failed);
    assert_eq!(
        failed.rollout_state_reason,
        "ECS deployment circuit breaker: tasks failed to start."
    );
    assert_eq!(failed.outcome, Some(DeploymentOutcome::Failed));
    assert_eq!(failed.failed_tasks, 3);
    assert_eq!(
        messages(&plan.service),
        [
            "(service web) has stopped 1 running tasks: (task y).",
            "(service web) rolling back to deployment ecs-svc/1.",
            "(service web) (deployment ecs-svc/2) deployment failed: tasks failed to start.",
        ]
    );
    // Once the failed deployment's task has stopped, the rollback completes
    // under the rolled-back-to id.
    tasks[3] = tasks[3].clone().stopped(StopCause::Requested, false);
    let done = check(&plan.service, &tasks, &cluster(), "");
    assert_eq!(done.service.deployments.len(), 1);
    assert_eq!(
        done.service.primary().rollout_state,
        RolloutState::Completed
    );
    assert_eq!(
        messages(&done.service)[..2],
        [
            "(service web) has reached a steady state.",
            "(service web) (deployment ecs-svc/1) deployment completed.",
        ]
    );
}

#[test]
fn a_rollback_finds_a_completed_deployment_among_the_finished_ones() {
    let (mut service, mut tasks) = failing_update(true);
    service.retire_deployment(1, 200);
    tasks.truncate(0);
    tasks.push(task("x", D2).stopped(StopCause::Failed, false));
    let plan = check(&service, &tasks, &cluster(), "launch ecs-svc/1 td:1 x2");
    assert_eq!(plan.service.primary().id, D1);
    assert!(plan.service.finished_deployments.iter().all(|d| d.id != D1));
}

#[test]
fn without_rollback_the_failed_deployment_stays_primary_and_launches_nothing() {
    let (service, tasks) = failing_update(false);
    let plan = check(&service, &tasks, &cluster(), "");
    let primary = plan.service.primary();
    assert_eq!(
        (primary.id.as_str(), primary.rollout_state),
        (D2, RolloutState::Failed)
    );
    assert_eq!(plan.service.deployments.len(), 2);
    // Later ticks do not fire again and do not launch.
    let again = check(&plan.service, &tasks, &cluster(), "");
    assert_eq!(again.service, plan.service);
}

#[test]
fn without_a_completed_deployment_the_rollback_stalls() {
    let mut service = with_breaker(replica(2), true);
    service.primary_mut().failed_tasks = 2;
    let tasks = [task("x", D1).stopped(StopCause::Failed, false)];
    let plan = check(&service, &tasks, &cluster(), "");
    assert_eq!(plan.service.primary().rollout_state, RolloutState::Failed);
    assert_eq!(plan.service.primary().id, D1);
}

#[test]
fn a_failed_rollback_does_not_roll_back_again() {
    let (service, tasks) = failing_update(true);
    let rolled_back = run(&service, &tasks[2..], &cluster()).service;
    assert_eq!(rolled_back.primary().id, D1);
    let mut failing = rolled_back.clone();
    failing.primary_mut().failed_tasks = 2;
    let more = [task("y", D1).stopped(StopCause::Failed, false)];
    let plan = check(&failing, &more, &cluster(), "");
    let primary = plan.service.primary();
    assert_eq!(
        (primary.id.as_str(), primary.rollout_state),
        (D1, RolloutState::Failed)
    );
}

#[test]
fn the_circuit_breaker_ignores_deployments_that_are_not_in_progress() {
    let mut service = with_breaker(completed(replica(2)), true);
    service.primary_mut().failed_tasks = 10;
    let plan = check(&service, &[task("a", D1), task("b", D1)], &cluster(), "");
    assert_eq!(
        plan.service.primary().rollout_state,
        RolloutState::Completed
    );
}

// ---------------------------------------------------------------- DAEMON

#[test]
fn a_daemon_runs_one_task_on_every_eligible_instance() {
    let service = daemon();
    let mut instances = cluster();
    instances.push(ObservedInstance {
        daemon_eligible: false,
        ..instance("i4")
    });
    instances.push(draining("i5"));
    instances.push(disconnected("i6"));
    let plan = check(
        &service,
        &[task("a", D1)],
        &instances,
        "launch ecs-svc/1 td:1 x1 on i2\nlaunch ecs-svc/1 td:1 x1 on i3",
    );
    assert_eq!(plan.service.desired_count, 3);
    assert_eq!(plan.service.primary().desired_count, 3);
}

#[test]
fn a_daemon_stops_tasks_where_they_no_longer_belong() {
    let service = completed(daemon());
    let mut instances = cluster();
    instances.push(ObservedInstance {
        daemon_eligible: false,
        ..instance("i4")
    });
    instances.push(draining("i5"));
    let tasks = [
        task("a", D1),
        task("b", D1).on("i2"),
        task("c", D1).on("i3"),
        task("d", D1).on("i3").pending(),
        task("e", D1).on("i4"),
        task("f", D1).on("i5"),
    ];
    check(
        &service,
        &tasks,
        &instances,
        &format!(
            "stop e: {}\nstop f: Task stopped because container instance is in DRAINING state\nstop d: {}",
            scaling(D1),
            scaling(D1)
        ),
    );
}

#[test]
fn a_daemon_update_with_0_100_stops_the_old_task_before_starting_the_new() {
    let service = updated(completed(daemon()));
    let old = [task("a", D1), task("b", D1).on("i2")];
    let instances = [instance("i1"), instance("i2")];
    let reason = scaling(D1);
    check(
        &service,
        &old,
        &instances,
        &format!("stop a: {reason}\nstop b: {reason}"),
    );
    let stopping = [
        task("a", D1).leaving(),
        task("b", D1).on("i2").stopped(StopCause::Requested, true),
    ];
    check(
        &service,
        &stopping,
        &instances,
        "launch ecs-svc/2 td:2 x1 on i2",
    );
}

#[test]
fn a_daemon_update_with_50_200_keeps_half_the_instances_healthy() {
    let service = configured(updated(completed(daemon())), 50, 200);
    let instances = [instance("i1"), instance("i2")];
    let old = [task("a", D1), task("b", D1).on("i2")];
    let reason = scaling(D1);
    check(
        &service,
        &old,
        &instances,
        &format!(
            "launch ecs-svc/2 td:2 x1 on i1\nlaunch ecs-svc/2 td:2 x1 on i2\nstop a: {reason}"
        ),
    );
    // A healthy new task covers its instance: the old one there goes.
    let covered = [
        task("a", D1),
        task("b", D1).on("i2"),
        task("c", D2),
        task("d", D2).on("i2").pending(),
    ];
    check(
        &service,
        &covered,
        &instances,
        &format!("stop a: {reason}\nstop b: {reason}"),
    );
}

// ------------------------------------------------------ settling (issue 13)

#[test]
fn circuit_breaker_threshold_follows_the_threshold_configuration() {
    let breaker = |threshold_type, value| CircuitBreaker {
        threshold: FailureThreshold {
            threshold_type,
            value,
        },
        ..CircuitBreaker::default()
    };
    for (threshold_type, value, desired, threshold) in [
        (ThresholdType::BoundedPercent, 50, 3, 3),
        (ThresholdType::BoundedPercent, 50, 10, 5),
        (ThresholdType::BoundedPercent, 20, 10, 3),
        (ThresholdType::BoundedPercent, 100, 1000, 200),
        (ThresholdType::UnboundedPercent, 20, 10, 2),
        (ThresholdType::UnboundedPercent, 33, 10, 4),
        (ThresholdType::UnboundedPercent, 100, 1000, 1000),
        (ThresholdType::UnboundedPercent, 50, 0, 1),
        (ThresholdType::Count, 1, 10, 1),
        (ThresholdType::Count, 7, 0, 7),
    ] {
        assert_eq!(
            circuit_breaker_threshold(&breaker(threshold_type, value), desired),
            threshold,
            "{threshold_type:?} {value} of {desired}"
        );
    }
    assert_eq!(
        CircuitBreaker::default().threshold,
        FailureThreshold {
            threshold_type: ThresholdType::BoundedPercent,
            value: 50
        }
    );
    assert!(CircuitBreaker::default().reset_on_healthy_task);
}

#[test]
fn the_settle_period_is_the_longest_start_period_and_at_least_the_default() {
    assert_eq!(settle_period_ms([]), DEFAULT_SETTLE_PERIOD_MS);
    assert_eq!(settle_period_ms([0, 5]), DEFAULT_SETTLE_PERIOD_MS);
    assert_eq!(settle_period_ms([30, 60, -1]), 60_000);
}

/// `task` RUNNING since `ms_ago` before NOW.
fn running_for(id: &str, deployment_id: &str, ms_ago: i64) -> ObservedTask {
    let mut task = task(id, deployment_id).started_at(NOW - ms_ago);
    task.created_at_ms = NOW - ms_ago - 1;
    task
}

/// `task` that crashed (essential container, exit 1) at NOW after running
/// for `ran_ms`.
fn crashed_after(id: &str, deployment_id: &str, ran_ms: i64) -> ObservedTask {
    let mut task = running_for(id, deployment_id, ran_ms);
    task.phase = TaskPhase::Stopped;
    task.desired_stopped = true;
    task.stopped_at_ms = Some(NOW);
    task.stop_cause = Some(StopCause::EssentialContainerFailed);
    task
}

#[test]
fn a_task_that_crashes_before_it_settles_is_a_failed_task() {
    let service = with_breaker(replica(2), false);
    let tasks = [
        crashed_after("a", D1, 2_000),
        // Ran through its settle period: its exit is not its deployment's
        // failure.
        crashed_after("b", D1, 60_000),
        // Health-checked, RUNNING for a minute but never seen settled (it
        // was never healthy): a failure.
        crashed_after("c", D1, 60_000).health(TaskHealth::Unknown),
    ];
    let plan = check(&service, &tasks, &cluster(), "launch ecs-svc/1 td:1 x2");
    assert_eq!(plan.service.primary().failed_tasks, 2);
    assert_eq!(plan.service.throttle.consecutive_failures, 2);
    let counted: Vec<&str> = plan
        .service
        .counted_failures
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(counted, ["a", "c"]);

    // A health-checked task seen settled is not a failure when it crashes.
    let mut seen = replica(1);
    let healthy = running_for("d", D1, 30_000).health(TaskHealth::Healthy);
    seen = run(&seen, &[healthy], &cluster()).service;
    assert!(seen.settled_tasks.contains("d"));
    let crashed = crashed_after("d", D1, 30_000).health(TaskHealth::Unhealthy);
    let plan = check(&seen, &[crashed], &cluster(), "launch ecs-svc/1 td:1 x1");
    assert_eq!(plan.service.primary().failed_tasks, 0);
    assert!(plan.service.settled_tasks.contains("d"));
}

#[test]
fn a_settled_task_resets_the_failed_count_unless_reset_on_healthy_task_is_off() {
    for (reset, expected) in [(true, 0), (false, 2)] {
        let mut service = with_breaker(replica(2), false);
        service.primary_mut().failed_tasks = 2;
        service
            .primary_mut()
            .deployment_configuration
            .circuit_breaker
            .reset_on_healthy_task = reset;
        // Settled 5 s ago, after both counted failures.
        let tasks = [running_for("a", D1, 15_000), running_for("b", D1, 1_000)];
        let plan = run(&service, &tasks, &cluster());
        assert_eq!(
            plan.service.primary().failed_tasks,
            expected,
            "resetOnHealthyTask {reset}"
        );
    }
    // Failures after the task settled count again.
    let mut service = with_breaker(replica(2), false);
    service.primary_mut().failed_tasks = 2;
    let tasks = [running_for("a", D1, 15_000), crashed_after("b", D1, 1_000)];
    let plan = run(&service, &tasks, &cluster());
    assert_eq!(plan.service.primary().failed_tasks, 1);
}

#[test]
fn unsettled_tasks_do_not_count_toward_minimum_healthy_percent() {
    let service = updated(completed(configured(replica(3), 50, 200)));
    let old = [task("a", D1), task("b", D1), task("c", D1)];
    // The new tasks run but have not settled: only one old task may go
    // (2 of 3 is the minimum), not all three.
    let new = [
        running_for("x", D2, 2_000),
        running_for("y", D2, 2_000),
        running_for("z", D2, 2_000),
    ];
    let tasks: Vec<ObservedTask> = old.iter().chain(&new).cloned().collect();
    let plan = check(
        &service,
        &tasks,
        &cluster(),
        &format!("stop a: {}", scaling(D1)),
    );
    assert_eq!(plan.wake_at_ms, Some(NOW + 8_000));
    assert_eq!(
        plan.service.primary().rollout_state,
        RolloutState::InProgress
    );
    // Once they have settled, the rest go.
    let later = crate::plan(&plan.service, &tasks[1..], &cluster(), NOW + 8_000);
    assert_eq!(
        summary(&later),
        format!("stop b: {}\nstop c: {}", scaling(D1), scaling(D1))
    );
}

#[test]
fn a_deployment_completes_only_once_its_tasks_have_settled() {
    let service = replica(2);
    let tasks = [running_for("a", D1, 1_000), running_for("b", D1, 3_000)];
    let plan = check(&service, &tasks, &cluster(), "");
    assert_eq!(plan.service.running_count, 2);
    assert_eq!(
        plan.service.primary().rollout_state,
        RolloutState::InProgress
    );
    assert!(!plan.service.steady_state);
    assert_eq!(plan.wake_at_ms, Some(NOW + 7_000));
    let settling = crate::plan(&plan.service, &tasks, &cluster(), NOW + 7_000);
    assert_eq!(
        settling.service.primary().rollout_state,
        RolloutState::InProgress
    );
    let settled = crate::plan(&settling.service, &tasks, &cluster(), NOW + 9_000);
    assert_eq!(
        settled.service.primary().rollout_state,
        RolloutState::Completed
    );
    assert!(settled.service.steady_state);
}

#[test]
fn a_launch_that_places_nothing_leaves_the_counts_at_zero() {
    let service = replica(2);
    // No container instance: the shell starts none of the planned tasks.
    let plan = check(&service, &[], &[], "launch ecs-svc/1 td:1 x2");
    let mut after = plan.service.clone();
    after.record_started(D1, 0, NOW);
    assert_eq!((after.pending_count, after.running_count), (0, 0));
    after.update(
        ServiceUpdate {
            desired_count: Some(0),
            ..ServiceUpdate::default()
        },
        "unused".into(),
        NOW,
    );
    let scaled = check(&after, &[], &[], "");
    assert_eq!(
        (scaled.service.pending_count, scaled.service.running_count),
        (0, 0)
    );
    assert_eq!(scaled.service.primary().pending_count, 0);
    assert_eq!(scaled.service.primary().desired_count, 0);
}

#[test]
fn old_tasks_that_have_not_settled_still_count_toward_the_minimum() {
    // UpdateService while the first deployment is still settling: its
    // RUNNING tasks are not stopped at once, only down to the minimum.
    let service = updated(configured(replica(3), 50, 200));
    let tasks = [
        running_for("a", D1, 2_000),
        running_for("b", D1, 2_000),
        running_for("c", D1, 2_000),
    ];
    check(
        &service,
        &tasks,
        &cluster(),
        &format!("launch ecs-svc/2 td:2 x3\nstop a: {}", scaling(D1)),
    );
}
