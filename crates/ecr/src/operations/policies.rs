//! Permission policies: Set/Get/DeleteRepositoryPolicy (kept on the
//! repository record), Put/Get/DeleteRegistryPolicy (under
//! `/ecr/<region>/registry-policy`), and [`allows_anonymous`], the one
//! question Berth asks of a policy: may a caller without credentials do
//! this? (Berth has one account, so a policy's other statements change
//! nothing.)

use api::records::{self, Write};
use api::{ApiError, RequestContext};
use ecr_wire as wire;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::validate;
use crate::error;
use crate::images::wildcard_match;
use crate::records::require_repository;
use crate::Ecr;

pub(crate) fn registry_policy_key(region: &str) -> String {
    format!("/ecr/{region}/registry-policy")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RegistryPolicyRecord {
    policy_text: String,
}

/// Whether `text` is a policy document: a JSON object with `Version` and a
/// `Statement` (an object or a non-empty list of objects), each statement
/// with an `Effect` of `Allow` or `Deny`.
fn is_policy_document(text: &str) -> bool {
    policy_statements(text).is_some()
}

/// The statements of a well-formed policy document, `None` for anything
/// else.
fn policy_statements(text: &str) -> Option<Vec<Value>> {
    let Ok(Value::Object(mut document)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    if !document.get("Version").is_some_and(Value::is_string) {
        return None;
    }
    let statements = match document.remove("Statement") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(statement @ Value::Object(_)) => vec![statement],
        _ => return None,
    };
    statements
        .iter()
        .all(|statement| {
            statement.is_object()
                && matches!(
                    statement.get("Effect").and_then(Value::as_str),
                    Some("Allow" | "Deny")
                )
        })
        .then_some(statements)
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether a statement's `Principal` is everyone: `"*"` or `{"AWS": "*"}`.
fn principal_is_everyone(statement: &Value) -> bool {
    match statement.get("Principal") {
        Some(Value::String(principal)) => principal == "*",
        Some(Value::Object(map)) => strings(map.get("AWS")).contains(&"*"),
        _ => false,
    }
}

/// Whether a statement's `Action` covers `action` (`ecr:*`, `*` and other
/// wildcards included; IAM compares actions case-insensitively).
fn covers(statement: &Value, action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    strings(statement.get("Action"))
        .iter()
        .any(|pattern| wildcard_match(&pattern.to_ascii_lowercase(), &action))
}

/// Whether `policy_text` lets anonymous callers do `action` (e.g.
/// `ecr:BatchGetImage`): an `Allow` statement for every principal covers
/// it and no `Deny` for every principal does. Statements with a
/// `Condition` (which Berth cannot evaluate) or `NotPrincipal`/`NotAction`
/// grant nothing, but a `Deny` still denies.
pub fn allows_anonymous(policy_text: &str, action: &str) -> bool {
    policy_statements(policy_text).is_some_and(|statements| statements_allow(&statements, action))
}

fn statements_allow(statements: &[Value], action: &str) -> bool {
    let mut allowed = false;
    for statement in statements {
        let effect = statement.get("Effect").and_then(Value::as_str);
        let everyone = principal_is_everyone(statement);
        let applies = everyone && covers(statement, action);
        if effect == Some("Deny") && (applies || (everyone && statement.get("NotAction").is_some()))
        {
            return false;
        }
        let unconditional = statement.get("Condition").is_none()
            && statement.get("NotPrincipal").is_none()
            && statement.get("NotAction").is_none();
        if effect == Some("Allow") && applies && unconditional {
            allowed = true;
        }
    }
    allowed
}

/// Whether a repository policy lets anyone pull: read manifests and blobs.
pub(crate) fn allows_anonymous_pull(policy_text: &str) -> bool {
    policy_statements(policy_text).is_some_and(|statements| {
        ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
            .iter()
            .all(|action| statements_allow(&statements, action))
    })
}

fn check_policy_text(text: &str, what: &str) -> Result<(), ApiError> {
    validate::length("policyText", text, 0, 10_240)?;
    if !is_policy_document(text) {
        return Err(error::invalid_parameter_at(
            "PolicyText",
            format!("Invalid {what} policy provided"),
        ));
    }
    Ok(())
}

impl Ecr {
    pub(crate) async fn set_repository_policy(
        &self,
        ctx: &RequestContext,
        request: wire::SetRepositoryPolicyRequest,
    ) -> Result<wire::SetRepositoryPolicyResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let text = validate::required("policyText", request.policy_text)?;
        check_policy_text(&text, "repository")?;
        self.update_repository(ctx, name, |record| {
            record.repository_policy = Some(text.clone());
            Ok(())
        })
        .await?;
        Ok(wire::SetRepositoryPolicyResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            policy_text: Some(text),
        })
    }

    pub(crate) async fn get_repository_policy(
        &self,
        ctx: &RequestContext,
        request: wire::GetRepositoryPolicyRequest,
    ) -> Result<wire::GetRepositoryPolicyResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let record = require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
        let text = record
            .value
            .repository_policy
            .ok_or_else(|| error::repository_policy_not_found(name, &ctx.account_id))?;
        Ok(wire::GetRepositoryPolicyResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            policy_text: Some(text),
        })
    }

    pub(crate) async fn delete_repository_policy(
        &self,
        ctx: &RequestContext,
        request: wire::DeleteRepositoryPolicyRequest,
    ) -> Result<wire::DeleteRepositoryPolicyResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let mut removed = None;
        self.update_repository(ctx, name, |record| {
            removed = Some(
                record
                    .repository_policy
                    .take()
                    .ok_or_else(|| error::repository_policy_not_found(name, &ctx.account_id))?,
            );
            Ok(())
        })
        .await?;
        Ok(wire::DeleteRepositoryPolicyResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            policy_text: removed,
        })
    }

    pub(crate) async fn put_registry_policy(
        &self,
        ctx: &RequestContext,
        request: wire::PutRegistryPolicyRequest,
    ) -> Result<wire::PutRegistryPolicyResponse, ApiError> {
        let text = validate::required("policyText", request.policy_text)?;
        check_policy_text(&text, "registry")?;
        let key = registry_policy_key(&ctx.region);
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let current = self.store.get(&key).await?.map_or(0, |kv| kv.mod_revision);
            let record = RegistryPolicyRecord {
                policy_text: text.clone(),
            };
            if Write::new()
                .expect(&key, current)
                .put(&key, &record)
                .commit(&*self.store)
                .await?
            {
                return Ok(wire::PutRegistryPolicyResponse {
                    registry_id: Some(ctx.account_id.clone()),
                    policy_text: Some(text),
                });
            }
        }
        Err(records::too_much_contention("the registry policy"))
    }

    pub(crate) async fn get_registry_policy(
        &self,
        ctx: &RequestContext,
        _request: wire::GetRegistryPolicyRequest,
    ) -> Result<wire::GetRegistryPolicyResponse, ApiError> {
        let record: RegistryPolicyRecord =
            records::get(&*self.store, &registry_policy_key(&ctx.region))
                .await?
                .map(|found| found.value)
                .ok_or_else(|| error::registry_policy_not_found(&ctx.account_id))?;
        Ok(wire::GetRegistryPolicyResponse {
            registry_id: Some(ctx.account_id.clone()),
            policy_text: Some(record.policy_text),
        })
    }

    pub(crate) async fn delete_registry_policy(
        &self,
        ctx: &RequestContext,
        _request: wire::DeleteRegistryPolicyRequest,
    ) -> Result<wire::DeleteRegistryPolicyResponse, ApiError> {
        let key = registry_policy_key(&ctx.region);
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let found: records::Versioned<RegistryPolicyRecord> = records::get(&*self.store, &key)
                .await?
                .ok_or_else(|| error::registry_policy_not_found(&ctx.account_id))?;
            let txn = store::Txn::new()
                .when(store::Compare::mod_revision_is(&key, found.mod_revision))
                .then(store::Op::delete(&key));
            if self.store.txn(txn).await?.succeeded {
                return Ok(wire::DeleteRegistryPolicyResponse {
                    registry_id: Some(ctx.account_id.clone()),
                    policy_text: Some(found.value.policy_text),
                });
            }
        }
        Err(records::too_much_contention("the registry policy"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_access_needs_an_unconditional_allow_for_everyone() {
        let policy =
            |statements: &str| format!(r#"{{"Version":"2012-10-17","Statement":{statements}}}"#);
        let pull = r#"{"Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}"#;
        let cases: Vec<(String, &str, bool)> = vec![
            (policy(&format!("[{pull}]")), "ecr:BatchGetImage", true),
            (policy(pull), "ecr:BatchGetImage", true),
            (policy(pull), "ecr:PutImage", false),
            (
                policy(r#"[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"ecr:*"}]"#),
                "ecr:PutImage",
                true,
            ),
            (
                policy(r#"[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"*"}]"#),
                "ecr:BatchGetImage",
                true,
            ),
            (
                policy(r#"[{"Effect":"Allow","Principal":"*","Action":"ecr:Batch*"}]"#),
                "ecr:BatchGetImage",
                true,
            ),
            (
                policy(r#"[{"Effect":"Allow","Principal":"*","Action":"ECR:batchgetimage"}]"#),
                "ecr:BatchGetImage",
                true,
            ),
            (
                policy(
                    r#"[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"ecr:*"}]"#,
                ),
                "ecr:BatchGetImage",
                false,
            ),
            (
                policy(
                    r#"[{"Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Effect":"Deny","Principal":"*","Action":"ecr:BatchGetImage"}]"#,
                ),
                "ecr:BatchGetImage",
                false,
            ),
            (
                policy(
                    r#"[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]"#,
                ),
                "ecr:BatchGetImage",
                false,
            ),
            (policy("[]"), "ecr:BatchGetImage", false),
            ("not json".into(), "ecr:BatchGetImage", false),
        ];
        for (text, action, expected) in cases {
            assert_eq!(allows_anonymous(&text, action), expected, "{text} {action}");
        }
        assert!(allows_anonymous_pull(&policy(pull)));
        assert!(!allows_anonymous_pull(&policy(
            r#"{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}"#
        )));
    }

    #[test]
    fn policy_documents_need_a_version_and_statements() {
        for good in [
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#,
            r#"{"Version":"2008-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"ecr:*"}}"#,
        ] {
            assert!(is_policy_document(good), "{good}");
        }
        for bad in [
            "",
            "[]",
            r#"{"Statement":[{"Effect":"Allow"}]}"#,
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Version":"2012-10-17","Statement":[]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe"}]}"#,
        ] {
            assert!(!is_policy_document(bad), "{bad}");
        }
    }
}
