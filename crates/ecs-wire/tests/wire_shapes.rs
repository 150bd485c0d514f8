//! The generated ECS wire shapes: JSON round trips, omission of absent members, enum rejection
//! and the operation table.

use ecs_wire::{
    find_operation, CPUArchitecture, Compatibility, ContainerCondition, ContainerDefinition,
    LogDriver, NetworkMode, OSFamily, ProxyConfigurationType, RegisterTaskDefinitionRequest, Scope,
    TransportProtocol, UlimitName, UnknownEnumValue, OPERATIONS,
};
use serde_json::{json, Value};

/// Parses `wire` as `T`, checks it serializes back to an equal JSON value, and returns it.
fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(wire: Value) -> T {
    let parsed: T = serde_json::from_value(wire.clone()).expect("wire JSON parses");
    let back = serde_json::to_value(&parsed).expect("wire types serialize");
    assert_eq!(back, wire);
    parsed
}

fn register_task_definition_json() -> Value {
    json!({
        "family": "web",
        "taskRoleArn": "arn:aws:iam::123456789012:role/web-task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["EC2", "FARGATE"],
        "cpu": "512",
        "memory": "1024",
        "pidMode": "task",
        "ipcMode": "none",
        "containerDefinitions": [
            {
                "name": "app",
                "image": "public.ecr.aws/nginx/nginx:1.27",
                "cpu": 256,
                "memory": 512,
                "memoryReservation": 256,
                "essential": true,
                "entryPoint": ["/docker-entrypoint.sh"],
                "command": ["nginx", "-g", "daemon off;"],
                "environment": [{"name": "MODE", "value": "production"}],
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/db"}],
                "portMappings": [
                    {"containerPort": 80, "hostPort": 80, "protocol": "tcp", "name": "http", "appProtocol": "http"},
                    {"containerPortRange": "9000-9010", "protocol": "udp"}
                ],
                "linuxParameters": {
                    "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                    "devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse", "permissions": ["read", "write"]}],
                    "initProcessEnabled": true,
                    "sharedMemorySize": 64,
                    "tmpfs": [{"containerPath": "/scratch", "size": 128, "mountOptions": ["noexec"]}],
                    "maxSwap": 0,
                    "swappiness": 60
                },
                "healthCheck": {
                    "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                    "interval": 30,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 10
                },
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app"},
                    "secretOptions": [{"name": "token", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:t"}]
                },
                "dependsOn": [
                    {"containerName": "envoy", "condition": "HEALTHY"},
                    {"containerName": "init", "condition": "SUCCESS"}
                ],
                "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
                "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": false}],
                "dockerLabels": {"com.example.team": "web"},
                "stopTimeout": 30
            },
            {"name": "envoy", "image": "envoyproxy/envoy:v1.31", "essential": true, "user": "1337"},
            {"name": "init", "image": "busybox", "essential": false}
        ],
        "volumes": [
            {"name": "data", "host": {"sourcePath": "/var/lib/web"}},
            {
                "name": "cache",
                "dockerVolumeConfiguration": {
                    "scope": "shared",
                    "autoprovision": true,
                    "driver": "local",
                    "driverOpts": {"type": "tmpfs", "device": "tmpfs"},
                    "labels": {"purpose": "cache"}
                }
            }
        ],
        "tags": [{"key": "team", "value": "web"}, {"key": "env", "value": "prod"}],
        "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        "proxyConfiguration": {
            "type": "APPMESH",
            "containerName": "envoy",
            "properties": [{"name": "ProxyIngressPort", "value": "15000"}]
        }
    })
}

#[test]
fn register_task_definition_request_round_trips_with_typed_members() {
    let request: RegisterTaskDefinitionRequest = round_trip(register_task_definition_json());

    assert_eq!(request.family.as_deref(), Some("web"));
    assert_eq!(request.network_mode, Some(NetworkMode::Awsvpc));
    assert_eq!(
        request.requires_compatibilities,
        Some(vec![Compatibility::Ec2, Compatibility::Fargate])
    );
    let containers = request.container_definitions.as_deref().unwrap_or_default();
    assert_eq!(containers.len(), 3);
    let app = &containers[0];
    let ports = app.port_mappings.as_deref().unwrap_or_default();
    assert_eq!(ports[0].container_port, Some(80));
    assert_eq!(ports[1].protocol, Some(TransportProtocol::Udp));
    let linux = app
        .linux_parameters
        .as_ref()
        .expect("linuxParameters parsed");
    assert_eq!(
        linux.tmpfs.as_ref().map(|tmpfs| tmpfs[0].size),
        Some(Some(128))
    );
    assert_eq!(
        app.health_check.as_ref().and_then(|check| check.retries),
        Some(3)
    );
    let log = app
        .log_configuration
        .as_ref()
        .expect("logConfiguration parsed");
    assert_eq!(log.log_driver, Some(LogDriver::Awslogs));
    assert_eq!(
        log.options
            .as_ref()
            .and_then(|options| options.get("awslogs-group"))
            .map(String::as_str),
        Some("/ecs/web")
    );
    let depends_on = app.depends_on.as_deref().unwrap_or_default();
    assert_eq!(depends_on[0].condition, Some(ContainerCondition::Healthy));
    let ulimits = app.ulimits.as_deref().unwrap_or_default();
    assert_eq!(ulimits[0].name, Some(UlimitName::Nofile));
    let volumes = request.volumes.as_deref().unwrap_or_default();
    assert_eq!(
        volumes[0]
            .host
            .as_ref()
            .and_then(|host| host.source_path.as_deref()),
        Some("/var/lib/web")
    );
    assert_eq!(
        volumes[1]
            .docker_volume_configuration
            .as_ref()
            .and_then(|docker| docker.scope),
        Some(Scope::Shared)
    );
    let platform = request
        .runtime_platform
        .as_ref()
        .expect("runtimePlatform parsed");
    assert_eq!(platform.cpu_architecture, Some(CPUArchitecture::Arm64));
    assert_eq!(platform.operating_system_family, Some(OSFamily::Linux));
    let proxy = request
        .proxy_configuration
        .as_ref()
        .expect("proxyConfiguration parsed");
    assert_eq!(proxy.type_, Some(ProxyConfigurationType::Appmesh));
    assert_eq!(request.tags.as_ref().map(Vec::len), Some(2));
}

#[test]
fn absent_members_are_omitted_not_null() {
    assert_eq!(
        serde_json::to_string(&ContainerDefinition::default()).unwrap(),
        "{}"
    );
    let container = ContainerDefinition {
        name: Some("app".to_owned()),
        essential: Some(false),
        ..ContainerDefinition::default()
    };
    assert_eq!(
        serde_json::to_string(&container).unwrap(),
        r#"{"name":"app","essential":false}"#
    );
}

#[test]
fn null_and_unknown_members_parse_as_absent() {
    let parsed: ContainerDefinition =
        serde_json::from_value(json!({"name": "app", "image": null, "notAMember": {"x": 1}}))
            .expect("null and unknown members are accepted");
    assert_eq!(
        parsed,
        ContainerDefinition {
            name: Some("app".to_owned()),
            ..ContainerDefinition::default()
        }
    );
}

#[test]
fn unknown_enum_value_is_rejected_with_the_allowed_values() {
    let error = serde_json::from_value::<RegisterTaskDefinitionRequest>(json!({
        "family": "web",
        "networkMode": "bridged"
    }))
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown variant `bridged`, expected one of `bridge`, `host`, `awsvpc`, `none`"
    );

    let error = "bridged".parse::<NetworkMode>().unwrap_err();
    assert_eq!(
        error,
        UnknownEnumValue {
            enum_name: "NetworkMode",
            value: "bridged".to_owned()
        }
    );
    assert_eq!(
        error.to_string(),
        r#""bridged" is not a valid NetworkMode value"#
    );
}

#[test]
fn enum_values_are_exact_in_every_direction() {
    // Values that need sanitizing into identifiers keep their exact wire form.
    let cases = [
        (LogDriver::JsonFile, "json-file"),
        (LogDriver::Awsfirelens, "awsfirelens"),
    ];
    for (variant, wire) in cases {
        assert_eq!(variant.as_str(), wire);
        assert_eq!(variant.to_string(), wire);
        assert_eq!(wire.parse::<LogDriver>(), Ok(variant));
        assert_eq!(serde_json::to_value(variant).unwrap(), json!(wire));
    }
    assert_eq!(CPUArchitecture::X86_64.as_str(), "X86_64");
    assert_eq!(
        OSFamily::WindowsServer2019Full.as_str(),
        "WINDOWS_SERVER_2019_FULL"
    );
    for mode in NetworkMode::ALL {
        assert_eq!(mode.as_str().parse::<NetworkMode>(), Ok(*mode));
        let parsed: NetworkMode = serde_json::from_value(json!(mode.as_str())).unwrap();
        assert_eq!(parsed, *mode);
    }
    assert_eq!(NetworkMode::ALL.len(), 4);
}

#[test]
fn operations_list_register_task_definition_with_its_errors() {
    let operation = find_operation("RegisterTaskDefinition").expect("operation is listed");
    assert_eq!(operation.name, "RegisterTaskDefinition");
    assert_eq!(operation.input, Some("RegisterTaskDefinitionRequest"));
    assert_eq!(operation.output, Some("RegisterTaskDefinitionResponse"));
    assert_eq!(
        operation.errors,
        [
            "AccessDeniedException",
            "LimitExceededException",
            "ServerException",
            "InvalidParameterException",
            "ClientException",
        ]
    );
    assert!(find_operation("RegisterTaskDefinitions").is_none());
    assert!(
        OPERATIONS
            .windows(2)
            .all(|pair| pair[0].name < pair[1].name),
        "OPERATIONS is sorted, as find_operation's binary search needs"
    );
    for name in [
        "CreateCluster",
        "RunTask",
        "CreateService",
        "DescribeTasks",
        "ListTagsForResource",
    ] {
        assert!(find_operation(name).is_some(), "{name} is listed");
    }
}

#[test]
fn required_members_and_metadata_come_from_the_model() {
    assert_eq!(
        RegisterTaskDefinitionRequest::REQUIRED,
        ["family", "containerDefinitions"]
    );
    assert!(ContainerDefinition::REQUIRED.is_empty());
    assert_eq!(
        ecs_wire::TARGET_PREFIX,
        "AmazonEC2ContainerServiceV20141113"
    );
    assert_eq!(ecs_wire::SIGNING_NAME, "ecs");
    assert_eq!(ecs_wire::API_VERSION, "2014-11-13");
    assert_eq!(ecs_wire::JSON_VERSION, "1.1");
}
