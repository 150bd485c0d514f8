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

fn between(text: &str, start: &str, end: &str) -> String {
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
    h.fails(
        "Action=CreateTargetGroup&Name=x&Protocol=HTTP&Port=1&HealthCheckIntervalSeconds=5&HealthCheckTimeoutSeconds=6",
        "InvalidConfigurationRequest",
    )
    .await;
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
        ("load_balancing.algorithm.type", "weighted_random"),
        ("slow_start.duration_seconds", "10"),
        ("stickiness.enabled", "yes"),
        ("stickiness.type", "app_cookie"),
        ("stickiness.lb_cookie.duration_seconds", "0"),
        ("proxy_protocol_v2.enabled", "true"),
    ] {
        h.fails(&set(key, value), "ValidationError").await;
    }
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
        xml.contains("<Key>stickiness.type</Key><Value>lb_cookie</Value>"),
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
        &format!("Action=CreateListener&LoadBalancerArn={lb}&Port=80&DefaultActions.member.1.Type=fixed-response&DefaultActions.member.1.FixedResponseConfig.StatusCode=503"),
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
    let create =
        |actions: &str| format!("Action=CreateListener&LoadBalancerArn={lb}&Port=80&{actions}");
    h.fails(
        &create("DefaultActions.member.1.Type=forward"),
        "ValidationError",
    )
    .await;
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
        &create("Protocol=HTTPS&DefaultActions.member.1.Type=redirect"),
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

struct FixedHealth;

impl TargetHealthSource for FixedHealth {
    fn target_health(&self, _: &str, target_id: &str, _: i32) -> Option<ObservedTargetHealth> {
        (target_id == "10.0.0.1").then_some(ObservedTargetHealth {
            state: TargetHealthState::Healthy,
            reason: None,
            description: None,
        })
    }
}

#[tokio::test]
async fn target_health_reports_only_what_is_known() {
    let mut h = Harness::new();
    h.elbv2 =
        Elbv2::new(Arc::new(store::MemoryStore::new())).with_target_health(Arc::new(FixedHealth));
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
    let health = h
        .ok(&format!("Action=DescribeTargetHealth&TargetGroupArn={tg}"))
        .await;
    assert!(health.contains("<Id>10.0.0.1</Id><Port>80</Port></Target><HealthCheckPort>80</HealthCheckPort><TargetHealth><State>healthy</State>"), "{health}");
    assert!(health.contains("<Id>10.0.0.2</Id><Port>81</Port></Target><HealthCheckPort>81</HealthCheckPort><TargetHealth><State>unavailable</State><Reason>Elb.InternalError</Reason>"), "{health}");
    let asked = h
        .ok(&format!(
            "Action=DescribeTargetHealth&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.9"
        ))
        .await;
    assert!(
        asked.contains("<Reason>Target.NotRegistered</Reason>"),
        "{asked}"
    );
    h.ok(&format!("Action=DeregisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.2&Targets.member.1.Port=81")).await;
    h.fails(&format!("Action=DeregisterTargets&TargetGroupArn={tg}&Targets.member.1.Id=10.0.0.2&Targets.member.1.Port=81"), "InvalidTarget").await;
    let after = h
        .ok(&format!("Action=DescribeTargetHealth&TargetGroupArn={tg}"))
        .await;
    assert!(!after.contains("10.0.0.2"), "{after}");
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
    h.fails("Action=CreateRule", "InvalidAction").await;
    h.fails("Action=Bogus", "InvalidAction").await;
    let err = h.call("Action=CreateRule").await.unwrap_err();
    assert_eq!(err.http_status, 400);
    for operation in SUPPORTED_OPERATIONS {
        assert!(elbv2_wire::OPERATIONS.contains(operation), "{operation}");
    }
}
