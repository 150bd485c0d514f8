//! RegisterTaskDefinition, DescribeTaskDefinition, DeregisterTaskDefinition,
//! DeleteTaskDefinitions, ListTaskDefinitions, ListTaskDefinitionFamilies.

use std::collections::BTreeMap;

use ecs_wire::{
    DeleteTaskDefinitionsRequest, DeleteTaskDefinitionsResponse, DeregisterTaskDefinitionRequest,
    DeregisterTaskDefinitionResponse, DescribeTaskDefinitionRequest,
    DescribeTaskDefinitionResponse, Failure, ListTaskDefinitionFamiliesRequest,
    ListTaskDefinitionFamiliesResponse, ListTaskDefinitionsRequest, ListTaskDefinitionsResponse,
    RegisterTaskDefinitionRequest, RegisterTaskDefinitionResponse, SortOrder,
    TaskDefinitionFamilyStatus, TaskDefinitionField, TaskDefinitionStatus,
};
use model::task_definition::{
    build_task_definition, validate_registration, Registration, TaskDefinitionRecord,
    TaskDefinitionReference,
};
use serde::{Deserialize, Serialize};

use crate::records::{self, Versioned, Write, MAX_CAS_ATTEMPTS};
use crate::{keys, pagination, ApiError, Ecs, RequestContext};

pub const MAX_DELETE_TASK_DEFINITIONS: usize = 10;

/// Per family: the last revision handed out (never reused, even after
/// deletion) and the status of every revision, so that "latest ACTIVE" and
/// the list operations need no scan of the documents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyRecord {
    pub last_revision: i64,
    pub revisions: BTreeMap<i64, TaskDefinitionStatus>,
}

impl FamilyRecord {
    fn latest_active(&self) -> Option<i64> {
        self.revisions
            .iter()
            .rev()
            .find(|(_, status)| **status == TaskDefinitionStatus::Active)
            .map(|(revision, _)| *revision)
    }
    fn has_active(&self) -> bool {
        self.latest_active().is_some()
    }
}

/// The family's latest ACTIVE revision, kept beside the family record so
/// that describing by family reads two small records, however many
/// revisions the family has.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatestActiveRecord {
    pub revision: Option<i64>,
}

fn unable_to_describe() -> ApiError {
    ApiError::client_exception("Unable to describe task definition.")
}

/// The sort key of a revision in list operations: family, then revision.
fn list_key(family: &str, revision: i64) -> String {
    format!("{family}\u{0}{revision:010}")
}

impl Ecs {
    async fn load_family(
        &self,
        ctx: &RequestContext,
        family: &str,
    ) -> Result<Option<Versioned<FamilyRecord>>, ApiError> {
        records::get(
            self.store(),
            &keys::task_definition_family(&ctx.region, family),
        )
        .await
    }

    async fn load_revision(
        &self,
        ctx: &RequestContext,
        family: &str,
        revision: i64,
    ) -> Result<Option<Versioned<TaskDefinitionRecord>>, ApiError> {
        records::get(
            self.store(),
            &keys::task_definition(&ctx.region, family, revision),
        )
        .await
    }

    /// Resolves `family` (latest ACTIVE revision) or `family:revision`.
    pub(crate) async fn resolve_task_definition(
        &self,
        ctx: &RequestContext,
        reference: &TaskDefinitionReference,
    ) -> Result<Option<Versioned<TaskDefinitionRecord>>, ApiError> {
        match reference {
            TaskDefinitionReference::FamilyRevision(family, revision) => {
                self.load_revision(ctx, family, *revision).await
            }
            TaskDefinitionReference::Family(family) => {
                let latest: Option<Versioned<LatestActiveRecord>> = records::get(
                    self.store(),
                    &keys::task_definition_latest(&ctx.region, family),
                )
                .await?;
                match latest.and_then(|l| l.value.revision) {
                    Some(revision) => self.load_revision(ctx, family, revision).await,
                    None => Ok(None),
                }
            }
        }
    }

    pub(crate) async fn register_task_definition(
        &self,
        ctx: &RequestContext,
        request: RegisterTaskDefinitionRequest,
    ) -> Result<RegisterTaskDefinitionResponse, ApiError> {
        validate_registration(&request)?;
        let family = request.family.clone().unwrap_or_default();
        let tags = model::tags::from_wire(request.tags.as_deref().unwrap_or_default());
        let family_key = keys::task_definition_family(&ctx.region, &family);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.load_family(ctx, &family).await?;
            let expected = current.as_ref().map(|c| c.mod_revision).unwrap_or(0);
            let mut family_record = current.map(|c| c.value).unwrap_or_default();
            let revision = family_record.last_revision + 1;
            let arn = ctx.arns().task_definition(&family, revision);
            let task_definition = build_task_definition(
                &request,
                &Registration {
                    task_definition_arn: &arn,
                    revision,
                    registered_by: &ctx.principal_arn,
                    now_ms: ctx.now_ms,
                },
            );
            family_record.last_revision = revision;
            family_record
                .revisions
                .insert(revision, TaskDefinitionStatus::Active);
            let record = TaskDefinitionRecord {
                task_definition,
                tags: tags.clone(),
            };
            let latest = LatestActiveRecord {
                revision: family_record.latest_active(),
            };
            let written = Write::new()
                .expect(&family_key, expected)
                .put(&family_key, &family_record)
                .put(&keys::task_definition_latest(&ctx.region, &family), &latest)
                .put(
                    &keys::task_definition(&ctx.region, &family, revision),
                    &record,
                )
                .commit(self.store())
                .await?;
            if written {
                return Ok(RegisterTaskDefinitionResponse {
                    task_definition: Some(record.task_definition),
                    tags: (!tags.is_empty()).then(|| model::tags::to_wire(&tags)),
                });
            }
        }
        Err(ApiError::client_exception(
            "Too many concurrent attempts to create a new revision of the specified family.",
        ))
    }

    pub(crate) async fn describe_task_definition(
        &self,
        ctx: &RequestContext,
        request: DescribeTaskDefinitionRequest,
    ) -> Result<DescribeTaskDefinitionResponse, ApiError> {
        let reference =
            TaskDefinitionReference::parse(request.task_definition.as_deref().unwrap_or_default())
                .map_err(|_| unable_to_describe())?;
        let record = self
            .resolve_task_definition(ctx, &reference)
            .await?
            .ok_or_else(unable_to_describe)?;
        let include_tags = request
            .include
            .as_deref()
            .unwrap_or_default()
            .contains(&TaskDefinitionField::Tags);
        Ok(DescribeTaskDefinitionResponse {
            tags: include_tags.then(|| model::tags::to_wire(&record.value.tags)),
            task_definition: Some(record.value.task_definition),
        })
    }

    /// Moves one revision to `status`, keeping the family record in step.
    /// Returns `None` if the revision does not exist.
    async fn set_revision_status(
        &self,
        ctx: &RequestContext,
        family: &str,
        revision: i64,
        change: impl Fn(&mut TaskDefinitionRecord) -> bool,
    ) -> Result<Option<TaskDefinitionRecord>, ApiError> {
        let family_key = keys::task_definition_family(&ctx.region, family);
        let revision_key = keys::task_definition(&ctx.region, family, revision);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (Some(family_record), Some(current)) = (
                self.load_family(ctx, family).await?,
                self.load_revision(ctx, family, revision).await?,
            ) else {
                return Ok(None);
            };
            let mut record = current.value.clone();
            if !change(&mut record) {
                return Ok(Some(record));
            }
            let mut new_family = family_record.value.clone();
            new_family.revisions.insert(revision, record.status());
            let latest = LatestActiveRecord {
                revision: new_family.latest_active(),
            };
            let written = Write::new()
                .expect(&family_key, family_record.mod_revision)
                .expect(&revision_key, current.mod_revision)
                .put(&family_key, &new_family)
                .put(&keys::task_definition_latest(&ctx.region, family), &latest)
                .put(&revision_key, &record)
                .commit(self.store())
                .await?;
            if written {
                return Ok(Some(record));
            }
        }
        Err(records::too_much_contention("the task definition family"))
    }

    pub(crate) async fn deregister_task_definition(
        &self,
        ctx: &RequestContext,
        request: DeregisterTaskDefinitionRequest,
    ) -> Result<DeregisterTaskDefinitionResponse, ApiError> {
        let reference =
            TaskDefinitionReference::parse(request.task_definition.as_deref().unwrap_or_default())?;
        let TaskDefinitionReference::FamilyRevision(family, revision) = reference else {
            return Err(ApiError::client_exception(
                "Revision is missing. Specify the task definition as family:revision or as its full ARN.",
            ));
        };
        let now_s = ctx.now_ms as f64 / 1000.0;
        let record = self
            .set_revision_status(ctx, &family, revision, |record| {
                if record.status() != TaskDefinitionStatus::Active {
                    return false;
                }
                record.task_definition.status = Some(TaskDefinitionStatus::Inactive);
                record.task_definition.deregistered_at = Some(now_s);
                true
            })
            .await?
            .ok_or_else(|| {
                ApiError::client_exception("The specified task definition does not exist.")
            })?;
        Ok(DeregisterTaskDefinitionResponse {
            task_definition: Some(record.task_definition),
        })
    }

    pub(crate) async fn delete_task_definitions(
        &self,
        ctx: &RequestContext,
        request: DeleteTaskDefinitionsRequest,
    ) -> Result<DeleteTaskDefinitionsResponse, ApiError> {
        let references = request.task_definitions.clone().unwrap_or_default();
        if references.is_empty() {
            return Err(ApiError::invalid_parameter(
                "taskDefinitions can not be empty.",
            ));
        }
        if references.len() > MAX_DELETE_TASK_DEFINITIONS {
            return Err(ApiError::invalid_parameter(format!(
                "taskDefinitions can have at most {MAX_DELETE_TASK_DEFINITIONS} items."
            )));
        }
        let now_s = ctx.now_ms as f64 / 1000.0;
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        let failure = |arn: &str, reason: &str| Failure {
            arn: Some(arn.to_string()),
            reason: Some(reason.to_string()),
            detail: None,
        };
        const DOES_NOT_EXIST: &str =
            "The specified task definition does not exist. Specify a valid account, family, revision and try again.";
        // A family without a revision (or anything else that names no
        // revision) is refused before any lookup, whether the family exists.
        const INVALID_IDENTIFIER: &str =
            "The specified task definition identifier is invalid. Specify a valid name or ARN and try again.";
        for text in &references {
            let Ok(TaskDefinitionReference::FamilyRevision(family, revision)) =
                TaskDefinitionReference::parse(text)
            else {
                failures.push(failure(text, INVALID_IDENTIFIER));
                continue;
            };
            let outcome = self
                .set_revision_status(ctx, &family, revision, |record| match record.status() {
                    TaskDefinitionStatus::Inactive => {
                        record.task_definition.status =
                            Some(TaskDefinitionStatus::DeleteInProgress);
                        record.task_definition.delete_requested_at = Some(now_s);
                        true
                    }
                    _ => false,
                })
                .await?;
            match outcome {
                None => failures.push(failure(text, DOES_NOT_EXIST)),
                Some(record) if record.status() == TaskDefinitionStatus::Active => failures.push(failure(
                    text,
                    "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
                )),
                Some(record) => deleted.push(record.task_definition),
            }
        }
        Ok(DeleteTaskDefinitionsResponse {
            task_definitions: Some(deleted),
            failures: Some(failures),
        })
    }

    async fn families(
        &self,
        ctx: &RequestContext,
    ) -> Result<Vec<(String, FamilyRecord)>, ApiError> {
        let prefix = keys::task_definition_families_prefix(&ctx.region);
        let families: Vec<(String, FamilyRecord)> = records::list(self.store(), &prefix).await?;
        Ok(families
            .into_iter()
            .map(|(key, record)| (key[prefix.len()..].to_string(), record))
            .collect())
    }

    pub(crate) async fn list_task_definitions(
        &self,
        ctx: &RequestContext,
        request: ListTaskDefinitionsRequest,
    ) -> Result<ListTaskDefinitionsResponse, ApiError> {
        const OP: &str = "ListTaskDefinitions";
        let page_size = pagination::page_size(request.max_results, 100, 100)?;
        let after = pagination::decode_token(OP, request.next_token.as_deref())?;
        let status = request.status.unwrap_or(TaskDefinitionStatus::Active);
        let descending = request.sort == Some(SortOrder::Desc);
        let mut revisions: Vec<(String, i64)> = Vec::new();
        for (family, record) in self.families(ctx).await? {
            // familyPrefix names one whole family for this operation.
            if request
                .family_prefix
                .as_deref()
                .is_some_and(|f| f != family)
            {
                continue;
            }
            for (revision, revision_status) in &record.revisions {
                if *revision_status == status {
                    revisions.push((family.clone(), *revision));
                }
            }
        }
        revisions.sort_by_key(|(family, revision)| list_key(family, *revision));
        if descending {
            revisions.reverse();
        }
        let (page, next_token) = pagination::paginate(
            OP,
            revisions,
            |(family, revision)| list_key(family, *revision),
            after.as_deref(),
            page_size,
            descending,
        );
        Ok(ListTaskDefinitionsResponse {
            task_definition_arns: Some(
                page.iter()
                    .map(|(family, revision)| ctx.arns().task_definition(family, *revision))
                    .collect(),
            ),
            next_token,
        })
    }

    pub(crate) async fn list_task_definition_families(
        &self,
        ctx: &RequestContext,
        request: ListTaskDefinitionFamiliesRequest,
    ) -> Result<ListTaskDefinitionFamiliesResponse, ApiError> {
        const OP: &str = "ListTaskDefinitionFamilies";
        let page_size = pagination::page_size(request.max_results, 100, 100)?;
        let after = pagination::decode_token(OP, request.next_token.as_deref())?;
        let status = request.status.unwrap_or(TaskDefinitionFamilyStatus::All);
        let prefix = request.family_prefix.clone().unwrap_or_default();
        let families: Vec<String> = self
            .families(ctx)
            .await?
            .into_iter()
            .filter(|(family, record)| {
                family.starts_with(&prefix)
                    && match status {
                        TaskDefinitionFamilyStatus::All => true,
                        TaskDefinitionFamilyStatus::Active => record.has_active(),
                        TaskDefinitionFamilyStatus::Inactive => !record.has_active(),
                    }
            })
            .map(|(family, _)| family)
            .collect();
        let (page, next_token) = pagination::paginate(
            OP,
            families,
            String::clone,
            after.as_deref(),
            page_size,
            false,
        );
        Ok(ListTaskDefinitionFamiliesResponse {
            families: Some(page),
            next_token,
        })
    }
}
