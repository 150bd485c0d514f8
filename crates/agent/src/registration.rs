//! `RegisterContainerInstance` as the ECS agent sends it: resources,
//! version info, and the attributes placement matches task definitions'
//! `requiresAttributes` against. Pure.

use std::collections::BTreeSet;

use ecs_wire::{Attribute, RegisterContainerInstanceRequest, Resource, VersionInfo};
use model::container_instance::ALWAYS_RESERVED_TCP_PORTS;
use runtime::RuntimeInfo;

/// The oldest Docker remote API version ECS capabilities name.
const OLDEST_ADVERTISED_DOCKER_API_MINOR: u32 = 17;

/// Capabilities this agent honours whatever the daemon (beyond the Docker
/// remote API versions and registry authentication).
pub const CAPABILITIES: [&str; 8] = [
    "com.amazonaws.ecs.capability.logging-driver.json-file",
    // awslogs is delivered by the agent itself (`log_shipper`), with the
    // agent's credentials whether or not the task has an execution role.
    "com.amazonaws.ecs.capability.logging-driver.awslogs",
    "ecs.capability.execution-role-awslogs",
    "com.amazonaws.ecs.capability.privileged-container",
    "ecs.capability.container-health-check",
    "ecs.capability.container-ordering",
    "ecs.capability.docker-plugin.local",
    "ecs.capability.container-restart-policy",
];

/// Attribute for tasks whose containers use `repositoryCredentials`.
pub const PRIVATE_REGISTRY_CAPABILITY: &str =
    "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager";

/// Attribute for task-level cpu/memory on EC2.
pub const TASK_LIMITS_CAPABILITY: &str = "ecs.capability.task-cpu-mem-limit";
pub use model::container_instance::HOST_ADDRESS_ATTRIBUTE;

/// What the registration is built from.
#[derive(Clone, Debug)]
pub struct RegistrationInput<'a> {
    pub cluster: &'a str,
    /// From the state file, so a restarted agent keeps its identity.
    pub container_instance_arn: Option<&'a str>,
    pub runtime: &'a RuntimeInfo,
    pub availability_zone: &'a str,
    pub instance_type: Option<&'a str>,
    /// Where the host ports of this machine's tasks are reached.
    pub host_address: Option<std::net::IpAddr>,
    /// `--attribute` values: name, optional value.
    pub user_attributes: &'a [(String, Option<String>)],
    /// Memory kept back for the host and the agent.
    pub reserved_memory_mib: u64,
    /// Ports reserved besides ECS's always-reserved ones (e.g. the control
    /// plane's when it runs on this machine).
    pub reserved_tcp_ports: &'a [u16],
    /// The agent holds registry credentials for `repositoryCredentials`.
    pub registry_credentials_available: bool,
    pub agent_version: &'a str,
    pub agent_hash: &'a str,
}

/// ECS `ecs.cpu-architecture` for Docker's architecture word.
pub fn cpu_architecture_attribute(docker_arch: &str) -> &'static str {
    match docker_arch {
        "aarch64" | "arm64" => "arm64",
        _ => "x86_64",
    }
}

/// ECS `runtimePlatform.cpuArchitecture` for Docker's architecture word.
pub fn runtime_platform_architecture(docker_arch: &str) -> &'static str {
    match docker_arch {
        "aarch64" | "arm64" => "ARM64",
        _ => "X86_64",
    }
}

/// `com.amazonaws.ecs.capability.docker-remote-api.1.17` up to the daemon's
/// API version.
pub fn docker_api_capabilities(api_version: &str) -> Vec<String> {
    let newest_minor = api_version
        .strip_prefix("1.")
        .and_then(|minor| minor.parse::<u32>().ok())
        .unwrap_or(OLDEST_ADVERTISED_DOCKER_API_MINOR);
    (OLDEST_ADVERTISED_DOCKER_API_MINOR..=newest_minor)
        .map(|minor| format!("com.amazonaws.ecs.capability.docker-remote-api.1.{minor}"))
        .collect()
}

fn attribute(name: &str, value: Option<&str>) -> Attribute {
    Attribute {
        name: Some(name.to_string()),
        value: value.map(str::to_string),
        ..Default::default()
    }
}

fn integer_resource(name: &str, value: i64) -> Resource {
    Resource {
        name: Some(name.to_string()),
        type_: Some("INTEGER".to_string()),
        integer_value: Some(i32::try_from(value).unwrap_or(i32::MAX)),
        ..Default::default()
    }
}

fn ports_resource(name: &str, ports: &BTreeSet<u16>) -> Resource {
    Resource {
        name: Some(name.to_string()),
        type_: Some("STRINGSET".to_string()),
        string_set_value: Some(ports.iter().map(u16::to_string).collect()),
        ..Default::default()
    }
}

/// Memory offered to tasks: the host's memory in MiB less the reserve.
pub fn registered_memory_mib(memory_bytes: u64, reserved_memory_mib: u64) -> i64 {
    let total_mib = memory_bytes / (1024 * 1024);
    i64::try_from(total_mib.saturating_sub(reserved_memory_mib)).unwrap_or(i64::MAX)
}

pub fn registration_request(input: &RegistrationInput<'_>) -> RegisterContainerInstanceRequest {
    let tcp_ports: BTreeSet<u16> = ALWAYS_RESERVED_TCP_PORTS
        .iter()
        .chain(input.reserved_tcp_ports)
        .copied()
        .collect();
    let mut attributes = vec![
        attribute("ecs.os-type", Some("linux")),
        attribute("ecs.os-family", Some("LINUX")),
        attribute(
            "ecs.cpu-architecture",
            Some(cpu_architecture_attribute(&input.runtime.arch)),
        ),
        attribute("ecs.availability-zone", Some(input.availability_zone)),
    ];
    if let Some(instance_type) = input.instance_type {
        attributes.push(attribute("ecs.instance-type", Some(instance_type)));
    }
    if let Some(address) = input.host_address {
        attributes.push(attribute(
            HOST_ADDRESS_ATTRIBUTE,
            Some(&address.to_string()),
        ));
    }
    let mut capabilities = docker_api_capabilities(&input.runtime.api_version);
    capabilities.extend(CAPABILITIES.iter().map(|c| c.to_string()));
    capabilities.push(TASK_LIMITS_CAPABILITY.to_string());
    if input.registry_credentials_available {
        capabilities.push(PRIVATE_REGISTRY_CAPABILITY.to_string());
    }
    attributes.extend(capabilities.iter().map(|c| attribute(c, None)));
    attributes.extend(
        input
            .user_attributes
            .iter()
            .map(|(name, value)| attribute(name, value.as_deref())),
    );
    RegisterContainerInstanceRequest {
        cluster: Some(input.cluster.to_string()),
        total_resources: Some(vec![
            integer_resource("CPU", i64::from(input.runtime.cpus) * 1024),
            integer_resource(
                "MEMORY",
                registered_memory_mib(input.runtime.memory_bytes, input.reserved_memory_mib),
            ),
            ports_resource("PORTS", &tcp_ports),
            ports_resource("PORTS_UDP", &BTreeSet::new()),
        ]),
        version_info: Some(VersionInfo {
            agent_version: Some(input.agent_version.to_string()),
            agent_hash: Some(input.agent_hash.to_string()),
            docker_version: Some(format!("DockerVersion: {}", input.runtime.server_version)),
        }),
        container_instance_arn: input.container_instance_arn.map(str::to_string),
        attributes: Some(attributes),
        ..Default::default()
    }
}

/// Parses `--attribute` values: `name=value` or a bare `name`.
pub fn parse_attribute(text: &str) -> Result<(String, Option<String>), String> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name.trim(), Some(value.trim().to_string())),
        None => (text.trim(), None),
    };
    if name.is_empty() {
        return Err(format!(
            "attribute {text:?} has no name: write name=value or name"
        ));
    }
    Ok((name.to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RuntimeInfo {
        RuntimeInfo {
            server_version: "20.10.24".into(),
            api_version: "1.41".into(),
            os: "linux".into(),
            arch: "aarch64".into(),
            cpus: 4,
            memory_bytes: 8 * 1024 * 1024 * 1024,
        }
    }

    #[test]
    fn registration_is_what_ecs_agents_send() {
        let runtime = info();
        let user = vec![
            ("stack".to_string(), Some("prod".to_string())),
            ("gpu-less".to_string(), None),
        ];
        let request = registration_request(&RegistrationInput {
            cluster: "default",
            container_instance_arn: Some(
                "arn:aws:ecs:us-east-1:000000000000:container-instance/default/abc",
            ),
            runtime: &runtime,
            availability_zone: "local-1a",
            instance_type: Some("m5.large"),
            host_address: Some("10.1.2.3".parse().unwrap()),
            user_attributes: &user,
            reserved_memory_mib: 256,
            reserved_tcp_ports: &[4566],
            registry_credentials_available: false,
            agent_version: "0.1.0",
            agent_hash: "unknown",
        });
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["cluster"], "default");
        assert_eq!(
            json["containerInstanceArn"],
            "arn:aws:ecs:us-east-1:000000000000:container-instance/default/abc"
        );
        let resources = json["totalResources"].as_array().unwrap();
        assert_eq!(
            resources[0],
            serde_json::json!({"name": "CPU", "type": "INTEGER", "integerValue": 4096})
        );
        assert_eq!(
            resources[1],
            serde_json::json!({"name": "MEMORY", "type": "INTEGER", "integerValue": 7936})
        );
        assert_eq!(
            resources[2],
            serde_json::json!({"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375", "2376", "4566", "51678", "51679"]})
        );
        assert_eq!(
            resources[3],
            serde_json::json!({"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []})
        );
        assert_eq!(
            json["versionInfo"]["dockerVersion"],
            "DockerVersion: 20.10.24"
        );
        let attributes: Vec<(String, Option<String>)> = request
            .attributes
            .unwrap()
            .into_iter()
            .map(|a| (a.name.unwrap(), a.value))
            .collect();
        let value = |name: &str| {
            attributes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(value("ecs.os-type"), Some(Some("linux".into())));
        assert_eq!(value("ecs.cpu-architecture"), Some(Some("arm64".into())));
        assert_eq!(
            value("ecs.availability-zone"),
            Some(Some("local-1a".into()))
        );
        assert_eq!(value("ecs.instance-type"), Some(Some("m5.large".into())));
        assert_eq!(value(HOST_ADDRESS_ATTRIBUTE), Some(Some("10.1.2.3".into())));
        assert_eq!(value("stack"), Some(Some("prod".into())));
        assert_eq!(value("gpu-less"), Some(None));
        assert_eq!(
            value("com.amazonaws.ecs.capability.docker-remote-api.1.17"),
            Some(None)
        );
        assert_eq!(
            value("com.amazonaws.ecs.capability.docker-remote-api.1.41"),
            Some(None)
        );
        assert_eq!(
            value("com.amazonaws.ecs.capability.docker-remote-api.1.42"),
            None
        );
        assert_eq!(value("ecs.capability.container-ordering"), Some(None));
        assert_eq!(
            value(PRIVATE_REGISTRY_CAPABILITY),
            None,
            "no credentials, no capability"
        );
        assert_eq!(
            value("com.amazonaws.ecs.capability.logging-driver.awslogs"),
            Some(None)
        );
        assert_eq!(value("com.amazonaws.ecs.capability.task-iam-role"), None);
    }

    #[test]
    fn memory_reserve_and_attribute_parsing() {
        assert_eq!(registered_memory_mib(1024 * 1024 * 100, 256), 0);
        assert_eq!(registered_memory_mib(2 * 1024 * 1024 * 1024, 256), 1792);
        assert_eq!(parse_attribute("a=b"), Ok(("a".into(), Some("b".into()))));
        assert_eq!(parse_attribute("flag"), Ok(("flag".into(), None)));
        assert!(parse_attribute("=x").is_err());
        assert_eq!(cpu_architecture_attribute("x86_64"), "x86_64");
        assert_eq!(runtime_platform_architecture("aarch64"), "ARM64");
        assert_eq!(docker_api_capabilities("1.19").len(), 3);
    }
}
