//! What CloudWatch's `AWS/ECS` and `ECS/ContainerInsights` metrics read from ECS's records:
//! clusters with their `containerInsights` setting, container instances' resources,
//! services' counts, and a task's group. Read-only views, so the metric publishers never
//! depend on how the records are laid out.

use model::cluster::Cluster;
use model::container_instance::ContainerInstance;
use model::task::Task;
use store::Store;

use crate::services::ServiceRecord;
use crate::{keys, records, ApiError};

/// One ACTIVE cluster as its metrics see it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterView {
    pub cluster_name: String,
    /// The `containerInsights` setting: `enabled`, `enhanced` or `disabled`.
    pub container_insights: String,
    pub instances: Vec<ContainerInstance>,
    pub services: Vec<ServiceView>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    pub service_name: String,
    pub desired_count: u32,
    pub running_count: u32,
    pub pending_count: u32,
    pub deployment_count: u32,
}

impl ClusterView {
    /// Whether Container Insights metrics are published for the cluster.
    pub fn container_insights_on(&self) -> bool {
        matches!(self.container_insights.as_str(), "enabled" | "enhanced")
    }
}

/// Every ACTIVE cluster of `region`, with its instances and ACTIVE services.
pub async fn clusters(store: &dyn Store, region: &str) -> Result<Vec<ClusterView>, ApiError> {
    let clusters: Vec<(String, Cluster)> =
        records::list(store, &keys::clusters_prefix(region)).await?;
    let mut out = Vec::new();
    for (_, cluster) in clusters {
        if cluster.status != model::cluster::ClusterStatus::Active {
            continue;
        }
        let instances: Vec<(String, ContainerInstance)> = records::list(
            store,
            &keys::container_instances_prefix(region, &cluster.cluster_name),
        )
        .await?;
        let services: Vec<(String, ServiceRecord)> =
            records::list(store, &keys::services_prefix(region, &cluster.cluster_name)).await?;
        out.push(ClusterView {
            container_insights: cluster
                .settings
                .iter()
                .find(|setting| setting.name == "containerInsights")
                .map(|setting| setting.value.clone())
                .unwrap_or_else(|| "disabled".to_string()),
            cluster_name: cluster.cluster_name,
            instances: instances
                .into_iter()
                .map(|(_, instance)| instance)
                .collect(),
            services: services
                .into_iter()
                .filter(|(_, service)| !service.is_inactive())
                .map(|(_, service)| ServiceView {
                    service_name: service.scheduling.service_name.clone(),
                    desired_count: service.scheduling.desired_count,
                    running_count: service.scheduling.running_count,
                    pending_count: service.scheduling.pending_count,
                    deployment_count: service.scheduling.deployments.len() as u32,
                })
                .collect(),
        });
    }
    Ok(out)
}

/// A task by cluster name and task id.
pub async fn task(
    store: &dyn Store,
    region: &str,
    cluster_name: &str,
    task_id: &str,
) -> Result<Option<Task>, ApiError> {
    Ok(
        records::get(store, &keys::task(region, cluster_name, task_id))
            .await?
            .map(|found| found.value),
    )
}

/// A container instance by cluster name and id.
pub async fn container_instance(
    store: &dyn Store,
    region: &str,
    cluster_name: &str,
    id: &str,
) -> Result<Option<ContainerInstance>, ApiError> {
    Ok(
        records::get(store, &keys::container_instance(region, cluster_name, id))
            .await?
            .map(|found| found.value),
    )
}
