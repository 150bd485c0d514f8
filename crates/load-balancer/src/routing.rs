//! Which action a request gets: the listener's rules by ascending priority,
//! then its default action.

use std::net::IpAddr;

use crate::config::{Action, Condition, FixedResponse, ForwardAction, Listener, Redirect};
use crate::pattern::{query_string_match, wildcard_match};

/// What routing looks at in a request, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The Host header (or HTTP/2 `:authority`), port included if sent.
    pub host: Option<&'a str>,
    /// The path without the query string.
    pub path: &'a str,
    /// The raw query string without `?`.
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    /// The client's address on the connection.
    pub source_ip: IpAddr,
}

impl RequestView<'_> {
    fn host_without_port(&self) -> &str {
        let host = self.host.unwrap_or("");
        if host.starts_with('[') {
            // [v6]:port
            return match host.find(']') {
                Some(end) => &host[..=end],
                None => host,
            };
        }
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision<'a> {
    /// Send the request to a target of this group.
    Forward {
        target_group_arn: &'a str,
    },
    FixedResponse(&'a FixedResponse),
    /// Answer `status_code` with this `Location`.
    Redirect {
        status_code: u16,
        location: String,
    },
}

/// Routes `request` on `listener`. `random_draw` (uniform over `u64`)
/// chooses among the target groups of a weighted forward, in proportion to
/// their weights.
pub fn route<'a>(
    listener: &'a Listener,
    request: &RequestView<'_>,
    random_draw: u64,
) -> RouteDecision<'a> {
    let mut chosen: Option<&'a [Action]> = None;
    let mut chosen_priority = u32::MAX;
    for rule in &listener.rules {
        if rule.priority < chosen_priority
            && rule
                .conditions
                .iter()
                .all(|condition| condition_matches(condition, request))
        {
            chosen = Some(&rule.actions);
            chosen_priority = rule.priority;
        }
    }
    let actions = chosen.unwrap_or(&listener.default_actions);
    match actions.first() {
        Some(Action::Forward(forward)) => RouteDecision::Forward {
            target_group_arn: choose_weighted(forward, random_draw),
        },
        Some(Action::FixedResponse(fixed)) => RouteDecision::FixedResponse(fixed),
        Some(Action::Redirect(redirect)) => RouteDecision::Redirect {
            status_code: redirect.status_code.status_code(),
            location: redirect_location(redirect, listener, request),
        },
        // Validation rejects listeners and rules without an action; answer
        // like ALB answers a listener it cannot route on.
        None => RouteDecision::FixedResponse(&NO_ACTION_RESPONSE),
    }
}

static NO_ACTION_RESPONSE: FixedResponse = FixedResponse {
    status_code: 503,
    content_type: None,
    message_body: None,
};

fn choose_weighted(forward: &ForwardAction, random_draw: u64) -> &str {
    let total: u64 = forward
        .target_groups
        .iter()
        .map(|group| u64::from(group.weight))
        .sum();
    if let [only] = forward.target_groups.as_slice() {
        return &only.target_group_arn;
    }
    // Multiply-shift maps the draw onto [0, total) without modulo bias.
    let mut point = ((u128::from(random_draw) * u128::from(total)) >> 64) as u64;
    for group in &forward.target_groups {
        let weight = u64::from(group.weight);
        if point < weight {
            return &group.target_group_arn;
        }
        point -= weight;
    }
    // Only reachable when every weight is 0, which validation rejects.
    &forward.target_groups[0].target_group_arn
}

fn condition_matches(condition: &Condition, request: &RequestView<'_>) -> bool {
    match condition {
        Condition::PathPattern { values } => values
            .iter()
            .any(|pattern| wildcard_match(pattern, request.path, false)),
        Condition::HostHeader { values } => {
            let host = request.host_without_port();
            values
                .iter()
                .any(|pattern| wildcard_match(pattern, host, true))
        }
        Condition::HttpHeader {
            http_header_name,
            values,
        } => request
            .headers
            .get_all(http_header_name.as_str())
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| {
                values
                    .iter()
                    .any(|pattern| wildcard_match(pattern, value, true))
            }),
        Condition::QueryString { values } => {
            let query = request.query.unwrap_or("");
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .any(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    values.iter().any(|wanted| {
                        wanted
                            .key
                            .as_deref()
                            .is_none_or(|wanted_key| query_string_match(wanted_key, key))
                            && query_string_match(&wanted.value, value)
                    })
                })
        }
        Condition::HttpRequestMethod { values } => {
            values.iter().any(|method| method == request.method)
        }
        Condition::SourceIp { values } => {
            values.iter().any(|cidr| cidr.contains(request.source_ip))
        }
    }
}

fn redirect_location(
    redirect: &Redirect,
    listener: &Listener,
    request: &RequestView<'_>,
) -> String {
    let port = listener.port.to_string();
    let path = request.path.strip_prefix('/').unwrap_or(request.path);
    let values = [
        ("#{protocol}", listener.protocol.as_elbv2()),
        ("#{host}", request.host_without_port()),
        ("#{port}", port.as_str()),
        ("#{path}", path),
        ("#{query}", request.query.unwrap_or("")),
    ];
    let substitute = |template: &str| {
        let mut text = template.to_string();
        for (placeholder, value) in values {
            if text.contains(placeholder) {
                text = text.replace(placeholder, value);
            }
        }
        text
    };
    let scheme = substitute(&redirect.protocol).to_ascii_lowercase();
    let host = substitute(&redirect.host);
    let port = substitute(&redirect.port);
    let path = substitute(&redirect.path);
    let query = substitute(&redirect.query);
    let mut location = format!("{scheme}://{host}:{port}{path}");
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query);
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        Cidr, Protocol, QueryStringPair, RedirectStatus, Rule, WeightedTargetGroup,
    };

    fn forward(arns: &[(&str, u32)]) -> Action {
        Action::Forward(ForwardAction {
            target_groups: arns
                .iter()
                .map(|&(arn, weight)| WeightedTargetGroup {
                    target_group_arn: arn.to_string(),
                    weight,
                })
                .collect(),
        })
    }

    fn rule(priority: u32, conditions: Vec<Condition>, target_group_arn: &str) -> Rule {
        Rule {
            priority,
            conditions,
            actions: vec![forward(&[(target_group_arn, 1)])],
        }
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    fn listener(rules: Vec<Rule>) -> Listener {
        Listener {
            port: 8080,
            protocol: Protocol::Http,
            default_actions: vec![forward(&[("default", 1)])],
            rules,
            response_server_enabled: true,
        }
    }

    struct Request {
        method: &'static str,
        host: Option<&'static str>,
        target: &'static str,
        headers: Vec<(&'static str, &'static str)>,
        source_ip: &'static str,
    }

    fn get(target: &'static str) -> Request {
        Request {
            method: "GET",
            host: Some("www.example.com"),
            target,
            headers: vec![],
            source_ip: "192.0.2.10",
        }
    }

    fn decide(listener: &Listener, request: &Request, random_draw: u64) -> String {
        let mut headers = http::HeaderMap::new();
        for (name, value) in &request.headers {
            headers.append(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        let (path, query) = match request.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (request.target, None),
        };
        let view = RequestView {
            method: request.method,
            host: request.host,
            path,
            query,
            headers: &headers,
            source_ip: request.source_ip.parse().unwrap(),
        };
        match route(listener, &view, random_draw) {
            RouteDecision::Forward { target_group_arn } => target_group_arn.to_string(),
            RouteDecision::FixedResponse(fixed) => format!("fixed {}", fixed.status_code),
            RouteDecision::Redirect {
                status_code,
                location,
            } => format!("{status_code} {location}"),
        }
    }

    fn check(conditions: Vec<Condition>, request: Request, expected_match: bool) {
        let listener = listener(vec![rule(1, conditions.clone(), "rule")]);
        let expected = if expected_match { "rule" } else { "default" };
        assert_eq!(
            decide(&listener, &request, 0),
            expected,
            "{conditions:?} on {} {:?} {}",
            request.method,
            request.host,
            request.target
        );
    }

    #[test]
    fn path_pattern() {
        let condition = || {
            vec![Condition::PathPattern {
                values: strings(&["/api/*", "/exact"]),
            }]
        };
        check(condition(), get("/api/users"), true);
        check(condition(), get("/api/users?x=1"), true);
        check(condition(), get("/exact"), true);
        check(condition(), get("/exact?q=/api/x"), true);
        check(condition(), get("/exactly"), false);
        check(condition(), get("/API/users"), false);
        check(condition(), get("/other?/api/x"), false);
    }

    #[test]
    fn host_header() {
        let condition = || {
            vec![Condition::HostHeader {
                values: strings(&["*.example.com"]),
            }]
        };
        check(condition(), get("/"), true);
        for (host, expected) in [
            (Some("API.Example.COM"), true),
            (Some("api.example.com:8080"), true),
            (Some("example.com"), false),
            (Some("api.example.org"), false),
            (None, false),
        ] {
            check(condition(), Request { host, ..get("/") }, expected);
        }
    }

    #[test]
    fn http_header() {
        let condition = || {
            vec![Condition::HttpHeader {
                http_header_name: "User-Agent".to_string(),
                values: strings(&["*Mobile*"]),
            }]
        };
        for (headers, expected) in [
            (vec![("user-agent", "Foo mobile Bar")], true),
            (vec![("user-agent", "Desktop")], false),
            (
                vec![("user-agent", "Desktop"), ("user-agent", "MOBILE")],
                true,
            ),
            (vec![("x-other", "Mobile")], false),
            (vec![], false),
        ] {
            check(
                condition(),
                Request {
                    headers,
                    ..get("/")
                },
                expected,
            );
        }
    }

    #[test]
    fn query_string() {
        let condition = || {
            vec![Condition::QueryString {
                values: vec![
                    QueryStringPair {
                        key: Some("version".to_string()),
                        value: "v?".to_string(),
                    },
                    QueryStringPair {
                        key: None,
                        value: "beta*".to_string(),
                    },
                ],
            }]
        };
        for (target, expected) in [
            ("/?version=v1", true),
            ("/?a=b&VERSION=V2", true),
            ("/?version=v10", false),
            ("/?x=BetaTester", true),
            ("/?beta", false),
            ("/", false),
            ("/?version", false),
        ] {
            check(condition(), get(target), expected);
        }
    }

    #[test]
    fn http_request_method() {
        let condition = || {
            vec![Condition::HttpRequestMethod {
                values: strings(&["POST", "PUT"]),
            }]
        };
        for (method, expected) in [
            ("POST", true),
            ("PUT", true),
            ("GET", false),
            ("post", false),
        ] {
            check(condition(), Request { method, ..get("/") }, expected);
        }
    }

    #[test]
    fn source_ip() {
        let condition = || {
            vec![Condition::SourceIp {
                values: vec![
                    Cidr::parse("10.0.0.0/8").unwrap(),
                    Cidr::parse("2001:db8::/32").unwrap(),
                ],
            }]
        };
        for (source_ip, expected) in [
            ("10.9.8.7", true),
            ("192.0.2.10", false),
            ("2001:db8::5", true),
        ] {
            check(
                condition(),
                Request {
                    source_ip,
                    ..get("/")
                },
                expected,
            );
        }
    }

    #[test]
    fn all_conditions_must_match() {
        let conditions = || {
            vec![
                Condition::PathPattern {
                    values: strings(&["/api/*"]),
                },
                Condition::HttpRequestMethod {
                    values: strings(&["POST"]),
                },
            ]
        };
        check(conditions(), get("/api/x"), false);
        check(
            conditions(),
            Request {
                method: "POST",
                ..get("/api/x")
            },
            true,
        );
    }

    #[test]
    fn lowest_priority_wins_whatever_the_order() {
        let path = |pattern: &str| {
            vec![Condition::PathPattern {
                values: strings(&[pattern]),
            }]
        };
        let listener = listener(vec![
            rule(20, path("/*"), "catch-all"),
            rule(5, path("/api/*"), "api"),
            rule(10, path("/api/v2/*"), "v2"),
        ]);
        assert_eq!(decide(&listener, &get("/api/v2/x"), 0), "api");
        assert_eq!(decide(&listener, &get("/other"), 0), "catch-all");
        let listener = self::listener(vec![rule(7, path("/x"), "x")]);
        assert_eq!(decide(&listener, &get("/y"), 0), "default");
    }

    #[test]
    fn fixed_response_and_redirects() {
        let mut listener = listener(vec![]);
        listener.default_actions = vec![Action::FixedResponse(FixedResponse {
            status_code: 404,
            content_type: Some("text/plain".to_string()),
            message_body: Some("nothing".to_string()),
        })];
        assert_eq!(decide(&listener, &get("/"), 0), "fixed 404");

        for (redirect, target, expected) in [
            (
                Redirect::default(),
                "/a/b?x=1",
                "301 http://www.example.com:8080/a/b?x=1",
            ),
            (
                Redirect {
                    protocol: "HTTPS".to_string(),
                    port: "443".to_string(),
                    status_code: RedirectStatus::Http302,
                    ..Redirect::default()
                },
                "/login",
                "302 https://www.example.com:443/login",
            ),
            (
                Redirect {
                    host: "new.#{host}".to_string(),
                    path: "/v2/#{path}".to_string(),
                    query: "from=#{host}&#{query}".to_string(),
                    ..Redirect::default()
                },
                "/a?b=c",
                "301 http://new.www.example.com:8080/v2/a?from=www.example.com&b=c",
            ),
        ] {
            listener.default_actions = vec![Action::Redirect(redirect)];
            assert_eq!(decide(&listener, &get(target), 0), expected);
        }
    }

    #[test]
    fn weighted_forward_extremes() {
        let mut listener = listener(vec![]);
        listener.default_actions = vec![forward(&[("a", 1), ("b", 0), ("c", 1)])];
        assert_eq!(decide(&listener, &get("/"), 0), "a");
        assert_eq!(decide(&listener, &get("/"), u64::MAX / 2 - 1), "a");
        assert_eq!(decide(&listener, &get("/"), u64::MAX / 2 + 1), "c");
        assert_eq!(decide(&listener, &get("/"), u64::MAX), "c");
    }

    proptest::proptest! {
        #[test]
        fn weighted_forward_follows_the_weights(
            weights in proptest::collection::vec(0u32..=999, 2..5),
            seed in proptest::prelude::any::<u64>(),
        ) {
            proptest::prop_assume!(weights.iter().any(|&w| w > 0));
            let arns: Vec<String> = (0..weights.len()).map(|i| format!("tg{i}")).collect();
            let pairs: Vec<(&str, u32)> = arns.iter().map(|a| a.as_str()).zip(weights.iter().copied()).collect();
            let mut listener = listener(vec![]);
            listener.default_actions = vec![forward(&pairs)];
            let draws = 20_000u32;
            let mut counts = vec![0u32; weights.len()];
            // SplitMix64 stands in for the shell's random source.
            let mut state = seed;
            let request = get("/");
            for _ in 0..draws {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                let draw = z ^ (z >> 31);
                let chosen = decide(&listener, &request, draw);
                let index: usize = chosen.trim_start_matches("tg").parse().unwrap();
                counts[index] += 1;
            }
            let total: u32 = weights.iter().sum();
            for (index, &weight) in weights.iter().enumerate() {
                let expected = f64::from(weight) / f64::from(total);
                let observed = f64::from(counts[index]) / f64::from(draws);
                if weight == 0 {
                    proptest::prop_assert_eq!(counts[index], 0);
                } else {
                    proptest::prop_assert!((expected - observed).abs() < 0.03,
                        "group {} weight {} expected {:.3} observed {:.3}", index, weight, expected, observed);
                }
            }
        }
    }
}
