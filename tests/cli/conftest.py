"""The `vsm` CLI against a running system: one system for the CLI tests, the CLI as a process.

Every command runs as the installed console script (`vsm`), so exit codes, stdout and
stderr are what an operator or a script would see.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
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
from tests.integration.conftest import launch as launch_system
from tests.support.cleanup import delete_namespace
from tests.support.probe import open_probe
from tests.support.tokens import OPERATE_TOKEN
from vsm.contract.operations import AgentList, ListAgents, command_queue, results_exchange
from vsm.contract.recursion import meta_queue

READY_TIMEOUT_S = 240.0
"""Seven interpreters importing their libraries on a busy two-core machine can take minutes."""
VSM = str(Path(sys.executable).with_name("vsm"))
CHILDREN = ("root/logistics", "root/logistics/fleet", "root/billing")
"""Meta-systems the CLI tests may create (their queues are deleted afterwards)."""


def vsm(
    *args: str,
    url: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the console script (`stdin` its input); the gateway from `url` (with the operate
    token of the systems tests launch, in `VSM_TOKEN`) unless the test sets it up otherwise."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VSM_")}
    environ |= {"NO_COLOR": "1", "COLUMNS": "200"}
    environ |= {"VSM_TOKEN": OPERATE_TOKEN} if url else {}
    environ |= env or {}
    command = [VSM, *(["--url", url] if url else []), *args]
    return subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def row_matches(pattern: str, output: str) -> bool:
    """Whether a line of a table, without the spaces around it, matches `pattern` whole."""
    return any(re.fullmatch(pattern, line.strip()) for line in output.splitlines())


async def delete_everything(amqp_url: str, namespace: str, children: Iterable[str]) -> None:
    """Every agent's queue and results exchange, the children's inboxes, then the rest."""
    agents: list[str] = []
    async with open_probe(amqp_url, namespace) as probe:
        query = ListAgents(include_terminated=True)
        agents = [
            a.agent_id
            for a in (await probe.bus.query("operations", "list", query, AgentList)).agents
        ]
    queues = [
        name for a in agents for name in (command_queue(a).name, command_queue(a).dead_letter_queue)
    ]
    queues += [meta_queue(child).name for child in children]
    exchanges = [results_exchange(a).name for a in agents]
    await delete_namespace(amqp_url, namespace, queues=queues, exchanges=exchanges)


def stop(system: LocalSystem, amqp_url: str, children: Iterable[str] = CHILDREN) -> None:
    try:
        asyncio.run(delete_everything(amqp_url, system.env["VSM_NAMESPACE"], children))
    finally:
        system.stop()
        asyncio.run(delete_namespace(amqp_url, system.env["VSM_NAMESPACE"]))


def launch(amqp_url: str, log_dir: Path, **env: str) -> LocalSystem:
    """As tests/integration's `launch()`, with a readiness deadline for a loaded machine."""
    return launch_system(amqp_url, log_dir, ready_within_s=READY_TIMEOUT_S, **env)


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
