//! Amazon Resource Names for ECS resources.
//!
//! `arn:aws:ecs:<region>:<account>:<resource-type>/<resource-id>`.

use crate::ModelError;

/// Where ARNs are minted: the region comes from the request's credential
/// scope, the account from the server's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArnScope {
    pub region: String,
    pub account_id: String,
}

impl ArnScope {
    pub fn new(region: impl Into<String>, account_id: impl Into<String>) -> Self {
        ArnScope {
            region: region.into(),
            account_id: account_id.into(),
        }
    }

    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}:", self.region, self.account_id)
    }

    pub fn cluster(&self, cluster_name: &str) -> String {
        format!("{}cluster/{cluster_name}", self.prefix())
    }

    pub fn task_definition(&self, family: &str, revision: i64) -> String {
        format!("{}task-definition/{family}:{revision}", self.prefix())
    }

    pub fn container_instance(&self, cluster_name: &str, id: &str) -> String {
        format!("{}container-instance/{cluster_name}/{id}", self.prefix())
    }

    pub fn task(&self, cluster_name: &str, id: &str) -> String {
        format!("{}task/{cluster_name}/{id}", self.prefix())
    }

    pub fn service(&self, cluster_name: &str, service_name: &str) -> String {
        format!("{}service/{cluster_name}/{service_name}", self.prefix())
    }

    /// `deployment_key` is the deployment id's number (`ecs-svc/<n>` → `<n>`).
    pub fn service_deployment(
        &self,
        cluster_name: &str,
        service_name: &str,
        deployment_key: &str,
    ) -> String {
        format!(
            "{}service-deployment/{cluster_name}/{service_name}/{deployment_key}",
            self.prefix()
        )
    }

    pub fn service_revision(
        &self,
        cluster_name: &str,
        service_name: &str,
        revision_key: &str,
    ) -> String {
        format!(
            "{}service-revision/{cluster_name}/{service_name}/{revision_key}",
            self.prefix()
        )
    }

    /// The ARN of the account's root principal, the default `principalArn`.
    pub fn root_principal(&self) -> String {
        format!("arn:aws:iam::{}:root", self.account_id)
    }
}

/// A parsed ECS ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcsArn {
    pub region: String,
    pub account_id: String,
    /// e.g. `cluster`, `task-definition`, `service`, `task`.
    pub resource_type: String,
    /// Everything after the first `/`.
    pub resource_id: String,
}

impl EcsArn {
    /// Parses `arn:<partition>:ecs:<region>:<account>:<type>/<id>`.
    pub fn parse(arn: &str) -> Result<EcsArn, ModelError> {
        let invalid = || {
            ModelError::invalid_parameter(format!("Invalid ARN: '{arn}'. Specify a valid Amazon ECS resource ARN, e.g. arn:aws:ecs:us-east-1:000000000000:cluster/default."))
        };
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("ecs"), Some(region), Some(account), Some(rest)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid());
        };
        if partition.is_empty() || region.is_empty() || account.is_empty() {
            return Err(invalid());
        }
        let (resource_type, resource_id) = rest.split_once('/').ok_or_else(invalid)?;
        if resource_type.is_empty() || resource_id.is_empty() {
            return Err(invalid());
        }
        Ok(EcsArn {
            region: region.to_string(),
            account_id: account.to_string(),
            resource_type: resource_type.to_string(),
            resource_id: resource_id.to_string(),
        })
    }
}

/// A reference to a cluster in a request: a name or a cluster ARN.
/// Returns the cluster name.
pub fn cluster_name_from_reference(reference: &str) -> Result<String, ModelError> {
    if reference.starts_with("arn:") {
        let arn = EcsArn::parse(reference)?;
        if arn.resource_type != "cluster" {
            return Err(ModelError::invalid_parameter(format!(
                "Invalid cluster ARN: '{reference}'. A cluster ARN looks like arn:aws:ecs:<region>:<account>:cluster/<name>."
            )));
        }
        return Ok(arn.resource_id);
    }
    Ok(reference.to_string())
}

/// A reference to a cluster-scoped resource (container instance, task): its
/// id, or an ARN `…:<kind>/<cluster>/<id>` (or the old `…:<kind>/<id>`).
/// Returns the id; an ARN naming another cluster is an error.
pub fn id_from_reference(
    reference: &str,
    kind: &str,
    cluster_name: &str,
) -> Result<String, ModelError> {
    if !reference.starts_with("arn:") {
        return Ok(reference.to_string());
    }
    let arn = EcsArn::parse(reference)?;
    if arn.resource_type != kind {
        return Err(ModelError::invalid_parameter(format!(
            "Invalid {kind} ARN: '{reference}'."
        )));
    }
    match arn.resource_id.split_once('/') {
        Some((cluster, id)) if cluster == cluster_name => Ok(id.to_string()),
        Some((cluster, _)) => Err(ModelError::invalid_parameter(format!(
            "Invalid identifier: Identifier is for cluster {cluster}. Your cluster is {cluster_name}"
        ))),
        None => Ok(arn.resource_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_and_parses() {
        let scope = ArnScope::new("eu-west-1", "123456789012");
        let arn = scope.cluster("web");
        assert_eq!(arn, "arn:aws:ecs:eu-west-1:123456789012:cluster/web");
        let parsed = EcsArn::parse(&arn).unwrap();
        assert_eq!(parsed.resource_type, "cluster");
        assert_eq!(parsed.resource_id, "web");
        assert_eq!(parsed.region, "eu-west-1");
        assert_eq!(
            scope.task_definition("app", 3),
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/app:3"
        );
        let parsed = EcsArn::parse(&scope.task_definition("app", 3)).unwrap();
        assert_eq!(parsed.resource_id, "app:3");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "arn:aws:ecs",
            "arn:aws:s3:::bucket/x",
            "arn:aws:ecs:us-east-1:1:cluster",
            "arn:aws:ecs:us-east-1:1:cluster/",
            "nope:aws:ecs:us-east-1:1:cluster/x",
        ] {
            assert!(EcsArn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_reference() {
        assert_eq!(cluster_name_from_reference("web").unwrap(), "web");
        assert_eq!(
            cluster_name_from_reference("arn:aws:ecs:us-east-1:000000000000:cluster/web").unwrap(),
            "web"
        );
        assert!(cluster_name_from_reference(
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1"
        )
        .is_err());
    }
}
