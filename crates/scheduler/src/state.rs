//! The cluster as the scheduler keeps it between decisions: what each
//! instance has left, which tasks it hosts, and the indexes that make a
//! decision cost O(log n) instead of a scan of every instance.
//!
//! Indexes are built on first use and kept up to date by every placement:
//! - an *ordered index* holds the schedulable instances of each partition
//!   (see below) in a `BTreeSet` of `(key, instance)`, where the key is what
//!   the chain's first non-attribute rule minimises: remaining CPU or memory
//!   (binpack), tasks of one group on the instance (spread by instanceId),
//!   or nothing (snapshot order);
//! - a *partitioning* splits the instances by the values of the attributes
//!   the chain spreads over first (`attribute:ecs.availability-zone`), with
//!   per-group task counts per value.
//!
//! Remaining resources only ever shrink in a `ClusterState` (it places
//! tasks, it never stops them). So an instance that cannot fit the smallest
//! request seen so far can never fit any request seen so far: it is evicted
//! from the ordered indexes, and put back only if a smaller request comes.

use std::collections::{BTreeMap, BTreeSet};

use crate::query::QueryTarget;
use crate::snapshot::{
    BinpackField, InstanceIndex, InstanceSnapshot, InstanceStatus, PlacementConstraint,
    PlacementStrategy, Resources, SpreadField, TaskRequest,
};

/// A task group, interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GroupId(pub(crate) u32);

/// Marks an instance that belongs to no partition (not schedulable).
pub(crate) const NO_PARTITION: u32 = u32::MAX;
/// Marks a constraint evaluated at each check.
pub(crate) const NO_VERDICTS: u32 = u32::MAX;
/// Values of a verdict column.
pub(crate) const VERDICT_TRUE: u32 = 1;
const VERDICT_FALSE: u32 = 2;

pub(crate) struct InstanceRecord {
    pub(crate) arn: String,
    pub(crate) ec2_instance_id: Option<String>,
    pub(crate) status: InstanceStatus,
    pub(crate) agent_connected: bool,
    pub(crate) agent_version: Option<String>,
    pub(crate) registered_at_ms: i64,
    pub(crate) running_tasks_count: u32,
    /// Sorted by name.
    pub(crate) attributes: Vec<(String, Option<String>)>,
    /// Sorted, without duplicates.
    pub(crate) tcp_ports: Vec<u16>,
    pub(crate) udp_ports: Vec<u16>,
    /// Sorted by group.
    pub(crate) groups: Vec<(GroupId, u32)>,
}

impl InstanceRecord {
    pub(crate) fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|at| self.attributes[at].1.as_deref())
    }

    pub(crate) fn group_count(&self, group: GroupId) -> u32 {
        self.groups
            .binary_search_by_key(&group, |(g, _)| *g)
            .map_or(0, |at| self.groups[at].1)
    }
}

/// The values one attribute takes across the cluster (or whether an
/// expression holds, for a verdict column).
pub(crate) struct AttributeColumn {
    /// Per instance: 0 when the instance lacks the attribute, else the id
    /// of its value.
    pub(crate) value_of: Vec<u32>,
    pub(crate) value_count: usize,
}

/// The schedulable instances split by the values of a list of attributes.
pub(crate) struct Partitioning {
    pub(crate) columns: Vec<usize>,
    /// Per instance: its partition, or [`NO_PARTITION`].
    pub(crate) partition_of: Vec<u32>,
    /// Per partition: the value id of each column.
    pub(crate) level_values: Vec<Vec<u32>>,
    /// Per partition: its instances, ascending.
    pub(crate) members: Vec<Vec<u32>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Order {
    Position,
    Remaining(BinpackField),
    GroupCount(GroupId),
}

pub(crate) struct OrderedIndex {
    pub(crate) partitioning: usize,
    pub(crate) order: Order,
    /// Per partition: `(key, instance)`.
    pub(crate) sets: Vec<BTreeSet<(u32, u32)>>,
    /// Instances taken out because they cannot fit the smallest request.
    pub(crate) evicted: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlanOrder {
    Index(usize),
    Random,
}

/// How one strategy chain is carried out for one group.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// Its first `spread_levels` columns are the attributes the chain
    /// spreads over first; the others are verdict columns.
    pub(crate) partitioning: usize,
    pub(crate) spread_levels: usize,
    pub(crate) order: PlanOrder,
    /// Rules from this position on break the ties the index leaves.
    pub(crate) tail_start: usize,
}

pub(crate) struct CachedPlan {
    strategies: Vec<PlacementStrategy>,
    verdicts: Vec<u32>,
    plan: Plan,
}

/// The scheduler's view of one cluster. Build it from a snapshot, then
/// place tasks with [`place`](crate::place); each placement updates it.
pub struct ClusterState {
    pub(crate) records: Vec<InstanceRecord>,
    pub(crate) remaining_cpu: Vec<u32>,
    pub(crate) remaining_memory: Vec<u32>,
    pub(crate) remaining_gpus: Vec<u32>,
    /// ACTIVE with the agent connected.
    pub(crate) schedulable: Vec<bool>,
    pub(crate) active_count: usize,
    group_ids: BTreeMap<String, GroupId>,
    group_names: Vec<String>,
    pub(crate) columns: Vec<AttributeColumn>,
    column_ids: BTreeMap<String, usize>,
    /// (column, group) → tasks of the group per value id.
    pub(crate) value_counts: BTreeMap<(usize, GroupId), Vec<u32>>,
    pub(crate) partitionings: Vec<Partitioning>,
    partitioning_ids: BTreeMap<Vec<usize>, usize>,
    pub(crate) indexes: Vec<OrderedIndex>,
    index_ids: BTreeMap<(usize, Order), usize>,
    plans: BTreeMap<GroupId, Vec<CachedPlan>>,
    /// Verdicts of expressions that do not depend on tasks, per instance,
    /// computed once per expression.
    pub(crate) static_verdicts: Vec<Vec<bool>>,
    verdict_ids: BTreeMap<String, u32>,
    /// Component-wise minimum of the requests placed so far.
    pub(crate) request_floor: Resources,
    /// Reused buffers, so a decision allocates nothing.
    pub(crate) scratch_partitions: Vec<([u32; crate::MAX_STRATEGY_RULES], u32)>,
    pub(crate) scratch_candidates: Vec<u32>,
    pub(crate) scratch_verdicts: Vec<u32>,
}

impl ClusterState {
    /// Takes the cluster's container instances; their positions become the
    /// [`InstanceIndex`]es of the placements.
    pub fn new(instances: Vec<InstanceSnapshot>) -> ClusterState {
        let count = instances.len();
        let mut state = ClusterState {
            records: Vec::with_capacity(count),
            remaining_cpu: Vec::with_capacity(count),
            remaining_memory: Vec::with_capacity(count),
            remaining_gpus: Vec::with_capacity(count),
            schedulable: Vec::with_capacity(count),
            active_count: 0,
            group_ids: BTreeMap::new(),
            group_names: Vec::new(),
            columns: Vec::new(),
            column_ids: BTreeMap::new(),
            value_counts: BTreeMap::new(),
            partitionings: Vec::new(),
            partitioning_ids: BTreeMap::new(),
            indexes: Vec::new(),
            index_ids: BTreeMap::new(),
            plans: BTreeMap::new(),
            request_floor: Resources {
                cpu_units: u32::MAX,
                memory_mib: u32::MAX,
                gpus: u32::MAX,
            },
            static_verdicts: Vec::new(),
            verdict_ids: BTreeMap::new(),
            scratch_partitions: Vec::new(),
            scratch_candidates: Vec::new(),
            scratch_verdicts: Vec::new(),
        };
        for instance in instances {
            let mut groups: Vec<(GroupId, u32)> = instance
                .task_groups
                .iter()
                .filter(|(_, count)| **count > 0)
                .map(|(name, count)| (state.intern_group(name), *count))
                .collect();
            groups.sort_unstable();
            let active = instance.status == InstanceStatus::Active;
            state.active_count += usize::from(active);
            state.schedulable.push(active && instance.agent_connected);
            state.remaining_cpu.push(instance.remaining.cpu_units);
            state.remaining_memory.push(instance.remaining.memory_mib);
            state.remaining_gpus.push(instance.remaining.gpus);
            state.records.push(InstanceRecord {
                arn: instance.container_instance_arn,
                ec2_instance_id: instance.ec2_instance_id,
                status: instance.status,
                agent_connected: instance.agent_connected,
                agent_version: instance.agent_version,
                registered_at_ms: instance.registered_at_ms,
                running_tasks_count: instance.running_tasks_count,
                attributes: instance.attributes.into_iter().collect(),
                tcp_ports: sorted_ports(instance.used_tcp_ports),
                udp_ports: sorted_ports(instance.used_udp_ports),
                groups,
            });
        }
        state
    }

    /// The number of container instances.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn container_instance_arn(&self, instance: InstanceIndex) -> &str {
        &self.records[instance.get()].arn
    }

    /// What the instance has left after the tasks placed so far.
    pub fn remaining(&self, instance: InstanceIndex) -> Resources {
        let i = instance.get();
        Resources {
            cpu_units: self.remaining_cpu[i],
            memory_mib: self.remaining_memory[i],
            gpus: self.remaining_gpus[i],
        }
    }

    pub fn used_tcp_ports(&self, instance: InstanceIndex) -> &[u16] {
        &self.records[instance.get()].tcp_ports
    }

    pub fn used_udp_ports(&self, instance: InstanceIndex) -> &[u16] {
        &self.records[instance.get()].udp_ports
    }

    /// Tasks of `group` on the instance, from the snapshot and placed since.
    pub fn task_count(&self, instance: InstanceIndex, group: &str) -> u32 {
        self.group_ids
            .get(group)
            .map_or(0, |g| self.records[instance.get()].group_count(*g))
    }

    /// The instance as the cluster query language sees it, with the tasks
    /// placed so far.
    pub fn view(&self, instance: InstanceIndex) -> InstanceView<'_> {
        InstanceView {
            state: self,
            index: instance.get(),
        }
    }

    pub(crate) fn intern_group(&mut self, name: &str) -> GroupId {
        if let Some(id) = self.group_ids.get(name) {
            return *id;
        }
        let id = GroupId(self.group_names.len() as u32);
        self.group_names.push(name.to_string());
        self.group_ids.insert(name.to_string(), id);
        id
    }

    pub(crate) fn is_dead(&self, i: usize) -> bool {
        self.remaining_cpu[i] < self.request_floor.cpu_units
            || self.remaining_memory[i] < self.request_floor.memory_mib
            || self.remaining_gpus[i] < self.request_floor.gpus
    }

    /// Lowers the eviction floor to cover `request`; instances evicted under
    /// the old floor that may fit the new one go back into their indexes.
    pub(crate) fn lower_request_floor(&mut self, request: &Resources) {
        let floor = Resources {
            cpu_units: self.request_floor.cpu_units.min(request.cpu_units),
            memory_mib: self.request_floor.memory_mib.min(request.memory_mib),
            gpus: self.request_floor.gpus.min(request.gpus),
        };
        if floor == self.request_floor {
            return;
        }
        self.request_floor = floor;
        for x in 0..self.indexes.len() {
            let evicted = std::mem::take(&mut self.indexes[x].evicted);
            let mut still_evicted = Vec::new();
            for i in evicted {
                if self.is_dead(i as usize) {
                    still_evicted.push(i);
                } else {
                    let key = self.order_key(self.indexes[x].order, i as usize);
                    let partition =
                        self.partitionings[self.indexes[x].partitioning].partition_of[i as usize];
                    self.indexes[x].sets[partition as usize].insert((key, i));
                }
            }
            self.indexes[x].evicted = still_evicted;
        }
    }

    pub(crate) fn order_key(&self, order: Order, i: usize) -> u32 {
        match order {
            Order::Position => 0,
            Order::Remaining(BinpackField::Cpu) => self.remaining_cpu[i],
            Order::Remaining(BinpackField::Memory) => self.remaining_memory[i],
            Order::GroupCount(group) => self.records[i].group_count(group),
        }
    }

    /// For each of the task's constraints, the id of its precomputed
    /// verdicts (a `memberOf` that does not depend on tasks), else
    /// [`NO_VERDICTS`]; written into `ids`.
    pub(crate) fn resolve_verdicts(&mut self, task: &TaskRequest, ids: &mut Vec<u32>) {
        ids.clear();
        for constraint in &task.constraints {
            let id = match constraint {
                PlacementConstraint::MemberOf(expr) if !expr.depends_on_tasks() => {
                    match self.verdict_ids.get(expr.source()) {
                        Some(id) => *id,
                        None => {
                            let verdicts = (0..self.records.len())
                                .map(|i| expr.matches(&self.view(InstanceIndex(i as u32))))
                                .collect();
                            let id = self.static_verdicts.len() as u32;
                            self.static_verdicts.push(verdicts);
                            self.verdict_ids.insert(expr.source().to_string(), id);
                            id
                        }
                    }
                }
                _ => NO_VERDICTS,
            };
            ids.push(id);
        }
    }

    pub(crate) fn ensure_column(&mut self, attribute: &str) -> usize {
        if let Some(id) = self.column_ids.get(attribute) {
            return *id;
        }
        let mut value_ids: BTreeMap<Option<&str>, u32> = BTreeMap::new();
        let value_of = self
            .records
            .iter()
            .map(|record| match record.attribute(attribute) {
                None => 0,
                Some(value) => {
                    let next = value_ids.len() as u32 + 1;
                    *value_ids.entry(value).or_insert(next)
                }
            })
            .collect();
        let value_count = value_ids.len() + 1;
        let id = self.columns.len();
        self.columns.push(AttributeColumn {
            value_of,
            value_count,
        });
        self.column_ids.insert(attribute.to_string(), id);
        id
    }

    pub(crate) fn ensure_value_counts(&mut self, column: usize, group: GroupId) {
        if self.value_counts.contains_key(&(column, group)) {
            return;
        }
        let values = &self.columns[column];
        let mut counts = vec![0u32; values.value_count];
        for (i, record) in self.records.iter().enumerate() {
            counts[values.value_of[i] as usize] += record.group_count(group);
        }
        self.value_counts.insert((column, group), counts);
    }

    pub(crate) fn ensure_partitioning(&mut self, columns: &[usize]) -> usize {
        if let Some(id) = self.partitioning_ids.get(columns) {
            return *id;
        }
        let mut ids: BTreeMap<Vec<u32>, u32> = BTreeMap::new();
        let mut partitioning = Partitioning {
            columns: columns.to_vec(),
            partition_of: vec![NO_PARTITION; self.records.len()],
            level_values: Vec::new(),
            members: Vec::new(),
        };
        for i in 0..self.records.len() {
            if !self.schedulable[i] {
                continue;
            }
            let values: Vec<u32> = columns
                .iter()
                .map(|c| self.columns[*c].value_of[i])
                .collect();
            let next = ids.len() as u32;
            let partition = *ids.entry(values.clone()).or_insert(next);
            if partition == next {
                partitioning.level_values.push(values);
                partitioning.members.push(Vec::new());
            }
            partitioning.partition_of[i] = partition;
            partitioning.members[partition as usize].push(i as u32);
        }
        let id = self.partitionings.len();
        self.partitionings.push(partitioning);
        self.partitioning_ids.insert(columns.to_vec(), id);
        id
    }

    pub(crate) fn ensure_index(&mut self, partitioning: usize, order: Order) -> usize {
        if let Some(id) = self.index_ids.get(&(partitioning, order)) {
            return *id;
        }
        let partition_count = self.partitionings[partitioning].members.len();
        let mut index = OrderedIndex {
            partitioning,
            order,
            sets: vec![BTreeSet::new(); partition_count],
            evicted: Vec::new(),
        };
        for (partition, members) in self.partitionings[partitioning].members.iter().enumerate() {
            for &i in members {
                if self.is_dead(i as usize) {
                    index.evicted.push(i);
                } else {
                    index.sets[partition].insert((self.order_key(order, i as usize), i));
                }
            }
        }
        let id = self.indexes.len();
        self.indexes.push(index);
        self.index_ids.insert((partitioning, order), id);
        id
    }

    /// The plan for a chain, a group and the precomputed verdicts of the
    /// task's constraints, built (with its indexes) on first use.
    pub(crate) fn plan(
        &mut self,
        group: GroupId,
        strategies: &[PlacementStrategy],
        verdicts: &[u32],
    ) -> Plan {
        if let Some(plans) = self.plans.get(&group) {
            if let Some(cached) = plans
                .iter()
                .find(|c| c.strategies == strategies && c.verdicts == verdicts)
            {
                return cached.plan;
            }
        }
        let names: Vec<&str> = strategies
            .iter()
            .map_while(|strategy| match strategy {
                PlacementStrategy::Spread(SpreadField::Attribute(name)) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let mut columns: Vec<usize> = Vec::new();
        for name in names {
            let column = self.ensure_column(name);
            self.ensure_value_counts(column, group);
            columns.push(column);
        }
        let spread_levels = columns.len();
        // Instances a static memberOf rejects go to partitions no decision
        // looks at.
        for id in verdicts.iter().filter(|id| **id != NO_VERDICTS) {
            columns.push(self.ensure_verdict_column(*id));
        }
        let partitioning = self.ensure_partitioning(&columns);
        let (order, tail_start) = match strategies.get(spread_levels) {
            None => (
                PlanOrder::Index(self.ensure_index(partitioning, Order::Position)),
                spread_levels,
            ),
            Some(PlacementStrategy::Random) => (PlanOrder::Random, spread_levels + 1),
            Some(PlacementStrategy::Binpack(field)) => (
                PlanOrder::Index(self.ensure_index(partitioning, Order::Remaining(*field))),
                spread_levels + 1,
            ),
            Some(PlacementStrategy::Spread(_)) => (
                PlanOrder::Index(self.ensure_index(partitioning, Order::GroupCount(group))),
                spread_levels + 1,
            ),
        };
        let plan = Plan {
            partitioning,
            spread_levels,
            order,
            tail_start,
        };
        self.plans.entry(group).or_default().push(CachedPlan {
            strategies: strategies.to_vec(),
            verdicts: verdicts.to_vec(),
            plan,
        });
        plan
    }

    /// A column with value [`VERDICT_TRUE`] where the precomputed
    /// expression holds, [`VERDICT_FALSE`] elsewhere.
    fn ensure_verdict_column(&mut self, verdicts: u32) -> usize {
        // No attribute name contains a NUL.
        let key = format!("\0verdict:{verdicts}");
        if let Some(id) = self.column_ids.get(&key) {
            return *id;
        }
        let value_of = self.static_verdicts[verdicts as usize]
            .iter()
            .map(|holds| if *holds { VERDICT_TRUE } else { VERDICT_FALSE })
            .collect();
        let id = self.columns.len();
        self.columns.push(AttributeColumn {
            value_of,
            value_count: 3,
        });
        self.column_ids.insert(key, id);
        id
    }

    /// Records a placement: resources, ports, group counts and every index.
    pub(crate) fn commit(&mut self, i: usize, task: &TaskRequest, group: GroupId) {
        let old_cpu = self.remaining_cpu[i];
        let old_memory = self.remaining_memory[i];
        let new_cpu = old_cpu - task.resources.cpu_units;
        let new_memory = old_memory - task.resources.memory_mib;
        self.remaining_cpu[i] = new_cpu;
        self.remaining_memory[i] = new_memory;
        self.remaining_gpus[i] -= task.resources.gpus;
        let record = &mut self.records[i];
        for port in &task.tcp_ports {
            if let Err(at) = record.tcp_ports.binary_search(port) {
                record.tcp_ports.insert(at, *port);
            }
        }
        for port in &task.udp_ports {
            if let Err(at) = record.udp_ports.binary_search(port) {
                record.udp_ports.insert(at, *port);
            }
        }
        record.running_tasks_count += 1;
        let old_count = match record.groups.binary_search_by_key(&group, |(g, _)| *g) {
            Ok(at) => {
                record.groups[at].1 += 1;
                record.groups[at].1 - 1
            }
            Err(at) => {
                record.groups.insert(at, (group, 1));
                0
            }
        };
        let instance = i as u32;
        for index in &mut self.indexes {
            let (old_key, new_key) = match index.order {
                Order::Position => continue,
                Order::Remaining(BinpackField::Cpu) => (old_cpu, new_cpu),
                Order::Remaining(BinpackField::Memory) => (old_memory, new_memory),
                Order::GroupCount(g) if g == group => (old_count, old_count + 1),
                Order::GroupCount(_) => continue,
            };
            if old_key == new_key {
                continue;
            }
            let partition = self.partitionings[index.partitioning].partition_of[i];
            if partition == NO_PARTITION {
                continue;
            }
            let set = &mut index.sets[partition as usize];
            // Absent means evicted: it comes back with its current key.
            if set.remove(&(old_key, instance)) {
                set.insert((new_key, instance));
            }
        }
        for (column_id, column) in self.columns.iter().enumerate() {
            if let Some(counts) = self.value_counts.get_mut(&(column_id, group)) {
                counts[column.value_of[i] as usize] += 1;
            }
        }
    }
}

fn sorted_ports(mut ports: Vec<u16>) -> Vec<u16> {
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// One instance of a [`ClusterState`] as the cluster query language sees it.
pub struct InstanceView<'a> {
    state: &'a ClusterState,
    index: usize,
}

impl QueryTarget for InstanceView<'_> {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.state.records[self.index].attribute(name)
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.state.records[self.index].ec2_instance_id.as_deref()
    }
    fn agent_connected(&self) -> bool {
        self.state.records[self.index].agent_connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.state.records[self.index].agent_version.as_deref()
    }
    fn registered_at_ms(&self) -> i64 {
        self.state.records[self.index].registered_at_ms
    }
    fn running_tasks_count(&self) -> u32 {
        self.state.records[self.index].running_tasks_count
    }
    fn any_task_group(&self, predicate: &mut dyn FnMut(&str) -> bool) -> bool {
        self.state.records[self.index]
            .groups
            .iter()
            .any(|(group, count)| {
                *count > 0 && predicate(&self.state.group_names[group.0 as usize])
            })
    }
}
