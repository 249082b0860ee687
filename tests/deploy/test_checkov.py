"""checkov finds nothing to fix in what the chart renders (skips justified in checkov.yaml)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import RENDERS, render

CHECKOV = "checkov==3.3.30"
CONFIG = Path(__file__).with_name("checkov.yaml")


def uv() -> str:
    """The uv binary (`uv run` exports it as UV); checkov runs in a tool environment of its own."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv is not on PATH: the checkov test runs checkov with `uv tool run`")
    return found


def checkov(directory: Path) -> dict[str, Any]:
    command = [uv(), "tool", "run", "--from", CHECKOV, "checkov"]
    command += ["--config-file", str(CONFIG), "--directory", str(directory), "--output", "json"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=170, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"checkov ({CHECKOV} via uv tool run) did not finish in 170 s")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not run ({CHECKOV} via uv tool run):\n{done.stderr[-3000:]}")
    return report[0] if isinstance(report, list) else report


@pytest.mark.timeout(180)  # the first run installs checkov into uv's tool cache
def test_checkov_passes_on_every_render(tmp_path: Path) -> None:
    for name, values in RENDERS.items():
        manifests = render(values)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    report = checkov(tmp_path)
    assert report["check_type"] == "kubernetes"
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert report["summary"]["passed"] > 500
    # checkov counts each container as a resource of its own, besides the objects.
    assert report["summary"]["resource_count"] >= sum(len(render(v)) for v in RENDERS.values())
