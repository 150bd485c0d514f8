//! The stored records and their keys (everything under `/elbv2/<region>/`), with
//! compare-and-swap writes. Listener actions are kept in the wire shape: they are the
//! user's document, validated before they are stored, and returned member for member.

use std::collections::{BTreeMap, BTreeSet};

use api::ApiError;
use elbv2_wire::{Action, RuleCondition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use store::{Compare, Op, RangeRequest, Revision, Store, Txn};

pub(crate) fn load_balancers_prefix(region: &str) -> String {
    format!("/elbv2/{region}/loadbalancers/")
}
pub(crate) fn load_balancer_key(region: &str, name: &str) -> String {
    format!("{}{name}", load_balancers_prefix(region))
}
pub(crate) fn target_groups_prefix(region: &str) -> String {
    format!("/elbv2/{region}/targetgroups/")
}
pub(crate) fn target_group_key(region: &str, name: &str) -> String {
    format!("{}{name}", target_groups_prefix(region))
}
pub(crate) fn listeners_prefix(region: &str, load_balancer_name: &str) -> String {
    format!("/elbv2/{region}/listeners/{load_balancer_name}/")
}
pub(crate) fn listener_key(region: &str, load_balancer_name: &str, id: &str) -> String {
    format!("{}{id}", listeners_prefix(region, load_balancer_name))
}

/// Every rule of every listener of a load balancer.
pub(crate) fn load_balancer_rules_prefix(region: &str, load_balancer_name: &str) -> String {
    format!("/elbv2/{region}/rules/{load_balancer_name}/")
}
pub(crate) fn rules_prefix(region: &str, load_balancer_name: &str, listener_id: &str) -> String {
    format!(
        "{}{listener_id}/",
        load_balancer_rules_prefix(region, load_balancer_name)
    )
}
pub(crate) fn rule_key(
    region: &str,
    load_balancer_name: &str,
    listener_id: &str,
    id: &str,
) -> String {
    format!(
        "{}{id}",
        rules_prefix(region, load_balancer_name, listener_id)
    )
}

pub(crate) type Tags = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct LoadBalancerRecord {
    pub arn: String,
    pub name: String,
    pub scheme: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub created_ms: i64,
    /// Every attribute by key, as ModifyLoadBalancerAttributes takes them (`"true"`, `"60"`);
    /// see `attributes` for the keys, defaults and how records without some keys read.
    pub attributes: BTreeMap<String, String>,
    pub tags: Tags,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct HealthCheckSettings {
    pub enabled: bool,
    pub protocol: String,
    /// `traffic-port` or a port number.
    pub port: String,
    pub path: String,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold_count: i32,
    pub unhealthy_threshold_count: i32,
    /// The `Matcher.HttpCode` value, e.g. `200` or `200-299` or `200,302`.
    pub matcher_http_code: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct TargetRecord {
    pub id: String,
    pub port: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct TargetGroupRecord {
    pub arn: String,
    pub name: String,
    pub protocol: String,
    pub protocol_version: String,
    pub port: i32,
    pub vpc_id: Option<String>,
    pub target_type: String,
    pub health_check: HealthCheckSettings,
    /// Every attribute by key, as ModifyTargetGroupAttributes takes them (see `attributes`).
    pub attributes: BTreeMap<String, String>,
    /// Listeners whose actions forward here (kept in the same transactions that write them,
    /// so DeleteTargetGroup can refuse with ResourceInUse atomically).
    pub used_by_listeners: BTreeSet<String>,
    /// The load balancers of those listeners and rules.
    pub load_balancer_arns: BTreeSet<String>,
    pub targets: BTreeSet<TargetRecord>,
    pub tags: Tags,
    /// Listener rules (not default rules) whose actions forward here, kept like
    /// `used_by_listeners`.
    #[serde(default)]
    pub used_by_rules: BTreeSet<String>,
}

impl TargetGroupRecord {
    /// Whether a listener's default actions or a rule's actions forward here.
    pub fn in_use(&self) -> bool {
        !self.used_by_listeners.is_empty() || !self.used_by_rules.is_empty()
    }

    /// Rebuilds `load_balancer_arns` from the listeners and rules using the group (their ARNs
    /// name their load balancer).
    pub fn refresh_load_balancer_arns(&mut self) {
        self.load_balancer_arns = self
            .used_by_listeners
            .iter()
            .chain(&self.used_by_rules)
            .filter_map(|arn| crate::ids::load_balancer_arn_of(arn))
            .collect();
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ListenerRecord {
    pub arn: String,
    pub load_balancer_arn: String,
    pub port: i32,
    pub protocol: String,
    pub default_actions: Vec<Action>,
    pub tags: Tags,
    /// The tags of the listener's default rule (which has no record of its own).
    #[serde(default)]
    pub default_rule_tags: Tags,
    /// The listener attributes set with ModifyListenerAttributes, by key (the defaults are
    /// not stored; see `attributes::listener_attributes`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl ListenerRecord {
    /// The target groups the default actions forward to.
    pub fn target_group_arns(&self) -> BTreeSet<String> {
        crate::listeners::forwarded_target_groups(&self.default_actions)
    }
}

/// A listener rule other than the default rule (that one is the listener's default actions).
/// Conditions and actions are kept in the wire shape, validated and normalised (conditions
/// carry their `*Config` member, and `Values` too for host-header and path-pattern, as
/// DescribeRules shows them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RuleRecord {
    pub arn: String,
    pub listener_arn: String,
    /// 1 to 50000, unique within the listener.
    pub priority: i32,
    pub conditions: Vec<RuleCondition>,
    pub actions: Vec<Action>,
    pub tags: Tags,
}

impl RuleRecord {
    /// The target groups the actions forward to.
    pub fn target_group_arns(&self) -> BTreeSet<String> {
        crate::listeners::forwarded_target_groups(&self.actions)
    }
}

/// A decoded record and the revision it was read at.
pub(crate) struct Versioned<T> {
    pub value: T,
    pub mod_revision: Revision,
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|err| ApiError::server(format!("stored record {key} is unreadable: {err}")))
}

pub(crate) async fn get<T: DeserializeOwned>(
    store: &dyn Store,
    key: &str,
) -> Result<Option<Versioned<T>>, ApiError> {
    let Some(kv) = store.get(key).await? else {
        return Ok(None);
    };
    Ok(Some(Versioned {
        value: decode(&kv.key, &kv.value)?,
        mod_revision: kv.mod_revision,
    }))
}

/// Every record under `prefix` in key order, with its key and revision.
pub(crate) async fn list<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<(String, Versioned<T>)>, ApiError> {
    let response = store.range(RangeRequest::prefix(prefix)).await?;
    response
        .kvs
        .into_iter()
        .map(|kv| {
            let value = decode(&kv.key, &kv.value)?;
            Ok((
                kv.key,
                Versioned {
                    value,
                    mod_revision: kv.mod_revision,
                },
            ))
        })
        .collect()
}

/// A transaction that writes only if every record it read is unchanged.
#[derive(Default)]
pub(crate) struct Write {
    txn: Txn,
}

impl Write {
    pub fn new() -> Self {
        Write { txn: Txn::new() }
    }
    /// `mod_revision` 0 means the key must be absent.
    pub fn expect(mut self, key: &str, mod_revision: Revision) -> Self {
        self.txn = self.txn.when(Compare::mod_revision_is(key, mod_revision));
        self
    }
    pub fn put<T: Serialize>(mut self, key: &str, value: &T) -> Self {
        let bytes = serde_json::to_vec(value).expect("records always serialize");
        self.txn = self.txn.then(Op::put(key, bytes));
        self
    }
    pub fn delete(mut self, key: &str) -> Self {
        self.txn = self.txn.then(Op::delete(key));
        self
    }
    /// `Ok(false)` when a compare failed: re-read and retry.
    pub async fn commit(self, store: &dyn Store) -> Result<bool, ApiError> {
        Ok(store.txn(self.txn).await?.succeeded)
    }
}

pub(crate) const MAX_CAS_ATTEMPTS: usize = 64;

pub(crate) fn too_much_contention(what: &str) -> ApiError {
    ApiError::server(format!(
        "Too many concurrent updates to {what}; retry the request."
    ))
}
