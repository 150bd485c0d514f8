//! One pass over one scalable target: scheduled actions, then policies.
//!
//! AWS behaviour followed (Application Auto Scaling User Guide):
//! - Scheduled scaling: at its time an action sets MinCapacity/MaxCapacity, and the
//!   capacity is scaled out to the new minimum or in to the new maximum. A missed occurrence
//!   (Berth was down) runs once, the latest only. With a StartTime the action also runs at
//!   StartTime, then on its recurrence; `rate()` counts from StartTime, else from when the
//!   action was created or changed. While ScheduledScalingSuspended, occurrences pass
//!   without running (they do not run later when scaling resumes).
//! - Target tracking: proportional scale-out (`ceil(running × metric / target)`), never
//!   below the current desired count; capacity added during ScaleOutCooldown counts toward
//!   the next scale-out because the figure is absolute. Scale-in only outside ScaleInCooldown
//!   of the last scale-in and ScaleOutCooldown of the last scale-out, and only when every
//!   target-tracking policy with scale-in enabled is ready to scale in; the most
//!   conservative figure wins. Several policies: the largest scale-out wins.
//! - Step scaling: during Cooldown after a scale-out, the capacity it added counts toward
//!   the next (the new capacity is computed from the capacity before that scale-out; Berth
//!   applies this whichever policy scaled out, so two policies never add twice for one
//!   load); scale-in is blocked during Cooldown after the last scale-in. An alarm
//!   that stays in ALARM triggers its policy again, at most every 10 s (a high-resolution
//!   alarm's evaluation interval) even with Cooldown 0.
//! - Bounds: a policy blocked by MaxCapacity/MinCapacity records one not-scaled activity
//!   (AlreadyAtMaxCapacity / AlreadyAtMinCapacity), remembered until the policy scales or
//!   its alarms leave ALARM.
//!
//! - The desired count is kept inside [MinCapacity, MaxCapacity]: registering a target whose
//!   service runs outside its bounds scales it to the bound.
//!
//! Berth's own rule: a target-tracking decision waits [`RUNNING_CHANGE_HOLD_MS`] after the
//! running count changes, because the newest datapoint still averages the tasks that ran
//! before: multiplying it by the new running count would scale twice for one load.

use crate::step;
use crate::target_tracking::{proportional_capacity, PERIOD_S};
use crate::{
    Activity, AlarmRole, AlarmState, Input, LastScaling, NotScaledReason, Plan, Policy,
    PolicyConfiguration, ScheduledAction, TriggeringAlarm,
};

/// How long after the running count changes target tracking waits for a datapoint that
/// describes the new tasks: the period the change falls in, one full period, and one 5 s
/// metric interval.
pub const RUNNING_CHANGE_HOLD_MS: i64 = 2 * PERIOD_S as i64 * 1000 + 5_000;

/// The shortest interval between two triggers of a step policy whose alarm stays in ALARM.
pub const STEP_RETRIGGER_MIN_MS: i64 = 10_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Direction {
    Out,
    In,
}

/// What one policy asks for in this pass.
struct Want<'a> {
    policy: &'a Policy,
    alarm: &'a TriggeringAlarm,
    direction: Direction,
    /// Not yet clamped to the bounds.
    capacity: i32,
    target_tracking: bool,
}

/// Collects the earliest future time something could change.
struct Wake {
    now_ms: i64,
    at_ms: Option<i64>,
}

impl Wake {
    fn at(&mut self, t: i64) {
        if t > self.now_ms {
            self.at_ms = Some(self.at_ms.map_or(t, |w| w.min(t)));
        }
    }
}

/// One pass over one scalable target.
pub fn plan(input: &Input<'_>, now_ms: i64) -> Plan {
    let mut state = input.state.clone();
    let mut activities = Vec::new();
    let mut wake = Wake {
        now_ms,
        at_ms: None,
    };
    let mut min_capacity = input.target.min_capacity;
    let mut max_capacity = input.target.max_capacity;
    let mut bounds_changed = false;
    let mut desired = input.desired_count;

    if state.observed_running_count != Some(input.running_count) {
        if state.observed_running_count.is_some() {
            state.running_count_changed_ms = Some(now_ms);
        }
        state.observed_running_count = Some(input.running_count);
    }

    // a. Scheduled actions.
    state
        .scheduled_run_ms
        .retain(|name, _| input.scheduled_actions.iter().any(|a| &a.name == name));
    let mut due: Vec<(i64, &ScheduledAction)> = Vec::new();
    for action in input.scheduled_actions {
        if let Some(next) = next_occurrence(action, now_ms) {
            wake.at(next);
        }
        let Some(latest) = latest_occurrence(action, now_ms) else {
            continue;
        };
        if state
            .scheduled_run_ms
            .get(&action.name)
            .is_none_or(|ran| latest > *ran)
        {
            due.push((latest, action));
        }
    }
    due.sort_by_key(|(at_ms, action)| (*at_ms, action.name.clone()));
    for (at_ms, action) in due {
        state.scheduled_run_ms.insert(action.name.clone(), at_ms);
        if input.target.scheduled_scaling_suspended {
            continue;
        }
        min_capacity = action.min_capacity.unwrap_or(min_capacity);
        max_capacity = action.max_capacity.unwrap_or(max_capacity);
        bounds_changed = true;
        activities.push(Activity {
            description: format!(
                "Setting min capacity to {min_capacity} and max capacity to {max_capacity}"
            ),
            cause: format!("scheduled action name {} was triggered", action.name),
            not_scaled: None,
            desired_count: None,
        });
        let clamped = desired.max(min_capacity).min(max_capacity);
        if clamped != desired {
            let cause = if clamped > desired {
                format!("minimum capacity was set to {min_capacity}")
            } else {
                format!("maximum capacity was set to {max_capacity}")
            };
            desired = clamped;
            activities.push(Activity {
                description: format!("Setting desired count to {desired}."),
                cause,
                not_scaled: None,
                desired_count: Some(desired),
            });
        }
    }

    // The capacity is kept inside the bounds: a target registered (or changed) with a
    // minimum above the current desired count, or a maximum below it, is scaled to the bound
    // at once, as on AWS.
    let inside = desired.max(min_capacity).min(max_capacity);
    if inside != desired {
        let cause = if inside > desired {
            format!("minimum capacity was set to {min_capacity}")
        } else {
            format!("maximum capacity was set to {max_capacity}")
        };
        desired = inside;
        activities.push(Activity {
            description: format!("Setting desired count to {desired}."),
            cause,
            not_scaled: None,
            desired_count: Some(desired),
        });
    }

    // b. Policies.
    let held_until_ms = state
        .running_count_changed_ms
        .map(|t| t + RUNNING_CHANGE_HOLD_MS);
    let held = held_until_ms.is_some_and(|t| t > now_ms);
    if let Some(t) = held_until_ms {
        wake.at(t);
    }
    let mut wants: Vec<Want<'_>> = Vec::new();
    let mut scale_in_policies = 0;
    let mut ready_to_scale_in = 0;
    // No scale-in goes below what an AlarmHigh in ALARM asks for (else the next pass would
    // scale out again).
    let mut scale_in_floor = i32::MIN;
    for policy in input.policies {
        let triggered: Vec<&TriggeringAlarm> = policy
            .alarms
            .iter()
            .filter(|a| a.state == AlarmState::Alarm && a.actions_enabled)
            .collect();
        if triggered.is_empty() {
            state.not_scaled.remove(&policy.arn);
        }
        match &policy.configuration {
            PolicyConfiguration::TargetTracking {
                target_value,
                scale_out_cooldown_s,
                scale_in_cooldown_s,
                disable_scale_in,
            } => {
                if !disable_scale_in {
                    scale_in_policies += 1;
                }
                if held {
                    continue;
                }
                let newest = |role: AlarmRole| {
                    triggered
                        .iter()
                        .find(|a| a.role == role)
                        .and_then(|a| a.datapoints.last().map(|m| (*a, *m)))
                };
                let high = newest(AlarmRole::High);
                if let Some((alarm, metric)) = high {
                    let capacity =
                        proportional_capacity(input.running_count, metric, *target_value);
                    scale_in_floor = scale_in_floor.max(capacity);
                    if capacity > desired {
                        wants.push(Want {
                            policy,
                            alarm,
                            direction: Direction::Out,
                            capacity,
                            target_tracking: true,
                        });
                    }
                }
                // A policy whose AlarmHigh is in ALARM is not ready to scale in.
                if *disable_scale_in || high.is_some() {
                    continue;
                }
                let Some((alarm, metric)) = newest(AlarmRole::Low) else {
                    continue;
                };
                let in_end = state
                    .last_scale_in
                    .as_ref()
                    .map(|l| l.at_ms + scale_in_cooldown_s * 1000);
                let out_end = state
                    .last_scale_out
                    .as_ref()
                    .map(|l| l.at_ms + scale_out_cooldown_s * 1000);
                let cooling = [in_end, out_end]
                    .into_iter()
                    .flatten()
                    .inspect(|t| wake.at(*t))
                    .any(|t| t > now_ms);
                if cooling {
                    continue;
                }
                let capacity = proportional_capacity(input.running_count, metric, *target_value);
                if capacity < desired {
                    ready_to_scale_in += 1;
                    wants.push(Want {
                        policy,
                        alarm,
                        direction: Direction::In,
                        capacity,
                        target_tracking: true,
                    });
                }
            }
            PolicyConfiguration::Step {
                adjustment_type,
                step_adjustments,
                min_adjustment_magnitude,
                cooldown_s,
                metric_aggregation,
            } => {
                let cooldown_ms = (cooldown_s * 1000).max(STEP_RETRIGGER_MIN_MS);
                for alarm in &triggered {
                    let Some(metric) = step::aggregate(&alarm.datapoints, *metric_aggregation)
                    else {
                        continue;
                    };
                    let upward =
                        step::breaches_upward(&alarm.comparison_operator, metric, alarm.threshold);
                    let Some(adjustment) =
                        step::find_step(step_adjustments, metric, alarm.threshold, upward)
                    else {
                        continue;
                    };
                    let from_desired = step::new_capacity(
                        desired,
                        *adjustment_type,
                        adjustment.scaling_adjustment,
                        *min_adjustment_magnitude,
                    );
                    if from_desired > desired {
                        // Within Cooldown of the last scale-out, what it added counts.
                        let base = match &state.last_scale_out {
                            Some(last) if last.at_ms + cooldown_ms > now_ms => {
                                wake.at(last.at_ms + cooldown_ms);
                                last.from_capacity
                            }
                            _ => desired,
                        };
                        let capacity = step::new_capacity(
                            base,
                            *adjustment_type,
                            adjustment.scaling_adjustment,
                            *min_adjustment_magnitude,
                        );
                        if capacity > desired {
                            wants.push(Want {
                                policy,
                                alarm,
                                direction: Direction::Out,
                                capacity,
                                target_tracking: false,
                            });
                        }
                    } else if from_desired < desired {
                        let cooling = state.last_scale_in.as_ref().is_some_and(|last| {
                            wake.at(last.at_ms + cooldown_ms);
                            last.at_ms + cooldown_ms > now_ms
                        });
                        if !cooling {
                            wants.push(Want {
                                policy,
                                alarm,
                                direction: Direction::In,
                                capacity: from_desired,
                                target_tracking: false,
                            });
                        }
                    }
                    break;
                }
            }
        }
    }
    if input.target.dynamic_scaling_out_suspended {
        wants.retain(|w| w.direction != Direction::Out);
    }
    if input.target.dynamic_scaling_in_suspended
        || wants.iter().any(|w| w.direction == Direction::Out)
    {
        wants.retain(|w| w.direction != Direction::In);
    }
    if ready_to_scale_in < scale_in_policies {
        wants.retain(|w| !(w.direction == Direction::In && w.target_tracking));
    }

    for want in wants.iter_mut() {
        if want.direction == Direction::In {
            want.capacity = want.capacity.max(scale_in_floor);
        }
    }
    wants.retain(|w| w.direction == Direction::Out || w.capacity < desired);
    // The largest scale-out, or the most conservative scale-in.
    let winner = wants
        .iter()
        .enumerate()
        .max_by_key(|(i, w)| (w.capacity, std::cmp::Reverse(*i)))
        .map(|(i, _)| i);
    let mut scaled_to = None;
    for (i, want) in wants.iter().enumerate() {
        let clamped = want.capacity.max(min_capacity).min(max_capacity);
        let changes = match want.direction {
            Direction::Out => clamped > desired,
            Direction::In => clamped < desired,
        };
        let cause = format!(
            "monitor alarm {} in state ALARM triggered policy {}",
            want.alarm.name, want.policy.name
        );
        if changes {
            // Scaling to a bound short of what the policy asks is remembered as that
            // block: the next pass, still asking, must not record a new not-scaled activity.
            if clamped != want.capacity {
                let code = match want.direction {
                    Direction::Out => "AlreadyAtMaxCapacity",
                    Direction::In => "AlreadyAtMinCapacity",
                };
                state
                    .not_scaled
                    .insert(want.policy.arn.clone(), code.to_string());
            }
            if Some(i) == winner {
                scaled_to = Some((clamped, want, cause));
            }
            continue;
        }
        let reason = match want.direction {
            Direction::Out => NotScaledReason {
                code: "AlreadyAtMaxCapacity".to_string(),
                max_capacity: Some(max_capacity),
                min_capacity: None,
                current_capacity: Some(desired),
            },
            Direction::In => NotScaledReason {
                code: "AlreadyAtMinCapacity".to_string(),
                max_capacity: None,
                min_capacity: Some(min_capacity),
                current_capacity: Some(desired),
            },
        };
        if state.not_scaled.get(&want.policy.arn) != Some(&reason.code) {
            state
                .not_scaled
                .insert(want.policy.arn.clone(), reason.code.clone());
            activities.push(Activity {
                description: "Attempting to scale due to alarm triggered".to_string(),
                cause,
                not_scaled: Some(reason),
                desired_count: None,
            });
        }
    }
    if let Some((to, want, cause)) = scaled_to {
        if to == want.capacity {
            state.not_scaled.remove(&want.policy.arn);
        }
        let last = LastScaling {
            at_ms: now_ms,
            policy_arn: want.policy.arn.clone(),
            from_capacity: desired,
            to_capacity: to,
        };
        match want.direction {
            Direction::Out => state.last_scale_out = Some(last),
            Direction::In => state.last_scale_in = Some(last),
        }
        desired = to;
        activities.push(Activity {
            description: format!("Setting desired count to {to}."),
            cause,
            not_scaled: None,
            desired_count: Some(to),
        });
    }

    Plan {
        desired_count: (desired != input.desired_count).then_some(desired),
        min_capacity: bounds_changed.then_some(min_capacity),
        max_capacity: bounds_changed.then_some(max_capacity),
        activities,
        state,
        wake_at_ms: wake.at_ms,
    }
}

/// The window an action's occurrences may run in: from its creation (and StartTime) to
/// EndTime.
fn window(action: &ScheduledAction) -> (i64, i64) {
    let lo = action.created_ms.max(action.start_ms.unwrap_or(i64::MIN));
    (lo, action.end_ms.unwrap_or(i64::MAX))
}

/// Where a `rate()` counts from: StartTime (which is itself an occurrence), else one
/// interval after the action was created or changed.
fn rate_anchor(action: &ScheduledAction, rate_ms: i64) -> i64 {
    action
        .start_ms
        .unwrap_or_else(|| action.created_ms.saturating_add(rate_ms))
}

/// The latest occurrence in the action's window that is not after `now_ms`.
fn latest_occurrence(action: &ScheduledAction, now_ms: i64) -> Option<i64> {
    let (lo, end) = window(action);
    let hi = now_ms.min(end);
    if hi < lo {
        return None;
    }
    let latest = match action.schedule.rate_ms() {
        Some(rate_ms) => {
            let anchor = rate_anchor(action, rate_ms);
            action
                .schedule
                .latest_at_or_before(hi, anchor)
                .filter(|t| *t >= lo)
        }
        None => action.schedule.latest_at_or_before(hi, lo),
    };
    let start = action.start_ms.filter(|s| (lo..=hi).contains(s));
    latest.max(start)
}

/// The first occurrence after `now_ms` in the action's window.
fn next_occurrence(action: &ScheduledAction, now_ms: i64) -> Option<i64> {
    let (lo, end) = window(action);
    let after = now_ms.max(lo - 1);
    let next = match action.schedule.rate_ms() {
        Some(rate_ms) => {
            let anchor = rate_anchor(action, rate_ms);
            if after < anchor {
                Some(anchor)
            } else {
                Some(anchor + ((after - anchor) / rate_ms + 1) * rate_ms)
            }
        }
        None => action.schedule.next_after(after),
    };
    let start = action.start_ms.filter(|s| *s > after && *s >= lo);
    [next, start]
        .into_iter()
        .flatten()
        .filter(|t| *t <= end)
        .min()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{
        AdjustmentType, MetricAggregation, ScalingState, Schedule, StepAdjustment, Target,
    };
    use proptest::prelude::*;

    pub(crate) fn target(min: i32, max: i32) -> Target {
        Target {
            min_capacity: min,
            max_capacity: max,
            dynamic_scaling_in_suspended: false,
            dynamic_scaling_out_suspended: false,
            scheduled_scaling_suspended: false,
        }
    }

    fn alarm(
        name: &str,
        role: AlarmRole,
        state: AlarmState,
        op: &str,
        threshold: f64,
        points: &[f64],
    ) -> TriggeringAlarm {
        TriggeringAlarm {
            name: name.into(),
            role,
            state,
            actions_enabled: true,
            threshold,
            comparison_operator: op.into(),
            datapoints: points.to_vec(),
        }
    }

    fn tt(name: &str, high: Option<f64>, low: Option<f64>) -> Policy {
        let mut alarms = Vec::new();
        let state = |on: bool| {
            if on {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            }
        };
        alarms.push(alarm(
            &format!("{name}-AlarmHigh"),
            AlarmRole::High,
            state(high.is_some()),
            "GreaterThanThreshold",
            50.0,
            &high.into_iter().collect::<Vec<_>>(),
        ));
        alarms.push(alarm(
            &format!("{name}-AlarmLow"),
            AlarmRole::Low,
            state(low.is_some()),
            "LessThanThreshold",
            45.0,
            &low.into_iter().collect::<Vec<_>>(),
        ));
        Policy {
            name: name.into(),
            arn: format!("arn:{name}"),
            configuration: PolicyConfiguration::TargetTracking {
                target_value: 50.0,
                scale_out_cooldown_s: 60,
                scale_in_cooldown_s: 120,
                disable_scale_in: false,
            },
            alarms,
        }
    }

    fn step_policy(name: &str, metric: Option<f64>, cooldown_s: i64) -> Policy {
        let s = |lo: Option<f64>, hi: Option<f64>, adj: i32| StepAdjustment {
            metric_interval_lower_bound: lo,
            metric_interval_upper_bound: hi,
            scaling_adjustment: adj,
        };
        Policy {
            name: name.into(),
            arn: format!("arn:{name}"),
            configuration: PolicyConfiguration::Step {
                adjustment_type: AdjustmentType::ChangeInCapacity,
                step_adjustments: vec![s(Some(0.0), Some(20.0), 2), s(Some(20.0), None, 3)],
                min_adjustment_magnitude: None,
                cooldown_s,
                metric_aggregation: MetricAggregation::Average,
            },
            alarms: vec![alarm(
                "cpu-high",
                AlarmRole::Step,
                if metric.is_some() {
                    AlarmState::Alarm
                } else {
                    AlarmState::Ok
                },
                "GreaterThanOrEqualToThreshold",
                70.0,
                &metric.into_iter().collect::<Vec<_>>(),
            )],
        }
    }

    fn input<'a>(
        t: &'a Target,
        desired: i32,
        running: i32,
        policies: &'a [Policy],
        actions: &'a [ScheduledAction],
        state: &'a ScalingState,
    ) -> Input<'a> {
        Input {
            target: t,
            desired_count: desired,
            running_count: running,
            policies,
            scheduled_actions: actions,
            state,
        }
    }

    #[test]
    fn a_desired_count_outside_the_bounds_is_brought_inside() {
        let state = ScalingState::default();
        for (min, max, desired, expected, cause) in [
            (1, 8, 0, Some(1), "minimum capacity was set to 1"),
            (1, 3, 5, Some(3), "maximum capacity was set to 3"),
            (1, 8, 4, None, ""),
        ] {
            let t = target(min, max);
            let p = plan(&input(&t, desired, desired, &[], &[], &state), 1_000);
            assert_eq!(p.desired_count, expected, "{min}..{max} from {desired}");
            if let Some(count) = expected {
                assert_eq!(p.activities.len(), 1);
                assert_eq!(
                    p.activities[0].description,
                    format!("Setting desired count to {count}.")
                );
                assert_eq!(p.activities[0].cause, cause);
                // Planned again once applied: nothing more.
                let again = plan(&input(&t, count, desired, &[], &[], &p.state), 1_000);
                assert_eq!((again.desired_count, again.activities.len()), (None, 0));
            }
        }
    }

    #[test]
    fn target_tracking_scale_out_and_cooldowns() {
        let t = target(1, 10);
        let state = ScalingState::default();
        let policies = [tt("cpu", Some(90.0), None)];
        let p = plan(&input(&t, 4, 4, &policies, &[], &state), 1_000);
        assert_eq!(p.desired_count, Some(8));
        assert_eq!(p.activities[0].description, "Setting desired count to 8.");
        assert_eq!(
            p.activities[0].cause,
            "monitor alarm cpu-AlarmHigh in state ALARM triggered policy cpu"
        );
        assert_eq!(p.state.last_scale_out.as_ref().unwrap().from_capacity, 4);

        // Scale-in within ScaleOutCooldown (60 s) of the scale-out waits.
        let low = [tt("cpu", None, Some(10.0))];
        let later = plan(&input(&t, 8, 8, &low, &[], &p.state), 30_000);
        assert_eq!(later.desired_count, None);
        // (Also waiting for a datapoint describing the 8 running tasks: 30 s + 25 s.)
        assert_eq!(later.wake_at_ms, Some(55_000));
        // After it, scale in to the proportional figure: ceil(8 × 10 / 50) = 2.
        let after = plan(&input(&t, 8, 8, &low, &[], &later.state), 61_000);
        assert_eq!(after.desired_count, Some(2));
        // And not again within ScaleInCooldown (120 s).
        let again = plan(
            &input(&t, 2, 2, &[tt("cpu", None, Some(5.0))], &[], &after.state),
            100_000,
        );
        assert_eq!(again.desired_count, None);
    }

    #[test]
    fn at_max_records_one_not_scaled_activity() {
        let t = target(1, 6);
        let policies = [tt("cpu", Some(90.0), None)];
        let p = plan(
            &input(&t, 6, 6, &policies, &[], &ScalingState::default()),
            0,
        );
        assert_eq!(p.desired_count, None);
        assert_eq!(p.activities.len(), 1);
        let reason = p.activities[0].not_scaled.clone().unwrap();
        assert_eq!(reason.code, "AlreadyAtMaxCapacity");
        assert_eq!(
            (reason.max_capacity, reason.current_capacity),
            (Some(6), Some(6))
        );
        assert_eq!(
            p.activities[0].description,
            "Attempting to scale due to alarm triggered"
        );
        let again = plan(&input(&t, 6, 6, &policies, &[], &p.state), 5_000);
        assert!(again.activities.is_empty());
        // The alarm leaves ALARM: forgotten, so the next block records again.
        let calm = plan(
            &input(&t, 6, 6, &[tt("cpu", None, None)], &[], &again.state),
            6_000,
        );
        assert!(calm.state.not_scaled.is_empty());
        // Partly blocked: scale to the max.
        let p = plan(
            &input(&t, 4, 4, &policies, &[], &ScalingState::default()),
            0,
        );
        assert_eq!(p.desired_count, Some(6));
    }

    #[test]
    fn scale_in_needs_every_target_tracking_policy() {
        let t = target(1, 20);
        let state = ScalingState::default();
        let both = [tt("cpu", None, Some(10.0)), tt("mem", None, None)];
        assert_eq!(
            plan(&input(&t, 8, 8, &both, &[], &state), 0).desired_count,
            None
        );
        let both = [tt("cpu", None, Some(10.0)), tt("mem", None, Some(30.0))];
        // The most conservative: max(ceil(8×10/50)=2, ceil(8×30/50)=5).
        assert_eq!(
            plan(&input(&t, 8, 8, &both, &[], &state), 0).desired_count,
            Some(5)
        );
        // The largest scale-out wins.
        let out = [tt("cpu", Some(60.0), None), tt("mem", Some(99.0), None)];
        let p = plan(&input(&t, 8, 8, &out, &[], &state), 0);
        assert_eq!(p.desired_count, Some(16));
        assert!(p.activities[0].cause.ends_with("policy mem"));
    }

    #[test]
    fn running_count_change_holds_target_tracking() {
        let t = target(1, 20);
        let state = ScalingState {
            observed_running_count: Some(4),
            ..Default::default()
        };
        let policies = [tt("cpu", Some(90.0), None)];
        // Running went 4 → 8 just now: the 90% datapoint describes 4 tasks; wait.
        let p = plan(&input(&t, 8, 8, &policies, &[], &state), 0);
        assert_eq!(p.desired_count, None);
        assert_eq!(p.wake_at_ms, Some(RUNNING_CHANGE_HOLD_MS));
        let p = plan(
            &input(&t, 8, 8, &policies, &[], &p.state),
            RUNNING_CHANGE_HOLD_MS,
        );
        assert_eq!(p.desired_count, Some(15));
    }

    #[test]
    fn step_scaling_cooldown_counts_added_capacity() {
        let t = target(1, 20);
        // 75 ≥ 70: step [0, 20) → +2.
        let p = plan(
            &input(
                &t,
                4,
                4,
                &[step_policy("s", Some(75.0), 60)],
                &[],
                &ScalingState::default(),
            ),
            0,
        );
        assert_eq!(p.desired_count, Some(6));
        // During Cooldown, 95 (step +3): only 1 more (4 + 3 = 7).
        let q = plan(
            &input(&t, 6, 6, &[step_policy("s", Some(95.0), 60)], &[], &p.state),
            20_000,
        );
        assert_eq!(q.desired_count, Some(7));
        // Same step again during Cooldown: nothing.
        let r = plan(
            &input(&t, 6, 6, &[step_policy("s", Some(75.0), 60)], &[], &p.state),
            20_000,
        );
        assert_eq!(r.desired_count, None);
        // After Cooldown, the alarm still in ALARM scales again.
        let s = plan(
            &input(&t, 6, 6, &[step_policy("s", Some(75.0), 60)], &[], &p.state),
            60_000,
        );
        assert_eq!(s.desired_count, Some(8));
        // Suspended scale-out: nothing.
        let mut suspended = target(1, 20);
        suspended.dynamic_scaling_out_suspended = true;
        let p = plan(
            &input(
                &suspended,
                4,
                4,
                &[step_policy("s", Some(75.0), 60)],
                &[],
                &ScalingState::default(),
            ),
            0,
        );
        assert_eq!(p.desired_count, None);
    }

    fn action(
        name: &str,
        expr: &str,
        created_ms: i64,
        min: Option<i32>,
        max: Option<i32>,
    ) -> ScheduledAction {
        ScheduledAction {
            name: name.into(),
            arn: format!("arn:{name}"),
            schedule: Schedule::parse(expr, None).unwrap(),
            created_ms,
            start_ms: None,
            end_ms: None,
            min_capacity: min,
            max_capacity: max,
        }
    }

    #[test]
    fn scheduled_actions_run_once_latest_only() {
        let t = target(1, 10);
        let actions = [action("night", "rate(1 hour)", 0, Some(5), Some(8))];
        let hour = 3_600_000;
        assert_eq!(
            plan(
                &input(&t, 2, 2, &[], &actions, &ScalingState::default()),
                hour - 1
            )
            .wake_at_ms,
            Some(hour)
        );
        // Down for three hours: the latest occurrence runs, once.
        let p = plan(
            &input(&t, 2, 2, &[], &actions, &ScalingState::default()),
            3 * hour + 5,
        );
        assert_eq!(p.state.scheduled_run_ms["night"], 3 * hour);
        assert_eq!(
            (p.min_capacity, p.max_capacity, p.desired_count),
            (Some(5), Some(8), Some(5))
        );
        assert_eq!(
            p.activities[0].description,
            "Setting min capacity to 5 and max capacity to 8"
        );
        assert_eq!(
            p.activities[0].cause,
            "scheduled action name night was triggered"
        );
        assert_eq!(p.activities[1].description, "Setting desired count to 5.");
        assert_eq!(p.activities[1].cause, "minimum capacity was set to 5");
        assert_eq!(p.wake_at_ms, Some(4 * hour));
        let again = plan(
            &input(&target(5, 8), 5, 2, &[], &actions, &p.state),
            3 * hour + 6,
        );
        assert!(again.activities.is_empty() && again.desired_count.is_none());
        // Suspended: the occurrence passes without running.
        let mut suspended = t.clone();
        suspended.scheduled_scaling_suspended = true;
        let s = plan(
            &input(&suspended, 2, 2, &[], &actions, &ScalingState::default()),
            hour,
        );
        assert!(s.activities.is_empty());
        assert_eq!(s.state.scheduled_run_ms["night"], hour);
    }

    fn arb_alarm_state() -> impl Strategy<Value = AlarmState> {
        prop_oneof![
            Just(AlarmState::Alarm),
            Just(AlarmState::Ok),
            Just(AlarmState::InsufficientData)
        ]
    }

    proptest! {
        /// Applying a plan and planning again at the same now changes nothing more.
        #[test]
        fn replanning_is_idempotent(
            min in 0i32..5, span in 0i32..20, desired in 0i32..30, running in 0i32..30,
            high in 0.0f64..200.0, low in 0.0f64..60.0, step_metric in 0.0f64..150.0,
            high_state in arb_alarm_state(), low_state in arb_alarm_state(), step_state in arb_alarm_state(),
            now_s in 0i64..20_000, last_out_s in proptest::option::of(0i64..20_000),
            last_in_s in proptest::option::of(0i64..20_000), cooldown_s in 0i64..300,
            suspended in 0u8..8, observed in proptest::option::of(0i32..30),
        ) {
            let mut t = target(min, min + span + 1);
            t.dynamic_scaling_in_suspended = suspended & 1 != 0;
            t.dynamic_scaling_out_suspended = suspended & 2 != 0;
            t.scheduled_scaling_suspended = suspended & 4 != 0;
            let mut cpu = tt("cpu", Some(high), Some(low));
            cpu.alarms[0].state = high_state;
            cpu.alarms[1].state = low_state;
            let mut s = step_policy("s", Some(step_metric), cooldown_s);
            s.alarms[0].state = step_state;
            let policies = [cpu, s];
            let actions = [
                action("a", "rate(5 minutes)", 0, Some(min + 1), None),
                action("b", "cron(0/7 * * * ? *)", 0, None, Some(min + span + 1)),
            ];
            let last = |at_s: i64| LastScaling { at_ms: at_s * 1000, policy_arn: "arn:s".into(), from_capacity: 1, to_capacity: 2 };
            let state = ScalingState {
                last_scale_out: last_out_s.filter(|s| *s <= now_s).map(last),
                last_scale_in: last_in_s.filter(|s| *s <= now_s).map(last),
                observed_running_count: observed,
                ..Default::default()
            };
            let now = now_s * 1000;
            let first = plan(&input(&t, desired, running, &policies, &actions, &state), now);
            let mut applied = t.clone();
            applied.min_capacity = first.min_capacity.unwrap_or(t.min_capacity);
            applied.max_capacity = first.max_capacity.unwrap_or(t.max_capacity);
            let desired2 = first.desired_count.unwrap_or(desired);
            let second = plan(&input(&applied, desired2, running, &policies, &actions, &first.state), now);
            prop_assert_eq!(second.desired_count, None);
            prop_assert!(second.activities.is_empty(), "{:?}", second.activities);
            prop_assert_eq!(second.min_capacity, None);
            prop_assert_eq!(&second.state, &first.state);
            if let Some(d) = first.desired_count {
                prop_assert!(d >= applied.min_capacity.min(desired) && d <= applied.max_capacity.max(desired));
            }
        }
    }
}
