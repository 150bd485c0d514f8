//! Operation tests against the in-memory store, through the same JSON entry
//! point the HTTP shell uses.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::test_support::{ctx, Harness};

fn td(family: &str) -> Value {
    json!({"family": family, "containerDefinitions": [{"name": "web", "image": "busybox", "memory": 64}]})
}

#[tokio::test]
async fn cluster_lifecycle() {
    let h = Harness::new();
    let created = h
        .ok(
            "CreateCluster",
            json!({"clusterName": "web", "tags": [{"key": "team", "value": "a"}]}),
        )
        .await;
    let cluster = &created["cluster"];
    assert_eq!(
        cluster["clusterArn"],
        "arn:aws:ecs:us-east-1:000000000000:cluster/web"
    );
    assert_eq!(cluster["status"], "ACTIVE");
    assert_eq!(cluster["runningTasksCount"], 0);
    assert_eq!(
        cluster["settings"],
        json!([{"name": "containerInsights", "value": "disabled"}])
    );
    assert_eq!(cluster["tags"], json!([{"key": "team", "value": "a"}]));

    // Idempotent.
    let again = h.ok("CreateCluster", json!({"clusterName": "web"})).await;
    assert_eq!(
        again["cluster"]["tags"],
        json!([{"key": "team", "value": "a"}])
    );

    let described = h
        .ok("DescribeClusters", json!({"clusters": ["web", "nope"]}))
        .await;
    assert_eq!(described["clusters"][0]["clusterName"], "web");
    assert!(described["clusters"][0].get("settings").is_none());
    assert!(described["clusters"][0].get("tags").is_none());
    assert_eq!(
        described["failures"],
        json!([{"arn": "arn:aws:ecs:us-east-1:000000000000:cluster/nope", "reason": "MISSING"}])
    );
    let with = h.ok("DescribeClusters", json!({"clusters": ["arn:aws:ecs:us-east-1:000000000000:cluster/web"], "include": ["TAGS", "SETTINGS", "STATISTICS"]})).await;
    assert_eq!(with["clusters"][0]["tags"][0]["key"], "team");
    assert!(with["clusters"][0]["statistics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "runningEC2TasksCount"));

    let updated = h.ok("UpdateClusterSettings", json!({"cluster": "web", "settings": [{"name": "containerInsights", "value": "enhanced"}]})).await;
    assert_eq!(updated["cluster"]["settings"][0]["value"], "enhanced");
    let updated = h.ok("UpdateCluster", json!({"cluster": "web", "configuration": {"executeCommandConfiguration": {"logging": "DEFAULT"}}})).await;
    assert_eq!(
        updated["cluster"]["configuration"]["executeCommandConfiguration"]["logging"],
        "DEFAULT"
    );

    let deleted = h.ok("DeleteCluster", json!({"cluster": "web"})).await;
    assert_eq!(deleted["cluster"]["status"], "INACTIVE");
    let listed = h.ok("ListClusters", json!({})).await;
    assert_eq!(listed["clusterArns"], json!([]));
    let described = h.ok("DescribeClusters", json!({"clusters": ["web"]})).await;
    assert_eq!(described["clusters"][0]["status"], "INACTIVE");
    assert_eq!(
        h.err("DeleteCluster", json!({"cluster": "web"})).await.code,
        "ClusterNotFoundException"
    );
    assert_eq!(
        h.err(
            "UpdateClusterSettings",
            json!({"cluster": "web", "settings": []})
        )
        .await
        .code,
        "ClusterNotFoundException"
    );
    let e = h.err("TagResource", json!({"resourceArn": "arn:aws:ecs:us-east-1:000000000000:cluster/web", "tags": [{"key": "a", "value": "b"}]})).await;
    assert_eq!(
        e.message,
        "The specified cluster is inactive. Specify an active cluster and try again."
    );

    // Recreate after delete.
    let recreated = h.ok("CreateCluster", json!({"clusterName": "web"})).await;
    assert_eq!(recreated["cluster"]["status"], "ACTIVE");
    assert_eq!(recreated["cluster"]["tags"], json!([]));
}

#[tokio::test]
async fn cluster_validation() {
    let h = Harness::new();
    assert_eq!(
        h.err("CreateCluster", json!({"clusterName": "bad name"}))
            .await
            .code,
        "InvalidParameterException"
    );
    assert_eq!(
        h.err(
            "CreateCluster",
            json!({"settings": [{"name": "containerInsights", "value": "sometimes"}]})
        )
        .await
        .code,
        "InvalidParameterException"
    );
    assert_eq!(
        h.err("CreateCluster", json!({"capacityProviders": ["mine"]}))
            .await
            .code,
        "InvalidParameterException"
    );
    assert_eq!(
        h.err(
            "CreateCluster",
            json!({"serviceConnectDefaults": {"namespace": "ns"}})
        )
        .await
        .code,
        "NamespaceNotFoundException"
    );
    assert_eq!(
        h.err(
            "CreateCluster",
            json!({"settings": [{"name": "bogus", "value": "x"}]})
        )
        .await
        .code,
        "InvalidParameterException"
    );
    assert_eq!(
        h.err("UpdateCluster", json!({})).await.message,
        "cluster can not be blank."
    );
    // Nothing was created by the failures.
    assert_eq!(
        h.ok("ListClusters", json!({})).await["clusterArns"],
        json!([])
    );
    // Default cluster name.
    let created = h.ok("CreateCluster", json!({})).await;
    assert_eq!(created["cluster"]["clusterName"], "default");
    assert_eq!(
        h.ok("DescribeClusters", json!({})).await["clusters"][0]["clusterName"],
        "default"
    );
}

#[tokio::test]
async fn regions_are_separate() {
    let h = Harness::new();
    let created = h
        .call_in("eu-west-1", "CreateCluster", json!({"clusterName": "x"}))
        .await
        .unwrap();
    assert_eq!(
        created["cluster"]["clusterArn"],
        "arn:aws:ecs:eu-west-1:000000000000:cluster/x"
    );
    assert_eq!(
        h.ok("ListClusters", json!({})).await["clusterArns"],
        json!([])
    );
    let listed = h
        .call_in("eu-west-1", "ListClusters", json!({}))
        .await
        .unwrap();
    assert_eq!(
        listed["clusterArns"],
        json!(["arn:aws:ecs:eu-west-1:000000000000:cluster/x"])
    );
}

#[tokio::test]
async fn list_clusters_paginates() {
    let h = Harness::new();
    for i in 0..7 {
        h.ok("CreateCluster", json!({"clusterName": format!("c{i}")}))
            .await;
    }
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"maxResults": 3});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = h.ok("ListClusters", body).await;
        arns.extend(
            page["clusterArns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string()),
        );
        match page.get("nextToken") {
            Some(t) => token = Some(t.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(arns.len(), 7);
    assert!(arns.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        h.err("ListClusters", json!({"nextToken": "garbage"}))
            .await
            .code,
        "InvalidParameterException"
    );
    assert_eq!(
        h.err("ListClusters", json!({"maxResults": 0})).await.code,
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn task_definition_lifecycle() {
    let h = Harness::new();
    let first = h.ok("RegisterTaskDefinition", td("app")).await;
    assert_eq!(first["taskDefinition"]["revision"], 1);
    assert_eq!(
        first["taskDefinition"]["taskDefinitionArn"],
        "arn:aws:ecs:us-east-1:000000000000:task-definition/app:1"
    );
    assert_eq!(
        first["taskDefinition"]["registeredBy"],
        "arn:aws:iam::000000000000:root"
    );
    assert_eq!(first["taskDefinition"]["registeredAt"], 1_700_000_000.0);
    let second = h.ok("RegisterTaskDefinition", json!({"family": "app", "tags": [{"key": "k", "value": "v"}], "containerDefinitions": [{"name": "web", "image": "busybox:2", "memory": 64}]})).await;
    assert_eq!(second["taskDefinition"]["revision"], 2);
    assert_eq!(second["tags"], json!([{"key": "k", "value": "v"}]));

    let latest = h
        .ok("DescribeTaskDefinition", json!({"taskDefinition": "app"}))
        .await;
    assert_eq!(latest["taskDefinition"]["revision"], 2);
    assert!(latest.get("tags").is_none());
    let tagged = h
        .ok(
            "DescribeTaskDefinition",
            json!({"taskDefinition": "app:2", "include": ["TAGS"]}),
        )
        .await;
    assert_eq!(tagged["tags"], json!([{"key": "k", "value": "v"}]));
    let by_arn = h
        .ok(
            "DescribeTaskDefinition",
            json!({"taskDefinition": "arn:aws:ecs:us-east-1:000000000000:task-definition/app:1"}),
        )
        .await;
    assert_eq!(
        by_arn["taskDefinition"]["containerDefinitions"][0]["image"],
        "busybox"
    );
    assert_eq!(
        h.err("DescribeTaskDefinition", json!({"taskDefinition": "app:9"}))
            .await
            .message,
        "Unable to describe task definition."
    );
    assert_eq!(
        h.err("DescribeTaskDefinition", json!({"taskDefinition": "nope"}))
            .await
            .code,
        "ClientException"
    );

    // Deregister the latest: describing the family falls back to revision 1.
    let dereg = h
        .ok(
            "DeregisterTaskDefinition",
            json!({"taskDefinition": "app:2"}),
        )
        .await;
    assert_eq!(dereg["taskDefinition"]["status"], "INACTIVE");
    assert_eq!(dereg["taskDefinition"]["deregisteredAt"], 1_700_000_000.0);
    assert_eq!(
        h.ok("DescribeTaskDefinition", json!({"taskDefinition": "app"}))
            .await["taskDefinition"]["revision"],
        1
    );
    assert_eq!(
        h.err("DeregisterTaskDefinition", json!({"taskDefinition": "app"}))
            .await
            .code,
        "ClientException"
    );

    // Delete: only INACTIVE revisions.
    let deleted = h
        .ok(
            "DeleteTaskDefinitions",
            json!({"taskDefinitions": ["app:2", "app:1", "app:7"]}),
        )
        .await;
    assert_eq!(
        deleted["taskDefinitions"][0]["status"],
        "DELETE_IN_PROGRESS"
    );
    let reasons: Vec<&str> = deleted["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec![
        "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
        "The specified task definition does not exist. Specify a valid account, family, revision and try again.",
    ]);
    assert_eq!(deleted["failures"][0]["arn"], "app:1");
    // A family without a revision names no revision to delete, known or not.
    let revisionless = h
        .ok(
            "DeleteTaskDefinitions",
            json!({"taskDefinitions": ["app", "never-registered"]}),
        )
        .await;
    assert_eq!(revisionless["taskDefinitions"], json!([]));
    assert_eq!(
        revisionless["failures"],
        json!([
            {"arn": "app", "reason": "The specified task definition identifier is invalid. Specify a valid name or ARN and try again."},
            {"arn": "never-registered", "reason": "The specified task definition identifier is invalid. Specify a valid name or ARN and try again."},
        ])
    );

    // Revisions are never reused.
    h.ok(
        "DeregisterTaskDefinition",
        json!({"taskDefinition": "app:1"}),
    )
    .await;
    h.ok(
        "DeleteTaskDefinitions",
        json!({"taskDefinitions": ["app:1"]}),
    )
    .await;
    assert_eq!(
        h.ok("RegisterTaskDefinition", td("app")).await["taskDefinition"]["revision"],
        3
    );
}

#[tokio::test]
async fn list_task_definitions_filters_sorts_and_pages() {
    let h = Harness::new();
    for family in ["b", "a", "a-b"] {
        for _ in 0..3 {
            h.ok("RegisterTaskDefinition", td(family)).await;
        }
    }
    h.ok("DeregisterTaskDefinition", json!({"taskDefinition": "a:2"}))
        .await;
    let arn =
        |f: &str, r: i64| format!("arn:aws:ecs:us-east-1:000000000000:task-definition/{f}:{r}");
    let all = h.ok("ListTaskDefinitions", json!({})).await;
    assert_eq!(
        all["taskDefinitionArns"],
        json!([
            arn("a", 1),
            arn("a", 3),
            arn("a-b", 1),
            arn("a-b", 2),
            arn("a-b", 3),
            arn("b", 1),
            arn("b", 2),
            arn("b", 3)
        ])
    );
    let family = h
        .ok(
            "ListTaskDefinitions",
            json!({"familyPrefix": "a", "sort": "DESC"}),
        )
        .await;
    assert_eq!(
        family["taskDefinitionArns"],
        json!([arn("a", 3), arn("a", 1)])
    );
    let inactive = h
        .ok("ListTaskDefinitions", json!({"status": "INACTIVE"}))
        .await;
    assert_eq!(inactive["taskDefinitionArns"], json!([arn("a", 2)]));

    for sort in ["ASC", "DESC"] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"maxResults": 3, "sort": sort});
            if let Some(t) = &token {
                body["nextToken"] = json!(t);
            }
            let page = h.ok("ListTaskDefinitions", body).await;
            seen.extend(page["taskDefinitionArns"].as_array().unwrap().clone());
            match page.get("nextToken") {
                Some(t) => token = Some(t.as_str().unwrap().to_string()),
                None => break,
            }
        }
        let mut expected = all["taskDefinitionArns"].as_array().unwrap().clone();
        if sort == "DESC" {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{sort}");
    }

    let families = h
        .ok("ListTaskDefinitionFamilies", json!({"familyPrefix": "a"}))
        .await;
    assert_eq!(families["families"], json!(["a", "a-b"]));
    for r in 1..=3 {
        h.ok(
            "DeregisterTaskDefinition",
            json!({"taskDefinition": format!("b:{r}")}),
        )
        .await;
    }
    assert_eq!(
        h.ok("ListTaskDefinitionFamilies", json!({"status": "INACTIVE"}))
            .await["families"],
        json!(["b"])
    );
    assert_eq!(
        h.ok("ListTaskDefinitionFamilies", json!({"status": "ACTIVE"}))
            .await["families"],
        json!(["a", "a-b"])
    );
    assert_eq!(
        h.ok("ListTaskDefinitionFamilies", json!({})).await["families"],
        json!(["a", "a-b", "b"])
    );
    let page = h
        .ok("ListTaskDefinitionFamilies", json!({"maxResults": 2}))
        .await;
    assert_eq!(page["families"], json!(["a", "a-b"]));
    let rest = h
        .ok(
            "ListTaskDefinitionFamilies",
            json!({"nextToken": page["nextToken"]}),
        )
        .await;
    assert_eq!(rest["families"], json!(["b"]));
}

#[tokio::test]
async fn concurrent_registrations_get_distinct_revisions() {
    let h = Arc::new(Harness::new());
    let mut handles = Vec::new();
    for _ in 0..40 {
        let h = h.clone();
        handles.push(tokio::spawn(async move {
            h.ok("RegisterTaskDefinition", td("race")).await["taskDefinition"]["revision"]
                .as_i64()
                .unwrap()
        }));
    }
    let mut revisions = Vec::new();
    for handle in handles {
        revisions.push(handle.await.unwrap());
    }
    revisions.sort();
    assert_eq!(revisions, (1..=40).collect::<Vec<_>>());
}

#[tokio::test]
async fn tags() {
    let h = Harness::new();
    h.ok("CreateCluster", json!({"clusterName": "c"})).await;
    let cluster = "arn:aws:ecs:us-east-1:000000000000:cluster/c";
    h.ok("TagResource", json!({"resourceArn": cluster, "tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]})).await;
    h.ok(
        "TagResource",
        json!({"resourceArn": cluster, "tags": [{"key": "a", "value": "3"}]}),
    )
    .await;
    h.ok(
        "UntagResource",
        json!({"resourceArn": cluster, "tagKeys": ["b"]}),
    )
    .await;
    assert_eq!(
        h.ok("ListTagsForResource", json!({"resourceArn": cluster}))
            .await["tags"],
        json!([{"key": "a", "value": "3"}])
    );

    h.ok("RegisterTaskDefinition", td("app")).await;
    let td_arn = "arn:aws:ecs:us-east-1:000000000000:task-definition/app:1";
    h.ok(
        "TagResource",
        json!({"resourceArn": td_arn, "tags": [{"key": "x", "value": "y"}]}),
    )
    .await;
    assert_eq!(
        h.ok("ListTagsForResource", json!({"resourceArn": td_arn}))
            .await["tags"],
        json!([{"key": "x", "value": "y"}])
    );

    assert_eq!(h.err("TagResource", json!({"resourceArn": "arn:aws:ecs:us-east-1:000000000000:cluster/none", "tags": [{"key": "a", "value": "1"}]})).await.code, "ClusterNotFoundException");
    assert_eq!(
        h.err(
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/app:9"})
        )
        .await
        .code,
        "ResourceNotFoundException"
    );
    assert_eq!(
        h.err("ListTagsForResource", json!({"resourceArn": "not-an-arn"}))
            .await
            .code,
        "InvalidParameterException"
    );
    assert_eq!(
        h.err(
            "TagResource",
            json!({"resourceArn": cluster, "tags": [{"key": "aws:x", "value": "1"}]})
        )
        .await
        .code,
        "InvalidParameterException"
    );
    let fifty: Vec<Value> = (0..50)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    assert_eq!(
        h.err(
            "TagResource",
            json!({"resourceArn": cluster, "tags": fifty})
        )
        .await
        .code,
        "InvalidParameterException"
    );
    // The failed call changed nothing.
    assert_eq!(
        h.ok("ListTagsForResource", json!({"resourceArn": cluster}))
            .await["tags"],
        json!([{"key": "a", "value": "3"}])
    );
}

#[tokio::test]
async fn account_settings() {
    let h = Harness::new();
    let root = "arn:aws:iam::000000000000:root";
    let user = "arn:aws:iam::000000000000:user/alice";
    let set = h
        .ok(
            "PutAccountSettingDefault",
            json!({"name": "containerInsights", "value": "enabled"}),
        )
        .await;
    assert_eq!(
        set["setting"],
        json!({"name": "containerInsights", "value": "enabled", "principalArn": root, "type": "user"})
    );
    h.ok(
        "PutAccountSetting",
        json!({"name": "containerInsights", "value": "enhanced", "principalArn": user}),
    )
    .await;

    let own = h
        .ok("ListAccountSettings", json!({"principalArn": user}))
        .await;
    assert_eq!(
        own["settings"],
        json!([{"name": "containerInsights", "value": "enhanced", "principalArn": user, "type": "user"}])
    );
    let effective = h
        .ok(
            "ListAccountSettings",
            json!({"effectiveSettings": true, "name": "containerInsights", "principalArn": user}),
        )
        .await;
    assert_eq!(effective["settings"][0]["value"], "enhanced");
    let effective_root = h
        .ok("ListAccountSettings", json!({"effectiveSettings": true}))
        .await;
    assert_eq!(effective_root["settings"].as_array().unwrap().len(), 10);
    assert!(effective_root.get("nextToken").is_some());
    let rest = h
        .ok(
            "ListAccountSettings",
            json!({"effectiveSettings": true, "nextToken": effective_root["nextToken"]}),
        )
        .await;
    assert_eq!(rest["settings"].as_array().unwrap().len(), 1);
    let guard = h
        .ok(
            "ListAccountSettings",
            json!({"effectiveSettings": true, "name": "guardDutyActivate"}),
        )
        .await;
    assert_eq!(guard["settings"][0]["type"], "aws_managed");

    // New clusters take the effective containerInsights value.
    assert_eq!(
        h.ok("CreateCluster", json!({"clusterName": "ci"})).await["cluster"]["settings"][0]
            ["value"],
        "enabled"
    );

    let deleted = h
        .ok(
            "DeleteAccountSetting",
            json!({"name": "containerInsights", "principalArn": user}),
        )
        .await;
    assert_eq!(deleted["setting"]["value"], "enhanced");
    let effective = h
        .ok(
            "ListAccountSettings",
            json!({"effectiveSettings": true, "name": "containerInsights", "principalArn": user}),
        )
        .await;
    assert_eq!(effective["settings"][0]["value"], "enabled");

    assert_eq!(
        h.err(
            "PutAccountSetting",
            json!({"name": "containerInsights", "value": "on"})
        )
        .await
        .code,
        "InvalidParameterException"
    );
    assert_eq!(
        h.err(
            "PutAccountSetting",
            json!({"name": "guardDutyActivate", "value": "enabled"})
        )
        .await
        .code,
        "InvalidParameterException"
    );
    assert_eq!(h.err("PutAccountSetting", json!({"name": "containerInsights", "value": "enabled", "principalArn": "arn:aws:iam::111111111111:root"})).await.code, "InvalidParameterException");
    assert_eq!(
        h.err(
            "PutAccountSetting",
            json!({"name": "nonsense", "value": "enabled"})
        )
        .await
        .code,
        "InvalidParameterException"
    );
    assert_eq!(
        h.err("ListAccountSettings", json!({"maxResults": 11}))
            .await
            .code,
        "InvalidParameterException"
    );
}

#[tokio::test]
async fn protocol_errors() {
    let h = Harness::new();
    let e = h
        .ecs
        .handle(&ctx("us-east-1"), "CreateCluster", b"{not json")
        .await
        .unwrap_err();
    assert_eq!(e.code, "SerializationException");
    let e = h
        .ecs
        .handle(&ctx("us-east-1"), "CreateCluster", b"[1]")
        .await
        .unwrap_err();
    assert_eq!(e.code, "SerializationException");
    let e = h
        .ecs
        .handle(&ctx("us-east-1"), "CreateCluster", br#"{"clusterName": 5}"#)
        .await
        .unwrap_err();
    assert_eq!(e.code, "SerializationException");
    let ok = h
        .ecs
        .handle(&ctx("us-east-1"), "ListClusters", b"")
        .await
        .unwrap();
    assert_eq!(ok, br#"{"clusterArns":[]}"#);
    assert_eq!(
        h.err("NoSuchThing", json!({})).await.code,
        "UnknownOperationException"
    );
    assert_eq!(
        h.err("CreateCapacityProvider", json!({})).await.code,
        "UnsupportedFeatureException"
    );
}
