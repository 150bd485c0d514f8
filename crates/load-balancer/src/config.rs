//! The configuration snapshot of one Application Load Balancer, in ELBv2's
//! vocabulary. The ELBv2 API converts its records into these values; the
//! proxy receives a new snapshot whenever something changes.

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};

use crate::LoadBalancerError;

/// Highest rule priority ALB accepts.
pub const MAX_RULE_PRIORITY: u32 = 50_000;
/// Highest weight of a target group in a forward action.
pub const MAX_TARGET_GROUP_WEIGHT: u32 = 999;
/// Longest fixed-response message body ALB accepts, in characters.
pub const MAX_FIXED_RESPONSE_BODY_CHARS: usize = 1024;

/// One Application Load Balancer: its listeners and the target groups they
/// forward to (on ALB a target group belongs to at most one load balancer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancer {
    pub name: String,
    pub listeners: Vec<Listener>,
    pub target_groups: Vec<TargetGroup>,
    pub attributes: LoadBalancerAttributes,
}

/// The load balancer attributes that mean something on one machine (the
/// ELBv2 API stores the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadBalancerAttributes {
    /// `routing.http2.enabled`: false serves HTTP/1.1 only (no h2c).
    pub http2_enabled: bool,
    /// `idle_timeout.timeout_seconds`, 1 to 4000 (default 60): a client
    /// connection starting no request, or a target not answering, for this
    /// long is closed (the client gets a 504 in the second case).
    pub idle_timeout_seconds: u32,
    /// `client_keep_alive.seconds`, 60 to 604800 (default 3600): once a
    /// client connection is this old, its next response closes it.
    pub client_keep_alive_seconds: u32,
    /// `routing.http.drop_invalid_header_fields.enabled`: header fields whose
    /// names are not `[-A-Za-z0-9]+` are removed before forwarding.
    pub drop_invalid_header_fields: bool,
    /// `routing.http.xff_header_processing.mode`.
    pub xff_header_processing_mode: XffHeaderProcessingMode,
    /// `routing.http.xff_client_port.enabled`: in append mode the client's
    /// port goes with its address (`ip:port`, `[ipv6]:port`).
    pub xff_client_port_enabled: bool,
    /// `routing.http.preserve_host_header.enabled`.
    pub preserve_host_header: bool,
    /// `routing.http.desync_mitigation_mode`.
    pub desync_mitigation_mode: DesyncMitigationMode,
}

impl Default for LoadBalancerAttributes {
    /// ALB's defaults.
    fn default() -> Self {
        LoadBalancerAttributes {
            http2_enabled: true,
            idle_timeout_seconds: 60,
            client_keep_alive_seconds: 3600,
            drop_invalid_header_fields: false,
            xff_header_processing_mode: XffHeaderProcessingMode::Append,
            xff_client_port_enabled: false,
            preserve_host_header: false,
            desync_mitigation_mode: DesyncMitigationMode::Defensive,
        }
    }
}

/// What happens to a request's `X-Forwarded-For` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XffHeaderProcessingMode {
    /// The client's address is appended (the header is created if absent).
    Append,
    /// The header is sent as received (none if there was none).
    Preserve,
    /// The header is removed.
    Remove,
}

/// How requests that do not comply with RFC 7230 are treated, by their
/// [`Classification`](crate::Classification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DesyncMitigationMode {
    Monitor,
    Defensive,
    Strictest,
}

/// The only listener protocol implemented (HTTPS needs certificates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Http,
}

impl Protocol {
    /// The ELBv2 spelling, `HTTP`.
    pub fn as_elbv2(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub port: u16,
    pub protocol: Protocol,
    /// Exactly one terminal action (authenticate actions are not
    /// implemented).
    pub default_actions: Vec<Action>,
    /// Evaluated by ascending priority; the first rule whose conditions all
    /// match decides.
    pub rules: Vec<Rule>,
    /// `routing.http.response.server.enabled` (default true): the load
    /// balancer's own responses (errors, fixed responses, redirects) carry
    /// `Server: awselb/2.0`.
    pub response_server_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// 1 to 50000, unique within the listener.
    pub priority: u32,
    /// All must match (each condition matches if any of its values does).
    pub conditions: Vec<Condition>,
    /// Exactly one terminal action.
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Wildcards, case-sensitive, matched against the path without the query
    /// string.
    PathPattern { values: Vec<String> },
    /// Wildcards, case-insensitive, matched against the Host header without
    /// its port.
    HostHeader { values: Vec<String> },
    /// The header name is case-insensitive; values are wildcards matched
    /// case-insensitively against each value of the header.
    HttpHeader {
        http_header_name: String,
        values: Vec<String>,
    },
    /// Matches if any pair matches any `key=value` of the query string
    /// (wildcards, case-insensitive; `\*` and `\?` match a literal `*` and
    /// `?`); a pair without a key matches any key's value.
    QueryString { values: Vec<QueryStringPair> },
    /// Exact, case-sensitive method names such as `GET`.
    HttpRequestMethod { values: Vec<String> },
    /// The client's address (not X-Forwarded-For) is in one of the blocks.
    SourceIp { values: Vec<Cidr> },
}

impl Condition {
    /// The ELBv2 `Field` name of the condition.
    pub fn field(&self) -> &'static str {
        match self {
            Condition::PathPattern { .. } => "path-pattern",
            Condition::HostHeader { .. } => "host-header",
            Condition::HttpHeader { .. } => "http-header",
            Condition::QueryString { .. } => "query-string",
            Condition::HttpRequestMethod { .. } => "http-request-method",
            Condition::SourceIp { .. } => "source-ip",
        }
    }

    fn value_count(&self) -> usize {
        match self {
            Condition::PathPattern { values }
            | Condition::HostHeader { values }
            | Condition::HttpHeader { values, .. }
            | Condition::HttpRequestMethod { values } => values.len(),
            Condition::QueryString { values } => values.len(),
            Condition::SourceIp { values } => values.len(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryStringPair {
    pub key: Option<String>,
    pub value: String,
}

/// An IPv4 or IPv6 block such as `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix_length: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, LoadBalancerError> {
        let invalid = || LoadBalancerError::InvalidCidr {
            cidr: text.to_string(),
        };
        let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let network: IpAddr = address.parse().map_err(|_| invalid())?;
        let prefix_length: u8 = prefix.parse().map_err(|_| invalid())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        if prefix_length > max {
            return Err(invalid());
        }
        Ok(Cidr {
            network,
            prefix_length,
        })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) if self.network.is_ipv4() => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            other => other,
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => prefix_equal(
                u32::from(network).into(),
                u32::from(address).into(),
                32,
                self.prefix_length,
            ),
            (IpAddr::V6(network), IpAddr::V6(address)) => prefix_equal(
                u128::from(network),
                u128::from(address),
                128,
                self.prefix_length,
            ),
            _ => false,
        }
    }
}

fn prefix_equal(network: u128, address: u128, bits: u32, prefix_length: u8) -> bool {
    if prefix_length == 0 {
        return true;
    }
    let shift = bits - u32::from(prefix_length);
    (network >> shift) == (address >> shift)
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_length)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Forward(ForwardAction),
    FixedResponse(FixedResponse),
    Redirect(Redirect),
}

/// Forward to one target group, or split between several by weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAction {
    pub target_groups: Vec<WeightedTargetGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedTargetGroup {
    pub target_group_arn: String,
    /// 0 to 999; a group of weight 0 receives nothing.
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedResponse {
    /// 2XX, 4XX or 5XX.
    pub status_code: u16,
    /// `text/plain`, `text/css`, `text/html`, `application/javascript` or
    /// `application/json`.
    pub content_type: Option<String>,
    pub message_body: Option<String>,
}

const FIXED_RESPONSE_CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

/// Each component may use the placeholders `#{protocol}`, `#{host}`,
/// `#{port}`, `#{path}` and `#{query}`; ALB's defaults keep the request's
/// own value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `HTTP`, `HTTPS` or `#{protocol}`.
    pub protocol: String,
    pub host: String,
    pub port: String,
    /// Must start with `/`.
    pub path: String,
    /// Without the leading `?`.
    pub query: String,
    pub status_code: RedirectStatus,
}

impl Default for Redirect {
    fn default() -> Self {
        Redirect {
            protocol: "#{protocol}".to_string(),
            host: "#{host}".to_string(),
            port: "#{port}".to_string(),
            path: "/#{path}".to_string(),
            query: "#{query}".to_string(),
            status_code: RedirectStatus::Http301,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectStatus {
    Http301,
    Http302,
}

impl RedirectStatus {
    pub fn status_code(self) -> u16 {
        match self {
            RedirectStatus::Http301 => 301,
            RedirectStatus::Http302 => 302,
        }
    }
}

/// A target of an `ip` target group: an address and the port traffic goes
/// to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub id: IpAddr,
    pub port: u16,
}

impl Target {
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.id, self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    pub target_group_arn: String,
    pub targets: Vec<Target>,
    pub health_check: HealthCheck,
    pub attributes: TargetGroupAttributes,
}

/// HTTP health checks (`GET path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// `HealthCheckEnabled`: when false no checks run and every registered
    /// target that is not draining receives traffic.
    pub enabled: bool,
    pub path: String,
    pub port: HealthCheckPort,
    /// 5 to 300.
    pub interval_seconds: u32,
    /// 2 to 120, less than the interval.
    pub timeout_seconds: u32,
    /// 2 to 10.
    pub healthy_threshold_count: u32,
    /// 2 to 10.
    pub unhealthy_threshold_count: u32,
    pub matcher: Matcher,
}

impl Default for HealthCheck {
    /// ALB's defaults for an HTTP target group of type `ip`.
    fn default() -> Self {
        HealthCheck {
            enabled: true,
            path: "/".to_string(),
            port: HealthCheckPort::TrafficPort,
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold_count: 5,
            unhealthy_threshold_count: 2,
            matcher: Matcher::parse("200").expect("the default matcher parses"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckPort {
    /// The port the target receives traffic on.
    TrafficPort,
    Port(u16),
}

impl HealthCheckPort {
    pub fn for_target(self, target: &Target) -> u16 {
        match self {
            HealthCheckPort::TrafficPort => target.port,
            HealthCheckPort::Port(port) => port,
        }
    }
}

/// The HTTP codes a healthy target answers: `200`, `200-299`, `200,302`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    http_code: String,
    ranges: Vec<(u16, u16)>,
}

impl Matcher {
    pub fn parse(http_code: &str) -> Result<Matcher, LoadBalancerError> {
        let invalid = || LoadBalancerError::InvalidMatcher {
            matcher: http_code.to_string(),
        };
        let parse_code = |text: &str| -> Result<u16, LoadBalancerError> {
            let code: u16 = text.trim().parse().map_err(|_| invalid())?;
            if (200..=499).contains(&code) {
                Ok(code)
            } else {
                Err(invalid())
            }
        };
        let mut ranges = Vec::new();
        for part in http_code.split(',') {
            let range = match part.split_once('-') {
                Some((low, high)) => (parse_code(low)?, parse_code(high)?),
                None => {
                    let code = parse_code(part)?;
                    (code, code)
                }
            };
            if range.0 > range.1 {
                return Err(invalid());
            }
            ranges.push(range);
        }
        Ok(Matcher {
            http_code: http_code.to_string(),
            ranges,
        })
    }

    pub fn matches(&self, status_code: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status_code))
    }

    /// As written in the configuration (ELBv2's `Matcher.HttpCode`).
    pub fn http_code(&self) -> &str {
        &self.http_code
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroupAttributes {
    /// `deregistration_delay.timeout_seconds`, 0 to 3600 (default 300).
    pub deregistration_delay_timeout_seconds: u32,
    /// `load_balancing.algorithm.type`.
    pub load_balancing_algorithm_type: LoadBalancingAlgorithm,
    /// `load_balancing.algorithm.anomaly_mitigation` on: with
    /// `weighted_random`, anomalous targets' weights are lowered (see
    /// [`crate::AnomalyDetection`]).
    pub anomaly_mitigation_enabled: bool,
    /// `slow_start.duration_seconds`: 0 (off) or 30 to 900.
    pub slow_start_duration_seconds: u32,
    /// `stickiness.*`.
    pub stickiness: Stickiness,
    /// `target_group_health.unhealthy_state_routing.minimum_healthy_targets.*`:
    /// below these, the group fails open.
    pub unhealthy_state_routing: MinimumHealthyTargets,
}

impl Default for TargetGroupAttributes {
    fn default() -> Self {
        TargetGroupAttributes {
            deregistration_delay_timeout_seconds: 300,
            load_balancing_algorithm_type: LoadBalancingAlgorithm::RoundRobin,
            anomaly_mitigation_enabled: false,
            slow_start_duration_seconds: 0,
            stickiness: Stickiness::default(),
            unhealthy_state_routing: MinimumHealthyTargets::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancingAlgorithm {
    RoundRobin,
    LeastOutstandingRequests,
    /// `weighted_random`: each request goes to a routable target drawn at
    /// random in proportion to its weight (full, unless automatic target
    /// weights mitigate an anomalous target).
    WeightedRandom,
}

/// Stickiness: a cookie pins a client to a target. With `lb_cookie` the
/// load balancer's `AWSALB` cookie is set on every response and lasts
/// `lb_cookie_duration_seconds`; with `app_cookie` the load balancer's
/// `AWSALBAPP-0` cookie is set only on responses that set the application's
/// cookie `app_cookie_name`, and lasts `app_cookie_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stickiness {
    pub enabled: bool,
    /// `stickiness.type`.
    pub kind: StickinessKind,
    /// `stickiness.lb_cookie.duration_seconds`, 1 to 604800 (default 86400).
    pub lb_cookie_duration_seconds: u32,
    /// `stickiness.app_cookie.cookie_name`.
    pub app_cookie_name: String,
    /// `stickiness.app_cookie.duration_seconds`, 1 to 604800 (default 86400).
    pub app_cookie_duration_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickinessKind {
    LbCookie,
    AppCookie,
}

impl Default for Stickiness {
    fn default() -> Self {
        Stickiness {
            enabled: false,
            kind: StickinessKind::LbCookie,
            lb_cookie_duration_seconds: 86_400,
            app_cookie_name: String::new(),
            app_cookie_duration_seconds: 86_400,
        }
    }
}

impl Stickiness {
    /// `lb_cookie` stickiness on, lasting `duration_seconds`.
    pub fn lb_cookie(duration_seconds: u32) -> Stickiness {
        Stickiness {
            enabled: true,
            lb_cookie_duration_seconds: duration_seconds,
            ..Stickiness::default()
        }
    }

    /// `app_cookie` stickiness on, following the application's cookie
    /// `cookie_name`, lasting `duration_seconds`.
    pub fn app_cookie(cookie_name: &str, duration_seconds: u32) -> Stickiness {
        Stickiness {
            enabled: true,
            kind: StickinessKind::AppCookie,
            app_cookie_name: cookie_name.to_string(),
            app_cookie_duration_seconds: duration_seconds,
            ..Stickiness::default()
        }
    }
}

/// The fewest healthy targets a target group routes to before it fails
/// open (sends requests to every target that is not draining). Both limits
/// apply: the group fails open when either is not met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinimumHealthyTargets {
    /// `...minimum_healthy_targets.count`, 1 or more (default 1).
    pub count: u32,
    /// `...minimum_healthy_targets.percentage`: 1 to 100 of the targets
    /// that are not draining, or `None` (`off`, the default).
    pub percentage: Option<u32>,
}

impl Default for MinimumHealthyTargets {
    fn default() -> Self {
        MinimumHealthyTargets {
            count: 1,
            percentage: None,
        }
    }
}

impl MinimumHealthyTargets {
    /// Whether `healthy` healthy targets out of `total` that are not
    /// draining are too few (then the group fails open).
    pub fn fails_open(&self, healthy: usize, total: usize) -> bool {
        let below_count = healthy < self.count as usize;
        let below_percentage = self
            .percentage
            .is_some_and(|percentage| healthy * 100 < percentage as usize * total);
        below_count || below_percentage
    }
}

fn invalid(message: impl Into<String>) -> LoadBalancerError {
    LoadBalancerError::InvalidConfiguration(message.into())
}

impl LoadBalancer {
    /// Checks ELBv2's rules that the data plane relies on: unique listener
    /// ports, unique rule priorities, one terminal action, forward actions
    /// naming target groups of this load balancer, and the ranges of every
    /// health check setting and attribute.
    pub fn validate(&self) -> Result<(), LoadBalancerError> {
        let attributes = &self.attributes;
        if !(1..=4000).contains(&attributes.idle_timeout_seconds) {
            return Err(invalid(format!(
                "idle_timeout.timeout_seconds is {}: use 1 to 4000",
                attributes.idle_timeout_seconds
            )));
        }
        if !(60..=604_800).contains(&attributes.client_keep_alive_seconds) {
            return Err(invalid(format!(
                "client_keep_alive.seconds is {}: use 60 to 604800",
                attributes.client_keep_alive_seconds
            )));
        }
        let mut arns = HashSet::new();
        for target_group in &self.target_groups {
            if !arns.insert(target_group.target_group_arn.as_str()) {
                return Err(invalid(format!(
                    "target group {} appears twice",
                    target_group.target_group_arn
                )));
            }
            target_group.validate()?;
        }
        let mut ports = HashSet::new();
        for listener in &self.listeners {
            if !ports.insert(listener.port) {
                return Err(invalid(format!(
                    "two listeners use port {}; each listener needs its own port",
                    listener.port
                )));
            }
            if listener.port == 0 {
                return Err(invalid("listener port must be 1 to 65535"));
            }
            validate_actions(&listener.default_actions, &arns, "default actions")?;
            let mut priorities = BTreeSet::new();
            for rule in &listener.rules {
                if !(1..=MAX_RULE_PRIORITY).contains(&rule.priority) {
                    return Err(invalid(format!(
                        "rule priority {} is out of range: use 1 to {MAX_RULE_PRIORITY}",
                        rule.priority
                    )));
                }
                if !priorities.insert(rule.priority) {
                    return Err(invalid(format!(
                        "priority {} is used by two rules of listener {}",
                        rule.priority, listener.port
                    )));
                }
                if rule.conditions.is_empty() {
                    return Err(invalid(format!(
                        "rule {} has no conditions; a rule needs at least one",
                        rule.priority
                    )));
                }
                for condition in &rule.conditions {
                    if condition.value_count() == 0 {
                        return Err(invalid(format!(
                            "the {} condition of rule {} has no values",
                            condition.field(),
                            rule.priority
                        )));
                    }
                }
                validate_actions(&rule.actions, &arns, "rule actions")?;
            }
        }
        Ok(())
    }
}

fn validate_actions(
    actions: &[Action],
    target_group_arns: &HashSet<&str>,
    what: &str,
) -> Result<(), LoadBalancerError> {
    let [action] = actions else {
        return Err(invalid(format!(
            "{what} must hold exactly one forward, fixed-response or redirect action"
        )));
    };
    match action {
        Action::Forward(forward) => {
            if forward.target_groups.is_empty() {
                return Err(invalid("a forward action needs at least one target group"));
            }
            let mut total_weight = 0;
            for group in &forward.target_groups {
                if !target_group_arns.contains(group.target_group_arn.as_str()) {
                    return Err(invalid(format!(
                        "target group {} is not a target group of this load balancer",
                        group.target_group_arn
                    )));
                }
                if group.weight > MAX_TARGET_GROUP_WEIGHT {
                    return Err(invalid(format!(
                        "weight {} is out of range: use 0 to {MAX_TARGET_GROUP_WEIGHT}",
                        group.weight
                    )));
                }
                total_weight += group.weight;
            }
            if total_weight == 0 {
                return Err(invalid(
                    "a forward action needs at least one target group with a weight above 0",
                ));
            }
        }
        Action::FixedResponse(fixed) => {
            let class = fixed.status_code / 100;
            if !(matches!(class, 2 | 4 | 5) && fixed.status_code <= 599) {
                return Err(invalid(format!(
                    "fixed-response status code {} must be 2XX, 4XX or 5XX",
                    fixed.status_code
                )));
            }
            if let Some(content_type) = &fixed.content_type {
                if !FIXED_RESPONSE_CONTENT_TYPES.contains(&content_type.as_str()) {
                    return Err(invalid(format!(
                        "content type {content_type:?} is not one of {}",
                        FIXED_RESPONSE_CONTENT_TYPES.join(", ")
                    )));
                }
            }
            if let Some(body) = &fixed.message_body {
                if body.chars().count() > MAX_FIXED_RESPONSE_BODY_CHARS {
                    return Err(invalid(format!(
                        "a fixed-response message body holds at most {MAX_FIXED_RESPONSE_BODY_CHARS} characters"
                    )));
                }
            }
        }
        Action::Redirect(redirect) => {
            if !matches!(redirect.protocol.as_str(), "HTTP" | "HTTPS" | "#{protocol}") {
                return Err(invalid(format!(
                    "redirect protocol {:?} must be HTTP, HTTPS or #{{protocol}}",
                    redirect.protocol
                )));
            }
            if !redirect.path.starts_with('/') {
                return Err(invalid(format!(
                    "redirect path {:?} must start with /",
                    redirect.path
                )));
            }
        }
    }
    Ok(())
}

impl TargetGroup {
    pub fn validate(&self) -> Result<(), LoadBalancerError> {
        let check = &self.health_check;
        let arn = &self.target_group_arn;
        let in_range = |value: u32, low: u32, high: u32, name: &str| {
            if (low..=high).contains(&value) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "{name} of target group {arn} is {value}: use {low} to {high}"
                )))
            }
        };
        in_range(
            check.interval_seconds,
            5,
            300,
            "health check interval_seconds",
        )?;
        in_range(
            check.timeout_seconds,
            2,
            120,
            "health check timeout_seconds",
        )?;
        if check.timeout_seconds >= check.interval_seconds {
            return Err(invalid(format!(
                "health check timeout of target group {arn} must be less than its interval"
            )));
        }
        in_range(
            check.healthy_threshold_count,
            2,
            10,
            "healthy_threshold_count",
        )?;
        in_range(
            check.unhealthy_threshold_count,
            2,
            10,
            "unhealthy_threshold_count",
        )?;
        if !check.path.starts_with('/') {
            return Err(invalid(format!(
                "health check path {:?} of target group {arn} must start with /",
                check.path
            )));
        }
        let attributes = &self.attributes;
        in_range(
            attributes.deregistration_delay_timeout_seconds,
            0,
            3600,
            "deregistration_delay.timeout_seconds",
        )?;
        if attributes.slow_start_duration_seconds != 0 {
            in_range(
                attributes.slow_start_duration_seconds,
                30,
                900,
                "slow_start.duration_seconds",
            )?;
            match attributes.load_balancing_algorithm_type {
                LoadBalancingAlgorithm::RoundRobin => {}
                LoadBalancingAlgorithm::LeastOutstandingRequests => {
                    return Err(invalid(format!(
                        "target group {arn}: slow start cannot be combined with least_outstanding_requests"
                    )))
                }
                LoadBalancingAlgorithm::WeightedRandom => {
                    return Err(invalid(format!(
                        "target group {arn}: slow start cannot be combined with weighted_random"
                    )))
                }
            }
        }
        in_range(
            attributes.stickiness.lb_cookie_duration_seconds,
            1,
            604_800,
            "stickiness.lb_cookie.duration_seconds",
        )?;
        in_range(
            attributes.stickiness.app_cookie_duration_seconds,
            1,
            604_800,
            "stickiness.app_cookie.duration_seconds",
        )?;
        let stickiness = &attributes.stickiness;
        if stickiness.enabled
            && stickiness.kind == StickinessKind::AppCookie
            && !crate::headers::is_valid_cookie_name(&stickiness.app_cookie_name)
        {
            return Err(invalid(format!(
                "stickiness.app_cookie.cookie_name {:?} of target group {arn} is not a cookie name",
                stickiness.app_cookie_name
            )));
        }
        let minimum = &attributes.unhealthy_state_routing;
        if minimum.count == 0 {
            return Err(invalid(format!(
                "minimum_healthy_targets.count of target group {arn} is 0: use 1 or more"
            )));
        }
        if let Some(percentage) = minimum.percentage {
            in_range(percentage, 1, 100, "minimum_healthy_targets.percentage")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn target_group(arn: &str) -> TargetGroup {
        TargetGroup {
            target_group_arn: arn.to_string(),
            targets: vec![],
            health_check: HealthCheck::default(),
            attributes: TargetGroupAttributes::default(),
        }
    }

    fn forward(arn: &str) -> Action {
        Action::Forward(ForwardAction {
            target_groups: vec![WeightedTargetGroup {
                target_group_arn: arn.to_string(),
                weight: 1,
            }],
        })
    }

    fn load_balancer(edit: impl FnOnce(&mut LoadBalancer)) -> LoadBalancer {
        let mut load_balancer = LoadBalancer {
            name: "web".to_string(),
            listeners: vec![Listener {
                port: 80,
                protocol: Protocol::Http,
                default_actions: vec![forward("tg")],
                rules: vec![Rule {
                    priority: 1,
                    conditions: vec![Condition::PathPattern {
                        values: vec!["/a".to_string()],
                    }],
                    actions: vec![forward("tg")],
                }],
                response_server_enabled: true,
            }],
            target_groups: vec![target_group("tg")],
            attributes: LoadBalancerAttributes::default(),
        };
        edit(&mut load_balancer);
        load_balancer
    }

    fn check(load_balancer: LoadBalancer, expected_error: Option<&str>) {
        match (load_balancer.validate(), expected_error) {
            (Ok(()), None) => {}
            (Err(err), Some(expected)) => assert!(
                err.to_string().contains(expected),
                "{err} does not mention {expected:?}"
            ),
            (result, expected) => panic!("got {result:?}, expected error {expected:?}"),
        }
    }

    #[test]
    fn validation() {
        check(load_balancer(|_| {}), None);
        check(
            load_balancer(|lb| {
                let listener = lb.listeners[0].clone();
                lb.listeners.push(listener);
            }),
            Some("two listeners use port 80"),
        );
        check(
            load_balancer(|lb| lb.listeners[0].rules[0].priority = 0),
            Some("priority 0 is out of range"),
        );
        check(
            load_balancer(|lb| {
                let rule = lb.listeners[0].rules[0].clone();
                lb.listeners[0].rules.push(rule);
            }),
            Some("priority 1 is used by two rules"),
        );
        check(
            load_balancer(|lb| lb.listeners[0].default_actions = vec![forward("other")]),
            Some("not a target group of this load balancer"),
        );
        check(
            load_balancer(|lb| lb.listeners[0].default_actions.clear()),
            Some("exactly one"),
        );
        check(
            load_balancer(|lb| lb.listeners[0].rules[0].conditions.clear()),
            Some("has no conditions"),
        );
        check(
            load_balancer(|lb| {
                lb.listeners[0].rules[0].conditions = vec![Condition::HostHeader { values: vec![] }]
            }),
            Some("host-header condition of rule 1 has no values"),
        );
        check(
            load_balancer(|lb| {
                lb.listeners[0].default_actions = vec![Action::Forward(ForwardAction {
                    target_groups: vec![WeightedTargetGroup {
                        target_group_arn: "tg".to_string(),
                        weight: 0,
                    }],
                })]
            }),
            Some("weight above 0"),
        );
        check(
            load_balancer(|lb| {
                lb.listeners[0].default_actions = vec![Action::FixedResponse(FixedResponse {
                    status_code: 302,
                    content_type: None,
                    message_body: None,
                })]
            }),
            Some("2XX, 4XX or 5XX"),
        );
        check(
            load_balancer(|lb| {
                lb.listeners[0].default_actions = vec![Action::FixedResponse(FixedResponse {
                    status_code: 200,
                    content_type: Some("image/png".to_string()),
                    message_body: None,
                })]
            }),
            Some("content type"),
        );
        check(
            load_balancer(|lb| {
                lb.listeners[0].default_actions = vec![Action::Redirect(Redirect {
                    path: "x".to_string(),
                    ..Redirect::default()
                })]
            }),
            Some("must start with /"),
        );
        check(
            load_balancer(|lb| lb.target_groups[0].health_check.timeout_seconds = 30),
            Some("less than its interval"),
        );
        check(
            load_balancer(|lb| lb.target_groups[0].health_check.healthy_threshold_count = 1),
            Some("healthy_threshold_count"),
        );
        check(
            load_balancer(|lb| lb.target_groups[0].attributes.slow_start_duration_seconds = 10),
            Some("slow_start.duration_seconds"),
        );
        check(
            load_balancer(|lb| {
                lb.target_groups[0].attributes.slow_start_duration_seconds = 30;
                lb.target_groups[0].attributes.load_balancing_algorithm_type =
                    LoadBalancingAlgorithm::LeastOutstandingRequests;
            }),
            Some("least_outstanding_requests"),
        );
        check(
            load_balancer(|lb| {
                lb.target_groups[0]
                    .attributes
                    .deregistration_delay_timeout_seconds = 3601
            }),
            Some("deregistration_delay"),
        );
        check(
            load_balancer(|lb| {
                let group = lb.target_groups[0].clone();
                lb.target_groups.push(group);
            }),
            Some("appears twice"),
        );
        check(
            load_balancer(|lb| lb.attributes.idle_timeout_seconds = 0),
            Some("idle_timeout.timeout_seconds is 0"),
        );
        check(
            load_balancer(|lb| lb.attributes.client_keep_alive_seconds = 59),
            Some("client_keep_alive.seconds is 59"),
        );
        check(
            load_balancer(|lb| {
                lb.target_groups[0].attributes.stickiness = Stickiness::app_cookie("", 60)
            }),
            Some("is not a cookie name"),
        );
        check(
            load_balancer(|lb| {
                lb.target_groups[0].attributes.stickiness = Stickiness::app_cookie("SESSION", 0)
            }),
            Some("stickiness.app_cookie.duration_seconds"),
        );
        check(
            load_balancer(|lb| lb.target_groups[0].attributes.unhealthy_state_routing.count = 0),
            Some("minimum_healthy_targets.count"),
        );
        check(
            load_balancer(|lb| {
                lb.target_groups[0]
                    .attributes
                    .unhealthy_state_routing
                    .percentage = Some(101)
            }),
            Some("minimum_healthy_targets.percentage"),
        );
    }

    #[test]
    fn minimum_healthy_targets() {
        for (count, percentage, healthy, total, fails_open) in [
            (1, None, 0, 3, true),
            (1, None, 1, 3, false),
            (2, None, 1, 3, true),
            (2, None, 2, 3, false),
            (1, Some(50), 1, 3, true),
            (1, Some(50), 2, 4, false),
            (1, Some(100), 3, 3, false),
            (1, Some(100), 2, 3, true),
            // Both limits apply.
            (3, Some(10), 2, 4, true),
        ] {
            let minimum = MinimumHealthyTargets { count, percentage };
            assert_eq!(
                minimum.fails_open(healthy, total),
                fails_open,
                "{minimum:?} {healthy}/{total}"
            );
        }
    }

    #[test]
    fn matchers() {
        for (text, matching, not_matching) in [
            ("200", &[200][..], &[201, 302][..]),
            ("200-299", &[200, 250, 299], &[199, 300]),
            ("200,302", &[200, 302], &[301, 201]),
            ("200-204, 404", &[204, 404], &[205, 403]),
        ] {
            let matcher = Matcher::parse(text).unwrap();
            for &code in matching {
                assert!(matcher.matches(code), "{text} should match {code}");
            }
            for &code in not_matching {
                assert!(!matcher.matches(code), "{text} should not match {code}");
            }
        }
        for bad in ["", "abc", "100", "500", "299-200", "200-", "200,,302"] {
            assert_eq!(
                Matcher::parse(bad),
                Err(LoadBalancerError::InvalidMatcher {
                    matcher: bad.to_string()
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cidrs() {
        for (cidr, address, expected) in [
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "11.1.2.3", false),
            ("192.168.1.0/24", "192.168.1.255", true),
            ("192.168.1.7/32", "192.168.1.7", true),
            ("192.168.1.7/32", "192.168.1.8", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("127.0.0.0/8", "::ffff:127.0.0.1", true),
            ("2001:db8::/32", "2001:db8::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("10.0.0.0/8", "2001:db8::1", false),
        ] {
            let parsed = Cidr::parse(cidr).unwrap();
            assert_eq!(
                parsed.contains(address.parse().unwrap()),
                expected,
                "{cidr} {address}"
            );
        }
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
    }
}
