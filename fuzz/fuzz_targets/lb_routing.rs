//! The load balancer's pure routing (`load_balancer::route`), structured:
//! the input's lines are, in order, a path pattern, a host pattern, a header
//! value pattern, a query-string `key=value` pattern, a method, a redirect
//! host, path and query, then the request: method, Host header, target
//! (`/path?query`) and header lines `Name: value`. The listener built from
//! the patterns is routed only if it validates, as the proxy does.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use load_balancer::{
    route, wildcard_match, Action, Condition, FixedResponse, ForwardAction, HealthCheck, Listener,
    LoadBalancer, Protocol, QueryStringPair, Redirect, RedirectStatus, RequestView, Rule,
    TargetGroup, TargetGroupAttributes, WeightedTargetGroup,
};

fuzz_target!(|data: &[u8]| berth_fuzz::on_worker_stack(|| run(data)));

fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut next = || lines.next().unwrap_or("").to_string();
    let path_pattern = next();
    let host_pattern = next();
    let header_pattern = next();
    let query_pattern = next();
    let method_value = next();
    let redirect_host = next();
    let redirect_path = next();
    let redirect_query = next();
    let method = next();
    let host = next();
    let target = next();
    let mut headers = http::HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value.trim_start()),
            ) {
                headers.append(name, value);
            }
        }
    }

    for case_insensitive in [false, true] {
        let _ = wildcard_match(&path_pattern, target.as_str(), case_insensitive);
    }

    let (query_key, query_value) = match query_pattern.split_once('=') {
        Some((key, value)) => (Some(key.to_string()), value.to_string()),
        None => (None, query_pattern.clone()),
    };
    let forward = |arn: &str, weight| {
        Action::Forward(ForwardAction {
            target_groups: vec![
                WeightedTargetGroup {
                    target_group_arn: arn.to_string(),
                    weight,
                },
                WeightedTargetGroup {
                    target_group_arn: "tg-b".to_string(),
                    weight: 1,
                },
            ],
        })
    };
    let listener = Listener {
        port: 80,
        protocol: Protocol::Http,
        default_actions: vec![Action::FixedResponse(FixedResponse {
            status_code: 404,
            content_type: None,
            message_body: None,
        })],
        rules: vec![
            Rule {
                priority: 1,
                conditions: vec![
                    Condition::PathPattern {
                        values: vec![path_pattern],
                    },
                    Condition::HttpRequestMethod {
                        values: vec![method_value],
                    },
                ],
                actions: vec![forward("tg-a", 3)],
            },
            Rule {
                priority: 2,
                conditions: vec![Condition::HostHeader {
                    values: vec![host_pattern],
                }],
                actions: vec![Action::Redirect(Redirect {
                    protocol: "#{protocol}".to_string(),
                    host: redirect_host,
                    port: "#{port}".to_string(),
                    path: redirect_path,
                    query: redirect_query,
                    status_code: RedirectStatus::Http301,
                })],
            },
            Rule {
                priority: 3,
                conditions: vec![
                    Condition::HttpHeader {
                        http_header_name: "X-Fuzz".to_string(),
                        values: vec![header_pattern],
                    },
                    Condition::QueryString {
                        values: vec![QueryStringPair {
                            key: query_key,
                            value: query_value,
                        }],
                    },
                ],
                actions: vec![forward("tg-a", 999)],
            },
        ],
        response_server_enabled: true,
    };
    let load_balancer = LoadBalancer {
        name: "fuzz".to_string(),
        listeners: vec![listener],
        target_groups: ["tg-a", "tg-b"]
            .into_iter()
            .map(|arn| TargetGroup {
                target_group_arn: arn.to_string(),
                targets: Vec::new(),
                health_check: HealthCheck::default(),
                attributes: TargetGroupAttributes::default(),
            })
            .collect(),
        attributes: Default::default(),
    };
    if load_balancer.validate().is_err() {
        return;
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target.as_str(), None),
    };
    let request = RequestView {
        method: &method,
        host: (!host.is_empty()).then_some(host.as_str()),
        path,
        query,
        headers: &headers,
        source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    for draw in [0, u64::MAX / 3, u64::MAX] {
        let _ = route(&load_balancer.listeners[0], &request, draw);
    }
}
