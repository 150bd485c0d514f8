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
    if key.to_ascii_lowercase().starts_with("aws:") {
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
    if merged.len() > MAX_TAGS_PER_RESOURCE {
        return Err(ModelError::invalid_parameter(format!(
            "Too many tags: the resource would have {} tags; a resource can have at most {MAX_TAGS_PER_RESOURCE}.",
            merged.len()
        )));
    }
    Ok(merged)
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
