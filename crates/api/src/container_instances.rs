//! RegisterContainerInstance, DeregisterContainerInstance,
//! DescribeContainerInstances, ListContainerInstances,
//! UpdateContainerInstancesState, PutAttributes, DeleteAttributes,
//! ListAttributes, DiscoverPollEndpoint.

use std::collections::{BTreeMap, BTreeSet};

use ecs_wire::{
    Attribute, ContainerInstanceField, DeleteAttributesRequest, DeleteAttributesResponse,
    DeregisterContainerInstanceRequest, DeregisterContainerInstanceResponse,
    DescribeContainerInstancesRequest, DescribeContainerInstancesResponse,
    DiscoverPollEndpointRequest, DiscoverPollEndpointResponse, Failure, ListAttributesRequest,
    ListAttributesResponse, ListContainerInstancesRequest, ListContainerInstancesResponse,
    PutAttributesRequest, PutAttributesResponse, RegisterContainerInstanceRequest,
    RegisterContainerInstanceResponse, Resource, TargetType, UpdateContainerInstancesStateRequest,
    UpdateContainerInstancesStateResponse,
};
use model::arn::id_from_reference;
use model::container_instance::{
    validate_attribute, ContainerInstance, ContainerInstanceStatus, Resources, VersionInfo,
    ALWAYS_RESERVED_TCP_PORTS,
};
use serde::{Deserialize, Serialize};

use crate::records::{self, Versioned, Write, MAX_CAS_ATTEMPTS};
use crate::{keys, pagination, ApiError, Ecs, RequestContext};

pub const MAX_DESCRIBE_CONTAINER_INSTANCES: usize = 100;
pub const MAX_CUSTOM_ATTRIBUTES: usize = 10;

/// Where a task placed on an instance is in its life, kept per task under
/// the instance so that RUNNING reports never rewrite the instance record
/// (which placement compares).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceTaskRecord {
    Pending,
    Running,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceTaskCounts {
    pub pending: i32,
    pub running: i32,
}

/// The last time the control plane heard from an instance's agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub at_ms: i64,
}

fn resource_int(name: &str, value: i64) -> Resource {
    Resource {
        name: Some(name.to_string()),
        type_: Some("INTEGER".to_string()),
        double_value: Some(0.0),
        long_value: Some(0),
        integer_value: Some(value as i32),
        string_set_value: None,
    }
}

fn resource_ports(name: &str, ports: &BTreeSet<u16>) -> Resource {
    Resource {
        name: Some(name.to_string()),
        type_: Some("STRINGSET".to_string()),
        double_value: Some(0.0),
        long_value: Some(0),
        integer_value: Some(0),
        string_set_value: Some(ports.iter().map(u16::to_string).collect()),
    }
}

fn resources_to_wire(resources: &Resources) -> Vec<Resource> {
    vec![
        resource_int("CPU", resources.cpu_units),
        resource_int("MEMORY", resources.memory_mib),
        resource_ports("PORTS", &resources.tcp_ports),
        resource_ports("PORTS_UDP", &resources.udp_ports),
    ]
}

fn resource_number(resource: &Resource) -> Option<i64> {
    resource
        .integer_value
        .map(i64::from)
        .filter(|v| *v != 0)
        .or(resource.long_value.filter(|v| *v != 0))
        .or(resource.double_value.map(|d| d as i64).filter(|v| *v != 0))
        .or(resource.integer_value.map(i64::from))
}

fn parse_ports(resource: &Resource) -> Result<BTreeSet<u16>, ApiError> {
    resource
        .string_set_value
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            p.parse::<u16>().map_err(|_| {
                ApiError::invalid_parameter(format!(
                    "Invalid port '{p}' in resource {}: ports are integers between 0 and 65535.",
                    resource.name.as_deref().unwrap_or_default()
                ))
            })
        })
        .collect()
}

/// `totalResources` of RegisterContainerInstance: CPU and MEMORY are
/// required; PORTS add to the ports ECS always reserves.
fn registered_resources(total: &[Resource]) -> Result<Resources, ApiError> {
    let mut resources = Resources {
        tcp_ports: ALWAYS_RESERVED_TCP_PORTS.into_iter().collect(),
        ..Resources::default()
    };
    let (mut cpu, mut memory) = (None, None);
    for resource in total {
        match resource.name.as_deref() {
            Some("CPU") => cpu = resource_number(resource),
            Some("MEMORY") => memory = resource_number(resource),
            Some("PORTS") => resources.tcp_ports.extend(parse_ports(resource)?),
            Some("PORTS_UDP") => resources.udp_ports.extend(parse_ports(resource)?),
            _ => {}
        }
    }
    resources.cpu_units = cpu.filter(|c| *c > 0).ok_or_else(|| {
        ApiError::invalid_parameter(
            "totalResources must include CPU as a positive INTEGER resource.",
        )
    })?;
    resources.memory_mib = memory.filter(|m| *m > 0).ok_or_else(|| {
        ApiError::invalid_parameter(
            "totalResources must include MEMORY as a positive INTEGER resource.",
        )
    })?;
    Ok(resources)
}

fn attributes_from_wire(
    attributes: &[Attribute],
) -> Result<Vec<(String, Option<String>)>, ApiError> {
    attributes
        .iter()
        .map(|a| {
            let name = a.name.clone().unwrap_or_default();
            validate_attribute(&name, a.value.as_deref())?;
            Ok((name, a.value.clone()))
        })
        .collect()
}

impl Ecs {
    pub(crate) async fn load_container_instance(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        id: &str,
    ) -> Result<Option<Versioned<ContainerInstance>>, ApiError> {
        records::get(
            self.store(),
            &keys::container_instance(&ctx.region, cluster_name, id),
        )
        .await
    }

    pub(crate) async fn container_instances(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
    ) -> Result<Vec<Versioned<ContainerInstance>>, ApiError> {
        records::list_versioned(
            self.store(),
            &keys::container_instances_prefix(&ctx.region, cluster_name),
        )
        .await
    }

    /// Instance id → time its agent was last heard from.
    pub(crate) async fn heartbeats(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
    ) -> Result<BTreeMap<String, i64>, ApiError> {
        let prefix = keys::agent_heartbeats_prefix(&ctx.region, cluster_name);
        let beats: Vec<(String, Heartbeat)> = records::list(self.store(), &prefix).await?;
        Ok(beats
            .into_iter()
            .map(|(key, beat)| (key[prefix.len()..].to_string(), beat.at_ms))
            .collect())
    }

    pub(crate) fn agent_connected(
        &self,
        ctx: &RequestContext,
        last_heartbeat_ms: Option<i64>,
    ) -> bool {
        last_heartbeat_ms.is_some_and(|at| ctx.now_ms - at <= self.config().agent_timeout_ms)
    }

    pub(crate) async fn instance_task_counts(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        id: &str,
    ) -> Result<InstanceTaskCounts, ApiError> {
        let prefix = keys::instance_tasks_prefix(&ctx.region, cluster_name, id);
        let mut counts = InstanceTaskCounts::default();
        for (_, record) in records::list::<InstanceTaskRecord>(self.store(), &prefix).await? {
            match record {
                InstanceTaskRecord::Pending => counts.pending += 1,
                InstanceTaskRecord::Running => counts.running += 1,
            }
        }
        Ok(counts)
    }

    /// Records that the agent of instance `id` is alive (the session shell
    /// calls this on connect and on every heartbeat it delivers).
    pub async fn record_agent_heartbeat(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        id: &str,
    ) -> Result<(), ApiError> {
        let key = keys::agent_heartbeat(&ctx.region, cluster_name, id);
        self.store()
            .txn(store::Txn::new().then(store::Op::put(
                key,
                records::encode(&Heartbeat { at_ms: ctx.now_ms }),
            )))
            .await?;
        Ok(())
    }

    pub(crate) fn container_instance_to_wire(
        &self,
        ctx: &RequestContext,
        instance: &ContainerInstance,
        counts: InstanceTaskCounts,
        last_heartbeat_ms: Option<i64>,
        include_tags: bool,
    ) -> ecs_wire::ContainerInstance {
        ecs_wire::ContainerInstance {
            container_instance_arn: Some(
                ctx.arns()
                    .container_instance(&instance.cluster_name, &instance.id),
            ),
            ec2_instance_id: Some(instance.ec2_instance_id.clone()),
            version: Some(instance.version),
            version_info: Some(ecs_wire::VersionInfo {
                agent_version: instance.version_info.agent_version.clone(),
                agent_hash: instance.version_info.agent_hash.clone(),
                docker_version: instance.version_info.docker_version.clone(),
            }),
            remaining_resources: Some(resources_to_wire(&instance.remaining)),
            registered_resources: Some(resources_to_wire(&instance.registered)),
            status: Some(instance.status.as_str().to_string()),
            status_reason: instance.status_reason.clone(),
            agent_connected: Some(
                instance.status != ContainerInstanceStatus::Inactive
                    && self.agent_connected(ctx, last_heartbeat_ms),
            ),
            running_tasks_count: Some(counts.running),
            pending_tasks_count: Some(counts.pending),
            attributes: Some(
                instance
                    .attributes
                    .iter()
                    .map(|(name, value)| Attribute {
                        name: Some(name.clone()),
                        value: value.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            registered_at: Some(instance.registered_at_ms as f64 / 1000.0),
            attachments: Some(vec![]),
            tags: include_tags.then(|| model::tags::to_wire(&instance.tags)),
            ..Default::default()
        }
    }

    pub(crate) async fn register_container_instance(
        &self,
        ctx: &RequestContext,
        request: RegisterContainerInstanceRequest,
    ) -> Result<RegisterContainerInstanceResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let registered =
            registered_resources(request.total_resources.as_deref().unwrap_or_default())?;
        let attributes = attributes_from_wire(request.attributes.as_deref().unwrap_or_default())?;
        let tags = model::tags::from_wire(request.tags.as_deref().unwrap_or_default());
        model::tags::validate_tags(&tags)?;
        let version_info = request
            .version_info
            .as_ref()
            .map(|v| VersionInfo {
                agent_version: v.agent_version.clone(),
                agent_hash: v.agent_hash.clone(),
                docker_version: v.docker_version.clone(),
            })
            .unwrap_or_default();
        let identity_instance_id = request
            .instance_identity_document
            .as_deref()
            .and_then(|doc| serde_json::from_str::<serde_json::Value>(doc).ok())
            .and_then(|doc| doc.get("instanceId")?.as_str().map(str::to_string));

        for _ in 0..MAX_CAS_ATTEMPTS {
            let existing = match request.container_instance_arn.as_deref() {
                Some(arn) => {
                    let id = id_from_reference(arn, "container-instance", &cluster.cluster_name)?;
                    self.load_container_instance(ctx, &cluster.cluster_name, &id)
                        .await?
                }
                None => None,
            };
            let (instance, expected) = match existing {
                Some(current) => {
                    // Re-registration keeps the identity and what its tasks use.
                    let old = current.value;
                    let mut instance = old.clone();
                    let used_cpu = old.registered.cpu_units - old.remaining.cpu_units;
                    let used_memory = old.registered.memory_mib - old.remaining.memory_mib;
                    let used_tcp: BTreeSet<u16> = old
                        .remaining
                        .tcp_ports
                        .difference(&old.registered.tcp_ports)
                        .copied()
                        .collect();
                    let used_udp: BTreeSet<u16> = old
                        .remaining
                        .udp_ports
                        .difference(&old.registered.udp_ports)
                        .copied()
                        .collect();
                    instance.remaining = Resources {
                        cpu_units: registered.cpu_units - used_cpu,
                        memory_mib: registered.memory_mib - used_memory,
                        tcp_ports: registered.tcp_ports.union(&used_tcp).copied().collect(),
                        udp_ports: registered.udp_ports.union(&used_udp).copied().collect(),
                    };
                    instance.registered = registered.clone();
                    instance.version_info = version_info.clone();
                    instance.attributes = attributes.iter().cloned().collect();
                    if instance.status == ContainerInstanceStatus::Inactive {
                        instance.status = ContainerInstanceStatus::Active;
                        instance.registered_at_ms = ctx.now_ms;
                    }
                    if !tags.is_empty() {
                        instance.tags = tags.clone();
                    }
                    instance.version += 1;
                    (instance, current.mod_revision)
                }
                None => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    let ec2_instance_id = identity_instance_id
                        .clone()
                        .unwrap_or_else(|| format!("i-{}", &id[..17]));
                    let instance = ContainerInstance {
                        id,
                        cluster_name: cluster.cluster_name.clone(),
                        ec2_instance_id,
                        status: ContainerInstanceStatus::Active,
                        status_reason: None,
                        remaining: registered.clone(),
                        registered: registered.clone(),
                        attributes: attributes.iter().cloned().collect(),
                        version_info: version_info.clone(),
                        registered_at_ms: ctx.now_ms,
                        task_groups: BTreeMap::new(),
                        tags: tags.clone(),
                        version: 1,
                    };
                    (instance, 0)
                }
            };
            let key = keys::container_instance(&ctx.region, &cluster.cluster_name, &instance.id);
            let heartbeat_key =
                keys::agent_heartbeat(&ctx.region, &cluster.cluster_name, &instance.id);
            let written = Write::new()
                .expect(&key, expected)
                .put(&key, &instance)
                .put(&heartbeat_key, &Heartbeat { at_ms: ctx.now_ms })
                .commit(self.store())
                .await?;
            if written {
                self.placement_cache().invalidate_unless_known(
                    &ctx.region,
                    &cluster.cluster_name,
                    &instance.id,
                );
                return Ok(RegisterContainerInstanceResponse {
                    container_instance: Some(
                        self.container_instance_to_wire(
                            ctx,
                            &instance,
                            self.instance_task_counts(ctx, &instance.cluster_name, &instance.id)
                                .await?,
                            Some(ctx.now_ms),
                            true,
                        ),
                    ),
                });
            }
        }
        Err(records::too_much_contention("the container instance"))
    }

    /// Read-modify-write of one container instance. `change` returns
    /// whether it changed anything; nothing is written when it did not.
    pub(crate) async fn modify_container_instance(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        id: &str,
        change: impl Fn(&mut ContainerInstance) -> Result<bool, ApiError>,
    ) -> Result<Option<ContainerInstance>, ApiError> {
        let key = keys::container_instance(&ctx.region, cluster_name, id);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(current) = self.load_container_instance(ctx, cluster_name, id).await? else {
                return Ok(None);
            };
            let mut instance = current.value;
            if !change(&mut instance)? {
                return Ok(Some(instance));
            }
            instance.version += 1;
            if Write::new()
                .expect(&key, current.mod_revision)
                .put(&key, &instance)
                .commit(self.store())
                .await?
            {
                self.placement_cache().invalidate(&ctx.region, cluster_name);
                return Ok(Some(instance));
            }
        }
        Err(records::too_much_contention("the container instance"))
    }

    pub(crate) async fn deregister_container_instance(
        &self,
        ctx: &RequestContext,
        request: DeregisterContainerInstanceRequest,
    ) -> Result<DeregisterContainerInstanceResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let reference = request.container_instance.clone().unwrap_or_default();
        let id = id_from_reference(&reference, "container-instance", &cluster.cluster_name)?;
        let force = request.force == Some(true);
        let counts = self
            .instance_task_counts(ctx, &cluster.cluster_name, &id)
            .await?;
        let instance = self
            .modify_container_instance(ctx, &cluster.cluster_name, &id, |instance| {
                if instance.status == ContainerInstanceStatus::Inactive {
                    return Ok(false);
                }
                if !force && (counts.running > 0 || counts.pending > 0) {
                    return Err(ApiError::invalid_parameter(
                        "Found running tasks on the instance. Stop them first, or deregister with force to leave them running unmanaged.",
                    ));
                }
                instance.status = ContainerInstanceStatus::Inactive;
                Ok(true)
            })
            .await?
            .ok_or_else(|| ApiError::invalid_parameter(format!("The referenced container instance '{reference}' does not exist in cluster {}.", cluster.cluster_name)))?;
        let heartbeat = self
            .heartbeats(ctx, &cluster.cluster_name)
            .await?
            .get(&id)
            .copied();
        Ok(DeregisterContainerInstanceResponse {
            container_instance: Some(
                self.container_instance_to_wire(ctx, &instance, counts, heartbeat, false),
            ),
        })
    }

    pub(crate) async fn describe_container_instances(
        &self,
        ctx: &RequestContext,
        request: DescribeContainerInstancesRequest,
    ) -> Result<DescribeContainerInstancesResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let references = request.container_instances.clone().unwrap_or_default();
        if references.is_empty() {
            return Err(ApiError::invalid_parameter(
                "Container Instances cannot be empty.",
            ));
        }
        if references.len() > MAX_DESCRIBE_CONTAINER_INSTANCES {
            return Err(ApiError::invalid_parameter(format!(
                "containerInstances can have at most {MAX_DESCRIBE_CONTAINER_INSTANCES} items."
            )));
        }
        let include_tags = request
            .include
            .as_deref()
            .unwrap_or_default()
            .contains(&ContainerInstanceField::Tags);
        let heartbeats = self.heartbeats(ctx, &cluster.cluster_name).await?;
        let mut instances = Vec::new();
        let mut failures = Vec::new();
        for reference in &references {
            let id = id_from_reference(reference, "container-instance", &cluster.cluster_name)?;
            match self
                .load_container_instance(ctx, &cluster.cluster_name, &id)
                .await?
            {
                Some(instance) => instances.push(
                    self.container_instance_to_wire(
                        ctx,
                        &instance.value,
                        self.instance_task_counts(ctx, &cluster.cluster_name, &id)
                            .await?,
                        heartbeats.get(&id).copied(),
                        include_tags,
                    ),
                ),
                None => failures.push(Failure {
                    arn: Some(ctx.arns().container_instance(&cluster.cluster_name, &id)),
                    reason: Some("MISSING".to_string()),
                    detail: None,
                }),
            }
        }
        Ok(DescribeContainerInstancesResponse {
            container_instances: Some(instances),
            failures: Some(failures),
        })
    }

    pub(crate) async fn list_container_instances(
        &self,
        ctx: &RequestContext,
        request: ListContainerInstancesRequest,
    ) -> Result<ListContainerInstancesResponse, ApiError> {
        const OP: &str = "ListContainerInstances";
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let page_size = pagination::page_size(request.max_results, 100, 100)?;
        let after = pagination::decode_token(OP, request.next_token.as_deref())?;
        let filter = request
            .filter
            .as_deref()
            .map(crate::placement::parse_expression)
            .transpose()?;
        let mut matching = Vec::new();
        for instance in self.container_instances(ctx, &cluster.cluster_name).await? {
            let instance = instance.value;
            let status_matches = match request.status {
                Some(status) => instance.status.as_str() == status.as_str(),
                None => instance.status != ContainerInstanceStatus::Inactive,
            };
            if !status_matches {
                continue;
            }
            if let Some(filter) = &filter {
                if !crate::placement::instance_matches(filter, &instance) {
                    continue;
                }
            }
            matching.push(instance.id);
        }
        let (page, next_token) = pagination::paginate(
            OP,
            matching,
            String::clone,
            after.as_deref(),
            page_size,
            false,
        );
        Ok(ListContainerInstancesResponse {
            container_instance_arns: Some(
                page.iter()
                    .map(|id| ctx.arns().container_instance(&cluster.cluster_name, id))
                    .collect(),
            ),
            next_token,
        })
    }

    pub(crate) async fn update_container_instances_state(
        &self,
        ctx: &RequestContext,
        request: UpdateContainerInstancesStateRequest,
    ) -> Result<UpdateContainerInstancesStateResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let target = match request.status.map(|s| s.as_str()) {
            Some("ACTIVE") => ContainerInstanceStatus::Active,
            Some("DRAINING") => ContainerInstanceStatus::Draining,
            other => {
                return Err(ApiError::invalid_parameter(format!(
                    "Container instances can only be set to ACTIVE or DRAINING; '{}' was given.",
                    other.unwrap_or_default()
                )))
            }
        };
        let references = request.container_instances.clone().unwrap_or_default();
        if references.len() > 10 {
            return Err(ApiError::invalid_parameter(
                "containerInstances can have at most 10 items.",
            ));
        }
        let heartbeats = self.heartbeats(ctx, &cluster.cluster_name).await?;
        let mut updated = Vec::new();
        let mut failures = Vec::new();
        for reference in &references {
            let id = id_from_reference(reference, "container-instance", &cluster.cluster_name)?;
            let arn = ctx.arns().container_instance(&cluster.cluster_name, &id);
            let changed = self
                .modify_container_instance(ctx, &cluster.cluster_name, &id, |instance| {
                    let settable = matches!(
                        instance.status,
                        ContainerInstanceStatus::Active | ContainerInstanceStatus::Draining
                    );
                    if settable {
                        instance.status = target;
                    }
                    Ok(settable)
                })
                .await?;
            match changed {
                Some(instance) if instance.status == ContainerInstanceStatus::Inactive => failures
                    .push(Failure {
                        arn: Some(arn),
                        reason: Some("INACTIVE".into()),
                        detail: Some("The container instance is deregistered.".into()),
                    }),
                Some(instance) => updated.push(
                    self.container_instance_to_wire(
                        ctx,
                        &instance,
                        self.instance_task_counts(ctx, &cluster.cluster_name, &id)
                            .await?,
                        heartbeats.get(&id).copied(),
                        false,
                    ),
                ),
                None => failures.push(Failure {
                    arn: Some(arn),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        Ok(UpdateContainerInstancesStateResponse {
            container_instances: Some(updated),
            failures: Some(failures),
        })
    }

    /// Resolves an attribute's target (a container instance ARN or id).
    fn attribute_target(
        &self,
        cluster_name: &str,
        attribute: &Attribute,
    ) -> Result<String, ApiError> {
        if let Some(target_type) = attribute.target_type {
            if target_type != TargetType::ContainerInstance {
                return Err(ApiError::invalid_parameter(
                    "targetType must be container-instance.",
                ));
            }
        }
        let target = attribute.target_id.as_deref().ok_or_else(|| {
            ApiError::invalid_parameter(format!(
                "Attribute '{}' needs a targetId: the container instance ARN or id.",
                attribute.name.as_deref().unwrap_or_default()
            ))
        })?;
        Ok(id_from_reference(
            target,
            "container-instance",
            cluster_name,
        )?)
    }

    pub(crate) async fn put_attributes(
        &self,
        ctx: &RequestContext,
        request: PutAttributesRequest,
    ) -> Result<PutAttributesResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let attributes = request.attributes.clone().unwrap_or_default();
        if attributes.len() > MAX_CUSTOM_ATTRIBUTES {
            return Err(ApiError::client(
                "AttributeLimitExceededException",
                format!("You can apply up to {MAX_CUSTOM_ATTRIBUTES} custom attributes for each resource."),
            ));
        }
        let mut by_target: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
        for attribute in &attributes {
            let name = attribute.name.clone().unwrap_or_default();
            validate_attribute(&name, attribute.value.as_deref())?;
            let id = self.attribute_target(&cluster.cluster_name, attribute)?;
            by_target
                .entry(id)
                .or_default()
                .push((name, attribute.value.clone()));
        }
        for (id, changes) in &by_target {
            let changed = self
                .modify_container_instance(ctx, &cluster.cluster_name, id, |instance| {
                    let mut changed = false;
                    for (name, value) in changes {
                        changed |= instance.attributes.insert(name.clone(), value.clone())
                            != Some(value.clone());
                    }
                    Ok(changed)
                })
                .await?;
            if changed.is_none() {
                return Err(ApiError::client(
                    "TargetNotFoundException",
                    format!(
                        "Could not find the container instance '{id}' in cluster {}.",
                        cluster.cluster_name
                    ),
                ));
            }
        }
        Ok(PutAttributesResponse {
            attributes: Some(attributes),
        })
    }

    pub(crate) async fn delete_attributes(
        &self,
        ctx: &RequestContext,
        request: DeleteAttributesRequest,
    ) -> Result<DeleteAttributesResponse, ApiError> {
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let attributes = request.attributes.clone().unwrap_or_default();
        let mut by_target: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for attribute in &attributes {
            let id = self.attribute_target(&cluster.cluster_name, attribute)?;
            by_target
                .entry(id)
                .or_default()
                .push(attribute.name.clone().unwrap_or_default());
        }
        for (id, names) in &by_target {
            let changed = self
                .modify_container_instance(ctx, &cluster.cluster_name, id, |instance| {
                    let mut changed = false;
                    for name in names {
                        changed |= instance.attributes.remove(name).is_some();
                    }
                    Ok(changed)
                })
                .await?;
            if changed.is_none() {
                return Err(ApiError::client(
                    "TargetNotFoundException",
                    format!(
                        "Could not find the container instance '{id}' in cluster {}.",
                        cluster.cluster_name
                    ),
                ));
            }
        }
        Ok(DeleteAttributesResponse {
            attributes: Some(attributes),
        })
    }

    pub(crate) async fn list_attributes(
        &self,
        ctx: &RequestContext,
        request: ListAttributesRequest,
    ) -> Result<ListAttributesResponse, ApiError> {
        const OP: &str = "ListAttributes";
        let cluster = self
            .active_cluster(ctx, request.cluster.as_deref())
            .await?
            .value;
        let page_size = pagination::page_size(request.max_results, 100, 100)?;
        let after = pagination::decode_token(OP, request.next_token.as_deref())?;
        if request.attribute_value.is_some() && request.attribute_name.is_none() {
            return Err(ApiError::invalid_parameter(
                "attributeValue can only be used together with attributeName.",
            ));
        }
        let mut attributes = Vec::new();
        for instance in self.container_instances(ctx, &cluster.cluster_name).await? {
            let instance = instance.value;
            if instance.status == ContainerInstanceStatus::Inactive {
                continue;
            }
            for (name, value) in &instance.attributes {
                if request.attribute_name.as_deref().is_some_and(|n| n != name) {
                    continue;
                }
                if request.attribute_value.is_some() && request.attribute_value != *value {
                    continue;
                }
                attributes.push(Attribute {
                    name: Some(name.clone()),
                    value: value.clone(),
                    target_type: Some(TargetType::ContainerInstance),
                    target_id: Some(
                        ctx.arns()
                            .container_instance(&cluster.cluster_name, &instance.id),
                    ),
                });
            }
        }
        let key = |a: &Attribute| {
            format!(
                "{}\u{0}{}",
                a.target_id.as_deref().unwrap_or_default(),
                a.name.as_deref().unwrap_or_default()
            )
        };
        attributes.sort_by_key(key);
        let (page, next_token) =
            pagination::paginate(OP, attributes, key, after.as_deref(), page_size, false);
        Ok(ListAttributesResponse {
            attributes: Some(page),
            next_token,
        })
    }

    pub(crate) async fn discover_poll_endpoint(
        &self,
        _ctx: &RequestContext,
        _request: DiscoverPollEndpointRequest,
    ) -> Result<DiscoverPollEndpointResponse, ApiError> {
        let endpoint = self.endpoint().ok_or_else(|| {
            ApiError::server("The control plane's endpoint is not known yet; retry.")
        })?;
        Ok(DiscoverPollEndpointResponse {
            endpoint: Some(endpoint.to_string()),
            telemetry_endpoint: Some(endpoint.to_string()),
            service_connect_endpoint: None,
        })
    }
}
