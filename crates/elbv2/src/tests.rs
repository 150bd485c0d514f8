use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::*;

struct Harness {
    elbv2: Elbv2,
    requests: AtomicU64,
}

impl Harness {
    fn new() -> Self {
        Harness {
            elbv2: Elbv2::new(Arc::new(store::MemoryStore::new())),
            requests: AtomicU64::new(0),
        }
    }

    async fn call(&self, body: &str) -> Result<String, ApiError> {
        let number = self.requests.fetch_add(1, Ordering::Relaxed);
        let ctx = RequestContext {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            principal_arn: "arn:aws:iam::000000000000:root".into(),
            access_key_id: String::new(),
            request_id: format!("request-{number}"),
            now_ms: 1_700_000_000_000,
        };
        let body = format!("Version=2015-12-01&{body}");
        self.elbv2
            .handle(&ctx, body.as_bytes())
            .await
            .map(|xml| String::from_utf8(xml).unwrap())
    }

    async fn ok(&self, body: &str) -> String {
        self.call(body)
            .await
            .unwrap_or_else(|err| panic!("{body}: {err}"))
    }

    async fn fails(&self, body: &str, code: &str) -> String {
        match self.call(body).await {
            Ok(xml) => panic!("{body} succeeded: {xml}"),
            Err(err) => {
                assert_eq!(err.code, code, "{body}: {}", err.message);
                err.message
            }
        }
    }

    async fn load_balancer(&self, name: &str) -> String {
        let xml = self
            .ok(&format!("Action=CreateLoadBalancer&Name={name}"))
            .await;
        between(&xml, "<LoadBalancerArn>", "</LoadBalancerArn>")
    }

    async fn target_group(&self, name: &str) -> String {
        let xml = self
            .ok(&format!(
                "Action=CreateTargetGroup&Name={name}&Protocol=HTTP&Port=8080&VpcId=vpc-1"
            ))
            .await;
        between(&xml, "<TargetGroupArn>", "</TargetGroupArn>")
    }

    async fn listener(&self, load_balancer_arn: &str, port: u16, target_group_arn: &str) -> String {
        let xml = self
            .ok(&format!(
                "Action=CreateListener&LoadBalancerArn={load_balancer_arn}&Protocol=HTTP&Port={port}\
                 &DefaultActions.member.1.Type=forward\
                 &DefaultActions.member.1.TargetGroupArn={target_group_arn}"
            ))
            .await;
        between(&xml, "<ListenerArn>", "</ListenerArn>")
    }
}

/// The text of `text` between `start` and the next `end`.
pub(crate) fn between(text: &str, start: &str, end: &str) -> String {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {text}"))
        + start.len();
    let to = from + text[from..].find(end).unwrap();
    text[from..to].to_string()
}

#[tokio::test]
async fn load_balancers_are_created_described_and_deleted() {
    let h = Harness::new();
    let arn = h.load_balancer("web").await;
    assert!(arn
        .starts_with("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/"));
    assert_eq!(arn.rsplit('/').next().unwrap().len(), 16);
    // Same settings: idempotent; different settings: duplicate.
    assert!(h
        .ok("Action=CreateLoadBalancer&Name=web")
        .await
        .contains(&arn));
    h.fails(
        "Action=CreateLoadBalancer&Name=web&Scheme=internal",
        "DuplicateLoadBalancerName",
    )
    .await;
    let described = h
        .ok("Action=DescribeLoadBalancers&Names.member.1=web")
        .await;
    assert!(
        described.contains("<DNSName>127.0.0.1</DNSName>"),
        "{described}"
    );
    assert!(described.contains("<Code>active</Code>"));
    assert!(described.contains("<CreatedTime>2023-11-14T22:13:20.000Z</CreatedTime>"));
    h.fails(
        "Action=DescribeLoadBalancers&Names.member.1=nope",
        "LoadBalancerNotFound",
    )
    .await;
    h.ok(&format!("Action=DeleteLoadBalancer&LoadBalancerArn={arn}"))
        .await;
    h.ok(&format!("Action=DeleteLoadBalancer&LoadBalancerArn={arn}"))
        .await;
    h.fails(
        &format!("Action=DescribeLoadBalancers&LoadBalancerArns.member.1={arn}"),
        "LoadBalancerNotFound",
    )
    .await;
}

#[tokio::test]
async fn create_load_balancer_validates_and_rejects_what_berth_lacks() {
    let h = Harness::new();
    let message = h
        .fails("Action=CreateLoadBalancer", "ValidationError")
        .await;
    assert_eq!(
        message,
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
    );
    h.fails("Action=CreateLoadBalancer&Name=-bad", "ValidationError")
        .await;
    h.fails(
        "Action=CreateLoadBalancer&Name=n&Type=network",
        "ValidationError",
    )
    .await;
    h.fails(
        "Action=CreateLoadBalancer&Name=n&Type=bogus",
        "ValidationError",
    )
    .await;
    h.fails(
        "Action=CreateLoadBalancer&Name=n&SubnetMappings.member.1.SubnetId=s",
        "ValidationError",
    )
    .await;
    h.fails(
        "Action=CreateLoadBalancer&Name=n&Subnets.member.1=s",
        "InvalidConfigurationRequest",
    )
    .await;
    h.fails(
        "Action=CreateLoadBalancer&Name=n&Tags.member.1.Key=a&Tags.member.2.Key=a",
        "DuplicateTagKeys",
    )
    .await;
    let xml = h
        .ok("Action=CreateLoadBalancer&Name=n&Subnets.member.1=s1&Subnets.member.2=s2&SecurityGroups.member.1=sg")
        .await;
    assert!(
        xml.contains("<ZoneName>us-east-1b</ZoneName><SubnetId>s2</SubnetId>"),
        "{xml}"
    );
    assert!(
        xml.contains("<SecurityGroups><member>sg</member></SecurityGroups>"),
        "{xml}"
    );
}

#[tokio::test]
async fn describe_load_balancers_pages() {
    let h = Harness::new();
    for name in ["a", "b", "c"] {
        h.load_balancer(name).await;
    }
    let first = h.ok("Action=DescribeLoadBalancers&PageSize=2").await;
    assert_eq!(first.matches("<LoadBalancerName>").count(), 2);
    let marker = between(&first, "<NextMarker>", "</NextMarker>");
    let second = h
        .ok(&format!(
            "Action=DescribeLoadBalancers&PageSize=2&Marker={marker}"
        ))
        .await;
    assert!(second.contains("<LoadBalancerName>c</LoadBalancerName>"));
    assert!(!second.contains("<NextMarker>"));
    h.fails(
        "Action=DescribeLoadBalancers&PageSize=401",
        "ValidationError",
    )
    .await;
}

#[tokio::test]
async fn load_balancer_attributes_are_validated_and_deletion_protection_is_honoured() {
    let h = Harness::new();
    let arn = h.load_balancer("web").await;
    let xml = h
        .ok(&format!(
            "Action=DescribeLoadBalancerAttributes&LoadBalancerArn={arn}"
        ))
        .await;
    assert!(
        xml.contains("<Key>idle_timeout.timeout_seconds</Key><Value>60</Value>"),
        "{xml}"
    );
    h.fails(
        &format!("Action=ModifyLoadBalancerAttributes&LoadBalancerArn={arn}&Attributes.member.1.Key=access_logs.s3.enabled&Attributes.member.1.Value=true"),
        "ValidationError",
    )
    .await;
    h.fails(
        &format!("Action=ModifyLoadBalancerAttributes&LoadBalancerArn={arn}&Attributes.member.1.Key=idle_timeout.timeout_seconds&Attributes.member.1.Value=0"),
        "ValidationError",
    )
    .await;
    h.ok(&format!("Action=ModifyLoadBalancerAttributes&LoadBalancerArn={arn}&Attributes.member.1.Key=deletion_protection.enabled&Attributes.member.1.Value=true")).await;
    h.fails(
        &format!("Action=DeleteLoadBalancer&LoadBalancerArn={arn}"),
        "OperationNotPermitted",
    )
    .await;
}

#[tokio::test]
async fn target_groups_lifecycle() {
    let h = Harness::new();
    let arn = h.target_group("api").await;
    assert!(arn.starts_with("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/api/"));
    let xml = h.ok("Action=DescribeTargetGroups&Names.member.1=api").await;
    assert!(
        xml.contains("<HealthCheckPath>/</HealthCheckPath>"),
        "{xml}"
    );
    assert!(
        xml.contains("<Matcher><HttpCode>200</HttpCode></Matcher>"),
        "{xml}"
    );
    assert!(
        xml.contains("<HealthCheckEnabled>true</HealthCheckEnabled>"),
        "{xml}"
    );
    h.fails(
        "Action=CreateTargetGroup&Name=api&Protocol=HTTP&Port=9090",
        "DuplicateTargetGroupName",
    )
    .await;
    h.fails(
        "Action=CreateTargetGroup&Name=x&Protocol=HTTPS&Port=1",
        "ValidationError",
    )
    .await;
    h.fails(
        "Action=CreateTargetGroup&Name=x&Protocol=HTTP&Port=1&TargetType=lambda",
        "ValidationError",
    )
    .await;
    let message = h
        .fails(
            "Action=CreateTargetGroup&Name=x&Protocol=HTTP&Port=1&HealthCheckIntervalSeconds=5&HealthCheckTimeoutSeconds=6",
            "ValidationError",
        )
        .await;
    assert_eq!(
        message,
        "Health check interval must be greater than the timeout."
    );
    h.fails(
        &format!("Action=ModifyTargetGroup&TargetGroupArn={arn}&HealthCheckTimeoutSeconds=30"),
        "ValidationError",
    )
    .await;
    // Names: AWS's rule and wording; a group without a VpcId is in Berth's VPC.
    for (name, message) in [
        (
            "-edge",
            "Target group name '-edge' cannot begin or end with '-'",
        ),
        (
            "edge-",
            "Target group name 'edge-' cannot begin or end with '-'",
        ),
        (
            "a_b",
            "Target group name 'a_b' can only contain characters that are alphanumeric \
             characters or hyphens(-)",
        ),
        (
            "abcdefghijklmnopqrstuvwxyz0123456",
            "Target group name 'abcdefghijklmnopqrstuvwxyz0123456' cannot be longer than '32' \
             characters",
        ),
    ] {
        let got = h
            .fails(
                &format!("Action=CreateTargetGroup&Name={name}&Protocol=HTTP&Port=80"),
                "ValidationError",
            )
            .await;
        assert_eq!(got, message);
    }
    let message = h
        .fails(
            "Action=CreateTargetGroup&Name=noport&Protocol=HTTP",
            "ValidationError",
        )
        .await;
    assert_eq!(message, "A port must be specified");
    let xml = h
        .ok("Action=CreateTargetGroup&Name=Na--me&Protocol=HTTP&Port=80")
        .await;
    assert!(
        xml.contains(&format!("<VpcId>{BERTH_VPC_ID}</VpcId>")),
        "{xml}"
    );
    h.fails(
        "Action=CreateTargetGroup&Name=x&Protocol=HTTP&Port=1&Matcher.HttpCode=600",
        "ValidationError",
    )
    .await;
    let modified = h
        .ok(&format!("Action=ModifyTargetGroup&TargetGroupArn={arn}&HealthCheckPath=/health&Matcher.HttpCode=200-299"))
        .await;
    assert!(
        modified.contains("<HealthCheckPath>/health</HealthCheckPath>"),
        "{modified}"
    );
    assert!(modified.contains("<HttpCode>200-299</HttpCode>"));
    h.fails(
        "Action=DescribeTargetGroups&Names.member.1=nope",
        "TargetGroupNotFound",
    )
    .await;
    h.ok(&format!("Action=DeleteTargetGroup&TargetGroupArn={arn}"))
        .await;
    h.fails(
        &format!("Action=DescribeTargetGroups&TargetGroupArns.member.1={arn}"),
        "TargetGroupNotFound",
    )
    .await;
}

#[tokio::test]
async fn target_group_attributes_are_validated() {
    let h = Harness::new();
    let arn = h.target_group("api").await;
    let set = |key: &str, value: &str| {
        format!("Action=ModifyTargetGroupAttributes&TargetGroupArn={arn}&Attributes.member.1.Key={key}&Attributes.member.1.Value={value}")
    };
    for (key, value) in [
        ("deregistration_delay.timeout_seconds", "3601"),
        ("load_balancing.algorithm.type", "random"),
        ("slow_start.duration_seconds", "10"),
        ("stickiness.enabled", "yes"),
        ("stickiness.type", "source_ips"),
        ("stickiness.lb_cookie.duration_seconds", "0"),
        ("proxy_protocol_v2.enabled", "true"),
    ] {
        h.fails(&set(key, value), "ValidationError").await;
    }
    // AWS's full set, each settable; combinations are checked against the stored group.
    let xml = h
        .ok(&format!(
            "Action=DescribeTargetGroupAttributes&TargetGroupArn={arn}"
        ))
        .await;
    assert_eq!(xml.matches("<Key>").count(), 14, "{xml}");
    for (key, value) in [
        (
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
        ),
        ("load_balancing.algorithm.anomaly_mitigation", "off"),
        ("stickiness.app_cookie.cookie_name", ""),
        ("stickiness.app_cookie.duration_seconds", "86400"),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.count",
            "1",
        ),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.percentage",
            "off",
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
            "1",
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
            "off",
        ),
    ] {
        let member = if value.is_empty() {
            format!("<Key>{key}</Key><Value/>")
        } else {
            format!("<Key>{key}</Key><Value>{value}</Value>")
        };
        assert!(
            xml.contains(&member) || xml.contains(&format!("<Key>{key}</Key><Value></Value>")),
            "{key}: {xml}"
        );
    }
    h.ok(&set("load_balancing.algorithm.type", "weighted_random"))
        .await;
    h.ok(&set("load_balancing.algorithm.anomaly_mitigation", "on"))
        .await;
    h.fails(
        &set("slow_start.duration_seconds", "30"),
        "InvalidConfigurationRequest",
    )
    .await;
    h.ok(&format!(
        "Action=ModifyTargetGroupAttributes&TargetGroupArn={arn}\
         &Attributes.member.1.Key=stickiness.type&Attributes.member.1.Value=app_cookie\
         &Attributes.member.2.Key=stickiness.app_cookie.cookie_name&Attributes.member.2.Value=SESSION\
         &Attributes.member.3.Key=stickiness.enabled&Attributes.member.3.Value=true"
    ))
    .await;
    let xml = h
        .ok(&set("deregistration_delay.timeout_seconds", "5"))
        .await;
    assert!(
        xml.contains("<Key>deregistration_delay.timeout_seconds</Key><Value>5</Value>"),
        "{xml}"
    );
    let xml = h
        .ok(&format!(
            "Action=DescribeTargetGroupAttributes&TargetGroupArn={arn}"
        ))
        .await;
    assert!(
        xml.contains("<Key>stickiness.type</Key><Value>app_cookie</Value>"),
        "{xml}"
    );
}

#[tokio::test]
async fn listeners_forward_to_target_groups_in_use() {
    let h = Harness::new();
    let lb = h.load_balancer("web").await;
    let tg = h.target_group("api").await;
    let listener = h.listener(&lb, 80, &tg).await;
    assert!(listener.contains(":listener/app/web/"));
    h.fails(
        &format!("Action=DeleteTargetGroup&TargetGroupArn={tg}"),
        "ResourceInUse",
    )
    .await;
    let groups = h
        .ok(&format!("Action=DescribeTargetGroups&LoadBalancerArn={lb}"))
        .await;
    assert!(
        groups.contains(&format!(
            "<LoadBalancerArns><member>{lb}</member></LoadBalancerArns>"
        )),
        "{groups}"
    );
    // Another listener on the same port with other settings.
    h.fails(
        &format!("Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port=80&DefaultActions.member.1.Type=fixed-response&DefaultActions.member.1.FixedResponseConfig.StatusCode=503"),
        "DuplicateListener",
    )
    .await;
    let described = h
        .ok(&format!("Action=DescribeListeners&LoadBalancerArn={lb}"))
        .await;
    assert!(
        described.contains("<Port>80</Port>") && described.contains("<Type>forward</Type>"),
        "{described}"
    );
    let modified = h
        .ok(&format!("Action=ModifyListener&ListenerArn={listener}&Port=8080&DefaultActions.member.1.Type=fixed-response&DefaultActions.member.1.FixedResponseConfig.StatusCode=404&DefaultActions.member.1.FixedResponseConfig.ContentType=text/plain"))
        .await;
    assert!(
        modified.contains("<StatusCode>404</StatusCode>"),
        "{modified}"
    );
    // The listener no longer forwards: the target group can go.
    h.ok(&format!("Action=DeleteTargetGroup&TargetGroupArn={tg}"))
        .await;
    h.ok(&format!("Action=DeleteListener&ListenerArn={listener}"))
        .await;
    h.fails(
        &format!("Action=DescribeListeners&ListenerArns.member.1={listener}"),
        "ListenerNotFound",
    )
    .await;
}

#[tokio::test]
async fn listener_actions_are_validated() {
    let h = Harness::new();
    let lb = h.load_balancer("web").await;
    let create_with = |protocol: &str, actions: &str| {
        format!("Action=CreateListener&LoadBalancerArn={lb}&{protocol}Port=80&{actions}")
    };
    let create = |actions: &str| create_with("Protocol=HTTP&", actions);
    h.fails(
        &create("DefaultActions.member.1.Type=forward"),
        "ValidationError",
    )
    .await;
    // An application load balancer's listener names its protocol: HTTP or HTTPS (which Berth
    // does not serve); others are refused in AWS's words.
    let message = h
        .fails(
            &create_with("", "DefaultActions.member.1.Type=fixed-response&DefaultActions.member.1.FixedResponseConfig.StatusCode=200"),
            "ValidationError",
        )
        .await;
    assert_eq!(message, "A protocol must be specified");
    let message = h
        .fails(
            &create_with("Protocol=TCP&", "DefaultActions.member.1.Type=fixed-response&DefaultActions.member.1.FixedResponseConfig.StatusCode=200"),
            "ValidationError",
        )
        .await;
    assert_eq!(
        message,
        "Listener protocol 'TCP' must be one of 'HTTPS, HTTP'"
    );
    // Authentication actions are refused as what they are (they come before a forward).
    for kind in ["authenticate-oidc", "authenticate-cognito"] {
        let message = h
            .fails(
                &create(&format!(
                    "DefaultActions.member.1.Type={kind}&DefaultActions.member.1.Order=1\
                     &DefaultActions.member.2.Type=fixed-response&DefaultActions.member.2.Order=2\
                     &DefaultActions.member.2.FixedResponseConfig.StatusCode=200"
                )),
                "ValidationError",
            )
            .await;
        assert!(
            message.starts_with(&format!("Berth does not support actions of type '{kind}'")),
            "{message}"
        );
    }
    h.fails(
        &create("DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn=arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/x/0000000000000000"),
        "TargetGroupNotFound",
    )
    .await;
    h.fails(&create("DefaultActions.member.1.Type=fixed-response&DefaultActions.member.1.FixedResponseConfig.StatusCode=302"), "ValidationError").await;
    h.fails(&create("DefaultActions.member.1.Type=redirect&DefaultActions.member.1.RedirectConfig.StatusCode=HTTP_301"), "InvalidLoadBalancerAction").await;
    h.fails(
        &create("DefaultActions.member.1.Type=authenticate-oidc"),
        "ValidationError",
    )
    .await;
    h.fails(
        &create_with("Protocol=HTTPS&", "DefaultActions.member.1.Type=redirect"),
        "ValidationError",
    )
    .await;
    let xml = h
        .ok(&create("DefaultActions.member.1.Type=redirect&DefaultActions.member.1.RedirectConfig.StatusCode=HTTP_301&DefaultActions.member.1.RedirectConfig.Port=443&DefaultActions.member.1.RedirectConfig.Protocol=HTTPS"))
        .await;
    assert!(xml.contains("<Order>1</Order>"), "{xml}");
    // Deleting the load balancer deletes its listeners.
    h.ok(&format!("Action=DeleteLoadBalancer&LoadBalancerArn={lb}"))
        .await;
    let listener = between(&xml, "<ListenerArn>", "</ListenerArn>");
    h.fails(
        &format!("Action=DescribeListeners&ListenerArns.member.1={listener}"),
        "ListenerNotFound",
    )
    .await;
}

/// A data plane that reports what the test sets, by (target id, port).
#[derive(Default)]
struct FakeHealth {
    observed: std::sync::Mutex<std::collections::BTreeMap<(String, i32), TargetHealthState>>,
}

impl FakeHealth {
    fn set(&self, id: &str, port: i32, state: Option<TargetHealthState>) {
        let mut observed = self.observed.lock().unwrap();
        match state {
            Some(state) => observed.insert((id.to_string(), port), state),
            None => observed.remove(&(id.to_string(), port)),
        };
    }
}

impl TargetHealthSource for FakeHealth {
    fn target_health(&self, _: &str, target_id: &str, port: i32) -> Option<ObservedTargetHealth> {
        let state = *self
            .observed
            .lock()
            .unwrap()
            .get(&(target_id.to_string(), port))?;
        Some(ObservedTargetHealth {
            state,
            reason: (state == TargetHealthState::Draining)
                .then(|| "Target.DeregistrationInProgress".to_string()),
            description: None,
        })
    }

    fn data_plane_targets(&self, _: &str) -> Vec<(String, i32)> {
        self.observed.lock().unwrap().keys().cloned().collect()
    }
}

#[tokio::test]
async fn target_health_reports_only_what_is_known() {
    let mut h = Harness::new();
    let health = Arc::new(FakeHealth::default());
    health.set("10.0.0.1", 80, Some(TargetHealthState::Healthy));
    h.elbv2 = Elbv2::new(Arc::new(store::MemoryStore::new()))
        .with_target_health(Arc::clone(&health) as Arc<dyn TargetHealthSource>);
    let tg = between(
        &h.ok("Action=CreateTargetGroup&Name=ips&Protocol=HTTP&Port=80&TargetType=ip")
            .await,
        "<TargetGroupArn>",
        "</TargetGroupArn>",
    );
    h.fails(
        &format!("Action=RegisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=i-123"),
        "InvalidTarget",
    )
    .await;
    h.ok(&format!("Action=RegisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.1&Targets.member.2.Id=10.0.0.2&Targets.member.2.Port=81")).await;
    let unused = h
        .ok(&format!("Action=DescribeTargetHealth&TargetGroupArn={tg}"))
        .await;
    assert_eq!(
        unused.matches("<Reason>Target.NotInUse</Reason>").count(),
        2,
        "{unused}"
    );
    let lb = h.load_balancer("web").await;
    h.listener(&lb, 80, &tg).await;
    let described = h
        .ok(&format!("Action=DescribeTargetHealth&TargetGroupArn={tg}"))
        .await;
    assert!(described.contains("<Id>10.0.0.1</Id><Port>80</Port></Target><HealthCheckPort>80</HealthCheckPort><TargetHealth><State>healthy</State>"), "{described}");
    assert!(described.contains("<Id>10.0.0.2</Id><Port>81</Port></Target><HealthCheckPort>81</HealthCheckPort><TargetHealth><State>unavailable</State><Reason>Elb.InternalError</Reason>"), "{described}");
    let asked = h
        .ok(&format!(
            "Action=DescribeTargetHealth&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.9"
        ))
        .await;
    assert!(
        asked.contains("<Reason>Target.NotRegistered</Reason>"),
        "{asked}"
    );
    // A deregistered target the data plane still drains is listed as draining.
    health.set("10.0.0.2", 81, Some(TargetHealthState::Draining));
    h.ok(&format!("Action=DeregisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.2&Targets.member.1.Port=81")).await;
    h.fails(&format!("Action=DeregisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.2&Targets.member.1.Port=81"), "InvalidTarget").await;
    let draining = "<Id>10.0.0.2</Id><Port>81</Port></Target><HealthCheckPort>81</HealthCheckPort><TargetHealth><State>draining</State><Reason>Target.DeregistrationInProgress</Reason>";
    for request in [
        format!("Action=DescribeTargetHealth&TargetGroupArn={tg}"),
        format!("Action=DescribeTargetHealth&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.2&Targets.member.1.Port=81"),
    ] {
        let described = h.ok(&request).await;
        assert!(described.contains(draining), "{described}");
    }
    // Once drained, it is gone.
    health.set("10.0.0.2", 81, None);
    let after = h
        .ok(&format!("Action=DescribeTargetHealth&TargetGroupArn={tg}"))
        .await;
    assert!(!after.contains("10.0.0.2"), "{after}");
    // With health checks disabled nothing is observed, but draining still shows.
    h.ok(&format!(
        "Action=ModifyTargetGroup&TargetGroupArn={tg}&HealthCheckEnabled=false"
    ))
    .await;
    health.set("10.0.0.1", 80, Some(TargetHealthState::Draining));
    h.ok(&format!(
        "Action=DeregisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.1"
    ))
    .await;
    h.ok(&format!(
        "Action=RegisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.3"
    ))
    .await;
    let disabled = h
        .ok(&format!("Action=DescribeTargetHealth&TargetGroupArn={tg}"))
        .await;
    assert!(disabled.contains("<Id>10.0.0.1</Id><Port>80</Port></Target><HealthCheckPort>80</HealthCheckPort><TargetHealth><State>draining</State>"), "{disabled}");
    assert!(disabled.contains("<Id>10.0.0.3</Id><Port>80</Port></Target><HealthCheckPort>80</HealthCheckPort><TargetHealth><State>unavailable</State><Reason>Target.HealthCheckDisabled</Reason>"), "{disabled}");
}

/// Stores a container instance in cluster `default` as the ECS API does.
pub(crate) async fn put_container_instance(
    store: &dyn store::Store,
    region: &str,
    ec2_instance_id: &str,
    status: model::container_instance::ContainerInstanceStatus,
    host_address: Option<&str>,
) {
    let instance = model::container_instance::ContainerInstance {
        id: format!("ci-{ec2_instance_id}"),
        cluster_name: "default".into(),
        ec2_instance_id: ec2_instance_id.into(),
        status,
        status_reason: None,
        registered: Default::default(),
        remaining: Default::default(),
        attributes: host_address
            .map(|address| {
                (
                    data_plane::HOST_ADDRESS_ATTRIBUTE.to_string(),
                    Some(address.to_string()),
                )
            })
            .into_iter()
            .collect(),
        version_info: Default::default(),
        registered_at_ms: 0,
        task_groups: Default::default(),
        tags: Vec::new(),
        version: 1,
    };
    let key = format!(
        "{}default/{}",
        api::keys::all_container_instances_prefix(region),
        instance.id
    );
    let put = store::Txn::new().then(store::Op::put(key, serde_json::to_vec(&instance).unwrap()));
    store.txn(put).await.unwrap();
}

#[tokio::test]
async fn instance_targets_must_be_running_container_instances() {
    use model::container_instance::ContainerInstanceStatus::{Active, Draining, Inactive};
    let h = Harness::new();
    put_container_instance(
        h.elbv2.store(),
        "us-east-1",
        "i-active",
        Active,
        Some("127.0.0.1"),
    )
    .await;
    put_container_instance(
        h.elbv2.store(),
        "us-east-1",
        "i-draining",
        Draining,
        Some("127.0.0.2"),
    )
    .await;
    put_container_instance(
        h.elbv2.store(),
        "us-east-1",
        "i-inactive",
        Inactive,
        Some("127.0.0.3"),
    )
    .await;
    put_container_instance(h.elbv2.store(), "us-east-1", "i-silent", Active, None).await;
    let tg = h.target_group("instances").await;
    let message = h
        .fails(
            &format!("Action=RegisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=i-active&Targets.member.2.Id=i-inactive&Targets.member.3.Id=i-nope"),
            "InvalidTarget",
        )
        .await;
    assert_eq!(
        message,
        "The following targets are not in a running state and cannot be registered: 'i-inactive', 'i-nope'"
    );
    h.ok(&format!("Action=RegisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=i-active&Targets.member.2.Id=i-draining&Targets.member.3.Id=i-silent")).await;
    let lb = h.load_balancer("web").await;
    h.listener(&lb, 80, &tg).await;
    // The instance turns INACTIVE after registration: it is no longer served.
    put_container_instance(
        h.elbv2.store(),
        "us-east-1",
        "i-draining",
        Inactive,
        Some("127.0.0.2"),
    )
    .await;
    let described = h
        .ok(&format!("Action=DescribeTargetHealth&TargetGroupArn={tg}"))
        .await;
    assert!(described.contains("<Id>i-active</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>unavailable</State><Reason>Elb.InternalError</Reason>"), "{described}");
    assert!(described.contains("<Id>i-draining</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>unused</State><Reason>Target.InvalidState</Reason><Description>Target is in the INACTIVE state"), "{described}");
    assert!(described.contains("<Id>i-silent</Id><Port>8080</Port></Target><HealthCheckPort>8080</HealthCheckPort><TargetHealth><State>unused</State><Reason>Target.InvalidState</Reason><Description>Target has no berth.host-address attribute"), "{described}");
    let served = data_plane::data_plane(h.elbv2.store()).await.unwrap();
    assert_eq!(
        served.targets[&tg],
        vec![data_plane::ResolvedTarget {
            id: "i-active".into(),
            port: 8080,
            target: load_balancer::Target {
                id: "127.0.0.1".parse().unwrap(),
                port: 8080
            },
        }]
    );
    // Deregistering needs no running instance.
    h.ok(&format!(
        "Action=DeregisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=i-draining"
    ))
    .await;
}

#[tokio::test]
async fn tags_are_added_removed_and_described() {
    let h = Harness::new();
    let lb = h.load_balancer("web").await;
    let tg = h.target_group("api").await;
    h.ok(&format!("Action=AddTags&ResourceArns.member.1={lb}&ResourceArns.member.2={tg}&Tags.member.1.Key=team&Tags.member.1.Value=blue")).await;
    h.ok(&format!(
        "Action=RemoveTags&ResourceArns.member.1={tg}&TagKeys.member.1=team"
    ))
    .await;
    let xml = h
        .ok(&format!(
            "Action=DescribeTags&ResourceArns.member.1={lb}&ResourceArns.member.2={tg}"
        ))
        .await;
    assert!(xml.contains(&format!("<ResourceArn>{lb}</ResourceArn><Tags><member><Key>team</Key><Value>blue</Value></member></Tags>")), "{xml}");
    assert!(
        xml.contains(&format!("<ResourceArn>{tg}</ResourceArn><Tags></Tags>")),
        "{xml}"
    );
    let many: String = (0..51)
        .map(|i| format!("&Tags.member.{}.Key=k{i}", i + 1))
        .collect();
    h.fails(
        &format!("Action=AddTags&ResourceArns.member.1={lb}{many}"),
        "TooManyTags",
    )
    .await;
    h.fails(
        &format!("Action=AddTags&ResourceArns.member.1={lb}&Tags.member.1.Key=aws:x"),
        "ValidationError",
    )
    .await;
}

#[tokio::test]
async fn unsupported_and_unknown_actions_answer_invalid_action() {
    let h = Harness::new();
    h.fails("Action=ModifyCapacityReservation", "InvalidAction")
        .await;
    let message = h.fails("Action=Bogus", "InvalidAction").await;
    // AWS's message first, Berth's list after.
    assert!(
        message.starts_with("The action Bogus is not valid for this web service. "),
        "{message}"
    );
    let err = h
        .call("Action=ModifyCapacityReservation")
        .await
        .unwrap_err();
    assert_eq!(err.http_status, 400);
    for operation in SUPPORTED_OPERATIONS {
        assert!(elbv2_wire::OPERATIONS.contains(operation), "{operation}");
    }
}

impl Harness {
    async fn rule(&self, listener_arn: &str, priority: u32, rest: &str) -> String {
        let xml = self
            .ok(&format!(
                "Action=CreateRule&ListenerArn={listener_arn}&Priority={priority}&{rest}"
            ))
            .await;
        between(&xml, "<RuleArn>", "</RuleArn>")
    }
}

fn forward_to(target_group_arn: &str) -> String {
    format!("Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn={target_group_arn}")
}

/// The (RuleArn, Priority, IsDefault) of each rule in a DescribeRules answer, in order.
fn described_rules(xml: &str) -> Vec<(String, String, bool)> {
    xml.split("<RuleArn>")
        .skip(1)
        .map(|rule| {
            (
                rule[..rule.find("</RuleArn>").unwrap()].to_string(),
                between(rule, "<Priority>", "</Priority>"),
                between(rule, "<IsDefault>", "</IsDefault>") == "true",
            )
        })
        .collect()
}

#[tokio::test]
async fn rules_are_created_described_reordered_and_deleted() {
    let h = Harness::new();
    let lb = h.load_balancer("web").await;
    let api = h.target_group("api").await;
    let site = h.target_group("site").await;
    let listener = h.listener(&lb, 80, &site).await;
    let path_rule = h
        .rule(
            &listener,
            10,
            &format!(
                "Conditions.member.1.Field=path-pattern\
                 &Conditions.member.1.PathPatternConfig.Values.member.1=/api/*&{}",
                forward_to(&api)
            ),
        )
        .await;
    let lb_id = lb.rsplit('/').next().unwrap();
    let listener_id = listener.rsplit('/').next().unwrap();
    assert!(
        path_rule.starts_with(&format!(
            "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/web/{lb_id}/{listener_id}/"
        )),
        "{path_rule}"
    );
    let message = h
        .fails(
            &format!("Action=CreateRule&ListenerArn={listener}&Priority=10&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/x&{}", forward_to(&api)),
            "PriorityInUse",
        )
        .await;
    assert_eq!(message, "Priority '10' is currently in use");
    // The legacy `Values` form, with a fixed response.
    let host_rule = h
        .rule(
            &listener,
            5,
            "Conditions.member.1.Field=host-header&Conditions.member.1.Values.member.1=admin.example.com\
             &Actions.member.1.Type=fixed-response&Actions.member.1.FixedResponseConfig.StatusCode=403",
        )
        .await;
    let described = h
        .ok(&format!("Action=DescribeRules&ListenerArn={listener}"))
        .await;
    let default_rule = ids::default_rule_arn(&listener);
    assert_eq!(
        described_rules(&described),
        vec![
            (host_rule.clone(), "5".into(), false),
            (path_rule.clone(), "10".into(), false),
            (default_rule.clone(), "default".into(), true),
        ]
    );
    assert!(described.contains("<Conditions><member><Field>path-pattern</Field><Values><member>/api/*</member></Values><PathPatternConfig><Values><member>/api/*</member></Values></PathPatternConfig></member></Conditions>"), "{described}");
    assert!(described.contains("<Field>host-header</Field><Values><member>admin.example.com</member></Values><HostHeaderConfig><Values><member>admin.example.com</member></Values></HostHeaderConfig>"), "{described}");
    assert!(described.contains(&format!("<RuleArn>{default_rule}</RuleArn><Priority>default</Priority><Conditions></Conditions><Actions><member><Type>forward</Type><TargetGroupArn>{site}</TargetGroupArn>")), "{described}");

    // Pages, and rules by ARN.
    let first = h
        .ok(&format!(
            "Action=DescribeRules&ListenerArn={listener}&PageSize=2"
        ))
        .await;
    assert_eq!(described_rules(&first).len(), 2);
    let marker = between(&first, "<NextMarker>", "</NextMarker>");
    let second = h
        .ok(&format!(
            "Action=DescribeRules&ListenerArn={listener}&PageSize=2&Marker={marker}"
        ))
        .await;
    assert_eq!(
        described_rules(&second),
        vec![(default_rule.clone(), "default".into(), true)]
    );
    assert!(!second.contains("<NextMarker>"), "{second}");
    let by_arn = h
        .ok(&format!(
            "Action=DescribeRules&RuleArns.member.1={default_rule}&RuleArns.member.2={path_rule}"
        ))
        .await;
    assert_eq!(
        described_rules(&by_arn),
        vec![
            (path_rule.clone(), "10".into(), false),
            (default_rule.clone(), "default".into(), true)
        ]
    );
    h.fails("Action=DescribeRules", "ValidationError").await;
    h.fails(
        &format!("Action=DescribeRules&ListenerArn={listener}&RuleArns.member.1={path_rule}"),
        "ValidationError",
    )
    .await;
    h.fails(
        &format!("Action=DescribeRules&RuleArns.member.1={path_rule}0"),
        "RuleNotFound",
    )
    .await;
    h.fails(
        &format!("Action=DescribeRules&ListenerArn={listener}0"),
        "ListenerNotFound",
    )
    .await;

    // A target group a rule forwards to is in use by the load balancer.
    h.fails(
        &format!("Action=DeleteTargetGroup&TargetGroupArn={api}"),
        "ResourceInUse",
    )
    .await;
    let groups = h
        .ok(&format!("Action=DescribeTargetGroups&LoadBalancerArn={lb}"))
        .await;
    assert!(groups.contains(&api) && groups.contains(&site), "{groups}");

    // Priorities: a collision with a rule left out, a duplicate, the default rule.
    let message = h
        .fails(
            &format!("Action=SetRulePriorities&RulePriorities.member.1.RuleArn={path_rule}&RulePriorities.member.1.Priority=5"),
            "PriorityInUse",
        )
        .await;
    assert_eq!(message, "Priority '5' is currently in use");
    h.fails(&format!("Action=SetRulePriorities&RulePriorities.member.1.RuleArn={path_rule}&RulePriorities.member.1.Priority=7&RulePriorities.member.2.RuleArn={host_rule}&RulePriorities.member.2.Priority=7"), "ValidationError").await;
    h.fails(&format!("Action=SetRulePriorities&RulePriorities.member.1.RuleArn={default_rule}&RulePriorities.member.1.Priority=7"), "OperationNotPermitted").await;
    let swapped = h.ok(&format!("Action=SetRulePriorities&RulePriorities.member.1.RuleArn={path_rule}&RulePriorities.member.1.Priority=5&RulePriorities.member.2.RuleArn={host_rule}&RulePriorities.member.2.Priority=10")).await;
    assert_eq!(
        described_rules(&swapped),
        vec![
            (path_rule.clone(), "5".into(), false),
            (host_rule.clone(), "10".into(), false)
        ]
    );

    // ModifyRule replaces what it is given; on the default rule it changes the listener.
    let modified = h
        .ok(&format!(
            "Action=ModifyRule&RuleArn={path_rule}&Actions.member.1.Type=forward\
             &Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn={site}"
        ))
        .await;
    assert!(
        modified.contains("<Field>path-pattern</Field>"),
        "{modified}"
    );
    h.ok(&format!("Action=DeleteTargetGroup&TargetGroupArn={api}"))
        .await;
    h.fails(
        &format!("Action=ModifyRule&RuleArn={path_rule}&{}", forward_to(&api)),
        "TargetGroupNotFound",
    )
    .await;
    h.fails(
        &format!("Action=ModifyRule&RuleArn={default_rule}&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/x"),
        "ValidationError",
    )
    .await;
    let default_modified = h
        .ok(&format!("Action=ModifyRule&RuleArn={default_rule}&Actions.member.1.Type=fixed-response&Actions.member.1.FixedResponseConfig.StatusCode=404"))
        .await;
    assert!(
        default_modified.contains("<IsDefault>true</IsDefault>")
            && default_modified.contains("<StatusCode>404</StatusCode>"),
        "{default_modified}"
    );
    let listeners = h
        .ok(&format!(
            "Action=DescribeListeners&ListenerArns.member.1={listener}"
        ))
        .await;
    assert!(
        listeners.contains("<StatusCode>404</StatusCode>"),
        "{listeners}"
    );

    // Tags on rules, the default rule's included.
    h.ok(&format!("Action=AddTags&ResourceArns.member.1={host_rule}&ResourceArns.member.2={default_rule}&Tags.member.1.Key=team&Tags.member.1.Value=edge")).await;
    let tags = h
        .ok(&format!(
            "Action=DescribeTags&ResourceArns.member.1={host_rule}&ResourceArns.member.2={default_rule}"
        ))
        .await;
    assert_eq!(
        tags.matches("<Tags><member><Key>team</Key><Value>edge</Value></member></Tags>")
            .count(),
        2,
        "{tags}"
    );

    // The default rule stays; the others can go.
    h.fails(
        &format!("Action=DeleteRule&RuleArn={default_rule}"),
        "OperationNotPermitted",
    )
    .await;
    h.ok(&format!("Action=DeleteRule&RuleArn={host_rule}"))
        .await;
    h.fails(
        &format!("Action=DeleteRule&RuleArn={host_rule}"),
        "RuleNotFound",
    )
    .await;
    let remaining = h
        .ok(&format!("Action=DescribeRules&ListenerArn={listener}"))
        .await;
    assert_eq!(described_rules(&remaining).len(), 2);
}

#[tokio::test]
async fn deleting_a_listener_or_load_balancer_deletes_its_rules() {
    let h = Harness::new();
    let lb = h.load_balancer("web").await;
    let api = h.target_group("api").await;
    let site = h.target_group("site").await;
    let listener = h.listener(&lb, 80, &site).await;
    let condition =
        "Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/api/*";
    let rule = h
        .rule(&listener, 1, &format!("{condition}&{}", forward_to(&api)))
        .await;
    h.ok(&format!("Action=DeleteListener&ListenerArn={listener}"))
        .await;
    h.fails(
        &format!("Action=DescribeRules&RuleArns.member.1={rule}"),
        "RuleNotFound",
    )
    .await;
    let groups = h
        .ok(&format!(
            "Action=DescribeTargetGroups&TargetGroupArns.member.1={api}"
        ))
        .await;
    assert!(
        groups.contains("<LoadBalancerArns></LoadBalancerArns>"),
        "{groups}"
    );

    let listener = h.listener(&lb, 81, &site).await;
    let rule = h
        .rule(&listener, 1, &format!("{condition}&{}", forward_to(&api)))
        .await;
    h.fails(
        &format!("Action=DeleteTargetGroup&TargetGroupArn={api}"),
        "ResourceInUse",
    )
    .await;
    h.ok(&format!("Action=DeleteLoadBalancer&LoadBalancerArn={lb}"))
        .await;
    h.fails(
        &format!("Action=DescribeRules&RuleArns.member.1={rule}"),
        "RuleNotFound",
    )
    .await;
    h.ok(&format!("Action=DeleteTargetGroup&TargetGroupArn={api}"))
        .await;
    h.ok(&format!("Action=DeleteTargetGroup&TargetGroupArn={site}"))
        .await;
}

#[tokio::test]
async fn rules_are_validated_and_limited() {
    let h = Harness::new();
    let lb = h.load_balancer("web").await;
    let tg = h.target_group("api").await;
    let listener = h.listener(&lb, 80, &tg).await;
    let create = |priority: u32, rest: &str| {
        format!("Action=CreateRule&ListenerArn={listener}&Priority={priority}&{rest}")
    };
    let six: String = (1..=6)
        .map(|i| format!("&Conditions.member.1.PathPatternConfig.Values.member.{i}=/p{i}"))
        .collect();
    let message = h
        .fails(
            &create(
                1,
                &format!(
                    "Conditions.member.1.Field=path-pattern{six}&{}",
                    forward_to(&tg)
                ),
            ),
            "ValidationError",
        )
        .await;
    assert_eq!(message, "A rule can only have '5' condition values");
    h.fails(
        &create(1, &format!("Conditions.member.1.Field=query-string&Conditions.member.1.QueryStringConfig.Values.member.1.Key=a&{}", forward_to(&tg))),
        "ValidationError",
    )
    .await;
    h.fails(
        &create(1, "Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/a&Actions.member.1.Type=forward&Actions.member.1.TargetGroupArn=arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/x/0000000000000000"),
        "TargetGroupNotFound",
    )
    .await;
    h.fails(
        &create(1, &format!("Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/a&Transforms.member.1.Type=url-rewrite&{}", forward_to(&tg))),
        "ValidationError",
    )
    .await;
    h.fails(
        &format!("Action=CreateRule&ListenerArn={listener}0&Priority=1&Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/a&{}", forward_to(&tg)),
        "ListenerNotFound",
    )
    .await;
    // 100 rules per load balancer, across its listeners.
    let other = h.listener(&lb, 81, &tg).await;
    for priority in 1..=100 {
        let listener = if priority % 2 == 0 { &listener } else { &other };
        h.rule(
            listener,
            priority,
            &format!(
                "Conditions.member.1.Field=source-ip&Conditions.member.1.SourceIpConfig.Values.member.1=10.0.0.0/8&{}",
                forward_to(&tg)
            ),
        )
        .await;
    }
    h.fails(
        &create(101, &format!("Conditions.member.1.Field=http-request-method&Conditions.member.1.HttpRequestMethodConfig.Values.member.1=GET&{}", forward_to(&tg))),
        "TooManyRules",
    )
    .await;
}

#[tokio::test]
async fn load_balancers_have_awss_attribute_set_hosted_zone_and_vpc() {
    let h = Harness::new();
    let arn = h.load_balancer("full").await;
    let described = h
        .ok("Action=DescribeLoadBalancers&Names.member.1=full")
        .await;
    assert!(
        described.contains("<CanonicalHostedZoneId>Z35SXDOTRQ7X7K</CanonicalHostedZoneId>"),
        "{described}"
    );
    assert!(
        described.contains(&format!("<VpcId>{BERTH_VPC_ID}</VpcId>")),
        "{described}"
    );
    let xml = h
        .ok(&format!(
            "Action=DescribeLoadBalancerAttributes&LoadBalancerArn={arn}"
        ))
        .await;
    assert_eq!(xml.matches("<Key>").count(), 22, "{xml}");
    for member in [
        "<Key>routing.http2.enabled</Key><Value>true</Value>",
        "<Key>client_keep_alive.seconds</Key><Value>3600</Value>",
        "<Key>routing.http.xff_header_processing.mode</Key><Value>append</Value>",
        "<Key>routing.http.desync_mitigation_mode</Key><Value>defensive</Value>",
        "<Key>load_balancing.cross_zone.enabled</Key><Value>true</Value>",
        "<Key>zonal_shift.config.enabled</Key><Value>false</Value>",
        "<Key>waf.fail_open.enabled</Key><Value>false</Value>",
    ] {
        assert!(xml.contains(member), "{member}: {xml}");
    }
    let modify = |pairs: &[(&str, &str)]| {
        let mut body = format!("Action=ModifyLoadBalancerAttributes&LoadBalancerArn={arn}");
        for (index, (key, value)) in pairs.iter().enumerate() {
            let n = index + 1;
            body +=
                &format!("&Attributes.member.{n}.Key={key}&Attributes.member.{n}.Value={value}");
        }
        body
    };
    let xml = h
        .ok(&modify(&[
            ("routing.http.xff_header_processing.mode", "remove"),
            ("client_keep_alive.seconds", "60"),
            ("routing.http.preserve_host_header.enabled", "true"),
        ]))
        .await;
    assert!(
        xml.contains("<Key>routing.http.xff_header_processing.mode</Key><Value>remove</Value>"),
        "{xml}"
    );
    // A bad value anywhere changes nothing.
    let message = h
        .fails(
            &modify(&[
                ("routing.http2.enabled", "false"),
                ("client_keep_alive.seconds", "59"),
            ]),
            "ValidationError",
        )
        .await;
    assert!(message.contains("client_keep_alive.seconds"), "{message}");
    let xml = h
        .ok(&format!(
            "Action=DescribeLoadBalancerAttributes&LoadBalancerArn={arn}"
        ))
        .await;
    assert!(xml.contains("<Key>routing.http2.enabled</Key><Value>true</Value>"));
    assert!(xml.contains("<Key>client_keep_alive.seconds</Key><Value>60</Value>"));
    let message = h
        .fails(
            &modify(&[("secondary_ips.auto_assigned.per_subnet", "1")]),
            "ValidationError",
        )
        .await;
    assert_eq!(
        message,
        "Load balancer attribute key 'secondary_ips.auto_assigned.per_subnet' is not recognized"
    );
    // Deletion protection: AWS's message first.
    h.ok(&modify(&[("deletion_protection.enabled", "true")]))
        .await;
    let message = h
        .fails(
            &format!("Action=DeleteLoadBalancer&LoadBalancerArn={arn}"),
            "OperationNotPermitted",
        )
        .await;
    assert!(
        message.starts_with(&format!(
            "Load balancer '{arn}' cannot be deleted because deletion protection is enabled"
        )),
        "{message}"
    );
    h.ok(&modify(&[("deletion_protection.enabled", "false")]))
        .await;
    h.ok(&format!("Action=DeleteLoadBalancer&LoadBalancerArn={arn}"))
        .await;
}

#[tokio::test]
async fn subnets_security_groups_and_ip_address_type_can_be_set() {
    let h = Harness::new();
    let arn = h.load_balancer("nets").await;
    let xml = h
        .ok(&format!(
            "Action=SetSubnets&LoadBalancerArn={arn}&Subnets.member.1=subnet-a&Subnets.member.2=subnet-b"
        ))
        .await;
    assert!(
        xml.contains("<ZoneName>us-east-1a</ZoneName><SubnetId>subnet-a</SubnetId>")
            && xml.contains("<SubnetId>subnet-b</SubnetId>")
            && xml.contains("<IpAddressType>ipv4</IpAddressType>"),
        "{xml}"
    );
    h.fails(
        &format!("Action=SetSubnets&LoadBalancerArn={arn}&Subnets.member.1=subnet-a"),
        "InvalidConfigurationRequest",
    )
    .await;
    h.fails(
        &format!(
            "Action=SetSubnets&LoadBalancerArn={arn}&SubnetMappings.member.1.SubnetId=subnet-a"
        ),
        "ValidationError",
    )
    .await;
    let described = h
        .ok(&format!(
            "Action=DescribeLoadBalancers&LoadBalancerArns.member.1={arn}"
        ))
        .await;
    assert!(
        described.contains("<SubnetId>subnet-b</SubnetId>"),
        "{described}"
    );
    let xml = h
        .ok(&format!(
            "Action=SetSecurityGroups&LoadBalancerArn={arn}&SecurityGroups.member.1=sg-1&SecurityGroups.member.2=sg-2"
        ))
        .await;
    assert!(
        xml.contains(
            "<SecurityGroupIds><member>sg-1</member><member>sg-2</member></SecurityGroupIds>"
        ),
        "{xml}"
    );
    let described = h
        .ok(&format!(
            "Action=DescribeLoadBalancers&LoadBalancerArns.member.1={arn}"
        ))
        .await;
    assert!(described.contains("<member>sg-2</member>"), "{described}");
    let xml = h
        .ok(&format!(
            "Action=SetIpAddressType&LoadBalancerArn={arn}&IpAddressType=ipv4"
        ))
        .await;
    assert!(xml.contains("<IpAddressType>ipv4</IpAddressType>"), "{xml}");
    h.fails(
        &format!("Action=SetIpAddressType&LoadBalancerArn={arn}&IpAddressType=dualstack"),
        "ValidationError",
    )
    .await;
    let xml = h
        .ok(&format!(
            "Action=DescribeCapacityReservation&LoadBalancerArn={arn}"
        ))
        .await;
    assert!(!xml.contains("<MinimumLoadBalancerCapacity>"), "{xml}");
    let missing = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/gone/0000000000000000";
    for body in [
        format!(
            "Action=SetSubnets&LoadBalancerArn={missing}&Subnets.member.1=a&Subnets.member.2=b"
        ),
        format!("Action=SetSecurityGroups&LoadBalancerArn={missing}&SecurityGroups.member.1=sg-1"),
        format!("Action=SetIpAddressType&LoadBalancerArn={missing}&IpAddressType=ipv4"),
        format!("Action=DescribeCapacityReservation&LoadBalancerArn={missing}"),
    ] {
        h.fails(&body, "LoadBalancerNotFound").await;
    }
}

#[tokio::test]
async fn listener_attributes_and_certificates() {
    let h = Harness::new();
    let lb = h.load_balancer("web").await;
    let tg = h.target_group("api").await;
    let listener = h.listener(&lb, 80, &tg).await;
    let xml = h
        .ok(&format!(
            "Action=DescribeListenerAttributes&ListenerArn={listener}"
        ))
        .await;
    assert!(
        xml.contains("<Key>routing.http.response.server.enabled</Key><Value>true</Value>"),
        "{xml}"
    );
    let xml = h
        .ok(&format!(
            "Action=ModifyListenerAttributes&ListenerArn={listener}\
             &Attributes.member.1.Key=routing.http.response.server.enabled&Attributes.member.1.Value=false"
        ))
        .await;
    assert!(xml.contains("<Value>false</Value>"), "{xml}");
    let xml = h
        .ok(&format!(
            "Action=DescribeListenerAttributes&ListenerArn={listener}"
        ))
        .await;
    assert!(xml.contains("<Value>false</Value>"), "{xml}");
    h.fails(
        &format!(
            "Action=ModifyListenerAttributes&ListenerArn={listener}\
             &Attributes.member.1.Key=tcp.idle_timeout.seconds&Attributes.member.1.Value=350"
        ),
        "ValidationError",
    )
    .await;
    let xml = h
        .ok(&format!(
            "Action=DescribeListenerCertificates&ListenerArn={listener}"
        ))
        .await;
    assert!(!xml.contains("<CertificateArn>"), "{xml}");
    h.fails(
        &format!(
            "Action=AddListenerCertificates&ListenerArn={listener}\
             &Certificates.member.1.CertificateArn=arn:aws:acm:us-east-1:000000000000:certificate/x"
        ),
        "ValidationError",
    )
    .await;
    // Every operation taking a listener ARN answers ListenerNotFound for an unknown one.
    let missing = format!("{listener}0");
    let certificate =
        "Certificates.member.1.CertificateArn=arn:aws:acm:us-east-1:000000000000:certificate/x";
    for body in [
        format!("Action=DescribeListenerAttributes&ListenerArn={missing}"),
        format!(
            "Action=ModifyListenerAttributes&ListenerArn={missing}\
             &Attributes.member.1.Key=routing.http.response.server.enabled&Attributes.member.1.Value=true"
        ),
        format!("Action=DescribeListenerCertificates&ListenerArn={missing}"),
        format!("Action=AddListenerCertificates&ListenerArn={missing}&{certificate}"),
        format!("Action=RemoveListenerCertificates&ListenerArn={missing}&{certificate}"),
        format!("Action=DescribeListeners&ListenerArns.member.1={missing}"),
        format!("Action=ModifyListener&ListenerArn={missing}&Port=81"),
        format!("Action=DeleteListener&ListenerArn={missing}"),
        format!("Action=DescribeRules&ListenerArn={missing}"),
        format!(
            "Action=CreateRule&ListenerArn={missing}&Priority=1\
             &Conditions.member.1.Field=path-pattern&Conditions.member.1.Values.member.1=/a\
             &Actions.member.1.Type=fixed-response&Actions.member.1.FixedResponseConfig.StatusCode=200"
        ),
    ] {
        h.fails(&body, "ListenerNotFound").await;
    }
}

#[tokio::test]
async fn account_limits_are_awss_defaults() {
    let h = Harness::new();
    let xml = h.ok("Action=DescribeAccountLimits").await;
    assert_eq!(xml.matches("<Name>").count(), 18, "{xml}");
    for member in [
        "<Name>application-load-balancers</Name><Max>50</Max>",
        "<Name>rules-per-application-load-balancer</Name><Max>100</Max>",
        "<Name>target-groups</Name><Max>3000</Max>",
        "<Name>condition-values-per-alb-rule</Name><Max>5</Max>",
    ] {
        assert!(xml.contains(member), "{member}: {xml}");
    }
    let page = h.ok("Action=DescribeAccountLimits&PageSize=5").await;
    assert_eq!(page.matches("<Name>").count(), 5, "{page}");
    let marker = between(&page, "<NextMarker>", "</NextMarker>");
    let rest = h
        .ok(&format!("Action=DescribeAccountLimits&Marker={marker}"))
        .await;
    assert_eq!(rest.matches("<Name>").count(), 13, "{rest}");
}

#[tokio::test]
async fn the_application_load_balancer_quotas_are_enforced() {
    let h = Harness::new();
    for index in 0..50 {
        h.load_balancer(&format!("lb{index}")).await;
    }
    h.fails(
        "Action=CreateLoadBalancer&Name=lb50",
        "TooManyLoadBalancers",
    )
    .await;
    // An existing one is still returned.
    h.ok("Action=CreateLoadBalancer&Name=lb7").await;
    let lb = h
        .ok("Action=DescribeLoadBalancers&Names.member.1=lb0")
        .await;
    let lb = between(&lb, "<LoadBalancerArn>", "</LoadBalancerArn>");
    let tg = h.target_group("api").await;
    for port in 1..=50 {
        h.listener(&lb, port, &tg).await;
    }
    h.fails(
        &format!(
            "Action=CreateListener&LoadBalancerArn={lb}&Protocol=HTTP&Port=51\
             &DefaultActions.member.1.Type=forward&DefaultActions.member.1.TargetGroupArn={tg}"
        ),
        "TooManyListeners",
    )
    .await;
}
