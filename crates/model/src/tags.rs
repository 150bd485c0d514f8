//! Resource tags and the rules ECS applies to them.

use serde::{Deserialize, Serialize};

use crate::ModelError;

pub const MAX_TAGS_PER_RESOURCE: usize = 50;
pub const MAX_TAG_KEY_LEN: usize = 128;
pub const MAX_TAG_VALUE_LEN: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

fn is_allowed_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c)
}

/// Checks tags supplied by a user (create or TagResource).
pub fn validate_tags(tags: &[Tag]) -> Result<(), ModelError> {
    if tags.len() > MAX_TAGS_PER_RESOURCE {
        return Err(ModelError::invalid_parameter(format!(
            "Too many tags: {} given; a resource can have at most {MAX_TAGS_PER_RESOURCE} tags.",
            tags.len()
        )));
    }
    for tag in tags {
        validate_tag_key(&tag.key)?;
        if tag.value.chars().count() > MAX_TAG_VALUE_LEN
            || !tag.value.chars().all(is_allowed_tag_char)
        {
            return Err(ModelError::invalid_parameter(format!(
                "Invalid tag value for key '{}': values are at most {MAX_TAG_VALUE_LEN} characters of letters, digits, spaces and + - = . _ : / @.",
                tag.key
            )));
        }
    }
    Ok(())
}

/// Checks a tag key supplied by a user (also for UntagResource).
pub fn validate_tag_key(key: &str) -> Result<(), ModelError> {
    let length = key.chars().count();
    if length == 0 || length > MAX_TAG_KEY_LEN || !key.chars().all(is_allowed_tag_char) {
        return Err(ModelError::invalid_parameter(format!(
            "Invalid tag key '{key}': keys are 1 to {MAX_TAG_KEY_LEN} characters of letters, digits, spaces and + - = . _ : / @."
        )));
    }
    if is_aws_managed(key) {
        return Err(ModelError::invalid_parameter(format!(
            "Invalid tag key '{key}': the aws: prefix is reserved for AWS use."
        )));
    }
    Ok(())
}

/// TagResource: adds tags, overwriting the value of keys already present.
/// Fails if the result would exceed the per-resource limit.
pub fn merge_tags(existing: &[Tag], added: &[Tag]) -> Result<Vec<Tag>, ModelError> {
    validate_tags(added)?;
    let mut merged = existing.to_vec();
    for tag in added {
        match merged.iter_mut().find(|t| t.key == tag.key) {
            Some(present) => present.value = tag.value.clone(),
            None => merged.push(tag.clone()),
        }
    }
    let counted = merged.iter().filter(|t| !is_aws_managed(&t.key)).count();
    if counted > MAX_TAGS_PER_RESOURCE {
        return Err(ModelError::invalid_parameter(format!(
            "Too many tags: the resource would have {counted} tags; a resource can have at most {MAX_TAGS_PER_RESOURCE}."
        )));
    }
    Ok(merged)
}

/// Keys with the reserved `aws:` prefix (any case) belong to AWS, e.g. the
/// ECS managed tags; they do not count toward the per-resource limit.
pub fn is_aws_managed(key: &str) -> bool {
    key.get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("aws:"))
}

/// `aws:ecs:clusterName`, the managed tag ECS puts on every task launched
/// with `enableECSManagedTags`.
pub const MANAGED_CLUSTER_NAME_KEY: &str = "aws:ecs:clusterName";
/// `aws:ecs:serviceName`, the managed tag on the tasks of a service.
pub const MANAGED_SERVICE_NAME_KEY: &str = "aws:ecs:serviceName";

/// The tags a new task starts with: the propagated tags (from its task
/// definition or its service), overridden key by key by the tags given in
/// the request, then ECS's managed tags when `managed` names the cluster
/// (and the service, for a service's task).
pub fn task_tags(
    propagated: &[Tag],
    requested: &[Tag],
    managed: Option<(&str, Option<&str>)>,
) -> Result<Vec<Tag>, ModelError> {
    validate_tags(requested)?;
    let mut tags = merge_tags(&[], propagated)?;
    tags = merge_tags(&tags, requested)?;
    if let Some((cluster_name, service_name)) = managed {
        tags.push(Tag {
            key: MANAGED_CLUSTER_NAME_KEY.into(),
            value: cluster_name.into(),
        });
        if let Some(service_name) = service_name {
            tags.push(Tag {
                key: MANAGED_SERVICE_NAME_KEY.into(),
                value: service_name.into(),
            });
        }
    }
    Ok(tags)
}

/// UntagResource: removes the given keys (absent keys are ignored, as ECS does).
pub fn remove_tags(existing: &[Tag], keys: &[String]) -> Result<Vec<Tag>, ModelError> {
    for key in keys {
        validate_tag_key(key)?;
    }
    Ok(existing
        .iter()
        .filter(|t| !keys.contains(&t.key))
        .cloned()
        .collect())
}

pub fn from_wire(tags: &[ecs_wire::Tag]) -> Vec<Tag> {
    tags.iter()
        .map(|t| Tag {
            key: t.key.clone().unwrap_or_default(),
            value: t.value.clone().unwrap_or_default(),
        })
        .collect()
}

pub fn to_wire(tags: &[Tag]) -> Vec<ecs_wire::Tag> {
    tags.iter()
        .map(|t| ecs_wire::Tag {
            key: Some(t.key.clone()),
            value: Some(t.value.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn merge_overwrites_and_appends() {
        let merged = merge_tags(
            &[tag("a", "1"), tag("b", "2")],
            &[tag("b", "3"), tag("c", "")],
        )
        .unwrap();
        assert_eq!(merged, vec![tag("a", "1"), tag("b", "3"), tag("c", "")]);
    }

    #[test]
    fn remove_ignores_absent() {
        let left =
            remove_tags(&[tag("a", "1"), tag("b", "2")], &["b".into(), "zz".into()]).unwrap();
        assert_eq!(left, vec![tag("a", "1")]);
    }

    #[test]
    fn new_task_tags() {
        // Requested tags override propagated ones; managed tags come last.
        let tags = task_tags(
            &[tag("team", "core"), tag("env", "dev")],
            &[tag("env", "prod")],
            Some(("prod-cluster", Some("api"))),
        )
        .unwrap();
        assert_eq!(
            tags,
            vec![
                tag("team", "core"),
                tag("env", "prod"),
                tag("aws:ecs:clusterName", "prod-cluster"),
                tag("aws:ecs:serviceName", "api"),
            ]
        );
        assert_eq!(
            task_tags(&[], &[tag("a", "1")], Some(("c", None))).unwrap(),
            vec![tag("a", "1"), tag("aws:ecs:clusterName", "c")]
        );
        assert_eq!(task_tags(&[], &[], None).unwrap(), vec![]);
        assert!(task_tags(&[], &[tag("aws:x", "1")], None).is_err());
        // Fifty tags of the user's own plus the managed ones fit.
        let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        let tags = task_tags(&[], &fifty, Some(("c", Some("s")))).unwrap();
        assert_eq!(tags.len(), 52);
        assert!(merge_tags(&tags, &[tag("k1", "again")]).is_ok());
        assert!(merge_tags(&tags, &[tag("k50", "v")]).is_err());
    }

    #[test]
    fn rules() {
        assert!(validate_tags(&[tag("env", "prod"), tag("team/a b", "x+y=z@w.v:u")]).is_ok());
        assert!(validate_tags(&[tag("", "x")]).is_err());
        assert!(validate_tags(&[tag("aws:foo", "x")]).is_err());
        assert!(validate_tags(&[tag("AWS:foo", "x")]).is_err());
        assert!(validate_tags(&[tag("k", &"v".repeat(257))]).is_err());
        assert!(validate_tags(&[tag(&"k".repeat(129), "v")]).is_err());
        assert!(validate_tags(&[tag("k#", "v")]).is_err());
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(validate_tags(&many).is_err());
        let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(merge_tags(&fifty, &[tag("extra", "v")]).is_err());
        assert!(merge_tags(&fifty, &[tag("k1", "new")]).is_ok());
    }
}
