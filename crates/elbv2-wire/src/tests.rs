use super::*;

fn decode<R: Request>(body: &str) -> Result<R, String> {
    R::decode(&Form::parse(body.as_bytes()))
}

#[test]
fn create_load_balancer_decodes_lists_and_nested_structures() {
    let request: CreateLoadBalancerInput = decode(
        "Action=CreateLoadBalancer&Version=2015-12-01&Name=web&Subnets.member.1=subnet-a\
         &Subnets.member.2=subnet-b&Scheme=internal&Tags.member.1.Key=team\
         &Tags.member.1.Value=blue&Type=application",
    )
    .unwrap();
    assert_eq!(request.name.as_deref(), Some("web"));
    assert_eq!(
        request.subnets,
        Some(vec!["subnet-a".to_string(), "subnet-b".to_string()])
    );
    assert_eq!(request.scheme.as_deref(), Some("internal"));
    assert_eq!(
        request.tags,
        Some(vec![Tag {
            key: Some("team".into()),
            value: Some("blue".into())
        }])
    );
    assert_eq!(request.security_groups, None);
    assert_eq!(request.type_.as_deref(), Some("application"));
}

#[test]
fn an_empty_list_is_sent_as_an_empty_value() {
    let request: SetSecurityGroupsInput = decode("LoadBalancerArn=arn&SecurityGroups=").unwrap();
    assert_eq!(request.security_groups, Some(vec![]));
}

#[test]
fn deeply_nested_lists_of_structures_decode() {
    let request: CreateListenerInput = decode(
        "LoadBalancerArn=lb&Port=80&Protocol=HTTP&DefaultActions.member.1.Type=forward\
         &DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=tg1\
         &DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight=3\
         &DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn=tg2",
    )
    .unwrap();
    assert_eq!(request.port, Some(80));
    let actions = request.default_actions.unwrap();
    assert_eq!(actions.len(), 1);
    let groups = actions[0]
        .forward_config
        .as_ref()
        .unwrap()
        .target_groups
        .as_ref()
        .unwrap();
    assert_eq!(
        groups,
        &vec![
            TargetGroupTuple {
                target_group_arn: Some("tg1".into()),
                weight: Some(3)
            },
            TargetGroupTuple {
                target_group_arn: Some("tg2".into()),
                weight: None
            },
        ]
    );
}

#[test]
fn violations_use_aws_wording() {
    let check = |body: &str, expected: &str| {
        assert_eq!(
            decode::<CreateListenerInput>(body).unwrap_err(),
            expected,
            "{body}"
        );
    };
    check(
        "LoadBalancerArn=lb&DefaultActions.member.1.TargetGroupArn=tg",
        "1 validation error detected: Value null at 'defaultActions.1.member.type' failed to \
         satisfy constraint: Member must not be null",
    );
    check(
        "DefaultActions=&Port=0&Protocol=FTP",
        "3 validation errors detected: Value null at 'loadBalancerArn' failed to satisfy \
         constraint: Member must not be null; Value 'FTP' at 'protocol' failed to satisfy \
         constraint: Member must satisfy enum value set: [HTTP, HTTPS, TCP, TLS, UDP, TCP_UDP, \
         GENEVE, QUIC, TCP_QUIC]; Value '0' at 'port' failed to satisfy constraint: Member must \
         have value greater than or equal to 1",
    );
    check(
        "LoadBalancerArn=lb&DefaultActions=&Port=eighty",
        "1 validation error detected: Value 'eighty' at 'port' failed to satisfy constraint: \
         Member must be an integer",
    );
}

#[test]
fn booleans_and_string_lengths_are_checked() {
    let request: ModifyTargetGroupInput =
        decode("TargetGroupArn=tg&HealthCheckEnabled=true&HealthCheckPath=/up").unwrap();
    assert_eq!(request.health_check_enabled, Some(true));
    assert_eq!(
        decode::<ModifyTargetGroupInput>("TargetGroupArn=tg&HealthCheckEnabled=yes").unwrap_err(),
        "1 validation error detected: Value 'yes' at 'healthCheckEnabled' failed to satisfy \
         constraint: Member must be true or false"
    );
    assert_eq!(
        decode::<ModifyTargetGroupInput>("TargetGroupArn=tg&HealthCheckPath=").unwrap_err(),
        "1 validation error detected: Value '' at 'healthCheckPath' failed to satisfy \
         constraint: Member must have length greater than or equal to 1"
    );
}

#[test]
fn responses_are_query_xml_documents() {
    let output = DescribeLoadBalancersOutput {
        load_balancers: Some(vec![LoadBalancer {
            load_balancer_name: Some("a&b".into()),
            created_time: Some(1_700_000_000_123),
            security_groups: Some(vec![]),
            availability_zones: Some(vec![AvailabilityZone {
                zone_name: Some("us-east-1a".into()),
                ..Default::default()
            }]),
            state: Some(LoadBalancerState {
                code: Some("active".into()),
                reason: None,
            }),
            ..Default::default()
        }]),
        next_marker: None,
    };
    assert_eq!(
        String::from_utf8(output.to_xml_document("req-1")).unwrap(),
        "<DescribeLoadBalancersResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/\
         2015-12-01/\"><DescribeLoadBalancersResult><LoadBalancers><member>\
         <CreatedTime>2023-11-14T22:13:20.123Z</CreatedTime><LoadBalancerName>a&amp;b\
         </LoadBalancerName><State><Code>active</Code></State><AvailabilityZones><member>\
         <ZoneName>us-east-1a</ZoneName></member></AvailabilityZones><SecurityGroups>\
         </SecurityGroups></member></LoadBalancers></DescribeLoadBalancersResult>\
         <ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>\
         </DescribeLoadBalancersResponse>"
    );
    let deleted = DeleteLoadBalancerOutput {};
    assert!(String::from_utf8(deleted.to_xml_document("r"))
        .unwrap()
        .contains("<DeleteLoadBalancerResult></DeleteLoadBalancerResult>"));
}

#[test]
fn booleans_serialize_as_words() {
    let output = ModifyTargetGroupOutput {
        target_groups: Some(vec![TargetGroup {
            health_check_enabled: Some(false),
            port: Some(8080),
            ..Default::default()
        }]),
    };
    let xml = String::from_utf8(output.to_xml_document("r")).unwrap();
    assert!(xml.contains("<Port>8080</Port>"), "{xml}");
    assert!(
        xml.contains("<HealthCheckEnabled>false</HealthCheckEnabled>"),
        "{xml}"
    );
}

#[test]
fn iso8601_handles_the_epoch_and_leap_days() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999Z");
}

#[test]
fn errors_and_operations_come_from_the_model() {
    assert_eq!(error_http_status("LoadBalancerNotFound"), 400);
    assert_eq!(error_http_status("HealthUnavailable"), 500);
    assert!(OPERATIONS.contains(&"CreateLoadBalancer"));
    assert!(ERRORS.windows(2).all(|pair| pair[0].0 < pair[1].0));
}

#[test]
fn shapes_round_trip_through_json_records() {
    let action = Action {
        type_: Some("fixed-response".into()),
        fixed_response_config: Some(FixedResponseActionConfig {
            status_code: Some("503".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let json = serde_json::to_string(&action).unwrap();
    assert_eq!(
        json,
        r#"{"Type":"fixed-response","FixedResponseConfig":{"StatusCode":"503"}}"#
    );
    assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), action);
}
