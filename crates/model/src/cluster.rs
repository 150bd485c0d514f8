//! Clusters: their stored form and the rules for creating and updating them.

use serde::{Deserialize, Serialize};

use crate::names::is_valid_resource_name;
use crate::tags::Tag;
use crate::ModelError;

/// The cluster used when a request names none.
pub const DEFAULT_CLUSTER_NAME: &str = "default";

/// Capacity providers every account has. Berth has no
/// CreateCapacityProvider yet, so these are the only names a cluster can use.
pub const BUILT_IN_CAPACITY_PROVIDERS: &[&str] = &["FARGATE", "FARGATE_SPOT"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    Active,
    Provisioning,
    Deprovisioning,
    Failed,
    Inactive,
}

impl ClusterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Active => "ACTIVE",
            ClusterStatus::Provisioning => "PROVISIONING",
            ClusterStatus::Deprovisioning => "DEPROVISIONING",
            ClusterStatus::Failed => "FAILED",
            ClusterStatus::Inactive => "INACTIVE",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSetting {
    pub name: String,
    pub value: String,
}

/// A capacity provider strategy item as the user gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    pub weight: i32,
    pub base: i32,
}

/// A cluster as stored. Its ARN is derived from the region and account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub cluster_name: String,
    pub status: ClusterStatus,
    pub settings: Vec<ClusterSetting>,
    /// Kept in the wire shape: Berth stores it for the user and returns it.
    pub configuration: Option<serde_json::Value>,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    pub tags: Vec<Tag>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Cluster {
    /// A new ACTIVE cluster. `container_insights_default` is the effective
    /// `containerInsights` account setting, used when `settings` omits it.
    pub fn new(
        cluster_name: String,
        settings: Vec<ClusterSetting>,
        container_insights_default: &str,
        now_ms: i64,
    ) -> Cluster {
        let mut cluster = Cluster {
            cluster_name,
            status: ClusterStatus::Active,
            settings: vec![ClusterSetting {
                name: "containerInsights".into(),
                value: container_insights_default.into(),
            }],
            configuration: None,
            capacity_providers: Vec::new(),
            default_capacity_provider_strategy: Vec::new(),
            tags: Vec::new(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        };
        cluster.apply_settings(&settings);
        cluster
    }

    /// Overwrites the given settings, keeping the others.
    pub fn apply_settings(&mut self, settings: &[ClusterSetting]) {
        for setting in settings {
            match self.settings.iter_mut().find(|s| s.name == setting.name) {
                Some(present) => present.value = setting.value.clone(),
                None => self.settings.push(setting.clone()),
            }
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == ClusterStatus::Active
    }
}

pub fn validate_cluster_name(name: &str) -> Result<(), ModelError> {
    if is_valid_resource_name(name) {
        Ok(())
    } else {
        Err(ModelError::invalid_parameter(format!(
            "Invalid cluster name '{name}'. Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
        )))
    }
}

/// Cluster settings: only `containerInsights` exists, with values
/// `enabled`, `disabled` or `enhanced`.
pub fn validate_cluster_settings(settings: &[ClusterSetting]) -> Result<(), ModelError> {
    for setting in settings {
        if setting.name != "containerInsights" {
            return Err(ModelError::invalid_parameter(format!(
                "Invalid cluster setting name '{}'. The only cluster setting is containerInsights.",
                setting.name
            )));
        }
        if !["enabled", "disabled", "enhanced"].contains(&setting.value.as_str()) {
            return Err(ModelError::invalid_parameter(format!(
                "Invalid setting 'value': '{}' is not a valid value for containerInsights. Valid values: enabled, disabled, enhanced.",
                setting.value
            )));
        }
    }
    Ok(())
}

/// Capacity providers named on a cluster, and its default strategy, which may
/// only use providers associated with the cluster.
pub fn validate_capacity_providers(
    capacity_providers: &[String],
    strategy: &[CapacityProviderStrategyItem],
) -> Result<(), ModelError> {
    for name in capacity_providers {
        if !BUILT_IN_CAPACITY_PROVIDERS.contains(&name.as_str()) {
            return Err(ModelError::invalid_parameter(format!(
                "The specified capacity provider does not exist. Specify a valid name or ARN and try again. '{name}' is not one of Berth's capacity providers ({}).",
                BUILT_IN_CAPACITY_PROVIDERS.join(", ")
            )));
        }
    }
    let mut with_base = 0;
    for item in strategy {
        if !capacity_providers.contains(&item.capacity_provider) {
            return Err(ModelError::invalid_parameter(format!(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster: '{}'. Associate it with the cluster first.",
                item.capacity_provider
            )));
        }
        if !(0..=1000).contains(&item.weight) {
            return Err(ModelError::invalid_parameter(format!(
                "Invalid weight {} for capacity provider '{}': the weight must be between 0 and 1000.",
                item.weight, item.capacity_provider
            )));
        }
        if !(0..=100_000).contains(&item.base) {
            return Err(ModelError::invalid_parameter(format!(
                "Invalid base {} for capacity provider '{}': the base must be between 0 and 100000.",
                item.base, item.capacity_provider
            )));
        }
        if item.base > 0 {
            with_base += 1;
        }
    }
    if with_base > 1 {
        return Err(ModelError::invalid_parameter(
            "Only one capacity provider in a capacity provider strategy can have a base defined.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(name: &str, value: &str) -> ClusterSetting {
        ClusterSetting {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn new_cluster_takes_insights_default_unless_given() {
        let c = Cluster::new("a".into(), vec![], "enabled", 5);
        assert_eq!(c.settings, vec![setting("containerInsights", "enabled")]);
        let c = Cluster::new(
            "a".into(),
            vec![setting("containerInsights", "enhanced")],
            "disabled",
            5,
        );
        assert_eq!(c.settings, vec![setting("containerInsights", "enhanced")]);
        assert!(c.is_active());
    }

    #[test]
    fn settings_rules() {
        assert!(validate_cluster_settings(&[setting("containerInsights", "enhanced")]).is_ok());
        assert!(validate_cluster_settings(&[setting("containerInsights", "yes")]).is_err());
        assert!(validate_cluster_settings(&[setting("other", "enabled")]).is_err());
    }

    #[test]
    fn capacity_provider_rules() {
        let item = |p: &str, w, b| CapacityProviderStrategyItem {
            capacity_provider: p.into(),
            weight: w,
            base: b,
        };
        let fargate = vec!["FARGATE".to_string(), "FARGATE_SPOT".to_string()];
        assert!(validate_capacity_providers(
            &fargate,
            &[item("FARGATE", 1, 1), item("FARGATE_SPOT", 4, 0)]
        )
        .is_ok());
        let unknown = validate_capacity_providers(&["mine".into()], &[]).unwrap_err();
        // ECS's own wording first, then which provider it was.
        assert!(unknown.message().starts_with(
            "The specified capacity provider does not exist. Specify a valid name or ARN and try again. 'mine'"
        ));
        assert!(validate_capacity_providers(&fargate[..1], &[item("FARGATE_SPOT", 1, 0)]).is_err());
        assert!(validate_capacity_providers(&fargate, &[item("FARGATE", 1001, 0)]).is_err());
        assert!(validate_capacity_providers(
            &fargate,
            &[item("FARGATE", 1, 1), item("FARGATE_SPOT", 1, 2)]
        )
        .is_err());
    }
}
