"""The `vsm` CLI against a running system: one system for the CLI tests (own names each), the
CLI as a process (`tests.support.cli`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.flaky_endpoint import FlakyEndpoint, Schedule
from scripts.localrun import (
    ORGANISATION_ENV,
    TOKEN_FILE,
    LocalSystem,
    egress_allowance,
    local_token,
)
from tests.support.cli import launch, stop


@pytest.fixture(scope="package")
def flaky_endpoint() -> Iterator[FlakyEndpoint]:
    """The default organisation's outside service on a free port, running before the system
    so that operations is told its endpoint, as `make run` tells it port 8007's."""
    endpoint = FlakyEndpoint(Schedule(lead_s=5), port=0).start()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="package")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where `make run` has been: its `.run/token` made by the launcher's own
    function, as on a first run (no `MCP_AUTH_TOKEN` in the environment)."""
    directory = tmp_path_factory.mktemp("make-run")
    local_token(directory / TOKEN_FILE, environ={})
    return directory


@pytest.fixture(scope="package")
def cli_system(
    amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    flaky_endpoint: FlakyEndpoint,
    run_dir: Path,
) -> Iterator[LocalSystem]:
    """All seven services with `make run`'s clocks and egress allowance and, besides the
    tests' tokens, the token `make run` generated (as `make run` passes it), shared by the
    CLI tests (own names each)."""
    made = (run_dir / TOKEN_FILE).read_text().strip()
    running = launch(
        amqp_url,
        tmp_path_factory.mktemp("cli-logs"),
        MCP_AUTH_TOKEN=made,
        **ORGANISATION_ENV,
        **egress_allowance(flaky_endpoint.url),
    )
    yield running
    stop(running, amqp_url)


@pytest.fixture(scope="package")
def url(cli_system: LocalSystem) -> str:
    return cli_system.url("mcp-gateway")
