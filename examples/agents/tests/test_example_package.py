"""The package as a host and an operator see it: its types found through the installed
entry points, and its organisation file valid for them."""

from __future__ import annotations

from pathlib import Path

from vsm_example_agents import AGENT_TYPES, CsvSummary, Researcher

from vsm.agent import TypeRegistry, describe, discover
from vsm.cli.organisation.checks import check_configs
from vsm.cli.organisation.source import load

ORGANISATION = Path(__file__).resolve().parents[1] / "organisation.yaml"


def test_discover_finds_both_types_through_the_installed_entry_points() -> None:
    found = discover(registry=TypeRegistry())
    ours = {t.agent_class: t.source for t in found.types if "vsm-example-agents" in t.source}
    assert set(ours) == {CsvSummary, Researcher}
    assert ours[CsvSummary].endswith("csv-summary = vsm_example_agents.csv_summary:CsvSummary")
    assert not [p for p in found.problems if p.package.startswith("vsm-example-agents")]


def test_the_organisation_file_spawns_one_agent_of_each_type_with_valid_configs() -> None:
    organisation = load(ORGANISATION).organisation
    assert sorted(agent.type for agent in organisation.agents) == ["csv-summary", "researcher"]
    schemas = {describe(t).name: describe(t).config_schema for t in AGENT_TYPES}
    assert check_configs(organisation, schemas) == []
