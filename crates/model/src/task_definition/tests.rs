use serde_json::json;

use super::*;

fn request(value: serde_json::Value) -> RegisterTaskDefinitionRequest {
    serde_json::from_value(value).expect("test request parses")
}

/// Registers `body` and expects it accepted (`None`) or rejected with a
/// message containing `expected_error`.
fn check(body: serde_json::Value, expected_error: Option<&str>) {
    let result = validate_registration(&request(body.clone()));
    match (result, expected_error) {
        (Ok(()), None) => {}
        (Err(err), Some(expected)) => assert!(
            err.message().contains(expected),
            "for {body}\n expected error containing {expected:?}\n got {:?}",
            err.message()
        ),
        (Ok(()), Some(expected)) => {
            panic!("for {body}\n expected error {expected:?}, was accepted")
        }
        (Err(err), None) => panic!("for {body}\n expected success, got {err:?}"),
    }
}

fn web(extra: serde_json::Value) -> serde_json::Value {
    let mut container = json!({"name": "web", "image": "busybox", "memory": 128});
    if let (Some(c), Some(e)) = (container.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    container
}

#[test]
fn minimal_is_accepted() {
    check(
        json!({"family": "app", "containerDefinitions": [web(json!({}))]}),
        None,
    );
}

#[test]
fn family_and_container_names() {
    check(
        json!({"family": "", "containerDefinitions": [web(json!({}))]}),
        Some("Family can not be blank."),
    );
    check(
        json!({"family": "a b", "containerDefinitions": [web(json!({}))]}),
        Some("Family contains invalid characters."),
    );
    check(
        json!({"family": "app", "containerDefinitions": []}),
        Some("Container list cannot be empty."),
    );
    check(
        json!({"family": "app", "containerDefinitions": [web(json!({"name": "bad name"}))]}),
        Some("Container.name contains invalid characters."),
    );
    check(
        json!({"family": "app", "containerDefinitions": [web(json!({"name": ""}))]}),
        Some("Container.name should not be null or empty."),
    );
    check(
        json!({"family": "app", "containerDefinitions": [{"name": "x", "memory": 10}]}),
        Some("Container.image should not be null or empty."),
    );
    check(
        json!({"family": "app", "containerDefinitions": [web(json!({})), web(json!({}))]}),
        Some("Container names must be unique within a Task Definition."),
    );
    let eleven: Vec<_> = (0..11)
        .map(|i| web(json!({"name": format!("c{i}")})))
        .collect();
    check(
        json!({"family": "app", "containerDefinitions": eleven}),
        Some("Too many containers."),
    );
}

#[test]
fn essential_and_memory() {
    check(
        json!({"family": "app", "containerDefinitions": [web(json!({"essential": false}))]}),
        Some("Task definition doesn't have any essential container."),
    );
    check(
        json!({"family": "app", "containerDefinitions": [{"name": "web", "image": "i"}]}),
        Some("At least one of 'memory' or 'memoryReservation' must be specified."),
    );
    check(
        json!({"family": "app", "memory": "512", "containerDefinitions": [{"name": "web", "image": "i"}]}),
        None,
    );
    check(
        json!({"family": "app", "containerDefinitions": [web(json!({"memoryReservation": 256}))]}),
        Some("Must be greater than or equal to 'memoryReservation'"),
    );
    check(
        json!({"family": "app", "containerDefinitions": [web(json!({"memory": 4}))]}),
        Some("The minimum is 6 MiB"),
    );
    check(
        json!({"family": "app", "memory": "100", "containerDefinitions": [web(json!({"memory": 200}))]}),
        Some("The 'memory' setting for container 'web' is greater than for the task."),
    );
}

#[test]
fn task_size() {
    check(
        json!({"family": "app", "cpu": "1 vCPU", "memory": "2 GB", "containerDefinitions": [web(json!({}))]}),
        None,
    );
    check(
        json!({"family": "app", "cpu": "lots", "containerDefinitions": [web(json!({}))]}),
        Some("Invalid 'cpu' setting for task"),
    );
    check(
        json!({"family": "app", "memory": "2 TB", "containerDefinitions": [web(json!({}))]}),
        Some("Invalid 'memory' setting for task"),
    );
    check(
        json!({"family": "app", "cpu": "64", "containerDefinitions": [web(json!({}))]}),
        Some("between 128 and 196608"),
    );
    check(json!({"family": "app", "cpu": "256", "containerDefinitions": [web(json!({"cpu": 512}))]}), Some("The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'."));
}

#[test]
fn fargate_rules() {
    let fargate = |extra: serde_json::Value| {
        let mut base = json!({"family": "app", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "web", "image": "i"}]});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    };
    check(fargate(json!({})), None);
    check(
        fargate(json!({"cpu": null})),
        Some("Fargate requires that 'cpu' be defined at the task level."),
    );
    check(
        fargate(json!({"networkMode": "bridge"})),
        Some("Fargate only supports network mode \u{2018}awsvpc\u{2019}."),
    );
    check(
        fargate(json!({"memory": "4096"})),
        Some("No Fargate configuration exists for given values: 256 CPU, 4096 memory."),
    );
    check(
        fargate(json!({"containerDefinitions": [{"name": "web", "image": "i", "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "us-east-1"}}}]})),
        Some("Fargate requires task definition to have execution role ARN to support log driver awslogs."),
    );
    check(
        fargate(json!({"pidMode": "host"})),
        Some("Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'."),
    );
    check(fargate(json!({"pidMode": "task"})), None);
    // Without FARGATE required, pidMode host is an EC2-only task definition.
    check(
        json!({"family": "a", "pidMode": "host", "containerDefinitions": [web(json!({}))]}),
        None,
    );
}

#[test]
fn pid_mode_host_is_not_fargate_compatible() {
    let fargate_ready = |pid_mode: &str| {
        request(
            json!({"family": "a", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
            "pidMode": pid_mode, "containerDefinitions": [{"name": "web", "image": "i"}]}),
        )
    };
    let compatibilities = |body: &RegisterTaskDefinitionRequest| {
        build_task_definition(
            body,
            &Registration {
                task_definition_arn: "arn:aws:ecs:us-east-1:000000000000:task-definition/a:1",
                revision: 1,
                registered_by: "arn:aws:iam::000000000000:root",
                now_ms: 0,
            },
        )
        .compatibilities
        .unwrap_or_default()
    };
    assert!(compatibilities(&fargate_ready("task")).contains(&Compatibility::Fargate));
    assert!(!compatibilities(&fargate_ready("host")).contains(&Compatibility::Fargate));
}

#[test]
fn ports() {
    let mapping = |m: serde_json::Value| web(json!({"portMappings": [m]}));
    check(json!({"family": "a", "networkMode": "awsvpc", "containerDefinitions": [mapping(json!({"containerPort": 80, "hostPort": 8080}))]}), Some("When networkMode=awsvpc, the host ports and container ports in port mappings must match."));
    check(
        json!({"family": "a", "networkMode": "awsvpc", "containerDefinitions": [mapping(json!({"containerPort": 80}))]}),
        None,
    );
    check(
        json!({"family": "a", "networkMode": "bridge", "containerDefinitions": [mapping(json!({"containerPort": 80, "hostPort": 8080}))]}),
        None,
    );
    check(
        json!({"family": "a", "containerDefinitions": [mapping(json!({"containerPort": 70000}))]}),
        Some("Invalid 'containerPort' setting for container 'web'."),
    );
    check(
        json!({"family": "a", "containerDefinitions": [mapping(json!({"containerPort": 80, "hostPort": 8080})), web(json!({"name": "b", "portMappings": [{"containerPort": 81, "hostPort": 8080}]}))]}),
        Some("TCP host port '8080' is mapped multiple times in task."),
    );
    check(
        json!({"family": "a", "containerDefinitions": [mapping(json!({"containerPortRange": "9000-9010"}))]}),
        None,
    );
    check(
        json!({"family": "a", "containerDefinitions": [mapping(json!({"containerPortRange": "9010-9000"}))]}),
        Some("Invalid containerPortRange"),
    );
}

#[test]
fn references() {
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"dependsOn": [{"containerName": "db", "condition": "START"}]}))]}),
        Some("Cannot depend on container + 'db' because it does not exist"),
    );
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]})), web(json!({"name": "db"}))]}),
        None,
    );
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"dependsOn": [{"containerName": "db", "condition": "START"}]})), web(json!({"name": "db", "dependsOn": [{"containerName": "web", "condition": "START"}]}))]}),
        Some("dependency cycle"),
    );
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"mountPoints": [{"sourceVolume": "data", "containerPath": "/d"}]}))]}),
        Some("Unknown volume 'data'."),
    );
    check(
        json!({"family": "a", "volumes": [{"name": "data", "host": {"sourcePath": "/tmp"}}], "containerDefinitions": [web(json!({"mountPoints": [{"sourceVolume": "data", "containerPath": "/d"}]}))]}),
        None,
    );
    check(
        json!({"family": "a", "volumes": [{"name": "v"}, {"name": "v"}], "containerDefinitions": [web(json!({}))]}),
        Some("Volume names must be unique within a Task Definition"),
    );
    check(
        json!({"family": "a", "networkMode": "awsvpc", "containerDefinitions": [web(json!({"links": ["db"]})), web(json!({"name": "db"}))]}),
        Some("Links are not supported when networkMode=awsvpc."),
    );
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"links": ["db:database"]})), web(json!({"name": "db"}))]}),
        None,
    );
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"volumesFrom": [{"sourceContainer": "nope"}]}))]}),
        Some("'volumesFrom'"),
    );
}

#[test]
fn more_ecs_rules() {
    check(
        json!({"family": "a", "networkMode": "awsvpc", "containerDefinitions": [web(json!({"hostname": "h"}))]}),
        Some("hostname is not supported on container when networkMode=awsvpc."),
    );
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}}))]}),
        Some("Log driver awslogs requires options: awslogs-region"),
    );
    check(
        json!({"family": "a", "tags": [], "containerDefinitions": [web(json!({}))]}),
        Some("Tags can not be empty."),
    );
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]})), web(json!({"name": "init"}))]}),
        Some("A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"),
    );
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]})), web(json!({"name": "init", "essential": false}))]}),
        None,
    );
}

#[test]
fn health_check_ranges() {
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"healthCheck": {"command": ["CMD", "true"], "interval": 2}}))]}),
        Some("interval is 2; it must be between 5 and 300"),
    );
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"healthCheck": {"command": ["CMD", "true"], "retries": 11}}))]}),
        Some("retries"),
    );
    check(
        json!({"family": "a", "containerDefinitions": [web(json!({"healthCheck": {"command": ["CMD", "true"]}}))]}),
        None,
    );
}

#[test]
fn build_fills_defaults_and_derives() {
    let req = request(json!({
        "family": "app", "networkMode": "awsvpc", "cpu": "0.25 vCPU", "memory": "0.5 GB",
        "taskRoleArn": "arn:aws:iam::000000000000:role/t",
        "containerDefinitions": [{"name": "web", "image": "i", "portMappings": [{"containerPort": 80}],
            "healthCheck": {"command": ["CMD", "true"]}}]
    }));
    validate_registration(&req).unwrap();
    let td = build_task_definition(
        &req,
        &Registration {
            task_definition_arn: "arn:aws:ecs:us-east-1:000000000000:task-definition/app:1",
            revision: 1,
            registered_by: "arn:aws:iam::000000000000:root",
            now_ms: 1_700_000_000_123,
        },
    );
    let value = serde_json::to_value(&td).unwrap();
    assert_eq!(value["cpu"], "256");
    assert_eq!(value["memory"], "512");
    assert_eq!(value["revision"], 1);
    assert_eq!(value["status"], "ACTIVE");
    assert_eq!(value["registeredAt"], 1_700_000_000.123);
    assert_eq!(value["compatibilities"], json!(["EC2", "FARGATE"]));
    let c = &value["containerDefinitions"][0];
    assert_eq!(c["essential"], true);
    assert_eq!(c["cpu"], 0);
    assert_eq!(
        c["portMappings"][0],
        json!({"containerPort": 80, "hostPort": 80, "protocol": "tcp"})
    );
    assert_eq!(c["healthCheck"]["interval"], 30);
    let attributes: Vec<&str> = td
        .requires_attributes
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| a.name.as_deref().unwrap())
        .collect();
    assert!(
        attributes.contains(&"ecs.capability.task-eni"),
        "{attributes:?}"
    );
    assert!(
        attributes.contains(&"com.amazonaws.ecs.capability.task-iam-role"),
        "{attributes:?}"
    );
    assert!(
        attributes.contains(&"ecs.capability.container-health-check"),
        "{attributes:?}"
    );
    assert!(value.get("deregisteredAt").is_none());
}

#[test]
fn bridge_definitions_are_also_external() {
    let req = request(json!({"family": "a", "containerDefinitions": [web(json!({}))]}));
    let td = build_task_definition(
        &req,
        &Registration {
            task_definition_arn: "x",
            revision: 1,
            registered_by: "p",
            now_ms: 0,
        },
    );
    assert_eq!(
        td.compatibilities.unwrap(),
        vec![Compatibility::External, Compatibility::Ec2]
    );
}

#[test]
fn references_parse() {
    use TaskDefinitionReference::*;
    assert_eq!(
        TaskDefinitionReference::parse("app").unwrap(),
        Family("app".into())
    );
    assert_eq!(
        TaskDefinitionReference::parse("app:3").unwrap(),
        FamilyRevision("app".into(), 3)
    );
    assert_eq!(
        TaskDefinitionReference::parse("arn:aws:ecs:us-east-1:000000000000:task-definition/app:7")
            .unwrap(),
        FamilyRevision("app".into(), 7)
    );
    for bad in [
        "",
        "app:",
        "app:x",
        "app:0",
        "a b",
        "arn:aws:ecs:us-east-1:0:cluster/x",
    ] {
        assert!(TaskDefinitionReference::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_default_log_driver_mode_fills_in_a_missing_mode() {
    let mut definition: TaskDefinition = serde_json::from_value(json!({"containerDefinitions": [
        {"name": "a", "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}}},
        {"name": "b", "logConfiguration": {"logDriver": "awslogs", "options": {"mode": "blocking"}}},
        {"name": "c", "logConfiguration": {"logDriver": "json-file"}},
        {"name": "d"},
    ]}))
    .unwrap();
    apply_default_log_driver_mode(&mut definition, "non-blocking");
    let modes: Vec<Option<&str>> = definition
        .container_definitions
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| {
            c.log_configuration
                .as_ref()
                .and_then(|l| l.options.as_ref())
                .and_then(|o| o.get("mode"))
                .map(String::as_str)
        })
        .collect();
    assert_eq!(
        modes,
        [
            Some("non-blocking"),
            Some("blocking"),
            Some("non-blocking"),
            None
        ]
    );
}
