"""The types agent hosts offer, as plain data: registration and its clashes, live hosts,
a spawn's placement (`no_host_for_type`) and a config checked against the type's schema."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, Field

from vsm.agent import Agent, Refused, command, describe
from vsm.agent.registry import TypeClash
from vsm.contract.operations import SpawnAgent
from vsm.operations.admission import admit
from vsm.operations.agents.catalog import built_in_manifests
from vsm.operations.hosting import load_types
from vsm.operations.offers import BUILT_IN, MAX_HOSTS, MAX_TYPES, HostOffers

NOW = datetime(2026, 12, 7, tzinfo=UTC)


class CountConfig(BaseModel):
    step: int = Field(default=1, ge=1)


class Step(BaseModel):
    times: int = Field(ge=1)


class Count(BaseModel):
    value: int


class Counter(Agent[CountConfig]):
    """Counts."""

    name = "counter"

    @command
    async def count(self, step: Step) -> Count:
        """Count up."""
        return Count(value=step.times * self.config.step)


class OtherCounter(Agent[CountConfig]):
    """Counts otherwise: another input model under the same name."""

    name = "counter"

    @command
    async def count(self, step: Count) -> Count:
        """Count up."""
        return step


class Impostor(Agent[CountConfig]):
    """Takes a built-in type's name."""

    name = "worker"

    @command
    async def count(self, step: Step) -> Count:
        """Count up."""
        return Count(value=step.times)


def offers() -> HostOffers:
    return HostOffers(ttl_s=10.0, built_in=built_in_manifests())


def test_a_host_registers_and_its_types_are_offered_while_it_is_heard() -> None:
    known = offers()
    assert known.register("host-a", [describe(Counter)], now=0.0) == ["counter"]
    assert known.live_hosts("counter", now=5.0) == ["host-a"]
    assert [m.name for m in known.offered(now=5.0)] == ["counter"]

    assert known.offered(now=11.0) == []
    with pytest.raises(Refused) as refused:
        known.find("counter", now=11.0)
    assert refused.value.code == "no_host_for_type"
    assert "counter" in refused.value.message
    assert known.find("robot", now=11.0) is None  # never offered: the built-in rules answer


def test_a_clashing_offer_is_refused_naming_both_sources() -> None:
    known = offers()
    known.register("host-a", [describe(Counter)], now=0.0)
    with pytest.raises(TypeClash) as clash:
        known.register("host-b", [describe(OtherCounter)], now=1.0)
    assert clash.value.details["sources"] == ["agent host host-a", "agent host host-b"]
    assert "the input schema of 'count'" in clash.value.message
    with pytest.raises(TypeClash) as built_in:
        known.register("host-c", [describe(Impostor)], now=1.0)
    assert built_in.value.details["sources"][0] == BUILT_IN
    assert known.live_hosts("counter", now=2.0) == ["host-a"]
    known.heard("host-b", [describe(OtherCounter)], now=2.0)  # logged, ignored
    assert "host-b" not in known.hosts


def test_the_hosts_heard_are_bounded() -> None:
    known = offers()
    manifest = describe(Counter)
    for n in range(MAX_HOSTS):
        known.register(f"host-{n}", [manifest], now=0.0)
    with pytest.raises(Refused) as refused:
        known.register("one-more", [manifest], now=1.0)
    assert refused.value.code == "too_many_hosts"
    assert known.register("one-more", [manifest], now=11.0) == ["counter"]  # the rest fell silent


def test_the_types_offered_are_bounded() -> None:
    known = offers()
    manifest = describe(Counter)
    for n in range(MAX_TYPES):
        known.register(f"host-{n}", [manifest.model_copy(update={"name": f"t{n}"})], now=0.0)
    with pytest.raises(Refused) as refused:
        known.register("one-more", [manifest], now=0.0)
    assert refused.value.code == "too_many_agent_types"


def test_a_spawn_of_a_hosted_type_is_checked_by_its_schema_and_served_by_its_pool() -> None:
    known = offers()
    known.register("host-a", [describe(Counter)], now=0.0)
    asked = [
        SpawnAgent(agent_type="counter", config={"step": 2, "allocation": 2}),
        SpawnAgent(agent_type="counter", config={"step": 0, "colour": "red"}),
        SpawnAgent(agent_type="robot"),
    ]

    good, bad, unknown = admit(asked, [], "root", 10, now=NOW, offers=known, monotonic=1.0)

    assert not isinstance(good, Refused)
    assert (good.pool, good.allocation, good.capabilities) == ("counter", 2, ["count"])
    assert isinstance(bad, Refused)
    assert bad.code == "invalid_config"
    assert [e["field"] for e in bad.details["errors"]] == ["config.step"]
    assert isinstance(unknown, Refused)
    assert unknown.code == "invalid_agent_type"


def test_a_host_loads_the_types_of_a_module_or_a_class() -> None:
    module = "vsm_example_agents.csv_summary"
    assert [t.name for t in load_types([module])] == ["csv-summary"]
    assert [t.name for t in load_types([f"{module}:CsvSummary"])] == ["csv-summary"]
    package = sorted(t.name for t in load_types(["vsm_example_agents"]))
    assert package == ["csv-summary", "researcher"]
    with pytest.raises(Exception, match="no agent type"):
        load_types(["vsm.operations.offers"])
