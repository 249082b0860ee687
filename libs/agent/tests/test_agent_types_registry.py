"""One type name, one set of schemas: a second offer of a known name is accepted only when
its config and command schemas are the same, else refused naming both sources."""

from __future__ import annotations

from typing import Any

import pytest

from vsm.agent import TypeClash, TypeRegistry, check_clash
from vsm.contract.agent_types import AgentTypeManifest, same_schemas
from vsm.contract.operations import CommandInfo

NUMBER = {"type": "object", "properties": {"value": {"type": "integer"}}}
TEXT = {"type": "object", "properties": {"value": {"type": "string"}}}


def manifest(**changes: Any) -> AgentTypeManifest:
    fields: dict[str, Any] = {
        "name": "counter",
        "version": "1",
        "description": "Counts.",
        "config_schema": {"type": "object"},
        "commands": {"add": CommandInfo(description="Add.", input_schema=NUMBER)},
    }
    return AgentTypeManifest(**{**fields, **changes})


def test_the_same_schemas_with_other_words_and_versions_are_one_type() -> None:
    registry = TypeRegistry()
    other = manifest(
        version="2",
        description="Counts things.",
        commands={"add": CommandInfo(description="Add one.", input_schema=NUMBER)},
    )

    assert registry.register(manifest(), "host-a")
    assert not registry.register(other, "host-b")
    assert registry.offers["counter"].sources == ["host-a", "host-b"]
    assert registry.get("counter") == manifest()


@pytest.mark.parametrize(
    ("offered", "difference"),
    [
        (manifest(config_schema={"type": "object", "required": ["x"]}), "the config schema"),
        (
            manifest(commands={"add": CommandInfo(description="Add.", input_schema=TEXT)}),
            "the input schema of 'add'",
        ),
        (
            manifest(
                commands={
                    "add": CommandInfo(description="Add.", input_schema=NUMBER, output_schema=TEXT)
                }
            ),
            "the output schema of 'add'",
        ),
        (
            manifest(
                commands={
                    "add": CommandInfo(description="Add.", input_schema=NUMBER),
                    "reset": CommandInfo(description="Reset.", input_schema=NUMBER),
                }
            ),
            "command 'reset' is offered by one only",
        ),
    ],
)
def test_different_schemas_under_a_known_name_are_refused_naming_both_sources(
    offered: AgentTypeManifest, difference: str
) -> None:
    registry = TypeRegistry()
    registry.register(manifest(), "built-in")

    with pytest.raises(TypeClash) as clash:
        registry.register(offered, "host-b (my-agents 1.0)")

    assert clash.value.code == "agent_type_clash"
    assert "'counter'" in clash.value.message
    assert "built-in" in clash.value.message
    assert "host-b (my-agents 1.0)" in clash.value.message
    assert clash.value.details["sources"] == ["built-in", "host-b (my-agents 1.0)"]
    assert clash.value.details["differences"] == [difference]
    assert registry.offers["counter"].sources == ["built-in"]
    assert not same_schemas(manifest(), offered)


def test_check_clash_passes_other_names_and_equal_schemas() -> None:
    check_clash(manifest(), "a", manifest(name="other", config_schema={}), "b")
    check_clash(manifest(), "a", manifest(version="9"), "b")


def test_a_type_goes_when_its_last_source_withdraws() -> None:
    registry = TypeRegistry()
    registry.register(manifest(), "host-a")
    registry.register(manifest(), "host-b")

    registry.withdraw("counter", "host-a")
    assert registry.offers["counter"].sources == ["host-b"]
    registry.withdraw("counter", "host-b")

    assert registry.get("counter") is None
    assert registry.manifests() == []
    assert registry.register(manifest(config_schema={"type": "object", "title": "New"}), "c")


def test_a_manifest_refuses_a_type_or_command_name_that_cannot_travel_in_a_routing_key() -> None:
    with pytest.raises(ValueError, match="name"):
        manifest(name="my.type")
    with pytest.raises(ValueError, match="command names"):
        manifest(commands={"a.#": CommandInfo(description="", input_schema={})})
