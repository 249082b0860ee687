"""The package as a host, an operator and a release see it: its types found through the
installed entry points, its organisation file valid for them, its wheel and sdist clean."""

from __future__ import annotations

from pathlib import Path

from vsm_example_agents import AGENT_TYPES, CsvSummary, Researcher

from scripts import release
from vsm.agent import AgentIdentity, Invocation, TypeRegistry, describe, discover, spawn
from vsm.cli.organisation.checks import check_configs
from vsm.cli.organisation.source import load

HERE = Path(__file__).resolve().parents[1]
ORGANISATION = HERE / "organisation.yaml"


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


def test_the_package_builds_as_make_release_check_wants_it(tmp_path: Path) -> None:
    version = release.project_version()
    built = release.build_packages(tmp_path, ["vsm-example-agents"])
    assert len(built) == 2
    for path in built:
        check = release.wheel_problems if path.suffix == ".whl" else release.sdist_problems
        assert check(path, version) == []


async def test_the_sample_data_summarises() -> None:
    identity = AgentIdentity("csv-1", "csv-summary")
    running = await spawn(CsvSummary, {"data_dir": str(HERE / "data")}, identity)
    done = await running.run(Invocation("summarise", {"path": "orders.csv"}))
    assert done.result.result is not None
    assert done.result.result["rows"] == 6
    quantity = done.result.result["columns"][2]
    assert (quantity["name"], quantity["empty"], quantity["max"]) == ("quantity", 1, 40.0)
