//! Container instances: machines joined to a cluster, with exact resource
//! accounting.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::tags::Tag;
use crate::task::Reservation;
use crate::ModelError;

/// Ports ECS always reserves on an instance (SSH, Docker, the ECS agent).
pub const ALWAYS_RESERVED_TCP_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerInstanceStatus {
    Active,
    Draining,
    Inactive,
    Registering,
    Deregistering,
    RegistrationFailed,
}

impl ContainerInstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerInstanceStatus::Active => "ACTIVE",
            ContainerInstanceStatus::Draining => "DRAINING",
            ContainerInstanceStatus::Inactive => "INACTIVE",
            ContainerInstanceStatus::Registering => "REGISTERING",
            ContainerInstanceStatus::Deregistering => "DEREGISTERING",
            ContainerInstanceStatus::RegistrationFailed => "REGISTRATION_FAILED",
        }
    }
}

/// CPU, memory and ports of an instance. For `registered`, the ports are the
/// reserved ones; for `remaining`, the ports in use (reserved + tasks'), as
/// ECS reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub cpu_units: i64,
    pub memory_mib: i64,
    pub tcp_ports: BTreeSet<u16>,
    pub udp_ports: BTreeSet<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub agent_version: Option<String>,
    pub agent_hash: Option<String>,
    pub docker_version: Option<String>,
}

/// The attribute holding the address at which a container instance's host
/// ports are reached (its agent reports it; load balancers send an `instance`
/// target's traffic there).
pub const HOST_ADDRESS_ATTRIBUTE: &str = "berth.host-address";

/// A container instance as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstance {
    pub id: String,
    pub cluster_name: String,
    pub ec2_instance_id: String,
    pub status: ContainerInstanceStatus,
    #[serde(default)]
    pub status_reason: Option<String>,
    pub registered: Resources,
    pub remaining: Resources,
    /// Attribute name → value (`None` for a valueless attribute).
    pub attributes: BTreeMap<String, Option<String>>,
    pub version_info: VersionInfo,
    pub registered_at_ms: i64,
    /// Tasks on the instance that are not STOPPED, by task group
    /// (`family:web`, `service:web`, a RunTask group): what spread,
    /// distinctInstance and `task:group` need, kept with the resources.
    #[serde(default)]
    pub task_groups: BTreeMap<String, u32>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Increments on every change, as ECS's instance `version`.
    pub version: i64,
}

/// Why a task does not fit on an instance, as RunTask's failure reasons say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shortfall {
    Cpu,
    Memory,
    Ports,
    PortsUdp,
}

impl Shortfall {
    pub fn reason(self) -> &'static str {
        match self {
            Shortfall::Cpu => "RESOURCE:CPU",
            Shortfall::Memory => "RESOURCE:MEMORY",
            Shortfall::Ports => "RESOURCE:PORTS",
            Shortfall::PortsUdp => "RESOURCE:PORTS_UDP",
        }
    }
}

impl ContainerInstance {
    pub fn is_active(&self) -> bool {
        self.status == ContainerInstanceStatus::Active
    }

    /// The first resource that lacks room for `reservation`, if any.
    pub fn shortfall(&self, reservation: &Reservation) -> Option<Shortfall> {
        if reservation.cpu_units > self.remaining.cpu_units {
            return Some(Shortfall::Cpu);
        }
        if reservation.memory_mib > self.remaining.memory_mib {
            return Some(Shortfall::Memory);
        }
        if !reservation.tcp_ports.is_disjoint(&self.remaining.tcp_ports) {
            return Some(Shortfall::Ports);
        }
        if !reservation.udp_ports.is_disjoint(&self.remaining.udp_ports) {
            return Some(Shortfall::PortsUdp);
        }
        None
    }

    /// Takes `reservation` out of the remaining resources. The caller
    /// checked [`Self::shortfall`]; this re-checks, so resources are never
    /// over-committed.
    pub fn reserve(&mut self, reservation: &Reservation) -> Result<(), Shortfall> {
        if let Some(shortfall) = self.shortfall(reservation) {
            return Err(shortfall);
        }
        self.remaining.cpu_units -= reservation.cpu_units;
        self.remaining.memory_mib -= reservation.memory_mib;
        self.remaining.tcp_ports.extend(&reservation.tcp_ports);
        self.remaining.udp_ports.extend(&reservation.udp_ports);
        Ok(())
    }

    /// Tasks placed here that are not STOPPED (pending or running).
    pub fn active_tasks_count(&self) -> u32 {
        self.task_groups.values().sum()
    }

    pub fn add_to_group(&mut self, group: &str) {
        *self.task_groups.entry(group.to_string()).or_default() += 1;
    }

    pub fn remove_from_group(&mut self, group: &str) {
        if let Some(count) = self.task_groups.get_mut(group) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.task_groups.remove(group);
            }
        }
    }

    /// Gives a stopped task's reservation back.
    pub fn release(&mut self, reservation: &Reservation) {
        self.remaining.cpu_units =
            (self.remaining.cpu_units + reservation.cpu_units).min(self.registered.cpu_units);
        self.remaining.memory_mib =
            (self.remaining.memory_mib + reservation.memory_mib).min(self.registered.memory_mib);
        for port in &reservation.tcp_ports {
            if !self.registered.tcp_ports.contains(port) {
                self.remaining.tcp_ports.remove(port);
            }
        }
        for port in &reservation.udp_ports {
            if !self.registered.udp_ports.contains(port) {
                self.remaining.udp_ports.remove(port);
            }
        }
    }
}

/// Attribute names: up to 128 letters, digits, hyphens, underscores,
/// periods, at signs, forward slashes, colons and spaces.
pub fn validate_attribute(name: &str, value: Option<&str>) -> Result<(), ModelError> {
    let name_ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./@: ".contains(c));
    if !name_ok {
        return Err(ModelError::invalid_parameter(format!(
            "Invalid attribute name '{name}'. Up to 128 letters (uppercase and lowercase), numbers, hyphens, underscores, periods, at signs (@), forward slashes, colons, and spaces are allowed."
        )));
    }
    if let Some(value) = value {
        let value_ok = !value.is_empty()
            && value.len() <= 128
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./@: ".contains(c));
        if !value_ok {
            return Err(ModelError::invalid_parameter(format!(
                "Invalid value '{value}' for attribute '{name}'. Up to 128 letters (uppercase and lowercase), numbers, hyphens, underscores, periods, at signs (@), forward slashes, colons, and spaces are allowed."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(cpu: i64, memory: i64) -> ContainerInstance {
        let registered = Resources {
            cpu_units: cpu,
            memory_mib: memory,
            tcp_ports: ALWAYS_RESERVED_TCP_PORTS.into_iter().collect(),
            udp_ports: BTreeSet::new(),
        };
        ContainerInstance {
            id: "i".into(),
            cluster_name: "c".into(),
            ec2_instance_id: "i-1".into(),
            status: ContainerInstanceStatus::Active,
            status_reason: None,
            remaining: registered.clone(),
            registered,
            attributes: BTreeMap::new(),
            version_info: VersionInfo::default(),
            registered_at_ms: 0,
            task_groups: BTreeMap::new(),
            tags: vec![],
            version: 1,
        }
    }

    fn reservation(cpu: i64, memory: i64, ports: &[u16]) -> Reservation {
        Reservation {
            cpu_units: cpu,
            memory_mib: memory,
            tcp_ports: ports.iter().copied().collect(),
            udp_ports: BTreeSet::new(),
        }
    }

    #[test]
    fn reserve_and_release_are_exact() {
        let mut i = instance(1024, 2048);
        i.reserve(&reservation(512, 1024, &[8080])).unwrap();
        assert_eq!(i.remaining.cpu_units, 512);
        assert!(i.remaining.tcp_ports.contains(&8080));
        assert_eq!(
            i.shortfall(&reservation(0, 0, &[8080])),
            Some(Shortfall::Ports)
        );
        assert_eq!(
            i.shortfall(&reservation(0, 0, &[22])),
            Some(Shortfall::Ports)
        );
        assert_eq!(i.shortfall(&reservation(600, 0, &[])), Some(Shortfall::Cpu));
        assert_eq!(
            i.reserve(&reservation(0, 2000, &[])),
            Err(Shortfall::Memory)
        );
        i.release(&reservation(512, 1024, &[8080]));
        assert_eq!(i.remaining, i.registered);
        // Releasing never frees reserved system ports.
        i.release(&reservation(0, 0, &[22]));
        assert!(i.remaining.tcp_ports.contains(&22));
    }

    #[test]
    fn attribute_rules() {
        assert!(validate_attribute("ecs.availability-zone", Some("us-east-1a")).is_ok());
        assert!(validate_attribute("stack", None).is_ok());
        assert!(validate_attribute("", None).is_err());
        assert!(validate_attribute("a*b", None).is_err());
        assert!(validate_attribute("a", Some("x|y")).is_err());
    }
}
