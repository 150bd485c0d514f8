//! PutMetricData, GetMetricStatistics, GetMetricData and ListMetrics.

use std::collections::{BTreeMap, HashSet};

use api::{ApiError, RequestContext};
use cloudwatch_wire as wire;
use metric_store::{
    Aggregate, ListFilter, MetricKey, MetricStore, MetricStoreError, Sample, StatisticSet,
};

use crate::error;
use crate::statistics::{fold_periods, merge_units, Statistic};
use crate::CloudWatch;

/// PutMetricData's limits (CloudWatch User Guide, "CloudWatch service quotas").
pub(crate) const MAX_METRIC_DATA: usize = 1000;
pub(crate) const MAX_VALUES_PER_DATUM: usize = 150;
pub(crate) const MAX_DIMENSIONS: usize = 30;
/// Datapoints may be two weeks old and two hours in the future.
const MAX_AGE_MS: i64 = 14 * 24 * 3_600_000;
const MAX_FUTURE_MS: i64 = 2 * 3_600_000;
/// CloudWatch refuses values beyond ±2^360.
const MAX_MAGNITUDE: f64 = 2.348_542_582_773_833e108;
/// GetMetricStatistics returns at most this many datapoints.
const MAX_STATISTICS_DATAPOINTS: i64 = 1440;
/// GetMetricData: at most 500 queries; 100,800 datapoints per call by default.
const MAX_QUERIES: usize = 500;
const DEFAULT_MAX_DATAPOINTS: usize = 100_800;
/// ListMetrics pages hold 500 metrics.
const LIST_METRICS_PAGE: usize = 500;
/// ListMetrics' `RecentlyActive=PT3H`.
const RECENTLY_ACTIVE_MS: i64 = 3 * 3_600_000;

/// The metric store is not regional; CloudWatch keeps each region's metrics under
/// namespaces prefixed with the region (`us-east-1/AWS/ECS`), so regions never mix.
pub(crate) fn scoped(region: &str, namespace: &str) -> String {
    format!("{region}/{namespace}")
}

/// The namespace a user sees (without the region).
pub(crate) fn unscoped(namespace: &str) -> &str {
    namespace
        .split_once('/')
        .map_or(namespace, |(_, rest)| rest)
}

impl CloudWatch {
    pub(crate) async fn put_metric_data(
        &self,
        ctx: &RequestContext,
        request: wire::PutMetricDataInput,
    ) -> Result<(), ApiError> {
        let namespace = request.namespace.unwrap_or_default();
        if namespace.starts_with("AWS/") {
            return Err(error::invalid_value_for("AWS/", "Namespace"));
        }
        if request
            .entity_metric_data
            .as_ref()
            .is_some_and(|data| !data.is_empty())
        {
            return Err(error::invalid_value(
                "Berth does not support EntityMetricData; publish with MetricData.",
            ));
        }
        let data = request.metric_data.unwrap_or_default();
        if data.is_empty() {
            return Err(error::missing("MetricData"));
        }
        if data.len() > MAX_METRIC_DATA {
            return Err(error::invalid_value(format!(
                "The collection MetricData must not have a size greater than {MAX_METRIC_DATA}."
            )));
        }
        let samples = data
            .iter()
            .enumerate()
            .map(|(index, datum)| {
                sample_of(
                    &scoped(&ctx.region, &namespace),
                    &format!("MetricData.member.{}", index + 1),
                    datum,
                    ctx.now_ms,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.with_metrics(move |metrics| metrics.append(&samples))
            .await
    }

    pub(crate) async fn get_metric_statistics(
        &self,
        ctx: &RequestContext,
        request: wire::GetMetricStatisticsInput,
    ) -> Result<wire::GetMetricStatisticsOutput, ApiError> {
        let statistics = request.statistics.unwrap_or_default();
        let extended = request.extended_statistics.unwrap_or_default();
        if statistics.is_empty() && extended.is_empty() {
            return Err(error::invalid_combination(
                "Must specify either Statistics or ExtendedStatistics.",
            ));
        }
        if !statistics.is_empty() && !extended.is_empty() {
            return Err(error::invalid_combination(
                "The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified both.",
            ));
        }
        if statistics.len() > 5 {
            return Err(error::invalid_value(
                "The collection Statistics must not have a size greater than 5.",
            ));
        }
        if extended.len() > 10 {
            return Err(error::invalid_value(
                "The collection ExtendedStatistics must not have a size greater than 10.",
            ));
        }
        let mut wanted = Vec::new();
        for name in &statistics {
            wanted.push((
                name.clone(),
                false,
                Statistic::standard(name)
                    .ok_or_else(|| error::invalid_value_for(name, "Statistics"))?,
            ));
        }
        for name in &extended {
            wanted.push((
                name.clone(),
                true,
                Statistic::extended(name)
                    .ok_or_else(|| error::invalid_value_for(name, "ExtendedStatistics"))?,
            ));
        }
        // The decoder checked Period >= 1.
        let period_s = request.period.unwrap_or(60).max(1) as u32;
        check_period(period_s, "Period")?;
        let (start_ms, end_ms) = check_times(request.start_time, request.end_time)?;
        let start_ms = round_start(start_ms, period_s, ctx.now_ms);
        let requested =
            (end_ms - start_ms + i64::from(period_s) * 1000 - 1) / (i64::from(period_s) * 1000);
        if requested > MAX_STATISTICS_DATAPOINTS {
            return Err(error::invalid_combination(format!(
                "You have requested up to {} datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
                thousands(requested)
            )));
        }
        let key = metric_key(
            scoped(&ctx.region, &request.namespace.unwrap_or_default()),
            request.metric_name.unwrap_or_default(),
            request.dimensions.unwrap_or_default(),
            "Dimensions",
        )?;
        let label = key.metric_name.clone();
        let unit = request.unit;
        let now_ms = ctx.now_ms;
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
        let datapoints = aggregates
            .iter()
            .map(|aggregate| {
                let mut datapoint = wire::Datapoint {
                    timestamp: Some(aggregate.start_ms),
                    unit: Some(aggregate.unit.clone()),
                    ..Default::default()
                };
                let mut extended_values = BTreeMap::new();
                for (name, is_extended, statistic) in &wanted {
                    let Some(value) = statistic.of(aggregate) else {
                        continue;
                    };
                    if *is_extended {
                        extended_values.insert(name.clone(), value);
                        continue;
                    }
                    match statistic {
                        Statistic::SampleCount => datapoint.sample_count = Some(value),
                        Statistic::Average => datapoint.average = Some(value),
                        Statistic::Sum => datapoint.sum = Some(value),
                        Statistic::Minimum => datapoint.minimum = Some(value),
                        Statistic::Maximum => datapoint.maximum = Some(value),
                        Statistic::Percentile(_) => {}
                    }
                }
                if !extended_values.is_empty() {
                    datapoint.extended_statistics = Some(extended_values);
                }
                datapoint
            })
            .collect();
        Ok(wire::GetMetricStatisticsOutput {
            label: Some(label),
            datapoints: Some(datapoints),
        })
    }

    pub(crate) async fn list_metrics(
        &self,
        ctx: &RequestContext,
        request: wire::ListMetricsInput,
    ) -> Result<wire::ListMetricsOutput, ApiError> {
        if request.include_linked_accounts == Some(true) {
            return Err(error::invalid_value(
                "Berth has no linked accounts: IncludeLinkedAccounts must be false.",
            ));
        }
        if let Some(owner) = &request.owning_account {
            if *owner != ctx.account_id {
                return Err(error::invalid_value_for(owner, "OwningAccount"));
            }
        }
        let dimensions = request.dimensions.unwrap_or_default();
        if dimensions.len() > 10 {
            return Err(error::invalid_value(
                "The collection Dimensions must not have a size greater than 10.",
            ));
        }
        let active_since_ms = match request.recently_active.as_deref() {
            None => None,
            Some("PT3H") => Some(ctx.now_ms - RECENTLY_ACTIVE_MS),
            Some(other) => return Err(error::invalid_value_for(other, "RecentlyActive")),
        };
        let filter = ListFilter {
            namespace: request
                .namespace
                .map(|namespace| scoped(&ctx.region, &namespace)),
            namespace_prefix: Some(scoped(&ctx.region, "")),
            metric_name: request.metric_name,
            dimensions: dimensions
                .into_iter()
                .map(|filter| (filter.name.unwrap_or_default(), filter.value))
                .collect(),
            active_since_ms,
        };
        let after = match request.next_token.as_deref() {
            None => None,
            Some(token) => Some(decode_metric_token(token)?),
        };
        let page = self
            .with_metrics(move |metrics| {
                metrics.list_metrics(&filter, after.as_ref(), LIST_METRICS_PAGE + 1)
            })
            .await?;
        let more = page.len() > LIST_METRICS_PAGE;
        let page = &page[..page.len().min(LIST_METRICS_PAGE)];
        let next_token = more.then(|| encode_metric_token(&page[page.len() - 1].0));
        Ok(wire::ListMetricsOutput {
            metrics: Some(page.iter().map(|(key, _)| wire_metric(key)).collect()),
            next_token,
            owning_accounts: None,
        })
    }

    pub(crate) async fn get_metric_data(
        &self,
        ctx: &RequestContext,
        request: wire::GetMetricDataInput,
    ) -> Result<wire::GetMetricDataOutput, ApiError> {
        let queries = request.metric_data_queries.unwrap_or_default();
        if queries.is_empty() {
            return Err(error::missing("MetricDataQueries"));
        }
        if queries.len() > MAX_QUERIES {
            return Err(error::invalid_value(format!(
                "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
            )));
        }
        let (start_ms, end_ms) = check_times(request.start_time, request.end_time)?;
        let max_datapoints = match request.max_datapoints {
            None => DEFAULT_MAX_DATAPOINTS,
            Some(value) if value >= 1 => value as usize,
            Some(value) => return Err(error::invalid_value_for(value, "MaxDatapoints")),
        };
        let ascending = match request.scan_by.as_deref() {
            None | Some("TimestampDescending") => false,
            Some("TimestampAscending") => true,
            Some(other) => return Err(error::invalid_value_for(other, "ScanBy")),
        };
        if let Some(timezone) = request
            .label_options
            .as_ref()
            .and_then(|o| o.timezone.as_ref())
        {
            check_timezone(timezone)?;
        }
        let plan = plan_queries(&queries, &ctx.region)?;
        let skip = match request.next_token.as_deref() {
            None => 0,
            Some(token) => decode_offset_token(token)?,
        };
        let results = self
            .run_queries(&plan, start_ms, end_ms, ctx.now_ms)
            .await?;
        Ok(page_results(results, ascending, skip, max_datapoints))
    }

    /// Evaluates planned queries: every MetricStat from the store, then the expressions in
    /// dependency order. Shared by GetMetricData and metric-math alarms.
    pub(crate) async fn run_queries(
        &self,
        plan: &QueryPlan,
        start_ms: i64,
        end_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<QueryResult>, ApiError> {
        let reads: Vec<(String, MetricKey, Option<String>, u32, Statistic, i64)> = plan
            .queries
            .iter()
            .filter_map(|query| match &query.kind {
                QueryKind::Metric {
                    key,
                    unit,
                    period_s,
                    statistic,
                } => Some((
                    query.id.clone(),
                    key.clone(),
                    unit.clone(),
                    *period_s,
                    *statistic,
                    round_start(start_ms, *period_s, now_ms),
                )),
                QueryKind::Expression { .. } => None,
            })
            .collect();
        let series_by_id = self
            .with_metrics(move |metrics| {
                let mut out = BTreeMap::new();
                for (id, key, unit, period_s, statistic, start) in reads {
                    let aggregates = read_periods(
                        metrics,
                        &key,
                        unit.as_deref(),
                        start,
                        end_ms,
                        period_s,
                        now_ms,
                    )?;
                    let points = aggregates
                        .iter()
                        .filter_map(|a| statistic.of(a).map(|value| (a.start_ms, value)));
                    out.insert(
                        id,
                        metric_math::TimeSeries::new(key.metric_name.clone(), points),
                    );
                }
                Ok(out)
            })
            .await?;
        let mut values: BTreeMap<String, metric_math::Value> = BTreeMap::new();
        let mut messages: BTreeMap<String, Vec<metric_math::Message>> = BTreeMap::new();
        let metric_ids: Vec<String> = plan.metric_ids.clone();
        for (id, series) in series_by_id {
            values.insert(id, metric_math::Value::Series(series));
        }
        for id in &plan.expression_order {
            let query = plan.queries.iter().find(|q| &q.id == id).expect("planned");
            let QueryKind::Expression { expr, period_s } = &query.kind else {
                continue;
            };
            let period_s = period_s.unwrap_or(plan.default_period_s);
            let grid_start = round_start(start_ms, period_s, now_ms);
            let context = metric_math::Context {
                series: &values,
                metric_ids: &metric_ids,
                period_s,
                start_ms: grid_start,
                end_ms,
            };
            let evaluation = metric_math::evaluate(expr, &context)
                .map_err(|err| error::validation(err.message_for(id)))?;
            messages.insert(id.clone(), evaluation.messages);
            values.insert(id.clone(), evaluation.value);
        }
        let mut results = Vec::new();
        for query in &plan.queries {
            if !query.return_data {
                continue;
            }
            let query_messages = messages.remove(&query.id).unwrap_or_default();
            match values.get(&query.id) {
                Some(metric_math::Value::Series(series)) => results.push(QueryResult {
                    id: query.id.clone(),
                    label: query
                        .label
                        .clone()
                        .unwrap_or_else(|| default_label(query, series)),
                    points: series.points().collect(),
                    messages: query_messages,
                }),
                Some(metric_math::Value::Array(array)) => {
                    // An array answers one result per series, under the query's Id.
                    for series in array {
                        results.push(QueryResult {
                            id: query.id.clone(),
                            label: match &query.label {
                                Some(label) => {
                                    format!("{label} {}", series.label).trim().to_string()
                                }
                                None => series.label.clone(),
                            },
                            points: series.points().collect(),
                            messages: query_messages.clone(),
                        });
                    }
                }
                Some(metric_math::Value::Scalar(_)) | None => results.push(QueryResult {
                    id: query.id.clone(),
                    label: query.label.clone().unwrap_or_else(|| query.id.clone()),
                    points: Vec::new(),
                    messages: query_messages,
                }),
            }
        }
        Ok(results)
    }
}

fn default_label(query: &PlannedQuery, series: &metric_math::TimeSeries) -> String {
    match &query.kind {
        QueryKind::Metric { key, .. } => key.metric_name.clone(),
        QueryKind::Expression { .. } if !series.label.is_empty() => series.label.clone(),
        QueryKind::Expression { .. } => query.id.clone(),
    }
}

/// One query's answer before paging.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QueryResult {
    pub id: String,
    pub label: String,
    /// Ascending by time.
    pub points: Vec<(i64, f64)>,
    pub messages: Vec<metric_math::Message>,
}

#[derive(Clone, Debug)]
pub(crate) enum QueryKind {
    Metric {
        key: MetricKey,
        unit: Option<String>,
        period_s: u32,
        statistic: Statistic,
    },
    Expression {
        expr: metric_math::Expr,
        period_s: Option<u32>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct PlannedQuery {
    pub id: String,
    pub label: Option<String>,
    pub return_data: bool,
    pub kind: QueryKind,
}

/// A validated set of MetricDataQueries.
#[derive(Clone, Debug)]
pub(crate) struct QueryPlan {
    pub queries: Vec<PlannedQuery>,
    pub metric_ids: Vec<String>,
    pub expression_order: Vec<String>,
    /// The period expressions without their own use: the first metric's.
    pub default_period_s: u32,
}

/// Validates MetricDataQueries (GetMetricData, metric-math alarms) into a plan.
pub(crate) fn plan_queries(
    queries: &[wire::MetricDataQuery],
    region: &str,
) -> Result<QueryPlan, ApiError> {
    let mut planned = Vec::with_capacity(queries.len());
    let mut seen = HashSet::new();
    for (index, query) in queries.iter().enumerate() {
        let parameter = format!("MetricDataQueries.member.{}", index + 1);
        let id = query.id.clone().unwrap_or_default();
        metric_math::validate_id(&id).map_err(|err| error::validation(err.to_string()))?;
        if !seen.insert(id.clone()) {
            return Err(error::validation(
                metric_math::MathError::DuplicateId { id }.to_string(),
            ));
        }
        if query.account_id.is_some() {
            return Err(error::invalid_value(
                "Berth has no cross-account observability: AccountId must not be set.",
            ));
        }
        let kind = match (&query.metric_stat, &query.expression) {
            (Some(_), Some(_)) => {
                return Err(error::invalid_combination(format!(
                    "The parameters {parameter}.MetricStat and {parameter}.Expression are mutually exclusive and you have specified both."
                )))
            }
            (None, None) => {
                return Err(error::invalid_combination(format!(
                    "Exactly one of {parameter}.MetricStat and {parameter}.Expression must be specified."
                )))
            }
            (Some(stat), None) => {
                let metric = stat.metric.clone().unwrap_or_default();
                let period_s = stat.period.unwrap_or(60).max(1) as u32;
                check_period(period_s, &format!("{parameter}.MetricStat.Period"))?;
                let name = stat.stat.clone().unwrap_or_default();
                let statistic = Statistic::any(&name).ok_or_else(|| {
                    error::invalid_value_for(&name, &format!("{parameter}.MetricStat.Stat"))
                })?;
                QueryKind::Metric {
                    key: metric_key(
                        scoped(region, &metric.namespace.unwrap_or_default()),
                        metric.metric_name.unwrap_or_default(),
                        metric.dimensions.unwrap_or_default(),
                        &format!("{parameter}.MetricStat.Metric.Dimensions"),
                    )?,
                    unit: stat.unit.clone(),
                    period_s,
                    statistic,
                }
            }
            (None, Some(expression)) => {
                if let Some(period_s) = query.period {
                    check_period(period_s as u32, &format!("{parameter}.Period"))?;
                }
                QueryKind::Expression {
                    expr: metric_math::parse(expression)
                        .map_err(|err| error::validation(err.message_for(&id)))?,
                    period_s: query.period.map(|p| p as u32),
                }
            }
        };
        planned.push(PlannedQuery {
            id,
            label: query.label.clone(),
            return_data: query.return_data.unwrap_or(true),
            kind,
        });
    }
    if !planned.iter().any(|query| query.return_data) {
        return Err(error::validation(
            "At least one MetricDataQuery must have ReturnData set to true.",
        ));
    }
    let metric_ids: Vec<String> = planned
        .iter()
        .filter(|q| matches!(q.kind, QueryKind::Metric { .. }))
        .map(|q| q.id.clone())
        .collect();
    let expressions: Vec<(String, metric_math::Expr)> = planned
        .iter()
        .filter_map(|q| match &q.kind {
            QueryKind::Expression { expr, .. } => Some((q.id.clone(), expr.clone())),
            QueryKind::Metric { .. } => None,
        })
        .collect();
    let expression_order = metric_math::evaluation_order(&metric_ids, &expressions)
        .map_err(|err| error::validation(err.to_string()))?;
    let default_period_s = planned
        .iter()
        .find_map(|q| match &q.kind {
            QueryKind::Metric { period_s, .. } => Some(*period_s),
            QueryKind::Expression { .. } => None,
        })
        .unwrap_or(60);
    Ok(QueryPlan {
        queries: planned,
        metric_ids,
        expression_order,
        default_period_s,
    })
}

/// Pages results: `skip` datapoints (in result order, each result's points in scan order)
/// were returned by earlier pages; this page holds at most `max_datapoints`.
fn page_results(
    results: Vec<QueryResult>,
    ascending: bool,
    skip: usize,
    max_datapoints: usize,
) -> wire::GetMetricDataOutput {
    let mut remaining_skip = skip;
    let mut budget = max_datapoints;
    let mut truncated = false;
    let mut out = Vec::with_capacity(results.len());
    for result in results {
        let mut points = result.points;
        if !ascending {
            points.reverse();
        }
        let skipped = remaining_skip.min(points.len());
        remaining_skip -= skipped;
        let rest = &points[skipped..];
        let taken = rest.len().min(budget);
        budget -= taken;
        if taken < rest.len() {
            truncated = true;
        }
        let page = &rest[..taken];
        out.push(wire::MetricDataResult {
            id: Some(result.id),
            label: Some(result.label),
            timestamps: Some(page.iter().map(|(t, _)| *t).collect()),
            values: Some(page.iter().map(|(_, v)| *v).collect()),
            status_code: Some(if truncated { "PartialData" } else { "Complete" }.to_string()),
            messages: (!result.messages.is_empty()).then(|| {
                result
                    .messages
                    .into_iter()
                    .map(|message| wire::MessageData {
                        code: Some(message.code),
                        value: Some(message.value),
                    })
                    .collect()
            }),
        });
    }
    wire::GetMetricDataOutput {
        metric_data_results: Some(out),
        next_token: truncated.then(|| encode_offset_token(skip + max_datapoints)),
        messages: Some(Vec::new()),
    }
}

/// The aggregates of `key` in periods of `period_s` starting at `start_ms` (already rounded)
/// up to `end_ms`, one per period with data, units merged when `unit` is not given. The
/// store is read at the coarsest resolution dividing both the period and the start's offset
/// (so a period starting at 12:32 with a 5-minute period reads 1-minute buckets and a
/// 1-hour period on the hour reads hourly ones), and its buckets are folded into the
/// requested periods.
pub(crate) fn read_periods(
    metrics: &dyn MetricStore,
    key: &MetricKey,
    unit: Option<&str>,
    start_ms: i64,
    end_ms: i64,
    period_s: u32,
    now_ms: i64,
) -> Result<Vec<Aggregate>, MetricStoreError> {
    let base_s = [3600u32, 300, 60, 10, 5, 1]
        .into_iter()
        .find(|base| {
            period_s.is_multiple_of(*base) && start_ms.rem_euclid(i64::from(*base) * 1000) == 0
        })
        .unwrap_or(1);
    let raw = metrics.read(key, unit, start_ms, end_ms, base_s, now_ms)?;
    let raw = if unit.is_none() {
        merge_units(raw)
    } else {
        raw
    };
    if base_s == period_s {
        return Ok(raw);
    }
    let period_ms = i64::from(period_s) * 1000;
    Ok(fold_periods(raw, |bucket_ms| {
        start_ms + (bucket_ms - start_ms).div_euclid(period_ms) * period_ms
    }))
}

/// StartTime rounded down as CloudWatch does: to the period itself for periods under a
/// minute, else to the whole minute when less than 15 days ago, to 5 minutes up to 63 days,
/// to the hour beyond.
pub(crate) fn round_start(start_ms: i64, period_s: u32, now_ms: i64) -> i64 {
    let age_ms = now_ms - start_ms;
    let step_ms = if period_s < 60 {
        i64::from(period_s) * 1000
    } else if age_ms <= 15 * 24 * 3_600_000 {
        60_000
    } else if age_ms <= 63 * 24 * 3_600_000 {
        300_000
    } else {
        3_600_000
    };
    start_ms - start_ms.rem_euclid(step_ms)
}

/// A period CloudWatch accepts: 1, 5, 10, 20, 30, or a multiple of 60 seconds.
pub(crate) fn check_period(period_s: u32, parameter: &str) -> Result<(), ApiError> {
    if matches!(period_s, 1 | 5 | 10 | 20 | 30) || (period_s >= 60 && period_s.is_multiple_of(60)) {
        Ok(())
    } else {
        Err(error::invalid_value(format!(
            "The parameter {parameter} must be 1, 5, 10, 20, 30, or a multiple of 60."
        )))
    }
}

fn check_times(start: Option<i64>, end: Option<i64>) -> Result<(i64, i64), ApiError> {
    let start_ms = start.ok_or_else(|| error::missing("StartTime"))?;
    let end_ms = end.ok_or_else(|| error::missing("EndTime"))?;
    if start_ms >= end_ms {
        return Err(error::invalid_value(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    Ok((start_ms, end_ms))
}

/// LabelOptions.Timezone: `+` or `-` and four digits, at most ±14:00.
fn check_timezone(timezone: &str) -> Result<(), ApiError> {
    let valid = timezone.len() == 5
        && matches!(timezone.as_bytes()[0], b'+' | b'-')
        && timezone[1..].bytes().all(|b| b.is_ascii_digit())
        && timezone[1..3].parse::<u32>().is_ok_and(|hours| hours <= 14)
        && timezone[3..]
            .parse::<u32>()
            .is_ok_and(|minutes| minutes < 60);
    if valid {
        Ok(())
    } else {
        Err(error::invalid_value_for(timezone, "LabelOptions.Timezone"))
    }
}

/// A metric's key from the wire: dimensions checked (at most 30, names unique) and sorted.
pub(crate) fn metric_key(
    namespace: String,
    metric_name: String,
    dimensions: Vec<wire::Dimension>,
    parameter: &str,
) -> Result<MetricKey, ApiError> {
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(error::invalid_value(format!(
            "The collection {parameter} must not have a size greater than {MAX_DIMENSIONS}."
        )));
    }
    let mut pairs: Vec<(String, String)> = dimensions
        .into_iter()
        .map(|d| (d.name.unwrap_or_default(), d.value.unwrap_or_default()))
        .collect();
    pairs.sort();
    if let Some(pair) = pairs.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(error::invalid_value(format!(
            "No metric may have duplicate dimension names: {parameter} has {} twice.",
            pair[0].0
        )));
    }
    Ok(MetricKey {
        namespace,
        metric_name,
        dimensions: pairs,
    })
}

pub(crate) fn wire_metric(key: &MetricKey) -> wire::Metric {
    wire::Metric {
        namespace: Some(unscoped(&key.namespace).to_string()),
        metric_name: Some(key.metric_name.clone()),
        dimensions: Some(
            key.dimensions
                .iter()
                .map(|(name, value)| wire::Dimension {
                    name: Some(name.clone()),
                    value: Some(value.clone()),
                })
                .collect(),
        ),
    }
}

fn check_value(value: f64, parameter: &str) -> Result<(), ApiError> {
    if !value.is_finite() || value.abs() > MAX_MAGNITUDE {
        return Err(error::invalid_value_for(value, parameter));
    }
    Ok(())
}

/// One datum of PutMetricData as the store keeps it, checked against CloudWatch's rules.
fn sample_of(
    namespace: &str,
    parameter: &str,
    datum: &wire::MetricDatum,
    now_ms: i64,
) -> Result<Sample, ApiError> {
    let key = metric_key(
        namespace.to_string(),
        datum.metric_name.clone().unwrap_or_default(),
        datum.dimensions.clone().unwrap_or_default(),
        &format!("{parameter}.Dimensions"),
    )?;
    if key.metric_name.is_empty() {
        return Err(error::missing(&format!("{parameter}.MetricName")));
    }
    let timestamp_ms = datum.timestamp.unwrap_or(now_ms);
    if timestamp_ms > now_ms + MAX_FUTURE_MS {
        return Err(error::invalid_value(format!(
            "The parameter {parameter}.Timestamp must specify a time no more than two hours in the future."
        )));
    }
    if timestamp_ms < now_ms - MAX_AGE_MS {
        return Err(error::invalid_value(format!(
            "The parameter {parameter}.Timestamp must specify a time within the past two weeks."
        )));
    }
    let storage_resolution_s = match datum.storage_resolution {
        None | Some(60) => 60,
        Some(1) => 1,
        Some(other) => {
            return Err(error::invalid_value_for(
                other,
                &format!("{parameter}.StorageResolution"),
            ))
        }
    };
    let given = [
        datum.value.is_some(),
        datum.statistic_values.is_some(),
        datum.values.is_some(),
    ];
    if given.iter().filter(|given| **given).count() > 1 {
        let names = ["Value", "StatisticValues", "Values"];
        let both: Vec<String> = names
            .iter()
            .zip(given)
            .filter(|(_, given)| *given)
            .map(|(name, _)| format!("{parameter}.{name}"))
            .collect();
        return Err(error::invalid_combination(format!(
            "The parameters {} are mutually exclusive and you have specified both.",
            both.join(" and ")
        )));
    }
    if datum.counts.is_some() && datum.values.is_none() {
        return Err(error::invalid_combination(format!(
            "The parameter {parameter}.Counts requires {parameter}.Values."
        )));
    }
    let (stats, values) = if let Some(value) = datum.value {
        check_value(value, &format!("{parameter}.Value"))?;
        (
            StatisticSet {
                sample_count: 1.0,
                sum: value,
                minimum: value,
                maximum: value,
            },
            vec![(value, 1.0)],
        )
    } else if let Some(set) = &datum.statistic_values {
        let field = |value: Option<f64>, name: &str| -> Result<f64, ApiError> {
            let parameter = format!("{parameter}.StatisticValues.{name}");
            let value = value.ok_or_else(|| error::missing(&parameter))?;
            check_value(value, &parameter)?;
            Ok(value)
        };
        let stats = StatisticSet {
            sample_count: field(set.sample_count, "SampleCount")?,
            sum: field(set.sum, "Sum")?,
            minimum: field(set.minimum, "Minimum")?,
            maximum: field(set.maximum, "Maximum")?,
        };
        if stats.sample_count <= 0.0 {
            return Err(error::invalid_value_for(
                stats.sample_count,
                &format!("{parameter}.StatisticValues.SampleCount"),
            ));
        }
        if stats.minimum > stats.maximum {
            return Err(error::invalid_value(format!(
                "The parameter {parameter}.StatisticValues.Minimum must not be greater than {parameter}.StatisticValues.Maximum."
            )));
        }
        (stats, Vec::new())
    } else if let Some(values) = &datum.values {
        if values.len() > MAX_VALUES_PER_DATUM {
            return Err(error::invalid_value(format!(
                "The collection {parameter}.Values must not have a size greater than {MAX_VALUES_PER_DATUM}."
            )));
        }
        if values.is_empty() {
            return Err(error::missing(&format!("{parameter}.Values")));
        }
        let counts = match &datum.counts {
            Some(counts) if counts.len() != values.len() => {
                return Err(error::invalid_combination(format!(
                    "The parameters {parameter}.Values and {parameter}.Counts must be of the same size."
                )))
            }
            Some(counts) => counts.clone(),
            None => vec![1.0; values.len()],
        };
        let mut stats = StatisticSet {
            sample_count: 0.0,
            sum: 0.0,
            minimum: f64::INFINITY,
            maximum: f64::NEG_INFINITY,
        };
        let mut pairs = Vec::with_capacity(values.len());
        for (index, (value, count)) in values.iter().zip(&counts).enumerate() {
            check_value(*value, &format!("{parameter}.Values.member.{}", index + 1))?;
            if !count.is_finite() || *count < 0.0 {
                return Err(error::invalid_value_for(
                    count,
                    &format!("{parameter}.Counts.member.{}", index + 1),
                ));
            }
            if *count == 0.0 {
                continue;
            }
            stats.sample_count += count;
            stats.sum += value * count;
            stats.minimum = stats.minimum.min(*value);
            stats.maximum = stats.maximum.max(*value);
            pairs.push((*value, *count));
        }
        if pairs.is_empty() {
            return Err(error::invalid_value(format!(
                "The parameter {parameter}.Counts must count at least one value."
            )));
        }
        (stats, pairs)
    } else {
        return Err(error::missing(&format!("{parameter}.Value")));
    };
    Ok(Sample {
        key,
        unit: datum.unit.clone().unwrap_or_else(|| "None".to_string()),
        timestamp_ms,
        storage_resolution_s,
        stats,
        values,
    })
}

/// `1441` → `1,441`.
fn thousands(value: i64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// ListMetrics' NextToken: the last metric of the page, base64 JSON.
fn encode_metric_token(key: &MetricKey) -> String {
    use base64::Engine;
    let json = serde_json::json!([key.namespace, key.metric_name, key.dimensions]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

fn decode_metric_token(token: &str) -> Result<MetricKey, ApiError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| error::invalid_next_token())?;
    let (namespace, metric_name, dimensions): (String, String, Vec<(String, String)>) =
        serde_json::from_slice(&bytes).map_err(|_| error::invalid_next_token())?;
    Ok(MetricKey {
        namespace,
        metric_name,
        dimensions,
    })
}

/// GetMetricData's NextToken: how many datapoints earlier pages returned.
fn encode_offset_token(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn decode_offset_token(token: &str) -> Result<usize, ApiError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| error::invalid_next_token())?;
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| text.strip_prefix("offset:"))
        .and_then(|number| number.parse().ok())
        .ok_or_else(error::invalid_next_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_round_as_cloudwatch_rounds_them() {
        let now = 1_796_652_000_000;
        let check = |start: i64, period: u32, expected: i64| {
            assert_eq!(
                round_start(start, period, now),
                expected,
                "{start} {period}"
            );
        };
        check(now - 60_000 * 10 - 34_000, 60, now - 60_000 * 11);
        check(now - 7_000, 5, now - 10_000);
        let twenty_days = now - 20 * 24 * 3_600_000 - 61_000;
        check(
            twenty_days,
            300,
            twenty_days - twenty_days.rem_euclid(300_000),
        );
        let a_year = now - 365 * 24 * 3_600_000 - 61_000;
        check(a_year, 3600, a_year - a_year.rem_euclid(3_600_000));
    }

    #[test]
    fn namespaces_are_scoped_by_region() {
        let scoped = scoped("eu-west-3", "AWS/ECS");
        assert_eq!(scoped, "eu-west-3/AWS/ECS");
        assert_eq!(unscoped(&scoped), "AWS/ECS");
    }

    #[test]
    fn periods_and_thousands() {
        for ok in [1, 5, 10, 20, 30, 60, 120, 3600, 86_400] {
            assert!(check_period(ok, "Period").is_ok(), "{ok}");
        }
        for bad in [0, 2, 59, 61, 90] {
            assert!(check_period(bad, "Period").is_err(), "{bad}");
        }
        assert_eq!(thousands(1441), "1,441");
        assert_eq!(thousands(100_800), "100,800");
        assert_eq!(thousands(12), "12");
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let key = MetricKey {
            namespace: "App".into(),
            metric_name: "Hits".into(),
            dimensions: vec![("Host".into(), "a".into())],
        };
        assert_eq!(
            decode_metric_token(&encode_metric_token(&key)).unwrap(),
            key
        );
        assert_eq!(decode_offset_token(&encode_offset_token(42)).unwrap(), 42);
        assert_eq!(
            decode_offset_token("!!").unwrap_err().code,
            "InvalidNextToken"
        );
    }
}
