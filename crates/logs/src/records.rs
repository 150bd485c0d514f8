//! What CloudWatch Logs keeps in the orchestration store, under
//! `/logs/<region>/…`: log groups, log streams and metric filters (their
//! events are in the [`log_store::LogStore`]).
//!
//! Keys: a group is `groups/<name>`; a stream is `streams/<group>:<stream>`
//! and a metric filter `metric-filters/<group>:<filter>` — neither a group
//! name nor a stream or filter name can contain `:`, so the streams of group
//! `a` never share a prefix with those of `a/b`. A Logs Insights query is
//! `queries/<query id>` (`queries::QueryRecord`).

use std::collections::BTreeMap;

use api::records::{self, Versioned};
use api::ApiError;
use serde::{Deserialize, Serialize};
use store::Store;

pub(crate) fn groups_prefix(region: &str) -> String {
    format!("/logs/{region}/groups/")
}
pub(crate) fn group_key(region: &str, name: &str) -> String {
    format!("{}{name}", groups_prefix(region))
}
pub(crate) fn streams_prefix(region: &str, group: &str) -> String {
    format!("/logs/{region}/streams/{group}:")
}
pub(crate) fn stream_key(region: &str, group: &str, stream: &str) -> String {
    format!("{}{stream}", streams_prefix(region, group))
}
pub(crate) fn metric_filters_prefix(region: &str, group: &str) -> String {
    format!("/logs/{region}/metric-filters/{group}:")
}
pub(crate) fn metric_filter_key(region: &str, group: &str, filter: &str) -> String {
    format!("{}{filter}", metric_filters_prefix(region, group))
}
pub(crate) fn all_metric_filters_prefix(region: &str) -> String {
    format!("/logs/{region}/metric-filters/")
}
pub(crate) fn queries_prefix(region: &str) -> String {
    format!("/logs/{region}/queries/")
}
pub(crate) fn query_key(region: &str, query_id: &str) -> String {
    format!("{}{query_id}", queries_prefix(region))
}
/// Every region's records start with this.
pub(crate) const ROOT_PREFIX: &str = "/logs/";

pub(crate) type Tags = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct LogGroupRecord {
    pub name: String,
    pub creation_time_ms: i64,
    pub retention_in_days: Option<i32>,
    pub kms_key_id: Option<String>,
    pub log_group_class: String,
    pub deletion_protection_enabled: bool,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LogStreamRecord {
    pub group: String,
    pub name: String,
    pub creation_time_ms: i64,
    /// The key of this incarnation's events in the log store.
    pub stream_id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct MetricFilterRecord {
    pub group: String,
    pub name: String,
    pub filter_pattern: String,
    /// The wire shape: the user's document, returned member for member.
    pub metric_transformations: Vec<logs_wire::MetricTransformation>,
    pub creation_time_ms: i64,
    #[serde(default)]
    pub apply_on_transformed_logs: bool,
}

pub(crate) async fn get_group(
    store: &dyn Store,
    region: &str,
    name: &str,
) -> Result<Option<Versioned<LogGroupRecord>>, ApiError> {
    records::get(store, &group_key(region, name)).await
}

/// The group, or ResourceNotFoundException as AWS words it.
pub(crate) async fn require_group(
    store: &dyn Store,
    region: &str,
    name: &str,
) -> Result<Versioned<LogGroupRecord>, ApiError> {
    get_group(store, region, name)
        .await?
        .ok_or_else(crate::error::group_not_found)
}

/// The stream, or ResourceNotFoundException naming what is missing (the
/// group first, as AWS checks it first).
pub(crate) async fn require_stream(
    store: &dyn Store,
    region: &str,
    group: &str,
    stream: &str,
) -> Result<Versioned<LogStreamRecord>, ApiError> {
    if let Some(found) = records::get(store, &stream_key(region, group, stream)).await? {
        return Ok(found);
    }
    require_group(store, region, group).await?;
    Err(crate::error::stream_not_found())
}

pub(crate) async fn list_streams(
    store: &dyn Store,
    region: &str,
    group: &str,
) -> Result<Vec<LogStreamRecord>, ApiError> {
    Ok(records::list(store, &streams_prefix(region, group))
        .await?
        .into_iter()
        .map(|(_, record)| record)
        .collect())
}

/// A UUID (version 4 layout) derived from the request id, unique per
/// request, and `purpose`: ids AWS shows as UUIDs, without randomness.
pub(crate) fn derived_uuid(request_id: &str, purpose: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{request_id}\n{purpose}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The stream id of a new stream: derived from the request id (unique per
/// request), so it needs no randomness and differs between incarnations.
pub(crate) fn new_stream_id(request_id: &str, group: &str, stream: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{request_id}\n{group}\n{stream}").as_bytes());
    hex::encode(&digest[..16])
}
