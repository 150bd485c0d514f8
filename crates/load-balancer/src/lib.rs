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
//!   stickiness, ALB's fail-open rule).
//!
//! Architecture invariant: no I/O, no clock and no randomness. Time arrives
//! as `now_ms`, random draws as arguments; the proxy shell
//! (`load-balancer-proxy`) owns sockets, timers and the clock.

pub mod config;
mod error;
mod health;
mod pattern;
mod routing;
mod selection;

pub use config::{
    Action, Cidr, Condition, FixedResponse, ForwardAction, HealthCheck, HealthCheckPort, Listener,
    LoadBalancer, LoadBalancingAlgorithm, Matcher, Protocol, QueryStringPair, Redirect,
    RedirectStatus, Rule, Stickiness, Target, TargetGroup, TargetGroupAttributes,
    WeightedTargetGroup,
};
pub use error::LoadBalancerError;
pub use health::{HealthCheckOutcome, TargetHealth, TargetHealthReason, TargetHealthState};
pub use pattern::wildcard_match;
pub use routing::{route, RequestView, RouteDecision};
pub use selection::{
    decode_stickiness_cookie, encode_stickiness_cookie, routable_targets, Selection,
    TargetGroupState, STICKINESS_COOKIE_NAME,
};
