//! Berth's Application Load Balancer, the pure half: what a load balancer
//! is configured to do and every decision it takes per request.
//!
//! - [`config`]: the configuration snapshot in ELBv2's vocabulary
//!   ([`LoadBalancer`], [`Listener`], [`Rule`], [`Condition`], [`Action`],
//!   [`TargetGroup`]) and its validation.
//! - [`route`]: which action a request gets (rules by priority, then the
//!   listener's default action; a weighted forward is resolved with a random
//!   draw passed in).
//! - [`TargetGroupState`]: per target group, the health state machine of each
//!   target (`initial`, `healthy`, `unhealthy`, `draining`, `unused` with
//!   AWS's reason codes), in-flight request counts and target selection
//!   (round robin with slow start, least outstanding requests, `lb_cookie`
//!   and `app_cookie` stickiness, ALB's fail-open rule with its minimum
//!   healthy targets, `weighted_random` with automatic target weights).
//! - [`AnomalyDetection`]: automatic target weights' anomaly detection and
//!   mitigation for `weighted_random` groups (results, weights).
//! - [`classify`] and [`mitigation`]: desync mitigation (the
//!   `http_desync_guardian` classification and what each mode does).
//! - [`TrafficReport`]: what CloudWatch's `AWS/ApplicationELB` metrics
//!   need, counted per target group in [`TargetGroupState`] (requests and
//!   status classes per target, connection errors, `TargetResponseTime` in
//!   two-significant-digit buckets) and per load balancer by the proxy.
//! - The header rules: [`outgoing_host`] (Host without
//!   `preserve_host_header`), [`forwarded_for_entry`],
//!   [`is_valid_header_field_name`], the stickiness cookies.
//!
//! Architecture invariant: no I/O, no clock and no randomness. Time arrives
//! as `now_ms`, random draws as arguments; the proxy shell
//! (`load-balancer-proxy`) owns sockets, timers and the clock.

mod anomaly;
pub mod config;
mod desync;
mod error;
mod headers;
mod health;
mod pattern;
mod routing;
mod selection;
mod traffic;

pub use anomaly::{
    AnomalyDetection, AnomalyResult, OutcomeCounts, TargetAnomaly, TargetObservation,
};
pub use config::{
    Action, Cidr, Condition, DesyncMitigationMode, FixedResponse, ForwardAction, HealthCheck,
    HealthCheckPort, Listener, LoadBalancer, LoadBalancerAttributes, LoadBalancingAlgorithm,
    Matcher, MinimumHealthyTargets, Protocol, QueryStringPair, Redirect, RedirectStatus, Rule,
    Stickiness, StickinessKind, Target, TargetGroup, TargetGroupAttributes, WeightedTargetGroup,
    XffHeaderProcessingMode,
};
pub use desync::{classify, mitigation, Classification, ClassificationReason, Mitigation};
pub use error::LoadBalancerError;
pub use headers::{
    forwarded_for_entry, is_valid_cookie_name, is_valid_header_field_name, outgoing_host,
    request_cookie, response_sets_cookie, HostPort, OutgoingHost,
};
pub use health::{HealthCheckOutcome, TargetHealth, TargetHealthReason, TargetHealthState};
pub use pattern::wildcard_match;
pub use routing::{route, RequestView, RouteDecision};
pub use selection::{
    decode_stickiness_cookie, encode_stickiness_cookie, routable_targets, Selection,
    StickinessCookie, TargetGroupState, APP_STICKINESS_COOKIE_NAME, STICKINESS_COOKIE_NAME,
};
pub use traffic::{
    LoadBalancerTraffic, ResponseTimeDistribution, TargetCounts, TargetGroupTraffic, TrafficReport,
    MAX_RESPONSE_TIME_VALUES,
};
