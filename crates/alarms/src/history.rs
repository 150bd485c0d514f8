//! DescribeAlarmHistory items' wording.
//!
//! StateUpdate, from the AWS CLI reference's `describe-alarm-history` example (a
//! SetAlarmState to ALARM with reason "testing purposes", then an evaluation back to OK):
//! * HistorySummary `Alarm updated from OK to ALARM`
//! * HistoryData `{"version":"1.0","oldState":{"stateValue":"OK","stateReason":"...",
//!   "stateReasonData":{...}},"newState":{"stateValue":"ALARM","stateReason":"testing purposes"}}`
//!   — StateReasonData is embedded as a JSON object and left out when the state has none.
//!
//! ConfigurationUpdate, from real history items: HistorySummary `Alarm "name" created`,
//! HistoryData `{"version":"1.0","type":"Create","createdAlarm":{...}}`. The `Update` and
//! `Delete` shapes (`updatedAlarm`/`originalAlarm`, `deletedAlarm`) are guessed by analogy.

use crate::wording::json_str;
use crate::{AlarmError, StateValue};

/// A state as history records it. `reason_data` is StateReasonData (JSON object text), if
/// the state has one: evaluations always do; SetAlarmState only when the caller sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSnapshot<'a> {
    pub value: StateValue,
    pub reason: &'a str,
    pub reason_data: Option<&'a str>,
}

/// HistorySummary and HistoryData of a StateUpdate item, for a state change by evaluation
/// or by SetAlarmState. Fails with `InvalidFormat` when a `reason_data` is not a JSON
/// object (SetAlarmState refuses such StateReasonData the same way).
pub fn state_update_history(
    old: &StateSnapshot,
    new: &StateSnapshot,
) -> Result<(String, String), AlarmError> {
    let summary = format!("Alarm updated from {} to {}", old.value, new.value);
    let data = format!(
        "{{\"version\":\"1.0\",\"oldState\":{},\"newState\":{}}}",
        state_json(old)?,
        state_json(new)?
    );
    Ok((summary, data))
}

fn state_json(s: &StateSnapshot) -> Result<String, AlarmError> {
    let mut out = format!(
        "{{\"stateValue\":\"{}\",\"stateReason\":{}",
        s.value,
        json_str(s.reason)
    );
    if let Some(data) = s.reason_data.filter(|d| !d.is_empty()) {
        out.push_str(",\"stateReasonData\":");
        out.push_str(json_object(data)?);
    }
    out.push('}');
    Ok(out)
}

/// `text` trimmed, when it is one JSON object; embedded verbatim so numbers keep the
/// writer's formatting (`80.0`, `1.0E8`).
fn json_object(text: &str) -> Result<&str, AlarmError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(text.trim()),
        _ => Err(AlarmError::InvalidFormat(
            "StateReasonData must be a JSON object".to_string(),
        )),
    }
}

/// What a ConfigurationUpdate item records, with the alarm's description as JSON objects
/// (the API crate owns that shape: `alarmName`, `alarmArn`, `namespace`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigurationChange<'a> {
    Create { alarm: &'a str },
    Update { original: &'a str, updated: &'a str },
    Delete { alarm: &'a str },
}

/// HistorySummary and HistoryData of a ConfigurationUpdate item.
pub fn configuration_update_history(
    alarm_name: &str,
    change: &ConfigurationChange,
) -> Result<(String, String), AlarmError> {
    let (verb, data) = match change {
        ConfigurationChange::Create { alarm } => (
            "created",
            format!(
                "{{\"version\":\"1.0\",\"type\":\"Create\",\"createdAlarm\":{}}}",
                json_object(alarm)?
            ),
        ),
        ConfigurationChange::Update { original, updated } => (
            "updated",
            format!(
                "{{\"version\":\"1.0\",\"type\":\"Update\",\"updatedAlarm\":{},\"originalAlarm\":{}}}",
                json_object(updated)?,
                json_object(original)?
            ),
        ),
        ConfigurationChange::Delete { alarm } => (
            "deleted",
            format!(
                "{{\"version\":\"1.0\",\"type\":\"Delete\",\"deletedAlarm\":{}}}",
                json_object(alarm)?
            ),
        ),
    };
    Ok((format!("Alarm \"{alarm_name}\" {verb}"), data))
}

/// SetAlarmState's `StateReasonData`: a JSON object (AWS answers `InvalidFormat` for
/// anything else); the trimmed text.
pub fn check_state_reason_data(text: &str) -> Result<&str, AlarmError> {
    json_object(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::INITIAL_STATE_REASON;

    #[test]
    fn state_updates_match_the_cli_reference() {
        let evaluated_reason = "Threshold Crossed: 2 datapoints were not greater than the threshold (70.0). The most recent datapoints: [38.839999999999996, 39.714].";
        let evaluated_data = r#"{"version":"1.0","queryDate":"2014-03-11T22:45:41.569+0000","startDate":"2014-03-11T22:30:00.000+0000","statistic":"Average","period":300,"recentDatapoints":[38.839999999999996,39.714],"threshold":70.0}"#;
        struct Case<'a> {
            old: StateSnapshot<'a>,
            new: StateSnapshot<'a>,
            summary: &'a str,
            data: &'a str,
        }
        let cases = [
            // SetAlarmState without StateReasonData.
            Case {
                old: StateSnapshot {
                    value: StateValue::Ok,
                    reason: evaluated_reason,
                    reason_data: Some(evaluated_data),
                },
                new: StateSnapshot {
                    value: StateValue::Alarm,
                    reason: "testing purposes",
                    reason_data: None,
                },
                summary: "Alarm updated from OK to ALARM",
                data: r#"{"version":"1.0","oldState":{"stateValue":"OK","stateReason":"Threshold Crossed: 2 datapoints were not greater than the threshold (70.0). The most recent datapoints: [38.839999999999996, 39.714].","stateReasonData":{"version":"1.0","queryDate":"2014-03-11T22:45:41.569+0000","startDate":"2014-03-11T22:30:00.000+0000","statistic":"Average","period":300,"recentDatapoints":[38.839999999999996,39.714],"threshold":70.0}},"newState":{"stateValue":"ALARM","stateReason":"testing purposes"}}"#,
            },
            // First evaluation after creation.
            Case {
                old: StateSnapshot {
                    value: StateValue::InsufficientData,
                    reason: INITIAL_STATE_REASON,
                    reason_data: None,
                },
                new: StateSnapshot {
                    value: StateValue::Ok,
                    reason: "r \"quoted\"",
                    reason_data: Some(" {\"a\":1.0E8} "),
                },
                summary: "Alarm updated from INSUFFICIENT_DATA to OK",
                data: r#"{"version":"1.0","oldState":{"stateValue":"INSUFFICIENT_DATA","stateReason":"Unchecked: Initial alarm creation"},"newState":{"stateValue":"OK","stateReason":"r \"quoted\"","stateReasonData":{"a":1.0E8}}}"#,
            },
        ];
        for c in cases {
            let (summary, data) = state_update_history(&c.old, &c.new).unwrap();
            assert_eq!(summary, c.summary);
            assert_eq!(data, c.data);
            assert!(serde_json::from_str::<serde_json::Value>(&data).is_ok());
        }
    }

    #[test]
    fn bad_reason_data_is_refused() {
        for bad in ["[1]", "not json", "1.0", "{"] {
            let old = StateSnapshot {
                value: StateValue::Ok,
                reason: "",
                reason_data: None,
            };
            let new = StateSnapshot {
                value: StateValue::Alarm,
                reason: "x",
                reason_data: Some(bad),
            };
            assert!(
                matches!(
                    state_update_history(&old, &new),
                    Err(AlarmError::InvalidFormat(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn configuration_updates() {
        fn check(change: ConfigurationChange, summary: &str, data: &str) {
            assert_eq!(
                configuration_update_history("cpu", &change).unwrap(),
                (summary.to_string(), data.to_string())
            );
        }
        check(
            ConfigurationChange::Create {
                alarm: r#"{"alarmName":"cpu"}"#,
            },
            r#"Alarm "cpu" created"#,
            r#"{"version":"1.0","type":"Create","createdAlarm":{"alarmName":"cpu"}}"#,
        );
        check(
            ConfigurationChange::Update {
                original: r#"{"threshold":1.0}"#,
                updated: r#"{"threshold":2.0}"#,
            },
            r#"Alarm "cpu" updated"#,
            r#"{"version":"1.0","type":"Update","updatedAlarm":{"threshold":2.0},"originalAlarm":{"threshold":1.0}}"#,
        );
        check(
            ConfigurationChange::Delete { alarm: "{}" },
            r#"Alarm "cpu" deleted"#,
            r#"{"version":"1.0","type":"Delete","deletedAlarm":{}}"#,
        );
        assert!(
            configuration_update_history("cpu", &ConfigurationChange::Create { alarm: "[]" })
                .is_err()
        );
    }
}
