//! AddTags, RemoveTags, DescribeTags, and tag validation for the Create operations.

use api::{ApiError, RequestContext};
use elbv2_wire::{
    AddTagsInput, AddTagsOutput, DescribeTagsInput, DescribeTagsOutput, RemoveTagsInput,
    RemoveTagsOutput, Tag, TagDescription,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::records::{
    self, ListenerRecord, LoadBalancerRecord, RuleRecord, Tags, TargetGroupRecord, Write,
};
use crate::{error, ids, validation, Elbv2};

pub(crate) const MAX_TAGS: usize = 50;

/// The tags of a Create request: no duplicate keys, no `aws:` keys, at most 50.
pub(crate) fn validate_new(tags: Option<&[Tag]>) -> Result<Tags, ApiError> {
    let mut validated = Tags::new();
    merge(&mut validated, tags.unwrap_or_default())?;
    Ok(validated)
}

fn merge(existing: &mut Tags, tags: &[Tag]) -> Result<(), ApiError> {
    let mut seen = std::collections::BTreeSet::new();
    for tag in tags {
        let key = tag.key.clone().unwrap_or_default();
        if !seen.insert(key.clone()) {
            return Err(error(
                "DuplicateTagKeys",
                format!("Tag key '{key}' is specified more than once"),
            ));
        }
        if key.starts_with("aws:") {
            return Err(validation(format!(
                "Tag key '{key}' is reserved: keys cannot start with 'aws:'"
            )));
        }
        existing.insert(key, tag.value.clone().unwrap_or_default());
    }
    if existing.len() > MAX_TAGS {
        return Err(error(
            "TooManyTags",
            format!("A resource can have at most {MAX_TAGS} tags"),
        ));
    }
    Ok(())
}

fn wire(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(key, value)| Tag {
            key: Some(key.clone()),
            value: Some(value.clone()),
        })
        .collect()
}

/// The store key of a taggable resource and which kind it is.
enum Taggable {
    LoadBalancer(String),
    TargetGroup(String),
    Listener(String),
    Rule(String),
    /// A listener's default rule: its tags live on the listener record.
    DefaultRule(String),
}

impl Elbv2 {
    async fn taggable(&self, ctx: &RequestContext, arn: &str) -> Result<Taggable, ApiError> {
        match ids::resource_parts(ctx, arn).as_deref() {
            Some(["loadbalancer", ..]) => {
                let found = self.find_load_balancer(ctx, arn).await?;
                Ok(Taggable::LoadBalancer(records::load_balancer_key(
                    &ctx.region,
                    &found.value.name,
                )))
            }
            Some(["targetgroup", ..]) => {
                let found = self.find_target_group(ctx, arn).await?;
                Ok(Taggable::TargetGroup(records::target_group_key(
                    &ctx.region,
                    &found.value.name,
                )))
            }
            Some(["listener", ..]) => Ok(Taggable::Listener(self.find_listener(ctx, arn).await?.0)),
            Some(["listener-rule", ..]) => match self.rule_tag_key(ctx, arn).await? {
                (key, false) => Ok(Taggable::Rule(key)),
                (key, true) => Ok(Taggable::DefaultRule(key)),
            },
            _ => Err(validation(format!(
                "'{arn}' is not a valid load balancer, target group, listener or rule ARN"
            ))),
        }
    }

    async fn edit_tags<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        tags_of: fn(&mut T) -> &mut Tags,
        edit: &(dyn Fn(&mut Tags) -> Result<(), ApiError> + Sync),
    ) -> Result<(), ApiError> {
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let Some(mut record) = records::get::<T>(self.store(), key).await? else {
                return Err(error(
                    "LoadBalancerNotFound",
                    "The resource was deleted while its tags were changed",
                ));
            };
            edit(tags_of(&mut record.value))?;
            if Write::new()
                .expect(key, record.mod_revision)
                .put(key, &record.value)
                .commit(self.store())
                .await?
            {
                return Ok(());
            }
        }
        Err(records::too_much_contention("tags"))
    }

    async fn edit_resource_tags(
        &self,
        ctx: &RequestContext,
        arns: &[String],
        edit: &(dyn Fn(&mut Tags) -> Result<(), ApiError> + Sync),
    ) -> Result<(), ApiError> {
        // Resolve every ARN before changing anything.
        let mut resources = Vec::new();
        for arn in arns {
            resources.push(self.taggable(ctx, arn).await?);
        }
        for resource in resources {
            match resource {
                Taggable::LoadBalancer(key) => {
                    self.edit_tags::<LoadBalancerRecord>(&key, |r| &mut r.tags, edit)
                        .await?
                }
                Taggable::TargetGroup(key) => {
                    self.edit_tags::<TargetGroupRecord>(&key, |r| &mut r.tags, edit)
                        .await?
                }
                Taggable::Listener(key) => {
                    self.edit_tags::<ListenerRecord>(&key, |r| &mut r.tags, edit)
                        .await?
                }
                Taggable::Rule(key) => {
                    self.edit_tags::<RuleRecord>(&key, |r| &mut r.tags, edit)
                        .await?
                }
                Taggable::DefaultRule(key) => {
                    self.edit_tags::<ListenerRecord>(&key, |r| &mut r.default_rule_tags, edit)
                        .await?
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn add_tags(
        &self,
        ctx: &RequestContext,
        request: AddTagsInput,
    ) -> Result<AddTagsOutput, ApiError> {
        let tags = request.tags.unwrap_or_default();
        validate_new(Some(&tags))?;
        self.edit_resource_tags(
            ctx,
            &request.resource_arns.unwrap_or_default(),
            &|existing| merge(existing, &tags),
        )
        .await?;
        Ok(AddTagsOutput {})
    }

    pub(crate) async fn remove_tags(
        &self,
        ctx: &RequestContext,
        request: RemoveTagsInput,
    ) -> Result<RemoveTagsOutput, ApiError> {
        let keys = request.tag_keys.unwrap_or_default();
        self.edit_resource_tags(
            ctx,
            &request.resource_arns.unwrap_or_default(),
            &|existing| {
                for key in &keys {
                    existing.remove(key);
                }
                Ok(())
            },
        )
        .await?;
        Ok(RemoveTagsOutput {})
    }

    pub(crate) async fn describe_tags(
        &self,
        ctx: &RequestContext,
        request: DescribeTagsInput,
    ) -> Result<DescribeTagsOutput, ApiError> {
        let arns = request.resource_arns.unwrap_or_default();
        if arns.len() > 20 {
            return Err(validation(
                "At most 20 resource ARNs can be described at once",
            ));
        }
        let mut descriptions = Vec::new();
        for arn in arns {
            let tags = match self.taggable(ctx, &arn).await? {
                Taggable::LoadBalancer(key) => {
                    records::get::<LoadBalancerRecord>(self.store(), &key)
                        .await?
                        .map(|r| r.value.tags)
                }
                Taggable::TargetGroup(key) => records::get::<TargetGroupRecord>(self.store(), &key)
                    .await?
                    .map(|r| r.value.tags),
                Taggable::Listener(key) => records::get::<ListenerRecord>(self.store(), &key)
                    .await?
                    .map(|r| r.value.tags),
                Taggable::Rule(key) => records::get::<RuleRecord>(self.store(), &key)
                    .await?
                    .map(|r| r.value.tags),
                Taggable::DefaultRule(key) => records::get::<ListenerRecord>(self.store(), &key)
                    .await?
                    .map(|r| r.value.default_rule_tags),
            };
            descriptions.push(TagDescription {
                resource_arn: Some(arn),
                tags: Some(wire(&tags.unwrap_or_default())),
            });
        }
        Ok(DescribeTagsOutput {
            tag_descriptions: Some(descriptions),
        })
    }
}
