"""What a service loads only when it needs it (issue 18: an idle service stays small).

Each service's entry module is imported in a fresh interpreter, as `python -m vsm.<service>`
would before reading its settings: the clients of the outside (httpx for egress, the Anthropic,
Telegram and MCP SDKs) and Jinja2 must not be loaded yet. They are imported where they are
used, once a source is polled, an agent calls out, an LLM or a bot is configured. rich (and
pygments with it), which structlog would import for its tracebacks, is never loaded by a
service's own process (`vsm.kit.lean`), though the CLI keeps it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVICES = (
    "queen",
    "intelligence",
    "control",
    "coordinator",
    "operations",
    "telegram_gateway",
    "mcp_gateway",
)
ON_DEMAND = ("httpx", "httpcore", "anthropic", "telegram", "mcp", "jinja2")
"""Top-level packages loaded only when a service uses them."""
NEVER = ("rich", "pygments")
"""Top-level packages a service's process never loads (`vsm.kit.lean.NOT_IN_SERVICES`)."""

PROBE = """
import json, sys
import vsm.{service}.__main__
print(json.dumps(sorted({{n.split(".")[0] for n, m in sys.modules.items() if m is not None}})))
"""


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_loads_no_outside_client_before_it_needs_one(service: str) -> None:
    probe = PROBE.format(service=service)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )

    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))

    assert sorted(loaded & set(ON_DEMAND)) == []
    assert sorted(loaded & set(NEVER)) == []


LOGGED = """
import vsm.operations.__main__
import structlog
from vsm.kit.logs import configure_logging
configure_logging("operations", "INFO", "console")
try:
    1 / 0
except ZeroDivisionError:
    structlog.get_logger("probe").exception("failed", step=3)
"""


def test_a_service_without_rich_still_logs_an_exception_with_its_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOGGED],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )

    assert "failed" in done.stdout
    assert "ZeroDivisionError: division by zero" in done.stdout
    assert 'File "<string>", line 7' in done.stdout


def test_outside_a_service_process_structlog_keeps_rich() -> None:
    probe = "import sys, structlog.dev; print(structlog.dev.rich is not None)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )

    assert done.stdout.strip() == "True"
