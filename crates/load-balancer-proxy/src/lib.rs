//! Berth's Application Load Balancer, the shell: sockets, timers and the
//! clock around the pure decisions of the `load-balancer` crate.
//!
//! [`Proxy::start`] takes a `tokio::sync::watch` receiver of
//! [`LoadBalancer`] snapshots. Each listener's port is bound on
//! [`ProxyOptions::bind_ip`] and served with HTTP/1.1 keep-alive and h2c;
//! requests are routed by the listener's rules and forwarded over a pooled
//! keep-alive HTTP/1.1 client to a target chosen by the target group's
//! state, with `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Port`
//! and `X-Amzn-Trace-Id` added. Failures answer like ALB: 503 when no target
//! is routable, 502 when the target refuses or answers badly, 504 when it
//! does not answer in time. Active HTTP health checks run per target group
//! and feed the pure health state machine; [`Proxy::describe_target_health`]
//! reports it. A new snapshot applies without a restart: listeners are
//! added and removed, targets registered and drained (requests in flight
//! finish).
//!
//! Architecture invariant: every decision (routing, target choice, health
//! state, draining) is made by `load-balancer`; this crate only moves bytes,
//! reads the clock and counts requests in flight.

mod clock;
mod handler;
mod health_checks;
mod proxy;

pub use proxy::{Proxy, ProxyError, ProxyOptions};

pub use load_balancer::{LoadBalancer, Target, TargetHealth};
