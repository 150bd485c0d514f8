//! Application Auto Scaling's decisions, pure: what a scalable target's capacity should be
//! now, given its bounds, its scaling policies and the alarms that trigger them, its scheduled
//! actions, what the controller remembers ([`ScalingState`]) and `now_ms`.
//!
//! The shell (`application-autoscaling`'s controller) observes, calls [`plan`], writes the
//! returned state and activities with compare-and-swap, then sets the ECS service's desired
//! count. Planning again on the result of applying a plan changes nothing.
//!
//! - `target_tracking`: the alarms a target-tracking policy owns ([`alarm_specs`]) and its
//!   arithmetic (proportional scale-out, conservative scale-in).
//! - `step`: step adjustments, adjustment types, capacity rounding, MinAdjustmentMagnitude.
//! - `schedule`: `at()`, `rate()` and `cron()` expressions with a time zone.
//! - `plan.rs`: one pass over one scalable target: scheduled actions, then policies, with
//!   cooldowns and suspension.
//!
//! **Invariant:** no I/O, no clock, no randomness.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod error;
mod plan;
pub mod schedule;
#[cfg(test)]
mod sim;
pub mod step;
pub mod target_tracking;

pub use error::ScalingError;
pub use plan::plan;
pub use schedule::Schedule;
pub use target_tracking::{alarm_specs, AlarmSpec};

/// A scalable target's bounds and suspension (RegisterScalableTarget).
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub min_capacity: i32,
    pub max_capacity: i32,
    pub dynamic_scaling_in_suspended: bool,
    pub dynamic_scaling_out_suspended: bool,
    pub scheduled_scaling_suspended: bool,
}

/// An alarm's state as CloudWatch reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

/// Which of a target-tracking policy's alarms this is; `Step` for a user's alarm that names a
/// step scaling policy in its AlarmActions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmRole {
    High,
    Low,
    Step,
}

/// An alarm that triggers a policy, as the controller observed it at `now_ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggeringAlarm {
    pub name: String,
    pub role: AlarmRole,
    pub state: AlarmState,
    /// Whether the alarm's actions are enabled (DisableAlarmActions turns a trigger off).
    pub actions_enabled: bool,
    pub threshold: f64,
    /// The alarm's ComparisonOperator, e.g. `GreaterThanThreshold`.
    pub comparison_operator: String,
    /// The alarm's datapoints over its evaluation periods (`EvaluationPeriods` × `Period`
    /// ending now), oldest first: what step scaling aggregates and target tracking reads its
    /// metric from (the newest is used).
    pub datapoints: Vec<f64>,
}

/// StepScalingPolicyConfiguration's AdjustmentType.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdjustmentType {
    ChangeInCapacity,
    PercentChangeInCapacity,
    ExactCapacity,
}

/// StepScalingPolicyConfiguration's MetricAggregationType (default Average).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricAggregation {
    Average,
    Minimum,
    Maximum,
}

/// One StepAdjustment: bounds relative to the alarm's threshold (None: infinite).
#[derive(Clone, Debug, PartialEq)]
pub struct StepAdjustment {
    pub metric_interval_lower_bound: Option<f64>,
    pub metric_interval_upper_bound: Option<f64>,
    pub scaling_adjustment: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PolicyConfiguration {
    TargetTracking {
        target_value: f64,
        /// ScaleOutCooldown / ScaleInCooldown (AWS's default for ECS: 300 s each).
        scale_out_cooldown_s: i64,
        scale_in_cooldown_s: i64,
        disable_scale_in: bool,
    },
    Step {
        adjustment_type: AdjustmentType,
        step_adjustments: Vec<StepAdjustment>,
        min_adjustment_magnitude: Option<i32>,
        cooldown_s: i64,
        metric_aggregation: MetricAggregation,
    },
}

/// A scaling policy with the alarms that trigger it.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    pub arn: String,
    pub configuration: PolicyConfiguration,
    pub alarms: Vec<TriggeringAlarm>,
}

/// A scheduled action (PutScheduledAction).
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledAction {
    pub name: String,
    pub arn: String,
    pub schedule: Schedule,
    /// When the action was created or last changed: a `rate()` counts from here, and no
    /// occurrence before it fires.
    pub created_ms: i64,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub min_capacity: Option<i32>,
    pub max_capacity: Option<i32>,
}

/// What the controller remembers about one scalable target between passes. Written with the
/// activities of the plan that produced it, in one compare-and-swap.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScalingState {
    /// The last scale-out (its time and the capacity it set), for the cooldowns.
    pub last_scale_out: Option<LastScaling>,
    pub last_scale_in: Option<LastScaling>,
    /// Scheduled action name → the occurrence (its scheduled time, ms) last run.
    pub scheduled_run_ms: BTreeMap<String, i64>,
    /// Policy ARN → the not-scaled reason last recorded for it, so a policy that keeps
    /// asking while the target is at a bound records one not-scaled activity, not one a pass.
    pub not_scaled: BTreeMap<String, String>,
    /// The ECS service's runningCount at the last pass, and when it last changed: a
    /// target-tracking metric describes the tasks that ran during its period, so Berth
    /// waits for a fresh period after the running count changes before trusting
    /// `running × metric` again (see `plan.rs`).
    #[serde(default)]
    pub observed_running_count: Option<i32>,
    #[serde(default)]
    pub running_count_changed_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastScaling {
    pub at_ms: i64,
    pub policy_arn: String,
    pub from_capacity: i32,
    pub to_capacity: i32,
}

/// Everything one pass over one scalable target looks at.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub target: &'a Target,
    /// The ECS service's desiredCount now.
    pub desired_count: i32,
    /// The ECS service's runningCount now: the tasks whose metrics the alarms see.
    pub running_count: i32,
    pub policies: &'a [Policy],
    pub scheduled_actions: &'a [ScheduledAction],
    pub state: &'a ScalingState,
}

/// A ScalingActivity to record (AWS's wording).
#[derive(Clone, Debug, PartialEq)]
pub struct Activity {
    /// e.g. `Setting desired count to 4.`
    pub description: String,
    /// e.g. `monitor alarm TargetTracking-service/default/web-AlarmHigh-… in state ALARM
    /// triggered policy cpu-tt`.
    pub cause: String,
    /// None for an activity that scaled; Some for a not-scaled one
    /// (IncludeNotScaledActivities).
    pub not_scaled: Option<NotScaledReason>,
    /// The desired count it sets, if it sets one.
    pub desired_count: Option<i32>,
}

/// NotScaledReason: `AlreadyAtMaxCapacity`, `AlreadyAtMinCapacity`, `AlreadyAtDesiredCapacity`.
#[derive(Clone, Debug, PartialEq)]
pub struct NotScaledReason {
    pub code: String,
    pub max_capacity: Option<i32>,
    pub min_capacity: Option<i32>,
    pub current_capacity: Option<i32>,
}

/// What one pass decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The service's new desired count, if it changes.
    pub desired_count: Option<i32>,
    /// New bounds set by a scheduled action.
    pub min_capacity: Option<i32>,
    pub max_capacity: Option<i32>,
    pub activities: Vec<Activity>,
    /// The state to write (equal to the input's when nothing happened).
    pub state: ScalingState,
    /// The earliest time a pass could decide something new without any input changing
    /// (a cooldown ending, a scheduled occurrence), if any.
    pub wake_at_ms: Option<i64>,
}
