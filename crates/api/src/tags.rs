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
use model::container_instance::ContainerInstance;
use model::tags::Tag;
use model::task::Task;
use model::task_definition::{TaskDefinitionRecord, TaskDefinitionReference};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::records::{self, Versioned, Write, MAX_CAS_ATTEMPTS};
use crate::services::ServiceRecord;
use crate::{keys, ApiError, Ecs, RequestContext};

/// A taggable resource, located in the store. Tasks and container
/// instances are records that hold their own `tags`, like the others.
enum Resource {
    Cluster { key: String },
    TaskDefinition { key: String },
    Service { key: String },
    Task { key: String },
    ContainerInstance { key: String, cluster_name: String },
}

/// A stored record whose tags TagResource changes in place.
trait Tagged: Serialize + DeserializeOwned {
    fn tags_mut(&mut self) -> &mut Vec<Tag>;
}

impl Tagged for Task {
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

impl Tagged for ContainerInstance {
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

/// `<cluster>/<id>` of a task or container instance ARN. The old format
/// without the cluster cannot be tagged, as on ECS.
fn cluster_and_id(resource_id: &str) -> Result<(&str, &str), ApiError> {
    resource_id
        .split_once('/')
        .filter(|(cluster, id)| !cluster.is_empty() && !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| {
            ApiError::invalid_parameter("Long arn format must be used for tagging operations")
        })
}

fn not_found(arn: &str) -> ApiError {
    ApiError::client(
        "ResourceNotFoundException",
        format!("The specified resource could not be found: {arn}"),
    )
}

impl Ecs {
    fn locate(&self, ctx: &RequestContext, resource_arn: &str) -> Result<Resource, ApiError> {
        let arn = EcsArn::parse(resource_arn).map_err(|_| {
            ApiError::invalid_parameter(format!(
                "The ARN provided is invalid. '{resource_arn}' is not an Amazon ECS resource ARN such as arn:aws:ecs:{}:{}:cluster/default.",
                ctx.region, ctx.account_id
            ))
        })?;
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
            "task" => {
                let (cluster, id) = cluster_and_id(&arn.resource_id)?;
                Ok(Resource::Task {
                    key: keys::task(&ctx.region, cluster, id),
                })
            }
            "container-instance" => {
                let (cluster, id) = cluster_and_id(&arn.resource_id)?;
                Ok(Resource::ContainerInstance {
                    key: keys::container_instance(&ctx.region, cluster, id),
                    cluster_name: cluster.to_string(),
                })
            }
            _ => Err(not_found(resource_arn)),
        }
    }

    /// A task or container instance record, which must exist.
    async fn load_tagged<T: Tagged>(
        &self,
        resource_arn: &str,
        key: &str,
    ) -> Result<Versioned<T>, ApiError> {
        records::get::<T>(self.store(), key)
            .await?
            .ok_or_else(|| not_found(resource_arn))
    }

    /// Compare-and-swap of a task's or container instance's tags; only the
    /// record itself changes (an agent's desired tasks do not depend on tags).
    async fn write_record_tags<T: Tagged>(
        &self,
        resource_arn: &str,
        key: &str,
        change: &impl Fn(&[Tag]) -> Result<Vec<Tag>, ApiError>,
    ) -> Result<bool, ApiError> {
        let current = self.load_tagged::<T>(resource_arn, key).await?;
        let mut record = current.value;
        let tags = change(record.tags_mut())?;
        *record.tags_mut() = tags;
        Write::new()
            .expect(key, current.mod_revision)
            .put(key, &record)
            .commit(self.store())
            .await
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
                Resource::Task { key } => {
                    self.write_record_tags::<Task>(resource_arn, key, &change)
                        .await?
                }
                Resource::ContainerInstance { key, cluster_name } => {
                    let written = self
                        .write_record_tags::<ContainerInstance>(resource_arn, key, &change)
                        .await?;
                    if written {
                        // Placement compares the instance record it read.
                        self.placement_cache().invalidate(&ctx.region, cluster_name);
                    }
                    written
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
            Resource::Task { key } => self.load_tagged::<Task>(&arn, &key).await?.value.tags,
            Resource::ContainerInstance { key, .. } => {
                self.load_tagged::<ContainerInstance>(&arn, &key)
                    .await?
                    .value
                    .tags
            }
        };
        Ok(ListTagsForResourceResponse {
            tags: Some(model::tags::to_wire(&tags)),
        })
    }
}
