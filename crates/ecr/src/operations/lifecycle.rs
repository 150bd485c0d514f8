//! Lifecycle policies: Put/Get/DeleteLifecyclePolicy, the previews
//! (StartLifecyclePolicyPreview, GetLifecyclePolicyPreview), and the pass
//! `berth` runs to apply every repository's policy.
//!
//! A preview is computed when it is started and kept under
//! `/ecr/<region>/lifecycle-previews/<name>` (one per repository, replaced
//! by the next preview, deleted with the repository).

use std::collections::{BTreeSet, HashMap};

use api::pagination;
use api::records::{self, Write};
use api::{ApiError, RequestContext};
use ecr_wire as wire;
use serde::{Deserialize, Serialize};
use store::RangeRequest;

use super::lifecycle_policy::{self, Image};
use super::{epoch_seconds, validate};
use crate::error;
use crate::images::ImageReference;
use crate::records::{list_images, require_repository, ImageRecord, RepositoryRecord, ROOT_PREFIX};
use crate::Ecr;

pub(crate) fn preview_key(region: &str, repository: &str) -> String {
    format!("/ecr/{region}/lifecycle-previews/{repository}")
}

/// A finished preview: the policy and the images it would expire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PreviewRecord {
    policy_text: String,
    created_ms: i64,
    results: Vec<PreviewImage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PreviewImage {
    digest: String,
    tags: Vec<String>,
    pushed_ms: i64,
    rule_priority: i64,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LifecyclePass {
    pub repositories_evaluated: u64,
    pub images_expired: u64,
}

/// Checks `text` as PutLifecyclePolicy does.
fn checked_policy(text: &str) -> Result<lifecycle_policy::LifecyclePolicy, ApiError> {
    validate::length("LifecyclePolicyText", text, 100, 30_720)?;
    lifecycle_policy::parse(text).map_err(|detail| {
        error::invalid_parameter_at(
            "LifecyclePolicyText",
            format!("Lifecycle policy validation failure: {detail}"),
        )
    })
}

/// The images `policy` expires, leaving alone images that an image index
/// which stays still references.
fn expiring(
    policy: &lifecycle_policy::LifecyclePolicy,
    images: &[ImageRecord],
    now_ms: i64,
) -> Vec<(ImageRecord, i64)> {
    let views: Vec<Image<'_>> = images
        .iter()
        .map(|image| Image {
            digest: &image.digest,
            tags: &image.tags,
            pushed_ms: image.pushed_ms,
        })
        .collect();
    let plan = lifecycle_policy::plan(policy, &views, now_ms);
    let going: BTreeSet<&str> = plan.iter().map(|e| e.digest.as_str()).collect();
    let kept_children: BTreeSet<&str> = images
        .iter()
        .filter(|image| !going.contains(image.digest.as_str()))
        .flat_map(|image| image.manifests.iter().map(String::as_str))
        .collect();
    plan.iter()
        .filter(|e| !kept_children.contains(e.digest.as_str()))
        .filter_map(|e| {
            images
                .iter()
                .find(|image| image.digest == e.digest)
                .map(|image| (image.clone(), e.rule_priority))
        })
        .collect()
}

impl Ecr {
    pub(crate) async fn put_lifecycle_policy(
        &self,
        ctx: &RequestContext,
        request: wire::PutLifecyclePolicyRequest,
    ) -> Result<wire::PutLifecyclePolicyResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let text = validate::required("lifecyclePolicyText", request.lifecycle_policy_text)?;
        checked_policy(&text)?;
        self.update_repository(ctx, name, |record| {
            record.lifecycle_policy = Some(text.clone());
            record.lifecycle_policy_updated_ms = Some(ctx.now_ms);
            Ok(())
        })
        .await?;
        Ok(wire::PutLifecyclePolicyResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            lifecycle_policy_text: Some(text),
        })
    }

    pub(crate) async fn get_lifecycle_policy(
        &self,
        ctx: &RequestContext,
        request: wire::GetLifecyclePolicyRequest,
    ) -> Result<wire::GetLifecyclePolicyResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let record = require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
        let text = record
            .value
            .lifecycle_policy
            .ok_or_else(|| error::lifecycle_policy_not_found(name, &ctx.account_id))?;
        Ok(wire::GetLifecyclePolicyResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            lifecycle_policy_text: Some(text),
            // Berth records no evaluation times yet.
            last_evaluated_at: None,
        })
    }

    pub(crate) async fn delete_lifecycle_policy(
        &self,
        ctx: &RequestContext,
        request: wire::DeleteLifecyclePolicyRequest,
    ) -> Result<wire::DeleteLifecyclePolicyResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let mut removed = None;
        self.update_repository(ctx, name, |record| {
            removed = Some((record
                .lifecycle_policy
                .take()
                .ok_or_else(|| error::lifecycle_policy_not_found(name, &ctx.account_id))?,));
            record.lifecycle_policy_updated_ms = None;
            Ok(())
        })
        .await?;
        let (text,) = removed.expect("the update ran");
        Ok(wire::DeleteLifecyclePolicyResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            lifecycle_policy_text: Some(text),
            last_evaluated_at: None,
        })
    }

    pub(crate) async fn start_lifecycle_policy_preview(
        &self,
        ctx: &RequestContext,
        request: wire::StartLifecyclePolicyPreviewRequest,
    ) -> Result<wire::StartLifecyclePolicyPreviewResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let repository =
            require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
        let text = match request.lifecycle_policy_text {
            Some(text) => text,
            None => repository
                .value
                .lifecycle_policy
                .ok_or_else(|| error::lifecycle_policy_not_found(name, &ctx.account_id))?,
        };
        let policy = checked_policy(&text)?;
        let images: Vec<ImageRecord> = list_images(&*self.store, &ctx.region, name)
            .await?
            .into_iter()
            .map(|found| found.value)
            .collect();
        let results = expiring(&policy, &images, ctx.now_ms)
            .into_iter()
            .map(|(image, rule_priority)| PreviewImage {
                digest: image.digest,
                tags: image.tags,
                pushed_ms: image.pushed_ms,
                rule_priority,
            })
            .collect();
        let record = PreviewRecord {
            policy_text: text.clone(),
            created_ms: ctx.now_ms,
            results,
        };
        let key = preview_key(&ctx.region, name);
        let current = self.store.get(&key).await?.map_or(0, |kv| kv.mod_revision);
        // A concurrent preview of the same repository wins just as well.
        Write::new()
            .expect(&key, current)
            .put(&key, &record)
            .commit(&*self.store)
            .await?;
        Ok(wire::StartLifecyclePolicyPreviewResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            lifecycle_policy_text: Some(text),
            status: Some(wire::LifecyclePolicyPreviewStatus::InProgress),
        })
    }

    pub(crate) async fn get_lifecycle_policy_preview(
        &self,
        ctx: &RequestContext,
        request: wire::GetLifecyclePolicyPreviewRequest,
    ) -> Result<wire::GetLifecyclePolicyPreviewResponse, ApiError> {
        const OPERATION: &str = "GetLifecyclePolicyPreview";
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let page_size = validate::max_results(request.max_results, 100)?;
        require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
        let preview: PreviewRecord = records::get(&*self.store, &preview_key(&ctx.region, name))
            .await?
            .map(|found| found.value)
            .ok_or_else(|| error::lifecycle_policy_preview_not_found(name, &ctx.account_id))?;
        let total = preview.results.len();
        let filter = request.filter.and_then(|filter| filter.tag_status);
        let mut results: Vec<PreviewImage> = preview
            .results
            .iter()
            .filter(|image| match filter {
                Some(wire::TagStatus::Tagged) => !image.tags.is_empty(),
                Some(wire::TagStatus::Untagged) => image.tags.is_empty(),
                _ => true,
            })
            .cloned()
            .collect();
        if let Some(ids) = &request.image_ids {
            validate::count("imageIds", ids.len(), 1, 100)?;
            results.retain(|image| {
                ids.iter().any(|id| {
                    id.image_digest.as_deref().is_none_or(|d| d == image.digest)
                        && id
                            .image_tag
                            .as_deref()
                            .is_none_or(|t| image.tags.iter().any(|x| x == t))
                        && (id.image_digest.is_some() || id.image_tag.is_some())
                })
            });
        }
        let after = pagination::decode_token(OPERATION, request.next_token.as_deref())?;
        let (page, next_token) = pagination::paginate(
            OPERATION,
            results,
            |image| image.digest.clone(),
            after.as_deref(),
            page_size,
            false,
        );
        Ok(wire::GetLifecyclePolicyPreviewResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            lifecycle_policy_text: Some(preview.policy_text),
            status: Some(wire::LifecyclePolicyPreviewStatus::Complete),
            next_token,
            preview_results: Some(
                page.into_iter()
                    .map(|image| wire::LifecyclePolicyPreviewResult {
                        image_tags: (!image.tags.is_empty()).then_some(image.tags),
                        image_digest: Some(image.digest),
                        image_pushed_at: Some(epoch_seconds(image.pushed_ms)),
                        action: Some(wire::LifecyclePolicyRuleAction {
                            type_: Some(wire::ImageActionType::Expire),
                            target_storage_class: None,
                        }),
                        applied_rule_priority: Some(image.rule_priority as i32),
                        storage_class: None,
                    })
                    .collect(),
            ),
            summary: Some(wire::LifecyclePolicyPreviewSummary {
                expiring_image_total_count: Some(total as i32),
                transitioning_image_total_counts: None,
            }),
        })
    }

    /// One pass at `now_ms`: every repository's lifecycle policy, in every
    /// region, applied through `delete_reference` (so tags and images go
    /// as BatchDeleteImage removes them). `account_id` is the server's.
    pub async fn apply_lifecycle_policies(
        &self,
        account_id: &str,
        now_ms: i64,
    ) -> Result<LifecyclePass, ApiError> {
        let mut pass = LifecyclePass::default();
        // One read of everything: the repositories with a policy, and every
        // repository's images.
        let all = self.store.range(RangeRequest::prefix(ROOT_PREFIX)).await?;
        let mut targets: Vec<(String, String, lifecycle_policy::LifecyclePolicy)> = Vec::new();
        let mut images: HashMap<(String, String), Vec<ImageRecord>> = HashMap::new();
        for kv in &all.kvs {
            let mut parts = kv.key[ROOT_PREFIX.len()..].splitn(3, '/');
            let (Some(region), Some(kind), Some(rest)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            match kind {
                "repositories" => {
                    let record: RepositoryRecord = records::decode(&kv.key, &kv.value)?;
                    // A stored policy passed validation; one that no longer
                    // parses (an older Berth's rules) is skipped rather than
                    // guessed at.
                    if let Some(Ok(policy)) = record
                        .lifecycle_policy
                        .as_deref()
                        .map(lifecycle_policy::parse)
                    {
                        targets.push((region.to_string(), record.name, policy));
                    }
                }
                "images" => {
                    let Some((repository, _)) = rest.split_once(':') else {
                        continue;
                    };
                    let image: ImageRecord = records::decode(&kv.key, &kv.value)?;
                    images
                        .entry((region.to_string(), repository.to_string()))
                        .or_default()
                        .push(image);
                }
                _ => {}
            }
        }
        for (region, name, policy) in targets {
            pass.repositories_evaluated += 1;
            let ctx = RequestContext {
                region: region.clone(),
                account_id: account_id.to_string(),
                principal_arn: format!("arn:aws:iam::{account_id}:root"),
                access_key_id: String::new(),
                request_id: String::new(),
                now_ms,
            };
            let images = images.remove(&(region, name.clone())).unwrap_or_default();
            for (image, _) in expiring(&policy, &images, now_ms) {
                let reference = ImageReference::Digest(image.digest);
                if self
                    .delete_reference(&ctx, &name, &reference)
                    .await?
                    .is_some()
                {
                    pass.images_expired += 1;
                }
            }
        }
        Ok(pass)
    }
}
