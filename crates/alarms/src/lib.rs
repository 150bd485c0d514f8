//! CloudWatch metric alarm evaluation, pure.
//!
//! The shell (the CloudWatch API crate's evaluation loop) asks [`evaluation_range`] which
//! periods to read, reads the alarm's datapoints from the metric store, and calls
//! [`evaluate`]. When the returned state differs from the current one it writes the new
//! state, the history item ([`state_update_history`]) and runs the actions. Nothing here
//! reads the clock: time arrives as `now_ms` (milliseconds since the Unix epoch, UTC).
//!
//! AWS behaviour followed (CloudWatch User Guide, "Using Amazon CloudWatch alarms"):
//! * "Evaluating an alarm": Period, Evaluation Periods (N), Datapoints to Alarm (M); an
//!   alarm of one minute or longer is evaluated every minute over a sliding window; a
//!   10/20/30 s alarm every 10 seconds; a multi-day alarm (N × Period > 1 day) once an hour
//!   with data up to the current hour.
//! * "How alarm state is evaluated when data is missing": the evaluation range, filling
//!   missing datapoints as few times as possible, and "premature alarm state".
//! * "Percentile-based CloudWatch alarms and low data samples".
//!
//! Wording (StateReason, StateReasonData, HistoryData) is matched against real CloudWatch
//! output; see `wording.rs` for the examples and where Berth guesses.

mod eval;
mod history;
mod wording;

use std::fmt;
use std::str::FromStr;

pub use eval::evaluate;
pub use history::{
    check_state_reason_data, configuration_update_history, state_update_history,
    ConfigurationChange, StateSnapshot,
};
pub use wording::java_double;

/// The reason PutMetricAlarm stores with the initial `INSUFFICIENT_DATA` state (AWS's exact
/// wording, as seen in EventBridge `previousState.reason`).
pub const INITIAL_STATE_REASON: &str = "Unchecked: Initial alarm creation";

/// The evaluation range is this many periods longer than Evaluation Periods. AWS documents
/// an evaluation range of 5 for an alarm with 3 evaluation periods (and says the exact
/// number depends on the period and resolution, without giving it); Berth always looks
/// back N + 2 periods. Guessed.
pub const EXTRA_RANGE_PERIODS: u32 = 2;

const ONE_DAY_S: u64 = 86_400;
const SEVEN_DAYS_S: u64 = 7 * ONE_DAY_S;

/// The crate's one error type. Messages follow AWS's `ValidationError` style.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmError {
    /// A rule or input AWS would refuse with `ValidationError`/`InvalidParameterValue`.
    #[error("{0}")]
    InvalidParameter(String),
    /// `StateReasonData` that is not a JSON object (AWS: `InvalidFormat`).
    #[error("{0}")]
    InvalidFormat(String),
}

/// An alarm's state. Wire values `OK`, `ALARM`, `INSUFFICIENT_DATA`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateValue {
    Ok,
    Alarm,
    InsufficientData,
}

impl StateValue {
    pub fn as_str(self) -> &'static str {
        match self {
            StateValue::Ok => "OK",
            StateValue::Alarm => "ALARM",
            StateValue::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for StateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StateValue {
    type Err = AlarmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "OK" => Ok(StateValue::Ok),
            "ALARM" => Ok(StateValue::Alarm),
            "INSUFFICIENT_DATA" => Ok(StateValue::InsufficientData),
            other => Err(AlarmError::InvalidParameter(format!(
                "Invalid state value '{other}': must be one of OK, ALARM, INSUFFICIENT_DATA"
            ))),
        }
    }
}

/// PutMetricAlarm's `ComparisonOperator`. The last three compare against an anomaly
/// detection band (`ThresholdMetricId`); Berth has no anomaly detection, so
/// [`AlarmRule::validate`] refuses them and the API must answer with that error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComparisonOperator {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
    LessThanLowerOrGreaterThanUpperThreshold,
    LessThanLowerThreshold,
    GreaterThanUpperThreshold,
}

impl ComparisonOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Self::GreaterThanThreshold => "GreaterThanThreshold",
            Self::LessThanThreshold => "LessThanThreshold",
            Self::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
            Self::LessThanLowerOrGreaterThanUpperThreshold => {
                "LessThanLowerOrGreaterThanUpperThreshold"
            }
            Self::LessThanLowerThreshold => "LessThanLowerThreshold",
            Self::GreaterThanUpperThreshold => "GreaterThanUpperThreshold",
        }
    }

    /// Whether this operator needs an anomaly detection band.
    pub fn needs_anomaly_band(self) -> bool {
        matches!(
            self,
            Self::LessThanLowerOrGreaterThanUpperThreshold
                | Self::LessThanLowerThreshold
                | Self::GreaterThanUpperThreshold
        )
    }

    /// Whether `value` breaches `threshold`. Band operators never breach (they are refused
    /// before an alarm exists).
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Self::GreaterThanOrEqualToThreshold => value >= threshold,
            Self::GreaterThanThreshold => value > threshold,
            Self::LessThanThreshold => value < threshold,
            Self::LessThanOrEqualToThreshold => value <= threshold,
            _ => false,
        }
    }

    /// The words AWS puts in StateReason: `was greater than or equal to the threshold`.
    pub(crate) fn phrase(self) -> &'static str {
        match self {
            Self::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Self::GreaterThanThreshold => "greater than",
            Self::LessThanThreshold => "less than",
            Self::LessThanOrEqualToThreshold => "less than or equal to",
            // Never evaluated (refused by `validate`); a readable fallback.
            Self::LessThanLowerOrGreaterThanUpperThreshold => "outside the band of",
            Self::LessThanLowerThreshold => "less than the lower band of",
            Self::GreaterThanUpperThreshold => "greater than the upper band of",
        }
    }
}

impl fmt::Display for ComparisonOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ComparisonOperator {
    type Err = AlarmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALL: [ComparisonOperator; 7] = [
            ComparisonOperator::GreaterThanOrEqualToThreshold,
            ComparisonOperator::GreaterThanThreshold,
            ComparisonOperator::LessThanThreshold,
            ComparisonOperator::LessThanOrEqualToThreshold,
            ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold,
            ComparisonOperator::LessThanLowerThreshold,
            ComparisonOperator::GreaterThanUpperThreshold,
        ];
        ALL.into_iter().find(|op| op.as_str() == s).ok_or_else(|| {
            AlarmError::InvalidParameter(format!("Invalid ComparisonOperator '{s}'"))
        })
    }
}

/// PutMetricAlarm's `TreatMissingData`. Wire values `missing`, `notBreaching`,
/// `breaching`, `ignore`; AWS's default is `missing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TreatMissingData {
    #[default]
    Missing,
    NotBreaching,
    Breaching,
    Ignore,
}

impl TreatMissingData {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::NotBreaching => "notBreaching",
            Self::Breaching => "breaching",
            Self::Ignore => "ignore",
        }
    }
}

impl FromStr for TreatMissingData {
    type Err = AlarmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "missing" => Ok(Self::Missing),
            "notBreaching" => Ok(Self::NotBreaching),
            "breaching" => Ok(Self::Breaching),
            "ignore" => Ok(Self::Ignore),
            other => Err(AlarmError::InvalidParameter(format!(
                "Invalid TreatMissingData '{other}': must be one of breaching, notBreaching, ignore, missing"
            ))),
        }
    }
}

/// PutMetricAlarm's `EvaluateLowSampleCountPercentile`: `evaluate` or `ignore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LowSampleCount {
    Evaluate,
    Ignore,
}

impl LowSampleCount {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evaluate => "evaluate",
            Self::Ignore => "ignore",
        }
    }
}

impl FromStr for LowSampleCount {
    type Err = AlarmError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "evaluate" => Ok(Self::Evaluate),
            "ignore" => Ok(Self::Ignore),
            other => Err(AlarmError::InvalidParameter(format!(
                "Invalid EvaluateLowSampleCountPercentile '{other}': must be evaluate or ignore"
            ))),
        }
    }
}

/// The parts of a metric alarm that decide its state.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRule {
    pub period_s: u32,
    /// N.
    pub evaluation_periods: u32,
    /// M. `None` when PutMetricAlarm did not set `DatapointsToAlarm`: AWS then evaluates
    /// N out of N and words the reason without "out of the last" (both forms are in real
    /// StateReasons), so the difference is kept.
    pub datapoints_to_alarm: Option<u32>,
    pub threshold: f64,
    pub comparison: ComparisonOperator,
    pub treat_missing_data: TreatMissingData,
    /// `"Average"`, `"p99"`, ... as in StateReasonData's `statistic`; `""` for metric math
    /// (StateReasonData then has no `statistic` and datapoints no `sampleCount`).
    pub statistic_label: String,
    /// The alarm's `Unit`, echoed as StateReasonData's `unit` when set.
    pub unit: Option<String>,
    pub evaluate_low_sample_count_percentile: Option<LowSampleCount>,
}

impl AlarmRule {
    /// M, defaulting to N as AWS does.
    pub fn datapoints_to_alarm(&self) -> u32 {
        self.datapoints_to_alarm.unwrap_or(self.evaluation_periods)
    }

    /// PutMetricAlarm's checks on the evaluation settings. Messages are Berth's (AWS
    /// documents the limits, not the error text).
    pub fn validate(&self) -> Result<(), AlarmError> {
        let invalid = |m: String| Err(AlarmError::InvalidParameter(m));
        if self.comparison.needs_anomaly_band() {
            return invalid(format!(
                "ComparisonOperator {} requires an anomaly detection band (ThresholdMetricId), which Berth does not support",
                self.comparison
            ));
        }
        let p = self.period_s;
        if !(p == 10 || p == 20 || p == 30 || (p > 0 && p.is_multiple_of(60))) {
            return invalid(format!(
                "The parameter Period must be 10, 20, 30 or a multiple of 60 (got {p})"
            ));
        }
        if self.evaluation_periods == 0 {
            return invalid(
                "The parameter EvaluationPeriods must be greater than or equal to 1".into(),
            );
        }
        let total_s = u64::from(p) * u64::from(self.evaluation_periods);
        let max_s = if p >= 3600 { SEVEN_DAYS_S } else { ONE_DAY_S };
        if total_s > max_s {
            return invalid(format!(
                "The evaluation period (Period x EvaluationPeriods = {total_s} seconds) must not exceed {max_s} seconds"
            ));
        }
        if let Some(m) = self.datapoints_to_alarm {
            if m == 0 || m > self.evaluation_periods {
                return invalid(format!(
                    "DatapointsToAlarm ({m}) must be between 1 and EvaluationPeriods ({})",
                    self.evaluation_periods
                ));
            }
        }
        if !self.threshold.is_finite() {
            return invalid("The parameter Threshold must be a finite number".into());
        }
        Ok(())
    }

    fn period_ms(&self) -> i64 {
        i64::from(self.period_s.max(1)) * 1000
    }

    /// How often the alarm is evaluated: every 10 s for high-resolution periods, hourly for
    /// multi-day alarms, else every minute.
    fn evaluation_step_ms(&self) -> i64 {
        let total_s = u64::from(self.period_s) * u64::from(self.evaluation_periods);
        if self.period_s < 60 {
            10_000
        } else if total_s > ONE_DAY_S {
            3_600_000
        } else {
            60_000
        }
    }

    /// The percentile of `statistic_label` as a fraction (`p99` → 0.99), if it is one.
    fn percentile(&self) -> Option<f64> {
        let rest = self.statistic_label.strip_prefix('p')?;
        let v: f64 = rest.parse().ok()?;
        let f = v / 100.0;
        (f > 0.0 && f < 1.0).then_some(f)
    }

    /// Whether a datapoint has too few samples for its percentile: fewer than
    /// 10/(1-p) samples for p ≥ 0.5, fewer than 10/p below (User Guide, low data samples).
    pub fn is_low_sample(&self, datapoint: &Datapoint) -> bool {
        match (self.percentile(), datapoint.sample_count) {
            (Some(f), Some(n)) => {
                let needed = if f >= 0.5 { 10.0 / (1.0 - f) } else { 10.0 / f };
                n < needed
            }
            _ => false,
        }
    }
}

/// One period's statistic, timestamped at the period's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    pub timestamp_ms: i64,
    pub value: f64,
    pub sample_count: Option<f64>,
}

/// What the shell has read: the datapoints of the evaluation range (ending at the last
/// closed period), as returned by [`evaluation_range`].
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub datapoints: &'a [Datapoint],
    pub range_start_ms: i64,
    pub range_end_ms: i64,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub state: StateValue,
    /// StateReason. Empty when the state was retained without evaluating (`ignore` with no
    /// data, or too few percentile samples with `EvaluateLowSampleCountPercentile=ignore`):
    /// the shell keeps the stored reason.
    pub reason: String,
    /// StateReasonData (JSON). Empty exactly when `reason` is.
    pub reason_data: String,
}

/// Which periods to read for an evaluation at `now_ms`: `[start, end)`, where `end` is the
/// boundary of the last closed evaluation step (minute; 10 s for high-resolution alarms; hour
/// for multi-day alarms) and the range is N + [`EXTRA_RANGE_PERIODS`] periods long. Periods
/// slide with the evaluation step (AWS: "at the end of minute 6, the alarm is evaluated
/// based on the data from minutes 2 to 6"), so the k-th newest period is
/// `[end - k·period, end - (k-1)·period)`.
pub fn evaluation_range(rule: &AlarmRule, now_ms: i64) -> (i64, i64) {
    let step = rule.evaluation_step_ms();
    let end = now_ms.div_euclid(step) * step;
    let periods = i64::from(rule.evaluation_periods.max(1) + EXTRA_RANGE_PERIODS);
    (end - periods * rule.period_ms(), end)
}

/// When the next evaluation is due after `now_ms`: the next evaluation-step boundary.
pub fn next_evaluation_ms(rule: &AlarmRule, now_ms: i64) -> i64 {
    let step = rule.evaluation_step_ms();
    (now_ms.div_euclid(step) + 1) * step
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rule(period_s: u32, n: u32, m: Option<u32>) -> AlarmRule {
        AlarmRule {
            period_s,
            evaluation_periods: n,
            datapoints_to_alarm: m,
            threshold: 80.0,
            comparison: ComparisonOperator::GreaterThanThreshold,
            treat_missing_data: TreatMissingData::Missing,
            statistic_label: "Average".into(),
            unit: None,
            evaluate_low_sample_count_percentile: None,
        }
    }

    #[test]
    fn ranges_and_next_evaluation() {
        // 2026-12-07T14:03:30.500Z
        let now = 1_796_652_210_500;
        let minute = now - now % 60_000;
        let hour = now - now % 3_600_000;
        let ten = now - now % 10_000;
        fn check(r: AlarmRule, now: i64, want: (i64, i64), next: i64) {
            assert_eq!(evaluation_range(&r, now), want, "{r:?}");
            assert_eq!(next_evaluation_ms(&r, now), next, "{r:?}");
        }
        check(
            rule(60, 3, None),
            now,
            (minute - 5 * 60_000, minute),
            minute + 60_000,
        );
        check(
            rule(300, 1, None),
            now,
            (minute - 3 * 300_000, minute),
            minute + 60_000,
        );
        check(
            rule(10, 6, None),
            now,
            (ten - 8 * 10_000, ten),
            ten + 10_000,
        );
        check(
            rule(30, 2, None),
            now,
            (ten - 4 * 30_000, ten),
            ten + 10_000,
        );
        // 3 × 12 h > 1 day: hourly.
        check(
            rule(43_200, 3, None),
            now,
            (hour - 5 * 43_200_000, hour),
            hour + 3_600_000,
        );
        // Exactly on a boundary: that period has just closed.
        check(
            rule(60, 1, None),
            minute,
            (minute - 180_000, minute),
            minute + 60_000,
        );
    }

    #[test]
    fn validation() {
        fn check(r: AlarmRule, want: Result<(), &str>) {
            let got = r.validate();
            match want {
                Ok(()) => assert_eq!(got, Ok(()), "{r:?}"),
                Err(part) => {
                    let msg = got.expect_err("should be refused").to_string();
                    assert!(msg.contains(part), "{msg:?} lacks {part:?}");
                }
            }
        }
        check(rule(60, 3, Some(2)), Ok(()));
        check(rule(10, 1, None), Ok(()));
        check(rule(20, 1, None), Ok(()));
        check(rule(30, 1, None), Ok(()));
        check(rule(3600, 168, None), Ok(()));
        check(rule(45, 1, None), Err("Period"));
        check(rule(0, 1, None), Err("Period"));
        check(rule(90, 1, None), Err("Period"));
        check(rule(60, 0, None), Err("EvaluationPeriods"));
        check(rule(60, 1441, None), Err("86400"));
        check(rule(3600, 169, None), Err("604800"));
        check(rule(60, 3, Some(4)), Err("DatapointsToAlarm"));
        check(rule(60, 3, Some(0)), Err("DatapointsToAlarm"));
        let mut band = rule(60, 1, None);
        band.comparison = ComparisonOperator::LessThanLowerOrGreaterThanUpperThreshold;
        check(band, Err("anomaly detection band"));
        let mut nan = rule(60, 1, None);
        nan.threshold = f64::NAN;
        check(nan, Err("Threshold"));
    }

    #[test]
    fn wire_values_round_trip() {
        for s in ["OK", "ALARM", "INSUFFICIENT_DATA"] {
            assert_eq!(s.parse::<StateValue>().unwrap().as_str(), s);
        }
        for s in ["missing", "notBreaching", "breaching", "ignore"] {
            assert_eq!(s.parse::<TreatMissingData>().unwrap().as_str(), s);
        }
        for s in ["evaluate", "ignore"] {
            assert_eq!(s.parse::<LowSampleCount>().unwrap().as_str(), s);
        }
        for s in [
            "GreaterThanOrEqualToThreshold",
            "LessThanLowerThreshold",
            "GreaterThanUpperThreshold",
        ] {
            assert_eq!(s.parse::<ComparisonOperator>().unwrap().as_str(), s);
        }
        assert!("Ok".parse::<StateValue>().is_err());
        assert!("Breaching".parse::<TreatMissingData>().is_err());
    }

    #[test]
    fn low_sample_thresholds() {
        fn check(stat: &str, samples: f64, low: bool) {
            let mut r = rule(60, 1, None);
            r.statistic_label = stat.into();
            let dp = Datapoint {
                timestamp_ms: 0,
                value: 1.0,
                sample_count: Some(samples),
            };
            assert_eq!(r.is_low_sample(&dp), low, "{stat} with {samples} samples");
        }
        check("p99", 999.0, true); // 10/(1-0.99) = 1000
        check("p99", 1000.0, false);
        check("p50", 19.0, true); // 10/0.5 = 20
        check("p50", 20.0, false);
        check("p10", 99.0, true); // 10/0.1 = 100
        check("p10", 100.0, false);
        check("p99.9", 9999.0, true);
        check("Average", 1.0, false);
        check("", 1.0, false);
    }
}
