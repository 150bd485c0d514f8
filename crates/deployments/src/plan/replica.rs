//! REPLICA: keep `desiredCount` tasks of the PRIMARY deployment, replacing
//! the tasks of older deployments (and those on DRAINING container
//! instances) within minimumHealthyPercent and maximumPercent.

use std::cmp::Reverse;

use crate::plan::{is_running_healthy, Host, Tick};
use crate::{ObservedTask, ServiceStatus};

/// `ceil(desired * minimumHealthyPercent / 100)`: ECS rounds the minimum up.
pub(super) fn minimum_healthy(desired_count: u32, percent: u32) -> u32 {
    (u64::from(desired_count) * u64::from(percent)).div_ceil(100) as u32
}

/// `floor(desired * maximumPercent / 100)`: ECS rounds the maximum down.
pub(super) fn maximum_tasks(desired_count: u32, percent: u32) -> u32 {
    (u64::from(desired_count) * u64::from(percent) / 100) as u32
}

pub(super) fn decide(tick: &mut Tick<'_>, desired_count: u32) {
    let config = tick.service.deployment_configuration;
    let min_healthy = minimum_healthy(desired_count, config.minimum_healthy_percent);
    let max_tasks = maximum_tasks(desired_count, config.maximum_percent).max(desired_count);
    let primary_id = tick.service.primary().id.clone();
    // What counts toward minimumHealthyPercent: RUNNING and healthy tasks,
    // and for the PRIMARY deployment only settled ones (RUNNING and healthy
    // through their settle period), so that tasks that crash soon after
    // starting never let the old ones go.
    let settled = tick.service.settled_tasks.clone();
    let counts_as_healthy = |t: &ObservedTask| {
        is_running_healthy(t)
            && (!Tick::in_deployment(t, &primary_id) || settled.contains(&t.task_id))
    };

    let live = tick.live_tasks();
    let (mut keep, mut retiring): (Vec<_>, Vec<_>) = live
        .into_iter()
        .partition(|t| Tick::in_deployment(t, &primary_id) && tick.host(t) != Host::Draining);

    // Task scale-in protection holds while the service is ACTIVE: deleting
    // the service stops its tasks whatever their protection.
    let now_ms = tick.now_ms;
    let honour_protection = tick.service.status == ServiceStatus::Active;
    let protected = |t: &ObservedTask| honour_protection && t.is_scale_in_protected(now_ms);

    // Scale in: PRIMARY tasks beyond the desired count go at once, the ones
    // that are not healthy first, then the newest; never a protected one.
    // Protected tasks are kept first, so the unprotected ones make up the
    // excess; protected tasks still in excess stay until their protection
    // ends (the service runs more than its desired count meanwhile).
    if keep.len() as u32 > desired_count {
        keep.sort_by_key(|t| {
            (
                Reverse(protected(t)),
                Reverse(counts_as_healthy(t)),
                t.created_at_ms,
                t.task_id.clone(),
            )
        });
        let excess = keep.split_off(desired_count as usize);
        for task in excess {
            if protected(task) {
                keep.push(task);
                tick.wake_at(task.scale_in_protected_until_ms.unwrap_or(now_ms));
                continue;
            }
            let reason = tick.scaling_reason(task);
            tick.stop(task, reason);
        }
    }

    // Launch what is missing, within maximumPercent.
    let wanted = desired_count.saturating_sub(keep.len() as u32);
    let room = max_tasks.saturating_sub(tick.counted_total());
    if wanted > 0 && tick.launch_allowed() {
        tick.launch(wanted.min(room), None);
    }

    // Stop retiring tasks: the ones that are not healthy at once, the
    // healthy ones while minimumHealthyPercent allows, oldest deployment
    // first.
    let mut healthy_count = keep.iter().filter(|t| counts_as_healthy(t)).count() as u32
        + retiring.iter().filter(|t| counts_as_healthy(t)).count() as u32;
    retiring.sort_by_key(|t| {
        (
            counts_as_healthy(t),
            Reverse(tick.deployment_index(t)),
            t.created_at_ms,
            t.task_id.clone(),
        )
    });
    let mut blocked = false;
    for task in retiring {
        // A deployment replaces a protected task of an older deployment only
        // once its protection ends (tasks on DRAINING instances go anyway).
        if protected(task) && tick.host(task) != Host::Draining {
            tick.wake_at(task.scale_in_protected_until_ms.unwrap_or(now_ms));
            continue;
        }
        if counts_as_healthy(task) {
            if healthy_count <= min_healthy {
                blocked = true;
                continue;
            }
            healthy_count -= 1;
        }
        let reason = tick.scaling_reason(task);
        tick.stop(task, reason);
    }

    // Neither a launch nor a stop is possible and nothing is in flight: the
    // deployment configuration leaves no room (e.g. 100% / 100%).
    let in_flight = tick
        .tasks
        .iter()
        .any(|t| tick.is_counted(t) && !(tick.is_healthy(t) && counts_as_healthy(t)));
    if blocked && wanted > 0 && room == 0 && tick.launch_allowed() && !in_flight {
        tick.blocked_by_configuration = true;
    }
}
