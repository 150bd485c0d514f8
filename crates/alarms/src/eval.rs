//! The state decision (User Guide, "How alarm state is evaluated when data is missing").
//!
//! With R real datapoints in the evaluation range, N evaluation periods and M datapoints
//! to alarm:
//! * R ≥ N: the N most recent real datapoints are evaluated; TreatMissingData is not used.
//! * R = 0: `missing` → INSUFFICIENT_DATA, `ignore` → current state kept, `breaching` →
//!   ALARM, `notBreaching` → OK.
//! * 0 < R < N: `breaching`/`notBreaching` fill N - R missing periods (the newest ones)
//!   and evaluate them with all R real datapoints. `missing`/`ignore` evaluate the real
//!   datapoints alone: ALARM when at least M breach, else ALARM by the "premature alarm"
//!   rule (`ignore`: current state kept instead), else OK.
//!
//! The premature-alarm rule, as Berth reads it: the oldest breaching datapoint among the
//! last N periods is at least M periods old, and every real datapoint in the range
//! breaches. The last condition is not in AWS's prose but its table needs it: for 2 out of
//! 3 with `0 - X - -`, `missing` gives OK, while `- - - X -` gives ALARM. Every row of both
//! tables of the User Guide is a test below.

use crate::wording::{count, datapoint_list, was_were, Evaluated, ReasonData};
use crate::{AlarmRule, Evaluation, LowSampleCount, StateValue, TreatMissingData, Window};

/// One period of the evaluation range; age 1 is the newest.
#[derive(Debug, Clone, Copy)]
struct Slot {
    timestamp_ms: i64,
    real: Option<Real>,
}

#[derive(Debug, Clone, Copy)]
struct Real {
    value: f64,
    sample_count: Option<f64>,
    breaching: bool,
}

/// How an evaluated datapoint counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Real { breaching: bool },
    Filled { breaching: bool },
}

impl Kind {
    fn breaching(self) -> bool {
        match self {
            Kind::Real { breaching } | Kind::Filled { breaching } => breaching,
        }
    }
}

/// The alarm's state after this evaluation (same state ⇒ the shell writes nothing and
/// runs no action). `window` must come from [`crate::evaluation_range`] for the same
/// `now_ms`; datapoints outside it are ignored, and of two datapoints in one period the
/// later in the slice wins.
pub fn evaluate(rule: &AlarmRule, current: StateValue, window: &Window, now_ms: i64) -> Evaluation {
    let n = rule.evaluation_periods.max(1) as usize;
    let m = (rule.datapoints_to_alarm() as usize).clamp(1, n);
    let slots = slots(rule, window);

    if rule.evaluate_low_sample_count_percentile == Some(LowSampleCount::Ignore)
        && low_sample_in_last_n(rule, window, n)
    {
        return retained(current);
    }

    let reals: Vec<(usize, &Slot)> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.real.is_some())
        .collect();
    let is_breaching = |s: &Slot| s.real.is_some_and(|r| r.breaching);

    // The evaluated datapoints, each with its age index (0 = newest).
    let mut evaluated: Vec<(usize, Kind)> = Vec::new();
    let state;
    if reals.len() >= n {
        evaluated.extend(reals.iter().take(n).map(|(i, s)| {
            (
                *i,
                Kind::Real {
                    breaching: is_breaching(s),
                },
            )
        }));
        state = decide(&evaluated, m);
    } else {
        evaluated.extend(reals.iter().map(|(i, s)| {
            (
                *i,
                Kind::Real {
                    breaching: is_breaching(s),
                },
            )
        }));
        let fill = |breaching: bool, evaluated: &mut Vec<(usize, Kind)>| {
            let missing = slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.real.is_none())
                .take(n - reals.len())
                .map(|(i, _)| (i, Kind::Filled { breaching }));
            evaluated.extend(missing);
            evaluated.sort_by_key(|(i, _)| *i);
        };
        match rule.treat_missing_data {
            TreatMissingData::Breaching => {
                fill(true, &mut evaluated);
                state = decide(&evaluated, m);
            }
            TreatMissingData::NotBreaching => {
                fill(false, &mut evaluated);
                state = decide(&evaluated, m);
            }
            TreatMissingData::Missing | TreatMissingData::Ignore if reals.is_empty() => {
                if rule.treat_missing_data == TreatMissingData::Ignore {
                    return retained(current);
                }
                let periods: Vec<Evaluated> = slots
                    .iter()
                    .take(n)
                    .map(|s| Evaluated {
                        timestamp_ms: s.timestamp_ms,
                        real: None,
                    })
                    .collect();
                let reason = format!(
                    "Insufficient Data: {} {} unknown.",
                    count(n, "datapoint"),
                    was_were(n)
                );
                return Evaluation {
                    state: StateValue::InsufficientData,
                    reason,
                    reason_data: reason_data(rule, now_ms, &[], &periods),
                };
            }
            TreatMissingData::Missing | TreatMissingData::Ignore => {
                let breaching = reals.iter().filter(|(_, s)| is_breaching(s)).count();
                if breaching >= m {
                    state = StateValue::Alarm;
                } else if premature_alarm(&slots, n, m) {
                    if rule.treat_missing_data == TreatMissingData::Ignore {
                        return retained(current);
                    }
                    state = StateValue::Alarm;
                } else {
                    state = StateValue::Ok;
                }
            }
        }
    }
    word(rule, state, &slots, &evaluated, n, m, now_ms)
}

fn retained(current: StateValue) -> Evaluation {
    Evaluation {
        state: current,
        reason: String::new(),
        reason_data: String::new(),
    }
}

fn decide(evaluated: &[(usize, Kind)], m: usize) -> StateValue {
    if evaluated.iter().filter(|(_, k)| k.breaching()).count() >= m {
        StateValue::Alarm
    } else {
        StateValue::Ok
    }
}

/// The evaluation range as periods, newest first, with the window's datapoints placed.
fn slots(rule: &AlarmRule, window: &Window) -> Vec<Slot> {
    let period_ms = i64::from(rule.period_s.max(1)) * 1000;
    let end = window.range_end_ms;
    let len = ((end - window.range_start_ms).max(0) / period_ms) as usize;
    let mut slots: Vec<Slot> = (0..len)
        .map(|i| Slot {
            timestamp_ms: end - (i as i64 + 1) * period_ms,
            real: None,
        })
        .collect();
    for dp in window.datapoints {
        if dp.timestamp_ms >= end || dp.timestamp_ms < window.range_start_ms {
            continue;
        }
        let index = ((end - 1 - dp.timestamp_ms) / period_ms) as usize;
        if let Some(slot) = slots.get_mut(index) {
            slot.real = Some(Real {
                value: dp.value,
                sample_count: dp.sample_count,
                breaching: rule.comparison.breaches(dp.value, rule.threshold),
            });
        }
    }
    slots
}

/// `EvaluateLowSampleCountPercentile=ignore`: "the alarm state does not change during
/// periods with too few data points to be statistically significant" (PutMetricAlarm).
/// Berth reads "periods" as any of the last N periods. Guessed.
fn low_sample_in_last_n(rule: &AlarmRule, window: &Window, n: usize) -> bool {
    slots(rule, window).iter().take(n).any(|slot| {
        slot.real.is_some_and(|r| {
            rule.is_low_sample(&crate::Datapoint {
                timestamp_ms: slot.timestamp_ms,
                value: r.value,
                sample_count: r.sample_count,
            })
        })
    })
}

fn premature_alarm(slots: &[Slot], n: usize, m: usize) -> bool {
    let all_real_breach = slots.iter().all(|s| s.real.is_none_or(|r| r.breaching));
    let oldest_breaching_age = slots
        .iter()
        .take(n)
        .enumerate()
        .filter(|(_, s)| s.real.is_some_and(|r| r.breaching))
        .map(|(i, _)| i + 1)
        .max();
    all_real_breach && oldest_breaching_age.is_some_and(|age| age >= m)
}

fn reason_data(
    rule: &AlarmRule,
    now_ms: i64,
    recent: &[(i64, f64)],
    evaluated: &[Evaluated],
) -> String {
    ReasonData {
        query_ms: now_ms,
        unit: rule.unit.as_deref(),
        statistic: &rule.statistic_label,
        period_s: rule.period_s,
        recent,
        threshold: rule.threshold,
        evaluated,
    }
    .to_json()
}

/// StateReason and StateReasonData for an ALARM or OK decision.
fn word(
    rule: &AlarmRule,
    state: StateValue,
    slots: &[Slot],
    evaluated: &[(usize, Kind)],
    n: usize,
    m: usize,
    now_ms: i64,
) -> Evaluation {
    let to_alarm = state == StateValue::Alarm;
    let supports = |k: Kind| k.breaching() == to_alarm;
    let point = |i: usize| {
        let s = &slots[i];
        let real = s.real.map(|r| (r.value, r.sample_count));
        Evaluated {
            timestamp_ms: s.timestamp_ms,
            real,
        }
    };

    // Supporting real datapoints, newest first, for the bracketed list.
    let listed: Vec<(i64, f64)> = evaluated
        .iter()
        .filter(|(_, k)| matches!(k, Kind::Real { .. }) && supports(*k))
        .filter_map(|(i, _)| slots[*i].real.map(|r| (slots[*i].timestamp_ms, r.value)))
        .collect();
    let real_count = evaluated
        .iter()
        .filter(|(_, k)| matches!(k, Kind::Real { .. }))
        .count();
    let filled: Vec<Kind> = evaluated
        .iter()
        .map(|(_, k)| *k)
        .filter(|k| matches!(k, Kind::Filled { .. }))
        .collect();
    let fill_clause = filled.first().map(|k| {
        let label = if k.breaching() {
            "Breaching"
        } else {
            "NonBreaching"
        };
        format!(
            " and {} missing {} {} treated as [{label}]",
            filled.len(),
            if filled.len() == 1 {
                "datapoint"
            } else {
                "datapoints"
            },
            was_were(filled.len())
        )
    });

    let minimum = if to_alarm { m } else { n - m + 1 };
    let suffix = rule.datapoints_to_alarm.map(|_| {
        let transition = if to_alarm {
            "OK -> ALARM"
        } else {
            "ALARM -> OK"
        };
        format!(
            " (minimum {} for {transition} transition)",
            count(minimum, "datapoint")
        )
    });
    let comparison = format!(
        "{}{} the threshold ({})",
        if to_alarm { "" } else { "not " },
        rule.comparison.phrase(),
        crate::java_double(rule.threshold)
    );

    let mut reason = String::from("Threshold Crossed: ");
    if !listed.is_empty() {
        if rule.datapoints_to_alarm.is_some() {
            reason.push_str(&format!("{} out of the last {n} datapoints", listed.len()));
        } else {
            reason.push_str(&count(listed.len(), "datapoint"));
        }
        reason.push_str(&format!(
            " {} {} {comparison}",
            datapoint_list(&listed),
            was_were(listed.len())
        ));
    } else {
        // Guessed for real_count > 0; AWS's own form for real_count == 0.
        let received = match real_count {
            0 => "no datapoints were".to_string(),
            c => format!("{} {}", count(c, "datapoint"), was_were(c)),
        };
        reason.push_str(&format!("{received} received for {}", count(n, "period")));
    }
    if let Some(clause) = &fill_clause {
        reason.push_str(clause);
    }
    if let Some(suffix) = &suffix {
        reason.push_str(suffix);
    }
    reason.push('.');

    let mut recent: Vec<(i64, f64)> = evaluated
        .iter()
        .filter_map(|(i, k)| match k {
            Kind::Real { .. } => slots[*i].real.map(|r| (slots[*i].timestamp_ms, r.value)),
            Kind::Filled { .. } => None,
        })
        .collect();
    recent.reverse();
    let decisive: Vec<Evaluated> = evaluated
        .iter()
        .filter(|(_, k)| supports(*k))
        .take(minimum)
        .map(|(i, _)| point(*i))
        .collect();
    Evaluation {
        state,
        reason,
        reason_data: reason_data(rule, now_ms, &recent, &decisive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{evaluation_range, ComparisonOperator, Datapoint};

    const NOW: i64 = 1_796_652_210_500; // 2026-12-07T14:03:30.500Z

    fn rule(n: u32, m: Option<u32>, treat: TreatMissingData) -> AlarmRule {
        AlarmRule {
            period_s: 300,
            evaluation_periods: n,
            datapoints_to_alarm: m,
            threshold: 3.0,
            comparison: ComparisonOperator::GreaterThanThreshold,
            treat_missing_data: treat,
            statistic_label: "Average".into(),
            unit: None,
            evaluate_low_sample_count_percentile: None,
        }
    }

    /// Datapoints written as in the User Guide's tables: oldest first, most recent on the
    /// right; `0` not breaching, `X` breaching, `-` missing.
    fn points(r: &AlarmRule, pattern: &str) -> Vec<Datapoint> {
        let (_, end) = evaluation_range(r, NOW);
        let cells: Vec<&str> = pattern.split_whitespace().collect();
        let period_ms = i64::from(r.period_s) * 1000;
        cells
            .iter()
            .rev()
            .enumerate()
            .filter(|(_, c)| **c != "-")
            .map(|(age, c)| Datapoint {
                timestamp_ms: end - (age as i64 + 1) * period_ms,
                value: if *c == "X" { 5.0 } else { 1.0 },
                sample_count: Some(1.0),
            })
            .collect()
    }

    fn run(r: &AlarmRule, current: StateValue, pattern: &str) -> Evaluation {
        let dps = points(r, pattern);
        let (range_start_ms, range_end_ms) = evaluation_range(r, NOW);
        let w = Window {
            datapoints: &dps,
            range_start_ms,
            range_end_ms,
        };
        evaluate(r, current, &w, NOW)
    }

    /// `None` in a column = "Retain current state".
    type Row = (&'static str, [Option<StateValue>; 4]);

    fn check_table(n: u32, m: u32, rows: &[Row]) {
        use StateValue::*;
        let treatments = [
            TreatMissingData::Missing,
            TreatMissingData::Ignore,
            TreatMissingData::Breaching,
            TreatMissingData::NotBreaching,
        ];
        for (pattern, want) in rows {
            for (treat, want) in treatments.iter().zip(want) {
                for current in [Ok, Alarm, InsufficientData] {
                    let r = rule(n, Some(m), *treat);
                    let got = run(&r, current, pattern);
                    let want = want.unwrap_or(current);
                    assert_eq!(
                        got.state, want,
                        "{m} of {n}, {pattern:?}, {treat:?}, from {current}"
                    );
                    assert_eq!(got.reason.is_empty(), got.reason_data.is_empty());
                }
            }
        }
    }

    #[test]
    fn user_guide_table_3_of_3() {
        use StateValue::*;
        check_table(
            3,
            3,
            &[
                ("0 - X - X", [Some(Ok), Some(Ok), Some(Ok), Some(Ok)]),
                ("- - - - 0", [Some(Ok), Some(Ok), Some(Ok), Some(Ok)]),
                (
                    "- - - - -",
                    [Some(InsufficientData), None, Some(Alarm), Some(Ok)],
                ),
                (
                    "0 X X - X",
                    [Some(Alarm), Some(Alarm), Some(Alarm), Some(Alarm)],
                ),
                ("- - X - -", [Some(Alarm), None, Some(Alarm), Some(Ok)]),
            ],
        );
    }

    #[test]
    fn user_guide_table_2_of_3() {
        use StateValue::*;
        check_table(
            3,
            2,
            &[
                (
                    "0 - X - X",
                    [Some(Alarm), Some(Alarm), Some(Alarm), Some(Alarm)],
                ),
                (
                    "0 0 X 0 X",
                    [Some(Alarm), Some(Alarm), Some(Alarm), Some(Alarm)],
                ),
                ("0 - X - -", [Some(Ok), Some(Ok), Some(Alarm), Some(Ok)]),
                ("- - - - 0", [Some(Ok), Some(Ok), Some(Alarm), Some(Ok)]),
                ("- - - X -", [Some(Alarm), None, Some(Alarm), Some(Ok)]),
            ],
        );
    }

    #[test]
    fn premature_alarm_is_avoided_for_recent_breaches() {
        // User Guide: `- - - - X` and `- - - X -` do not alarm a 3-of-3 alarm at once.
        for pattern in ["- - - - X", "- - - X -"] {
            let r = rule(3, Some(3), TreatMissingData::Missing);
            assert_eq!(
                run(&r, StateValue::Ok, pattern).state,
                StateValue::Ok,
                "{pattern}"
            );
        }
    }

    #[test]
    fn m_out_of_n_without_missing_data() {
        use StateValue::*;
        fn check(n: u32, m: u32, pattern: &str, want: StateValue) {
            let r = rule(n, Some(m), TreatMissingData::Missing);
            assert_eq!(run(&r, Ok, pattern).state, want, "{m} of {n}: {pattern}");
        }
        check(1, 1, "0 0 X", Alarm);
        check(1, 1, "X X 0", Ok);
        check(5, 4, "0 0 X X 0 X X", Alarm);
        check(5, 4, "0 0 X 0 X 0 X", Ok);
        check(5, 1, "0 0 0 0 0 0 X", Alarm);
        check(5, 5, "X X X X X X 0", Ok);
        // Older real datapoints are used when recent ones are missing.
        check(2, 2, "X X - -", Alarm);
    }

    fn eval_at(r: &AlarmRule, dps: &[Datapoint], current: StateValue, now: i64) -> Evaluation {
        let (range_start_ms, range_end_ms) = evaluation_range(r, now);
        evaluate(
            r,
            current,
            &Window {
                datapoints: dps,
                range_start_ms,
                range_end_ms,
            },
            now,
        )
    }

    #[test]
    fn wording_matches_aws() {
        use StateValue::*;
        // 2026-12-07T14:04:05.123Z; the last closed minute is 14:03.
        let now = 1_796_652_245_123;
        let t = |hh_mm: (i64, i64)| 1_796_601_600_000 + (hh_mm.0 * 60 + hh_mm.1) * 60_000;
        let base = AlarmRule {
            period_s: 60,
            evaluation_periods: 1,
            datapoints_to_alarm: None,
            threshold: 80.0,
            comparison: ComparisonOperator::GreaterThanThreshold,
            treat_missing_data: TreatMissingData::Missing,
            statistic_label: "Average".into(),
            unit: None,
            evaluate_low_sample_count_percentile: None,
        };
        let dp = |hh_mm, value| Datapoint {
            timestamp_ms: t(hh_mm),
            value,
            sample_count: Some(3.0),
        };
        struct Case {
            rule: AlarmRule,
            dps: Vec<Datapoint>,
            state: StateValue,
            reason: &'static str,
            data: &'static str,
        }
        let with = |f: &dyn Fn(&mut AlarmRule)| {
            let mut r = base.clone();
            f(&mut r);
            r
        };
        let cases = [
            Case {
                rule: base.clone(),
                dps: vec![dp((14, 3), 95.5)],
                state: Alarm,
                reason: "Threshold Crossed: 1 datapoint [95.5 (07/12/26 14:03:00)] was greater than the threshold (80.0).",
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","startDate":"2026-12-07T14:03:00.000+0000","statistic":"Average","period":60,"recentDatapoints":[95.5],"threshold":80.0,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:03:00.000+0000","sampleCount":3.0,"value":95.5}]}"#,
            },
            Case {
                rule: with(&|r| r.treat_missing_data = TreatMissingData::Breaching),
                dps: vec![],
                state: Alarm,
                reason: "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [Breaching].",
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","statistic":"Average","period":60,"recentDatapoints":[],"threshold":80.0,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:03:00.000+0000"}]}"#,
            },
            Case {
                rule: with(&|r| {
                    r.evaluation_periods = 2;
                    r.treat_missing_data = TreatMissingData::NotBreaching;
                }),
                dps: vec![],
                state: Ok,
                reason: "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were treated as [NonBreaching].",
                // One entry: "minimum 1 datapoint" for OK (N - M + 1). Guessed.
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","statistic":"Average","period":60,"recentDatapoints":[],"threshold":80.0,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:03:00.000+0000"}]}"#,
            },
            Case {
                rule: with(&|r| r.evaluation_periods = 5),
                dps: vec![],
                state: InsufficientData,
                reason: "Insufficient Data: 5 datapoints were unknown.",
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","statistic":"Average","period":60,"recentDatapoints":[],"threshold":80.0,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:03:00.000+0000"},{"timestamp":"2026-12-07T14:02:00.000+0000"},{"timestamp":"2026-12-07T14:01:00.000+0000"},{"timestamp":"2026-12-07T14:00:00.000+0000"},{"timestamp":"2026-12-07T13:59:00.000+0000"}]}"#,
            },
            Case {
                rule: base.clone(),
                dps: vec![],
                state: InsufficientData,
                reason: "Insufficient Data: 1 datapoint was unknown.",
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","statistic":"Average","period":60,"recentDatapoints":[],"threshold":80.0,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:03:00.000+0000"}]}"#,
            },
            // Legacy N = 2: all listed, newest first; recentDatapoints oldest first; one
            // evaluated datapoint suffices for OK (as in AWS's 2-of-2 ALARM -> OK example).
            Case {
                rule: with(&|r| {
                    r.evaluation_periods = 2;
                    r.threshold = 42.0;
                    r.statistic_label = "Sum".into();
                }),
                dps: vec![dp((14, 2), 0.0), dp((14, 3), 1.0)],
                state: Ok,
                reason: "Threshold Crossed: 2 datapoints [1.0 (07/12/26 14:03:00), 0.0 (07/12/26 14:02:00)] were not greater than the threshold (42.0).",
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","startDate":"2026-12-07T14:02:00.000+0000","statistic":"Sum","period":60,"recentDatapoints":[0.0,1.0],"threshold":42.0,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:03:00.000+0000","sampleCount":3.0,"value":1.0}]}"#,
            },
            // Legacy N = 2 with one period filled as breaching, yet OK.
            Case {
                rule: with(&|r| {
                    r.evaluation_periods = 2;
                    r.threshold = 1.0;
                    r.comparison = ComparisonOperator::LessThanThreshold;
                    r.treat_missing_data = TreatMissingData::Breaching;
                }),
                dps: vec![dp((14, 3), 1.0)],
                state: Ok,
                reason: "Threshold Crossed: 1 datapoint [1.0 (07/12/26 14:03:00)] was not less than the threshold (1.0) and 1 missing datapoint was treated as [Breaching].",
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","startDate":"2026-12-07T14:03:00.000+0000","statistic":"Average","period":60,"recentDatapoints":[1.0],"threshold":1.0,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:03:00.000+0000","sampleCount":3.0,"value":1.0}]}"#,
            },
            // M out of N: 3 of 3 to ALARM.
            Case {
                rule: with(&|r| {
                    r.evaluation_periods = 3;
                    r.datapoints_to_alarm = Some(3);
                    r.threshold = 0.005;
                }),
                dps: vec![dp((14, 1), 0.01), dp((14, 2), 0.01), dp((14, 3), 0.01)],
                state: Alarm,
                reason: "Threshold Crossed: 3 out of the last 3 datapoints [0.01 (07/12/26 14:03:00), 0.01 (07/12/26 14:02:00), 0.01 (07/12/26 14:01:00)] were greater than the threshold (0.005) (minimum 3 datapoints for OK -> ALARM transition).",
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","startDate":"2026-12-07T14:01:00.000+0000","statistic":"Average","period":60,"recentDatapoints":[0.01,0.01,0.01],"threshold":0.005,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:03:00.000+0000","sampleCount":3.0,"value":0.01},{"timestamp":"2026-12-07T14:02:00.000+0000","sampleCount":3.0,"value":0.01},{"timestamp":"2026-12-07T14:01:00.000+0000","sampleCount":3.0,"value":0.01}]}"#,
            },
            // M out of N: 2 of the last 3 back to OK; only the supporting ones are listed.
            Case {
                rule: with(&|r| {
                    r.evaluation_periods = 3;
                    r.datapoints_to_alarm = Some(3);
                    r.threshold = 0.005;
                }),
                dps: vec![dp((14, 1), 0.01), dp((14, 2), 0.002), dp((14, 3), 0.002)],
                state: Ok,
                reason: "Threshold Crossed: 2 out of the last 3 datapoints [0.002 (07/12/26 14:03:00), 0.002 (07/12/26 14:02:00)] were not greater than the threshold (0.005) (minimum 1 datapoint for ALARM -> OK transition).",
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","startDate":"2026-12-07T14:01:00.000+0000","statistic":"Average","period":60,"recentDatapoints":[0.01,0.002,0.002],"threshold":0.005,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:03:00.000+0000","sampleCount":3.0,"value":0.002}]}"#,
            },
            // M out of N with missing data filled as not breaching.
            Case {
                rule: with(&|r| {
                    r.evaluation_periods = 3;
                    r.datapoints_to_alarm = Some(1);
                    r.threshold = 1.0;
                    r.comparison = ComparisonOperator::GreaterThanOrEqualToThreshold;
                    r.treat_missing_data = TreatMissingData::NotBreaching;
                    r.statistic_label = "Sum".into();
                    r.unit = Some("Count".into());
                }),
                dps: vec![dp((14, 2), 613.0)],
                state: Alarm,
                reason: "Threshold Crossed: 1 out of the last 3 datapoints [613.0 (07/12/26 14:02:00)] was greater than or equal to the threshold (1.0) and 2 missing datapoints were treated as [NonBreaching] (minimum 1 datapoint for OK -> ALARM transition).",
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","startDate":"2026-12-07T14:02:00.000+0000","unit":"Count","statistic":"Sum","period":60,"recentDatapoints":[613.0],"threshold":1.0,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:02:00.000+0000","sampleCount":3.0,"value":613.0}]}"#,
            },
            // Metric math: no statistic, no sampleCount.
            Case {
                rule: with(&|r| r.statistic_label = String::new()),
                dps: vec![dp((14, 3), 1.0E8)],
                state: Alarm,
                reason: "Threshold Crossed: 1 datapoint [1.0E8 (07/12/26 14:03:00)] was greater than the threshold (80.0).",
                data: r#"{"version":"1.0","queryDate":"2026-12-07T14:04:05.123+0000","startDate":"2026-12-07T14:03:00.000+0000","period":60,"recentDatapoints":[1.0E8],"threshold":80.0,"evaluatedDatapoints":[{"timestamp":"2026-12-07T14:03:00.000+0000","value":1.0E8}]}"#,
            },
        ];
        for (i, c) in cases.iter().enumerate() {
            let got = eval_at(&c.rule, &c.dps, InsufficientData, now);
            assert_eq!(got.state, c.state, "case {i}");
            assert_eq!(got.reason, c.reason, "case {i}");
            assert_eq!(got.reason_data, c.data, "case {i}");
            let parsed: serde_json::Value = serde_json::from_str(&got.reason_data).unwrap();
            assert!(parsed.is_object(), "case {i}");
        }
    }

    #[test]
    fn wording_with_missing_data_left_missing() {
        fn check(pattern: &str, n: u32, m: u32, state: StateValue, reason: &str) {
            let r = rule(n, Some(m), TreatMissingData::Missing);
            let got = run(&r, StateValue::Ok, pattern);
            assert_eq!(got.state, state, "{pattern}");
            // Times are period starts: the range ends at 14:03 (300 s periods slide by minute).
            assert_eq!(got.reason, reason, "{pattern}");
        }
        // Premature alarm: worded like AWS's "1 out of the last 3 datapoints [0.0] was less
        // than the threshold (minimum 3 datapoints for OK -> ALARM transition)".
        check(
            "- - X - -",
            3,
            3,
            StateValue::Alarm,
            "Threshold Crossed: 1 out of the last 3 datapoints [5.0 (07/12/26 13:48:00)] was greater than the threshold (3.0) (minimum 3 datapoints for OK -> ALARM transition).",
        );
        // Nothing supports OK but too little breaches: guessed wording.
        check(
            "- - - - X",
            3,
            3,
            StateValue::Ok,
            "Threshold Crossed: 1 datapoint was received for 3 periods (minimum 1 datapoint for ALARM -> OK transition).",
        );
    }

    #[test]
    fn ignore_keeps_state_without_wording() {
        for current in [
            StateValue::Ok,
            StateValue::Alarm,
            StateValue::InsufficientData,
        ] {
            let r = rule(3, None, TreatMissingData::Ignore);
            let got = run(&r, current, "- - - - -");
            assert_eq!(
                got,
                Evaluation {
                    state: current,
                    reason: String::new(),
                    reason_data: String::new()
                }
            );
        }
    }

    #[test]
    fn low_sample_percentiles() {
        use StateValue::*;
        // p99 needs 1000 samples.
        fn check(
            policy: Option<LowSampleCount>,
            samples: f64,
            current: StateValue,
            want: StateValue,
        ) {
            let mut r = rule(1, None, TreatMissingData::Missing);
            r.statistic_label = "p99".into();
            r.evaluate_low_sample_count_percentile = policy;
            let (range_start_ms, range_end_ms) = evaluation_range(&r, NOW);
            let dps = [Datapoint {
                timestamp_ms: range_end_ms - 300_000,
                value: 5.0,
                sample_count: Some(samples),
            }];
            let got = evaluate(
                &r,
                current,
                &Window {
                    datapoints: &dps,
                    range_start_ms,
                    range_end_ms,
                },
                NOW,
            );
            assert_eq!(
                got.state, want,
                "{policy:?} with {samples} samples from {current}"
            );
        }
        check(Some(LowSampleCount::Ignore), 10.0, Ok, Ok);
        check(
            Some(LowSampleCount::Ignore),
            10.0,
            InsufficientData,
            InsufficientData,
        );
        check(Some(LowSampleCount::Ignore), 1000.0, Ok, Alarm);
        check(Some(LowSampleCount::Evaluate), 10.0, Ok, Alarm);
        check(None, 10.0, Ok, Alarm);
    }

    #[test]
    fn high_resolution_periods() {
        use StateValue::*;
        for period_s in [10, 20, 30] {
            let mut r = rule(3, Some(2), TreatMissingData::Missing);
            r.period_s = period_s;
            let (start, end) = evaluation_range(&r, NOW);
            assert_eq!(end % 10_000, 0);
            assert_eq!(end - start, 5 * i64::from(period_s) * 1000);
            assert_eq!(run(&r, Ok, "0 0 X 0 X").state, Alarm, "period {period_s}");
            assert_eq!(run(&r, Alarm, "X X 0 X 0").state, Ok, "period {period_s}");
            let got = run(&r, Ok, "0 0 X 0 X");
            assert!(
                got.reason
                    .starts_with("Threshold Crossed: 2 out of the last 3 datapoints ["),
                "{}",
                got.reason
            );
            assert!(got.reason_data.contains(&format!("\"period\":{period_s},")));
        }
    }

    #[test]
    fn datapoints_outside_the_range_are_ignored() {
        let r = rule(1, None, TreatMissingData::Missing);
        let (start, end) = evaluation_range(&r, NOW);
        let dps = [
            Datapoint {
                timestamp_ms: end,
                value: 5.0,
                sample_count: None,
            },
            Datapoint {
                timestamp_ms: start - 1,
                value: 5.0,
                sample_count: None,
            },
        ];
        let got = evaluate(
            &r,
            StateValue::Ok,
            &Window {
                datapoints: &dps,
                range_start_ms: start,
                range_end_ms: end,
            },
            NOW,
        );
        assert_eq!(got.state, StateValue::InsufficientData);
    }
}
