//! Container instances and tasks against the in-memory store: placement,
//! exact resource accounting, the task lifecycle as agents report it.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::test_support;

fn ctx() -> crate::RequestContext {
    test_support::ctx("us-east-1")
}

/// The shared harness with cluster `default` created, plus instance helpers.
struct Harness(test_support::Harness);

impl std::ops::Deref for Harness {
    type Target = test_support::Harness;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Harness {
    async fn new() -> Self {
        let h = Harness(test_support::Harness::new());
        h.ok("CreateCluster", json!({})).await;
        h
    }
    async fn register_instance(&self, cpu: i32, memory: i32, az: &str) -> String {
        let r = self
            .ok(
                "RegisterContainerInstance",
                json!({
                    "totalResources": [
                        {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
                        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["4566"]},
                        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []}
                    ],
                    "versionInfo": {"agentVersion": "0.1.0", "dockerVersion": "20.10"},
                    "attributes": [{"name": "ecs.availability-zone", "value": az}, {"name": "ecs.os-type", "value": "linux"}]
                }),
            )
            .await;
        r["containerInstance"]["containerInstanceArn"]
            .as_str()
            .unwrap()
            .to_string()
    }
    async fn instance(&self, arn: &str) -> Value {
        self.ok(
            "DescribeContainerInstances",
            json!({"containerInstances": [arn]}),
        )
        .await["containerInstances"][0]
            .clone()
    }
}

fn remaining(instance: &Value, name: &str) -> Value {
    let r = instance["remainingResources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap();
    if r["type"] == "INTEGER" {
        r["integerValue"].clone()
    } else {
        r["stringSetValue"].clone()
    }
}

fn web(host_port: i32) -> Value {
    json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "busybox", "cpu": 256, "memory": 128,
        "portMappings": [{"containerPort": 80, "hostPort": host_port}]}]})
}

#[tokio::test]
async fn register_describe_and_list_instances() {
    let h = Harness::new().await;
    let arn = h.register_instance(2048, 4000, "zone-a").await;
    assert!(arn.starts_with("arn:aws:ecs:us-east-1:000000000000:container-instance/default/"));
    let instance = h.instance(&arn).await;
    assert_eq!(instance["status"], "ACTIVE");
    assert_eq!(instance["agentConnected"], true);
    assert_eq!(remaining(&instance, "CPU"), 2048);
    assert_eq!(
        remaining(&instance, "PORTS"),
        json!(["22", "2375", "2376", "4566", "51678", "51679"])
    );
    assert!(instance["ec2InstanceId"]
        .as_str()
        .unwrap()
        .starts_with("i-"));

    // Re-registering with the ARN keeps the identity.
    let again = h
        .ok(
            "RegisterContainerInstance",
            json!({"containerInstanceArn": arn, "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 4000}]}),
        )
        .await;
    assert_eq!(again["containerInstance"]["containerInstanceArn"], arn);
    assert_eq!(remaining(&again["containerInstance"], "CPU"), 4096);

    let second = h.register_instance(1024, 2000, "zone-b").await;
    let listed = h
        .ok(
            "ListContainerInstances",
            json!({"filter": "attribute:ecs.availability-zone == zone-b"}),
        )
        .await;
    assert_eq!(listed["containerInstanceArns"], json!([second]));
    let e = h
        .err(
            "ListContainerInstances",
            json!({"filter": "attribute:ecs.availability-zone === zone-b"}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");

    h.ok(
        "UpdateContainerInstancesState",
        json!({"containerInstances": [second], "status": "DRAINING"}),
    )
    .await;
    let draining = h
        .ok("ListContainerInstances", json!({"status": "DRAINING"}))
        .await;
    assert_eq!(draining["containerInstanceArns"], json!([second]));

    h.ok(
        "PutAttributes",
        json!({"attributes": [{"name": "stack", "value": "prod", "targetId": arn}]}),
    )
    .await;
    let attrs = h
        .ok(
            "ListAttributes",
            json!({"targetType": "container-instance", "attributeName": "stack"}),
        )
        .await;
    assert_eq!(attrs["attributes"][0]["value"], "prod");
    h.ok(
        "DeleteAttributes",
        json!({"attributes": [{"name": "stack", "targetId": arn}]}),
    )
    .await;
    let attrs = h
        .ok(
            "ListAttributes",
            json!({"targetType": "container-instance", "attributeName": "stack"}),
        )
        .await;
    assert_eq!(attrs["attributes"], json!([]));

    let described = h.ok("DescribeClusters", json!({})).await;
    assert_eq!(
        described["clusters"][0]["registeredContainerInstancesCount"],
        2
    );
    assert_eq!(
        h.err("DeleteCluster", json!({"cluster": "default"}))
            .await
            .code,
        "ClusterContainsContainerInstancesException"
    );

    let gone = h
        .ok(
            "DeregisterContainerInstance",
            json!({"containerInstance": second}),
        )
        .await;
    assert_eq!(gone["containerInstance"]["status"], "INACTIVE");
    let version = gone["containerInstance"]["version"].clone();
    let refused = h
        .ok(
            "UpdateContainerInstancesState",
            json!({"containerInstances": [second], "status": "ACTIVE"}),
        )
        .await;
    assert_eq!(refused["containerInstances"], json!([]));
    assert_eq!(refused["failures"][0]["reason"], "INACTIVE");
    let again = h
        .ok(
            "DeregisterContainerInstance",
            json!({"containerInstance": second}),
        )
        .await;
    assert_eq!(
        again["containerInstance"]["version"], version,
        "a no-op writes nothing"
    );
    assert_eq!(
        h.ok("ListContainerInstances", json!({})).await["containerInstanceArns"],
        json!([arn])
    );
}

#[tokio::test]
async fn run_task_places_reserves_and_releases() {
    let h = Harness::new().await;
    let arn = h.register_instance(1024, 1000, "zone-a").await;
    h.ok("RegisterTaskDefinition", web(8080)).await;

    let run = h
        .ok(
            "RunTask",
            json!({"taskDefinition": "web", "startedBy": "me"}),
        )
        .await;
    assert_eq!(run["failures"], json!([]));
    let task = &run["tasks"][0];
    assert_eq!(task["lastStatus"], "PROVISIONING");
    assert_eq!(task["desiredStatus"], "RUNNING");
    assert_eq!(task["containerInstanceArn"], arn);
    assert_eq!(task["group"], "family:web");
    assert_eq!(task["cpu"], "256");
    assert_eq!(task["memory"], "128");
    assert_eq!(task["availabilityZone"], "zone-a");
    assert_eq!(task["version"], 1);
    let task_arn = task["taskArn"].as_str().unwrap().to_string();

    let instance = h.instance(&arn).await;
    assert_eq!(remaining(&instance, "CPU"), 768);
    assert_eq!(remaining(&instance, "MEMORY"), 872);
    assert!(remaining(&instance, "PORTS")
        .as_array()
        .unwrap()
        .contains(&json!("8080")));
    assert_eq!(instance["pendingTasksCount"], 1);

    // The same static port cannot be placed twice on one instance.
    let clash = h.ok("RunTask", json!({"taskDefinition": "web"})).await;
    assert_eq!(clash["tasks"], json!([]));
    assert_eq!(
        clash["failures"],
        json!([{"arn": arn, "reason": "RESOURCE:PORTS"}])
    );

    // The agent reports progress.
    h.ok("SubmitTaskStateChange", json!({"task": task_arn, "status": "PENDING", "pullStartedAt": 1_700_000_000.5, "pullStoppedAt": 1_700_000_001.0})).await;
    h.ok(
        "SubmitTaskStateChange",
        json!({"task": task_arn, "status": "RUNNING", "containers": [
            {"containerName": "web", "runtimeId": "abc123", "status": "RUNNING",
             "networkBindings": [{"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 8080, "protocol": "tcp"}],
             "healthStatus": "HEALTHY"}]}),
    )
    .await;
    // A stale report is ignored.
    h.ok(
        "SubmitTaskStateChange",
        json!({"task": task_arn, "status": "PENDING"}),
    )
    .await;
    let described = h.ok("DescribeTasks", json!({"tasks": [task_arn]})).await;
    let t = &described["tasks"][0];
    assert_eq!(t["lastStatus"], "RUNNING");
    assert_eq!(t["containers"][0]["runtimeId"], "abc123");
    assert_eq!(t["containers"][0]["networkBindings"][0]["hostPort"], 8080);
    assert_eq!(t["containers"][0]["healthStatus"], "HEALTHY");
    assert_eq!(t["pullStartedAt"], 1_700_000_000.5);
    assert!(t["startedAt"].is_number());
    assert_eq!(t["version"], 3);
    assert_eq!(h.instance(&arn).await["runningTasksCount"], 1);
    assert_eq!(
        h.ok("DescribeClusters", json!({})).await["clusters"][0]["runningTasksCount"],
        1
    );

    // StopTask: desired STOPPED; the agent then reports STOPPED, which frees the resources.
    let stopped = h
        .ok("StopTask", json!({"task": task_arn, "reason": "done"}))
        .await;
    assert_eq!(stopped["task"]["desiredStatus"], "STOPPED");
    assert_eq!(stopped["task"]["stopCode"], "UserInitiated");
    assert_eq!(stopped["task"]["stoppedReason"], "done");
    h.ok(
        "SubmitTaskStateChange",
        json!({"task": task_arn, "status": "STOPPED", "containers": [
        {"containerName": "web", "status": "STOPPED", "exitCode": 143}]}),
    )
    .await;
    let t = &h.ok("DescribeTasks", json!({"tasks": [task_arn]})).await["tasks"][0];
    assert_eq!(t["lastStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["containers"][0]["exitCode"], 143);
    let instance = h.instance(&arn).await;
    assert_eq!(remaining(&instance, "CPU"), 1024);
    assert_eq!(remaining(&instance, "MEMORY"), 1000);
    assert!(!remaining(&instance, "PORTS")
        .as_array()
        .unwrap()
        .contains(&json!("8080")));
    assert_eq!(instance["runningTasksCount"], 0);

    let running = h.ok("ListTasks", json!({})).await;
    assert_eq!(running["taskArns"], json!([]));
    let stopped = h
        .ok(
            "ListTasks",
            json!({"desiredStatus": "STOPPED", "startedBy": "me"}),
        )
        .await;
    assert_eq!(stopped["taskArns"], json!([task_arn]));
}

#[tokio::test]
async fn essential_exit_and_failure_to_start() {
    let h = Harness::new().await;
    h.register_instance(4096, 4000, "zone-a").await;
    h.ok("RegisterTaskDefinition", web(0)).await;
    let run = h
        .ok("RunTask", json!({"taskDefinition": "web", "count": 2}))
        .await;
    let first = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let second = run["tasks"][1]["taskArn"].as_str().unwrap().to_string();

    h.ok(
        "SubmitTaskStateChange",
        json!({"task": first, "status": "RUNNING"}),
    )
    .await;
    h.ok("SubmitTaskStateChange", json!({"task": first, "status": "STOPPED", "containers": [{"containerName": "web", "status": "STOPPED", "exitCode": 1}]})).await;
    let t = &h.ok("DescribeTasks", json!({"tasks": [first]})).await["tasks"][0];
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(t["stoppedReason"], "Essential container in task exited");
    assert_eq!(t["desiredStatus"], "STOPPED");

    h.ok("SubmitTaskStateChange", json!({"task": second, "status": "STOPPED", "reason": "CannotPullContainerError: no such image",
        "containers": [{"containerName": "web", "status": "STOPPED", "reason": "CannotPullContainerError: no such image"}]})).await;
    let t = &h.ok("DescribeTasks", json!({"tasks": [second]})).await["tasks"][0];
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert_eq!(
        t["stoppedReason"],
        "CannotPullContainerError: no such image"
    );
    assert_eq!(
        t["containers"][0]["reason"],
        "CannotPullContainerError: no such image"
    );
}

#[tokio::test]
async fn placement_failures_and_validation() {
    let h = Harness::new().await;
    h.ok("RegisterTaskDefinition", web(0)).await;
    let e = h.err("RunTask", json!({"taskDefinition": "web"})).await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            "InvalidParameterException",
            "No Container Instances were found in your cluster."
        )
    );
    let arn = h.register_instance(128, 100, "zone-a").await;
    let run = h.ok("RunTask", json!({"taskDefinition": "web"})).await;
    assert_eq!(
        run["failures"],
        json!([{"arn": arn, "reason": "RESOURCE:CPU"}])
    );
    assert_eq!(
        h.err("RunTask", json!({"taskDefinition": "web", "count": 11}))
            .await
            .code,
        "InvalidParameterException"
    );
    assert_eq!(
        h.err("RunTask", json!({"taskDefinition": "nope"}))
            .await
            .message,
        "TaskDefinition not found."
    );
    assert_eq!(
        h.err(
            "RunTask",
            json!({"taskDefinition": "web", "launchType": "FARGATE"})
        )
        .await
        .code,
        "InvalidParameterException"
    );
    let e = h.err("RunTask", json!({"taskDefinition": "web", "placementConstraints": [{"type": "memberOf", "expression": "attribute:x =="}]})).await;
    assert_eq!(e.code, "InvalidParameterException");
    assert!(e.message.contains("position"), "{}", e.message);
    let constrained = h.ok("RunTask", json!({"taskDefinition": "web", "overrides": {"containerOverrides": [{"name": "web", "cpu": 64, "memory": 64}]},
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone == zone-z"}]})).await;
    assert_eq!(
        constrained["failures"][0]["reason"],
        "MemberOf placement constraint unsatisfied."
    );
    h.ok("RegisterTaskDefinition", json!({"family": "logs", "containerDefinitions": [{"name": "a", "image": "i", "memory": 8,
        "logConfiguration": {"logDriver": "splunk", "options": {"splunk-token": "t", "splunk-url": "https://splunk.example"}}}]})).await;
    let e = h.err("RunTask", json!({"taskDefinition": "logs"})).await;
    assert!(e.message.contains("splunk log driver"), "{}", e.message);
    // Nothing was placed by any failure.
    assert_eq!(h.ok("ListTasks", json!({})).await["taskArns"], json!([]));
}

#[tokio::test]
async fn client_token_makes_run_task_idempotent() {
    let h = Harness::new().await;
    h.register_instance(4096, 4000, "zone-a").await;
    h.ok("RegisterTaskDefinition", web(0)).await;
    let first = h
        .ok(
            "RunTask",
            json!({"taskDefinition": "web", "count": 2, "clientToken": "abc"}),
        )
        .await;
    let again = h
        .ok(
            "RunTask",
            json!({"taskDefinition": "web", "count": 2, "clientToken": "abc"}),
        )
        .await;
    let arns = |v: &Value| {
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["taskArn"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(arns(&first), arns(&again));
    assert_eq!(
        h.ok("ListTasks", json!({})).await["taskArns"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn concurrent_run_tasks_never_overcommit() {
    let h = Arc::new(Harness::new().await);
    let arn = h.register_instance(1024, 10_000, "zone-a").await;
    h.ok("RegisterTaskDefinition", web(0)).await;
    let mut handles = Vec::new();
    for _ in 0..12 {
        let h = h.clone();
        handles.push(tokio::spawn(async move {
            h.ok("RunTask", json!({"taskDefinition": "web"})).await["tasks"]
                .as_array()
                .unwrap()
                .len()
        }));
    }
    let mut placed = 0;
    for handle in handles {
        placed += handle.await.unwrap();
    }
    assert_eq!(placed, 4, "1024 CPU units fit four 256-unit tasks");
    assert_eq!(remaining(&h.instance(&arn).await, "CPU"), 0);
}

#[tokio::test]
async fn agent_sees_its_desired_tasks() {
    let h = Harness::new().await;
    let arn = h.register_instance(4096, 4000, "zone-a").await;
    let id = arn.rsplit('/').next().unwrap().to_string();
    h.ok("RegisterTaskDefinition", web(0)).await;
    let run = h.ok("RunTask", json!({"taskDefinition": "web"})).await;
    let (_, desired) = h
        .ecs
        .agent_desired_tasks(&ctx(), "default", &id)
        .await
        .unwrap();
    assert_eq!(desired.len(), 1);
    assert_eq!(
        desired[0].task_arn,
        run["tasks"][0]["taskArn"].as_str().unwrap()
    );
    assert_eq!(desired[0].task_definition.family.as_deref(), Some("web"));
    let (_, other) = h
        .ecs
        .agent_desired_tasks(&ctx(), "default", "someone-else")
        .await
        .unwrap();
    assert!(other.is_empty());
    let task_arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    h.ok("StopTask", json!({"task": task_arn})).await;
    let (_, desired) = h
        .ecs
        .agent_desired_tasks(&ctx(), "default", &id)
        .await
        .unwrap();
    assert_eq!(
        desired[0].desired_status,
        model::task::DesiredStatus::Stopped
    );
    h.ok(
        "SubmitTaskStateChange",
        json!({"task": task_arn, "status": "STOPPED"}),
    )
    .await;
    let (_, desired) = h
        .ecs
        .agent_desired_tasks(&ctx(), "default", &id)
        .await
        .unwrap();
    assert!(desired.is_empty());
}

#[tokio::test]
async fn stopped_tasks_are_kept_for_the_retention_then_reaped() {
    let h = Harness::new().await;
    h.register_instance(4096, 4000, "zone-a").await;
    h.ok("RegisterTaskDefinition", web(0)).await;
    let run = h
        .ok("RunTask", json!({"taskDefinition": "web", "count": 2}))
        .await;
    let stopped = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let running = run["tasks"][1]["taskArn"].as_str().unwrap().to_string();
    h.ok(
        "SubmitTaskStateChange",
        json!({"task": stopped, "status": "STOPPED"}),
    )
    .await;
    let retention = h.ecs.config().stopped_task_retention_ms;
    let stopped_at = ctx().now_ms;
    assert_eq!(
        h.ecs
            .reap_stopped_tasks(stopped_at + retention)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        h.ecs
            .reap_stopped_tasks(stopped_at + retention + 1)
            .await
            .unwrap(),
        1
    );
    let described = h
        .ok("DescribeTasks", json!({"tasks": [stopped, running]}))
        .await;
    assert_eq!(described["tasks"][0]["taskArn"], running);
    assert_eq!(described["failures"][0]["reason"], "MISSING");
}

#[tokio::test]
async fn distinct_instance_uses_the_groups_kept_on_instances() {
    let h = Harness::new().await;
    h.register_instance(4096, 4000, "zone-a").await;
    h.register_instance(4096, 4000, "zone-b").await;
    h.ok("RegisterTaskDefinition", web(0)).await;
    let run = h
        .ok("RunTask", json!({"taskDefinition": "web", "count": 3, "group": "batch", "placementConstraints": [{"type": "distinctInstance"}]}))
        .await;
    let tasks = run["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2);
    assert_ne!(
        tasks[0]["containerInstanceArn"],
        tasks[1]["containerInstanceArn"]
    );
    assert_eq!(run["failures"].as_array().unwrap().len(), 2, "{run}");
    assert_eq!(
        run["failures"][0]["reason"],
        "DistinctInstance placement constraint unsatisfied."
    );
    // Once one stops, its instance can take the group again.
    h.ok(
        "SubmitTaskStateChange",
        json!({"task": tasks[0]["taskArn"], "status": "STOPPED"}),
    )
    .await;
    let again = h
        .ok("RunTask", json!({"taskDefinition": "web", "group": "batch", "placementConstraints": [{"type": "distinctInstance"}]}))
        .await;
    assert_eq!(
        again["tasks"][0]["containerInstanceArn"],
        tasks[0]["containerInstanceArn"]
    );
}

#[tokio::test]
async fn start_task_places_on_the_named_instances() {
    let h = Harness::new().await;
    let big = h.register_instance(4096, 4000, "zone-a").await;
    let small = h.register_instance(128, 100, "zone-b").await;
    h.ok("RegisterTaskDefinition", web(0)).await;
    let missing = "arn:aws:ecs:us-east-1:000000000000:container-instance/default/0123456789abcdef0123456789abcdef";
    let started = h
        .ok("StartTask", json!({"taskDefinition": "web", "containerInstances": [big, small, missing], "startedBy": "ops"}))
        .await;
    assert_eq!(started["tasks"].as_array().unwrap().len(), 1);
    assert_eq!(started["tasks"][0]["containerInstanceArn"], big);
    assert_eq!(started["tasks"][0]["startedBy"], "ops");
    assert_eq!(
        started["failures"],
        json!([{"arn": small, "reason": "RESOURCE:CPU"}, {"arn": missing, "reason": "MISSING"}])
    );
    assert_eq!(remaining(&h.instance(&big).await, "CPU"), 4096 - 256);
    assert_eq!(h.instance(&big).await["pendingTasksCount"], 1);
    let e = h
        .err(
            "StartTask",
            json!({"taskDefinition": "web", "containerInstances": []}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
}

#[tokio::test]
async fn empty_identifier_lists_are_refused() {
    let h = Harness::new().await;
    h.register_instance(1024, 1000, "zone-a").await;
    h.ok("RegisterTaskDefinition", web(0)).await;
    for (op, body, message) in [
        (
            "DescribeTasks",
            json!({"tasks": []}),
            "Tasks cannot be empty.",
        ),
        (
            "DescribeContainerInstances",
            json!({"containerInstances": []}),
            "Container Instances cannot be empty.",
        ),
        (
            "StartTask",
            json!({"taskDefinition": "web", "containerInstances": []}),
            "Container Instances cannot be empty.",
        ),
    ] {
        let e = h.err(op, body).await;
        assert_eq!(
            (e.code, e.message.as_str()),
            ("InvalidParameterException", message),
            "{op}"
        );
    }
}

#[tokio::test]
async fn run_task_with_an_inactive_task_definition_answers_as_ecs() {
    let h = Harness::new().await;
    h.register_instance(1024, 1000, "zone-a").await;
    h.ok("RegisterTaskDefinition", web(0)).await;
    h.ok(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "web:1"}),
    )
    .await;
    let e = h.err("RunTask", json!({"taskDefinition": "web:1"})).await;
    assert_eq!(
        (e.code, e.message.as_str()),
        ("InvalidParameterException", "TaskDefinition is inactive")
    );
    let e = h
        .err(
            "StopTask",
            json!({"task": "0123456789abcdef0123456789abcdef"}),
        )
        .await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            "InvalidParameterException",
            "The referenced task was not found."
        )
    );
}

fn tagged(pairs: &[(&str, &str)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

#[tokio::test]
async fn tasks_carry_their_tags() {
    let h = Harness::new().await;
    let instance = h.register_instance(4096, 4000, "zone-a").await;
    let mut td = web(0);
    td["tags"] = tagged(&[("team", "core"), ("env", "dev")]);
    h.ok("RegisterTaskDefinition", td).await;

    // No tags asked for: an empty list, as ECS answers.
    let plain = h.ok("RunTask", json!({"taskDefinition": "web"})).await;
    assert_eq!(plain["tasks"][0]["tags"], json!([]));

    // Propagated from the task definition, the request's own tags win, and
    // the managed tag names the cluster.
    let run = h
        .ok(
            "RunTask",
            json!({"taskDefinition": "web", "tags": tagged(&[("env", "prod")]),
                   "propagateTags": "TASK_DEFINITION", "enableECSManagedTags": true}),
        )
        .await;
    let expected = tagged(&[
        ("team", "core"),
        ("env", "prod"),
        ("aws:ecs:clusterName", "default"),
    ]);
    assert_eq!(run["tasks"][0]["tags"], expected);
    let task_arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();

    // DescribeTasks shows them only with include TAGS.
    let described = h.ok("DescribeTasks", json!({"tasks": [&task_arn]})).await;
    assert_eq!(described["tasks"][0]["tags"], json!([]));
    let described = h
        .ok(
            "DescribeTasks",
            json!({"tasks": [&task_arn], "include": ["TAGS"]}),
        )
        .await;
    assert_eq!(described["tasks"][0]["tags"], expected);

    // NONE and no propagateTags propagate nothing.
    let none = h
        .ok(
            "RunTask",
            json!({"taskDefinition": "web", "propagateTags": "NONE", "tags": tagged(&[("a", "1")])}),
        )
        .await;
    assert_eq!(none["tasks"][0]["tags"], tagged(&[("a", "1")]));

    // SERVICE is for a service's tasks only; reserved keys are the user's to avoid.
    for body in [
        json!({"taskDefinition": "web", "propagateTags": "SERVICE"}),
        json!({"taskDefinition": "web", "tags": tagged(&[("aws:mine", "x")])}),
    ] {
        assert_eq!(
            h.err("RunTask", body).await.code,
            "InvalidParameterException"
        );
    }

    // StartTask applies the same rules.
    let started = h
        .ok(
            "StartTask",
            json!({"taskDefinition": "web", "containerInstances": [&instance],
                   "propagateTags": "TASK_DEFINITION", "tags": tagged(&[("b", "2")])}),
        )
        .await;
    assert_eq!(
        started["tasks"][0]["tags"],
        tagged(&[("team", "core"), ("env", "dev"), ("b", "2")])
    );
}

#[tokio::test]
async fn tag_resource_on_tasks_and_container_instances() {
    let h = Harness::new().await;
    let instance = h.register_instance(4096, 4000, "zone-a").await;
    h.ok("RegisterTaskDefinition", web(0)).await;
    let run = h
        .ok(
            "RunTask",
            json!({"taskDefinition": "web", "enableECSManagedTags": true, "tags": tagged(&[("a", "1")])}),
        )
        .await;
    let task_arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let h = &h;
    let list = |arn: String| async move {
        h.ok("ListTagsForResource", json!({"resourceArn": arn}))
            .await["tags"]
            .clone()
    };
    assert_eq!(
        list(task_arn.clone()).await,
        tagged(&[("a", "1"), ("aws:ecs:clusterName", "default")])
    );
    h.ok(
        "TagResource",
        json!({"resourceArn": &task_arn, "tags": tagged(&[("a", "10"), ("b", "2")])}),
    )
    .await;
    h.ok(
        "UntagResource",
        json!({"resourceArn": &task_arn, "tagKeys": ["a", "absent"]}),
    )
    .await;
    let expected = tagged(&[("aws:ecs:clusterName", "default"), ("b", "2")]);
    assert_eq!(list(task_arn.clone()).await, expected);
    // The stored task holds them: DescribeTasks reads the same record.
    let described = h
        .ok(
            "DescribeTasks",
            json!({"tasks": [&task_arn], "include": ["TAGS"]}),
        )
        .await;
    assert_eq!(described["tasks"][0]["tags"], expected);
    // Managed tags cannot be removed; fifty user tags fit beside them.
    assert_eq!(
        h.err(
            "UntagResource",
            json!({"resourceArn": &task_arn, "tagKeys": ["aws:ecs:clusterName"]}),
        )
        .await
        .code,
        "InvalidParameterException"
    );
    let forty_nine: Vec<Value> = (0..49)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    h.ok(
        "TagResource",
        json!({"resourceArn": &task_arn, "tags": forty_nine}),
    )
    .await;
    assert_eq!(
        h.err(
            "TagResource",
            json!({"resourceArn": &task_arn, "tags": tagged(&[("one-too-many", "v")])}),
        )
        .await
        .code,
        "InvalidParameterException"
    );

    // Tagging a task does not disturb what its agent is told to run.
    let version = described["tasks"][0]["version"].clone();
    let again = h.ok("DescribeTasks", json!({"tasks": [&task_arn]})).await;
    assert_eq!(again["tasks"][0]["version"], version);

    // Unknown tasks, and the old ARN format without the cluster.
    let missing =
        "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef0123456789abcdef";
    let e = h
        .err(
            "TagResource",
            json!({"resourceArn": missing, "tags": tagged(&[("a", "1")])}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    let e = h
        .err(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:ecs:us-east-1:000000000000:task/0123456789abcdef0123456789abcdef"}),
        )
        .await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            "InvalidParameterException",
            "Long arn format must be used for tagging operations"
        )
    );

    // Container instances are tagged the same way.
    h.ok(
        "TagResource",
        json!({"resourceArn": &instance, "tags": tagged(&[("rack", "r1")])}),
    )
    .await;
    assert_eq!(list(instance.clone()).await, tagged(&[("rack", "r1")]));
    let described = h
        .ok(
            "DescribeContainerInstances",
            json!({"containerInstances": [&instance], "include": ["TAGS"]}),
        )
        .await;
    assert_eq!(
        described["containerInstances"][0]["tags"],
        tagged(&[("rack", "r1")])
    );
    // A tagged instance still takes tasks.
    let run = h.ok("RunTask", json!({"taskDefinition": "web"})).await;
    assert_eq!(run["tasks"][0]["containerInstanceArn"], instance);
}

#[tokio::test]
async fn service_tasks_get_the_services_tags() {
    let h = Harness::new().await;
    h.register_instance(4096, 4000, "zone-a").await;
    let mut td = web(0);
    td["tags"] = tagged(&[("from", "task-definition")]);
    h.ok("RegisterTaskDefinition", td).await;
    h.ok(
        "CreateService",
        json!({"serviceName": "api", "taskDefinition": "web", "desiredCount": 1,
               "tags": tagged(&[("from", "service")]), "propagateTags": "SERVICE",
               "enableECSManagedTags": true}),
    )
    .await;
    h.ok(
        "CreateService",
        json!({"serviceName": "worker", "taskDefinition": "web", "desiredCount": 1,
               "tags": tagged(&[("from", "service")]), "propagateTags": "TASK_DEFINITION"}),
    )
    .await;
    h.ok(
        "CreateService",
        json!({"serviceName": "plain", "taskDefinition": "web", "desiredCount": 1,
               "tags": tagged(&[("from", "service")])}),
    )
    .await;
    h.ecs
        .reconcile_services("000000000000", ctx().now_ms, 7)
        .await
        .unwrap();
    for (service, expected) in [
        (
            "api",
            tagged(&[
                ("from", "service"),
                ("aws:ecs:clusterName", "default"),
                ("aws:ecs:serviceName", "api"),
            ]),
        ),
        ("worker", tagged(&[("from", "task-definition")])),
        ("plain", json!([])),
    ] {
        let arns = h.ok("ListTasks", json!({"serviceName": service})).await["taskArns"].clone();
        assert_eq!(arns.as_array().unwrap().len(), 1, "{service}: {arns}");
        let described = h
            .ok("DescribeTasks", json!({"tasks": arns, "include": ["TAGS"]}))
            .await;
        assert_eq!(described["tasks"][0]["tags"], expected, "{service}");
    }
}
