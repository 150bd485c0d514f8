//! Property tests: the indexed scheduler against a brute-force reference
//! that re-reads every instance for every decision.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::query::Expr;
use crate::snapshot::{
    BinpackField, FailureReason, InstanceSnapshot, InstanceStatus, PlacementConstraint,
    PlacementFailure, PlacementStrategy, RequiredAttribute, Resources, SpreadField, TaskRequest,
};
use crate::{place, ClusterState};

const ZONES: [&str; 3] = ["z1", "z2", "z3"];
const GROUPS: [&str; 3] = ["g0", "g1", "g2"];
const PORTS: [u16; 2] = [80, 443];
const EXPRESSIONS: [&str; 4] = [
    "attribute:stack == prod",
    "attribute:zone in [z1, z2]",
    "not(task:group == g1)",
    "runningTasksCount < 4 or attribute:stack !exists",
];

fn instance_strategy() -> impl Strategy<Value = InstanceSnapshot> {
    (
        (0u32..=8, 0u32..=8, 0u32..=2),
        0usize..3,
        prop_oneof![Just(None), Just(Some("prod")), Just(Some("dev"))],
        prop_oneof![8 => Just(InstanceStatus::Active), 1 => Just(InstanceStatus::Draining)],
        prop::bool::weighted(0.9),
        prop::collection::vec((0usize..3, 1u32..3), 0..3),
        prop::collection::btree_set(0usize..2, 0..2),
    )
        .prop_map(
            |((cpu, memory, gpus), zone, stack, status, connected, groups, ports)| {
                let mut attributes =
                    BTreeMap::from([("zone".to_string(), Some(ZONES[zone].to_string()))]);
                if let Some(stack) = stack {
                    attributes.insert("stack".to_string(), Some(stack.to_string()));
                }
                let task_groups: BTreeMap<String, u32> = groups
                    .into_iter()
                    .map(|(g, n)| (GROUPS[g].to_string(), n))
                    .collect();
                InstanceSnapshot {
                    container_instance_arn: String::new(),
                    ec2_instance_id: None,
                    status,
                    agent_connected: connected,
                    agent_version: None,
                    registered_at_ms: 0,
                    remaining: Resources {
                        cpu_units: cpu * 256,
                        memory_mib: memory * 256,
                        gpus,
                    },
                    used_tcp_ports: ports.into_iter().map(|p| PORTS[p]).collect(),
                    used_udp_ports: Vec::new(),
                    running_tasks_count: task_groups.values().sum(),
                    attributes,
                    task_groups,
                }
            },
        )
}

fn task_strategy() -> impl Strategy<Value = TaskRequest> {
    (
        (0u32..=4, 0u32..=4, prop::bool::weighted(0.1)),
        prop::collection::btree_set(0usize..2, 0..2),
        0usize..3,
        prop::bool::weighted(0.2),
        prop::collection::btree_set(0usize..EXPRESSIONS.len(), 0..2),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |((cpu, memory, gpu), ports, group, distinct, expressions, needs_zone)| {
                let mut constraints: Vec<PlacementConstraint> = expressions
                    .into_iter()
                    .map(|e| PlacementConstraint::MemberOf(Expr::parse(EXPRESSIONS[e]).unwrap()))
                    .collect();
                if distinct {
                    constraints.push(PlacementConstraint::DistinctInstance);
                }
                TaskRequest {
                    resources: Resources {
                        cpu_units: cpu * 128,
                        memory_mib: memory * 128,
                        gpus: u32::from(gpu),
                    },
                    tcp_ports: ports.into_iter().map(|p| PORTS[p]).collect(),
                    udp_ports: Vec::new(),
                    group: GROUPS[group].to_string(),
                    constraints,
                    required_attributes: if needs_zone {
                        vec![RequiredAttribute {
                            name: "zone".into(),
                            value: Some("z3".into()),
                        }]
                    } else {
                        Vec::new()
                    },
                }
            },
        )
}

fn rule_strategy() -> impl Strategy<Value = PlacementStrategy> {
    prop_oneof![
        Just(PlacementStrategy::Binpack(BinpackField::Cpu)),
        Just(PlacementStrategy::Binpack(BinpackField::Memory)),
        Just(PlacementStrategy::Spread(SpreadField::InstanceId)),
        Just(PlacementStrategy::Spread(SpreadField::Attribute(
            "zone".into()
        ))),
        Just(PlacementStrategy::Spread(SpreadField::Attribute(
            "stack".into()
        ))),
        Just(PlacementStrategy::Random),
    ]
}

/// The reference: snapshots updated by hand after each placement.
struct Reference {
    instances: Vec<InstanceSnapshot>,
}

impl Reference {
    fn check(&self, i: usize, task: &TaskRequest) -> Result<(), FailureReason> {
        let instance = &self.instances[i];
        if !instance.agent_connected {
            return Err(FailureReason::Agent);
        }
        for required in &task.required_attributes {
            match instance.attributes.get(&required.name) {
                Some(value) if required.value.is_none() || *value == required.value => {}
                _ => return Err(FailureReason::Attribute),
            }
        }
        let (have, want) = (&instance.remaining, &task.resources);
        if have.cpu_units < want.cpu_units {
            return Err(FailureReason::Cpu);
        }
        if have.memory_mib < want.memory_mib {
            return Err(FailureReason::Memory);
        }
        if task
            .tcp_ports
            .iter()
            .any(|p| instance.used_tcp_ports.contains(p))
        {
            return Err(FailureReason::Ports);
        }
        if have.gpus < want.gpus {
            return Err(FailureReason::Gpu);
        }
        for constraint in &task.constraints {
            match constraint {
                PlacementConstraint::MemberOf(expr) if !expr.matches(instance) => {
                    return Err(FailureReason::MemberOf)
                }
                PlacementConstraint::DistinctInstance
                    if instance.task_groups.get(&task.group).copied().unwrap_or(0) > 0 =>
                {
                    return Err(FailureReason::DistinctInstance)
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn fits(&self, i: usize, task: &TaskRequest) -> bool {
        self.instances[i].status == InstanceStatus::Active && self.check(i, task).is_ok()
    }

    fn key(&self, i: usize, rule: &PlacementStrategy, group: &str) -> u32 {
        let count = |j: usize| {
            self.instances[j]
                .task_groups
                .get(group)
                .copied()
                .unwrap_or(0)
        };
        match rule {
            PlacementStrategy::Binpack(BinpackField::Cpu) => self.instances[i].remaining.cpu_units,
            PlacementStrategy::Binpack(BinpackField::Memory) => {
                self.instances[i].remaining.memory_mib
            }
            PlacementStrategy::Spread(SpreadField::InstanceId) => count(i),
            PlacementStrategy::Spread(SpreadField::Attribute(name)) => {
                let value = self.instances[i].attributes.get(name);
                (0..self.instances.len())
                    .filter(|j| self.instances[*j].attributes.get(name) == value)
                    .map(count)
                    .sum()
            }
            PlacementStrategy::Random => 0,
        }
    }

    /// The instances the chain allows, and whether a random rule chose
    /// among them (else the first one is the answer).
    fn allowed(&self, task: &TaskRequest, chain: &[PlacementStrategy]) -> (Vec<usize>, bool) {
        let mut candidates: Vec<usize> = (0..self.instances.len())
            .filter(|i| self.fits(*i, task))
            .collect();
        for rule in chain {
            if candidates.is_empty() {
                break;
            }
            if *rule == PlacementStrategy::Random {
                return (candidates, true);
            }
            let least = candidates
                .iter()
                .map(|i| self.key(*i, rule, &task.group))
                .min()
                .unwrap_or(0);
            candidates.retain(|i| self.key(*i, rule, &task.group) == least);
        }
        (candidates, false)
    }

    fn apply(&mut self, i: usize, task: &TaskRequest) {
        let instance = &mut self.instances[i];
        instance.remaining.cpu_units -= task.resources.cpu_units;
        instance.remaining.memory_mib -= task.resources.memory_mib;
        instance.remaining.gpus -= task.resources.gpus;
        instance.used_tcp_ports.extend(&task.tcp_ports);
        *instance.task_groups.entry(task.group.clone()).or_insert(0) += 1;
        instance.running_tasks_count += 1;
    }
}

fn run(
    instances: &[InstanceSnapshot],
    tasks: &[TaskRequest],
    chain: &[PlacementStrategy],
    seed: u64,
) -> Vec<Result<crate::Placement, PlacementFailure>> {
    let mut state = ClusterState::new(instances.to_vec());
    place(&mut state, tasks, chain, &mut StdRng::seed_from_u64(seed))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every placement respects resources, ports, attributes, status and
    /// constraints, and is the one the chain prescribes; every failure is
    /// real and names each ACTIVE instance with the rule it breaks.
    #[test]
    fn placements_are_valid_and_follow_the_chain(
        instances in prop::collection::vec(instance_strategy(), 0..10),
        tasks in prop::collection::vec(task_strategy(), 1..25),
        chain in prop::collection::vec(rule_strategy(), 0..4),
        seed in any::<u64>(),
    ) {
        let outcomes = run(&instances, &tasks, &chain, seed);
        let mut reference = Reference { instances: instances.clone() };
        for (task, outcome) in tasks.iter().zip(&outcomes) {
            match outcome {
                Ok(placement) => {
                    let i = placement.instance.get();
                    prop_assert!(reference.fits(i, task), "instance {i} cannot take {task:?}");
                    let (allowed, by_random) = reference.allowed(task, &chain);
                    if by_random {
                        prop_assert!(allowed.contains(&i), "{i} not among {allowed:?}");
                    } else {
                        prop_assert_eq!(Some(&i), allowed.first());
                    }
                    reference.apply(i, task);
                }
                Err(PlacementFailure::NoContainerInstances) => {
                    prop_assert!(instances.iter().all(|i| i.status != InstanceStatus::Active));
                }
                Err(PlacementFailure::NoInstanceFits { rejections }) => {
                    let active: Vec<usize> = (0..instances.len())
                        .filter(|i| instances[*i].status == InstanceStatus::Active)
                        .collect();
                    prop_assert!(!active.is_empty());
                    let rejected: Vec<usize> = rejections.iter().map(|r| r.instance.get()).collect();
                    prop_assert_eq!(&rejected, &active);
                    for rejection in rejections {
                        let i = rejection.instance.get();
                        prop_assert_eq!(reference.check(i, task), Err(rejection.reason));
                    }
                }
            }
        }
        // Nothing is over-committed and no host port is taken twice.
        let mut state = ClusterState::new(instances.clone());
        place(&mut state, &tasks, &chain, &mut StdRng::seed_from_u64(seed));
        for (i, expected) in reference.instances.iter().enumerate() {
            let index = crate::InstanceIndex(i as u32);
            prop_assert_eq!(state.remaining(index), expected.remaining);
            let ports: Vec<u16> = expected.used_tcp_ports.iter().copied().collect::<BTreeSet<u16>>().into_iter().collect();
            prop_assert_eq!(ports.len(), expected.used_tcp_ports.len(), "a host port was taken twice");
            prop_assert_eq!(state.used_tcp_ports(index), ports.as_slice());
        }
    }

    /// The same seed gives the same placements.
    #[test]
    fn same_seed_same_placements(
        instances in prop::collection::vec(instance_strategy(), 0..10),
        tasks in prop::collection::vec(task_strategy(), 1..25),
        chain in prop::collection::vec(rule_strategy(), 0..4),
        seed in any::<u64>(),
    ) {
        prop_assert_eq!(run(&instances, &tasks, &chain, seed), run(&instances, &tasks, &chain, seed));
    }

    /// On identical instances, binpack fills one before starting another:
    /// it uses the fewest instances possible, and never more than random.
    #[test]
    fn binpack_uses_the_fewest_instances(
        instance_count in 1usize..12,
        (cpu, memory) in (1u32..=16, 1u32..=16),
        (task_cpu, task_memory) in (1u32..=8, 1u32..=8),
        fill_percent in 1usize..=100,
        field in prop_oneof![Just(BinpackField::Cpu), Just(BinpackField::Memory)],
        seed in any::<u64>(),
    ) {
        let instance = |i: usize| InstanceSnapshot {
            container_instance_arn: format!("i{i}"),
            ec2_instance_id: None,
            status: InstanceStatus::Active,
            agent_connected: true,
            agent_version: None,
            registered_at_ms: 0,
            remaining: Resources { cpu_units: cpu * 128, memory_mib: memory * 128, gpus: 0 },
            used_tcp_ports: Vec::new(),
            used_udp_ports: Vec::new(),
            attributes: BTreeMap::new(),
            running_tasks_count: 0,
            task_groups: BTreeMap::new(),
        };
        let instances: Vec<InstanceSnapshot> = (0..instance_count).map(instance).collect();
        let per_instance = ((cpu / task_cpu).min(memory / task_memory)) as usize;
        let capacity = per_instance * instance_count;
        let task_count = (capacity * fill_percent / 100).max(1);
        let task = TaskRequest {
            resources: Resources { cpu_units: task_cpu * 128, memory_mib: task_memory * 128, gpus: 0 },
            tcp_ports: Vec::new(),
            udp_ports: Vec::new(),
            group: "g".into(),
            constraints: Vec::new(),
            required_attributes: Vec::new(),
        };
        let tasks = vec![task; task_count];
        let used = |outcomes: &[Result<crate::Placement, PlacementFailure>]| {
            outcomes.iter().filter_map(|o| o.as_ref().ok()).map(|p| p.instance).collect::<BTreeSet<_>>().len()
        };
        let binpack = run(&instances, &tasks, &[PlacementStrategy::Binpack(field)], seed);
        let placed = binpack.iter().filter(|o| o.is_ok()).count();
        prop_assert_eq!(placed, task_count.min(capacity));
        if per_instance > 0 {
            prop_assert_eq!(used(&binpack), placed.div_ceil(per_instance));
        }
        let random = run(&instances, &tasks, &[PlacementStrategy::Random], seed);
        prop_assert!(used(&binpack) <= used(&random));
    }

    /// Spread keeps the group's task counts within one across the values of
    /// the field, when every instance has room.
    #[test]
    fn spread_keeps_counts_within_one(
        zones in prop::collection::vec(0usize..3, 1..12),
        task_count in 1usize..40,
        by_zone in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let instances: Vec<InstanceSnapshot> = zones
            .iter()
            .enumerate()
            .map(|(i, zone)| InstanceSnapshot {
                container_instance_arn: format!("i{i}"),
                ec2_instance_id: None,
                status: InstanceStatus::Active,
                agent_connected: true,
                agent_version: None,
                registered_at_ms: 0,
                remaining: Resources { cpu_units: 100_000, memory_mib: 100_000, gpus: 0 },
                used_tcp_ports: Vec::new(),
                used_udp_ports: Vec::new(),
                attributes: BTreeMap::from([("zone".to_string(), Some(ZONES[*zone].to_string()))]),
                running_tasks_count: 0,
                task_groups: BTreeMap::new(),
            })
            .collect();
        let task = TaskRequest {
            resources: Resources { cpu_units: 10, memory_mib: 10, gpus: 0 },
            tcp_ports: Vec::new(),
            udp_ports: Vec::new(),
            group: "service:web".into(),
            constraints: Vec::new(),
            required_attributes: Vec::new(),
        };
        let field = if by_zone {
            SpreadField::Attribute("zone".into())
        } else {
            SpreadField::InstanceId
        };
        let outcomes = run(&instances, &vec![task; task_count], &[PlacementStrategy::Spread(field)], seed);
        let mut counts: BTreeMap<usize, usize> = if by_zone {
            zones.iter().map(|z| (*z, 0)).collect()
        } else {
            (0..zones.len()).map(|i| (i, 0)).collect()
        };
        for outcome in &outcomes {
            let i = outcome.as_ref().expect("every instance has room").instance.get();
            *counts.get_mut(&if by_zone { zones[i] } else { i }).unwrap() += 1;
        }
        let most = counts.values().max().copied().unwrap_or(0);
        let least = counts.values().min().copied().unwrap_or(0);
        prop_assert!(most - least <= 1, "{counts:?}");
    }
}
