//! What the data plane serves: every load balancer's stored records (all regions) converted
//! into `load-balancer` configuration snapshots, and the address each registered target
//! resolved to.
//!
//! The conversion is total over records the API validated; a record it cannot read or
//! convert is a server error (the caller keeps serving its previous snapshots and retries).
//!
//! What reaches the data plane:
//! - HTTP listeners with their default action and their rules (conditions path-pattern,
//!   host-header, http-header, query-string, http-request-method and source-ip). Actions are
//!   `forward` (a single `TargetGroupArn`, or a `ForwardConfig` with weights; a weight left
//!   out counts as 1), `fixed-response` and `redirect` (components left out keep the
//!   request's own value, as on AWS).
//! - The target groups those actions forward to, with their health check settings and
//!   attributes. `HealthCheckEnabled=false` reaches the proxy as `enabled: false`: it runs no
//!   checks and routes to every registered target that is not draining, and
//!   DescribeTargetHealth answers `unavailable` / `Target.HealthCheckDisabled` for the group.
//! - The load balancer attributes with meaning on one machine (HTTP/2, idle timeout,
//!   client keep-alive, invalid header fields, X-Forwarded-For mode and client port, Host
//!   preservation, desync mitigation) and the target group attributes (deregistration delay,
//!   algorithm, slow start, `lb_cookie` and `app_cookie` stickiness, the unhealthy state
//!   routing minimums). The others are stored only; [`convert_load_balancer_attributes`]
//!   and `convert_attributes` say why each has no effect here.
//! - Targets of `ip` target groups, by their address.
//! - Targets of `instance` target groups: the id is a container instance's `ec2InstanceId`,
//!   served at the address its agent reports in the attribute [`HOST_ADDRESS_ATTRIBUTE`].
//!   An instance that is unknown, not ACTIVE or DRAINING (e.g. INACTIVE), or has no address
//!   is not served: the proxy does not know it (no traffic, no health checks) and
//!   DescribeTargetHealth reports it `unused` / `Target.InvalidState` with the reason.
//!   Several targets at one address and port are one target to the proxy.
//!
//! Container instances are read at every pass; the shell re-reads at least every second, so
//! an instance's address or status change reaches the proxy within that.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use api::ApiError;
use load_balancer::{
    Action, Cidr, Condition, DesyncMitigationMode, FixedResponse, ForwardAction, HealthCheck,
    HealthCheckPort, Listener, LoadBalancer, LoadBalancerAttributes, LoadBalancingAlgorithm,
    Matcher, MinimumHealthyTargets, Protocol, QueryStringPair, Redirect, RedirectStatus, Rule,
    Stickiness, StickinessKind, Target, TargetGroup, TargetGroupAttributes, WeightedTargetGroup,
    XffHeaderProcessingMode,
};
use model::container_instance::{ContainerInstance, ContainerInstanceStatus};
use store::{RangeRequest, Store};

use crate::attributes::ANOMALY_MITIGATION;
use crate::records::{ListenerRecord, LoadBalancerRecord, RuleRecord, TargetGroupRecord};
use crate::target_groups::{
    ALGORITHM, DEREGISTRATION_DELAY, SLOW_START, STICKINESS_COOKIE_DURATION, STICKINESS_ENABLED,
    STICKINESS_TYPE,
};

/// The prefix under which every ELBv2 record lives (watch it to follow changes).
pub const RECORDS_PREFIX: &str = "/elbv2/";

pub use model::container_instance::HOST_ADDRESS_ATTRIBUTE;

/// The weight of a target group in a forward action that gives none.
const DEFAULT_WEIGHT: u32 = 1;

/// What the data plane serves, read from the store in one pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataPlane {
    /// Every load balancer of every region with its ARN (in key order); listeners by port,
    /// target groups in the order the listeners (default actions, then rules by priority)
    /// first forward to them.
    pub load_balancers: Vec<(String, LoadBalancer)>,
    /// By target group ARN (for the groups some listener forwards to), the registered
    /// targets the proxy serves and the address each is served at.
    pub targets: BTreeMap<String, Vec<ResolvedTarget>>,
}

/// A registered target (its ELBv2 id and port) and the proxy's target it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResolvedTarget {
    pub id: String,
    pub port: i32,
    pub target: Target,
}

/// Reads every ELBv2 record (and the container instances `instance` targets name) and
/// converts them.
pub async fn data_plane(store: &dyn Store) -> Result<DataPlane, ApiError> {
    let response = store.range(RangeRequest::prefix(RECORDS_PREFIX)).await?;
    let mut records = Records::default();
    for kv in &response.kvs {
        records.add(&kv.key, &kv.value)?;
    }
    let mut instances = Instances::default();
    for region in records.regions_with_instance_targets() {
        instances.add_region(store, &region).await?;
    }
    records.data_plane(&instances)
}

/// Where an `instance` target's traffic goes, or why it goes nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InstanceResolution {
    Served(IpAddr),
    /// No container instance has this `ec2InstanceId`.
    Unknown,
    /// The container instance is not ACTIVE or DRAINING.
    NotRunning(ContainerInstanceStatus),
    /// The container instance has no (valid) host address attribute.
    NoAddress,
}

impl InstanceResolution {
    /// DescribeTargetHealth's description of a target that is not served.
    pub(crate) fn description(self) -> Option<String> {
        match self {
            InstanceResolution::Served(_) => None,
            InstanceResolution::Unknown => Some(
                "Target is not a registered container instance (no ec2InstanceId matches)"
                    .to_string(),
            ),
            InstanceResolution::NotRunning(status) => Some(format!(
                "Target is in the {} state; only ACTIVE and DRAINING container instances \
                 receive traffic",
                status.as_str()
            )),
            InstanceResolution::NoAddress => Some(format!(
                "Target has no {HOST_ADDRESS_ATTRIBUTE} attribute: its agent has not reported \
                 where its host ports are reached"
            )),
        }
    }
}

/// Container instances by (region, `ec2InstanceId`).
#[derive(Default)]
pub(crate) struct Instances {
    by_ec2_instance_id: BTreeMap<(String, String), Vec<ContainerInstance>>,
}

impl Instances {
    pub(crate) async fn add_region(
        &mut self,
        store: &dyn Store,
        region: &str,
    ) -> Result<(), ApiError> {
        let response = store
            .range(RangeRequest::prefix(
                api::keys::all_container_instances_prefix(region),
            ))
            .await?;
        for kv in &response.kvs {
            self.add(region, decode(&kv.key, &kv.value)?);
        }
        Ok(())
    }

    pub(crate) fn add(&mut self, region: &str, instance: ContainerInstance) {
        self.by_ec2_instance_id
            .entry((region.to_string(), instance.ec2_instance_id.clone()))
            .or_default()
            .push(instance);
    }

    /// The instance's address if one ACTIVE or DRAINING container instance has this id and
    /// an address; otherwise why not.
    pub(crate) fn resolve(&self, region: &str, ec2_instance_id: &str) -> InstanceResolution {
        let Some(instances) = self
            .by_ec2_instance_id
            .get(&(region.to_string(), ec2_instance_id.to_string()))
        else {
            return InstanceResolution::Unknown;
        };
        let running = instances.iter().find(|instance| {
            matches!(
                instance.status,
                ContainerInstanceStatus::Active | ContainerInstanceStatus::Draining
            )
        });
        match running {
            Some(instance) => instance
                .attributes
                .get(HOST_ADDRESS_ATTRIBUTE)
                .and_then(|value| value.as_deref())
                .and_then(|address| address.parse().ok())
                .map_or(InstanceResolution::NoAddress, InstanceResolution::Served),
            None => InstanceResolution::NotRunning(instances[0].status),
        }
    }
}

/// The records of all regions, sorted by kind.
#[derive(Default)]
struct Records {
    /// By (region, name).
    load_balancers: BTreeMap<(String, String), LoadBalancerRecord>,
    /// By ARN, with their region.
    target_groups: BTreeMap<String, (String, TargetGroupRecord)>,
    /// By (region, load balancer name), in key order.
    listeners: BTreeMap<(String, String), Vec<ListenerRecord>>,
    /// By listener ARN.
    rules: BTreeMap<String, Vec<RuleRecord>>,
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::server(format!("stored record {key} is unreadable: {err}")))
}

fn unconvertible(what: &str, detail: impl std::fmt::Display) -> ApiError {
    ApiError::server(format!(
        "{what} cannot be served by the load balancer: {detail}"
    ))
}

impl Records {
    fn add(&mut self, key: &str, bytes: &[u8]) -> Result<(), ApiError> {
        let Some(rest) = key.strip_prefix(RECORDS_PREFIX) else {
            return Ok(());
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [region, "loadbalancers", name] => {
                self.load_balancers
                    .insert((region.to_string(), name.to_string()), decode(key, bytes)?);
            }
            [region, "targetgroups", _name] => {
                let group: TargetGroupRecord = decode(key, bytes)?;
                self.target_groups
                    .insert(group.arn.clone(), (region.to_string(), group));
            }
            [region, "listeners", load_balancer, _id] => {
                self.listeners
                    .entry((region.to_string(), load_balancer.to_string()))
                    .or_default()
                    .push(decode(key, bytes)?);
            }
            [_region, "rules", _load_balancer, _listener, _id] => {
                let rule: RuleRecord = decode(key, bytes)?;
                self.rules
                    .entry(rule.listener_arn.clone())
                    .or_default()
                    .push(rule);
            }
            _ => {}
        }
        Ok(())
    }

    /// The regions whose `instance` target groups have targets.
    fn regions_with_instance_targets(&self) -> BTreeSet<String> {
        self.target_groups
            .values()
            .filter(|(_, group)| group.target_type == "instance" && !group.targets.is_empty())
            .map(|(region, _)| region.clone())
            .collect()
    }

    fn data_plane(&self, instances: &Instances) -> Result<DataPlane, ApiError> {
        let mut data_plane = DataPlane::default();
        for (key, record) in &self.load_balancers {
            let listener_records: Vec<&ListenerRecord> = self
                .listeners
                .get(key)
                .into_iter()
                .flatten()
                .filter(|listener| listener.load_balancer_arn == record.arn)
                .collect();
            let mut listeners = Vec::new();
            for listener in listener_records {
                // Only HTTP listeners exist in the data plane; the API creates no others.
                if listener.protocol != Protocol::Http.as_elbv2() {
                    continue;
                }
                let port = u16::try_from(listener.port)
                    .map_err(|err| unconvertible(&listener.arn, err))?;
                let default_actions = convert_actions(&listener.arn, &listener.default_actions)?;
                let mut rule_records: Vec<&RuleRecord> = self
                    .rules
                    .get(&listener.arn)
                    .into_iter()
                    .flatten()
                    .collect();
                rule_records.sort_by_key(|rule| rule.priority);
                let rules = rule_records
                    .into_iter()
                    .map(convert_rule)
                    .collect::<Result<Vec<_>, _>>()?;
                let listener_attributes = StoredAttributes {
                    arn: &listener.arn,
                    attributes: &listener.attributes,
                };
                listeners.push(Listener {
                    port,
                    protocol: Protocol::Http,
                    default_actions,
                    rules,
                    response_server_enabled: listener_attributes
                        .boolean(RESPONSE_SERVER_ENABLED, true)?,
                });
            }
            listeners.sort_by_key(|listener| listener.port);
            let mut target_group_arns: Vec<String> = Vec::new();
            let actions = listeners.iter().flat_map(|listener| {
                listener
                    .default_actions
                    .iter()
                    .chain(listener.rules.iter().flat_map(|rule| &rule.actions))
            });
            for action in actions {
                if let Action::Forward(forward) = action {
                    for group in &forward.target_groups {
                        if !target_group_arns.contains(&group.target_group_arn) {
                            target_group_arns.push(group.target_group_arn.clone());
                        }
                    }
                }
            }
            let mut target_groups = Vec::new();
            for arn in &target_group_arns {
                let Some((region, group)) = self.target_groups.get(arn) else {
                    return Err(unconvertible(
                        &record.arn,
                        format!("its listener forwards to target group {arn}, which is not stored"),
                    ));
                };
                let (target_group, resolved) =
                    convert_target_group(group, |id| instances.resolve(region, id))?;
                target_groups.push(target_group);
                data_plane.targets.insert(arn.clone(), resolved);
            }
            data_plane.load_balancers.push((
                record.arn.clone(),
                LoadBalancer {
                    name: record.name.clone(),
                    listeners,
                    target_groups,
                    attributes: convert_load_balancer_attributes(&record.arn, &record.attributes)?,
                },
            ));
        }
        Ok(data_plane)
    }
}

fn convert_actions(
    owner_arn: &str,
    actions: &[elbv2_wire::Action],
) -> Result<Vec<Action>, ApiError> {
    actions
        .iter()
        .map(|action| convert_action(owner_arn, action))
        .collect()
}

fn convert_rule(rule: &RuleRecord) -> Result<Rule, ApiError> {
    let priority = u32::try_from(rule.priority).map_err(|err| unconvertible(&rule.arn, err))?;
    let conditions = rule
        .conditions
        .iter()
        .map(|condition| convert_condition(&rule.arn, condition))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rule {
        priority,
        conditions,
        actions: convert_actions(&rule.arn, &rule.actions)?,
    })
}

/// A stored (normalised) condition; the legacy `Values` stand in for a missing config of
/// host-header and path-pattern.
fn convert_condition(
    rule_arn: &str,
    condition: &elbv2_wire::RuleCondition,
) -> Result<Condition, ApiError> {
    let legacy = || condition.values.clone().unwrap_or_default();
    match condition.field.as_deref().unwrap_or_default() {
        "path-pattern" => Ok(Condition::PathPattern {
            values: condition
                .path_pattern_config
                .as_ref()
                .and_then(|config| config.values.clone())
                .unwrap_or_else(legacy),
        }),
        "host-header" => Ok(Condition::HostHeader {
            values: condition
                .host_header_config
                .as_ref()
                .and_then(|config| config.values.clone())
                .unwrap_or_else(legacy),
        }),
        "http-header" => {
            let config = condition.http_header_config.clone().unwrap_or_default();
            Ok(Condition::HttpHeader {
                http_header_name: config.http_header_name.unwrap_or_default(),
                values: config.values.unwrap_or_default(),
            })
        }
        "query-string" => Ok(Condition::QueryString {
            values: condition
                .query_string_config
                .as_ref()
                .and_then(|config| config.values.as_ref())
                .into_iter()
                .flatten()
                .map(|pair| QueryStringPair {
                    key: pair.key.clone(),
                    value: pair.value.clone().unwrap_or_default(),
                })
                .collect(),
        }),
        "http-request-method" => Ok(Condition::HttpRequestMethod {
            values: condition
                .http_request_method_config
                .as_ref()
                .and_then(|config| config.values.clone())
                .unwrap_or_default(),
        }),
        "source-ip" => Ok(Condition::SourceIp {
            values: condition
                .source_ip_config
                .as_ref()
                .and_then(|config| config.values.as_ref())
                .into_iter()
                .flatten()
                .map(|cidr| Cidr::parse(cidr).map_err(|err| unconvertible(rule_arn, err)))
                .collect::<Result<Vec<_>, _>>()?,
        }),
        other => Err(unconvertible(
            rule_arn,
            format!("condition field {other:?} is not one Berth serves"),
        )),
    }
}

fn convert_action(listener_arn: &str, action: &elbv2_wire::Action) -> Result<Action, ApiError> {
    let kind = action.type_.as_deref().unwrap_or_default();
    match kind {
        "forward" => {
            let tuples = action
                .forward_config
                .as_ref()
                .and_then(|config| config.target_groups.as_ref())
                .filter(|tuples| !tuples.is_empty());
            let target_groups = match (tuples, &action.target_group_arn) {
                (Some(tuples), _) => tuples
                    .iter()
                    .map(|tuple| {
                        let weight = match tuple.weight {
                            Some(weight) => u32::try_from(weight)
                                .map_err(|err| unconvertible(listener_arn, err))?,
                            None => DEFAULT_WEIGHT,
                        };
                        Ok(WeightedTargetGroup {
                            target_group_arn: tuple.target_group_arn.clone().unwrap_or_default(),
                            weight,
                        })
                    })
                    .collect::<Result<Vec<_>, ApiError>>()?,
                (None, Some(arn)) => vec![WeightedTargetGroup {
                    target_group_arn: arn.clone(),
                    weight: DEFAULT_WEIGHT,
                }],
                (None, None) => {
                    return Err(unconvertible(
                        listener_arn,
                        "a forward action names no target group",
                    ))
                }
            };
            Ok(Action::Forward(ForwardAction { target_groups }))
        }
        "fixed-response" => {
            let config = action.fixed_response_config.as_ref().ok_or_else(|| {
                unconvertible(listener_arn, "a fixed-response action has no configuration")
            })?;
            let status = config.status_code.as_deref().unwrap_or_default();
            let status_code = status.parse::<u16>().map_err(|_| {
                unconvertible(
                    listener_arn,
                    format!("status code {status:?} is not a number"),
                )
            })?;
            Ok(Action::FixedResponse(FixedResponse {
                status_code,
                content_type: config.content_type.clone(),
                message_body: config.message_body.clone(),
            }))
        }
        "redirect" => {
            let config = action.redirect_config.as_ref().ok_or_else(|| {
                unconvertible(listener_arn, "a redirect action has no configuration")
            })?;
            let defaults = Redirect::default();
            let or = |value: &Option<String>, default: String| value.clone().unwrap_or(default);
            let status_code = match config.status_code.as_deref() {
                Some("HTTP_301") => RedirectStatus::Http301,
                Some("HTTP_302") => RedirectStatus::Http302,
                other => {
                    return Err(unconvertible(
                        listener_arn,
                        format!("redirect status code {other:?} is not HTTP_301 or HTTP_302"),
                    ))
                }
            };
            Ok(Action::Redirect(Redirect {
                protocol: or(&config.protocol, defaults.protocol),
                host: or(&config.host, defaults.host),
                port: or(&config.port, defaults.port),
                path: or(&config.path, defaults.path),
                query: or(&config.query, defaults.query),
                status_code,
            }))
        }
        other => Err(unconvertible(
            listener_arn,
            format!("action type {other:?} is not forward, fixed-response or redirect"),
        )),
    }
}

/// The proxy's target group and, for each registered target it serves, the target it
/// resolved to. `resolve_instance` answers for the ids of an `instance` group.
pub(crate) fn convert_target_group(
    group: &TargetGroupRecord,
    resolve_instance: impl Fn(&str) -> InstanceResolution,
) -> Result<(TargetGroup, Vec<ResolvedTarget>), ApiError> {
    let fail = |detail: String| unconvertible(&group.arn, detail);
    let seconds = |value: i32, name: &str| {
        u32::try_from(value).map_err(|_| fail(format!("{name} {value} is negative")))
    };
    let check = &group.health_check;
    let port = if check.port == "traffic-port" {
        HealthCheckPort::TrafficPort
    } else {
        HealthCheckPort::Port(
            check
                .port
                .parse()
                .map_err(|_| fail(format!("health check port {:?} is not a port", check.port)))?,
        )
    };
    let health_check = HealthCheck {
        enabled: check.enabled,
        path: check.path.clone(),
        port,
        interval_seconds: seconds(check.interval_seconds, "health check interval")?,
        timeout_seconds: seconds(check.timeout_seconds, "health check timeout")?,
        healthy_threshold_count: seconds(check.healthy_threshold_count, "healthy threshold")?,
        unhealthy_threshold_count: seconds(check.unhealthy_threshold_count, "unhealthy threshold")?,
        matcher: Matcher::parse(&check.matcher_http_code).map_err(|err| fail(err.to_string()))?,
    };
    let mut resolved = Vec::new();
    for record in &group.targets {
        let address = if group.target_type == "ip" {
            record
                .id
                .parse::<IpAddr>()
                .map_err(|_| fail(format!("target {:?} is not an IP address", record.id)))?
        } else {
            match resolve_instance(&record.id) {
                InstanceResolution::Served(address) => address,
                _ => continue,
            }
        };
        let port = u16::try_from(record.port)
            .map_err(|_| fail(format!("target port {} is out of range", record.port)))?;
        resolved.push(ResolvedTarget {
            id: record.id.clone(),
            port: record.port,
            target: Target { id: address, port },
        });
    }
    let mut targets: Vec<Target> = resolved.iter().map(|resolved| resolved.target).collect();
    targets.sort();
    targets.dedup();
    Ok((
        TargetGroup {
            target_group_arn: group.arn.clone(),
            targets,
            health_check,
            attributes: convert_attributes(&group.arn, &group.attributes)?,
        },
        resolved,
    ))
}

/// Load balancer attribute keys the data plane reads.
const HTTP2_ENABLED: &str = "routing.http2.enabled";
const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";
const CLIENT_KEEP_ALIVE: &str = "client_keep_alive.seconds";
const DROP_INVALID_HEADER_FIELDS: &str = "routing.http.drop_invalid_header_fields.enabled";
const XFF_HEADER_PROCESSING_MODE: &str = "routing.http.xff_header_processing.mode";
const XFF_CLIENT_PORT: &str = "routing.http.xff_client_port.enabled";
const PRESERVE_HOST_HEADER: &str = "routing.http.preserve_host_header.enabled";
const DESYNC_MITIGATION_MODE: &str = "routing.http.desync_mitigation_mode";
/// The listener attribute key the data plane reads.
const RESPONSE_SERVER_ENABLED: &str = "routing.http.response.server.enabled";
/// Target group attribute keys the data plane reads (beyond those of
/// `target_groups`).
const APP_COOKIE_NAME: &str = "stickiness.app_cookie.cookie_name";
const APP_COOKIE_DURATION: &str = "stickiness.app_cookie.duration_seconds";
const MINIMUM_HEALTHY_TARGETS_COUNT: &str =
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count";
const MINIMUM_HEALTHY_TARGETS_PERCENTAGE: &str =
    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage";

/// Reads stored attributes (`arn` names their owner in errors); a key left
/// out has ALB's default.
struct StoredAttributes<'a> {
    arn: &'a str,
    attributes: &'a BTreeMap<String, String>,
}

impl StoredAttributes<'_> {
    fn bad(&self, key: &str, value: &str) -> ApiError {
        unconvertible(self.arn, format!("attribute {key}={value:?}"))
    }

    fn number(&self, key: &str, default: u32) -> Result<u32, ApiError> {
        match self.attributes.get(key) {
            Some(value) => value.parse().map_err(|_| self.bad(key, value)),
            None => Ok(default),
        }
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.attributes.get(key).map(String::as_str) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(self.bad(key, other)),
        }
    }

    /// The value of `key` among `choices` (by their ELBv2 spelling).
    fn choice<T: Copy>(&self, key: &str, default: T, choices: &[(&str, T)]) -> Result<T, ApiError> {
        match self.attributes.get(key) {
            None => Ok(default),
            Some(value) => choices
                .iter()
                .find(|(name, _)| name == value)
                .map(|(_, choice)| *choice)
                .ok_or_else(|| self.bad(key, value)),
        }
    }
}

/// The load balancer attributes with meaning on one machine. The others
/// (access and connection logs, deletion protection, WAF fail-open, zonal
/// shift, TLS headers, IPv6 IGW traffic) are stored by the API and have no
/// effect here: Berth has no S3 logs, WAF, zones or TLS listeners.
pub(crate) fn convert_load_balancer_attributes(
    arn: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<LoadBalancerAttributes, ApiError> {
    let stored = StoredAttributes { arn, attributes };
    let defaults = LoadBalancerAttributes::default();
    Ok(LoadBalancerAttributes {
        http2_enabled: stored.boolean(HTTP2_ENABLED, defaults.http2_enabled)?,
        idle_timeout_seconds: stored.number(IDLE_TIMEOUT, defaults.idle_timeout_seconds)?,
        client_keep_alive_seconds: stored
            .number(CLIENT_KEEP_ALIVE, defaults.client_keep_alive_seconds)?,
        drop_invalid_header_fields: stored.boolean(
            DROP_INVALID_HEADER_FIELDS,
            defaults.drop_invalid_header_fields,
        )?,
        xff_header_processing_mode: stored.choice(
            XFF_HEADER_PROCESSING_MODE,
            defaults.xff_header_processing_mode,
            &[
                ("append", XffHeaderProcessingMode::Append),
                ("preserve", XffHeaderProcessingMode::Preserve),
                ("remove", XffHeaderProcessingMode::Remove),
            ],
        )?,
        xff_client_port_enabled: stored
            .boolean(XFF_CLIENT_PORT, defaults.xff_client_port_enabled)?,
        preserve_host_header: stored
            .boolean(PRESERVE_HOST_HEADER, defaults.preserve_host_header)?,
        desync_mitigation_mode: stored.choice(
            DESYNC_MITIGATION_MODE,
            defaults.desync_mitigation_mode,
            &[
                ("monitor", DesyncMitigationMode::Monitor),
                ("defensive", DesyncMitigationMode::Defensive),
                ("strictest", DesyncMitigationMode::Strictest),
            ],
        )?,
    })
}

/// The target group attributes with meaning on one machine.
/// `load_balancing.cross_zone.enabled` is stored and has no effect: Berth's
/// load balancer is one node that reaches every target, so every target is
/// in its zone. `target_group_health.dns_failover.*` is stored too: Berth
/// publishes no DNS records to fail over. `load_balancing.algorithm.anomaly_mitigation`
/// turns automatic target weights' mitigation on (with `weighted_random`).
fn convert_attributes(
    arn: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<TargetGroupAttributes, ApiError> {
    let defaults = TargetGroupAttributes::default();
    let stored = StoredAttributes { arn, attributes };
    let number = |key: &str, default: u32| stored.number(key, default);
    let load_balancing_algorithm_type = match attributes.get(ALGORITHM).map(String::as_str) {
        None | Some("round_robin") => LoadBalancingAlgorithm::RoundRobin,
        Some("least_outstanding_requests") => LoadBalancingAlgorithm::LeastOutstandingRequests,
        Some("weighted_random") => LoadBalancingAlgorithm::WeightedRandom,
        Some(other) => {
            return Err(unconvertible(
                arn,
                format!("attribute {ALGORITHM}={other:?}"),
            ))
        }
    };
    let anomaly_mitigation_enabled =
        stored.choice(ANOMALY_MITIGATION, false, &[("on", true), ("off", false)])?;
    let stickiness_kind = stored.choice(
        STICKINESS_TYPE,
        StickinessKind::LbCookie,
        &[
            ("lb_cookie", StickinessKind::LbCookie),
            ("app_cookie", StickinessKind::AppCookie),
        ],
    )?;
    let minimum_healthy_percentage = match attributes
        .get(MINIMUM_HEALTHY_TARGETS_PERCENTAGE)
        .map(String::as_str)
    {
        None | Some("off") => None,
        Some(value) => Some(
            value
                .parse()
                .map_err(|_| stored.bad(MINIMUM_HEALTHY_TARGETS_PERCENTAGE, value))?,
        ),
    };
    Ok(TargetGroupAttributes {
        deregistration_delay_timeout_seconds: number(
            DEREGISTRATION_DELAY,
            defaults.deregistration_delay_timeout_seconds,
        )?,
        load_balancing_algorithm_type,
        anomaly_mitigation_enabled,
        slow_start_duration_seconds: number(SLOW_START, defaults.slow_start_duration_seconds)?,
        stickiness: Stickiness {
            enabled: stored.boolean(STICKINESS_ENABLED, false)?,
            kind: stickiness_kind,
            lb_cookie_duration_seconds: number(
                STICKINESS_COOKIE_DURATION,
                defaults.stickiness.lb_cookie_duration_seconds,
            )?,
            app_cookie_name: attributes.get(APP_COOKIE_NAME).cloned().unwrap_or_default(),
            app_cookie_duration_seconds: number(
                APP_COOKIE_DURATION,
                defaults.stickiness.app_cookie_duration_seconds,
            )?,
        },
        unhealthy_state_routing: MinimumHealthyTargets {
            count: number(
                MINIMUM_HEALTHY_TARGETS_COUNT,
                defaults.unhealthy_state_routing.count,
            )?,
            percentage: minimum_healthy_percentage,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use api::RequestContext;

    use super::*;
    use crate::tests::between;
    use crate::Elbv2;

    struct Harness {
        store: Arc<store::MemoryStore>,
        elbv2: Elbv2,
    }

    impl Harness {
        fn new() -> Self {
            let store = Arc::new(store::MemoryStore::new());
            Harness {
                elbv2: Elbv2::new(Arc::clone(&store) as Arc<dyn Store>),
                store,
            }
        }

        async fn call_in(&self, region: &str, body: &str) -> String {
            let ctx = RequestContext {
                region: region.into(),
                account_id: "000000000000".into(),
                principal_arn: "arn:aws:iam::000000000000:root".into(),
                access_key_id: String::new(),
                request_id: "request".into(),
                now_ms: 1_700_000_000_000,
            };
            let body = format!("Version=2015-12-01&{body}");
            let xml = self
                .elbv2
                .handle(&ctx, body.as_bytes())
                .await
                .unwrap_or_else(|err| panic!("{body}: {err}"));
            String::from_utf8(xml).unwrap()
        }

        async fn call(&self, body: &str) -> String {
            self.call_in("us-east-1", body).await
        }

        async fn data_plane(&self) -> DataPlane {
            data_plane(&*self.store).await.unwrap()
        }

        async fn configs(&self) -> Vec<(String, LoadBalancer)> {
            self.data_plane().await.load_balancers
        }

        /// Stores a container instance as the ECS API does.
        async fn container_instance(
            &self,
            region: &str,
            ec2_instance_id: &str,
            status: ContainerInstanceStatus,
            host_address: Option<&str>,
        ) {
            crate::tests::put_container_instance(
                &*self.store,
                region,
                ec2_instance_id,
                status,
                host_address,
            )
            .await;
        }
    }

    fn stored(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn load_balancer_attributes_reach_the_data_plane() {
        let check = |pairs: &[(&str, &str)], expected: Result<LoadBalancerAttributes, &str>| {
            let converted = convert_load_balancer_attributes("lb", &stored(pairs));
            match (converted, expected) {
                (Ok(converted), Ok(expected)) => assert_eq!(converted, expected, "{pairs:?}"),
                (Err(err), Err(expected)) => {
                    assert!(err.message.contains(expected), "{err:?} {expected}")
                }
                (converted, expected) => panic!("{pairs:?}: {converted:?}, not {expected:?}"),
            }
        };
        let defaults = LoadBalancerAttributes::default();
        check(&[], Ok(defaults));
        // Keys the data plane does not read are only stored.
        check(
            &[
                ("deletion_protection.enabled", "true"),
                ("access_logs.s3.enabled", "false"),
                ("waf.fail_open.enabled", "false"),
            ],
            Ok(defaults),
        );
        check(
            &[
                ("routing.http2.enabled", "false"),
                ("idle_timeout.timeout_seconds", "5"),
                ("client_keep_alive.seconds", "60"),
                ("routing.http.drop_invalid_header_fields.enabled", "true"),
                ("routing.http.xff_header_processing.mode", "preserve"),
                ("routing.http.xff_client_port.enabled", "true"),
                ("routing.http.preserve_host_header.enabled", "true"),
                ("routing.http.desync_mitigation_mode", "strictest"),
            ],
            Ok(LoadBalancerAttributes {
                http2_enabled: false,
                idle_timeout_seconds: 5,
                client_keep_alive_seconds: 60,
                drop_invalid_header_fields: true,
                xff_header_processing_mode: XffHeaderProcessingMode::Preserve,
                xff_client_port_enabled: true,
                preserve_host_header: true,
                desync_mitigation_mode: DesyncMitigationMode::Strictest,
            }),
        );
        check(
            &[
                ("routing.http.xff_header_processing.mode", "remove"),
                ("routing.http.desync_mitigation_mode", "monitor"),
            ],
            Ok(LoadBalancerAttributes {
                xff_header_processing_mode: XffHeaderProcessingMode::Remove,
                desync_mitigation_mode: DesyncMitigationMode::Monitor,
                ..defaults
            }),
        );
        check(
            &[("routing.http2.enabled", "yes")],
            Err("attribute routing.http2.enabled=\"yes\""),
        );
        check(
            &[("routing.http.desync_mitigation_mode", "paranoid")],
            Err("routing.http.desync_mitigation_mode"),
        );
        check(
            &[("idle_timeout.timeout_seconds", "-1")],
            Err("idle_timeout.timeout_seconds"),
        );
    }

    #[test]
    fn target_group_attributes_reach_the_data_plane() {
        let check = |pairs: &[(&str, &str)], expected: TargetGroupAttributes| {
            let converted = convert_attributes("tg", &stored(pairs)).unwrap();
            assert_eq!(converted, expected, "{pairs:?}");
        };
        let defaults = TargetGroupAttributes::default();
        check(&[], defaults.clone());
        check(
            &[
                (
                    "load_balancing.cross_zone.enabled",
                    "use_load_balancer_configuration",
                ),
                (
                    "target_group_health.dns_failover.minimum_healthy_targets.count",
                    "off",
                ),
                ("stickiness.type", "lb_cookie"),
                ("stickiness.app_cookie.cookie_name", "SESSION"),
            ],
            TargetGroupAttributes {
                stickiness: Stickiness {
                    app_cookie_name: "SESSION".into(),
                    ..Stickiness::default()
                },
                ..defaults.clone()
            },
        );
        check(
            &[
                ("stickiness.enabled", "true"),
                ("stickiness.type", "app_cookie"),
                ("stickiness.app_cookie.cookie_name", "SESSION"),
                ("stickiness.app_cookie.duration_seconds", "120"),
            ],
            TargetGroupAttributes {
                stickiness: Stickiness::app_cookie("SESSION", 120),
                ..defaults.clone()
            },
        );
        check(
            &[
                (
                    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
                    "2",
                ),
                (
                    "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
                    "50",
                ),
            ],
            TargetGroupAttributes {
                unhealthy_state_routing: MinimumHealthyTargets {
                    count: 2,
                    percentage: Some(50),
                },
                ..defaults.clone()
            },
        );
        check(
            &[(
                "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
                "off",
            )],
            defaults.clone(),
        );
        check(
            &[("load_balancing.algorithm.type", "weighted_random")],
            TargetGroupAttributes {
                load_balancing_algorithm_type: LoadBalancingAlgorithm::WeightedRandom,
                ..defaults.clone()
            },
        );
        check(
            &[
                ("load_balancing.algorithm.type", "weighted_random"),
                ("load_balancing.algorithm.anomaly_mitigation", "on"),
            ],
            TargetGroupAttributes {
                load_balancing_algorithm_type: LoadBalancingAlgorithm::WeightedRandom,
                anomaly_mitigation_enabled: true,
                ..defaults.clone()
            },
        );
        check(
            &[("load_balancing.algorithm.anomaly_mitigation", "off")],
            defaults.clone(),
        );
        assert!(convert_attributes("tg", &stored(&[("stickiness.type", "source_ip")])).is_err());
    }

    #[tokio::test]
    async fn listener_attributes_reach_the_data_plane() {
        let h = Harness::new();
        let lb = between(
            &h.call("Action=CreateLoadBalancer&Name=web").await,
            "<LoadBalancerArn>",
            "</LoadBalancerArn>",
        );
        let tg = between(
            &h.call("Action=CreateTargetGroup&Name=app&Protocol=HTTP&Port=80&TargetType=ip")
                .await,
            "<TargetGroupArn>",
            "</TargetGroupArn>",
        );
        let listener = between(
            &h.call(&format!(
                "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port=8081\
                 &DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={tg}"
            ))
            .await,
            "<ListenerArn>",
            "</ListenerArn>",
        );
        assert!(h.configs().await[0].1.listeners[0].response_server_enabled);
        h.call(&format!(
            "Action=ModifyListenerAttributes&ListenerArn={listener}\
             &Attributes.member.1.Key=routing.http.response.server.enabled\
             &Attributes.member.1.Value=false"
        ))
        .await;
        assert!(!h.configs().await[0].1.listeners[0].response_server_enabled);
    }

    #[tokio::test]
    async fn ip_targets_health_checks_and_attributes() {
        let h = Harness::new();
        let lb = between(
            &h.call("Action=CreateLoadBalancer&Name=web").await,
            "<LoadBalancerArn>",
            "</LoadBalancerArn>",
        );
        let tg = between(
            &h.call(
                "Action=CreateTargetGroup&Name=app&Protocol=HTTP&Port=8080&TargetType=ip\
                 &HealthCheckPath=/health&HealthCheckIntervalSeconds=5&HealthCheckTimeoutSeconds=2\
                 &HealthyThresholdCount=2&UnhealthyThresholdCount=3&HealthCheckPort=9000\
                 &Matcher.HttpCode=200-299",
            )
            .await,
            "<TargetGroupArn>",
            "</TargetGroupArn>",
        );
        h.call(&format!(
            "Action=RegisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.1\
             &Targets.member.2.Id=10.0.0.2&Targets.member.2.Port=81"
        ))
        .await;
        for (key, value) in [
            ("deregistration_delay.timeout_seconds", "5"),
            (
                "load_balancing.algorithm.type",
                "least_outstanding_requests",
            ),
            ("stickiness.enabled", "true"),
            ("stickiness.lb_cookie.duration_seconds", "60"),
        ] {
            h.call(&format!(
                "Action=ModifyTargetGroupAttributes&TargetGroupArn={tg}\
                 &Attributes.member.1.Key={key}&Attributes.member.1.Value={value}"
            ))
            .await;
        }
        assert_eq!(
            h.configs().await,
            vec![(
                lb.clone(),
                LoadBalancer {
                    name: "web".into(),
                    listeners: vec![],
                    target_groups: vec![],
                    attributes: LoadBalancerAttributes::default(),
                }
            )],
            "a load balancer without listeners serves nothing"
        );
        h.call(&format!(
            "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port=8081\
             &DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={tg}"
        ))
        .await;
        let expected = LoadBalancer {
            name: "web".into(),
            listeners: vec![Listener {
                port: 8081,
                protocol: Protocol::Http,
                default_actions: vec![Action::Forward(ForwardAction {
                    target_groups: vec![WeightedTargetGroup {
                        target_group_arn: tg.clone(),
                        weight: 1,
                    }],
                })],
                rules: vec![],
                response_server_enabled: true,
            }],
            target_groups: vec![TargetGroup {
                target_group_arn: tg.clone(),
                targets: vec![
                    Target {
                        id: "10.0.0.1".parse().unwrap(),
                        port: 8080,
                    },
                    Target {
                        id: "10.0.0.2".parse().unwrap(),
                        port: 81,
                    },
                ],
                health_check: HealthCheck {
                    enabled: true,
                    path: "/health".into(),
                    port: HealthCheckPort::Port(9000),
                    interval_seconds: 5,
                    timeout_seconds: 2,
                    healthy_threshold_count: 2,
                    unhealthy_threshold_count: 3,
                    matcher: Matcher::parse("200-299").unwrap(),
                },
                attributes: TargetGroupAttributes {
                    deregistration_delay_timeout_seconds: 5,
                    load_balancing_algorithm_type: LoadBalancingAlgorithm::LeastOutstandingRequests,
                    anomaly_mitigation_enabled: false,
                    slow_start_duration_seconds: 0,
                    stickiness: Stickiness::lb_cookie(60),
                    unhealthy_state_routing: MinimumHealthyTargets::default(),
                },
            }],
            attributes: LoadBalancerAttributes::default(),
        };
        let configs = h.configs().await;
        assert_eq!(configs, vec![(lb, expected)]);
        configs[0].1.validate().unwrap();

        h.call(&format!(
            "Action=DeregisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.1"
        ))
        .await;
        let targets = &h.configs().await[0].1.target_groups[0].targets;
        assert_eq!(
            targets,
            &vec![Target {
                id: "10.0.0.2".parse().unwrap(),
                port: 81
            }]
        );
    }

    #[tokio::test]
    async fn weighted_forward_fixed_response_redirect_and_regions() {
        let h = Harness::new();
        let lb = between(
            &h.call("Action=CreateLoadBalancer&Name=web").await,
            "<LoadBalancerArn>",
            "</LoadBalancerArn>",
        );
        let blue = between(
            &h.call("Action=CreateTargetGroup&Name=blue&Protocol=HTTP&Port=80&TargetType=ip")
                .await,
            "<TargetGroupArn>",
            "</TargetGroupArn>",
        );
        let green = between(
            &h.call("Action=CreateTargetGroup&Name=green&Protocol=HTTP&Port=80&TargetType=ip")
                .await,
            "<TargetGroupArn>",
            "</TargetGroupArn>",
        );
        h.call(&format!(
            "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port=80\
             &DefaultActions.member.1.Type=forward\
             &DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn={blue}\
             &DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight=9\
             &DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn={green}\
             &DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.Weight=1"
        ))
        .await;
        h.call(&format!(
            "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port=81\
             &DefaultActions.member.1.Type=fixed-response\
             &DefaultActions.member.1.FixedResponseConfig.StatusCode=404\
             &DefaultActions.member.1.FixedResponseConfig.ContentType=text/plain\
             &DefaultActions.member.1.FixedResponseConfig.MessageBody=nothing"
        ))
        .await;
        h.call(&format!(
            "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port=82\
             &DefaultActions.member.1.Type=redirect\
             &DefaultActions.member.1.RedirectConfig.StatusCode=HTTP_302\
             &DefaultActions.member.1.RedirectConfig.Port=443\
             &DefaultActions.member.1.RedirectConfig.Protocol=HTTPS"
        ))
        .await;
        // An instance target whose container instance reported no address is not served.
        h.container_instance("eu-west-1", "i-123", ContainerInstanceStatus::Active, None)
            .await;
        let instances = between(
            &h.call_in(
                "eu-west-1",
                "Action=CreateTargetGroup&Name=instances&Protocol=HTTP&Port=80\
                 &TargetType=instance&VpcId=vpc-1",
            )
            .await,
            "<TargetGroupArn>",
            "</TargetGroupArn>",
        );
        h.call_in(
            "eu-west-1",
            &format!("Action=RegisterTargets&TargetGroupArn={instances}&Targets.member.1.Id=i-123"),
        )
        .await;
        let other = between(
            &h.call_in("eu-west-1", "Action=CreateLoadBalancer&Name=web")
                .await,
            "<LoadBalancerArn>",
            "</LoadBalancerArn>",
        );
        h.call_in(
            "eu-west-1",
            &format!(
                "Action=CreateListener&LoadBalancerArn={other}&Protocol=HTTP&Port=83\
                 &DefaultActions.member.1.Type=forward\
                 &DefaultActions.member.1.TargetGroupArn={instances}"
            ),
        )
        .await;

        let configs: BTreeMap<String, LoadBalancer> = h.configs().await.into_iter().collect();
        assert_eq!(configs.len(), 2);
        let web = &configs[&lb];
        web.validate().unwrap();
        let actions: Vec<(u16, &Action)> = web
            .listeners
            .iter()
            .map(|listener| (listener.port, &listener.default_actions[0]))
            .collect();
        assert_eq!(
            actions,
            vec![
                (
                    80,
                    &Action::Forward(ForwardAction {
                        target_groups: vec![
                            WeightedTargetGroup {
                                target_group_arn: blue.clone(),
                                weight: 9
                            },
                            WeightedTargetGroup {
                                target_group_arn: green.clone(),
                                weight: 1
                            },
                        ]
                    })
                ),
                (
                    81,
                    &Action::FixedResponse(FixedResponse {
                        status_code: 404,
                        content_type: Some("text/plain".into()),
                        message_body: Some("nothing".into()),
                    })
                ),
                (
                    82,
                    &Action::Redirect(Redirect {
                        protocol: "HTTPS".into(),
                        port: "443".into(),
                        status_code: RedirectStatus::Http302,
                        ..Redirect::default()
                    })
                ),
            ]
        );
        let groups: Vec<(&str, &HealthCheck)> = web
            .target_groups
            .iter()
            .map(|group| (group.target_group_arn.as_str(), &group.health_check))
            .collect();
        let default_check = HealthCheck {
            enabled: true,
            path: "/".into(),
            port: HealthCheckPort::TrafficPort,
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold_count: 5,
            unhealthy_threshold_count: 2,
            matcher: Matcher::parse("200").unwrap(),
        };
        assert_eq!(
            groups,
            vec![
                (blue.as_str(), &default_check),
                (green.as_str(), &default_check)
            ]
        );

        let eu = &configs[&other];
        eu.validate().unwrap();
        assert_eq!(eu.name, "web");
        assert_eq!(eu.target_groups.len(), 1);
        assert_eq!(eu.target_groups[0].target_group_arn, instances);
        assert!(eu.target_groups[0].targets.is_empty());
    }

    #[tokio::test]
    async fn rules_and_instance_targets_reach_the_data_plane() {
        let h = Harness::new();
        let arn_of =
            |xml: String, tag: &str| between(&xml, &format!("<{tag}>"), &format!("</{tag}>"));
        let lb = arn_of(
            h.call("Action=CreateLoadBalancer&Name=web").await,
            "LoadBalancerArn",
        );
        let site = arn_of(
            h.call("Action=CreateTargetGroup&Name=site&Protocol=HTTP&Port=80&TargetType=ip")
                .await,
            "TargetGroupArn",
        );
        let api = arn_of(
            h.call("Action=CreateTargetGroup&Name=api&Protocol=HTTP&Port=8080&TargetType=instance")
                .await,
            "TargetGroupArn",
        );
        h.container_instance(
            "us-east-1",
            "i-1",
            ContainerInstanceStatus::Active,
            Some("127.0.0.1"),
        )
        .await;
        h.container_instance(
            "us-east-1",
            "i-2",
            ContainerInstanceStatus::Draining,
            Some("127.0.0.1"),
        )
        .await;
        h.container_instance(
            "us-east-1",
            "i-3",
            ContainerInstanceStatus::Active,
            Some("127.0.0.3"),
        )
        .await;
        h.call(&format!(
            "Action=RegisterTargets&TargetGroupArn={api}&Targets.member.1.Id=i-1\
             &Targets.member.2.Id=i-2&Targets.member.3.Id=i-3&Targets.member.3.Port=9090"
        ))
        .await;
        // i-3 leaves the cluster after registration: no longer served.
        h.container_instance(
            "us-east-1",
            "i-3",
            ContainerInstanceStatus::Inactive,
            Some("127.0.0.3"),
        )
        .await;
        let listener = arn_of(
            h.call(&format!(
                "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port=80\
                 &DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={site}"
            ))
            .await,
            "ListenerArn",
        );
        h.call(&format!(
            "Action=CreateRule&ListenerArn={listener}&Priority=20\
             &Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/api/*\
             &Conditions.member.2.Field=http-header&Conditions.member.2.HttpHeaderConfig.HttpHeaderName=X-Version\
             &Conditions.member.2.HttpHeaderConfig.Values.member.1=2\
             &Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn={api}"
        ))
        .await;
        h.call(&format!(
            "Action=CreateRule&ListenerArn={listener}&Priority=10\
             &Conditions.member.1.Field=query-string&Conditions.member.1.QueryStringConfig.Values.member.1.Key=debug\
             &Conditions.member.1.QueryStringConfig.Values.member.1.Value=1\
             &Conditions.member.2.Field=http-request-method&Conditions.member.2.HttpRequestMethodConfig.Values.member.1=GET\
             &Conditions.member.3.Field=source-ip&Conditions.member.3.SourceIpConfig.Values.member.1=127.0.0.0/8\
             &Conditions.member.4.Field=host-header&Conditions.member.4.HostHeaderConfig.Values.member.1=*.example.com\
             &Actions.member.1.Type=fixed-response&Actions.member.1.FixedResponseConfig.StatusCode=418"
        ))
        .await;
        let served = h.data_plane().await;
        let (_, config) = &served.load_balancers[0];
        config.validate().unwrap();
        let forward_api = Action::Forward(ForwardAction {
            target_groups: vec![WeightedTargetGroup {
                target_group_arn: api.clone(),
                weight: 1,
            }],
        });
        assert_eq!(
            config.listeners[0].rules,
            vec![
                Rule {
                    priority: 10,
                    conditions: vec![
                        Condition::QueryString {
                            values: vec![QueryStringPair {
                                key: Some("debug".into()),
                                value: "1".into()
                            }]
                        },
                        Condition::HttpRequestMethod {
                            values: vec!["GET".into()]
                        },
                        Condition::SourceIp {
                            values: vec![Cidr::parse("127.0.0.0/8").unwrap()]
                        },
                        Condition::HostHeader {
                            values: vec!["*.example.com".into()]
                        },
                    ],
                    actions: vec![Action::FixedResponse(FixedResponse {
                        status_code: 418,
                        content_type: None,
                        message_body: None
                    })],
                },
                Rule {
                    priority: 20,
                    conditions: vec![
                        Condition::PathPattern {
                            values: vec!["/api/*".into()]
                        },
                        Condition::HttpHeader {
                            http_header_name: "X-Version".into(),
                            values: vec!["2".into()]
                        },
                    ],
                    actions: vec![forward_api],
                },
            ]
        );
        let groups: Vec<&str> = config
            .target_groups
            .iter()
            .map(|group| group.target_group_arn.as_str())
            .collect();
        assert_eq!(groups, vec![site.as_str(), api.as_str()]);
        // i-1 and i-2 share an address and port: one target to the proxy.
        let local = |port| Target {
            id: "127.0.0.1".parse().unwrap(),
            port,
        };
        assert_eq!(config.target_groups[1].targets, vec![local(8080)]);
        let resolved = |id: &str| ResolvedTarget {
            id: id.into(),
            port: 8080,
            target: local(8080),
        };
        assert_eq!(served.targets[&api], vec![resolved("i-1"), resolved("i-2")]);
        assert_eq!(served.targets[&site], vec![]);
    }
}
