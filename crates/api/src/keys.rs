//! The store's key layout for ECS state. Every key lives under the region
//! the request was signed for, so each region is its own namespace, as on AWS.
//!
//! ```text
//! /ecs/<region>/clusters/<cluster>                            Cluster
//! /ecs/<region>/task-definition-families/<family>             FamilyRecord
//! /ecs/<region>/task-definitions/<family>/<revision:010>      TaskDefinitionRecord
//! /ecs/<region>/task-definition-latest/<family>               LatestActiveRecord
//! /ecs/<region>/account-settings/<principal-arn>/<name>       AccountSettingRecord
//! /ecs/<region>/container-instances/<cluster>/<id>            ContainerInstance
//! /ecs/<region>/agent-heartbeats/<cluster>/<id>               Heartbeat
//! /ecs/<region>/tasks/<cluster>/<id>                          Task
//! /ecs/<region>/instance-tasks/<cluster>/<instance>/<task>    InstanceTaskRecord
//! /ecs/<region>/run-task-tokens/<cluster>/<clientToken>       RunTaskToken
//! /ecs/<region>/services/<cluster>/<name>                     ServiceRecord
//! /ecs/<region>/service-tokens/<cluster>/<clientToken>        CreateService clientToken → name
//! /service-regions/<region>                                  marker: the region has services
//! ```

pub fn cluster(region: &str, cluster_name: &str) -> String {
    format!("/ecs/{region}/clusters/{cluster_name}")
}

pub fn clusters_prefix(region: &str) -> String {
    format!("/ecs/{region}/clusters/")
}

pub fn task_definition_family(region: &str, family: &str) -> String {
    format!("/ecs/{region}/task-definition-families/{family}")
}

pub fn task_definition_families_prefix(region: &str) -> String {
    format!("/ecs/{region}/task-definition-families/")
}

pub fn task_definition_latest(region: &str, family: &str) -> String {
    format!("/ecs/{region}/task-definition-latest/{family}")
}

pub fn task_definition(region: &str, family: &str, revision: i64) -> String {
    format!("/ecs/{region}/task-definitions/{family}/{revision:010}")
}

pub fn account_setting(region: &str, principal_arn: &str, name: &str) -> String {
    format!("/ecs/{region}/account-settings/{principal_arn}/{name}")
}

pub fn account_settings_prefix(region: &str, principal_arn: &str) -> String {
    format!("/ecs/{region}/account-settings/{principal_arn}/")
}

pub fn container_instances_prefix(region: &str, cluster_name: &str) -> String {
    format!("/ecs/{region}/container-instances/{cluster_name}/")
}

pub fn tasks_prefix(region: &str, cluster_name: &str) -> String {
    format!("/ecs/{region}/tasks/{cluster_name}/")
}

pub fn services_prefix(region: &str, cluster_name: &str) -> String {
    format!("/ecs/{region}/services/{cluster_name}/")
}

pub fn container_instance(region: &str, cluster_name: &str, id: &str) -> String {
    format!("/ecs/{region}/container-instances/{cluster_name}/{id}")
}

pub fn agent_heartbeat(region: &str, cluster_name: &str, id: &str) -> String {
    format!("/ecs/{region}/agent-heartbeats/{cluster_name}/{id}")
}

pub fn agent_heartbeats_prefix(region: &str, cluster_name: &str) -> String {
    format!("/ecs/{region}/agent-heartbeats/{cluster_name}/")
}

pub fn task(region: &str, cluster_name: &str, id: &str) -> String {
    format!("/ecs/{region}/tasks/{cluster_name}/{id}")
}

pub fn run_task_token(region: &str, cluster_name: &str, token: &str) -> String {
    format!("/ecs/{region}/run-task-tokens/{cluster_name}/{token}")
}

pub fn instance_task(region: &str, cluster_name: &str, instance_id: &str, task_id: &str) -> String {
    format!("/ecs/{region}/instance-tasks/{cluster_name}/{instance_id}/{task_id}")
}

pub fn instance_tasks_prefix(region: &str, cluster_name: &str, instance_id: &str) -> String {
    format!("/ecs/{region}/instance-tasks/{cluster_name}/{instance_id}/")
}

pub fn service(region: &str, cluster_name: &str, service_name: &str) -> String {
    format!("/ecs/{region}/services/{cluster_name}/{service_name}")
}

pub fn service_token(region: &str, cluster_name: &str, client_token: &str) -> String {
    format!("/ecs/{region}/service-tokens/{cluster_name}/{client_token}")
}

/// Every service of every cluster in the region (the service controller's
/// scan).
/// Every cluster's container instances in a region.
pub fn all_container_instances_prefix(region: &str) -> String {
    format!("/ecs/{region}/container-instances/")
}

pub fn all_services_prefix(region: &str) -> String {
    format!("/ecs/{region}/services/")
}

/// Marks a region that has services, so the service controller knows which
/// regions to scan without reading every key.
pub fn service_region(region: &str) -> String {
    format!("/service-regions/{region}")
}

pub const SERVICE_REGIONS_PREFIX: &str = "/service-regions/";
