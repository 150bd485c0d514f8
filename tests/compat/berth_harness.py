"""The machinery of the compatibility suite: a real `berth server` process, boto3
clients pointed at it, raw SigV4-signed requests for malformed and edge cases,
and the AWS CLI v1 run as a subprocess.

Nothing here knows how Berth is built; it only uses the product's contract:
the `berth server` flags, the `berth ready on http://ADDR` line, the files in
the data directory and `berth env`.
"""

from __future__ import annotations

import configparser
import contextlib
import datetime as dt
import http.client
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional
from unittest import mock

import boto3
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"
PROFILE = "berth"
ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
HTTP_TIMEOUT_S = 30.0

_READY_LINE = re.compile(r"berth ready on (http://[^\s\"']+)")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# One botocore session for every client: it caches the parsed ECS model, which
# is by far the slowest part of making a client.
_BOTOCORE_SESSION = botocore.session.get_session()


def unique_name(prefix: str) -> str:
    """A resource name no other test uses: `prefix-<10 hex digits>`."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def berth_binary() -> Path:
    """`$BERTH_BIN` (relative paths are taken from the working directory, then
    from the repository root), else `target/release/berth`."""
    configured = os.environ.get("BERTH_BIN")
    if not configured:
        return REPO_ROOT / "target" / "release" / "berth"
    path = Path(configured)
    if path.is_absolute():
        return path
    from_cwd = Path.cwd() / path
    return from_cwd if from_cwd.exists() else REPO_ROOT / path


def aws_cli_binary() -> Path:
    """The `aws` of the running interpreter's venv, else the one on PATH."""
    beside_python = Path(sys.executable).parent / "aws"
    if beside_python.is_file():
        return beside_python
    found = shutil.which("aws")
    if found is None:
        raise FileNotFoundError(
            "the AWS CLI is not installed; run scripts/test.sh, which installs it into .venv"
        )
    return Path(found)


def isolated_environ() -> dict[str, str]:
    """The current environment without any AWS_* variable, so that nothing a
    developer has configured leaks into a test."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


class ServerFailedToStart(RuntimeError):
    pass


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @property
    def error_code(self) -> Optional[str]:
        """The error code the way botocore reads it: `__type` after any `#`."""
        try:
            document = self.json()
        except ValueError:
            return None
        if not isinstance(document, dict) or "__type" not in document:
            return None
        return str(document["__type"]).rsplit("#", 1)[-1]

    @property
    def error_message(self) -> Optional[str]:
        document = self.json()
        return document.get("message", document.get("Message"))


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        if not self.stdout.strip():
            raise AssertionError(f"the AWS CLI printed nothing; stderr:\n{self.stderr}")
        return json.loads(self.stdout)


class BerthServer:
    """One `berth server` process on a data directory.

    `start()` waits for the ready line; `stop()` sends SIGTERM; `kill()` sends
    SIGKILL. The same object can be started again on the same data directory.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        listen: str = "127.0.0.1:0",
        region: str = DEFAULT_REGION,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.listen = listen
        self.region = region
        self.extra_args = extra_args
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.endpoint: Optional[str] = None
        self._log_offset = 0
        self._clients: dict[tuple[str, str, str, str], Any] = {}

    # ----- process lifecycle -------------------------------------------------

    def command(self) -> list[str]:
        return [
            str(berth_binary()),
            "server",
            "--listen",
            self.listen,
            "--data-dir",
            str(self.data_dir),
            "--region",
            self.region,
            *self.extra_args,
        ]

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to be ready."""
        binary = berth_binary()
        if not binary.is_file():
            raise FileNotFoundError(
                f"berth binary not found at {binary}: run `cargo build --release` or set BERTH_BIN"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = isolated_environ()
        env["NO_COLOR"] = "1"
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.endpoint = None
        self._clients.clear()
        return self.process

    def start(self) -> "BerthServer":
        self.launch()
        self.endpoint = self.wait_ready()
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> str:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while True:
            match = _READY_LINE.search(self.log_since_start())
            if match:
                return match.group(1).rstrip("/.,;")
            if self.process.poll() is not None:
                raise ServerFailedToStart(
                    f"berth exited with {self.process.returncode} before it was ready; "
                    f"log:\n{self.log_since_start()[-4000:]}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise ServerFailedToStart(
                    f"no 'berth ready on http://ADDR' line within {timeout_s}s; "
                    f"log:\n{self.log_since_start()[-4000:]}"
                )
            time.sleep(0.05)

    def wait_exit(self, timeout_s: float) -> Optional[int]:
        """The exit code, or None if the process is still running after timeout_s."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then wait; SIGKILL if it does not exit in time. Returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        code = self.wait_exit(timeout_s)
        if code is None:
            self.kill()
            raise AssertionError(f"berth did not exit within {timeout_s}s of SIGTERM")
        return code

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_since_start(self) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            text = log.read().decode("utf-8", errors="replace")
        return _ANSI_ESCAPE.sub("", text)

    # ----- addresses and credentials -----------------------------------------

    @property
    def host_port(self) -> tuple[str, int]:
        assert self.endpoint is not None, "server is not started"
        parsed = urllib.parse.urlsplit(self.endpoint)
        assert parsed.hostname is not None and parsed.port is not None, self.endpoint
        return parsed.hostname, parsed.port

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "config"

    def credentials(self) -> tuple[str, str]:
        """(access key id, secret access key) of the `berth` profile."""
        parser = configparser.ConfigParser()
        parser.read(self.credentials_path)
        section = parser[PROFILE]
        return section["aws_access_key_id"], section["aws_secret_access_key"]

    # ----- clients -------------------------------------------------------------

    def client(
        self,
        region: str = DEFAULT_REGION,
        *,
        access_key: Optional[str] = None,
        secret_key: Optional[str] = None,
        fresh: bool = False,
        service: str = "ecs",
    ) -> Any:
        """A boto3 client of `service` (ECS unless told) for this server, with the
        stored credentials unless others are given. No retries: every call is sent
        exactly once."""
        assert self.endpoint is not None, "server is not started"
        if access_key is None or secret_key is None:
            stored_access_key, stored_secret_key = self.credentials()
            access_key = access_key or stored_access_key
            secret_key = secret_key or stored_secret_key
        key = (service, region, access_key, secret_key, self.endpoint)
        if not fresh and key in self._clients:
            return self._clients[key]
        session = boto3.session.Session(botocore_session=_BOTOCORE_SESSION)
        made = session.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=HTTP_TIMEOUT_S,
                max_pool_connections=32,
            ),
        )
        if not fresh:
            self._clients[key] = made
        return made

    # ----- raw requests ---------------------------------------------------------

    def raw_request(
        self,
        operation: Optional[str] = None,
        body: Any = None,
        *,
        target: Optional[str] = None,
        region: str = DEFAULT_REGION,
        sign: bool = True,
        access_key: Optional[str] = None,
        secret_key: Optional[str] = None,
        signed_at: Optional[dt.datetime] = None,
        headers: Optional[dict[str, str]] = None,
        drop_headers: tuple[str, ...] = (),
        after_signing: Optional[Callable[[bytes], bytes]] = None,
        content_type: str = JSON_CONTENT_TYPE,
    ) -> RawResponse:
        """POST one ECS JSON 1.1 request, signed with SigV4 by botocore unless
        sign=False.

        body: a dict/list (sent as JSON), str or bytes (sent as is); None is `{}`.
        signed_at: the signing time (UTC), to simulate clock skew.
        headers: added or replaced after signing (e.g. a broken Authorization).
        after_signing: rewrites the body after it was signed (tampering).
        """
        assert self.endpoint is not None, "server is not started"
        if target is None:
            assert operation is not None, "give an operation or a target"
            target = f"{ECS_TARGET_PREFIX}.{operation}"
        if body is None:
            payload = b"{}"
        elif isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload = body.encode("utf-8")
        else:
            payload = json.dumps(body).encode("utf-8")
        request = AWSRequest(
            method="POST",
            url=self.endpoint + "/",
            data=payload,
            headers={"Content-Type": content_type, "X-Amz-Target": target},
        )
        if sign:
            if access_key is None or secret_key is None:
                stored_access_key, stored_secret_key = self.credentials()
                access_key = access_key or stored_access_key
                secret_key = secret_key or stored_secret_key
            signer = SigV4Auth(Credentials(access_key, secret_key), "ecs", region)
            with _signing_clock(signed_at):
                signer.add_auth(request)
        final_headers = {name: value for name, value in request.headers.items()}
        for name in drop_headers:
            for existing in list(final_headers):
                if existing.lower() == name.lower():
                    del final_headers[existing]
        for name, value in (headers or {}).items():
            for existing in list(final_headers):
                if existing.lower() == name.lower():
                    del final_headers[existing]
            final_headers[name] = value
        if after_signing is not None:
            payload = after_signing(payload)
        host, port = self.host_port
        connection = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT_S)
        try:
            connection.request("POST", "/", body=payload, headers=final_headers)
            response = connection.getresponse()
            data = response.read()
            received = {name.lower(): value for name, value in response.getheaders()}
            return RawResponse(status=response.status, headers=received, body=data)
        finally:
            connection.close()

    # ----- the AWS CLI and `berth env` -------------------------------------------

    def cli_environ(self, home: Path) -> dict[str, str]:
        """The environment the AWS CLI runs in: only the files Berth wrote."""
        env = isolated_environ()
        env.update(
            {
                "HOME": str(home),
                "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_path),
                "AWS_CONFIG_FILE": str(self.config_path),
                "AWS_PROFILE": PROFILE,
                "LC_ALL": "C.UTF-8",
            }
        )
        return env

    def aws(self, *args: str, home: Path, check: bool = True, timeout_s: float = 60) -> CliResult:
        """Run `aws <args> --endpoint-url <server> --output json`."""
        assert self.endpoint is not None, "server is not started"
        command = [
            str(aws_cli_binary()),
            *args,
            "--endpoint-url",
            self.endpoint,
            "--output",
            "json",
        ]
        completed = subprocess.run(
            command,
            env=self.cli_environ(home),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=str(home),
        )
        result = CliResult(completed.returncode, completed.stdout, completed.stderr)
        if check and result.returncode != 0:
            raise AssertionError(
                f"`aws {' '.join(args)}` exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def env_exports(self, *extra: str) -> dict[str, str]:
        """The variables `berth env --data-dir DIR` exports."""
        completed = subprocess.run(
            [str(berth_binary()), "env", "--data-dir", str(self.data_dir), *extra],
            env=isolated_environ(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert completed.returncode == 0, (
            f"berth env exited {completed.returncode}: {completed.stderr}"
        )
        return parse_exports(completed.stdout)


def parse_exports(text: str) -> dict[str, str]:
    """`export A=1 B=2` (one line or several, shell-quoted) as a dict."""
    exported: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] != "export":
            continue
        for word in words[1:]:
            name, separator, value = word.partition("=")
            if separator:
                exported[name] = value
    return exported


@contextlib.contextmanager
def _signing_clock(signed_at: Optional[dt.datetime]) -> Iterator[None]:
    if signed_at is None:
        yield
        return
    naive_utc = signed_at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=naive_utc):
        yield


# ----- assertions shared by the test modules ----------------------------------------


@dataclass
class ApiError:
    code: str
    message: str
    status: int
    request_id: str
    headers: dict[str, str] = field(default_factory=dict)


def api_error(code: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> ApiError:
    """Call and expect an AWS error with this code; return it for further checks."""
    try:
        call(*args, **kwargs)
    except ClientError as error:
        response = error.response
        got = response.get("Error", {})
        metadata = response.get("ResponseMetadata", {})
        failure = ApiError(
            code=got.get("Code", ""),
            message=got.get("Message", "") or "",
            status=metadata.get("HTTPStatusCode", 0),
            request_id=metadata.get("RequestId", ""),
            headers={k.lower(): v for k, v in metadata.get("HTTPHeaders", {}).items()},
        )
        assert failure.code == code, (
            f"expected {code}, got {failure.code}: {failure.message!r} (HTTP {failure.status})"
        )
        return failure
    raise AssertionError(f"expected {code}, but the call succeeded")


def assert_round_trips(sent: Any, got: Any, path: str = "$") -> None:
    """Every value that was sent comes back unchanged. Dicts may gain keys
    (defaults the service fills in); lists keep their length and order."""
    if isinstance(sent, dict):
        assert isinstance(got, dict), f"{path}: sent an object, got {got!r}"
        for key, value in sent.items():
            assert key in got, f"{path}.{key}: sent {value!r}, missing in the response"
            assert_round_trips(value, got[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(got, list), f"{path}: sent a list, got {got!r}"
        assert len(sent) == len(got), f"{path}: sent {len(sent)} items, got {len(got)}: {got!r}"
        for index, (sent_item, got_item) in enumerate(zip(sent, got)):
            assert_round_trips(sent_item, got_item, f"{path}[{index}]")
    else:
        assert sent == got, f"{path}: sent {sent!r}, got {got!r}"


def cluster_arn(name: str, region: str = DEFAULT_REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:ecs:{region}:{account}:cluster/{name}"


def task_definition_arn(
    family: str, revision: int, region: str = DEFAULT_REGION, account: str = ACCOUNT_ID
) -> str:
    return f"arn:aws:ecs:{region}:{account}:task-definition/{family}:{revision}"


def tag_set(tags: Optional[list[dict[str, str]]]) -> set[tuple[str, str]]:
    return {(tag["key"], tag.get("value", "")) for tag in tags or []}


def container(name: str = "main", image: str = "busybox:1.36", **extra: Any) -> dict[str, Any]:
    """A minimal valid EC2 container definition (memory set)."""
    definition: dict[str, Any] = {"name": name, "image": image, "memory": 128}
    definition.update(extra)
    return {key: value for key, value in definition.items() if value is not None}


def collect_pages(call: Callable[..., dict[str, Any]], key: str, **params: Any) -> list[list[Any]]:
    """Follow nextToken by hand; return the pages."""
    pages: list[list[Any]] = []
    token: Optional[str] = None
    for _ in range(1000):
        request = dict(params)
        if token is not None:
            request["nextToken"] = token
        response = call(**request)
        pages.append(list(response.get(key, [])))
        token = response.get("nextToken")
        if not token:
            return pages
    raise AssertionError("pagination did not end after 1000 pages")


class Backend:
    """An HTTP/1.1 server on 127.0.0.1 answering every GET and POST with its
    name (200), or with 500 once told to fail; `/slow` answers after
    `SLOW_REQUEST_S` seconds."""

    SLOW_REQUEST_S = 3

    def __init__(self, name: str) -> None:
        self.name = name
        self.failing = False
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.path == "/slow":
                    time.sleep(Backend.SLOW_REQUEST_S)
                status = 500 if backend.failing else 200
                body = backend.name.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = answer  # noqa: N815 (http.server's naming)
            do_POST = answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.port = self.http.server_address[1]
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def target(self) -> dict[str, Any]:
        return {"Id": "127.0.0.1", "Port": self.port}

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
