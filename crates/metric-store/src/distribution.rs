//! [`Distribution`]: a mergeable approximate distribution for percentiles,
//! DDSketch-style (Masson, Rim, Lee, "DDSketch: A Fast and Fully-Mergeable
//! Quantile Sketch with Relative-Error Guarantees", VLDB 2019) with
//! weighted (f64) counts, because PutMetricData's `Counts` are doubles.
//!
//! A non-zero value `v` falls in bucket `i = ceil(ln|v| / ln γ)` of its
//! sign, γ = (1 + α) / (1 − α), α = [`RELATIVE_ACCURACY`]; the bucket covers
//! `(γ^(i−1), γ^i]` and is represented by `2γ^i / (γ + 1)`, within α of
//! every value in it. Zero has its own count. Buckets are never collapsed:
//! CloudWatch's value range (about 1e-108..1e108) needs at most ~25,000
//! buckets per sign, and real data far fewer.
//!
//! **Error bound.** [`Distribution::percentile`] returns a value within
//! relative error α (1%) of the value of rank `p/100 × total count` (the
//! smallest stored value whose cumulative count reaches it).
//! [`Distribution::trimmed`] counts are exact to within the interpolation of
//! the two buckets at its bounds (values inside one bucket are assumed spread
//! evenly over its count); every value it sums is represented within 1%, so
//! the sum of the values it keeps is within 1% of their true sum (when they
//! all have the same sign).

use crate::MetricStoreError;

/// α: the relative error of every value a [`Distribution`] reports.
pub const RELATIVE_ACCURACY: f64 = 0.01;

const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);

/// Encoding version byte.
const FORMAT_V1: u8 = 1;

/// See the module documentation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Distribution {
    /// Buckets of |v| for negative values, by index ascending.
    negative: Vec<(i32, f64)>,
    zero_count: f64,
    /// Buckets of positive values, by index ascending.
    positive: Vec<(i32, f64)>,
}

/// What [`Distribution::trimmed`] keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Trimmed {
    pub count: f64,
    pub sum: f64,
}

fn bucket_index(magnitude: f64) -> i32 {
    // |v| is in 8.5e-109..1.2e108 for CloudWatch; any finite f64 fits i32.
    (magnitude.ln() / GAMMA.ln()).ceil() as i32
}

fn representative(index: i32) -> f64 {
    2.0 * GAMMA.powi(index) / (GAMMA + 1.0)
}

/// Adds `(index, count)` pairs (any order) into a sorted, deduplicated list.
fn normalise(mut buckets: Vec<(i32, f64)>) -> Vec<(i32, f64)> {
    buckets.sort_by_key(|(index, _)| *index);
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(buckets.len());
    for (index, count) in buckets {
        match out.last_mut() {
            Some((last, total)) if *last == index => *total += count,
            _ => out.push((index, count)),
        }
    }
    out
}

fn merge_sorted(a: &[(i32, f64)], b: &[(i32, f64)]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1 + b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

impl Distribution {
    /// Values with their counts (zero counts are ignored).
    pub fn from_values(values: &[(f64, f64)]) -> Distribution {
        let mut negative = Vec::new();
        let mut positive = Vec::new();
        let mut zero_count = 0.0;
        for &(value, count) in values {
            if count <= 0.0 {
                continue;
            }
            if value == 0.0 {
                zero_count += count;
            } else if value < 0.0 {
                negative.push((bucket_index(-value), count));
            } else {
                positive.push((bucket_index(value), count));
            }
        }
        Distribution {
            negative: normalise(negative),
            zero_count,
            positive: normalise(positive),
        }
    }

    /// Adds `other`'s values.
    pub fn merge(&mut self, other: &Distribution) {
        self.negative = merge_sorted(&self.negative, &other.negative);
        self.positive = merge_sorted(&self.positive, &other.positive);
        self.zero_count += other.zero_count;
    }

    /// The sum of the counts.
    pub fn total_count(&self) -> f64 {
        self.negative.iter().map(|(_, c)| c).sum::<f64>()
            + self.zero_count
            + self.positive.iter().map(|(_, c)| c).sum::<f64>()
    }

    /// Every bucket as (representative value, count), ascending by value.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let negative = self
            .negative
            .iter()
            .rev()
            .map(|&(index, count)| (-representative(index), count));
        let zero = (self.zero_count > 0.0).then_some((0.0, self.zero_count));
        let positive = self
            .positive
            .iter()
            .map(|&(index, count)| (representative(index), count));
        negative.chain(zero).chain(positive)
    }

    /// The value at percentile `p` (0..=100): the bucket holding the value of
    /// rank `p/100 × total count`; `None` when empty or `p` is out of range.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if !(0.0..=100.0).contains(&p) {
            return None;
        }
        let total = self.total_count();
        if total <= 0.0 {
            return None;
        }
        let rank = p / 100.0 * total;
        let mut cumulative = 0.0;
        let mut last = None;
        for (value, count) in self.buckets() {
            cumulative += count;
            last = Some(value);
            if cumulative >= rank && cumulative > 0.0 {
                return Some(value);
            }
        }
        // Rounding in the cumulative sum: the largest value.
        last
    }

    /// Count and sum of the values ranked between percentiles `lower_p` and
    /// `upper_p` (0 ≤ lower ≤ upper ≤ 100), e.g. TM(10%:90%). A bucket that
    /// straddles a bound contributes the fraction of its count inside.
    pub fn trimmed(&self, lower_p: f64, upper_p: f64) -> Trimmed {
        let total = self.total_count();
        if total <= 0.0
            || !(0.0..=100.0).contains(&lower_p)
            || !(lower_p..=100.0).contains(&upper_p)
        {
            return Trimmed::default();
        }
        let (low_rank, high_rank) = (lower_p / 100.0 * total, upper_p / 100.0 * total);
        let mut before = 0.0;
        let mut kept = Trimmed::default();
        for (value, count) in self.buckets() {
            let after = before + count;
            let inside = (after.min(high_rank) - before.max(low_rank)).max(0.0);
            kept.count += inside;
            kept.sum += inside * value;
            before = after;
        }
        kept
    }

    /// Count and sum of the values in `(lower, upper]` (either bound open),
    /// e.g. TM(150:1000), TC, TS and PR(lower:upper) with bounds as values
    /// ("the lower bound is exclusive, the upper inclusive", as CloudWatch
    /// defines PR). A bucket that straddles a bound contributes the fraction
    /// of its value range inside, its values assumed spread evenly (guessed:
    /// AWS says only that these are interpolated).
    pub fn trimmed_by_value(&self, lower: Option<f64>, upper: Option<f64>) -> Trimmed {
        let lower = lower.unwrap_or(f64::NEG_INFINITY);
        let upper = upper.unwrap_or(f64::INFINITY);
        let mut kept = Trimmed::default();
        if lower >= upper {
            return kept;
        }
        let mut add = |low: f64, high: f64, count: f64, value: f64| {
            // The bucket's values lie in [low, high].
            let fraction = if high <= low {
                f64::from(u8::from(value > lower && value <= upper))
            } else {
                ((high.min(upper) - low.max(lower)) / (high - low)).clamp(0.0, 1.0)
            };
            kept.count += fraction * count;
            kept.sum += fraction * count * value;
        };
        for &(index, count) in self.negative.iter().rev() {
            let (near, far) = (GAMMA.powi(index - 1), GAMMA.powi(index));
            add(-far, -near, count, -representative(index));
        }
        if self.zero_count > 0.0 {
            add(0.0, 0.0, self.zero_count, 0.0);
        }
        for &(index, count) in &self.positive {
            add(
                GAMMA.powi(index - 1),
                GAMMA.powi(index),
                count,
                representative(index),
            );
        }
        kept
    }

    /// Whether any value is negative (CloudWatch: "Percentile statistics
    /// are not available for metrics when any of the metric values are
    /// negative numbers"; the API decides whether to follow that).
    pub fn has_negative_values(&self) -> bool {
        self.negative.iter().any(|(_, count)| *count > 0.0)
    }

    /// The stored form (little-endian: version, zero count, then each sign's
    /// bucket count and (index i32, count f64) pairs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(1 + 8 + 8 + 12 * (self.negative.len() + self.positive.len()));
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.zero_count.to_le_bytes());
        for side in [&self.negative, &self.positive] {
            out.extend_from_slice(&(side.len() as u32).to_le_bytes());
            for (index, count) in side.iter() {
                out.extend_from_slice(&index.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
            }
        }
        out
    }

    /// Reads [`Distribution::to_bytes`]' form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Distribution, MetricStoreError> {
        let corrupt = |why: &str| MetricStoreError::Corrupt(format!("distribution: {why}"));
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(1).ok_or_else(|| corrupt("empty"))? != [FORMAT_V1] {
            return Err(corrupt("unknown format version"));
        }
        let zero_count = reader.f64().ok_or_else(|| corrupt("truncated"))?;
        let mut sides = [Vec::new(), Vec::new()];
        for side in &mut sides {
            let length = reader.u32().ok_or_else(|| corrupt("truncated"))? as usize;
            if length > bytes.len() / 12 {
                return Err(corrupt("bucket count beyond its length"));
            }
            side.reserve(length);
            for _ in 0..length {
                let index = reader.i32().ok_or_else(|| corrupt("truncated"))?;
                let count = reader.f64().ok_or_else(|| corrupt("truncated"))?;
                if side.last().is_some_and(|(last, _)| *last >= index) {
                    return Err(corrupt("buckets out of order"));
                }
                side.push((index, count));
            }
        }
        if reader.at != bytes.len() {
            return Err(corrupt("trailing bytes"));
        }
        let [negative, positive] = sides;
        Ok(Distribution {
            negative,
            zero_count,
            positive,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, length: usize) -> Option<&[u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(length)?)?;
        self.at += length;
        Some(slice)
    }
    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact percentile of a sorted list by the same rank rule.
    fn exact_percentile(sorted: &[f64], p: f64) -> f64 {
        let rank = (p / 100.0 * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank - 1]
    }

    fn check_percentiles(values: &[f64]) {
        let distribution =
            Distribution::from_values(&values.iter().map(|v| (*v, 1.0)).collect::<Vec<_>>());
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        for p in [0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 100.0] {
            let estimate = distribution.percentile(p).expect("non-empty");
            let exact = exact_percentile(&sorted, p);
            let error = if exact == 0.0 {
                estimate.abs()
            } else {
                ((estimate - exact) / exact).abs()
            };
            assert!(
                error <= RELATIVE_ACCURACY + 1e-12,
                "p{p}: estimate {estimate} exact {exact} error {error}"
            );
        }
    }

    #[test]
    fn percentiles_are_within_one_percent() {
        // Deterministic spread over many magnitudes, both signs, zeros.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let wide: Vec<f64> = (0..5_000)
            .map(|_| 10f64.powf(next() * 12.0 - 6.0))
            .collect();
        check_percentiles(&wide);
        let mixed: Vec<f64> = (0..5_000)
            .map(|i| match i % 5 {
                0 => 0.0,
                1 | 2 => -(next() * 1000.0),
                _ => next() * 50.0,
            })
            .collect();
        check_percentiles(&mixed);
        check_percentiles(&[42.0]);
        check_percentiles(&[1e-100, 1e100]);
    }

    #[test]
    fn weighted_counts_and_merging_equal_one_distribution() {
        let whole = Distribution::from_values(&[(1.0, 2.5), (10.0, 1.0), (-3.0, 4.0), (0.0, 0.5)]);
        let mut merged = Distribution::from_values(&[(1.0, 2.0), (-3.0, 4.0)]);
        merged.merge(&Distribution::from_values(&[
            (10.0, 1.0),
            (1.0, 0.5),
            (0.0, 0.5),
        ]));
        assert_eq!(merged, whole);
        assert_eq!(whole.total_count(), 8.0);
        // Ranks: -3 ×4, 0 ×0.5, 1 ×2.5, 10 ×1.
        let p = |p: f64| whole.percentile(p).unwrap();
        assert!((p(50.0) + 3.0).abs() <= 0.03);
        assert_eq!(p(55.0), 0.0);
        assert!((p(80.0) - 1.0).abs() <= 0.01);
        assert!((p(100.0) - 10.0).abs() <= 0.1);
        assert_eq!(whole.percentile(100.5), None);
        assert_eq!(Distribution::default().percentile(50.0), None);
    }

    #[test]
    fn trimmed_counts_and_sums_between_percentiles() {
        // 1..=100 once each: TM(10%:90%) keeps 11..=90 (80 values, sum 4040).
        let values: Vec<(f64, f64)> = (1..=100).map(|v| (v as f64, 1.0)).collect();
        let distribution = Distribution::from_values(&values);
        let trimmed = distribution.trimmed(10.0, 90.0);
        assert!((trimmed.count - 80.0).abs() < 1e-9, "{trimmed:?}");
        assert!(
            (trimmed.sum - 4040.0).abs() <= 4040.0 * 0.011,
            "{trimmed:?}"
        );
        let all = distribution.trimmed(0.0, 100.0);
        assert!((all.count - 100.0).abs() < 1e-9);
        assert!((all.sum - 5050.0).abs() <= 5050.0 * 0.01);
        assert_eq!(distribution.trimmed(50.0, 10.0), Trimmed::default());
    }

    #[test]
    fn trimmed_by_value_keeps_lower_exclusive_upper_inclusive() {
        let values: Vec<(f64, f64)> = (1..=100).map(|v| (v as f64, 1.0)).collect();
        let distribution = Distribution::from_values(&values);
        // (lower, upper, expected count, expected sum): bucket interpolation
        // may move a count by at most the straddling buckets' share.
        let check = |lower: Option<f64>, upper: Option<f64>, count: f64, sum: f64| {
            let got = distribution.trimmed_by_value(lower, upper);
            assert!(
                (got.count - count).abs() <= 1.0,
                "{lower:?} {upper:?} {got:?}"
            );
            assert!(
                (got.sum - sum).abs() <= sum * 0.011 + 100.0,
                "{lower:?} {upper:?} {got:?}"
            );
        };
        check(None, None, 100.0, 5050.0);
        check(Some(50.5), None, 50.0, 3775.0);
        check(None, Some(10.5), 10.0, 55.0);
        check(Some(20.5), Some(30.5), 10.0, 255.0);
        assert_eq!(
            distribution.trimmed_by_value(Some(5.0), Some(5.0)),
            Trimmed::default()
        );
        let signed = Distribution::from_values(&[(-2.0, 1.0), (0.0, 3.0), (4.0, 1.0)]);
        assert!(signed.has_negative_values());
        assert_eq!(signed.trimmed_by_value(Some(-0.5), Some(0.5)).count, 3.0);
        assert_eq!(signed.trimmed_by_value(Some(0.0), None).count, 1.0);
        assert_eq!(signed.trimmed_by_value(None, Some(-1.0)).count, 1.0);
        assert!(!distribution.has_negative_values());
    }

    #[test]
    fn bytes_round_trip_and_corruption_is_reported() {
        let distribution = Distribution::from_values(&[(1.5, 2.0), (-7.0, 1.0), (0.0, 3.0)]);
        let bytes = distribution.to_bytes();
        assert_eq!(Distribution::from_bytes(&bytes).unwrap(), distribution);
        for broken in [&bytes[..bytes.len() - 1], &[], &[9u8][..]] {
            assert!(matches!(
                Distribution::from_bytes(broken),
                Err(MetricStoreError::Corrupt(_))
            ));
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Distribution::from_bytes(&trailing).is_err());
    }
}
