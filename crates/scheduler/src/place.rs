//! Placement decisions: filter, then the strategy chain, then apply.

use rand::Rng;

use crate::snapshot::{
    BinpackField, FailureReason, InstanceIndex, InstanceRejection, InstanceStatus, Placement,
    PlacementConstraint, PlacementFailure, PlacementStrategy, SpreadField, TaskRequest,
};
use crate::state::{ClusterState, GroupId, Order, PlanOrder, VERDICT_TRUE};
use crate::MAX_STRATEGY_RULES;

/// Rejection-sampling draws before `random` falls back to listing every
/// instance that fits.
const RANDOM_DRAWS: usize = 16;

/// Places a batch in order, applying each decision before the next one, so
/// the batch never over-commits an instance. `strategies` is the whole
/// chain: pass [`PlacementStrategy::run_task_default`] or
/// [`PlacementStrategy::service_default`] when the request names none. An
/// empty chain takes the first instance that fits, in snapshot order.
pub fn place<'a, R: Rng + ?Sized>(
    state: &mut ClusterState,
    tasks: impl IntoIterator<Item = &'a TaskRequest>,
    strategies: &[PlacementStrategy],
    rng: &mut R,
) -> Vec<Result<Placement, PlacementFailure>> {
    tasks
        .into_iter()
        .map(|task| place_one(state, task, strategies, rng))
        .collect()
}

/// Places one task and records it in `state`.
pub fn place_one<R: Rng + ?Sized>(
    state: &mut ClusterState,
    task: &TaskRequest,
    strategies: &[PlacementStrategy],
    rng: &mut R,
) -> Result<Placement, PlacementFailure> {
    if state.active_count == 0 {
        return Err(PlacementFailure::NoContainerInstances);
    }
    let group = state.intern_group(&task.group);
    state.lower_request_floor(&task.resources);
    let mut verdicts = std::mem::take(&mut state.scratch_verdicts);
    state.resolve_verdicts(task, &mut verdicts);
    let plan = state.plan(group, strategies, &verdicts);
    let request = Request {
        task,
        group,
        verdicts: &verdicts,
    };
    let partitions = sorted_partitions(state, plan.partitioning, plan.spread_levels, group);
    let mut chosen = None;
    let mut start = 0;
    while start < partitions.len() && chosen.is_none() {
        let key = partitions[start].0;
        let end = start
            + partitions[start..]
                .iter()
                .take_while(|(k, _)| *k == key)
                .count();
        let tied = &partitions[start..end];
        chosen = match plan.order {
            PlanOrder::Index(index) => choose_by_index(
                state,
                index,
                tied,
                &request,
                &strategies[plan.tail_start..],
                rng,
            ),
            PlanOrder::Random => choose_at_random(state, plan.partitioning, tied, &request, rng),
        };
        start = end;
    }
    state.scratch_partitions = partitions;
    let outcome = match chosen {
        Some(i) => {
            state.commit(i as usize, task, group);
            Ok(Placement {
                instance: InstanceIndex(i),
            })
        }
        None => Err(PlacementFailure::NoInstanceFits {
            rejections: rejections(state, &request),
        }),
    };
    state.scratch_verdicts = verdicts;
    outcome
}

/// A partition with its sort key: the group's task count at the value of
/// each attribute the chain spreads over first.
type KeyedPartition = ([u32; MAX_STRATEGY_RULES], u32);

/// The partitions of a partitioning whose verdicts all hold, least loaded
/// first, then by id.
fn sorted_partitions(
    state: &mut ClusterState,
    partitioning: usize,
    spread_levels: usize,
    group: GroupId,
) -> Vec<KeyedPartition> {
    let mut partitions = std::mem::take(&mut state.scratch_partitions);
    partitions.clear();
    let partitioning = &state.partitionings[partitioning];
    for (partition, values) in partitioning.level_values.iter().enumerate() {
        if values[spread_levels..].iter().any(|v| *v != VERDICT_TRUE) {
            continue;
        }
        let mut key = [0u32; MAX_STRATEGY_RULES];
        for (level, (column, value)) in partitioning.columns[..spread_levels]
            .iter()
            .zip(values)
            .take(MAX_STRATEGY_RULES)
            .enumerate()
        {
            key[level] = state.value_counts[&(*column, group)][*value as usize];
        }
        partitions.push((key, partition as u32));
    }
    if partitions.len() > 1 {
        partitions.sort_unstable();
    }
    partitions
}

/// What a decision needs besides the state: the task, its group and the
/// precomputed verdicts of its constraints.
struct Request<'a> {
    task: &'a TaskRequest,
    group: GroupId,
    verdicts: &'a [u32],
}

/// Whether instance `i` can take the task, or the first rule it breaks.
/// `i` must be ACTIVE; the agent is checked when `check_agent` is set
/// (instances in the indexes are known to be connected).
fn check(
    state: &ClusterState,
    i: usize,
    request: &Request<'_>,
    check_agent: bool,
) -> Result<(), FailureReason> {
    let Request {
        task,
        group,
        verdicts,
    } = *request;
    let record = &state.records[i];
    if check_agent && !record.agent_connected {
        return Err(FailureReason::Agent);
    }
    for required in &task.required_attributes {
        match record.attribute(&required.name) {
            None => return Err(FailureReason::Attribute),
            Some(value) => {
                if required.value.is_some() && value != required.value.as_deref() {
                    return Err(FailureReason::Attribute);
                }
            }
        }
    }
    let resources = &task.resources;
    if state.remaining_cpu[i] < resources.cpu_units {
        return Err(FailureReason::Cpu);
    }
    if state.remaining_memory[i] < resources.memory_mib {
        return Err(FailureReason::Memory);
    }
    if task
        .tcp_ports
        .iter()
        .any(|port| record.tcp_ports.binary_search(port).is_ok())
    {
        return Err(FailureReason::Ports);
    }
    if task
        .udp_ports
        .iter()
        .any(|port| record.udp_ports.binary_search(port).is_ok())
    {
        return Err(FailureReason::PortsUdp);
    }
    if state.remaining_gpus[i] < resources.gpus {
        return Err(FailureReason::Gpu);
    }
    for (constraint, verdicts) in task.constraints.iter().zip(verdicts) {
        match constraint {
            PlacementConstraint::MemberOf(expr) => {
                let matches = match state.static_verdicts.get(*verdicts as usize) {
                    Some(verdicts) => verdicts[i],
                    None => expr.matches(&state.view(InstanceIndex(i as u32))),
                };
                if !matches {
                    return Err(FailureReason::MemberOf);
                }
            }
            PlacementConstraint::DistinctInstance => {
                if record.group_count(group) > 0 {
                    return Err(FailureReason::DistinctInstance);
                }
            }
        }
    }
    Ok(())
}

/// The lowest `(key, instance)` of one partition of an ordered index that
/// takes the task, evicting on the way the instances too full for any
/// request seen.
fn first_fit(
    state: &mut ClusterState,
    index: usize,
    partition: u32,
    request: &Request<'_>,
) -> Option<(u32, u32)> {
    let task = request.task;
    let ordered = &state.indexes[index];
    let lower = match ordered.order {
        Order::Remaining(BinpackField::Cpu) => task.resources.cpu_units,
        Order::Remaining(BinpackField::Memory) => task.resources.memory_mib,
        Order::Position | Order::GroupCount(_) => 0,
    };
    let mut dead = std::mem::take(&mut state.scratch_candidates);
    dead.clear();
    let mut found = None;
    for &(key, i) in ordered.sets[partition as usize].range((lower, 0)..) {
        if state.is_dead(i as usize) {
            dead.push(i);
        } else if check(state, i as usize, request, false).is_ok() {
            found = Some((key, i));
            break;
        }
    }
    if !dead.is_empty() {
        let order = state.indexes[index].order;
        for &i in &dead {
            let key = state.order_key(order, i as usize);
            let ordered = &mut state.indexes[index];
            ordered.sets[partition as usize].remove(&(key, i));
            ordered.evicted.push(i);
        }
    }
    state.scratch_candidates = dead;
    found
}

fn choose_by_index<R: Rng + ?Sized>(
    state: &mut ClusterState,
    index: usize,
    partitions: &[KeyedPartition],
    request: &Request<'_>,
    tail: &[PlacementStrategy],
    rng: &mut R,
) -> Option<u32> {
    let best = partitions
        .iter()
        .filter_map(|(_, partition)| first_fit(state, index, *partition, request))
        .min()?;
    if tail.is_empty() {
        return Some(best.1);
    }
    // Every instance that ties with the best on the index's key goes on to
    // the rest of the chain.
    let key = best.0;
    let mut tied = Vec::new();
    for (_, partition) in partitions {
        tied.extend(
            state.indexes[index].sets[*partition as usize]
                .range((key, 0)..=(key, u32::MAX))
                .map(|(_, i)| *i)
                .filter(|i| check(state, *i as usize, request, false).is_ok()),
        );
    }
    Some(break_ties(state, tied, request.group, tail, rng))
}

fn choose_at_random<R: Rng + ?Sized>(
    state: &ClusterState,
    partitioning: usize,
    partitions: &[KeyedPartition],
    request: &Request<'_>,
    rng: &mut R,
) -> Option<u32> {
    let members = &state.partitionings[partitioning].members;
    let total: usize = partitions
        .iter()
        .map(|(_, p)| members[*p as usize].len())
        .sum();
    if total == 0 {
        return None;
    }
    for _ in 0..RANDOM_DRAWS {
        let mut draw = rng.gen_range(0..total);
        for (_, partition) in partitions {
            let list = &members[*partition as usize];
            if draw < list.len() {
                let i = list[draw];
                if check(state, i as usize, request, false).is_ok() {
                    return Some(i);
                }
                break;
            }
            draw -= list.len();
        }
    }
    let fitting: Vec<u32> = partitions
        .iter()
        .flat_map(|(_, p)| members[*p as usize].iter().copied())
        .filter(|i| check(state, *i as usize, request, false).is_ok())
        .collect();
    if fitting.is_empty() {
        None
    } else {
        Some(fitting[rng.gen_range(0..fitting.len())])
    }
}

/// What a tie-breaking rule minimises.
#[derive(Clone, Copy)]
enum TieKey {
    Order(Order),
    /// Tasks of the group at the instance's value of an attribute column.
    ValueCount(usize),
}

/// Applies the rest of the chain to instances the first rules left tied;
/// whatever still ties goes to the first in snapshot order.
fn break_ties<R: Rng + ?Sized>(
    state: &mut ClusterState,
    mut candidates: Vec<u32>,
    group: GroupId,
    tail: &[PlacementStrategy],
    rng: &mut R,
) -> u32 {
    candidates.sort_unstable();
    for strategy in tail {
        if candidates.len() == 1 {
            break;
        }
        let key = match strategy {
            PlacementStrategy::Random => {
                return candidates[rng.gen_range(0..candidates.len())];
            }
            PlacementStrategy::Binpack(field) => TieKey::Order(Order::Remaining(*field)),
            PlacementStrategy::Spread(SpreadField::InstanceId) => {
                TieKey::Order(Order::GroupCount(group))
            }
            PlacementStrategy::Spread(SpreadField::Attribute(name)) => {
                let column = state.ensure_column(name);
                state.ensure_value_counts(column, group);
                TieKey::ValueCount(column)
            }
        };
        let key_of = |i: u32| match key {
            TieKey::Order(order) => state.order_key(order, i as usize),
            TieKey::ValueCount(column) => {
                let value = state.columns[column].value_of[i as usize];
                state.value_counts[&(column, group)][value as usize]
            }
        };
        let least = candidates.iter().map(|i| key_of(*i)).min().unwrap_or(0);
        candidates.retain(|i| key_of(*i) == least);
    }
    candidates[0]
}

/// One entry per ACTIVE instance, with the first rule it breaks.
fn rejections(state: &ClusterState, request: &Request<'_>) -> Vec<InstanceRejection> {
    (0..state.len())
        .filter(|i| state.records[*i].status == InstanceStatus::Active)
        .filter_map(|i| {
            check(state, i, request, true)
                .err()
                .map(|reason| InstanceRejection {
                    instance: InstanceIndex(i as u32),
                    reason,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::snapshot::{InstanceSnapshot, RequiredAttribute, Resources};
    use crate::Expr;

    /// An ACTIVE, connected instance named `name` with `cpu` units and
    /// `memory` MiB free, in zone `zone`.
    fn instance(name: &str, cpu: u32, memory: u32, zone: &str) -> InstanceSnapshot {
        InstanceSnapshot {
            container_instance_arn: name.to_string(),
            ec2_instance_id: Some(format!("i-{name}")),
            status: InstanceStatus::Active,
            agent_connected: true,
            agent_version: Some("1.80.0".into()),
            registered_at_ms: 0,
            remaining: Resources {
                cpu_units: cpu,
                memory_mib: memory,
                gpus: 0,
            },
            used_tcp_ports: Vec::new(),
            used_udp_ports: Vec::new(),
            attributes: BTreeMap::from([("zone".to_string(), Some(zone.to_string()))]),
            running_tasks_count: 0,
            task_groups: BTreeMap::new(),
        }
    }

    fn with_groups(mut i: InstanceSnapshot, groups: &[(&str, u32)]) -> InstanceSnapshot {
        for (group, count) in groups {
            i.task_groups.insert(group.to_string(), *count);
            i.running_tasks_count += count;
        }
        i
    }

    fn task(cpu: u32, memory: u32) -> TaskRequest {
        TaskRequest {
            resources: Resources {
                cpu_units: cpu,
                memory_mib: memory,
                gpus: 0,
            },
            tcp_ports: Vec::new(),
            udp_ports: Vec::new(),
            group: "family:web".into(),
            constraints: Vec::new(),
            required_attributes: Vec::new(),
        }
    }

    fn member_of(mut t: TaskRequest, expression: &str) -> TaskRequest {
        let expr = Expr::parse(expression).expect("fixture expression parses");
        t.constraints.push(PlacementConstraint::MemberOf(expr));
        t
    }

    /// `binpack:memory spread:instanceId spread:attribute:zone random`.
    fn chain(text: &str) -> Vec<PlacementStrategy> {
        text.split_whitespace()
            .map(|rule| {
                let (kind, field) = match rule.split_once(':') {
                    Some((kind, field)) => (kind, Some(field)),
                    None => (rule, None),
                };
                PlacementStrategy::from_ecs(kind, field).expect("fixture strategy")
            })
            .collect()
    }

    /// Places `tasks` in order with seed 7 and compares the outcomes, one
    /// word per task: the instance's name, `!name=Reason,…` for a task that
    /// fits nowhere, or `!none` when the cluster has no ACTIVE instance.
    fn check(
        instances: Vec<InstanceSnapshot>,
        tasks: &[TaskRequest],
        strategies: &str,
        expected: &str,
    ) {
        let mut state = ClusterState::new(instances);
        let mut rng = StdRng::seed_from_u64(7);
        let outcomes = place(&mut state, tasks, &chain(strategies), &mut rng);
        let words: Vec<String> = outcomes
            .iter()
            .map(|outcome| match outcome {
                Ok(placement) => state.container_instance_arn(placement.instance).to_string(),
                Err(PlacementFailure::NoContainerInstances) => "!none".into(),
                Err(PlacementFailure::NoInstanceFits { rejections }) => {
                    let parts: Vec<String> = rejections
                        .iter()
                        .map(|r| {
                            format!(
                                "{}={:?}",
                                state.container_instance_arn(r.instance),
                                r.reason
                            )
                        })
                        .collect();
                    format!("!{}", parts.join(","))
                }
            })
            .collect();
        assert_eq!(words.join(" "), expected);
    }

    fn three_instances() -> Vec<InstanceSnapshot> {
        vec![
            instance("a", 1024, 1000, "z1"),
            instance("b", 2048, 500, "z1"),
            instance("c", 512, 2000, "z2"),
        ]
    }

    #[test]
    fn binpack_takes_the_least_remaining_that_fits() {
        let t = task(100, 400);
        check(
            three_instances(),
            &[t.clone(), t.clone(), t.clone(), t.clone()],
            "binpack:memory",
            "b a a c",
        );
        let t = task(400, 100);
        check(
            three_instances(),
            &[t.clone(), t.clone(), t.clone()],
            "binpack:cpu",
            "c a a",
        );
    }

    #[test]
    fn spread_by_instance_balances_the_group() {
        let t = task(10, 10);
        check(
            three_instances(),
            &vec![t; 6],
            "spread:instanceId",
            "a b c a b c",
        );
        // `host` is the same field.
        let t = task(10, 10);
        check(three_instances(), &vec![t; 3], "spread:host", "a b c");
        // Tasks already there count; other groups' tasks do not.
        let instances = vec![
            with_groups(instance("a", 1024, 1000, "z1"), &[("family:web", 2)]),
            with_groups(instance("b", 1024, 1000, "z1"), &[("family:db", 5)]),
            instance("c", 1024, 1000, "z2"),
        ];
        check(
            instances,
            &vec![task(10, 10); 5],
            "spread:instanceId",
            "b c b c a",
        );
    }

    #[test]
    fn spread_by_zone_then_instance_is_the_service_default() {
        let strategies = PlacementStrategy::service_default();
        assert_eq!(
            strategies,
            chain("spread:attribute:ecs.availability-zone spread:instanceId")
        );
        check(
            three_instances(),
            &vec![task(10, 10); 5],
            "spread:attribute:zone spread:instanceId",
            "a c b c a",
        );
    }

    #[test]
    fn later_rules_break_ties() {
        // Zones tie at first, then binpack on memory decides across both.
        check(
            three_instances(),
            &vec![task(10, 100); 3],
            "spread:attribute:zone binpack:memory",
            "b c b",
        );
        // Equal memory: spread by instance decides.
        let instances = vec![
            with_groups(instance("a", 1024, 1000, "z1"), &[("family:web", 1)]),
            instance("b", 1024, 1000, "z1"),
        ];
        check(
            instances,
            &[task(10, 100)],
            "binpack:memory spread:instanceId",
            "b",
        );
        // A chain that leaves ties takes the first in snapshot order.
        check(
            three_instances(),
            &[task(10, 10)],
            "spread:attribute:zone",
            "a",
        );
        check(three_instances(), &[task(10, 10)], "", "a");
    }

    #[test]
    fn random_picks_only_instances_that_fit() {
        let instances = vec![
            instance("a", 10, 1000, "z1"),
            instance("b", 1024, 1000, "z1"),
            instance("c", 10, 1000, "z2"),
        ];
        check(instances, &vec![task(100, 10); 3], "random", "b b b");
        assert_eq!(PlacementStrategy::run_task_default(), chain("random"));
    }

    #[test]
    fn draining_and_disconnected_instances_never_receive_tasks() {
        let mut draining = instance("d", 4096, 4096, "z1");
        draining.status = InstanceStatus::Draining;
        let mut disconnected = instance("x", 4096, 4096, "z1");
        disconnected.agent_connected = false;
        let small = instance("s", 100, 100, "z1");
        check(
            vec![draining, disconnected, small],
            &[task(50, 50), task(50, 50), task(50, 50)],
            "binpack:memory",
            "s s !x=Agent,s=Cpu",
        );
        let mut only_draining = instance("d", 4096, 4096, "z1");
        only_draining.status = InstanceStatus::Draining;
        check(vec![only_draining], &[task(1, 1)], "random", "!none");
        check(Vec::new(), &[task(1, 1)], "random", "!none");
    }

    #[test]
    fn failures_name_each_instance_and_its_first_broken_rule() {
        let mut gpu_less = instance("g", 4096, 4096, "z1");
        gpu_less.used_tcp_ports = vec![8080];
        let mut with_port = instance("p", 4096, 4096, "z1");
        with_port.used_tcp_ports = vec![80];
        let mut with_udp = instance("u", 4096, 4096, "z1");
        with_udp.used_udp_ports = vec![53];
        let mut t = task(100, 100);
        t.tcp_ports = vec![80];
        t.udp_ports = vec![53];
        t.resources.gpus = 1;
        check(
            vec![
                instance("c", 10, 4096, "z1"),
                instance("m", 4096, 10, "z1"),
                with_port,
                with_udp,
                gpu_less,
            ],
            &[t],
            "random",
            "!c=Cpu,m=Memory,p=Ports,u=PortsUdp,g=Gpu",
        );
    }

    #[test]
    fn static_host_ports_are_resources() {
        let mut t = task(10, 10);
        t.tcp_ports = vec![80];
        let instances = vec![
            instance("a", 1024, 1000, "z1"),
            instance("b", 1024, 1000, "z1"),
        ];
        check(
            instances,
            &vec![t; 3],
            "binpack:memory",
            "a b !a=Ports,b=Ports",
        );
        let mut udp = task(10, 10);
        udp.udp_ports = vec![53];
        let mut tcp_53 = task(10, 10);
        tcp_53.tcp_ports = vec![53];
        // TCP and UDP ports are separate resources.
        check(
            vec![instance("a", 1024, 1000, "z1")],
            &[udp.clone(), tcp_53, udp],
            "random",
            "a a !a=PortsUdp",
        );
    }

    #[test]
    fn gpus_are_resources() {
        let mut gpu_instance = instance("g", 4096, 4096, "z2");
        gpu_instance.remaining.gpus = 2;
        let mut t = task(10, 10);
        t.resources.gpus = 1;
        check(
            vec![instance("a", 4096, 4096, "z1"), gpu_instance],
            &vec![t; 3],
            "binpack:memory",
            "g g !a=Gpu,g=Gpu",
        );
    }

    #[test]
    fn member_of_filters_instances() {
        let t = member_of(task(10, 10), "attribute:zone == z2");
        check(three_instances(), &vec![t; 2], "spread:instanceId", "c c");
        let t = member_of(task(10, 10), "attribute:zone == z9");
        check(
            three_instances(),
            &[t],
            "random",
            "!a=MemberOf,b=MemberOf,c=MemberOf",
        );
        // Resources are checked before constraints.
        let t = member_of(task(600, 10), "attribute:zone == z1");
        check(three_instances(), &[t], "random", "a");
        let t = member_of(task(4000, 10), "attribute:zone == z1");
        check(three_instances(), &[t], "random", "!a=Cpu,b=Cpu,c=Cpu");
    }

    #[test]
    fn member_of_sees_the_tasks_placed_earlier_in_the_batch() {
        let mut db = task(10, 10);
        db.group = "database".into();
        let web = member_of(task(10, 10), "task:group == database");
        check(
            three_instances(),
            &[db.clone(), web.clone(), web],
            "spread:instanceId",
            "a a a",
        );
        let lonely = member_of(task(10, 10), "not(task:group == database)");
        check(three_instances(), &[db, lonely], "binpack:memory", "b a");
        let first_empty = member_of(task(10, 10), "runningTasksCount == 0");
        check(
            three_instances(),
            &vec![first_empty; 4],
            "binpack:memory",
            "b a c !a=MemberOf,b=MemberOf,c=MemberOf",
        );
    }

    #[test]
    fn distinct_instance_keeps_one_task_of_the_group_per_instance() {
        let mut t = task(10, 10);
        t.constraints.push(PlacementConstraint::DistinctInstance);
        let instances = vec![
            with_groups(instance("a", 1024, 1000, "z1"), &[("family:web", 1)]),
            instance("b", 1024, 1000, "z1"),
            instance("c", 1024, 1000, "z2"),
        ];
        check(
            instances,
            &vec![t; 3],
            "binpack:memory",
            "b c !a=DistinctInstance,b=DistinctInstance,c=DistinctInstance",
        );
    }

    #[test]
    fn required_attributes_must_be_present_with_their_value() {
        let mut capable = instance("k", 1024, 1000, "z1");
        capable
            .attributes
            .insert("ecs.capability.task-eni".into(), None);
        let mut t = task(10, 10);
        t.required_attributes.push(RequiredAttribute {
            name: "ecs.capability.task-eni".into(),
            value: None,
        });
        check(
            vec![instance("a", 1024, 1000, "z1"), capable],
            &[t],
            "binpack:memory",
            "k",
        );
        let mut t = task(10, 10);
        t.required_attributes.push(RequiredAttribute {
            name: "zone".into(),
            value: Some("z2".into()),
        });
        check(three_instances(), &[t.clone()], "random", "c");
        check(
            vec![instance("a", 1024, 1000, "z1")],
            &[t],
            "random",
            "!a=Attribute",
        );
    }

    #[test]
    fn instances_too_full_for_any_request_come_back_for_a_smaller_one() {
        let instances = vec![
            instance("a", 1024, 100, "z1"),
            instance("b", 1024, 1000, "z1"),
        ];
        check(
            instances,
            &[task(10, 200), task(10, 200), task(10, 50), task(10, 50)],
            "binpack:memory",
            "b b a a",
        );
    }

    #[test]
    fn chains_and_constraints_from_ecs_shapes() {
        assert!(PlacementStrategy::from_ecs("binpack", None).is_err());
        assert!(PlacementStrategy::from_ecs("binpack", Some("disk")).is_err());
        assert!(PlacementStrategy::from_ecs("spread", Some("attribute:")).is_err());
        assert!(PlacementStrategy::from_ecs("spread", Some("zone")).is_err());
        assert!(PlacementStrategy::from_ecs("pack", Some("cpu")).is_err());
        assert_eq!(
            PlacementStrategy::from_ecs("binpack", Some("MEMORY")).unwrap(),
            PlacementStrategy::Binpack(BinpackField::Memory)
        );
        assert_eq!(
            PlacementStrategy::from_ecs("random", Some("ignored")).unwrap(),
            PlacementStrategy::Random
        );
        for rule in chain("binpack:cpu spread:attribute:zone spread:instanceId random") {
            let (kind, field) = rule.to_ecs();
            assert_eq!(
                PlacementStrategy::from_ecs(kind, field.as_deref()).unwrap(),
                rule
            );
        }
        assert!(
            crate::validate_strategy_chain(&chain("random random random random random")).is_ok()
        );
        assert!(crate::validate_strategy_chain(&chain(
            "random random random random random random"
        ))
        .is_err());
        assert!(PlacementConstraint::from_ecs("distinctInstance", Some("x == y")).is_err());
        assert!(PlacementConstraint::from_ecs("memberOf", None).is_err());
        assert!(PlacementConstraint::from_ecs("sameInstance", None).is_err());
        let error =
            PlacementConstraint::from_ecs("memberOf", Some("attribute:x === y")).unwrap_err();
        assert!(error.to_string().contains("at position 14"), "{error}");
        assert_eq!(
            PlacementConstraint::from_ecs("memberOf", Some("attribute:x == y"))
                .unwrap()
                .to_ecs(),
            ("memberOf", Some("attribute:x == y"))
        );
        let eleven = vec![PlacementConstraint::DistinctInstance; 11];
        assert!(crate::validate_constraints(&eleven).is_err());
        assert!(crate::validate_constraints(&eleven[..10]).is_ok());
    }

    #[test]
    fn ecs_reason_strings() {
        let reasons = [
            (FailureReason::Agent, "AGENT"),
            (FailureReason::Attribute, "ATTRIBUTE"),
            (FailureReason::Cpu, "RESOURCE:CPU"),
            (FailureReason::Memory, "RESOURCE:MEMORY"),
            (FailureReason::Ports, "RESOURCE:PORTS"),
            (FailureReason::PortsUdp, "RESOURCE:PORTS_UDP"),
            (FailureReason::Gpu, "RESOURCE:GPU"),
            (
                FailureReason::MemberOf,
                "MemberOf placement constraint unsatisfied.",
            ),
        ];
        for (reason, text) in reasons {
            assert_eq!(reason.as_ecs_reason(), text);
        }
    }
}
