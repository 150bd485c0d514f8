//! Statistics of an aggregate, by CloudWatch's names: the five standard statistics and
//! percentiles (`p99`, `p99.9`). Pure.

use metric_store::Aggregate;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Statistic {
    SampleCount,
    Average,
    Sum,
    Minimum,
    Maximum,
    /// `pNN`: the percentile, 0–100.
    Percentile(f64),
}

impl Statistic {
    /// A standard statistic's name (`Statistics`, `Statistic`).
    pub fn standard(name: &str) -> Option<Statistic> {
        Some(match name {
            "SampleCount" => Statistic::SampleCount,
            "Average" => Statistic::Average,
            "Sum" => Statistic::Sum,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            _ => return None,
        })
    }

    /// An extended statistic (`ExtendedStatistics`): `p` then a number from 0 to 100 with at
    /// most two decimal places... AWS allows up to ten; Berth takes what parses in range.
    /// Trimmed and winsorized statistics (`TM`, `WM`, `TC`, `TS`, `PR`, `IQM`) are not
    /// supported: `None` for them too, so callers refuse them.
    pub fn extended(name: &str) -> Option<Statistic> {
        let number = name.strip_prefix('p')?;
        let valid = !number.is_empty()
            && number
                .bytes()
                .all(|byte| byte.is_ascii_digit() || byte == b'.')
            && number.split('.').count() <= 2
            && !number.starts_with('.')
            && !number.ends_with('.');
        let value: f64 = number.parse().ok().filter(|_| valid)?;
        (0.0..=100.0)
            .contains(&value)
            .then_some(Statistic::Percentile(value))
    }

    /// `Statistic` of a MetricStat or an alarm: a standard name or an extended one.
    pub fn any(name: &str) -> Option<Statistic> {
        Statistic::standard(name).or_else(|| Statistic::extended(name))
    }

    /// Its value in `aggregate`; `None` for a percentile of data published as statistic
    /// sets (AWS has no value either).
    pub fn of(self, aggregate: &Aggregate) -> Option<f64> {
        let stats = &aggregate.stats;
        match self {
            Statistic::SampleCount => Some(stats.sample_count),
            Statistic::Average => Some(stats.sum / stats.sample_count),
            Statistic::Sum => Some(stats.sum),
            Statistic::Minimum => Some(stats.minimum),
            Statistic::Maximum => Some(stats.maximum),
            Statistic::Percentile(p) => aggregate.distribution.as_ref()?.percentile(p),
        }
    }
}

/// Several units' aggregates of one period as one (a read without `Unit` over a metric
/// published with several units; CloudWatch answers with one datapoint per period).
pub(crate) fn merge_units(aggregates: Vec<Aggregate>) -> Vec<Aggregate> {
    fold_periods(aggregates, |start_ms| start_ms)
}

/// Aggregates in time order folded into the periods `period_of` gives their starts: one
/// aggregate per period, starting at the period's start.
pub(crate) fn fold_periods(
    aggregates: Vec<Aggregate>,
    period_of: impl Fn(i64) -> i64,
) -> Vec<Aggregate> {
    let mut merged: Vec<Aggregate> = Vec::with_capacity(aggregates.len());
    for aggregate in aggregates {
        let start_ms = period_of(aggregate.start_ms);
        match merged.last_mut() {
            Some(last) if last.start_ms == start_ms => {
                last.stats.merge(&aggregate.stats);
                last.distribution = match (last.distribution.take(), aggregate.distribution) {
                    (Some(mut mine), Some(theirs)) => {
                        mine.merge(&theirs);
                        Some(mine)
                    }
                    _ => None,
                };
            }
            _ => merged.push(Aggregate {
                start_ms,
                ..aggregate
            }),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use metric_store::{Distribution, StatisticSet};

    fn aggregate(values: &[f64]) -> Aggregate {
        let pairs: Vec<(f64, f64)> = values.iter().map(|value| (*value, 1.0)).collect();
        Aggregate {
            start_ms: 0,
            unit: "None".into(),
            stats: StatisticSet {
                sample_count: values.len() as f64,
                sum: values.iter().sum(),
                minimum: values.iter().copied().fold(f64::INFINITY, f64::min),
                maximum: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            },
            distribution: Some(Distribution::from_values(&pairs)),
        }
    }

    #[test]
    fn names_parse_as_cloudwatch_spells_them() {
        let cases = [
            ("Average", Some(Statistic::Average)),
            ("SampleCount", Some(Statistic::SampleCount)),
            ("p99", Some(Statistic::Percentile(99.0))),
            ("p99.9", Some(Statistic::Percentile(99.9))),
            ("p100", Some(Statistic::Percentile(100.0))),
            ("p0", Some(Statistic::Percentile(0.0))),
            ("p101", None),
            ("p", None),
            ("p.5", None),
            ("p9.", None),
            ("P99", None),
            ("TM(10%:90%)", None),
            ("average", None),
        ];
        for (name, expected) in cases {
            assert_eq!(Statistic::any(name), expected, "{name}");
        }
    }

    #[test]
    fn values_come_from_the_aggregate() {
        let aggregate = aggregate(&(1..=100).map(f64::from).collect::<Vec<_>>());
        let check = |statistic: Statistic, expected: f64, tolerance: f64| {
            let value = statistic.of(&aggregate).unwrap();
            assert!(
                (value - expected).abs() <= tolerance,
                "{statistic:?}: {value}"
            );
        };
        check(Statistic::SampleCount, 100.0, 0.0);
        check(Statistic::Sum, 5050.0, 0.0);
        check(Statistic::Average, 50.5, 0.0);
        check(Statistic::Minimum, 1.0, 0.0);
        check(Statistic::Maximum, 100.0, 0.0);
        check(Statistic::Percentile(90.0), 90.0, 1.0);
        let mut no_distribution = aggregate.clone();
        no_distribution.distribution = None;
        assert_eq!(Statistic::Percentile(50.0).of(&no_distribution), None);
    }
}
