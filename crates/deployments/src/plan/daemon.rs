//! DAEMON: one task of the PRIMARY deployment on every container instance
//! that should run the daemon (ACTIVE, connected, not DRAINING, and
//! `daemon_eligible`). Tasks elsewhere are stopped at once. On each instance
//! an older deployment's task is replaced within minimumHealthyPercent
//! (counted over instances with a healthy task) and maximumPercent (the
//! default 0% / 100% stops the old task before the new one starts).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::plan::replica::{maximum_tasks, minimum_healthy};
use crate::plan::{is_running_healthy, Tick};
use crate::*;

fn eligible_instances<'a>(tick: &Tick<'a>) -> BTreeSet<&'a str> {
    if tick.service.status != ServiceStatus::Active {
        return BTreeSet::new();
    }
    tick.instances
        .values()
        .filter(|i| i.daemon_eligible && i.active && i.agent_connected && !i.draining)
        .map(|i| i.container_instance_id.as_str())
        .collect()
}

/// The number of instances that should run the daemon.
pub(super) fn desired_count(tick: &Tick<'_>) -> u32 {
    eligible_instances(tick).len() as u32
}

#[derive(Default)]
struct OnInstance<'a> {
    primary: Vec<&'a ObservedTask>,
    retiring: Vec<&'a ObservedTask>,
}

pub(super) fn decide(tick: &mut Tick<'_>, desired_count: u32) {
    let eligible = eligible_instances(tick);
    let config = tick.service.deployment_configuration;
    let min_healthy = minimum_healthy(desired_count, config.minimum_healthy_percent);
    let max_tasks = maximum_tasks(desired_count, config.maximum_percent).max(desired_count);
    let primary_id = tick.service.primary().id.clone();
    // What counts as healthy: RUNNING and healthy tasks, and for the
    // PRIMARY deployment only settled ones (see `replica`).
    let settled = tick.service.settled_tasks.clone();
    let counts_as_healthy = |t: &ObservedTask| {
        is_running_healthy(t)
            && (!Tick::in_deployment(t, &primary_id) || settled.contains(&t.task_id))
    };

    let mut by_instance: BTreeMap<&str, OnInstance<'_>> = BTreeMap::new();
    for task in tick.live_tasks() {
        let instance = task.container_instance_id.as_deref();
        match instance.filter(|id| eligible.contains(id)) {
            Some(id) => {
                let slot = by_instance.entry(id).or_default();
                if Tick::in_deployment(task, &primary_id) {
                    slot.primary.push(task);
                } else {
                    slot.retiring.push(task);
                }
            }
            None => {
                let reason = tick.scaling_reason(task);
                tick.stop(task, reason);
            }
        }
    }

    // One PRIMARY task per instance: keep the healthy one, else the oldest.
    for slot in by_instance.values_mut() {
        slot.primary.sort_by_key(|t| {
            (
                Reverse(counts_as_healthy(t)),
                t.created_at_ms,
                t.task_id.clone(),
            )
        });
        for task in slot.primary.split_off(slot.primary.len().min(1)) {
            let reason = tick.scaling_reason(task);
            tick.stop(task, reason);
        }
    }

    // Replace older deployments' tasks. An instance counts as healthy while
    // it has a healthy task; stopping an old task on an instance whose
    // PRIMARY task is healthy costs nothing.
    let mut healthy_instances = by_instance
        .values()
        .filter(|s| {
            s.primary
                .iter()
                .chain(&s.retiring)
                .any(|t| counts_as_healthy(t))
        })
        .count() as u32;
    let mut candidates: Vec<(&ObservedTask, bool)> = Vec::new();
    for slot in by_instance.values() {
        let covered = slot.primary.iter().any(|t| counts_as_healthy(t));
        for task in &slot.retiring {
            candidates.push((task, covered));
        }
    }
    candidates.sort_by_key(|(t, covered)| {
        (
            counts_as_healthy(t),
            !covered,
            Reverse(tick.deployment_index(t)),
            t.created_at_ms,
            t.task_id.clone(),
        )
    });
    for (task, covered) in candidates {
        let instance = task.container_instance_id.as_deref().unwrap_or_default();
        if counts_as_healthy(task) && !covered {
            let others_healthy = by_instance[instance].retiring.iter().any(|t| {
                t.task_id != task.task_id
                    && counts_as_healthy(t)
                    && !tick.stopped.contains(t.task_id.as_str())
            });
            if !others_healthy {
                if healthy_instances <= min_healthy {
                    continue;
                }
                healthy_instances -= 1;
            }
        }
        let reason = tick.scaling_reason(task);
        tick.stop(task, reason);
    }

    // Launch on instances without a PRIMARY task, within maximumPercent:
    // instances with no task left at all first.
    let mut counted_on: BTreeMap<&str, u32> = BTreeMap::new();
    for task in &tick.tasks {
        if tick.is_counted(task) {
            if let Some(id) = task.container_instance_id.as_deref() {
                *counted_on.entry(id).or_default() += 1;
            }
        }
    }
    let mut targets: Vec<&str> = eligible
        .iter()
        .copied()
        .filter(|id| by_instance.get(id).is_none_or(|s| s.primary.is_empty()))
        .collect();
    targets.sort_by_key(|id| (counted_on.get(id).copied().unwrap_or(0) > 0, *id));
    if !tick.launch_allowed() {
        return;
    }
    let room = max_tasks.saturating_sub(tick.counted_total()) as usize;
    for id in targets.into_iter().take(room) {
        tick.launch(1, Some(id.to_string()));
    }
}
