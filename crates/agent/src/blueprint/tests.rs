use std::collections::BTreeMap;

use model::task::{DesiredStatus, TaskStatus};
use serde_json::json;

use super::*;

const TASK_ARN: &str =
    "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef";
const INSTANCE_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/ci1";

fn facts() -> AgentFacts {
    AgentFacts {
        container_instance_arn: INSTANCE_ARN.to_string(),
        cpu_architecture: "X86_64".to_string(),
        default_stop_timeout_s: 30,
        registry_credentials: BTreeMap::from([(
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:registry".to_string(),
            RegistryAuth {
                username: "robot".into(),
                password: "hunter2".into(),
            },
        )]),
    }
}

/// A desired task from a task definition (and overrides) written as ECS JSON.
fn task(definition: serde_json::Value, overrides: serde_json::Value) -> DesiredTask {
    let mut definition = definition;
    let object = definition.as_object_mut().unwrap();
    object.entry("family").or_insert(json!("web"));
    object.entry("revision").or_insert(json!(3));
    DesiredTask {
        task_arn: TASK_ARN.to_string(),
        cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/default".to_string(),
        desired_status: DesiredStatus::Running,
        last_status: TaskStatus::Provisioning,
        task_definition: serde_json::from_value(definition).unwrap(),
        overrides: serde_json::from_value(overrides).unwrap(),
        containers: Vec::new(),
        version: 1,
    }
}

fn build(definition: serde_json::Value) -> TaskBlueprint {
    task_blueprint(&task(definition, json!({})), &facts()).unwrap()
}

fn reason(definition: serde_json::Value, overrides: serde_json::Value) -> String {
    task_blueprint(&task(definition, overrides), &facts())
        .unwrap_err()
        .reason
}

#[test]
fn every_container_field_reaches_the_spec() {
    let blueprint = build(json!({
        "networkMode": "bridge",
        "pidMode": "host",
        "ipcMode": "none",
        "containerDefinitions": [{
            "name": "app",
            "image": "berth-test/app:1",
            "cpu": 256,
            "memory": 512,
            "memoryReservation": 128,
            "essential": true,
            "entryPoint": ["/bin/sh", "-c"],
            "command": ["serve"],
            "environment": [{"name": "A", "value": "1"}, {"name": "EMPTY"}],
            "workingDirectory": "/srv",
            "user": "1000:1000",
            "hostname": "app-host",
            "extraHosts": [{"hostname": "db.local", "ipAddress": "10.0.0.5"}],
            "dnsServers": ["10.0.0.2"],
            "dnsSearchDomains": ["corp.local"],
            "dockerLabels": {"team": "core", "com.amazonaws.ecs.task-arn": "spoofed"},
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
            "privileged": true,
            "readonlyRootFilesystem": true,
            "interactive": true,
            "pseudoTerminal": true,
            "dockerSecurityOptions": ["no-new-privileges"],
            "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
            "linuxParameters": {
                "initProcessEnabled": true,
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                "tmpfs": [{"containerPath": "/tmp", "size": 64, "mountOptions": ["noexec"]}],
                "sharedMemorySize": 256,
                "devices": [{"hostPath": "/dev/fuse", "permissions": ["read", "write"]}]
            },
            "portMappings": [
                {"containerPort": 80, "hostPort": 0},
                {"containerPort": 53, "hostPort": 5353, "protocol": "udp"}
            ],
            "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 10, "retries": 2},
            "stopTimeout": 12,
            "startTimeout": 40,
            "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}}
        }]
    }));
    let app = &blueprint.containers[0];
    assert_eq!(
        app.docker_name,
        "ecs-web-3-app-0123456789abcdef0123456789abcdef"
    );
    assert_eq!(app.stop_timeout_s, 12);
    assert_eq!(app.start_timeout_s, Some(40));
    assert!(app.essential);
    let spec = &app.spec;
    let expected = ContainerSpec {
        name: app.docker_name.clone(),
        image: "berth-test/app:1".into(),
        labels: BTreeMap::from([
            ("team".to_string(), "core".to_string()),
            (LABEL_TASK_ARN.to_string(), TASK_ARN.to_string()),
            (
                LABEL_CONTAINER_INSTANCE_ARN.to_string(),
                INSTANCE_ARN.to_string(),
            ),
            (LABEL_CLUSTER.to_string(), "default".to_string()),
            (LABEL_CONTAINER_NAME.to_string(), "app".to_string()),
            (LABEL_TASK_DEFINITION_FAMILY.to_string(), "web".to_string()),
            (LABEL_TASK_DEFINITION_VERSION.to_string(), "3".to_string()),
        ]),
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
        command: Some(vec!["serve".into()]),
        env: vec![("A".into(), "1".into()), ("EMPTY".into(), String::new())],
        working_dir: Some("/srv".into()),
        user: Some("1000:1000".into()),
        hostname: Some("app-host".into()),
        extra_hosts: vec![ExtraHost {
            hostname: "db.local".into(),
            ip_address: "10.0.0.5".into(),
        }],
        dns_servers: vec!["10.0.0.2".into()],
        dns_search_domains: vec!["corp.local".into()],
        ulimits: vec![Ulimit {
            name: "nofile".into(),
            soft_limit: 1024,
            hard_limit: 4096,
        }],
        privileged: true,
        readonly_rootfs: true,
        init: true,
        open_stdin: true,
        tty: true,
        cap_add: vec!["NET_ADMIN".into()],
        cap_drop: vec!["MKNOD".into()],
        tmpfs: vec![Tmpfs {
            container_path: "/tmp".into(),
            size_mib: 64,
            mount_options: vec!["noexec".into()],
        }],
        shm_size_mib: Some(256),
        devices: vec![Device {
            host_path: "/dev/fuse".into(),
            container_path: None,
            permissions: vec![DevicePermission::Read, DevicePermission::Write],
        }],
        sysctls: BTreeMap::from([("net.core.somaxconn".to_string(), "1024".to_string())]),
        security_opt: vec!["no-new-privileges".into()],
        network_mode: runtime::NetworkMode::Bridge,
        port_bindings: vec![
            PortBinding::dynamic_tcp(80),
            PortBinding {
                container_port: 53,
                host_port: Some(5353),
                protocol: Protocol::Udp,
                host_ip: None,
            },
        ],
        cpu_shares: Some(256),
        memory_limit_mib: Some(512),
        memory_reservation_mib: Some(128),
        nano_cpus: None,
        mounts: vec![],
        volumes_from: vec![],
        links: vec![],
        healthcheck: Some(HealthCheck {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval_s: 10,
            timeout_s: 5,
            start_period_s: 0,
            retries: 2,
        }),
        stop_timeout_s: Some(12),
        log_driver: Some(Logging {
            name: "json-file".into(),
            options: BTreeMap::from([("max-size".to_string(), "10m".to_string())]),
        }),
        pid_mode: Some("host".into()),
        ipc_mode: Some("none".into()),
    };
    assert_eq!(*spec, expected);
}

#[test]
fn overrides_and_task_level_limits() {
    let definition = json!({
        "cpu": "1 vCPU",
        "memory": "1GB",
        "containerDefinitions": [
            {"name": "app", "image": "app", "command": ["a"], "cpu": 0,
             "environment": [{"name": "MODE", "value": "def"}, {"name": "KEEP", "value": "k"}]},
            {"name": "side", "image": "side", "memory": 64, "essential": false}
        ]
    });
    let overrides = json!({
        "cpu": "2048",
        "containerOverrides": [{
            "name": "app", "command": ["b", "c"], "cpu": 512, "memory": 300, "memoryReservation": 100,
            "environment": [{"name": "MODE", "value": "override"}]
        }]
    });
    let blueprint = task_blueprint(&task(definition, overrides), &facts()).unwrap();
    let app = &blueprint.containers[0].spec;
    assert_eq!(app.command, Some(vec!["b".to_string(), "c".to_string()]));
    // Later entries win in Docker: the override comes last.
    assert_eq!(
        app.env,
        vec![
            ("MODE".to_string(), "def".to_string()),
            ("KEEP".to_string(), "k".to_string()),
            ("MODE".to_string(), "override".to_string())
        ]
    );
    assert_eq!(
        (
            app.cpu_shares,
            app.memory_limit_mib,
            app.memory_reservation_mib
        ),
        (Some(512), Some(300), Some(100))
    );
    // Task-level cpu (overridden to 2048 units = 2 CPUs) bounds each container.
    assert_eq!(app.nano_cpus, Some(2_000_000_000));
    let side = &blueprint.containers[1];
    assert!(!side.essential);
    // A container without a hard limit is held to the task's memory; cpu
    // unset becomes Docker's minimum share, as on ECS.
    assert_eq!(
        (side.spec.memory_limit_mib, side.spec.cpu_shares),
        (Some(64), Some(2))
    );
    let unlimited =
        build(json!({"memory": "512", "containerDefinitions": [{"name": "a", "image": "a"}]}));
    assert_eq!(unlimited.containers[0].spec.memory_limit_mib, Some(512));
}

#[test]
fn volumes_links_and_implicit_dependencies() {
    let blueprint = build(json!({
        "volumes": [
            {"name": "host", "host": {"sourcePath": "/srv/data"}},
            {"name": "scratch"},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "task", "driver": "local", "labels": {"k": "v"}}},
            {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driverOpts": {"o": "1"}}},
            {"name": "existing", "dockerVolumeConfiguration": {"scope": "shared"}}
        ],
        "containerDefinitions": [
            {"name": "db", "image": "db", "mountPoints": [
                {"sourceVolume": "host", "containerPath": "/data", "readOnly": true},
                {"sourceVolume": "scratch", "containerPath": "/scratch"},
                {"sourceVolume": "cache", "containerPath": "/cache"},
                {"sourceVolume": "shared", "containerPath": "/shared"}
            ]},
            {"name": "app", "image": "app", "links": ["db:database"], "volumesFrom": [{"sourceContainer": "db", "readOnly": true}],
             "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
            {"name": "init", "image": "init", "essential": false}
        ]
    }));
    let suffix = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        blueprint.volumes,
        vec![
            VolumeBlueprint {
                spec: VolumeSpec {
                    name: format!("ecs-web-3-scratch-{suffix}"),
                    ..VolumeSpec::default()
                },
                task_scoped: true,
                create: true,
            },
            VolumeBlueprint {
                spec: VolumeSpec {
                    name: format!("ecs-web-3-cache-{suffix}"),
                    driver: Some("local".into()),
                    labels: BTreeMap::from([("k".to_string(), "v".to_string())]),
                    ..VolumeSpec::default()
                },
                task_scoped: true,
                create: true,
            },
            VolumeBlueprint {
                spec: VolumeSpec {
                    name: "shared".into(),
                    driver_opts: BTreeMap::from([("o".to_string(), "1".to_string())]),
                    ..VolumeSpec::default()
                },
                task_scoped: false,
                create: true,
            },
            VolumeBlueprint {
                spec: VolumeSpec {
                    name: "existing".into(),
                    ..VolumeSpec::default()
                },
                task_scoped: false,
                create: false,
            },
        ]
    );
    let db = blueprint.container("db").unwrap();
    assert_eq!(
        db.spec.mounts,
        vec![
            Mount::Bind {
                source: "/srv/data".into(),
                target: "/data".into(),
                read_only: true
            },
            Mount::Volume {
                name: format!("ecs-web-3-scratch-{suffix}"),
                target: "/scratch".into(),
                read_only: false
            },
            Mount::Volume {
                name: format!("ecs-web-3-cache-{suffix}"),
                target: "/cache".into(),
                read_only: false
            },
            Mount::Volume {
                name: "shared".into(),
                target: "/shared".into(),
                read_only: false
            },
        ]
    );
    assert_eq!(
        labelled_task_volumes(&db.spec.labels),
        blueprint.task_scoped_volume_names().into_iter().collect()
    );
    let app = blueprint.container("app").unwrap();
    assert_eq!(
        app.spec.links,
        vec![Link {
            container_name: format!("ecs-web-3-db-{suffix}"),
            alias: "database".into()
        }]
    );
    assert_eq!(
        app.spec.volumes_from,
        vec![VolumeFrom {
            container: format!("ecs-web-3-db-{suffix}"),
            read_only: true
        }]
    );
    assert_eq!(
        app.depends_on,
        vec![
            Dependency {
                container_name: "init".into(),
                condition: ContainerCondition::Success
            },
            Dependency {
                container_name: "db".into(),
                condition: ContainerCondition::Start
            },
        ]
    );
    assert_eq!(blueprint.start_order(), vec!["db", "init", "app"]);
    assert_eq!(blueprint.dependents_of("db"), vec!["app"]);
    assert!(blueprint.dependents_of("app").is_empty());
}

#[test]
fn network_modes() {
    let mapping =
        json!([{"containerPort": 8080}, {"containerPort": 53, "protocol": "udp", "hostPort": 53}]);
    let host = build(
        json!({"networkMode": "host", "containerDefinitions": [{"name": "a", "image": "a", "portMappings": mapping}]}),
    );
    let a = &host.containers[0];
    assert_eq!(a.spec.network_mode, runtime::NetworkMode::Host);
    assert!(
        a.spec.port_bindings.is_empty(),
        "host networking publishes nothing"
    );
    assert_eq!(
        a.host_mode_bindings,
        vec![
            NetworkBinding {
                bind_ip: "0.0.0.0".into(),
                container_port: 8080,
                host_port: 8080,
                protocol: "tcp".into()
            },
            NetworkBinding {
                bind_ip: "0.0.0.0".into(),
                container_port: 53,
                host_port: 53,
                protocol: "udp".into()
            },
        ]
    );
    let none = build(
        json!({"networkMode": "none", "containerDefinitions": [{"name": "a", "image": "a"}]}),
    );
    assert_eq!(
        none.containers[0].spec.network_mode,
        runtime::NetworkMode::None
    );
    let disabled = build(
        json!({"containerDefinitions": [{"name": "a", "image": "a", "disableNetworking": true}]}),
    );
    assert_eq!(
        disabled.containers[0].spec.network_mode,
        runtime::NetworkMode::None
    );
    let default = build(json!({"containerDefinitions": [{"name": "a", "image": "a"}]}));
    assert_eq!(
        default.containers[0].spec.network_mode,
        runtime::NetworkMode::Bridge
    );
    assert!(default.containers[0].host_mode_bindings.is_empty());
}

#[test]
fn registry_credentials_and_restart_policy() {
    let blueprint = build(json!({"containerDefinitions": [
        {"name": "known", "image": "registry.local/a", "repositoryCredentials":
            {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:000000000000:secret:registry"},
         "restartPolicy": {"enabled": true, "ignoredExitCodes": [0], "restartAttemptPeriod": 60}},
        {"name": "unknown", "image": "registry.local/b", "repositoryCredentials": {"credentialsParameter": "missing"},
         "restartPolicy": {"enabled": false}},
        {"name": "public", "image": "busybox", "restartPolicy": {"enabled": true}}
    ]}));
    assert!(
        matches!(&blueprint.containers[0].registry_credentials, RegistryCredentials::Auth(auth) if auth.username == "robot")
    );
    assert!(
        matches!(&blueprint.containers[1].registry_credentials, RegistryCredentials::Unresolved(reason) if reason.contains("'missing'"))
    );
    assert_eq!(
        blueprint.containers[2].registry_credentials,
        RegistryCredentials::None
    );
    let policy = blueprint.containers[0].restart_policy.clone().unwrap();
    assert_eq!(blueprint.containers[1].restart_policy, None);
    assert_eq!(
        blueprint.containers[2].restart_policy,
        Some(RestartPolicy {
            ignored_exit_codes: vec![],
            attempt_period_s: DEFAULT_RESTART_ATTEMPT_PERIOD_S
        })
    );
    // (exit code, ran for ms) → restart?
    for (exit_code, ran_for_ms, restart) in [
        (1, 60_000, true),
        (1, 59_999, false),
        (0, 600_000, false),
        (137, 61_000, true),
    ] {
        assert_eq!(
            policy.should_restart(exit_code, ran_for_ms),
            restart,
            "exit {exit_code} after {ran_for_ms} ms"
        );
    }
}

#[test]
fn fields_berth_cannot_honour_stop_the_task_with_a_reason() {
    let container = |extra: serde_json::Value| {
        let mut c = json!({"name": "app", "image": "app"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"containerDefinitions": [c]})
    };
    let cases: Vec<(serde_json::Value, serde_json::Value, &str)> = vec![
        (
            json!({"networkMode": "awsvpc", "containerDefinitions": []}),
            json!({}),
            "networkMode 'awsvpc'",
        ),
        (
            json!({"taskRoleArn": "arn:aws:iam::0:role/r", "containerDefinitions": []}),
            json!({}),
            "taskRoleArn",
        ),
        (
            json!({"containerDefinitions": []}),
            json!({"taskRoleArn": "arn:aws:iam::0:role/r"}),
            "taskRoleArn",
        ),
        (
            json!({"pidMode": "task", "containerDefinitions": []}),
            json!({}),
            "pidMode 'task'",
        ),
        (
            json!({"ipcMode": "task", "containerDefinitions": []}),
            json!({}),
            "ipcMode 'task'",
        ),
        (
            json!({"proxyConfiguration": {"containerName": "envoy"}, "containerDefinitions": []}),
            json!({}),
            "proxyConfiguration",
        ),
        (
            json!({"runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2019_FULL"}, "containerDefinitions": []}),
            json!({}),
            "operatingSystemFamily",
        ),
        (
            json!({"runtimePlatform": {"cpuArchitecture": "ARM64"}, "containerDefinitions": []}),
            json!({}),
            "cpuArchitecture 'ARM64'",
        ),
        (
            json!({"volumes": [{"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}], "containerDefinitions": []}),
            json!({}),
            "EFS volume 'efs'",
        ),
        (
            json!({"volumes": [{"name": "v", "dockerVolumeConfiguration": {"scope": "task", "autoprovision": true}}], "containerDefinitions": []}),
            json!({}),
            "autoprovision",
        ),
        (
            json!({"ephemeralStorage": {"sizeInGiB": 30}, "containerDefinitions": []}),
            json!({}),
            "ephemeralStorage",
        ),
        (
            container(json!({"secrets": [{"name": "S", "valueFrom": "arn:aws:ssm:x"}]})),
            json!({}),
            "secrets",
        ),
        (
            container(
                json!({"environmentFiles": [{"value": "arn:aws:s3:::b/f.env", "type": "s3"}]}),
            ),
            json!({}),
            "environmentFiles",
        ),
        (
            container(json!({"logConfiguration": {"logDriver": "splunk", "options": {}}})),
            json!({}),
            "logDriver 'splunk' in container 'app' is not supported by Berth yet; use 'awslogs' or 'json-file'",
        ),
        (
            container(json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-region": "us-east-1"}}})),
            json!({}),
            "CannotCreateContainerError: Error response from daemon: must specify a value for log opt 'awslogs-group' (logConfiguration of container 'app')",
        ),
        (
            container(json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "us-east-1", "awslogs-foo": "1"}}})),
            json!({}),
            "Error response from daemon: unknown log opt 'awslogs-foo' for awslogs log driver",
        ),
        (
            container(json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "us-east-1", "awslogs-endpoint": "http://x"}}})),
            json!({}),
            "UnsupportedFeature: log option 'awslogs-endpoint'",
        ),
        (
            container(
                json!({"logConfiguration": {"logDriver": "json-file", "secretOptions": [{"name": "a", "valueFrom": "b"}]}}),
            ),
            json!({}),
            "secretOptions",
        ),
        (
            container(json!({"resourceRequirements": [{"type": "GPU", "value": "1"}]})),
            json!({}),
            "resourceRequirements",
        ),
        (
            container(json!({"firelensConfiguration": {"type": "fluentbit"}})),
            json!({}),
            "firelensConfiguration",
        ),
        (
            container(json!({"linuxParameters": {"maxSwap": 100}})),
            json!({}),
            "maxSwap",
        ),
        (
            container(json!({"linuxParameters": {"swappiness": 10}})),
            json!({}),
            "swappiness",
        ),
        (
            container(json!({"portMappings": [{"containerPortRange": "8000-8010"}]})),
            json!({}),
            "containerPortRange",
        ),
        (
            container(json!({"mountPoints": [{"sourceVolume": "nope", "containerPath": "/x"}]})),
            json!({}),
            "Unknown volume 'nope'.",
        ),
        (
            container(json!({"links": ["ghost"]})),
            json!({}),
            "no container 'ghost'",
        ),
        (
            container(json!({})),
            json!({"containerOverrides": [{"name": "app", "environmentFiles": [{"value": "x", "type": "s3"}]}]}),
            "environmentFiles",
        ),
    ];
    for (definition, overrides, expected) in cases {
        let reason = reason(definition.clone(), overrides);
        assert!(reason.contains(expected), "{definition}: {reason}");
    }
    // The same check, usable at RunTask.
    let definition: TaskDefinition =
        serde_json::from_value(json!({"containerDefinitions": [{"name": "a", "image": "a", "secrets": [{"name": "S", "valueFrom": "x"}]}]})).unwrap();
    assert!(unsupported_feature(&definition, &TaskOverride::default()).is_some());
    assert_eq!(
        unsupported_feature(&TaskDefinition::default(), &TaskOverride::default()),
        None
    );
}

#[test]
fn names_are_docker_safe() {
    assert_eq!(
        docker_container_name("my_app", 12, "web-1", "arn:aws:ecs:r:a:task/c/abc"),
        "ecs-my_app-12-web-1-abc"
    );
    assert_eq!(task_id("arn:aws:ecs:r:a:task/cluster/abc"), "abc");
    assert_eq!(task_id("arn:aws:ecs:r:a:task/abc"), "abc");
    assert_eq!(cluster_name("arn:aws:ecs:us-east-1:0:cluster/prod"), "prod");
    assert_eq!(cluster_name("prod"), "prod");
}

#[test]
fn a_container_without_a_name_stops_the_task_instead_of_panicking() {
    // Found by fuzz/fuzz_targets/agent_session.rs: a desired task whose
    // second container definition had no "name" made the reconciler index
    // the Docker names by "" and panic, taking the agent down.
    let definition = json!({"containerDefinitions": [
        {"name": "web", "image": "busybox", "memory": 64},
        {"image": "busybox", "memory": 32, "essential": false}
    ]});
    assert_eq!(
        reason(definition, json!({})),
        "Invalid task definition: a container definition has no name; register the task \
         definition again with a name for every container."
    );
}

#[test]
fn containers_with_the_same_name_stop_the_task_instead_of_hanging() {
    // Found by fuzz/fuzz_targets/agent_session.rs: two container
    // definitions named "init" made `start_order` loop forever (its names
    // never covered every container), hanging the agent's reconciler.
    let definition = json!({"containerDefinitions": [
        {"name": "web", "image": "busybox", "memory": 64,
         "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
        {"name": "init", "image": "busybox", "memory": 32, "essential": false},
        {"name": "init", "image": "busybox", "memory": 32, "essential": false}
    ]});
    assert_eq!(
        reason(definition, json!({})),
        "Invalid task definition: more than one container definition is named 'init'; \
         register the task definition again with a unique name for every container."
    );
}

#[test]
fn awslogs_containers_log_with_json_file_and_carry_their_options() {
    let options = json!({
        "awslogs-group": "/ecs/web",
        "awslogs-region": "eu-west-1",
        "awslogs-stream-prefix": "ecs",
        "awslogs-datetime-format": "%Y-%m-%d",
        "mode": "non-blocking",
        "max-buffer-size": "25m",
    });
    let blueprint = build(json!({"containerDefinitions": [{
        "name": "app",
        "image": "app",
        "logConfiguration": {"logDriver": "awslogs", "options": options.clone()},
    }]}));
    let container = &blueprint.containers[0];
    assert_eq!(
        container.spec.log_driver,
        Some(Logging {
            name: "json-file".into(),
            options: BTreeMap::new()
        })
    );
    let config = container.awslogs.as_ref().expect("awslogs settings");
    assert_eq!(config.group, "/ecs/web");
    assert_eq!(config.region, "eu-west-1");
    assert_eq!(config.stream_prefix.as_deref(), Some("ecs"));
    assert_eq!(
        config.mode,
        crate::awslogs::DeliveryMode::NonBlocking {
            max_buffer_size_bytes: 25 << 20
        }
    );
    assert!(config.multiline_pattern.is_some());
    let label: serde_json::Value =
        serde_json::from_str(&container.spec.labels[LABEL_AWSLOGS_OPTIONS]).unwrap();
    assert_eq!(label, options);

    let plain = build(json!({"containerDefinitions": [{"name": "app", "image": "app"}]}));
    assert_eq!(plain.containers[0].awslogs, None);
    assert!(!plain.containers[0]
        .spec
        .labels
        .contains_key(LABEL_AWSLOGS_OPTIONS));
}
