//! The service operations against the in-memory store: CreateService rules
//! and idempotency, Describe/List/Update/DeleteService, the cluster's
//! service counts, tags, and the service-deployment/revision views.
//!
//! No service controller runs here, so counts and events stay as the API
//! wrote them; the scheduling state is driven by hand where a test needs a
//! later stage (INACTIVE, a failed deployment).

use serde_json::{json, Value};

use crate::records::{self, Versioned, Write};
use crate::services::{self, ServiceRecord};
use crate::test_support;
use crate::{keys, ApiError};

const TD_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1";
const TD2_ARN: &str = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2";

fn service_arn(cluster: &str, name: &str) -> String {
    format!("arn:aws:ecs:us-east-1:000000000000:service/{cluster}/{name}")
}

/// The shared harness with cluster `default` and task definition `web:1`.
struct Harness(test_support::Harness);

impl std::ops::Deref for Harness {
    type Target = test_support::Harness;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

fn web() -> Value {
    json!({"family": "web", "containerDefinitions": [
        {"name": "web", "image": "busybox", "memory": 128}]})
}

impl Harness {
    async fn new() -> Self {
        let h = Harness(test_support::Harness::new());
        h.ok("CreateCluster", json!({})).await;
        h.ok("RegisterTaskDefinition", web()).await;
        h
    }
    async fn create(&self, body: Value) -> Value {
        self.ok("CreateService", body).await["service"].clone()
    }
    async fn create_web(&self, name: &str, desired: i32) -> Value {
        self.create(json!({"serviceName": name, "taskDefinition": "web", "desiredCount": desired}))
            .await
    }
    async fn describe(&self, name: &str) -> Value {
        let r = self
            .ok(
                "DescribeServices",
                json!({"services": [name], "include": ["TAGS"]}),
            )
            .await;
        assert_eq!(r["failures"], json!([]), "{r}");
        r["services"][0].clone()
    }
    /// Runs `op` at a given instant (the harness otherwise uses one fixed
    /// `now`).
    async fn ok_at(&self, now_ms: i64, op: &str, body: Value) -> Value {
        let mut ctx = test_support::ctx("us-east-1");
        ctx.now_ms = now_ms;
        let bytes = self
            .ecs
            .handle(&ctx, op, body.to_string().as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{op} {body}: {e}"));
        serde_json::from_slice(&bytes).unwrap()
    }
    /// Changes a stored service the way the controller would.
    async fn modify(&self, cluster: &str, name: &str, change: impl Fn(&mut ServiceRecord)) {
        let key = keys::service("us-east-1", cluster, name);
        let current: Versioned<ServiceRecord> =
            records::get(self.ecs.store(), &key).await.unwrap().unwrap();
        let mut record = current.value;
        change(&mut record);
        assert!(Write::new()
            .expect(&key, current.mod_revision)
            .put(&key, &record)
            .commit(self.ecs.store())
            .await
            .unwrap());
    }
}

fn assert_error(error: &ApiError, code: &str, message: &str) {
    assert_eq!(error.code, code, "{error}");
    assert!(
        error.message.contains(message),
        "expected '{message}' in '{}'",
        error.message
    );
}

#[tokio::test]
async fn create_service_answers_what_ecs_shows() {
    let h = Harness::new().await;
    let service = h.create_web("api", 2).await;
    assert_eq!(service["serviceArn"], service_arn("default", "api"));
    assert_eq!(service["serviceName"], "api");
    assert_eq!(
        service["clusterArn"],
        "arn:aws:ecs:us-east-1:000000000000:cluster/default"
    );
    assert_eq!(service["status"], "ACTIVE");
    assert_eq!(service["desiredCount"], 2);
    assert_eq!(service["runningCount"], 0);
    assert_eq!(service["pendingCount"], 0);
    assert_eq!(service["launchType"], "EC2");
    assert_eq!(service["taskDefinition"], TD_ARN);
    assert_eq!(service["schedulingStrategy"], "REPLICA");
    assert_eq!(service["deploymentController"], json!({"type": "ECS"}));
    assert_eq!(
        service["deploymentConfiguration"],
        json!({"deploymentCircuitBreaker": {"enable": false, "rollback": false,
                   "resetOnHealthyTask": true,
                   "thresholdConfiguration": {"type": "BOUNDED_PERCENT", "value": 50}},
               "maximumPercent": 200, "minimumHealthyPercent": 100})
    );
    assert_eq!(service["placementConstraints"], json!([]));
    assert_eq!(service["placementStrategy"], json!([]));
    assert_eq!(service["loadBalancers"], json!([]));
    assert_eq!(service["propagateTags"], "NONE");
    assert_eq!(service["enableECSManagedTags"], false);
    assert_eq!(service["enableExecuteCommand"], false);
    assert_eq!(service["createdBy"], "arn:aws:iam::000000000000:root");
    assert_eq!(
        service["roleArn"],
        "arn:aws:iam::000000000000:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"
    );
    assert_eq!(service["createdAt"], 1_700_000_000.0);
    assert!(service.get("healthCheckGracePeriodSeconds").is_none());
    assert_eq!(service["events"], json!([]));

    let deployments = service["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1);
    let primary = &deployments[0];
    let id = primary["id"].as_str().unwrap();
    let digits = id.strip_prefix("ecs-svc/").unwrap();
    assert_eq!(digits.len(), 19, "{id}");
    assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'));
    assert!(digits.parse::<i64>().is_ok(), "fits in an int64");
    assert_eq!(primary["status"], "PRIMARY");
    assert_eq!(primary["taskDefinition"], TD_ARN);
    assert_eq!(primary["desiredCount"], 2);
    assert_eq!(primary["failedTasks"], 0);
    assert_eq!(primary["launchType"], "EC2");
    assert_eq!(primary["rolloutState"], "IN_PROGRESS");
    assert_eq!(
        primary["rolloutStateReason"],
        format!("ECS deployment {id} in progress.")
    );
    assert_eq!(
        service["currentServiceDeployment"],
        format!("arn:aws:ecs:us-east-1:000000000000:service-deployment/default/api/{digits}")
    );

    // Described the same way, by name or by ARN.
    let described = h.describe("api").await;
    assert_eq!(described["deployments"], service["deployments"]);
    assert_eq!(described["tags"], json!([]));
    let by_arn = h.describe(&service_arn("default", "api")).await;
    assert_eq!(by_arn["serviceName"], "api");

    // The record carries what the controller needs: group and marker.
    let marker = h
        .ecs
        .store()
        .get(&keys::service_region("us-east-1"))
        .await
        .unwrap();
    assert!(marker.is_some());
}

#[tokio::test]
async fn create_service_options_are_recorded_and_shown() {
    let h = Harness::new().await;
    let service = h
        .create(json!({
            "serviceName": "full", "taskDefinition": TD_ARN, "desiredCount": 3,
            "launchType": "EXTERNAL",
            "deploymentConfiguration": {"maximumPercent": 150, "minimumHealthyPercent": 50,
                "deploymentCircuitBreaker": {"enable": true, "rollback": true},
                "alarms": {"alarmNames": [], "enable": false, "rollback": false}},
            "placementConstraints": [{"type": "distinctInstance"},
                {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
            "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"},
                {"type": "binpack", "field": "memory"}],
            "healthCheckGracePeriodSeconds": 30,
            "tags": [{"key": "team", "value": "web"}],
            "propagateTags": "SERVICE", "enableECSManagedTags": true,
            "deploymentController": {"type": "ECS"},
            "enableExecuteCommand": false,
            "availabilityZoneRebalancing": "DISABLED"
        }))
        .await;
    assert_eq!(service["launchType"], "EXTERNAL");
    assert_eq!(service["deployments"][0]["launchType"], "EXTERNAL");
    assert_eq!(
        service["deploymentConfiguration"],
        json!({"deploymentCircuitBreaker": {"enable": true, "rollback": true,
                   "resetOnHealthyTask": true,
                   "thresholdConfiguration": {"type": "BOUNDED_PERCENT", "value": 50}},
               "maximumPercent": 150, "minimumHealthyPercent": 50})
    );
    assert_eq!(service["placementConstraints"].as_array().unwrap().len(), 2);
    assert_eq!(
        service["placementStrategy"][1],
        json!({"type": "binpack", "field": "memory"})
    );
    assert_eq!(service["healthCheckGracePeriodSeconds"], 30);
    assert_eq!(service["propagateTags"], "SERVICE");
    assert_eq!(service["enableECSManagedTags"], true);
    assert_eq!(service["tags"], json!([{"key": "team", "value": "web"}]));

    let daemon = h
        .create(json!({"serviceName": "agentd", "taskDefinition": "web", "schedulingStrategy": "DAEMON"}))
        .await;
    assert_eq!(daemon["schedulingStrategy"], "DAEMON");
    assert_eq!(daemon["desiredCount"], 0);
    assert_eq!(
        daemon["deploymentConfiguration"],
        json!({"deploymentCircuitBreaker": {"enable": false, "rollback": false,
                   "resetOnHealthyTask": true,
                   "thresholdConfiguration": {"type": "BOUNDED_PERCENT", "value": 50}},
               "maximumPercent": 100, "minimumHealthyPercent": 0})
    );
    let daemon_zero = h
        .create(json!({"serviceName": "agentd2", "taskDefinition": "web", "schedulingStrategy": "DAEMON", "desiredCount": 0}))
        .await;
    assert_eq!(daemon_zero["status"], "ACTIVE");
}

#[tokio::test]
async fn create_service_validation() {
    let h = Harness::new().await;
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "fargate-only", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
               "cpu": "256", "memory": "512",
               "containerDefinitions": [{"name": "a", "image": "busybox"}]}),
    )
    .await;
    h.ok(
        "RegisterTaskDefinition",
        json!({"family": "secret", "containerDefinitions": [{"name": "a", "image": "busybox", "memory": 64,
               "secrets": [{"name": "X", "valueFrom": "arn:aws:ssm:us-east-1:000000000000:parameter/x"}]}]}),
    )
    .await;
    h.ok("RegisterTaskDefinition", json!({"family": "gone", "containerDefinitions": [{"name": "a", "image": "busybox", "memory": 64}]})).await;
    h.ok(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "gone:1"}),
    )
    .await;

    let base = json!({"serviceName": "svc", "taskDefinition": "web", "desiredCount": 1});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let invalid = "InvalidParameterException";
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"serviceName": null}), invalid, "serviceName can not be blank."),
        (json!({"serviceName": "bad name"}), invalid, "Invalid service name 'bad name'"),
        (json!({"serviceName": "x".repeat(256)}), invalid, "Invalid service name"),
        (json!({"cluster": "nope"}), "ClusterNotFoundException", "Cluster not found."),
        (json!({"taskDefinition": null}), invalid, "taskDefinition can not be blank."),
        (json!({"taskDefinition": "missing"}), "ClientException", "TaskDefinition not found."),
        (json!({"taskDefinition": "web:9"}), "ClientException", "TaskDefinition not found."),
        (json!({"taskDefinition": "gone:1"}), "ClientException", "TaskDefinition is inactive"),
        (json!({"taskDefinition": "fargate-only"}), invalid, "Task definition does not support launch_type EC2."),
        (json!({"taskDefinition": "secret"}), invalid, "secrets"),
        (json!({"desiredCount": null}), invalid, "desiredCount can not be blank."),
        (json!({"desiredCount": -1}), invalid, "desiredCount must be 0 or greater"),
        (json!({"schedulingStrategy": "DAEMON"}), invalid,
            "The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again"),
        (json!({"schedulingStrategy": "DAEMON", "desiredCount": null, "placementStrategy": [{"type": "random"}]}), invalid,
            "The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again"),
        (json!({"schedulingStrategy": "DAEMON", "desiredCount": null,
                "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}]}), invalid,
            "Specifying a capacity provider strategy is not supported when you create a service using the DAEMON scheduling strategy."),
        (json!({"schedulingStrategy": "DAEMON", "desiredCount": null,
                "deploymentConfiguration": {"maximumPercent": 200}}), invalid, "maximumPercent of 100"),
        (json!({"schedulingStrategy": "SOMETIMES"}), invalid, "schedulingStrategy should be one of"),
        (json!({"launchType": "FARGATE"}), invalid, "Launch type FARGATE is not supported by Berth"),
        (json!({"launchType": "MANAGED_INSTANCES"}), invalid, "Launch type MANAGED_INSTANCES is not supported by Berth"),
        (json!({"capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}]}), invalid, "capacityProviderStrategy is not supported by Berth"),
        (json!({"platformVersion": "LATEST"}), invalid, "The platform version must be null when specifying an EC2 launch type."),
        (json!({"loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/1", "containerName": "web", "containerPort": 80}]}),
            invalid, "The container web did not have a container port 80 defined."),
        (json!({"loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/1", "containerName": "api", "containerPort": 80}]}),
            invalid, "The container api does not exist in the task definition."),
        (json!({"loadBalancers": [{"loadBalancerName": "classic", "containerName": "web", "containerPort": 80}]}),
            invalid, "loadBalancerName names a Classic Load Balancer"),
        (json!({"role": "ecsServiceRole"}), invalid, "The role parameter is only valid for a service that uses load balancers"),
        (json!({"serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-1"}]}), invalid, "serviceRegistries are not supported"),
        (json!({"serviceConnectConfiguration": {"enabled": true, "namespace": "ns"}}), invalid, "Service Connect is not supported"),
        (json!({"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}), invalid, "networkConfiguration is not supported by Berth yet"),
        (json!({"volumeConfigurations": [{"name": "v"}]}), invalid, "volumeConfigurations are not supported"),
        (json!({"vpcLatticeConfigurations": [{"roleArn": "r", "targetGroupArn": "t", "portName": "p"}]}), invalid, "vpcLatticeConfigurations are not supported"),
        (json!({"enableExecuteCommand": true}), invalid, "enableExecuteCommand is not supported by Berth yet."),
        (json!({"deploymentController": {"type": "CODE_DEPLOY"}}), invalid, "The CODE_DEPLOY deployment controller is not supported by Berth"),
        (json!({"deploymentController": {"type": "EXTERNAL"}}), invalid, "The EXTERNAL deployment controller is not supported by Berth"),
        (json!({"availabilityZoneRebalancing": "ENABLED"}), invalid, "availabilityZoneRebalancing ENABLED is not supported"),
        (json!({"deploymentConfiguration": {"alarms": {"alarmNames": ["a"], "enable": true, "rollback": true}}}), invalid, "Deployment alarms"),
        (json!({"deploymentConfiguration": {"strategy": "BLUE_GREEN"}}), invalid, "The BLUE_GREEN deployment strategy is not supported"),
        (json!({"deploymentConfiguration": {"bakeTimeInMinutes": 5}}), invalid, "bakeTimeInMinutes"),
        (json!({"deploymentConfiguration": {"minimumHealthyPercent": 101}}), invalid, "minimumHealthyPercent must be between 0 and 100; 101 was given."),
        (json!({"deploymentConfiguration": {"minimumHealthyPercent": -1}}), invalid, "minimumHealthyPercent must be between 0 and 100"),
        (json!({"deploymentConfiguration": {"maximumPercent": 99, "minimumHealthyPercent": 0}}), invalid, "maximumPercent must be at least 100 for a REPLICA service; 99 was given."),
        (json!({"healthCheckGracePeriodSeconds": -5}), invalid, "healthCheckGracePeriodSeconds must be 0 or greater"),
        (json!({"placementConstraints": [{"type": "memberOf"}]}), invalid, "A memberOf placement constraint requires an expression."),
        (json!({"placementConstraints": [{"type": "memberOf", "expression": "attribute:x =="}]}), invalid, "Invalid expression"),
        (json!({"placementConstraints": vec![json!({"type": "distinctInstance"}); 11]}), invalid, "at most 10 placement constraints"),
        (json!({"placementStrategy": [{"type": "binpack"}]}), invalid, "The binpack placement strategy requires a field"),
        (json!({"placementStrategy": [{"type": "spread", "field": "nowhere"}]}), invalid, "Invalid field 'nowhere' for placement strategy spread"),
        (json!({"placementStrategy": vec![json!({"type": "random"}); 6]}), invalid, "at most 5 placement strategy rules"),
        (json!({"tags": [{"key": "aws:reserved", "value": "x"}]}), invalid, "the aws: prefix is reserved"),
        (json!({"tags": (0..51).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect::<Vec<_>>()}), invalid, "Too many tags"),
        (json!({"propagateTags": "EVERYTHING"}), invalid, "propagateTags should be one of"),
    ];
    for (extra, code, message) in cases {
        let body = with(extra.clone());
        let error = h.err("CreateService", body).await;
        assert_error(&error, code, message);
    }
    // Nothing was written by any of them.
    let listed = h.ok("ListServices", json!({})).await;
    assert_eq!(listed["serviceArns"], json!([]));
    assert_eq!(
        h.ok("DescribeClusters", json!({})).await["clusters"][0]["activeServicesCount"],
        0
    );
}

#[tokio::test]
async fn create_service_is_idempotent_and_names_are_unique_per_cluster() {
    let h = Harness::new().await;
    let request = json!({"serviceName": "api", "taskDefinition": "web", "desiredCount": 1});
    let first = h.create(request.clone()).await;
    // The identical request answers the existing service.
    let again = h.create(request.clone()).await;
    assert_eq!(again["deployments"], first["deployments"]);
    // A different one is refused.
    let e = h
        .err(
            "CreateService",
            json!({"serviceName": "api", "taskDefinition": "web", "desiredCount": 2}),
        )
        .await;
    assert_error(
        &e,
        "InvalidParameterException",
        "Creation of service was not idempotent.",
    );

    // With a client token, a retry answers the service that token created.
    let token = json!({"serviceName": "tok", "taskDefinition": "web", "desiredCount": 1, "clientToken": "abc-123"});
    let created = h.create(token.clone()).await;
    let mut retry = token.clone();
    retry["desiredCount"] = json!(1);
    let retried = h.create(retry).await;
    assert_eq!(
        retried["deployments"][0]["id"],
        created["deployments"][0]["id"]
    );
    // The same token for another name is not a retry.
    let e = h
        .err(
            "CreateService",
            json!({"serviceName": "other", "taskDefinition": "web", "desiredCount": 1, "clientToken": "abc-123"}),
        )
        .await;
    assert_error(
        &e,
        "InvalidParameterException",
        "Creation of service was not idempotent.",
    );

    // The same name in another cluster is another service.
    h.ok("CreateCluster", json!({"clusterName": "second"}))
        .await;
    let other = h
        .create(json!({"cluster": "second", "serviceName": "api", "taskDefinition": "web", "desiredCount": 1}))
        .await;
    assert_eq!(other["serviceArn"], service_arn("second", "api"));

    // A DRAINING service keeps its name taken.
    h.ok("DeleteService", json!({"service": "api", "force": true}))
        .await;
    let e = h
        .err(
            "CreateService",
            json!({"serviceName": "api", "taskDefinition": "web", "desiredCount": 3}),
        )
        .await;
    assert_error(
        &e,
        "InvalidParameterException",
        "Creation of service was not idempotent.",
    );

    // Once INACTIVE, the name can be used again: a new service.
    h.modify("default", "api", |r| {
        r.scheduling.status = deployments::ServiceStatus::Inactive
    })
    .await;
    let recreated = h
        .create(json!({"serviceName": "api", "taskDefinition": "web", "desiredCount": 3}))
        .await;
    assert_eq!(recreated["status"], "ACTIVE");
    assert_eq!(recreated["desiredCount"], 3);
    assert_ne!(
        recreated["deployments"][0]["id"],
        first["deployments"][0]["id"]
    );
}

#[tokio::test]
async fn describe_services_failures_limits_and_inactive() {
    let h = Harness::new().await;
    h.create_web("a", 0).await;
    h.create_web("b", 0).await;
    let r = h
        .ok(
            "DescribeServices",
            json!({"services": ["a", service_arn("default", "b"), "nope"]}),
        )
        .await;
    let names: Vec<&str> = r["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["serviceName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        r["failures"],
        json!([{"arn": service_arn("default", "nope"), "reason": "MISSING"}])
    );
    assert!(
        r["services"][0].get("tags").is_none(),
        "tags only with include TAGS"
    );

    let e = h
        .err(
            "DescribeServices",
            json!({"services": (0..11).map(|i| format!("s{i}")).collect::<Vec<_>>()}),
        )
        .await;
    assert_error(&e, "InvalidParameterException", "at most 10");
    let e = h.err("DescribeServices", json!({})).await;
    assert_error(
        &e,
        "InvalidParameterException",
        "services can not be blank.",
    );
    let e = h
        .err(
            "DescribeServices",
            json!({"services": ["a"], "cluster": "nope"}),
        )
        .await;
    assert_eq!(e.code, "ClusterNotFoundException");
    let e = h
        .err(
            "DescribeServices",
            json!({"services": [service_arn("elsewhere", "a")]}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");

    // INACTIVE services are still described.
    h.modify("default", "a", |r| {
        r.scheduling.status = deployments::ServiceStatus::Inactive
    })
    .await;
    assert_eq!(h.describe("a").await["status"], "INACTIVE");
}

#[tokio::test]
async fn list_services_filters_and_pages() {
    let h = Harness::new().await;
    let mut expected = Vec::new();
    for i in 0..23 {
        let name = format!("svc-{i:02}");
        h.create_web(&name, 0).await;
        expected.push(service_arn("default", &name));
    }
    h.create(json!({"serviceName": "ext", "taskDefinition": "web", "desiredCount": 0, "launchType": "EXTERNAL"}))
        .await;
    h.create(json!({"serviceName": "zz-daemon", "taskDefinition": "web", "schedulingStrategy": "DAEMON"}))
        .await;
    h.create_web("zz-gone", 0).await;
    h.modify("default", "zz-gone", |r| {
        r.scheduling.status = deployments::ServiceStatus::Inactive
    })
    .await;

    // Default page size 10.
    let first = h.ok("ListServices", json!({})).await;
    assert_eq!(first["serviceArns"].as_array().unwrap().len(), 10);
    assert!(first["nextToken"].is_string());

    let mut seen: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body =
            json!({"maxResults": 7, "launchType": "EC2", "schedulingStrategy": "REPLICA"});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = h.ok("ListServices", body).await;
        seen.extend(
            page["serviceArns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string()),
        );
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    let external = h
        .ok("ListServices", json!({"launchType": "EXTERNAL"}))
        .await;
    assert_eq!(
        external["serviceArns"],
        json!([service_arn("default", "ext")])
    );
    let daemons = h
        .ok("ListServices", json!({"schedulingStrategy": "DAEMON"}))
        .await;
    assert_eq!(
        daemons["serviceArns"],
        json!([service_arn("default", "zz-daemon")])
    );
    let all = h.ok("ListServices", json!({"maxResults": 100})).await;
    assert_eq!(
        all["serviceArns"].as_array().unwrap().len(),
        25,
        "INACTIVE ones are not listed"
    );
    assert!(all.get("nextToken").is_none());
    let ecs_managed = h
        .ok("ListServices", json!({"resourceManagementType": "ECS"}))
        .await;
    assert_eq!(ecs_managed["serviceArns"], json!([]));

    for bad in [0, 101] {
        let e = h.err("ListServices", json!({"maxResults": bad})).await;
        assert_eq!(e.code, "InvalidParameterException");
    }
    let e = h.err("ListServices", json!({"nextToken": "garbage"})).await;
    assert_error(&e, "InvalidParameterException", "Invalid nextToken");
    let e = h.err("ListServices", json!({"cluster": "nope"})).await;
    assert_eq!(e.code, "ClusterNotFoundException");
}

#[tokio::test]
async fn update_service_scales_and_starts_deployments() {
    let h = Harness::new().await;
    let created = h.create_web("api", 1).await;
    let first_id = created["deployments"][0]["id"].clone();

    // desiredCount alone keeps the deployment.
    let scaled = h
        .ok(
            "UpdateService",
            json!({"service": "api", "desiredCount": 4}),
        )
        .await["service"]
        .clone();
    assert_eq!(scaled["desiredCount"], 4);
    assert_eq!(scaled["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(scaled["deployments"][0]["id"], first_id);
    assert_eq!(scaled["deployments"][0]["desiredCount"], 4);

    // A new task definition starts a PRIMARY deployment; the old one is ACTIVE.
    h.ok("RegisterTaskDefinition", web()).await;
    let updated = h
        .ok_at(
            1_700_000_060_000,
            "UpdateService",
            json!({"service": service_arn("default", "api"), "taskDefinition": "web"}),
        )
        .await["service"]
        .clone();
    let deployments = updated["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2);
    assert_eq!(deployments[0]["status"], "PRIMARY");
    assert_eq!(deployments[0]["taskDefinition"], TD2_ARN);
    assert_eq!(deployments[0]["desiredCount"], 4);
    assert_ne!(deployments[0]["id"], first_id);
    assert_eq!(deployments[1]["status"], "ACTIVE");
    assert_eq!(deployments[1]["id"], first_id);
    assert_eq!(updated["taskDefinition"], TD2_ARN);

    // The same task definition again changes nothing; forceNewDeployment does.
    let same = h
        .ok(
            "UpdateService",
            json!({"service": "api", "taskDefinition": TD2_ARN}),
        )
        .await["service"]
        .clone();
    assert_eq!(same["deployments"].as_array().unwrap().len(), 2);
    let forced = h
        .ok_at(
            1_700_000_120_000,
            "UpdateService",
            json!({"service": "api", "forceNewDeployment": true}),
        )
        .await["service"]
        .clone();
    assert_eq!(forced["deployments"].as_array().unwrap().len(), 3);
    assert_eq!(forced["deployments"][0]["taskDefinition"], TD2_ARN);

    // The deployment configuration merges with the current one.
    let configured = h
        .ok(
            "UpdateService",
            json!({"service": "api", "deploymentConfiguration": {"minimumHealthyPercent": 50},
                   "healthCheckGracePeriodSeconds": 10, "propagateTags": "TASK_DEFINITION",
                   "enableECSManagedTags": true,
                   "placementStrategy": [{"type": "spread", "field": "instanceId"}],
                   "placementConstraints": [{"type": "distinctInstance"}]}),
        )
        .await["service"]
        .clone();
    assert_eq!(
        configured["deploymentConfiguration"],
        json!({"deploymentCircuitBreaker": {"enable": false, "rollback": false,
                   "resetOnHealthyTask": true,
                   "thresholdConfiguration": {"type": "BOUNDED_PERCENT", "value": 50}},
               "maximumPercent": 200, "minimumHealthyPercent": 50})
    );
    assert_eq!(configured["healthCheckGracePeriodSeconds"], 10);
    assert_eq!(configured["propagateTags"], "TASK_DEFINITION");
    assert_eq!(configured["enableECSManagedTags"], true);
    assert_eq!(
        configured["placementStrategy"],
        json!([{"type": "spread", "field": "instanceId"}])
    );
    assert_eq!(
        configured["placementConstraints"],
        json!([{"type": "distinctInstance"}])
    );
    assert_eq!(configured["deployments"].as_array().unwrap().len(), 3);

    // Refusals.
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"service": "nope"}),
            "ServiceNotFoundException",
            "Service not found.",
        ),
        (
            json!({"service": "api", "cluster": "nope"}),
            "ClusterNotFoundException",
            "Cluster not found.",
        ),
        (
            json!({"service": "api", "desiredCount": -2}),
            "InvalidParameterException",
            "desiredCount must be 0 or greater",
        ),
        (
            json!({"service": "api", "taskDefinition": "missing"}),
            "ClientException",
            "TaskDefinition not found.",
        ),
        (
            json!({"service": "api", "deploymentConfiguration": {"maximumPercent": 40}}),
            "InvalidParameterException",
            "maximumPercent must be at least 100",
        ),
        (
            json!({"service": "api", "loadBalancers": [{"targetGroupArn": "t", "containerName": "web", "containerPort": 80}]}),
            "InvalidParameterException",
            "The container web did not have a container port 80 defined.",
        ),
        (
            json!({"service": "api", "capacityProviderStrategy": [{"capacityProvider": "cp"}]}),
            "InvalidParameterException",
            "capacityProviderStrategy is not supported",
        ),
        (
            json!({"service": "api", "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"]}}}),
            "InvalidParameterException",
            "networkConfiguration is not supported",
        ),
        (
            json!({"service": "api", "enableExecuteCommand": true}),
            "InvalidParameterException",
            "enableExecuteCommand",
        ),
        (
            json!({"service": "api", "deploymentController": {"type": "EXTERNAL"}}),
            "InvalidParameterException",
            "deployment controller",
        ),
        (
            json!({"service": "api", "deploymentConfiguration": {"alarms": {"alarmNames": ["a"], "enable": true, "rollback": false}}}),
            "InvalidParameterException",
            "Deployment alarms",
        ),
        (
            json!({"service": "api", "placementConstraints": [{"type": "memberOf"}]}),
            "InvalidParameterException",
            "requires an expression",
        ),
        (
            json!({}),
            "InvalidParameterException",
            "service can not be blank.",
        ),
    ];
    for (body, code, message) in cases {
        let error = h.err("UpdateService", body).await;
        assert_error(&error, code, message);
    }
    // None of them changed the service.
    let after = h.describe("api").await;
    assert_eq!(after["deployments"], configured["deployments"]);
    assert_eq!(after["desiredCount"], 4);

    // A DAEMON service has no desired count to set.
    h.create(
        json!({"serviceName": "agentd", "taskDefinition": "web", "schedulingStrategy": "DAEMON"}),
    )
    .await;
    let e = h
        .err(
            "UpdateService",
            json!({"service": "agentd", "desiredCount": 2}),
        )
        .await;
    assert_error(
        &e,
        "InvalidParameterException",
        "The daemon scheduling strategy does not support a desired count",
    );
    let e = h
        .err(
            "UpdateService",
            json!({"service": "agentd", "placementStrategy": [{"type": "random"}]}),
        )
        .await;
    assert_error(
        &e,
        "InvalidParameterException",
        "does not support placement strategies",
    );
}

#[tokio::test]
async fn delete_service_drains() {
    let h = Harness::new().await;
    h.create_web("api", 2).await;
    let e = h.err("DeleteService", json!({"service": "api"})).await;
    assert_error(
        &e,
        "InvalidParameterException",
        "The service cannot be stopped while it is scaled above 0.",
    );
    assert_eq!(h.describe("api").await["status"], "ACTIVE");

    let deleted = h
        .ok("DeleteService", json!({"service": "api", "force": true}))
        .await["service"]
        .clone();
    assert_eq!(deleted["status"], "DRAINING");
    assert_eq!(deleted["desiredCount"], 0);
    assert_eq!(deleted["deployments"][0]["desiredCount"], 0);
    // Deleting again answers the draining service.
    let again = h.ok("DeleteService", json!({"service": "api"})).await;
    assert_eq!(again["service"]["status"], "DRAINING");
    // A draining service is not updated.
    let e = h
        .err(
            "UpdateService",
            json!({"service": "api", "desiredCount": 1}),
        )
        .await;
    assert_error(&e, "ServiceNotActiveException", "Service was not ACTIVE.");

    // Scaled to zero first, no force is needed.
    h.create_web("zero", 1).await;
    h.ok(
        "UpdateService",
        json!({"service": "zero", "desiredCount": 0}),
    )
    .await;
    let deleted = h.ok("DeleteService", json!({"service": "zero"})).await;
    assert_eq!(deleted["service"]["status"], "DRAINING");
    // A daemon service needs no force either.
    h.create(
        json!({"serviceName": "agentd", "taskDefinition": "web", "schedulingStrategy": "DAEMON"}),
    )
    .await;
    h.modify("default", "agentd", |r| r.scheduling.desired_count = 3)
        .await;
    let deleted = h.ok("DeleteService", json!({"service": "agentd"})).await;
    assert_eq!(deleted["service"]["status"], "DRAINING");

    let e = h.err("DeleteService", json!({"service": "nope"})).await;
    assert_error(&e, "ServiceNotFoundException", "Service not found.");
    h.modify("default", "zero", |r| {
        r.scheduling.status = deployments::ServiceStatus::Inactive
    })
    .await;
    let e = h.err("DeleteService", json!({"service": "zero"})).await;
    assert_eq!(e.code, "ServiceNotFoundException");
    let e = h
        .err(
            "UpdateService",
            json!({"service": "zero", "desiredCount": 1}),
        )
        .await;
    assert_eq!(e.code, "ServiceNotActiveException");
}

#[tokio::test]
async fn services_count_in_the_cluster_and_keep_it_from_deletion() {
    let h = Harness::new().await;
    h.ok("CreateCluster", json!({"clusterName": "busy"})).await;
    h.create(
        json!({"cluster": "busy", "serviceName": "a", "taskDefinition": "web", "desiredCount": 0}),
    )
    .await;
    h.create(
        json!({"cluster": "busy", "serviceName": "b", "taskDefinition": "web", "desiredCount": 0}),
    )
    .await;
    let cluster = h
        .ok(
            "DescribeClusters",
            json!({"clusters": ["busy"], "include": ["STATISTICS"]}),
        )
        .await["clusters"][0]
        .clone();
    assert_eq!(cluster["activeServicesCount"], 2);

    let e = h.err("DeleteCluster", json!({"cluster": "busy"})).await;
    assert_error(
        &e,
        "ClusterContainsServicesException",
        "The Cluster cannot be deleted while Services are active.",
    );
    h.ok("DeleteService", json!({"cluster": "busy", "service": "a"}))
        .await;
    h.ok("DeleteService", json!({"cluster": "busy", "service": "b"}))
        .await;
    let cluster = h
        .ok(
            "DescribeClusters",
            json!({"clusters": ["busy"], "include": ["STATISTICS"]}),
        )
        .await["clusters"][0]
        .clone();
    assert_eq!(cluster["activeServicesCount"], 0);
    let draining = cluster["statistics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "drainingEC2ServiceCount")
        .unwrap()["value"]
        .clone();
    assert_eq!(draining, "2");
    // DRAINING services still hold the cluster.
    let e = h.err("DeleteCluster", json!({"cluster": "busy"})).await;
    assert_eq!(e.code, "ClusterContainsServicesException");
    for name in ["a", "b"] {
        h.modify("busy", name, |r| {
            r.scheduling.status = deployments::ServiceStatus::Inactive
        })
        .await;
    }
    let deleted = h.ok("DeleteCluster", json!({"cluster": "busy"})).await;
    assert_eq!(deleted["cluster"]["status"], "INACTIVE");
    // Services of a deleted cluster cannot be created.
    let e = h
        .err(
            "CreateService",
            json!({"cluster": "busy", "serviceName": "c", "taskDefinition": "web", "desiredCount": 0}),
        )
        .await;
    assert_eq!(e.code, "ClusterNotFoundException");
}

#[tokio::test]
async fn service_tags() {
    let h = Harness::new().await;
    h.create(
        json!({"serviceName": "api", "taskDefinition": "web", "desiredCount": 0,
                    "tags": [{"key": "a", "value": "1"}]}),
    )
    .await;
    let arn = service_arn("default", "api");
    h.ok(
        "TagResource",
        json!({"resourceArn": arn, "tags": [{"key": "b", "value": "2"}, {"key": "a", "value": "3"}]}),
    )
    .await;
    let tags = h
        .ok("ListTagsForResource", json!({"resourceArn": arn}))
        .await["tags"]
        .clone();
    assert_eq!(
        tags,
        json!([{"key": "a", "value": "3"}, {"key": "b", "value": "2"}])
    );
    h.ok(
        "UntagResource",
        json!({"resourceArn": arn, "tagKeys": ["a"]}),
    )
    .await;
    assert_eq!(
        h.describe("api").await["tags"],
        json!([{"key": "b", "value": "2"}])
    );
    let e = h
        .err(
            "TagResource",
            json!({"resourceArn": service_arn("default", "nope"), "tags": [{"key": "b", "value": "2"}]}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    let e = h
        .err(
            "TagResource",
            json!({"resourceArn": arn, "tags": [{"key": "aws:x", "value": "2"}]}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
}

#[tokio::test]
async fn service_deployments_and_revisions() {
    let h = Harness::new().await;
    let created = h.create_web("api", 1).await;
    let first = created["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.ok("RegisterTaskDefinition", web()).await;
    let updated = h
        .ok_at(
            1_700_000_060_000,
            "UpdateService",
            json!({"service": "api", "taskDefinition": "web:2"}),
        )
        .await["service"]
        .clone();
    let second = updated["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = |id: &str| id.strip_prefix("ecs-svc/").unwrap().to_string();
    let deployment_arn = |id: &str| {
        format!(
            "arn:aws:ecs:us-east-1:000000000000:service-deployment/default/api/{}",
            key(id)
        )
    };
    let revision_arn = |id: &str| {
        format!(
            "arn:aws:ecs:us-east-1:000000000000:service-revision/default/api/{}",
            key(id)
        )
    };

    let listed = h
        .ok("ListServiceDeployments", json!({"service": "api"}))
        .await;
    let briefs = listed["serviceDeployments"].as_array().unwrap();
    assert_eq!(briefs.len(), 2);
    assert_eq!(briefs[0]["serviceDeploymentArn"], deployment_arn(&second));
    assert_eq!(briefs[0]["status"], "IN_PROGRESS");
    assert_eq!(briefs[0]["targetServiceRevisionArn"], revision_arn(&second));
    assert_eq!(briefs[0]["serviceArn"], service_arn("default", "api"));
    assert_eq!(briefs[0]["createdAt"], 1_700_000_060.0);
    assert_eq!(briefs[1]["serviceDeploymentArn"], deployment_arn(&first));
    assert_eq!(briefs[1]["status"], "STOPPED");

    // Filters and pages.
    let stopped = h
        .ok(
            "ListServiceDeployments",
            json!({"service": "api", "status": ["STOPPED"]}),
        )
        .await;
    assert_eq!(stopped["serviceDeployments"].as_array().unwrap().len(), 1);
    let recent = h
        .ok(
            "ListServiceDeployments",
            json!({"service": "api", "createdAt": {"after": 1_700_000_030.0}}),
        )
        .await;
    assert_eq!(
        recent["serviceDeployments"][0]["serviceDeploymentArn"],
        deployment_arn(&second)
    );
    assert_eq!(recent["serviceDeployments"].as_array().unwrap().len(), 1);
    let page = h
        .ok(
            "ListServiceDeployments",
            json!({"service": "api", "maxResults": 1}),
        )
        .await;
    assert_eq!(page["serviceDeployments"].as_array().unwrap().len(), 1);
    let rest = h
        .ok(
            "ListServiceDeployments",
            json!({"service": "api", "maxResults": 1, "nextToken": page["nextToken"]}),
        )
        .await;
    assert_eq!(
        rest["serviceDeployments"][0]["serviceDeploymentArn"],
        deployment_arn(&first)
    );
    assert!(rest.get("nextToken").is_none());
    let e = h
        .err("ListServiceDeployments", json!({"service": "nope"}))
        .await;
    assert_eq!(e.code, "ServiceNotFoundException");

    let described = h
        .ok(
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": [deployment_arn(&second), deployment_arn("ecs-svc/1234567890123456789")]}),
        )
        .await;
    let deployment = &described["serviceDeployments"][0];
    assert_eq!(deployment["status"], "IN_PROGRESS");
    assert_eq!(
        deployment["targetServiceRevision"],
        json!({"arn": revision_arn(&second), "requestedTaskCount": 1, "runningTaskCount": 0, "pendingTaskCount": 0})
    );
    assert_eq!(
        deployment["sourceServiceRevisions"][0]["arn"],
        revision_arn(&first)
    );
    assert_eq!(
        deployment["deploymentCircuitBreaker"],
        json!({"status": "DISABLED", "failureCount": 0, "threshold": 3})
    );
    assert_eq!(
        described["failures"],
        json!([{"arn": deployment_arn("ecs-svc/1234567890123456789"), "reason": "MISSING"}])
    );

    let revisions = h
        .ok(
            "DescribeServiceRevisions",
            json!({"serviceRevisionArns": [revision_arn(&first), revision_arn(&second)]}),
        )
        .await;
    let revisions_list = revisions["serviceRevisions"].as_array().unwrap();
    assert_eq!(revisions_list[0]["taskDefinition"], TD_ARN);
    assert_eq!(revisions_list[1]["taskDefinition"], TD2_ARN);
    assert_eq!(revisions_list[1]["launchType"], "EC2");
    assert_eq!(
        revisions_list[1]["clusterArn"],
        "arn:aws:ecs:us-east-1:000000000000:cluster/default"
    );
    assert_eq!(
        revisions_list[1]["containerImages"],
        json!([{"containerName": "web", "image": "busybox"}])
    );
    assert_eq!(revisions["failures"], json!([]));

    for (op, member) in [
        ("DescribeServiceDeployments", "serviceDeploymentArns"),
        ("DescribeServiceRevisions", "serviceRevisionArns"),
    ] {
        let e = h.err(op, json!({member: []})).await;
        assert_eq!(e.code, "InvalidParameterException");
        let too_many: Vec<String> = (0..21).map(|_| deployment_arn(&first)).collect();
        let e = h.err(op, json!({member: too_many})).await;
        assert_error(&e, "InvalidParameterException", "at most 20");
        let e = h.err(op, json!({member: ["not-an-arn"]})).await;
        assert_eq!(e.code, "InvalidParameterException");
    }
}

/// The ServiceDeployment status of each way a deployment can end.
#[test]
fn service_deployment_status_mapping() {
    use deployments::{
        DeploymentConfiguration, DeploymentOutcome, NewService, SchedulingStrategy, Service,
        ServiceUpdate,
    };
    let mut config = DeploymentConfiguration::default_for(SchedulingStrategy::Replica);
    config.circuit_breaker.enable = true;
    config.circuit_breaker.rollback = true;
    let new_service = || {
        Service::new(
            NewService {
                service_name: "web".into(),
                scheduling_strategy: SchedulingStrategy::Replica,
                desired_count: 2,
                deployment_configuration: config,
                health_check_grace_period_ms: 0,
                task_definition_arn: "td:1".into(),
            },
            "ecs-svc/1000000000000000001".into(),
            10,
        )
    };
    let status_of = |service: &Service, id: &str| -> String {
        let deployment = service.all_deployments().find(|d| d.id == id).unwrap();
        services::service_deployment_status(service, deployment)
            .as_str()
            .to_string()
    };
    let mut service = new_service();
    assert_eq!(
        status_of(&service, "ecs-svc/1000000000000000001"),
        "IN_PROGRESS"
    );
    service.primary_mut().outcome = Some(DeploymentOutcome::Successful);
    assert_eq!(
        status_of(&service, "ecs-svc/1000000000000000001"),
        "SUCCESSFUL"
    );

    // A failed deployment with a rollback deployment started for it.
    service.update(
        ServiceUpdate {
            task_definition_arn: Some("td:2".into()),
            ..ServiceUpdate::default()
        },
        "ecs-svc/1000000000000000002".into(),
        20,
    );
    assert_eq!(
        status_of(&service, "ecs-svc/1000000000000000002"),
        "IN_PROGRESS"
    );
    service.primary_mut().outcome = Some(DeploymentOutcome::Failed);
    assert_eq!(
        status_of(&service, "ecs-svc/1000000000000000002"),
        "ROLLBACK_FAILED",
        "rollback enabled but none started: stalled"
    );
    service.update(
        ServiceUpdate {
            task_definition_arn: Some("td:1".into()),
            ..ServiceUpdate::default()
        },
        "ecs-svc/1000000000000000003".into(),
        30,
    );
    service.primary_mut().rollback_of = Some("ecs-svc/1000000000000000002".into());
    service.primary_mut().outcome = None;
    assert_eq!(
        status_of(&service, "ecs-svc/1000000000000000002"),
        "ROLLBACK_IN_PROGRESS"
    );
    service.primary_mut().outcome = Some(DeploymentOutcome::Successful);
    assert_eq!(
        status_of(&service, "ecs-svc/1000000000000000002"),
        "ROLLBACK_SUCCESSFUL"
    );
    service.primary_mut().outcome = Some(DeploymentOutcome::Failed);
    assert_eq!(
        status_of(&service, "ecs-svc/1000000000000000002"),
        "ROLLBACK_FAILED"
    );

    // Failed without rollback: STOPPED.
    let mut service = new_service();
    service
        .primary_mut()
        .deployment_configuration
        .circuit_breaker
        .rollback = false;
    service.primary_mut().outcome = Some(DeploymentOutcome::Failed);
    assert_eq!(
        status_of(&service, "ecs-svc/1000000000000000001"),
        "STOPPED"
    );
    // Deleted while in progress: STOPPED.
    let mut service = new_service();
    service.delete(40);
    assert_eq!(
        status_of(&service, "ecs-svc/1000000000000000001"),
        "STOPPED"
    );
}

#[test]
fn deployment_configuration_merging() {
    use deployments::{DeploymentConfiguration, SchedulingStrategy};
    let replica = DeploymentConfiguration::default_for(SchedulingStrategy::Replica);
    let check = |wire: Value,
                 strategy: SchedulingStrategy,
                 expected: Result<(u32, u32, bool), &str>| {
        let wire: ecs_wire::DeploymentConfiguration = serde_json::from_value(wire.clone()).unwrap();
        let base = DeploymentConfiguration::default_for(strategy);
        let got = services::merge_deployment_configuration(Some(&wire), base, strategy);
        match (got, expected) {
            (Ok(c), Ok((min, max, breaker))) => {
                assert_eq!(
                    (
                        c.minimum_healthy_percent,
                        c.maximum_percent,
                        c.circuit_breaker.enable
                    ),
                    (min, max, breaker),
                    "{wire:?}"
                )
            }
            (Err(e), Err(message)) => assert!(e.message.contains(message), "{e}"),
            (got, expected) => panic!("{wire:?}: got {got:?}, expected {expected:?}"),
        }
    };
    let r = SchedulingStrategy::Replica;
    let d = SchedulingStrategy::Daemon;
    check(json!({}), r, Ok((100, 200, false)));
    check(
        json!({"minimumHealthyPercent": 0, "maximumPercent": 100}),
        r,
        Ok((0, 100, false)),
    );
    check(json!({"maximumPercent": 300}), r, Ok((100, 300, false)));
    check(
        json!({"deploymentCircuitBreaker": {"enable": true}}),
        r,
        Ok((100, 200, true)),
    );
    check(
        json!({"minimumHealthyPercent": 100, "maximumPercent": 100}),
        r,
        Ok((100, 100, false)),
    );
    check(json!({"maximumPercent": 99}), r, Err("at least 100"));
    check(
        json!({"minimumHealthyPercent": 150}),
        r,
        Err("between 0 and 100"),
    );
    check(
        json!({"minimumHealthyPercent": 50}),
        d,
        Ok((50, 100, false)),
    );
    check(json!({"maximumPercent": 100}), d, Ok((0, 100, false)));
    check(
        json!({"maximumPercent": 150}),
        d,
        Err("maximumPercent of 100"),
    );
    check(json!({"strategy": "ROLLING"}), r, Ok((100, 200, false)));
    check(
        json!({"strategy": "CANARY"}),
        r,
        Err("CANARY deployment strategy"),
    );
    assert_eq!(
        services::merge_deployment_configuration(None, replica, r).unwrap(),
        replica
    );
}

#[test]
fn deployment_ids_look_like_ecs_ones() {
    let ids: std::collections::BTreeSet<String> =
        (0..200).map(|_| services::new_deployment_id()).collect();
    assert_eq!(ids.len(), 200);
    for id in &ids {
        let digits = id.strip_prefix("ecs-svc/").unwrap();
        assert_eq!(digits.len(), 19);
        assert!(!digits.starts_with('0'));
        assert!(digits.parse::<i64>().is_ok());
        assert_eq!(services::deployment_key(id), digits);
    }
}
