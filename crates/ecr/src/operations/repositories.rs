//! Repositories: CreateRepository, DescribeRepositories, DeleteRepository,
//! PutImageTagMutability, PutImageScanningConfiguration, and
//! DescribeRegistry.

use api::pagination;
use api::records::{self, Versioned, Write};
use api::{ApiError, RequestContext};
use ecr_wire as wire;
use store::{Compare, Op, RangeRequest, Txn};

use super::epoch_seconds;
use super::lifecycle::preview_key;
use super::tags::tags_from_wire;
use super::validate;
use crate::error;
use crate::records::{
    images_prefix, layers_prefix, repositories_prefix, repository_key, require_repository,
    tags_prefix, uploads_prefix, RepositoryRecord, UploadRecord,
};
use crate::Ecr;

/// The exclusion filters' grammar (`ImageTagMutabilityExclusionFilterValue`).
fn valid_exclusion_filter(filter: &str) -> bool {
    (1..=128).contains(&filter.len())
        && filter
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'*' | b'-'))
}

/// Checks a tag mutability setting and its exclusion filters.
pub(super) fn check_mutability(
    mutability: wire::ImageTagMutability,
    filters: Option<&Vec<wire::ImageTagMutabilityExclusionFilter>>,
) -> Result<(), ApiError> {
    const MEMBER: &str = "imageTagMutabilityExclusionFilters";
    let with_exclusion = matches!(
        mutability,
        wire::ImageTagMutability::MutableWithExclusion
            | wire::ImageTagMutability::ImmutableWithExclusion
    );
    match filters {
        None if with_exclusion => Err(error::invalid_parameter_at(
            MEMBER,
            format!("must be specified when imageTagMutability is {mutability}"),
        )),
        Some(_) if !with_exclusion => Err(error::invalid_parameter_at(
            MEMBER,
            format!("can only be specified when imageTagMutability is MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION, not {mutability}"),
        )),
        None => Ok(()),
        Some(filters) => {
            validate::count(MEMBER, filters.len(), 1, 5)?;
            for filter in filters {
                validate::required(&format!("{MEMBER}.filterType"), filter.filter_type)?;
                let value = validate::required(&format!("{MEMBER}.filter"), filter.filter.as_deref())?;
                if !valid_exclusion_filter(value) {
                    return Err(error::invalid_parameter_at(
                        &format!("{MEMBER}.filter"),
                        "must satisfy regular expression '^[0-9a-zA-Z._*-]{1,128}$'",
                    ));
                }
            }
            Ok(())
        }
    }
}

impl Ecr {
    /// A repository record as the wire's `Repository`.
    pub(super) fn repository_wire(
        &self,
        ctx: &RequestContext,
        record: &RepositoryRecord,
    ) -> wire::Repository {
        let mutability = record
            .image_tag_mutability
            .parse()
            .unwrap_or(wire::ImageTagMutability::Mutable);
        wire::Repository {
            repository_arn: Some(crate::repository_arn(ctx, &record.name)),
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(record.name.clone()),
            repository_uri: Some(self.repository_uri(&record.name)),
            created_at: Some(epoch_seconds(record.created_ms)),
            image_tag_mutability: Some(mutability),
            image_tag_mutability_exclusion_filters: (!record
                .image_tag_mutability_exclusion_filters
                .is_empty())
            .then(|| record.image_tag_mutability_exclusion_filters.clone()),
            image_scanning_configuration: Some(
                record.image_scanning_configuration.clone().unwrap_or(
                    wire::ImageScanningConfiguration {
                        scan_on_push: Some(false),
                    },
                ),
            ),
            encryption_configuration: Some(record.encryption_configuration.clone().unwrap_or(
                wire::EncryptionConfiguration {
                    encryption_type: Some(wire::EncryptionType::Aes256),
                    kms_key: None,
                },
            )),
        }
    }

    /// Reads, changes and writes back a repository with compare-and-swap.
    pub(super) async fn update_repository(
        &self,
        ctx: &RequestContext,
        name: &str,
        mut change: impl FnMut(&mut RepositoryRecord) -> Result<(), ApiError>,
    ) -> Result<RepositoryRecord, ApiError> {
        let key = repository_key(&ctx.region, name);
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let found =
                require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
            let mut record = found.value;
            change(&mut record)?;
            if Write::new()
                .expect(&key, found.mod_revision)
                .put(&key, &record)
                .commit(&*self.store)
                .await?
            {
                return Ok(record);
            }
        }
        Err(records::too_much_contention("the repository"))
    }

    pub(crate) async fn create_repository(
        &self,
        ctx: &RequestContext,
        request: wire::CreateRepositoryRequest,
    ) -> Result<wire::CreateRepositoryResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?.to_string();
        let mutability = request
            .image_tag_mutability
            .unwrap_or(wire::ImageTagMutability::Mutable);
        check_mutability(
            mutability,
            request.image_tag_mutability_exclusion_filters.as_ref(),
        )?;
        let encryption = match request.encryption_configuration {
            Some(config) => {
                let kind = validate::required(
                    "encryptionConfiguration.encryptionType",
                    config.encryption_type,
                )?;
                if let Some(key) = config.kms_key.as_deref() {
                    validate::length("encryptionConfiguration.kmsKey", key, 1, 2048)?;
                    if kind == wire::EncryptionType::Aes256 {
                        return Err(error::invalid_parameter_at(
                            "encryptionConfiguration.kmsKey",
                            "KMS key can only be specified when encryptionType is KMS or KMS_DSSE",
                        ));
                    }
                }
                config
            }
            None => wire::EncryptionConfiguration {
                encryption_type: Some(wire::EncryptionType::Aes256),
                kms_key: None,
            },
        };
        let tags = tags_from_wire(request.tags.as_deref().unwrap_or_default())?;
        let record = RepositoryRecord {
            name: name.clone(),
            created_ms: ctx.now_ms,
            image_tag_mutability: mutability.as_str().to_string(),
            image_tag_mutability_exclusion_filters: request
                .image_tag_mutability_exclusion_filters
                .unwrap_or_default(),
            image_scanning_configuration: Some(request.image_scanning_configuration.unwrap_or(
                wire::ImageScanningConfiguration {
                    scan_on_push: Some(false),
                },
            )),
            encryption_configuration: Some(encryption),
            tags,
            lifecycle_policy: None,
            lifecycle_policy_updated_ms: None,
            repository_policy: None,
        };
        let key = repository_key(&ctx.region, &name);
        if !Write::new()
            .expect(&key, 0)
            .put(&key, &record)
            .commit(&*self.store)
            .await?
        {
            return Err(error::repository_exists(&name, &ctx.account_id));
        }
        Ok(wire::CreateRepositoryResponse {
            repository: Some(self.repository_wire(ctx, &record)),
        })
    }

    pub(crate) async fn describe_repositories(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeRepositoriesRequest,
    ) -> Result<wire::DescribeRepositoriesResponse, ApiError> {
        const OPERATION: &str = "DescribeRepositories";
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let page_size = validate::max_results(request.max_results, 1000)?;
        if let Some(names) = &request.repository_names {
            validate::count("repositoryNames", names.len(), 1, 100)?;
            if request.max_results.is_some() || request.next_token.is_some() {
                return Err(error::invalid_parameter_at(
                    "maxResults",
                    "cannot be used together with repositoryNames",
                ));
            }
            let mut repositories = Vec::with_capacity(names.len());
            for name in names {
                let name = validate::repository_name(Some(name))?;
                let record =
                    require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
                repositories.push(self.repository_wire(ctx, &record.value));
            }
            return Ok(wire::DescribeRepositoriesResponse {
                repositories: Some(repositories),
                next_token: None,
            });
        }
        let after = pagination::decode_token(OPERATION, request.next_token.as_deref())?;
        let all: Vec<RepositoryRecord> =
            records::list(&*self.store, &repositories_prefix(&ctx.region))
                .await?
                .into_iter()
                .map(|(_, record)| record)
                .collect();
        let (page, next_token) = pagination::paginate(
            OPERATION,
            all,
            |record| record.name.clone(),
            after.as_deref(),
            page_size,
            false,
        );
        Ok(wire::DescribeRepositoriesResponse {
            repositories: Some(
                page.iter()
                    .map(|record| self.repository_wire(ctx, record))
                    .collect(),
            ),
            next_token,
        })
    }

    pub(crate) async fn delete_repository(
        &self,
        ctx: &RequestContext,
        request: wire::DeleteRepositoryRequest,
    ) -> Result<wire::DeleteRepositoryResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let force = request.force.unwrap_or(false);
        let key = repository_key(&ctx.region, name);
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let found: Versioned<RepositoryRecord> =
                require_repository(&*self.store, &ctx.region, &ctx.account_id, name).await?;
            let images = self
                .store
                .range(RangeRequest::prefix(images_prefix(&ctx.region, name)))
                .await?;
            if !images.kvs.is_empty() && !force {
                return Err(error::repository_not_empty(name, &ctx.account_id));
            }
            let mut txn = Txn::new()
                .when(Compare::mod_revision_is(&key, found.mod_revision))
                .then(Op::delete(&key))
                .then(Op::delete(preview_key(&ctx.region, name)));
            let mut uploads = Vec::new();
            let mut related = images.kvs;
            for prefix in [
                tags_prefix(&ctx.region, name),
                layers_prefix(&ctx.region, name),
                uploads_prefix(&ctx.region, name),
            ] {
                related.extend(self.store.range(RangeRequest::prefix(prefix)).await?.kvs);
            }
            for kv in &related {
                if kv.key.starts_with(&uploads_prefix(&ctx.region, name)) {
                    let upload: UploadRecord = records::decode(&kv.key, &kv.value)?;
                    uploads.push(upload.upload_id);
                }
                txn = txn
                    .when(Compare::mod_revision_is(&kv.key, kv.mod_revision))
                    .then(Op::delete(&kv.key));
            }
            if !self.store.txn(txn).await?.succeeded {
                continue;
            }
            // The records are gone; staged bytes go now (or with the
            // collector, which abandons uploads without records).
            for upload in uploads {
                if let Ok(id) = upload.parse::<blob_store::UploadId>() {
                    let _ = self.with_blobs(move |blobs| blobs.cancel_upload(&id)).await;
                }
            }
            return Ok(wire::DeleteRepositoryResponse {
                repository: Some(self.repository_wire(ctx, &found.value)),
            });
        }
        Err(records::too_much_contention("the repository"))
    }

    pub(crate) async fn put_image_tag_mutability(
        &self,
        ctx: &RequestContext,
        request: wire::PutImageTagMutabilityRequest,
    ) -> Result<wire::PutImageTagMutabilityResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let mutability = validate::required("imageTagMutability", request.image_tag_mutability)?;
        check_mutability(
            mutability,
            request.image_tag_mutability_exclusion_filters.as_ref(),
        )?;
        let filters = request
            .image_tag_mutability_exclusion_filters
            .unwrap_or_default();
        self.update_repository(ctx, name, |record| {
            record.image_tag_mutability = mutability.as_str().to_string();
            record.image_tag_mutability_exclusion_filters = filters.clone();
            Ok(())
        })
        .await?;
        Ok(wire::PutImageTagMutabilityResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            image_tag_mutability: Some(mutability),
            image_tag_mutability_exclusion_filters: (!filters.is_empty()).then_some(filters),
        })
    }

    pub(crate) async fn put_image_scanning_configuration(
        &self,
        ctx: &RequestContext,
        request: wire::PutImageScanningConfigurationRequest,
    ) -> Result<wire::PutImageScanningConfigurationResponse, ApiError> {
        validate::registry_id(ctx, request.registry_id.as_deref())?;
        let name = validate::repository_name(request.repository_name.as_deref())?;
        let configuration = validate::required(
            "imageScanningConfiguration",
            request.image_scanning_configuration,
        )?;
        let configuration = wire::ImageScanningConfiguration {
            scan_on_push: Some(configuration.scan_on_push.unwrap_or(false)),
        };
        self.update_repository(ctx, name, |record| {
            record.image_scanning_configuration = Some(configuration.clone());
            Ok(())
        })
        .await?;
        Ok(wire::PutImageScanningConfigurationResponse {
            registry_id: Some(ctx.account_id.clone()),
            repository_name: Some(name.to_string()),
            image_scanning_configuration: Some(configuration),
        })
    }

    pub(crate) fn describe_registry(
        &self,
        ctx: &RequestContext,
        _request: wire::DescribeRegistryRequest,
    ) -> Result<wire::DescribeRegistryResponse, ApiError> {
        Ok(wire::DescribeRegistryResponse {
            registry_id: Some(ctx.account_id.clone()),
            replication_configuration: Some(wire::ReplicationConfiguration {
                rules: Some(Vec::new()),
            }),
        })
    }
}
