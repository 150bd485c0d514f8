//! The health of one registered target, as DescribeTargetHealth reports it,
//! and the state machine that health check results drive.
//!
//! ```text
//!  register ──▶ initial ──(healthy threshold passes)──▶ healthy
//!                  │  ▲                                   │  ▲
//!   (unhealthy threshold failures)                        │  │
//!                  ▼  └──────── (re-register) ────┐       │  │
//!               unhealthy ◀──(unhealthy threshold)┼───────┘  │
//!                  └──────(healthy threshold passes)──────────┘
//!  deregister (from any) ──▶ draining ──(no requests in flight, or the
//!                                        deregistration delay ends)──▶ unused
//! ```

/// `TargetHealth.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetHealthState {
    Initial,
    Healthy,
    Unhealthy,
    Draining,
    Unused,
}

impl TargetHealthState {
    /// The ELBv2 spelling (`initial`, `healthy`, …).
    pub fn as_elbv2(self) -> &'static str {
        match self {
            TargetHealthState::Initial => "initial",
            TargetHealthState::Healthy => "healthy",
            TargetHealthState::Unhealthy => "unhealthy",
            TargetHealthState::Draining => "draining",
            TargetHealthState::Unused => "unused",
        }
    }
}

/// `TargetHealth.Reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetHealthReason {
    ElbRegistrationInProgress,
    ElbInitialHealthChecking,
    TargetResponseCodeMismatch,
    TargetTimeout,
    TargetFailedHealthChecks,
    TargetDeregistrationInProgress,
    TargetNotRegistered,
}

impl TargetHealthReason {
    /// The ELBv2 code, e.g. `Target.ResponseCodeMismatch`.
    pub fn as_elbv2(self) -> &'static str {
        match self {
            TargetHealthReason::ElbRegistrationInProgress => "Elb.RegistrationInProgress",
            TargetHealthReason::ElbInitialHealthChecking => "Elb.InitialHealthChecking",
            TargetHealthReason::TargetResponseCodeMismatch => "Target.ResponseCodeMismatch",
            TargetHealthReason::TargetTimeout => "Target.Timeout",
            TargetHealthReason::TargetFailedHealthChecks => "Target.FailedHealthChecks",
            TargetHealthReason::TargetDeregistrationInProgress => "Target.DeregistrationInProgress",
            TargetHealthReason::TargetNotRegistered => "Target.NotRegistered",
        }
    }
}

/// `TargetHealth`: state, and for every state but `healthy` a reason and
/// AWS's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub state: TargetHealthState,
    pub reason: Option<TargetHealthReason>,
    pub description: Option<String>,
}

impl TargetHealth {
    pub(crate) fn not_registered() -> TargetHealth {
        TargetHealth {
            state: TargetHealthState::Unused,
            reason: Some(TargetHealthReason::TargetNotRegistered),
            description: Some("Target is not registered to the target group".to_string()),
        }
    }
}

/// What one health check saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckOutcome {
    /// The answer's status matched the matcher.
    Passed,
    /// The target answered with a status outside the matcher.
    ResponseCodeMismatch { status_code: u16 },
    /// No answer within the health check timeout.
    Timeout,
    /// The connection failed or the answer was not HTTP.
    ConnectionFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Initial,
    Healthy,
    Unhealthy,
    Draining { deadline_ms: u64 },
}

/// One registered target's health record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthRecord {
    pub(crate) phase: Phase,
    checks_seen: u32,
    consecutive_passes: u32,
    consecutive_failures: u32,
    last_failure: Option<HealthCheckOutcome>,
    /// When the target last became healthy (slow start counts from here).
    pub(crate) healthy_since_ms: Option<u64>,
}

impl HealthRecord {
    pub(crate) fn registered() -> HealthRecord {
        HealthRecord {
            phase: Phase::Initial,
            checks_seen: 0,
            consecutive_passes: 0,
            consecutive_failures: 0,
            last_failure: None,
            healthy_since_ms: None,
        }
    }

    pub(crate) fn state(&self) -> TargetHealthState {
        match self.phase {
            Phase::Initial => TargetHealthState::Initial,
            Phase::Healthy => TargetHealthState::Healthy,
            Phase::Unhealthy => TargetHealthState::Unhealthy,
            Phase::Draining { .. } => TargetHealthState::Draining,
        }
    }

    /// Applies one health check result. Draining targets are no longer
    /// checked; a result arriving late changes nothing.
    pub(crate) fn record(
        &mut self,
        outcome: HealthCheckOutcome,
        healthy_threshold_count: u32,
        unhealthy_threshold_count: u32,
        now_ms: u64,
    ) {
        if matches!(self.phase, Phase::Draining { .. }) {
            return;
        }
        self.checks_seen = self.checks_seen.saturating_add(1);
        if outcome == HealthCheckOutcome::Passed {
            self.consecutive_passes = self.consecutive_passes.saturating_add(1);
            self.consecutive_failures = 0;
            if self.phase != Phase::Healthy && self.consecutive_passes >= healthy_threshold_count {
                self.phase = Phase::Healthy;
                self.healthy_since_ms = Some(now_ms);
                self.last_failure = None;
            }
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_passes = 0;
            self.last_failure = Some(outcome);
            if self.phase != Phase::Unhealthy
                && self.consecutive_failures >= unhealthy_threshold_count
            {
                self.phase = Phase::Unhealthy;
                self.healthy_since_ms = None;
            }
        }
    }

    pub(crate) fn start_draining(&mut self, deadline_ms: u64) {
        if !matches!(self.phase, Phase::Draining { .. }) {
            self.phase = Phase::Draining { deadline_ms };
            self.healthy_since_ms = None;
        }
    }

    pub(crate) fn health(&self) -> TargetHealth {
        let (state, reason, description) = match self.phase {
            Phase::Healthy => (TargetHealthState::Healthy, None, None),
            Phase::Initial if self.checks_seen == 0 => (
                TargetHealthState::Initial,
                Some(TargetHealthReason::ElbRegistrationInProgress),
                Some("Target registration is in progress".to_string()),
            ),
            Phase::Initial => (
                TargetHealthState::Initial,
                Some(TargetHealthReason::ElbInitialHealthChecking),
                Some("Initial health checks in progress".to_string()),
            ),
            Phase::Unhealthy => {
                let (reason, description) = match self.last_failure {
                    Some(HealthCheckOutcome::ResponseCodeMismatch { status_code }) => (
                        TargetHealthReason::TargetResponseCodeMismatch,
                        format!("Health checks failed with these codes: [{status_code}]"),
                    ),
                    Some(HealthCheckOutcome::Timeout) => (
                        TargetHealthReason::TargetTimeout,
                        "Request timed out".to_string(),
                    ),
                    _ => (
                        TargetHealthReason::TargetFailedHealthChecks,
                        "Health checks failed".to_string(),
                    ),
                };
                (
                    TargetHealthState::Unhealthy,
                    Some(reason),
                    Some(description),
                )
            }
            Phase::Draining { .. } => (
                TargetHealthState::Draining,
                Some(TargetHealthReason::TargetDeregistrationInProgress),
                Some("Target deregistration is in progress".to_string()),
            ),
        };
        TargetHealth {
            state,
            reason,
            description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthCheckOutcome::*;

    /// Feeds `outcomes` to a new record (healthy threshold 3, unhealthy
    /// threshold 2) and compares the state, reason and description.
    fn check(outcomes: &[HealthCheckOutcome], expected: (&str, Option<&str>, Option<&str>)) {
        let mut record = HealthRecord::registered();
        for (index, outcome) in outcomes.iter().enumerate() {
            record.record(*outcome, 3, 2, index as u64 * 1000);
        }
        let health = record.health();
        let actual = (
            health.state.as_elbv2(),
            health.reason.map(TargetHealthReason::as_elbv2),
            health.description.as_deref(),
        );
        assert_eq!(actual, expected, "after {outcomes:?}");
    }

    #[test]
    fn transitions() {
        let registering = (
            "initial",
            Some("Elb.RegistrationInProgress"),
            Some("Target registration is in progress"),
        );
        let initial_checking = (
            "initial",
            Some("Elb.InitialHealthChecking"),
            Some("Initial health checks in progress"),
        );
        let healthy = ("healthy", None, None);
        let mismatch = (
            "unhealthy",
            Some("Target.ResponseCodeMismatch"),
            Some("Health checks failed with these codes: [500]"),
        );
        let timeout = (
            "unhealthy",
            Some("Target.Timeout"),
            Some("Request timed out"),
        );
        let failed = (
            "unhealthy",
            Some("Target.FailedHealthChecks"),
            Some("Health checks failed"),
        );
        let code_500 = ResponseCodeMismatch { status_code: 500 };
        for (outcomes, expected) in [
            (&[][..], registering),
            (&[Passed][..], initial_checking),
            (&[Passed, Passed], initial_checking),
            (&[Passed, Passed, Passed], healthy),
            (&[code_500], initial_checking),
            (&[code_500, code_500], mismatch),
            (&[Timeout, Timeout], timeout),
            (&[Timeout, ConnectionFailed], failed),
            // A failure resets the run of passes.
            (&[Passed, Passed, Timeout, Passed, Passed], initial_checking),
            (&[Passed, Passed, Passed, Timeout], healthy),
            (&[Passed, Passed, Passed, Timeout, Timeout], timeout),
            (&[Passed, Passed, Passed, Timeout, Passed, Timeout], healthy),
            (&[Timeout, Timeout, Passed, Passed], timeout),
            (&[Timeout, Timeout, Passed, Passed, Passed], healthy),
            (&[Passed, Passed, Passed, code_500, code_500], mismatch),
        ] {
            check(outcomes, expected);
        }
    }

    #[test]
    fn draining_ignores_health_checks() {
        let mut record = HealthRecord::registered();
        record.start_draining(5_000);
        record.record(Passed, 2, 2, 0);
        record.record(Passed, 2, 2, 0);
        let health = record.health();
        assert_eq!(health.state, TargetHealthState::Draining);
        assert_eq!(
            health.reason,
            Some(TargetHealthReason::TargetDeregistrationInProgress)
        );
        assert_eq!(
            TargetHealth::not_registered()
                .reason
                .map(TargetHealthReason::as_elbv2),
            Some("Target.NotRegistered")
        );
    }

    #[test]
    fn healthy_since_is_when_the_threshold_was_reached() {
        let mut record = HealthRecord::registered();
        record.record(Passed, 2, 2, 100);
        assert_eq!(record.healthy_since_ms, None);
        record.record(Passed, 2, 2, 200);
        assert_eq!(record.healthy_since_ms, Some(200));
        record.record(Passed, 2, 2, 300);
        assert_eq!(record.healthy_since_ms, Some(200));
    }
}
