"""Agent types published by installed packages as `vsm.agent_types` entry points: loaded,
and what is broken reported with its package's name and skipped, never raised.

Each test installs tiny packages (a module and its `.dist-info` with `entry_points.txt`)
into a directory of its own put on `sys.path`: importlib.metadata finds them as it would
find any installed distribution."""

from __future__ import annotations

import logging
import sys
import textwrap
from pathlib import Path

import pytest

from vsm.agent import ENTRY_POINT_GROUP, TypeRegistry, describe, discover

GROUP = "vsm.agent_types_test"
"""A group of these tests' own: nothing installed in the environment answers to it."""

AGENT = '''
from pydantic import BaseModel

from vsm.agent import Agent, command


class Ping(BaseModel):
    text: str = "{schema}"


class Pinger(Agent):
    """Answers pings."""

    name = "{name}"

    @command
    async def ping(self, data: Ping) -> None:
        """Ping."""
'''


def install(site: Path, package: str, module: str, source: str, entries: dict[str, str]) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{package.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("sdk_test_")]:
        del sys.modules[name]


def test_the_group_is_the_documented_one() -> None:
    assert ENTRY_POINT_GROUP == "vsm.agent_types"


def test_a_packages_types_are_loaded(site: Path) -> None:
    install(
        site,
        "good-agents",
        "sdk_test_good",
        AGENT.format(name="pinger", schema="a"),
        {"pinger": "sdk_test_good:Pinger", "both": "sdk_test_good:ALL"},
    )
    (site / "sdk_test_good.py").write_text(
        (site / "sdk_test_good.py").read_text() + "\nALL = [Pinger]\n"
    )

    found = discover(GROUP)

    assert found.problems == ()
    (pinger,) = found.types  # the second entry names the same type: one type
    assert describe(pinger.agent_class).name == "pinger"
    assert pinger.source.startswith("good-agents 1.0: ")


def test_broken_entry_points_are_reported_with_their_package_and_skipped(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install(
        site,
        "good-agents",
        "sdk_test_good",
        AGENT.format(name="pinger", schema="a"),
        {"pinger": "sdk_test_good:Pinger"},
    )
    install(site, "missing-agents", "sdk_test_missing", "", {"gone": "sdk_test_nowhere:Agent"})
    install(
        site,
        "crashing-agents",
        "sdk_test_crash",
        "raise RuntimeError('at import')\n",
        {"crash": "sdk_test_crash:X"},
    )
    install(
        site,
        "odd-agents",
        "sdk_test_odd",
        "NOT_AN_AGENT = 42\n",
        {"odd": "sdk_test_odd:NOT_AN_AGENT"},
    )
    install(
        site,
        "nameless-agents",
        "sdk_test_nameless",
        AGENT.replace('name = "{name}"', "").format(schema="a"),
        {"nameless": "sdk_test_nameless:Pinger"},
    )
    install(
        site,
        "clashing-agents",
        "sdk_test_clash",
        AGENT.format(name="pinger", schema="b"),
        {"pinger": "sdk_test_clash:Pinger"},
    )

    with caplog.at_level(logging.WARNING, logger="vsm.agent.discovery"):
        found = discover(GROUP)

    assert [describe(t.agent_class).name for t in found.types] == ["pinger"]
    problems = {p.package: p for p in found.problems}
    assert sorted(problems) == [
        "clashing-agents 1.0",
        "crashing-agents 1.0",
        "missing-agents 1.0",
        "nameless-agents 1.0",
        "odd-agents 1.0",
    ]
    assert "ModuleNotFoundError" in problems["missing-agents 1.0"].error
    assert "at import" in problems["crashing-agents 1.0"].error
    assert "42 is not a vsm.agent.Agent subclass" in problems["odd-agents 1.0"].error
    assert "set `name`" in problems["nameless-agents 1.0"].error
    clash = problems["clashing-agents 1.0"].error
    assert "good-agents 1.0" in clash
    assert "clashing-agents 1.0" in clash
    assert len(caplog.records) == 5
    assert all(
        p.package in r.getMessage() for p, r in zip(found.problems, caplog.records, strict=True)
    )


def test_a_registry_given_checks_the_packages_against_types_known_before(site: Path) -> None:
    install(
        site,
        "late-agents",
        "sdk_test_late",
        AGENT.format(name="pinger", schema="b"),
        {"pinger": "sdk_test_late:Pinger"},
    )
    install(
        site,
        "early-agents",
        "sdk_test_early",
        AGENT.format(name="pinger", schema="a"),
        {"pinger": "sdk_test_early:Pinger"},
    )
    known = TypeRegistry()
    first = describe(discover(GROUP).types[0].agent_class)
    known.register(first.model_copy(update={"config_schema": {"type": "object"}}), "built-in")

    found = discover(GROUP, registry=known)

    assert found.types == ()
    assert sorted(p.package for p in found.problems) == ["early-agents 1.0", "late-agents 1.0"]
    assert all("from the one built-in offers (the config schema" in p.error for p in found.problems)
