#!/usr/bin/env python3
"""Generate SigV4 fixtures for crates/aws-protocol from botocore itself.

botocore is the reference client: whatever it sends, our verifier must accept,
and our signer must produce byte-identical Authorization headers for the same
input. Each fixture records the request exactly as it goes on the wire (path
and query as raw strings, every header including Host and the unsigned ones
the HTTP client adds), plus botocore's canonical request and string to sign so
a mismatch can be diagnosed line by line.

The clock is pinned by patching ``botocore.auth.get_current_datetime`` (the
name SigV4Auth reads the time through); nothing is sent over the network: the
real-client fixtures short-circuit the send with a ``before-send`` handler.

Usage (from the repository root):
    python3 tools/sigv4-fixtures/gen.py > crates/aws-protocol/tests/fixtures/sigv4.json
or
    python3 tools/sigv4-fixtures/gen.py --write
"""

import argparse
import calendar
import datetime
import json
import pathlib
import sys
from unittest import mock
from urllib.parse import urlsplit

import botocore
import botocore.auth
import botocore.session
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

ACCESS_KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = (
    "IQoJb3JpZ2luX2VjEHYaCXVzLWVhc3QtMSJHMEUCIQD+session/token+with=odd%chars"
)

OUT_PATH = (
    pathlib.Path(__file__).resolve().parents[2]
    / "crates/aws-protocol/tests/fixtures/sigv4.json"
)

# botocore never sends these with the request it signs (it adds Host itself
# while signing and the HTTP client puts it on the wire); we add Host to the
# recorded wire headers so the fixture is what a server receives.
_captured = {}
_original_string_to_sign = SigV4Auth.string_to_sign


def _capturing_string_to_sign(self, request, canonical_request):
    result = _original_string_to_sign(self, request, canonical_request)
    _captured["canonical_request"] = canonical_request
    _captured["string_to_sign"] = result
    return result


def _epoch(dt):
    return calendar.timegm(dt.timetuple())


def _wire_parts(url):
    parts = urlsplit(url)
    return parts.path or "/", parts.query


def _host_header(url):
    return botocore.auth._host_from_url(url)


def _body_bytes(body):
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def _text(value):
    # botocore keeps some header values (e.g. the client's) as bytes.
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _headers_list(headers):
    return [[_text(name), _text(value)] for name, value in headers.items()]


def _fixture(
    name,
    description,
    *,
    signed_at,
    method,
    url,
    headers,
    body,
    service,
    region,
    form,
    session_token,
    sign_input_headers,
    unsigned_payload=False,
    now_offset_s=7,
):
    path, query = _wire_parts(url)
    wire_headers = [["Host", _host_header(url)]] + headers
    return {
        "name": name,
        "description": description,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET,
        "session_token": session_token,
        "region": region,
        "service": service,
        "signed_at": signed_at.strftime("%Y%m%dT%H%M%SZ"),
        "signed_at_epoch_s": _epoch(signed_at),
        "now_epoch_s": _epoch(signed_at) + now_offset_s,
        "form": form,
        "method": method,
        "path": path,
        "query": query,
        "headers": wire_headers,
        "body_hex": _body_bytes(body).hex(),
        "unsigned_payload": unsigned_payload,
        "canonical_request": _captured["canonical_request"],
        "string_to_sign": _captured["string_to_sign"],
        "sign_input_headers": sign_input_headers,
    }


def sign_direct(
    name,
    description,
    *,
    signed_at,
    method,
    url,
    headers=(),
    body=b"",
    params=None,
    service="ecs",
    region="us-east-1",
    session_token=None,
    presign_expires_s=None,
    sign_comparable=True,
    unsigned_payload=False,
):
    """Sign an AWSRequest with SigV4Auth / SigV4QueryAuth at a pinned time."""
    request = AWSRequest(method=method, url=url, data=body, params=params or {})
    # HTTPHeaders appends on assignment, so repeated names become multi-value.
    for header_name, header_value in headers:
        request.headers[header_name] = header_value
    credentials = Credentials(ACCESS_KEY_ID, SECRET, session_token)
    # What our signer gets as input: the request's headers before signing,
    # plus the Host header the HTTP client will send.
    host = _host_header(url)
    sign_input = [["Host", host]] + _headers_list(request.headers)
    if presign_expires_s is None:
        signer = SigV4Auth(credentials, service, region)
        form = "header"
    else:
        signer = SigV4QueryAuth(credentials, service, region, expires=presign_expires_s)
        form = "query"
    _captured.clear()
    with mock.patch.object(
        botocore.auth, "get_current_datetime", return_value=signed_at
    ):
        signer.add_auth(request)
    prepared = request.prepare()
    # The prepared request folds repeated header names into one; the signed
    # AWSRequest keeps every occurrence, which is what goes on the wire.
    wire_headers = _headers_list(request.headers)
    if "Content-Length" in prepared.headers and "Content-Length" not in request.headers:
        wire_headers.append(["Content-Length", _text(prepared.headers["Content-Length"])])
    return _fixture(
        name,
        description,
        signed_at=signed_at,
        method=prepared.method,
        url=prepared.url,
        headers=wire_headers,
        body=prepared.body,
        service=service,
        region=region,
        form=form,
        session_token=session_token,
        sign_input_headers=sign_input if sign_comparable else None,
        unsigned_payload=unsigned_payload,
    )


def sign_with_client(name, description, *, signed_at, service, region, operation, kwargs):
    """Run a real botocore client call and capture what it would send."""
    session = botocore.session.get_session()
    client = session.create_client(
        service,
        region_name=region,
        endpoint_url="http://127.0.0.1:4566",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET,
    )
    sent = {}

    def capture(request, **_ignored):
        sent["request"] = request
        return AWSResponse(request.url, 200, {}, _EmptyRaw())

    client.meta.events.register("before-send", capture)
    _captured.clear()
    with mock.patch.object(
        botocore.auth, "get_current_datetime", return_value=signed_at
    ):
        try:
            getattr(client, operation)(**kwargs)
        except Exception:  # the empty 200 response may not parse; we only need the request
            pass
    request = sent["request"]
    # Keep the output reproducible: the unsigned User-Agent names this
    # machine's OS and the unsigned invocation id is random.
    headers = [
        [k, _STABLE_UNSIGNED.get(k.lower(), v)] for k, v in _headers_list(request.headers)
    ]
    return _fixture(
        name,
        description,
        signed_at=signed_at,
        method=request.method,
        url=request.url,
        headers=headers,
        body=request.body,
        service=client.meta.service_model.signing_name,
        region=region,
        form="header",
        session_token=None,
        # The client adds SDK bookkeeping headers (amz-sdk-*) after signing;
        # the signer's input is what it signed (minus what signing itself
        # added) plus User-Agent, which it sees but never signs.
        sign_input_headers=[["Host", _host_header(request.url)]]
        + [
            [k, v]
            for k, v in headers
            if k.lower() in _signed_header_names(request.headers["Authorization"]) - {"host", "x-amz-date"}
            or k.lower() == "user-agent"
        ],
    )


def _signed_header_names(authorization):
    authorization = _text(authorization)
    signed = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0]
    return set(signed.split(";"))


_STABLE_UNSIGNED = {
    "user-agent": f"Botocore/{botocore.__version__} (fixture generator)",
    "amz-sdk-invocation-id": "00000000-0000-4000-8000-000000000000",
}


class _EmptyRaw:
    def stream(self, *args, **kwargs):
        yield b"{}"

    def read(self, *args, **kwargs):
        return b"{}"


def build():
    t = datetime.datetime
    fixtures = [
        sign_with_client(
            "ecs-list-clusters-client",
            "A real botocore ECS client call: POST / with JSON 1.1 body and X-Amz-Target.",
            signed_at=t(2015, 8, 30, 12, 36, 0),
            service="ecs",
            region="us-east-1",
            operation="list_clusters",
            kwargs={"maxResults": 10},
        ),
        sign_with_client(
            "ecs-run-task-client",
            "A real botocore ECS RunTask with a nested JSON body.",
            signed_at=t(2024, 2, 29, 23, 59, 59),
            service="ecs",
            region="eu-west-1",
            operation="run_task",
            kwargs={
                "cluster": "default",
                "taskDefinition": "web:3",
                "count": 2,
                "clientToken": "fixture-client-token-1",
                "overrides": {
                    "containerOverrides": [
                        {"name": "app", "environment": [{"name": "GREETING", "value": "héllo wörld ☃"}]}
                    ]
                },
            },
        ),
        sign_with_client(
            "elbv2-describe-load-balancers-client",
            "A real botocore ELBv2 (query protocol) call: form-encoded POST body.",
            signed_at=t(2023, 12, 31, 23, 0, 1),
            service="elbv2",
            region="us-west-2",
            operation="describe_load_balancers",
            kwargs={"Names": ["alb-one", "alb two"], "PageSize": 5},
        ),
        sign_direct(
            "post-json-session-token",
            "POST JSON with X-Amz-Target, signed with temporary credentials (X-Amz-Security-Token signed like any header).",
            signed_at=t(2021, 6, 1, 0, 0, 0),
            method="POST",
            url="http://127.0.0.1:4566/",
            headers=[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DescribeClusters"),
            ],
            body=b'{"clusters":["default"],"include":["TAGS"]}',
            session_token=SESSION_TOKEN,
        ),
        sign_direct(
            "get-vanilla",
            "GET / with no query and no body.",
            signed_at=t(2015, 8, 30, 12, 36, 0),
            method="GET",
            url="https://example.amazonaws.com/",
        ),
        sign_direct(
            "get-query-repeated-keys",
            "GET with unsorted, repeated and empty-valued query parameters and a key with no '='.",
            signed_at=t(2019, 1, 2, 3, 4, 5),
            method="GET",
            url="http://localhost:4566/?b=2&a=3&a=1&a=2&c=&flag&A=upper",
        ),
        sign_direct(
            "get-query-odd-encodings",
            "GET with percent-encoded spaces, plus signs, tildes, reserved characters and UTF-8 in query keys and values.",
            signed_at=t(2020, 2, 29, 12, 0, 0),
            method="GET",
            url=(
                "http://localhost:4566/list?Param-1=value%20with%20space&b=%2Bplus%2B"
                "&tilde=~x~&k%3Dey=v%26al&caf%C3%A9=%E2%98%83&slash=a%2Fb&star=%2A"
            ),
        ),
        sign_direct(
            "get-query-params-dict",
            "GET whose query comes from a params dict (botocore encodes spaces as %20 and '+' as %2B).",
            signed_at=t(2022, 7, 4, 18, 30, 0),
            method="GET",
            url="http://localhost:4566/things",
            params={"Name": "a b+c", "Unicode": "ünïcødé", "Empty": "", "Tilde": "x~y", "Z": "last"},
        ),
        sign_direct(
            "path-spaces-unicode-tilde-plus",
            "Path with encoded spaces, UTF-8, '~', a literal '+' and an encoded '+' (double-encoded in the canonical request).",
            signed_at=t(2018, 11, 5, 6, 7, 8),
            method="GET",
            url="http://localhost:4566/path%20with%20space/caf%C3%A9/~user/a+b/c%2Bd/x%2Fy",
        ),
        sign_direct(
            "path-dot-segments",
            "Path with '.', '..', repeated and trailing slashes (normalized before signing).",
            signed_at=t(2017, 3, 14, 15, 9, 26),
            method="DELETE",
            url="http://localhost:4566/a/./b/../c//d/",
        ),
        sign_direct(
            "headers-extra-whitespace-multi-value",
            "Headers with leading/trailing/inner runs of spaces and tabs, and a header sent twice.",
            signed_at=t(2016, 10, 10, 10, 10, 10),
            method="PUT",
            url="http://localhost:4566/item",
            headers=[
                ("X-Amz-Meta-Spaces", "   a   b    c  "),
                ("X-Amz-Meta-Tab", "x\t\ty z"),
                ("X-Multi", " first  value "),
                ("X-Multi", "second"),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("User-Agent", "not-signed/1.0"),
            ],
            body=b"hello world",
        ),
        sign_direct(
            "date-header-instead-of-x-amz-date",
            "The request carries a Date header, so botocore signs it instead of X-Amz-Date.",
            signed_at=t(2015, 8, 30, 12, 36, 0),
            method="POST",
            url="http://localhost:4566/",
            headers=[("Date", "placeholder"), ("Content-Type", "application/x-amz-json-1.1")],
            body=b"{}",
            sign_comparable=False,
        ),
        sign_direct(
            "unsigned-payload",
            "X-Amz-Content-SHA256: UNSIGNED-PAYLOAD: the body is not part of the signature.",
            signed_at=t(2025, 5, 5, 5, 5, 5),
            method="POST",
            url="http://localhost:4566/upload",
            headers=[("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"), ("Content-Type", "application/octet-stream")],
            body=b"\x00\x01binary\xffpayload",
            unsigned_payload=True,
        ),
        sign_direct(
            "explicit-content-sha256",
            "X-Amz-Content-SHA256 carrying the real body hash.",
            signed_at=t(2025, 5, 5, 5, 5, 6),
            method="POST",
            url="http://localhost:4566/",
            headers=[
                ("X-Amz-Content-SHA256", "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"),
                ("Content-Type", "text/plain"),
            ],
            body=b"hello world\n",
        ),
        sign_direct(
            "presigned-get",
            "Query-string (presigned) GET with operation parameters and X-Amz-Expires=300.",
            signed_at=t(2015, 8, 30, 12, 36, 0),
            method="GET",
            url="http://localhost:4566/",
            params={"Action": "ListClusters", "Version": "2014-11-13", "Name": "a b"},
            presign_expires_s=300,
        ),
        sign_direct(
            "presigned-with-token-and-header",
            "Presigned request with a session token, an extra signed header and an odd path.",
            signed_at=t(2023, 4, 1, 8, 0, 0),
            method="GET",
            url="http://localhost:4566/caf%C3%A9/~x/",
            headers=[("X-Amz-Meta-Flavor", "  vanilla  bean ")],
            session_token=SESSION_TOKEN,
            presign_expires_s=3600,
        ),
        sign_direct(
            "patch-empty-body-port-80",
            "PATCH with an empty body to a default-port URL (Host without the port).",
            signed_at=t(2030, 1, 1, 0, 0, 0),
            method="PATCH",
            url="http://example.com:80/resource?x=1",
            service="elasticloadbalancing",
            region="ap-southeast-2",
        ),
    ]
    return {
        "generator": "tools/sigv4-fixtures/gen.py",
        "botocore_version": botocore.__version__,
        "fixtures": fixtures,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {OUT_PATH}")
    args = parser.parse_args()
    with mock.patch.object(SigV4Auth, "string_to_sign", _capturing_string_to_sign):
        data = build()
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if args.write:
        OUT_PATH.parent.mkdir(parents=True, exist_ok=True)
        OUT_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {len(data['fixtures'])} fixtures to {OUT_PATH}", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
