//! Alarms as the services they act on see them: Application Auto Scaling reads the state and
//! the recent datapoints of the alarms that name its scaling policies, every pass, rather than
//! remembering which action ran (an alarm that stays in ALARM keeps asking, as on AWS).

use api::records;
use api::ApiError;

use crate::alarm_api::alarm_period_s;
use crate::records::{alarms_prefix, AlarmRecord};
use crate::CloudWatch;

/// One alarm whose actions name something of the caller's.
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmObservation {
    pub name: String,
    pub arn: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state_value: String,
    pub actions_enabled: bool,
    pub threshold: f64,
    pub comparison_operator: String,
    pub alarm_actions: Vec<String>,
    /// The alarm's datapoints over its last `EvaluationPeriods` periods, oldest first; read
    /// only for alarms in ALARM (the others trigger nothing).
    pub datapoints: Vec<f64>,
}

impl CloudWatch {
    /// The alarms of `region` with an AlarmAction starting with `action_prefix`.
    pub async fn alarms_acting_on(
        &self,
        region: &str,
        action_prefix: &str,
        now_ms: i64,
    ) -> Result<Vec<AlarmObservation>, ApiError> {
        let alarms: Vec<(String, AlarmRecord)> =
            records::list(&*self.store, &alarms_prefix(region)).await?;
        let mut observed = Vec::new();
        for (_, alarm) in alarms {
            let actions = alarm.definition.alarm_actions.clone().unwrap_or_default();
            if !actions.iter().any(|arn| arn.starts_with(action_prefix)) {
                continue;
            }
            let datapoints = if alarm.state_value == "ALARM" {
                self.recent_datapoints(region, &alarm, now_ms).await?
            } else {
                Vec::new()
            };
            observed.push(AlarmObservation {
                name: alarm.name().to_string(),
                arn: alarm.arn.clone(),
                state_value: alarm.state_value.clone(),
                actions_enabled: alarm.actions_enabled(),
                threshold: alarm.definition.threshold.unwrap_or_default(),
                comparison_operator: alarm
                    .definition
                    .comparison_operator
                    .clone()
                    .unwrap_or_default(),
                alarm_actions: actions,
                datapoints,
            });
        }
        Ok(observed)
    }

    /// The newest `EvaluationPeriods` datapoints of the alarm's evaluation range.
    async fn recent_datapoints(
        &self,
        region: &str,
        alarm: &AlarmRecord,
        now_ms: i64,
    ) -> Result<Vec<f64>, ApiError> {
        let period_s = alarm_period_s(&alarm.definition);
        let rule = crate::alarm_api::rule_of(&alarm.definition, period_s)?;
        let (start_ms, end_ms) = alarms::evaluation_range(&rule, now_ms);
        let mut points = self
            .alarm_datapoints(region, alarm, period_s, start_ms, end_ms, now_ms)
            .await?;
        points.sort_by_key(|point| point.timestamp_ms);
        let keep = rule.evaluation_periods.max(1) as usize;
        let skip = points.len().saturating_sub(keep);
        Ok(points[skip..].iter().map(|point| point.value).collect())
    }
}
