"""SigV4 authentication, the files Berth writes on first start, the AWS JSON 1.1
envelope (request ids, error bodies), and the process contract (ready line,
SIGTERM, --auth open).

Error codes and messages are AWS's. AWS's JSON services answer these auth
failures with HTTP 400 (UnrecognizedClientException from ECS is "status code:
400"); Berth's contract says 403. SDKs read only the code, so both are accepted.
"""

from __future__ import annotations

import configparser
import datetime as dt
import stat

import pytest

from berth_harness import (
    ACCOUNT_ID,
    BerthServer,
    api_error,
    unique_name,
)

AUTH_STATUSES = (400, 403)


def assert_error_envelope(response, code: str) -> None:
    assert response.error_code == code, (response.status, response.body)
    assert response.headers.get("x-amzn-requestid"), response.headers
    assert response.headers.get("x-amzn-errortype", "").startswith(code), response.headers
    assert response.headers.get("content-type", "").startswith("application/x-amz-json-1.1")


# ----- files written on first start ----------------------------------------------------


def test_first_start_writes_a_private_credentials_file(server: BerthServer) -> None:
    mode = stat.S_IMODE(server.credentials_path.stat().st_mode)
    assert mode == 0o600, oct(mode)
    access_key, secret_key = server.credentials()
    assert access_key and secret_key
    assert access_key != secret_key


def test_first_start_writes_a_config_file_with_the_berth_profile(server: BerthServer) -> None:
    parser = configparser.ConfigParser()
    parser.read(server.config_path)
    assert parser.has_section("profile berth"), parser.sections()
    assert parser["profile berth"].get("region") == server.region


def test_state_lives_in_berth_db(server: BerthServer) -> None:
    assert (server.data_dir / "berth.db").is_file()


def test_credentials_survive_a_restart(make_server) -> None:
    berth: BerthServer = make_server()
    before = berth.credentials()
    assert berth.stop() == 0
    berth.start()
    assert berth.credentials() == before
    assert "clusterArns" in berth.client().list_clusters()


# ----- successful requests ---------------------------------------------------------------


def test_every_response_has_a_request_id(ecs) -> None:
    first = ecs.list_clusters()["ResponseMetadata"]["RequestId"]
    second = ecs.list_clusters()["ResponseMetadata"]["RequestId"]
    assert first and second and first != second


def test_success_response_is_aws_json_1_1(server: BerthServer) -> None:
    response = server.raw_request("ListClusters", {})
    assert response.status == 200, response.body
    assert response.headers.get("content-type", "").startswith("application/x-amz-json-1.1")
    assert response.headers.get("x-amzn-requestid")
    assert "clusterArns" in response.json()


# ----- authentication failures -----------------------------------------------------------


def test_unsigned_request_is_missing_authentication_token(server: BerthServer) -> None:
    response = server.raw_request("ListClusters", {}, sign=False)
    assert response.status in AUTH_STATUSES
    assert_error_envelope(response, "MissingAuthenticationTokenException")
    assert "Authentication Token" in response.error_message


def test_unknown_access_key_is_unrecognized_client(server: BerthServer) -> None:
    stranger = server.client(access_key="AKIAIOSFODNN7EXAMPLE", secret_key="not-a-berth-secret")
    error = api_error("UnrecognizedClientException", stranger.list_clusters)
    assert error.status in AUTH_STATUSES
    assert error.message == "The security token included in the request is invalid."
    assert error.request_id


def test_wrong_secret_is_invalid_signature(server: BerthServer) -> None:
    access_key, _ = server.credentials()
    impostor = server.client(access_key=access_key, secret_key="wrong-secret-key-0123456789")
    error = api_error("InvalidSignatureException", impostor.list_clusters)
    assert error.status in AUTH_STATUSES
    assert error.message.startswith(
        "The request signature we calculated does not match the signature you provided."
    ), error.message


def test_body_changed_after_signing_is_invalid_signature(server: BerthServer) -> None:
    response = server.raw_request(
        "CreateCluster",
        {"clusterName": unique_name("signed")},
        after_signing=lambda body: body.replace(b"signed-", b"forged-"),
    )
    assert response.status in AUTH_STATUSES
    assert_error_envelope(response, "InvalidSignatureException")


@pytest.mark.parametrize(
    ("skew_minutes", "message_start"),
    [(-20, "Signature expired"), (20, "Signature not yet current")],
    ids=["signed-20-min-ago", "signed-20-min-ahead"],
)
def test_clock_skew_over_15_minutes_is_rejected(
    server: BerthServer, skew_minutes: int, message_start: str
) -> None:
    signed_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=skew_minutes)
    response = server.raw_request("ListClusters", {}, signed_at=signed_at)
    assert response.status in AUTH_STATUSES
    assert_error_envelope(response, "InvalidSignatureException")
    assert response.error_message.startswith(message_start), response.error_message


@pytest.mark.parametrize("skew_minutes", [-10, 10], ids=["10-min-ago", "10-min-ahead"])
def test_clock_skew_within_15_minutes_is_accepted(server: BerthServer, skew_minutes: int) -> None:
    signed_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=skew_minutes)
    response = server.raw_request("ListClusters", {}, signed_at=signed_at)
    assert response.status == 200, response.body


def test_authorization_header_without_signature_is_incomplete(server: BerthServer) -> None:
    access_key, _ = server.credentials()
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
    response = server.raw_request(
        "ListClusters",
        {},
        headers={
            "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{today}/us-east-1/ecs/aws4_request"
        },
    )
    assert response.status in AUTH_STATUSES
    assert_error_envelope(response, "IncompleteSignatureException")
    assert "Authorization" in response.error_message, response.error_message


def test_signed_request_without_a_date_is_incomplete(server: BerthServer) -> None:
    response = server.raw_request("ListClusters", {}, drop_headers=("X-Amz-Date",))
    assert response.status in AUTH_STATUSES
    assert_error_envelope(response, "IncompleteSignatureException")


# ----- the JSON 1.1 envelope ---------------------------------------------------------------


def test_error_body_has_type_and_message(server: BerthServer) -> None:
    response = server.raw_request(
        "DescribeTaskDefinition", {"taskDefinition": unique_name("no-such-family")}
    )
    assert response.status == 400
    assert_error_envelope(response, "ClientException")
    document = response.json()
    assert set(document) >= {"__type", "message"}, document
    assert document["message"] == "Unable to describe task definition."


def test_unknown_operation(server: BerthServer) -> None:
    response = server.raw_request("LaunchRockets", {})
    assert response.status == 400
    assert_error_envelope(response, "UnknownOperationException")


def test_malformed_json_is_a_serialization_exception(server: BerthServer) -> None:
    response = server.raw_request("CreateCluster", b'{"clusterName": "x",')
    assert response.status == 400
    assert_error_envelope(response, "SerializationException")


def test_wrongly_typed_member_is_a_serialization_exception(server: BerthServer) -> None:
    response = server.raw_request("ListClusters", {"maxResults": "ten"})
    assert response.status == 400
    assert_error_envelope(response, "SerializationException")


def test_request_ids_are_on_errors_through_boto3(ecs) -> None:
    error = api_error("ClientException", ecs.describe_task_definition,
                      taskDefinition=unique_name("missing"))
    assert error.request_id
    assert error.headers.get("x-amzn-errortype", "").startswith("ClientException")


# ----- process contract ----------------------------------------------------------------------


def test_ready_line_names_the_bound_port(server: BerthServer) -> None:
    host, port = server.host_port
    assert host == "127.0.0.1"
    assert port > 0


def test_sigterm_exits_zero(make_server) -> None:
    berth: BerthServer = make_server()
    berth.client().create_cluster(clusterName=unique_name("before-sigterm"))
    assert berth.stop() == 0


def test_auth_open_accepts_any_well_formed_signature(make_server) -> None:
    berth: BerthServer = make_server("--auth", "open")
    stranger = berth.client(access_key="AKIAANYTHINGATALL000", secret_key="anything")
    name = unique_name("open")
    arn = stranger.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn == f"arn:aws:ecs:us-east-1:{ACCOUNT_ID}:cluster/{name}"
    other = berth.client(access_key="AKIASOMEONEELSE00000", secret_key="other")
    assert arn in other.list_clusters()["clusterArns"]


def test_auth_open_still_requires_a_signature(make_server) -> None:
    berth: BerthServer = make_server("--auth", "open")
    response = berth.raw_request("ListClusters", {}, sign=False)
    assert response.status in AUTH_STATUSES
    assert_error_envelope(response, "MissingAuthenticationTokenException")


def test_auth_open_refuses_a_non_loopback_listen_address(make_server) -> None:
    berth: BerthServer = make_server("--auth", "open", listen="0.0.0.0:0", start=False)
    berth.launch()
    code = berth.wait_exit(timeout_s=15)
    log = berth.log_since_start()
    assert code is not None, "berth kept running with --auth open on 0.0.0.0"
    assert code != 0, log
    assert "berth ready on" not in log, log
