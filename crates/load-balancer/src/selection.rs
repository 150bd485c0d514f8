//! Per target group: registered targets, their health, requests in flight,
//! and which target gets the next request.

use std::net::SocketAddr;

use crate::anomaly::{OutcomeCounts, TargetAnomaly, TargetObservation};
use crate::config::{
    LoadBalancingAlgorithm, MinimumHealthyTargets, StickinessKind, Target, TargetGroup,
};
use crate::health::{HealthCheckOutcome, HealthRecord, Phase, TargetHealth, TargetHealthState};
use crate::traffic::{TargetGroupTraffic, TrafficCounts};

/// The cookie `lb_cookie` stickiness sets, as on ALB.
pub const STICKINESS_COOKIE_NAME: &str = "AWSALB";
/// The cookie `app_cookie` stickiness sets beside the application's, as on
/// ALB (whose value, when longer than 4 KB, continues in `AWSALBAPP-1` to
/// `-3`; Berth's always fits in the first).
pub const APP_STICKINESS_COOKIE_NAME: &str = "AWSALBAPP-0";

/// How long selection passes over a target after connecting to it failed
/// (passive health; DescribeTargetHealth does not show it).
pub const CONNECTION_FAILURE_AVOIDANCE_MS: u64 = 10_000;

/// Weight of a target outside slow start; a target in slow start ramps up
/// linearly from 1 to this.
const FULL_WEIGHT: i64 = 1000;

/// Which targets may receive new requests: the healthy ones; if fewer are
/// healthy than `minimum` asks (by default: none is), ALB fails open to
/// every target that is not draining (initial and unhealthy ones too).
/// Draining and unused targets never do.
pub fn routable_targets(
    targets: impl IntoIterator<Item = (Target, TargetHealthState)>,
    minimum: MinimumHealthyTargets,
) -> Vec<Target> {
    let targets: Vec<(Target, TargetHealthState)> = targets.into_iter().collect();
    let fail_open = fails_open(targets.iter().map(|(_, state)| *state), minimum);
    targets
        .into_iter()
        .filter(|(_, state)| is_routable(*state, fail_open))
        .map(|(target, _)| target)
        .collect()
}

/// Whether the healthy targets among `states` are too few for `minimum`.
fn fails_open(
    states: impl Iterator<Item = TargetHealthState>,
    minimum: MinimumHealthyTargets,
) -> bool {
    let (mut healthy, mut total) = (0, 0);
    for state in states {
        match state {
            TargetHealthState::Healthy => {
                healthy += 1;
                total += 1;
            }
            TargetHealthState::Initial | TargetHealthState::Unhealthy => total += 1,
            TargetHealthState::Draining | TargetHealthState::Unused => {}
        }
    }
    minimum.fails_open(healthy, total)
}

fn is_routable(state: TargetHealthState, fail_open: bool) -> bool {
    match state {
        TargetHealthState::Healthy => true,
        TargetHealthState::Initial | TargetHealthState::Unhealthy => fail_open,
        TargetHealthState::Draining | TargetHealthState::Unused => false,
    }
}

/// The `AWSALB` cookie value naming `target`.
pub fn encode_stickiness_cookie(target: Target) -> String {
    let text = target.socket_addr().to_string();
    let mut encoded = String::with_capacity(text.len() * 2);
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        encoded.push(char::from(HEX[usize::from(byte >> 4)]));
        encoded.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    encoded
}

/// The target an `AWSALB` cookie names, if it is one of ours.
pub fn decode_stickiness_cookie(value: &str) -> Option<Target> {
    if !value.len().is_multiple_of(2) || !value.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..value.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&value[index..index + 2], 16).ok())
        .collect();
    let address: SocketAddr = String::from_utf8(bytes?).ok()?.parse().ok()?;
    Some(Target {
        id: address.ip(),
        port: address.port(),
    })
}

/// The target chosen for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub target: Target,
    /// With stickiness on: the cookie naming the target.
    pub stickiness_cookie: Option<StickinessCookie>,
}

/// The stickiness cookie a response gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickinessCookie {
    /// `AWSALB` or `AWSALBAPP-0`.
    pub name: &'static str,
    pub value: String,
    /// Its `Max-Age`.
    pub duration_seconds: u32,
    /// With `app_cookie` stickiness: the application's cookie. The load
    /// balancer's cookie is set only on responses that set this one.
    pub application_cookie: Option<String>,
}

impl StickinessCookie {
    /// Whether a response with these `Set-Cookie` values gets the cookie.
    pub fn is_set_on<'a>(&self, set_cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> bool {
        match &self.application_cookie {
            None => true,
            Some(name) => crate::headers::response_sets_cookie(set_cookie_headers, name),
        }
    }

    /// The `Set-Cookie` value.
    pub fn set_cookie_value(&self) -> String {
        format!(
            "{}={}; Max-Age={}; Path=/",
            self.name, self.value, self.duration_seconds
        )
    }
}

#[derive(Debug, Clone)]
struct TargetEntry {
    target: Target,
    health: HealthRecord,
    in_flight: u32,
    /// Smooth weighted round robin's running weight.
    current_weight: i64,
    /// Until when selection passes over this target because connecting to
    /// it failed (0: never failed).
    avoid_until_ms: u64,
    /// Requests sent to it and errors since the last
    /// [`take_observations`](TargetGroupState::take_observations).
    outcomes: OutcomeCounts,
    /// Automatic target weights' latest decision (its `weighted_random`
    /// weight).
    anomaly: TargetAnomaly,
}

/// The state routing sees: with health checks disabled every registered
/// target that is not draining counts as healthy.
fn effective_state(entry: &TargetEntry, health_checks_enabled: bool) -> TargetHealthState {
    match entry.health.phase {
        Phase::Draining { .. } => TargetHealthState::Draining,
        _ if !health_checks_enabled => TargetHealthState::Healthy,
        _ => entry.health.state(),
    }
}

/// Which targets one selection may choose.
struct Eligibility<'a> {
    health_checks_enabled: bool,
    /// Too few targets are healthy: initial and unhealthy ones are routable.
    fail_open: bool,
    /// Some routable, not excluded target has no recent connection failure:
    /// then targets with one are passed over.
    avoid_failed: bool,
    excluded: &'a [Target],
    now_ms: u64,
}

impl Eligibility<'_> {
    fn new<'a>(
        targets: &[TargetEntry],
        health_checks_enabled: bool,
        minimum: MinimumHealthyTargets,
        excluded: &'a [Target],
        now_ms: u64,
    ) -> Eligibility<'a> {
        let fail_open = fails_open(
            targets
                .iter()
                .map(|entry| effective_state(entry, health_checks_enabled)),
            minimum,
        );
        let mut eligibility = Eligibility {
            health_checks_enabled,
            fail_open,
            avoid_failed: false,
            excluded,
            now_ms,
        };
        eligibility.avoid_failed = targets
            .iter()
            .any(|entry| eligibility.allows(entry) && entry.avoid_until_ms <= now_ms);
        eligibility
    }

    fn allows(&self, entry: &TargetEntry) -> bool {
        is_routable(
            effective_state(entry, self.health_checks_enabled),
            self.fail_open,
        ) && !self.excluded.contains(&entry.target)
            && !(self.avoid_failed && entry.avoid_until_ms > self.now_ms)
    }
}

/// The live state of one target group. Every method is pure; the proxy
/// holds one per target group behind a short lock.
#[derive(Debug, Clone)]
pub struct TargetGroupState {
    config: TargetGroup,
    /// Sorted by target.
    targets: Vec<TargetEntry>,
    /// Where least outstanding requests starts looking (spreads ties).
    next_index: usize,
    /// The `weighted_random` generator's state (a fixed seed: the same
    /// configuration and requests give the same choices).
    random_state: u64,
    /// What CloudWatch's metrics need, since the last
    /// [`take_traffic`](TargetGroupState::take_traffic).
    traffic: TrafficCounts,
}

impl TargetGroupState {
    /// Registers every target of `target_group` at `now_ms`.
    pub fn new(target_group: &TargetGroup, now_ms: u64) -> TargetGroupState {
        let mut state = TargetGroupState {
            config: target_group.clone(),
            targets: Vec::new(),
            next_index: 0,
            random_state: 0,
            traffic: TrafficCounts::default(),
        };
        state.apply_config(target_group, now_ms);
        state
    }

    pub fn config(&self) -> &TargetGroup {
        &self.config
    }

    /// Applies a new configuration: new targets are registered (`initial`),
    /// targets no longer listed start draining for the deregistration delay,
    /// and a draining target listed again is registered anew.
    pub fn apply_config(&mut self, target_group: &TargetGroup, now_ms: u64) {
        self.config = target_group.clone();
        let delay_ms =
            u64::from(target_group.attributes.deregistration_delay_timeout_seconds) * 1000;
        for entry in &mut self.targets {
            let listed = target_group.targets.contains(&entry.target);
            let draining = matches!(entry.health.phase, Phase::Draining { .. });
            if !listed {
                entry.health.start_draining(now_ms.saturating_add(delay_ms));
            } else if draining {
                entry.health = HealthRecord::registered();
            }
        }
        for &target in &target_group.targets {
            if let Err(position) = self
                .targets
                .binary_search_by(|entry| entry.target.cmp(&target))
            {
                self.targets.insert(
                    position,
                    TargetEntry {
                        target,
                        health: HealthRecord::registered(),
                        in_flight: 0,
                        current_weight: 0,
                        avoid_until_ms: 0,
                        outcomes: OutcomeCounts::default(),
                        anomaly: TargetAnomaly::NORMAL,
                    },
                );
            }
        }
        self.complete_deregistrations(now_ms);
    }

    /// Applies one health check result of `target`.
    pub fn record_health_check(
        &mut self,
        target: Target,
        outcome: HealthCheckOutcome,
        now_ms: u64,
    ) {
        let check = &self.config.health_check;
        let (healthy, unhealthy) = (
            check.healthy_threshold_count,
            check.unhealthy_threshold_count,
        );
        if let Some(entry) = self.entry_mut(target) {
            entry.health.record(outcome, healthy, unhealthy, now_ms);
        }
    }

    /// Ends the deregistration of draining targets with no request in flight
    /// or whose deregistration delay is over; returns them (they are now
    /// `unused`).
    pub fn complete_deregistrations(&mut self, now_ms: u64) -> Vec<Target> {
        let mut completed = Vec::new();
        self.targets.retain(|entry| match entry.health.phase {
            Phase::Draining { deadline_ms } if entry.in_flight == 0 || now_ms >= deadline_ms => {
                completed.push(entry.target);
                false
            }
            _ => true,
        });
        completed
    }

    /// The targets health checks go to: every registered target that is not
    /// draining; none when the group's health checks are disabled.
    pub fn health_check_targets(&self) -> Vec<Target> {
        if !self.config.health_check.enabled {
            return Vec::new();
        }
        self.targets
            .iter()
            .filter(|entry| !matches!(entry.health.phase, Phase::Draining { .. }))
            .map(|entry| entry.target)
            .collect()
    }

    /// DescribeTargetHealth for one target (`unused` /
    /// `Target.NotRegistered` if it is not registered). With health checks
    /// disabled a registered target that is not draining reports `healthy`
    /// (it receives traffic; the ELBv2 API itself answers ALB's `unavailable`
    /// / `Target.HealthCheckDisabled` for such groups). Connection failures
    /// seen by the proxy never show here.
    pub fn target_health(&self, target: Target) -> TargetHealth {
        self.entry(target)
            .map(|entry| self.health_of(entry))
            .unwrap_or_else(TargetHealth::not_registered)
    }

    /// DescribeTargetHealth for every registered target, sorted by target.
    pub fn describe_target_health(&self) -> Vec<(Target, TargetHealth)> {
        self.targets
            .iter()
            .map(|entry| (entry.target, self.health_of(entry)))
            .collect()
    }

    fn health_of(&self, entry: &TargetEntry) -> TargetHealth {
        match effective_state(entry, self.config.health_check.enabled) {
            TargetHealthState::Healthy => TargetHealth {
                state: TargetHealthState::Healthy,
                reason: None,
                description: None,
            },
            _ => entry.health.health(),
        }
    }

    pub fn routable_targets(&self) -> Vec<Target> {
        let enabled = self.config.health_check.enabled;
        routable_targets(
            self.targets
                .iter()
                .map(|entry| (entry.target, effective_state(entry, enabled))),
            self.config.attributes.unhealthy_state_routing,
        )
    }

    /// The cookie whose value names the sticky target of a request: `AWSALB`
    /// or `AWSALBAPP-0`, or none when stickiness is off.
    pub fn stickiness_cookie_name(&self) -> Option<&'static str> {
        let stickiness = &self.config.attributes.stickiness;
        stickiness.enabled.then_some(match stickiness.kind {
            StickinessKind::LbCookie => STICKINESS_COOKIE_NAME,
            StickinessKind::AppCookie => APP_STICKINESS_COOKIE_NAME,
        })
    }

    /// Connecting to `target` failed: selection passes over it for
    /// [`CONNECTION_FAILURE_AVOIDANCE_MS`] unless every routable target
    /// failed recently. Its reported health does not change.
    /// It counts as an error for anomaly detection.
    pub fn record_connection_failure(&mut self, target: Target, now_ms: u64) {
        if let Some(entry) = self.entry_mut(target) {
            entry.avoid_until_ms = now_ms.saturating_add(CONNECTION_FAILURE_AVOIDANCE_MS);
            entry.outcomes.errors = entry.outcomes.errors.saturating_add(1);
        }
    }

    /// `target` answered a request with a 5xx (or failed it after the
    /// connection was made): an error for anomaly detection.
    pub fn record_target_error(&mut self, target: Target) {
        if let Some(entry) = self.entry_mut(target) {
            entry.outcomes.errors = entry.outcomes.errors.saturating_add(1);
        }
    }

    /// What anomaly detection needs of every target that is not draining:
    /// whether it is healthy, and the requests selected for it and errors
    /// since the previous call (which resets them).
    pub fn take_observations(&mut self) -> Vec<TargetObservation> {
        let enabled = self.config.health_check.enabled;
        let mut observations = Vec::with_capacity(self.targets.len());
        for entry in &mut self.targets {
            let state = effective_state(entry, enabled);
            let outcomes = std::mem::take(&mut entry.outcomes);
            if state != TargetHealthState::Draining {
                observations.push(TargetObservation {
                    target: entry.target,
                    healthy: state == TargetHealthState::Healthy,
                    outcomes,
                });
            }
        }
        observations
    }

    /// Applies automatic target weights' decisions: `weighted_random`
    /// draws in proportion to these weights. Targets not listed get their
    /// full weight.
    pub fn apply_anomaly_decisions(&mut self, decisions: &[(Target, TargetAnomaly)]) {
        for entry in &mut self.targets {
            entry.anomaly = decisions
                .iter()
                .find(|(target, _)| *target == entry.target)
                .map_or(TargetAnomaly::NORMAL, |(_, anomaly)| *anomaly);
        }
    }

    /// DescribeTargetHealth's `AnomalyDetection` for `target`: only for a
    /// registered target of a `weighted_random` group.
    pub fn target_anomaly(&self, target: Target) -> Option<TargetAnomaly> {
        if self.config.attributes.load_balancing_algorithm_type
            != LoadBalancingAlgorithm::WeightedRandom
        {
            return None;
        }
        self.entry(target).map(|entry| entry.anomaly)
    }

    /// Connecting to `target` succeeded: forget an earlier failure.
    pub fn record_connection_success(&mut self, target: Target) {
        if let Some(entry) = self.entry_mut(target) {
            entry.avoid_until_ms = 0;
        }
    }

    /// Whether `target` is registered (draining included).
    pub fn is_registered(&self, target: Target) -> bool {
        self.entry(target).is_some()
    }

    pub fn in_flight(&self, target: Target) -> u32 {
        self.entry(target).map_or(0, |entry| entry.in_flight)
    }

    /// Chooses the target of a new request and counts it in flight (call
    /// [`request_finished`](Self::request_finished) when it ends).
    /// `sticky_target` is what the request's stickiness cookie (see
    /// [`stickiness_cookie_name`](Self::stickiness_cookie_name)) names; it
    /// is honoured if stickiness is on and that target is routable. `None` when
    /// no target is routable (ALB answers 503). Targets whose connection
    /// failed recently are passed over while another routable target has no
    /// such failure.
    pub fn select(&mut self, sticky_target: Option<Target>, now_ms: u64) -> Option<Selection> {
        self.select_excluding(sticky_target, &[], now_ms)
    }

    /// [`select`](Self::select) for a retry: never one of `excluded` (the
    /// targets this request already failed on); `None` when no other target
    /// is routable.
    pub fn select_excluding(
        &mut self,
        sticky_target: Option<Target>,
        excluded: &[Target],
        now_ms: u64,
    ) -> Option<Selection> {
        let eligibility = Eligibility::new(
            &self.targets,
            self.config.health_check.enabled,
            self.config.attributes.unhealthy_state_routing,
            excluded,
            now_ms,
        );
        let stickiness = &self.config.attributes.stickiness;
        let sticky_index = sticky_target
            .filter(|_| stickiness.enabled)
            .and_then(|target| self.index_of(target))
            .filter(|&index| eligibility.allows(&self.targets[index]));
        let index = match sticky_index {
            Some(index) => index,
            None => match self.config.attributes.load_balancing_algorithm_type {
                LoadBalancingAlgorithm::RoundRobin => self.round_robin(&eligibility, now_ms)?,
                LoadBalancingAlgorithm::LeastOutstandingRequests => {
                    self.least_outstanding(&eligibility)?
                }
                LoadBalancingAlgorithm::WeightedRandom => self.weighted_random(&eligibility)?,
            },
        };
        let entry = &mut self.targets[index];
        entry.in_flight = entry.in_flight.saturating_add(1);
        entry.outcomes.requests = entry.outcomes.requests.saturating_add(1);
        let target = entry.target;
        let stickiness = &self.config.attributes.stickiness;
        Some(Selection {
            target,
            stickiness_cookie: stickiness.enabled.then(|| match stickiness.kind {
                StickinessKind::LbCookie => StickinessCookie {
                    name: STICKINESS_COOKIE_NAME,
                    value: encode_stickiness_cookie(target),
                    duration_seconds: stickiness.lb_cookie_duration_seconds,
                    application_cookie: None,
                },
                StickinessKind::AppCookie => StickinessCookie {
                    name: APP_STICKINESS_COOKIE_NAME,
                    value: encode_stickiness_cookie(target),
                    duration_seconds: stickiness.app_cookie_duration_seconds,
                    application_cookie: Some(stickiness.app_cookie_name.clone()),
                },
            }),
        })
    }

    /// A request to `target` ended (answered, failed or abandoned). A
    /// draining target with nothing left in flight completes its
    /// deregistration.
    pub fn request_finished(&mut self, target: Target, now_ms: u64) {
        if let Some(entry) = self.entry_mut(target) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if entry.in_flight == 0 && matches!(entry.health.phase, Phase::Draining { .. }) {
                self.complete_deregistrations(now_ms);
            }
        }
    }

    /// `target` answered a request of this group with `status_code`, its
    /// response head `response_time_us` after the request was sent: counts
    /// for RequestCount, HTTPCode_Target_*XX_Count and TargetResponseTime.
    /// Count each client request once (on its last target), whether or not
    /// the target is still registered.
    pub fn record_target_response(
        &mut self,
        target: Target,
        status_code: u16,
        response_time_us: u64,
    ) {
        self.traffic
            .record_response(target, status_code, response_time_us);
    }

    /// A request for which `target` was chosen got no answer from it (the
    /// load balancer answered 502 or 504, or the client went away): counts
    /// for RequestCount only.
    pub fn record_target_unanswered(&mut self, target: Target) {
        self.traffic.record_unanswered(target);
    }

    /// Connecting to `target` failed: TargetConnectionErrorCount.
    pub fn record_target_connection_error(&mut self, target: Target) {
        self.traffic.record_connection_error(target);
    }

    /// The traffic counted since the previous call (which resets it); the
    /// health gauges are left at zero (see
    /// [`host_counts`](Self::host_counts)).
    pub fn take_traffic(&mut self) -> TargetGroupTraffic {
        let targets = &self.targets;
        self.traffic.take(|target| {
            targets
                .binary_search_by(|entry| entry.target.cmp(&target))
                .is_ok()
        })
    }

    /// HealthyHostCount and UnHealthyHostCount: registered targets that are
    /// `healthy` and `unhealthy` (with health checks disabled, every target
    /// not draining is healthy).
    pub fn host_counts(&self) -> (u32, u32) {
        let enabled = self.config.health_check.enabled;
        let mut counts = (0, 0);
        for entry in &self.targets {
            match effective_state(entry, enabled) {
                TargetHealthState::Healthy => counts.0 += 1,
                TargetHealthState::Unhealthy => counts.1 += 1,
                _ => {}
            }
        }
        counts
    }

    /// Smooth weighted round robin: each routable target gains its weight,
    /// the richest wins and pays the total. With equal weights this is plain
    /// rotation; slow start lowers a new target's weight.
    fn round_robin(&mut self, eligibility: &Eligibility<'_>, now_ms: u64) -> Option<usize> {
        let slow_start_ms = u64::from(self.config.attributes.slow_start_duration_seconds) * 1000;
        let mut total_weight = 0i64;
        // (index, current weight) of the richest routable target so far.
        let mut best: Option<(usize, i64)> = None;
        for (index, entry) in self.targets.iter_mut().enumerate() {
            if !eligibility.allows(entry) {
                continue;
            }
            let weight = slow_start_weight(entry.health.healthy_since_ms, slow_start_ms, now_ms);
            entry.current_weight += weight;
            total_weight += weight;
            if best.is_none_or(|(_, richest)| entry.current_weight > richest) {
                best = Some((index, entry.current_weight));
            }
        }
        let (best, _) = best?;
        self.targets[best].current_weight -= total_weight;
        Some(best)
    }

    fn least_outstanding(&mut self, eligibility: &Eligibility<'_>) -> Option<usize> {
        let count = self.targets.len();
        let mut best: Option<usize> = None;
        for offset in 0..count {
            let index = (self.next_index + offset) % count;
            let entry = &self.targets[index];
            if eligibility.allows(entry)
                && best.is_none_or(|best| entry.in_flight < self.targets[best].in_flight)
            {
                best = Some(index);
            }
        }
        let best = best?;
        self.next_index = (best + 1) % count;
        Some(best)
    }

    /// A draw among the eligible targets in proportion to their weights
    /// (automatic target weights'; all full unless an anomalous target is
    /// mitigated), from the state's own seeded generator (splitmix64).
    fn weighted_random(&mut self, eligibility: &Eligibility<'_>) -> Option<usize> {
        let total_weight: u64 = self
            .targets
            .iter()
            .filter(|entry| eligibility.allows(entry))
            .map(|entry| u64::from(entry.anomaly.weight.max(1)))
            .sum();
        if total_weight == 0 {
            return None;
        }
        self.random_state = self.random_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut draw = self.random_state;
        draw = (draw ^ (draw >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        draw = (draw ^ (draw >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        draw ^= draw >> 31;
        let mut remaining = draw % total_weight;
        for (index, entry) in self.targets.iter().enumerate() {
            if !eligibility.allows(entry) {
                continue;
            }
            let weight = u64::from(entry.anomaly.weight.max(1));
            if remaining < weight {
                return Some(index);
            }
            remaining -= weight;
        }
        None
    }

    fn index_of(&self, target: Target) -> Option<usize> {
        self.targets
            .binary_search_by(|entry| entry.target.cmp(&target))
            .ok()
    }

    fn entry(&self, target: Target) -> Option<&TargetEntry> {
        self.index_of(target).map(|index| &self.targets[index])
    }

    fn entry_mut(&mut self, target: Target) -> Option<&mut TargetEntry> {
        self.index_of(target).map(|index| &mut self.targets[index])
    }
}

/// A target's round robin weight: full, or during the slow start window
/// after it became healthy, a linear ramp from 1.
fn slow_start_weight(healthy_since_ms: Option<u64>, slow_start_ms: u64, now_ms: u64) -> i64 {
    match healthy_since_ms {
        Some(since) if slow_start_ms > 0 && now_ms.saturating_sub(since) < slow_start_ms => {
            let elapsed = now_ms.saturating_sub(since) as i64;
            (FULL_WEIGHT * elapsed / slow_start_ms as i64).max(1)
        }
        _ => FULL_WEIGHT,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::config::{HealthCheck, Stickiness, TargetGroupAttributes};
    use HealthCheckOutcome::*;

    fn target(last_octet: u8) -> Target {
        Target {
            id: format!("10.0.0.{last_octet}").parse().unwrap(),
            port: 8080,
        }
    }

    fn group(targets: &[u8], edit: impl FnOnce(&mut TargetGroupAttributes)) -> TargetGroup {
        let mut attributes = TargetGroupAttributes::default();
        edit(&mut attributes);
        TargetGroup {
            target_group_arn: "tg".to_string(),
            targets: targets.iter().map(|&n| target(n)).collect(),
            health_check: HealthCheck {
                healthy_threshold_count: 2,
                unhealthy_threshold_count: 2,
                ..HealthCheck::default()
            },
            attributes,
        }
    }

    fn make_healthy(state: &mut TargetGroupState, targets: &[u8], now_ms: u64) {
        for &n in targets {
            state.record_health_check(target(n), Passed, now_ms);
            state.record_health_check(target(n), Passed, now_ms);
        }
    }

    fn make_unhealthy(state: &mut TargetGroupState, targets: &[u8]) {
        for &n in targets {
            state.record_health_check(target(n), Timeout, 0);
            state.record_health_check(target(n), Timeout, 0);
        }
    }

    fn state_name(state: TargetHealthState) -> &'static str {
        state.as_elbv2()
    }

    /// Selects `requests` times (finishing each request at once) and counts
    /// per target's last octet.
    fn distribution(state: &mut TargetGroupState, requests: u32, now_ms: u64) -> BTreeMap<u8, u32> {
        let mut counts = BTreeMap::new();
        for _ in 0..requests {
            if let Some(selection) = state.select(None, now_ms) {
                let octet = match selection.target.id {
                    std::net::IpAddr::V4(v4) => v4.octets()[3],
                    std::net::IpAddr::V6(_) => unreachable!(),
                };
                *counts.entry(octet).or_insert(0) += 1;
                state.request_finished(selection.target, now_ms);
            }
        }
        counts
    }

    #[test]
    fn routable_targets_rules() {
        use TargetHealthState::*;
        for (states, expected) in [
            (&[Healthy, Unhealthy, Initial][..], &[1u8][..]),
            (&[Healthy, Healthy, Draining], &[1, 2]),
            // Fail open: nothing healthy, so every non-draining target.
            (&[Unhealthy, Initial, Draining, Unused], &[1, 2]),
            (&[Draining, Draining], &[]),
            (&[], &[]),
        ] {
            let targets = states
                .iter()
                .enumerate()
                .map(|(index, state)| (target(index as u8 + 1), *state));
            let expected: Vec<Target> = expected.iter().map(|&n| target(n)).collect();
            assert_eq!(
                routable_targets(targets, MinimumHealthyTargets::default()),
                expected,
                "{states:?}"
            );
        }
    }

    #[test]
    fn round_robin_over_healthy_targets_and_fail_open() {
        let mut state = TargetGroupState::new(&group(&[1, 2, 3], |_| {}), 0);
        // Nothing healthy yet: fail open over all three.
        assert_eq!(
            distribution(&mut state, 30, 0),
            BTreeMap::from([(1, 10), (2, 10), (3, 10)])
        );
        make_healthy(&mut state, &[1, 2], 0);
        assert_eq!(
            distribution(&mut state, 10, 0),
            BTreeMap::from([(1, 5), (2, 5)])
        );
        make_unhealthy(&mut state, &[1, 2]);
        make_unhealthy(&mut state, &[3]);
        assert_eq!(
            distribution(&mut state, 3, 0),
            BTreeMap::from([(1, 1), (2, 1), (3, 1)])
        );
    }

    #[test]
    fn least_outstanding_requests_prefers_the_idlest() {
        let mut state = TargetGroupState::new(
            &group(&[1, 2, 3], |a| {
                a.load_balancing_algorithm_type = LoadBalancingAlgorithm::LeastOutstandingRequests
            }),
            0,
        );
        make_healthy(&mut state, &[1, 2, 3], 0);
        let first = state.select(None, 0).unwrap().target;
        let second = state.select(None, 0).unwrap().target;
        let third = state.select(None, 0).unwrap().target;
        let mut all = vec![first, second, third];
        all.sort();
        assert_eq!(all, vec![target(1), target(2), target(3)]);
        state.request_finished(second, 0);
        assert_eq!(state.select(None, 0).unwrap().target, second);
        assert_eq!(state.in_flight(second), 1);
    }

    #[test]
    fn weighted_random_spreads_over_routable_targets() {
        let mut state = TargetGroupState::new(
            &group(&[1, 2, 3, 4], |a| {
                a.load_balancing_algorithm_type = LoadBalancingAlgorithm::WeightedRandom
            }),
            0,
        );
        make_healthy(&mut state, &[1, 2, 3], 0);
        let counts = distribution(&mut state, 3000, 0);
        assert_eq!(counts.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        for (octet, count) in &counts {
            assert!((800..1200).contains(count), "{octet}: {count} of 3000");
        }
        // Not a rotation.
        let sequence: Vec<Target> = (0..12)
            .map(|_| state.select(None, 0).unwrap().target)
            .collect();
        assert!(sequence.windows(3).any(|w| w[0] == w[1] || w[0] == w[2]));
    }

    #[test]
    fn weighted_random_follows_automatic_target_weights() {
        use crate::anomaly::{AnomalyResult, TargetAnomaly};
        let mut state = TargetGroupState::new(
            &group(&[1, 2, 3, 4], |a| {
                a.load_balancing_algorithm_type = LoadBalancingAlgorithm::WeightedRandom
            }),
            0,
        );
        make_healthy(&mut state, &[1, 2, 3], 0);
        assert_eq!(state.target_anomaly(target(1)), Some(TargetAnomaly::NORMAL));
        let counts = distribution(&mut state, 300, 0);
        state.record_target_error(target(3));
        state.record_connection_failure(target(3), 0);
        state.record_connection_success(target(3));
        // Requests and errors per target since the last call; the unhealthy
        // target 4 is observed too, draining ones are not.
        let observations = state.take_observations();
        let seen: Vec<(u8, bool, u64, u64)> = observations
            .iter()
            .map(|o| {
                let octet = match o.target.id {
                    std::net::IpAddr::V4(v4) => v4.octets()[3],
                    std::net::IpAddr::V6(_) => unreachable!(),
                };
                (octet, o.healthy, o.outcomes.requests, o.outcomes.errors)
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, true, u64::from(counts[&1]), 0),
                (2, true, u64::from(counts[&2]), 0),
                (3, true, u64::from(counts[&3]), 2),
                (4, false, 0, 0),
            ]
        );
        assert!(state
            .take_observations()
            .iter()
            .all(|o| o.outcomes.requests == 0));
        // Target 3 at a tenth of the others' weight gets about 1 in 21.
        let mitigated = TargetAnomaly {
            result: AnomalyResult::Anomalous,
            mitigation_in_effect: true,
            weight: 100,
        };
        state.apply_anomaly_decisions(&[(target(3), mitigated)]);
        assert_eq!(state.target_anomaly(target(3)), Some(mitigated));
        let counts = distribution(&mut state, 2100, 0);
        assert!((50..150).contains(&counts[&3]), "{counts:?}");
        assert!(counts[&1] > 900 && counts[&2] > 900, "{counts:?}");
        // No decision for a target: full weight again.
        state.apply_anomaly_decisions(&[]);
        let counts = distribution(&mut state, 3000, 0);
        assert!((800..1200).contains(&counts[&3]), "{counts:?}");
        // Other algorithms report no anomaly detection.
        let round_robin = TargetGroupState::new(&group(&[1], |_| {}), 0);
        assert_eq!(round_robin.target_anomaly(target(1)), None);
    }

    #[test]
    fn slow_start_ramps_a_new_target_up() {
        let mut state =
            TargetGroupState::new(&group(&[1, 2], |a| a.slow_start_duration_seconds = 100), 0);
        make_healthy(&mut state, &[1], 0);
        // Target 2 becomes healthy 200 s later; target 1's window is over.
        make_healthy(&mut state, &[2], 200_000);
        // 10% into the window: weight 100 against 1000.
        let counts = distribution(&mut state, 1100, 210_000);
        assert_eq!(counts, BTreeMap::from([(1, 1000), (2, 100)]));
        // After the window: even.
        let counts = distribution(&mut state, 1000, 300_000);
        assert_eq!(counts, BTreeMap::from([(1, 500), (2, 500)]));
    }

    #[test]
    fn stickiness_pins_to_a_routable_target() {
        let mut state = TargetGroupState::new(
            &group(&[1, 2], |a| {
                a.stickiness = Stickiness::lb_cookie(60);
            }),
            0,
        );
        make_healthy(&mut state, &[1, 2], 0);
        assert_eq!(state.stickiness_cookie_name(), Some("AWSALB"));
        let first = state.select(None, 0).unwrap();
        let cookie = first.stickiness_cookie.clone().unwrap();
        assert_eq!((cookie.name, cookie.duration_seconds), ("AWSALB", 60));
        assert!(cookie.is_set_on([]));
        assert_eq!(
            cookie.set_cookie_value(),
            format!("AWSALB={}; Max-Age=60; Path=/", cookie.value)
        );
        let sticky = decode_stickiness_cookie(&cookie.value);
        assert_eq!(sticky, Some(first.target));
        for _ in 0..5 {
            assert_eq!(state.select(sticky, 0).unwrap().target, first.target);
        }
        // Once the sticky target is unhealthy the request goes elsewhere.
        let octet = if first.target == target(1) { 1 } else { 2 };
        make_unhealthy(&mut state, &[octet]);
        assert_ne!(state.select(sticky, 0).unwrap().target, first.target);
        assert_eq!(decode_stickiness_cookie("zz"), None);
        assert_eq!(decode_stickiness_cookie("414243"), None);
    }

    #[test]
    fn app_cookie_stickiness_follows_the_applications_cookie() {
        let mut state = TargetGroupState::new(
            &group(&[1, 2], |a| {
                a.stickiness = Stickiness::app_cookie("SESSION", 120)
            }),
            0,
        );
        make_healthy(&mut state, &[1, 2], 0);
        assert_eq!(state.stickiness_cookie_name(), Some("AWSALBAPP-0"));
        let first = state.select(None, 0).unwrap();
        let cookie = first.stickiness_cookie.clone().unwrap();
        assert_eq!((cookie.name, cookie.duration_seconds), ("AWSALBAPP-0", 120));
        // Set only on a response setting the application's cookie.
        assert!(!cookie.is_set_on([&b"other=1"[..]]));
        assert!(cookie.is_set_on([&b"other=1"[..], b"SESSION=abc; Path=/"]));
        let sticky = decode_stickiness_cookie(&cookie.value);
        assert_eq!(sticky, Some(first.target));
        for _ in 0..5 {
            assert_eq!(state.select(sticky, 0).unwrap().target, first.target);
        }
    }

    #[test]
    fn too_few_healthy_targets_fail_open() {
        use crate::config::MinimumHealthyTargets;
        let mut state = TargetGroupState::new(
            &group(&[1, 2, 3, 4], |a| {
                a.unhealthy_state_routing = MinimumHealthyTargets {
                    count: 2,
                    percentage: None,
                }
            }),
            0,
        );
        make_healthy(&mut state, &[1], 0);
        make_unhealthy(&mut state, &[2, 3]);
        // One healthy of the two required: every target that is not draining.
        assert_eq!(
            state.routable_targets(),
            vec![target(1), target(2), target(3), target(4)]
        );
        make_healthy(&mut state, &[2], 0);
        assert_eq!(state.routable_targets(), vec![target(1), target(2)]);
        assert_eq!(
            distribution(&mut state, 4, 0),
            BTreeMap::from([(1, 2), (2, 2)])
        );
        // A percentage: 75% of four is three.
        let mut config = state.config().clone();
        config.attributes.unhealthy_state_routing.percentage = Some(75);
        state.apply_config(&config, 0);
        assert_eq!(state.routable_targets().len(), 4);
        assert_eq!(distribution(&mut state, 4, 0).len(), 4);
        make_healthy(&mut state, &[3], 0);
        assert_eq!(state.routable_targets().len(), 3);
    }

    #[test]
    fn stickiness_off_ignores_the_cookie() {
        let mut state = TargetGroupState::new(&group(&[1, 2], |_| {}), 0);
        make_healthy(&mut state, &[1, 2], 0);
        let a = state.select(Some(target(1)), 0).unwrap();
        let b = state.select(Some(target(1)), 0).unwrap();
        assert_ne!(a.target, b.target);
        assert_eq!(a.stickiness_cookie, None);
    }

    #[test]
    fn connection_failures_are_passed_over_briefly() {
        let mut state = TargetGroupState::new(&group(&[1, 2, 3], |_| {}), 0);
        make_healthy(&mut state, &[1, 2, 3], 0);
        state.record_connection_failure(target(2), 1_000);
        assert_eq!(
            distribution(&mut state, 10, 1_000),
            BTreeMap::from([(1, 5), (3, 5)])
        );
        // Reported health is the health checks' alone.
        assert_eq!(state_name(state.target_health(target(2)).state), "healthy");
        // Every routable target failed recently: all of them again.
        state.record_connection_failure(target(1), 1_000);
        state.record_connection_failure(target(3), 1_000);
        assert_eq!(
            distribution(&mut state, 3, 2_000),
            BTreeMap::from([(1, 1), (2, 1), (3, 1)])
        );
        // The avoidance ends, or a connection succeeds.
        let after = 1_000 + CONNECTION_FAILURE_AVOIDANCE_MS;
        state.record_connection_failure(target(1), after);
        state.record_connection_success(target(3));
        assert_eq!(
            distribution(&mut state, 4, after),
            BTreeMap::from([(2, 2), (3, 2)])
        );
    }

    #[test]
    fn a_retry_excludes_the_targets_already_tried() {
        for algorithm in [
            LoadBalancingAlgorithm::RoundRobin,
            LoadBalancingAlgorithm::LeastOutstandingRequests,
        ] {
            let mut state = TargetGroupState::new(
                &group(&[1, 2], |a| {
                    a.load_balancing_algorithm_type = algorithm;
                    a.stickiness = Stickiness::lb_cookie(60);
                }),
                0,
            );
            make_healthy(&mut state, &[1, 2], 0);
            for _ in 0..4 {
                let retry = state.select_excluding(Some(target(1)), &[target(1)], 0);
                assert_eq!(retry.map(|s| s.target), Some(target(2)), "{algorithm:?}");
            }
            assert_eq!(
                state.select_excluding(None, &[target(1), target(2)], 0),
                None
            );
            assert_eq!(state.in_flight(target(2)), 4);
        }
    }

    #[test]
    fn disabled_health_checks_route_to_every_registered_target() {
        let mut config = group(&[1, 2], |_| {});
        config.health_check.enabled = false;
        let mut state = TargetGroupState::new(&config, 0);
        assert_eq!(state.health_check_targets(), vec![]);
        assert_eq!(state_name(state.target_health(target(1)).state), "healthy");
        assert_eq!(state.target_health(target(1)).reason, None);
        assert_eq!(
            distribution(&mut state, 4, 0),
            BTreeMap::from([(1, 2), (2, 2)])
        );
        // Draining targets still drain.
        let mut config = group(&[2], |a| a.deregistration_delay_timeout_seconds = 10);
        config.health_check.enabled = false;
        let _in_flight = state.select(Some(target(1)), 0);
        state.apply_config(&config, 0);
        let _ = state.select(None, 0);
        assert_eq!(state_name(state.target_health(target(1)).state), "draining");
        assert_eq!(state.routable_targets(), vec![target(2)]);
        assert_eq!(distribution(&mut state, 2, 0), BTreeMap::from([(2, 2)]));
        // Enabling checks again: routing follows them (nothing healthy yet,
        // so fail open over the registered target).
        let mut enabled = config.clone();
        enabled.health_check.enabled = true;
        state.apply_config(&enabled, 0);
        assert_eq!(state.health_check_targets(), vec![target(2)]);
        assert_eq!(state_name(state.target_health(target(2)).state), "initial");
    }

    #[test]
    fn deregistration_drains_then_unused() {
        let mut state = TargetGroupState::new(
            &group(&[1, 2], |a| a.deregistration_delay_timeout_seconds = 10),
            0,
        );
        make_healthy(&mut state, &[1, 2], 0);
        let in_flight: Vec<Target> = (0..4)
            .map(|_| state.select(None, 0).unwrap().target)
            .collect();
        assert_eq!(state.in_flight(target(1)), 2);
        state.apply_config(
            &group(&[2], |a| a.deregistration_delay_timeout_seconds = 10),
            1_000,
        );
        assert_eq!(state_name(state.target_health(target(1)).state), "draining");
        assert_eq!(state.health_check_targets(), vec![target(2)]);
        // New requests avoid the draining target.
        assert_eq!(distribution(&mut state, 4, 1_000), BTreeMap::from([(2, 4)]));
        // In-flight requests finish; the last one completes the deregistration.
        let to_one: Vec<Target> = in_flight.into_iter().filter(|t| *t == target(1)).collect();
        state.request_finished(to_one[0], 2_000);
        assert_eq!(state_name(state.target_health(target(1)).state), "draining");
        state.request_finished(to_one[1], 2_000);
        assert_eq!(
            state.target_health(target(1)),
            TargetHealth::not_registered()
        );

        // With a request stuck in flight the delay ends the draining.
        let stuck = state.select(None, 3_000).unwrap().target;
        state.apply_config(
            &group(&[], |a| a.deregistration_delay_timeout_seconds = 10),
            3_000,
        );
        assert_eq!(state.complete_deregistrations(12_999), vec![]);
        assert_eq!(state.complete_deregistrations(13_000), vec![stuck]);
        assert_eq!(state.select(None, 13_000), None);
    }

    #[test]
    fn reregistering_a_draining_target_starts_over() {
        let mut state = TargetGroupState::new(&group(&[1], |_| {}), 0);
        make_healthy(&mut state, &[1], 0);
        let _in_flight = state.select(None, 0).unwrap();
        state.apply_config(&group(&[], |_| {}), 0);
        assert_eq!(state_name(state.target_health(target(1)).state), "draining");
        state.apply_config(&group(&[1], |_| {}), 0);
        assert_eq!(state_name(state.target_health(target(1)).state), "initial");
        assert_eq!(state.in_flight(target(1)), 1);
    }

    #[test]
    fn host_counts_count_healthy_and_unhealthy_targets_only() {
        let mut state = TargetGroupState::new(&group(&[1, 2, 3, 4], |_| {}), 0);
        assert_eq!(state.host_counts(), (0, 0), "initial counts in neither");
        make_healthy(&mut state, &[1, 2], 0);
        make_unhealthy(&mut state, &[3]);
        assert_eq!(state.host_counts(), (2, 1));
        // Draining counts in neither.
        state.select(Some(target(1)), 1).unwrap();
        state.apply_config(&group(&[2, 3, 4], |_| {}), 1);
        assert_eq!(state.host_counts(), (1, 1));
        // Without health checks every target not draining is healthy.
        let mut unchecked = group(&[1, 2], |_| {});
        unchecked.health_check.enabled = false;
        assert_eq!(TargetGroupState::new(&unchecked, 0).host_counts(), (2, 0));
    }

    #[test]
    fn traffic_of_a_deregistered_target_is_reported_once_then_forgotten() {
        let mut state = TargetGroupState::new(&group(&[1, 2], |_| {}), 0);
        state.record_target_response(target(1), 200, 1_500);
        state.record_target_unanswered(target(2));
        state.record_target_connection_error(target(2));
        // Target 2 leaves (nothing in flight: at once).
        state.apply_config(&group(&[1], |_| {}), 1);
        let traffic = state.take_traffic();
        assert_eq!(traffic.targets[&target(1)].http_code_target_2xx_count, 1);
        assert_eq!(
            traffic.targets[&target(2)],
            crate::TargetCounts {
                request_count: 1,
                target_connection_error_count: 1,
                ..crate::TargetCounts::default()
            }
        );
        assert_eq!(traffic.response_times.values_s(), vec![(0.001_55, 1)]);
        assert_eq!(traffic.totals().request_count, 2);
        let next = state.take_traffic();
        assert!(next.targets.is_empty() && next.response_times.is_empty());
        assert_eq!(state.traffic.take(|_| true), TargetGroupTraffic::default());
    }

    proptest! {
        #[test]
        fn round_robin_is_fair(count in 1u8..8, rounds in 1u32..20, unhealthy_mask in any::<u8>()) {
            let octets: Vec<u8> = (1..=count).collect();
            let mut state = TargetGroupState::new(&group(&octets, |_| {}), 0);
            make_healthy(&mut state, &octets, 0);
            let unhealthy: Vec<u8> = octets.iter().copied().filter(|n| unhealthy_mask & (1 << (n - 1)) != 0).collect();
            make_unhealthy(&mut state, &unhealthy);
            let routable = state.routable_targets();
            let counts = distribution(&mut state, rounds * routable.len() as u32, 0);
            prop_assert_eq!(counts.len(), routable.len());
            for (_, served) in counts {
                prop_assert_eq!(served, rounds);
            }
        }

        #[test]
        fn a_draining_target_never_gets_new_requests(
            operations in proptest::collection::vec((0u8..6, 1u8..5), 1..200),
            least_outstanding in any::<bool>(),
        ) {
            let algorithm = if least_outstanding {
                LoadBalancingAlgorithm::LeastOutstandingRequests
            } else {
                LoadBalancingAlgorithm::RoundRobin
            };
            let mut registered: Vec<u8> = vec![1, 2, 3, 4];
            let make_group = |registered: &[u8]| group(registered, |a| {
                a.load_balancing_algorithm_type = algorithm;
                a.deregistration_delay_timeout_seconds = 5;
            });
            let mut state = TargetGroupState::new(&make_group(&registered), 0);
            let mut in_flight: Vec<Target> = Vec::new();
            for (step, (operation, octet)) in operations.into_iter().enumerate() {
                let now_ms = step as u64 * 1_000;
                match operation {
                    0 => {
                        if let Some(selection) = state.select(None, now_ms) {
                            let health = state.target_health(selection.target).state;
                            prop_assert!(matches!(health, TargetHealthState::Healthy | TargetHealthState::Initial | TargetHealthState::Unhealthy));
                            let octet = match selection.target.id {
                                std::net::IpAddr::V4(v4) => v4.octets()[3],
                                std::net::IpAddr::V6(_) => unreachable!(),
                            };
                            prop_assert!(registered.contains(&octet), "{} is not registered", octet);
                            in_flight.push(selection.target);
                        }
                    }
                    1 => {
                        if !in_flight.is_empty() {
                            let finished = in_flight.remove(usize::from(octet) % in_flight.len());
                            state.request_finished(finished, now_ms);
                        }
                    }
                    2 => state.record_health_check(target(octet), Passed, now_ms),
                    3 => state.record_health_check(target(octet), ConnectionFailed, now_ms),
                    4 => {
                        registered.retain(|n| *n != octet);
                        state.apply_config(&make_group(&registered), now_ms);
                    }
                    _ => {
                        if !registered.contains(&octet) {
                            registered.push(octet);
                            registered.sort();
                        }
                        state.apply_config(&make_group(&registered), now_ms);
                    }
                }
                state.complete_deregistrations(now_ms);
                // Fail-open never includes draining targets, and healthy
                // targets exclude everything else.
                let routable = state.routable_targets();
                let any_healthy = state.describe_target_health().iter().any(|(_, h)| h.state == TargetHealthState::Healthy);
                for t in routable {
                    let health = state.target_health(t).state;
                    prop_assert_ne!(health, TargetHealthState::Draining);
                    if any_healthy {
                        prop_assert_eq!(health, TargetHealthState::Healthy);
                    }
                }
            }
        }
    }
}
