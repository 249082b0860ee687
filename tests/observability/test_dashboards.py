"""The committed dashboards are what scripts/gen_dashboards.py generates, and well formed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts.gen_dashboards import GRID_WIDTH, OUTPUT, ROOT, dashboards
from tests.observability.panels import queries

GENERATED = dashboards()


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_dashboard_matches_the_generator(path: Path) -> None:
    committed = path.read_text() if path.exists() else ""
    assert committed == GENERATED[path], f"{path} is stale: run `make docs` and commit it"


def test_no_dashboard_is_left_that_the_generator_does_not_make() -> None:
    assert set(OUTPUT.glob("*.json")) == set(GENERATED)


def cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
    grid = panel["gridPos"]
    return {
        (x, y)
        for x in range(grid["x"], grid["x"] + grid["w"])
        for y in range(grid["y"], grid["y"] + grid["h"])
    }


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: p.name)
def test_panels_are_laid_out_without_overlap_and_query_the_chosen_source(path: Path) -> None:
    dashboard = json.loads(GENERATED[path])
    assert path.name == f"{dashboard['uid']}.json"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= GRID_WIDTH, panel["title"]
        assert not cells(panel) & taken, f"{panel['title']} overlaps another panel"
        taken |= cells(panel)
        assert panel["targets"], panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_every_query_names_metrics_and_only_known_grafana_variables() -> None:
    found = queries(OUTPUT)  # resolving raises on a variable the live test would not know
    assert len(found) > 50
    assert all(query.metrics for query in found), [q for q in found if not q.metrics]
