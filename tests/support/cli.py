"""The `vsm` CLI as a process against a running system: how the CLI tests run it, and launch
and clean up their system.

Every command runs as the installed console script (`vsm`), so exit codes, stdout and
stderr are what an operator or a script would see.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from scripts.localrun import (
    LocalSystem,
)
from tests.support.cleanup import delete_namespace
from tests.support.probe import open_probe
from tests.support.system import launch as launch_system
from tests.support.tokens import OPERATE_TOKEN
from vsm.contract.operations import AgentList, ListAgents, earlier_command_queue, results_exchange
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
        name
        for a in agents
        for name in (earlier_command_queue(a).name, earlier_command_queue(a).dead_letter_queue)
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
