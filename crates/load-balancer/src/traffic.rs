//! What the load balancer counts for CloudWatch's `AWS/ApplicationELB`
//! metrics: plain counts since the previous report, gauges as of the report,
//! and `TargetResponseTime` as a distribution of values with counts.
//!
//! The proxy shell counts per worker (in its own state, no shared atomics
//! and no allocation per request) and sums the workers' counts into a
//! [`TrafficReport`] when asked. Field names follow the metric names (in
//! snake case); the metric each field feeds is in its comment, with AWS's
//! wording where AWS documents it (Elastic Load Balancing User Guide,
//! "CloudWatch metrics for your Application Load Balancer").
//!
//! Architecture invariant: no I/O and no clock; a response time arrives in
//! microseconds, measured by the shell.

use std::collections::BTreeMap;

use crate::config::Target;

/// The most distinct values one report of `TargetResponseTime` carries
/// (PutMetricData's limit on a datum's `Values`).
pub const MAX_RESPONSE_TIME_VALUES: usize = 150;

/// Response times up to this many microseconds are kept exactly.
const EXACT_BELOW_US: u64 = 100;
/// Fine buckets per decade from 100 µs on: two significant digits (10..=99).
const BUCKETS_PER_DECADE: usize = 90;
/// Decades with two significant digits: 100 µs up to 10^10 µs (10^4 s, above
/// ELBv2's highest idle timeout of 4000 s; longer times fall in the last
/// bucket).
const DECADES: usize = 8;
/// Buckets of a [`ResponseTimeRecorder`].
const BUCKETS: usize = EXACT_BELOW_US as usize + DECADES * BUCKETS_PER_DECADE;

/// A bucket's index for a response time: exact below 100 µs, then two
/// significant digits.
fn bucket_of(response_time_us: u64) -> usize {
    if response_time_us < EXACT_BELOW_US {
        return response_time_us as usize;
    }
    // 3 for 100..=999, up to 10 for 10^9..10^10.
    let digits = (response_time_us.ilog10() + 1) as usize;
    if digits > DECADES + 2 {
        return BUCKETS - 1;
    }
    let scale = 10u64.pow(digits as u32 - 2);
    let mantissa = (response_time_us / scale) as usize; // 10..=99
    EXACT_BELOW_US as usize + (digits - 3) * BUCKETS_PER_DECADE + (mantissa - 10)
}

/// The lowest response time of a bucket and the bucket's width, in µs.
fn bucket_bounds_us(bucket: usize) -> (u64, u64) {
    if bucket < EXACT_BELOW_US as usize {
        return (bucket as u64, 1);
    }
    let fine = bucket - EXACT_BELOW_US as usize;
    let digits = fine / BUCKETS_PER_DECADE + 3;
    let mantissa = (fine % BUCKETS_PER_DECADE + 10) as u64;
    let scale = 10u64.pow(digits as u32 - 2);
    (mantissa * scale, scale)
}

/// The value a bucket reports: its midpoint (exact below 100 µs).
fn representative_us(lowest_us: u64, width_us: u64) -> u64 {
    if width_us == 1 {
        lowest_us
    } else {
        lowest_us + width_us / 2
    }
}

/// One significant digit: the coarse bucket (lowest value, width) a time in
/// µs falls in, used when a report would carry more than
/// [`MAX_RESPONSE_TIME_VALUES`] values.
fn coarse_bounds_us(response_time_us: u64) -> (u64, u64) {
    if response_time_us < 10 {
        return (response_time_us, 1);
    }
    let scale = 10u64.pow(response_time_us.ilog10());
    (response_time_us / scale * scale, scale)
}

/// `TargetResponseTime` of one target group since the previous report, by
/// bucket: exact to the microsecond below 100 µs, two significant digits
/// above (at most 5% off, reported at the bucket's midpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseTimeDistribution {
    /// Count by bucket (see `bucket_of`).
    counts: BTreeMap<u16, u64>,
}

impl ResponseTimeDistribution {
    pub fn record_us(&mut self, response_time_us: u64) {
        self.add_to_bucket(bucket_of(response_time_us), 1);
    }

    fn add_to_bucket(&mut self, bucket: usize, count: u64) {
        let total = self.counts.entry(bucket as u16).or_default();
        *total = total.saturating_add(count);
    }

    pub fn add(&mut self, other: &ResponseTimeDistribution) {
        for (&bucket, &count) in &other.counts {
            self.add_to_bucket(usize::from(bucket), count);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Responses measured.
    pub fn sample_count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The distribution as PutMetricData's `Values` and `Counts`: values in
    /// seconds, ascending, with how many responses took that long; at most
    /// [`MAX_RESPONSE_TIME_VALUES`] of them (with more distinct buckets,
    /// values are rounded to one significant digit instead of two).
    pub fn values_s(&self) -> Vec<(f64, u64)> {
        let fine: Vec<(u64, u64)> = self
            .counts
            .iter()
            .map(|(&bucket, &count)| {
                let (lowest_us, width_us) = bucket_bounds_us(usize::from(bucket));
                (representative_us(lowest_us, width_us), count)
            })
            .collect();
        let values_us = if fine.len() <= MAX_RESPONSE_TIME_VALUES {
            fine
        } else {
            // Each fine bucket lies inside one coarse bucket.
            let mut coarse: BTreeMap<(u64, u64), u64> = BTreeMap::new();
            for (bucket, &count) in &self.counts {
                let (lowest_us, _) = bucket_bounds_us(usize::from(*bucket));
                let total = coarse.entry(coarse_bounds_us(lowest_us)).or_default();
                *total = total.saturating_add(count);
            }
            coarse
                .into_iter()
                .map(|((lowest_us, width_us), count)| {
                    (representative_us(lowest_us, width_us), count)
                })
                .collect()
        };
        values_us
            .into_iter()
            .map(|(value_us, count)| (value_us as f64 / 1_000_000.0, count))
            .collect()
    }
}

/// The hot-path side of [`ResponseTimeDistribution`]: a fixed array of
/// counts, allocated with the first response and reused after each report.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResponseTimeRecorder {
    counts: Vec<u32>,
}

impl ResponseTimeRecorder {
    pub(crate) fn record_us(&mut self, response_time_us: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        let count = &mut self.counts[bucket_of(response_time_us)];
        *count = count.saturating_add(1);
    }

    /// The counts since the previous call (which resets them).
    pub(crate) fn take(&mut self) -> ResponseTimeDistribution {
        let mut distribution = ResponseTimeDistribution::default();
        for (bucket, count) in self.counts.iter_mut().enumerate() {
            if *count > 0 {
                distribution.add_to_bucket(bucket, u64::from(std::mem::take(count)));
            }
        }
        distribution
    }
}

/// One target's requests since the previous report (RequestCountPerTarget
/// is the group's request count over its healthy targets; these are the
/// actual counts per target).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetCounts {
    /// RequestCount (TargetGroup dimension): requests for which the load
    /// balancer chose this target, answered or not (each client request once,
    /// on the target that answered it or was tried last).
    pub request_count: u64,
    /// HTTPCode_Target_2XX_Count .. HTTPCode_Target_5XX_Count: "the number of
    /// HTTP response codes generated by the targets" (1xx and codes outside
    /// 100..=599 are counted in none).
    pub http_code_target_2xx_count: u64,
    pub http_code_target_3xx_count: u64,
    pub http_code_target_4xx_count: u64,
    pub http_code_target_5xx_count: u64,
    /// TargetConnectionErrorCount: "the number of connections that were not
    /// successfully established between the load balancer and target".
    pub target_connection_error_count: u64,
}

impl TargetCounts {
    pub fn add(&mut self, other: &TargetCounts) {
        self.request_count = self.request_count.saturating_add(other.request_count);
        self.http_code_target_2xx_count = self
            .http_code_target_2xx_count
            .saturating_add(other.http_code_target_2xx_count);
        self.http_code_target_3xx_count = self
            .http_code_target_3xx_count
            .saturating_add(other.http_code_target_3xx_count);
        self.http_code_target_4xx_count = self
            .http_code_target_4xx_count
            .saturating_add(other.http_code_target_4xx_count);
        self.http_code_target_5xx_count = self
            .http_code_target_5xx_count
            .saturating_add(other.http_code_target_5xx_count);
        self.target_connection_error_count = self
            .target_connection_error_count
            .saturating_add(other.target_connection_error_count);
    }

    pub fn is_zero(&self) -> bool {
        *self == TargetCounts::default()
    }

    fn record_status(&mut self, status_code: u16) {
        let class = match status_code / 100 {
            2 => &mut self.http_code_target_2xx_count,
            3 => &mut self.http_code_target_3xx_count,
            4 => &mut self.http_code_target_4xx_count,
            5 => &mut self.http_code_target_5xx_count,
            _ => return,
        };
        *class = class.saturating_add(1);
    }
}

/// One target group's traffic since the previous report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetGroupTraffic {
    /// Counts by target, for every target with some since the previous
    /// report (deregistered ones included).
    pub targets: BTreeMap<Target, TargetCounts>,
    /// TargetResponseTime: "the time elapsed, in seconds, after the request
    /// leaves the load balancer until the target starts to send the response
    /// headers" (here: from the first byte of the request written to the
    /// target's connection until the response head is read).
    pub response_times: ResponseTimeDistribution,
    /// HealthyHostCount (gauge, as of the report): targets whose health is
    /// `healthy` (every registered target not draining when the group's
    /// health checks are disabled).
    pub healthy_host_count: u32,
    /// UnHealthyHostCount (gauge): targets whose health is `unhealthy`
    /// (`initial`, `draining` and `unused` targets count in neither).
    pub unhealthy_host_count: u32,
}

impl TargetGroupTraffic {
    /// The group's counts: the sum over its targets.
    pub fn totals(&self) -> TargetCounts {
        let mut totals = TargetCounts::default();
        for counts in self.targets.values() {
            totals.add(counts);
        }
        totals
    }

    /// Adds another shard's counts (the gauges are left alone).
    pub fn add_counts(&mut self, other: &TargetGroupTraffic) {
        for (target, counts) in &other.targets {
            self.targets.entry(*target).or_default().add(counts);
        }
        self.response_times.add(&other.response_times);
    }
}

/// The load balancer's own counts since the previous report, and its
/// connection gauges as of the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadBalancerTraffic {
    /// RequestCount (LoadBalancer dimension): requests the load balancer
    /// answered, with or without a target (fixed responses, redirects and
    /// its own errors included), and requests whose client went away before
    /// the answer (`http_code_elb_460_count`). Requests hyper rejects before
    /// handing them over (a malformed head) are not counted.
    pub request_count: u64,
    /// Client connections accepted. NewConnectionCount is "the total number
    /// of new TCP connections established from clients to the load balancer
    /// and from the load balancer to targets":
    /// [`new_connection_count`](Self::new_connection_count).
    pub new_client_connection_count: u64,
    /// Connections opened to targets (health checks excluded, as ALB's
    /// metrics exclude them).
    pub new_target_connection_count: u64,
    /// Gauge: client connections open at the report.
    pub active_client_connection_count: u64,
    /// Gauge: connections to targets open at the report (in use or idle in
    /// a worker's pool).
    pub active_target_connection_count: u64,
    /// ProcessedBytes: "the total number of bytes processed by the load
    /// balancer" (HTTP headers and payload): every byte read from and
    /// written to client connections (HTTP/2 framing included).
    pub processed_bytes: u64,
    /// HTTPCode_ELB_3XX_Count: redirect actions.
    pub http_code_elb_3xx_count: u64,
    /// HTTPCode_ELB_4XX_Count: the load balancer's own 4xx answers (400 for
    /// a request desync mitigation blocks or whose body cannot be read,
    /// 4xx fixed responses, and 460).
    pub http_code_elb_4xx_count: u64,
    /// HTTPCode_ELB_5XX_Count: its own 5xx answers (502, 503, 504 and 5xx
    /// fixed responses).
    pub http_code_elb_5xx_count: u64,
    pub http_code_elb_500_count: u64,
    /// HTTPCode_ELB_502_Count: the target refused, dropped or garbled it.
    pub http_code_elb_502_count: u64,
    /// HTTPCode_ELB_503_Count: no routable target (or no target group).
    pub http_code_elb_503_count: u64,
    /// HTTPCode_ELB_504_Count: the target did not answer in time.
    pub http_code_elb_504_count: u64,
    /// Requests whose client closed the connection (or reset the stream)
    /// before the answer: ALB logs them as 460. Guessed: counted in
    /// `http_code_elb_4xx_count` and `request_count` too (AWS has no
    /// HTTPCode_ELB_460_Count metric).
    pub http_code_elb_460_count: u64,
    /// HTTP_Fixed_Response_Count: fixed-response actions answered.
    pub http_fixed_response_count: u64,
    /// HTTP_Redirect_Count: redirect actions answered.
    pub http_redirect_count: u64,
    /// RejectedConnectionCount: Berth has no connection limit; these are
    /// connections the listener failed to accept (out of file descriptors,
    /// for instance).
    pub rejected_connection_count: u64,
}

impl LoadBalancerTraffic {
    /// NewConnectionCount: client and target connections opened.
    pub fn new_connection_count(&self) -> u64 {
        self.new_client_connection_count
            .saturating_add(self.new_target_connection_count)
    }

    /// ActiveConnectionCount: "the total number of concurrent TCP
    /// connections active from clients to the load balancer and from the
    /// load balancer to targets", as of the report (a sample, as ALB's
    /// nodes report it; Sum over a period adds the samples).
    pub fn active_connection_count(&self) -> u64 {
        self.active_client_connection_count
            .saturating_add(self.active_target_connection_count)
    }
}

/// Everything one load balancer counted since the previous report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficReport {
    pub load_balancer: LoadBalancerTraffic,
    /// By target group ARN: every group of the load balancer's current
    /// configuration.
    pub target_groups: BTreeMap<String, TargetGroupTraffic>,
}

/// A target group's counts as one shard of its state keeps them.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrafficCounts {
    /// Sorted by target; entries stay (zeroed) across reports while the
    /// target is registered, so counting allocates only for a new target.
    targets: Vec<(Target, TargetCounts)>,
    response_times: ResponseTimeRecorder,
}

impl TrafficCounts {
    fn counts_mut(&mut self, target: Target) -> &mut TargetCounts {
        let index = match self.targets.binary_search_by(|(seen, _)| seen.cmp(&target)) {
            Ok(index) => index,
            Err(index) => {
                self.targets
                    .insert(index, (target, TargetCounts::default()));
                index
            }
        };
        &mut self.targets[index].1
    }

    pub(crate) fn record_response(
        &mut self,
        target: Target,
        status_code: u16,
        response_time_us: u64,
    ) {
        let counts = self.counts_mut(target);
        counts.request_count = counts.request_count.saturating_add(1);
        counts.record_status(status_code);
        self.response_times.record_us(response_time_us);
    }

    pub(crate) fn record_unanswered(&mut self, target: Target) {
        let counts = self.counts_mut(target);
        counts.request_count = counts.request_count.saturating_add(1);
    }

    pub(crate) fn record_connection_error(&mut self, target: Target) {
        let counts = self.counts_mut(target);
        counts.target_connection_error_count =
            counts.target_connection_error_count.saturating_add(1);
    }

    /// The counts since the previous call (which resets them); targets for
    /// which `keep` is false are forgotten once reported.
    pub(crate) fn take(&mut self, keep: impl Fn(Target) -> bool) -> TargetGroupTraffic {
        let mut traffic = TargetGroupTraffic {
            response_times: self.response_times.take(),
            ..TargetGroupTraffic::default()
        };
        for (target, counts) in &mut self.targets {
            let counts = std::mem::take(counts);
            if !counts.is_zero() {
                traffic.targets.insert(*target, counts);
            }
        }
        self.targets.retain(|(target, _)| keep(*target));
        traffic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(port: u16) -> Target {
        Target {
            id: "10.0.0.1".parse().unwrap(),
            port,
        }
    }

    /// Records `times_us` and checks the reported (seconds, count) pairs.
    fn check(times_us: &[u64], expected: &[(f64, u64)]) {
        let mut recorder = ResponseTimeRecorder::default();
        for &time_us in times_us {
            recorder.record_us(time_us);
        }
        let distribution = recorder.take();
        assert_eq!(distribution.sample_count(), times_us.len() as u64);
        let values = distribution.values_s();
        assert_eq!(values.len(), expected.len(), "{values:?}");
        for ((value, count), (expected_value, expected_count)) in values.iter().zip(expected) {
            assert!(
                (value - expected_value).abs() < 1e-12,
                "{value} != {expected_value} in {values:?}"
            );
            assert_eq!(count, expected_count, "{values:?}");
        }
        // The recorder starts over.
        assert!(recorder.take().is_empty());
    }

    #[test]
    fn response_times_keep_two_significant_digits() {
        check(&[], &[]);
        // Exact below 100 µs.
        check(&[0, 7, 7, 99], &[(0.0, 1), (0.000_007, 2), (0.000_099, 1)]);
        // Then bucket midpoints: 100..=109 µs reports 105 µs.
        check(&[100, 109, 110], &[(0.000_105, 2), (0.000_115, 1)]);
        // 1234 µs and 1299 µs share the bucket 1200..1300 µs.
        check(&[1_234, 1_299, 1_300], &[(0.001_25, 2), (0.001_35, 1)]);
        // Seconds: 2.5 s in 2.5..2.6 s.
        check(&[2_500_000, 2_599_999], &[(2.55, 2)]);
        // Past 10^4 s: the last bucket (9.9..10 × 10^3 s).
        check(&[20_000_000_000], &[(9_950.0, 1)]);
    }

    #[test]
    fn every_bucket_maps_back_to_itself() {
        for bucket in 0..BUCKETS {
            let (lowest_us, width_us) = bucket_bounds_us(bucket);
            assert_eq!(bucket_of(lowest_us), bucket);
            assert_eq!(bucket_of(lowest_us + width_us - 1), bucket);
            let midpoint = representative_us(lowest_us, width_us);
            assert_eq!(bucket_of(midpoint), bucket);
        }
    }

    #[test]
    fn a_report_never_carries_more_than_150_values() {
        let mut recorder = ResponseTimeRecorder::default();
        // Every fine bucket once: 820 distinct values.
        for bucket in 0..BUCKETS {
            recorder.record_us(bucket_bounds_us(bucket).0);
        }
        let distribution = recorder.take();
        let values = distribution.values_s();
        assert!(values.len() <= MAX_RESPONSE_TIME_VALUES, "{}", values.len());
        assert_eq!(
            values.iter().map(|(_, count)| count).sum::<u64>(),
            BUCKETS as u64
        );
        // One significant digit: 100..=199 µs report 150 µs, and exact below 10.
        assert!(values.contains(&(0.000_15, 10)), "{values:?}");
        assert!(values.contains(&(0.000_009, 1)), "{values:?}");
        // Ascending.
        assert!(values.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }

    #[test]
    fn distributions_add() {
        let mut first = ResponseTimeDistribution::default();
        first.record_us(5);
        first.record_us(1_000);
        let mut second = ResponseTimeDistribution::default();
        second.record_us(5);
        first.add(&second);
        assert_eq!(first.values_s(), vec![(0.000_005, 2), (0.001_05, 1)]);
    }

    #[test]
    fn target_counts_follow_status_classes_and_reset_on_take() {
        let (web, api) = (target(80), target(81));
        let mut counts = TrafficCounts::default();
        for status in [200, 204, 301, 404, 500, 503, 101] {
            counts.record_response(web, status, 1_000);
        }
        counts.record_unanswered(api);
        counts.record_connection_error(api);
        let traffic = counts.take(|target| target == web);
        assert_eq!(
            traffic.targets[&web],
            TargetCounts {
                request_count: 7,
                http_code_target_2xx_count: 2,
                http_code_target_3xx_count: 1,
                http_code_target_4xx_count: 1,
                http_code_target_5xx_count: 2,
                target_connection_error_count: 0,
            }
        );
        assert_eq!(
            traffic.targets[&api],
            TargetCounts {
                request_count: 1,
                target_connection_error_count: 1,
                ..TargetCounts::default()
            }
        );
        assert_eq!(traffic.totals().request_count, 8);
        assert_eq!(traffic.response_times.sample_count(), 7);
        // Nothing since: an empty report; `api` (not kept) is forgotten.
        let again = counts.take(|_| true);
        assert!(again.targets.is_empty() && again.response_times.is_empty());
        assert_eq!(counts.targets.len(), 1);
    }

    #[test]
    fn connection_counts_add_clients_and_targets() {
        let traffic = LoadBalancerTraffic {
            new_client_connection_count: 3,
            new_target_connection_count: 2,
            active_client_connection_count: 1,
            active_target_connection_count: 4,
            ..LoadBalancerTraffic::default()
        };
        assert_eq!(traffic.new_connection_count(), 5);
        assert_eq!(traffic.active_connection_count(), 5);
    }
}
