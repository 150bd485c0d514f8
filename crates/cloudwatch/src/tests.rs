//! The operations end to end over the in-memory stores, through each protocol's decoder
//! and encoder.

use std::sync::Arc;

use api::RequestContext;
use metric_store::MemoryMetricStore;
use serde_json::{json, Value};
use store::MemoryStore;

use super::*;

/// 2026-12-07T14:00:00Z.
const NOW_MS: i64 = 1_796_652_000_000;

struct Fixture {
    cloudwatch: CloudWatch,
    now_ms: i64,
    region: &'static str,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            cloudwatch: CloudWatch::new(
                Arc::new(MemoryStore::new()),
                Arc::new(MemoryMetricStore::new()),
            ),
            now_ms: NOW_MS,
            region: "us-east-1",
        }
    }

    fn ctx(&self) -> RequestContext {
        RequestContext {
            region: self.region.into(),
            account_id: "000000000000".into(),
            principal_arn: "arn:aws:iam::000000000000:root".into(),
            access_key_id: "test".into(),
            request_id: "req-1".into(),
            now_ms: self.now_ms,
        }
    }

    async fn json(&self, operation: &str, body: Value) -> Result<Value, ApiError> {
        let bytes = self
            .cloudwatch
            .handle_wire(
                Wire::Json,
                &self.ctx(),
                operation,
                body.to_string().as_bytes(),
            )
            .await?;
        Ok(serde_json::from_slice(&bytes).unwrap())
    }

    async fn cbor(&self, operation: &str, body: Value) -> Result<Value, ApiError> {
        let mut request = Vec::new();
        ciborium_into(&body, &mut request);
        let bytes = self
            .cloudwatch
            .handle_wire(Wire::Cbor, &self.ctx(), operation, &request)
            .await?;
        Ok(cloudwatch_wire::cbor_to_json_value(&bytes).unwrap())
    }

    async fn query(&self, form: &str) -> Result<String, ApiError> {
        let action = form
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .unwrap()
            .to_string();
        let bytes = self
            .cloudwatch
            .handle_wire(Wire::Query, &self.ctx(), &action, form.as_bytes())
            .await?;
        Ok(String::from_utf8(bytes).unwrap())
    }

    async fn put(&self, name: &str, value: f64, at_ms: i64) {
        self.json(
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": [{"MetricName": name, "Value": value,
                "Timestamp": at_ms as f64 / 1000.0, "Dimensions": [{"Name": "Host", "Value": "a"}]}]}),
        )
        .await
        .unwrap();
    }
}

fn ciborium_into(value: &Value, out: &mut Vec<u8>) {
    *out = cloudwatch_wire::to_cbor(value);
}

#[tokio::test]
async fn metrics_put_in_one_protocol_read_in_the_others() {
    let fixture = Fixture::new();
    for (minute, value) in [(0, 10.0), (0, 30.0), (1, 50.0)] {
        fixture
            .put("Latency", value, NOW_MS - 600_000 + minute * 60_000)
            .await;
    }
    let xml = fixture
        .query(
            "Action=GetMetricStatistics&Version=2010-08-01&Namespace=App&MetricName=Latency\
             &Dimensions.member.1.Name=Host&Dimensions.member.1.Value=a\
             &StartTime=2026-12-07T13%3A50%3A00Z&EndTime=2026-12-07T14%3A00%3A00Z&Period=60\
             &Statistics.member.1=Average&Statistics.member.2=SampleCount\
             &ExtendedStatistics.member.1=p50",
        )
        .await;
    // Statistics and ExtendedStatistics together are refused.
    assert_eq!(
        xml.unwrap_err().query_code,
        Some("InvalidParameterCombination")
    );
    let xml = fixture
        .query(
            "Action=GetMetricStatistics&Version=2010-08-01&Namespace=App&MetricName=Latency\
             &Dimensions.member.1.Name=Host&Dimensions.member.1.Value=a\
             &StartTime=2026-12-07T13%3A50%3A00Z&EndTime=2026-12-07T14%3A00%3A00Z&Period=60\
             &Statistics.member.1=Average&Statistics.member.2=SampleCount",
        )
        .await
        .unwrap();
    assert!(xml.contains("<Label>Latency</Label>"), "{xml}");
    assert!(xml.contains("<Average>20</Average>"), "{xml}");
    assert!(xml.contains("<SampleCount>2</SampleCount>"), "{xml}");
    assert!(
        xml.contains("<Timestamp>2026-12-07T13:50:00.000Z</Timestamp>"),
        "{xml}"
    );

    let listed = fixture
        .cbor("ListMetrics", json!({"Namespace": "App"}))
        .await
        .unwrap();
    assert_eq!(listed["Metrics"][0]["MetricName"], "Latency");
    assert_eq!(listed["Metrics"][0]["Dimensions"][0]["Value"], "a");

    let extended = fixture
        .json(
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "Latency",
                "Dimensions": [{"Name": "Host", "Value": "a"}],
                "StartTime": (NOW_MS - 600_000) / 1000, "EndTime": NOW_MS / 1000,
                "Period": 600, "ExtendedStatistics": ["p100"]}),
        )
        .await
        .unwrap();
    let datapoint = &extended["Datapoints"][0];
    let p100 = datapoint["ExtendedStatistics"]["p100"].as_f64().unwrap();
    assert!((p100 - 50.0).abs() < 0.5, "{extended}");
}

#[tokio::test]
async fn put_metric_data_enforces_cloudwatchs_rules() {
    let fixture = Fixture::new();
    let check = |body: Value, code: &'static str, message: &'static str| {
        let fixture = &fixture;
        async move {
            let err = fixture.json("PutMetricData", body).await.unwrap_err();
            assert_eq!(
                (err.query_code, err.message.as_str()),
                (Some(code), message)
            );
        }
    };
    check(
        json!({"Namespace": "AWS/EC2", "MetricData": [{"MetricName": "x", "Value": 1}]}),
        "InvalidParameterValue",
        "The value AWS/ for parameter Namespace is invalid.",
    )
    .await;
    check(
        json!({"Namespace": "App", "MetricData": [{"MetricName": "x", "Value": 1, "Values": [1]}]}),
        "InvalidParameterCombination",
        "The parameters MetricData.member.1.Value and MetricData.member.1.Values are mutually exclusive and you have specified both.",
    )
    .await;
    check(
        json!({"Namespace": "App", "MetricData": [{"MetricName": "x", "Values": [1, 2], "Counts": [1]}]}),
        "InvalidParameterCombination",
        "The parameters MetricData.member.1.Values and MetricData.member.1.Counts must be of the same size.",
    )
    .await;
    check(
        json!({"Namespace": "App", "MetricData": [{"MetricName": "x", "Value": 1, "StorageResolution": 5}]}),
        "InvalidParameterValue",
        "The value 5 for parameter MetricData.member.1.StorageResolution is invalid.",
    )
    .await;
    check(
        json!({"Namespace": "App", "MetricData": [{"MetricName": "x", "Value": 1,
            "Timestamp": (NOW_MS + 3 * 3_600_000) / 1000}]}),
        "InvalidParameterValue",
        "The parameter MetricData.member.1.Timestamp must specify a time no more than two hours in the future.",
    )
    .await;
    check(
        json!({"Namespace": "App", "MetricData": [{"MetricName": "x", "Value": 1, "Unit": "Parsecs"}]}),
        "ValidationError",
        "1 validation error detected: Value 'Parsecs' at 'metricData.1.member.unit' failed to satisfy constraint: Member must satisfy enum value set: [Seconds, Microseconds, Milliseconds, Bytes, Kilobytes, Megabytes, Gigabytes, Terabytes, Bits, Kilobits, Megabits, Gigabits, Terabits, Percent, Count, Bytes/Second, Kilobytes/Second, Megabytes/Second, Gigabytes/Second, Terabytes/Second, Bits/Second, Kilobits/Second, Megabits/Second, Gigabits/Second, Terabits/Second, Count/Second, None]",
    )
    .await;
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"MetricName": format!("m{i}"), "Value": 1}))
        .collect();
    check(
        json!({"Namespace": "App", "MetricData": too_many}),
        "InvalidParameterValue",
        "The collection MetricData must not have a size greater than 1000.",
    )
    .await;
    // Nothing of a refused request was stored.
    let listed = fixture.json("ListMetrics", json!({})).await.unwrap();
    assert_eq!(listed["Metrics"], json!([]));

    let err = fixture
        .json(
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "x", "StartTime": (NOW_MS - 86_400_000) / 1000,
                "EndTime": NOW_MS / 1000 + 60, "Period": 60, "Statistics": ["Sum"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "You have requested up to 1,441 datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range."
    );
}

#[tokio::test]
async fn get_metric_data_runs_metric_math_and_pages() {
    let fixture = Fixture::new();
    for minute in 0..10 {
        let at = NOW_MS - 600_000 + minute * 60_000;
        fixture.put("Hits", minute as f64, at).await;
        fixture.put("Misses", 1.0, at).await;
    }
    let stat = |id: &str, name: &str| {
        json!({"Id": id, "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "App",
            "MetricName": name, "Dimensions": [{"Name": "Host", "Value": "a"}]},
            "Period": 60, "Stat": "Sum"}})
    };
    let request = json!({
        "MetricDataQueries": [stat("hits", "Hits"), stat("misses", "Misses"),
            {"Id": "ratio", "Expression": "100 * misses / (hits + misses)", "Label": "MissRate"},
            {"Id": "total", "Expression": "SUM(METRICS())"}],
        "StartTime": (NOW_MS - 600_000) / 1000, "EndTime": NOW_MS / 1000,
        "ScanBy": "TimestampAscending"});
    let answer = fixture
        .cbor("GetMetricData", request.clone())
        .await
        .unwrap();
    let results = answer["MetricDataResults"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{answer}");
    assert_eq!(results[0]["Id"], "ratio");
    assert_eq!(results[0]["Label"], "MissRate");
    assert_eq!(results[0]["Values"][0], 100.0);
    assert_eq!(results[0]["Values"][1], 50.0);
    assert_eq!(results[0]["StatusCode"], "Complete");
    assert_eq!(results[1]["Values"][9], 10.0);
    // Timestamps are CBOR tag 1, read back as epoch seconds.
    assert_eq!(
        results[0]["Timestamps"][0].as_f64(),
        Some(((NOW_MS - 600_000) / 1000) as f64)
    );

    let mut paged = request.clone();
    paged["MaxDatapoints"] = json!(15);
    let first = fixture.json("GetMetricData", paged.clone()).await.unwrap();
    assert_eq!(
        first["MetricDataResults"][0]["Values"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        first["MetricDataResults"][1]["Values"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(first["MetricDataResults"][1]["StatusCode"], "PartialData");
    paged["NextToken"] = first["NextToken"].clone();
    let second = fixture.json("GetMetricData", paged).await.unwrap();
    assert_eq!(second["MetricDataResults"][0]["Values"], json!([]));
    assert_eq!(
        second["MetricDataResults"][1]["Values"],
        json!([6.0, 7.0, 8.0, 9.0, 10.0])
    );
    assert!(second.get("NextToken").is_none());

    let mut cyclic = request;
    cyclic["MetricDataQueries"][2]["Expression"] = json!("total + 1");
    cyclic["MetricDataQueries"][3]["Expression"] = json!("ratio * 2");
    let err = fixture.json("GetMetricData", cyclic).await.unwrap_err();
    assert_eq!(err.query_code, Some("ValidationError"));
    assert!(err.message.contains("Circular"), "{}", err.message);
}

#[tokio::test]
async fn alarms_move_through_their_states_with_history() {
    let mut fixture = Fixture::new();
    fixture
        .json(
            "PutMetricAlarm",
            json!({"AlarmName": "high-latency", "Namespace": "App", "MetricName": "Latency",
                "Dimensions": [{"Name": "Host", "Value": "a"}], "Statistic": "Average",
                "Period": 60, "EvaluationPeriods": 2, "Threshold": 80.0,
                "ComparisonOperator": "GreaterThanThreshold",
                "Tags": [{"Key": "team", "Value": "web"}]}),
        )
        .await
        .unwrap();
    let described = fixture.json("DescribeAlarms", json!({})).await.unwrap();
    let alarm = &described["MetricAlarms"][0];
    assert_eq!(alarm["StateValue"], "INSUFFICIENT_DATA");
    assert_eq!(alarm["StateReason"], "Unchecked: Initial alarm creation");
    assert_eq!(
        alarm["AlarmArn"],
        "arn:aws:cloudwatch:us-east-1:000000000000:alarm:high-latency"
    );

    let evaluator = AlarmEvaluator::new(fixture.cloudwatch.clone());
    for minute in 0..4 {
        fixture
            .put("Latency", 95.0, NOW_MS - 240_000 + minute * 60_000)
            .await;
    }
    let report = evaluator.pass(NOW_MS + 1_000).await.unwrap();
    assert_eq!(report.state_changes, 1);
    // Evaluating the same range again changes nothing.
    assert_eq!(
        evaluator.pass(NOW_MS + 2_000).await.unwrap().state_changes,
        0
    );
    let described = fixture
        .json("DescribeAlarms", json!({"StateValue": "ALARM"}))
        .await
        .unwrap();
    let alarm = &described["MetricAlarms"][0];
    assert!(
        alarm["StateReason"]
            .as_str()
            .unwrap()
            .starts_with("Threshold Crossed: 2 datapoints [95.0"),
        "{alarm}"
    );

    fixture.now_ms = NOW_MS + 180_000;
    for minute in 0..3 {
        fixture.put("Latency", 10.0, NOW_MS + minute * 60_000).await;
    }
    assert_eq!(
        evaluator
            .pass(NOW_MS + 181_000)
            .await
            .unwrap()
            .state_changes,
        1
    );
    let history = fixture
        .json(
            "DescribeAlarmHistory",
            json!({"AlarmName": "high-latency", "HistoryItemType": "StateUpdate"}),
        )
        .await
        .unwrap();
    let items = history["AlarmHistoryItems"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["HistorySummary"], "Alarm updated from ALARM to OK");
    assert_eq!(
        items[1]["HistorySummary"],
        "Alarm updated from INSUFFICIENT_DATA to ALARM"
    );

    fixture
        .json(
            "SetAlarmState",
            json!({"AlarmName": "high-latency", "StateValue": "ALARM", "StateReason": "testing"}),
        )
        .await
        .unwrap();
    let for_metric = fixture
        .json(
            "DescribeAlarmsForMetric",
            json!({"Namespace": "App", "MetricName": "Latency",
                "Dimensions": [{"Name": "Host", "Value": "a"}]}),
        )
        .await
        .unwrap();
    assert_eq!(for_metric["MetricAlarms"][0]["StateReason"], "testing");

    let arn = "arn:aws:cloudwatch:us-east-1:000000000000:alarm:high-latency";
    let tags = fixture
        .json("ListTagsForResource", json!({"ResourceARN": arn}))
        .await
        .unwrap();
    assert_eq!(tags["Tags"], json!([{"Key": "team", "Value": "web"}]));
    fixture
        .json(
            "UntagResource",
            json!({"ResourceARN": arn, "TagKeys": ["team"]}),
        )
        .await
        .unwrap();
    let err = fixture
        .json(
            "DeleteAlarms",
            json!({"AlarmNames": ["high-latency", "nope"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.query_code, Some("ResourceNotFound"));
    fixture
        .json("DeleteAlarms", json!({"AlarmNames": ["high-latency"]}))
        .await
        .unwrap();
    let described = fixture.json("DescribeAlarms", json!({})).await.unwrap();
    assert_eq!(described["MetricAlarms"], json!([]));
}

#[tokio::test]
async fn alarm_definitions_are_checked() {
    let fixture = Fixture::new();
    let base = json!({"AlarmName": "a", "Namespace": "App", "MetricName": "Latency",
        "Statistic": "Average", "Period": 60, "EvaluationPeriods": 1, "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanThreshold"});
    let refused = |change: Value| {
        let mut body = base.clone();
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    for (change, code) in [
        (
            json!({"AlarmActions": ["arn:aws:sns:us-east-1:000000000000:topic"]}),
            "InvalidParameterValue",
        ),
        (json!({"Period": 45}), "InvalidParameterValue"),
        (
            json!({"ExtendedStatistic": "p99"}),
            "InvalidParameterCombination",
        ),
        (
            json!({"TreatMissingData": "sometimes"}),
            "InvalidParameterValue",
        ),
        (
            json!({"ComparisonOperator": "GreaterThanUpperThreshold"}),
            "ValidationError",
        ),
        (
            json!({"Metrics": [{"Id": "m1", "Expression": "1"}]}),
            "InvalidParameterCombination",
        ),
    ] {
        let err = fixture
            .json("PutMetricAlarm", refused(change.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.query_code, Some(code), "{change}: {}", err.message);
    }
    let described = fixture.json("DescribeAlarms", json!({})).await.unwrap();
    assert_eq!(described["MetricAlarms"], json!([]));
}

#[tokio::test]
async fn unknown_and_unsupported_operations() {
    let fixture = Fixture::new();
    let err = fixture.json("PutDashboard", json!({})).await.unwrap_err();
    assert!(
        err.message.contains("not supported by Berth"),
        "{}",
        err.message
    );
    let err = fixture.json("Nope", json!({})).await.unwrap_err();
    assert_eq!(err.code, "UnknownOperationException");
}

#[tokio::test]
async fn set_alarm_state_lasts_until_the_next_evaluation_is_due() {
    let fixture = Fixture::new();
    fixture
        .json(
            "PutMetricAlarm",
            json!({"AlarmName": "quiet", "Namespace": "App", "MetricName": "Idle",
                "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 1.0,
                "ComparisonOperator": "GreaterThanThreshold"}),
        )
        .await
        .unwrap();
    let evaluator = AlarmEvaluator::new(fixture.cloudwatch.clone());
    evaluator.pass(NOW_MS + 1_000).await.unwrap();
    fixture
        .json(
            "SetAlarmState",
            json!({"AlarmName": "quiet", "StateValue": "ALARM", "StateReason": "testing"}),
        )
        .await
        .unwrap();
    let state = |described: Value| described["MetricAlarms"][0]["StateValue"].clone();
    // Passes within the same evaluation period leave the state SetAlarmState set.
    for offset_ms in [2_000, 30_000] {
        evaluator.pass(NOW_MS + offset_ms).await.unwrap();
        let described = fixture.json("DescribeAlarms", json!({})).await.unwrap();
        assert_eq!(state(described), "ALARM");
    }
    // The next evaluation finds no data: back to INSUFFICIENT_DATA.
    assert_eq!(
        evaluator.pass(NOW_MS + 61_000).await.unwrap().state_changes,
        1
    );
    let described = fixture.json("DescribeAlarms", json!({})).await.unwrap();
    assert_eq!(state(described), "INSUFFICIENT_DATA");
}

#[tokio::test]
async fn describe_alarms_always_lists_composite_and_log_alarms() {
    let fixture = Fixture::new();
    let described = fixture.json("DescribeAlarms", json!({})).await.unwrap();
    assert_eq!(described["MetricAlarms"], json!([]));
    assert_eq!(described["CompositeAlarms"], json!([]));
    assert_eq!(described["LogAlarms"], json!([]));
}
