"""ELBv2 listener rules through boto3's `elbv2` client and the AWS CLI: CreateRule,
DescribeRules (the default rule included, pages), ModifyRule, DeleteRule and
SetRulePriorities with AWS's errors; tags on rules; `instance` targets named by
container instances; and real traffic routed by rules through Berth's load balancer
to two HTTP servers on this machine."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

import pytest

from berth_harness import Backend, BerthServer, api_error, unique_name
from test_load_balancer_traffic import wait_for


@pytest.fixture(scope="module")
def elbv2(server: BerthServer) -> Any:
    return server.client(service="elbv2")


def short(prefix: str) -> str:
    return unique_name(prefix)[:32]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def target_group(elbv2: Any, target_type: str = "ip", port: int = 80) -> str:
    return elbv2.create_target_group(
        Name=short("tg"), Protocol="HTTP", Port=port, VpcId="vpc-berth", TargetType=target_type,
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2, UnhealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]


def load_balancer(elbv2: Any) -> dict[str, Any]:
    return elbv2.create_load_balancer(Name=short("lb"))["LoadBalancers"][0]


def forward(target_group_arn: str) -> list[dict[str, Any]]:
    return [{"Type": "forward", "TargetGroupArn": target_group_arn}]


def path_is(*patterns: str) -> list[dict[str, Any]]:
    return [{"Field": "path-pattern", "PathPatternConfig": {"Values": list(patterns)}}]


def listener_with_default(elbv2: Any, load_balancer_arn: str, default: list[dict[str, Any]],
                          port: Optional[int] = None) -> str:
    return elbv2.create_listener(
        LoadBalancerArn=load_balancer_arn, Protocol="HTTP", Port=port or free_port(),
        DefaultActions=default,
    )["Listeners"][0]["ListenerArn"]


def not_found() -> list[dict[str, Any]]:
    return [{"Type": "fixed-response",
             "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain",
                                     "MessageBody": "no rule"}}]


def test_rules_lifecycle(elbv2: Any) -> None:
    lb = load_balancer(elbv2)
    api, site = target_group(elbv2), target_group(elbv2)
    listener = listener_with_default(elbv2, lb["LoadBalancerArn"], forward(site))

    created = elbv2.create_rule(ListenerArn=listener, Priority=10, Conditions=path_is("/api/*"),
                                Actions=forward(api), Tags=[{"Key": "team", "Value": "api"}])
    rule = created["Rules"][0]
    assert rule["Priority"] == "10" and rule["IsDefault"] is False
    assert ":listener-rule/app/" in rule["RuleArn"]
    # The legacy form describes like the config form, Values and PathPatternConfig both.
    assert rule["Conditions"] == [{"Field": "path-pattern", "Values": ["/api/*"],
                                   "PathPatternConfig": {"Values": ["/api/*"]}}]
    legacy = elbv2.create_rule(
        ListenerArn=listener, Priority=5,
        Conditions=[{"Field": "host-header", "Values": ["admin.example.com"]}],
        Actions=[{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443",
                                                         "StatusCode": "HTTP_301"}}],
    )["Rules"][0]
    assert legacy["Conditions"][0]["HostHeaderConfig"] == {"Values": ["admin.example.com"]}

    rules = elbv2.describe_rules(ListenerArn=listener)["Rules"]
    assert [(r["Priority"], r["IsDefault"]) for r in rules] == [
        ("5", False), ("10", False), ("default", True)]
    default = rules[-1]
    assert default["Conditions"] == []
    assert default["Actions"] == [{"Type": "forward", "TargetGroupArn": site, "Order": 1}]
    pages = list(elbv2.get_paginator("describe_rules").paginate(
        ListenerArn=listener, PaginationConfig={"PageSize": 2}))
    assert [[r["Priority"] for r in page["Rules"]] for page in pages] == [["5", "10"], ["default"]]
    assert [r["RuleArn"] for r in elbv2.describe_rules(
        RuleArns=[default["RuleArn"], rule["RuleArn"]])["Rules"]] == [
        rule["RuleArn"], default["RuleArn"]]

    # Errors in AWS's terms.
    failure = api_error("PriorityInUse", elbv2.create_rule, ListenerArn=listener, Priority=10,
                        Conditions=path_is("/x"), Actions=forward(api))
    assert failure.message == "Priority '10' is currently in use"
    failure = api_error("ValidationError", elbv2.create_rule, ListenerArn=listener, Priority=11,
                        Conditions=path_is("/1", "/2", "/3", "/4", "/5", "/6"),
                        Actions=forward(api))
    assert failure.message == "A rule can only have '5' condition values"
    failure = api_error("ValidationError", elbv2.create_rule, ListenerArn=listener, Priority=11,
                        Conditions=[{"Field": "host-header", "Values": ["a.example.com"],
                                     "HostHeaderConfig": {"Values": ["a.example.com"]}}],
                        Actions=forward(api))
    assert "You cannot provide both Values and 'HostHeaderConfig'" in failure.message
    api_error("TargetGroupNotFound", elbv2.create_rule, ListenerArn=listener, Priority=11,
              Conditions=path_is("/x"), Actions=forward(api.replace("/tg-", "/tg-x")))
    api_error("ListenerNotFound", elbv2.describe_rules, ListenerArn=listener + "0")
    # The legacy Values form takes a single path pattern (or host name); more go in the config.
    failure = api_error("ValidationError", elbv2.create_rule, ListenerArn=listener, Priority=11,
                        Conditions=[{"Field": "path-pattern", "Values": ["/a", "/b"]}],
                        Actions=forward(api))
    assert failure.message.startswith(
        "Values can hold only one value for a condition of type 'path-pattern'")
    # Authentication actions are refused for what they are.
    failure = api_error("ValidationError", elbv2.create_rule, ListenerArn=listener, Priority=11,
                        Conditions=path_is("/login"),
                        Actions=[{"Type": "authenticate-oidc", "Order": 1,
                                  "AuthenticateOidcConfig": {
                                      "Issuer": "https://idp.example.com",
                                      "AuthorizationEndpoint": "https://idp.example.com/auth",
                                      "TokenEndpoint": "https://idp.example.com/token",
                                      "UserInfoEndpoint": "https://idp.example.com/user",
                                      "ClientId": "berth"}},
                                 {"Type": "forward", "TargetGroupArn": api, "Order": 2}])
    assert failure.message.startswith(
        "Berth does not support actions of type 'authenticate-oidc'"), failure.message
    api_error("RuleNotFound", elbv2.describe_rules, RuleArns=[rule["RuleArn"] + "0"])
    api_error("OperationNotPermitted", elbv2.delete_rule, RuleArn=default["RuleArn"])
    api_error("OperationNotPermitted", elbv2.set_rule_priorities,
              RulePriorities=[{"RuleArn": default["RuleArn"], "Priority": 3}])

    # In use by a rule: the group cannot go, and it belongs to the load balancer.
    api_error("ResourceInUse", elbv2.delete_target_group, TargetGroupArn=api)
    described = elbv2.describe_target_groups(TargetGroupArns=[api])["TargetGroups"][0]
    assert described["LoadBalancerArns"] == [lb["LoadBalancerArn"]]

    # Priorities swap in one call; a collision with a rule left out is refused.
    api_error("PriorityInUse", elbv2.set_rule_priorities,
              RulePriorities=[{"RuleArn": rule["RuleArn"], "Priority": 5}])
    swapped = elbv2.set_rule_priorities(RulePriorities=[
        {"RuleArn": rule["RuleArn"], "Priority": 5},
        {"RuleArn": legacy["RuleArn"], "Priority": 10}])["Rules"]
    assert [(r["RuleArn"], r["Priority"]) for r in swapped] == [
        (rule["RuleArn"], "5"), (legacy["RuleArn"], "10")]

    # ModifyRule replaces what it is given; the default rule's actions are the listener's.
    modified = elbv2.modify_rule(RuleArn=rule["RuleArn"], Actions=forward(site))["Rules"][0]
    assert modified["Conditions"] == rule["Conditions"]
    assert modified["Actions"][0]["TargetGroupArn"] == site
    elbv2.delete_target_group(TargetGroupArn=api)
    elbv2.modify_rule(RuleArn=default["RuleArn"], Actions=not_found())
    described = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]
    assert described["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"

    # Tags on rules, the default rule's too.
    elbv2.add_tags(ResourceArns=[default["RuleArn"]], Tags=[{"Key": "team", "Value": "edge"}])
    tags = elbv2.describe_tags(ResourceArns=[rule["RuleArn"], default["RuleArn"]])
    assert [d["Tags"] for d in tags["TagDescriptions"]] == [
        [{"Key": "team", "Value": "api"}], [{"Key": "team", "Value": "edge"}]]

    elbv2.delete_rule(RuleArn=legacy["RuleArn"])
    api_error("RuleNotFound", elbv2.delete_rule, RuleArn=legacy["RuleArn"])
    # Deleting the listener deletes its rules.
    elbv2.delete_listener(ListenerArn=listener)
    api_error("RuleNotFound", elbv2.describe_rules, RuleArns=[rule["RuleArn"]])
    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elbv2.delete_target_group(TargetGroupArn=site)


def test_aws_cli_rules(server: BerthServer, elbv2: Any, cli_home: Path) -> None:
    lb = load_balancer(elbv2)
    group = target_group(elbv2)
    listener = listener_with_default(elbv2, lb["LoadBalancerArn"], not_found())
    conditions = [{"Field": "http-header",
                   "HttpHeaderConfig": {"HttpHeaderName": "X-Version", "Values": ["2*"]}},
                  {"Field": "query-string",
                   "QueryStringConfig": {"Values": [{"Key": "debug", "Value": "1"}]}}]
    created = server.aws(
        "elbv2", "create-rule", "--listener-arn", listener, "--priority", "7",
        "--conditions", json.dumps(conditions),
        "--actions", f"Type=forward,TargetGroupArn={group}", home=cli_home).json()
    rule_arn = created["Rules"][0]["RuleArn"]
    assert created["Rules"][0]["Conditions"] == conditions
    described = server.aws("elbv2", "describe-rules", "--listener-arn", listener,
                           home=cli_home).json()
    assert [r["Priority"] for r in described["Rules"]] == ["7", "default"]
    server.aws("elbv2", "set-rule-priorities", "--rule-priorities",
               f"RuleArn={rule_arn},Priority=8", home=cli_home)
    missing = server.aws("elbv2", "delete-rule", "--rule-arn", rule_arn + "0",
                         home=cli_home, check=False)
    assert missing.returncode != 0 and "RuleNotFound" in missing.stderr
    server.aws("elbv2", "delete-rule", "--rule-arn", rule_arn, home=cli_home)
    described = server.aws("elbv2", "describe-rules", "--listener-arn", listener,
                           home=cli_home).json()
    assert [r["Priority"] for r in described["Rules"]] == ["default"]


def fetch(url: str, method: str = "GET", headers: Optional[dict[str, str]] = None) -> str:
    """`status: body` of one request (redirects not followed)."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    request = urllib.request.Request(url, method=method, headers=headers or {},
                                     data=b"" if method == "POST" else None)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            return f"{response.status}: {response.read().decode()}"
    except urllib.error.HTTPError as err:
        location = err.headers.get("Location")
        return f"{err.code}: {location or err.read().decode()}"
    except urllib.error.URLError as err:
        # The listener is not bound yet.
        return f"unreachable: {err.reason}"


def test_traffic_is_routed_by_rules(elbv2: Any, backends: tuple[Backend, Backend]) -> None:
    a, b = backends
    group_a, group_b = target_group(elbv2), target_group(elbv2)
    elbv2.register_targets(TargetGroupArn=group_a, Targets=[{"Id": "127.0.0.1", "Port": a.port}])
    elbv2.register_targets(TargetGroupArn=group_b, Targets=[{"Id": "127.0.0.1", "Port": b.port}])
    lb = load_balancer(elbv2)
    port = free_port()
    listener = listener_with_default(elbv2, lb["LoadBalancerArn"], not_found(), port=port)
    base = f"http://{lb['DNSName']}:{port}"
    rule = lambda priority, conditions, actions: elbv2.create_rule(  # noqa: E731
        ListenerArn=listener, Priority=priority, Conditions=conditions,
        Actions=actions)["Rules"][0]["RuleArn"]
    rule(10, path_is("/a/*", "/exact?"), forward(group_a))
    rule(20, [{"Field": "host-header", "HostHeaderConfig": {"Values": ["b.ex*.com"]}}],
         forward(group_b))
    rule(30, [{"Field": "http-header",
               "HttpHeaderConfig": {"HttpHeaderName": "X-Backend", "Values": ["B"]}}],
         forward(group_b))
    rule(40, [{"Field": "query-string",
               "QueryStringConfig": {"Values": [{"Key": "backend", "Value": "a*"}]}}],
         forward(group_a))
    rule(50, [{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}},
              {"Field": "path-pattern", "Values": ["/submit"]}],
         [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "201",
                                                             "MessageBody": "accepted"}}])
    rule(60, [{"Field": "source-ip", "SourceIpConfig": {"Values": ["127.0.0.0/8"]}},
              {"Field": "path-pattern", "Values": ["/local"]}],
         [{"Type": "redirect", "RedirectConfig": {"Path": "/a/#{path}", "StatusCode": "HTTP_302"}}])
    # Weights 0 and 1 in one forward: everything to b.
    weighted = rule(70, path_is("/weighted"), [{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": group_a, "Weight": 0},
                         {"TargetGroupArn": group_b, "Weight": 1}]}}])

    wait_for("the data plane to serve the rules",
             lambda: fetch(f"{base}/a/x") == "200: backend-a", 5)
    assert fetch(f"{base}/a/deep/path?q=1") == "200: backend-a"
    assert fetch(f"{base}/exact1") == "200: backend-a"
    assert fetch(f"{base}/exact12") == "404: no rule"
    assert fetch(f"{base}/A/x") == "404: no rule"  # path patterns are case-sensitive
    assert fetch(f"{base}/", headers={"Host": "B.Example.com"}) == "200: backend-b"
    assert fetch(f"{base}/", headers={"X-Backend": "b"}) == "200: backend-b"
    assert fetch(f"{base}/?x=1&BACKEND=alpha") == "200: backend-a"
    assert fetch(f"{base}/submit", method="POST") == "201: accepted"
    assert fetch(f"{base}/submit") == "404: no rule"
    assert fetch(f"{base}/local") == f"302: http://{lb['DNSName']}:{port}/a/local"
    assert {fetch(f"{base}/weighted") for _ in range(10)} == {"200: backend-b"}
    # Rules go by priority: a request matching two rules gets the lower one's action.
    assert fetch(f"{base}/a/x", headers={"X-Backend": "b"}) == "200: backend-a"

    # Reordering and deleting rules changes the routing.
    rules = {r["Priority"]: r["RuleArn"]
             for r in elbv2.describe_rules(ListenerArn=listener)["Rules"]}
    elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": rules["10"], "Priority": 35},
                                              {"RuleArn": rules["30"], "Priority": 10}])
    wait_for("the new priorities", lambda: fetch(f"{base}/a/x", headers={"X-Backend": "b"})
             == "200: backend-b", 5)
    elbv2.delete_rule(RuleArn=weighted)
    wait_for("the deleted rule to stop matching",
             lambda: fetch(f"{base}/weighted") == "404: no rule", 5)
    elbv2.modify_rule(RuleArn=rules["10"], Conditions=path_is("/renamed/*"))
    wait_for("the modified rule", lambda: fetch(f"{base}/renamed/x") == "200: backend-a", 5)
    assert fetch(f"{base}/a/x") == "404: no rule"


def test_instance_targets_are_container_instances(
    server: BerthServer, elbv2: Any, backends: tuple[Backend, Backend]
) -> None:
    a, b = backends
    ecs = server.client()
    cluster = unique_name("lbc")
    ecs.create_cluster(clusterName=cluster)

    def register(instance_id: str, address: Optional[str]) -> str:
        attributes = [{"name": "berth.host-address", "value": address}] if address else []
        return ecs.register_container_instance(
            cluster=cluster,
            instanceIdentityDocument=json.dumps({"instanceId": instance_id}),
            totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                            {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}],
            attributes=attributes,
        )["containerInstance"]["containerInstanceArn"]

    served_id = "i-" + unique_name("a")[-10:]
    gone_id = "i-" + unique_name("b")[-10:]
    register(served_id, "127.0.0.1")
    gone_arn = register(gone_id, "127.0.0.1")
    ecs.deregister_container_instance(cluster=cluster, containerInstance=gone_arn, force=True)

    group = target_group(elbv2, target_type="instance")
    failure = api_error("InvalidTarget", elbv2.register_targets, TargetGroupArn=group,
                        Targets=[{"Id": gone_id, "Port": a.port}, {"Id": "i-0nothere"}])
    assert failure.message == (
        "The following targets are not in a running state and cannot be registered: "
        f"'{gone_id}', 'i-0nothere'")
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": served_id, "Port": a.port}])

    lb = load_balancer(elbv2)
    port = free_port()
    listener_with_default(elbv2, lb["LoadBalancerArn"], forward(group), port=port)
    url = f"http://{lb['DNSName']}:{port}/"
    wait_for("traffic to reach the instance target", lambda: fetch(url) == "200: backend-a", 5)
    health = wait_for(
        "the instance target to be checked",
        lambda: (d := elbv2.describe_target_health(TargetGroupArn=group)
                 ["TargetHealthDescriptions"][0])["TargetHealth"]["State"] in ("initial", "healthy")
        and d, 5)
    assert health["Target"] == {"Id": served_id, "Port": a.port}
