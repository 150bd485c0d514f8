//! What the data plane serves: every load balancer's stored records (all regions) converted
//! into `load-balancer` configuration snapshots.
//!
//! The conversion is total over records the API validated; a record it cannot read or
//! convert is a server error (the caller keeps serving its previous snapshots and retries).
//!
//! What reaches the data plane:
//! - HTTP listeners with their default action: `forward` (a single `TargetGroupArn`, or a
//!   `ForwardConfig` with weights; a weight left out counts as 1), `fixed-response` and
//!   `redirect` (components left out keep the request's own value, as on AWS).
//! - The target groups those actions forward to, with their health check settings and
//!   attributes. A target group's health check with `HealthCheckEnabled=false` still runs
//!   in the data plane (it has no disabled mode); DescribeTargetHealth answers
//!   `unavailable` / `Target.HealthCheckDisabled` for such groups without asking it.
//! - Targets of `ip` target groups. Targets of `instance` target groups are left out: an
//!   instance ID names no address Berth can connect to, so such a group is served empty
//!   (its listener answers 503) and DescribeTargetHealth says no health check has run for
//!   its targets, which is true.

use std::collections::BTreeMap;
use std::net::IpAddr;

use api::ApiError;
use load_balancer::{
    Action, FixedResponse, ForwardAction, HealthCheck, HealthCheckPort, Listener, LoadBalancer,
    LoadBalancingAlgorithm, Matcher, Protocol, Redirect, RedirectStatus, Stickiness, Target,
    TargetGroup, TargetGroupAttributes, WeightedTargetGroup,
};
use store::{RangeRequest, Store};

use crate::records::{ListenerRecord, LoadBalancerRecord, TargetGroupRecord};
use crate::target_groups::{
    ALGORITHM, DEREGISTRATION_DELAY, SLOW_START, STICKINESS_COOKIE_DURATION, STICKINESS_ENABLED,
    STICKINESS_TYPE,
};

/// The prefix under which every ELBv2 record lives (watch it to follow changes).
pub const RECORDS_PREFIX: &str = "/elbv2/";

/// The weight of a target group in a forward action that gives none.
const DEFAULT_WEIGHT: u32 = 1;

/// Every load balancer of every region with its ARN (in key order), as the data plane serves
/// it; listeners by port, target groups in the order the listeners first forward to them.
pub async fn load_balancer_configs(
    store: &dyn Store,
) -> Result<Vec<(String, LoadBalancer)>, ApiError> {
    let response = store.range(RangeRequest::prefix(RECORDS_PREFIX)).await?;
    let mut records = Records::default();
    for kv in &response.kvs {
        records.add(&kv.key, &kv.value)?;
    }
    records.load_balancers()
}

/// The records of all regions, sorted by kind.
#[derive(Default)]
struct Records {
    /// By (region, name).
    load_balancers: BTreeMap<(String, String), LoadBalancerRecord>,
    /// By ARN.
    target_groups: BTreeMap<String, TargetGroupRecord>,
    /// By (region, load balancer name), in key order.
    listeners: BTreeMap<(String, String), Vec<ListenerRecord>>,
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
            [_region, "targetgroups", _name] => {
                let group: TargetGroupRecord = decode(key, bytes)?;
                self.target_groups.insert(group.arn.clone(), group);
            }
            [region, "listeners", load_balancer, _id] => {
                self.listeners
                    .entry((region.to_string(), load_balancer.to_string()))
                    .or_default()
                    .push(decode(key, bytes)?);
            }
            _ => {}
        }
        Ok(())
    }

    fn load_balancers(&self) -> Result<Vec<(String, LoadBalancer)>, ApiError> {
        let mut configs = Vec::new();
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
                let default_actions = listener
                    .default_actions
                    .iter()
                    .map(|action| convert_action(&listener.arn, action))
                    .collect::<Result<Vec<_>, _>>()?;
                listeners.push(Listener {
                    port,
                    protocol: Protocol::Http,
                    default_actions,
                    rules: Vec::new(),
                });
            }
            listeners.sort_by_key(|listener| listener.port);
            let mut target_group_arns: Vec<String> = Vec::new();
            for action in listeners.iter().flat_map(|l| &l.default_actions) {
                if let Action::Forward(forward) = action {
                    for group in &forward.target_groups {
                        if !target_group_arns.contains(&group.target_group_arn) {
                            target_group_arns.push(group.target_group_arn.clone());
                        }
                    }
                }
            }
            let target_groups = target_group_arns
                .iter()
                .map(|arn| match self.target_groups.get(arn) {
                    Some(group) => convert_target_group(group),
                    None => Err(unconvertible(
                        &record.arn,
                        format!("its listener forwards to target group {arn}, which is not stored"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            configs.push((
                record.arn.clone(),
                LoadBalancer {
                    name: record.name.clone(),
                    listeners,
                    target_groups,
                },
            ));
        }
        Ok(configs)
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

fn convert_target_group(group: &TargetGroupRecord) -> Result<TargetGroup, ApiError> {
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
        path: check.path.clone(),
        port,
        interval_seconds: seconds(check.interval_seconds, "health check interval")?,
        timeout_seconds: seconds(check.timeout_seconds, "health check timeout")?,
        healthy_threshold_count: seconds(check.healthy_threshold_count, "healthy threshold")?,
        unhealthy_threshold_count: seconds(check.unhealthy_threshold_count, "unhealthy threshold")?,
        matcher: Matcher::parse(&check.matcher_http_code).map_err(|err| fail(err.to_string()))?,
    };
    let targets = if group.target_type == "ip" {
        group
            .targets
            .iter()
            .map(|target| {
                let id: IpAddr = target
                    .id
                    .parse()
                    .map_err(|_| fail(format!("target {:?} is not an IP address", target.id)))?;
                let port = u16::try_from(target.port)
                    .map_err(|_| fail(format!("target port {} is out of range", target.port)))?;
                Ok(Target { id, port })
            })
            .collect::<Result<Vec<_>, ApiError>>()?
    } else {
        Vec::new()
    };
    Ok(TargetGroup {
        target_group_arn: group.arn.clone(),
        targets,
        health_check,
        attributes: convert_attributes(&group.arn, &group.attributes)?,
    })
}

fn convert_attributes(
    arn: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<TargetGroupAttributes, ApiError> {
    let defaults = TargetGroupAttributes::default();
    let number = |key: &str, default: u32| -> Result<u32, ApiError> {
        match attributes.get(key) {
            Some(value) => value
                .parse()
                .map_err(|_| unconvertible(arn, format!("attribute {key}={value:?}"))),
            None => Ok(default),
        }
    };
    let load_balancing_algorithm_type = match attributes.get(ALGORITHM).map(String::as_str) {
        None | Some("round_robin") => LoadBalancingAlgorithm::RoundRobin,
        Some("least_outstanding_requests") => LoadBalancingAlgorithm::LeastOutstandingRequests,
        Some(other) => {
            return Err(unconvertible(
                arn,
                format!("attribute {ALGORITHM}={other:?}"),
            ))
        }
    };
    let stickiness_enabled = attributes
        .get(STICKINESS_ENABLED)
        .is_some_and(|value| value == "true")
        && attributes
            .get(STICKINESS_TYPE)
            .is_none_or(|value| value == "lb_cookie");
    Ok(TargetGroupAttributes {
        deregistration_delay_timeout_seconds: number(
            DEREGISTRATION_DELAY,
            defaults.deregistration_delay_timeout_seconds,
        )?,
        load_balancing_algorithm_type,
        slow_start_duration_seconds: number(SLOW_START, defaults.slow_start_duration_seconds)?,
        stickiness: Stickiness {
            enabled: stickiness_enabled,
            lb_cookie_duration_seconds: number(
                STICKINESS_COOKIE_DURATION,
                defaults.stickiness.lb_cookie_duration_seconds,
            )?,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use api::RequestContext;

    use super::*;
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

        async fn configs(&self) -> Vec<(String, LoadBalancer)> {
            load_balancer_configs(&*self.store).await.unwrap()
        }
    }

    fn between(text: &str, start: &str, end: &str) -> String {
        let from = text
            .find(start)
            .unwrap_or_else(|| panic!("{start} in {text}"))
            + start.len();
        let to = from + text[from..].find(end).unwrap();
        text[from..to].to_string()
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
                    slow_start_duration_seconds: 0,
                    stickiness: Stickiness {
                        enabled: true,
                        lb_cookie_duration_seconds: 60,
                    },
                },
            }],
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
        // Instance targets have no address: their group is served without targets.
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
}
