//! The AWS operations: request → validate → store → response.
//!
//! The HTTP shell (`control-plane`) authenticates a request, then hands the
//! operation name and JSON body to a service object here ([`Ecs`]). Requests
//! are parsed into the generated wire shapes (`ecs-wire`), checked with the
//! domain rules (`model`), applied to the store with compare-and-swap
//! transactions, and answered in wire shapes. Errors come back as
//! [`ApiError`] values carrying the AWS error code; the shell encodes them.
//!
//! Nothing here reads the clock: `now_ms` arrives in the [`RequestContext`].

use std::sync::Arc;

use model::arn::ArnScope;
use serde::de::DeserializeOwned;
use serde::Serialize;
use store::Store;

pub mod access_keys;
mod account_settings;
mod clusters;
mod container_instances;
mod error;
pub mod keys;
pub mod load_balancing;
pub mod metrics_view;
pub mod pagination;
pub mod placement;
mod placement_cache;
pub mod records;
mod service_controller;
mod service_targets;
mod services;
mod tags;
mod task_definitions;
mod task_protection;
mod tasks;

pub use error::ApiError;
pub use service_controller::{key_concerns_services, ServicesPass};

/// Who is calling, where, and when. Built by the HTTP shell from the verified
/// SigV4 credential scope and the server's configuration.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// From the SigV4 credential scope, e.g. `us-east-1`.
    pub region: String,
    /// The server's account id, e.g. `000000000000`.
    pub account_id: String,
    /// The caller's IAM principal, e.g. `arn:aws:iam::000000000000:root`.
    pub principal_arn: String,
    /// The access key the request was signed with (empty for Berth's own
    /// internal calls).
    pub access_key_id: String,
    pub request_id: String,
    /// Milliseconds since the Unix epoch, read once by the shell.
    pub now_ms: i64,
}

impl RequestContext {
    pub(crate) fn arns(&self) -> ArnScope {
        ArnScope::new(&self.region, &self.account_id)
    }
}

/// Tunables of the ECS service.
#[derive(Clone, Debug)]
pub struct EcsConfig {
    /// An agent not heard from for longer is shown `agentConnected: false`
    /// and receives no new tasks.
    pub agent_timeout_ms: i64,
    /// How long STOPPED tasks stay describable.
    pub stopped_task_retention_ms: i64,
}

impl Default for EcsConfig {
    fn default() -> Self {
        EcsConfig {
            agent_timeout_ms: 30_000,
            stopped_task_retention_ms: 24 * 3600 * 1000,
        }
    }
}

/// The ECS service (JSON 1.1, target prefix `AmazonEC2ContainerServiceV20141113`).
pub struct Ecs {
    store: Arc<dyn Store>,
    config: EcsConfig,
    /// The URL agents are told to connect to (DiscoverPollEndpoint), known
    /// once the listener is bound.
    endpoint: std::sync::OnceLock<String>,
    placement_cache: placement_cache::PlacementCache,
    /// ELBv2 target groups for services' `loadBalancers` (none: refused).
    target_groups: Option<Arc<dyn load_balancing::TargetGroups>>,
}

impl Ecs {
    pub const TARGET_PREFIX: &'static str = ecs_wire::TARGET_PREFIX;
    pub const SIGNING_NAME: &'static str = ecs_wire::SIGNING_NAME;

    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_config(store, EcsConfig::default())
    }

    pub fn with_config(store: Arc<dyn Store>, config: EcsConfig) -> Self {
        Ecs {
            store,
            config,
            endpoint: std::sync::OnceLock::new(),
            placement_cache: placement_cache::PlacementCache::default(),
            target_groups: None,
        }
    }

    /// Lets services use load balancers: their tasks are registered in
    /// `target_groups`.
    pub fn with_target_groups(
        mut self,
        target_groups: Arc<dyn load_balancing::TargetGroups>,
    ) -> Self {
        self.target_groups = Some(target_groups);
        self
    }

    pub(crate) fn target_groups(&self) -> Option<&dyn load_balancing::TargetGroups> {
        self.target_groups.as_deref()
    }

    pub(crate) fn placement_cache(&self) -> &placement_cache::PlacementCache {
        &self.placement_cache
    }

    /// Sets the endpoint DiscoverPollEndpoint answers (once).
    pub fn set_endpoint(&self, endpoint: String) {
        let _ = self.endpoint.set(endpoint);
    }

    pub(crate) fn endpoint(&self) -> Option<&str> {
        self.endpoint.get().map(String::as_str)
    }

    pub fn config(&self) -> &EcsConfig {
        &self.config
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The store, for shells that watch it (agent sessions).
    pub fn store_handle(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Runs one operation. `operation` is the part of `X-Amz-Target` after
    /// the dot; `body` the raw JSON request. Returns the JSON response body.
    pub async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        match operation {
            "CreateCluster" => respond(self.create_cluster(ctx, parse(body)?).await?),
            "DescribeClusters" => respond(self.describe_clusters(ctx, parse(body)?).await?),
            "ListClusters" => respond(self.list_clusters(ctx, parse(body)?).await?),
            "UpdateCluster" => respond(self.update_cluster(ctx, parse(body)?).await?),
            "UpdateClusterSettings" => {
                respond(self.update_cluster_settings(ctx, parse(body)?).await?)
            }
            "DeleteCluster" => respond(self.delete_cluster(ctx, parse(body)?).await?),
            "RegisterTaskDefinition" => {
                // Its required members get ECS's own messages from the model.
                respond(
                    self.register_task_definition(ctx, parse_unchecked(body)?)
                        .await?,
                )
            }
            "DescribeTaskDefinition" => {
                respond(self.describe_task_definition(ctx, parse(body)?).await?)
            }
            "DeregisterTaskDefinition" => {
                respond(self.deregister_task_definition(ctx, parse(body)?).await?)
            }
            "DeleteTaskDefinitions" => {
                respond(self.delete_task_definitions(ctx, parse(body)?).await?)
            }
            "ListTaskDefinitions" => respond(self.list_task_definitions(ctx, parse(body)?).await?),
            "ListTaskDefinitionFamilies" => respond(
                self.list_task_definition_families(ctx, parse(body)?)
                    .await?,
            ),
            "TagResource" => respond(self.tag_resource(ctx, parse(body)?).await?),
            "UntagResource" => respond(self.untag_resource(ctx, parse(body)?).await?),
            "ListTagsForResource" => respond(self.list_tags_for_resource(ctx, parse(body)?).await?),
            "RegisterContainerInstance" => {
                respond(self.register_container_instance(ctx, parse(body)?).await?)
            }
            "DeregisterContainerInstance" => respond(
                self.deregister_container_instance(ctx, parse(body)?)
                    .await?,
            ),
            "DescribeContainerInstances" => {
                respond(self.describe_container_instances(ctx, parse(body)?).await?)
            }
            "ListContainerInstances" => {
                respond(self.list_container_instances(ctx, parse(body)?).await?)
            }
            "UpdateContainerInstancesState" => respond(
                self.update_container_instances_state(ctx, parse(body)?)
                    .await?,
            ),
            "PutAttributes" => respond(self.put_attributes(ctx, parse(body)?).await?),
            "DeleteAttributes" => respond(self.delete_attributes(ctx, parse(body)?).await?),
            "ListAttributes" => respond(self.list_attributes(ctx, parse(body)?).await?),
            "DiscoverPollEndpoint" => {
                respond(self.discover_poll_endpoint(ctx, parse(body)?).await?)
            }
            "RunTask" => respond(self.run_task(ctx, parse(body)?).await?),
            "StartTask" => respond(self.start_task(ctx, parse(body)?).await?),
            "StopTask" => respond(self.stop_task(ctx, parse(body)?).await?),
            "DescribeTasks" => respond(self.describe_tasks(ctx, parse(body)?).await?),
            "UpdateTaskProtection" => {
                respond(self.update_task_protection(ctx, parse(body)?).await?)
            }
            "GetTaskProtection" => respond(self.get_task_protection(ctx, parse(body)?).await?),
            "ListTasks" => respond(self.list_tasks(ctx, parse(body)?).await?),
            "SubmitTaskStateChange" => {
                let health = container_health_extension(body);
                respond(
                    self.submit_task_state_change(ctx, parse(body)?, &health)
                        .await?,
                )
            }
            "SubmitContainerStateChange" => respond(
                self.submit_container_state_change(ctx, parse(body)?)
                    .await?,
            ),
            "CreateService" => respond(self.create_service(ctx, parse(body)?).await?),
            "UpdateService" => respond(self.update_service(ctx, parse(body)?).await?),
            "DeleteService" => respond(self.delete_service(ctx, parse(body)?).await?),
            "DescribeServices" => respond(self.describe_services(ctx, parse(body)?).await?),
            "ListServices" => respond(self.list_services(ctx, parse(body)?).await?),
            "ListServiceDeployments" => {
                respond(self.list_service_deployments(ctx, parse(body)?).await?)
            }
            "DescribeServiceDeployments" => {
                respond(self.describe_service_deployments(ctx, parse(body)?).await?)
            }
            "DescribeServiceRevisions" => {
                respond(self.describe_service_revisions(ctx, parse(body)?).await?)
            }
            "PutAccountSetting" => respond(self.put_account_setting(ctx, parse(body)?).await?),
            "PutAccountSettingDefault" => {
                respond(self.put_account_setting_default(ctx, parse(body)?).await?)
            }
            "ListAccountSettings" => respond(self.list_account_settings(ctx, parse(body)?).await?),
            "DeleteAccountSetting" => {
                respond(self.delete_account_setting(ctx, parse(body)?).await?)
            }
            other => match ecs_wire::find_operation(other) {
                Some(_) => Err(ApiError::client(
                    "UnsupportedFeatureException",
                    format!("The operation {other} is not supported by Berth yet."),
                )),
                None => Err(ApiError::unknown_operation(other)),
            },
        }
    }
}

/// A request shape with the members botocore's model marks required.
pub(crate) trait Request: DeserializeOwned {
    const REQUIRED: &'static [&'static str];
}

macro_rules! requests {
    ($($shape:ident),* $(,)?) => {
        $(impl Request for ecs_wire::$shape {
            const REQUIRED: &'static [&'static str] = ecs_wire::$shape::REQUIRED;
        })*
    };
}

requests!(
    CreateClusterRequest,
    DescribeClustersRequest,
    ListClustersRequest,
    UpdateClusterRequest,
    UpdateClusterSettingsRequest,
    DeleteClusterRequest,
    DescribeTaskDefinitionRequest,
    DeregisterTaskDefinitionRequest,
    DeleteTaskDefinitionsRequest,
    ListTaskDefinitionsRequest,
    ListTaskDefinitionFamiliesRequest,
    TagResourceRequest,
    UntagResourceRequest,
    ListTagsForResourceRequest,
    PutAccountSettingRequest,
    PutAccountSettingDefaultRequest,
    ListAccountSettingsRequest,
    DeleteAccountSettingRequest,
    RegisterContainerInstanceRequest,
    DeregisterContainerInstanceRequest,
    DescribeContainerInstancesRequest,
    ListContainerInstancesRequest,
    UpdateContainerInstancesStateRequest,
    PutAttributesRequest,
    DeleteAttributesRequest,
    ListAttributesRequest,
    DiscoverPollEndpointRequest,
    RunTaskRequest,
    StartTaskRequest,
    StopTaskRequest,
    DescribeTasksRequest,
    ListTasksRequest,
    SubmitTaskStateChangeRequest,
    SubmitContainerStateChangeRequest,
    UpdateTaskProtectionRequest,
    GetTaskProtectionRequest,
);

/// Berth's agent adds `healthStatus` (HEALTHY/UNHEALTHY/UNKNOWN) to each
/// entry of SubmitTaskStateChange's `containers`: ECS's agent reports
/// container health on a channel the public API does not model.
fn container_health_extension(
    body: &[u8],
) -> std::collections::BTreeMap<String, ecs_wire::HealthStatus> {
    let mut health = std::collections::BTreeMap::new();
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return health;
    };
    for container in value
        .get("containers")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
    {
        let name = container.get("containerName").and_then(|n| n.as_str());
        let status = container
            .get("healthStatus")
            .and_then(|s| s.as_str())
            .and_then(|s| s.parse::<ecs_wire::HealthStatus>().ok());
        if let (Some(name), Some(status)) = (name, status) {
            health.insert(name.to_string(), status);
        }
    }
    health
}

fn parse_json_object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::serialization(format!("The request body is not valid JSON: {err}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::serialization(
            "The request body must be a JSON object.",
        ));
    }
    Ok(value)
}

fn from_value<R: DeserializeOwned>(value: serde_json::Value) -> Result<R, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| deserialize_error(&err))
}

/// An enum value outside the model is a parameter error on ECS
/// (`<member> should be one of [A,B]`); any other shape mismatch is a
/// `SerializationException` naming the member.
fn deserialize_error(err: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.inner().to_string();
    if let Some(rest) = inner.strip_prefix("unknown variant `") {
        let member = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.as_str()),
                _ => None,
            })
            .next_back()
            .unwrap_or("value");
        let given = rest.split('`').next().unwrap_or_default();
        let allowed = allowed_variants(rest);
        return ApiError::invalid_parameter(format!(
            "{member} should be one of [{}]; '{given}' is not.",
            allowed.join(",")
        ));
    }
    if path == "." {
        ApiError::serialization(inner)
    } else {
        ApiError::serialization(format!("{path}: {inner}"))
    }
}

/// The variants in serde's "expected `A`", "expected `A` or `B`" and
/// "expected one of `A`, `B`, `C`".
fn allowed_variants(message: &str) -> Vec<&str> {
    let Some((_, list)) = message.split_once("expected ") else {
        return Vec::new();
    };
    let list = list.strip_prefix("one of ").unwrap_or(list);
    list.split(", ")
        .flat_map(|part| part.split(" or "))
        .map(|v| v.trim().trim_matches('`'))
        .filter(|v| !v.is_empty())
        .collect()
}

/// Parses a request, answering missing required members with
/// `InvalidParameterException` (`<member> can not be blank.`).
pub(crate) fn parse<R: Request>(body: &[u8]) -> Result<R, ApiError> {
    let value = parse_json_object(body)?;
    for member in R::REQUIRED {
        if value.get(member).is_none_or(serde_json::Value::is_null) {
            return Err(ApiError::invalid_parameter(format!(
                "{member} can not be blank."
            )));
        }
    }
    from_value(value)
}

/// Parses a JSON 1.1 request body into `R` without checking required
/// members (the caller answers those in its service's words).
pub fn parse_unchecked<R: DeserializeOwned>(body: &[u8]) -> Result<R, ApiError> {
    from_value(parse_json_object(body)?)
}

/// Encodes a JSON 1.1 response body.
pub fn respond<T: Serialize>(response: T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(&response)
        .map_err(|err| ApiError::server(format!("response encoding failed: {err}")))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod variant_tests {
    #[test]
    fn serde_variant_lists_of_every_length_are_read() {
        for (message, expected) in [
            ("`X`, expected `A`", vec!["A"]),
            (
                "`X`, expected `REPLICA` or `DAEMON`",
                vec!["REPLICA", "DAEMON"],
            ),
            ("`X`, expected one of `A`, `B`, `C`", vec!["A", "B", "C"]),
            ("`X`, there are no variants", vec![]),
        ] {
            assert_eq!(super::allowed_variants(message), expected, "{message}");
        }
    }
}

#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod task_tests;
#[cfg(test)]
mod test_support;
