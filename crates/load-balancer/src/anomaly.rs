//! Automatic target weights (ATW): anomaly detection and mitigation for
//! `weighted_random` target groups, as ALB describes it. The load balancer
//! watches each target's errors (HTTP 5xx responses and connection
//! failures); a target whose error rate is well above its peers' is
//! `anomalous`, and with `load_balancing.algorithm.anomaly_mitigation` on
//! its weight is lowered step by step (traffic goes to the others), then
//! raised gradually once it stops erroring.
//!
//! AWS documents the behaviour, not the numbers. Berth's rules:
//!
//! - Detection runs only while at least [`MIN_HEALTHY_TARGETS`] (3) targets
//!   are healthy (ALB: "anomaly detection is automatically enabled on target
//!   groups with at least three healthy targets"); otherwise every target is
//!   `normal` and keeps its full weight.
//! - Each target's outcomes are kept for a sliding window of
//!   [`WINDOW_MS`] (10 s), in one bucket per evaluation.
//! - A healthy target with at least [`MIN_REQUESTS`] (20) requests in the
//!   window becomes `anomalous` when its error rate is at least
//!   [`ANOMALY_MARGIN`] (20 percentage points) above the median error rate
//!   of the other healthy targets that had requests in the window. An
//!   anomalous target becomes `normal` again once it has at least
//!   [`MIN_RECOVERY_REQUESTS`] (5) requests in the window and its error rate
//!   is less than [`RECOVERY_MARGIN`] (10 points) above that median; with
//!   fewer it keeps its result (no evidence either way).
//! - Mitigation applies only while fewer than half of the healthy targets
//!   are anomalous (so the others can take the traffic); otherwise, or with
//!   mitigation off, every weight is full at once and no mitigation is in
//!   effect.
//! - A mitigated target's weight halves at each evaluation, down to
//!   [`MIN_WEIGHT`] (1% of [`FULL_WEIGHT`]: negligible, never zero, so its
//!   recovery can be seen). A normal target below full weight regains
//!   [`RECOVERY_STEP`] (10% of full) per evaluation; `MitigationInEffect`
//!   is `yes` while its weight is below full.
//!
//! The proxy evaluates every 500 ms, so a failing target's share halves
//! twice a second and a recovered target is back to full weight in about
//! 5 s.

use std::collections::{BTreeMap, VecDeque};

use crate::config::Target;

/// How long a target's outcomes count.
pub const WINDOW_MS: u64 = 10_000;
/// Detection needs this many healthy targets.
pub const MIN_HEALTHY_TARGETS: usize = 3;
/// Requests in the window before a target can be found anomalous.
pub const MIN_REQUESTS: u64 = 20;
/// Requests in the window before an anomalous target can be found normal.
pub const MIN_RECOVERY_REQUESTS: u64 = 5;
/// How far above the others' median error rate (in errors per thousand
/// requests) a target becomes anomalous.
pub const ANOMALY_MARGIN: u64 = 200;
/// How close to the others' median error rate (per thousand) an anomalous
/// target must come to be normal again.
pub const RECOVERY_MARGIN: u64 = 100;
/// A target's weight when it is not mitigated.
pub const FULL_WEIGHT: u32 = 1000;
/// The lowest weight mitigation takes a target to.
pub const MIN_WEIGHT: u32 = FULL_WEIGHT / 100;
/// What a recovering target regains per evaluation.
pub const RECOVERY_STEP: u32 = FULL_WEIGHT / 10;

/// What a target answered since the previous evaluation: requests sent to
/// it and, of those, errors (5xx responses and connection failures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub requests: u64,
    pub errors: u64,
}

impl OutcomeCounts {
    pub fn add(&mut self, other: OutcomeCounts) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
    }

    /// Errors per thousand requests.
    fn error_rate(self) -> u64 {
        (self.errors.min(self.requests) * 1000)
            .checked_div(self.requests)
            .unwrap_or(0)
    }
}

/// One target as an evaluation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetObservation {
    pub target: Target,
    /// Its health checks (or their absence) make it `healthy`.
    pub healthy: bool,
    pub outcomes: OutcomeCounts,
}

/// `AnomalyDetection.Result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyResult {
    Normal,
    Anomalous,
}

impl AnomalyResult {
    /// ELBv2's `AnomalyResultEnum` value.
    pub fn as_elbv2(self) -> &'static str {
        match self {
            AnomalyResult::Normal => "normal",
            AnomalyResult::Anomalous => "anomalous",
        }
    }
}

/// A target's anomaly detection result, whether mitigation is in effect,
/// and its `weighted_random` weight (out of [`FULL_WEIGHT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetAnomaly {
    pub result: AnomalyResult,
    pub mitigation_in_effect: bool,
    pub weight: u32,
}

impl TargetAnomaly {
    pub const NORMAL: TargetAnomaly = TargetAnomaly {
        result: AnomalyResult::Normal,
        mitigation_in_effect: false,
        weight: FULL_WEIGHT,
    };
}

#[derive(Debug, Clone)]
struct TargetWindow {
    /// (evaluation time, outcomes since the previous one), oldest first.
    buckets: VecDeque<(u64, OutcomeCounts)>,
    anomaly: TargetAnomaly,
}

impl TargetWindow {
    fn totals(&self) -> OutcomeCounts {
        let mut totals = OutcomeCounts::default();
        for (_, counts) in &self.buckets {
            totals.add(*counts);
        }
        totals
    }
}

/// One target group's anomaly detection state.
#[derive(Debug, Clone, Default)]
pub struct AnomalyDetection {
    targets: BTreeMap<Target, TargetWindow>,
}

impl AnomalyDetection {
    /// Whether no target has been evaluated (or all were forgotten).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The latest decision for `target` (normal for one never evaluated).
    pub fn anomaly(&self, target: Target) -> TargetAnomaly {
        self.targets
            .get(&target)
            .map_or(TargetAnomaly::NORMAL, |window| window.anomaly)
    }

    /// One evaluation at `now_ms`: `observations` are the group's targets
    /// (those missing are forgotten) with their outcomes since the previous
    /// evaluation. Returns every observed target's decision, in target order.
    pub fn evaluate(
        &mut self,
        observations: &[TargetObservation],
        mitigation_enabled: bool,
        now_ms: u64,
    ) -> Vec<(Target, TargetAnomaly)> {
        self.targets.retain(|target, _| {
            observations
                .iter()
                .any(|observation| observation.target == *target)
        });
        for observation in observations {
            let window = self
                .targets
                .entry(observation.target)
                .or_insert_with(|| TargetWindow {
                    buckets: VecDeque::new(),
                    anomaly: TargetAnomaly::NORMAL,
                });
            if observation.outcomes.requests > 0 || observation.outcomes.errors > 0 {
                window.buckets.push_back((now_ms, observation.outcomes));
            }
            while window
                .buckets
                .front()
                .is_some_and(|(at_ms, _)| at_ms.saturating_add(WINDOW_MS) <= now_ms)
            {
                window.buckets.pop_front();
            }
        }

        let healthy: Vec<(Target, OutcomeCounts)> = observations
            .iter()
            .filter(|observation| observation.healthy)
            .map(|observation| {
                (
                    observation.target,
                    self.targets[&observation.target].totals(),
                )
            })
            .collect();
        let detecting = healthy.len() >= MIN_HEALTHY_TARGETS;

        // Results.
        let mut results: BTreeMap<Target, AnomalyResult> = BTreeMap::new();
        for observation in observations {
            let previous = self.targets[&observation.target].anomaly.result;
            let result = if !detecting || !observation.healthy {
                AnomalyResult::Normal
            } else {
                let own = healthy
                    .iter()
                    .find(|(target, _)| *target == observation.target)
                    .map_or(OutcomeCounts::default(), |(_, totals)| *totals);
                let mut others: Vec<u64> = healthy
                    .iter()
                    .filter(|(target, totals)| *target != observation.target && totals.requests > 0)
                    .map(|(_, totals)| totals.error_rate())
                    .collect();
                judge(previous, own, median(&mut others))
            };
            results.insert(observation.target, result);
        }

        // Weights.
        let anomalous = results
            .values()
            .filter(|result| **result == AnomalyResult::Anomalous)
            .count();
        let mitigating = mitigation_enabled && detecting && anomalous * 2 < healthy.len();
        let mut decisions = Vec::with_capacity(observations.len());
        for (target, result) in results {
            let window = self
                .targets
                .get_mut(&target)
                .expect("every observed target");
            let weight = if !mitigating {
                FULL_WEIGHT
            } else if result == AnomalyResult::Anomalous {
                (window.anomaly.weight / 2).max(MIN_WEIGHT)
            } else {
                window
                    .anomaly
                    .weight
                    .saturating_add(RECOVERY_STEP)
                    .min(FULL_WEIGHT)
            };
            window.anomaly = TargetAnomaly {
                result,
                mitigation_in_effect: weight < FULL_WEIGHT,
                weight,
            };
            decisions.push((target, window.anomaly));
        }
        decisions
    }
}

/// A target's new result from its window `own` and the others' median error
/// rate per thousand (`None` when no other target had requests: nothing to
/// compare with).
fn judge(previous: AnomalyResult, own: OutcomeCounts, baseline: Option<u64>) -> AnomalyResult {
    let Some(baseline) = baseline else {
        return previous;
    };
    match previous {
        AnomalyResult::Normal if own.requests >= MIN_REQUESTS => {
            if own.error_rate() >= baseline + ANOMALY_MARGIN {
                AnomalyResult::Anomalous
            } else {
                AnomalyResult::Normal
            }
        }
        AnomalyResult::Anomalous if own.requests >= MIN_RECOVERY_REQUESTS => {
            if own.error_rate() < baseline + RECOVERY_MARGIN {
                AnomalyResult::Normal
            } else {
                AnomalyResult::Anomalous
            }
        }
        _ => previous,
    }
}

fn median(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2
    } else {
        values[middle]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AnomalyResult::*;

    fn target(last_octet: u8) -> Target {
        Target {
            id: format!("10.0.0.{last_octet}").parse().unwrap(),
            port: 80,
        }
    }

    /// One evaluation's input, per target: (healthy, requests, errors).
    type Round<'a> = &'a [(bool, u64, u64)];
    /// One evaluation's expected decisions, per target: (result, mitigation
    /// in effect, weight).
    type Expected<'a> = &'a [(AnomalyResult, bool, u32)];

    fn observe(round: Round<'_>) -> Vec<TargetObservation> {
        round
            .iter()
            .enumerate()
            .map(|(n, &(healthy, requests, errors))| TargetObservation {
                target: target(n as u8 + 1),
                healthy,
                outcomes: OutcomeCounts { requests, errors },
            })
            .collect()
    }

    /// Runs `rounds` (one every 500 ms) on a fresh state and checks each
    /// round's decisions.
    fn check(mitigation_enabled: bool, rounds: &[(Round<'_>, Expected<'_>)]) {
        let mut detection = AnomalyDetection::default();
        for (index, (round, expected)) in rounds.iter().enumerate() {
            let decisions =
                detection.evaluate(&observe(round), mitigation_enabled, index as u64 * 500);
            let got: Vec<(AnomalyResult, bool, u32)> = decisions
                .iter()
                .map(|(_, d)| (d.result, d.mitigation_in_effect, d.weight))
                .collect();
            assert_eq!(got, expected.to_vec(), "round {index} of {rounds:?}");
            for (target, decision) in decisions {
                assert_eq!(detection.anomaly(target), decision);
            }
        }
    }

    const N: (AnomalyResult, bool, u32) = (Normal, false, FULL_WEIGHT);

    #[test]
    fn a_target_erroring_more_than_its_peers_is_anomalous_and_mitigated() {
        let failing: Round = &[(true, 20, 0), (true, 20, 1), (true, 20, 20)];
        let weights = [500, 250, 125, 62, 31, 15, 10, 10];
        let expected: Vec<[(AnomalyResult, bool, u32); 3]> = weights
            .iter()
            .map(|&weight| [N, N, (Anomalous, true, weight)])
            .collect();
        let rounds: Vec<(Round, Expected)> = expected
            .iter()
            .map(|expected| (failing, &expected[..]))
            .collect();
        check(true, &rounds);
    }

    #[test]
    fn detection_thresholds() {
        for (round, last) in [
            // Too few requests in the window.
            (&[(true, 20, 0), (true, 20, 0), (true, 19, 19)][..], N),
            // 20 points above the others' median: anomalous.
            (
                &[(true, 20, 2), (true, 20, 2), (true, 20, 6)],
                (Anomalous, true, 500),
            ),
            // Just under the margin.
            (&[(true, 20, 2), (true, 20, 2), (true, 20, 5)], N),
            // The median, not the mean: one other bad target does not hide it.
            (
                &[
                    (true, 20, 0),
                    (true, 20, 0),
                    (true, 20, 0),
                    (true, 20, 10),
                    (true, 20, 20),
                ],
                (Anomalous, true, 500),
            ),
            // Everyone fails alike: nobody is anomalous.
            (&[(true, 20, 20), (true, 20, 20), (true, 20, 20)], N),
            // Fewer than three healthy targets: no detection.
            (&[(true, 20, 0), (false, 20, 0), (true, 20, 20)], N),
            // The others had no requests: nothing to compare with.
            (&[(true, 0, 0), (true, 0, 0), (true, 20, 20)], N),
        ] {
            let mut expected = vec![N; round.len()];
            *expected.last_mut().unwrap() = last;
            if round.len() == 5 {
                // Targets 4 (50%) and 5 (100%) are both anomalous: two of
                // five is fewer than half, so both are mitigated.
                expected[3] = (Anomalous, true, 500);
                expected[4] = (Anomalous, true, 500);
            }
            check(true, &[(round, &expected)]);
        }
    }

    #[test]
    fn mitigation_off_only_reports() {
        let failing: Round = &[(true, 20, 0), (true, 20, 0), (true, 20, 20)];
        let anomalous: Expected = &[N, N, (Anomalous, false, FULL_WEIGHT)];
        check(false, &[(failing, anomalous), (failing, anomalous)]);
    }

    #[test]
    fn no_mitigation_with_too_few_healthy_targets() {
        // Three healthy targets, two anomalous: the last one cannot take
        // everything, so nothing is mitigated (and the first target's
        // mitigation is lifted at once).
        check(
            true,
            &[
                (
                    &[(true, 20, 0), (true, 20, 0), (true, 20, 20)],
                    &[N, N, (Anomalous, true, 500)],
                ),
                (
                    &[(true, 200, 0), (true, 200, 200), (true, 200, 200)],
                    &[
                        N,
                        (Anomalous, false, FULL_WEIGHT),
                        (Anomalous, false, FULL_WEIGHT),
                    ],
                ),
            ],
        );
        // Four targets, one unhealthy: three count, one anomalous is fine.
        check(
            true,
            &[(
                &[(true, 20, 0), (false, 0, 0), (true, 20, 0), (true, 20, 20)],
                &[N, N, N, (Anomalous, true, 500)],
            )],
        );
        // Two healthy targets (a third unhealthy): no detection at all.
        check(
            true,
            &[(
                &[(true, 20, 0), (false, 20, 20), (true, 20, 20)],
                &[N, N, N],
            )],
        );
    }

    #[test]
    fn a_recovered_target_regains_its_weight_gradually() {
        let failing: Round = &[(true, 20, 0), (true, 20, 0), (true, 20, 20)];
        let quiet: Round = &[(true, 20, 0), (true, 20, 0), (true, 0, 0)];
        let answering: Round = &[(true, 20, 0), (true, 20, 0), (true, 5, 0)];
        let mut detection = AnomalyDetection::default();
        let mut third =
            |round: Round, now_ms: u64| detection.evaluate(&observe(round), true, now_ms)[2].1;
        assert_eq!(third(failing, 0).weight, 500);
        assert_eq!(third(failing, 500).weight, 250);
        // No requests: still anomalous (no evidence otherwise) while its
        // errors are in the window.
        let mut now_ms = 500;
        while now_ms < 10_000 {
            now_ms += 500;
            let anomaly = third(quiet, now_ms);
            assert_eq!(anomaly.result, Anomalous, "at {now_ms}");
            assert!(anomaly.mitigation_in_effect);
        }
        assert_eq!(third(quiet, now_ms).weight, MIN_WEIGHT);
        // Answering without errors: normal, then 10% more weight per round.
        let mut weights = Vec::new();
        loop {
            now_ms += 500;
            let anomaly = third(answering, now_ms);
            assert_eq!(anomaly.result, Normal);
            weights.push(anomaly.weight);
            if !anomaly.mitigation_in_effect {
                break;
            }
        }
        assert_eq!(
            weights,
            vec![110, 210, 310, 410, 510, 610, 710, 810, 910, FULL_WEIGHT]
        );
    }

    #[test]
    fn turning_mitigation_off_restores_full_weight_at_once() {
        let observations = observe(&[(true, 20, 0), (true, 20, 0), (true, 20, 20)]);
        let mut detection = AnomalyDetection::default();
        assert_eq!(detection.evaluate(&observations, true, 0)[2].1.weight, 500);
        assert_eq!(
            detection.evaluate(&observations, false, 500)[2].1,
            TargetAnomaly {
                result: Anomalous,
                mitigation_in_effect: false,
                weight: FULL_WEIGHT
            }
        );
        // A target that leaves the group is forgotten.
        detection.evaluate(&observations[..2], true, 1_000);
        assert_eq!(detection.anomaly(target(3)), TargetAnomaly::NORMAL);
    }
}
