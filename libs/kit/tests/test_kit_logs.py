"""The kit's logs: an SDK agent's bound fields reach the rendered JSON line; an exception's
traceback is in it."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging
from vsm.kit.logs import configure_logging
from vsm.agent import AgentIdentity
from vsm.agent.context import agent_log

configure_logging("agent-host", "INFO", "json")
log = agent_log(AgentIdentity("keeper-1", "stock_keeper")).bind(command="ship", command_id="c-1")
log.info("shipped", item="bolt", quantity=4)
logging.getLogger("somelib").info("unrelated", extra={"noise": 1})
"""


def test_an_agents_bound_fields_are_rendered_and_no_other_records_extras() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    shipped, unrelated = (json.loads(line) for line in ran.stdout.splitlines())
    assert shipped["event"] == "shipped"
    assert {k: shipped[k] for k in ("agent_id", "agent_type", "command", "item", "quantity")} == {
        "agent_id": "keeper-1",
        "agent_type": "stock_keeper",
        "command": "ship",
        "item": "bolt",
        "quantity": 4,
    }
    assert shipped["service"] == "agent-host"
    assert unrelated["event"] == "unrelated"
    assert "noise" not in unrelated


FAILING = """
import logging
import structlog
from vsm.kit.logs import configure_logging

configure_logging("control", "INFO", "json")
try:
    raise ValueError("ledger out of balance")
except ValueError:
    structlog.get_logger().exception("tick_failed", tick=3)
    logging.getLogger("faststream").exception("consumer failed")
"""


def test_an_exception_logged_as_json_carries_its_traceback() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", FAILING], capture_output=True, text=True, timeout=60, check=True
    )
    ours, foreign = (json.loads(line) for line in ran.stdout.splitlines())
    for line, event in ((ours, "tick_failed"), (foreign, "consumer failed")):
        assert line["event"] == event
        assert line["exception"].startswith("Traceback (most recent call last):")
        assert "ValueError: ledger out of balance" in line["exception"]
    assert ours["tick"] == 3
