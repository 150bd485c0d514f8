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
//! to the end and the target keeps it alive).
//! Requests are routed by the listener's rules and forwarded to a target
//! chosen by the target group's state, with `X-Forwarded-Proto`,
//! `X-Forwarded-Port` and `X-Amzn-Trace-Id` added.
//! Failures answer like ALB: 503 when no target is routable, 502 when the
//! target refuses or answers badly, 504 when it does not answer within the
//! idle timeout.
//!
//! The load balancer's attributes (`LoadBalancer::attributes`): each
//! HTTP/1.x request is classified for desync mitigation and, by the mode,
//! forwarded, forwarded with both connections closed after the response, or
//! answered 400 with the connection closed. `X-Forwarded-For` is appended
//! to (with the client's port if asked), preserved or removed; the `Host`
//! header is preserved or rewritten as ALB does; header fields with invalid
//! names are dropped if asked. A client connection takes the attributes in
//! force when it was accepted: HTTP/1.1 only when HTTP/2 is off; closed
//! when it starts no request for the idle timeout while none is in
//! progress; once older than the client keep-alive duration, its next
//! HTTP/1 response carries `Connection: close` (an HTTP/2 connection gets
//! a GOAWAY). A listener's `response_server_enabled` off takes
//! `Server: awselb/2.0` out of the load balancer's own answers.
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
//! Automatic target weights (`weighted_random` groups): each worker counts,
//! in its own shard, the requests it sends to each target and their errors
//! (5xx responses, connection failures); every 500 ms the supervisor sums
//! the shards' counts, runs `load-balancer`'s anomaly detection and hands
//! every shard the resulting weights; [`Proxy::target_anomaly`] reports the
//! result for DescribeTargetHealth.
//!
//! Traffic counts for CloudWatch's `AWS/ApplicationELB` metrics
//! ([`Proxy::take_traffic_report`]): each worker counts the load balancer's
//! requests, its own answers by status, client and target connections and
//! the client connections' bytes in its own counters (a relaxed load and
//! store each, no lock); each target group's shard counts requests and
//! status classes per target, connection errors and response times (under
//! the shard's lock, taken once per request anyway). The report sums the
//! workers and shards; [`Proxy::set_traffic_counting`] turns the per-request
//! counting off.
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
mod traffic;
mod upstream;
mod workers;

pub use proxy::{Proxy, ProxyError, ProxyOptions};

pub use load_balancer::{
    AnomalyResult, LoadBalancer, LoadBalancerTraffic, ResponseTimeDistribution, Target,
    TargetAnomaly, TargetCounts, TargetGroupTraffic, TargetHealth, TrafficReport,
    MAX_RESPONSE_TIME_VALUES,
};
