//! Metric filters: PutMetricFilter, DescribeMetricFilters,
//! DeleteMetricFilter, TestMetricFilter. Filters are stored with their
//! pattern checked; they publish metrics once CloudWatch metrics exist in
//! Berth.

use api::pagination;
use api::records::{self, Write};
use api::{ApiError, RequestContext};
use logs_wire as wire;

use crate::error;
use crate::filter_pattern::FilterPattern;
use crate::records::{
    all_metric_filters_prefix, metric_filter_key, metric_filters_prefix, require_group,
    MetricFilterRecord,
};
use crate::validate::{Violations, METRIC_NAME_PATTERN};
use crate::{Empty, Logs};

/// CloudWatch Logs' quota of metric filters per log group.
const MAX_METRIC_FILTERS_PER_GROUP: usize = 100;

fn parse_pattern(pattern: &str) -> Result<FilterPattern, ApiError> {
    FilterPattern::parse(pattern).map_err(|err| error::invalid(err.to_string()))
}

fn check_transformation(
    violations: &mut Violations,
    index: usize,
    transformation: &wire::MetricTransformation,
) {
    let member = format!("metricTransformations.{}.member", index + 1);
    violations.required(
        &format!("{member}.metricName"),
        transformation.metric_name.as_ref(),
    );
    violations.string(
        &format!("{member}.metricName"),
        transformation.metric_name.as_deref(),
        0,
        255,
        Some(METRIC_NAME_PATTERN),
    );
    violations.required(
        &format!("{member}.metricNamespace"),
        transformation.metric_namespace.as_ref(),
    );
    violations.string(
        &format!("{member}.metricNamespace"),
        transformation.metric_namespace.as_deref(),
        0,
        255,
        Some(METRIC_NAME_PATTERN),
    );
    violations.required(
        &format!("{member}.metricValue"),
        transformation.metric_value.as_ref(),
    );
    violations.string(
        &format!("{member}.metricValue"),
        transformation.metric_value.as_deref(),
        0,
        100,
        None,
    );
}

impl Logs {
    pub(crate) async fn put_metric_filter(
        &self,
        ctx: &RequestContext,
        request: wire::PutMetricFilterRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.required_log_stream_name("filterName", request.filter_name.as_deref());
        violations.required("filterPattern", request.filter_pattern.as_ref());
        violations.string(
            "filterPattern",
            request.filter_pattern.as_deref(),
            0,
            1024,
            None,
        );
        violations.required(
            "metricTransformations",
            request.metric_transformations.as_ref(),
        );
        violations.count(
            "metricTransformations",
            request.metric_transformations.as_ref().map(Vec::len),
            1,
            1,
        );
        for (index, transformation) in request.metric_transformations.iter().flatten().enumerate() {
            check_transformation(&mut violations, index, transformation);
        }
        violations.finish()?;
        let pattern = request.filter_pattern.unwrap_or_default();
        parse_pattern(&pattern)?;
        let group = request.log_group_name.unwrap_or_default();
        let name = request.filter_name.unwrap_or_default();
        let key = metric_filter_key(&ctx.region, &group, &name);
        for _ in 0..records::MAX_CAS_ATTEMPTS {
            let group_record = require_group(&*self.store, &ctx.region, &group).await?;
            let existing = records::get::<MetricFilterRecord>(&*self.store, &key).await?;
            let count = self
                .store
                .range(store::RangeRequest::prefix(metric_filters_prefix(
                    &ctx.region,
                    &group,
                )))
                .await?
                .kvs
                .len();
            if existing.is_none() && count >= MAX_METRIC_FILTERS_PER_GROUP {
                return Err(error::limit_exceeded("Resource limit exceeded."));
            }
            let record = MetricFilterRecord {
                group: group.clone(),
                name: name.clone(),
                filter_pattern: pattern.clone(),
                metric_transformations: request.metric_transformations.clone().unwrap_or_default(),
                creation_time_ms: existing
                    .as_ref()
                    .map_or(ctx.now_ms, |e| e.value.creation_time_ms),
                apply_on_transformed_logs: request.apply_on_transformed_logs.unwrap_or(false),
            };
            let group_key = crate::records::group_key(&ctx.region, &group);
            if Write::new()
                .expect(&group_key, group_record.mod_revision)
                .expect(&key, existing.as_ref().map_or(0, |e| e.mod_revision))
                .put(&key, &record)
                .commit(&*self.store)
                .await?
            {
                return Ok(Empty {});
            }
        }
        Err(records::too_much_contention("the metric filter"))
    }

    pub(crate) async fn describe_metric_filters(
        &self,
        ctx: &RequestContext,
        request: wire::DescribeMetricFiltersRequest,
    ) -> Result<wire::DescribeMetricFiltersResponse, ApiError> {
        let mut violations = Violations::new();
        violations.log_group_name("logGroupName", request.log_group_name.as_deref());
        violations.log_stream_name("filterNamePrefix", request.filter_name_prefix.as_deref());
        violations.range("limit", request.limit.map(i64::from), 1, 50);
        violations.string(
            "metricName",
            request.metric_name.as_deref(),
            0,
            255,
            Some(METRIC_NAME_PATTERN),
        );
        violations.string(
            "metricNamespace",
            request.metric_namespace.as_deref(),
            0,
            255,
            Some(METRIC_NAME_PATTERN),
        );
        violations.finish()?;
        if request.filter_name_prefix.is_some() && request.log_group_name.is_none() {
            return Err(error::invalid(
                "If you specify filterNamePrefix, you must also specify logGroupName.",
            ));
        }
        if request.metric_name.is_some() != request.metric_namespace.is_some() {
            return Err(error::invalid(
                "If you specify metricName, you must also specify metricNamespace, and the other way around.",
            ));
        }
        let prefix = match &request.log_group_name {
            Some(group) => {
                require_group(&*self.store, &ctx.region, group).await?;
                format!(
                    "{}{}",
                    metric_filters_prefix(&ctx.region, group),
                    request.filter_name_prefix.as_deref().unwrap_or("")
                )
            }
            None => all_metric_filters_prefix(&ctx.region),
        };
        let filters: Vec<(String, MetricFilterRecord)> =
            records::list::<MetricFilterRecord>(&*self.store, &prefix)
                .await?
                .into_iter()
                .filter(
                    |(_, filter)| match (&request.metric_name, &request.metric_namespace) {
                        (Some(name), Some(namespace)) => {
                            filter.metric_transformations.iter().any(|t| {
                                t.metric_name.as_ref() == Some(name)
                                    && t.metric_namespace.as_ref() == Some(namespace)
                            })
                        }
                        _ => true,
                    },
                )
                .collect();
        let after =
            pagination::decode_token("DescribeMetricFilters", request.next_token.as_deref())?;
        let (page, next_token) = pagination::paginate(
            "DescribeMetricFilters",
            filters,
            |(key, _)| key.clone(),
            after.as_deref(),
            request.limit.map_or(50, |n| n as usize),
            false,
        );
        Ok(wire::DescribeMetricFiltersResponse {
            metric_filters: Some(
                page.into_iter()
                    .map(|(_, filter)| wire::MetricFilter {
                        filter_name: Some(filter.name),
                        filter_pattern: Some(filter.filter_pattern),
                        metric_transformations: Some(filter.metric_transformations),
                        creation_time: Some(filter.creation_time_ms),
                        log_group_name: Some(filter.group),
                        apply_on_transformed_logs: Some(filter.apply_on_transformed_logs),
                        ..Default::default()
                    })
                    .collect(),
            ),
            next_token,
        })
    }

    pub(crate) async fn delete_metric_filter(
        &self,
        ctx: &RequestContext,
        request: wire::DeleteMetricFilterRequest,
    ) -> Result<Empty, ApiError> {
        let mut violations = Violations::new();
        violations.required_log_group_name(request.log_group_name.as_deref());
        violations.required_log_stream_name("filterName", request.filter_name.as_deref());
        violations.finish()?;
        let group = request.log_group_name.unwrap_or_default();
        require_group(&*self.store, &ctx.region, &group).await?;
        let key = metric_filter_key(
            &ctx.region,
            &group,
            request.filter_name.as_deref().unwrap_or(""),
        );
        let txn = store::Txn::new()
            .when(store::Compare::present(&key))
            .then(store::Op::delete(&key));
        if self.store.txn(txn).await?.succeeded {
            Ok(Empty {})
        } else {
            Err(error::metric_filter_not_found())
        }
    }

    pub(crate) fn test_metric_filter(
        &self,
        request: wire::TestMetricFilterRequest,
    ) -> Result<wire::TestMetricFilterResponse, ApiError> {
        let mut violations = Violations::new();
        violations.required("filterPattern", request.filter_pattern.as_ref());
        violations.string(
            "filterPattern",
            request.filter_pattern.as_deref(),
            0,
            1024,
            None,
        );
        violations.required("logEventMessages", request.log_event_messages.as_ref());
        violations.count(
            "logEventMessages",
            request.log_event_messages.as_ref().map(Vec::len),
            1,
            50,
        );
        violations.finish()?;
        let pattern = parse_pattern(request.filter_pattern.as_deref().unwrap_or(""))?;
        let matches = request
            .log_event_messages
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter_map(|(index, message)| {
                let extracted = pattern.extract(&message)?;
                Some(wire::MetricFilterMatchRecord {
                    event_number: Some(index as i64 + 1),
                    extracted_values: Some(extracted.into_iter().collect()),
                    event_message: Some(message),
                })
            })
            .collect();
        Ok(wire::TestMetricFilterResponse {
            matches: Some(matches),
        })
    }
}
