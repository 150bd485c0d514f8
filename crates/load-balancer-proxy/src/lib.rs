//! Berth's Application Load Balancer, the shell: sockets, timers and the
//! clock around the pure decisions of the `load-balancer` crate.
//!
//! [`Proxy::start`] takes a `tokio::sync::watch` receiver of
//! [`LoadBalancer`] snapshots. Each listener's port is bound on
//! [`ProxyOptions::bind_ip`] and served with HTTP/1.1 keep-alive and h2c by
//! [`ProxyOptions::worker_threads`] threads (one per core by default), each
//! running a single-threaded runtime: a listener's accept loop hands
//! connections to the workers in turn, and a client connection, its
//! requests and the upstream connections they use stay on one worker (each
//! worker pools its own keep-alive HTTP/1.1 connections to targets, so the
//! request path takes no contended lock but the target group's short one).
//! The request's own task writes it to the target and reads the response
//! (a small HTTP/1.1 client in `upstream`: content-length, chunked and
//! until-close bodies; a connection is kept only when its response was read
//! to the end and the target keeps it alive). A client connection that
//! starts no request for 30 s while none is in progress is closed.
//! Requests are routed by the listener's rules and forwarded to a target
//! chosen by the target group's state, with `X-Forwarded-For`,
//! `X-Forwarded-Proto`, `X-Forwarded-Port` and `X-Amzn-Trace-Id` added.
//! Failures answer like ALB: 503 when no target is routable, 502 when the
//! target refuses or answers badly, 504 when it does not answer in time.
//!
//! Retries: when connecting to a target fails (nothing was sent) the
//! request goes to another routable target, whatever its method, and
//! selection passes over the failed target for a while (passive health,
//! not shown by DescribeTargetHealth); when a pooled connection closes
//! before any byte of the response arrived, an idempotent request (GET,
//! HEAD, OPTIONS, PUT, DELETE) whose body is empty or small enough to be
//! held in memory is sent again, to another target or on a new connection.
//! At most three attempts; never once a response byte arrived.
//!
//! Active HTTP health checks run per target group (none when
//! `HealthCheck::enabled` is false: then every registered target that is
//! not draining gets traffic and reports `healthy`) and feed the pure
//! health state machine; [`Proxy::describe_target_health`] reports it. A new
//! snapshot applies without a restart: listeners are added and removed,
//! targets registered and drained (requests in flight finish).
//!
//! Architecture invariant: every decision (routing, target choice, health
//! state, draining, which targets a retry may use) is made by
//! `load-balancer`; this crate only moves bytes, reads the clock and counts
//! requests in flight.

mod clock;
mod deadlines;
mod handler;
mod health_checks;
mod proxy;
mod upstream;
mod workers;

pub use proxy::{Proxy, ProxyError, ProxyOptions};

pub use load_balancer::{LoadBalancer, Target, TargetHealth};
