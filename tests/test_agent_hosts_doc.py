"""docs/agent-hosts.md, the protocol a host in another language implements, names only what
the contract defines: its message types, exchanges, queues, routing keys, error codes and
queue arguments are checked against the code, so the page cannot drift from it unseen."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

# Each contract module registers its message types when imported.
import vsm.agent.failures
import vsm.contract.agent_types
import vsm.contract.algedonic
import vsm.contract.control
import vsm.contract.coordination
import vsm.contract.errors
import vsm.contract.health
import vsm.contract.llm
import vsm.contract.operations
import vsm.contract.performance
from vsm.contract import topology
from vsm.contract.agent_types import HOST_SERVICE, MAX_OFFERS
from vsm.contract.control import allocation_key
from vsm.contract.coordination import note_key
from vsm.contract.llm import llm_usage_key
from vsm.contract.message import message_types
from vsm.contract.operations import (
    AGENT_DEAD_LETTERS,
    REGISTRY_LOG,
    TYPE_PARTITIONS,
    agent_routes,
    audit_key,
    command_key,
    pool_queue,
    registry_key,
    results_exchange,
)
from vsm.contract.performance import performance_key

PAGE = Path(__file__).resolve().parents[1] / "docs" / "agent-hosts.md"
TEXT = PAGE.read_text()
QUOTED = set(re.findall(r"`([^`]+)`", TEXT))


def table_after(heading: str) -> list[list[str]]:
    """The rows (cells) of the Markdown table whose header line starts with `heading`."""
    rows, inside = [], False
    for line in TEXT[TEXT.index(heading) :].splitlines()[1:]:
        if line.startswith("|"):
            inside = True
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if not set(cells[0]) <= {"-"}:
                rows.append(cells)
        elif inside:
            break
    return rows


def test_every_message_type_named_is_one_of_the_contract() -> None:
    named = {q for q in QUOTED if re.fullmatch(r"vsm(\.[a-z0-9-]+)+\.v\d+", q)}
    assert len(named) >= 15, named
    assert named <= set(message_types()), named - set(message_types())
    for model, type_name in (
        (vsm.contract.agent_types.RegisterHost, "vsm.s1.host.register.v1"),
        (vsm.contract.agent_types.HostRegistered, "vsm.s1.host.registered.v1"),
    ):
        assert type_name == model.TYPE
        assert f"`{type_name}` (`{model.__name__}`" in TEXT


def test_the_names_table_is_the_topology() -> None:
    exchanges = {exchange.name for exchange in topology.EXCHANGES}
    queues = {REGISTRY_LOG.name, AGENT_DEAD_LETTERS, pool_queue("<type>", 0).name[:-1] + "<k>"}
    queues |= {results_exchange("<id>").name}  # an exchange of the agent's own
    queues |= {topology.requests_queue(HOST_SERVICE).name}
    for name, *_ in table_after("| name | kind |"):
        assert name.strip("`") in exchanges | queues, name


def test_the_routing_keys_are_the_contracts() -> None:
    keys = {
        command_key("<type>", "<id>", "<command>"),
        audit_key("<id>"),
        allocation_key("<id>"),
        note_key("<id>"),
        *(join.routing_key for join in topology.JOINS),
        performance_key("<id>"),
        llm_usage_key("<type>"),
        registry_key("crashed", "<type>"),
        "operations.register",
    }
    assert keys <= QUOTED, keys - QUOTED
    routes = {binding.routing_key for binding in agent_routes("<id>", 0, "<type>").bindings}
    assert routes == {"*.<id>.*"}
    assert all(f"`{route}`" in TEXT for route in routes)
    assert topology.request_key("operations", "register") == "operations.register"


def test_the_pool_queue_arguments_are_what_the_kit_declares() -> None:
    queue = pool_queue("researcher", 0)
    assert queue.kind == "quorum"
    assert queue.arguments == {"x-single-active-consumer": True}
    assert queue.dead_letter_queue == AGENT_DEAD_LETTERS
    for argument in (
        "x-queue-type: quorum",
        "x-single-active-consumer: true",
        f"x-delivery-limit: {topology.DELIVERY_LIMIT}",
        "x-dead-letter-strategy: at-least-once",
        "x-overflow: reject-publish",
    ):
        assert argument in TEXT, argument
    assert f"(default {TYPE_PARTITIONS})" in TEXT
    assert f"1..{MAX_OFFERS} `AgentTypeManifest`s" in TEXT
    assert f"| `service` | `{HOST_SERVICE}` |" in TEXT


def test_the_error_codes_are_the_sdks() -> None:
    rows = table_after("| code | when |")
    documented = {row[0].strip("`") for row in rows if row[0].startswith("`")}
    source = inspect.getsource(vsm.agent.failures)
    theirs = set(re.findall(r"^\| `([a-z_]+)` \|", source, re.MULTILINE))
    assert documented == theirs
