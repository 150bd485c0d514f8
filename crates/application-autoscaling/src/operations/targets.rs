//! RegisterScalableTarget, DescribeScalableTargets, DeregisterScalableTarget.

use api::records::{self, MAX_CAS_ATTEMPTS};
use api::{ApiError, RequestContext};
use application_autoscaling_wire as wire;
use store::{Compare, Op, Txn};

use super::{decode_token, page_size, require_ecs, require_ecs_dimension, target_ref, TargetRef};
use crate::records::{
    ecs_service_linked_role_arn, epoch_s, get_target, list_targets, new_scalable_target_arn,
    target_key, PolicyRecord, ScalableTargetRecord, ScheduledActionRecord,
};
use crate::validate::Violations;
use crate::{error, ApplicationAutoScaling};

/// AWS's quota: scalable targets per resource type (ECS services) per account and region.
pub(crate) const MAX_SCALABLE_TARGETS: usize = 3000;
/// Tags on one resource.
pub(crate) const MAX_TAGS: usize = 50;

/// The (model-validated) target members of a request.
pub(crate) fn check_target_members(violations: &mut Violations, resource_id: Option<&str>) {
    violations.resource_id("ResourceId", resource_id);
}

impl ApplicationAutoScaling {
    pub(crate) async fn register_scalable_target(
        &self,
        ctx: &RequestContext,
        request: wire::RegisterScalableTargetRequest,
    ) -> Result<wire::RegisterScalableTargetResponse, ApiError> {
        let mut violations = Violations::new();
        check_target_members(&mut violations, request.resource_id.as_deref());
        violations.resource_id("RoleARN", request.role_arn.as_deref());
        violations.tags("Tags", request.tags.as_ref());
        violations.finish()?;
        let target = target_ref(
            request.service_namespace,
            request.resource_id.as_deref(),
            request.scalable_dimension,
        )?;
        if let Some(tags) = &request.tags {
            super::tags::check_tag_keys(tags.keys())?;
        }
        if !self.ecs_service_is_active(ctx, &target).await? {
            return Err(error::validation(format!(
                "ECS service doesn't exist: {}",
                target.resource_id
            )));
        }
        for _ in 0..MAX_CAS_ATTEMPTS {
            let existing = get_target(
                self.store(),
                &ctx.region,
                target.namespace(),
                target.dimension(),
                &target.resource_id,
            )
            .await?;
            let (record, revision) = match existing {
                Some(found) => (updated_target(found.value, &request)?, found.mod_revision),
                None => {
                    let count = list_targets(self.store(), &ctx.region, target.namespace())
                        .await?
                        .len();
                    if count >= MAX_SCALABLE_TARGETS {
                        return Err(error::limit_exceeded(format!(
                            "You have reached the maximum of {MAX_SCALABLE_TARGETS} scalable targets for ECS services in this account and Region."
                        )));
                    }
                    (new_target(ctx, &target, &request)?, 0)
                }
            };
            if record.tags.len() > MAX_TAGS {
                return Err(error::too_many_tags(format!(
                    "A scalable target can have at most {MAX_TAGS} tags; this one would have {}.",
                    record.tags.len()
                )));
            }
            let key = target_key(
                &ctx.region,
                target.namespace(),
                target.dimension(),
                &target.resource_id,
            );
            let written = records::Write::new()
                .expect(&key, revision)
                .put(&key, &record)
                .commit(self.store())
                .await?;
            if written {
                return Ok(wire::RegisterScalableTargetResponse {
                    scalable_target_arn: record.target.scalable_target_arn,
                });
            }
        }
        Err(error::concurrent_update())
    }

    pub(crate) async fn describe_scalable_targets(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeScalableTargetsRequest,
    ) -> Result<wire::DescribeScalableTargetsResponse, ApiError> {
        const OPERATION: &str = "DescribeScalableTargets";
        let mut violations = Violations::new();
        let ids = request.resource_ids.as_deref().unwrap_or_default();
        violations.count(
            "ResourceIds",
            request.resource_ids.as_ref().map(Vec::len),
            0,
            50,
        );
        for (index, id) in ids.iter().enumerate() {
            violations.resource_id(&format!("ResourceIds.{}.member", index + 1), Some(id));
        }
        violations.finish()?;
        let size = page_size(request.max_results, 50)?;
        let after = decode_token(OPERATION, request.next_token.as_deref())?;
        require_ecs(request.service_namespace)?;
        require_ecs_dimension(request.scalable_dimension)?;
        let targets: Vec<(String, wire::ScalableTarget)> =
            list_targets(self.store(), &ctx.region, "ecs")
                .await?
                .into_iter()
                .map(|v| v.value)
                .filter(|t| ids.is_empty() || ids.iter().any(|id| id == t.resource_id()))
                .map(|t| {
                    (
                        target_key(&ctx.region, t.namespace(), t.dimension(), t.resource_id()),
                        t.target,
                    )
                })
                .collect();
        let (page, next_token) = api::pagination::paginate(
            OPERATION,
            targets,
            |(key, _)| key.clone(),
            after.as_deref(),
            size,
            false,
        );
        Ok(wire::DescribeScalableTargetsResponse {
            scalable_targets: Some(page.into_iter().map(|(_, t)| t).collect()),
            next_token,
        })
    }

    pub(crate) async fn deregister_scalable_target(
        &self,
        ctx: &RequestContext,
        request: wire::DeregisterScalableTargetRequest,
    ) -> Result<wire::DeregisterScalableTargetResponse, ApiError> {
        let mut violations = Violations::new();
        check_target_members(&mut violations, request.resource_id.as_deref());
        violations.finish()?;
        let target = target_ref(
            request.service_namespace,
            request.resource_id.as_deref(),
            request.scalable_dimension,
        )?;
        let alarms = self.delete_target_records(ctx, &target).await?;
        self.delete_alarms(ctx, alarms).await;
        Ok(wire::DeregisterScalableTargetResponse {})
    }

    /// Deletes the target and its policies and scheduled actions in one compare-and-swap;
    /// returns the alarms its target-tracking policies owned (for the caller to delete).
    async fn delete_target_records(
        &self,
        ctx: &RequestContext,
        target: &TargetRef,
    ) -> Result<Vec<String>, ApiError> {
        let region = &ctx.region;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(found) = get_target(
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
            let key = target_key(
                region,
                target.namespace(),
                target.dimension(),
                &target.resource_id,
            );
            let policies_prefix = crate::records::policies_prefix(
                region,
                target.namespace(),
                &target.resource_id,
                target.dimension(),
            );
            let policies: Vec<(String, store::Revision, PolicyRecord)> =
                ranged(self.store(), &policies_prefix).await?;
            let actions_prefix = crate::records::scheduled_actions_prefix(
                region,
                target.namespace(),
                &target.resource_id,
                target.dimension(),
            );
            let actions: Vec<(String, store::Revision, ScheduledActionRecord)> =
                ranged(self.store(), &actions_prefix).await?;
            let mut txn = Txn::new()
                .when(Compare::mod_revision_is(&key, found.mod_revision))
                .then(Op::delete(&key));
            for (record_key, revision, _) in &policies {
                txn = txn
                    .when(Compare::mod_revision_is(record_key, *revision))
                    .then(Op::delete(record_key));
            }
            for (record_key, revision, _) in &actions {
                txn = txn
                    .when(Compare::mod_revision_is(record_key, *revision))
                    .then(Op::delete(record_key));
            }
            if self.store().txn(txn).await?.succeeded {
                return Ok(policies
                    .iter()
                    .flat_map(|(_, _, p)| super::owned_alarm_names(&p.policy))
                    .collect());
            }
        }
        Err(error::concurrent_update())
    }
}

/// Every record under `prefix` with its key and revision.
pub(crate) async fn ranged<T: serde::de::DeserializeOwned>(
    store: &dyn store::Store,
    prefix: &str,
) -> Result<Vec<(String, store::Revision, T)>, ApiError> {
    let response = store.range(store::RangeRequest::prefix(prefix)).await?;
    response
        .kvs
        .into_iter()
        .map(|kv| {
            let value = records::decode(&kv.key, &kv.value)?;
            Ok((kv.key, kv.mod_revision, value))
        })
        .collect()
}

fn check_capacities(min: i32, max: i32) -> Result<(), ApiError> {
    if min < 0 {
        return Err(error::validation(format!(
            "Minimum capacity cannot be less than 0; {min} was given."
        )));
    }
    if min > max {
        return Err(error::validation(format!(
            "Minimum capacity ({min}) cannot be greater than maximum capacity ({max})."
        )));
    }
    Ok(())
}

fn new_target(
    ctx: &RequestContext,
    target: &TargetRef,
    request: &wire::RegisterScalableTargetRequest,
) -> Result<ScalableTargetRecord, ApiError> {
    let (Some(min), Some(max)) = (request.min_capacity, request.max_capacity) else {
        return Err(error::validation(
            "MinCapacity and MaxCapacity are required when you register a new scalable target.",
        ));
    };
    check_capacities(min, max)?;
    let suspended = request.suspended_state.clone().unwrap_or_default();
    Ok(ScalableTargetRecord {
        target: wire::ScalableTarget {
            service_namespace: Some(wire::ServiceNamespace::Ecs),
            resource_id: Some(target.resource_id.clone()),
            scalable_dimension: Some(wire::ScalableDimension::EcsServiceDesiredCount),
            min_capacity: Some(min),
            max_capacity: Some(max),
            predicted_capacity: None,
            role_arn: Some(
                request
                    .role_arn
                    .clone()
                    .unwrap_or_else(|| ecs_service_linked_role_arn(ctx)),
            ),
            creation_time: Some(epoch_s(ctx.now_ms)),
            suspended_state: Some(wire::SuspendedState {
                dynamic_scaling_in_suspended: Some(
                    suspended.dynamic_scaling_in_suspended.unwrap_or(false),
                ),
                dynamic_scaling_out_suspended: Some(
                    suspended.dynamic_scaling_out_suspended.unwrap_or(false),
                ),
                scheduled_scaling_suspended: Some(
                    suspended.scheduled_scaling_suspended.unwrap_or(false),
                ),
            }),
            scalable_target_arn: Some(new_scalable_target_arn(ctx)),
        },
        tags: request.tags.clone().unwrap_or_default(),
    })
}

/// An existing target with what the request changes: parameters not given stay as they are
/// (tags given are added, replacing the values of keys it already has).
fn updated_target(
    mut record: ScalableTargetRecord,
    request: &wire::RegisterScalableTargetRequest,
) -> Result<ScalableTargetRecord, ApiError> {
    let target = &mut record.target;
    let min = request.min_capacity.or(target.min_capacity).unwrap_or(0);
    let max = request.max_capacity.or(target.max_capacity).unwrap_or(0);
    check_capacities(min, max)?;
    target.min_capacity = Some(min);
    target.max_capacity = Some(max);
    if let Some(role) = &request.role_arn {
        target.role_arn = Some(role.clone());
    }
    if let Some(given) = &request.suspended_state {
        let state = target.suspended_state.get_or_insert_with(Default::default);
        if let Some(v) = given.dynamic_scaling_in_suspended {
            state.dynamic_scaling_in_suspended = Some(v);
        }
        if let Some(v) = given.dynamic_scaling_out_suspended {
            state.dynamic_scaling_out_suspended = Some(v);
        }
        if let Some(v) = given.scheduled_scaling_suspended {
            state.scheduled_scaling_suspended = Some(v);
        }
    }
    if let Some(tags) = &request.tags {
        record.tags.extend(tags.clone());
    }
    Ok(record)
}
