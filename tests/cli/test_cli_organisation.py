"""`vsm apply` and `vsm diff` with organisation files against the running system."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import vsm
from tests.support.tokens import bearer

pytestmark = pytest.mark.integration

SAMPLE = """\
identity:
  purpose: Check that organisation files work.
  values: [idempotence]
agents:
  - name: org-w
    type: worker
    count: 2
    config: {allocation: 2}
  - name: org-sensor
    type: sensor
    config: {interval_s: 5}
  - name: org-spare
    type: worker
"""
CHANGED = """\
identity:
  purpose: Check that organisation files work.
  values: [idempotence]
agents:
  - name: org-w
    type: worker
    count: 3
    config: {allocation: 2}
  - name: org-sensor
    type: sensor
    config: {interval_s: 2}
"""
BUDGET = "budget: {concurrency_slots: 64, llm_tokens_per_min: 1000, memory_mb: 4096}\n"
CHILDREN = """\
meta_systems:
  - name: logistics
    identity: {purpose: Move things.}
    budget: {concurrency_slots: 8, llm_tokens_per_min: 0, memory_mb: 512}
    agents:
      - {name: mover, type: worker, config: {allocation: 1}}
    meta_systems:
      - name: fleet
        identity: {purpose: Keep the vans running.}
        budget: {concurrency_slots: 2, llm_tokens_per_min: 0, memory_mb: 128}
"""


def write(tmp_path: Path, text: str, name: str = "org.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def agents(url: str, prefix: str = "org-") -> dict[str, dict[str, Any]]:
    listed = json.loads(vsm("agents", "list", "--json", url=url).stdout)
    return {a["name"]: a for a in listed if (a["name"] or "").startswith(prefix)}


def test_apply_creates_the_declared_agents_and_identity(url: str, tmp_path: Path) -> None:
    applied = vsm("apply", "-f", write(tmp_path, SAMPLE), url=url)
    assert applied.returncode == 0, applied.stderr
    for name in ("org-w-1", "org-w-2", "org-sensor", "org-spare"):
        assert f"created agent {name} of root" in applied.stdout
    assert "created identity of root" in applied.stdout or "updated identity" in applied.stdout
    running = agents(url)
    assert set(running) == {"org-w-1", "org-w-2", "org-sensor", "org-spare"}
    assert running["org-w-1"]["config"]["allocation"] == 2
    assert running["org-sensor"]["agent_type"] == "sensor"
    identity = httpx.get(f"{url}/api/vsm/identity", headers=bearer(), timeout=30).json()
    assert identity["policy"]["purpose"] == "Check that organisation files work."


def test_applying_the_same_file_again_changes_nothing(url: str, tmp_path: Path) -> None:
    before = {name: a["agent_id"] for name, a in agents(url).items()}
    again = vsm("apply", "-f", write(tmp_path, SAMPLE), url=url)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "No changes: the running system matches the file.\n"
    assert {name: a["agent_id"] for name, a in agents(url).items()} == before
    planned = json.loads(vsm("diff", "-f", write(tmp_path, SAMPLE), "--json", url=url).stdout)
    assert [
        s for s in planned["steps"] if s["vsm_id"] == "root" and s["action"] != "unlisted"
    ] == []


def test_a_changed_file_gives_the_expected_diff_and_apply(url: str, tmp_path: Path) -> None:
    before = agents(url)
    path = write(tmp_path, CHANGED)
    planned = vsm("diff", "-f", path, url=url)
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert "  + agent org-w-3: worker" in lines
    assert "  -/+ agent org-sensor: config differs: interval_s" in lines
    assert "  ? agent org-spare: not in the file (kept; --prune removes it)" in lines
    assert lines[-1].startswith("Plan: 1 to create, 0 to update, 1 to replace, 0 to remove.")
    assert agents(url).keys() == before.keys()  # diff changed nothing

    applied = vsm("apply", "-f", path, url=url)
    assert applied.returncode == 0, applied.stderr
    after = agents(url)
    assert set(after) == {"org-w-1", "org-w-2", "org-w-3", "org-sensor", "org-spare"}
    assert after["org-sensor"]["agent_id"] != before["org-sensor"]["agent_id"]
    assert after["org-sensor"]["config"]["interval_s"] == 2
    assert after["org-w-1"]["agent_id"] == before["org-w-1"]["agent_id"]

    pruned = vsm("apply", "-f", path, "--prune", url=url)
    assert pruned.returncode == 0, pruned.stderr
    assert "removed agent org-spare of root" in pruned.stdout
    assert "org-spare" not in agents(url)
    settled = vsm("diff", "-f", path, "--prune", url=url)
    assert "No changes" in settled.stdout


def test_an_invalid_file_is_refused_with_the_line_and_the_reason(url: str, tmp_path: Path) -> None:
    before = agents(url, prefix="")
    path = write(tmp_path, CHANGED.replace("count: 3", "count: many") + "  - {name: bad}\n")
    refused = vsm("apply", "-f", path, url=url)
    assert refused.returncode == 2
    assert refused.stdout == ""
    not_a_number = "Input should be a valid integer, unable to parse string as an integer"
    assert refused.stderr.splitlines() == [
        f"vsm: {path}:7: agents[0].count: {not_a_number}",
        f"vsm: {path}:12: agents[2].type: Field required",
    ]
    assert agents(url, prefix="").keys() == before.keys()

    wrong_config = write(tmp_path, CHANGED.replace("{interval_s: 2}", "{interval_s: 0}"))
    refused = vsm("diff", "-f", wrong_config, url=url)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"vsm: {wrong_config}:11: agents[1].config.interval_s: 0 is less than the minimum of 0.05\n"
    )


def test_meta_systems_and_budgets_are_applied_and_retired(url: str, tmp_path: Path) -> None:
    path = write(tmp_path, CHANGED + BUDGET + CHILDREN)
    applied = vsm("apply", "-f", path, url=url)
    assert applied.returncode == 0, applied.stderr
    assert "created meta-system root/logistics" in applied.stdout
    assert "created meta-system root/logistics/fleet" in applied.stdout
    children = httpx.get(
        f"{url}/api/vsm/meta-systems", params={"vsm_id": "root"}, headers=bearer(), timeout=30
    ).json()
    assert [c["vsm_id"] for c in children["children"]] == ["root/logistics"]
    budget = httpx.get(f"{url}/api/vsm/system/3", headers=bearer(), timeout=30).json()["budget"]
    assert budget == {
        "concurrency_slots": 64,
        "llm_tokens_per_min": 1000,
        "memory_mb": 4096,
        "llm_usd_per_day": None,
    }
    [mover] = agents(url, prefix="mover").values()
    assert mover["vsm_id"] == "root/logistics"

    again = vsm("apply", "-f", path, url=url)
    assert again.stdout == "No changes: the running system matches the file.\n", again.stdout

    without = write(tmp_path, CHANGED + BUDGET, "without.yaml")
    kept = vsm("diff", "-f", without, url=url)
    assert (
        "  ? meta-system root/logistics: not in the file (kept; --prune removes it)" in kept.stdout
    )
    retired = vsm("apply", "-f", without, "--prune", url=url)
    assert retired.returncode == 0, retired.stderr
    order = [line for line in retired.stdout.splitlines() if line.startswith("removed")]
    assert order == [
        "removed meta-system root/logistics/fleet",
        "removed agent mover of root/logistics",
        "removed meta-system root/logistics",
    ]
    children = httpx.get(
        f"{url}/api/vsm/meta-systems", params={"vsm_id": "root"}, headers=bearer(), timeout=30
    ).json()
    assert children["children"] == []
