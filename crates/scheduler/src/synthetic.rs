//! Seeded synthetic clusters and task streams, for tests and
//! `berth bench scheduler`. Pure: the same seed gives the same cluster.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::snapshot::{InstanceSnapshot, InstanceStatus, Resources, TaskRequest};

/// An EC2 instance type as ECS registers it (memory net of the OS).
#[derive(Clone, Copy, Debug)]
pub struct InstanceType {
    pub name: &'static str,
    pub cpu_units: u32,
    pub memory_mib: u32,
    pub gpus: u32,
    pub cpu_architecture: &'static str,
    /// Relative share of the fleet.
    pub weight: u32,
}

pub const INSTANCE_TYPES: [InstanceType; 7] = [
    InstanceType {
        name: "m5.large",
        cpu_units: 2048,
        memory_mib: 7680,
        gpus: 0,
        cpu_architecture: "x86_64",
        weight: 20,
    },
    InstanceType {
        name: "m5.xlarge",
        cpu_units: 4096,
        memory_mib: 15360,
        gpus: 0,
        cpu_architecture: "x86_64",
        weight: 25,
    },
    InstanceType {
        name: "m5.2xlarge",
        cpu_units: 8192,
        memory_mib: 31232,
        gpus: 0,
        cpu_architecture: "x86_64",
        weight: 20,
    },
    InstanceType {
        name: "c5.4xlarge",
        cpu_units: 16384,
        memory_mib: 30720,
        gpus: 0,
        cpu_architecture: "x86_64",
        weight: 10,
    },
    InstanceType {
        name: "r5.2xlarge",
        cpu_units: 8192,
        memory_mib: 63488,
        gpus: 0,
        cpu_architecture: "x86_64",
        weight: 10,
    },
    InstanceType {
        name: "m6g.xlarge",
        cpu_units: 4096,
        memory_mib: 15360,
        gpus: 0,
        cpu_architecture: "arm64",
        weight: 10,
    },
    InstanceType {
        name: "g4dn.xlarge",
        cpu_units: 4096,
        memory_mib: 15360,
        gpus: 1,
        cpu_architecture: "x86_64",
        weight: 5,
    },
];

pub const AVAILABILITY_ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// Ports the ECS agent reserves on every instance by default.
pub const RESERVED_TCP_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];

/// 2024-01-01T00:00:00Z.
const FIRST_REGISTRATION_MS: i64 = 1_704_067_200_000;

/// A heterogeneous cluster of empty instances: the types above by weight,
/// three Availability Zones, a `stack` attribute (80% `prod`), about 1% of
/// instances DRAINING and 0.5% with the agent disconnected.
pub fn cluster(instance_count: usize, seed: u64) -> Vec<InstanceSnapshot> {
    let mut rng = StdRng::seed_from_u64(seed);
    let total_weight: u32 = INSTANCE_TYPES.iter().map(|t| t.weight).sum();
    (0..instance_count)
        .map(|i| {
            let mut draw = rng.gen_range(0..total_weight);
            let instance_type = INSTANCE_TYPES
                .iter()
                .find(|t| {
                    if draw < t.weight {
                        true
                    } else {
                        draw -= t.weight;
                        false
                    }
                })
                .unwrap_or(&INSTANCE_TYPES[0]);
            let zone = AVAILABILITY_ZONES[rng.gen_range(0..AVAILABILITY_ZONES.len())];
            let stack = if rng.gen_bool(0.8) { "prod" } else { "dev" };
            let status = if rng.gen_bool(0.01) {
                InstanceStatus::Draining
            } else {
                InstanceStatus::Active
            };
            let agent_connected = !rng.gen_bool(0.005);
            let id: u64 = rng.gen();
            let attributes = BTreeMap::from([
                ("ecs.availability-zone".to_string(), Some(zone.to_string())),
                (
                    "ecs.instance-type".to_string(),
                    Some(instance_type.name.to_string()),
                ),
                ("ecs.os-type".to_string(), Some("linux".to_string())),
                (
                    "ecs.cpu-architecture".to_string(),
                    Some(instance_type.cpu_architecture.to_string()),
                ),
                ("ecs.capability.task-eni".to_string(), None),
                ("stack".to_string(), Some(stack.to_string())),
            ]);
            InstanceSnapshot {
                container_instance_arn: format!(
                    "arn:aws:ecs:us-east-1:000000000000:container-instance/synthetic/{id:032x}"
                ),
                ec2_instance_id: Some(format!("i-{:017x}", id >> 4)),
                status,
                agent_connected,
                agent_version: Some("1.80.0".to_string()),
                registered_at_ms: FIRST_REGISTRATION_MS + i as i64 * 1000,
                remaining: Resources {
                    cpu_units: instance_type.cpu_units,
                    memory_mib: instance_type.memory_mib,
                    gpus: instance_type.gpus,
                },
                used_tcp_ports: RESERVED_TCP_PORTS.to_vec(),
                used_udp_ports: Vec::new(),
                attributes,
                running_tasks_count: 0,
                task_groups: BTreeMap::new(),
            }
        })
        .collect()
}

/// Task families of small services (8–48 CPU units, 32–192 MiB): one task
/// request per family, grouped as `family:<name>`. One family binds static
/// TCP port 8080 and one needs a GPU; both are rare in [`TaskMix`].
pub fn task_families(family_count: usize) -> Vec<TaskRequest> {
    const CPU_UNITS: [u32; 4] = [8, 16, 32, 48];
    const MEMORY_MIB: [u32; 4] = [32, 64, 128, 192];
    (0..family_count)
        .map(|f| TaskRequest {
            resources: Resources {
                cpu_units: CPU_UNITS[f % 4],
                memory_mib: MEMORY_MIB[(f / 4) % 4],
                gpus: u32::from(f == GPU_FAMILY),
            },
            tcp_ports: if f == PORT_FAMILY {
                vec![8080]
            } else {
                Vec::new()
            },
            udp_ports: Vec::new(),
            group: format!("family:svc-{f:02}"),
            constraints: Vec::new(),
            required_attributes: Vec::new(),
        })
        .collect()
}

const PORT_FAMILY: usize = 7;
const GPU_FAMILY: usize = 13;

/// Draws which family the next task belongs to: all families equally,
/// except the port and GPU families, each 1/200 as often.
pub struct TaskMix {
    rng: StdRng,
    cumulative_weights: Vec<u32>,
}

impl TaskMix {
    pub fn new(family_count: usize, seed: u64) -> TaskMix {
        let mut total = 0;
        let cumulative_weights = (0..family_count)
            .map(|f| {
                total += if f == PORT_FAMILY || f == GPU_FAMILY {
                    1
                } else {
                    200
                };
                total
            })
            .collect();
        TaskMix {
            rng: StdRng::seed_from_u64(seed),
            cumulative_weights,
        }
    }

    /// The index of the next task's family in [`task_families`].
    pub fn next_family(&mut self) -> usize {
        let total = self.cumulative_weights.last().copied().unwrap_or(0);
        if total == 0 {
            return 0;
        }
        let draw = self.rng.gen_range(0..total);
        self.cumulative_weights.partition_point(|w| *w <= draw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_cluster_and_stream() {
        assert_eq!(cluster(50, 7), cluster(50, 7));
        assert_ne!(cluster(50, 7), cluster(50, 8));
        let mut a = TaskMix::new(20, 3);
        let mut b = TaskMix::new(20, 3);
        let draws_a: Vec<usize> = (0..100).map(|_| a.next_family()).collect();
        let draws_b: Vec<usize> = (0..100).map(|_| b.next_family()).collect();
        assert_eq!(draws_a, draws_b);
    }

    #[test]
    fn cluster_is_heterogeneous_with_three_zones() {
        let instances = cluster(2000, 1);
        let types: std::collections::BTreeSet<_> = instances
            .iter()
            .map(|i| i.attributes["ecs.instance-type"].clone())
            .collect();
        assert_eq!(types.len(), INSTANCE_TYPES.len());
        let zones: std::collections::BTreeSet<_> = instances
            .iter()
            .map(|i| i.attributes["ecs.availability-zone"].clone())
            .collect();
        assert_eq!(zones.len(), 3);
        let draining = instances
            .iter()
            .filter(|i| i.status == InstanceStatus::Draining)
            .count();
        assert!((5..=50).contains(&draining), "{draining} draining");
    }

    #[test]
    fn mix_draws_rare_families_rarely() {
        let mut mix = TaskMix::new(20, 11);
        let mut counts = [0usize; 20];
        for _ in 0..100_000 {
            counts[mix.next_family()] += 1;
        }
        assert!(counts[PORT_FAMILY] < 200, "{counts:?}");
        assert!(counts[GPU_FAMILY] < 200, "{counts:?}");
        assert!(counts[0] > 4000, "{counts:?}");
    }
}
