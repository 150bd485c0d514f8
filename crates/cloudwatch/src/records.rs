//! What CloudWatch keeps in the orchestration store, under `/cloudwatch/<region>/…`:
//! alarms (`alarms/<name>`) and their history (`alarm-history/<20-digit ms>-<seq>-<id>`, in time
//! order; each item names its alarm, so an alarm whose name is another's prefix never
//! shares its items). Datapoints are in the metric store.

use std::collections::BTreeMap;

use cloudwatch_wire as wire;
use serde::{Deserialize, Serialize};

/// Every region's records start with this.
pub(crate) const ROOT_PREFIX: &str = "/cloudwatch/";

pub(crate) fn alarms_prefix(region: &str) -> String {
    format!("/cloudwatch/{region}/alarms/")
}
pub(crate) fn alarm_key(region: &str, name: &str) -> String {
    format!("{}{name}", alarms_prefix(region))
}
pub(crate) fn history_prefix(region: &str) -> String {
    format!("/cloudwatch/{region}/alarm-history/")
}
/// Items written in the same millisecond keep the order they were written in (a
/// process-wide sequence number; the UUID keeps keys of several servers apart).
pub(crate) fn history_key(region: &str, timestamp_ms: i64) -> String {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{}{:020}-{:020}-{}",
        history_prefix(region),
        timestamp_ms.max(0),
        sequence,
        uuid::Uuid::new_v4().simple()
    )
}

/// A metric alarm: the user's PutMetricAlarm document (without its tags), as given, and
/// its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AlarmRecord {
    pub definition: wire::PutMetricAlarmInput,
    pub arn: String,
    pub configuration_updated_ms: i64,
    pub state_value: String,
    pub state_reason: String,
    pub state_reason_data: Option<String>,
    pub state_updated_ms: i64,
    pub state_transitioned_ms: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl AlarmRecord {
    pub fn name(&self) -> &str {
        self.definition.alarm_name.as_deref().unwrap_or_default()
    }
    pub fn actions_enabled(&self) -> bool {
        self.definition.actions_enabled.unwrap_or(true)
    }
    /// The actions a move into `state` runs.
    pub fn actions_for(&self, state: &str) -> &[String] {
        let actions = match state {
            "OK" => &self.definition.ok_actions,
            "ALARM" => &self.definition.alarm_actions,
            _ => &self.definition.insufficient_data_actions,
        };
        actions.as_deref().unwrap_or_default()
    }
}

/// One DescribeAlarmHistory item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct HistoryRecord {
    pub alarm_name: String,
    pub timestamp_ms: i64,
    /// `ConfigurationUpdate`, `StateUpdate` or `Action`.
    pub item_type: String,
    pub summary: String,
    pub data: String,
}
