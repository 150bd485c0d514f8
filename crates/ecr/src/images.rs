//! Images in a repository: the one place manifests are stored, tagged,
//! untagged and deleted, shared by the ECR API (PutImage, BatchDeleteImage,
//! …) and the registry (`PUT`/`DELETE /v2/<name>/manifests/<reference>`),
//! so both see and enforce the same rules (referenced layers present, tag
//! immutability) in one compare-and-swap transaction each.

use api::records::{self, Versioned};
use api::{ApiError, RequestContext};
use store::{Compare, Op, Txn};

use crate::error;
use crate::manifest;
use crate::records::{
    get_image, get_layer, get_tag, image_key, require_repository, tag_key, ImageRecord,
    RepositoryRecord, TagRecord,
};
use crate::Ecr;

/// How an image is named: by digest or by tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ImageReference {
    Digest(String),
    Tag(String),
}

impl ImageReference {
    /// A registry `<reference>`: a digest if it looks like one, else a tag.
    pub fn parse(reference: &str) -> ImageReference {
        if reference.contains(':') {
            ImageReference::Digest(reference.to_string())
        } else {
            ImageReference::Tag(reference.to_string())
        }
    }
}

/// What a put did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PutChange {
    /// A new image.
    Created,
    /// An existing image gained the tag (perhaps moved from another image).
    Tagged,
    /// The image already existed with this tag (or without a tag asked for).
    Unchanged,
}

/// The OCI tag grammar (ECR allows the same characters).
pub(crate) fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    tag.len() <= 128
        && (first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether `tag` may not be moved to another image in `repository`.
pub(crate) fn tag_is_immutable(repository: &RepositoryRecord, tag: &str) -> bool {
    let excluded = repository
        .image_tag_mutability_exclusion_filters
        .iter()
        .filter_map(|filter| filter.filter.as_deref())
        .any(|pattern| wildcard_match(pattern, tag));
    match repository.image_tag_mutability.as_str() {
        "IMMUTABLE" => true,
        "IMMUTABLE_WITH_EXCLUSION" => !excluded,
        "MUTABLE_WITH_EXCLUSION" => excluded,
        _ => false,
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

impl Ecr {
    /// The image `reference` names, if any.
    pub(crate) async fn resolve_image(
        &self,
        ctx: &RequestContext,
        repository: &str,
        reference: &ImageReference,
    ) -> Result<Option<Versioned<ImageRecord>>, ApiError> {
        let digest = match reference {
            ImageReference::Digest(digest) => digest.clone(),
            ImageReference::Tag(tag) => {
                match get_tag(&*self.store, &ctx.region, repository, tag).await? {
                    Some(found) => found.value.digest,
                    None => return Ok(None),
                }
            }
        };
        get_image(&*self.store, &ctx.region, repository, &digest).await
    }

    /// Stores a manifest (and `tag`, if given) in `repository`. Every blob
    /// it references must be in the repository, every manifest an index
    /// references must be an image of it, and `expected_digest` (a registry
    /// PUT by digest) must be the bytes' digest.
    pub(crate) async fn put_manifest(
        &self,
        ctx: &RequestContext,
        repository: &str,
        bytes: &[u8],
        media_type: Option<&str>,
        tag: Option<&str>,
        expected_digest: Option<&str>,
    ) -> Result<(ImageRecord, PutChange), ApiError> {
        let registry_id = &ctx.account_id;
        // A digest that does not match is refused before anything is read.
        if let Some(expected) = expected_digest.filter(|d| manifest::valid_digest(d)) {
            let actual = manifest::digest_like(expected, bytes);
            if actual != expected {
                return Err(error::image_digest_does_not_match(expected, &actual));
            }
        }
        let repo = require_repository(&*self.store, &ctx.region, registry_id, repository).await?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| error::invalid("Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Invalid JSON syntax'"))?;
        let parsed = manifest::parse(bytes, media_type).map_err(|err| {
            error::invalid(format!(
                "Invalid parameter at 'imageManifest' failed to satisfy constraint: '{err}'"
            ))
        })?;
        let digest = match expected_digest {
            Some(expected) => {
                if !manifest::valid_digest(expected) {
                    return Err(error::invalid(format!(
                        "Invalid parameter at 'imageDigest' failed to satisfy constraint: 'invalid digest {expected}'"
                    )));
                }
                expected.to_string()
            }
            None => manifest::sha256_digest(bytes),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(error::invalid(format!(
                    "Invalid parameter at 'imageTag' failed to satisfy constraint: 'must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}', got '{tag}'"
                )));
            }
        }
        let mut missing_blobs = Vec::new();
        for blob in &parsed.blobs {
            if get_layer(&*self.store, &ctx.region, repository, &blob.digest)
                .await?
                .is_none()
                && !missing_blobs.contains(&blob.digest)
            {
                missing_blobs.push(blob.digest.clone());
            }
        }
        if !missing_blobs.is_empty() {
            return Err(error::layers_not_found(
                &missing_blobs,
                repository,
                registry_id,
            ));
        }
        let mut size_bytes = parsed.layers_size_bytes;
        let mut missing_manifests = Vec::new();
        for child in &parsed.manifests {
            match get_image(&*self.store, &ctx.region, repository, &child.digest).await? {
                Some(image) => size_bytes += image.value.size_bytes,
                None => missing_manifests.push(child.digest.clone()),
            }
        }
        if !missing_manifests.is_empty() {
            return Err(error::referenced_images_not_found(
                &missing_manifests,
                repository,
            ));
        }

        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let image_key = image_key(&ctx.region, repository, &digest);
            let existing = get_image(&*self.store, &ctx.region, repository, &digest).await?;
            let mut txn = Txn::new().when(match &existing {
                Some(found) => Compare::mod_revision_is(&image_key, found.mod_revision),
                None => Compare::absent(image_key.clone()),
            });
            let mut image = match &existing {
                Some(found) => found.value.clone(),
                None => ImageRecord {
                    digest: digest.clone(),
                    manifest: text.to_string(),
                    media_type: parsed.media_type.clone(),
                    artifact_media_type: parsed.artifact_media_type.clone(),
                    size_bytes,
                    pushed_ms: ctx.now_ms,
                    last_pull_ms: None,
                    tags: Vec::new(),
                    blobs: parsed.blobs.iter().map(|b| b.digest.clone()).collect(),
                    manifests: parsed.manifests.iter().map(|m| m.digest.clone()).collect(),
                    subject: parsed.subject.clone(),
                },
            };
            let mut change = if existing.is_some() {
                PutChange::Unchanged
            } else {
                PutChange::Created
            };
            if let Some(tag) = tag {
                let tag_key = tag_key(&ctx.region, repository, tag);
                let current = get_tag(&*self.store, &ctx.region, repository, tag).await?;
                match &current {
                    Some(found) if found.value.digest == digest => {
                        txn = txn.when(Compare::mod_revision_is(&tag_key, found.mod_revision));
                    }
                    Some(found) => {
                        if tag_is_immutable(&repo.value, tag) {
                            return Err(error::tag_immutable(tag, repository));
                        }
                        txn = txn.when(Compare::mod_revision_is(&tag_key, found.mod_revision));
                        // The tag leaves the image it was on.
                        let old_key = image_key_of(ctx, repository, &found.value.digest);
                        if let Some(old) =
                            get_image(&*self.store, &ctx.region, repository, &found.value.digest)
                                .await?
                        {
                            let mut old_image = old.value;
                            old_image.tags.retain(|t| t != tag);
                            txn = txn
                                .when(Compare::mod_revision_is(&old_key, old.mod_revision))
                                .then(Op::put(&old_key, records::encode(&old_image)));
                        }
                    }
                    None => txn = txn.when(Compare::absent(tag_key.clone())),
                }
                if !image.tags.iter().any(|t| t == tag) {
                    image.tags.push(tag.to_string());
                    if change == PutChange::Unchanged {
                        change = PutChange::Tagged;
                    }
                }
                txn = txn.then(Op::put(
                    &tag_key,
                    records::encode(&TagRecord {
                        digest: digest.clone(),
                    }),
                ));
            }
            if change == PutChange::Unchanged {
                return Ok((image, change));
            }
            txn = txn.then(Op::put(&image_key, records::encode(&image)));
            if self.store.txn(txn).await?.succeeded {
                return Ok((image, change));
            }
        }
        Err(records::too_much_contention("the repository's images"))
    }

    /// Removes what `reference` names: a digest deletes the image and its
    /// tags; a tag removes the tag, and the image with it when it was the
    /// image's last tag (as BatchDeleteImage does). Returns the image as it
    /// was, or `None` if nothing matched.
    pub(crate) async fn delete_reference(
        &self,
        ctx: &RequestContext,
        repository: &str,
        reference: &ImageReference,
    ) -> Result<Option<ImageRecord>, ApiError> {
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let Some(found) = self.resolve_image(ctx, repository, reference).await? else {
                return Ok(None);
            };
            let image = found.value;
            let key = image_key_of(ctx, repository, &image.digest);
            let mut txn = Txn::new().when(Compare::mod_revision_is(&key, found.mod_revision));
            let remaining: Vec<String> = match reference {
                ImageReference::Digest(_) => Vec::new(),
                ImageReference::Tag(tag) => {
                    image.tags.iter().filter(|t| *t != tag).cloned().collect()
                }
            };
            for tag in image.tags.iter().filter(|t| !remaining.contains(t)) {
                txn = txn.then(Op::delete(tag_key(&ctx.region, repository, tag)));
            }
            if remaining.is_empty() {
                txn = txn.then(Op::delete(&key));
            } else {
                let mut kept = image.clone();
                kept.tags = remaining;
                txn = txn.then(Op::put(&key, records::encode(&kept)));
            }
            if self.store.txn(txn).await?.succeeded {
                return Ok(Some(image));
            }
        }
        Err(records::too_much_contention("the repository's images"))
    }

    /// Notes a pull (DescribeImages' `lastRecordedPullTime`), at most once
    /// a minute per image so pulls do not turn into store writes.
    pub(crate) async fn record_pull(
        &self,
        ctx: &RequestContext,
        repository: &str,
        found: &Versioned<ImageRecord>,
    ) -> Result<(), ApiError> {
        const REFRESH_MS: i64 = 60_000;
        if found
            .value
            .last_pull_ms
            .is_some_and(|last| ctx.now_ms - last < REFRESH_MS)
        {
            return Ok(());
        }
        let mut image = found.value.clone();
        image.last_pull_ms = Some(ctx.now_ms);
        let key = image_key_of(ctx, repository, &image.digest);
        // Losing a race to another pull or a tag change is fine: the
        // time is a hint, refreshed by the next pull.
        records::Write::new()
            .expect(&key, found.mod_revision)
            .put(&key, &image)
            .commit(&*self.store)
            .await?;
        Ok(())
    }
}

fn image_key_of(ctx: &RequestContext, repository: &str, digest: &str) -> String {
    image_key(&ctx.region, repository, digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_oci_grammar() {
        for good in ["1", "latest", "v1.2.3-rc_1", "_x"] {
            assert!(valid_tag(good), "{good}");
        }
        let long = "a".repeat(129);
        for bad in ["", "-x", ".x", "a/b", "a:b", long.as_str()] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn wildcards_match_as_ecr_exclusion_filters_do() {
        let cases = [
            ("release-*", "release-1", true),
            ("release-*", "prod-release-1", false),
            ("*-rc", "1.0-rc", true),
            ("*dev*", "my-dev-build", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("ab*ba", "aba", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(wildcard_match(pattern, text), expected, "{pattern} {text}");
        }
    }

    fn repository(mutability: &str, filters: &[&str]) -> RepositoryRecord {
        RepositoryRecord {
            name: "web".into(),
            created_ms: 0,
            image_tag_mutability: mutability.into(),
            image_tag_mutability_exclusion_filters: filters
                .iter()
                .map(|f| ecr_wire::ImageTagMutabilityExclusionFilter {
                    filter_type: Some(ecr_wire::ImageTagMutabilityExclusionFilterType::Wildcard),
                    filter: Some(f.to_string()),
                })
                .collect(),
            image_scanning_configuration: None,
            encryption_configuration: None,
            tags: Default::default(),
            lifecycle_policy: None,
            lifecycle_policy_updated_ms: None,
            repository_policy: None,
        }
    }

    #[test]
    fn immutability_and_its_exclusions() {
        let cases = [
            ("MUTABLE", &[][..], "1", false),
            ("IMMUTABLE", &[][..], "1", true),
            ("IMMUTABLE_WITH_EXCLUSION", &["latest"][..], "latest", false),
            ("IMMUTABLE_WITH_EXCLUSION", &["latest"][..], "1", true),
            (
                "MUTABLE_WITH_EXCLUSION",
                &["release-*"][..],
                "release-2",
                true,
            ),
            ("MUTABLE_WITH_EXCLUSION", &["release-*"][..], "dev", false),
        ];
        for (mutability, filters, tag, expected) in cases {
            assert_eq!(
                tag_is_immutable(&repository(mutability, filters), tag),
                expected,
                "{mutability} {filters:?} {tag}"
            );
        }
    }
}
