//! Target tracking: the alarms a policy owns and its arithmetic.

use crate::AlarmRole;

/// One alarm a target-tracking policy creates (the shell adds the metric, the name
/// `TargetTracking-<resource id>-AlarmHigh-<uuid>` / `…-AlarmLow-…` and the policy ARN as its
/// action). Periods follow Berth's metric resolution (documented on [`alarm_specs`]).
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmSpec {
    pub role: AlarmRole,
    pub period_s: i32,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: i32,
    pub threshold: f64,
    /// e.g. `GreaterThanThreshold`.
    pub comparison_operator: &'static str,
}

/// The period of every target-tracking alarm, seconds.
pub const PERIOD_S: i32 = 10;
/// AlarmHigh: this many breaching periods out of as many.
pub const HIGH_EVALUATION_PERIODS: i32 = 2;
/// AlarmLow: this many breaching periods out of as many (150 s).
pub const LOW_EVALUATION_PERIODS: i32 = 15;
/// AlarmLow's threshold as a fraction of the target value (AWS: 90%).
pub const LOW_THRESHOLD_FRACTION: f64 = 0.9;

/// The alarms of a target-tracking policy with `target_value` (no AlarmLow when scale-in is
/// disabled).
///
/// AWS creates AlarmHigh as 3 one-minute datapoints above the target and AlarmLow as 15
/// one-minute datapoints below 90% of it, because its ECS metrics arrive once a minute: a
/// load step takes about three minutes to reach a decision. Berth's ECS metrics arrive every
/// 5 s, so the windows follow that resolution instead, keeping AWS's shape:
///
/// - **Period 10 s** (the shortest high-resolution period CloudWatch accepts that holds at
///   least two 5 s samples, so one late or noisy sample cannot decide a period alone). A
///   10 s alarm is evaluated every 10 s.
/// - **AlarmHigh: 2 of 2 periods > target.** A load step is decided 20–30 s after it
///   starts (10–20 s when it lands on a period boundary): the period the step falls into is
///   usually only half breaching, then two full periods must breach. One period would be
///   10 s faster but lets a single 10 s burst scale out; two periods is the smallest window
///   that needs the load to be sustained. Scale-out is proportional and absolute
///   (`ceil(running × metric / target)`), so a second decision during the same load asks
///   for the same count and adds nothing: no overshoot from re-triggering.
/// - **AlarmLow: 15 of 15 periods < 90% of target (150 s).** Scale-in stays conservative,
///   as on AWS (same number of datapoints, 10 s each): a short lull never removes tasks,
///   and the 10% band below the target keeps a count that just fits from flapping.
pub fn alarm_specs(target_value: f64, disable_scale_in: bool) -> Vec<AlarmSpec> {
    let mut specs = vec![AlarmSpec {
        role: AlarmRole::High,
        period_s: PERIOD_S,
        evaluation_periods: HIGH_EVALUATION_PERIODS,
        datapoints_to_alarm: HIGH_EVALUATION_PERIODS,
        threshold: target_value,
        comparison_operator: "GreaterThanThreshold",
    }];
    if !disable_scale_in {
        specs.push(AlarmSpec {
            role: AlarmRole::Low,
            period_s: PERIOD_S,
            evaluation_periods: LOW_EVALUATION_PERIODS,
            datapoints_to_alarm: LOW_EVALUATION_PERIODS,
            threshold: target_value * LOW_THRESHOLD_FRACTION,
            comparison_operator: "LessThanThreshold",
        });
    }
    specs
}

/// The capacity that brings `metric` (an average over `running_count` tasks) to
/// `target_value`: `ceil(running_count × metric / target_value)`. Rounds up, so the
/// metric lands at or below the target. A tiny tolerance keeps `4 × 50 / 50` at 4 despite
/// floating-point noise.
pub fn proportional_capacity(running_count: i32, metric: f64, target_value: f64) -> i32 {
    if target_value <= 0.0 || !metric.is_finite() {
        return running_count;
    }
    let exact = f64::from(running_count) * metric / target_value;
    let capacity = (exact - 1e-9).ceil();
    capacity.clamp(0.0, f64::from(i32::MAX)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let specs = alarm_specs(50.0, false);
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].role, AlarmRole::High);
        assert_eq!((specs[0].period_s, specs[0].evaluation_periods), (10, 2));
        assert_eq!(specs[0].threshold, 50.0);
        assert_eq!(specs[0].comparison_operator, "GreaterThanThreshold");
        assert_eq!(specs[1].role, AlarmRole::Low);
        assert_eq!((specs[1].period_s, specs[1].evaluation_periods), (10, 15));
        assert!((specs[1].threshold - 45.0).abs() < 1e-9);
        assert_eq!(specs[1].comparison_operator, "LessThanThreshold");
        assert_eq!(alarm_specs(50.0, true).len(), 1);
    }

    #[test]
    fn proportional() {
        fn check(running: i32, metric: f64, target: f64, want: i32) {
            assert_eq!(proportional_capacity(running, metric, target), want);
        }
        check(4, 90.0, 50.0, 8);
        check(4, 50.0, 50.0, 4);
        check(4, 51.0, 50.0, 5);
        check(10, 40.0, 50.0, 8);
        check(3, 0.0, 50.0, 0);
        check(0, 90.0, 50.0, 0);
    }
}
