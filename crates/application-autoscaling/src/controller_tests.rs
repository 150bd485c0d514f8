//! The controller over the in-memory stores: an alarm in ALARM naming a step policy scales
//! the service once (not again on the next pass, within the cooldown); a decision a crash
//! left unapplied is applied by the next pass, once.

use super::*;
use crate::controller::{state_key, PendingChange, StateRecord};

const SECOND_MS: i64 = 1000;

impl Fixture {
    fn controller(&self) -> ScalingController {
        ScalingController::new(
            self.service.clone(),
            "000000000000".into(),
            &PolicyActions::new(),
        )
    }

    async fn desired_count(&self, name: &str) -> i64 {
        let described = self
            .ecs_call("DescribeServices", json!({"services": [name]}))
            .await;
        described["services"][0]["desiredCount"].as_i64().unwrap()
    }

    async fn activities(&self) -> Vec<Value> {
        self.ok(
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs"}),
        )
        .await["ScalingActivities"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// A queue-depth alarm over 10 s periods, fed datapoints of 100 for the last 30 s,
    /// naming `policy_arn`, put in ALARM.
    async fn alarm_in_alarm(&self, policy_arn: &str) {
        let data: Vec<Value> = [5, 15, 25]
            .iter()
            .map(|ago_s| {
                json!({"MetricName": "Depth", "Value": 100.0, "StorageResolution": 1,
                       "Timestamp": (NOW_MS - ago_s * SECOND_MS) as f64 / 1000.0})
            })
            .collect();
        self.cloudwatch_call(
            "PutMetricData",
            json!({"Namespace": "App/Queue", "MetricData": data}),
        )
        .await;
        self.cloudwatch_call(
            "PutMetricAlarm",
            json!({"AlarmName": "queue-high", "Namespace": "App/Queue", "MetricName": "Depth",
                   "Statistic": "Average", "Period": 10, "EvaluationPeriods": 1,
                   "Threshold": 50.0, "ComparisonOperator": "GreaterThanThreshold",
                   "AlarmActions": [policy_arn]}),
        )
        .await;
        self.cloudwatch_call(
            "SetAlarmState",
            json!({"AlarmName": "queue-high", "StateValue": "ALARM", "StateReason": "test"}),
        )
        .await;
    }
}

#[tokio::test]
async fn an_alarm_scales_once_and_a_decision_cut_short_by_a_crash_is_applied_once() {
    let f = Fixture::new().await;
    f.ecs_call(
        "UpdateService",
        json!({"service": "web", "desiredCount": 1}),
    )
    .await;
    f.register(WEB, 1, 5).await;
    let policy = f.ok("PutScalingPolicy", step_policy("queue")).await;
    let policy_arn = policy["PolicyARN"].as_str().unwrap().to_string();
    f.alarm_in_alarm(&policy_arn).await;
    let controller = f.controller();

    let pass = controller.pass(NOW_MS).await.unwrap();
    assert_eq!((pass.targets, pass.scaled), (1, 1), "{pass:?}");
    assert_eq!(f.desired_count("web").await, 2);
    let activities = f.activities().await;
    assert_eq!(activities.len(), 1, "{activities:?}");
    assert_eq!(activities[0]["Description"], "Setting desired count to 2.");
    assert_eq!(
        activities[0]["Cause"],
        "monitor alarm queue-high in state ALARM triggered policy queue"
    );
    assert_eq!(activities[0]["StatusCode"], "Successful");

    // Still in ALARM a second later: within the policy's cooldown, nothing more.
    controller.pass(NOW_MS + SECOND_MS).await.unwrap();
    assert_eq!(f.desired_count("web").await, 2);
    assert_eq!(f.activities().await.len(), 1);

    // A crash after a decision was written and before it was applied: the state holds the
    // pending desired count and its activity is InProgress.
    let key = state_key("us-east-1", "ecs", "ecs:service:DesiredCount", WEB);
    let found = api::records::get::<StateRecord>(&*f.store, &key)
        .await
        .unwrap()
        .unwrap();
    let activity_id = "11111111-2222-3333-4444-555555555555";
    let pending_key = activity_key(
        "us-east-1",
        "ecs",
        WEB,
        "ecs:service:DesiredCount",
        NOW_MS + 2 * SECOND_MS,
        activity_id,
    );
    let mut interrupted = found.value.clone();
    interrupted.pending = Some(PendingChange {
        desired_count: 4,
        activity_key: pending_key.clone(),
    });
    let activity = ActivityRecord {
        activity: application_autoscaling_wire::ScalingActivity {
            activity_id: Some(activity_id.into()),
            description: Some("Setting desired count to 4.".into()),
            cause: Some("monitor alarm queue-high in state ALARM triggered policy queue".into()),
            status_code: Some(application_autoscaling_wire::ScalingActivityStatusCode::InProgress),
            ..Default::default()
        },
    };
    assert!(api::records::Write::new()
        .expect(&key, found.mod_revision)
        .put(&key, &interrupted)
        .put(&pending_key, &activity)
        .commit(&*f.store)
        .await
        .unwrap());

    // The restarted controller applies it before deciding anything, exactly once.
    let restarted = f.controller();
    restarted.pass(NOW_MS + 3 * SECOND_MS).await.unwrap();
    assert_eq!(f.desired_count("web").await, 4);
    let state = api::records::get::<StateRecord>(&*f.store, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.value.pending, None);
    let activities = f.activities().await;
    assert_eq!(activities.len(), 2, "{activities:?}");
    let completed = activities
        .iter()
        .find(|a| a["ActivityId"] == activity_id)
        .unwrap();
    assert_eq!(completed["StatusCode"], "Successful");
    assert_eq!(
        completed["StatusMessage"],
        "Successfully set desired count to 4. Change successfully fulfilled by ecs."
    );
    restarted.pass(NOW_MS + 4 * SECOND_MS).await.unwrap();
    assert_eq!(f.desired_count("web").await, 4);
    assert_eq!(f.activities().await.len(), 2);
}

#[tokio::test]
async fn a_target_whose_service_is_gone_is_left_alone() {
    let f = Fixture::new().await;
    f.register(WEB, 1, 5).await;
    f.ecs_call("DeleteService", json!({"service": "web", "force": true}))
        .await;
    let pass = f.controller().pass(NOW_MS).await.unwrap();
    assert_eq!((pass.targets, pass.scaled, pass.activities), (1, 0, 0));
}
