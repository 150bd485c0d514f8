//! The alarm evaluator: `berth` calls [`AlarmEvaluator::pass`] a few times a second. Each
//! alarm whose evaluation range moved on since it was last evaluated reads its datapoints
//! (its metric's statistic per period, or its metric-math expression) and is judged by the
//! pure `alarms::evaluate`; a new state is written with its history item in one
//! compare-and-swap, then its actions run. Level-triggered: the only memory is which range
//! each alarm was last evaluated for, so a restart evaluates every alarm once more, which
//! changes nothing unless the state should change.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;

use alarms::{Datapoint, StateValue, Window};
use api::records::{self, Versioned};
use api::ApiError;
use store::{RangeRequest, Store};

use crate::alarm_api::{alarm_period_s, rule_of, HISTORY_RETENTION_MS};
use crate::metrics::{metric_key, plan_queries, read_periods, scoped};
use crate::records::{alarms_prefix, history_prefix, AlarmRecord, HistoryRecord, ROOT_PREFIX};
use crate::statistics::Statistic;
use crate::CloudWatch;

pub struct AlarmEvaluator {
    cloudwatch: CloudWatch,
    /// (region, alarm name) → the end of the range it was last evaluated for, and the
    /// configuration it was evaluated with (PutMetricAlarm's `configuration_updated_ms`:
    /// an update evaluates again). A SetAlarmState is not a configuration change: as in
    /// CloudWatch, the state it sets lasts until the next evaluation is due.
    evaluated: Mutex<HashMap<(String, String), (i64, i64)>>,
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub evaluated: usize,
    pub state_changes: usize,
}

impl AlarmEvaluator {
    pub fn new(cloudwatch: CloudWatch) -> Self {
        AlarmEvaluator {
            cloudwatch,
            evaluated: Mutex::new(HashMap::new()),
        }
    }

    /// Evaluates every alarm that is due at `now_ms`.
    pub async fn pass(&self, now_ms: i64) -> Result<PassReport, ApiError> {
        let store = &*self.cloudwatch.store;
        let mut report = PassReport::default();
        let mut seen = Vec::new();
        for region in regions_under(store, ROOT_PREFIX).await? {
            let alarms: Vec<Versioned<AlarmRecord>> =
                records::list_versioned(store, &alarms_prefix(&region)).await?;
            for found in alarms {
                let name = found.value.name().to_string();
                seen.push((region.clone(), name.clone()));
                match self.evaluate(&region, found, now_ms).await {
                    Ok(Some(changed)) => {
                        report.evaluated += 1;
                        report.state_changes += usize::from(changed);
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(region, alarm = name, %err, "alarm evaluation failed")
                    }
                }
            }
        }
        let mut evaluated = self.evaluated.lock().expect("evaluated");
        evaluated.retain(|key, _| seen.contains(key));
        Ok(report)
    }

    /// `Some(changed)` when the alarm was due and evaluated.
    async fn evaluate(
        &self,
        region: &str,
        found: Versioned<AlarmRecord>,
        now_ms: i64,
    ) -> Result<Option<bool>, ApiError> {
        let alarm = &found.value;
        let definition = &alarm.definition;
        let period_s = alarm_period_s(definition);
        let rule = rule_of(definition, period_s)?;
        let (start_ms, end_ms) = alarms::evaluation_range(&rule, now_ms);
        let memo_key = (region.to_string(), alarm.name().to_string());
        let configuration_ms = alarm.configuration_updated_ms;
        if let Some((last_end, last_configuration_ms)) =
            self.evaluated.lock().expect("evaluated").get(&memo_key)
        {
            if *last_end >= end_ms && *last_configuration_ms == configuration_ms {
                return Ok(None);
            }
        }
        let datapoints = self
            .cloudwatch
            .alarm_datapoints(region, alarm, period_s, start_ms, end_ms, now_ms)
            .await?;
        let current =
            StateValue::from_str(&alarm.state_value).unwrap_or(StateValue::InsufficientData);
        let evaluation = alarms::evaluate(
            &rule,
            current,
            &Window {
                datapoints: &datapoints,
                range_start_ms: start_ms,
                range_end_ms: end_ms,
            },
            now_ms,
        );
        let mut changed = false;
        if evaluation.state != current && !evaluation.reason.is_empty() {
            let moved = self
                .cloudwatch
                .move_alarm(
                    region,
                    found,
                    evaluation.state,
                    evaluation.reason,
                    Some(evaluation.reason_data),
                    now_ms,
                )
                .await?;
            match moved {
                // Lost a race with an update: evaluate again on the next pass.
                None => return Ok(Some(false)),
                Some(_) => changed = true,
            }
            self.evaluated
                .lock()
                .expect("evaluated")
                .insert(memo_key, (end_ms, configuration_ms));
            return Ok(Some(changed));
        }
        self.evaluated
            .lock()
            .expect("evaluated")
            .insert(memo_key, (end_ms, configuration_ms));
        Ok(Some(changed))
    }

    /// Deletes history items older than CloudWatch keeps them (30 days).
    pub async fn expire_history(&self, now_ms: i64) -> Result<usize, ApiError> {
        let store = &*self.cloudwatch.store;
        let mut deleted = 0;
        for region in regions_under(store, ROOT_PREFIX).await? {
            let prefix = history_prefix(&region);
            let cutoff = format!("{prefix}{:020}", (now_ms - HISTORY_RETENTION_MS).max(0));
            let old = store
                .range(RangeRequest {
                    key: prefix.clone(),
                    range_end: cutoff,
                    limit: 1000,
                })
                .await?;
            let mut txn = store::Txn::new();
            for kv in &old.kvs {
                let _: HistoryRecord = records::decode(&kv.key, &kv.value)?;
                txn = txn.then(store::Op::delete(&kv.key));
                deleted += 1;
            }
            if !old.kvs.is_empty() {
                store.txn(txn).await?;
            }
        }
        Ok(deleted)
    }
}

/// The regions with records under `root` (`/cloudwatch/`, `/ecs/`): a skip scan reading
/// one key per region.
pub async fn regions_under(store: &dyn Store, root: &str) -> Result<Vec<String>, ApiError> {
    let mut regions = Vec::new();
    let mut from = root.to_string();
    let end = store::prefix_end(root);
    loop {
        let found = store
            .range(RangeRequest {
                key: from,
                range_end: end.clone(),
                limit: 1,
            })
            .await?;
        let Some(kv) = found.kvs.first() else {
            break;
        };
        let Some(region) = kv.key[root.len()..].split('/').next() else {
            break;
        };
        regions.push(region.to_string());
        // The first key after every `<root><region>/…`.
        from = format!("{root}{region}0");
    }
    Ok(regions)
}

impl CloudWatch {
    /// The datapoints alarm `alarm` is judged on over `[start_ms, end_ms)`: its metric's
    /// statistic per period, or its metric-math expression's values.
    pub(crate) async fn alarm_datapoints(
        &self,
        region: &str,
        alarm: &AlarmRecord,
        period_s: u32,
        start_ms: i64,
        end_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Datapoint>, ApiError> {
        let definition = &alarm.definition;
        if let Some(queries) = definition.metrics.as_ref().filter(|q| !q.is_empty()) {
            let plan = plan_queries(queries, region)?;
            let results = self.run_queries(&plan, start_ms, end_ms, now_ms).await?;
            return Ok(results
                .into_iter()
                .next()
                .map(|result| {
                    result
                        .points
                        .into_iter()
                        .map(|(timestamp_ms, value)| Datapoint {
                            timestamp_ms,
                            value,
                            sample_count: None,
                        })
                        .collect()
                })
                .unwrap_or_default());
        }
        let key = metric_key(
            scoped(region, definition.namespace.as_deref().unwrap_or_default()),
            definition.metric_name.clone().unwrap_or_default(),
            definition.dimensions.clone().unwrap_or_default(),
            "Dimensions",
        )?;
        let statistic = definition
            .statistic
            .as_deref()
            .or(definition.extended_statistic.as_deref())
            .and_then(Statistic::any)
            .unwrap_or(Statistic::Average);
        let unit = definition.unit.clone();
        let aggregates = self
            .with_metrics(move |metrics| {
                read_periods(
                    metrics,
                    &key,
                    unit.as_deref(),
                    start_ms,
                    end_ms,
                    period_s,
                    now_ms,
                )
            })
            .await?;
        Ok(aggregates
            .iter()
            .filter_map(|aggregate| {
                statistic.of(aggregate).map(|value| Datapoint {
                    timestamp_ms: aggregate.start_ms,
                    value,
                    sample_count: Some(aggregate.stats.sample_count),
                })
            })
            .collect())
    }
}
