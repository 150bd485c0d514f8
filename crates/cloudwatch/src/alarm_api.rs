//! Metric alarms: PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms,
//! SetAlarmState, DescribeAlarmHistory, Enable/DisableAlarmActions, and tags on alarms.

use std::collections::BTreeMap;
use std::str::FromStr;

use alarms::{ComparisonOperator, LowSampleCount, StateValue, TreatMissingData};
use api::records::{self, Versioned, Write, MAX_CAS_ATTEMPTS};
use api::{ApiError, RequestContext};
use cloudwatch_wire as wire;
use store::{Op, RangeRequest, Txn};

use crate::error;
use crate::metrics::{check_period, metric_key, plan_queries};
use crate::records::{
    alarm_key, alarms_prefix, history_key, history_prefix, AlarmRecord, HistoryRecord,
};
use crate::statistics::Statistic;
use crate::CloudWatch;

const MAX_TAGS: usize = 50;
const DESCRIBE_ALARMS_DEFAULT: usize = 50;
const DESCRIBE_ALARMS_MAX: usize = 100;
const HISTORY_DEFAULT: usize = 100;
/// CloudWatch keeps alarm history for 30 days.
pub(crate) const HISTORY_RETENTION_MS: i64 = 30 * 24 * 3_600_000;

impl CloudWatch {
    pub(crate) async fn put_metric_alarm(
        &self,
        ctx: &RequestContext,
        mut request: wire::PutMetricAlarmInput,
    ) -> Result<(), ApiError> {
        let tags = check_tags(request.tags.take().unwrap_or_default())?;
        self.check_alarm(&ctx.region, &request)?;
        let name = request.alarm_name.clone().unwrap_or_default();
        let key = alarm_key(&ctx.region, &name);
        let arn = alarm_arn(ctx, &name);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let existing: Option<Versioned<AlarmRecord>> = records::get(&*self.store, &key).await?;
            let (record, revision, change) = match existing {
                Some(Versioned {
                    value: old,
                    mod_revision,
                }) => {
                    let mut updated = old.clone();
                    updated.definition = request.clone();
                    updated.configuration_updated_ms = ctx.now_ms;
                    // A PutMetricAlarm's tags are only applied when it creates the alarm.
                    (updated, mod_revision, Some(old))
                }
                None => (
                    AlarmRecord {
                        definition: request.clone(),
                        arn: arn.clone(),
                        configuration_updated_ms: ctx.now_ms,
                        state_value: StateValue::InsufficientData.as_str().to_string(),
                        state_reason: alarms::INITIAL_STATE_REASON.to_string(),
                        state_reason_data: None,
                        state_updated_ms: ctx.now_ms,
                        state_transitioned_ms: ctx.now_ms,
                        tags: tags.clone(),
                    },
                    0,
                    None,
                ),
            };
            let described = serde_json::to_string(&history_alarm(&record)).unwrap_or_default();
            let change_text = change
                .as_ref()
                .map(|old| serde_json::to_string(&history_alarm(old)).unwrap_or_default());
            let change = match &change_text {
                Some(original) => alarms::ConfigurationChange::Update {
                    original,
                    updated: &described,
                },
                None => alarms::ConfigurationChange::Create { alarm: &described },
            };
            let (summary, data) = alarms::configuration_update_history(&name, &change)
                .map_err(|err| error::internal(err.to_string()))?;
            let history = HistoryRecord {
                alarm_name: name.clone(),
                timestamp_ms: ctx.now_ms,
                item_type: "ConfigurationUpdate".into(),
                summary,
                data,
            };
            let written = Write::new()
                .expect(&key, revision)
                .put(&key, &record)
                .put(&history_key(&ctx.region, ctx.now_ms), &history)
                .commit(&*self.store)
                .await?;
            if written {
                return Ok(());
            }
        }
        Err(records::too_much_contention("the alarm"))
    }

    /// PutMetricAlarm's rules, before anything is written.
    fn check_alarm(
        &self,
        region: &str,
        request: &wire::PutMetricAlarmInput,
    ) -> Result<(), ApiError> {
        let unsupported = [
            ("ThresholdMetricId", request.threshold_metric_id.is_some()),
            ("EvaluationCriteria", request.evaluation_criteria.is_some()),
            ("EvaluationWindow", request.evaluation_window.is_some()),
            ("EvaluationInterval", request.evaluation_interval.is_some()),
            (
                "WarmUpConfiguration",
                request.warm_up_configuration.is_some(),
            ),
            (
                "ActionConfiguration",
                request.action_configuration.is_some(),
            ),
        ];
        if let Some((name, _)) = unsupported.iter().find(|(_, given)| *given) {
            return Err(error::invalid_value(format!(
                "Berth does not support the parameter {name} (anomaly detection and Metrics Insights alarms)."
            )));
        }
        for (parameter, actions) in [
            ("OKActions", &request.ok_actions),
            ("AlarmActions", &request.alarm_actions),
            (
                "InsufficientDataActions",
                &request.insufficient_data_actions,
            ),
        ] {
            let actions = actions.as_deref().unwrap_or_default();
            if actions.len() > 5 {
                return Err(error::invalid_value(format!(
                    "The collection {parameter} must not have a size greater than 5."
                )));
            }
            for action in actions {
                if !self.actions.iter().any(|target| target.accepts(action)) {
                    return Err(error::invalid_value(format!(
                        "Berth cannot run the alarm action '{action}' in {parameter}: alarm actions are the \
                         Application Auto Scaling policies Berth serves, and no such policy answers this ARN."
                    )));
                }
            }
        }
        let math = request.metrics.as_ref().is_some_and(|m| !m.is_empty());
        let single = request.metric_name.is_some()
            || request.namespace.is_some()
            || request.statistic.is_some()
            || request.extended_statistic.is_some()
            || request.dimensions.is_some()
            || request.period.is_some()
            || request.unit.is_some();
        if math && single {
            return Err(error::invalid_combination(
                "The parameter Metrics cannot be combined with MetricName, Namespace, Statistic, \
                 ExtendedStatistic, Dimensions, Period or Unit.",
            ));
        }
        let period_s = if math {
            let queries = request.metrics.as_deref().unwrap_or_default();
            let plan = plan_queries(queries, region)?;
            let returning = plan.queries.iter().filter(|q| q.return_data).count();
            if returning != 1 {
                return Err(error::validation(
                    "Exactly one element of the metrics list must return data.",
                ));
            }
            // Math alarms have no Period of their own (refused above with Metrics).
            alarm_period_s(request)
        } else {
            if request.metric_name.is_none() {
                return Err(error::missing("MetricName"));
            }
            if request.namespace.is_none() {
                return Err(error::missing("Namespace"));
            }
            match (&request.statistic, &request.extended_statistic) {
                (Some(_), Some(_)) => {
                    return Err(error::invalid_combination(
                        "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.",
                    ))
                }
                (None, None) => return Err(error::missing("Statistic")),
                (None, Some(extended)) => {
                    if Statistic::extended(extended).is_none() {
                        return Err(error::invalid_value_for(extended, "ExtendedStatistic"));
                    }
                }
                (Some(_), None) => {}
            }
            metric_key(
                String::new(),
                String::new(),
                request.dimensions.clone().unwrap_or_default(),
                "Dimensions",
            )?;
            let period_s = request.period.ok_or_else(|| error::missing("Period"))? as u32;
            check_period(period_s, "Period")?;
            period_s
        };
        if request.evaluate_low_sample_count_percentile.is_some()
            && request.extended_statistic.is_none()
        {
            return Err(error::invalid_combination(
                "The parameter EvaluateLowSampleCountPercentile can only be used with a percentile ExtendedStatistic.",
            ));
        }
        rule_of(request, period_s)?
            .validate()
            .map_err(|err| error::validation(err.to_string()))?;
        Ok(())
    }

    pub(crate) async fn describe_alarms(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeAlarmsInput,
    ) -> Result<wire::DescribeAlarmsOutput, ApiError> {
        let names = request.alarm_names.unwrap_or_default();
        if !names.is_empty() && request.alarm_name_prefix.is_some() {
            return Err(error::invalid_combination(
                "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.",
            ));
        }
        let types = request
            .alarm_types
            .unwrap_or_else(|| vec!["MetricAlarm".to_string()]);
        for alarm_type in &types {
            if alarm_type != "MetricAlarm" && alarm_type != "CompositeAlarm" {
                return Err(error::invalid_value_for(alarm_type, "AlarmTypes"));
            }
        }
        let limit = page_size(
            request.max_records,
            DESCRIBE_ALARMS_DEFAULT,
            DESCRIBE_ALARMS_MAX,
        )?;
        // Berth has no composite alarms, so none is anyone's child or parent.
        let relatives_only =
            request.children_of_alarm_name.is_some() || request.parents_of_alarm_name.is_some();
        let metric_alarms_wanted = !relatives_only && types.iter().any(|t| t == "MetricAlarm");
        let all = if metric_alarms_wanted {
            self.alarms(&ctx.region).await?
        } else {
            Vec::new()
        };
        let selected: Vec<&AlarmRecord> = all
            .iter()
            .filter(|alarm| names.is_empty() || names.iter().any(|n| n == alarm.name()))
            .filter(|alarm| {
                request
                    .alarm_name_prefix
                    .as_ref()
                    .is_none_or(|prefix| alarm.name().starts_with(prefix.as_str()))
            })
            .filter(|alarm| {
                request
                    .state_value
                    .as_ref()
                    .is_none_or(|state| *state == alarm.state_value)
            })
            .filter(|alarm| {
                request.action_prefix.as_ref().is_none_or(|prefix| {
                    ["OK", "ALARM", "INSUFFICIENT_DATA"]
                        .iter()
                        .flat_map(|state| alarm.actions_for(state))
                        .any(|action| action.starts_with(prefix.as_str()))
                })
            })
            .collect();
        let (page, next_token) = paginate(&selected, request.next_token.as_deref(), limit, |a| {
            a.name().to_string()
        })?;
        Ok(wire::DescribeAlarmsOutput {
            metric_alarms: Some(page.iter().map(|alarm| describe(alarm)).collect()),
            // Always present, if empty, as CloudWatch answers: botocore's waiters read
            // `length(CompositeAlarms[])` and `length(LogAlarms[])`, which fail on a
            // missing list. (Berth has no composite or log alarms.)
            composite_alarms: Some(Vec::new()),
            log_alarms: Some(Vec::new()),
            next_token,
        })
    }

    pub(crate) async fn describe_alarms_for_metric(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeAlarmsForMetricInput,
    ) -> Result<wire::DescribeAlarmsForMetricOutput, ApiError> {
        let wanted = metric_key(
            request.namespace.clone().unwrap_or_default(),
            request.metric_name.clone().unwrap_or_default(),
            request.dimensions.clone().unwrap_or_default(),
            "Dimensions",
        )?;
        let all = self.alarms(&ctx.region).await?;
        let alarms = all
            .iter()
            .filter(|alarm| {
                let d = &alarm.definition;
                let key = metric_key(
                    d.namespace.clone().unwrap_or_default(),
                    d.metric_name.clone().unwrap_or_default(),
                    d.dimensions.clone().unwrap_or_default(),
                    "Dimensions",
                );
                key.is_ok_and(|key| {
                    key.namespace == wanted.namespace
                        && key.metric_name == wanted.metric_name
                        && (request.dimensions.is_none() || key.dimensions == wanted.dimensions)
                }) && request
                    .statistic
                    .as_ref()
                    .is_none_or(|s| d.statistic.as_ref() == Some(s))
                    && request
                        .extended_statistic
                        .as_ref()
                        .is_none_or(|s| d.extended_statistic.as_ref() == Some(s))
                    && request.period.is_none_or(|p| d.period == Some(p))
                    && request
                        .unit
                        .as_ref()
                        .is_none_or(|u| d.unit.as_ref() == Some(u))
            })
            .map(describe)
            .collect();
        Ok(wire::DescribeAlarmsForMetricOutput {
            metric_alarms: Some(alarms),
        })
    }

    pub(crate) async fn delete_alarms(
        &self,
        ctx: &RequestContext,
        request: wire::DeleteAlarmsInput,
    ) -> Result<(), ApiError> {
        let names = request.alarm_names.unwrap_or_default();
        if names.len() > 100 {
            return Err(error::invalid_value(
                "The collection AlarmNames must not have a size greater than 100.",
            ));
        }
        for _ in 0..MAX_CAS_ATTEMPTS {
            let mut txn = Txn::new();
            let mut missing = Vec::new();
            for name in &names {
                let key = alarm_key(&ctx.region, name);
                match records::get::<AlarmRecord>(&*self.store, &key).await? {
                    Some(found) => {
                        let described =
                            serde_json::to_string(&history_alarm(&found.value)).unwrap_or_default();
                        let (summary, data) = alarms::configuration_update_history(
                            name,
                            &alarms::ConfigurationChange::Delete { alarm: &described },
                        )
                        .map_err(|err| error::internal(err.to_string()))?;
                        let history = HistoryRecord {
                            alarm_name: name.clone(),
                            timestamp_ms: ctx.now_ms,
                            item_type: "ConfigurationUpdate".into(),
                            summary,
                            data,
                        };
                        txn = txn
                            .when(store::Compare::mod_revision_is(&key, found.mod_revision))
                            .then(Op::delete(&key))
                            .then(Op::put(
                                history_key(&ctx.region, ctx.now_ms),
                                records::encode(&history),
                            ));
                    }
                    None => missing.push(name.clone()),
                }
            }
            if !missing.is_empty() {
                return Err(error::not_found(format!(
                    "{} of the alarms in the request do not exist: {}",
                    missing.len(),
                    missing.join(", ")
                )));
            }
            if self.store.txn(txn).await?.succeeded {
                return Ok(());
            }
        }
        Err(records::too_much_contention("the alarms"))
    }

    pub(crate) async fn set_alarm_state(
        &self,
        ctx: &RequestContext,
        request: wire::SetAlarmStateInput,
    ) -> Result<(), ApiError> {
        let name = request.alarm_name.unwrap_or_default();
        let state = StateValue::from_str(request.state_value.as_deref().unwrap_or_default())
            .map_err(|_| {
                error::invalid_value_for(request.state_value.unwrap_or_default(), "StateValue")
            })?;
        let reason = request.state_reason.unwrap_or_default();
        let reason_data = match request.state_reason_data {
            Some(data) => Some(
                alarms::check_state_reason_data(&data)
                    .map_err(|err| invalid_format(err.to_string()))?
                    .to_string(),
            ),
            None => None,
        };
        let key = alarm_key(&ctx.region, &name);
        let Some(found) = records::get::<AlarmRecord>(&*self.store, &key).await? else {
            return Err(error::not_found(format!("Alarm {name} not found")));
        };
        self.move_alarm(&ctx.region, found, state, reason, reason_data, ctx.now_ms)
            .await
            .map(|_| ())
    }

    pub(crate) async fn describe_alarm_history(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeAlarmHistoryInput,
    ) -> Result<wire::DescribeAlarmHistoryOutput, ApiError> {
        let limit = page_size(request.max_records, HISTORY_DEFAULT, HISTORY_DEFAULT)?;
        if let Some(types) = &request.alarm_types {
            for alarm_type in types {
                if alarm_type != "MetricAlarm" && alarm_type != "CompositeAlarm" {
                    return Err(error::invalid_value_for(alarm_type, "AlarmTypes"));
                }
            }
        }
        let metric_alarms_wanted = request
            .alarm_types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t == "MetricAlarm"));
        let ascending = match request.scan_by.as_deref() {
            None | Some("TimestampDescending") => false,
            Some("TimestampAscending") => true,
            Some(other) => return Err(error::invalid_value_for(other, "ScanBy")),
        };
        let start_ms = request.start_date.unwrap_or(i64::MIN);
        let end_ms = request.end_date.unwrap_or(i64::MAX);
        let response = self
            .store
            .range(RangeRequest::prefix(history_prefix(&ctx.region)))
            .await?;
        let mut items: Vec<(String, HistoryRecord)> = Vec::new();
        for kv in response.kvs {
            let item: HistoryRecord = records::decode(&kv.key, &kv.value)?;
            let wanted = metric_alarms_wanted
                && request
                    .alarm_name
                    .as_ref()
                    .is_none_or(|n| *n == item.alarm_name)
                && request
                    .history_item_type
                    .as_ref()
                    .is_none_or(|t| *t == item.item_type)
                && item.timestamp_ms >= start_ms
                && item.timestamp_ms <= end_ms;
            if wanted {
                items.push((kv.key, item));
            }
        }
        if !ascending {
            items.reverse();
        }
        let refs: Vec<&(String, HistoryRecord)> = items.iter().collect();
        let (page, next_token) =
            paginate(&refs, request.next_token.as_deref(), limit, |(key, _)| {
                key.clone()
            })?;
        Ok(wire::DescribeAlarmHistoryOutput {
            alarm_history_items: Some(
                page.iter()
                    .map(|(_, item)| wire::AlarmHistoryItem {
                        alarm_name: Some(item.alarm_name.clone()),
                        alarm_type: Some("MetricAlarm".into()),
                        timestamp: Some(item.timestamp_ms),
                        history_item_type: Some(item.item_type.clone()),
                        history_summary: Some(item.summary.clone()),
                        history_data: Some(item.data.clone()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            next_token,
        })
    }

    pub(crate) async fn set_actions_enabled(
        &self,
        ctx: &RequestContext,
        names: Option<Vec<String>>,
        enabled: bool,
    ) -> Result<(), ApiError> {
        let names = names.unwrap_or_default();
        if names.len() > 100 {
            return Err(error::invalid_value(
                "The collection AlarmNames must not have a size greater than 100.",
            ));
        }
        for name in names {
            let key = alarm_key(&ctx.region, &name);
            self.update_alarm(&key, |alarm| {
                alarm.definition.actions_enabled = Some(enabled);
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    pub(crate) async fn tag_resource(
        &self,
        ctx: &RequestContext,
        request: wire::TagResourceInput,
    ) -> Result<wire::TagResourceOutput, ApiError> {
        let key = self.alarm_key_of_arn(ctx, request.resource_arn.as_deref())?;
        let tags = check_tags(request.tags.unwrap_or_default())?;
        let found = self
            .update_alarm(&key, |alarm| {
                alarm.tags.extend(tags.clone());
                if alarm.tags.len() > MAX_TAGS {
                    return Err(error::limit_exceeded(format!(
                        "An alarm can have at most {MAX_TAGS} tags."
                    )));
                }
                Ok(())
            })
            .await?;
        if !found {
            return Err(alarm_arn_not_found(request.resource_arn.as_deref()));
        }
        Ok(wire::TagResourceOutput {})
    }

    pub(crate) async fn untag_resource(
        &self,
        ctx: &RequestContext,
        request: wire::UntagResourceInput,
    ) -> Result<wire::UntagResourceOutput, ApiError> {
        let key = self.alarm_key_of_arn(ctx, request.resource_arn.as_deref())?;
        let keys = request.tag_keys.unwrap_or_default();
        let found = self
            .update_alarm(&key, |alarm| {
                for tag_key in &keys {
                    alarm.tags.remove(tag_key);
                }
                Ok(())
            })
            .await?;
        if !found {
            return Err(alarm_arn_not_found(request.resource_arn.as_deref()));
        }
        Ok(wire::UntagResourceOutput {})
    }

    pub(crate) async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        request: wire::ListTagsForResourceInput,
    ) -> Result<wire::ListTagsForResourceOutput, ApiError> {
        let key = self.alarm_key_of_arn(ctx, request.resource_arn.as_deref())?;
        let Some(found) = records::get::<AlarmRecord>(&*self.store, &key).await? else {
            return Err(alarm_arn_not_found(request.resource_arn.as_deref()));
        };
        Ok(wire::ListTagsForResourceOutput {
            tags: Some(
                found
                    .value
                    .tags
                    .iter()
                    .map(|(key, value)| wire::Tag {
                        key: Some(key.clone()),
                        value: Some(value.clone()),
                    })
                    .collect(),
            ),
        })
    }

    fn alarm_key_of_arn(
        &self,
        ctx: &RequestContext,
        arn: Option<&str>,
    ) -> Result<String, ApiError> {
        let arn = arn.unwrap_or_default();
        let prefix = format!(
            "arn:aws:cloudwatch:{}:{}:alarm:",
            ctx.region, ctx.account_id
        );
        match arn.strip_prefix(&prefix) {
            Some(name) if !name.is_empty() => Ok(alarm_key(&ctx.region, name)),
            _ => Err(error::invalid_value_for(arn, "ResourceARN")),
        }
    }

    /// Every alarm of `region`, in name order.
    pub(crate) async fn alarms(&self, region: &str) -> Result<Vec<AlarmRecord>, ApiError> {
        Ok(
            records::list::<AlarmRecord>(&*self.store, &alarms_prefix(region))
                .await?
                .into_iter()
                .map(|(_, alarm)| alarm)
                .collect(),
        )
    }

    /// Read-modify-write of one alarm; `Ok(false)` when it does not exist.
    async fn update_alarm(
        &self,
        key: &str,
        change: impl Fn(&mut AlarmRecord) -> Result<(), ApiError>,
    ) -> Result<bool, ApiError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(found) = records::get::<AlarmRecord>(&*self.store, key).await? else {
                return Ok(false);
            };
            let mut alarm = found.value.clone();
            change(&mut alarm)?;
            if alarm == found.value {
                return Ok(true);
            }
            if Write::new()
                .expect(key, found.mod_revision)
                .put(key, &alarm)
                .commit(&*self.store)
                .await?
            {
                return Ok(true);
            }
        }
        Err(records::too_much_contention("the alarm"))
    }

    /// Moves an alarm to `state` (SetAlarmState, the evaluator): the record and a
    /// StateUpdate history item in one compare-and-swap on the record that was read, then
    /// the new state's actions. `Ok(None)` when the alarm changed meanwhile (the caller
    /// evaluates again) or is already in `state` with the same reason.
    pub(crate) async fn move_alarm(
        &self,
        region: &str,
        found: Versioned<AlarmRecord>,
        state: StateValue,
        reason: String,
        reason_data: Option<String>,
        now_ms: i64,
    ) -> Result<Option<AlarmRecord>, ApiError> {
        let old = &found.value;
        let old_state =
            StateValue::from_str(&old.state_value).unwrap_or(StateValue::InsufficientData);
        let transition = old_state != state;
        let mut updated = old.clone();
        updated.state_value = state.as_str().to_string();
        updated.state_reason = reason.clone();
        updated.state_reason_data = reason_data.clone();
        updated.state_updated_ms = now_ms;
        if transition {
            updated.state_transitioned_ms = now_ms;
        }
        let (summary, data) = alarms::state_update_history(
            &alarms::StateSnapshot {
                value: old_state,
                reason: &old.state_reason,
                reason_data: old.state_reason_data.as_deref(),
            },
            &alarms::StateSnapshot {
                value: state,
                reason: &reason,
                reason_data: reason_data.as_deref(),
            },
        )
        .map_err(|err| invalid_format(err.to_string()))?;
        let key = alarm_key(region, old.name());
        let history = HistoryRecord {
            alarm_name: old.name().to_string(),
            timestamp_ms: now_ms,
            item_type: "StateUpdate".into(),
            summary,
            data,
        };
        let written = Write::new()
            .expect(&key, found.mod_revision)
            .put(&key, &updated)
            .put(&history_key(region, now_ms), &history)
            .commit(&*self.store)
            .await?;
        if !written {
            return Ok(None);
        }
        if transition && updated.actions_enabled() {
            self.run_actions(region, &updated, now_ms).await?;
        }
        Ok(Some(updated))
    }

    /// Runs the actions of the alarm's new state and records each as an Action item.
    async fn run_actions(
        &self,
        region: &str,
        alarm: &AlarmRecord,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        for action in alarm.actions_for(&alarm.state_value) {
            let Some(target) = self.actions.iter().find(|target| target.accepts(action)) else {
                continue;
            };
            let outcome = target
                .execute(action, region, alarm.name(), &alarm.state_value, now_ms)
                .await;
            let (summary, data) = match &outcome {
                Ok(()) => (
                    format!("Successfully executed action {action}"),
                    serde_json::json!({"actionState": "Succeeded", "stateUpdateTimestamp": now_ms}),
                ),
                Err(message) => (
                    format!("Failed to execute action {action}. Received error: \"{message}\""),
                    serde_json::json!({"actionState": "Failed", "error": message,
                        "stateUpdateTimestamp": now_ms}),
                ),
            };
            let history = HistoryRecord {
                alarm_name: alarm.name().to_string(),
                timestamp_ms: now_ms,
                item_type: "Action".into(),
                summary,
                data: data.to_string(),
            };
            self.store
                .txn(Txn::new().then(Op::put(
                    history_key(region, now_ms),
                    records::encode(&history),
                )))
                .await?;
        }
        Ok(())
    }
}

/// The evaluation rule of an alarm definition (`period_s` already worked out).
pub(crate) fn rule_of(
    definition: &wire::PutMetricAlarmInput,
    period_s: u32,
) -> Result<alarms::AlarmRule, ApiError> {
    let comparison = definition
        .comparison_operator
        .as_deref()
        .unwrap_or_default();
    let comparison = ComparisonOperator::from_str(comparison)
        .map_err(|_| error::missing("ComparisonOperator"))?;
    let treat_missing_data = match definition.treat_missing_data.as_deref() {
        None => TreatMissingData::Missing,
        Some(text) => TreatMissingData::from_str(text)
            .map_err(|_| error::invalid_value_for(text, "TreatMissingData"))?,
    };
    let low_sample = match definition.evaluate_low_sample_count_percentile.as_deref() {
        None => None,
        Some(text) => Some(
            LowSampleCount::from_str(text)
                .map_err(|_| error::invalid_value_for(text, "EvaluateLowSampleCountPercentile"))?,
        ),
    };
    Ok(alarms::AlarmRule {
        period_s,
        evaluation_periods: definition
            .evaluation_periods
            .ok_or_else(|| error::missing("EvaluationPeriods"))? as u32,
        datapoints_to_alarm: definition.datapoints_to_alarm.map(|d| d as u32),
        threshold: definition
            .threshold
            .ok_or_else(|| error::missing("Threshold"))?,
        comparison,
        treat_missing_data,
        statistic_label: definition
            .statistic
            .clone()
            .or_else(|| definition.extended_statistic.clone())
            .unwrap_or_default(),
        unit: definition.unit.clone(),
        evaluate_low_sample_count_percentile: low_sample,
    })
}

/// The period an alarm evaluates: its own, or its returning metric-math query's.
pub(crate) fn alarm_period_s(definition: &wire::PutMetricAlarmInput) -> u32 {
    if let Some(period) = definition.period {
        return period as u32;
    }
    definition
        .metrics
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|q| q.return_data.unwrap_or(true))
        .and_then(|q| q.metric_stat.as_ref().and_then(|s| s.period).or(q.period))
        .or_else(|| {
            definition
                .metrics
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find_map(|q| q.metric_stat.as_ref().and_then(|s| s.period))
        })
        .map(|p| p as u32)
        .unwrap_or(60)
}

fn describe(alarm: &AlarmRecord) -> wire::MetricAlarm {
    let d = &alarm.definition;
    wire::MetricAlarm {
        alarm_name: d.alarm_name.clone(),
        alarm_arn: Some(alarm.arn.clone()),
        alarm_description: d.alarm_description.clone(),
        alarm_configuration_updated_timestamp: Some(alarm.configuration_updated_ms),
        actions_enabled: Some(alarm.actions_enabled()),
        ok_actions: Some(d.ok_actions.clone().unwrap_or_default()),
        alarm_actions: Some(d.alarm_actions.clone().unwrap_or_default()),
        insufficient_data_actions: Some(d.insufficient_data_actions.clone().unwrap_or_default()),
        state_value: Some(alarm.state_value.clone()),
        state_reason: Some(alarm.state_reason.clone()),
        state_reason_data: alarm.state_reason_data.clone(),
        state_updated_timestamp: Some(alarm.state_updated_ms),
        metric_name: d.metric_name.clone(),
        namespace: d.namespace.clone(),
        statistic: d.statistic.clone(),
        extended_statistic: d.extended_statistic.clone(),
        dimensions: Some(d.dimensions.clone().unwrap_or_default()),
        period: d.period,
        unit: d.unit.clone(),
        evaluation_periods: d.evaluation_periods,
        datapoints_to_alarm: d.datapoints_to_alarm,
        threshold: d.threshold,
        comparison_operator: d.comparison_operator.clone(),
        treat_missing_data: d.treat_missing_data.clone(),
        evaluate_low_sample_count_percentile: d.evaluate_low_sample_count_percentile.clone(),
        metrics: d.metrics.clone(),
        state_transitioned_timestamp: Some(alarm.state_transitioned_ms),
        ..Default::default()
    }
}

/// The alarm as ConfigurationUpdate history items describe it (AWS's lowerCamel JSON).
fn history_alarm(alarm: &AlarmRecord) -> serde_json::Value {
    let d = &alarm.definition;
    let mut value = serde_json::json!({
        "alarmName": d.alarm_name,
        "alarmArn": alarm.arn,
        "actionsEnabled": alarm.actions_enabled(),
        "okActions": d.ok_actions.clone().unwrap_or_default(),
        "alarmActions": d.alarm_actions.clone().unwrap_or_default(),
        "insufficientDataActions": d.insufficient_data_actions.clone().unwrap_or_default(),
        "evaluationPeriods": d.evaluation_periods,
        "comparisonOperator": d.comparison_operator,
        "threshold": d.threshold,
        "treatMissingData": d.treat_missing_data.clone().unwrap_or_else(|| "missing".into()),
        "timeout": 0,
    });
    let object = value.as_object_mut().expect("an object");
    let mut optional = |name: &str, member: Option<serde_json::Value>| {
        if let Some(member) = member {
            object.insert(name.to_string(), member);
        }
    };
    optional(
        "alarmDescription",
        d.alarm_description.clone().map(Into::into),
    );
    optional("namespace", d.namespace.clone().map(Into::into));
    optional("metricName", d.metric_name.clone().map(Into::into));
    optional(
        "statistic",
        d.statistic.clone().map(|s| s.to_uppercase().into()),
    );
    optional(
        "extendedStatistic",
        d.extended_statistic.clone().map(Into::into),
    );
    optional("period", d.period.map(Into::into));
    optional("unit", d.unit.clone().map(Into::into));
    optional("datapointsToAlarm", d.datapoints_to_alarm.map(Into::into));
    optional(
        "dimensions",
        d.dimensions.as_ref().map(|dims| {
            dims.iter()
                .map(|dim| serde_json::json!({"name": dim.name, "value": dim.value}))
                .collect::<Vec<_>>()
                .into()
        }),
    );
    value
}

fn alarm_arn(ctx: &RequestContext, name: &str) -> String {
    format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{name}",
        ctx.region, ctx.account_id
    )
}

fn alarm_arn_not_found(arn: Option<&str>) -> ApiError {
    error::resource_not_found_exception(format!(
        "The specified resource {} does not exist.",
        arn.unwrap_or_default()
    ))
}

fn invalid_format(message: String) -> ApiError {
    let mut error =
        ApiError::client("InvalidFormatFault", message).with_query_code("InvalidFormat");
    error.http_status = 400;
    error
}

fn check_tags(tags: Vec<wire::Tag>) -> Result<BTreeMap<String, String>, ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(error::invalid_value(format!(
            "The collection Tags must not have a size greater than {MAX_TAGS}."
        )));
    }
    let mut out = BTreeMap::new();
    for tag in tags {
        let key = tag.key.unwrap_or_default();
        if key.starts_with("aws:") {
            return Err(error::invalid_value(
                "Tag keys beginning with 'aws:' are reserved for AWS use.",
            ));
        }
        out.insert(key, tag.value.unwrap_or_default());
    }
    Ok(out)
}

fn page_size(requested: Option<i32>, default: usize, max: usize) -> Result<usize, ApiError> {
    match requested {
        None => Ok(default),
        Some(value) if value >= 1 && value as usize <= max => Ok(value as usize),
        Some(value) => Err(error::invalid_value_for(value, "MaxRecords")),
    }
}

/// A page after the item whose key the token names (base64 of the key).
fn paginate<'a, T>(
    items: &'a [T],
    token: Option<&str>,
    limit: usize,
    key_of: impl Fn(&T) -> String,
) -> Result<(&'a [T], Option<String>), ApiError> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let start = match token {
        None => 0,
        Some(token) => {
            let after = engine
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(error::invalid_next_token)?;
            items
                .iter()
                .position(|item| key_of(item) == after)
                .map(|index| index + 1)
                .ok_or_else(error::invalid_next_token)?
        }
    };
    let end = (start + limit).min(items.len());
    let page = &items[start..end];
    let next = (end < items.len()).then(|| engine.encode(key_of(&items[end - 1])));
    Ok((page, next))
}
