//! PutScheduledAction, DescribeScheduledActions, DeleteScheduledAction.

use api::records::{self, MAX_CAS_ATTEMPTS};
use api::{ApiError, RequestContext};
use application_autoscaling_wire as wire;

use super::{decode_token, page_size, require_ecs, require_ecs_dimension, target_ref};
use crate::records::{
    epoch_ms, epoch_s, get_target, namespace_records_prefix, new_scheduled_action_arn,
    scheduled_action_key, scheduled_actions_prefix, ScheduledActionRecord, SCHEDULED_ACTIONS,
};
use crate::validate::{Violations, SCHEDULED_ACTION_NAME_PATTERN};
use crate::{error, ApplicationAutoScaling};

/// AWS's quota: scheduled actions per scalable target.
pub(crate) const MAX_SCHEDULED_ACTIONS_PER_TARGET: usize = 200;

impl ApplicationAutoScaling {
    pub(crate) async fn put_scheduled_action(
        &self,
        ctx: &RequestContext,
        request: wire::PutScheduledActionRequest,
    ) -> Result<wire::PutScheduledActionResponse, ApiError> {
        let mut violations = Violations::new();
        violations.string(
            "ScheduledActionName",
            request.scheduled_action_name.as_deref(),
            1,
            256,
            Some(SCHEDULED_ACTION_NAME_PATTERN),
        );
        violations.resource_id("Schedule", request.schedule.as_deref());
        violations.resource_id("Timezone", request.timezone.as_deref());
        super::targets::check_target_members(&mut violations, request.resource_id.as_deref());
        violations.finish()?;
        let target = target_ref(
            request.service_namespace,
            request.resource_id.as_deref(),
            request.scalable_dimension,
        )?;
        let name = request.scheduled_action_name.clone().unwrap_or_default();
        let region = &ctx.region;
        let key = scheduled_action_key(
            region,
            target.namespace(),
            &target.resource_id,
            target.dimension(),
            &name,
        );
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(found_target) = get_target(
                self.store(),
                region,
                target.namespace(),
                target.dimension(),
                &target.resource_id,
            )
            .await?
            else {
                return Err(error::target_not_found(
                    target.namespace(),
                    &target.resource_id,
                    target.dimension(),
                ));
            };
            let existing: Option<records::Versioned<ScheduledActionRecord>> =
                records::get(self.store(), &key).await?;
            let old = existing.as_ref().map(|v| &v.value.action);
            if existing.is_none() {
                let count = records::list::<ScheduledActionRecord>(
                    self.store(),
                    &scheduled_actions_prefix(
                        region,
                        target.namespace(),
                        &target.resource_id,
                        target.dimension(),
                    ),
                )
                .await?
                .len();
                if count >= MAX_SCHEDULED_ACTIONS_PER_TARGET {
                    return Err(error::limit_exceeded(format!(
                        "A scalable target can have at most {MAX_SCHEDULED_ACTIONS_PER_TARGET} scheduled actions."
                    )));
                }
            }
            let action = merged_action(ctx, &request, old, &target.resource_id, &name)?;
            let record = ScheduledActionRecord {
                action,
                updated_ms: ctx.now_ms,
            };
            let target_key = crate::records::target_key(
                region,
                target.namespace(),
                target.dimension(),
                &target.resource_id,
            );
            let written = records::Write::new()
                .expect(&target_key, found_target.mod_revision)
                .expect(&key, existing.as_ref().map_or(0, |v| v.mod_revision))
                .put(&key, &record)
                .commit(self.store())
                .await?;
            if written {
                return Ok(wire::PutScheduledActionResponse {});
            }
        }
        Err(error::concurrent_update())
    }

    pub(crate) async fn describe_scheduled_actions(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeScheduledActionsRequest,
    ) -> Result<wire::DescribeScheduledActionsResponse, ApiError> {
        const OPERATION: &str = "DescribeScheduledActions";
        let mut violations = Violations::new();
        violations.count(
            "ScheduledActionNames",
            request.scheduled_action_names.as_ref().map(Vec::len),
            0,
            50,
        );
        for (index, name) in request.scheduled_action_names.iter().flatten().enumerate() {
            violations.resource_id(
                &format!("ScheduledActionNames.{}.member", index + 1),
                Some(name),
            );
        }
        violations.resource_id("ResourceId", request.resource_id.as_deref());
        violations.finish()?;
        let size = page_size(request.max_results, 50)?;
        let after = decode_token(OPERATION, request.next_token.as_deref())?;
        require_ecs(request.service_namespace)?;
        require_ecs_dimension(request.scalable_dimension)?;
        let names = request
            .scheduled_action_names
            .as_deref()
            .unwrap_or_default();
        let prefix = match &request.resource_id {
            Some(resource_id) => {
                scheduled_actions_prefix(&ctx.region, "ecs", resource_id, super::ECS_DESIRED_COUNT)
            }
            None => namespace_records_prefix(&ctx.region, SCHEDULED_ACTIONS, "ecs"),
        };
        let actions: Vec<(String, ScheduledActionRecord)> = records::list(self.store(), &prefix)
            .await?
            .into_iter()
            .filter(|(_, record): &(String, ScheduledActionRecord)| {
                let name = record
                    .action
                    .scheduled_action_name
                    .as_deref()
                    .unwrap_or_default();
                names.is_empty() || names.iter().any(|n| n == name)
            })
            .collect();
        let (page, next_token) = api::pagination::paginate(
            OPERATION,
            actions,
            |(key, _)| key.clone(),
            after.as_deref(),
            size,
            false,
        );
        Ok(wire::DescribeScheduledActionsResponse {
            scheduled_actions: Some(page.into_iter().map(|(_, r)| r.action).collect()),
            next_token,
        })
    }

    pub(crate) async fn delete_scheduled_action(
        &self,
        ctx: &RequestContext,
        request: wire::DeleteScheduledActionRequest,
    ) -> Result<wire::DeleteScheduledActionResponse, ApiError> {
        let mut violations = Violations::new();
        violations.resource_id(
            "ScheduledActionName",
            request.scheduled_action_name.as_deref(),
        );
        super::targets::check_target_members(&mut violations, request.resource_id.as_deref());
        violations.finish()?;
        let target = target_ref(
            request.service_namespace,
            request.resource_id.as_deref(),
            request.scalable_dimension,
        )?;
        let name = request.scheduled_action_name.unwrap_or_default();
        let key = scheduled_action_key(
            &ctx.region,
            target.namespace(),
            &target.resource_id,
            target.dimension(),
            &name,
        );
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(found): Option<records::Versioned<ScheduledActionRecord>> =
                records::get(self.store(), &key).await?
            else {
                return Err(error::scheduled_action_not_found(
                    target.namespace(),
                    &target.resource_id,
                    target.dimension(),
                    &name,
                ));
            };
            let txn = store::Txn::new()
                .when(store::Compare::mod_revision_is(&key, found.mod_revision))
                .then(store::Op::delete(&key));
            if self.store().txn(txn).await?.succeeded {
                return Ok(wire::DeleteScheduledActionResponse {});
            }
        }
        Err(error::concurrent_update())
    }
}

/// The action a PutScheduledAction request leaves: a new one, or the existing one with the
/// members given replaced (StartTime and EndTime are dropped when not given, as on AWS).
fn merged_action(
    ctx: &RequestContext,
    request: &wire::PutScheduledActionRequest,
    old: Option<&wire::ScheduledAction>,
    resource_id: &str,
    name: &str,
) -> Result<wire::ScheduledAction, ApiError> {
    let Some(schedule) = request
        .schedule
        .clone()
        .or_else(|| old.and_then(|a| a.schedule.clone()))
    else {
        return Err(error::validation(
            "Schedule is required when you create a scheduled action: at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(fields).",
        ));
    };
    let timezone = request
        .timezone
        .clone()
        .or_else(|| old.and_then(|a| a.timezone.clone()))
        .unwrap_or_else(|| "UTC".to_string());
    scaling::Schedule::parse(&schedule, Some(&timezone))
        .map_err(|err| error::validation(err.to_string()))?;
    let action = request
        .scalable_target_action
        .clone()
        .or_else(|| old.and_then(|a| a.scalable_target_action.clone()))
        .unwrap_or_default();
    match (action.min_capacity, action.max_capacity) {
        (None, None) => {
            return Err(error::validation(
                "At least one of minimum capacity and maximum capacity should be provided",
            ))
        }
        (Some(min), _) if min < 0 => {
            return Err(error::validation(format!(
                "Minimum capacity cannot be less than 0; {min} was given."
            )))
        }
        (_, Some(max)) if max < 0 => {
            return Err(error::validation(format!(
                "Maximum capacity cannot be less than 0; {max} was given."
            )))
        }
        (Some(min), Some(max)) if min > max => {
            return Err(error::validation(format!(
                "Minimum capacity ({min}) cannot be greater than maximum capacity ({max})."
            )))
        }
        _ => {}
    }
    if let (Some(start), Some(end)) = (request.start_time, request.end_time) {
        if epoch_ms(start) >= epoch_ms(end) {
            return Err(error::validation(
                "The start time of a scheduled action must be before its end time.",
            ));
        }
    }
    Ok(wire::ScheduledAction {
        scheduled_action_name: Some(name.to_string()),
        scheduled_action_arn: Some(
            old.and_then(|a| a.scheduled_action_arn.clone())
                .unwrap_or_else(|| new_scheduled_action_arn(ctx, "ecs", resource_id, name)),
        ),
        service_namespace: Some(wire::ServiceNamespace::Ecs),
        schedule: Some(schedule),
        timezone: Some(timezone),
        resource_id: Some(resource_id.to_string()),
        scalable_dimension: Some(wire::ScalableDimension::EcsServiceDesiredCount),
        start_time: request.start_time,
        end_time: request.end_time,
        scalable_target_action: Some(action),
        creation_time: old
            .and_then(|a| a.creation_time)
            .or(Some(epoch_s(ctx.now_ms))),
    })
}
