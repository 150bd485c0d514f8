//! Log groups: CreateLogGroup, DeleteLogGroup, DescribeLogGroups,
//! PutLogGroupDeletionProtection, Put/DeleteRetentionPolicy.

use api::pagination;
use api::records::{self, Versioned, Write};
use api::{ApiError, RequestContext};
use logs_wire as wire;
use store::{Op, Txn};

use crate::error;
use crate::records::{
    group_key, groups_prefix, metric_filters_prefix, streams_prefix, LogGroupRecord,
};
use crate::validate::Violations;
use crate::{Empty, Logs};

/// The retention periods CloudWatch Logs offers, in days.
pub(crate) const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

pub(crate) const MILLIS_PER_DAY: i64 = 24 * 60 * 60 * 1000;

/// The oldest event timestamp a group with `retention_in_days` still
/// holds at `now_ms` (`None`: events never expire).
pub(crate) fn retention_cutoff_ms(retention_in_days: Option<i32>, now_ms: i64) -> Option<i64> {
    retention_in_days.map(|days| now_ms - i64::from(days) * MILLIS_PER_DAY)
}

/// The group a request names with `logGroupName` or `logGroupIdentifier`
/// (a name or a log group ARN, with or without the trailing `:*`).
pub(crate) fn group_name_of(
    name: Option<&str>,
    identifier: Option<&str>,
) -> Result<String, ApiError> {
    match (name, identifier) {
        (Some(_), Some(_)) => Err(error::invalid(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (Some(name), None) => Ok(name.to_string()),
        (None, Some(identifier)) => Ok(name_from_identifier(identifier)),
        (None, None) => Err(error::invalid(
            "Should provide either name or ARN (identifier) of the log group.",
        )),
    }
}

fn name_from_identifier(identifier: &str) -> String {
    match identifier.split_once(":log-group:") {
        Some((_, rest)) => rest.strip_suffix(":*").unwrap_or(rest).to_string(),
        None => identifier.to_string(),
    }
}

impl Logs {
    pub(crate) async fn create_log_group(
        &self,
        ctx: &RequestContext,
        request: wire::CreateLogGroupRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.string("kmsKeyId", request.kms_key_id.as_deref(), 0, 256, None);
        violations.tags("tags", request.tags.as_ref());
        violations.finish()?;
        let name = request.log_group_name.unwrap_or_default();
        let record = LogGroupRecord {
            name: name.clone(),
            creation_time_ms: ctx.now_ms,
            retention_in_days: None,
            kms_key_id: request.kms_key_id,
            log_group_class: request
                .log_group_class
                .unwrap_or(wire::LogGroupClass::Standard)
                .as_str()
                .to_string(),
            deletion_protection_enabled: request.deletion_protection_enabled.unwrap_or(false),
            tags: request.tags.unwrap_or_default(),
        };
        let key = group_key(&ctx.region, &name);
        if Write::new()
            .expect(&key, 0)
            .put(&key, &record)
            .commit(&*self.store)
            .await?
        {
            Ok(Empty {})
        } else {
            Err(error::group_exists())
        }
    }

    pub(crate) async fn delete_log_group(
        &self,
        ctx: &RequestContext,
        request: wire::DeleteLogGroupRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.finish()?;
        let name = request.log_group_name.unwrap_or_default();
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let group = crate::records::require_group(&*self.store, &ctx.region, &name).await?;
            if group.value.deletion_protection_enabled {
                return Err(ApiError::client(
                    "ValidationException",
                    "Cannot delete log group with deletion protection enabled. Disable it with PutLogGroupDeletionProtection first.",
                ));
            }
            let streams = self
                .store
                .range(store::RangeRequest::prefix(streams_prefix(
                    &ctx.region,
                    &name,
                )))
                .await?;
            let filters = self
                .store
                .range(store::RangeRequest::prefix(metric_filters_prefix(
                    &ctx.region,
                    &name,
                )))
                .await?;
            let group_key = group_key(&ctx.region, &name);
            let mut txn = Txn::new().when(store::Compare::mod_revision_is(
                &group_key,
                group.mod_revision,
            ));
            txn = txn.then(Op::delete(&group_key));
            let mut stream_ids = Vec::new();
            for kv in streams.kvs.iter().chain(&filters.kvs) {
                txn = txn
                    .when(store::Compare::mod_revision_is(&kv.key, kv.mod_revision))
                    .then(Op::delete(&kv.key));
            }
            for kv in &streams.kvs {
                let stream: crate::records::LogStreamRecord = records::decode(&kv.key, &kv.value)?;
                stream_ids.push(stream.stream_id);
            }
            if !self.store.txn(txn).await?.succeeded {
                continue;
            }
            // The records are gone; their events go now (and, should this
            // fail, with the next retention pass, which deletes the events of
            // streams without records).
            self.with_events(move |events| {
                for id in &stream_ids {
                    events.delete_stream(id)?;
                }
                Ok(())
            })
            .await?;
            return Ok(Empty {});
        }
        Err(records::too_much_contention("the log group"))
    }

    pub(crate) async fn describe_log_groups(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeLogGroupsRequest,
    ) -> Result<wire::DescribeLogGroupsResponse, ApiError> {
        let mut violations = Violations::new();
        violations.string(
            "logGroupNamePrefix",
            request.log_group_name_prefix.as_deref(),
            1,
            512,
            Some(crate::validate::LOG_GROUP_NAME_PATTERN),
        );
        violations.string(
            "logGroupNamePattern",
            request.log_group_name_pattern.as_deref(),
            0,
            512,
            Some(r"[\.\-_/#A-Za-z0-9]*"),
        );
        violations.range("limit", request.limit.map(i64::from), 1, 50);
        violations.count(
            "logGroupIdentifiers",
            request.log_group_identifiers.as_ref().map(Vec::len),
            1,
            50,
        );
        violations.finish()?;
        if request.log_group_name_prefix.is_some() && request.log_group_name_pattern.is_some() {
            return Err(error::invalid(
                "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters.",
            ));
        }
        if request.log_group_identifiers.is_some()
            && (request.log_group_name_prefix.is_some() || request.log_group_name_pattern.is_some())
        {
            return Err(error::invalid(
                "LogGroupIdentifiers is mutually exclusive with LogGroupNamePrefix and LogGroupNamePattern.",
            ));
        }
        let prefix = format!(
            "{}{}",
            groups_prefix(&ctx.region),
            request.log_group_name_prefix.as_deref().unwrap_or("")
        );
        let pattern = request
            .log_group_name_pattern
            .as_deref()
            .map(str::to_ascii_lowercase);
        let identifiers: Option<Vec<String>> = request.log_group_identifiers.as_ref().map(|ids| {
            ids.iter()
                .map(|id| name_from_identifier(id))
                .collect::<Vec<_>>()
        });
        let groups: Vec<LogGroupRecord> = records::list::<LogGroupRecord>(&*self.store, &prefix)
            .await?
            .into_iter()
            .map(|(_, group)| group)
            .filter(|group| {
                pattern
                    .as_deref()
                    .is_none_or(|p| group.name.to_ascii_lowercase().contains(p))
            })
            .filter(|group| {
                identifiers
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&group.name))
            })
            .filter(|group| {
                request
                    .log_group_class
                    .is_none_or(|class| class.as_str() == group.log_group_class)
            })
            .collect();
        let after = pagination::decode_token("DescribeLogGroups", request.next_token.as_deref())?;
        let page_size = request.limit.map_or(50, |n| n as usize);
        let (page, next_token) = pagination::paginate(
            "DescribeLogGroups",
            groups,
            |group| group.name.clone(),
            after.as_deref(),
            page_size,
            false,
        );
        let mut log_groups = Vec::with_capacity(page.len());
        for group in page {
            log_groups.push(self.log_group_wire(ctx, group).await?);
        }
        Ok(wire::DescribeLogGroupsResponse {
            log_groups: Some(log_groups),
            next_token,
        })
    }

    async fn log_group_wire(
        &self,
        ctx: &RequestContext,
        group: LogGroupRecord,
    ) -> Result<wire::LogGroup, ApiError> {
        let streams = crate::records::list_streams(&*self.store, &ctx.region, &group.name).await?;
        let metric_filter_count = self
            .store
            .range(store::RangeRequest::prefix(metric_filters_prefix(
                &ctx.region,
                &group.name,
            )))
            .await?
            .kvs
            .len();
        let ids: Vec<String> = streams.into_iter().map(|s| s.stream_id).collect();
        let stored_bytes = self
            .with_events(move |events| {
                let mut total = 0u64;
                for id in &ids {
                    total += events.stats(id)?.stored_bytes;
                }
                Ok(total)
            })
            .await?;
        let arn = crate::log_group_arn(ctx, &group.name);
        Ok(wire::LogGroup {
            log_group_name: Some(group.name),
            creation_time: Some(group.creation_time_ms),
            retention_in_days: group.retention_in_days,
            metric_filter_count: Some(metric_filter_count as i32),
            arn: Some(format!("{arn}:*")),
            stored_bytes: Some(stored_bytes as i64),
            kms_key_id: group.kms_key_id,
            log_group_class: group.log_group_class.parse().ok(),
            log_group_arn: Some(arn),
            deletion_protection_enabled: Some(group.deletion_protection_enabled),
            ..Default::default()
        })
    }

    /// Reads the group, applies `change`, and writes it back with CAS.
    pub(crate) async fn update_group(
        &self,
        ctx: &RequestContext,
        name: &str,
        change: impl Fn(&mut LogGroupRecord) -> Result<(), ApiError>,
    ) -> Result<LogGroupRecord, ApiError> {
        let key = group_key(&ctx.region, name);
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let Versioned {
                mut value,
                mod_revision,
            } = crate::records::require_group(&*self.store, &ctx.region, name).await?;
            change(&mut value)?;
            if Write::new()
                .expect(&key, mod_revision)
                .put(&key, &value)
                .commit(&*self.store)
                .await?
            {
                return Ok(value);
            }
        }
        Err(records::too_much_contention("the log group"))
    }

    pub(crate) async fn put_log_group_deletion_protection(
        &self,
        ctx: &RequestContext,
        request: wire::PutLogGroupDeletionProtectionRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required("logGroupIdentifier", request.log_group_identifier.as_ref());
        violations.log_group_identifier(
            "logGroupIdentifier",
            request.log_group_identifier.as_deref(),
        );
        violations.required(
            "deletionProtectionEnabled",
            request.deletion_protection_enabled.as_ref(),
        );
        violations.finish()?;
        let name = group_name_of(None, request.log_group_identifier.as_deref())?;
        let enabled = request.deletion_protection_enabled.unwrap_or(false);
        self.update_group(ctx, &name, |group| {
            group.deletion_protection_enabled = enabled;
            Ok(())
        })
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn put_retention_policy(
        &self,
        ctx: &RequestContext,
        request: wire::PutRetentionPolicyRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.required("retentionInDays", request.retention_in_days.as_ref());
        violations.one_of(
            "retentionInDays",
            request.retention_in_days.map(i64::from),
            RETENTION_DAYS,
        );
        violations.finish()?;
        let days = request.retention_in_days;
        self.update_group(
            ctx,
            request.log_group_name.as_deref().unwrap_or(""),
            |group| {
                group.retention_in_days = days;
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn delete_retention_policy(
        &self,
        ctx: &RequestContext,
        request: wire::DeleteRetentionPolicyRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.finish()?;
        self.update_group(
            ctx,
            request.log_group_name.as_deref().unwrap_or(""),
            |group| {
                group.retention_in_days = None;
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_name_groups() {
        for (identifier, expected) in [
            ("web", "web"),
            (
                "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web",
                "/ecs/web",
            ),
            (
                "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web:*",
                "/ecs/web",
            ),
        ] {
            assert_eq!(name_from_identifier(identifier), expected);
        }
        assert!(group_name_of(None, None).is_err());
        assert!(group_name_of(Some("a"), Some("a")).is_err());
    }

    #[test]
    fn retention_cutoff() {
        assert_eq!(retention_cutoff_ms(None, 10 * MILLIS_PER_DAY), None);
        assert_eq!(
            retention_cutoff_ms(Some(7), 10 * MILLIS_PER_DAY),
            Some(3 * MILLIS_PER_DAY)
        );
    }
}
