//! The attributes of load balancers, target groups and listeners: their keys, the defaults an
//! application load balancer has on AWS, and the validation of Modify…Attributes.
//!
//! Records keep attributes as plain `key → value` strings (`LoadBalancerRecord::attributes`,
//! `TargetGroupRecord::attributes`), the full default set written at creation. Records
//! written before a key existed lack it; [`load_balancer_attributes`] and
//! [`target_group_attributes`] complete a stored map with the defaults, and readers (the
//! data plane too) should read through them.
//!
//! Pure: no store, no clock.

use std::collections::BTreeMap;

use api::ApiError;

use crate::{error, validation};

pub const ACCESS_LOGS_ENABLED: &str = "access_logs.s3.enabled";
pub const ACCESS_LOGS_BUCKET: &str = "access_logs.s3.bucket";
pub const ACCESS_LOGS_PREFIX: &str = "access_logs.s3.prefix";
pub const CLIENT_KEEP_ALIVE: &str = "client_keep_alive.seconds";
pub const CONNECTION_LOGS_ENABLED: &str = "connection_logs.s3.enabled";
pub const CONNECTION_LOGS_BUCKET: &str = "connection_logs.s3.bucket";
pub const CONNECTION_LOGS_PREFIX: &str = "connection_logs.s3.prefix";
pub const DELETION_PROTECTION: &str = "deletion_protection.enabled";
pub const HEALTH_CHECK_LOGS_ENABLED: &str = "health_check_logs.s3.enabled";
pub const HEALTH_CHECK_LOGS_BUCKET: &str = "health_check_logs.s3.bucket";
pub const HEALTH_CHECK_LOGS_PREFIX: &str = "health_check_logs.s3.prefix";
pub const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";
pub const LB_CROSS_ZONE: &str = "load_balancing.cross_zone.enabled";
pub const DESYNC_MITIGATION_MODE: &str = "routing.http.desync_mitigation_mode";
pub const DROP_INVALID_HEADER_FIELDS: &str = "routing.http.drop_invalid_header_fields.enabled";
pub const PRESERVE_HOST_HEADER: &str = "routing.http.preserve_host_header.enabled";
pub const TLS_VERSION_AND_CIPHER_SUITE: &str =
    "routing.http.x_amzn_tls_version_and_cipher_suite.enabled";
pub const XFF_CLIENT_PORT: &str = "routing.http.xff_client_port.enabled";
pub const XFF_HEADER_PROCESSING_MODE: &str = "routing.http.xff_header_processing.mode";
pub const HTTP2: &str = "routing.http2.enabled";
pub const WAF_FAIL_OPEN: &str = "waf.fail_open.enabled";
pub const ZONAL_SHIFT: &str = "zonal_shift.config.enabled";
pub const IPV6_DENY_ALL_IGW_TRAFFIC: &str = "ipv6.deny_all_igw_traffic";

pub const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
pub const ANOMALY_MITIGATION: &str = "load_balancing.algorithm.anomaly_mitigation";
pub const ALGORITHM: &str = "load_balancing.algorithm.type";
pub const TG_CROSS_ZONE: &str = "load_balancing.cross_zone.enabled";
pub const SLOW_START: &str = "slow_start.duration_seconds";
pub const APP_COOKIE_NAME: &str = "stickiness.app_cookie.cookie_name";
pub const APP_COOKIE_DURATION: &str = "stickiness.app_cookie.duration_seconds";
pub const STICKINESS_ENABLED: &str = "stickiness.enabled";
pub const LB_COOKIE_DURATION: &str = "stickiness.lb_cookie.duration_seconds";
pub const STICKINESS_TYPE: &str = "stickiness.type";
pub const DNS_FAILOVER_COUNT: &str =
    "target_group_health.dns_failover.minimum_healthy_targets.count";
pub const DNS_FAILOVER_PERCENTAGE: &str =
    "target_group_health.dns_failover.minimum_healthy_targets.percentage";
pub const UNHEALTHY_ROUTING_COUNT: &str =
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count";
pub const UNHEALTHY_ROUTING_PERCENTAGE: &str =
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage";

pub const RESPONSE_SERVER_ENABLED: &str = "routing.http.response.server.enabled";

/// How one attribute's value is checked.
#[derive(Clone, Copy)]
enum Rule {
    Bool,
    /// An integer in the inclusive range.
    Range(u64, u64),
    OneOf(&'static [&'static str]),
    /// Any text (S3 bucket names and prefixes are only checked by AWS once logs are on).
    Text,
    /// `*.s3.enabled`: Berth writes no logs to Amazon S3, so only `false`.
    LogsOff,
    /// The application load balancer's cross-zone setting: always `true`.
    AlwaysTrue,
    /// `0` (off) or 30-900.
    SlowStart,
    /// `off` or an integer of at least 1.
    CountOrOff,
    /// An integer of at least 1.
    Count,
    /// `off` or 1-100.
    PercentageOrOff,
    /// An application cookie name (empty until one is chosen).
    CookieName,
}

const BOOLEANS: &[&str] = &["true", "false"];

/// The attributes of an application load balancer, with AWS's defaults (the set
/// DescribeLoadBalancerAttributes lists for an `ipv4` application load balancer).
const LOAD_BALANCER: &[(&str, &str, Rule)] = &[
    (ACCESS_LOGS_BUCKET, "", Rule::Text),
    (ACCESS_LOGS_ENABLED, "false", Rule::LogsOff),
    (ACCESS_LOGS_PREFIX, "", Rule::Text),
    (CLIENT_KEEP_ALIVE, "3600", Rule::Range(60, 604_800)),
    (CONNECTION_LOGS_BUCKET, "", Rule::Text),
    (CONNECTION_LOGS_ENABLED, "false", Rule::LogsOff),
    (CONNECTION_LOGS_PREFIX, "", Rule::Text),
    (DELETION_PROTECTION, "false", Rule::Bool),
    (HEALTH_CHECK_LOGS_BUCKET, "", Rule::Text),
    (HEALTH_CHECK_LOGS_ENABLED, "false", Rule::LogsOff),
    (HEALTH_CHECK_LOGS_PREFIX, "", Rule::Text),
    (IDLE_TIMEOUT, "60", Rule::Range(1, 4000)),
    (LB_CROSS_ZONE, "true", Rule::AlwaysTrue),
    (
        DESYNC_MITIGATION_MODE,
        "defensive",
        Rule::OneOf(&["monitor", "defensive", "strictest"]),
    ),
    (DROP_INVALID_HEADER_FIELDS, "false", Rule::Bool),
    (PRESERVE_HOST_HEADER, "false", Rule::Bool),
    (TLS_VERSION_AND_CIPHER_SUITE, "false", Rule::Bool),
    (XFF_CLIENT_PORT, "false", Rule::Bool),
    (
        XFF_HEADER_PROCESSING_MODE,
        "append",
        Rule::OneOf(&["append", "preserve", "remove"]),
    ),
    (HTTP2, "true", Rule::Bool),
    (WAF_FAIL_OPEN, "false", Rule::Bool),
    (ZONAL_SHIFT, "false", Rule::Bool),
];

/// The attributes of a target group of type `instance` or `ip` behind an application load
/// balancer, with AWS's defaults.
const TARGET_GROUP: &[(&str, &str, Rule)] = &[
    (DEREGISTRATION_DELAY, "300", Rule::Range(0, 3600)),
    (ANOMALY_MITIGATION, "off", Rule::OneOf(&["on", "off"])),
    (
        ALGORITHM,
        "round_robin",
        Rule::OneOf(&[
            "round_robin",
            "least_outstanding_requests",
            "weighted_random",
        ]),
    ),
    (
        TG_CROSS_ZONE,
        "use_load_balancer_configuration",
        Rule::OneOf(&["true", "false", "use_load_balancer_configuration"]),
    ),
    (SLOW_START, "0", Rule::SlowStart),
    (APP_COOKIE_NAME, "", Rule::CookieName),
    (APP_COOKIE_DURATION, "86400", Rule::Range(1, 604_800)),
    (STICKINESS_ENABLED, "false", Rule::Bool),
    (LB_COOKIE_DURATION, "86400", Rule::Range(1, 604_800)),
    (
        STICKINESS_TYPE,
        "lb_cookie",
        Rule::OneOf(&["lb_cookie", "app_cookie"]),
    ),
    (DNS_FAILOVER_COUNT, "1", Rule::CountOrOff),
    (DNS_FAILOVER_PERCENTAGE, "off", Rule::PercentageOrOff),
    (UNHEALTHY_ROUTING_COUNT, "1", Rule::Count),
    (UNHEALTHY_ROUTING_PERCENTAGE, "off", Rule::PercentageOrOff),
];

/// The attributes of an HTTP listener of an application load balancer, with AWS's defaults
/// (whether the load balancer's own responses carry `Server: awselb/2.0`).
const LISTENER: &[(&str, &str, Rule)] = &[(RESPONSE_SERVER_ENABLED, "true", Rule::Bool)];

/// Application load balancer listener attributes Berth does not implement: the header names
/// of TLS and mutual TLS information (HTTPS listeners only) and the response headers the load
/// balancer can add.
const LISTENER_UNSUPPORTED: &[&str] = &[
    "routing.http.request.x_amzn_mtls_clientcert_serial_number.header_name",
    "routing.http.request.x_amzn_mtls_clientcert_issuer.header_name",
    "routing.http.request.x_amzn_mtls_clientcert_subject.header_name",
    "routing.http.request.x_amzn_mtls_clientcert_validity.header_name",
    "routing.http.request.x_amzn_mtls_clientcert_leaf.header_name",
    "routing.http.request.x_amzn_mtls_clientcert.header_name",
    "routing.http.request.x_amzn_tls_version.header_name",
    "routing.http.request.x_amzn_tls_cipher_suite.header_name",
    "routing.http.response.strict_transport_security.header_value",
    "routing.http.response.access_control_allow_origin.header_value",
    "routing.http.response.access_control_allow_methods.header_value",
    "routing.http.response.access_control_allow_headers.header_value",
    "routing.http.response.access_control_allow_credentials.header_value",
    "routing.http.response.access_control_expose_headers.header_value",
    "routing.http.response.access_control_max_age.header_value",
    "routing.http.response.content_security_policy.header_value",
    "routing.http.response.x_content_type_options.header_value",
    "routing.http.response.x_frame_options.header_value",
];

fn defaults(table: &[(&str, &str, Rule)]) -> BTreeMap<String, String> {
    table
        .iter()
        .map(|(key, value, _)| (key.to_string(), value.to_string()))
        .collect()
}

/// A new application load balancer's attributes.
pub fn load_balancer_defaults() -> BTreeMap<String, String> {
    defaults(LOAD_BALANCER)
}

/// A new target group's attributes.
pub fn target_group_defaults() -> BTreeMap<String, String> {
    defaults(TARGET_GROUP)
}

/// The stored attributes completed with the defaults of keys the record lacks.
pub fn load_balancer_attributes(stored: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut attributes = load_balancer_defaults();
    attributes.extend(stored.iter().map(|(k, v)| (k.clone(), v.clone())));
    attributes
}

/// A new listener's attributes.
pub fn listener_defaults() -> BTreeMap<String, String> {
    defaults(LISTENER)
}

/// The stored attributes completed with the defaults of keys the record lacks.
pub fn listener_attributes(stored: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut attributes = listener_defaults();
    attributes.extend(stored.iter().map(|(k, v)| (k.clone(), v.clone())));
    attributes
}

/// The stored attributes completed with the defaults of keys the record lacks.
pub fn target_group_attributes(stored: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut attributes = target_group_defaults();
    attributes.extend(stored.iter().map(|(k, v)| (k.clone(), v.clone())));
    attributes
}

/// What a Modify…Attributes request is about: the wording of its messages.
#[derive(Clone, Copy)]
enum Kind {
    LoadBalancer,
    TargetGroup,
    Listener,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::LoadBalancer => "Load balancer",
            Kind::TargetGroup => "Target group",
            Kind::Listener => "Listener",
        }
    }
}

fn check(kind: Kind, rule: Rule, key: &str, value: &str) -> Result<(), ApiError> {
    let integer = |low: u64, high: u64| {
        value
            .parse::<u64>()
            .is_ok_and(|n| (low..=high).contains(&n))
            && !value.starts_with('+')
    };
    let invalid = |expected: String| {
        Err(validation(format!(
            "{} attribute value '{value}' is not valid for '{key}': {expected}",
            kind.noun()
        )))
    };
    match rule {
        Rule::Bool if BOOLEANS.contains(&value) => Ok(()),
        Rule::Bool => invalid("use 'true' or 'false'".into()),
        Rule::Range(low, high) if integer(low, high) => Ok(()),
        Rule::Range(low, high) => invalid(format!("use an integer from {low} to {high}")),
        Rule::OneOf(values) if values.contains(&value) => Ok(()),
        // The types of network and gateway load balancers' target groups, in the form of AWS's
        // message for a type the protocol does not support.
        Rule::OneOf(_)
            if key == STICKINESS_TYPE
                && matches!(
                    value,
                    "source_ip" | "source_ip_dest_ip" | "source_ip_dest_ip_proto"
                ) =>
        {
            Err(error(
                "InvalidConfigurationRequest",
                format!(
                    "Stickiness type '{value}' is not supported for target groups with the HTTP \
                     protocol"
                ),
            ))
        }
        // AWS's wording for the stickiness type.
        Rule::OneOf(_) if key == STICKINESS_TYPE => Err(validation(
            "'Stickiness type' must be one of [app_cookie, lb_cookie, source_ip]",
        )),
        Rule::OneOf(values) => invalid(format!("use one of [{}]", values.join(", "))),
        Rule::Text => Ok(()),
        Rule::LogsOff if value == "false" => Ok(()),
        Rule::LogsOff if value == "true" => Err(validation(format!(
            "Berth does not deliver logs to Amazon S3, so '{key}' can only be 'false'"
        ))),
        Rule::LogsOff => invalid("use 'true' or 'false'".into()),
        Rule::AlwaysTrue if value == "true" => Ok(()),
        Rule::AlwaysTrue => Err(validation(format!(
            "Cross-zone load balancing is always on for application load balancers; '{key}' \
             can only be 'true'"
        ))),
        Rule::SlowStart if value == "0" || integer(30, 900) => Ok(()),
        Rule::SlowStart => invalid("use 0 (off) or an integer from 30 to 900".into()),
        Rule::CountOrOff if value == "off" || integer(1, u64::MAX) => Ok(()),
        Rule::CountOrOff => invalid("use 'off' or an integer of at least 1".into()),
        Rule::Count if integer(1, u64::MAX) => Ok(()),
        Rule::Count => invalid("use an integer of at least 1".into()),
        Rule::PercentageOrOff if value == "off" || integer(1, 100) => Ok(()),
        Rule::PercentageOrOff => invalid("use 'off' or an integer from 1 to 100".into()),
        Rule::CookieName => check_cookie_name(value),
    }
}

/// An application cookie's name: an RFC 6265 token of at most 256 characters, not one of the
/// names the load balancer keeps for itself.
fn check_cookie_name(name: &str) -> Result<(), ApiError> {
    const RESERVED: [&str; 3] = ["AWSALB", "AWSALBAPP", "AWSALBTG"];
    if RESERVED.iter().any(|prefix| name.starts_with(prefix)) {
        return Err(validation(format!(
            "The application cookie name '{name}' is not valid: names starting with AWSALB, \
             AWSALBAPP or AWSALBTG are reserved for the load balancer"
        )));
    }
    let token = name.len() <= 256
        && name.chars().all(|c| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '(' | ')'
                        | '<'
                        | '>'
                        | '@'
                        | ','
                        | ';'
                        | ':'
                        | '\\'
                        | '"'
                        | '/'
                        | '['
                        | ']'
                        | '?'
                        | '='
                        | '{'
                        | '}'
                )
        });
    if token {
        Ok(())
    } else {
        Err(validation(format!(
            "The application cookie name '{name}' is not valid: use up to 256 characters \
             allowed in a cookie name (no spaces, separators or control characters)"
        )))
    }
}

/// Checks each change of a ModifyLoadBalancerAttributes request on its own.
pub(crate) fn check_load_balancer_changes(changes: &[(String, String)]) -> Result<(), ApiError> {
    for (key, value) in changes {
        if key == IPV6_DENY_ALL_IGW_TRAFFIC {
            return Err(validation(format!(
                "'{key}' applies to dualstack load balancers; Berth's load balancers are ipv4"
            )));
        }
        let Some((_, _, rule)) = LOAD_BALANCER.iter().find(|(known, _, _)| known == key) else {
            return Err(not_recognized(Kind::LoadBalancer, key));
        };
        check(Kind::LoadBalancer, *rule, key, value)?;
    }
    Ok(())
}

/// The load balancer attributes after applying `changes` (each checked) to `current`.
pub(crate) fn modify_load_balancer(
    current: &BTreeMap<String, String>,
    changes: &[(String, String)],
) -> Result<BTreeMap<String, String>, ApiError> {
    check_load_balancer_changes(changes)?;
    let mut attributes = load_balancer_attributes(current);
    attributes.extend(changes.iter().cloned());
    Ok(attributes)
}

/// Checks each change of a ModifyTargetGroupAttributes request on its own.
pub(crate) fn check_target_group_changes(changes: &[(String, String)]) -> Result<(), ApiError> {
    for (key, value) in changes {
        let Some((_, _, rule)) = TARGET_GROUP.iter().find(|(known, _, _)| known == key) else {
            return Err(not_recognized(Kind::TargetGroup, key));
        };
        check(Kind::TargetGroup, *rule, key, value)?;
    }
    Ok(())
}

/// The target group attributes after applying `changes` (each checked, then the combination)
/// to `current`.
pub(crate) fn modify_target_group(
    current: &BTreeMap<String, String>,
    changes: &[(String, String)],
) -> Result<BTreeMap<String, String>, ApiError> {
    check_target_group_changes(changes)?;
    let mut attributes = target_group_attributes(current);
    attributes.extend(changes.iter().cloned());
    let get = |key: &str| attributes.get(key).map(String::as_str).unwrap_or_default();
    if get(ALGORITHM) == "weighted_random" && get(SLOW_START) != "0" {
        return Err(error(
            "InvalidConfigurationRequest",
            "Slow start cannot be enabled for a target group that uses the weighted_random \
             load balancing algorithm",
        ));
    }
    if get(ANOMALY_MITIGATION) == "on" && get(ALGORITHM) != "weighted_random" {
        return Err(error(
            "InvalidConfigurationRequest",
            format!(
                "'{ANOMALY_MITIGATION}' can only be 'on' when '{ALGORITHM}' is 'weighted_random'"
            ),
        ));
    }
    if get(STICKINESS_ENABLED) == "true"
        && get(STICKINESS_TYPE) == "app_cookie"
        && get(APP_COOKIE_NAME).is_empty()
    {
        return Err(validation(format!(
            "'{APP_COOKIE_NAME}' must be specified when stickiness of type 'app_cookie' is enabled"
        )));
    }
    Ok(attributes)
}

/// The listener attributes after applying `changes` (each checked) to `current`.
pub(crate) fn modify_listener(
    current: &BTreeMap<String, String>,
    changes: &[(String, String)],
) -> Result<BTreeMap<String, String>, ApiError> {
    for (key, value) in changes {
        if LISTENER_UNSUPPORTED.contains(&key.as_str()) {
            return Err(validation(format!(
                "Berth does not support the listener attribute '{key}'"
            )));
        }
        let Some((_, _, rule)) = LISTENER.iter().find(|(known, _, _)| known == key) else {
            return Err(not_recognized(Kind::Listener, key));
        };
        check(Kind::Listener, *rule, key, value)?;
    }
    let mut attributes = listener_attributes(current);
    attributes.extend(changes.iter().cloned());
    Ok(attributes)
}

fn not_recognized(kind: Kind, key: &str) -> ApiError {
    validation(format!(
        "{} attribute key '{key}' is not recognized",
        kind.noun()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `Ok(())` when the change is accepted, otherwise the error's (code, message start).
    fn check_lb(pairs: &[(&str, &str)], expected: Result<(), (&str, &str)>) {
        let result = modify_load_balancer(&BTreeMap::new(), &changes(pairs));
        compare(pairs, result.map(|_| ()), expected);
    }

    fn check_tg(pairs: &[(&str, &str)], expected: Result<(), (&str, &str)>) {
        let result = modify_target_group(&BTreeMap::new(), &changes(pairs));
        compare(pairs, result.map(|_| ()), expected);
    }

    fn compare(
        pairs: &[(&str, &str)],
        actual: Result<(), ApiError>,
        expected: Result<(), (&str, &str)>,
    ) {
        match (actual, expected) {
            (Ok(()), Ok(())) => {}
            (Err(err), Err((code, start))) => {
                assert_eq!(err.code, code, "{pairs:?}: {}", err.message);
                assert!(
                    err.message.starts_with(start),
                    "{pairs:?}: {} does not start with {start}",
                    err.message
                );
            }
            (actual, expected) => panic!("{pairs:?}: {actual:?} != {expected:?}"),
        }
    }

    #[test]
    fn the_defaults_are_awss_application_load_balancer_set() {
        let lb = load_balancer_defaults();
        assert_eq!(lb.len(), 22);
        assert_eq!(lb[CLIENT_KEEP_ALIVE], "3600");
        assert_eq!(lb[XFF_HEADER_PROCESSING_MODE], "append");
        assert_eq!(lb[DESYNC_MITIGATION_MODE], "defensive");
        assert_eq!(lb[HTTP2], "true");
        assert_eq!(lb[LB_CROSS_ZONE], "true");
        let tg = target_group_defaults();
        assert_eq!(tg.len(), 14);
        assert_eq!(tg[TG_CROSS_ZONE], "use_load_balancer_configuration");
        assert_eq!(tg[DNS_FAILOVER_PERCENTAGE], "off");
        assert_eq!(tg[APP_COOKIE_NAME], "");
        // An old record's two keys are completed, its own values kept.
        let old = BTreeMap::from([(IDLE_TIMEOUT.to_string(), "5".to_string())]);
        let completed = load_balancer_attributes(&old);
        assert_eq!(completed.len(), 22);
        assert_eq!(completed[IDLE_TIMEOUT], "5");
    }

    #[test]
    fn load_balancer_attributes_are_validated() {
        const VE: &str = "ValidationError";
        check_lb(&[(IDLE_TIMEOUT, "4000"), (CLIENT_KEEP_ALIVE, "60")], Ok(()));
        check_lb(
            &[(XFF_HEADER_PROCESSING_MODE, "remove"), (HTTP2, "false")],
            Ok(()),
        );
        check_lb(
            &[
                (DESYNC_MITIGATION_MODE, "strictest"),
                (WAF_FAIL_OPEN, "true"),
            ],
            Ok(()),
        );
        check_lb(
            &[
                (ACCESS_LOGS_BUCKET, "my-logs"),
                (ACCESS_LOGS_ENABLED, "false"),
            ],
            Ok(()),
        );
        check_lb(&[(LB_CROSS_ZONE, "true"), (ZONAL_SHIFT, "true")], Ok(()));
        check_lb(
            &[(IDLE_TIMEOUT, "0")],
            Err((VE, "Load balancer attribute value '0' is not valid")),
        );
        check_lb(
            &[(IDLE_TIMEOUT, "4001")],
            Err((VE, "Load balancer attribute value")),
        );
        check_lb(
            &[(CLIENT_KEEP_ALIVE, "59")],
            Err((VE, "Load balancer attribute value")),
        );
        check_lb(
            &[(HTTP2, "yes")],
            Err((VE, "Load balancer attribute value 'yes'")),
        );
        check_lb(
            &[(DESYNC_MITIGATION_MODE, "off")],
            Err((VE, "Load balancer attribute")),
        );
        check_lb(
            &[(XFF_HEADER_PROCESSING_MODE, "keep")],
            Err((VE, "Load balancer")),
        );
        check_lb(
            &[(ACCESS_LOGS_ENABLED, "true")],
            Err((VE, "Berth does not deliver logs")),
        );
        check_lb(
            &[(CONNECTION_LOGS_ENABLED, "true")],
            Err((VE, "Berth does not deliver")),
        );
        check_lb(
            &[(HEALTH_CHECK_LOGS_ENABLED, "true")],
            Err((VE, "Berth does not")),
        );
        check_lb(
            &[(LB_CROSS_ZONE, "false")],
            Err((VE, "Cross-zone load balancing")),
        );
        check_lb(
            &[(IPV6_DENY_ALL_IGW_TRAFFIC, "true")],
            Err((VE, "'ipv6.deny_all")),
        );
        check_lb(
            &[("dns_record.client_routing_policy", "any_availability_zone")],
            Err((
                VE,
                "Load balancer attribute key 'dns_record.client_routing_policy' is not recognized",
            )),
        );
    }

    #[test]
    fn listener_attributes_are_validated() {
        let check = |pairs: &[(&str, &str)], expected: Result<(), (&str, &str)>| {
            let result = modify_listener(&BTreeMap::new(), &changes(pairs));
            compare(pairs, result.map(|_| ()), expected);
        };
        check(&[(RESPONSE_SERVER_ENABLED, "false")], Ok(()));
        check(
            &[(RESPONSE_SERVER_ENABLED, "no")],
            Err((
                "ValidationError",
                "Listener attribute value 'no' is not valid",
            )),
        );
        check(
            &[("routing.http.response.x_frame_options.header_value", "DENY")],
            Err((
                "ValidationError",
                "Berth does not support the listener attribute",
            )),
        );
        check(
            &[("tcp.idle_timeout.seconds", "350")],
            Err((
                "ValidationError",
                "Listener attribute key 'tcp.idle_timeout.seconds' is not recognized",
            )),
        );
        assert_eq!(
            listener_attributes(&BTreeMap::new())[RESPONSE_SERVER_ENABLED],
            "true"
        );
    }

    #[test]
    fn target_group_attributes_are_validated() {
        const VE: &str = "ValidationError";
        const ICR: &str = "InvalidConfigurationRequest";
        check_tg(
            &[(ALGORITHM, "weighted_random"), (ANOMALY_MITIGATION, "on")],
            Ok(()),
        );
        check_tg(
            &[
                (ALGORITHM, "least_outstanding_requests"),
                (SLOW_START, "30"),
            ],
            Ok(()),
        );
        check_tg(
            &[
                (STICKINESS_ENABLED, "true"),
                (STICKINESS_TYPE, "app_cookie"),
                (APP_COOKIE_NAME, "session"),
                (APP_COOKIE_DURATION, "604800"),
            ],
            Ok(()),
        );
        check_tg(
            &[(TG_CROSS_ZONE, "false"), (DNS_FAILOVER_COUNT, "off")],
            Ok(()),
        );
        check_tg(
            &[
                (DNS_FAILOVER_PERCENTAGE, "100"),
                (UNHEALTHY_ROUTING_PERCENTAGE, "1"),
            ],
            Ok(()),
        );
        check_tg(&[(UNHEALTHY_ROUTING_COUNT, "3")], Ok(()));
        check_tg(
            &[(DEREGISTRATION_DELAY, "3601")],
            Err((VE, "Target group attribute value")),
        );
        check_tg(
            &[(SLOW_START, "10")],
            Err((VE, "Target group attribute value '10'")),
        );
        check_tg(
            &[(ALGORITHM, "random")],
            Err((VE, "Target group attribute value")),
        );
        check_tg(
            &[(STICKINESS_TYPE, "cookie")],
            Err((
                VE,
                "'Stickiness type' must be one of [app_cookie, lb_cookie, source_ip]",
            )),
        );
        check_tg(
            &[(STICKINESS_TYPE, "source_ip")],
            Err((
                ICR,
                "Stickiness type 'source_ip' is not supported for target groups",
            )),
        );
        check_tg(
            &[(APP_COOKIE_DURATION, "0")],
            Err((VE, "Target group attribute value")),
        );
        check_tg(
            &[(LB_COOKIE_DURATION, "604801")],
            Err((VE, "Target group attribute")),
        );
        check_tg(
            &[(ANOMALY_MITIGATION, "yes")],
            Err((VE, "Target group attribute")),
        );
        check_tg(
            &[(ANOMALY_MITIGATION, "on")],
            Err((ICR, "'load_balancing.algorithm")),
        );
        check_tg(
            &[(ALGORITHM, "weighted_random"), (SLOW_START, "30")],
            Err((ICR, "Slow start cannot be enabled")),
        );
        check_tg(
            &[(TG_CROSS_ZONE, "maybe")],
            Err((VE, "Target group attribute value")),
        );
        check_tg(
            &[(DNS_FAILOVER_COUNT, "0")],
            Err((VE, "Target group attribute value")),
        );
        check_tg(
            &[(UNHEALTHY_ROUTING_COUNT, "off")],
            Err((VE, "Target group attribute")),
        );
        check_tg(
            &[(DNS_FAILOVER_PERCENTAGE, "101")],
            Err((VE, "Target group attribute")),
        );
        check_tg(
            &[(APP_COOKIE_NAME, "AWSALBAPP-1")],
            Err((VE, "The application cookie")),
        );
        check_tg(
            &[(APP_COOKIE_NAME, "a b")],
            Err((VE, "The application cookie name")),
        );
        check_tg(
            &[
                (STICKINESS_ENABLED, "true"),
                (STICKINESS_TYPE, "app_cookie"),
            ],
            Err((VE, "'stickiness.app_cookie.cookie_name' must be specified")),
        );
        check_tg(
            &[("proxy_protocol_v2.enabled", "true")],
            Err((
                VE,
                "Target group attribute key 'proxy_protocol_v2.enabled' is not recognized",
            )),
        );
    }
}
