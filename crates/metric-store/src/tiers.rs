//! The tiers, the bucket every sample updates in each, and the read rule,
//! shared by every backend (pure).

use std::collections::BTreeMap;

use crate::{Aggregate, Distribution, MetricStoreError, Sample, StatisticSet};

/// One tier of aggregates: buckets of `resolution_s`, aligned to multiples
/// of it since the epoch, kept while their start is at most `retention_s`
/// before `now` (a bucket is retained while `start_ms >= now_ms −
/// retention`; guessed: AWS does not say whether a period's start or end
/// counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    pub resolution_s: u32,
    pub retention_s: i64,
}

impl Tier {
    pub fn resolution_ms(self) -> i64 {
        i64::from(self.resolution_s) * 1000
    }

    /// The oldest bucket start still retained at `now_ms`.
    pub fn oldest_retained_start_ms(self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(self.retention_s * 1000)
    }
}

/// CloudWatch's tiers, finest first.
pub const TIERS: [Tier; 4] = [
    Tier {
        resolution_s: 1,
        retention_s: 3 * 3600,
    },
    Tier {
        resolution_s: 60,
        retention_s: 15 * 86_400,
    },
    Tier {
        resolution_s: 300,
        retention_s: 63 * 86_400,
    },
    Tier {
        resolution_s: 3600,
        retention_s: 455 * 86_400,
    },
];

/// The tiers (indexes into [`TIERS`]) a series of this storage resolution
/// keeps.
pub(crate) fn tiers_of(storage_resolution_s: u32) -> std::ops::Range<usize> {
    if storage_resolution_s == 1 {
        0..TIERS.len()
    } else {
        1..TIERS.len()
    }
}

/// The start of the period of `period_ms` holding `timestamp_ms`.
pub(crate) fn align_down(timestamp_ms: i64, period_ms: i64) -> i64 {
    timestamp_ms.div_euclid(period_ms) * period_ms
}

pub(crate) fn align_up(timestamp_ms: i64, period_ms: i64) -> i64 {
    let down = align_down(timestamp_ms, period_ms);
    if down == timestamp_ms {
        down
    } else {
        down.saturating_add(period_ms)
    }
}

/// One bucket's content.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bucket {
    pub stats: StatisticSet,
    pub distribution: Option<Distribution>,
}

impl Bucket {
    /// What one sample contributes (see [`Sample::values`] for when a
    /// statistic set still gives percentiles).
    pub fn of_sample(sample: &Sample) -> Bucket {
        let stats = sample.stats;
        let distribution = if !sample.values.is_empty() {
            Some(Distribution::from_values(&sample.values))
        } else if stats.sample_count == 1.0 || stats.minimum == stats.maximum {
            Some(Distribution::from_values(&[(
                stats.minimum,
                stats.sample_count,
            )]))
        } else {
            None
        };
        Bucket {
            stats,
            distribution,
        }
    }

    pub fn merge(&mut self, other: &Bucket) {
        self.stats.merge(&other.stats);
        self.distribution = match (self.distribution.take(), &other.distribution) {
            (Some(mut mine), Some(theirs)) => {
                mine.merge(theirs);
                Some(mine)
            }
            _ => None,
        };
    }
}

/// Part of a read: the buckets of tier `tier_index` starting in
/// `[start_ms, end_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub tier_index: usize,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Checks a read's arguments.
pub(crate) fn check_read(
    start_ms: i64,
    end_ms: i64,
    period_s: u32,
) -> Result<(), MetricStoreError> {
    if period_s == 0 {
        return Err(MetricStoreError::InvalidRead(
            "period must be positive".into(),
        ));
    }
    if start_ms > end_ms {
        return Err(MetricStoreError::InvalidRead(
            "start must not be after end".into(),
        ));
    }
    Ok(())
}

/// Which tier each part of `[start_ms, end_ms)` is read from, for a series
/// of `storage_resolution_s` (the rule is on [`crate::MetricStore::read`]).
pub(crate) fn plan_read(
    storage_resolution_s: u32,
    start_ms: i64,
    end_ms: i64,
    period_s: u32,
    now_ms: i64,
) -> Vec<Segment> {
    let period_ms = i64::from(period_s) * 1000;
    let tiers = tiers_of(storage_resolution_s);
    // Whole periods starting in [start_ms, end_ms).
    let first_period_ms = align_up(start_ms, period_ms);
    let end_period_ms = align_up(end_ms, period_ms);
    // The tier choice changes only at the first period starting at or after
    // a tier's retention cutoff.
    let mut boundaries = vec![first_period_ms, end_period_ms];
    for tier in &TIERS[tiers.clone()] {
        let boundary = align_up(tier.oldest_retained_start_ms(now_ms), period_ms);
        if boundary > first_period_ms && boundary < end_period_ms {
            boundaries.push(boundary);
        }
    }
    boundaries.sort_unstable();
    boundaries.dedup();
    let mut segments: Vec<Segment> = Vec::new();
    for pair in boundaries.windows(2) {
        let (from_ms, to_ms) = (pair[0], pair[1]);
        let retained: Vec<usize> = tiers
            .clone()
            .filter(|&index| from_ms >= TIERS[index].oldest_retained_start_ms(now_ms))
            .collect();
        let dividing = retained
            .iter()
            .copied()
            .filter(|&index| period_s.is_multiple_of(TIERS[index].resolution_s))
            .max_by_key(|&index| TIERS[index].resolution_s);
        let Some(tier_index) = dividing.or_else(|| retained.first().copied()) else {
            continue;
        };
        let segment = Segment {
            tier_index,
            start_ms: from_ms,
            end_ms: to_ms,
        };
        match segments.last_mut() {
            Some(last) if last.tier_index == tier_index && last.end_ms == segment.start_ms => {
                last.end_ms = segment.end_ms;
            }
            _ => segments.push(segment),
        }
    }
    segments.retain(|segment| segment.start_ms < segment.end_ms);
    segments
}

/// Buckets merged into periods, per unit.
#[derive(Default)]
pub(crate) struct Periods {
    period_ms: i64,
    /// Units in the order they were first added; periods key on the index.
    units: Vec<String>,
    by_period: BTreeMap<(i64, usize), Bucket>,
}

impl Periods {
    pub fn new(period_s: u32) -> Periods {
        Periods {
            period_ms: i64::from(period_s) * 1000,
            units: Vec::new(),
            by_period: BTreeMap::new(),
        }
    }

    /// Adds the bucket starting at `bucket_start_ms` to its period.
    pub fn add(&mut self, unit: &str, bucket_start_ms: i64, bucket: Bucket) {
        let start_ms = align_down(bucket_start_ms, self.period_ms);
        let unit_index = match self.units.iter().position(|u| u == unit) {
            Some(index) => index,
            None => {
                self.units.push(unit.to_string());
                self.units.len() - 1
            }
        };
        match self.by_period.entry((start_ms, unit_index)) {
            std::collections::btree_map::Entry::Occupied(mut existing) => {
                existing.get_mut().merge(&bucket)
            }
            std::collections::btree_map::Entry::Vacant(vacant) => {
                vacant.insert(bucket);
            }
        }
    }

    /// Ascending by start, then unit name.
    pub fn finish(self) -> Vec<Aggregate> {
        let units = self.units;
        let mut aggregates: Vec<Aggregate> = self
            .by_period
            .into_iter()
            .map(|((start_ms, unit_index), bucket)| Aggregate {
                start_ms,
                unit: units[unit_index].clone(),
                stats: bucket.stats,
                distribution: bucket.distribution,
            })
            .collect();
        if units.len() > 1 {
            aggregates.sort_by(|a, b| (a.start_ms, &a.unit).cmp(&(b.start_ms, &b.unit)));
        }
        aggregates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 86_400_000;

    /// `(tier resolution, start, end)` per segment.
    fn check(
        storage_resolution_s: u32,
        start_ms: i64,
        end_ms: i64,
        period_s: u32,
        now_ms: i64,
        expected: &[(u32, i64, i64)],
    ) {
        let got: Vec<(u32, i64, i64)> =
            plan_read(storage_resolution_s, start_ms, end_ms, period_s, now_ms)
                .into_iter()
                .map(|s| (TIERS[s.tier_index].resolution_s, s.start_ms, s.end_ms))
                .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn plans_pick_the_coarsest_dividing_tier_then_the_finest_retained() {
        let now = 1000 * DAY_MS;
        // A recent hour at 60 s: the 60 s tier (divides, retained).
        check(60, now - HOUR_MS, now, 60, now, &[(60, now - HOUR_MS, now)]);
        // High resolution, 10 s periods in the last 3 h: the 1 s tier.
        check(1, now - HOUR_MS, now, 10, now, &[(1, now - HOUR_MS, now)]);
        // Standard resolution at 10 s: no 1 s tier; the 60 s buckets.
        check(60, now - HOUR_MS, now, 10, now, &[(60, now - HOUR_MS, now)]);
        // 3600 s periods always come from the 3600 s tier.
        check(
            1,
            now - 7 * DAY_MS,
            now,
            3600,
            now,
            &[(3600, now - 7 * DAY_MS, now)],
        );
        // 60 s periods over 20 days: the 60 s tier for the last 15 days,
        // before that 300 s buckets (nothing divides 60 there).
        check(
            60,
            now - 20 * DAY_MS,
            now,
            60,
            now,
            &[
                (300, now - 20 * DAY_MS, now - 15 * DAY_MS),
                (60, now - 15 * DAY_MS, now),
            ],
        );
        // 10 s periods over 4 h of high-resolution data: the last 3 h from
        // the 1 s tier, the hour before from the 60 s tier.
        check(
            1,
            now - 4 * HOUR_MS,
            now,
            10,
            now,
            &[
                (60, now - 4 * HOUR_MS, now - 3 * HOUR_MS),
                (1, now - 3 * HOUR_MS, now),
            ],
        );
        // Older than 455 days: nothing.
        check(60, now - 500 * DAY_MS, now - 460 * DAY_MS, 60, now, &[]);
        // An unaligned cutoff moves to the next period start: the period
        // straddling the 3 h cutoff is read from the 60 s tier whole.
        let now_unaligned = now + 25_000;
        check(
            1,
            now - 4 * HOUR_MS,
            now,
            30,
            now_unaligned,
            &[
                (60, now - 4 * HOUR_MS, now - 3 * HOUR_MS + 30_000),
                (1, now - 3 * HOUR_MS + 30_000, now),
            ],
        );
        // Whole periods starting in range: an unaligned start skips to the
        // next period, an unaligned end takes its period whole.
        check(
            60,
            now - HOUR_MS + 1,
            now - 1,
            300,
            now,
            &[(300, now - HOUR_MS + 300_000, now)],
        );
        // An empty range.
        check(60, now, now, 60, now, &[]);
    }

    #[test]
    fn periods_merge_buckets_per_unit() {
        let bucket = |value: f64| Bucket {
            stats: StatisticSet {
                sample_count: 1.0,
                sum: value,
                minimum: value,
                maximum: value,
            },
            distribution: Some(Distribution::from_values(&[(value, 1.0)])),
        };
        let mut periods = Periods::new(300);
        periods.add("Count", 0, bucket(1.0));
        periods.add("Count", 240_000, bucket(3.0));
        periods.add("Bytes", 60_000, bucket(5.0));
        periods.add("Count", 300_000, bucket(7.0));
        let got: Vec<(i64, String, f64, f64)> = periods
            .finish()
            .into_iter()
            .map(|a| (a.start_ms, a.unit, a.stats.sample_count, a.stats.sum))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "Bytes".to_string(), 1.0, 5.0),
                (0, "Count".to_string(), 2.0, 4.0),
                (300_000, "Count".to_string(), 1.0, 7.0),
            ]
        );
    }
}
