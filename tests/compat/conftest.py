"""Fixtures: a `berth server` per test module (started from $BERTH_BIN or
target/release/berth on a free port with a temporary data directory), boto3
clients for it, and a home directory for the AWS CLI.

Each module gets its own server, so state from one area (say account settings)
never leaks into another; tests inside a module use unique resource names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from berth_harness import DEFAULT_REGION, Backend, BerthServer, berth_binary


def pytest_configure(config: pytest.Config) -> None:
    # Nothing from the developer's AWS set-up may reach boto3 in this process.
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def pytest_report_header(config: pytest.Config) -> str:
    return f"berth binary: {berth_binary()}"


@pytest.fixture(scope="session")
def require_berth() -> Path:
    binary = berth_binary()
    if not binary.is_file():
        pytest.fail(
            f"berth binary not found at {binary}: run `cargo build --release` or set BERTH_BIN",
            pytrace=False,
        )
    return binary


@pytest.fixture
def make_server(
    require_berth: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., BerthServer]]:
    """Start extra servers with their own flags; all are stopped afterwards."""
    started: list[BerthServer] = []

    def make(*extra_args: str, listen: str = "127.0.0.1:0", start: bool = True,
             region: str = DEFAULT_REGION) -> BerthServer:
        root = tmp_path_factory.mktemp("berth")
        server = BerthServer(
            root / "data", root / "berth.log", listen=listen, region=region,
            extra_args=tuple(extra_args),
        )
        started.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def server(require_berth: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthServer]:
    root = tmp_path_factory.mktemp("berth-module")
    berth = BerthServer(root / "data", root / "berth.log").start()
    yield berth
    berth.kill()


@pytest.fixture(scope="module")
def ecs(server: BerthServer) -> Any:
    """A boto3 ECS client in us-east-1 with the server's stored credentials."""
    return server.client()


@pytest.fixture
def cli_home(tmp_path: Path) -> Path:
    """An empty HOME for the AWS CLI (no ~/.aws)."""
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def backends() -> Iterator[tuple[Backend, Backend]]:
    """Two HTTP backends on loopback, `backend-a` and `backend-b`."""
    pair = (Backend("backend-a"), Backend("backend-b"))
    yield pair
    for backend in pair:
        backend.stop()
