//! CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
//! UpdateClusterSettings, DeleteCluster.

use ecs_wire::{
    ClusterField, CreateClusterRequest, CreateClusterResponse, DeleteClusterRequest,
    DeleteClusterResponse, DescribeClustersRequest, DescribeClustersResponse, Failure,
    KeyValuePair, ListClustersRequest, ListClustersResponse, UpdateClusterRequest,
    UpdateClusterResponse, UpdateClusterSettingsRequest, UpdateClusterSettingsResponse,
};
use model::arn::cluster_name_from_reference;
use model::cluster::{
    validate_capacity_providers, validate_cluster_name, validate_cluster_settings,
    CapacityProviderStrategyItem, Cluster, ClusterSetting, ClusterStatus, DEFAULT_CLUSTER_NAME,
};
use store::RangeRequest;

use crate::records::{self, Versioned, Write, MAX_CAS_ATTEMPTS};
use crate::{keys, pagination, ApiError, Ecs, RequestContext};

pub const MAX_DESCRIBE_CLUSTERS: usize = 100;

/// What a cluster holds, counted from the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    pub registered_container_instances: i32,
    pub running_tasks: i32,
    pub pending_tasks: i32,
    pub active_services: i32,
    pub draining_services: i32,
}

/// Which optional parts of a cluster to return.
#[derive(Clone, Copy, Debug, Default)]
struct Include {
    settings: bool,
    statistics: bool,
    tags: bool,
    configurations: bool,
}

impl Include {
    fn everything() -> Self {
        Include {
            settings: true,
            statistics: true,
            tags: true,
            configurations: true,
        }
    }
    fn from_fields(fields: &[ClusterField]) -> Self {
        Include {
            settings: fields.contains(&ClusterField::Settings),
            statistics: fields.contains(&ClusterField::Statistics),
            tags: fields.contains(&ClusterField::Tags),
            configurations: fields.contains(&ClusterField::Configurations),
        }
    }
}

fn settings_from_wire(
    settings: &[ecs_wire::ClusterSetting],
) -> Result<Vec<ClusterSetting>, ApiError> {
    let settings: Vec<ClusterSetting> = settings
        .iter()
        .map(|s| ClusterSetting {
            name: s.name.map(|n| n.as_str().to_string()).unwrap_or_default(),
            value: s.value.clone().unwrap_or_default(),
        })
        .collect();
    validate_cluster_settings(&settings)?;
    Ok(settings)
}

fn strategy_from_wire(
    items: &[ecs_wire::CapacityProviderStrategyItem],
) -> Vec<CapacityProviderStrategyItem> {
    items
        .iter()
        .map(|i| CapacityProviderStrategyItem {
            capacity_provider: i.capacity_provider.clone().unwrap_or_default(),
            weight: i.weight.unwrap_or(0),
            base: i.base.unwrap_or(0),
        })
        .collect()
}

fn reject_service_connect(
    defaults: Option<&ecs_wire::ClusterServiceConnectDefaultsRequest>,
) -> Result<(), ApiError> {
    match defaults {
        None => Ok(()),
        Some(defaults) => Err(ApiError::client(
            "NamespaceNotFoundException",
            format!(
                "The specified namespace '{}' was not found. Berth has no AWS Cloud Map namespaces yet; omit serviceConnectDefaults.",
                defaults.namespace.as_deref().unwrap_or_default()
            ),
        )),
    }
}

fn configuration_to_value(configuration: &ecs_wire::ClusterConfiguration) -> serde_json::Value {
    serde_json::to_value(configuration).expect("wire shapes serialize")
}

impl Ecs {
    pub(crate) async fn load_cluster(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Option<Versioned<Cluster>>, ApiError> {
        records::get(self.store(), &keys::cluster(&ctx.region, name)).await
    }

    /// The ACTIVE cluster named by `reference` (a name or ARN; default
    /// `default`), or `ClusterNotFoundException`.
    pub(crate) async fn active_cluster(
        &self,
        ctx: &RequestContext,
        reference: Option<&str>,
    ) -> Result<Versioned<Cluster>, ApiError> {
        let name = cluster_name_from_reference(reference.unwrap_or(DEFAULT_CLUSTER_NAME))?;
        match self.load_cluster(ctx, &name).await? {
            Some(cluster) if cluster.value.is_active() => Ok(cluster),
            _ => Err(ApiError::cluster_not_found()),
        }
    }

    pub(crate) async fn cluster_counts(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
    ) -> Result<ClusterCounts, ApiError> {
        let mut counts = ClusterCounts::default();
        let field = |kv: &store::KeyValue, name: &str| -> Option<String> {
            let value: serde_json::Value = serde_json::from_slice(&kv.value).ok()?;
            value.get(name)?.as_str().map(str::to_string)
        };
        let instances = self
            .store()
            .range(RangeRequest::prefix(keys::container_instances_prefix(
                &ctx.region,
                cluster_name,
            )))
            .await?;
        for kv in &instances.kvs {
            if matches!(
                field(kv, "status").as_deref(),
                Some("ACTIVE") | Some("DRAINING")
            ) {
                counts.registered_container_instances += 1;
            }
        }
        let tasks = self
            .store()
            .range(RangeRequest::prefix(keys::tasks_prefix(
                &ctx.region,
                cluster_name,
            )))
            .await?;
        for kv in &tasks.kvs {
            match field(kv, "lastStatus").as_deref() {
                Some("RUNNING") => counts.running_tasks += 1,
                Some("PROVISIONING") | Some("PENDING") | Some("ACTIVATING") => {
                    counts.pending_tasks += 1
                }
                _ => {}
            }
        }
        let services = self
            .store()
            .range(RangeRequest::prefix(keys::services_prefix(
                &ctx.region,
                cluster_name,
            )))
            .await?;
        for kv in &services.kvs {
            let service: crate::services::ServiceRecord = records::decode(&kv.key, &kv.value)?;
            match service.scheduling.status {
                deployments::ServiceStatus::Active => counts.active_services += 1,
                deployments::ServiceStatus::Draining => counts.draining_services += 1,
                deployments::ServiceStatus::Inactive => {}
            }
        }
        Ok(counts)
    }

    async fn cluster_to_wire(
        &self,
        ctx: &RequestContext,
        cluster: &Cluster,
        include: Include,
    ) -> Result<ecs_wire::Cluster, ApiError> {
        let counts = if cluster.is_active() {
            self.cluster_counts(ctx, &cluster.cluster_name).await?
        } else {
            ClusterCounts::default()
        };
        let statistics = include.statistics.then(|| {
            let stat = |name: &str, value: i32| KeyValuePair {
                name: Some(name.to_string()),
                value: Some(value.to_string()),
            };
            vec![
                stat("runningEC2TasksCount", counts.running_tasks),
                stat("runningFargateTasksCount", 0),
                stat("pendingEC2TasksCount", counts.pending_tasks),
                stat("pendingFargateTasksCount", 0),
                stat("runningExternalTasksCount", 0),
                stat("pendingExternalTasksCount", 0),
                stat("activeEC2ServiceCount", counts.active_services),
                stat("activeFargateServiceCount", 0),
                stat("drainingEC2ServiceCount", counts.draining_services),
                stat("drainingFargateServiceCount", 0),
                stat("activeExternalServiceCount", 0),
                stat("drainingExternalServiceCount", 0),
            ]
        });
        let configuration = if include.configurations {
            cluster
                .configuration
                .as_ref()
                .map(|c| serde_json::from_value(c.clone()))
                .transpose()
                .map_err(|err| {
                    ApiError::server(format!("stored cluster configuration is unreadable: {err}"))
                })?
        } else {
            None
        };
        Ok(ecs_wire::Cluster {
            cluster_arn: Some(ctx.arns().cluster(&cluster.cluster_name)),
            cluster_name: Some(cluster.cluster_name.clone()),
            configuration,
            status: Some(cluster.status.as_str().to_string()),
            registered_container_instances_count: Some(counts.registered_container_instances),
            running_tasks_count: Some(counts.running_tasks),
            pending_tasks_count: Some(counts.pending_tasks),
            active_services_count: Some(counts.active_services),
            statistics,
            tags: include.tags.then(|| model::tags::to_wire(&cluster.tags)),
            settings: include.settings.then(|| {
                cluster
                    .settings
                    .iter()
                    .map(|s| ecs_wire::ClusterSetting {
                        name: s.name.parse().ok(),
                        value: Some(s.value.clone()),
                    })
                    .collect()
            }),
            capacity_providers: Some(cluster.capacity_providers.clone()),
            default_capacity_provider_strategy: Some(
                cluster
                    .default_capacity_provider_strategy
                    .iter()
                    .map(|i| ecs_wire::CapacityProviderStrategyItem {
                        capacity_provider: Some(i.capacity_provider.clone()),
                        weight: Some(i.weight),
                        base: Some(i.base),
                    })
                    .collect(),
            ),
            attachments: None,
            attachments_status: None,
            service_connect_defaults: None,
        })
    }

    pub(crate) async fn create_cluster(
        &self,
        ctx: &RequestContext,
        request: CreateClusterRequest,
    ) -> Result<CreateClusterResponse, ApiError> {
        let name = request
            .cluster_name
            .clone()
            .unwrap_or_else(|| DEFAULT_CLUSTER_NAME.to_string());
        validate_cluster_name(&name)?;
        let settings = settings_from_wire(request.settings.as_deref().unwrap_or_default())?;
        let capacity_providers = request.capacity_providers.clone().unwrap_or_default();
        let strategy = strategy_from_wire(
            request
                .default_capacity_provider_strategy
                .as_deref()
                .unwrap_or_default(),
        );
        validate_capacity_providers(&capacity_providers, &strategy)?;
        reject_service_connect(request.service_connect_defaults.as_ref())?;
        let tags = model::tags::from_wire(request.tags.as_deref().unwrap_or_default());
        model::tags::validate_tags(&tags)?;
        let insights_default = self
            .effective_account_setting(ctx, &ctx.principal_arn, "containerInsights")
            .await?;

        let key = keys::cluster(&ctx.region, &name);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let existing = self.load_cluster(ctx, &name).await?;
            if let Some(existing) = &existing {
                if existing.value.is_active() {
                    // CreateCluster is idempotent: an ACTIVE cluster is returned as it is.
                    let cluster = self
                        .cluster_to_wire(ctx, &existing.value, Include::everything())
                        .await?;
                    return Ok(CreateClusterResponse {
                        cluster: Some(cluster),
                    });
                }
            }
            let mut cluster = Cluster::new(
                name.clone(),
                settings.clone(),
                &insights_default,
                ctx.now_ms,
            );
            cluster.configuration = request.configuration.as_ref().map(configuration_to_value);
            cluster.capacity_providers = capacity_providers.clone();
            cluster.default_capacity_provider_strategy = strategy.clone();
            cluster.tags = tags.clone();
            let expected = existing.map(|e| e.mod_revision).unwrap_or(0);
            if Write::new()
                .expect(&key, expected)
                .put(&key, &cluster)
                .commit(self.store())
                .await?
            {
                let cluster = self
                    .cluster_to_wire(ctx, &cluster, Include::everything())
                    .await?;
                return Ok(CreateClusterResponse {
                    cluster: Some(cluster),
                });
            }
        }
        Err(records::too_much_contention("the cluster"))
    }

    pub(crate) async fn describe_clusters(
        &self,
        ctx: &RequestContext,
        request: DescribeClustersRequest,
    ) -> Result<DescribeClustersResponse, ApiError> {
        let references = request
            .clusters
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_CLUSTER_NAME.to_string()]);
        if references.len() > MAX_DESCRIBE_CLUSTERS {
            return Err(ApiError::invalid_parameter(format!(
                "clusters can have at most {MAX_DESCRIBE_CLUSTERS} items."
            )));
        }
        if references.iter().any(|r| r.trim().is_empty()) {
            return Err(ApiError::invalid_parameter("Clusters can not be blank."));
        }
        let include = Include::from_fields(request.include.as_deref().unwrap_or_default());
        let mut clusters = Vec::new();
        let mut failures = Vec::new();
        for reference in &references {
            let name = cluster_name_from_reference(reference)?;
            match self.load_cluster(ctx, &name).await? {
                Some(cluster) => {
                    clusters.push(self.cluster_to_wire(ctx, &cluster.value, include).await?)
                }
                None => failures.push(Failure {
                    arn: Some(ctx.arns().cluster(&name)),
                    reason: Some("MISSING".to_string()),
                    detail: None,
                }),
            }
        }
        Ok(DescribeClustersResponse {
            clusters: Some(clusters),
            failures: Some(failures),
        })
    }

    pub(crate) async fn list_clusters(
        &self,
        ctx: &RequestContext,
        request: ListClustersRequest,
    ) -> Result<ListClustersResponse, ApiError> {
        const OP: &str = "ListClusters";
        let page_size = pagination::page_size(request.max_results, 100, 100)?;
        let after = pagination::decode_token(OP, request.next_token.as_deref())?;
        let clusters: Vec<(String, Cluster)> =
            records::list(self.store(), &keys::clusters_prefix(&ctx.region)).await?;
        let active: Vec<Cluster> = clusters
            .into_iter()
            .map(|(_, c)| c)
            .filter(Cluster::is_active)
            .collect();
        let (page, next_token) = pagination::paginate(
            OP,
            active,
            |c| c.cluster_name.clone(),
            after.as_deref(),
            page_size,
            false,
        );
        Ok(ListClustersResponse {
            cluster_arns: Some(
                page.iter()
                    .map(|c| ctx.arns().cluster(&c.cluster_name))
                    .collect(),
            ),
            next_token,
        })
    }

    /// Read-modify-write of an ACTIVE cluster with retries on conflict.
    async fn modify_cluster(
        &self,
        ctx: &RequestContext,
        reference: Option<&str>,
        change: impl Fn(&mut Cluster) -> Result<(), ApiError>,
    ) -> Result<Cluster, ApiError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.active_cluster(ctx, reference).await?;
            let mut cluster = current.value.clone();
            change(&mut cluster)?;
            cluster.updated_at_ms = ctx.now_ms;
            let key = keys::cluster(&ctx.region, &cluster.cluster_name);
            if Write::new()
                .expect(&key, current.mod_revision)
                .put(&key, &cluster)
                .commit(self.store())
                .await?
            {
                return Ok(cluster);
            }
        }
        Err(records::too_much_contention("the cluster"))
    }

    pub(crate) async fn update_cluster(
        &self,
        ctx: &RequestContext,
        request: UpdateClusterRequest,
    ) -> Result<UpdateClusterResponse, ApiError> {
        let settings = settings_from_wire(request.settings.as_deref().unwrap_or_default())?;
        reject_service_connect(request.service_connect_defaults.as_ref())?;
        let configuration = request.configuration.as_ref().map(configuration_to_value);
        let cluster = self
            .modify_cluster(ctx, request.cluster.as_deref(), |cluster| {
                cluster.apply_settings(&settings);
                if let Some(configuration) = &configuration {
                    cluster.configuration = Some(configuration.clone());
                }
                Ok(())
            })
            .await?;
        Ok(UpdateClusterResponse {
            cluster: Some(
                self.cluster_to_wire(ctx, &cluster, Include::everything())
                    .await?,
            ),
        })
    }

    pub(crate) async fn update_cluster_settings(
        &self,
        ctx: &RequestContext,
        request: UpdateClusterSettingsRequest,
    ) -> Result<UpdateClusterSettingsResponse, ApiError> {
        let settings = settings_from_wire(request.settings.as_deref().unwrap_or_default())?;
        let cluster = self
            .modify_cluster(ctx, request.cluster.as_deref(), |cluster| {
                cluster.apply_settings(&settings);
                Ok(())
            })
            .await?;
        Ok(UpdateClusterSettingsResponse {
            cluster: Some(
                self.cluster_to_wire(ctx, &cluster, Include::everything())
                    .await?,
            ),
        })
    }

    pub(crate) async fn delete_cluster(
        &self,
        ctx: &RequestContext,
        request: DeleteClusterRequest,
    ) -> Result<DeleteClusterResponse, ApiError> {
        let name = cluster_name_from_reference(request.cluster.as_deref().unwrap_or_default())?;
        let counts = self.cluster_counts(ctx, &name).await?;
        if counts.registered_container_instances > 0 {
            return Err(ApiError::client(
                "ClusterContainsContainerInstancesException",
                "The Cluster cannot be deleted while Container Instances are active. Draining instances count too: deregister them first.",
            ));
        }
        if counts.active_services > 0 || counts.draining_services > 0 {
            return Err(ApiError::client(
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
            ));
        }
        if counts.running_tasks > 0 || counts.pending_tasks > 0 {
            return Err(ApiError::client(
                "ClusterContainsTasksException",
                "The Cluster cannot be deleted while Tasks are active.",
            ));
        }
        let cluster = self
            .modify_cluster(ctx, Some(&name), |cluster| {
                cluster.status = ClusterStatus::Inactive;
                Ok(())
            })
            .await?;
        Ok(DeleteClusterResponse {
            cluster: Some(
                self.cluster_to_wire(ctx, &cluster, Include::everything())
                    .await?,
            ),
        })
    }
}
