//! Step scaling: which step applies, how the alarm's datapoints are aggregated, and the new
//! capacity per AdjustmentType (with AWS's capacity rounding and MinAdjustmentMagnitude).

use crate::{AdjustmentType, MetricAggregation, StepAdjustment};

/// The alarm's datapoints aggregated as MetricAggregationType says; None without data.
pub fn aggregate(datapoints: &[f64], aggregation: MetricAggregation) -> Option<f64> {
    if datapoints.is_empty() {
        return None;
    }
    Some(match aggregation {
        MetricAggregation::Average => datapoints.iter().sum::<f64>() / datapoints.len() as f64,
        MetricAggregation::Minimum => datapoints.iter().copied().fold(f64::INFINITY, f64::min),
        MetricAggregation::Maximum => datapoints.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// Whether an alarm's ComparisonOperator breaches upward (`Greater…`), so the steps are
/// read "above the threshold". Unknown operators are read by the sign of the breach.
pub fn breaches_upward(comparison_operator: &str, metric: f64, threshold: f64) -> bool {
    if comparison_operator.starts_with("Greater") {
        true
    } else if comparison_operator.starts_with("Less") {
        false
    } else {
        metric >= threshold
    }
}

/// The step adjustment for `metric` against `threshold`. Bounds are relative to the
/// threshold (None: infinite). Above the threshold the lower bound is inclusive and the
/// upper exclusive; below it the lower bound is exclusive and the upper inclusive (AWS's
/// StepAdjustment rules).
pub fn find_step(
    steps: &[StepAdjustment],
    metric: f64,
    threshold: f64,
    upward: bool,
) -> Option<&StepAdjustment> {
    let diff = metric - threshold;
    steps.iter().find(|step| {
        let lower = step
            .metric_interval_lower_bound
            .unwrap_or(f64::NEG_INFINITY);
        let upper = step.metric_interval_upper_bound.unwrap_or(f64::INFINITY);
        if upward {
            lower <= diff && diff < upper
        } else {
            lower < diff && diff <= upper
        }
    })
}

/// PercentChangeInCapacity's change rounded as AWS documents: a value between 0 and 1
/// becomes 1, above 1 it is rounded down; between -1 and 0 it becomes -1, below -1 it is
/// rounded up (toward zero). MinAdjustmentMagnitude then raises a smaller change to it.
pub fn percent_change(capacity: i32, percent: i32, min_adjustment_magnitude: Option<i32>) -> i32 {
    let exact = f64::from(capacity) * f64::from(percent) / 100.0;
    let mut change = if exact == 0.0 {
        0
    } else if exact > 0.0 && exact < 1.0 {
        1
    } else if exact > -1.0 && exact < 0.0 {
        -1
    } else {
        exact.trunc() as i32
    };
    if let Some(magnitude) = min_adjustment_magnitude {
        if change != 0 && change.abs() < magnitude {
            change = change.signum() * magnitude;
        }
    }
    change
}

/// The capacity a step asks for from `capacity` (not yet clamped to the target's bounds).
pub fn new_capacity(
    capacity: i32,
    adjustment_type: AdjustmentType,
    scaling_adjustment: i32,
    min_adjustment_magnitude: Option<i32>,
) -> i32 {
    match adjustment_type {
        AdjustmentType::ChangeInCapacity => capacity.saturating_add(scaling_adjustment),
        AdjustmentType::ExactCapacity => scaling_adjustment,
        AdjustmentType::PercentChangeInCapacity => capacity.saturating_add(percent_change(
            capacity,
            scaling_adjustment,
            min_adjustment_magnitude,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(lower: Option<f64>, upper: Option<f64>, adjustment: i32) -> StepAdjustment {
        StepAdjustment {
            metric_interval_lower_bound: lower,
            metric_interval_upper_bound: upper,
            scaling_adjustment: adjustment,
        }
    }

    #[test]
    fn step_boundaries() {
        // Threshold 50: [50, 60) +1, [60, 75) +2, [75, ∞) +3.
        let up = [
            step(Some(0.0), Some(10.0), 1),
            step(Some(10.0), Some(25.0), 2),
            step(Some(25.0), None, 3),
        ];
        fn check(steps: &[StepAdjustment], metric: f64, upward: bool, want: Option<i32>) {
            let got = find_step(steps, metric, 50.0, upward).map(|s| s.scaling_adjustment);
            assert_eq!(got, want, "metric {metric}");
        }
        check(&up, 50.0, true, Some(1));
        check(&up, 59.9, true, Some(1));
        check(&up, 60.0, true, Some(2));
        check(&up, 75.0, true, Some(3));
        check(&up, 1000.0, true, Some(3));
        check(&up, 49.0, true, None);
        // Below threshold 50: (40, 50] -1, (-∞, 40] -2.
        let down = [
            step(Some(-10.0), Some(0.0), -1),
            step(None, Some(-10.0), -2),
        ];
        check(&down, 50.0, false, Some(-1));
        check(&down, 40.0, false, Some(-2));
        check(&down, 40.1, false, Some(-1));
        check(&down, 0.0, false, Some(-2));
    }

    #[test]
    fn aggregation() {
        let points = [10.0, 30.0, 20.0];
        assert_eq!(aggregate(&points, MetricAggregation::Average), Some(20.0));
        assert_eq!(aggregate(&points, MetricAggregation::Minimum), Some(10.0));
        assert_eq!(aggregate(&points, MetricAggregation::Maximum), Some(30.0));
        assert_eq!(aggregate(&[], MetricAggregation::Average), None);
    }

    #[test]
    fn capacity_rounding() {
        fn check(capacity: i32, percent: i32, magnitude: Option<i32>, want: i32) {
            assert_eq!(
                new_capacity(
                    capacity,
                    AdjustmentType::PercentChangeInCapacity,
                    percent,
                    magnitude
                ),
                want,
                "{capacity} {percent}% min {magnitude:?}"
            );
        }
        check(10, 5, None, 11); // 0.5 → 1
        check(10, 25, None, 12); // 2.5 → 2
        check(10, -5, None, 9); // -0.5 → -1
        check(10, -25, None, 8); // -2.5 → -2
        check(10, 0, None, 10);
        check(10, 10, Some(3), 13); // 1 → at least 3
        check(10, -10, Some(3), 7);
        check(100, 10, Some(3), 110);
        assert_eq!(
            new_capacity(4, AdjustmentType::ChangeInCapacity, 3, None),
            7
        );
        assert_eq!(new_capacity(4, AdjustmentType::ExactCapacity, 9, None), 9);
    }
}
