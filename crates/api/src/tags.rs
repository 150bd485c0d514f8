//! TagResource, UntagResource, ListTagsForResource.
//!
//! Tags live on the resource's own record, so tagging is a compare-and-swap
//! of that record.

use ecs_wire::{
    ListTagsForResourceRequest, ListTagsForResourceResponse, TagResourceRequest,
    TagResourceResponse, UntagResourceRequest, UntagResourceResponse,
};
use model::arn::EcsArn;
use model::cluster::Cluster;
use model::tags::Tag;
use model::task_definition::{TaskDefinitionRecord, TaskDefinitionReference};

use crate::records::{self, Versioned, Write, MAX_CAS_ATTEMPTS};
use crate::services::ServiceRecord;
use crate::{keys, ApiError, Ecs, RequestContext};

/// A taggable resource, located in the store.
enum Resource {
    Cluster { key: String },
    TaskDefinition { key: String },
    Service { key: String },
}

fn not_found(arn: &str) -> ApiError {
    ApiError::client(
        "ResourceNotFoundException",
        format!("The specified resource could not be found: {arn}"),
    )
}

impl Ecs {
    fn locate(&self, ctx: &RequestContext, resource_arn: &str) -> Result<Resource, ApiError> {
        let arn = EcsArn::parse(resource_arn)?;
        if arn.region != ctx.region || arn.account_id != ctx.account_id {
            return Err(ApiError::invalid_parameter(format!(
                "The resource ARN '{resource_arn}' is not in this account and region ({}, {}).",
                ctx.account_id, ctx.region
            )));
        }
        match arn.resource_type.as_str() {
            "cluster" => Ok(Resource::Cluster {
                key: keys::cluster(&ctx.region, &arn.resource_id),
            }),
            "task-definition" => match TaskDefinitionReference::parse(resource_arn)? {
                TaskDefinitionReference::FamilyRevision(family, revision) => {
                    Ok(Resource::TaskDefinition {
                        key: keys::task_definition(&ctx.region, &family, revision),
                    })
                }
                TaskDefinitionReference::Family(_) => Err(ApiError::invalid_parameter(format!(
                    "Invalid task definition ARN '{resource_arn}': it must end in family:revision."
                ))),
            },
            "service" => {
                // `service/<cluster>/<name>`, or the old `service/<name>` (default cluster).
                let (cluster, name) = arn
                    .resource_id
                    .split_once('/')
                    .unwrap_or((model::cluster::DEFAULT_CLUSTER_NAME, &arn.resource_id));
                Ok(Resource::Service {
                    key: keys::service(&ctx.region, cluster, name),
                })
            }
            _ => Err(not_found(resource_arn)),
        }
    }

    /// A service that is not INACTIVE.
    async fn load_tagged_service(
        &self,
        resource_arn: &str,
        key: &str,
    ) -> Result<Versioned<ServiceRecord>, ApiError> {
        records::get::<ServiceRecord>(self.store(), key)
            .await?
            .filter(|s| !s.value.is_inactive())
            .ok_or_else(|| not_found(resource_arn))
    }

    async fn load_tagged_cluster(&self, key: &str) -> Result<Versioned<Cluster>, ApiError> {
        let cluster = records::get::<Cluster>(self.store(), key)
            .await?
            .ok_or_else(ApiError::cluster_not_found)?;
        if !cluster.value.is_active() {
            return Err(ApiError::invalid_parameter(
                "The specified cluster is inactive. Specify an active cluster and try again.",
            ));
        }
        Ok(cluster)
    }

    async fn load_tagged_task_definition(
        &self,
        resource_arn: &str,
        key: &str,
    ) -> Result<Versioned<TaskDefinitionRecord>, ApiError> {
        records::get::<TaskDefinitionRecord>(self.store(), key)
            .await?
            .ok_or_else(|| not_found(resource_arn))
    }

    /// Read-modify-write of a resource's tags.
    async fn write_tags(
        &self,
        ctx: &RequestContext,
        resource_arn: &str,
        change: impl Fn(&[Tag]) -> Result<Vec<Tag>, ApiError>,
    ) -> Result<(), ApiError> {
        let resource = self.locate(ctx, resource_arn)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let written = match &resource {
                Resource::Cluster { key } => {
                    let current = self.load_tagged_cluster(key).await?;
                    let mut cluster = current.value;
                    cluster.tags = change(&cluster.tags)?;
                    Write::new()
                        .expect(key, current.mod_revision)
                        .put(key, &cluster)
                        .commit(self.store())
                        .await?
                }
                Resource::TaskDefinition { key } => {
                    let current = self.load_tagged_task_definition(resource_arn, key).await?;
                    let mut record = current.value;
                    record.tags = change(&record.tags)?;
                    Write::new()
                        .expect(key, current.mod_revision)
                        .put(key, &record)
                        .commit(self.store())
                        .await?
                }
                Resource::Service { key } => {
                    let current = self.load_tagged_service(resource_arn, key).await?;
                    let mut record = current.value;
                    record.tags = change(&record.tags)?;
                    record.version += 1;
                    Write::new()
                        .expect(key, current.mod_revision)
                        .put(key, &record)
                        .commit(self.store())
                        .await?
                }
            };
            if written {
                return Ok(());
            }
        }
        Err(records::too_much_contention("the resource's tags"))
    }

    pub(crate) async fn tag_resource(
        &self,
        ctx: &RequestContext,
        request: TagResourceRequest,
    ) -> Result<TagResourceResponse, ApiError> {
        let arn = request.resource_arn.clone().unwrap_or_default();
        let added = model::tags::from_wire(request.tags.as_deref().unwrap_or_default());
        if added.is_empty() {
            return Err(ApiError::invalid_parameter("Tags can not be empty."));
        }
        self.write_tags(ctx, &arn, |tags| Ok(model::tags::merge_tags(tags, &added)?))
            .await?;
        Ok(TagResourceResponse {})
    }

    pub(crate) async fn untag_resource(
        &self,
        ctx: &RequestContext,
        request: UntagResourceRequest,
    ) -> Result<UntagResourceResponse, ApiError> {
        let arn = request.resource_arn.clone().unwrap_or_default();
        let keys = request.tag_keys.clone().unwrap_or_default();
        self.write_tags(ctx, &arn, |tags| Ok(model::tags::remove_tags(tags, &keys)?))
            .await?;
        Ok(UntagResourceResponse {})
    }

    pub(crate) async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        request: ListTagsForResourceRequest,
    ) -> Result<ListTagsForResourceResponse, ApiError> {
        let arn = request.resource_arn.clone().unwrap_or_default();
        let tags = match self.locate(ctx, &arn)? {
            Resource::Cluster { key } => self.load_tagged_cluster(&key).await?.value.tags,
            Resource::TaskDefinition { key } => {
                self.load_tagged_task_definition(&arn, &key)
                    .await?
                    .value
                    .tags
            }
            Resource::Service { key } => self.load_tagged_service(&arn, &key).await?.value.tags,
        };
        Ok(ListTagsForResourceResponse {
            tags: Some(model::tags::to_wire(&tags)),
        })
    }
}
