"""What a service loads only when it needs it (issue 18: an idle service stays small).

Each service's entry module is imported in a fresh interpreter, as `python -m vsm.<service>`
would before reading its settings: the clients of the outside (httpx for egress, the Anthropic,
Telegram and MCP SDKs) and Jinja2 must not be loaded yet. They are imported where they are
used, once a source is polled, an agent calls out, an LLM or a bot is configured.
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

PROBE = """
import json, sys
import vsm.{service}.__main__
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_loads_no_outside_client_before_it_needs_one(service: str) -> None:
    probe = PROBE.format(service=service)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=300
    )

    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))

    assert sorted(loaded & set(ON_DEMAND)) == []
