"""The AsyncAPI documents are valid AsyncAPI 3.0 (the official JSON Schema, vendored), their
references resolve, and they are complete: every exchange and queue of the contract that a
service's code names is a channel of its document, and every request a service sends is one
its addressee's document says it takes."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from scripts.gen_docs import HOST, MODULES, ROOT, documents
from vsm.contract import operations, recursion, telegram, topology

SCHEMA = json.loads(
    (Path(__file__).parent / "support" / "asyncapi" / "asyncapi-3.0.0.schema.json").read_text()
)
DOCUMENTS = {
    path.stem: json.loads(text) for path, text in documents().items() if "asyncapi" in path.parts
}
HELPERS = {
    "partition_queue": lambda: operations.partition_queue("{partition}"),  # type: ignore[arg-type]
    "agent_routes": lambda: operations.agent_routes("{agent_id}", "{partition}"),  # type: ignore[arg-type]
    "results_exchange": lambda: operations.results_exchange("{agent_id}"),
    "meta_queue": lambda: recursion.meta_queue("{vsm_id}"),
}
"""Contract functions that name an agent's or a child's own queue or exchange."""
CONTRACT = {
    name: value
    for module in (topology, operations, recursion, telegram)
    for name, value in vars(module).items()
    if isinstance(value, topology.Exchange | topology.Queue)
}


DOCUMENTED = sorted([*MODULES, HOST])
"""The services, and an agent host (operations' code offering SDK types)."""


def test_there_is_a_document_per_service() -> None:
    assert set(DOCUMENTS) == {*MODULES, HOST}


@pytest.mark.parametrize("service", DOCUMENTED)
def test_the_document_is_valid_asyncapi_3(service: str) -> None:
    validator = jsonschema.Draft7Validator(SCHEMA)
    problems = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}"
        for error in validator.iter_errors(DOCUMENTS[service])
    ]
    assert not problems, "\n".join(problems)
    assert DOCUMENTS[service]["asyncapi"] == "3.0.0"


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"]
        for item in value.values():
            yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    found: Any = document
    for part in ref[2:].split("/"):
        found = found[part.replace("~1", "/").replace("~0", "~")]
    return found


@pytest.mark.parametrize("service", DOCUMENTED)
def test_every_reference_resolves_and_operations_use_their_channels_messages(
    service: str,
) -> None:
    document = DOCUMENTS[service]
    for ref in set(refs(document)):
        resolve(document, ref)
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), (name, message)
        carries_any = "dead-letter" in channel or channel.endswith(".dlq") or "dlq" in channel
        assert operation["messages"] or carries_any, f"{name} carries nothing"


def names(service: str) -> set[str]:
    """The contract's exchanges and queues that the service's code names (agents' and
    children's own as their templates)."""
    package = ROOT / "services" / service / "vsm" / MODULES[service].split(".")[-1]
    found: set[str] = set()
    for source in package.rglob("*.py"):
        nodes = list(ast.walk(ast.parse(source.read_text())))
        dead_letters = {
            id(node.value): node.attr
            for node in nodes
            if isinstance(node, ast.Attribute) and node.attr == "dead_letter_queue"
        }
        for node in nodes:
            named = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
            if named in CONTRACT:
                named_thing = CONTRACT[named]
                if isinstance(named_thing, topology.Queue) and id(node) in dead_letters:
                    found.add(named_thing.dead_letter_queue)  # named for its dead letters only
                else:
                    found.add(named_thing.name)
            call = node.func if isinstance(node, ast.Call) else None
            helper = getattr(call, "id", None) or getattr(call, "attr", None)
            if helper in HELPERS:
                found.add(HELPERS[helper]().name)
    return found


def channels(document: dict[str, Any]) -> set[str]:
    """The exchanges and queues a document's channels name or are bound to."""
    found: set[str] = set()
    for channel in document["channels"].values():
        amqp = channel.get("bindings", {}).get("amqp", {})
        found.update(part["name"] for key in ("exchange", "queue") if (part := amqp.get(key)))
        found.update(b["exchange"] for b in channel.get("x-vsm-bindings", []))
    return found


def template(name: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", name)


@pytest.mark.parametrize("service", sorted(MODULES))
def test_every_exchange_and_queue_the_code_names_is_a_channel(service: str) -> None:
    documented = {template(name) for name in channels(DOCUMENTS[service])}
    used = {template(name) for name in names(service)}
    assert used, f"found no contract names in {service}'s code"
    assert used <= documented, f"missing from docs/asyncapi/{service}.json: {used - documented}"


@pytest.mark.parametrize("service", DOCUMENTED)
def test_the_kit_s_own_channels_are_in_every_document(service: str) -> None:
    document = DOCUMENTS[service]
    assert {
        "receive.vsm." + service + ".requests",
        "send.vsm.health",
        "send.vsm.dead-letter.queue",
    } <= set(document["operations"])
    answers = document["operations"]["receive.vsm." + service + ".requests"]["reply"]
    assert "Pong" in {ref["$ref"].rsplit("/", 1)[1] for ref in answers["messages"]}


def taken(document: dict[str, Any], channel: str) -> set[str]:
    return set(document["channels"][channel]["messages"])


@pytest.mark.parametrize("service", DOCUMENTED)
def test_every_request_sent_is_one_the_addressee_takes(service: str) -> None:
    asked = {
        name: channel
        for name, channel in DOCUMENTS[service]["channels"].items()
        if name.startswith("vsm.requests.")
    }
    for name in asked:
        addressee = name.removeprefix("vsm.requests.").removesuffix(".any")
        if addressee.endswith(".reply"):
            continue
        takes = taken(DOCUMENTS[addressee], f"vsm.{addressee}.requests")
        sent = taken(DOCUMENTS[service], name)
        assert sent <= takes, f"{service} asks {addressee} for {sent - takes}, not taken"
